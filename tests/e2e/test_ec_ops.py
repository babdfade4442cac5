"""ElastiCache operations around a running group: a primary that stalls for 600 ms is not failed over (a loaded
machine stalls nodes that long), one stopped for good is; DescribeCacheParameters of the default groups through
boto3 and both CLIs.
"""

import os
import signal
import time
import unittest

import harness
from harness import Region, wait_until
from test_elasticache import key_in, primary_of, redis_server_pid, slot_of

RG = "stally"
CALL = dict(ReplicationGroupId=RG, ReplicationGroupDescription="d", NumNodeGroups=2, ReplicasPerNodeGroup=1,
            CacheNodeType="cache.t3.micro", Engine="redis", CacheParameterGroupName="default.redis7.cluster.on",
            AutomaticFailoverEnabled=True)


def group(ec):
    return ec.describe_replication_groups(ReplicationGroupId=RG)["ReplicationGroups"][0]


class CacheOpsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.region = Region.for_class(cls)
        cls.ec = cls.region.boto3("elasticache")
        cls.ec.create_replication_group(**CALL)
        wait_until(lambda: group(cls.ec)["Status"] == "available", 60, 0.1, "the group")
        cls.endpoint = group(cls.ec)["ConfigurationEndpoint"]

    def failovers(self):
        events = self.ec.describe_events(SourceIdentifier=RG, SourceType="replication-group", Duration=60)["Events"]
        return [e["Message"] for e in events if e["Message"].startswith("Failover from")]

    def test_01_a_600ms_stall_is_not_a_failure(self):
        k = key_in(0, 8191, "stall")
        address, port = primary_of(slot_of(k), self.endpoint)
        pid = redis_server_pid(address, port)
        self.assertIsNotNone(pid)
        for _ in range(3):
            os.kill(pid, signal.SIGSTOP)
            try:
                time.sleep(0.6)  # the stall itself, not an ordering wait
            finally:
                os.kill(pid, signal.SIGCONT)
            time.sleep(1.0)  # answering again between stalls
        # Give a wrongly started failover every chance to show: the controller probes every 200 ms.
        time.sleep(1.5)
        self.assertEqual(self.failovers(), [])
        self.assertTrue(harness.pid_alive(pid), "the stalled primary was killed")
        self.assertEqual(primary_of(slot_of(k), self.endpoint), (address, port))
        self.assertEqual(group(self.ec)["Status"], "available")

    def test_02_a_primary_stopped_for_good_is_failed_over(self):
        k = key_in(8192, 16383, "stopped")
        address, port = primary_of(slot_of(k), self.endpoint)
        pid = redis_server_pid(address, port)
        t0 = time.monotonic()
        os.kill(pid, signal.SIGSTOP)
        wait_until(lambda: primary_of(slot_of(k), self.endpoint)[0] != address, 20, 0.05, "the promotion")
        harness.log("SIGSTOP of a primary to a promoted replica: %.2f s" % (time.monotonic() - t0))
        wait_until(lambda: self.failovers(), 10, 0.1, "the failover event")
        wait_until(lambda: group(self.ec)["Status"] == "available", 60, 0.2, "recovery")

    def test_03_describe_cache_parameters(self):
        params = self.ec.describe_cache_parameters(CacheParameterGroupName="default.redis7.cluster.on")
        by_name = {p["ParameterName"]: p for p in params["Parameters"]}
        self.assertEqual(by_name["cluster-enabled"]["ParameterValue"], "yes")
        self.assertEqual(by_name["maxmemory-policy"]["ParameterValue"], "volatile-lru")
        for p in params["Parameters"]:
            for field in ("ParameterName", "Description", "Source", "DataType", "IsModifiable",
                          "MinimumEngineVersion", "ChangeType"):
                self.assertIn(field, p)
        self.assertEqual(params["CacheNodeTypeSpecificParameters"][0]["ParameterName"], "maxmemory")
        for out in (self.region.cli_v1("elasticache", "describe-cache-parameters", "--cache-parameter-group-name",
                                       "default.redis5.0"),
                    self.region.cli_v2("elasticache", "describe-cache-parameters", "--cache-parameter-group-name",
                                       "default.redis5.0")):
            names = {p["ParameterName"]: p.get("ParameterValue") for p in out["Parameters"]}
            self.assertEqual(names["cluster-enabled"], "no")
        code, _ = self.region.cli_error_code("elasticache", "describe-cache-parameters",
                                             "--cache-parameter-group-name", "default.redis9", version=2)
        self.assertEqual(code, "CacheParameterGroupNotFound")
        # The node really runs with them.
        address, port = primary_of(0, self.endpoint)
        import redis
        r = redis.Redis(host=address, port=port, socket_timeout=2)
        try:
            self.assertEqual(r.config_get("maxmemory-policy")["maxmemory-policy"], "volatile-lru")
            self.assertEqual(r.config_get("cluster-require-full-coverage")["cluster-require-full-coverage"], "no")
        finally:
            r.close()


if __name__ == "__main__":
    unittest.main()

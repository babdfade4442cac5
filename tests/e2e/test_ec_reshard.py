"""Online resharding: ModifyReplicationGroupShardConfiguration 2 -> 3 -> 2 node groups with real slot migration
(CLUSTER SETSLOT IMPORTING/MIGRATING + MIGRATE) while a cluster client writes new keys and reads them back through
the configuration endpoint: every acknowledged key is readable afterwards with its value. boto3 and the aws CLI v2.
"""

import sys
import threading
import time
import unittest

import botocore.exceptions

import harness
from harness import Region, wait_until

sys.path.append("/usr/lib/python3/dist-packages")
from redis.cluster import RedisCluster  # noqa: E402

RG = "resharded"
CALL = dict(ReplicationGroupId=RG, ReplicationGroupDescription="d", NumNodeGroups=2, ReplicasPerNodeGroup=1,
            CacheNodeType="cache.t3.micro", Engine="redis", CacheParameterGroupName="default.redis7.cluster.on",
            AutomaticFailoverEnabled=True)


def group(ec):
    return ec.describe_replication_groups(ReplicationGroupId=RG)["ReplicationGroups"][0]


def code_of(call, **kwargs):
    try:
        call(**kwargs)
    except botocore.exceptions.ClientError as e:
        return e.response["Error"]["Code"]
    return None


class Traffic:
    """One writer of new keys and one reader of acknowledged ones, each with its own cluster client (bounded)."""

    def __init__(self, endpoint, max_seconds=240):
        self.endpoint = endpoint
        self.stop_at = time.monotonic() + max_seconds
        self.stopping = False
        self.acked = {}
        self.write_errors = 0
        self.read_errors = 0
        self.wrong_reads = []
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self.write, daemon=True),
                        threading.Thread(target=self.read, daemon=True)]

    def client(self):
        return RedisCluster(host=self.endpoint["Address"], port=self.endpoint["Port"], socket_timeout=2,
                            socket_connect_timeout=2)

    def write(self):
        c, n = None, 0
        while not self.stopping and time.monotonic() < self.stop_at:
            n += 1
            key, value = "rk-%d" % n, "v-%d" % n
            try:
                c = c or self.client()
                if c.set(key, value):
                    with self.lock:
                        self.acked[key] = value
            except Exception:  # noqa: BLE001 - an unacknowledged write may or may not have happened
                self.write_errors += 1
                c = None
            time.sleep(0.002)

    def read(self):
        c, i = None, 0
        while not self.stopping and time.monotonic() < self.stop_at:
            with self.lock:
                keys = list(self.acked)
            if not keys:
                time.sleep(0.01)
                continue
            i = (i + 7919) % len(keys)
            key = keys[i]
            try:
                c = c or self.client()
                got = c.get(key)
                if got is None or got.decode() != self.acked[key]:
                    self.wrong_reads.append((key, got))
            except Exception:  # noqa: BLE001
                self.read_errors += 1
                c = None
            time.sleep(0.002)

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stopping = True
        for t in self.threads:
            t.join(10)


class ReshardTest(unittest.TestCase):
    def test_two_three_two_under_traffic(self):
        region = Region.for_test(self)
        ec = region.boto3("elasticache")
        ec.create_replication_group(**CALL)
        wait_until(lambda: group(ec)["Status"] == "available", 60, 0.1, "the group")
        endpoint = group(ec)["ConfigurationEndpoint"]
        # Bad input changes nothing.
        self.assertEqual(code_of(ec.modify_replication_group_shard_configuration, ReplicationGroupId=RG,
                                 NodeGroupCount=2, ApplyImmediately=True), "InvalidParameterValue")
        self.assertEqual(code_of(ec.modify_replication_group_shard_configuration, ReplicationGroupId=RG,
                                 NodeGroupCount=1, ApplyImmediately=True), "InvalidParameterCombination")
        self.assertEqual(code_of(ec.modify_replication_group_shard_configuration, ReplicationGroupId=RG,
                                 NodeGroupCount=1, NodeGroupsToRemove=["0009"], ApplyImmediately=True),
                         "NodeGroupNotFoundFault")
        self.assertEqual(group(ec)["Status"], "available")

        with Traffic(endpoint) as traffic:
            wait_until(lambda: len(traffic.acked) > 200, 20, 0.05, "the writer to get going")
            t0 = time.monotonic()
            rg = ec.modify_replication_group_shard_configuration(ReplicationGroupId=RG, NodeGroupCount=3,
                                                                 ApplyImmediately=True)["ReplicationGroup"]
            self.assertEqual(rg["Status"], "modifying")
            wait_until(lambda: group(ec)["Status"] == "available", 120, 0.2, "resharding to 3 node groups")
            out_s = time.monotonic() - t0
            groups = group(ec)["NodeGroups"]
            self.assertEqual([g["Slots"] for g in groups], ["0-5461", "5462-10922", "10923-16383"])
            self.assertEqual(len(groups[2]["NodeGroupMembers"]), 2)
            keys_then = len(traffic.acked)

            t1 = time.monotonic()
            region.cli_v2("elasticache", "modify-replication-group-shard-configuration",
                          "--replication-group-id", RG, "--node-group-count", "2",
                          "--node-groups-to-remove", "0002", "--apply-immediately")
            wait_until(lambda: group(ec)["Status"] == "available", 120, 0.2, "resharding back to 2 node groups")
            in_s = time.monotonic() - t1
            groups = group(ec)["NodeGroups"]
            self.assertEqual([g["NodeGroupId"] for g in groups], ["0001", "0003"])
            self.assertEqual([g["Slots"] for g in groups], ["0-8191", "8192-16383"])
            time.sleep(0.5)  # a little traffic after the last move
        events = [e["Message"] for e in ec.describe_events(SourceIdentifier=RG, Duration=60)["Events"]]
        harness.log("2->3: %.1f s, 3->2: %.1f s; %d keys acknowledged (%d at 3 shards), %d write errors, "
                    "%d read errors; %s" % (out_s, in_s, len(traffic.acked), keys_then, traffic.write_errors,
                                            traffic.read_errors,
                                            [m for m in events if m.startswith("Completed modifying")]))
        self.assertEqual(traffic.wrong_reads, [])
        c = RedisCluster(host=endpoint["Address"], port=endpoint["Port"], socket_timeout=3)
        try:
            lost = [k for k, v in traffic.acked.items() if c.get(k) != v.encode()]
        finally:
            c.close()
        self.assertEqual(lost, [], "acknowledged keys lost")
        self.assertEqual(len(ec.describe_cache_clusters()["CacheClusters"]), 4)
        def known_nodes():
            try:
                c = RedisCluster(host=endpoint["Address"], port=endpoint["Port"], socket_timeout=2)
            except Exception:  # noqa: BLE001 - a client may first be sent to a node that is gone
                return None
            try:
                return len(c.cluster_nodes())
            except Exception:  # noqa: BLE001
                return None
            finally:
                c.close()
        wait_until(lambda: known_nodes() == 4, 20, 0.2, "the cluster to forget the removed shard's nodes")


if __name__ == "__main__":
    unittest.main()

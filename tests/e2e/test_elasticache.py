"""ElastiCache for Redis on real redis-server nodes (issue 11, seed §2), driven with boto3 and the aws CLI v1/v2.

- The seed's create_replication_group call as written is refused by boto3 before it is sent; with the parameter
  names corrected but the non-cluster parameter group kept, the region answers AWS's error; the corrected call
  gives 2 shards x (1 primary + 2 replicas) over us-west-2a/b with slots 0-8191 / 8192-16383.
- A redis-py cluster client (and redis-cli -c) writes and reads through the configuration endpoint on both
  shards.
- kill -9 of a primary (and SIGSTOP of one): writes to that shard resume after the control plane promotes a
  replica, the other shard never stops, a replacement replica is rebuilt and the group returns to 2 x 3 nodes;
  events are recorded.
- Bad input gets ElastiCache's error codes and creates nothing; delete stops every node.
"""

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
import unittest

import harness
from harness import Region, wait_until

try:
    import redis  # noqa: F401
except ImportError:  # Debian's python3-redis, when the interpreter running the tests is not Debian's
    sys.path.append("/usr/lib/python3/dist-packages")
import redis  # noqa: E402
from redis.cluster import RedisCluster  # noqa: E402

RG = "auto-pipeline-redis"

# The seed's call (auto_pipeline_ha_strategy.ko.md §2), argument for argument.
SEED_CALL = dict(
    ReplicationGroupId="auto-pipeline-redis",
    ReplicationGroupDescription="Auto Pipeline Redis Cluster",
    NumNodeGroups=2,
    ReplicasPerNodeGroup=2,
    NodeType="cache.m5.large",
    Engine="redis",
    CacheParameterGroupName="default.redis5.0",
    AvailabilityZones=["us-west-2a", "us-west-2b"],
    Port=6379,
)

# The corrected call (docs/elasticache.md says why each change is needed).
CORRECTED_CALL = dict(
    ReplicationGroupId="auto-pipeline-redis",
    ReplicationGroupDescription="Auto Pipeline Redis Cluster",
    NumNodeGroups=2,
    ReplicasPerNodeGroup=2,
    CacheNodeType="cache.m5.large",                    # NodeType is not a parameter
    Engine="redis",
    CacheParameterGroupName="default.redis5.0.cluster.on",  # 2 node groups need cluster mode
    AutomaticFailoverEnabled=True,                     # cluster mode requires it
    NodeGroupConfiguration=[                           # AZs go per node group, not AvailabilityZones
        {"PrimaryAvailabilityZone": "us-west-2a", "ReplicaAvailabilityZones": ["us-west-2b", "us-west-2b"]},
        {"PrimaryAvailabilityZone": "us-west-2b", "ReplicaAvailabilityZones": ["us-west-2a", "us-west-2a"]},
    ],
    Port=6379,
)

def slot_of(key):
    return redis.cluster.key_slot(key.encode())


def key_in(lo, hi, prefix):
    for i in range(100000):
        k = "%s-%d" % (prefix, i)
        if lo <= slot_of(k) <= hi:
            return k
    raise AssertionError("no key in %d-%d" % (lo, hi))


def redis_server_pid(address, port=6379):
    """The redis-server listening on address:port, by its command line ("--bind IP ... --port PORT": the nodes keep
    their argv, set-proc-title no, so that their environment still carries their launch token) or by a process
    title ("redis-server IP:PORT [cluster]")."""
    needle = "%s:%d" % (address, port)
    for pid in harness.all_pids():
        argv = harness.proc_cmdline(pid) or []
        if not argv or not (argv[0].startswith("redis-server") or argv[0].endswith("/redis-server")):
            continue
        cmd = " ".join(argv)
        if needle in cmd:
            return pid
        def arg(name):
            return argv[argv.index(name) + 1] if name in argv[:-1] else None
        if arg("--bind") == address and str(port) in (arg("--port"), arg("--tls-port")):
            return pid
    return None


def describe(region):
    return region.boto3("elasticache").describe_replication_groups(ReplicationGroupId=RG)["ReplicationGroups"][0]


def all_available(region, n_nodes):
    rg = describe(region)
    if rg["Status"] != "available":
        return False
    clusters = region.boto3("elasticache").describe_cache_clusters(ShowCacheNodeInfo=True)["CacheClusters"]
    mine = [c for c in clusters if c.get("ReplicationGroupId") == RG]
    return len(mine) == n_nodes and all(c["CacheClusterStatus"] == "available" for c in mine)


def primary_of(slot, endpoint):
    """(address, port) of the node serving `slot`, from CLUSTER SLOTS through the configuration endpoint."""
    r = redis.Redis(host=endpoint["Address"], port=endpoint["Port"], socket_timeout=2)
    try:
        for lo, hi, master, *_ in r.execute_command("CLUSTER SLOTS"):
            if lo <= slot <= hi:
                return master[0].decode() if isinstance(master[0], bytes) else master[0], master[1]
    finally:
        r.close()
    raise AssertionError("slot %d not served" % slot)


class Writer:
    """One thread per key, each writing its key in a loop through its own RedisCluster client (so a stalled shard
    cannot hold up the other's writes); records per key the times of acknowledged writes and of errors (bounded in
    time)."""

    def __init__(self, endpoint, keys, max_seconds=60):
        self.keys = keys
        self.endpoint = endpoint
        self.stop_at = time.monotonic() + max_seconds
        self.stopping = False
        self.acks = {k: [] for k in keys}
        self.errors = {k: [] for k in keys}
        self.threads = [threading.Thread(target=self.run, args=(k,), daemon=True) for k in keys]

    def client(self):
        return RedisCluster(host=self.endpoint["Address"], port=self.endpoint["Port"], socket_timeout=0.5,
                            socket_connect_timeout=0.5, cluster_error_retry_attempts=1)

    def run(self, k):
        c = None
        n = 0
        while not self.stopping and time.monotonic() < self.stop_at:
            n += 1
            try:
                if c is None:
                    c = self.client()
                c.set(k, str(n))
                self.acks[k].append(time.monotonic())
            except Exception:  # noqa: BLE001 - any failure counts as a failed write
                self.errors[k].append(time.monotonic())
                with contextlib.suppress(Exception):
                    if c is not None:
                        c.close()
                c = None
            time.sleep(0.01)

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stopping = True
        for t in self.threads:
            t.join(10)

    def acked_after(self, key, t):
        return [a for a in self.acks[key] if a > t]


class ElastiCacheSeedTest(unittest.TestCase):
    """The seed's replication group, created once for the class."""

    @classmethod
    def setUpClass(cls):
        cls.region = Region.for_class(cls)
        cls.ec = cls.region.boto3("elasticache")
        t0 = time.monotonic()
        cls.created = cls.ec.create_replication_group(**CORRECTED_CALL)["ReplicationGroup"]
        wait_until(lambda: all_available(cls.region, 6), 60, 0.1, "the seed's group to become available")
        cls.create_seconds = time.monotonic() - t0
        harness.log("create to available: %.2f s" % cls.create_seconds)
        cls.endpoint = describe(cls.region)["ConfigurationEndpoint"]

    def test_01_seed_call_as_written_is_refused_by_boto3(self):
        import botocore.exceptions
        with self.assertRaises(botocore.exceptions.ParamValidationError) as cm:
            self.ec.create_replication_group(**SEED_CALL)
        text = str(cm.exception)
        self.assertIn('Unknown parameter in input: "NodeType"', text)
        self.assertIn('Unknown parameter in input: "AvailabilityZones"', text)

    def test_02_uncorrected_parameter_group_gets_aws_error(self):
        import botocore.exceptions
        call = dict(CORRECTED_CALL, ReplicationGroupId="other-group", CacheParameterGroupName="default.redis5.0")
        with self.assertRaises(botocore.exceptions.ClientError) as cm:
            self.ec.create_replication_group(**call)
        err = cm.exception.response["Error"]
        self.assertEqual(err["Code"], "InvalidParameterCombination")
        self.assertEqual(err["Message"], "Cluster mode should be enabled in parameter group, but found it is disabled.")
        groups = self.ec.describe_replication_groups()["ReplicationGroups"]
        self.assertEqual([g["ReplicationGroupId"] for g in groups], [RG])

    def test_03_shape_as_boto3_and_both_clis_read_it(self):
        self.assertEqual(self.created["Status"], "creating")
        for rg in (describe(self.region),
                   self.region.cli_v1("elasticache", "describe-replication-groups",
                                      "--replication-group-id", RG)["ReplicationGroups"][0],
                   self.region.cli_v2("elasticache", "describe-replication-groups",
                                      "--replication-group-id", RG)["ReplicationGroups"][0]):
            self.assertEqual(rg["Status"], "available")
            self.assertIs(rg["ClusterEnabled"], True)
            self.assertEqual(rg["AutomaticFailover"], "enabled")
            self.assertEqual(rg["MultiAZ"], "disabled")  # MultiAZEnabled not given: false, as on AWS
            self.assertEqual(rg["CacheNodeType"], "cache.m5.large")
            self.assertEqual(rg["ConfigurationEndpoint"]["Port"], 6379)
            self.assertTrue(rg["ConfigurationEndpoint"]["Address"].startswith(self.region.block_prefix))
            self.assertEqual([g["Slots"] for g in rg["NodeGroups"]], ["0-8191", "8192-16383"])
            self.assertEqual([g["NodeGroupId"] for g in rg["NodeGroups"]], ["0001", "0002"])
            self.assertEqual(len(rg["MemberClusters"]), 6)
            azs = [m["PreferredAvailabilityZone"] for g in rg["NodeGroups"] for m in g["NodeGroupMembers"]]
            self.assertEqual(sorted(set(azs)), ["us-west-2a", "us-west-2b"])
        clusters = self.ec.describe_cache_clusters(ShowCacheNodeInfo=True)["CacheClusters"]
        addresses = {c["CacheNodes"][0]["Endpoint"]["Address"] for c in clusters}
        self.assertEqual(len(addresses), 6)
        for c in clusters:
            node = c["CacheNodes"][0]
            self.assertEqual(node["CustomerAvailabilityZone"], c["PreferredAvailabilityZone"])
            self.assertTrue(node["Endpoint"]["Address"].startswith(self.region.block_prefix))
            pid = redis_server_pid(node["Endpoint"]["Address"])
            self.assertIsNotNone(pid, "no redis-server at %s" % node["Endpoint"]["Address"])
            if os.geteuid() == 0:
                self.assertNotEqual(os.stat("/proc/%d" % pid).st_uid, 0, "a node runs as root")

    def test_04_cluster_client_reads_and_writes_both_shards(self):
        k1, k2 = key_in(0, 8191, "one"), key_in(8192, 16383, "two")
        c = RedisCluster(host=self.endpoint["Address"], port=self.endpoint["Port"], socket_timeout=2)
        try:
            self.assertTrue(c.set(k1, "v1"))
            self.assertTrue(c.set(k2, "v2"))
            self.assertEqual(c.get(k1), b"v1")
            self.assertEqual(c.get(k2), b"v2")
        finally:
            c.close()
        self.assertNotEqual(primary_of(slot_of(k1), self.endpoint), primary_of(slot_of(k2), self.endpoint))
        # redis-cli -c through the configuration endpoint follows MOVED too.
        out = subprocess.run(["redis-cli", "-c", "-h", self.endpoint["Address"], "-p", str(self.endpoint["Port"]),
                              "get", k2], capture_output=True, text=True, timeout=10)
        self.assertEqual(out.stdout.strip(), "v2", out.stderr)

    def _fail_primary_under_writer(self, how):
        k1, k2 = key_in(0, 8191, "w1-" + how), key_in(8192, 16383, "w2-" + how)
        victim_ip, victim_port = primary_of(slot_of(k1), self.endpoint)
        pid = redis_server_pid(victim_ip, victim_port)
        self.assertIsNotNone(pid)
        with Writer(self.endpoint, [k1, k2]) as w:
            wait_until(lambda: w.acks[k1] and w.acks[k2], 10, 0.05, "the writer to get going")
            t_fail = time.monotonic()
            if how == "kill":
                os.kill(pid, signal.SIGKILL)
            else:
                os.kill(pid, signal.SIGSTOP)
            harness.log("%s primary %s:%d pid %d" % (how, victim_ip, victim_port, pid))
            wait_until(lambda: primary_of(slot_of(k1), self.endpoint)[0] != victim_ip, 20, 0.05,
                       "a replica to take over the failed shard")
            t_promoted = time.monotonic()
            wait_until(lambda: w.acked_after(k1, t_promoted), 20, 0.05, "writes to the failed shard to resume")
            # The write outage on the failed shard: the longest wait between acknowledged writes around the failure
            # (the client may retry inside one call, so failed calls need not be seen at all).
            acks = [a for a in w.acks[k1] if a <= t_fail][-1:] + w.acked_after(k1, t_fail)
            resumed = max(b - a for a, b in zip(acks, acks[1:]))
            harness.log("%s: writes to the failed shard paused for %.2f s (%d failed calls)"
                        % (how, resumed, len([e for e in w.errors[k1] if e > t_fail])))
            # The other shard kept serving through the failover (its timing is bench/elasticache_bench.py's to
            # measure; here only that it never stopped for as long as the failover may take on a loaded machine).
            other = [t_fail] + w.acked_after(k2, t_fail)
            gaps = [b - a for a, b in zip(other, other[1:])]
            self.assertLess(max(gaps or [0]), 10.0, "writes to the healthy shard stalled")
        # Back to 2 x 3: the failed node is rebuilt as a replica in its own AZ.
        wait_until(lambda: all_available(self.region, 6), 60, 0.2, "the group to recover to 6 nodes")
        with contextlib.suppress(ProcessLookupError):
            if how == "stop":
                os.kill(pid, signal.SIGCONT)  # it was killed by the control plane; nothing should be left
        wait_until(lambda: not harness.pid_alive(pid), 10, 0.1, "the failed process to be gone")
        self.assertIsNotNone(redis_server_pid(victim_ip, victim_port), "no replacement at the failed address")
        c = RedisCluster(host=self.endpoint["Address"], port=self.endpoint["Port"], socket_timeout=2)
        try:
            self.assertIsNotNone(c.get(k1))
            self.assertIsNotNone(c.get(k2))
        finally:
            c.close()
        events = self.ec.describe_events(Duration=60)["Events"]
        messages = [e["Message"] for e in events]
        self.assertTrue(any(m.startswith("Failover from primary node") for m in messages), messages)
        self.assertIn("Finished recovery for cache nodes 0001", messages)

    def test_05_kill9_primary_fails_over(self):
        self._fail_primary_under_writer("kill")

    def test_06_sigstop_primary_fails_over(self):
        self._fail_primary_under_writer("stop")

    def test_07_test_failover(self):
        ec = self.ec
        with self.assertRaises(Exception) as cm:
            ec.test_failover(ReplicationGroupId=RG, NodeGroupId="0009")
        self.assertEqual(cm.exception.response["Error"]["Code"], "NodeGroupNotFoundFault")
        k2 = key_in(8192, 16383, "tf")
        before = primary_of(slot_of(k2), self.endpoint)
        ec.test_failover(ReplicationGroupId=RG, NodeGroupId="0002")
        wait_until(lambda: primary_of(slot_of(k2), self.endpoint) != before, 20, 0.1, "the promotion")
        wait_until(lambda: all_available(self.region, 6), 60, 0.2, "recovery")
        messages = [e["Message"] for e in ec.describe_events(SourceIdentifier=RG, SourceType="replication-group",
                                                             Duration=60)["Events"]]
        self.assertIn("Test Failover API called for node group 0002", messages)

    def test_08_bad_input_changes_nothing(self):
        base = dict(CORRECTED_CALL, ReplicationGroupId="bad-one")
        cases = [
            (dict(base, AutomaticFailoverEnabled=False), "InvalidParameterValue"),
            (dict(base, ReplicasPerNodeGroup=6, NodeGroupConfiguration=[]), "InvalidParameterValue"),
            (dict(base, ReplicationGroupId="1-starts-with-digit"), "InvalidParameterValue"),
            (dict(base, NodeGroupConfiguration=[{"Slots": "0-9000"}, {"Slots": "8192-16383"}]),
             "InvalidParameterValue"),
            (dict(base, NodeGroupConfiguration=[{"Slots": "0-8000"}, {"Slots": "8192-16383"}]),
             "InvalidParameterValue"),
            (dict(base, AuthToken="short"), "InvalidParameterValue"),
            (dict(base, CacheParameterGroupName="default.redis9"), "CacheParameterGroupNotFound"),
            (dict(base, ReplicationGroupId=RG), "ReplicationGroupAlreadyExists"),
        ]
        import botocore.exceptions
        for call, code in cases:
            call = {k: v for k, v in call.items() if v != []}
            with self.assertRaises(botocore.exceptions.ClientError, msg=str(call)) as cm:
                self.ec.create_replication_group(**call)
            self.assertEqual(cm.exception.response["Error"]["Code"], code, call)
        code, msg = self.region.cli_error_code(
            "elasticache", "create-replication-group", "--replication-group-id", "cli-bad",
            "--replication-group-description", "d", "--num-node-groups", "2", "--replicas-per-node-group", "1",
            "--cache-node-type", "cache.t3.micro", "--cache-parameter-group-name", "default.redis5.0.cluster.on",
            "--no-automatic-failover-enabled", version=2)
        self.assertEqual(code, "InvalidParameterValue")
        self.assertEqual(msg, "Redis with cluster mode enabled cannot be created with auto failover turned off.")
        groups = self.ec.describe_replication_groups()["ReplicationGroups"]
        self.assertEqual([g["ReplicationGroupId"] for g in groups], [RG])
        self.assertEqual(len(self.ec.describe_cache_clusters()["CacheClusters"]), 6)

    def test_09_server_kill9_and_restart_keeps_nodes_and_data(self):
        k1 = key_in(0, 8191, "restart")
        c = RedisCluster(host=self.endpoint["Address"], port=self.endpoint["Port"], socket_timeout=2)
        try:
            self.assertTrue(c.set(k1, "kept"))
        finally:
            c.close()
        clusters = self.ec.describe_cache_clusters(ShowCacheNodeInfo=True)["CacheClusters"]
        pids = sorted(redis_server_pid(x["CacheNodes"][0]["Endpoint"]["Address"]) for x in clusters)
        self.region.kill9()
        self.region.restart()
        # Adopted, not restarted: the same processes, the group still available, the data still there.
        wait_until(lambda: all_available(self.region, 6), 30, 0.2, "the group after the restart")
        clusters = self.ec.describe_cache_clusters(ShowCacheNodeInfo=True)["CacheClusters"]
        self.assertEqual(sorted(redis_server_pid(x["CacheNodes"][0]["Endpoint"]["Address"]) for x in clusters), pids)
        c = RedisCluster(host=self.endpoint["Address"], port=self.endpoint["Port"], socket_timeout=2)
        try:
            self.assertEqual(c.get(k1), b"kept")
        finally:
            c.close()

    def test_10_replica_count_modify_and_tags(self):
        ec = self.ec

        def cluster_nodes():
            out = subprocess.run(["redis-cli", "-h", self.endpoint["Address"], "-p", str(self.endpoint["Port"]),
                                  "cluster", "nodes"], capture_output=True, text=True, timeout=10)
            return [line for line in out.stdout.splitlines() if line]

        ec.increase_replica_count(ReplicationGroupId=RG, ApplyImmediately=True,
                                  ReplicaConfiguration=[{"NodeGroupId": "0001", "NewReplicaCount": 3,
                                                         "PreferredAvailabilityZones": ["us-west-2b"]}])
        self.assertEqual(describe(self.region)["Status"], "modifying")
        wait_until(lambda: all_available(self.region, 7), 30, 0.2, "the added replica")
        members = describe(self.region)["NodeGroups"][0]["NodeGroupMembers"]
        self.assertEqual(len(members), 4)
        self.assertEqual(members[-1]["PreferredAvailabilityZone"], "us-west-2b")
        wait_until(lambda: len(cluster_nodes()) == 7, 10, 0.1, "the cluster to know 7 nodes")
        needle = members[-1]["ReadEndpoint"]["Address"] + ":"
        wait_until(lambda: any(needle in line and "slave" in line.split()[2] for line in cluster_nodes()), 10, 0.1,
                   "the added node %s to be a replica in CLUSTER NODES" % needle)

        ec.decrease_replica_count(ReplicationGroupId=RG, ApplyImmediately=True, NewReplicaCount=2)
        wait_until(lambda: all_available(self.region, 6), 30, 0.2, "the removed replica to go")
        wait_until(lambda: len(cluster_nodes()) == 6, 10, 0.1, "the cluster to forget the removed node")
        with self.assertRaises(Exception) as cm:
            ec.decrease_replica_count(ReplicationGroupId=RG, ApplyImmediately=True, NewReplicaCount=3)
        self.assertEqual(cm.exception.response["Error"]["Code"], "InvalidParameterValue")

        with self.assertRaises(Exception) as cm:
            ec.modify_replication_group(ReplicationGroupId=RG, AutomaticFailoverEnabled=False, ApplyImmediately=True)
        self.assertEqual(cm.exception.response["Error"]["Code"], "InvalidParameterCombination")
        self.assertEqual(cm.exception.response["Error"]["Message"],
                         "Turning off automatic failover for replication group with cluster mode enabled is not "
                         "supported.")
        rg = ec.modify_replication_group(ReplicationGroupId=RG, SnapshotRetentionLimit=3,
                                         ApplyImmediately=True)["ReplicationGroup"]
        self.assertEqual(rg["SnapshotRetentionLimit"], 3)

        arn = describe(self.region)["ARN"]
        ec.add_tags_to_resource(ResourceName=arn, Tags=[{"Key": "team", "Value": "pipeline"}])
        self.assertEqual(ec.list_tags_for_resource(ResourceName=arn)["TagList"], [{"Key": "team", "Value": "pipeline"}])
        ec.remove_tags_from_resource(ResourceName=arn, TagKeys=["team"])
        self.assertEqual(ec.list_tags_for_resource(ResourceName=arn)["TagList"], [])

    def test_11_server_killed_mid_failover_ends_with_one_primary_per_shard(self):
        k1 = key_in(0, 8191, "mid")
        victim_ip, victim_port = primary_of(slot_of(k1), self.endpoint)
        pid = redis_server_pid(victim_ip, victim_port)
        os.kill(pid, signal.SIGKILL)
        time.sleep(0.05)  # the failover has started (or not): either way the restart must finish it
        self.region.kill9()
        self.region.restart()
        # The failed node rebuilt (a new process at its address) and the group available again. (Right after the
        # restart the group may still read available: the new server has not looked at the nodes yet.)
        wait_until(lambda: redis_server_pid(victim_ip, victim_port) not in (None, pid) and
                   all_available(self.region, 6), 60, 0.2, "the group after a restart mid-failover")

        def masters_agree():
            views = []
            for c in self.ec.describe_cache_clusters(ShowCacheNodeInfo=True)["CacheClusters"]:
                ep = c["CacheNodes"][0]["Endpoint"]
                res = subprocess.run(["redis-cli", "-h", ep["Address"], "-p", str(ep["Port"]), "cluster", "nodes"],
                                     capture_output=True, text=True, timeout=10)
                out = res.stdout
                if not out:
                    harness.log("redis-cli at %s: %s" % (ep["Address"], res.stderr))
                flags = [(line, set(line.split()[2].split(","))) for line in out.splitlines() if line]
                masters = sorted(" ".join(line.split()[8:]) for line, f in flags
                                 if "master" in f and not f & {"fail", "fail?", "noaddr", "handshake"})
                views.append(masters)
            if all(v == ["0-8191", "8192-16383"] for v in views):
                return True
            harness.log("views of the live primaries' slots: %r" % views)
            return False
        wait_until(masters_agree, 20, 0.2, "every node to see exactly one live primary per shard")
        c = RedisCluster(host=self.endpoint["Address"], port=self.endpoint["Port"], socket_timeout=2)
        try:
            self.assertTrue(c.set(k1, "after"))
            self.assertEqual(c.get(k1), b"after")
        finally:
            c.close()

    def test_99_delete_stops_every_node(self):
        clusters = self.ec.describe_cache_clusters(ShowCacheNodeInfo=True)["CacheClusters"]
        pids = [redis_server_pid(c["CacheNodes"][0]["Endpoint"]["Address"]) for c in clusters]
        rg = self.ec.delete_replication_group(ReplicationGroupId=RG)["ReplicationGroup"]
        self.assertEqual(rg["Status"], "deleting")

        def gone():
            try:
                self.ec.describe_replication_groups(ReplicationGroupId=RG)
                return False
            except Exception as e:  # noqa: BLE001
                return e.response["Error"]["Code"] == "ReplicationGroupNotFoundFault"
        wait_until(gone, 30, 0.2, "the group to be deleted")
        self.assertEqual(self.ec.describe_cache_clusters()["CacheClusters"], [])
        # The nodes are stopped with SIGTERM (SIGKILL after a grace period): gone within moments of the group.
        wait_until(lambda: not [p for p in pids if p and harness.pid_alive(p)], 15, 0.1, "every node process gone")


class DownAndStartAgainTest(unittest.TestCase):
    def test_group_comes_back_after_down(self):
        """`autopipe down` stops every node; the next start finds them gone and rebuilds the group (empty, as AWS
        rebuilds a group whose every node failed), and the configuration endpoint serves both shards again."""
        region = Region.for_test(self)
        ec = region.boto3("elasticache")
        ec.create_replication_group(**dict(CORRECTED_CALL, ReplicasPerNodeGroup=1, NodeGroupConfiguration=[
            {"PrimaryAvailabilityZone": "us-west-2a", "ReplicaAvailabilityZones": ["us-west-2b"]},
            {"PrimaryAvailabilityZone": "us-west-2b", "ReplicaAvailabilityZones": ["us-west-2a"]}]))
        wait_until(lambda: all_available(region, 4), 60, 0.1, "the group")
        clusters = ec.describe_cache_clusters(ShowCacheNodeInfo=True)["CacheClusters"]
        addresses = [c["CacheNodes"][0]["Endpoint"]["Address"] for c in clusters]
        self.assertEqual(region.down().returncode, 0)
        for a in addresses:
            self.assertIsNone(redis_server_pid(a), a)
        region.restart()
        wait_until(lambda: all_available(region, 4) and all(redis_server_pid(a) for a in addresses), 60, 0.2,
                   "the group to be rebuilt")
        endpoint = describe(region)["ConfigurationEndpoint"]
        k1, k2 = key_in(0, 8191, "again"), key_in(8192, 16383, "again")

        def serves():
            try:
                c = RedisCluster(host=endpoint["Address"], port=endpoint["Port"], socket_timeout=2)
                try:
                    return c.set(k1, "1") and c.set(k2, "2") and c.get(k1) == b"1" and c.get(k2) == b"2"
                finally:
                    c.close()
            except Exception:  # noqa: BLE001
                return False
        wait_until(serves, 20, 0.2, "both shards to serve through the configuration endpoint")


class NonClusterModeTest(unittest.TestCase):
    def test_primary_and_reader_endpoints_follow_the_primary(self):
        region = Region.for_test(self)
        ec = region.boto3("elasticache")
        ec.create_replication_group(ReplicationGroupId="plain", ReplicationGroupDescription="d",
                                    CacheNodeType="cache.t3.micro", NumCacheClusters=3,
                                    AutomaticFailoverEnabled=True, CacheParameterGroupName="default.redis7")
        wait_until(lambda: ec.describe_replication_groups(ReplicationGroupId="plain")["ReplicationGroups"][0]
                   ["Status"] == "available", 60, 0.1, "the group to become available")
        rg = ec.describe_replication_groups(ReplicationGroupId="plain")["ReplicationGroups"][0]
        ng = rg["NodeGroups"][0]
        self.assertIs(rg["ClusterEnabled"], False)
        self.assertNotIn("ConfigurationEndpoint", rg)
        primary = redis.Redis(host=ng["PrimaryEndpoint"]["Address"], port=ng["PrimaryEndpoint"]["Port"],
                              socket_timeout=2)
        self.assertTrue(primary.set("k", "v"))
        reader = redis.Redis(host=ng["ReaderEndpoint"]["Address"], port=ng["ReaderEndpoint"]["Port"],
                             socket_timeout=2)
        wait_until(lambda: reader.get("k") == b"v", 10, 0.05, "the replica to have the write")
        self.assertEqual(reader.info("replication")["role"], "slave")
        old = [m for m in ng["NodeGroupMembers"] if m["CurrentRole"] == "primary"][0]
        pid = redis_server_pid(old["ReadEndpoint"]["Address"])
        os.kill(pid, signal.SIGKILL)
        t0 = time.monotonic()

        def writes():
            try:
                c = redis.Redis(host=ng["PrimaryEndpoint"]["Address"], port=ng["PrimaryEndpoint"]["Port"],
                                socket_timeout=0.5, socket_connect_timeout=0.5)
                return c.set("k2", "v2")
            except Exception:  # noqa: BLE001
                return False
        wait_until(writes, 20, 0.05, "writes through the primary endpoint to resume")
        harness.log("non-cluster: writes resumed %.2f s after kill -9" % (time.monotonic() - t0))
        wait_until(lambda: all(m["CurrentRole"] for m in ec.describe_replication_groups(
            ReplicationGroupId="plain")["ReplicationGroups"][0]["NodeGroups"][0]["NodeGroupMembers"]) and
            ec.describe_replication_groups(ReplicationGroupId="plain")["ReplicationGroups"][0]["Status"] ==
            "available", 60, 0.2, "recovery")
        roles = [m["CurrentRole"] for m in ec.describe_replication_groups(
            ReplicationGroupId="plain")["ReplicationGroups"][0]["NodeGroups"][0]["NodeGroupMembers"]]
        self.assertEqual(sorted(roles), ["primary", "replica", "replica"])
        members = ec.describe_replication_groups(ReplicationGroupId="plain")["ReplicationGroups"][0]["NodeGroups"][0][
            "NodeGroupMembers"]
        self.assertNotEqual([m for m in members if m["CurrentRole"] == "primary"][0]["CacheClusterId"],
                            old["CacheClusterId"])
        # `autopipe down` stops every node.
        self.assertEqual(region.down().returncode, 0)
        for m in members:
            self.assertIsNone(redis_server_pid(m["ReadEndpoint"]["Address"]), m)


if __name__ == "__main__":
    unittest.main()

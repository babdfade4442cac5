"""ElastiCache snapshots on real RDB files: CreateSnapshot (BGSAVE on a replica of each shard), DescribeSnapshots
(filters, NodeSnapshots per shard with slots, paging), CopySnapshot, DeleteSnapshot, a group created from a
snapshot gets its keys back shard by shard, automatic snapshots in the SnapshotWindow, and a final snapshot on
DeleteReplicationGroup. boto3, the aws CLI v1 and v2, redis-py.
"""

import datetime
import os
import sys
import time
import unittest

import botocore.exceptions

import harness
from harness import Region, wait_until

sys.path.append("/usr/lib/python3/dist-packages")
from redis.cluster import RedisCluster  # noqa: E402

RG = "snapped"
CALL = dict(ReplicationGroupId=RG, ReplicationGroupDescription="snapshots", NumNodeGroups=2, ReplicasPerNodeGroup=1,
            CacheNodeType="cache.t3.micro", Engine="redis", CacheParameterGroupName="default.redis7.cluster.on",
            AutomaticFailoverEnabled=True)
KEYS = 2000


def group(ec, rg=RG):
    return ec.describe_replication_groups(ReplicationGroupId=rg)["ReplicationGroups"][0]


def snapshot(ec, name):
    return ec.describe_snapshots(SnapshotName=name, ShowNodeGroupConfig=True)["Snapshots"][0]


def code_of(call, *args, **kwargs):
    try:
        call(*args, **kwargs)
    except botocore.exceptions.ClientError as e:
        return e.response["Error"]["Code"]
    return None


def cluster_client(ec, rg):
    ep = group(ec, rg)["ConfigurationEndpoint"]
    return RedisCluster(host=ep["Address"], port=ep["Port"], socket_timeout=3)


class SnapshotTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.region = Region.for_class(cls)
        cls.ec = cls.region.boto3("elasticache")
        cls.ec.create_replication_group(**CALL)
        wait_until(lambda: group(cls.ec)["Status"] == "available", 60, 0.1, "the group")
        c = cluster_client(cls.ec, RG)
        try:
            for i in range(KEYS):
                c.set("key-%d" % i, "value-%d" % i)
        finally:
            c.close()

    def take(self, name):
        t0 = time.monotonic()
        snap = self.ec.create_snapshot(ReplicationGroupId=RG, SnapshotName=name)["Snapshot"]
        self.assertEqual(snap["SnapshotStatus"], "creating")
        wait_until(lambda: snapshot(self.ec, name)["SnapshotStatus"] == "available", 30, 0.05, "snapshot " + name)
        harness.log("snapshot %s of %d keys: %.2f s" % (name, KEYS, time.monotonic() - t0))
        wait_until(lambda: group(self.ec)["Status"] == "available", 10, 0.05, "the group back to available")

    def test_01_snapshot_restore_copy_delete(self):
        ec = self.ec
        self.take("snap-one")
        snap = snapshot(ec, "snap-one")
        self.assertEqual(snap["ReplicationGroupId"], RG)
        self.assertEqual(snap["SnapshotSource"], "manual")
        self.assertEqual(snap["NumNodeGroups"], 2)
        self.assertEqual(snap["AutomaticFailover"], "enabled")
        self.assertEqual([n["NodeGroupConfiguration"]["Slots"] for n in snap["NodeSnapshots"]],
                         ["0-8191", "8192-16383"])
        self.assertEqual([n["NodeGroupId"] for n in snap["NodeSnapshots"]], ["0001", "0002"])
        for n in snap["NodeSnapshots"]:
            self.assertTrue(n["CacheSize"].endswith(" MB"))
            self.assertEqual(n["NodeGroupConfiguration"]["ReplicaCount"], 1)
            path = os.path.join(self.region.data_dir, "elasticache-snapshots", "snap-one", n["NodeGroupId"] + ".rdb")
            with open(path, "rb") as f:
                self.assertEqual(f.read(5), b"REDIS", path)
        # Both CLIs read it.
        for out in (self.region.cli_v1("elasticache", "describe-snapshots", "--snapshot-name", "snap-one"),
                    self.region.cli_v2("elasticache", "describe-snapshots", "--snapshot-name", "snap-one",
                                       "--show-node-group-config")):
            self.assertEqual(out["Snapshots"][0]["SnapshotStatus"], "available")
            self.assertEqual(len(out["Snapshots"][0]["NodeSnapshots"]), 2)
        # Errors as ElastiCache's.
        self.assertEqual(code_of(ec.create_snapshot, ReplicationGroupId=RG, SnapshotName="snap-one"),
                         "SnapshotAlreadyExistsFault")
        self.assertEqual(code_of(ec.create_snapshot, ReplicationGroupId="nope", SnapshotName="x"),
                         "ReplicationGroupNotFoundFault")
        self.assertEqual(code_of(ec.describe_snapshots, SnapshotName="nope"), "SnapshotNotFoundFault")
        self.assertEqual(code_of(ec.delete_snapshot, SnapshotName="nope"), "SnapshotNotFoundFault")
        self.assertEqual(code_of(ec.create_replication_group, **dict(CALL, ReplicationGroupId="r2",
                                                                     SnapshotName="nope")),
                         "SnapshotNotFoundFault")

        # A new group from the snapshot has every key, each on the shard whose slots hold it.
        t0 = time.monotonic()
        ec.create_replication_group(**dict(CALL, ReplicationGroupId="restored", SnapshotName="snap-one"))
        wait_until(lambda: group(ec, "restored")["Status"] == "available", 60, 0.1, "the restored group")
        harness.log("restore of %d keys to available: %.2f s" % (KEYS, time.monotonic() - t0))
        self.assertEqual([g["Slots"] for g in group(ec, "restored")["NodeGroups"]], ["0-8191", "8192-16383"])
        c = cluster_client(ec, "restored")
        try:
            missing = [i for i in range(KEYS) if c.get("key-%d" % i) != b"value-%d" % i]
            self.assertEqual(missing, [])
            self.assertTrue(c.set("after-restore", "1"))
        finally:
            c.close()
        ec.delete_replication_group(ReplicationGroupId="restored")

        # Copy and delete; paging over 22 snapshots with MaxRecords 20.
        copy = ec.copy_snapshot(SourceSnapshotName="snap-one", TargetSnapshotName="snap-copy")["Snapshot"]
        self.assertEqual(copy["SnapshotName"], "snap-copy")
        self.assertEqual(code_of(ec.copy_snapshot, SourceSnapshotName="snap-one", TargetSnapshotName="snap-copy"),
                         "SnapshotAlreadyExistsFault")
        for i in range(20):
            ec.copy_snapshot(SourceSnapshotName="snap-one", TargetSnapshotName="page-%d" % i)
        names, marker = [], None
        while True:
            kw = dict(ReplicationGroupId=RG, MaxRecords=20)
            if marker:
                kw["Marker"] = marker
            page = ec.describe_snapshots(**kw)
            self.assertLessEqual(len(page["Snapshots"]), 20)
            names += [s["SnapshotName"] for s in page["Snapshots"]]
            marker = page.get("Marker")
            if not marker:
                break
        self.assertEqual(sorted(names), sorted(["snap-one", "snap-copy"] + ["page-%d" % i for i in range(20)]))
        for i in range(20):
            ec.delete_snapshot(SnapshotName="page-%d" % i)
        deleted = ec.delete_snapshot(SnapshotName="snap-copy")["Snapshot"]
        self.assertEqual(deleted["SnapshotStatus"], "deleting")
        self.assertEqual(code_of(ec.describe_snapshots, SnapshotName="snap-copy"), "SnapshotNotFoundFault")
        self.assertFalse(os.path.exists(os.path.join(self.region.data_dir, "elasticache-snapshots", "snap-copy")))
        self.assertTrue(os.path.exists(os.path.join(self.region.data_dir, "elasticache-snapshots", "snap-one")))

    def test_02_automatic_snapshot_in_its_window(self):
        ec = self.ec
        self.assertEqual(code_of(ec.modify_replication_group, ReplicationGroupId=RG, SnapshotWindow="05:00-05:30",
                                 ApplyImmediately=True), "InvalidParameterValue")
        now = datetime.datetime.now(datetime.timezone.utc)
        start = now - datetime.timedelta(minutes=5)
        end = start + datetime.timedelta(minutes=65)
        window = "%s-%s" % (start.strftime("%H:%M"), end.strftime("%H:%M"))
        ec.modify_replication_group(ReplicationGroupId=RG, SnapshotRetentionLimit=1, SnapshotWindow=window,
                                    ApplyImmediately=True)

        def automated():
            return [s for s in ec.describe_snapshots(ReplicationGroupId=RG, SnapshotSource="system")["Snapshots"]
                    if s["SnapshotStatus"] == "available"]
        wait_until(automated, 30, 0.2, "an automatic snapshot in the window %s" % window)
        snap = automated()[0]
        self.assertEqual(snap["SnapshotSource"], "automated")
        self.assertTrue(snap["SnapshotName"].startswith("automatic.%s-" % RG), snap["SnapshotName"])
        self.assertNotIn("snap-one", [s["SnapshotName"] for s in
                                      ec.describe_snapshots(ReplicationGroupId=RG, SnapshotSource="system")["Snapshots"]])
        # One per window.
        time.sleep(1)
        self.assertEqual(len(automated()), 1)
        wait_until(lambda: group(ec)["Status"] == "available", 10, 0.05, "the group back to available")

    def test_03_final_snapshot_on_delete(self):
        ec = self.ec
        rg = ec.delete_replication_group(ReplicationGroupId=RG, FinalSnapshotIdentifier="final-one")
        self.assertEqual(rg["ReplicationGroup"]["Status"], "deleting")

        def gone():
            return code_of(ec.describe_replication_groups, ReplicationGroupId=RG) == "ReplicationGroupNotFoundFault"
        wait_until(gone, 30, 0.1, "the group to be deleted")
        final = snapshot(ec, "final-one")
        self.assertEqual(final["SnapshotStatus"], "available")
        self.assertEqual(len(final["NodeSnapshots"]), 2)
        # Automatic snapshots go with the group; manual ones stay.
        names = [s["SnapshotName"] for s in ec.describe_snapshots()["Snapshots"]]
        self.assertIn("snap-one", names)
        self.assertFalse([n for n in names if n.startswith("automatic.")], names)
        wait_until(lambda: not [p for p, c in harness.data_dir_processes(self.region.data_dir) if "redis-server" in c],
                   15, 0.1, "every node of the deleted groups to stop")


if __name__ == "__main__":
    unittest.main()

"""RDS read replicas (issue 13, item 2) on real MariaDB: CreateDBInstanceReadReplica in-region and from another
region of the partition (the source given as its ARN), real GTID replication of real rows, read-only replicas,
ReplicaLag in CloudWatch, a replica that follows its Multi-AZ source's failover, PromoteReadReplica (also with the
source's whole region killed), a region server killed mid-create, and RDS's errors with nothing changed. The real
aws CLI v1 and v2, boto3 and pymysql.
"""

import os
import shutil
import signal
import sys
import tempfile
import time
import unittest

import harness
from harness import Region, wait_until

sys.path.append("/usr/lib/python3/dist-packages")  # Debian's python3-pymysql
import pymysql  # noqa: E402

ACCOUNT = "123456789012"
SOURCE = "auto-pipeline-db"
PASSWORD = "password"
WEST, EAST = "us-west-2", "us-east-1"


def describe(region, db):
    return region.boto3("rds").describe_db_instances(DBInstanceIdentifier=db)["DBInstances"][0]


def wait_status(region, db, statuses=("available",), timeout=120):
    return wait_until(lambda: (lambda d: d if d["DBInstanceStatus"] in statuses else None)(describe(region, db)),
                      timeout, 0.3, "%s %s" % (db, "/".join(statuses)))


def connect(address, timeout=5):
    return pymysql.connect(host=address, port=3306, user="admin", password=PASSWORD, autocommit=True,
                           connect_timeout=timeout, read_timeout=timeout, write_timeout=timeout)


def ids(address, table="app.t"):
    c = connect(address)
    try:
        with c.cursor() as cur:
            cur.execute("SELECT id FROM %s ORDER BY id" % table)
            return [r[0] for r in cur.fetchall()]
    finally:
        c.close()


def insert(address, first, n, table="app.t"):
    c = connect(address)
    try:
        with c.cursor() as cur:
            for i in range(first, first + n):
                cur.execute("INSERT INTO %s (id, v) VALUES (%%s, %%s)" % table, (i, "row-%d" % i))
    finally:
        c.close()
    return list(range(first, first + n))


def has_rows(address, expected):
    try:
        return set(expected) <= set(ids(address))
    except pymysql.err.MySQLError:
        return False


def events(region, db):
    pages = region.boto3("rds").get_paginator("describe_events").paginate(
        SourceType="db-instance", SourceIdentifier=db, Duration=60)
    return [e["Message"] for page in pages for e in page["Events"]]


class ReadReplicaTest(unittest.TestCase):
    """Two regions of one partition: the Multi-AZ source in us-west-2, replicas here and in us-east-1."""

    @classmethod
    def setUpClass(cls):
        cls.root = tempfile.mkdtemp(prefix="autopipe-e2e-replica-")
        cls.addClassCleanup(shutil.rmtree, cls.root, True)
        cls.partition = os.path.join(cls.root, "partition")
        cls.west = Region("test_rds_replica.west", region_name=WEST)
        cls.addClassCleanup(cls.west.close)
        cls.west.server_args = ["--partition", cls.partition]
        cls.west.start()
        cls.east = Region("test_rds_replica.east", region_name=EAST)
        cls.addClassCleanup(cls.east.close)
        cls.east.server_args = ["--partition", cls.partition]
        cls.east.start()
        cls.west.cli_v1("rds", "create-db-instance", "--db-instance-identifier", SOURCE,
                        "--db-instance-class", "db.t3.medium", "--engine", "mysql", "--allocated-storage", "20",
                        "--multi-az", "--master-username", "admin", "--master-user-password", PASSWORD,
                        "--backup-retention-period", "1")
        src = wait_status(cls.west, SOURCE, timeout=120)
        cls.source_address = src["Endpoint"]["Address"]
        c = connect(cls.source_address)
        with c.cursor() as cur:
            cur.execute("CREATE DATABASE app")
            cur.execute("CREATE TABLE app.t (id INT PRIMARY KEY, v VARCHAR(64))")
        c.close()
        cls.rows = insert(cls.source_address, 1, 50)
        cls.next_id = 51

    def more_rows(self, n):
        first = type(self).next_id
        type(self).next_id += n
        new = insert(self.source_address, first, n)
        type(self).rows = self.rows + new
        return new

    # -- errors first: each leaves everything as it was ---------------------------------------------------------

    def test_1_errors_change_nothing(self):
        w, e = self.west, self.east
        w.cli_v1("rds", "create-db-instance", "--db-instance-identifier", "nobackups", "--db-instance-class",
                 "db.t3.micro", "--engine", "mysql", "--allocated-storage", "20", "--master-username", "admin",
                 "--master-user-password", PASSWORD, "--backup-retention-period", "0")
        wait_status(w, "nobackups")
        before_w = sorted(d["DBInstanceIdentifier"] for d in w.boto3("rds").describe_db_instances()["DBInstances"])
        before_e = sorted(d["DBInstanceIdentifier"] for d in e.boto3("rds").describe_db_instances()["DBInstances"])
        cases = [
            (w, 1, ["--db-instance-identifier", "r1", "--source-db-instance-identifier", "missing-db"],
             "DBInstanceNotFound"),
            (w, 2, ["--db-instance-identifier", "r1", "--source-db-instance-identifier", "nobackups"],
             "InvalidDBInstanceState"),
            (w, 1, ["--db-instance-identifier", "nobackups", "--source-db-instance-identifier", SOURCE],
             "DBInstanceAlreadyExists"),
            (w, 1, ["--db-instance-identifier", "r1", "--source-db-instance-identifier", "not_an id!"],
             "InvalidParameterValue"),
            # A region the partition does not have.
            (e, 2, ["--db-instance-identifier", "r1", "--source-db-instance-identifier",
                    "arn:aws:rds:eu-west-3:%s:db:%s" % (ACCOUNT, SOURCE)], "DBInstanceNotFound"),
            # Another region's missing instance, and its source without backups, asked over that region's API.
            (e, 1, ["--db-instance-identifier", "r1", "--source-db-instance-identifier",
                    "arn:aws:rds:%s:%s:db:missing-db" % (WEST, ACCOUNT)], "DBInstanceNotFound"),
            (e, 2, ["--db-instance-identifier", "r1", "--source-db-instance-identifier",
                    "arn:aws:rds:%s:%s:db:nobackups" % (WEST, ACCOUNT)], "InvalidDBInstanceState"),
        ]
        for region, version, args, want in cases:
            with self.subTest(args=args):
                code, msg = region.cli_error_code("rds", "create-db-instance-read-replica", *args, version=version)
                self.assertEqual(code, want, msg)
                if want == "InvalidDBInstanceState" and "nobackups" in " ".join(args):
                    self.assertIn("Automated backups are not enabled for this database instance", msg)
        code, _ = w.cli_error_code("rds", "promote-read-replica", "--db-instance-identifier", SOURCE)
        self.assertEqual(code, "InvalidDBInstanceState")
        code, _ = w.cli_error_code("rds", "promote-read-replica", "--db-instance-identifier", "missing-db", version=2)
        self.assertEqual(code, "DBInstanceNotFound")
        after_w = sorted(d["DBInstanceIdentifier"] for d in w.boto3("rds").describe_db_instances()["DBInstances"])
        after_e = sorted(d["DBInstanceIdentifier"] for d in e.boto3("rds").describe_db_instances()["DBInstances"])
        self.assertEqual((before_w, before_e), (after_w, after_e))
        self.assertEqual(describe(w, SOURCE)["ReadReplicaDBInstanceIdentifiers"], [])
        self.assertEqual(describe(w, "nobackups")["ReadReplicaDBInstanceIdentifiers"], [])
        w.cli_v1("rds", "delete-db-instance", "--db-instance-identifier", "nobackups", "--skip-final-snapshot")

    # -- in-region ----------------------------------------------------------------------------------------------

    def test_2_in_region_replica_failover_promote(self):
        w = self.west
        rds = w.boto3("rds")
        made = rds.create_db_instance_read_replica(DBInstanceIdentifier="rr-local",
                                                   SourceDBInstanceIdentifier=SOURCE)["DBInstance"]
        self.assertEqual(made["ReadReplicaSourceDBInstanceIdentifier"], SOURCE)
        self.assertEqual(made["DBInstanceClass"], "db.t3.medium")  # the source's
        # The region (source and replica both) is killed mid-create; restarted, it finishes the replica.
        w.kill9()
        w.restart()
        replica = wait_status(w, "rr-local")
        # No secret in any process's argv, and no option file with a password left in the replica's folder.
        for pid, cmd in harness.data_dir_processes(w.data_dir):
            self.assertNotIn("password", cmd.lower(), cmd)
        rr_dir = os.path.join(w.data_dir, "rds", "rr-local", "s1")
        self.assertEqual([f for f in os.listdir(rr_dir) if f.endswith(".cnf") and f != "my.cnf"], [])
        address = replica["Endpoint"]["Address"]
        self.assertEqual(replica["ReadReplicaSourceDBInstanceIdentifier"], SOURCE)
        self.assertFalse(replica["MultiAZ"])
        self.assertEqual(describe(w, SOURCE)["ReadReplicaDBInstanceIdentifiers"], ["rr-local"])
        wait_until(lambda: has_rows(address, self.rows), 20, 0.2, "the source's rows on the replica")
        new = self.more_rows(20)
        wait_until(lambda: has_rows(address, new), 10, 0.1, "new rows replicated")
        # Read-only for the master user (no SUPER).
        c = connect(address)
        with self.assertRaises(pymysql.err.MySQLError) as err:
            with c.cursor() as cur:
                cur.execute("INSERT INTO app.t VALUES (999999, 'x')")
        c.close()
        self.assertEqual(err.exception.args[0], 1290, err.exception)  # ER_OPTION_PREVENTS_STATEMENT (read-only)
        infos = wait_until(lambda: describe(w, "rr-local").get("StatusInfos"), 10, 0.3, "StatusInfos")
        self.assertEqual(infos, [{"StatusType": "read replication", "Normal": True, "Status": "replicating"}])
        # ReplicaLag in CloudWatch, per DBInstanceIdentifier.
        cw = w.boto3("cloudwatch")

        def lag_points():
            now = time.time()
            pts = cw.get_metric_statistics(Namespace="AWS/RDS", MetricName="ReplicaLag",
                                           Dimensions=[{"Name": "DBInstanceIdentifier", "Value": "rr-local"}],
                                           StartTime=now - 600, EndTime=now + 60, Period=60,
                                           Statistics=["Maximum", "SampleCount"])["Datapoints"]
            return pts or None
        pts = wait_until(lag_points, 30, 1, "ReplicaLag datapoints")
        self.assertEqual(pts[0]["Unit"], "Seconds")
        self.assertLess(max(p["Maximum"] for p in pts), 30)
        listed = w.cli_v2("cloudwatch", "list-metrics", "--namespace", "AWS/RDS", "--metric-name", "ReplicaLag")
        self.assertIn([{"Name": "DBInstanceIdentifier", "Value": "rr-local"}],
                      [m["Dimensions"] for m in listed["Metrics"]])

        # The source fails over (Multi-AZ, planned): the replica follows its endpoint without a rebuild.
        server_before = describe(w, "rr-local")["DbiResourceId"]
        rds.reboot_db_instance(DBInstanceIdentifier=SOURCE, ForceFailover=True)
        wait_until(lambda: any("failover completed" in m for m in events(w, SOURCE)), 60, 0.3, "the failover")
        wait_status(w, SOURCE, ("available", "backing-up"))

        def write_after_failover():
            try:
                return self.more_rows(10)
            except pymysql.err.MySQLError:
                return None
        new = wait_until(write_after_failover, 30, 0.3, "a write on the new primary")
        wait_until(lambda: has_rows(address, new), 20, 0.2, "rows written after the failover replicated")
        self.assertEqual(describe(w, "rr-local")["DbiResourceId"], server_before)

        # Promotion (CLI v1): standalone and writable, every replicated row kept, backups started.
        replicated = list(self.rows)
        wait_until(lambda: has_rows(address, replicated), 10, 0.1, "all rows on the replica")
        out = w.cli_v1("rds", "promote-read-replica", "--db-instance-identifier", "rr-local")
        self.assertEqual(out["DBInstance"]["DBInstanceStatus"], "modifying")
        promoted = wait_status(w, "rr-local", ("available",), timeout=90)
        self.assertNotIn("ReadReplicaSourceDBInstanceIdentifier", promoted)
        self.assertEqual(promoted["BackupRetentionPeriod"], 1)
        self.assertNotIn("StatusInfos", promoted)
        self.assertEqual(describe(w, SOURCE)["ReadReplicaDBInstanceIdentifiers"], [])
        self.assertTrue(set(replicated) <= set(ids(address)))
        insert(address, 500000, 3)
        self.assertIn(500002, ids(address))
        self.assertTrue(any("Promoted Read Replica" in m for m in events(w, "rr-local")))
        code, _ = w.cli_error_code("rds", "promote-read-replica", "--db-instance-identifier", "rr-local")
        self.assertEqual(code, "InvalidDBInstanceState")
        w.cli_v1("rds", "delete-db-instance", "--db-instance-identifier", "rr-local", "--skip-final-snapshot")

    def test_2b_deletes_follow_rds(self):
        """Deleting a replica takes it off its source's list; deleting a source promotes its replicas, in this
        region at once and in another region by asking it."""
        w, e = self.west, self.east
        w.boto3("rds").create_db_instance(DBInstanceIdentifier="src2", DBInstanceClass="db.t3.micro", Engine="mysql",
                                          AllocatedStorage=20, MasterUsername="admin", MasterUserPassword=PASSWORD)
        src2 = wait_status(w, "src2")
        c = connect(src2["Endpoint"]["Address"])
        with c.cursor() as cur:
            cur.execute("CREATE DATABASE app")
            cur.execute("CREATE TABLE app.t (id INT PRIMARY KEY, v VARCHAR(64))")
        c.close()
        rows = insert(src2["Endpoint"]["Address"], 1, 10)
        w.boto3("rds").create_db_instance_read_replica(DBInstanceIdentifier="src2-r", SourceDBInstanceIdentifier="src2")
        arn = "arn:aws:rds:%s:%s:db:src2" % (WEST, ACCOUNT)
        e.boto3("rds").create_db_instance_read_replica(DBInstanceIdentifier="src2-x", SourceDBInstanceIdentifier=arn,
                                                       SourceRegion=WEST)
        wait_status(w, "src2-r")
        x = wait_status(e, "src2-x")
        wait_until(lambda: has_rows(x["Endpoint"]["Address"], rows), 20, 0.2, "rows in the cross-region replica")
        x_arn = "arn:aws:rds:%s:%s:db:src2-x" % (EAST, ACCOUNT)
        self.assertEqual(sorted(describe(w, "src2")["ReadReplicaDBInstanceIdentifiers"]), sorted(["src2-r", x_arn]))
        # A replica deleted (no SkipFinalSnapshot needed; a final snapshot refused) leaves the list at once.
        code, _ = w.cli_error_code("rds", "delete-db-instance", "--db-instance-identifier", "src2-r",
                                   "--final-db-snapshot-identifier", "nope")
        self.assertEqual(code, "InvalidParameterCombination")
        w.cli_v2("rds", "delete-db-instance", "--db-instance-identifier", "src2-r")
        self.assertEqual(describe(w, "src2")["ReadReplicaDBInstanceIdentifiers"], [x_arn])
        # The source deleted: the other region's replica stands alone, writable, with every row.
        w.cli_v1("rds", "delete-db-instance", "--db-instance-identifier", "src2", "--skip-final-snapshot")
        promoted = wait_until(lambda: (lambda d: d if "ReadReplicaSourceDBInstanceIdentifier" not in d
                                       and d["DBInstanceStatus"] == "available" else None)(describe(e, "src2-x")),
                              60, 0.3, "the cross-region replica promoted")
        self.assertEqual(promoted["BackupRetentionPeriod"], 1)
        self.assertTrue(set(rows) <= set(ids(x["Endpoint"]["Address"])))
        insert(x["Endpoint"]["Address"], 100, 1)
        e.cli_v1("rds", "delete-db-instance", "--db-instance-identifier", "src2-x", "--skip-final-snapshot")

    # -- cross-region, then the source's region is lost ---------------------------------------------------------

    def test_3_cross_region_replica_survives_region_loss(self):
        w, e = self.west, self.east
        arn = "arn:aws:rds:%s:%s:db:%s" % (WEST, ACCOUNT, SOURCE)
        out = e.cli_v2("rds", "create-db-instance-read-replica", "--db-instance-identifier", SOURCE,
                       "--source-db-instance-identifier", arn, "--source-region", WEST,
                       "--db-instance-class", "db.t3.small")
        self.assertEqual(out["DBInstance"]["ReadReplicaSourceDBInstanceIdentifier"], arn)
        replica_arn = "arn:aws:rds:%s:%s:db:%s" % (EAST, ACCOUNT, SOURCE)
        self.assertEqual(describe(w, SOURCE)["ReadReplicaDBInstanceIdentifiers"], [replica_arn])
        # The replica's region is killed mid-create; restarted, it seeds the replica again from scratch.
        e.kill9()
        e.restart()
        replica = wait_status(e, SOURCE, timeout=120)
        address = replica["Endpoint"]["Address"]
        self.assertEqual(replica["DBInstanceClass"], "db.t3.small")
        self.assertEqual(replica["ReadReplicaSourceDBInstanceIdentifier"], arn)
        wait_until(lambda: has_rows(address, self.rows), 20, 0.2, "the source's rows in the other region")
        new = self.more_rows(30)
        wait_until(lambda: has_rows(address, new), 10, 0.1, "new rows replicated across regions")
        self.assertEqual(e.cli_v1("rds", "describe-db-instances", "--db-instance-identifier", SOURCE)
                         ["DBInstances"][0]["StatusInfos"][0]["Status"], "replicating")

        # Region A is lost: every process of it at once (its server, its DB servers, endpoints...).
        replicated = list(self.rows)
        wait_until(lambda: has_rows(address, replicated), 10, 0.1, "everything replicated before the loss")
        pids = [pid for pid, _ in harness.data_dir_processes(w.data_dir)] + [w.server_pid()]
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        wait_until(lambda: not any(harness.pid_alive(p) for p in pids), 10, 0.1, "region A gone")
        infos = wait_until(lambda: (lambda i: i if i and i[0]["Status"] == "error" else None)(
            describe(e, SOURCE).get("StatusInfos")), 15, 0.3, "replication reported broken")
        self.assertFalse(infos[0]["Normal"])
        e.cli_v2("rds", "promote-read-replica", "--db-instance-identifier", SOURCE, "--backup-retention-period", "3")
        promoted = wait_status(e, SOURCE, ("available",), timeout=90)
        self.assertEqual(promoted["BackupRetentionPeriod"], 3)
        self.assertNotIn("ReadReplicaSourceDBInstanceIdentifier", promoted)
        self.assertTrue(set(replicated) <= set(ids(address)))
        insert(address, 700000, 5)
        self.assertEqual(ids(address)[-1], 700004)
        # Region A back: it learns that its replica stands alone now (the promoted instance keeps telling it).
        w.restart()
        wait_until(lambda: describe(w, SOURCE)["ReadReplicaDBInstanceIdentifiers"] == [], 30, 0.5,
                   "the old source to forget its promoted replica")


if __name__ == "__main__":
    unittest.main()

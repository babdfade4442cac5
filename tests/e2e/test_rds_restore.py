"""RDS restores (issue 10): RestoreDBInstanceToPointInTime to recorded instants across a forced failover and a
region server restart, our
RestoreToGtid extension, a restore after the source was deleted with DeleteAutomatedBackups=false, a corrupted
backup, RestoreDBInstanceFromDBSnapshot, and bad input getting RDS's errors while changing nothing. Real aws CLI
v1 and v2, boto3 and PyMySQL. (Instance names are short: the servers' socket paths include them.)
"""

import datetime
import glob
import os
import sys
import threading
import time
import unittest

import harness
from harness import Region, wait_until
from test_rds import connect, describe, event_messages, wait_available

sys.path.append("/usr/lib/python3/dist-packages")  # Debian's python3-pymysql
import pymysql  # noqa: E402,F401

SRC = "src"


def iso(t):
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def instance_ids(region):
    return sorted(d["DBInstanceIdentifier"] for d in region.boto3("rds").describe_db_instances()["DBInstances"])


def wait_status(region, db, status, timeout=180):
    return wait_until(lambda: (lambda d: d if d["DBInstanceStatus"] == status else None)(describe(region, db)),
                      timeout, 0.2, "%s %s" % (db, status))


def wait_serving(region, db, timeout=180):
    """The restored instance answers through its endpoint (available, or backing-up its first backup)."""
    def ready():
        d = describe(region, db)
        if d["DBInstanceStatus"] == "incompatible-restore":
            raise AssertionError("%s: restore failed: %s" % (db, event_messages(region, db)))
        return d if d["DBInstanceStatus"] in ("available", "backing-up") else None
    return wait_until(ready, timeout, 0.2, "%s restored" % db)


def rows(address, table="t"):
    with connect(address) as c, c.cursor() as cur:
        cur.execute("SELECT id FROM app.%s" % table)
        return {r[0] for r in cur.fetchall()}


def restore_to_gtid(region, gtid, **kw):
    """RestoreDBInstanceToPointInTime with our RestoreToGtid parameter, added by a boto3 event hook (botocore
    refuses parameters its model lacks), as docs/api-coverage.md shows."""
    import boto3
    ak, sk = region.credentials()
    session = boto3.session.Session(aws_access_key_id=ak, aws_secret_access_key=sk, region_name=harness.REGION_NAME)
    client = session.client("rds", endpoint_url=region.endpoint)

    def add(params, **_):
        params["body"]["RestoreToGtid"] = gtid
    client.meta.events.register("before-call.rds.RestoreDBInstanceToPointInTime", add)
    return client.restore_db_instance_to_point_in_time(**kw)


class TimedWriter:
    """Inserts ids 1, 2, ... with autocommit through the endpoint and records, per attempt, when it was sent,
    when it was acknowledged (None: no answer) and its GTID (@@last_gtid). It sends nothing in the last 30 ms
    of a second, so that a transaction rarely spans a second boundary; restore instants are chosen among the
    seconds no attempt spans."""

    def __init__(self, address):
        self.address = address
        self.attempts = []  # [id, sent, acked or None, gtid]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self):
        self._thread.start()
        wait_until(lambda: self.acked_count() >= 20, 30, 0.05, "the writer to get going")
        return self

    def stop(self):
        self._stop.set()
        self._thread.join(30)

    def acked_count(self):
        return sum(1 for a in self.attempts if a[2] is not None)

    def _run(self):
        conn, n = None, 0
        deadline = time.monotonic() + 180
        while not self._stop.is_set() and time.monotonic() < deadline:
            frac = time.time() % 1
            if frac > 0.97:
                time.sleep(1.0 - frac + 0.005)  # pacing around second boundaries, not ordering
                continue
            try:
                if conn is None:
                    conn = connect(self.address)
                n += 1
                attempt = [n, time.time(), None, None, None]
                self.attempts.append(attempt)
                with conn.cursor() as c:
                    c.execute("INSERT INTO app.t (id) VALUES (%s)", (n,))
                    attempt[2] = time.time()
                    c.execute("SELECT @@last_gtid")
                    attempt[3] = c.fetchone()[0]
            except Exception:  # noqa: BLE001 - any failure: reconnect and go on
                if self.attempts and self.attempts[-1][2] is None:
                    self.attempts[-1][4] = time.time()  # it committed before this, or never
                try:
                    conn.close()
                except Exception:  # noqa: BLE001
                    pass
                conn = None
                time.sleep(0.01)

    def clean_seconds(self):
        """Whole seconds S such that every attempt sent before S+1 was acknowledged before S+1."""
        first = int(self.attempts[0][1]) + 1
        last = int(self.attempts[-1][1])
        bad = set()
        for _, sent, acked, _, failed in self.attempts:
            # It spans the end of second s when sent < s+1 <= its answer (an error ends it too: the endpoint cut
            # the session and the old primary was fenced, so it committed before that or never).
            end = acked if acked is not None else failed if failed is not None else float(last + 1)
            for s in range(int(sent), int(end) + 1):
                if sent < s + 1 <= end:
                    bad.add(s)
        return [s for s in range(first, last) if s not in bad]

    def unknown(self):
        """Ids whose insert got no answer: present or not, both are right."""
        return {a[0] for a in self.attempts if a[2] is None}

    def expected_at(self, second):
        return {a[0] for a in self.attempts if a[2] is not None and a[2] < second + 1}


class RdsRestoreTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.region = Region.for_class(cls)
        cls.region.cli_v1("rds", "create-db-instance", "--db-instance-identifier", SRC,
                          "--db-instance-class", "db.t3.micro", "--engine", "mysql", "--allocated-storage", "20",
                          "--multi-az", "--master-username", "admin", "--master-user-password", "password",
                          "--backup-retention-period", "1")
        cls.src = wait_available(cls.region, SRC, timeout=120)
        cls.address = cls.src["Endpoint"]["Address"]
        cls.store = os.path.join(cls.region.data_dir, "rds-backups", cls.src["DbiResourceId"])
        with connect(cls.address) as c, c.cursor() as cur:
            cur.execute("CREATE DATABASE app")
            cur.execute("CREATE TABLE app.t (id INT PRIMARY KEY)")
        # A stream of transactions across a forced failover.
        cls.writer = TimedWriter(cls.address).start()
        time.sleep(3.5)  # a stretch of writes before the failover (the writer keeps going meanwhile)
        before = event_messages(cls.region, SRC).count("Multi-AZ instance failover completed")
        cls.region.boto3("rds").reboot_db_instance(DBInstanceIdentifier=SRC, ForceFailover=True)
        wait_until(lambda: event_messages(cls.region, SRC).count("Multi-AZ instance failover completed") > before,
                   60, 0.1, "the forced failover")
        cls.failover_done = time.time()
        n = cls.writer.acked_count()
        wait_until(lambda: cls.writer.acked_count() >= n + 200, 60, 0.05, "writes after the failover")
        time.sleep(1.5)  # and a stretch of them
        # A region server restart (kill -9) while the writes go on: the servers, endpoint and archiver live on.
        cls.region.kill9()
        cls.region.restart()
        n = cls.writer.acked_count()
        wait_until(lambda: cls.writer.acked_count() >= n + 200, 60, 0.05, "writes after the server restart")
        time.sleep(1.5)
        cls.writer.stop()
        last_ack = max(a[2] for a in cls.writer.attempts if a[2] is not None)
        wait_until(lambda: describe(cls.region, SRC).get("LatestRestorableTime") and
                   describe(cls.region, SRC)["LatestRestorableTime"].timestamp() > last_ack + 1.2, 30, 0.2,
                   "LatestRestorableTime past the last write's second")
        cls.clean = cls.writer.clean_seconds()
        harness.log("writer: %d attempts, %d acked; failover done at %.3f; clean seconds %s" % (
            len(cls.writer.attempts), cls.writer.acked_count(), cls.failover_done, cls.clean))

    def pick(self, when):
        """A clean second: 'early' (before the failover), 'late' (after it)."""
        before = [s for s in self.clean if s + 1 < self.failover_done - 1]
        after = [s for s in self.clean if s > self.failover_done + 1]
        self.assertTrue(before and after, "no clean second before/after the failover: %s" % self.clean)
        return before[len(before) // 2] if when == "early" else after[-1]

    def check_restored(self, db, expected, multi_az=False):
        d = wait_serving(self.region, db)
        got = rows(d["Endpoint"]["Address"]) - self.writer.unknown()
        missing, extra = expected - got, got - expected
        self.assertFalse(missing or extra, "%s: %d rows missing (e.g. %s), %d extra (e.g. %s)" % (
            db, len(missing), sorted(missing)[:5], len(extra), sorted(extra)[:5]))
        self.assertIn("Restored from DB instance %s to %s" % (SRC, db), event_messages(self.region, db))
        return d

    # ---- tests (named so they run in this order) ----

    def test_1_point_in_time_across_a_forced_failover(self):
        early, late = self.pick("early"), self.pick("late")
        rds = self.region.boto3("rds")
        # The CLI v1 and v2 and boto3, RestoreTime with a fraction (it takes its whole second).
        out = self.region.cli_v1("rds", "restore-db-instance-to-point-in-time", "--source-db-instance-identifier",
                                 SRC, "--target-db-instance-identifier", "r1", "--restore-time", iso(early + 0.25))
        self.assertEqual(out["DBInstance"]["DBInstanceStatus"], "creating")
        self.assertFalse(out["DBInstance"]["MultiAZ"])
        self.region.cli_v2("rds", "restore-db-instance-to-point-in-time", "--source-db-instance-identifier", SRC,
                           "--target-db-instance-identifier", "r2", "--restore-time", iso(late + 0.9),
                           "--db-instance-class", "db.t3.small", "--multi-az",
                           "--tags", "Key=purpose,Value=pitr", "--vpc-security-group-ids", "sg-12345678")
        rds.restore_db_instance_to_point_in_time(SourceDBInstanceIdentifier=SRC, TargetDBInstanceIdentifier="r3",
                                                 UseLatestRestorableTime=True, Port=3307)
        self.check_restored("r1", self.writer.expected_at(early))
        d2 = self.check_restored("r2", self.writer.expected_at(late))
        self.assertEqual(d2["DBInstanceClass"], "db.t3.small")
        self.assertEqual(d2["VpcSecurityGroups"][0]["VpcSecurityGroupId"], "sg-12345678")
        self.assertIn({"Key": "purpose", "Value": "pitr"}, rds.list_tags_for_resource(
            ResourceName=d2["DBInstanceArn"])["TagList"])
        # Multi-AZ only when asked: r2 gets its standby, r1 and r3 none.
        wait_until(lambda: describe(self.region, "r2")["MultiAZ"], 120, 0.5, "r2 Multi-AZ")
        self.assertNotEqual(describe(self.region, "r2").get("SecondaryAvailabilityZone"),
                            describe(self.region, "r2")["AvailabilityZone"])
        # UseLatestRestorableTime: everything the writer had (it stopped well before).
        d3 = wait_serving(self.region, "r3")
        self.assertEqual(d3["Endpoint"]["Port"], 3307)
        with connect(d3["Endpoint"]["Address"], port=3307) as c, c.cursor() as cur:
            cur.execute("SELECT id FROM app.t")
            got = {r[0] for r in cur.fetchall()}
        with connect(self.address) as c, c.cursor() as cur:
            cur.execute("SELECT id FROM app.t")
            self.assertEqual(got, {r[0] for r in cur.fetchall()})
        self.assertFalse(describe(self.region, "r1")["MultiAZ"])
        # A restored instance is a normal one: writable, and its own automated backups begin.
        with connect(describe(self.region, "r1")["Endpoint"]["Address"]) as c, c.cursor() as cur:
            cur.execute("INSERT INTO app.t (id) VALUES (1000000)")
        wait_available(self.region, "r1", timeout=120)
        snaps = rds.describe_db_snapshots(DBInstanceIdentifier="r1", SnapshotType="automated")["DBSnapshots"]
        self.assertEqual([s["Status"] for s in snaps], ["available"])
        # The source is untouched.
        self.assertEqual(describe(self.region, SRC)["DBInstanceStatus"], "available")

    def test_2_restore_to_a_gtid(self):
        acked = [a for a in self.writer.attempts if a[2] is not None and a[3]]
        target = acked[len(acked) // 3]
        harness.log("restoring to id %d at GTID %s" % (target[0], target[3]))
        out = restore_to_gtid(self.region, target[3], SourceDBInstanceIdentifier=SRC, TargetDBInstanceIdentifier="g1")
        self.assertEqual(out["DBInstance"]["DBInstanceStatus"], "creating")
        d = wait_serving(self.region, "g1")
        got = rows(d["Endpoint"]["Address"])
        self.assertEqual(max(got), target[0])
        expected = {a[0] for a in self.writer.attempts if a[2] is not None and a[0] <= target[0]}
        self.assertEqual(got & set(a[0] for a in acked), expected)
        with connect(d["Endpoint"]["Address"]) as c, c.cursor() as cur:
            cur.execute("SELECT @@gtid_binlog_pos")
            self.assertEqual(cur.fetchone()[0], target[3])
        # A GTID beyond the archive: accepted, then a clear failure.
        code = None
        try:
            restore_to_gtid(self.region, "0-1-999999999", SourceDBInstanceIdentifier=SRC,
                            TargetDBInstanceIdentifier="g2")
        except Exception as e:  # noqa: BLE001
            code = e.response["Error"]["Code"]
        self.assertIsNone(code)
        wait_status(self.region, "g2", "incompatible-restore", 120)
        self.assertTrue(any("not in the archived binary log" in m for m in event_messages(self.region, "g2")))
        self.region.boto3("rds").delete_db_instance(DBInstanceIdentifier="g2", SkipFinalSnapshot=True)
        wait_until(lambda: "g2" not in instance_ids(self.region), 60, 0.2, "g2 deleted")

    def test_3_bad_input_changes_nothing(self):
        # An instance with backups off, for PointInTimeRestoreNotEnabled.
        self.region.boto3("rds").create_db_instance(
            DBInstanceIdentifier="nobk", DBInstanceClass="db.t3.micro", Engine="mysql", AllocatedStorage=20,
            MasterUsername="admin", MasterUserPassword="password", BackupRetentionPeriod=0)
        wait_available(self.region, "nobk", timeout=120)
        before = instance_ids(self.region)
        late = self.pick("late")
        future = iso(time.time() + 3600)
        early = iso(time.time() - 3 * 3600)
        cases = [
            (["--restore-time", iso(late), "--use-latest-restorable-time"], "InvalidParameterCombination"),
            ([], "InvalidParameterCombination"),
            (["--restore-time", future], "InvalidRestoreFault"),
            (["--restore-time", early], "InvalidRestoreFault"),
        ]
        for version in (1, 2):
            for args, want in cases:
                code, msg = self.region.cli_error_code(
                    "rds", "restore-db-instance-to-point-in-time", "--source-db-instance-identifier", SRC,
                    "--target-db-instance-identifier", "bad", *args, version=version)
                self.assertEqual(code, want, (version, args, msg))
        rds = self.region.boto3("rds")
        from botocore.exceptions import ClientError

        def code_of(**kw):
            try:
                rds.restore_db_instance_to_point_in_time(**kw)
            except ClientError as e:
                return e.response["Error"]["Code"]
            return None
        self.assertEqual(code_of(SourceDBInstanceIdentifier=SRC, TargetDBInstanceIdentifier="r1",
                                 UseLatestRestorableTime=True), "DBInstanceAlreadyExists")
        self.assertEqual(code_of(SourceDBInstanceIdentifier="nope", TargetDBInstanceIdentifier="bad",
                                 UseLatestRestorableTime=True), "DBInstanceNotFound")
        self.assertEqual(code_of(SourceDbiResourceId="db-NOSUCHRESOURCE0000000000", TargetDBInstanceIdentifier="bad",
                                 UseLatestRestorableTime=True), "DBInstanceAutomatedBackupNotFound")
        self.assertEqual(code_of(SourceDBInstanceIdentifier="nobk", TargetDBInstanceIdentifier="bad",
                                 UseLatestRestorableTime=True), "PointInTimeRestoreNotEnabled")
        self.assertEqual(code_of(SourceDBInstanceIdentifier=SRC, TargetDBInstanceIdentifier="bad--id",
                                 UseLatestRestorableTime=True), "InvalidParameterValue")
        self.assertEqual(code_of(SourceDBInstanceIdentifier=SRC, TargetDBInstanceIdentifier="bad",
                                 UseLatestRestorableTime=True, DBInstanceClass="db.x9.huge"),
                         "InvalidParameterCombination")
        try:
            restore_to_gtid(self.region, "0-1-x", SourceDBInstanceIdentifier=SRC, TargetDBInstanceIdentifier="bad")
            self.fail("a malformed GTID was accepted")
        except ClientError as e:
            self.assertEqual(e.response["Error"]["Code"], "InvalidParameterValue")
        try:
            restore_to_gtid(self.region, "0-1-5", SourceDBInstanceIdentifier=SRC, TargetDBInstanceIdentifier="bad",
                            UseLatestRestorableTime=True)
            self.fail("RestoreToGtid with UseLatestRestorableTime was accepted")
        except ClientError as e:
            self.assertEqual(e.response["Error"]["Code"], "InvalidParameterCombination")
        self.assertEqual(instance_ids(self.region), before)
        self.assertEqual(event_messages(self.region, "bad"), [])

    def test_4_corrupted_backup_fails_clearly(self):
        manifests = glob.glob(os.path.join(self.store, "backups", "*", "manifest.json"))
        self.assertEqual(len(manifests), 1, manifests)
        data = os.path.join(os.path.dirname(manifests[0]), "data")
        victim = max((os.path.join(root, f) for root, _, files in os.walk(data) for f in files), key=os.path.getsize)
        with open(victim, "r+b") as f:
            f.seek(os.path.getsize(victim) // 2)
            original = f.read(16)
            f.seek(os.path.getsize(victim) // 2)
            f.write(bytes(b ^ 0xFF for b in original))
        try:
            before = [i for i in instance_ids(self.region)]
            self.region.cli_v2("rds", "restore-db-instance-to-point-in-time", "--source-db-instance-identifier", SRC,
                               "--target-db-instance-identifier", "bad1", "--restore-time", iso(self.pick("late")))
            wait_status(self.region, "bad1", "incompatible-restore", 120)
            messages = event_messages(self.region, "bad1")
            self.assertTrue(any("is damaged" in m for m in messages), messages)
            self.assertNotIn("Restored from DB instance %s to bad1" % SRC, messages)
            # Nothing else changed: the source serves, no other instance appeared, the backup is still there.
            self.assertEqual(instance_ids(self.region), sorted(before + ["bad1"]))
            self.assertEqual(describe(self.region, SRC)["DBInstanceStatus"], "available")
            self.assertTrue(os.path.exists(manifests[0]))
            # The failed instance is deleted like any other.
            self.region.cli_v1("rds", "delete-db-instance", "--db-instance-identifier", "bad1",
                               "--skip-final-snapshot")
            wait_until(lambda: "bad1" not in instance_ids(self.region), 60, 0.2, "bad1 deleted")
        finally:
            with open(victim, "r+b") as f:
                f.seek(os.path.getsize(victim) // 2)
                f.write(original)

    def test_5_restore_from_the_automated_snapshot(self):
        snap = self.region.boto3("rds").describe_db_snapshots(DBInstanceIdentifier=SRC,
                                                              SnapshotType="automated")["DBSnapshots"][0]
        self.region.cli_v1("rds", "restore-db-instance-from-db-snapshot", "--db-instance-identifier", "s1",
                           "--db-snapshot-identifier", snap["DBSnapshotIdentifier"])
        d = wait_serving(self.region, "s1")
        # The backup was taken at creation, before the app database existed.
        with connect(d["Endpoint"]["Address"]) as c, c.cursor() as cur:
            cur.execute("SHOW DATABASES")
            self.assertNotIn("app", {r[0] for r in cur.fetchall()})
        self.assertIn("Restored from snapshot %s" % snap["DBSnapshotIdentifier"], event_messages(self.region, "s1"))
        code, _ = self.region.cli_error_code("rds", "restore-db-instance-from-db-snapshot",
                                             "--db-instance-identifier", "s9", "--db-snapshot-identifier", "nosuch")
        self.assertEqual(code, "DBSnapshotNotFound")

    def test_6_restore_after_the_source_was_deleted(self):
        late = self.pick("late")
        expected = self.writer.expected_at(late)
        dbi = self.src["DbiResourceId"]
        self.region.cli_v1("rds", "delete-db-instance", "--db-instance-identifier", SRC, "--skip-final-snapshot",
                           "--no-delete-automated-backups")
        wait_until(lambda: SRC not in instance_ids(self.region), 60, 0.2, "the source deleted")
        backups = self.region.boto3("rds").describe_db_instance_automated_backups(
            DbiResourceId=dbi)["DBInstanceAutomatedBackups"]
        self.assertEqual([b["Status"] for b in backups], ["retained"])
        code, _ = self.region.cli_error_code("rds", "restore-db-instance-to-point-in-time",
                                             "--source-db-instance-identifier", SRC,
                                             "--target-db-instance-identifier", "gone", "--restore-time", iso(late))
        self.assertEqual(code, "DBInstanceNotFound")
        self.region.cli_v2("rds", "restore-db-instance-to-point-in-time", "--source-dbi-resource-id", dbi,
                           "--target-db-instance-identifier", "after", "--restore-time", iso(late))
        d = wait_serving(self.region, "after")
        got = rows(d["Endpoint"]["Address"]) - self.writer.unknown()
        self.assertEqual(got, expected)


class RdsRestoreInterruptedTest(unittest.TestCase):

    def test_stall(self):
        """A restore deleted midway is cancelled and leaves nothing; one whose region server is killed -9 midway is
        started again by the restarted server and completes. (The server stalls each restore before its replay:
        AUTOPIPE_TEST_RESTORE_STALL_S.)"""
        region = Region("%s.%s" % (type(self).__module__, self._testMethodName))
        self.addCleanup(region.close)
        region.extra_env = {"AUTOPIPE_TEST_RESTORE_STALL_S": "60"}
        region.start()
        rds = region.boto3("rds")
        rds.create_db_instance(DBInstanceIdentifier="ps", DBInstanceClass="db.t3.micro", Engine="mysql",
                               AllocatedStorage=20, MasterUsername="admin", MasterUserPassword="password",
                               BackupRetentionPeriod=1)
        d = wait_available(region, "ps", timeout=120)
        with connect(d["Endpoint"]["Address"]) as c, c.cursor() as cur:
            cur.execute("CREATE DATABASE app")
            cur.execute("CREATE TABLE app.t (id INT PRIMARY KEY)")
            for i in range(1, 51):
                cur.execute("INSERT INTO app.t (id) VALUES (%s)", (i,))
        written = time.time()
        wait_until(lambda: describe(region, "ps")["LatestRestorableTime"].timestamp() > written + 1.1, 30, 0.2,
                   "the archive past the writes")

        def temp_server(db):
            path = os.path.join(region.data_dir, "rds", db, "s1", "mysqld.pid")
            wait_until(lambda: (harness.read_text(path) or "").strip(), 60, 0.05, "%s's server started alone" % db)
            return int(harness.read_text(path).strip())

        # Deleted midway: cancelled, then deleted like any other; its server is gone.
        rds.restore_db_instance_to_point_in_time(SourceDBInstanceIdentifier="ps", TargetDBInstanceIdentifier="pd",
                                                 UseLatestRestorableTime=True)
        pid = temp_server("pd")
        self.assertEqual(describe(region, "pd")["DBInstanceStatus"], "creating")
        rds.delete_db_instance(DBInstanceIdentifier="pd", SkipFinalSnapshot=True)
        wait_until(lambda: "pd" not in instance_ids(region), 60, 0.2, "pd deleted")
        wait_until(lambda: not harness.pid_alive(pid), 30, 0.1, "pd's server stopped")
        self.assertFalse(os.path.exists(os.path.join(region.data_dir, "rds", "pd")))

        # The region server killed midway: the restarted one starts the restore again (the old temporary server is
        # killed first) and it completes.
        rds.restore_db_instance_to_point_in_time(SourceDBInstanceIdentifier="ps", TargetDBInstanceIdentifier="pk",
                                                 UseLatestRestorableTime=True)
        pid = temp_server("pk")
        region.kill9()
        region.extra_env = {}
        region.restart()
        d = wait_serving(region, "pk")
        self.assertEqual(rows(d["Endpoint"]["Address"]), set(range(1, 51)))
        self.assertFalse(harness.pid_alive(pid))
        self.assertIn("Restored from DB instance ps to pk", event_messages(region, "pk"))


if __name__ == "__main__":
    unittest.main()

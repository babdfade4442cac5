"""RDS manual snapshots (issue 10, items 5 and 6): CreateDBSnapshot of a Multi-AZ instance under writes (taken
from the standby: the primary keeps committing), its backup in the store with a manifest whose checksum verifies
and which a mariadbd of our own serves with the rows committed before it began, PercentProgress moving (automated
backups too) and the instance backing-up meanwhile, events 0040/0042; a snapshot interrupted by a kill -9 of the
region server taken again; DescribeDBSnapshots with manual ones; CopyDBSnapshot (a real copy, checked) and
DeleteDBSnapshot; the final snapshot of DeleteDBInstance, there after the instance is gone; a Single-AZ instance's
snapshot (of its primary) surviving SkipFinalSnapshot; and RDS's errors, each changing nothing. Driven with the aws CLI v1 and v2, boto3 and
PyMySQL. (Short names: the servers' socket paths include them.)
"""

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.append("/usr/lib/python3/dist-packages")

import harness  # noqa: E402
import pymysql  # noqa: E402
from harness import Region, wait_until  # noqa: E402
from test_rds import DB, SEED_CREATE, connect, describe, wait_available  # noqa: E402


def tree_sha256(folder):
    """The backup store's checksum of a data/ folder (db_backups.h ChecksumTree): over every regular file in
    path order, its relative path, its bytes and its size."""
    files = []
    for root, _, names in os.walk(folder):
        for n in names:
            p = os.path.join(root, n)
            if os.path.isfile(p) and not os.path.islink(p):
                files.append(os.path.relpath(p, folder))
    h, size = hashlib.sha256(), 0
    for rel in sorted(files, key=lambda s: s.encode()):
        h.update(rel.encode() + b"\0")
        n = 0
        with open(os.path.join(folder, rel), "rb") as f:
            while True:
                chunk = f.read(1 << 20)
                if not chunk:
                    break
                h.update(chunk)
                n += len(chunk)
        h.update(b"\0" + str(n).encode() + b"\0")
        size += n
    return h.hexdigest(), size, len(files)


def snapshots(region, **kw):
    pages = region.boto3("rds").get_paginator("describe_db_snapshots").paginate(**kw)
    return [s for page in pages for s in page["DBSnapshots"]]


def snapshot(region, sid):
    return region.boto3("rds").describe_db_snapshots(DBSnapshotIdentifier=sid)["DBSnapshots"][0]


def events(region, source_type, source_id):
    pages = region.boto3("rds").get_paginator("describe_events").paginate(
        SourceType=source_type, SourceIdentifier=source_id, Duration=60)
    return [e for page in pages for e in page["Events"]]


def error_code(fn):
    try:
        fn()
    except Exception as e:  # noqa: BLE001 - botocore's ClientError or the CLI's
        code = getattr(e, "code", None) or getattr(e, "response", {}).get("Error", {}).get("Code")
        return code
    raise AssertionError("the call succeeded")


class TimedWriter:
    """Commits one row at a time through the endpoint, recording each commit's end time and latency."""

    def __init__(self, address, table):
        self.address, self.table = address, table
        self.commits = []  # (monotonic end, latency s)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self):
        self._thread.start()
        wait_until(lambda: len(self.commits) >= 20, 20, 0.05, "the writer to get going")
        return self

    def stop(self):
        self._stop.set()
        self._thread.join(30)

    def _run(self):
        conn, n = None, 0
        deadline = time.monotonic() + 300  # bounded whatever happens
        while not self._stop.is_set() and time.monotonic() < deadline:
            try:
                if conn is None:
                    conn = connect(self.address)
                n += 1
                t0 = time.monotonic()
                with conn.cursor() as c:
                    c.execute("INSERT INTO app.%s (id) VALUES (%%s)" % self.table, (n,))
                t1 = time.monotonic()
                self.commits.append((t1, t1 - t0))
            except Exception:  # noqa: BLE001 - reconnect and go on
                conn = None
                time.sleep(0.01)


class SnapTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.region = Region.for_class(cls)
        cls.region.cli_v1(*SEED_CREATE)
        cls.db = wait_available(cls.region, timeout=120)
        cls.address = cls.db["Endpoint"]["Address"]
        cls.store = os.path.join(cls.region.data_dir, "rds-backups", cls.db["DbiResourceId"])
        with connect(cls.address) as c, c.cursor() as cur:
            cur.execute("CREATE DATABASE IF NOT EXISTS app")
            cur.execute("CREATE TABLE app.w (id INT PRIMARY KEY)")
            # Some bulk, so that a backup takes long enough for its progress to be seen.
            cur.execute("CREATE TABLE app.bulk (id INT AUTO_INCREMENT PRIMARY KEY, v LONGBLOB)")
            cur.execute("INSERT INTO app.bulk (v) VALUES (REPEAT('x', 1000000))")
            for _ in range(6):
                cur.execute("INSERT INTO app.bulk (v) SELECT v FROM app.bulk")
        wait_available(cls.region)

    def manifest(self, sid):
        with open(os.path.join(self.store, "backups", sid, "manifest.json")) as f:
            return json.load(f)

    def assert_verifies(self, sid):
        m = self.manifest(sid)
        digest, size, count = tree_sha256(os.path.join(self.store, "backups", sid, "data"))
        self.assertEqual((digest, size, count), (m["Sha256"], m["SizeBytes"], m["FileCount"]), sid)
        return m

    # ---- tests (named so they run in this order) ----

    def test_0_auto(self):
        """PercentProgress of an automated backup moves too (backups off and on again: a new first backup)."""
        rds = self.region.boto3("rds")
        rds.modify_db_instance(DBInstanceIdentifier=DB, BackupRetentionPeriod=0, ApplyImmediately=True)
        wait_until(lambda: snapshots(self.region, SnapshotType="automated") == []
                   and "LatestRestorableTime" not in describe(self.region), 60, 0.1, "automated backups off")
        rds.modify_db_instance(DBInstanceIdentifier=DB, BackupRetentionPeriod=1, ApplyImmediately=True)
        progress = []
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            found = snapshots(self.region, SnapshotType="automated")
            if found:
                if not progress or progress[-1] != found[0]["PercentProgress"]:
                    progress.append(found[0]["PercentProgress"])
                if found[0]["Status"] == "available":
                    break
            time.sleep(0.02)
        harness.log("automated backup PercentProgress seen: %s" % progress)
        self.assertEqual(progress[-1], 100)
        self.assertEqual(progress, sorted(progress))
        self.assertTrue([p for p in progress if 0 < p < 100], progress)
        wait_available(self.region)

    def test_1_snap(self):
        """A snapshot of the Multi-AZ instance while the primary commits."""
        writer = TimedWriter(self.address, "w").start()
        try:
            rds = self.region.boto3("rds")
            t_start = time.monotonic()
            type(self).acked_before = len(writer.commits)
            created = rds.create_db_snapshot(DBInstanceIdentifier=DB, DBSnapshotIdentifier="Snap-One",
                                             Tags=[{"Key": "team", "Value": "db"}])["DBSnapshot"]
            progress, statuses, second = [created["PercentProgress"]], [], None
            deadline = time.monotonic() + 180
            while time.monotonic() < deadline:
                s = snapshot(self.region, "snap-one")
                if second is None:
                    # One at a time: the instance is not available while it is backing up.
                    second = error_code(lambda: rds.create_db_snapshot(DBInstanceIdentifier=DB,
                                                                       DBSnapshotIdentifier="snap-two"))
                if not progress or progress[-1] != s["PercentProgress"]:
                    progress.append(s["PercentProgress"])
                st = describe(self.region)["DBInstanceStatus"]
                if not statuses or statuses[-1] != st:
                    statuses.append(st)
                if s["Status"] == "available":
                    break
                time.sleep(0.02)
            t_end = time.monotonic()
        finally:
            writer.stop()
        harness.log("PercentProgress seen: %s; instance statuses: %s; snapshot took %.2f s"
                    % (progress, statuses, t_end - t_start))
        self.assertEqual(created["DBSnapshotIdentifier"], "snap-one")
        self.assertEqual(created["Status"], "creating")
        self.assertEqual(created["SnapshotType"], "manual")
        self.assertEqual(second, "InvalidDBInstanceState")
        self.assertEqual(progress[-1], 100)
        self.assertEqual(progress, sorted(progress))
        self.assertTrue([p for p in progress if 0 < p < 100], progress)
        self.assertEqual(statuses[0], "backing-up")
        wait_available(self.region)

        # The primary kept committing while the standby was backed up.
        during = [lat for (t, lat) in writer.commits if t_start <= t <= t_end]
        gaps = [b[0] - a[0] for a, b in zip(writer.commits, writer.commits[1:]) if t_start <= a[0] <= t_end]
        harness.log("commits during the snapshot: %d, max latency %.3f s, max gap %.3f s"
                    % (len(during), max(during or [0]), max(gaps or [0])))
        self.assertGreater(len(during), 10)

        s = snapshot(self.region, "snap-one")
        for key, value in (("DBInstanceIdentifier", DB), ("SnapshotType", "manual"), ("Engine", "mysql"),
                           ("MasterUsername", "admin"), ("Port", 3306), ("Status", "available"),
                           ("DbiResourceId", self.db["DbiResourceId"]), ("AllocatedStorage", 20),
                           ("Encrypted", False), ("SnapshotTarget", "region"), ("PercentProgress", 100)):
            self.assertEqual(s[key], value, key)
        self.assertEqual(s["TagList"], [{"Key": "team", "Value": "db"}])
        self.assertTrue(s["DBSnapshotArn"].endswith(":snapshot:snap-one"))
        for key in ("SnapshotCreateTime", "InstanceCreateTime", "OriginalSnapshotCreateTime", "EngineVersion",
                    "AvailabilityZone", "StorageType"):
            self.assertIn(key, s)

        # The backup: in the store, in the automated layout, its checksum verifying; from the standby.
        m = self.assert_verifies("snap-one")
        self.assertEqual(m["SnapshotType"], "manual")
        self.assertEqual(m["SnapshotIdentifier"], "snap-one")
        self.assertTrue(m["Gtid"])
        with connect(self.address) as c, c.cursor() as cur:
            cur.execute("SELECT @@server_id")
            primary = "s%d" % cur.fetchone()[0]
        self.assertNotEqual(m["SourceServer"], primary)

        for source_type, source in (("db-snapshot", "snap-one"), ("db-instance", DB)):
            messages = [e["Message"] for e in events(self.region, source_type, source)]
            self.assertIn("Creating manual snapshot", messages, source)
            self.assertIn("Manual snapshot created", messages, source)

        # DescribeDBSnapshots: by type, id, instance, resource id, filters; both CLIs.
        self.assertEqual([x["DBSnapshotIdentifier"] for x in snapshots(self.region, SnapshotType="manual")],
                         ["snap-one"])
        automated = snapshots(self.region, SnapshotType="automated")
        self.assertEqual(len(automated), 1)
        both = [x["DBSnapshotIdentifier"] for x in snapshots(self.region, DBInstanceIdentifier=DB)]
        self.assertEqual(sorted(both), sorted(["snap-one", automated[0]["DBSnapshotIdentifier"]]))
        v2 = self.region.cli_v2("rds", "describe-db-snapshots", "--filters", "Name=snapshot-type,Values=manual",
                                "--include-shared", "--include-public")["DBSnapshots"]
        self.assertEqual([x["DBSnapshotIdentifier"] for x in v2], ["snap-one"])
        v1 = self.region.cli_v1("rds", "describe-db-snapshots", "--db-snapshot-identifier", "SNAP-ONE")["DBSnapshots"]
        self.assertEqual(v1[0]["TagList"], [{"Key": "team", "Value": "db"}])
        self.assertEqual(len(self.region.boto3("rds").describe_db_snapshots(
            DbiResourceId=self.db["DbiResourceId"], SnapshotType="manual")["DBSnapshots"]), 1)

    def test_1c_data(self):
        """The snapshot's backup is a database on its own: a mariadbd started on a copy of it holds the rows
        committed before the snapshot began."""
        work = tempfile.mkdtemp(prefix="snapdata-", dir="/tmp")
        try:
            shutil.copytree(os.path.join(self.store, "backups", "snap-one", "data"), os.path.join(work, "d"))
            sock = os.path.join(work, "s.sock")
            argv = ["mariadbd", "--no-defaults", "--datadir=" + os.path.join(work, "d"), "--socket=" + sock,
                    "--skip-networking", "--skip-grant-tables", "--innodb-buffer-pool-size=32M",
                    "--pid-file=" + os.path.join(work, "m.pid"), "--log-error=" + os.path.join(work, "err.log")]
            if os.geteuid() == 0:
                argv.append("--user=root")
            server = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                conn = wait_until(lambda: self._socket_conn(sock), 60, 0.1, "the copy's server")
                with conn, conn.cursor() as cur:
                    cur.execute("SELECT COUNT(*), SUM(LENGTH(v)) FROM app.bulk")
                    self.assertEqual(cur.fetchone(), (64, 64 * 1000000))
                    cur.execute("SELECT COUNT(*) FROM app.w")
                    rows = cur.fetchone()[0]
                    cur.execute("SELECT MAX(id) FROM app.w")
                    self.assertEqual(cur.fetchone()[0], rows)  # ids 1..n with no hole: one writer, in order
                harness.log("the snapshot holds %d rows of app.w (%d acknowledged before it began)"
                            % (rows, self.acked_before))
                self.assertGreaterEqual(rows, self.acked_before)
            finally:
                server.terminate()  # our own child, by its pid
                server.wait(60)
        finally:
            shutil.rmtree(work, ignore_errors=True)

    @staticmethod
    def _socket_conn(sock):
        try:
            return pymysql.connect(unix_socket=sock, user="root", autocommit=True, connect_timeout=2)
        except Exception:  # noqa: BLE001 - not up yet
            return None

    def test_1b_rst(self):
        """A snapshot under way when the region server is killed is taken again by the next one."""
        self.region.boto3("rds").create_db_snapshot(DBInstanceIdentifier=DB, DBSnapshotIdentifier="snap-rst")
        wait_until(lambda: os.path.exists(os.path.join(self.store, "backups", "snap-rst", "data")), 30, 0.01,
                   "the backup under way")
        self.region.kill9()
        # The backup it ran died with it (nothing writes into the folder the next server reuses).
        target = os.path.join(self.store, "backups", "snap-rst")

        def backups_left():
            return [p for p in harness.all_pids()
                    if any(target in a for a in (harness.proc_cmdline(p) or []))]
        wait_until(lambda: backups_left() == [], 10, 0.05, "the interrupted mariadb-backup gone")
        self.region.restart()
        wait_until(lambda: snapshot(self.region, "snap-rst")["Status"] == "available", 180, 0.1, "snap-rst")
        self.assert_verifies("snap-rst")
        wait_available(self.region)
        self.region.boto3("rds").delete_db_snapshot(DBSnapshotIdentifier="snap-rst")

    def test_2_copy(self):
        """Copies (of a manual and of an automated snapshot) are real, checked copies; delete removes one."""
        rds = self.region.boto3("rds")
        out = self.region.cli_v2("rds", "copy-db-snapshot", "--source-db-snapshot-identifier", "snap-one",
                                 "--target-db-snapshot-identifier", "snap-copy", "--copy-tags")["DBSnapshot"]
        self.assertEqual(out["Status"], "creating")
        automated = snapshots(self.region, SnapshotType="automated")[0]["DBSnapshotIdentifier"]
        rds.copy_db_snapshot(SourceDBSnapshotIdentifier=automated, TargetDBSnapshotIdentifier="auto-copy")
        for sid in ("snap-copy", "auto-copy"):
            wait_until(lambda: snapshot(self.region, sid)["Status"] == "available", 120, 0.1, sid + " copied")
        c = snapshot(self.region, "snap-copy")
        self.assertEqual(c["SnapshotType"], "manual")
        self.assertEqual(c["TagList"], [{"Key": "team", "Value": "db"}])
        self.assertTrue(c["SourceDBSnapshotIdentifier"].endswith(":snapshot:snap-one"))
        self.assertEqual(c["OriginalSnapshotCreateTime"], snapshot(self.region, "snap-one")["OriginalSnapshotCreateTime"])
        self.assertEqual(snapshot(self.region, "auto-copy")["SnapshotType"], "manual")
        self.assertEqual(self.assert_verifies("snap-copy")["Sha256"], self.manifest("snap-one")["Sha256"])
        self.assertEqual(self.assert_verifies("auto-copy")["SnapshotType"], "manual")
        self.assertIn("Finished copy of snapshot snap-one from region us-west-2",
                      [e["Message"] for e in events(self.region, "db-snapshot", "snap-copy")])
        # A snapshot's tags by its ARN.
        self.region.cli_v2("rds", "add-tags-to-resource", "--resource-name", c["DBSnapshotArn"],
                           "--tags", "Key=stage,Value=copy")
        self.assertEqual(self.region.cli_v1("rds", "list-tags-for-resource", "--resource-name",
                                            c["DBSnapshotArn"])["TagList"],
                         [{"Key": "team", "Value": "db"}, {"Key": "stage", "Value": "copy"}])

        deleted = self.region.cli_v1("rds", "delete-db-snapshot", "--db-snapshot-identifier", "auto-copy")
        self.assertEqual(deleted["DBSnapshot"]["Status"], "deleted")
        self.assertEqual(error_code(lambda: snapshot(self.region, "auto-copy")), "DBSnapshotNotFound")
        wait_until(lambda: not os.path.exists(os.path.join(self.store, "backups", "auto-copy")), 30, 0.1,
                   "auto-copy's files deleted")
        self.assertTrue(os.path.exists(os.path.join(self.store, "backups", "snap-copy", "manifest.json")))

        # Through the CLIs: created with v1 (tags), deleted with v2 once available.
        made = self.region.cli_v1("rds", "create-db-snapshot", "--db-instance-identifier", DB,
                                  "--db-snapshot-identifier", "snap-cli", "--tags", "Key=via,Value=v1")["DBSnapshot"]
        self.assertEqual((made["Status"], made["TagList"]), ("creating", [{"Key": "via", "Value": "v1"}]))
        wait_until(lambda: snapshot(self.region, "snap-cli")["Status"] == "available", 120, 0.1, "snap-cli")
        self.assert_verifies("snap-cli")
        wait_available(self.region)
        out = self.region.cli_v2("rds", "delete-db-snapshot", "--db-snapshot-identifier", "snap-cli")["DBSnapshot"]
        self.assertEqual(out["Status"], "deleted")
        wait_until(lambda: not os.path.exists(os.path.join(self.store, "backups", "snap-cli")), 30, 0.1,
                   "snap-cli's files deleted")
        self.assertIn("Deleted manual snapshot", [e["Message"] for e in events(self.region, "db-snapshot", "snap-cli")])

    def test_3_errs(self):
        """RDS's errors, and nothing changes."""
        rds = self.region.boto3("rds")
        automated = snapshots(self.region, SnapshotType="automated")[0]["DBSnapshotIdentifier"]
        before = sorted((s["DBSnapshotIdentifier"], s["Status"]) for s in snapshots(self.region))
        files = sorted(os.listdir(os.path.join(self.store, "backups")))
        self.assertEqual(error_code(lambda: rds.delete_db_snapshot(DBSnapshotIdentifier=automated)),
                         "InvalidDBSnapshotState")
        self.assertEqual(error_code(lambda: rds.delete_db_snapshot(DBSnapshotIdentifier="nope")), "DBSnapshotNotFound")
        self.assertEqual(error_code(lambda: rds.create_db_snapshot(DBInstanceIdentifier=DB,
                                                                   DBSnapshotIdentifier="snap-one")),
                         "DBSnapshotAlreadyExists")
        self.assertEqual(error_code(lambda: rds.create_db_snapshot(DBInstanceIdentifier=DB,
                                                                   DBSnapshotIdentifier="1-bad")),
                         "InvalidParameterValue")
        self.assertEqual(error_code(lambda: rds.create_db_snapshot(DBInstanceIdentifier="nope",
                                                                   DBSnapshotIdentifier="fine")),
                         "DBInstanceNotFound")
        self.assertEqual(error_code(lambda: rds.copy_db_snapshot(SourceDBSnapshotIdentifier="nope",
                                                                 TargetDBSnapshotIdentifier="fine")),
                         "DBSnapshotNotFound")
        self.assertEqual(error_code(lambda: rds.copy_db_snapshot(SourceDBSnapshotIdentifier="snap-one",
                                                                 TargetDBSnapshotIdentifier="snap-copy")),
                         "DBSnapshotAlreadyExists")
        self.assertEqual(error_code(lambda: self.region.cli_v2("rds", "delete-db-snapshot", "--db-snapshot-identifier",
                                                               automated)), "InvalidDBSnapshotState")
        # DeleteDBInstance: exactly one of SkipFinalSnapshot and FinalDBSnapshotIdentifier; a name that is taken.
        self.assertEqual(error_code(lambda: rds.delete_db_instance(DBInstanceIdentifier=DB)),
                         "InvalidParameterCombination")
        self.assertEqual(error_code(lambda: rds.delete_db_instance(
            DBInstanceIdentifier=DB, SkipFinalSnapshot=True, FinalDBSnapshotIdentifier="final")),
            "InvalidParameterCombination")
        self.assertEqual(error_code(lambda: self.region.cli_v1(
            "rds", "delete-db-instance", "--db-instance-identifier", DB, "--final-db-snapshot-identifier",
            "snap-one")), "DBSnapshotAlreadyExists")
        self.assertEqual(error_code(lambda: rds.delete_db_instance(
            DBInstanceIdentifier=DB, FinalDBSnapshotIdentifier="bad--name")), "InvalidParameterValue")
        self.assertEqual(sorted((s["DBSnapshotIdentifier"], s["Status"]) for s in snapshots(self.region)), before)
        self.assertEqual(sorted(os.listdir(os.path.join(self.store, "backups"))), files)
        self.assertEqual(describe(self.region)["DBInstanceStatus"], "available")

    def test_4_final(self):
        """The final snapshot is taken before the servers stop, and outlives the instance with the manual ones."""
        automated = snapshots(self.region, SnapshotType="automated")[0]["DBSnapshotIdentifier"]
        with connect(self.address) as c, c.cursor() as cur:
            cur.execute("SELECT COUNT(*), COALESCE(MAX(id), 0) FROM app.w")
            rows_at_delete = cur.fetchone()
        out = self.region.cli_v1("rds", "delete-db-instance", "--db-instance-identifier", DB,
                                 "--final-db-snapshot-identifier", "last")["DBInstance"]
        self.assertEqual(out["DBInstanceStatus"], "deleting")
        self.assertIn(snapshot(self.region, "last")["Status"], ("creating", "available"))
        wait_until(lambda: error_code(lambda: describe(self.region)) == "DBInstanceNotFound", 180, 0.2,
                   "the instance gone")
        s = snapshot(self.region, "last")
        self.assertEqual((s["Status"], s["SnapshotType"], s["DBInstanceIdentifier"]), ("available", "manual", DB))
        m = self.assert_verifies("last")
        self.assertTrue(m["Gtid"])
        # Created before the instance was deleted.
        created = [e["Date"] for e in events(self.region, "db-snapshot", "last") if e["Message"] == "Manual snapshot created"]
        gone = [e["Date"] for e in events(self.region, "db-instance", DB) if e["Message"] == "DB instance deleted"]
        self.assertLessEqual(created[0], gone[0])
        # The automated backup went with the instance; the manual ones (and their files) stay.
        wait_until(lambda: snapshots(self.region, SnapshotType="automated") == [], 30, 0.2, "automated deleted")
        wait_until(lambda: not os.path.exists(os.path.join(self.store, "binlogs")), 30, 0.2, "the archive deleted")
        self.assertFalse(os.path.exists(os.path.join(self.store, "backups", automated.replace(":", "_"))))
        self.assertEqual(sorted(x["DBSnapshotIdentifier"] for x in snapshots(self.region, SnapshotType="manual")),
                         ["last", "snap-copy", "snap-one"])
        for sid in ("snap-one", "snap-copy"):
            self.assert_verifies(sid)
        # The final snapshot restores (the instance it came from is gone) with every row it had.
        self.region.cli_v2("rds", "restore-db-instance-from-db-snapshot", "--db-instance-identifier", "back",
                           "--db-snapshot-identifier", "last")
        back = wait_until(lambda: (lambda d: d if d["DBInstanceStatus"] == "available" else None)(
            self.region.boto3("rds").describe_db_instances(DBInstanceIdentifier="back")["DBInstances"][0]),
            180, 0.2, "the restore from the final snapshot")
        with connect(back["Endpoint"]["Address"]) as c, c.cursor() as cur:
            cur.execute("SELECT COUNT(*), COALESCE(MAX(id), 0) FROM app.w")
            self.assertEqual(cur.fetchone(), rows_at_delete)
        self.region.cli_v1("rds", "delete-db-instance", "--db-instance-identifier", "back", "--skip-final-snapshot",
                           "--delete-automated-backups")
        wait_until(lambda: error_code(lambda: self.region.boto3("rds").describe_db_instances(
            DBInstanceIdentifier="back")) == "DBInstanceNotFound", 120, 0.2, "the restored instance gone")
        # Deleting the last of them takes the store with it.
        for sid in ("snap-one", "snap-copy", "last"):
            self.region.boto3("rds").delete_db_snapshot(DBSnapshotIdentifier=sid)
        wait_until(lambda: not os.path.exists(self.store), 30, 0.2, "the store deleted")
        self.assertEqual(snapshots(self.region), [])

    def test_5_solo(self):
        """Single-AZ, no automated backups: the snapshot is of the primary, and survives SkipFinalSnapshot."""
        rds = self.region.boto3("rds")
        rds.create_db_instance(DBInstanceIdentifier="solo", DBInstanceClass="db.t3.micro", Engine="mysql",
                               AllocatedStorage=20, MasterUsername="admin", MasterUserPassword="password1",
                               BackupRetentionPeriod=0)
        d = wait_available(self.region, "solo", timeout=120)
        store = os.path.join(self.region.data_dir, "rds-backups", d["DbiResourceId"])
        made = self.region.cli_v2("rds", "create-db-snapshot", "--db-instance-identifier", "solo",
                                  "--db-snapshot-identifier", "solo-snap")["DBSnapshot"]
        self.assertEqual(made["Status"], "creating")
        wait_until(lambda: snapshot(self.region, "solo-snap")["Status"] == "available", 120, 0.1, "solo-snap")
        with open(os.path.join(store, "backups", "solo-snap", "manifest.json")) as f:
            m = json.load(f)
        self.assertEqual(m["SourceServer"], "s1")  # the only server: the primary
        self.assertEqual(tree_sha256(os.path.join(store, "backups", "solo-snap", "data"))[0], m["Sha256"])
        wait_available(self.region, "solo")
        rds.delete_db_instance(DBInstanceIdentifier="solo", SkipFinalSnapshot=True)
        wait_until(lambda: not os.path.exists(os.path.join(self.region.data_dir, "rds", "solo")), 60, 0.2,
                   "solo deleted")
        self.assertEqual(snapshot(self.region, "solo-snap")["Status"], "available")
        self.assertEqual(tree_sha256(os.path.join(store, "backups", "solo-snap", "data"))[0], m["Sha256"])
        rds.delete_db_snapshot(DBSnapshotIdentifier="solo-snap")
        wait_until(lambda: not os.path.exists(store), 30, 0.2, "solo's store deleted")


if __name__ == "__main__":
    unittest.main()

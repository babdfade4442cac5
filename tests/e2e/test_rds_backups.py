"""RDS automated backups and binary-log archiving (issue 10, part 1): the seed's create-db-instance and
`modify-db-instance --backup-retention-period 7` as written, the backup at creation (events 0001/0002/0091, an
automated snapshot in DescribeDBSnapshots, its manifest in the backup store), LatestRestorableTime trailing now
by about a second under writes, and an archive that holds every acknowledged transaction across a kill -9
failover (read back with mariadb-binlog).
"""

import datetime
import glob
import json
import os
import re
import signal
import subprocess
import time
import unittest

import harness
from harness import Region, wait_until
from test_rds import (DB, SEED_CREATE, SEED_MODIFY, FAILOVER_DONE, Writer, connect, describe, event_messages,
                      wait_available)


def now_utc():
    return datetime.datetime.now(datetime.timezone.utc)


def automated_snapshots(region, db=DB):
    pages = region.boto3("rds").get_paginator("describe_db_snapshots").paginate(
        DBInstanceIdentifier=db, SnapshotType="automated")
    return [s for page in pages for s in page["DBSnapshots"]]


def events(region, source_type, source_id):
    pages = region.boto3("rds").get_paginator("describe_events").paginate(
        SourceType=source_type, SourceIdentifier=source_id, Duration=60)
    return [e for page in pages for e in page["Events"]]


def archived_inserts(files, table):
    """The ids of every row inserted into app.<table> in the given binlog files (mariadb-binlog -v decodes
    ROW events as '### INSERT INTO `app`.`t`' followed by '###   @1=<id>')."""
    ids, in_insert = set(), False
    lines = []
    for f in files:  # one at a time: a file cut short by its server's death ends mariadb-binlog's run
        out = subprocess.run(["mariadb-binlog", "--no-defaults", "-v", f], capture_output=True, text=True,
                             timeout=120)
        lines += out.stdout.splitlines()
    for line in lines:
        if line.startswith("### INSERT INTO"):
            in_insert = ("`app`.`%s`" % table) in line
        elif in_insert:
            m = re.match(r"###\s+@1=(\d+)", line)
            if m:
                ids.add(int(m.group(1)))
                in_insert = False
    return ids


class RdsBackupsTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.region = Region.for_class(cls)
        created = cls.region.cli_v1(*SEED_CREATE)["DBInstance"]
        # Every status seen on the way, and when available was first seen.
        cls.statuses = [created["DBInstanceStatus"]]
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            d = describe(cls.region)
            if not cls.statuses or cls.statuses[-1] != d["DBInstanceStatus"]:
                cls.statuses.append(d["DBInstanceStatus"])
            if d["DBInstanceStatus"] == "available":
                cls.available_at = now_utc()
                break
            time.sleep(0.05)
        cls.db = wait_available(cls.region)
        cls.address = cls.db["Endpoint"]["Address"]
        cls.store = os.path.join(cls.region.data_dir, "rds-backups", cls.db["DbiResourceId"])
        with connect(cls.address) as c, c.cursor() as cur:
            cur.execute("CREATE DATABASE IF NOT EXISTS app")

    def new_table(self, name):
        with connect(self.address) as c, c.cursor() as cur:
            cur.execute("CREATE TABLE app.%s (id INT PRIMARY KEY)" % name)

    def lag(self):
        d = describe(self.region)
        self.assertIn("LatestRestorableTime", d)
        return (now_utc() - d["LatestRestorableTime"]).total_seconds()

    # ---- tests (named so they run in this order) ----

    def test_1_backup_at_creation(self):
        harness.log("statuses while creating: %s" % self.statuses)
        self.assertEqual(self.statuses[0], "creating")
        self.assertEqual(self.statuses[-1], "available")
        self.assertNotIn("modifying", self.statuses)
        messages = event_messages(self.region)
        for m in ("DB instance created", "Backing up DB instance", "Finished DB instance backup"):
            self.assertIn(m, messages)
        # creating -> backing-up -> available: the instance was never available before its first backup ended.
        finished = [e for e in events(self.region, "db-instance", DB) if e["Message"] == "Finished DB instance backup"]
        self.assertLessEqual(finished[0]["Date"], self.available_at + datetime.timedelta(seconds=1))
        created = [e for e in events(self.region, "db-instance", DB) if e["Message"] == "DB instance created"]
        self.assertLessEqual(created[0]["Date"], finished[0]["Date"])

        snaps = automated_snapshots(self.region)
        self.assertEqual(len(snaps), 1, snaps)
        s = snaps[0]
        self.assertRegex(s["DBSnapshotIdentifier"], r"^rds:auto-pipeline-db-\d{4}-\d\d-\d\d-\d\d-\d\d$")
        self.assertEqual(s["SnapshotType"], "automated")
        self.assertEqual(s["Status"], "available")
        self.assertEqual(s["PercentProgress"], 100)
        self.assertEqual(s["DBInstanceIdentifier"], DB)
        self.assertEqual(s["Engine"], "mysql")
        self.assertEqual(s["MasterUsername"], "admin")
        self.assertEqual(s["Port"], 3306)
        self.assertEqual(s["DbiResourceId"], self.db["DbiResourceId"])
        self.assertTrue(s["DBSnapshotArn"].endswith(":snapshot:" + s["DBSnapshotIdentifier"]))
        self.assertEqual(s["SnapshotCreateTime"].strftime("%Y-%m-%d-%H-%M"), s["DBSnapshotIdentifier"][-16:])
        self.assertIn("Automated snapshot created",
                      [e["Message"] for e in events(self.region, "db-snapshot", s["DBSnapshotIdentifier"])])

        # By id, through both CLIs; filters; an unknown id.
        one = self.region.cli_v1("rds", "describe-db-snapshots", "--db-snapshot-identifier",
                                 s["DBSnapshotIdentifier"])["DBSnapshots"]
        self.assertEqual([x["DBSnapshotIdentifier"] for x in one], [s["DBSnapshotIdentifier"]])
        two = self.region.cli_v2("rds", "describe-db-snapshots", "--filters",
                                 "Name=db-instance-id,Values=" + DB)["DBSnapshots"]
        self.assertEqual(len(two), 1)
        self.assertEqual(self.region.boto3("rds").describe_db_snapshots(
            DBInstanceIdentifier=DB, SnapshotType="manual")["DBSnapshots"], [])
        with self.assertRaises(Exception) as e:
            self.region.boto3("rds").describe_db_snapshots(DBSnapshotIdentifier="rds:nope-2026-01-01-00-00")
        self.assertIn("DBSnapshotNotFound", str(e.exception))

        # The store: a manifest beside the backup's files, enough to restore with the instance gone.
        manifests = glob.glob(os.path.join(self.store, "backups", "*", "manifest.json"))
        self.assertEqual(len(manifests), 1)
        with open(manifests[0]) as f:
            m = json.load(f)
        self.assertEqual(m["SnapshotIdentifier"], s["DBSnapshotIdentifier"])
        for key in ("DBInstanceIdentifier", "Engine", "DBInstanceClass", "Port", "MasterUsername", "Gtid",
                    "BinlogFile", "BinlogPosition", "StartTime", "EndTime", "SizeBytes", "Sha256"):
            self.assertIn(key, m)
        self.assertRegex(m["Sha256"], r"^[0-9a-f]{64}$")
        self.assertGreater(m["SizeBytes"], 0)
        # Taken from the standby (Multi-AZ), not the primary.
        with connect(self.address) as c, c.cursor() as cur:
            cur.execute("SELECT @@server_id")
            primary_sid = cur.fetchone()[0]
        self.assertNotEqual(m["SourceServer"], "s%d" % primary_sid)

    def test_2_seed_modify_and_restorable_time_under_writes(self):
        out = self.region.cli_v2(*SEED_MODIFY)
        self.assertEqual(out["DBInstance"]["BackupRetentionPeriod"], 7)
        self.assertEqual(describe(self.region)["BackupRetentionPeriod"], 7)
        self.new_table("lrt")
        writer = Writer(self.address, "lrt").start()
        try:
            lags = []
            for _ in range(10):
                time.sleep(0.3)  # spacing the samples, not ordering anything
                lags.append(self.lag())
        finally:
            writer.stop()
        harness.log("now - LatestRestorableTime under writes: %s" % ["%.2f" % x for x in lags])
        self.assertLess(max(lags), 3.0)
        self.assertGreater(min(lags), -1.0)

        # What the store holds for the instance, and the window a restore can aim at.
        backups = self.region.boto3("rds").describe_db_instance_automated_backups(
            DBInstanceIdentifier=DB)["DBInstanceAutomatedBackups"]
        self.assertEqual(len(backups), 1)
        b = backups[0]
        self.assertEqual(b["Status"], "active")
        self.assertEqual(b["DbiResourceId"], self.db["DbiResourceId"])
        self.assertEqual(b["BackupRetentionPeriod"], 7)
        window = b["RestoreWindow"]
        self.assertLess(window["EarliestTime"], window["LatestTime"])
        self.assertLess((now_utc() - window["LatestTime"]).total_seconds(), 5)
        snap = automated_snapshots(self.region)[0]
        self.assertGreaterEqual(window["EarliestTime"], snap["SnapshotCreateTime"])
        v1 = self.region.cli_v1("rds", "describe-db-instance-automated-backups", "--dbi-resource-id",
                                self.db["DbiResourceId"])["DBInstanceAutomatedBackups"]
        self.assertEqual([x["DBInstanceIdentifier"] for x in v1], [DB])
        with self.assertRaises(Exception) as e:
            self.region.boto3("rds").describe_db_instance_automated_backups(DBInstanceIdentifier="nope")
        self.assertIn("DBInstanceAutomatedBackupNotFound", str(e.exception))

    def test_3_archive_holds_every_acked_write_across_kill9_failover(self):
        self.new_table("arch")
        failovers = event_messages(self.region).count(FAILOVER_DONE)
        writer = Writer(self.address, "arch").start()
        with connect(self.address) as c, c.cursor() as cur:
            cur.execute("SELECT @@server_id")
            sid = cur.fetchone()[0]
        with open(os.path.join(self.region.data_dir, "rds", DB, "s%d" % sid, "mysqld.pid")) as f:
            pid = int(f.read().strip())
        os.kill(pid, signal.SIGKILL)
        wait_until(lambda: event_messages(self.region).count(FAILOVER_DONE) > failovers, 60, 0.1,
                   "the failover to complete")
        writer.wait_for_more(100)
        # Right after the failover, archiving has caught up with the new primary.
        wait_until(lambda: self.lag() < 3.0, 15, 0.2, "LatestRestorableTime within 3 s of now after the failover")
        writer.stop()
        stopped = now_utc()
        wait_until(lambda: describe(self.region)["LatestRestorableTime"] > stopped, 15, 0.2,
                   "LatestRestorableTime past the writer's last write")
        segments = sorted(glob.glob(os.path.join(self.store, "binlogs", "*", "segment.json")))
        self.assertGreaterEqual(len(segments), 2, "no new archive segment after the failover")
        with open(max(segments, key=os.path.getmtime)) as f:
            segment = json.load(f)
        harness.log("archive segment after the failover: %s" % segment)
        # Started from the new primary's file holding the first GTID the old primary's archive did not have.
        self.assertNotEqual(segment["Previous"], "")
        self.assertRegex(segment["PreviousLastGtid"], r"^\d+-\d+-\d+$")
        files = sorted(f for f in glob.glob(os.path.join(self.store, "binlogs", "*", "*"))
                       if not f.endswith(".json"))
        have = archived_inserts(files, "arch")
        lost = set(writer.acked) - have
        harness.log("archive: %d files, %d acked, %d archived" % (len(files), len(writer.acked), len(have)))
        self.assertEqual(lost, set(), "%d acknowledged writes missing from the archive" % len(lost))

    def test_3b_archiving_survives_a_region_server_restart(self):
        self.new_table("restart")
        writer = Writer(self.address, "restart").start()
        archivers = [p for p in harness.data_dir_processes(self.region.data_dir) if "mariadb-binlog" in p[1]]
        self.assertEqual(len(archivers), 1, archivers)
        self.region.kill9()
        self.region.restart()
        restarted = now_utc()
        wait_until(lambda: describe(self.region)["LatestRestorableTime"] > restarted, 30, 0.2,
                   "LatestRestorableTime advancing after the restart")
        writer.wait_for_more(50)
        writer.stop()
        stopped = now_utc()
        wait_until(lambda: describe(self.region)["LatestRestorableTime"] > stopped, 15, 0.2,
                   "LatestRestorableTime past the writer's last write")
        # The same archiver, adopted by the new server process (nothing restarted, nothing fetched twice).
        after = [p for p in harness.data_dir_processes(self.region.data_dir) if "mariadb-binlog" in p[1]]
        self.assertEqual([p[0] for p in after], [p[0] for p in archivers])
        files = sorted(f for f in glob.glob(os.path.join(self.store, "binlogs", "*", "*"))
                       if not f.endswith(".json"))
        lost = set(writer.acked) - archived_inserts(files, "restart")
        self.assertEqual(lost, set(), "%d acknowledged writes missing from the archive" % len(lost))

    def test_3c_daily_backup_in_the_backup_window(self):
        wait_available(self.region)
        first = automated_snapshots(self.region)
        self.assertEqual(len(first), 1)
        # A window opening this very minute, which must come after the creation backup's minute (a window in
        # which a backup already started takes none): wait for the wall clock's next minute if need be.
        created_minute = first[0]["SnapshotCreateTime"].replace(second=0, microsecond=0)
        wait_until(lambda: now_utc().replace(second=0, microsecond=0) > created_minute, 65, 0.5,
                   "a minute after the creation backup's")
        start = now_utc().replace(second=0, microsecond=0)
        if (now_utc() - start).total_seconds() > 50:  # too close to the minute's end to be sure: take the next
            wait_until(lambda: now_utc().replace(second=0, microsecond=0) > start, 15, 0.5, "the next minute")
            start = now_utc().replace(second=0, microsecond=0)
        end = start + datetime.timedelta(minutes=30)
        maintenance = start + datetime.timedelta(hours=12)
        window = "%s-%s" % (start.strftime("%H:%M"), end.strftime("%H:%M"))
        self.region.cli_v2("rds", "modify-db-instance", "--db-instance-identifier", DB,
                           "--preferred-backup-window", window,
                           "--preferred-maintenance-window", "%s-%s" % (
                               maintenance.strftime("%a:%H:%M").lower(),
                               (maintenance + datetime.timedelta(minutes=30)).strftime("%a:%H:%M").lower()))
        expected = "rds:%s-%s" % (DB, start.strftime("%Y-%m-%d-%H-%M"))
        wait_until(lambda: expected in [x["DBSnapshotIdentifier"] for x in automated_snapshots(self.region)
                                        if x["Status"] == "available"], 30, 0.2, "the daily backup " + expected)
        self.assertEqual(len(automated_snapshots(self.region)), 2)
        self.assertEqual(event_messages(self.region).count("Finished DB instance backup"), 2)
        self.assertIn("Automated snapshot created",
                      [e["Message"] for e in events(self.region, "db-snapshot", expected)])
        # One per window: no other backup follows in this one.
        wait_available(self.region)
        self.assertEqual(len(automated_snapshots(self.region)), 2)

    def test_4_retention_zero_deletes_automated_backups(self):
        wait_available(self.region)
        self.region.boto3("rds").modify_db_instance(DBInstanceIdentifier=DB, BackupRetentionPeriod=0,
                                                    ApplyImmediately=True)
        wait_until(lambda: automated_snapshots(self.region) == [], 30, 0.2, "the automated snapshots deleted")
        wait_until(lambda: glob.glob(os.path.join(self.store, "backups", "*")) == [], 10, 0.2,
                   "the backups deleted from the store")
        wait_until(lambda: not [p for p in harness.data_dir_processes(self.region.data_dir)
                                if "mariadb-binlog" in p[1]], 15, 0.2, "the archiver stopped")
        self.assertNotIn("LatestRestorableTime", describe(self.region))


class RdsBackupsDeleteTest(unittest.TestCase):

    def test_keep(self):
        """Delete keeps automated backups only when asked (DeleteAutomatedBackups=false). (A short name: the
        servers' socket paths include it and must stay under 108 characters.)"""
        region = Region.for_test(self)
        rds = region.boto3("rds")
        for name in ("kept", "dropped"):
            rds.create_db_instance(DBInstanceIdentifier=name, DBInstanceClass="db.t3.micro", Engine="mysql",
                                   AllocatedStorage=20, MasterUsername="admin", MasterUserPassword="password1",
                                   BackupRetentionPeriod=3)
        stores = {}
        for name in ("kept", "dropped"):
            d = wait_available(region, name)
            stores[name] = os.path.join(region.data_dir, "rds-backups", d["DbiResourceId"])
            self.assertEqual(len(automated_snapshots(region, name)), 1)
            self.assertEqual(len(glob.glob(os.path.join(stores[name], "backups", "*", "manifest.json"))), 1)
        rds.delete_db_instance(DBInstanceIdentifier="kept", SkipFinalSnapshot=True, DeleteAutomatedBackups=False)
        rds.delete_db_instance(DBInstanceIdentifier="dropped", SkipFinalSnapshot=True)
        for name in ("kept", "dropped"):
            wait_until(lambda: not os.path.exists(os.path.join(region.data_dir, "rds", name)), 30, 0.2,
                       "%s deleted" % name)
        wait_until(lambda: automated_snapshots(region, "dropped") == [], 15, 0.2, "dropped's backups deleted")
        wait_until(lambda: not os.path.exists(stores["dropped"]), 15, 0.2, "dropped's backup store deleted")
        # Kept: the snapshot, the store (a manifest whose checksum still matches) and the automated backup.
        kept = automated_snapshots(region, "kept")
        self.assertEqual(len(kept), 1)
        self.assertEqual(len(glob.glob(os.path.join(stores["kept"], "backups", "*", "manifest.json"))), 1)
        self.assertTrue(glob.glob(os.path.join(stores["kept"], "binlogs", "s1", "db-bin.*")))
        backups = rds.describe_db_instance_automated_backups(DBInstanceIdentifier="kept")["DBInstanceAutomatedBackups"]
        self.assertEqual([b["Status"] for b in backups], ["retained"])
        self.assertIn("EarliestTime", backups[0]["RestoreWindow"])
        # Nothing of either instance runs any more (the archivers stopped with them).
        self.assertEqual(harness.data_dir_processes(region.data_dir), [])

    def test_solo(self):
        """A Single-AZ primary killed and restarted in place: archiving resumes and misses no acknowledged write."""
        region = Region.for_test(self)
        region.boto3("rds").create_db_instance(DBInstanceIdentifier="solo", DBInstanceClass="db.t3.micro",
                                               Engine="mysql", AllocatedStorage=20, MasterUsername="admin",
                                               MasterUserPassword="password", BackupRetentionPeriod=1)
        d = wait_available(region, "solo")
        store = os.path.join(region.data_dir, "rds-backups", d["DbiResourceId"])
        with connect(d["Endpoint"]["Address"]) as c, c.cursor() as cur:
            cur.execute("CREATE DATABASE app")
            cur.execute("CREATE TABLE app.solo (id INT PRIMARY KEY)")
        restarts = event_messages(region, "solo").count("DB instance restarted")
        writer = Writer(d["Endpoint"]["Address"], "solo").start()
        with open(os.path.join(region.data_dir, "rds", "solo", "s1", "mysqld.pid")) as f:
            os.kill(int(f.read().strip()), signal.SIGKILL)
        wait_until(lambda: event_messages(region, "solo").count("DB instance restarted") > restarts, 30, 0.1,
                   "the primary restarted in place")
        writer.wait_for_more(100)
        writer.stop()
        stopped = now_utc()
        wait_until(lambda: describe(region, "solo").get("LatestRestorableTime", stopped) > stopped, 15, 0.2,
                   "LatestRestorableTime past the writer's last write")
        files = sorted(glob.glob(os.path.join(store, "binlogs", "s1", "db-bin.*")))
        self.assertGreaterEqual(len(files), 2, "the restarted server's new binlog file is not archived")
        lost = set(writer.acked) - archived_inserts(files, "solo")
        harness.log("solo: %d acked, %d archive files" % (len(writer.acked), len(files)))
        self.assertEqual(lost, set(), "%d acknowledged writes missing from the archive" % len(lost))


if __name__ == "__main__":
    unittest.main()

"""RDS Multi-AZ on real MariaDB (issue 9): the seed's create-db-instance and modify-db-instance as written, a
MySQL client through the endpoint, and failovers (kill -9, SIGSTOP, forced, and a server killed at each step of
one) that lose no acknowledged write.
"""

import json
import os
import signal
import sys
import threading
import time
import unittest

import harness
from harness import Region, wait_until

sys.path.append("/usr/lib/python3/dist-packages")  # Debian's python3-pymysql
import pymysql  # noqa: E402

DB = "auto-pipeline-db"
MASTER_PASSWORD = "password"  # the seed's
SEED_CREATE = ["rds", "create-db-instance",
               "--db-instance-identifier", "auto-pipeline-db",
               "--db-instance-class", "db.t3.medium",
               "--engine", "mysql",
               "--allocated-storage", "20",
               "--multi-az",
               "--master-username", "admin",
               "--master-user-password", "password",
               "--vpc-security-group-ids", "sg-12345678"]
SEED_MODIFY = ["rds", "modify-db-instance", "--db-instance-identifier", "auto-pipeline-db",
               "--backup-retention-period", "7"]


def describe(region, db=DB):
    return region.boto3("rds").describe_db_instances(DBInstanceIdentifier=db)["DBInstances"][0]


def wait_available(region, db=DB, timeout=60):
    return wait_until(lambda: (lambda d: d if d["DBInstanceStatus"] == "available" else None)(describe(region, db)),
                      timeout, 0.2, "%s available" % db)


def connect(address, port=3306, timeout=5):
    return pymysql.connect(host=address, port=port, user="admin", password=MASTER_PASSWORD, autocommit=True,
                           connect_timeout=timeout, read_timeout=timeout, write_timeout=timeout)


def event_messages(region, db=DB):
    pages = region.boto3("rds").get_paginator("describe_events").paginate(
        SourceType="db-instance", SourceIdentifier=db, Duration=60)
    return [e["Message"] for page in pages for e in page["Events"]]


FAILOVER_DONE = "Multi-AZ instance failover completed"


class Writer:
    """Inserts unique ids through the endpoint with autocommit, reconnecting on any error, and records which
    inserts the server acknowledged."""

    def __init__(self, address, table):
        self.address, self.table = address, table
        self.acked = []
        self.errors = 0
        self.first_error = None
        self.resumed = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self):
        self._thread.start()
        wait_until(lambda: len(self.acked) >= 20, 20, 0.05, "the writer to get going")
        return self

    def stop(self):
        self._stop.set()
        self._thread.join(30)

    def _run(self):
        conn, n = None, 0
        deadline = time.monotonic() + 120  # bounded whatever happens
        while not self._stop.is_set() and time.monotonic() < deadline:
            try:
                if conn is None:
                    conn = connect(self.address)
                n += 1
                with conn.cursor() as c:
                    c.execute("INSERT INTO app.%s (id) VALUES (%%s)" % self.table, (n,))
                self.acked.append(n)
                if self.first_error and not self.resumed:
                    self.resumed = time.monotonic()
            except Exception:  # noqa: BLE001 - any failure: reconnect and go on
                self.errors += 1
                if self.first_error is None:
                    self.first_error = time.monotonic()
                try:
                    conn.close()
                except Exception:  # noqa: BLE001
                    pass
                conn = None
                time.sleep(0.005)

    def wait_for_more(self, count=50, timeout=30):
        target = len(self.acked) + count
        wait_until(lambda: len(self.acked) >= target, timeout, 0.05, "%d more acknowledged writes" % count)


class RdsTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.region = Region.for_class(cls)
        out = cls.region.cli_v1(*SEED_CREATE)
        cls.created = out["DBInstance"]
        cls.db = wait_available(cls.region)
        cls.address = cls.db["Endpoint"]["Address"]
        with connect(cls.address) as c, c.cursor() as cur:
            cur.execute("CREATE DATABASE IF NOT EXISTS app")

    # ---- helpers ----

    def server_dir(self, server_id):
        return os.path.join(self.region.data_dir, "rds", DB, "s%d" % server_id)

    def primary_server(self):
        """The server the endpoint leads to now, by its server id (each server's folder is s<id>)."""
        with connect(self.address) as c, c.cursor() as cur:
            cur.execute("SELECT @@server_id, @@read_only")
            sid, ro = cur.fetchone()
        self.assertEqual(ro, 0, "the endpoint led to a read-only server")
        with open(os.path.join(self.server_dir(sid), "mysqld.pid")) as f:
            return sid, int(f.read().strip())

    def new_table(self, name):
        with connect(self.address) as c, c.cursor() as cur:
            cur.execute("CREATE TABLE app.%s (id INT PRIMARY KEY)" % name)

    def assert_nothing_lost(self, writer, table):
        with connect(self.address) as c, c.cursor() as cur:
            cur.execute("SELECT id FROM app.%s" % table)
            have = {r[0] for r in cur.fetchall()}
        lost = set(writer.acked) - have
        self.assertEqual(lost, set(), "%d acknowledged writes lost" % len(lost))
        harness.log("%s: %d acknowledged, %d errors, gap %.0f ms" % (
            table, len(writer.acked), writer.errors,
            (writer.resumed - writer.first_error) * 1000 if writer.resumed and writer.first_error else -1))

    def semi_sync_clients(self):
        try:
            with connect(self.address, timeout=2) as c, c.cursor() as cur:
                cur.execute("SHOW GLOBAL STATUS WHERE Variable_name IN "
                            "('Rpl_semi_sync_master_status', 'Rpl_semi_sync_master_clients')")
                st = dict(cur.fetchall())
        except pymysql.err.OperationalError:
            return 0
        return int(st.get("Rpl_semi_sync_master_clients", 0)) if st.get("Rpl_semi_sync_master_status") == "ON" else 0

    def wait_multi_az_again(self, old_primary_az):
        """Until a standby in the old primary's AZ really replicates semi-synchronously again."""
        def ready():
            d = describe(self.region)
            return d if (d["DBInstanceStatus"] == "available" and d["MultiAZ"]
                         and d.get("SecondaryAvailabilityZone") == old_primary_az
                         and self.semi_sync_clients() >= 1) else None
        return wait_until(ready, 90, 0.2, "the standby rebuilt in %s" % old_primary_az)

    def fail_over_by(self, table, act):
        before = describe(self.region)
        self.assertGreaterEqual(self.semi_sync_clients(), 1, "no synchronous standby before the failover")
        failovers = event_messages(self.region).count(FAILOVER_DONE)
        self.new_table(table)
        writer = Writer(self.address, table).start()
        sid, pid = self.primary_server()
        act(pid)
        wait_until(lambda: event_messages(self.region).count(FAILOVER_DONE) > failovers, 60, 0.1,
                   "the failover to complete")
        writer.wait_for_more()
        writer.stop()
        self.assert_nothing_lost(writer, table)
        new_sid, _ = self.primary_server()
        self.assertNotEqual(new_sid, sid, "the endpoint still leads to the old primary")
        after = self.wait_multi_az_again(before["AvailabilityZone"])
        self.assertEqual(after["AvailabilityZone"], before["SecondaryAvailabilityZone"])
        return writer

    # ---- tests (named so they run in this order) ----

    def test_1_seed_create_is_multi_az_and_serves(self):
        self.assertEqual(self.created["DBInstanceStatus"], "creating")
        self.assertTrue(self.db["MultiAZ"])
        self.assertNotEqual(self.db["AvailabilityZone"], self.db["SecondaryAvailabilityZone"])
        self.assertEqual(self.db["Endpoint"]["Port"], 3306)
        self.assertIn("DB instance created", event_messages(self.region))
        # A real server behind the endpoint, writable, with the seed's master user.
        with connect(self.address) as c, c.cursor() as cur:
            cur.execute("SELECT CURRENT_USER(), @@read_only, VERSION()")
            user, ro, version = cur.fetchone()
        self.assertTrue(user.startswith("admin@"))
        self.assertEqual(ro, 0)
        self.assertIn("MariaDB", version)
        # The standby really replicates, semi-synchronously, and is not what the endpoint serves.
        sid, _ = self.primary_server()
        standby_sid = 3 - sid if sid in (1, 2) else None
        self.assertIsNotNone(standby_sid)

    def test_2_seed_modify_shows_retention(self):
        out = self.region.cli_v2(*SEED_MODIFY)
        self.assertEqual(out["DBInstance"]["DBInstanceIdentifier"], DB)
        self.assertEqual(describe(self.region)["BackupRetentionPeriod"], 7)

    def test_4_kill9_of_the_primary_loses_nothing(self):
        self.fail_over_by("kill9", lambda pid: os.kill(pid, signal.SIGKILL))
        messages = event_messages(self.region)
        for m in ("Multi-AZ instance failover started",
                  "Multi-AZ failover to standby complete - DNS propagation may take a few minutes",
                  "Multi-AZ instance failover completed"):
            self.assertIn(m, messages)

    def test_5_hung_primary_fails_over(self):
        stopped = []

        def hang(pid):
            stopped.append(pid)
            os.kill(pid, signal.SIGSTOP)
        try:
            self.fail_over_by("sigstop", hang)
        finally:
            for pid in stopped:  # fenced (killed) by the failover; if not, let it go
                try:
                    os.kill(pid, signal.SIGCONT)
                except ProcessLookupError:
                    pass
        self.assertFalse(harness.pid_alive(stopped[0]), "the hung primary was not fenced")

    def test_6_forced_failover_loses_nothing(self):
        rds = self.region.boto3("rds")
        self.fail_over_by("forced", lambda pid: rds.reboot_db_instance(DBInstanceIdentifier=DB, ForceFailover=True))

    def test_7_server_killed_at_each_failover_step(self):
        for phase in ("fence", "promote", "repoint"):
            with self.subTest(phase=phase):
                table = "crash_" + phase
                before = describe(self.region)
                self.assertGreaterEqual(self.semi_sync_clients(), 1)
                self.new_table(table)
                writer = Writer(self.address, table).start()
                self.region.kill9()
                self.region.extra_env = {"AUTOPIPE_TEST_FAILOVER_STALL_AT": phase}
                self.region.restart()
                sid, pid = self.primary_server()
                os.kill(pid, signal.SIGKILL)
                log_path = os.path.join(self.region.data_dir, "server.log")
                wait_until(lambda: "failover stalled at phase " + phase in open(log_path).read(), 30, 0.05,
                           "the failover to reach " + phase)
                self.region.kill9()
                self.region.extra_env = {}
                self.region.restart()
                writer.wait_for_more(timeout=60)
                writer.stop()
                self.assert_nothing_lost(writer, table)
                self.wait_multi_az_again(before["AvailabilityZone"])
                # Exactly one writable server among the instance's servers.
                writable = 0
                for name in os.listdir(os.path.join(self.region.data_dir, "rds", DB)):
                    if not name.startswith("s"):
                        continue
                    try:
                        cnf = open(os.path.join(self.region.data_dir, "rds", DB, name, "my.cnf")).read()
                    except FileNotFoundError:
                        continue  # a fenced server's folder, being removed
                    addr = [line.split("=", 1)[1] for line in cnf.splitlines() if line.startswith("bind-address=")][0]
                    try:
                        with connect(addr, timeout=2) as c, c.cursor() as cur:
                            cur.execute("SELECT @@read_only")
                            writable += cur.fetchone()[0] == 0
                    except pymysql.err.OperationalError:
                        pass  # a fenced server that is gone
                self.assertEqual(writable, 1)

    def test_8_api_answers_during_failover(self):
        rds = self.region.boto3("rds")
        old_az = describe(self.region)["AvailabilityZone"]
        sid, pid = self.primary_server()
        os.kill(pid, signal.SIGKILL)
        slowest = 0.0
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            t = time.monotonic()
            rds.describe_db_instances()
            slowest = max(slowest, time.monotonic() - t)
        harness.log("slowest DescribeDBInstances during a failover and rebuild: %.1f ms" % (slowest * 1000))
        self.wait_multi_az_again(old_az)


SOLO_PASSWORD = "Sekr3t-Pa55-w0rd"
SOLO = {"password": SOLO_PASSWORD}  # the master password now


def connect_solo(address, timeout=5):
    return pymysql.connect(host=address, port=3306, user="admin", password=SOLO["password"], autocommit=True,
                           connect_timeout=timeout, read_timeout=timeout, write_timeout=timeout)


class RdsSingleAzTest(unittest.TestCase):

    def assert_secret_nowhere(self, region, secret):
        for pid in harness.all_pids():
            cmd = " ".join(harness.proc_cmdline(pid) or [])
            self.assertNotIn(secret, cmd, "the password is in pid %d's argv" % pid)
        for root, _, files in os.walk(region.data_dir):
            for name in files:
                if name.endswith(".log") or name.endswith(".out") or name == "server.log":
                    with open(os.path.join(root, name), "rb") as f:
                        self.assertNotIn(secret.encode(), f.read(), "the password is in " + name)
        described = json.dumps(region.boto3("rds").describe_db_instances(), default=str)
        self.assertNotIn(secret, described)
        self.assertNotIn(secret, json.dumps(event_messages(region, "solo")))

    def test_single_az_primary_restarts_in_place(self):
        region = Region.for_test(self)
        region.boto3("rds").create_db_instance(DBInstanceIdentifier="solo", DBInstanceClass="db.t3.micro",
                                               Engine="mysql", AllocatedStorage=20, MasterUsername="admin",
                                               MasterUserPassword=SOLO_PASSWORD)
        d = wait_available(region, "solo")
        self.assert_secret_nowhere(region, SOLO_PASSWORD)
        self.assertFalse(d["MultiAZ"])
        address = d["Endpoint"]["Address"]
        with connect_solo(address) as c, c.cursor() as cur:
            cur.execute("CREATE DATABASE app")
            cur.execute("CREATE TABLE app.t (id INT PRIMARY KEY)")
            cur.execute("INSERT INTO app.t VALUES (1)")
        with open(os.path.join(region.data_dir, "rds", "solo", "s1", "mysqld.pid")) as f:
            pid = int(f.read())
        os.kill(pid, signal.SIGKILL)

        def back():
            try:
                with connect_solo(address, timeout=2) as c, c.cursor() as cur:
                    cur.execute("SELECT COUNT(*), @@read_only FROM app.t")
                    return cur.fetchone() == (1, 0)
            except pymysql.err.OperationalError:
                return False
        wait_until(back, 30, 0.1, "the Single-AZ primary back in place")
        self.assertIn("DB instance restarted", event_messages(region, "solo"))

        rds = region.boto3("rds")
        # A new master password works at once; the old one no longer does.
        old_password = SOLO["password"]
        SOLO["password"] = "An0ther-Secret"
        rds.modify_db_instance(DBInstanceIdentifier="solo", MasterUserPassword=SOLO["password"],
                               ApplyImmediately=True)
        wait_until(back, 30, 0.2, "the new master password accepted")
        with self.assertRaises(pymysql.err.OperationalError):
            pymysql.connect(host=address, user="admin", password=old_password, connect_timeout=2).close()
        self.assert_secret_nowhere(region, SOLO["password"])

        # Single-AZ -> Multi-AZ online: a standby from a backup of the primary, events 0050/0051.
        rds.modify_db_instance(DBInstanceIdentifier="solo", MultiAZ=True, ApplyImmediately=True)
        d = wait_until(lambda: (lambda d: d if d["MultiAZ"] and d["DBInstanceStatus"] == "available" else None)(
            describe(region, "solo")), 60, 0.2, "solo Multi-AZ")
        self.assertNotEqual(d["AvailabilityZone"], d["SecondaryAvailabilityZone"])
        messages = event_messages(region, "solo")
        self.assertIn("Multi-AZ instance activation started", messages)
        self.assertIn("Multi-AZ instance activation completed", messages)
        wait_until(back, 10, 0.2, "the data still there")

        # Stop keeps the data and runs nothing; start brings it back.
        rds.stop_db_instance(DBInstanceIdentifier="solo")
        wait_until(lambda: describe(region, "solo")["DBInstanceStatus"] == "stopped", 30, 0.2, "solo stopped")
        self.assertEqual([p for p in harness.data_dir_processes(region.data_dir) if "mariadbd" in p[1]], [])
        rds.start_db_instance(DBInstanceIdentifier="solo")
        wait_available(region, "solo")
        wait_until(back, 30, 0.2, "the data back after start")

        # Delete: every process and file of the instance goes.
        region.boto3("rds").delete_db_instance(DBInstanceIdentifier="solo", SkipFinalSnapshot=True)
        wait_until(lambda: not os.path.exists(os.path.join(region.data_dir, "rds", "solo")), 30, 0.2,
                   "the instance's folder removed")
        self.assertEqual(harness.data_dir_processes(region.data_dir), [])


if __name__ == "__main__":
    unittest.main()

#!/usr/bin/env python3
"""A manual snapshot's effect on the primary's commit latency, beside a plain MariaDB measured in the same run.

  1. RDS, Multi-AZ (the snapshot is a mariadb-backup of the standby): commit latency of one autocommit INSERT
     through the endpoint, without a snapshot and while CreateDBSnapshot runs (--snapshots of them), p50 / p99 /
     max and the number of commits.
  2. Plain MariaDB (one mariadbd, durable: sync_binlog=1, innodb_flush_log_at_trx_commit=1, the same small
     buffer pool), same data: commit latency without a backup and while `mariadb-backup --backup` + `--prepare`
     of that same server runs (what a single server can do).

Both run at once and hold --mb MB of bulk rows, so that a backup lasts a few seconds; the rounds alternate between
them (each: a backup with the committer running, then as long again without), so that the machine's load drifts
alike for both. Everything listens on 127.0.0.0/8; the plain server's port is picked free by the kernel; every loop
is bounded; the region is always stopped and the plain server stopped by its pid.
Usage: python3 bench/rds_snapshot_bench.py [--mb 200] [--snapshots 3] [--out FILE]
"""

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "e2e"))
sys.path.append("/usr/lib/python3/dist-packages")
import harness  # noqa: E402
import pymysql  # noqa: E402

PASSWORD = "bench-Pa55word"
DB = "snapbench"


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100.0 * (len(values) - 1))))]


class Committer:
    """Commits one autocommit INSERT at a time on `conn_fn()`'s connection, recording each latency."""

    def __init__(self, conn_fn):
        self.conn_fn = conn_fn
        self.lat = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(60)

    def _run(self):
        deadline = time.monotonic() + 900
        with self.conn_fn() as c, c.cursor() as cur:
            while not self._stop.is_set() and time.monotonic() < deadline:
                t = time.perf_counter()
                cur.execute("INSERT INTO bench.w (t) VALUES (1)")
                self.lat.append(time.perf_counter() - t)


def load(conn_fn, mb):
    with conn_fn() as c, c.cursor() as cur:
        cur.execute("CREATE DATABASE IF NOT EXISTS bench")
        cur.execute("CREATE TABLE bench.w (id BIGINT AUTO_INCREMENT PRIMARY KEY, t INT)")
        cur.execute("CREATE TABLE bench.bulk (id INT AUTO_INCREMENT PRIMARY KEY, v LONGBLOB)")
        # 1 MB rows (repeats of a random MD5), eight a statement.
        for i in range(0, mb, 8):
            n = min(8, mb - i)
            cur.execute("INSERT INTO bench.bulk (v) VALUES " + ",".join(
                ["(REPEAT(MD5(RAND()), 32768))"] * n))


def row(name, lat):
    ms = lambda v: v * 1000  # noqa: E731
    return "| %s | %d | %.2f | %.2f | %.2f |" % (name, len(lat), ms(statistics.median(lat)), ms(pct(lat, 99)),
                                                 ms(max(lat)))


# ---- the two systems -----------------------------------------------------------------------------------------

class Rds:
    """A region with one Multi-AZ instance; a "backup" is CreateDBSnapshot until the snapshot is available."""

    name = "RDS Multi-AZ primary"

    def __init__(self):
        self.region = harness.Region("bench.snap")
        self.region.start()
        self.rds = self.region.boto3("rds")
        self.rds.create_db_instance(DBInstanceIdentifier=DB, DBInstanceClass="db.t3.medium", Engine="mysql",
                                    AllocatedStorage=20, MultiAZ=True, MasterUsername="admin",
                                    MasterUserPassword=PASSWORD, VpcSecurityGroupIds=["sg-12345678"])
        self.address = self.wait_available()["Endpoint"]["Address"]
        self.n = 0

    def wait_available(self):
        return harness.wait_until(lambda: (lambda d: d if d["DBInstanceStatus"] == "available" else None)(
            self.rds.describe_db_instances(DBInstanceIdentifier=DB)["DBInstances"][0]), 300, 0.1, DB + " available")

    def conn(self):
        return pymysql.connect(host=self.address, user="admin", password=PASSWORD, autocommit=True,
                               connect_timeout=10, read_timeout=60, write_timeout=60)

    def backup(self):
        self.wait_available()
        sid = "bench-%d" % self.n
        self.n += 1
        self.rds.create_db_snapshot(DBInstanceIdentifier=DB, DBSnapshotIdentifier=sid)
        harness.wait_until(lambda: self.rds.describe_db_snapshots(DBSnapshotIdentifier=sid)["DBSnapshots"][0]
                           ["Status"] == "available", 600, 0.05, sid + " available")

    def close(self):
        self.region.close()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Plain:
    """One durable mariadbd of our own; a backup is mariadb-backup --backup + --prepare of that same server."""

    name = "plain MariaDB"

    def __init__(self):
        self.work = tempfile.mkdtemp(prefix="snapbench-plain-")
        self.port = free_port()
        self.cnf = os.path.join(self.work, "my.cnf")
        with open(self.cnf, "w") as f:
            f.write("[mysqld]\n" + "\n".join([
                "datadir=" + os.path.join(self.work, "data"), "socket=" + os.path.join(self.work, "s.sock"),
                "pid-file=" + os.path.join(self.work, "m.pid"), "log-error=" + os.path.join(self.work, "error.log"),
                "bind-address=127.0.0.1", "port=%d" % self.port, "server-id=1", "log-bin=db-bin",
                "binlog_format=ROW", "sync_binlog=1", "innodb_flush_log_at_trx_commit=1",
                "innodb_buffer_pool_size=32M", "innodb_log_file_size=16M", "performance_schema=OFF",
                "skip-name-resolve"] + (["user=root"] if os.geteuid() == 0 else [])) + "\n")
        subprocess.run(["mariadb-install-db", "--defaults-file=" + self.cnf,
                        "--auth-root-authentication-method=normal", "--skip-test-db"],
                       check=True, capture_output=True, timeout=120)
        self.server = subprocess.Popen(["mariadbd", "--defaults-file=" + self.cnf], stdout=subprocess.DEVNULL,
                                       stderr=subprocess.DEVNULL)
        root = lambda: pymysql.connect(unix_socket=os.path.join(self.work, "s.sock"), user="root",  # noqa: E731
                                       autocommit=True, connect_timeout=5)
        harness.wait_until(lambda: root().close() or True, 60, 0.1, "the plain server")
        with root() as c, c.cursor() as cur:
            cur.execute("CREATE USER 'admin'@'127.0.0.1' IDENTIFIED BY %s", (PASSWORD,))
            cur.execute("GRANT ALL ON *.* TO 'admin'@'127.0.0.1'")
        self.n = 0

    def conn(self):
        return pymysql.connect(host="127.0.0.1", port=self.port, user="admin", password=PASSWORD, autocommit=True,
                               connect_timeout=10, read_timeout=60, write_timeout=60)

    def backup(self):
        target = os.path.join(self.work, "backup-%d" % self.n)
        self.n += 1
        common = ["--host=127.0.0.1", "--port=%d" % self.port, "--user=admin", "--password=" + PASSWORD]
        subprocess.run(["mariadb-backup", "--no-defaults", "--backup", "--datadir=" + os.path.join(self.work, "data"),
                        "--target-dir=" + target] + common, check=True, capture_output=True, timeout=600)
        subprocess.run(["mariadb-backup", "--no-defaults", "--prepare", "--target-dir=" + target],
                       check=True, capture_output=True, timeout=600)
        shutil.rmtree(target, ignore_errors=True)

    def close(self):
        self.server.terminate()  # our own child, by its pid
        try:
            self.server.wait(60)
        except subprocess.TimeoutExpired:
            self.server.kill()
            self.server.wait(10)
        shutil.rmtree(self.work, ignore_errors=True)


def one_round(system, result):
    """Commit latency while a backup runs, then as long again without one."""
    with Committer(system.conn) as c:
        t0 = time.monotonic()
        system.backup()
        took = time.monotonic() - t0
    result["during"] += c.lat
    result["durations"].append(took)
    with Committer(system.conn) as c:
        end = time.monotonic() + took
        while time.monotonic() < end:
            time.sleep(0.05)  # the committer works meanwhile
    result["base"] += c.lat


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", type=int, default=200, help="bulk data in each database (MB)")
    ap.add_argument("--snapshots", type=int, default=3, help="backups of each system, interleaved")
    ap.add_argument("--out", help="also write the results (markdown) to this file")
    args = ap.parse_args()
    systems = []
    try:
        print("== starting a region (one Multi-AZ instance) and a plain MariaDB; %d MB of rows in each" % args.mb)
        systems = [Rds(), Plain()]
        for s in systems:
            load(s.conn, args.mb)
        results = {s.name: {"base": [], "during": [], "durations": []} for s in systems}
        for i in range(args.snapshots):
            for s in systems:
                print("  round %d: %s" % (i + 1, s.name))
                one_round(s, results[s.name])
    finally:
        for s in systems:
            s.close()
    lines = ["## Results (%s, %d MB of data, %d backups each, interleaved)"
             % (time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), args.mb, args.snapshots),
             "", "| commit latency of one autocommit INSERT | commits | p50 ms | p99 ms | max ms |",
             "|---|---|---|---|---|"]
    for name, during in (("RDS Multi-AZ primary", "snapshot running (taken from the standby)"),
                         ("plain MariaDB", "mariadb-backup of itself running")):
        lines.append(row(name + ", no backup", results[name]["base"]))
        lines.append(row(name + ", " + during, results[name]["during"]))
    lines += ["", "backup durations (s): RDS snapshot %s; plain mariadb-backup + prepare %s" % (
        ", ".join("%.1f" % d for d in results["RDS Multi-AZ primary"]["durations"]),
        ", ".join("%.1f" % d for d in results["plain MariaDB"]["durations"]))]
    print("\n" + "\n".join(lines))
    if args.out:
        with open(args.out, "w") as f:
            f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()

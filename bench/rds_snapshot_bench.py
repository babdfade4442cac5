#!/usr/bin/env python3
"""A manual snapshot's effect on the primary's commit latency, beside a plain MariaDB measured in the same run.

  1. RDS, Multi-AZ (the snapshot is a mariadb-backup of the standby): commit latency of one autocommit INSERT
     through the endpoint, without a snapshot and while CreateDBSnapshot runs (--snapshots of them), p50 / p99 /
     max and the number of commits.
  2. Plain MariaDB (one mariadbd, durable: sync_binlog=1, innodb_flush_log_at_trx_commit=1, the same small
     buffer pool), same data: commit latency without a backup and while `mariadb-backup --backup` + `--prepare`
     of that same server runs (what a single server can do).

Both hold --mb MB of bulk rows first, so that a backup lasts a few seconds. Everything listens on 127.0.0.0/8;
the plain server's port is picked free by the kernel; every loop is bounded; the region is always stopped and
the plain server killed (by its pid). Usage: python3 bench/rds_snapshot_bench.py [--mb 200] [--snapshots 3]
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


# ---- RDS ------------------------------------------------------------------------------------------------------

def rds_part(args):
    region = harness.Region("bench.snap")
    region.start()
    rds = region.boto3("rds")
    try:
        rds.create_db_instance(DBInstanceIdentifier=DB, DBInstanceClass="db.t3.medium", Engine="mysql",
                               AllocatedStorage=20, MultiAZ=True, MasterUsername="admin",
                               MasterUserPassword=PASSWORD, VpcSecurityGroupIds=["sg-12345678"])
        status = lambda: rds.describe_db_instances(DBInstanceIdentifier=DB)["DBInstances"][0]  # noqa: E731
        d = harness.wait_until(lambda: (lambda d: d if d["DBInstanceStatus"] == "available" else None)(status()),
                               300, 0.1, DB + " available")
        address = d["Endpoint"]["Address"]
        conn = lambda: pymysql.connect(host=address, user="admin", password=PASSWORD, autocommit=True,  # noqa
                                       connect_timeout=10, read_timeout=60, write_timeout=60)
        load(conn, args.mb)
        harness.wait_until(lambda: status()["DBInstanceStatus"] == "available", 300, 0.1, "available")
        base, during, durations = [], [], []
        for i in range(args.snapshots):
            # Without a snapshot: as long as the last snapshot took (10 s before the first).
            span = durations[-1] if durations else 10.0
            with Committer(conn) as c:
                end = time.monotonic() + span
                while time.monotonic() < end:
                    time.sleep(0.05)  # the committer works meanwhile
            base += c.lat
            sid = "bench-%d" % i
            with Committer(conn) as c:
                t0 = time.monotonic()
                rds.create_db_snapshot(DBInstanceIdentifier=DB, DBSnapshotIdentifier=sid)
                harness.wait_until(lambda: rds.describe_db_snapshots(DBSnapshotIdentifier=sid)["DBSnapshots"][0]
                                   ["Status"] == "available", 600, 0.05, sid + " available")
                durations.append(time.monotonic() - t0)
            during += c.lat
            harness.wait_until(lambda: status()["DBInstanceStatus"] == "available", 300, 0.1, "available")
            rds.delete_db_snapshot(DBSnapshotIdentifier=sid)
        return base, during, durations
    finally:
        region.close()


# ---- plain MariaDB --------------------------------------------------------------------------------------------

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def plain_part(args):
    work = tempfile.mkdtemp(prefix="snapbench-plain-")
    port = free_port()
    cnf = os.path.join(work, "my.cnf")
    with open(cnf, "w") as f:
        f.write("[mysqld]\n" + "\n".join([
            "datadir=" + os.path.join(work, "data"), "socket=" + os.path.join(work, "s.sock"),
            "pid-file=" + os.path.join(work, "m.pid"), "log-error=" + os.path.join(work, "error.log"),
            "bind-address=127.0.0.1", "port=%d" % port, "server-id=1", "log-bin=db-bin", "binlog_format=ROW",
            "sync_binlog=1", "innodb_flush_log_at_trx_commit=1", "innodb_buffer_pool_size=32M",
            "innodb_log_file_size=16M", "performance_schema=OFF", "skip-name-resolve"]
            + (["user=root"] if os.geteuid() == 0 else [])) + "\n")
    subprocess.run(["mariadb-install-db", "--defaults-file=" + cnf, "--auth-root-authentication-method=normal",
                    "--skip-test-db"], check=True, capture_output=True, timeout=120)
    server = subprocess.Popen(["mariadbd", "--defaults-file=" + cnf], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        root = lambda: pymysql.connect(unix_socket=os.path.join(work, "s.sock"), user="root",  # noqa: E731
                                       autocommit=True, connect_timeout=5)
        harness.wait_until(lambda: root().close() or True, 60, 0.1, "the plain server")
        with root() as c, c.cursor() as cur:
            cur.execute("CREATE USER 'admin'@'127.0.0.1' IDENTIFIED BY %s", (PASSWORD,))
            cur.execute("GRANT ALL ON *.* TO 'admin'@'127.0.0.1'")
        conn = lambda: pymysql.connect(host="127.0.0.1", port=port, user="admin", password=PASSWORD,  # noqa
                                       autocommit=True, connect_timeout=10, read_timeout=60, write_timeout=60)
        load(conn, args.mb)
        base, during, durations = [], [], []
        for i in range(args.snapshots):
            span = durations[-1] if durations else 10.0
            with Committer(conn) as c:
                end = time.monotonic() + span
                while time.monotonic() < end:
                    time.sleep(0.05)
            base += c.lat
            target = os.path.join(work, "backup-%d" % i)
            with Committer(conn) as c:
                t0 = time.monotonic()
                common = ["--host=127.0.0.1", "--port=%d" % port, "--user=admin", "--password=" + PASSWORD]
                subprocess.run(["mariadb-backup", "--no-defaults", "--backup", "--datadir=" + os.path.join(work, "data"),
                                "--target-dir=" + target] + common, check=True, capture_output=True, timeout=600)
                subprocess.run(["mariadb-backup", "--no-defaults", "--prepare", "--target-dir=" + target],
                               check=True, capture_output=True, timeout=600)
                durations.append(time.monotonic() - t0)
            during += c.lat
            shutil.rmtree(target, ignore_errors=True)
        return base, during, durations
    finally:
        server.terminate()
        try:
            server.wait(60)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(10)
        shutil.rmtree(work, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", type=int, default=200, help="bulk data in each database (MB)")
    ap.add_argument("--snapshots", type=int, default=3)
    args = ap.parse_args()
    print("== RDS Multi-AZ: commit latency without / during CreateDBSnapshot (%d MB, %d snapshots)"
          % (args.mb, args.snapshots))
    r_base, r_during, r_dur = rds_part(args)
    print("== plain MariaDB: commit latency without / during mariadb-backup of itself")
    p_base, p_during, p_dur = plain_part(args)
    print("\n## Results (%s, %d MB of data)" % (time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), args.mb))
    print("| commit latency of one autocommit INSERT | commits | p50 ms | p99 ms | max ms |")
    print("|---|---|---|---|---|")
    print(row("RDS Multi-AZ primary, no snapshot", r_base))
    print(row("RDS Multi-AZ primary, snapshot running (from the standby)", r_during))
    print(row("plain MariaDB, no backup", p_base))
    print(row("plain MariaDB, mariadb-backup of itself running", p_during))
    print("\nsnapshot durations (s): RDS %s; plain backup + prepare %s"
          % (", ".join("%.1f" % d for d in r_dur), ", ".join("%.1f" % d for d in p_dur)))


if __name__ == "__main__":
    main()

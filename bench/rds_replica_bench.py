#!/usr/bin/env python3
"""Cross-region read replica lag under a steady write load, beside plain MariaDB primary -> replica in the same run.

  1. Ours: two regions of one partition (us-west-2, us-east-1); the source in us-west-2 (Multi-AZ unless
     --single-az, as the seed's), a read replica of it in us-east-1 made with create-db-instance-read-replica from
     its ARN. Replication goes through the source's endpoint.
  2. Plain: two mariadbd started here with the same settings as ours (primary durable: sync_binlog=1,
     innodb_flush_log_at_trx_commit=1; replica: GTID replication, sync_binlog=0, flush at commit 2, two optimistic
     parallel appliers, the same small buffer pool), the replica following the primary directly.

Both take the same steady load at once (--rate autocommit INSERTs per second each, for --seconds), so that the
machine's load is alike for both. Lag is measured the same way for both, from the client's side: every 50 ms a
sampler reads the newest row on the replica; the lag is the age of the oldest acknowledged insert not yet visible
there (0 when it has everything acknowledged). For ours, the ReplicaLag metric the region reports to CloudWatch
(heartbeat-based, sampled every 5 s) is printed too. Everything listens on 127.0.0.0/8; the plain servers' ports
are picked free by the kernel; every loop is bounded; the regions are stopped and the plain servers by their pid.
Usage: python3 bench/rds_replica_bench.py [--seconds 30] [--rate 200] [--single-az] [--out FILE]
"""

import argparse
import bisect
import json
import os
import shutil
import socket
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
DB = "replbench"


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100.0 * (len(values) - 1))))] if values else float("nan")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Load:
    """Steady autocommit INSERTs at `rate` per second into the primary; records when each id was acknowledged."""

    def __init__(self, conn_fn, rate):
        self.conn_fn, self.rate = conn_fn, rate
        self.ids, self.acked_at = [], []  # parallel, ascending
        self.lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self):
        self._thread.start()

    def stop(self):
        self._stop.set()
        self._thread.join(60)

    def _run(self):
        conn = self.conn_fn()
        n = 0
        t0 = time.monotonic()
        while not self._stop.is_set():
            n += 1
            due = t0 + n / self.rate
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            with conn.cursor() as cur:
                cur.execute("INSERT INTO %s.t (id, v) VALUES (%%s, REPEAT('x', 200))" % DB, (n,))
            with self.lock:
                self.ids.append(n)
                self.acked_at.append(time.monotonic())
        conn.close()

    def oldest_missing(self, newest_seen):
        """When the first acknowledged id after newest_seen was acknowledged (None: nothing acknowledged is missing)."""
        with self.lock:
            i = bisect.bisect_right(self.ids, newest_seen)
            return self.acked_at[i] if i < len(self.ids) else None


class Sampler:
    """Every 50 ms: the replica's newest row -> the lag in ms."""

    def __init__(self, conn_fn, load):
        self.conn_fn, self.load = conn_fn, load
        self.lags = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self):
        self._thread.start()

    def stop(self):
        self._stop.set()
        self._thread.join(60)

    def _run(self):
        conn = self.conn_fn()
        while not self._stop.is_set():
            with conn.cursor() as cur:
                cur.execute("SELECT COALESCE(MAX(id), 0) FROM %s.t" % DB)
                newest = cur.fetchone()[0]
            now = time.monotonic()
            missing = self.load.oldest_missing(newest)
            self.lags.append(0.0 if missing is None else max(0.0, (now - missing) * 1000))
            time.sleep(0.05)
        conn.close()


class PlainServer:
    def __init__(self, work, name, server_id, replica):
        self.dir = os.path.join(work, name)
        os.makedirs(self.dir)
        self.port = free_port()
        self.cnf = os.path.join(self.dir, "my.cnf")
        settings = ["datadir=" + os.path.join(self.dir, "data"), "socket=" + os.path.join(self.dir, "s.sock"),
                    "pid-file=" + os.path.join(self.dir, "m.pid"), "log-error=" + os.path.join(self.dir, "error.log"),
                    "bind-address=127.0.0.1", "port=%d" % self.port, "server-id=%d" % server_id, "log-bin=db-bin",
                    "binlog_format=ROW", "log_slave_updates=1", "innodb_buffer_pool_size=32M",
                    "innodb_log_file_size=16M", "performance_schema=OFF", "skip-name-resolve",
                    "slave_parallel_threads=2", "slave_parallel_mode=optimistic"]
        settings += (["sync_binlog=0", "innodb_flush_log_at_trx_commit=2", "read_only=1"] if replica
                     else ["sync_binlog=1", "innodb_flush_log_at_trx_commit=1"])
        if os.geteuid() == 0:
            settings.append("user=root")
        with open(self.cnf, "w") as f:
            f.write("[mysqld]\n" + "\n".join(settings) + "\n")
        subprocess.run(["mariadb-install-db", "--defaults-file=" + self.cnf, "--auth-root-authentication-method=normal",
                        "--skip-test-db"], check=True, capture_output=True, timeout=120)
        self.proc = subprocess.Popen(["mariadbd", "--defaults-file=" + self.cnf], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        harness.wait_until(lambda: self.root().close() or True, 60, 0.1, "plain %s" % name)

    def root(self):
        return pymysql.connect(unix_socket=os.path.join(self.dir, "s.sock"), user="root", autocommit=True,
                               connect_timeout=5)

    def conn(self):
        return pymysql.connect(host="127.0.0.1", port=self.port, user="admin", password=PASSWORD, autocommit=True,
                               connect_timeout=10, read_timeout=60, write_timeout=60)

    def close(self):
        self.proc.terminate()  # our own child, by its pid
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)


def plain_pair(work):
    primary = PlainServer(work, "primary", 1, False)
    replica = PlainServer(work, "replica", 2, True)
    with primary.root() as c, c.cursor() as cur:
        # The position before the accounts: the replica gets them by replication.
        cur.execute("SELECT @@gtid_binlog_pos")
        pos = cur.fetchone()[0]
        cur.execute("CREATE USER 'admin'@'127.0.0.1' IDENTIFIED BY %s", (PASSWORD,))
        cur.execute("GRANT ALL ON *.* TO 'admin'@'127.0.0.1'")
        cur.execute("CREATE USER 'repl'@'127.0.0.1' IDENTIFIED BY %s", (PASSWORD,))
        cur.execute("GRANT REPLICATION SLAVE ON *.* TO 'repl'@'127.0.0.1'")
    with replica.root() as c, c.cursor() as cur:
        cur.execute("SET GLOBAL gtid_slave_pos=%s", (pos,))
        cur.execute("CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT=%d, MASTER_USER='repl', "
                    "MASTER_PASSWORD=%%s, MASTER_USE_GTID=slave_pos, MASTER_CONNECT_RETRY=1" % primary.port, (PASSWORD,))
        cur.execute("START SLAVE")
    return primary, replica


def setup_schema(conn):
    with conn.cursor() as cur:
        cur.execute("CREATE DATABASE %s" % DB)
        cur.execute("CREATE TABLE %s.t (id BIGINT PRIMARY KEY, v VARCHAR(255))" % DB)
    conn.close()


def summary(lags):
    return {"samples": len(lags), "p50_ms": round(pct(lags, 50), 1), "p99_ms": round(pct(lags, 99), 1),
            "max_ms": round(max(lags), 1) if lags else None}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=30)
    ap.add_argument("--rate", type=float, default=200)
    ap.add_argument("--single-az", action="store_true")
    ap.add_argument("--out")
    args = ap.parse_args()

    root = tempfile.mkdtemp(prefix="replbench-")
    partition = os.path.join(root, "partition")
    west = harness.Region("rds_replica_bench.west", region_name="us-west-2")
    east = harness.Region("rds_replica_bench.east", region_name="us-east-1")
    plain = []
    try:
        for r in (west, east):
            r.server_args = ["--partition", partition]
            r.start()
        west.boto3("rds").create_db_instance(
            DBInstanceIdentifier="src", DBInstanceClass="db.t3.medium", Engine="mysql", AllocatedStorage=20,
            MultiAZ=not args.single_az, MasterUsername="admin", MasterUserPassword=PASSWORD, BackupRetentionPeriod=1)

        def status(region, db):
            d = region.boto3("rds").describe_db_instances(DBInstanceIdentifier=db)["DBInstances"][0]
            return d if d["DBInstanceStatus"] == "available" else None
        src = harness.wait_until(lambda: status(west, "src"), 180, 0.5, "the source")
        src_addr = src["Endpoint"]["Address"]
        setup_schema(pymysql.connect(host=src_addr, user="admin", password=PASSWORD, autocommit=True))
        t0 = time.monotonic()
        east.boto3("rds").create_db_instance_read_replica(
            DBInstanceIdentifier="rep", SourceDBInstanceIdentifier="arn:aws:rds:us-west-2:123456789012:db:src",
            SourceRegion="us-west-2")
        rep = harness.wait_until(lambda: status(east, "rep"), 180, 0.2, "the replica")
        create_s = time.monotonic() - t0
        rep_addr = rep["Endpoint"]["Address"]

        work = os.path.join(root, "plain")
        os.makedirs(work)
        p_primary, p_replica = plain_pair(work)
        plain = [p_primary, p_replica]
        setup_schema(p_primary.conn())
        harness.wait_until(lambda: p_replica.conn().cursor().execute("SELECT 1 FROM %s.t LIMIT 1" % DB) is not None,
                           30, 0.1, "the plain replica's schema")

        ours_conn = lambda a: (lambda: pymysql.connect(host=a, user="admin", password=PASSWORD,  # noqa: E731
                                                       autocommit=True, connect_timeout=10, read_timeout=60))
        harness.wait_until(lambda: ours_conn(rep_addr)().cursor().execute("SELECT 1 FROM %s.t LIMIT 1" % DB) is not None,
                           30, 0.1, "the replica's schema")
        loads = [Load(ours_conn(src_addr), args.rate), Load(p_primary.conn, args.rate)]
        samplers = [Sampler(ours_conn(rep_addr), loads[0]), Sampler(p_replica.conn, loads[1])]
        wall0 = time.time()
        for x in loads + samplers:
            x.start()
        time.sleep(args.seconds)
        for x in loads + samplers:
            x.stop()
        wall1 = time.time()
        cw = east.boto3("cloudwatch")
        time.sleep(6)  # one more collection
        pts = cw.get_metric_statistics(Namespace="AWS/RDS", MetricName="ReplicaLag",
                                       Dimensions=[{"Name": "DBInstanceIdentifier", "Value": "rep"}],
                                       StartTime=wall0, EndTime=wall1 + 6, Period=5,
                                       Statistics=["Maximum"])["Datapoints"]
        metric = [p["Maximum"] * 1000 for p in pts]
        result = {
            "seconds": args.seconds, "rate_per_s": args.rate, "source_multi_az": not args.single_az,
            "replica_create_to_available_s": round(create_s, 1),
            "ours_cross_region": dict(summary(samplers[0].lags), commits=len(loads[0].ids)),
            "ours_ReplicaLag_metric_ms": {"samples": len(metric), "p50": round(pct(metric, 50), 1),
                                          "max": round(max(metric), 1) if metric else None},
            "plain_mariadb": dict(summary(samplers[1].lags), commits=len(loads[1].ids)),
        }
        text = json.dumps(result, indent=2)
        print(text)
        if args.out:
            with open(args.out, "w") as f:
                f.write(text + "\n")
    finally:
        for p in plain:
            p.close()
        for r in (east, west):
            try:
                r.close()
            except Exception as e:  # noqa: BLE001
                print("cleanup: %r" % (e,), file=sys.stderr)
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()

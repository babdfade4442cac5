#!/usr/bin/env python3
"""RDS benchmark: Multi-AZ failover, planned failover pause, create time, throughput through the endpoint, and
commit latency with and without the synchronous standby, each beside its peer measured in the same run.

  1. Unplanned failover, N trials: kill -9 of the primary's mariadbd -> first acknowledged write through the
     endpoint (a writer retrying every 2 ms). Peer: RDS documents 60-120 s; a bare promotion was 88 ms here.
  2. Planned failover (reboot --force-failover), N trials: the longest gap between two acknowledged writes.
  3. Create to available (the seed's create-db-instance through boto3): the region's first create (the data dir
     template is made then) and later ones.
  4. sysbench oltp_read_write through the endpoint against the same primary directly (same run, same tables).
  5. Commit latency of one autocommit INSERT: the Multi-AZ instance (semi-sync, AFTER_SYNC) against a
     Single-AZ instance (no standby), same machine, same run.

All traffic goes to 127.0.0.0/8 inside a region this script starts; every loop is bounded; `autopipe down`
always runs. Usage: python3 bench/rds_bench.py [--trials N] [--sysbench-seconds S]
"""

import argparse
import os
import signal
import statistics
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "e2e"))
sys.path.append("/usr/lib/python3/dist-packages")
import harness  # noqa: E402
import pymysql  # noqa: E402

PASSWORD = "bench-Pa55word"


def connect(host, timeout=5):
    return pymysql.connect(host=host, user="admin", password=PASSWORD, autocommit=True, connect_timeout=timeout,
                           read_timeout=timeout, write_timeout=timeout)


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100.0 * (len(values) - 1))))]


def describe(region, db):
    return region.boto3("rds").describe_db_instances(DBInstanceIdentifier=db)["DBInstances"][0]


def create(region, db, multi_az):
    t0 = time.monotonic()
    region.boto3("rds").create_db_instance(DBInstanceIdentifier=db, DBInstanceClass="db.t3.medium", Engine="mysql",
                                           AllocatedStorage=20, MultiAZ=multi_az, MasterUsername="admin",
                                           MasterUserPassword=PASSWORD, VpcSecurityGroupIds=["sg-12345678"])
    d = harness.wait_until(lambda: (lambda d: d if d["DBInstanceStatus"] == "available" else None)(
        describe(region, db)), 120, 0.05, db + " available")
    return time.monotonic() - t0, d


def semi_sync_clients(address):
    try:
        with connect(address, 2) as c, c.cursor() as cur:
            cur.execute("SHOW GLOBAL STATUS WHERE Variable_name IN "
                        "('Rpl_semi_sync_master_status', 'Rpl_semi_sync_master_clients')")
            st = dict(cur.fetchall())
        return int(st.get("Rpl_semi_sync_master_clients", 0)) if st.get("Rpl_semi_sync_master_status") == "ON" else 0
    except pymysql.err.OperationalError:
        return 0


def primary_pid(region, db, address):
    with connect(address) as c, c.cursor() as cur:
        cur.execute("SELECT @@server_id")
        sid = cur.fetchone()[0]
    with open(os.path.join(region.data_dir, "rds", db, "s%d" % sid, "mysqld.pid")) as f:
        return int(f.read())


class Writer:
    """Autocommit inserts through the endpoint as fast as one connection goes; records each ack's time."""

    def __init__(self, address):
        self.address = address
        self.acks = []        # time of each acknowledged write
        self.generations = []  # the connection each came on: a new one after every error
        self.generation = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        conn, deadline = None, time.monotonic() + 300
        while not self.stop.is_set() and time.monotonic() < deadline:
            try:
                if conn is None:
                    conn = connect(self.address, 5)
                    self.generation += 1
                with conn.cursor() as cur:
                    cur.execute("INSERT INTO bench.w (t) VALUES (1)")
                self.generations.append(self.generation)
                self.acks.append(time.monotonic())
            except Exception:  # noqa: BLE001
                try:
                    conn.close()
                except Exception:  # noqa: BLE001
                    pass
                conn = None
                time.sleep(0.002)

    def close(self):
        self.stop.set()
        self.thread.join(30)


def failovers(region, db, address, trials, planned):
    results = []
    for i in range(trials):
        harness.wait_until(lambda: semi_sync_clients(address) >= 1, 120, 0.1, "a synchronous standby")
        w = Writer(address)
        harness.wait_until(lambda: len(w.acks) >= 50, 30, 0.01, "writes")
        if planned:
            t0 = time.monotonic()
            region.boto3("rds").reboot_db_instance(DBInstanceIdentifier=db, ForceFailover=True)
            harness.wait_until(lambda: w.acks and w.acks[-1] > t0 + 0.05 and len(w.acks) > 0, 60, 0.01, "writes")
            time.sleep(1.5)
            acks = [a for a in w.acks if a >= t0 - 1]
            value = max(b - a for a, b in zip(acks, acks[1:]))
        else:
            pid = primary_pid(region, db, address)
            generation = w.generation
            t0 = time.monotonic()
            os.kill(pid, signal.SIGKILL)
            # The first write acknowledged on a connection opened after the kill (an ack racing the kill on the
            # old connection does not count).
            def first_new():
                n = len(w.acks)
                return next((w.acks[i] for i in range(n) if w.generations[i] > generation and w.acks[i] > t0), None)
            harness.wait_until(first_new, 60, 0.001, "the first write after the kill")
            value = first_new() - t0
        w.close()
        results.append(value)
        print("  %s failover %d: %.0f ms" % ("planned" if planned else "unplanned", i + 1, value * 1000), flush=True)
    return results


def commit_latency(address, n=2000):
    lat = []
    with connect(address) as c, c.cursor() as cur:
        for _ in range(n):
            t = time.perf_counter()
            cur.execute("INSERT INTO bench.w (t) VALUES (1)")
            lat.append(time.perf_counter() - t)
    return lat


def sysbench(host, seconds, prepare):
    base = ["sysbench", "oltp_read_write", "--db-driver=mysql", "--mysql-host=" + host, "--mysql-user=admin",
            "--mysql-password=" + PASSWORD, "--mysql-db=sb", "--tables=4", "--table-size=10000", "--threads=4"]
    # The password goes to sysbench in argv here only because sysbench has no other way; it is the benchmark's
    # throwaway instance's, not the region's.
    if prepare:
        subprocess.run(base + ["prepare"], check=True, capture_output=True, timeout=300)
    out = subprocess.run(base + ["--time=%d" % seconds, "--report-interval=0", "run"], check=True,
                         capture_output=True, text=True, timeout=seconds + 120).stdout
    for line in out.splitlines():
        if "transactions:" in line:
            return float(line.split("(")[1].split()[0])
    raise RuntimeError("no sysbench result:\n" + out)


def print_failovers(unplanned, planned):
    ms = lambda v: v * 1000  # noqa: E731
    print("| unplanned failover, kill -9 -> first write (ms) | p50 %.0f, p90 %.0f, max %.0f (n=%d) | RDS documents 60-120 s |"
          % (ms(statistics.median(unplanned)), ms(pct(unplanned, 90)), ms(max(unplanned)), len(unplanned)))
    print("| planned failover write pause (ms) | p50 %.0f, p90 %.0f, max %.0f (n=%d) | - |"
          % (ms(statistics.median(planned)), ms(pct(planned, 90)), ms(max(planned)), len(planned)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=20)
    ap.add_argument("--sysbench-seconds", type=int, default=20)
    ap.add_argument("--skip-failovers", action="store_true", help="only create, commit latency and sysbench")
    args = ap.parse_args()
    if args.skip_failovers:
        args.trials = 0

    region = harness.Region("bench.rds")
    region.start()
    try:
        print("== create to available (the seed's create-db-instance, Multi-AZ)")
        first, d = create(region, "bench-db", True)
        address = d["Endpoint"]["Address"]
        later = [create(region, "bench-warm-%d" % i, True)[0] for i in range(3)]
        print("  first create in the region: %.2f s; later creates: %s s" % (first, ", ".join("%.2f" % t for t in later)))
        for i in range(3):
            region.boto3("rds").delete_db_instance(DBInstanceIdentifier="bench-warm-%d" % i, SkipFinalSnapshot=True)
        with connect(address) as c, c.cursor() as cur:
            cur.execute("CREATE DATABASE bench")
            cur.execute("CREATE TABLE bench.w (id BIGINT AUTO_INCREMENT PRIMARY KEY, t INT)")
            cur.execute("CREATE DATABASE sb")

        print("== unplanned failover: kill -9 of the primary -> first acknowledged write (%d trials)" % args.trials)
        unplanned = failovers(region, "bench-db", address, args.trials, planned=False)
        print("== planned failover: reboot --force-failover, longest write pause (%d trials)" % args.trials)
        planned = failovers(region, "bench-db", address, args.trials, planned=True)

        print("== commit latency, one connection, autocommit INSERT")
        harness.wait_until(lambda: semi_sync_clients(address) >= 1, 120, 0.1, "a synchronous standby")
        _, solo = create(region, "bench-solo", False)
        solo_address = solo["Endpoint"]["Address"]
        with connect(solo_address) as c, c.cursor() as cur:
            cur.execute("CREATE DATABASE bench")
            cur.execute("CREATE TABLE bench.w (id BIGINT AUTO_INCREMENT PRIMARY KEY, t INT)")
        semi = commit_latency(address)
        single = commit_latency(solo_address)

        print("== sysbench oltp_read_write, 4 threads, %d s each" % args.sysbench_seconds)
        with connect(address) as c, c.cursor() as cur:
            cur.execute("SELECT @@server_id")
            sid = cur.fetchone()[0]
        cnf = open(os.path.join(region.data_dir, "rds", "bench-db", "s%d" % sid, "my.cnf")).read()
        direct = [l.split("=", 1)[1] for l in cnf.splitlines() if l.startswith("bind-address=")][0]
        via_endpoint = sysbench(address, args.sysbench_seconds, prepare=True)
        direct_tps = sysbench(direct, args.sysbench_seconds, prepare=False)

        ms = lambda v: v * 1000  # noqa: E731
        print("\n## Results (%s)" % time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()))
        print("| measure | autopipe | peer (same run or documented) |")
        print("|---|---|---|")
        if args.trials:
            print_failovers(unplanned, planned)
        print("| create to available (s) | first %.2f, later %s | RDS: minutes |" % (first, "/".join("%.2f" % t for t in later)))
        print("| commit latency p50 / p99 (ms) | Multi-AZ semi-sync %.2f / %.2f | Single-AZ %.2f / %.2f |"
              % (ms(statistics.median(semi)), ms(pct(semi, 99)), ms(statistics.median(single)), ms(pct(single, 99))))
        print("| sysbench oltp_read_write (tps) | through the endpoint %.0f | direct to the primary %.0f (%.0f %%) |"
              % (via_endpoint, direct_tps, 100.0 * via_endpoint / direct_tps))
    finally:
        region.close()


if __name__ == "__main__":
    main()

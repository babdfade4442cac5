#!/usr/bin/env python3
"""RDS LatestRestorableTime lag: how far behind now the newest restorable instant is, under steady writes.

One Multi-AZ instance with BackupRetentionPeriod 7 (the seed's), a writer committing one small transaction every
`--interval` seconds through the endpoint, and once a second a DescribeDBInstances: the sample is
now - LatestRestorableTime (RDS documents up to 5 minutes). Halfway through, a forced failover
(RebootDBInstance ForceFailover) shows the lag right after a failover too. Reported: p50, p99 and max over the run,
and over the minute after the failover.

Every loop is bounded by --minutes; traffic stays in 127.0.0.0/8 inside the region this script starts; `autopipe
down` always runs. Results: bench/results/rds_lrt-<stamp>.json and .md.
Usage: python3 bench/rds_lrt_bench.py [--minutes 10] [--interval 0.05]
"""

import argparse
import datetime
import json
import os
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "e2e"))
sys.path.append("/usr/lib/python3/dist-packages")
import harness  # noqa: E402
import pymysql  # noqa: E402

PASSWORD = "bench-Pa55word"
DB = "lrt"


def describe(region):
    return region.boto3("rds").describe_db_instances(DBInstanceIdentifier=DB)["DBInstances"][0]


def percentile(values, p):
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100.0 * (len(s) - 1))))] if s else float("nan")


class Writer(threading.Thread):
    def __init__(self, address, interval, deadline):
        super().__init__(daemon=True)
        self.address, self.interval, self.deadline = address, interval, deadline
        self.stop = threading.Event()
        self.commits = 0

    def run(self):
        conn, n = None, 0
        while not self.stop.is_set() and time.monotonic() < self.deadline:
            try:
                if conn is None:
                    conn = pymysql.connect(host=self.address, user="admin", password=PASSWORD, autocommit=True,
                                           connect_timeout=5, read_timeout=10, write_timeout=10)
                n += 1
                with conn.cursor() as c:
                    c.execute("INSERT INTO app.t (id) VALUES (%s)", (n,))
                self.commits += 1
            except Exception:  # noqa: BLE001 - a failover drops the connection: reconnect
                conn = None
            time.sleep(self.interval)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, default=10)
    ap.add_argument("--interval", type=float, default=0.05, help="seconds between the writer's commits")
    args = ap.parse_args()
    region = harness.Region("bench.lrt")
    region.start()
    samples, after_failover = [], []
    try:
        rds = region.boto3("rds")
        rds.create_db_instance(DBInstanceIdentifier=DB, DBInstanceClass="db.t3.medium", Engine="mysql",
                               AllocatedStorage=20, MultiAZ=True, MasterUsername="admin",
                               MasterUserPassword=PASSWORD, BackupRetentionPeriod=7)
        db = harness.wait_until(lambda: (lambda d: d if d["DBInstanceStatus"] == "available" else None)(
            describe(region)), 180, 0.2, "the instance")
        address = db["Endpoint"]["Address"]
        with pymysql.connect(host=address, user="admin", password=PASSWORD, autocommit=True) as c, c.cursor() as cur:
            cur.execute("CREATE DATABASE app")
            cur.execute("CREATE TABLE app.t (id INT PRIMARY KEY)")
        run_s = args.minutes * 60
        start = time.monotonic()
        writer = Writer(address, args.interval, start + run_s + 30)
        writer.start()
        failover_at = None
        while time.monotonic() - start < run_s:
            t0 = time.monotonic()
            if failover_at is None and t0 - start >= run_s / 2:
                rds.reboot_db_instance(DBInstanceIdentifier=DB, ForceFailover=True)
                failover_at = t0
            d = describe(region)
            lrt = d.get("LatestRestorableTime")
            if lrt is not None:
                lag = datetime.datetime.now(datetime.timezone.utc).timestamp() - lrt.timestamp()
                samples.append(lag)
                if failover_at is not None and t0 - failover_at <= 60:
                    after_failover.append(lag)
            time.sleep(max(0.0, 1.0 - (time.monotonic() - t0)))
        writer.stop.set()
        writer.join(30)
        result = {
            "minutes": args.minutes, "commits": writer.commits, "samples": len(samples),
            "lag_s": {"p50": percentile(samples, 50), "p99": percentile(samples, 99), "max": max(samples)},
            "after_failover_s": {"p50": percentile(after_failover, 50), "max": max(after_failover)}
            if after_failover else None,
        }
    finally:
        region.close()
    stamp = time.strftime("%Y%m%dT%H%M")
    out = os.path.join(os.path.dirname(__file__), "results", "rds_lrt-%s" % stamp)
    with open(out + ".json", "w") as f:
        json.dump(result, f, indent=2)
    with open(out + ".md", "w") as f:
        f.write("# now - LatestRestorableTime under steady writes (%s)\n\n" % stamp)
        f.write("%.1f minutes, %d commits, %d samples (one a second), a forced failover halfway\n\n"
                % (args.minutes, writer.commits, len(samples)))
        f.write("| | p50 s | p99 s | max s |\n|---|---|---|---|\n")
        f.write("| whole run | %.2f | %.2f | %.2f |\n" % (result["lag_s"]["p50"], result["lag_s"]["p99"],
                                                        result["lag_s"]["max"]))
        if after_failover:
            f.write("| the minute after the failover | %.2f | | %.2f |\n" % (result["after_failover_s"]["p50"],
                                                                         result["after_failover_s"]["max"]))
        f.write("\nRDS documents up to 5 minutes.\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

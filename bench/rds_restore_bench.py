#!/usr/bin/env python3
"""RDS restore benchmark: RestoreDBInstanceToPointInTime against the amount of binary log to replay.

One Single-AZ source instance (BackupRetentionPeriod 1: one backup at creation, then everything is in the archived
binary log). Its binlog grows in steps to about 1, 10 and 100 MB past that backup (transactions of 100 rows of
1 KB each, through the endpoint); after each step, once LatestRestorableTime has passed the last write, one
restore with UseLatestRestorableTime, so each restore replays the whole archive since the backup. Measured:

  - call -> the restored instance serves through its endpoint (status backing-up or available: its own first
    backup may still run) and holds every row;
  - the region's own breakdown from server.log ("restored in N ms (verify, copy, server up, replay, restart)").

Every loop is bounded; traffic stays in 127.0.0.0/8 inside the region this script starts; `autopipe down` always
runs. Results: bench/results/rds_restore-<stamp>.json and .md.
Usage: python3 bench/rds_restore_bench.py [--sizes 1,10,100] [--row-bytes 1024] [--rows-per-txn 100]
"""

import argparse
import datetime
import glob
import json
import os
import re
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "e2e"))
sys.path.append("/usr/lib/python3/dist-packages")
import harness  # noqa: E402
import pymysql  # noqa: E402

PASSWORD = "bench-Pa55word"
SRC = "bsrc"


def connect(host, port=3306, timeout=10):
    return pymysql.connect(host=host, port=port, user="admin", password=PASSWORD, autocommit=True,
                           connect_timeout=timeout, read_timeout=60, write_timeout=60)


def describe(region, db):
    return region.boto3("rds").describe_db_instances(DBInstanceIdentifier=db)["DBInstances"][0]


def archive_bytes(store):
    return sum(os.path.getsize(f) for f in glob.glob(os.path.join(store, "binlogs", "*", "*.0*")))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="1,10,100", help="binlog MB to replay, cumulative steps")
    ap.add_argument("--row-bytes", type=int, default=1024)
    ap.add_argument("--rows-per-txn", type=int, default=100)
    args = ap.parse_args()
    sizes = [int(x) for x in args.sizes.split(",")]
    region = harness.Region("bench.restore")
    region.start()
    results = []
    try:
        rds = region.boto3("rds")
        rds.create_db_instance(DBInstanceIdentifier=SRC, DBInstanceClass="db.t3.medium", Engine="mysql",
                               AllocatedStorage=20, MasterUsername="admin", MasterUserPassword=PASSWORD,
                               BackupRetentionPeriod=1)
        src = harness.wait_until(lambda: (lambda d: d if d["DBInstanceStatus"] == "available" else None)(
            describe(region, SRC)), 180, 0.2, "source available")
        address = src["Endpoint"]["Address"]
        store = os.path.join(region.data_dir, "rds-backups", src["DbiResourceId"])
        base = archive_bytes(store)
        with connect(address) as c, c.cursor() as cur:
            cur.execute("CREATE DATABASE app")
            cur.execute("CREATE TABLE app.r (id INT PRIMARY KEY, v VARBINARY(%d))" % args.row_bytes)
        next_id = 1
        for step, mb in enumerate(sizes):
            target = base + mb * 1024 * 1024
            t0 = time.monotonic()
            with connect(address) as c, c.cursor() as cur:
                for _ in range(100000):  # bounded
                    if archive_bytes(store) >= target:
                        break
                    # Archived bytes trail the writes by a moment: write in chunks, then look again.
                    for _ in range(20):
                        rows = [(next_id + i, os.urandom(args.row_bytes)) for i in range(args.rows_per_txn)]
                        cur.executemany("INSERT INTO app.r (id, v) VALUES (%s, %s)", rows)
                        next_id += args.rows_per_txn
                        if archive_bytes(store) >= target:
                            break
            write_s = time.monotonic() - t0
            last_write = time.time()
            harness.wait_until(lambda: describe(region, SRC).get("LatestRestorableTime") and
                               describe(region, SRC)["LatestRestorableTime"].timestamp() > last_write + 0.2,
                               120, 0.2, "archive caught up")
            replay_bytes = archive_bytes(store) - base
            db = "br%d" % step
            t1 = time.monotonic()
            rds.restore_db_instance_to_point_in_time(SourceDBInstanceIdentifier=SRC, TargetDBInstanceIdentifier=db,
                                                     UseLatestRestorableTime=True)
            d = harness.wait_until(
                lambda: (lambda d: d if d["DBInstanceStatus"] in ("available", "backing-up", "incompatible-restore")
                         else None)(describe(region, db)), 1800, 0.1, db + " restored")
            serving_s = time.monotonic() - t1
            if d["DBInstanceStatus"] == "incompatible-restore":
                raise SystemExit("restore failed: %s" % d)
            with connect(d["Endpoint"]["Address"]) as c, c.cursor() as cur:
                cur.execute("SELECT COUNT(*) FROM app.r")
                count = cur.fetchone()[0]
            if count != next_id - 1:
                raise SystemExit("%s holds %d rows, the source %d" % (db, count, next_id - 1))
            breakdown = {}
            with open(os.path.join(region.data_dir, "server.log"), errors="replace") as f:
                for line in f:
                    m = re.search(r"db_instance=%s restored in (\d+) ms \(verify (\d+) ms, copy (\d+) ms, server up "
                                  r"(\d+) ms, setup (\d+) ms, archive wait (\d+) ms, replay (\d+) ms of (\d+) bytes, restart (\d+) ms\)" % db, line)
                    if m:
                        keys = ["total_ms", "verify_ms", "copy_ms", "server_up_ms", "setup_ms", "archive_wait_ms", "replay_ms",
                                "replayed_bytes", "restart_ms"]
                        breakdown = dict(zip(keys, map(int, m.groups())))
            r = {"target_mb": mb, "archive_bytes_since_backup": replay_bytes, "rows": count,
                 "write_seconds": round(write_s, 2), "call_to_serving_seconds": round(serving_s, 2), **breakdown}
            print(json.dumps(r), flush=True)
            results.append(r)
            rds.delete_db_instance(DBInstanceIdentifier=db, SkipFinalSnapshot=True)
    finally:
        region.close()
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M")
    out_dir = os.path.join(os.path.dirname(__file__), "results")
    with open(os.path.join(out_dir, "rds_restore-%s.json" % stamp), "w") as f:
        json.dump({"row_bytes": args.row_bytes, "rows_per_txn": args.rows_per_txn, "results": results}, f, indent=2)
    lines = ["# RDS restore time against binlog to replay (%s)" % stamp, "",
             "Single-AZ db.t3.medium source, one backup at creation, then transactions of %d rows x %d bytes; one "
             "RestoreDBInstanceToPointInTime (UseLatestRestorableTime) per step, replaying the whole archive since "
             "the backup. 2-core machine shared with other builds: noisy." % (args.rows_per_txn, args.row_bytes), "",
             "| binlog to replay | call -> serving | restore total | verify | copy | server up | setup | archive wait | replay | restart | replay MB/s |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        mbps = r.get("replayed_bytes", 0) / 1048576 / max(r.get("replay_ms", 1) / 1000, 0.001)
        lines.append("| %.1f MB | %.2f s | %.2f s | %d ms | %d ms | %d ms | %d ms | %d ms | %.2f s | %d ms | %.1f |" % (
            r["archive_bytes_since_backup"] / 1048576, r["call_to_serving_seconds"], r.get("total_ms", 0) / 1000,
            r.get("verify_ms", 0), r.get("copy_ms", 0), r.get("server_up_ms", 0), r.get("setup_ms", 0), r.get("archive_wait_ms", 0),
            r.get("replay_ms", 0) / 1000, r.get("restart_ms", 0), mbps))
    with open(os.path.join(out_dir, "rds_restore-%s.md" % stamp), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Region-outage drill bench: `autopipe drill region-outage` run N times (default 10) on one stack, under the
drill's own steady load (a GET through the DNS name every 50 ms, an INSERT every 20 ms).

The stack is test_drill's: two regions and the global service in one partition, a load balancer with one sample
instance in each region, a failover record set (TTL 2 s) whose PRIMARY has a health check on region A's load
balancer (RequestInterval 10, FailureThreshold 1), and, when this build has read replicas, a DB instance in A with
a cross-region read replica in B. Between drills region A is started again on its data dir, the record set
answers A again, and (DB) a new replica of A's instance is made in B (the previous one was promoted).

Each drill's warm-up is drawn from 3-13 s, so the stop falls anywhere in the health check's probing cycle.
Reports p50 and max of HTTP recovery, DB recovery, RPO (transactions) and the replica's ReplicaLag (CloudWatch)
under the drill's write load before the stop; writes bench/results/drill_bench.json.
Usage: python3 bench/drill_bench.py [--samples N] [--bin PATH] [--skip-db]
"""

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "e2e"))

import harness  # noqa: E402
from harness import wait_until  # noqa: E402
import test_drill  # noqa: E402
from test_drill import Global, RegionProc, database, failover_record, supports_read_replicas, web_tier  # noqa: E402


def pct(values, q):
    if not values:
        return None
    v = sorted(values)
    return v[min(len(v) - 1, int(round(q * (len(v) - 1))))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--samples", type=int, default=10)
    ap.add_argument("--bin", default=None)
    ap.add_argument("--skip-db", action="store_true")
    args = ap.parse_args()
    if args.bin:
        os.environ["AUTOPIPE_BIN"] = os.path.abspath(args.bin)
    samples = max(1, min(args.samples, 50))
    root = tempfile.mkdtemp(prefix="autopipe-drill-bench-")
    partition = os.path.join(root, "partition")
    a = RegionProc(root, partition, "us-west-2")
    b = RegionProc(root, partition, "us-east-1")
    g = Global(partition, root)
    g.start()
    results = []
    try:
        with_db = not args.skip_db and supports_read_replicas(a)
        lb_a, lb_b = web_tier(a), web_tier(b)
        name = failover_record(g, lb_a, lb_b)
        for i in range(samples):
            if with_db:
                database(a, b, replica_id="drill-r%d" % i, create_source=(i == 0))
            # A warm-up of 3-13 s: the stop falls anywhere in the health check's 10 s probing cycle.
            warmup = 3 + random.uniform(0, 10)
            argv = [harness.autopipe_bin(), "drill", "region-outage", "--partition", partition, "--region", a.name,
                    "--name", name, "--warmup", "%.2f" % warmup, "--settle", "2", "--duration", "150", "--json",
                    "--yes"]
            if with_db:
                argv += ["--db-instance", "drilldb"]
            else:
                argv += ["--skip-db"]
            wall0 = time.time()
            res = subprocess.run(argv, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL,
                                 env=test_drill._clean_env())
            if res.returncode not in (0, 1):
                raise SystemExit("drill %d failed (%d): %s" % (i, res.returncode, res.stderr[-3000:]))
            r = json.loads(res.stdout)
            row = {"http_recovery_seconds": r["http_recovery_seconds"],
                   "db_recovery_seconds": r["db_recovery_seconds"],
                   "rpo_transactions": r["rpo_transactions"],
                   "acknowledged_old": r["writes"]["acknowledged_old_region"],
                   "processes_killed": r["old_region"]["processes_killed"], "warmup_seconds": round(warmup, 2)}
            if with_db:
                # ReplicaLag (CloudWatch, AWS/RDS, collected every 5 s) of the replica under the drill's write load,
                # before the stop.
                stop_wall = wall0 + r["stopped_at_seconds"]
                time.sleep(1)
                pts = b.client("cloudwatch").get_metric_statistics(
                    Namespace="AWS/RDS", MetricName="ReplicaLag",
                    Dimensions=[{"Name": "DBInstanceIdentifier", "Value": "drill-r%d" % i}],
                    StartTime=wall0, EndTime=stop_wall, Period=5, Statistics=["Maximum"])["Datapoints"]
                row["replica_lag_seconds"] = [p["Maximum"] for p in pts]
            results.append(row)
            print("drill %d: %s" % (i + 1, json.dumps(row)), flush=True)
            # Region A back, and DNS on it again, for the next drill.
            a.start()
            wait_until(lambda: [x[3] for x in g.dig(name)[2]] == [lb_a], 90, 0.5, "the record answering A again")
            if with_db and i + 1 < samples:
                wait_until(lambda: a.client("rds").describe_db_instances(DBInstanceIdentifier="drilldb")[
                    "DBInstances"][0]["DBInstanceStatus"] == "available", 120, 0.5, "drilldb available again")
    finally:
        g.stop()
        b.close()
        a.close()
        shutil.rmtree(root, True)

    def stats(key):
        vals = [r[key] for r in results if r[key] is not None]
        return {"p50": pct(vals, 0.5), "max": max(vals) if vals else None, "n": len(vals)}

    summary = {"samples": len(results), "with_db": with_db, "ttl": test_drill.TTL,
               "health_check": {"interval": test_drill.INTERVAL, "threshold": test_drill.THRESHOLD},
               "http_recovery_seconds": stats("http_recovery_seconds"),
               "db_recovery_seconds": stats("db_recovery_seconds"),
               "rpo_transactions": stats("rpo_transactions"),
               "replica_lag_seconds_under_load": {
                   "p50": pct([x for r in results for x in r.get("replica_lag_seconds", [])], 0.5),
                   "max": max([x for r in results for x in r.get("replica_lag_seconds", [])], default=None),
                   "n": sum(len(r.get("replica_lag_seconds", [])) for r in results)},
               "runs": results}
    os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
    with open(os.path.join(HERE, "results", "drill_bench.json"), "w") as f:
        json.dump(summary, f, indent=2)
    print(json.dumps({k: v for k, v in summary.items() if k != "runs"}, indent=2))


if __name__ == "__main__":
    main()

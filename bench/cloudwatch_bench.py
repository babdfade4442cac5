#!/usr/bin/env python3
"""CloudWatch benchmark (issue 12): PutMetricData throughput and the CPU cost of evaluating many alarms.

  1. PutMetricData datapoints/s through boto3 (AWS JSON 1.0) on one keep-alive client: calls of 1,000 metrics with
     one Value each, and calls of 20 metrics with 150 Values each.
  2. N alarms (default 10,000; 60-s periods on metrics that have data) evaluated on their cadence: the server's
     CPU time (utime + stime from /proc) over two evaluation minutes, as a fraction of one core.

Only the server this script starts is signalled (by PID, through the e2e harness), all traffic is loopback.

Usage: python3 bench/cloudwatch_bench.py [--alarms N] [--calls N]
"""

import argparse
import datetime
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "e2e"))
import harness  # noqa: E402


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--alarms", type=int, default=10000)
    ap.add_argument("--calls", type=int, default=50)
    ap.add_argument("--skip-alarms", action="store_true")
    args = ap.parse_args()
    region = harness.Region("cloudwatch-bench")
    region.start()
    try:
        cw = region.boto3("cloudwatch")
        now = datetime.datetime.now(datetime.timezone.utc)
        # 1. PutMetricData.
        for label, metrics, values in (("1000 metrics x 1 value", 1000, 0), ("20 metrics x 150 values", 20, 150)):
            data = []
            for i in range(metrics):
                d = {"MetricName": "m%d" % i, "Dimensions": [{"Name": "Host", "Value": "h%d" % (i % 50)}],
                     "Timestamp": now}
                if values:
                    d["Values"] = [float(v) for v in range(values)]
                else:
                    d["Value"] = float(i)
                data.append(d)
            points = metrics * (values or 1)
            cw.put_metric_data(Namespace="Bench", MetricData=data)  # warm-up (creates the metrics)
            server_cpu0 = cpu_seconds(region.server_pid())
            t0 = time.monotonic()
            for _ in range(args.calls):
                cw.put_metric_data(Namespace="Bench", MetricData=data)
            dt = time.monotonic() - t0
            server_cpu = cpu_seconds(region.server_pid()) - server_cpu0
            print("PutMetricData %s: %d calls, %.0f datapoints/s end to end (%.1f ms/call, boto3 included); "
                  "server CPU %.1f ms/call = %.0f datapoints per server CPU second"
                  % (label, args.calls, args.calls * points / dt, dt / args.calls * 1000,
                     server_cpu / args.calls * 1000, args.calls * points / max(server_cpu, 1e-9)))
        if args.skip_alarms:
            return
        # 2. Alarms.
        t0 = time.monotonic()
        for i in range(args.alarms):
            cw.put_metric_alarm(AlarmName="bench-%05d" % i, MetricName="m%d" % (i % 1000), Namespace="Bench",
                                Dimensions=[{"Name": "Host", "Value": "h%d" % (i % 1000 % 50)}],
                                Statistic="Average", Period=60, EvaluationPeriods=3, DatapointsToAlarm=2,
                                Threshold=500, ComparisonOperator="GreaterThanThreshold")
        print("PutMetricAlarm: %d alarms in %.1f s" % (args.alarms, time.monotonic() - t0))
        pid = region.server_pid()
        # Skip to the next minute boundary so the window holds two whole evaluation rounds.
        time.sleep(60 - time.time() % 60 + 1)
        c0, w0 = cpu_seconds(pid), time.monotonic()
        time.sleep(120)
        c1, w1 = cpu_seconds(pid), time.monotonic()
        states = {}
        token = None
        while True:
            kw = {"MaxRecords": 100, **({"NextToken": token} if token else {})}
            page = cw.describe_alarms(**kw)
            for a in page["MetricAlarms"]:
                states[a["StateValue"]] = states.get(a["StateValue"], 0) + 1
            token = page.get("NextToken")
            if not token:
                break
        print("%d alarms evaluated every minute: server CPU %.3f cores over %.0f s; states %s"
              % (args.alarms, (c1 - c0) / (w1 - w0), w1 - w0, states))
    finally:
        region.close()


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""CloudWatch side by side with moto_server (issue 12), the same boto3 calls against both in one run:

  1. PutMetricAlarm (the seed's alarm, N names), DescribeAlarms (all of them), PutMetricData (1,000 metrics
     per call) and GetMetricStatistics: latency per call, and datapoints/s for PutMetricData.
  2. An alarm with a 10-second period, then datapoints above its threshold: does the alarm go to ALARM? autopipe
     evaluates alarms as CloudWatch does; moto stores them and never evaluates (its state stays where it began).

Both servers listen on 127.0.0.1 only and are stopped by PID (the region through the e2e harness). Every loop is
bounded. Usage: python3 bench/cloudwatch_vs_moto.py [--alarms N] [--calls N]
"""

import argparse
import datetime
import os
import shutil
import socket
import statistics
import subprocess
import sys
import time

import boto3
from botocore.config import Config

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "e2e"))
import harness  # noqa: E402


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def client(endpoint, key, secret):
    return boto3.session.Session(aws_access_key_id=key, aws_secret_access_key=secret,
                                 region_name="us-west-2").client(
        "cloudwatch", endpoint_url=endpoint, config=Config(proxies={}, retries={"max_attempts": 1}))


def timed(fn, n):
    out = []
    for i in range(n):
        t = time.perf_counter()
        fn(i)
        out.append(time.perf_counter() - t)
    return out


def ms(values):
    values = sorted(values)
    return "p50 %.2f ms, p90 %.2f ms" % (values[len(values) // 2] * 1000, values[int(len(values) * 0.9)] * 1000)


def attempt(results, key, fn):
    """Runs one measurement; a server that fails it gets its error in the table instead of a figure."""
    try:
        results[key] = fn()
    except Exception as e:  # noqa: BLE001 - reported, not raised: the point is to compare
        results[key] = "fails: %s" % str(e).splitlines()[0][:120]


def cpu_seconds(pid):
    """utime + stime of a process (and its reaped children: moto's reloader forks none with these flags)."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run(name, cw, alarms, calls, pid):
    results = {}
    seed = dict(MetricName="CPUUtilization", Namespace="AWS/EC2", Statistic="Average", Period=300, Threshold=80,
                ComparisonOperator="GreaterThanThreshold", Dimensions=[{"Name": "InstanceId", "Value": "i-1234567890"}],
                EvaluationPeriods=2, AlarmActions=["arn:aws:sns:us-west-2:123456789012:AutoPipelineAlerts"])
    attempt(results, "PutMetricAlarm (the seed's alarm)",
            lambda: ms(timed(lambda i: cw.put_metric_alarm(AlarmName="HighCPUUsage-%d" % i, **seed), alarms)))
    attempt(results, "DescribeAlarms (%d alarms, all pages)" % alarms,
            lambda: ms(timed(lambda i: [p for p in cw.get_paginator("describe_alarms").paginate()], 10)))
    now = datetime.datetime.now(datetime.timezone.utc)
    batch = [{"MetricName": "m%d" % j, "Value": float(j), "Timestamp": now} for j in range(1000)]
    def put_data():
        c0 = cpu_seconds(pid)
        t = timed(lambda i: cw.put_metric_data(Namespace="Bench", MetricData=batch), calls)
        cpu = cpu_seconds(pid) - c0
        return "%s; %.0f datapoints/s end to end; %.0f datapoints per server CPU second" % (
            ms(t), 1000 * calls / sum(t), 1000 * calls / max(cpu, 1e-9))
    attempt(results, "PutMetricData (1,000 metrics per call; boto3 gzips the body)", put_data)
    small = batch[:20]
    def put_small():
        c0 = cpu_seconds(pid)
        t = timed(lambda i: cw.put_metric_data(Namespace="Bench", MetricData=small), calls * 10)
        cpu = cpu_seconds(pid) - c0
        return "%s; %.0f datapoints per server CPU second" % (ms(t), 20 * calls * 10 / max(cpu, 1e-9))
    attempt(results, "PutMetricData (20 metrics per call, not gzipped)", put_small)
    attempt(results, "GetMetricStatistics", lambda: ms(timed(lambda i: cw.get_metric_statistics(
        Namespace="Bench", MetricName="m%d" % i, StartTime=now - datetime.timedelta(minutes=5),
        EndTime=now + datetime.timedelta(minutes=1), Period=60, Statistics=["Average", "Maximum"]), 20)))

    attempt(results, "alarm on breaching data (10-s period)", lambda: fires(cw))
    print("\n### %s" % name)
    for k, v in results.items():
        print("| %s | %s |" % (k, v))
    return results


def fires(cw):
    """An alarm that should fire: 10-second period, 1 of 1 above 50, fed datapoints of 99."""
    cw.put_metric_alarm(AlarmName="fires", MetricName="load", Namespace="Bench", Statistic="Maximum", Period=10,
                        Threshold=50, ComparisonOperator="GreaterThanThreshold", EvaluationPeriods=1)
    t0 = time.monotonic()
    state = None
    while time.monotonic() - t0 < 40:
        cw.put_metric_data(Namespace="Bench", MetricData=[{"MetricName": "load", "Value": 99.0,
                                                           "Timestamp": datetime.datetime.now(datetime.timezone.utc)}])
        state = cw.describe_alarms(AlarmNames=["fires"])["MetricAlarms"][0]["StateValue"]
        if state == "ALARM":
            break
        time.sleep(0.5)
    return "ALARM after %.1f s" % (time.monotonic() - t0) if state == "ALARM" else "still %s after 40 s" % state


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--alarms", type=int, default=200)
    ap.add_argument("--calls", type=int, default=20)
    args = ap.parse_args()

    region = harness.Region("cloudwatch-vs-moto")
    region.start()
    moto = None
    try:
        ak, sk = region.credentials()
        run("autopipe", client(region.endpoint, ak, sk), args.alarms, args.calls, region.server_pid())
        exe = shutil.which("moto_server")
        if not exe:
            print("\nmoto_server is not on PATH: no side-by-side figures")
            return
        port = free_port()
        moto = subprocess.Popen([exe, "-H", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                time.sleep(0.2)
        run("moto_server %s" % subprocess.run([sys.executable, "-c", "import moto; print(moto.__version__)"],
                                              capture_output=True, text=True).stdout.strip(),
            client("http://127.0.0.1:%d" % port, "AKIDMOTOBENCH0000000", "moto-bench-secret"), args.alarms,
            args.calls, moto.pid)
    finally:
        if moto:
            moto.terminate()
            moto.wait(10)
        region.close()


if __name__ == "__main__":
    main()

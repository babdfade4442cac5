#!/usr/bin/env python3
"""Alarm chain bench, end to end with real processes (a region from tests/e2e/harness.py):

1. Breach to notification received: a 10-second alarm on a custom metric, one breaching datapoint put into the
   current period; the clock runs from the end of that period (when CloudWatch can first evaluate it) until an HTTP
   subscriber on loopback holds the signed ALARM notification. The alarm treats missing data as notBreaching, so it
   returns to OK between samples.
2. Load spike to a new instance serving behind the load balancer: the seed's load balancer in front of a group of
   one sample instance; a 10-second alarm on the group's AWS/EC2 CPUUtilization runs a step policy (+1) and
   notifies the topic. Client threads send CPU-bound requests (/burn) through the load balancer; the clock runs
   from the first request of the spike to the first answer through the load balancer from the new instance.

Writes bench/results/alarm_bench.json. Usage: python3 bench/alarm_bench.py [--samples N] [--bin PATH]
"""

import argparse
import http.client
import json
import os
import shutil
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "e2e"))

import harness  # noqa: E402
from harness import Region, wait_until  # noqa: E402
from test_sns import Subscriber, fetch, verify_signature  # noqa: E402


def subscribe(region, topic_arn, sub):
    sns = region.boto3("sns")
    sns.subscribe(TopicArn=topic_arn, Protocol="http", Endpoint=sub.url)
    _, conf = sub.wait_for("SubscriptionConfirmation")
    verify_signature(conf)
    status, _ = fetch(conf["SubscribeURL"])
    assert status == 200, status


def alarm_notes(sub, name, state):
    return [m for _, m in sub.messages("Notification")
            if json.loads(m["Message"]).get("AlarmName") == name and json.loads(m["Message"])["NewStateValue"] == state]


def breach_to_notification(region, topic_arn, sub, samples):
    cw = region.boto3("cloudwatch")
    name = "bench-breach"
    cw.put_metric_alarm(AlarmName=name, Namespace="Bench/Load", MetricName="Spike", Statistic="Maximum", Period=10,
                        EvaluationPeriods=1, Threshold=50, ComparisonOperator="GreaterThanThreshold",
                        TreatMissingData="notBreaching", AlarmActions=[topic_arn], OKActions=[topic_arn])
    out = []
    for i in range(samples):
        wait_until(lambda: cw.describe_alarms(AlarmNames=[name])["MetricAlarms"][0]["StateValue"] == "OK", 40, 0.2,
                   "the alarm back in OK")
        before = len(alarm_notes(sub, name, "ALARM"))
        # Put the breach early in a period (so it lands in that period), then wait for its notification.
        while time.time() % 10 > 3:
            time.sleep(0.05)
        now = time.time()
        period_end = (int(now) // 10) * 10 + 10
        cw.put_metric_data(Namespace="Bench/Load", MetricData=[{"MetricName": "Spike", "Value": 100}])
        wait_until(lambda: len(alarm_notes(sub, name, "ALARM")) > before, 40, 0.01, "the ALARM notification")
        received = time.time()
        note = alarm_notes(sub, name, "ALARM")[-1]
        verify_signature(note)
        out.append(round(received - period_end, 3))
        print("  sample %d: notification %.3f s after the end of the breaching period" % (i + 1, out[-1]))
    return out


def lb_get(host, path, timeout=15):
    conn = http.client.HTTPConnection(host, 80, timeout=timeout)
    try:
        conn.request("GET", path)
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()


def spike_to_new_instance(region, topic_arn, sub, max_seconds=180):
    asc, elb, cw = region.boto3("autoscaling"), region.boto3("elb"), region.boto3("cloudwatch")
    elb.create_load_balancer(LoadBalancerName="auto-pipeline-lb", AvailabilityZones=["us-west-2a", "us-west-2b"],
                             Listeners=[{"Protocol": "HTTP", "LoadBalancerPort": 80, "InstanceProtocol": "HTTP",
                                         "InstancePort": 80}])
    dns = elb.describe_load_balancers(LoadBalancerNames=["auto-pipeline-lb"])["LoadBalancerDescriptions"][0]["DNSName"]
    region.create_lc("bench-lc")
    asc.create_auto_scaling_group(AutoScalingGroupName="bench-asg", LaunchConfigurationName="bench-lc", MinSize=1,
                                  MaxSize=2, DesiredCapacity=1, LoadBalancerNames=["auto-pipeline-lb"],
                                  AvailabilityZones=["us-west-2a", "us-west-2b"])
    first = set(region.wait_group("bench-asg", 1))
    wait_until(lambda: lb_get(dns, "/")[0] == 200, 60, 0.2, "the group serving through the load balancer")
    policy = asc.put_scaling_policy(AutoScalingGroupName="bench-asg", PolicyName="spike", PolicyType="StepScaling",
                                    AdjustmentType="ChangeInCapacity", EstimatedInstanceWarmup=0,
                                    StepAdjustments=[{"MetricIntervalLowerBound": 0, "ScalingAdjustment": 1}])
    cw.put_metric_alarm(AlarmName="bench-cpu", Namespace="AWS/EC2", MetricName="CPUUtilization",
                        Statistic="Average", Period=10, EvaluationPeriods=1, Threshold=20,
                        ComparisonOperator="GreaterThanThreshold",
                        Dimensions=[{"Name": "AutoScalingGroupName", "Value": "bench-asg"}],
                        AlarmActions=[policy["PolicyARN"], topic_arn])
    # Let the alarm see the idle group first (it must not be in ALARM before the spike).
    wait_until(lambda: cw.describe_alarms(AlarmNames=["bench-cpu"])["MetricAlarms"][0]["StateValue"] == "OK", 60,
               0.5, "bench-cpu OK while idle")

    marks = {}
    stop = threading.Event()
    lock = threading.Lock()

    def client():
        while not stop.is_set() and time.monotonic() - marks["start"] < max_seconds:
            try:
                status, body = lb_get(dns, "/burn?ms=400")
            except OSError:
                continue
            if status == 200:
                iid = json.loads(body)["instance_id"]
                if iid not in first:
                    with lock:
                        marks.setdefault("new_serving", time.monotonic())
                    stop.set()

    marks["start"] = time.monotonic()
    threads = [threading.Thread(target=client, daemon=True) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        wait_until(lambda: alarm_notes(sub, "bench-cpu", "ALARM"), max_seconds, 0.02, "the ALARM notification")
        marks["notified"] = time.monotonic()
        wait_until(lambda: asc.describe_auto_scaling_groups(AutoScalingGroupNames=["bench-asg"])[
            "AutoScalingGroups"][0]["DesiredCapacity"] == 2, 30, 0.05, "desired capacity 2")
        marks["desired"] = time.monotonic()
        wait_until(lambda: "new_serving" in marks, max_seconds, 0.02, "the new instance serving through the LB")
    finally:
        stop.set()
        for t in threads:
            t.join(20)
    s = marks["start"]
    out = {k: round(marks[k] - s, 2) for k in ("notified", "desired", "new_serving")}
    print("  spike start -> ALARM notification %.2f s, -> desired 2 %.2f s, -> new instance serving via LB %.2f s"
          % (out["notified"], out["desired"], out["new_serving"]))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--samples", type=int, default=5)
    ap.add_argument("--bin", default=os.path.join(HERE, "..", "build", "autopipe"))
    args = ap.parse_args()
    # A copy, so a rebuild during the run can't swap the binary out from under it.
    tmp = tempfile.mkdtemp(prefix="alarm-bench-")
    binary = os.path.join(tmp, "autopipe")
    shutil.copy2(args.bin, binary)
    os.environ["AUTOPIPE_BIN"] = binary
    results = {"binary_mtime": os.path.getmtime(args.bin)}
    region = Region("alarm_bench")
    sub = Subscriber()
    try:
        region.start()
        topic = region.boto3("sns").create_topic(Name="AutoPipelineAlerts")["TopicArn"]
        subscribe(region, topic, sub)
        print("breach to notification received (%d samples):" % args.samples)
        b = breach_to_notification(region, topic, sub, args.samples)
        results["breach_to_notification_s"] = {"samples": b, "median": sorted(b)[len(b) // 2], "max": max(b)}
        print("load spike to a new instance serving behind the load balancer:")
        results["spike_to_new_instance_s"] = spike_to_new_instance(region, topic, sub)
    finally:
        sub.close()
        region.close()
        shutil.rmtree(tmp, True)
    os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
    with open(os.path.join(HERE, "results", "alarm_bench.json"), "w") as f:
        json.dump(results, f, indent=2)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()

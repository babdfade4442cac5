"""The whole alarm chain with real processes: the seed's `aws sns create-topic` and `aws cloudwatch put-metric-alarm`
word for word (its action ARN is the topic just created; its alarm, on an instance that does not exist, stays
INSUFFICIENT_DATA); then instances of a group behind the seed's load balancer burn CPU (a bounded busy loop in
their UserData), a 10-second alarm on the group's AWS/EC2 CPUUtilization goes to ALARM, an HTTP subscriber receives
the signed alarm notification in CloudWatch's format, and a step scaling policy on the same alarm adds instances
that serve behind the load balancer.
"""

import http.client
import json
import os
import time
import unittest
from datetime import datetime, timezone

import harness
from harness import Region, wait_until
from test_sns import Subscriber, fetch, verify_signature

ACCOUNT = "123456789012"
TOPIC_ARN = "arn:aws:sns:us-west-2:123456789012:AutoPipelineAlerts"
# The seed's two commands, word for word.
SEED_CREATE_TOPIC = ["sns", "create-topic", "--name", "AutoPipelineAlerts"]
SEED_PUT_ALARM = ["cloudwatch", "put-metric-alarm",
                  "--alarm-name", "HighCPUUsage",
                  "--metric-name", "CPUUtilization",
                  "--namespace", "AWS/EC2",
                  "--statistic", "Average",
                  "--period", "300",
                  "--threshold", "80",
                  "--comparison-operator", "GreaterThanThreshold",
                  "--dimensions", "Name=InstanceId,Value=i-1234567890",
                  "--evaluation-periods", "2",
                  "--alarm-actions", "arn:aws:sns:us-west-2:123456789012:AutoPipelineAlerts"]
SEED_CREATE_LB = ["elb", "create-load-balancer",
                  "--load-balancer-name", "auto-pipeline-lb",
                  "--listeners", "Protocol=HTTP,LoadBalancerPort=80,InstanceProtocol=HTTP,InstancePort=80",
                  "--availability-zones", "us-west-2a", "us-west-2b"]
ASG = "alarm-asg"
LC = "alarm-lc"
# Every instance of the group burns one core for BURN_SECONDS from boot (bounded), then idles. --foreground keeps
# timeout in the instance's process group (by default it makes its own, which `down` would not stop).
BURN_SECONDS = 40
USER_DATA = "#!/bin/sh\ntimeout --foreground %d sh -c 'while :; do :; done'\nexec sleep 3600\n" % BURN_SECONDS


def iso_millis(text):
    return datetime.strptime(text.replace("+0000", "Z").rstrip("Z")[:23], "%Y-%m-%dT%H:%M:%S.%f").replace(
        tzinfo=timezone.utc).timestamp()


def lb_get(host, path="/", timeout=3):
    conn = http.client.HTTPConnection(host, 80, timeout=timeout)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


class AlarmActionsTest(unittest.TestCase):
    def setUp(self):
        self.region = Region.for_test(self)
        self.sns = self.region.boto3("sns")
        self.cw = self.region.boto3("cloudwatch")
        self.asc = self.region.boto3("autoscaling")
        self.elb = self.region.boto3("elb")
        self.sub = Subscriber()
        self.addCleanup(self.sub.close)

    def subscribe(self, topic_arn):
        self.assertEqual(self.sns.subscribe(TopicArn=topic_arn, Protocol="http",
                                            Endpoint=self.sub.url)["SubscriptionArn"], "pending confirmation")
        _, conf = self.sub.wait_for("SubscriptionConfirmation")
        verify_signature(conf)
        status, _ = fetch(conf["SubscribeURL"])
        self.assertEqual(status, 200)

    def alarm(self, name):
        return self.cw.describe_alarms(AlarmNames=[name])["MetricAlarms"][0]

    def test_seed_commands_then_cpu_burn_notifies_and_step_policy_scales_out(self):
        # -- the seed's topic and alarm, with both CLIs (v2.9 speaks Query, v1.45 JSON 1.0 to CloudWatch).
        self.assertEqual(self.region.cli_v1(*SEED_CREATE_TOPIC), {"TopicArn": TOPIC_ARN})
        self.assertEqual(self.region.cli_v2(*SEED_CREATE_TOPIC), {"TopicArn": TOPIC_ARN})
        self.region.cli_v2(*SEED_PUT_ALARM)
        self.region.cli_v1(*SEED_PUT_ALARM)  # the same alarm again: an update, no change
        seed = self.alarm("HighCPUUsage")
        self.assertEqual(seed["AlarmActions"], [TOPIC_ARN])
        self.assertEqual(seed["StateValue"], "INSUFFICIENT_DATA")
        self.subscribe(TOPIC_ARN)

        # -- the seed's load balancer, a group behind it whose instances burn CPU, a step policy and a 10-s alarm.
        self.region.cli_v1(*SEED_CREATE_LB)
        path = os.path.join(self.region.root, "burn.sh")
        with open(path, "w") as f:
            f.write(USER_DATA)
        self.region.cli_v1("autoscaling", "create-launch-configuration", "--launch-configuration-name", LC,
                           "--image-id", harness.SAMPLE_AMI, "--instance-type", "t3.micro",
                           "--user-data", "file://" + path)
        self.asc.create_auto_scaling_group(AutoScalingGroupName=ASG, LaunchConfigurationName=LC, MinSize=1,
                                           MaxSize=3, DesiredCapacity=1, LoadBalancerNames=["auto-pipeline-lb"],
                                           AvailabilityZones=["us-west-2a", "us-west-2b"])
        policy_arn = self.asc.put_scaling_policy(
            AutoScalingGroupName=ASG, PolicyName="cpu-steps", PolicyType="StepScaling",
            AdjustmentType="ChangeInCapacity", EstimatedInstanceWarmup=0,
            StepAdjustments=[{"MetricIntervalLowerBound": 0, "ScalingAdjustment": 2}])["PolicyARN"]
        self.region.cli_v2("cloudwatch", "put-metric-alarm", "--alarm-name", "GroupCPUHigh",
                           "--metric-name", "CPUUtilization", "--namespace", "AWS/EC2", "--statistic", "Average",
                           "--period", "10", "--threshold", "20", "--comparison-operator", "GreaterThanThreshold",
                           "--dimensions", "Name=AutoScalingGroupName,Value=" + ASG, "--evaluation-periods", "1",
                           "--alarm-actions", TOPIC_ARN, policy_arn)
        first = set(self.region.wait_group(ASG, 1))

        # -- the notification arrives, signed, in CloudWatch's format.
        _, note = self.sub.wait_for("Notification", lambda m: "GroupCPUHigh" in m.get("Subject", ""), timeout=90)
        received_at = time.time()
        verify_signature(note)
        self.assertEqual(note["TopicArn"], TOPIC_ARN)
        self.assertEqual(note["Subject"], 'ALARM: "GroupCPUHigh" in US West (Oregon)')
        msg = json.loads(note["Message"])
        self.assertEqual((msg["AlarmName"], msg["NewStateValue"], msg["OldStateValue"]),
                         ("GroupCPUHigh", "ALARM", "INSUFFICIENT_DATA"))
        self.assertEqual(msg["AWSAccountId"], ACCOUNT)
        self.assertEqual(msg["Region"], "US West (Oregon)")
        self.assertTrue(msg["NewStateReason"].startswith("Threshold Crossed: 1 out of the last 1 datapoints ["),
                        msg["NewStateReason"])
        self.assertEqual(msg["AlarmActions"], [TOPIC_ARN, policy_arn])
        trig = msg["Trigger"]
        self.assertEqual((trig["MetricName"], trig["Namespace"], trig["Statistic"], trig["Period"],
                          trig["Threshold"], trig["ComparisonOperator"]),
                         ("CPUUtilization", "AWS/EC2", "AVERAGE", 10, 20.0, "GreaterThanThreshold"))
        self.assertEqual(trig["Dimensions"], [{"value": ASG, "name": "AutoScalingGroupName"}])
        alarm = self.alarm("GroupCPUHigh")
        self.assertEqual(alarm["StateValue"], "ALARM")
        data = json.loads(alarm["StateReasonData"])
        newest = max(iso_millis(p["timestamp"]) for p in data["evaluatedDatapoints"])
        period_end = newest + 10
        breach_to_note = received_at - period_end
        print("\nbreach (end of the breaching period) to notification received: %.2f s" % breach_to_note)
        self.assertLess(breach_to_note, 11.0)  # evaluated on the 10-s cadence after its period closed

        # -- the step policy ran on the same alarm: +2, new instances serve behind the seed's load balancer.
        wait_until(lambda: self.region.asg(ASG)["DesiredCapacity"] == 3, 30, 0.5, "the step policy to run")
        instances = set(self.region.wait_group(ASG, 3))
        new = instances - first
        self.assertEqual(len(new), 2)
        causes = [a["Cause"] for a in self.region.activities(ASG)]
        self.assertTrue(any("alarm GroupCPUHigh in state ALARM" in c and "changing the desired capacity from 1 to 3" in c
                            for c in causes), causes)
        dns = self.elb.describe_load_balancers(LoadBalancerNames=["auto-pipeline-lb"])[
            "LoadBalancerDescriptions"][0]["DNSName"]
        wait_until(lambda: self.elb.describe_instance_health(LoadBalancerName="auto-pipeline-lb")["InstanceStates"]
                   and all(s["State"] == "InService" for s in
                           self.elb.describe_instance_health(LoadBalancerName="auto-pipeline-lb")["InstanceStates"])
                   and len(self.elb.describe_instance_health(LoadBalancerName="auto-pipeline-lb")
                           ["InstanceStates"]) == 3, 60, 0.5, "three instances InService")
        seen = set()

        def served_by_new():
            status, body = lb_get(dns)
            if status == 200:
                seen.add(json.loads(body)["instance_id"])
            return new <= seen
        wait_until(served_by_new, 30, 0.05, "the new instances answering through auto-pipeline-lb")

        # -- the seed's alarm, on an instance that does not exist, stays INSUFFICIENT_DATA and notified nobody.
        seed = self.alarm("HighCPUUsage")
        self.assertEqual(seed["StateValue"], "INSUFFICIENT_DATA")
        self.assertFalse(any("HighCPUUsage" in m.get("Subject", "") for _, m in self.sub.messages("Notification")))
        history = self.cw.describe_alarm_history(AlarmName="GroupCPUHigh", HistoryItemType="Action")
        self.assertEqual(sorted(json.loads(h["HistoryData"])["actionState"] for h in history["AlarmHistoryItems"]
                                if json.loads(h["HistoryData"])["notificationResource"] in (TOPIC_ARN,))[:1],
                         ["Succeeded"])


if __name__ == "__main__":
    unittest.main()

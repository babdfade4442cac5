"""Target tracking end to end with real processes (its own file: with the scale-in it runs ~6 minutes, and CTest
gives each e2e file 600 s): the policy creates and owns AlarmHigh/AlarmLow, CPU burnt inside the group's first
instance scales the group out through AlarmHigh, and once the load stops the group scales back in through the
policy's AlarmLow, down to MinSize and never below, and not at all with DisableScaleIn.
"""

import json
import math
import os
import time
import unittest
from datetime import datetime, timezone

import harness
from harness import Region, wait_until
from test_alarm_actions import ASG, LC


class TargetTrackingTest(unittest.TestCase):
    def setUp(self):
        self.region = Region.for_test(self)
        self.cw = self.region.boto3("cloudwatch")
        self.asc = self.region.boto3("autoscaling")

    def alarm(self, name):
        return self.cw.describe_alarms(AlarmNames=[name])["MetricAlarms"][0]

    def test_target_tracking_owns_its_alarms_and_scales_out_under_cpu_load(self):
        """ASGAverageCPUUtilization at 20%: Auto Scaling creates AlarmHigh (3 x 60 s) and AlarmLow (15 x 60 s); the
        first instance burns a core (50% of a t3.micro's 2 vCPUs) until told to stop (bounded), AlarmHigh fires
        after three full minutes above the target, and the group grows to ceil(1 x ~50 / 20) = 3.

        Then the load stops and the group scales back in through the real path: the policy's own AlarmLow, its
        action, the policy's scale-in rule and the group controller. AWS's AlarmLow needs 15 low minutes, too long
        for CI, so the test drives it with SetAlarmState (which on AWS, too, runs the alarm's actions), giving it
        as StateReasonData the low minutes the region measured (GetMetricStatistics). That fifteen low minutes do
        move AlarmLow to ALARM is shown on the fake clock (autoscaling/policies_test.cc,
        TargetTrackingAlarmLowFiresAfterFifteenLowMinutesAndScalesIn). Checked here: one member per run (a tenth
        of the group, at least one), never below MinSize, nothing with DisableScaleIn. Deleting the policy
        deletes its alarms."""
        stop_file = os.path.join("/tmp", "autopipe-tt-stop-%d-%d" % (os.getpid(), int(time.time())))
        self.addCleanup(lambda: os.path.exists(stop_file) and os.unlink(stop_file))
        path = os.path.join(self.region.root, "burn.sh")
        with open(path, "w") as f:
            f.write("#!/bin/sh\ntimeout 330 sh -c 'while [ ! -e %s ]; do :; done'\nexec sleep 3600\n" % stop_file)
        self.region.cli_v1("autoscaling", "create-launch-configuration", "--launch-configuration-name", LC,
                           "--image-id", harness.SAMPLE_AMI, "--instance-type", "t3.micro",
                           "--user-data", "file://" + path)
        self.region.create_lc("idle-lc")
        self.asc.create_auto_scaling_group(AutoScalingGroupName=ASG, LaunchConfigurationName=LC, MinSize=1,
                                           MaxSize=4, DesiredCapacity=1, AvailabilityZones=["us-west-2a"])
        first = set(self.region.wait_group(ASG, 1))
        # Instances launched from now on idle (only the first one burns).
        self.asc.update_auto_scaling_group(AutoScalingGroupName=ASG, LaunchConfigurationName="idle-lc")
        out = self.region.cli_v2("autoscaling", "put-scaling-policy", "--auto-scaling-group-name", ASG,
                                 "--policy-name", "cpu20", "--policy-type", "TargetTrackingScaling",
                                 "--estimated-instance-warmup", "30", "--target-tracking-configuration",
                                 json.dumps({"PredefinedMetricSpecification":
                                             {"PredefinedMetricType": "ASGAverageCPUUtilization"},
                                             "TargetValue": 20.0}))
        names = sorted(a["AlarmName"] for a in out["Alarms"])
        self.assertEqual(len(names), 2, out)
        self.assertRegex(names[0], r"^TargetTracking-%s-AlarmHigh-[0-9a-f-]{36}$" % ASG)
        self.assertRegex(names[1], r"^TargetTracking-%s-AlarmLow-[0-9a-f-]{36}$" % ASG)
        alarms = {a["AlarmName"]: a for a in self.cw.describe_alarms(AlarmNamePrefix="TargetTracking-")["MetricAlarms"]}
        self.assertEqual(sorted(alarms), names)
        high, low = alarms[names[0]], alarms[names[1]]
        for a, ev, thr, op in ((high, 3, 20.0, "GreaterThanThreshold"), (low, 15, 18.0, "LessThanThreshold")):
            self.assertEqual((a["MetricName"], a["Namespace"], a["Statistic"], a["Period"], a["EvaluationPeriods"],
                              a["Threshold"], a["ComparisonOperator"], a["AlarmActions"], a["Dimensions"]),
                             ("CPUUtilization", "AWS/EC2", "Average", 60, ev, thr, op, [out["PolicyARN"]],
                              [{"Name": "AutoScalingGroupName", "Value": ASG}]))
        pol = self.asc.describe_policies(AutoScalingGroupName=ASG)["ScalingPolicies"][0]
        self.assertEqual(pol["TargetTrackingConfiguration"]["TargetValue"], 20.0)
        self.assertEqual(sorted(a["AlarmName"] for a in pol["Alarms"]), names)

        # Three full minutes above 20% (plus the minute in progress): AlarmHigh, and the group scales out.
        start = time.monotonic()
        wait_until(lambda: self.alarm(names[0])["StateValue"] == "ALARM", 300, 2, "AlarmHigh in ALARM")
        data = json.loads(self.alarm(names[0])["StateReasonData"])
        points = data["recentDatapoints"]
        self.assertEqual(len(points), 3)
        # ceil(1 member x the average of the breaching minutes / 20), at most MaxSize: the proportional rule.
        want = min(4, math.ceil(sum(points) / len(points) / 20.0))
        self.assertGreaterEqual(want, 2, points)
        wait_until(lambda: self.region.asg(ASG)["DesiredCapacity"] == want, 30, 0.5,
                   "the scale-out to %d (datapoints %s)" % (want, points))
        print("\nload start to AlarmHigh + scale-out: %.0f s (datapoints %s -> %d)"
              % (time.monotonic() - start, points, want))
        self.assertNotEqual(self.alarm(names[1])["StateValue"], "ALARM")
        grown = want
        causes = [a["Cause"] for a in self.region.activities(ASG)]
        self.assertTrue(any("a monitor alarm %s in state ALARM triggered policy cpu20" % names[0] in c
                            for c in causes), causes)
        self.assertEqual(len(set(self.region.wait_group(ASG, grown)) - first), grown - 1)

        # -- the load stops; wait for a whole minute of the group's CPU below AlarmLow's threshold (18%).
        with open(stop_file, "w") as f:
            f.write("stop\n")
        stopped_at = time.time()

        def low_minutes():
            end = datetime.now(timezone.utc)
            r = self.cw.get_metric_statistics(Namespace="AWS/EC2", MetricName="CPUUtilization",
                                              Dimensions=[{"Name": "AutoScalingGroupName", "Value": ASG}],
                                              StartTime=datetime.fromtimestamp(stopped_at, timezone.utc),
                                              EndTime=end, Period=60, Statistics=["Average"])
            # Only minutes that began after the load stopped and have ended.
            return sorted((p["Timestamp"].timestamp(), p["Average"]) for p in r["Datapoints"]
                          if p["Timestamp"].timestamp() >= stopped_at and p["Timestamp"].timestamp() + 60 <= time.time())
        wait_until(lambda: low_minutes() and all(v < 18.0 for _, v in low_minutes()), 200, 5,
                   "a whole minute of the group's CPU below 18%")
        measured = [v for _, v in low_minutes()]

        def drive(alarm_name):
            """AlarmLow to ALARM through SetAlarmState (OK first, so the state changes and the action runs), with the
            measured low minutes as its datapoints."""
            self.cw.set_alarm_state(AlarmName=alarm_name, StateValue="OK", StateReason="test: reset")
            reason_data = {"version": "1.0", "queryDate": datetime.now(timezone.utc).isoformat(),
                           "statistic": "Average", "period": 60, "recentDatapoints": measured, "threshold": 18.0}
            self.region.cli_v2("cloudwatch", "set-alarm-state", "--alarm-name", alarm_name, "--state-value", "ALARM",
                               "--state-reason", "test: %d low minutes measured" % len(measured),
                               "--state-reason-data", json.dumps(reason_data))

        # DisableScaleIn first: the policy owns no AlarmLow, and its AlarmHigh given low data never shrinks it.
        put_tt = lambda disable_in: self.asc.put_scaling_policy(
            AutoScalingGroupName=ASG, PolicyName="cpu20", PolicyType="TargetTrackingScaling",
            EstimatedInstanceWarmup=30,
            TargetTrackingConfiguration={"PredefinedMetricSpecification":
                                         {"PredefinedMetricType": "ASGAverageCPUUtilization"},
                                         "TargetValue": 20.0, "DisableScaleIn": disable_in})
        only = put_tt(True)["Alarms"]
        self.assertEqual(len(only), 1)
        self.assertIn("-AlarmHigh-", only[0]["AlarmName"])
        self.assertEqual(self.cw.describe_alarms(AlarmNames=[names[1]])["MetricAlarms"], [], "the old AlarmLow went")
        drive(only[0]["AlarmName"])
        harness.hold_for(lambda: self.region.asg(ASG)["DesiredCapacity"] == grown, 5, 0.5,
                         "no scale-in with DisableScaleIn")

        # Scale-in on again: a new AlarmLow; each run takes one member, down to MinSize (1) and never below.
        alarms = put_tt(False)["Alarms"]
        low_name = [a["AlarmName"] for a in alarms if "-AlarmLow-" in a["AlarmName"]][0]
        size = grown
        while size > 1:
            drive(low_name)
            wait_until(lambda: self.region.asg(ASG)["DesiredCapacity"] == size - 1, 30, 0.5,
                       "scale-in from %d to %d" % (size, size - 1))
            size -= 1
            self.region.wait_group(ASG, size)
        causes = [a["Cause"] for a in self.region.activities(ASG)]
        self.assertTrue(any(("a monitor alarm %s in state ALARM triggered policy cpu20 changing the desired capacity "
                             "from 2 to 1." % low_name) in c for c in causes), causes)
        drive(low_name)
        harness.hold_for(lambda: self.region.asg(ASG)["DesiredCapacity"] == 1, 5, 0.5, "never below MinSize")
        print("\nscale-in: %d -> 1 on AlarmLow (measured low minutes %s)" % (grown, measured))
        names = sorted(a["AlarmName"] for a in alarms)

        # The alarms belong to the policy: deleting it deletes them.
        self.region.cli_v1("autoscaling", "delete-policy", "--auto-scaling-group-name", ASG, "--policy-name", "cpu20")
        self.assertEqual(self.cw.describe_alarms(AlarmNamePrefix="TargetTracking-")["MetricAlarms"], [])


if __name__ == "__main__":
    unittest.main()

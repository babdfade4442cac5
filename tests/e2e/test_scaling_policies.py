"""Scaling policies end to end: PutScalingPolicy / DescribePolicies / ExecutePolicy / DeletePolicy with aws-cli v1
and v2 and boto3. Executing a policy changes the group's desired capacity, real instances follow (and serve), the
scaling activities quote AWS's cause, and a simple policy's cooldown is honoured when asked to.
"""

import re
import unittest

from harness import Region

ASG = "policy-asg"
LC = "policy-lc"
POLICY_ARN_RE = re.compile(r"^arn:aws:autoscaling:us-west-2:123456789012:scalingPolicy:[0-9a-f-]{36}:"
                           r"autoScalingGroupName/policy-asg:policyName/%s$")


class ScalingPoliciesTest(unittest.TestCase):
    def setUp(self):
        self.region = Region.for_test(self)
        self.asc = self.region.boto3("autoscaling")
        self.region.create_lc(LC)
        self.asc.create_auto_scaling_group(AutoScalingGroupName=ASG, LaunchConfigurationName=LC, MinSize=1,
                                           MaxSize=4, DesiredCapacity=1, AvailabilityZones=["us-west-2a"])
        self.region.wait_group(ASG, 1)

    def desired(self):
        return self.region.asg(ASG)["DesiredCapacity"]

    def test_execute_policy_scales_the_group_and_cooldown_is_honoured(self):
        out = self.region.cli_v1("autoscaling", "put-scaling-policy", "--auto-scaling-group-name", ASG,
                                 "--policy-name", "scale-out", "--adjustment-type", "ChangeInCapacity",
                                 "--scaling-adjustment", "2", "--cooldown", "600")
        self.assertRegex(out["PolicyARN"], POLICY_ARN_RE.pattern % "scale-out")
        policies = self.region.cli_v2("autoscaling", "describe-policies", "--auto-scaling-group-name", ASG)
        self.assertEqual([(p["PolicyName"], p["PolicyType"], p["ScalingAdjustment"], p["Cooldown"])
                          for p in policies["ScalingPolicies"]], [("scale-out", "SimpleScaling", 2, 600)])

        self.region.cli_v2("autoscaling", "execute-policy", "--auto-scaling-group-name", ASG,
                           "--policy-name", "scale-out", "--honor-cooldown")
        self.assertEqual(self.desired(), 3)
        self.region.wait_group(ASG, 3)  # the new instances run and serve
        causes = [a["Cause"] for a in self.region.activities(ASG)]
        self.assertTrue(any("a user request executed policy scale-out changing the desired capacity from 1 to 3." in c
                            for c in causes), causes)

        # Within the 600 s cooldown an execution that honours it is refused and changes nothing.
        code, _ = self.region.cli_error_code("autoscaling", "execute-policy", "--auto-scaling-group-name", ASG,
                                             "--policy-name", "scale-out", "--honor-cooldown")
        self.assertEqual(code, "ScalingActivityInProgress")
        self.assertEqual(self.desired(), 3)
        # Without HonorCooldown (the default) it runs, clamped to MaxSize.
        self.asc.execute_policy(AutoScalingGroupName=ASG, PolicyName="scale-out")
        self.assertEqual(self.desired(), 4)
        self.region.wait_group(ASG, 4)

        # A percentage scale-in by ARN: -50% of 4 = -2.
        arn = self.asc.put_scaling_policy(AutoScalingGroupName=ASG, PolicyName="scale-in",
                                          AdjustmentType="PercentChangeInCapacity",
                                          ScalingAdjustment=-50)["PolicyARN"]
        self.asc.execute_policy(PolicyName=arn)
        self.assertEqual(self.desired(), 2)
        self.region.wait_group(ASG, 2)

        self.region.cli_v1("autoscaling", "delete-policy", "--auto-scaling-group-name", ASG,
                           "--policy-name", "scale-out")
        names = [p["PolicyName"] for p in self.asc.describe_policies(AutoScalingGroupName=ASG)["ScalingPolicies"]]
        self.assertEqual(names, ["scale-in"])

    def test_step_policy_executed_with_a_breach(self):
        self.asc.put_scaling_policy(
            AutoScalingGroupName=ASG, PolicyName="steps", PolicyType="StepScaling",
            AdjustmentType="ChangeInCapacity", EstimatedInstanceWarmup=0,
            StepAdjustments=[{"MetricIntervalLowerBound": 0, "MetricIntervalUpperBound": 20, "ScalingAdjustment": 1},
                             {"MetricIntervalLowerBound": 20, "ScalingAdjustment": 2}])
        p = self.asc.describe_policies(AutoScalingGroupName=ASG, PolicyNames=["steps"])["ScalingPolicies"][0]
        self.assertEqual(p["MetricAggregationType"], "Average")
        self.assertEqual(len(p["StepAdjustments"]), 2)
        with self.assertRaises(self.asc.exceptions.ClientError) as cm:
            self.asc.execute_policy(AutoScalingGroupName=ASG, PolicyName="steps")  # no MetricValue
        self.assertEqual(cm.exception.response["Error"]["Code"], "ValidationError")
        self.asc.execute_policy(AutoScalingGroupName=ASG, PolicyName="steps", MetricValue=95, BreachThreshold=70)
        self.assertEqual(self.desired(), 3)  # 25 over the threshold: +2
        self.region.wait_group(ASG, 3)
        # Once they serve, a smaller breach adds one more.
        self.asc.execute_policy(AutoScalingGroupName=ASG, PolicyName="steps", MetricValue=75, BreachThreshold=70)
        self.assertEqual(self.desired(), 4)
        self.region.wait_group(ASG, 4)

    def test_invalid_policies_are_refused(self):
        for kw in [dict(AdjustmentType="ChangeInCapacity"),                              # no ScalingAdjustment
                   dict(AdjustmentType="Sideways", ScalingAdjustment=1),
                   dict(AdjustmentType="ChangeInCapacity", ScalingAdjustment=1, MinAdjustmentMagnitude=2),
                   dict(PolicyType="StepScaling", AdjustmentType="ChangeInCapacity",
                        StepAdjustments=[{"MetricIntervalLowerBound": 0, "MetricIntervalUpperBound": 10,
                                          "ScalingAdjustment": 1},
                                         {"MetricIntervalLowerBound": 5, "ScalingAdjustment": 2}])]:
            with self.assertRaises(self.asc.exceptions.ClientError) as cm:
                self.asc.put_scaling_policy(AutoScalingGroupName=ASG, PolicyName="bad", **kw)
            self.assertEqual(cm.exception.response["Error"]["Code"], "ValidationError", kw)
        self.assertEqual(self.asc.describe_policies()["ScalingPolicies"], [])


if __name__ == "__main__":
    unittest.main()

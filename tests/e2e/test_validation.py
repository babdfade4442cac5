"""Request validation: AWS error codes and messages, and no state change on any rejected request."""

import json
import unittest
import urllib.parse

import harness
from harness import Region, SAMPLE_AMI, wait_until, parse_error_xml, pid_alive

LC = "val-lc"
ASG = "val-asg"
AZS = ["us-west-2a", "us-west-2b"]


class ValidationTest(unittest.TestCase):
    region = None

    @classmethod
    def setUpClass(cls):
        cls.region = Region.for_class(cls)
        cls.asc = cls.region.boto3("autoscaling")
        cls.region.create_lc(LC)
        cls.region.create_group(ASG, LC, 1, AZS, min_size=1, max_size=2)
        cls.region.wait_group(ASG, 1)

    # -- helpers ---------------------------------------------------------------------------------

    def snapshot(self):
        """Everything a rejected request could have changed, as plain data."""
        lcs = self.asc.describe_launch_configurations()["LaunchConfigurations"]
        groups = self.asc.describe_auto_scaling_groups()["AutoScalingGroups"]
        return {
            "lcs": sorted((lc["LaunchConfigurationName"], lc["ImageId"], lc["InstanceType"]) for lc in lcs),
            "groups": sorted((g["AutoScalingGroupName"], g["MinSize"], g["MaxSize"], g["DesiredCapacity"],
                              g.get("LaunchConfigurationName"), tuple(sorted(g["AvailabilityZones"])),
                              tuple(sorted(i["InstanceId"] for i in g["Instances"])))
                             for g in groups),
        }

    def assert_cli_error(self, code, *args, version=1, message=None, message_part=None):
        before = self.snapshot()
        got_code, msg = self.region.cli_error_code(*args, version=version)
        self.assertEqual(got_code, code, msg)
        if message is not None:
            self.assertEqual(msg.rstrip(), message)
        if message_part is not None:
            self.assertIn(message_part, msg)
        self.assertEqual(self.snapshot(), before, "state changed after a rejected request")
        return msg

    def assert_raw_error(self, body, status, codes, sign=True):
        before = self.snapshot()
        if sign:
            st, _, text = self.region.signed_request(body)
        else:
            st, _, text = self.region.raw_request(body)
        self.assertIn(st, status if isinstance(status, (tuple, list)) else (status,), text[:300])
        if st == 413:
            return None
        _, code, msg = parse_error_xml(text)
        self.assertIn(code, codes if isinstance(codes, (tuple, list)) else (codes,), text[:300])
        self.assertEqual(self.snapshot(), before, "state changed after a rejected request")
        return msg

    def create_args(self, name, min_size, max_size, desired=None, lc=LC):
        args = ["autoscaling", "create-auto-scaling-group", "--auto-scaling-group-name", name,
                "--min-size", str(min_size), "--max-size", str(max_size),
                "--launch-configuration-name", lc, "--availability-zones", *AZS]
        if desired is not None:
            args += ["--desired-capacity", str(desired)]
        return args

    # -- sizes -----------------------------------------------------------------------------------

    def test_min_greater_than_max(self):
        for v in (1, 2):
            self.assert_cli_error("ValidationError", *self.create_args("val-minmax", 3, 2), version=v)
        self.assertIsNone(self.region.asg("val-minmax"))

    def test_desired_outside_min_max(self):
        for v in (1, 2):
            self.assert_cli_error("ValidationError", *self.create_args("val-desired-hi", 1, 3, 5), version=v,
                                  message="Desired capacity:5 must be between the specified min size:1 and max size:3")
            self.assert_cli_error("ValidationError", *self.create_args("val-desired-lo", 2, 4, 1), version=v,
                                  message="Desired capacity:1 must be between the specified min size:2 and max size:4")
        self.assertIsNone(self.region.asg("val-desired-hi"))
        self.assertIsNone(self.region.asg("val-desired-lo"))
        # UpdateAutoScalingGroup checks against the group's own bounds.
        self.assert_cli_error("ValidationError", "autoscaling", "update-auto-scaling-group",
                              "--auto-scaling-group-name", ASG, "--desired-capacity", "5",
                              message="Desired capacity:5 must be between the specified min size:1 and max size:2")

    def test_set_desired_capacity_above_max(self):
        for v in (1, 2):
            self.assert_cli_error("ValidationError", "autoscaling", "set-desired-capacity",
                                  "--auto-scaling-group-name", ASG, "--desired-capacity", "5", version=v,
                                  message="New SetDesiredCapacity value 5 is above max value 2 for the AutoScalingGroup.")
        self.assert_cli_error("ValidationError", "autoscaling", "set-desired-capacity",
                              "--auto-scaling-group-name", ASG, "--desired-capacity", "0")
        self.assertEqual(self.region.asg(ASG)["DesiredCapacity"], 1)

    # -- references ------------------------------------------------------------------------------

    def test_unknown_launch_configuration(self):
        self.assert_cli_error("ValidationError", *self.create_args("val-nolc", 1, 1, lc="no-such-lc"),
                              message_part="no-such-lc")
        self.assertIsNone(self.region.asg("val-nolc"))

    def test_launch_configuration_with_unknown_image(self):
        bad = "ami-00000000000000bad"
        for v in (1, 2):
            before = self.snapshot()
            code, msg = self.region.cli_error_code(
                "autoscaling", "create-launch-configuration", "--launch-configuration-name", "val-badami",
                "--image-id", bad, "--instance-type", "t3.micro", version=v)
            self.assertIn(code, ("ValidationError", "InvalidAMIID.NotFound"), msg)
            self.assertIn(bad, msg)
            self.assertEqual(self.snapshot(), before)
        names = [lc["LaunchConfigurationName"] for lc in
                 self.asc.describe_launch_configurations()["LaunchConfigurations"]]
        self.assertNotIn("val-badami", names)

    def test_duplicates(self):
        self.assert_cli_error("AlreadyExists", *self.create_args(ASG, 0, 5, 0))
        self.assert_cli_error("AlreadyExists", "autoscaling", "create-launch-configuration",
                              "--launch-configuration-name", LC, "--image-id", harness.MINIMAL_AMI,
                              "--instance-type", "t3.small", version=2)
        g = self.region.asg(ASG)
        self.assertEqual((g["MinSize"], g["MaxSize"]), (1, 2))

    def test_delete_missing_and_in_use(self):
        self.assert_cli_error("ValidationError", "autoscaling", "delete-auto-scaling-group",
                              "--auto-scaling-group-name", "val-no-such-group")
        self.assert_cli_error("ResourceInUse", "autoscaling", "delete-launch-configuration",
                              "--launch-configuration-name", LC)
        out = self.region.cli_v1("autoscaling", "describe-auto-scaling-groups",
                                 "--auto-scaling-group-names", "val-no-such-group")
        self.assertEqual(out["AutoScalingGroups"], [])

    # -- wire-level ------------------------------------------------------------------------------

    def body(self, *pairs):
        return urllib.parse.urlencode([("Version", harness.AS_VERSION)] + list(pairs))

    def test_unknown_and_missing_action(self):
        self.assert_raw_error(self.body(("Action", "LaunchTheRockets")), 400, "InvalidAction")
        self.assert_raw_error(self.body(), 400, ("MissingAction", "InvalidAction"))

    def test_missing_required_parameter(self):
        self.assert_raw_error(self.body(("Action", "CreateAutoScalingGroup"), ("AutoScalingGroupName", "val-nomax"),
                                        ("MinSize", "1"), ("LaunchConfigurationName", LC),
                                        ("AvailabilityZones.member.1", "us-west-2a")),
                              400, ("ValidationError", "MissingParameter"))
        self.assert_raw_error(self.body(("Action", "CreateLaunchConfiguration"), ("ImageId", SAMPLE_AMI),
                                        ("InstanceType", "t3.micro")),
                              400, ("ValidationError", "MissingParameter"))
        self.assertIsNone(self.region.asg("val-nomax"))

    def test_bad_parameter_values(self):
        base = [("Action", "CreateAutoScalingGroup"), ("AutoScalingGroupName", "val-badint"),
                ("MaxSize", "2"), ("LaunchConfigurationName", LC), ("AvailabilityZones.member.1", "us-west-2a")]
        self.assert_raw_error(self.body(*base, ("MinSize", "one")), 400,
                              ("ValidationError", "InvalidParameterValue", "MalformedInput"))
        self.assert_raw_error(self.body(*base, ("MinSize", "-1")), 400, ("ValidationError", "InvalidParameterValue"))
        self.assert_raw_error(self.body(*base, ("MinSize", "99999999999999999999999")), 400,
                              ("ValidationError", "InvalidParameterValue", "MalformedInput"))
        self.assertIsNone(self.region.asg("val-badint"))

    def test_malformed_bodies(self):
        garbage = "Action=CreateLaunchConfiguration&%%%zz&=&&==&Version=2011-01-01&LaunchConfigurationName=%ZZ%&" \
                  "ImageId=" + SAMPLE_AMI + "&InstanceType=t3.micro&\xff\xfe"
        before = self.snapshot()
        st, _, text = self.region.signed_request(garbage.encode("latin-1"))
        self.assertTrue(400 <= st < 500, "garbage form encoding must be a 4xx, got %d %s" % (st, text[:300]))
        parse_error_xml(text)
        self.assertEqual(self.snapshot(), before)

        # A huge value (the model caps names at 255 characters).
        huge = self.body(("Action", "CreateLaunchConfiguration"), ("LaunchConfigurationName", "x" * 200000),
                         ("ImageId", SAMPLE_AMI), ("InstanceType", "t3.micro"))
        self.assert_raw_error(huge, (400, 413), ("ValidationError",))
        long_name = self.body(("Action", "CreateLaunchConfiguration"), ("LaunchConfigurationName", "y" * 256),
                              ("ImageId", SAMPLE_AMI), ("InstanceType", "t3.micro"))
        self.assert_raw_error(long_name, 400, "ValidationError")

        # Not form-encoded at all.
        st, _, text = self.region.signed_request(b"\x00\x01\x02<xml>not a form</xml>")
        self.assertTrue(400 <= st < 500, "binary body must be a 4xx, got %d %s" % (st, text[:300]))
        self.assertEqual(self.snapshot(), before)
        # The server is still fine.
        self.assertIsNotNone(self.region.asg(ASG))

    def test_control_characters_and_invalid_utf8_are_refused(self):
        pattern = ("Member must satisfy regular expression pattern: "
                   "[\\u0020-\\uD7FF\\uE000-\\uFFFD\\uD800\\uDC00-\\uDBFF\\uDFFF\\r\\n\\t]*")
        before = self.snapshot()
        import botocore.exceptions
        with self.assertRaises(botocore.exceptions.ClientError) as ctl:
            self.asc.create_launch_configuration(LaunchConfigurationName="val-ctl\x07lc", ImageId=SAMPLE_AMI,
                                                 InstanceType="t3.micro")
        err = ctl.exception.response["Error"]
        self.assertEqual(err["Code"], "ValidationError")
        self.assertTrue(err["Message"].startswith("1 validation error detected: Value 'val-ctl\ufffdlc' at "
                                                  "'launchConfigurationName' failed to satisfy constraint: "),
                        err["Message"])
        self.assertTrue(err["Message"].endswith(pattern), err["Message"])
        msg = self.assert_raw_error(self.body(("Action", "CreateLaunchConfiguration"), ("ImageId", SAMPLE_AMI),
                                              ("InstanceType", "t3.micro")) + "&LaunchConfigurationName=a%FFb",
                                    400, "ValidationError")
        self.assertIn(pattern, msg)
        self.assertEqual(self.snapshot(), before)

    # -- AWS JSON 1.0 ----------------------------------------------------------------------------

    def test_json10_requests_reach_the_same_handlers(self):
        """botocore speaking AWS JSON 1.0 (as it does to CloudWatch) to an existing Query operation: the
        request reaches the handler with the same parameters, the reply parses, errors carry their code."""
        import botocore.exceptions
        js = self.region.botocore_json10("autoscaling")
        name = "val-json-lc"
        js.create_launch_configuration(LaunchConfigurationName=name, ImageId=SAMPLE_AMI, InstanceType="t3.micro",
                                       SecurityGroups=["sg-a", "sg-b"],
                                       InstanceMonitoring={"Enabled": False})
        try:
            # Written through JSON, read back through Query: the lists and structures arrived flattened.
            lc = self.asc.describe_launch_configurations(LaunchConfigurationNames=[name])["LaunchConfigurations"]
            self.assertEqual(len(lc), 1)
            self.assertEqual(lc[0]["SecurityGroups"], ["sg-a", "sg-b"])
            self.assertEqual(lc[0]["InstanceMonitoring"], {"Enabled": False})
            # And read through JSON: the result renders as JSON that botocore parses.
            got = js.describe_launch_configurations(LaunchConfigurationNames=[name], MaxRecords=10)
            self.assertEqual([c["LaunchConfigurationName"] for c in got["LaunchConfigurations"]], [name])
            self.assertEqual(got["LaunchConfigurations"][0]["SecurityGroups"], ["sg-a", "sg-b"])

            with self.assertRaises(botocore.exceptions.ClientError) as dup:
                js.create_launch_configuration(LaunchConfigurationName=name, ImageId=SAMPLE_AMI,
                                               InstanceType="t3.micro")
            self.assertEqual(dup.exception.response["Error"]["Code"], "AlreadyExists")
            self.assertEqual(dup.exception.response["ResponseMetadata"]["HTTPStatusCode"], 400)
            self.assertEqual(dup.exception.response["ResponseMetadata"]["HTTPHeaders"].get("x-amzn-query-error"),
                             "AlreadyExists;Sender")
            with self.assertRaises(botocore.exceptions.ClientError) as sizes:
                js.update_auto_scaling_group(AutoScalingGroupName=ASG, MinSize=2, MaxSize=1)
            self.assertEqual(sizes.exception.response["Error"]["Code"], "ValidationError")
            self.assertIn("min bound", sizes.exception.response["Error"]["Message"])
        finally:
            self.asc.delete_launch_configuration(LaunchConfigurationName=name)

    def test_json10_malformed_bodies(self):
        target = {"X-Amz-Target": "AutoScaling_2011_01_01.DescribeAutoScalingGroups",
                  "Content-Type": "application/x-amz-json-1.0", "x-amzn-query-mode": "true"}
        for body, code in (("[1]", "SerializationException"), ("{", "SerializationException"),
                           ('{"A":' + "[" * 40 + "]" * 40 + "}", "SerializationException"),
                           ('{"AutoScalingGroupNames":[' + ",".join(['"g"'] * 1001) + "]}", "ValidationError")):
            st, headers, text = self.region.signed_request(body, extra_headers=target)
            self.assertEqual(st, 400, text[:300])
            self.assertEqual(json.loads(text)["__type"], code)
            self.assertEqual(headers.get("x-amzn-query-error"), code + ";Sender")
        # A target that is not UTF-8 (it cannot be signed as sent, so the signature check answers): a clean
        # JSON error, never a 500 or an exception text in the headers.
        bad_target = dict(target, **{"X-Amz-Target": "AutoScaling_2011_01_01.\xff\xfe"})
        st, headers, text = self.region.signed_request("{}", extra_headers=bad_target)
        self.assertTrue(400 <= st < 500, "%d %s" % (st, text[:300]))
        self.assertIn("__type", json.loads(text))
        self.assertNotIn("EXCEPTION_WHAT", {k.upper() for k in headers})

    # -- deletion --------------------------------------------------------------------------------

    def test_delete_group_with_instances(self):
        name = "val-delete"
        self.region.create_group(name, LC, 2, AZS, min_size=0, max_size=2)
        insts = self.region.wait_group(name, 2)
        pids = [v["doc"]["pid"] for v in insts.values()]
        inits = [harness.instance_init_pid(iid, self.region.block_prefix) for iid in insts]

        before = self.snapshot()
        code, msg = self.region.cli_error_code("autoscaling", "delete-auto-scaling-group",
                                               "--auto-scaling-group-name", name)
        self.assertIn(code, ("ResourceInUse", "ScalingActivityInProgress"), msg)
        self.assertEqual(self.snapshot(), before)
        self.assertTrue(all(pid_alive(p) for p in pids + inits))

        self.region.cli_v2("autoscaling", "delete-auto-scaling-group", "--auto-scaling-group-name", name,
                           "--force-delete")
        wait_until(lambda: self.region.asg(name) is None, harness.CONVERGE_TIMEOUT, 0.5, "group %s deleted" % name)
        wait_until(lambda: not any(pid_alive(p) for p in pids + inits), harness.CONVERGE_TIMEOUT, 0.5,
                   "processes of the deleted group's instances gone")
        self.assertEqual([p for p, e in harness.instance_processes(self.region.block_prefix)
                          if e.get("AUTOPIPE_INSTANCE_ID") in insts], [])
        for iid in insts:
            inst = self.region.ec2_instance(iid)
            if inst is not None:
                self.assertEqual(inst["State"]["Name"], "terminated")
        # The other group is untouched.
        self.assertEqual(len(self.region.group_instances(ASG)), 1)


if __name__ == "__main__":
    unittest.main()

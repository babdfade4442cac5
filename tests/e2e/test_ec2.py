"""EC2 APIs (images, zones, regions, instances and their filters, termination), UserData boot scripts on the
minimal image, and Auto Scaling tags."""

import os
import signal
import unittest

import harness
from harness import Region, SAMPLE_AMI, MINIMAL_AMI, wait_until, pid_alive

AZS = ["us-west-2a", "us-west-2b"]


def flat(reservations_doc):
    return [i for r in reservations_doc["Reservations"] for i in r["Instances"]]


class Ec2Test(unittest.TestCase):
    region = None

    @classmethod
    def setUpClass(cls):
        cls.region = Region.for_class(cls)
        cls.asc = cls.region.boto3("autoscaling")
        cls.ec2 = cls.region.boto3("ec2")

    def cleanup_group(self, name):
        def delete():
            try:
                self.asc.delete_auto_scaling_group(AutoScalingGroupName=name, ForceDelete=True)
            except Exception as e:  # noqa: BLE001 - best effort
                harness.log("force delete %s: %r" % (name, e))
        self.addCleanup(delete)

    def ids(self, instances):
        return {i["InstanceId"] for i in instances}

    # -- catalog ---------------------------------------------------------------------------------

    def test_describe_images(self):
        for v in (1, 2):
            imgs = self.region.cli(v, "ec2", "describe-images", "--image-ids", SAMPLE_AMI, MINIMAL_AMI)["Images"]
            by_id = {i["ImageId"]: i for i in imgs}
            self.assertEqual(set(by_id), {SAMPLE_AMI, MINIMAL_AMI})
            self.assertEqual(by_id[SAMPLE_AMI]["Name"], "autopipe-sample-web")
            self.assertEqual(by_id[MINIMAL_AMI]["Name"], "autopipe-minimal")
            for img in imgs:
                self.assertEqual(img["State"], "available")
            one = self.region.cli(v, "ec2", "describe-images", "--image-ids", MINIMAL_AMI)["Images"]
            self.assertEqual([i["ImageId"] for i in one], [MINIMAL_AMI])
            code, msg = self.region.cli_error_code("ec2", "describe-images", "--image-ids", "ami-0123456789abcdef0",
                                                   version=v)
            self.assertEqual(code, "InvalidAMIID.NotFound")
            self.assertIn("ami-0123456789abcdef0", msg)
        all_imgs = {i["ImageId"] for i in self.ec2.describe_images()["Images"]}
        self.assertTrue({SAMPLE_AMI, MINIMAL_AMI} <= all_imgs, all_imgs)

    def test_describe_availability_zones_and_regions(self):
        for v in (1, 2):
            zones = self.region.cli(v, "ec2", "describe-availability-zones")["AvailabilityZones"]
            by_name = {z["ZoneName"]: z for z in zones}
            self.assertTrue({"us-west-2a", "us-west-2b", "us-west-2c"} <= set(by_name), by_name)
            for n in ("us-west-2a", "us-west-2b", "us-west-2c"):
                self.assertEqual(by_name[n]["State"], "available")
                self.assertEqual(by_name[n]["RegionName"], "us-west-2")
            for z in zones:
                self.assertTrue(z["ZoneName"].startswith("us-west-2"), z)
            regions = self.region.cli(v, "ec2", "describe-regions")["Regions"]
            self.assertIn("us-west-2", [r["RegionName"] for r in regions])

    # -- instances -------------------------------------------------------------------------------

    def test_describe_instances_filters(self):
        self.region.create_lc("ec2-filter-lc")
        self.asc.create_auto_scaling_group(
            AutoScalingGroupName="ec2-filter-a", LaunchConfigurationName="ec2-filter-lc", MinSize=2, MaxSize=2,
            DesiredCapacity=2, AvailabilityZones=AZS,
            Tags=[{"Key": "team", "Value": "pipeline", "PropagateAtLaunch": True},
                  {"Key": "private", "Value": "no-propagate", "PropagateAtLaunch": False}])
        self.cleanup_group("ec2-filter-a")
        self.region.create_group("ec2-filter-b", "ec2-filter-lc", 1, ["us-west-2c"])
        self.cleanup_group("ec2-filter-b")
        a = self.region.wait_group("ec2-filter-a", 2)
        b = self.region.wait_group("ec2-filter-b", 1)
        a_ids, b_ids = set(a), set(b)

        # Tags on the instances.
        for inst in self.region.ec2_instances(filters=[{"Name": "instance-id", "Values": list(a_ids)}]):
            tags = {t["Key"]: t["Value"] for t in inst.get("Tags", [])}
            self.assertEqual(tags.get("aws:autoscaling:groupName"), "ec2-filter-a")
            self.assertEqual(tags.get("team"), "pipeline")
            self.assertNotIn("private", tags)

        cli = self.region.cli_v1
        one = sorted(a_ids)[0]
        got = flat(cli("ec2", "describe-instances", "--filters", "Name=instance-id,Values=%s" % one))
        self.assertEqual(self.ids(got), {one})
        got = flat(cli("ec2", "describe-instances", "--instance-ids", one))
        self.assertEqual(self.ids(got), {one})

        got = flat(cli("ec2", "describe-instances", "--filters", "Name=instance-state-name,Values=running"))
        self.assertTrue((a_ids | b_ids) <= self.ids(got))
        for i in got:
            self.assertEqual(i["State"]["Name"], "running")
        got = flat(cli("ec2", "describe-instances", "--filters", "Name=instance-state-name,Values=stopped"))
        self.assertFalse((a_ids | b_ids) & self.ids(got))

        # (terminated instances of earlier tests stay visible, hence the state filter)
        got = flat(self.region.cli_v2("ec2", "describe-instances", "--filters",
                                      "Name=availability-zone,Values=us-west-2c",
                                      "Name=instance-state-name,Values=running"))
        self.assertEqual(self.ids(got), b_ids)
        got = flat(cli("ec2", "describe-instances", "--filters", "Name=availability-zone,Values=us-west-2a",
                       "Name=instance-state-name,Values=running"))
        self.assertEqual(self.ids(got), {iid for iid in a_ids if a[iid]["az"] == "us-west-2a"})

        got = flat(cli("ec2", "describe-instances", "--filters",
                       "Name=tag:aws:autoscaling:groupName,Values=ec2-filter-a"))
        self.assertEqual(self.ids(got), a_ids)
        got = flat(cli("ec2", "describe-instances", "--filters", "Name=tag:team,Values=pipeline"))
        self.assertEqual(self.ids(got), a_ids)
        got = flat(cli("ec2", "describe-instances", "--filters", "Name=tag:team,Values=nobody"))
        self.assertEqual(got, [])
        # Two filters are ANDed; several values of one filter are ORed.
        got = flat(cli("ec2", "describe-instances", "--filters",
                       "Name=tag:aws:autoscaling:groupName,Values=ec2-filter-a,ec2-filter-b",
                       "Name=availability-zone,Values=us-west-2c", "Name=instance-state-name,Values=running"))
        self.assertEqual(self.ids(got), b_ids)

        # An unknown instance id is an error, not an empty answer.
        code, _ = self.region.cli_error_code("ec2", "describe-instances", "--instance-ids", "i-0123456789abcdef0")
        self.assertEqual(code, "InvalidInstanceID.NotFound")
        # A malformed one is malformed, as EC2 says.
        for bad in ("i-123", "bogus"):
            code, _ = self.region.cli_error_code("ec2", "describe-instances", "--instance-ids", bad, version=2)
            self.assertEqual(code, "InvalidInstanceID.Malformed")


    def test_terminate_instances_group_replaces(self):
        name = "ec2-terminate"
        self.region.create_lc(name + "-lc")
        self.region.create_group(name, name + "-lc", 2, AZS)
        self.cleanup_group(name)
        insts = self.region.wait_group(name, 2)
        victim = sorted(insts)[0]
        pid = insts[victim]["doc"]["pid"]
        out = self.region.cli_v1("ec2", "terminate-instances", "--instance-ids", victim)
        ti = out["TerminatingInstances"]
        self.assertEqual([t["InstanceId"] for t in ti], [victim])
        self.assertEqual(ti[0]["PreviousState"]["Name"], "running")
        self.assertIn(ti[0]["CurrentState"]["Name"], ("shutting-down", "terminated"))

        wait_until(lambda: not pid_alive(pid), harness.CONVERGE_TIMEOUT, 0.3, "sample service of %s gone" % victim)
        wait_until(lambda: (self.region.ec2_instance(victim) or {"State": {"Name": "terminated"}})["State"]["Name"]
                   == "terminated", harness.CONVERGE_TIMEOUT, 0.5, "%s terminated" % victim)
        wait_until(lambda: victim not in {i["InstanceId"] for i in self.region.group_instances(name)},
                   harness.REPLACE_TIMEOUT, 0.5, "%s out of the group" % victim)
        now = self.region.wait_group(name, 2, harness.REPLACE_TIMEOUT)
        self.assertNotIn(victim, now)
        self.assertEqual(len(set(now) - set(insts)), 1)
        self.assertEqual(sorted(harness.az_counts(now.values()).values()), [1, 1])
        # terminated instances stay visible as terminated (or vanish), never running again.
        got = self.region.ec2_instances(filters=[{"Name": "instance-state-name", "Values": ["running"]},
                                                 {"Name": "instance-id", "Values": [victim]}])
        self.assertEqual(got, [])

    # -- UserData --------------------------------------------------------------------------------

    def user_data_group(self, name, script):
        path = os.path.join(self.region.root, name + ".sh")
        with open(path, "w") as f:
            f.write(script)
        self.region.cli_v1("autoscaling", "create-launch-configuration", "--launch-configuration-name", name + "-lc",
                           "--image-id", MINIMAL_AMI, "--instance-type", "t3.nano",
                           "--user-data", "file://" + path)
        self.region.create_group(name, name + "-lc", 1, ["us-west-2b"])
        self.cleanup_group(name)
        return self.region.wait_group(name, 1, serving=False)

    def instance_dir(self, iid):
        """The instance's own folder: its boot script's working directory, the one place it may write in the
        data dir (it may run under a uid of its own that cannot reach the test's temporary folder)."""
        return os.path.join(self.region.data_dir, "instances", iid)

    def test_user_data_shebang_script(self):
        script = ("#!/bin/sh\n"
                  "env | grep '^AUTOPIPE_' | sort > $AUTOPIPE_INSTANCE_ID.env\n"
                  "echo \"$AUTOPIPE_INSTANCE_ID\" > $AUTOPIPE_INSTANCE_ID.id\n"
                  "exec sleep 300\n")
        insts = self.user_data_group("ec2-userdata", script)
        iid = next(iter(insts))
        out_dir = self.instance_dir(iid)
        id_file = os.path.join(out_dir, iid + ".id")
        content = wait_until(lambda: harness.read_text(id_file), 10, 0.2,
                             "user data to write %s" % id_file)
        self.assertEqual(content.strip(), iid)
        env = dict(line.split("=", 1) for line in harness.read_text(os.path.join(out_dir, iid + ".env")).splitlines())
        inst = self.region.ec2_instance(iid)
        self.assertEqual(inst["State"]["Name"], "running")
        self.assertEqual(inst["ImageId"], MINIMAL_AMI)
        self.assertEqual(env["AUTOPIPE_INSTANCE_ID"], iid)
        self.assertEqual(env["AUTOPIPE_PRIVATE_IP"], inst["PrivateIpAddress"])
        self.assertEqual(env["AUTOPIPE_AVAILABILITY_ZONE"], "us-west-2b")
        self.assertEqual(env["AUTOPIPE_REGION"], "us-west-2")
        # The minimal image runs no sample service.
        self.assertIsNone(harness.serves(inst["PrivateIpAddress"]))

        # The boot script's `sleep 300` is what keeps the instance running.
        sleeps = [p for p, _ in harness.instance_processes(self.region.block_prefix, iid)
                  if (harness.proc_cmdline(p) or [""])[0].endswith("sleep")]
        self.assertEqual(len(sleeps), 1, [(p, harness.proc_cmdline(p)) for p, _ in
                                          harness.instance_processes(self.region.block_prefix, iid)])
        harness.hold_for(lambda: self.region.ec2_instance(iid)["State"]["Name"] == "running", 2, 0.5,
                         "%s running while its boot script runs" % iid)
        os.kill(sleeps[0], signal.SIGKILL)
        # When the script's process tree is gone, the instance stops running and is replaced.
        wait_until(lambda: iid not in {i["InstanceId"] for i in self.region.group_instances("ec2-userdata")},
                   harness.REPLACE_TIMEOUT, 0.5, "%s replaced after its boot script ended" % iid)
        now = self.region.wait_group("ec2-userdata", 1, harness.REPLACE_TIMEOUT, serving=False)
        new_id = next(iter(now))
        self.assertNotEqual(new_id, iid)
        new_file = os.path.join(self.instance_dir(new_id), new_id + ".id")
        wait_until(lambda: (harness.read_text(new_file) or "").strip() == new_id, 10, 0.2,
                   "the replacement's user data to run")

    def test_user_data_plain_shell(self):
        script = ("echo \"$AUTOPIPE_INSTANCE_ID\" > plain.$AUTOPIPE_INSTANCE_ID\n"
                  "exec sleep 300\n")
        insts = self.user_data_group("ec2-userdata-plain", script)
        iid = next(iter(insts))
        f = os.path.join(self.instance_dir(iid), "plain." + iid)
        wait_until(lambda: (harness.read_text(f) or "").strip() == iid, 10, 0.2, "plain user data ran")
        self.assertEqual(self.region.ec2_instance(iid)["State"]["Name"], "running")
        # The launch configuration reports the user data base64-encoded, as sent.
        lc = self.asc.describe_launch_configurations(
            LaunchConfigurationNames=["ec2-userdata-plain-lc"])["LaunchConfigurations"][0]
        self.assertEqual(lc["UserData"], harness.b64(script))

    # -- Auto Scaling tags -----------------------------------------------------------------------

    def test_create_or_update_and_describe_tags(self):
        name = "ec2-tags"
        self.region.create_lc(name + "-lc")
        self.region.create_group(name, name + "-lc", 1, ["us-west-2a"], min_size=0, max_size=3)
        self.cleanup_group(name)
        first = self.region.wait_group(name, 1)

        def tag_arg(key, value, propagate):
            return ("ResourceId=%s,ResourceType=auto-scaling-group,Key=%s,Value=%s,PropagateAtLaunch=%s"
                    % (name, key, value, "true" if propagate else "false"))

        self.region.cli_v1("autoscaling", "create-or-update-tags", "--tags",
                           tag_arg("env", "test", True), tag_arg("owner", "qa", False))
        tags = self.region.cli_v1("autoscaling", "describe-tags", "--filters",
                                  "Name=auto-scaling-group,Values=%s" % name)["Tags"]
        by_key = {t["Key"]: t for t in tags}
        self.assertEqual(by_key["env"]["Value"], "test")
        self.assertIs(by_key["env"]["PropagateAtLaunch"], True)
        self.assertEqual(by_key["env"]["ResourceType"], "auto-scaling-group")
        self.assertEqual(by_key["env"]["ResourceId"], name)
        self.assertEqual(by_key["owner"]["Value"], "qa")
        self.assertIs(by_key["owner"]["PropagateAtLaunch"], False)

        # Update in place: still one "env" tag.
        self.region.cli_v2("autoscaling", "create-or-update-tags", "--tags", tag_arg("env", "prod", True))
        tags = self.region.cli_v2("autoscaling", "describe-tags", "--filters",
                                  "Name=auto-scaling-group,Values=%s" % name, "Name=key,Values=env")["Tags"]
        self.assertEqual([(t["Key"], t["Value"]) for t in tags], [("env", "prod")])
        g = self.region.asg(name)
        self.assertIn(("env", "prod"), [(t["Key"], t["Value"]) for t in g["Tags"]])

        # Tags of another group do not show up under this group's filter.
        other = self.region.cli_v1("autoscaling", "describe-tags", "--filters",
                                   "Name=auto-scaling-group,Values=no-such-group")["Tags"]
        self.assertEqual(other, [])

        # New instances get the propagated tag.
        self.asc.set_desired_capacity(AutoScalingGroupName=name, DesiredCapacity=2)
        now = self.region.wait_group(name, 2)
        new_id = (set(now) - set(first)).pop()
        inst = self.region.ec2_instance(new_id)
        itags = {t["Key"]: t["Value"] for t in inst.get("Tags", [])}
        self.assertEqual(itags.get("env"), "prod")
        self.assertNotIn("owner", itags)


if __name__ == "__main__":
    unittest.main()

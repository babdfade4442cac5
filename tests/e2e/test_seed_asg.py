"""The seed's §1.1 Auto Scaling group, created with aws-cli v1, aws-cli v2 and boto3.

Each client gets its own region (server). After the seed's create-auto-scaling-group command, the group
must reach 5 InService/Healthy instances split 3/2 over us-west-2a/us-west-2b, each with a distinct private
IP in the region's 127.N.0.0/16 on which the sample service answers with that instance's own identity.
"""

import ipaddress
import re
import unittest

import harness
from harness import Region, SAMPLE_AMI, wait_until, http_json, http_get

LC_NAME = "auto-pipeline-launch-config"
ASG_NAME = "auto-pipeline-asg"
SEED_AZS = ["us-west-2a", "us-west-2b"]

# The seed's command, argument for argument (auto_pipeline_ha_strategy.ko.md §1.1).
SEED_CREATE_ASG = [
    "autoscaling", "create-auto-scaling-group",
    "--auto-scaling-group-name", "auto-pipeline-asg",
    "--min-size", "2",
    "--max-size", "10",
    "--desired-capacity", "5",
    "--launch-configuration-name", "auto-pipeline-launch-config",
    "--availability-zones", "us-west-2a", "us-west-2b",
]

ASG_ARN_RE = re.compile(r"^arn:aws:autoscaling:us-west-2:\d{12}:autoScalingGroup:[0-9a-f-]{36}:"
                        r"autoScalingGroupName/auto-pipeline-asg$")
INSTANCE_ID_RE = re.compile(r"^i-[0-9a-f]{8,17}$")


class SeedAsgMixin:
    """Client-independent assertions. Subclasses implement the client calls."""

    region = None

    # -- client calls (implemented per client) ---------------------------------------------------
    def create_launch_configuration(self):
        raise NotImplementedError

    def create_seed_group(self):
        raise NotImplementedError

    def describe_group(self):
        raise NotImplementedError

    def describe_instances(self, ids):
        raise NotImplementedError

    def describe_activities(self):
        raise NotImplementedError

    def describe_asg_instances(self):
        raise NotImplementedError

    def describe_launch_configurations(self):
        raise NotImplementedError

    # -- the flow --------------------------------------------------------------------------------
    @classmethod
    def setUpClass(cls):
        cls.region = Region.for_class(cls)

    def _five_in_service(self):
        g = self.describe_group()
        if not g:
            return None
        insts = g["Instances"]
        good = [i for i in insts if i["LifecycleState"] == "InService" and i["HealthStatus"] == "Healthy"]
        return (g, good) if len(good) == 5 and len(insts) == 5 else None

    def test_seed_group(self):
        self.create_launch_configuration()
        lcs = self.describe_launch_configurations()
        self.assertEqual([lc["LaunchConfigurationName"] for lc in lcs], [LC_NAME])
        self.assertEqual(lcs[0]["ImageId"], SAMPLE_AMI)
        self.assertEqual(lcs[0]["InstanceType"], "t3.micro")

        self.create_seed_group()

        # The group's own description, straight after creation.
        g = self.describe_group()
        self.assertIsNotNone(g, "group not found after create")
        self.assertEqual(g["AutoScalingGroupName"], ASG_NAME)
        self.assertEqual(g["MinSize"], 2)
        self.assertEqual(g["MaxSize"], 10)
        self.assertEqual(g["DesiredCapacity"], 5)
        self.assertEqual(g["LaunchConfigurationName"], LC_NAME)
        self.assertEqual(sorted(g["AvailabilityZones"]), SEED_AZS)
        self.assertEqual(g["HealthCheckType"], "EC2")
        self.assertEqual(g["DefaultCooldown"], 300)
        self.assertEqual(g.get("HealthCheckGracePeriod", 0), 0)
        self.assertRegex(g["AutoScalingGroupARN"], ASG_ARN_RE)

        try:
            g, good = wait_until(self._five_in_service, harness.CONVERGE_TIMEOUT, 1.0,
                                 "5 InService Healthy instances")
        except AssertionError as e:
            raise AssertionError("%s\n%s" % (e, self.region.diagnostics(30)))

        # 3 in one AZ, 2 in the other.
        counts = harness.az_counts(good)
        self.assertEqual(set(counts), set(SEED_AZS), counts)
        self.assertEqual(sorted(counts.values()), [2, 3], counts)

        ids = [i["InstanceId"] for i in good]
        self.assertEqual(len(set(ids)), 5)
        for iid in ids:
            self.assertRegex(iid, INSTANCE_ID_RE)
        for i in good:
            self.assertEqual(i["LaunchConfigurationName"], LC_NAME)

        # EC2's view of the same instances.
        ec2 = {inst["InstanceId"]: inst for inst in self.describe_instances(ids)}
        self.assertEqual(set(ec2), set(ids))
        az_of = {i["InstanceId"]: i["AvailabilityZone"] for i in good}
        ips = {}
        for iid, inst in ec2.items():
            self.assertEqual(inst["State"]["Name"], "running", iid)
            self.assertEqual(inst["ImageId"], SAMPLE_AMI)
            self.assertEqual(inst["InstanceType"], "t3.micro")
            self.assertEqual(inst["Placement"]["AvailabilityZone"], az_of[iid])
            tags = {t["Key"]: t["Value"] for t in inst.get("Tags", [])}
            self.assertEqual(tags.get("aws:autoscaling:groupName"), ASG_NAME, tags)
            ip = inst["PrivateIpAddress"]
            self.assertIn(ipaddress.ip_address(ip), ipaddress.ip_network("127.0.0.0/8"))
            self.assertTrue(ip.startswith(self.region.block_prefix),
                            "%s not in the region's address block 127.%d.0.0/16" % (ip, self.region.block))
            ips[iid] = ip
        self.assertEqual(len(set(ips.values())), 5, "private IPs are not distinct: %r" % ips)

        # Every instance's sample service answers with its own identity.
        pids = set()
        for iid, ip in ips.items():
            doc = wait_until(lambda: harness.serves(ip), 10, 0.5, "sample service on %s" % ip)
            self.assertEqual(doc["service"], "auto-pipeline-sample")
            self.assertEqual(doc["instance_id"], iid)
            self.assertEqual(doc["private_ip"], ip)
            self.assertEqual(doc["availability_zone"], az_of[iid])
            self.assertEqual(doc["region"], "us-west-2")
            self.assertIsInstance(doc["pid"], int)
            self.assertTrue(harness.pid_alive(doc["pid"]), "pid %r reported by %s is not alive" % (doc["pid"], iid))
            env = harness.proc_environ(doc["pid"]) or {}
            self.assertEqual(env.get("AUTOPIPE_INSTANCE_ID"), iid)
            pids.add(doc["pid"])
            status, body = http_get(ip, 80, "/health")
            self.assertEqual(status, 200)
            # request_count counts requests.
            again = http_json(ip)
            self.assertGreater(again["request_count"], doc["request_count"])
        self.assertEqual(len(pids), 5)

        # DescribeAutoScalingInstances agrees with the group.
        asi = {i["InstanceId"]: i for i in self.describe_asg_instances()}
        self.assertEqual(set(asi), set(ids))
        for iid, i in asi.items():
            self.assertEqual(i["AutoScalingGroupName"], ASG_NAME)
            self.assertEqual(i["AvailabilityZone"], az_of[iid])
            self.assertEqual(i["LifecycleState"], "InService")
            self.assertEqual(i["HealthStatus"].upper(), "HEALTHY")

        # Successful launch activities, one per instance.
        acts = self.describe_activities()
        launches = [a for a in acts if a["Description"].startswith("Launching a new EC2 instance")]
        self.assertGreaterEqual(len(launches), 5, acts)
        for iid in ids:
            mine = [a for a in launches if iid in a["Description"]]
            self.assertEqual(len(mine), 1, "no single launch activity for %s: %r" % (iid, launches))
            a = mine[0]
            self.assertEqual(a["StatusCode"], "Successful", a)
            self.assertEqual(a["AutoScalingGroupName"], ASG_NAME)
            self.assertTrue(a.get("Cause"), a)
            self.assertIn("Progress", a)
            self.assertEqual(a["Progress"], 100)


class _CliClient:
    version = 1

    def cli(self, *args):
        return self.region.cli(self.version, *args)

    def create_launch_configuration(self):
        out = self.cli("autoscaling", "create-launch-configuration",
                       "--launch-configuration-name", LC_NAME,
                       "--image-id", SAMPLE_AMI, "--instance-type", "t3.micro")
        self.assertEqual(out, {})

    def create_seed_group(self):
        out = self.cli(*SEED_CREATE_ASG)
        self.assertEqual(out, {})

    def describe_group(self):
        groups = self.cli("autoscaling", "describe-auto-scaling-groups",
                          "--auto-scaling-group-names", ASG_NAME)["AutoScalingGroups"]
        return groups[0] if groups else None

    def describe_instances(self, ids):
        res = self.cli("ec2", "describe-instances", "--instance-ids", *ids)
        return [i for r in res["Reservations"] for i in r["Instances"]]

    def describe_activities(self):
        return self.cli("autoscaling", "describe-scaling-activities",
                        "--auto-scaling-group-name", ASG_NAME)["Activities"]

    def describe_asg_instances(self):
        return self.cli("autoscaling", "describe-auto-scaling-instances")["AutoScalingInstances"]

    def describe_launch_configurations(self):
        return self.cli("autoscaling", "describe-launch-configurations")["LaunchConfigurations"]


class TestSeedAsgCliV1(_CliClient, SeedAsgMixin, unittest.TestCase):
    version = 1

    @classmethod
    def setUpClass(cls):
        Region.v1_argv()  # skip (only) if aws-cli v1 is absent
        super().setUpClass()


class TestSeedAsgCliV2(_CliClient, SeedAsgMixin, unittest.TestCase):
    version = 2

    @classmethod
    def setUpClass(cls):
        Region.v2_argv()  # skip (only) if /usr/bin/aws is absent
        super().setUpClass()


class TestSeedAsgBoto3(SeedAsgMixin, unittest.TestCase):
    def asc(self):
        return self.region.boto3("autoscaling")

    def create_launch_configuration(self):
        self.asc().create_launch_configuration(LaunchConfigurationName=LC_NAME, ImageId=SAMPLE_AMI,
                                               InstanceType="t3.micro")

    def create_seed_group(self):
        self.asc().create_auto_scaling_group(AutoScalingGroupName=ASG_NAME, MinSize=2, MaxSize=10,
                                             DesiredCapacity=5, LaunchConfigurationName=LC_NAME,
                                             AvailabilityZones=SEED_AZS)

    def describe_group(self):
        groups = self.asc().describe_auto_scaling_groups(AutoScalingGroupNames=[ASG_NAME])["AutoScalingGroups"]
        return groups[0] if groups else None

    def describe_instances(self, ids):
        res = self.region.boto3("ec2").describe_instances(InstanceIds=list(ids))
        return [i for r in res["Reservations"] for i in r["Instances"]]

    def describe_activities(self):
        return self.asc().describe_scaling_activities(AutoScalingGroupName=ASG_NAME)["Activities"]

    def describe_asg_instances(self):
        return self.asc().describe_auto_scaling_instances()["AutoScalingInstances"]

    def describe_launch_configurations(self):
        return self.asc().describe_launch_configurations()["LaunchConfigurations"]


if __name__ == "__main__":
    unittest.main()

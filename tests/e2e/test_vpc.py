"""STS GetCallerIdentity and the region's default VPC (subnets, security groups, account attributes), driven with
the real aws CLI v1 and v2 and boto3: what Terraform's AWS provider and most real configurations read first.
"""

import ipaddress
import unittest

from harness import Region, wait_until

ACCOUNT = "123456789012"


class VpcTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.region = Region.for_class(cls)

    def test_caller_identity_is_the_accounts_root(self):
        for version in (1, 2):
            got = self.region.cli(version, "sts", "get-caller-identity")
            self.assertEqual(got["Account"], ACCOUNT)
            self.assertEqual(got["Arn"], "arn:aws:iam::%s:root" % ACCOUNT)
        got = self.region.boto3("sts").get_caller_identity()
        self.assertEqual((got["Account"], got["UserId"]), (ACCOUNT, ACCOUNT))

    def default_vpc(self):
        vpcs = self.region.boto3("ec2").describe_vpcs(Filters=[{"Name": "isDefault", "Values": ["true"]}])["Vpcs"]
        self.assertEqual(len(vpcs), 1)
        return vpcs[0]

    def test_one_default_vpc_over_the_regions_address_block(self):
        vpc = self.default_vpc()
        self.assertTrue(vpc["IsDefault"])
        self.assertEqual(vpc["State"], "available")
        self.assertRegex(vpc["VpcId"], r"^vpc-[0-9a-f]{17}$")
        self.assertEqual(vpc["CidrBlock"], "127.%d.0.0/16" % self.region.block)
        # The same VPC by id with both CLIs, and an unknown id refused.
        for version in (1, 2):
            got = self.region.cli(version, "ec2", "describe-vpcs", "--vpc-ids", vpc["VpcId"])["Vpcs"]
            self.assertEqual([v["VpcId"] for v in got], [vpc["VpcId"]])
        self.assertEqual(self.region.cli_error_code("ec2", "describe-vpcs", "--vpc-ids", "vpc-0123456789abcdef0")[0],
                         "InvalidVpcID.NotFound")
        attrs = self.region.boto3("ec2").describe_account_attributes(AttributeNames=["default-vpc"])
        self.assertEqual(attrs["AccountAttributes"][0]["AttributeValues"][0]["AttributeValue"], vpc["VpcId"])

    def test_a_default_subnet_per_zone_holds_that_zones_addresses(self):
        vpc = self.default_vpc()
        subnets = self.region.boto3("ec2").describe_subnets(
            Filters=[{"Name": "vpc-id", "Values": [vpc["VpcId"]]}])["Subnets"]
        zones = sorted(s["AvailabilityZone"] for s in subnets)
        self.assertEqual(zones, ["us-west-2a", "us-west-2b", "us-west-2c"])
        block = ipaddress.ip_network(vpc["CidrBlock"])
        nets = [ipaddress.ip_network(s["CidrBlock"]) for s in subnets]
        for s, net in zip(subnets, nets):
            self.assertTrue(s["DefaultForAz"])
            self.assertTrue(net.subnet_of(block))
        for i, a in enumerate(nets):
            for b in nets[i + 1:]:
                self.assertFalse(a.overlaps(b))
        got = self.region.cli_v2("ec2", "describe-subnets", "--filters",
                                 "Name=availability-zone,Values=us-west-2b")["Subnets"]
        self.assertEqual(len(got), 1)
        self.assertEqual(self.region.cli_error_code("ec2", "describe-subnets", "--filters",
                                                    "Name=no-such-filter,Values=x")[0], "InvalidParameterValue")

        # A real instance gets its address from its zone's subnet, and says so.
        subnet_by_zone = {s["AvailabilityZone"]: s for s in subnets}
        self.region.create_lc("vpc-lc", image="ami-0f1e2d3c4b5a69788",
                              UserData="#!/bin/sh\nexec sleep 600\n")
        self.region.create_group("vpc-asg", "vpc-lc", 2)
        def two_running():
            running = [i for i in self.region.ec2_instances() if i["State"]["Name"] == "running"]
            return running if len(running) == 2 else None
        instances = wait_until(two_running, 60)
        for inst in instances:
            subnet = subnet_by_zone[inst["Placement"]["AvailabilityZone"]]
            self.assertEqual(inst["SubnetId"], subnet["SubnetId"])
            self.assertEqual(inst["VpcId"], vpc["VpcId"])
            self.assertIn(ipaddress.ip_address(inst["PrivateIpAddress"]), ipaddress.ip_network(subnet["CidrBlock"]))
            self.assertEqual(inst["PrivateDnsName"],
                             "ip-%s.us-west-2.compute.internal" % inst["PrivateIpAddress"].replace(".", "-"))
        enis = self.region.boto3("ec2").describe_network_interfaces(
            Filters=[{"Name": "attachment.instance-id", "Values": [instances[0]["InstanceId"]]}])["NetworkInterfaces"]
        self.assertEqual([e["PrivateIpAddress"] for e in enis], [instances[0]["PrivateIpAddress"]])
        self.region.boto3("autoscaling").delete_auto_scaling_group(AutoScalingGroupName="vpc-asg", ForceDelete=True)

    def test_security_groups_and_their_rules(self):
        ec2 = self.region.boto3("ec2")
        vpc = self.default_vpc()
        default = ec2.describe_security_groups(GroupNames=["default"])["SecurityGroups"][0]
        self.assertEqual(default["VpcId"], vpc["VpcId"])
        self.assertEqual(self.region.cli_error_code("ec2", "delete-security-group", "--group-id",
                                                    default["GroupId"])[0], "CannotDelete")

        gid = self.region.cli_v1("ec2", "create-security-group", "--group-name", "web",
                                 "--description", "web servers")["GroupId"]
        self.assertRegex(gid, r"^sg-[0-9a-f]{17}$")
        self.assertEqual(self.region.cli_error_code("ec2", "create-security-group", "--group-name", "web",
                                                    "--description", "again")[0], "InvalidGroup.Duplicate")
        self.region.cli_v2("ec2", "authorize-security-group-ingress", "--group-id", gid, "--protocol", "tcp",
                           "--port", "80", "--cidr", "0.0.0.0/0")
        ec2.authorize_security_group_ingress(GroupId=gid, IpPermissions=[
            {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443,
             "IpRanges": [{"CidrIp": "10.0.0.0/8", "Description": "internal"}],
             "UserIdGroupPairs": [{"GroupId": default["GroupId"]}]}])
        self.assertEqual(self.region.cli_error_code("ec2", "authorize-security-group-ingress", "--group-id", gid,
                                                    "--protocol", "tcp", "--port", "80", "--cidr", "0.0.0.0/0")[0],
                         "InvalidPermission.Duplicate")
        self.assertEqual(self.region.cli_error_code("ec2", "authorize-security-group-ingress", "--group-id", gid,
                                                    "--protocol", "tcp", "--port", "22", "--cidr", "10.0.0.300/8")[0],
                         "InvalidParameterValue")
        group = ec2.describe_security_groups(GroupIds=[gid])["SecurityGroups"][0]
        by_port = {p.get("FromPort"): p for p in group["IpPermissions"]}
        self.assertEqual(by_port[80]["IpRanges"], [{"CidrIp": "0.0.0.0/0"}])
        self.assertEqual(by_port[443]["IpRanges"], [{"CidrIp": "10.0.0.0/8", "Description": "internal"}])
        self.assertEqual([g["GroupId"] for g in by_port[443]["UserIdGroupPairs"]], [default["GroupId"]])
        self.assertEqual(group["IpPermissionsEgress"][0]["IpProtocol"], "-1")

        # Revoking the default egress rule (what Terraform does first), then revoking it again.
        ec2.revoke_security_group_egress(GroupId=gid, IpPermissions=[
            {"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
        self.assertEqual(self.region.cli_error_code("ec2", "revoke-security-group-egress", "--group-id", gid,
                                                    "--ip-permissions",
                                                    "IpProtocol=-1,IpRanges=[{CidrIp=0.0.0.0/0}]")[0],
                         "InvalidPermission.NotFound")
        # The rules survive a crash of the server.
        self.region.kill9()
        self.region.restart()
        group = ec2.describe_security_groups(Filters=[{"Name": "group-name", "Values": ["web"]}])["SecurityGroups"]
        self.assertEqual(len(group), 1)
        self.assertEqual(len(group[0]["IpPermissions"]), 2)
        self.assertEqual(group[0]["IpPermissionsEgress"], [])
        # The default group is referenced by "web": it cannot go first, "web" can.
        self.region.cli_v2("ec2", "delete-security-group", "--group-id", gid)
        self.assertEqual(self.region.cli_error_code("ec2", "describe-security-groups", "--group-ids", gid)[0],
                         "InvalidGroup.NotFound")

    def test_instance_types_from_the_catalog(self):
        got = self.region.cli_v2("ec2", "describe-instance-types", "--instance-types", "t3.micro")["InstanceTypes"]
        self.assertEqual(got[0]["VCpuInfo"]["DefaultVCpus"], 2)
        self.assertEqual(got[0]["MemoryInfo"]["SizeInMiB"], 1024)
        self.assertEqual(self.region.cli_error_code("ec2", "describe-instance-types", "--instance-types",
                                                    "z9.huge")[0], "InvalidInstanceType")


if __name__ == "__main__":
    unittest.main()

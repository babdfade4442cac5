"""RDS DB subnet groups and ElastiCache cache subnet groups over the region's default subnets, driven with boto3
and the aws CLI: create, describe (paging, the `default` group), modify, delete (refused while in use), and what
DB instances and cache nodes take from them (their zones, and the group they report).
"""

import unittest

import botocore.exceptions

from harness import Region, wait_until


def error_code(fn, *args, **kwargs):
    try:
        fn(*args, **kwargs)
    except botocore.exceptions.ClientError as e:
        return e.response["Error"]["Code"], e.response["Error"]["Message"]
    raise AssertionError("expected an error from %s" % fn)


class SubnetGroupsTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.region = Region.for_class(cls)
        ec2 = cls.region.boto3("ec2")
        subnets = ec2.describe_subnets(Filters=[{"Name": "default-for-az", "Values": ["true"]}])["Subnets"]
        cls.subnet_of = {s["AvailabilityZone"]: s["SubnetId"] for s in subnets}
        cls.vpc_id = subnets[0]["VpcId"]
        cls.default_sg = ec2.describe_security_groups(GroupNames=["default"])["SecurityGroups"][0]["GroupId"]

    # ---- RDS ----------------------------------------------------------------------------------------------------

    def test_db_subnet_group_lifecycle_and_errors(self):
        rds = self.region.boto3("rds")
        a, b, c = (self.subnet_of[z] for z in ("us-west-2a", "us-west-2b", "us-west-2c"))
        # One zone is not enough; unknown subnets are named.
        code, msg = error_code(rds.create_db_subnet_group, DBSubnetGroupName="one", DBSubnetGroupDescription="d",
                               SubnetIds=[a])
        self.assertEqual(code, "DBSubnetGroupDoesNotCoverEnoughAZs")
        self.assertIn("us-west-2a", msg)
        code, msg = error_code(rds.create_db_subnet_group, DBSubnetGroupName="bad", DBSubnetGroupDescription="d",
                               SubnetIds=[a, "subnet-0123456789abcdef0"])
        self.assertEqual(code, "InvalidSubnet")
        self.assertIn("subnet-0123456789abcdef0", msg)

        got = rds.create_db_subnet_group(DBSubnetGroupName="App-DB", DBSubnetGroupDescription="app",
                                         SubnetIds=[c, a], Tags=[{"Key": "team", "Value": "x"}])["DBSubnetGroup"]
        self.assertEqual(got["DBSubnetGroupName"], "app-db")  # stored lower-cased, as RDS does
        self.assertEqual(got["VpcId"], self.vpc_id)
        self.assertEqual(got["SubnetGroupStatus"], "Complete")
        self.assertEqual([(s["SubnetIdentifier"], s["SubnetAvailabilityZone"]["Name"], s["SubnetStatus"])
                          for s in got["Subnets"]], [(a, "us-west-2a", "Active"), (c, "us-west-2c", "Active")])
        self.assertTrue(got["DBSubnetGroupArn"].endswith(":subgrp:app-db"))
        self.assertEqual(rds.list_tags_for_resource(ResourceName=got["DBSubnetGroupArn"])["TagList"],
                         [{"Key": "team", "Value": "x"}])
        self.assertEqual(error_code(rds.create_db_subnet_group, DBSubnetGroupName="app-db",
                                    DBSubnetGroupDescription="d", SubnetIds=[a, b])[0], "DBSubnetGroupAlreadyExists")

        # Describe: the default group (every default subnet) and ours; by name; paging; not found.
        groups = rds.describe_db_subnet_groups()["DBSubnetGroups"]
        self.assertEqual([g["DBSubnetGroupName"] for g in groups], ["default", "app-db"])
        self.assertEqual(len(groups[0]["Subnets"]), 3)
        for i in range(20):
            rds.create_db_subnet_group(DBSubnetGroupName="g%02d" % i, DBSubnetGroupDescription="d", SubnetIds=[a, b])
        first = rds.describe_db_subnet_groups(MaxRecords=20)
        self.assertEqual(len(first["DBSubnetGroups"]), 20)
        rest = rds.describe_db_subnet_groups(MaxRecords=20, Marker=first["Marker"])
        self.assertEqual(len(rest["DBSubnetGroups"]), 2)
        self.assertNotIn("Marker", rest)
        for i in range(20):
            rds.delete_db_subnet_group(DBSubnetGroupName="g%02d" % i)
        self.assertEqual(error_code(rds.describe_db_subnet_groups, DBSubnetGroupName="nope")[0],
                         "DBSubnetGroupNotFoundFault")
        cli = self.region.cli(2, "rds", "describe-db-subnet-groups", "--db-subnet-group-name", "app-db")
        self.assertEqual(cli["DBSubnetGroups"][0]["DBSubnetGroupDescription"], "app")

        # Modify: new subnets and description.
        got = rds.modify_db_subnet_group(DBSubnetGroupName="app-db", DBSubnetGroupDescription="app2",
                                         SubnetIds=[b, c])["DBSubnetGroup"]
        self.assertEqual(got["DBSubnetGroupDescription"], "app2")
        self.assertEqual([s["SubnetAvailabilityZone"]["Name"] for s in got["Subnets"]], ["us-west-2b", "us-west-2c"])
        self.assertEqual(error_code(rds.modify_db_subnet_group, DBSubnetGroupName="nope", SubnetIds=[a, b])[0],
                         "DBSubnetGroupNotFoundFault")
        self.assertEqual(error_code(rds.delete_db_subnet_group, DBSubnetGroupName="default")[0],
                         "InvalidDBSubnetGroupStateFault")

        # A DB instance in the group: an unknown group is refused; a zone outside the group is refused; a
        # Multi-AZ instance gets its zones from the group's subnets.
        base = dict(DBInstanceClass="db.t3.micro", Engine="mysql", AllocatedStorage=20, MasterUsername="admin",
                    MasterUserPassword="password1", BackupRetentionPeriod=0)
        self.assertEqual(error_code(rds.create_db_instance, DBInstanceIdentifier="x1", DBSubnetGroupName="nope",
                                    **base)[0], "DBSubnetGroupNotFoundFault")
        self.assertEqual(error_code(rds.create_db_instance, DBInstanceIdentifier="x1", DBSubnetGroupName="app-db",
                                    AvailabilityZone="us-west-2a", **base)[0], "InvalidParameterCombination")
        ec2 = self.region.boto3("ec2")
        db_sg = ec2.create_security_group(GroupName="db-sg", Description="db")["GroupId"]
        db = rds.create_db_instance(DBInstanceIdentifier="sub-db", DBSubnetGroupName="app-db", MultiAZ=True,
                                    VpcSecurityGroupIds=[db_sg], **base)["DBInstance"]
        self.assertEqual(db["DBSubnetGroup"]["DBSubnetGroupName"], "app-db")
        self.assertEqual(db["DBSubnetGroup"]["VpcId"], self.vpc_id)
        self.assertEqual([s["SubnetAvailabilityZone"]["Name"] for s in db["DBSubnetGroup"]["Subnets"]],
                         ["us-west-2b", "us-west-2c"])
        self.assertEqual(db["AvailabilityZone"], "us-west-2b")
        # A DB instance without a group is in the default one.
        plain = rds.create_db_instance(DBInstanceIdentifier="plain-db", **base)["DBInstance"]
        self.assertEqual(plain["DBSubnetGroup"]["DBSubnetGroupName"], "default")
        # ... and, given no security group, in the VPC's default one.
        self.assertEqual(plain["VpcSecurityGroups"], [{"VpcSecurityGroupId": self.default_sg, "Status": "active"}])
        rds.delete_db_instance(DBInstanceIdentifier="plain-db", SkipFinalSnapshot=True)

        # In use: not deleted, and a zone it runs in cannot be dropped.
        code, msg = error_code(rds.delete_db_subnet_group, DBSubnetGroupName="app-db")
        self.assertEqual(code, "InvalidDBSubnetGroupStateFault")
        self.assertIn("sub-db", msg)
        self.assertEqual(error_code(rds.modify_db_subnet_group, DBSubnetGroupName="app-db", SubnetIds=[a, b])[0],
                         "SubnetAlreadyInUse")
        # The security group of a DB instance cannot be deleted either (EC2's DependencyViolation).
        self.assertEqual(error_code(ec2.delete_security_group, GroupId=db_sg)[0], "DependencyViolation")

        # The servers the controller starts are in the group's zones.
        def available():
            d = rds.describe_db_instances(DBInstanceIdentifier="sub-db")["DBInstances"][0]
            return d if d["DBInstanceStatus"] == "available" and d["MultiAZ"] else None
        d = wait_until(available, 120, 0.5, "the Multi-AZ instance to be available")
        self.assertEqual({d["AvailabilityZone"], d["SecondaryAvailabilityZone"]}, {"us-west-2b", "us-west-2c"})

        rds.delete_db_instance(DBInstanceIdentifier="sub-db", SkipFinalSnapshot=True)

        def gone():
            ids = [x["DBInstanceIdentifier"] for x in rds.describe_db_instances()["DBInstances"]]
            return "sub-db" not in ids and "plain-db" not in ids
        wait_until(gone, 60, 0.5, "the DB instances to be deleted")
        rds.delete_db_subnet_group(DBSubnetGroupName="app-db")
        ec2.delete_security_group(GroupId=db_sg)
        self.assertEqual(error_code(rds.delete_db_subnet_group, DBSubnetGroupName="app-db")[0],
                         "DBSubnetGroupNotFoundFault")

    # ---- ElastiCache --------------------------------------------------------------------------------------------

    def test_cache_subnet_group_lifecycle_and_placement(self):
        ec = self.region.boto3("elasticache")
        a, b, c = (self.subnet_of[z] for z in ("us-west-2a", "us-west-2b", "us-west-2c"))
        self.assertEqual(error_code(ec.create_cache_subnet_group, CacheSubnetGroupName="bad",
                                    CacheSubnetGroupDescription="d", SubnetIds=["subnet-0123456789abcdef0"])[0],
                         "InvalidSubnet")
        got = ec.create_cache_subnet_group(CacheSubnetGroupName="App-Cache", CacheSubnetGroupDescription="cache",
                                           SubnetIds=[c, b])["CacheSubnetGroup"]
        self.assertEqual(got["CacheSubnetGroupName"], "app-cache")
        self.assertEqual(got["VpcId"], self.vpc_id)
        self.assertEqual([(s["SubnetIdentifier"], s["SubnetAvailabilityZone"]["Name"]) for s in got["Subnets"]],
                         [(b, "us-west-2b"), (c, "us-west-2c")])
        self.assertEqual(ec.list_tags_for_resource(ResourceName=got["ARN"])["TagList"], [])
        self.assertEqual(error_code(ec.create_cache_subnet_group, CacheSubnetGroupName="app-cache",
                                    CacheSubnetGroupDescription="d", SubnetIds=[a])[0],
                         "CacheSubnetGroupAlreadyExists")
        names = [g["CacheSubnetGroupName"] for g in ec.describe_cache_subnet_groups()["CacheSubnetGroups"]]
        self.assertEqual(names, ["default", "app-cache"])
        self.assertEqual(error_code(ec.describe_cache_subnet_groups, CacheSubnetGroupName="nope")[0],
                         "CacheSubnetGroupNotFoundFault")
        got = ec.modify_cache_subnet_group(CacheSubnetGroupName="app-cache",
                                          CacheSubnetGroupDescription="cache2")["CacheSubnetGroup"]
        self.assertEqual((got["CacheSubnetGroupDescription"], len(got["Subnets"])), ("cache2", 2))

        base = dict(ReplicationGroupDescription="d", CacheNodeType="cache.t3.micro", Engine="redis",
                    NumCacheClusters=2)
        self.assertEqual(error_code(ec.create_replication_group, ReplicationGroupId="x1",
                                    CacheSubnetGroupName="nope", **base)[0], "CacheSubnetGroupNotFoundFault")
        self.assertEqual(error_code(ec.create_replication_group, ReplicationGroupId="x1",
                                    CacheSubnetGroupName="app-cache",
                                    PreferredCacheClusterAZs=["us-west-2a", "us-west-2b"], **base)[0],
                         "InvalidParameterValue")
        ec.create_replication_group(ReplicationGroupId="sub-rg", CacheSubnetGroupName="app-cache", **base)
        clusters = ec.describe_cache_clusters()["CacheClusters"]
        mine = [cl for cl in clusters if cl.get("ReplicationGroupId") == "sub-rg"]
        self.assertEqual(len(mine), 2)
        self.assertEqual({cl["CacheSubnetGroupName"] for cl in mine}, {"app-cache"})
        self.assertEqual(sorted(cl["PreferredAvailabilityZone"] for cl in mine), ["us-west-2b", "us-west-2c"])
        # No SecurityGroupIds: the VPC's default group, as for any resource in a VPC.
        for cl in mine:
            self.assertEqual(cl["SecurityGroups"], [{"SecurityGroupId": self.default_sg, "Status": "active"}])

        self.assertEqual(error_code(ec.delete_cache_subnet_group, CacheSubnetGroupName="app-cache")[0],
                         "CacheSubnetGroupInUse")
        self.assertEqual(error_code(ec.modify_cache_subnet_group, CacheSubnetGroupName="app-cache",
                                    SubnetIds=[a, b])[0], "SubnetInUse")
        self.assertEqual(error_code(ec.delete_cache_subnet_group, CacheSubnetGroupName="default")[0],
                         "InvalidParameterValue")

        wait_until(lambda: ec.describe_replication_groups(ReplicationGroupId="sub-rg")["ReplicationGroups"][0][
            "Status"] == "available", 60, 0.2, "the group to be available")
        # Security groups given (or changed) are what the clusters report.
        sg = self.region.boto3("ec2").create_security_group(GroupName="cache-sg", Description="c")["GroupId"]
        ec.modify_replication_group(ReplicationGroupId="sub-rg", SecurityGroupIds=[sg], ApplyImmediately=True)
        got = ec.describe_cache_clusters(CacheClusterId=mine[0]["CacheClusterId"])["CacheClusters"][0]
        self.assertEqual(got["SecurityGroups"], [{"SecurityGroupId": sg, "Status": "active"}])
        self.assertEqual(error_code(self.region.boto3("ec2").delete_security_group, GroupId=sg)[0],
                         "DependencyViolation")
        self.assertEqual(error_code(ec.create_replication_group, ReplicationGroupId="x2", SecurityGroupIds=["bogus"],
                                    **base)[0], "InvalidParameterValue")
        ec.delete_replication_group(ReplicationGroupId="sub-rg")

        def gone():
            groups = ec.describe_replication_groups()["ReplicationGroups"]
            return not [g for g in groups if g["ReplicationGroupId"] == "sub-rg"]
        wait_until(gone, 60, 0.2, "the replication group to be deleted")
        ec.delete_cache_subnet_group(CacheSubnetGroupName="app-cache")
        self.region.boto3("ec2").delete_security_group(GroupId=sg)
        self.assertEqual(error_code(ec.delete_cache_subnet_group, CacheSubnetGroupName="app-cache")[0],
                         "CacheSubnetGroupNotFoundFault")


if __name__ == "__main__":
    unittest.main()

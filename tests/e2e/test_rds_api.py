"""The RDS API (2014-10-31) driven with the real aws CLI v1 and v2 and boto3: the seed's create-db-instance and
modify-db-instance as written (auto_pipeline_ha_strategy.ko.md §3 and §4), RDS's error codes for bad input (and
nothing changed by it), tags, events and the engine catalogue.

What the API answers is asserted here; the MariaDB servers behind an instance are the DB instance controller's
(tests of their own). Where a rule needs an `available` instance and no controller brings one up (the API on its
own), the test stands in for the controller: it stops the server, writes the status into the store and starts
the server again (ensure_available).
"""

import glob
import json
import os
import unittest

from harness import Region, wait_until

SEED_ID = "auto-pipeline-db"
SEED_PASSWORD = "password"
# The seed's commands, argument for argument.
SEED_CREATE_DB = [
    "rds", "create-db-instance",
    "--db-instance-identifier", "auto-pipeline-db",
    "--db-instance-class", "db.t3.medium",
    "--engine", "mysql",
    "--allocated-storage", "20",
    "--multi-az",
    "--master-username", "admin",
    "--master-user-password", "password",
    "--vpc-security-group-ids", "sg-12345678",
]
SEED_MODIFY_DB = [
    "rds", "modify-db-instance",
    "--db-instance-identifier", "auto-pipeline-db",
    "--backup-retention-period", "7",
]
CREATE_WAIT = 90  # seconds: the first create of a region makes its data dir template


def single_az(ident, *extra):
    """A small Single-AZ instance's create-db-instance arguments."""
    return ["rds", "create-db-instance", "--db-instance-identifier", ident, "--db-instance-class", "db.t3.micro",
            "--engine", "mysql", "--allocated-storage", "20", "--master-username", "admin",
            "--master-user-password", "Secret-Passw0rd", *extra]


def with_arg(args, flag, value):
    """`args` with the value after `flag` replaced."""
    out = list(args)
    out[out.index(flag) + 1] = value
    return out


def describe(region, ident):
    return region.boto3("rds").describe_db_instances(DBInstanceIdentifier=ident)["DBInstances"][0]


def ensure_available(region, ident):
    """Waits for the DB instance controller to make the instance available (real MariaDB servers)."""
    try:
        wait_until(lambda: describe(region, ident)["DBInstanceStatus"] == "available", CREATE_WAIT, 0.25,
                   "%s to become available" % ident)
    except AssertionError as e:
        # What the instance and its region were doing, for whoever reads a failed CI run.
        events = region.boto3("rds").describe_events(SourceIdentifier=ident, SourceType="db-instance",
                                                     Duration=60)["Events"]
        raise AssertionError("%s\ninstance: %s\nevents: %s\n%s" % (
            e, json.dumps(describe(region, ident), default=str), json.dumps(events, default=str),
            region.diagnostics(120))) from None


def projection(region):
    """What bad input must leave unchanged: every instance's user-set state."""
    out = {}
    for d in region.boto3("rds").describe_db_instances()["DBInstances"]:
        out[d["DBInstanceIdentifier"]] = {k: d.get(k) for k in (
            "DBInstanceClass", "Engine", "EngineVersion", "MasterUsername", "AllocatedStorage",
            "BackupRetentionPeriod", "PreferredBackupWindow", "PreferredMaintenanceWindow", "PendingModifiedValues",
            "VpcSecurityGroups", "TagList", "DbiResourceId", "InstanceCreateTime", "DeletionProtection")}
    return out


class RdsSeedTest(unittest.TestCase):
    """The seed's two commands, as written."""

    @classmethod
    def setUpClass(cls):
        cls.region = Region.for_class(cls)

    def test_seed_create_then_modify(self):
        r = self.region
        out = r.cli_v1(*SEED_CREATE_DB)["DBInstance"]
        self.assertEqual(out["DBInstanceIdentifier"], SEED_ID)
        self.assertEqual(out["DBInstanceStatus"], "creating")
        self.assertEqual(out["DBInstanceClass"], "db.t3.medium")
        self.assertEqual(out["Engine"], "mysql")
        self.assertTrue(out["EngineVersion"].startswith("8.0."))
        self.assertEqual(out["AllocatedStorage"], 20)
        self.assertIs(out["MultiAZ"], True)
        self.assertEqual(out["MasterUsername"], "admin")
        self.assertEqual(out["BackupRetentionPeriod"], 1)
        self.assertEqual(out["VpcSecurityGroups"], [{"VpcSecurityGroupId": "sg-12345678", "Status": "active"}])
        self.assertEqual(out["DBParameterGroups"],
                         [{"DBParameterGroupName": "default.mysql8.0", "ParameterApplyStatus": "in-sync"}])
        self.assertEqual(out["DBInstanceArn"], "arn:aws:rds:us-west-2:123456789012:db:auto-pipeline-db")
        self.assertRegex(out["DbiResourceId"], r"^db-[A-Z0-9]{26}$")
        self.assertRegex(out["PreferredBackupWindow"], r"^\d\d:\d\d-\d\d:\d\d$")
        self.assertRegex(out["PreferredMaintenanceWindow"], r"^[a-z]{3}:\d\d:\d\d-[a-z]{3}:\d\d:\d\d$")
        self.assertIn(out["AvailabilityZone"], ("us-west-2a", "us-west-2b", "us-west-2c"))
        self.assertEqual(out["PendingModifiedValues"], {})
        self.assertIs(out["StorageEncrypted"], False)
        self.assertIs(out["PubliclyAccessible"], False)
        self.assertNotIn(SEED_PASSWORD + "\"", json.dumps(out))  # no "MasterUserPassword": "password" anywhere

        # The same instance through the CLI v2 and boto3.
        v2 = r.cli_v2("rds", "describe-db-instances", "--db-instance-identifier", SEED_ID)["DBInstances"]
        self.assertEqual([d["DBInstanceIdentifier"] for d in v2], [SEED_ID])
        self.assertEqual(describe(r, SEED_ID)["DbiResourceId"], out["DbiResourceId"])
        self.assertEqual(r.cli_error_code(*SEED_CREATE_DB)[0], "DBInstanceAlreadyExists")

        ensure_available(r, SEED_ID)
        got = describe(r, SEED_ID)
        self.assertIs(got["MultiAZ"], True)
        self.assertRegex(got["Endpoint"]["Address"], r"^127\.\d+\.210\.\d+$")
        self.assertEqual(got["Endpoint"]["Port"], 3306)

        modified = r.cli_v2(*SEED_MODIFY_DB)["DBInstance"]
        self.assertEqual(modified["BackupRetentionPeriod"], 7)
        self.assertEqual(r.cli_v1("rds", "describe-db-instances", "--db-instance-identifier", SEED_ID)
                         ["DBInstances"][0]["BackupRetentionPeriod"], 7)
        self.assertEqual(describe(r, SEED_ID)["PendingModifiedValues"], {})

    def test_seed_create_with_cli_v2(self):
        r = Region.for_test(self)
        out = r.cli_v2(*SEED_CREATE_DB)["DBInstance"]
        self.assertEqual(out["DBInstanceStatus"], "creating")
        self.assertIs(out["MultiAZ"], True)
        self.assertEqual(out["VpcSecurityGroups"][0]["VpcSecurityGroupId"], "sg-12345678")
        self.assertEqual(r.cli_v2("rds", "describe-db-instances")["DBInstances"][0]["DBInstanceIdentifier"], SEED_ID)
        # Let the real servers finish starting before the region is stopped (a region stopped in the middle of
        # preparing its first servers has been seen to outlast `down`'s grace period).
        ensure_available(r, SEED_ID)


class RdsApiTest(unittest.TestCase):
    """Errors, tags, events and the catalogue on one region with a few small instances."""

    @classmethod
    def setUpClass(cls):
        cls.region = Region.for_class(cls)
        cls.region.cli_v1(*single_az("app-db", "--tags", "Key=team,Value=data"))
        cls.region.cli_v2(*single_az("other-db", "--engine", "mariadb"))
        ensure_available(cls.region, "app-db")

    def assert_refused(self, code, *args, version=1):
        before = projection(self.region)
        got, message = self.region.cli_error_code(*args, version=version)
        self.assertEqual(got, code, message)
        self.assertNotIn("Secret-Passw0rd", message)
        self.assertEqual(projection(self.region), before, "%s changed something" % " ".join(args[:2]))
        return message

    def test_bad_create_input_gets_rds_errors_and_changes_nothing(self):
        cases = [
            ("InvalidParameterValue", single_az("short-pw")[:-1] + ["short77"]),
            ("InvalidParameterValue", single_az("slash-pw")[:-1] + ["has/slash1"]),
            ("InvalidParameterValue", single_az("quote-pw")[:-1] + ['has"quote1']),
            ("InvalidParameterValue", single_az("at-pw")[:-1] + ["has@sign12"]),
            ("InvalidParameterValue", single_az("long-pw")[:-1] + ["x" * 42]),
            ("DBInstanceAlreadyExists", single_az("app-db")),
            ("DBInstanceAlreadyExists", single_az("APP-DB")),
            ("InvalidParameterValue", single_az("port-low", "--port", "1149")),
            ("InvalidParameterValue", single_az("port-high", "--port", "65536")),
            ("InvalidParameterCombination", with_arg(single_az("small-disk"), "--allocated-storage", "19")),
            ("InvalidParameterCombination", single_az("multi-az-zone", "--multi-az",
                                                      "--availability-zone", "us-west-2b")),
            ("InvalidParameterValue", single_az("bad-zone", "--availability-zone", "us-east-1a")),
            ("InvalidParameterCombination", with_arg(single_az("bad-class"), "--db-instance-class", "db.x9.huge")),
            ("InvalidParameterValue", single_az("bad--id")),
            ("InvalidParameterValue", single_az("1bad")),
            ("InvalidParameterValue", with_arg(single_az("bad-user"), "--master-username", "1admin")),
            ("InvalidParameterValue", with_arg(single_az("bad-engine"), "--engine", "postgres")),
            ("InvalidParameterCombination", single_az("bad-version", "--engine-version", "9.9")),
            ("InvalidParameterValue", single_az("bad-retention", "--backup-retention-period", "36")),
        ]
        for i, (code, args) in enumerate(cases):
            with self.subTest(args=" ".join(args[2:4]) + " " + code):
                message = self.assert_refused(code, *args, version=1 + i % 2)
                if "short77" in args:
                    self.assertEqual(message, "The parameter MasterUserPassword is not a valid password because it "
                                              "is shorter than 8 characters.")
        names = {d["DBInstanceIdentifier"] for d in self.region.boto3("rds").describe_db_instances()["DBInstances"]}
        self.assertEqual(names, {"app-db", "other-db"})

    def test_bad_calls_on_instances_get_rds_errors_and_change_nothing(self):
        self.assert_refused("DBInstanceNotFound", "rds", "describe-db-instances", "--db-instance-identifier", "nope")
        self.assert_refused("DBInstanceNotFound", "rds", "modify-db-instance", "--db-instance-identifier", "nope",
                            "--backup-retention-period", "3", version=2)
        self.assert_refused("DBInstanceNotFound", "rds", "reboot-db-instance", "--db-instance-identifier", "nope")
        self.assert_refused("DBInstanceNotFound", "rds", "delete-db-instance", "--db-instance-identifier", "nope",
                            "--skip-final-snapshot", version=2)
        # ForceFailover needs a Multi-AZ instance.
        self.assert_refused("InvalidParameterCombination", "rds", "reboot-db-instance",
                            "--db-instance-identifier", "app-db", "--force-failover")
        self.assert_refused("InvalidParameterValue", "rds", "modify-db-instance", "--db-instance-identifier",
                            "app-db", "--backup-retention-period", "36", version=2)
        self.assert_refused("InvalidParameterValue", "rds", "modify-db-instance", "--db-instance-identifier",
                            "app-db", "--master-user-password", "short")
        self.assert_refused("InvalidParameterValue", "rds", "modify-db-instance", "--db-instance-identifier",
                            "app-db", "--preferred-backup-window", "10:00-10:10", version=2)
        self.assert_refused("InvalidParameterCombination", "rds", "modify-db-instance", "--db-instance-identifier",
                            "app-db", "--db-instance-class", "db.x9.huge")
        self.assert_refused("InvalidParameterCombination", "rds", "delete-db-instance", "--db-instance-identifier",
                            "app-db", version=2)
        self.assert_refused("InvalidDBInstanceState", "rds", "start-db-instance", "--db-instance-identifier", "app-db")
        ec = self.region.boto3("rds").exceptions
        with self.assertRaises(ec.DBInstanceNotFoundFault):
            self.region.boto3("rds").describe_db_instances(DBInstanceIdentifier="nope")
        # Available (an automated backup may be running: backing-up is available with a backup in progress).
        self.assertIn(describe(self.region, "app-db")["DBInstanceStatus"], ("available", "backing-up"))

    def test_pending_modifications_and_apply_immediately(self):
        c = self.region.boto3("rds")
        r = c.modify_db_instance(DBInstanceIdentifier="app-db", BackupRetentionPeriod=0)["DBInstance"]
        self.assertEqual(r["PendingModifiedValues"], {"BackupRetentionPeriod": 0})
        self.assertEqual(r["BackupRetentionPeriod"], 1)
        # The same request applied at once; the pending value goes with it.
        r = c.modify_db_instance(DBInstanceIdentifier="app-db", BackupRetentionPeriod=0,
                                 ApplyImmediately=True)["DBInstance"]
        self.assertEqual(r["BackupRetentionPeriod"], 0)
        self.assertEqual(r["PendingModifiedValues"], {})
        r = c.modify_db_instance(DBInstanceIdentifier="app-db", BackupRetentionPeriod=3,
                                 ApplyImmediately=True)["DBInstance"]
        self.assertEqual(r["BackupRetentionPeriod"], 3)
        events = c.describe_events(SourceType="db-instance", SourceIdentifier="app-db")["Events"]
        messages = [e["Message"] for e in events]
        self.assertIn("Disabled automated backups", messages)
        self.assertIn("Enabled automated backups", messages)
        backup_only = c.describe_events(SourceType="db-instance", SourceIdentifier="app-db",
                                        EventCategories=["backup"])["Events"]
        self.assertTrue(backup_only)
        self.assertTrue(all("backup" in e["EventCategories"] for e in backup_only))
        for e in events:
            self.assertEqual(e["SourceArn"], "arn:aws:rds:us-west-2:123456789012:db:app-db")
        # Events of another source, or of another time, are not shown. (other-db has backup events of its own
        # now that automated backups are real.)
        self.assertTrue(all(e["SourceIdentifier"] == "app-db" for e in events + backup_only))
        self.assertTrue(all(e["SourceIdentifier"] == "other-db" for e in c.describe_events(
            SourceType="db-instance", SourceIdentifier="other-db", EventCategories=["backup"])["Events"]))
        self.assertEqual(c.describe_events(SourceType="db-instance", SourceIdentifier="no-such-db")["Events"], [])
        import datetime
        future = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=1)
        self.assertEqual(c.describe_events(StartTime=future, EndTime=future + datetime.timedelta(hours=1))["Events"],
                         [])
        v1 = self.region.cli_v1("rds", "describe-events", "--source-type", "db-instance", "--source-identifier",
                                "app-db", "--duration", "60")["Events"]
        self.assertEqual([e["Message"] for e in v1], messages)
        code, _ = self.region.cli_error_code("rds", "describe-events", "--source-type", "db-toaster", version=2)
        self.assertEqual(code, "InvalidParameterValue")

    def test_tags(self):
        arn = describe(self.region, "app-db")["DBInstanceArn"]
        self.assertEqual(self.region.cli_v1("rds", "list-tags-for-resource", "--resource-name", arn)["TagList"],
                         [{"Key": "team", "Value": "data"}])
        self.region.cli_v2("rds", "add-tags-to-resource", "--resource-name", arn,
                           "--tags", "Key=env,Value=prod", "Key=team,Value=db")
        c = self.region.boto3("rds")
        self.assertEqual(c.list_tags_for_resource(ResourceName=arn)["TagList"],
                         [{"Key": "team", "Value": "db"}, {"Key": "env", "Value": "prod"}])
        c.remove_tags_from_resource(ResourceName=arn, TagKeys=["team"])
        self.assertEqual(describe(self.region, "app-db")["TagList"], [{"Key": "env", "Value": "prod"}])
        self.assertEqual(self.region.cli_error_code("rds", "list-tags-for-resource", "--resource-name",
                                                    arn.replace("app-db", "nope"))[0], "DBInstanceNotFound")
        self.assertEqual(self.region.cli_error_code("rds", "add-tags-to-resource", "--resource-name", "nope",
                                                    "--tags", "Key=a,Value=b", version=2)[0], "InvalidParameterValue")

    def test_describe_filters_and_pages(self):
        c = self.region.boto3("rds")
        other = describe(self.region, "other-db")
        self.assertEqual(other["Engine"], "mariadb")
        self.assertEqual(other["EngineVersion"], "10.11.9")
        got = c.describe_db_instances(Filters=[{"Name": "engine", "Values": ["mariadb"]}])["DBInstances"]
        self.assertEqual([d["DBInstanceIdentifier"] for d in got], ["other-db"])
        got = c.describe_db_instances(Filters=[{"Name": "dbi-resource-id", "Values": [other["DbiResourceId"]]}])
        self.assertEqual([d["DBInstanceIdentifier"] for d in got["DBInstances"]], ["other-db"])
        v2 = self.region.cli_v2("rds", "describe-db-instances", "--filters", "Name=db-instance-id,Values=app-db")
        self.assertEqual([d["DBInstanceIdentifier"] for d in v2["DBInstances"]], ["app-db"])
        pages = list(c.get_paginator("describe_db_instances").paginate(PaginationConfig={"PageSize": 20}))
        self.assertEqual(sum(len(p["DBInstances"]) for p in pages), 2)
        self.assertEqual(self.region.cli_error_code("rds", "describe-db-instances", "--max-records", "5")[0],
                         "InvalidParameterValue")

    def test_engine_versions_and_orderable_options(self):
        v = self.region.cli_v2("rds", "describe-db-engine-versions", "--engine", "mysql", "--default-only")
        self.assertEqual(len(v["DBEngineVersions"]), 1)
        self.assertIn("MariaDB 10.11", v["DBEngineVersions"][0]["DBEngineVersionDescription"])
        c = self.region.boto3("rds")
        options = [o for page in c.get_paginator("describe_orderable_db_instance_options").paginate(
            Engine="mysql", PaginationConfig={"PageSize": 20}) for o in page["OrderableDBInstanceOptions"]]
        classes = {o["DBInstanceClass"] for o in options}
        self.assertIn("db.t3.medium", classes)
        self.assertIn("db.m5.large", classes)
        self.assertEqual(len(options), len({(o["EngineVersion"], o["DBInstanceClass"], o["StorageType"])
                                            for o in options}))
        one = self.region.cli_v1("rds", "describe-orderable-db-instance-options", "--engine", "mysql",
                                 "--db-instance-class", "db.t3.medium", "--engine-version", "8.0.39")
        self.assertTrue(all(o["MultiAZCapable"] for o in one["OrderableDBInstanceOptions"]))

    def test_y_no_password_in_the_server_log(self):
        out = self.region.cli_v1("rds", "modify-db-instance", "--db-instance-identifier", "app-db",
                                 "--master-user-password", "Fresh-Passw0rd-x")["DBInstance"]
        self.assertEqual(out["PendingModifiedValues"], {"MasterUserPassword": "****"})
        self.assertNotIn("Fresh-Passw0rd-x", json.dumps(out))
        self.region.cli_error("rds", "modify-db-instance", "--db-instance-identifier", "app-db",
                              "--master-user-password", "Bad@Passw0rd")
        logs = glob.glob(os.path.join(self.region.root, "server.stdout.*"))
        self.assertTrue(logs)
        for path in logs:
            with open(path, errors="replace") as f:
                text = f.read()
            for secret in ("Secret-Passw0rd", "Fresh-Passw0rd-x", "Bad@Passw0rd"):
                self.assertNotIn(secret, text, path)
        self.assertNotIn("Fresh-Passw0rd-x", json.dumps(describe(self.region, "app-db"), default=str))

    def test_z_lifecycle_calls(self):
        # Runs last in this class: it leaves app-db on its way out.
        r = self.region
        c = r.boto3("rds")
        ensure_available(r, "app-db")  # after the password change
        self.assertEqual(c.reboot_db_instance(DBInstanceIdentifier="app-db")["DBInstance"]["DBInstanceStatus"],
                         "rebooting")
        ensure_available(r, "app-db")  # the real server restarted
        # Stable states only (the controller leaves transient ones within moments): starting an available
        # instance and stopping a stopped one are refused.
        self.assertEqual(r.cli_error_code("rds", "start-db-instance", "--db-instance-identifier", "app-db")[0],
                         "InvalidDBInstanceState")
        c.stop_db_instance(DBInstanceIdentifier="app-db")
        wait_until(lambda: describe(r, "app-db")["DBInstanceStatus"] == "stopped", CREATE_WAIT, 0.25, "app-db stopped")
        self.assertEqual(r.cli_error_code("rds", "stop-db-instance", "--db-instance-identifier", "app-db")[0],
                         "InvalidDBInstanceState")
        out = r.cli_v2("rds", "delete-db-instance", "--db-instance-identifier", "app-db", "--skip-final-snapshot")
        self.assertEqual(out["DBInstance"]["DBInstanceStatus"], "deleting")
        # Deleting, or already gone.
        self.assertIn(r.cli_error_code("rds", "delete-db-instance", "--db-instance-identifier", "app-db",
                                       "--skip-final-snapshot")[0], ("InvalidDBInstanceState", "DBInstanceNotFound"))

if __name__ == "__main__":
    unittest.main()

"""An out-of-range page size (MaxRecords=0, or above the call's maximum) gets, in every service that pages, the
code and message that service gives on AWS: RDS's and ElastiCache's InvalidParameterValue wording with their own
ranges, and the Query-JSON services' "1 validation error detected" constraint text (Auto Scaling, CloudWatch,
Classic ELB's PageSize). SNS's lists page by NextToken only (no page size parameter), so there is nothing to ask.

boto3 is used with client-side parameter validation off, so that the region, not botocore, answers.
"""

import unittest

import botocore.exceptions

from harness import Region


class PageSizeTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.region = Region.for_class(cls)

    def client(self, service):
        return self.region.boto3(service, parameter_validation=False)

    def error(self, fn, **kwargs):
        try:
            fn(**kwargs)
        except botocore.exceptions.ClientError as e:
            return e.response["Error"]["Code"], e.response["Error"]["Message"]
        raise AssertionError("expected %s(%s) to be refused" % (fn.__name__, kwargs))

    def test_rds(self):
        rds = self.client("rds")
        for fn in (rds.describe_db_instances, rds.describe_db_snapshots, rds.describe_events,
                   rds.describe_db_subnet_groups, rds.describe_db_engine_versions):
            self.assertEqual(self.error(fn, MaxRecords=0),
                             ("InvalidParameterValue", "Invalid value 0 for MaxRecords. Must be between 20 and 100"))
            self.assertEqual(self.error(fn, MaxRecords=101)[1],
                             "Invalid value 101 for MaxRecords. Must be between 20 and 100")
        # DescribeOrderableDBInstanceOptions pages up to 1000.
        self.assertEqual(self.error(rds.describe_orderable_db_instance_options, Engine="mysql", MaxRecords=0)[1],
                         "Invalid value 0 for MaxRecords. Must be between 20 and 1000")
        rds.describe_orderable_db_instance_options(Engine="mysql", MaxRecords=1000)

    def test_elasticache(self):
        ec = self.client("elasticache")
        for fn in (ec.describe_replication_groups, ec.describe_cache_clusters, ec.describe_events,
                   ec.describe_cache_subnet_groups, ec.describe_cache_parameter_groups):
            self.assertEqual(self.error(fn, MaxRecords=0),
                             ("InvalidParameterValue", "Invalid value for max records. Must be between 20 and 100"))
        # DescribeSnapshots pages by at most 50.
        self.assertEqual(self.error(ec.describe_snapshots, MaxRecords=0)[1],
                         "Invalid value for max records. Must be between 20 and 50")

    def test_autoscaling(self):
        asc = self.client("autoscaling")
        for fn in (asc.describe_auto_scaling_groups, asc.describe_launch_configurations, asc.describe_policies):
            self.assertEqual(self.error(fn, MaxRecords=0),
                             ("ValidationError", "1 validation error detected: Value '0' at 'maxRecords' failed to "
                                                 "satisfy constraint: Member must have value greater than or equal "
                                                 "to 1"))
        self.assertEqual(self.error(asc.describe_policies, MaxRecords=101)[1],
                         "1 validation error detected: Value '101' at 'maxRecords' failed to satisfy constraint: "
                         "Member must have value less than or equal to 100")

    def test_cloudwatch(self):
        cw = self.client("cloudwatch")
        self.assertEqual(self.error(cw.describe_alarms, MaxRecords=0),
                         ("ValidationError", "1 validation error detected: Value '0' at 'maxRecords' failed to "
                                             "satisfy constraint: Member must have value greater than or equal to 1"))
        self.assertEqual(self.error(cw.describe_alarm_history, MaxRecords=101)[1],
                         "1 validation error detected: Value '101' at 'maxRecords' failed to satisfy constraint: "
                         "Member must have value less than or equal to 100")

    def test_elb(self):
        elb = self.client("elb")
        self.assertEqual(self.error(elb.describe_load_balancers, PageSize=0),
                         ("ValidationError", "1 validation error detected: Value '0' at 'pageSize' failed to "
                                             "satisfy constraint: Member must have value greater than or equal to 1"))
        self.assertEqual(self.error(elb.describe_load_balancers, PageSize=401)[1],
                         "1 validation error detected: Value '401' at 'pageSize' failed to satisfy constraint: "
                         "Member must have value less than or equal to 400")


if __name__ == "__main__":
    unittest.main()

"""CloudWatch (issue 12) with the real aws CLI v1 (AWS JSON 1.0), aws CLI v2 (Query) and boto3 (JSON 1.0): the
seed's alarm as written, PutMetricData then GetMetricStatistics, an alarm that goes to ALARM on data the test puts
and back to OK, a real instance's CPUUtilization appearing, and AWS's errors for bad input.
"""

import datetime
import time
import unittest

import harness
from harness import Region, wait_until

# The seed's command, argument for argument (auto_pipeline_ha_strategy.ko.md §5).
SEED_ALARM = [
    "cloudwatch", "put-metric-alarm",
    "--alarm-name", "HighCPUUsage",
    "--metric-name", "CPUUtilization",
    "--namespace", "AWS/EC2",
    "--statistic", "Average",
    "--period", "300",
    "--threshold", "80",
    "--comparison-operator", "GreaterThanThreshold",
    "--dimensions", "Name=InstanceId,Value=i-1234567890",
    "--evaluation-periods", "2",
    "--alarm-actions", "arn:aws:sns:us-west-2:123456789012:AutoPipelineAlerts",
]


def iso(t):
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class CloudWatchTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.region = Region.for_class(cls)
        cls.cw = cls.region.boto3("cloudwatch")

    def alarm(self, name):
        alarms = self.cw.describe_alarms(AlarmNames=[name])["MetricAlarms"]
        return alarms[0] if alarms else None

    def test_seed_alarm_with_both_clis(self):
        for v in (1, 2):
            self.assertEqual(self.region.cli(v, *SEED_ALARM), {})
            for reader in (1, 2):
                alarms = self.region.cli(reader, "cloudwatch", "describe-alarms", "--alarm-names",
                                         "HighCPUUsage")["MetricAlarms"]
                self.assertEqual(len(alarms), 1)
                a = alarms[0]
                self.assertEqual(a["AlarmArn"], "arn:aws:cloudwatch:us-west-2:123456789012:alarm:HighCPUUsage")
                self.assertEqual(a["MetricName"], "CPUUtilization")
                self.assertEqual(a["Namespace"], "AWS/EC2")
                self.assertEqual(a["Statistic"], "Average")
                self.assertEqual(a["Period"], 300)
                self.assertEqual(a["Threshold"], 80.0)
                self.assertEqual(a["EvaluationPeriods"], 2)
                self.assertEqual(a["ComparisonOperator"], "GreaterThanThreshold")
                self.assertEqual(a["Dimensions"], [{"Name": "InstanceId", "Value": "i-1234567890"}])
                self.assertEqual(a["AlarmActions"], ["arn:aws:sns:us-west-2:123456789012:AutoPipelineAlerts"])
                self.assertTrue(a["ActionsEnabled"])
                self.assertEqual(a["StateValue"], "INSUFFICIENT_DATA")
                self.assertIn("StateUpdatedTimestamp", a)
        a = self.alarm("HighCPUUsage")
        self.assertIsInstance(a["AlarmConfigurationUpdatedTimestamp"], datetime.datetime)
        # No data for i-1234567890: it stays INSUFFICIENT_DATA (it is evaluated at once after each write).
        self.assertEqual(self.alarm("HighCPUUsage")["StateValue"], "INSUFFICIENT_DATA")
        for_metric = self.cw.describe_alarms_for_metric(
            MetricName="CPUUtilization", Namespace="AWS/EC2",
            Dimensions=[{"Name": "InstanceId", "Value": "i-1234567890"}])["MetricAlarms"]
        self.assertEqual([m["AlarmName"] for m in for_metric], ["HighCPUUsage"])

    def test_put_then_get_statistics(self):
        now = int(time.time()) // 60 * 60 - 120
        for client in ("v1", "v2", "boto3"):
            ns = "E2E/" + client
            if client == "boto3":
                self.cw.put_metric_data(Namespace=ns, MetricData=[
                    {"MetricName": "Requests", "Value": 3.0, "Unit": "Count",
                     "Timestamp": datetime.datetime.fromtimestamp(now, datetime.timezone.utc)},
                    {"MetricName": "Requests", "Value": 5.0, "Unit": "Count",
                     "Timestamp": datetime.datetime.fromtimestamp(now + 10, datetime.timezone.utc)}])
                got = self.cw.get_metric_statistics(
                    Namespace=ns, MetricName="Requests",
                    StartTime=datetime.datetime.fromtimestamp(now, datetime.timezone.utc),
                    EndTime=datetime.datetime.fromtimestamp(now + 60, datetime.timezone.utc),
                    Period=60, Statistics=["Sum", "Average", "SampleCount", "Maximum"])
            else:
                v = 1 if client == "v1" else 2
                for value, t in ((3, now), (5, now + 10)):
                    self.region.cli(v, "cloudwatch", "put-metric-data", "--namespace", ns, "--metric-name",
                                    "Requests", "--value", str(value), "--unit", "Count", "--timestamp", iso(t))
                got = self.region.cli(v, "cloudwatch", "get-metric-statistics", "--namespace", ns,
                                      "--metric-name", "Requests", "--start-time", iso(now), "--end-time",
                                      iso(now + 60), "--period", "60", "--statistics", "Sum", "Average",
                                      "SampleCount", "Maximum")
            self.assertEqual(got["Label"], "Requests", client)
            self.assertEqual(len(got["Datapoints"]), 1, (client, got))
            dp = got["Datapoints"][0]
            self.assertEqual(dp["Sum"], 8.0, client)
            self.assertEqual(dp["Average"], 4.0, client)
            self.assertEqual(dp["SampleCount"], 2.0, client)
            self.assertEqual(dp["Maximum"], 5.0, client)
            self.assertEqual(dp["Unit"], "Count", client)
            if client == "boto3":
                self.assertEqual(dp["Timestamp"], datetime.datetime.fromtimestamp(now, datetime.timezone.utc))
            listed = self.region.cli(1 if client != "v2" else 2, "cloudwatch", "list-metrics", "--namespace", ns)
            self.assertEqual([m["MetricName"] for m in listed["Metrics"]], ["Requests"])

    def test_large_put_metric_data_is_gzipped_and_accepted(self):
        # boto3 compresses PutMetricData bodies of 10 KiB or more (Content-Encoding: gzip).
        data = [{"MetricName": "g%d" % i, "Value": float(i), "Dimensions": [{"Name": "Host", "Value": "h%d" % i}]}
                for i in range(1000)]
        self.cw.put_metric_data(Namespace="E2E/Gzip", MetricData=data)
        metrics = self.region.cli(2, "cloudwatch", "list-metrics", "--namespace", "E2E/Gzip")["Metrics"]
        self.assertEqual(len(metrics), 1000)  # the CLI follows NextToken itself
        page2 = self.cw.list_metrics(Namespace="E2E/Gzip", NextToken=self.cw.list_metrics(
            Namespace="E2E/Gzip")["NextToken"])
        self.assertEqual(len(page2["Metrics"]), 500)
        self.assertNotIn("NextToken", page2)

    def test_alarm_goes_to_alarm_and_back_to_ok(self):
        name = "e2e-hot"
        self.region.cli(2, "cloudwatch", "put-metric-alarm", "--alarm-name", name, "--metric-name", "Heat",
                        "--namespace", "E2E/Alarm", "--statistic", "Maximum", "--period", "10", "--threshold",
                        "50", "--comparison-operator", "GreaterThanThreshold", "--evaluation-periods", "1",
                        "--alarm-actions", "arn:aws:automate:us-west-2:ec2:reboot")
        self.assertEqual(self.alarm(name)["StateValue"], "INSUFFICIENT_DATA")
        self.cw.put_metric_data(Namespace="E2E/Alarm", MetricData=[{"MetricName": "Heat", "Value": 90.0}])
        # Evaluated every 10 s, right after each period ends.
        wait_until(lambda: self.alarm(name)["StateValue"] == "ALARM", timeout=25, what="ALARM")
        a = self.alarm(name)
        self.assertRegex(a["StateReason"],
                         r"^Threshold Crossed: 1 out of the last 1 datapoints \[90\.0 \(\d\d/\d\d/\d\d "
                         r"\d\d:\d\d:\d\d\)\] was greater than the threshold \(50\.0\) \(minimum 1 datapoint for "
                         r"INSUFFICIENT_DATA -> ALARM transition\)\.$")
        self.region.cli(1, "cloudwatch", "put-metric-data", "--namespace", "E2E/Alarm", "--metric-name", "Heat",
                        "--value", "1")
        wait_until(lambda: self.alarm(name)["StateValue"] == "OK", timeout=25, what="OK")
        for v in (1, 2):
            items = self.region.cli(v, "cloudwatch", "describe-alarm-history", "--alarm-name", name)[
                "AlarmHistoryItems"]
            summaries = [i["HistorySummary"] for i in items]
            self.assertIn("Alarm updated from INSUFFICIENT_DATA to ALARM", summaries)
            self.assertIn("Alarm updated from ALARM to OK", summaries)
            # The reboot action was tried and is recorded (this region's instances cannot be rebooted).
            self.assertTrue(any(s.startswith("Failed to execute action arn:aws:automate:us-west-2:ec2:reboot")
                                for s in summaries), summaries)

    def test_bad_input_is_refused(self):
        base = ["cloudwatch", "put-metric-alarm", "--alarm-name", "bad", "--metric-name", "m", "--namespace", "N",
                "--statistic", "Average", "--threshold", "1", "--evaluation-periods", "1"]
        for v in (1, 2):
            code, msg = self.region.cli_error_code(*base, "--period", "7", "--comparison-operator",
                                                   "GreaterThanThreshold", version=v)
            self.assertEqual((code, msg), ("ValidationError", "The parameter Period must be 10, 20, 30 or a "
                                                              "multiple of 60."))
            code, _ = self.region.cli_error_code(*base, "--period", "60", "--comparison-operator", "Bigger",
                                                 version=v)
            self.assertEqual(code, "ValidationError")
            code, msg = self.region.cli_error_code(*base, "--period", "60", "--comparison-operator",
                                                   "GreaterThanThreshold", "--alarm-actions",
                                                   "arn:aws:sns:eu-west-1:123456789012:T", version=v)
            self.assertEqual((code, msg), ("ValidationError",
                                           "Invalid region eu-west-1 specified. Only us-west-2 is supported."))
            six = ["arn:aws:sns:us-west-2:123456789012:T%d" % i for i in range(6)]
            code, _ = self.region.cli_error_code(*base, "--period", "60", "--comparison-operator",
                                                 "GreaterThanThreshold", "--alarm-actions", *six, version=v)
            self.assertEqual(code, "ValidationError")
            code, msg = self.region.cli_error_code("cloudwatch", "put-metric-data", "--namespace", "AWS/EC2",
                                                   "--metric-name", "CPUUtilization", "--value", "1", version=v)
            self.assertEqual((code, msg), ("InvalidParameterValue",
                                           "The value AWS/EC2 for parameter Namespace is invalid."))
            code, _ = self.region.cli_error_code("cloudwatch", "delete-alarms", "--alarm-names", "never-made",
                                                 version=v)
            self.assertEqual(code, "ResourceNotFound")
            code, msg = self.region.cli_error_code("cloudwatch", "put-metric-data", "--namespace", "N",
                                                   "--metric-name", "m", "--value", "NaN", version=v)
            self.assertEqual((code, msg), ("InvalidParameterValue",
                                           "The value NaN for parameter MetricData.member.1.Value is invalid."))
        with self.assertRaises(self.cw.exceptions.ClientError) as ctx:
            self.cw.put_metric_data(Namespace="N", MetricData=[{"MetricName": "m", "Value": float("inf")}])
        self.assertEqual(ctx.exception.response["Error"]["Code"], "InvalidParameterValue")
        self.assertEqual(self.cw.list_metrics(Namespace="N")["Metrics"], [])
        self.assertIsNone(self.alarm("bad"))

    def test_metrics_and_alarms_survive_a_restart(self):
        now = int(time.time()) // 60 * 60 - 60
        self.cw.put_metric_data(Namespace="E2E/Durable", MetricData=[
            {"MetricName": "Kept", "Value": 42.0,
             "Timestamp": datetime.datetime.fromtimestamp(now, datetime.timezone.utc)}])
        self.cw.put_metric_alarm(AlarmName="e2e-durable", MetricName="Kept", Namespace="E2E/Durable",
                                 Statistic="Sum", Period=60, EvaluationPeriods=1, Threshold=1,
                                 ComparisonOperator="GreaterThanThreshold")
        self.region.kill9()  # a crash: the metric store's WAL keeps what PutMetricData acknowledged
        self.region.restart()
        got = self.cw.get_metric_statistics(
            Namespace="E2E/Durable", MetricName="Kept",
            StartTime=datetime.datetime.fromtimestamp(now, datetime.timezone.utc),
            EndTime=datetime.datetime.fromtimestamp(now + 60, datetime.timezone.utc),
            Period=60, Statistics=["Sum"])["Datapoints"]
        self.assertEqual([p["Sum"] for p in got], [42.0])
        self.assertIsNotNone(self.alarm("e2e-durable"))

    def test_real_instance_cpu_utilization(self):
        lc, group = "cw-lc", "cw-group"
        self.region.create_lc(lc)
        self.region.create_group(group, lc, 1, azs=("us-west-2a",))
        self.addCleanup(lambda: self.region.boto3("autoscaling").delete_auto_scaling_group(
            AutoScalingGroupName=group, ForceDelete=True))
        iid = wait_until(lambda: [i["InstanceId"] for i in self.region.group_instances(group)
                                  if i["LifecycleState"] == "InService"], what="an instance in service")[0]

        def datapoints():
            end = time.time() + 5
            return self.cw.get_metric_statistics(
                Namespace="AWS/EC2", MetricName="CPUUtilization",
                Dimensions=[{"Name": "InstanceId", "Value": iid}],
                StartTime=datetime.datetime.fromtimestamp(end - 300, datetime.timezone.utc),
                EndTime=datetime.datetime.fromtimestamp(end, datetime.timezone.utc),
                Period=10, Statistics=["Average", "SampleCount"])["Datapoints"]
        points = wait_until(datapoints, timeout=30, what="CPUUtilization of %s" % iid)
        for p in points:
            self.assertGreaterEqual(p["Average"], 0.0)
            self.assertLessEqual(p["Average"], 100.0)
            self.assertEqual(p["Unit"], "Percent")
        metrics = self.region.cli(2, "cloudwatch", "list-metrics", "--namespace", "AWS/EC2", "--metric-name",
                                  "CPUUtilization", "--dimensions", "Name=InstanceId,Value=" + iid)["Metrics"]
        self.assertEqual(len(metrics), 1)
        groups = self.region.cli(1, "cloudwatch", "list-metrics", "--namespace", "AWS/AutoScaling",
                                 "--metric-name", "GroupDesiredCapacity")["Metrics"]
        self.assertIn([{"Name": "AutoScalingGroupName", "Value": group}], [m["Dimensions"] for m in groups])


if __name__ == "__main__":
    unittest.main()

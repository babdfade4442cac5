// The CloudWatch API and alarm evaluation through the real handlers, on a fake clock.
#include "cloudwatch/cloudwatch_service.h"

#include <gtest/gtest.h>

#include "cloudwatch/cloudwatch_region.h"
#include "common/time_util.h"
#include "ec2/instances.h"
#include "region/region_fixture.h"

namespace autopipe {
namespace {

using cloudwatch::CloudWatchRegion;

class CloudWatchServiceTest : public RegionFixture {
 protected:
  void SetUp() override {
    clock_.Set(1'796'140'800'000);  // 2026-12-01T16:00:00Z, a whole hour
    WireRegion({.auto_scaling = false, .load_balancing = false, .service = "monitoring"});
    auto region = CloudWatchRegion::For(&ctx_);
    ASSERT_TRUE(region.ok());
    region_ = *region;
  }

  // The seed's alarm, parameter for parameter as `aws cloudwatch put-metric-alarm` sends it.
  FormParams SeedAlarm() {
    return {{"AlarmName", "HighCPUUsage"},
            {"MetricName", "CPUUtilization"},
            {"Namespace", "AWS/EC2"},
            {"Statistic", "Average"},
            {"Period", "300"},
            {"Threshold", "80"},
            {"ComparisonOperator", "GreaterThanThreshold"},
            {"Dimensions.member.1.Name", "InstanceId"},
            {"Dimensions.member.1.Value", "i-1234567890"},
            {"EvaluationPeriods", "2"},
            {"AlarmActions.member.1", "arn:aws:sns:us-west-2:123456789012:AutoPipelineAlerts"}};
  }

  Json Alarm(const std::string& name) {
    Json r = MustCall("DescribeAlarms", {{"AlarmNames.member.1", name}});
    if (r["MetricAlarms"].size() != 1) return Json();
    return r["MetricAlarms"][0];
  }

  void Put(const std::string& ns, const std::string& metric, double value, int64_t at_millis) {
    MustCall("PutMetricData", {{"Namespace", ns},
                               {"MetricData.member.1.MetricName", metric},
                               {"MetricData.member.1.Value", Json(value).dump()},
                               {"MetricData.member.1.Timestamp", IsoTimeMillis(at_millis)}});
  }

  std::shared_ptr<CloudWatchRegion> region_;
};

TEST_F(CloudWatchServiceTest, SeedAlarmStaysInsufficientData) {
  MustCall("PutMetricAlarm", SeedAlarm());
  Json a = Alarm("HighCPUUsage");
  EXPECT_EQ(a["AlarmArn"], "arn:aws:cloudwatch:us-west-2:123456789012:alarm:HighCPUUsage");
  EXPECT_EQ(a["StateValue"], "INSUFFICIENT_DATA");
  EXPECT_EQ(a["StateReason"], "Unchecked: Initial alarm creation");
  EXPECT_EQ(a["Period"], 300);
  EXPECT_EQ(a["EvaluationPeriods"], 2);
  EXPECT_EQ(a["Threshold"], 80.0);
  EXPECT_EQ(a["ActionsEnabled"], true);
  EXPECT_EQ(a["AlarmActions"], Json::array({"arn:aws:sns:us-west-2:123456789012:AutoPipelineAlerts"}));
  EXPECT_EQ(a["Dimensions"][0]["Value"], "i-1234567890");
  EXPECT_FALSE(a.contains("TreatMissingData"));
  // Ten minutes of evaluations later: no data for i-1234567890, so still INSUFFICIENT_DATA.
  for (int i = 0; i < 10; ++i) {
    clock_.Advance(60'000);
    region_->Tick(clock_.NowMillis());
  }
  a = Alarm("HighCPUUsage");
  EXPECT_EQ(a["StateValue"], "INSUFFICIENT_DATA");
  EXPECT_EQ(a["StateReason"], "Unchecked: Initial alarm creation");
}

TEST_F(CloudWatchServiceTest, BadAlarmsAreRefusedAndChangeNothing) {
  auto with = [&](const std::string& k, const std::string& v) {
    FormParams p = SeedAlarm();
    p[k] = v;
    return p;
  };
  ExpectError(Call("PutMetricAlarm", with("Period", "7")), "ValidationError",
              "The parameter Period must be 10, 20, 30 or a multiple of 60.");
  ExpectError(Call("PutMetricAlarm", with("ComparisonOperator", "Bigger")), "ValidationError",
              "1 validation error detected: Value 'Bigger' at 'comparisonOperator' failed to satisfy constraint: "
              "Member must satisfy enum value set: [GreaterThanOrEqualToThreshold, GreaterThanThreshold, "
              "GreaterThanUpperThreshold, LessThanLowerOrGreaterThanUpperThreshold, LessThanLowerThreshold, "
              "LessThanOrEqualToThreshold, LessThanThreshold]");
  ExpectError(Call("PutMetricAlarm", with("AlarmActions.member.1", "arn:aws:sns:us-east-1:123456789012:T")),
              "ValidationError", "Invalid region us-east-1 specified. Only us-west-2 is supported.");
  ExpectError(Call("PutMetricAlarm", with("Threshold", "NaN")), "InvalidParameterValue",
              "The value NaN for parameter Threshold is invalid.");
  ExpectError(Call("PutMetricAlarm", with("TreatMissingData", "sometimes")), "ValidationError",
              "1 validation error detected: Value 'sometimes' at 'treatMissingData' failed to satisfy constraint: "
              "Member must satisfy enum value set: [breaching, ignore, missing, notBreaching]");
  ExpectError(Call("PutMetricAlarm", with("DatapointsToAlarm", "3")), "ValidationError",
              "DatapointsToAlarm must be less than or equal to EvaluationPeriods.");
  ExpectError(Call("PutMetricAlarm", with("EvaluationPeriods", "289")), "ValidationError",
              "The evaluation period (Period x EvaluationPeriods) must not exceed one day (86400 seconds) for "
              "periods under one hour, or seven days (604800 seconds).");
  ExpectError(Call("PutMetricAlarm", with("AlarmActions.member.1", "arn:aws:automate:us-west-2:ec2:explode")),
              "ValidationError",
              "Invalid use of EC2 action in AlarmActions: arn:aws:automate:us-west-2:ec2:explode");
  FormParams six = SeedAlarm();
  for (int i = 1; i <= 6; ++i) {
    six["AlarmActions.member." + std::to_string(i)] = "arn:aws:sns:us-west-2:123456789012:T" + std::to_string(i);
  }
  ExpectError(Call("PutMetricAlarm", six), "ValidationError",
              "1 validation error detected: Value with 6 elements at 'alarmActions' failed to satisfy constraint: "
              "Member must have length less than or equal to 5");
  EXPECT_EQ(MustCall("DescribeAlarms", {})["MetricAlarms"].size(), 0u);
  EXPECT_EQ(store_->Count(cloudwatch::kind::kAlarmHistory), 0u);
  // High-resolution periods are fine.
  MustCall("PutMetricAlarm", with("Period", "10"));
  MustCall("PutMetricAlarm", with("Period", "30"));
}

TEST_F(CloudWatchServiceTest, BadMetricDataIsRefused) {
  const int64_t now = clock_.NowMillis();
  auto put = [&](FormParams extra) {
    FormParams p = {{"Namespace", "App"}, {"MetricData.member.1.MetricName", "m"}};
    for (auto& [k, v] : extra) p[k] = v;
    return Call("PutMetricData", p);
  };
  ExpectError(Call("PutMetricData", {{"Namespace", "AWS/EC2"}, {"MetricData.member.1.MetricName", "m"},
                                     {"MetricData.member.1.Value", "1"}}),
              "InvalidParameterValue", "The value AWS/EC2 for parameter Namespace is invalid.");
  ExpectError(put({{"MetricData.member.1.Value", "NaN"}}), "InvalidParameterValue",
              "The value NaN for parameter MetricData.member.1.Value is invalid.");
  ExpectError(put({{"MetricData.member.1.Value", "Infinity"}}), "InvalidParameterValue",
              "The value Infinity for parameter MetricData.member.1.Value is invalid.");
  ExpectError(put({{"MetricData.member.1.Value", "1e300"}}), "InvalidParameterValue",
              "The value 1e300 for parameter MetricData.member.1.Value is invalid.");
  ExpectError(put({{"MetricData.member.1.Value", "1"},
                   {"MetricData.member.1.Timestamp", IsoTimeMillis(now - 15LL * 86400'000)}}),
              "InvalidParameterValue",
              "The parameter MetricData.member.1.Timestamp must specify a time no more than two weeks in the past "
              "and no more than two hours in the future.");
  ExpectError(put({{"MetricData.member.1.Value", "1"},
                   {"MetricData.member.1.Timestamp", IsoTimeMillis(now + 3 * 3600'000)}}),
              "InvalidParameterValue",
              "The parameter MetricData.member.1.Timestamp must specify a time no more than two weeks in the past "
              "and no more than two hours in the future.");
  ExpectError(put({{"MetricData.member.1.Value", "1"}, {"MetricData.member.1.StorageResolution", "5"}}),
              "InvalidParameterValue", "The value 5 for parameter MetricData.member.1.StorageResolution is invalid.");
  EXPECT_EQ(region_->metrics().metric_count(), 0u);
  // 1 000 metrics per call are fine, 1 001 are not.
  FormParams many = {{"Namespace", "App"}};
  for (int i = 1; i <= 1001; ++i) {
    many["MetricData.member." + std::to_string(i) + ".MetricName"] = "m" + std::to_string(i);
    many["MetricData.member." + std::to_string(i) + ".Value"] = "1";
  }
  ExpectError(Call("PutMetricData", many), "ValidationError",
              "1 validation error detected: Value with 1001 elements at 'metricData' failed to satisfy constraint: "
              "Member must have length less than or equal to 1000");
  // 1,000 metrics with two dimensions each: more parameters than the router's general backstop, and accepted.
  FormParams full = {{"Namespace", "App"}};
  for (int i = 1; i <= 1000; ++i) {
    const std::string f = "MetricData.member." + std::to_string(i);
    full[f + ".MetricName"] = "m";
    full[f + ".Value"] = "1";
    full[f + ".Dimensions.member.1.Name"] = "Host";
    full[f + ".Dimensions.member.1.Value"] = "h" + std::to_string(i);
    full[f + ".Dimensions.member.2.Name"] = "Stage";
    full[f + ".Dimensions.member.2.Value"] = "prod";
  }
  ASSERT_GT(full.size(), kMaxRequestParameters);
  MustCall("PutMetricData", full);
  EXPECT_EQ(region_->metrics().metric_count(), 1000u);
}

TEST_F(CloudWatchServiceTest, PutThenGetStatistics) {
  const int64_t t0 = clock_.NowMillis() - 600'000;
  MustCall("PutMetricData", {{"Namespace", "App"},
                             {"MetricData.member.1.MetricName", "Latency"},
                             {"MetricData.member.1.Unit", "Milliseconds"},
                             {"MetricData.member.1.Timestamp", IsoTimeMillis(t0)},
                             {"MetricData.member.1.Values.member.1", "10"},
                             {"MetricData.member.1.Values.member.2", "30"},
                             {"MetricData.member.1.Counts.member.1", "1"},
                             {"MetricData.member.1.Counts.member.2", "3"},
                             {"MetricData.member.2.MetricName", "Latency"},
                             {"MetricData.member.2.Unit", "Milliseconds"},
                             {"MetricData.member.2.Timestamp", IsoTimeMillis(t0 + 60'000)},
                             {"MetricData.member.2.StatisticValues.SampleCount", "2"},
                             {"MetricData.member.2.StatisticValues.Sum", "8"},
                             {"MetricData.member.2.StatisticValues.Minimum", "3"},
                             {"MetricData.member.2.StatisticValues.Maximum", "5"}});
  Json r = MustCall("GetMetricStatistics", {{"Namespace", "App"},
                                            {"MetricName", "Latency"},
                                            {"StartTime", IsoTimeMillis(t0)},
                                            {"EndTime", IsoTimeMillis(t0 + 120'000)},
                                            {"Period", "60"},
                                            {"Statistics.member.1", "Average"},
                                            {"Statistics.member.2", "Sum"},
                                            {"Statistics.member.3", "SampleCount"},
                                            {"Statistics.member.4", "Maximum"}});
  EXPECT_EQ(r["Label"], "Latency");
  ASSERT_EQ(r["Datapoints"].size(), 2u);
  EXPECT_EQ(r["Datapoints"][0]["Timestamp"], IsoTimeMillis(t0));
  EXPECT_EQ(r["Datapoints"][0]["SampleCount"], 4.0);
  EXPECT_EQ(r["Datapoints"][0]["Sum"], 100.0);
  EXPECT_EQ(r["Datapoints"][0]["Average"], 25.0);
  EXPECT_EQ(r["Datapoints"][0]["Maximum"], 30.0);
  EXPECT_EQ(r["Datapoints"][0]["Unit"], "Milliseconds");
  EXPECT_FALSE(r["Datapoints"][0].contains("Minimum"));
  EXPECT_EQ(r["Datapoints"][1]["Average"], 4.0);

  // 1,440 points at most.
  ExpectError(Call("GetMetricStatistics", {{"Namespace", "App"},
                                           {"MetricName", "Latency"},
                                           {"StartTime", IsoTimeMillis(t0 - 86400'000)},
                                           {"EndTime", IsoTimeMillis(t0 + 60'000)},
                                           {"Period", "60"},
                                           {"Statistics.member.1", "Average"}}),
              "InvalidParameterCombination",
              "You have requested up to 1,441 datapoints, which exceeds the limit of 1,440. You may reduce the "
              "datapoints requested by increasing Period, or decreasing the time range.");
  ExpectError(Call("GetMetricStatistics", {{"Namespace", "App"},
                                           {"MetricName", "Latency"},
                                           {"StartTime", IsoTimeMillis(t0)},
                                           {"EndTime", IsoTimeMillis(t0 + 60'000)},
                                           {"Period", "7"},
                                           {"Statistics.member.1", "Average"}}),
              "InvalidParameterValue", "The parameter Period must be 1, 5, 10, 20, 30 or a multiple of 60.");

  Json listed = MustCall("ListMetrics", {{"Namespace", "App"}});
  ASSERT_EQ(listed["Metrics"].size(), 1u);
  EXPECT_EQ(listed["Metrics"][0]["MetricName"], "Latency");
}

TEST_F(CloudWatchServiceTest, AlarmGoesToAlarmAndBackWithHistory) {
  MustCall("PutMetricAlarm", {{"AlarmName", "hot"},
                              {"MetricName", "Load"},
                              {"Namespace", "App"},
                              {"Statistic", "Maximum"},
                              {"Period", "10"},
                              {"EvaluationPeriods", "2"},
                              {"DatapointsToAlarm", "2"},
                              {"Threshold", "50"},
                              {"ComparisonOperator", "GreaterThanOrEqualToThreshold"},
                              {"AlarmActions.member.1", "arn:aws:sns:us-west-2:123456789012:nobody-serves-this"}});
  region_->Tick(clock_.NowMillis());
  EXPECT_EQ(Alarm("hot")["StateValue"], "INSUFFICIENT_DATA");
  // Two breaching 10-s periods.
  Put("App", "Load", 70, clock_.NowMillis() + 1000);
  Put("App", "Load", 90, clock_.NowMillis() + 11'000);
  clock_.Advance(20'000);
  region_->Tick(clock_.NowMillis());
  Json a = Alarm("hot");
  EXPECT_EQ(a["StateValue"], "ALARM");
  EXPECT_EQ(a["StateReason"],
            "Threshold Crossed: 2 out of the last 2 datapoints [90.0 (01/12/26 16:00:10), 70.0 (01/12/26 16:00:00)] "
            "were greater than or equal to the threshold (50.0) (minimum 2 datapoints for INSUFFICIENT_DATA -> "
            "ALARM transition).");
  Json data = Json::parse(a["StateReasonData"].get<std::string>());
  EXPECT_EQ(data["statistic"], "Maximum");
  EXPECT_EQ(data["period"], 10);
  EXPECT_EQ(data["recentDatapoints"], Json::array({70.0, 90.0}));
  // The action's ARN names a service no module of this region carries out: recorded as failed.
  Json history = MustCall("DescribeAlarmHistory", {{"AlarmName", "hot"}, {"HistoryItemType", "Action"}});
  ASSERT_EQ(history["AlarmHistoryItems"].size(), 1u);
  EXPECT_EQ(history["AlarmHistoryItems"][0]["HistorySummary"].get<std::string>().rfind(
                "Failed to execute action arn:aws:sns:us-west-2:123456789012:nobody-serves-this", 0),
            0u);
  // A fine period: 1 of the last 2 breaches, under M = 2, so OK.
  Put("App", "Load", 5, clock_.NowMillis() + 1000);
  clock_.Advance(10'000);
  region_->Tick(clock_.NowMillis());
  EXPECT_EQ(Alarm("hot")["StateValue"], "OK");
  Json updates = MustCall("DescribeAlarmHistory", {{"AlarmName", "hot"}, {"HistoryItemType", "StateUpdate"}});
  ASSERT_EQ(updates["AlarmHistoryItems"].size(), 2u);
  EXPECT_EQ(updates["AlarmHistoryItems"][0]["HistorySummary"], "Alarm updated from ALARM to OK");
  EXPECT_EQ(updates["AlarmHistoryItems"][1]["HistorySummary"], "Alarm updated from INSUFFICIENT_DATA to ALARM");
  // Cadence: a 10-s alarm is evaluated once per 10 s, not on every tick.
  EXPECT_EQ(region_->EvaluateDue(clock_.NowMillis()), 0u);
}

TEST_F(CloudWatchServiceTest, AutoScalingActionsRepeatWhileTheStateHolds) {
  // No module of this test region serves the policy ARN, so each attempt is recorded as a failed action.
  const std::string policy =
      "arn:aws:autoscaling:us-west-2:123456789012:scalingPolicy:0f0e-1:autoScalingGroupName/web:policyName/out";
  MustCall("PutMetricAlarm", {{"AlarmName", "scale"},
                              {"MetricName", "Load"},
                              {"Namespace", "App"},
                              {"Statistic", "Average"},
                              {"Period", "60"},
                              {"EvaluationPeriods", "1"},
                              {"Threshold", "50"},
                              {"ComparisonOperator", "GreaterThanThreshold"},
                              {"TreatMissingData", "breaching"},
                              {"AlarmActions.member.1", policy},
                              {"AlarmActions.member.2", "arn:aws:sns:us-west-2:123456789012:once"}});
  auto actions = [&] {
    return MustCall("DescribeAlarmHistory", {{"AlarmName", "scale"}, {"HistoryItemType", "Action"}})
        ["AlarmHistoryItems"].size();
  };
  region_->Tick(clock_.NowMillis());
  EXPECT_EQ(Alarm("scale")["StateValue"], "ALARM");
  EXPECT_EQ(actions(), 2u);  // the policy and the topic
  clock_.Advance(30'000);
  region_->Tick(clock_.NowMillis());
  EXPECT_EQ(actions(), 2u);
  clock_.Advance(30'000);
  region_->Tick(clock_.NowMillis());
  EXPECT_EQ(actions(), 3u);  // a minute on: the policy again, not the topic
  clock_.Advance(60'000);
  region_->Tick(clock_.NowMillis());
  EXPECT_EQ(actions(), 4u);
  MustCall("DisableAlarmActions", {{"AlarmNames.member.1", "scale"}});
  clock_.Advance(60'000);
  region_->Tick(clock_.NowMillis());
  EXPECT_EQ(actions(), 4u);
}

TEST_F(CloudWatchServiceTest, Ec2TerminateActionTerminatesTheAlarmsInstance) {
  std::string id;
  {
    std::lock_guard lock(mu_);
    std::vector<StoreWrite> writes;
    InstanceLaunch launch;
    launch.image_id = "ami-0f1e2d3c4b5a69788";
    launch.instance_type = "t3.micro";
    launch.availability_zone = "us-west-2a";
    auto inst = NewInstance(ctx_, launch, &writes);
    ASSERT_TRUE(inst.ok()) << inst.status().ToString();
    id = (*inst)["InstanceId"].get<std::string>();
    ASSERT_TRUE(store_->Commit(writes).ok());
  }
  FormParams p = SeedAlarm();
  p["AlarmName"] = "kill-it";
  p["Dimensions.member.1.Value"] = id;
  p["AlarmActions.member.1"] = "arn:aws:automate:us-west-2:ec2:terminate";
  p["OKActions.member.1"] = "arn:aws:automate:us-west-2:ec2:recover";
  MustCall("PutMetricAlarm", p);
  MustCall("SetAlarmState", {{"AlarmName", "kill-it"}, {"StateValue", "ALARM"}, {"StateReason", "test"}});
  EXPECT_EQ((*store_->Get(kind::kInstance, id))["DesiredState"], "terminated");
  EXPECT_EQ((*store_->Get(kind::kInstance, id))["StateTransitionReason"], "Terminated by CloudWatch alarm kill-it");
  MustCall("SetAlarmState", {{"AlarmName", "kill-it"}, {"StateValue", "OK"}, {"StateReason", "test"}});
  Json items = MustCall("DescribeAlarmHistory", {{"AlarmName", "kill-it"}, {"HistoryItemType", "Action"},
                                                 {"ScanBy", "TimestampAscending"}})["AlarmHistoryItems"];
  ASSERT_EQ(items.size(), 2u);
  EXPECT_EQ(items[0]["HistorySummary"], "Successfully executed action arn:aws:automate:us-west-2:ec2:terminate");
  EXPECT_EQ(items[1]["HistorySummary"].get<std::string>().rfind(
                "Failed to execute action arn:aws:automate:us-west-2:ec2:recover. Received error: \"EC2 action recover "
                "is not supported",
                0),
            0u);
}

TEST_F(CloudWatchServiceTest, SetAlarmStateEnableDisableDelete) {
  MustCall("PutMetricAlarm", SeedAlarm());
  auto missing = Call("SetAlarmState", {{"AlarmName", "nope"}, {"StateValue", "OK"}, {"StateReason", "x"}});
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), "ResourceNotFound");
  EXPECT_EQ(missing.status().http_status(), 404);
  EXPECT_EQ(missing.status().message(), "Alarm nope not found");
  MustCall("DisableAlarmActions", {{"AlarmNames.member.1", "HighCPUUsage"}});
  EXPECT_EQ(Alarm("HighCPUUsage")["ActionsEnabled"], false);
  MustCall("SetAlarmState", {{"AlarmName", "HighCPUUsage"}, {"StateValue", "ALARM"}, {"StateReason", "testing"}});
  Json a = Alarm("HighCPUUsage");
  EXPECT_EQ(a["StateValue"], "ALARM");
  EXPECT_EQ(a["StateReason"], "testing");
  // Actions disabled: nothing ran.
  EXPECT_EQ(MustCall("DescribeAlarmHistory", {{"HistoryItemType", "Action"}})["AlarmHistoryItems"].size(), 0u);
  MustCall("EnableAlarmActions", {{"AlarmNames.member.1", "HighCPUUsage"}});
  MustCall("SetAlarmState", {{"AlarmName", "HighCPUUsage"}, {"StateValue", "OK"}, {"StateReason", "t"}});
  MustCall("SetAlarmState", {{"AlarmName", "HighCPUUsage"}, {"StateValue", "ALARM"}, {"StateReason", "t"}});
  EXPECT_EQ(MustCall("DescribeAlarmHistory", {{"HistoryItemType", "Action"}})["AlarmHistoryItems"].size(), 1u);
  // The next evaluation overrides the state set by hand (no data: INSUFFICIENT_DATA).
  clock_.Advance(60'000);
  region_->Tick(clock_.NowMillis());
  EXPECT_EQ(Alarm("HighCPUUsage")["StateValue"], "INSUFFICIENT_DATA");

  auto ghost = Call("DeleteAlarms", {{"AlarmNames.member.1", "HighCPUUsage"}, {"AlarmNames.member.2", "ghost"}});
  ASSERT_FALSE(ghost.ok());
  EXPECT_EQ(ghost.status().code(), "ResourceNotFound");
  EXPECT_EQ(ghost.status().message(), "The following alarms were not found: [ghost]");
  EXPECT_FALSE(Alarm("HighCPUUsage").is_null());
  MustCall("DeleteAlarms", {{"AlarmNames.member.1", "HighCPUUsage"}});
  EXPECT_TRUE(Alarm("HighCPUUsage").is_null());
}

TEST_F(CloudWatchServiceTest, DescribeAlarmsFiltersAndPages) {
  for (int i = 0; i < 7; ++i) {
    FormParams p = SeedAlarm();
    p["AlarmName"] = "a" + std::to_string(i);
    MustCall("PutMetricAlarm", p);
  }
  Json page1 = MustCall("DescribeAlarms", {{"MaxRecords", "3"}});
  ASSERT_EQ(page1["MetricAlarms"].size(), 3u);
  ASSERT_TRUE(page1.contains("NextToken"));
  Json page2 = MustCall("DescribeAlarms", {{"MaxRecords", "5"}, {"NextToken", page1["NextToken"]}});
  EXPECT_EQ(page2["MetricAlarms"].size(), 4u);
  EXPECT_FALSE(page2.contains("NextToken"));
  EXPECT_EQ(MustCall("DescribeAlarms", {{"AlarmNamePrefix", "a1"}})["MetricAlarms"].size(), 1u);
  EXPECT_EQ(MustCall("DescribeAlarms", {{"StateValue", "ALARM"}})["MetricAlarms"].size(), 0u);
  EXPECT_EQ(MustCall("DescribeAlarms", {{"ActionPrefix", "arn:aws:sns:"}})["MetricAlarms"].size(), 7u);
  Json for_metric = MustCall("DescribeAlarmsForMetric", {{"Namespace", "AWS/EC2"},
                                                          {"MetricName", "CPUUtilization"},
                                                          {"Dimensions.member.1.Name", "InstanceId"},
                                                          {"Dimensions.member.1.Value", "i-1234567890"}});
  EXPECT_EQ(for_metric["MetricAlarms"].size(), 7u);
  ExpectError(Call("DescribeAlarms", {{"NextToken", "garbage"}}), "InvalidNextToken",
              "The service cannot decode the NextToken: garbage");
}

TEST_F(CloudWatchServiceTest, Tags) {
  FormParams p = SeedAlarm();
  p["Tags.member.1.Key"] = "team";
  p["Tags.member.1.Value"] = "web";
  MustCall("PutMetricAlarm", p);
  const std::string arn = "arn:aws:cloudwatch:us-west-2:123456789012:alarm:HighCPUUsage";
  MustCall("TagResource", {{"ResourceARN", arn}, {"Tags.member.1.Key", "env"}, {"Tags.member.1.Value", "prod"}});
  Json tags = MustCall("ListTagsForResource", {{"ResourceARN", arn}})["Tags"];
  ASSERT_EQ(tags.size(), 2u);
  MustCall("UntagResource", {{"ResourceARN", arn}, {"TagKeys.member.1", "team"}});
  tags = MustCall("ListTagsForResource", {{"ResourceARN", arn}})["Tags"];
  ASSERT_EQ(tags.size(), 1u);
  EXPECT_EQ(tags[0]["Key"], "env");
  auto missing = Call("ListTagsForResource", {{"ResourceARN", arn + "x"}});
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), "ResourceNotFoundException");
}

TEST_F(CloudWatchServiceTest, GetMetricDataWithMath) {
  const int64_t t0 = clock_.NowMillis() - 300'000;
  for (int i = 0; i < 3; ++i) {
    Put("App", "A", 10 * (i + 1), t0 + i * 60'000);
    Put("App", "B", 1, t0 + i * 60'000);
  }
  auto stat = [](const std::string& n, const std::string& metric) {
    const std::string f = "MetricDataQueries.member." + n;
    return FormParams{{f + ".Id", metric == "A" ? "a" : "b"},
                      {f + ".MetricStat.Metric.Namespace", "App"},
                      {f + ".MetricStat.Metric.MetricName", metric},
                      {f + ".MetricStat.Period", "60"},
                      {f + ".MetricStat.Stat", "Sum"},
                      {f + ".ReturnData", "false"}};
  };
  FormParams p = {{"StartTime", IsoTimeMillis(t0)}, {"EndTime", IsoTimeMillis(t0 + 180'000)},
                  {"ScanBy", "TimestampAscending"},
                  {"MetricDataQueries.member.3.Id", "total"},
                  {"MetricDataQueries.member.3.Expression", "(a + b) * 2"},
                  {"MetricDataQueries.member.4.Id", "s"},
                  {"MetricDataQueries.member.4.Expression", "SUM([a, b])"},
                  {"MetricDataQueries.member.5.Id", "avg"},
                  {"MetricDataQueries.member.5.Expression", "AVG(a)"}};
  for (auto& kv : stat("1", "A")) p.insert(kv);
  for (auto& kv : stat("2", "B")) p.insert(kv);
  Json r = MustCall("GetMetricData", p);
  ASSERT_EQ(r["MetricDataResults"].size(), 3u);
  EXPECT_EQ(r["MetricDataResults"][0]["Id"], "total");
  EXPECT_EQ(r["MetricDataResults"][0]["Values"], Json::array({22.0, 42.0, 62.0}));
  EXPECT_EQ(r["MetricDataResults"][0]["Timestamps"][0], IsoTimeMillis(t0));
  EXPECT_EQ(r["MetricDataResults"][1]["Values"], Json::array({11.0, 21.0, 31.0}));
  EXPECT_EQ(r["MetricDataResults"][2]["Values"], Json::array({20.0, 20.0, 20.0}));
  p["MetricDataQueries.member.3.Expression"] = "a + nothere";
  ExpectError(Call("GetMetricData", p), "ValidationError",
              "Error in expression 'a + nothere': unknown id 'nothere' (at character 12).");
}

}  // namespace
}  // namespace autopipe

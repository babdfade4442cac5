// Scaling policies: the arithmetic (table-tested), step intervals, and PutScalingPolicy / DescribePolicies /
// ExecutePolicy / DeletePolicy and the alarm action through the real handlers and controllers, on a fake clock.
#include "autoscaling/policies.h"

#include <functional>
#include <string>

#include <gtest/gtest.h>

#include "autoscaling/groups.h"
#include "autoscaling/module.h"
#include "cloudwatch/cloudwatch_region.h"
#include "region/region_fixture.h"

namespace autopipe {
namespace {

constexpr char kGroup[] = "auto-pipeline-asg";
constexpr char kAtNext[] = "At 2023-11-14T22:13:21Z ";  // FakeClock's start + 1 s

TEST(ScalingPolicyArithmetic, AdjustmentTypes) {
  struct Case {
    const char* type;
    int adjustment, current;
    std::optional<int> min_magnitude;
    int want;
  };
  const Case cases[] = {
      {"ChangeInCapacity", 2, 5, std::nullopt, 7},
      {"ChangeInCapacity", -3, 5, std::nullopt, 2},
      {"ExactCapacity", 4, 9, std::nullopt, 4},
      {"PercentChangeInCapacity", 50, 5, std::nullopt, 7},    // +2.5 rounds down to 2
      {"PercentChangeInCapacity", 10, 5, std::nullopt, 6},    // +0.5 becomes 1
      {"PercentChangeInCapacity", -10, 5, std::nullopt, 4},   // -0.5 becomes -1
      {"PercentChangeInCapacity", -50, 5, std::nullopt, 3},   // -2.5 rounds towards zero: -2
      {"PercentChangeInCapacity", 200, 3, std::nullopt, 9},   // +6
      {"PercentChangeInCapacity", 10, 5, 3, 8},               // +1, at least 3
      {"PercentChangeInCapacity", -10, 5, 2, 3},              // -1, at least 2 in magnitude
      {"PercentChangeInCapacity", 50, 0, 2, 0},               // nothing to take a percentage of
  };
  for (const auto& c : cases) {
    EXPECT_EQ(AdjustedCapacity(c.type, c.adjustment, c.current, c.min_magnitude), c.want)
        << c.type << " " << c.adjustment << " from " << c.current;
  }
}

TEST(ScalingPolicyArithmetic, StepIntervalsAreInclusiveAwayFromTheThreshold) {
  // Threshold 70: [70, 80) +1, [80, inf) +3; below: (-inf, 70] -1.
  std::vector<StepAdjustment> steps = {{0.0, 10.0, 1}, {10.0, std::nullopt, 3}, {std::nullopt, 0.0, -1}};
  EXPECT_EQ(FindStep(steps, 70, 70)->adjustment, 1);
  EXPECT_EQ(FindStep(steps, 79.9, 70)->adjustment, 1);
  EXPECT_EQ(FindStep(steps, 80, 70)->adjustment, 3);
  EXPECT_EQ(FindStep(steps, 500, 70)->adjustment, 3);
  EXPECT_EQ(FindStep(steps, 69, 70)->adjustment, -1);
  EXPECT_TRUE(CheckSteps(steps).ok());
  EXPECT_FALSE(CheckSteps({{0.0, 10.0, 1}, {5.0, std::nullopt, 2}}).ok()) << "overlap";
  EXPECT_FALSE(CheckSteps({{0.0, 10.0, 1}, {20.0, std::nullopt, 2}}).ok()) << "gap";
  EXPECT_FALSE(CheckSteps({{std::nullopt, 0.0, 1}, {std::nullopt, 10.0, 2}}).ok()) << "two unbounded lower ends";
  EXPECT_FALSE(CheckSteps({}).ok());
}

class ScalingPolicyTest : public RegionFixture {
 protected:
  void SetUp() override {
    WireRegion({.auto_scaling = true, .load_balancing = false});
    MustCall("CreateLaunchConfiguration", {{"LaunchConfigurationName", "lc"},
                                           {"ImageId", "ami-0a1b2c3d4e5f60718"},
                                           {"InstanceType", "t3.micro"}});
    MustCall("CreateAutoScalingGroup", {{"AutoScalingGroupName", kGroup},
                                        {"MinSize", "1"},
                                        {"MaxSize", "6"},
                                        {"DesiredCapacity", "2"},
                                        {"DefaultCooldown", "120"},
                                        {"LaunchConfigurationName", "lc"},
                                        {"AvailabilityZones.member.1", "us-west-2a"}});
    Settle();
  }

  void Settle() {
    for (int i = 0; i < 20 && !Settled(); ++i) runner_->RunPass();
    ASSERT_TRUE(Settled());
  }
  bool Settled() {
    Json g = *store_->Get(kind::kAutoScalingGroup, kGroup);
    int in_service = 0;
    for (const auto& [id, m] : g["Instances"].items()) {
      if (m["LifecycleState"] != "InService") return false;
      ++in_service;
    }
    return in_service == g["DesiredCapacity"].get<int>();
  }
  int Desired() { return (*store_->Get(kind::kAutoScalingGroup, kGroup))["DesiredCapacity"]; }

  std::string PutSimple(const std::string& name, const std::string& type, int adjustment,
                        const FormParams& extra = {}) {
    FormParams p = {{"AutoScalingGroupName", kGroup},
                    {"PolicyName", name},
                    {"AdjustmentType", type},
                    {"ScalingAdjustment", std::to_string(adjustment)}};
    for (const auto& [k, v] : extra) p[k] = v;
    return MustCall("PutScalingPolicy", p)["PolicyARN"];
  }
};

TEST_F(ScalingPolicyTest, PutDescribeDeleteAndArn) {
  const std::string arn = PutSimple("scale-out", "ChangeInCapacity", 1, {{"Cooldown", "60"}});
  EXPECT_EQ(arn.rfind("arn:aws:autoscaling:us-west-2:123456789012:scalingPolicy:", 0), 0u);
  EXPECT_NE(arn.find(":autoScalingGroupName/auto-pipeline-asg:policyName/scale-out"), std::string::npos);
  EXPECT_EQ(PutSimple("scale-out", "ChangeInCapacity", 2), arn) << "a Put of the same name updates, same ARN";
  auto d = MustCall("DescribePolicies", {{"AutoScalingGroupName", kGroup}})["ScalingPolicies"];
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0]["PolicyType"], "SimpleScaling");
  EXPECT_EQ(d[0]["ScalingAdjustment"], 2);
  EXPECT_FALSE(d[0].contains("Cooldown")) << "the update replaced the whole policy";
  MustCall("DeletePolicy", {{"AutoScalingGroupName", kGroup}, {"PolicyName", "scale-out"}});
  EXPECT_TRUE(MustCall("DescribePolicies", {})["ScalingPolicies"].empty());
}

TEST_F(ScalingPolicyTest, PoliciesGoWithTheirGroup) {
  const std::string arn = PutSimple("out", "ChangeInCapacity", 1);
  MustCall("DeleteAutoScalingGroup", {{"AutoScalingGroupName", kGroup}, {"ForceDelete", "true"}});
  for (int i = 0; i < 20 && store_->Get(kind::kAutoScalingGroup, kGroup); ++i) runner_->RunPass();
  ASSERT_FALSE(store_->Get(kind::kAutoScalingGroup, kGroup));
  MustCall("CreateAutoScalingGroup", {{"AutoScalingGroupName", kGroup},
                                      {"MinSize", "1"},
                                      {"MaxSize", "6"},
                                      {"LaunchConfigurationName", "lc"},
                                      {"AvailabilityZones.member.1", "us-west-2a"}});
  EXPECT_TRUE(MustCall("DescribePolicies", {})["ScalingPolicies"].empty()) << "the old group's policy is gone";
  EXPECT_EQ(store_->Count(kind::kScalingPolicy), 0u) << "deleted with its group";
  EXPECT_FALSE(Call("ExecutePolicy", {{"PolicyName", arn}}).ok());
  AlarmStateChange c;
  c.alarm_name = "a";
  c.new_state = "ALARM";
  EXPECT_EQ(AutoScalingModule().alarm_action_targets[0].run(&ctx_, arn, c).code(), "ResourceNotFound");
  EXPECT_NE(PutSimple("out", "ChangeInCapacity", 1), arn) << "a new policy for the new group";
  EXPECT_EQ(store_->Count(kind::kScalingPolicy), 1u);
}

TEST_F(ScalingPolicyTest, Validation) {
  auto base = FormParams{{"AutoScalingGroupName", kGroup}, {"PolicyName", "p"}};
  auto with = [&](FormParams extra) {
    FormParams p = base;
    for (const auto& [k, v] : extra) p[k] = v;
    return Call("PutScalingPolicy", p);
  };
  EXPECT_FALSE(with({{"AdjustmentType", "ChangeInCapacity"}}).ok()) << "no ScalingAdjustment";
  EXPECT_FALSE(with({{"AdjustmentType", "Sideways"}, {"ScalingAdjustment", "1"}}).ok());
  EXPECT_FALSE(with({{"AdjustmentType", "ChangeInCapacity"}, {"ScalingAdjustment", "1"},
                     {"MinAdjustmentMagnitude", "2"}}).ok())
      << "MinAdjustmentMagnitude only with PercentChangeInCapacity";
  EXPECT_FALSE(with({{"PolicyType", "StepScaling"}, {"AdjustmentType", "ChangeInCapacity"}}).ok()) << "no steps";
  EXPECT_FALSE(with({{"PolicyType", "StepScaling"}, {"AdjustmentType", "ChangeInCapacity"},
                     {"StepAdjustments.member.1.MetricIntervalLowerBound", "0"},
                     {"StepAdjustments.member.1.MetricIntervalUpperBound", "10"},
                     {"StepAdjustments.member.1.ScalingAdjustment", "1"},
                     {"StepAdjustments.member.2.MetricIntervalLowerBound", "20"},
                     {"StepAdjustments.member.2.ScalingAdjustment", "2"}}).ok())
      << "a gap between steps";
  auto missing = Call("PutScalingPolicy", {{"AutoScalingGroupName", "nope"}, {"PolicyName", "p"},
                                           {"AdjustmentType", "ChangeInCapacity"}, {"ScalingAdjustment", "1"}});
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), "ValidationError");
  EXPECT_TRUE(MustCall("DescribePolicies", {})["ScalingPolicies"].empty()) << "nothing was written";
}

TEST_F(ScalingPolicyTest, ExecutePolicyChangesDesiredCapacityWithAwsCauseAndClamps) {
  PutSimple("out", "ChangeInCapacity", 3);
  clock_.Advance(1000);  // the policy's activities are the newest
  MustCall("ExecutePolicy", {{"AutoScalingGroupName", kGroup}, {"PolicyName", "out"}});
  EXPECT_EQ(Desired(), 5);
  Settle();
  auto acts = MustCall("DescribeScalingActivities", {{"AutoScalingGroupName", kGroup}})["Activities"];
  EXPECT_EQ(acts[0]["Cause"].get<std::string>().rfind(
                std::string(kAtNext) + "a user request executed policy out changing the desired capacity from 2 to "
                                       "5.  " + kAtNext + "an instance was started",
                0),
            0u)
      << acts[0]["Cause"];
  MustCall("ExecutePolicy", {{"AutoScalingGroupName", kGroup}, {"PolicyName", "out"}});
  EXPECT_EQ(Desired(), 6) << "clamped to MaxSize";
}

TEST_F(ScalingPolicyTest, CooldownHonouredUntilActivitiesEndPlusCooldown) {
  PutSimple("out", "ChangeInCapacity", 1, {{"Cooldown", "60"}});
  FormParams honour = {{"AutoScalingGroupName", kGroup}, {"PolicyName", "out"}, {"HonorCooldown", "true"}};
  MustCall("ExecutePolicy", honour);
  EXPECT_EQ(Desired(), 3);
  auto busy = Call("ExecutePolicy", honour);
  ASSERT_FALSE(busy.ok());
  EXPECT_EQ(busy.status().code(), "ScalingActivityInProgress");
  Settle();  // the launch activity ends now
  clock_.Advance(59'000);
  EXPECT_EQ(Call("ExecutePolicy", honour).status().code(), "ScalingActivityInProgress");
  // Without HonorCooldown the policy runs anyway.
  MustCall("ExecutePolicy", {{"AutoScalingGroupName", kGroup}, {"PolicyName", "out"}});
  EXPECT_EQ(Desired(), 4);
  Settle();
  // SetDesiredCapacity with HonorCooldown waits for the same cooldown; without it, it does not.
  EXPECT_EQ(Call("SetDesiredCapacity", {{"AutoScalingGroupName", kGroup}, {"DesiredCapacity", "2"},
                                        {"HonorCooldown", "true"}}).status().code(),
            "ScalingActivityInProgress");
  EXPECT_EQ(Desired(), 4);
  clock_.Advance(60'001);
  MustCall("ExecutePolicy", honour);
  EXPECT_EQ(Desired(), 5);
}

TEST_F(ScalingPolicyTest, StepPolicyFromAnAlarmCountsWarmingInstancesAsAdded) {
  std::string arn = MustCall("PutScalingPolicy",
                             {{"AutoScalingGroupName", kGroup},
                              {"PolicyName", "steps"},
                              {"PolicyType", "StepScaling"},
                              {"AdjustmentType", "ChangeInCapacity"},
                              {"EstimatedInstanceWarmup", "300"},
                              {"StepAdjustments.member.1.MetricIntervalLowerBound", "0"},
                              {"StepAdjustments.member.1.MetricIntervalUpperBound", "20"},
                              {"StepAdjustments.member.1.ScalingAdjustment", "1"},
                              {"StepAdjustments.member.2.MetricIntervalLowerBound", "20"},
                              {"StepAdjustments.member.2.ScalingAdjustment", "3"}})["PolicyARN"];
  clock_.Advance(301'000);  // the first two members have warmed up
  AlarmStateChange c;
  c.alarm_name = "cpu-high";
  c.old_state = "OK";
  c.new_state = "ALARM";
  c.reason_data = R"({"version":"1.0","statistic":"Average","period":60,"recentDatapoints":[85.0,95.0],"threshold":70.0})";
  const auto targets = AutoScalingModule().alarm_action_targets;
  ASSERT_EQ(targets.size(), 1u);
  EXPECT_EQ(targets[0].arn_prefix, "arn:aws:autoscaling:");
  ASSERT_TRUE(targets[0].run(&ctx_, arn, c).ok());
  EXPECT_EQ(Desired(), 5) << "average 90 is 20 over the threshold: +3";
  auto g = *store_->Get(kind::kAutoScalingGroup, kGroup);
  EXPECT_EQ(g["CapacityCause"].get<std::string>(),
            "At 2023-11-14T22:18:21Z a monitor alarm cpu-high in state ALARM triggered policy steps changing the "
            "desired capacity from 2 to 5.");
  Settle();
  // The alarm repeats a minute later with the same breach: the 3 still warming count as added.
  clock_.Advance(60'000);
  ASSERT_TRUE(targets[0].run(&ctx_, arn, c).ok());
  EXPECT_EQ(Desired(), 5);
  EXPECT_EQ(targets[0].run(&ctx_, arn + "x", c).code(), "ResourceNotFound");
}

TEST_F(ScalingPolicyTest, TargetTrackingOwnsItsAlarmsAndScalesInProportion) {
  auto out = MustCall("PutScalingPolicy",
                      {{"AutoScalingGroupName", kGroup},
                       {"PolicyName", "cpu50"},
                       {"PolicyType", "TargetTrackingScaling"},
                       {"EstimatedInstanceWarmup", "60"},
                       {"TargetTrackingConfiguration.PredefinedMetricSpecification.PredefinedMetricType",
                        "ASGAverageCPUUtilization"},
                       {"TargetTrackingConfiguration.TargetValue", "50"}});
  const std::string arn = out["PolicyARN"];
  ASSERT_EQ(out["Alarms"].size(), 2u);
  const std::string high = out["Alarms"][0]["AlarmName"], low = out["Alarms"][1]["AlarmName"];
  EXPECT_EQ(high.rfind("TargetTracking-auto-pipeline-asg-AlarmHigh-", 0), 0u) << high;
  EXPECT_EQ(low.rfind("TargetTracking-auto-pipeline-asg-AlarmLow-", 0), 0u) << low;
  auto h = store_->Get(cloudwatch::kind::kAlarm, high), l = store_->Get(cloudwatch::kind::kAlarm, low);
  ASSERT_TRUE(h && l);
  EXPECT_EQ((*h)["EvaluationPeriods"], 3);
  EXPECT_EQ((*h)["Period"], 60);
  EXPECT_EQ((*h)["Threshold"], 50.0);
  EXPECT_EQ((*h)["ComparisonOperator"], "GreaterThanThreshold");
  EXPECT_EQ((*h)["AlarmActions"], Json::array({arn}));
  EXPECT_EQ((*l)["EvaluationPeriods"], 15);
  EXPECT_EQ((*l)["Threshold"], 45.0);
  EXPECT_EQ((*l)["ComparisonOperator"], "LessThanThreshold");
  auto d = MustCall("DescribePolicies", {{"AutoScalingGroupName", kGroup}})["ScalingPolicies"][0];
  EXPECT_EQ(d["TargetTrackingConfiguration"]["TargetValue"], 50.0);
  EXPECT_EQ(d["Alarms"].size(), 2u);
  EXPECT_FALSE(Call("ExecutePolicy", {{"PolicyName", arn}}).ok()) << "target tracking is not executed by hand";

  const auto run = AutoScalingModule().alarm_action_targets[0].run;
  AlarmStateChange c;
  c.old_state = "OK";
  c.new_state = "ALARM";
  c.alarm_name = high;
  c.reason_data = R"({"recentDatapoints":[80.0,90.0,100.0],"threshold":50.0})";
  ASSERT_TRUE(run(&ctx_, arn, c).ok());
  EXPECT_EQ(Desired(), 2) << "both members still warming up: they count as already added";
  clock_.Advance(61'000);
  ASSERT_TRUE(run(&ctx_, arn, c).ok());
  EXPECT_EQ(Desired(), 4) << "ceil(2 x 90 / 50)";
  Settle();
  ASSERT_TRUE(run(&ctx_, arn, c).ok());
  EXPECT_EQ(Desired(), 4) << "the new two warm up: the same breach adds nothing";
  c.new_state = "OK";
  ASSERT_TRUE(run(&ctx_, arn, c).ok());
  EXPECT_EQ(Desired(), 4) << "OK runs nothing";

  // Scale in: not while members warm up, then one at a time (a tenth of 4, at least one) towards the proportion.
  c.new_state = "ALARM";
  c.alarm_name = low;
  c.reason_data = R"({"recentDatapoints":[10.0],"threshold":45.0})";
  ASSERT_TRUE(run(&ctx_, arn, c).ok());
  EXPECT_EQ(Desired(), 4);
  clock_.Advance(61'000);
  ASSERT_TRUE(run(&ctx_, arn, c).ok());
  EXPECT_EQ(Desired(), 3);
  Settle();
  ASSERT_TRUE(run(&ctx_, arn, c).ok());
  EXPECT_EQ(Desired(), 2);
  Settle();
  ASSERT_TRUE(run(&ctx_, arn, c).ok());
  EXPECT_EQ(Desired(), 1) << "ceil(2 x 10 / 50) = 1, the group's minimum";

  // The alarms are the policy's: an update makes new ones, a delete removes them.
  auto again = MustCall("PutScalingPolicy",
                        {{"AutoScalingGroupName", kGroup},
                         {"PolicyName", "cpu50"},
                         {"PolicyType", "TargetTrackingScaling"},
                         {"TargetTrackingConfiguration.PredefinedMetricSpecification.PredefinedMetricType",
                          "ASGAverageCPUUtilization"},
                         {"TargetTrackingConfiguration.TargetValue", "40"},
                         {"TargetTrackingConfiguration.DisableScaleIn", "true"}});
  EXPECT_EQ(again["PolicyARN"], arn);
  ASSERT_EQ(again["Alarms"].size(), 1u) << "no AlarmLow when scale-in is disabled";
  EXPECT_FALSE(store_->Get(cloudwatch::kind::kAlarm, high));
  EXPECT_FALSE(store_->Get(cloudwatch::kind::kAlarm, low));
  EXPECT_EQ(store_->Count(cloudwatch::kind::kAlarm), 1u);
  MustCall("DeletePolicy", {{"AutoScalingGroupName", kGroup}, {"PolicyName", "cpu50"}});
  EXPECT_EQ(store_->Count(cloudwatch::kind::kAlarm), 0u);

  for (const FormParams& bad : {
           FormParams{{"TargetTrackingConfiguration.TargetValue", "50"}},  // no metric
           FormParams{{"TargetTrackingConfiguration.PredefinedMetricSpecification.PredefinedMetricType",
                       "ASGAverageCPUUtilization"}},  // no target
           FormParams{{"TargetTrackingConfiguration.PredefinedMetricSpecification.PredefinedMetricType",
                       "ALBRequestCountPerTarget"},
                      {"TargetTrackingConfiguration.TargetValue", "50"}},
           FormParams{{"TargetTrackingConfiguration.PredefinedMetricSpecification.PredefinedMetricType",
                       "ASGAverageCPUUtilization"},
                      {"TargetTrackingConfiguration.TargetValue", "50"},
                      {"AdjustmentType", "ChangeInCapacity"}}}) {
    FormParams p = bad;
    p["AutoScalingGroupName"] = kGroup;
    p["PolicyName"] = "bad";
    p["PolicyType"] = "TargetTrackingScaling";
    EXPECT_EQ(Call("PutScalingPolicy", p).status().code(), "ValidationError");
  }
  EXPECT_EQ(store_->Count(cloudwatch::kind::kAlarm), 0u);
}

// The real path on the fake clock: datapoints of the tracked metric in the metric store, CloudWatch's evaluation
// of the AlarmLow the policy owns (15 x 60 s below 90% of the target), its action, and the group's scale-in.
// AlarmLow must not fire before fifteen full low minutes, and must fire then.
TEST_F(ScalingPolicyTest, TargetTrackingAlarmLowFiresAfterFifteenLowMinutesAndScalesIn) {
  MustCall("SetDesiredCapacity", {{"AutoScalingGroupName", kGroup}, {"DesiredCapacity", "4"}});
  Settle();
  auto out = MustCall("PutScalingPolicy",
                      {{"AutoScalingGroupName", kGroup},
                       {"PolicyName", "cpu50"},
                       {"PolicyType", "TargetTrackingScaling"},
                       {"EstimatedInstanceWarmup", "60"},
                       {"TargetTrackingConfiguration.PredefinedMetricSpecification.PredefinedMetricType",
                        "ASGAverageCPUUtilization"},
                       {"TargetTrackingConfiguration.TargetValue", "50"}});
  const std::string low = out["Alarms"][1]["AlarmName"];
  ASSERT_NE(low.find("-AlarmLow-"), std::string::npos);
  clock_.Advance(120'000);  // every member is past its warm-up

  // A CloudWatch of its own over an in-memory metric store: only the datapoints written here are evaluated
  // (Tick would also collect the fake instances' CPU from /proc).
  auto metrics = cloudwatch::MetricStore::Open(":memory:");
  ASSERT_TRUE(metrics.ok());
  cloudwatch::CloudWatchRegion cw(&ctx_, std::move(*metrics));
  cloudwatch::MetricKey key{"AWS/EC2", "CPUUtilization", {{"AutoScalingGroupName", kGroup}}};
  key.Canonicalize();
  auto state = [&] { return (*store_->Get(cloudwatch::kind::kAlarm, low))["StateValue"].get<std::string>(); };

  // Start at a minute boundary, then one low datapoint (10% < 45%) every 10 s, evaluating every 10 s.
  clock_.Advance(60'000 - clock_.NowMillis() % 60'000);
  const int64_t first_point = clock_.NowMillis();
  int64_t alarm_at = 0;
  for (int step = 0; step < 6 * 20 && alarm_at == 0; ++step) {
    cloudwatch::Datapoint dp;
    dp.timestamp_millis = clock_.NowMillis();
    dp.agg = {1, 10.0, 10.0, 10.0};
    ASSERT_TRUE(cw.metrics().Put({{key, dp}}, {"Percent"}).ok());
    clock_.Advance(10'000);
    cw.EvaluateDue(clock_.NowMillis());
    cw.RunPendingActions();
    if (state() == "ALARM") alarm_at = clock_.NowMillis();
    if (alarm_at == 0) ASSERT_EQ(Desired(), 4) << "no scale-in before AlarmLow fires";
  }
  ASSERT_NE(alarm_at, 0) << "AlarmLow never fired in 20 low minutes";
  const double minutes = (alarm_at - first_point) / 60'000.0;
  EXPECT_GE(minutes, 15.0) << "AlarmLow fired before fifteen full low minutes";
  EXPECT_LE(minutes, 16.0) << "evaluated once a minute: at most a minute after the fifteenth closed";
  auto alarm = *store_->Get(cloudwatch::kind::kAlarm, low);
  EXPECT_EQ(alarm["StateReason"].get<std::string>().rfind("Threshold Crossed: 15 out of the last 15 datapoints", 0),
            0u)
      << alarm["StateReason"];
  EXPECT_EQ(Desired(), 3) << "conservative: one member (a tenth of 4, at least one) per run";
  auto acts = MustCall("DescribeScalingActivities", {{"AutoScalingGroupName", kGroup}});
  (void)acts;  // the activity is written by the group controller's next pass
  Settle();
  acts = MustCall("DescribeScalingActivities", {{"AutoScalingGroupName", kGroup}});
  bool cause_found = false;
  for (const auto& a : acts["Activities"]) {
    cause_found |= a["Cause"].get<std::string>().find("a monitor alarm " + low +
                                                      " in state ALARM triggered policy cpu50 changing the desired "
                                                      "capacity from 4 to 3.") != std::string::npos;
  }
  EXPECT_TRUE(cause_found) << acts.dump();
}

TEST_F(ScalingPolicyTest, TargetTrackingAlarmsGoWithTheGroup) {
  MustCall("PutScalingPolicy", {{"AutoScalingGroupName", kGroup},
                                {"PolicyName", "cpu50"},
                                {"PolicyType", "TargetTrackingScaling"},
                                {"TargetTrackingConfiguration.PredefinedMetricSpecification.PredefinedMetricType",
                                 "ASGAverageNetworkIn"},
                                {"TargetTrackingConfiguration.TargetValue", "1000000"}});
  EXPECT_EQ(store_->Count(cloudwatch::kind::kAlarm), 2u);
  MustCall("DeleteAutoScalingGroup", {{"AutoScalingGroupName", kGroup}, {"ForceDelete", "true"}});
  for (int i = 0; i < 20 && store_->Get(kind::kAutoScalingGroup, kGroup); ++i) runner_->RunPass();
  ASSERT_FALSE(store_->Get(kind::kAutoScalingGroup, kGroup));
  EXPECT_EQ(store_->Count(cloudwatch::kind::kAlarm), 0u);
  EXPECT_EQ(store_->Count(kind::kScalingPolicy), 0u);
}

}  // namespace
}  // namespace autopipe

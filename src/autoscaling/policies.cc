#include "autoscaling/policies.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <memory>
#include <set>

#include "api/page_token.h"
#include "api/protocol.h"
#include "autoscaling/groups.h"
#include "cloudwatch/cloudwatch_region.h"
#include "common/ids.h"

namespace autopipe {
namespace {

constexpr int64_t kMaxPolicyValue = 100000;

Status Validation(const std::string& m) { return Status::Validation(m); }

Status NullError(const std::string& field) {
  return Validation("1 validation error detected: Value null at '" + field +
                    "' failed to satisfy constraint: Member must not be null");
}

Result<std::optional<double>> Double(const FormParams& f, const std::string& key, const std::string& field) {
  auto it = f.find(key);
  if (it == f.end()) return std::optional<double>();
  char* end = nullptr;
  double v = std::strtod(it->second.c_str(), &end);
  if (it->second.empty() || *end != '\0' || !std::isfinite(v)) {
    return Validation("Value '" + it->second + "' at '" + field + "' is not a valid number");
  }
  return std::optional<double>(v);
}

Json StepsJson(const std::vector<StepAdjustment>& steps) {
  Json out = Json::array();
  for (const auto& s : steps) {
    Json j = Json::object();
    if (s.lower) j["MetricIntervalLowerBound"] = *s.lower;
    if (s.upper) j["MetricIntervalUpperBound"] = *s.upper;
    j["ScalingAdjustment"] = s.adjustment;
    out.push_back(j);
  }
  return out;
}

std::vector<StepAdjustment> StepsOf(const Json& policy) {
  std::vector<StepAdjustment> steps;
  for (const auto& j : policy.value("StepAdjustments", Json::array())) {
    StepAdjustment s;
    if (j.contains("MetricIntervalLowerBound")) s.lower = j["MetricIntervalLowerBound"].get<double>();
    if (j.contains("MetricIntervalUpperBound")) s.upper = j["MetricIntervalUpperBound"].get<double>();
    s.adjustment = j["ScalingAdjustment"];
    steps.push_back(s);
  }
  return steps;
}

// ---- target tracking ------------------------------------------------------------------------------------------

// What a predefined metric type tracks: the AWS/EC2 metric averaged over the group.
std::optional<std::string> TrackedMetric(const std::string& predefined) {
  if (predefined == "ASGAverageCPUUtilization") return "CPUUtilization";
  if (predefined == "ASGAverageNetworkIn") return "NetworkIn";
  if (predefined == "ASGAverageNetworkOut") return "NetworkOut";
  return std::nullopt;
}

// One of the two alarms Auto Scaling owns for a target tracking policy, as the cloudwatch-alarm document
// PutMetricAlarm would write (cloudwatch/cloudwatch_region.h), in DescribeAlarms' member order.
Json TrackingAlarmDoc(const RegionContext& ctx, const Json& policy, bool high, const std::string& alarm_name,
                      int64_t now) {
  const Json& tt = policy["TargetTrackingConfiguration"];
  const double target = tt["TargetValue"];
  Json a = Json::object();
  a["AlarmName"] = alarm_name;
  a["AlarmArn"] = ctx.Arn("cloudwatch", "alarm:" + alarm_name);
  a["AlarmDescription"] = "DO NOT EDIT OR DELETE. For TargetTrackingScaling policy " +
                          policy["PolicyARN"].get<std::string>() + ".";
  a["AlarmConfigurationUpdatedTimestamp"] = now;
  a["ActionsEnabled"] = true;
  a["OKActions"] = Json::array();
  a["AlarmActions"] = Json::array({policy["PolicyARN"]});
  a["InsufficientDataActions"] = Json::array();
  a["StateValue"] = "INSUFFICIENT_DATA";
  a["StateReason"] = "Unchecked: Initial alarm creation";
  a["StateUpdatedTimestamp"] = now;
  a["MetricName"] = *TrackedMetric(tt["PredefinedMetricSpecification"]["PredefinedMetricType"]);
  a["Namespace"] = "AWS/EC2";
  a["Statistic"] = "Average";
  a["Dimensions"] = Json::array({{{"Name", "AutoScalingGroupName"}, {"Value", policy["AutoScalingGroupName"]}}});
  a["Period"] = 60;
  // AWS's fixed shapes: scale out after 3 minutes above the target, in after 15 minutes below 90% of it.
  a["EvaluationPeriods"] = high ? 3 : 15;
  a["DatapointsToAlarm"] = high ? 3 : 15;
  a["Threshold"] = high ? target : target * 0.9;
  a["ComparisonOperator"] = high ? "GreaterThanThreshold" : "LessThanThreshold";
  a["StateTransitionedTimestamp"] = now;
  a["Tags"] = Json::array();
  return a;
}

// The writes that create a target tracking policy's alarms (named in policy["Alarms"]) with their history.
void TrackingAlarmWrites(const RegionContext& ctx, const Json& policy, int64_t now, std::vector<StoreWrite>* w) {
  for (const auto& ref : policy["Alarms"]) {
    const std::string name = ref["AlarmName"];
    const bool high = name.find("-AlarmHigh-") != std::string::npos;
    Json doc = TrackingAlarmDoc(ctx, policy, high, name, now);
    w->push_back(cloudwatch::AppendHistory(
        ctx, name,
        {cloudwatch::HistoryItem(name, now, "ConfigurationUpdate", "Alarm \"" + name + "\" created",
                                 Json{{"version", "1.0"}, {"type", "Create"},
                                      {"updatedAlarm", ExpandParts(cloudwatch::RenderAlarm(doc))}})},
        now));
    w->push_back({cloudwatch::kind::kAlarm, name, std::move(doc)});
  }
}

// The writes that delete a target tracking policy's alarms (their history stays, as CloudWatch keeps it).
void DeleteTrackingAlarmWrites(const RegionContext& ctx, const Json& policy, std::vector<StoreWrite>* w) {
  for (const auto& ref : policy.value("Alarms", Json::array())) {
    const std::string name = ref["AlarmName"];
    if (ctx.store->Get(cloudwatch::kind::kAlarm, name)) w->push_back({cloudwatch::kind::kAlarm, name, std::nullopt});
  }
}

}  // namespace

bool GroupInCooldown(const RegionContext& ctx, const Json& group) {
  for (const auto& [id, m] : group["Instances"].items()) {
    if (m["LifecycleState"] == lifecycle::kPending || m["LifecycleState"] == lifecycle::kTerminating) return true;
  }
  if (!group.contains("PolicyCooldown")) return false;
  const int64_t since = group["PolicyCooldown"]["Since"];
  int64_t end = since;
  for (const auto& a : ctx.store->List(kind::kActivity)) {
    if ((*a)["AutoScalingGroupName"] != group["AutoScalingGroupName"]) continue;
    if ((*a)["StartTime"].get<int64_t>() < since) continue;
    if ((*a)["StatusCode"] == "InProgress") return true;
    if ((*a)["EndTime"].is_number()) end = std::max(end, (*a)["EndTime"].get<int64_t>());
  }
  return ctx.clock->NowMillis() < end + 1000 * group["PolicyCooldown"]["Seconds"].get<int64_t>();
}

namespace {

// Members launched less than `warmup_seconds` ago (or still Pending) count as warming up.
int WarmedCapacity(const RegionContext& ctx, const Json& group, int64_t warmup_seconds, bool* warming) {
  const int64_t now = ctx.clock->NowMillis();
  int warmed = 0;
  *warming = false;
  for (const auto& [id, m] : group["Instances"].items()) {
    if (m["LifecycleState"] == lifecycle::kTerminating) continue;
    if (m["LifecycleState"] == lifecycle::kPending || now - m["LaunchedAt"].get<int64_t>() < warmup_seconds * 1000) {
      *warming = true;
    } else {
      ++warmed;
    }
  }
  return warmed;
}

}  // namespace

namespace {

// A policy belongs to the group it was made for, not to a later group of the same name (AWS deletes a group's
// policies with it; here they stay behind, inert, until a Put of the same name replaces them).
bool PolicyOfLiveGroup(const RegionContext& ctx, const Json& policy) {
  auto g = ctx.store->Get(kind::kAutoScalingGroup, policy["AutoScalingGroupName"]);
  return g && (*g)["AutoScalingGroupARN"] == policy.value("AutoScalingGroupARN", Json());
}

}  // namespace

int AdjustedCapacity(const std::string& type, int adjustment, int current, std::optional<int> min_magnitude) {
  if (type == "ExactCapacity") return adjustment;
  if (type == "PercentChangeInCapacity") {
    const double raw = current * static_cast<double>(adjustment) / 100.0;
    int delta;
    if (raw > 1) {
      delta = static_cast<int>(std::floor(raw));
    } else if (raw > 0) {
      delta = 1;
    } else if (raw >= -1) {
      delta = raw < 0 ? -1 : 0;
    } else {
      delta = static_cast<int>(std::ceil(raw));
    }
    if (min_magnitude && delta != 0 && std::abs(delta) < *min_magnitude) delta = delta > 0 ? *min_magnitude : -*min_magnitude;
    return current + delta;
  }
  return current + adjustment;  // ChangeInCapacity
}

std::optional<StepAdjustment> FindStep(const std::vector<StepAdjustment>& steps, double metric, double threshold) {
  const double diff = metric - threshold;
  constexpr double kInf = std::numeric_limits<double>::infinity();
  for (const auto& s : steps) {
    const double lo = s.lower.value_or(-kInf), hi = s.upper.value_or(kInf);
    const bool in = diff >= 0 ? (lo <= diff && diff < hi) : (lo < diff && diff <= hi);
    if (in) return s;
  }
  return std::nullopt;
}

Status CheckSteps(std::vector<StepAdjustment> steps) {
  if (steps.empty()) return Validation("StepAdjustments must be specified for a StepScaling policy");
  int null_lower = 0, null_upper = 0;
  for (const auto& s : steps) {
    null_lower += !s.lower;
    null_upper += !s.upper;
    if (!s.lower && !s.upper && steps.size() > 1) {
      return Validation("Only one StepAdjustment may have both bounds unset");
    }
    if (s.lower && s.upper && *s.lower >= *s.upper) {
      return Validation("The upper bound of a step adjustment must be greater than its lower bound");
    }
  }
  if (null_lower > 1) return Validation("Only one StepAdjustment may have an unset MetricIntervalLowerBound");
  if (null_upper > 1) return Validation("Only one StepAdjustment may have an unset MetricIntervalUpperBound");
  constexpr double kInf = std::numeric_limits<double>::infinity();
  std::sort(steps.begin(), steps.end(), [&](const StepAdjustment& a, const StepAdjustment& b) {
    return a.lower.value_or(-kInf) < b.lower.value_or(-kInf);
  });
  for (size_t i = 1; i < steps.size(); ++i) {
    const double prev_hi = steps[i - 1].upper.value_or(kInf), lo = steps[i].lower.value_or(-kInf);
    if (prev_hi > lo) return Validation("Step adjustment intervals must not overlap");
    if (prev_hi < lo) return Validation("Step adjustment intervals must not leave gaps");
  }
  return Status::Ok();
}

std::string PolicyArn(const RegionContext& ctx, const std::string& uuid, const std::string& group,
                      const std::string& policy) {
  return ctx.Arn("autoscaling", "scalingPolicy:" + uuid + ":autoScalingGroupName/" + group + ":policyName/" + policy);
}

Status RunPolicy(RegionContext* ctx, const Json& policy, const PolicyTrigger& trigger) {
  const std::string group_name = policy["AutoScalingGroupName"], name = policy["PolicyName"];
  auto found = ctx->store->Get(kind::kAutoScalingGroup, group_name);
  if (!found) return Validation("AutoScalingGroup name not found - AutoScalingGroup " + group_name + " not found");
  Json g = *found;
  if (g.value("Deleting", false)) {
    return Status(400, "ScalingActivityInProgress", "AutoScalingGroup " + group_name + " is pending delete.");
  }
  const std::string type = policy["PolicyType"];
  const int old = g["DesiredCapacity"], min = g["MinSize"], max = g["MaxSize"];
  int want = old;
  if (type == "SimpleScaling") {
    if (trigger.honor_cooldown && GroupInCooldown(*ctx, g)) {
      return Status(400, "ScalingActivityInProgress",
                    "Policy " + name + " cannot run now: group " + group_name +
                        " has a scaling activity in progress or is in its cooldown period");
    }
    want = AdjustedCapacity(policy["AdjustmentType"], policy["ScalingAdjustment"], old,
                            policy.contains("MinAdjustmentMagnitude")
                                ? std::optional<int>(policy["MinAdjustmentMagnitude"].get<int>())
                                : std::nullopt);
  } else if (type == "StepScaling") {
    if (!trigger.metric_value || !trigger.breach_threshold) {
      return Validation("MetricValue and BreachThreshold are required to execute step scaling policy " + name);
    }
    auto step = FindStep(StepsOf(policy), *trigger.metric_value, *trigger.breach_threshold);
    if (!step) return Status::Ok();  // no step covers this breach: nothing to do
    const int64_t warmup = policy.contains("EstimatedInstanceWarmup")
                               ? policy["EstimatedInstanceWarmup"].get<int64_t>()
                               : g.value("DefaultInstanceWarmup", g["DefaultCooldown"].get<int64_t>());
    bool warming = false;
    const int warmed = WarmedCapacity(*ctx, g, warmup, &warming);
    const int target = AdjustedCapacity(policy["AdjustmentType"], step->adjustment, warmed,
                                        policy.contains("MinAdjustmentMagnitude")
                                            ? std::optional<int>(policy["MinAdjustmentMagnitude"].get<int>())
                                            : std::nullopt);
    if (target >= old) {
      want = target;  // members still warming up count as already added
    } else if (warming) {
      return Status::Ok();  // no scale-in until the warm-up ends
    } else {
      want = target;
    }
  } else if (type == "TargetTrackingScaling" && !trigger.alarm_name.empty()) {
    // Capacity in proportion to the metric: ceil(capacity x value / target), counting only members past their
    // warm-up (those warming count as already added). Out as soon as the high alarm fires; in conservatively:
    // not while a member warms up, and at most a tenth of the group (at least one) per run (the low alarm repeats
    // every minute while it holds).
    if (!trigger.metric_value) return Validation("alarm " + trigger.alarm_name + " gave no datapoints");
    const double target = policy["TargetTrackingConfiguration"]["TargetValue"];
    const int64_t warmup = policy.contains("EstimatedInstanceWarmup")
                               ? policy["EstimatedInstanceWarmup"].get<int64_t>()
                               : g.value("DefaultInstanceWarmup", g["DefaultCooldown"].get<int64_t>());
    bool warming = false;
    const int warmed = WarmedCapacity(*ctx, g, warmup, &warming);
    const int proportional = static_cast<int>(std::ceil(warmed * *trigger.metric_value / target - 1e-9));
    if (*trigger.metric_value > target) {
      want = std::max(old, proportional);
    } else if (*trigger.metric_value < target && !warming &&
               !policy["TargetTrackingConfiguration"].value("DisableScaleIn", false)) {
      want = std::max(proportional, old - std::max(1, old / 10));
      want = std::min(want, old);
    }
  } else {
    return Validation("Policy " + name + " of type " + type + " cannot be executed");
  }
  want = std::clamp(want, min, max);
  const int64_t now = ctx->clock->NowMillis();
  if (type == "SimpleScaling") {
    const int64_t seconds = policy.contains("Cooldown") ? policy["Cooldown"].get<int64_t>()
                                                        : g["DefaultCooldown"].get<int64_t>();
    g["PolicyCooldown"] = {{"Seconds", seconds}, {"Since", now}};
  }
  if (want == old) {
    if (type == "SimpleScaling") AP_RETURN_IF_ERROR(ctx->store->Commit({{kind::kAutoScalingGroup, group_name, g}}));
    return Status::Ok();
  }
  g["DesiredCapacity"] = want;
  const std::string change = " changing the desired capacity from " + std::to_string(old) + " to " +
                             std::to_string(want) + ".";
  g["CapacityCause"] = trigger.alarm_name.empty()
                           ? CauseAt(now) + "a user request executed policy " + name + change
                           : CauseAt(now) + "a monitor alarm " + trigger.alarm_name + " in state " +
                                 trigger.alarm_state + " triggered policy " + name + change;
  AP_RETURN_IF_ERROR(ctx->store->Commit({{kind::kAutoScalingGroup, group_name, g}}));
  if (ctx->wake) ctx->wake();
  return Status::Ok();
}

Status RunPolicyForAlarm(RegionContext* ctx, const std::string& policy_arn, const AlarmStateChange& change) {
  std::lock_guard lock(*ctx->mu);
  std::optional<Json> policy;
  for (const auto& p : ctx->store->List(kind::kScalingPolicy)) {
    if ((*p)["PolicyARN"] == policy_arn && PolicyOfLiveGroup(*ctx, *p)) policy = *p;
  }
  if (!policy) return Status(404, "ResourceNotFound", "No scaling policy " + policy_arn);
  PolicyTrigger t;
  t.alarm_name = change.alarm_name;
  t.alarm_state = change.new_state;
  t.honor_cooldown = true;
  const bool tracking = (*policy)["PolicyType"] == "TargetTrackingScaling";
  if (tracking && change.new_state != "ALARM") return Status::Ok();
  if ((*policy)["PolicyType"] == "StepScaling" || tracking) {
    Json data = Json::parse(change.reason_data, nullptr, false);
    std::vector<double> points;
    if (data.is_object() && data.contains("recentDatapoints") && data["recentDatapoints"].is_array()) {
      for (const auto& v : data["recentDatapoints"]) {
        if (v.is_number()) points.push_back(v.get<double>());
      }
    }
    if (data.is_object() && data.contains("threshold") && data["threshold"].is_number()) {
      t.breach_threshold = data["threshold"].get<double>();
    } else if (change.alarm.contains("Threshold") && change.alarm["Threshold"].is_number()) {
      t.breach_threshold = change.alarm["Threshold"].get<double>();
    }
    if (points.empty() || !t.breach_threshold) {
      return Status::Validation("alarm " + change.alarm_name + " gave no datapoints for step policy " +
                                (*policy)["PolicyName"].get<std::string>());
    }
    const std::string agg = tracking ? "Average" : policy->value("MetricAggregationType", "Average");
    double v = points.front();
    if (agg == "Minimum") {
      v = *std::min_element(points.begin(), points.end());
    } else if (agg == "Maximum") {
      v = *std::max_element(points.begin(), points.end());
    } else {
      double sum = 0;
      for (double x : points) sum += x;
      v = sum / points.size();
    }
    t.metric_value = v;
  }
  Status st = RunPolicy(ctx, *policy, t);
  // A cooldown is the normal answer to an alarm that repeats while the group is still scaling: not an error.
  if (st.code() == "ScalingActivityInProgress") return Status::Ok();
  return st;
}

void DeleteGroupPolicyWrites(const RegionContext& ctx, const Json& group, std::vector<StoreWrite>* writes) {
  for (const auto& p : ctx.store->List(kind::kScalingPolicy)) {
    if ((*p)["AutoScalingGroupName"] != group["AutoScalingGroupName"] ||
        p->value("AutoScalingGroupARN", Json()) != group["AutoScalingGroupARN"]) {
      continue;
    }
    writes->push_back({kind::kScalingPolicy, (*p)["Uuid"], std::nullopt});
    DeleteTrackingAlarmWrites(ctx, *p, writes);
  }
}

// ---- the API ----------------------------------------------------------------------------------------------------

namespace {

class PolicyService {
 public:
  explicit PolicyService(RegionContext* ctx) : ctx_(ctx) {}
  Result<Json> PutScalingPolicy(const Params& p);
  Result<Json> DescribePolicies(const Params& p);
  Result<Json> DeletePolicy(const Params& p);
  Result<Json> ExecutePolicy(const Params& p);

 private:
  Result<Json> PutTargetTracking(const Params& p, const std::string& group, const std::string& name);
  // The policy named by name or ARN (in `group` when given).
  Result<std::pair<std::string, Json>> Find(const std::optional<std::string>& group, const std::string& name_or_arn);
  RegionContext* ctx_;
};

Result<std::string> RequiredName(const Params& p, const std::string& key, const std::string& field) {
  auto v = p.Str(key);
  if (!v) return NullError(field);
  if (v->empty() || v->size() > 255) {
    return Validation("1 validation error detected: Value '" + *v + "' at '" + field +
                      "' failed to satisfy constraint: Member must have length less than or equal to 255 and "
                      "greater than or equal to 1");
  }
  return *v;
}

Result<std::optional<int64_t>> IntIn(const Params& p, const std::string& key, int64_t lo, int64_t hi) {
  AP_ASSIGN_OR_RETURN(auto v, p.Int(key));
  if (v && (*v < lo || *v > hi)) {
    return Validation("Value " + std::to_string(*v) + " for " + key + " must be between " + std::to_string(lo) +
                      " and " + std::to_string(hi));
  }
  return v;
}

Result<std::pair<std::string, Json>> PolicyService::Find(const std::optional<std::string>& group,
                                                         const std::string& name_or_arn) {
  for (const auto& id : ctx_->store->Ids(kind::kScalingPolicy)) {
    auto p = ctx_->store->Get(kind::kScalingPolicy, id);
    if (!p || !PolicyOfLiveGroup(*ctx_, *p)) continue;
    const bool match = (*p)["PolicyARN"] == name_or_arn ||
                       ((*p)["PolicyName"] == name_or_arn && (!group || (*p)["AutoScalingGroupName"] == *group));
    if (match) return std::make_pair(id, *p);
  }
  return Validation("Policy " + name_or_arn + " not found" + (group ? " in group " + *group : std::string()));
}

Result<Json> PolicyService::PutScalingPolicy(const Params& p) {
  AP_ASSIGN_OR_RETURN(auto group, RequiredName(p, "AutoScalingGroupName", "autoScalingGroupName"));
  AP_ASSIGN_OR_RETURN(auto name, RequiredName(p, "PolicyName", "policyName"));
  const std::string type = p.Str("PolicyType").value_or("SimpleScaling");
  static const std::set<std::string> kTypes = {"SimpleScaling", "StepScaling", "TargetTrackingScaling",
                                               "PredictiveScaling"};
  if (!kTypes.count(type)) return Validation("Unsupported policy type " + type);
  if (type == "PredictiveScaling") {
    return Validation("PolicyType " + type + " is not supported by this region");
  }
  if (type == "TargetTrackingScaling") return PutTargetTracking(p, group, name);
  auto adjustment_type = p.Str("AdjustmentType");
  if (!adjustment_type) return Validation("AdjustmentType is required for " + type + " policies");
  static const std::set<std::string> kAdjustments = {"ChangeInCapacity", "ExactCapacity", "PercentChangeInCapacity"};
  if (!kAdjustments.count(*adjustment_type)) return Validation("Invalid adjustment type " + *adjustment_type);
  AP_ASSIGN_OR_RETURN(auto min_magnitude, IntIn(p, "MinAdjustmentMagnitude", 1, kMaxPolicyValue));
  if (p.Has("MinAdjustmentMagnitude") && *adjustment_type != "PercentChangeInCapacity") {
    return Validation("MinAdjustmentMagnitude may only be specified when AdjustmentType is PercentChangeInCapacity");
  }
  AP_ASSIGN_OR_RETURN(auto adjustment, IntIn(p, "ScalingAdjustment", -kMaxPolicyValue, kMaxPolicyValue));
  AP_ASSIGN_OR_RETURN(auto cooldown, IntIn(p, "Cooldown", 0, kMaxPolicyValue));
  AP_ASSIGN_OR_RETURN(auto warmup, IntIn(p, "EstimatedInstanceWarmup", 0, kMaxPolicyValue));
  auto aggregation = p.Str("MetricAggregationType");
  AP_ASSIGN_OR_RETURN(auto enabled, p.Bool("Enabled"));

  Json policy = Json::object();
  if (type == "SimpleScaling") {
    if (!adjustment) return Validation("ScalingAdjustment is required for SimpleScaling policies");
    if (p.ListSize("StepAdjustments")) return Validation("StepAdjustments are not valid for SimpleScaling policies");
    if (warmup) return Validation("EstimatedInstanceWarmup is not valid for SimpleScaling policies");
    if (aggregation) return Validation("MetricAggregationType is not valid for SimpleScaling policies");
    if (*adjustment_type == "ExactCapacity" && *adjustment < 0) {
      return Validation("ScalingAdjustment must be non-negative for ExactCapacity");
    }
  } else {
    if (adjustment) return Validation("ScalingAdjustment is not valid for StepScaling policies");
    if (cooldown) return Validation("Cooldown is not valid for StepScaling policies");
    if (aggregation && *aggregation != "Average" && *aggregation != "Minimum" && *aggregation != "Maximum") {
      return Validation("Invalid MetricAggregationType " + *aggregation + " (Average, Minimum or Maximum)");
    }
    std::vector<StepAdjustment> steps;
    size_t n = 0;
    for (const auto& f : p.StructList("StepAdjustments")) {
      ++n;
      const std::string field = "stepAdjustments." + std::to_string(n) + ".member.";
      StepAdjustment s;
      AP_ASSIGN_OR_RETURN(s.lower, Double(f, "MetricIntervalLowerBound", field + "metricIntervalLowerBound"));
      AP_ASSIGN_OR_RETURN(s.upper, Double(f, "MetricIntervalUpperBound", field + "metricIntervalUpperBound"));
      auto a = f.find("ScalingAdjustment");
      if (a == f.end()) return NullError(field + "scalingAdjustment");
      char* end = nullptr;
      long v = std::strtol(a->second.c_str(), &end, 10);
      if (a->second.empty() || *end != '\0' || std::labs(v) > kMaxPolicyValue) {
        return Validation("Value '" + a->second + "' at '" + field + "scalingAdjustment' is not a valid integer");
      }
      s.adjustment = static_cast<int>(v);
      steps.push_back(s);
    }
    AP_RETURN_IF_ERROR(CheckSteps(steps));
    policy["StepAdjustments"] = StepsJson(steps);
  }

  auto g = ctx_->store->Get(kind::kAutoScalingGroup, group);
  if (!g) return Validation("AutoScalingGroup name not found - AutoScalingGroup " + group + " not found");

  std::string id = NewUuid();
  std::vector<StoreWrite> writes;
  for (const auto& doc : ctx_->store->List(kind::kScalingPolicy)) {
    if ((*doc)["AutoScalingGroupName"] != group || (*doc)["PolicyName"] != name) continue;
    if (PolicyOfLiveGroup(*ctx_, *doc)) {
      id = (*doc)["Uuid"];  // an update keeps the policy's ARN
    } else {
      writes.push_back({kind::kScalingPolicy, (*doc)["Uuid"], std::nullopt});  // left by a deleted group
    }
  }
  Json out = {{"Uuid", id},
              {"AutoScalingGroupName", group},
              {"AutoScalingGroupARN", (*g)["AutoScalingGroupARN"]},
              {"PolicyName", name},
              {"PolicyARN", PolicyArn(*ctx_, id, group, name)},
              {"PolicyType", type},
              {"AdjustmentType", *adjustment_type}};
  if (adjustment) out["ScalingAdjustment"] = *adjustment;
  if (min_magnitude) out["MinAdjustmentMagnitude"] = *min_magnitude;
  if (cooldown) out["Cooldown"] = *cooldown;
  if (policy.contains("StepAdjustments")) out["StepAdjustments"] = policy["StepAdjustments"];
  if (type == "StepScaling") out["MetricAggregationType"] = aggregation.value_or("Average");
  if (warmup) out["EstimatedInstanceWarmup"] = *warmup;
  out["Enabled"] = enabled.value_or(true);
  writes.push_back({kind::kScalingPolicy, id, out});
  AP_RETURN_IF_ERROR(ctx_->store->Commit(writes));
  return Json{{"PolicyARN", out["PolicyARN"]}, {"Alarms", Json::array()}};
}

Result<Json> PolicyService::PutTargetTracking(const Params& p, const std::string& group, const std::string& name) {
  for (const char* k : {"AdjustmentType", "ScalingAdjustment", "MinAdjustmentMagnitude", "Cooldown",
                        "MetricAggregationType"}) {
    if (p.Has(k)) return Validation(std::string(k) + " is not valid for TargetTrackingScaling policies");
  }
  if (p.ListSize("StepAdjustments")) return Validation("StepAdjustments are not valid for TargetTrackingScaling policies");
  const std::string tc = "TargetTrackingConfiguration.";
  auto target_text = p.Str(tc + "TargetValue");
  if (!target_text) return NullError("targetTrackingConfiguration.targetValue");
  FormParams flat{{"TargetValue", *target_text}};
  AP_ASSIGN_OR_RETURN(auto target, Double(flat, "TargetValue", "targetTrackingConfiguration.targetValue"));
  if (*target <= 0) return Validation("TargetValue must be greater than 0");
  if (p.Has(tc + "CustomizedMetricSpecification.MetricName")) {
    return Validation("CustomizedMetricSpecification is not supported by this region (PredefinedMetricSpecification "
                      "with ASGAverageCPUUtilization, ASGAverageNetworkIn or ASGAverageNetworkOut is)");
  }
  auto predefined = p.Str(tc + "PredefinedMetricSpecification.PredefinedMetricType");
  if (!predefined) {
    return Validation("Either PredefinedMetricSpecification or CustomizedMetricSpecification must be specified");
  }
  if (!TrackedMetric(*predefined)) {
    return Validation("Unsupported PredefinedMetricType " + *predefined +
                      " (ASGAverageCPUUtilization, ASGAverageNetworkIn and ASGAverageNetworkOut are supported; "
                      "ALBRequestCountPerTarget needs an Application Load Balancer target group)");
  }
  AP_ASSIGN_OR_RETURN(auto disable_in, p.Bool(tc + "DisableScaleIn"));
  AP_ASSIGN_OR_RETURN(auto warmup, IntIn(p, "EstimatedInstanceWarmup", 0, kMaxPolicyValue));
  AP_ASSIGN_OR_RETURN(auto enabled, p.Bool("Enabled"));
  auto g = ctx_->store->Get(kind::kAutoScalingGroup, group);
  if (!g) return Validation("AutoScalingGroup name not found - AutoScalingGroup " + group + " not found");

  std::string id = NewUuid();
  std::vector<StoreWrite> writes;
  for (const auto& doc : ctx_->store->List(kind::kScalingPolicy)) {
    if ((*doc)["AutoScalingGroupName"] != group || (*doc)["PolicyName"] != name) continue;
    if (PolicyOfLiveGroup(*ctx_, *doc)) {
      id = (*doc)["Uuid"];  // an update keeps the policy's ARN; its alarms are made anew
    } else {
      writes.push_back({kind::kScalingPolicy, (*doc)["Uuid"], std::nullopt});
    }
    DeleteTrackingAlarmWrites(*ctx_, *doc, &writes);
  }
  Json out = {{"Uuid", id},
              {"AutoScalingGroupName", group},
              {"AutoScalingGroupARN", (*g)["AutoScalingGroupARN"]},
              {"PolicyName", name},
              {"PolicyARN", PolicyArn(*ctx_, id, group, name)},
              {"PolicyType", "TargetTrackingScaling"}};
  if (warmup) out["EstimatedInstanceWarmup"] = *warmup;
  out["TargetTrackingConfiguration"] = {{"PredefinedMetricSpecification", {{"PredefinedMetricType", *predefined}}},
                                        {"TargetValue", *target},
                                        {"DisableScaleIn", disable_in.value_or(false)}};
  out["Enabled"] = enabled.value_or(true);
  Json alarms = Json::array();
  for (const char* which : {"AlarmHigh", "AlarmLow"}) {
    if (std::string(which) == "AlarmLow" && disable_in.value_or(false)) continue;
    const std::string alarm = "TargetTracking-" + group + "-" + which + "-" + NewUuid();
    alarms.push_back({{"AlarmName", alarm}, {"AlarmARN", ctx_->Arn("cloudwatch", "alarm:" + alarm)}});
  }
  out["Alarms"] = alarms;
  // A removed writes entry for an alarm name never collides with the new ones (fresh uuids).
  TrackingAlarmWrites(*ctx_, out, ctx_->clock->NowMillis(), &writes);
  writes.push_back({kind::kScalingPolicy, id, out});
  AP_RETURN_IF_ERROR(ctx_->store->Commit(writes));
  return Json{{"PolicyARN", out["PolicyARN"]}, {"Alarms", alarms}};
}

Json Describe(const Json& p) {
  Json out = Json::object();
  for (const char* k : {"AutoScalingGroupName", "PolicyName", "PolicyARN", "PolicyType", "AdjustmentType",
                        "MinAdjustmentMagnitude", "ScalingAdjustment", "Cooldown", "StepAdjustments",
                        "MetricAggregationType", "EstimatedInstanceWarmup", "TargetTrackingConfiguration"}) {
    if (p.contains(k)) out[k] = p[k];
  }
  if (!out.contains("StepAdjustments")) out["StepAdjustments"] = Json::array();
  out["Alarms"] = p.value("Alarms", Json::array());
  out["Enabled"] = p.value("Enabled", true);
  return out;
}

Result<Json> PolicyService::DescribePolicies(const Params& p) {
  auto group = p.Str("AutoScalingGroupName");
  auto names = p.List("PolicyNames");
  auto types = p.List("PolicyTypes");
  AP_ASSIGN_OR_RETURN(auto max_records, p.Int("MaxRecords"));
  // Auto Scaling's page-size wording, as DescribeAutoScalingGroups gives it (autoscaling_service.cc ReadPage).
  if (max_records && (*max_records < 1 || *max_records > 100)) {
    return Validation("1 validation error detected: Value '" + std::to_string(*max_records) +
                      "' at 'maxRecords' failed to satisfy constraint: Member must have value " +
                      (*max_records < 1 ? "greater than or equal to 1" : "less than or equal to 100"));
  }
  const size_t page_size = static_cast<size_t>(max_records.value_or(50));
  size_t offset = 0;
  if (auto token = p.Str("NextToken"); token && !token->empty()) {
    auto o = DecodePageToken("ScalingPolicies", *token);
    if (!o) return Status(400, "InvalidNextToken", "The token '" + *token + "' is invalid.");
    offset = *o;
  }
  Json all = Json::array();
  for (const auto& doc : ctx_->store->List(kind::kScalingPolicy)) {
    const Json& pol = *doc;
    if (!PolicyOfLiveGroup(*ctx_, pol)) continue;  // its group was deleted
    if (group && pol["AutoScalingGroupName"] != *group) continue;
    if (!names.empty() && std::find(names.begin(), names.end(), pol["PolicyName"]) == names.end() &&
        std::find(names.begin(), names.end(), pol["PolicyARN"]) == names.end()) {
      continue;
    }
    if (!types.empty() && std::find(types.begin(), types.end(), pol["PolicyType"]) == types.end()) continue;
    all.push_back(Describe(pol));
  }
  std::stable_sort(all.begin(), all.end(), [](const Json& a, const Json& b) {
    return std::make_pair(a["AutoScalingGroupName"].get<std::string>(), a["PolicyName"].get<std::string>()) <
           std::make_pair(b["AutoScalingGroupName"].get<std::string>(), b["PolicyName"].get<std::string>());
  });
  Json page = Json::array();
  for (size_t i = offset; i < all.size() && page.size() < page_size; ++i) page.push_back(all[i]);
  Json out = {{"ScalingPolicies", page}};
  if (offset + page_size < all.size()) out["NextToken"] = EncodePageToken("ScalingPolicies", offset + page_size);
  return out;
}

Result<Json> PolicyService::DeletePolicy(const Params& p) {
  AP_ASSIGN_OR_RETURN(auto name, RequiredName(p, "PolicyName", "policyName"));
  AP_ASSIGN_OR_RETURN(auto found, Find(p.Str("AutoScalingGroupName"), name));
  std::vector<StoreWrite> writes = {{kind::kScalingPolicy, found.first, std::nullopt}};
  DeleteTrackingAlarmWrites(*ctx_, found.second, &writes);  // the alarms Auto Scaling made go with the policy
  AP_RETURN_IF_ERROR(ctx_->store->Commit(writes));
  return Json();
}

Result<Json> PolicyService::ExecutePolicy(const Params& p) {
  AP_ASSIGN_OR_RETURN(auto name, RequiredName(p, "PolicyName", "policyName"));
  AP_ASSIGN_OR_RETURN(auto found, Find(p.Str("AutoScalingGroupName"), name));
  AP_ASSIGN_OR_RETURN(auto honor, p.Bool("HonorCooldown"));
  FormParams flat;
  for (const char* k : {"MetricValue", "BreachThreshold"}) {
    if (auto v = p.Str(k)) flat[k] = *v;
  }
  PolicyTrigger t;
  t.honor_cooldown = honor.value_or(false);
  AP_ASSIGN_OR_RETURN(t.metric_value, Double(flat, "MetricValue", "metricValue"));
  AP_ASSIGN_OR_RETURN(t.breach_threshold, Double(flat, "BreachThreshold", "breachThreshold"));
  if (found.second["PolicyType"] == "SimpleScaling" && (t.metric_value || t.breach_threshold)) {
    return Validation("MetricValue and BreachThreshold are only valid for StepScaling policies");
  }
  AP_RETURN_IF_ERROR(RunPolicy(ctx_, found.second, t));
  return Json();
}

}  // namespace

std::vector<Operation> ScalingPolicyOperations(RegionContext* ctx) {
  auto svc = std::make_shared<PolicyService>(ctx);
  using Method = Result<Json> (PolicyService::*)(const Params&);
  auto op = [svc](const char* name, Access access, Method m, std::vector<ListLimit> limits = {}) {
    return Operation{name, access, [svc, m](const Params& p) { return ((*svc).*m)(p); }, std::move(limits)};
  };
  return {
      op("PutScalingPolicy", Access::kWrite, &PolicyService::PutScalingPolicy, {{"StepAdjustments", 20}}),
      op("DescribePolicies", Access::kRead, &PolicyService::DescribePolicies,
         {{"PolicyNames", 50}, {"PolicyTypes", 10}}),
      op("DeletePolicy", Access::kWrite, &PolicyService::DeletePolicy),
      op("ExecutePolicy", Access::kWrite, &PolicyService::ExecutePolicy),
  };
}

}  // namespace autopipe

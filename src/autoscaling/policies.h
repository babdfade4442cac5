// Auto Scaling scaling policies: the scaling_policy documents, the arithmetic that turns a policy into a new
// desired capacity, cooldowns, the API operations (PutScalingPolicy, DescribePolicies, DeletePolicy,
// ExecutePolicy) and the alarm action that runs a policy.
//
// A scaling_policy document (id = the policy's uuid) holds the policy as DescribePolicies shows it (PolicyARN,
// PolicyName, AutoScalingGroupName, PolicyType, AdjustmentType, ScalingAdjustment, MinAdjustmentMagnitude,
// Cooldown, StepAdjustments, MetricAggregationType, EstimatedInstanceWarmup, Enabled). Running a policy sets
// the group's DesiredCapacity and its CapacityCause (the text the next scaling activities quote, in AWS's
// words); the GroupController then launches or terminates as for any change of desired capacity.
//
// Cooldowns (SimpleScaling): the group's "PolicyCooldown" {Seconds, Since} records the last policy run. The group
// is cooling down while any member is Pending or Terminating (its activity runs), and then until Seconds after
// the last of the group's activities that started since that run ended. Alarms always honour it; ExecutePolicy
// only with HonorCooldown. StepScaling ignores cooldowns: members launched less than the warm-up ago count as
// already added (an alarm that repeats the same breach adds nothing more) and block scale-in.
//
// Thread-safety: the functions that take a RegionContext read and write the store and must be called with
// RegionContext::mu held, except RunPolicyForAlarm, which takes it. The arithmetic is pure.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "api/api_server.h"
#include "region/context.h"
#include "region/module.h"

namespace autopipe {

namespace kind {
inline constexpr char kScalingPolicy[] = "scaling_policy";
}  // namespace kind

// One step of a StepScaling policy; bounds are relative to the alarm threshold (nullopt = unbounded).
struct StepAdjustment {
  std::optional<double> lower;
  std::optional<double> upper;
  int adjustment = 0;
};

// The capacity `adjustment` of `adjustment_type` (ChangeInCapacity, ExactCapacity, PercentChangeInCapacity) asks
// for from `current`, before clamping to the group's bounds. Percentages round as AWS does: results above 1 down,
// between 0 and 1 to 1, between -1 and 0 to -1, below -1 up (towards zero); then at least MinAdjustmentMagnitude.
int AdjustedCapacity(const std::string& adjustment_type, int adjustment, int current,
                     std::optional<int> min_adjustment_magnitude);

// The step whose interval holds `metric - threshold` (above the threshold the lower bound is inclusive, below it
// the upper bound), or nullopt.
std::optional<StepAdjustment> FindStep(const std::vector<StepAdjustment>& steps, double metric, double threshold);

// Steps must not overlap or leave gaps, with at most one unbounded lower and one unbounded upper end; AWS's
// ValidationError otherwise.
Status CheckSteps(std::vector<StepAdjustment> steps);

// The policy ARN: arn:aws:autoscaling:<region>:<acct>:scalingPolicy:<uuid>:autoScalingGroupName/<g>:policyName/<p>
std::string PolicyArn(const RegionContext& ctx, const std::string& uuid, const std::string& group,
                      const std::string& policy);

// What starts a policy run: a user's ExecutePolicy or an alarm.
struct PolicyTrigger {
  std::string alarm_name;  // empty: a user request
  std::string alarm_state;
  bool honor_cooldown = false;
  std::optional<double> metric_value;      // StepScaling
  std::optional<double> breach_threshold;  // StepScaling
};

// True while the group is in its scaling cooldown as described above (a member Pending or Terminating, an activity
// since the last policy run still InProgress, or less than that policy's cooldown since the last one ended).
// SetDesiredCapacity with HonorCooldown consults it too. Call with RegionContext::mu held.
bool GroupInCooldown(const RegionContext& ctx, const Json& group);

// Runs a policy against its group: the new desired capacity is written with its cause. Refuses
// (ScalingActivityInProgress) a SimpleScaling run during the cooldown when the trigger honours it. Call with
// RegionContext::mu held.
Status RunPolicy(RegionContext* ctx, const Json& policy, const PolicyTrigger& trigger);

// The alarm action "arn:aws:autoscaling:...:scalingPolicy:...": runs the policy the ARN names (StepScaling reads
// the breach from the change's StateReasonData: the recent datapoints, aggregated as the policy says, and the
// threshold). Takes RegionContext::mu.
Status RunPolicyForAlarm(RegionContext* ctx, const std::string& policy_arn, const AlarmStateChange& change);

// The writes that delete the policies of `group` (being deleted) and the CloudWatch alarms their target tracking
// made, as AWS deletes them with the group. Call with RegionContext::mu held.
void DeleteGroupPolicyWrites(const RegionContext& ctx, const Json& group, std::vector<StoreWrite>* writes);

// PutScalingPolicy, DescribePolicies, DeletePolicy and ExecutePolicy, for the autoscaling ApiService.
std::vector<Operation> ScalingPolicyOperations(RegionContext* ctx);

}  // namespace autopipe

#include "autoscaling/group_controller.h"

#include <algorithm>

#include "autoscaling/groups.h"
#include "autoscaling/termination_policy.h"
#include "common/log.h"
#include "ec2/instances.h"

namespace autopipe {

std::vector<std::string> GroupController::Keys() {
  return ctx_->store->Ids(kind::kAutoScalingGroup);
}

Status GroupController::Reconcile(const std::string& name) {
  auto found = ctx_->store->Get(kind::kAutoScalingGroup, name);
  if (!found) return Status::Ok();
  Json group = *found;
  std::vector<StoreWrite> writes;

  Observe(group, writes);
  ReplaceUnhealthy(group, writes);
  AP_RETURN_IF_ERROR(AdjustCapacity(group, writes));

  if (group["Deleting"].get<bool>() && group["Instances"].empty()) {
    writes.push_back({kind::kAutoScalingGroup, name, std::nullopt});
    spdlog::info("group={} deleted", name);
  } else if (group != *found) {
    writes.push_back({kind::kAutoScalingGroup, name, group});
  }
  if (writes.empty()) return Status::Ok();
  return ctx_->store->Commit(writes);
}

void GroupController::Observe(Json& group, std::vector<StoreWrite>& writes) {
  const int64_t now = ctx_->clock->NowMillis();
  std::vector<std::string> gone;
  bool crashed = false;
  for (auto& [id, m] : group["Instances"].items()) {
    auto inst = ctx_->store->Get(kind::kInstance, id);
    const std::string state = inst ? (*inst)["State"].get<std::string>() : instance_state::kTerminated;
    const std::string activity = m.value("ActivityId", "");

    if (m["LifecycleState"] == lifecycle::kTerminating) {
      if (state == instance_state::kTerminated) {
        gone.push_back(id);
        auto w = FinishActivity(*ctx_, activity, "Successful");
        writes.insert(writes.end(), w.begin(), w.end());
      } else if (inst) {
        auto w = RequestTermination(*ctx_, *inst, "Auto Scaling");
        writes.insert(writes.end(), w.begin(), w.end());
      }
      continue;
    }
    if (m["LifecycleState"] == lifecycle::kPending && state == instance_state::kRunning) {
      m["LifecycleState"] = lifecycle::kInService;
      auto w = FinishActivity(*ctx_, activity, "Successful");
      writes.insert(writes.end(), w.begin(), w.end());
    }
    if (!IsLiveState(state) && m["HealthStatus"] == "Healthy" && !IsSuspended(group, "HealthCheck")) {
      m["HealthStatus"] = "Unhealthy";
      m["HealthCause"] = "an EC2 health check indicating it has been terminated or stopped";
      spdlog::info("group={} instance={} unhealthy: instance {}", group["AutoScalingGroupName"].get<std::string>(),
                   id, state);
      if (m["LifecycleState"] == lifecycle::kPending) {
        auto w = FinishActivity(*ctx_, activity, "Failed", "Instance failed to start: " + state);
        writes.insert(writes.end(), w.begin(), w.end());
      }
      // Only an instance whose own processes ended counts as a crash; one stopped by `autopipe down` or
      // terminated by a user does not.
      const bool self_inflicted =
          inst && (*inst)["StateReason"].is_object() &&
          (*inst)["StateReason"]["Code"] != "Client.UserInitiatedShutdown";
      crashed |= self_inflicted && now - m["LaunchedAt"].get<int64_t>() < kCrashWindowMillis;
    }
  }
  for (const auto& id : gone) group["Instances"].erase(id);
  UpdateCrashBackoff(group, crashed, now);
}

void GroupController::UpdateCrashBackoff(Json& group, bool crashed, int64_t now) {
  if (crashed) {
    int failures = group.value("LaunchFailures", 0) + 1;
    group["LaunchFailures"] = failures;
    group["LastLaunchFailureAt"] = now;
    group["LaunchBackoffUntil"] = now + std::min<int64_t>(60'000, 5000LL << std::min(failures - 1, 4));
    return;
  }
  if (group.value("LaunchFailures", 0) == 0) return;
  // Recovered once an instance launched after the last crash has outlived the crash window.
  const int64_t last = group.value("LastLaunchFailureAt", int64_t{0});
  for (const auto& [id, m] : group["Instances"].items()) {
    const int64_t launched = m["LaunchedAt"].get<int64_t>();
    if (m["LifecycleState"] == lifecycle::kInService && m["HealthStatus"] == "Healthy" && launched > last &&
        now - launched >= kCrashWindowMillis) {
      group["LaunchFailures"] = 0;
      return;
    }
  }
}

void GroupController::ReplaceUnhealthy(Json& group, std::vector<StoreWrite>& writes) {
  if (IsSuspended(group, "ReplaceUnhealthy") || IsSuspended(group, "Terminate")) return;
  const int64_t now = ctx_->clock->NowMillis();
  std::vector<std::pair<std::string, std::string>> victims;
  for (const auto& [id, m] : group["Instances"].items()) {
    if (m["LifecycleState"] != lifecycle::kTerminating && m["HealthStatus"] == "Unhealthy") {
      victims.emplace_back(id, m.value("HealthCause", std::string("a health check")));
    }
  }
  for (const auto& [id, why] : victims) {
    Terminate(group, id, CauseAt(now) + "an instance was taken out of service in response to " + why + ".",
              writes);
  }
}

Status GroupController::AdjustCapacity(Json& group, std::vector<StoreWrite>& writes) {
  const int64_t now = ctx_->clock->NowMillis();
  const int desired = group["Deleting"].get<bool>() ? 0 : group["DesiredCapacity"].get<int>();
  const int active = ActiveCount(group);
  const std::string user_cause = group.value("CapacityCause", "");

  if (active < desired && !IsSuspended(group, "Launch") && now >= group.value("LaunchBackoffUntil", int64_t{0})) {
    auto lc = ctx_->store->Get(kind::kLaunchConfiguration, group["LaunchConfigurationName"]);
    if (!lc) return Status::Internal("launch configuration " + group["LaunchConfigurationName"].get<std::string>() +
                                     " of group is missing");
    std::string cause = user_cause.empty() ? "" : user_cause + "  ";
    cause += CauseAt(now) + "an instance was started in response to a difference between desired and actual " +
             "capacity, increasing the capacity from " + std::to_string(active) + " to " + std::to_string(desired) +
             ".";
    for (int i = 0; i < std::min(desired - active, kLaunchBatch); ++i) {
      AP_RETURN_IF_ERROR(Launch(group, *lc, cause, writes));
    }
    group["CapacityCause"] = "";
  } else if (active > desired && !IsSuspended(group, "Terminate")) {
    std::vector<TerminationCandidate> candidates;
    for (const auto& [id, m] : group["Instances"].items()) {
      if (m["LifecycleState"] == lifecycle::kTerminating) continue;
      candidates.push_back({id, m["AvailabilityZone"], m["LaunchConfigurationName"], m["LaunchedAt"],
                            m["ProtectedFromScaleIn"].get<bool>() && !group["Deleting"].get<bool>()});
    }
    std::vector<std::string> policies;
    for (const auto& p : group["TerminationPolicies"]) policies.push_back(p);
    auto victims = ChooseInstancesToTerminate(candidates, active - desired, policies,
                                              group["LaunchConfigurationName"], now, rng_);
    std::string cause = user_cause.empty() ? "" : user_cause + "  ";
    cause += CauseAt(now) + "an instance was taken out of service in response to a difference between desired " +
             "and actual capacity, shrinking the capacity from " + std::to_string(active) + " to " +
             std::to_string(desired) + ".";
    for (const auto& id : victims) Terminate(group, id, cause, writes);
    group["CapacityCause"] = "";
  }
  return Status::Ok();
}

Status GroupController::Launch(Json& group, const Json& lc, const std::string& cause,
                               std::vector<StoreWrite>& writes) {
  // The enabled AZ with the fewest members gets the next instance; ties go to the first listed.
  std::string az;
  int fewest = 1 << 30;
  for (const auto& zone : group["AvailabilityZones"]) {
    int n = 0;
    for (const auto& [id, m] : group["Instances"].items()) {
      n += m["AvailabilityZone"] == zone && m["LifecycleState"] != lifecycle::kTerminating;
    }
    if (n < fewest) {
      fewest = n;
      az = zone;
    }
  }
  InstanceLaunch launch;
  launch.image_id = lc["ImageId"];
  launch.instance_type = lc["InstanceType"];
  launch.availability_zone = az;
  launch.user_data = lc["UserData"];
  launch.key_name = lc["KeyName"];
  for (const auto& sg : lc["SecurityGroups"]) launch.security_groups.push_back(sg);
  launch.launch_configuration_name = lc["LaunchConfigurationName"];
  launch.auto_scaling_group_name = group["AutoScalingGroupName"];
  launch.tags.emplace_back("aws:autoscaling:groupName", group["AutoScalingGroupName"]);
  for (const auto& t : group["Tags"]) {
    if (t["PropagateAtLaunch"].get<bool>()) launch.tags.emplace_back(t["Key"], t["Value"]);
  }
  auto inst = NewInstance(*ctx_, launch, &writes);
  if (!inst.ok()) return inst.status();
  const std::string id = (*inst)["InstanceId"];

  Json activity = NewActivity(*ctx_, group, "Launching a new EC2 instance: " + id, cause, az);
  writes.push_back({kind::kActivity, activity["ActivityId"], activity});
  group["Instances"][id] = {{"InstanceId", id},
                            {"AvailabilityZone", az},
                            {"LifecycleState", lifecycle::kPending},
                            {"HealthStatus", "Healthy"},
                            {"LaunchConfigurationName", lc["LaunchConfigurationName"]},
                            {"InstanceType", lc["InstanceType"]},
                            {"ProtectedFromScaleIn", group["NewInstancesProtectedFromScaleIn"]},
                            {"LaunchedAt", ctx_->clock->NowMillis()},
                            {"ActivityId", activity["ActivityId"]}};
  spdlog::info("group={} launching instance={} az={}", group["AutoScalingGroupName"].get<std::string>(), id, az);
  return Status::Ok();
}

void GroupController::Terminate(Json& group, const std::string& id, const std::string& cause,
                                std::vector<StoreWrite>& writes) {
  Json& m = group["Instances"][id];
  if (m["LifecycleState"] == lifecycle::kTerminating) return;
  auto w = FinishActivity(*ctx_, m.value("ActivityId", ""), "Cancelled", "Instance left the group", &writes);
  writes.insert(writes.end(), w.begin(), w.end());
  Json activity = NewActivity(*ctx_, group, "Terminating EC2 instance: " + id, cause, m["AvailabilityZone"]);
  writes.push_back({kind::kActivity, activity["ActivityId"], activity});
  m["LifecycleState"] = lifecycle::kTerminating;
  m["ActivityId"] = activity["ActivityId"];
  if (auto inst = ctx_->store->Get(kind::kInstance, id)) {
    auto t = RequestTermination(*ctx_, *inst, "Auto Scaling");
    writes.insert(writes.end(), t.begin(), t.end());
  }
  spdlog::info("group={} terminating instance={}", group["AutoScalingGroupName"].get<std::string>(), id);
}

}  // namespace autopipe

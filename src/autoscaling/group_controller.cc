#include "autoscaling/group_controller.h"

#include <algorithm>

#include "autoscaling/groups.h"
#include "autoscaling/policies.h"
#include "autoscaling/termination_policy.h"
#include "common/log.h"
#include "ec2/instances.h"
#include "elb/load_balancers.h"

namespace autopipe {

std::vector<std::string> GroupController::Keys() {
  return ctx_->store->Ids(kind::kAutoScalingGroup);
}

ReconcileResult GroupController::Reconcile(const std::string& name) {
  std::lock_guard lock(*ctx_->mu);
  return ReconcileLocked(name);
}

Status GroupController::ReconcileLocked(const std::string& name) {
  auto found = ctx_->store->Get(kind::kAutoScalingGroup, name);
  if (!found) return Status::Ok();
  Json group = *found;
  std::vector<StoreWrite> writes;

  Observe(group, writes);
  SyncLoadBalancers(group, writes);
  CheckLoadBalancerHealth(group, writes);
  ReplaceUnhealthy(group, writes);
  AP_RETURN_IF_ERROR(AdjustCapacity(group, writes));

  if (group["Deleting"].get<bool>() && group["Instances"].empty()) {
    writes.push_back({kind::kAutoScalingGroup, name, std::nullopt});
    DeleteGroupPolicyWrites(*ctx_, group, &writes);  // its policies and their target tracking alarms go with it
    spdlog::info("group={} deleted", name);
  } else if (group != *found) {
    writes.push_back({kind::kAutoScalingGroup, name, group});
  }
  if (writes.empty()) return Status::Ok();
  return ctx_->store->Commit(writes);
}

void GroupController::Observe(Json& group, std::vector<StoreWrite>& writes) {
  const int64_t now = ctx_->clock->NowMillis();
  std::vector<std::string> gone, started;
  bool crashed = false;
  for (auto& [id, m] : group["Instances"].items()) {
    auto inst = ctx_->store->Get(kind::kInstance, id);
    const std::string state = inst ? (*inst)["State"].get<std::string>() : instance_state::kTerminated;
    const std::string activity = m.value("ActivityId", "");

    if (m["LifecycleState"] == lifecycle::kTerminating) {
      if (ObserveTerminating(group, id, inst, writes)) gone.push_back(id);
      continue;
    }
    if (m["LifecycleState"] == lifecycle::kPending && state == instance_state::kRunning) started.push_back(id);
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
  // AWS registers an instance with the group's load balancers before it is InService; here both land in the
  // same commit, so nobody ever sees an InService member the load balancers do not know.
  RegisterWithLoadBalancers(group, started, writes);
  for (const auto& id : started) {
    Json& m = group["Instances"][id];
    m["LifecycleState"] = lifecycle::kInService;
    auto w = FinishActivity(*ctx_, m.value("ActivityId", ""), "Successful");
    writes.insert(writes.end(), w.begin(), w.end());
  }
  for (const auto& id : gone) group["Instances"].erase(id);
  UpdateCrashBackoff(group, crashed, now);
}

bool GroupController::ObserveTerminating(const Json& group, const std::string& id, const std::optional<Json>& inst,
                                         std::vector<StoreWrite>& writes) {
  // Level-triggered: whatever registered it again since its termination began (a load balancer attached since,
  // a user's RegisterInstances) is undone before it may go.
  DeregisterFromLoadBalancers(*ctx_, group["LoadBalancerNames"].get<std::vector<std::string>>(), {id}, writes);
  if (HeldByLoadBalancers(*ctx_, group, id, writes)) return false;  // draining: its termination waits
  if (!inst || (*inst)["State"] == instance_state::kTerminated) {
    const std::string activity = group["Instances"][id].value("ActivityId", "");
    auto w = FinishActivity(*ctx_, activity, "Successful");
    writes.insert(writes.end(), w.begin(), w.end());
    return true;
  }
  auto w = RequestTermination(*ctx_, *inst, "Auto Scaling");
  writes.insert(writes.end(), w.begin(), w.end());
  return false;
}

std::optional<Json> GroupController::FindGroupLoadBalancer(const Json& group, const std::string& name,
                                                           const std::vector<StoreWrite>& writes) {
  auto lb = elb::FindLoadBalancer(*ctx_, name, &writes);
  const std::string key = group["AutoScalingGroupName"].get<std::string>() + "/" + name;
  if (lb) {
    missing_load_balancers_logged_.erase(key);
  } else if (missing_load_balancers_logged_.insert(key).second) {
    spdlog::debug("group={} load_balancer={} does not exist; skipped until it does",
                  group["AutoScalingGroupName"].get<std::string>(), name);
  }
  return lb;
}

void GroupController::RegisterWithLoadBalancers(const Json& group, const std::vector<std::string>& ids,
                                                std::vector<StoreWrite>& writes) {
  if (ids.empty() || IsSuspended(group, "AddToLoadBalancer")) return;
  for (const auto& name_json : group["LoadBalancerNames"]) {
    const std::string name = name_json;
    auto lb = FindGroupLoadBalancer(group, name, writes);
    if (!lb) continue;
    std::vector<std::string> missing;
    for (const auto& id : ids) {
      if (!IsRegistered(*lb, id)) missing.push_back(id);
    }
    if (missing.empty()) continue;
    Status s = elb::RegisterInstances(*ctx_, name, missing, writes);
    if (!s.ok()) {
      spdlog::warn("group={} load_balancer={} registering instances failed: {}",
                   group["AutoScalingGroupName"].get<std::string>(), name, s.ToString());
    }
  }
}

void GroupController::SyncLoadBalancers(Json& group, std::vector<StoreWrite>& writes) {
  const Json states = group.value("LoadBalancerStates", Json::object());
  if (group["LoadBalancerNames"].empty() && states.empty()) return;
  std::vector<std::string> serving, members;
  for (const auto& [id, m] : group["Instances"].items()) {
    members.push_back(id);
    if (m["LifecycleState"] == lifecycle::kInService && m["HealthStatus"] == "Healthy") serving.push_back(id);
  }
  RegisterWithLoadBalancers(group, serving, writes);

  Json next = Json::object();
  for (const auto& name_json : group["LoadBalancerNames"]) {
    const std::string name = name_json;
    const std::string current = states.value(name, lb_attachment::kAdding);
    auto lb = FindGroupLoadBalancer(group, name, writes);
    next[name] = lb ? AttachmentState(*lb, current, serving) : current;
  }
  // A detached load balancer stays Removing while any member still drains from it.
  for (const auto& [name, state] : states.items()) {
    if (state != lb_attachment::kRemoving || next.contains(name)) continue;
    DeregisterFromLoadBalancers(*ctx_, {name}, members, writes);
    auto lb = elb::FindLoadBalancer(*ctx_, name, &writes);
    if (!lb) continue;
    const bool draining = std::any_of(members.begin(), members.end(),
                                      [&](const std::string& id) { return elb::IsAttached(*lb, id); });
    if (draining) next[name] = lb_attachment::kRemoving;
  }
  if (next != states) group["LoadBalancerStates"] = next;
}

std::string GroupController::AttachmentState(const Json& lb, const std::string& current,
                                             const std::vector<std::string>& serving) {
  for (const auto& id : serving) {
    if (!IsRegistered(lb, id)) return lb_attachment::kAdding;
  }
  if (current == lb_attachment::kInService) return current;
  for (const auto& id : serving) {
    if (elb::DescribeInstanceHealth(*ctx_, lb, id).state == "InService") return lb_attachment::kInService;
  }
  return lb_attachment::kAdded;
}

void GroupController::CheckLoadBalancerHealth(Json& group, std::vector<StoreWrite>& writes) {
  if (group["HealthCheckType"] != "ELB" || IsSuspended(group, "HealthCheck")) return;
  const Json states = group.value("LoadBalancerStates", Json::object());
  const int64_t now = ctx_->clock->NowMillis();
  const int64_t grace_ms = group["HealthCheckGracePeriod"].get<int64_t>() * 1000;
  for (const auto& name_json : group["LoadBalancerNames"]) {
    const std::string name = name_json;
    // As in AWS, a load balancer takes instances out of service only once one has passed its health check, so
    // a misconfigured health check does not replace the whole group.
    if (states.value(name, "") != lb_attachment::kInService) continue;
    auto lb = FindGroupLoadBalancer(group, name, writes);
    if (!lb) continue;
    for (auto& [id, m] : group["Instances"].items()) {
      if (m["LifecycleState"] != lifecycle::kInService || m["HealthStatus"] != "Healthy" ||
          now - m["LaunchedAt"].get<int64_t>() < grace_ms || !IsRegistered(*lb, id)) {
        continue;
      }
      auto health = elb::DescribeInstanceHealth(*ctx_, *lb, id);
      if (health.state != "OutOfService" || health.reason_code != "Instance") continue;
      m["HealthStatus"] = "Unhealthy";
      m["HealthCause"] = "an ELB system health check failure";
      spdlog::info("group={} instance={} unhealthy: load_balancer={} reports {}",
                   group["AutoScalingGroupName"].get<std::string>(), id, name, health.description);
    }
  }
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
  if (group["Instances"][id]["LifecycleState"] == lifecycle::kTerminating) return;
  BeginTermination(*ctx_, group, id, cause, writes);
  spdlog::info("group={} terminating instance={}", group["AutoScalingGroupName"].get<std::string>(), id);
}

}  // namespace autopipe

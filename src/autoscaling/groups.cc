#include "autoscaling/groups.h"

#include <algorithm>

#include "common/ids.h"
#include "common/log.h"
#include "common/time_util.h"
#include "ec2/instances.h"
#include "elb/load_balancers.h"

namespace autopipe {

const std::vector<std::string>& ScalingProcessNames() {
  static const std::vector<std::string> kNames = {
      "Launch",           "Terminate",         "HealthCheck",       "ReplaceUnhealthy", "AZRebalance",
      "AlarmNotification", "ScheduledActions", "AddToLoadBalancer", "InstanceRefresh"};
  return kNames;
}

bool IsSuspended(const Json& group, const std::string& process) {
  for (const auto& p : group["SuspendedProcesses"]) {
    if (p["ProcessName"] == process) return true;
  }
  return false;
}

std::string CauseAt(int64_t now) { return "At " + IsoTimeSeconds(now) + " "; }

Json NewActivity(const RegionContext& ctx, const Json& group, const std::string& description,
                 const std::string& cause, const std::string& az) {
  return {{"ActivityId", NewUuid()},
          {"AutoScalingGroupName", group["AutoScalingGroupName"]},
          {"AutoScalingGroupARN", group["AutoScalingGroupARN"]},
          {"Description", description},
          {"Cause", cause},
          {"StartTime", ctx.clock->NowMillis()},
          {"EndTime", nullptr},
          {"StatusCode", "InProgress"},
          {"StatusMessage", ""},
          {"Progress", 50},
          {"Details", Json{{"Subnet ID", ""}, {"Availability Zone", az}}.dump()}};
}

std::vector<StoreWrite> FinishActivity(const RegionContext& ctx, const std::string& activity_id,
                                       const std::string& status_code, const std::string& status_message,
                                       const std::vector<StoreWrite>* pending) {
  auto act = ctx.store->Get(kind::kActivity, activity_id);
  if (pending) {
    for (const auto& w : *pending) {
      if (w.kind == kind::kActivity && w.id == activity_id && w.doc) act = w.doc;
    }
  }
  if (!act || (*act)["StatusCode"] != "InProgress") return {};
  (*act)["StatusCode"] = status_code;
  (*act)["StatusMessage"] = status_message;
  (*act)["Progress"] = 100;
  (*act)["EndTime"] = ctx.clock->NowMillis();
  return {{kind::kActivity, activity_id, *act}};
}

int ActiveCount(const Json& group) {
  int n = 0;
  for (const auto& [id, m] : group["Instances"].items()) n += m["LifecycleState"] != lifecycle::kTerminating;
  return n;
}

std::optional<Json> FindGroupOfInstance(const RegionContext& ctx, const std::string& instance_id) {
  for (const auto& g : ctx.store->List(kind::kAutoScalingGroup)) {
    if ((*g)["Instances"].contains(instance_id)) return *g;
  }
  return std::nullopt;
}

bool IsRegistered(const Json& load_balancer, const std::string& instance_id) {
  return elb::IsAttached(load_balancer, instance_id) && !elb::IsDraining(load_balancer, instance_id);
}

void DeregisterFromLoadBalancers(const RegionContext& ctx, const std::vector<std::string>& load_balancer_names,
                                 const std::vector<std::string>& instance_ids, std::vector<StoreWrite>& writes) {
  for (const auto& name : load_balancer_names) {
    auto lb = elb::FindLoadBalancer(ctx, name, &writes);
    if (!lb) continue;
    std::vector<std::string> registered;
    for (const auto& id : instance_ids) {
      if (IsRegistered(*lb, id)) registered.push_back(id);
    }
    if (registered.empty()) continue;
    // Only registered ids are passed, so this cannot fail on an unknown instance; log anything else.
    Status s = elb::DeregisterInstances(ctx, name, registered, writes);
    if (!s.ok()) spdlog::warn("load_balancer={} deregistering instances failed: {}", name, s.ToString());
  }
}

bool HeldByLoadBalancers(const RegionContext& ctx, const Json& group, const std::string& instance_id,
                         const std::vector<StoreWrite>& writes) {
  for (const auto& name : group["LoadBalancerNames"]) {
    auto lb = elb::FindLoadBalancer(ctx, name.get<std::string>(), &writes);
    if (lb && elb::IsAttached(*lb, instance_id)) return true;
  }
  return false;
}

Json BeginTermination(const RegionContext& ctx, Json& group, const std::string& instance_id,
                      const std::string& cause, std::vector<StoreWrite>& writes) {
  Json& m = group["Instances"][instance_id];
  auto w = FinishActivity(ctx, m.value("ActivityId", ""), "Cancelled", "Instance left the group", &writes);
  writes.insert(writes.end(), w.begin(), w.end());
  Json activity =
      NewActivity(ctx, group, "Terminating EC2 instance: " + instance_id, cause, m["AvailabilityZone"]);
  writes.push_back({kind::kActivity, activity["ActivityId"], activity});
  m["LifecycleState"] = lifecycle::kTerminating;
  m["ActivityId"] = activity["ActivityId"];
  // AWS deregisters an instance before it terminates it, so clients are not sent to a dying instance.
  DeregisterFromLoadBalancers(ctx, group["LoadBalancerNames"].get<std::vector<std::string>>(), {instance_id},
                              writes);
  TerminateOnceDeregistered(ctx, group, instance_id, writes);
  return activity;
}

bool TerminateOnceDeregistered(const RegionContext& ctx, const Json& group, const std::string& instance_id,
                               std::vector<StoreWrite>& writes) {
  if (HeldByLoadBalancers(ctx, group, instance_id, writes)) return false;
  if (auto inst = ctx.store->Get(kind::kInstance, instance_id)) {
    auto t = RequestTermination(ctx, *inst, "Auto Scaling");
    writes.insert(writes.end(), t.begin(), t.end());
  }
  return true;
}

}  // namespace autopipe

#include "autoscaling/groups.h"

#include <algorithm>

#include "common/ids.h"
#include "common/time_util.h"

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

}  // namespace autopipe

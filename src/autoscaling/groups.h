// Auto Scaling groups, launch configurations and activities as store documents, and the small rules the
// service handlers and the group controller share.
//
// A group document holds the API's fields plus "Instances": instance id -> member {InstanceId,
// AvailabilityZone, LifecycleState, HealthStatus, LaunchConfigurationName, InstanceType, ProtectedFromScaleIn,
// LaunchedAt, ActivityId}, "CapacityCause" (why desired capacity last changed, quoted by the next activities),
// and "Deleting" (ForceDelete in progress).
//
// Thread-safety: call with RegionContext::mu held.
#pragma once

#include <string>
#include <vector>

#include "region/context.h"

namespace autopipe {

namespace lifecycle {
inline constexpr char kPending[] = "Pending";
inline constexpr char kInService[] = "InService";
inline constexpr char kTerminating[] = "Terminating";
}  // namespace lifecycle

// The scaling processes Suspend/ResumeProcesses accept.
const std::vector<std::string>& ScalingProcessNames();
bool IsSuspended(const Json& group, const std::string& process);

// A new activity document (InProgress) for a group.
Json NewActivity(const RegionContext& ctx, const Json& group, const std::string& description,
                 const std::string& cause, const std::string& az);
// Marks an activity finished ("Successful", "Failed", "Cancelled"); returns the write, or nothing when the
// activity is unknown or already finished (in the store or in `pending`, the caller's uncommitted batch).
std::vector<StoreWrite> FinishActivity(const RegionContext& ctx, const std::string& activity_id,
                                       const std::string& status_code, const std::string& status_message = "",
                                       const std::vector<StoreWrite>* pending = nullptr);

// "At 2026-11-26T10:00:00Z "
std::string CauseAt(int64_t now_millis);

// Members not on their way out (Pending or InService).
int ActiveCount(const Json& group);

// The group holding an instance, or nullopt.
std::optional<Json> FindGroupOfInstance(const RegionContext& ctx, const std::string& instance_id);

}  // namespace autopipe

// Auto Scaling groups, launch configurations and activities as store documents, and the small rules the
// service handlers and the group controller share.
//
// A group document holds the API's fields plus "Instances": instance id -> member {InstanceId,
// AvailabilityZone, LifecycleState, HealthStatus, HealthCause, LaunchConfigurationName, InstanceType,
// ProtectedFromScaleIn, LaunchedAt, ActivityId}, "CapacityCause" (why desired capacity last changed, quoted by the
// next activities), "Deleting" (ForceDelete in progress), and "LoadBalancerStates": Classic Load Balancer name ->
// attachment state as DescribeLoadBalancers reports it (lb_attachment below), for every name in
// "LoadBalancerNames" and for detached ones still draining (Removing). Documents written before load balancing
// existed have no "LoadBalancerStates": read it with value().
//
// Thread-safety: call with RegionContext::mu held.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "region/context.h"

namespace autopipe {

namespace kind {
inline constexpr char kLaunchConfiguration[] = "launch_configuration";
inline constexpr char kAutoScalingGroup[] = "auto_scaling_group";
inline constexpr char kActivity[] = "activity";
}  // namespace kind

namespace lifecycle {
inline constexpr char kPending[] = "Pending";
inline constexpr char kInService[] = "InService";
inline constexpr char kTerminating[] = "Terminating";
}  // namespace lifecycle

// A group's attachment to a Classic Load Balancer. Adding: some InService member is not registered yet; Added:
// all are; InService: at least one member has passed the load balancer's health check since the attachment
// (it stays InService from then on, and only then do ELB health checks take members out of service, as in AWS);
// Removing: detached, members still draining. The group controller moves these; DescribeLoadBalancers reads them.
namespace lb_attachment {
inline constexpr char kAdding[] = "Adding";
inline constexpr char kAdded[] = "Added";
inline constexpr char kInService[] = "InService";
inline constexpr char kRemoving[] = "Removing";
}  // namespace lb_attachment

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

// ---- Classic Load Balancers -------------------------------------------------------------------------------------
// Load balancers are read as of `writes` (the caller's uncommitted batch); ones that no longer exist are skipped.

// True when the load balancer routes new requests to the instance (registered, not draining).
bool IsRegistered(const Json& load_balancer, const std::string& instance_id);

// Deregisters instances from the named load balancers wherever they are still registered, appending the updated
// load balancers to `writes` (draining, when a load balancer has it on, is then the load-balancer controller's).
void DeregisterFromLoadBalancers(const RegionContext& ctx, const std::vector<std::string>& load_balancer_names,
                                 const std::vector<std::string>& instance_ids, std::vector<StoreWrite>& writes);

// True while any of the group's load balancers has the instance registered or draining.
bool HeldByLoadBalancers(const RegionContext& ctx, const Json& group, const std::string& instance_id,
                         const std::vector<StoreWrite>& writes);

// Starts taking a member out of its group: its current activity is cancelled, a "Terminating EC2 instance"
// activity (returned) starts, the member becomes Terminating and is deregistered from the group's load
// balancers, and its EC2 termination is requested unless a load balancer is still draining it (the group
// controller requests it once draining ends).
Json BeginTermination(const RegionContext& ctx, Json& group, const std::string& instance_id,
                      const std::string& cause, std::vector<StoreWrite>& writes);

// Requests EC2 termination of a Terminating member once no load balancer of its group holds it; true when
// nothing holds it any more.
bool TerminateOnceDeregistered(const RegionContext& ctx, const Json& group, const std::string& instance_id,
                               std::vector<StoreWrite>& writes);

}  // namespace autopipe

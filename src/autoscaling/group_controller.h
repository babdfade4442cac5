// GroupController: keeps each Auto Scaling group at its desired capacity with healthy instances, registered with
// the group's Classic Load Balancers while they serve.
//
// One pass for one group, in order:
//   1. observe  - Pending members whose instance runs are registered with the group's load balancers and become
//                 InService (their launch activity succeeds); members whose instance is not running become
//                 Unhealthy (EC2 health check); Terminating members are deregistered again if anything still
//                 routes to them, their EC2 termination is requested once no group load balancer holds them
//                 (registered or draining), and they leave the group (their activity succeeds) once their
//                 instance is terminated and no load balancer holds them.
//   2. attach   - every InService, Healthy member is registered with every load balancer of the group (only the
//                 missing ones are written, so a settled group writes nothing); each attachment's state
//                 (groups.h lb_attachment) is recomputed, and a detached load balancer (Removing) is forgotten
//                 once none of the members is still draining from it. AddToLoadBalancer suspended: no
//                 registration. A load balancer that no longer exists is skipped.
//   3. elb health - HealthCheckType ELB: an InService member past HealthCheckGracePeriod (from its launch, as
//                 SetInstanceHealth counts it) that a load balancer whose attachment is InService reports
//                 OutOfService for an Instance reason becomes Unhealthy.
//   4. replace  - Unhealthy members are terminated (unless ReplaceUnhealthy or Terminate is suspended); the
//                 capacity step below launches their replacements in the same pass.
//   5. capacity - below desired: launch into the group's AZ with the fewest members, at most kLaunchBatch per
//                 pass; above desired: terminate per the termination policies.
//   6. delete   - a ForceDelete'd group with no members left is removed.
// Every termination (scale-in, replacement, ForceDelete, TerminateInstanceInAutoScalingGroup) deregisters the
// member first and holds the EC2 termination while a load balancer drains it (groups.h BeginTermination).
// Instances whose processes end by themselves within kCrashWindowMillis of launch back the group off (5 s,
// doubling per crashing pass up to 60 s, reset once a later launch outlives the window), so a broken image or
// boot script cannot become a fork loop.
//
// Thread-safety: Reconcile takes RegionContext::mu for the whole step (ControllerRuntime runs it without).
#pragma once

#include <optional>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "autoscaling/groups.h"
#include "ec2/instances.h"
#include "elb/load_balancers.h"
#include "region/context.h"
#include "region/controller.h"

namespace autopipe {

class GroupController : public Controller {
 public:
  explicit GroupController(RegionContext* ctx) : ctx_(ctx), rng_(std::random_device{}()) {}
  const char* name() const override { return "autoscaling-group"; }
  std::vector<std::string> Keys() override;
  std::vector<Watch> Watches() const override {
    // A group's members, activities and load balancers live in other documents: any change to them may concern
    // any group (there are few groups).
    return {{kind::kAutoScalingGroup, SameKey}, {kind::kInstance, nullptr}, {kind::kLoadBalancer, nullptr}};
  }
  ReconcileResult Reconcile(const std::string& group_name) override;

  static constexpr int kLaunchBatch = 50;
  static constexpr int64_t kCrashWindowMillis = 3000;

 private:
  Status ReconcileLocked(const std::string& group_name);
  void Observe(Json& group, std::vector<StoreWrite>& writes);
  // Step 1 for a Terminating member; true when it has left (instance terminated, no load balancer holds it).
  bool ObserveTerminating(const Json& group, const std::string& id, const std::optional<Json>& inst,
                          std::vector<StoreWrite>& writes);
  // Registers the instances with each of the group's load balancers they are not registered with yet.
  void RegisterWithLoadBalancers(const Json& group, const std::vector<std::string>& ids,
                                 std::vector<StoreWrite>& writes);
  void SyncLoadBalancers(Json& group, std::vector<StoreWrite>& writes);
  // The attachment state (groups.h lb_attachment) of a load balancer the group names, given its members that
  // should be registered (`serving`).
  std::string AttachmentState(const Json& lb, const std::string& current, const std::vector<std::string>& serving);
  void CheckLoadBalancerHealth(Json& group, std::vector<StoreWrite>& writes);
  // The load balancer as of `writes`; logs once (at debug) while a load balancer the group names is missing.
  std::optional<Json> FindGroupLoadBalancer(const Json& group, const std::string& name,
                                            const std::vector<StoreWrite>& writes);
  void UpdateCrashBackoff(Json& group, bool crashed, int64_t now);
  void ReplaceUnhealthy(Json& group, std::vector<StoreWrite>& writes);
  Status AdjustCapacity(Json& group, std::vector<StoreWrite>& writes);
  Status Launch(Json& group, const Json& launch_config, const std::string& cause, std::vector<StoreWrite>& writes);
  void Terminate(Json& group, const std::string& instance_id, const std::string& cause,
                 std::vector<StoreWrite>& writes);

  RegionContext* ctx_;
  std::mt19937 rng_;
  std::set<std::string> missing_load_balancers_logged_;  // "<group>/<load balancer>"
};

}  // namespace autopipe

// GroupController: keeps each Auto Scaling group at its desired capacity with healthy instances.
//
// One pass for one group, in order:
//   1. observe  - Pending members whose instance runs become InService (their launch activity succeeds);
//                 members whose instance is not running become Unhealthy (EC2 health check); Terminating
//                 members whose instance is terminated leave the group (their activity succeeds).
//   2. replace  - Unhealthy members are terminated (unless ReplaceUnhealthy or Terminate is suspended); the
//                 capacity step below launches their replacements in the same pass.
//   3. capacity - below desired: launch into the group's AZ with the fewest members, at most kLaunchBatch per
//                 pass; above desired: terminate per the termination policies.
//   4. delete   - a ForceDelete'd group with no members left is removed.
// Instances whose processes end by themselves within kCrashWindowMillis of launch back the group off (5 s,
// doubling per crashing pass up to 60 s, reset once a later launch outlives the window), so a broken image or
// boot script cannot become a fork loop.
//
// Thread-safety: Keys/Reconcile run with RegionContext::mu held (ControllerRunner).
#pragma once

#include <random>

#include "region/controller.h"

namespace autopipe {

class GroupController : public Controller {
 public:
  explicit GroupController(RegionContext* ctx) : ctx_(ctx), rng_(std::random_device{}()) {}
  const char* name() const override { return "autoscaling-group"; }
  std::vector<std::string> Keys() override;
  Status Reconcile(const std::string& group_name) override;

  static constexpr int kLaunchBatch = 50;
  static constexpr int64_t kCrashWindowMillis = 3000;

 private:
  void Observe(Json& group, std::vector<StoreWrite>& writes);
  void UpdateCrashBackoff(Json& group, bool crashed, int64_t now);
  void ReplaceUnhealthy(Json& group, std::vector<StoreWrite>& writes);
  Status AdjustCapacity(Json& group, std::vector<StoreWrite>& writes);
  Status Launch(Json& group, const Json& launch_config, const std::string& cause, std::vector<StoreWrite>& writes);
  void Terminate(Json& group, const std::string& instance_id, const std::string& cause,
                 std::vector<StoreWrite>& writes);

  RegionContext* ctx_;
  std::mt19937 rng_;
};

}  // namespace autopipe

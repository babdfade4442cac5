// InstanceController: makes each EC2 instance's process match its document.
//
//   pending, desired running   -> start `autopipe instance-init` in its own session; State running.
//   running, process gone      -> State stopped (Client.InstanceInitiatedShutdown); leftovers in its process
//                                 group are killed. The instance is then unhealthy to Auto Scaling.
//   desired terminated         -> SIGTERM to the process group, SIGKILL after kKillAfterMillis; State
//                                 shutting-down, then terminated once no process of the group is left.
//   terminated for over an hour -> forgotten, as EC2 forgets terminated instances.
// A restarted server re-adopts running instances: (Pid, PidStartTime) still alive means the same process.
//
// Thread-safety: Keys/Reconcile run with RegionContext::mu held (ControllerRunner).
#pragma once

#include "region/controller.h"

namespace autopipe {

class InstanceController : public Controller {
 public:
  explicit InstanceController(RegionContext* ctx) : ctx_(ctx) {}
  const char* name() const override { return "instance"; }
  std::vector<std::string> Keys() override;
  Status Reconcile(const std::string& instance_id) override;

  static constexpr int64_t kKillAfterMillis = 3000;
  static constexpr int64_t kForgetTerminatedAfterMillis = 3600 * 1000;

 private:
  Status Start(Json& inst);
  RegionContext* ctx_;
};

}  // namespace autopipe

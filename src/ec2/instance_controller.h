// InstanceController: makes each EC2 instance's process match its document.
//
//   pending, desired running   -> start `autopipe instance-init` in its own session; State running.
//   running, process gone      -> State stopped (Client.InstanceInitiatedShutdown); leftovers in its process
//                                 group are killed. The instance is then unhealthy to Auto Scaling.
//   desired terminated         -> State shutting-down, the process group stopped by the supervisor (SIGTERM,
//                                 SIGKILL after kKillAfterMillis), then terminated once none of it is left.
//   terminated for over an hour -> forgotten, as EC2 forgets terminated instances.
// A restarted server re-adopts running instances: (Pid, PidStartTime) still alive means the same process.
//
// Thread-safety: Reconcile takes RegionContext::mu for the whole step (ControllerRuntime runs it without).
#pragma once

#include "ec2/instances.h"
#include "process/supervisor.h"
#include "region/context.h"
#include "region/controller.h"

namespace autopipe {

class InstanceController : public Controller {
 public:
  explicit InstanceController(RegionContext* ctx) : ctx_(ctx), supervisor_(ctx->launcher, ctx->clock) {}
  const char* name() const override { return "instance"; }
  std::vector<std::string> Keys() override;
  std::vector<Watch> Watches() const override { return {{kind::kInstance, SameKey}}; }
  ReconcileResult Reconcile(const std::string& instance_id) override;

  static constexpr int64_t kKillAfterMillis = 3000;
  static constexpr int64_t kForgetTerminatedAfterMillis = 3600 * 1000;
  // Instances are not restarted by the supervisor (a dead instance stays stopped, as on EC2; its group
  // replaces it): only the stop deadline applies.
  static constexpr SupervisionPolicy kStopPolicy{.kill_after_ms = kKillAfterMillis};

 private:
  Status ReconcileLocked(const std::string& instance_id);
  Status Start(Json& inst);
  RegionContext* ctx_;
  Supervisor supervisor_;
};

}  // namespace autopipe

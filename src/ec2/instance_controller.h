// InstanceController: makes each EC2 instance's process match its document.
//
//   pending, desired running   -> start `autopipe instance-init` in its own session (and its own cgroup when the
//                                 launcher has them); State running. UserData runs at the first boot only.
//   running, process gone      -> State stopped, desired stopped (Client.InstanceInitiatedShutdown); leftovers
//                                 of its tree are killed. The instance is then unhealthy to Auto Scaling.
//   desired stopped            -> stopping: the process tree stopped by the supervisor (SIGTERM, SIGKILL after
//                                 kKillAfterMillis, or at once with StopForce), then stopped once none is left.
//   stopped, desired running   -> pending, and booted again as above (StartInstances).
//   running, RebootRequestedAt -> the tree is stopped and booted again; State stays running (RebootInstances).
//   desired terminated         -> State shutting-down, the process tree stopped by the supervisor (SIGTERM,
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

  static constexpr int64_t kTransitionPollMillis = 200;

 private:
  Status ReconcileLocked(const std::string& instance_id, bool* again);
  // Stops the recorded process tree (honouring StopForce); true once none of it is left (then forgotten).
  bool StopProcesses(Json& inst);
  Status Start(Json& inst);
  RegionContext* ctx_;
  Supervisor supervisor_;
};

}  // namespace autopipe

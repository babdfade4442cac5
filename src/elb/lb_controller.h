// LoadBalancerController: runs each Classic Load Balancer's data plane, one `autopipe lb` node process per
// enabled AZ, and keeps every node's config in step with the load_balancer document (elb/load_balancers.h).
//
// One pass for one load balancer (key = LoadBalancerName), in order:
//   1. nodes     - for each AZ of the load balancer, its load_balancer_node document "<name>/<az>":
//                  - builds the node's config (addresses, listeners, back ends: the registered and draining
//                    instances that run in an enabled AZ, only the node's own AZ unless cross-zone is on,
//                    health check, idle timeout, draining, access log) and compares it with the last config
//                    the node was given (NodeDir/config.json); when they differ, bumps the node's
//                    ConfigVersion, rewrites config.json atomically and sends a live node SIGHUP;
//                  - no process, or its process died: launches `autopipe lb --config NodeDir/config.json`,
//                    unless crash back-off holds it (a node that died within kCrashWindowMillis of its launch
//                    waits 5 s, doubling per crash up to 60 s; reset once a launch outlives the window);
//                  - process alive (after a server restart too: same (Pid, PidStartTime)): watched, left alone.
//   2. draining  - a Deregistering instance leaves the load balancer once its draining timeout (Until) has
//                  passed, once its instance is gone or not running, or once every node reports (a status
//                  fresher than lb::kStatusStaleMillis, of a config at least as new as the node's
//                  ConfigVersion) no request in flight on it. The load balancer's ConfigVersion is bumped and
//                  step 1 runs again so the nodes forget it at once. Auto Scaling waits for this before it
//                  terminates a drained instance.
//   3. retire    - a node whose AZ is no longer enabled, or whose load balancer is gone, gets SIGTERM
//                  (State stopping), SIGKILL after kKillAfterMillis, and once no process of its group is left
//                  its document and NodeDir are removed (and the load balancer's directory with the last node
//                  of a deleted load balancer).
// Documents are committed in one batch, and only when they changed, under RegionContext::mu (nothing else of a
// pass holds it). Files and signals come first, so a pass
// interrupted before its commit is simply redone: an unchanged config is neither rewritten nor signalled again.
//
// Thread-safety: Reconcile reads, writes files and signals with no lock held, and takes RegionContext::mu
// only to commit (see Commit).
#pragma once

#include <optional>
#include <vector>

#include "ec2/instances.h"
#include "elb/load_balancers.h"
#include "lb/node_files.h"
#include "process/supervisor.h"
#include "region/context.h"
#include "region/controller.h"

namespace autopipe {

namespace lb_node_state {
inline constexpr char kRunning[] = "running";
inline constexpr char kStopping[] = "stopping";
}  // namespace lb_node_state

class LoadBalancerController : public Controller {
 public:
  explicit LoadBalancerController(RegionContext* ctx) : ctx_(ctx), supervisor_(ctx->launcher, ctx->clock) {}
  const char* name() const override { return "load-balancer"; }
  std::vector<std::string> Keys() override;
  std::vector<Watch> Watches() const override {
    // A node's id is "<load balancer>/<az>"; the instances behind a load balancer may change its config.
    return {{kind::kLoadBalancer, SameKey},
            {kind::kLoadBalancerNode, [](const std::string& id) -> std::optional<std::string> {
               return id.substr(0, id.find('/'));
             }},
            {kind::kInstance, nullptr}};
  }
  ReconcileResult Reconcile(const std::string& name) override;

  static constexpr int64_t kKillAfterMillis = 10'000;
  static constexpr int64_t kCrashWindowMillis = 3000;
  static constexpr int64_t kFirstBackoffMillis = 5000;
  static constexpr int64_t kMaxBackoffMillis = 60'000;
  static constexpr SupervisionPolicy kPolicy{.crash_window_ms = kCrashWindowMillis,
                                             .first_backoff_ms = kFirstBackoffMillis,
                                             .max_backoff_ms = kMaxBackoffMillis,
                                             .kill_after_ms = kKillAfterMillis};

 private:
  Status Commit(const std::string& name, const Doc& read, const std::optional<Json>& lb,
                std::vector<StoreWrite> node_writes);
  static Json NewNode(const std::string& name, const std::string& az, int64_t now);
  // Step 1 for the node of one enabled AZ: its config file, signal and process.
  Status SyncNode(const Json& lb, Json& node);
  // Rewrites config.json when `config` differs from what the node was last given; true when it did.
  Result<bool> UpdateConfigFile(lb::NodeConfig config, Json& node);
  void EnsureProcess(Json& node, bool config_changed);
  LaunchSpec NodeLaunchSpec(const Json& node) const;
  // Step 2: removes finished drains from `lb`; true when any was removed.
  bool FinishDraining(Json& lb, const std::vector<Json>& nodes);
  // Step 3 for a node no longer wanted; true when its document should be deleted.
  bool RetireNode(Json& node);
  lb::NodeConfig BuildConfig(const Json& lb, const Json& node) const;
  std::string NodeDirOf(const Json& node) const;

  RegionContext* ctx_;
  Supervisor supervisor_;
};

}  // namespace autopipe

// Recorded operations: slow, multi-step work (a promotion, a backup, a rebuild: seconds to minutes) that runs
// outside the region lock and survives a kill -9 of the server.
//
// An operation is a document of kind "operation":
//   {Id, Type, Resource, State, Step, Data, Error, CreatedAt, UpdatedAt}
// State is running -> succeeded, or running -> undoing -> failed. Step is the index of the step to run next
// (while undoing: of the step to undo next). Data is what the steps recorded for the steps after them.
//
// OperationController runs them, one step per Reconcile (key = operation id):
//   1. reads the document (no lock: documents are immutable snapshots);
//   2. runs that step with no lock held. Steps must be idempotent: the step index is committed only after a
//      step succeeds, so a server killed during a step runs that same step again after its restart (and never
//      a step before it);
//   3. under the region lock, records the outcome if the document is still the one it read: Done -> Step + 1
//      (or succeeded after the last), Data as the step left it; Wait(d) -> the same step again after d (the
//      step is waiting for something: a replica to catch up); Fail(status) -> undoing: the undo of every step
//      already done runs, last first, then failed with the error. Steps without an undo are skipped.
// Finished operations are forgotten after kForgetAfterMillis.
//
// Modules name their operation types (ServiceModule::operation_types); StartOperation adds an operation's
// document to a caller's commit, so starting it is atomic with the change that asks for it.
//
// Thread-safety: OperationController as any Controller (ControllerRuntime); several operations run at once,
// one step of one operation at a time.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "region/context.h"
#include "region/controller.h"

namespace autopipe {

namespace kind {
inline constexpr char kOperation[] = "operation";
}  // namespace kind

namespace operation_state {
inline constexpr char kRunning[] = "running";
inline constexpr char kUndoing[] = "undoing";
inline constexpr char kSucceeded[] = "succeeded";
inline constexpr char kFailed[] = "failed";
}  // namespace operation_state

// What a step gives back.
class StepResult {
 public:
  enum class Kind { kDone, kWait, kFail };
  static StepResult Done() { return StepResult(Kind::kDone); }
  static StepResult Wait(std::chrono::milliseconds d) {
    StepResult r(Kind::kWait);
    r.wait_ = d;
    return r;
  }
  static StepResult Fail(Status error) {
    StepResult r(Kind::kFail);
    r.error_ = std::move(error);
    return r;
  }
  Kind kind() const { return kind_; }
  std::chrono::milliseconds wait() const { return wait_; }
  const Status& error() const { return error_; }

 private:
  explicit StepResult(Kind k) : kind_(k) {}
  Kind kind_;
  std::chrono::milliseconds wait_{0};
  Status error_;
};

// What a step sees: the region, the operation's resource, and its Data to read and extend.
struct StepContext {
  RegionContext* region;
  std::string operation_id;
  std::string resource;
  Json& data;
};

struct OperationType {
  struct Step {
    std::string name;
    std::function<StepResult(StepContext&)> run;
    std::function<Status(StepContext&)> undo;  // nullptr: nothing to undo
  };
  std::string name;
  std::vector<Step> steps;
};

// Adds a new operation of `type` on `resource` to `writes` (commit them to start it); returns its id.
std::string StartOperation(const RegionContext& ctx, std::vector<StoreWrite>& writes, const std::string& type,
                           const std::string& resource, Json data = Json::object());

class OperationController : public Controller {
 public:
  static constexpr int64_t kForgetAfterMillis = 3600 * 1000;

  OperationController(RegionContext* ctx, std::vector<OperationType> types);
  const char* name() const override { return "operation"; }
  std::vector<std::string> Keys() override;
  std::vector<Watch> Watches() const override { return {{kind::kOperation, SameKey}}; }
  ReconcileResult Reconcile(const std::string& id) override;
  int workers() const override { return 4; }

 private:
  // Commits `op` if its document is still the one the step started from (documents are immutable: the same
  // pointer means unchanged); otherwise someone else moved it, and the key is looked at again.
  ReconcileResult Record(const std::string& id, const Doc& read, Json op, ReconcileResult then);

  RegionContext* ctx_;
  std::map<std::string, OperationType> types_;
};

}  // namespace autopipe

#include "region/operation.h"

#include "common/ids.h"
#include "common/log.h"

namespace autopipe {

std::string StartOperation(const RegionContext& ctx, std::vector<StoreWrite>& writes, const std::string& type,
                           const std::string& resource, Json data) {
  const std::string id = "op-" + NewUuid();
  const int64_t now = ctx.clock->NowMillis();
  Json op = {{"Id", id},        {"Type", type},   {"Resource", resource}, {"State", operation_state::kRunning},
             {"Step", 0},       {"Data", std::move(data)}, {"Error", ""},
             {"CreatedAt", now}, {"UpdatedAt", now}};
  writes.push_back({kind::kOperation, id, std::move(op)});
  return id;
}

OperationController::OperationController(RegionContext* ctx, std::vector<OperationType> types) : ctx_(ctx) {
  for (auto& t : types) types_[t.name] = std::move(t);
}

std::vector<std::string> OperationController::Keys() { return ctx_->store->Ids(kind::kOperation); }

ReconcileResult OperationController::Record(const std::string& id, const Doc& read, Json op, ReconcileResult then) {
  op["UpdatedAt"] = ctx_->clock->NowMillis();
  std::lock_guard lock(*ctx_->mu);
  if (ctx_->store->GetVersioned(kind::kOperation, id).doc != read) return ReconcileResult::Done();  // changed: its
                                                                                                    // change requeues it
  Status st = ctx_->store->Put(kind::kOperation, id, std::move(op));
  if (!st.ok()) return st;
  return then;
}

ReconcileResult OperationController::Reconcile(const std::string& id) {
  const Doc read = ctx_->store->GetVersioned(kind::kOperation, id).doc;
  if (!read) return ReconcileResult::Done();
  const Json& doc = *read;
  const std::string state = doc["State"];
  const int64_t now = ctx_->clock->NowMillis();

  if (state == operation_state::kSucceeded || state == operation_state::kFailed) {
    const int64_t left = doc["UpdatedAt"].get<int64_t>() + kForgetAfterMillis - now;
    if (left > 0) return ReconcileResult::After(std::chrono::milliseconds(left));
    std::lock_guard lock(*ctx_->mu);
    if (ctx_->store->GetVersioned(kind::kOperation, id).doc != read) return ReconcileResult::Done();
    return ctx_->store->Delete(kind::kOperation, id);
  }

  Json op = doc;
  auto type = types_.find(doc["Type"].get<std::string>());
  if (type == types_.end()) {
    op["State"] = operation_state::kFailed;
    op["Error"] = "unknown operation type " + doc["Type"].get<std::string>();
    spdlog::error("operation={} {}", id, op["Error"].get<std::string>());
    return Record(id, read, std::move(op), ReconcileResult::Done());
  }
  const auto& steps = type->second.steps;
  const int step = doc["Step"].get<int>();
  StepContext sc{ctx_, id, doc["Resource"].get<std::string>(), op["Data"]};

  if (state == operation_state::kUndoing) {
    if (step < 0) {
      op["State"] = operation_state::kFailed;
      spdlog::warn("operation={} type={} failed and was undone: {}", id, type->first, op["Error"].get<std::string>());
      return Record(id, read, std::move(op), ReconcileResult::Done());
    }
    const auto& undo = steps[static_cast<size_t>(step)].undo;
    Status st = undo ? undo(sc) : Status::Ok();
    if (!st.ok()) return st;  // retried with back-off: an undo must finish
    op["Step"] = step - 1;
    return Record(id, read, std::move(op), ReconcileResult::After(std::chrono::milliseconds(0)));
  }

  if (step >= static_cast<int>(steps.size())) {
    op["State"] = operation_state::kSucceeded;
    spdlog::info("operation={} type={} resource={} succeeded", id, type->first, doc["Resource"].get<std::string>());
    return Record(id, read, std::move(op), ReconcileResult::Done());
  }
  StepResult r = steps[static_cast<size_t>(step)].run(sc);
  switch (r.kind()) {
    case StepResult::Kind::kDone:
      op["Step"] = step + 1;
      return Record(id, read, std::move(op), ReconcileResult::After(std::chrono::milliseconds(0)));
    case StepResult::Kind::kWait:  // nothing to record: the same step runs again (no fsync per poll)
      return ReconcileResult::After(r.wait());
    case StepResult::Kind::kFail:
      op["State"] = operation_state::kUndoing;
      op["Step"] = step - 1;
      op["Error"] = r.error().message();
      spdlog::warn("operation={} type={} step={} failed: {}; undoing", id, type->first, steps[step].name,
                   r.error().ToString());
      return Record(id, read, std::move(op), ReconcileResult::After(std::chrono::milliseconds(0)));
  }
  return ReconcileResult::Done();
}

}  // namespace autopipe

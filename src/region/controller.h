// Controllers: one per resource kind, all alike. Each is level-triggered: Reconcile(key) looks at the desired
// state in the store and at what it observes (processes, other resources), and takes bounded, idempotent steps
// toward the desired state, writing status back. It never receives the event that caused it to run, so a
// missed or repeated pass costs nothing and a crash at any point is recovered by running the pass again.
//
// ControllerRunner drives them: a pass over every key of every controller, in registration order, every
// `period` or as soon as Wake() is called (API writes and process exits wake it), repeated at once while a
// pass changes the store (at most kMaxPassesPerWake times); Keys() and each Reconcile run with RegionContext::mu held (taken
// per key, so an API call waits for at most one Reconcile). Errors are logged
// and counted and the key is simply looked at again on the next pass.
//
// Thread-safety: Wake() is safe from any thread; Start/Stop from the owner only.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "common/status.h"
#include "region/context.h"

namespace autopipe {

class Controller {
 public:
  virtual ~Controller() = default;
  virtual const char* name() const = 0;
  // The keys to look at in this pass (called with mu held).
  virtual std::vector<std::string> Keys() = 0;
  // One bounded step for one key (called with mu held).
  virtual Status Reconcile(const std::string& key) = 0;
};

class ControllerRunner {
 public:
  ControllerRunner(RegionContext* ctx, std::chrono::milliseconds period) : ctx_(ctx), period_(period) {}
  ~ControllerRunner() { Stop(); }

  void Add(std::unique_ptr<Controller> c) { controllers_.push_back(std::move(c)); }
  void Start();
  void Stop();
  void Wake();
  // One pass over everything, on the caller's thread (tests, and the runner's loop).
  void RunPass();
  uint64_t errors() const { return errors_.load(); }
  static constexpr int kMaxPassesPerWake = 20;
  uint64_t passes() const { return passes_.load(); }

 private:
  RegionContext* ctx_;
  std::chrono::milliseconds period_;
  std::vector<std::unique_ptr<Controller>> controllers_;
  std::thread thread_;
  std::mutex wake_mu_;
  std::condition_variable wake_cv_;
  bool woken_ = false;     // guarded by wake_mu_
  bool stopping_ = false;  // guarded by wake_mu_
  std::atomic<uint64_t> errors_{0};
  std::atomic<uint64_t> passes_{0};
};

}  // namespace autopipe

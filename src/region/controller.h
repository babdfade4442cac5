// Controllers and the runtime that drives them, in the shape of Kubernetes' controller-runtime.
//
// A controller owns one resource kind. Reconcile(key) is level-triggered: it looks at the desired state in the
// store and at what it observes (processes, files, other resources), takes bounded, idempotent steps toward
// the desired state and writes status back. It never receives the event that caused it to run, so a missed or
// repeated call costs nothing and a crash at any point is repaired by calling it again.
//
// ControllerRuntime gives every controller its own work queue and worker thread(s):
//   - a key is in a queue at most once, and never reconciled by two workers at once (a key added while it is
//     being reconciled runs again right after);
//   - Reconcile's outcome decides what happens next, in one place (Finish):
//       error              -> the key runs again after a per-key back-off (kFirstBackoff doubling to
//                             kMaxBackoff), reset by the key's next success; counted in errors();
//       requeue after D    -> the key runs again after D (an operation waiting for something);
//       done               -> the key waits for the next event;
//   - events: store changes enqueue the keys a controller watches (Watches()), Wake() and process exits
//     enqueue every key of every controller, and a resync every `resync` enqueues everything too, so anything
//     missed is caught within one period.
// The runtime holds no lock while a controller runs: a controller takes RegionContext::mu itself around its
// short read-modify-write sections, and does slow work (seconds: a promotion, a backup) outside it, so one
// slow controller never delays another controller or an API call.
//
// Thread-safety: Enqueue/EnqueueAll/OnStoreChange/Wake are safe from any thread (store subscribers included:
// they only queue). Add() before Start(); Start/Stop/RunPass from the owner only.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "common/status.h"

namespace autopipe {

// What one Reconcile call asks for next. Built from a Status (OK = done), or with After() to run again later.
class ReconcileResult {
 public:
  ReconcileResult() = default;
  ReconcileResult(Status status) : status_(std::move(status)) {}  // NOLINT(runtime/explicit): OK means done
  static ReconcileResult Done() { return {}; }
  static ReconcileResult After(std::chrono::milliseconds delay) {
    ReconcileResult r;
    r.requeue_after_ = delay;
    return r;
  }
  const Status& status() const { return status_; }
  const std::optional<std::chrono::milliseconds>& requeue_after() const { return requeue_after_; }

 private:
  Status status_;
  std::optional<std::chrono::milliseconds> requeue_after_;
};

class Controller {
 public:
  // A document kind this controller reacts to, and which of its keys a change of one document concerns.
  struct Watch {
    std::string kind;
    // Maps a changed document's id to this controller's key; nullptr (or nullopt) means every key.
    std::function<std::optional<std::string>(const std::string& id)> key_of;
  };
  static std::optional<std::string> SameKey(const std::string& id) { return id; }

  virtual ~Controller() = default;
  virtual const char* name() const = 0;
  // Every key this controller has (for resync). Called with no lock held.
  virtual std::vector<std::string> Keys() = 0;
  // Store changes that should run this controller, and for which keys.
  virtual std::vector<Watch> Watches() const = 0;
  // One bounded step for one key. Called with no lock held, never twice at once for the same key.
  virtual ReconcileResult Reconcile(const std::string& key) = 0;
  // How many keys of this controller may be reconciled at once.
  virtual int workers() const { return 1; }
};

class ControllerRuntime {
 public:
  static constexpr std::chrono::milliseconds kFirstBackoff{50};
  static constexpr std::chrono::milliseconds kMaxBackoff{10'000};

  explicit ControllerRuntime(std::chrono::milliseconds resync) : resync_(resync) {}
  ~ControllerRuntime() { Stop(); }

  void Add(std::unique_ptr<Controller> c);
  void Start();
  void Stop();

  void Enqueue(const std::string& controller, const std::string& key);
  void EnqueueAll();
  void Wake() { EnqueueAll(); }
  // A store change: queues the keys of every controller watching `kind`.
  void OnStoreChange(const std::string& kind, const std::string& id);

  // Reconciles every key of every controller once, in registration order, on the caller's thread (start-up,
  // and unit tests that step a region deterministically). Requeue delays are ignored; errors are counted.
  void RunPass();

  uint64_t errors() const { return errors_.load(); }
  uint64_t reconciles() const { return reconciles_.load(); }

 private:
  // One controller's queue: the workqueue semantics of controller-runtime (dirty/processing sets).
  struct Queue {
    std::unique_ptr<Controller> controller;
    std::mutex mu;
    std::condition_variable cv;
    std::deque<std::string> ready;                    // guarded by mu
    std::set<std::string> dirty;                      // queued or to run again; guarded by mu
    std::set<std::string> processing;                 // guarded by mu
    std::map<std::string, int> failures;              // consecutive errors per key; guarded by mu
    std::vector<std::thread> workers;
  };

  void Push(Queue& q, const std::string& key);
  void PushLater(Queue& q, const std::string& key, std::chrono::milliseconds delay);
  void Work(Queue& q);
  void Finish(Queue& q, const std::string& key, const ReconcileResult& r);
  void TimerLoop();
  Queue* Find(const std::string& controller);

  const std::chrono::milliseconds resync_;
  std::vector<std::unique_ptr<Queue>> queues_;  // fixed after Start()

  // Delayed keys (requeue-after, back-off) and the resync, on one timer thread.
  using Clock = std::chrono::steady_clock;
  std::mutex timer_mu_;
  std::condition_variable timer_cv_;
  std::multimap<Clock::time_point, std::pair<Queue*, std::string>> delayed_;  // guarded by timer_mu_
  bool timer_changed_ = false;                                                // guarded by timer_mu_
  std::atomic<bool> stopping_{false};  // set under timer_mu_ and each q.mu before their waiters are notified
  std::thread timer_;

  std::atomic<uint64_t> errors_{0};
  std::atomic<uint64_t> reconciles_{0};
};

}  // namespace autopipe

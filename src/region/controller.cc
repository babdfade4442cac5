#include "region/controller.h"

#include <algorithm>

#include "common/log.h"

namespace autopipe {

void ControllerRuntime::Add(std::unique_ptr<Controller> c) {
  auto q = std::make_unique<Queue>();
  q->controller = std::move(c);
  queues_.push_back(std::move(q));
}

ControllerRuntime::Queue* ControllerRuntime::Find(const std::string& controller) {
  for (auto& q : queues_) {
    if (controller == q->controller->name()) return q.get();
  }
  return nullptr;
}

void ControllerRuntime::Start() {
  stopping_ = false;
  for (auto& q : queues_) {
    for (int i = 0; i < std::max(1, q->controller->workers()); ++i) {
      q->workers.emplace_back([this, qp = q.get()] { Work(*qp); });
    }
  }
  timer_ = std::thread([this] { TimerLoop(); });
}

void ControllerRuntime::Stop() {
  {
    std::lock_guard lock(timer_mu_);
    stopping_ = true;
  }
  timer_cv_.notify_all();
  for (auto& q : queues_) {
    { std::lock_guard lock(q->mu); }  // a worker between its check and its wait sees stopping_ after this
    q->cv.notify_all();
  }
  for (auto& q : queues_) {
    for (auto& t : q->workers) t.join();
    q->workers.clear();
  }
  if (timer_.joinable()) timer_.join();
}

void ControllerRuntime::Push(Queue& q, const std::string& key) {
  {
    std::lock_guard lock(q.mu);
    // Already waiting, or running and already marked to run again: nothing to add.
    if (!q.dirty.insert(key).second) return;
    // Running now: it runs again when the current call finishes (Finish sees it dirty).
    if (q.processing.count(key)) return;
    q.ready.push_back(key);
  }
  q.cv.notify_one();
}

void ControllerRuntime::PushLater(Queue& q, const std::string& key, std::chrono::milliseconds delay) {
  if (delay.count() <= 0) return Push(q, key);
  {
    std::lock_guard lock(timer_mu_);
    delayed_.emplace(Clock::now() + delay, std::make_pair(&q, key));
    timer_changed_ = true;  // the timer thread may be sleeping past this deadline: make it look again
  }
  timer_cv_.notify_all();
}

void ControllerRuntime::Enqueue(const std::string& controller, const std::string& key) {
  if (Queue* q = Find(controller)) Push(*q, key);
}

void ControllerRuntime::EnqueueAll() {
  for (auto& q : queues_) {
    for (const auto& key : q->controller->Keys()) Push(*q, key);
  }
}

void ControllerRuntime::OnStoreChange(const std::string& kind, const std::string& id) {
  for (auto& q : queues_) {
    for (const auto& watch : q->controller->Watches()) {
      if (watch.kind != kind) continue;
      std::optional<std::string> key = watch.key_of ? watch.key_of(id) : std::nullopt;
      if (key) {
        Push(*q, *key);
      } else {
        for (const auto& k : q->controller->Keys()) Push(*q, k);
      }
    }
  }
}

namespace {

ReconcileResult RunOne(Controller& c, const std::string& key) {
  try {
    return c.Reconcile(key);
  } catch (const std::exception& e) {  // a bug, not bad input: report it and retry with back-off
    return Status::Internal(std::string("reconcile threw: ") + e.what());
  }
}

}  // namespace

void ControllerRuntime::Work(Queue& q) {
  while (true) {
    std::string key;
    {
      std::unique_lock lock(q.mu);
      q.cv.wait(lock, [&] { return stopping_ || !q.ready.empty(); });
      if (stopping_) return;
      key = std::move(q.ready.front());
      q.ready.pop_front();
      q.dirty.erase(key);
      q.processing.insert(key);
    }
    ReconcileResult r = RunOne(*q.controller, key);
    Finish(q, key, r);
  }
}

// The one place that maps a Reconcile outcome to what happens next.
void ControllerRuntime::Finish(Queue& q, const std::string& key, const ReconcileResult& r) {
  ++reconciles_;
  std::optional<std::chrono::milliseconds> again;
  bool run_now = false;
  {
    std::lock_guard lock(q.mu);
    q.processing.erase(key);
    if (!r.status().ok()) {
      int failures = ++q.failures[key];
      again = std::min(kMaxBackoff, kFirstBackoff * (1 << std::min(failures - 1, 10)));
    } else {
      q.failures.erase(key);
      again = r.requeue_after();
    }
    // Changed while it ran: run again now (the dirty mark was set by Push while processing).
    if (q.dirty.count(key)) {
      q.ready.push_back(key);
      run_now = true;
    }
  }
  if (run_now) q.cv.notify_one();
  if (!r.status().ok()) {
    ++errors_;
    spdlog::warn("controller={} key={} error={} retry_in_ms={}", q.controller->name(), key, r.status().ToString(),
                 again->count());
  }
  if (again && !run_now) PushLater(q, key, *again);
}

void ControllerRuntime::TimerLoop() {
  std::unique_lock lock(timer_mu_);
  auto next_resync = Clock::now() + resync_;
  while (!stopping_) {
    auto wake_at = next_resync;
    if (!delayed_.empty()) wake_at = std::min(wake_at, delayed_.begin()->first);
    timer_cv_.wait_until(lock, wake_at, [&] { return stopping_.load() || timer_changed_ || Clock::now() >= wake_at; });
    if (stopping_) return;
    timer_changed_ = false;
    std::vector<std::pair<Queue*, std::string>> due;
    const auto now = Clock::now();
    while (!delayed_.empty() && delayed_.begin()->first <= now) {
      due.push_back(std::move(delayed_.begin()->second));
      delayed_.erase(delayed_.begin());
    }
    const bool resync = now >= next_resync;
    if (resync) next_resync = now + resync_;
    lock.unlock();
    for (auto& [q, key] : due) Push(*q, key);
    if (resync) EnqueueAll();
    lock.lock();
  }
}

void ControllerRuntime::RunPass() {
  for (auto& q : queues_) {
    for (const auto& key : q->controller->Keys()) {
      ReconcileResult r = RunOne(*q->controller, key);
      ++reconciles_;
      if (!r.status().ok()) {
        ++errors_;
        spdlog::warn("controller={} key={} error={}", q->controller->name(), key, r.status().ToString());
      }
    }
  }
}

}  // namespace autopipe

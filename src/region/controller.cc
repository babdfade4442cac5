#include "region/controller.h"

#include "common/log.h"

namespace autopipe {

void ControllerRunner::Start() {
  thread_ = std::thread([this] {
    while (true) {
      {
        std::unique_lock lock(wake_mu_);
        wake_cv_.wait_for(lock, period_, [this] { return woken_ || stopping_; });
        if (stopping_) return;
        woken_ = false;
      }
      // A pass that changed something usually enables the next step (a launched instance becomes InService,
      // a terminated one leaves its group): go again at once instead of waiting a period, a bounded number
      // of times.
      for (int i = 0; i < kMaxPassesPerWake; ++i) {
        uint64_t before = ctx_->store->Revision();
        RunPass();
        if (ctx_->store->Revision() == before) break;
      }
    }
  });
}

void ControllerRunner::Stop() {
  {
    std::lock_guard lock(wake_mu_);
    stopping_ = true;
  }
  wake_cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void ControllerRunner::Wake() {
  {
    std::lock_guard lock(wake_mu_);
    woken_ = true;
  }
  wake_cv_.notify_all();
}

void ControllerRunner::RunPass() {
  for (auto& c : controllers_) {
    std::vector<std::string> keys;
    {
      std::lock_guard lock(*ctx_->mu);
      keys = c->Keys();
    }
    // The lock is taken per key so API calls wait at most one Reconcile, not a whole pass.
    for (const auto& key : keys) {
      Status st;
      try {
        std::lock_guard lock(*ctx_->mu);
        st = c->Reconcile(key);
      } catch (const std::exception& e) {
        st = Status::Internal(e.what());
      }
      if (!st.ok()) {
        ++errors_;
        spdlog::warn("controller={} key={} error={}", c->name(), key, st.ToString());
      }
    }
  }
  ++passes_;
}

}  // namespace autopipe

// Clock: the one source of "now" for everything with a timer (grace periods, cooldowns, SigV4 skew, activity
// timestamps), so tests can drive minutes of AWS behaviour in milliseconds.
//
// Thread-safety: SystemClock is stateless; FakeClock is safe to read and advance from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

namespace autopipe {

class Clock {
 public:
  virtual ~Clock() = default;
  // Milliseconds since the Unix epoch.
  virtual int64_t NowMillis() const = 0;
  int64_t NowSeconds() const { return NowMillis() / 1000; }
};

class SystemClock : public Clock {
 public:
  int64_t NowMillis() const override {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }
};

class FakeClock : public Clock {
 public:
  explicit FakeClock(int64_t start_millis = 1'700'000'000'000) : now_(start_millis) {}
  int64_t NowMillis() const override { return now_.load(); }
  void Advance(int64_t millis) { now_ += millis; }
  void Set(int64_t millis) { now_ = millis; }

 private:
  std::atomic<int64_t> now_;
};

}  // namespace autopipe

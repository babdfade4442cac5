// HealthChecker: Route 53's health checkers, run for real from the global process. Each health check (HTTP or
// TCP, on IPAddress:Port) is probed every RequestInterval seconds (the first probe at once): TCP passes when the
// connection is made within 10 s; HTTP when it connects within 4 s and the status line arrives within 2 s more
// with a 2xx or 3xx code. FailureThreshold failures in a row make a healthy check unhealthy, as many passes in a
// row make it healthy again; a new check starts healthy (as Route 53 treats one it has no data for yet).
// on_change is called (on a prober thread, no lock held) whenever a check's verdict flips, so DNS can follow.
//
// Thread-safety: Sync, State and Healthy from any thread; Start/Stop from one thread.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace autopipe::route53 {

struct HealthCheckConfig {
  std::string id;
  std::string type;  // HTTP or TCP
  std::string ip;
  int port = 80;
  std::string resource_path = "/";
  std::string fqdn;  // the Host header (HTTP), empty: the IP
  int interval_seconds = 30;
  int failure_threshold = 3;
};

struct HealthState {
  bool healthy = true;
  std::string last_report;     // "Success: HTTP Status Code 200, OK" / "Failure: Connection refused ..."
  int64_t checked_at_ms = 0;   // 0: not probed yet
  int failures_in_row = 0;
  int passes_in_row = 0;
};

class HealthChecker {
 public:
  explicit HealthChecker(std::function<void()> on_change, int probe_threads = 4);
  ~HealthChecker();
  void Start();
  void Stop();

  // The checks to run from now on (added ones are probed at once; removed ones forgotten; a changed config keeps
  // its state).
  void Sync(const std::vector<HealthCheckConfig>& checks);
  std::optional<HealthState> State(const std::string& id) const;
  // Unknown ids count as healthy.
  bool Healthy(const std::string& id) const;

  // One probe, synchronously (exposed for tests): {passed, report}.
  static std::pair<bool, std::string> Probe(const HealthCheckConfig& check);

 private:
  struct Entry {
    HealthCheckConfig config;
    HealthState state;
    int64_t next_due_ms = 0;
    bool in_flight = false;
  };
  void SchedulerMain();
  void ProberMain();

  std::function<void()> on_change_;
  int probe_threads_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::string, Entry> checks_;  // guarded by mu_
  std::deque<std::string> due_;          // guarded by mu_
  bool stopping_ = false;                // guarded by mu_
  std::vector<std::thread> threads_;
};

}  // namespace autopipe::route53

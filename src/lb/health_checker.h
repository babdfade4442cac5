// Active health checks of a node's back ends, as ELB runs them: every `interval` each registered back end
// (healthy or not) is checked; TCP passes when the connection opens, HTTP when a 200 arrives within the
// timeout. A back end turns healthy after its first pass when new (unknown), else after `healthy_threshold`
// passes in a row, and unhealthy after `unhealthy_threshold` failures in a row. New back ends that have not
// passed yet (an instance whose service is still starting) and back ends ejected by the data path (a connection
// to them failed) are re-checked every second, so they serve as soon as they answer.
//
// Thread-safety: runs its own thread; Start/Stop from the owner only. Config changes arrive through Published.
#pragma once

#include <atomic>
#include <functional>
#include <optional>
#include <string>
#include <thread>

#include "lb/backends.h"

namespace autopipe::lb {

class HealthChecker {
 public:
  // `config` supplies the check settings; it is read again on every round (reloads are picked up).
  using ConfigSource = std::function<HealthCheckConfig()>;
  HealthChecker(const Published* published, ConfigSource config) : published_(published), config_(std::move(config)) {}
  ~HealthChecker() { Stop(); }
  void Start();
  void Stop();

  struct Target {
    bool http = false;
    int port = 80;
    std::string path = "/";
  };
  // "TCP:80", "HTTP:8080/health" (SSL and HTTPS are checked like TCP and HTTP without TLS). nullopt if invalid.
  static std::optional<Target> ParseTarget(const std::string& target);

 private:
  void Run();
  const Published* published_;
  ConfigSource config_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace autopipe::lb

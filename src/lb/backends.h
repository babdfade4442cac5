// What every thread of a load-balancer node shares about its back ends, and the routing snapshot workers use.
//
// A Backend lives as long as any snapshot refers to it; a config reload keeps the same Backend object for the
// same instance id and address, so in-flight counts and health survive reloads. Health is written only by the
// health checker thread (and the passive-ejection flag by workers); outstanding counts by workers.
//
// Routing is an immutable snapshot published by the node's main thread on every config (re)load; workers pick
// up a new one when Published::generation() changes.
//
// Thread-safety: Backend's atomics may be used from any thread; Routing is immutable; Published is safe from any
// thread.
#pragma once

#include <netinet/in.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "lb/node_files.h"

namespace autopipe::lb {

enum class Health : uint8_t { kUnknown, kHealthy, kUnhealthy };

struct Backend {
  std::string id;
  std::string address;
  in_addr_t ip = 0;  // network byte order
  std::string availability_zone;
  std::atomic<bool> draining{false};
  std::atomic<Health> health{Health::kUnknown};
  // Passive ejection: set when a new connection to it fails; cleared by the next passing active check, which is
  // brought forward to within a second.
  std::atomic<bool> ejected{false};
  std::atomic<int64_t> outstanding{0};  // requests (HTTP) or connections (TCP) in flight, all workers

  // Health checker thread only.
  int consecutive_ok = 0;
  int consecutive_fail = 0;
  int64_t next_check_ms = 0;  // the next check on the configured interval
  int64_t last_check_ms = -1000000;  // when the last check (regular or early) started
  std::string last_error;  // guarded by error_mu (read by the status writer)
  std::mutex error_mu;

  bool Routable() const {
    return !draining.load(std::memory_order_relaxed) && !ejected.load(std::memory_order_relaxed) &&
           health.load(std::memory_order_relaxed) == Health::kHealthy;
  }
};

struct Routing {
  uint64_t version = 0;
  std::string load_balancer_name;
  std::vector<std::shared_ptr<Backend>> backends;
  std::vector<ListenerConfig> listeners;
  std::vector<std::string> addresses;
  std::string node_address;  // the node's own address: the Host of an HTTP/1.0 request that sent none
  int64_t idle_timeout_ms = 60000;
  int access_log_fd = -1;    // owned by the node (kept open across reloads while the path is unchanged)
};

class Published {
 public:
  void Set(std::shared_ptr<const Routing> r) {
    {
      std::lock_guard lock(mu_);
      routing_ = std::move(r);
    }
    generation_.fetch_add(1, std::memory_order_release);
  }
  std::shared_ptr<const Routing> Get() const {
    std::lock_guard lock(mu_);
    return routing_;
  }
  uint64_t generation() const { return generation_.load(std::memory_order_acquire); }

 private:
  mutable std::mutex mu_;
  std::shared_ptr<const Routing> routing_;
  std::atomic<uint64_t> generation_{0};
};

}  // namespace autopipe::lb

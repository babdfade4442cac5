// One event-loop thread of a load-balancer node. Each worker owns its own SO_REUSEPORT listening sockets (so
// the kernel spreads new connections over workers, and over the AZ nodes sharing the load balancer's
// address), its client connections and its pool of idle keep-alive connections to back ends. Nothing on the
// request path is shared between workers except the Backend atomics (in-flight counts, health).
//
// HTTP listeners: requests are parsed (lb/http_parser.h), sent to the back end with the fewest outstanding
// requests over a pooled keep-alive connection with X-Forwarded-For/Proto/Port added, and the response is
// streamed back as it arrives; bodies are never buffered whole (a full buffer stops reading the other side).
// The node answers 400/405/408/502/503/504 itself as ELB does. TCP listeners proxy bytes to back ends in
// round robin.
//
// The parts: the loop (lb/event_loop.h), HTTP sessions (lb/http_session.h), TCP sessions (lb/tcp_session.h), the
// picker (lb/picker.h), the back-end connection pool (lb/backend_pool.h) and the access log (lb/access_log.h).
//
// Thread-safety: a Worker's methods run on its own thread, except RequestReload/RequestStop/Stats, which are
// safe from any thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <thread>

#include "lb/backends.h"

namespace autopipe::lb {

// AWS/ELB counters of one worker (summed by the status writer). Relaxed atomics: one writer each.
struct WorkerMetrics {
  std::atomic<uint64_t> request_count{0};
  std::atomic<uint64_t> elb_4xx{0};
  std::atomic<uint64_t> elb_5xx{0};
  std::atomic<uint64_t> backend_2xx{0};
  std::atomic<uint64_t> backend_3xx{0};
  std::atomic<uint64_t> backend_4xx{0};
  std::atomic<uint64_t> backend_5xx{0};
  std::atomic<uint64_t> backend_connection_errors{0};
  std::atomic<uint64_t> latency_us_sum{0};
  std::atomic<uint64_t> latency_count{0};
  std::atomic<uint64_t> open_connections{0};  // client connections open
};

class Worker {
 public:
  Worker(int index, const Published* published);
  ~Worker();
  void Start();
  // Picks up the current Routing (listeners opened/closed, back ends) at the next loop turn.
  void RequestReload();
  // Stops accepting; idle connections are closed, busy ones finish. The thread exits when none are left or
  // Kill() is called.
  void RequestDrain();
  void Kill();
  void Join();
  // The Published generation this worker routes with (it switches at its next loop turn after a reload).
  uint64_t applied_generation() const;
  const WorkerMetrics& metrics() const { return metrics_; }

  class Impl;

 private:
  std::unique_ptr<Impl> impl_;
  WorkerMetrics metrics_;
  std::thread thread_;
};

}  // namespace autopipe::lb

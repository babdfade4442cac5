// Picker: which back end a new request (HTTP) or connection (TCP) goes to, out of a Routing snapshot's back
// ends. Only routable ones are chosen (healthy, not draining, not ejected); callers pass the ones a request
// already failed on to skip them. ELB's policies: least outstanding requests for HTTP, round robin for TCP.
//
// Thread-safety: a Picker belongs to one worker thread (its round-robin cursor); the Backend counters it reads
// are atomics shared by all workers.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "lb/backends.h"

namespace autopipe::lb {

using BackendList = std::vector<std::shared_ptr<Backend>>;

class Picker {
 public:
  // The routable back end with the fewest requests in flight over all workers; ties go round robin.
  std::shared_ptr<Backend> LeastOutstanding(const BackendList& all, const std::vector<const Backend*>& exclude);
  // The next routable back end in turn.
  std::shared_ptr<Backend> RoundRobin(const BackendList& all, const std::vector<const Backend*>& exclude);

 private:
  uint32_t rr_ = 0;  // shared by both policies
};

// Passive ejection: a connect to b failed at once, so no worker picks it until its next passing health check.
inline void EjectUnreachable(Backend& b) { b.ejected.store(true, std::memory_order_relaxed); }

}  // namespace autopipe::lb

// WorkerContext: what the sessions of one worker share — its event loop, the routing snapshot in force, the
// picker, the pool of back-end connections, the access log, the counters — and the set of its live HTTP
// sessions (for the periodic timeout scan and shutdown).
//
// Thread-safety: belongs to one worker thread; only `metrics` (relaxed atomics) is read from other threads.
#pragma once

#include <memory>
#include <unordered_set>

#include "lb/access_log.h"
#include "lb/backend_pool.h"
#include "lb/backends.h"
#include "lb/event_loop.h"
#include "lb/picker.h"
#include "lb/worker.h"

namespace autopipe::lb {

class HttpSession;

struct WorkerContext {
  explicit WorkerContext(WorkerMetrics* m) : metrics(*m), pool(&loop, &m->backend_connection_errors) {}

  EventLoop loop;
  WorkerMetrics& metrics;
  std::shared_ptr<const Routing> routing;
  Picker picker;
  BackendPool pool;
  AccessLogWriter access_log;
  bool draining = false;
  std::unordered_set<HttpSession*> http_sessions;
};

}  // namespace autopipe::lb

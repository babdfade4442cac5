// BackendPool: one worker's connections to back ends for HTTP, with idle keep-alive connections kept per back
// end and port for the next request. A session Acquires a connection (an idle one, else a new non-blocking
// connect), owns it while its request and response pass, and Releases it: back into the pool if the exchange
// left it reusable, else closed. Idle connections the back end closes, or that sat idle past the idle timeout,
// are closed.
//
// Thread-safety: a BackendPool and its connections belong to one worker thread (its EventLoop).
#pragma once

#include <netinet/in.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <unordered_map>
#include <vector>

#include "lb/backends.h"
#include "lb/buffer.h"
#include "lb/event_loop.h"

namespace autopipe::lb {

class BackendPool;

// A connection to a back end: owned by a session while it carries a request, else idle in the pool.
struct BackendConn : FdHandler {
  // The session using a connection gets its events.
  class Owner {
   public:
    virtual void OnBackendEvent(uint32_t events) = 0;

   protected:
    ~Owner() = default;
  };

  BackendPool* pool = nullptr;
  int fd = -1;
  std::shared_ptr<Backend> backend;
  int port = 0;
  uint64_t pool_key = 0;
  bool connecting = false;
  bool want_write = false;
  bool reused = false;     // carried a request before (a failure before any response byte may be a race with the
                           // back end's keep-alive timeout, so idempotent requests are retried)
  Owner* owner = nullptr;  // nullptr while pooled
  Buffer in;               // the response as it arrives
  int64_t idle_since_ms = 0;

  void OnEvent(uint32_t events) override;
};

class BackendPool {
 public:
  // connection_errors counts connects that failed (the worker's BackendConnectionErrors).
  BackendPool(EventLoop* loop, std::atomic<uint64_t>* connection_errors)
      : loop_(loop), connection_errors_(connection_errors) {}

  // A connection to backend:port for owner: an idle one, or a new connect (maybe still in progress). nullptr if
  // none could be had now; a back end that refused the connect is ejected (see EjectUnreachable).
  BackendConn* Acquire(const std::shared_ptr<Backend>& backend, int port, BackendConn::Owner* owner);
  // The owner is done with c: pooled if reusable (and there is room and the worker is not draining), else closed.
  void Release(BackendConn* c, bool reusable);
  // Closes c (pooled or not); it is deleted after the current event batch.
  void Close(BackendConn* c);
  // A connect to b failed: eject it and count the error.
  void NoteConnectFailure(Backend& b);

  // Closes pooled connections idle for longer than idle_ms.
  void CloseIdle(int64_t now_ms, int64_t idle_ms);
  void CloseAllIdle();
  // While draining, released connections are closed rather than pooled.
  void set_draining(bool draining) { draining_ = draining; }

 private:
  static constexpr size_t kMaxIdlePerBackend = 512;

  EventLoop* loop_;
  std::atomic<uint64_t>* connection_errors_;
  bool draining_ = false;
  std::unordered_map<uint64_t, std::vector<BackendConn*>> idle_;  // by back end ip and port
};

}  // namespace autopipe::lb

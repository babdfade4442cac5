// HttpServer: the API edge's HTTP/1.1 server. One event-loop thread (lb::EventLoop, edge-triggered epoll) owns
// every connection: it accepts, reads and parses requests with the load balancer's strict parser
// (lb::ParseRequest), enforces the deadlines and limits below, and writes replies back. Complete requests go to a
// small pool of worker threads that run the handler, which may block (the region's write lock, an fsync); the
// loop never does. So a slow or idle client costs one descriptor and a few hundred bytes, never a thread, and a
// thousand of them do not delay anyone else's request.
//
// Per connection, in order: head (complete within head_timeout_ms of its first byte, or of the accept for a new
// connection) ▸ body (Content-Length or chunked, complete within body_timeout_ms of the head) ▸ handler on a
// worker (no deadline: the connection reads nothing meanwhile) ▸ reply written by the loop (each write must make
// progress within body_timeout_ms) ▸ keep-alive: the next request (pipelined bytes are already buffered) or
// idle_timeout_ms of silence closes it. "Connection: close" (or HTTP/1.0 without keep-alive) closes after the
// reply.
//
// The server's own refusals go through `Refuse`, so they carry the caller's error body: 400 (a head the parser
// refuses, a method other than GET and POST is 405, a head over max_head_bytes), 413 (a body over
// max_body_bytes, refused as soon as Content-Length says so, without reading it), 408 (a head or body deadline
// passed mid-request). After a refusal the connection is closed: the write side is shut and the client drained
// for up to 2 s, so it reads the answer rather than a reset. Connections over max_connections are closed at once.
//
// Thread-safety: Bind, Start and Stop from one thread; Stop closes every connection and joins every thread. The
// handler and Refuse run on worker and loop threads concurrently and must be thread-safe.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "api/protocol.h"
#include "api/sigv4.h"
#include "common/status.h"
#include "lb/event_loop.h"

namespace autopipe {

struct HttpServerOptions {
  int64_t head_timeout_ms = 10'000;   // the whole request head, from its first byte (a new connection: the accept)
  int64_t body_timeout_ms = 30'000;   // the whole body, from the end of its head; also each reply write's progress
  int64_t idle_timeout_ms = 60'000;   // keep-alive: silence between requests
  size_t max_connections = 10'000;    // more are closed as soon as they are accepted
  size_t max_head_bytes = 64 << 10;   // request line and headers
  // 1 MiB: CloudWatch PutMetricData's documented cap (the largest per-call cap of the services served), and room
  // for SNS's 256 KB message percent-encoded in a form (at most 768 KB) and 16 KB of UserData base64'd (~22 KB).
  size_t max_body_bytes = 1 << 20;
  int worker_threads = 8;             // handlers in parallel (they may wait on the region's write lock or fsync)
  // Methods served; others are refused 405. REST APIs (Route 53) add DELETE (and PUT).
  std::vector<std::string> methods = {"GET", "POST"};
};

class HttpServer {
 public:
  using Handler = std::function<HttpReply(const SigV4Request&)>;
  // The server's own answers: `head` is the request as far as it was read (method, target and headers when the
  // head parsed; empty otherwise), `error` the status, AWS code and message.
  using Refuse = std::function<HttpReply(const SigV4Request& head, const Status& error)>;

  HttpServer(Handler handler, Refuse refuse, HttpServerOptions options = {});
  ~HttpServer();  // Stop()
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Listens on host:port (an IPv4 address or a name; port 0 picks one); returns the bound port.
  Result<int> Bind(const std::string& host, int port);
  // Starts the loop thread and the workers. Raises the process's soft descriptor limit to its hard limit.
  void Start();
  // Closes the listener and every connection, then joins the loop and the workers (a handler running finishes
  // first; its reply is dropped). Safe to call twice.
  void Stop();

  // Connections open now (for tests and logs; read on any thread).
  size_t open_connections() const { return open_connections_.load(std::memory_order_relaxed); }

 private:
  class Connection;
  class Listener;
  struct Job {
    uint64_t connection_id;
    SigV4Request request;
  };
  friend class Connection;
  friend class Listener;

  void LoopMain();
  void WorkerMain();
  void AcceptAll();
  void ScanTimeouts();
  void Submit(uint64_t connection_id, SigV4Request request);  // loop thread: hand a request to the workers
  void Remove(Connection* c);                                 // loop thread: a connection closed

  // Constant after construction.
  const Handler handler_;
  const Refuse refuse_;
  const HttpServerOptions options_;

  // Loop thread only (after Start).
  lb::EventLoop loop_;
  int listen_fd_ = -1;
  std::unique_ptr<Listener> listener_;
  std::unordered_map<uint64_t, Connection*> connections_;
  uint64_t next_connection_id_ = 1;
  bool accept_paused_ = false;  // accept failed for want of descriptors: retried by the timeout scan

  std::atomic<bool> stopping_{false};
  std::atomic<size_t> open_connections_{0};
  std::thread loop_thread_;

  std::mutex jobs_mu_;
  std::condition_variable jobs_cv_;
  std::deque<Job> jobs_;         // guarded by jobs_mu_
  bool workers_stop_ = false;    // guarded by jobs_mu_
  std::vector<std::thread> workers_;
};

}  // namespace autopipe

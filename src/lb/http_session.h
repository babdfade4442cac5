// HttpSession: one client connection of an HTTP listener, one request at a time (pipelined requests wait in
// the buffer). The request path, in the order it runs:
//
//   accept    Worker accepts the connection and starts a session (worker.cc)
//   parse     ReadClient -> Process: the request head is parsed in place (http_parser.h)    [client side]
//   pick      PickBackendAndConnect: the least-outstanding back end, a pooled or new
//             connection to it (picker.h, backend_pool.h); up to 3 back ends are tried      [back-end side]
//   forward   FlushBackend/ForwardBody send the head and body; ReadBackend -> OnResponseBytes
//             parse the response head and stream the response to the client (FlushClient)
//   count     MaybeFinish -> CountResponse: counters and the access-log line; the back-end
//             connection goes back to the pool and the next request is read                 [client side]
//
// The two halves live in two files: http_client_side.cc (reading and parsing the client's request, writing the
// response and the node's own 400/405/408/502/503/504 answers, timeouts, closing) and http_backend_side.cc
// (the request head sent on, picking and connecting, reading and framing the back end's response). Bodies are
// never buffered whole: a full buffer stops reading the side that fills it, and edge-triggered reads resume
// when the other side has taken the bytes.
//
// Thread-safety: a session lives on one worker thread; all calls come from its EventLoop.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>

#include <time.h>

#include <cstdint>
#include <string>
#include <vector>

#include "lb/backend_pool.h"
#include "lb/buffer.h"
#include "lb/event_loop.h"
#include "lb/http_parser.h"
#include "lb/node_files.h"
#include "lb/worker_context.h"

namespace autopipe::lb {

class HttpSession : public FdHandler, public BackendConn::Owner {
 public:
  static constexpr size_t kClientBufferSize = 64 * 1024;   // also the largest request head accepted
  static constexpr size_t kBackendBufferSize = 32 * 1024;  // also the largest response head accepted

  // Takes ownership of the accepted client socket fd; Start watches it.
  HttpSession(WorkerContext* ctx, int fd, const ListenerConfig& listener, const sockaddr_in& peer);
  ~HttpSession() override;

  // Watches the socket and reads what came with the connection.
  void Start();
  // Client socket events.
  void OnEvent(uint32_t events) override;
  // Events of the back-end connection this session holds.
  void OnBackendEvent(uint32_t events) override;
  // The periodic scan: idle keep-alive connections, slow clients (408), silent back ends (504), lingering.
  void CheckTimeouts(int64_t now, int64_t idle_ms, bool draining);
  // Closes the client connection (and the back-end connection, unpooled); deleted after the event batch.
  void Close();

 private:
  enum class ReqState : uint8_t { kIdle, kBody, kSent };
  enum class RespState : uint8_t { kNone, kHead, kBody, kDone };
  static constexpr int kMaxAttempts = 3;  // back ends tried for one request
  // After ELB's own error answer, what the client still sends is read and dropped for this long.
  static constexpr int64_t kLingerMs = 2000;

  // --- client side (http_client_side.cc) -------------------------------------------------------------------------
  void ReadClient();
  void ReadClientLoop();
  void Process();
  void StartRequest();
  void ForwardBody();
  void Linger();
  void Discard();
  ssize_t SendToClient(const char* data, size_t len);
  void FlushClient();
  void MaybeFinish();
  void ResumeClient();
  void CountResponse();
  void LogRequest(int elb_status, int backend_status);
  void SendError(int status);

  // --- back-end side (http_backend_side.cc) ----------------------------------------------------------------------
  bool BackendOutPending() const { return be_out_off_ < be_out_.size(); }
  void ComposeHead();
  bool PickBackendAndConnect();
  void ConnectFailed();
  void DropBackend(bool reusable);
  void FlushBackend();
  void BackendFailedBeforeResponse();
  void ReadBackend();
  void ReadBackendLoop();
  void BackendEof();
  void OnResponseBytes();

  WorkerContext* ctx_;
  int fd_;
  ListenerConfig listener_;
  char client_ip_[INET_ADDRSTRLEN] = {};
  uint16_t client_port_ = 0;
  bool want_write_ = false;
  bool reading_client_ = false;
  bool client_unread_ = false;  // the last client read stopped early, with bytes possibly left in the socket
  bool reading_backend_ = false;
  bool close_after_ = false;
  bool closing_ = false;
  bool lingering_ = false;
  int64_t linger_since_ms_ = 0;
  Buffer in_;
  RequestHead req_;
  ReqState req_state_ = ReqState::kIdle;
  uint64_t req_left_ = 0;
  ChunkedScanner req_chunks_;
  std::string method_;
  std::string target_;
  std::string user_agent_;
  std::string be_out_;
  size_t be_out_off_ = 0;
  BackendConn* be_ = nullptr;
  std::vector<const Backend*> tried_;
  int attempts_ = 0;
  std::string last_backend_;
  RespState resp_state_ = RespState::kNone;
  ResponseHead resp_;
  uint64_t resp_left_ = 0;
  ChunkedScanner resp_chunks_;
  size_t fwd_pending_ = 0;  // bytes at the front of be_->in that belong to the response and are not yet sent
  bool backend_reusable_ = false;
  uint64_t got_response_bytes_ = 0;
  std::string client_out_;
  int status_ = 0;
  uint64_t received_bytes_ = 0, sent_bytes_ = 0;
  int64_t last_activity_ms_ = 0, head_started_ms_ = 0, backend_activity_ms_ = 0;
  int64_t request_start_us_ = 0, request_sent_us_ = 0, response_head_us_ = 0;
};

// Microseconds on the monotonic clock (latency figures and access-log times).
inline int64_t MonotonicUs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000000LL + ts.tv_nsec / 1000;
}

}  // namespace autopipe::lb

#include "lb/worker.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <map>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "common/log.h"
#include "lb/http_parser.h"

namespace autopipe::lb {
namespace {

constexpr size_t kClientBufferSize = 64 * 1024;   // also the largest request head accepted
constexpr size_t kBackendBufferSize = 32 * 1024;  // also the largest response head accepted
constexpr size_t kMaxIdlePerBackend = 512;
constexpr int kMaxAttempts = 3;
constexpr int64_t kScanIntervalMs = 250;

int64_t MonotonicMs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

int64_t MonotonicUs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000000LL + ts.tv_nsec / 1000;
}

// A byte buffer with a read cursor; memory is taken on first use.
struct Buffer {
  std::unique_ptr<char[]> mem;
  size_t cap = 0, start = 0, end = 0;

  void Reserve(size_t n) {
    if (!mem) {
      mem.reset(new char[n]);
      cap = n;
    }
  }
  char* data() { return mem.get() + start; }
  size_t size() const { return end - start; }
  bool empty() const { return start == end; }
  size_t space() const { return cap - end; }
  char* tail() { return mem.get() + end; }
  void Consume(size_t n) {
    start += n;
    if (start == end) start = end = 0;
  }
  void Compact() {
    if (start == 0) return;
    std::memmove(mem.get(), mem.get() + start, end - start);
    end -= start;
    start = 0;
  }
  void Clear() { start = end = 0; }
};

bool IsIdempotent(std::string_view method) {
  return method == "GET" || method == "HEAD" || method == "PUT" || method == "DELETE" || method == "OPTIONS" ||
         method == "TRACE";
}

const char* Reason(int status) {
  switch (status) {
    case 400: return "Bad Request";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable: Back-end server is at capacity";
    case 504: return "Gateway Timeout";
    default: return "Error";
  }
}

std::string ElbResponse(int status) {
  char body[160];
  int blen = std::snprintf(body, sizeof body, "<html><body><h1>%d %s</h1></body></html>\n", status,
                           status == 503 ? "Service Unavailable" : Reason(status));
  char head[256];
  int hlen = std::snprintf(head, sizeof head,
                           "HTTP/1.1 %d %s\r\nServer: awselb/2.0\r\nContent-Type: text/html\r\n"
                           "Content-Length: %d\r\nConnection: close\r\n\r\n",
                           status, Reason(status), blen);
  return std::string(head, static_cast<size_t>(hlen)) + std::string(body, static_cast<size_t>(blen));
}

uint64_t PoolKey(in_addr_t ip, int port) { return (static_cast<uint64_t>(ip) << 16) | static_cast<uint16_t>(port); }

}  // namespace

// ---------------------------------------------------------------------------------------------------------------
// Event handlers. Every registered fd has one; epoll's data.ptr points at it. Handlers closed during a batch of
// events are marked dead and deleted after the batch, so later events of the same batch are ignored safely.

struct Handler {
  virtual ~Handler() = default;
  virtual void OnEvent(uint32_t events) = 0;
  bool dead = false;
};

class HttpSession;
class TcpSession;

struct ListenSocket : Handler {
  Worker::Impl* w = nullptr;
  int fd = -1;
  ListenerConfig listener;
  std::string address;
  void OnEvent(uint32_t events) override;
};

// A connection to a back end: owned by a session while it carries a request, else idle in the worker's pool.
struct BackendConn : Handler {
  Worker::Impl* w = nullptr;
  int fd = -1;
  std::shared_ptr<Backend> backend;
  int port = 0;
  uint64_t pool_key = 0;
  bool connecting = false;
  bool want_write = false;
  bool reused = false;       // carried a request before (a failure before any response byte may be a race with
                             // the back end's keep-alive timeout, so idempotent requests are retried)
  Handler* owner = nullptr;  // the session using it; nullptr while pooled
  Buffer in;
  int64_t idle_since_ms = 0;
  void OnEvent(uint32_t events) override;
};

class Worker::Impl {
 public:
  Impl(int index, const Published* published, WorkerMetrics* metrics)
      : index_(index), published_(published), m_(*metrics) {
    ep_ = ::epoll_create1(EPOLL_CLOEXEC);
    wake_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.ptr = nullptr;  // the wake-up fd
    ::epoll_ctl(ep_, EPOLL_CTL_ADD, wake_fd_, &ev);
  }
  ~Impl() {
    ::close(ep_);
    ::close(wake_fd_);
  }

  void Run();
  void Wake() {
    uint64_t one = 1;
    ssize_t ignored = ::write(wake_fd_, &one, sizeof one);
    (void)ignored;
  }

  // Registration helpers.
  void Add(int fd, Handler* h, bool want_write) {
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLRDHUP | EPOLLET | (want_write ? uint32_t{EPOLLOUT} : 0u);
    ev.data.ptr = h;
    ::epoll_ctl(ep_, EPOLL_CTL_ADD, fd, &ev);
  }
  void SetWantWrite(int fd, Handler* h, bool* state, bool want) {
    if (*state == want) return;
    *state = want;
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLRDHUP | EPOLLET | (want ? uint32_t{EPOLLOUT} : 0u);
    ev.data.ptr = h;
    ::epoll_ctl(ep_, EPOLL_CTL_MOD, fd, &ev);
  }
  void Bury(Handler* h) {
    h->dead = true;
    graveyard_.push_back(h);
  }

  // Back-end selection.
  std::shared_ptr<Backend> PickLeastOutstanding(const std::vector<const Backend*>& exclude);
  std::shared_ptr<Backend> PickRoundRobin(const std::vector<const Backend*>& exclude);

  // A connection to backend:port, from the pool or new. nullptr (and the back end ejected) if connect fails at
  // once.
  BackendConn* Acquire(const std::shared_ptr<Backend>& backend, int port, Handler* owner, bool* failed_now);
  void Release(BackendConn* c, bool reusable);
  void CloseBackend(BackendConn* c);
  void NoteConnectFailure(Backend& b) {
    b.ejected.store(true, std::memory_order_relaxed);
    m_.backend_connection_errors.fetch_add(1, std::memory_order_relaxed);
  }

  void Accept(ListenSocket* ls);
  void ApplyRouting();
  void ScanTimeouts();
  void AccessLog(const std::string& line);
  void FlushAccessLog();

  int index_;
  const Published* published_;
  WorkerMetrics& m_;
  int ep_ = -1;
  int wake_fd_ = -1;
  uint64_t generation_ = 0;
  std::shared_ptr<const Routing> routing_;
  int64_t now_ms_ = 0;
  int64_t last_scan_ms_ = 0;
  uint32_t rr_ = 0;
  std::vector<Handler*> graveyard_;
  std::map<std::pair<std::string, int>, ListenSocket*> listeners_;
  std::unordered_set<HttpSession*> http_sessions_;
  std::unordered_set<TcpSession*> tcp_sessions_;
  std::unordered_map<uint64_t, std::vector<BackendConn*>> pool_;
  std::string access_log_;
  std::atomic<bool> drain_requested_{false};
  std::atomic<bool> kill_requested_{false};
  std::atomic<uint64_t> applied_generation_{0};
  bool draining_ = false;
};

// ---------------------------------------------------------------------------------------------------------------
// HTTP sessions: one client connection, one request at a time (pipelined requests wait in the buffer).

class HttpSession : public Handler {
 public:
  HttpSession(Worker::Impl* w, int fd, const ListenerConfig& listener, const sockaddr_in& peer)
      : w_(w), fd_(fd), listener_(listener) {
    ::inet_ntop(AF_INET, &peer.sin_addr, client_ip_, sizeof client_ip_);
    client_port_ = ntohs(peer.sin_port);
    last_activity_ms_ = w_->now_ms_;
    w_->m_.open_connections.fetch_add(1, std::memory_order_relaxed);
  }
  ~HttpSession() override { w_->m_.open_connections.fetch_sub(1, std::memory_order_relaxed); }

  void OnEvent(uint32_t events) override {
    if (events & EPOLLOUT) FlushClient();
    if (!dead && (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))) ReadClient();
  }

  void OnBackendEvent(uint32_t events) {
    if (be_->connecting) {
      if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) return;
      int err = 0;
      socklen_t len = sizeof err;
      ::getsockopt(be_->fd, SOL_SOCKET, SO_ERROR, &err, &len);
      if (err != 0) {
        ConnectFailed();
        return;
      }
      be_->connecting = false;
      FlushBackend();
      if (dead) return;
    } else if (events & EPOLLOUT) {
      FlushBackend();
      if (dead || !be_) return;
    }
    if (be_ && (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))) ReadBackend();
  }

  // Periodic checks; returns after closing the session when a timeout hit.
  void CheckTimeouts(int64_t now, int64_t idle_ms, bool draining) {
    if (lingering_) {
      if (now - linger_since_ms_ > kLingerMs) Close();
      return;
    }
    const bool idle = req_state_ == ReqState::kIdle && resp_state_ == RespState::kNone && be_ == nullptr;
    if (idle && in_.empty()) {
      if (draining || now - last_activity_ms_ > idle_ms) Close();
      return;
    }
    if (req_state_ == ReqState::kIdle && resp_state_ == RespState::kNone) {
      // A partial request head: it must be complete within the idle timeout of its first byte (slow clients).
      if (now - head_started_ms_ > idle_ms) SendError(408);
      return;
    }
    if (resp_state_ == RespState::kHead && now - backend_activity_ms_ > idle_ms) {
      SendError(504);
      return;
    }
    if (now - last_activity_ms_ > idle_ms && now - backend_activity_ms_ > idle_ms) {
      if (resp_state_ == RespState::kNone || resp_state_ == RespState::kHead) SendError(408);
      else Close();
    }
  }


 private:
  enum class ReqState : uint8_t { kIdle, kBody, kSent };
  enum class RespState : uint8_t { kNone, kHead, kBody, kDone };

  // --- client side ---------------------------------------------------------------------------------------------

  bool BackendOutPending() const { return be_out_off_ < be_out_.size(); }

  // Re-entry guards: ReadClient/ReadBackend loop until the socket is drained, so calls made further down the
  // stack (after a flush frees buffer space) only need to happen when no such loop is running; without them a
  // large body would recurse once per buffer.
  void ReadClient() {
    if (reading_client_) return;
    reading_client_ = true;
    ReadClientLoop();
    reading_client_ = false;
  }

  void ReadBackend() {
    if (reading_backend_) return;
    reading_backend_ = true;
    ReadBackendLoop();
    reading_backend_ = false;
  }

  void ReadClientLoop() {
    if (lingering_) {
      Discard();
      return;
    }
    while (!dead) {
      // Not reading now leaves bytes in the socket whose edge is spent: client_unread_ says to come back.
      if ((req_state_ == ReqState::kBody && (BackendOutPending() || !in_.empty())) ||  // back end is slower
          (req_state_ == ReqState::kSent && !in_.empty())) {  // a pipelined request waits for its turn
        client_unread_ = true;
        return;
      }
      in_.Reserve(kClientBufferSize);
      if (in_.space() == 0) {
        in_.Compact();
        if (in_.space() == 0) {
          if (req_state_ == ReqState::kIdle) SendError(400);  // request head larger than the buffer
          return;
        }
      }
      const size_t space = in_.space();
      ssize_t n = ::recv(fd_, in_.tail(), space, 0);
      if (n > 0) {
        if (in_.empty() && req_state_ == ReqState::kIdle) head_started_ms_ = w_->now_ms_;
        in_.end += static_cast<size_t>(n);
        received_bytes_ += static_cast<uint64_t>(n);
        last_activity_ms_ = w_->now_ms_;
        Process();
        if (static_cast<size_t>(n) < space) return;  // drained the socket: edge-triggered epoll will tell us more
        continue;
      }
      if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
      // EOF or error from the client: whatever is in flight has no one to go to (a client that half-closes
      // after its request loses it too, as with nginx).
      Close();
      return;
    }
  }

  void Process() {
    if (req_state_ == ReqState::kIdle && resp_state_ == RespState::kNone) {
      if (in_.empty()) return;
      ParseStatus st = ParseRequest(in_.data(), in_.size(), &req_);
      if (st == ParseStatus::kIncomplete) {
        if (in_.size() >= kClientBufferSize) SendError(400);
        return;
      }
      if (st == ParseStatus::kError) {
        SendError(req_.error_status == 405 ? 405 : 400);
        return;
      }
      StartRequest();
      return;
    }
    if (req_state_ == ReqState::kBody) ForwardBody();
  }

  void StartRequest() {
    request_start_us_ = MonotonicUs();
    received_bytes_ = in_.size();
    sent_bytes_ = 0;
    attempts_ = 0;
    method_.assign(req_.method.data(), req_.method.size());
    if (w_->routing_->access_log_fd >= 0) {
      target_.assign(req_.target.data(), req_.target.size());
      user_agent_.clear();
      for (size_t i = 0; i < req_.header_count; ++i)
        if (EqualsIgnoreCase(req_.headers[i].name, "User-Agent"))
          user_agent_.assign(req_.headers[i].value.data(), req_.headers[i].value.size());
    }
    close_after_ = !req_.keep_alive;
    if (req_.version_minor == 0) req_.expect_continue = false;  // 100 Continue is not for HTTP/1.0 clients
    if (req_.expect_continue && req_.body != BodyKind::kNone) {
      client_out_ += "HTTP/1.1 100 Continue\r\n\r\n";  // ELB answers Expect itself
    }
    ComposeHead();
    in_.Consume(req_.head_length);
    req_left_ = req_.content_length;
    req_chunks_ = ChunkedScanner();
    req_state_ = req_.body == BodyKind::kNone ? ReqState::kSent : ReqState::kBody;
    resp_state_ = RespState::kHead;
    backend_activity_ms_ = w_->now_ms_;
    if (!ConnectSomewhere()) return;
    FlushBackend();  // the head, then (ForwardBody) whatever part of the body has arrived
    if (!dead && !client_out_.empty()) FlushClient();
  }

  // The request head for the back end: the client's request line and headers, minus hop-by-hop headers and the
  // X-Forwarded-* it sent, plus ELB's X-Forwarded-For (appended), -Proto and -Port.
  void ComposeHead() {
    be_out_.clear();
    be_out_off_ = 0;
    std::string_view xff_prev;
    std::string xff_joined;
    bool copy_verbatim = true;
    for (size_t i = 0; i < req_.header_count; ++i) {
      HeaderId id = req_.headers[i].id;
      if (id != HeaderId::kOther && id != HeaderId::kHost && id != HeaderId::kContentLength &&
          id != HeaderId::kTransferEncoding) {
        copy_verbatim = false;
      }
    }
    const char* head = in_.data();
    if (copy_verbatim) {
      be_out_.append(head, req_.head_length - 2);  // everything but the empty line
    } else {
      const char* line_end = static_cast<const char*>(std::memchr(head, '\n', req_.head_length));
      be_out_.append(head, static_cast<size_t>(line_end - head) + 1);
      for (size_t i = 0; i < req_.header_count; ++i) {
        const HeaderField& h = req_.headers[i];
        switch (h.id) {
          case HeaderId::kConnection:
          case HeaderId::kKeepAlive:
          case HeaderId::kProxyConnection:
          case HeaderId::kUpgrade:
          case HeaderId::kTe:
          case HeaderId::kXForwardedProto:
          case HeaderId::kXForwardedPort:
            continue;
          case HeaderId::kExpect:
            if (req_.expect_continue) continue;
            break;
          case HeaderId::kXForwardedFor:
            if (!xff_joined.empty()) xff_joined += ", ";
            xff_joined.append(h.value.data(), h.value.size());
            continue;
          default:
            break;
        }
        be_out_.append(h.name.data(), h.name.size());
        be_out_ += ": ";
        be_out_.append(h.value.data(), h.value.size());
        be_out_ += "\r\n";
      }
      xff_prev = xff_joined;
    }
    if (!req_.has_host) {
      be_out_ += "Host: ";
      be_out_ += w_->routing_->node_address;
      be_out_ += "\r\n";
    }
    be_out_ += "X-Forwarded-For: ";
    if (!xff_prev.empty()) {
      be_out_.append(xff_prev.data(), xff_prev.size());
      be_out_ += ", ";
    }
    be_out_ += client_ip_;
    be_out_ += "\r\nX-Forwarded-Proto: http\r\nX-Forwarded-Port: ";
    be_out_ += std::to_string(listener_.port);
    be_out_ += "\r\n\r\n";
  }

  // Picks a back end and gets a connection to it; answers 503 when none is left. False when the session ended.
  bool ConnectSomewhere() {
    while (attempts_ < kMaxAttempts) {
      ++attempts_;
      auto backend = w_->PickLeastOutstanding(tried_);
      if (!backend) break;
      backend->outstanding.fetch_add(1, std::memory_order_relaxed);
      bool failed_now = false;
      BackendConn* c = w_->Acquire(backend, listener_.instance_port, this, &failed_now);
      if (c == nullptr) {
        backend->outstanding.fetch_sub(1, std::memory_order_relaxed);
        tried_.push_back(backend.get());
        continue;
      }
      be_ = c;
      if (w_->routing_->access_log_fd >= 0) last_backend_ = backend->address + ":" + std::to_string(c->port);
      return true;
    }
    tried_.clear();
    SendError(503);
    return false;
  }

  void ConnectFailed() {
    Backend& b = *be_->backend;
    w_->NoteConnectFailure(b);
    tried_.push_back(&b);
    DropBackend(/*reusable=*/false);
    be_out_off_ = 0;  // nothing reached the back end: send it all again elsewhere
    if (ConnectSomewhere()) FlushBackend();
  }

  void DropBackend(bool reusable) {
    if (!be_) return;
    be_->backend->outstanding.fetch_sub(1, std::memory_order_relaxed);
    w_->Release(be_, reusable);
    be_ = nullptr;
  }

  void ForwardBody() {
    while (!dead && req_state_ == ReqState::kBody && !BackendOutPending() && !in_.empty()) {
      be_out_.clear();
      be_out_off_ = 0;
      size_t take = 0;
      if (req_.body == BodyKind::kContentLength) {
        take = static_cast<size_t>(std::min<uint64_t>(req_left_, in_.size()));
        req_left_ -= take;
        if (req_left_ == 0) req_state_ = ReqState::kSent;
      } else {
        ChunkedScanner::Result r = req_chunks_.Feed(in_.data(), in_.size(), &take);
        if (r == ChunkedScanner::Result::kError) {
          SendError(400);
          return;
        }
        if (r == ChunkedScanner::Result::kDone) req_state_ = ReqState::kSent;
      }
      be_out_.append(in_.data(), take);
      in_.Consume(take);
      FlushBackend();
    }
    if (!dead && req_state_ == ReqState::kBody && in_.empty() && !BackendOutPending()) ResumeClient();
  }

  void FlushBackend() {
    if (!be_ || be_->connecting) return;
    while (be_out_off_ < be_out_.size()) {
      ssize_t n = ::send(be_->fd, be_out_.data() + be_out_off_, be_out_.size() - be_out_off_, MSG_NOSIGNAL);
      if (n > 0) {
        be_out_off_ += static_cast<size_t>(n);
        backend_activity_ms_ = w_->now_ms_;  // an upload in progress is not a silent back end
        continue;
      }
      if (n < 0 && errno == EAGAIN) {
        w_->SetWantWrite(be_->fd, be_, &be_->want_write, true);
        return;
      }
      BackendFailedBeforeResponse();
      return;
    }
    w_->SetWantWrite(be_->fd, be_, &be_->want_write, false);
    if (request_sent_us_ == 0 && req_state_ == ReqState::kSent) request_sent_us_ = MonotonicUs();
    if (req_state_ == ReqState::kBody) ForwardBody();
  }

  // The back end went away before answering (write error, EOF or reset).
  void BackendFailedBeforeResponse() {
    const bool retry = be_->reused && req_.body == BodyKind::kNone && IsIdempotent(method_) && got_response_bytes_ == 0;
    if (retry && attempts_ < kMaxAttempts) {
      DropBackend(false);
      be_out_off_ = 0;
      if (ConnectSomewhere()) FlushBackend();
      return;
    }
    DropBackend(false);
    SendError(504);  // ELB: the back end closed the connection
  }

  // After ELB's own error answer: closing at once while the client is still sending would make the kernel
  // reset the connection, and the client could lose the answer. So the write side is shut, and what the client
  // still sends is read and dropped until it closes too (or kLingerMs passes).
  static constexpr int64_t kLingerMs = 2000;
  void Linger() {
    if (lingering_) return;
    lingering_ = true;
    linger_since_ms_ = w_->now_ms_;
    ::shutdown(fd_, SHUT_WR);
    Discard();
  }

  void Discard() {
    char scratch[16384];
    while (!dead) {
      ssize_t n = ::recv(fd_, scratch, sizeof scratch, 0);
      if (n > 0) continue;
      if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
      Close();
      return;
    }
  }

  // --- back-end side -------------------------------------------------------------------------------------------

  void ReadBackendLoop() {
    while (!dead && be_) {
      if (fwd_pending_ > 0) return;  // the client is slower: FlushClient resumes us
      Buffer& b = be_->in;
      b.Reserve(kBackendBufferSize);
      if (b.space() == 0) {
        b.Compact();
        if (b.space() == 0) {
          SendError(502);  // a response head larger than the buffer
          return;
        }
      }
      const size_t space = b.space();
      ssize_t n = ::recv(be_->fd, b.tail(), space, 0);
      if (n > 0) {
        b.end += static_cast<size_t>(n);
        got_response_bytes_ += static_cast<uint64_t>(n);
        backend_activity_ms_ = w_->now_ms_;
        OnResponseBytes();
        if (static_cast<size_t>(n) < space) return;
        continue;
      }
      if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
      BackendEof();
      return;
    }
  }

  void BackendEof() {
    if (resp_state_ == RespState::kHead && got_response_bytes_ == 0) {
      BackendFailedBeforeResponse();
      return;
    }
    if (resp_state_ == RespState::kHead) {  // half a head, then gone
      DropBackend(false);
      SendError(502);
      return;
    }
    if (resp_state_ == RespState::kBody && resp_.body == BodyKind::kUntilClose) {
      resp_state_ = RespState::kDone;
      close_after_ = true;
      backend_reusable_ = false;
      MaybeFinish();
      return;
    }
    // The back end died mid-response: the client cannot be told with a status any more.
    Close();
  }

  void OnResponseBytes() {
    Buffer& b = be_->in;
    while (!dead) {
      if (resp_state_ == RespState::kHead) {
        ParseStatus st = ParseResponse(b.data(), b.size(), method_, &resp_);
        if (st == ParseStatus::kIncomplete) return;
        if (st == ParseStatus::kError) {
          DropBackend(false);
          SendError(502);
          return;
        }
        if (resp_.status >= 100 && resp_.status < 200) {
          if (resp_.status == 101) {  // no protocol upgrades through an HTTP listener
            DropBackend(false);
            SendError(502);
            return;
          }
          b.Consume(resp_.head_length);  // interim responses: ELB already answered Expect
          continue;
        }
        response_head_us_ = MonotonicUs();
        status_ = resp_.status;
        fwd_pending_ = resp_.head_length;
        resp_left_ = resp_.content_length;
        resp_chunks_ = ChunkedScanner();
        backend_reusable_ = resp_.keep_alive;
        resp_state_ = resp_.body == BodyKind::kNone ? RespState::kDone : RespState::kBody;
      }
      if (resp_state_ == RespState::kBody) {
        size_t avail = b.size() - fwd_pending_;
        size_t take = 0;
        if (resp_.body == BodyKind::kContentLength) {
          take = static_cast<size_t>(std::min<uint64_t>(resp_left_, avail));
          resp_left_ -= take;
          if (resp_left_ == 0) resp_state_ = RespState::kDone;
        } else if (resp_.body == BodyKind::kChunked) {
          ChunkedScanner::Result r = resp_chunks_.Feed(b.data() + fwd_pending_, avail, &take);
          if (r == ChunkedScanner::Result::kError) {
            Close();  // the head is already on its way: nothing else can be said
            return;
          }
          if (r == ChunkedScanner::Result::kDone) resp_state_ = RespState::kDone;
        } else {
          take = avail;
        }
        fwd_pending_ += take;
      }
      if (resp_state_ == RespState::kDone && b.size() > fwd_pending_) backend_reusable_ = false;  // extra bytes
      break;
    }
    FlushClient();
  }

  // --- writing to the client -----------------------------------------------------------------------------------

  // Sends what it can of data[0..len) to the client; returns the bytes sent, or -1 when the client cannot take
  // more now (EPOLLOUT armed) or is gone (session closed: check `dead`).
  ssize_t SendToClient(const char* data, size_t len) {
    ssize_t n = ::send(fd_, data, len, MSG_NOSIGNAL);
    if (n > 0) return n;
    if (n < 0 && errno == EAGAIN) {
      w_->SetWantWrite(fd_, this, &want_write_, true);
    } else {
      Close();
    }
    return -1;
  }

  void FlushClient() {
    if (dead) return;
    while (!client_out_.empty()) {  // the node's own answers (100 Continue, errors)
      ssize_t n = SendToClient(client_out_.data(), client_out_.size());
      if (n < 0) return;
      client_out_.erase(0, static_cast<size_t>(n));
    }
    if (closing_) {
      Linger();
      return;
    }
    while (be_ && fwd_pending_ > 0) {  // the back end's response, straight from its buffer
      ssize_t n = SendToClient(be_->in.data(), fwd_pending_);
      if (n < 0) return;
      be_->in.Consume(static_cast<size_t>(n));
      fwd_pending_ -= static_cast<size_t>(n);
      sent_bytes_ += static_cast<uint64_t>(n);
      last_activity_ms_ = w_->now_ms_;
    }
    w_->SetWantWrite(fd_, this, &want_write_, false);
    if (resp_state_ == RespState::kDone) {
      MaybeFinish();
    } else if (be_ && resp_state_ != RespState::kNone) {
      ReadBackend();  // we may have stopped reading while the client caught up
    }
  }

  // The response is complete and delivered: account for it, free the back end, go on with the next request.
  void MaybeFinish() {
    if (dead || fwd_pending_ > 0 || resp_state_ != RespState::kDone) return;
    const bool answered_early = req_state_ != ReqState::kSent;
    if (answered_early || BackendOutPending()) {
      // The back end answered before it had the whole request (e.g. a 413 during an upload): the rest of the
      // body cannot be told apart from a next request, on either connection, so neither is used again.
      close_after_ = true;
      backend_reusable_ = false;
    }
    CountResponse();
    DropBackend(backend_reusable_);
    tried_.clear();
    if (answered_early) {
      Linger();  // the client may still be sending: a plain close would reset the connection under its answer
      return;
    }
    if (close_after_) {
      Close();
      return;
    }
    req_state_ = ReqState::kIdle;
    resp_state_ = RespState::kNone;
    got_response_bytes_ = 0;
    request_sent_us_ = 0;
    last_activity_ms_ = w_->now_ms_;
    head_started_ms_ = w_->now_ms_;
    if (!in_.empty()) Process();  // a pipelined request (or the first part of one)
    if (!dead) ResumeClient();
  }

  // Reads on from the client if an earlier read stopped with bytes left in the socket (their edge came while we
  // were busy). Otherwise the socket was drained, and new bytes bring a new edge: no read is spent on EAGAIN.
  void ResumeClient() {
    if (!client_unread_) return;
    client_unread_ = false;
    ReadClient();
  }

  void CountResponse() {
    auto& m = w_->m_;
    m.request_count.fetch_add(1, std::memory_order_relaxed);
    if (status_ >= 200 && status_ < 300) m.backend_2xx.fetch_add(1, std::memory_order_relaxed);
    else if (status_ < 400) m.backend_3xx.fetch_add(1, std::memory_order_relaxed);
    else if (status_ < 500) m.backend_4xx.fetch_add(1, std::memory_order_relaxed);
    else m.backend_5xx.fetch_add(1, std::memory_order_relaxed);
    if (request_sent_us_ != 0 && response_head_us_ >= request_sent_us_) {
      m.latency_us_sum.fetch_add(static_cast<uint64_t>(response_head_us_ - request_sent_us_),
                                 std::memory_order_relaxed);
      m.latency_count.fetch_add(1, std::memory_order_relaxed);
    }
    if (w_->routing_->access_log_fd >= 0) LogRequest(status_, status_);
  }

  void LogRequest(int elb_status, int backend_status) {
    char ts[64];
    timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    tm t;
    gmtime_r(&now.tv_sec, &t);
    std::snprintf(ts, sizeof ts, "%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ", t.tm_year + 1900, t.tm_mon + 1, t.tm_mday,
                  t.tm_hour, t.tm_min, t.tm_sec, now.tv_nsec / 1000);
    const int64_t end_us = MonotonicUs();
    auto secs = [](int64_t us) { return us < 0 ? -1.0 : static_cast<double>(us) / 1e6; };
    double request_time = request_sent_us_ ? secs(request_sent_us_ - request_start_us_) : -1;
    double backend_time = response_head_us_ && request_sent_us_ ? secs(response_head_us_ - request_sent_us_) : -1;
    double response_time = response_head_us_ ? secs(end_us - response_head_us_) : -1;
    std::string backend = last_backend_.empty() ? "-" : last_backend_;
    char line[1024];
    std::snprintf(line, sizeof line, "%s %s %s:%u %s %.6f %.6f %.6f %d %s %llu %llu \"%.127s %.200s HTTP/1.%d\" \"%.200s\" - -\n",
                  ts, w_->routing_->load_balancer_name.c_str(), client_ip_, client_port_, backend.c_str(), request_time, backend_time,
                  response_time, elb_status, backend_status > 0 ? std::to_string(backend_status).c_str() : "-",
                  static_cast<unsigned long long>(received_bytes_), static_cast<unsigned long long>(sent_bytes_),
                  method_.c_str(), target_.c_str(), req_.version_minor, user_agent_.c_str());
    w_->AccessLog(line);
  }

  // ELB's own answer; the connection closes after it.
  void SendError(int status) {
    if (dead) return;
    if (resp_state_ == RespState::kBody || resp_state_ == RespState::kDone || fwd_pending_ > 0) {
      Close();  // the client already has part of a response
      return;
    }
    DropBackend(false);
    auto& m = w_->m_;
    m.request_count.fetch_add(1, std::memory_order_relaxed);
    (status < 500 ? m.elb_4xx : m.elb_5xx).fetch_add(1, std::memory_order_relaxed);
    if (w_->routing_->access_log_fd >= 0) LogRequest(status, 0);
    client_out_ += ElbResponse(status);
    closing_ = true;
    resp_state_ = RespState::kDone;
    FlushClient();
  }

 public:
  void Close() {
    if (dead) return;
    if (be_) DropBackend(false);
    ::close(fd_);
    w_->http_sessions_.erase(this);
    w_->Bury(this);
  }

 private:
  Worker::Impl* w_;
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

void BackendConn::OnEvent(uint32_t events) {
  if (owner != nullptr) {
    static_cast<HttpSession*>(owner)->OnBackendEvent(events);  // TCP sessions own their back-end fds directly
    return;
  }
  // Idle in the pool: the back end closed it (or sent something unasked): drop it.
  if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) w->CloseBackend(this);
}

// ---------------------------------------------------------------------------------------------------------------
// TCP sessions: bytes both ways, round robin over healthy back ends.

class TcpSession : public Handler {
 public:
  struct Side : Handler {
    TcpSession* s = nullptr;
    bool is_client = false;
    void OnEvent(uint32_t events) override { s->OnSideEvent(is_client, events); }
  };

  TcpSession(Worker::Impl* w, int client_fd, const ListenerConfig& listener) : w_(w), listener_(listener) {
    fd_[0] = client_fd;
    client_side_.s = backend_side_.s = this;
    client_side_.is_client = true;
    last_activity_ms_ = w_->now_ms_;
    w_->m_.open_connections.fetch_add(1, std::memory_order_relaxed);
  }
  ~TcpSession() override { w_->m_.open_connections.fetch_sub(1, std::memory_order_relaxed); }
  void OnEvent(uint32_t) override {}

  bool Start() {
    std::vector<const Backend*> tried;
    for (int attempt = 0; attempt < kMaxAttempts; ++attempt) {
      backend_ = w_->PickRoundRobin(tried);
      if (!backend_) break;
      int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
      if (fd < 0) break;
      int one = 1;
      ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      sockaddr_in addr{};
      addr.sin_family = AF_INET;
      addr.sin_port = htons(static_cast<uint16_t>(listener_.instance_port));
      addr.sin_addr.s_addr = backend_->ip;
      int rc = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
      if (rc != 0 && errno != EINPROGRESS) {
        ::close(fd);
        w_->NoteConnectFailure(*backend_);
        tried.push_back(backend_.get());
        continue;
      }
      fd_[1] = fd;
      connecting_ = rc != 0;
      backend_->outstanding.fetch_add(1, std::memory_order_relaxed);
      w_->m_.request_count.fetch_add(1, std::memory_order_relaxed);
      w_->Add(fd_[0], &client_side_, false);
      w_->Add(fd_[1], &backend_side_, connecting_);
      want_write_[1] = connecting_;
      return true;
    }
    ::close(fd_[0]);
    return false;
  }

  void OnSideEvent(bool is_client, uint32_t events) {
    if (dead) return;
    int side = is_client ? 0 : 1;
    if (side == 1 && connecting_) {
      int err = 0;
      socklen_t len = sizeof err;
      ::getsockopt(fd_[1], SOL_SOCKET, SO_ERROR, &err, &len);
      if (err != 0) {
        w_->NoteConnectFailure(*backend_);
        Close();
        return;
      }
      connecting_ = false;
    }
    last_activity_ms_ = w_->now_ms_;
    Pump(0);
    if (!dead) Pump(1);
    (void)events;
  }

  void CheckTimeouts(int64_t now, int64_t idle_ms) {
    if (now - last_activity_ms_ > idle_ms) Close();
  }

  void Close() {
    if (dead) return;
    backend_->outstanding.fetch_sub(1, std::memory_order_relaxed);
    ::close(fd_[0]);
    if (fd_[1] >= 0) ::close(fd_[1]);
    client_side_.dead = backend_side_.dead = true;
    w_->tcp_sessions_.erase(this);
    w_->Bury(this);
  }

 private:
  // Moves bytes from side `from` to the other side until one of them would block.
  void Pump(int from) {
    int to = 1 - from;
    if (connecting_) return;
    Buffer& b = buf_[from];
    b.Reserve(kBackendBufferSize);
    while (true) {
      if (!b.empty()) {
        ssize_t n = ::send(fd_[to], b.data(), b.size(), MSG_NOSIGNAL);
        if (n > 0) {
          b.Consume(static_cast<size_t>(n));
          continue;
        }
        if (n < 0 && errno == EAGAIN) {
          SetWantWrite(to, true);
          return;
        }
        Close();
        return;
      }
      SetWantWrite(to, false);
      if (eof_[from]) {
        if (!shut_[to]) {
          ::shutdown(fd_[to], SHUT_WR);
          shut_[to] = true;
        }
        if (eof_[to] && shut_[from]) Close();
        return;
      }
      ssize_t n = ::recv(fd_[from], b.tail(), b.space(), 0);
      if (n > 0) {
        b.end += static_cast<size_t>(n);
        continue;
      }
      if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
      eof_[from] = true;
      if (n < 0) {
        Close();
        return;
      }
    }
  }

  void SetWantWrite(int side, bool want) {
    w_->SetWantWrite(fd_[side], side == 0 ? static_cast<Handler*>(&client_side_) : &backend_side_,
                     &want_write_[side], want);
  }

  Worker::Impl* w_;
  ListenerConfig listener_;
  std::shared_ptr<Backend> backend_;
  int fd_[2] = {-1, -1};
  Buffer buf_[2];
  bool eof_[2] = {false, false};
  bool shut_[2] = {false, false};
  bool want_write_[2] = {false, false};
  bool connecting_ = false;
  Side client_side_, backend_side_;
  int64_t last_activity_ms_ = 0;
};

// ---------------------------------------------------------------------------------------------------------------

std::shared_ptr<Backend> Worker::Impl::PickLeastOutstanding(const std::vector<const Backend*>& exclude) {
  const auto& all = routing_->backends;
  const size_t n = all.size();
  if (n == 0) return nullptr;
  std::shared_ptr<Backend> best;
  int64_t best_out = 0;
  const size_t start = rr_++ % n;  // ties go round robin
  for (size_t k = 0; k < n; ++k) {
    const auto& b = all[(start + k) % n];
    if (!b->Routable()) continue;
    bool skip = false;
    for (const Backend* e : exclude) skip |= e == b.get();
    if (skip) continue;
    int64_t out = b->outstanding.load(std::memory_order_relaxed);
    if (!best || out < best_out) {
      best = b;
      best_out = out;
    }
  }
  return best;
}

std::shared_ptr<Backend> Worker::Impl::PickRoundRobin(const std::vector<const Backend*>& exclude) {
  const auto& all = routing_->backends;
  const size_t n = all.size();
  for (size_t k = 0; k < n; ++k) {
    const auto& b = all[rr_++ % n];
    if (!b->Routable()) continue;
    bool skip = false;
    for (const Backend* e : exclude) skip |= e == b.get();
    if (!skip) return b;
  }
  return nullptr;
}

BackendConn* Worker::Impl::Acquire(const std::shared_ptr<Backend>& backend, int port, Handler* owner,
                                   bool* failed_now) {
  const uint64_t key = PoolKey(backend->ip, port);
  auto it = pool_.find(key);
  if (it != pool_.end()) {
    while (!it->second.empty()) {
      BackendConn* c = it->second.back();
      it->second.pop_back();
      if (c->dead) continue;
      c->owner = owner;
      c->backend = backend;
      c->reused = true;
      return c;
    }
  }
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    *failed_now = true;
    return nullptr;
  }
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = backend->ip;
  int rc = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  if (rc != 0 && errno != EINPROGRESS) {
    ::close(fd);
    NoteConnectFailure(*backend);
    *failed_now = true;
    return nullptr;
  }
  auto* c = new BackendConn;
  c->w = this;
  c->fd = fd;
  c->backend = backend;
  c->port = port;
  c->pool_key = key;
  c->connecting = rc != 0;
  c->want_write = c->connecting;
  c->owner = owner;
  Add(fd, c, c->connecting);
  return c;
}

void Worker::Impl::Release(BackendConn* c, bool reusable) {
  c->owner = nullptr;
  c->in.Clear();
  auto& idle = pool_[c->pool_key];
  if (!reusable || c->connecting || idle.size() >= kMaxIdlePerBackend || draining_) {
    CloseBackend(c);
    return;
  }
  SetWantWrite(c->fd, c, &c->want_write, false);
  c->idle_since_ms = now_ms_;
  idle.push_back(c);
}

void Worker::Impl::CloseBackend(BackendConn* c) {
  if (c->dead) return;
  ::close(c->fd);
  auto it = pool_.find(c->pool_key);
  if (it != pool_.end()) {
    auto& v = it->second;
    for (size_t i = 0; i < v.size(); ++i) {
      if (v[i] == c) {
        v[i] = v.back();
        v.pop_back();
        break;
      }
    }
  }
  Bury(c);
}

void ListenSocket::OnEvent(uint32_t) { w->Accept(this); }

void Worker::Impl::Accept(ListenSocket* ls) {
  while (true) {
    sockaddr_in peer{};
    socklen_t len = sizeof peer;
    int fd = ::accept4(ls->fd, reinterpret_cast<sockaddr*>(&peer), &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) return;  // EAGAIN, or out of descriptors (retried on the next connection)
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (ls->listener.protocol == "TCP") {
      auto* s = new TcpSession(this, fd, ls->listener);
      if (!s->Start()) {
        delete s;
        continue;
      }
      tcp_sessions_.insert(s);
    } else {
      auto* s = new HttpSession(this, fd, ls->listener, peer);
      http_sessions_.insert(s);
      Add(fd, s, false);
      s->OnEvent(EPOLLIN);  // data often arrives with the connection
    }
  }
}

namespace {

int OpenListener(const std::string& address, int port, std::string* error) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    *error = std::strerror(errno);
    return -1;
  }
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  if (::inet_pton(AF_INET, address.c_str(), &addr.sin_addr) != 1) {
    *error = "bad address " + address;
    ::close(fd);
    return -1;
  }
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(fd, 4096) != 0) {
    *error = std::strerror(errno);
    ::close(fd);
    return -1;
  }
  return fd;
}

}  // namespace

void Worker::Impl::ApplyRouting() {
  const uint64_t generation = published_->generation();
  routing_ = published_->Get();
  applied_generation_.store(generation, std::memory_order_release);
  if (!routing_) return;
  std::map<std::pair<std::string, int>, ListenerConfig> wanted;
  if (!draining_) {
    for (const auto& addr : routing_->addresses)
      for (const auto& l : routing_->listeners) wanted[{addr, l.port}] = l;
  }
  for (auto it = listeners_.begin(); it != listeners_.end();) {
    auto want = wanted.find(it->first);
    if (want == wanted.end() || !(want->second == it->second->listener)) {
      ::close(it->second->fd);  // connections already accepted carry on
      Bury(it->second);
      it = listeners_.erase(it);
    } else {
      ++it;
    }
  }
  for (const auto& [key, l] : wanted) {
    if (listeners_.count(key)) continue;
    std::string error;
    int fd = OpenListener(key.first, key.second, &error);
    if (fd < 0) {
      if (index_ == 0) spdlog::error("cannot listen on {}:{}: {}", key.first, key.second, error);
      continue;
    }
    auto* ls = new ListenSocket;
    ls->w = this;
    ls->fd = fd;
    ls->listener = l;
    ls->address = key.first;
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLET;
    ev.data.ptr = ls;
    ::epoll_ctl(ep_, EPOLL_CTL_ADD, fd, &ev);
    listeners_[key] = ls;
    Accept(ls);  // connections may already be queued
  }
}

void Worker::Impl::ScanTimeouts() {
  const int64_t idle_ms = routing_ ? routing_->idle_timeout_ms : 60000;
  std::vector<HttpSession*> http(http_sessions_.begin(), http_sessions_.end());
  for (HttpSession* s : http)
    if (!s->dead) s->CheckTimeouts(now_ms_, idle_ms, draining_);
  std::vector<TcpSession*> tcp(tcp_sessions_.begin(), tcp_sessions_.end());
  for (TcpSession* s : tcp)
    if (!s->dead) s->CheckTimeouts(now_ms_, idle_ms);
  // Pooled connections idle longer than the idle timeout are closed (the back end would do it soon anyway).
  for (auto& [key, idle] : pool_) {
    std::vector<BackendConn*> old;
    for (BackendConn* c : idle)
      if (now_ms_ - c->idle_since_ms > idle_ms) old.push_back(c);
    for (BackendConn* c : old) CloseBackend(c);
  }
  FlushAccessLog();
}

void Worker::Impl::AccessLog(const std::string& line) {
  access_log_ += line;
  if (access_log_.size() > 32 * 1024) FlushAccessLog();
}

void Worker::Impl::FlushAccessLog() {
  if (access_log_.empty() || !routing_ || routing_->access_log_fd < 0) {
    access_log_.clear();
    return;
  }
  // O_APPEND: each write lands whole at the end, so workers' lines never interleave mid-line.
  ssize_t ignored = ::write(routing_->access_log_fd, access_log_.data(), access_log_.size());
  (void)ignored;
  access_log_.clear();
}

void Worker::Impl::Run() {
  epoll_event events[256];
  generation_ = published_->generation();
  now_ms_ = MonotonicMs();
  ApplyRouting();
  while (!kill_requested_.load(std::memory_order_relaxed)) {
    int n = ::epoll_wait(ep_, events, 256, static_cast<int>(kScanIntervalMs));
    now_ms_ = MonotonicMs();
    for (int i = 0; i < n; ++i) {
      auto* h = static_cast<Handler*>(events[i].data.ptr);
      if (h == nullptr) {  // wake-up
        uint64_t v;
        ssize_t ignored = ::read(wake_fd_, &v, sizeof v);
        (void)ignored;
        continue;
      }
      if (!h->dead) h->OnEvent(events[i].events);
    }
    for (Handler* h : graveyard_) delete h;
    graveyard_.clear();
    if (drain_requested_.load(std::memory_order_relaxed) && !draining_) {
      draining_ = true;
      ApplyRouting();  // closes the listeners
      ScanTimeouts();  // closes idle connections
    }
    if (published_->generation() != generation_) {
      generation_ = published_->generation();
      ApplyRouting();
    }
    if (now_ms_ - last_scan_ms_ >= kScanIntervalMs) {
      last_scan_ms_ = now_ms_;
      ScanTimeouts();
      for (Handler* h : graveyard_) delete h;
      graveyard_.clear();
    }
    if (draining_ && http_sessions_.empty() && tcp_sessions_.empty()) break;
  }
  // Shut down: close everything this worker still holds.
  std::vector<HttpSession*> http(http_sessions_.begin(), http_sessions_.end());
  for (HttpSession* s : http) s->Close();
  std::vector<TcpSession*> tcp(tcp_sessions_.begin(), tcp_sessions_.end());
  for (TcpSession* s : tcp) s->Close();
  for (auto& [key, idle] : pool_) {
    std::vector<BackendConn*> all = idle;
    for (BackendConn* c : all) CloseBackend(c);
  }
  for (auto& [key, ls] : listeners_) {
    ::close(ls->fd);
    Bury(ls);
  }
  listeners_.clear();
  FlushAccessLog();
  for (Handler* h : graveyard_) delete h;
  graveyard_.clear();
}

// ---------------------------------------------------------------------------------------------------------------

Worker::Worker(int index, const Published* published)
    : impl_(std::make_unique<Impl>(index, published, &metrics_)) {}
Worker::~Worker() {
  Kill();
  Join();
}
void Worker::Start() { thread_ = std::thread([this] { impl_->Run(); }); }
void Worker::RequestReload() { impl_->Wake(); }
void Worker::RequestDrain() {
  impl_->drain_requested_ = true;
  impl_->Wake();
}
void Worker::Kill() {
  impl_->kill_requested_ = true;
  impl_->Wake();
}
void Worker::Join() {
  if (thread_.joinable()) thread_.join();
}
uint64_t Worker::applied_generation() const { return impl_->applied_generation_.load(std::memory_order_acquire); }

}  // namespace autopipe::lb

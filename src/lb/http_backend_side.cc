// The back-end half of an HttpSession: the request head as the back end gets it, picking a back end and
// connecting (with retries), sending the request, and reading and framing the back end's response.
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "lb/http_session.h"
#include "lb/sockets.h"

namespace autopipe::lb {
namespace {

bool IsIdempotent(std::string_view method) {
  return method == "GET" || method == "HEAD" || method == "PUT" || method == "DELETE" || method == "OPTIONS" ||
         method == "TRACE";
}

}  // namespace

void HttpSession::OnBackendEvent(uint32_t events) {
  if (be_->connecting) {
    if (!(events & (kEventWritable | kEventHangup))) return;
    if (ConnectError(be_->fd) != 0) {
      ConnectFailed();
      return;
    }
    be_->connecting = false;
    FlushBackend();
    if (dead) return;
  } else if (events & kEventWritable) {
    FlushBackend();
    if (dead || !be_) return;
  }
  if (be_ && (events & kEventReadable)) ReadBackend();
}

// The request head for the back end: the client's request line and headers, minus hop-by-hop headers and the
// X-Forwarded-* it sent, plus ELB's X-Forwarded-For (appended), -Proto and -Port.
void HttpSession::ComposeHead() {
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
    be_out_ += ctx_->routing->node_address;
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
bool HttpSession::PickBackendAndConnect() {
  while (attempts_ < kMaxAttempts) {
    ++attempts_;
    auto backend = ctx_->picker.LeastOutstanding(ctx_->routing->backends, tried_);
    if (!backend) break;
    backend->outstanding.fetch_add(1, std::memory_order_relaxed);
    BackendConn* c = ctx_->pool.Acquire(backend, listener_.instance_port, this);
    if (c == nullptr) {
      backend->outstanding.fetch_sub(1, std::memory_order_relaxed);
      tried_.push_back(backend.get());
      continue;
    }
    be_ = c;
    if (ctx_->access_log.enabled()) last_backend_ = backend->address + ":" + std::to_string(c->port);
    return true;
  }
  tried_.clear();
  SendError(503);
  return false;
}

void HttpSession::ConnectFailed() {
  Backend& b = *be_->backend;
  ctx_->pool.NoteConnectFailure(b);
  tried_.push_back(&b);
  DropBackend(/*reusable=*/false);
  be_out_off_ = 0;  // nothing reached the back end: send it all again elsewhere
  if (PickBackendAndConnect()) FlushBackend();
}

void HttpSession::DropBackend(bool reusable) {
  if (!be_) return;
  be_->backend->outstanding.fetch_sub(1, std::memory_order_relaxed);
  ctx_->pool.Release(be_, reusable);
  be_ = nullptr;
}

void HttpSession::FlushBackend() {
  if (!be_ || be_->connecting) return;
  while (be_out_off_ < be_out_.size()) {
    ssize_t n = ::send(be_->fd, be_out_.data() + be_out_off_, be_out_.size() - be_out_off_, MSG_NOSIGNAL);
    if (n > 0) {
      be_out_off_ += static_cast<size_t>(n);
      backend_activity_ms_ = ctx_->loop.now_ms();  // an upload in progress is not a silent back end
      continue;
    }
    if (n < 0 && errno == EAGAIN) {
      ctx_->loop.SetWantWrite(be_->fd, be_, &be_->want_write, true);
      return;
    }
    BackendFailedBeforeResponse();
    return;
  }
  ctx_->loop.SetWantWrite(be_->fd, be_, &be_->want_write, false);
  if (request_sent_us_ == 0 && req_state_ == ReqState::kSent) request_sent_us_ = MonotonicUs();
  if (req_state_ == ReqState::kBody) ForwardBody();
}

// The back end went away before answering (write error, EOF or reset).
void HttpSession::BackendFailedBeforeResponse() {
  const bool retry = be_->reused && req_.body == BodyKind::kNone && IsIdempotent(method_) && got_response_bytes_ == 0;
  if (retry && attempts_ < kMaxAttempts) {
    DropBackend(false);
    be_out_off_ = 0;
    if (PickBackendAndConnect()) FlushBackend();
    return;
  }
  DropBackend(false);
  SendError(504);  // ELB: the back end closed the connection
}

// Re-entry guard: see ReadClient.
void HttpSession::ReadBackend() {
  if (reading_backend_) return;
  reading_backend_ = true;
  ReadBackendLoop();
  reading_backend_ = false;
}

void HttpSession::ReadBackendLoop() {
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
      backend_activity_ms_ = ctx_->loop.now_ms();
      OnResponseBytes();
      if (static_cast<size_t>(n) < space) return;
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
    BackendEof();
    return;
  }
}

void HttpSession::BackendEof() {
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

void HttpSession::OnResponseBytes() {
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

}  // namespace autopipe::lb

// The client half of an HttpSession: reading and parsing the client's request, forwarding its body, writing
// the response back, the node's own answers, the end of each request (counting, logging) and timeouts.
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "lb/access_log.h"
#include "lb/http_session.h"

namespace autopipe::lb {
namespace {

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

// ELB's own error answer (the connection closes after it).
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

}  // namespace

HttpSession::HttpSession(WorkerContext* ctx, int fd, const ListenerConfig& listener, const sockaddr_in& peer)
    : ctx_(ctx), fd_(fd), listener_(listener) {
  ::inet_ntop(AF_INET, &peer.sin_addr, client_ip_, sizeof client_ip_);
  client_port_ = ntohs(peer.sin_port);
  last_activity_ms_ = ctx_->loop.now_ms();
  ctx_->metrics.open_connections.fetch_add(1, std::memory_order_relaxed);
}

HttpSession::~HttpSession() { ctx_->metrics.open_connections.fetch_sub(1, std::memory_order_relaxed); }

void HttpSession::Start() {
  ctx_->loop.Watch(fd_, this, false);
  OnEvent(EPOLLIN);  // data often arrives with the connection
}

void HttpSession::OnEvent(uint32_t events) {
  if (events & kEventWritable) FlushClient();
  if (!dead && (events & kEventReadable)) ReadClient();
}

// Periodic checks; returns after closing the session when a timeout hit.
void HttpSession::CheckTimeouts(int64_t now, int64_t idle_ms, bool draining) {
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

// Re-entry guards: ReadClient/ReadBackend loop until the socket is drained, so calls made further down the
// stack (after a flush frees buffer space) only need to happen when no such loop is running; without them a
// large body would recurse once per buffer.
void HttpSession::ReadClient() {
  if (reading_client_) return;
  reading_client_ = true;
  ReadClientLoop();
  reading_client_ = false;
}

void HttpSession::ReadClientLoop() {
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
      if (in_.empty() && req_state_ == ReqState::kIdle) head_started_ms_ = ctx_->loop.now_ms();
      in_.end += static_cast<size_t>(n);
      received_bytes_ += static_cast<uint64_t>(n);
      last_activity_ms_ = ctx_->loop.now_ms();
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

void HttpSession::Process() {
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

void HttpSession::StartRequest() {
  request_start_us_ = MonotonicUs();
  received_bytes_ = in_.size();
  sent_bytes_ = 0;
  attempts_ = 0;
  method_.assign(req_.method.data(), req_.method.size());
  if (ctx_->access_log.enabled()) {
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
  backend_activity_ms_ = ctx_->loop.now_ms();
  if (!PickBackendAndConnect()) return;
  FlushBackend();  // the head, then (ForwardBody) whatever part of the body has arrived
  if (!dead && !client_out_.empty()) FlushClient();
}

void HttpSession::ForwardBody() {
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

// After ELB's own error answer: closing at once while the client is still sending would make the kernel
// reset the connection, and the client could lose the answer. So the write side is shut, and what the client
// still sends is read and dropped until it closes too (or kLingerMs passes).
void HttpSession::Linger() {
  if (lingering_) return;
  lingering_ = true;
  linger_since_ms_ = ctx_->loop.now_ms();
  ::shutdown(fd_, SHUT_WR);
  Discard();
}

void HttpSession::Discard() {
  char scratch[16384];
  while (!dead) {
    ssize_t n = ::recv(fd_, scratch, sizeof scratch, 0);
    if (n > 0) continue;
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
    Close();
    return;
  }
}

// Sends what it can of data[0..len) to the client; returns the bytes sent, or -1 when the client cannot take
// more now (kEventWritable armed) or is gone (session closed: check `dead`).
ssize_t HttpSession::SendToClient(const char* data, size_t len) {
  ssize_t n = ::send(fd_, data, len, MSG_NOSIGNAL);
  if (n > 0) return n;
  if (n < 0 && errno == EAGAIN) {
    ctx_->loop.SetWantWrite(fd_, this, &want_write_, true);
  } else {
    Close();
  }
  return -1;
}

void HttpSession::FlushClient() {
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
    last_activity_ms_ = ctx_->loop.now_ms();
  }
  ctx_->loop.SetWantWrite(fd_, this, &want_write_, false);
  if (resp_state_ == RespState::kDone) {
    MaybeFinish();
  } else if (be_ && resp_state_ != RespState::kNone) {
    ReadBackend();  // we may have stopped reading while the client caught up
  }
}

// The response is complete and delivered: account for it, free the back end, go on with the next request.
void HttpSession::MaybeFinish() {
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
  last_activity_ms_ = ctx_->loop.now_ms();
  head_started_ms_ = ctx_->loop.now_ms();
  if (!in_.empty()) Process();  // a pipelined request (or the first part of one)
  if (!dead) ResumeClient();
}

// Reads on from the client if an earlier read stopped with bytes left in the socket (their edge came while we
// were busy). Otherwise the socket was drained, and new bytes bring a new edge: no read is spent on EAGAIN.
void HttpSession::ResumeClient() {
  if (!client_unread_) return;
  client_unread_ = false;
  ReadClient();
}

void HttpSession::CountResponse() {
  auto& m = ctx_->metrics;
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
  if (ctx_->access_log.enabled()) LogRequest(status_, status_);
}

void HttpSession::LogRequest(int elb_status, int backend_status) {
  const int64_t end_us = MonotonicUs();
  auto secs = [](int64_t us) { return us < 0 ? -1.0 : static_cast<double>(us) / 1e6; };
  AccessLogEntry e;
  e.load_balancer_name = ctx_->routing->load_balancer_name;
  e.client_ip = client_ip_;
  e.client_port = client_port_;
  e.backend = last_backend_;
  if (request_sent_us_) e.request_processing_s = secs(request_sent_us_ - request_start_us_);
  if (response_head_us_ && request_sent_us_) e.backend_processing_s = secs(response_head_us_ - request_sent_us_);
  if (response_head_us_) e.response_processing_s = secs(end_us - response_head_us_);
  e.elb_status = elb_status;
  e.backend_status = backend_status;
  e.received_bytes = received_bytes_;
  e.sent_bytes = sent_bytes_;
  e.method = method_;
  e.target = target_;
  e.http_minor_version = req_.version_minor;
  e.user_agent = user_agent_;
  ctx_->access_log.Append(FormatAccessLogLine(e));
}

// ELB's own answer; the connection closes after it.
void HttpSession::SendError(int status) {
  if (dead) return;
  if (resp_state_ == RespState::kBody || resp_state_ == RespState::kDone || fwd_pending_ > 0) {
    Close();  // the client already has part of a response
    return;
  }
  DropBackend(false);
  auto& m = ctx_->metrics;
  m.request_count.fetch_add(1, std::memory_order_relaxed);
  (status < 500 ? m.elb_4xx : m.elb_5xx).fetch_add(1, std::memory_order_relaxed);
  if (ctx_->access_log.enabled()) LogRequest(status, 0);
  client_out_ += ElbResponse(status);
  closing_ = true;
  resp_state_ = RespState::kDone;
  FlushClient();
}

void HttpSession::Close() {
  if (dead) return;
  if (be_) DropBackend(false);
  ::close(fd_);
  ctx_->http_sessions.erase(this);
  ctx_->loop.Bury(this);
}

}  // namespace autopipe::lb

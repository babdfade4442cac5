#include "api/http_server.h"

#include <netdb.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>

#include "common/log.h"
#include "lb/http_parser.h"
#include "lb/sockets.h"

namespace autopipe {
namespace {

constexpr int64_t kLingerMs = 2'000;        // after a refusal: how long the client's remaining bytes are drained
constexpr size_t kReadChunk = 64 << 10;     // one recv
constexpr char kContinue[] = "HTTP/1.1 100 Continue\r\n\r\n";

const char* Reason(int status) {
  switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 413: return "Payload Too Large";
    case 429: return "Too Many Requests";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    default: return status < 400 ? "OK" : status < 500 ? "Bad Request" : "Internal Server Error";
  }
}

void AppendReply(const HttpReply& reply, bool close, bool http10_keep_alive, std::string* out) {
  out->append("HTTP/1.1 ").append(std::to_string(reply.status)).append(" ").append(Reason(reply.status));
  out->append("\r\n");
  if (!reply.content_type.empty()) out->append("Content-Type: ").append(reply.content_type).append("\r\n");
  for (const auto& [name, value] : reply.headers) out->append(name).append(": ").append(value).append("\r\n");
  out->append("Content-Length: ").append(std::to_string(reply.body.size())).append("\r\n");
  if (close) out->append("Connection: close\r\n");
  else if (http10_keep_alive) out->append("Connection: keep-alive\r\n");
  out->append("\r\n").append(reply.body);
}

// Decodes a chunked body that lb::ChunkedScanner has already found well-formed and complete.
std::string DecodeChunked(std::string_view raw) {
  std::string body;
  size_t p = 0;
  while (p < raw.size()) {
    uint64_t size = 0;
    std::from_chars(raw.data() + p, raw.data() + raw.size(), size, 16);
    size_t line_end = raw.find("\r\n", p);
    if (line_end == std::string_view::npos || size == 0) break;  // the last chunk (trailers are dropped)
    p = line_end + 2;
    if (size > raw.size() - p) break;
    body.append(raw.substr(p, size));
    p += size + 2;  // the data and its CRLF
  }
  return body;
}

Result<int> OpenApiListener(const std::string& host, int port) {
  addrinfo hints{};
  hints.ai_family = AF_INET;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (::getaddrinfo(host.c_str(), nullptr, &hints, &found) != 0 || found == nullptr) {
    return Status::Internal("cannot resolve " + host);
  }
  sockaddr_in addr = *reinterpret_cast<sockaddr_in*>(found->ai_addr);
  ::freeaddrinfo(found);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return Status::Internal(std::string("socket: ") + std::strerror(errno));
  // SO_REUSEADDR only: without SO_REUSEPORT a second server on the same port fails to bind instead of sharing it.
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(fd, 4096) != 0) {
    Status error = Status::Internal("cannot listen on " + host + ":" + std::to_string(port) + ": " +
                                    std::strerror(errno));
    ::close(fd);
    return error;
  }
  return fd;
}

}  // namespace

// One client connection, on the loop thread. States in the order a request goes through them.
class HttpServer::Connection : public lb::FdHandler {
 public:
  enum class State : uint8_t {
    kHead,     // reading a request head (idle_: none of it yet)
    kBody,     // reading its body
    kHandler,  // a worker runs the handler; nothing is read meanwhile
    kReply,    // writing the reply
    kLinger,   // refused: write side shut, the client's bytes drained until EOF or kLingerMs
  };

  Connection(HttpServer* server, int fd, uint64_t id)
      : server_(server), fd_(fd), id_(id), deadline_ms_(server->loop_.now_ms() + server->options_.head_timeout_ms) {}

  void OnEvent(uint32_t events) override {
    if (events & lb::kEventWritable) Flush();
    if (!dead && (events & lb::kEventReadable)) ReadAll();
  }

  // Reads until the socket is drained (edge-triggered), or until a request goes to a worker.
  void ReadAll() {
    char buf[kReadChunk];
    while (!dead) {
      if (state_ == State::kHandler || state_ == State::kReply) return;  // read again after the reply
      ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n > 0) {
        if (state_ == State::kLinger) continue;  // discarded
        if (state_ == State::kHead && idle_) {
          idle_ = false;
          deadline_ms_ = server_->loop_.now_ms() + server_->options_.head_timeout_ms;
        }
        in_.append(buf, static_cast<size_t>(n));
        Process(std::memchr(buf, '\n', static_cast<size_t>(n)) != nullptr);
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && errno == EAGAIN) return;
      Close();  // EOF or an error: a request not yet handed over has no one to answer to
      return;
    }
  }

  // A worker's reply, on the loop thread.
  void Deliver(const HttpReply& reply) {
    if (state_ != State::kHandler) return;
    AppendReply(reply, !keep_alive_, keep_alive_ && http10_, &out_);
    close_after_reply_ = !keep_alive_;
    StartReply();
  }

  void CheckTimeout(int64_t now) {
    if (state_ == State::kHandler || now < deadline_ms_) return;
    if (state_ == State::kHead && !idle_ && !in_.empty()) {
      Refuse(408, "RequestTimeout", "The request head was not received within the time allowed");
    } else if (state_ == State::kBody) {
      Refuse(408, "RequestTimeout", "The request body was not received within the time allowed");
    } else {
      Close();  // idle, a reply the client does not read, or the end of a linger
    }
  }

  void Close() {
    if (dead) return;
    ::close(fd_);
    server_->Remove(this);
    server_->loop_.Bury(this);
  }

  uint64_t id() const { return id_; }

 private:
  // Parses what is buffered. `line_ended`: a head is only re-parsed when a line ended since, so a head trickled
  // in byte by byte costs one parse per line, not per byte.
  void Process(bool line_ended) {
    const HttpServerOptions& opt = server_->options_;
    while (!dead) {
      if (state_ == State::kHead) {
        if (in_.empty()) return;
        if (!line_ended) {
          if (in_.size() > opt.max_head_bytes) Refuse(400, "BadRequest", "The request head is too large");
          return;
        }
        lb::RequestHead head;
        lb::ParseStatus parsed = lb::ParseRequest(in_.data(), in_.size(), &head);
        if (parsed == lb::ParseStatus::kIncomplete) {
          if (in_.size() > opt.max_head_bytes) Refuse(400, "BadRequest", "The request head is too large");
          return;
        }
        if (parsed == lb::ParseStatus::kError) {
          if (head.error_status == 405) Refuse(405, "MethodNotAllowed", "The method is not allowed");
          else Refuse(400, "BadRequest", "The request is not valid HTTP/1.1");
          return;
        }
        if (head.head_length > opt.max_head_bytes) {
          Refuse(400, "BadRequest", "The request head is too large");
          return;
        }
        TakeHead(head);
        in_.erase(0, head.head_length);
        if (std::find(opt.methods.begin(), opt.methods.end(), request_.method) == opt.methods.end()) {
          Refuse(405, "MethodNotAllowed", "The method " + request_.method + " is not allowed");
          return;
        }
        if (head.body == lb::BodyKind::kContentLength && head.content_length > opt.max_body_bytes) {
          Refuse(413, "RequestEntityTooLarge",
                 "The request body of " + std::to_string(head.content_length) + " bytes exceeds the maximum of " +
                     std::to_string(opt.max_body_bytes) + " bytes");
          return;
        }
        state_ = State::kBody;
        deadline_ms_ = server_->loop_.now_ms() + opt.body_timeout_ms;
        if (head.expect_continue && body_left_ > in_.size()) {
          out_.append(kContinue);
          Flush();
          if (dead) return;
        }
        continue;
      }
      if (state_ == State::kBody) {
        if (!ReadBody()) return;
        state_ = State::kHandler;
        server_->Submit(id_, std::move(request_));
        request_ = SigV4Request();
      }
      return;
    }
  }

  void TakeHead(const lb::RequestHead& head) {
    request_ = SigV4Request();
    request_.method.assign(head.method);
    request_.target.assign(head.target);
    request_.headers.reserve(head.header_count);
    for (size_t i = 0; i < head.header_count; ++i) {
      request_.headers.emplace_back(std::string(head.headers[i].name), std::string(head.headers[i].value));
    }
    keep_alive_ = head.keep_alive;
    http10_ = head.version_minor == 0;
    chunked_body_ = head.body == lb::BodyKind::kChunked;
    body_left_ = head.body == lb::BodyKind::kContentLength ? head.content_length : 0;
    chunked_ = lb::ChunkedScanner();
    raw_chunked_.clear();
    request_.body.reserve(body_left_);
  }

  // Moves buffered body bytes into the request; true once the body is complete.
  bool ReadBody() {
    const HttpServerOptions& opt = server_->options_;
    if (!chunked_body_) {
      size_t take = std::min<uint64_t>(body_left_, in_.size());
      request_.body.append(in_, 0, take);
      in_.erase(0, take);
      body_left_ -= take;
      return body_left_ == 0;
    }
    size_t consumed = 0;
    auto scanned = chunked_.Feed(in_.data(), in_.size(), &consumed);
    raw_chunked_.append(in_, 0, consumed);
    in_.erase(0, consumed);
    if (scanned == lb::ChunkedScanner::Result::kError) {
      Refuse(400, "BadRequest", "The chunked request body is malformed");
      return false;
    }
    // A chunked body counts with its framing: a client sending more than the limit this way is refused too.
    if (raw_chunked_.size() > opt.max_body_bytes) {
      Refuse(413, "RequestEntityTooLarge",
             "The request body exceeds the maximum of " + std::to_string(opt.max_body_bytes) + " bytes");
      return false;
    }
    if (scanned != lb::ChunkedScanner::Result::kDone) return false;
    request_.body = DecodeChunked(raw_chunked_);
    raw_chunked_.clear();
    return true;
  }

  // The server's own answer; the connection closes after it.
  void Refuse(int status, const std::string& code, const std::string& message) {
    HttpReply reply;
    try {
      reply = server_->refuse_(request_, Status(status, code, message));
    } catch (const std::exception& e) {
      spdlog::error("api edge: rendering a refusal threw: {}", e.what());
      reply.status = status;
    }
    request_ = SigV4Request();
    in_.clear();
    out_.erase(0, out_sent_);  // a "100 Continue" not fully sent yet still goes first
    out_sent_ = 0;
    AppendReply(reply, true, false, &out_);
    close_after_reply_ = true;
    StartReply();
  }

  void StartReply() {
    state_ = State::kReply;
    deadline_ms_ = server_->loop_.now_ms() + server_->options_.body_timeout_ms;
    Flush();
  }

  // Writes what is pending; a short write asks for output events.
  void Flush() {
    while (out_sent_ < out_.size()) {
      ssize_t n = ::send(fd_, out_.data() + out_sent_, out_.size() - out_sent_, MSG_NOSIGNAL);
      if (n > 0) {
        out_sent_ += static_cast<size_t>(n);
        if (state_ == State::kReply) deadline_ms_ = server_->loop_.now_ms() + server_->options_.body_timeout_ms;
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && errno == EAGAIN) {
        server_->loop_.SetWantWrite(fd_, this, &want_write_, true);
        return;
      }
      Close();
      return;
    }
    out_.clear();
    out_sent_ = 0;
    server_->loop_.SetWantWrite(fd_, this, &want_write_, false);
    if (state_ == State::kReply) FinishReply();
  }

  void FinishReply() {
    if (close_after_reply_) {
      // Shut the write side and drain: closing with unread bytes would reset the connection, and the client
      // could lose the answer it has not read yet.
      ::shutdown(fd_, SHUT_WR);
      state_ = State::kLinger;
      deadline_ms_ = server_->loop_.now_ms() + kLingerMs;
      in_.clear();
      ReadAll();
      return;
    }
    state_ = State::kHead;
    idle_ = in_.empty();
    deadline_ms_ = server_->loop_.now_ms() +
                   (idle_ ? server_->options_.idle_timeout_ms : server_->options_.head_timeout_ms);
    Process(true);  // a pipelined request already buffered
    if (!dead) ReadAll();
  }

  HttpServer* const server_;
  const int fd_;
  const uint64_t id_;
  State state_ = State::kHead;
  bool idle_ = false;              // kHead with no byte of the next request yet (a new connection counts as a head)
  int64_t deadline_ms_;            // when the current state times out (not in kHandler)
  std::string in_;                 // received, not yet consumed
  std::string out_;                // to send; out_sent_ bytes of it are sent
  size_t out_sent_ = 0;
  bool want_write_ = false;
  SigV4Request request_;           // the request being read
  bool keep_alive_ = true;
  bool http10_ = false;
  bool close_after_reply_ = false;
  bool chunked_body_ = false;
  uint64_t body_left_ = 0;         // Content-Length bytes still to read
  lb::ChunkedScanner chunked_;
  std::string raw_chunked_;        // a chunked body as received, decoded once complete
};

class HttpServer::Listener : public lb::FdHandler {
 public:
  explicit Listener(HttpServer* server) : server_(server) {}
  void OnEvent(uint32_t) override { server_->AcceptAll(); }

 private:
  HttpServer* server_;
};

HttpServer::HttpServer(Handler handler, Refuse refuse, HttpServerOptions options)
    : handler_(std::move(handler)), refuse_(std::move(refuse)), options_(options) {}

HttpServer::~HttpServer() {
  Stop();
  if (listen_fd_ >= 0) ::close(listen_fd_);
}

Result<int> HttpServer::Bind(const std::string& host, int port) {
  auto fd = OpenApiListener(host, port);
  if (!fd.ok()) return fd.status();
  listen_fd_ = *fd;
  return lb::LocalPort(listen_fd_);
}

void HttpServer::Start() {
  if (listen_fd_ < 0 || loop_thread_.joinable()) return;
  // Every connection is a descriptor: a soft limit of 1,024 (a common default) would stop accepting long before
  // max_connections. The hard limit is the operator's; the soft one is raised to it.
  rlimit files{};
  if (::getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur < files.rlim_max) {
    files.rlim_cur = files.rlim_max;
    if (::setrlimit(RLIMIT_NOFILE, &files) != 0) spdlog::warn("api edge: cannot raise the descriptor limit");
  }
  listener_ = std::make_unique<Listener>(this);
  loop_.WatchListener(listen_fd_, listener_.get());
  const int64_t shortest = std::min({options_.head_timeout_ms, options_.body_timeout_ms, options_.idle_timeout_ms});
  loop_.RunEvery(std::clamp<int64_t>(shortest / 4, 10, 250), [this] { ScanTimeouts(); });
  for (int i = 0; i < std::max(1, options_.worker_threads); ++i) workers_.emplace_back([this] { WorkerMain(); });
  loop_thread_ = std::thread([this] { LoopMain(); });
}

void HttpServer::Stop() {
  stopping_.store(true);
  if (loop_thread_.joinable()) {
    loop_.Wake();
    loop_thread_.join();
  }
  {
    std::lock_guard lock(jobs_mu_);
    workers_stop_ = true;
    jobs_.clear();
  }
  jobs_cv_.notify_all();
  for (auto& w : workers_) w.join();
  workers_.clear();
}

void HttpServer::LoopMain() {
  AcceptAll();  // connections that queued before the loop ran
  while (!stopping_.load()) loop_.RunOnce();
  ::close(listen_fd_);
  listen_fd_ = -1;
  std::vector<Connection*> open;
  for (auto& [id, c] : connections_) open.push_back(c);
  for (Connection* c : open) c->Close();
  loop_.CollectGarbage();
}

void HttpServer::AcceptAll() {
  accept_paused_ = false;
  while (listen_fd_ >= 0) {
    int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
        // Out of descriptors: the listener's edge is spent, so the timeout scan tries again.
        if (!accept_paused_) spdlog::warn("api edge: cannot accept: {}", std::strerror(errno));
        accept_paused_ = true;
      }
      return;
    }
    if (connections_.size() >= options_.max_connections) {
      ::close(fd);
      continue;
    }
    lb::SetNoDelay(fd);
    auto* c = new Connection(this, fd, next_connection_id_++);
    connections_.emplace(c->id(), c);
    open_connections_.fetch_add(1, std::memory_order_relaxed);
    loop_.Watch(fd, c, false);
    c->ReadAll();  // the request often arrives with the connection
  }
}

void HttpServer::ScanTimeouts() {
  if (accept_paused_) AcceptAll();
  const int64_t now = loop_.now_ms();
  std::vector<Connection*> all;
  all.reserve(connections_.size());
  for (auto& [id, c] : connections_) all.push_back(c);
  for (Connection* c : all) {
    if (!c->dead) c->CheckTimeout(now);
  }
}

void HttpServer::Remove(Connection* c) {
  connections_.erase(c->id());
  open_connections_.fetch_sub(1, std::memory_order_relaxed);
}

void HttpServer::Submit(uint64_t connection_id, SigV4Request request) {
  {
    std::lock_guard lock(jobs_mu_);
    jobs_.push_back(Job{connection_id, std::move(request)});
  }
  jobs_cv_.notify_one();
}

void HttpServer::WorkerMain() {
  while (true) {
    Job job;
    {
      std::unique_lock lock(jobs_mu_);
      jobs_cv_.wait(lock, [this] { return workers_stop_ || !jobs_.empty(); });
      if (workers_stop_) return;
      job = std::move(jobs_.front());
      jobs_.pop_front();
    }
    HttpReply reply;
    try {
      reply = handler_(job.request);
    } catch (const std::exception& e) {
      spdlog::error("api edge: the request handler threw: {}", e.what());
      reply = refuse_(job.request, Status(500, "InternalFailure",
                                          "The request processing has failed because of an unknown error", false));
    }
    if (stopping_.load()) continue;
    loop_.Post([this, id = job.connection_id, reply = std::move(reply)] {
      auto it = connections_.find(id);
      if (it != connections_.end() && !it->second->dead) it->second->Deliver(reply);
    });
  }
}

}  // namespace autopipe

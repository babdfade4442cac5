#include "lb/tcp_proxy.h"

#include <arpa/inet.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <future>
#include <thread>
#include <unordered_map>
#include <vector>

#include "lb/event_loop.h"
#include "lb/sockets.h"
#include "lb/tcp_session.h"

namespace autopipe::lb {
namespace {

// How often idle sessions are looked for: a fraction of the timeout, at most a second.
int64_t IdleCheckPeriodMs(int64_t idle_timeout_ms) { return std::clamp<int64_t>(idle_timeout_ms / 4, 10, 1000); }

}  // namespace

Result<TcpBackendAddress> ParseTcpBackendAddress(const std::string& ip, int port) {
  TcpBackendAddress a;
  if (::inet_pton(AF_INET, ip.c_str(), &a.ip) != 1 || port <= 0 || port > 65535)
    return Status::Internal("bad back-end address " + ip + ":" + std::to_string(port));
  a.port = port;
  return a;
}

class TcpProxy::Impl : public FdHandler, public TcpSession::Observer {
 public:
  Impl(int listen_fd, Picker picker, Options options)
      : listen_fd_(listen_fd), port_(LocalPort(listen_fd)), picker_(std::move(picker)), options_(options) {}

  ~Impl() override {
    stop_.store(true, std::memory_order_relaxed);
    loop_.Wake();
    if (thread_.joinable()) thread_.join();
    // The thread is gone: what it owned is ours to close.
    std::vector<TcpSession*> open;
    for (auto& [s, backend] : sessions_) open.push_back(s);
    for (TcpSession* s : open) s->Close();
    ::close(listen_fd_);
  }

  void Start() {
    loop_.WatchListener(listen_fd_, this);
    loop_.RunEvery(IdleCheckPeriodMs(options_.idle_timeout_ms), [this] { CheckIdle(); });
    if (options_.hold_when_no_backend) {
      loop_.RunEvery(kHoldRetryMs, [this] {
        if (holding_) OnEvent(0);
      });
    }
    thread_ = std::thread([this] {
      while (!stop_.load(std::memory_order_relaxed)) loop_.RunOnce();
    });
  }

  int port() const { return port_; }
  size_t session_count() const { return session_count_.load(std::memory_order_relaxed); }

  size_t CloseSessionsTo(const TcpBackendAddress& backend) {
    std::promise<size_t> closed;
    loop_.Post([&] {
      std::vector<TcpSession*> doomed;
      for (auto& [s, b] : sessions_)
        if (b == backend) doomed.push_back(s);
      for (TcpSession* s : doomed) s->Close();
      closed.set_value(doomed.size());
    });
    return closed.get_future().get();
  }

  // The listener: accept everything queued (edge-triggered).
  void OnEvent(uint32_t) override {
    holding_ = false;
    while (true) {
      if (options_.hold_when_no_backend && !picker_()) {
        holding_ = true;  // leave the queued connections in the backlog; retried every kHoldRetryMs
        return;
      }
      int client = ::accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (client < 0) return;  // EAGAIN, or out of descriptors (retried on the next connection)
      SetNoDelay(client);
      std::optional<TcpBackendAddress> backend = picker_();
      int backend_fd = -1;
      const ConnectStart start =
          backend ? ConnectNonBlocking(backend->ip, backend->port, &backend_fd) : ConnectStart::kNoSocket;
      if (!Started(start)) {
        ::close(client);
        continue;
      }
      auto* s = new TcpSession(&loop_, client, backend_fd, start == ConnectStart::kInProgress, this);
      sessions_.emplace(s, *backend);
      session_count_.store(sessions_.size(), std::memory_order_relaxed);
    }
  }

  void OnTcpSessionEnd(TcpSession* s, TcpSession::End) override {
    sessions_.erase(s);
    session_count_.store(sessions_.size(), std::memory_order_relaxed);
  }

 private:
  void CheckIdle() {
    std::vector<TcpSession*> open;
    for (auto& [s, backend] : sessions_) open.push_back(s);
    for (TcpSession* s : open)
      if (!s->dead) s->CheckIdle(loop_.now_ms(), options_.idle_timeout_ms);
  }

  static constexpr int64_t kHoldRetryMs = 5;

  // Constant after construction.
  const int listen_fd_;
  const int port_;
  const Picker picker_;
  const Options options_;

  EventLoop loop_;
  // Proxy thread only.
  std::unordered_map<TcpSession*, TcpBackendAddress> sessions_;
  bool holding_ = false;  // connections may be waiting in the backlog for a back end
  // Any thread.
  std::atomic<size_t> session_count_{0};
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

Result<std::unique_ptr<TcpProxy>> TcpProxy::Start(const std::string& address, int port, Picker picker,
                                                  Options options) {
  AP_ASSIGN_OR_RETURN(int fd, OpenListener(address, port));
  auto impl = std::make_unique<Impl>(fd, std::move(picker), options);
  impl->Start();
  return std::unique_ptr<TcpProxy>(new TcpProxy(std::move(impl)));
}

TcpProxy::TcpProxy(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
TcpProxy::~TcpProxy() = default;
int TcpProxy::port() const { return impl_->port(); }
size_t TcpProxy::CloseSessionsTo(const TcpBackendAddress& backend) { return impl_->CloseSessionsTo(backend); }
size_t TcpProxy::session_count() const { return impl_->session_count(); }

}  // namespace autopipe::lb

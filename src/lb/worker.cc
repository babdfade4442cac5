// A worker's loop: its listeners (opened and closed as routing snapshots change), the accept step of the
// request path, the periodic timeout scan, draining and shutdown. The sessions themselves live in
// http_session.h (HTTP listeners) and tcp_session.h (TCP listeners).
#include "lb/worker.h"

#include <sys/socket.h>
#include <unistd.h>

#include <map>
#include <unordered_map>
#include <utility>
#include <vector>

#include "common/log.h"
#include "lb/http_session.h"
#include "lb/sockets.h"
#include "lb/tcp_session.h"
#include "lb/worker_context.h"

namespace autopipe::lb {
namespace {

constexpr int64_t kScanIntervalMs = 250;
constexpr int kMaxTcpAttempts = 3;  // back ends tried for one TCP connection

}  // namespace

class Worker::Impl : public TcpSession::Observer {
 public:
  Impl(int index, const Published* published, WorkerMetrics* metrics)
      : index_(index), published_(published), ctx_(metrics) {}

  void Run();
  void Wake() { ctx_.loop.Wake(); }

  std::atomic<bool> drain_requested_{false};
  std::atomic<bool> kill_requested_{false};
  std::atomic<uint64_t> applied_generation_{0};

 private:
  // A listening socket of this worker (SO_REUSEPORT: every worker has its own for each listener and address).
  struct ListenSocket : FdHandler {
    Impl* worker = nullptr;
    int fd = -1;
    ListenerConfig listener;
    void OnEvent(uint32_t) override { worker->Accept(this); }
  };

  // accept: every queued connection becomes a session of the listener's protocol.
  void Accept(ListenSocket* ls);
  void StartHttpSession(int fd, const ListenerConfig& listener, const sockaddr_in& peer);
  void StartTcpSession(int client_fd, const ListenerConfig& listener);
  void OnTcpSessionEnd(TcpSession* session, TcpSession::End end) override;

  void ApplyRouting();
  void ScanTimeouts();
  void StartDraining();
  void Shutdown();

  const int index_;
  const Published* const published_;
  uint64_t generation_ = 0;
  WorkerContext ctx_;
  std::map<std::pair<std::string, int>, ListenSocket*> listeners_;  // by address and port
  std::unordered_map<TcpSession*, std::shared_ptr<Backend>> tcp_sessions_;
};

void Worker::Impl::Accept(ListenSocket* ls) {
  while (true) {
    sockaddr_in peer{};
    socklen_t len = sizeof peer;
    int fd = ::accept4(ls->fd, reinterpret_cast<sockaddr*>(&peer), &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) return;  // EAGAIN, or out of descriptors (retried on the next connection)
    SetNoDelay(fd);
    if (ls->listener.protocol == "TCP") {
      StartTcpSession(fd, ls->listener);
    } else {
      StartHttpSession(fd, ls->listener, peer);
    }
  }
}

void Worker::Impl::StartHttpSession(int fd, const ListenerConfig& listener, const sockaddr_in& peer) {
  auto* s = new HttpSession(&ctx_, fd, listener, peer);
  ctx_.http_sessions.insert(s);
  s->Start();  // parse -> pick back end -> forward -> count: see http_session.h
}

// TCP listeners: round robin over routable back ends; a back end that refuses the connect at once is ejected
// and the next one tried.
void Worker::Impl::StartTcpSession(int client_fd, const ListenerConfig& listener) {
  std::vector<const Backend*> tried;
  for (int attempt = 0; attempt < kMaxTcpAttempts; ++attempt) {
    std::shared_ptr<Backend> backend = ctx_.picker.RoundRobin(ctx_.routing->backends, tried);
    if (!backend) break;
    int backend_fd = -1;
    const ConnectStart start = ConnectNonBlocking(backend->ip, listener.instance_port, &backend_fd);
    if (start == ConnectStart::kNoSocket) break;
    if (start == ConnectStart::kRefused) {
      ctx_.pool.NoteConnectFailure(*backend);
      tried.push_back(backend.get());
      continue;
    }
    backend->outstanding.fetch_add(1, std::memory_order_relaxed);
    ctx_.metrics.request_count.fetch_add(1, std::memory_order_relaxed);
    ctx_.metrics.open_connections.fetch_add(1, std::memory_order_relaxed);
    auto* s = new TcpSession(&ctx_.loop, client_fd, backend_fd, start == ConnectStart::kInProgress, this);
    tcp_sessions_.emplace(s, std::move(backend));
    return;
  }
  ::close(client_fd);
}

void Worker::Impl::OnTcpSessionEnd(TcpSession* session, TcpSession::End end) {
  auto it = tcp_sessions_.find(session);
  if (it == tcp_sessions_.end()) return;
  Backend& backend = *it->second;
  if (end == TcpSession::End::kConnectFailed) ctx_.pool.NoteConnectFailure(backend);
  backend.outstanding.fetch_sub(1, std::memory_order_relaxed);
  ctx_.metrics.open_connections.fetch_sub(1, std::memory_order_relaxed);
  tcp_sessions_.erase(it);
}

void Worker::Impl::ApplyRouting() {
  const uint64_t generation = published_->generation();
  ctx_.routing = published_->Get();
  applied_generation_.store(generation, std::memory_order_release);
  ctx_.access_log.set_fd(ctx_.routing ? ctx_.routing->access_log_fd : -1);
  if (!ctx_.routing) return;
  std::map<std::pair<std::string, int>, ListenerConfig> wanted;
  if (!ctx_.draining) {
    for (const auto& addr : ctx_.routing->addresses)
      for (const auto& l : ctx_.routing->listeners) wanted[{addr, l.port}] = l;
  }
  for (auto it = listeners_.begin(); it != listeners_.end();) {
    auto want = wanted.find(it->first);
    if (want == wanted.end() || !(want->second == it->second->listener)) {
      ::close(it->second->fd);  // connections already accepted carry on
      ctx_.loop.Bury(it->second);
      it = listeners_.erase(it);
    } else {
      ++it;
    }
  }
  for (const auto& [key, l] : wanted) {
    if (listeners_.count(key)) continue;
    Result<int> fd = OpenListener(key.first, key.second);
    if (!fd.ok()) {
      if (index_ == 0) spdlog::error("cannot listen on {}:{}: {}", key.first, key.second, fd.status().message());
      continue;
    }
    auto* ls = new ListenSocket;
    ls->worker = this;
    ls->fd = *fd;
    ls->listener = l;
    ctx_.loop.WatchListener(ls->fd, ls);
    listeners_[key] = ls;
    Accept(ls);  // connections may already be queued
  }
}

void Worker::Impl::ScanTimeouts() {
  const int64_t now = ctx_.loop.now_ms();
  const int64_t idle_ms = ctx_.routing ? ctx_.routing->idle_timeout_ms : 60000;
  std::vector<HttpSession*> http(ctx_.http_sessions.begin(), ctx_.http_sessions.end());
  for (HttpSession* s : http)
    if (!s->dead) s->CheckTimeouts(now, idle_ms, ctx_.draining);
  std::vector<TcpSession*> tcp;
  for (auto& [s, backend] : tcp_sessions_) tcp.push_back(s);
  for (TcpSession* s : tcp)
    if (!s->dead) s->CheckIdle(now, idle_ms);
  // Pooled connections idle longer than the idle timeout are closed (the back end would do it soon anyway).
  ctx_.pool.CloseIdle(now, idle_ms);
  ctx_.access_log.Flush();
}

void Worker::Impl::StartDraining() {
  ctx_.draining = true;
  ctx_.pool.set_draining(true);
  ApplyRouting();  // closes the listeners
  ScanTimeouts();  // closes idle connections
}

void Worker::Impl::Run() {
  generation_ = published_->generation();
  ctx_.loop.UpdateTime();
  ApplyRouting();
  ctx_.loop.RunEvery(kScanIntervalMs, [this] { ScanTimeouts(); });
  while (!kill_requested_.load(std::memory_order_relaxed)) {
    ctx_.loop.RunOnce();  // socket events, then the scan when it is due
    if (drain_requested_.load(std::memory_order_relaxed) && !ctx_.draining) StartDraining();
    if (published_->generation() != generation_) {
      generation_ = published_->generation();
      ApplyRouting();
    }
    if (ctx_.draining && ctx_.http_sessions.empty() && tcp_sessions_.empty()) break;
  }
  Shutdown();
}

// Closes everything this worker still holds.
void Worker::Impl::Shutdown() {
  std::vector<HttpSession*> http(ctx_.http_sessions.begin(), ctx_.http_sessions.end());
  for (HttpSession* s : http) s->Close();
  std::vector<TcpSession*> tcp;
  for (auto& [s, backend] : tcp_sessions_) tcp.push_back(s);
  for (TcpSession* s : tcp) s->Close();
  ctx_.pool.CloseAllIdle();
  for (auto& [key, ls] : listeners_) {
    ::close(ls->fd);
    ctx_.loop.Bury(ls);
  }
  listeners_.clear();
  ctx_.access_log.Flush();
  ctx_.loop.CollectGarbage();
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

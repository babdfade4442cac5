#include "lb/lb_node.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "common/log.h"
#include "lb/backends.h"
#include "lb/health_checker.h"
#include "lb/worker.h"

namespace autopipe::lb {
namespace {

int64_t WallMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

const char* HealthName(Health h) {
  switch (h) {
    case Health::kHealthy: return kHealthHealthy;
    case Health::kUnhealthy: return kHealthUnhealthy;
    default: return kHealthUnknown;
  }
}

// The node's state on its main thread: the current config, the back ends by id, the access-log files.
class Node {
 public:
  explicit Node(std::string config_path) : config_path_(std::move(config_path)) {}

  Status Load() {
    auto text = ReadWholeFile(config_path_);
    if (!text.ok()) return text.status();
    auto config = ParseNodeConfig(*text);
    if (!config.ok()) return config.status();
    Apply(*config);
    return Status::Ok();
  }

  const NodeConfig& config() const { return config_; }
  HealthCheckConfig health_check() const {
    std::lock_guard lock(mu_);
    return config_.health_check;
  }
  Published& published() { return published_; }

  NodeStatus Snapshot(const std::vector<std::unique_ptr<Worker>>& workers) const {
    NodeStatus s;
    s.config_version = config_.version;
    s.updated_at_millis = WallMs();
    s.pid = getpid();
    auto routing = published_.Get();
    if (routing) {
      for (const auto& b : routing->backends) {
        BackendStatus bs;
        bs.id = b->id;
        bs.health = HealthName(b->health.load());
        bs.active_requests = static_cast<uint64_t>(std::max<int64_t>(0, b->outstanding.load()));
        std::lock_guard lock(b->error_mu);
        bs.last_error = b->last_error;
        s.backends.push_back(std::move(bs));
      }
    }
    NodeMetrics& m = s.metrics;
    uint64_t latency_us = 0;
    for (const auto& w : workers) {
      const WorkerMetrics& wm = w->metrics();
      m.request_count += wm.request_count.load();
      m.elb_4xx += wm.elb_4xx.load();
      m.elb_5xx += wm.elb_5xx.load();
      m.backend_2xx += wm.backend_2xx.load();
      m.backend_3xx += wm.backend_3xx.load();
      m.backend_4xx += wm.backend_4xx.load();
      m.backend_5xx += wm.backend_5xx.load();
      m.backend_connection_errors += wm.backend_connection_errors.load();
      latency_us += wm.latency_us_sum.load();
      m.latency_count += wm.latency_count.load();
    }
    m.latency_sum_seconds = static_cast<double>(latency_us) / 1e6;
    return s;
  }

 private:
  void Apply(const NodeConfig& config) {
    auto routing = std::make_shared<Routing>();
    routing->version = config.version;
    routing->load_balancer_name = config.load_balancer_name;
    routing->listeners = config.listeners;
    routing->addresses = config.addresses;
    routing->node_address = config.addresses.empty() ? "127.0.0.1" : config.addresses.back();
    routing->idle_timeout_ms = config.idle_timeout_seconds * 1000LL;
    routing->access_log_fd = AccessLogFd(config.access_log_path);
    std::map<std::string, std::shared_ptr<Backend>> next;
    for (const auto& bc : config.backends) {
      std::shared_ptr<Backend> b;
      auto it = backends_.find(bc.id);
      if (it != backends_.end() && it->second->address == bc.address) {
        b = it->second;  // same instance: keep its health and in-flight count
      } else {
        b = std::make_shared<Backend>();
        b->id = bc.id;
        b->address = bc.address;
        b->availability_zone = bc.availability_zone;  // set once: workers may read a shared Backend
        if (::inet_pton(AF_INET, bc.address.c_str(), &b->ip) != 1) {
          spdlog::error("backend {}: bad address {}", bc.id, bc.address);
          continue;
        }
      }
      b->draining.store(bc.draining);
      next[bc.id] = b;
      routing->backends.push_back(b);
    }
    backends_ = std::move(next);
    {
      std::lock_guard lock(mu_);
      config_ = config;
    }
    published_.Set(std::move(routing));
  }

  int AccessLogFd(const std::string& path) {
    if (path.empty()) return -1;
    auto it = access_logs_.find(path);
    if (it != access_logs_.end()) return it->second;
    // Kept open for the node's life: a worker may still be writing through an older config's descriptor.
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    if (fd < 0) spdlog::error("cannot open access log {}", path);
    access_logs_[path] = fd;
    return fd;
  }

  std::string config_path_;
  mutable std::mutex mu_;  // guards config_ against the health checker's reads
  NodeConfig config_;
  std::map<std::string, std::shared_ptr<Backend>> backends_;
  std::map<std::string, int> access_logs_;
  Published published_;
};

void WriteStatus(const Node& node, const std::vector<std::unique_ptr<Worker>>& workers) {
  const std::string& path = node.config().status_path;
  if (path.empty()) return;
  Status st = WriteFileAtomically(path, SerializeNodeStatus(node.Snapshot(workers)));
  if (!st.ok()) spdlog::warn("status: {}", st.message());
}

}  // namespace

int RunLbNode(const std::string& config_path) {
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %l lb: %v");
  signal(SIGPIPE, SIG_IGN);
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGHUP);
  sigaddset(&mask, SIGTERM);
  sigaddset(&mask, SIGINT);
  pthread_sigmask(SIG_BLOCK, &mask, nullptr);  // before any thread starts: only the signalfd sees them
  int sfd = ::signalfd(-1, &mask, SFD_CLOEXEC);
  if (sfd < 0) {  // without it SIGHUP (reload) and SIGTERM (stop) would never be seen
    spdlog::error("signalfd: {}", std::strerror(errno));
    return 1;
  }

  Node node(config_path);
  Status loaded = node.Load();
  if (!loaded.ok()) {
    spdlog::error("cannot load {}: {}", config_path, loaded.message());
    return 1;
  }
  const NodeConfig& cfg = node.config();
  int threads = cfg.threads > 0 ? cfg.threads : static_cast<int>(std::thread::hardware_concurrency());
  if (threads < 1) threads = 1;
  std::vector<std::unique_ptr<Worker>> workers;
  for (int i = 0; i < threads; ++i) {
    workers.push_back(std::make_unique<Worker>(i, &node.published()));
    workers.back()->Start();
  }
  HealthChecker checker(&node.published(), [&node] { return node.health_check(); });
  checker.Start();
  spdlog::info("load balancer {} node in {} serving (config version {}, {} workers, {} back ends)",
               cfg.load_balancer_name, cfg.availability_zone, cfg.version, threads, cfg.backends.size());

  bool stopping = false;
  auto next_status = std::chrono::steady_clock::now();
  while (!stopping) {
    auto now = std::chrono::steady_clock::now();
    if (now >= next_status) {
      WriteStatus(node, workers);
      next_status = now + std::chrono::seconds(1);
    }
    int wait_ms = static_cast<int>(
        std::chrono::duration_cast<std::chrono::milliseconds>(next_status - now).count());
    pollfd p{sfd, POLLIN, 0};
    if (::poll(&p, 1, std::max(wait_ms, 1)) <= 0) continue;
    signalfd_siginfo si;
    if (::read(sfd, &si, sizeof si) != sizeof si) continue;
    if (si.ssi_signo == SIGHUP) {
      Status st = node.Load();
      if (st.ok()) {
        for (auto& w : workers) w->RequestReload();
        // status.json says "applied" only once every worker routes with the new config (bounded wait: a worker
        // turns its loop at least every 250 ms).
        const uint64_t generation = node.published().generation();
        for (int i = 0; i < 1000; ++i) {
          bool all = true;
          for (auto& w : workers) all &= w->applied_generation() >= generation;
          if (all) break;
          std::this_thread::sleep_for(std::chrono::milliseconds(1));
        }
        spdlog::info("config version {} applied ({} back ends)", node.config().version, node.config().backends.size());
        WriteStatus(node, workers);
      } else {
        spdlog::error("reload refused, keeping version {}: {}", node.config().version, st.message());
      }
    } else {
      stopping = true;
    }
  }

  // Stop: no new connections; requests in flight finish within the draining timeout (else 10 s).
  const int grace_s = cfg.draining_enabled ? cfg.draining_timeout_seconds : 10;
  spdlog::info("stopping: waiting up to {} s for requests in flight", grace_s);
  for (auto& w : workers) w->RequestDrain();
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(grace_s);
  while (std::chrono::steady_clock::now() < deadline) {
    uint64_t open = 0;
    for (auto& w : workers) open += w->metrics().open_connections.load();
    if (open == 0) break;
    pollfd p{sfd, POLLIN, 0};
    if (::poll(&p, 1, 50) > 0) break;  // a second signal: stop now
  }
  for (auto& w : workers) w->Kill();
  for (auto& w : workers) w->Join();
  checker.Stop();
  WriteStatus(node, workers);
  ::close(sfd);
  spdlog::info("stopped");
  return 0;
}

}  // namespace autopipe::lb

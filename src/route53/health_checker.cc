#include "route53/health_checker.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>

namespace autopipe::route53 {
namespace {

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// Connects within timeout_ms; returns the fd or -1 with *why set.
int Connect(const std::string& ip, int port, int timeout_ms, std::string* why) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  if (::inet_pton(AF_INET, ip.c_str(), &addr.sin_addr) != 1) {
    *why = "Failure: the IP address is not valid";
    return -1;
  }
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    *why = "Failure: no socket";
    return -1;
  }
  int r = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  if (r != 0 && errno != EINPROGRESS) {
    *why = std::string("Failure: ") + (errno == ECONNREFUSED ? "Connection refused" : std::strerror(errno)) +
           ". Resolved IP: " + ip;
    ::close(fd);
    return -1;
  }
  if (r != 0) {
    pollfd p{fd, POLLOUT, 0};
    if (::poll(&p, 1, timeout_ms) <= 0) {
      *why = "Failure: Connection timed out. The endpoint or the internet connection is down, or requests are being "
             "blocked by your firewall. Resolved IP: " + ip;
      ::close(fd);
      return -1;
    }
    int err = 0;
    socklen_t len = sizeof(err);
    ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) {
      *why = std::string("Failure: ") + (err == ECONNREFUSED ? "Connection refused" : std::strerror(err)) +
             ". Resolved IP: " + ip;
      ::close(fd);
      return -1;
    }
  }
  return fd;
}

}  // namespace

std::pair<bool, std::string> HealthChecker::Probe(const HealthCheckConfig& c) {
  std::string why;
  const bool http = c.type == "HTTP";
  int fd = Connect(c.ip, c.port, http ? 4000 : 10000, &why);
  if (fd < 0) return {false, why};
  if (!http) {
    ::close(fd);
    return {true, "Success: TCP connection established. Resolved IP: " + c.ip};
  }
  std::string req = "GET " + (c.resource_path.empty() ? std::string("/") : c.resource_path) +
                    " HTTP/1.1\r\nHost: " + (c.fqdn.empty() ? c.ip : c.fqdn) +
                    "\r\nUser-Agent: Amazon-Route53-Health-Check-Service (autopipe)\r\nConnection: close\r\n\r\n";
  const int64_t deadline = NowMs() + 2000;
  size_t sent = 0;
  while (sent < req.size()) {
    pollfd p{fd, POLLOUT, 0};
    if (::poll(&p, 1, static_cast<int>(std::max<int64_t>(0, deadline - NowMs()))) <= 0) break;
    ssize_t k = ::send(fd, req.data() + sent, req.size() - sent, MSG_NOSIGNAL);
    if (k <= 0) break;
    sent += static_cast<size_t>(k);
  }
  std::string resp;
  char buf[1024];
  while (resp.find("\r\n") == std::string::npos && resp.size() < 4096) {
    int64_t left = deadline - NowMs();
    if (left <= 0) break;
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left)) <= 0) break;
    ssize_t k = ::recv(fd, buf, sizeof(buf), 0);
    if (k <= 0) break;
    resp.append(buf, static_cast<size_t>(k));
  }
  ::close(fd);
  size_t eol = resp.find("\r\n");
  if (eol == std::string::npos || resp.rfind("HTTP/1.", 0) != 0 || eol < 12) {
    return {false, resp.empty() ? "Failure: The endpoint did not respond within 2 seconds. Resolved IP: " + c.ip
                                : "Failure: The response was not HTTP. Resolved IP: " + c.ip};
  }
  int code = std::atoi(resp.c_str() + 9);
  std::string line = resp.substr(9, eol - 9);
  if (code >= 200 && code < 400) return {true, "Success: HTTP Status Code " + line.substr(0, 3) + ", " + line.substr(std::min<size_t>(4, line.size()))};
  return {false, "Failure: HTTP Status Code " + line.substr(0, 3) + ", " + line.substr(std::min<size_t>(4, line.size())) +
                     ". Resolved IP: " + c.ip};
}

HealthChecker::HealthChecker(std::function<void()> on_change, int probe_threads)
    : on_change_(std::move(on_change)), probe_threads_(probe_threads) {}

HealthChecker::~HealthChecker() { Stop(); }

void HealthChecker::Start() {
  threads_.emplace_back([this] { SchedulerMain(); });
  for (int i = 0; i < probe_threads_; ++i) threads_.emplace_back([this] { ProberMain(); });
}

void HealthChecker::Stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  for (auto& t : threads_)
    if (t.joinable()) t.join();
  threads_.clear();
}

void HealthChecker::Sync(const std::vector<HealthCheckConfig>& checks) {
  std::lock_guard lock(mu_);
  std::map<std::string, Entry> next;
  for (const auto& c : checks) {
    auto it = checks_.find(c.id);
    Entry e = it != checks_.end() ? it->second : Entry{};
    e.config = c;
    next[c.id] = std::move(e);
  }
  checks_ = std::move(next);
  cv_.notify_all();
}

std::optional<HealthState> HealthChecker::State(const std::string& id) const {
  std::lock_guard lock(mu_);
  auto it = checks_.find(id);
  if (it == checks_.end()) return std::nullopt;
  return it->second.state;
}

bool HealthChecker::Healthy(const std::string& id) const {
  auto s = State(id);
  return !s || s->healthy;
}

void HealthChecker::SchedulerMain() {
  std::unique_lock lock(mu_);
  while (!stopping_) {
    const int64_t now = NowMs();
    for (auto& [id, e] : checks_) {
      if (!e.in_flight && e.next_due_ms <= now) {
        e.in_flight = true;
        e.next_due_ms = now + e.config.interval_seconds * 1000LL;
        due_.push_back(id);
      }
    }
    cv_.notify_all();
    cv_.wait_for(lock, std::chrono::milliseconds(100));
  }
}

void HealthChecker::ProberMain() {
  std::unique_lock lock(mu_);
  while (true) {
    cv_.wait(lock, [this] { return stopping_ || !due_.empty(); });
    if (stopping_) return;
    std::string id = due_.front();
    due_.pop_front();
    auto it = checks_.find(id);
    if (it == checks_.end()) continue;
    HealthCheckConfig config = it->second.config;
    lock.unlock();
    auto [passed, report] = Probe(config);
    lock.lock();
    it = checks_.find(id);
    if (it == checks_.end()) continue;
    Entry& e = it->second;
    e.in_flight = false;
    e.state.last_report = report;
    e.state.checked_at_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                                std::chrono::system_clock::now().time_since_epoch())
                                .count();
    bool flipped = false;
    if (passed) {
      e.state.failures_in_row = 0;
      ++e.state.passes_in_row;
      if (!e.state.healthy && e.state.passes_in_row >= e.config.failure_threshold) flipped = true;
    } else {
      e.state.passes_in_row = 0;
      ++e.state.failures_in_row;
      if (e.state.healthy && e.state.failures_in_row >= e.config.failure_threshold) flipped = true;
    }
    if (flipped) {
      e.state.healthy = !e.state.healthy;
      lock.unlock();
      if (on_change_) on_change_();
      lock.lock();
    }
  }
}

}  // namespace autopipe::route53

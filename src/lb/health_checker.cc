#include "lb/health_checker.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <vector>

namespace autopipe::lb {
namespace {

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// One check in progress.
struct Check {
  std::shared_ptr<Backend> backend;
  int fd = -1;
  int64_t deadline_ms = 0;
  bool connected = false;
  std::string request;  // HTTP only
  size_t sent = 0;
  std::string response;
  bool regular = true;  // false: an early re-check, whose failure does not count (see Record)
};

// Early re-checks (every second, for new or ejected back ends) can bring a back end in, but only the checks on
// the configured interval count towards unhealthy_threshold: a service that is slow to start is not declared
// unhealthy sooner than ELB would.
void Record(Backend& b, bool ok, const std::string& error, const HealthCheckConfig& cfg, bool regular) {
  if (!ok && !regular) {
    std::lock_guard lock(b.error_mu);
    b.last_error = error;
    return;
  }
  if (ok) {
    b.consecutive_fail = 0;
    ++b.consecutive_ok;
    Health h = b.health.load();
    // New back ends count as healthy after their first passed check (ELB's HealthyHostCount rule).
    if (h == Health::kUnknown || b.consecutive_ok >= cfg.healthy_threshold) b.health.store(Health::kHealthy);
    b.ejected.store(false);
  } else {
    b.consecutive_ok = 0;
    ++b.consecutive_fail;
    if (b.consecutive_fail >= cfg.unhealthy_threshold) b.health.store(Health::kUnhealthy);
  }
  std::lock_guard lock(b.error_mu);
  b.last_error = error;
}

}  // namespace

std::optional<HealthChecker::Target> HealthChecker::ParseTarget(const std::string& target) {
  size_t colon = target.find(':');
  if (colon == std::string::npos) return std::nullopt;
  std::string proto = target.substr(0, colon);
  Target t;
  if (proto == "HTTP" || proto == "HTTPS") {
    t.http = true;
  } else if (proto != "TCP" && proto != "SSL") {
    return std::nullopt;
  }
  std::string rest = target.substr(colon + 1);
  size_t slash = rest.find('/');
  std::string port = rest.substr(0, slash);
  if (port.empty() || port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos)
    return std::nullopt;
  t.port = std::stoi(port);
  if (t.port < 1 || t.port > 65535) return std::nullopt;
  if (t.http) t.path = slash == std::string::npos ? "/" : rest.substr(slash);
  return t;
}

void HealthChecker::Start() { thread_ = std::thread([this] { Run(); }); }

void HealthChecker::Stop() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
}

void HealthChecker::Run() {
  std::vector<Check> checks;
  while (!stop_) {
    const int64_t now = NowMs();
    HealthCheckConfig cfg = config_();
    auto target = ParseTarget(cfg.target);
    auto routing = published_->Get();

    // Start the checks that are due (one at a time per back end).
    if (routing && target) {
      for (const auto& b : routing->backends) {
        bool running = false;
        for (const auto& c : checks) running |= c.backend == b;
        if (running) continue;
        // Ejected back ends, and new ones that have not passed a check yet (an instance registered while its
        // service is still starting), are checked every second instead of every interval.
        const bool hurry = b->ejected.load() || b->health.load() == Health::kUnknown;
        const bool regular = now >= b->next_check_ms;
        if (!regular && !(hurry && now >= b->last_check_ms + 1000)) continue;
        if (regular) b->next_check_ms = now + cfg.interval_seconds * 1000LL;
        b->last_check_ms = now;
        Check c;
        c.backend = b;
        c.regular = regular;
        c.deadline_ms = now + cfg.timeout_seconds * 1000LL;
        c.fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (c.fd < 0) continue;
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_port = htons(static_cast<uint16_t>(target->port));
        addr.sin_addr.s_addr = b->ip;
        if (target->http) {
          c.request = "GET " + target->path + " HTTP/1.1\r\nHost: " + b->address + ":" + std::to_string(target->port) +
                      "\r\nUser-Agent: ELB-HealthChecker/1.0\r\nAccept: */*\r\nConnection: close\r\n\r\n";
        }
        int rc = ::connect(c.fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
        if (rc != 0 && errno != EINPROGRESS) {
          Record(*b, false, std::string("connect: ") + std::strerror(errno), cfg, regular);
          ::close(c.fd);
          continue;
        }
        checks.push_back(std::move(c));
      }
    }

    // Drive the checks in progress for up to 100 ms.
    std::vector<pollfd> fds;
    for (const auto& c : checks) {
      short events = c.connected ? (c.sent < c.request.size() ? POLLOUT : POLLIN) : POLLOUT;
      fds.push_back({c.fd, events, 0});
    }
    if (fds.empty()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      continue;
    }
    ::poll(fds.data(), fds.size(), 100);
    const int64_t after = NowMs();
    std::vector<Check> remaining;
    for (size_t i = 0; i < checks.size(); ++i) {
      Check& c = checks[i];
      bool done = false, ok = false;
      std::string error;
      if (fds[i].revents != 0) {
        if (!c.connected) {
          int err = 0;
          socklen_t len = sizeof err;
          ::getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &err, &len);
          if (err != 0) {
            done = true;
            error = std::string("connect: ") + std::strerror(err);
          } else {
            c.connected = true;
            if (c.request.empty()) done = ok = true;  // TCP check: the connection opened
          }
        }
        if (!done && c.connected && c.sent < c.request.size()) {
          ssize_t n = ::send(c.fd, c.request.data() + c.sent, c.request.size() - c.sent, MSG_NOSIGNAL);
          if (n > 0) c.sent += static_cast<size_t>(n);
          else if (n < 0 && errno != EAGAIN) { done = true; error = std::string("send: ") + std::strerror(errno); }
        } else if (!done && c.connected) {
          char buf[512];
          ssize_t n = ::recv(c.fd, buf, sizeof buf, 0);
          if (n > 0) c.response.append(buf, static_cast<size_t>(n));
          size_t eol = c.response.find("\r\n");
          if (eol != std::string::npos || n == 0 || c.response.size() > 4096) {
            done = true;
            // "HTTP/1.x 200 ..." only a 200 passes.
            ok = c.response.size() >= 12 && c.response.compare(0, 7, "HTTP/1.") == 0 &&
                 c.response.compare(9, 3, "200") == 0 && (c.response.size() == 12 || c.response[12] == ' ' || c.response[12] == '\r');
            if (!ok) error = c.response.empty() ? "connection closed before a response"
                                                : "HTTP status " + c.response.substr(9, 3);
          } else if (n < 0 && errno != EAGAIN) {
            done = true;
            error = std::string("recv: ") + std::strerror(errno);
          }
        }
      }
      if (!done && after >= c.deadline_ms) {
        done = true;
        error = "Request timed out";
      }
      if (done) {
        Record(*c.backend, ok, error, cfg, c.regular);
        ::close(c.fd);
      } else {
        remaining.push_back(std::move(c));
      }
    }
    checks.swap(remaining);
  }
  for (auto& c : checks) ::close(c.fd);
}

}  // namespace autopipe::lb

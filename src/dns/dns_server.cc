#include "dns/dns_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <random>

#include "dns/answer_cache.h"

namespace autopipe::dns {
namespace {

constexpr int kUdpThreads = 2;
constexpr size_t kMaxTcpConnections = 64;
constexpr int kTcpIdleMs = 10'000;
constexpr int kPollMs = 200;
constexpr int kUdpBatch = 256;  // datagrams read per wakeup at most

uint64_t Rng() {
  thread_local std::mt19937_64 gen(std::random_device{}());
  return gen();
}

Result<int> BindSocket(int type, const sockaddr_in& addr) {
  int fd = ::socket(AF_INET, type | SOCK_CLOEXEC, 0);
  if (fd < 0) return Status::Internal(std::string("socket: ") + std::strerror(errno));
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  // UDP: one socket per thread on the same port (the kernel spreads datagrams over them by flow).
  if (type == SOCK_DGRAM) ::setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
  if (::bind(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) != 0) {
    int err = errno;
    ::close(fd);
    return Status(500, "BindFailed", std::string("bind: ") + std::strerror(err), false);
  }
  return fd;
}

// Reads exactly n bytes, waiting at most kTcpIdleMs for each; false on EOF, error, timeout or stop.
bool ReadFull(int fd, uint8_t* buf, size_t n, const std::atomic<bool>& stopping) {
  size_t got = 0;
  int waited = 0;
  while (got < n) {
    pollfd p{fd, POLLIN, 0};
    int r = ::poll(&p, 1, kPollMs);
    if (stopping.load()) return false;
    if (r == 0) {
      waited += kPollMs;
      if (waited >= kTcpIdleMs) return false;
      continue;
    }
    if (r < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    ssize_t k = ::recv(fd, buf + got, n - got, 0);
    if (k <= 0) return false;
    got += static_cast<size_t>(k);
    waited = 0;
  }
  return true;
}

bool WriteFull(int fd, const std::string& data) {
  size_t sent = 0;
  while (sent < data.size()) {
    ssize_t k = ::send(fd, data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) return false;
    sent += static_cast<size_t>(k);
  }
  return true;
}

}  // namespace

DnsServer::~DnsServer() { Stop(); }

Result<int> DnsServer::Bind(const std::string& host, int port) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  if (::inet_pton(AF_INET, host.c_str(), &addr.sin_addr) != 1) {
    return Status::InvalidParameterValue("the DNS address must be an IPv4 address: " + host);
  }
  // Port 0: take a free UDP port, then the same TCP port; a few tries if TCP's is taken.
  for (int attempt = 0; attempt < 20; ++attempt) {
    addr.sin_port = htons(static_cast<uint16_t>(port));
    auto udp = BindSocket(SOCK_DGRAM, addr);
    if (!udp.ok()) return udp.status();
    sockaddr_in bound{};
    socklen_t len = sizeof(bound);
    ::getsockname(*udp, reinterpret_cast<sockaddr*>(&bound), &len);
    addr.sin_port = bound.sin_port;
    auto tcp = BindSocket(SOCK_STREAM, addr);
    if (!tcp.ok()) {
      ::close(*udp);
      if (port != 0) return tcp.status();
      continue;
    }
    if (::listen(*tcp, 128) != 0) {
      ::close(*udp);
      ::close(*tcp);
      return Status::Internal("listen failed");
    }
    udp_fds_.push_back(*udp);
    tcp_fd_ = *tcp;
    for (int i = 1; i < kUdpThreads; ++i) {
      auto more = BindSocket(SOCK_DGRAM, addr);
      if (!more.ok()) break;  // the first socket serves alone
      udp_fds_.push_back(*more);
    }
    int rcvbuf = 4 << 20;
    for (int fd : udp_fds_) ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
    return static_cast<int>(ntohs(bound.sin_port));
  }
  return Status::Internal("no port free for both UDP and TCP");
}

void DnsServer::Start() {
  for (int fd : udp_fds_) threads_.emplace_back([this, fd] { UdpMain(fd); });
  threads_.emplace_back([this] { TcpAcceptMain(); });
}

void DnsServer::Stop() {
  if (stopping_.exchange(true)) return;
  for (auto& t : threads_)
    if (t.joinable()) t.join();
  threads_.clear();
  {
    std::lock_guard lock(conns_mu_);
    for (auto& c : conns_) ::shutdown(c.fd, SHUT_RDWR);
  }
  std::list<Conn> conns;
  {
    std::lock_guard lock(conns_mu_);
    conns.splice(conns.end(), conns_);
  }
  for (auto& c : conns) {
    if (c.thread.joinable()) c.thread.join();
    ::close(c.fd);
  }
  for (int fd : udp_fds_) ::close(fd);
  udp_fds_.clear();
  if (tcp_fd_ >= 0) ::close(tcp_fd_);
  tcp_fd_ = -1;
}

void DnsServer::SetZones(std::shared_ptr<const CompiledZones> zones) {
  std::lock_guard lock(zones_mu_);
  zones_ = std::move(zones);
}

std::shared_ptr<const CompiledZones> DnsServer::snapshot() const {
  std::lock_guard lock(zones_mu_);
  return zones_;
}

void DnsServer::UdpMain(int udp_fd) {
  uint8_t buf[65536];
  std::string reply;
  AnswerCache cache;
  while (!stopping_.load()) {
    pollfd p{udp_fd, POLLIN, 0};
    int r = ::poll(&p, 1, kPollMs);
    if (r <= 0) continue;
    // Drain what is queued before polling again (a bounded batch, so that Stop is still seen promptly).
    for (int i = 0; i < kUdpBatch && !stopping_.load(std::memory_order_relaxed); ++i) {
      sockaddr_storage from{};
      socklen_t len = sizeof(from);
      ssize_t n = ::recvfrom(udp_fd, buf, sizeof(buf), MSG_DONTWAIT, reinterpret_cast<sockaddr*>(&from), &len);
      if (n < 0) break;  // EAGAIN: the queue is empty
      if (n == 0) continue;
      if (!cache.Answer(snapshot(), buf, static_cast<size_t>(n), /*udp=*/true, Rng(), &reply)) continue;
      ::sendto(udp_fd, reply.data(), reply.size(), MSG_DONTWAIT, reinterpret_cast<sockaddr*>(&from), len);
      answered_.fetch_add(1, std::memory_order_relaxed);
    }
  }
}

void DnsServer::TcpAcceptMain() {
  while (!stopping_.load()) {
    {
      // Reap finished connections.
      std::lock_guard lock(conns_mu_);
      for (auto it = conns_.begin(); it != conns_.end();) {
        if (it->done.load()) {
          it->thread.join();
          ::close(it->fd);
          it = conns_.erase(it);
        } else {
          ++it;
        }
      }
    }
    pollfd p{tcp_fd_, POLLIN, 0};
    int r = ::poll(&p, 1, kPollMs);
    if (r <= 0) continue;
    int fd = ::accept4(tcp_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    std::lock_guard lock(conns_mu_);
    if (conns_.size() >= kMaxTcpConnections) {
      ::close(fd);
      continue;
    }
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    Conn& c = conns_.emplace_back();
    c.fd = fd;
    c.thread = std::thread([this, &c] {
      TcpConnection(c.fd);
      c.done.store(true);
    });
  }
}

void DnsServer::TcpConnection(int fd) {
  std::string reply;
  std::vector<uint8_t> msg;
  while (!stopping_.load()) {
    uint8_t len_bytes[2];
    if (!ReadFull(fd, len_bytes, 2, stopping_)) break;
    size_t len = (static_cast<size_t>(len_bytes[0]) << 8) | len_bytes[1];
    if (len == 0) break;
    msg.resize(len);
    if (!ReadFull(fd, msg.data(), len, stopping_)) break;
    auto zones = snapshot();
    if (!Answer(zones.get(), msg.data(), len, /*udp=*/false, Rng(), &reply)) break;
    if (reply.size() > 65535) break;
    std::string framed;
    framed.push_back(static_cast<char>(reply.size() >> 8));
    framed.push_back(static_cast<char>(reply.size() & 0xff));
    framed += reply;
    if (!WriteFull(fd, framed)) break;
    answered_.fetch_add(1, std::memory_order_relaxed);
  }
  ::shutdown(fd, SHUT_RDWR);  // closed by whoever joins this thread
}

}  // namespace autopipe::dns

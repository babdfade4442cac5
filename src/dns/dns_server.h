// DnsServer: an authoritative DNS server on one address and port, over UDP and TCP (RFC 1035 / 7766), answering
// from the current Authority snapshot (dns/authority.h).
//
// UDP: two threads, each with its own socket on the port (SO_REUSEPORT), answer each datagram, draining what is
// queued per wakeup; each keeps an AnswerCache (dns/answer_cache.h) of the current snapshot's repeatable replies. TCP: one thread accepts; each connection gets a
// thread (at most 64 connections at once, more are closed) that reads length-prefixed queries, answers them in
// order and closes after 10 s of silence. The snapshot is swapped whole by SetZones (readers keep the one they
// took for the query being answered).
//
// Thread-safety: Bind, Start and Stop from one thread; SetZones and snapshot() from any thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/status.h"
#include "dns/authority.h"

namespace autopipe::dns {

class DnsServer {
 public:
  DnsServer() = default;
  ~DnsServer();
  DnsServer(const DnsServer&) = delete;
  DnsServer& operator=(const DnsServer&) = delete;

  // Binds UDP and TCP on host:port (an IPv4 address; port 0: a port free for both). Returns the port.
  Result<int> Bind(const std::string& host, int port);
  void Start();
  void Stop();

  void SetZones(std::shared_ptr<const CompiledZones> zones);
  std::shared_ptr<const CompiledZones> snapshot() const;

  uint64_t queries_answered() const { return answered_.load(std::memory_order_relaxed); }

 private:
  void UdpMain(int udp_fd);
  void TcpAcceptMain();
  void TcpConnection(int fd);

  std::vector<int> udp_fds_;  // one per UDP thread, all on the same port (SO_REUSEPORT)
  int tcp_fd_ = -1;
  std::atomic<bool> stopping_{false};
  std::atomic<uint64_t> answered_{0};
  std::vector<std::thread> threads_;

  mutable std::mutex zones_mu_;
  std::shared_ptr<const CompiledZones> zones_;  // guarded by zones_mu_

  std::mutex conns_mu_;
  struct Conn {
    int fd;
    std::thread thread;
    std::atomic<bool> done{false};
  };
  std::list<Conn> conns_;  // guarded by conns_mu_
};

}  // namespace autopipe::dns

// TcpProxy: a stable TCP endpoint (a fixed listening address) in front of a back end that changes, such as the
// primary node of a database or cache cluster that moves on failover. Each new connection is spliced (as a
// TcpSession: bytes both ways, half-close, idle timeout, back-pressure) to the back end the picker names at
// that moment; sessions already open stay on the back end they started with until CloseSessionsTo ends them
// (the old primary after a failover) or they end by themselves.
//
//   auto proxy = TcpProxy::Start("127.0.0.1", 0, [&] { return CurrentPrimary(); });
//   ... failover: make CurrentPrimary() return the new node, then
//   (*proxy)->CloseSessionsTo(old_primary);
//
// The proxy runs its own thread with an EventLoop (event_loop.h); the listener is non-blocking and
// edge-triggered like the load balancer's.
//
// Thread-safety: all public methods are safe from any thread, except that CloseSessionsTo and the destructor
// must not be called from the picker (they wait for the proxy's thread). The picker runs on the proxy's thread.
#pragma once

#include <netinet/in.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "common/status.h"

namespace autopipe::lb {

struct TcpBackendAddress {
  in_addr_t ip = 0;  // network byte order
  int port = 0;
  bool operator==(const TcpBackendAddress&) const = default;
};

// "a.b.c.d" and a port; an error for anything else.
Result<TcpBackendAddress> ParseTcpBackendAddress(const std::string& ip, int port);

class TcpProxy {
 public:
  // Where a new connection goes; nullopt refuses it (the client's connection is closed at once), or holds it
  // with hold_when_no_backend.
  using Picker = std::function<std::optional<TcpBackendAddress>()>;
  struct Options {
    int64_t idle_timeout_ms = 60 * 60 * 1000;  // a session with no bytes either way for this long is closed
    // While the picker names no back end (a failover between fencing and promotion), new connections wait in
    // the listen backlog instead of being refused: the proxy stops accepting and asks the picker again every
    // few milliseconds, so a client sees a slow connect rather than an error.
    bool hold_when_no_backend = false;
  };

  // Listens on address:port (port 0: a free port, see port()) and starts the proxy's thread.
  static Result<std::unique_ptr<TcpProxy>> Start(const std::string& address, int port, Picker picker,
                                                 Options options);
  static Result<std::unique_ptr<TcpProxy>> Start(const std::string& address, int port, Picker picker) {
    return Start(address, port, std::move(picker), Options{});
  }
  // Stops listening and closes every session.
  ~TcpProxy();

  int port() const;
  // Closes every open session to backend; returns how many. Done when it returns.
  size_t CloseSessionsTo(const TcpBackendAddress& backend);
  // Sessions open now.
  size_t session_count() const;

  class Impl;

 private:
  explicit TcpProxy(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace autopipe::lb

// The few socket calls the data plane makes, each done one way everywhere: listening sockets that several
// worker threads (and nodes) share with SO_REUSEPORT, and non-blocking connects with TCP_NODELAY.
//
// Thread-safety: plain functions on the caller's descriptors.
#pragma once

#include <netinet/in.h>

#include <cstdint>
#include <string>

#include "common/status.h"

namespace autopipe::lb {

// A non-blocking listening socket on address:port (SO_REUSEADDR and SO_REUSEPORT, backlog 4096). Port 0 binds
// a free port (see LocalPort).
Result<int> OpenListener(const std::string& address, int port);

// The port a socket is bound to; 0 if it cannot be read.
int LocalPort(int fd);

// A non-blocking TCP_NODELAY connect to ip:port (network byte order ip). When it started, *fd is the socket;
// kInProgress completes later (the socket turns writable, ConnectError tells how it went).
enum class ConnectStart : uint8_t {
  kConnected,
  kInProgress,
  kRefused,   // connect() failed at once: the back end is not there
  kNoSocket,  // no socket to try with (out of descriptors): says nothing about the back end
};
ConnectStart ConnectNonBlocking(in_addr_t ip, int port, int* fd);
inline bool Started(ConnectStart s) { return s == ConnectStart::kConnected || s == ConnectStart::kInProgress; }

// The error of a finished non-blocking connect (0: connected).
int ConnectError(int fd);

// TCP_NODELAY on an accepted socket.
void SetNoDelay(int fd);

}  // namespace autopipe::lb

// TcpProxy and TcpSession on loopback with real sockets: bytes both ways, half-close, back-pressure, idle
// timeout, a back end that changes (new connections follow it; sessions to a dropped one are closed), and
// connections held while there is none.
#include "lb/tcp_proxy.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <mutex>
#include <string>

#include <gtest/gtest.h>

namespace autopipe::lb {
namespace {

constexpr int kWaitMs = 5000;  // every wait below is bounded by this

// A blocking listening socket on 127.0.0.1, any free port: a stand-in back end.
struct FakeBackend {
  int fd = -1;
  TcpBackendAddress address;
  FakeBackend() {
    fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    EXPECT_EQ(::listen(fd, 16), 0);
    socklen_t len = sizeof a;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    address.ip = a.sin_addr.s_addr;
    address.port = ntohs(a.sin_port);
  }
  ~FakeBackend() { ::close(fd); }
  // The next connection the proxy made to it, or -1 if none came within wait_ms.
  int Accept(int wait_ms = kWaitMs) const {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, wait_ms) != 1) return -1;
    return ::accept4(fd, nullptr, nullptr, SOCK_CLOEXEC);
  }
};

int ConnectTo(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(static_cast<uint16_t>(port));
  EXPECT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  return fd;
}

void SendAll(int fd, const std::string& s) {
  size_t off = 0;
  while (off < s.size()) {
    ssize_t n = ::send(fd, s.data() + off, s.size() - off, MSG_NOSIGNAL);
    ASSERT_GT(n, 0);
    off += static_cast<size_t>(n);
  }
}

// Reads until n bytes arrived, EOF, an error or kWaitMs passed.
std::string Recv(int fd, size_t n) {
  std::string out;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(kWaitMs);
  char buf[65536];
  while (out.size() < n && std::chrono::steady_clock::now() < deadline) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 100) != 1) continue;
    ssize_t got = ::recv(fd, buf, std::min(sizeof buf, n - out.size()), 0);
    if (got <= 0) break;
    out.append(buf, static_cast<size_t>(got));
  }
  return out;
}

// True if the peer closed (EOF or reset) within kWaitMs.
bool ClosedByPeer(int fd) {
  pollfd p{fd, POLLIN, 0};
  if (::poll(&p, 1, kWaitMs) != 1) return false;
  char c;
  return ::recv(fd, &c, 1, 0) <= 0;
}

// The back end the picker returns, changed by the test thread.
class SwitchableBackend {
 public:
  void Set(std::optional<TcpBackendAddress> b) {
    std::lock_guard lock(mu_);
    current_ = b;
  }
  TcpProxy::Picker Picker() {
    return [this] {
      std::lock_guard lock(mu_);
      return current_;
    };
  }

 private:
  std::mutex mu_;
  std::optional<TcpBackendAddress> current_;
};

TEST(TcpProxyTest, BytesFlowBothWaysAndHalfCloseIsPassedOn) {
  FakeBackend backend;
  SwitchableBackend pick;
  pick.Set(backend.address);
  auto proxy = TcpProxy::Start("127.0.0.1", 0, pick.Picker());
  ASSERT_TRUE(proxy.ok()) << proxy.status().ToString();
  ASSERT_GT((*proxy)->port(), 0);

  int client = ConnectTo((*proxy)->port());
  int server = backend.Accept();
  ASSERT_GE(server, 0);
  SendAll(client, "hello from the client");
  EXPECT_EQ(Recv(server, 21), "hello from the client");
  SendAll(server, "hello from the back end");
  EXPECT_EQ(Recv(client, 23), "hello from the back end");
  EXPECT_EQ((*proxy)->session_count(), 1u);

  // The client is done sending: the back end sees EOF, yet can still answer.
  ASSERT_EQ(::shutdown(client, SHUT_WR), 0);
  EXPECT_TRUE(ClosedByPeer(server));
  SendAll(server, "last words");
  EXPECT_EQ(Recv(client, 10), "last words");
  // Then the back end closes too: the client sees EOF and the session ends.
  ::close(server);
  EXPECT_TRUE(ClosedByPeer(client));
  ::close(client);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(kWaitMs);
  while ((*proxy)->session_count() != 0 && std::chrono::steady_clock::now() < deadline) ::poll(nullptr, 0, 10);
  EXPECT_EQ((*proxy)->session_count(), 0u);
}

TEST(TcpProxyTest, NewConnectionsFollowTheBackEndAndDroppingOneClosesItsSessions) {
  FakeBackend old_primary, new_primary;
  SwitchableBackend pick;
  pick.Set(old_primary.address);
  auto proxy = TcpProxy::Start("127.0.0.1", 0, pick.Picker());
  ASSERT_TRUE(proxy.ok());

  int before = ConnectTo((*proxy)->port());
  int before_server = old_primary.Accept();
  ASSERT_GE(before_server, 0);

  // Failover: new connections go to the new primary, and only there.
  pick.Set(new_primary.address);
  int after = ConnectTo((*proxy)->port());
  int after_server = new_primary.Accept();
  ASSERT_GE(after_server, 0);
  EXPECT_EQ(old_primary.Accept(/*wait_ms=*/0), -1);
  SendAll(after, "to the new one");
  EXPECT_EQ(Recv(after_server, 14), "to the new one");

  // The session to the old primary still works until it is dropped; then both its ends are closed.
  SendAll(before, "still here");
  EXPECT_EQ(Recv(before_server, 10), "still here");
  EXPECT_EQ((*proxy)->CloseSessionsTo(old_primary.address), 1u);
  EXPECT_TRUE(ClosedByPeer(before));
  EXPECT_TRUE(ClosedByPeer(before_server));

  // The new primary's session is untouched.
  SendAll(after_server, "answer");
  EXPECT_EQ(Recv(after, 6), "answer");
  EXPECT_EQ((*proxy)->session_count(), 1u);
  for (int fd : {before, before_server, after, after_server}) ::close(fd);
}

TEST(TcpProxyTest, NoBackEndOrARefusedConnectClosesTheClient) {
  SwitchableBackend pick;
  auto proxy = TcpProxy::Start("127.0.0.1", 0, pick.Picker());
  ASSERT_TRUE(proxy.ok());
  int client = ConnectTo((*proxy)->port());
  EXPECT_TRUE(ClosedByPeer(client));
  ::close(client);

  TcpBackendAddress gone;
  {
    FakeBackend closed_soon;
    gone = closed_soon.address;
  }
  pick.Set(gone);  // nothing listens there any more
  client = ConnectTo((*proxy)->port());
  EXPECT_TRUE(ClosedByPeer(client));
  ::close(client);
}

TEST(TcpProxyTest, WithHoldANewConnectionWaitsForABackEndInsteadOfBeingRefused) {
  FakeBackend primary;
  SwitchableBackend pick;  // no back end yet: a failover between fencing and promotion
  TcpProxy::Options options;
  options.hold_when_no_backend = true;
  auto proxy = TcpProxy::Start("127.0.0.1", 0, pick.Picker(), options);
  ASSERT_TRUE(proxy.ok());

  int client = ConnectTo((*proxy)->port());  // completes in the kernel: the connection waits in the backlog
  SendAll(client, "early");
  pollfd p{client, POLLIN, 0};
  EXPECT_EQ(::poll(&p, 1, 100), 0) << "the held client was closed or answered";
  EXPECT_EQ((*proxy)->session_count(), 0u);

  // Promotion done: the held connection goes to the new primary, bytes sent meanwhile included.
  pick.Set(primary.address);
  int server = primary.Accept();
  ASSERT_GE(server, 0);
  EXPECT_EQ(Recv(server, 5), "early");
  SendAll(server, "hello");
  EXPECT_EQ(Recv(client, 5), "hello");
  for (int fd : {client, server}) ::close(fd);
}

TEST(TcpProxyTest, AFullBufferStopsReadingTheSenderUntilTheOtherSideReads) {
  FakeBackend backend;
  SwitchableBackend pick;
  pick.Set(backend.address);
  auto proxy = TcpProxy::Start("127.0.0.1", 0, pick.Picker());
  ASSERT_TRUE(proxy.ok());
  int client = ConnectTo((*proxy)->port());
  int server = backend.Accept();
  ASSERT_GE(server, 0);

  // The back end reads nothing: the client can only send what the socket buffers and the proxy's one
  // buffer hold, then its sends would block.
  ::fcntl(client, F_SETFL, ::fcntl(client, F_GETFL) | O_NONBLOCK);
  constexpr size_t kOffered = 256u << 20;
  std::string chunk(65536, '\0');
  for (size_t i = 0; i < chunk.size(); ++i) chunk[i] = static_cast<char>('a' + i % 26);
  size_t sent = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(kWaitMs);
  while (sent < kOffered && std::chrono::steady_clock::now() < deadline) {
    ssize_t n = ::send(client, chunk.data() + sent % chunk.size(), chunk.size() - sent % chunk.size(), MSG_NOSIGNAL);
    if (n > 0) {
      sent += static_cast<size_t>(n);
      continue;
    }
    ASSERT_EQ(errno, EAGAIN);
    pollfd p{client, POLLOUT, 0};
    if (::poll(&p, 1, 200) == 0) break;  // blocked for 200 ms: the proxy stopped reading
  }
  EXPECT_LT(sent, kOffered);

  // Once the back end reads, every byte arrives, in order.
  std::string got = Recv(server, sent);
  ASSERT_EQ(got.size(), sent);
  for (size_t i = 0; i < got.size(); i += 4099) ASSERT_EQ(got[i], static_cast<char>('a' + (i % 65536) % 26)) << i;
  ::close(client);
  ::close(server);
}

TEST(TcpProxyTest, AnIdleSessionIsClosed) {
  FakeBackend backend;
  SwitchableBackend pick;
  pick.Set(backend.address);
  TcpProxy::Options options;
  options.idle_timeout_ms = 100;
  auto proxy = TcpProxy::Start("127.0.0.1", 0, pick.Picker(), options);
  ASSERT_TRUE(proxy.ok());
  int client = ConnectTo((*proxy)->port());
  int server = backend.Accept();
  ASSERT_GE(server, 0);
  EXPECT_TRUE(ClosedByPeer(client));
  EXPECT_TRUE(ClosedByPeer(server));
  ::close(client);
  ::close(server);
}

}  // namespace
}  // namespace autopipe::lb

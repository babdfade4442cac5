// The API edge over real sockets on 127.0.0.1 (port 0): slow and idle clients, deadlines, body limits,
// pipelining and keep-alive, and Stop with connections open.
#include "api/http_server.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <future>
#include <thread>

#include "api/api_server.h"
#include "lb/http_parser.h"

namespace autopipe {
namespace {

constexpr char kKey[] = "AKIATESTTESTTEST0001";
constexpr char kSecret[] = "testsecrettestsecrettestsecrettestsecret";

// A blocking client socket; every read gives up after 20 s so a broken server fails the test instead of hanging.
int Connect(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  timeval tv{20, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

bool SendAll(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n <= 0) return false;
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

struct Response {
  int status = 0;  // 0: no complete response (EOF or timeout first)
  std::string head;
  std::string body;
  bool close = false;  // the server said Connection: close
};

// Reads one response; bytes after it stay in *carry for the next call.
Response ReadResponse(int fd, std::string* carry) {
  Response r;
  std::string& buf = *carry;
  char chunk[65536];
  lb::ResponseHead head;
  while (true) {
    auto parsed = lb::ParseResponse(buf.data(), buf.size(), "POST", &head);
    if (parsed == lb::ParseStatus::kError) return r;
    if (parsed == lb::ParseStatus::kDone && buf.size() >= head.head_length + head.content_length) break;
    ssize_t n = ::recv(fd, chunk, sizeof chunk, 0);
    if (n <= 0) return r;
    buf.append(chunk, static_cast<size_t>(n));
  }
  r.status = head.status;
  r.head = buf.substr(0, head.head_length);
  r.body = buf.substr(head.head_length, head.content_length);
  r.close = !head.keep_alive;
  buf.erase(0, head.head_length + head.content_length);
  return r;
}

// True when the server closed the connection (EOF or reset) within the receive timeout, after any bytes.
bool ReadsEof(int fd) {
  char chunk[4096];
  while (true) {
    ssize_t n = ::recv(fd, chunk, sizeof chunk, 0);
    if (n == 0) return true;
    if (n < 0) return errno == ECONNRESET;
  }
}

// Still open: nothing to read and no EOF.
bool StillOpen(int fd) {
  char c;
  ssize_t n = ::recv(fd, &c, 1, MSG_DONTWAIT | MSG_PEEK);
  return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

class HttpServerTest : public ::testing::Test {
 protected:
  HttpServerTest()
      : clock_(1'795'685'947'000),
        router_("us-west-2",
                [](const std::string& k) -> std::optional<std::string> {
                  if (k == kKey) return std::string(kSecret);
                  return std::nullopt;
                },
                &clock_) {
    ApiService autoscaling;
    autoscaling.info = {"autoscaling", "2011-01-01", "http://autoscaling.amazonaws.com/doc/2011-01-01/",
                        WireProtocol::kQuery};
    autoscaling.operations = {
        {"Echo", Access::kRead,
         [](const Params& p) -> Result<Json> { return Json{{"Note", p.Str("Note").value_or("")}}; }},
        {"CreateLaunchConfiguration", Access::kWrite, [this](const Params& p) -> Result<Json> {
           user_data_ = p.Str("UserData").value_or("");
           return Json();
         }}};
    router_.AddService(std::move(autoscaling));
  }

  ~HttpServerTest() override {
    if (server_) server_->Stop();
  }

  int StartServer(HttpServerOptions options = {}) {
    server_ = std::make_unique<ApiServer>(&router_, options);
    auto port = server_->Bind("127.0.0.1", 0);
    EXPECT_TRUE(port.ok());
    server_->Start();
    return port.ok() ? *port : 0;
  }

  // A signed POST as the wire carries it.
  std::string SignedRequest(const std::string& body, std::vector<std::pair<std::string, std::string>> extra = {}) {
    SigV4Request req;
    req.method = "POST";
    req.target = "/";
    req.headers = {{"Host", "127.0.0.1"}, {"Content-Type", "application/x-www-form-urlencoded; charset=utf-8"}};
    for (auto& h : extra) req.headers.push_back(h);
    req.body = body;
    SignSigV4(req, kKey, kSecret, "us-west-2", "autoscaling", clock_.NowSeconds());
    std::string wire = "POST / HTTP/1.1\r\n";
    for (const auto& [k, v] : req.headers) wire += k + ": " + v + "\r\n";
    wire += "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
    return wire;
  }

  // Waits (bounded) until the server holds n connections.
  bool WaitForConnections(size_t n) {
    for (int i = 0; i < 2000; ++i) {
      if (server_->open_connections() >= n) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
  }

  FakeClock clock_;
  ApiRouter router_;
  std::string user_data_;  // written by a worker, read after its reply
  std::unique_ptr<ApiServer> server_;
};

TEST_F(HttpServerTest, ASignedRequestIsAnsweredWhileAThousandIdleAndFiftySlowClientsAreOpen) {
  HttpServerOptions options;
  options.head_timeout_ms = 120'000;  // none of the slow clients may be dropped while the test runs
  const int port = StartServer(options);

  std::vector<int> idle, slow;
  for (int i = 0; i < 1000; ++i) {
    int fd = Connect(port);
    ASSERT_GE(fd, 0) << "connection " << i;
    idle.push_back(fd);
  }
  for (int i = 0; i < 50; ++i) {
    int fd = Connect(port);
    ASSERT_GE(fd, 0);
    ASSERT_TRUE(SendAll(fd, "POST / HTTP/1.1\r\nHost: 127.0.0.1\r\n"));
    slow.push_back(fd);
  }
  // Slowloris: a header line on each slow connection every 200 ms, until the test is done.
  std::atomic<bool> done{false};
  std::atomic<int> lines_sent{0};
  std::thread trickle([&] {
    for (int round = 0; round < 600 && !done.load(); ++round) {
      for (int fd : slow) {
        if (SendAll(fd, "X-Slow: " + std::to_string(round) + "\r\n")) lines_sent.fetch_add(1);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
  });
  ASSERT_TRUE(WaitForConnections(1050)) << server_->open_connections();

  int fd = Connect(port);
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(SendAll(fd, SignedRequest("Action=Echo&Version=2011-01-01&Note=through")));
  std::string carry;
  Response r = ReadResponse(fd, &carry);
  // Answered while every idle and slow connection is still open.
  EXPECT_GE(server_->open_connections(), 1051u);
  size_t open_idle = 0, open_slow = 0;
  for (int c : idle) open_idle += StillOpen(c);
  for (int c : slow) open_slow += StillOpen(c);
  done = true;
  trickle.join();
  EXPECT_EQ(r.status, 200) << r.head << r.body;
  EXPECT_NE(r.body.find("<Note>through</Note>"), std::string::npos) << r.body;
  EXPECT_EQ(open_idle, 1000u);
  EXPECT_EQ(open_slow, 50u);
  EXPECT_GT(lines_sent.load(), 0);
  ::close(fd);
  for (int c : idle) ::close(c);
  for (int c : slow) ::close(c);
}

TEST_F(HttpServerTest, AStalledHeadOrBodyIsAnswered408AndClosedAfterItsDeadline) {
  HttpServerOptions options;
  options.head_timeout_ms = 300;
  options.body_timeout_ms = 300;
  options.idle_timeout_ms = 60'000;
  const int port = StartServer(options);

  int mid_head = Connect(port);
  ASSERT_TRUE(SendAll(mid_head, "POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Amz-Target: A.B\r\n"));
  int mid_body = Connect(port);
  ASSERT_TRUE(SendAll(mid_body, "POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n\r\nAction=Ec"));
  int silent = Connect(port);  // never sends a byte: a new connection's head deadline runs from the accept

  std::string carry;
  Response head_timeout = ReadResponse(mid_head, &carry);
  EXPECT_EQ(head_timeout.status, 408);
  EXPECT_TRUE(head_timeout.close);
  // A head that never completed says nothing reliable about its protocol: Query's envelope.
  EXPECT_NE(head_timeout.body.find("<ErrorResponse><Error><Type>Sender</Type><Code>RequestTimeout</Code>"),
            std::string::npos)
      << head_timeout.body;
  EXPECT_TRUE(ReadsEof(mid_head));

  carry.clear();
  Response body_timeout = ReadResponse(mid_body, &carry);
  EXPECT_EQ(body_timeout.status, 408);
  EXPECT_NE(body_timeout.body.find("<Code>RequestTimeout</Code>"), std::string::npos) << body_timeout.body;
  EXPECT_TRUE(ReadsEof(mid_body));

  EXPECT_TRUE(ReadsEof(silent));  // closed without an answer: it asked nothing
  ::close(mid_head);
  ::close(mid_body);
  ::close(silent);
}

TEST_F(HttpServerTest, SixteenKilobytesOfUserDataInAFormReachTheHandler) {
  const int port = StartServer();
  // 16 KiB of UserData is 21,848 base64 characters; letters and digits only, so the form needs no escaping.
  std::string user_data(21'848, 'A');
  for (size_t i = 0; i < user_data.size(); ++i) user_data[i] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"[i % 62];
  const std::string body = "Action=CreateLaunchConfiguration&Version=2011-01-01&LaunchConfigurationName=lc"
                           "&ImageId=ami-1&InstanceType=t2.micro&UserData=" + user_data;
  ASSERT_GT(body.size(), 21'000u);
  int fd = Connect(port);
  ASSERT_TRUE(SendAll(fd, SignedRequest(body)));
  std::string carry;
  Response r = ReadResponse(fd, &carry);
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(user_data_, user_data);
  ::close(fd);
}

TEST_F(HttpServerTest, ABodyOverTheLimitIs413WithTheProtocolsErrorBody) {
  const int port = StartServer();
  const std::string big(2 << 20, 'x');

  // Query: the credential scope names autoscaling, so the error is its <ErrorResponse>.
  int fd = Connect(port);
  ASSERT_TRUE(SendAll(fd, SignedRequest("Action=Echo&Version=2011-01-01&Note=" + big)));
  std::string carry;
  Response query = ReadResponse(fd, &carry);
  EXPECT_EQ(query.status, 413);
  EXPECT_TRUE(query.close);
  EXPECT_NE(query.body.find("<ErrorResponse xmlns=\"http://autoscaling.amazonaws.com/doc/2011-01-01/\"><Error>"
                            "<Type>Sender</Type><Code>RequestEntityTooLarge</Code>"),
            std::string::npos)
      << query.body;
  EXPECT_NE(query.head.find("x-amzn-RequestId: "), std::string::npos);
  ::close(fd);

  // JSON 1.0: {"__type","message"}, and x-amzn-query-error in query mode.
  fd = Connect(port);
  ASSERT_TRUE(SendAll(fd, SignedRequest("{\"Note\":\"" + big + "\"}",
                                        {{"X-Amz-Target", "AutoScaling_2011_01_01.Echo"},
                                         {"x-amzn-query-mode", "true"}})));
  carry.clear();
  Response json = ReadResponse(fd, &carry);
  EXPECT_EQ(json.status, 413);
  ASSERT_TRUE(Json::accept(json.body)) << json.body;
  EXPECT_EQ(Json::parse(json.body)["__type"], "RequestEntityTooLarge");
  EXPECT_NE(json.head.find("x-amzn-query-error: RequestEntityTooLarge;Sender"), std::string::npos) << json.head;
  ::close(fd);

  // A chunked body over the limit is refused too.
  fd = Connect(port);
  std::string chunked = "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n";
  for (int i = 0; i < 40; ++i) chunked += "10000\r\n" + std::string(0x10000, 'y') + "\r\n";
  chunked += "0\r\n\r\n";
  ASSERT_TRUE(SendAll(fd, chunked));
  carry.clear();
  EXPECT_EQ(ReadResponse(fd, &carry).status, 413);
  ::close(fd);
}

TEST_F(HttpServerTest, MalformedRequestsAre400AndOtherMethods405) {
  const int port = StartServer();
  for (const std::string bad : {"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
                                "POST / HTTP/1.1\nHost: a\n\n",
                                "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
                                "NOT HTTP AT ALL\r\n\r\n"}) {
    int fd = Connect(port);
    ASSERT_TRUE(SendAll(fd, bad));
    std::string carry;
    Response r = ReadResponse(fd, &carry);
    EXPECT_EQ(r.status, 400) << bad;
    EXPECT_NE(r.body.find("<ErrorResponse><Error><Type>Sender</Type><Code>BadRequest</Code>"), std::string::npos)
        << r.body;
    EXPECT_TRUE(ReadsEof(fd));
    ::close(fd);
  }
  int fd = Connect(port);
  ASSERT_TRUE(SendAll(fd, "DELETE / HTTP/1.1\r\nHost: a\r\n\r\n"));
  std::string carry;
  EXPECT_EQ(ReadResponse(fd, &carry).status, 405);
  ::close(fd);
}

TEST_F(HttpServerTest, PipelinedKeepAliveChunkedAndConnectionClose) {
  const int port = StartServer();
  int fd = Connect(port);
  // Two requests in one write: answered in order on the same connection.
  ASSERT_TRUE(SendAll(fd, SignedRequest("Action=Echo&Version=2011-01-01&Note=one") +
                              SignedRequest("Action=Echo&Version=2011-01-01&Note=two")));
  std::string carry;
  Response one = ReadResponse(fd, &carry);
  Response two = ReadResponse(fd, &carry);
  EXPECT_EQ(one.status, 200);
  EXPECT_NE(one.body.find("<Note>one</Note>"), std::string::npos) << one.body;
  EXPECT_EQ(two.status, 200);
  EXPECT_NE(two.body.find("<Note>two</Note>"), std::string::npos) << two.body;
  EXPECT_FALSE(two.close);

  // Keep-alive: a third one later on the same connection, with a chunked body.
  std::string third = SignedRequest("Action=Echo&Version=2011-01-01&Note=three");
  size_t cl = third.find("Content-Length: ");
  size_t body_at = third.find("\r\n\r\n") + 4;
  std::string body = third.substr(body_at);
  std::string chunked = third.substr(0, cl) + "Transfer-Encoding: chunked\r\n\r\n" + "5\r\n" + body.substr(0, 5) +
                        "\r\n" + [&] {
                          char size[16];
                          std::snprintf(size, sizeof size, "%zx", body.size() - 5);
                          return std::string(size);
                        }() + "\r\n" + body.substr(5) + "\r\n0\r\n\r\n";
  ASSERT_TRUE(SendAll(fd, chunked));
  Response r3 = ReadResponse(fd, &carry);
  EXPECT_EQ(r3.status, 200) << r3.body;
  EXPECT_NE(r3.body.find("<Note>three</Note>"), std::string::npos) << r3.body;

  // Connection: close is honoured after the reply.
  ASSERT_TRUE(SendAll(fd, SignedRequest("Action=Echo&Version=2011-01-01&Note=four", {{"Connection", "close"}})));
  Response r4 = ReadResponse(fd, &carry);
  EXPECT_EQ(r4.status, 200);
  EXPECT_TRUE(r4.close);
  EXPECT_TRUE(ReadsEof(fd));
  ::close(fd);
}

TEST_F(HttpServerTest, StopWithOpenConnectionsClosesThemAndReturns) {
  const int port = StartServer();
  std::vector<int> fds;
  for (int i = 0; i < 20; ++i) fds.push_back(Connect(port));
  ASSERT_TRUE(SendAll(fds[0], "POST / HTTP/1.1\r\nHost: a\r\n"));                          // mid-head
  ASSERT_TRUE(SendAll(fds[1], "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nab"));  // mid-body
  ASSERT_TRUE(WaitForConnections(20));
  auto stopped = std::async(std::launch::async, [this] { server_->Stop(); });
  ASSERT_EQ(stopped.wait_for(std::chrono::seconds(30)), std::future_status::ready);
  EXPECT_EQ(server_->open_connections(), 0u);
  for (int fd : fds) {
    EXPECT_TRUE(ReadsEof(fd));
    ::close(fd);
  }
  EXPECT_LT(Connect(port), 0);  // nothing listens any more
}

}  // namespace
}  // namespace autopipe

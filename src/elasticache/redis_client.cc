#include "elasticache/redis_client.h"

#include <arpa/inet.h>
#include <errno.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <cstdlib>
#include <sstream>

#include "elasticache/tls.h"

namespace autopipe::elasticache {
namespace {

Status Unavailable(const std::string& message) { return Status(503, "RedisUnavailable", message, false); }

int64_t MonotonicMillis() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1'000'000;
}

// Waits until fd is ready for `events` or the deadline passes.
bool WaitFor(int fd, short events, int64_t deadline) {  // NOLINT(runtime/int): poll's type
  for (;;) {
    const int64_t left = deadline - MonotonicMillis();
    if (left <= 0) return false;
    pollfd p{fd, events, 0};
    const int n = ::poll(&p, 1, static_cast<int>(left));
    if (n > 0) return true;
    if (n < 0 && errno != EINTR) return false;
  }
}

std::string ReplyText(const redisReply* r) {
  switch (r->type) {
    case REDIS_REPLY_STRING:
    case REDIS_REPLY_STATUS:
      return std::string(r->str, r->len);
    case REDIS_REPLY_INTEGER:
      return std::to_string(r->integer);
    case REDIS_REPLY_ARRAY: {
      std::string out;
      for (size_t i = 0; i < r->elements; ++i) {
        if (i) out += '\n';
        out += ReplyText(r->element[i]);
      }
      return out;
    }
    default:
      return "";
  }
}

std::string SslErrorText() {
  const unsigned long e = ERR_get_error();  // NOLINT(runtime/int): OpenSSL's type
  ERR_clear_error();
  if (e == 0) return std::strerror(errno);
  char buf[256];
  ERR_error_string_n(e, buf, sizeof buf);
  return buf;
}

}  // namespace

Result<std::unique_ptr<RedisConnection>> RedisConnection::Connect(const std::string& ip, int port, int timeout_ms,
                                                                  const ConnectOptions& options) {
  const int64_t deadline = MonotonicMillis() + timeout_ms;
  const std::string where = ip + ":" + std::to_string(port);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  if (::inet_pton(AF_INET, ip.c_str(), &addr.sin_addr) != 1) return Unavailable("bad address " + ip);
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return Unavailable(std::string("socket: ") + std::strerror(errno));
  std::unique_ptr<RedisConnection> c(new RedisConnection(fd, timeout_ms));
  const int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    if (errno != EINPROGRESS) return Unavailable("connect " + where + ": " + std::strerror(errno));
    if (!WaitFor(fd, POLLOUT, deadline)) return Unavailable("connect " + where + ": timed out");
    int err = 0;
    socklen_t len = sizeof err;
    ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) return Unavailable("connect " + where + ": " + std::strerror(err));
  }
  c->reader_ = redisReaderCreate();
  if (!c->reader_) return Unavailable("cannot allocate a reply reader");
  if (options.tls) {
    c->ssl_ = SSL_new(options.tls->get());
    if (!c->ssl_) return Unavailable("cannot allocate a TLS session");
    AP_RETURN_IF_ERROR(c->Handshake(ip, deadline));
  }
  if (options.passwords.empty()) return c;
  for (const auto& password : options.passwords) {
    auto r = c->Command({"AUTH", "default", password});
    if (r.ok()) return c;
    if (r.status().code() != "RedisError") return r.status();
  }
  // The reply names no password: nothing secret reaches a log from here.
  return Status(401, "RedisAuthFailed", "no token accepted by " + where, false);
}

Status RedisConnection::Handshake(const std::string& ip, int64_t deadline) {
  SSL_set_fd(ssl_, fd_);
  // The certificate must name the address we connect to (the node's own or its endpoint's).
  X509_VERIFY_PARAM* param = SSL_get0_param(ssl_);
  if (X509_VERIFY_PARAM_set1_ip_asc(param, ip.c_str()) != 1) return Unavailable("bad address " + ip);
  for (;;) {
    const int r = SSL_connect(ssl_);
    if (r == 1) return Status::Ok();
    const int e = SSL_get_error(ssl_, r);
    if (e == SSL_ERROR_WANT_READ && WaitFor(fd_, POLLIN, deadline)) continue;
    if (e == SSL_ERROR_WANT_WRITE && WaitFor(fd_, POLLOUT, deadline)) continue;
    broken_ = true;
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return Unavailable("TLS handshake with " + ip + " timed out");
    const long verify = SSL_get_verify_result(ssl_);  // NOLINT(runtime/int): OpenSSL's type
    std::string why = SslErrorText();
    if (verify != X509_V_OK) why += std::string(" (") + X509_verify_cert_error_string(verify) + ")";
    return Unavailable("TLS handshake with " + ip + ": " + why);
  }
}

RedisConnection::~RedisConnection() {
  if (ssl_) SSL_free(ssl_);
  if (reader_) redisReaderFree(reader_);
  ::close(fd_);
}

Status RedisConnection::WriteAll(const char* data, size_t len, int64_t deadline) {
  size_t done = 0;
  while (done < len) {
    if (ssl_) {
      const int n = SSL_write(ssl_, data + done, static_cast<int>(len - done));
      if (n > 0) {
        done += static_cast<size_t>(n);
        continue;
      }
      const int e = SSL_get_error(ssl_, n);
      if (e == SSL_ERROR_WANT_WRITE && WaitFor(fd_, POLLOUT, deadline)) continue;
      if (e == SSL_ERROR_WANT_READ && WaitFor(fd_, POLLIN, deadline)) continue;
      return Unavailable("TLS write: " + SslErrorText());
    }
    const ssize_t n = ::send(fd_, data + done, len - done, MSG_NOSIGNAL);
    if (n > 0) {
      done += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) && WaitFor(fd_, POLLOUT, deadline)) continue;
    return Unavailable(std::string("write: ") + (n < 0 ? std::strerror(errno) : "timed out"));
  }
  return Status::Ok();
}

Result<size_t> RedisConnection::ReadSome(char* buf, size_t len, int64_t deadline) {
  for (;;) {
    if (ssl_) {
      const int n = SSL_read(ssl_, buf, static_cast<int>(len));
      if (n > 0) return static_cast<size_t>(n);
      const int e = SSL_get_error(ssl_, n);
      if (e == SSL_ERROR_WANT_READ && WaitFor(fd_, POLLIN, deadline)) continue;
      if (e == SSL_ERROR_WANT_WRITE && WaitFor(fd_, POLLOUT, deadline)) continue;
      if (e == SSL_ERROR_ZERO_RETURN) return Unavailable("connection closed");
      if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return Unavailable("timed out");
      return Unavailable("TLS read: " + SslErrorText());
    }
    const ssize_t n = ::recv(fd_, buf, len, 0);
    if (n > 0) return static_cast<size_t>(n);
    if (n == 0) return Unavailable("connection closed");
    if (errno == EINTR) continue;
    if ((errno == EAGAIN || errno == EWOULDBLOCK) && WaitFor(fd_, POLLIN, deadline)) continue;
    return Unavailable(std::string("read: ") + (errno == EAGAIN ? "timed out" : std::strerror(errno)));
  }
}

Result<Result<std::string>> RedisConnection::ReadReply(int64_t deadline) {
  char buf[16384];
  for (;;) {
    void* out = nullptr;
    if (redisReaderGetReply(reader_, &out) != REDIS_OK) {
      broken_ = true;
      return Unavailable("protocol error");
    }
    if (out) {
      std::unique_ptr<redisReply, void (*)(void*)> reply(static_cast<redisReply*>(out), freeReplyObject);
      if (reply->type == REDIS_REPLY_ERROR) {
        return Result<std::string>(Status(500, "RedisError", std::string(reply->str, reply->len), false));
      }
      return Result<std::string>(ReplyText(reply.get()));
    }
    auto n = ReadSome(buf, sizeof buf, deadline);
    if (!n.ok()) {
      broken_ = true;
      return n.status();
    }
    if (redisReaderFeed(reader_, buf, *n) != REDIS_OK) {
      broken_ = true;
      return Unavailable("protocol error");
    }
  }
}

Result<std::vector<Result<std::string>>> RedisConnection::Pipeline(
    const std::vector<std::vector<std::string>>& commands) {
  if (broken_) return Unavailable("connection broken");
  const int64_t deadline = MonotonicMillis() + timeout_ms_;
  std::string wire;
  for (const auto& argv : commands) {
    std::vector<const char*> args;
    std::vector<size_t> lens;
    for (const auto& a : argv) {
      args.push_back(a.data());
      lens.push_back(a.size());
    }
    char* cmd = nullptr;
    const int len = redisFormatCommandArgv(&cmd, static_cast<int>(args.size()), args.data(), lens.data());
    if (len < 0 || !cmd) return Unavailable("cannot format a command");
    wire.append(cmd, static_cast<size_t>(len));
    redisFreeCommand(cmd);
  }
  Status st = WriteAll(wire.data(), wire.size(), deadline);
  if (!st.ok()) {
    broken_ = true;
    return st;
  }
  std::vector<Result<std::string>> out;
  out.reserve(commands.size());
  for (size_t i = 0; i < commands.size(); ++i) {
    auto r = ReadReply(deadline);
    if (!r.ok()) return r.status();
    out.push_back(std::move(*r));
  }
  return out;
}

Result<std::string> RedisConnection::Command(const std::vector<std::string>& argv) {
  auto r = Pipeline({argv});
  if (!r.ok()) return r.status();
  return std::move((*r)[0]);
}

std::map<std::string, std::string> ParseInfo(const std::string& text) {
  std::map<std::string, std::string> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty() || line[0] == '#') continue;
    const size_t colon = line.find(':');
    if (colon == std::string::npos) continue;
    out[line.substr(0, colon)] = line.substr(colon + 1);
  }
  return out;
}

bool ClusterNode::Has(const std::string& flag) const {
  return std::find(flags.begin(), flags.end(), flag) != flags.end();
}

std::vector<ClusterNode> ParseClusterNodes(const std::string& text) {
  std::vector<ClusterNode> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::vector<std::string> f;
    std::string w;
    while (fields >> w) f.push_back(w);
    if (f.size() < 8) continue;
    ClusterNode n;
    n.id = f[0];
    // ip:port@cport[,hostname]
    const std::string addr = f[1].substr(0, f[1].find_first_of("@,"));
    const size_t colon = addr.rfind(':');
    n.ip = addr.substr(0, colon);
    if (colon != std::string::npos) {
      try {
        n.port = std::stoi(addr.substr(colon + 1));
      } catch (const std::exception&) {
        n.port = 0;
      }
    }
    std::istringstream flags(f[2]);
    std::string flag;
    while (std::getline(flags, flag, ',')) n.flags.push_back(flag);
    n.master_id = f[3];
    n.config_epoch = std::strtoull(f[6].c_str(), nullptr, 10);
    n.link_state = f[7];
    for (size_t i = 8; i < f.size(); ++i) {
      if (!f[i].empty() && f[i][0] != '[') n.slots.push_back(f[i]);
    }
    out.push_back(std::move(n));
  }
  return out;
}

}  // namespace autopipe::elasticache

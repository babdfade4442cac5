// A small synchronous Redis client for the ElastiCache controller: one connection (plain TCP, or TLS checked
// against the region's CA and the node's address) with a deadline on connect and on every command, optional
// AUTH, and parsers for the replies the controller reads (INFO, CLUSTER NODES). hiredis formats the commands and
// parses the replies; the bytes go through our own socket (and OpenSSL), as Debian's hiredis 0.14 has no TLS.
//
// Thread-safety: a RedisConnection is used by one thread at a time; the parsers are pure functions.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"

struct redisReader;
struct ssl_st;

namespace autopipe::elasticache {

class TlsClientContext;

// How to reach a node: TLS or not, and the passwords it may accept.
struct ConnectOptions {
  std::shared_ptr<TlsClientContext> tls;  // null: plain TCP
  // Tried in turn with `AUTH default <password>` until one is accepted (none: no AUTH is sent). A node may be
  // between two token sets while a rotation rolls out, so callers pass every token it might hold.
  std::vector<std::string> passwords;
};

class RedisConnection {
 public:
  // Connects to ip:port within timeout_ms (the TLS handshake and AUTH included); every command then waits at most
  // timeout_ms. No password accepted is "RedisAuthFailed".
  static Result<std::unique_ptr<RedisConnection>> Connect(const std::string& ip, int port, int timeout_ms,
                                                          const ConnectOptions& options = {});
  ~RedisConnection();
  RedisConnection(const RedisConnection&) = delete;
  RedisConnection& operator=(const RedisConnection&) = delete;

  // Runs one command. A status, string or integer reply is its text; nil is ""; an array is its elements'
  // texts joined by '\n'. An error reply is a Status with code "RedisError" and the reply as message; a
  // timeout or a closed connection is "RedisUnavailable" (the connection is then unusable).
  Result<std::string> Command(const std::vector<std::string>& argv);
  // Sends every command at once and reads their replies in order (one round trip): one result per command as
  // Command would give it. A connection failure fails the whole call (the connection is then unusable).
  Result<std::vector<Result<std::string>>> Pipeline(const std::vector<std::vector<std::string>>& commands);

 private:
  RedisConnection(int fd, int timeout_ms) : fd_(fd), timeout_ms_(timeout_ms) {}
  Status WriteAll(const char* data, size_t len, int64_t deadline);
  // Reads what is there (waiting until the deadline for at least one byte).
  Result<size_t> ReadSome(char* buf, size_t len, int64_t deadline);
  Status Handshake(const std::string& ip, int64_t deadline);
  // The next reply (waiting until the deadline): its text, or a RedisError status.
  Result<Result<std::string>> ReadReply(int64_t deadline);

  int fd_;
  int timeout_ms_;
  ssl_st* ssl_ = nullptr;
  redisReader* reader_ = nullptr;
  bool broken_ = false;
};

// INFO's "key:value" lines (sections and blank lines skipped).
std::map<std::string, std::string> ParseInfo(const std::string& text);

// One line of CLUSTER NODES.
struct ClusterNode {
  std::string id;
  std::string ip;
  int port = 0;
  std::vector<std::string> flags;  // myself, master, slave, fail, fail?, handshake, noaddr, nofailover
  std::string master_id;           // "-" for a master
  uint64_t config_epoch = 0;       // the epoch its slot claims carry (a higher one wins a conflict)
  std::string link_state;          // connected / disconnected
  std::vector<std::string> slots;  // "0-8191", "8192", migrating entries "[...]" left out
  bool Has(const std::string& flag) const;
};
std::vector<ClusterNode> ParseClusterNodes(const std::string& text);

}  // namespace autopipe::elasticache

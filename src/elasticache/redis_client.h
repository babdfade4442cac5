// A small synchronous Redis client over hiredis, for the ElastiCache controller: one connection with a deadline
// on connect and on every command, and parsers for the replies the controller reads (INFO, CLUSTER NODES).
//
// Thread-safety: a RedisConnection is used by one thread at a time; the parsers are pure functions.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"

struct redisContext;

namespace autopipe::elasticache {

class RedisConnection {
 public:
  // Connects to ip:port within timeout_ms; every command then waits at most timeout_ms.
  static Result<std::unique_ptr<RedisConnection>> Connect(const std::string& ip, int port, int timeout_ms);
  ~RedisConnection();
  RedisConnection(const RedisConnection&) = delete;
  RedisConnection& operator=(const RedisConnection&) = delete;

  // Runs one command. A status, string or integer reply is its text; nil is ""; an array is its elements'
  // texts joined by '\n'. An error reply is a Status with code "RedisError" and the reply as message; a
  // timeout or a closed connection is "RedisUnavailable" (the connection is then unusable).
  Result<std::string> Command(const std::vector<std::string>& argv);

 private:
  explicit RedisConnection(redisContext* c) : c_(c) {}
  redisContext* c_;
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
  std::string link_state;          // connected / disconnected
  std::vector<std::string> slots;  // "0-8191", "8192", migrating entries "[...]" left out
  bool Has(const std::string& flag) const;
};
std::vector<ClusterNode> ParseClusterNodes(const std::string& text);

}  // namespace autopipe::elasticache

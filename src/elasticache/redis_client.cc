#include "elasticache/redis_client.h"

#include <hiredis/hiredis.h>

#include <algorithm>
#include <sstream>

namespace autopipe::elasticache {
namespace {

Status Unavailable(const std::string& message) { return Status(503, "RedisUnavailable", message, false); }

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

}  // namespace

Result<std::unique_ptr<RedisConnection>> RedisConnection::Connect(const std::string& ip, int port, int timeout_ms) {
  timeval tv{timeout_ms / 1000, (timeout_ms % 1000) * 1000};
  redisContext* c = redisConnectWithTimeout(ip.c_str(), port, tv);
  if (c == nullptr) return Unavailable("cannot allocate a redis context");
  if (c->err) {
    std::string err = c->errstr;
    redisFree(c);
    return Unavailable("connect " + ip + ":" + std::to_string(port) + ": " + err);
  }
  if (redisSetTimeout(c, tv) != REDIS_OK) {
    redisFree(c);
    return Unavailable("cannot set the command timeout");
  }
  return std::unique_ptr<RedisConnection>(new RedisConnection(c));
}

RedisConnection::~RedisConnection() { redisFree(c_); }

Result<std::string> RedisConnection::Command(const std::vector<std::string>& argv) {
  if (c_->err) return Unavailable(std::string("connection broken: ") + c_->errstr);
  std::vector<const char*> args;
  std::vector<size_t> lens;
  for (const auto& a : argv) {
    args.push_back(a.data());
    lens.push_back(a.size());
  }
  auto* reply = static_cast<redisReply*>(
      redisCommandArgv(c_, static_cast<int>(args.size()), args.data(), lens.data()));
  if (reply == nullptr) return Unavailable(std::string("command failed: ") + c_->errstr);
  std::unique_ptr<redisReply, void (*)(void*)> owned(reply, freeReplyObject);
  if (reply->type == REDIS_REPLY_ERROR) return Status(500, "RedisError", std::string(reply->str, reply->len), false);
  return ReplyText(reply);
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
    n.link_state = f[7];
    for (size_t i = 8; i < f.size(); ++i) {
      if (!f[i].empty() && f[i][0] != '[') n.slots.push_back(f[i]);
    }
    out.push_back(std::move(n));
  }
  return out;
}

}  // namespace autopipe::elasticache

#include "lb/node_files.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

namespace autopipe::lb {
namespace {

using nlohmann::ordered_json;

// Reads `key` into `out` when present; a present key of the wrong type is an error (a config the server wrote
// is never partly applied).
template <typename T>
void ReadField(const ordered_json& j, const char* key, T& out) {
  auto it = j.find(key);
  if (it != j.end() && !it->is_null()) out = it->get<T>();
}

ordered_json ToJson(const ListenerConfig& l) {
  return {{"protocol", l.protocol}, {"port", l.port}, {"instance_protocol", l.instance_protocol},
          {"instance_port", l.instance_port}};
}

ordered_json ToJson(const BackendConfig& b) {
  return {{"id", b.id}, {"address", b.address}, {"availability_zone", b.availability_zone},
          {"draining", b.draining}};
}

}  // namespace

Result<NodeConfig> ParseNodeConfig(const std::string& text) {
  NodeConfig c;
  try {
    ordered_json j = ordered_json::parse(text);
    if (!j.is_object()) return Status::Validation("node config: not a JSON object");
    ReadField(j, "version", c.version);
    ReadField(j, "load_balancer_name", c.load_balancer_name);
    ReadField(j, "availability_zone", c.availability_zone);
    ReadField(j, "addresses", c.addresses);
    if (auto it = j.find("listeners"); it != j.end()) {
      for (const auto& lj : *it) {
        ListenerConfig l;
        ReadField(lj, "protocol", l.protocol);
        ReadField(lj, "port", l.port);
        ReadField(lj, "instance_protocol", l.instance_protocol);
        ReadField(lj, "instance_port", l.instance_port);
        c.listeners.push_back(l);
      }
    }
    if (auto it = j.find("backends"); it != j.end()) {
      for (const auto& bj : *it) {
        BackendConfig b;
        ReadField(bj, "id", b.id);
        ReadField(bj, "address", b.address);
        ReadField(bj, "availability_zone", b.availability_zone);
        ReadField(bj, "draining", b.draining);
        c.backends.push_back(b);
      }
    }
    if (auto it = j.find("health_check"); it != j.end()) {
      ReadField(*it, "target", c.health_check.target);
      ReadField(*it, "interval_seconds", c.health_check.interval_seconds);
      ReadField(*it, "timeout_seconds", c.health_check.timeout_seconds);
      ReadField(*it, "healthy_threshold", c.health_check.healthy_threshold);
      ReadField(*it, "unhealthy_threshold", c.health_check.unhealthy_threshold);
    }
    ReadField(j, "idle_timeout_seconds", c.idle_timeout_seconds);
    ReadField(j, "draining_enabled", c.draining_enabled);
    ReadField(j, "draining_timeout_seconds", c.draining_timeout_seconds);
    ReadField(j, "access_log_path", c.access_log_path);
    ReadField(j, "status_path", c.status_path);
    ReadField(j, "threads", c.threads);
  } catch (const std::exception& e) {
    return Status::Validation(std::string("node config: ") + e.what());
  }
  for (const auto& l : c.listeners) {
    if (l.port < 1 || l.port > 65535 || l.instance_port < 1 || l.instance_port > 65535)
      return Status::Validation("node config: listener port out of range");
    if ((l.protocol != "HTTP" && l.protocol != "TCP") || (l.instance_protocol != "HTTP" && l.instance_protocol != "TCP"))
      return Status::Validation("node config: listener protocol must be HTTP or TCP");
  }
  if (c.idle_timeout_seconds < 1) return Status::Validation("node config: idle_timeout_seconds < 1");
  return c;
}

std::string SerializeNodeConfig(const NodeConfig& c) {
  ordered_json listeners = ordered_json::array();
  for (const auto& l : c.listeners) listeners.push_back(ToJson(l));
  ordered_json backends = ordered_json::array();
  for (const auto& b : c.backends) backends.push_back(ToJson(b));
  ordered_json j = {
      {"version", c.version},
      {"load_balancer_name", c.load_balancer_name},
      {"availability_zone", c.availability_zone},
      {"addresses", c.addresses},
      {"listeners", listeners},
      {"backends", backends},
      {"health_check",
       {{"target", c.health_check.target},
        {"interval_seconds", c.health_check.interval_seconds},
        {"timeout_seconds", c.health_check.timeout_seconds},
        {"healthy_threshold", c.health_check.healthy_threshold},
        {"unhealthy_threshold", c.health_check.unhealthy_threshold}}},
      {"idle_timeout_seconds", c.idle_timeout_seconds},
      {"draining_enabled", c.draining_enabled},
      {"draining_timeout_seconds", c.draining_timeout_seconds},
      {"access_log_path", c.access_log_path},
      {"status_path", c.status_path},
      {"threads", c.threads},
  };
  return j.dump(2) + "\n";
}

Result<NodeStatus> ParseNodeStatus(const std::string& text) {
  NodeStatus s;
  try {
    ordered_json j = ordered_json::parse(text);
    if (!j.is_object()) return Status::Validation("node status: not a JSON object");
    ReadField(j, "config_version", s.config_version);
    ReadField(j, "updated_at_millis", s.updated_at_millis);
    ReadField(j, "pid", s.pid);
    if (auto it = j.find("backends"); it != j.end()) {
      for (const auto& bj : *it) {
        BackendStatus b;
        ReadField(bj, "id", b.id);
        ReadField(bj, "health", b.health);
        ReadField(bj, "active_requests", b.active_requests);
        ReadField(bj, "last_error", b.last_error);
        s.backends.push_back(b);
      }
    }
    if (auto it = j.find("metrics"); it != j.end()) {
      const ordered_json& m = *it;
      NodeMetrics& n = s.metrics;
      ReadField(m, "RequestCount", n.request_count);
      ReadField(m, "HTTPCode_ELB_4XX", n.elb_4xx);
      ReadField(m, "HTTPCode_ELB_5XX", n.elb_5xx);
      ReadField(m, "HTTPCode_Backend_2XX", n.backend_2xx);
      ReadField(m, "HTTPCode_Backend_3XX", n.backend_3xx);
      ReadField(m, "HTTPCode_Backend_4XX", n.backend_4xx);
      ReadField(m, "HTTPCode_Backend_5XX", n.backend_5xx);
      ReadField(m, "BackendConnectionErrors", n.backend_connection_errors);
      ReadField(m, "SpilloverCount", n.spillover_count);
      ReadField(m, "SurgeQueueLength", n.surge_queue_length);
      ReadField(m, "LatencySumSeconds", n.latency_sum_seconds);
      ReadField(m, "LatencyCount", n.latency_count);
    }
  } catch (const std::exception& e) {
    return Status::Validation(std::string("node status: ") + e.what());
  }
  return s;
}

std::string SerializeNodeStatus(const NodeStatus& s) {
  ordered_json backends = ordered_json::array();
  for (const auto& b : s.backends) {
    backends.push_back({{"id", b.id}, {"health", b.health}, {"active_requests", b.active_requests},
                        {"last_error", b.last_error}});
  }
  const NodeMetrics& n = s.metrics;
  // Metric keys are the AWS/ELB metric names, so the monitoring side maps them one to one.
  ordered_json metrics = {
      {"RequestCount", n.request_count},
      {"HTTPCode_ELB_4XX", n.elb_4xx},
      {"HTTPCode_ELB_5XX", n.elb_5xx},
      {"HTTPCode_Backend_2XX", n.backend_2xx},
      {"HTTPCode_Backend_3XX", n.backend_3xx},
      {"HTTPCode_Backend_4XX", n.backend_4xx},
      {"HTTPCode_Backend_5XX", n.backend_5xx},
      {"BackendConnectionErrors", n.backend_connection_errors},
      {"SpilloverCount", n.spillover_count},
      {"SurgeQueueLength", n.surge_queue_length},
      {"LatencySumSeconds", n.latency_sum_seconds},
      {"LatencyCount", n.latency_count},
  };
  ordered_json j = {{"config_version", s.config_version},
                    {"updated_at_millis", s.updated_at_millis},
                    {"pid", s.pid},
                    {"backends", backends},
                    {"metrics", metrics}};
  return j.dump(2) + "\n";
}

Status WriteFileAtomically(const std::string& path, const std::string& content, int mode) {
  std::string tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) return Status::Internal("cannot write " + tmp + ": " + std::strerror(errno));
  size_t done = 0;
  while (done < content.size()) {
    ssize_t n = ::write(fd, content.data() + done, content.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      int err = errno;
      ::close(fd);
      return Status::Internal("cannot write " + tmp + ": " + std::strerror(err));
    }
    done += static_cast<size_t>(n);
  }
  // Durable before it is visible: a crash must never leave an empty or partial file under the real name.
  if (::fchmod(fd, mode) != 0 || ::fsync(fd) != 0) {
    int err = errno;
    ::close(fd);
    return Status::Internal("cannot write " + tmp + ": " + std::strerror(err));
  }
  ::close(fd);
  if (::rename(tmp.c_str(), path.c_str()) != 0)
    return Status::Internal("cannot rename " + tmp + ": " + std::strerror(errno));
  return Status::Ok();
}

Result<std::string> ReadWholeFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::Internal("cannot read " + path);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace autopipe::lb

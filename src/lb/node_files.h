// The two files through which the region server and one load-balancer node (`autopipe lb`) talk:
//
//   config.json  written by the server (atomically: temp file + rename), read by the node at start and on
//                SIGHUP. Everything the node needs: addresses to listen on, listeners, the back ends it routes
//                to, the health check, timeouts, draining and the access log.
//   status.json  written by the node every second (atomically), read by the server: which config version is
//                applied, each back end's health and in-flight requests, and cumulative AWS/ELB counters.
//
// Neither side holds the other up: a node keeps serving its last config while the server is down, and the
// server treats a status file older than kStatusStaleMillis as "node not reporting".
//
// Thread-safety: pure functions and value types.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"

namespace autopipe::lb {

struct ListenerConfig {
  std::string protocol = "HTTP";           // HTTP or TCP (front end)
  int port = 80;                           // LoadBalancerPort
  std::string instance_protocol = "HTTP";  // HTTP or TCP (back end)
  int instance_port = 80;
  bool operator==(const ListenerConfig&) const = default;
};

struct BackendConfig {
  std::string id;          // instance id
  std::string address;     // IPv4 literal
  std::string availability_zone;
  bool draining = false;   // deregistering: in-flight requests finish, no new ones are sent
  bool operator==(const BackendConfig&) const = default;
};

struct HealthCheckConfig {
  std::string target = "TCP:80";  // TCP:port, HTTP:port/path (SSL/HTTPS are checked as TCP)
  int interval_seconds = 30;
  int timeout_seconds = 5;
  int healthy_threshold = 10;
  int unhealthy_threshold = 2;
  bool operator==(const HealthCheckConfig&) const = default;
};

struct NodeConfig {
  uint64_t version = 0;                 // bumped by the server on every change
  std::string load_balancer_name;
  std::string availability_zone;
  std::vector<std::string> addresses;   // IPv4 literals to listen on (shared VIP first, then the node's own)
  std::vector<ListenerConfig> listeners;
  std::vector<BackendConfig> backends;  // what this node routes to and health-checks
  HealthCheckConfig health_check;
  int idle_timeout_seconds = 60;
  bool draining_enabled = false;
  int draining_timeout_seconds = 300;
  std::string access_log_path;          // empty: no access log
  std::string status_path;              // where status.json goes
  int threads = 0;                      // worker threads; 0 = one per core
};

Result<NodeConfig> ParseNodeConfig(const std::string& text);
std::string SerializeNodeConfig(const NodeConfig& config);

inline constexpr char kHealthUnknown[] = "unknown";      // no check finished since registration
inline constexpr char kHealthHealthy[] = "healthy";
inline constexpr char kHealthUnhealthy[] = "unhealthy";  // failed unhealthy_threshold checks in a row

struct BackendStatus {
  std::string id;
  std::string health = kHealthUnknown;
  uint64_t active_requests = 0;        // requests in flight on it now
  std::string last_error;              // why the last check failed ("" when it passed)
};

// Cumulative since the node started; the monitoring side takes differences.
struct NodeMetrics {
  uint64_t request_count = 0;
  uint64_t elb_4xx = 0;
  uint64_t elb_5xx = 0;
  uint64_t backend_2xx = 0;
  uint64_t backend_3xx = 0;
  uint64_t backend_4xx = 0;
  uint64_t backend_5xx = 0;
  uint64_t backend_connection_errors = 0;
  uint64_t spillover_count = 0;
  uint64_t surge_queue_length = 0;     // now (the node never queues: requests go out or get a 503)
  double latency_sum_seconds = 0;      // request sent to back end -> response head received
  uint64_t latency_count = 0;
};

struct NodeStatus {
  uint64_t config_version = 0;
  int64_t updated_at_millis = 0;
  pid_t pid = 0;
  std::vector<BackendStatus> backends;
  NodeMetrics metrics;
};

inline constexpr int64_t kStatusStaleMillis = 5000;

Result<NodeStatus> ParseNodeStatus(const std::string& text);
std::string SerializeNodeStatus(const NodeStatus& status);

// Writes `content` to `path` via a temp file and rename, so a reader sees the old file or the new one.
Status WriteFileAtomically(const std::string& path, const std::string& content, int mode = 0644);
Result<std::string> ReadWholeFile(const std::string& path);

}  // namespace autopipe::lb

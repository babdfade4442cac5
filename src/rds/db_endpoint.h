// The endpoint of a DB instance: `autopipe db-endpoint --config FILE`, a process of its own (so it outlives the
// server, as a load-balancer node does) that listens on the instance's stable Endpoint address and splices each
// new connection to the current primary (lb/tcp_proxy.h). The controller writes FILE and sends SIGHUP:
//   - Backend set:   new connections go there; when it changed, every session to the old back end is closed
//                    (clients reconnect and reach the new primary);
//   - Backend null:  a failover is in progress: new connections wait in the listen backlog (a slow connect,
//                    never a refusal) until a back end is set; open sessions to the old one are closed.
// After applying a config the process writes status.json {"Version": n} next to it, so the controller knows
// when the switch has happened.
//
// Thread-safety: the config functions are pure; RunDbEndpoint owns the process.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "common/status.h"

namespace autopipe::rds {

struct EndpointConfig {
  std::string address;  // where it listens
  int port = 3306;
  std::string backend_address;  // empty: hold new connections
  int backend_port = 0;
  int64_t version = 0;
};

Status WriteEndpointConfig(const std::string& path, const EndpointConfig& c);
Result<EndpointConfig> ReadEndpointConfig(const std::string& path);
// The version the running endpoint last applied (status.json next to the config), 0 when unknown.
int64_t ReadEndpointAppliedVersion(const std::string& config_path);

// Runs the endpoint until SIGTERM. Returns the process's exit code.
int RunDbEndpoint(const std::string& config_path);

}  // namespace autopipe::rds

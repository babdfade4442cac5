#include "rds/db_endpoint.h"

#include <signal.h>

#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>

#include "common/log.h"
#include "lb/node_files.h"
#include "lb/tcp_proxy.h"
#include "store/store.h"

namespace autopipe::rds {
namespace {

std::string StatusPath(const std::string& config_path) {
  return (std::filesystem::path(config_path).parent_path() / "status.json").string();
}

std::optional<Json> ReadJsonFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return std::nullopt;
  std::stringstream ss;
  ss << in.rdbuf();
  Json j = Json::parse(ss.str(), nullptr, false);
  if (j.is_discarded() || !j.is_object()) return std::nullopt;
  return j;
}

}  // namespace

Status WriteEndpointConfig(const std::string& path, const EndpointConfig& c) {
  Json j = {{"Address", c.address},
            {"Port", c.port},
            {"BackendAddress", c.backend_address},
            {"BackendPort", c.backend_port},
            {"Version", c.version}};
  return lb::WriteFileAtomically(path, j.dump() + "\n");
}

Result<EndpointConfig> ReadEndpointConfig(const std::string& path) {
  auto j = ReadJsonFile(path);
  if (!j) return Status::Internal("cannot read endpoint config " + path);
  EndpointConfig c;
  try {
    c.address = (*j)["Address"].get<std::string>();
    c.port = (*j)["Port"].get<int>();
    c.backend_address = (*j)["BackendAddress"].get<std::string>();
    c.backend_port = (*j)["BackendPort"].get<int>();
    c.version = (*j)["Version"].get<int64_t>();
  } catch (const std::exception&) {
    return Status::Internal("malformed endpoint config " + path);
  }
  return c;
}

int64_t ReadEndpointAppliedVersion(const std::string& config_path) {
  auto j = ReadJsonFile(StatusPath(config_path));
  if (!j || !(*j)["Version"].is_number_integer()) return 0;
  return (*j)["Version"].get<int64_t>();
}

int RunDbEndpoint(const std::string& config_path) {
  // Signals are taken synchronously by this thread; block them before the proxy's thread exists.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGHUP);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  auto config = ReadEndpointConfig(config_path);
  if (!config.ok()) {
    spdlog::error("db-endpoint: {}", config.status().message());
    return 2;
  }
  std::mutex mu;
  std::optional<lb::TcpBackendAddress> backend;  // guarded by mu
  auto apply = [&](const EndpointConfig& c) -> std::optional<lb::TcpBackendAddress> {
    std::optional<lb::TcpBackendAddress> next;
    if (!c.backend_address.empty()) {
      auto parsed = lb::ParseTcpBackendAddress(c.backend_address, c.backend_port);
      if (parsed.ok()) next = *parsed;
    }
    std::lock_guard lock(mu);
    std::optional<lb::TcpBackendAddress> old = backend;
    backend = next;
    return old != next ? old : std::nullopt;
  };
  (void)apply(*config);  // nothing to close yet: no session exists

  lb::TcpProxy::Options options;
  options.idle_timeout_ms = 8LL * 3600 * 1000;  // MariaDB's own wait_timeout
  options.hold_when_no_backend = true;
  auto proxy = lb::TcpProxy::Start(
      config->address, config->port,
      [&]() -> std::optional<lb::TcpBackendAddress> {
        std::lock_guard lock(mu);
        return backend;
      },
      options);
  if (!proxy.ok()) {
    spdlog::error("db-endpoint: cannot listen on {}:{}: {}", config->address, config->port, proxy.status().message());
    return 1;
  }
  auto report = [&](int64_t version) {
    (void)lb::WriteFileAtomically(StatusPath(config_path), Json{{"Version", version}}.dump() + "\n");
  };
  report(config->version);
  spdlog::info("db-endpoint: listening on {}:{}, back end {}:{}", config->address, config->port,
          config->backend_address, config->backend_port);

  while (true) {
    int sig = 0;
    if (sigwait(&signals, &sig) != 0) continue;
    if (sig != SIGHUP) break;
    auto next = ReadEndpointConfig(config_path);
    if (!next.ok()) {
      spdlog::error("db-endpoint: {} (keeping the last config)", next.status().message());
      continue;
    }
    std::optional<lb::TcpBackendAddress> old = apply(*next);
    // Sessions to a back end that is no longer the primary end now: their server is fenced or read-only.
    if (old) (*proxy)->CloseSessionsTo(*old);
    report(next->version);
    spdlog::info("db-endpoint: config {} applied, back end {}:{}", next->version, next->backend_address,
            next->backend_port);
  }
  return 0;
}

}  // namespace autopipe::rds

// The API edge: one HTTP endpoint for every service of the region.
//
// ApiRouter turns a raw HTTP request into a reply without any socket (so tests and fuzzers drive it directly):
// SigV4 verification first, then protocol detection (X-Amz-Target => AWS JSON 1.0, else Query/EC2 form
// parameters from the body and query string), then the service named by the credential scope, then the
// handler for the action. Handlers never see the wire format and never throw across this edge; any exception
// that escapes one becomes InternalFailure, never a crash.
//
// ApiServer serves an ApiRouter over HTTP/1.1 (cpp-httplib, keep-alive, a fixed pool of worker threads).
//
// Thread-safety: configure the router (AddService) before serving; Handle() is then safe from many threads.
// Handlers must be thread-safe.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>

#include "api/protocol.h"
#include "api/sigv4.h"
#include "common/clock.h"

namespace httplib {
class Server;
}

namespace autopipe {

using Handler = std::function<Result<Json>(const ApiRequest&)>;

class ApiRouter {
 public:
  ApiRouter(std::string region, SecretLookup secrets, const Clock* clock)
      : region_(std::move(region)), secrets_(std::move(secrets)), clock_(clock) {}

  void AddService(ServiceInfo info, std::map<std::string, Handler> handlers);
  HttpReply Handle(const SigV4Request& http) const;

  // Runs a handler without HTTP or signatures: for in-process callers such as `autopipe up`.
  Result<Json> Invoke(const std::string& service, const std::string& action, const FormParams& params) const;

 private:
  struct Service {
    ServiceInfo info;
    std::map<std::string, Handler> handlers;
  };
  Result<Json> Dispatch(const Service& svc, const ApiRequest& req) const;

  std::string region_;
  SecretLookup secrets_;
  const Clock* clock_;
  std::map<std::string, Service> services_;  // by SigV4 service name
};

class ApiServer {
 public:
  explicit ApiServer(const ApiRouter* router);
  ~ApiServer();
  // Binds host:port (port 0 picks one); returns the bound port or an error.
  Result<int> Bind(const std::string& host, int port);
  // Serves on a background thread until Stop().
  void Start();
  void Stop();

 private:
  const ApiRouter* router_;
  std::unique_ptr<httplib::Server> http_;
  std::thread thread_;
};

}  // namespace autopipe

// The API edge: one HTTP endpoint for every service of the region.
//
// ApiRouter turns a raw HTTP request into a reply without any socket (so tests and fuzzers drive it directly):
// SigV4 verification first, then protocol detection (X-Amz-Target => AWS JSON 1.0, flattened to Query
// parameters; else Query/EC2 form parameters from the body and query string), then the service named by the
// credential scope, then the operation named by the action. Handlers never see the wire format and never throw
// across this edge; any exception that escapes one becomes InternalFailure, never a crash.
//
// Each service is a declarative table (ApiService): one Operation per action, marked kRead or kWrite. A kWrite
// operation runs with the service's write_lock held (RegionContext::mu: writes and controller passes are
// serialised) and, when it succeeds, after_write() is called once the lock is released (waking the
// controllers). A kRead operation takes no lock at all: the store is thread-safe and hands out immutable
// snapshots, so a Describe never waits for a write or a controller pass. A read handler must therefore only
// read (it may see two documents from different moments, never a half-written one).
//
// ApiServer serves an ApiRouter over HTTP/1.1 with HttpServer (api/http_server.h): one event-loop thread for every
// connection, with head and body deadlines and size limits, and a small pool of worker threads for the handlers.
// Its own refusals (413, 400, 408) carry the error envelope of the protocol the request speaks.
//
// Thread-safety: configure the router (AddService) before serving; Handle() and Invoke() are then safe from
// many threads. Handlers must be thread-safe (kRead ones run concurrently with everything).
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "api/http_server.h"
#include "api/protocol.h"
#include "api/sigv4.h"
#include "common/clock.h"

namespace autopipe {

enum class Access { kRead, kWrite };

// The most elements one call may give in a list parameter (AWS's per-call limit). The router checks every
// operation's limits before the handler runs and before any lock is taken, so an oversized request costs one
// pass over its parameters and never holds the region.
struct ListLimit {
  std::string list;               // the parameter, e.g. "Tags" (Tags.member.N...; EC2 Tags.N...)
  size_t max = 0;
  std::string member = "member";  // the Query member name
  // The service's own refusal for `n` elements (e.g. ELB's TooManyTags); empty: ListTooLong's ValidationError.
  std::function<Status(size_t n)> error;
};

struct Operation {
  std::string name;  // the action, e.g. "DescribeAutoScalingGroups"
  Access access;
  std::function<Result<Json>(const Params&)> handler;
  std::vector<ListLimit> limits;  // checked before the handler (and its lock)
  // The most parameters a request of this operation may carry (the backstop below unless the operation's
  // own lists allow more: CloudWatch's PutMetricData takes 1,000 metrics with their dimensions and values).
  size_t max_parameters = 0;  // 0: kMaxRequestParameters
};

// Any request carrying more parameters than this is refused before its operation runs, whatever the operation
// (a backstop for lists no ListLimit names, nested lists included).
inline constexpr size_t kMaxRequestParameters = 5000;

// What a client is told of any error that is not its own fault (Receiver); the detail goes to the log only.
inline constexpr char kInternalFailureMessage[] =
    "The request processing has failed because of an unknown error, exception or failure.";

struct ApiService {
  ServiceInfo info;
  std::vector<Operation> operations;
  std::mutex* write_lock = nullptr;    // held around every kWrite operation (nullptr: none)
  std::function<void()> after_write;   // after each successful kWrite operation, lock released (may be empty)
};

class ApiRouter {
 public:
  ApiRouter(std::string region, SecretLookup secrets, const Clock* clock)
      : region_(std::move(region)), secrets_(std::move(secrets)), clock_(clock) {}

  void AddService(ApiService service);
  // A handler for requests that carry no signature at all (no Authorization header): SNS's SubscribeURL and
  // UnsubscribeURL and its SigningCertURL are plain GETs. A handler answers the requests it recognises and
  // returns nullopt for the rest; an unsigned request no handler answers gets MissingAuthenticationToken.
  // Handlers must be thread-safe; they run without any lock held (take the service's own for writes).
  using PublicHandler = std::function<std::optional<HttpReply>(const SigV4Request&)>;
  void AddPublicHandler(PublicHandler handler) { public_handlers_.push_back(std::move(handler)); }
  HttpReply Handle(const SigV4Request& http) const;

  // Runs an operation without HTTP or signatures, with the same table and locking: for in-process callers such
  // as `autopipe up`, and tests. The params are as a Query (or EC2) client would send them.
  Result<Json> Invoke(const std::string& service, const std::string& action, const FormParams& params) const;

  // The HTTP edge's own refusals (a body over the limit, a malformed or timed-out request) in the envelope of the
  // protocol the request speaks, without verifying anything: X-Amz-Target => JSON 1.0; otherwise the service
  // named by the Authorization header's credential scope, if offered, decides (EC2's <Response><Errors> or
  // Query's <ErrorResponse> with its namespace), and Query's <ErrorResponse> when nothing says.
  HttpReply Refuse(const SigV4Request& head, const Status& error) const;

 private:
  struct Service {
    ServiceInfo info;
    std::map<std::string, Operation, std::less<>> operations;
    std::mutex* write_lock = nullptr;
    std::function<void()> after_write;
  };
  Result<Json> Dispatch(const Service& svc, const ApiRequest& req) const;

  std::string region_;
  SecretLookup secrets_;
  const Clock* clock_;
  std::map<std::string, Service> services_;  // by SigV4 service name
  std::vector<PublicHandler> public_handlers_;
};

class ApiServer {
 public:
  explicit ApiServer(const ApiRouter* router, HttpServerOptions options = {});
  ~ApiServer();
  // Binds host:port (port 0 picks one); returns the bound port or an error.
  Result<int> Bind(const std::string& host, int port);
  // Serves on background threads until Stop().
  void Start();
  // Closes every connection and joins every thread.
  void Stop();

  size_t open_connections() const { return http_.open_connections(); }

 private:
  HttpServer http_;
};

}  // namespace autopipe

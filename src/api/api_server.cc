#include "api/api_server.h"

#include <cctype>
#include <cstring>
#include <chrono>
#include <optional>

#include "api/gzip.h"
#include "common/ids.h"
#include "common/log.h"

namespace autopipe {
namespace {

std::string HeaderValue(const SigV4Request& r, const std::string& lower_name) {
  for (const auto& [k, v] : r.headers) {
    if (k.size() != lower_name.size()) continue;
    bool same = true;
    for (size_t i = 0; i < k.size() && same; ++i) same = std::tolower(static_cast<unsigned char>(k[i])) == lower_name[i];
    if (same) return v;
  }
  return "";
}

size_t HeaderCount(const SigV4Request& r, const std::string& lower_name) {
  size_t n = 0;
  for (const auto& [k, v] : r.headers) {
    if (k.size() != lower_name.size()) continue;
    bool same = true;
    for (size_t i = 0; i < k.size() && same; ++i) same = std::tolower(static_cast<unsigned char>(k[i])) == lower_name[i];
    n += same;
  }
  return n;
}

WireProtocol DetectProtocol(const SigV4Request& r) {
  return HeaderValue(r, "x-amz-target").empty() ? WireProtocol::kQuery : WireProtocol::kJson10;
}

// "Prefix.Operation": letters, digits and '_' on both sides of the last dot (the prefix may hold dots too).
// Anything else, including bytes that are not ASCII, is refused without being echoed.
std::optional<std::string> TargetAction(const std::string& target) {
  size_t dot = target.rfind('.');
  if (dot == std::string::npos || dot == 0 || dot + 1 == target.size() || target.size() > 256) return std::nullopt;
  for (char c : target) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '.') return std::nullopt;
  }
  return target.substr(dot + 1);
}

bool IsActionName(const std::string& action) {
  if (action.empty() || action.size() > 128) return false;
  for (char c : action) {
    if (!std::isalnum(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

std::string QueryString(const std::string& target) {
  size_t q = target.find('?');
  return q == std::string::npos ? "" : target.substr(q + 1);
}

}  // namespace

void ApiRouter::AddService(ApiService service) {
  Service svc;
  svc.info = std::move(service.info);
  svc.write_lock = service.write_lock;
  svc.after_write = std::move(service.after_write);
  for (auto& op : service.operations) {
    std::string name = op.name;
    svc.operations.emplace(std::move(name), std::move(op));
  }
  std::string name = svc.info.name;
  services_[name] = std::move(svc);
}

HttpReply ApiRouter::Handle(const SigV4Request& http) const {
  const std::string request_id = NewUuid();
  WireProtocol protocol = DetectProtocol(http);
  const bool query_mode = protocol == WireProtocol::kJson10 && HeaderValue(http, "x-amzn-query-mode") == "true";

  // Which of two Authorization headers was signed is anyone's guess: refuse rather than pick one.
  if (HeaderCount(http, "authorization") > 1) {
    return RenderError(nullptr, protocol, request_id,
                       Status(400, "IncompleteSignature", "The request carries more than one Authorization header"),
                       query_mode);
  }

  if (HeaderCount(http, "authorization") == 0) {
    for (const auto& handler : public_handlers_) {
      if (auto reply = handler(http)) return std::move(*reply);
    }
  }

  auto caller = VerifySigV4(http, secrets_, region_, clock_->NowSeconds());
  if (!caller.ok()) return RenderError(nullptr, protocol, request_id, caller.status(), query_mode);

  auto svc_it = services_.find(caller->service);
  if (svc_it == services_.end()) {
    return RenderError(nullptr, protocol, request_id,
                       Status(400, "InvalidAction",
                              "The service " + caller->service + " is not offered by this endpoint"),
                       query_mode);
  }
  const Service& svc = svc_it->second;
  if (protocol == WireProtocol::kQuery) protocol = svc.info.protocol;

  // A gzip body (botocore compresses large PutMetricData calls) was signed as sent: inflate it only now.
  const std::string* body = &http.body;
  std::string inflated;
  if (HeaderValue(http, "content-encoding").find("gzip") != std::string::npos) {
    auto out = Gunzip(http.body);
    if (!out.ok()) return RenderError(&svc.info, protocol, request_id, out.status(), query_mode);
    inflated = std::move(*out);
    body = &inflated;
  }

  ApiRequest req;
  req.service = svc.info.name;
  req.request_id = request_id;
  req.protocol = protocol;
  req.query_mode = query_mode;
  if (protocol == WireProtocol::kJson10) {
    auto action = TargetAction(HeaderValue(http, "x-amz-target"));
    if (!action) {
      return RenderError(&svc.info, protocol, request_id,
                         Status(400, "InvalidAction", "The X-Amz-Target header does not name an operation"),
                         query_mode);
    }
    req.action = std::move(*action);
    auto params = FlattenJson10(*body, svc.info);
    if (!params.ok()) return RenderError(&svc.info, protocol, request_id, params.status(), query_mode);
    req.params = std::move(*params);
  } else {
    auto from_query = ParseForm(QueryString(http.target));
    auto from_body = http.method == "POST" ? ParseForm(*body) : std::optional<FormParams>(FormParams{});
    if (!from_query || !from_body) {
      return RenderError(&svc.info, protocol, request_id,
                         Status(400, "MalformedQueryString", "The request parameters are not validly encoded"));
    }
    req.params = std::move(*from_body);
    req.params.merge(*from_query);  // body wins on duplicates
    auto action = req.params.find("Action");
    if (action == req.params.end() || action->second.empty()) {
      return RenderError(&svc.info, protocol, request_id, Status(400, "MissingAction", "Missing Action"));
    }
    req.action = action->second;
  }

  // Text no AWS string shape allows is refused here, for every operation of every service.
  if (Status text = CheckParameterText(req.params); !text.ok()) {
    return RenderError(&svc.info, protocol, request_id, text, query_mode);
  }

  auto started = std::chrono::steady_clock::now();
  Result<Json> result = Dispatch(svc, req);
  auto micros =
      std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - started).count();
  if (!result.ok()) {
    const Status& error = result.status();
    spdlog::info("api service={} action={} request_id={} error={} us={}", req.service, req.action, request_id,
                 error.code(), micros);
    if (!error.sender_fault()) {
      // Our fault: the detail (a store or launcher message) is for the log only; the client gets AWS's text.
      spdlog::error("api service={} action={} request_id={} internal error: {}", req.service, req.action,
                    request_id, error.message());
      return RenderError(&svc.info, protocol, request_id,
                         Status(error.http_status() >= 500 ? error.http_status() : 500, error.code(),
                                kInternalFailureMessage, false),
                         query_mode);
    }
    return RenderError(&svc.info, protocol, request_id, error, query_mode);
  }
  spdlog::debug("api service={} action={} request_id={} us={}", req.service, req.action, request_id, micros);
  return RenderResult(svc.info, req, *result);
}

Result<Json> ApiRouter::Dispatch(const Service& svc, const ApiRequest& req) const {
  // A Query/EC2 request names the API version it speaks. Services that share a SigV4 name (Classic ELB 2012-06-01
  // and elbv2 2015-12-01 both sign as "elasticloadbalancing") are told apart by it, so another version's request
  // is refused rather than answered by this version's handlers.
  if (req.protocol != WireProtocol::kJson10) {
    auto version = req.params.find("Version");
    if (version != req.params.end() && version->second != svc.info.version) {
      return Status(400, "InvalidAction",
                    "Could not find operation " + req.action + " for version " + version->second + " (this region's " +
                        svc.info.name + " API is version " + svc.info.version + ")");
    }
  }
  auto op = svc.operations.find(req.action);
  if (op == svc.operations.end()) {
    if (!IsActionName(req.action)) {
      return Status(400, "InvalidAction", "The action is not a valid operation name for version " + svc.info.version);
    }
    return Status(400, "InvalidAction",
                  "Could not find operation " + req.action + " for version " + svc.info.version);
  }
  // JSON 1.0 parameters are flattened to the service's own Query/EC2 form, so they read the same way.
  const Params params(req.params, svc.info.protocol);
  // Per-call limits, before the handler and before any lock: an oversized request never holds the region.
  for (const ListLimit& limit : op->second.limits) {
    const size_t n = params.ListSize(limit.list, limit.member);
    if (n > limit.max) return limit.error ? limit.error(n) : ListTooLong(limit.list, n, limit.max);
  }
  const size_t max_parameters = op->second.max_parameters ? op->second.max_parameters : kMaxRequestParameters;
  if (req.params.size() > max_parameters) {
    return Status::Validation("1 validation error detected: the request has " + std::to_string(req.params.size()) +
                              " parameters; at most " + std::to_string(max_parameters) + " are accepted");
  }
  try {
    if (op->second.access == Access::kRead || svc.write_lock == nullptr) {
      Result<Json> result = op->second.handler(params);
      if (op->second.access == Access::kWrite && result.ok() && svc.after_write) svc.after_write();
      return result;
    }
    Result<Json> result = [&] {
      std::lock_guard lock(*svc.write_lock);
      return op->second.handler(params);
    }();
    if (result.ok() && svc.after_write) svc.after_write();
    return result;
  } catch (const std::exception& e) {
    spdlog::error("api handler {}.{} threw: {}", req.service, req.action, e.what());
    return Status(500, "InternalFailure", kInternalFailureMessage, false);
  }
}

Result<Json> ApiRouter::Invoke(const std::string& service, const std::string& action,
                               const FormParams& params) const {
  auto it = services_.find(service);
  if (it == services_.end()) return Status::Internal("no service " + service);
  ApiRequest req;
  req.service = service;
  req.action = action;
  req.request_id = NewUuid();
  req.protocol = it->second.info.protocol;
  req.params = params;
  return Dispatch(it->second, req);
}

HttpReply ApiRouter::Refuse(const SigV4Request& head, const Status& error) const {
  WireProtocol protocol = DetectProtocol(head);
  const bool query_mode = protocol == WireProtocol::kJson10 && HeaderValue(head, "x-amzn-query-mode") == "true";
  const ServiceInfo* info = nullptr;
  // "AWS4-HMAC-SHA256 Credential=AKID/yyyymmdd/region/service/aws4_request, ...": the scope's fourth part.
  const std::string auth = HeaderValue(head, "authorization");
  if (size_t cred = auth.find("Credential="); cred != std::string::npos) {
    size_t start = cred + std::strlen("Credential=");
    size_t end = auth.find_first_of(", ", start);
    std::string scope = auth.substr(start, end == std::string::npos ? std::string::npos : end - start);
    std::vector<std::string> parts;
    for (size_t from = 0;;) {
      size_t slash = scope.find('/', from);
      parts.push_back(scope.substr(from, slash == std::string::npos ? std::string::npos : slash - from));
      if (slash == std::string::npos) break;
      from = slash + 1;
    }
    if (parts.size() == 5) {
      auto it = services_.find(parts[3]);
      if (it != services_.end()) info = &it->second.info;
    }
  }
  if (protocol == WireProtocol::kQuery && info != nullptr) protocol = info->protocol;
  return RenderError(info, protocol, NewUuid(), error, query_mode);
}

ApiServer::ApiServer(const ApiRouter* router, HttpServerOptions options)
    : http_([router](const SigV4Request& request) { return router->Handle(request); },
            [router](const SigV4Request& head, const Status& error) { return router->Refuse(head, error); },
            options) {}

ApiServer::~ApiServer() { Stop(); }

Result<int> ApiServer::Bind(const std::string& host, int port) { return http_.Bind(host, port); }

void ApiServer::Start() { http_.Start(); }

void ApiServer::Stop() { http_.Stop(); }

}  // namespace autopipe

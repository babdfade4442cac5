#include "api/api_server.h"

#include <httplib.h>

#include <chrono>

#include "common/ids.h"
#include "common/log.h"

namespace autopipe {
namespace {

constexpr size_t kMaxBodyBytes = 16 << 20;

std::string HeaderValue(const SigV4Request& r, const std::string& lower_name) {
  for (const auto& [k, v] : r.headers) {
    if (k.size() != lower_name.size()) continue;
    bool same = true;
    for (size_t i = 0; i < k.size() && same; ++i) same = std::tolower(static_cast<unsigned char>(k[i])) == lower_name[i];
    if (same) return v;
  }
  return "";
}

WireProtocol DetectProtocol(const SigV4Request& r) {
  return HeaderValue(r, "x-amz-target").empty() ? WireProtocol::kQuery : WireProtocol::kJson10;
}

std::string QueryString(const std::string& target) {
  size_t q = target.find('?');
  return q == std::string::npos ? "" : target.substr(q + 1);
}

}  // namespace

void ApiRouter::AddService(ServiceInfo info, std::map<std::string, Handler> handlers) {
  std::string name = info.name;
  services_[name] = Service{std::move(info), std::move(handlers)};
}

HttpReply ApiRouter::Handle(const SigV4Request& http) const {
  const std::string request_id = NewUuid();
  WireProtocol protocol = DetectProtocol(http);

  auto caller = VerifySigV4(http, secrets_, region_, clock_->NowSeconds());
  if (!caller.ok()) return RenderError(nullptr, protocol, request_id, caller.status());

  auto svc_it = services_.find(caller->service);
  if (svc_it == services_.end()) {
    return RenderError(nullptr, protocol, request_id,
                       Status(400, "InvalidAction",
                              "The service " + caller->service + " is not offered by this endpoint"));
  }
  const Service& svc = svc_it->second;
  if (protocol == WireProtocol::kQuery) protocol = svc.info.protocol;

  ApiRequest req;
  req.service = svc.info.name;
  req.request_id = request_id;
  req.protocol = protocol;
  if (protocol == WireProtocol::kJson10) {
    std::string target = HeaderValue(http, "x-amz-target");
    size_t dot = target.rfind('.');
    req.action = dot == std::string::npos ? target : target.substr(dot + 1);
    req.json = Json::parse(http.body.empty() ? "{}" : http.body, nullptr, false);
    if (req.json.is_discarded() || !req.json.is_object()) {
      return RenderError(&svc.info, protocol, request_id,
                         Status(400, "SerializationException", "The request body is not a valid JSON object"));
    }
  } else {
    auto from_query = ParseForm(QueryString(http.target));
    auto from_body = http.method == "POST" ? ParseForm(http.body) : std::optional<FormParams>(FormParams{});
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

  auto started = std::chrono::steady_clock::now();
  Result<Json> result = Dispatch(svc, req);
  auto micros =
      std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - started).count();
  if (!result.ok()) {
    spdlog::info("api service={} action={} request_id={} error={} us={}", req.service, req.action, request_id,
                 result.status().code(), micros);
    return RenderError(&svc.info, protocol, request_id, result.status());
  }
  spdlog::debug("api service={} action={} request_id={} us={}", req.service, req.action, request_id, micros);
  return RenderResult(svc.info, req, *result);
}

Result<Json> ApiRouter::Dispatch(const Service& svc, const ApiRequest& req) const {
  auto h = svc.handlers.find(req.action);
  if (h == svc.handlers.end()) {
    return Status(400, "InvalidAction",
                  "Could not find operation " + req.action + " for version " + svc.info.version);
  }
  try {
    return h->second(req);
  } catch (const std::exception& e) {
    spdlog::error("api handler {}.{} threw: {}", req.service, req.action, e.what());
    return Status(500, "InternalFailure", "The request processing has failed because of an unknown error",
                  false);
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

ApiServer::ApiServer(const ApiRouter* router) : router_(router), http_(std::make_unique<httplib::Server>()) {
  http_->new_task_queue = [] { return new httplib::ThreadPool(8); };
  http_->set_payload_max_length(kMaxBodyBytes);
  http_->set_read_timeout(30, 0);
  http_->set_keep_alive_max_count(1000);
  // Replies are written as header then body; without this, Nagle + delayed ACK add ~40 ms to each one.
  http_->set_tcp_nodelay(true);
  auto handle = [this](const httplib::Request& in, httplib::Response& out) {
    SigV4Request req;
    req.method = in.method;
    req.target = in.target;
    req.body = in.body;
    for (const auto& [k, v] : in.headers) req.headers.emplace_back(k, v);
    HttpReply reply = router_->Handle(req);
    out.status = reply.status;
    for (const auto& [k, v] : reply.headers) out.set_header(k, v);
    out.set_content(std::move(reply.body), reply.content_type.c_str());
  };
  http_->Post(".*", handle);
  http_->Get(".*", handle);
}

ApiServer::~ApiServer() { Stop(); }

Result<int> ApiServer::Bind(const std::string& host, int port) {
  int bound = port == 0 ? http_->bind_to_any_port(host) : (http_->bind_to_port(host, port) ? port : -1);
  if (bound <= 0) return Status::Internal("cannot listen on " + host + ":" + std::to_string(port));
  return bound;
}

void ApiServer::Start() {
  thread_ = std::thread([this] { http_->listen_after_bind(); });
}

void ApiServer::Stop() {
  if (http_) http_->stop();
  if (thread_.joinable()) thread_.join();
}

}  // namespace autopipe

#include "partition/region_client.h"

#include <curl/curl.h>

#include <chrono>

#include "api/sigv4.h"

namespace autopipe::partition {
namespace {

size_t Collect(char* data, size_t size, size_t n, void* out) {
  static_cast<std::string*>(out)->append(data, size * n);
  return size * n;
}

void FindAllInto(const route53::XmlNode& n, const std::string& name, std::vector<const route53::XmlNode*>* out) {
  for (const auto& c : n.children) {
    if (c.name == name) out->push_back(&c);
    FindAllInto(c, name, out);
  }
}

}  // namespace

std::vector<const route53::XmlNode*> FindAll(const route53::XmlNode& n, const std::string& name) {
  std::vector<const route53::XmlNode*> out;
  FindAllInto(n, name, &out);
  return out;
}

Result<route53::XmlNode> CallApi(const ApiCall& call, const KeyPair& key) {
  const size_t scheme = call.endpoint.find("://");
  if (scheme == std::string::npos) return Status::InvalidParameterValue("not an endpoint URL: " + call.endpoint);
  const std::string host = call.endpoint.substr(scheme + 3);
  SigV4Request req;
  req.method = call.method;
  req.target = call.target;
  req.headers = {{"Host", host}};
  if (call.method == "POST") req.headers.emplace_back("Content-Type", "application/x-www-form-urlencoded; charset=utf-8");
  req.body = call.body;
  const int64_t now =
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  SignSigV4(req, key.access_key_id, key.secret_access_key, call.region, call.service, now);
  CURL* curl = curl_easy_init();
  if (!curl) return Status::Internal("curl_easy_init failed");
  curl_slist* headers = nullptr;
  for (const auto& [k, v] : req.headers) {
    if (k == "Host") continue;
    headers = curl_slist_append(headers, (k + ": " + v).c_str());
  }
  const std::string url = call.endpoint + call.target;
  std::string out;
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  if (call.method == "POST") {
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, req.body.c_str());
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, static_cast<long>(req.body.size()));
  } else if (call.method != "GET") {
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, call.method.c_str());
  }
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, Collect);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &out);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, call.timeout_ms);
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_PROXY, "");
  const CURLcode rc = curl_easy_perform(curl);
  long status = 0;
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
  curl_slist_free_all(headers);
  curl_easy_cleanup(curl);
  if (rc != CURLE_OK) {
    return Status(503, "Unreachable", call.endpoint + ": " + curl_easy_strerror(rc), false);
  }
  auto xml = route53::ParseXml(out);
  if (status < 200 || status >= 300) {
    std::string code = "HTTP" + std::to_string(status), message = out.substr(0, 300);
    if (xml.ok()) {
      auto codes = FindAll(*xml, "Code");
      auto messages = FindAll(*xml, "Message");
      if (!codes.empty()) code = codes[0]->text;
      if (!messages.empty()) message = messages[0]->text;
    }
    return Status(static_cast<int>(status), code, message);
  }
  if (!xml.ok()) return Status::Internal(call.endpoint + " answered what is not XML: " + xml.status().message());
  return std::move(*xml);
}

Result<route53::XmlNode> CallRegion(const RegionEntry& region, const KeyPair& key, const std::string& service,
                                    const std::string& body, long timeout_ms) {
  ApiCall call;
  call.endpoint = region.endpoint;
  call.region = region.region;
  call.service = service;
  call.body = body;
  call.timeout_ms = timeout_ms;
  return CallApi(call, key);
}

}  // namespace autopipe::partition

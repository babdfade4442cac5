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

}  // namespace

void FindAll(const route53::XmlNode& n, const std::string& name, std::vector<const route53::XmlNode*>* out) {
  for (const auto& c : n.children) {
    if (c.name == name) out->push_back(&c);
    FindAll(c, name, out);
  }
}

std::vector<const route53::XmlNode*> FindAll(const route53::XmlNode& n, const std::string& name) {
  std::vector<const route53::XmlNode*> out;
  FindAll(n, name, &out);
  return out;
}

std::string FindText(const route53::XmlNode& n, const std::string& name) {
  std::vector<const route53::XmlNode*> found;
  FindAll(n, name, &found);
  return found.empty() ? "" : found.front()->text;
}

Result<route53::XmlNode> CallRegion(const RegionEntry& region, const KeyPair& key, const std::string& service,
                                   const std::string& body, long timeout_ms) {
  const size_t scheme = region.endpoint.find("://");
  if (scheme == std::string::npos) return Status(503, "RegionUnavailable", "region " + region.region + " has no endpoint");
  const std::string host = region.endpoint.substr(scheme + 3);
  SigV4Request req;
  req.method = "POST";
  req.target = "/";
  req.headers = {{"Host", host}, {"Content-Type", "application/x-www-form-urlencoded; charset=utf-8"}};
  req.body = body;
  const int64_t now =
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  SignSigV4(req, key.access_key_id, key.secret_access_key, region.region, service, now);
  CURL* curl = curl_easy_init();
  if (!curl) return Status(503, "RegionUnavailable", "curl_easy_init failed");
  curl_slist* headers = nullptr;
  for (const auto& [k, v] : req.headers) {
    if (k == "Host") continue;
    headers = curl_slist_append(headers, (k + ": " + v).c_str());
  }
  const std::string url = region.endpoint + "/";
  std::string out;
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_POSTFIELDS, req.body.c_str());
  curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, static_cast<long>(req.body.size()));
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, Collect);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &out);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, timeout_ms);
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_PROXY, "");
  const CURLcode rc = curl_easy_perform(curl);
  long status = 0;
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
  curl_slist_free_all(headers);
  curl_easy_cleanup(curl);
  if (rc != CURLE_OK)
    return Status(503, "RegionUnavailable",
                  "region " + region.region + " did not answer at " + region.endpoint + ": " + curl_easy_strerror(rc));
  auto xml = route53::ParseXml(out);
  if (status != 200) {
    std::string code = xml.ok() ? FindText(*xml, "Code") : "";
    std::string message = xml.ok() ? FindText(*xml, "Message") : "";
    if (code.empty()) code = "InternalFailure";
    return Status(static_cast<int>(status), code, message);
  }
  if (!xml.ok()) return Status(502, "InternalFailure", "region " + region.region + " answered with malformed XML");
  return std::move(*xml);
}

Result<route53::XmlNode> CallApi(const ApiCall& call, const KeyPair& key) {
  const size_t scheme = call.endpoint.find("://");
  if (scheme == std::string::npos) return Status(503, "RegionUnavailable", "not an endpoint URL: " + call.endpoint);
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
  if (!curl) return Status(503, "RegionUnavailable", "curl_easy_init failed");
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
    return Status(503, "RegionUnavailable", call.endpoint + " did not answer: " + curl_easy_strerror(rc));
  }
  auto xml = route53::ParseXml(out);
  if (status < 200 || status >= 300) {
    std::string code = xml.ok() ? FindText(*xml, "Code") : "";
    std::string message = xml.ok() ? FindText(*xml, "Message") : out.substr(0, 300);
    if (code.empty()) code = "HTTP" + std::to_string(status);
    return Status(static_cast<int>(status), code, message);
  }
  if (!xml.ok()) return Status(502, "InternalFailure", call.endpoint + " answered with malformed XML");
  return std::move(*xml);
}

}  // namespace autopipe::partition

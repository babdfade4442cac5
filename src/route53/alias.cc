#include "route53/alias.h"

#include <curl/curl.h>

#include <chrono>

#include "api/form.h"
#include "api/sigv4.h"
#include "route53/xml.h"

namespace autopipe::route53 {
namespace {

size_t Collect(char* data, size_t size, size_t n, void* out) {
  static_cast<std::string*>(out)->append(data, size * n);
  return size * n;
}

// One signed Query call to a region's API; the parsed XML reply or nullopt.
std::optional<XmlNode> CallRegion(const partition::RegionEntry& region, const partition::KeyPair& key,
                                  const std::string& service, const std::string& body) {
  std::string host = region.endpoint.substr(region.endpoint.find("://") + 3);
  SigV4Request req;
  req.method = "POST";
  req.target = "/";
  req.headers = {{"Host", host}, {"Content-Type", "application/x-www-form-urlencoded; charset=utf-8"}};
  req.body = body;
  int64_t now = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
                    .count();
  SignSigV4(req, key.access_key_id, key.secret_access_key, region.region, service, now);
  CURL* curl = curl_easy_init();
  if (!curl) return std::nullopt;
  curl_slist* headers = nullptr;
  for (const auto& [k, v] : req.headers) {
    if (k == "Host") continue;
    headers = curl_slist_append(headers, (k + ": " + v).c_str());
  }
  std::string url = region.endpoint + "/";
  std::string out;
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_POSTFIELDS, req.body.c_str());
  curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, static_cast<long>(req.body.size()));
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, Collect);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &out);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 2000L);
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_PROXY, "");
  CURLcode rc = curl_easy_perform(curl);
  long status = 0;
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
  curl_slist_free_all(headers);
  curl_easy_cleanup(curl);
  if (rc != CURLE_OK || status != 200) return std::nullopt;
  auto xml = ParseXml(out);
  if (!xml.ok()) return std::nullopt;
  return std::move(*xml);
}

// Depth-first search for every element named `name`.
void FindAll(const XmlNode& n, const std::string& name, std::vector<const XmlNode*>* out) {
  for (const auto& c : n.children) {
    if (c.name == name) out->push_back(&c);
    FindAll(c, name, out);
  }
}

}  // namespace

AliasTargetState AliasResolver::Resolve(const std::string& target) const {
  AliasTargetState st;
  std::string ip = target;
  if (!ip.empty() && ip.back() == '.') ip.pop_back();
  // 127.N.200.k: the block is its first two octets.
  size_t dot1 = ip.find('.');
  size_t dot2 = dot1 == std::string::npos ? dot1 : ip.find('.', dot1 + 1);
  if (dot2 == std::string::npos) return st;
  const std::string block = ip.substr(0, dot2);
  for (const auto& region : partition::ListRegions(partition_dir_)) {
    if (region.address_block != block || !region.alive) continue;
    auto lbs = CallRegion(region, key_, "elasticloadbalancing", "Action=DescribeLoadBalancers&Version=2012-06-01");
    if (!lbs) return st;
    std::vector<const XmlNode*> descriptions;
    FindAll(*lbs, "member", &descriptions);
    for (const XmlNode* d : descriptions) {
      if (d->ChildText("DNSName") != ip) continue;
      st.exists = true;
      st.addresses = {ip};
      const std::string name = d->ChildText("LoadBalancerName");
      auto health = CallRegion(region, key_, "elasticloadbalancing",
                               "Action=DescribeInstanceHealth&Version=2012-06-01&LoadBalancerName=" + UriEncode(name));
      if (health) {
        std::vector<const XmlNode*> states;
        FindAll(*health, "State", &states);
        for (const XmlNode* s : states) st.healthy = st.healthy || s->text == "InService";
      }
      return st;
    }
  }
  return st;
}

void AliasResolver::Refresh(const std::vector<std::string>& targets) {
  std::map<std::string, AliasTargetState> next;
  for (const auto& t : targets) {
    if (!next.count(t)) next[t] = Resolve(t);
  }
  std::lock_guard lock(mu_);
  cache_ = std::move(next);
}

std::optional<AliasTargetState> AliasResolver::Lookup(const std::string& target) const {
  std::lock_guard lock(mu_);
  auto it = cache_.find(target);
  if (it == cache_.end()) return std::nullopt;
  return it->second;
}

std::string AliasResolver::Check(const Json& alias_target, const std::string& type) {
  const std::string target = alias_target.value("DNSName", "");
  AliasTargetState st = Resolve(target);
  if (st.exists && (type == "A")) {
    std::lock_guard lock(mu_);
    cache_[target] = st;
    return "";
  }
  return "Tried to create an alias that targets " + target + ", type " + type + " in zone " + alias_target.value("HostedZoneId", "") +
         ", but the alias target name does not lie within the target zone";
}

}  // namespace autopipe::route53

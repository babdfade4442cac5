#include "route53/alias.h"

#include <chrono>

#include "api/form.h"
#include "partition/region_client.h"
#include "route53/xml.h"

namespace autopipe::route53 {
namespace {

// One signed Query call to a region's API (partition/region_client.h); the parsed XML reply or nullopt.
std::optional<XmlNode> AskRegion(const partition::RegionEntry& region, const partition::KeyPair& key,
                                  const std::string& service, const std::string& body) {
  auto reply = partition::CallRegion(region, key, service, body);
  if (!reply.ok()) return std::nullopt;
  return std::move(*reply);
}

void FindAll(const XmlNode& n, const std::string& name, std::vector<const XmlNode*>* out) {
  partition::FindAll(n, name, out);
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
    auto lbs = AskRegion(region, key_, "elasticloadbalancing", "Action=DescribeLoadBalancers&Version=2012-06-01");
    if (!lbs) return st;
    std::vector<const XmlNode*> descriptions;
    FindAll(*lbs, "member", &descriptions);
    for (const XmlNode* d : descriptions) {
      if (d->ChildText("DNSName") != ip) continue;
      st.exists = true;
      st.addresses = {ip};
      const std::string name = d->ChildText("LoadBalancerName");
      auto health = AskRegion(region, key_, "elasticloadbalancing",
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

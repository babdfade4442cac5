#include "route53/alias.h"

#include "api/form.h"
#include "partition/region_client.h"
#include "route53/xml.h"

namespace autopipe::route53 {

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
    auto lbs = partition::CallRegion(region, key_, "elasticloadbalancing",
                                     "Action=DescribeLoadBalancers&Version=2012-06-01");
    if (!lbs.ok()) return st;
    for (const XmlNode* d : partition::FindAll(*lbs, "member")) {
      if (d->ChildText("DNSName") != ip) continue;
      st.exists = true;
      st.addresses = {ip};
      const std::string name = d->ChildText("LoadBalancerName");
      auto health = partition::CallRegion(region, key_, "elasticloadbalancing",
                                          "Action=DescribeInstanceHealth&Version=2012-06-01&LoadBalancerName=" + UriEncode(name));
      if (health.ok()) {
        for (const XmlNode* s : partition::FindAll(*health, "State")) st.healthy = st.healthy || s->text == "InService";
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

#include "elb/elb_service.h"

#include <algorithm>
#include <cctype>
#include <map>
#include <memory>
#include <set>

#include "api/page_token.h"
#include "common/time_util.h"
#include "ec2/instances.h"
#include "elb/load_balancers.h"

namespace autopipe {
namespace {

// us-west-2's hosted zone for Classic Load Balancers; DNSName is an address literal here, so any fixed id does.
constexpr size_t kMaxNameLength = 32;
constexpr size_t kMaxTagsPerLoadBalancer = 10;
constexpr size_t kMaxDescribeTagsNames = 20;
constexpr int kMaxAddressIndex = 254;
constexpr int64_t kMaxPageSize = 400;
constexpr char kDesyncMitigationModeKey[] = "elb.http.desyncmitigationmode";

// ---- errors ---------------------------------------------------------------------------------------------------

Status ConstraintError(const std::string& field, const std::string& value, const std::string& constraint) {
  return Status::Validation("1 validation error detected: Value '" + value + "' at '" + field +
                            "' failed to satisfy constraint: " + constraint);
}

Status NullError(const std::string& field) {
  return Status::Validation("1 validation error detected: Value null at '" + field +
                            "' failed to satisfy constraint: Member must not be null");
}

Status LoadBalancerNotFound(const std::string& name) {
  return Status(400, "LoadBalancerNotFound", "There is no ACTIVE Load Balancer named '" + name + "'");
}

Status InvalidConfiguration(const std::string& message) {
  return Status(409, "InvalidConfigurationRequest", message);
}

// ---- scalar parameters ----------------------------------------------------------------------------------------

Result<std::string> RequiredLoadBalancerName(const Params& p) {
  auto name = p.Str("LoadBalancerName");
  if (!name) return NullError("loadBalancerName");
  return *name;
}

// An optional integer parameter that must lie in [lo, hi]; `field` is how AWS names it in messages.
Result<std::optional<int64_t>> IntInRange(const Params& p, const std::string& name, const std::string& field,
                                         int64_t lo, int64_t hi) {
  auto v = p.Int(name);
  if (!v.ok() || !*v) return v;
  if (**v < lo) {
    return ConstraintError(field, std::to_string(**v), "Member must have value greater than or equal to " +
                                                           std::to_string(lo));
  }
  if (**v > hi) {
    return ConstraintError(field, std::to_string(**v), "Member must have value less than or equal to " +
                                                           std::to_string(hi));
  }
  return v;
}

Result<int64_t> RequiredIntInRange(const Params& p, const std::string& name, const std::string& field, int64_t lo,
                                   int64_t hi) {
  AP_ASSIGN_OR_RETURN(auto v, IntInRange(p, name, field, lo, hi));
  if (!v) return NullError(field);
  return *v;
}

std::string Upper(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::toupper(c); });
  return s;
}

bool ValidLoadBalancerName(const std::string& name) {
  if (name.empty() || name.size() > kMaxNameLength || name.front() == '-' || name.back() == '-') return false;
  return std::all_of(name.begin(), name.end(),
                     [](unsigned char c) { return std::isalnum(c) || c == '-'; });
}

// Instances.member.N.InstanceId, in order.
std::vector<std::string> InstanceIds(const Params& p) {
  std::vector<std::string> ids;
  for (const auto& m : p.StructList("Instances")) {
    auto it = m.find("InstanceId");
    if (it != m.end()) ids.push_back(it->second);
  }
  return ids;
}

// ---- listeners ------------------------------------------------------------------------------------------------

bool IsHttpFamily(const std::string& protocol) { return protocol == "HTTP" || protocol == "HTTPS"; }

Result<Json> ReadListener(const FormParams& fields, size_t index) {
  const std::string field = "listeners." + std::to_string(index) + ".member.";
  const Params p(fields, WireProtocol::kQuery);
  auto protocol_in = p.Str("Protocol");
  if (!protocol_in) return NullError(field + "protocol");
  AP_ASSIGN_OR_RETURN(auto port, RequiredIntInRange(p, "LoadBalancerPort", field + "loadBalancerPort", 1, 65535));
  AP_ASSIGN_OR_RETURN(auto instance_port, RequiredIntInRange(p, "InstancePort", field + "instancePort", 1, 65535));

  static const std::set<std::string> kProtocols = {"HTTP", "HTTPS", "TCP", "SSL"};
  const std::string protocol = Upper(*protocol_in);
  if (!kProtocols.count(protocol)) {
    return Status::Validation("Invalid protocol '" + *protocol_in + "' for listener on port " +
                              std::to_string(port) + ": valid protocols are HTTP, HTTPS, TCP and SSL");
  }
  // Left out, the back end speaks the front end's family in the clear.
  const std::string instance_protocol =
      Upper(p.Str("InstanceProtocol").value_or(IsHttpFamily(protocol) ? "HTTP" : "TCP"));
  if (!kProtocols.count(instance_protocol)) {
    return Status::Validation("Invalid instance protocol '" + *p.Str("InstanceProtocol") + "' for listener on port " +
                              std::to_string(port) + ": valid protocols are HTTP, HTTPS, TCP and SSL");
  }
  if (IsHttpFamily(protocol) != IsHttpFamily(instance_protocol)) {
    return InvalidConfiguration("Listener on port " + std::to_string(port) + ": protocol " + protocol +
                                " is incompatible with instance protocol " + instance_protocol +
                                " (an HTTP or HTTPS listener needs an HTTP or HTTPS back end, a TCP or SSL "
                                "listener a TCP or SSL back end)");
  }
  // The nodes do not terminate or originate TLS, so there is no honest way to offer these.
  if (protocol == "HTTPS" || protocol == "SSL" || instance_protocol == "HTTPS" || instance_protocol == "SSL") {
    return Status(400, "UnsupportedProtocol", "HTTPS and SSL listeners are not supported by this region");
  }
  return Json{{"Protocol", protocol},
              {"LoadBalancerPort", port},
              {"InstanceProtocol", instance_protocol},
              {"InstancePort", instance_port}};
}

Status DuplicateListener(const std::string& name, const Json& listener) {
  return Status(400, "DuplicateListener",
                "A listener already exists for " + name + " with LoadBalancerPort " +
                    std::to_string(listener["LoadBalancerPort"].get<int>()) +
                    ", but with a different InstancePort, Protocol, or SSLCertificateId");
}

// Adds `listeners` to `existing`. A listener identical to one already there is a no-op (AWS makes these calls
// idempotent); a different one on a port already used is DuplicateListener.
Status MergeListeners(const std::string& name, Json& existing, const Json& listeners) {
  for (const auto& l : listeners) {
    auto same_port = std::find_if(existing.begin(), existing.end(), [&](const Json& e) {
      return e["LoadBalancerPort"] == l["LoadBalancerPort"];
    });
    if (same_port == existing.end()) {
      existing.push_back(l);
    } else if (*same_port != l) {
      return DuplicateListener(name, l);
    }
  }
  return Status::Ok();
}

// Listeners.member.N, validated and merged among themselves (the request may not contradict itself either).
Result<Json> ReadListeners(const Params& p, const std::string& name) {
  auto fields = p.StructList("Listeners");
  if (fields.empty()) return NullError("listeners");
  Json listeners = Json::array();
  for (size_t i = 0; i < fields.size(); ++i) {
    AP_ASSIGN_OR_RETURN(auto l, ReadListener(fields[i], i + 1));
    AP_RETURN_IF_ERROR(MergeListeners(name, listeners, Json::array({l})));
  }
  return listeners;
}

// ---- zones, health check, attributes, tags --------------------------------------------------------------------

// AvailabilityZones.member.N: each one of the region's, duplicates dropped, order kept.
Result<std::vector<std::string>> ReadZones(const Params& p, const Catalog& catalog) {
  std::vector<std::string> zones;
  for (const auto& z : p.List("AvailabilityZones")) {
    if (!catalog.IsAvailabilityZone(z)) {
      std::string known;
      for (const auto& az : catalog.availability_zones()) known += (known.empty() ? "" : ", ") + az;
      return InvalidConfiguration("Invalid Availability Zone: " + z + " (the Availability Zones of " +
                                  catalog.region() + " are " + known + ")");
    }
    if (std::find(zones.begin(), zones.end(), z) == zones.end()) zones.push_back(z);
  }
  return zones;
}

// "TCP:80", "SSL:443", "HTTP:80/health", "HTTPS:443/health" -> the target with its protocol upper-cased.
Result<std::string> ReadHealthCheckTarget(const std::string& target) {
  auto invalid = [&] {
    return Status::Validation("Invalid HealthCheck Target '" + target + "': use TCP:port, SSL:port, "
                              "HTTP:port/path or HTTPS:port/path (port 1-65535, path up to 1024 characters)");
  };
  size_t colon = target.find(':');
  if (colon == std::string::npos) return invalid();
  const std::string protocol = Upper(target.substr(0, colon));
  if (protocol != "TCP" && protocol != "SSL" && protocol != "HTTP" && protocol != "HTTPS") return invalid();
  std::string rest = target.substr(colon + 1);
  size_t slash = rest.find('/');
  std::string port = rest.substr(0, slash);
  auto digit = [](unsigned char c) { return std::isdigit(c) != 0; };
  if (port.empty() || port.size() > 5 || !std::all_of(port.begin(), port.end(), digit)) return invalid();
  int port_number = std::stoi(port);
  if (port_number < 1 || port_number > 65535) return invalid();
  if (IsHttpFamily(protocol)) {
    if (slash == std::string::npos || rest.size() - slash > 1024) return invalid();
  } else if (slash != std::string::npos) {
    return invalid();  // TCP and SSL checks only open a connection: a path means a mistake
  }
  return protocol + ":" + rest;
}

// HealthCheck.* as ConfigureHealthCheck takes it: every member required.
Result<Json> ReadHealthCheck(const Params& p) {
  auto target = p.Str("HealthCheck.Target");
  if (!target) return NullError("healthCheck.target");
  AP_ASSIGN_OR_RETURN(auto interval, RequiredIntInRange(p, "HealthCheck.Interval", "healthCheck.interval", 5, 300));
  AP_ASSIGN_OR_RETURN(auto timeout, RequiredIntInRange(p, "HealthCheck.Timeout", "healthCheck.timeout", 2, 60));
  AP_ASSIGN_OR_RETURN(auto unhealthy, RequiredIntInRange(p, "HealthCheck.UnhealthyThreshold", "healthCheck.unhealthyThreshold", 2, 10));
  AP_ASSIGN_OR_RETURN(auto healthy, RequiredIntInRange(p, "HealthCheck.HealthyThreshold", "healthCheck.healthyThreshold", 2, 10));
  AP_ASSIGN_OR_RETURN(auto normalized, ReadHealthCheckTarget(*target));
  if (timeout >= interval) {
    return Status::Validation("HealthCheck Timeout (" + std::to_string(timeout) +
                              ") must be less than the Interval (" + std::to_string(interval) + ")");
  }
  return Json{{"Target", normalized},
              {"Interval", interval},
              {"Timeout", timeout},
              {"UnhealthyThreshold", unhealthy},
              {"HealthyThreshold", healthy}};
}

bool HasPrefix(const Params& p, const std::string& prefix) { return !p.Sub(prefix).empty(); }

Result<bool> RequiredBool(const Params& p, const std::string& name, const std::string& field) {
  AP_ASSIGN_OR_RETURN(auto v, p.Bool(name));
  if (!v) return NullError(field);
  return *v;
}

// LoadBalancerAttributes.* applied over `attrs`. Each structure given must carry its required member; the
// ones not given are left as they are.
Status ApplyAttributes(const Params& p, Json& attrs) {
  const std::string in = "LoadBalancerAttributes.";
  const std::string field = "loadBalancerAttributes.";
  if (HasPrefix(p, in + "CrossZoneLoadBalancing.")) {
    AP_ASSIGN_OR_RETURN(auto enabled, RequiredBool(p, in + "CrossZoneLoadBalancing.Enabled", field + "crossZoneLoadBalancing.enabled"));
    attrs["CrossZoneLoadBalancing"]["Enabled"] = enabled;
  }
  if (HasPrefix(p, in + "ConnectionDraining.")) {
    AP_ASSIGN_OR_RETURN(auto enabled, RequiredBool(p, in + "ConnectionDraining.Enabled", field + "connectionDraining.enabled"));
    AP_ASSIGN_OR_RETURN(auto timeout, IntInRange(p, in + "ConnectionDraining.Timeout", field + "connectionDraining.timeout", 1, 3600));
    attrs["ConnectionDraining"]["Enabled"] = enabled;
    if (timeout) attrs["ConnectionDraining"]["Timeout"] = *timeout;
  }
  if (HasPrefix(p, in + "ConnectionSettings.")) {
    AP_ASSIGN_OR_RETURN(auto idle, RequiredIntInRange(p, in + "ConnectionSettings.IdleTimeout", field + "connectionSettings.idleTimeout",
                                   1, 3600));
    attrs["ConnectionSettings"]["IdleTimeout"] = idle;
  }
  if (HasPrefix(p, in + "AccessLog.")) {
    AP_ASSIGN_OR_RETURN(auto enabled, RequiredBool(p, in + "AccessLog.Enabled", field + "accessLog.enabled"));
    AP_ASSIGN_OR_RETURN(auto interval, p.Int(in + "AccessLog.EmitInterval"));
    if (interval && *interval != 5 && *interval != 60) {
      return Status::Validation("Access log EmitInterval must be 5 or 60 (minutes), not " +
                                std::to_string(*interval));
    }
    if (!enabled) {
      attrs["AccessLog"] = {{"Enabled", false}};
    } else {
      Json log = attrs["AccessLog"];
      log["Enabled"] = true;
      if (auto bucket = p.Str(in + "AccessLog.S3BucketName")) log["S3BucketName"] = *bucket;
      if (auto prefix = p.Str(in + "AccessLog.S3BucketPrefix")) log["S3BucketPrefix"] = *prefix;
      log["EmitInterval"] = interval.value_or(log.value("EmitInterval", 60));
      if (log.value("S3BucketName", "").empty()) {
        return InvalidConfiguration("An S3BucketName is required when access logs are enabled");
      }
      attrs["AccessLog"] = log;
    }
  }
  // AWS's only additional attribute is the HTTP desync mitigation mode. The nodes do not act on it, but clients
  // such as Terraform set it on every load balancer, so it is recorded and reported.
  for (const auto& a : p.StructList(in + "AdditionalAttributes")) {
    auto key = a.find("Key");
    auto value = a.find("Value");
    if (key == a.end() || key->second != kDesyncMitigationModeKey) {
      return Status(400, "LoadBalancerAttributeNotFound", "The specified load balancer attribute does not exist: " +
                                                              (key == a.end() ? "" : key->second));
    }
    static const std::set<std::string> kModes = {"monitor", "defensive", "strictest"};
    if (value == a.end() || !kModes.count(value->second)) {
      return Status::Validation("The value of " + key->second + " must be monitor, defensive or strictest");
    }
    attrs["DesyncMitigationMode"] = value->second;
  }
  return Status::Ok();
}

// Tags.member.N {Key, Value}: keys 1-128 characters, values up to 256, no key twice.
Result<Json> ReadTags(const Params& p) {
  Json tags = Json::array();
  std::set<std::string> keys;
  auto fields = p.StructList("Tags");
  for (size_t i = 0; i < fields.size(); ++i) {
    const std::string field = "tags." + std::to_string(i + 1) + ".member.";
    auto key = fields[i].find("Key");
    if (key == fields[i].end()) return NullError(field + "key");
    if (key->second.empty() || key->second.size() > 128) {
      return ConstraintError(field + "key", key->second,
                             "Member must have length less than or equal to 128 and greater than or equal to 1");
    }
    auto value = fields[i].find("Value");
    std::string v = value == fields[i].end() ? "" : value->second;
    if (v.size() > 256) {
      return ConstraintError(field + "value", v, "Member must have length less than or equal to 256");
    }
    if (!keys.insert(key->second).second) {
      return Status(400, "DuplicateTagKeys", "A tag key was specified more than once: " + key->second);
    }
    tags.push_back({{"Key", key->second}, {"Value", v}});
  }
  return tags;
}

// Sets each tag on the load balancer (a key already there takes the new value). At most 10 tags in all.
Status MergeTags(Json& lb, const Json& tags) {
  Json& existing = lb["Tags"];
  for (const auto& t : tags) {
    auto it = std::find_if(existing.begin(), existing.end(), [&](const Json& e) { return e["Key"] == t["Key"]; });
    if (it == existing.end()) existing.push_back(t);
    else (*it)["Value"] = t["Value"];
  }
  if (existing.size() > kMaxTagsPerLoadBalancer) {
    return Status(400, "TooManyTags", "The quota for the number of tags that can be assigned to a load balancer "
                                      "has been reached: " + lb["LoadBalancerName"].get<std::string>() +
                                      " would have " + std::to_string(existing.size()) + " tags (at most 10)");
  }
  return Status::Ok();
}

// ---- rendering ------------------------------------------------------------------------------------------------

Json InstancesXml(const Json& lb) {
  Json out = Json::array();
  for (const auto& id : lb["Instances"]) out.push_back({{"InstanceId", id}});
  return out;
}

Json LoadBalancerXml(const Json& lb) {
  Json listeners = Json::array();
  for (const auto& l : lb["Listeners"]) {
    listeners.push_back({{"Listener", l}, {"PolicyNames", Json::array()}});
  }
  JsonObject out;
  out.Add("LoadBalancerName", lb["LoadBalancerName"])
      .Add("DNSName", lb["DNSName"])
      .Add("CanonicalHostedZoneName", lb["DNSName"])
      .Add("CanonicalHostedZoneNameID", lb["CanonicalHostedZoneNameID"])
      .Add("ListenerDescriptions", std::move(listeners))
      .Add("Policies", {{"AppCookieStickinessPolicies", Json::array()},
                        {"LBCookieStickinessPolicies", Json::array()},
                        {"OtherPolicies", Json::array()}})
      .Add("BackendServerDescriptions", Json::array())
      .Add("AvailabilityZones", lb["AvailabilityZones"])
      .Add("Subnets", Json::array())
      .Add("Instances", InstancesXml(lb))
      .Add("HealthCheck", lb["HealthCheck"])
      .Add("SourceSecurityGroup", {{"OwnerAlias", "amazon-elb"}, {"GroupName", "amazon-elb-sg"}})
      .Add("SecurityGroups", Json::array())
      .Add("CreatedTime", IsoTimeMillis(lb["CreatedTime"].get<int64_t>()))
      .Add("Scheme", lb["Scheme"]);
  return out.Take();
}

Json AttributesXml(const Json& attrs) {
  // A disabled access log shows only Enabled, as AWS's does.
  const Json& stored_log = attrs["AccessLog"];
  JsonObject log;
  log.Add("Enabled", stored_log["Enabled"]);
  for (const char* key : {"S3BucketName", "EmitInterval", "S3BucketPrefix"}) {
    if (stored_log.contains(key)) log.Add(key, stored_log[key]);
  }
  JsonObject out;
  out.Add("CrossZoneLoadBalancing", attrs["CrossZoneLoadBalancing"])
      .Add("AccessLog", log.Take())
      .Add("ConnectionDraining", attrs["ConnectionDraining"])
      .Add("ConnectionSettings", attrs["ConnectionSettings"])
      .Add("AdditionalAttributes", Json::array({{{"Key", kDesyncMitigationModeKey},
                                                 {"Value", attrs.value("DesyncMitigationMode", "defensive")}}}));
  return out.Take();
}

Json DefaultAttributes() {
  return {{"CrossZoneLoadBalancing", {{"Enabled", false}}},
          {"ConnectionDraining", {{"Enabled", false}, {"Timeout", 300}}},
          {"ConnectionSettings", {{"IdleTimeout", 60}}},
          {"AccessLog", {{"Enabled", false}}}};
}

// Same listeners (in any order), zones (in any order) and scheme: a repeated CreateLoadBalancer.
bool SameConfiguration(const Json& lb, const Json& listeners, const std::vector<std::string>& zones,
                       const std::string& scheme) {
  auto sorted = [](Json list) {
    std::sort(list.begin(), list.end());
    return list;
  };
  return sorted(lb["Listeners"]) == sorted(listeners) && sorted(lb["AvailabilityZones"]) == sorted(Json(zones)) &&
         lb["Scheme"] == scheme;
}

// ---- the service ----------------------------------------------------------------------------------------------

class ElbService {
 public:
  explicit ElbService(RegionContext* ctx) : ctx_(ctx) {}

  Result<Json> CreateLoadBalancer(const Params& p);
  Result<Json> DeleteLoadBalancer(const Params& p);
  Result<Json> DescribeLoadBalancers(const Params& p);
  Result<Json> CreateLoadBalancerListeners(const Params& p);
  Result<Json> DeleteLoadBalancerListeners(const Params& p);
  Result<Json> ConfigureHealthCheck(const Params& p);
  Result<Json> RegisterInstancesWithLoadBalancer(const Params& p);
  Result<Json> DeregisterInstancesFromLoadBalancer(const Params& p);
  Result<Json> DescribeInstanceHealth(const Params& p);
  Result<Json> ModifyLoadBalancerAttributes(const Params& p);
  Result<Json> DescribeLoadBalancerAttributes(const Params& p);
  Result<Json> EnableAvailabilityZonesForLoadBalancer(const Params& p);
  Result<Json> DisableAvailabilityZonesForLoadBalancer(const Params& p);
  Result<Json> AddTags(const Params& p);
  Result<Json> DescribeTags(const Params& p);
  Result<Json> RemoveTags(const Params& p);

 private:
  Result<Json> Load(const std::string& name) const {
    auto lb = elb::FindLoadBalancer(*ctx_, name);
    if (!lb) return LoadBalancerNotFound(name);
    return std::move(*lb);
  }
  // Writes a changed load balancer that its nodes must see (a new ConfigVersion).
  Status SaveForNodes(Json lb) {
    lb["ConfigVersion"] = lb["ConfigVersion"].get<uint64_t>() + 1;
    std::string name = lb["LoadBalancerName"];
    return Save({{kind::kLoadBalancer, name, std::move(lb)}});
  }
  Status Save(const std::vector<StoreWrite>& writes) {
    return ctx_->store->Commit(writes);
  }
  Result<int> FreeAddressIndex() const;
  // Register and Deregister differ only in the shared rule they apply to the listed instances.
  using MembershipChange = Status (*)(const RegionContext&, const std::string&, const std::vector<std::string>&,
                                      std::vector<StoreWrite>&);
  Result<Json> ChangeMembership(const Params& p, MembershipChange change);

  RegionContext* ctx_;
};

// The lowest k whose <block>.200.k neither a load balancer holds nor a node still uses (the node of a deleted
// load balancer may still be shutting down on it).
Result<int> ElbService::FreeAddressIndex() const {
  const std::string prefix = ctx_->catalog->address_block() + ".200.";
  std::set<int> used;
  for (const auto& doc : ctx_->store->List(kind::kLoadBalancer)) used.insert((*doc)["AddressIndex"].get<int>());
  for (const auto& doc : ctx_->store->List(kind::kLoadBalancerNode)) {
    const std::string vip = doc->value("VipAddress", "");
    if (vip.compare(0, prefix.size(), prefix) == 0) used.insert(std::atoi(vip.c_str() + prefix.size()));
  }
  for (int k = 1; k <= kMaxAddressIndex; ++k) {
    if (!used.count(k)) return k;
  }
  return Status(400, "TooManyLoadBalancers", "No load balancer address is free in " + prefix + "0/24");
}

Result<Json> ElbService::CreateLoadBalancer(const Params& p) {
  AP_ASSIGN_OR_RETURN(auto name, RequiredLoadBalancerName(p));
  if (!ValidLoadBalancerName(name)) {
    return Status::Validation("LoadBalancerName '" + name + "' is not valid: it must have 1 to 32 characters, only "
                              "alphanumeric characters and hyphens, and must not begin or end with a hyphen");
  }
  AP_ASSIGN_OR_RETURN(auto listeners, ReadListeners(p, name));
  if (!p.List("Subnets").empty()) {
    return Status::Validation("Subnets (VPC) are not supported; use AvailabilityZones");
  }
  if (!p.List("SecurityGroups").empty()) {
    return Status::Validation("SecurityGroups apply only to load balancers in a VPC, which this region does not "
                              "support");
  }
  AP_ASSIGN_OR_RETURN(auto zones, ReadZones(p, *ctx_->catalog));
  if (zones.empty()) return Status::Validation("Either AvailabilityZones or SubnetIds must be specified");
  const std::string scheme = p.Str("Scheme").value_or("internet-facing");
  if (scheme != "internet-facing" && scheme != "internal") {
    return Status(400, "InvalidScheme", "Invalid scheme '" + scheme + "': use internet-facing or internal");
  }
  AP_ASSIGN_OR_RETURN(auto tags, ReadTags(p));

  if (auto existing = elb::FindLoadBalancer(*ctx_, name)) {
    if (!SameConfiguration(*existing, listeners, zones, scheme)) {
      return Status(400, "DuplicateLoadBalancerName", "Load Balancer named '" + name +
                                                          "' already exists and it is configured with different "
                                                          "parameters.");
    }
    return Json{{"DNSName", (*existing)["DNSName"]}};
  }
  if (ctx_->store->Count(kind::kLoadBalancer) >= static_cast<size_t>(elb::kMaxLoadBalancers)) {
    return Status(400, "TooManyLoadBalancers", "Exceeded quota of account " + std::string(kAccountId) + ": at most " +
                                                   std::to_string(elb::kMaxLoadBalancers) + " load balancers");
  }
  AP_ASSIGN_OR_RETURN(auto index, FreeAddressIndex());
  const std::string address = ctx_->catalog->address_block() + ".200." + std::to_string(index);
  const int first_port = listeners[0]["InstancePort"];
  Json lb = {
      {"LoadBalancerName", name},
      {"DNSName", address},
      {"CanonicalHostedZoneNameID", ClassicLbHostedZoneId(ctx_->catalog->region())},
      {"CreatedTime", ctx_->clock->NowMillis()},
      {"Scheme", scheme},
      {"AvailabilityZones", zones},
      {"Listeners", listeners},
      {"HealthCheck",
       {{"Target", "TCP:" + std::to_string(first_port)},
        {"Interval", 30},
        {"Timeout", 5},
        {"UnhealthyThreshold", 2},
        {"HealthyThreshold", 10}}},
      {"Instances", Json::array()},
      {"Deregistering", Json::object()},
      {"Attributes", DefaultAttributes()},
      {"Tags", Json::array()},
      {"Address", address},
      {"AddressIndex", index},
      {"ConfigVersion", 1},
  };
  AP_RETURN_IF_ERROR(MergeTags(lb, tags));
  AP_RETURN_IF_ERROR(Save({{kind::kLoadBalancer, name, lb}}));
  return Json{{"DNSName", address}};
}

Result<Json> ElbService::DeleteLoadBalancer(const Params& p) {
  AP_ASSIGN_OR_RETURN(auto name, RequiredLoadBalancerName(p));
  // Deleting what is not there succeeds, as in AWS; the controller stops the nodes of a deleted load balancer.
  if (elb::FindLoadBalancer(*ctx_, name)) {
    AP_RETURN_IF_ERROR(Save({{kind::kLoadBalancer, name, std::nullopt}}));
  }
  return Json::object();
}

Result<Json> ElbService::DescribeLoadBalancers(const Params& p) {
  AP_ASSIGN_OR_RETURN(auto page_size, IntInRange(p, "PageSize", "pageSize", 1, kMaxPageSize));
  size_t offset = 0;
  if (auto marker = p.Str("Marker")) {
    // Only a NextMarker this region handed out: garbage or a hand-made offset is refused, not an empty page.
    std::optional<uint64_t> decoded = DecodePageToken("LoadBalancerDescriptions", *marker);
    if (!decoded) return Status::Validation("Invalid Marker '" + *marker + "'");
    offset = static_cast<size_t>(*decoded);
  }
  auto names = p.List("LoadBalancerNames");
  std::vector<Doc> found;
  if (names.empty()) {
    found = ctx_->store->List(kind::kLoadBalancer);
  } else {
    std::set<std::string> seen;
    for (const auto& n : names) {
      if (!seen.insert(n).second) continue;
      auto lb = elb::FindLoadBalancer(*ctx_, n);
      if (!lb) return LoadBalancerNotFound(n);
      found.push_back(std::make_shared<const Json>(std::move(*lb)));
    }
  }
  const size_t limit = static_cast<size_t>(page_size.value_or(kMaxPageSize));
  Json descriptions = Json::array();
  for (size_t i = offset; i < found.size() && descriptions.size() < limit; ++i) {
    descriptions.push_back(LoadBalancerXml(*found[i]));
  }
  Json result = {{"LoadBalancerDescriptions", std::move(descriptions)}};
  if (offset + limit < found.size()) {
    result["NextMarker"] = EncodePageToken("LoadBalancerDescriptions", offset + limit);
  }
  return result;
}

Result<Json> ElbService::CreateLoadBalancerListeners(const Params& p) {
  AP_ASSIGN_OR_RETURN(auto name, RequiredLoadBalancerName(p));
  AP_ASSIGN_OR_RETURN(auto listeners, ReadListeners(p, name));
  AP_ASSIGN_OR_RETURN(auto lb, Load(name));
  Json merged = lb["Listeners"];
  AP_RETURN_IF_ERROR(MergeListeners(name, merged, listeners));
  if (merged != lb["Listeners"]) {
    lb["Listeners"] = std::move(merged);
    AP_RETURN_IF_ERROR(SaveForNodes(std::move(lb)));
  }
  return Json::object();
}

Result<Json> ElbService::DeleteLoadBalancerListeners(const Params& p) {
  AP_ASSIGN_OR_RETURN(auto name, RequiredLoadBalancerName(p));
  auto port_strings = p.List("LoadBalancerPorts");
  if (port_strings.empty()) return NullError("loadBalancerPorts");
  std::vector<Json> ports;
  for (const auto& s : port_strings) {
    auto port = Params({{"Port", s}}, WireProtocol::kQuery).Int("Port");
    if (!port.ok()) return Status::Validation("Invalid value for parameter LoadBalancerPorts: '" + s + "'");
    ports.push_back(**port);
  }
  AP_ASSIGN_OR_RETURN(auto lb, Load(name));
  Json kept = Json::array();
  for (const auto& l : lb["Listeners"]) {
    if (std::find(ports.begin(), ports.end(), l["LoadBalancerPort"]) == ports.end()) kept.push_back(l);
  }
  // Ports with no listener are ignored, as AWS does.
  if (kept.size() != lb["Listeners"].size()) {
    lb["Listeners"] = std::move(kept);
    AP_RETURN_IF_ERROR(SaveForNodes(std::move(lb)));
  }
  return Json::object();
}

Result<Json> ElbService::ConfigureHealthCheck(const Params& p) {
  AP_ASSIGN_OR_RETURN(auto name, RequiredLoadBalancerName(p));
  AP_ASSIGN_OR_RETURN(auto check, ReadHealthCheck(p));
  AP_ASSIGN_OR_RETURN(auto lb, Load(name));
  if (lb["HealthCheck"] != check) {
    lb["HealthCheck"] = check;
    AP_RETURN_IF_ERROR(SaveForNodes(std::move(lb)));
  }
  return Json{{"HealthCheck", check}};
}

Result<Json> ElbService::ChangeMembership(const Params& p, MembershipChange change) {
  AP_ASSIGN_OR_RETURN(auto name, RequiredLoadBalancerName(p));
  auto ids = InstanceIds(p);
  if (ids.empty()) return NullError("instances");
  std::vector<StoreWrite> writes;
  AP_RETURN_IF_ERROR(change(*ctx_, name, ids, writes));
  if (!writes.empty()) AP_RETURN_IF_ERROR(Save(writes));
  AP_ASSIGN_OR_RETURN(auto lb, Load(name));
  return Json{{"Instances", InstancesXml(lb)}};
}

Result<Json> ElbService::RegisterInstancesWithLoadBalancer(const Params& p) {
  return ChangeMembership(p, &elb::RegisterInstances);
}

Result<Json> ElbService::DeregisterInstancesFromLoadBalancer(const Params& p) {
  return ChangeMembership(p, &elb::DeregisterInstances);
}

Result<Json> ElbService::DescribeInstanceHealth(const Params& p) {
  AP_ASSIGN_OR_RETURN(auto name, RequiredLoadBalancerName(p));
  auto ids = InstanceIds(p);
  AP_ASSIGN_OR_RETURN(auto lb, Load(name));
  if (ids.empty()) {
    // Everything the load balancer still has: registered, then draining.
    for (const auto& id : lb["Instances"]) ids.push_back(id.get<std::string>());
    for (const auto& [id, _] : lb["Deregistering"].items()) ids.push_back(id);
  }
  Json states = Json::array();
  for (const auto& id : ids) {
    if (!elb::IsAttached(lb, id) && !ctx_->store->Get(kind::kInstance, id)) {
      return Status(400, "InvalidInstance", "Could not find EC2 instance " + id + ".");
    }
    elb::InstanceHealth h = elb::DescribeInstanceHealth(*ctx_, lb, id);
    JsonObject state;
    state.Add("InstanceId", h.instance_id)
        .Add("State", h.state)
        .Add("ReasonCode", h.reason_code)
        .Add("Description", h.description);
    states.push_back(state.Take());
  }
  return Json{{"InstanceStates", std::move(states)}};
}

Result<Json> ElbService::ModifyLoadBalancerAttributes(const Params& p) {
  AP_ASSIGN_OR_RETURN(auto name, RequiredLoadBalancerName(p));
  AP_ASSIGN_OR_RETURN(auto lb, Load(name));
  Json attrs = lb["Attributes"];
  AP_RETURN_IF_ERROR(ApplyAttributes(p, attrs));
  if (attrs != lb["Attributes"]) {
    lb["Attributes"] = attrs;
    AP_RETURN_IF_ERROR(SaveForNodes(std::move(lb)));
  }
  return Json{{"LoadBalancerName", name}, {"LoadBalancerAttributes", AttributesXml(attrs)}};
}

Result<Json> ElbService::DescribeLoadBalancerAttributes(const Params& p) {
  AP_ASSIGN_OR_RETURN(auto name, RequiredLoadBalancerName(p));
  AP_ASSIGN_OR_RETURN(auto lb, Load(name));
  return Json{{"LoadBalancerAttributes", AttributesXml(lb["Attributes"])}};
}

Result<Json> ElbService::EnableAvailabilityZonesForLoadBalancer(const Params& p) {
  AP_ASSIGN_OR_RETURN(auto name, RequiredLoadBalancerName(p));
  AP_ASSIGN_OR_RETURN(auto zones, ReadZones(p, *ctx_->catalog));
  if (zones.empty()) return NullError("availabilityZones");
  AP_ASSIGN_OR_RETURN(auto lb, Load(name));
  Json enabled = lb["AvailabilityZones"];
  for (const auto& z : zones) {
    if (std::find(enabled.begin(), enabled.end(), z) == enabled.end()) enabled.push_back(z);
  }
  if (enabled != lb["AvailabilityZones"]) {
    lb["AvailabilityZones"] = enabled;
    AP_RETURN_IF_ERROR(SaveForNodes(std::move(lb)));
  }
  return Json{{"AvailabilityZones", enabled}};
}

Result<Json> ElbService::DisableAvailabilityZonesForLoadBalancer(const Params& p) {
  AP_ASSIGN_OR_RETURN(auto name, RequiredLoadBalancerName(p));
  AP_ASSIGN_OR_RETURN(auto zones, ReadZones(p, *ctx_->catalog));
  if (zones.empty()) return NullError("availabilityZones");
  AP_ASSIGN_OR_RETURN(auto lb, Load(name));
  Json remaining = Json::array();
  for (const auto& z : lb["AvailabilityZones"]) {
    if (std::find(zones.begin(), zones.end(), z) == zones.end()) remaining.push_back(z);
  }
  if (remaining.empty()) {
    return InvalidConfiguration("Cannot disable all Availability Zones of load balancer " + name +
                                ": at least one must remain enabled");
  }
  if (remaining != lb["AvailabilityZones"]) {
    lb["AvailabilityZones"] = remaining;
    AP_RETURN_IF_ERROR(SaveForNodes(std::move(lb)));
  }
  return Json{{"AvailabilityZones", remaining}};
}

Result<Json> ElbService::AddTags(const Params& p) {
  auto names = p.List("LoadBalancerNames");
  if (names.empty()) return NullError("loadBalancerNames");
  AP_ASSIGN_OR_RETURN(auto tags, ReadTags(p));
  if (tags.empty()) return NullError("tags");
  std::vector<StoreWrite> writes;
  for (const auto& name : names) {
    AP_ASSIGN_OR_RETURN(auto lb, Load(name));
    AP_RETURN_IF_ERROR(MergeTags(lb, tags));
    writes.push_back({kind::kLoadBalancer, name, std::move(lb)});
  }
  AP_RETURN_IF_ERROR(Save(writes));
  return Json::object();
}

Result<Json> ElbService::RemoveTags(const Params& p) {
  auto names = p.List("LoadBalancerNames");
  if (names.empty()) return NullError("loadBalancerNames");
  std::vector<std::string> keys;
  for (const auto& t : p.StructList("Tags")) {
    auto key = t.find("Key");
    if (key != t.end()) keys.push_back(key->second);
  }
  if (keys.empty()) return NullError("tags");
  std::vector<StoreWrite> writes;
  for (const auto& name : names) {
    AP_ASSIGN_OR_RETURN(auto lb, Load(name));
    Json kept = Json::array();
    for (const auto& t : lb["Tags"]) {
      if (std::find(keys.begin(), keys.end(), t["Key"]) == keys.end()) kept.push_back(t);
    }
    lb["Tags"] = std::move(kept);
    writes.push_back({kind::kLoadBalancer, name, std::move(lb)});
  }
  AP_RETURN_IF_ERROR(Save(writes));
  return Json::object();
}

Result<Json> ElbService::DescribeTags(const Params& p) {
  auto names = p.List("LoadBalancerNames");
  if (names.empty()) return NullError("loadBalancerNames");
  if (names.size() > kMaxDescribeTagsNames) {
    return ConstraintError("loadBalancerNames", std::to_string(names.size()) + " names",
                           "Member must have length less than or equal to 20");
  }
  Json descriptions = Json::array();
  for (const auto& name : names) {
    AP_ASSIGN_OR_RETURN(auto lb, Load(name));
    descriptions.push_back({{"LoadBalancerName", name}, {"Tags", lb["Tags"]}});
  }
  return Json{{"TagDescriptions", std::move(descriptions)}};
}

}  // namespace

const char* ClassicLbHostedZoneId(const std::string& region) {
  static const std::map<std::string, const char*> kZones = {
      {"us-east-1", "Z35SXDOTRQ7X7K"},      {"us-east-2", "Z3AADJGX6KTTL2"},  {"us-west-1", "Z368ELLRRE2KJ0"},
      {"us-west-2", "Z1H1FL5HABSF5"},       {"ca-central-1", "ZQSVJUPU6J1EY"}, {"eu-west-1", "Z32O12XQLNTSW2"},
      {"eu-west-2", "ZHURV8PSTC4K8"},       {"eu-west-3", "Z3Q77PNBQS71R4"},  {"eu-central-1", "Z215JYRZR1TBD5"},
      {"eu-north-1", "Z23TAZ6LKFMNIO"},     {"ap-northeast-1", "Z14GRHDCWA56QT"},
      {"ap-northeast-2", "ZWKZPGTI48KDX"},  {"ap-northeast-3", "Z5LXEXXYW11ES"},
      {"ap-southeast-1", "Z1LMS91P8CMLE5"}, {"ap-southeast-2", "Z1GM3OXH4ZPM65"},
      {"ap-south-1", "ZP97RAFLXTNZK"},      {"sa-east-1", "Z2P70J7HTTTPLU"},
  };
  auto it = kZones.find(region);
  return it == kZones.end() ? "Z1H1FL5HABSF5" : it->second;
}

ApiService ElbApi(RegionContext* ctx) {
  auto svc = std::make_shared<ElbService>(ctx);
  using Method = Result<Json> (ElbService::*)(const Params&);
  auto op = [svc](const char* name, Access access, Method m, std::vector<ListLimit> limits = {}) {
    return Operation{name, access, [svc, m](const Params& p) { return ((*svc).*m)(p); }, std::move(limits)};
  };
  // Per-call list limits (checked before any lock): ELB's 10 tags (refused as TooManyTags, as a load balancer
  // with more would be), DescribeTags' 20 names, sane bounds elsewhere.
  const ListLimit kTags{"Tags", kMaxTagsPerLoadBalancer, "member", [](size_t n) {
                          return Status(400, "TooManyTags",
                                        "The quota for the number of tags that can be assigned to a load balancer "
                                        "has been reached: the call gives " + std::to_string(n) +
                                            " tags (at most 10)");
                        }};
  const ListLimit kInstances{"Instances", 1000};
  const ListLimit kZones{"AvailabilityZones", 20};
  const ListLimit kListeners{"Listeners", 100};
  ApiService api;
  api.info = {"elasticloadbalancing", "2012-06-01", "http://elasticloadbalancing.amazonaws.com/doc/2012-06-01/",
              WireProtocol::kQuery};
  api.operations = {
      op("CreateLoadBalancer", Access::kWrite, &ElbService::CreateLoadBalancer,
         {kTags, kZones, kListeners, {"Subnets", 20}, {"SecurityGroups", 20}}),
      op("DeleteLoadBalancer", Access::kWrite, &ElbService::DeleteLoadBalancer),
      op("DescribeLoadBalancers", Access::kRead, &ElbService::DescribeLoadBalancers, {{"LoadBalancerNames", 400}}),
      op("CreateLoadBalancerListeners", Access::kWrite, &ElbService::CreateLoadBalancerListeners, {kListeners}),
      op("DeleteLoadBalancerListeners", Access::kWrite, &ElbService::DeleteLoadBalancerListeners,
         {{"LoadBalancerPorts", 100}}),
      op("ConfigureHealthCheck", Access::kWrite, &ElbService::ConfigureHealthCheck),
      op("RegisterInstancesWithLoadBalancer", Access::kWrite, &ElbService::RegisterInstancesWithLoadBalancer,
         {kInstances}),
      op("DeregisterInstancesFromLoadBalancer", Access::kWrite, &ElbService::DeregisterInstancesFromLoadBalancer,
         {kInstances}),
      op("DescribeInstanceHealth", Access::kRead, &ElbService::DescribeInstanceHealth, {kInstances}),
      op("ModifyLoadBalancerAttributes", Access::kWrite, &ElbService::ModifyLoadBalancerAttributes,
         {{"LoadBalancerAttributes.AdditionalAttributes", 10}}),
      op("DescribeLoadBalancerAttributes", Access::kRead, &ElbService::DescribeLoadBalancerAttributes),
      op("EnableAvailabilityZonesForLoadBalancer", Access::kWrite, &ElbService::EnableAvailabilityZonesForLoadBalancer,
         {kZones}),
      op("DisableAvailabilityZonesForLoadBalancer", Access::kWrite, &ElbService::DisableAvailabilityZonesForLoadBalancer,
         {kZones}),
      op("AddTags", Access::kWrite, &ElbService::AddTags, {kTags, {"LoadBalancerNames", kMaxDescribeTagsNames}}),
      op("DescribeTags", Access::kRead, &ElbService::DescribeTags, {{"LoadBalancerNames", kMaxDescribeTagsNames}}),
      op("RemoveTags", Access::kWrite, &ElbService::RemoveTags, {{"Tags", 50}, {"LoadBalancerNames", kMaxDescribeTagsNames}}),
  };
  api.write_lock = ctx->mu;
  api.after_write = [ctx] {
    if (ctx->wake) ctx->wake();
  };
  return api;
}

}  // namespace autopipe

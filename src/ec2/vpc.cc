#include "ec2/vpc.h"

#include <arpa/inet.h>
#include <openssl/sha.h>

#include <algorithm>
#include <map>
#include <set>

#include "common/time_util.h"
#include "ec2/ec2_common.h"
#include "ec2/instances.h"
#include "region/module.h"

namespace autopipe::ec2 {
namespace {

// A stable 17-hex-digit id (EC2's long id form) derived from `seed`: the same region always shows the same VPC.
std::string StableId(const std::string& prefix, const std::string& seed) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(seed.data()), seed.size(), digest);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out = prefix;
  for (int i = 0; out.size() < prefix.size() + 17; ++i) {
    out += kHex[digest[i] >> 4];
    if (out.size() < prefix.size() + 17) out += kHex[digest[i] & 15];
  }
  return out;
}

constexpr int kSubnetAddresses = 1 << 14;  // a /18
constexpr int kReservedPerSubnet = 5;      // AWS keeps the first four and the last address of every subnet
constexpr size_t kMaxNameLength = 255;
constexpr size_t kMaxRulesPerGroup = 60;    // AWS's default quota of inbound (and of outbound) rules per group
constexpr size_t kMaxGroupsPerRegion = 2500;  // AWS's default quota of security groups per region

// ---- security group rules -------------------------------------------------------------------------------------

// One rule as stored: a protocol and port range from one source (or to one destination).
struct Rule {
  std::string protocol;  // "-1", "tcp", "udp", "icmp", or another protocol number
  int from = -1, to = -1;
  std::string cidr, cidr6, group;  // exactly one is set
  std::string description;

  bool SameTarget(const Rule& o) const {
    return protocol == o.protocol && from == o.from && to == o.to && cidr == o.cidr && cidr6 == o.cidr6 &&
           group == o.group;
  }
  Json ToJson() const {
    return {{"Protocol", protocol}, {"From", from}, {"To", to}, {"Cidr", cidr}, {"Cidr6", cidr6},
            {"Group", group}, {"Description", description}};
  }
  static Rule FromJson(const Json& j) {
    Rule r;
    r.protocol = j["Protocol"];
    r.from = j["From"];
    r.to = j["To"];
    r.cidr = j["Cidr"];
    r.cidr6 = j["Cidr6"];
    r.group = j["Group"];
    r.description = j["Description"];
    return r;
  }
  // AWS's wording of a rule in InvalidPermission errors.
  std::string Describe() const {
    std::string peer = !cidr.empty() ? cidr : !cidr6.empty() ? cidr6 : group;
    std::string proto = protocol == "-1" ? "ALL" : protocol;
    for (auto& c : proto) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    std::string out = "peer: " + peer + ", " + proto;
    if (protocol != "-1") out += ", from port: " + std::to_string(from) + ", to port: " + std::to_string(to);
    return out + ", ALLOW";
  }
};

bool ValidCidr4(const std::string& s) {
  auto slash = s.find('/');
  if (slash == std::string::npos) return false;
  in_addr a{};
  if (inet_pton(AF_INET, s.substr(0, slash).c_str(), &a) != 1) return false;
  const std::string len = s.substr(slash + 1);
  if (len.empty() || len.size() > 2 || !std::all_of(len.begin(), len.end(), ::isdigit)) return false;
  return std::stoi(len) <= 32;
}

bool ValidCidr6(const std::string& s) {
  auto slash = s.find('/');
  if (slash == std::string::npos) return false;
  in6_addr a{};
  if (inet_pton(AF_INET6, s.substr(0, slash).c_str(), &a) != 1) return false;
  const std::string len = s.substr(slash + 1);
  if (len.empty() || len.size() > 3 || !std::all_of(len.begin(), len.end(), ::isdigit)) return false;
  return std::stoi(len) <= 128;
}

Result<std::string> NormalizeProtocol(const std::string& p) {
  std::string l = p;
  for (auto& c : l) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (l == "-1" || l == "all") return std::string("-1");
  if (l == "tcp" || l == "6") return std::string("tcp");
  if (l == "udp" || l == "17") return std::string("udp");
  if (l == "icmp" || l == "1") return std::string("icmp");
  if (l == "icmpv6" || l == "58") return std::string("icmpv6");
  if (!l.empty() && l.size() <= 3 && std::all_of(l.begin(), l.end(), ::isdigit) && std::stoi(l) <= 255) return l;
  return Ec2Error("InvalidParameterValue",
                  "Invalid value '" + p + "' for IP protocol. Unknown protocol.");
}

Result<int> PortParam(const FormParams& f, const std::string& name, bool required) {
  auto it = f.find(name);
  if (it == f.end() || it->second.empty()) {
    if (required)
      return Ec2Error("InvalidParameterValue", "Invalid value 'null' for " + name + ". Required for tcp and udp.");
    return -1;
  }
  const std::string& v = it->second;
  const bool digits = !v.empty() && v.size() <= 6 &&
                      std::all_of(v.begin() + (v[0] == '-' ? 1 : 0), v.end(), ::isdigit) && v != "-";
  if (!digits) return Ec2Error("InvalidParameterValue", "Invalid value '" + v + "' for " + name + ".");
  int n = std::stoi(v);
  if (n < -1 || n > 65535) return Ec2Error("InvalidParameterValue", "Invalid value '" + v + "' for " + name + ".");
  return n;
}

// The rules of IpPermissions.N (and of the older flat form: IpProtocol, FromPort, ToPort, CidrIp).
Result<std::vector<Rule>> ReadRules(RegionContext* ctx, const Params& p) {
  std::vector<FormParams> perms = p.StructList("IpPermissions");
  FormParams flat;
  for (const char* k : {"IpProtocol", "FromPort", "ToPort", "CidrIp", "SourceSecurityGroupName"}) {
    if (auto v = p.Str(k)) flat[k] = *v;
  }
  if (!flat.empty()) {
    if (flat.count("CidrIp")) flat["IpRanges.1.CidrIp"] = flat["CidrIp"];
    perms.push_back(flat);
  }
  if (perms.empty())
    return Status::MissingParameter("The request must contain the parameter ipPermissions");
  std::vector<Rule> out;
  for (const auto& perm : perms) {
    auto proto_it = perm.find("IpProtocol");
    if (proto_it == perm.end())
      return Status::MissingParameter("The request must contain the parameter ipProtocol");
    AP_ASSIGN_OR_RETURN(std::string protocol, NormalizeProtocol(proto_it->second));
    Rule base;
    base.protocol = protocol;
    if (protocol != "-1") {
      const bool ports = protocol == "tcp" || protocol == "udp";
      AP_ASSIGN_OR_RETURN(base.from, PortParam(perm, "FromPort", ports));
      AP_ASSIGN_OR_RETURN(base.to, PortParam(perm, "ToPort", ports));
      if (ports && (base.from < 0 || base.to < 0 || base.from > base.to))
        return Ec2Error("InvalidParameterValue", "Invalid TCP/UDP port range: " + std::to_string(base.from) +
                                                     " to " + std::to_string(base.to) + ".");
    }
    Params sub(perm, WireProtocol::kEc2);
    size_t sources = 0;
    for (const auto& r : sub.StructList("IpRanges")) {
      Rule rule = base;
      rule.cidr = r.count("CidrIp") ? r.at("CidrIp") : "";
      if (!ValidCidr4(rule.cidr))
        return Ec2Error("InvalidParameterValue",
                        "Value (" + rule.cidr + ") for parameter cidrIp is invalid. This is not a valid CIDR block.");
      if (r.count("Description")) rule.description = r.at("Description");
      out.push_back(rule);
      ++sources;
    }
    for (const auto& r : sub.StructList("Ipv6Ranges")) {
      Rule rule = base;
      rule.cidr6 = r.count("CidrIpv6") ? r.at("CidrIpv6") : "";
      if (!ValidCidr6(rule.cidr6))
        return Ec2Error("InvalidParameterValue", "Value (" + rule.cidr6 +
                                                     ") for parameter cidrIpv6 is invalid. This is not a valid "
                                                     "IPv6 CIDR block.");
      if (r.count("Description")) rule.description = r.at("Description");
      out.push_back(rule);
      ++sources;
    }
    std::vector<FormParams> pairs = sub.StructList("Groups");
    for (auto& g : sub.StructList("UserIdGroupPairs")) pairs.push_back(g);
    if (perm.count("SourceSecurityGroupName")) pairs.push_back({{"GroupName", perm.at("SourceSecurityGroupName")}});
    for (const auto& g : pairs) {
      Rule rule = base;
      std::string id = g.count("GroupId") ? g.at("GroupId") : "";
      if (id.empty() && g.count("GroupName")) {
        for (const auto& doc : ctx->store->List(kind::kSecurityGroup))
          if ((*doc)["GroupName"] == g.at("GroupName")) id = (*doc)["GroupId"];
        if (id.empty() && g.at("GroupName") == "default") id = DefaultSecurityGroupId(*ctx->catalog);
        if (id.empty())
          return Ec2Error("InvalidGroup.NotFound",
                          "The security group '" + g.at("GroupName") + "' does not exist in default VPC '" +
                              DefaultVpcId(*ctx->catalog) + "'");
      }
      if (id != DefaultSecurityGroupId(*ctx->catalog) && !ctx->store->Get(kind::kSecurityGroup, id))
        return Ec2Error("InvalidGroup.NotFound", "The security group '" + id + "' does not exist");
      rule.group = id;
      if (g.count("Description")) rule.description = g.at("Description");
      out.push_back(rule);
      ++sources;
    }
    if (sub.StructList("PrefixListIds").size() > 0)
      return Ec2Error("InvalidParameterValue", "Prefix lists are not offered by this region.");
    if (sources == 0)
      return Ec2Error("InvalidParameterValue",
                      "The request must contain a source or destination: IpRanges, Ipv6Ranges or UserIdGroupPairs.");
  }
  for (const auto& r : out) {
    if (r.description.size() > kMaxNameLength)
      return Ec2Error("InvalidParameterValue", "Rule description is longer than 255 characters.");
  }
  return out;
}

// ---- security group documents ---------------------------------------------------------------------------------

Json AllTrafficEgress() {
  Rule all;
  all.protocol = "-1";
  all.cidr = "0.0.0.0/0";
  return Json::array({all.ToJson()});
}

Json DefaultGroupDoc(const Catalog& catalog) {
  Rule self;
  self.protocol = "-1";
  self.group = DefaultSecurityGroupId(catalog);
  return {{"GroupId", DefaultSecurityGroupId(catalog)},
          {"GroupName", "default"},
          {"Description", "default VPC security group"},
          {"VpcId", DefaultVpcId(catalog)},
          {"Ingress", Json::array({self.ToJson()})},
          {"Egress", AllTrafficEgress()},
          {"Tags", Json::object()}};
}

// The group with this id (the default group whether or not it was stored yet).
std::optional<Json> FindGroup(const RegionContext& ctx, const std::string& id) {
  if (auto doc = ctx.store->Get(kind::kSecurityGroup, id)) return *doc;
  if (id == DefaultSecurityGroupId(*ctx.catalog)) return DefaultGroupDoc(*ctx.catalog);
  return std::nullopt;
}

std::vector<Json> AllGroups(const RegionContext& ctx) {
  std::vector<Json> out;
  bool default_stored = false;
  for (const auto& doc : ctx.store->List(kind::kSecurityGroup)) {
    default_stored |= (*doc)["GroupId"] == DefaultSecurityGroupId(*ctx.catalog);
    out.push_back(*doc);
  }
  if (!default_stored) out.insert(out.begin(), DefaultGroupDoc(*ctx.catalog));
  return out;
}

Status GroupIdShape(const std::string& id) {
  const bool ok = id.rfind("sg-", 0) == 0 && id.size() > 3 && id.size() <= 20 &&
                  std::all_of(id.begin() + 3, id.end(), [](char c) { return std::isxdigit(c) && !std::isupper(c); });
  if (ok) return Status::Ok();
  return Ec2Error("InvalidGroupId.Malformed", "Invalid id: \"" + id + "\" (expecting \"sg-...\")");
}

// The group a write names by GroupId or GroupName.
Result<Json> TargetGroup(RegionContext* ctx, const Params& p) {
  auto id = p.Str("GroupId");
  auto name = p.Str("GroupName");
  if (id) {
    AP_RETURN_IF_ERROR(GroupIdShape(*id));
    auto g = FindGroup(*ctx, *id);
    if (!g) return Ec2Error("InvalidGroup.NotFound", "The security group '" + *id + "' does not exist");
    return *g;
  }
  if (name) {
    for (const auto& g : AllGroups(*ctx))
      if (g["GroupName"] == *name) return g;
    return Ec2Error("InvalidGroup.NotFound", "The security group '" + *name + "' does not exist in default VPC '" +
                                                 DefaultVpcId(*ctx->catalog) + "'");
  }
  return Status::MissingParameter("The request must contain the parameter groupName or groupId");
}

Json RuleSetXml(const Json& rules) {
  // EC2 groups rules by protocol and port range; each group lists its sources.
  std::vector<std::tuple<std::string, int, int>> order;
  std::map<std::tuple<std::string, int, int>, std::vector<Rule>> by;
  for (const auto& j : rules) {
    Rule r = Rule::FromJson(j);
    auto key = std::make_tuple(r.protocol, r.from, r.to);
    if (!by.count(key)) order.push_back(key);
    by[key].push_back(r);
  }
  Json out = Json::array();
  for (const auto& key : order) {
    const auto& [protocol, from, to] = key;
    JsonObject perm;
    perm.Add("ipProtocol", protocol);
    if (protocol != "-1") perm.Add("fromPort", from).Add("toPort", to);
    Json groups = Json::array(), v4 = Json::array(), v6 = Json::array();
    for (const auto& r : by[key]) {
      auto with_description = [&r](JsonObject o) {
        if (!r.description.empty()) o.Add("description", r.description);
        return o.Take();
      };
      if (!r.cidr.empty()) v4.push_back(with_description(JsonObject().Add("cidrIp", r.cidr)));
      if (!r.cidr6.empty()) v6.push_back(with_description(JsonObject().Add("cidrIpv6", r.cidr6)));
      if (!r.group.empty())
        groups.push_back(with_description(JsonObject().Add("userId", kAccountId).Add("groupId", r.group)));
    }
    perm.Add("groups", std::move(groups))
        .Add("ipRanges", std::move(v4))
        .Add("ipv6Ranges", std::move(v6))
        .Add("prefixListIds", Json::array());
    out.push_back(perm.Take());
  }
  return out;
}

Json GroupXml(const RegionContext& ctx, const Json& g) {
  JsonObject out;
  out.Add("ownerId", kAccountId)
      .Add("groupId", g["GroupId"])
      .Add("groupName", g["GroupName"])
      .Add("groupDescription", g["Description"])
      .Add("vpcId", g["VpcId"])
      .Add("securityGroupArn", ctx.Arn("ec2", "security-group/" + g["GroupId"].get<std::string>()))
      .Add("ipPermissions", RuleSetXml(g["Ingress"]))
      .Add("ipPermissionsEgress", RuleSetXml(g["Egress"]));
  if (!g["Tags"].empty()) out.Add("tagSet", TagSet(g["Tags"]));
  return out.Take();
}

Result<Json> ReadTagSpecifications(const Params& p, const std::string& resource_type) {
  Json tags = Json::object();
  for (const auto& spec : p.StructList("TagSpecification")) {
    auto type = spec.find("ResourceType");
    if (type == spec.end() || type->second != resource_type)
      return Ec2Error("InvalidParameterValue",
                      "'" + (type == spec.end() ? std::string() : type->second) +
                          "' is not a valid taggable resource type for this operation.");
    Params sub(spec, WireProtocol::kEc2);
    for (const auto& t : sub.StructList("Tag")) {
      std::string key = t.count("Key") ? t.at("Key") : "";
      if (key.empty() || key.size() > 128 || key.rfind("aws:", 0) == 0)
        return Ec2Error("InvalidParameterValue", "Tag keys must be 1 to 128 characters and must not start with aws:");
      std::string value = t.count("Value") ? t.at("Value") : "";
      if (value.size() > 256) return Ec2Error("InvalidParameterValue", "Tag values must be at most 256 characters");
      tags[key] = value;
    }
  }
  if (tags.size() > 50) return Ec2Error("TagLimitExceeded", "The maximum number of tags per resource is 50.");
  return tags;
}

// ---- operations ---------------------------------------------------------------------------------------------------

Result<Json> DescribeVpcs(RegionContext* ctx, const Params& p) {
  const Catalog& c = *ctx->catalog;
  for (const auto& id : p.List("VpcId")) {
    if (id != DefaultVpcId(c)) return Ec2Error("InvalidVpcID.NotFound", "The vpc ID '" + id + "' does not exist");
  }
  bool keep = true;
  for (const auto& f : ReadFilters(p)) {
    if (f.name == "vpc-id") keep &= AnyMatch(f.values, DefaultVpcId(c));
    else if (f.name == "is-default" || f.name == "isDefault") keep &= AnyMatch(f.values, "true");
    else if (f.name == "cidr" || f.name == "cidr-block" || f.name == "cidrBlock" ||
             f.name == "cidr-block-association.cidr-block")
      keep &= AnyMatch(f.values, DefaultVpcCidr(c));
    else if (f.name == "state") keep &= AnyMatch(f.values, "available");
    else if (f.name == "owner-id") keep &= AnyMatch(f.values, kAccountId);
    else if (f.name == "dhcp-options-id") keep &= AnyMatch(f.values, StableId("dopt-", c.region()));
    else if (f.name == "tag-key" || f.name.rfind("tag:", 0) == 0) keep = false;  // the default VPC has no tags
    else return UnknownFilter(f.name);
  }
  Json vpcs = Json::array();
  if (keep) {
    vpcs.push_back(JsonObject()
                       .Add("vpcId", DefaultVpcId(c))
                       .Add("ownerId", kAccountId)
                       .Add("state", "available")
                       .Add("cidrBlock", DefaultVpcCidr(c))
                       .Add("cidrBlockAssociationSet",
                            Json::array({JsonObject()
                                             .Add("associationId", StableId("vpc-cidr-assoc-", c.region()))
                                             .Add("cidrBlock", DefaultVpcCidr(c))
                                             .Add("cidrBlockState", JsonObject().Add("state", "associated").Take())
                                             .Take()}))
                       .Add("dhcpOptionsId", StableId("dopt-", c.region()))
                       .Add("instanceTenancy", "default")
                       .Add("isDefault", true)
                       .Take());
  }
  return Json{{"vpcSet", vpcs}};
}

Result<Json> DescribeVpcAttribute(RegionContext* ctx, const Params& p) {
  AP_ASSIGN_OR_RETURN(std::string vpc, p.RequiredStr("VpcId"));
  AP_ASSIGN_OR_RETURN(std::string attribute, p.RequiredStr("Attribute"));
  if (vpc != DefaultVpcId(*ctx->catalog))
    return Ec2Error("InvalidVpcID.NotFound", "The vpc ID '" + vpc + "' does not exist");
  // A default VPC resolves names and gives its instances DNS hostnames.
  bool value;
  if (attribute == "enableDnsSupport" || attribute == "enableDnsHostnames") value = true;
  else if (attribute == "enableNetworkAddressUsageMetrics") value = false;
  else return Ec2Error("InvalidParameterValue", "Value (" + attribute + ") for parameter attribute is invalid.");
  return Json{{"vpcId", vpc}, {attribute, {{"value", value}}}};
}

Result<Json> DescribeSubnets(RegionContext* ctx, const Params& p) {
  const Catalog& c = *ctx->catalog;
  for (const auto& id : p.List("SubnetId")) {
    if (!SubnetZone(c, id)) return Ec2Error("InvalidSubnetID.NotFound", "The subnet ID '" + id + "' does not exist");
  }
  const auto ids = p.List("SubnetId");
  const auto filters = ReadFilters(p);
  // Addresses held per zone: instances (DB servers and cache nodes come from the same /18s but are not EC2's).
  std::map<std::string, int> used;
  for (const auto& inst : ctx->store->List(kind::kInstance)) {
    if ((*inst)["State"] != instance_state::kTerminated) ++used[(*inst)["AvailabilityZone"].get<std::string>()];
  }
  Json subnets = Json::array();
  for (const auto& az : c.availability_zones()) {
    const std::string id = DefaultSubnetId(c, az);
    if (!ids.empty() && std::find(ids.begin(), ids.end(), id) == ids.end()) continue;
    bool keep = true;
    for (const auto& f : filters) {
      if (f.name == "subnet-id" || f.name == "subnetId") keep &= AnyMatch(f.values, id);
      else if (f.name == "vpc-id" || f.name == "vpcId") keep &= AnyMatch(f.values, DefaultVpcId(c));
      else if (f.name == "availability-zone" || f.name == "availabilityZone") keep &= AnyMatch(f.values, az);
      else if (f.name == "availability-zone-id" || f.name == "availabilityZoneId")
        keep &= AnyMatch(f.values, c.ZoneId(az));
      else if (f.name == "default-for-az" || f.name == "defaultForAz") keep &= AnyMatch(f.values, "true");
      else if (f.name == "cidr-block" || f.name == "cidrBlock" || f.name == "cidr")
        keep &= AnyMatch(f.values, SubnetCidr(c, az));
      else if (f.name == "state") keep &= AnyMatch(f.values, "available");
      else if (f.name == "owner-id") keep &= AnyMatch(f.values, kAccountId);
      else if (f.name == "map-public-ip-on-launch") keep &= AnyMatch(f.values, "true");
      else if (f.name == "tag-key" || f.name.rfind("tag:", 0) == 0) keep = false;
      else return UnknownFilter(f.name);
    }
    if (!keep) continue;
    subnets.push_back(JsonObject()
                          .Add("subnetId", id)
                          .Add("subnetArn", ctx->Arn("ec2", "subnet/" + id))
                          .Add("state", "available")
                          .Add("ownerId", kAccountId)
                          .Add("vpcId", DefaultVpcId(c))
                          .Add("cidrBlock", SubnetCidr(c, az))
                          .Add("ipv6CidrBlockAssociationSet", Json::array())
                          .Add("availableIpAddressCount", kSubnetAddresses - kReservedPerSubnet - used[az])
                          .Add("availabilityZone", az)
                          .Add("availabilityZoneId", c.ZoneId(az))
                          .Add("defaultForAz", true)
                          .Add("mapPublicIpOnLaunch", true)
                          .Add("mapCustomerOwnedIpOnLaunch", false)
                          .Add("assignIpv6AddressOnCreation", false)
                          .Add("enableDns64", false)
                          .Add("ipv6Native", false)
                          .Add("privateDnsNameOptionsOnLaunch", JsonObject()
                                                                    .Add("hostnameType", "ip-name")
                                                                    .Add("enableResourceNameDnsARecord", false)
                                                                    .Add("enableResourceNameDnsAAAARecord", false)
                                                                    .Take())
                          .Take());
  }
  return Json{{"subnetSet", subnets}};
}

Result<Json> DescribeSecurityGroups(RegionContext* ctx, const Params& p) {
  const auto ids = p.List("GroupId");
  const auto names = p.List("GroupName");
  for (const auto& id : ids) AP_RETURN_IF_ERROR(GroupIdShape(id));
  const auto groups = AllGroups(*ctx);
  auto has = [&groups](const char* field, const std::string& v) {
    return std::any_of(groups.begin(), groups.end(), [&](const Json& g) { return g[field] == v; });
  };
  for (const auto& id : ids) {
    if (!has("GroupId", id)) return Ec2Error("InvalidGroup.NotFound", "The security group '" + id + "' does not exist");
  }
  for (const auto& n : names) {
    if (!has("GroupName", n))
      return Ec2Error("InvalidGroup.NotFound", "The security group '" + n + "' does not exist in default VPC '" +
                                                   DefaultVpcId(*ctx->catalog) + "'");
  }
  const auto filters = ReadFilters(p);
  Json out = Json::array();
  for (const auto& g : groups) {
    if (!ids.empty() && std::find(ids.begin(), ids.end(), g["GroupId"]) == ids.end()) continue;
    if (!names.empty() && std::find(names.begin(), names.end(), g["GroupName"]) == names.end()) continue;
    bool keep = true;
    for (const auto& f : filters) {
      if (f.name == "group-id") keep &= AnyMatch(f.values, g["GroupId"]);
      else if (f.name == "group-name") keep &= AnyMatch(f.values, g["GroupName"]);
      else if (f.name == "description") keep &= AnyMatch(f.values, g["Description"]);
      else if (f.name == "vpc-id") keep &= AnyMatch(f.values, g["VpcId"]);
      else if (f.name == "owner-id") keep &= AnyMatch(f.values, kAccountId);
      else if (auto m = TagFilterMatches(g["Tags"], f)) keep &= *m;
      else return UnknownFilter(f.name);
    }
    if (keep) out.push_back(GroupXml(*ctx, g));
  }
  return Json{{"securityGroupInfo", out}};
}

Result<Json> CreateSecurityGroup(RegionContext* ctx, const Params& p) {
  AP_ASSIGN_OR_RETURN(std::string name, p.RequiredStr("GroupName"));
  AP_ASSIGN_OR_RETURN(std::string description, p.RequiredStr("GroupDescription"));
  if (name.empty() || name.size() > kMaxNameLength)
    return Ec2Error("InvalidParameterValue", "Value for parameter GroupName must be 1 to 255 characters.");
  if (name.rfind("sg-", 0) == 0)
    return Ec2Error("InvalidParameterValue", "Group names may not be in the format sg-*.");
  if (name == "default") return Ec2Error("InvalidGroup.Reserved", "The security group 'default' is reserved");
  if (description.size() > kMaxNameLength)
    return Ec2Error("InvalidParameterValue", "Value for parameter GroupDescription must be 0 to 255 characters.");
  for (const std::string* s : {&name, &description}) {
    if (!std::all_of(s->begin(), s->end(), [](unsigned char ch) { return ch >= 0x20 && ch < 0x7f; }))
      return Ec2Error("InvalidParameterValue",
                      "Character sets beyond ASCII are not supported in GroupName and GroupDescription.");
  }
  const std::string vpc = p.Str("VpcId").value_or(DefaultVpcId(*ctx->catalog));
  if (vpc != DefaultVpcId(*ctx->catalog))
    return Ec2Error("InvalidVpcID.NotFound", "The vpc ID '" + vpc + "' does not exist");
  AP_ASSIGN_OR_RETURN(Json tags, ReadTagSpecifications(p, "security-group"));
  const auto groups = AllGroups(*ctx);
  for (const auto& g : groups) {
    if (g["GroupName"] == name)
      return Ec2Error("InvalidGroup.Duplicate",
                      "The security group '" + name + "' already exists for VPC '" + vpc + "'");
  }
  if (groups.size() >= kMaxGroupsPerRegion)
    return Ec2Error("SecurityGroupLimitExceeded", "The maximum number of security groups has been reached.");
  // Ids are not reused: the counter lives in the store beside the groups.
  auto counter = ctx->store->GetVersioned(kind::kMeta, "security-group-counter");
  const int64_t n = counter.doc ? (*counter.doc)["Next"].get<int64_t>() : 1;
  const std::string id = StableId("sg-", ctx->catalog->region() + "/sg/" + std::to_string(n));
  Json doc = {{"GroupId", id},   {"GroupName", name},          {"Description", description}, {"VpcId", vpc},
              {"Ingress", Json::array()}, {"Egress", AllTrafficEgress()}, {"Tags", tags}};
  AP_RETURN_IF_ERROR(ctx->store->Commit({{kind::kMeta, "security-group-counter", Json{{"Next", n + 1}},
                                          counter.revision},
                                         {kind::kSecurityGroup, id, doc, 0}}));
  JsonObject out;
  out.Add("groupId", id).Add("securityGroupArn", ctx->Arn("ec2", "security-group/" + id));
  if (!tags.empty()) out.Add("tagSet", TagSet(tags));
  return out.Take();
}

Result<Json> DeleteSecurityGroup(RegionContext* ctx, const Params& p) {
  AP_ASSIGN_OR_RETURN(Json g, TargetGroup(ctx, p));
  const std::string id = g["GroupId"];
  if (id == DefaultSecurityGroupId(*ctx->catalog))
    return Ec2Error("CannotDelete", "the specified group: \"" + id + "\" name: \"default\" cannot be deleted by a user");
  for (const auto& inst : ctx->store->List(kind::kInstance)) {
    if ((*inst)["State"] == instance_state::kTerminated) continue;
    for (const auto& sg : (*inst)["SecurityGroups"]) {
      if (sg == id || sg == g["GroupName"])
        return Ec2Error("DependencyViolation", "resource " + id + " has a dependent object");
    }
  }
  // DB instances, cache clusters (their modules say which groups they are members of).
  std::set<std::string> used_elsewhere;
  for (const auto& m : AllModules()) {
    if (m.security_groups_in_use) m.security_groups_in_use(*ctx, &used_elsewhere);
  }
  if (used_elsewhere.count(id)) return Ec2Error("DependencyViolation", "resource " + id + " has a dependent object");
  for (const auto& other : ctx->store->List(kind::kSecurityGroup)) {
    if ((*other)["GroupId"] == id) continue;
    for (const char* dir : {"Ingress", "Egress"}) {
      for (const auto& r : (*other)[dir]) {
        if (r["Group"] == id) return Ec2Error("DependencyViolation", "resource " + id + " has a dependent object");
      }
    }
  }
  AP_RETURN_IF_ERROR(ctx->store->Commit({{kind::kSecurityGroup, id, std::nullopt, std::nullopt}}));
  return Json{{"return", true}, {"groupId", id}};
}

Result<Json> ChangeRules(RegionContext* ctx, const Params& p, const char* direction, bool add) {
  AP_ASSIGN_OR_RETURN(Json g, TargetGroup(ctx, p));
  AP_ASSIGN_OR_RETURN(std::vector<Rule> rules, ReadRules(ctx, p));
  Json& stored = g[direction];
  std::vector<Rule> current;
  for (const auto& j : stored) current.push_back(Rule::FromJson(j));
  for (const auto& r : rules) {
    auto it = std::find_if(current.begin(), current.end(), [&r](const Rule& c) { return c.SameTarget(r); });
    if (add) {
      if (it != current.end())
        return Ec2Error("InvalidPermission.Duplicate", "the specified rule \"" + r.Describe() + "\" already exists");
      current.push_back(r);
    } else {
      if (it == current.end())
        return Ec2Error("InvalidPermission.NotFound",
                        "The specified rule does not exist in this security group.");
      current.erase(it);
    }
  }
  if (current.size() > kMaxRulesPerGroup)
    return Ec2Error("RulesPerSecurityGroupLimitExceeded",
                    "The maximum number of rules per security group has been reached.");
  stored = Json::array();
  for (const auto& r : current) stored.push_back(r.ToJson());
  AP_RETURN_IF_ERROR(ctx->store->Commit({{kind::kSecurityGroup, g["GroupId"], g, std::nullopt}}));
  Json out = {{"return", true}};
  if (add) {
    Json set = Json::array();
    for (const auto& r : rules) {
      JsonObject rule;
      rule.Add("securityGroupRuleId", StableId("sgr-", g["GroupId"].get<std::string>() + direction + r.Describe()))
          .Add("groupId", g["GroupId"])
          .Add("groupOwnerId", kAccountId)
          .Add("isEgress", std::string(direction) == "Egress")
          .Add("ipProtocol", r.protocol)
          .Add("fromPort", r.from)
          .Add("toPort", r.to);
      if (!r.cidr.empty()) rule.Add("cidrIpv4", r.cidr);
      if (!r.cidr6.empty()) rule.Add("cidrIpv6", r.cidr6);
      if (!r.group.empty())
        rule.Add("referencedGroupInfo", JsonObject().Add("groupId", r.group).Add("userId", kAccountId).Take());
      if (!r.description.empty()) rule.Add("description", r.description);
      set.push_back(rule.Take());
    }
    out["securityGroupRuleSet"] = set;
  }
  return out;
}

Result<Json> AuthorizeIngress(RegionContext* ctx, const Params& p) { return ChangeRules(ctx, p, "Ingress", true); }
Result<Json> RevokeIngress(RegionContext* ctx, const Params& p) { return ChangeRules(ctx, p, "Ingress", false); }
Result<Json> AuthorizeEgress(RegionContext* ctx, const Params& p) { return ChangeRules(ctx, p, "Egress", true); }
Result<Json> RevokeEgress(RegionContext* ctx, const Params& p) { return ChangeRules(ctx, p, "Egress", false); }

Result<Json> DescribeAccountAttributes(RegionContext* ctx, const Params& p) {
  const std::vector<std::pair<std::string, std::vector<std::string>>> all = {
      {"supported-platforms", {"VPC"}},
      {"default-vpc", {DefaultVpcId(*ctx->catalog)}},
      {"max-instances", {"20"}},
      {"vpc-max-security-groups-per-interface", {"5"}},
      {"max-elastic-ips", {"5"}},
      {"vpc-max-elastic-ips", {"5"}},
  };
  const auto wanted = p.List("AttributeName");
  for (const auto& w : wanted) {
    if (std::none_of(all.begin(), all.end(), [&w](const auto& a) { return a.first == w; }))
      return Ec2Error("InvalidParameterValue", "Value (" + w + ") for parameter attributeName is invalid.");
  }
  Json out = Json::array();
  for (const auto& [name, values] : all) {
    if (!wanted.empty() && std::find(wanted.begin(), wanted.end(), name) == wanted.end()) continue;
    Json set = Json::array();
    for (const auto& v : values) set.push_back({{"attributeValue", v}});
    out.push_back({{"attributeName", name}, {"attributeValueSet", set}});
  }
  return Json{{"accountAttributeSet", out}};
}

Result<Json> DescribeNetworkInterfaces(RegionContext* ctx, const Params& p) {
  const Catalog& c = *ctx->catalog;
  const auto ids = p.List("NetworkInterfaceId");
  const auto filters = ReadFilters(p);
  Json out = Json::array();
  std::set<std::string> seen;
  for (const auto& doc : ctx->store->List(kind::kInstance)) {
    const Json& inst = *doc;
    if (inst["State"] == instance_state::kTerminated) continue;
    const std::string instance_id = inst["InstanceId"];
    const std::string eni = StableId("eni-", instance_id);
    const std::string az = inst["AvailabilityZone"];
    const std::string ip = inst["PrivateIpAddress"];
    if (!ids.empty() && std::find(ids.begin(), ids.end(), eni) == ids.end()) continue;
    bool keep = true;
    for (const auto& f : filters) {
      if (f.name == "network-interface-id") keep &= AnyMatch(f.values, eni);
      else if (f.name == "attachment.instance-id") keep &= AnyMatch(f.values, instance_id);
      else if (f.name == "subnet-id") keep &= AnyMatch(f.values, DefaultSubnetId(c, az));
      else if (f.name == "vpc-id") keep &= AnyMatch(f.values, DefaultVpcId(c));
      else if (f.name == "availability-zone") keep &= AnyMatch(f.values, az);
      else if (f.name == "private-ip-address" || f.name == "addresses.private-ip-address")
        keep &= AnyMatch(f.values, ip);
      else if (f.name == "status") keep &= AnyMatch(f.values, "in-use");
      else if (f.name == "owner-id") keep &= AnyMatch(f.values, kAccountId);
      else return UnknownFilter(f.name);
    }
    if (!keep) continue;
    seen.insert(eni);
    out.push_back(NetworkInterfaceOf(*ctx, inst));
  }
  for (const auto& id : ids) {
    if (!seen.count(id))
      return Ec2Error("InvalidNetworkInterfaceID.NotFound", "The networkInterface ID '" + id + "' does not exist");
  }
  return Json{{"networkInterfaceSet", out}};
}

Result<Json> DescribeInstanceTypes(RegionContext* ctx, const Params& p) {
  const auto wanted = p.List("InstanceType");
  std::vector<std::string> missing;
  for (const auto& w : wanted)
    if (!ctx->catalog->FindInstanceType(w)) missing.push_back(w);
  if (!missing.empty()) {
    std::string list;
    for (const auto& m : missing) list += (list.empty() ? "" : ", ") + m;
    return Ec2Error("InvalidInstanceType", "The following supplied instance types do not exist: [" + list + "]");
  }
  const auto filters = ReadFilters(p);
  Json out = Json::array();
  for (const auto& t : ctx->catalog->instance_types()) {
    if (!wanted.empty() && std::find(wanted.begin(), wanted.end(), t.name) == wanted.end()) continue;
    const bool burstable = t.name[0] == 't';
    bool keep = true;
    for (const auto& f : filters) {
      if (f.name == "instance-type") keep &= AnyMatch(f.values, t.name);
      else if (f.name == "vcpu-info.default-vcpus") keep &= AnyMatch(f.values, std::to_string(t.vcpus));
      else if (f.name == "memory-info.size-in-mib") keep &= AnyMatch(f.values, std::to_string(t.memory_mib));
      else if (f.name == "burstable-performance-supported") keep &= AnyMatch(f.values, burstable ? "true" : "false");
      else if (f.name == "current-generation") keep &= AnyMatch(f.values, "true");
      else if (f.name == "processor-info.supported-architecture") keep &= AnyMatch(f.values, "x86_64");
      else return UnknownFilter(f.name);
    }
    if (!keep) continue;
    const int threads = t.vcpus > 1 ? 2 : 1;
    out.push_back(JsonObject()
                      .Add("instanceType", t.name)
                      .Add("currentGeneration", true)
                      .Add("freeTierEligible", t.name == "t2.micro" || t.name == "t3.micro")
                      .Add("supportedUsageClasses", Json::array({"on-demand"}))
                      .Add("supportedRootDeviceTypes", Json::array({"ebs"}))
                      .Add("supportedVirtualizationTypes", Json::array({"hvm"}))
                      .Add("bareMetal", false)
                      .Add("hypervisor", "nitro")
                      .Add("processorInfo", JsonObject()
                                                .Add("supportedArchitectures", Json::array({"x86_64"}))
                                                .Take())
                      .Add("vCpuInfo", JsonObject()
                                           .Add("defaultVCpus", t.vcpus)
                                           .Add("defaultCores", t.vcpus / threads)
                                           .Add("defaultThreadsPerCore", threads)
                                           .Take())
                      .Add("memoryInfo", JsonObject().Add("sizeInMiB", t.memory_mib).Take())
                      .Add("instanceStorageSupported", false)
                      .Add("ebsInfo", JsonObject()
                                          .Add("ebsOptimizedSupport", "default")
                                          .Add("encryptionSupport", "supported")
                                          .Add("nvmeSupport", "required")
                                          .Take())
                      .Add("networkInfo", JsonObject()
                                              .Add("networkPerformance", "Up to 5 Gigabit")
                                              .Add("maximumNetworkInterfaces", 3)
                                              .Add("ipv4AddressesPerInterface", 6)
                                              .Add("ipv6Supported", true)
                                              .Add("enaSupport", "required")
                                              .Take())
                      .Add("placementGroupInfo", JsonObject()
                                                     .Add("supportedStrategies", Json::array({"partition", "spread"}))
                                                     .Take())
                      .Add("hibernationSupported", false)
                      .Add("burstablePerformanceSupported", burstable)
                      .Add("dedicatedHostsSupported", !burstable)
                      .Add("autoRecoverySupported", true)
                      .Add("supportedBootModes", Json::array({"legacy-bios", "uefi"}))
                      .Take());
  }
  return Json{{"instanceTypeSet", out}};
}

}  // namespace

std::string DefaultVpcId(const Catalog& catalog) { return StableId("vpc-", catalog.region() + "/default-vpc"); }

std::string DefaultVpcCidr(const Catalog& catalog) { return catalog.address_block() + ".0.0/16"; }

std::string DefaultSubnetId(const Catalog& catalog, const std::string& az) {
  return StableId("subnet-", catalog.region() + "/default-subnet/" + az);
}

std::string SubnetCidr(const Catalog& catalog, const std::string& az) {
  // Zone i's addresses are 127.N.(64 i).0/18 (ec2/instances.cc AllocatePrivateAddress).
  return catalog.address_block() + "." + std::to_string(64 * std::max(0, catalog.AzIndex(az))) + ".0/18";
}

std::optional<std::string> SubnetZone(const Catalog& catalog, const std::string& subnet_id) {
  for (const auto& az : catalog.availability_zones()) {
    if (DefaultSubnetId(catalog, az) == subnet_id) return az;
  }
  return std::nullopt;
}

std::string DefaultSecurityGroupId(const Catalog& catalog) {
  return StableId("sg-", catalog.region() + "/default-security-group");
}

std::string PrivateDnsName(const Catalog& catalog, const std::string& ip) {
  std::string dashed = ip;
  std::replace(dashed.begin(), dashed.end(), '.', '-');
  // us-east-1 alone uses ec2.internal; every other region <region>.compute.internal.
  const std::string domain =
      catalog.region() == "us-east-1" ? "ec2.internal" : catalog.region() + ".compute.internal";
  return "ip-" + dashed + "." + domain;
}

Json NetworkInterfaceOf(const RegionContext& ctx, const Json& inst) {
  const Catalog& c = *ctx.catalog;
  const std::string instance_id = inst["InstanceId"];
  const std::string eni = StableId("eni-", instance_id);
  const std::string az = inst["AvailabilityZone"];
  const std::string ip = inst["PrivateIpAddress"];
  Json groups = Json::array();
  for (const auto& g : inst["SecurityGroups"]) groups.push_back({{"groupId", g}, {"groupName", g}});
  const std::string dns = PrivateDnsName(c, ip);
  // A locally administered MAC (02:...) from the interface id's digits: stable, as the interface is.
  std::string mac = "02";
  for (size_t i = 4; i + 1 < eni.size() && mac.size() < 17; i += 2) mac += ":" + eni.substr(i, 2);
  return JsonObject()
      .Add("networkInterfaceId", eni)
      .Add("macAddress", mac)
      .Add("subnetId", DefaultSubnetId(c, az))
      .Add("vpcId", DefaultVpcId(c))
      .Add("availabilityZone", az)
      .Add("description", "")
      .Add("ownerId", kAccountId)
      .Add("requesterManaged", false)
      .Add("status", "in-use")
      .Add("privateIpAddress", ip)
      .Add("privateDnsName", dns)
      .Add("sourceDestCheck", true)
      .Add("interfaceType", "interface")
      .Add("groupSet", std::move(groups))
      .Add("attachment", JsonObject()
                             .Add("attachmentId", StableId("eni-attach-", instance_id))
                             .Add("instanceId", instance_id)
                             .Add("instanceOwnerId", kAccountId)
                             .Add("deviceIndex", 0)
                             .Add("status", "attached")
                             .Add("attachTime", IsoTimeMillis(inst["LaunchTime"].get<int64_t>()))
                             .Add("deleteOnTermination", true)
                             .Take())
      .Add("privateIpAddressesSet",
           Json::array(
               {JsonObject().Add("privateIpAddress", ip).Add("privateDnsName", dns).Add("primary", true).Take()}))
      .Add("ipv6AddressesSet", Json::array())
      .Add("tagSet", Json::array())
      .Take();
}

std::string RootVolumeId(const std::string& instance_id) { return StableId("vol-", instance_id); }

std::vector<Operation> VpcOperations(RegionContext* ctx) {
  auto op = [ctx](const char* name, Access access, Result<Json> (*fn)(RegionContext*, const Params&),
                  std::vector<ListLimit> limits = {}) {
    return Operation{name, access, [ctx, fn](const Params& p) { return fn(ctx, p); }, std::move(limits)};
  };
  const ListLimit kFilters{"Filter", 50};
  const ListLimit kPermissions{"IpPermissions", 100};
  return {
      op("DescribeVpcs", Access::kRead, DescribeVpcs, {{"VpcId", 1000}, kFilters}),
      op("DescribeVpcAttribute", Access::kRead, DescribeVpcAttribute),
      op("DescribeSubnets", Access::kRead, DescribeSubnets, {{"SubnetId", 1000}, kFilters}),
      op("DescribeSecurityGroups", Access::kRead, DescribeSecurityGroups,
         {{"GroupId", 1000}, {"GroupName", 1000}, kFilters}),
      op("CreateSecurityGroup", Access::kWrite, CreateSecurityGroup, {{"TagSpecification", 50}}),
      op("DeleteSecurityGroup", Access::kWrite, DeleteSecurityGroup),
      op("AuthorizeSecurityGroupIngress", Access::kWrite, AuthorizeIngress, {kPermissions}),
      op("RevokeSecurityGroupIngress", Access::kWrite, RevokeIngress, {kPermissions}),
      op("AuthorizeSecurityGroupEgress", Access::kWrite, AuthorizeEgress, {kPermissions}),
      op("RevokeSecurityGroupEgress", Access::kWrite, RevokeEgress, {kPermissions}),
      op("DescribeAccountAttributes", Access::kRead, DescribeAccountAttributes, {{"AttributeName", 100}}),
      op("DescribeNetworkInterfaces", Access::kRead, DescribeNetworkInterfaces,
         {{"NetworkInterfaceId", 1000}, kFilters}),
      op("DescribeInstanceTypes", Access::kRead, DescribeInstanceTypes, {{"InstanceType", 100}, kFilters}),
  };
}

}  // namespace autopipe::ec2

#include "elasticache/cache_subnet_groups.h"

#include <algorithm>
#include <cctype>
#include <set>

#include "api/page_token.h"
#include "ec2/vpc.h"
#include "elasticache/replication_groups.h"

namespace autopipe::elasticache {
namespace {

constexpr size_t kMaxSubnetGroups = 50;
constexpr size_t kMaxSubnetsPerGroup = 20;
constexpr size_t kMaxTags = 50;
constexpr size_t kMaxNameLength = 255;
constexpr char kDefaultDescription[] = "Default CacheSubnetGroup";

Status NotFound(const std::string& name) {
  return Status(400, "CacheSubnetGroupNotFoundFault", "Cache subnet group " + name + " not found.");
}

Result<std::string> ReadName(const Params& p) {
  auto name = p.Str("CacheSubnetGroupName");
  if (!name || name->empty()) {
    return Status::MissingParameter("The request must contain the parameter CacheSubnetGroupName.");
  }
  const bool valid = name->size() <= kMaxNameLength &&
                     std::all_of(name->begin(), name->end(), [](unsigned char c) { return std::isalnum(c) || c == '-'; });
  if (!valid) {
    return Status::InvalidParameterValue("Invalid CacheSubnetGroupName " + *name + ": it must contain no more than "
                                         "255 alphanumeric characters or hyphens.");
  }
  return Lower(*name);
}

// SubnetIds: given, each a subnet of this region's VPC (one zone is enough for ElastiCache).
Result<Json> ReadSubnets(const RegionContext& ctx, const Params& p) {
  const auto ids = p.List("SubnetIds", "SubnetIdentifier");
  if (ids.empty()) return Status::MissingParameter("The request must contain the parameter SubnetIds.");
  if (ids.size() > kMaxSubnetsPerGroup) {
    return Status(400, "CacheSubnetQuotaExceededFault",
                  "A cache subnet group can have at most " + std::to_string(kMaxSubnetsPerGroup) + " subnets.");
  }
  for (const auto& id : ids) {
    if (!ec2::SubnetZone(*ctx.catalog, id)) {
      return Status(400, "InvalidSubnet", "The subnet ID " + id + " does not exist");
    }
  }
  Json ordered = Json::array();
  for (const auto& az : ctx.catalog->availability_zones()) {
    const std::string id = ec2::DefaultSubnetId(*ctx.catalog, az);
    if (std::find(ids.begin(), ids.end(), id) != ids.end()) ordered.push_back(id);
  }
  return ordered;
}

Json DefaultGroup(const RegionContext& ctx) {
  Json subnets = Json::array();
  for (const auto& az : ctx.catalog->availability_zones()) subnets.push_back(ec2::DefaultSubnetId(*ctx.catalog, az));
  return Json{{"CacheSubnetGroupName", kDefaultCacheSubnetGroup},
              {"CacheSubnetGroupDescription", kDefaultDescription},
              {"SubnetIds", subnets},
              {"Tags", Json::array()}};
}

Json GroupXml(const RegionContext& ctx, const Json& group) {
  Json subnets = Json::array();
  for (const auto& id : group["SubnetIds"]) {
    auto zone = ec2::SubnetZone(*ctx.catalog, id.get<std::string>());
    subnets.push_back(JsonObject()
                          .Add("SubnetIdentifier", id)
                          .Add("SubnetAvailabilityZone", Json{{"Name", zone.value_or("")}})
                          .Add("SupportedNetworkTypes", Json::array({"ipv4"}))
                          .Take());
  }
  const std::string name = group["CacheSubnetGroupName"];
  return JsonObject()
      .Add("CacheSubnetGroupName", name)
      .Add("CacheSubnetGroupDescription", group["CacheSubnetGroupDescription"])
      .Add("VpcId", ec2::DefaultVpcId(*ctx.catalog))
      .Add("Subnets", std::move(subnets))
      .Add("ARN", CacheSubnetGroupArn(ctx, name))
      .Add("SupportedNetworkTypes", Json::array({"ipv4"}))
      .Take();
}

// Replication groups (any state) that use group `name`.
std::vector<Json> GroupsUsing(const RegionContext& ctx, const std::string& name) {
  std::vector<Json> out;
  for (const auto& doc : ctx.store->List(kind::kCacheReplicationGroup)) {
    if (doc->value("CacheSubnetGroupName", std::string(kDefaultCacheSubnetGroup)) == name) out.push_back(*doc);
  }
  return out;
}

}  // namespace

Status MaxRecordsOutOfRange(int64_t lo, int64_t hi) {
  return Status::InvalidParameterValue("Invalid value for max records. Must be between " + std::to_string(lo) +
                                       " and " + std::to_string(hi));
}

std::string CacheSubnetGroupArn(const RegionContext& ctx, const std::string& name) {
  return ctx.Arn("elasticache", "subnetgroup:" + name);
}

Result<Json> LoadCacheSubnetGroup(const RegionContext& ctx, const std::string& name) {
  const std::string key = Lower(name);
  if (key == kDefaultCacheSubnetGroup) return DefaultGroup(ctx);
  auto doc = ctx.store->Get(kind::kCacheSubnetGroup, key);
  if (!doc) return NotFound(name);
  return std::move(*doc);
}

std::vector<std::string> CacheSubnetGroupZones(const RegionContext& ctx, const Json& group) {
  std::set<std::string> in;
  for (const auto& id : group.value("SubnetIds", Json::array())) {
    if (auto zone = ec2::SubnetZone(*ctx.catalog, id.get<std::string>())) in.insert(*zone);
  }
  std::vector<std::string> out;
  for (const auto& az : ctx.catalog->availability_zones()) {
    if (in.count(az)) out.push_back(az);
  }
  return out;
}

std::vector<std::string> ZonesForReplicationGroup(const RegionContext& ctx, const Json& rg) {
  auto group = LoadCacheSubnetGroup(ctx, rg.value("CacheSubnetGroupName", std::string(kDefaultCacheSubnetGroup)));
  std::vector<std::string> zones = group.ok() ? CacheSubnetGroupZones(ctx, *group) : std::vector<std::string>{};
  return zones.empty() ? ctx.catalog->availability_zones() : zones;
}

Status CheckZoneInGroup(const RegionContext& ctx, const std::string& group_name, const std::vector<std::string>& zones,
                        const std::string& az) {
  if (std::find(zones.begin(), zones.end(), az) != zones.end()) return Status::Ok();
  if (!ctx.catalog->IsAvailabilityZone(az)) {
    return Status::InvalidParameterValue("Invalid availability zone: " + az + " is not an Availability Zone of " +
                                         ctx.catalog->region() + ".");
  }
  return Status::InvalidParameterValue("Availability zone " + az + " is not covered by cache subnet group " +
                                       group_name + ": none of its subnets is in it.");
}

Result<Json> CreateCacheSubnetGroup(RegionContext& ctx, const Params& p, const Json& tags) {
  AP_ASSIGN_OR_RETURN(auto name, ReadName(p));
  if (name == kDefaultCacheSubnetGroup) {
    return Status(400, "CacheSubnetGroupAlreadyExists", "Cache subnet group default already exists.");
  }
  auto description = p.Str("CacheSubnetGroupDescription");
  if (!description) return Status::MissingParameter("The request must contain the parameter CacheSubnetGroupDescription.");
  AP_ASSIGN_OR_RETURN(auto subnets, ReadSubnets(ctx, p));
  if (tags.size() > kMaxTags) return Status(400, "TagQuotaPerResourceExceeded", "A resource has at most 50 tags.");
  if (ctx.store->Get(kind::kCacheSubnetGroup, name)) {
    return Status(400, "CacheSubnetGroupAlreadyExists", "Cache subnet group " + name + " already exists.");
  }
  if (ctx.store->Count(kind::kCacheSubnetGroup) >= kMaxSubnetGroups) {
    return Status(400, "CacheSubnetGroupQuotaExceeded",
                  "This region holds at most " + std::to_string(kMaxSubnetGroups) + " cache subnet groups.");
  }
  Json group = {{"CacheSubnetGroupName", name},
                {"CacheSubnetGroupDescription", *description},
                {"SubnetIds", subnets},
                {"Tags", tags}};
  AP_RETURN_IF_ERROR(ctx.store->Commit({{kind::kCacheSubnetGroup, name, group, 0}}));
  return Json{{"CacheSubnetGroup", GroupXml(ctx, group)}};
}

Result<Json> DescribeCacheSubnetGroups(const RegionContext& ctx, const Params& p) {
  auto max = p.Int("MaxRecords");
  if (!max.ok()) return max.status();
  if (*max && (**max < 20 || **max > 100)) return MaxRecordsOutOfRange(20, 100);
  const size_t limit = static_cast<size_t>(max->value_or(100));
  size_t offset = 0;
  if (auto marker = p.Str("Marker"); marker && !marker->empty()) {
    auto decoded = DecodePageToken("CacheSubnetGroups", *marker);
    if (!decoded) return Status::InvalidParameterValue("Invalid Marker: " + *marker);
    offset = static_cast<size_t>(*decoded);
  }
  Json all = Json::array();
  if (auto name = p.Str("CacheSubnetGroupName"); name && !name->empty()) {
    AP_ASSIGN_OR_RETURN(auto group, LoadCacheSubnetGroup(ctx, *name));
    all.push_back(GroupXml(ctx, group));
  } else {
    all.push_back(GroupXml(ctx, DefaultGroup(ctx)));
    for (const auto& doc : ctx.store->List(kind::kCacheSubnetGroup)) all.push_back(GroupXml(ctx, *doc));
  }
  Json out = Json::object();
  Json page = Json::array();
  for (size_t i = offset; i < all.size() && page.size() < limit; ++i) page.push_back(std::move(all[i]));
  if (offset + limit < all.size()) out["Marker"] = EncodePageToken("CacheSubnetGroups", offset + limit);
  out["CacheSubnetGroups"] = std::move(page);
  return out;
}

Result<Json> ModifyCacheSubnetGroup(RegionContext& ctx, const Params& p) {
  AP_ASSIGN_OR_RETURN(auto name, ReadName(p));
  std::optional<Json> subnets;
  if (p.ListSize("SubnetIds", "SubnetIdentifier") > 0) {
    AP_ASSIGN_OR_RETURN(auto s, ReadSubnets(ctx, p));
    subnets = std::move(s);
  }
  auto description = p.Str("CacheSubnetGroupDescription");
  if (name == kDefaultCacheSubnetGroup) {
    return Status::InvalidParameterValue("The default cache subnet group cannot be modified.");
  }
  auto doc = ctx.store->Get(kind::kCacheSubnetGroup, name);
  if (!doc) return NotFound(name);
  Json group = *doc;
  if (subnets) {
    Json wanted = group;
    wanted["SubnetIds"] = *subnets;
    const auto zones = CacheSubnetGroupZones(ctx, wanted);
    for (const auto& rg : GroupsUsing(ctx, name)) {
      for (const auto& ng : rg["NodeGroups"]) {
        for (const auto& member : ng["Members"]) {
          auto node = ctx.store->Get(kind::kCacheNode, member.get<std::string>());
          if (!node) continue;
          const std::string az = node->value("AvailabilityZone", std::string());
          if (std::find(zones.begin(), zones.end(), az) != zones.end()) continue;
          return Status(400, "SubnetInUse", "The subnet " + ec2::DefaultSubnetId(*ctx.catalog, az) +
                                                " is in use by cache cluster " + member.get<std::string>() + ".");
        }
      }
    }
    group["SubnetIds"] = *subnets;
  }
  if (description) group["CacheSubnetGroupDescription"] = *description;
  AP_RETURN_IF_ERROR(ctx.store->Commit({{kind::kCacheSubnetGroup, name, group, std::nullopt}}));
  return Json{{"CacheSubnetGroup", GroupXml(ctx, group)}};
}

Result<Json> DeleteCacheSubnetGroup(RegionContext& ctx, const Params& p) {
  AP_ASSIGN_OR_RETURN(auto name, ReadName(p));
  if (name == kDefaultCacheSubnetGroup) {
    return Status::InvalidParameterValue("Cannot delete default cache subnet group.");
  }
  if (!ctx.store->Get(kind::kCacheSubnetGroup, name)) return NotFound(name);
  if (!GroupsUsing(ctx, name).empty()) {
    return Status(400, "CacheSubnetGroupInUse", "Cache subnet group " + name + " is currently in use by a cache "
                                                "cluster.");
  }
  AP_RETURN_IF_ERROR(ctx.store->Commit({{kind::kCacheSubnetGroup, name, std::nullopt, std::nullopt}}));
  return Json::object();
}

}  // namespace autopipe::elasticache

#include "rds/db_subnet_groups.h"

#include <algorithm>
#include <cctype>
#include <set>

#include "api/page_token.h"
#include "ec2/vpc.h"
#include "rds/db_instances.h"

namespace autopipe::rds {
namespace {

constexpr size_t kMaxSubnetGroups = 50;
constexpr size_t kMaxSubnetsPerGroup = 20;
constexpr size_t kMaxTags = 50;
constexpr size_t kMaxNameLength = 255;
constexpr int64_t kMinRecords = 20;
constexpr int64_t kMaxRecords = 100;
constexpr char kDefaultDescription[] = "default";

std::string Lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

Status NotFound(const std::string& name) {
  return Status(404, "DBSubnetGroupNotFoundFault", "DBSubnetGroup '" + name + "' not found.");
}

Status InvalidState(const std::string& message) { return Status(400, "InvalidDBSubnetGroupStateFault", message); }

// Letters, digits, periods, underscores, spaces and hyphens; at most 255.
bool ValidName(const std::string& name) {
  if (name.empty() || name.size() > kMaxNameLength) return false;
  return std::all_of(name.begin(), name.end(), [](unsigned char c) {
    return std::isalnum(c) || c == '.' || c == '_' || c == ' ' || c == '-';
  });
}

Result<std::string> ReadName(const Params& p) {
  auto name = p.Str("DBSubnetGroupName");
  if (!name || name->empty()) {
    return Status::InvalidParameterValue("The parameter DBSubnetGroupName must be provided and must not be blank.");
  }
  if (!ValidName(*name)) {
    return Status::InvalidParameterValue("The parameter DBSubnetGroupName is not a valid identifier. It must "
                                         "contain no more than 255 letters, numbers, periods, underscores, spaces, "
                                         "or hyphens.");
  }
  return Lower(*name);
}

// SubnetIds: given, each a subnet of this region's VPC, together covering at least two zones.
Result<Json> ReadSubnets(const RegionContext& ctx, const Params& p) {
  const auto ids = p.List("SubnetIds", "SubnetIdentifier");
  if (ids.empty()) {
    return Status::InvalidParameterValue("The parameter SubnetIds must be provided and must not be empty.");
  }
  if (ids.size() > kMaxSubnetsPerGroup) {
    return Status(400, "DBSubnetQuotaExceededFault",
                  "A DB subnet group can have at most " + std::to_string(kMaxSubnetsPerGroup) + " subnets.");
  }
  std::vector<std::string> invalid;
  std::set<std::string> zones;
  Json out = Json::array();
  for (const auto& id : ids) {
    auto zone = ec2::SubnetZone(*ctx.catalog, id);
    if (!zone) {
      invalid.push_back(id);
      continue;
    }
    zones.insert(*zone);
    if (std::find(out.begin(), out.end(), id) == out.end()) out.push_back(id);
  }
  if (!invalid.empty()) {
    std::string list;
    for (const auto& id : invalid) list += (list.empty() ? "" : ", ") + id;
    return Status(400, "InvalidSubnet", "Some input subnets in :[" + list + "] are invalid.");
  }
  if (zones.size() < 2) {
    return Status(400, "DBSubnetGroupDoesNotCoverEnoughAZs",
                  "The DB subnet group doesn't meet Availability Zone (AZ) coverage requirement. Current AZ "
                  "coverage: " + *zones.begin() + ". Add subnets to cover at least 2 AZs.");
  }
  // Stored in the catalog's zone order, so that the rendering is stable.
  Json ordered = Json::array();
  for (const auto& az : ctx.catalog->availability_zones()) {
    for (const auto& id : out) {
      if (ec2::SubnetZone(*ctx.catalog, id) == az) ordered.push_back(id);
    }
  }
  return ordered;
}

Json DefaultGroup(const RegionContext& ctx) {
  Json subnets = Json::array();
  for (const auto& az : ctx.catalog->availability_zones()) subnets.push_back(ec2::DefaultSubnetId(*ctx.catalog, az));
  return Json{{"DBSubnetGroupName", kDefaultSubnetGroup},
              {"DBSubnetGroupDescription", kDefaultDescription},
              {"SubnetIds", subnets},
              {"Tags", Json::array()}};
}

std::string GroupArn(const RegionContext& ctx, const std::string& name) { return ctx.Arn("rds", "subgrp:" + name); }

Json SubnetsXml(const RegionContext& ctx, const Json& group) {
  Json subnets = Json::array();
  for (const auto& id : group["SubnetIds"]) {
    auto zone = ec2::SubnetZone(*ctx.catalog, id.get<std::string>());
    subnets.push_back(JsonObject()
                          .Add("SubnetIdentifier", id)
                          .Add("SubnetAvailabilityZone", Json{{"Name", zone.value_or("")}})
                          .Add("SubnetOutpost", Json::object())
                          .Add("SubnetStatus", "Active")
                          .Take());
  }
  return subnets;
}

Json GroupXml(const RegionContext& ctx, const Json& group) {
  const std::string name = group["DBSubnetGroupName"];
  return JsonObject()
      .Add("DBSubnetGroupName", name)
      .Add("DBSubnetGroupDescription", group["DBSubnetGroupDescription"])
      .Add("VpcId", ec2::DefaultVpcId(*ctx.catalog))
      .Add("SubnetGroupStatus", "Complete")
      .Add("Subnets", SubnetsXml(ctx, group))
      .Add("DBSubnetGroupArn", GroupArn(ctx, name))
      .Add("SupportedNetworkTypes", Json::array({"IPV4"}))
      .Take();
}

// DB instances (live or being deleted) that use group `name`.
std::vector<Json> InstancesUsing(const RegionContext& ctx, const std::string& name) {
  std::vector<Json> out;
  for (const auto& doc : ctx.store->List(kind::kDbInstance)) {
    if (doc->value("DBSubnetGroupName", std::string(kDefaultSubnetGroup)) == name) out.push_back(*doc);
  }
  return out;
}

// The stored group an ARN names: nullopt when it is no subnet group ARN of this region.
std::optional<Result<Json>> GroupByArn(const RegionContext& ctx, const std::string& arn) {
  const std::string prefix = ctx.Arn("rds", "subgrp:");
  if (arn.compare(0, prefix.size(), prefix) != 0) return std::nullopt;
  const std::string name = Lower(arn.substr(prefix.size()));
  if (name == kDefaultSubnetGroup) return Result<Json>(DefaultGroup(ctx));
  auto doc = ctx.store->Get(kind::kDbSubnetGroup, name);
  if (!doc) return Result<Json>(NotFound(name));
  return Result<Json>(std::move(*doc));
}

}  // namespace

Status MaxRecordsOutOfRange(int64_t value, int64_t lo, int64_t hi) {
  return Status::InvalidParameterValue("Invalid value " + std::to_string(value) + " for MaxRecords. Must be between " +
                                       std::to_string(lo) + " and " + std::to_string(hi));
}

Result<Json> LoadDbSubnetGroup(const RegionContext& ctx, const std::string& name) {
  const std::string key = Lower(name);
  if (key == kDefaultSubnetGroup) return DefaultGroup(ctx);
  auto doc = ctx.store->Get(kind::kDbSubnetGroup, key);
  if (!doc) return NotFound(name);
  return std::move(*doc);
}

std::vector<std::string> SubnetGroupZones(const RegionContext& ctx, const Json& group) {
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

std::vector<std::string> ZonesForInstance(const RegionContext& ctx, const Json& db) {
  auto group = LoadDbSubnetGroup(ctx, db.value("DBSubnetGroupName", std::string(kDefaultSubnetGroup)));
  std::vector<std::string> zones = group.ok() ? SubnetGroupZones(ctx, *group) : std::vector<std::string>{};
  return zones.empty() ? ctx.catalog->availability_zones() : zones;
}

Json DbSubnetGroupOfInstance(const RegionContext& ctx, const Json& db) {
  auto group = LoadDbSubnetGroup(ctx, db.value("DBSubnetGroupName", std::string(kDefaultSubnetGroup)));
  const Json g = group.ok() ? *group : DefaultGroup(ctx);
  return JsonObject()
      .Add("DBSubnetGroupName", g["DBSubnetGroupName"])
      .Add("DBSubnetGroupDescription", g["DBSubnetGroupDescription"])
      .Add("VpcId", ec2::DefaultVpcId(*ctx.catalog))
      .Add("SubnetGroupStatus", "Complete")
      .Add("Subnets", SubnetsXml(ctx, g))
      .Take();
}

Result<Json> CreateDbSubnetGroup(RegionContext& ctx, const Params& p, const Json& tags) {
  AP_ASSIGN_OR_RETURN(auto name, ReadName(p));
  if (name == kDefaultSubnetGroup) {
    return Status::InvalidParameterValue("The parameter DBSubnetGroupName must not be default: the default DB "
                                         "subnet group exists already.");
  }
  auto description = p.Str("DBSubnetGroupDescription");
  if (!description || description->empty()) {
    return Status::InvalidParameterValue(
        "The parameter DBSubnetGroupDescription must be provided and must not be blank.");
  }
  AP_ASSIGN_OR_RETURN(auto subnets, ReadSubnets(ctx, p));
  if (tags.size() > kMaxTags) {
    return Status(400, "TagQuotaPerResourceExceeded", "A resource can have at most 50 tags.");
  }
  if (ctx.store->Get(kind::kDbSubnetGroup, name)) {
    return Status(400, "DBSubnetGroupAlreadyExists", "The DB subnet group '" + name + "' already exists.");
  }
  if (ctx.store->Count(kind::kDbSubnetGroup) >= kMaxSubnetGroups) {
    return Status(400, "DBSubnetGroupQuotaExceeded",
                  "DB subnet group quota exceeded: this region allows at most " + std::to_string(kMaxSubnetGroups) +
                      " DB subnet groups.");
  }
  Json group = {{"DBSubnetGroupName", name},
                {"DBSubnetGroupDescription", *description},
                {"SubnetIds", subnets},
                {"Tags", tags}};
  AP_RETURN_IF_ERROR(ctx.store->Commit({{kind::kDbSubnetGroup, name, group, 0}}));
  return Json{{"DBSubnetGroup", GroupXml(ctx, group)}};
}

Result<Json> DescribeDbSubnetGroups(const RegionContext& ctx, const Params& p) {
  auto max = p.Int("MaxRecords");
  if (!max.ok()) return Status::InvalidParameterValue("Invalid value for parameter MaxRecords.");
  if (*max && (**max < kMinRecords || **max > kMaxRecords)) {
    return MaxRecordsOutOfRange(**max, kMinRecords, kMaxRecords);
  }
  const size_t limit = static_cast<size_t>(max->value_or(kMaxRecords));
  size_t offset = 0;
  if (auto marker = p.Str("Marker"); marker && !marker->empty()) {
    auto decoded = DecodePageToken("DBSubnetGroups", *marker);
    if (!decoded) return Status::InvalidParameterValue("Invalid Marker: " + *marker);
    offset = static_cast<size_t>(*decoded);
  }
  Json all = Json::array();
  if (auto name = p.Str("DBSubnetGroupName"); name && !name->empty()) {
    AP_ASSIGN_OR_RETURN(auto group, LoadDbSubnetGroup(ctx, *name));
    all.push_back(GroupXml(ctx, group));
  } else {
    all.push_back(GroupXml(ctx, DefaultGroup(ctx)));
    for (const auto& doc : ctx.store->List(kind::kDbSubnetGroup)) all.push_back(GroupXml(ctx, *doc));
  }
  Json out = Json::object();
  Json page = Json::array();
  for (size_t i = offset; i < all.size() && page.size() < limit; ++i) page.push_back(std::move(all[i]));
  if (offset + limit < all.size()) out["Marker"] = EncodePageToken("DBSubnetGroups", offset + limit);
  out["DBSubnetGroups"] = std::move(page);
  return out;
}

Result<Json> ModifyDbSubnetGroup(RegionContext& ctx, const Params& p) {
  AP_ASSIGN_OR_RETURN(auto name, ReadName(p));
  AP_ASSIGN_OR_RETURN(auto subnets, ReadSubnets(ctx, p));
  auto description = p.Str("DBSubnetGroupDescription");
  if (name == kDefaultSubnetGroup) {
    return Status::InvalidParameterValue("The default DB subnet group cannot be modified.");
  }
  auto doc = ctx.store->Get(kind::kDbSubnetGroup, name);
  if (!doc) return NotFound(name);
  Json group = *doc;
  // A zone a DB instance of the group runs in must keep a subnet.
  Json wanted = group;
  wanted["SubnetIds"] = subnets;
  const auto zones = SubnetGroupZones(ctx, wanted);
  for (const auto& db : InstancesUsing(ctx, name)) {
    for (const char* field : {"AvailabilityZone", "SecondaryAvailabilityZone"}) {
      const std::string az = db.value(field, std::string());
      if (az.empty() || std::find(zones.begin(), zones.end(), az) != zones.end()) continue;
      std::string removed;
      for (const auto& id : group["SubnetIds"]) {
        if (ec2::SubnetZone(*ctx.catalog, id.get<std::string>()) == az) removed = id;
      }
      return Status(400, "SubnetAlreadyInUse", "Some of the subnets to be deleted are currently in use: " + removed);
    }
  }
  group["SubnetIds"] = subnets;
  if (description && !description->empty()) group["DBSubnetGroupDescription"] = *description;
  AP_RETURN_IF_ERROR(ctx.store->Commit({{kind::kDbSubnetGroup, name, group, std::nullopt}}));
  return Json{{"DBSubnetGroup", GroupXml(ctx, group)}};
}

Result<Json> DeleteDbSubnetGroup(RegionContext& ctx, const Params& p) {
  AP_ASSIGN_OR_RETURN(auto name, ReadName(p));
  if (name == kDefaultSubnetGroup) {
    return InvalidState("Cannot delete the default DB subnet group.");
  }
  if (!ctx.store->Get(kind::kDbSubnetGroup, name)) return NotFound(name);
  auto users = InstancesUsing(ctx, name);
  if (!users.empty()) {
    return InvalidState("Cannot delete the subnet group '" + name + "' because at least one database instance: " +
                        users.front()["DBInstanceIdentifier"].get<std::string>() + " is still using it.");
  }
  AP_RETURN_IF_ERROR(ctx.store->Commit({{kind::kDbSubnetGroup, name, std::nullopt, std::nullopt}}));
  return Json::object();
}

std::optional<Result<Json>> AddSubnetGroupTags(RegionContext& ctx, const std::string& arn, const Json& tags) {
  auto found = GroupByArn(ctx, arn);
  if (!found) return std::nullopt;
  if (!found->ok()) return Result<Json>(found->status());
  Json group = **found;
  if (group["DBSubnetGroupName"] == kDefaultSubnetGroup) {
    return Result<Json>(Status::InvalidParameterValue("The default DB subnet group cannot be tagged."));
  }
  Json& existing = group["Tags"];
  for (const auto& t : tags) {
    auto it = std::find_if(existing.begin(), existing.end(), [&](const Json& e) { return e["Key"] == t["Key"]; });
    if (it == existing.end()) existing.push_back(t);
    else (*it)["Value"] = t["Value"];
  }
  if (existing.size() > kMaxTags) {
    return Result<Json>(Status(400, "TagQuotaPerResourceExceeded", "A resource can have at most 50 tags."));
  }
  const std::string name = group["DBSubnetGroupName"];
  if (auto st = ctx.store->Commit({{kind::kDbSubnetGroup, name, group, std::nullopt}}); !st.ok()) {
    return Result<Json>(st);
  }
  return Result<Json>(Json());
}

std::optional<Result<Json>> ListSubnetGroupTags(const RegionContext& ctx, const std::string& arn) {
  auto found = GroupByArn(ctx, arn);
  if (!found) return std::nullopt;
  if (!found->ok()) return Result<Json>(found->status());
  return Result<Json>(Json{{"TagList", (**found).value("Tags", Json::array())}});
}

std::optional<Result<Json>> RemoveSubnetGroupTags(RegionContext& ctx, const std::string& arn,
                                                  const std::vector<std::string>& keys) {
  auto found = GroupByArn(ctx, arn);
  if (!found) return std::nullopt;
  if (!found->ok()) return Result<Json>(found->status());
  Json group = **found;
  if (group["DBSubnetGroupName"] == kDefaultSubnetGroup) return Result<Json>(Json());
  Json kept = Json::array();
  for (const auto& t : group["Tags"]) {
    if (std::find(keys.begin(), keys.end(), t["Key"].get<std::string>()) == keys.end()) kept.push_back(t);
  }
  group["Tags"] = std::move(kept);
  const std::string name = group["DBSubnetGroupName"];
  if (auto st = ctx.store->Commit({{kind::kDbSubnetGroup, name, group, std::nullopt}}); !st.ok()) {
    return Result<Json>(st);
  }
  return Result<Json>(Json());
}

}  // namespace autopipe::rds

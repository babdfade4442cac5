#include "elasticache/elasticache_service.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <filesystem>
#include <map>
#include <memory>
#include <set>

#include "api/page_token.h"
#include "common/time_util.h"
#include "ec2/instances.h"
#include "ec2/vpc.h"
#include "elasticache/cache_subnet_groups.h"
#include "elasticache/replication_groups.h"
#include "process/supervisor.h"

namespace autopipe {
namespace {

using namespace elasticache;  // NOLINT(build/namespaces): this file is the module's API

constexpr char kNamespace[] = "http://elasticache.amazonaws.com/doc/2015-02-02/";
constexpr size_t kMaxTags = 50;
constexpr size_t kTestFailoversPerDay = 15;

Status RgNotFound(const std::string& id) {
  return Status(404, "ReplicationGroupNotFoundFault", "ReplicationGroup " + id + " not found.");
}

Status InvalidCombination(const std::string& message) { return Status(400, "InvalidParameterCombination", message); }

Status InvalidRgState(const std::string& message) { return Status(400, "InvalidReplicationGroupState", message); }

Status Missing(const std::string& name) {
  return Status::MissingParameter("The request must contain the parameter " + name + ".");
}

Result<int64_t> IntParam(const Params& p, const std::string& name, int64_t fallback, int64_t lo, int64_t hi,
                         const std::string& range_message) {
  auto v = p.Int(name);
  if (!v.ok()) return v.status();
  if (!*v) return fallback;
  if (**v < lo || **v > hi) {
    // An empty message: ElastiCache's MaxRecords wording (elasticache/cache_subnet_groups.h).
    if (range_message.empty()) return MaxRecordsOutOfRange(lo, hi);
    return Status::InvalidParameterValue(range_message);
  }
  return **v;
}

// SecurityGroupIds (member SecurityGroupId): sg- and 8 or 17 hex digits each, duplicates dropped; nullopt when
// the request has none. Recorded and shown (DescribeCacheClusters' SecurityGroups), not enforced (ec2/vpc.h).
Result<std::optional<Json>> ReadSecurityGroupIds(const Params& p) {
  const auto ids = p.List("SecurityGroupIds", "SecurityGroupId");
  if (ids.empty()) return std::optional<Json>();
  Json out = Json::array();
  for (const auto& id : ids) {
    const std::string hex = id.size() > 3 ? id.substr(3) : "";
    const bool valid = id.rfind("sg-", 0) == 0 && (hex.size() == 8 || hex.size() == 17) &&
                       std::all_of(hex.begin(), hex.end(), [](unsigned char c) { return std::isxdigit(c); });
    if (!valid) return Status::InvalidParameterValue("Invalid security group id " + id + ".");
    if (std::find(out.begin(), out.end(), id) == out.end()) out.push_back(id);
  }
  return std::optional<Json>(std::move(out));
}

Json EndpointJson(const std::string& address, int port) { return Json{{"Address", address}, {"Port", port}}; }

// MaxRecords (20-100, default 100) and Marker paging over a whole rendered list: {"Marker"?, list: page}.
Result<Json> Paged(const Params& p, const char* list, Json items) {
  AP_ASSIGN_OR_RETURN(int64_t max, IntParam(p, "MaxRecords", 100, 20, 100, ""));
  size_t offset = 0;
  if (auto marker = p.Str("Marker")) {
    auto decoded = DecodePageToken(list, *marker);
    if (!decoded) return Status::InvalidParameterValue("Invalid Marker: " + *marker);
    offset = static_cast<size_t>(*decoded);
  }
  Json page = Json::array();
  for (size_t i = offset; i < items.size() && page.size() < static_cast<size_t>(max); ++i) {
    page.push_back(std::move(items[i]));
  }
  Json result = Json::object();
  if (offset + page.size() < items.size()) result["Marker"] = EncodePageToken(list, offset + page.size());
  result[list] = std::move(page);
  return result;
}

// ---- rendering ----------------------------------------------------------------------------------------------------

std::map<std::string, Json> NodesOf(const RegionContext& ctx, const Json& rg) {
  std::map<std::string, Json> nodes;
  for (const auto& ng : rg["NodeGroups"]) {
    for (const auto& id : ng["Members"]) {
      if (auto doc = ctx.store->Get(kind::kCacheNode, id)) nodes[id] = *doc;
    }
  }
  return nodes;
}

std::string NodeGroupStatus(const Json& rg) {
  const std::string s = rg["Status"];
  return s == rg_status::kAvailable ? "available" : s;
}

// What Describe says about encryption and AUTH (never a token).
void AddEncryption(const Json& rg, JsonObject& out) {
  const bool transit = rg.value("TransitEncryptionEnabled", false);
  const bool auth = rg.contains("AuthTokens") && !rg["AuthTokens"].empty();
  out.Add("AuthTokenEnabled", auth);
  if (rg.contains("AuthTokenLastModifiedDate")) {
    out.Add("AuthTokenLastModifiedDate", IsoTimeMillis(rg["AuthTokenLastModifiedDate"].get<int64_t>()));
  }
  out.Add("TransitEncryptionEnabled", transit);
  if (transit) out.Add("TransitEncryptionMode", rg.value("TransitEncryptionMode", std::string("required")));
  out.Add("AtRestEncryptionEnabled", rg.value("AtRestEncryptionEnabled", false));
}

Json RenderReplicationGroup(const RegionContext& ctx, const Json& rg) {
  const bool cluster = rg["ClusterEnabled"].get<bool>();
  const int port = rg["Port"].get<int>();
  const auto nodes = NodesOf(ctx, rg);
  Json members = Json::array();
  Json groups = Json::array();
  for (const auto& ng : rg["NodeGroups"]) {
    Json group_members = Json::array();
    for (const auto& id : ng["Members"]) {
      members.push_back(id);
      auto it = nodes.find(id);
      if (it == nodes.end()) continue;
      const Json& node = it->second;
      JsonObject m;
      m.Add("CacheClusterId", id).Add("CacheNodeId", "0001");
      m.Add("ReadEndpoint", EndpointJson(node["Address"], port));
      m.Add("PreferredAvailabilityZone", node["AvailabilityZone"]);
      if (!cluster) m.Add("CurrentRole", ng["Primary"] == id ? "primary" : "replica");
      group_members.push_back(m.Take());
    }
    JsonObject g;
    g.Add("NodeGroupId", ng["NodeGroupId"]).Add("Status", NodeGroupStatus(rg));
    if (!cluster) {
      g.Add("PrimaryEndpoint", EndpointJson(EndpointAddress(ctx, rg["AddressIndex"], false), port));
      g.Add("ReaderEndpoint", EndpointJson(EndpointAddress(ctx, rg["AddressIndex"], true), port));
    } else {
      g.Add("Slots", ng["Slots"]);
    }
    g.Add("NodeGroupMembers", std::move(group_members));
    groups.push_back(g.Take());
  }
  JsonObject out;
  out.Add("ReplicationGroupId", rg["ReplicationGroupId"])
      .Add("Description", rg["Description"])
      .Add("Status", rg["Status"])
      .Add("PendingModifiedValues", Json::object())
      .Add("MemberClusters", std::move(members))
      .Add("NodeGroups", std::move(groups))
      .Add("AutomaticFailover", rg["AutomaticFailoverEnabled"].get<bool>() ? "enabled" : "disabled")
      .Add("MultiAZ", rg["MultiAZEnabled"].get<bool>() ? "enabled" : "disabled");
  if (cluster) {
    out.Add("ConfigurationEndpoint", EndpointJson(EndpointAddress(ctx, rg["AddressIndex"], false), port));
  }
  out.Add("SnapshotRetentionLimit", rg["SnapshotRetentionLimit"])
      .Add("SnapshotWindow", rg["SnapshotWindow"])
      .Add("ClusterEnabled", cluster)
      .Add("CacheNodeType", rg["CacheNodeType"]);
  AddEncryption(rg, out);
  out.Add("ARN", rg["ARN"])
      .Add("LogDeliveryConfigurations", Json::array())
      .Add("ReplicationGroupCreateTime", IsoTimeMillis(rg["CreateTime"].get<int64_t>()))
      .Add("DataTiering", "disabled")
      .Add("AutoMinorVersionUpgrade", true)
      .Add("NetworkType", "ipv4")
      .Add("IpDiscovery", "ipv4")
      .Add("ClusterMode", cluster ? "enabled" : "disabled")
      .Add("Engine", "redis");
  return out.Take();
}

std::string CacheClusterStatus(const Json& rg, const Json& node) {
  const std::string s = node["Status"];
  if (rg["Status"] == rg_status::kDeleting) return "deleting";
  bool member = false;
  for (const auto& ng : rg["NodeGroups"]) {
    for (const auto& m : ng["Members"]) member = member || m == node["CacheClusterId"];
  }
  if (!member) return "deleting";  // DecreaseReplicaCount removed it; the controller is stopping it
  if (s == node_status::kRecovering) return "modifying";
  return s;
}

Json RenderCacheCluster(const RegionContext& ctx, const Json& rg, const Json& node, bool show_nodes) {
  const int port = rg["Port"].get<int>();
  JsonObject c;
  c.Add("CacheClusterId", node["CacheClusterId"])
      .Add("ClientDownloadLandingPage", "https://console.aws.amazon.com/elasticache/home#client-download:")
      .Add("CacheNodeType", rg["CacheNodeType"])
      .Add("Engine", "redis")
      .Add("EngineVersion", rg["EngineVersion"])
      .Add("CacheClusterStatus", CacheClusterStatus(rg, node))
      .Add("NumCacheNodes", 1)
      .Add("PreferredAvailabilityZone", node["AvailabilityZone"])
      .Add("CacheClusterCreateTime", IsoTimeMillis(node["CreateTime"].get<int64_t>()))
      .Add("PreferredMaintenanceWindow", "sun:08:00-sun:09:00")
      .Add("PendingModifiedValues", Json::object())
      .Add("CacheSecurityGroups", Json::array())
      .Add("CacheParameterGroup", Json{{"CacheParameterGroupName", rg["CacheParameterGroupName"]},
                                       {"ParameterApplyStatus", "in-sync"},
                                       {"CacheNodeIdsToReboot", Json::array()}})
      .Add("CacheSubnetGroupName", rg.value("CacheSubnetGroupName", std::string(kDefaultCacheSubnetGroup)));
  if (show_nodes) {
    const std::string s = node["Status"];
    Json cache_node = {{"CacheNodeId", "0001"},
                       {"CacheNodeStatus", s == node_status::kRecovering ? "rebooting" : s},
                       {"CacheNodeCreateTime", IsoTimeMillis(node["CreateTime"].get<int64_t>())},
                       {"Endpoint", EndpointJson(node["Address"], port)},
                       {"ParameterGroupStatus", "in-sync"},
                       {"CustomerAvailabilityZone", node["AvailabilityZone"]}};
    c.Add("CacheNodes", Json::array({std::move(cache_node)}));
  }
  c.Add("AutoMinorVersionUpgrade", true)
      .Add("SecurityGroups", [&] {
        // The groups the replication group was given, else the VPC's default group (as for any VPC resource).
        Json groups = Json::array();
        const Json ids = rg.value("SecurityGroupIds", Json::array({ec2::DefaultSecurityGroupId(*ctx.catalog)}));
        for (const auto& id : ids) groups.push_back(Json{{"SecurityGroupId", id}, {"Status", "active"}});
        return groups;
      }())
      .Add("ReplicationGroupId", rg["ReplicationGroupId"])
      .Add("SnapshotRetentionLimit", rg["SnapshotRetentionLimit"])
      .Add("SnapshotWindow", rg["SnapshotWindow"]);
  AddEncryption(rg, c);
  c.Add("ARN", ctx.Arn("elasticache", "cluster:" + node["CacheClusterId"].get<std::string>()))
      .Add("ReplicationGroupLogDeliveryEnabled", false)
      .Add("LogDeliveryConfigurations", Json::array())
      .Add("NetworkType", "ipv4")
      .Add("IpDiscovery", "ipv4");
  return c.Take();
}

Status SnapshotNotFound(const std::string& name) {
  return Status(404, "SnapshotNotFoundFault", "Snapshot " + name + " not found.");
}

std::string CacheSizeOf(const Json& ns) {
  const int64_t bytes = ns.value("Bytes", int64_t{0});
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3f MB", static_cast<double>(bytes) / (1024.0 * 1024.0));
  return buf;
}

Json RenderSnapshot(const Json& snap, bool show_node_group_config) {
  const bool cluster = snap.value("ClusterEnabled", true);
  Json nodes = Json::array();
  for (const auto& ns : snap["NodeSnapshots"]) {
    JsonObject n;
    if (!cluster && ns.contains("CacheClusterId")) n.Add("CacheClusterId", ns["CacheClusterId"]);
    n.Add("NodeGroupId", ns["NodeGroupId"]).Add("CacheNodeId", "0001");
    if (show_node_group_config) {
      n.Add("NodeGroupConfiguration", Json{{"NodeGroupId", ns["NodeGroupId"]},
                                           {"Slots", ns["Slots"]},
                                           {"ReplicaCount", ns["ReplicaCount"]},
                                           {"PrimaryAvailabilityZone", ns["PrimaryAvailabilityZone"]},
                                           {"ReplicaAvailabilityZones", ns["ReplicaAvailabilityZones"]}});
    }
    n.Add("CacheSize", CacheSizeOf(ns));
    n.Add("CacheNodeCreateTime", IsoTimeMillis(snap["CreateTime"].get<int64_t>()));
    if (ns.contains("SnapshotCreateTime")) {
      n.Add("SnapshotCreateTime", IsoTimeMillis(ns["SnapshotCreateTime"].get<int64_t>()));
    }
    nodes.push_back(n.Take());
  }
  JsonObject out;
  out.Add("SnapshotName", snap["SnapshotName"])
      .Add("ReplicationGroupId", snap["ReplicationGroupId"])
      .Add("ReplicationGroupDescription", snap["ReplicationGroupDescription"])
      .Add("SnapshotStatus", snap["SnapshotStatus"])
      .Add("SnapshotSource", snap["SnapshotSource"])
      .Add("CacheNodeType", snap["CacheNodeType"])
      .Add("Engine", "redis")
      .Add("EngineVersion", snap["EngineVersion"])
      .Add("PreferredMaintenanceWindow", "sun:06:00-sun:07:00")
      .Add("Port", snap["Port"])
      .Add("CacheParameterGroupName", snap["CacheParameterGroupName"])
      .Add("CacheSubnetGroupName", snap.value("CacheSubnetGroupName", std::string(kDefaultCacheSubnetGroup)))
      .Add("AutoMinorVersionUpgrade", true)
      .Add("SnapshotRetentionLimit", snap["SnapshotRetentionLimit"])
      .Add("SnapshotWindow", snap["SnapshotWindow"])
      .Add("NumNodeGroups", snap["NodeSnapshots"].size())
      .Add("AutomaticFailover", snap["AutomaticFailoverEnabled"].get<bool>() ? "enabled" : "disabled")
      .Add("NodeSnapshots", std::move(nodes))
      .Add("ARN", snap["ARN"])
      .Add("DataTiering", "disabled");
  return out.Take();
}

// ---- the service --------------------------------------------------------------------------------------------------

class ElastiCacheService {
 public:
  explicit ElastiCacheService(RegionContext* ctx) : ctx_(ctx) {}

  Result<Json> CreateReplicationGroup(const Params& p);
  Result<Json> DescribeReplicationGroups(const Params& p);
  Result<Json> DeleteReplicationGroup(const Params& p);
  Result<Json> DescribeCacheClusters(const Params& p);
  Result<Json> TestFailover(const Params& p);
  Result<Json> DescribeEvents(const Params& p);
  Result<Json> DescribeCacheParameterGroups(const Params& p);
  Result<Json> DescribeCacheEngineVersions(const Params& p);
  Result<Json> ModifyReplicationGroup(const Params& p);
  Result<Json> IncreaseReplicaCount(const Params& p);
  Result<Json> DecreaseReplicaCount(const Params& p);
  Result<Json> AddTagsToResource(const Params& p);
  Result<Json> ListTagsForResource(const Params& p);
  Result<Json> RemoveTagsFromResource(const Params& p);
  Result<Json> CreateSnapshot(const Params& p);
  Result<Json> DescribeSnapshots(const Params& p);
  Result<Json> DeleteSnapshot(const Params& p);
  Result<Json> CopySnapshot(const Params& p);
  Result<Json> DescribeCacheParameters(const Params& p);
  Result<Json> ModifyReplicationGroupShardConfiguration(const Params& p);
  // Cache subnet groups: elasticache/cache_subnet_groups.h validates, records and renders.
  Result<Json> CreateCacheSubnetGroup(const Params& p) {
    Json tags = Json::array();
    for (const auto& t : p.StructList("Tags", "Tag")) {
      auto key = t.find("Key");
      if (key == t.end()) continue;
      auto value = t.find("Value");
      tags.push_back({{"Key", key->second}, {"Value", value == t.end() ? "" : value->second}});
    }
    return elasticache::CreateCacheSubnetGroup(*ctx_, p, tags);
  }
  Result<Json> DescribeCacheSubnetGroups(const Params& p) { return elasticache::DescribeCacheSubnetGroups(*ctx_, p); }
  Result<Json> ModifyCacheSubnetGroup(const Params& p) { return elasticache::ModifyCacheSubnetGroup(*ctx_, p); }
  Result<Json> DeleteCacheSubnetGroup(const Params& p) { return elasticache::DeleteCacheSubnetGroup(*ctx_, p); }

 private:
  // A new snapshot of `rg` (checks the name is free), and the writes that record it.
  Result<Json> NewSnapshot(const Json& rg, const std::string& name, const std::string& source);
  Result<Json> LoadGroup(const std::string& id) const {
    auto doc = ctx_->store->Get(kind::kCacheReplicationGroup, Lower(id));
    if (!doc) return RgNotFound(id);
    return *doc;
  }
  Status Save(const std::vector<StoreWrite>& writes) { return ctx_->store->Commit(writes); }
  Result<Json> LoadAvailableGroup(const Params& p);
  // The shards' new replica counts (and preferred AZs) of an Increase/DecreaseReplicaCount call.
  struct ShardChange {
    std::string node_group_id;
    int64_t count = 0;
    std::vector<std::string> azs;
  };
  Result<std::vector<ShardChange>> ReadReplicaChanges(const Params& p, const Json& rg);
  // ModifyReplicationGroup AuthToken / AuthTokenUpdateStrategy (ROTATE, SET, DELETE): the new token set into
  // `updated`, the group modifying until every node holds it.
  Status ChangeAuthToken(const Params& p, const Json& rg, Json* updated);
  // The resource a tagging call's ResourceName names: a replication group or a cache subnet group.
  struct Tagged {
    std::string kind;
    std::string id;
    Json doc;
  };
  Result<Tagged> LoadTagged(const Params& p);

  RegionContext* ctx_;
};

// The shards a CreateReplicationGroup call asks for, validated (§3).
struct CreatePlan {
  bool cluster = false;
  std::vector<ShardPlan> shards;
  bool automatic_failover = false;
  bool multi_az = false;
};

// `group` is the cache subnet group (elasticache/cache_subnet_groups.h): every node goes to one of its zones.
Result<CreatePlan> PlanShards(const RegionContext& ctx, const Params& p, bool cluster, const Json& group) {
  CreatePlan plan;
  plan.cluster = cluster;
  const std::vector<std::string> azs = CacheSubnetGroupZones(ctx, group);
  const std::string group_name = group["CacheSubnetGroupName"];
  auto check_az = [&](const std::string& az) -> Status { return CheckZoneInGroup(ctx, group_name, azs, az); };

  const auto configs = p.StructList("NodeGroupConfiguration", "NodeGroupConfiguration");
  const bool has_groups = p.Has("NumNodeGroups");
  AP_ASSIGN_OR_RETURN(int64_t num_groups,
                      IntParam(p, "NumNodeGroups", configs.empty() ? 1 : static_cast<int64_t>(configs.size()), 1,
                               kMaxNodeGroups, "The number of node groups must be between 1 and 90."));
  const bool has_replicas = p.Has("ReplicasPerNodeGroup");
  AP_ASSIGN_OR_RETURN(int64_t replicas,
                      IntParam(p, "ReplicasPerNodeGroup", 0, 0, kMaxReplicas,
                               "The number of replicas per node group must be within 0 and 5."));
  if (!cluster && (num_groups > 1 || configs.size() > 1)) {
    return InvalidCombination("Cluster mode should be enabled in parameter group, but found it is disabled.");
  }
  if (!configs.empty() && has_groups && static_cast<int64_t>(configs.size()) != num_groups) {
    return InvalidCombination("NumNodeGroups (" + std::to_string(num_groups) +
                              ") does not match the number of NodeGroupConfiguration entries (" +
                              std::to_string(configs.size()) + ").");
  }

  if (!cluster) {
    // One shard: NumCacheClusters, else the replicas of ReplicasPerNodeGroup or the one NodeGroupConfiguration.
    const auto preferred = p.List("PreferredCacheClusterAZs", "AvailabilityZone");
    if (p.Has("NumCacheClusters") && (has_replicas || !configs.empty())) {
      return InvalidCombination("NumCacheClusters cannot be combined with ReplicasPerNodeGroup or "
                                "NodeGroupConfiguration.");
    }
    int64_t clusters = replicas + 1;
    if (!configs.empty()) {
      Params c(configs[0], WireProtocol::kQuery);
      AP_ASSIGN_OR_RETURN(int64_t rc, IntParam(c, "ReplicaCount", replicas, 0, kMaxReplicas,
                                               "The number of replicas per node group must be within 0 and 5."));
      clusters = rc + 1;
    }
    AP_ASSIGN_OR_RETURN(clusters, IntParam(p, "NumCacheClusters", clusters, 1, kMaxReplicas + 1,
                                           "The number of cache clusters must be between 1 and 6."));
    if (!preferred.empty() && static_cast<int64_t>(preferred.size()) != clusters) {
      return InvalidCombination("The number of PreferredCacheClusterAZs (" + std::to_string(preferred.size()) +
                                ") must equal the number of cache clusters (" + std::to_string(clusters) + ").");
    }
    ShardPlan s;
    s.node_group_id = "0001";
    s.slots = {0, kSlotCount - 1};
    if (!preferred.empty()) {
      for (const auto& az : preferred) AP_RETURN_IF_ERROR(check_az(az));
      s.primary_az = preferred[0];
      s.replica_azs.assign(preferred.begin() + 1, preferred.end());
    } else {
      s.primary_az = DefaultPrimaryAz(azs, 0);
      s.replica_azs = DefaultReplicaAzs(azs, s.primary_az, static_cast<int>(clusters - 1));
      if (!configs.empty()) {
        Params c(configs[0], WireProtocol::kQuery);
        if (auto az = c.Str("PrimaryAvailabilityZone")) {
          AP_RETURN_IF_ERROR(check_az(*az));
          s.primary_az = *az;
        }
        auto r = c.List("ReplicaAvailabilityZones", "AvailabilityZone");
        if (!r.empty()) {
          for (const auto& az : r) AP_RETURN_IF_ERROR(check_az(az));
          if (static_cast<int64_t>(r.size()) != clusters - 1) {
            return Status::InvalidParameterValue("The number of ReplicaAvailabilityZones must equal ReplicaCount.");
          }
          s.replica_azs = r;
        }
      }
    }
    plan.shards.push_back(std::move(s));
  } else {
    if (p.Has("NumCacheClusters")) {
      return InvalidCombination("NumCacheClusters is not valid for a replication group with cluster mode "
                                "enabled: use NumNodeGroups and ReplicasPerNodeGroup.");
    }
    const std::vector<SlotRange> even = SplitSlots(static_cast<int>(num_groups));
    std::vector<SlotRange> given;
    for (int i = 0; i < num_groups; ++i) {
      ShardPlan s;
      s.node_group_id = NodeGroupIdFor(i);
      s.slots = even[i];
      s.primary_az = DefaultPrimaryAz(azs, i);
      int64_t rc = replicas;
      std::vector<std::string> replica_azs;
      if (i < static_cast<int>(configs.size())) {
        Params c(configs[i], WireProtocol::kQuery);
        if (auto id = c.Str("NodeGroupId")) {
          if (id->size() != 4 || !std::all_of(id->begin(), id->end(), ::isdigit)) {
            return Status::InvalidParameterValue("Invalid NodeGroupId " + *id + ": expected 4 digits (0001-0090).");
          }
          s.node_group_id = *id;
        }
        if (auto slots = c.Str("Slots")) {
          AP_ASSIGN_OR_RETURN(s.slots, ParseSlots(*slots));
          given.push_back(s.slots);
        }
        AP_ASSIGN_OR_RETURN(rc, IntParam(c, "ReplicaCount", replicas, 0, kMaxReplicas,
                                         "The number of replicas per node group must be within 0 and 5."));
        if (auto az = c.Str("PrimaryAvailabilityZone")) {
          AP_RETURN_IF_ERROR(check_az(*az));
          s.primary_az = *az;
        }
        replica_azs = c.List("ReplicaAvailabilityZones", "AvailabilityZone");
        for (const auto& az : replica_azs) AP_RETURN_IF_ERROR(check_az(az));
        if (!replica_azs.empty() && static_cast<int64_t>(replica_azs.size()) != rc) {
          return Status::InvalidParameterValue("The number of ReplicaAvailabilityZones (" +
                                               std::to_string(replica_azs.size()) + ") must equal ReplicaCount (" +
                                               std::to_string(rc) + ") in node group " + s.node_group_id + ".");
        }
      }
      s.replica_azs = replica_azs.empty() ? DefaultReplicaAzs(azs, s.primary_az, static_cast<int>(rc)) : replica_azs;
      plan.shards.push_back(std::move(s));
    }
    if (!given.empty()) {
      if (given.size() != plan.shards.size()) {
        return Status::InvalidParameterValue("Slots must be given for every node group or for none.");
      }
      AP_RETURN_IF_ERROR(CheckSlotCoverage(given));
    }
    std::set<std::string> ids;
    for (const auto& s : plan.shards) {
      if (!ids.insert(s.node_group_id).second) {
        return Status::InvalidParameterValue("Duplicate NodeGroupId " + s.node_group_id + ".");
      }
    }
  }

  size_t nodes = 0;
  for (const auto& s : plan.shards) nodes += 1 + s.replica_azs.size();
  if (nodes > static_cast<size_t>(kMaxNodesPerGroup)) {
    return Status(400, "NodeQuotaForClusterExceeded", "The request would create " + std::to_string(nodes) +
                                                          " nodes: a replication group has at most 500.");
  }

  auto failover = p.Bool("AutomaticFailoverEnabled");
  if (!failover.ok()) return failover.status();
  auto multi_az = p.Bool("MultiAZEnabled");
  if (!multi_az.ok()) return multi_az.status();
  if (cluster) {
    if (*failover && !**failover) {
      return Status::InvalidParameterValue(
          "Redis with cluster mode enabled cannot be created with auto failover turned off.");
    }
    plan.automatic_failover = true;
  } else {
    plan.automatic_failover = failover->value_or(false);
    if (plan.automatic_failover && nodes < 2) {
      return InvalidCombination(
          "When using automatic failover, there must be at least 2 cache clusters in the replication group.");
    }
  }
  if (multi_az->value_or(false) && !plan.automatic_failover) {
    return InvalidCombination("Multi-AZ can only be enabled when automatic failover is enabled.");
  }
  plan.multi_az = multi_az->value_or(false);  // MultiAZEnabled defaults to false, as on AWS
  if (*multi_az && **multi_az && !EveryShardSpansAzs(plan.shards)) {
    return InvalidCombination("Multi-AZ needs every node group to have a replica in an Availability Zone other "
                              "than its primary's.");
  }
  return plan;
}

Result<Json> ElastiCacheService::CreateReplicationGroup(const Params& p) {
  auto id_in = p.Str("ReplicationGroupId");
  if (!id_in) return Missing("ReplicationGroupId");
  auto description = p.Str("ReplicationGroupDescription");
  if (!description) return Missing("ReplicationGroupDescription");
  AP_RETURN_IF_ERROR(ValidateReplicationGroupId(*id_in));
  const std::string id = Lower(*id_in);

  const std::string engine = Lower(p.Str("Engine").value_or("redis"));
  if (engine != "redis") {
    return Status::InvalidParameterValue("Engine " + engine + " is not supported by this region: only redis "
                                         "replication groups are.");
  }
  auto node_type = p.Str("CacheNodeType");
  if (!node_type || node_type->empty()) {
    return Status::InvalidParameterValue("The parameter CacheNodeType must be provided and must not be blank.");
  }
  if (!IsKnownNodeType(*node_type)) {
    return Status::InvalidParameterValue("Invalid CacheNodeType: " + *node_type + ".");
  }
  if (p.Has("PrimaryClusterId") || p.Has("GlobalReplicationGroupId")) {
    return InvalidCombination("PrimaryClusterId and GlobalReplicationGroupId are not supported by this region.");
  }
  if (p.Has("SnapshotArns.SnapshotArn.1")) {
    return Status::InvalidParameterValue("SnapshotArns (RDB files in S3) are not supported by this region: use "
                                         "SnapshotName.");
  }
  std::optional<Json> seed;
  if (auto name = p.Str("SnapshotName")) {
    seed = ctx_->store->Get(kind::kCacheSnapshot, *name);
    if (!seed) return SnapshotNotFound(*name);
    if ((*seed)["SnapshotStatus"] != snapshot_status::kAvailable) {
      return Status(400, "InvalidSnapshotState", "Snapshot " + *name + " is not in available state.");
    }
  }
  auto transit_in = p.Bool("TransitEncryptionEnabled");
  if (!transit_in.ok()) return transit_in.status();
  const bool transit = transit_in->value_or(false);
  auto at_rest = p.Bool("AtRestEncryptionEnabled");
  if (!at_rest.ok()) return at_rest.status();
  if (auto mode = p.Str("TransitEncryptionMode")) {
    const std::string m = Lower(*mode);
    if (m != "required" && m != "preferred") {
      return Status::InvalidParameterValue("Invalid TransitEncryptionMode " + *mode +
                                           ": valid values are preferred and required.");
    }
    if (!transit) {
      return InvalidCombination("TransitEncryptionMode can be specified only when TransitEncryptionEnabled is "
                                "true.");
    }
    if (m == "preferred") {
      // Redis cannot serve TLS and plain connections on one port, which is what preferred means on AWS.
      return Status::InvalidParameterValue("TransitEncryptionMode preferred is not supported by this region: "
                                           "use required.");
    }
  }
  std::optional<std::string> auth_token = p.Str("AuthToken");
  if (auth_token) {
    if (!transit) {
      return Status::InvalidParameterValue("The AUTH token is only supported when encryption-in-transit is "
                                           "enabled");
    }
    AP_RETURN_IF_ERROR(ValidateAuthToken(*auth_token));
  }

  // Cluster mode: a *.cluster.on parameter group, or ClusterMode=enabled.
  const std::string mode = Lower(p.Str("ClusterMode").value_or(""));
  if (!mode.empty() && mode != "enabled" && mode != "disabled" && mode != "compatible") {
    return Status::InvalidParameterValue("Invalid ClusterMode " + mode + ": valid values are enabled, disabled "
                                         "and compatible.");
  }
  const std::string engine_version = p.Str("EngineVersion").value_or("7.0");
  const ParameterGroupInfo* pg = nullptr;
  bool cluster = mode == "enabled";
  if (auto name = p.Str("CacheParameterGroupName")) {
    pg = FindParameterGroup(*name);
    if (!pg) return Status(404, "CacheParameterGroupNotFound", "CacheParameterGroup " + *name + " not found.");
    if (mode == "enabled" && !pg->cluster_enabled) {
      return InvalidCombination("Cluster mode should be enabled in parameter group, but found it is disabled.");
    }
    if (mode == "disabled" && pg->cluster_enabled) {
      return InvalidCombination("Cluster mode should be disabled in parameter group, but found it is enabled.");
    }
    cluster = pg->cluster_enabled;
    if (p.Has("EngineVersion") && DefaultParameterGroupFor(engine_version, cluster) &&
        DefaultParameterGroupFor(engine_version, cluster)->family != pg->family) {
      return InvalidCombination("The parameter group " + pg->name + " (family " + pg->family +
                                ") does not match engine version " + engine_version + ".");
    }
  } else {
    pg = DefaultParameterGroupFor(engine_version, cluster);
  }
  if (!pg) {
    return Status::InvalidParameterValue("Invalid EngineVersion " + engine_version +
                                         ": this region offers redis 5.0, 6.x and 7 (every node runs Redis 7.0).");
  }

  AP_ASSIGN_OR_RETURN(int64_t port, IntParam(p, "Port", kDefaultPort, 1, 65535, "Invalid port."));
  AP_ASSIGN_OR_RETURN(int64_t retention, IntParam(p, "SnapshotRetentionLimit", 0, 0, 35,
                                                  "SnapshotRetentionLimit must be between 0 and 35."));
  if (auto w = p.Str("SnapshotWindow")) AP_RETURN_IF_ERROR(ParseSnapshotWindow(*w).status());
  const auto subnet_group_name = p.Str("CacheSubnetGroupName");
  AP_ASSIGN_OR_RETURN(auto subnet_group,
                      LoadCacheSubnetGroup(*ctx_, subnet_group_name && !subnet_group_name->empty()
                                                      ? *subnet_group_name
                                                      : std::string(kDefaultCacheSubnetGroup)));
  AP_ASSIGN_OR_RETURN(auto plan, PlanShards(*ctx_, p, cluster, subnet_group));
  AP_ASSIGN_OR_RETURN(auto security_groups, ReadSecurityGroupIds(p));
  if (seed) {
    // The snapshot's shards, slot range for slot range: each primary starts with its shard's RDB.
    const Json& shards = (*seed)["NodeSnapshots"];
    if (plan.shards.size() != shards.size() || (*seed).value("ClusterEnabled", true) != plan.cluster) {
      return InvalidCombination("Snapshot " + *p.Str("SnapshotName") + " has " + std::to_string(shards.size()) +
                                " node groups" + ((*seed).value("ClusterEnabled", true) ? "" : " (cluster mode "
                                "disabled)") + "; the new replication group must have the same number and mode.");
    }
    for (size_t i = 0; i < shards.size(); ++i) {
      auto r = ParseSlots(shards[i]["Slots"]);
      if (r.ok()) plan.shards[i].slots = *r;
    }
  }

  Json tags = Json::array();
  for (const auto& t : p.StructList("Tags", "Tag")) {
    auto key = t.find("Key");
    if (key == t.end()) continue;
    auto value = t.find("Value");
    tags.push_back({{"Key", key->second}, {"Value", value == t.end() ? "" : value->second}});
  }
  if (tags.size() > kMaxTags) {
    return Status(400, "TagQuotaPerResourceExceeded", "A resource has at most 50 tags.");
  }

  if (ctx_->store->Get(kind::kCacheReplicationGroup, id)) {
    return Status(400, "ReplicationGroupAlreadyExists", "Replication group " + id + " already exists.");
  }
  auto address_index = FreeAddressIndex(*ctx_);
  if (!address_index) {
    return Status(400, "ClusterQuotaForCustomerExceeded", "This region holds at most 254 replication groups.");
  }

  const int64_t now = ctx_->clock->NowMillis();
  std::vector<StoreWrite> writes;
  Json node_groups = Json::array();
  int member_counter = 0;
  for (const auto& s : plan.shards) {
    std::vector<std::string> azs = {s.primary_az};
    azs.insert(azs.end(), s.replica_azs.begin(), s.replica_azs.end());
    Json members = Json::array();
    for (size_t j = 0; j < azs.size(); ++j) {
      const std::string cluster_id = plan.cluster ? MemberClusterId(id, s.node_group_id, static_cast<int>(j))
                                                  : NonClusterMemberId(id, member_counter);
      ++member_counter;
      if (ctx_->store->Get(kind::kCacheNode, cluster_id)) {
        return Status(400, "CacheClusterAlreadyExists", "Cache cluster " + cluster_id + " already exists.");
      }
      AP_ASSIGN_OR_RETURN(std::string address, AllocatePrivateAddress(*ctx_, azs[j], &writes));
      Json node = {{"CacheClusterId", cluster_id},
                   {"ReplicationGroupId", id},
                   {"NodeGroupId", s.node_group_id},
                   {"CacheNodeId", "0001"},
                   {"AvailabilityZone", azs[j]},
                   {"Address", address},
                   {"Port", port},
                   {"CreateTime", now},
                   {"Status", node_status::kCreating},
                   {"RedisNodeId", ""},
                   {"Generation", 1},
                   {"Pid", 0},
                   {"PidStartTime", 0},
                   {"LaunchToken", NewLaunchToken()}};
      if (seed && j == 0) {
        const Json& ns = (*seed)["NodeSnapshots"][node_groups.size()];
        node["SeedFile"] = SnapshotDir(*ctx_, (*seed)["SnapshotName"]) + "/" + ns["File"].get<std::string>();
        node["SeedSha256"] = ns["Sha256"];
      }
      writes.push_back({kind::kCacheNode, cluster_id, std::move(node), std::nullopt});
      members.push_back(cluster_id);
    }
    node_groups.push_back({{"NodeGroupId", s.node_group_id},
                           {"Slots", FormatSlots(s.slots)},
                           {"Members", members},
                           {"Primary", members[0]}});
  }

  Json rg = {{"ReplicationGroupId", id},
             {"Description", *description},
             {"Status", rg_status::kCreating},
             {"ClusterEnabled", plan.cluster},
             {"AutomaticFailoverEnabled", plan.automatic_failover},
             {"MultiAZEnabled", plan.multi_az},
             {"CacheNodeType", *node_type},
             {"Engine", "redis"},
             {"EngineVersion", p.Str("EngineVersion").value_or(pg->engine_version)},
             {"CacheParameterGroupName", pg->name},
             {"Port", port},
             {"CreateTime", now},
             {"SnapshotRetentionLimit", retention},
             {"SnapshotWindow", p.Str("SnapshotWindow").value_or("05:00-06:00")},
             {"CacheSubnetGroupName", subnet_group["CacheSubnetGroupName"]},
             {"SecurityGroupIds", security_groups.value_or(Json::array({ec2::DefaultSecurityGroupId(*ctx_->catalog)}))},
             {"Tags", tags},
             {"AddressIndex", *address_index},
             {"ARN", ctx_->Arn("elasticache", "replicationgroup:" + id)},
             {"NodeGroups", node_groups},
             {"TransitEncryptionEnabled", transit},
             {"AtRestEncryptionEnabled", at_rest->value_or(false)},
             {"AuthVersion", 0}};
  if (transit) rg["TransitEncryptionMode"] = "required";
  if (auth_token) {
    rg["AuthTokens"] = Json::array({*auth_token});
    rg["AuthTokenLastModifiedDate"] = now;
  }
  writes.push_back({kind::kCacheReplicationGroup, id, rg, 0});
  AP_RETURN_IF_ERROR(Save(writes));
  return Json{{"ReplicationGroup", RenderReplicationGroup(*ctx_, rg)}};
}

Result<Json> ElastiCacheService::DescribeReplicationGroups(const Params& p) {
  Json groups = Json::array();
  if (auto id = p.Str("ReplicationGroupId")) {
    AP_ASSIGN_OR_RETURN(auto rg, LoadGroup(*id));
    groups.push_back(RenderReplicationGroup(*ctx_, rg));
  } else {
    for (const auto& doc : ctx_->store->List(kind::kCacheReplicationGroup)) {
      groups.push_back(RenderReplicationGroup(*ctx_, *doc));
    }
  }
  return Paged(p, "ReplicationGroups", std::move(groups));
}

Result<Json> ElastiCacheService::DeleteReplicationGroup(const Params& p) {
  auto id = p.Str("ReplicationGroupId");
  if (!id) return Missing("ReplicationGroupId");
  AP_ASSIGN_OR_RETURN(auto rg, LoadGroup(*id));
  auto retain = p.Bool("RetainPrimaryCluster");
  if (!retain.ok()) return retain.status();
  if (retain->value_or(false)) {
    return InvalidCombination("RetainPrimaryCluster is not supported by this region.");
  }
  const std::string status = rg["Status"];
  if (status == rg_status::kDeleting) return Json{{"ReplicationGroup", RenderReplicationGroup(*ctx_, rg)}};
  if (status != rg_status::kAvailable) {
    return InvalidRgState("Replication group " + rg["ReplicationGroupId"].get<std::string>() + " has status " +
                          status + " which is not valid for deletion.");
  }
  std::vector<StoreWrite> writes;
  if (auto final_name = p.Str("FinalSnapshotIdentifier")) {
    // Taken by the controller before it stops the nodes.
    AP_ASSIGN_OR_RETURN(Json snap, NewSnapshot(rg, *final_name, "manual"));
    writes.push_back({kind::kCacheSnapshot, *final_name, snap, 0});
  }
  rg["Status"] = rg_status::kDeleting;
  writes.push_back({kind::kCacheReplicationGroup, rg["ReplicationGroupId"], rg, std::nullopt});
  AP_RETURN_IF_ERROR(Save(writes));
  return Json{{"ReplicationGroup", RenderReplicationGroup(*ctx_, rg)}};
}

Result<Json> ElastiCacheService::DescribeCacheClusters(const Params& p) {
  auto show = p.Bool("ShowCacheNodeInfo");
  if (!show.ok()) return show.status();
  const bool show_nodes = show->value_or(false);
  Json clusters = Json::array();
  auto add = [&](const Json& node) {
    auto rg = ctx_->store->Get(kind::kCacheReplicationGroup, node["ReplicationGroupId"]);
    if (rg) clusters.push_back(RenderCacheCluster(*ctx_, *rg, node, show_nodes));
  };
  if (auto id = p.Str("CacheClusterId")) {
    auto node = ctx_->store->Get(kind::kCacheNode, Lower(*id));
    if (!node) return Status(404, "CacheClusterNotFound", "CacheCluster not found: " + *id);
    add(*node);
  } else {
    for (const auto& doc : ctx_->store->List(kind::kCacheNode)) add(*doc);
  }
  return Paged(p, "CacheClusters", std::move(clusters));
}

Result<Json> ElastiCacheService::TestFailover(const Params& p) {
  auto id = p.Str("ReplicationGroupId");
  if (!id) return Missing("ReplicationGroupId");
  auto node_group = p.Str("NodeGroupId");
  if (!node_group) return Missing("NodeGroupId");
  AP_ASSIGN_OR_RETURN(auto rg, LoadGroup(*id));
  const std::string rg_id = rg["ReplicationGroupId"];
  Json* ng = nullptr;
  for (auto& g : rg["NodeGroups"]) {
    if (g["NodeGroupId"] == *node_group) ng = &g;
  }
  if (!ng) {
    return Status(404, "NodeGroupNotFoundFault",
                  "The node group " + *node_group + " was not found in replication group " + rg_id + ".");
  }
  if (rg["Status"] != rg_status::kAvailable) {
    return InvalidRgState("Replication group " + rg_id + " is not in available state.");
  }
  if (!rg["AutomaticFailoverEnabled"].get<bool>() || (*ng)["Members"].size() < 2) {
    return Status(400, "TestFailoverNotAvailableFault",
                  "Test failover is not available for node group " + *node_group +
                      ": it needs automatic failover and at least one replica.");
  }
  // One at a time within a group: the previous failover's replacement must have finished.
  for (const auto& doc : ctx_->store->List(kind::kCacheNode)) {
    if ((*doc)["ReplicationGroupId"] == rg_id && (*doc)["Status"] != node_status::kAvailable) {
      return InvalidRgState("Replication group " + rg_id + " has a node that is still being recovered; try "
                            "again once it is available.");
    }
  }
  const int64_t now = ctx_->clock->NowMillis();
  // At most kTestFailoversPerDay node groups per rolling 24 hours per group (AWS-SEMANTICS.md §3).
  Json recent = Json::array();
  for (const auto& t : rg.value("TestFailoverTimes", Json::array())) {
    if (t.get<int64_t>() > now - 24LL * 3600 * 1000) recent.push_back(t);
  }
  if (recent.size() >= kTestFailoversPerDay) {
    return Status(400, "TestFailoverNotAvailableFault",
                  "Test failover is not available for replication group " + rg_id + ": at most " +
                      std::to_string(kTestFailoversPerDay) + " node groups can be failed over in a rolling 24 hours.");
  }
  recent.push_back(now);
  (*ng)["FailoverRequested"] = true;
  // Last: Json is an ordered_json, whose insertion of a new key moves its elements (and `ng` with them).
  rg["TestFailoverTimes"] = recent;
  rg["Status"] = rg_status::kModifying;
  std::vector<StoreWrite> writes = {{kind::kCacheReplicationGroup, rg_id, rg, std::nullopt}};
  writes.push_back(EventWrite(rg_id, "replication-group", "Test Failover API called for node group " + *node_group,
                              now));
  AP_RETURN_IF_ERROR(Save(writes));
  return Json{{"ReplicationGroup", RenderReplicationGroup(*ctx_, rg)}};
}

Result<Json> ElastiCacheService::NewSnapshot(const Json& rg, const std::string& name, const std::string& source) {
  AP_RETURN_IF_ERROR(ValidateSnapshotName(name));
  if (name.rfind("automatic.", 0) == 0) {
    return Status::InvalidParameterValue("Snapshot names beginning with automatic. are reserved.");
  }
  if (ctx_->store->Get(kind::kCacheSnapshot, name)) {
    return Status(400, "SnapshotAlreadyExistsFault", "Snapshot " + name + " already exists.");
  }
  std::map<std::string, std::string> az_of;
  for (const auto& [id, node] : NodesOf(*ctx_, rg)) az_of[id] = node.value("AvailabilityZone", std::string());
  return NewSnapshotDocument(rg, az_of, name, source, ctx_->clock->NowMillis(),
                             ctx_->Arn("elasticache", "snapshot:" + name));
}

Result<Json> ElastiCacheService::CreateSnapshot(const Params& p) {
  auto name = p.Str("SnapshotName");
  if (!name) return Missing("SnapshotName");
  Json rg;
  if (auto id = p.Str("ReplicationGroupId")) {
    AP_ASSIGN_OR_RETURN(rg, LoadGroup(*id));
  } else if (auto cid = p.Str("CacheClusterId")) {
    auto node = ctx_->store->Get(kind::kCacheNode, Lower(*cid));
    if (!node) return Status(404, "CacheClusterNotFound", "CacheCluster " + *cid + " not found.");
    AP_ASSIGN_OR_RETURN(rg, LoadGroup((*node)["ReplicationGroupId"]));
    if (rg["ClusterEnabled"].get<bool>()) {
      return InvalidCombination("Cannot snapshot cache cluster " + *cid + " of a cluster mode enabled replication "
                                "group: snapshot the replication group instead.");
    }
  } else {
    return InvalidCombination("Either ReplicationGroupId or CacheClusterId must be provided.");
  }
  const std::string rg_id = rg["ReplicationGroupId"];
  if (rg["Status"] != rg_status::kAvailable) {
    return InvalidRgState("Replication group " + rg_id + " is not in available state (" +
                          rg["Status"].get<std::string>() + ").");
  }
  AP_ASSIGN_OR_RETURN(Json snap, NewSnapshot(rg, *name, "manual"));
  rg["Status"] = rg_status::kSnapshotting;
  AP_RETURN_IF_ERROR(Save({{kind::kCacheSnapshot, *name, snap, 0},
                           {kind::kCacheReplicationGroup, rg_id, rg, std::nullopt}}));
  return Json{{"Snapshot", RenderSnapshot(snap, true)}};
}

Result<Json> ElastiCacheService::DescribeSnapshots(const Params& p) {
  auto show = p.Bool("ShowNodeGroupConfig");
  if (!show.ok()) return show.status();
  auto source = p.Str("SnapshotSource");
  if (source && *source != "system" && *source != "user") {
    return Status::InvalidParameterValue("Invalid SnapshotSource " + *source + ": valid values are system and user.");
  }
  auto name = p.Str("SnapshotName");
  auto rg_id = p.Str("ReplicationGroupId");
  auto cluster_id = p.Str("CacheClusterId");
  if (name && !ctx_->store->Get(kind::kCacheSnapshot, *name)) return SnapshotNotFound(*name);
  if (rg_id && !ctx_->store->Get(kind::kCacheReplicationGroup, Lower(*rg_id)) && !name) {
    // A deleted group's snapshots are still listed by its id.
    bool any = false;
    for (const auto& doc : ctx_->store->List(kind::kCacheSnapshot)) any = any || (*doc)["ReplicationGroupId"] == Lower(*rg_id);
    if (!any) return RgNotFound(*rg_id);
  }
  Json items = Json::array();
  for (const auto& doc : ctx_->store->List(kind::kCacheSnapshot)) {
    const Json& snap = *doc;
    if (name && snap["SnapshotName"] != *name) continue;
    if (rg_id && snap["ReplicationGroupId"] != Lower(*rg_id)) continue;
    if (cluster_id) {
      bool member = false;
      for (const auto& ns : snap["NodeSnapshots"]) member = member || ns.value("CacheClusterId", "") == Lower(*cluster_id);
      if (!member) continue;
    }
    if (source && (*source == "system") != (snap["SnapshotSource"] == "automated")) continue;
    items.push_back(RenderSnapshot(snap, show->value_or(false)));
  }
  // MaxRecords 20-50 (default 50) for this call.
  AP_ASSIGN_OR_RETURN(int64_t max, IntParam(p, "MaxRecords", 50, 20, 50, ""));
  size_t offset = 0;
  if (auto marker = p.Str("Marker")) {
    auto decoded = DecodePageToken("Snapshots", *marker);
    if (!decoded) return Status::InvalidParameterValue("Invalid Marker: " + *marker);
    offset = static_cast<size_t>(*decoded);
  }
  Json page = Json::array();
  for (size_t i = offset; i < items.size() && page.size() < static_cast<size_t>(max); ++i) page.push_back(items[i]);
  Json result = Json::object();
  if (offset + page.size() < items.size()) result["Marker"] = EncodePageToken("Snapshots", offset + page.size());
  result["Snapshots"] = std::move(page);
  return result;
}

Result<Json> ElastiCacheService::DeleteSnapshot(const Params& p) {
  auto name = p.Str("SnapshotName");
  if (!name) return Missing("SnapshotName");
  auto snap = ctx_->store->Get(kind::kCacheSnapshot, *name);
  if (!snap) return SnapshotNotFound(*name);
  if ((*snap)["SnapshotStatus"] == snapshot_status::kCreating) {
    return Status(400, "InvalidSnapshotState", "Snapshot " + *name + " is being created; delete it once it is "
                                               "available.");
  }
  AP_RETURN_IF_ERROR(Save({{kind::kCacheSnapshot, *name, std::nullopt, std::nullopt}}));
  std::error_code ec;
  std::filesystem::remove_all(SnapshotDir(*ctx_, *name), ec);
  (*snap)["SnapshotStatus"] = "deleting";
  return Json{{"Snapshot", RenderSnapshot(*snap, false)}};
}

Result<Json> ElastiCacheService::CopySnapshot(const Params& p) {
  auto source = p.Str("SourceSnapshotName");
  if (!source) return Missing("SourceSnapshotName");
  auto target = p.Str("TargetSnapshotName");
  if (!target) return Missing("TargetSnapshotName");
  if (p.Has("TargetBucket")) {
    return Status::InvalidParameterValue("TargetBucket (export to S3) is not supported by this region.");
  }
  auto snap = ctx_->store->Get(kind::kCacheSnapshot, *source);
  if (!snap) return SnapshotNotFound(*source);
  if ((*snap)["SnapshotStatus"] != snapshot_status::kAvailable) {
    return Status(400, "InvalidSnapshotState", "Snapshot " + *source + " is not in available state.");
  }
  AP_RETURN_IF_ERROR(ValidateSnapshotName(*target));
  if (ctx_->store->Get(kind::kCacheSnapshot, *target)) {
    return Status(400, "SnapshotAlreadyExistsFault", "Snapshot " + *target + " already exists.");
  }
  // Hard links: the RDB files never change once taken.
  namespace fs = std::filesystem;
  const std::string from = SnapshotDir(*ctx_, *source), to = SnapshotDir(*ctx_, *target);
  std::error_code ec;
  fs::create_directories(to, ec);
  for (const auto& ns : (*snap)["NodeSnapshots"]) {
    const std::string file = ns["File"];
    fs::create_hard_link(from + "/" + file, to + "/" + file, ec);
    if (ec) fs::copy_file(from + "/" + file, to + "/" + file, fs::copy_options::overwrite_existing, ec);
    if (ec) {
      fs::remove_all(to, ec);
      return Status::Internal("copying snapshot " + *source + " failed");
    }
  }
  Json copy = *snap;
  copy["SnapshotName"] = *target;
  copy["SnapshotSource"] = "manual";
  copy["ARN"] = ctx_->Arn("elasticache", "snapshot:" + *target);
  AP_RETURN_IF_ERROR(Save({{kind::kCacheSnapshot, *target, copy, 0}}));
  return Json{{"Snapshot", RenderSnapshot(copy, false)}};
}

Result<Json> ElastiCacheService::DescribeEvents(const Params& p) {
  auto source_id = p.Str("SourceIdentifier");
  auto source_type = p.Str("SourceType");
  static const std::set<std::string> kTypes = {"cache-cluster",   "cache-parameter-group", "cache-security-group",
                                               "cache-subnet-group", "replication-group", "serverless-cache",
                                               "serverless-cache-snapshot", "user", "user-group"};
  if (source_type && !kTypes.count(*source_type)) {
    return Status::InvalidParameterValue("Invalid SourceType " + *source_type + ".");
  }
  AP_ASSIGN_OR_RETURN(int64_t duration, IntParam(p, "Duration", 60, 0, 20160, "Duration must be 0 to 20160."));
  const int64_t now = ctx_->clock->NowMillis();
  int64_t start = now - duration * 60'000;
  int64_t end = now + 1;
  if (auto s = p.Str("StartTime")) {
    auto t = ParseIsoTimeMillis(*s);
    if (!t) return Status::InvalidParameterValue("Invalid StartTime " + *s + ".");
    start = *t;
  }
  if (auto s = p.Str("EndTime")) {
    auto t = ParseIsoTimeMillis(*s);
    if (!t) return Status::InvalidParameterValue("Invalid EndTime " + *s + ".");
    end = *t;
  }
  Json events = Json::array();
  auto docs = ctx_->store->List(kind::kCacheEvent);
  // Newest first, as AWS lists them.
  for (auto it = docs.rbegin(); it != docs.rend(); ++it) {
    const Json& e = **it;
    const int64_t date = e["Date"].get<int64_t>();
    if (date < start || date > end) continue;
    if (source_id && e["SourceIdentifier"] != *source_id) continue;
    if (source_type && e["SourceType"] != *source_type) continue;
    events.push_back({{"SourceIdentifier", e["SourceIdentifier"]},
                      {"SourceType", e["SourceType"]},
                      {"Message", e["Message"]},
                      {"Date", IsoTimeMillis(date)}});
  }
  return Paged(p, "Events", std::move(events));
}

Result<Json> ElastiCacheService::DescribeCacheParameterGroups(const Params& p) {
  auto name = p.Str("CacheParameterGroupName");
  Json groups = Json::array();
  for (const auto& g : DefaultParameterGroups()) {
    if (name && g.name != *name) continue;
    groups.push_back({{"CacheParameterGroupName", g.name},
                      {"CacheParameterGroupFamily", g.family},
                      {"Description", "Default parameter group for " + g.family +
                                          (g.cluster_enabled ? " with cluster mode on" : "")},
                      {"IsGlobal", false},
                      {"ARN", ctx_->Arn("elasticache", "parametergroup:" + g.name)}});
  }
  if (name && groups.empty()) {
    return Status(404, "CacheParameterGroupNotFound", "CacheParameterGroup " + *name + " not found.");
  }
  return Paged(p, "CacheParameterGroups", std::move(groups));
}

Result<Json> ElastiCacheService::DescribeCacheParameters(const Params& p) {
  auto name = p.Str("CacheParameterGroupName");
  if (!name) return Missing("CacheParameterGroupName");
  const ParameterGroupInfo* g = FindParameterGroup(*name);
  if (!g) return Status(404, "CacheParameterGroupNotFound", "CacheParameterGroup " + *name + " not found.");
  auto source = p.Str("Source");
  if (source && *source != "user" && *source != "system" && *source != "engine-default") {
    return Status::InvalidParameterValue("Invalid Source " + *source + ": valid values are user, system and "
                                         "engine-default.");
  }
  // The parameters every node of a group with this parameter group runs with (cache_controller.cc NodeSettings
  // sets the ones that differ from Redis's defaults).
  struct Param {
    const char* name;
    std::string value;
    const char* type;
    const char* allowed;
    bool modifiable;
    const char* change;
    const char* description;
  };
  const std::vector<Param> params = {
      {"activerehashing", "yes", "string", "yes,no", true, "requires-reboot", "Apply rehashing or not."},
      {"appendonly", "no", "string", "yes,no", true, "immediate", "Enable Redis persistence."},
      {"appendfsync", "everysec", "string", "always,everysec,no", true, "immediate", "fsync policy for AOF."},
      {"cluster-enabled", g->cluster_enabled ? "yes" : "no", "string", "yes,no", false, "requires-reboot",
       "Enable cluster mode."},
      {"cluster-require-full-coverage", "no", "string", "yes,no", true, "immediate",
       "Whether the cluster stops accepting queries when a hash slot is uncovered."},
      {"databases", g->cluster_enabled ? "1" : "16", "integer", "1-1200000", !g->cluster_enabled,
       "requires-reboot", "Set the number of databases."},
      {"lazyfree-lazy-eviction", "no", "string", "yes,no", true, "immediate", "Perform an asynchronous delete on evictions."},
      {"maxclients", "65000", "integer", "1-65000", false, "requires-reboot",
       "The maximum number of Redis clients."},
      {"maxmemory-policy", "volatile-lru", "string",
       "volatile-lru,allkeys-lru,volatile-lfu,allkeys-lfu,volatile-random,allkeys-random,volatile-ttl,noeviction",
       true, "immediate", "Max memory policy."},
      {"maxmemory-samples", "3", "integer", "1-", true, "immediate", "Max memory samples."},
      {"min-replicas-max-lag", "10", "integer", "0-", true, "immediate",
       "The maximum amount of replica lag in seconds."},
      {"min-replicas-to-write", "0", "integer", "0-", true, "immediate",
       "The minimum number of replicas that must be present for the primary to accept writes."},
      {"notify-keyspace-events", "", "string", "", true, "immediate", "The keyspace events for Redis to notify."},
      {"repl-backlog-size", "1048576", "integer", "16384-", true, "immediate",
       "The replication backlog size in bytes."},
      {"reserved-memory-percent", "25", "integer", "0-100", true, "immediate",
       "The percent of memory reserved for non-cache memory usage."},
      {"slowlog-log-slower-than", "10000", "integer", "-", true, "immediate",
       "The execution time, in microseconds, to exceed for a command to be logged."},
      {"slowlog-max-len", "128", "integer", "0-", true, "immediate", "The length of the slow log."},
      {"tcp-keepalive", "300", "integer", "0-", true, "immediate", "Close connections if client is idle."},
      {"timeout", "0", "integer", "0,20-", true, "immediate", "Close connection if client is idle for a given "
                                                          "number of seconds, or never if 0."},
  };
  const std::string min_version = g->engine_version;
  Json items = Json::array();
  if (!source || *source == "system" || *source == "engine-default") {
    for (const auto& prm : params) {
      JsonObject o;
      o.Add("ParameterName", prm.name);
      if (!prm.value.empty()) o.Add("ParameterValue", prm.value);
      o.Add("Description", prm.description)
          .Add("Source", "system")
          .Add("DataType", prm.type)
          .Add("AllowedValues", prm.allowed)
          .Add("IsModifiable", prm.modifiable)
          .Add("MinimumEngineVersion", min_version)
          .Add("ChangeType", prm.change);
      items.push_back(o.Take());
    }
  }
  Json specific = Json::array();
  if (!source || *source == "system" || *source == "engine-default") {
    Json values = Json::array();
    for (const char* type : {"cache.t3.micro", "cache.t3.small", "cache.t3.medium", "cache.m5.large",
                             "cache.m5.xlarge", "cache.m5.2xlarge", "cache.r6g.large", "cache.r6g.xlarge"}) {
      values.push_back({{"CacheNodeType", type},
                        {"Value", std::to_string(int64_t{MaxMemoryMibFor(type)} * 1024 * 1024)}});
    }
    specific.push_back({{"ParameterName", "maxmemory"},
                        {"Description", "The maximum configurable amount of memory to use to store items, in bytes "
                                        "(small here so that many nodes fit one machine)."},
                        {"Source", "system"},
                        {"DataType", "integer"},
                        {"AllowedValues", "0-"},
                        {"IsModifiable", false},
                        {"MinimumEngineVersion", min_version},
                        {"CacheNodeTypeSpecificValues", values},
                        {"ChangeType", "immediate"}});
  }
  AP_ASSIGN_OR_RETURN(Json page, Paged(p, "Parameters", std::move(items)));
  if (!page.contains("Marker")) page["CacheNodeTypeSpecificParameters"] = std::move(specific);
  return page;
}

Result<Json> ElastiCacheService::DescribeCacheEngineVersions(const Params& p) {
  auto engine = p.Str("Engine");
  auto version = p.Str("EngineVersion");
  auto family = p.Str("CacheParameterGroupFamily");
  Json versions = Json::array();
  std::set<std::string> seen;
  for (const auto& g : DefaultParameterGroups()) {
    if (!seen.insert(g.family).second) continue;
    if (engine && Lower(*engine) != "redis") continue;
    if (version && *version != g.engine_version) continue;
    if (family && *family != g.family) continue;
    versions.push_back({{"Engine", "redis"},
                        {"EngineVersion", g.engine_version},
                        {"CacheParameterGroupFamily", g.family},
                        {"CacheEngineDescription", "Redis"},
                        {"CacheEngineVersionDescription",
                         std::string("redis ") + g.engine_version + " (served by Debian's Redis " +
                             kRunningRedisVersion + " on every node)"}});
  }
  return Paged(p, "CacheEngineVersions", std::move(versions));
}

Result<Json> ElastiCacheService::LoadAvailableGroup(const Params& p) {
  auto id = p.Str("ReplicationGroupId");
  if (!id) return Missing("ReplicationGroupId");
  AP_ASSIGN_OR_RETURN(auto rg, LoadGroup(*id));
  if (rg["Status"] != rg_status::kAvailable) {
    return InvalidRgState("Replication group " + rg["ReplicationGroupId"].get<std::string>() +
                          " is not in available state.");
  }
  return rg;
}

Result<Json> ElastiCacheService::ModifyReplicationGroup(const Params& p) {
  AP_ASSIGN_OR_RETURN(auto rg, LoadAvailableGroup(p));
  const bool cluster = rg["ClusterEnabled"].get<bool>();
  for (const char* unsupported : {"CacheNodeType", "EngineVersion", "PrimaryClusterId", "NodeGroupId",
                                  "SnapshottingClusterId", "ClusterMode", "TransitEncryptionMode"}) {
    if (p.Has(unsupported)) {
      return Status::InvalidParameterValue(std::string("Changing ") + unsupported +
                                           " is not supported by this region yet.");
    }
  }
  if (auto pg = p.Str("CacheParameterGroupName"); pg && *pg != rg["CacheParameterGroupName"]) {
    if (!FindParameterGroup(*pg)) {
      return Status(404, "CacheParameterGroupNotFound", "CacheParameterGroup " + *pg + " not found.");
    }
    return Status::InvalidParameterValue("Changing the parameter group is not supported by this region yet.");
  }
  auto failover = p.Bool("AutomaticFailoverEnabled");
  if (!failover.ok()) return failover.status();
  auto multi_az = p.Bool("MultiAZEnabled");
  if (!multi_az.ok()) return multi_az.status();
  auto apply = p.Bool("ApplyImmediately");
  if (!apply.ok()) return apply.status();
  bool af = failover->value_or(rg["AutomaticFailoverEnabled"].get<bool>());
  bool maz = multi_az->value_or(rg["MultiAZEnabled"].get<bool>());
  if (cluster && !af) {
    return InvalidCombination(
        "Turning off automatic failover for replication group with cluster mode enabled is not supported.");
  }
  size_t nodes = 0;
  for (const auto& ng : rg["NodeGroups"]) nodes += ng["Members"].size();
  if (af && !cluster && nodes < 2) {
    return InvalidCombination(
        "When using automatic failover, there must be at least 2 cache clusters in the replication group.");
  }
  if (maz && !af) {
    // Turning failover off turns Multi-AZ off with it unless the call asks for Multi-AZ.
    if (multi_az->has_value()) {
      return InvalidCombination("Multi-AZ can only be enabled when automatic failover is enabled.");
    }
    maz = false;
  }
  if (maz && !rg["MultiAZEnabled"].get<bool>()) {
    for (const auto& ng : rg["NodeGroups"]) {
      if (ng["Members"].size() < 2) {
        return InvalidCombination("Multi-AZ needs at least one replica in every node group.");
      }
    }
  }
  AP_ASSIGN_OR_RETURN(int64_t retention,
                      IntParam(p, "SnapshotRetentionLimit", rg["SnapshotRetentionLimit"].get<int64_t>(), 0, 35,
                               "SnapshotRetentionLimit must be between 0 and 35."));
  Json updated = rg;
  updated["AutomaticFailoverEnabled"] = af;
  updated["MultiAZEnabled"] = maz;
  updated["SnapshotRetentionLimit"] = retention;
  if (auto w = p.Str("SnapshotWindow")) {
    AP_RETURN_IF_ERROR(ParseSnapshotWindow(*w).status());
    updated["SnapshotWindow"] = *w;
  }
  if (auto d = p.Str("ReplicationGroupDescription")) updated["Description"] = *d;
  auto transit = p.Bool("TransitEncryptionEnabled");
  if (!transit.ok()) return transit.status();
  if (transit->has_value() && **transit != rg.value("TransitEncryptionEnabled", false)) {
    return Status::InvalidParameterValue("Changing TransitEncryptionEnabled is not supported by this region yet.");
  }
  AP_RETURN_IF_ERROR(ChangeAuthToken(p, rg, &updated));
  AP_ASSIGN_OR_RETURN(auto security_groups, ReadSecurityGroupIds(p));
  if (security_groups) updated["SecurityGroupIds"] = *security_groups;
  if (updated != rg) {
    AP_RETURN_IF_ERROR(Save({{kind::kCacheReplicationGroup, rg["ReplicationGroupId"], updated, std::nullopt}}));
  }
  return Json{{"ReplicationGroup", RenderReplicationGroup(*ctx_, updated)}};
}

Status ElastiCacheService::ChangeAuthToken(const Params& p, const Json& rg, Json* updated) {
  auto token = p.Str("AuthToken");
  auto strategy_in = p.Str("AuthTokenUpdateStrategy");
  if (!token && !strategy_in) return Status::Ok();
  std::string strategy = strategy_in.value_or("ROTATE");
  std::transform(strategy.begin(), strategy.end(), strategy.begin(), ::toupper);
  if (strategy != "ROTATE" && strategy != "SET" && strategy != "DELETE") {
    return Status::InvalidParameterValue("Invalid AuthTokenUpdateStrategy " + *strategy_in +
                                         ": valid values are SET, ROTATE and DELETE.");
  }
  if (!rg.value("TransitEncryptionEnabled", false)) {
    return Status::InvalidParameterValue("The AUTH token is only supported when encryption-in-transit is enabled");
  }
  const Json old = rg.contains("AuthTokens") ? rg["AuthTokens"] : Json::array();
  Json tokens = Json::array();
  bool passwordless = false;
  if (strategy == "DELETE") {
    if (token) return InvalidCombination("AuthToken must not be given with AuthTokenUpdateStrategy DELETE.");
    if (old.empty()) return InvalidCombination("Replication group has no AUTH token to delete.");
  } else {
    if (!token) {
      return Status::InvalidParameterValue("AuthToken must be given with AuthTokenUpdateStrategy " + strategy + ".");
    }
    AP_RETURN_IF_ERROR(ValidateAuthToken(*token));
    tokens.push_back(*token);
    if (strategy == "ROTATE") {
      // The new token and the one in use until now are both accepted; a group without a token keeps accepting
      // connections without AUTH too, until a SET.
      if (old.empty()) {
        passwordless = true;
      } else if (old[0] != *token) {
        tokens.push_back(old[0]);
      } else if (old.size() > 1) {
        tokens.push_back(old[1]);
      }
    }
  }
  (*updated)["AuthPreviousTokens"] = old;
  (*updated)["AuthTokens"] = tokens;
  if (passwordless) {
    (*updated)["AuthPasswordless"] = true;
  } else {
    updated->erase("AuthPasswordless");
  }
  if (tokens.empty()) {
    updated->erase("AuthTokenLastModifiedDate");
  } else {
    (*updated)["AuthTokenLastModifiedDate"] = ctx_->clock->NowMillis();
  }
  (*updated)["AuthVersion"] = rg.value("AuthVersion", 0) + 1;
  (*updated)["Status"] = rg_status::kModifying;
  return Status::Ok();
}

Result<std::vector<ElastiCacheService::ShardChange>> ElastiCacheService::ReadReplicaChanges(const Params& p,
                                                                                          const Json& rg) {
  if (!p.Has("ApplyImmediately")) return Missing("ApplyImmediately");
  auto apply = p.Bool("ApplyImmediately");
  if (!apply.ok()) return apply.status();
  if (!apply->value_or(false)) {
    return Status::InvalidParameterValue("ApplyImmediately must be true: replica counts change at once.");
  }
  std::vector<ShardChange> out;
  const auto configs = p.StructList("ReplicaConfiguration", "ConfigureShard");
  auto count = p.Int("NewReplicaCount");
  if (!count.ok()) return count.status();
  if (configs.empty() == !count->has_value()) {
    return InvalidCombination("Either NewReplicaCount or ReplicaConfiguration must be given, not both.");
  }
  if (count->has_value()) {
    for (const auto& ng : rg["NodeGroups"]) out.push_back({ng["NodeGroupId"], **count, {}});
  }
  for (const auto& c : configs) {
    Params cp(c, WireProtocol::kQuery);
    auto id = cp.Str("NodeGroupId");
    if (!id) return Missing("ReplicaConfiguration.ConfigureShard.N.NodeGroupId");
    auto n = cp.Int("NewReplicaCount");
    if (!n.ok()) return n.status();
    if (!*n) return Missing("ReplicaConfiguration.ConfigureShard.N.NewReplicaCount");
    bool found = false;
    for (const auto& ng : rg["NodeGroups"]) found = found || ng["NodeGroupId"] == *id;
    if (!found) {
      return Status(404, "NodeGroupNotFoundFault", "The node group " + *id + " was not found in replication group " +
                                                       rg["ReplicationGroupId"].get<std::string>() + ".");
    }
    auto azs = cp.List("PreferredAvailabilityZones", "PreferredAvailabilityZone");
    const auto zones = ZonesForReplicationGroup(*ctx_, rg);
    for (const auto& az : azs) {
      AP_RETURN_IF_ERROR(CheckZoneInGroup(*ctx_, rg.value("CacheSubnetGroupName", std::string("default")), zones, az));
    }
    out.push_back({*id, **n, azs});
  }
  for (const auto& c : out) {
    if (c.count < 0 || c.count > kMaxReplicas) {
      return Status::InvalidParameterValue("The number of replicas per node group must be within 0 and 5.");
    }
  }
  return out;
}

Result<Json> ElastiCacheService::ModifyReplicationGroupShardConfiguration(const Params& p) {
  auto id = p.Str("ReplicationGroupId");
  if (!id) return Missing("ReplicationGroupId");
  AP_ASSIGN_OR_RETURN(Json rg, LoadGroup(*id));
  const std::string rg_id = rg["ReplicationGroupId"];
  auto count = p.Int("NodeGroupCount");
  if (!count.ok()) return count.status();
  if (!*count) return Missing("NodeGroupCount");
  auto apply = p.Bool("ApplyImmediately");
  if (!apply.ok()) return apply.status();
  if (!apply->value_or(false)) {
    return Status::InvalidParameterValue("ApplyImmediately must be true: resharding starts at once.");
  }
  if (!rg["ClusterEnabled"].get<bool>()) {
    return InvalidCombination("Resharding is only supported for replication groups with cluster mode enabled.");
  }
  if (rg["Status"] != rg_status::kAvailable) {
    return InvalidRgState("Replication group " + rg_id + " is not in available state.");
  }
  const int64_t want = **count;
  const int64_t have = static_cast<int64_t>(rg["NodeGroups"].size());
  if (want < 1 || want > kMaxNodeGroups) {
    return Status::InvalidParameterValue("NodeGroupCount must be between 1 and 90.");
  }
  if (want == have) return Status::InvalidParameterValue("NodeGroupCount " + std::to_string(want) +
                                                         " is the current number of node groups.");
  const auto to_remove = p.List("NodeGroupsToRemove", "NodeGroupToRemove");
  const auto to_retain = p.List("NodeGroupsToRetain", "NodeGroupToRetain");
  std::set<std::string> removed;
  std::vector<StoreWrite> writes;
  const int64_t now = ctx_->clock->NowMillis();
  if (want < have) {
    if (to_remove.empty() == to_retain.empty()) {
      return InvalidCombination("Either NodeGroupsToRemove or NodeGroupsToRetain is required to remove node "
                                "groups.");
    }
    std::set<std::string> known;
    for (const auto& ng : rg["NodeGroups"]) known.insert(ng["NodeGroupId"]);
    for (const auto& g : to_remove.empty() ? to_retain : to_remove) {
      if (!known.count(g)) {
        return Status(404, "NodeGroupNotFoundFault",
                      "The node group " + g + " was not found in replication group " + rg_id + ".");
      }
    }
    if (!to_remove.empty()) {
      removed.insert(to_remove.begin(), to_remove.end());
    } else {
      for (const auto& g : known) {
        if (std::find(to_retain.begin(), to_retain.end(), g) == to_retain.end()) removed.insert(g);
      }
    }
    if (static_cast<int64_t>(removed.size()) != have - want) {
      return Status::InvalidParameterValue("The node groups to remove must leave exactly " + std::to_string(want) +
                                           " node groups.");
    }
  } else {
    // New shards: as many replicas as the first, in the AZs after their primary's, primaries rotating.
    const auto azs = ZonesForReplicationGroup(*ctx_, rg);
    const auto configs = p.StructList("ReshardingConfiguration", "ReshardingConfiguration");
    const int replicas = static_cast<int>(rg["NodeGroups"][0]["Members"].size()) - 1;
    std::set<std::string> ids;
    for (const auto& ng : rg["NodeGroups"]) ids.insert(ng["NodeGroupId"]);
    int next = 0;
    for (int64_t k = have; k < want; ++k) {
      std::string ng_id;
      while (ng_id.empty() || ids.count(ng_id)) ng_id = NodeGroupIdFor(next++);
      ids.insert(ng_id);
      std::vector<std::string> node_azs = {DefaultPrimaryAz(azs, static_cast<int>(k))};
      for (const auto& az : DefaultReplicaAzs(azs, node_azs[0], replicas)) node_azs.push_back(az);
      const size_t ci = static_cast<size_t>(k - have);
      if (ci < configs.size()) {
        for (int j = 0; j <= replicas; ++j) {
          auto it = configs[ci].find("PreferredAvailabilityZones.AvailabilityZone." + std::to_string(j + 1));
          if (it == configs[ci].end()) continue;
          AP_RETURN_IF_ERROR(CheckZoneInGroup(
              *ctx_, rg.value("CacheSubnetGroupName", std::string(kDefaultCacheSubnetGroup)), azs, it->second));
          node_azs[static_cast<size_t>(j)] = it->second;
        }
      }
      Json members = Json::array();
      for (size_t j = 0; j < node_azs.size(); ++j) {
        const std::string cluster_id = MemberClusterId(rg_id, ng_id, static_cast<int>(j));
        if (ctx_->store->Get(kind::kCacheNode, cluster_id)) {
          return Status(400, "CacheClusterAlreadyExists", "Cache cluster " + cluster_id + " already exists.");
        }
        AP_ASSIGN_OR_RETURN(std::string address, AllocatePrivateAddress(*ctx_, node_azs[j], &writes));
        Json node = {{"CacheClusterId", cluster_id},     {"ReplicationGroupId", rg_id},
                     {"NodeGroupId", ng_id},             {"CacheNodeId", "0001"},
                     {"AvailabilityZone", node_azs[j]},  {"Address", address},
                     {"Port", rg["Port"]},               {"CreateTime", now},
                     {"Status", node_status::kCreating}, {"RedisNodeId", ""},
                     {"Generation", 1},                  {"Pid", 0},
                     {"PidStartTime", 0},                {"LaunchToken", NewLaunchToken()}};
        writes.push_back({kind::kCacheNode, cluster_id, std::move(node), std::nullopt});
        members.push_back(cluster_id);
      }
      rg["NodeGroups"].push_back(
          {{"NodeGroupId", ng_id}, {"Slots", ""}, {"Members", members}, {"Primary", members[0]}});
    }
  }
  // The target: ElastiCache's equal split over the shards that stay, in NodeGroupId order.
  std::vector<std::string> staying;
  for (const auto& ng : rg["NodeGroups"]) {
    if (!removed.count(ng["NodeGroupId"])) staying.push_back(ng["NodeGroupId"]);
  }
  std::sort(staying.begin(), staying.end());
  const auto split = SplitSlots(static_cast<int>(staying.size()));
  Json target = Json::object();
  for (size_t i = 0; i < staying.size(); ++i) target[staying[i]] = FormatSlots(split[i]);
  for (const auto& g : removed) target[g] = "";
  rg["Resharding"] = {{"Target", target}, {"StartedAt", now}};
  rg["Status"] = rg_status::kModifying;
  writes.push_back({kind::kCacheReplicationGroup, rg_id, rg, std::nullopt});
  writes.push_back(EventWrite(rg_id, "replication-group",
                              "Modifying number of node groups from " + std::to_string(have) + " to " +
                                  std::to_string(want) + " for replication group " + rg_id,
                              now));
  AP_RETURN_IF_ERROR(Save(writes));
  return Json{{"ReplicationGroup", RenderReplicationGroup(*ctx_, rg)}};
}

Result<Json> ElastiCacheService::IncreaseReplicaCount(const Params& p) {
  AP_ASSIGN_OR_RETURN(auto rg, LoadAvailableGroup(p));
  AP_ASSIGN_OR_RETURN(auto changes, ReadReplicaChanges(p, rg));
  const std::string rg_id = rg["ReplicationGroupId"];
  const bool cluster = rg["ClusterEnabled"].get<bool>();
  const int64_t now = ctx_->clock->NowMillis();
  std::vector<StoreWrite> writes;
  bool any = false;
  for (const auto& c : changes) {
    for (auto& ng : rg["NodeGroups"]) {
      if (ng["NodeGroupId"] != c.node_group_id) continue;
      const int64_t have = static_cast<int64_t>(ng["Members"].size()) - 1;
      if (c.count < have) {
        return Status::InvalidParameterValue("NewReplicaCount " + std::to_string(c.count) + " for node group " +
                                             c.node_group_id + " is less than its " + std::to_string(have) +
                                             " replicas: use DecreaseReplicaCount.");
      }
      const std::string primary = ng["Primary"];
      const auto zones = ZonesForReplicationGroup(*ctx_, rg);
      const std::string primary_az = ctx_->store->Get(kind::kCacheNode, primary).value_or(Json::object())
                                         .value("AvailabilityZone", zones[0]);
      const auto defaults = DefaultReplicaAzs(zones, primary_az, static_cast<int>(c.count));
      std::set<std::string> taken;
      for (const auto& m : ng["Members"]) taken.insert(m);
      for (int64_t k = have; k < c.count; ++k) {
        std::string cluster_id;
        for (int i = 0; cluster_id.empty() || taken.count(cluster_id) || ctx_->store->Get(kind::kCacheNode, cluster_id);
             ++i) {
          cluster_id = cluster ? MemberClusterId(rg_id, c.node_group_id, i) : NonClusterMemberId(rg_id, i);
        }
        taken.insert(cluster_id);
        const size_t j = static_cast<size_t>(k - have);
        const std::string az = j < c.azs.size() ? c.azs[j] : defaults[static_cast<size_t>(k)];
        AP_ASSIGN_OR_RETURN(std::string address, AllocatePrivateAddress(*ctx_, az, &writes));
        Json node = {{"CacheClusterId", cluster_id},   {"ReplicationGroupId", rg_id},
                     {"NodeGroupId", c.node_group_id}, {"CacheNodeId", "0001"},
                     {"AvailabilityZone", az},         {"Address", address},
                     {"Port", rg["Port"]},             {"CreateTime", now},
                     {"Status", node_status::kCreating}, {"RedisNodeId", ""},
                     {"Generation", 1},                {"Pid", 0},
                     {"PidStartTime", 0},              {"LaunchToken", NewLaunchToken()}};
        writes.push_back({kind::kCacheNode, cluster_id, std::move(node), std::nullopt});
        ng["Members"].push_back(cluster_id);
        any = true;
      }
    }
  }
  if (!any) return Status(400, "NoOperationFault", "The requested replica counts are the current ones.");
  rg["Status"] = rg_status::kModifying;
  writes.push_back({kind::kCacheReplicationGroup, rg_id, rg, std::nullopt});
  AP_RETURN_IF_ERROR(Save(writes));
  return Json{{"ReplicationGroup", RenderReplicationGroup(*ctx_, rg)}};
}

Result<Json> ElastiCacheService::DecreaseReplicaCount(const Params& p) {
  AP_ASSIGN_OR_RETURN(auto rg, LoadAvailableGroup(p));
  const std::string rg_id = rg["ReplicationGroupId"];
  const auto to_remove = p.List("ReplicasToRemove");
  std::vector<ShardChange> changes;
  if (to_remove.empty()) {
    AP_ASSIGN_OR_RETURN(changes, ReadReplicaChanges(p, rg));
  } else if (!p.Bool("ApplyImmediately").ok() || !p.Bool("ApplyImmediately")->value_or(false)) {
    return Status::InvalidParameterValue("ApplyImmediately must be true: replica counts change at once.");
  }
  const bool multi_az = rg["MultiAZEnabled"].get<bool>();
  std::vector<std::string> removed;
  for (auto& ng : rg["NodeGroups"]) {
    std::vector<std::string> replicas;
    for (const auto& m : ng["Members"]) {
      if (m != ng["Primary"]) replicas.push_back(m);
    }
    std::vector<std::string> drop;
    for (const auto& c : changes) {
      if (c.node_group_id != ng["NodeGroupId"]) continue;
      if (c.count > static_cast<int64_t>(replicas.size())) {
        return Status::InvalidParameterValue("NewReplicaCount " + std::to_string(c.count) + " for node group " +
                                             c.node_group_id + " is more than its " +
                                             std::to_string(replicas.size()) + " replicas: use IncreaseReplicaCount.");
      }
      drop.assign(replicas.begin() + c.count, replicas.end());  // the newest go first
    }
    for (const auto& id : to_remove) {
      if (std::find(replicas.begin(), replicas.end(), id) != replicas.end()) drop.push_back(id);
      if (id == ng["Primary"]) {
        return Status::InvalidParameterValue("Cache cluster " + id + " is a primary: only replicas can be removed.");
      }
    }
    if (multi_az && replicas.size() - drop.size() < 1) {
      return InvalidCombination("Node group " + ng["NodeGroupId"].get<std::string>() +
                                " would have no replica left while Multi-AZ is enabled.");
    }
    Json kept = Json::array();
    for (const auto& m : ng["Members"]) {
      if (std::find(drop.begin(), drop.end(), m) == drop.end()) kept.push_back(m);
    }
    ng["Members"] = kept;
    removed.insert(removed.end(), drop.begin(), drop.end());
  }
  for (const auto& id : to_remove) {
    if (std::find(removed.begin(), removed.end(), id) == removed.end()) {
      return Status(404, "CacheClusterNotFound", "CacheCluster not found: " + id);
    }
  }
  if (removed.empty()) return Status(400, "NoOperationFault", "The requested replica counts are the current ones.");
  // Only the group document changes: a node no shard lists any more is stopped and removed by the controller
  // (the one writer of node documents once they exist).
  std::vector<StoreWrite> writes;
  rg["Status"] = rg_status::kModifying;
  writes.push_back({kind::kCacheReplicationGroup, rg_id, rg, std::nullopt});
  AP_RETURN_IF_ERROR(Save(writes));
  return Json{{"ReplicationGroup", RenderReplicationGroup(*ctx_, rg)}};
}

Result<ElastiCacheService::Tagged> ElastiCacheService::LoadTagged(const Params& p) {
  auto arn = p.Str("ResourceName");
  if (!arn) return Missing("ResourceName");
  const std::string subnet_group_prefix = ctx_->Arn("elasticache", "subnetgroup:");
  if (arn->rfind(subnet_group_prefix, 0) == 0) {
    const std::string name = Lower(arn->substr(subnet_group_prefix.size()));
    if (name == kDefaultCacheSubnetGroup) {
      return Status(400, "InvalidARN", "The default cache subnet group cannot be tagged.");
    }
    auto doc = ctx_->store->Get(kind::kCacheSubnetGroup, name);
    if (!doc) return Status(400, "CacheSubnetGroupNotFoundFault", "Cache subnet group " + name + " not found.");
    return Tagged{kind::kCacheSubnetGroup, name, *doc};
  }
  const std::string prefix = ctx_->Arn("elasticache", "replicationgroup:");
  if (arn->rfind(prefix, 0) != 0) {
    return Status(400, "InvalidARN", "The ARN " + *arn + " is not a replication group or subnet group ARN of this "
                                     "region (" + prefix + "<id>); tags on other resources are not supported here.");
  }
  AP_ASSIGN_OR_RETURN(auto rg, LoadGroup(arn->substr(prefix.size())));
  const std::string id = rg["ReplicationGroupId"];
  return Tagged{kind::kCacheReplicationGroup, id, std::move(rg)};
}

Result<Json> ElastiCacheService::AddTagsToResource(const Params& p) {
  AP_ASSIGN_OR_RETURN(auto tagged, LoadTagged(p));
  Json& rg = tagged.doc;
  Json tags = rg["Tags"];
  for (const auto& t : p.StructList("Tags", "Tag")) {
    auto key = t.find("Key");
    if (key == t.end()) continue;
    auto value = t.find("Value");
    const std::string v = value == t.end() ? "" : value->second;
    auto it = std::find_if(tags.begin(), tags.end(), [&](const Json& e) { return e["Key"] == key->second; });
    if (it != tags.end()) {
      (*it)["Value"] = v;
    } else {
      tags.push_back({{"Key", key->second}, {"Value", v}});
    }
  }
  if (tags.size() > kMaxTags) return Status(400, "TagQuotaPerResourceExceeded", "A resource has at most 50 tags.");
  rg["Tags"] = tags;
  AP_RETURN_IF_ERROR(Save({{tagged.kind, tagged.id, rg, std::nullopt}}));
  return Json{{"TagList", tags}};
}

Result<Json> ElastiCacheService::ListTagsForResource(const Params& p) {
  AP_ASSIGN_OR_RETURN(auto tagged, LoadTagged(p));
  return Json{{"TagList", tagged.doc.value("Tags", Json::array())}};
}

Result<Json> ElastiCacheService::RemoveTagsFromResource(const Params& p) {
  AP_ASSIGN_OR_RETURN(auto tagged, LoadTagged(p));
  Json& rg = tagged.doc;
  const auto keys = p.List("TagKeys");
  Json kept = Json::array();
  for (const auto& t : rg["Tags"]) {
    if (std::find(keys.begin(), keys.end(), t["Key"]) == keys.end()) kept.push_back(t);
  }
  if (kept.size() + keys.size() > rg["Tags"].size()) {
    for (const auto& k : keys) {
      if (std::none_of(rg["Tags"].begin(), rg["Tags"].end(), [&](const Json& t) { return t["Key"] == k; })) {
        return Status(404, "TagNotFound", "Tag " + k + " not found.");
      }
    }
  }
  rg["Tags"] = kept;
  AP_RETURN_IF_ERROR(Save({{tagged.kind, tagged.id, rg, std::nullopt}}));
  return Json{{"TagList", kept}};
}

}  // namespace

ApiService ElastiCacheApi(RegionContext* ctx) {
  auto svc = std::make_shared<ElastiCacheService>(ctx);
  using Method = Result<Json> (ElastiCacheService::*)(const Params&);
  auto op = [svc](const char* name, Access access, Method m, std::vector<ListLimit> limits = {}) {
    return Operation{name, access, [svc, m](const Params& p) { return ((*svc).*m)(p); }, std::move(limits)};
  };
  ApiService api;
  api.info = {"elasticache", "2015-02-02", kNamespace, WireProtocol::kQuery};
  // The member element of each list, from the botocore model's locationName.
  api.info.list_members = {{"ReplicationGroups", "ReplicationGroup"},
                           {"MemberClusters", "ClusterId"},
                           {"NodeGroups", "NodeGroup"},
                           {"NodeGroupMembers", "NodeGroupMember"},
                           {"CacheClusters", "CacheCluster"},
                           {"CacheNodes", "CacheNode"},
                           {"CacheSecurityGroups", "CacheSecurityGroup"},
                           {"CacheNodeIdsToReboot", "CacheNodeId"},
                           {"LogDeliveryConfigurations", "LogDeliveryConfiguration"},
                           {"Events", "Event"},
                           {"CacheParameterGroups", "CacheParameterGroup"},
                           {"CacheEngineVersions", "CacheEngineVersion"},
                           {"NodeGroupConfiguration", "NodeGroupConfiguration"},
                           {"PreferredCacheClusterAZs", "AvailabilityZone"},
                           {"ReplicaAvailabilityZones", "AvailabilityZone"},
                           {"Tags", "Tag"},
                           {"TagList", "Tag"},
                           {"ReplicaConfiguration", "ConfigureShard"},
                           {"PreferredAvailabilityZones", "PreferredAvailabilityZone"},
                           {"Snapshots", "Snapshot"},
                           {"ReshardingConfiguration", "ReshardingConfiguration"},
                           {"NodeGroupsToRemove", "NodeGroupToRemove"},
                           {"NodeGroupsToRetain", "NodeGroupToRetain"},
                           {"NodeSnapshots", "NodeSnapshot"},
                           {"Parameters", "Parameter"},
                           {"CacheNodeTypeSpecificParameters", "CacheNodeTypeSpecificParameter"},
                           {"CacheSubnetGroups", "CacheSubnetGroup"},
                           {"Subnets", "Subnet"},
                           {"SubnetIds", "SubnetIdentifier"},
                           {"SecurityGroupIds", "SecurityGroupId"}};
  api.operations = {
      op("CreateReplicationGroup", Access::kWrite, &ElastiCacheService::CreateReplicationGroup,
         {{"NodeGroupConfiguration", 90, "NodeGroupConfiguration"},
          {"PreferredCacheClusterAZs", 6, "AvailabilityZone"},
          {"Tags", 50, "Tag"}}),
      op("DescribeReplicationGroups", Access::kRead, &ElastiCacheService::DescribeReplicationGroups),
      op("CreateCacheSubnetGroup", Access::kWrite, &ElastiCacheService::CreateCacheSubnetGroup,
         {{"SubnetIds", 20, "SubnetIdentifier"}, {"Tags", 50, "Tag"}}),
      op("DescribeCacheSubnetGroups", Access::kRead, &ElastiCacheService::DescribeCacheSubnetGroups),
      op("ModifyCacheSubnetGroup", Access::kWrite, &ElastiCacheService::ModifyCacheSubnetGroup,
         {{"SubnetIds", 20, "SubnetIdentifier"}}),
      op("DeleteCacheSubnetGroup", Access::kWrite, &ElastiCacheService::DeleteCacheSubnetGroup),
      op("DeleteReplicationGroup", Access::kWrite, &ElastiCacheService::DeleteReplicationGroup),
      op("DescribeCacheClusters", Access::kRead, &ElastiCacheService::DescribeCacheClusters),
      op("TestFailover", Access::kWrite, &ElastiCacheService::TestFailover),
      op("DescribeEvents", Access::kRead, &ElastiCacheService::DescribeEvents),
      op("DescribeCacheParameterGroups", Access::kRead, &ElastiCacheService::DescribeCacheParameterGroups),
      op("DescribeCacheEngineVersions", Access::kRead, &ElastiCacheService::DescribeCacheEngineVersions),
      op("ModifyReplicationGroup", Access::kWrite, &ElastiCacheService::ModifyReplicationGroup),
      op("IncreaseReplicaCount", Access::kWrite, &ElastiCacheService::IncreaseReplicaCount,
         {{"ReplicaConfiguration", 90, "ConfigureShard"}}),
      op("DecreaseReplicaCount", Access::kWrite, &ElastiCacheService::DecreaseReplicaCount,
         {{"ReplicaConfiguration", 90, "ConfigureShard"}, {"ReplicasToRemove", 450}}),
      op("AddTagsToResource", Access::kWrite, &ElastiCacheService::AddTagsToResource, {{"Tags", 50, "Tag"}}),
      op("ListTagsForResource", Access::kRead, &ElastiCacheService::ListTagsForResource),
      op("RemoveTagsFromResource", Access::kWrite, &ElastiCacheService::RemoveTagsFromResource, {{"TagKeys", 50}}),
      op("CreateSnapshot", Access::kWrite, &ElastiCacheService::CreateSnapshot, {{"Tags", 50, "Tag"}}),
      op("DescribeSnapshots", Access::kRead, &ElastiCacheService::DescribeSnapshots),
      op("DeleteSnapshot", Access::kWrite, &ElastiCacheService::DeleteSnapshot),
      op("CopySnapshot", Access::kWrite, &ElastiCacheService::CopySnapshot, {{"Tags", 50, "Tag"}}),
      op("DescribeCacheParameters", Access::kRead, &ElastiCacheService::DescribeCacheParameters),
      op("ModifyReplicationGroupShardConfiguration", Access::kWrite,
         &ElastiCacheService::ModifyReplicationGroupShardConfiguration,
         {{"ReshardingConfiguration", 90, "ReshardingConfiguration"},
          {"NodeGroupsToRemove", 90, "NodeGroupToRemove"},
          {"NodeGroupsToRetain", 90, "NodeGroupToRetain"}}),
  };
  api.write_lock = ctx->mu;
  api.after_write = [ctx] {
    if (ctx->wake) ctx->wake();
  };
  return api;
}

}  // namespace autopipe

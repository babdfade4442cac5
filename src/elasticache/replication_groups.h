// ElastiCache for Redis replication groups as store documents, and the rules the API and the controller share:
// names, slot splitting, AZ placement, the default parameter groups, node sizing, where files and endpoints live.
//
// Documents (docs/design.md, "ElastiCache"):
//   cache_replication_group (id = ReplicationGroupId, lower case): what DescribeReplicationGroups shows —
//     ReplicationGroupId, Description, Status (creating|available|modifying|deleting), ClusterEnabled,
//     AutomaticFailoverEnabled, MultiAZEnabled, CacheNodeType, Engine, EngineVersion, CacheParameterGroupName,
//     Port, CreateTime (ms), SnapshotRetentionLimit, SnapshotWindow, Tags [{Key, Value}], AddressIndex (k of the
//     endpoint addresses 127.N.220.k / 127.N.221.k), ARN,
//     NodeGroups [{NodeGroupId "0001", Slots "0-8191", Members [cluster id...], Primary (cluster id)}].
//     The API writes it; the controller moves Status and Primary.
//   cache_node (id = CacheClusterId "<rg>-0001-001"): one redis-server — ReplicationGroupId, NodeGroupId,
//     CacheNodeId "0001", AvailabilityZone, Address (its own private address), Port, CreateTime,
//     Status (creating|available|recovering|deleting), RedisNodeId (CLUSTER MYID), Generation (bumped on
//     every rebuild), and the supervisor's record (Pid, PidStartTime, LaunchToken, RunAsUid ...). The API creates
//     node documents (CreateReplicationGroup, IncreaseReplicaCount); from then on the controller is their only
//     writer: a node that no shard of its group lists any more is deleted by it.
//   cache_endpoint (id = "<rg>/configuration" in cluster mode, "<rg>/primary" and "<rg>/reader" otherwise):
//     one `autopipe lb` TCP node that is the stable endpoint — ReplicationGroupId, Role, Address, Port,
//     ConfigVersion and the supervisor's record.
//   cache_event (id = "<ms, 13 digits>-<seq>"): DescribeEvents' entries — SourceIdentifier, SourceType, Message,
//     Date (ms).
//   cache_snapshot (id = SnapshotName): one snapshot — SnapshotName, ReplicationGroupId, SnapshotStatus
//     (creating|available|failed), SnapshotSource (manual|automated), the group's settings at the time
//     (CacheNodeType, EngineVersion, CacheParameterGroupName, Port, AutomaticFailoverEnabled, ClusterEnabled,
//     Description, SnapshotRetentionLimit, SnapshotWindow), CreateTime (ms), ARN, and NodeSnapshots
//     [{NodeGroupId, Slots, CacheClusterId (the node it was taken from), PrimaryAvailabilityZone,
//     ReplicaAvailabilityZones, ReplicaCount, File ("<ng>.rdb"), Sha256, Bytes, SnapshotCreateTime (ms),
//     BgsaveFrom (LASTSAVE before the BGSAVE was asked for, while creating)}]. The API creates it (creating);
//     the controller of its group takes the RDBs and makes it available.
//
// Files: <data dir>/elasticache/<rg>/<cluster id>/{redis.conf,nodes.conf,redis.log} for nodes (owned by the
// node's own uid when the server runs as root), <data dir>/elasticache/<rg>/endpoint-<role>/ for endpoints.
//
// Thread-safety: pure functions, except those taking a RegionContext, which read the store (call with
// RegionContext::mu held when the answer must agree with a write that follows).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/status.h"
#include "region/context.h"
#include "store/store.h"

namespace autopipe {
namespace kind {
inline constexpr char kCacheReplicationGroup[] = "cache_replication_group";
inline constexpr char kCacheNode[] = "cache_node";
inline constexpr char kCacheEndpoint[] = "cache_endpoint";
inline constexpr char kCacheEvent[] = "cache_event";
inline constexpr char kCacheSnapshot[] = "cache_snapshot";
}  // namespace kind
}  // namespace autopipe

namespace autopipe::elasticache {

inline constexpr int kSlotCount = 16384;
inline constexpr int kMaxNodeGroups = 90;
inline constexpr int kMaxReplicas = 5;
inline constexpr int kMaxNodesPerGroup = 500;
inline constexpr int kDefaultPort = 6379;
// Endpoints: 127.N.<kEndpointOctet>.k (configuration or primary), 127.N.<kEndpointOctet + 1>.k (reader).
inline constexpr int kEndpointOctet = 220;

namespace rg_status {
inline constexpr char kCreating[] = "creating";
inline constexpr char kAvailable[] = "available";
inline constexpr char kModifying[] = "modifying";
inline constexpr char kDeleting[] = "deleting";
inline constexpr char kSnapshotting[] = "snapshotting";
}  // namespace rg_status

namespace snapshot_status {
inline constexpr char kCreating[] = "creating";
inline constexpr char kAvailable[] = "available";
inline constexpr char kFailed[] = "failed";
}  // namespace snapshot_status

namespace node_status {
inline constexpr char kCreating[] = "creating";
inline constexpr char kAvailable[] = "available";
inline constexpr char kRecovering[] = "recovering";  // its process failed: being rebuilt empty, as a replica
inline constexpr char kDeleting[] = "deleting";
}  // namespace node_status

// ---- names ------------------------------------------------------------------------------------------------------

// ReplicationGroupId rules (§3): 1-40 characters, letters, digits and hyphens, starting with a letter, no
// trailing or double hyphen. InvalidParameterValue with AWS's message otherwise.
Status ValidateReplicationGroupId(const std::string& id);
std::string Lower(std::string s);
std::string NodeGroupIdFor(int shard_index);  // 0 -> "0001"
std::string MemberClusterId(const std::string& rg, const std::string& node_group_id, int member_index);  // 0 -> 001
// Non-cluster mode names its clusters "<rg>-001", "<rg>-002", ...
std::string NonClusterMemberId(const std::string& rg, int member_index);

// ---- slots ------------------------------------------------------------------------------------------------------

struct SlotRange {
  int first = 0;
  int last = 0;  // inclusive
  bool operator==(const SlotRange&) const = default;
};

// ElastiCache's equal split (§3): each of n shards gets floor(16384/n) slots and the first 16384 mod n one more.
std::vector<SlotRange> SplitSlots(int shards);
std::string FormatSlots(const SlotRange& r);  // "0-8191"
// "a-b" with 0 <= a <= b <= 16383 (a single slot "a" too); InvalidParameterValue otherwise.
Result<SlotRange> ParseSlots(const std::string& text);
// A shard's slots as a set (one flag per slot) and back: "0-100,200-300" (ElastiCache's Slots text while a
// shard holds several ranges, during resharding); "" is no slot.
std::vector<bool> SlotSet(const std::string& text);
std::string FormatSlotSet(const std::vector<bool>& slots);
// The ranges must not overlap and must together cover 0-16383.
Status CheckSlotCoverage(const std::vector<SlotRange>& ranges);

// ---- parameter groups, engine versions, node types -------------------------------------------------------------

struct ParameterGroupInfo {
  std::string name;    // default.redis5.0.cluster.on
  std::string family;  // redis5.0
  bool cluster_enabled = false;
  std::string engine_version;  // the version shown for this family when EngineVersion is not given
};
const std::vector<ParameterGroupInfo>& DefaultParameterGroups();
const ParameterGroupInfo* FindParameterGroup(const std::string& name);
// The default parameter group for an engine version ("5.0.6" -> default.redis5.0), nullptr when unknown.
const ParameterGroupInfo* DefaultParameterGroupFor(const std::string& engine_version, bool cluster_enabled);
// The Redis that really runs every node, whatever EngineVersion says.
inline constexpr char kRunningRedisVersion[] = "7.0";

// maxmemory for a node type, in MiB: small defaults so that many nodes fit one machine (docs/design.md).
int MaxMemoryMibFor(const std::string& node_type);
bool IsKnownNodeType(const std::string& node_type);

// ---- placement --------------------------------------------------------------------------------------------------

struct ShardPlan {
  std::string node_group_id;
  SlotRange slots;
  std::string primary_az;
  std::vector<std::string> replica_azs;  // one per replica
};

// AZs for shard `shard_index` when the caller gave none: primaries rotate over the region's AZs, each shard's
// replicas go to the AZs after its primary's, in turn.
std::string DefaultPrimaryAz(const std::vector<std::string>& azs, int shard_index);
std::vector<std::string> DefaultReplicaAzs(const std::vector<std::string>& azs, const std::string& primary_az,
                                           int replicas);
// Multi-AZ when every shard with nodes has a replica outside its primary's AZ.
bool EveryShardSpansAzs(const std::vector<ShardPlan>& plan);

// ---- where things live ------------------------------------------------------------------------------------------

std::string GroupDir(const RegionContext& ctx, const std::string& rg);
std::string NodeDir(const RegionContext& ctx, const std::string& rg, const std::string& cluster_id);
std::string EndpointDir(const RegionContext& ctx, const std::string& rg, const std::string& role);
std::string EndpointAddress(const RegionContext& ctx, int address_index, bool reader);
// <data dir>/elasticache-snapshots/<snapshot name>: its RDB files, one per shard.
std::string SnapshotDir(const RegionContext& ctx, const std::string& snapshot_name);

// ---- snapshots ---------------------------------------------------------------------------------------------------

// SnapshotName rules (as a cluster id): 1-255 letters, digits and hyphens, starting with a letter, no trailing or
// double hyphen; automatic snapshots are named "automatic.<rg>-YYYY-MM-DD-HH-MM" and may hold those dots.
Status ValidateSnapshotName(const std::string& name);
// A SnapshotWindow "hh:mm-hh:mm" (UTC, at least 60 minutes): minutes after midnight of its start and its length.
struct DailyWindow {
  int start_minute = 0;
  int minutes = 60;
};
Result<DailyWindow> ParseSnapshotWindow(const std::string& text);
// The start (ms) of the window occurrence that contains now_millis, nullopt when now is outside the window.
std::optional<int64_t> WindowOpenedAt(const DailyWindow& w, int64_t now_millis);
std::string AutomaticSnapshotName(const std::string& rg, int64_t at_millis);
// A new snapshot document of `rg` (status creating, one NodeSnapshot per shard, none taken yet). `az_of` gives
// each member cluster's AZ.
Json NewSnapshotDocument(const Json& rg, const std::map<std::string, std::string>& az_of, const std::string& name,
                         const std::string& source, int64_t now_millis, const std::string& arn);
// SHA-256 of a file, in hex.
Result<std::string> FileSha256(const std::string& path);
// A free endpoint address index (1..254) among the groups in the store; nullopt when all are taken.
std::optional<int> FreeAddressIndex(const RegionContext& ctx);

// ---- in-transit encryption and AUTH ------------------------------------------------------------------------------

// The group document keeps (never rendered by any API answer, never logged): TransitEncryptionEnabled,
// TransitEncryptionMode, AtRestEncryptionEnabled, AuthTokens [newest first: the tokens every node accepts],
// AuthPasswordless (a ROTATE on a group without a token: connections without AUTH still work),
// AuthPreviousTokens (what nodes accepted before the last change, while it rolls out), AuthVersion (bumped by each
// change; each node document records the AuthVersion it holds) and AuthTokenLastModifiedDate (ms).
//
// AuthToken rules (AWS): 16-128 printable ASCII characters, and besides letters and digits only ! & # $ ^ < > -.
// InvalidParameterValue "Invalid AuthToken provided." otherwise.
Status ValidateAuthToken(const std::string& token);
// What the control plane passes to RedisConnection::Connect for a node of `rg`: TLS with the region's CA when
// the group has transit encryption, and every token a node of it may hold (current first, then previous).
struct ConnectOptions;
Result<ConnectOptions> NodeAccess(const RegionContext& ctx, const Json& rg);
// The token nodes use to reach each other (masterauth, MIGRATE's AUTH2): the newest, "" for none.
std::string CurrentAuthToken(const Json& rg);
// hex SHA-256 of a token: what Redis's ACL takes (#<hash>) so that no plaintext token sits in a command or file
// that does not need it.
std::string TokenHash(const std::string& token);

// ---- events -----------------------------------------------------------------------------------------------------

// The store write for one DescribeEvents entry. `seq` orders events recorded in the same millisecond.
StoreWrite EventWrite(const std::string& source_id, const std::string& source_type, const std::string& message,
                      int64_t now_millis, int seq = 0);

}  // namespace autopipe::elasticache

// ElastiCache cache subnet groups: CreateCacheSubnetGroup, DescribeCacheSubnetGroups, ModifyCacheSubnetGroup,
// DeleteCacheSubnetGroup, the `default` group, and the zones a replication group's nodes may be placed in.
//
// A cache_subnet_group document (id = CacheSubnetGroupName, lower-cased as ElastiCache stores it):
// CacheSubnetGroupName, CacheSubnetGroupDescription, SubnetIds [subnet-...] (default subnets of this region's VPC,
// ec2/vpc.h), Tags [{Key, Value}]. The `default` group (every default subnet) is never stored: it is always
// there, and can be neither modified nor deleted. A replication group document names its group in
// CacheSubnetGroupName ("default" when the request gave none); its nodes' zones are among the group's.
//
// Thread-safety: call with RegionContext::mu held (the router holds it for writes).
#pragma once

#include <string>
#include <vector>

#include "api/protocol.h"
#include "common/status.h"
#include "region/context.h"

namespace autopipe {
namespace kind {
inline constexpr char kCacheSubnetGroup[] = "cache_subnet_group";
}  // namespace kind
}  // namespace autopipe

namespace autopipe::elasticache {

inline constexpr char kDefaultCacheSubnetGroup[] = "default";

// The group `name` (any case), `default` synthesised; CacheSubnetGroupNotFoundFault when there is none.
Result<Json> LoadCacheSubnetGroup(const RegionContext& ctx, const std::string& name);
// The zones of a group's subnets, in the catalog's order.
std::vector<std::string> CacheSubnetGroupZones(const RegionContext& ctx, const Json& group);
// The zones a replication group's nodes may use: its subnet group's (every zone when that group is gone).
std::vector<std::string> ZonesForReplicationGroup(const RegionContext& ctx, const Json& rg);
// InvalidParameterValue unless `az` is a zone of subnet group `group_name` (`zones` its zones).
Status CheckZoneInGroup(const RegionContext& ctx, const std::string& group_name, const std::vector<std::string>& zones,
                        const std::string& az);

// The operations (elasticache_service.cc adds them to its table). Each returns the response body.
Result<Json> CreateCacheSubnetGroup(RegionContext& ctx, const Params& p, const Json& tags);
Result<Json> DescribeCacheSubnetGroups(const RegionContext& ctx, const Params& p);
Result<Json> ModifyCacheSubnetGroup(RegionContext& ctx, const Params& p);
Result<Json> DeleteCacheSubnetGroup(RegionContext& ctx, const Params& p);
// arn:aws:elasticache:<region>:<account>:subnetgroup:<name>
std::string CacheSubnetGroupArn(const RegionContext& ctx, const std::string& name);

// ElastiCache's out-of-range MaxRecords answer: "Invalid value for max records. Must be between <lo> and <hi>".
Status MaxRecordsOutOfRange(int64_t lo, int64_t hi);

}  // namespace autopipe::elasticache

// RDS DB subnet groups: CreateDBSubnetGroup, DescribeDBSubnetGroups, ModifyDBSubnetGroup, DeleteDBSubnetGroup,
// the `default` group, and what DB instances take from them (which zones their servers may be placed in, and the
// DBSubnetGroup block DescribeDBInstances shows).
//
// A db_subnet_group document (id = DBSubnetGroupName, lower-cased as RDS stores it): DBSubnetGroupName,
// DBSubnetGroupDescription, SubnetIds [subnet-...] (default subnets of this region's VPC, ec2/vpc.h), Tags
// [{Key, Value}]. The `default` group (every default subnet) is never stored: it is always there, and can be
// neither modified nor deleted. A DB instance document names its group in DBSubnetGroupName ("default" when the
// request gave none).
//
// Thread-safety: call with RegionContext::mu held (the router holds it for writes).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "api/protocol.h"
#include "common/status.h"
#include "region/context.h"

namespace autopipe {
namespace kind {
inline constexpr char kDbSubnetGroup[] = "db_subnet_group";
}  // namespace kind
}  // namespace autopipe

namespace autopipe::rds {

inline constexpr char kDefaultSubnetGroup[] = "default";

// The group `name` (any case) as a document of the form above (`default` synthesised);
// DBSubnetGroupNotFoundFault when there is none.
Result<Json> LoadDbSubnetGroup(const RegionContext& ctx, const std::string& name);
// The zones of a group's subnets, in the catalog's order.
std::vector<std::string> SubnetGroupZones(const RegionContext& ctx, const Json& group);
// The zones a DB instance's servers may be placed in: its group's (every zone when the group is gone).
std::vector<std::string> ZonesForInstance(const RegionContext& ctx, const Json& db);
// DescribeDBInstances' DBSubnetGroup block of a DB instance (DBSubnetGroupName, Description, VpcId,
// SubnetGroupStatus, Subnets [{SubnetIdentifier, SubnetAvailabilityZone {Name}, SubnetOutpost, SubnetStatus}]).
Json DbSubnetGroupOfInstance(const RegionContext& ctx, const Json& db);

// The operations (rds_service.cc adds them to its table). Each returns the response body.
Result<Json> CreateDbSubnetGroup(RegionContext& ctx, const Params& p, const Json& tags);
Result<Json> DescribeDbSubnetGroups(const RegionContext& ctx, const Params& p);
Result<Json> ModifyDbSubnetGroup(RegionContext& ctx, const Params& p);
Result<Json> DeleteDbSubnetGroup(RegionContext& ctx, const Params& p);

// Tags of a DB subnet group named by its ARN (arn:aws:rds:<region>:<account>:subgrp:<name>): nullopt when `arn`
// is not such an ARN of this region; DBSubnetGroupNotFoundFault when no such group exists.
std::optional<Result<Json>> AddSubnetGroupTags(RegionContext& ctx, const std::string& arn, const Json& tags);
std::optional<Result<Json>> ListSubnetGroupTags(const RegionContext& ctx, const std::string& arn);
std::optional<Result<Json>> RemoveSubnetGroupTags(RegionContext& ctx, const std::string& arn,
                                                  const std::vector<std::string>& keys);

// RDS's out-of-range MaxRecords answer: "Invalid value <n> for MaxRecords. Must be between <lo> and <hi>".
Status MaxRecordsOutOfRange(int64_t value, int64_t lo, int64_t hi);

}  // namespace autopipe::rds

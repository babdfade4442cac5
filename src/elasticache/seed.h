// The seed's replication group (../shared/seed/ §2) as `autopipe up` creates it: the seed's call with the three
// corrections it needs to run at all (docs/design.md, "ElastiCache for Redis": CacheNodeType for NodeType, AZs per
// node group instead of AvailabilityZones, the cluster-mode parameter group default.redis5.0.cluster.on with
// AutomaticFailoverEnabled).
//
// Thread-safety: as ApiRouter::Invoke (safe from any thread once the router is configured).
#pragma once

#include <chrono>
#include <string>

#include "api/api_server.h"

namespace autopipe::elasticache {

inline constexpr char kSeedReplicationGroupId[] = "auto-pipeline-redis";

// The CreateReplicationGroup parameters of the corrected seed call, for `region`'s AZs a and b.
FormParams SeedReplicationGroupParams(const std::string& region);

// Creates the seed's group unless it exists (it forms in the background); "" or what went wrong.
std::string CreateSeedReplicationGroup(const ApiRouter& api, const std::string& region);

// Waits up to `wait` for the seed's group to be available and returns what `autopipe up` prints about it
// (status, shards, configuration endpoint, a redis-cli line).
std::string DescribeSeedReplicationGroup(const ApiRouter& api, const std::string& region,
                                         std::chrono::milliseconds wait);

}  // namespace autopipe::elasticache

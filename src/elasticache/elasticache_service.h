// The ElastiCache API (2015-02-02, Query protocol), Redis only: replication groups in cluster mode (shards with
// their slots, replicas and AZs) and in non-cluster mode (one primary and its replicas), their member cache
// clusters, TestFailover (15 node groups per rolling 24 h), events, snapshots (Create/Describe/Delete/Copy,
// FinalSnapshotIdentifier, a group created from one), online resharding (ModifyReplicationGroupShardConfiguration),
// and the default parameter groups (with their parameters) and engine versions. Handlers validate as
// AWS does (AWS-SEMANTICS.md §3), write the documents of elasticache/replication_groups.h and return; the
// CacheClusterController starts the redis-server nodes, forms the cluster and fails over.
//
// Thread-safety: the writing operations run under RegionContext::mu, held by the router (ApiService); the
// Describe operations only read the store and take no lock.
#pragma once

#include "api/api_server.h"
#include "region/context.h"

namespace autopipe {

ApiService ElastiCacheApi(RegionContext* ctx);

}  // namespace autopipe

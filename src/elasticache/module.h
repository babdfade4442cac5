// The ElastiCache module: Redis replication groups (the elasticache API), the CacheClusterController that runs
// their redis-server nodes and stable endpoints and fails them over, the node and endpoint process kinds (so
// `autopipe down` stops them) and the private addresses the nodes hold, and
// the AWS/ElastiCache metrics of every node (elasticache/metrics.h).
//
// Thread-safety: see region/module.h.
#pragma once

#include "region/module.h"

namespace autopipe {

ServiceModule ElastiCacheModule();

}  // namespace autopipe

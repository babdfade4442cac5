// AWS/ElastiCache metrics measured from the nodes themselves (INFO), per node: dimensions CacheClusterId and
// CacheNodeId, as CloudWatch names them.
//
//   CPUUtilization, EngineCPUUtilization  Percent: the redis-server's used_cpu_sys + used_cpu_user between two
//                                         collections over the time between them (a node is one process here,
//                                         so both are the same figure)
//   CurrConnections                       Count: connected_clients
//   DatabaseMemoryUsagePercentage         Percent: used_memory / maxmemory
//   ReplicationLag                        Seconds: replicas only, master_last_io_seconds_ago
//   CacheHits, CacheMisses                Count: keyspace_hits / keyspace_misses since the previous collection
// A node that does not answer within 150 ms is skipped for that collection.
//
// Thread-safety: CacheMetrics is safe to call from any thread (its memory of the previous readings is guarded).
#pragma once

#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "region/context.h"
#include "region/module.h"

namespace autopipe::elasticache {

class CacheMetrics {
 public:
  void Collect(RegionContext* ctx, int64_t now_millis, std::vector<MetricSample>* out);

 private:
  struct Last {
    int64_t at_millis = 0;
    double cpu_seconds = 0;
    double hits = 0;
    double misses = 0;
  };
  std::mutex mu_;
  std::map<std::string, Last> last_;  // by cluster id + generation; guarded by mu_
};

}  // namespace autopipe::elasticache

// AWS/RDS metrics of the region's DB instances, measured from the real servers (dimension DBInstanceIdentifier):
//   CPUUtilization       the primary mariadbd's CPU time over the interval, over its class's vCPUs (Percent)
//   DatabaseConnections  Threads_connected on the primary (Count)
//   FreeStorageSpace     AllocatedStorage minus the primary's data dir (Bytes)
//   ReplicaLag           the standby's Seconds_Behind_Master, Multi-AZ only (Seconds)
// CPU needs two readings: the first collection of an instance gives no CPUUtilization.
//
// Thread-safety: CollectDbMetrics may be called from any thread (its CPU readings are kept under a mutex); it
// takes RegionContext::mu only to read the documents.
#pragma once

#include <vector>

#include "region/module.h"

namespace autopipe::rds {

void CollectDbMetrics(RegionContext* ctx, int64_t now_millis, std::vector<MetricSample>* out);

}  // namespace autopipe::rds

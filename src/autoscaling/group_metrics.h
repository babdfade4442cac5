// AWS/AutoScaling group metrics (dimension AutoScalingGroupName), read from the group documents: GroupMinSize,
// GroupMaxSize, GroupDesiredCapacity, GroupInServiceInstances, GroupPendingInstances, GroupStandbyInstances,
// GroupTerminatingInstances, GroupTotalInstances (Count). A group whose document lists "EnabledMetrics" (set by
// EnableMetricsCollection: names, or {"Metric": name} objects) publishes only those; a group without the field
// publishes all of them.
//
// Thread-safety: safe from any thread; call without RegionContext::mu held (store reads only).
#pragma once

#include <cstdint>
#include <vector>

#include "region/module.h"

namespace autopipe {

void CollectGroupMetrics(RegionContext* ctx, int64_t now_millis, std::vector<MetricSample>* out);

}  // namespace autopipe

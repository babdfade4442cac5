// AWS/ELB metrics from the load-balancer nodes' counters (elb::ReadLoadBalancerMetrics), with ELB's dimensions:
// per load balancer and AZ {LoadBalancerName, AvailabilityZone}, and per load balancer {LoadBalancerName}.
// Counters (RequestCount, HTTPCode_ELB_4XX/5XX, HTTPCode_Backend_2XX..5XX, BackendConnectionErrors,
// SpilloverCount) are published as the difference since the previous reading (Sum over a period gives the total;
// a node restart, a smaller reading, starts a new baseline); Latency (Seconds) as the mean over the requests since
// the previous reading; HealthyHostCount, UnHealthyHostCount and SurgeQueueLength as they are now.
//
// Thread-safety: safe from any thread (the baselines have their own lock); call without RegionContext::mu held.
#pragma once

#include <cstdint>
#include <vector>

#include "region/module.h"

namespace autopipe {

void CollectLoadBalancerMetrics(RegionContext* ctx, int64_t now_millis, std::vector<MetricSample>* out);

}  // namespace autopipe

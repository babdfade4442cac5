#include "elb/lb_metrics.h"

#include <map>
#include <mutex>
#include <string>
#include <tuple>

#include "elb/load_balancers.h"

namespace autopipe {
namespace {

std::mutex baselines_mu;
std::map<std::tuple<const RegionContext*, std::string, std::string>, lb::NodeMetrics> baselines;  // guarded

// The counters as (metric name, value) pairs.
std::vector<std::pair<const char*, double>> Counters(const lb::NodeMetrics& m) {
  return {{"RequestCount", static_cast<double>(m.request_count)},
          {"HTTPCode_ELB_4XX", static_cast<double>(m.elb_4xx)},
          {"HTTPCode_ELB_5XX", static_cast<double>(m.elb_5xx)},
          {"HTTPCode_Backend_2XX", static_cast<double>(m.backend_2xx)},
          {"HTTPCode_Backend_3XX", static_cast<double>(m.backend_3xx)},
          {"HTTPCode_Backend_4XX", static_cast<double>(m.backend_4xx)},
          {"HTTPCode_Backend_5XX", static_cast<double>(m.backend_5xx)},
          {"BackendConnectionErrors", static_cast<double>(m.backend_connection_errors)},
          {"SpilloverCount", static_cast<double>(m.spillover_count)}};
}

}  // namespace

void CollectLoadBalancerMetrics(RegionContext* ctx, int64_t now_millis, std::vector<MetricSample>* out) {
  std::lock_guard lock(baselines_mu);
  for (const auto& doc : ctx->store->List(kind::kLoadBalancer)) {
    const std::string name = (*doc).value("LoadBalancerName", std::string());
    std::map<std::string, double> lb_totals;
    double latency_sum = 0, latency_count = 0;
    bool any = false;
    for (const auto& az : elb::ReadLoadBalancerMetrics(*ctx, *doc)) {
      if (!az.reporting) continue;
      any = true;
      const std::vector<std::pair<std::string, std::string>> dims = {{"LoadBalancerName", name},
                                                                     {"AvailabilityZone", az.availability_zone}};
      auto key = std::make_tuple(static_cast<const RegionContext*>(ctx), name, az.availability_zone);
      auto prev = baselines.find(key);
      const bool restarted = prev == baselines.end() || az.counters.request_count < prev->second.request_count ||
                             az.counters.latency_count < prev->second.latency_count;
      lb::NodeMetrics base = restarted ? lb::NodeMetrics{} : prev->second;
      const bool first = prev == baselines.end();
      baselines[key] = az.counters;
      auto now_counters = Counters(az.counters);
      auto base_counters = Counters(base);
      for (size_t i = 0; i < now_counters.size(); ++i) {
        double delta = first ? 0 : now_counters[i].second - base_counters[i].second;
        if (delta < 0) delta = 0;
        lb_totals[now_counters[i].first] += delta;
        out->push_back(MetricSample{"AWS/ELB", now_counters[i].first, dims, delta, "Count", now_millis});
      }
      const double count = first ? 0 : static_cast<double>(az.counters.latency_count - base.latency_count);
      const double sum = first ? 0 : az.counters.latency_sum_seconds - base.latency_sum_seconds;
      if (count > 0) {
        out->push_back(MetricSample{"AWS/ELB", "Latency", dims, sum / count, "Seconds", now_millis});
        latency_sum += sum;
        latency_count += count;
      }
      const std::pair<const char*, double> gauges[] = {
          {"HealthyHostCount", az.healthy_host_count},
          {"UnHealthyHostCount", az.unhealthy_host_count},
          {"SurgeQueueLength", static_cast<double>(az.counters.surge_queue_length)}};
      for (const auto& [metric, value] : gauges) {
        out->push_back(MetricSample{"AWS/ELB", metric, dims, value, "Count", now_millis});
        lb_totals[metric] += value;
      }
    }
    if (!any) continue;
    for (const auto& [metric, value] : lb_totals) {
      out->push_back(MetricSample{"AWS/ELB", metric, {{"LoadBalancerName", name}}, value, "Count", now_millis});
    }
    if (latency_count > 0) {
      out->push_back(MetricSample{"AWS/ELB", "Latency", {{"LoadBalancerName", name}}, latency_sum / latency_count,
                                  "Seconds", now_millis});
    }
  }
}

}  // namespace autopipe

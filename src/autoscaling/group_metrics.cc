#include "autoscaling/group_metrics.h"

#include <set>
#include <string>

#include "autoscaling/groups.h"

namespace autopipe {

void CollectGroupMetrics(RegionContext* ctx, int64_t now_millis, std::vector<MetricSample>* out) {
  for (const auto& doc : ctx->store->List(kind::kAutoScalingGroup)) {
    const Json& g = *doc;
    const std::string name = g.value("AutoScalingGroupName", std::string());
    if (name.empty()) continue;
    std::optional<std::set<std::string>> enabled;
    if (g.contains("EnabledMetrics") && g["EnabledMetrics"].is_array()) {
      enabled.emplace();
      for (const auto& m : g["EnabledMetrics"]) {
        if (m.is_string()) enabled->insert(m.get<std::string>());
        else if (m.is_object()) enabled->insert(m.value("Metric", std::string()));
      }
    }
    int in_service = 0, pending = 0, standby = 0, terminating = 0, total = 0;
    if (g.contains("Instances")) {
      for (const auto& [id, member] : g["Instances"].items()) {
        const std::string state = member.value("LifecycleState", std::string());
        ++total;
        if (state == "InService") ++in_service;
        else if (state.rfind("Pending", 0) == 0) ++pending;
        else if (state.rfind("Standby", 0) == 0) ++standby;
        else if (state.rfind("Terminating", 0) == 0) ++terminating;
      }
    }
    const std::pair<const char*, double> metrics[] = {
        {"GroupMinSize", g.value("MinSize", 0)},
        {"GroupMaxSize", g.value("MaxSize", 0)},
        {"GroupDesiredCapacity", g.value("DesiredCapacity", 0)},
        {"GroupInServiceInstances", in_service},
        {"GroupPendingInstances", pending},
        {"GroupStandbyInstances", standby},
        {"GroupTerminatingInstances", terminating},
        {"GroupTotalInstances", total},
    };
    for (const auto& [metric, value] : metrics) {
      if (enabled && !enabled->count(metric)) continue;
      out->push_back(MetricSample{"AWS/AutoScaling", metric, {{"AutoScalingGroupName", name}}, value, "None",
                                  now_millis});
    }
  }
}

}  // namespace autopipe

#include "autoscaling/module.h"

#include "api/api_server.h"
#include "autoscaling/autoscaling_service.h"
#include "autoscaling/group_controller.h"
#include "autoscaling/policies.h"
#include "autoscaling/group_metrics.h"

namespace autopipe {

ServiceModule AutoScalingModule() {
  ServiceModule m;
  m.name = "autoscaling";
  m.document_kinds = {kind::kLaunchConfiguration, kind::kAutoScalingGroup, kind::kActivity, kind::kScalingPolicy};
  m.add_api = [](RegionContext* ctx, ApiRouter* router) {
    router->AddService(AutoScalingApi(ctx));
  };
  m.controllers = [](RegionContext* ctx) {
    std::vector<std::unique_ptr<Controller>> v;
    v.push_back(std::make_unique<GroupController>(ctx));
    return v;
  };
  // Alarms whose actions name a scaling policy run it (autoscaling/policies.h).
  m.alarm_action_targets = {{"arn:aws:autoscaling:", RunPolicyForAlarm}};
  m.collect_metrics = CollectGroupMetrics;
  return m;
}

}  // namespace autopipe

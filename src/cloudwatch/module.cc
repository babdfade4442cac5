#include "cloudwatch/module.h"

#include <spdlog/spdlog.h>

#include "api/api_server.h"
#include "cloudwatch/cloudwatch_controller.h"
#include "cloudwatch/cloudwatch_service.h"

namespace autopipe {

ServiceModule CloudWatchModule() {
  ServiceModule m;
  m.name = "cloudwatch";
  m.document_kinds = {cloudwatch::kind::kAlarm, cloudwatch::kind::kAlarmHistory};
  m.add_api = [](RegionContext* ctx, ApiRouter* router) {
    auto region = cloudwatch::CloudWatchRegion::For(ctx);
    if (!region.ok()) {
      spdlog::error("cloudwatch: {} (the monitoring API is not served)", region.status().ToString());
      return;
    }
    router->AddService(cloudwatch::CloudWatchApi(ctx, *region));
  };
  m.controllers = [](RegionContext* ctx) {
    std::vector<std::unique_ptr<Controller>> v;
    auto region = cloudwatch::CloudWatchRegion::For(ctx);
    if (region.ok()) v.push_back(std::make_unique<cloudwatch::CloudWatchController>(*region));
    return v;
  };
  return m;
}

}  // namespace autopipe

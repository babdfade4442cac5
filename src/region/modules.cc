// The region's modules. Adding a service: a folder with its module.cc, and one line in the list below.
#include "autoscaling/module.h"
#include "cloudwatch/module.h"
#include "ec2/module.h"
#include "elasticache/module.h"
#include "elb/module.h"
#include "rds/module.h"
#include "region/module.h"
#include "sns/module.h"
#include "sts/module.h"

namespace autopipe {

const std::vector<ServiceModule>& AllModules() {
  // In the order one change flows: groups launch instances, instances start, load-balancer nodes route to them.
  static const std::vector<ServiceModule> modules = {
      AutoScalingModule(),
      Ec2Module(),
      ElbModule(),
      RdsModule(),
      SnsModule(),
      ElastiCacheModule(),
      CloudWatchModule(),
      StsModule(),
  };
  return modules;
}

void WireModules(RegionContext* ctx, ApiRouter* router, ControllerRuntime* runtime,
                 const std::function<bool(const ServiceModule&)>& include,
                 std::vector<OperationType> extra_operations) {
  std::vector<OperationType> operations = std::move(extra_operations);
  for (const auto& m : AllModules()) {
    if (include && !include(m)) continue;
    if (m.add_api && router) m.add_api(ctx, router);
    if (m.controllers && runtime) {
      for (auto& c : m.controllers(ctx)) runtime->Add(std::move(c));
    }
    operations.insert(operations.end(), m.operation_types.begin(), m.operation_types.end());
  }
  if (runtime) runtime->Add(std::make_unique<OperationController>(ctx, std::move(operations)));
}

}  // namespace autopipe

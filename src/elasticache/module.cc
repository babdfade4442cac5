#include "elasticache/module.h"

#include "api/api_server.h"
#include "elasticache/cache_controller.h"
#include "elasticache/cache_subnet_groups.h"
#include "elasticache/elasticache_service.h"
#include "elasticache/metrics.h"
#include "elasticache/replication_groups.h"

namespace autopipe {

ServiceModule ElastiCacheModule() {
  ServiceModule m;
  m.name = "elasticache";
  m.document_kinds = {kind::kCacheReplicationGroup, kind::kCacheNode, kind::kCacheEndpoint, kind::kCacheEvent,
                      kind::kCacheSnapshot, kind::kCacheSubnetGroup};
  m.add_api = [](RegionContext* ctx, ApiRouter* router) { router->AddService(ElastiCacheApi(ctx)); };
  m.controllers = [](RegionContext* ctx) {
    std::vector<std::unique_ptr<Controller>> v;
    v.push_back(std::make_unique<CacheClusterController>(ctx));
    return v;
  };
  // Documents stay as they are: the next start finds the processes gone (an available node whose process is
  // gone has failed, and is failed over and rebuilt; endpoints are started again).
  m.process_kinds = {{"cache-node", kind::kCacheNode, nullptr}, {"cache-endpoint", kind::kCacheEndpoint, nullptr}};
  m.addresses_in_use = [](const RegionContext& ctx, std::set<std::string>* in_use) {
    for (const auto& doc : ctx.store->List(kind::kCacheNode)) in_use->insert(doc->value("Address", std::string()));
  };
  m.security_groups_in_use = [](const RegionContext& ctx, std::set<std::string>* in_use) {
    for (const auto& rg : ctx.store->List(kind::kCacheReplicationGroup)) {
      for (const auto& sg : rg->value("SecurityGroupIds", Json::array())) in_use->insert(sg.get<std::string>());
    }
  };
  auto metrics = std::make_shared<elasticache::CacheMetrics>();
  m.collect_metrics = [metrics](RegionContext* ctx, int64_t now, std::vector<MetricSample>* out) {
    metrics->Collect(ctx, now, out);
  };
  return m;
}

}  // namespace autopipe

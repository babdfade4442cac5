#include "rds/module.h"

#include "api/api_server.h"
#include "rds/db_instances.h"
#include "rds/rds_service.h"

namespace autopipe {

ServiceModule RdsModule() {
  ServiceModule m;
  m.name = "rds";
  m.document_kinds = {kind::kDbInstance, kind::kDbInstanceSecret, kind::kRdsEvent};
  m.add_api = [](RegionContext* ctx, ApiRouter* router) { router->AddService(RdsApi(ctx)); };
  return m;
}

}  // namespace autopipe

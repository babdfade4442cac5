#include "rds/module.h"

#include <CLI/CLI.hpp>

#include "api/api_server.h"
#include "rds/db_backups.h"
#include "rds/db_controller.h"
#include "rds/db_endpoint.h"
#include "rds/db_instances.h"
#include "rds/db_metrics.h"
#include "rds/db_snapshots.h"
#include "rds/db_replicas.h"
#include "rds/db_restore.h"
#include "rds/db_subnet_groups.h"
#include "rds/rds_service.h"

namespace autopipe {

ServiceModule RdsModule() {
  ServiceModule m;
  m.name = "rds";
  m.document_kinds = {kind::kDbInstance, kind::kDbInstanceSecret, kind::kRdsEvent, kind::kDbServer,
                      kind::kDbEndpoint, kind::kDbSnapshot, kind::kDbBinlogArchiver, kind::kDbSubnetGroup};
  m.add_api = [](RegionContext* ctx, ApiRouter* router) { router->AddService(RdsApi(ctx)); };
  m.controllers = [](RegionContext* ctx) {
    std::vector<std::unique_ptr<Controller>> v;
    v.push_back(std::make_unique<rds::DbInstanceController>(ctx));
    v.push_back(std::make_unique<rds::DbBackupController>(ctx));
    v.push_back(std::make_unique<rds::DbSnapshotController>(ctx));
    v.push_back(std::make_unique<rds::DbRestoreController>(ctx));
    v.push_back(std::make_unique<rds::DbReplicaController>(ctx));
    return v;
  };
  // Server documents stay as they are: the next start finds their processes gone and restarts them (a
  // primary in place, never a failover: `down` stopped both servers of a pair).
  m.process_kinds = {{"db-server", kind::kDbServer, nullptr}, {"db-endpoint", kind::kDbEndpoint, nullptr},
                     {"db-binlog-archiver", kind::kDbBinlogArchiver, nullptr}};
  m.addresses_in_use = [](const RegionContext& ctx, std::set<std::string>* in_use) {
    for (const auto& server : ctx.store->List(kind::kDbServer)) in_use->insert((*server)["Address"].get<std::string>());
  };
  m.security_groups_in_use = [](const RegionContext& ctx, std::set<std::string>* in_use) {
    for (const auto& db : ctx.store->List(kind::kDbInstance)) {
      for (const auto& sg : db->value("VpcSecurityGroupIds", Json::array())) in_use->insert(sg.get<std::string>());
    }
  };
  m.collect_metrics = rds::CollectDbMetrics;
  m.subcommands = {{"db-endpoint", "(internal) the stable endpoint of one DB instance (rds/db_endpoint.h)", true,
                    [](CLI::App* cmd) {
                      auto config = std::make_shared<std::string>();
                      cmd->add_option("--config", *config, "the endpoint's config.json")->required();
                      return std::function<int()>([config] { return rds::RunDbEndpoint(*config); });
                    }}};
  return m;
}

}  // namespace autopipe

#include "elb/module.h"

#include <CLI/CLI.hpp>

#include "api/api_server.h"
#include "elb/elb_service.h"
#include "elb/lb_controller.h"
#include "elb/lb_metrics.h"
#include "lb/lb_node.h"

namespace autopipe {

ServiceModule ElbModule() {
  ServiceModule m;
  m.name = "elb";
  m.document_kinds = {kind::kLoadBalancer, kind::kLoadBalancerNode};
  m.add_api = [](RegionContext* ctx, ApiRouter* router) { router->AddService(ElbApi(ctx)); };
  m.controllers = [](RegionContext* ctx) {
    std::vector<std::unique_ptr<Controller>> v;
    v.push_back(std::make_unique<LoadBalancerController>(ctx));
    return v;
  };
  // Node documents stay as they are: the next start finds their processes gone and starts new ones.
  m.process_kinds = {{"load-balancer-node", kind::kLoadBalancerNode, nullptr}};
  m.subcommands = {{"lb", "(internal) one load-balancer node, configured by FILE (lb/node_files.h)", true,
                    [](CLI::App* cmd) {
                      auto config = std::make_shared<std::string>();
                      cmd->add_option("--config", *config, "the node's config.json")->required();
                      return std::function<int()>([config] { return lb::RunLbNode(*config); });
                    }}};
  m.collect_metrics = CollectLoadBalancerMetrics;
  return m;
}

}  // namespace autopipe

#include "ec2/module.h"
#include "ec2/vpc.h"

#include <unistd.h>

#include <cstdlib>

#include <CLI/CLI.hpp>

#include "api/api_server.h"
#include "ec2/ec2_service.h"
#include "ec2/instance_controller.h"
#include "ec2/instance_init.h"
#include "ec2/instance_metrics.h"
#include "ec2/instances.h"
#include "sample/sample_app.h"

namespace autopipe {
namespace {

// `down` stops a running instance as a user shutdown, not a crash: the next server start replaces it without
// counting it toward its group's launch back-off.
void StoppedByDown(Json& inst, int64_t now) {
  if (!IsLiveState(inst["State"])) return;
  inst["State"] = instance_state::kStopped;
  inst["DesiredState"] = instance_state::kStopped;  // stays stopped: its group replaces it, as before
  inst["StateChangedAt"] = now;
  inst["StateReason"] = {{"Code", "Client.UserInitiatedShutdown"},
                         {"Message", "Client.UserInitiatedShutdown: User initiated shutdown"}};
  inst["StateTransitionReason"] = "User initiated (autopipe down)";
}

Subcommand InstanceInitCommand() {
  return {"instance-init", "(internal) first process of an instance", true, [](CLI::App* cmd) {
            auto opts = std::make_shared<InstanceInitOptions>();
            cmd->add_option("--service", opts->service);
            cmd->add_option("--user-data", opts->user_data_file);
            cmd->add_option("--work-dir", opts->work_dir);
            return std::function<int()>([opts] {
              char buf[4096];
              ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
              opts->self_exe = n > 0 ? std::string(buf, static_cast<size_t>(n)) : "autopipe";
              opts->self_exec_path = "/proc/self/exe";
              return RunInstanceInit(*opts);
            });
          }};
}

Subcommand SampleAppCommand() {
  return {"sample-app", "(internal) the built-in image's sample web service", true, [](CLI::App* cmd) {
            auto listen = std::make_shared<std::string>("127.0.0.1:8080");
            cmd->add_option("--listen", *listen)->capture_default_str();
            return std::function<int()>([listen] {
              size_t colon = listen->rfind(':');
              if (colon == std::string::npos) return 2;
              return RunSampleApp(listen->substr(0, colon), std::atoi(listen->c_str() + colon + 1));
            });
          }};
}

}  // namespace

ServiceModule Ec2Module() {
  ServiceModule m;
  m.name = "ec2";
  m.document_kinds = {kind::kInstance, kind::kSecurityGroup};
  m.add_api = [](RegionContext* ctx, ApiRouter* router) { router->AddService(Ec2Api(ctx)); };
  m.controllers = [](RegionContext* ctx) {
    std::vector<std::unique_ptr<Controller>> v;
    v.push_back(std::make_unique<InstanceController>(ctx));
    return v;
  };
  m.process_kinds = {{"instance", kind::kInstance, StoppedByDown}};
  m.subcommands = {InstanceInitCommand(), SampleAppCommand()};
  m.collect_metrics = CollectInstanceMetrics;
  m.alarm_action_targets = {{"arn:aws:automate:", RunEc2AlarmAction}};
  m.addresses_in_use = [](const RegionContext& ctx, std::set<std::string>* in_use) {
    for (const auto& inst : ctx.store->List(kind::kInstance)) {
      if ((*inst)["State"] != instance_state::kTerminated) in_use->insert((*inst)["PrivateIpAddress"].get<std::string>());
    }
  };
  return m;
}

}  // namespace autopipe

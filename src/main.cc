// autopipe: one binary for the whole region. Subcommands:
//   server         run a region's API and controllers (foreground)
//   up             a region plus the seed's stack, until Ctrl-C
//   down           stop a region and every process it runs
//   instance-init  (internal) the first process of an instance
//   sample-app     (internal) the sample web service of the built-in image
//   lb             (internal, also run by hand in benchmarks) one load-balancer node
#include <CLI/CLI.hpp>

#include "ec2/instance_init.h"
#include "lb/lb_node.h"
#include "region/region.h"
#include "sample/sample_app.h"

int main(int argc, char** argv) {
  CLI::App app{"Auto_Pipeline: an AWS-compatible high-availability region on your own machine"};
  app.require_subcommand(1);

  autopipe::RegionOptions region;
  auto add_region_flags = [&region](CLI::App* cmd) {
    cmd->add_option("--data-dir", region.data_dir, "where the region keeps its state")->capture_default_str();
    cmd->add_option("--listen", region.listen, "HOST:PORT of the API endpoint")->capture_default_str();
    cmd->add_option("--region", region.region, "region name")->capture_default_str();
    cmd->add_option("--address-block", region.address_block,
                    "127.N: the /16 of 127.0.0.0/8 this region's private addresses come from (default: by region)");
    cmd->add_option("--log-level", region.log_level, "debug, info, warn")->capture_default_str();
    cmd->add_flag("--log-stderr", region.log_to_stderr, "log to stderr instead of DATA_DIR/server.log");
  };
  auto* server = app.add_subcommand("server", "run a region's API endpoint and controllers in the foreground");
  add_region_flags(server);
  auto* up = app.add_subcommand("up", "start a region with the seed's stack and say where everything is");
  add_region_flags(up);
  auto* down = app.add_subcommand("down", "stop a region and every process it runs");
  down->add_option("--data-dir", region.data_dir, "the region's data dir")->capture_default_str();

  autopipe::InstanceInitOptions init;
  auto* init_cmd = app.add_subcommand("instance-init", "(internal) first process of an instance");
  init_cmd->add_option("--service", init.service);
  init_cmd->add_option("--user-data", init.user_data_file);
  init_cmd->add_option("--work-dir", init.work_dir);
  init_cmd->group("");

  std::string listen = "127.0.0.1:8080";
  auto* sample = app.add_subcommand("sample-app", "(internal) the built-in image's sample web service");
  sample->add_option("--listen", listen)->capture_default_str();
  sample->group("");

  std::string lb_config;
  auto* lb = app.add_subcommand("lb", "(internal) one load-balancer node, configured by FILE (lb/node_files.h)");
  lb->add_option("--config", lb_config, "the node's config.json")->required();
  lb->group("");

  CLI11_PARSE(app, argc, argv);

  if (*server) return autopipe::RunServer(region);
  if (*up) return autopipe::RunUp(region);
  if (*down) return autopipe::RunDown(region.data_dir);
  if (*init_cmd) {
    char buf[4096];
    ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
    init.self_exe = n > 0 ? std::string(buf, n) : argv[0];
    return autopipe::RunInstanceInit(init);
  }
  if (*lb) return autopipe::lb::RunLbNode(lb_config);
  if (*sample) {
    size_t colon = listen.rfind(':');
    if (colon == std::string::npos) return 2;
    return autopipe::RunSampleApp(listen.substr(0, colon), std::atoi(listen.c_str() + colon + 1));
  }
  return 2;
}

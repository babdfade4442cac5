// autopipe: one binary for the whole region. Subcommands:
//   server         run a region's API and controllers (foreground)
//   up             a region plus the seed's stack, until Ctrl-C
//   down           stop a region and every process it runs
//   global         the global services (Route 53's API and DNS server) of a partition
// and the subcommands the service modules add for their own processes (region/modules.cc), such as
//   instance-init  (internal) the first process of an instance
//   sample-app     (internal) the sample web service of the built-in image
//   lb             (internal, also run by hand in benchmarks) one load-balancer node
#include <CLI/CLI.hpp>

#include "global/global.h"
#include "region/module.h"
#include "region/region.h"

int main(int argc, char** argv) {
  CLI::App app{"Auto_Pipeline: an AWS-compatible high-availability region on your own machine"};
  app.require_subcommand(1);

  autopipe::RegionOptions region;
  auto add_region_flags = [&region](CLI::App* cmd) {
    cmd->add_option("--data-dir", region.data_dir, "where the region keeps its state")->capture_default_str();
    cmd->add_option("--listen", region.listen, "HOST:PORT of the API endpoint (port 0: any free port)")
        ->capture_default_str();
    cmd->add_option("--region", region.region, "region name")->capture_default_str();
    cmd->add_option("--address-block", region.address_block,
                    "127.N: the /16 of 127.0.0.0/8 this region's private addresses come from (default: by region)");
    cmd->add_option("--log-level", region.log_level, "debug, info, warn")->capture_default_str();
    cmd->add_flag("--log-stderr", region.log_to_stderr, "log to stderr instead of DATA_DIR/server.log");
    cmd->add_option("--smtp-relay", region.smtp_relay,
                    "HOST:PORT of the SMTP relay that SNS email notifications are sent through");
    cmd->add_option("--partition", region.partition,
                    "a folder shared with the other regions and the global service of this account: one key pair, "
                    "distinct address blocks, each region's endpoint listed there");
  };
  auto* server = app.add_subcommand("server", "run a region's API endpoint and controllers in the foreground");
  add_region_flags(server);
  auto* up = app.add_subcommand("up", "start a region with the seed's stack and say where everything is");
  add_region_flags(up);
  up->add_option("--standby-region", region.standby_region,
                 "also bring up the seed's stack in this standby region (its own process, data dir DATA_DIR-REGION) "
                 "and the global service (DATA_DIR-global), in one partition (--partition, default "
                 "DATA_DIR-partition)");
  up->add_option("--standby-address-block", region.standby_address_block,
                 "127.N: the standby region's address block (default: by region, claimed in the partition)");
  auto* down = app.add_subcommand("down", "stop a region and every process it runs");
  down->add_option("--data-dir", region.data_dir, "the region's data dir")->capture_default_str();

  autopipe::GlobalOptions global_opts;
  auto* global = app.add_subcommand("global", "run the global services (Route 53's API and its DNS server)");
  global->add_option("--data-dir", global_opts.data_dir, "where the global service keeps its state")
      ->capture_default_str();
  global->add_option("--listen", global_opts.listen, "HOST:PORT of Route 53's API (port 0: any free port)")
      ->capture_default_str();
  global->add_option("--dns-listen", global_opts.dns_listen,
                     "HOST:PORT of the DNS server, UDP and TCP (port 0: any port free for both); written to "
                     "DATA_DIR/dns-address")
      ->capture_default_str();
  global->add_option("--partition", global_opts.partition, "the partition folder the regions share");
  global->add_option("--log-level", global_opts.log_level, "debug, info, warn")->capture_default_str();
  global->add_flag("--log-stderr", global_opts.log_to_stderr, "log to stderr instead of DATA_DIR/server.log");

  std::vector<std::pair<CLI::App*, std::function<int()>>> module_commands;
  for (const auto& module : autopipe::AllModules()) {
    for (const auto& sub : module.subcommands) {
      CLI::App* cmd = app.add_subcommand(sub.name, sub.description);
      if (sub.internal) cmd->group("");
      module_commands.emplace_back(cmd, sub.setup(cmd));
    }
  }

  CLI11_PARSE(app, argc, argv);

  if (*server) return autopipe::RunServer(region);
  if (*up) return autopipe::RunUp(region);
  if (*down) return autopipe::RunDown(region.data_dir);
  if (*global) return autopipe::RunGlobal(global_opts);
  for (auto& [cmd, run] : module_commands) {
    if (*cmd) return run();
  }
  return 2;
}

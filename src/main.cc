// autopipe: one binary for the whole region. Subcommands:
//   server         run a region's API and controllers (foreground)
//   up             a region plus the seed's stack, until Ctrl-C
//   down           stop a region and every process it runs
//   global         the global services (Route 53's API and DNS server) of a partition
//   drill          drills on a running stack: `drill region-outage` (drill/drill.h)
// and the subcommands the service modules add for their own processes (region/modules.cc), such as
//   instance-init  (internal) the first process of an instance
//   sample-app     (internal) the sample web service of the built-in image
//   lb             (internal, also run by hand in benchmarks) one load-balancer node
#include <CLI/CLI.hpp>

#include "drill/drill.h"
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

  autopipe::drill::DrillOptions drill_opts;
  auto* drill = app.add_subcommand("drill", "failure drills on a running stack");
  drill->require_subcommand(1);
  auto* outage = drill->add_subcommand(
      "region-outage",
      "under a client load it drives itself, kill every process of the primary region at once, promote the "
      "standby region's read replica, let DNS follow, and report HTTP and DB recovery times, RPO and the timeline");
  outage->add_option("--partition", drill_opts.partition, "the partition folder of the regions and global service")
      ->required();
  outage->add_option("--region", drill_opts.region, "the primary region, to be stopped")->required();
  outage->add_option("--standby-region", drill_opts.standby_region,
                     "the region to fail over to (default: the partition's only other running region)");
  outage->add_option("--name", drill_opts.name,
                     "the DNS name clients use (default: the failover record set found for the two regions)");
  outage->add_option("--db-instance", drill_opts.db_instance,
                     "the primary's DB instance (default: the one with a read replica in the standby region)");
  outage->add_flag("--create-replica", drill_opts.create_replica,
                   "when the DB instance has no replica in the standby region, create one "
                   "(CreateDBInstanceReadReplica) and wait for it");
  outage->add_flag("--skip-db", drill_opts.skip_db, "drill HTTP and DNS only (no database writes or promotion)");
  outage->add_option("--db-password-file", drill_opts.password_file,
                     "the master password, in a file only you can read (default: AUTOPIPE_DRILL_DB_PASSWORD, else "
                     "the primary region's own store)");
  outage->add_option("--warmup", drill_opts.warmup_s, "seconds of load before the outage")->capture_default_str();
  outage->add_option("--settle", drill_opts.settle_s, "seconds of load kept after both recovered")
      ->capture_default_str();
  outage->add_option("--duration", drill_opts.duration_s, "the drill's bound in seconds, warm-up included")
      ->capture_default_str();
  outage->add_option("--http-interval-ms", drill_opts.http_interval_ms, "one GET every this many ms")
      ->capture_default_str();
  outage->add_option("--write-interval-ms", drill_opts.write_interval_ms, "one INSERT every this many ms")
      ->capture_default_str();
  outage->add_option("--max-requests", drill_opts.max_requests, "bound on GETs and on INSERTs, each")
      ->capture_default_str();
  outage->add_option("--http-port", drill_opts.http_port, "the port the load balancers listen on")
      ->capture_default_str();
  outage->add_option("--http-path", drill_opts.http_path, "the path to GET")->capture_default_str();
  outage->add_flag("--json", drill_opts.json, "print the report as JSON");
  outage->add_flag("--yes", drill_opts.yes,
                   "confirm the kill without asking (required when stdin is not a terminal)");

  autopipe::drill::RejoinOptions rejoin_opts;
  auto* rejoin = drill->add_subcommand(
      "rejoin", "after a region-outage drill, with the old region running again: make its DB instance a read "
                "replica of the promoted one (the old instance is deleted after a final snapshot)");
  rejoin->add_option("--partition", rejoin_opts.partition, "the partition folder")->required();
  rejoin->add_option("--region", rejoin_opts.region, "the old primary region, started again")->required();
  rejoin->add_option("--from-region", rejoin_opts.from_region,
                     "the region of the promoted instance (default: the only other running region)");
  rejoin->add_option("--db-instance", rejoin_opts.db_instance, "the old primary's DB instance id")->required();
  rejoin->add_option("--source-db-instance", rejoin_opts.source_instance, "the promoted instance's id")
      ->required();
  rejoin->add_option("--timeout", rejoin_opts.timeout_s, "seconds to wait for each step")->capture_default_str();
  rejoin->add_flag("--yes", rejoin_opts.yes, "confirm deleting the old instance (a final snapshot is kept)");

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
  if (*outage) return autopipe::drill::RunRegionOutageDrill(drill_opts);
  if (*rejoin) return autopipe::drill::RunRejoin(rejoin_opts);
  for (auto& [cmd, run] : module_commands) {
    if (*cmd) return run();
  }
  return 2;
}

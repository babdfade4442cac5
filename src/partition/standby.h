// `autopipe up --standby-region NAME`: the seed's stack in a primary region plus a standby region, each its own
// `autopipe server`-like process (the standby is a child `autopipe up` of its own), with the global service
// (`autopipe global`) of the same partition. The primary `up` starts both children, waits for the standby's
// summary and prints it after its own; on Ctrl-C it stops them (SIGTERM, each stops its region as `up` does).
//
// Thread-safety: called from `up`'s main thread only.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <string>

#include "common/status.h"

namespace autopipe::partition {

struct StandbyOptions {
  std::string self_exe;
  std::string partition;       // absolute
  std::string standby_region;  // e.g. us-east-1
  std::string standby_dir;     // the standby region's data dir
  std::string global_dir;      // the global service's data dir
  std::string log_level = "info";
  std::string address_block;  // the standby region's --address-block; empty: its default
};

struct StandbyProcesses {
  pid_t region_up = -1;  // the child `autopipe up` of the standby region
  pid_t global = -1;     // the child `autopipe global`
  std::string standby_out;  // its stdout (the summary)
  std::string global_dir;
};

// Starts both children (their output goes to files in their data dirs).
Result<StandbyProcesses> StartStandby(const StandbyOptions& opts);
// Waits (up to `limit`) for the standby's "is up." summary and the global service's endpoint; returns the text
// to print for both.
std::string StandbySummary(const StandbyProcesses& p, std::chrono::seconds limit);
// SIGTERM to both children, then waits for them (SIGKILL after `grace`).
void StopStandby(StandbyProcesses& p, std::chrono::seconds grace);

}  // namespace autopipe::partition

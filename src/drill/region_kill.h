// Stopping every process of one region at once, for the region-outage drill (drill/drill.h).
//
// A region's processes are its server (the pid and start time of its partition entry) and everything it runs:
// instances, load-balancer nodes, DB endpoints, mariadbd, redis-server, archivers. They are found the way the
// test harness and `autopipe down` find them, from one /proc snapshot, to a fixed point:
//   - the server itself;
//   - any process a region's supervisor started (AUTOPIPE_LAUNCH_TOKEN in its environment) whose command line
//     names a path inside the region's data dir, or whose working directory is inside it (engines run in their
//     folder and rename their title); a user's own `tail -f DATA_DIR/server.log` is not the region's;
//   - any process whose environment says it is an instance of the region (AUTOPIPE_PRIVATE_IP in its block);
//   - any child of a member, and every process of a member's own cgroup (`<server cgroup>/autopipe/<name>`).
// Never selected: the drill itself and its ancestors, and the process trees of the partition's other regions and
// its global service (with `autopipe up --standby-region` those are children of the primary's `up`).
//
// KillRegion scans once, freezes the server (so it starts nothing new) and every member found with SIGSTOP in one
// burst, scans again until no new member appears (freezing each newcomer), then SIGKILLs them all; every signal goes through a pidfd checked against
// the process's start time, so a reused pid is never signalled.
//
// Thread-safety: pure functions, plus KillRegion which only touches the processes it selects.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "common/status.h"

namespace autopipe::drill {

struct ProcInfo {
  pid_t pid = 0;
  pid_t ppid = 0;
  uint64_t start_time = 0;
  std::string cmdline;      // arguments joined by spaces
  std::string cwd;          // "" when unreadable
  std::string cgroup;       // the cgroup v2 path ("0::" line), "" when none
  std::string private_ip;   // AUTOPIPE_PRIVATE_IP from the environment, "" when none
  bool launch_token = false;  // AUTOPIPE_LAUNCH_TOKEN in the environment: a process a region's supervisor started
};

struct RegionMarks {
  pid_t server_pid = 0;
  uint64_t server_start_time = 0;
  std::string data_dir;       // absolute, no trailing slash
  std::string address_block;  // 127.N
};

struct Exclusions {
  std::set<pid_t> trees;  // these and all their descendants (other regions' servers, the global service)
  std::set<pid_t> pids;   // only these (the drill and its ancestors)
};

// The members of the region in one snapshot (sorted by pid).
std::vector<pid_t> SelectRegionProcesses(const std::vector<ProcInfo>& snapshot, const RegionMarks& region,
                                         const Exclusions& excluded);

// One scan of /proc (processes that vanish during it are skipped; zombies are left out).
std::vector<ProcInfo> ReadProcSnapshot();

// The drill's own pid and its ancestors.
std::set<pid_t> SelfAndAncestors();

struct KillResult {
  std::vector<ProcInfo> killed;  // what was frozen and killed
  int64_t first_stop_ns = 0;     // steady clock: the server frozen
  int64_t killed_ns = 0;         // steady clock: every SIGKILL sent
  int left = 0;                  // members still alive after the wait (0 expected)
};

// Freezes and kills every process of the region. Refuses (FailedPrecondition-like error) when the server of
// `region` is not running with that start time.
Result<KillResult> KillRegion(const RegionMarks& region, const Exclusions& excluded);

}  // namespace autopipe::drill

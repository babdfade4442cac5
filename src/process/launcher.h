// Process launcher: starts data-plane processes (instances, later LB nodes and engines) in their own sessions so
// they outlive the server, and observes processes it may not have started (after a server restart).
//
// A process is identified by (pid, start_time) where start_time is field 22 of /proc/<pid>/stat (clock ticks
// since boot): a pid alone can be reused, the pair cannot. A zombie counts as not alive.
//
// Thread-safety: all methods are safe to call concurrently.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "common/status.h"

namespace autopipe {

struct ProcessId {
  pid_t pid = 0;
  uint64_t start_time = 0;  // /proc/<pid>/stat field 22
  // The cgroup v2 folder the process was started in (absolute path), "" when it has none. A process's
  // descendants cannot leave it (setsid, setpgid and double forks do not), so stopping and "is any of it left"
  // go by the cgroup when there is one, and by the session, process group and /proc descendants otherwise.
  std::string cgroup;
  bool operator==(const ProcessId&) const = default;
};

struct LaunchSpec {
  std::vector<std::string> argv;               // argv[0] is the executable path
  std::map<std::string, std::string> env;      // the complete environment of the new process
  std::string working_dir;                     // created if missing
  std::string log_path;                        // stdout+stderr appended here (created 0600 if missing)
  // When not empty: the process's stdin is this file, opened before the identity changes (so it may be one only
  // the caller can read: settings with secrets, which must not go on argv). Otherwise stdin is /dev/null.
  std::string stdin_path;
  // The identity to run as (needs root; otherwise the launch fails with EPERM). The child opens its log and
  // enters working_dir first, still as the caller, then drops every supplementary group, sets the gid and the
  // uid (real, effective and saved) and sets no_new_privs, so neither setuid programs nor file capabilities
  // give it more later. argv[0] is opened before the change and exec'd through that descriptor, so it must be
  // an executable file (not a #! script) whose own mode lets `uid` run it; its folders need not.
  std::optional<uid_t> uid;
  std::optional<gid_t> gid;
  // With `uid`: the process (and what it execs) keeps CAP_NET_BIND_SERVICE as an ambient capability, so it can
  // bind ports below 1024 (an instance's port 80) and nothing else a root process could.
  bool keep_net_bind_service = false;
  // When not empty and the launcher can create cgroups (LocalProcessLauncher::cgroups_available): the process
  // starts in a new cgroup v2 of this name under the launcher's own folder (a leftover of the same name is
  // killed and reused), reported in ProcessId::cgroup. Names are unique per resource (an instance id).
  std::string cgroup_name;
};

class ProcessLauncher {
 public:
  virtual ~ProcessLauncher() = default;
  // fork + setsid + exec; stdin is /dev/null (or spec.stdin_path); no descriptor of the caller leaks into the child.
  virtual Result<ProcessId> Launch(const LaunchSpec& spec) = 0;
  // True while the process exists, is not a zombie and still has the recorded start time.
  virtual bool IsAlive(const ProcessId& id) = 0;
  // SIGTERM (or SIGKILL when `force`) to everything the process started: its cgroup when it has one, else its
  // process group, its session and its descendants found in /proc. Safe to call for a dead process (then only
  // what remains gets the signal).
  virtual void SignalGroup(const ProcessId& id, bool force) = 0;
  // True while any process of that set still exists (not counting zombies).
  virtual bool GroupAlive(const ProcessId& id) = 0;
  // Frees what the launch held beyond the process (its empty cgroup); call once GroupAlive is false.
  virtual void Release(const ProcessId& id) {}
  // Sends `signo` to the process itself (not its group), and only while IsAlive: e.g. SIGHUP to reload.
  virtual void Signal(const ProcessId& id, int signo) {}
  // Asks for the exit callback soon after the process exits (idempotent; a process already gone calls back at
  // once). It only saves latency: callers must still notice exits on their own periodic pass.
  virtual void Watch(const ProcessId& id) {}
  // The session leaders (the processes Launch started) whose environment holds
  // AUTOPIPE_LAUNCH_TOKEN=<token>, for each token of `tokens` that one carries: processes a previous server
  // started but died before recording (process/supervisor.h). Every such process: a token relaunched after a
  // lost record may be carried by two (the stray and its replacement), and each must be found to be stopped.
  virtual std::multimap<std::string, ProcessId> FindByLaunchToken(const std::set<std::string>& tokens) {
    return {};
  }
  // Called on a background thread after watched exits, never with the launcher's own locks held (so it may take
  // any lock the caller of Watch() holds). Once SetExitCallback returns, the previous callback is not running
  // and never will again: a region clears it before it stops what the callback calls into.
  virtual void SetExitCallback(std::function<void()> on_exit) {}
};

// The real launcher for this machine. Reaps its own children in the background so they never linger as zombies.
class LocalProcessLauncher : public ProcessLauncher {
 public:
  struct Options {
    // Put launches that name a cgroup into one when cgroup v2 is mounted and writable here. The environment
    // variable AUTOPIPE_CGROUPS=off turns it off too (the fallback is then used for every process).
    bool use_cgroups = true;
  };
  LocalProcessLauncher() : LocalProcessLauncher(Options{}) {}
  explicit LocalProcessLauncher(Options options);
  ~LocalProcessLauncher() override;
  // The folder new cgroups are made in ("<cgroup2 mount><our own cgroup>/autopipe"), "" when there is none.
  const std::string& cgroup_root() const { return cgroup_root_; }
  bool cgroups_available() const { return !cgroup_root_.empty(); }
  void Release(const ProcessId& id) override;
  Result<ProcessId> Launch(const LaunchSpec& spec) override;
  bool IsAlive(const ProcessId& id) override;
  void SignalGroup(const ProcessId& id, bool force) override;
  bool GroupAlive(const ProcessId& id) override;
  // Through a pidfd checked against the start time, so a reused pid never gets the signal.
  void Signal(const ProcessId& id, int signo) override;
  // Watches with pidfd_open + epoll, so processes this launcher did not start (adopted after a restart) are
  // watched too.
  void Watch(const ProcessId& id) override;
  void SetExitCallback(std::function<void()> on_exit) override;
  // One scan of /proc/*/environ (only processes that lead their own session).
  std::multimap<std::string, ProcessId> FindByLaunchToken(const std::set<std::string>& tokens) override;

 private:
  class ExitWatcher;
  std::unique_ptr<ExitWatcher> watcher_;
  std::string cgroup_root_;
};

// Every live (non-zombie) pid of what `id` started, as SignalGroup and GroupAlive see it (tests and `down`).
std::vector<pid_t> ProcessTreeMembers(const ProcessId& id);

// The process group ids that still have a live (non-zombie) member, from one scan of /proc: for callers that
// wait on many groups at once (GroupAlive scans /proc per call).
std::set<pid_t> LiveProcessGroups();

// The environment variable that carries a launch token.
inline constexpr char kLaunchTokenVariable[] = "AUTOPIPE_LAUNCH_TOKEN";

// Reads /proc/<pid>/stat field 22; nullopt when the process is gone or a zombie.
std::optional<uint64_t> ProcessStartTime(pid_t pid);

}  // namespace autopipe

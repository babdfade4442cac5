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
  bool operator==(const ProcessId&) const = default;
};

struct LaunchSpec {
  std::vector<std::string> argv;               // argv[0] is the executable path
  std::map<std::string, std::string> env;      // the complete environment of the new process
  std::string working_dir;                     // created if missing
  std::string log_path;                        // stdout+stderr appended here (created 0600 if missing)
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
};

class ProcessLauncher {
 public:
  virtual ~ProcessLauncher() = default;
  // fork + setsid + exec; stdin is /dev/null; no descriptor of the caller leaks into the child.
  virtual Result<ProcessId> Launch(const LaunchSpec& spec) = 0;
  // True while the process exists, is not a zombie and still has the recorded start time.
  virtual bool IsAlive(const ProcessId& id) = 0;
  // SIGTERM (or SIGKILL when `force`) to the whole process group the process leads. Safe to call for a dead
  // process (then only remaining group members get the signal).
  virtual void SignalGroup(const ProcessId& id, bool force) = 0;
  // True while any process in the group led by id.pid still exists (not counting zombies).
  virtual bool GroupAlive(const ProcessId& id) = 0;
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
  LocalProcessLauncher();
  ~LocalProcessLauncher() override;
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
};

// The process group ids that still have a live (non-zombie) member, from one scan of /proc: for callers that
// wait on many groups at once (GroupAlive scans /proc per call).
std::set<pid_t> LiveProcessGroups();

// The environment variable that carries a launch token.
inline constexpr char kLaunchTokenVariable[] = "AUTOPIPE_LAUNCH_TOKEN";

// Reads /proc/<pid>/stat field 22; nullopt when the process is gone or a zombie.
std::optional<uint64_t> ProcessStartTime(pid_t pid);

}  // namespace autopipe

// Supervisor: the one lifecycle for every long-lived child process the region runs — EC2 instances,
// load-balancer nodes, and the engines to come (mariadbd, redis-server, binlog archivers). Controllers decide
// *whether* a process should run; the supervisor does the rest the same way for every kind:
//   - launch it in its own session (so it outlives the server) and record it in its resource's document;
//   - watch its exit with a pidfd, and adopt a process a previous server started (same pid and start time);
//   - keep it running with crash back-off: a process that dies within the crash window of its launch waits
//     first_backoff, doubling per crash up to max_backoff, before the next launch; a launch that outlives the
//     window resets the count;
//   - stop it gracefully with a deadline: SIGTERM to everything it started (its cgroup v2 when the launch gave
//     it one, else its process group, session and /proc descendants), SIGKILL once kill_after has passed, done
//     when none of it is left.
// `autopipe down` stops every kind the modules declare (region/module.h ProcessKind) with the same rules.
//
// The record lives in the resource's own document, so it is committed with the resource's state:
//   Pid, PidStartTime  the process (process/recorded_process.h), 0 when none
//   LaunchedAt         when it was started (ms)
//   LaunchFailures     crashes in a row; LaunchBackoffUntil: no launch before this (ms)
//   StopRequestedAt    when SIGTERM was sent (ms), absent while it should run
//   LaunchToken        a random token, committed with the document before the first launch; the process
//                      carries it in its environment (AUTOPIPE_LAUNCH_TOKEN), so a server killed between the
//                      fork and recording the pid finds the process again (AdoptUnrecorded in region.cc; `down`
//                      finds it too)
// The functions change the document in memory only; the caller commits it.
//
// Thread-safety: stateless apart from the launcher and clock it is given (both thread-safe); safe to use from
// several controllers at once.
#pragma once

#include <signal.h>

#include <cstdint>
#include <string>

#include "common/clock.h"
#include "process/launcher.h"
#include "store/store.h"

namespace autopipe {

// A new random launch token, for a document about to be committed (before its process is launched).
std::string NewLaunchToken();

struct SupervisionPolicy {
  int64_t crash_window_ms = 3000;   // a process that dies sooner after its launch crashed
  int64_t first_backoff_ms = 5000;  // the wait after a first crash, doubled per crash
  int64_t max_backoff_ms = 60'000;
  int64_t kill_after_ms = 3000;     // SIGTERM first; SIGKILL once this has passed
};

class Supervisor {
 public:
  Supervisor(ProcessLauncher* launcher, const Clock* clock) : launcher_(launcher), clock_(clock) {}

  // Starts the process with the document's LaunchToken in its environment and records it in `doc` (any
  // earlier record is replaced); watches its exit. A document without a token gets one here (then it is
  // durable only once the caller commits, after the fork).
  Status Launch(Json& doc, const LaunchSpec& spec);

  // True while the recorded process runs. Watches it, so a process adopted after a restart is watched too.
  bool Running(const Json& doc);

  enum class Kept { kRunning, kLaunched, kBackingOff, kLaunchFailed };
  // Keeps one process running for `doc` with crash back-off (a load-balancer node, a database server).
  // `what` names it in logs ("load_balancer=x az=y node"). A launch error is returned in `error` and counts as
  // a crash.
  Kept KeepRunning(Json& doc, const LaunchSpec& spec, const SupervisionPolicy& policy, const std::string& what,
                   Status* error = nullptr);

  // Stops the recorded process: SIGTERM to its group on the first call, SIGKILL on a call after kill_after.
  // True once no process of its group is left (true at once when nothing was recorded).
  bool Stop(Json& doc, const SupervisionPolicy& policy);

  // SIGKILL to whatever is left of what the recorded process started (its leader exited; children may linger).
  void KillLeftovers(const Json& doc);

  // Frees what the launch held beyond the process (its cgroup) once nothing of it is left; before Clear.
  void Release(const Json& doc);

  // A signal to the process itself, only while it is the recorded one (SIGHUP: reload its configuration).
  void Signal(const Json& doc, int signo);

  // Forgets the process (after Stop returned true, before a new launch).
  static void Clear(Json& doc);

 private:
  void RecordCrash(Json& doc, const SupervisionPolicy& policy, int64_t now);

  ProcessLauncher* const launcher_;
  const Clock* const clock_;
};

}  // namespace autopipe

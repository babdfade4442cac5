// FakeLauncher: an in-memory ProcessLauncher for unit tests of controllers that start and stop processes.
//
// Launch records the LaunchSpec and hands out fake pids (1000, 1001, ...) with a fake start time; nothing is
// forked. Each fake process leads a fake process group. Tests end processes themselves:
//   - Kill(pid)        the leader and every group member are gone (IsAlive and GroupAlive become false);
//   - KillLeader(pid)  only the leader exits, members linger (IsAlive false, GroupAlive true) until a signal.
// SignalGroup records every signal; SIGKILL (force) ends the group, SIGTERM ends it unless the process was
// launched while set_ignore_sigterm(true) was in effect (or IgnoreSigterm(pid) was called for it).
// Signal (to the leader alone) records what a live leader receives (see ProcessSignalsTo); SIGKILL, and SIGTERM
// unless ignored, end the leader only; any other signal (SIGHUP: reload) changes nothing.
// set_fail_launches(true) makes Launch fail with InternalFailure (and records nothing).
//
// Thread-safety: all methods are safe to call concurrently (a mutex guards the state).
#pragma once

#include <signal.h>
#include <sys/types.h>

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "process/launcher.h"

namespace autopipe {

class FakeLauncher : public ProcessLauncher {
 public:
  struct GroupSignal {
    pid_t pid;
    bool force;  // true: SIGKILL, false: SIGTERM
  };

  static constexpr pid_t kFirstPid = 1000;
  static uint64_t StartTimeOf(pid_t pid) { return 500000 + static_cast<uint64_t>(pid) * 7; }

  Result<ProcessId> Launch(const LaunchSpec& spec) override {
    std::lock_guard lock(mu_);
    ++launch_attempts_;
    if (fail_launches_) return Status::Internal("fake launcher: launch refused");
    pid_t pid = next_pid_++;
    Proc proc;
    proc.spec = spec;
    proc.ignore_sigterm = ignore_sigterm_;
    procs_[pid] = proc;
    order_.push_back(pid);
    return ProcessId{pid, StartTimeOf(pid)};
  }

  bool IsAlive(const ProcessId& id) override {
    std::lock_guard lock(mu_);
    const Proc* p = Find(id.pid);
    return p && p->leader_alive && id.start_time == StartTimeOf(id.pid);
  }

  void SignalGroup(const ProcessId& id, bool force) override {
    std::lock_guard lock(mu_);
    signals_.push_back({id.pid, force});
    Proc* p = Find(id.pid);
    if (!p) return;
    if (force || !p->ignore_sigterm) {
      p->leader_alive = false;
      p->group_alive = false;
    }
  }

  std::multimap<std::string, ProcessId> FindByLaunchToken(const std::set<std::string>& tokens) override {
    std::lock_guard lock(mu_);
    std::multimap<std::string, ProcessId> found;
    for (const auto& [pid, p] : procs_) {
      auto it = p.spec.env.find(kLaunchTokenVariable);
      if (p.leader_alive && it != p.spec.env.end() && tokens.count(it->second)) {
        found.emplace(it->second, ProcessId{pid, StartTimeOf(pid)});
      }
    }
    return found;
  }

  bool GroupAlive(const ProcessId& id) override {
    std::lock_guard lock(mu_);
    const Proc* p = Find(id.pid);
    return p && (p->leader_alive || p->group_alive);
  }

  void Signal(const ProcessId& id, int signo) override {
    std::lock_guard lock(mu_);
    Proc* p = Find(id.pid);
    if (!p || !p->leader_alive || id.start_time != StartTimeOf(id.pid)) return;
    p->received.push_back(signo);
    if (signo == SIGKILL || (signo == SIGTERM && !p->ignore_sigterm)) p->leader_alive = false;
  }

  // ---- test controls ----

  void Kill(pid_t pid) {
    std::lock_guard lock(mu_);
    if (Proc* p = Find(pid)) p->leader_alive = p->group_alive = false;
  }
  void KillLeader(pid_t pid) {
    std::lock_guard lock(mu_);
    if (Proc* p = Find(pid)) p->leader_alive = false;
  }
  // Applies to processes launched from now on.
  void set_ignore_sigterm(bool ignore) {
    std::lock_guard lock(mu_);
    ignore_sigterm_ = ignore;
  }
  void IgnoreSigterm(pid_t pid, bool ignore = true) {
    std::lock_guard lock(mu_);
    if (Proc* p = Find(pid)) p->ignore_sigterm = ignore;
  }
  void set_fail_launches(bool fail) {
    std::lock_guard lock(mu_);
    fail_launches_ = fail;
  }

  // ---- observations ----

  // Successful launches, in order.
  size_t launch_count() const {
    std::lock_guard lock(mu_);
    return order_.size();
  }
  size_t launch_attempts() const {
    std::lock_guard lock(mu_);
    return launch_attempts_;
  }
  std::vector<pid_t> pids() const {
    std::lock_guard lock(mu_);
    return order_;
  }
  std::optional<LaunchSpec> SpecOf(pid_t pid) const {
    std::lock_guard lock(mu_);
    auto it = procs_.find(pid);
    if (it == procs_.end()) return std::nullopt;
    return it->second.spec;
  }
  // The pid whose spec has env[key] == value, or 0.
  pid_t PidWithEnv(const std::string& key, const std::string& value) const {
    std::lock_guard lock(mu_);
    for (pid_t pid : order_) {
      const auto& env = procs_.at(pid).spec.env;
      auto it = env.find(key);
      if (it != env.end() && it->second == value) return pid;
    }
    return 0;
  }
  std::vector<GroupSignal> signals() const {
    std::lock_guard lock(mu_);
    return signals_;
  }
  // Signals sent to one pid's group, in order (true = SIGKILL).
  std::vector<bool> SignalsTo(pid_t pid) const {
    std::lock_guard lock(mu_);
    std::vector<bool> out;
    for (const auto& s : signals_) {
      if (s.pid == pid) out.push_back(s.force);
    }
    return out;
  }
  // Signals a live leader received through Signal(), in order (SIGHUP, ...).
  std::vector<int> ProcessSignalsTo(pid_t pid) const {
    std::lock_guard lock(mu_);
    auto it = procs_.find(pid);
    return it == procs_.end() ? std::vector<int>() : it->second.received;
  }
  bool Alive(pid_t pid) const {
    std::lock_guard lock(mu_);
    auto it = procs_.find(pid);
    return it != procs_.end() && (it->second.leader_alive || it->second.group_alive);
  }
  size_t alive_count() const {
    std::lock_guard lock(mu_);
    size_t n = 0;
    for (const auto& [pid, p] : procs_) n += p.leader_alive || p.group_alive;
    return n;
  }

 private:
  struct Proc {
    LaunchSpec spec;
    bool leader_alive = true;
    bool group_alive = true;
    bool ignore_sigterm = false;
    std::vector<int> received;  // through Signal()
  };

  Proc* Find(pid_t pid) {
    auto it = procs_.find(pid);
    return it == procs_.end() ? nullptr : &it->second;
  }

  mutable std::mutex mu_;
  pid_t next_pid_ = kFirstPid;
  std::map<pid_t, Proc> procs_;
  std::vector<pid_t> order_;
  std::vector<GroupSignal> signals_;
  size_t launch_attempts_ = 0;
  bool ignore_sigterm_ = false;
  bool fail_launches_ = false;
};

}  // namespace autopipe

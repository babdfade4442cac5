#include "process/supervisor.h"

#include <algorithm>

#include "common/ids.h"
#include "common/log.h"
#include "process/recorded_process.h"

namespace autopipe {

std::string NewLaunchToken() { return NewUuid(); }

Status Supervisor::Launch(Json& doc, const LaunchSpec& spec) {
  const int64_t now = clock_->NowMillis();
  doc["LaunchedAt"] = now;
  doc.erase("StopRequestedAt");
  if (!doc.contains("LaunchToken") || !doc["LaunchToken"].is_string()) doc["LaunchToken"] = NewLaunchToken();
  LaunchSpec with_token = spec;
  with_token.env[kLaunchTokenVariable] = doc["LaunchToken"].get<std::string>();
  auto pid = launcher_->Launch(with_token);
  if (!pid.ok()) {
    RecordProcess(doc, ProcessId{});
    return pid.status();
  }
  RecordProcess(doc, *pid);
  launcher_->Watch(*pid);
  return Status::Ok();
}

bool Supervisor::Running(const Json& doc) {
  const ProcessId proc = RecordedProcess(doc);
  if (proc.pid <= 0 || !launcher_->IsAlive(proc)) return false;
  launcher_->Watch(proc);  // idempotent
  return true;
}

void Supervisor::RecordCrash(Json& doc, const SupervisionPolicy& policy, int64_t now) {
  const int failures = doc.value("LaunchFailures", 0) + 1;
  doc["LaunchFailures"] = failures;
  doc["LaunchBackoffUntil"] =
      now + std::min<int64_t>(policy.max_backoff_ms, policy.first_backoff_ms << std::min(failures - 1, 4));
}

Supervisor::Kept Supervisor::KeepRunning(Json& doc, const LaunchSpec& spec, const SupervisionPolicy& policy,
                                         const std::string& what, Status* error) {
  const int64_t now = clock_->NowMillis();
  const ProcessId proc = RecordedProcess(doc);
  const int64_t lived = now - doc.value("LaunchedAt", int64_t{0});
  if (Running(doc)) {
    if (doc.value("LaunchFailures", 0) > 0 && lived >= policy.crash_window_ms) doc["LaunchFailures"] = 0;
    return Kept::kRunning;
  }
  if (proc.pid > 0) {  // it died since it was last looked at
    KillLeftovers(doc);
    if (lived < policy.crash_window_ms) {
      RecordCrash(doc, policy, now);
    } else {
      doc["LaunchFailures"] = 0;
    }
    RecordProcess(doc, ProcessId{});
    spdlog::warn("{} pid={} is gone ({} ms after its launch)", what, proc.pid, lived);
  }
  if (now < doc.value("LaunchBackoffUntil", int64_t{0})) return Kept::kBackingOff;
  Status st = Launch(doc, spec);
  if (!st.ok()) {
    RecordCrash(doc, policy, now);
    spdlog::error("{} launch failed: {}", what, st.ToString());
    if (error) *error = st;
    return Kept::kLaunchFailed;
  }
  spdlog::info("{} started pid={}", what, doc["Pid"].get<pid_t>());
  return Kept::kLaunched;
}

bool Supervisor::Stop(Json& doc, const SupervisionPolicy& policy) {
  const ProcessId proc = RecordedProcess(doc);
  if (proc.pid <= 0) return true;
  const int64_t now = clock_->NowMillis();
  if (!doc.contains("StopRequestedAt")) {
    doc["StopRequestedAt"] = now;
    launcher_->SignalGroup(proc, /*force=*/false);
    return false;
  }
  if (!launcher_->GroupAlive(proc)) return true;
  if (now - doc["StopRequestedAt"].get<int64_t>() > policy.kill_after_ms) launcher_->SignalGroup(proc, true);
  return false;
}

void Supervisor::KillLeftovers(const Json& doc) {
  const ProcessId proc = RecordedProcess(doc);
  if (proc.pid > 0 && launcher_->GroupAlive(proc)) launcher_->SignalGroup(proc, /*force=*/true);
}

void Supervisor::Release(const Json& doc) {
  const ProcessId proc = RecordedProcess(doc);
  if (!proc.cgroup.empty() && !launcher_->GroupAlive(proc)) launcher_->Release(proc);
}

void Supervisor::Signal(const Json& doc, int signo) {
  const ProcessId proc = RecordedProcess(doc);
  if (proc.pid > 0) launcher_->Signal(proc, signo);
}

void Supervisor::Clear(Json& doc) {
  RecordProcess(doc, ProcessId{});
  doc.erase("StopRequestedAt");
}

}  // namespace autopipe

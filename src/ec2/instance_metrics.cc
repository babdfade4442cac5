#include "ec2/instance_metrics.h"

#include <dirent.h>
#include <unistd.h>

#include <fstream>
#include <map>
#include <mutex>
#include <sstream>

#include "ec2/instances.h"
#include "process/recorded_process.h"

namespace autopipe {
namespace {

struct ProcStat {
  pid_t ppid = 0;
  uint64_t ticks = 0;
};

// pid -> (parent, utime + stime) for every process, from /proc/<pid>/stat.
std::map<pid_t, ProcStat> ReadAllStats() {
  std::map<pid_t, ProcStat> out;
  DIR* dir = opendir("/proc");
  if (!dir) return out;
  while (dirent* e = readdir(dir)) {
    char* end = nullptr;
    long pid = std::strtol(e->d_name, &end, 10);
    if (*end != '\0' || pid <= 0) continue;
    std::ifstream f(std::string("/proc/") + e->d_name + "/stat");
    std::string line;
    if (!std::getline(f, line)) continue;
    size_t close = line.rfind(')');  // the command name may hold spaces and parentheses
    if (close == std::string::npos) continue;
    std::istringstream rest(line.substr(close + 2));
    std::string state;
    long ppid = 0;
    rest >> state >> ppid;
    std::string skip;
    for (int i = 0; i < 9; ++i) rest >> skip;  // pgrp session tty_nr tpgid flags minflt cminflt majflt cmajflt
    uint64_t utime = 0, stime = 0;
    rest >> utime >> stime;
    out[static_cast<pid_t>(pid)] = ProcStat{static_cast<pid_t>(ppid), utime + stime};
  }
  closedir(dir);
  return out;
}

uint64_t TreeTicks(const std::map<pid_t, ProcStat>& all, pid_t root) {
  if (!all.count(root)) return 0;
  std::multimap<pid_t, pid_t> children;
  for (const auto& [pid, st] : all) children.emplace(st.ppid, pid);
  uint64_t total = 0;
  std::vector<pid_t> todo = {root};
  size_t guard = 0;
  while (!todo.empty() && guard++ < all.size() + 1) {
    pid_t p = todo.back();
    todo.pop_back();
    total += all.at(p).ticks;
    auto [lo, hi] = children.equal_range(p);
    for (auto it = lo; it != hi; ++it) todo.push_back(it->second);
  }
  return total;
}

struct Baseline {
  uint64_t pid_start = 0;
  uint64_t ticks = 0;
  int64_t at_millis = 0;
};

std::mutex baselines_mu;
std::map<std::pair<const RegionContext*, std::string>, Baseline> baselines;  // guarded by baselines_mu

}  // namespace

uint64_t ProcessTreeCpuTicks(pid_t root) { return TreeTicks(ReadAllStats(), root); }

void CollectInstanceMetrics(RegionContext* ctx, int64_t now_millis, std::vector<MetricSample>* out) {
  std::vector<Doc> running;
  for (const auto& inst : ctx->store->List(kind::kInstance)) {
    if ((*inst)["State"] == instance_state::kRunning && RecordedProcess(*inst).pid > 0) running.push_back(inst);
  }
  std::lock_guard lock(baselines_mu);
  std::erase_if(baselines, [&](const auto& e) {
    if (e.first.first != ctx) return false;
    for (const auto& inst : running) {
      if ((*inst)["InstanceId"] == e.first.second) return false;
    }
    return true;
  });
  if (running.empty()) return;
  const auto all = ReadAllStats();
  const double hz = static_cast<double>(sysconf(_SC_CLK_TCK));
  std::map<std::string, std::pair<double, int>> groups;  // AutoScalingGroupName -> (sum of percents, instances)
  for (const auto& inst : running) {
    const std::string id = (*inst)["InstanceId"].get<std::string>();
    ProcessId proc = RecordedProcess(*inst);
    uint64_t ticks = TreeTicks(all, proc.pid);
    Baseline& b = baselines[{ctx, id}];
    if (b.at_millis != 0 && b.pid_start == proc.start_time && now_millis > b.at_millis && ticks >= b.ticks) {
      const auto* type = ctx->catalog->FindInstanceType((*inst).value("InstanceType", std::string()));
      const double vcpus = type && type->vcpus > 0 ? type->vcpus : 1;
      const double seconds = static_cast<double>(now_millis - b.at_millis) / 1000.0;
      double percent = static_cast<double>(ticks - b.ticks) / hz / seconds / vcpus * 100.0;
      percent = std::min(100.0, std::max(0.0, percent));
      out->push_back(MetricSample{"AWS/EC2", "CPUUtilization", {{"InstanceId", id}}, percent, "Percent", now_millis});
      const std::string group = (*inst).value("AutoScalingGroupName", std::string());
      if (!group.empty()) {
        groups[group].first += percent;
        ++groups[group].second;
      }
    }
    b = Baseline{proc.start_time, ticks, now_millis};
  }
  // The group's average, as EC2 publishes CPUUtilization by AutoScalingGroupName (target tracking reads it).
  for (const auto& [group, sum] : groups) {
    out->push_back(MetricSample{"AWS/EC2", "CPUUtilization", {{"AutoScalingGroupName", group}},
                                sum.first / sum.second, "Percent", now_millis});
  }
}

Status RunEc2AlarmAction(RegionContext* ctx, const std::string& arn, const AlarmStateChange& change) {
  const std::string action = arn.substr(arn.rfind(':') + 1);
  std::string instance_id;
  if (change.alarm.contains("Dimensions")) {
    for (const auto& d : change.alarm["Dimensions"]) {
      if (d.value("Name", std::string()) == "InstanceId") instance_id = d.value("Value", std::string());
    }
  }
  if (instance_id.empty()) {
    return Status::Validation("The alarm has no InstanceId dimension for the EC2 action " + action);
  }
  // recover restores an instance whose host failed (StatusCheckFailed_System): there are no hosts to fail here.
  if (action != "terminate" && action != "stop" && action != "reboot") {
    return Status::Validation("EC2 action " + action +
                              " is not supported by this region (there is no host to recover an instance from); "
                              "stop, reboot and terminate are");
  }
  std::lock_guard lock(*ctx->mu);
  auto inst = ctx->store->Get(kind::kInstance, instance_id);
  if (!inst) return Status(400, "InvalidInstanceID.NotFound", "The instance ID '" + instance_id + "' does not exist");
  std::vector<StoreWrite> writes;
  if (action == "terminate") {
    writes = RequestTermination(*ctx, *inst, "Terminated by CloudWatch alarm " + change.alarm_name);
  } else if (action == "stop") {
    AP_ASSIGN_OR_RETURN(auto r, RequestStop(*ctx, *inst, /*force=*/false,
                                            UserInitiatedReason(ctx->clock->NowMillis())));
    writes = std::move(r.writes);
  } else {
    AP_ASSIGN_OR_RETURN(writes, RequestReboot(*ctx, *inst));
  }
  Status st = ctx->store->Commit(writes);
  if (st.ok() && !writes.empty() && ctx->wake) ctx->wake();
  return st;
}

}  // namespace autopipe

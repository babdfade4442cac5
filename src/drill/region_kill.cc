#include "drill/region_kill.h"

#include <dirent.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <sstream>
#include <thread>

#include "process/launcher.h"

namespace autopipe::drill {
namespace {

int64_t SteadyNanos() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

std::string ReadWhole(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return "";
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

bool Inside(const std::string& path, const std::string& dir) {
  return path == dir || (path.size() > dir.size() && path.compare(0, dir.size(), dir) == 0 && path[dir.size()] == '/');
}

// True when `cmdline` names `dir` or a path inside it as one of its words (or after an '=' in one).
bool NamesPathInside(const std::string& cmdline, const std::string& dir) {
  size_t at = 0;
  while ((at = cmdline.find(dir, at)) != std::string::npos) {
    const bool starts = at == 0 || cmdline[at - 1] == ' ' || cmdline[at - 1] == '=';
    const size_t end = at + dir.size();
    const bool ends = end == cmdline.size() || cmdline[end] == '/' || cmdline[end] == ' ';
    if (starts && ends) return true;
    at = end;
  }
  return false;
}

}  // namespace

std::vector<pid_t> SelectRegionProcesses(const std::vector<ProcInfo>& snapshot, const RegionMarks& region,
                                         const Exclusions& excluded) {
  std::map<pid_t, const ProcInfo*> by_pid;
  for (const auto& p : snapshot) by_pid[p.pid] = &p;
  // Excluded trees, to a fixed point over parent links.
  std::set<pid_t> out_of_bounds = excluded.trees;
  for (bool grew = true; grew;) {
    grew = false;
    for (const auto& p : snapshot) {
      if (!out_of_bounds.count(p.pid) && out_of_bounds.count(p.ppid)) grew = out_of_bounds.insert(p.pid).second;
    }
  }
  for (pid_t p : excluded.pids) out_of_bounds.insert(p);
  // The server's own cgroup: the cgroups of its launches are folders under "<it>/autopipe/".
  std::string server_cgroup;
  auto server = by_pid.find(region.server_pid);
  const bool server_here = server != by_pid.end() && server->second->start_time == region.server_start_time;
  if (server_here) server_cgroup = server->second->cgroup;
  const std::string launch_cgroups = (server_cgroup == "/" ? "" : server_cgroup) + "/autopipe/";
  const std::string ip_prefix = region.address_block + ".";

  std::set<pid_t> members;
  std::set<std::string> member_cgroups;
  auto admit = [&](const ProcInfo& p) {
    if (out_of_bounds.count(p.pid) || !members.insert(p.pid).second) return false;
    if (!server_cgroup.empty() && p.cgroup.compare(0, launch_cgroups.size(), launch_cgroups) == 0) {
      member_cgroups.insert(p.cgroup);
    }
    return true;
  };
  if (server_here) admit(*server->second);
  for (const auto& p : snapshot) {
    const bool marked = (p.launch_token && !region.data_dir.empty() &&
                         (NamesPathInside(p.cmdline, region.data_dir) || Inside(p.cwd, region.data_dir))) ||
                        (!region.address_block.empty() && p.private_ip.compare(0, ip_prefix.size(), ip_prefix) == 0);
    if (marked) admit(p);
  }
  for (bool grew = true; grew;) {
    grew = false;
    for (const auto& p : snapshot) {
      if (members.count(p.pid)) continue;
      if (members.count(p.ppid) || (!p.cgroup.empty() && member_cgroups.count(p.cgroup))) grew = admit(p) || grew;
    }
  }
  return {members.begin(), members.end()};
}

std::vector<ProcInfo> ReadProcSnapshot() {
  std::vector<ProcInfo> out;
  DIR* d = ::opendir("/proc");
  if (!d) return out;
  while (dirent* e = ::readdir(d)) {
    const std::string name = e->d_name;
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
    ProcInfo p;
    p.pid = static_cast<pid_t>(std::stol(name));
    const std::string base = "/proc/" + name;
    const std::string stat = ReadWhole(base + "/stat");
    const size_t close = stat.rfind(')');
    if (close == std::string::npos) continue;
    std::istringstream fields(stat.substr(close + 2));
    std::string state;
    fields >> state >> p.ppid;
    if (state == "Z" || state == "X") continue;
    auto start = ProcessStartTime(p.pid);
    if (!start) continue;
    p.start_time = *start;
    std::string cmd = ReadWhole(base + "/cmdline");
    std::replace(cmd.begin(), cmd.end(), '\0', ' ');
    while (!cmd.empty() && cmd.back() == ' ') cmd.pop_back();
    p.cmdline = cmd;
    char buf[4096];
    const ssize_t n = ::readlink((base + "/cwd").c_str(), buf, sizeof(buf) - 1);
    if (n > 0) p.cwd.assign(buf, static_cast<size_t>(n));
    std::istringstream cg(ReadWhole(base + "/cgroup"));
    for (std::string line; std::getline(cg, line);) {
      if (line.rfind("0::", 0) == 0) p.cgroup = line.substr(3);
    }
    const std::string env = ReadWhole(base + "/environ");
    const std::string key = std::string("AUTOPIPE_PRIVATE_IP=");
    const std::string token = std::string(kLaunchTokenVariable) + "=";
    for (size_t at = 0; at < env.size();) {
      size_t end = env.find('\0', at);
      if (end == std::string::npos) end = env.size();
      if (env.compare(at, key.size(), key) == 0) p.private_ip = env.substr(at + key.size(), end - at - key.size());
      if (env.compare(at, token.size(), token) == 0) p.launch_token = true;
      at = end + 1;
    }
    out.push_back(std::move(p));
  }
  ::closedir(d);
  return out;
}

std::set<pid_t> SelfAndAncestors() {
  std::set<pid_t> out;
  pid_t p = ::getpid();
  for (int i = 0; i < 64 && p > 0 && out.insert(p).second; ++i) {
    const std::string stat = ReadWhole("/proc/" + std::to_string(p) + "/stat");
    const size_t close = stat.rfind(')');
    if (close == std::string::npos) break;
    std::istringstream fields(stat.substr(close + 2));
    std::string state;
    pid_t ppid = 0;
    fields >> state >> ppid;
    p = ppid;
  }
  return out;
}

Result<KillResult> KillRegion(const RegionMarks& region, const Exclusions& excluded) {
  struct Held {
    ProcInfo info;
    int fd;
  };
  std::map<pid_t, Held> held;
  // Pins the process with a pidfd, checks it is the one the snapshot saw, and sends `signo`.
  auto pin_and_signal = [&](const ProcInfo& p, int signo) {
    const int fd = static_cast<int>(::syscall(SYS_pidfd_open, p.pid, 0));
    if (fd < 0) return false;
    auto start = ProcessStartTime(p.pid);
    if (!start || *start != p.start_time) {
      ::close(fd);
      return false;
    }
    ::syscall(SYS_pidfd_send_signal, fd, signo, nullptr, 0);
    held[p.pid] = {p, fd};
    return true;
  };
  KillResult result;
  // One scan before anything is signalled, so that the members known now are frozen within a few hundred
  // microseconds of each other (a scan takes tens of milliseconds, during which a database not yet frozen would
  // go on committing and replicating); the scans after it only catch what appeared meanwhile.
  std::vector<ProcInfo> first;
  {
    auto snapshot = ReadProcSnapshot();
    std::map<pid_t, const ProcInfo*> by_pid;
    for (const auto& p : snapshot) by_pid[p.pid] = &p;
    for (pid_t pid : SelectRegionProcesses(snapshot, region, excluded)) {
      if (pid != region.server_pid) first.push_back(*by_pid[pid]);
    }
  }
  {
    ProcInfo server;
    server.pid = region.server_pid;
    server.start_time = region.server_start_time;
    if (region.server_pid <= 0 || excluded.pids.count(region.server_pid) ||
        !pin_and_signal(server, SIGSTOP)) {
      return Status(400, "RegionNotRunning",
                    "the region's server (pid " + std::to_string(region.server_pid) + ") is not running");
    }
    result.first_stop_ns = SteadyNanos();
  }
  for (const auto& p : first) pin_and_signal(p, SIGSTOP);
  for (int round = 0; round < 30; ++round) {
    auto snapshot = ReadProcSnapshot();
    bool found_new = false;
    std::map<pid_t, const ProcInfo*> by_pid;
    for (const auto& p : snapshot) by_pid[p.pid] = &p;
    for (pid_t pid : SelectRegionProcesses(snapshot, region, excluded)) {
      auto it = held.find(pid);
      if (it != held.end()) {
        if (it->second.info.cmdline.empty()) it->second.info = *by_pid[pid];  // the server's details
        continue;
      }
      if (pin_and_signal(*by_pid[pid], SIGSTOP)) found_new = true;
    }
    if (!found_new && round > 0) break;
  }
  for (auto& [pid, h] : held) ::syscall(SYS_pidfd_send_signal, h.fd, SIGKILL, nullptr, 0);
  result.killed_ns = SteadyNanos();
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  for (;;) {
    int left = 0;
    for (auto& [pid, h] : held) {
      auto start = ProcessStartTime(pid);
      if (start && *start == h.info.start_time) ++left;
    }
    result.left = left;
    if (left == 0 || std::chrono::steady_clock::now() > deadline) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  for (auto& [pid, h] : held) {
    ::close(h.fd);
    result.killed.push_back(h.info);
  }
  return result;
}

}  // namespace autopipe::drill

#include "partition/standby.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>
#include <vector>

extern char** environ;

namespace autopipe::partition {
namespace {

namespace fs = std::filesystem;

Result<pid_t> Spawn(const std::vector<std::string>& argv, const std::string& out_path) {
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  // The children must not inherit up's blocked SIGINT/SIGTERM: they sigwait on them themselves, and a terminal's
  // Ctrl-C reaches the whole process group; they stop when the primary up tells them to.
  sigset_t none;
  sigemptyset(&none);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setpgroup(&attr, 0);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETPGROUP);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = -1;
  int rc = posix_spawn(&pid, argv[0].c_str(), &fa, &attr, args.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) return Status::Internal("cannot start " + argv[0] + " " + argv[1] + ": " + std::strerror(rc));
  return pid;
}

std::string ReadAll(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace

Result<StandbyProcesses> StartStandby(const StandbyOptions& o) {
  StandbyProcesses p;
  std::error_code ec;
  fs::create_directories(o.standby_dir, ec);
  fs::create_directories(o.global_dir, ec);
  p.standby_out = (fs::path(o.standby_dir) / "up.out").string();
  p.global_dir = o.global_dir;
  auto global = Spawn({o.self_exe, "global", "--data-dir", o.global_dir, "--listen", "127.0.0.1:0", "--partition",
                       o.partition, "--log-level", o.log_level},
                      (fs::path(o.global_dir) / "global.out").string());
  if (!global.ok()) return global.status();
  p.global = *global;
  std::vector<std::string> argv = {o.self_exe, "up",          "--data-dir",  o.standby_dir, "--listen",
                                   "127.0.0.1:0", "--region", o.standby_region, "--partition", o.partition,
                                   "--log-level", o.log_level};
  if (!o.address_block.empty()) {
    argv.push_back("--address-block");
    argv.push_back(o.address_block);
  }
  auto region = Spawn(argv, p.standby_out);
  if (!region.ok()) {
    StopStandby(p, std::chrono::seconds(10));
    return region.status();
  }
  p.region_up = *region;
  return p;
}

std::string StandbySummary(const StandbyProcesses& p, std::chrono::seconds limit) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  std::string text;
  while (std::chrono::steady_clock::now() < deadline) {
    text = ReadAll(p.standby_out);
    if (text.find("Press Ctrl-C") != std::string::npos) break;
    if (p.region_up > 0 && ::waitpid(p.region_up, nullptr, WNOHANG) == p.region_up) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
  // Only the summary (from the "is up." line), without its own Ctrl-C line.
  size_t from = text.find("Auto_Pipeline region");
  size_t to = text.find("Press Ctrl-C");
  std::string summary = from == std::string::npos ? "(the standby region did not come up: see " + p.standby_out + ")\n"
                                                  : text.substr(from, to == std::string::npos ? std::string::npos
                                                                                              : to - from);
  std::string global = ReadAll(fs::path(p.global_dir) / "endpoint");
  std::string dns = ReadAll(fs::path(p.global_dir) / "dns-address");
  while (!global.empty() && global.back() == '\n') global.pop_back();
  while (!dns.empty() && dns.back() == '\n') dns.pop_back();
  return "Standby " + summary + "\nGlobal service (Route 53) of the partition:\n  API endpoint      " +
         (global.empty() ? "(not up: see " + p.global_dir + "/global.out)" : global) + "\n  DNS server        " + dns +
         "   (dig @" + dns.substr(0, dns.find(':')) + " -p " + dns.substr(dns.find(':') + 1) + " NAME)\n" +
         "  aws --endpoint-url " + global + " route53 list-hosted-zones   (same credentials)\n";
}

void StopStandby(StandbyProcesses& p, std::chrono::seconds grace) {
  for (pid_t pid : {p.region_up, p.global}) {
    if (pid > 0) ::kill(pid, SIGTERM);
  }
  auto deadline = std::chrono::steady_clock::now() + grace;
  for (pid_t* pid : {&p.region_up, &p.global}) {
    while (*pid > 0) {
      pid_t r = ::waitpid(*pid, nullptr, WNOHANG);
      if (r == *pid || r < 0) {
        *pid = -1;
        break;
      }
      if (std::chrono::steady_clock::now() > deadline) {
        ::kill(*pid, SIGKILL);
        ::waitpid(*pid, nullptr, 0);
        *pid = -1;
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }
}

}  // namespace autopipe::partition

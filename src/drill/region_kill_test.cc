#include "drill/region_kill.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <thread>

#include "process/launcher.h"

namespace autopipe::drill {
namespace {

ProcInfo P(pid_t pid, pid_t ppid, std::string cmd, std::string cwd = "/", std::string cgroup = "/user",
           std::string ip = "", bool token = true) {
  ProcInfo p;
  p.pid = pid;
  p.ppid = ppid;
  p.start_time = 1000 + pid;
  p.cmdline = std::move(cmd);
  p.cwd = std::move(cwd);
  p.cgroup = std::move(cgroup);
  p.private_ip = std::move(ip);
  p.launch_token = token;
  return p;
}

TEST(RegionKillTest, SelectsTheRegionsTreeAndNothingOfTheOthers) {
  const std::string a = "/tmp/x/primary";
  std::vector<ProcInfo> snap = {
      P(1, 0, "/sbin/init"),
      P(50, 1, "bash", a, "/user", "", false),  // the user's shell, in the data dir: the drill's ancestor, never selected
      P(60, 50, "autopipe drill region-outage", a),
      P(100, 50, "autopipe up --data-dir " + a + " --standby-region us-east-1"),  // primary server
      P(101, 100, "autopipe up --data-dir " + a + "-us-east-1 --region us-east-1"),  // standby region: excluded
      P(102, 101, "mariadbd", a + "-us-east-1/rds/db/s1"),                          // its engine
      P(103, 100, "autopipe global --data-dir " + a + "-global"),                    // the global service
      P(110, 100, "autopipe lb --config " + a + "/load-balancers/web/n1/config.json"),
      P(111, 1, "mariadbd", a + "/rds/db/s1"),                                         // re-parented engine
      P(112, 111, "sh -c something"),                                                 // its child
      P(120, 1, "autopipe instance-init", "/", "/user/autopipe/i-1", "127.9.1.4"),   // adopted instance init
      P(121, 1, "setsid sleep 300", "/", "/user/autopipe/i-1"),                       // escaped its tree
      P(130, 1, "sleep 300", "/", "/user/autopipe/i-2", "127.19.1.4"),               // another block's instance
      P(140, 1, "redis-server *:6379", "/tmp/x/primary-extra"),                      // a lookalike path
      P(150, 1, "tail -f /tmp/x/primary/server.log", "/", "/user", "", false),       // the user's, not launched
      P(151, 1, "redis-server *:6379", a + "/elasticache/c/n1"),                       // launched, re-parented
  };
  RegionMarks r{100, 1100, a, "127.9"};
  Exclusions ex{{101, 103}, {50, 60}};
  EXPECT_EQ(SelectRegionProcesses(snap, r, ex), (std::vector<pid_t>{100, 110, 111, 112, 120, 121, 151}));
}

TEST(RegionKillTest, AServerWithAnotherStartTimeIsNotSelected) {
  std::vector<ProcInfo> snap = {P(100, 1, "autopipe server"), P(101, 100, "child")};
  RegionMarks r{100, 5, "/data/r", "127.9"};
  EXPECT_TRUE(SelectRegionProcesses(snap, r, {}).empty());
}

TEST(RegionKillTest, KillRegionRefusesARegionThatIsNotRunning) {
  RegionMarks r{999999, 1, "/nonexistent", "127.250"};
  auto res = KillRegion(r, {});
  EXPECT_FALSE(res.ok());
}

}  // namespace
}  // namespace autopipe::drill

namespace autopipe::drill {
namespace {

// A process of its own session running `script` in `cwd`, with `token` set as its launch token when not empty.
pid_t Spawn(const std::string& cwd, bool token, const char* script) {
  pid_t pid = ::fork();
  if (pid == 0) {
    ::setsid();
    if (::chdir(cwd.c_str()) != 0) _exit(126);
    if (token) ::setenv("AUTOPIPE_LAUNCH_TOKEN", "t-test", 1);
    ::execl("/bin/sh", "sh", "-c", script, static_cast<char*>(nullptr));
    _exit(127);
  }
  return pid;
}

int Children(pid_t parent) {
  int n = 0;
  for (const auto& p : ReadProcSnapshot()) n += p.ppid == parent;
  return n;
}

bool Running(pid_t pid) { return ProcessStartTime(pid).has_value(); }

TEST(RegionKillTest, KillsTheRegionsProcessesAndNothingElse) {
  char tmpl[] = "/tmp/region-kill-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  const std::string data = tmpl;
  const std::string other = data + "-b";  // another region's data dir, a lookalike prefix
  ASSERT_EQ(::mkdir((data + "/engine").c_str(), 0700), 0);
  ASSERT_EQ(::mkdir(other.c_str(), 0700), 0);
  const pid_t server = Spawn(data, false, "sleep 300 & sleep 300 & wait");
  const pid_t engine = Spawn(data + "/engine", true, "sleep 300 & wait");  // re-parented engines look like this
  const pid_t stranger = Spawn(other, true, "sleep 300 & wait");
  const pid_t users = Spawn(data, false, "sleep 300 & wait");  // the user's shell in the data dir: not launched
  for (int i = 0; i < 200 && (Children(server) < 2 || Children(engine) < 1 || Children(stranger) < 1); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_EQ(Children(server), 2);
  auto start = ProcessStartTime(server);
  ASSERT_TRUE(start.has_value());
  // `users` is not a child of the server and was not launched by a supervisor; exclude nothing else.
  RegionMarks marks{server, *start, data, "127.250"};
  auto killed = KillRegion(marks, Exclusions{});
  ASSERT_TRUE(killed.ok()) << killed.status().message();
  EXPECT_EQ(killed->left, 0);
  std::set<pid_t> pids;
  for (const auto& p : killed->killed) pids.insert(p.pid);
  EXPECT_TRUE(pids.count(server));
  EXPECT_TRUE(pids.count(engine));
  EXPECT_EQ(pids.size(), 5u);  // server + its 2 sleeps, engine + its sleep
  EXPECT_FALSE(pids.count(stranger));
  EXPECT_FALSE(pids.count(users));
  EXPECT_LE(killed->first_stop_ns, killed->killed_ns);
  EXPECT_TRUE(Running(stranger));
  EXPECT_TRUE(Running(users));
  for (pid_t p : {stranger, users}) ::kill(-p, SIGKILL);
  for (pid_t p : {server, engine, stranger, users}) ::waitpid(p, nullptr, 0);
  std::filesystem::remove_all(data);
  std::filesystem::remove_all(other);
}

}  // namespace
}  // namespace autopipe::drill

#include "drill/region_kill.h"

#include <gtest/gtest.h>

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

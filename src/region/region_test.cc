// The region's module list and what `autopipe down` does with it: every process kind any module declares is
// stopped (real processes, real signals), and each kind leaves its documents as it says.
#include "region/region.h"

#include <algorithm>
#include <chrono>
#include <set>
#include <thread>

#include <gtest/gtest.h>

#include "ec2/instances.h"
#include "elasticache/replication_groups.h"
#include "process/launcher.h"
#include "process/recorded_process.h"
#include "region/module.h"
#include "region/region_fixture.h"
#include "store/store.h"

namespace autopipe {
namespace {

TEST(ModulesTest, NoTwoModulesShareADocumentKindOrASubcommand) {
  std::set<std::string> kinds, commands, names;
  for (const auto& m : AllModules()) {
    EXPECT_TRUE(names.insert(m.name).second) << m.name;
    for (const auto& k : m.document_kinds) EXPECT_TRUE(kinds.insert(k).second) << k << " claimed twice";
    for (const auto& c : m.subcommands) EXPECT_TRUE(commands.insert(c.name).second) << c.name;
    for (const auto& p : m.process_kinds) {
      EXPECT_TRUE(std::count(m.document_kinds.begin(), m.document_kinds.end(), p.document_kind))
          << m.name << " records processes in a kind it does not own: " << p.document_kind;
    }
  }
}

TEST(DownTest, StopsEveryProcessKindOfEveryModule) {
  auto store = NewMemoryStore();
  LocalProcessLauncher launcher;
  std::vector<ProcessId> started;
  std::vector<std::pair<std::string, std::string>> docs;  // kind, id
  for (const auto& m : AllModules()) {
    for (const auto& p : m.process_kinds) {
      LaunchSpec spec;
      spec.argv = {"/bin/sh", "-c", "sleep 60 & sleep 60"};  // a group with a child, as instances have
      spec.env = {{"PATH", "/usr/bin:/bin"}};
      auto pid = launcher.Launch(spec);
      ASSERT_TRUE(pid.ok()) << pid.status().ToString();
      started.push_back(*pid);
      Json doc = {{"State", instance_state::kRunning}};
      RecordProcess(doc, *pid);
      const std::string id = p.name + "-1";
      ASSERT_TRUE(store->Put(p.document_kind, id, doc).ok());
      docs.emplace_back(p.document_kind, id);
    }
  }
  ASSERT_GE(started.size(), 2u) << "instances and load-balancer nodes at least";

  StopRegionProcesses(*store, launcher, /*now_millis=*/1234);

  for (const auto& pid : started) EXPECT_FALSE(launcher.GroupAlive(pid)) << "pid " << pid.pid << " still runs";
  auto inst = store->Get(kind::kInstance, "instance-1");
  ASSERT_TRUE(inst.has_value());
  EXPECT_EQ((*inst)["State"], instance_state::kStopped);
  EXPECT_EQ((*inst)["StateReason"]["Code"], "Client.UserInitiatedShutdown");
}

// A server killed between forking a process and committing its pid: the document has the launch token (it was
// committed before the fork) but no Pid. `down` must still find and stop the process.
TEST(DownTest, StopsAProcessNoDocumentRecordedByItsLaunchToken) {
  auto store = NewMemoryStore();
  LocalProcessLauncher launcher;
  LaunchSpec spec;
  spec.argv = {"/bin/sh", "-c", "sleep 60 & sleep 60"};
  spec.env = {{"PATH", "/usr/bin:/bin"}, {kLaunchTokenVariable, "token-of-i-1"}};
  auto pid = launcher.Launch(spec);
  ASSERT_TRUE(pid.ok()) << pid.status().ToString();
  Json doc = {{"State", instance_state::kPending}, {"Pid", 0}, {"PidStartTime", 0}, {"LaunchToken", "token-of-i-1"}};
  ASSERT_TRUE(store->Put(kind::kInstance, "i-1", doc).ok());

  StopRegionProcesses(*store, launcher, /*now_millis=*/1234);

  EXPECT_FALSE(launcher.GroupAlive(*pid)) << "the unrecorded process outlived down";
}

// A server killed after relaunching a process (its first one had died) but before committing the new pid: the
// document records the dead process, and two processes may carry the token (the relaunched stray and the one a
// later server started). `down` must stop both.
TEST(DownTest, StopsEveryProcessCarryingADocumentsToken) {
  auto store = NewMemoryStore();
  LocalProcessLauncher launcher;
  LaunchSpec spec;
  spec.argv = {"/bin/sh", "-c", "sleep 60 & sleep 60"};
  spec.env = {{"PATH", "/usr/bin:/bin"}, {kLaunchTokenVariable, "token-of-node"}};
  auto stray = launcher.Launch(spec);
  ASSERT_TRUE(stray.ok()) << stray.status().ToString();
  auto recorded = launcher.Launch(spec);
  ASSERT_TRUE(recorded.ok()) << recorded.status().ToString();
  Json doc = {{"Status", "available"}, {"LaunchToken", "token-of-node"}};
  RecordProcess(doc, *recorded);
  ASSERT_TRUE(store->Put(kind::kCacheNode, "rg-0001-001", doc).ok());

  StopRegionProcesses(*store, launcher, /*now_millis=*/1234);

  EXPECT_FALSE(launcher.GroupAlive(*recorded));
  EXPECT_FALSE(launcher.GroupAlive(*stray)) << "a second process with the token outlived down";
}

// The restarted server finds such a process by its token and adopts it instead of starting a second one on the
// same address.
class UnrecordedProcessTest : public RegionFixture {
 protected:
  void SetUp() override { WireRegion({.auto_scaling = false, .load_balancing = false, .service = "ec2"}); }
};

TEST_F(UnrecordedProcessTest, ARestartedServerAdoptsTheProcessByItsToken) {
  InstanceLaunch launch;
  launch.image_id = "ami-0a1b2c3d4e5f60718";
  launch.instance_type = "t3.micro";
  launch.availability_zone = "us-west-2a";
  std::vector<StoreWrite> writes;
  auto created = NewInstance(ctx_, launch, &writes);
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  ASSERT_TRUE(store_->Commit(writes).ok());
  const std::string id = (*created)["InstanceId"];
  Json inst = *store_->Get(kind::kInstance, id);
  ASSERT_TRUE(inst["LaunchToken"].is_string()) << "the token is committed with the instance, before any fork";
  // The dead server's fork: a process with the instance's token that no document records.
  LaunchSpec spec;
  spec.argv = {"/opt/autopipe/bin/autopipe", "instance-init"};
  spec.env = {{kLaunchTokenVariable, inst["LaunchToken"]}};
  auto orphan = launcher_.Launch(spec);
  ASSERT_TRUE(orphan.ok());
  const size_t launches_before = launcher_.launch_attempts();

  AdoptUnrecordedProcesses(*store_, launcher_, clock_.NowMillis());
  runner_->RunPass();

  inst = *store_->Get(kind::kInstance, id);
  EXPECT_EQ(inst["State"], instance_state::kRunning);
  EXPECT_EQ(inst["Pid"].get<pid_t>(), orphan->pid);
  EXPECT_EQ(launcher_.launch_attempts(), launches_before) << "a second process was started for the instance";
}

}  // namespace
}  // namespace autopipe

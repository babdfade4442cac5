// The region's module list and what `autopipe down` does with it: every process kind any module declares is
// stopped (real processes, real signals), and each kind leaves its documents as it says.
#include "region/region.h"

#include <algorithm>
#include <chrono>
#include <set>
#include <thread>

#include <gtest/gtest.h>

#include "ec2/instances.h"
#include "process/launcher.h"
#include "process/recorded_process.h"
#include "region/module.h"
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

}  // namespace
}  // namespace autopipe

// Auto Scaling end to end inside one process: the real Auto Scaling handlers (through ApiRouter::Invoke), the
// real GroupController and InstanceController, an in-memory store, fake time and a FakeLauncher instead of real
// processes. Controller passes are run explicitly, so every step is deterministic and no test sleeps.
#include "autoscaling/group_controller.h"

#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "api/api_server.h"
#include "autoscaling/autoscaling_service.h"
#include "common/clock.h"
#include "ec2/catalog.h"
#include "ec2/ec2_service.h"
#include "ec2/vpc.h"
#include "ec2/instance_controller.h"
#include "ec2/instances.h"
#include "process/fake_launcher.h"
#include "region/region_fixture.h"
#include "region/context.h"
#include "region/controller.h"
#include "store/store.h"

namespace autopipe {
namespace {

namespace fs = std::filesystem;

constexpr char kLaunchConfig[] = "auto-pipeline-launch-config";
constexpr char kGroup[] = "auto-pipeline-asg";
constexpr char kSampleImage[] = "ami-0a1b2c3d4e5f60718";
constexpr char kZoneA[] = "us-west-2a";
constexpr char kZoneB[] = "us-west-2b";
constexpr char kSelfExe[] = "/opt/autopipe/bin/autopipe";
// FakeClock's default start, 1'700'000'000'000 ms, as activity causes quote it.
constexpr char kAtStart[] = "At 2023-11-14T22:13:20Z ";

class GroupControllerTest : public RegionFixture {
 protected:
  void SetUp() override { WireRegion({.auto_scaling = true}); }

  // ---- API ----

  void CreateLaunchConfiguration(const std::string& name = kLaunchConfig) {
    MustCall("CreateLaunchConfiguration",
             {{"LaunchConfigurationName", name}, {"ImageId", kSampleImage}, {"InstanceType", "t3.micro"}});
  }

  // The seed's group (min 2, max 10, desired 5 over us-west-2a/b); `overrides` replace or add parameters.
  void CreateGroup(const FormParams& overrides = {}, bool with_launch_configuration = true) {
    if (with_launch_configuration) CreateLaunchConfiguration();
    FormParams p = {{"AutoScalingGroupName", kGroup},
                    {"MinSize", "2"},
                    {"MaxSize", "10"},
                    {"DesiredCapacity", "5"},
                    {"LaunchConfigurationName", kLaunchConfig},
                    {"AvailabilityZones.member.1", kZoneA},
                    {"AvailabilityZones.member.2", kZoneB}};
    for (const auto& [k, v] : overrides) p[k] = v;
    MustCall("CreateAutoScalingGroup", p);
  }

  // Creates the seed's group and runs passes until its 5 instances are InService.
  void CreateSeedGroupInService() {
    CreateGroup();
    ASSERT_TRUE(RunUntil([&] { return InServiceCount() == 5; })) << "the group never reached 5 InService";
  }

  // ---- controller passes ----

  void Passes(int n) {
    for (int i = 0; i < n; ++i) runner_->RunPass();
  }

  // Runs passes (at the current fake time) until `done` holds; false if it never does within `max_passes`.
  bool RunUntil(const std::function<bool()>& done, int max_passes = 20) {
    for (int i = 0; i < max_passes; ++i) {
      if (done()) return true;
      runner_->RunPass();
    }
    return done();
  }

  // ---- observations ----

  // The group as DescribeAutoScalingGroups shows it, or null when it does not exist.
  Json DescribeGroup(const std::string& name = kGroup) {
    Json r = MustCall("DescribeAutoScalingGroups", {{"AutoScalingGroupNames.member.1", name}});
    if (!r.contains("AutoScalingGroups") || r["AutoScalingGroups"].empty()) return Json();
    return r["AutoScalingGroups"][0];
  }

  std::vector<Json> Members(const std::string& name = kGroup) {
    Json g = DescribeGroup(name);
    std::vector<Json> out;
    if (g.is_null()) return out;
    for (const auto& m : g["Instances"]) out.push_back(m);
    return out;
  }

  Json Member(const std::string& id, const std::string& name = kGroup) {
    for (const auto& m : Members(name)) {
      if (m["InstanceId"] == id) return m;
    }
    return Json();
  }

  std::vector<std::string> MemberIds(const std::string& name = kGroup) {
    std::vector<std::string> ids;
    for (const auto& m : Members(name)) ids.push_back(m["InstanceId"]);
    return ids;
  }

  int InServiceCount(const std::string& name = kGroup) {
    int n = 0;
    for (const auto& m : Members(name)) n += m["LifecycleState"] == "InService" && m["HealthStatus"] == "Healthy";
    return n;
  }

  // True when the group has exactly `n` members, all InService and Healthy.
  bool Settled(int n, const std::string& name = kGroup) {
    auto members = Members(name);
    return static_cast<int>(members.size()) == n && InServiceCount(name) == n;
  }

  // InService members per AZ.
  std::map<std::string, int> PerZone(const std::string& name = kGroup) {
    std::map<std::string, int> out;
    for (const auto& m : Members(name)) {
      if (m["LifecycleState"] == "InService") ++out[m["AvailabilityZone"].get<std::string>()];
    }
    return out;
  }

  Json Instance(const std::string& id) { return store_->Get(kind::kInstance, id).value_or(Json()); }

  pid_t PidOf(const std::string& id) { return Instance(id)["Pid"].get<pid_t>(); }

  std::string MemberIdInZone(const std::string& zone) {
    for (const auto& m : Members()) {
      if (m["AvailabilityZone"] == zone && m["LifecycleState"] == "InService") return m["InstanceId"];
    }
    return "";
  }

  // Activities of a group, as DescribeScalingActivities returns them (newest first).
  std::vector<Json> Activities(const std::string& name = kGroup) {
    Json r = MustCall("DescribeScalingActivities", {{"AutoScalingGroupName", name}});
    std::vector<Json> out;
    for (const auto& a : r["Activities"]) out.push_back(a);
    return out;
  }

  std::vector<Json> ActivitiesStartingWith(const std::string& prefix, const std::string& name = kGroup) {
    std::vector<Json> out;
    for (const auto& a : Activities(name)) {
      if (a["Description"].get<std::string>().rfind(prefix, 0) == 0) out.push_back(a);
    }
    return out;
  }

  Json TerminateActivityFor(const std::string& id) {
    for (const auto& a : ActivitiesStartingWith("Terminating EC2 instance: ")) {
      if (a["Description"] == "Terminating EC2 instance: " + id) return a;
    }
    return Json();
  }

};

// ---- creating the seed's group ----------------------------------------------------------------------------------

TEST_F(GroupControllerTest, SeedGroupLaunchesFiveInstancesSpreadThreeAndTwoOverItsZones) {
  CreateGroup();
  EXPECT_EQ(launcher_.launch_count(), 0u) << "the handler only records desired state";
  Passes(4);

  Json g = DescribeGroup();
  ASSERT_FALSE(g.is_null());
  EXPECT_EQ(g["MinSize"], 2);
  EXPECT_EQ(g["MaxSize"], 10);
  EXPECT_EQ(g["DesiredCapacity"], 5);
  ASSERT_EQ(g["Instances"].size(), 5u);
  for (const auto& m : g["Instances"]) {
    EXPECT_EQ(m["LifecycleState"], "InService") << m.dump();
    EXPECT_EQ(m["HealthStatus"], "Healthy") << m.dump();
    EXPECT_EQ(m["LaunchConfigurationName"], kLaunchConfig);
    Json inst = Instance(m["InstanceId"]);
    EXPECT_EQ(inst["State"], "running");
    EXPECT_EQ(inst["AvailabilityZone"], m["AvailabilityZone"]);
    EXPECT_EQ(inst["AutoScalingGroupName"], kGroup);
  }
  EXPECT_EQ(PerZone(), (std::map<std::string, int>{{kZoneA, 3}, {kZoneB, 2}}));
  EXPECT_EQ(launcher_.launch_count(), 5u);
  EXPECT_EQ(launcher_.alive_count(), 5u);

  // More passes change nothing: the group is at its desired capacity.
  Passes(5);
  EXPECT_EQ(launcher_.launch_count(), 5u);
}

TEST_F(GroupControllerTest, LaunchActivitiesSucceedWithAwsStyleCauses) {
  CreateSeedGroupInService();
  auto launches = ActivitiesStartingWith("Launching a new EC2 instance: ");
  ASSERT_EQ(launches.size(), 5u);
  std::set<std::string> described;
  for (const auto& a : launches) {
    EXPECT_EQ(a["StatusCode"], "Successful") << a.dump();
    EXPECT_EQ(a["Progress"], 100);
    EXPECT_FALSE(a["EndTime"].is_null());
    EXPECT_EQ(a["AutoScalingGroupName"], kGroup);
    EXPECT_EQ(a["Cause"], std::string(kAtStart) +
                              "a user request created an AutoScalingGroup changing the desired capacity from 0 to "
                              "5.  " + kAtStart +
                              "an instance was started in response to a difference between desired and actual "
                              "capacity, increasing the capacity from 0 to 5.");
    described.insert(a["Description"].get<std::string>().substr(strlen("Launching a new EC2 instance: ")));
  }
  auto ids = MemberIds();
  EXPECT_EQ(described, std::set<std::string>(ids.begin(), ids.end()));
}

TEST_F(GroupControllerTest, EachLaunchSpecCarriesTheInstanceEnvironmentAndItsOwnAddress) {
  CreateSeedGroupInService();
  std::set<std::string> ips;
  for (const auto& m : Members()) {
    const std::string id = m["InstanceId"];
    const std::string az = m["AvailabilityZone"];
    auto spec = launcher_.SpecOf(PidOf(id));
    ASSERT_TRUE(spec.has_value()) << id;
    auto& env = spec->env;
    EXPECT_EQ(env["AUTOPIPE_INSTANCE_ID"], id);
    EXPECT_EQ(env["AUTOPIPE_AVAILABILITY_ZONE"], az);
    EXPECT_EQ(env["AUTOPIPE_REGION"], "us-west-2");
    EXPECT_EQ(env["AUTOPIPE_INSTANCE_TYPE"], "t3.micro");
    EXPECT_EQ(env["AUTOPIPE_VCPUS"], "2");
    const std::string ip = env["AUTOPIPE_PRIVATE_IP"];
    EXPECT_EQ(ip, Instance(id)["PrivateIpAddress"]);
    ASSERT_EQ(ip.rfind("127.200.", 0), 0u) << ip << " is outside 127.200.0.0/16";
    // Each AZ owns a /18 of the block: us-west-2a third octets 1..63, us-west-2b 65..127.
    int third = std::stoi(ip.substr(strlen("127.200."), ip.rfind('.') - strlen("127.200.")));
    int az_index = catalog_.AzIndex(az);
    EXPECT_GE(third, 64 * az_index + 1) << ip << " in " << az;
    EXPECT_LE(third, 64 * az_index + 63) << ip << " in " << az;
    ips.insert(ip);

    ASSERT_GE(spec->argv.size(), 2u);
    EXPECT_EQ(spec->argv[0], kSelfExe);
    EXPECT_EQ(spec->argv[1], "instance-init");
    EXPECT_EQ(spec->working_dir, (data_dir_ / "instances" / id).string());
    EXPECT_TRUE(fs::is_directory(spec->working_dir));
  }
  EXPECT_EQ(ips.size(), 5u) << "private IPs must be distinct";
}

// With identities on (the server runs as root), every instance runs under a uid of its own, derived from its
// address and recorded in its document, and owns its folder and the files the server puts there.
TEST_F(GroupControllerTest, AsRootEachInstanceGetsAnIdentityAndFolderOfItsOwn) {
  if (geteuid() != 0) GTEST_SKIP() << "handing a folder to another uid needs root";
  ctx_.instance_identities = true;
  MustCall("CreateLaunchConfiguration", {{"LaunchConfigurationName", "lc-ud"},
                                         {"ImageId", "ami-0a1b2c3d4e5f60718"},
                                         {"InstanceType", "t3.micro"},
                                         {"UserData", "ZWNobyBoaQo="}});  // "echo hi\n"
  MustCall("CreateAutoScalingGroup", {{"AutoScalingGroupName", "asg-ud"},
                                      {"LaunchConfigurationName", "lc-ud"},
                                      {"MinSize", "3"},
                                      {"MaxSize", "3"},
                                      {"AvailabilityZones.member.1", kZoneA},
                                      {"AvailabilityZones.member.2", kZoneB}});
  Passes(3);
  std::set<uid_t> uids;
  int launched = 0;
  for (const auto& inst : store_->List(kind::kInstance)) {
    const std::string id = (*inst)["InstanceId"];
    auto spec = launcher_.SpecOf((*inst)["Pid"].get<pid_t>());
    ASSERT_TRUE(spec.has_value()) << id;
    ++launched;
    ASSERT_TRUE(spec->uid.has_value()) << id;
    const std::string ip = (*inst)["PrivateIpAddress"];
    EXPECT_EQ(*spec->uid, InstanceUidFor(ip).value()) << ip;
    EXPECT_EQ(spec->gid, spec->uid);
    EXPECT_TRUE(spec->keep_net_bind_service);
    EXPECT_GE(*spec->uid, kInstanceUidBase);
    EXPECT_EQ((*inst)["RunAsUid"].get<uint32_t>(), *spec->uid);
    uids.insert(*spec->uid);
    // Paths it is given are relative to its folder, which it cannot reach through the 0700 data dir.
    EXPECT_EQ(spec->argv, (std::vector<std::string>{kSelfExe, "instance-init", "--service", "sample-app",
                                                    "--user-data", "user-data", "--work-dir", "."}));
    struct stat st {};
    ASSERT_EQ(stat(spec->working_dir.c_str(), &st), 0);
    EXPECT_EQ(st.st_uid, *spec->uid);
    EXPECT_EQ(st.st_mode & 07777, 0700u);
    for (const char* file : {"user-data", "console.log"}) {
      ASSERT_EQ(stat((fs::path(spec->working_dir) / file).c_str(), &st), 0) << file;
      EXPECT_EQ(st.st_uid, *spec->uid) << file;
      EXPECT_EQ(st.st_mode & 07777, 0600u) << file;
    }
  }
  EXPECT_EQ(launched, 3);
  EXPECT_EQ(uids.size(), 3u) << "two instances share a uid";
}

TEST(InstanceUidTest, FollowsTheAddressWithinLoopback) {
  EXPECT_EQ(InstanceUidFor("127.200.1.1"), kInstanceUidBase + (200u << 16) + (1u << 8) + 1u);
  EXPECT_EQ(InstanceUidFor("127.255.255.254"), kInstanceUidBase + 0xFFFFFEu);
  EXPECT_FALSE(InstanceUidFor("10.0.0.1").has_value());
  EXPECT_FALSE(InstanceUidFor("not an address").has_value());
}

// ---- health and replacement -------------------------------------------------------------------------------------

TEST_F(GroupControllerTest, DeadInstanceIsReplacedInTheSameZone) {
  CreateSeedGroupInService();
  clock_.Advance(60'000);  // well past the crash window
  // us-west-2b has 2 of the 5, so a balanced replacement must go there (not to the first-listed zone).
  const std::string victim = MemberIdInZone(kZoneB);
  ASSERT_FALSE(victim.empty());
  launcher_.Kill(PidOf(victim));

  ASSERT_TRUE(RunUntil([&] { return Member(victim)["HealthStatus"] == "Unhealthy"; }));
  EXPECT_EQ(Member(victim)["LifecycleState"], "Terminating");
  Json act = TerminateActivityFor(victim);
  ASSERT_FALSE(act.is_null());
  EXPECT_NE(act["Cause"].get<std::string>().find(
                "an instance was taken out of service in response to an EC2 health check indicating it has been "
                "terminated or stopped."),
            std::string::npos)
      << act["Cause"];

  ASSERT_TRUE(RunUntil([&] { return Settled(5); }));
  auto ids = MemberIds();
  EXPECT_EQ(std::count(ids.begin(), ids.end(), victim), 0) << "the dead instance left the group";
  EXPECT_EQ(PerZone(), (std::map<std::string, int>{{kZoneA, 3}, {kZoneB, 2}}));
  EXPECT_EQ(launcher_.launch_count(), 6u);
  EXPECT_EQ(Instance(victim)["State"], "terminated");
  EXPECT_EQ(TerminateActivityFor(victim)["StatusCode"], "Successful");
}

TEST_F(GroupControllerTest, SetInstanceHealthInsideGracePeriodIsIgnoredAndAfterItReplaces) {
  CreateGroup({{"HealthCheckGracePeriod", "300"}});
  ASSERT_TRUE(RunUntil([&] { return Settled(5); }));
  const std::string id = MemberIds()[0];

  clock_.Advance(100'000);  // 100 s into a 300 s grace period
  MustCall("SetInstanceHealth", {{"InstanceId", id}, {"HealthStatus", "Unhealthy"}});
  EXPECT_EQ(Member(id)["HealthStatus"], "Healthy");
  Passes(5);
  EXPECT_EQ(Member(id)["LifecycleState"], "InService");
  EXPECT_EQ(launcher_.launch_count(), 5u);

  clock_.Advance(201'000);  // 301 s after launch
  MustCall("SetInstanceHealth", {{"InstanceId", id}, {"HealthStatus", "Unhealthy"}});
  EXPECT_EQ(Member(id)["HealthStatus"], "Unhealthy");
  ASSERT_TRUE(RunUntil([&] { return Settled(5) && Member(id).is_null(); }));
  EXPECT_EQ(launcher_.launch_count(), 6u);
  Json act = TerminateActivityFor(id);
  ASSERT_FALSE(act.is_null());
  EXPECT_NE(act["Cause"].get<std::string>().find(
                "an instance was taken out of service in response to a user health-check."),
            std::string::npos)
      << act["Cause"];
}

TEST_F(GroupControllerTest, SetInstanceHealthWithoutRespectingGracePeriodReplacesAtOnce) {
  CreateGroup({{"HealthCheckGracePeriod", "300"}});
  ASSERT_TRUE(RunUntil([&] { return Settled(5); }));
  const std::string id = MemberIds()[0];
  clock_.Advance(100'000);
  MustCall("SetInstanceHealth",
           {{"InstanceId", id}, {"HealthStatus", "Unhealthy"}, {"ShouldRespectGracePeriod", "false"}});
  EXPECT_EQ(Member(id)["HealthStatus"], "Unhealthy");
  ASSERT_TRUE(RunUntil([&] { return Settled(5) && Member(id).is_null(); }));
  EXPECT_EQ(launcher_.launch_count(), 6u);
  EXPECT_EQ(Instance(id)["State"], "terminated");
}

// ---- desired capacity and sizes ---------------------------------------------------------------------------------

TEST_F(GroupControllerTest, SetDesiredCapacityDownTerminatesThreeKeepingZonesBalanced) {
  CreateSeedGroupInService();
  auto before = MemberIds();
  MustCall("SetDesiredCapacity", {{"AutoScalingGroupName", kGroup}, {"DesiredCapacity", "2"}});
  EXPECT_EQ(DescribeGroup()["DesiredCapacity"], 2);

  ASSERT_TRUE(RunUntil([&] { return Settled(2); }));
  EXPECT_EQ(PerZone(), (std::map<std::string, int>{{kZoneA, 1}, {kZoneB, 1}}));
  auto after = MemberIds();
  int terminated = 0;
  for (const auto& id : before) {
    if (std::find(after.begin(), after.end(), id) != after.end()) continue;
    ++terminated;
    EXPECT_EQ(Instance(id)["State"], "terminated") << id;
    auto signals = launcher_.SignalsTo(PidOf(id));
    ASSERT_FALSE(signals.empty()) << id;
    EXPECT_FALSE(signals[0]) << "scale-in starts with SIGTERM";
  }
  EXPECT_EQ(terminated, 3);
  EXPECT_EQ(launcher_.launch_count(), 5u) << "scale-in launches nothing";

  auto terminations = ActivitiesStartingWith("Terminating EC2 instance: ");
  ASSERT_EQ(terminations.size(), 3u);
  for (const auto& a : terminations) {
    EXPECT_EQ(a["StatusCode"], "Successful");
    EXPECT_EQ(a["Cause"], std::string(kAtStart) +
                              "a user request explicitly set group desired capacity changing the desired capacity "
                              "from 5 to 2.  " + kAtStart +
                              "an instance was taken out of service in response to a difference between desired "
                              "and actual capacity, shrinking the capacity from 5 to 2.");
  }
}

TEST_F(GroupControllerTest, SetDesiredCapacityOutsideMinAndMaxIsRejected) {
  CreateSeedGroupInService();
  ExpectError(Call("SetDesiredCapacity", {{"AutoScalingGroupName", kGroup}, {"DesiredCapacity", "11"}}),
              "ValidationError", "New SetDesiredCapacity value 11 is above max value 10 for the AutoScalingGroup.");
  ExpectError(Call("SetDesiredCapacity", {{"AutoScalingGroupName", kGroup}, {"DesiredCapacity", "1"}}),
              "ValidationError", "New SetDesiredCapacity value 1 is below min value 2 for the AutoScalingGroup.");
  EXPECT_EQ(DescribeGroup()["DesiredCapacity"], 5);
  Passes(4);
  EXPECT_TRUE(Settled(5));
  EXPECT_EQ(launcher_.launch_count(), 5u);
}

TEST_F(GroupControllerTest, SetDesiredCapacityUpLaunchesIntoTheEmptierZones) {
  CreateSeedGroupInService();
  MustCall("SetDesiredCapacity", {{"AutoScalingGroupName", kGroup}, {"DesiredCapacity", "8"}});
  ASSERT_TRUE(RunUntil([&] { return Settled(8); }));
  EXPECT_EQ(PerZone(), (std::map<std::string, int>{{kZoneA, 4}, {kZoneB, 4}}));
  auto launches = ActivitiesStartingWith("Launching a new EC2 instance: ");
  ASSERT_EQ(launches.size(), 8u);
  int scale_out = 0;
  for (const auto& a : launches) {
    scale_out += a["Cause"].get<std::string>().find("changing the desired capacity from 5 to 8.") !=
                     std::string::npos &&
                 a["Cause"].get<std::string>().find("increasing the capacity from 5 to 8.") != std::string::npos;
  }
  EXPECT_EQ(scale_out, 3);
}

TEST_F(GroupControllerTest, UpdateRaisingMinAboveDesiredLiftsDesired) {
  CreateSeedGroupInService();
  MustCall("UpdateAutoScalingGroup", {{"AutoScalingGroupName", kGroup}, {"MinSize", "7"}});
  Json g = DescribeGroup();
  EXPECT_EQ(g["MinSize"], 7);
  EXPECT_EQ(g["MaxSize"], 10);
  EXPECT_EQ(g["DesiredCapacity"], 7);
  ASSERT_TRUE(RunUntil([&] { return Settled(7); }));
  EXPECT_EQ(PerZone(), (std::map<std::string, int>{{kZoneA, 4}, {kZoneB, 3}}));
  int lifted = 0;
  for (const auto& a : ActivitiesStartingWith("Launching a new EC2 instance: ")) {
    lifted += a["Cause"].get<std::string>().find(
                  "a user request update of AutoScalingGroup constraints to min: 7, max: 10, desired: 7 changing "
                  "the desired capacity from 5 to 7.") != std::string::npos;
  }
  EXPECT_EQ(lifted, 2);
}

TEST_F(GroupControllerTest, UpdateLoweringMaxBelowDesiredLowersDesired) {
  CreateSeedGroupInService();
  MustCall("UpdateAutoScalingGroup", {{"AutoScalingGroupName", kGroup}, {"MaxSize", "3"}});
  Json g = DescribeGroup();
  EXPECT_EQ(g["MaxSize"], 3);
  EXPECT_EQ(g["DesiredCapacity"], 3);
  ASSERT_TRUE(RunUntil([&] { return Settled(3); }));
}

TEST_F(GroupControllerTest, SizeValidationMessages) {
  CreateLaunchConfiguration();
  FormParams create = {{"AutoScalingGroupName", kGroup},
                       {"MinSize", "2"},
                       {"MaxSize", "10"},
                       {"DesiredCapacity", "11"},
                       {"LaunchConfigurationName", kLaunchConfig},
                       {"AvailabilityZones.member.1", kZoneA}};
  ExpectError(Call("CreateAutoScalingGroup", create), "ValidationError",
              "Desired capacity:11 must be between the specified min size:2 and max size:10");
  create["DesiredCapacity"] = "1";
  ExpectError(Call("CreateAutoScalingGroup", create), "ValidationError",
              "Desired capacity:1 must be between the specified min size:2 and max size:10");
  create.erase("DesiredCapacity");
  create["MinSize"] = "5";
  create["MaxSize"] = "2";
  ExpectError(Call("CreateAutoScalingGroup", create), "ValidationError",
              "Max bound, 2, must be greater than or equal to min bound, 5");
  EXPECT_TRUE(DescribeGroup().is_null()) << "a rejected create leaves no group";

  CreateGroup({}, /*with_launch_configuration=*/false);
  ExpectError(Call("UpdateAutoScalingGroup", {{"AutoScalingGroupName", kGroup}, {"MinSize", "8"}, {"MaxSize", "4"}}),
              "ValidationError", "Max bound, 4, must be greater than or equal to min bound, 8");
  ExpectError(Call("UpdateAutoScalingGroup", {{"AutoScalingGroupName", kGroup}, {"DesiredCapacity", "1"}}),
              "ValidationError", "Desired capacity:1 must be between the specified min size:2 and max size:10");
  ExpectError(Call("UpdateAutoScalingGroup", {{"AutoScalingGroupName", kGroup}, {"DesiredCapacity", "12"}}),
              "ValidationError", "Desired capacity:12 must be between the specified min size:2 and max size:10");
  Json g = DescribeGroup();
  EXPECT_EQ(g["MinSize"], 2);
  EXPECT_EQ(g["MaxSize"], 10);
  EXPECT_EQ(g["DesiredCapacity"], 5);
}

TEST_F(GroupControllerTest, DesiredCapacityDefaultsToMinSize) {
  CreateLaunchConfiguration();
  MustCall("CreateAutoScalingGroup", {{"AutoScalingGroupName", "no-desired"},
                                      {"MinSize", "3"},
                                      {"MaxSize", "6"},
                                      {"LaunchConfigurationName", kLaunchConfig},
                                      {"AvailabilityZones.member.1", kZoneA}});
  EXPECT_EQ(DescribeGroup("no-desired")["DesiredCapacity"], 3);
  ASSERT_TRUE(RunUntil([&] { return Settled(3, "no-desired"); }));
}

// ---- TerminateInstanceInAutoScalingGroup ------------------------------------------------------------------------

TEST_F(GroupControllerTest, TerminateInstanceWithDecrementShrinksWithoutReplacement) {
  CreateSeedGroupInService();
  const std::string id = MemberIds()[0];
  Json r = MustCall("TerminateInstanceInAutoScalingGroup",
                    {{"InstanceId", id}, {"ShouldDecrementDesiredCapacity", "true"}});
  ASSERT_TRUE(r.contains("Activity"));
  EXPECT_EQ(r["Activity"]["Description"], "Terminating EC2 instance: " + id);
  EXPECT_EQ(r["Activity"]["Cause"], std::string(kAtStart) + "instance " + id +
                                        " was taken out of service in response to a user request, shrinking the "
                                        "capacity from 5 to 4.");
  EXPECT_EQ(DescribeGroup()["DesiredCapacity"], 4);
  EXPECT_EQ(Member(id)["LifecycleState"], "Terminating");

  ASSERT_TRUE(RunUntil([&] { return Settled(4); }));
  EXPECT_TRUE(Member(id).is_null());
  EXPECT_EQ(Instance(id)["State"], "terminated");
  EXPECT_EQ(launcher_.launch_count(), 5u) << "no replacement when the capacity was decremented";
  EXPECT_EQ(TerminateActivityFor(id)["StatusCode"], "Successful");
}

TEST_F(GroupControllerTest, TerminateInstanceWithoutDecrementLaunchesAReplacement) {
  CreateSeedGroupInService();
  const std::string id = MemberIdInZone(kZoneB);
  Json r = MustCall("TerminateInstanceInAutoScalingGroup",
                    {{"InstanceId", id}, {"ShouldDecrementDesiredCapacity", "false"}});
  EXPECT_EQ(r["Activity"]["Cause"],
            std::string(kAtStart) + "instance " + id + " was taken out of service in response to a user request.");
  EXPECT_EQ(DescribeGroup()["DesiredCapacity"], 5);

  ASSERT_TRUE(RunUntil([&] { return Settled(5) && Member(id).is_null(); }));
  EXPECT_EQ(launcher_.launch_count(), 6u);
  EXPECT_EQ(PerZone(), (std::map<std::string, int>{{kZoneA, 3}, {kZoneB, 2}}));
  EXPECT_EQ(Instance(id)["State"], "terminated");
}

TEST_F(GroupControllerTest, TerminateInstanceThatWouldBreakMinSizeIsRejected) {
  CreateGroup({{"DesiredCapacity", "2"}});
  ASSERT_TRUE(RunUntil([&] { return Settled(2); }));
  const std::string id = MemberIds()[0];
  ExpectError(Call("TerminateInstanceInAutoScalingGroup",
                   {{"InstanceId", id}, {"ShouldDecrementDesiredCapacity", "true"}}),
              "ValidationError",
              "Currently, desiredCapacity is 2 and minSize is 2. Terminating instance without replacement will "
              "violate group's min size constraint. Either set shouldDecrementDesiredCapacity flag to false or "
              "lower group's min size constraint.");
  EXPECT_EQ(Member(id)["LifecycleState"], "InService");
  EXPECT_EQ(DescribeGroup()["DesiredCapacity"], 2);
  Passes(4);
  EXPECT_EQ(Instance(id)["State"], "running");

  ExpectError(Call("TerminateInstanceInAutoScalingGroup",
                   {{"InstanceId", "i-0123456789abcdef0"}, {"ShouldDecrementDesiredCapacity", "false"}}),
              "ValidationError",
              "Instance Id not found - No managed instance found for instance ID: i-0123456789abcdef0");
}

// ---- suspended processes ----------------------------------------------------------------------------------------

TEST_F(GroupControllerTest, SuspendedReplaceUnhealthyKeepsTheUnhealthyInstanceUntilResumed) {
  CreateSeedGroupInService();
  MustCall("SuspendProcesses", {{"AutoScalingGroupName", kGroup}, {"ScalingProcesses.member.1", "ReplaceUnhealthy"}});
  ASSERT_EQ(DescribeGroup()["SuspendedProcesses"].size(), 1u);
  clock_.Advance(60'000);
  const std::string id = MemberIds()[0];
  launcher_.Kill(PidOf(id));

  Passes(6);
  EXPECT_EQ(Member(id)["HealthStatus"], "Unhealthy") << "health checks still run";
  EXPECT_EQ(Member(id)["LifecycleState"], "InService") << "but the unhealthy instance is not replaced";
  EXPECT_EQ(launcher_.launch_count(), 5u);
  EXPECT_TRUE(TerminateActivityFor(id).is_null());

  MustCall("ResumeProcesses", {{"AutoScalingGroupName", kGroup}, {"ScalingProcesses.member.1", "ReplaceUnhealthy"}});
  EXPECT_TRUE(DescribeGroup()["SuspendedProcesses"].empty());
  ASSERT_TRUE(RunUntil([&] { return Settled(5) && Member(id).is_null(); }));
  EXPECT_EQ(launcher_.launch_count(), 6u);
}

TEST_F(GroupControllerTest, SuspendedLaunchStopsLaunchesUntilResumed) {
  CreateGroup();
  MustCall("SuspendProcesses", {{"AutoScalingGroupName", kGroup}, {"ScalingProcesses.member.1", "Launch"}});
  Passes(6);
  EXPECT_EQ(launcher_.launch_count(), 0u);
  EXPECT_TRUE(Members().empty());

  MustCall("ResumeProcesses", {{"AutoScalingGroupName", kGroup}, {"ScalingProcesses.member.1", "Launch"}});
  ASSERT_TRUE(RunUntil([&] { return Settled(5); }));
  EXPECT_EQ(launcher_.launch_count(), 5u);
}

TEST_F(GroupControllerTest, SuspendedTerminateStopsScaleInUntilResumed) {
  CreateSeedGroupInService();
  MustCall("SuspendProcesses", {{"AutoScalingGroupName", kGroup}, {"ScalingProcesses.member.1", "Terminate"}});
  MustCall("SetDesiredCapacity", {{"AutoScalingGroupName", kGroup}, {"DesiredCapacity", "2"}});
  Passes(6);
  EXPECT_TRUE(Settled(5)) << "no instance is terminated while Terminate is suspended";
  EXPECT_TRUE(launcher_.signals().empty());

  MustCall("ResumeProcesses", {{"AutoScalingGroupName", kGroup}, {"ScalingProcesses.member.1", "Terminate"}});
  ASSERT_TRUE(RunUntil([&] { return Settled(2); }));
  EXPECT_EQ(PerZone(), (std::map<std::string, int>{{kZoneA, 1}, {kZoneB, 1}}));
}

// ---- deleting ---------------------------------------------------------------------------------------------------

TEST_F(GroupControllerTest, DeleteWithoutForceFailsWhileInstancesExist) {
  CreateSeedGroupInService();
  ExpectError(Call("DeleteAutoScalingGroup", {{"AutoScalingGroupName", kGroup}}), "ResourceInUse",
              "You cannot delete an AutoScalingGroup while there are instances or pending Spot instance "
              "request(s) still in the group.");
  Passes(4);
  EXPECT_TRUE(Settled(5));
  EXPECT_TRUE(launcher_.signals().empty());
}

TEST_F(GroupControllerTest, DeleteOfAnEmptyGroupNeedsNoForce) {
  CreateGroup({{"MinSize", "0"}, {"DesiredCapacity", "0"}});
  Passes(2);
  MustCall("DeleteAutoScalingGroup", {{"AutoScalingGroupName", kGroup}});
  EXPECT_TRUE(DescribeGroup().is_null());
}

TEST_F(GroupControllerTest, ForceDeleteTerminatesEveryInstanceThenRemovesTheGroup) {
  CreateSeedGroupInService();
  auto ids = MemberIds();
  MustCall("DeleteAutoScalingGroup", {{"AutoScalingGroupName", kGroup}, {"ForceDelete", "true"}});
  EXPECT_EQ(DescribeGroup()["Status"], "Delete in progress");

  ASSERT_TRUE(RunUntil([&] { return DescribeGroup().is_null(); }));
  for (const auto& id : ids) {
    EXPECT_EQ(Instance(id)["State"], "terminated") << id;
    pid_t pid = PidOf(id);
    auto signals = launcher_.SignalsTo(pid);
    ASSERT_FALSE(signals.empty()) << id;
    EXPECT_FALSE(signals[0]) << id << " got SIGKILL before SIGTERM";
    EXPECT_FALSE(launcher_.Alive(pid));
  }
  EXPECT_EQ(launcher_.alive_count(), 0u);
  EXPECT_EQ(launcher_.launch_count(), 5u);
  ExpectError(Call("SetDesiredCapacity", {{"AutoScalingGroupName", kGroup}, {"DesiredCapacity", "2"}}),
              "ValidationError", "AutoScalingGroup name not found - AutoScalingGroup auto-pipeline-asg not found");
}

TEST_F(GroupControllerTest, ForceDeleteWaitsForProcessesThatIgnoreSigterm) {
  launcher_.set_ignore_sigterm(true);
  CreateSeedGroupInService();
  MustCall("DeleteAutoScalingGroup", {{"AutoScalingGroupName", kGroup}, {"ForceDelete", "true"}});
  Passes(6);
  EXPECT_FALSE(DescribeGroup().is_null()) << "the group stays while its processes live";
  EXPECT_EQ(launcher_.alive_count(), 5u);
  clock_.Advance(InstanceController::kKillAfterMillis + 1);
  ASSERT_TRUE(RunUntil([&] { return DescribeGroup().is_null(); }));
  EXPECT_EQ(launcher_.alive_count(), 0u);
}

TEST_F(GroupControllerTest, ProcessIgnoringSigtermGetsSigkillAfterKillDelay) {
  CreateGroup({{"MinSize", "0"}, {"MaxSize", "1"}, {"DesiredCapacity", "1"}});
  launcher_.set_ignore_sigterm(true);
  ASSERT_TRUE(RunUntil([&] { return Settled(1); }));
  const std::string id = MemberIds()[0];
  const pid_t pid = PidOf(id);
  MustCall("TerminateInstanceInAutoScalingGroup", {{"InstanceId", id}, {"ShouldDecrementDesiredCapacity", "true"}});

  ASSERT_TRUE(RunUntil([&] { return Instance(id)["State"] == "shutting-down"; }));
  auto sigkills = [&] {
    auto s = launcher_.SignalsTo(pid);
    return std::count(s.begin(), s.end(), true);
  };
  Passes(3);
  ASSERT_FALSE(launcher_.SignalsTo(pid).empty());
  EXPECT_FALSE(launcher_.SignalsTo(pid)[0]) << "SIGTERM first";
  EXPECT_EQ(sigkills(), 0);
  EXPECT_TRUE(launcher_.Alive(pid));

  clock_.Advance(InstanceController::kKillAfterMillis - 1);
  Passes(3);
  EXPECT_EQ(sigkills(), 0) << "no SIGKILL before the kill delay";
  EXPECT_EQ(Instance(id)["State"], "shutting-down");

  clock_.Advance(2);
  Passes(1);
  EXPECT_GE(sigkills(), 1) << "SIGKILL after the kill delay";
  EXPECT_FALSE(launcher_.Alive(pid));
  ASSERT_TRUE(RunUntil([&] { return Settled(0); }));
  EXPECT_EQ(Instance(id)["State"], "terminated");
}

// ---- crash back-off and failed launches -------------------------------------------------------------------------

TEST_F(GroupControllerTest, QuickCrashDelaysTheNextLaunchByFiveSeconds) {
  CreateGroup({{"MinSize", "1"}, {"MaxSize", "1"}, {"DesiredCapacity", "1"}});
  ASSERT_TRUE(RunUntil([&] { return Settled(1); }));
  const std::string id = MemberIds()[0];
  clock_.Advance(GroupController::kCrashWindowMillis / 3);  // dies 1 s after launch
  launcher_.Kill(PidOf(id));

  ASSERT_TRUE(RunUntil([&] { return Member(id).is_null(); }));  // replaced out of the group, no relaunch yet
  Passes(5);
  EXPECT_EQ(launcher_.launch_count(), 1u) << "no launch inside the back-off";
  EXPECT_TRUE(Members().empty());

  clock_.Advance(4'900);  // still under 5 s after the crash was seen
  Passes(5);
  EXPECT_EQ(launcher_.launch_count(), 1u) << "no launch inside the back-off";

  clock_.Advance(200);  // now past 5 s
  ASSERT_TRUE(RunUntil([&] { return Settled(1); }));
  EXPECT_EQ(launcher_.launch_count(), 2u);
}

TEST_F(GroupControllerTest, DeathAfterTheCrashWindowIsReplacedWithoutBackoff) {
  CreateGroup({{"MinSize", "1"}, {"MaxSize", "1"}, {"DesiredCapacity", "1"}});
  ASSERT_TRUE(RunUntil([&] { return Settled(1); }));
  const std::string id = MemberIds()[0];
  clock_.Advance(GroupController::kCrashWindowMillis + 1);
  launcher_.Kill(PidOf(id));
  ASSERT_TRUE(RunUntil([&] { return Settled(1) && Member(id).is_null(); }));  // fake time does not move
  EXPECT_EQ(launcher_.launch_count(), 2u);
}

// The header promises a back-off of "5 s, doubling to 60 s". Every launched process is seen running on the
// group's next pass (its instance is marked running as soon as the launcher returns), which moves the member to
// InService and resets LaunchFailures to 0 in Observe(); so when it then crashes, the failure count is 1 again
// and the back-off never doubles: a boot script that always fails relaunches every 5 s forever.
// Disabled until GroupController keeps counting failures for instances that die within the crash window.
TEST_F(GroupControllerTest, RepeatedQuickCrashesDoubleTheBackoff) {
  CreateGroup({{"MinSize", "1"}, {"MaxSize", "1"}, {"DesiredCapacity", "1"}});
  ASSERT_TRUE(RunUntil([&] { return Settled(1); }));
  // First crash: dies 1 s after launch.
  clock_.Advance(1'000);
  launcher_.Kill(PidOf(MemberIds()[0]));
  ASSERT_TRUE(RunUntil([&] { return Members().empty(); }));
  clock_.Advance(5'000);
  ASSERT_TRUE(RunUntil([&] { return launcher_.launch_count() == 2u; }));
  ASSERT_TRUE(RunUntil([&] { return Settled(1); }));

  // Second crash of the relaunched instance, again 1 s after its launch.
  clock_.Advance(1'000);
  launcher_.Kill(PidOf(MemberIds()[0]));
  ASSERT_TRUE(RunUntil([&] { return Members().empty(); }));
  clock_.Advance(5'001);
  Passes(5);
  EXPECT_EQ(launcher_.launch_count(), 2u) << "a second quick crash must back off 10 s, not 5 s";
  clock_.Advance(5'000);
  ASSERT_TRUE(RunUntil([&] { return launcher_.launch_count() == 3u; }));
}

TEST_F(GroupControllerTest, LaunchFailureMarksInstanceTerminatedWithInternalError) {
  launcher_.set_fail_launches(true);
  CreateGroup({{"MinSize", "1"}, {"MaxSize", "1"}, {"DesiredCapacity", "1"}});
  Passes(3);
  EXPECT_EQ(launcher_.launch_attempts(), 1u);
  auto launches = ActivitiesStartingWith("Launching a new EC2 instance: ");
  ASSERT_EQ(launches.size(), 1u);
  const std::string id = launches[0]["Description"].get<std::string>().substr(strlen("Launching a new EC2 instance: "));
  Json inst = Instance(id);
  EXPECT_EQ(inst["State"], "terminated");
  ASSERT_TRUE(inst["StateReason"].is_object());
  EXPECT_EQ(inst["StateReason"]["Code"], "Server.InternalError");
  EXPECT_EQ(inst["StateReason"]["Message"], "Server.InternalError: Internal error on launch");
  EXPECT_TRUE(Member(id).is_null()) << "the failed instance leaves the group";

  // Once launching works again the group recovers (after the back-off).
  launcher_.set_fail_launches(false);
  clock_.Advance(60'000);
  ASSERT_TRUE(RunUntil([&] { return Settled(1); }));
  EXPECT_EQ(launcher_.launch_count(), 1u);
}

// Observe() marks the launch activity of a member that never ran "Failed" ("Instance failed to start: ..."),
// but in the same Reconcile ReplaceUnhealthy() -> Terminate() calls FinishActivity() on the same activity again:
// FinishActivity() reads the activity from the store, where the "Failed" write of this pass is not committed
// yet, so it returns a second write ("Cancelled", "Instance left the group") that lands later in the same batch
// and overwrites "Failed". DescribeScalingActivities then reports a failed launch as Cancelled.
// Disabled until a failed launch's activity stays Failed.
TEST_F(GroupControllerTest, FailedLaunchActivityIsReportedAsFailed) {
  launcher_.set_fail_launches(true);
  CreateGroup({{"MinSize", "1"}, {"MaxSize", "1"}, {"DesiredCapacity", "1"}});
  Passes(3);
  auto launches = ActivitiesStartingWith("Launching a new EC2 instance: ");
  ASSERT_EQ(launches.size(), 1u);
  EXPECT_EQ(launches[0]["StatusCode"], "Failed");
  EXPECT_EQ(launches[0]["StatusMessage"], "Instance failed to start: terminated");
}

// ---- termination policies ---------------------------------------------------------------------------------------

class TerminationPolicyTest : public GroupControllerTest {
 protected:
  // One AZ (so balancing does not decide), three instances launched at t0, t0+10 s and t0+20 s, and the clock
  // set to t0 + 1 h + 5 s, where ClosestToNextInstanceHour (the Default policy's tie-breaker) would pick the
  // middle one: it is the one neither OldestInstance nor NewestInstance picks.
  void SetUpThreeAgedInstances() {
    CreateGroup({{"MinSize", "0"}, {"DesiredCapacity", "1"}, {"AvailabilityZones.member.2", kZoneA}});
    ASSERT_TRUE(RunUntil([&] { return Settled(1); }));
    oldest_ = MemberIds()[0];
    clock_.Advance(10'000);
    MustCall("SetDesiredCapacity", {{"AutoScalingGroupName", kGroup}, {"DesiredCapacity", "2"}});
    ASSERT_TRUE(RunUntil([&] { return Settled(2); }));
    for (const auto& id : MemberIds())
      if (id != oldest_) middle_ = id;
    clock_.Advance(10'000);
    MustCall("SetDesiredCapacity", {{"AutoScalingGroupName", kGroup}, {"DesiredCapacity", "3"}});
    ASSERT_TRUE(RunUntil([&] { return Settled(3); }));
    for (const auto& id : MemberIds())
      if (id != oldest_ && id != middle_) newest_ = id;
    ASSERT_FALSE(newest_.empty());
    clock_.Advance(3600'000 - 20'000 + 5'000);
  }

  void ScaleTo(int n) {
    MustCall("SetDesiredCapacity", {{"AutoScalingGroupName", kGroup}, {"DesiredCapacity", std::to_string(n)}});
    ASSERT_TRUE(RunUntil([&] { return Settled(n); }));
  }

  std::string oldest_, middle_, newest_;
};

TEST_F(TerminationPolicyTest, OldestInstanceTerminatesTheOldest) {
  SetUpThreeAgedInstances();
  MustCall("UpdateAutoScalingGroup",
           {{"AutoScalingGroupName", kGroup}, {"TerminationPolicies.member.1", "OldestInstance"}});
  EXPECT_EQ(DescribeGroup()["TerminationPolicies"], Json::array({"OldestInstance"}));
  ScaleTo(2);
  EXPECT_TRUE(Member(oldest_).is_null());
  EXPECT_FALSE(Member(middle_).is_null());
  EXPECT_FALSE(Member(newest_).is_null());
}

TEST_F(TerminationPolicyTest, NewestInstanceTerminatesTheNewest) {
  SetUpThreeAgedInstances();
  MustCall("UpdateAutoScalingGroup",
           {{"AutoScalingGroupName", kGroup}, {"TerminationPolicies.member.1", "NewestInstance"}});
  ScaleTo(2);
  EXPECT_TRUE(Member(newest_).is_null());
  EXPECT_FALSE(Member(oldest_).is_null());
  EXPECT_FALSE(Member(middle_).is_null());
  ScaleTo(1);
  EXPECT_TRUE(Member(middle_).is_null());
  EXPECT_FALSE(Member(oldest_).is_null());
}

TEST_F(TerminationPolicyTest, DefaultPolicyTerminatesClosestToNextInstanceHour) {
  SetUpThreeAgedInstances();
  ScaleTo(2);
  EXPECT_TRUE(Member(middle_).is_null());
}

// ---- tags, activities, pagination -------------------------------------------------------------------------------

TEST_F(GroupControllerTest, PropagatedTagsAndGroupNameReachTheInstances) {
  CreateGroup({{"DesiredCapacity", "2"},
               {"Tags.member.1.Key", "Name"},
               {"Tags.member.1.Value", "web"},
               {"Tags.member.1.PropagateAtLaunch", "true"},
               {"Tags.member.2.Key", "team"},
               {"Tags.member.2.Value", "blue"},
               {"Tags.member.2.PropagateAtLaunch", "false"}});
  ASSERT_TRUE(RunUntil([&] { return Settled(2); }));
  for (const auto& id : MemberIds()) {
    Json tags = Instance(id)["Tags"];
    EXPECT_EQ(tags.value("aws:autoscaling:groupName", ""), kGroup) << tags.dump();
    EXPECT_EQ(tags.value("Name", ""), "web") << tags.dump();
    EXPECT_FALSE(tags.contains("team")) << "a tag without PropagateAtLaunch stays on the group";
  }
  // EC2 shows them too.
  Json r = *router_.Invoke("ec2", "DescribeInstances",
                           {{"Filter.1.Name", "tag:aws:autoscaling:groupName"}, {"Filter.1.Value.1", kGroup}});
  EXPECT_EQ(r["reservationSet"].size(), 2u);
}

TEST_F(GroupControllerTest, ScalingActivitiesAreListedNewestFirst) {
  CreateGroup({{"DesiredCapacity", "2"}});
  ASSERT_TRUE(RunUntil([&] { return Settled(2); }));
  clock_.Advance(10'000);
  MustCall("SetDesiredCapacity", {{"AutoScalingGroupName", kGroup}, {"DesiredCapacity", "3"}});
  ASSERT_TRUE(RunUntil([&] { return Settled(3); }));
  clock_.Advance(10'000);
  const std::string id = MemberIds()[0];
  MustCall("TerminateInstanceInAutoScalingGroup", {{"InstanceId", id}, {"ShouldDecrementDesiredCapacity", "true"}});

  auto acts = Activities();
  ASSERT_EQ(acts.size(), 4u);
  EXPECT_EQ(acts[0]["Description"], "Terminating EC2 instance: " + id);
  EXPECT_NE(acts[1]["Cause"].get<std::string>().find("from 2 to 3"), std::string::npos) << acts[1]["Cause"];
  for (size_t i = 1; i < acts.size(); ++i) {
    EXPECT_GE(acts[i - 1]["StartTime"].get<std::string>(), acts[i]["StartTime"].get<std::string>());
  }
  EXPECT_GT(acts[0]["StartTime"].get<std::string>(), acts[1]["StartTime"].get<std::string>());
  EXPECT_GT(acts[1]["StartTime"].get<std::string>(), acts[2]["StartTime"].get<std::string>());
}

TEST_F(GroupControllerTest, DescribeAutoScalingGroupsPaginates) {
  CreateLaunchConfiguration();
  for (const char* name : {"group-b", "group-a", "group-c"}) {
    MustCall("CreateAutoScalingGroup", {{"AutoScalingGroupName", name},
                                        {"MinSize", "0"},
                                        {"MaxSize", "1"},
                                        {"LaunchConfigurationName", kLaunchConfig},
                                        {"AvailabilityZones.member.1", kZoneA}});
  }
  std::vector<std::string> seen;
  FormParams p = {{"MaxRecords", "1"}};
  for (int page = 0; page < 5; ++page) {
    Json r = MustCall("DescribeAutoScalingGroups", p);
    ASSERT_EQ(r["AutoScalingGroups"].size(), 1u);
    seen.push_back(r["AutoScalingGroups"][0]["AutoScalingGroupName"]);
    if (!r.contains("NextToken")) break;
    p["NextToken"] = r["NextToken"];
  }
  EXPECT_EQ(seen, (std::vector<std::string>{"group-a", "group-b", "group-c"}));

  Json all = MustCall("DescribeAutoScalingGroups", {});
  EXPECT_EQ(all["AutoScalingGroups"].size(), 3u);
  EXPECT_FALSE(all.contains("NextToken"));
}

TEST_F(GroupControllerTest, DescribeAutoScalingGroupsRejectsABadNextToken) {
  CreateGroup({{"MinSize", "0"}, {"DesiredCapacity", "0"}});
  ExpectError(Call("DescribeAutoScalingGroups", {{"NextToken", "not-a-token"}}), "InvalidNextToken",
              "The token 'not-a-token' is invalid.");
}

}  // namespace
}  // namespace autopipe

namespace autopipe {
namespace {

class VpcZoneIdentifierTest : public GroupControllerTest {};

TEST_F(VpcZoneIdentifierTest, AGroupOverTwoDefaultSubnetsBalancesItsInstancesOverTheirZones) {
  const std::string a = ec2::DefaultSubnetId(catalog_, kZoneA), c = ec2::DefaultSubnetId(catalog_, "us-west-2c");
  CreateLaunchConfiguration();
  MustCall("CreateAutoScalingGroup", {{"AutoScalingGroupName", kGroup},
                                      {"MinSize", "4"},
                                      {"MaxSize", "4"},
                                      {"LaunchConfigurationName", kLaunchConfig},
                                      {"VPCZoneIdentifier", a + ", " + c}});
  ASSERT_TRUE(RunUntil([&] { return InServiceCount() == 4; }));
  Json g = DescribeGroup();
  EXPECT_EQ(g["VPCZoneIdentifier"], a + "," + c);
  EXPECT_EQ(g["AvailabilityZones"], Json::array({kZoneA, "us-west-2c"}));
  std::map<std::string, int> per_zone;
  for (const auto& inst : store_->List(kind::kInstance)) ++per_zone[(*inst)["AvailabilityZone"].get<std::string>()];
  EXPECT_EQ(per_zone, (std::map<std::string, int>{{kZoneA, 2}, {"us-west-2c", 2}}));
}

TEST_F(VpcZoneIdentifierTest, AnUnknownSubnetOrOneOutsideTheGivenZonesIsRefusedAndChangesNothing) {
  CreateLaunchConfiguration();
  FormParams p = {{"AutoScalingGroupName", kGroup},
                  {"MinSize", "1"},
                  {"MaxSize", "1"},
                  {"LaunchConfigurationName", kLaunchConfig},
                  {"VPCZoneIdentifier", "subnet-0123456789abcdef0"}};
  ExpectError(Call("CreateAutoScalingGroup", p), "ValidationError",
              "The subnet ID 'subnet-0123456789abcdef0' does not exist");
  p["VPCZoneIdentifier"] = ec2::DefaultSubnetId(catalog_, "us-west-2c");
  p["AvailabilityZones.member.1"] = kZoneA;
  EXPECT_FALSE(Call("CreateAutoScalingGroup", p).ok());
  EXPECT_TRUE(DescribeGroup().is_null());
}

}  // namespace
}  // namespace autopipe

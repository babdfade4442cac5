// Auto Scaling with Classic Load Balancers: the real Auto Scaling handlers and GroupController against load
// balancer documents written straight into the store and node status files written by the test. The
// load-balancer controller is not wired: where it would end a drain, the test removes the Deregistering entry
// itself, so every step is deterministic.
#include <algorithm>
#include <filesystem>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "autoscaling/group_controller.h"
#include "common/time_util.h"
#include "elb/load_balancers.h"
#include "lb/node_files.h"
#include "region/region_fixture.h"

namespace autopipe {
namespace {

namespace fs = std::filesystem;

constexpr char kLaunchConfig[] = "web-launch-config";
constexpr char kGroup[] = "web-asg";
constexpr char kLoadBalancer[] = "web-lb";
constexpr char kZoneA[] = "us-west-2a";
constexpr char kZoneB[] = "us-west-2b";
constexpr char kInvalidLoadBalancers[] =
    "Provided Load Balancers may not be valid. Please ensure they exist and try again.";

class LoadBalancingTest : public RegionFixture {
 protected:
  void SetUp() override {
    WireRegion({.auto_scaling = true, .load_balancing = false});
    MustCall("CreateLaunchConfiguration", {{"LaunchConfigurationName", kLaunchConfig},
                                           {"ImageId", "ami-0a1b2c3d4e5f60718"},
                                           {"InstanceType", "t3.micro"}});
  }

  // ---- the load balancer, as the ELB API and the load-balancer controller would leave it ----

  void PutLoadBalancer(const std::string& name, bool draining) {
    Json lb = {{"LoadBalancerName", name},
               {"AvailabilityZones", Json::array({kZoneA, kZoneB})},
               {"Listeners",
                Json::array({{{"Protocol", "HTTP"},
                              {"LoadBalancerPort", 80},
                              {"InstanceProtocol", "HTTP"},
                              {"InstancePort", 80}}})},
               {"HealthCheck",
                {{"Target", "HTTP:80/"},
                 {"Interval", 30},
                 {"Timeout", 5},
                 {"UnhealthyThreshold", 2},
                 {"HealthyThreshold", 10}}},
               {"Instances", Json::array()},
               {"Deregistering", Json::object()},
               {"Attributes",
                {{"CrossZoneLoadBalancing", {{"Enabled", false}}},
                 {"ConnectionDraining", {{"Enabled", draining}, {"Timeout", 300}}},
                 {"ConnectionSettings", {{"IdleTimeout", 60}}}}},
               {"ConfigVersion", 1}};
    ASSERT_TRUE(store_->Put(kind::kLoadBalancer, name, lb).ok());
  }

  Json LoadBalancer(const std::string& name = kLoadBalancer) {
    return store_->Get(kind::kLoadBalancer, name).value_or(Json());
  }

  std::vector<std::string> Registered(const std::string& name = kLoadBalancer) {
    const Json lb = LoadBalancer(name);
    std::vector<std::string> ids;
    for (const auto& id : lb["Instances"]) ids.push_back(id);
    std::sort(ids.begin(), ids.end());
    return ids;
  }

  bool IsDraining(const std::string& id, const std::string& name = kLoadBalancer) {
    return elb::IsDraining(LoadBalancer(name), id);
  }

  // What the load-balancer controller does when a drain ends: the instance leaves Deregistering.
  void FinishDraining(const std::string& name = kLoadBalancer) {
    Json lb = LoadBalancer(name);
    lb["Deregistering"] = Json::object();
    ASSERT_TRUE(store_->Put(kind::kLoadBalancer, name, lb).ok());
  }

  // Fresh status files (as of the fake clock) from the nodes of both AZs, each seeing `health` (instance id ->
  // lb::kHealth*).
  void ReportHealth(const std::map<std::string, std::string>& health, const std::string& name = kLoadBalancer) {
    lb::NodeStatus status;
    status.config_version = 1;
    status.updated_at_millis = clock_.NowMillis();
    status.pid = 4242;
    for (const auto& [id, h] : health) status.backends.push_back({id, h, 0, ""});
    for (const char* az : {kZoneA, kZoneB}) {
      const std::string dir = elb::NodeDir(ctx_, name, az);
      fs::create_directories(dir);
      ASSERT_TRUE(lb::WriteFileAtomically(dir + "/status.json", lb::SerializeNodeStatus(status)).ok());
    }
  }

  // ---- the group ----

  FormParams GroupParams(const FormParams& overrides = {}) {
    FormParams p = {{"AutoScalingGroupName", kGroup},
                    {"MinSize", "0"},
                    {"MaxSize", "10"},
                    {"DesiredCapacity", "2"},
                    {"LaunchConfigurationName", kLaunchConfig},
                    {"AvailabilityZones.member.1", kZoneA},
                    {"AvailabilityZones.member.2", kZoneB}};
    for (const auto& [k, v] : overrides) p[k] = v;
    return p;
  }

  void CreateGroup(const FormParams& overrides = {}) { MustCall("CreateAutoScalingGroup", GroupParams(overrides)); }

  void CreateGroupWithLoadBalancer(const FormParams& overrides = {}) {
    FormParams p = overrides;
    p["LoadBalancerNames.member.1"] = kLoadBalancer;
    CreateGroup(p);
  }

  void Passes(int n) {
    for (int i = 0; i < n; ++i) runner_->RunPass();
  }

  bool RunUntil(const std::function<bool()>& done, int max_passes = 20) {
    for (int i = 0; i < max_passes; ++i) {
      if (done()) return true;
      runner_->RunPass();
    }
    return done();
  }

  Json DescribeGroup() {
    Json r = MustCall("DescribeAutoScalingGroups", {{"AutoScalingGroupNames.member.1", kGroup}});
    if (!r.contains("AutoScalingGroups") || r["AutoScalingGroups"].empty()) return Json();
    return r["AutoScalingGroups"][0];
  }

  std::vector<Json> Members() {
    Json g = DescribeGroup();
    std::vector<Json> out;
    if (!g.is_null()) {
      for (const auto& m : g["Instances"]) out.push_back(m);
    }
    return out;
  }

  Json Member(const std::string& id) {
    for (const auto& m : Members()) {
      if (m["InstanceId"] == id) return m;
    }
    return Json();
  }

  std::vector<std::string> MemberIds() {
    std::vector<std::string> ids;
    for (const auto& m : Members()) ids.push_back(m["InstanceId"]);
    std::sort(ids.begin(), ids.end());
    return ids;
  }

  bool Settled(size_t n) {
    auto members = Members();
    return members.size() == n && std::all_of(members.begin(), members.end(), [](const Json& m) {
             return m["LifecycleState"] == "InService" && m["HealthStatus"] == "Healthy";
           });
  }

  Json Instance(const std::string& id) { return store_->Get(kind::kInstance, id).value_or(Json()); }

  // DescribeLoadBalancers as name -> State.
  std::map<std::string, std::string> AttachmentStates() {
    Json r = MustCall("DescribeLoadBalancers", {{"AutoScalingGroupName", kGroup}});
    std::map<std::string, std::string> out;
    for (const auto& lb : r["LoadBalancers"]) out[lb["LoadBalancerName"]] = lb["State"];
    return out;
  }

  Json TerminateActivityFor(const std::string& id) {
    Json r = MustCall("DescribeScalingActivities", {{"AutoScalingGroupName", kGroup}});
    for (const auto& a : r["Activities"]) {
      if (a["Description"] == "Terminating EC2 instance: " + id) return a;
    }
    return Json();
  }
};

// ---- validation -------------------------------------------------------------------------------------------------

TEST_F(LoadBalancingTest, CreateWithAMissingLoadBalancerIsRejectedAndCreatesNothing) {
  PutLoadBalancer(kLoadBalancer, false);
  ExpectError(Call("CreateAutoScalingGroup", GroupParams({{"LoadBalancerNames.member.1", kLoadBalancer},
                                                          {"LoadBalancerNames.member.2", "no-such-lb"}})),
              "ValidationError", kInvalidLoadBalancers);
  EXPECT_TRUE(DescribeGroup().is_null());
  Passes(3);
  EXPECT_EQ(launcher_.launch_count(), 0u);
  EXPECT_TRUE(Registered().empty());

  ExpectError(Call("CreateAutoScalingGroup", GroupParams({{"TargetGroupARNs.member.1", "arn:aws:tg"}})),
              "ValidationError", "Provided Target Groups may not be valid.");
  ExpectError(Call("CreateAutoScalingGroup", GroupParams({{"HealthCheckType", "ELBX"}})), "ValidationError",
              "Invalid health check type: ELBX. Valid values are EC2 and ELB.");
  EXPECT_TRUE(DescribeGroup().is_null());
}

TEST_F(LoadBalancingTest, DescribeAutoScalingGroupsShowsLoadBalancersAndHealthCheckType) {
  PutLoadBalancer(kLoadBalancer, false);
  CreateGroupWithLoadBalancer({{"HealthCheckType", "ELB"}, {"DesiredCapacity", "0"}});
  Json g = DescribeGroup();
  EXPECT_EQ(g["LoadBalancerNames"], Json::array({kLoadBalancer}));
  EXPECT_EQ(g["TrafficSources"], Json::array({Json{{"Identifier", kLoadBalancer}, {"Type", "elb"}}}));
  EXPECT_EQ(g["HealthCheckType"], "ELB");

  MustCall("UpdateAutoScalingGroup", {{"AutoScalingGroupName", kGroup}, {"HealthCheckType", "EC2"}});
  EXPECT_EQ(DescribeGroup()["HealthCheckType"], "EC2");
  ExpectError(Call("UpdateAutoScalingGroup", {{"AutoScalingGroupName", kGroup}, {"HealthCheckType", "ec2"}}),
              "ValidationError", "Invalid health check type: ec2. Valid values are EC2 and ELB.");
  EXPECT_EQ(DescribeGroup()["HealthCheckType"], "EC2");
}

TEST_F(LoadBalancingTest, AttachValidatesNamesAndGroup) {
  PutLoadBalancer(kLoadBalancer, false);
  CreateGroup({{"DesiredCapacity", "0"}});
  ExpectError(Call("AttachLoadBalancers",
                   {{"AutoScalingGroupName", kGroup}, {"LoadBalancerNames.member.1", "no-such-lb"}}),
              "ValidationError", kInvalidLoadBalancers);
  ExpectError(Call("AttachLoadBalancers",
                   {{"AutoScalingGroupName", "no-such-group"}, {"LoadBalancerNames.member.1", kLoadBalancer}}),
              "ValidationError", "AutoScalingGroup name not found - AutoScalingGroup no-such-group not found");
  ExpectError(Call("DescribeLoadBalancers", {{"AutoScalingGroupName", "no-such-group"}}), "ValidationError",
              "AutoScalingGroup name not found - AutoScalingGroup no-such-group not found");
  EXPECT_FALSE(Call("AttachLoadBalancers", {{"AutoScalingGroupName", kGroup}}).ok());
  EXPECT_EQ(DescribeGroup()["LoadBalancerNames"], Json::array());
  EXPECT_TRUE(AttachmentStates().empty());
}

// ---- registration -----------------------------------------------------------------------------------------------

TEST_F(LoadBalancingTest, InstancesAreRegisteredBeforeTheyAreInService) {
  PutLoadBalancer(kLoadBalancer, false);
  CreateGroupWithLoadBalancer({{"DesiredCapacity", "3"}});
  EXPECT_EQ(AttachmentStates(), (std::map<std::string, std::string>{{kLoadBalancer, "Adding"}}));
  for (int pass = 0; pass < 10 && !Settled(3); ++pass) {
    runner_->RunPass();
    // After every commit: an InService member is registered; one not yet running is not.
    const auto registered = Registered();
    for (const auto& m : Members()) {
      const bool is_registered =
          std::find(registered.begin(), registered.end(), m["InstanceId"]) != registered.end();
      EXPECT_EQ(is_registered, m["LifecycleState"] == "InService") << m.dump() << " after pass " << pass;
    }
  }
  ASSERT_TRUE(Settled(3));
  EXPECT_EQ(Registered(), MemberIds());
  // Nobody has reported a passed health check yet.
  EXPECT_EQ(AttachmentStates(), (std::map<std::string, std::string>{{kLoadBalancer, "Added"}}));

  // A settled group writes nothing more.
  const uint64_t revision = store_->Revision();
  Passes(3);
  EXPECT_EQ(store_->Revision(), revision);
}

TEST_F(LoadBalancingTest, AttachRegistersExistingMembersAndDetachDeregistersThem) {
  CreateGroup({{"DesiredCapacity", "3"}});
  ASSERT_TRUE(RunUntil([&] { return Settled(3); }));
  PutLoadBalancer(kLoadBalancer, false);

  MustCall("AttachLoadBalancers", {{"AutoScalingGroupName", kGroup}, {"LoadBalancerNames.member.1", kLoadBalancer}});
  EXPECT_EQ(DescribeGroup()["LoadBalancerNames"], Json::array({kLoadBalancer}));
  EXPECT_EQ(AttachmentStates(), (std::map<std::string, std::string>{{kLoadBalancer, "Adding"}}));
  Passes(1);
  EXPECT_EQ(Registered(), MemberIds());
  EXPECT_EQ(AttachmentStates(), (std::map<std::string, std::string>{{kLoadBalancer, "Added"}}));

  // One member passes the load balancer's health check: the attachment is InService.
  ReportHealth({{MemberIds()[0], lb::kHealthHealthy}});
  Passes(1);
  EXPECT_EQ(AttachmentStates(), (std::map<std::string, std::string>{{kLoadBalancer, "InService"}}));

  // Attaching again changes nothing.
  const uint64_t revision = store_->Revision();
  MustCall("AttachLoadBalancers", {{"AutoScalingGroupName", kGroup}, {"LoadBalancerNames.member.1", kLoadBalancer}});
  EXPECT_EQ(store_->Revision(), revision);
  EXPECT_EQ(DescribeGroup()["LoadBalancerNames"], Json::array({kLoadBalancer}));

  // Detach deregisters in the same call (no draining here) and the instances keep running.
  MustCall("DetachLoadBalancers", {{"AutoScalingGroupName", kGroup}, {"LoadBalancerNames.member.1", kLoadBalancer}});
  EXPECT_TRUE(Registered().empty());
  EXPECT_EQ(DescribeGroup()["LoadBalancerNames"], Json::array());
  Passes(3);
  EXPECT_TRUE(Registered().empty()) << "a detached load balancer is not registered with again";
  EXPECT_TRUE(AttachmentStates().empty());
  EXPECT_TRUE(Settled(3));
  for (const auto& id : MemberIds()) EXPECT_EQ(Instance(id)["State"], "running") << id;
}

TEST_F(LoadBalancingTest, DetachIsRemovingWhileMembersDrain) {
  CreateGroup({{"DesiredCapacity", "2"}});
  ASSERT_TRUE(RunUntil([&] { return Settled(2); }));
  PutLoadBalancer(kLoadBalancer, true);
  MustCall("AttachLoadBalancers", {{"AutoScalingGroupName", kGroup}, {"LoadBalancerNames.member.1", kLoadBalancer}});
  Passes(1);
  ASSERT_EQ(Registered(), MemberIds());

  MustCall("DetachLoadBalancers", {{"AutoScalingGroupName", kGroup}, {"LoadBalancerNames.member.1", kLoadBalancer}});
  EXPECT_TRUE(Registered().empty());
  for (const auto& id : MemberIds()) EXPECT_TRUE(IsDraining(id)) << id;
  Passes(3);
  EXPECT_EQ(AttachmentStates(), (std::map<std::string, std::string>{{kLoadBalancer, "Removing"}}));

  FinishDraining();
  Passes(1);
  EXPECT_TRUE(AttachmentStates().empty());
  EXPECT_TRUE(Settled(2));
}

TEST_F(LoadBalancingTest, AddToLoadBalancerSuspendedRegistersNothingUntilResumed) {
  PutLoadBalancer(kLoadBalancer, false);
  CreateGroupWithLoadBalancer({{"DesiredCapacity", "0"}});
  MustCall("SuspendProcesses", {{"AutoScalingGroupName", kGroup}, {"ScalingProcesses.member.1", "AddToLoadBalancer"}});
  MustCall("SetDesiredCapacity", {{"AutoScalingGroupName", kGroup}, {"DesiredCapacity", "2"}});
  ASSERT_TRUE(RunUntil([&] { return Settled(2); }));
  EXPECT_TRUE(Registered().empty());
  EXPECT_EQ(AttachmentStates(), (std::map<std::string, std::string>{{kLoadBalancer, "Adding"}}));

  MustCall("ResumeProcesses", {{"AutoScalingGroupName", kGroup}, {"ScalingProcesses.member.1", "AddToLoadBalancer"}});
  Passes(1);
  EXPECT_EQ(Registered(), MemberIds());
}

// ---- termination waits for draining -----------------------------------------------------------------------------

TEST_F(LoadBalancingTest, ScaleInDeregistersAndWaitsForDrainingBeforeTerminating) {
  PutLoadBalancer(kLoadBalancer, true);
  CreateGroupWithLoadBalancer({{"DesiredCapacity", "2"}});
  ASSERT_TRUE(RunUntil([&] { return Settled(2); }));
  const auto before = MemberIds();

  MustCall("SetDesiredCapacity", {{"AutoScalingGroupName", kGroup}, {"DesiredCapacity", "1"}});
  Passes(1);
  std::string victim;
  for (const auto& m : Members()) {
    if (m["LifecycleState"] == "Terminating") victim = m["InstanceId"];
  }
  ASSERT_FALSE(victim.empty());
  EXPECT_TRUE(IsDraining(victim));
  EXPECT_EQ(Registered().size(), 1u);

  Passes(5);
  EXPECT_EQ(Member(victim)["LifecycleState"], "Terminating") << "held while draining";
  EXPECT_EQ(Instance(victim)["State"], "running");
  EXPECT_EQ(Instance(victim)["DesiredState"], "running");
  EXPECT_TRUE(launcher_.SignalsTo(Instance(victim)["Pid"].get<pid_t>()).empty());
  EXPECT_EQ(TerminateActivityFor(victim)["StatusCode"], "InProgress");

  FinishDraining();
  ASSERT_TRUE(RunUntil([&] { return Settled(1); }));
  EXPECT_TRUE(Member(victim).is_null());
  EXPECT_EQ(Instance(victim)["State"], "terminated");
  EXPECT_EQ(TerminateActivityFor(victim)["StatusCode"], "Successful");
  EXPECT_EQ(Registered(), MemberIds());
}

TEST_F(LoadBalancingTest, WithoutDrainingScaleInTerminatesAtOnce) {
  PutLoadBalancer(kLoadBalancer, false);
  CreateGroupWithLoadBalancer({{"DesiredCapacity", "2"}});
  ASSERT_TRUE(RunUntil([&] { return Settled(2); }));
  MustCall("SetDesiredCapacity", {{"AutoScalingGroupName", kGroup}, {"DesiredCapacity", "1"}});
  Passes(1);
  EXPECT_EQ(Registered().size(), 1u);
  int terminating = 0;
  for (const auto& m : Members()) {
    if (m["LifecycleState"] != "Terminating") continue;
    ++terminating;
    EXPECT_EQ(Instance(m["InstanceId"])["DesiredState"], "terminated") << "requested in the same pass";
  }
  EXPECT_EQ(terminating, 1);
  ASSERT_TRUE(RunUntil([&] { return Settled(1); }));
  EXPECT_EQ(Registered(), MemberIds());
}

TEST_F(LoadBalancingTest, TerminateInstanceInAutoScalingGroupWaitsForDraining) {
  PutLoadBalancer(kLoadBalancer, true);
  CreateGroupWithLoadBalancer({{"DesiredCapacity", "2"}});
  ASSERT_TRUE(RunUntil([&] { return Settled(2); }));
  const std::string id = MemberIds()[0];
  MustCall("TerminateInstanceInAutoScalingGroup", {{"InstanceId", id}, {"ShouldDecrementDesiredCapacity", "true"}});
  EXPECT_TRUE(IsDraining(id)) << "deregistered by the call itself";
  Passes(5);
  EXPECT_EQ(Instance(id)["State"], "running");
  FinishDraining();
  ASSERT_TRUE(RunUntil([&] { return Settled(1); }));
  EXPECT_EQ(Instance(id)["State"], "terminated");
}

TEST_F(LoadBalancingTest, DeadInstanceIsDeregisteredBeforeItIsTerminated) {
  PutLoadBalancer(kLoadBalancer, true);
  CreateGroupWithLoadBalancer({{"DesiredCapacity", "2"}});
  ASSERT_TRUE(RunUntil([&] { return Settled(2); }));
  clock_.Advance(60'000);  // past the crash window
  const std::string victim = MemberIds()[0];
  launcher_.Kill(Instance(victim)["Pid"].get<pid_t>());

  ASSERT_TRUE(RunUntil([&] { return Member(victim)["LifecycleState"] == "Terminating"; }));
  EXPECT_TRUE(IsDraining(victim));
  ASSERT_TRUE(RunUntil([&] { return Members().size() == 3u && Registered().size() == 2u; }))
      << "the replacement is launched and registered alongside";
  Passes(3);
  EXPECT_FALSE(Member(victim).is_null()) << "held while draining";
  // Its termination is not requested yet (a dead instance is stopped, and stays stopped until then).
  EXPECT_EQ(Instance(victim)["DesiredState"], "stopped");

  FinishDraining();
  ASSERT_TRUE(RunUntil([&] { return Settled(2); }));
  EXPECT_TRUE(Member(victim).is_null());
  EXPECT_EQ(Instance(victim)["State"], "terminated");
  EXPECT_EQ(Registered(), MemberIds());
}

TEST_F(LoadBalancingTest, ForceDeleteWaitsForDraining) {
  PutLoadBalancer(kLoadBalancer, true);
  CreateGroupWithLoadBalancer({{"DesiredCapacity", "2"}});
  ASSERT_TRUE(RunUntil([&] { return Settled(2); }));
  MustCall("DeleteAutoScalingGroup", {{"AutoScalingGroupName", kGroup}, {"ForceDelete", "true"}});
  Passes(5);
  EXPECT_FALSE(DescribeGroup().is_null());
  EXPECT_TRUE(Registered().empty());
  EXPECT_EQ(LoadBalancer()["Deregistering"].size(), 2u);
  FinishDraining();
  ASSERT_TRUE(RunUntil([&] { return DescribeGroup().is_null(); }));
}

// ---- ELB health checks ------------------------------------------------------------------------------------------

class ElbHealthTest : public LoadBalancingTest {
 protected:
  // Two InService members registered with a load balancer (no draining) whose attachment is InService, a
  // 300 s grace period, and the clock at launch + 100 s.
  void SetUpGroup(const std::string& health_check_type) {
    PutLoadBalancer(kLoadBalancer, false);
    CreateGroupWithLoadBalancer({{"HealthCheckType", health_check_type}, {"HealthCheckGracePeriod", "300"}});
    ASSERT_TRUE(RunUntil([&] { return Settled(2); }));
    ids_ = MemberIds();
    ReportHealth({{ids_[0], lb::kHealthHealthy}, {ids_[1], lb::kHealthHealthy}});
    Passes(1);
    ASSERT_EQ(AttachmentStates(), (std::map<std::string, std::string>{{kLoadBalancer, "InService"}}));
    clock_.Advance(100'000);
  }

  std::vector<std::string> ids_;
};

TEST_F(ElbHealthTest, ElbTypeReplacesAnInstanceReportedUnhealthyAfterTheGracePeriodOnly) {
  SetUpGroup("ELB");
  const std::string victim = ids_[0];
  ReportHealth({{victim, lb::kHealthUnhealthy}, {ids_[1], lb::kHealthHealthy}});
  ASSERT_EQ(elb::DescribeInstanceHealth(ctx_, LoadBalancer(), victim).reason_code, "Instance");
  Passes(5);
  EXPECT_EQ(Member(victim)["HealthStatus"], "Healthy") << "inside the grace period";
  EXPECT_EQ(launcher_.launch_count(), 2u);

  clock_.Advance(200'000);  // launch + 300 s
  ReportHealth({{victim, lb::kHealthUnhealthy}, {ids_[1], lb::kHealthHealthy}});
  const std::string at = IsoTimeSeconds(clock_.NowMillis());
  Passes(1);
  EXPECT_EQ(Member(victim)["HealthStatus"], "Unhealthy");
  EXPECT_EQ(Member(victim)["LifecycleState"], "Terminating");
  EXPECT_EQ(TerminateActivityFor(victim)["Cause"],
            "At " + at + " an instance was taken out of service in response to an ELB system health check failure.");

  ASSERT_TRUE(RunUntil([&] { return Settled(2) && Member(victim).is_null(); }));
  EXPECT_EQ(launcher_.launch_count(), 3u);
  EXPECT_EQ(Instance(victim)["State"], "terminated");
  EXPECT_EQ(Registered(), MemberIds());
}

TEST_F(ElbHealthTest, Ec2TypeIgnoresTheLoadBalancersView) {
  SetUpGroup("EC2");
  clock_.Advance(300'000);
  ReportHealth({{ids_[0], lb::kHealthUnhealthy}, {ids_[1], lb::kHealthUnhealthy}});
  Passes(5);
  EXPECT_TRUE(Settled(2));
  EXPECT_EQ(MemberIds(), ids_);
  EXPECT_EQ(launcher_.launch_count(), 2u);
}

TEST_F(LoadBalancingTest, ElbHealthIsIgnoredUntilTheAttachmentIsInService) {
  // As in AWS: a load balancer none of the members ever passed (say a wrong health check target) does not get
  // the whole group replaced.
  PutLoadBalancer(kLoadBalancer, false);
  CreateGroupWithLoadBalancer({{"HealthCheckType", "ELB"}});
  ASSERT_TRUE(RunUntil([&] { return Settled(2); }));
  const auto ids = MemberIds();
  clock_.Advance(60'000);
  ReportHealth({{ids[0], lb::kHealthUnhealthy}, {ids[1], lb::kHealthUnhealthy}});
  Passes(5);
  EXPECT_EQ(AttachmentStates(), (std::map<std::string, std::string>{{kLoadBalancer, "Added"}}));
  EXPECT_TRUE(Settled(2));
  EXPECT_EQ(launcher_.launch_count(), 2u);
}

TEST_F(LoadBalancingTest, DeletedLoadBalancerIsSkipped) {
  PutLoadBalancer(kLoadBalancer, true);
  CreateGroupWithLoadBalancer({{"DesiredCapacity", "1"}});
  ASSERT_TRUE(RunUntil([&] { return Settled(1); }));
  ASSERT_TRUE(store_->Delete(kind::kLoadBalancer, kLoadBalancer).ok());
  MustCall("SetDesiredCapacity", {{"AutoScalingGroupName", kGroup}, {"DesiredCapacity", "2"}});
  ASSERT_TRUE(RunUntil([&] { return Settled(2); }));
  MustCall("SetDesiredCapacity", {{"AutoScalingGroupName", kGroup}, {"DesiredCapacity", "0"}});
  ASSERT_TRUE(RunUntil([&] { return Settled(0); }));
}

// ---- with the real ELB API and load-balancer controller -----------------------------------------------------------

class RealLoadBalancerTest : public LoadBalancingTest {
 protected:
  void SetUp() override {
    WireRegion({.auto_scaling = true, .load_balancing = true});
    MustCall("CreateLaunchConfiguration", {{"LaunchConfigurationName", kLaunchConfig},
                                           {"ImageId", "ami-0a1b2c3d4e5f60718"},
                                           {"InstanceType", "t3.micro"}});
  }

  Json Elb(const std::string& action, const FormParams& params) {
    auto r = router_.Invoke("elasticloadbalancing", action, params);
    EXPECT_TRUE(r.ok()) << action << " failed: " << r.status().ToString();
    return r.ok() ? *r : Json();
  }
};

TEST_F(RealLoadBalancerTest, ScaleInWaitsForTheDrainingTimeout) {
  Elb("CreateLoadBalancer", {{"LoadBalancerName", kLoadBalancer},
                             {"Listeners.member.1.Protocol", "HTTP"},
                             {"Listeners.member.1.LoadBalancerPort", "80"},
                             {"Listeners.member.1.InstancePort", "8080"},
                             {"AvailabilityZones.member.1", kZoneA},
                             {"AvailabilityZones.member.2", kZoneB}});
  Elb("ModifyLoadBalancerAttributes", {{"LoadBalancerName", kLoadBalancer},
                                       {"LoadBalancerAttributes.ConnectionDraining.Enabled", "true"},
                                       {"LoadBalancerAttributes.ConnectionDraining.Timeout", "60"}});
  CreateGroupWithLoadBalancer({{"DesiredCapacity", "2"}});
  ASSERT_TRUE(RunUntil([&] { return Settled(2); }));
  EXPECT_EQ(Registered(), MemberIds());
  Json health = Elb("DescribeInstanceHealth", {{"LoadBalancerName", kLoadBalancer}});
  EXPECT_EQ(health["InstanceStates"].size(), 2u) << health.dump();

  MustCall("SetDesiredCapacity", {{"AutoScalingGroupName", kGroup}, {"DesiredCapacity", "1"}});
  Passes(5);
  ASSERT_EQ(Members().size(), 2u) << "the scaled-in member waits for its drain (no node reports it idle)";
  EXPECT_EQ(Registered().size(), 1u);

  clock_.Advance(61'000);  // past the draining timeout
  ASSERT_TRUE(RunUntil([&] { return Settled(1); }));
  EXPECT_EQ(Registered(), MemberIds());
  EXPECT_TRUE(LoadBalancer()["Deregistering"].empty());
}

}  // namespace
}  // namespace autopipe

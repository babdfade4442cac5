// The EC2 API handlers (through ApiRouter::Invoke) together with the real InstanceController, an in-memory
// store, fake time and a FakeLauncher. Instances are created the way Auto Scaling creates them (NewInstance);
// controller passes are run explicitly, so nothing sleeps.
#include "ec2/ec2_service.h"

#include <stdlib.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "api/api_server.h"
#include "common/clock.h"
#include "ec2/catalog.h"
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

constexpr char kMinimalImage[] = "ami-0f1e2d3c4b5a69788";

class Ec2ServiceTest : public RegionFixture {
 protected:
  void SetUp() override { WireRegion({.auto_scaling = false, .service = "ec2"}); }

  // A new pending instance, as Auto Scaling would create it; a pass then starts it.
  std::string AddInstance(const std::string& az, std::vector<std::pair<std::string, std::string>> tags = {}) {
    InstanceLaunch launch;
    launch.image_id = kMinimalImage;
    launch.instance_type = "t3.micro";
    launch.availability_zone = az;
    launch.tags = std::move(tags);
    std::vector<StoreWrite> writes;
    std::lock_guard lock(mu_);
    auto inst = NewInstance(ctx_, launch, &writes);
    EXPECT_TRUE(inst.ok()) << inst.status().ToString();
    if (!inst.ok()) return "";
    EXPECT_TRUE(store_->Commit(writes).ok());
    return (*inst)["InstanceId"];
  }

  void Passes(int n) {
    for (int i = 0; i < n; ++i) runner_->RunPass();
  }

  // The instances DescribeInstances returns, by id.
  std::map<std::string, Json> Describe(const FormParams& params = {}) {
    Json r = MustCall("DescribeInstances", params);
    std::map<std::string, Json> out;
    for (const auto& res : r["reservationSet"]) {
      for (const auto& inst : res["instancesSet"]) out[inst["instanceId"].get<std::string>()] = inst;
    }
    return out;
  }

  std::set<std::string> DescribeIds(const FormParams& params) {
    std::set<std::string> ids;
    for (const auto& [id, inst] : Describe(params)) ids.insert(id);
    return ids;
  }

  // DescribeInstances with a single filter.
  std::set<std::string> Filtered(const std::string& name, const std::vector<std::string>& values) {
    FormParams p = {{"Filter.1.Name", name}};
    for (size_t i = 0; i < values.size(); ++i) p["Filter.1.Value." + std::to_string(i + 1)] = values[i];
    return DescribeIds(p);
  }

  std::string StateName(const std::string& id) { return Describe({{"InstanceId.1", id}})[id]["instanceState"]["name"]; }
  Json Doc(const std::string& id) { return store_->Get(kind::kInstance, id).value_or(Json()); }
  pid_t PidOf(const std::string& id) { return Doc(id)["Pid"].get<pid_t>(); }

};

// ---- DescribeInstances ------------------------------------------------------------------------------------------

TEST_F(Ec2ServiceTest, DescribeInstancesShowsStartedInstances) {
  const std::string id = AddInstance("us-west-2b", {{"Name", "web-1"}});
  EXPECT_EQ(StateName(id), "pending");
  Passes(1);
  auto all = Describe();
  ASSERT_EQ(all.size(), 1u);
  Json inst = all[id];
  EXPECT_EQ(inst["instanceState"]["name"], "running");
  EXPECT_EQ(inst["instanceState"]["code"], 16);
  EXPECT_EQ(inst["imageId"], kMinimalImage);
  EXPECT_EQ(inst["instanceType"], "t3.micro");
  EXPECT_EQ(inst["placement"]["availabilityZone"], "us-west-2b");
  EXPECT_EQ(inst["privateIpAddress"], Doc(id)["PrivateIpAddress"]);
  EXPECT_EQ(inst["privateIpAddress"].get<std::string>().rfind("127.200.", 0), 0u);
  EXPECT_EQ(inst["tagSet"], Json::parse(R"([{"key":"Name","value":"web-1"}])"));
  EXPECT_EQ(launcher_.launch_count(), 1u);
}

TEST_F(Ec2ServiceTest, FilterByInstanceId) {
  const std::string a = AddInstance("us-west-2a");
  const std::string b = AddInstance("us-west-2a");
  const std::string c = AddInstance("us-west-2b");
  Passes(1);
  EXPECT_EQ(Filtered("instance-id", {a}), (std::set<std::string>{a}));
  EXPECT_EQ(Filtered("instance-id", {a, c}), (std::set<std::string>{a, c}));
  EXPECT_EQ(Filtered("instance-id", {"i-0000000000000000f"}), std::set<std::string>{});
  // The InstanceId list and filters combine.
  EXPECT_EQ(DescribeIds({{"InstanceId.1", a}, {"InstanceId.2", b}, {"Filter.1.Name", "instance-id"},
                         {"Filter.1.Value.1", b}}),
            (std::set<std::string>{b}));
  EXPECT_EQ(DescribeIds({{"InstanceId.1", c}}), (std::set<std::string>{c}));
}

TEST_F(Ec2ServiceTest, FilterByInstanceStateName) {
  const std::string a = AddInstance("us-west-2a");
  const std::string b = AddInstance("us-west-2a");
  const std::string c = AddInstance("us-west-2b");
  Passes(1);
  EXPECT_EQ(Filtered("instance-state-name", {"pending"}), std::set<std::string>{});
  MustCall("TerminateInstances", {{"InstanceId.1", c}});
  Passes(3);
  ASSERT_EQ(StateName(c), "terminated");
  EXPECT_EQ(Filtered("instance-state-name", {"running"}), (std::set<std::string>{a, b}));
  EXPECT_EQ(Filtered("instance-state-name", {"terminated"}), (std::set<std::string>{c}));
  EXPECT_EQ(Filtered("instance-state-name", {"running", "terminated"}), (std::set<std::string>{a, b, c}));
  EXPECT_EQ(Filtered("instance-state-name", {"shutting-down"}), std::set<std::string>{});
}

TEST_F(Ec2ServiceTest, FilterByAvailabilityZone) {
  const std::string a = AddInstance("us-west-2a");
  const std::string b = AddInstance("us-west-2b");
  const std::string c = AddInstance("us-west-2c");
  Passes(1);
  EXPECT_EQ(Filtered("availability-zone", {"us-west-2b"}), (std::set<std::string>{b}));
  EXPECT_EQ(Filtered("availability-zone", {"us-west-2a", "us-west-2c"}), (std::set<std::string>{a, c}));
  EXPECT_EQ(Filtered("availability-zone", {"us-west-2?"}), (std::set<std::string>{a, b, c}));
  EXPECT_EQ(Filtered("availability-zone", {"us-east-1a"}), std::set<std::string>{});
}

TEST_F(Ec2ServiceTest, FilterByTagWithWildcards) {
  const std::string web1 = AddInstance("us-west-2a", {{"Name", "web-1"}, {"team", "blue"}});
  const std::string web2 = AddInstance("us-west-2b", {{"Name", "web-2"}});
  const std::string db1 = AddInstance("us-west-2b", {{"Name", "db-1"}, {"team", "blue"}});
  const std::string untagged = AddInstance("us-west-2a");
  const std::string grouped = AddInstance("us-west-2a", {{"aws:autoscaling:groupName", "my-asg"}});
  Passes(1);
  EXPECT_EQ(Filtered("tag:Name", {"web-*"}), (std::set<std::string>{web1, web2}));
  EXPECT_EQ(Filtered("tag:Name", {"?" "?-1"}), (std::set<std::string>{db1}));
  EXPECT_EQ(Filtered("tag:Name", {"*-1"}), (std::set<std::string>{web1, db1}));
  EXPECT_EQ(Filtered("tag:Name", {"*"}), (std::set<std::string>{web1, web2, db1}))
      << "an instance without the tag never matches, not even '*'";
  EXPECT_EQ(Filtered("tag:Name", {"web-1", "db-*"}), (std::set<std::string>{web1, db1}));
  EXPECT_EQ(Filtered("tag:Name", {"WEB-*"}), std::set<std::string>{}) << "values are case-sensitive";
  EXPECT_EQ(Filtered("tag:team", {"blue"}), (std::set<std::string>{web1, db1}));
  EXPECT_EQ(Filtered("tag:aws:autoscaling:groupName", {"my-*"}), (std::set<std::string>{grouped}));
  EXPECT_EQ(Filtered("tag-key", {"team"}), (std::set<std::string>{web1, db1}));
  // Several filters must all hold.
  EXPECT_EQ(DescribeIds({{"Filter.1.Name", "tag:Name"},
                         {"Filter.1.Value.1", "web-*"},
                         {"Filter.2.Name", "availability-zone"},
                         {"Filter.2.Value.1", "us-west-2b"}}),
            (std::set<std::string>{web2}));
  EXPECT_EQ(Describe().size(), 5u);
  (void)untagged;
}

TEST_F(Ec2ServiceTest, UnknownFilterIsInvalidParameterValue) {
  AddInstance("us-west-2a");
  ExpectError(Call("DescribeInstances", {{"Filter.1.Name", "flavor"}, {"Filter.1.Value.1", "vanilla"}}),
              "InvalidParameterValue", "The filter 'flavor' is invalid");
  // A known filter next to an unknown one does not make the request valid.
  ExpectError(Call("DescribeInstances", {{"Filter.1.Name", "instance-id"},
                                         {"Filter.1.Value.1", "i-1"},
                                         {"Filter.2.Name", "colour"},
                                         {"Filter.2.Value.1", "red"}}),
              "InvalidParameterValue", "The filter 'colour' is invalid");
}

TEST_F(Ec2ServiceTest, UnknownInstanceIdIsNotFound) {
  const std::string a = AddInstance("us-west-2a");
  Passes(1);
  ExpectError(Call("DescribeInstances", {{"InstanceId.1", "i-0123456789abcdef0"}}), "InvalidInstanceID.NotFound",
              "The instance ID 'i-0123456789abcdef0' does not exist");
  ExpectError(Call("DescribeInstances", {{"InstanceId.1", a}, {"InstanceId.2", "i-0123456789abcdef0"}}),
              "InvalidInstanceID.NotFound", "The instance ID 'i-0123456789abcdef0' does not exist");
  // TerminateInstances checks every id before changing anything.
  ExpectError(Call("TerminateInstances", {{"InstanceId.1", a}, {"InstanceId.2", "i-0123456789abcdef0"}}),
              "InvalidInstanceID.NotFound", "The instance ID 'i-0123456789abcdef0' does not exist");
  Passes(3);
  EXPECT_EQ(StateName(a), "running");
  EXPECT_TRUE(launcher_.signals().empty());
}

TEST_F(Ec2ServiceTest, AMalformedInstanceIdIsMalformedNotMissing) {
  for (const char* id : {"i-123", "bogus", "i-ZZZZZZZZ", "i-0123456789abcdef"}) {
    ExpectError(Call("DescribeInstances", {{"InstanceId.1", id}}), "InvalidInstanceID.Malformed",
                std::string("Invalid id: \"") + id + "\"");
    ExpectError(Call("TerminateInstances", {{"InstanceId.1", id}}), "InvalidInstanceID.Malformed",
                std::string("Invalid id: \"") + id + "\"");
  }
}

TEST_F(Ec2ServiceTest, DescribeInstancesPagesWithMaxResultsAndItsOwnNextToken) {
  std::set<std::string> ids;
  for (int i = 0; i < 7; ++i) ids.insert(AddInstance(i % 2 ? "us-west-2a" : "us-west-2b"));
  std::set<std::string> seen;
  FormParams p = {{"MaxResults", "5"}};
  Json page = MustCall("DescribeInstances", p);
  for (const auto& r : page["reservationSet"]) seen.insert(r["instancesSet"][0]["instanceId"].get<std::string>());
  EXPECT_EQ(seen.size(), 5u);
  ASSERT_TRUE(page.contains("nextToken"));
  p["NextToken"] = page["nextToken"];
  page = MustCall("DescribeInstances", p);
  for (const auto& r : page["reservationSet"]) seen.insert(r["instancesSet"][0]["instanceId"].get<std::string>());
  EXPECT_FALSE(page.contains("nextToken"));
  EXPECT_EQ(seen, ids);
  ExpectError(Call("DescribeInstances", {{"MaxResults", "4"}}), "InvalidParameterValue",
              "Value ( 4 ) for parameter maxResults is invalid. Expecting a value greater than 5 and less than 1000.");
  ExpectError(Call("DescribeInstances", {{"NextToken", "garbage"}}), "InvalidParameterValue",
              "Invalid value 'garbage' for nextToken.");
  ExpectError(Call("DescribeInstances", {{"MaxResults", "5"}, {"InstanceId.1", *ids.begin()}}),
              "InvalidParameterCombination", "The parameter instancesSet cannot be used with the parameter maxResults");
}

TEST_F(Ec2ServiceTest, AnInstanceShowsWhatEc2AlwaysReturns) {
  const std::string id = AddInstance("us-west-2b");
  Passes(1);
  Json inst = Describe()[id];
  for (const char* field : {"subnetId", "vpcId", "networkInterfaceSet", "blockDeviceMapping", "metadataOptions",
                            "cpuOptions", "platformDetails", "usageOperation", "sourceDestCheck",
                            "capacityReservationSpecification", "hibernationOptions", "enclaveOptions",
                            "privateDnsNameOptions", "maintenanceOptions", "currentInstanceBootMode",
                            "productCodes"}) {
    EXPECT_TRUE(inst.contains(field)) << field;
  }
  EXPECT_TRUE(std::regex_match(inst["networkInterfaceSet"][0].value("macAddress", std::string()),
                               std::regex("02(:[0-9a-f]{2}){5}")));
  EXPECT_EQ(inst["networkInterfaceSet"][0]["privateIpAddress"], inst["privateIpAddress"]);
  EXPECT_EQ(inst["networkInterfaceSet"][0]["subnetId"], inst["subnetId"]);
  EXPECT_EQ(inst["blockDeviceMapping"][0]["deviceName"], "/dev/xvda");
  EXPECT_EQ(inst["cpuOptions"]["coreCount"].get<int>() * inst["cpuOptions"]["threadsPerCore"].get<int>(), 2);
  EXPECT_EQ(inst["privateDnsName"], "ip-" + [&] {
    std::string ip = inst["privateIpAddress"];
    std::replace(ip.begin(), ip.end(), '.', '-');
    return ip;
  }() + ".us-west-2.compute.internal");
}

// ---- TerminateInstances and the instance controller -------------------------------------------------------------

TEST_F(Ec2ServiceTest, TerminateInstancesShutsDownThenTerminatesOnceTheProcessGroupIsGone) {
  const std::string id = AddInstance("us-west-2a");
  Passes(1);
  const pid_t pid = PidOf(id);
  launcher_.IgnoreSigterm(pid);

  Json r = MustCall("TerminateInstances", {{"InstanceId.1", id}});
  ASSERT_EQ(r["instancesSet"].size(), 1u);
  Json change = r["instancesSet"][0];
  EXPECT_EQ(change["instanceId"], id);
  EXPECT_EQ(change["previousState"], Json::parse(R"({"code":16,"name":"running"})"));
  EXPECT_EQ(change["currentState"], Json::parse(R"({"code":32,"name":"shutting-down"})"));

  Passes(1);
  EXPECT_EQ(StateName(id), "shutting-down");
  ASSERT_FALSE(launcher_.SignalsTo(pid).empty());
  EXPECT_FALSE(launcher_.SignalsTo(pid)[0]) << "SIGTERM to the process group first";
  EXPECT_TRUE(launcher_.Alive(pid)) << "the fake ignores SIGTERM";

  // The leader exits but a member of its group lingers: still shutting down.
  launcher_.KillLeader(pid);
  Passes(3);
  EXPECT_EQ(StateName(id), "shutting-down");

  launcher_.Kill(pid);  // the whole group is gone
  Passes(1);
  Json inst = Describe({{"InstanceId.1", id}})[id];
  EXPECT_EQ(inst["instanceState"], Json::parse(R"({"code":48,"name":"terminated"})"));
  EXPECT_EQ(inst["stateReason"]["code"], "Client.UserInitiatedShutdown");
  EXPECT_FALSE(inst.contains("privateIpAddress") && !inst["privateIpAddress"].is_null());

  // Terminating a terminated instance changes nothing.
  r = MustCall("TerminateInstances", {{"InstanceId.1", id}});
  EXPECT_EQ(r["instancesSet"][0]["previousState"]["name"], "terminated");
  EXPECT_EQ(r["instancesSet"][0]["currentState"]["name"], "terminated");
  Passes(1);
  EXPECT_EQ(StateName(id), "terminated");
}

TEST_F(Ec2ServiceTest, TerminateInstancesWithoutIdIsMissingParameter) {
  auto r = Call("TerminateInstances", {});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), "MissingParameter");
}

TEST_F(Ec2ServiceTest, InstanceWhoseProcessExitsIsStopped) {
  const std::string id = AddInstance("us-west-2a");
  Passes(1);
  const pid_t pid = PidOf(id);
  launcher_.KillLeader(pid);
  Passes(1);
  Json inst = Describe({{"InstanceId.1", id}})[id];
  EXPECT_EQ(inst["instanceState"]["name"], "stopped");
  EXPECT_EQ(inst["stateReason"]["code"], "Client.InstanceInitiatedShutdown");
  auto signals = launcher_.SignalsTo(pid);
  EXPECT_NE(std::find(signals.begin(), signals.end(), true), signals.end()) << "leftovers of its group are killed";
  EXPECT_FALSE(launcher_.Alive(pid));
  EXPECT_EQ(Filtered("instance-state-name", {"stopped"}), (std::set<std::string>{id}));
}

// ---- StopInstances / StartInstances / RebootInstances --------------------------------------------------------

TEST_F(Ec2ServiceTest, StopThenStartBootsTheSameInstanceAgain) {
  const std::string id = AddInstance("us-west-2a");
  Passes(1);
  const pid_t first = PidOf(id);
  const std::string ip = Doc(id)["PrivateIpAddress"];

  Json r = MustCall("StopInstances", {{"InstanceId.1", id}});
  ASSERT_EQ(r["instancesSet"].size(), 1u);
  EXPECT_EQ(r["instancesSet"][0]["previousState"], Json::parse(R"({"code":16,"name":"running"})"));
  EXPECT_EQ(r["instancesSet"][0]["currentState"], Json::parse(R"({"code":64,"name":"stopping"})"));
  Passes(1);
  EXPECT_EQ(StateName(id), "stopping");
  ASSERT_FALSE(launcher_.SignalsTo(first).empty());
  EXPECT_FALSE(launcher_.SignalsTo(first)[0]) << "SIGTERM first";
  Passes(1);
  Json inst = Describe({{"InstanceId.1", id}})[id];
  EXPECT_EQ(inst["instanceState"], Json::parse(R"({"code":80,"name":"stopped"})"));
  EXPECT_EQ(inst["stateReason"]["code"], "Client.UserInitiatedShutdown");
  EXPECT_EQ(inst["reason"].get<std::string>().rfind("User initiated (", 0), 0u) << inst["reason"];
  EXPECT_EQ(inst["privateIpAddress"], ip) << "a stopped instance keeps its address";
  Passes(3);
  EXPECT_EQ(StateName(id), "stopped") << "stays stopped";
  EXPECT_EQ(launcher_.launch_count(), 1u);

  r = MustCall("StartInstances", {{"InstanceId.1", id}});
  EXPECT_EQ(r["instancesSet"][0]["previousState"], Json::parse(R"({"code":80,"name":"stopped"})"));
  EXPECT_EQ(r["instancesSet"][0]["currentState"], Json::parse(R"({"code":0,"name":"pending"})"));
  Passes(1);
  EXPECT_EQ(StateName(id), "running");
  ASSERT_EQ(launcher_.launch_count(), 2u);
  const pid_t second = PidOf(id);
  EXPECT_NE(second, first);
  EXPECT_EQ(Doc(id)["PrivateIpAddress"], ip);
  auto spec = launcher_.SpecOf(second);
  ASSERT_TRUE(spec.has_value());
  EXPECT_EQ(spec->env.at("AUTOPIPE_INSTANCE_ID"), id);
  EXPECT_EQ(spec->cgroup_name, id);
  EXPECT_EQ(Describe({{"InstanceId.1", id}})[id]["reason"], "");
}

TEST_F(Ec2ServiceTest, UserDataRunsAtTheFirstBootOnly) {
  InstanceLaunch launch;
  launch.image_id = kMinimalImage;
  launch.instance_type = "t3.micro";
  launch.availability_zone = "us-west-2a";
  launch.user_data = "ZWNobyBoaQo=";  // "echo hi\n"
  std::string id;
  {
    std::vector<StoreWrite> writes;
    std::lock_guard lock(mu_);
    auto inst = NewInstance(ctx_, launch, &writes);
    ASSERT_TRUE(inst.ok());
    ASSERT_TRUE(store_->Commit(writes).ok());
    id = (*inst)["InstanceId"];
  }
  Passes(1);
  auto argv_after = [&](pid_t pid, const std::string& flag) {
    auto spec = launcher_.SpecOf(pid);
    auto it = std::find(spec->argv.begin(), spec->argv.end(), flag);
    return it == spec->argv.end() || it + 1 == spec->argv.end() ? std::string("?") : *(it + 1);
  };
  EXPECT_EQ(argv_after(PidOf(id), "--user-data"), "user-data");
  MustCall("StopInstances", {{"InstanceId.1", id}});
  Passes(2);
  ASSERT_EQ(StateName(id), "stopped");
  MustCall("StartInstances", {{"InstanceId.1", id}});
  Passes(1);
  ASSERT_EQ(StateName(id), "running");
  EXPECT_EQ(argv_after(PidOf(id), "--user-data"), "");
}

TEST_F(Ec2ServiceTest, StopAndStartRefuseStatesEc2Refuses) {
  const std::string a = AddInstance("us-west-2a");
  const std::string b = AddInstance("us-west-2a");
  // Pending: cannot be stopped.
  auto r = Call("StopInstances", {{"InstanceId.1", a}});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), "IncorrectInstanceState");
  EXPECT_EQ(r.status().message(), "The instance '" + a + "' is not in a state from which it can be stopped.");
  Passes(1);

  // Running: starting is answered as it is.
  Json ok = MustCall("StartInstances", {{"InstanceId.1", a}});
  EXPECT_EQ(ok["instancesSet"][0]["previousState"]["name"], "running");
  EXPECT_EQ(ok["instancesSet"][0]["currentState"]["name"], "running");

  // Stopping: cannot be started; stopping again is answered as it is.
  launcher_.IgnoreSigterm(PidOf(a));
  MustCall("StopInstances", {{"InstanceId.1", a}});
  Passes(1);
  ASSERT_EQ(StateName(a), "stopping");
  r = Call("StartInstances", {{"InstanceId.1", a}});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), "IncorrectInstanceState");
  EXPECT_EQ(r.status().message(), "The instance '" + a + "' is not in a state from which it can be started.");
  ok = MustCall("StopInstances", {{"InstanceId.1", a}});
  EXPECT_EQ(ok["instancesSet"][0]["previousState"]["name"], "stopping");
  EXPECT_EQ(ok["instancesSet"][0]["currentState"]["name"], "stopping");

  // One refused instance refuses the whole call: b (running) is not stopped.
  MustCall("TerminateInstances", {{"InstanceId.1", b}});
  Passes(2);
  ASSERT_EQ(StateName(b), "terminated");
  r = Call("StopInstances", {{"InstanceId.1", b}});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), "IncorrectInstanceState");
  const std::string c = AddInstance("us-west-2a");
  Passes(1);
  r = Call("StopInstances", {{"InstanceId.1", c}, {"InstanceId.2", b}});
  ASSERT_FALSE(r.ok());
  Passes(1);
  EXPECT_EQ(StateName(c), "running");
  r = Call("StartInstances", {{"InstanceId.1", "i-0000000000000000f"}});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), "InvalidInstanceID.NotFound");
  r = Call("RebootInstances", {{"InstanceId.1", b}});
  EXPECT_TRUE(r.ok()) << "rebooting a terminated instance is ignored";
}

TEST_F(Ec2ServiceTest, ForcedStopKillsWithoutTheGracePeriod) {
  const std::string id = AddInstance("us-west-2a");
  Passes(1);
  const pid_t pid = PidOf(id);
  launcher_.IgnoreSigterm(pid);
  MustCall("StopInstances", {{"InstanceId.1", id}, {"Force", "true"}});
  Passes(1);
  clock_.Advance(1);
  Passes(1);
  auto signals = launcher_.SignalsTo(pid);
  EXPECT_NE(std::find(signals.begin(), signals.end(), true), signals.end()) << "SIGKILL without the 3 s wait";
  Passes(1);
  EXPECT_EQ(StateName(id), "stopped");
}

TEST_F(Ec2ServiceTest, RebootStopsAndBootsTheTreeWhileTheInstanceStaysRunning) {
  const std::string id = AddInstance("us-west-2a");
  Passes(1);
  const pid_t first = PidOf(id);
  launcher_.IgnoreSigterm(first);
  Json r = MustCall("RebootInstances", {{"InstanceId.1", id}});
  EXPECT_EQ(r["return"], true);
  Passes(1);
  EXPECT_EQ(StateName(id), "running");
  EXPECT_EQ(PidOf(id), first) << "waits for the old tree to go";
  clock_.Advance(InstanceController::kKillAfterMillis + 1);
  Passes(1);  // SIGKILL
  Passes(1);  // gone: booted again
  EXPECT_EQ(StateName(id), "running");
  EXPECT_NE(PidOf(id), first);
  EXPECT_EQ(launcher_.launch_count(), 2u);
  EXPECT_FALSE(Doc(id).contains("RebootRequestedAt"));

  MustCall("StopInstances", {{"InstanceId.1", id}});
  Passes(2);
  ASSERT_EQ(StateName(id), "stopped");
  auto refused = Call("RebootInstances", {{"InstanceId.1", id}});
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), "IncorrectInstanceState");
}

TEST_F(Ec2ServiceTest, AnInstanceThatShutsItselfDownStaysStoppedUntilStarted) {
  const std::string id = AddInstance("us-west-2a");
  Passes(1);
  launcher_.KillLeader(PidOf(id));
  Passes(3);
  EXPECT_EQ(StateName(id), "stopped");
  EXPECT_EQ(launcher_.launch_count(), 1u);
  MustCall("StartInstances", {{"InstanceId.1", id}});
  Passes(1);
  EXPECT_EQ(StateName(id), "running");
  EXPECT_EQ(launcher_.launch_count(), 2u);
}

TEST_F(Ec2ServiceTest, TerminatedInstancesAreForgottenAfterAnHour) {
  const std::string id = AddInstance("us-west-2a");
  const std::string keep = AddInstance("us-west-2a");
  Passes(1);
  const fs::path dir = data_dir_ / "instances" / id;
  ASSERT_TRUE(fs::is_directory(dir));
  MustCall("TerminateInstances", {{"InstanceId.1", id}});
  Passes(2);
  ASSERT_EQ(StateName(id), "terminated");

  clock_.Advance(InstanceController::kForgetTerminatedAfterMillis - 1000);
  Passes(1);
  EXPECT_EQ(StateName(id), "terminated") << "still listed just under an hour after termination";

  clock_.Advance(2000);
  Passes(1);
  ExpectError(Call("DescribeInstances", {{"InstanceId.1", id}}), "InvalidInstanceID.NotFound",
              "The instance ID '" + id + "' does not exist");
  EXPECT_EQ(DescribeIds({}), (std::set<std::string>{keep}));
  EXPECT_FALSE(fs::exists(dir)) << "its folder is removed with it";
  EXPECT_EQ(StateName(keep), "running") << "a running instance is never forgotten";
}

// ---- DescribeImages ---------------------------------------------------------------------------------------------

TEST_F(Ec2ServiceTest, DescribeImagesKnownUnknownAndMalformedIds) {
  Json r = MustCall("DescribeImages", {{"ImageId.1", kMinimalImage}});
  ASSERT_EQ(r["imagesSet"].size(), 1u);
  EXPECT_EQ(r["imagesSet"][0]["imageId"], kMinimalImage);
  EXPECT_EQ(r["imagesSet"][0]["name"], "autopipe-minimal");
  EXPECT_EQ(MustCall("DescribeImages", {})["imagesSet"].size(), catalog_.images().size());

  ExpectError(Call("DescribeImages", {{"ImageId.1", "ami-00000000000000000"}}), "InvalidAMIID.NotFound",
              "The image id '[ami-00000000000000000]' does not exist");
  ExpectError(Call("DescribeImages", {{"ImageId.1", kMinimalImage}, {"ImageId.2", "ami-00000000000000000"}}),
              "InvalidAMIID.NotFound", "The image id '[ami-00000000000000000]' does not exist");

  auto malformed = Call("DescribeImages", {{"ImageId.1", "foo"}});
  ASSERT_FALSE(malformed.ok());
  EXPECT_EQ(malformed.status().code(), "InvalidAMIID.Malformed");
  EXPECT_NE(malformed.status().message().find("\"foo\""), std::string::npos) << malformed.status().message();
  EXPECT_EQ(malformed.status().http_status(), 400);
}

// ---- WildcardMatch ----------------------------------------------------------------------------------------------

TEST(WildcardMatchTest, LiteralPatternsMatchOnlyThemselves) {
  EXPECT_TRUE(WildcardMatch("web-1", "web-1"));
  EXPECT_FALSE(WildcardMatch("web-1", "web-10"));
  EXPECT_FALSE(WildcardMatch("web-10", "web-1"));
  EXPECT_FALSE(WildcardMatch("Web-1", "web-1"));
  EXPECT_TRUE(WildcardMatch("", ""));
  EXPECT_FALSE(WildcardMatch("", "a"));
  EXPECT_FALSE(WildcardMatch("a", ""));
}

TEST(WildcardMatchTest, StarMatchesAnyRunIncludingEmpty) {
  EXPECT_TRUE(WildcardMatch("*", ""));
  EXPECT_TRUE(WildcardMatch("*", "anything at all"));
  EXPECT_TRUE(WildcardMatch("web-*", "web-"));
  EXPECT_TRUE(WildcardMatch("web-*", "web-123"));
  EXPECT_FALSE(WildcardMatch("web-*", "db-1"));
  EXPECT_TRUE(WildcardMatch("*-1", "db-1"));
  EXPECT_FALSE(WildcardMatch("*-1", "db-12"));
  EXPECT_TRUE(WildcardMatch("a*b*c", "abc"));
  EXPECT_TRUE(WildcardMatch("a*b*c", "a-b-b-c"));
  EXPECT_FALSE(WildcardMatch("a*b*c", "a-c-b"));
  EXPECT_TRUE(WildcardMatch("**", "x"));
  // Needs backtracking: the first 'ab' is not the one the pattern ends with.
  EXPECT_TRUE(WildcardMatch("*ab", "aab"));
  EXPECT_TRUE(WildcardMatch("*abc", "ababcabc"));
  EXPECT_FALSE(WildcardMatch("*abd", "ababcabc"));
}

TEST(WildcardMatchTest, QuestionMarkMatchesExactlyOneCharacter) {
  EXPECT_TRUE(WildcardMatch("us-west-2?", "us-west-2a"));
  EXPECT_FALSE(WildcardMatch("us-west-2?", "us-west-2"));
  EXPECT_FALSE(WildcardMatch("us-west-2?", "us-west-2ab"));
  EXPECT_TRUE(WildcardMatch("???", "abc"));
  EXPECT_FALSE(WildcardMatch("?", ""));
  EXPECT_TRUE(WildcardMatch("?*", "a"));
  EXPECT_FALSE(WildcardMatch("?*", ""));
  EXPECT_TRUE(WildcardMatch("i-*?", "i-0"));
}

}  // namespace
}  // namespace autopipe

// The load-balancer rules shared by the ELB API, the Auto Scaling group controller and the load-balancer
// controller: lookups through an uncommitted batch, registration and deregistration, and every branch of
// instance health, with the nodes' status files written by the test.
#include "elb/load_balancers.h"

#include <filesystem>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "ec2/instances.h"
#include "lb/node_files.h"
#include "region/region_fixture.h"
#include "store/store.h"

namespace autopipe {
namespace {

namespace fs = std::filesystem;

constexpr char kName[] = "web";
constexpr char kZoneA[] = "us-west-2a";
constexpr char kZoneB[] = "us-west-2b";
constexpr char kZoneC[] = "us-west-2c";

class LoadBalancersTest : public RegionFixture {
 protected:
  void SetUp() override {
    WireRegion({.auto_scaling = false, .load_balancing = true, .service = "elasticloadbalancing"});
    // HTTP 80 -> 8080 over us-west-2a/b, made the way a client makes it.
    MustCall("CreateLoadBalancer", {{"LoadBalancerName", kName},
                                    {"Listeners.member.1.Protocol", "HTTP"},
                                    {"Listeners.member.1.LoadBalancerPort", "80"},
                                    {"Listeners.member.1.InstancePort", "8080"},
                                    {"AvailabilityZones.member.1", kZoneA},
                                    {"AvailabilityZones.member.2", kZoneB}});
  }

  Json Lb() { return *store_->Get(kind::kLoadBalancer, kName); }

  // A new instance document in `state` (not committed when `writes` is given: it joins that batch).
  std::string AddInstance(const std::string& az, const std::string& state = instance_state::kRunning,
                          std::vector<StoreWrite>* batch = nullptr) {
    InstanceLaunch launch;
    launch.image_id = "ami-0f1e2d3c4b5a69788";
    launch.instance_type = "t3.micro";
    launch.availability_zone = az;
    std::vector<StoreWrite> own;
    std::vector<StoreWrite>& writes = batch ? *batch : own;
    auto inst = NewInstance(ctx_, launch, &writes);
    EXPECT_TRUE(inst.ok()) << inst.status().ToString();
    (*inst)["State"] = state;
    writes.back().doc = *inst;
    if (!batch) {
      EXPECT_TRUE(store_->Commit(writes).ok());
    }
    return (*inst)["InstanceId"];
  }

  void SetState(const std::string& id, const std::string& state) {
    Json inst = *store_->Get(kind::kInstance, id);
    inst["State"] = state;
    ASSERT_TRUE(store_->Put(kind::kInstance, id, inst).ok());
  }

  Status Register(const std::vector<std::string>& ids) {
    std::vector<StoreWrite> writes;
    Status st = elb::RegisterInstances(ctx_, kName, ids, writes);
    if (st.ok() && !writes.empty()) {
      EXPECT_TRUE(store_->Commit(writes).ok());
    }
    return st;
  }

  Status Deregister(const std::vector<std::string>& ids) {
    std::vector<StoreWrite> writes;
    Status st = elb::DeregisterInstances(ctx_, kName, ids, writes);
    if (st.ok() && !writes.empty()) {
      EXPECT_TRUE(store_->Commit(writes).ok());
    }
    return st;
  }

  void WriteStatus(const std::string& az, const std::vector<std::pair<std::string, std::string>>& backends,
                   int64_t age_millis = 0) {
    lb::NodeStatus status;
    status.config_version = Lb()["ConfigVersion"];
    status.updated_at_millis = clock_.NowMillis() - age_millis;
    for (const auto& [id, health] : backends) status.backends.push_back({id, health, 0, ""});
    const std::string dir = elb::NodeDir(ctx_, kName, az);
    fs::create_directories(dir);
    ASSERT_TRUE(lb::WriteFileAtomically(dir + "/status.json", lb::SerializeNodeStatus(status)).ok());
  }

  // "State/ReasonCode/Description" of one instance.
  std::string Health(const std::string& id) {
    elb::InstanceHealth h = elb::DescribeInstanceHealth(ctx_, Lb(), id);
    EXPECT_EQ(h.instance_id, id);
    return h.state + "/" + h.reason_code + "/" + h.description;
  }
};

TEST_F(LoadBalancersTest, FindLoadBalancerSeesTheBatchBeforeTheStore) {
  EXPECT_TRUE(elb::FindLoadBalancer(ctx_, kName).has_value());
  EXPECT_FALSE(elb::FindLoadBalancer(ctx_, "nope").has_value());
  Json changed = Lb();
  changed["ConfigVersion"] = 7;
  std::vector<StoreWrite> pending = {{kind::kLoadBalancer, kName, changed}};
  EXPECT_EQ((*elb::FindLoadBalancer(ctx_, kName, &pending))["ConfigVersion"], 7);
  pending.push_back({kind::kLoadBalancer, kName, std::nullopt});
  EXPECT_FALSE(elb::FindLoadBalancer(ctx_, kName, &pending).has_value()) << "the batch deletes it";
  pending.push_back({kind::kLoadBalancer, kName, changed});
  EXPECT_TRUE(elb::FindLoadBalancer(ctx_, kName, &pending).has_value()) << "the last write wins";
  std::vector<StoreWrite> other = {{kind::kInstance, kName, std::nullopt}};
  EXPECT_EQ((*elb::FindLoadBalancer(ctx_, kName, &other))["ConfigVersion"], 1);
}

TEST_F(LoadBalancersTest, RegisterInTheSameBatchAsTheLaunchAndTwiceInOneBatch) {
  std::vector<StoreWrite> writes;
  const std::string a = AddInstance(kZoneA, instance_state::kPending, &writes);
  const std::string b = AddInstance(kZoneB, instance_state::kPending, &writes);
  ASSERT_TRUE(elb::RegisterInstances(ctx_, kName, {a}, writes).ok());
  ASSERT_TRUE(elb::RegisterInstances(ctx_, kName, {b}, writes).ok()) << "sees the batch's own instance and LB";
  Json pending_lb = *elb::FindLoadBalancer(ctx_, kName, &writes);
  EXPECT_EQ(pending_lb["Instances"], Json({a, b}));
  EXPECT_EQ(pending_lb["ConfigVersion"], 3);
  EXPECT_EQ(Lb()["Instances"], Json::array()) << "nothing is committed by the library";
  ASSERT_TRUE(store_->Commit(writes).ok());
  EXPECT_EQ(Lb()["Instances"], Json({a, b}));
}

TEST_F(LoadBalancersTest, RegisterChecksEveryIdBeforeChangingAnything) {
  const std::string a = AddInstance(kZoneA);
  std::vector<StoreWrite> writes;
  Status st = elb::RegisterInstances(ctx_, kName, {a, "i-0123456789abcdef0"}, writes);
  EXPECT_EQ(st.code(), "InvalidInstance");
  EXPECT_EQ(st.message(), "Could not find EC2 instance i-0123456789abcdef0.");
  EXPECT_TRUE(writes.empty());
  st = elb::RegisterInstances(ctx_, "nope", {a}, writes);
  EXPECT_EQ(st.code(), "LoadBalancerNotFound");
  EXPECT_EQ(st.message(), "There is no ACTIVE Load Balancer named 'nope'");
  EXPECT_TRUE(writes.empty());
  ASSERT_TRUE(Register({a}).ok());
  ASSERT_TRUE(elb::RegisterInstances(ctx_, kName, {a}, writes).ok());
  EXPECT_TRUE(writes.empty()) << "already registered: nothing to write";
}

TEST_F(LoadBalancersTest, DeregisterLetsGoOfARegisteredInstanceWhoseDocumentIsGone) {
  const std::string a = AddInstance(kZoneA), b = AddInstance(kZoneA);
  ASSERT_TRUE(Register({a, b}).ok());
  ASSERT_TRUE(store_->Delete(kind::kInstance, a).ok());
  ASSERT_TRUE(Deregister({a}).ok());
  EXPECT_EQ(Lb()["Instances"], Json({b}));
  EXPECT_EQ(Deregister({a}).code(), "InvalidInstance") << "now it is neither registered nor known";
  EXPECT_EQ(Deregister({b}).ok(), true);
  EXPECT_EQ(Lb()["ConfigVersion"], 4);
}

TEST_F(LoadBalancersTest, AttachedAndDraining) {
  Json doc = Lb();
  doc["Attributes"]["ConnectionDraining"] = {{"Enabled", true}, {"Timeout", 5}};
  ASSERT_TRUE(store_->Put(kind::kLoadBalancer, kName, doc).ok());
  const std::string a = AddInstance(kZoneA), b = AddInstance(kZoneA);
  ASSERT_TRUE(Register({a, b}).ok());
  EXPECT_TRUE(elb::IsAttached(Lb(), a));
  EXPECT_FALSE(elb::IsDraining(Lb(), a));
  ASSERT_TRUE(Deregister({a}).ok());
  EXPECT_TRUE(elb::IsAttached(Lb(), a));
  EXPECT_TRUE(elb::IsDraining(Lb(), a));
  EXPECT_EQ(Lb()["Deregistering"][a]["Until"], clock_.NowMillis() + 5000);
  EXPECT_FALSE(elb::IsAttached(Lb(), "i-0123456789abcdef0"));
  EXPECT_TRUE(elb::IsAttached(Lb(), b));
}

// ---- DescribeInstanceHealth, branch by branch -------------------------------------------------------------------

TEST_F(LoadBalancersTest, HealthOfDrainingAndUnregisteredInstances) {
  Json doc = Lb();
  doc["Attributes"]["ConnectionDraining"]["Enabled"] = true;
  ASSERT_TRUE(store_->Put(kind::kLoadBalancer, kName, doc).ok());
  const std::string a = AddInstance(kZoneA), b = AddInstance(kZoneA);
  ASSERT_TRUE(Register({a}).ok());
  ASSERT_TRUE(Deregister({a}).ok());
  SetState(a, instance_state::kTerminated);  // draining wins over everything else
  EXPECT_EQ(Health(a), "InService/N/A/Instance deregistration currently in progress.");
  EXPECT_EQ(Health(b), "OutOfService/N/A/Instance is not currently registered with the LoadBalancer.");
}

TEST_F(LoadBalancersTest, HealthFollowsTheEc2StateFirst) {
  const std::string pending = AddInstance(kZoneA, instance_state::kPending);
  const std::string stopped = AddInstance(kZoneA, instance_state::kStopped);
  const std::string leaving = AddInstance(kZoneA);
  const std::string gone = AddInstance(kZoneA);
  const std::string vanished = AddInstance(kZoneA);
  ASSERT_TRUE(Register({pending, stopped, leaving, gone, vanished}).ok());
  // They leave EC2 while registered.
  SetState(leaving, instance_state::kShuttingDown);
  SetState(gone, instance_state::kTerminated);
  ASSERT_TRUE(store_->Delete(kind::kInstance, vanished).ok());
  // Even a node calling them healthy does not matter.
  WriteStatus(kZoneA, {{pending, lb::kHealthHealthy}, {stopped, lb::kHealthHealthy}});
  EXPECT_EQ(Health(pending), "OutOfService/ELB/Instance registration is still in progress.");
  EXPECT_EQ(Health(stopped), "OutOfService/Instance/Instance is in stopped state.");
  EXPECT_EQ(Health(leaving), "OutOfService/Instance/Instance is in terminated state.");
  EXPECT_EQ(Health(gone), "OutOfService/Instance/Instance is in terminated state.");
  EXPECT_EQ(Health(vanished), "OutOfService/Instance/Instance is in terminated state.");
}

TEST_F(LoadBalancersTest, HealthOfAnInstanceInAZoneTheLoadBalancerDoesNotServe) {
  const std::string c = AddInstance(kZoneC);
  ASSERT_TRUE(Register({c}).ok());
  WriteStatus(kZoneA, {{c, lb::kHealthHealthy}});
  EXPECT_EQ(Health(c), "OutOfService/ELB/Instance is in an Availability Zone for which LoadBalancer is not "
                       "configured to route traffic to.");
}

TEST_F(LoadBalancersTest, HealthFromTheNodes) {
  const std::string a = AddInstance(kZoneA), b = AddInstance(kZoneB);
  ASSERT_TRUE(Register({a, b}).ok());
  // No node has reported.
  EXPECT_EQ(Health(a), "Unknown/ELB/A transient error occurred. Please try again later.");

  // A fresh node that has not checked the instance yet (or does not know it yet).
  WriteStatus(kZoneA, {{a, lb::kHealthUnknown}});
  EXPECT_EQ(Health(a), "OutOfService/ELB/Instance registration is still in progress.");
  EXPECT_EQ(Health(b), "OutOfService/ELB/Instance registration is still in progress.");

  WriteStatus(kZoneA, {{a, lb::kHealthUnhealthy}, {b, lb::kHealthUnhealthy}});
  const std::string failed =
      "OutOfService/Instance/Instance has failed at least the UnhealthyThreshold number of health checks "
      "consecutively.";
  EXPECT_EQ(Health(a), failed);

  // One node calling it healthy is enough.
  WriteStatus(kZoneB, {{b, lb::kHealthHealthy}});
  EXPECT_EQ(Health(b), "InService/N/A/N/A");
  EXPECT_EQ(Health(a), failed);

  // A status older than kStatusStaleMillis is not a report.
  WriteStatus(kZoneB, {{b, lb::kHealthHealthy}}, lb::kStatusStaleMillis + 1);
  EXPECT_EQ(Health(b), failed);
  clock_.Advance(lb::kStatusStaleMillis + 1);
  EXPECT_EQ(Health(a), "Unknown/ELB/A transient error occurred. Please try again later.");
}

TEST_F(LoadBalancersTest, NodeStatusFilesLiveUnderTheDataDir) {
  EXPECT_EQ(elb::NodeDir(ctx_, kName, kZoneB), data_dir_.string() + "/load-balancers/web/us-west-2b");
  EXPECT_FALSE(elb::ReadNodeStatus(ctx_, kName, kZoneA).has_value());
  WriteStatus(kZoneA, {{"i-0123456789abcdef0", lb::kHealthHealthy}});
  auto status = elb::ReadNodeStatus(ctx_, kName, kZoneA);
  ASSERT_TRUE(status.has_value());
  ASSERT_EQ(status->backends.size(), 1u);
  EXPECT_EQ(status->backends[0].health, lb::kHealthHealthy);
  ASSERT_TRUE(lb::WriteFileAtomically(elb::NodeDir(ctx_, kName, kZoneA) + "/status.json", "{not json").ok());
  EXPECT_FALSE(elb::ReadNodeStatus(ctx_, kName, kZoneA).has_value());
}

TEST_F(LoadBalancersTest, MetricsPerAzFromTheNodes) {
  WriteStatus(kZoneA, {{"i-1", lb::kHealthHealthy}, {"i-2", lb::kHealthUnhealthy}, {"i-3", lb::kHealthUnknown}});
  // A counter the node reported comes through unchanged.
  auto status = *elb::ReadNodeStatus(ctx_, kName, kZoneA);
  status.metrics.request_count = 42;
  status.metrics.elb_5xx = 3;
  ASSERT_TRUE(lb::WriteFileAtomically(elb::NodeDir(ctx_, kName, kZoneA) + "/status.json",
                                      lb::SerializeNodeStatus(status)).ok());
  WriteStatus(kZoneB, {{"i-4", lb::kHealthHealthy}}, lb::kStatusStaleMillis + 1);  // stale: not reporting

  auto metrics = elb::ReadLoadBalancerMetrics(ctx_, Lb());
  ASSERT_EQ(metrics.size(), 2u);
  EXPECT_EQ(metrics[0].availability_zone, kZoneA);
  EXPECT_TRUE(metrics[0].reporting);
  EXPECT_EQ(metrics[0].healthy_host_count, 1);
  EXPECT_EQ(metrics[0].unhealthy_host_count, 2);
  EXPECT_EQ(metrics[0].counters.request_count, 42u);
  EXPECT_EQ(metrics[0].counters.elb_5xx, 3u);
  EXPECT_EQ(metrics[1].availability_zone, kZoneB);
  EXPECT_FALSE(metrics[1].reporting);
  EXPECT_EQ(metrics[1].healthy_host_count, 0);
}

}  // namespace
}  // namespace autopipe

// LoadBalancerController on its own: load_balancer and instance documents written straight into an in-memory
// store, fake time and a FakeLauncher instead of `autopipe lb` processes, status.json files written by the test
// as a node would. Passes are run explicitly, so every step is deterministic and no test sleeps.
#include "elb/lb_controller.h"

#include <signal.h>
#include <sys/stat.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "ec2/instances.h"
#include "elb/load_balancers.h"
#include "lb/node_files.h"
#include "region/region_fixture.h"

namespace autopipe {
namespace {

namespace fs = std::filesystem;

constexpr char kLb[] = "my-lb";
constexpr char kZoneA[] = "us-west-2a";
constexpr char kZoneB[] = "us-west-2b";
constexpr char kZoneC[] = "us-west-2c";
constexpr char kSelfExe[] = "/opt/autopipe/bin/autopipe";

class LoadBalancerControllerTest : public RegionFixture {
 protected:
  void SetUp() override {
    WireRegion({.auto_scaling = false});
    controller_ = std::make_unique<LoadBalancerController>(&ctx_);
  }

  // ---- documents ----

  // A load balancer as CreateLoadBalancer writes it: HTTP 80 -> 8080, default attributes, address index 7.
  Json LoadBalancer(const std::vector<std::string>& zones = {kZoneA, kZoneB}) {
    return {{"LoadBalancerName", kLb},
            {"DNSName", "127.200.200.7"},
            {"CanonicalHostedZoneNameID", "Z1H1FL5HABSF5"},
            {"CreatedTime", clock_.NowMillis()},
            {"Scheme", "internet-facing"},
            {"AvailabilityZones", zones},
            {"Listeners",
             Json::array({{{"Protocol", "HTTP"},
                           {"LoadBalancerPort", 80},
                           {"InstanceProtocol", "HTTP"},
                           {"InstancePort", 8080}}})},
            {"HealthCheck",
             {{"Target", "HTTP:8080/health"},
              {"Interval", 10},
              {"Timeout", 4},
              {"UnhealthyThreshold", 3},
              {"HealthyThreshold", 2}}},
            {"Instances", Json::array()},
            {"Deregistering", Json::object()},
            {"Attributes",
             {{"CrossZoneLoadBalancing", {{"Enabled", false}}},
              {"ConnectionDraining", {{"Enabled", false}, {"Timeout", 300}}},
              {"ConnectionSettings", {{"IdleTimeout", 60}}},
              {"AccessLog", {{"Enabled", false}}}}},
            {"Tags", Json::array()},
            {"Address", "127.200.200.7"},
            {"AddressIndex", 7},
            {"ConfigVersion", 1}};
  }

  void PutLoadBalancer(const Json& lb) { ASSERT_TRUE(store_->Put(kind::kLoadBalancer, kLb, lb).ok()); }
  Json GetLoadBalancer() { return *store_->Get(kind::kLoadBalancer, kLb); }
  // Applies `change` to the stored load balancer.
  void ChangeLoadBalancer(const std::function<void(Json&)>& change) {
    Json lb = GetLoadBalancer();
    change(lb);
    PutLoadBalancer(lb);
  }

  void PutInstance(const std::string& id, const std::string& az, const std::string& ip,
                   const std::string& state = instance_state::kRunning) {
    Json inst = {{"InstanceId", id}, {"AvailabilityZone", az}, {"PrivateIpAddress", ip}, {"State", state}};
    ASSERT_TRUE(store_->Put(kind::kInstance, id, inst).ok());
  }

  // i-a in zone a, i-b in zone b, i-c in zone c (not enabled), i-s in zone a but stopped; all registered.
  void PutRegisteredInstances() {
    PutInstance("i-a", kZoneA, "127.200.0.10");
    PutInstance("i-b", kZoneB, "127.200.1.10");
    PutInstance("i-c", kZoneC, "127.200.2.10");
    PutInstance("i-s", kZoneA, "127.200.0.11", instance_state::kStopped);
    ChangeLoadBalancer([](Json& lb) { lb["Instances"] = {"i-a", "i-b", "i-c", "i-s"}; });
  }

  // ---- passes ----

  void Pass() { Pass(*controller_); }
  void Pass(LoadBalancerController& controller) {
    for (const auto& key : controller.Keys()) {
      ReconcileResult r = controller.Reconcile(key);
      EXPECT_TRUE(r.status().ok()) << key << ": " << r.status().ToString();
    }
  }

  // ---- observations ----

  std::string NodeId(const std::string& az) { return std::string(kLb) + "/" + az; }
  std::optional<Json> Node(const std::string& az) { return store_->Get(kind::kLoadBalancerNode, NodeId(az)); }
  pid_t PidOf(const std::string& az) {
    auto node = Node(az);
    return node ? (*node)["Pid"].get<pid_t>() : 0;
  }
  std::string DirOf(const std::string& az) { return elb::NodeDir(ctx_, kLb, az); }

  lb::NodeConfig ConfigOf(const std::string& az) {
    auto text = lb::ReadWholeFile(DirOf(az) + "/config.json");
    EXPECT_TRUE(text.ok()) << "no config.json for " << az;
    if (!text.ok()) return {};
    auto config = lb::ParseNodeConfig(*text);
    EXPECT_TRUE(config.ok()) << config.status().ToString();
    return config.ok() ? *config : lb::NodeConfig{};
  }

  std::vector<std::string> BackendIds(const lb::NodeConfig& config) {
    std::vector<std::string> ids;
    for (const auto& b : config.backends) ids.push_back(b.id);
    return ids;
  }

  ino_t ConfigInode(const std::string& az) {
    struct stat st {};
    EXPECT_EQ(::stat((DirOf(az) + "/config.json").c_str(), &st), 0);
    return st.st_ino;
  }

  // Writes the status.json a node would: `age_millis` old, of `version` (default: the node's ConfigVersion),
  // with `active` requests in flight on each listed instance.
  void WriteStatus(const std::string& az, const std::vector<std::pair<std::string, uint64_t>>& active,
                   int64_t age_millis = 0, std::optional<uint64_t> version = std::nullopt) {
    lb::NodeStatus status;
    status.config_version = version.value_or((*Node(az))["ConfigVersion"].get<uint64_t>());
    status.updated_at_millis = clock_.NowMillis() - age_millis;
    status.pid = PidOf(az);
    for (const auto& [id, n] : active) {
      lb::BackendStatus b;
      b.id = id;
      b.health = lb::kHealthHealthy;
      b.active_requests = n;
      status.backends.push_back(b);
    }
    ASSERT_TRUE(lb::WriteFileAtomically(DirOf(az) + "/status.json", lb::SerializeNodeStatus(status)).ok());
  }

  // Sets up draining of i-b (registered before, now deregistering until `until_in_millis` from now).
  void DrainInstanceB(int64_t until_in_millis) {
    PutInstance("i-a", kZoneA, "127.200.0.10");
    PutInstance("i-b", kZoneB, "127.200.1.10");
    ChangeLoadBalancer([&](Json& lb) {
      lb["Attributes"]["ConnectionDraining"] = {{"Enabled", true}, {"Timeout", 300}};
      lb["Instances"] = {"i-a"};
      lb["Deregistering"] = {{"i-b", {{"Until", clock_.NowMillis() + until_in_millis}}}};
    });
  }

  bool Draining(const std::string& id) { return GetLoadBalancer()["Deregistering"].contains(id); }

  std::unique_ptr<LoadBalancerController> controller_;
};

TEST_F(LoadBalancerControllerTest, LaunchesOneNodePerAvailabilityZone) {
  PutLoadBalancer(LoadBalancer());
  Pass();

  ASSERT_EQ(launcher_.launch_count(), 2u);
  for (const std::string az : {kZoneA, kZoneB}) {
    auto node = Node(az);
    ASSERT_TRUE(node) << az;
    const std::string dir = DirOf(az);
    EXPECT_EQ(dir, data_dir_.string() + "/load-balancers/my-lb/" + az);
    auto spec = launcher_.SpecOf(PidOf(az));
    ASSERT_TRUE(spec);
    EXPECT_EQ(spec->argv, (std::vector<std::string>{kSelfExe, "lb", "--config", dir + "/config.json"}));
    EXPECT_EQ(spec->working_dir, dir);
    EXPECT_EQ(spec->log_path, dir + "/node.log");
    EXPECT_EQ(spec->env.at("AUTOPIPE_AVAILABILITY_ZONE"), az);
    EXPECT_EQ((*node)["LoadBalancerName"], kLb);
    EXPECT_EQ((*node)["AvailabilityZone"], az);
    EXPECT_EQ((*node)["VipAddress"], "127.200.200.7");
    EXPECT_EQ((*node)["PidStartTime"], FakeLauncher::StartTimeOf(PidOf(az)));
    EXPECT_EQ((*node)["State"], lb_node_state::kRunning);
    EXPECT_EQ((*node)["ConfigVersion"], 1);
  }
  EXPECT_EQ((*Node(kZoneA))["Address"], "127.200.201.7");
  EXPECT_EQ((*Node(kZoneB))["Address"], "127.200.202.7");

  lb::NodeConfig config = ConfigOf(kZoneB);
  EXPECT_EQ(config.version, 1u);
  EXPECT_EQ(config.load_balancer_name, kLb);
  EXPECT_EQ(config.availability_zone, kZoneB);
  EXPECT_EQ(config.addresses, (std::vector<std::string>{"127.200.200.7", "127.200.202.7"}));
  ASSERT_EQ(config.listeners.size(), 1u);
  EXPECT_EQ(config.listeners[0], (lb::ListenerConfig{"HTTP", 80, "HTTP", 8080}));
  EXPECT_EQ(config.health_check, (lb::HealthCheckConfig{"HTTP:8080/health", 10, 4, 2, 3}));
  EXPECT_EQ(config.idle_timeout_seconds, 60);
  EXPECT_FALSE(config.draining_enabled);
  EXPECT_EQ(config.access_log_path, "");
  EXPECT_EQ(config.status_path, DirOf(kZoneB) + "/status.json");
  EXPECT_EQ(config.threads, 0);
  EXPECT_TRUE(config.backends.empty());
}

TEST_F(LoadBalancerControllerTest, WithoutCrossZoneEachNodeRoutesToItsOwnZoneOnly) {
  PutLoadBalancer(LoadBalancer());
  PutRegisteredInstances();
  Pass();

  lb::NodeConfig a = ConfigOf(kZoneA);
  ASSERT_EQ(a.backends.size(), 1u);
  EXPECT_EQ(a.backends[0], (lb::BackendConfig{"i-a", "127.200.0.10", kZoneA, false}));
  lb::NodeConfig b = ConfigOf(kZoneB);
  ASSERT_EQ(b.backends.size(), 1u);
  EXPECT_EQ(b.backends[0], (lb::BackendConfig{"i-b", "127.200.1.10", kZoneB, false}));
}

TEST_F(LoadBalancerControllerTest, WithCrossZoneEveryNodeRoutesToEveryEnabledZone) {
  Json lb = LoadBalancer();
  lb["Attributes"]["CrossZoneLoadBalancing"]["Enabled"] = true;
  PutLoadBalancer(lb);
  PutRegisteredInstances();
  Pass();

  // i-c runs in a zone the load balancer does not serve, i-s is stopped: neither is a back end.
  for (const std::string az : {kZoneA, kZoneB}) {
    EXPECT_EQ(BackendIds(ConfigOf(az)), (std::vector<std::string>{"i-a", "i-b"})) << az;
  }
}

TEST_F(LoadBalancerControllerTest, ConfigCarriesDrainingAttributesAndAccessLog) {
  Json lb = LoadBalancer();
  lb["Attributes"]["CrossZoneLoadBalancing"]["Enabled"] = true;
  lb["Attributes"]["ConnectionSettings"]["IdleTimeout"] = 120;
  lb["Attributes"]["AccessLog"] = {{"Enabled", true}, {"S3BucketName", "logs"}, {"EmitInterval", 5}};
  PutLoadBalancer(lb);
  DrainInstanceB(/*until_in_millis=*/60'000);
  ChangeLoadBalancer([](Json& lb) { lb["Attributes"]["ConnectionDraining"]["Timeout"] = 45; });
  Pass();

  lb::NodeConfig config = ConfigOf(kZoneA);
  ASSERT_EQ(config.backends.size(), 2u);
  EXPECT_EQ(config.backends[0], (lb::BackendConfig{"i-a", "127.200.0.10", kZoneA, false}));
  EXPECT_EQ(config.backends[1], (lb::BackendConfig{"i-b", "127.200.1.10", kZoneB, true}));
  EXPECT_TRUE(config.draining_enabled);
  EXPECT_EQ(config.draining_timeout_seconds, 45);
  EXPECT_EQ(config.idle_timeout_seconds, 120);
  EXPECT_EQ(config.access_log_path, DirOf(kZoneA) + "/access.log");
}

TEST_F(LoadBalancerControllerTest, ConfigChangeBumpsVersionAndReloadsWithoutRelaunch) {
  PutLoadBalancer(LoadBalancer());
  PutInstance("i-a", kZoneA, "127.200.0.10");
  Pass();
  const pid_t a = PidOf(kZoneA), b = PidOf(kZoneB);

  ChangeLoadBalancer([](Json& lb) { lb["Instances"] = {"i-a"}; });
  Pass();

  EXPECT_EQ(launcher_.launch_count(), 2u);
  EXPECT_EQ(PidOf(kZoneA), a);
  EXPECT_EQ((*Node(kZoneA))["ConfigVersion"], 2);
  EXPECT_EQ(ConfigOf(kZoneA).version, 2u);
  EXPECT_EQ(BackendIds(ConfigOf(kZoneA)), std::vector<std::string>{"i-a"});
  EXPECT_EQ(launcher_.ProcessSignalsTo(a), std::vector<int>{SIGHUP});
  // Zone b's node does not route to i-a: its config, version and process are untouched.
  EXPECT_EQ((*Node(kZoneB))["ConfigVersion"], 1);
  EXPECT_TRUE(launcher_.ProcessSignalsTo(b).empty());
  EXPECT_TRUE(launcher_.signals().empty());

  // A health check change reaches every node.
  ChangeLoadBalancer([](Json& lb) { lb["HealthCheck"]["Interval"] = 20; });
  Pass();
  EXPECT_EQ((*Node(kZoneA))["ConfigVersion"], 3);
  EXPECT_EQ((*Node(kZoneB))["ConfigVersion"], 2);
  EXPECT_EQ(ConfigOf(kZoneB).health_check.interval_seconds, 20);
  EXPECT_EQ(launcher_.ProcessSignalsTo(a), (std::vector<int>{SIGHUP, SIGHUP}));
  EXPECT_EQ(launcher_.ProcessSignalsTo(b), std::vector<int>{SIGHUP});
}

TEST_F(LoadBalancerControllerTest, UnchangedConfigIsNeitherRewrittenNorSignalled) {
  PutLoadBalancer(LoadBalancer());
  PutRegisteredInstances();
  Pass();
  const uint64_t revision = store_->Revision();
  const ino_t inode = ConfigInode(kZoneA);

  // A change nodes do not see (tags) and the LB's own version moving do not touch them either.
  ChangeLoadBalancer([](Json& lb) {
    lb["Tags"] = Json::array({Json{{"Key", "team"}, {"Value", "web"}}});
    lb["ConfigVersion"] = 2;
  });
  const uint64_t after_tags = store_->Revision();
  Pass();
  Pass();

  EXPECT_EQ(store_->Revision(), after_tags);
  EXPECT_GT(after_tags, revision);
  EXPECT_EQ(ConfigInode(kZoneA), inode);
  EXPECT_EQ(launcher_.launch_count(), 2u);
  for (pid_t pid : launcher_.pids()) EXPECT_TRUE(launcher_.ProcessSignalsTo(pid).empty());
}

TEST_F(LoadBalancerControllerTest, DeadNodeIsRelaunchedWithItsConfig) {
  PutLoadBalancer(LoadBalancer());
  PutInstance("i-a", kZoneA, "127.200.0.10");
  ChangeLoadBalancer([](Json& lb) { lb["Instances"] = {"i-a"}; });
  Pass();
  const pid_t old = PidOf(kZoneA);

  clock_.Advance(60'000);  // it served for a minute: not a crash
  launcher_.Kill(old);
  Pass();

  ASSERT_EQ(launcher_.launch_count(), 3u);
  const pid_t fresh = PidOf(kZoneA);
  EXPECT_NE(fresh, old);
  EXPECT_TRUE(launcher_.Alive(fresh));
  EXPECT_EQ((*Node(kZoneA))["LaunchFailures"], 0);
  // The config did not change, so neither did its version.
  EXPECT_EQ((*Node(kZoneA))["ConfigVersion"], 1);
  EXPECT_EQ(BackendIds(ConfigOf(kZoneA)), std::vector<std::string>{"i-a"});
}

TEST_F(LoadBalancerControllerTest, LeftoversOfADeadNodeAreKilled) {
  PutLoadBalancer(LoadBalancer({kZoneA}));
  Pass();
  const pid_t old = PidOf(kZoneA);
  clock_.Advance(60'000);
  launcher_.KillLeader(old);
  Pass();

  EXPECT_EQ(launcher_.SignalsTo(old), std::vector<bool>{true});
  EXPECT_FALSE(launcher_.Alive(old));
  EXPECT_NE(PidOf(kZoneA), old);
}

TEST_F(LoadBalancerControllerTest, CrashingNodeBacksOffInsteadOfForkLooping) {
  PutLoadBalancer(LoadBalancer({kZoneA}));
  Pass();
  ASSERT_EQ(launcher_.launch_count(), 1u);

  // Dies 1 s after its launch: 5 s back-off.
  clock_.Advance(1000);
  launcher_.Kill(PidOf(kZoneA));
  Pass();
  Pass();
  EXPECT_EQ(launcher_.launch_count(), 1u);
  EXPECT_EQ((*Node(kZoneA))["LaunchFailures"], 1);
  EXPECT_EQ((*Node(kZoneA))["Pid"], 0);
  clock_.Advance(4999);
  Pass();
  EXPECT_EQ(launcher_.launch_count(), 1u);
  clock_.Advance(1);
  Pass();
  ASSERT_EQ(launcher_.launch_count(), 2u);

  // Crashes again at once: 10 s.
  launcher_.Kill(PidOf(kZoneA));
  Pass();
  clock_.Advance(9999);
  Pass();
  EXPECT_EQ(launcher_.launch_count(), 2u);
  clock_.Advance(1);
  Pass();
  ASSERT_EQ(launcher_.launch_count(), 3u);

  // This one outlives the crash window: the back-off is forgotten.
  clock_.Advance(LoadBalancerController::kCrashWindowMillis);
  Pass();
  EXPECT_EQ((*Node(kZoneA))["LaunchFailures"], 0);
}

TEST_F(LoadBalancerControllerTest, BackOffIsCappedAtOneMinute) {
  PutLoadBalancer(LoadBalancer({kZoneA}));
  Pass();
  for (int i = 0; i < 8; ++i) {
    launcher_.Kill(PidOf(kZoneA));
    Pass();
    clock_.Advance(LoadBalancerController::kMaxBackoffMillis);
    Pass();
  }
  EXPECT_EQ(launcher_.launch_count(), 9u);
  launcher_.Kill(PidOf(kZoneA));
  Pass();
  EXPECT_EQ((*Node(kZoneA))["LaunchFailures"], 9);
  EXPECT_EQ((*Node(kZoneA))["LaunchBackoffUntil"], clock_.NowMillis() + LoadBalancerController::kMaxBackoffMillis);
}

TEST_F(LoadBalancerControllerTest, FailedLaunchesBackOffToo) {
  launcher_.set_fail_launches(true);
  PutLoadBalancer(LoadBalancer({kZoneA}));
  Pass();
  Pass();
  EXPECT_EQ(launcher_.launch_attempts(), 1u);
  EXPECT_EQ((*Node(kZoneA))["Pid"], 0);

  launcher_.set_fail_launches(false);
  clock_.Advance(LoadBalancerController::kFirstBackoffMillis);
  Pass();
  EXPECT_EQ(launcher_.launch_count(), 1u);
  EXPECT_GT(PidOf(kZoneA), 0);
}

TEST_F(LoadBalancerControllerTest, DeletedLoadBalancerStopsItsNodes) {
  PutLoadBalancer(LoadBalancer());
  Pass();
  const pid_t a = PidOf(kZoneA), b = PidOf(kZoneB);
  launcher_.IgnoreSigterm(a);
  launcher_.IgnoreSigterm(b);
  ASSERT_TRUE(fs::exists(data_dir_ / "load-balancers" / kLb));

  ASSERT_TRUE(store_->Delete(kind::kLoadBalancer, kLb).ok());
  Pass();
  EXPECT_EQ(launcher_.SignalsTo(a), std::vector<bool>{false});
  EXPECT_EQ(launcher_.SignalsTo(b), std::vector<bool>{false});
  EXPECT_EQ((*Node(kZoneA))["State"], lb_node_state::kStopping);

  clock_.Advance(LoadBalancerController::kKillAfterMillis);
  Pass();
  EXPECT_EQ(launcher_.SignalsTo(a), std::vector<bool>{false});  // not yet: 10 s have not passed
  clock_.Advance(1);
  Pass();
  EXPECT_EQ(launcher_.SignalsTo(a), (std::vector<bool>{false, true}));
  EXPECT_EQ(launcher_.SignalsTo(b), (std::vector<bool>{false, true}));

  Pass();
  EXPECT_FALSE(Node(kZoneA));
  EXPECT_FALSE(Node(kZoneB));
  EXPECT_FALSE(fs::exists(data_dir_ / "load-balancers" / kLb));
  EXPECT_TRUE(controller_->Keys().empty());
  EXPECT_EQ(launcher_.launch_count(), 2u);
}

TEST_F(LoadBalancerControllerTest, DisabledZoneStopsOnlyItsNode) {
  PutLoadBalancer(LoadBalancer());
  Pass();
  const pid_t a = PidOf(kZoneA), b = PidOf(kZoneB);

  ChangeLoadBalancer([](Json& lb) { lb["AvailabilityZones"] = {kZoneA}; });
  Pass();
  EXPECT_EQ(launcher_.SignalsTo(b), std::vector<bool>{false});
  Pass();
  EXPECT_FALSE(Node(kZoneB));
  EXPECT_FALSE(fs::exists(DirOf(kZoneB)));
  EXPECT_TRUE(Node(kZoneA));
  EXPECT_TRUE(launcher_.Alive(a));
  EXPECT_TRUE(launcher_.SignalsTo(a).empty());
  EXPECT_TRUE(launcher_.ProcessSignalsTo(a).empty());

  // Enabled again: a new node.
  ChangeLoadBalancer([](Json& lb) { lb["AvailabilityZones"] = {kZoneA, kZoneB}; });
  Pass();
  EXPECT_EQ(launcher_.launch_count(), 3u);
  EXPECT_GT(PidOf(kZoneB), b);
}

TEST_F(LoadBalancerControllerTest, ZoneEnabledAgainWhileItsNodeStopsWaitsForTheOldProcess) {
  PutLoadBalancer(LoadBalancer());
  Pass();
  const pid_t b = PidOf(kZoneB);
  launcher_.IgnoreSigterm(b);
  ChangeLoadBalancer([](Json& lb) { lb["AvailabilityZones"] = {kZoneA}; });
  Pass();
  ChangeLoadBalancer([](Json& lb) { lb["AvailabilityZones"] = {kZoneA, kZoneB}; });
  Pass();
  EXPECT_EQ(launcher_.launch_count(), 2u);
  EXPECT_EQ((*Node(kZoneB))["State"], lb_node_state::kStopping);

  clock_.Advance(LoadBalancerController::kKillAfterMillis + 1);
  Pass();  // SIGKILL
  Pass();  // gone: a new node
  EXPECT_EQ(launcher_.SignalsTo(b), (std::vector<bool>{false, true}));
  EXPECT_EQ(launcher_.launch_count(), 3u);
  EXPECT_EQ((*Node(kZoneB))["State"], lb_node_state::kRunning);
  EXPECT_TRUE(launcher_.Alive(PidOf(kZoneB)));
}

TEST_F(LoadBalancerControllerTest, LoadBalancerCreatedAgainWhileItsNodesStopGetsNodesOnItsNewAddress) {
  PutLoadBalancer(LoadBalancer({kZoneA}));
  Pass();
  const pid_t old = PidOf(kZoneA);
  launcher_.IgnoreSigterm(old);
  ASSERT_TRUE(store_->Delete(kind::kLoadBalancer, kLb).ok());
  Pass();

  Json again = LoadBalancer({kZoneA});
  again["Address"] = again["DNSName"] = "127.200.200.8";
  again["AddressIndex"] = 8;
  PutLoadBalancer(again);
  Pass();
  EXPECT_EQ(launcher_.launch_count(), 1u);  // the old node still holds the old address

  clock_.Advance(LoadBalancerController::kKillAfterMillis + 1);
  Pass();
  Pass();
  ASSERT_EQ(launcher_.launch_count(), 2u);
  EXPECT_EQ((*Node(kZoneA))["VipAddress"], "127.200.200.8");
  EXPECT_EQ((*Node(kZoneA))["Address"], "127.200.201.8");
  EXPECT_EQ(ConfigOf(kZoneA).addresses, (std::vector<std::string>{"127.200.200.8", "127.200.201.8"}));
}

TEST_F(LoadBalancerControllerTest, DrainingEndsAtItsTimeout) {
  PutLoadBalancer(LoadBalancer());
  DrainInstanceB(/*until_in_millis=*/30'000);
  Pass();
  EXPECT_EQ(ConfigOf(kZoneB).backends, (std::vector<lb::BackendConfig>{{"i-b", "127.200.1.10", kZoneB, true}}));
  // No node reports at all: only the timeout can end it.
  clock_.Advance(29'999);
  Pass();
  EXPECT_TRUE(Draining("i-b"));

  const uint64_t lb_version = GetLoadBalancer()["ConfigVersion"];
  const pid_t b = PidOf(kZoneB);
  clock_.Advance(1);
  Pass();
  EXPECT_FALSE(Draining("i-b"));
  EXPECT_EQ(GetLoadBalancer()["ConfigVersion"], lb_version + 1);
  // The node forgets it in the same pass.
  EXPECT_TRUE(ConfigOf(kZoneB).backends.empty());
  EXPECT_EQ(launcher_.ProcessSignalsTo(b), std::vector<int>{SIGHUP});
}

TEST_F(LoadBalancerControllerTest, DrainingEndsWhenEveryNodeReportsNoRequestInFlight) {
  PutLoadBalancer(LoadBalancer());
  DrainInstanceB(/*until_in_millis=*/300'000);
  Pass();

  WriteStatus(kZoneA, {{"i-a", 4}});  // does not route to i-b: says nothing about it
  WriteStatus(kZoneB, {{"i-b", 2}});
  Pass();
  EXPECT_TRUE(Draining("i-b"));

  WriteStatus(kZoneB, {{"i-b", 0}});
  Pass();
  EXPECT_FALSE(Draining("i-b"));
  EXPECT_TRUE(ConfigOf(kZoneB).backends.empty());
  EXPECT_EQ(GetLoadBalancer()["Instances"], Json({"i-a"}));
}

TEST_F(LoadBalancerControllerTest, DrainingWaitsForEveryNode) {
  PutLoadBalancer(LoadBalancer());
  DrainInstanceB(/*until_in_millis=*/300'000);
  Pass();
  WriteStatus(kZoneB, {{"i-b", 0}});  // zone a's node has not reported
  Pass();
  EXPECT_TRUE(Draining("i-b"));
  WriteStatus(kZoneA, {});
  Pass();
  EXPECT_FALSE(Draining("i-b"));
}

TEST_F(LoadBalancerControllerTest, DrainingIgnoresStaleReports) {
  PutLoadBalancer(LoadBalancer());
  DrainInstanceB(/*until_in_millis=*/300'000);
  Pass();

  WriteStatus(kZoneA, {}, /*age_millis=*/lb::kStatusStaleMillis + 1);
  WriteStatus(kZoneB, {{"i-b", 0}});
  Pass();
  EXPECT_TRUE(Draining("i-b"));

  // Fresh, but of a config older than the one that marked i-b draining.
  const uint64_t version = (*Node(kZoneB))["ConfigVersion"];
  WriteStatus(kZoneA, {});
  WriteStatus(kZoneB, {{"i-b", 0}}, /*age_millis=*/0, version - 1);
  Pass();
  EXPECT_TRUE(Draining("i-b"));

  WriteStatus(kZoneB, {{"i-b", 0}}, /*age_millis=*/0, version);
  Pass();
  EXPECT_FALSE(Draining("i-b"));
}

TEST_F(LoadBalancerControllerTest, DrainingStartedByThisPassWaitsForTheNodesToSeeIt) {
  PutLoadBalancer(LoadBalancer());
  PutInstance("i-a", kZoneA, "127.200.0.10");
  PutInstance("i-b", kZoneB, "127.200.1.10");
  ChangeLoadBalancer([](Json& lb) { lb["Instances"] = {"i-a", "i-b"}; });
  Pass();
  // Idle reports of the config in which i-b still takes new requests.
  WriteStatus(kZoneA, {{"i-a", 0}});
  WriteStatus(kZoneB, {{"i-b", 0}});
  ChangeLoadBalancer([&](Json& lb) {
    lb["Instances"] = {"i-a"};
    lb["Deregistering"] = {{"i-b", {{"Until", clock_.NowMillis() + 300'000}}}};
  });
  Pass();
  EXPECT_TRUE(Draining("i-b"));
  EXPECT_TRUE(ConfigOf(kZoneB).backends.at(0).draining);
}

TEST_F(LoadBalancerControllerTest, DrainingEndsAtOnceWhenTheInstanceIsGoneOrNotRunning) {
  PutLoadBalancer(LoadBalancer());
  DrainInstanceB(/*until_in_millis=*/300'000);
  PutInstance("i-c", kZoneA, "127.200.0.12");
  ChangeLoadBalancer([&](Json& lb) { lb["Deregistering"]["i-c"] = {{"Until", clock_.NowMillis() + 300'000}}; });
  Pass();
  EXPECT_TRUE(Draining("i-b"));
  EXPECT_TRUE(Draining("i-c"));

  PutInstance("i-b", kZoneB, "127.200.1.10", instance_state::kShuttingDown);
  ASSERT_TRUE(store_->Delete(kind::kInstance, "i-c").ok());
  Pass();
  EXPECT_FALSE(Draining("i-b"));
  EXPECT_FALSE(Draining("i-c"));
}

TEST_F(LoadBalancerControllerTest, RestartedServerAdoptsLiveNodes) {
  PutLoadBalancer(LoadBalancer());
  PutRegisteredInstances();
  Pass();
  const std::vector<pid_t> pids = launcher_.pids();
  const uint64_t revision = store_->Revision();

  // A fresh controller, as after a server restart, with the same store and processes.
  LoadBalancerController restarted(&ctx_);
  Pass(restarted);
  EXPECT_EQ(launcher_.pids(), pids);
  EXPECT_EQ(store_->Revision(), revision);
  for (pid_t pid : pids) EXPECT_TRUE(launcher_.ProcessSignalsTo(pid).empty());
  EXPECT_TRUE(launcher_.signals().empty());

  // What changed while the server was away reaches the adopted node by SIGHUP.
  ChangeLoadBalancer([](Json& lb) { lb["Instances"] = {"i-a"}; });
  LoadBalancerController again(&ctx_);
  Pass(again);
  EXPECT_EQ(launcher_.pids(), pids);
  EXPECT_EQ(launcher_.ProcessSignalsTo(PidOf(kZoneB)), std::vector<int>{SIGHUP});
  EXPECT_TRUE(launcher_.ProcessSignalsTo(PidOf(kZoneA)).empty());
}

TEST_F(LoadBalancerControllerTest, KeysCoverNodesOfDeletedLoadBalancers) {
  PutLoadBalancer(LoadBalancer());
  Pass();
  EXPECT_EQ(controller_->Keys(), std::vector<std::string>{kLb});
  ASSERT_TRUE(store_->Delete(kind::kLoadBalancer, kLb).ok());
  EXPECT_EQ(controller_->Keys(), std::vector<std::string>{kLb});
}

TEST_F(LoadBalancerControllerTest, RunsInTheRegionsControllerPasses) {
  PutLoadBalancer(LoadBalancer());
  runner_->RunPass();
  EXPECT_EQ(launcher_.launch_count(), 2u);
  EXPECT_TRUE(Node(kZoneA));
}

}  // namespace
}  // namespace autopipe

// The Classic ELB API handlers through ApiRouter::Invoke, over an in-memory store and fake time. No controller
// pass is run: these tests look at what the API writes and answers, and fake the nodes' status files where
// instance health needs them.
#include "elb/elb_service.h"

#include <filesystem>
#include <future>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "api/api_server.h"
#include "common/time_util.h"
#include "ec2/instances.h"
#include "elb/load_balancers.h"
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
constexpr char kImage[] = "ami-0f1e2d3c4b5a69788";

class ElbServiceTest : public RegionFixture {
 protected:
  void SetUp() override {
    WireRegion({.auto_scaling = false, .load_balancing = true, .service = "elasticloadbalancing"});
  }

  // An HTTP 80 -> 8080 load balancer over us-west-2a/b; `overrides` replace or add parameters.
  Json Create(const std::string& name = kName, const FormParams& overrides = {}) {
    return MustCall("CreateLoadBalancer", CreateParams(name, overrides));
  }

  static FormParams CreateParams(const std::string& name = kName, const FormParams& overrides = {}) {
    FormParams p = {{"LoadBalancerName", name},
                    {"Listeners.member.1.Protocol", "HTTP"},
                    {"Listeners.member.1.LoadBalancerPort", "80"},
                    {"Listeners.member.1.InstancePort", "8080"},
                    {"AvailabilityZones.member.1", kZoneA},
                    {"AvailabilityZones.member.2", kZoneB}};
    for (const auto& [k, v] : overrides) p[k] = v;
    return p;
  }

  // The stored document, or null.
  Json Stored(const std::string& name = kName) {
    auto doc = store_->Get(kind::kLoadBalancer, name);
    return doc ? *doc : Json();
  }

  Json Describe(const std::string& name = kName) {
    Json r = MustCall("DescribeLoadBalancers", {{"LoadBalancerNames.member.1", name}});
    return r["LoadBalancerDescriptions"][0];
  }

  // An instance in `state`, written straight to the store as the instance controller would leave it.
  std::string AddInstance(const std::string& az, const std::string& state = instance_state::kRunning) {
    InstanceLaunch launch;
    launch.image_id = kImage;
    launch.instance_type = "t3.micro";
    launch.availability_zone = az;
    std::vector<StoreWrite> writes;
    std::lock_guard lock(mu_);
    auto inst = NewInstance(ctx_, launch, &writes);
    EXPECT_TRUE(inst.ok()) << inst.status().ToString();
    (*inst)["State"] = state;
    writes.back().doc = *inst;
    EXPECT_TRUE(store_->Commit(writes).ok());
    return (*inst)["InstanceId"];
  }

  Json Register(const std::vector<std::string>& ids, const std::string& name = kName) {
    return MustCall("RegisterInstancesWithLoadBalancer", InstanceParams(name, ids));
  }

  static FormParams InstanceParams(const std::string& name, const std::vector<std::string>& ids) {
    FormParams p = {{"LoadBalancerName", name}};
    for (size_t i = 0; i < ids.size(); ++i) p["Instances.member." + std::to_string(i + 1) + ".InstanceId"] = ids[i];
    return p;
  }

  static std::vector<std::string> Ids(const Json& instances) {
    std::vector<std::string> ids;
    for (const auto& i : instances) ids.push_back(i["InstanceId"]);
    return ids;
  }

  // Writes a fresh status.json for the node in `az` reporting each (id, health).
  void WriteStatus(const std::string& az, const std::vector<std::pair<std::string, std::string>>& backends) {
    lb::NodeStatus status;
    status.config_version = 1;
    status.updated_at_millis = clock_.NowMillis();
    for (const auto& [id, health] : backends) status.backends.push_back({id, health, 0, ""});
    const std::string dir = elb::NodeDir(ctx_, kName, az);
    fs::create_directories(dir);
    ASSERT_TRUE(lb::WriteFileAtomically(dir + "/status.json", lb::SerializeNodeStatus(status)).ok());
  }

  // Expects the call to fail with `code` and `http_status`, and leaves the stored load balancer unchanged.
  void ExpectRefused(const std::string& action, const FormParams& params, const std::string& code,
                     int http_status = 400) {
    Json before = Stored();
    auto r = Call(action, params);
    ASSERT_FALSE(r.ok()) << action << " succeeded; expected " << code;
    EXPECT_EQ(r.status().code(), code) << r.status().message();
    EXPECT_EQ(r.status().http_status(), http_status);
    EXPECT_EQ(Stored(), before) << action << " changed the load balancer although it failed";
  }
};

// ---- CreateLoadBalancer ---------------------------------------------------------------------------------------

// The Describe operations take no lock: they answer while a write or controller pass holds RegionContext::mu.
TEST_F(ElbServiceTest, DescribesAnswerWhileTheRegionLockIsHeld) {
  Create();
  std::lock_guard hold(mu_);
  auto reads = std::async(std::launch::async, [this] {
    std::vector<Result<Json>> out;
    out.push_back(Call("DescribeLoadBalancers", {}));
    out.push_back(Call("DescribeLoadBalancerAttributes", {{"LoadBalancerName", kName}}));
    out.push_back(Call("DescribeInstanceHealth", {{"LoadBalancerName", kName}}));
    out.push_back(Call("DescribeTags", {{"LoadBalancerNames.member.1", kName}}));
    return out;
  });
  ASSERT_EQ(reads.wait_for(std::chrono::seconds(30)), std::future_status::ready) << "a Describe waited for mu";
  for (const auto& r : reads.get()) EXPECT_TRUE(r.ok()) << r.status().ToString();
}

TEST_F(ElbServiceTest, CreateAppliesAwsDefaultsAndTheFirstFreeAddress) {
  Json r = Create();
  EXPECT_EQ(r, Json({{"DNSName", "127.200.200.1"}}));

  Json d = Describe();
  EXPECT_EQ(d["LoadBalancerName"], kName);
  EXPECT_EQ(d["DNSName"], "127.200.200.1");
  EXPECT_EQ(d["CanonicalHostedZoneName"], "127.200.200.1");
  EXPECT_EQ(d["CanonicalHostedZoneNameID"], "Z1H1FL5HABSF5");
  EXPECT_EQ(d["ListenerDescriptions"], Json::parse(R"([{"Listener": {"Protocol": "HTTP", "LoadBalancerPort": 80,
      "InstanceProtocol": "HTTP", "InstancePort": 8080}, "PolicyNames": []}])"));
  EXPECT_EQ(d["AvailabilityZones"], Json({kZoneA, kZoneB}));
  EXPECT_EQ(d["Instances"], Json::array());
  EXPECT_EQ(d["HealthCheck"], Json::parse(R"({"Target": "TCP:8080", "Interval": 30, "Timeout": 5,
      "UnhealthyThreshold": 2, "HealthyThreshold": 10})"));
  EXPECT_EQ(d["SourceSecurityGroup"], Json::parse(R"({"OwnerAlias": "amazon-elb", "GroupName": "amazon-elb-sg"})"));
  EXPECT_EQ(d["CreatedTime"], IsoTimeMillis(clock_.NowMillis()));
  EXPECT_EQ(d["Scheme"], "internet-facing");
  // Members in the order of the botocore model.
  std::vector<std::string> keys;
  for (auto it = d.begin(); it != d.end(); ++it) keys.push_back(it.key());
  EXPECT_EQ(keys, (std::vector<std::string>{"LoadBalancerName", "DNSName", "CanonicalHostedZoneName",
                                            "CanonicalHostedZoneNameID", "ListenerDescriptions", "Policies",
                                            "BackendServerDescriptions", "AvailabilityZones", "Subnets",
                                            "Instances", "HealthCheck", "SourceSecurityGroup", "SecurityGroups",
                                            "CreatedTime", "Scheme"}));

  Json doc = Stored();
  EXPECT_EQ(doc["Address"], "127.200.200.1");
  EXPECT_EQ(doc["AddressIndex"], 1);
  EXPECT_EQ(doc["ConfigVersion"], 1);
  EXPECT_EQ(doc["Deregistering"], Json::object());
  EXPECT_EQ(doc["Attributes"], Json::parse(R"({"CrossZoneLoadBalancing": {"Enabled": false},
      "ConnectionDraining": {"Enabled": false, "Timeout": 300}, "ConnectionSettings": {"IdleTimeout": 60},
      "AccessLog": {"Enabled": false}})"));
}

TEST_F(ElbServiceTest, CreateNormalisesProtocolsAndDefaultsTheInstanceProtocolToTheFamily) {
  Create(kName, {{"Listeners.member.1.Protocol", "http"},
                 {"Listeners.member.2.Protocol", "tcp"},
                 {"Listeners.member.2.LoadBalancerPort", "5432"},
                 {"Listeners.member.2.InstancePort", "5432"},
                 {"Scheme", "internal"}});
  Json listeners = Stored()["Listeners"];
  ASSERT_EQ(listeners.size(), 2u);
  EXPECT_EQ(listeners[0]["Protocol"], "HTTP");
  EXPECT_EQ(listeners[0]["InstanceProtocol"], "HTTP");
  EXPECT_EQ(listeners[1]["Protocol"], "TCP");
  EXPECT_EQ(listeners[1]["InstanceProtocol"], "TCP");
  EXPECT_EQ(Describe()["Scheme"], "internal");
}

TEST_F(ElbServiceTest, AddressesAreTheLowestFreeAndSkipThoseANodeStillHolds) {
  EXPECT_EQ(Create("a")["DNSName"], "127.200.200.1");
  EXPECT_EQ(Create("b")["DNSName"], "127.200.200.2");
  MustCall("DeleteLoadBalancer", {{"LoadBalancerName", "a"}});
  // A node of the deleted "a" is still shutting down on .1.
  ASSERT_TRUE(store_->Put(kind::kLoadBalancerNode, "a/us-west-2a",
                          {{"LoadBalancerName", "a"}, {"AvailabilityZone", kZoneA}, {"VipAddress", "127.200.200.1"}})
                  .ok());
  EXPECT_EQ(Create("c")["DNSName"], "127.200.200.3");
  ASSERT_TRUE(store_->Delete(kind::kLoadBalancerNode, "a/us-west-2a").ok());
  EXPECT_EQ(Create("d")["DNSName"], "127.200.200.1");
  EXPECT_EQ(Stored("d")["AddressIndex"], 1);
}

TEST_F(ElbServiceTest, RepeatedCreateWithTheSameConfigurationIsIdempotent) {
  Create();
  // Same listeners and zones, in another order.
  Json again = Create(kName, {{"AvailabilityZones.member.1", kZoneB}, {"AvailabilityZones.member.2", kZoneA}});
  EXPECT_EQ(again["DNSName"], "127.200.200.1");
  EXPECT_EQ(store_->Count(kind::kLoadBalancer), 1u);
  EXPECT_EQ(Stored()["ConfigVersion"], 1);
}

TEST_F(ElbServiceTest, CreateWithAnExistingNameAndOtherListenersIsDuplicateLoadBalancerName) {
  Create();
  auto r = Call("CreateLoadBalancer", CreateParams(kName, {{"Listeners.member.1.InstancePort", "9090"}}));
  ExpectError(r, "DuplicateLoadBalancerName",
              "Load Balancer named 'web' already exists and it is configured with different parameters.");
  EXPECT_EQ(Stored()["Listeners"][0]["InstancePort"], 8080);
}

TEST_F(ElbServiceTest, CreateRejectsBadNames) {
  for (const std::string& name : std::vector<std::string>{"-web", "web-", "web_1", "web.1", std::string(33, 'a')}) {
    auto r = Call("CreateLoadBalancer", CreateParams(name));
    ASSERT_FALSE(r.ok()) << name;
    EXPECT_EQ(r.status().code(), "ValidationError") << name;
  }
  auto r = Call("CreateLoadBalancer", {{"Listeners.member.1.Protocol", "HTTP"}});
  ExpectError(r, "ValidationError",
              "1 validation error detected: Value null at 'loadBalancerName' failed to satisfy constraint: Member "
              "must not be null");
  EXPECT_EQ(store_->Count(kind::kLoadBalancer), 0u);
  Create(std::string(32, 'a'));
  Create("Web-2-b");
}

TEST_F(ElbServiceTest, CreateRejectsBadListeners) {
  struct Case {
    FormParams overrides;
    std::string code;
    int http_status;
  };
  const std::vector<Case> cases = {
      {{{"Listeners.member.1.Protocol", "FTP"}}, "ValidationError", 400},
      {{{"Listeners.member.1.LoadBalancerPort", "0"}}, "ValidationError", 400},
      {{{"Listeners.member.1.LoadBalancerPort", "65536"}}, "ValidationError", 400},
      {{{"Listeners.member.1.InstancePort", "70000"}}, "ValidationError", 400},
      {{{"Listeners.member.1.InstancePort", "eighty"}}, "ValidationError", 400},
      {{{"Listeners.member.1.InstanceProtocol", "TCP"}}, "InvalidConfigurationRequest", 409},
      {{{"Listeners.member.1.Protocol", "TCP"}, {"Listeners.member.1.InstanceProtocol", "HTTP"}},
       "InvalidConfigurationRequest", 409},
      {{{"Listeners.member.1.Protocol", "HTTPS"}}, "UnsupportedProtocol", 400},
      {{{"Listeners.member.1.Protocol", "SSL"}}, "UnsupportedProtocol", 400},
      {{{"Listeners.member.1.InstanceProtocol", "HTTPS"}}, "UnsupportedProtocol", 400},
      {{{"Listeners.member.2.Protocol", "TCP"},
        {"Listeners.member.2.LoadBalancerPort", "80"},
        {"Listeners.member.2.InstancePort", "80"}},
       "DuplicateListener", 400},
  };
  for (const auto& c : cases) {
    auto r = Call("CreateLoadBalancer", CreateParams(kName, c.overrides));
    ASSERT_FALSE(r.ok()) << c.overrides.begin()->first << "=" << c.overrides.begin()->second;
    EXPECT_EQ(r.status().code(), c.code) << r.status().message();
    EXPECT_EQ(r.status().http_status(), c.http_status) << r.status().message();
  }
  FormParams no_listeners = CreateParams();
  for (auto it = no_listeners.begin(); it != no_listeners.end();) {
    it = it->first.rfind("Listeners.", 0) == 0 ? no_listeners.erase(it) : std::next(it);
  }
  ExpectError(Call("CreateLoadBalancer", no_listeners), "ValidationError",
              "1 validation error detected: Value null at 'listeners' failed to satisfy constraint: Member must not "
              "be null");
  auto https = Call("CreateLoadBalancer", CreateParams(kName, {{"Listeners.member.1.Protocol", "HTTPS"}}));
  EXPECT_EQ(https.status().message(), "HTTPS and SSL listeners are not supported by this region");
  EXPECT_EQ(store_->Count(kind::kLoadBalancer), 0u);
  // The same listener twice is one listener.
  Create(kName, {{"Listeners.member.2.Protocol", "HTTP"},
                 {"Listeners.member.2.LoadBalancerPort", "80"},
                 {"Listeners.member.2.InstancePort", "8080"}});
  EXPECT_EQ(Stored()["Listeners"].size(), 1u);
}

TEST_F(ElbServiceTest, CreateRejectsMissingOrUnknownZonesAndSubnets) {
  FormParams no_zones = CreateParams();
  no_zones.erase("AvailabilityZones.member.1");
  no_zones.erase("AvailabilityZones.member.2");
  ExpectError(Call("CreateLoadBalancer", no_zones), "ValidationError",
              "Either AvailabilityZones or SubnetIds must be specified");
  auto bad = Call("CreateLoadBalancer", CreateParams(kName, {{"AvailabilityZones.member.2", "us-west-2z"}}));
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), "InvalidConfigurationRequest");
  EXPECT_EQ(bad.status().http_status(), 409);
  EXPECT_NE(bad.status().message().find("us-west-2z"), std::string::npos);
  no_zones["Subnets.member.1"] = "subnet-12345678";
  ExpectError(Call("CreateLoadBalancer", no_zones), "ValidationError",
              "Subnets (VPC) are not supported; use AvailabilityZones");
  auto scheme = Call("CreateLoadBalancer", CreateParams(kName, {{"Scheme", "public"}}));
  EXPECT_EQ(scheme.status().code(), "InvalidScheme");
  EXPECT_EQ(store_->Count(kind::kLoadBalancer), 0u);
}

TEST_F(ElbServiceTest, CreateStopsAtTheLoadBalancerQuota) {
  for (int i = 0; i < elb::kMaxLoadBalancers; ++i) Create("lb-" + std::to_string(i));
  auto r = Call("CreateLoadBalancer", CreateParams("one-too-many"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), "TooManyLoadBalancers");
  EXPECT_EQ(store_->Count(kind::kLoadBalancer), static_cast<size_t>(elb::kMaxLoadBalancers));
  // Repeating an existing create is not a new load balancer.
  EXPECT_TRUE(Call("CreateLoadBalancer", CreateParams("lb-0")).ok());
}

// ---- Describe and Delete --------------------------------------------------------------------------------------

TEST_F(ElbServiceTest, DescribeLoadBalancersPagesWithMarker) {
  for (const char* n : {"e", "d", "c", "b", "a"}) Create(n);
  std::vector<std::string> seen;
  FormParams p = {{"PageSize", "2"}};
  for (int pages = 0; pages < 5; ++pages) {
    Json r = MustCall("DescribeLoadBalancers", p);
    for (const auto& d : r["LoadBalancerDescriptions"]) seen.push_back(d["LoadBalancerName"]);
    if (!r.contains("NextMarker")) break;
    EXPECT_EQ(r["LoadBalancerDescriptions"].size(), 2u);
    p["Marker"] = r["NextMarker"];
  }
  EXPECT_EQ(seen, (std::vector<std::string>{"a", "b", "c", "d", "e"}));

  Json named = MustCall("DescribeLoadBalancers", {{"LoadBalancerNames.member.1", "d"},
                                                  {"LoadBalancerNames.member.2", "b"}});
  EXPECT_EQ(named["LoadBalancerDescriptions"].size(), 2u);
  EXPECT_EQ(named["LoadBalancerDescriptions"][0]["LoadBalancerName"], "d");
  ExpectError(Call("DescribeLoadBalancers", {{"LoadBalancerNames.member.1", "zzz"}}), "LoadBalancerNotFound",
              "There is no ACTIVE Load Balancer named 'zzz'");
  EXPECT_EQ(Call("DescribeLoadBalancers", {{"PageSize", "0"}}).status().code(), "ValidationError");
  EXPECT_EQ(Call("DescribeLoadBalancers", {{"PageSize", "401"}}).status().code(), "ValidationError");
  EXPECT_EQ(Call("DescribeLoadBalancers", {{"Marker", "x"}}).status().code(), "ValidationError");
}

TEST_F(ElbServiceTest, DeleteIsIdempotent) {
  Create();
  EXPECT_EQ(MustCall("DeleteLoadBalancer", {{"LoadBalancerName", kName}}), Json::object());
  EXPECT_TRUE(Stored().is_null());
  EXPECT_TRUE(Call("DeleteLoadBalancer", {{"LoadBalancerName", kName}}).ok());
  ExpectError(Call("DescribeLoadBalancers", {{"LoadBalancerNames.member.1", kName}}), "LoadBalancerNotFound",
              "There is no ACTIVE Load Balancer named 'web'");
  EXPECT_EQ(MustCall("DescribeLoadBalancers", {})["LoadBalancerDescriptions"], Json::array());
}

// ---- listeners and health check -------------------------------------------------------------------------------

TEST_F(ElbServiceTest, ListenersAreAddedIdempotentlyAndDeletedByPort) {
  Create();
  FormParams add = {{"LoadBalancerName", kName},
                    {"Listeners.member.1.Protocol", "TCP"},
                    {"Listeners.member.1.LoadBalancerPort", "9000"},
                    {"Listeners.member.1.InstancePort", "9001"}};
  EXPECT_EQ(MustCall("CreateLoadBalancerListeners", add), Json::object());
  EXPECT_EQ(Stored()["Listeners"].size(), 2u);
  EXPECT_EQ(Stored()["ConfigVersion"], 2);
  MustCall("CreateLoadBalancerListeners", add);
  EXPECT_EQ(Stored()["ConfigVersion"], 2) << "an identical listener is a no-op";
  add["Listeners.member.1.InstancePort"] = "9002";
  ExpectRefused("CreateLoadBalancerListeners", add, "DuplicateListener");
  add["Listeners.member.1.Protocol"] = "SSL";
  ExpectRefused("CreateLoadBalancerListeners", add, "UnsupportedProtocol");
  ExpectRefused("CreateLoadBalancerListeners", {{"LoadBalancerName", kName}}, "ValidationError");
  add["LoadBalancerName"] = "nope";
  add["Listeners.member.1.Protocol"] = "TCP";
  EXPECT_EQ(Call("CreateLoadBalancerListeners", add).status().code(), "LoadBalancerNotFound");

  MustCall("DeleteLoadBalancerListeners",
           {{"LoadBalancerName", kName}, {"LoadBalancerPorts.member.1", "80"}, {"LoadBalancerPorts.member.2", "81"}});
  Json listeners = Stored()["Listeners"];
  ASSERT_EQ(listeners.size(), 1u);
  EXPECT_EQ(listeners[0]["LoadBalancerPort"], 9000);
  EXPECT_EQ(Stored()["ConfigVersion"], 3);
}

TEST_F(ElbServiceTest, ConfigureHealthCheckValidatesAndReturnsTheCheck) {
  Create();
  FormParams p = {{"LoadBalancerName", kName},
                  {"HealthCheck.Target", "http:8080/health?deep=1"},
                  {"HealthCheck.Interval", "10"},
                  {"HealthCheck.Timeout", "3"},
                  {"HealthCheck.UnhealthyThreshold", "3"},
                  {"HealthCheck.HealthyThreshold", "2"}};
  Json r = MustCall("ConfigureHealthCheck", p);
  Json expected = Json::parse(R"({"Target": "HTTP:8080/health?deep=1", "Interval": 10, "Timeout": 3,
      "UnhealthyThreshold": 3, "HealthyThreshold": 2})");
  EXPECT_EQ(r, Json({{"HealthCheck", expected}}));
  EXPECT_EQ(Describe()["HealthCheck"], expected);
  EXPECT_EQ(Stored()["ConfigVersion"], 2);

  const std::vector<std::pair<std::string, std::string>> bad = {
      {"HealthCheck.Target", "HTTP:8080"},          {"HealthCheck.Target", "TCP:8080/health"},
      {"HealthCheck.Target", "UDP:53"},             {"HealthCheck.Target", "TCP:0"},
      {"HealthCheck.Target", "TCP:65536"},          {"HealthCheck.Target", "TCP:http"},
      {"HealthCheck.Target", "8080"},               {"HealthCheck.Target", "HTTP:80/" + std::string(1024, 'x')},
      {"HealthCheck.Interval", "4"},                {"HealthCheck.Interval", "301"},
      {"HealthCheck.Timeout", "1"},                 {"HealthCheck.Timeout", "10"},
      {"HealthCheck.UnhealthyThreshold", "1"},      {"HealthCheck.HealthyThreshold", "11"},
  };
  for (const auto& [key, value] : bad) {
    FormParams q = p;
    q[key] = value;
    SCOPED_TRACE(key + "=" + value);
    ExpectRefused("ConfigureHealthCheck", q, "ValidationError");
  }
  FormParams q = p;
  q["HealthCheck.Timeout"] = "10";
  EXPECT_EQ(Call("ConfigureHealthCheck", q).status().message(),
            "HealthCheck Timeout (10) must be less than the Interval (10)");
  q = p;
  q["HealthCheck.Interval"] = "4";
  EXPECT_EQ(Call("ConfigureHealthCheck", q).status().message(),
            "1 validation error detected: Value '4' at 'healthCheck.interval' failed to satisfy constraint: Member "
            "must have value greater than or equal to 5");
  q = p;
  q.erase("HealthCheck.Target");
  ExpectRefused("ConfigureHealthCheck", q, "ValidationError");
  q = p;
  q["HealthCheck.Target"] = "HTTP:80/" + std::string(1023, 'x');
  EXPECT_TRUE(Call("ConfigureHealthCheck", q).ok()) << "a 1024-character path is allowed";
  q["LoadBalancerName"] = "nope";
  EXPECT_EQ(Call("ConfigureHealthCheck", q).status().code(), "LoadBalancerNotFound");
}

// ---- instances --------------------------------------------------------------------------------------------------

TEST_F(ElbServiceTest, RegisterReturnsTheRegisteredInstancesAndRefusesUnknownOrTerminatedOnes) {
  Create();
  const std::string a = AddInstance(kZoneA), b = AddInstance(kZoneB);
  const std::string gone = AddInstance(kZoneA, instance_state::kTerminated);
  const std::string leaving = AddInstance(kZoneA, instance_state::kShuttingDown);
  EXPECT_EQ(Ids(Register({a})["Instances"]), (std::vector<std::string>{a}));
  EXPECT_EQ(Ids(Register({b, a, b})["Instances"]), (std::vector<std::string>{a, b}));
  EXPECT_EQ(Ids(Describe()["Instances"]), (std::vector<std::string>{a, b}));
  EXPECT_EQ(Stored()["ConfigVersion"], 3);
  Register({a, b});
  EXPECT_EQ(Stored()["ConfigVersion"], 3) << "registering the registered writes nothing";

  ExpectError(Call("RegisterInstancesWithLoadBalancer", InstanceParams(kName, {a, "i-00000000000000000"})),
              "InvalidInstance", "Could not find EC2 instance i-00000000000000000.");
  ExpectError(Call("RegisterInstancesWithLoadBalancer", InstanceParams(kName, {gone})), "InvalidInstance",
              "EC2 instance " + gone + " is not in running state.");
  ExpectRefused("RegisterInstancesWithLoadBalancer", InstanceParams(kName, {leaving}), "InvalidInstance");
  ExpectRefused("RegisterInstancesWithLoadBalancer", InstanceParams(kName, {}), "ValidationError");
  ExpectError(Call("RegisterInstancesWithLoadBalancer", InstanceParams("nope", {a})), "LoadBalancerNotFound",
              "There is no ACTIVE Load Balancer named 'nope'");
  // A pending instance may be registered (Auto Scaling registers before InService).
  const std::string starting = AddInstance(kZoneB, instance_state::kPending);
  EXPECT_EQ(Ids(Register({starting})["Instances"]), (std::vector<std::string>{a, b, starting}));
}

TEST_F(ElbServiceTest, DeregisterWithoutDrainingDropsAtOnce) {
  Create();
  const std::string a = AddInstance(kZoneA), b = AddInstance(kZoneB), other = AddInstance(kZoneA);
  Register({a, b});
  Json r = MustCall("DeregisterInstancesFromLoadBalancer", InstanceParams(kName, {a, other}));
  EXPECT_EQ(Ids(r["Instances"]), (std::vector<std::string>{b}));
  EXPECT_EQ(Stored()["Deregistering"], Json::object());
  EXPECT_EQ(Stored()["ConfigVersion"], 3);
  ExpectRefused("DeregisterInstancesFromLoadBalancer", InstanceParams(kName, {"i-00000000000000000"}),
                "InvalidInstance");
  Json health = MustCall("DescribeInstanceHealth", InstanceParams(kName, {a}));
  EXPECT_EQ(health["InstanceStates"][0]["State"], "OutOfService");
  EXPECT_EQ(health["InstanceStates"][0]["Description"], "Instance is not currently registered with the LoadBalancer.");
}

TEST_F(ElbServiceTest, DeregisterWithDrainingKeepsTheInstanceInServiceUntilTheTimeout) {
  Create();
  MustCall("ModifyLoadBalancerAttributes", {{"LoadBalancerName", kName},
                                            {"LoadBalancerAttributes.ConnectionDraining.Enabled", "true"},
                                            {"LoadBalancerAttributes.ConnectionDraining.Timeout", "60"}});
  const std::string a = AddInstance(kZoneA), b = AddInstance(kZoneB);
  Register({a, b});
  Json r = MustCall("DeregisterInstancesFromLoadBalancer", InstanceParams(kName, {a}));
  EXPECT_EQ(Ids(r["Instances"]), (std::vector<std::string>{b}));
  EXPECT_EQ(Stored()["Deregistering"], Json({{a, {{"Until", clock_.NowMillis() + 60'000}}}}));

  // Default: every registered instance, then the draining ones.
  WriteStatus(kZoneB, {{b, lb::kHealthHealthy}});
  Json states = MustCall("DescribeInstanceHealth", {{"LoadBalancerName", kName}})["InstanceStates"];
  EXPECT_EQ(states, Json::parse(R"([
      {"InstanceId": ")" + b + R"(", "State": "InService", "ReasonCode": "N/A", "Description": "N/A"},
      {"InstanceId": ")" + a + R"(", "State": "InService", "ReasonCode": "N/A",
       "Description": "Instance deregistration currently in progress."}])"));

  // A second deregistration does not extend the deadline; registering again ends the draining.
  clock_.Advance(10'000);
  MustCall("DeregisterInstancesFromLoadBalancer", InstanceParams(kName, {a}));
  EXPECT_EQ(Stored()["Deregistering"][a]["Until"], clock_.NowMillis() - 10'000 + 60'000);
  EXPECT_EQ(Ids(Register({a})["Instances"]), (std::vector<std::string>{b, a}));
  EXPECT_EQ(Stored()["Deregistering"], Json::object());
}

TEST_F(ElbServiceTest, DescribeInstanceHealthReportsEachInstanceAndRefusesUnknownIds) {
  Create();
  const std::string up = AddInstance(kZoneA), down = AddInstance(kZoneB), starting = AddInstance(kZoneA);
  const std::string elsewhere = AddInstance(kZoneC), unregistered = AddInstance(kZoneA);
  Register({up, down, starting, elsewhere});
  WriteStatus(kZoneA, {{up, lb::kHealthHealthy}, {starting, lb::kHealthUnknown}});
  WriteStatus(kZoneB, {{down, lb::kHealthUnhealthy}});
  Json states = MustCall("DescribeInstanceHealth", InstanceParams(kName, {up, down, starting, elsewhere,
                                                                          unregistered}))["InstanceStates"];
  ASSERT_EQ(states.size(), 5u);
  auto summary = [](const Json& s) {
    return s["State"].get<std::string>() + "/" + s["ReasonCode"].get<std::string>();
  };
  EXPECT_EQ(summary(states[0]), "InService/N/A");
  EXPECT_EQ(summary(states[1]), "OutOfService/Instance");
  EXPECT_EQ(summary(states[2]), "OutOfService/ELB");
  EXPECT_EQ(summary(states[3]), "OutOfService/ELB");
  EXPECT_EQ(summary(states[4]), "OutOfService/N/A");
  EXPECT_EQ(states[1]["Description"],
            "Instance has failed at least the UnhealthyThreshold number of health checks consecutively.");

  ExpectError(Call("DescribeInstanceHealth", InstanceParams(kName, {up, "i-00000000000000000"})), "InvalidInstance",
              "Could not find EC2 instance i-00000000000000000.");
  ExpectError(Call("DescribeInstanceHealth", {{"LoadBalancerName", "nope"}}), "LoadBalancerNotFound",
              "There is no ACTIVE Load Balancer named 'nope'");
}

// ---- attributes ---------------------------------------------------------------------------------------------------

TEST_F(ElbServiceTest, AttributesRoundTrip) {
  Create();
  Json defaults = MustCall("DescribeLoadBalancerAttributes", {{"LoadBalancerName", kName}});
  EXPECT_EQ(defaults, Json::parse(R"({"LoadBalancerAttributes": {
      "CrossZoneLoadBalancing": {"Enabled": false}, "AccessLog": {"Enabled": false},
      "ConnectionDraining": {"Enabled": false, "Timeout": 300}, "ConnectionSettings": {"IdleTimeout": 60},
      "AdditionalAttributes": [{"Key": "elb.http.desyncmitigationmode", "Value": "defensive"}]}})"));

  Json r = MustCall("ModifyLoadBalancerAttributes",
                    {{"LoadBalancerName", kName},
                     {"LoadBalancerAttributes.CrossZoneLoadBalancing.Enabled", "true"},
                     {"LoadBalancerAttributes.ConnectionDraining.Enabled", "true"},
                     {"LoadBalancerAttributes.ConnectionDraining.Timeout", "3600"},
                     {"LoadBalancerAttributes.ConnectionSettings.IdleTimeout", "1"},
                     {"LoadBalancerAttributes.AccessLog.Enabled", "true"},
                     {"LoadBalancerAttributes.AccessLog.S3BucketName", "logs"},
                     {"LoadBalancerAttributes.AccessLog.EmitInterval", "5"},
                     {"LoadBalancerAttributes.AccessLog.S3BucketPrefix", "web/"},
                     {"LoadBalancerAttributes.AdditionalAttributes.member.1.Key", "elb.http.desyncmitigationmode"},
                     {"LoadBalancerAttributes.AdditionalAttributes.member.1.Value", "strictest"}});
  Json expected = Json::parse(R"({
      "CrossZoneLoadBalancing": {"Enabled": true},
      "AccessLog": {"Enabled": true, "S3BucketName": "logs", "EmitInterval": 5, "S3BucketPrefix": "web/"},
      "ConnectionDraining": {"Enabled": true, "Timeout": 3600}, "ConnectionSettings": {"IdleTimeout": 1},
      "AdditionalAttributes": [{"Key": "elb.http.desyncmitigationmode", "Value": "strictest"}]})");
  EXPECT_EQ(r, Json({{"LoadBalancerName", kName}, {"LoadBalancerAttributes", expected}}));
  EXPECT_EQ(MustCall("DescribeLoadBalancerAttributes", {{"LoadBalancerName", kName}}),
            Json({{"LoadBalancerAttributes", expected}}));
  EXPECT_EQ(Stored()["ConfigVersion"], 2);

  // Structures not given keep their values; a disabled access log forgets its bucket.
  MustCall("ModifyLoadBalancerAttributes", {{"LoadBalancerName", kName},
                                            {"LoadBalancerAttributes.ConnectionDraining.Enabled", "false"},
                                            {"LoadBalancerAttributes.AccessLog.Enabled", "false"}});
  Json attrs = MustCall("DescribeLoadBalancerAttributes", {{"LoadBalancerName", kName}})["LoadBalancerAttributes"];
  EXPECT_EQ(attrs["ConnectionDraining"], Json::parse(R"({"Enabled": false, "Timeout": 3600})"));
  EXPECT_EQ(attrs["AccessLog"], Json::parse(R"({"Enabled": false})"));
  EXPECT_EQ(attrs["CrossZoneLoadBalancing"]["Enabled"], true);
}

TEST_F(ElbServiceTest, AttributesOutOfRangeChangeNothing) {
  Create();
  const std::string a = "LoadBalancerAttributes.";
  const std::vector<FormParams> bad = {
      {{a + "ConnectionDraining.Enabled", "true"}, {a + "ConnectionDraining.Timeout", "0"}},
      {{a + "ConnectionDraining.Enabled", "true"}, {a + "ConnectionDraining.Timeout", "3601"}},
      {{a + "ConnectionDraining.Timeout", "30"}},
      {{a + "ConnectionSettings.IdleTimeout", "0"}},
      {{a + "ConnectionSettings.IdleTimeout", "3601"}},
      {{a + "CrossZoneLoadBalancing.Enabled", "maybe"}},
      {{a + "AccessLog.Enabled", "true"}, {a + "AccessLog.S3BucketName", "b"}, {a + "AccessLog.EmitInterval", "10"}},
      // A valid change alongside an invalid one is not applied either.
      {{a + "CrossZoneLoadBalancing.Enabled", "true"}, {a + "ConnectionSettings.IdleTimeout", "0"}},
  };
  for (FormParams p : bad) {
    SCOPED_TRACE(p.rbegin()->first + "=" + p.rbegin()->second);
    p["LoadBalancerName"] = kName;
    ExpectRefused("ModifyLoadBalancerAttributes", p, "ValidationError");
  }
  ExpectRefused("ModifyLoadBalancerAttributes",
                {{"LoadBalancerName", kName}, {a + "AccessLog.Enabled", "true"}}, "InvalidConfigurationRequest", 409);
  ExpectRefused("ModifyLoadBalancerAttributes",
                {{"LoadBalancerName", kName},
                 {a + "AdditionalAttributes.member.1.Key", "elb.http.nosuchthing"},
                 {a + "AdditionalAttributes.member.1.Value", "on"}},
                "LoadBalancerAttributeNotFound");
  ExpectRefused("ModifyLoadBalancerAttributes",
                {{"LoadBalancerName", kName},
                 {a + "AdditionalAttributes.member.1.Key", "elb.http.desyncmitigationmode"},
                 {a + "AdditionalAttributes.member.1.Value", "lenient"}},
                "ValidationError");
  EXPECT_EQ(Call("DescribeLoadBalancerAttributes", {{"LoadBalancerName", "nope"}}).status().code(),
            "LoadBalancerNotFound");
}

// ---- Availability Zones ---------------------------------------------------------------------------------------

TEST_F(ElbServiceTest, EnableAndDisableAvailabilityZones) {
  Create();
  Json r = MustCall("EnableAvailabilityZonesForLoadBalancer",
                    {{"LoadBalancerName", kName}, {"AvailabilityZones.member.1", kZoneC},
                     {"AvailabilityZones.member.2", kZoneA}});
  EXPECT_EQ(r, Json({{"AvailabilityZones", {kZoneA, kZoneB, kZoneC}}}));
  EXPECT_EQ(Stored()["ConfigVersion"], 2);
  ExpectRefused("EnableAvailabilityZonesForLoadBalancer",
                {{"LoadBalancerName", kName}, {"AvailabilityZones.member.1", "us-east-1a"}},
                "InvalidConfigurationRequest", 409);

  r = MustCall("DisableAvailabilityZonesForLoadBalancer",
               {{"LoadBalancerName", kName}, {"AvailabilityZones.member.1", kZoneA}});
  EXPECT_EQ(r, Json({{"AvailabilityZones", {kZoneB, kZoneC}}}));
  EXPECT_EQ(Describe()["AvailabilityZones"], Json({kZoneB, kZoneC}));
  ExpectRefused("DisableAvailabilityZonesForLoadBalancer",
                {{"LoadBalancerName", kName}, {"AvailabilityZones.member.1", kZoneB},
                 {"AvailabilityZones.member.2", kZoneC}},
                "InvalidConfigurationRequest", 409);
  ExpectRefused("DisableAvailabilityZonesForLoadBalancer", {{"LoadBalancerName", kName}}, "ValidationError");
  EXPECT_EQ(Call("EnableAvailabilityZonesForLoadBalancer",
                 {{"LoadBalancerName", "nope"}, {"AvailabilityZones.member.1", kZoneA}}).status().code(),
            "LoadBalancerNotFound");
}

// ---- tags -----------------------------------------------------------------------------------------------------

TEST_F(ElbServiceTest, TagsAreSetReplacedRemovedAndLimitedToTen) {
  Create(kName, {{"Tags.member.1.Key", "team"}, {"Tags.member.1.Value", "web"}, {"Tags.member.2.Key", "empty"}});
  Create("other");
  Json r = MustCall("DescribeTags", {{"LoadBalancerNames.member.1", kName}, {"LoadBalancerNames.member.2", "other"}});
  EXPECT_EQ(r, Json::parse(R"({"TagDescriptions": [
      {"LoadBalancerName": "web", "Tags": [{"Key": "team", "Value": "web"}, {"Key": "empty", "Value": ""}]},
      {"LoadBalancerName": "other", "Tags": []}]})"));

  FormParams add = {
      {"LoadBalancerNames.member.1", kName}, {"Tags.member.1.Key", "team"}, {"Tags.member.1.Value", "api"}};
  for (int i = 2; i <= 9; ++i) add["Tags.member." + std::to_string(i) + ".Key"] = "k" + std::to_string(i);
  EXPECT_EQ(MustCall("AddTags", add), Json::object());  // team replaced, 8 new: 10 in all
  EXPECT_EQ(Stored()["Tags"].size(), 10u);
  EXPECT_EQ(Stored()["Tags"][0], Json({{"Key", "team"}, {"Value", "api"}}));
  EXPECT_EQ(Stored()["ConfigVersion"], 1) << "tags are nothing a node needs";
  ExpectRefused("AddTags", {{"LoadBalancerNames.member.1", kName}, {"Tags.member.1.Key", "eleventh"}}, "TooManyTags");
  ExpectRefused("AddTags",
                {{"LoadBalancerNames.member.1", kName}, {"Tags.member.1.Key", "x"}, {"Tags.member.2.Key", "x"}},
                "DuplicateTagKeys");
  ExpectRefused("AddTags", {{"LoadBalancerNames.member.1", kName}, {"Tags.member.1.Key", std::string(129, 'k')}},
                "ValidationError");
  EXPECT_EQ(Call("AddTags", {{"LoadBalancerNames.member.1", "nope"}, {"Tags.member.1.Key", "x"}}).status().code(),
            "LoadBalancerNotFound");

  MustCall("RemoveTags", {{"LoadBalancerNames.member.1", kName}, {"Tags.member.1.Key", "team"},
                          {"Tags.member.2.Key", "not-there"}});
  EXPECT_EQ(Stored()["Tags"].size(), 9u);
  EXPECT_EQ(Stored()["Tags"][0]["Key"], "empty");

  FormParams many;
  for (int i = 1; i <= 21; ++i) many["LoadBalancerNames.member." + std::to_string(i)] = kName;
  EXPECT_EQ(Call("DescribeTags", many).status().code(), "ValidationError");
  EXPECT_EQ(Call("DescribeTags", {}).status().code(), "ValidationError");
  EXPECT_EQ(Call("DescribeTags", {{"LoadBalancerNames.member.1", "nope"}}).status().code(), "LoadBalancerNotFound");
}

TEST_F(ElbServiceTest, CreateWithMoreThanTenTagsIsRefused) {
  FormParams p;
  for (int i = 1; i <= 11; ++i) p["Tags.member." + std::to_string(i) + ".Key"] = "k" + std::to_string(i);
  auto r = Call("CreateLoadBalancer", CreateParams(kName, p));
  EXPECT_EQ(r.status().code(), "TooManyTags");
  EXPECT_EQ(store_->Count(kind::kLoadBalancer), 0u);
}

// ---- the wire -------------------------------------------------------------------------------------------------

TEST_F(ElbServiceTest, ResultsRenderAsQueryXml) {
  Create();
  ApiRequest req;
  req.action = "DescribeLoadBalancers";
  req.request_id = "rid";
  HttpReply reply = RenderResult(ElbApi(&ctx_).info, req, MustCall("DescribeLoadBalancers", {}));
  EXPECT_NE(reply.body.find("<DescribeLoadBalancersResponse "
                            "xmlns=\"http://elasticloadbalancing.amazonaws.com/doc/2012-06-01/\">"
                            "<DescribeLoadBalancersResult><LoadBalancerDescriptions><member>"
                            "<LoadBalancerName>web</LoadBalancerName>"),
            std::string::npos)
      << reply.body;
  EXPECT_NE(reply.body.find("<AvailabilityZones><member>us-west-2a</member><member>us-west-2b</member>"
                            "</AvailabilityZones><Subnets></Subnets>"),
            std::string::npos)
      << reply.body;
}

}  // namespace
}  // namespace autopipe

namespace autopipe {
namespace {

TEST(ClassicLbHostedZoneIdTest, EachRegionHasItsOwnZone) {
  EXPECT_STREQ(ClassicLbHostedZoneId("us-west-2"), "Z1H1FL5HABSF5");
  EXPECT_STREQ(ClassicLbHostedZoneId("us-east-1"), "Z35SXDOTRQ7X7K");
  EXPECT_STREQ(ClassicLbHostedZoneId("eu-west-1"), "Z32O12XQLNTSW2");
  EXPECT_STREQ(ClassicLbHostedZoneId("ap-northeast-2"), "ZWKZPGTI48KDX");
}

}  // namespace
}  // namespace autopipe

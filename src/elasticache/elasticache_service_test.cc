// The ElastiCache API handlers through ApiRouter::Invoke, over an in-memory store and fake time. No controller
// pass is run: these tests look at what the API validates, writes and answers (the nodes are real redis-server
// processes, exercised by tests/e2e/test_elasticache.py).
#include "elasticache/elasticache_service.h"

#include <chrono>
#include <map>
#include <set>
#include <string>

#include <gtest/gtest.h>

#include "ec2/vpc.h"
#include "elasticache/cache_subnet_groups.h"
#include "elasticache/replication_groups.h"
#include "region/region_fixture.h"

namespace autopipe {
namespace {

class ElastiCacheServiceTest : public RegionFixture {
 protected:
  void SetUp() override {
    WireRegion({.auto_scaling = false, .load_balancing = false, .service = "elasticache"});
  }

  // The seed's call, corrected: CacheNodeType, a cluster-mode parameter group, AZs per node group.
  static FormParams SeedParams(const FormParams& overrides = {}) {
    FormParams p = {{"ReplicationGroupId", "auto-pipeline-redis"},
                    {"ReplicationGroupDescription", "Auto Pipeline Redis Cluster"},
                    {"NumNodeGroups", "2"},
                    {"ReplicasPerNodeGroup", "2"},
                    {"CacheNodeType", "cache.m5.large"},
                    {"Engine", "redis"},
                    {"CacheParameterGroupName", "default.redis5.0.cluster.on"},
                    {"AutomaticFailoverEnabled", "true"},
                    {"Port", "6379"}};
    const char* primary[] = {"us-west-2a", "us-west-2b"};
    const char* replicas[] = {"us-west-2b", "us-west-2a"};
    for (int i = 0; i < 2; ++i) {
      const std::string k = "NodeGroupConfiguration.NodeGroupConfiguration." + std::to_string(i + 1) + ".";
      p[k + "PrimaryAvailabilityZone"] = primary[i];
      p[k + "ReplicaAvailabilityZones.AvailabilityZone.1"] = replicas[i];
      p[k + "ReplicaAvailabilityZones.AvailabilityZone.2"] = replicas[i];
    }
    for (const auto& [k, v] : overrides) {
      if (v == "<erase>") {
        p.erase(k);
      } else {
        p[k] = v;
      }
    }
    return p;
  }

  void ExpectRefused(const FormParams& params, int http, const std::string& code, const std::string& message = "") {
    auto r = Call("CreateReplicationGroup", params);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), code);
    EXPECT_EQ(r.status().http_status(), http);
    if (!message.empty()) {
      EXPECT_EQ(r.status().message(), message);
    }
    EXPECT_EQ(store_->Count(kind::kCacheReplicationGroup), 0u) << "a refused call must change nothing";
    EXPECT_EQ(store_->Count(kind::kCacheNode), 0u);
  }
};

TEST_F(ElastiCacheServiceTest, MultiAzIsWhatWasAskedFor) {
  Json rg = MustCall("CreateReplicationGroup", SeedParams({{"MultiAZEnabled", "true"}}))["ReplicationGroup"];
  EXPECT_EQ(rg["MultiAZ"], "enabled");
}

TEST_F(ElastiCacheServiceTest, SeedCallCreatesTwoShardsOfThreeNodes) {
  Json rg = MustCall("CreateReplicationGroup", SeedParams())["ReplicationGroup"];
  EXPECT_EQ(rg["Status"], "creating");
  EXPECT_EQ(rg["ClusterEnabled"], true);
  EXPECT_EQ(rg["AutomaticFailover"], "enabled");
  EXPECT_EQ(rg["MultiAZ"], "disabled");  // MultiAZEnabled was not given: false, as on AWS
  EXPECT_EQ(rg["ConfigurationEndpoint"]["Address"], "127.200.220.1");
  EXPECT_EQ(rg["ConfigurationEndpoint"]["Port"], 6379);
  ASSERT_EQ(rg["NodeGroups"].size(), 2u);
  EXPECT_EQ(rg["NodeGroups"][0]["NodeGroupId"], "0001");
  EXPECT_EQ(rg["NodeGroups"][0]["Slots"], "0-8191");
  EXPECT_EQ(rg["NodeGroups"][1]["Slots"], "8192-16383");
  EXPECT_EQ(rg["MemberClusters"].size(), 6u);
  EXPECT_EQ(rg["MemberClusters"][0], "auto-pipeline-redis-0001-001");
  EXPECT_EQ(rg["NodeGroups"][1]["NodeGroupMembers"][0]["PreferredAvailabilityZone"], "us-west-2b");
  EXPECT_EQ(rg["NodeGroups"][1]["NodeGroupMembers"][1]["PreferredAvailabilityZone"], "us-west-2a");

  std::set<std::string> addresses;
  for (const auto& doc : store_->List(kind::kCacheNode)) {
    addresses.insert((*doc)["Address"].get<std::string>());
    // Each node's address is in its own AZ's part of the region's block (AZ index + 1 in the third octet's
    // upper bits is ec2's business; here: distinct and in the block).
    EXPECT_EQ((*doc)["Address"].get<std::string>().rfind("127.200.", 0), 0u);
    EXPECT_EQ((*doc)["Status"], "creating");
  }
  EXPECT_EQ(addresses.size(), 6u);

  auto clusters = MustCall("DescribeCacheClusters", {{"ShowCacheNodeInfo", "true"}})["CacheClusters"];
  ASSERT_EQ(clusters.size(), 6u);
  EXPECT_EQ(clusters[0]["CacheNodes"][0]["CacheNodeId"], "0001");
  EXPECT_EQ(clusters[0]["ReplicationGroupId"], "auto-pipeline-redis");
  EXPECT_FALSE(MustCall("DescribeCacheClusters", {})["CacheClusters"][0].contains("CacheNodes"));

  auto again = Call("CreateReplicationGroup", SeedParams());
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.status().code(), "ReplicationGroupAlreadyExists");
}

TEST_F(ElastiCacheServiceTest, UncorrectedParameterGroupIsRefusedAsAwsDoes) {
  ExpectRefused(SeedParams({{"CacheParameterGroupName", "default.redis5.0"}}), 400, "InvalidParameterCombination",
                "Cluster mode should be enabled in parameter group, but found it is disabled.");
}

TEST_F(ElastiCacheServiceTest, ClusterModeByClusterModeEnabled) {
  Json rg = MustCall("CreateReplicationGroup",
                     SeedParams({{"CacheParameterGroupName", "<erase>"}, {"ClusterMode", "enabled"}}));
  rg = rg["ReplicationGroup"];
  EXPECT_EQ(rg["ClusterEnabled"], true);
  EXPECT_EQ(rg["NodeGroups"].size(), 2u);
}

TEST_F(ElastiCacheServiceTest, BadInputGetsElastiCacheErrors) {
  ExpectRefused(SeedParams({{"AutomaticFailoverEnabled", "false"}}), 400, "InvalidParameterValue",
                "Redis with cluster mode enabled cannot be created with auto failover turned off.");
  ExpectRefused(SeedParams({{"ReplicasPerNodeGroup", "6"}}), 400, "InvalidParameterValue");
  ExpectRefused(SeedParams({{"ReplicationGroupId", "1bad"}}), 400, "InvalidParameterValue");
  ExpectRefused(SeedParams({{"ReplicationGroupId", "bad--id"}}), 400, "InvalidParameterValue");
  ExpectRefused(SeedParams({{"CacheParameterGroupName", "nope"}}), 404, "CacheParameterGroupNotFound");
  ExpectRefused(SeedParams({{"NumNodeGroups", "3"}}), 400, "InvalidParameterCombination");
  ExpectRefused(SeedParams({{"CacheNodeType", "<erase>"}}), 400, "InvalidParameterValue");
  ExpectRefused(SeedParams({{"NodeGroupConfiguration.NodeGroupConfiguration.1.PrimaryAvailabilityZone", "mars-1a"}}),
                400, "InvalidParameterValue");
  // Slots: overlapping, incomplete, given for only one group, malformed.
  const std::string s1 = "NodeGroupConfiguration.NodeGroupConfiguration.1.Slots";
  const std::string s2 = "NodeGroupConfiguration.NodeGroupConfiguration.2.Slots";
  ExpectRefused(SeedParams({{s1, "0-9000"}, {s2, "8192-16383"}}), 400, "InvalidParameterValue");
  ExpectRefused(SeedParams({{s1, "0-8000"}, {s2, "8192-16383"}}), 400, "InvalidParameterValue");
  ExpectRefused(SeedParams({{s1, "0-8191"}}), 400, "InvalidParameterValue");
  ExpectRefused(SeedParams({{s1, "x"}, {s2, "8192-16383"}}), 400, "InvalidParameterValue");
  ExpectRefused(SeedParams({{"AuthToken", "short"}}), 400, "InvalidParameterValue");
  ExpectRefused({{"ReplicationGroupDescription", "d"}, {"CacheNodeType", "cache.t3.micro"}}, 400, "MissingParameter");
}

TEST_F(ElastiCacheServiceTest, AuthTokenNeedsTransitEncryptionAndAwsRules) {
  ExpectRefused(SeedParams({{"AuthToken", "Valid-token-0123456789"}}), 400, "InvalidParameterValue",
                "The AUTH token is only supported when encryption-in-transit is enabled");
  for (const char* bad : {"short-token", "has-an-at-sign@-0123456789", "has/a/slash/0123456789",
                          "has\"quote\"0123456789", "has a space 0123456789", "percent%-0123456789"}) {
    ExpectRefused(SeedParams({{"TransitEncryptionEnabled", "true"}, {"AuthToken", bad}}), 400,
                  "InvalidParameterValue", "Invalid AuthToken provided.");
  }
  ExpectRefused(SeedParams({{"TransitEncryptionEnabled", "true"}, {"AuthToken", std::string(129, 'a')}}), 400,
                "InvalidParameterValue", "Invalid AuthToken provided.");
  ExpectRefused(SeedParams({{"TransitEncryptionMode", "preferred"}, {"TransitEncryptionEnabled", "true"}}), 400,
                "InvalidParameterValue");
  ExpectRefused(SeedParams({{"TransitEncryptionMode", "required"}}), 400, "InvalidParameterCombination");
}

TEST_F(ElastiCacheServiceTest, TransitEncryptionAndAuthTokenAreShownNeverTheToken) {
  const std::string token = "Good-token-<#$^&!>-0123";
  Json rg = MustCall("CreateReplicationGroup", SeedParams({{"TransitEncryptionEnabled", "true"},
                                                           {"AtRestEncryptionEnabled", "true"},
                                                           {"AuthToken", token}}))["ReplicationGroup"];
  EXPECT_EQ(rg["TransitEncryptionEnabled"], true);
  EXPECT_EQ(rg["TransitEncryptionMode"], "required");
  EXPECT_EQ(rg["AtRestEncryptionEnabled"], true);
  EXPECT_EQ(rg["AuthTokenEnabled"], true);
  EXPECT_TRUE(rg.contains("AuthTokenLastModifiedDate"));
  EXPECT_EQ(rg.dump().find(token), std::string::npos);
  auto clusters = MustCall("DescribeCacheClusters", {});
  EXPECT_EQ(clusters["CacheClusters"][0]["TransitEncryptionEnabled"], true);
  EXPECT_EQ(clusters.dump().find(token), std::string::npos);
  Json doc = *store_->Get(kind::kCacheReplicationGroup, "auto-pipeline-redis");
  EXPECT_EQ(doc["AuthTokens"], Json::array({token}));
}

TEST_F(ElastiCacheServiceTest, AuthTokenRotateSetDelete) {
  const std::string a = "Token-A-0123456789abcdef", b = "Token-B-0123456789abcdef", c = "Token-C-0123456789abc";
  MustCall("CreateReplicationGroup", SeedParams({{"TransitEncryptionEnabled", "true"}, {"AuthToken", a}}));
  auto make_available = [&] {
    Json doc = *store_->Get(kind::kCacheReplicationGroup, "auto-pipeline-redis");
    doc["Status"] = "available";
    ASSERT_TRUE(store_->Put(kind::kCacheReplicationGroup, "auto-pipeline-redis", doc).ok());
  };
  auto doc = [&] { return *store_->Get(kind::kCacheReplicationGroup, "auto-pipeline-redis"); };
  make_available();
  const FormParams id = {{"ReplicationGroupId", "auto-pipeline-redis"}, {"ApplyImmediately", "true"}};
  auto with = [&](FormParams extra) {
    FormParams p = id;
    for (const auto& [k, v] : extra) p[k] = v;
    return p;
  };
  // ROTATE (the default strategy): both tokens, newest first; the old set kept while it rolls out.
  Json out = MustCall("ModifyReplicationGroup", with({{"AuthToken", b}}))["ReplicationGroup"];
  EXPECT_EQ(out["Status"], "modifying");
  EXPECT_EQ(out.dump().find(b), std::string::npos);
  EXPECT_EQ(doc()["AuthTokens"], Json::array({b, a}));
  EXPECT_EQ(doc()["AuthPreviousTokens"], Json::array({a}));
  EXPECT_EQ(doc()["AuthVersion"], 1);
  // While it rolls out, another change waits.
  EXPECT_EQ(Call("ModifyReplicationGroup", with({{"AuthToken", c}, {"AuthTokenUpdateStrategy", "SET"}}))
                .status()
                .code(),
            "InvalidReplicationGroupState");
  make_available();
  MustCall("ModifyReplicationGroup", with({{"AuthToken", b}, {"AuthTokenUpdateStrategy", "SET"}}));
  EXPECT_EQ(doc()["AuthTokens"], Json::array({b}));
  make_available();
  // Bad strategy, bad token, a token with DELETE, no token with SET.
  EXPECT_EQ(Call("ModifyReplicationGroup", with({{"AuthToken", c}, {"AuthTokenUpdateStrategy", "SWAP"}}))
                .status()
                .code(),
            "InvalidParameterValue");
  EXPECT_EQ(Call("ModifyReplicationGroup", with({{"AuthToken", "bad"}})).status().code(), "InvalidParameterValue");
  EXPECT_EQ(Call("ModifyReplicationGroup", with({{"AuthToken", c}, {"AuthTokenUpdateStrategy", "DELETE"}}))
                .status()
                .code(),
            "InvalidParameterCombination");
  EXPECT_EQ(Call("ModifyReplicationGroup", with({{"AuthTokenUpdateStrategy", "SET"}})).status().code(),
            "InvalidParameterValue");
  EXPECT_EQ(doc()["AuthVersion"], 2) << "a refused call changes nothing";
  // DELETE: no token any more.
  out = MustCall("ModifyReplicationGroup", with({{"AuthTokenUpdateStrategy", "DELETE"}}))["ReplicationGroup"];
  EXPECT_EQ(out["AuthTokenEnabled"], false);
  EXPECT_EQ(doc()["AuthTokens"], Json::array());
  make_available();
  // ROTATE on a group without a token: the token, and connections without one still accepted until a SET.
  MustCall("ModifyReplicationGroup", with({{"AuthToken", c}}));
  EXPECT_EQ(doc()["AuthTokens"], Json::array({c}));
  EXPECT_EQ(doc()["AuthPasswordless"], true);
}

TEST_F(ElastiCacheServiceTest, AuthTokenChangeNeedsTransitEncryption) {
  MustCall("CreateReplicationGroup", SeedParams());
  Json d = *store_->Get(kind::kCacheReplicationGroup, "auto-pipeline-redis");
  d["Status"] = "available";
  ASSERT_TRUE(store_->Put(kind::kCacheReplicationGroup, "auto-pipeline-redis", d).ok());
  auto r = Call("ModifyReplicationGroup", {{"ReplicationGroupId", "auto-pipeline-redis"},
                                           {"AuthToken", "Token-A-0123456789abcdef"},
                                           {"AuthTokenUpdateStrategy", "ROTATE"}});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), "InvalidParameterValue");
  EXPECT_EQ(r.status().message(), "The AUTH token is only supported when encryption-in-transit is enabled");
}

TEST_F(ElastiCacheServiceTest, GivenSlotsAreKept) {
  Json rg = MustCall("CreateReplicationGroup",
                     SeedParams({{"NodeGroupConfiguration.NodeGroupConfiguration.1.Slots", "0-99"},
                                 {"NodeGroupConfiguration.NodeGroupConfiguration.2.Slots", "100-16383"}}))
                ["ReplicationGroup"];
  EXPECT_EQ(rg["NodeGroups"][0]["Slots"], "0-99");
  EXPECT_EQ(rg["NodeGroups"][1]["Slots"], "100-16383");
}

TEST_F(ElastiCacheServiceTest, NonClusterModeHasPrimaryAndReaderEndpoints) {
  Json rg = MustCall("CreateReplicationGroup", {{"ReplicationGroupId", "Plain"},
                                                {"ReplicationGroupDescription", "d"},
                                                {"CacheNodeType", "cache.t3.micro"},
                                                {"NumCacheClusters", "3"},
                                                {"AutomaticFailoverEnabled", "true"}})["ReplicationGroup"];
  EXPECT_EQ(rg["ReplicationGroupId"], "plain");  // stored lower case
  EXPECT_EQ(rg["ClusterEnabled"], false);
  EXPECT_FALSE(rg.contains("ConfigurationEndpoint"));
  ASSERT_EQ(rg["NodeGroups"].size(), 1u);
  EXPECT_EQ(rg["NodeGroups"][0]["PrimaryEndpoint"]["Address"], "127.200.220.1");
  EXPECT_EQ(rg["NodeGroups"][0]["ReaderEndpoint"]["Address"], "127.200.221.1");
  EXPECT_EQ(rg["MemberClusters"], Json({"plain-001", "plain-002", "plain-003"}));
  EXPECT_EQ(rg["NodeGroups"][0]["NodeGroupMembers"][0]["CurrentRole"], "primary");
  EXPECT_EQ(rg["NodeGroups"][0]["NodeGroupMembers"][1]["CurrentRole"], "replica");

  auto one = Call("CreateReplicationGroup", {{"ReplicationGroupId", "one"},
                                             {"ReplicationGroupDescription", "d"},
                                             {"CacheNodeType", "cache.t3.micro"},
                                             {"NumCacheClusters", "1"},
                                             {"AutomaticFailoverEnabled", "true"}});
  ASSERT_FALSE(one.ok());
  EXPECT_EQ(one.status().code(), "InvalidParameterCombination");
  EXPECT_EQ(one.status().message(),
            "When using automatic failover, there must be at least 2 cache clusters in the replication group.");
}

TEST_F(ElastiCacheServiceTest, DeleteAndTestFailoverCheckTheGroup) {
  MustCall("CreateReplicationGroup", SeedParams());
  auto missing = Call("DeleteReplicationGroup", {{"ReplicationGroupId", "nope"}});
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), "ReplicationGroupNotFoundFault");
  EXPECT_EQ(missing.status().http_status(), 404);
  auto creating = Call("DeleteReplicationGroup", {{"ReplicationGroupId", "auto-pipeline-redis"}});
  ASSERT_FALSE(creating.ok());
  EXPECT_EQ(creating.status().code(), "InvalidReplicationGroupState");

  auto no_group = Call("TestFailover", {{"ReplicationGroupId", "auto-pipeline-redis"}, {"NodeGroupId", "0009"}});
  ASSERT_FALSE(no_group.ok());
  EXPECT_EQ(no_group.status().code(), "NodeGroupNotFoundFault");
  EXPECT_EQ(no_group.status().http_status(), 404);
  auto not_ready = Call("TestFailover", {{"ReplicationGroupId", "auto-pipeline-redis"}, {"NodeGroupId", "0001"}});
  ASSERT_FALSE(not_ready.ok());
  EXPECT_EQ(not_ready.status().code(), "InvalidReplicationGroupState");

  // Available (as the controller would leave it): delete is accepted and the group shows deleting.
  Json doc = *store_->Get(kind::kCacheReplicationGroup, "auto-pipeline-redis");
  doc["Status"] = "available";
  ASSERT_TRUE(store_->Put(kind::kCacheReplicationGroup, "auto-pipeline-redis", doc).ok());
  Json rg = MustCall("DeleteReplicationGroup", {{"ReplicationGroupId", "auto-pipeline-redis"}})["ReplicationGroup"];
  EXPECT_EQ(rg["Status"], "deleting");
}

TEST_F(ElastiCacheServiceTest, QueryXmlUsesTheModelsMemberNames) {
  MustCall("CreateReplicationGroup", SeedParams());
  auto result = router_.Invoke("elasticache", "DescribeReplicationGroups", {});
  ASSERT_TRUE(result.ok());
  ApiRequest req;
  req.service = "elasticache";
  req.action = "DescribeReplicationGroups";
  req.request_id = "r";
  HttpReply reply = RenderResult(ElastiCacheApi(&ctx_).info, req, *result);
  EXPECT_NE(reply.body.find("<ReplicationGroups><ReplicationGroup>"), std::string::npos) << reply.body;
  EXPECT_NE(reply.body.find("<MemberClusters><ClusterId>auto-pipeline-redis-0001-001</ClusterId>"),
            std::string::npos);
  EXPECT_NE(reply.body.find("<NodeGroups><NodeGroup><NodeGroupId>0001</NodeGroupId>"), std::string::npos);
  EXPECT_NE(reply.body.find("<NodeGroupMembers><NodeGroupMember>"), std::string::npos);
  EXPECT_NE(reply.body.find("<ClusterEnabled>true</ClusterEnabled>"), std::string::npos);
}

TEST_F(ElastiCacheServiceTest, DescribeCacheClustersPagesWithMarker) {
  for (int i = 0; i < 4; ++i) {
    MustCall("CreateReplicationGroup", SeedParams({{"ReplicationGroupId", "g" + std::to_string(i)}}));
  }
  std::set<std::string> seen;
  std::string marker;
  int pages = 0;
  do {
    FormParams params = {{"MaxRecords", "20"}};
    if (!marker.empty()) params["Marker"] = marker;
    Json page = MustCall("DescribeCacheClusters", params);
    for (const auto& c : page["CacheClusters"]) seen.insert(c["CacheClusterId"].get<std::string>());
    marker = page.value("Marker", std::string());
    ++pages;
  } while (!marker.empty() && pages < 10);
  EXPECT_EQ(pages, 2);
  EXPECT_EQ(seen.size(), 24u);
  auto bad = Call("DescribeCacheClusters", {{"Marker", "garbage"}});
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), "InvalidParameterValue");
  auto small = Call("DescribeReplicationGroups", {{"MaxRecords", "5"}});
  ASSERT_FALSE(small.ok());
  EXPECT_EQ(small.status().code(), "InvalidParameterValue");
}

TEST_F(ElastiCacheServiceTest, EngineVersionsSayWhatRuns) {
  auto versions = MustCall("DescribeCacheEngineVersions", {})["CacheEngineVersions"];
  ASSERT_FALSE(versions.empty());
  EXPECT_NE(versions[0]["CacheEngineVersionDescription"].get<std::string>().find("Redis 7.0"), std::string::npos);
  auto groups = MustCall("DescribeCacheParameterGroups", {{"CacheParameterGroupName", "default.redis5.0.cluster.on"}});
  EXPECT_EQ(groups["CacheParameterGroups"].size(), 1u);
}


// What the controller does once a group has formed (or recovered): group and nodes available.
void MarkAvailable(Store* store, const std::string& rg_id) {
  Json rg = *store->Get(kind::kCacheReplicationGroup, rg_id);
  rg["Status"] = "available";
  for (auto& ng : rg["NodeGroups"]) ng.erase("FailoverRequested");
  ASSERT_TRUE(store->Put(kind::kCacheReplicationGroup, rg_id, rg).ok());
  for (const auto& doc : store->List(kind::kCacheNode)) {
    Json node = *doc;
    node["Status"] = "available";
    ASSERT_TRUE(store->Put(kind::kCacheNode, node["CacheClusterId"], node).ok());
  }
}

TEST_F(ElastiCacheServiceTest, TestFailoverAllowsFifteenNodeGroupsPerRollingDay) {
  MustCall("CreateReplicationGroup", SeedParams());
  for (int i = 0; i < 15; ++i) {
    MarkAvailable(store_.get(), "auto-pipeline-redis");
    MustCall("TestFailover", {{"ReplicationGroupId", "auto-pipeline-redis"},
                              {"NodeGroupId", i % 2 ? "0002" : "0001"}});
    clock_.Advance(10 * 60 * 1000);
  }
  MarkAvailable(store_.get(), "auto-pipeline-redis");
  auto r = Call("TestFailover", {{"ReplicationGroupId", "auto-pipeline-redis"}, {"NodeGroupId", "0001"}});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), "TestFailoverNotAvailableFault");
  EXPECT_EQ(r.status().http_status(), 400);
  // The first of them leaves the rolling 24 hours.
  clock_.Advance(24LL * 3600 * 1000 - 15 * 10 * 60 * 1000 + 60 * 1000);
  MustCall("TestFailover", {{"ReplicationGroupId", "auto-pipeline-redis"}, {"NodeGroupId", "0001"}});
}

TEST_F(ElastiCacheServiceTest, SnapshotsOfAnAvailableGroup) {
  MustCall("CreateReplicationGroup", SeedParams());
  auto refused = Call("CreateSnapshot", {{"ReplicationGroupId", "auto-pipeline-redis"}, {"SnapshotName", "s1"}});
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), "InvalidReplicationGroupState") << "still creating";
  MarkAvailable(store_.get(), "auto-pipeline-redis");
  Json snap = MustCall("CreateSnapshot", {{"ReplicationGroupId", "auto-pipeline-redis"},
                                          {"SnapshotName", "s1"}})["Snapshot"];
  EXPECT_EQ(snap["SnapshotStatus"], "creating");
  EXPECT_EQ(snap["NumNodeGroups"], 2);
  EXPECT_EQ(snap["NodeSnapshots"][1]["NodeGroupConfiguration"]["Slots"], "8192-16383");
  EXPECT_EQ((*store_->Get(kind::kCacheReplicationGroup, "auto-pipeline-redis"))["Status"], "snapshotting");
  auto again = Call("CreateSnapshot", {{"ReplicationGroupId", "auto-pipeline-redis"}, {"SnapshotName", "s2"}});
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.status().code(), "InvalidReplicationGroupState");
  auto creating = Call("DeleteSnapshot", {{"SnapshotName", "s1"}});
  ASSERT_FALSE(creating.ok());
  EXPECT_EQ(creating.status().code(), "InvalidSnapshotState");
  auto missing = Call("DescribeSnapshots", {{"SnapshotName", "nope"}});
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), "SnapshotNotFoundFault");
  EXPECT_EQ(MustCall("DescribeSnapshots", {{"SnapshotSource", "user"}})["Snapshots"].size(), 1u);
  EXPECT_EQ(MustCall("DescribeSnapshots", {{"SnapshotSource", "system"}})["Snapshots"].size(), 0u);
  auto bad_window = Call("CreateReplicationGroup", SeedParams({{"ReplicationGroupId", "other"},
                                                               {"SnapshotWindow", "05:00-05:10"}}));
  ASSERT_FALSE(bad_window.ok());
  EXPECT_EQ(bad_window.status().code(), "InvalidParameterValue");
}

TEST_F(ElastiCacheServiceTest, DescribeCacheParametersOfTheDefaults) {
  Json on = MustCall("DescribeCacheParameters", {{"CacheParameterGroupName", "default.redis7.cluster.on"}});
  std::map<std::string, Json> by_name;
  for (const auto& prm : on["Parameters"]) by_name[prm["ParameterName"]] = prm;
  ASSERT_TRUE(by_name.count("cluster-enabled"));
  EXPECT_EQ(by_name["cluster-enabled"]["ParameterValue"], "yes");
  EXPECT_EQ(by_name["maxmemory-policy"]["ParameterValue"], "volatile-lru");
  EXPECT_EQ(by_name["maxmemory-policy"]["Source"], "system");
  EXPECT_EQ(by_name["maxmemory-policy"]["ChangeType"], "immediate");
  ASSERT_EQ(on["CacheNodeTypeSpecificParameters"].size(), 1u);
  EXPECT_EQ(on["CacheNodeTypeSpecificParameters"][0]["ParameterName"], "maxmemory");
  Json off = MustCall("DescribeCacheParameters", {{"CacheParameterGroupName", "default.redis5.0"}});
  for (const auto& prm : off["Parameters"]) {
    if (prm["ParameterName"] == "cluster-enabled") {
      EXPECT_EQ(prm["ParameterValue"], "no");
    }
  }
  auto missing = Call("DescribeCacheParameters", {{"CacheParameterGroupName", "default.redis9"}});
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), "CacheParameterGroupNotFound");
}

TEST_F(ElastiCacheServiceTest, SubnetGroupsPlaceNodesAndAreKeptWhileInUse) {
  const std::string a = ec2::DefaultSubnetId(*ctx_.catalog, "us-west-2a");
  const std::string c = ec2::DefaultSubnetId(*ctx_.catalog, "us-west-2c");
  auto r = Call("CreateCacheSubnetGroup", {{"CacheSubnetGroupName", "g"}, {"CacheSubnetGroupDescription", "d"},
                                           {"SubnetIds.SubnetIdentifier.1", "subnet-0123456789abcdef0"}});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), "InvalidSubnet");
  Json g = MustCall("CreateCacheSubnetGroup", {{"CacheSubnetGroupName", "G"}, {"CacheSubnetGroupDescription", "d"},
                                               {"SubnetIds.SubnetIdentifier.1", c},
                                               {"SubnetIds.SubnetIdentifier.2", a}})["CacheSubnetGroup"];
  EXPECT_EQ(g["CacheSubnetGroupName"], "g");
  EXPECT_EQ(g["Subnets"][0]["SubnetIdentifier"], a);
  EXPECT_EQ(g["VpcId"], ec2::DefaultVpcId(*ctx_.catalog));

  // The seed's placement names us-west-2b, which the group does not cover.
  ExpectRefused(SeedParams({{"CacheSubnetGroupName", "g"}}), 400, "InvalidParameterValue");
  ExpectRefused(SeedParams({{"CacheSubnetGroupName", "nope"}}), 400, "CacheSubnetGroupNotFoundFault");
  // Default placement over the group's zones only.
  FormParams p = SeedParams({{"CacheSubnetGroupName", "g"}});
  for (auto it = p.begin(); it != p.end();) {
    it = it->first.rfind("NodeGroupConfiguration", 0) == 0 ? p.erase(it) : std::next(it);
  }
  MustCall("CreateReplicationGroup", p);
  std::set<std::string> zones;
  for (const auto& node : store_->List(kind::kCacheNode)) zones.insert((*node)["AvailabilityZone"].get<std::string>());
  EXPECT_EQ(zones, (std::set<std::string>{"us-west-2a", "us-west-2c"}));
  Json clusters = MustCall("DescribeCacheClusters", {})["CacheClusters"];
  EXPECT_EQ(clusters[0]["CacheSubnetGroupName"], "g");

  auto del = Call("DeleteCacheSubnetGroup", {{"CacheSubnetGroupName", "g"}});
  ASSERT_FALSE(del.ok());
  EXPECT_EQ(del.status().code(), "CacheSubnetGroupInUse");
  auto mod = Call("ModifyCacheSubnetGroup", {{"CacheSubnetGroupName", "g"}, {"SubnetIds.SubnetIdentifier.1", a}});
  ASSERT_FALSE(mod.ok());
  EXPECT_EQ(mod.status().code(), "SubnetInUse");
  auto page = Call("DescribeCacheSubnetGroups", {{"MaxRecords", "0"}});
  ASSERT_FALSE(page.ok());
  EXPECT_EQ(page.status().message(), "Invalid value for max records. Must be between 20 and 100");
  Json all = MustCall("DescribeCacheSubnetGroups", {})["CacheSubnetGroups"];
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0]["CacheSubnetGroupName"], "default");
}

}  // namespace
}  // namespace autopipe

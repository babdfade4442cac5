// Slot splitting, slot validation, names and placement (elasticache/replication_groups.h), and the Redis reply
// parsers (elasticache/redis_client.h).
#include "elasticache/replication_groups.h"

#include <filesystem>

#include <gtest/gtest.h>

#include "elasticache/redis_client.h"

namespace autopipe::elasticache {
namespace {

TEST(SlotSplitTest, TwoShardsSplitInHalves) {
  EXPECT_EQ(SplitSlots(2), (std::vector<SlotRange>{{0, 8191}, {8192, 16383}}));
}

TEST(SlotSplitTest, ThreeShardsGiveTheExtraSlotToTheFirst) {
  // ElastiCache's split, not redis-cli's (which starts 0-5460).
  EXPECT_EQ(SplitSlots(3), (std::vector<SlotRange>{{0, 5461}, {5462, 10922}, {10923, 16383}}));
}

TEST(SlotSplitTest, EveryCountCoversAllSlotsOnce) {
  for (int n = 1; n <= kMaxNodeGroups; ++n) {
    auto ranges = SplitSlots(n);
    ASSERT_EQ(ranges.size(), static_cast<size_t>(n));
    EXPECT_TRUE(CheckSlotCoverage(ranges).ok()) << n;
    for (size_t i = 1; i < ranges.size(); ++i) {
      const int a = ranges[i - 1].last - ranges[i - 1].first;
      const int b = ranges[i].last - ranges[i].first;
      EXPECT_TRUE(a == b || a == b + 1) << n;
    }
  }
}

TEST(SlotParseTest, ParsesRangesAndRefusesNonsense) {
  EXPECT_EQ(*ParseSlots("0-8191"), (SlotRange{0, 8191}));
  EXPECT_EQ(*ParseSlots("42"), (SlotRange{42, 42}));
  for (const char* bad : {"", "-1", "a-b", "10-5", "0-16384", "0-", "1-2-3", "123456"}) {
    auto r = ParseSlots(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.status().code(), "InvalidParameterValue");
  }
}

TEST(SlotCoverageTest, RefusesOverlapsAndGaps) {
  EXPECT_TRUE(CheckSlotCoverage({{8192, 16383}, {0, 8191}}).ok());
  EXPECT_EQ(CheckSlotCoverage({{0, 9000}, {8192, 16383}}).code(), "InvalidParameterValue");
  EXPECT_EQ(CheckSlotCoverage({{0, 8000}, {8192, 16383}}).code(), "InvalidParameterValue");
  EXPECT_EQ(CheckSlotCoverage({{0, 8191}}).code(), "InvalidParameterValue");
}

TEST(NamesTest, ReplicationGroupIdRules) {
  for (const std::string& ok : {std::string("a"), std::string("auto-pipeline-redis"), std::string("A1-b2"),
                                std::string(40, 'x')}) {
    EXPECT_TRUE(ValidateReplicationGroupId(ok).ok()) << ok;
  }
  for (const std::string& bad : {std::string(""), std::string("1abc"), std::string("-abc"), std::string("abc-"),
                                 std::string("a--b"), std::string("a_b"), std::string(41, 'x')}) {
    EXPECT_EQ(ValidateReplicationGroupId(bad).code(), "InvalidParameterValue") << bad;
  }
}

TEST(NamesTest, ShardAndMemberNames) {
  EXPECT_EQ(NodeGroupIdFor(0), "0001");
  EXPECT_EQ(NodeGroupIdFor(11), "0012");
  EXPECT_EQ(MemberClusterId("rg", "0002", 0), "rg-0002-001");
  EXPECT_EQ(NonClusterMemberId("rg", 2), "rg-003");
}

TEST(PlacementTest, PrimariesRotateAndReplicasGoElsewhere) {
  const std::vector<std::string> azs = {"a", "b", "c"};
  EXPECT_EQ(DefaultPrimaryAz(azs, 0), "a");
  EXPECT_EQ(DefaultPrimaryAz(azs, 4), "b");
  EXPECT_EQ(DefaultReplicaAzs(azs, "b", 2), (std::vector<std::string>{"c", "a"}));
  EXPECT_EQ(DefaultReplicaAzs(azs, "c", 3), (std::vector<std::string>{"a", "b", "a"}));
  EXPECT_TRUE(EveryShardSpansAzs({{"0001", {}, "a", {"b"}}, {"0002", {}, "b", {"a", "b"}}}));
  EXPECT_FALSE(EveryShardSpansAzs({{"0001", {}, "a", {"b"}}, {"0002", {}, "b", {"b"}}}));
  EXPECT_FALSE(EveryShardSpansAzs({{"0001", {}, "a", {}}}));
}

TEST(ParameterGroupsTest, ClusterModeComesFromTheGroup) {
  ASSERT_NE(FindParameterGroup("default.redis5.0.cluster.on"), nullptr);
  EXPECT_TRUE(FindParameterGroup("default.redis5.0.cluster.on")->cluster_enabled);
  EXPECT_FALSE(FindParameterGroup("default.redis5.0")->cluster_enabled);
  EXPECT_EQ(FindParameterGroup("default.redis4.0"), nullptr);
  EXPECT_EQ(DefaultParameterGroupFor("5.0.6", true)->name, "default.redis5.0.cluster.on");
  EXPECT_EQ(DefaultParameterGroupFor("7.0", false)->name, "default.redis7");
  EXPECT_EQ(DefaultParameterGroupFor("2.8.24", false), nullptr);
}

TEST(NodeTypesTest, SmallMemoryByType) {
  EXPECT_TRUE(IsKnownNodeType("cache.m5.large"));
  EXPECT_TRUE(IsKnownNodeType("cache.t3.micro"));
  EXPECT_FALSE(IsKnownNodeType("m5.large"));
  EXPECT_FALSE(IsKnownNodeType("cache.m5.huge"));
  EXPECT_LT(MaxMemoryMibFor("cache.t3.micro"), MaxMemoryMibFor("cache.m5.large"));
  EXPECT_LE(MaxMemoryMibFor("cache.r6g.16xlarge"), 256);
}

TEST(RedisRepliesTest, ParsesInfoAndClusterNodes) {
  auto info = ParseInfo("# Replication\r\nrole:slave\r\nmaster_host:127.1.2.3\r\nslave_repl_offset:42\r\n\r\n");
  EXPECT_EQ(info["role"], "slave");
  EXPECT_EQ(info["master_host"], "127.1.2.3");
  EXPECT_EQ(info["slave_repl_offset"], "42");
  auto nodes = ParseClusterNodes(
      "aaa 127.0.0.5:6379@16379 myself,master - 0 0 7 connected 0-8191 [93->-bbb]\n"
      "bbb 127.0.0.6:6379@16379,host slave aaa 0 1700000000000 1 connected\n");
  ASSERT_EQ(nodes.size(), 2u);
  EXPECT_EQ(nodes[0].id, "aaa");
  EXPECT_EQ(nodes[0].ip, "127.0.0.5");
  EXPECT_EQ(nodes[0].port, 6379);
  EXPECT_TRUE(nodes[0].Has("myself"));
  EXPECT_EQ(nodes[0].slots, std::vector<std::string>{"0-8191"});
  EXPECT_EQ(nodes[1].master_id, "aaa");
  EXPECT_EQ(nodes[1].ip, "127.0.0.6");
  EXPECT_TRUE(nodes[1].slots.empty());
  EXPECT_EQ(nodes[0].config_epoch, 7u);  // what a takeover's claim is compared by
  EXPECT_EQ(nodes[1].config_epoch, 1u);
}


TEST(SnapshotRulesTest, NamesWindowsAndAutomaticNames) {
  EXPECT_TRUE(ValidateSnapshotName("my-snap-1").ok());
  EXPECT_TRUE(ValidateSnapshotName("automatic.rg-2026-12-01-05-00").ok());
  EXPECT_FALSE(ValidateSnapshotName("").ok());
  EXPECT_FALSE(ValidateSnapshotName("1snap").ok());
  EXPECT_FALSE(ValidateSnapshotName("snap-").ok());
  EXPECT_FALSE(ValidateSnapshotName("a--b").ok());
  EXPECT_FALSE(ValidateSnapshotName("a_b").ok());

  auto w = ParseSnapshotWindow("05:00-06:00");
  ASSERT_TRUE(w.ok());
  EXPECT_EQ(w->start_minute, 300);
  EXPECT_EQ(w->minutes, 60);
  auto wrap = ParseSnapshotWindow("23:30-01:00");  // across midnight
  ASSERT_TRUE(wrap.ok());
  EXPECT_EQ(wrap->minutes, 90);
  EXPECT_FALSE(ParseSnapshotWindow("05:00-05:30").ok()) << "shorter than 60 minutes";
  EXPECT_FALSE(ParseSnapshotWindow("25:00-26:00").ok());
  EXPECT_FALSE(ParseSnapshotWindow("5-6").ok());

  constexpr int64_t kDay = 24LL * 3600 * 1000;
  const int64_t day = 20000 * kDay;  // a midnight, UTC
  EXPECT_EQ(WindowOpenedAt(*w, day + 5 * 3600 * 1000 + 1), day + 5 * 3600 * 1000);
  EXPECT_FALSE(WindowOpenedAt(*w, day + 6 * 3600 * 1000).has_value());
  EXPECT_FALSE(WindowOpenedAt(*w, day + 4 * 3600 * 1000).has_value());
  // 00:30 lies in the window that opened at 23:30 the day before.
  EXPECT_EQ(WindowOpenedAt(*wrap, day + 30 * 60 * 1000), day - 30 * 60 * 1000);
  EXPECT_EQ(AutomaticSnapshotName("rg", day + 5 * 3600 * 1000), "automatic.rg-2024-10-04-05-00");
}

TEST(SnapshotRulesTest, NewSnapshotHasOneNodeSnapshotPerShardWithItsSlotsAndAzs) {
  Json rg = {{"ReplicationGroupId", "rg"},        {"Description", "d"},
             {"CacheNodeType", "cache.t3.micro"}, {"EngineVersion", "7.0"},
             {"CacheParameterGroupName", "default.redis7.cluster.on"},
             {"Port", 6379},                      {"ClusterEnabled", true},
             {"AutomaticFailoverEnabled", true},
             {"NodeGroups", Json::array({Json{{"NodeGroupId", "0001"}, {"Slots", "0-8191"},
                                              {"Members", {"rg-0001-001", "rg-0001-002"}},
                                              {"Primary", "rg-0001-002"}},
                                         Json{{"NodeGroupId", "0002"}, {"Slots", "8192-16383"},
                                              {"Members", {"rg-0002-001"}}, {"Primary", "rg-0002-001"}}})}};
  Json snap = NewSnapshotDocument(rg, {{"rg-0001-001", "us-west-2a"}, {"rg-0001-002", "us-west-2b"},
                                       {"rg-0002-001", "us-west-2b"}},
                                  "s1", "manual", 1000, "arn:s1");
  EXPECT_EQ(snap["SnapshotStatus"], "creating");
  ASSERT_EQ(snap["NodeSnapshots"].size(), 2u);
  EXPECT_EQ(snap["NodeSnapshots"][0]["Slots"], "0-8191");
  EXPECT_EQ(snap["NodeSnapshots"][0]["PrimaryAvailabilityZone"], "us-west-2b");
  EXPECT_EQ(snap["NodeSnapshots"][0]["ReplicaAvailabilityZones"], Json::array({"us-west-2a"}));
  EXPECT_EQ(snap["NodeSnapshots"][1]["ReplicaCount"], 0);
}


TEST(SlotsTest, SlotSetsRoundTrip) {
  auto set = SlotSet("0-100,200-300,16383");
  EXPECT_TRUE(set[0] && set[100] && !set[101] && set[200] && set[16383]);
  EXPECT_EQ(FormatSlotSet(set), "0-100,200-300,16383-16383");
  EXPECT_EQ(FormatSlotSet(SlotSet("")), "");
  EXPECT_EQ(FormatSlotSet(SlotSet("0-16383")), "0-16383");
}

}  // namespace
}  // namespace autopipe::elasticache

namespace autopipe::elasticache {
namespace {

TEST(NodeAccessTest, EveryTokenANodeMayHoldCurrentFirstAndTlsOnlyWhenEnabled) {
  char tmpl[] = "/tmp/autopipe_node_access.XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  RegionContext ctx;
  ctx.data_dir = tmpl;
  Json rg = {{"ReplicationGroupId", "rg"},
             {"AuthTokens", {"New-token-0123456789", "Old-token-0123456789"}},
             {"AuthPreviousTokens", {"Old-token-0123456789", "Older-token-0123456789"}}};
  auto plain = NodeAccess(ctx, rg);
  ASSERT_TRUE(plain.ok());
  EXPECT_EQ(plain->tls, nullptr);
  EXPECT_EQ(plain->passwords, (std::vector<std::string>{"New-token-0123456789", "Old-token-0123456789",
                                                        "Older-token-0123456789"}));
  EXPECT_EQ(CurrentAuthToken(rg), "New-token-0123456789");
  rg["TransitEncryptionEnabled"] = true;
  auto tls = NodeAccess(ctx, rg);
  ASSERT_TRUE(tls.ok());
  EXPECT_NE(tls->tls, nullptr);  // the region's CA was made for it
  EXPECT_TRUE(std::filesystem::exists(std::string(tmpl) + "/ca/elasticache-ca.pem"));
  EXPECT_EQ(CurrentAuthToken(Json{{"ReplicationGroupId", "rg"}}), "");
  std::filesystem::remove_all(tmpl);
}

}  // namespace
}  // namespace autopipe::elasticache

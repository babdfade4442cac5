#include "rds/db_replicas.h"

#include <gtest/gtest.h>

#include <set>

namespace autopipe::rds {
namespace {

TEST(DbReplicaRules, ASourceIsAnIdentifierHereOrAnArnOfAnyRegion) {
  auto here = ParseReplicaSource("Auto-Pipeline-DB", "us-east-1", "123456789012");
  ASSERT_TRUE(here.ok()) << here.status().ToString();
  EXPECT_EQ(here->identifier, "auto-pipeline-db");
  EXPECT_EQ(here->region, "us-east-1");
  EXPECT_FALSE(here->cross_region);

  auto other = ParseReplicaSource("arn:aws:rds:us-west-2:123456789012:db:auto-pipeline-db", "us-east-1", "123456789012");
  ASSERT_TRUE(other.ok()) << other.status().ToString();
  EXPECT_EQ(other->region, "us-west-2");
  EXPECT_EQ(other->identifier, "auto-pipeline-db");
  EXPECT_TRUE(other->cross_region);

  auto same = ParseReplicaSource("arn:aws:rds:us-east-1:123456789012:db:x1", "us-east-1", "123456789012");
  ASSERT_TRUE(same.ok());
  EXPECT_FALSE(same->cross_region);
}

TEST(DbReplicaRules, MalformedSourcesAreRefused) {
  for (const char* bad : {"", "1abc", "a_b", "arn:aws:rds:us-west-2:123456789012:snapshot:x",
                          "arn:aws:ec2:us-west-2:123456789012:db:x", "arn:aws:rds::123456789012:db:x",
                          "arn:aws:rds:us-west-2:123456789012:db:", "arn:aws:rds:us-west-2:123456789012:db:x:y"}) {
    auto r = ParseReplicaSource(bad, "us-east-1", "123456789012");
    EXPECT_FALSE(r.ok()) << bad;
    if (!r.ok()) {
      EXPECT_EQ(r.status().code(), "InvalidParameterValue") << bad;
    }
  }
  // Another account's instance is not ours to find.
  auto foreign = ParseReplicaSource("arn:aws:rds:us-west-2:999999999999:db:x", "us-east-1", "123456789012");
  ASSERT_FALSE(foreign.ok());
  EXPECT_EQ(foreign.status().code(), "DBInstanceNotFound");
}

TEST(DbReplicaRules, ReplicationUsersAreStableShortAndDistinct) {
  const std::string a = ReplicationUserFor("arn:aws:rds:us-east-1:123456789012:db:auto-pipeline-db");
  EXPECT_EQ(a, ReplicationUserFor("arn:aws:rds:us-east-1:123456789012:db:auto-pipeline-db"));
  EXPECT_NE(a, ReplicationUserFor("rr-local"));
  EXPECT_EQ(a.rfind("rdsrepl_", 0), 0u);
  EXPECT_EQ(a.size(), 20u);
}

TEST(DbReplicaRules, ReplicaServerIdsNeverCollideWithAnInstancesOwnServers) {
  std::set<int> seen;
  for (int i = 0; i < 200; ++i) {
    const int id = NewReplicaServerId();
    EXPECT_GE(id, 1000);
    seen.insert(id);
  }
  EXPECT_GT(seen.size(), 190u);
}

TEST(DbReplicaRules, HeartbeatLagIsNeverNegative) {
  EXPECT_DOUBLE_EQ(HeartbeatLagSeconds(10'000, 12'500), 2.5);
  EXPECT_DOUBLE_EQ(HeartbeatLagSeconds(10'000, 9'000), 0.0);
}

TEST(DbReplicaRules, OnlySeedingOrFailedReplicasAreHeldByTheReplicaController) {
  Json inst = {{"Spec", {{"Deleting", false}}}, {"ReadReplica", {{"State", "seeding"}}}};
  EXPECT_TRUE(ReplicaHoldsInstance(inst));
  EXPECT_FALSE(IsActiveReplica(inst));
  inst["ReadReplica"]["State"] = "replicating";
  EXPECT_FALSE(ReplicaHoldsInstance(inst));
  EXPECT_TRUE(IsActiveReplica(inst));
  inst["ReadReplica"]["State"] = "failed";
  EXPECT_TRUE(ReplicaHoldsInstance(inst));
  inst["Spec"]["Deleting"] = true;
  EXPECT_FALSE(ReplicaHoldsInstance(inst));
  EXPECT_FALSE(ReplicaHoldsInstance(Json{{"Spec", Json::object()}}));
}

}  // namespace
}  // namespace autopipe::rds

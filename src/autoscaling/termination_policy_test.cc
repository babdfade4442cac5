#include "autoscaling/termination_policy.h"

#include <gtest/gtest.h>

namespace autopipe {
namespace {

constexpr int64_t kHour = 3600 * 1000;

TerminationCandidate C(const std::string& id, const std::string& az, const std::string& lc = "lc",
                       int64_t launched = 0, bool prot = false) {
  return {id, az, lc, launched, prot};
}

TEST(TerminationPolicy, PicksFromTheAzWithMostInstances) {
  std::mt19937 rng(1);
  auto chosen = ChooseInstancesToTerminate({C("a1", "a"), C("a2", "a"), C("a3", "a"), C("b1", "b"), C("b2", "b")},
                                           1, {"Default"}, "lc", 0, rng);
  ASSERT_EQ(chosen.size(), 1u);
  EXPECT_EQ(chosen[0].substr(0, 1), "a");
}

TEST(TerminationPolicy, KeepsAzsBalancedWhenTakingSeveral) {
  std::mt19937 rng(7);
  auto chosen = ChooseInstancesToTerminate({C("a1", "a"), C("a2", "a"), C("a3", "a"), C("b1", "b"), C("b2", "b")},
                                           3, {"Default"}, "lc", 0, rng);
  ASSERT_EQ(chosen.size(), 3u);
  int from_a = 0;
  for (const auto& id : chosen) from_a += id[0] == 'a';
  EXPECT_EQ(from_a, 2);  // 3+2 -> 1+1
}

TEST(TerminationPolicy, DefaultPrefersOldLaunchConfigurationThenNextInstanceHour) {
  std::mt19937 rng(3);
  int64_t now = 10 * kHour;
  // Both in one AZ; old-lc loses first even though it is younger.
  auto chosen = ChooseInstancesToTerminate({C("new", "a", "lc-v2", now - kHour / 2), C("old", "a", "lc-v1", now - 1000)},
                                           1, {"Default"}, "lc-v2", now, rng);
  EXPECT_EQ(chosen, std::vector<std::string>{"old"});
  // Same configuration: the one closest to its next billing hour goes.
  chosen = ChooseInstancesToTerminate({C("x", "a", "lc", now - 10 * 60 * 1000), C("y", "a", "lc", now - 55 * 60 * 1000)},
                                      1, {"Default"}, "lc", now, rng);
  EXPECT_EQ(chosen, std::vector<std::string>{"y"});
}

TEST(TerminationPolicy, OldestAndNewestInstance) {
  std::mt19937 rng(3);
  std::vector<TerminationCandidate> c = {C("i1", "a", "lc", 100), C("i2", "a", "lc", 200), C("i3", "a", "lc", 300)};
  EXPECT_EQ(ChooseInstancesToTerminate(c, 1, {"OldestInstance"}, "lc", 1000, rng), std::vector<std::string>{"i1"});
  EXPECT_EQ(ChooseInstancesToTerminate(c, 1, {"NewestInstance"}, "lc", 1000, rng), std::vector<std::string>{"i3"});
}

TEST(TerminationPolicy, SkipsProtectedInstances) {
  std::mt19937 rng(3);
  auto chosen = ChooseInstancesToTerminate(
      {C("a1", "a", "lc", 0, true), C("a2", "a", "lc", 0, true), C("a3", "a", "lc", 0, true), C("b1", "b")}, 2,
      {"Default"}, "lc", 0, rng);
  EXPECT_EQ(chosen, std::vector<std::string>{"b1"});
}

}  // namespace
}  // namespace autopipe

#include "cloudwatch/metric_store.h"

#include <stdlib.h>

#include <filesystem>

#include <gtest/gtest.h>

namespace autopipe::cloudwatch {
namespace {

constexpr int64_t kT0 = 1'700'000'040'000;  // a whole minute (epoch millis)

MetricKey Key(const std::string& name = "Latency") {
  MetricKey k{"App", name, {{"Stage", "prod"}, {"Host", "a"}}};
  k.Canonicalize();
  return k;
}

std::pair<MetricKey, Datapoint> Point(int64_t ms, double v) { return {Key(), Datapoint{ms, {1, v, v, v}}}; }

TEST(MetricStoreTest, DimensionsAreASet) {
  MetricKey a{"App", "m", {{"B", "2"}, {"A", "1"}}};
  MetricKey b{"App", "m", {{"A", "1"}, {"B", "2"}}};
  a.Canonicalize();
  b.Canonicalize();
  EXPECT_EQ(a.Id(), b.Id());
}

// The coarse tiers are written at most once a second: calls in between accumulate in memory, a query of a coarse
// tier sees them (it flushes first), and reopening keeps them (the destructor flushes).
TEST(MetricStoreTest, CoarseTiersAddUpCallsBetweenFlushes) {
  char tmpl[] = "/tmp/metric_store_coarse.XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  const std::string path = std::string(tmpl) + "/m.db";
  const int64_t later = kT0 + 4 * 3600'000;  // past the 1-s tier's 3 h: the 60-s tier answers
  {
    auto store = MetricStore::Open(path);
    ASSERT_TRUE(store.ok());
    for (int i = 1; i <= 5; ++i) ASSERT_TRUE((*store)->Put({Point(kT0 + i * 1000, i)}, {}).ok());
    // 1..5 in one call, 150 values of one metric in one second: one row per tier.
    std::vector<std::pair<MetricKey, Datapoint>> many;
    for (int i = 0; i < 150; ++i) many.push_back(Point(kT0 + 30'000, 10));
    ASSERT_TRUE((*store)->Put(many, {}).ok());
    auto minutes = (*store)->Query(Key(), kT0, kT0 + 60'000, 60, later);
    ASSERT_EQ(minutes.size(), 1u);
    EXPECT_EQ(minutes[0].agg.count, 155);
    EXPECT_EQ(minutes[0].agg.sum, 15 + 1500);
    EXPECT_EQ(minutes[0].agg.min, 1);
    EXPECT_EQ(minutes[0].agg.max, 10);
    auto seconds = (*store)->Query(Key(), kT0 + 30'000, kT0 + 31'000, 1, kT0 + 40'000);
    ASSERT_EQ(seconds.size(), 1u);
    EXPECT_EQ(seconds[0].agg.count, 150);
    ASSERT_TRUE((*store)->Put({Point(kT0 + 40'000, 100)}, {}).ok());  // pending when the store closes
  }
  auto reopened = MetricStore::Open(path);
  ASSERT_TRUE(reopened.ok());
  auto hours = (*reopened)->Query(Key(), kT0 - 3600'000, kT0 + 3600'000, 3600, kT0 + 20 * 86400'000LL);
  ASSERT_EQ(hours.size(), 1u);
  EXPECT_EQ(hours[0].agg.count, 156);
  std::filesystem::remove_all(tmpl);
}

TEST(MetricStoreTest, FiveStatisticsAndPercentilesPerPeriod) {
  auto store = MetricStore::Open(":memory:");
  ASSERT_TRUE(store.ok());
  std::vector<std::pair<MetricKey, Datapoint>> pts;
  for (int i = 0; i < 100; ++i) pts.push_back(Point(kT0 + i * 1000, i + 1));  // 1..100, one a second
  ASSERT_TRUE((*store)->Put(pts, {"Milliseconds"}).ok());
  auto periods = (*store)->Query(Key(), kT0, kT0 + 120'000, 60, kT0 + 200'000);
  ASSERT_EQ(periods.size(), 2u);
  EXPECT_EQ(periods[0].start_sec, kT0 / 1000);
  EXPECT_EQ(*periods[0].Value("SampleCount"), 60);
  EXPECT_EQ(*periods[0].Value("Sum"), 1830);  // 1 + ... + 60
  EXPECT_EQ(*periods[0].Value("Average"), 30.5);
  EXPECT_EQ(*periods[0].Value("Minimum"), 1);
  EXPECT_EQ(*periods[0].Value("Maximum"), 60);
  EXPECT_EQ(*periods[0].Value("p50"), 30);
  EXPECT_EQ(*periods[0].Value("p90"), 54);
  EXPECT_EQ(*periods[0].Value("p100"), 60);
  EXPECT_EQ(*periods[1].Value("SampleCount"), 40);
  EXPECT_FALSE(periods[0].Value("Median").has_value());
  EXPECT_EQ((*store)->Find(Key())->unit, "Milliseconds");

  // One-second periods read the one-second tier.
  auto seconds = (*store)->Query(Key(), kT0, kT0 + 10'000, 1, kT0 + 20'000);
  ASSERT_EQ(seconds.size(), 10u);
  EXPECT_EQ(*seconds[9].Value("Sum"), 10);
  // StartTime inclusive, EndTime exclusive.
  auto edge = (*store)->Query(Key(), kT0 + 1000, kT0 + 3000, 1, kT0 + 20'000);
  ASSERT_EQ(edge.size(), 2u);
  EXPECT_EQ(edge[0].start_sec, kT0 / 1000 + 1);
}

TEST(MetricStoreTest, RetentionTiers) {
  auto store = MetricStore::Open(":memory:");
  ASSERT_TRUE(store.ok());
  std::vector<std::pair<MetricKey, Datapoint>> pts;
  for (int i = 0; i < 120; ++i) pts.push_back(Point(kT0 + i * 1000, 2));
  ASSERT_TRUE((*store)->Put(pts, {}).ok());
  // Within 3 h: 10-s periods from the 1-s tier.
  EXPECT_EQ((*store)->Query(Key(), kT0, kT0 + 120'000, 10, kT0 + 3 * 3600'000 - 1000).size(), 12u);
  // Past 3 h the 1-s data is gone: 10-s periods have nothing, 60-s periods read the 60-s tier.
  const int64_t later = kT0 + 3 * 3600'000 + 120'000;
  ASSERT_TRUE((*store)->Prune(later).ok());
  EXPECT_TRUE((*store)->Query(Key(), kT0, kT0 + 120'000, 10, later).empty());
  auto minutes = (*store)->Query(Key(), kT0, kT0 + 120'000, 60, later);
  ASSERT_EQ(minutes.size(), 2u);
  EXPECT_EQ(*minutes[0].Value("SampleCount"), 60);
  // After 15 days, 5-minute data; after 63 days, hourly; after 455 days, nothing and the metric is gone.
  const int64_t day = 86400'000;
  ASSERT_TRUE((*store)->Prune(kT0 + 15 * day + 3600'000).ok());
  EXPECT_TRUE((*store)->Query(Key(), kT0, kT0 + 120'000, 60, kT0 + 15 * day + 3600'000).empty());
  auto five = (*store)->Query(Key(), kT0 - 300'000, kT0 + 300'000, 300, kT0 + 15 * day + 3600'000);
  ASSERT_EQ(five.size(), 2u);  // kT0 is 60 s before a 5-minute boundary
  EXPECT_EQ(*five[0].Value("SampleCount") + *five[1].Value("SampleCount"), 120);
  ASSERT_TRUE((*store)->Prune(kT0 + 63 * day + 7200'000).ok());
  EXPECT_TRUE((*store)->Query(Key(), kT0 - 300'000, kT0 + 300'000, 300, kT0 + 63 * day + 7200'000).empty());
  EXPECT_EQ((*store)->Query(Key(), kT0 - 3600'000, kT0 + 3600'000, 3600, kT0 + 63 * day + 7200'000).size(), 1u);
  EXPECT_EQ((*store)->metric_count(), 1u);
  ASSERT_TRUE((*store)->Prune(kT0 + 456 * day).ok());
  EXPECT_EQ((*store)->metric_count(), 0u);
}

TEST(MetricStoreTest, SurvivesReopening) {
  char tmpl[] = "/tmp/autopipe_metric_store.XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  const std::string path = std::string(tmpl) + "/metrics.db";
  {
    auto store = MetricStore::Open(path);
    ASSERT_TRUE(store.ok());
    ASSERT_TRUE((*store)->Put({Point(kT0, 7), Point(kT0 + 1000, 9)}, {"Count", "Count"}).ok());
  }
  auto store = MetricStore::Open(path);
  ASSERT_TRUE(store.ok());
  auto periods = (*store)->Query(Key(), kT0, kT0 + 60'000, 60, kT0 + 60'000);
  ASSERT_EQ(periods.size(), 1u);
  EXPECT_EQ(*periods[0].Value("Sum"), 16);
  ASSERT_EQ((*store)->List().size(), 1u);
  EXPECT_EQ((*store)->List()[0].unit, "Count");
  std::filesystem::remove_all(tmpl);
}

}  // namespace
}  // namespace autopipe::cloudwatch

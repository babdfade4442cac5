// CacheMetrics and RedisConnection against a real redis-server started by the test on 127.0.0.1 (skipped when
// redis-server is not installed): the AWS/ElastiCache samples of one node, with the counters turned into
// per-period figures.
#include "elasticache/metrics.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <thread>

#include <gtest/gtest.h>

#include "elasticache/redis_client.h"
#include "elasticache/replication_groups.h"
#include "process/launcher.h"
#include "store/store.h"

namespace autopipe::elasticache {
namespace {

// A port the kernel has just handed out (free unless someone takes it in the meantime).
int FreePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    if (fd >= 0) ::close(fd);
    return 0;
  }
  ::close(fd);
  return ntohs(a.sin_port);
}

const MetricSample* Find(const std::vector<MetricSample>& v, const std::string& name) {
  auto it = std::find_if(v.begin(), v.end(), [&](const MetricSample& s) { return s.metric_name == name; });
  return it == v.end() ? nullptr : &*it;
}

class CacheMetricsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::access("/usr/bin/redis-server", X_OK) != 0) GTEST_SKIP() << "redis-server is not installed";
    char tmpl[] = "/tmp/autopipe_cache_metrics.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    port_ = FreePort();
    ASSERT_GT(port_, 0);
    LaunchSpec spec;
    spec.argv = {"/usr/bin/redis-server", "--bind",   "127.0.0.1", "--port",       std::to_string(port_),
                 "--save",                "",         "--appendonly", "no",        "--maxmemory", "32mb",
                 "--dir",                 dir_.string()};
    spec.env = {{"PATH", "/usr/bin:/bin"}};
    spec.working_dir = dir_.string();
    spec.log_path = (dir_ / "redis.log").string();
    auto pid = launcher_.Launch(spec);
    ASSERT_TRUE(pid.ok()) << pid.status().ToString();
    pid_ = *pid;
    for (int i = 0; i < 100; ++i) {  // up to ~5 s for the server to listen
      if (RedisConnection::Connect("127.0.0.1", port_, 200).ok()) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    store_ = NewMemoryStore();
    ctx_.store = store_.get();
    // The group says how its nodes are reached (plain TCP, no AUTH here).
    ASSERT_TRUE(store_->Put(kind::kCacheReplicationGroup, "rg", Json{{"ReplicationGroupId", "rg"}}).ok());
    ASSERT_TRUE(store_
                    ->Put(kind::kCacheNode, "rg-0001-001",
                          Json{{"CacheClusterId", "rg-0001-001"},
                               {"ReplicationGroupId", "rg"},
                               {"Address", "127.0.0.1"},
                               {"Port", port_},
                               {"Status", "available"},
                               {"Generation", 1},
                               {"Pid", pid_.pid}})
                    .ok());
  }

  void TearDown() override {
    if (pid_.pid > 0) {
      launcher_.SignalGroup(pid_, /*force=*/true);
      for (int i = 0; i < 100 && launcher_.GroupAlive(pid_); ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
    }
    std::error_code ec;
    if (!dir_.empty()) std::filesystem::remove_all(dir_, ec);
  }

  std::filesystem::path dir_;
  int port_ = 0;
  LocalProcessLauncher launcher_;
  ProcessId pid_;
  std::unique_ptr<Store> store_;
  RegionContext ctx_;
};

TEST_F(CacheMetricsTest, OneNodesSamplesWithPerPeriodCounters) {
  CacheMetrics metrics;
  std::vector<MetricSample> first;
  metrics.Collect(&ctx_, 1'000'000, &first);
  const MetricSample* conns = Find(first, "CurrConnections");
  ASSERT_NE(conns, nullptr);
  EXPECT_GE(conns->value, 1);  // the collector's own connection
  EXPECT_EQ(conns->namespace_, "AWS/ElastiCache");
  const std::vector<std::pair<std::string, std::string>> dimensions = {{"CacheClusterId", "rg-0001-001"},
                                                                       {"CacheNodeId", "0001"}};
  EXPECT_EQ(conns->dimensions, dimensions);
  const MetricSample* memory = Find(first, "DatabaseMemoryUsagePercentage");
  ASSERT_NE(memory, nullptr);
  EXPECT_GT(memory->value, 0);
  EXPECT_LT(memory->value, 100);
  EXPECT_EQ(Find(first, "CacheHits"), nullptr) << "a counter needs two readings";
  EXPECT_EQ(Find(first, "ReplicationLag"), nullptr) << "a primary has no replication lag";

  auto c = RedisConnection::Connect("127.0.0.1", port_, 1000);
  ASSERT_TRUE(c.ok());
  ASSERT_TRUE((*c)->Command({"SET", "k", "v"}).ok());
  EXPECT_EQ(*(*c)->Command({"GET", "k"}), "v");
  EXPECT_EQ(*(*c)->Command({"GET", "missing"}), "");
  auto err = (*c)->Command({"NO-SUCH-COMMAND"});
  ASSERT_FALSE(err.ok());
  EXPECT_EQ(err.status().code(), "RedisError");

  std::vector<MetricSample> second;
  metrics.Collect(&ctx_, 1'005'000, &second);
  ASSERT_NE(Find(second, "CacheHits"), nullptr);
  EXPECT_EQ(Find(second, "CacheHits")->value, 1);
  EXPECT_EQ(Find(second, "CacheMisses")->value, 1);
  ASSERT_NE(Find(second, "CPUUtilization"), nullptr);
  EXPECT_GE(Find(second, "CPUUtilization")->value, 0);
  EXPECT_EQ(Find(second, "CPUUtilization")->unit, "Percent");
  EXPECT_NE(Find(second, "EngineCPUUtilization"), nullptr);
}

TEST_F(CacheMetricsTest, NodesThatAreNotAvailableOrDoNotAnswerAreSkipped) {
  Json doc = *store_->Get(kind::kCacheNode, "rg-0001-001");
  doc["Status"] = "creating";
  ASSERT_TRUE(store_->Put(kind::kCacheNode, "rg-0001-001", doc).ok());
  doc["CacheClusterId"] = "rg-0001-002";
  doc["Status"] = "available";
  doc["Port"] = FreePort();  // nothing listens there
  ASSERT_TRUE(store_->Put(kind::kCacheNode, "rg-0001-002", doc).ok());
  CacheMetrics metrics;
  std::vector<MetricSample> out;
  metrics.Collect(&ctx_, 1'000'000, &out);
  EXPECT_TRUE(out.empty());
  auto refused = RedisConnection::Connect("127.0.0.1", doc["Port"].get<int>(), 200);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), "RedisUnavailable");
}

}  // namespace
}  // namespace autopipe::elasticache

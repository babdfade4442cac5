#include "partition/partition.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

namespace autopipe::partition {
namespace {

namespace fs = std::filesystem;

class PartitionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("autopipe-partition-test-" + std::to_string(::getpid()) + "-" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

TEST_F(PartitionTest, OneKeyPairMadeOncePrivate) {
  auto a = EnsureKeyPair(dir_.string());
  ASSERT_TRUE(a.ok());
  auto b = EnsureKeyPair(dir_.string());
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(a->access_key_id, b->access_key_id);
  EXPECT_EQ(a->secret_access_key, b->secret_access_key);
  struct stat st {};
  ASSERT_EQ(::stat((dir_ / "credentials").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST_F(PartitionTest, RegionsGetDistinctBlocksAndKeepTheirOwn) {
  // Two regions whose default blocks collide.
  auto a = ClaimAddressBlock(dir_.string(), "xx-one-1", "", "127.77");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(*a, "127.77");
  // The first one's entry records this (live) process; a second region with the same default gets another.
  RegionEntry e;
  e.region = "xx-one-1";
  e.address_block = *a;
  e.endpoint = "http://127.0.0.1:1";
  ASSERT_TRUE(RegisterRegion(dir_.string(), e).ok());
  auto b = ClaimAddressBlock(dir_.string(), "xx-two-1", "", "127.77");
  ASSERT_TRUE(b.ok());
  EXPECT_NE(*b, "127.77");
  // A requested block another region holds is refused.
  EXPECT_FALSE(ClaimAddressBlock(dir_.string(), "xx-three-1", "127.77", "127.78").ok());
  // The same region name keeps its block across a stop.
  ASSERT_TRUE(MarkRegionStopped(dir_.string(), "xx-one-1").ok());
  auto again = ClaimAddressBlock(dir_.string(), "xx-one-1", "", "127.99");
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, "127.77");
}

TEST_F(PartitionTest, ADeadPidIsNotAlive) {
  RegionEntry e;
  e.region = "xx-dead-1";
  e.address_block = "127.90";
  ASSERT_TRUE(RegisterRegion(dir_.string(), e).ok());
  auto live = FindRegion(dir_.string(), "xx-dead-1");
  ASSERT_TRUE(live.has_value());
  EXPECT_TRUE(live->alive);
  EXPECT_EQ(live->pid, ::getpid());
  // Rewrite the entry with a start time that is not this process's: a reused or dead pid.
  std::ifstream in(dir_ / "regions" / "xx-dead-1.json");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  size_t at = text.find("\"PidStartTime\": ");
  ASSERT_NE(at, std::string::npos);
  text.replace(at, text.find(',', at) - at, "\"PidStartTime\": 1");
  std::ofstream(dir_ / "regions" / "xx-dead-1.json") << text;
  EXPECT_FALSE(FindRegion(dir_.string(), "xx-dead-1")->alive);
  EXPECT_EQ(ListRegions(dir_.string()).size(), 1u);
}

}  // namespace
}  // namespace autopipe::partition

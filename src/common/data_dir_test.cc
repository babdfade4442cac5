#include "common/data_dir.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>

namespace autopipe {
namespace {

TEST(TakeDataDirTest, MakesAPrivateFolderAndRefusesASecondOwner) {
  char tmpl[] = "/tmp/autopipe_data_dir.XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  const std::filesystem::path dir = std::filesystem::path(tmpl) / "data";
  auto first = TakeDataDir(dir, "server.lock", Status(409, "RegionBusy", "busy"));
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  struct stat st {};
  ASSERT_EQ(stat(dir.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  auto second = TakeDataDir(dir, "server.lock", Status(409, "RegionBusy", "busy"));
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), "RegionBusy");
  ::close(*first);  // the owner goes: the folder can be taken again
  auto third = TakeDataDir(dir, "server.lock", Status(409, "RegionBusy", "busy"));
  ASSERT_TRUE(third.ok());
  ::close(*third);
  std::filesystem::remove_all(tmpl);
}

}  // namespace
}  // namespace autopipe

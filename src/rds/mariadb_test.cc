#include "rds/mariadb.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace autopipe::rds {
namespace {

TEST(SocketPathTest, AServerInAShortFolderKeepsItsSocketInsideIt) {
  ServerConfig c;
  c.dir = "/var/lib/autopipe/rds/db1/s1";
  EXPECT_EQ(SocketPath(c), "/var/lib/autopipe/rds/db1/s1/mysqld.sock");
}

TEST(SocketPathTest, ADeepFolderGetsAShortStableSocketDistinctPerServer) {
  ServerConfig a;
  a.dir = "/tmp/" + std::string(120, 'x') + "/rds/auto-pipeline-db/s1";
  ServerConfig b = a;
  b.dir.back() = '2';
  const std::string pa = SocketPath(a);
  EXPECT_LE(pa.size(), 107u);
  EXPECT_EQ(pa.rfind(ShortSocketDir() + "/", 0), 0u) << pa;
  EXPECT_EQ(pa, SocketPath(a));
  EXPECT_NE(pa, SocketPath(b));
}

TEST(SocketPathTest, WritingTheConfigOfADeepServerMakesAPrivateSocketFolder) {
  char tmpl[] = "/tmp/mariadb-test-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  ServerConfig c;
  c.dir = std::string(tmpl) + "/" + std::string(100, 'd') + "/s1";
  c.address = "127.0.0.1";
  ASSERT_TRUE(WriteServerConfig(c).ok());
  struct stat st {};
  ASSERT_EQ(lstat(ShortSocketDir().c_str(), &st), 0);
  EXPECT_TRUE(S_ISDIR(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  std::ifstream f(c.dir + "/my.cnf");
  std::stringstream text;
  text << f.rdbuf();
  EXPECT_NE(text.str().find("socket=" + SocketPath(c) + "\n"), std::string::npos);
  std::filesystem::remove_all(tmpl);
}

// Every server has its own private tmpdir: a starting mariadbd deletes every #sql* file in its tmpdir, so two
// servers sharing /tmp delete each other's temporary tables mid-query (seen in the full suite).
TEST(ServerConfigTest, EachServerHasItsOwnPrivateTmpdir) {
  char tmpl[] = "/tmp/mariadb-test-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  ServerConfig a, b;
  a.dir = std::string(tmpl) + "/s1";
  b.dir = std::string(tmpl) + "/s2";
  a.address = b.address = "127.0.0.1";
  ASSERT_TRUE(WriteServerConfig(a).ok());
  ASSERT_TRUE(WriteServerConfig(b).ok());
  ASSERT_TRUE(WriteServerConfig(a).ok());  // rewritten (a role change): the folder is kept
  EXPECT_NE(TmpDir(a), TmpDir(b));
  for (const auto* c : {&a, &b}) {
    struct stat st {};
    ASSERT_EQ(lstat(TmpDir(*c).c_str(), &st), 0);
    EXPECT_TRUE(S_ISDIR(st.st_mode));
    EXPECT_EQ(st.st_mode & 0777, 0700u);
    std::ifstream f(c->dir + "/my.cnf");
    std::stringstream text;
    text << f.rdbuf();
    EXPECT_NE(text.str().find("\ntmpdir=" + TmpDir(*c) + "\n"), std::string::npos) << text.str();
  }
  std::filesystem::remove_all(tmpl);
}

}  // namespace
}  // namespace autopipe::rds

#include "ec2/instance_init.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <optional>
#include <sstream>
#include <string>
#include <thread>

#include <gtest/gtest.h>

namespace autopipe {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;

bool WaitFor(const std::function<bool()>& pred, milliseconds limit = milliseconds(5000)) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  for (int i = 0; i < 10000; ++i) {
    if (pred()) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(milliseconds(20));
  }
  return pred();
}

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void WriteFile(const fs::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::trunc);
  out << text;
}

bool Exists(pid_t pid) { return kill(pid, 0) == 0; }

// Each test runs RunInstanceInit in a forked child that leads its own session, the way the launcher starts it,
// with stdout and stderr going to console.log.
class InstanceInitTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/instance_init_test.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    work_ = dir_ / "work";
    fs::create_directories(work_);
    opts_.work_dir = work_.string();
  }

  void TearDown() override {
    if (init_pid_ > 0 && !exit_code_) {
      kill(-init_pid_, SIGKILL);  // the group this test created
      waitpid(init_pid_, nullptr, 0);
    }
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  void StartInit(const std::string& private_ip = "") {
    fs::path console = dir_ / "console.log";
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      setsid();
      int fd = open(console.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
      dup2(fd, 1);
      dup2(fd, 2);
      if (chdir(dir_.c_str()) != 0) _exit(120);
      if (!private_ip.empty()) setenv("AUTOPIPE_PRIVATE_IP", private_ip.c_str(), 1);
      _exit(RunInstanceInit(opts_));
    }
    init_pid_ = pid;
  }

  // The init's exit code, or nullopt if it is still running after `limit`.
  std::optional<int> WaitExit(milliseconds limit) {
    WaitFor([&] {
      int status = 0;
      if (waitpid(init_pid_, &status, WNOHANG) != init_pid_) return false;
      exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      return true;
    }, limit);
    return exit_code_;
  }

  pid_t WaitPidFile(const std::string& name) {
    fs::path path = work_ / name;
    if (!WaitFor([&] { return ReadFile(path).find('\n') != std::string::npos; })) return -1;
    return std::atoi(ReadFile(path).c_str());
  }

  std::string Console() { return ReadFile(dir_ / "console.log"); }

  fs::path dir_;
  fs::path work_;
  InstanceInitOptions opts_;
  pid_t init_pid_ = -1;
  std::optional<int> exit_code_;
};

TEST_F(InstanceInitTest, NothingToRunExitsAtOnce) {
  StartInit();
  EXPECT_EQ(WaitExit(milliseconds(3000)), 0);
}

TEST_F(InstanceInitTest, LivesAsLongAsTheBootScriptsProcess) {
  WriteFile(dir_ / "user-data", "#!/bin/sh\npwd > cwd\necho $$ > main.pid\nexec sleep 30\n");
  opts_.user_data_file = (dir_ / "user-data").string();
  StartInit();
  pid_t sleeper = WaitPidFile("main.pid");
  ASSERT_GT(sleeper, 0);
  EXPECT_EQ(ReadFile(work_ / "cwd"), fs::canonical(work_).string() + "\n");
  EXPECT_NE(fs::status(dir_ / "user-data").permissions() & fs::perms::owner_exec, fs::perms::none);
  EXPECT_FALSE(WaitExit(milliseconds(200)).has_value()) << "init must wait for the script's process";

  ASSERT_EQ(kill(sleeper, SIGKILL), 0);
  EXPECT_EQ(WaitExit(milliseconds(5000)), 0);
  EXPECT_NE(Console().find("autopipe-init: started user-data pid"), std::string::npos) << Console();
}

TEST_F(InstanceInitTest, ScriptWithoutInterpreterLineRunsWithSh) {
  WriteFile(dir_ / "user-data", "echo hello > out\n");
  chmod((dir_ / "user-data").c_str(), 0600);
  opts_.user_data_file = (dir_ / "user-data").string();
  StartInit();
  EXPECT_EQ(WaitExit(milliseconds(5000)), 0);
  EXPECT_EQ(ReadFile(work_ / "out"), "hello\n");
}

TEST_F(InstanceInitTest, WaitsForOrphanedDescendants) {
  // The script exits at once; its background job is re-parented to init, which must wait for it.
  WriteFile(dir_ / "user-data", "#!/bin/sh\n(sleep 0.5; echo late > late) &\nexit 7\n");
  opts_.user_data_file = (dir_ / "user-data").string();
  StartInit();
  EXPECT_EQ(WaitExit(milliseconds(5000)), 0) << "without a service the script's own status does not count";
  EXPECT_EQ(ReadFile(work_ / "late"), "late\n");
  EXPECT_NE(Console().find("user-data pid"), std::string::npos);
}

TEST_F(InstanceInitTest, SigtermStopsTheWholeTree) {
  WriteFile(dir_ / "user-data", "#!/bin/sh\nsleep 30 &\necho $! > bg.pid\necho $$ > main.pid\nexec sleep 30\n");
  opts_.user_data_file = (dir_ / "user-data").string();
  StartInit();
  pid_t main_pid = WaitPidFile("main.pid");
  pid_t bg_pid = WaitPidFile("bg.pid");
  ASSERT_GT(main_pid, 0);
  ASSERT_GT(bg_pid, 0);

  ASSERT_EQ(kill(init_pid_, SIGTERM), 0);
  EXPECT_EQ(WaitExit(milliseconds(3000)), 0);
  EXPECT_FALSE(Exists(main_pid));
  EXPECT_FALSE(Exists(bg_pid));
  EXPECT_NE(Console().find("SIGTERM"), std::string::npos) << Console();
}

TEST_F(InstanceInitTest, KillsWhatIgnoresSigtermAfterTheGracePeriod) {
  // One process ignores SIGTERM; another left the group with setsid and is only reachable as a descendant.
  WriteFile(dir_ / "user-data",
            "#!/bin/sh\ntrap '' TERM\nsetsid sleep 30 &\necho $! > escaped.pid\necho $$ > main.pid\n"
            "exec sleep 30\n");
  opts_.user_data_file = (dir_ / "user-data").string();
  StartInit();
  pid_t main_pid = WaitPidFile("main.pid");
  pid_t escaped = WaitPidFile("escaped.pid");
  ASSERT_GT(main_pid, 0);
  ASSERT_GT(escaped, 0);

  const auto start = std::chrono::steady_clock::now();
  ASSERT_EQ(kill(init_pid_, SIGTERM), 0);
  EXPECT_EQ(WaitExit(milliseconds(10000)), 0);
  EXPECT_GE(std::chrono::steady_clock::now() - start, milliseconds(4500));
  EXPECT_FALSE(Exists(main_pid));
  EXPECT_FALSE(Exists(escaped));
}

TEST_F(InstanceInitTest, StartsTheServiceAndReturnsItsStatus) {
  // A stand-in for the autopipe binary: records its arguments and exits 3.
  WriteFile(dir_ / "fake-autopipe", "#!/bin/sh\necho \"$@\" > \"$0.args\"\nexit 3\n");
  chmod((dir_ / "fake-autopipe").c_str(), 0700);
  opts_.self_exe = (dir_ / "fake-autopipe").string();
  opts_.service = "sample-app";
  StartInit("127.0.0.9");
  EXPECT_EQ(WaitExit(milliseconds(5000)), 3);
  EXPECT_EQ(ReadFile(dir_ / "fake-autopipe.args"), "sample-app --listen 127.0.0.9:80\n");
  EXPECT_NE(Console().find("autopipe-init: started sample-app pid"), std::string::npos) << Console();
}

TEST_F(InstanceInitTest, UnknownServiceFails) {
  opts_.service = "no-such-service";
  StartInit();
  EXPECT_EQ(WaitExit(milliseconds(3000)), 2);
}

}  // namespace
}  // namespace autopipe

#include "process/launcher.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <mutex>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

namespace autopipe {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;

// Polls `pred` every 20 ms for at most `limit`.
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

class LauncherTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/launcher_test.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }

  void TearDown() override {
    // End only what this test started, by pid.
    for (const ProcessId& id : started_) launcher_.SignalGroup(id, /*force=*/true);
    for (const ProcessId& id : started_) WaitFor([&] { return !launcher_.GroupAlive(id); });
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  LaunchSpec Shell(const std::string& script) {
    LaunchSpec spec;
    spec.argv = {"/bin/sh", "-c", script};
    spec.env = {{"PATH", "/usr/bin:/bin"}};
    spec.working_dir = (dir_ / "work").string();
    spec.log_path = (dir_ / "console.log").string();
    return spec;
  }

  ProcessId Start(const LaunchSpec& spec) {
    Result<ProcessId> r = launcher_.Launch(spec);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    if (!r.ok()) return ProcessId{};
    started_.push_back(*r);
    return *r;
  }

  std::string Log() { return ReadFile(dir_ / "console.log"); }

  LocalProcessLauncher launcher_;
  fs::path dir_;
  std::vector<ProcessId> started_;
};

TEST(ProcessStartTimeTest, SelfHasStartTime) {
  EXPECT_TRUE(ProcessStartTime(getpid()).has_value());
  EXPECT_FALSE(ProcessStartTime(-5).has_value());
}

TEST_F(LauncherTest, LaunchedProcessIsAliveUntilKilled) {
  ProcessId id = Start(Shell("sleep 30"));
  ASSERT_GT(id.pid, 0);
  EXPECT_TRUE(launcher_.IsAlive(id));
  EXPECT_EQ(ProcessStartTime(id.pid), id.start_time);
  EXPECT_EQ(getpgid(id.pid), id.pid) << "the child leads its own group";
  EXPECT_EQ(getsid(id.pid), id.pid) << "the child leads its own session";

  ASSERT_EQ(kill(id.pid, SIGKILL), 0);
  EXPECT_TRUE(WaitFor([&] { return !launcher_.IsAlive(id); }));
}

TEST_F(LauncherTest, ExitedChildIsReaped) {
  ProcessId id = Start(Shell("exit 0"));
  ASSERT_GT(id.pid, 0);
  // Reaped means /proc/<pid> disappears entirely rather than staying a zombie.
  EXPECT_TRUE(WaitFor([&] { return !fs::exists("/proc/" + std::to_string(id.pid)); }));
  EXPECT_FALSE(launcher_.IsAlive(id));
}

TEST_F(LauncherTest, WrongStartTimeIsNotAlive) {
  // The shell answers SIGTERM by writing "term"; a SIGKILL sent before that SIGTERM would kill it first. "ready"
  // is written once the trap is set and the background sleep exists. The trap kills the sleep itself: a SIGTERM
  // that reaches the forked child before it drops the inherited trap would be lost.
  ProcessId id = Start(Shell("trap 'echo term > got; kill -9 $! 2>/dev/null; exit 0' TERM; sleep 30 & "
                             "echo ready > ready; wait"));
  ASSERT_GT(id.pid, 0);
  ASSERT_TRUE(WaitFor([&] { return ReadFile(dir_ / "work" / "ready") == "ready\n"; }));
  ProcessId fake{id.pid, id.start_time + 1};
  EXPECT_FALSE(launcher_.IsAlive(fake));
  EXPECT_FALSE(launcher_.GroupAlive(fake));
  launcher_.SignalGroup(fake, /*force=*/true);  // must not touch the real process
  EXPECT_TRUE(launcher_.IsAlive(id));
  // Had the SIGKILL above been sent, the process would already be doomed (a SIGKILL takes effect when sent), so
  // it could not run its TERM trap now.
  launcher_.SignalGroup(id, /*force=*/false);
  ASSERT_TRUE(WaitFor([&] { return !launcher_.GroupAlive(id); }));
  EXPECT_EQ(ReadFile(dir_ / "work" / "got"), "term\n");
}

TEST_F(LauncherTest, SignalGroupReachesGrandchildren) {
  // The shell starts a background grandchild, records its pid, then waits.
  ProcessId id = Start(Shell("sleep 30 & echo $! > grandchild.pid; wait"));
  ASSERT_GT(id.pid, 0);
  fs::path pid_file = dir_ / "work" / "grandchild.pid";
  ASSERT_TRUE(WaitFor([&] { return !ReadFile(pid_file).empty(); }));
  pid_t grandchild = std::atoi(ReadFile(pid_file).c_str());
  ASSERT_GT(grandchild, 0);
  EXPECT_EQ(getpgid(grandchild), id.pid);
  EXPECT_TRUE(launcher_.GroupAlive(id));

  launcher_.SignalGroup(id, /*force=*/false);
  EXPECT_TRUE(WaitFor([&] { return !launcher_.GroupAlive(id); }));
  EXPECT_FALSE(launcher_.IsAlive(id));
  EXPECT_FALSE(ProcessStartTime(grandchild).has_value());
}

TEST_F(LauncherTest, GroupOutlivesItsLeader) {
  ProcessId id = Start(Shell("sleep 30 & echo $! > grandchild.pid"));
  ASSERT_GT(id.pid, 0);
  fs::path pid_file = dir_ / "work" / "grandchild.pid";
  ASSERT_TRUE(WaitFor([&] { return !ReadFile(pid_file).empty(); }));
  EXPECT_TRUE(WaitFor([&] { return !launcher_.IsAlive(id); }));
  EXPECT_TRUE(launcher_.GroupAlive(id)) << "the orphaned sleep is still in the group";

  launcher_.SignalGroup(id, /*force=*/true);  // the leader is dead; the rest of the group still gets it
  EXPECT_TRUE(WaitFor([&] { return !launcher_.GroupAlive(id); }));
}

TEST_F(LauncherTest, MissingExecutableIsAnError) {
  LaunchSpec spec = Shell("");
  spec.argv = {(dir_ / "no-such-binary").string()};
  Result<ProcessId> r = launcher_.Launch(spec);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("No such file"), std::string::npos) << r.status().message();
}

TEST_F(LauncherTest, BadWorkingDirIsAnError) {
  LaunchSpec spec = Shell("true");
  spec.working_dir = "/proc/self/not-a-dir";
  EXPECT_FALSE(launcher_.Launch(spec).ok());
}

TEST_F(LauncherTest, EnvironmentAndLogReachTheChild) {
  LaunchSpec spec = Shell("echo foo=$FOO; echo err >&2; pwd; echo home=$HOME; read x; echo read=$?");
  spec.env["FOO"] = "bar baz";
  ProcessId first = Start(spec);
  ASSERT_GT(first.pid, 0);
  ASSERT_TRUE(WaitFor([&] { return Log().find("read=") != std::string::npos; }));
  std::string log = Log();
  EXPECT_NE(log.find("foo=bar baz\n"), std::string::npos) << log;
  EXPECT_NE(log.find("err\n"), std::string::npos) << log;
  EXPECT_NE(log.find(fs::canonical(dir_ / "work").string() + "\n"), std::string::npos) << log;
  EXPECT_NE(log.find("home=\n"), std::string::npos) << "only the given environment: " << log;
  EXPECT_NE(log.find("read=1"), std::string::npos) << "stdin is /dev/null (EOF): " << log;
  EXPECT_EQ(fs::status(dir_ / "console.log").permissions() & fs::perms::all,
            fs::perms::owner_read | fs::perms::owner_write);

  // A second launch appends rather than truncates.
  ProcessId second = Start(Shell("echo second"));
  ASSERT_GT(second.pid, 0);
  ASSERT_TRUE(WaitFor([&] { return Log().find("second\n") != std::string::npos; }));
  EXPECT_NE(Log().find("foo=bar baz\n"), std::string::npos);
}

TEST_F(LauncherTest, NoDescriptorLeaksIntoTheChild) {
  int leaky = open("/dev/null", O_RDONLY);  // deliberately without O_CLOEXEC
  ASSERT_GE(leaky, 3);
  int high = fcntl(leaky, F_DUPFD, 200);
  ASSERT_GE(high, 200);
  ProcessId id = Start(Shell("ls /proc/self/fd; echo done"));
  close(leaky);
  close(high);
  ASSERT_GT(id.pid, 0);
  ASSERT_TRUE(WaitFor([&] { return Log().find("done\n") != std::string::npos; }));
  // ls itself opens one descriptor (3) to read the directory.
  EXPECT_EQ(Log(), "0\n1\n2\n3\ndone\n");
}

TEST_F(LauncherTest, IgnoredSignalsAreResetInTheChild) {
  struct sigaction ign {}, old {};
  ign.sa_handler = SIG_IGN;
  ASSERT_EQ(sigaction(SIGTERM, &ign, &old), 0);
  sigset_t block, saved;
  sigemptyset(&block);
  sigaddset(&block, SIGUSR1);
  pthread_sigmask(SIG_BLOCK, &block, &saved);

  ProcessId id = Start(Shell("grep -E '^Sig(Ign|Blk)' /proc/self/status; echo done"));

  pthread_sigmask(SIG_SETMASK, &saved, nullptr);
  sigaction(SIGTERM, &old, nullptr);
  ASSERT_GT(id.pid, 0);
  ASSERT_TRUE(WaitFor([&] { return Log().find("done\n") != std::string::npos; }));
  EXPECT_NE(Log().find("SigBlk:\t0000000000000000\n"), std::string::npos) << Log();
  // SIGTERM is bit 15 (0x4000); grep itself ignores nothing else that matters here.
  std::string log = Log();
  size_t pos = log.find("SigIgn:\t");
  ASSERT_NE(pos, std::string::npos);
  uint64_t ignored = std::strtoull(log.c_str() + pos + 8, nullptr, 16);
  EXPECT_EQ(ignored & (1ULL << (SIGTERM - 1)), 0u) << log;
}

// Runs without the fixture so this launcher is the only one and its destruction really stops the reaper.
TEST(LauncherLifetimeTest, DestructionStopsCleanlyWithLiveChildren) {
  auto launcher = std::make_unique<LocalProcessLauncher>();
  LaunchSpec spec;
  spec.argv = {"/bin/sleep", "30"};
  Result<ProcessId> r = launcher->Launch(spec);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const auto before = std::chrono::steady_clock::now();
  launcher.reset();
  EXPECT_LT(std::chrono::steady_clock::now() - before, milliseconds(1000));
  EXPECT_TRUE(ProcessStartTime(r->pid).has_value()) << "children outlive the launcher";

  // Nobody reaps it now: end it and reap it here.
  ASSERT_EQ(kill(r->pid, SIGKILL), 0);
  int status = 0;
  ASSERT_EQ(waitpid(r->pid, &status, 0), r->pid);
  EXPECT_TRUE(WIFSIGNALED(status));

  // A new launcher starts a new reaper.
  LocalProcessLauncher again;
  spec.argv = {"/bin/true"};
  Result<ProcessId> t = again.Launch(spec);
  ASSERT_TRUE(t.ok());
  EXPECT_TRUE(WaitFor([&] { return !fs::exists("/proc/" + std::to_string(t->pid)); }));
}

TEST_F(LauncherTest, ConcurrentLaunches) {
  std::vector<std::thread> threads;
  std::vector<Result<ProcessId>> results(8, Status::Internal("not run"));
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&, i] { results[i] = launcher_.Launch(Shell("sleep 30")); });
  }
  for (auto& t : threads) t.join();
  for (auto& r : results) {
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    started_.push_back(*r);
    EXPECT_TRUE(launcher_.IsAlive(*r));
  }
}

// A controller calls Watch() with the region's lock held; the exit callback takes that lock. With the callback
// run by Watch() itself (for a process already gone) this deadlocked on the caller's own lock.
TEST_F(LauncherTest, ExitCallbackNeverRunsInsideWatch) {
  std::mutex region_mu;
  std::atomic<int> calls{0};
  launcher_.SetExitCallback([&] {
    std::lock_guard lock(region_mu);
    ++calls;
  });
  ProcessId gone = Start(Shell("exit 0"));
  ASSERT_TRUE(WaitFor([&] { return !launcher_.IsAlive(gone); }));
  {
    std::lock_guard lock(region_mu);
    launcher_.Watch(gone);  // already gone: must call back later, on the watcher's thread
  }
  EXPECT_TRUE(WaitFor([&] { return calls.load() > 0; }));
  launcher_.SetExitCallback(nullptr);
}

// A region clears the callback before it destroys what the callback calls into: SetExitCallback must not return
// while the old callback still runs.
TEST_F(LauncherTest, ClearingTheCallbackWaitsForOneInProgress) {
  std::atomic<bool> in_callback{false};
  std::atomic<bool> release{false};
  std::atomic<bool> callback_done{false};
  launcher_.SetExitCallback([&] {
    in_callback = true;
    while (!release) std::this_thread::sleep_for(milliseconds(1));
    callback_done = true;
  });
  ProcessId p = Start(Shell("exit 0"));
  launcher_.Watch(p);
  ASSERT_TRUE(WaitFor([&] { return in_callback.load(); }));
  std::atomic<bool> cleared{false};
  std::thread clearer([&] {
    launcher_.SetExitCallback(nullptr);
    cleared = true;
    EXPECT_TRUE(callback_done.load()) << "SetExitCallback returned while the callback still ran";
  });
  std::this_thread::sleep_for(milliseconds(50));  // give a wrong implementation the chance to return early
  EXPECT_FALSE(cleared.load());
  release = true;
  clearer.join();
  EXPECT_TRUE(cleared.load());
}

// Reads one "Name:\t..." line of /proc/<pid>/status (the value after the tab), "" when absent.
std::string StatusField(pid_t pid, const std::string& name) {
  std::istringstream in(ReadFile("/proc/" + std::to_string(pid) + "/status"));
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(name + ":\t", 0) == 0) return line.substr(name.size() + 2);
  }
  return "";
}

// A Python program that tries ports 1023 down to 900 on a 127.x address and reports the first outcome that is
// not "in use": "bound <port>" or "EACCES" (then "done"). No fixed port: a port someone holds is skipped.
constexpr char kBindLowPort[] =
    "import errno, os, socket\n"
    "addr = '127.%d.%d.%d' % (240 + os.getpid() % 10, os.getpid() % 250 + 1, 201)\n"
    "result = 'none free'\n"
    "for port in range(1023, 899, -1):\n"
    "    s = socket.socket()\n"
    "    try:\n"
    "        s.bind((addr, port)); result = 'bound %d' % port; break\n"
    "    except OSError as e:\n"
    "        if e.errno == errno.EADDRINUSE: continue\n"
    "        result = errno.errorcode.get(e.errno, str(e.errno)); break\n"
    "    finally:\n"
    "        s.close()\n"
    "print(result, flush=True)\n";

class LauncherIdentityTest : public LauncherTest {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "changing a child's uid needs root";
    if (access("/usr/bin/python3", X_OK) != 0) GTEST_SKIP() << "needs /usr/bin/python3";
    LauncherTest::SetUp();
  }

  // The test's folder is 0700 root: the new uid can reach its working dir only because the child entered it
  // before it changed identity.
  LaunchSpec Python(const std::string& program) {
    LaunchSpec spec;
    spec.argv = {"/usr/bin/python3", "-c", program};
    spec.env = {{"PATH", "/usr/bin:/bin"}};
    spec.working_dir = (dir_ / "work").string();
    spec.log_path = (dir_ / "console.log").string();
    spec.uid = kUid;
    spec.gid = kGid;
    return spec;
  }

  static constexpr uid_t kUid = 2'100'000'007;
  static constexpr gid_t kGid = 2'100'000'011;
};

TEST_F(LauncherIdentityTest, RunsUnderTheGivenUidAndGidAndBindsALowPort) {
  LaunchSpec spec = Python(std::string(kBindLowPort) + "import time; time.sleep(30)\n");
  spec.keep_net_bind_service = true;
  ProcessId id = Start(spec);
  ASSERT_GT(id.pid, 0);
  ASSERT_TRUE(WaitFor([&] { return Log().find('\n') != std::string::npos; })) << Log();
  // Real, effective, saved and filesystem ids, and no supplementary group left from root.
  EXPECT_EQ(StatusField(id.pid, "Uid"), "2100000007\t2100000007\t2100000007\t2100000007");
  EXPECT_EQ(StatusField(id.pid, "Gid"), "2100000011\t2100000011\t2100000011\t2100000011");
  EXPECT_EQ(StatusField(id.pid, "Groups").find_first_not_of(' '), std::string::npos) << StatusField(id.pid, "Groups");
  EXPECT_EQ(StatusField(id.pid, "NoNewPrivs"), "1");
  // CAP_NET_BIND_SERVICE (bit 10) and nothing else, also ambient (so what it execs keeps it).
  EXPECT_EQ(StatusField(id.pid, "CapEff"), "0000000000000400");
  EXPECT_EQ(StatusField(id.pid, "CapAmb"), "0000000000000400");
  EXPECT_EQ(Log().rfind("bound ", 0), 0u) << Log();
  // Root still stops it (as the supervisor and `autopipe down` do).
  launcher_.SignalGroup(id, /*force=*/false);
  EXPECT_TRUE(WaitFor([&] { return !launcher_.GroupAlive(id); }));
}

TEST_F(LauncherIdentityTest, WithoutTheCapabilityALowPortIsRefusedAndRootFilesAreClosed) {
  fs::create_directories(dir_ / "work");
  {
    std::ofstream out(dir_ / "work" / "secret");
    out << "s3cret";
  }
  ASSERT_EQ(chmod((dir_ / "work" / "secret").c_str(), 0600), 0);
  ProcessId id = Start(Python(std::string(kBindLowPort) +
                              "try:\n    open('secret').read(); print('read')\n"
                              "except PermissionError:\n    print('EACCES secret')\n"));
  ASSERT_GT(id.pid, 0);
  ASSERT_TRUE(WaitFor([&] { return !launcher_.IsAlive(id); }));
  // A machine that opened low ports to everyone (the sysctl) cannot show the refusal.
  if (std::atoi(ReadFile("/proc/sys/net/ipv4/ip_unprivileged_port_start").c_str()) > 1023) {
    EXPECT_NE(Log().find("EACCES\n"), std::string::npos) << Log();
  }
  EXPECT_NE(Log().find("EACCES secret\n"), std::string::npos) << Log();
}

TEST_F(LauncherIdentityTest, AnExecutableUnderAFolderTheUidCannotSearchStillStarts) {
  // dir_ is 0700 root: a path exec as the new uid would fail; the descriptor opened before the change does not.
  fs::copy_file("/bin/sh", dir_ / "sh");
  ASSERT_EQ(chmod((dir_ / "sh").c_str(), 0755), 0);
  LaunchSpec spec = Shell("id -u");
  spec.argv[0] = (dir_ / "sh").string();
  spec.uid = 2'100'000'009;
  ProcessId id = Start(spec);
  ASSERT_GT(id.pid, 0);
  EXPECT_TRUE(WaitFor([&] { return Log() == "2100000009\n"; })) << Log();
}

TEST(LauncherIdentityNotRootTest, ChangingUidWithoutRootFailsTheLaunch) {
  if (geteuid() == 0) GTEST_SKIP() << "only meaningful without root";
  LocalProcessLauncher launcher;
  LaunchSpec spec;
  spec.argv = {"/bin/true"};
  spec.uid = 2'100'000'013;
  Result<ProcessId> r = launcher.Launch(spec);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("change uid/gid"), std::string::npos) << r.status().ToString();
}


// ---- Children that leave the process group (coreutils' timeout calls setpgid; setsid starts a session) --------

// The pids whose environment holds `marker` (NAME=value), from /proc (root or the same user can read them).
std::vector<pid_t> PidsWithEnv(const std::string& marker) {
  std::vector<pid_t> out;
  for (const auto& entry : fs::directory_iterator("/proc")) {
    const std::string name = entry.path().filename();
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::string env = ReadFile(entry.path() / "environ");
    if (env.find(marker) == std::string::npos) continue;
    auto st = ProcessStartTime(std::atoi(name.c_str()));  // nullopt for zombies
    if (st) out.push_back(std::atoi(name.c_str()));
  }
  return out;
}

class EscapeTest : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/launcher_escape.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    launcher_ = std::make_unique<LocalProcessLauncher>(LocalProcessLauncher::Options{.use_cgroups = GetParam()});
    if (GetParam() && !launcher_->cgroups_available()) GTEST_SKIP() << "no writable cgroup v2 here";
    if (access("/usr/bin/python3", X_OK) != 0) GTEST_SKIP() << "needs /usr/bin/python3";
    marker_ = "AUTOPIPE_ESCAPE_TEST=" + std::to_string(getpid()) + "-" + dir_.filename().string();
  }
  void TearDown() override {
    for (pid_t pid : PidsWithEnv(marker_)) kill(pid, SIGKILL);  // only what this test started carries the marker
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  // A shell that starts `timeout 300 sleep 300` (its own process group), `setsid sleep 300` (its own session)
  // and a double-forked setsid shell with a child, then waits.
  ProcessId StartEscapers() {
    LaunchSpec spec;
    // The shell is made a child subreaper first (preserved across execve), as instance-init is: the fallback
    // finds orphans because they are re-parented into the tree rather than to init.
    spec.argv = {"/usr/bin/python3", "-c",
                 "import ctypes, os; ctypes.CDLL(None).prctl(36, 1, 0, 0, 0); os.execv('/bin/sh', ['sh', '-c', "
                 "\"timeout 300 sleep 300 & setsid sleep 300 & (setsid sh -c 'sleep 300 & wait' &) ; wait\"])"};
    const size_t eq = marker_.find('=');
    spec.env = {{"PATH", "/usr/bin:/bin"}, {marker_.substr(0, eq), marker_.substr(eq + 1)}};
    spec.working_dir = (dir_ / "work").string();
    spec.log_path = (dir_ / "console.log").string();
    spec.cgroup_name = "escape-test-" + dir_.filename().string().substr(dir_.filename().string().find('.') + 1);
    Result<ProcessId> r = launcher_->Launch(spec);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    if (!r.ok()) return {};
    EXPECT_EQ(!r->cgroup.empty(), GetParam());
    return *r;
  }

  // True once all three sleeps run (a count of all processes could be reached while the double fork's
  // short-lived subshell still exists and before the last sleep starts).
  bool AllStarted() {
    int sleeps = 0;
    for (pid_t pid : PidsWithEnv(marker_)) sleeps += ReadFile("/proc/" + std::to_string(pid) + "/comm") == "sleep\n";
    return sleeps == 3;
  }

  std::unique_ptr<LocalProcessLauncher> launcher_;
  fs::path dir_;
  std::string marker_;
};

TEST_P(EscapeTest, StoppingTakesChildrenThatLeftTheGroupAndTheSession) {
  ProcessId id = StartEscapers();
  ASSERT_GT(id.pid, 0);
  // sh, timeout and its sleep, setsid's sleep, the double-forked sh and its sleep.
  ASSERT_TRUE(WaitFor([&] { return AllStarted(); })) << PidsWithEnv(marker_).size();
  std::vector<pid_t> members = ProcessTreeMembers(id);
  for (pid_t pid : PidsWithEnv(marker_)) {
    EXPECT_NE(std::find(members.begin(), members.end(), pid), members.end()) << "pid " << pid << " escaped";
  }

  launcher_->SignalGroup(id, /*force=*/true);
  EXPECT_TRUE(WaitFor([&] { return PidsWithEnv(marker_).empty(); })) << PidsWithEnv(marker_).size() << " left";
  EXPECT_TRUE(WaitFor([&] { return !launcher_->GroupAlive(id); }));
  launcher_->Release(id);
  if (!id.cgroup.empty()) EXPECT_FALSE(fs::exists(id.cgroup)) << "the empty cgroup is removed";
}

TEST_P(EscapeTest, GracefulStopReachesEscapersToo) {
  ProcessId id = StartEscapers();
  ASSERT_GT(id.pid, 0);
  ASSERT_TRUE(WaitFor([&] { return AllStarted(); }));
  launcher_->SignalGroup(id, /*force=*/false);  // SIGTERM: sleep and timeout die of it
  EXPECT_TRUE(WaitFor([&] { return !launcher_->GroupAlive(id); }));
  // Every one got the SIGTERM; without a cgroup, processes orphaned by the shell's death may still be dying.
  EXPECT_TRUE(WaitFor([&] { return PidsWithEnv(marker_).empty(); }, milliseconds(2000)));
  launcher_->Release(id);
}

INSTANTIATE_TEST_SUITE_P(CgroupAndFallback, EscapeTest, ::testing::Values(true, false),
                         [](const auto& info) { return info.param ? "Cgroup" : "SessionAndDescendants"; });

}  // namespace
}  // namespace autopipe

// Recorded operations: steps in order with Data carried between them, waiting, undo in reverse on failure, and
// the promise that matters: a kill -9 of the server in the middle of an operation resumes it at the step that
// was interrupted (proven with a real process, a real SQLite store and SIGKILL).
#include "region/operation.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>

#include "common/clock.h"
#include "process/launcher.h"
#include "store/store.h"

namespace autopipe {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;

void Append(const fs::path& log, const std::string& line) {
  std::ofstream(log, std::ios::app) << line << "\n";
}

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// A three-step operation that logs each step (and each undo) to `log`. Step "two" can be made to block
// forever (the child process killed in the middle of it) or to fail.
OperationType LoggingOperation(const fs::path& log, bool block_in_two, bool fail_in_three = false) {
  OperationType t;
  t.name = "test";
  t.steps = {
      {"one",
       [log](StepContext& c) {
         Append(log, "one");
         c.data["FromOne"] = "kept";
         return StepResult::Done();
       },
       [log](StepContext&) {
         Append(log, "undo one");
         return Status::Ok();
       }},
      {"two",
       [log, block_in_two](StepContext& c) {
         Append(log, "two sees " + c.data.value("FromOne", std::string("nothing")));
         while (block_in_two) pause();  // the server dies here
         return StepResult::Done();
       },
       nullptr},
      {"three",
       [log, fail_in_three](StepContext&) {
         Append(log, "three");
         return fail_in_three ? StepResult::Fail(Status::Internal("three broke")) : StepResult::Done();
       },
       nullptr},
  };
  return t;
}

struct Harness {
  explicit Harness(Store* store) {
    ctx.store = store;
    ctx.clock = &clock;
    ctx.mu = &mu;
  }
  // Reconciles `id` until it is finished (or at most `limit` calls).
  Json RunToEnd(OperationController& c, const std::string& id, int limit = 20) {
    for (int i = 0; i < limit; ++i) {
      auto doc = ctx.store->Get(kind::kOperation, id);
      if (!doc) return Json();
      if ((*doc)["State"] == operation_state::kSucceeded || (*doc)["State"] == operation_state::kFailed) return *doc;
      ReconcileResult r = c.Reconcile(id);
      EXPECT_TRUE(r.status().ok()) << r.status().ToString();
    }
    return *ctx.store->Get(kind::kOperation, id);
  }
  FakeClock clock;
  std::mutex mu;
  RegionContext ctx;
};

class OperationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/operation_test.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  fs::path dir_;
};

TEST_F(OperationTest, StepsRunInOrderAndDataCarriesOver) {
  auto store = NewMemoryStore();
  Harness h(store.get());
  OperationController c(&h.ctx, {LoggingOperation(dir_ / "log", false)});
  std::vector<StoreWrite> writes;
  const std::string id = StartOperation(h.ctx, writes, "test", "db-1");
  ASSERT_TRUE(store->Commit(writes).ok());
  Json done = h.RunToEnd(c, id);
  EXPECT_EQ(done["State"], operation_state::kSucceeded);
  EXPECT_EQ(done["Data"]["FromOne"], "kept");
  EXPECT_EQ(ReadFile(dir_ / "log"), "one\ntwo sees kept\nthree\n");
}

TEST_F(OperationTest, AFailedStepUndoesTheStepsDoneLastFirst) {
  auto store = NewMemoryStore();
  Harness h(store.get());
  OperationController c(&h.ctx, {LoggingOperation(dir_ / "log", false, /*fail_in_three=*/true)});
  std::vector<StoreWrite> writes;
  const std::string id = StartOperation(h.ctx, writes, "test", "db-1");
  ASSERT_TRUE(store->Commit(writes).ok());
  Json done = h.RunToEnd(c, id);
  EXPECT_EQ(done["State"], operation_state::kFailed);
  EXPECT_EQ(done["Error"], "three broke");
  // Step two has no undo; step one's runs.
  EXPECT_EQ(ReadFile(dir_ / "log"), "one\ntwo sees kept\nthree\nundo one\n");
}

TEST_F(OperationTest, WaitingRunsTheSameStepAgainWithoutCommitting) {
  auto store = NewMemoryStore();
  Harness h(store.get());
  int polls = 0;
  OperationType t{"poll", {{"wait-twice", [&](StepContext&) {
                              return ++polls < 3 ? StepResult::Wait(milliseconds(250)) : StepResult::Done();
                            }, nullptr}}};
  OperationController c(&h.ctx, {t});
  std::vector<StoreWrite> writes;
  const std::string id = StartOperation(h.ctx, writes, "poll", "x");
  ASSERT_TRUE(store->Commit(writes).ok());
  const uint64_t revision = store->Revision();
  ReconcileResult r = c.Reconcile(id);
  ASSERT_TRUE(r.requeue_after().has_value());
  EXPECT_EQ(r.requeue_after()->count(), 250);
  EXPECT_EQ(store->Revision(), revision);
  EXPECT_EQ(h.RunToEnd(c, id)["State"], operation_state::kSucceeded);
  EXPECT_EQ(polls, 3);
}

TEST_F(OperationTest, UnknownTypeFailsInsteadOfLooping) {
  auto store = NewMemoryStore();
  Harness h(store.get());
  OperationController c(&h.ctx, {});
  std::vector<StoreWrite> writes;
  const std::string id = StartOperation(h.ctx, writes, "from-a-newer-version", "x");
  ASSERT_TRUE(store->Commit(writes).ok());
  EXPECT_EQ(h.RunToEnd(c, id)["State"], operation_state::kFailed);
}

// The child half of the crash test: a "server" that runs the operation until it is killed in step two. Runs
// only when the parent test starts this binary with AUTOPIPE_OPERATION_CHILD_DIR set.
TEST(OperationCrashChild, RunsUntilKilled) {
  const char* dir_env = std::getenv("AUTOPIPE_OPERATION_CHILD_DIR");
  if (dir_env == nullptr) GTEST_SKIP() << "started by OperationTest.KillDashNineInAStepResumesAtThatStep";
  fs::path dir = dir_env;
  auto store = OpenSqliteStore((dir / "state.db").string());
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  Harness h(store->get());
  OperationController c(&h.ctx, {LoggingOperation(dir / "log", /*block_in_two=*/true)});
  std::vector<StoreWrite> writes;
  const std::string id = StartOperation(h.ctx, writes, "test", "db-1");
  ASSERT_TRUE((*store)->Commit(writes).ok());
  std::ofstream(dir / "id") << id;
  h.RunToEnd(c, id);  // never returns: step two blocks until SIGKILL
}

TEST_F(OperationTest, KillDashNineInAStepResumesAtThatStep) {
  char self[4096];
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  ASSERT_GT(n, 0);
  LocalProcessLauncher launcher;
  LaunchSpec spec;
  spec.argv = {std::string(self, static_cast<size_t>(n)), "--gtest_filter=OperationCrashChild.RunsUntilKilled"};
  spec.env = {{"AUTOPIPE_OPERATION_CHILD_DIR", dir_.string()}, {"PATH", "/usr/bin:/bin"}};
  spec.log_path = (dir_ / "child.log").string();
  auto child = launcher.Launch(spec);
  ASSERT_TRUE(child.ok()) << child.status().ToString();
  // Wait (bounded) until the child is inside step two, then kill it there.
  bool in_two = false;
  for (int i = 0; i < 1000 && !in_two; ++i) {
    in_two = ReadFile(dir_ / "log").find("two sees") != std::string::npos;
    if (!in_two) std::this_thread::sleep_for(milliseconds(10));
  }
  ASSERT_TRUE(in_two) << ReadFile(dir_ / "child.log");
  ASSERT_EQ(kill(child->pid, SIGKILL), 0);
  for (int i = 0; i < 500 && launcher.IsAlive(*child); ++i) std::this_thread::sleep_for(milliseconds(10));
  ASSERT_FALSE(launcher.IsAlive(*child));

  // The restarted "server": same store, the same operation type whose step two now completes.
  auto store = OpenSqliteStore((dir_ / "state.db").string());
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  Harness h(store->get());
  const std::string id = ReadFile(dir_ / "id");
  auto before = (*store)->Get(kind::kOperation, id);
  ASSERT_TRUE(before.has_value());
  EXPECT_EQ((*before)["Step"], 1) << "step one's completion was recorded before step two acted";
  OperationController c(&h.ctx, {LoggingOperation(dir_ / "log", false)});
  Json done = h.RunToEnd(c, id);
  EXPECT_EQ(done["State"], operation_state::kSucceeded);
  // Step one ran once; step two ran again (with step one's Data, read back from disk); three ran once.
  EXPECT_EQ(ReadFile(dir_ / "log"), "one\ntwo sees kept\ntwo sees kept\nthree\n");
}

}  // namespace
}  // namespace autopipe

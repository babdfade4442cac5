// EventLoop: fd events edge-triggered with output only on request, timers, Post/Wake from another thread, and
// handlers buried mid-batch.
#include "lb/event_loop.h"

#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <thread>

#include <gtest/gtest.h>

namespace autopipe::lb {
namespace {

struct Recorder : FdHandler {
  int events = 0;
  uint32_t last = 0;
  void OnEvent(uint32_t e) override {
    ++events;
    last = e;
  }
};

// Runs turns until done() or 200 turns of at most 10 ms each.
template <typename F>
void RunUntil(EventLoop& loop, F done) {
  for (int i = 0; i < 200 && !done(); ++i) loop.RunOnce(10);
}

TEST(LbEventLoopTest, InputIsEdgeTriggeredAndOutputOnlyWhenAsked) {
  int sv[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
  EventLoop loop;
  Recorder r;
  loop.Watch(sv[0], &r, /*want_write=*/false);
  loop.RunOnce(0);
  EXPECT_EQ(r.events, 0);  // writable, but output was not asked for

  ASSERT_EQ(::write(sv[1], "x", 1), 1);
  RunUntil(loop, [&] { return r.events > 0; });
  EXPECT_EQ(r.events, 1);
  EXPECT_TRUE(r.last & kEventReadable);
  loop.RunOnce(0);
  EXPECT_EQ(r.events, 1);  // the byte is still unread, but its edge was reported once

  bool want = false;
  loop.SetWantWrite(sv[0], &r, &want, true);
  EXPECT_TRUE(want);
  RunUntil(loop, [&] { return r.events > 1; });
  EXPECT_TRUE(r.last & kEventWritable);
  ::close(sv[0]);
  ::close(sv[1]);
}

TEST(LbEventLoopTest, TimersRunEveryPeriodUntilCancelled) {
  EventLoop loop;
  int ticks = 0;
  EventLoop::TimerId id = loop.RunEvery(5, [&] { ++ticks; });
  const auto start = std::chrono::steady_clock::now();
  RunUntil(loop, [&] { return ticks >= 3; });
  EXPECT_GE(ticks, 3);
  EXPECT_GE(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(10));  // not all at once
  loop.CancelTimer(id);
  const int seen = ticks;
  for (int i = 0; i < 3; ++i) loop.RunOnce(10);
  EXPECT_EQ(ticks, seen);
}

TEST(LbEventLoopTest, PostFromAnotherThreadRunsOnTheLoop) {
  EventLoop loop;
  std::atomic<bool> ran{false};
  std::thread::id ran_on;
  std::thread poster([&] { loop.Post([&] {
    ran_on = std::this_thread::get_id();
    ran = true;
  }); });
  // No timers and no fds: only the wake-up can end this wait (bounded by the 5 s cap).
  for (int i = 0; i < 5 && !ran; ++i) loop.RunOnce(1000);
  poster.join();
  EXPECT_TRUE(ran);
  EXPECT_EQ(ran_on, std::this_thread::get_id());
}

int doomed_events = 0;
int doomed_deleted = 0;

// Closes itself and its partner on its first event (as a session closes both its sockets).
struct Doomed : FdHandler {
  EventLoop* loop = nullptr;
  FdHandler* partner = nullptr;
  ~Doomed() override { ++doomed_deleted; }
  void OnEvent(uint32_t) override {
    ++doomed_events;
    loop->Bury(partner);
    loop->Bury(this);
  }
};

TEST(LbEventLoopTest, ABuriedHandlerGetsNoMoreEventsAndIsDeletedAfterTheBatch) {
  int sv[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
  doomed_events = doomed_deleted = 0;
  EventLoop loop;
  auto* a = new Doomed;
  auto* b = new Doomed;
  a->loop = b->loop = &loop;
  a->partner = b;
  b->partner = a;
  loop.Watch(sv[0], a, /*want_write=*/true);  // both writable at once: one batch with both events
  loop.Watch(sv[1], b, /*want_write=*/true);
  loop.RunOnce(1000);
  EXPECT_EQ(doomed_events, 1);   // the second event of the batch was for a buried handler
  EXPECT_EQ(doomed_deleted, 2);  // both deleted once the batch was done
  ::close(sv[0]);
  ::close(sv[1]);
}

}  // namespace
}  // namespace autopipe::lb

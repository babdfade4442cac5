// EventLoop: one thread's event loop for the data plane, in the spirit of Redis's ae.h. It offers three things:
//   - fd events: a FdHandler per registered socket, woken edge-triggered (EPOLLET) for input, and for output
//     only while it asked for it (SetWantWrite after a short write), so a busy socket costs no epoll_ctl;
//   - timers: RunEvery(period) callbacks, run between event batches (the wait never outlasts the next one);
//   - a wake-up: Wake() and Post() from any thread end the current wait.
// The backend is Linux epoll; event masks are epoll's bits, named below by what a handler tests them for.
//
// Handlers are owned by whoever registered them. A handler whose fd was closed during a batch is Bury()'d:
// marked dead (later events of the same batch are skipped) and deleted once the batch is done.
//
// Thread-safety: everything runs on the thread that calls RunOnce, except Wake() and Post(), which are safe from
// any thread.
#pragma once

#include <sys/epoll.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <mutex>
#include <vector>

namespace autopipe::lb {

// Event bits, as a handler tests them.
inline constexpr uint32_t kEventReadable = EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR;  // bytes, EOF or an error
inline constexpr uint32_t kEventWritable = EPOLLOUT;
inline constexpr uint32_t kEventHangup = EPOLLERR | EPOLLHUP;  // with kEventWritable: a connect() finished

class FdHandler {
 public:
  virtual ~FdHandler() = default;
  virtual void OnEvent(uint32_t events) = 0;
  bool dead = false;  // closed: events still queued for it in this batch are ignored
};

class EventLoop {
 public:
  using TimerId = uint64_t;

  EventLoop();
  ~EventLoop();  // deletes handlers still buried; registered ones belong to their owners
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;

  // --- fd events -------------------------------------------------------------------------------------------------
  // A connected socket: input (and peer close) edge-triggered; output too if want_write (a connect in progress).
  void Watch(int fd, FdHandler* h, bool want_write);
  // A listening socket: one edge per burst of new connections.
  void WatchListener(int fd, FdHandler* h);
  // Asks for (or stops asking for) output events on fd. *state is the handler's record of what it asked for, so
  // the call is free when nothing changes: ask after a short write, stop once the backlog is sent.
  void SetWantWrite(int fd, FdHandler* h, bool* state, bool want);
  // Marks h dead and deletes it after the current batch (once per handler). Close its fd first (that ends its
  // registration).
  void Bury(FdHandler* h);

  // --- timers ----------------------------------------------------------------------------------------------------
  // Runs fn every period_ms (first after one period), on the loop thread between event batches.
  TimerId RunEvery(int64_t period_ms, std::function<void()> fn);
  void CancelTimer(TimerId id);

  // --- wake-up (any thread) --------------------------------------------------------------------------------------
  // Ends the current wait, so the owner's per-turn checks run now.
  void Wake();
  // Runs fn on the loop thread at its next turn.
  void Post(std::function<void()> fn);

  // --- running ---------------------------------------------------------------------------------------------------
  // One turn: waits for events (at most until the next timer is due, and at most max_wait_ms if >= 0), handles
  // them, runs posted tasks and due timers, then deletes the handlers buried meanwhile.
  void RunOnce(int max_wait_ms = -1);
  // The coarse monotonic clock, read once per turn (and by UpdateTime).
  int64_t now_ms() const { return now_ms_; }
  void UpdateTime();
  // Deletes the handlers buried so far (RunOnce does it itself; for work done outside a turn).
  void CollectGarbage();

 private:
  struct Timer {
    TimerId id;
    int64_t period_ms;
    int64_t due_ms;
    std::function<void()> fn;
  };
  void RunPosted();
  void RunTimers();

  int ep_ = -1;
  int wake_fd_ = -1;
  int64_t now_ms_ = 0;
  std::vector<FdHandler*> graveyard_;
  std::vector<Timer> timers_;
  TimerId next_timer_id_ = 1;
  std::mutex posted_mu_;
  std::vector<std::function<void()>> posted_;  // guarded by posted_mu_
};

}  // namespace autopipe::lb

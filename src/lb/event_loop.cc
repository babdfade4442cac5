#include "lb/event_loop.h"

#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace autopipe::lb {
namespace {

int64_t CoarseMonotonicMs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

constexpr int kMaxEventsPerWait = 256;
constexpr uint32_t kConnectionEvents = EPOLLIN | EPOLLRDHUP | EPOLLET;

}  // namespace

EventLoop::EventLoop() {
  ep_ = ::epoll_create1(EPOLL_CLOEXEC);
  wake_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.ptr = nullptr;  // the wake-up fd: the one registration without a handler
  if (ep_ < 0 || wake_fd_ < 0 || ::epoll_ctl(ep_, EPOLL_CTL_ADD, wake_fd_, &ev) != 0) {
    // Out of descriptors or memory at start-up: a node without its loop cannot serve. Exit, and let the
    // supervisor restart it (with back-off).
    std::fprintf(stderr, "lb: cannot create the event loop: %s\n", std::strerror(errno));
    std::exit(1);
  }
  now_ms_ = CoarseMonotonicMs();
}

EventLoop::~EventLoop() {
  CollectGarbage();
  ::close(ep_);
  ::close(wake_fd_);
}

void EventLoop::Watch(int fd, FdHandler* h, bool want_write) {
  epoll_event ev{};
  ev.events = kConnectionEvents | (want_write ? uint32_t{EPOLLOUT} : 0u);
  ev.data.ptr = h;
  ::epoll_ctl(ep_, EPOLL_CTL_ADD, fd, &ev);
}

void EventLoop::WatchListener(int fd, FdHandler* h) {
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLET;
  ev.data.ptr = h;
  ::epoll_ctl(ep_, EPOLL_CTL_ADD, fd, &ev);
}

void EventLoop::SetWantWrite(int fd, FdHandler* h, bool* state, bool want) {
  if (*state == want) return;
  *state = want;
  epoll_event ev{};
  ev.events = kConnectionEvents | (want ? uint32_t{EPOLLOUT} : 0u);
  ev.data.ptr = h;
  ::epoll_ctl(ep_, EPOLL_CTL_MOD, fd, &ev);
}

void EventLoop::Bury(FdHandler* h) {
  h->dead = true;
  graveyard_.push_back(h);
}

void EventLoop::CollectGarbage() {
  // A destructor may bury more (a session's parts): loop until none are left.
  while (!graveyard_.empty()) {
    std::vector<FdHandler*> batch;
    batch.swap(graveyard_);
    for (FdHandler* h : batch) delete h;
  }
}

EventLoop::TimerId EventLoop::RunEvery(int64_t period_ms, std::function<void()> fn) {
  const TimerId id = next_timer_id_++;
  timers_.push_back(Timer{id, period_ms, now_ms_ + period_ms, std::move(fn)});
  return id;
}

void EventLoop::CancelTimer(TimerId id) {
  for (Timer& t : timers_)
    if (t.id == id) t.fn = nullptr;  // removed after the timers' pass (it may be running now)
}

void EventLoop::Wake() {
  uint64_t one = 1;
  ssize_t ignored = ::write(wake_fd_, &one, sizeof one);  // a full counter already means "wake up"
  (void)ignored;
}

void EventLoop::Post(std::function<void()> fn) {
  {
    std::lock_guard lock(posted_mu_);
    posted_.push_back(std::move(fn));
  }
  Wake();
}

void EventLoop::UpdateTime() { now_ms_ = CoarseMonotonicMs(); }

void EventLoop::RunOnce(int max_wait_ms) {
  int timeout = max_wait_ms;
  for (const Timer& t : timers_) {
    if (!t.fn) continue;
    const int until_due = static_cast<int>(std::max<int64_t>(0, t.due_ms - now_ms_));
    if (timeout < 0 || until_due < timeout) timeout = until_due;
  }
  epoll_event events[kMaxEventsPerWait];
  const int n = ::epoll_wait(ep_, events, kMaxEventsPerWait, timeout);
  UpdateTime();
  bool woken = false;
  for (int i = 0; i < n; ++i) {
    auto* h = static_cast<FdHandler*>(events[i].data.ptr);
    if (h == nullptr) {
      uint64_t v;
      ssize_t ignored = ::read(wake_fd_, &v, sizeof v);  // resets the counter; EAGAIN if another read did
      (void)ignored;
      woken = true;
      continue;
    }
    if (!h->dead) h->OnEvent(events[i].events);
  }
  CollectGarbage();
  if (woken) RunPosted();
  RunTimers();
  CollectGarbage();
}

void EventLoop::RunPosted() {
  std::vector<std::function<void()>> tasks;
  {
    std::lock_guard lock(posted_mu_);
    tasks.swap(posted_);
  }
  for (auto& fn : tasks) fn();
}

void EventLoop::RunTimers() {
  // By index: a callback may add timers (appended, first due a period later) or cancel any.
  for (size_t i = 0; i < timers_.size(); ++i) {
    if (!timers_[i].fn || timers_[i].due_ms > now_ms_) continue;
    timers_[i].due_ms = now_ms_ + timers_[i].period_ms;
    auto fn = timers_[i].fn;  // a copy: the vector may grow while it runs
    fn();
  }
  std::erase_if(timers_, [](const Timer& t) { return !t.fn; });
}

}  // namespace autopipe::lb

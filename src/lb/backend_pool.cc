#include "lb/backend_pool.h"

#include <unistd.h>

#include "lb/picker.h"
#include "lb/sockets.h"

namespace autopipe::lb {
namespace {

uint64_t PoolKey(in_addr_t ip, int port) { return (static_cast<uint64_t>(ip) << 16) | static_cast<uint16_t>(port); }

}  // namespace

void BackendConn::OnEvent(uint32_t events) {
  if (owner != nullptr) {
    owner->OnBackendEvent(events);
    return;
  }
  // Idle in the pool: the back end closed it (or sent something unasked): drop it.
  if (events & kEventReadable) pool->Close(this);
}

BackendConn* BackendPool::Acquire(const std::shared_ptr<Backend>& backend, int port, BackendConn::Owner* owner) {
  const uint64_t key = PoolKey(backend->ip, port);
  auto it = idle_.find(key);
  if (it != idle_.end()) {
    while (!it->second.empty()) {
      BackendConn* c = it->second.back();
      it->second.pop_back();
      if (c->dead) continue;
      c->owner = owner;
      c->backend = backend;
      c->reused = true;
      return c;
    }
  }
  int fd = -1;
  const ConnectStart start = ConnectNonBlocking(backend->ip, port, &fd);
  if (start == ConnectStart::kRefused) NoteConnectFailure(*backend);
  if (!Started(start)) return nullptr;
  auto* c = new BackendConn;
  c->pool = this;
  c->fd = fd;
  c->backend = backend;
  c->port = port;
  c->pool_key = key;
  c->connecting = start == ConnectStart::kInProgress;
  c->want_write = c->connecting;
  c->owner = owner;
  loop_->Watch(fd, c, c->connecting);
  return c;
}

void BackendPool::Release(BackendConn* c, bool reusable) {
  c->owner = nullptr;
  c->in.Clear();
  auto& idle = idle_[c->pool_key];
  if (!reusable || c->connecting || idle.size() >= kMaxIdlePerBackend || draining_) {
    Close(c);
    return;
  }
  loop_->SetWantWrite(c->fd, c, &c->want_write, false);
  c->idle_since_ms = loop_->now_ms();
  idle.push_back(c);
}

void BackendPool::Close(BackendConn* c) {
  if (c->dead) return;
  ::close(c->fd);
  auto it = idle_.find(c->pool_key);
  if (it != idle_.end()) {
    auto& v = it->second;
    for (size_t i = 0; i < v.size(); ++i) {
      if (v[i] == c) {
        v[i] = v.back();
        v.pop_back();
        break;
      }
    }
  }
  loop_->Bury(c);
}

void BackendPool::NoteConnectFailure(Backend& b) {
  EjectUnreachable(b);
  connection_errors_->fetch_add(1, std::memory_order_relaxed);
}

void BackendPool::CloseIdle(int64_t now_ms, int64_t idle_ms) {
  for (auto& [key, idle] : idle_) {
    std::vector<BackendConn*> old;
    for (BackendConn* c : idle)
      if (now_ms - c->idle_since_ms > idle_ms) old.push_back(c);
    for (BackendConn* c : old) Close(c);
  }
}

void BackendPool::CloseAllIdle() {
  for (auto& [key, idle] : idle_) {
    std::vector<BackendConn*> all = idle;
    for (BackendConn* c : all) Close(c);
  }
}

}  // namespace autopipe::lb

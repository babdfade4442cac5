#include "lb/tcp_session.h"

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

#include "lb/sockets.h"

namespace autopipe::lb {

TcpSession::TcpSession(EventLoop* loop, int client_fd, int backend_fd, bool backend_connecting, Observer* observer)
    : loop_(loop), observer_(observer), connecting_(backend_connecting) {
  fd_[kClient] = client_fd;
  fd_[kBackend] = backend_fd;
  for (int i = 0; i < 2; ++i) {
    side_[i].session = this;
    side_[i].index = i;
  }
  last_activity_ms_ = loop_->now_ms();
  loop_->Watch(fd_[kClient], &side_[kClient], false);
  loop_->Watch(fd_[kBackend], &side_[kBackend], connecting_);
  want_write_[kBackend] = connecting_;
}

void TcpSession::OnSideEvent(int side, uint32_t events) {
  (void)events;  // edge-triggered: each event means "try both directions again"
  if (dead) return;
  if (side == kBackend && connecting_) {
    if (ConnectError(fd_[kBackend]) != 0) {
      Close(End::kConnectFailed);
      return;
    }
    connecting_ = false;
  }
  last_activity_ms_ = loop_->now_ms();
  Pump(kClient);
  if (!dead) Pump(kBackend);
}

void TcpSession::CheckIdle(int64_t now_ms, int64_t idle_ms) {
  if (now_ms - last_activity_ms_ > idle_ms) Close(End::kIdle);
}

void TcpSession::Close(End why) {
  if (dead) return;
  ::close(fd_[kClient]);
  ::close(fd_[kBackend]);
  side_[kClient].dead = side_[kBackend].dead = true;
  loop_->Bury(this);
  observer_->OnTcpSessionEnd(this, why);
}

// Moves bytes from side `from` to the other side until one of them would block.
void TcpSession::Pump(int from) {
  const int to = 1 - from;
  if (connecting_) return;
  Buffer& b = buf_[from];
  b.Reserve(kBufferSize);
  while (true) {
    if (!b.empty()) {
      ssize_t n = ::send(fd_[to], b.data(), b.size(), MSG_NOSIGNAL);
      if (n > 0) {
        b.Consume(static_cast<size_t>(n));
        continue;
      }
      if (n < 0 && errno == EAGAIN) {
        SetWantWrite(to, true);  // back-pressure: `from` is not read until `to` drains
        return;
      }
      Close(End::kError);
      return;
    }
    SetWantWrite(to, false);
    if (eof_[from]) {
      if (!shut_[to]) {
        ::shutdown(fd_[to], SHUT_WR);  // pass the half-close on
        shut_[to] = true;
      }
      if (eof_[to] && shut_[from]) Close(End::kDone);
      return;
    }
    ssize_t n = ::recv(fd_[from], b.tail(), b.space(), 0);
    if (n > 0) {
      b.end += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
    eof_[from] = true;
    if (n < 0) {
      Close(End::kError);
      return;
    }
  }
}

void TcpSession::SetWantWrite(int side, bool want) {
  loop_->SetWantWrite(fd_[side], &side_[side], &want_write_[side], want);
}

}  // namespace autopipe::lb

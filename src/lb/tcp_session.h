// TcpSession: one client connection spliced to one back-end connection. Bytes flow both ways through a fixed
// buffer per direction; a full buffer stops reading that side until the other takes the bytes (back-pressure),
// and a socket is watched for output only after a short write. EOF from one side is passed on as a half-close
// (shutdown(SHUT_WR)) of the other; the session ends when both directions are done, on an error, or when it was
// idle (no bytes either way) longer than the idle timeout its owner checks with CheckIdle.
//
// It knows nothing about HTTP or about how the back end was chosen: its owner picks the back end, starts the
// connect (sockets.h), and hands over both descriptors. The owner learns of the end through Observer, and may
// end a session at any time with Close (e.g. its back end left the set). Used by the load balancer's TCP
// listeners (worker.cc) and by TcpProxy (tcp_proxy.h).
//
// Thread-safety: a session lives on one EventLoop thread; all calls come from it.
#pragma once

#include <cstdint>

#include "lb/buffer.h"
#include "lb/event_loop.h"

namespace autopipe::lb {

class TcpSession : public FdHandler {  // a FdHandler only to be Bury()'d; its sockets have their own handlers
 public:
  enum class End : uint8_t {
    kDone,           // both sides closed their direction
    kConnectFailed,  // the back end did not accept the connection
    kError,          // a send or receive failed (reset)
    kIdle,           // CheckIdle found no traffic for the idle timeout
    kClosed,         // the owner called Close
  };
  class Observer {
   public:
    // Called once, when the session has closed both descriptors; it is deleted after the current event batch.
    virtual void OnTcpSessionEnd(TcpSession* session, End end) = 0;

   protected:
    ~Observer() = default;
  };

  static constexpr size_t kBufferSize = 32 * 1024;  // per direction

  // Takes ownership of both descriptors and watches them on loop. backend_connecting: the back end's connect is
  // still in progress (bytes from the client wait in its buffer until it completes).
  TcpSession(EventLoop* loop, int client_fd, int backend_fd, bool backend_connecting, Observer* observer);

  // Ends the session if nothing moved for longer than idle_ms.
  void CheckIdle(int64_t now_ms, int64_t idle_ms);
  // Closes both sides now (if not already) and tells the observer.
  void Close(End why = End::kClosed);

  void OnEvent(uint32_t) override {}

 private:
  static constexpr int kClient = 0;
  static constexpr int kBackend = 1;
  struct Side : FdHandler {
    TcpSession* session = nullptr;
    int index = 0;
    void OnEvent(uint32_t events) override { session->OnSideEvent(index, events); }
  };

  void OnSideEvent(int side, uint32_t events);
  void Pump(int from);
  void SetWantWrite(int side, bool want);

  EventLoop* loop_;
  Observer* observer_;
  int fd_[2] = {-1, -1};
  Buffer buf_[2];  // buf_[i]: bytes read from side i, not yet sent to the other
  bool eof_[2] = {false, false};
  bool shut_[2] = {false, false};
  bool want_write_[2] = {false, false};
  bool connecting_ = false;
  Side side_[2];
  int64_t last_activity_ms_ = 0;
};

}  // namespace autopipe::lb

// Buffer: the fixed-size byte buffer the data plane streams through (a client's request bytes, a back end's
// response bytes, one direction of a TCP session). Bytes are appended at tail() and consumed from data(); the
// memory (a fixed capacity) is taken on first Reserve, so an idle connection costs nothing. A full buffer is
// how back-pressure works: its owner stops reading the side that fills it until the other side takes bytes.
//
// Thread-safety: none; a Buffer belongs to one session on one worker thread.
#pragma once

#include <cstddef>
#include <cstring>
#include <memory>

namespace autopipe::lb {

struct Buffer {
  std::unique_ptr<char[]> mem;
  size_t cap = 0, start = 0, end = 0;

  // Takes n bytes of memory if none is held yet (later calls keep the first capacity).
  void Reserve(size_t n) {
    if (!mem) {
      mem.reset(new char[n]);
      cap = n;
    }
  }
  char* data() { return mem.get() + start; }  // the first unconsumed byte
  size_t size() const { return end - start; }
  bool empty() const { return start == end; }
  size_t space() const { return cap - end; }  // room after tail()
  char* tail() { return mem.get() + end; }    // where received bytes go; then `end += n`
  void Consume(size_t n) {
    start += n;
    if (start == end) start = end = 0;
  }
  // Moves the unconsumed bytes to the front, so space() covers everything not in use.
  void Compact() {
    if (start == 0) return;
    std::memmove(mem.get(), mem.get() + start, end - start);
    end -= start;
    start = 0;
  }
  void Clear() { start = end = 0; }
};

}  // namespace autopipe::lb

// HTTP/1.x message heads and chunked bodies, parsed in place for the load balancer's data plane.
//
// Everything here reads untrusted bytes and is strict where leniency lets a request mean two things to two
// servers (request smuggling): bare LF or CR line endings, obs-fold continuation lines, whitespace before a
// header's colon, Content-Length together with Transfer-Encoding, repeated or malformed Content-Length, a
// Transfer-Encoding other than exactly "chunked", control characters in names or values, and repeated Host
// are all refused. Nothing is copied: the views point into the caller's buffer and stay valid while it does.
//
// Thread-safety: pure functions and value types.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace autopipe::lb {

// The headers the proxy acts on, recognised case-insensitively while parsing.
enum class HeaderId : uint8_t {
  kOther,
  kHost,
  kContentLength,
  kTransferEncoding,
  kConnection,
  kKeepAlive,
  kProxyConnection,
  kUpgrade,
  kTe,
  kTrailer,
  kExpect,
  kXForwardedFor,
  kXForwardedProto,
  kXForwardedPort,
};

struct HeaderField {
  std::string_view name;   // as sent
  std::string_view value;  // leading and trailing spaces/tabs trimmed
  HeaderId id = HeaderId::kOther;
};

inline constexpr size_t kMaxHeaders = 100;        // more is a 400
inline constexpr size_t kMaxMethodLength = 127;   // longer is a 405 (ELB's rule)

enum class ParseStatus {
  kIncomplete,  // no complete head yet: read more (the caller decides when the head is too large)
  kDone,
  kError,       // see error_status
};

enum class BodyKind : uint8_t {
  kNone,           // no body follows the head
  kContentLength,  // exactly content_length bytes
  kChunked,        // chunked: feed the bytes to a ChunkedScanner to find the end
  kUntilClose,     // responses only: the body ends when the server closes
};

struct RequestHead {
  std::string_view method;
  std::string_view target;
  int version_minor = 1;         // HTTP/1.<minor>: 0 or 1
  std::array<HeaderField, kMaxHeaders> headers;
  size_t header_count = 0;
  size_t head_length = 0;        // request line + header lines + the empty line
  BodyKind body = BodyKind::kNone;
  uint64_t content_length = 0;
  bool keep_alive = true;        // the client's wish: HTTP/1.1 unless "Connection: close"; 1.0 only with keep-alive
  bool expect_continue = false;  // "Expect: 100-continue"
  bool has_host = false;
  int error_status = 0;          // on kError: 400, or 405 for a method longer than kMaxMethodLength
};

struct ResponseHead {
  int status = 0;                // 100-999
  int version_minor = 1;
  std::array<HeaderField, kMaxHeaders> headers;
  size_t header_count = 0;
  size_t head_length = 0;
  BodyKind body = BodyKind::kNone;
  uint64_t content_length = 0;
  bool keep_alive = true;        // the server will keep the connection open after this response
};

// Parses a request head from the start of data[0..len). HTTP/1.1 requests need exactly one Host header; a
// request with a body must say how long it is (Content-Length or chunked), else it has none.
ParseStatus ParseRequest(const char* data, size_t len, RequestHead* out);

// Parses a response head. `request_method` decides whether a body can follow (HEAD: never); 1xx, 204 and 304
// have none either. Any malformation is kError (the proxy answers its client 502).
ParseStatus ParseResponse(const char* data, size_t len, std::string_view request_method, ResponseHead* out);

// Finds where a chunked body ends without changing it (the proxy forwards the bytes as they are). Feed it the
// body bytes in order; it consumes up to the end of the message (last chunk, trailers and final CRLF).
class ChunkedScanner {
 public:
  enum class Result { kNeedMore, kDone, kError };
  // Consumes bytes from data[0..len); sets *consumed to how many belong to the body (all of them unless the
  // body ends inside this span). Chunk-size lines longer than 4 KiB, sizes over 2^60 and trailers over 64 KiB
  // are errors, as are missing CRLFs after chunk data, whitespace after a chunk size, bare CR or LF, control
  // characters in extensions or trailers, and trailer lines that are not `name: value`. On kError, *consumed
  // is the number of bytes before the offending one. Once kDone or kError, later calls return the same with
  // *consumed 0.
  Result Feed(const char* data, size_t len, size_t* consumed);
  bool done() const { return state_ == State::kDone; }

 private:
  enum class State : uint8_t { kSize, kExtension, kSizeLf, kData, kDataCr, kDataLf, kTrailerStart, kTrailerName,
                               kTrailer, kTrailerLf, kFinalLf, kDone, kError };
  // Moves the state machine past one byte outside chunk data; false if the byte is not allowed there.
  bool Step(unsigned char c);

  State state_ = State::kSize;
  uint64_t remaining_ = 0;   // bytes of chunk data left
  size_t line_length_ = 0;   // length of the current size line / trailer section
  int size_digits_ = 0;
};

// Case-insensitive ASCII comparison (header names and tokens).
bool EqualsIgnoreCase(std::string_view a, std::string_view b);

}  // namespace autopipe::lb

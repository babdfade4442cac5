// HTTP/1.x head parsing (RFC 9112) for the data plane. See http_parser.h for what is refused and why.
//
// The head parsers are one forward pass over the bytes: each piece (request line, one header line, the empty
// line) either parses, runs out of input (kIncomplete) or is refused on the spot. Because every decision is
// made from bytes already seen, a prefix of a message never gives a different answer than the whole message
// except kIncomplete, and a bad byte is reported as soon as it arrives. Callers rescan from the start on each
// read; heads are small and the loops below are a table lookup per byte (eight bytes per step in values).
#include "lb/http_parser.h"

#include <cstring>

namespace autopipe::lb {
namespace {

// ---- Character classes -------------------------------------------------------------------------------------

constexpr uint8_t kTokenChar = 1;   // RFC 9110 tchar: header names, methods, trailer names
constexpr uint8_t kTargetChar = 2;  // request-target: visible ASCII 0x21-0x7E
constexpr uint8_t kValueChar = 4;   // field-value and reason-phrase: HTAB, SP, VCHAR, obs-text (0x80-0xFF)
constexpr uint8_t kHexDigit = 8;

constexpr std::array<uint8_t, 256> MakeCharClasses() {
  std::array<uint8_t, 256> table{};
  for (int c = 0x21; c <= 0x7E; ++c) table[c] |= kTargetChar | kValueChar;
  for (int c = 0x80; c <= 0xFF; ++c) table[c] |= kValueChar;
  table['\t'] |= kValueChar;
  table[' '] |= kValueChar;
  for (int c = '0'; c <= '9'; ++c) table[c] |= kTokenChar | kHexDigit;
  for (int c = 'a'; c <= 'z'; ++c) table[c] |= kTokenChar;
  for (int c = 'A'; c <= 'Z'; ++c) table[c] |= kTokenChar;
  for (int c = 'a'; c <= 'f'; ++c) table[c] |= kHexDigit;
  for (int c = 'A'; c <= 'F'; ++c) table[c] |= kHexDigit;
  for (char c : std::string_view("!#$%&'*+-.^_`|~")) table[static_cast<unsigned char>(c)] |= kTokenChar;
  return table;
}
constexpr std::array<uint8_t, 256> kCharClass = MakeCharClasses();

constexpr std::array<unsigned char, 256> MakeLowercase() {
  std::array<unsigned char, 256> table{};
  for (int c = 0; c < 256; ++c) table[c] = static_cast<unsigned char>(c >= 'A' && c <= 'Z' ? c + 32 : c);
  return table;
}
constexpr std::array<unsigned char, 256> kLowercase = MakeLowercase();

inline bool Is(char c, uint8_t char_class) { return kCharClass[static_cast<unsigned char>(c)] & char_class; }
inline bool IsOws(char c) { return c == ' ' || c == '\t'; }

int HexValue(unsigned char c) {
  if (c <= '9') return c - '0';
  return (c | 0x20) - 'a' + 10;
}

// ---- Word-at-a-time scanning -------------------------------------------------------------------------------
// Values (cookies, user agents) and targets are the long parts of a head. Eight bytes are checked at once
// with the classic "does any byte lie below n" bit trick; a word that might hold a stop byte is left to the
// per-byte loop, which decides exactly.

constexpr uint64_t kOnes = 0x0101010101010101ULL;
constexpr uint64_t kHighBits = 0x8080808080808080ULL;

inline uint64_t LoadWord(const char* p) {
  uint64_t word;
  std::memcpy(&word, p, sizeof word);
  return word;
}
// Nonzero iff some byte of `word` is below n (n <= 128).
inline uint64_t AnyByteBelow(uint64_t word, uint8_t n) { return (word - kOnes * n) & ~word & kHighBits; }
inline uint64_t AnyByteEquals(uint64_t word, uint8_t b) { return AnyByteBelow(word ^ (kOnes * b), 1); }

// Skips field-value bytes; stops at the first byte that is not one (CR, LF, another control char, or end).
// HTAB is a value byte but below 0x20, so a word holding one takes the per-byte path; that is rare.
const char* SkipValueChars(const char* p, const char* end) {
  while (end - p >= 8) {
    uint64_t word = LoadWord(p);
    if (AnyByteBelow(word, 0x20) | AnyByteEquals(word, 0x7F)) break;
    p += 8;
  }
  while (p < end && Is(*p, kValueChar)) ++p;
  return p;
}

// Skips request-target bytes (0x21-0x7E).
const char* SkipTargetChars(const char* p, const char* end) {
  while (end - p >= 8) {
    uint64_t word = LoadWord(p);
    if (AnyByteBelow(word, 0x21) | AnyByteEquals(word, 0x7F) | (word & kHighBits)) break;
    p += 8;
  }
  while (p < end && Is(*p, kTargetChar)) ++p;
  return p;
}

const char* SkipTokenChars(const char* p, const char* end) {
  while (p < end && Is(*p, kTokenChar)) ++p;
  return p;
}

std::string_view TrimOws(std::string_view s) {
  while (!s.empty() && IsOws(s.front())) s.remove_prefix(1);
  while (!s.empty() && IsOws(s.back())) s.remove_suffix(1);
  return s;
}

// ---- Head pieces -------------------------------------------------------------------------------------------

// The outcome of parsing one piece of a head.
enum class Step : uint8_t { kOk, kIncomplete, kError };

// A read position in the head; each piece advances it past what it accepted.
struct Cursor {
  const char* p;
  const char* end;
  bool AtEnd() const { return p == end; }
};

// CRLF and nothing else: a bare CR or LF is refused (the classic way to make two parsers split lines apart).
Step ExpectCrlf(Cursor& c) {
  if (c.AtEnd()) return Step::kIncomplete;
  if (*c.p != '\r') return Step::kError;
  if (c.end - c.p < 2) return Step::kIncomplete;
  if (c.p[1] != '\n') return Step::kError;
  c.p += 2;
  return Step::kOk;
}

// Matches `literal` byte for byte, refusing a mismatch even when only part of it has arrived.
Step ExpectLiteral(Cursor& c, std::string_view literal) {
  size_t available = static_cast<size_t>(c.end - c.p);
  size_t n = available < literal.size() ? available : literal.size();
  if (std::memcmp(c.p, literal.data(), n) != 0) return Step::kError;
  if (n < literal.size()) return Step::kIncomplete;
  c.p += n;
  return Step::kOk;
}

// "HTTP/1.0" or "HTTP/1.1".
Step ParseVersion(Cursor& c, int* minor) {
  if (Step s = ExpectLiteral(c, "HTTP/1."); s != Step::kOk) return s;
  if (c.AtEnd()) return Step::kIncomplete;
  if (*c.p != '0' && *c.p != '1') return Step::kError;
  *minor = *c.p++ - '0';
  return Step::kOk;
}

HeaderId IdentifyHeader(std::string_view name) {
  auto is = [name](std::string_view lowercase) { return EqualsIgnoreCase(name, lowercase); };
  switch (name.size()) {
    case 2: return is("te") ? HeaderId::kTe : HeaderId::kOther;
    case 4: return is("host") ? HeaderId::kHost : HeaderId::kOther;
    case 6: return is("expect") ? HeaderId::kExpect : HeaderId::kOther;
    case 7:
      if (is("upgrade")) return HeaderId::kUpgrade;
      return is("trailer") ? HeaderId::kTrailer : HeaderId::kOther;
    case 10:
      if (is("connection")) return HeaderId::kConnection;
      return is("keep-alive") ? HeaderId::kKeepAlive : HeaderId::kOther;
    case 14: return is("content-length") ? HeaderId::kContentLength : HeaderId::kOther;
    case 15: return is("x-forwarded-for") ? HeaderId::kXForwardedFor : HeaderId::kOther;
    case 16:
      if (is("proxy-connection")) return HeaderId::kProxyConnection;
      return is("x-forwarded-port") ? HeaderId::kXForwardedPort : HeaderId::kOther;
    case 17:
      if (is("transfer-encoding")) return HeaderId::kTransferEncoding;
      return is("x-forwarded-proto") ? HeaderId::kXForwardedProto : HeaderId::kOther;
    default: return HeaderId::kOther;
  }
}

// `name ":" OWS value OWS CRLF`. No whitespace before the colon, no empty name; the caller has already
// refused a line starting with whitespace (obs-fold).
Step ParseHeaderLine(Cursor& c, HeaderField* field) {
  const char* name_start = c.p;
  c.p = SkipTokenChars(c.p, c.end);
  if (c.AtEnd()) return Step::kIncomplete;
  if (c.p == name_start || *c.p != ':') return Step::kError;
  field->name = std::string_view(name_start, static_cast<size_t>(c.p - name_start));
  ++c.p;
  const char* value_start = c.p;
  c.p = SkipValueChars(c.p, c.end);
  if (c.AtEnd()) return Step::kIncomplete;
  field->value = TrimOws(std::string_view(value_start, static_cast<size_t>(c.p - value_start)));
  field->id = IdentifyHeader(field->name);
  return ExpectCrlf(c);
}

// ---- What the headers say ----------------------------------------------------------------------------------

enum class Message : uint8_t { kRequest, kResponse };

// Framing and connection facts gathered header by header. Conflicts are refused as soon as the second
// header of a conflicting pair has been read.
struct HeaderFacts {
  int host_count = 0;
  bool has_content_length = false;
  uint64_t content_length = 0;
  bool chunked = false;  // the one Transfer-Encoding header said exactly "chunked"
  bool connection_close = false;
  bool connection_keep_alive = false;
  bool expect_continue = false;
};

// About 9 PB: beyond any real body, and small enough that the digit loop below cannot overflow.
constexpr uint64_t kMaxContentLength = uint64_t{1} << 53;

// 1*DIGIT and nothing else: no sign, no "5, 5" list, no inner whitespace.
bool ParseContentLength(std::string_view value, uint64_t* out) {
  if (value.empty()) return false;
  uint64_t n = 0;
  for (char ch : value) {
    if (ch < '0' || ch > '9') return false;
    n = n * 10 + static_cast<uint64_t>(ch - '0');
    if (n > kMaxContentLength) return false;
  }
  *out = n;
  return true;
}

void NoteConnectionOptions(std::string_view value, HeaderFacts* facts) {
  while (true) {
    size_t comma = value.find(',');
    std::string_view option = TrimOws(value.substr(0, comma));
    if (EqualsIgnoreCase(option, "close")) facts->connection_close = true;
    if (EqualsIgnoreCase(option, "keep-alive")) facts->connection_keep_alive = true;
    if (comma == std::string_view::npos) return;
    value.remove_prefix(comma + 1);
  }
}

// Records one header; false if it makes the message's framing ambiguous or is malformed.
bool NoteHeader(const HeaderField& field, Message message, int version_minor, HeaderFacts* facts) {
  switch (field.id) {
    case HeaderId::kHost:
      // Two Hosts can route one request to two different backends; responses have no use for Host.
      return message == Message::kResponse || ++facts->host_count == 1;
    case HeaderId::kContentLength: {
      uint64_t length;
      if (!ParseContentLength(field.value, &length) || facts->chunked) return false;
      if (facts->has_content_length) {
        // Requests: any repeat is refused (RFC allows identical copies; nothing legitimate sends them).
        // Responses: identical copies are tolerated, as some servers do send them.
        if (message == Message::kRequest || length != facts->content_length) return false;
      }
      facts->has_content_length = true;
      facts->content_length = length;
      return true;
    }
    case HeaderId::kTransferEncoding:
      // Exactly one header saying exactly "chunked": a second header would make the combined value a list.
      // HTTP/1.0 has no chunked coding, so a 1.0 message with it has faulty framing (RFC 9112 6.1).
      if (facts->chunked || facts->has_content_length || version_minor == 0) return false;
      if (!EqualsIgnoreCase(field.value, "chunked")) return false;
      facts->chunked = true;
      return true;
    case HeaderId::kConnection:
      NoteConnectionOptions(field.value, facts);
      return true;
    case HeaderId::kExpect:
      if (EqualsIgnoreCase(field.value, "100-continue")) facts->expect_continue = true;
      return true;
    default:
      return true;
  }
}

// Header lines up to and including the empty line that ends the head.
Step ParseHeaderSection(Cursor& c, Message message, int version_minor, std::array<HeaderField, kMaxHeaders>* headers,
                        size_t* count, HeaderFacts* facts) {
  while (true) {
    if (c.AtEnd()) return Step::kIncomplete;
    if (*c.p == '\r') return ExpectCrlf(c);
    if (IsOws(*c.p)) return Step::kError;  // obs-fold, or whitespace before the first header's name
    if (*count == kMaxHeaders) return Step::kError;
    HeaderField& field = (*headers)[*count];
    if (Step s = ParseHeaderLine(c, &field); s != Step::kOk) return s;
    ++*count;
    if (!NoteHeader(field, message, version_minor, facts)) return Step::kError;
  }
}

// ---- Request line ------------------------------------------------------------------------------------------

// Some clients send an extra CRLF after a body; RFC 9112 2.2 asks servers to ignore at least one.
constexpr int kMaxLeadingEmptyLines = 4;

Step SkipLeadingEmptyLines(Cursor& c) {
  for (int lines = 0; !c.AtEnd() && *c.p == '\r'; ++lines) {
    if (lines == kMaxLeadingEmptyLines) return Step::kError;
    if (Step s = ExpectCrlf(c); s != Step::kOk) return s;
  }
  return Step::kOk;
}

// The method and the SP after it. Too long a method is a 405 (ELB's answer), reported once it is clear:
// when the space arrives or when one token char too many has.
Step ParseMethod(Cursor& c, RequestHead* out) {
  const char* start = c.p;
  const char* limit = c.end - c.p > static_cast<ptrdiff_t>(kMaxMethodLength) ? start + kMaxMethodLength + 1 : c.end;
  c.p = SkipTokenChars(c.p, limit);
  size_t length = static_cast<size_t>(c.p - start);
  if (length > kMaxMethodLength) {
    out->error_status = 405;
    return Step::kError;
  }
  if (c.AtEnd()) return Step::kIncomplete;
  if (length == 0 || *c.p != ' ') return Step::kError;
  out->method = std::string_view(start, length);
  ++c.p;
  return Step::kOk;
}

// The target and the SP after it.
Step ParseTarget(Cursor& c, RequestHead* out) {
  const char* start = c.p;
  c.p = SkipTargetChars(c.p, c.end);
  if (c.AtEnd()) return Step::kIncomplete;
  if (c.p == start || *c.p != ' ') return Step::kError;
  out->target = std::string_view(start, static_cast<size_t>(c.p - start));
  ++c.p;
  return Step::kOk;
}

Step ParseRequestLine(Cursor& c, RequestHead* out) {
  if (Step s = SkipLeadingEmptyLines(c); s != Step::kOk) return s;
  if (Step s = ParseMethod(c, out); s != Step::kOk) return s;
  if (Step s = ParseTarget(c, out); s != Step::kOk) return s;
  if (Step s = ParseVersion(c, &out->version_minor); s != Step::kOk) return s;
  return ExpectCrlf(c);
}

// Head-level rules and the body's framing, once all headers are in.
bool FinishRequest(const HeaderFacts& facts, RequestHead* out) {
  bool http11 = out->version_minor == 1;
  if (http11 && facts.host_count == 0) return false;
  out->has_host = facts.host_count > 0;
  out->content_length = facts.content_length;
  if (facts.chunked) {
    out->body = BodyKind::kChunked;
  } else if (facts.content_length > 0) {
    out->body = BodyKind::kContentLength;
  }
  out->keep_alive = !facts.connection_close && (http11 || facts.connection_keep_alive);
  out->expect_continue = facts.expect_continue;
  return true;
}

// ---- Status line -------------------------------------------------------------------------------------------

// `HTTP/1.x SP 3DIGIT [SP reason] CRLF`; the status is 100-999 and the reason may be empty or missing.
Step ParseStatusLine(Cursor& c, ResponseHead* out) {
  if (Step s = ParseVersion(c, &out->version_minor); s != Step::kOk) return s;
  if (c.AtEnd()) return Step::kIncomplete;
  if (*c.p++ != ' ') return Step::kError;
  int status = 0;
  for (int i = 0; i < 3; ++i) {
    if (c.AtEnd()) return Step::kIncomplete;
    char ch = *c.p++;
    if (ch < '0' || ch > '9' || (i == 0 && ch == '0')) return Step::kError;
    status = status * 10 + (ch - '0');
  }
  out->status = status;
  if (c.AtEnd()) return Step::kIncomplete;
  if (*c.p == ' ') c.p = SkipValueChars(c.p + 1, c.end);
  return ExpectCrlf(c);
}

void FinishResponse(const HeaderFacts& facts, std::string_view request_method, ResponseHead* out) {
  int status = out->status;
  bool no_body = request_method == "HEAD" || status < 200 || status == 204 || status == 304;
  out->keep_alive = !facts.connection_close && (out->version_minor == 1 || facts.connection_keep_alive);
  if (no_body) {
    out->body = BodyKind::kNone;
  } else if (facts.chunked) {
    out->body = BodyKind::kChunked;
  } else if (facts.has_content_length) {
    out->content_length = facts.content_length;
    out->body = facts.content_length > 0 ? BodyKind::kContentLength : BodyKind::kNone;
  } else {
    out->body = BodyKind::kUntilClose;
    out->keep_alive = false;
  }
}

// Resets the scalar fields only: the header array is 4 KB and header_count says which entries are live.
void ResetRequest(RequestHead* out) {
  out->method = {};
  out->target = {};
  out->version_minor = 1;
  out->header_count = 0;
  out->head_length = 0;
  out->body = BodyKind::kNone;
  out->content_length = 0;
  out->keep_alive = true;
  out->expect_continue = false;
  out->has_host = false;
  out->error_status = 0;
}

void ResetResponse(ResponseHead* out) {
  out->status = 0;
  out->version_minor = 1;
  out->header_count = 0;
  out->head_length = 0;
  out->body = BodyKind::kNone;
  out->content_length = 0;
  out->keep_alive = true;
}

ParseStatus ToStatus(Step step) { return step == Step::kIncomplete ? ParseStatus::kIncomplete : ParseStatus::kError; }

}  // namespace

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (kLowercase[static_cast<unsigned char>(a[i])] != kLowercase[static_cast<unsigned char>(b[i])]) return false;
  }
  return true;
}

ParseStatus ParseRequest(const char* data, size_t len, RequestHead* out) {
  ResetRequest(out);
  Cursor c{data, data + len};
  HeaderFacts facts;
  Step step = ParseRequestLine(c, out);
  if (step == Step::kOk) {
    step = ParseHeaderSection(c, Message::kRequest, out->version_minor, &out->headers, &out->header_count, &facts);
  }
  if (step == Step::kOk && !FinishRequest(facts, out)) step = Step::kError;
  if (step != Step::kOk) {
    if (step == Step::kError && out->error_status == 0) out->error_status = 400;
    return ToStatus(step);
  }
  out->head_length = static_cast<size_t>(c.p - data);
  return ParseStatus::kDone;
}

ParseStatus ParseResponse(const char* data, size_t len, std::string_view request_method, ResponseHead* out) {
  ResetResponse(out);
  Cursor c{data, data + len};
  HeaderFacts facts;
  Step step = ParseStatusLine(c, out);
  if (step == Step::kOk) {
    step = ParseHeaderSection(c, Message::kResponse, out->version_minor, &out->headers, &out->header_count, &facts);
  }
  if (step != Step::kOk) return ToStatus(step);
  FinishResponse(facts, request_method, out);
  out->head_length = static_cast<size_t>(c.p - data);
  return ParseStatus::kDone;
}

// ---- Chunked bodies ----------------------------------------------------------------------------------------

namespace {
constexpr size_t kMaxChunkSizeLine = 4096;  // size, extensions and CRLF
constexpr size_t kMaxTrailerSection = 64 * 1024;  // trailer lines and the final CRLF
constexpr int kMaxChunkSizeDigits = 15;     // so the size stays below 2^60
}  // namespace

ChunkedScanner::Result ChunkedScanner::Feed(const char* data, size_t len, size_t* consumed) {
  *consumed = 0;
  if (state_ == State::kDone) return Result::kDone;
  if (state_ == State::kError) return Result::kError;
  size_t i = 0;
  while (i < len) {
    if (state_ == State::kData) {  // the bulk of a body: skip it whole
      uint64_t available = len - i;
      uint64_t take = remaining_ < available ? remaining_ : available;
      i += static_cast<size_t>(take);
      remaining_ -= take;
      if (remaining_ == 0) state_ = State::kDataCr;
      continue;
    }
    if (!Step(static_cast<unsigned char>(data[i]))) {
      state_ = State::kError;
      *consumed = i;  // the bytes before the offending one
      return Result::kError;
    }
    ++i;
    if (state_ == State::kDone) {
      *consumed = i;
      return Result::kDone;
    }
  }
  *consumed = len;
  return Result::kNeedMore;
}

bool ChunkedScanner::Step(unsigned char c) {
  switch (state_) {
    case State::kSize:
    case State::kExtension:
    case State::kSizeLf:
      if (++line_length_ > kMaxChunkSizeLine) return false;
      break;
    case State::kTrailerStart:
    case State::kTrailerName:
    case State::kTrailer:
    case State::kTrailerLf:
    case State::kFinalLf:
      if (++line_length_ > kMaxTrailerSection) return false;
      break;
    default:
      break;
  }
  switch (state_) {
    case State::kSize:
      // 1*HEXDIG, then ";" extensions or CRLF. Whitespace after the size (BWS) is refused: parsers disagree on it.
      if (kCharClass[c] & kHexDigit) {
        if (size_digits_ == kMaxChunkSizeDigits) return false;
        ++size_digits_;
        remaining_ = remaining_ * 16 + static_cast<uint64_t>(HexValue(c));
        return true;
      }
      if (size_digits_ == 0) return false;
      if (c == ';') state_ = State::kExtension;
      else if (c == '\r') state_ = State::kSizeLf;
      else return false;
      return true;
    case State::kExtension:
      // Not interpreted, only bounded: any field-value byte up to CR. A bare LF here is refused, since some
      // parsers end the line at it and others do not.
      if (c == '\r') state_ = State::kSizeLf;
      else if (!(kCharClass[c] & kValueChar)) return false;
      return true;
    case State::kSizeLf:
      if (c != '\n') return false;
      line_length_ = 0;
      size_digits_ = 0;
      state_ = remaining_ == 0 ? State::kTrailerStart : State::kData;  // size 0 is the last chunk
      return true;
    case State::kDataCr:
      if (c != '\r') return false;
      state_ = State::kDataLf;
      return true;
    case State::kDataLf:
      if (c != '\n') return false;
      state_ = State::kSize;
      return true;
    case State::kTrailerStart:
      // A trailer field's name, or the CRLF that ends the message. No obs-fold, no empty name.
      if (c == '\r') state_ = State::kFinalLf;
      else if (kCharClass[c] & kTokenChar) state_ = State::kTrailerName;
      else return false;
      return true;
    case State::kTrailerName:
      if (c == ':') state_ = State::kTrailer;
      else if (!(kCharClass[c] & kTokenChar)) return false;
      return true;
    case State::kTrailer:
      if (c == '\r') state_ = State::kTrailerLf;
      else if (!(kCharClass[c] & kValueChar)) return false;
      return true;
    case State::kTrailerLf:
      if (c != '\n') return false;
      state_ = State::kTrailerStart;
      return true;
    case State::kFinalLf:
      if (c != '\n') return false;
      state_ = State::kDone;
      return true;
    case State::kData:
    case State::kDone:
    case State::kError:
      return false;  // Feed handles these without calling Step
  }
  return false;
}

}  // namespace autopipe::lb

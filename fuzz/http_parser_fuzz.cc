// libFuzzer target for the load balancer's HTTP/1.x parser (src/lb/http_parser.h).
//
// The whole input is parsed as a request head. Byte 0 picks the method of the request a response answers,
// and the rest of the input (after that byte) is parsed as a response head. Whatever follows a head (or the
// whole input, when there is no complete head) is fed to a ChunkedScanner. Beyond "no crash", it checks:
//   - a kDone head lies inside the input and its views do too;
//   - a prefix of the input never gives an answer other than kIncomplete or the full input's answer;
//   - a chunked body scanned whole and scanned split in two gives the same result and length.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>

#include "lb/http_parser.h"

namespace {

using autopipe::lb::BodyKind;
using autopipe::lb::ChunkedScanner;
using autopipe::lb::HeaderField;
using autopipe::lb::kMaxHeaders;
using autopipe::lb::ParseStatus;
using autopipe::lb::RequestHead;
using autopipe::lb::ResponseHead;

void Check(bool condition) {
  if (!condition) __builtin_trap();
}

bool Inside(std::string_view view, std::string_view input) {
  return view.empty() || (view.data() >= input.data() && view.data() + view.size() <= input.data() + input.size());
}

void CheckHeaders(const std::array<HeaderField, kMaxHeaders>& headers, size_t count, std::string_view head) {
  Check(count <= kMaxHeaders);
  for (size_t i = 0; i < count; ++i) {
    Check(!headers[i].name.empty());
    Check(Inside(headers[i].name, head) && Inside(headers[i].value, head));
    for (char c : headers[i].value) Check(c != '\r' && c != '\n' && c != '\0');
    std::string_view value = headers[i].value;
    if (!value.empty()) {
      for (char edge : {value.front(), value.back()}) Check(edge != ' ' && edge != '\t');
    }
  }
}

// Parsing any prefix gives kIncomplete or exactly what the whole input gave.
void CheckRequestPrefix(std::string_view input, size_t prefix, ParseStatus full, const RequestHead& full_head,
                        RequestHead* scratch) {
  if (prefix >= input.size()) return;
  ParseStatus status = autopipe::lb::ParseRequest(input.data(), prefix, scratch);
  if (status == ParseStatus::kIncomplete) return;
  Check(status == full);
  if (status == ParseStatus::kDone) Check(scratch->head_length == full_head.head_length);
  if (status == ParseStatus::kError) Check(scratch->error_status == full_head.error_status);
}

// Returns how many bytes the request head took (0 if it did not parse).
size_t FuzzRequest(std::string_view input) {
  auto head = std::make_unique<RequestHead>();
  auto scratch = std::make_unique<RequestHead>();
  ParseStatus status = autopipe::lb::ParseRequest(input.data(), input.size(), head.get());
  if (status == ParseStatus::kError) Check(head->error_status == 400 || head->error_status == 405);
  if (status == ParseStatus::kDone) {
    Check(head->head_length >= 4 && head->head_length <= input.size());
    std::string_view bytes = input.substr(0, head->head_length);
    Check(bytes.substr(bytes.size() - 4) == "\r\n\r\n");
    Check(!head->method.empty() && !head->target.empty() && Inside(head->method, bytes) &&
          Inside(head->target, bytes));
    Check(head->version_minor == 0 || head->version_minor == 1);
    Check(head->version_minor == 0 || head->has_host);
    Check(head->body != BodyKind::kUntilClose);
    Check((head->body == BodyKind::kContentLength) == (head->content_length > 0));
    CheckHeaders(head->headers, head->header_count, bytes);
    CheckRequestPrefix(input, head->head_length - 1, status, *head, scratch.get());
  }
  // A few more prefixes: one picked by the input itself, and the half.
  if (!input.empty()) {
    size_t picked = static_cast<unsigned char>(input.back()) * 31 % input.size();
    CheckRequestPrefix(input, picked, status, *head, scratch.get());
    CheckRequestPrefix(input, input.size() / 2, status, *head, scratch.get());
  }
  return status == ParseStatus::kDone ? head->head_length : 0;
}

size_t FuzzResponse(std::string_view input, std::string_view method) {
  auto head = std::make_unique<ResponseHead>();
  ParseStatus status = autopipe::lb::ParseResponse(input.data(), input.size(), method, head.get());
  if (status != ParseStatus::kDone) return 0;
  Check(head->head_length >= 4 && head->head_length <= input.size());
  Check(head->status >= 100 && head->status <= 999);
  CheckHeaders(head->headers, head->header_count, input.substr(0, head->head_length));
  if (head->body == BodyKind::kUntilClose) Check(!head->keep_alive);
  if (method == "HEAD" || head->status < 200) Check(head->body == BodyKind::kNone);
  // A prefix one byte short of the head is never complete.
  auto scratch = std::make_unique<ResponseHead>();
  Check(autopipe::lb::ParseResponse(input.data(), head->head_length - 1, method, scratch.get()) ==
        ParseStatus::kIncomplete);
  return head->head_length;
}

// Scans `body` whole and split at `split`, expecting the same verdict and the same number of body bytes.
void FuzzChunked(std::string_view body, size_t split) {
  ChunkedScanner whole;
  size_t whole_consumed = 0;
  ChunkedScanner::Result whole_result = whole.Feed(body.data(), body.size(), &whole_consumed);
  Check(whole_consumed <= body.size());
  if (whole_result == ChunkedScanner::Result::kNeedMore) Check(whole_consumed == body.size());
  Check(whole.done() == (whole_result == ChunkedScanner::Result::kDone));

  split = body.empty() ? 0 : split % (body.size() + 1);
  ChunkedScanner halves;
  size_t first = 0;
  size_t second = 0;
  ChunkedScanner::Result result = halves.Feed(body.data(), split, &first);
  if (result == ChunkedScanner::Result::kNeedMore) {
    Check(first == split);
    result = halves.Feed(body.data() + split, body.size() - split, &second);
  } else {
    // Finished early: a further call changes nothing and consumes nothing.
    ChunkedScanner::Result again = halves.Feed(body.data() + split, body.size() - split, &second);
    Check(again == result && second == 0);
  }
  Check(result == whole_result);
  Check(first + second == whole_consumed);
}

constexpr std::string_view kMethods[] = {"GET", "HEAD", "POST", "CONNECT"};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  size_t request_head = FuzzRequest(input);
  FuzzChunked(input.substr(request_head), size > 0 ? data[size / 2] * 257u + size : 0);
  if (size == 0) return 0;
  std::string_view response = input.substr(1);
  size_t response_head = FuzzResponse(response, kMethods[data[0] % 4]);
  if (response_head > 0) FuzzChunked(response.substr(response_head), data[0]);
  return 0;
}

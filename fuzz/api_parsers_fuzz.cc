// libFuzzer target for everything the API edge parses before a request is authenticated.
//
// Input layout for the SigV4 part (any bytes are accepted; missing parts are empty):
//   line 1: method, line 2: target, then "Name: value" header lines up to an empty line, then the body.
// The whole input is also fed, unsplit, to the form, URL, Authorization and JSON parsers.
#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "api/form.h"
#include "api/sigv4.h"

namespace {

constexpr int64_t kNow = 1795685947;  // 2026-11-26T09:39:07Z, the date the seed corpus is signed with
constexpr char kSecret[] = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

std::string_view TakeLine(std::string_view& rest) {
  size_t pos = rest.find('\n');
  std::string_view line = rest.substr(0, pos);
  rest = pos == std::string_view::npos ? std::string_view() : rest.substr(pos + 1);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  return line;
}

autopipe::SigV4Request SplitRequest(std::string_view input) {
  autopipe::SigV4Request req;
  req.method = TakeLine(input);
  req.target = TakeLine(input);
  while (!input.empty()) {
    std::string_view line = TakeLine(input);
    if (line.empty()) break;
    size_t colon = line.find(':');
    std::string_view name = line.substr(0, colon);
    std::string_view value = colon == std::string_view::npos ? std::string_view() : line.substr(colon + 1);
    req.headers.emplace_back(name, value);
  }
  req.body = input;
  return req;
}

// RFC 7230 token characters: header names our own signer can list in SignedHeaders unambiguously.
bool IsToken(std::string_view name) {
  if (name.empty()) return false;
  for (unsigned char c : name) {
    bool ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              std::string_view("!#$%&'*+-.^_`|~").find(static_cast<char>(c)) != std::string_view::npos;
    if (!ok) return false;
  }
  return true;
}

void Check(bool condition) {
  if (!condition) __builtin_trap();
}

void FuzzCodecs(std::string_view input) {
  autopipe::ParseForm(input);
  std::optional<std::string> decoded = autopipe::UrlDecode(input);
  Check(autopipe::UrlDecode(autopipe::UriEncode(input)) == std::string(input));
  Check(autopipe::UriEncode(input, /*encode_slash=*/false).size() >= input.size());
  if (decoded) Check(decoded->size() <= input.size());
}

void FuzzJson(std::string_view input) {
  nlohmann::json doc = nlohmann::json::parse(input.begin(), input.end(), /*cb=*/nullptr,
                                             /*allow_exceptions=*/false);
  if (!doc.is_discarded()) doc.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

void FuzzSigV4(std::string_view input) {
  autopipe::ParseAuthorization(input);
  autopipe::SigV4Request req = SplitRequest(input);
  auto any_key = [](const std::string&) -> std::optional<std::string> { return std::string(kSecret); };
  autopipe::VerifySigV4(req, any_key, "us-east-1", kNow);

  // Whatever we sign ourselves must verify, provided the header names are ones a signer can list.
  bool signable = true;
  for (const auto& [name, value] : req.headers) signable = signable && IsToken(name);
  if (!signable) return;
  req.headers.emplace_back("Host", "127.0.0.1:18557");
  autopipe::SignSigV4(req, "AKIDEXAMPLE", kSecret, "us-east-1", "autoscaling", kNow);
  Check(autopipe::VerifySigV4(req, any_key, "us-east-1", kNow).ok());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  FuzzCodecs(input);
  FuzzJson(input);
  FuzzSigV4(input);
  return 0;
}

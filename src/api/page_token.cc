#include "api/page_token.h"

#include <charconv>

namespace autopipe {
namespace {

// FNV-1a over the scope, a separator and the offset's decimal text.
uint64_t Check(std::string_view scope, std::string_view offset_text) {
  uint64_t h = 14695981039346656037ull;
  auto mix = [&h](std::string_view s) {
    for (unsigned char c : s) {
      h ^= c;
      h *= 1099511628211ull;
    }
  };
  mix("autopipe-page-v1:");
  mix(scope);
  mix(":");
  mix(offset_text);
  return h;
}

constexpr char kHex[] = "0123456789abcdef";

}  // namespace

std::string EncodePageToken(std::string_view scope, uint64_t offset) {
  const std::string offset_text = std::to_string(offset);
  uint64_t check = Check(scope, offset_text);
  std::string token = offset_text + "-";
  for (int shift = 60; shift >= 0; shift -= 4) token += kHex[(check >> shift) & 0xF];
  return token;
}

std::optional<uint64_t> DecodePageToken(std::string_view scope, std::string_view token) {
  const size_t dash = token.find('-');
  if (dash == std::string_view::npos || dash == 0 || dash > 12 || token.size() != dash + 17) return std::nullopt;
  const std::string_view offset_text = token.substr(0, dash);
  uint64_t offset = 0;
  auto [ptr, ec] = std::from_chars(offset_text.data(), offset_text.data() + offset_text.size(), offset);
  if (ec != std::errc() || ptr != offset_text.data() + offset_text.size()) return std::nullopt;
  if (std::to_string(offset) != offset_text) return std::nullopt;  // no leading zeros or signs
  const uint64_t check = Check(scope, offset_text);
  for (int i = 0, shift = 60; i < 16; ++i, shift -= 4) {
    if (token[dash + 1 + i] != kHex[(check >> shift) & 0xF]) return std::nullopt;
  }
  return offset;
}

}  // namespace autopipe

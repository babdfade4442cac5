// Decoding of application/x-www-form-urlencoded bodies and URL query strings, as the AWS Query and EC2
// protocols send them (Action=...&Version=...&Name.member.1=...).
//
// Thread-safety: pure functions.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace autopipe {

// Flat parameter map. Keys keep the client's spelling (case-sensitive, as AWS treats them).
using FormParams = std::map<std::string, std::string>;

// Percent-decodes one component ('+' means space). nullopt on a malformed escape (%G1, truncated %4).
std::optional<std::string> UrlDecode(std::string_view s);

// RFC 3986 encoding as SigV4 wants it: unreserved (A-Z a-z 0-9 - _ . ~) kept, everything else %XX (upper hex).
// With encode_slash=false, '/' is kept (for canonical URIs).
std::string UriEncode(std::string_view s, bool encode_slash = true);

// Parses "a=1&b=2". Empty pairs ("a=1&&b=2") are skipped; a key without '=' gets "". A repeated key keeps its
// first value. nullopt when any component is malformed or a key is empty after decoding.
std::optional<FormParams> ParseForm(std::string_view body);

}  // namespace autopipe

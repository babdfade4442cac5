// Pagination tokens (Auto Scaling's NextToken, ELB's Marker): opaque to clients, verifiable by the region.
//
// A token names the list it pages through (its scope, e.g. "AutoScalingGroups") and the offset of the next
// page, with a check value over both. A token that was not made here for the same scope (garbage, a hand-edited
// offset, one from another operation) does not decode, so the operation answers AWS's invalid-token error
// instead of a silent empty page. This is an integrity check, not a secret: it stops mistakes, not forgery.
//
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace autopipe {

std::string EncodePageToken(std::string_view scope, uint64_t offset);
// The offset, or nullopt when the token is not one EncodePageToken made for `scope`.
std::optional<uint64_t> DecodePageToken(std::string_view scope, std::string_view token);

}  // namespace autopipe

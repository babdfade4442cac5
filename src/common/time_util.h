// Time formatting in the shapes AWS uses on the wire.
//
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace autopipe {

// 2026-11-26T10:00:00.123Z (ISO-8601, UTC, milliseconds) as Query/XML responses carry timestamps.
std::string IsoTimeMillis(int64_t epoch_millis);
// 2026-11-26T10:00:00Z, as activity causes quote times.
std::string IsoTimeSeconds(int64_t epoch_millis);
// 20261126T100000Z, the SigV4 X-Amz-Date form, parsed to epoch seconds.
std::optional<int64_t> ParseAmzDate(std::string_view s);
// ISO-8601 timestamps as clients send them (2026-11-26T10:00:00Z, with optional fraction and offset).
std::optional<int64_t> ParseIsoTimeMillis(std::string_view s);

}  // namespace autopipe

// Request bodies sent with Content-Encoding: gzip. botocore compresses CloudWatch's PutMetricData bodies of 10 KiB
// or more (the model's requestcompression trait), and AWS accepts gzip on it; SigV4 signs the compressed bytes, so
// the router inflates a body only after verifying the signature.
//
// Thread-safety: pure functions.
#pragma once

#include <cstddef>
#include <string>

#include "common/status.h"

namespace autopipe {

// The most bytes a compressed request body may inflate to (a gzip bomb is refused, not inflated).
inline constexpr size_t kMaxInflatedBody = 16 * 1024 * 1024;

// The inflated bytes of a gzip stream (several members are concatenated); 400 SerializationException for a damaged
// or truncated stream, 413 RequestEntityTooLarge past `max_size`.
Result<std::string> Gunzip(const std::string& compressed, size_t max_size = kMaxInflatedBody);

}  // namespace autopipe

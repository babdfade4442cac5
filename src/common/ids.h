// Identifiers in AWS's shapes: instance ids (i- + 17 hex), request and activity ids (UUID v4), access keys.
//
// Thread-safety: all functions are safe to call from any thread (OpenSSL's RAND_bytes).
#pragma once

#include <string>

namespace autopipe {

std::string RandomHex(size_t n_chars);
std::string NewUuid();
std::string NewInstanceId();  // i-0123456789abcdef0
std::string NewAccessKeyId();  // AKIA + 16 upper-case alphanumerics
std::string NewSecretAccessKey();  // 40 base64-ish characters

}  // namespace autopipe

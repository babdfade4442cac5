// AWS Signature Version 4 verification (header form) for every API request.
//
// The caller hands over the request as received (method, raw target with query string, headers, raw body) and
// a lookup from access key id to secret. Verify() answers OK or the AWS error a real endpoint would give:
//   - no Authorization header (and no X-Amz-Algorithm query form)   -> 403 MissingAuthenticationToken
//   - malformed header / missing X-Amz-Date / missing signed "host" -> 400 IncompleteSignature
//   - unknown access key                                            -> 403 InvalidClientTokenId
//   - scope date != X-Amz-Date day, wrong region, not aws4_request  -> 403 SignatureDoesNotMatch
//   - request time outside now +- 15 min                            -> 403 SignatureDoesNotMatch ("Signature expired: ...")
//   - signature mismatch (constant-time compare)                    -> 403 SignatureDoesNotMatch
// Messages never include the secret or the expected signature.
//
// Thread-safety: pure functions; the secret lookup callback must be thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"

namespace autopipe {

struct SigV4Request {
  std::string method;                                        // "POST"
  std::string target;                                        // raw request target, e.g. "/?Action=X" or "/"
  std::vector<std::pair<std::string, std::string>> headers;  // as received, any case, repeats allowed
  std::string body;                                          // raw bytes
};

// Parsed "AWS4-HMAC-SHA256 Credential=AKID/20261126/us-west-2/autoscaling/aws4_request, SignedHeaders=a;b, Signature=hex"
struct SigV4Authorization {
  std::string access_key_id;
  std::string date;     // yyyymmdd from the scope
  std::string region;
  std::string service;
  std::string terminator;  // "aws4_request"
  std::vector<std::string> signed_headers;  // lower-case, as listed
  std::string signature;                    // 64 lower-case hex
};

// Parses the Authorization header value; nullopt when malformed.
std::optional<SigV4Authorization> ParseAuthorization(std::string_view header_value);

// The canonical request and string-to-sign, exposed for tests.
std::string CanonicalRequest(const SigV4Request& req, const std::vector<std::string>& signed_headers);
std::string StringToSign(std::string_view amz_date, std::string_view scope, std::string_view canonical_request);
// Hex HMAC signature for a string-to-sign.
std::string ComputeSignature(std::string_view secret, std::string_view date, std::string_view region,
                             std::string_view service, std::string_view string_to_sign);

// Lookup from access key id to secret; nullopt when the key is unknown.
using SecretLookup = std::function<std::optional<std::string>(const std::string& access_key_id)>;

struct VerifiedCaller {
  std::string access_key_id;
  std::string region;   // from the credential scope
  std::string service;  // from the credential scope ("autoscaling", "ec2", "monitoring", ...)
};

// Verifies `req`. `expected_region` is the region this server serves; `now_seconds` the current Unix time.
Result<VerifiedCaller> VerifySigV4(const SigV4Request& req, const SecretLookup& lookup,
                                   std::string_view expected_region, int64_t now_seconds);

// Signs a request (adds Authorization and X-Amz-Date headers): used by our own tests, benches and tooling.
void SignSigV4(SigV4Request& req, std::string_view access_key_id, std::string_view secret, std::string_view region,
               std::string_view service, int64_t now_seconds);

}  // namespace autopipe

#include "api/sigv4.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <charconv>
#include <ctime>

#include "api/form.h"
#include "common/time_util.h"

namespace autopipe {
namespace {

constexpr std::string_view kAlgorithm = "AWS4-HMAC-SHA256";
constexpr std::string_view kTerminator = "aws4_request";
constexpr int64_t kMaxSkewSeconds = 15 * 60;
constexpr int64_t kMaxPresignExpiresSeconds = 7 * 24 * 3600;

Status MissingAuthentication() { return Status(403, "MissingAuthenticationToken", "Missing Authentication Token"); }
Status IncompleteSignature(std::string message) { return Status(400, "IncompleteSignature", std::move(message)); }
Status SignatureDoesNotMatch(std::string message) { return Status(403, "SignatureDoesNotMatch", std::move(message)); }
Status InvalidClientTokenId() {
  return Status(403, "InvalidClientTokenId", "The security token included in the request is invalid.");
}
Status SignatureMismatch() {
  return SignatureDoesNotMatch(
      "The request signature we calculated does not match the signature you provided. Check your AWS Secret "
      "Access Key and signing method. Consult the service documentation for details.");
}

bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f'; }

std::string_view Trim(std::string_view s) {
  while (!s.empty() && IsSpace(s.front())) s.remove_prefix(1);
  while (!s.empty() && IsSpace(s.back())) s.remove_suffix(1);
  return s;
}

// Trims and collapses inner whitespace runs to one space (SigV4 "Trimall").
std::string TrimAll(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  bool pending_space = false;
  for (char c : Trim(s)) {
    if (IsSpace(c)) {
      pending_space = true;
      continue;
    }
    if (pending_space) out.push_back(' ');
    pending_space = false;
    out.push_back(c);
  }
  return out;
}

std::string ToLower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

std::vector<std::string_view> Split(std::string_view s, char sep) {
  std::vector<std::string_view> parts;
  while (true) {
    size_t pos = s.find(sep);
    parts.push_back(s.substr(0, pos));
    if (pos == std::string_view::npos) break;
    s.remove_prefix(pos + 1);
  }
  return parts;
}

std::string HexEncode(const unsigned char* data, size_t size) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(size * 2);
  for (size_t i = 0; i < size; ++i) {
    out.push_back(kHex[data[i] >> 4]);
    out.push_back(kHex[data[i] & 0xF]);
  }
  return out;
}

// Lower-cases a 64-digit hex signature; nullopt if it is anything else.
std::optional<std::string> NormalizeSignature(std::string_view s) {
  if (s.size() != 64) return std::nullopt;
  std::string out = ToLower(s);
  for (char c : out) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return std::nullopt;
  }
  return out;
}

// 20261126T093907Z; empty when the time is not representable.
std::string FormatAmzDate(int64_t seconds) {
  std::time_t t = static_cast<std::time_t>(seconds);
  std::tm tm{};
  if (gmtime_r(&t, &tm) == nullptr) return "";
  char buf[32];
  if (std::strftime(buf, sizeof buf, "%Y%m%dT%H%M%SZ", &tm) == 0) return "";
  return buf;
}

std::string Sha256Hex(std::string_view data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  if (EVP_Digest(data.data(), data.size(), digest, &size, EVP_sha256(), nullptr) != 1) return "";
  return HexEncode(digest, size);
}

std::string HmacSha256(std::string_view key, std::string_view data) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  if (HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(data.data()),
           data.size(), mac, &size) == nullptr) {
    return "";
  }
  std::string out(reinterpret_cast<const char*>(mac), size);
  OPENSSL_cleanse(mac, sizeof mac);
  return out;
}

// Replaces a derived key in place, wiping the previous one (it is as good as the secret for a day).
void ChainHmac(std::string& key, std::string_view data) {
  std::string next = HmacSha256(key, data);
  OPENSSL_cleanse(key.data(), key.size());
  key = std::move(next);
}

std::optional<std::string_view> FindHeader(const SigV4Request& req, std::string_view name) {
  for (const auto& [key, value] : req.headers) {
    if (EqualsIgnoreCase(key, name)) return std::string_view(value);
  }
  return std::nullopt;
}

std::string_view TargetPath(std::string_view target) { return target.substr(0, target.find('?')); }

std::string_view TargetQuery(std::string_view target) {
  size_t pos = target.find('?');
  return pos == std::string_view::npos ? std::string_view() : target.substr(pos + 1);
}

// RFC 3986 dot-segment removal, plus dropping empty segments, as AWS SDKs normalise non-S3 paths.
std::string NormalizePath(std::string_view path) {
  if (path.empty()) return "/";
  std::vector<std::string_view> kept;
  for (std::string_view segment : Split(path, '/')) {
    if (segment.empty() || segment == ".") continue;
    if (segment == "..") {
      if (!kept.empty()) kept.pop_back();
      continue;
    }
    kept.push_back(segment);
  }
  std::string out = path.front() == '/' ? "/" : "";
  for (size_t i = 0; i < kept.size(); ++i) {
    if (i > 0) out.push_back('/');
    out.append(kept[i]);
  }
  if (path.back() == '/' && !kept.empty()) out.push_back('/');
  return out;
}

// The wire path is already percent-encoded; encoding it once more is what non-S3 services sign.
std::string CanonicalUri(std::string_view target) {
  std::string normalized = NormalizePath(TargetPath(target));
  if (normalized.empty()) return "/";
  return UriEncode(normalized, /*encode_slash=*/false);
}

// Decodes then re-encodes a query component; a malformed escape is encoded as the literal text.
std::string CanonicalQueryComponent(std::string_view raw) {
  std::optional<std::string> decoded = UrlDecode(raw);
  return UriEncode(decoded ? *decoded : raw);
}

std::string CanonicalQuery(std::string_view query, bool drop_signature) {
  std::vector<std::pair<std::string, std::string>> pairs;
  for (std::string_view pair : Split(query, '&')) {
    if (pair.empty()) continue;
    size_t eq = pair.find('=');
    std::string key = CanonicalQueryComponent(pair.substr(0, eq));
    if (drop_signature && key == "X-Amz-Signature") continue;
    std::string value = eq == std::string_view::npos ? "" : CanonicalQueryComponent(pair.substr(eq + 1));
    pairs.emplace_back(std::move(key), std::move(value));
  }
  std::sort(pairs.begin(), pairs.end());
  std::string out;
  for (const auto& [key, value] : pairs) {
    if (!out.empty()) out.push_back('&');
    out.append(key).append("=").append(value);
  }
  return out;
}

// One "name:value\n" line per signed header; repeated headers are joined by ',' in arrival order.
std::string CanonicalHeaders(const SigV4Request& req, const std::vector<std::string>& signed_headers) {
  std::string out;
  for (const std::string& name : signed_headers) {
    std::string joined;
    bool first = true;
    for (const auto& [key, value] : req.headers) {
      if (!EqualsIgnoreCase(key, name)) continue;
      if (!first) joined.push_back(',');
      joined.append(TrimAll(value));
      first = false;
    }
    out.append(ToLower(name)).append(":").append(joined).append("\n");
  }
  return out;
}

std::string JoinSignedHeaders(const std::vector<std::string>& signed_headers) {
  std::string out;
  for (const std::string& name : signed_headers) {
    if (!out.empty()) out.push_back(';');
    out.append(ToLower(name));
  }
  return out;
}

std::string BuildCanonicalRequest(const SigV4Request& req, const std::vector<std::string>& signed_headers,
                                  bool drop_signature_param) {
  std::string out;
  out.append(req.method).append("\n");
  out.append(CanonicalUri(req.target)).append("\n");
  out.append(CanonicalQuery(TargetQuery(req.target), drop_signature_param)).append("\n");
  out.append(CanonicalHeaders(req, signed_headers)).append("\n");
  out.append(JoinSignedHeaders(signed_headers)).append("\n");
  out.append(Sha256Hex(req.body));
  return out;
}

std::string CredentialScope(std::string_view date, std::string_view region, std::string_view service) {
  std::string scope;
  scope.append(date).append("/").append(region).append("/").append(service).append("/").append(kTerminator);
  return scope;
}

// Fills the scope fields of `auth` from "AKID/yyyymmdd/region/service/aws4_request".
Status ParseCredential(std::string_view credential, SigV4Authorization& auth) {
  std::vector<std::string_view> parts = Split(credential, '/');
  bool all_present =
      parts.size() == 5 && std::none_of(parts.begin(), parts.end(), [](std::string_view p) { return p.empty(); });
  if (!all_present) {
    return IncompleteSignature(
        "Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term.");
  }
  auth.access_key_id = parts[0];
  auth.date = parts[1];
  auth.region = parts[2];
  auth.service = parts[3];
  auth.terminator = parts[4];
  return Status::Ok();
}

Status ParseSignedHeaders(std::string_view list, SigV4Authorization& auth) {
  auth.signed_headers.clear();
  for (std::string_view name : Split(list, ';')) {
    if (name.empty()) return IncompleteSignature("SignedHeaders must be a ';'-separated list of header names.");
    auth.signed_headers.push_back(ToLower(name));
  }
  return Status::Ok();
}

Status ParseSignatureValue(std::string_view value, SigV4Authorization& auth) {
  std::optional<std::string> signature = NormalizeSignature(value);
  if (!signature) return IncompleteSignature("Signature must be 64 hexadecimal characters.");
  auth.signature = std::move(*signature);
  return Status::Ok();
}

struct AuthParams {
  std::optional<std::string_view> credential;
  std::optional<std::string_view> signed_headers;
  std::optional<std::string_view> signature;
};

// Splits "Credential=..., SignedHeaders=..., Signature=..." (any order, each exactly once).
Status SplitAuthParams(std::string_view params, AuthParams& out) {
  for (std::string_view item : Split(params, ',')) {
    item = Trim(item);
    if (item.empty()) continue;
    size_t eq = item.find('=');
    if (eq == std::string_view::npos) return IncompleteSignature("Authorization header is malformed.");
    std::string_view name = item.substr(0, eq);
    std::string_view value = item.substr(eq + 1);
    std::optional<std::string_view>* slot = nullptr;
    if (name == "Credential") slot = &out.credential;
    if (name == "SignedHeaders") slot = &out.signed_headers;
    if (name == "Signature") slot = &out.signature;
    if (slot == nullptr || slot->has_value()) return IncompleteSignature("Authorization header is malformed.");
    *slot = value;
  }
  std::string missing;
  if (!out.credential) missing += "Authorization header requires 'Credential' parameter. ";
  if (!out.signature) missing += "Authorization header requires 'Signature' parameter. ";
  if (!out.signed_headers) missing += "Authorization header requires 'SignedHeaders' parameter. ";
  if (!missing.empty()) return IncompleteSignature(std::string(Trim(missing)));
  return Status::Ok();
}

Result<SigV4Authorization> ParseAuthorizationHeader(std::string_view header_value) {
  std::string_view value = Trim(header_value);
  if (value.size() <= kAlgorithm.size() || value.substr(0, kAlgorithm.size()) != kAlgorithm ||
      !IsSpace(value[kAlgorithm.size()])) {
    return IncompleteSignature("Authorization header must use the AWS4-HMAC-SHA256 algorithm.");
  }
  AuthParams params;
  AP_RETURN_IF_ERROR(SplitAuthParams(value.substr(kAlgorithm.size() + 1), params));
  SigV4Authorization auth;
  AP_RETURN_IF_ERROR(ParseCredential(*params.credential, auth));
  AP_RETURN_IF_ERROR(ParseSignedHeaders(*params.signed_headers, auth));
  AP_RETURN_IF_ERROR(ParseSignatureValue(*params.signature, auth));
  return auth;
}

struct AuthInput {
  SigV4Authorization auth;
  std::string amz_date;
  std::optional<int64_t> expires_seconds;  // presigned form only
  bool presigned = false;
};

Result<AuthInput> FromHeaderForm(const SigV4Request& req, std::string_view header_value) {
  Result<SigV4Authorization> auth = ParseAuthorizationHeader(header_value);
  if (!auth.ok()) return auth.status();
  std::optional<std::string_view> amz_date = FindHeader(req, "x-amz-date");
  if (!amz_date) {
    return IncompleteSignature("Authorization header requires existence of a 'X-Amz-Date' header.");
  }
  AuthInput input;
  input.auth = std::move(*auth);
  input.amz_date = Trim(*amz_date);
  return input;
}

// Decoded X-Amz-* parameters of the query string (first occurrence wins).
struct PresignParams {
  std::optional<std::string> algorithm, credential, date, signed_headers, signature, expires;
};

Status CollectPresignParams(std::string_view query, PresignParams& out) {
  for (std::string_view pair : Split(query, '&')) {
    size_t eq = pair.find('=');
    std::optional<std::string> key = UrlDecode(pair.substr(0, eq));
    std::optional<std::string> value = UrlDecode(eq == std::string_view::npos ? "" : pair.substr(eq + 1));
    if (!key || key->rfind("X-Amz-", 0) != 0) continue;
    if (!value) return IncompleteSignature("AWS query-string parameters are malformed.");
    std::optional<std::string>* slot = nullptr;
    if (*key == "X-Amz-Algorithm") slot = &out.algorithm;
    if (*key == "X-Amz-Credential") slot = &out.credential;
    if (*key == "X-Amz-Date") slot = &out.date;
    if (*key == "X-Amz-SignedHeaders") slot = &out.signed_headers;
    if (*key == "X-Amz-Signature") slot = &out.signature;
    if (*key == "X-Amz-Expires") slot = &out.expires;
    if (slot != nullptr && !slot->has_value()) *slot = std::move(*value);
  }
  return Status::Ok();
}

Status RequirePresignParams(const PresignParams& p) {
  std::string missing;
  if (!p.algorithm) missing += "AWS query-string parameters must include 'X-Amz-Algorithm'. ";
  if (!p.credential) missing += "AWS query-string parameters must include 'X-Amz-Credential'. ";
  if (!p.signature) missing += "AWS query-string parameters must include 'X-Amz-Signature'. ";
  if (!p.signed_headers) missing += "AWS query-string parameters must include 'X-Amz-SignedHeaders'. ";
  if (!p.date) missing += "AWS query-string parameters must include 'X-Amz-Date'. ";
  if (!missing.empty()) return IncompleteSignature(missing + "Re-examine the query-string parameters.");
  if (*p.algorithm != kAlgorithm) {
    return IncompleteSignature("X-Amz-Algorithm only supports 'AWS4-HMAC-SHA256'.");
  }
  return Status::Ok();
}

Result<int64_t> ParseExpires(std::string_view s) {
  int64_t value = 0;
  auto [end, error] = std::from_chars(s.data(), s.data() + s.size(), value);
  if (s.empty() || error != std::errc() || end != s.data() + s.size() || value < 0) {
    return IncompleteSignature("X-Amz-Expires must be a non-negative integer.");
  }
  if (value > kMaxPresignExpiresSeconds) {
    return IncompleteSignature("X-Amz-Expires must be less than a week (in seconds) that is 604800.");
  }
  return value;
}

Result<AuthInput> FromQueryForm(const SigV4Request& req) {
  PresignParams p;
  AP_RETURN_IF_ERROR(CollectPresignParams(TargetQuery(req.target), p));
  AP_RETURN_IF_ERROR(RequirePresignParams(p));
  AuthInput input;
  input.presigned = true;
  AP_RETURN_IF_ERROR(ParseCredential(*p.credential, input.auth));
  AP_RETURN_IF_ERROR(ParseSignedHeaders(*p.signed_headers, input.auth));
  AP_RETURN_IF_ERROR(ParseSignatureValue(*p.signature, input.auth));
  if (p.expires) {
    Result<int64_t> expires = ParseExpires(*p.expires);
    if (!expires.ok()) return expires.status();
    input.expires_seconds = *expires;
  }
  input.amz_date = *p.date;
  return input;
}

bool HasAlgorithmQueryParam(std::string_view target) {
  for (std::string_view pair : Split(TargetQuery(target), '&')) {
    if (pair.substr(0, pair.find('=')) == "X-Amz-Algorithm") return true;
  }
  return false;
}

Result<AuthInput> ExtractAuth(const SigV4Request& req) {
  if (std::optional<std::string_view> header = FindHeader(req, "authorization")) {
    return FromHeaderForm(req, *header);
  }
  if (HasAlgorithmQueryParam(req.target)) return FromQueryForm(req);
  return MissingAuthentication();
}

Status CheckScope(const AuthInput& in, std::string_view expected_region) {
  std::string_view day = std::string_view(in.amz_date).substr(0, 8);
  if (in.auth.date != day) {
    return SignatureDoesNotMatch(
        "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date "
        "from HTTP: '" +
        in.auth.date + "' != '" + std::string(day) + "', from '" + in.amz_date + "'.");
  }
  if (in.auth.region != expected_region) {
    return SignatureDoesNotMatch("Credential should be scoped to a valid region. ");
  }
  if (in.auth.terminator != kTerminator) {
    return SignatureDoesNotMatch("Credential should be scoped with a valid terminator: 'aws4_request', not '" +
                                 in.auth.terminator + "'.");
  }
  return Status::Ok();
}

Status CheckTime(int64_t request_time, const AuthInput& in, int64_t now) {
  if (in.expires_seconds && now > request_time + *in.expires_seconds) {
    return Status(400, "RequestExpired", "Request has expired.");
  }
  // A presigned URL may legitimately be older than the skew window, up to its own expiry.
  bool check_past = !in.expires_seconds;
  if (check_past && request_time < now - kMaxSkewSeconds) {
    return SignatureDoesNotMatch("Signature expired: " + in.amz_date + " is now earlier than " +
                                 FormatAmzDate(now - kMaxSkewSeconds) + " (" + FormatAmzDate(now) + " - 15 min.)");
  }
  if (request_time > now + kMaxSkewSeconds) {
    return SignatureDoesNotMatch("Signature not yet current: " + in.amz_date + " is still later than " +
                                 FormatAmzDate(now + kMaxSkewSeconds) + " (" + FormatAmzDate(now) + " + 15 min.)");
  }
  return Status::Ok();
}

Status CheckSignature(const SigV4Request& req, const AuthInput& in, const std::string& secret) {
  const SigV4Authorization& auth = in.auth;
  std::string canonical = BuildCanonicalRequest(req, auth.signed_headers, in.presigned);
  std::string to_sign = StringToSign(in.amz_date, CredentialScope(auth.date, auth.region, auth.service), canonical);
  std::string expected = ComputeSignature(secret, auth.date, auth.region, auth.service, to_sign);
  bool match = expected.size() == auth.signature.size() &&
               CRYPTO_memcmp(expected.data(), auth.signature.data(), expected.size()) == 0;
  OPENSSL_cleanse(expected.data(), expected.size());
  return match ? Status::Ok() : SignatureMismatch();
}

// Headers SDKs never sign because proxies may rewrite them.
bool IsUnsignableHeader(std::string_view lower_name) {
  static constexpr std::string_view kSkip[] = {
      "authorization", "connection",        "expect",  "keep-alive", "proxy-authenticate", "proxy-authorization", "te",
      "trailer",       "transfer-encoding", "upgrade", "user-agent", "x-amzn-trace-id"};
  return std::find(std::begin(kSkip), std::end(kSkip), lower_name) != std::end(kSkip);
}

}  // namespace

std::optional<SigV4Authorization> ParseAuthorization(std::string_view header_value) {
  Result<SigV4Authorization> auth = ParseAuthorizationHeader(header_value);
  if (!auth.ok()) return std::nullopt;
  return std::move(*auth);
}

std::string CanonicalRequest(const SigV4Request& req, const std::vector<std::string>& signed_headers) {
  return BuildCanonicalRequest(req, signed_headers, /*drop_signature_param=*/false);
}

std::string StringToSign(std::string_view amz_date, std::string_view scope, std::string_view canonical_request) {
  std::string out;
  out.append(kAlgorithm).append("\n");
  out.append(amz_date).append("\n");
  out.append(scope).append("\n");
  out.append(Sha256Hex(canonical_request));
  return out;
}

std::string ComputeSignature(std::string_view secret, std::string_view date, std::string_view region,
                             std::string_view service, std::string_view string_to_sign) {
  std::string key = "AWS4";
  key.append(secret);
  ChainHmac(key, date);
  ChainHmac(key, region);
  ChainHmac(key, service);
  ChainHmac(key, kTerminator);
  std::string mac = HmacSha256(key, string_to_sign);
  OPENSSL_cleanse(key.data(), key.size());
  return HexEncode(reinterpret_cast<const unsigned char*>(mac.data()), mac.size());
}

Result<VerifiedCaller> VerifySigV4(const SigV4Request& req, const SecretLookup& lookup,
                                   std::string_view expected_region, int64_t now_seconds) {
  Result<AuthInput> extracted = ExtractAuth(req);
  if (!extracted.ok()) return extracted.status();
  const AuthInput& in = *extracted;

  std::optional<int64_t> request_time = ParseAmzDate(in.amz_date);
  if (!request_time) {
    return IncompleteSignature("X-Amz-Date must be in the ISO8601 basic format yyyyMMdd'T'HHmmss'Z'.");
  }
  const auto& signed_headers = in.auth.signed_headers;
  if (std::find(signed_headers.begin(), signed_headers.end(), "host") == signed_headers.end()) {
    return IncompleteSignature("'Host' must be a signed header.");
  }

  std::optional<std::string> secret = lookup ? lookup(in.auth.access_key_id) : std::nullopt;
  if (!secret) return InvalidClientTokenId();

  AP_RETURN_IF_ERROR(CheckScope(in, expected_region));
  AP_RETURN_IF_ERROR(CheckTime(*request_time, in, now_seconds));
  Status signature_status = CheckSignature(req, in, *secret);
  OPENSSL_cleanse(secret->data(), secret->size());
  AP_RETURN_IF_ERROR(signature_status);
  return VerifiedCaller{in.auth.access_key_id, in.auth.region, in.auth.service};
}

void SignSigV4(SigV4Request& req, std::string_view access_key_id, std::string_view secret, std::string_view region,
               std::string_view service, int64_t now_seconds) {
  std::erase_if(req.headers, [](const auto& header) {
    return EqualsIgnoreCase(header.first, "authorization") || EqualsIgnoreCase(header.first, "x-amz-date");
  });
  std::string amz_date = FormatAmzDate(now_seconds);
  req.headers.emplace_back("X-Amz-Date", amz_date);

  std::vector<std::string> signed_headers;
  for (const auto& header : req.headers) {
    std::string name = ToLower(header.first);
    if (!IsUnsignableHeader(name)) signed_headers.push_back(std::move(name));
  }
  std::sort(signed_headers.begin(), signed_headers.end());
  signed_headers.erase(std::unique(signed_headers.begin(), signed_headers.end()), signed_headers.end());

  std::string date = amz_date.substr(0, 8);
  std::string scope = CredentialScope(date, region, service);
  std::string to_sign = StringToSign(amz_date, scope, CanonicalRequest(req, signed_headers));
  std::string signature = ComputeSignature(secret, date, region, service, to_sign);

  std::string authorization(kAlgorithm);
  authorization.append(" Credential=").append(access_key_id).append("/").append(scope);
  authorization.append(", SignedHeaders=").append(JoinSignedHeaders(signed_headers));
  authorization.append(", Signature=").append(signature);
  req.headers.emplace_back("Authorization", std::move(authorization));
}

}  // namespace autopipe

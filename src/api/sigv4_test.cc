#include "api/sigv4.h"

#include <gtest/gtest.h>

#include <map>

namespace autopipe {
namespace {

// Credentials of the public AWS SigV4 test suite.
constexpr char kAkid[] = "AKIDEXAMPLE";
constexpr char kSecret[] = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
constexpr int64_t kNow = 1795685947;  // 2026-11-26T09:39:07Z
constexpr char kAmzDate[] = "20261126T093907Z";
constexpr char kEmptySha256[] = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

// Expected values below were produced by botocore 1.43.11 (SigV4Auth / SigV4QueryAuth with the clock frozen at
// kNow), so they check us against the reference client rather than against ourselves.
constexpr char kBotocoreQueryAuth[] =
    "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261126/us-east-1/autoscaling/aws4_request, "
    "SignedHeaders=content-type;host;x-amz-date, "
    "Signature=934e8086f37a9a9f16f9e879a8efa749b8904c0c024c6c6a80891c92e341c87b";
constexpr char kBotocoreJsonAuth[] =
    "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261126/us-west-2/monitoring/aws4_request, "
    "SignedHeaders=content-type;host;x-amz-date;x-amz-target;x-amzn-query-mode, "
    "Signature=e5ce5eb7c02e18f5cc28385d647895cc596cc154b7a5296eeb87cf3cc13040fd";
constexpr char kBotocoreGetAuth[] =
    "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261126/us-east-1/sns/aws4_request, "
    "SignedHeaders=host;my-header;x-amz-date;x-rep, "
    "Signature=f5d8a5230928ac94d8e45d612e5e6b6e2a74c901cd6fc274cef31cf450704298";
constexpr char kBotocoreGetCanonical[] =
    "GET\n/a%2520b/c/d/\na=x&a=z%2Fy&b=2&empty=&t=~\nhost:localhost:8080\nmy-header:two spaces here\n"
    "x-amz-date:20261126T093907Z\nx-rep:b c,a\n\nhost;my-header;x-amz-date;x-rep\n"
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
constexpr char kBotocorePresignedTarget[] =
    "/?Action=ListTopics&Version=2010-03-31&X-Amz-Algorithm=AWS4-HMAC-SHA256"
    "&X-Amz-Credential=AKIDEXAMPLE%2F20261126%2Fus-east-1%2Fsns%2Faws4_request&X-Amz-Date=20261126T093907Z"
    "&X-Amz-Expires=300&X-Amz-SignedHeaders=host"
    "&X-Amz-Signature=4eeb1bf4187955604456bd6015e15395a899f0196a136d26c9c0f72b424eaa42";

SecretLookup TestKeys() {
  return [](const std::string& akid) -> std::optional<std::string> {
    if (akid == kAkid) return std::string(kSecret);
    return std::nullopt;
  };
}

SigV4Request BotocoreQueryRequest() {
  SigV4Request req;
  req.method = "POST";
  req.target = "/";
  req.headers = {{"Host", "127.0.0.1:18557"},
                 {"Content-Type", "application/x-www-form-urlencoded; charset=utf-8"},
                 {"X-Amz-Date", kAmzDate},
                 {"Authorization", kBotocoreQueryAuth},
                 {"User-Agent", "aws-cli/1.45.11"}};
  req.body = "Action=DescribeAutoScalingGroups&Version=2011-01-01";
  return req;
}

// An unsigned request with a Host and a Content-Type, ready for SignSigV4.
SigV4Request UnsignedRequest() {
  SigV4Request req;
  req.method = "POST";
  req.target = "/";
  req.headers = {{"Host", "127.0.0.1:18557"}, {"Content-Type", "application/x-www-form-urlencoded; charset=utf-8"}};
  req.body = "Action=DescribeAutoScalingGroups&Version=2011-01-01";
  return req;
}

Result<VerifiedCaller> Verify(const SigV4Request& req, int64_t now = kNow, std::string_view region = "us-east-1") {
  return VerifySigV4(req, TestKeys(), region, now);
}

std::string& HeaderRef(SigV4Request& req, const std::string& name) {
  for (auto& [key, value] : req.headers) {
    if (key == name) return value;
  }
  ADD_FAILURE() << "no header " << name;
  static std::string dummy;
  return dummy;
}

void ExpectError(const Result<VerifiedCaller>& result, int http, const std::string& code) {
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().http_status(), http) << result.status().ToString();
  EXPECT_EQ(result.status().code(), code) << result.status().ToString();
}

const char kMismatchMessage[] =
    "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access "
    "Key and signing method. Consult the service documentation for details.";

TEST(SigV4KnownAnswerTest, AwsTestSuiteGetVanilla) {
  SigV4Request req;
  req.method = "GET";
  req.target = "/";
  req.headers = {{"Host", "example.amazonaws.com"}, {"X-Amz-Date", "20150830T123600Z"}};
  std::string canonical = CanonicalRequest(req, {"host", "x-amz-date"});
  EXPECT_EQ(canonical, std::string("GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\n"
                                   "host;x-amz-date\n") +
                           kEmptySha256);
  std::string to_sign = StringToSign("20150830T123600Z", "20150830/us-east-1/service/aws4_request", canonical);
  EXPECT_EQ(to_sign,
            "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\n"
            "bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63");
  EXPECT_EQ(ComputeSignature(kSecret, "20150830", "us-east-1", "service", to_sign),
            "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31");

  req.headers.emplace_back("Authorization",
                           "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
                           "SignedHeaders=host;x-amz-date, "
                           "Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31");
  Result<VerifiedCaller> caller = Verify(req, /*now=*/1440938160);
  ASSERT_TRUE(caller.ok()) << caller.status().ToString();
  EXPECT_EQ(caller->service, "service");
}

TEST(SigV4KnownAnswerTest, BotocoreQueryProtocolPost) {
  Result<VerifiedCaller> caller = Verify(BotocoreQueryRequest());
  ASSERT_TRUE(caller.ok()) << caller.status().ToString();
  EXPECT_EQ(caller->access_key_id, kAkid);
  EXPECT_EQ(caller->region, "us-east-1");
  EXPECT_EQ(caller->service, "autoscaling");
}

TEST(SigV4KnownAnswerTest, SignSigV4MatchesBotocore) {
  SigV4Request req = UnsignedRequest();
  SignSigV4(req, kAkid, kSecret, "us-east-1", "autoscaling", kNow);
  EXPECT_EQ(HeaderRef(req, "X-Amz-Date"), kAmzDate);
  EXPECT_EQ(HeaderRef(req, "Authorization"), kBotocoreQueryAuth);
}

TEST(SigV4KnownAnswerTest, BotocoreCloudWatchJson) {
  SigV4Request req;
  req.method = "POST";
  req.target = "/";
  req.headers = {{"Content-Type", "application/x-amz-json-1.0"},
                 {"X-Amz-Target", "GraniteServiceVersion20100801.PutMetricData"},
                 {"x-amzn-query-mode", "true"},
                 {"X-Amz-Date", kAmzDate},
                 {"Authorization", kBotocoreJsonAuth},
                 {"Host", "127.0.0.1:18557"}};
  req.body = R"({"Namespace": "X", "MetricData": [{"MetricName": "m", "Value": 1.0}]})";
  Result<VerifiedCaller> caller = Verify(req, kNow, "us-west-2");
  ASSERT_TRUE(caller.ok()) << caller.status().ToString();
  EXPECT_EQ(caller->service, "monitoring");
  EXPECT_EQ(caller->region, "us-west-2");
}

// Path normalisation and double encoding, query sorting, Trimall and repeated headers, all checked by botocore.
SigV4Request BotocoreGetRequest() {
  SigV4Request req;
  req.method = "GET";
  req.target = "/a%20b/./c//d/?b=2&a=z%2Fy&a=x&empty&t=~";
  req.headers = {{"Host", "localhost:8080"}, {"My-Header", "  two   spaces  here "}, {"X-Rep", "b  c"}, {"X-Rep", " a"},
                 {"X-Amz-Date", kAmzDate},   {"Authorization", kBotocoreGetAuth}};
  return req;
}

TEST(SigV4KnownAnswerTest, BotocoreCanonicalRequest) {
  EXPECT_EQ(CanonicalRequest(BotocoreGetRequest(), {"host", "my-header", "x-amz-date", "x-rep"}),
            kBotocoreGetCanonical);
}

TEST(SigV4KnownAnswerTest, BotocoreGetWithQueryPathAndRepeatedHeaders) {
  Result<VerifiedCaller> caller = Verify(BotocoreGetRequest());
  ASSERT_TRUE(caller.ok()) << caller.status().ToString();
  EXPECT_EQ(caller->service, "sns");
}

TEST(SigV4KnownAnswerTest, BotocorePresignedUrl) {
  SigV4Request req;
  req.method = "GET";
  req.target = kBotocorePresignedTarget;
  req.headers = {{"Host", "127.0.0.1:18557"}};
  Result<VerifiedCaller> caller = Verify(req);
  ASSERT_TRUE(caller.ok()) << caller.status().ToString();
  EXPECT_EQ(caller->service, "sns");
}

TEST(SigV4CanonicalTest, EmptyPathBecomesSlash) {
  SigV4Request req;
  req.method = "POST";
  req.target = "?b=1";
  EXPECT_EQ(CanonicalRequest(req, {}), std::string("POST\n/\nb=1\n\n\n") + kEmptySha256);
}

TEST(SigV4CanonicalTest, QueryIsDecodedReencodedAndSorted) {
  SigV4Request req;
  req.method = "GET";
  req.target = "/?z=%7e&b=a+b&a=2&a=10&flag&%41=x&&c=%2f";
  std::string canonical = CanonicalRequest(req, {});
  EXPECT_EQ(canonical.substr(0, canonical.find("\n\n")), "GET\n/\nA=x&a=10&a=2&b=a%20b&c=%2F&flag=&z=~");
}

TEST(SigV4CanonicalTest, MalformedQueryEscapeIsEncodedLiterally) {
  SigV4Request req;
  req.method = "GET";
  req.target = "/?a=%G1";
  std::string canonical = CanonicalRequest(req, {});
  EXPECT_EQ(canonical.substr(0, canonical.find("\n\n")), "GET\n/\na=%25G1");
}

TEST(SigV4CanonicalTest, DotSegmentsCannotClimbAboveRoot) {
  SigV4Request req;
  req.method = "GET";
  req.target = "/../../x/../y";
  std::string canonical = CanonicalRequest(req, {});
  EXPECT_EQ(canonical.substr(0, canonical.find("\n\n")), "GET\n/y");
}

TEST(SigV4CanonicalTest, HeaderNamesLowercasedValuesTrimmed) {
  SigV4Request req;
  req.method = "POST";
  req.target = "/";
  req.headers = {{"HOST", " h "}, {"X-Tab", "\ta \t b\t"}};
  std::string canonical = CanonicalRequest(req, {"host", "x-tab"});
  EXPECT_EQ(canonical, std::string("POST\n/\n\nhost:h\nx-tab:a b\n\nhost;x-tab\n") + kEmptySha256);
}

TEST(ParseAuthorizationTest, ParsesBotocoreHeader) {
  std::optional<SigV4Authorization> auth = ParseAuthorization(kBotocoreJsonAuth);
  ASSERT_TRUE(auth.has_value());
  EXPECT_EQ(auth->access_key_id, kAkid);
  EXPECT_EQ(auth->date, "20261126");
  EXPECT_EQ(auth->region, "us-west-2");
  EXPECT_EQ(auth->service, "monitoring");
  EXPECT_EQ(auth->terminator, "aws4_request");
  EXPECT_EQ(auth->signed_headers,
            (std::vector<std::string>{"content-type", "host", "x-amz-date", "x-amz-target", "x-amzn-query-mode"}));
  EXPECT_EQ(auth->signature, "e5ce5eb7c02e18f5cc28385d647895cc596cc154b7a5296eeb87cf3cc13040fd");
}

TEST(ParseAuthorizationTest, AcceptsAnyOrderNoSpacesAndUpperHex) {
  std::optional<SigV4Authorization> auth = ParseAuthorization(
      "AWS4-HMAC-SHA256 Signature=E5CE5EB7C02E18F5CC28385D647895CC596CC154B7A5296EEB87CF3CC13040FD,"
      "SignedHeaders=Host;X-Amz-Date,Credential=K/20261126/r/s/aws4_request");
  ASSERT_TRUE(auth.has_value());
  EXPECT_EQ(auth->access_key_id, "K");
  EXPECT_EQ(auth->signed_headers, (std::vector<std::string>{"host", "x-amz-date"}));
  EXPECT_EQ(auth->signature, "e5ce5eb7c02e18f5cc28385d647895cc596cc154b7a5296eeb87cf3cc13040fd");
}

TEST(ParseAuthorizationTest, RejectsMalformed) {
  const std::string sig = "Signature=" + std::string(64, 'a');
  const std::string good = "Credential=K/20261126/r/s/aws4_request, SignedHeaders=host, " + sig;
  EXPECT_TRUE(ParseAuthorization("AWS4-HMAC-SHA256 " + good).has_value());
  const std::string bad[] = {
      "",
      "AWS4-HMAC-SHA256",
      "AWS4-HMAC-SHA1 " + good,
      "AWS4-HMAC-SHA256," + good,
      "Bearer abc",
      "AWS4-HMAC-SHA256 SignedHeaders=host, " + sig,
      "AWS4-HMAC-SHA256 Credential=K/20261126/r/s/aws4_request, " + sig,
      "AWS4-HMAC-SHA256 Credential=K/20261126/r/s/aws4_request, SignedHeaders=host",
      "AWS4-HMAC-SHA256 Credential=K/20261126/r/s, SignedHeaders=host, " + sig,
      "AWS4-HMAC-SHA256 Credential=K/20261126/r/s/aws4_request/x, SignedHeaders=host, " + sig,
      "AWS4-HMAC-SHA256 Credential=K//r/s/aws4_request, SignedHeaders=host, " + sig,
      "AWS4-HMAC-SHA256 Credential=K/20261126/r/s/aws4_request, SignedHeaders=host;;x, " + sig,
      "AWS4-HMAC-SHA256 Credential=K/20261126/r/s/aws4_request, SignedHeaders=, " + sig,
      "AWS4-HMAC-SHA256 Credential=K/20261126/r/s/aws4_request, SignedHeaders=host, Signature=abc",
      "AWS4-HMAC-SHA256 Credential=K/20261126/r/s/aws4_request, SignedHeaders=host, Signature=" + std::string(64, 'g'),
      "AWS4-HMAC-SHA256 " + good + ", " + sig,
      "AWS4-HMAC-SHA256 " + good + ", Extra=1",
      "AWS4-HMAC-SHA256 " + good + ", junk",
  };
  for (const std::string& header : bad) {
    EXPECT_FALSE(ParseAuthorization(header).has_value()) << header;
  }
}

TEST(VerifySigV4Test, NoAuthorizationIsMissingAuthenticationToken) {
  SigV4Request req = UnsignedRequest();
  Result<VerifiedCaller> result = Verify(req);
  ExpectError(result, 403, "MissingAuthenticationToken");
  EXPECT_EQ(result.status().message(), "Missing Authentication Token");
}

TEST(VerifySigV4Test, MalformedAuthorizationIsIncompleteSignature) {
  SigV4Request req = BotocoreQueryRequest();
  HeaderRef(req, "Authorization") = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261126/us-east-1/autoscaling";
  ExpectError(Verify(req), 400, "IncompleteSignature");
  HeaderRef(req, "Authorization") = "garbage";
  ExpectError(Verify(req), 400, "IncompleteSignature");
}

TEST(VerifySigV4Test, MissingRequiredPartsAreNamed) {
  SigV4Request req = BotocoreQueryRequest();
  HeaderRef(req, "Authorization") = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261126/us-east-1/a/aws4_request";
  Result<VerifiedCaller> result = Verify(req);
  ExpectError(result, 400, "IncompleteSignature");
  EXPECT_EQ(result.status().message(),
            "Authorization header requires 'Signature' parameter. "
            "Authorization header requires 'SignedHeaders' parameter.");
}

TEST(VerifySigV4Test, MissingAmzDateIsIncompleteSignature) {
  SigV4Request req = BotocoreQueryRequest();
  std::erase_if(req.headers, [](const auto& h) { return h.first == "X-Amz-Date"; });
  ExpectError(Verify(req), 400, "IncompleteSignature");
}

TEST(VerifySigV4Test, UnparseableAmzDateIsIncompleteSignature) {
  SigV4Request req = BotocoreQueryRequest();
  HeaderRef(req, "X-Amz-Date") = "2026-11-26T09:39:07Z";
  ExpectError(Verify(req), 400, "IncompleteSignature");
}

TEST(VerifySigV4Test, HostMustBeSigned) {
  SigV4Request req = UnsignedRequest();
  std::erase_if(req.headers, [](const auto& h) { return h.first == "Host"; });
  SignSigV4(req, kAkid, kSecret, "us-east-1", "autoscaling", kNow);
  req.headers.emplace_back("Host", "127.0.0.1:18557");
  ExpectError(Verify(req), 400, "IncompleteSignature");
}

TEST(VerifySigV4Test, UnknownKeyIsInvalidClientTokenId) {
  SigV4Request req = UnsignedRequest();
  SignSigV4(req, "AKIDUNKNOWN", kSecret, "us-east-1", "autoscaling", kNow);
  Result<VerifiedCaller> result = Verify(req);
  ExpectError(result, 403, "InvalidClientTokenId");
  EXPECT_EQ(result.status().message(), "The security token included in the request is invalid.");
}

TEST(VerifySigV4Test, NullLookupTreatsEveryKeyAsUnknown) {
  ExpectError(VerifySigV4(BotocoreQueryRequest(), SecretLookup(), "us-east-1", kNow), 403, "InvalidClientTokenId");
}

TEST(VerifySigV4Test, ScopeDateMustMatchAmzDate) {
  SigV4Request req = UnsignedRequest();
  SignSigV4(req, kAkid, kSecret, "us-east-1", "autoscaling", kNow);
  HeaderRef(req, "X-Amz-Date") = "20261125T233907Z";
  ExpectError(Verify(req, kNow - 10 * 3600), 403, "SignatureDoesNotMatch");
}

TEST(VerifySigV4Test, WrongRegion) {
  SigV4Request req = UnsignedRequest();
  SignSigV4(req, kAkid, kSecret, "eu-west-1", "autoscaling", kNow);
  Result<VerifiedCaller> result = Verify(req);
  ExpectError(result, 403, "SignatureDoesNotMatch");
  EXPECT_EQ(result.status().message(), "Credential should be scoped to a valid region. ");
}

TEST(VerifySigV4Test, WrongTerminator) {
  SigV4Request req = BotocoreQueryRequest();
  std::string& auth = HeaderRef(req, "Authorization");
  auth.replace(auth.find("aws4_request"), 12, "aws5_request");
  ExpectError(Verify(req), 403, "SignatureDoesNotMatch");
}

TEST(VerifySigV4Test, SkewBoundaryPast) {
  SigV4Request req = BotocoreQueryRequest();
  EXPECT_TRUE(Verify(req, kNow + 15 * 60).ok());
  Result<VerifiedCaller> result = Verify(req, kNow + 15 * 60 + 1);
  ExpectError(result, 403, "SignatureDoesNotMatch");
  EXPECT_EQ(result.status().message(),
            "Signature expired: 20261126T093907Z is now earlier than 20261126T093908Z "
            "(20261126T095408Z - 15 min.)");
}

TEST(VerifySigV4Test, SkewMessageMatchesAws) {
  Result<VerifiedCaller> result = Verify(BotocoreQueryRequest(), kNow + 35 * 60);
  ExpectError(result, 403, "SignatureDoesNotMatch");
  EXPECT_EQ(result.status().message(),
            "Signature expired: 20261126T093907Z is now earlier than 20261126T095907Z (20261126T101407Z - 15 min.)");
}

TEST(VerifySigV4Test, SkewBoundaryFuture) {
  SigV4Request req = BotocoreQueryRequest();
  EXPECT_TRUE(Verify(req, kNow - 15 * 60).ok());
  Result<VerifiedCaller> result = Verify(req, kNow - 15 * 60 - 1);
  ExpectError(result, 403, "SignatureDoesNotMatch");
  EXPECT_EQ(result.status().message(),
            "Signature not yet current: 20261126T093907Z is still later than 20261126T093906Z "
            "(20261126T092406Z + 15 min.)");
}

TEST(VerifySigV4Test, TamperedBodyIsMismatchWithoutLeakingSecrets) {
  SigV4Request req = BotocoreQueryRequest();
  req.body += "&MaxRecords=1";
  Result<VerifiedCaller> result = Verify(req);
  ExpectError(result, 403, "SignatureDoesNotMatch");
  EXPECT_EQ(result.status().message(), kMismatchMessage);

  SigV4Request resigned = req;
  SignSigV4(resigned, kAkid, kSecret, "us-east-1", "autoscaling", kNow);
  std::string expected_signature = HeaderRef(resigned, "Authorization");
  expected_signature = expected_signature.substr(expected_signature.size() - 64);
  EXPECT_EQ(result.status().message().find(expected_signature), std::string::npos);
  EXPECT_EQ(result.status().message().find(kSecret), std::string::npos);
}

TEST(VerifySigV4Test, TamperedSignedHeaderIsMismatch) {
  SigV4Request req = BotocoreQueryRequest();
  HeaderRef(req, "Content-Type") = "application/json";
  ExpectError(Verify(req), 403, "SignatureDoesNotMatch");
}

TEST(VerifySigV4Test, ExtraSignedHeaderRepeatIsMismatch) {
  SigV4Request req = BotocoreQueryRequest();
  req.headers.emplace_back("Host", "evil.example");
  ExpectError(Verify(req), 403, "SignatureDoesNotMatch");
}

TEST(VerifySigV4Test, UnsignedHeaderMayChange) {
  SigV4Request req = BotocoreQueryRequest();
  HeaderRef(req, "User-Agent") = "something-else";
  req.headers.emplace_back("X-Forwarded-For", "10.0.0.1");
  EXPECT_TRUE(Verify(req).ok());
}

TEST(VerifySigV4Test, TamperedSignatureOrMethodOrTargetIsMismatch) {
  SigV4Request req = BotocoreQueryRequest();
  std::string& auth = HeaderRef(req, "Authorization");
  auth.back() = auth.back() == '0' ? '1' : '0';
  ExpectError(Verify(req), 403, "SignatureDoesNotMatch");

  req = BotocoreQueryRequest();
  req.method = "PUT";
  ExpectError(Verify(req), 403, "SignatureDoesNotMatch");

  req = BotocoreQueryRequest();
  req.target = "/?Action=DeleteAutoScalingGroup";
  ExpectError(Verify(req), 403, "SignatureDoesNotMatch");
}

TEST(VerifySigV4Test, WrongSecretIsMismatch) {
  SigV4Request req = UnsignedRequest();
  SignSigV4(req, kAkid, "not-the-secret", "us-east-1", "autoscaling", kNow);
  ExpectError(Verify(req), 403, "SignatureDoesNotMatch");
}

TEST(VerifySigV4Test, HeaderNameCaseAndValueWhitespaceDoNotMatter) {
  SigV4Request req = BotocoreQueryRequest();
  for (auto& [name, value] : req.headers) {
    if (name == "Content-Type") {
      name = "CONTENT-type";
      value = "   application/x-www-form-urlencoded;     charset=utf-8  ";
    }
    if (name == "Host") name = "host";
    if (name == "X-Amz-Date") name = "x-amz-date";
    if (name == "Authorization") name = "AUTHORIZATION";
  }
  Result<VerifiedCaller> caller = Verify(req);
  EXPECT_TRUE(caller.ok()) << caller.status().ToString();
}

TEST(VerifySigV4Test, RepeatedHeaderOrderMatters) {
  SigV4Request req = BotocoreGetRequest();
  for (auto& header : req.headers) {
    if (header.first == "X-Rep") header.second = header.second == "b  c" ? " a" : "b  c";
  }
  ExpectError(Verify(req), 403, "SignatureDoesNotMatch");
}

TEST(SignSigV4Test, RoundTripsForEveryService) {
  for (const char* service : {"autoscaling", "elasticloadbalancing", "elasticache", "rds", "monitoring", "sns"}) {
    SigV4Request req = UnsignedRequest();
    req.target = "/path with space/?Version=1&Action=X&list.member.1=a%20b";
    req.headers.emplace_back("X-Amz-Target", "Svc.Op");
    req.headers.emplace_back("User-Agent", "test");
    SignSigV4(req, kAkid, kSecret, "ap-south-1", service, kNow);
    Result<VerifiedCaller> caller = Verify(req, kNow, "ap-south-1");
    ASSERT_TRUE(caller.ok()) << service << ": " << caller.status().ToString();
    EXPECT_EQ(caller->service, service);
    EXPECT_EQ(caller->region, "ap-south-1");
    EXPECT_EQ(caller->access_key_id, kAkid);
  }
}

TEST(SignSigV4Test, ResigningReplacesOldAuthorization) {
  SigV4Request req = UnsignedRequest();
  SignSigV4(req, kAkid, kSecret, "us-east-1", "autoscaling", kNow - 3600);
  SignSigV4(req, kAkid, kSecret, "us-east-1", "autoscaling", kNow);
  int auth_headers = 0, date_headers = 0;
  for (const auto& [name, value] : req.headers) {
    auth_headers += name == "Authorization";
    date_headers += name == "X-Amz-Date";
  }
  EXPECT_EQ(auth_headers, 1);
  EXPECT_EQ(date_headers, 1);
  EXPECT_TRUE(Verify(req).ok());
}

TEST(SignSigV4Test, DoesNotSignUserAgent) {
  SigV4Request req = UnsignedRequest();
  req.headers.emplace_back("User-Agent", "ua");
  SignSigV4(req, kAkid, kSecret, "us-east-1", "autoscaling", kNow);
  EXPECT_EQ(HeaderRef(req, "Authorization").find("user-agent"), std::string::npos);
}

SigV4Request PresignedRequest() {
  SigV4Request req;
  req.method = "GET";
  req.target = kBotocorePresignedTarget;
  req.headers = {{"Host", "127.0.0.1:18557"}};
  return req;
}

std::string ReplaceParam(std::string target, const std::string& from, const std::string& to) {
  size_t pos = target.find(from);
  EXPECT_NE(pos, std::string::npos) << from;
  if (pos != std::string::npos) target.replace(pos, from.size(), to);
  return target;
}

TEST(PresignedTest, ValidUntilExpiry) {
  EXPECT_TRUE(Verify(PresignedRequest(), kNow + 300).ok());
  Result<VerifiedCaller> result = Verify(PresignedRequest(), kNow + 301);
  ExpectError(result, 400, "RequestExpired");
}

TEST(PresignedTest, NotYetCurrent) {
  ExpectError(Verify(PresignedRequest(), kNow - 15 * 60 - 1), 403, "SignatureDoesNotMatch");
}

TEST(PresignedTest, TamperedParameterIsMismatch) {
  SigV4Request req = PresignedRequest();
  req.target = ReplaceParam(req.target, "ListTopics", "ListQueues");
  ExpectError(Verify(req), 403, "SignatureDoesNotMatch");
  req = PresignedRequest();
  req.target = ReplaceParam(req.target, "X-Amz-Expires=300", "X-Amz-Expires=3000");
  ExpectError(Verify(req), 403, "SignatureDoesNotMatch");
}

TEST(PresignedTest, MissingOrBadParametersAreIncomplete) {
  const std::pair<std::string, std::string> edits[] = {
      {"&X-Amz-Credential=AKIDEXAMPLE%2F20261126%2Fus-east-1%2Fsns%2Faws4_request", ""},
      {"&X-Amz-SignedHeaders=host", ""},
      {"&X-Amz-Date=20261126T093907Z", ""},
      {"X-Amz-Algorithm=AWS4-HMAC-SHA256", "X-Amz-Algorithm=AWS4-HMAC-SHA1"},
      {"X-Amz-Expires=300", "X-Amz-Expires=604801"},
      {"X-Amz-Expires=300", "X-Amz-Expires=-1"},
      {"X-Amz-SignedHeaders=host", "X-Amz-SignedHeaders=x-amz-date"},
      {"X-Amz-Signature=4eeb", "X-Amz-Signature=%G4eeb"},
  };
  for (const auto& [from, to] : edits) {
    SigV4Request req = PresignedRequest();
    req.target = ReplaceParam(req.target, from, to);
    ExpectError(Verify(req), 400, "IncompleteSignature");
  }
  SigV4Request req = PresignedRequest();
  req.target = req.target.substr(0, req.target.find("&X-Amz-Signature="));
  ExpectError(Verify(req), 400, "IncompleteSignature");
}

TEST(PresignedTest, UnknownKeyAndWrongRegion) {
  SigV4Request req = PresignedRequest();
  req.target = ReplaceParam(req.target, "AKIDEXAMPLE%2F", "AKIDOTHER%2F");
  ExpectError(Verify(req), 403, "InvalidClientTokenId");
  ExpectError(Verify(PresignedRequest(), kNow, "us-west-2"), 403, "SignatureDoesNotMatch");
}

TEST(PresignedTest, AuthorizationHeaderTakesPrecedence) {
  SigV4Request req = PresignedRequest();
  req.headers.emplace_back("Authorization", "garbage");
  ExpectError(Verify(req), 400, "IncompleteSignature");
}

}  // namespace
}  // namespace autopipe

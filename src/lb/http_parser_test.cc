#include "lb/http_parser.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace autopipe::lb {
namespace {

// A parsed request that owns its bytes, so the head's views stay valid for the test. The head structs hold
// 100 header slots; they live on the heap.
struct Request {
  std::string text;
  std::unique_ptr<RequestHead> head = std::make_unique<RequestHead>();
  ParseStatus status;
  explicit Request(std::string_view bytes)
      : text(bytes), status(ParseRequest(text.data(), text.size(), head.get())) {}
  RequestHead* operator->() const { return head.get(); }
};

struct Response {
  std::string text;
  std::unique_ptr<ResponseHead> head = std::make_unique<ResponseHead>();
  ParseStatus status;
  explicit Response(std::string_view bytes, std::string_view method = "GET")
      : text(bytes), status(ParseResponse(text.data(), text.size(), method, head.get())) {}
  ResponseHead* operator->() const { return head.get(); }
};

// A minimal valid HTTP/1.1 request with the given extra header lines (each ending in CRLF).
std::string RequestWith(std::string_view headers) {
  return "POST /p HTTP/1.1\r\nHost: h\r\n" + std::string(headers) + "\r\n";
}

std::string ResponseWith(std::string_view headers) { return "HTTP/1.1 200 OK\r\n" + std::string(headers) + "\r\n"; }

// Expects `text` to be refused with `status` (400 unless given). A valid twin in each test shows that the
// refusal is caused by the rule under test and not by something else in the message.
void ExpectRefused(std::string_view text, int status = 400) {
  Request r(text);
  EXPECT_EQ(r.status, ParseStatus::kError) << "accepted: " << testing::PrintToString(std::string(text));
  EXPECT_EQ(r->error_status, status) << testing::PrintToString(std::string(text));
}

void ExpectAccepted(std::string_view text) {
  Request r(text);
  EXPECT_EQ(r.status, ParseStatus::kDone) << "refused: " << testing::PrintToString(std::string(text));
  EXPECT_EQ(r->head_length, text.size());
}

void ExpectResponseRefused(std::string_view text, std::string_view method = "GET") {
  EXPECT_EQ(Response(text, method).status, ParseStatus::kError) << testing::PrintToString(std::string(text));
}

void ExpectResponseAccepted(std::string_view text, std::string_view method = "GET") {
  EXPECT_EQ(Response(text, method).status, ParseStatus::kDone) << testing::PrintToString(std::string(text));
}

// ---- Requests: valid ----------------------------------------------------------------------------------------

TEST(HttpParserRequestTest, ParsesSimpleGet) {
  std::string text = "GET /index.html?a=b HTTP/1.1\r\nHost: example.com\r\nUser-Agent: curl/8.0\r\n\r\n";
  Request r(text);
  ASSERT_EQ(r.status, ParseStatus::kDone);
  EXPECT_EQ(r->method, "GET");
  EXPECT_EQ(r->target, "/index.html?a=b");
  EXPECT_EQ(r->version_minor, 1);
  ASSERT_EQ(r->header_count, 2u);
  EXPECT_EQ(r->headers[0].name, "Host");
  EXPECT_EQ(r->headers[0].value, "example.com");
  EXPECT_EQ(r->headers[0].id, HeaderId::kHost);
  EXPECT_EQ(r->headers[1].name, "User-Agent");
  EXPECT_EQ(r->headers[1].value, "curl/8.0");
  EXPECT_EQ(r->headers[1].id, HeaderId::kOther);
  EXPECT_EQ(r->head_length, text.size());
  EXPECT_EQ(r->body, BodyKind::kNone);
  EXPECT_EQ(r->content_length, 0u);
  EXPECT_TRUE(r->keep_alive);
  EXPECT_TRUE(r->has_host);
  EXPECT_FALSE(r->expect_continue);
  EXPECT_EQ(r->error_status, 0);
}

TEST(HttpParserRequestTest, ViewsPointIntoTheBuffer) {
  std::string text = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";
  RequestHead head;
  ASSERT_EQ(ParseRequest(text.data(), text.size(), &head), ParseStatus::kDone);
  EXPECT_EQ(head.method.data(), text.data());
  EXPECT_EQ(head.target.data(), text.data() + 4);
  EXPECT_EQ(head.headers[0].name.data(), text.data() + 16);
  EXPECT_EQ(head.headers[0].value.data(), text.data() + 22);
}

TEST(HttpParserRequestTest, ParsesPostWithContentLength) {
  Request r("POST /upload HTTP/1.1\r\nHost: h\r\nContent-Length: 12345\r\n\r\nbody...");
  ASSERT_EQ(r.status, ParseStatus::kDone);
  EXPECT_EQ(r->method, "POST");
  EXPECT_EQ(r->body, BodyKind::kContentLength);
  EXPECT_EQ(r->content_length, 12345u);
  EXPECT_EQ(r->headers[1].id, HeaderId::kContentLength);
  EXPECT_EQ(r->head_length, std::string_view("POST /upload HTTP/1.1\r\nHost: h\r\nContent-Length: 12345\r\n\r\n").size());
}

TEST(HttpParserRequestTest, ContentLengthZeroMeansNoBody) {
  Request r(RequestWith("Content-Length: 0\r\n"));
  ASSERT_EQ(r.status, ParseStatus::kDone);
  EXPECT_EQ(r->body, BodyKind::kNone);
  EXPECT_EQ(r->content_length, 0u);
}

TEST(HttpParserRequestTest, ContentLengthAllowsLeadingZerosAndSurroundingSpace) {
  Request r(RequestWith("Content-Length: \t 007 \t\r\n"));
  ASSERT_EQ(r.status, ParseStatus::kDone);
  EXPECT_EQ(r->content_length, 7u);
}

TEST(HttpParserRequestTest, ContentLengthUpToTwoToThe53) {
  Request r(RequestWith("Content-Length: 9007199254740992\r\n"));
  ASSERT_EQ(r.status, ParseStatus::kDone);
  EXPECT_EQ(r->content_length, uint64_t{1} << 53);
  ExpectRefused(RequestWith("Content-Length: 9007199254740993\r\n"));
  ExpectRefused(RequestWith("Content-Length: 99999999999999999999999999\r\n"));
}

TEST(HttpParserRequestTest, ParsesChunkedPost) {
  Request r(RequestWith("Transfer-Encoding: chunked\r\n"));
  ASSERT_EQ(r.status, ParseStatus::kDone);
  EXPECT_EQ(r->body, BodyKind::kChunked);
  EXPECT_EQ(r->content_length, 0u);
}

TEST(HttpParserRequestTest, ChunkedIsCaseInsensitiveAndTrimmed) {
  ExpectAccepted(RequestWith("Transfer-Encoding: CHUNKED\r\n"));
  ExpectAccepted(RequestWith("transfer-encoding:\t Chunked \t\r\n"));
}

TEST(HttpParserRequestTest, Http10Defaults) {
  Request r("GET / HTTP/1.0\r\n\r\n");
  ASSERT_EQ(r.status, ParseStatus::kDone);
  EXPECT_EQ(r->version_minor, 0);
  EXPECT_FALSE(r->keep_alive);
  EXPECT_FALSE(r->has_host);
  EXPECT_EQ(r->header_count, 0u);
}

TEST(HttpParserRequestTest, Http10KeepAlive) {
  Request r("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\nHost: h\r\n\r\n");
  ASSERT_EQ(r.status, ParseStatus::kDone);
  EXPECT_TRUE(r->keep_alive);
  EXPECT_TRUE(r->has_host);
  EXPECT_FALSE(Request("GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n")->keep_alive);
}

TEST(HttpParserRequestTest, ConnectionCloseIsAnyTokenOfTheList) {
  EXPECT_FALSE(Request(RequestWith("Connection: close\r\n"))->keep_alive);
  EXPECT_FALSE(Request(RequestWith("Connection: Upgrade ,CLOSE\r\n"))->keep_alive);
  EXPECT_FALSE(Request(RequestWith("Connection: a\r\nConnection: close\r\n"))->keep_alive);
  EXPECT_TRUE(Request(RequestWith("Connection: closed, enclose\r\n"))->keep_alive);
  EXPECT_TRUE(Request(RequestWith("Connection: keep-alive, Upgrade\r\n"))->keep_alive);
  EXPECT_TRUE(Request(RequestWith("Connection:\r\n"))->keep_alive);
}

TEST(HttpParserRequestTest, ExpectContinue) {
  EXPECT_TRUE(Request(RequestWith("Content-Length: 5\r\nExpect: 100-Continue\r\n"))->expect_continue);
  EXPECT_FALSE(Request(RequestWith("Expect: 200-ok\r\n"))->expect_continue);
}

TEST(HttpParserRequestTest, PipelinedRequestsHaveSeparateHeads) {
  std::string first = "GET /a HTTP/1.1\r\nHost: h\r\n\r\n";
  std::string second = "POST /b HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc";
  std::string both = first + second;
  Request r(both);
  ASSERT_EQ(r.status, ParseStatus::kDone);
  EXPECT_EQ(r->head_length, first.size());
  EXPECT_EQ(r->target, "/a");
  Request next(std::string_view(both).substr(r->head_length));
  ASSERT_EQ(next.status, ParseStatus::kDone);
  EXPECT_EQ(next->target, "/b");
  EXPECT_EQ(next->content_length, 3u);
}

TEST(HttpParserRequestTest, SkipsAFewLeadingEmptyLines) {
  std::string text = "\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n";
  Request r(text);
  ASSERT_EQ(r.status, ParseStatus::kDone);
  EXPECT_EQ(r->method, "GET");
  EXPECT_EQ(r->head_length, text.size());
  ExpectAccepted("\r\n\r\n\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n");
  ExpectRefused("\r\n\r\n\r\n\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n");
  ExpectRefused("\nGET / HTTP/1.1\r\nHost: h\r\n\r\n");
  EXPECT_EQ(Request("\r\n").status, ParseStatus::kIncomplete);
}

TEST(HttpParserRequestTest, TrimsValuesAndAllowsEmptyOnes) {
  Request r(RequestWith("X-A: \t a \t b \t\r\nX-B:\r\nX-C:   \r\nX-D:v\r\n"));
  ASSERT_EQ(r.status, ParseStatus::kDone);
  EXPECT_EQ(r->headers[1].value, "a \t b");
  EXPECT_EQ(r->headers[2].value, "");
  EXPECT_EQ(r->headers[3].value, "");
  EXPECT_EQ(r->headers[4].value, "v");
}

TEST(HttpParserRequestTest, AcceptsObsTextAndPunctuation) {
  Request r(RequestWith("Cookie: a=\xC3\xA9\xFF; b=\"q:/,\"\r\n"));
  ASSERT_EQ(r.status, ParseStatus::kDone);
  EXPECT_EQ(r->headers[1].value, "a=\xC3\xA9\xFF; b=\"q:/,\"");
}

TEST(HttpParserRequestTest, AcceptsEveryTokenCharInMethodAndName) {
  std::string tchars = "!#$%&'*+-.^_`|~09azAZ";
  Request r(tchars + " * HTTP/1.1\r\nHost: h\r\n" + tchars + ": v\r\n\r\n");
  ASSERT_EQ(r.status, ParseStatus::kDone);
  EXPECT_EQ(r->method, tchars);
  EXPECT_EQ(r->target, "*");
  EXPECT_EQ(r->headers[1].name, tchars);
}

TEST(HttpParserRequestTest, LongValuesUseTheWordPathCorrectly) {
  // Long runs exercise the eight-bytes-at-a-time scan; a bad byte at every offset must still be found.
  std::string value(64, 'v');
  ExpectAccepted(RequestWith("X-Long: " + value + "\r\n"));
  for (size_t i = 0; i < value.size(); ++i) {
    for (char bad : {'\0', '\x01', '\x7F', '\n'}) {
      std::string v = value;
      v[i] = bad;
      ExpectRefused(RequestWith("X-Long: " + v + "\r\n"));
    }
    std::string tabbed = value;
    tabbed[i] = '\t';
    ExpectAccepted(RequestWith("X-Long: " + tabbed + "\r\n"));
    std::string target(64, 'a');
    target[i] = '\x80';
    ExpectRefused("GET /" + target + " HTTP/1.1\r\nHost: h\r\n\r\n");
    target[i] = '\x7F';
    ExpectRefused("GET /" + target + " HTTP/1.1\r\nHost: h\r\n\r\n");
  }
}

TEST(HttpParserRequestTest, RecognisesKnownHeadersCaseInsensitively) {
  struct Known {
    const char* name;
    HeaderId id;
  };
  const Known known[] = {
      {"hOST", HeaderId::kHost},
      {"CONTENT-length", HeaderId::kContentLength},
      {"Transfer-encoding", HeaderId::kTransferEncoding},
      {"connection", HeaderId::kConnection},
      {"Keep-Alive", HeaderId::kKeepAlive},
      {"proxy-Connection", HeaderId::kProxyConnection},
      {"UPGRADE", HeaderId::kUpgrade},
      {"te", HeaderId::kTe},
      {"Trailer", HeaderId::kTrailer},
      {"expect", HeaderId::kExpect},
      {"x-forwarded-for", HeaderId::kXForwardedFor},
      {"X-Forwarded-PROTO", HeaderId::kXForwardedProto},
      {"X-FORWARDED-port", HeaderId::kXForwardedPort},
      {"Hosts", HeaderId::kOther},
      {"Content-Lengths", HeaderId::kOther},
      {"T", HeaderId::kOther},
      {"X-Forwarded-Fox", HeaderId::kOther},
      {"Trailers", HeaderId::kOther},
  };
  for (const Known& k : known) {
    std::string name = k.name;
    std::string value = k.id == HeaderId::kContentLength       ? "1"
                        : k.id == HeaderId::kTransferEncoding ? "chunked"
                                                              : "x";
    std::string text = "GET / HTTP/1.1\r\n" + name + ": " + value + "\r\n" +
                       (k.id == HeaderId::kHost ? "" : "Host: h\r\n") + "\r\n";
    Request r(text);
    ASSERT_EQ(r.status, ParseStatus::kDone) << name;
    EXPECT_EQ(r->headers[0].id, k.id) << name;
  }
}

TEST(HttpParserRequestTest, EmptyHostCountsAsPresent) {
  Request r("GET / HTTP/1.1\r\nHost:\r\n\r\n");
  ASSERT_EQ(r.status, ParseStatus::kDone);
  EXPECT_TRUE(r->has_host);
}

TEST(HttpParserRequestTest, AcceptsExactlyMaxHeaders) {
  std::string headers;
  for (size_t i = 1; i < kMaxHeaders; ++i) headers += "X-" + std::to_string(i) + ": v\r\n";
  Request r(RequestWith(headers));
  ASSERT_EQ(r.status, ParseStatus::kDone);
  EXPECT_EQ(r->header_count, kMaxHeaders);
  EXPECT_EQ(r->headers[kMaxHeaders - 1].name, "X-99");
  ExpectRefused(RequestWith(headers + "X-100: v\r\n"));
}

TEST(HttpParserRequestTest, EveryPrefixIsIncomplete) {
  const std::string requests[] = {
      "GET / HTTP/1.1\r\nHost: h\r\n\r\n",
      "\r\nPOST /upload?x=1 HTTP/1.1\r\nHost: example.com\r\nContent-Length: 10\r\nX-Empty:\r\n\r\n",
      "PUT /x HTTP/1.1\r\nhost: h\r\nTransfer-Encoding: chunked\r\nConnection: close\r\nX-Long: "
      "0123456789abcdefghijklmnopqrstuvwxyz \t\r\n\r\n",
      "GET / HTTP/1.0\r\n\r\n",
  };
  for (const std::string& text : requests) {
    for (size_t n = 0; n < text.size(); ++n) {
      Request r(std::string_view(text).substr(0, n));
      EXPECT_EQ(r.status, ParseStatus::kIncomplete) << n << " bytes of " << testing::PrintToString(text);
    }
    ExpectAccepted(text);
  }
}

TEST(HttpParserRequestTest, ReportsErrorsBeforeTheHeadEnds) {
  EXPECT_EQ(Request("G\x01").status, ParseStatus::kError);
  EXPECT_EQ(Request("GET /\x01").status, ParseStatus::kError);
  EXPECT_EQ(Request("GET / HTTP/2").status, ParseStatus::kError);
  EXPECT_EQ(Request("GET / HTTP/1.1\n").status, ParseStatus::kError);
  EXPECT_EQ(Request("GET / HTTP/1.1\r\nHost: a\rb").status, ParseStatus::kError);
  EXPECT_EQ(Request("GET / HTTP/1.1\r\nX Y").status, ParseStatus::kError);
  EXPECT_EQ(Request("GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 1\r\n").status, ParseStatus::kError);
  EXPECT_EQ(Request("GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\n ").status, ParseStatus::kError);
}

TEST(HttpParserRequestTest, ReparsingReusesTheStruct) {
  RequestHead head;
  std::string bad = "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n";
  ASSERT_EQ(ParseRequest(bad.data(), bad.size(), &head), ParseStatus::kError);
  std::string good = "GET / HTTP/1.0\r\n\r\n";
  ASSERT_EQ(ParseRequest(good.data(), good.size(), &head), ParseStatus::kDone);
  EXPECT_EQ(head.error_status, 0);
  EXPECT_EQ(head.header_count, 0u);
  EXPECT_FALSE(head.has_host);
}

// ---- Requests: refusals -------------------------------------------------------------------------------------

TEST(HttpParserRefusalTest, MethodLongerThan127IsA405) {
  std::string ok(kMaxMethodLength, 'M');
  std::string too_long(kMaxMethodLength + 1, 'M');
  ExpectAccepted(ok + " / HTTP/1.1\r\nHost: h\r\n\r\n");
  ExpectRefused(too_long + " / HTTP/1.1\r\nHost: h\r\n\r\n", 405);
  // Reported as soon as the 128th method char arrives, before the space.
  EXPECT_EQ(Request(ok).status, ParseStatus::kIncomplete);
  ExpectRefused(too_long, 405);
  ExpectRefused(std::string(1000, 'M'), 405);
  ExpectRefused("\r\n" + too_long, 405);
}

TEST(HttpParserRefusalTest, MethodMustBeAToken) {
  ExpectRefused("G@T / HTTP/1.1\r\nHost: h\r\n\r\n");
  ExpectRefused("GE\x80T / HTTP/1.1\r\nHost: h\r\n\r\n");
  ExpectRefused(" / HTTP/1.1\r\nHost: h\r\n\r\n");
  ExpectRefused(" GET / HTTP/1.1\r\nHost: h\r\n\r\n");
  ExpectRefused("GET\t/ HTTP/1.1\r\nHost: h\r\n\r\n");
}

TEST(HttpParserRefusalTest, TargetMustBeNonEmptyVisibleAscii) {
  ExpectAccepted("GET /~!$&'()*+,;=:@%20?/ HTTP/1.1\r\nHost: h\r\n\r\n");
  ExpectRefused("GET  / HTTP/1.1\r\nHost: h\r\n\r\n");
  ExpectRefused("GET  HTTP/1.1\r\nHost: h\r\n\r\n");  // empty target, version right after
  ExpectRefused("GET /a b HTTP/1.1\r\nHost: h\r\n\r\n");
  ExpectRefused("GET /a\tb HTTP/1.1\r\nHost: h\r\n\r\n");
  ExpectRefused("GET /a\x7F HTTP/1.1\r\nHost: h\r\n\r\n");
  ExpectRefused("GET /a\x80 HTTP/1.1\r\nHost: h\r\n\r\n");
  ExpectRefused("GET /\xC3\xA9 HTTP/1.1\r\nHost: h\r\n\r\n");
  ExpectRefused(std::string("GET /a\0b HTTP/1.1\r\nHost: h\r\n\r\n", 31));
  ExpectRefused("GET /a\x1F HTTP/1.1\r\nHost: h\r\n\r\n");
}

TEST(HttpParserRefusalTest, VersionMustBeHttp10Or11) {
  for (const char* version : {"HTTP/1.2", "HTTP/2.0", "HTTP/0.9", "http/1.1", "HTTP/1.", "HTTP/11", "HTTP/1.1 ",
                              "HTTP/1.10", " HTTP/1.1", "HTTPS/1.1", ""}) {
    ExpectRefused("GET / " + std::string(version) + "\r\nHost: h\r\n\r\n");
  }
  ExpectRefused("GET /\r\nHost: h\r\n\r\n");
  ExpectRefused("GET\r\n\r\n");
}

TEST(HttpParserRefusalTest, LinesMustEndInCrlf) {
  ExpectRefused("GET / HTTP/1.1\nHost: h\r\n\r\n");
  ExpectRefused("GET / HTTP/1.1\r\nHost: h\n\r\n");
  ExpectRefused("GET / HTTP/1.1\r\nHost: h\r\n\n");
  ExpectRefused("GET / HTTP/1.1\rHost: h\r\n\r\n");
  ExpectRefused("GET / HTTP/1.1\r\nHost: h\r\r\n\r\n");
  ExpectRefused("GET / HTTP/1.1\r\nHost: h\r\n\r\r\n");
  ExpectRefused("GET / HTTP/1.1\r\nHost: a\rb\r\n\r\n");
  ExpectRefused("GET / HTTP/1.1\r\nHost: a\nb\r\n\r\n");
  ExpectRefused("GET / HTTP/1.1\r\nHost: h\r\nX: 1\nContent-Length: 5\r\n\r\n");
}

TEST(HttpParserRefusalTest, ObsFoldAndLeadingWhitespace) {
  ExpectRefused("GET / HTTP/1.1\r\nHost: h\r\nX-A: 1\r\n 2\r\n\r\n");
  ExpectRefused("GET / HTTP/1.1\r\nHost: h\r\nX-A: 1\r\n\t2\r\n\r\n");
  ExpectRefused("GET / HTTP/1.1\r\n Host: h\r\n\r\n");
  ExpectRefused("GET / HTTP/1.1\r\nHost: h\r\n Transfer-Encoding: chunked\r\n\r\n");
}

TEST(HttpParserRefusalTest, HeaderNameMustBeATokenRightBeforeTheColon) {
  ExpectAccepted(RequestWith("X-A: 1\r\n"));
  ExpectRefused(RequestWith("X-A : 1\r\n"));
  ExpectRefused(RequestWith("X-A\t: 1\r\n"));
  ExpectRefused(RequestWith("Content-Length : 5\r\n"));
  ExpectRefused(RequestWith(": 1\r\n"));
  ExpectRefused(RequestWith("X-A\r\n"));
  ExpectRefused(RequestWith("X-A 1\r\n"));
  ExpectRefused(RequestWith("X(A): 1\r\n"));
  ExpectRefused(RequestWith("X\x80: 1\r\n"));
  ExpectRefused(RequestWith(std::string("X\0A: 1\r\n", 8)));
}

TEST(HttpParserRefusalTest, ValueControlCharacters) {
  ExpectAccepted(RequestWith("X-A: a\tb\r\n"));
  for (int c = 0; c < 0x20; ++c) {
    if (c == '\t') continue;
    std::string value = "a";
    value.push_back(static_cast<char>(c));
    value += "b";
    ExpectRefused(RequestWith("X-A: " + value + "\r\n"));
  }
  ExpectRefused(RequestWith("X-A: a\x7F\r\n"));
}

TEST(HttpParserRefusalTest, ContentLengthMustBeDigitsOnly) {
  ExpectAccepted(RequestWith("Content-Length: 5\r\n"));
  for (const char* value : {"+5", "-5", "5, 5", "5,5", "5 5", "", "0x5", "5a", "5.0", "\xB5", "1e3"}) {
    ExpectRefused(RequestWith("Content-Length: " + std::string(value) + "\r\n"));
  }
}

TEST(HttpParserRefusalTest, RepeatedContentLength) {
  ExpectRefused(RequestWith("Content-Length: 5\r\nContent-Length: 5\r\n"));
  ExpectRefused(RequestWith("Content-Length: 5\r\ncontent-length: 6\r\n"));
  ExpectRefused(RequestWith("Content-Length: 0\r\nContent-Length: 0\r\n"));
}

TEST(HttpParserRefusalTest, TransferEncodingMustBeExactlyChunked) {
  for (const char* value : {"gzip", "chunked, chunked", "gzip, chunked", "chunked, gzip", "", "chunkedx", "chunk",
                            "chunked;q=1", "\"chunked\"", "identity", ",chunked", "chunked,"}) {
    ExpectRefused(RequestWith("Transfer-Encoding: " + std::string(value) + "\r\n"));
  }
  ExpectRefused(RequestWith("Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n"));
  ExpectRefused(RequestWith("Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n"));
  ExpectRefused(RequestWith("Transfer-Encoding:\r\nTransfer-Encoding: chunked\r\n"));
}

TEST(HttpParserRefusalTest, TransferEncodingWithContentLength) {
  ExpectRefused(RequestWith("Transfer-Encoding: chunked\r\nContent-Length: 5\r\n"));
  ExpectRefused(RequestWith("Content-Length: 5\r\nTransfer-Encoding: chunked\r\n"));
  ExpectRefused(RequestWith("Content-Length: 0\r\nTransfer-Encoding: chunked\r\n"));
}

TEST(HttpParserRefusalTest, TransferEncodingInHttp10) {
  ExpectAccepted("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n");
  ExpectRefused("POST / HTTP/1.0\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n");
}

TEST(HttpParserRefusalTest, RepeatedHost) {
  ExpectRefused("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n");
  ExpectRefused("GET / HTTP/1.1\r\nHost: a\r\nhost: a\r\n\r\n");
  ExpectRefused("GET / HTTP/1.0\r\nHost: a\r\nHOST: a\r\n\r\n");
}

TEST(HttpParserRefusalTest, Http11NeedsHost) {
  ExpectAccepted("GET / HTTP/1.0\r\n\r\n");
  ExpectRefused("GET / HTTP/1.1\r\n\r\n");
  ExpectRefused("GET / HTTP/1.1\r\nX-Host: h\r\n\r\n");
}

// ---- Responses ----------------------------------------------------------------------------------------------

TEST(HttpParserResponseTest, ParsesStatusLineAndHeaders) {
  std::string text = "HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\nServer: x\r\n\r\nnot found";
  Response r(text);
  ASSERT_EQ(r.status, ParseStatus::kDone);
  EXPECT_EQ(r->status, 404);
  EXPECT_EQ(r->version_minor, 1);
  ASSERT_EQ(r->header_count, 2u);
  EXPECT_EQ(r->headers[0].id, HeaderId::kContentLength);
  EXPECT_EQ(r->headers[1].value, "x");
  EXPECT_EQ(r->head_length, text.size() - 9);
  EXPECT_EQ(r->body, BodyKind::kContentLength);
  EXPECT_EQ(r->content_length, 9u);
  EXPECT_TRUE(r->keep_alive);
}

TEST(HttpParserResponseTest, ReasonMayBeEmptyOrMissing) {
  EXPECT_EQ(Response("HTTP/1.1 200 \r\nContent-Length: 0\r\n\r\n")->status, 200);
  EXPECT_EQ(Response("HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n")->status, 200);
  EXPECT_EQ(Response("HTTP/1.0 503 Service \t Unavailable \xE2\x80\x94 \r\n\r\n")->status, 503);
}

TEST(HttpParserResponseTest, BodylessResponses) {
  for (const char* status : {"100", "101", "103", "199", "204", "304"}) {
    Response r("HTTP/1.1 " + std::string(status) + " X\r\nContent-Length: 10\r\n\r\n");
    ASSERT_EQ(r.status, ParseStatus::kDone) << status;
    EXPECT_EQ(r->body, BodyKind::kNone) << status;
    EXPECT_EQ(r->content_length, 0u);
    EXPECT_TRUE(r->keep_alive);
  }
  Response head("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n", "HEAD");
  EXPECT_EQ(head->body, BodyKind::kNone);
  EXPECT_EQ(Response("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", "HEAD")->body, BodyKind::kNone);
  EXPECT_EQ(Response("HTTP/1.1 200 OK\r\n\r\n", "HEAD")->body, BodyKind::kNone);
  EXPECT_TRUE(Response("HTTP/1.1 200 OK\r\n\r\n", "HEAD")->keep_alive);
  EXPECT_EQ(Response("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n", "head")->body, BodyKind::kContentLength);
}

TEST(HttpParserResponseTest, BodyKinds) {
  EXPECT_EQ(Response(ResponseWith("Transfer-Encoding: chunked\r\n"))->body, BodyKind::kChunked);
  EXPECT_EQ(Response(ResponseWith("Content-Length: 3\r\n"))->body, BodyKind::kContentLength);
  Response zero(ResponseWith("Content-Length: 0\r\n"));
  EXPECT_EQ(zero->body, BodyKind::kNone);
  EXPECT_EQ(zero->content_length, 0u);
  EXPECT_TRUE(zero->keep_alive);
  Response until_close(ResponseWith("Server: x\r\n"));
  EXPECT_EQ(until_close->body, BodyKind::kUntilClose);
  EXPECT_FALSE(until_close->keep_alive);
  EXPECT_EQ(Response("HTTP/1.1 201 Created\r\n\r\n", "POST")->body, BodyKind::kUntilClose);
}

TEST(HttpParserResponseTest, KeepAlive) {
  EXPECT_TRUE(Response(ResponseWith("Content-Length: 1\r\n"))->keep_alive);
  EXPECT_FALSE(Response(ResponseWith("Content-Length: 1\r\nConnection: Close\r\n"))->keep_alive);
  EXPECT_FALSE(Response("HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\n")->keep_alive);
  EXPECT_TRUE(Response("HTTP/1.0 200 OK\r\nContent-Length: 1\r\nConnection: keep-alive\r\n\r\n")->keep_alive);
  EXPECT_FALSE(Response("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n\r\n")->keep_alive);  // until close
}

TEST(HttpParserResponseTest, IdenticalRepeatedContentLengthIsTolerated) {
  Response r(ResponseWith("Content-Length: 5\r\nContent-Length: 5\r\n"));
  ASSERT_EQ(r.status, ParseStatus::kDone);
  EXPECT_EQ(r->content_length, 5u);
  ExpectResponseRefused(ResponseWith("Content-Length: 5\r\nContent-Length: 6\r\n"));
}

TEST(HttpParserResponseTest, RefusesAmbiguousFraming) {
  ExpectResponseAccepted(ResponseWith("Transfer-Encoding: chunked\r\n"));
  ExpectResponseRefused(ResponseWith("Transfer-Encoding: gzip\r\n"));
  ExpectResponseRefused(ResponseWith("Transfer-Encoding: gzip, chunked\r\n"));
  ExpectResponseRefused(ResponseWith("Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n"));
  ExpectResponseRefused(ResponseWith("Transfer-Encoding: chunked\r\nContent-Length: 5\r\n"));
  ExpectResponseRefused(ResponseWith("Content-Length: 5\r\nTransfer-Encoding: chunked\r\n"));
  ExpectResponseRefused(ResponseWith("Content-Length: -1\r\n"));
  ExpectResponseRefused(ResponseWith("Content-Length: 1,1\r\n"));
  ExpectResponseRefused("HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
}

TEST(HttpParserResponseTest, HostIsNotCheckedInResponses) {
  ExpectResponseAccepted(ResponseWith("Host: a\r\nHost: b\r\nContent-Length: 1\r\n"));
}

TEST(HttpParserResponseTest, RefusesMalformedStatusLines) {
  ExpectResponseAccepted("HTTP/1.1 999 X\r\n\r\n");
  for (const char* line : {"HTTP/1.1 20 OK", "HTTP/1.1 2000 OK", "HTTP/1.1 099 X", "HTTP/1.1 abc OK",
                           "HTTP/1.1  200 OK", "HTTP/1.2 200 OK", "HTTP/2 200 OK", "http/1.1 200 OK",
                           "HTTP/1.1\t200 OK", "HTTP/1.1 200\tOK", "HTTP/1.1 200 O\x01K", "HTTP/1.1 200 O\x7FK",
                           "HTTP/1.1 -20 OK", "HTTP/1.1", "ICY 200 OK", " HTTP/1.1 200 OK"}) {
    ExpectResponseRefused(std::string(line) + "\r\n\r\n");
  }
  ExpectResponseRefused("HTTP/1.1 200 OK\n\r\n");
  ExpectResponseRefused("HTTP/1.1 200 OK\r\nServer: x\n\r\n");
  ExpectResponseRefused("HTTP/1.1 200 OK\r\nServer: x\r\n y\r\n\r\n");
  ExpectResponseRefused("HTTP/1.1 200 OK\r\nServer : x\r\n\r\n");
  ExpectResponseRefused("\r\nHTTP/1.1 200 OK\r\n\r\n");
}

TEST(HttpParserResponseTest, RefusesTooManyHeaders) {
  std::string headers;
  for (size_t i = 0; i < kMaxHeaders; ++i) headers += "X-" + std::to_string(i) + ": v\r\n";
  ExpectResponseAccepted(ResponseWith(headers));
  ExpectResponseRefused(ResponseWith(headers + "X: v\r\n"));
}

TEST(HttpParserResponseTest, EveryPrefixIsIncomplete) {
  const std::string responses[] = {
      "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n",
      "HTTP/1.1 204\r\n\r\n",
      "HTTP/1.1 500 \r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n",
  };
  for (const std::string& text : responses) {
    for (size_t n = 0; n < text.size(); ++n) {
      EXPECT_EQ(Response(std::string_view(text).substr(0, n)).status, ParseStatus::kIncomplete) << n;
    }
    Response full(text);
    EXPECT_EQ(full.status, ParseStatus::kDone);
    EXPECT_EQ(full->head_length, text.size());
  }
}

// ---- EqualsIgnoreCase ---------------------------------------------------------------------------------------

TEST(HttpParserEqualsIgnoreCaseTest, ComparesAsciiLettersOnlyCaseInsensitively) {
  EXPECT_TRUE(EqualsIgnoreCase("Content-Length", "content-LENGTH"));
  EXPECT_TRUE(EqualsIgnoreCase("", ""));
  EXPECT_FALSE(EqualsIgnoreCase("abc", "abcd"));
  EXPECT_FALSE(EqualsIgnoreCase("@", "`"));  // differ only in bit 0x20 but are not letters
  EXPECT_FALSE(EqualsIgnoreCase("[", "{"));
  EXPECT_FALSE(EqualsIgnoreCase("\xC9", "\xE9"));
}

// ---- ChunkedScanner -----------------------------------------------------------------------------------------

struct ScanResult {
  ChunkedScanner::Result result;
  size_t consumed;  // total over all calls
};

ScanResult ScanAll(std::string_view body) {
  ChunkedScanner scanner;
  size_t consumed = 0;
  ChunkedScanner::Result result = scanner.Feed(body.data(), body.size(), &consumed);
  return {result, consumed};
}

// Feeds `body` in pieces starting at each of `cuts`, stopping at the first result other than kNeedMore.
ScanResult ScanPieces(std::string_view body, const std::vector<size_t>& cuts) {
  ChunkedScanner scanner;
  size_t total = 0;
  size_t start = 0;
  ChunkedScanner::Result result = ChunkedScanner::Result::kNeedMore;
  for (size_t i = 0; i <= cuts.size(); ++i) {
    size_t end = i < cuts.size() ? cuts[i] : body.size();
    size_t consumed = 0;
    result = scanner.Feed(body.data() + start, end - start, &consumed);
    total += consumed;
    if (result != ChunkedScanner::Result::kNeedMore) break;
    EXPECT_EQ(consumed, end - start);
    start = end;
  }
  return {result, total};
}

ScanResult ScanByteByByte(std::string_view body) {
  std::vector<size_t> cuts;
  for (size_t i = 1; i < body.size(); ++i) cuts.push_back(i);
  return ScanPieces(body, cuts);
}

// Scans `body` whole, byte by byte and split in two at every point, expecting the same answer each time.
void ExpectScan(std::string_view body, ChunkedScanner::Result expected, size_t expected_consumed) {
  std::string shown = testing::PrintToString(std::string(body));
  ScanResult whole = ScanAll(body);
  EXPECT_EQ(whole.result, expected) << shown;
  EXPECT_EQ(whole.consumed, expected_consumed) << shown;
  ScanResult bytes = ScanByteByByte(body);
  EXPECT_EQ(bytes.result, expected) << "byte by byte: " << shown;
  EXPECT_EQ(bytes.consumed, expected_consumed) << "byte by byte: " << shown;
  for (size_t split = 0; split <= body.size(); ++split) {
    ScanResult halves = ScanPieces(body, {split});
    EXPECT_EQ(halves.result, expected) << "split at " << split << ": " << shown;
    EXPECT_EQ(halves.consumed, expected_consumed) << "split at " << split << ": " << shown;
  }
}

void ExpectComplete(std::string_view body) { ExpectScan(body, ChunkedScanner::Result::kDone, body.size()); }

// Malformed at byte `offset` (the count of bytes before the offending one).
void ExpectMalformedAt(std::string_view body, size_t offset) { ExpectScan(body, ChunkedScanner::Result::kError, offset); }

void ExpectMalformed(std::string_view body) {
  ScanResult whole = ScanAll(body);
  EXPECT_EQ(whole.result, ChunkedScanner::Result::kError) << testing::PrintToString(std::string(body));
  ExpectMalformedAt(body, whole.consumed);
}

TEST(ChunkedScannerTest, SimpleBody) {
  ExpectComplete("5\r\nhello\r\n0\r\n\r\n");
  ExpectComplete("0\r\n\r\n");
  ExpectComplete("1\r\na\r\n1\r\nb\r\n0\r\n\r\n");
}

TEST(ChunkedScannerTest, StopsAtTheEndOfTheBody) {
  std::string body = "3\r\nabc\r\n0\r\n\r\n";
  ExpectScan(body + "GET / HTTP/1.1\r\n", ChunkedScanner::Result::kDone, body.size());
}

TEST(ChunkedScannerTest, NeedsMoreUntilTheFinalCrlf) {
  std::string body = "5;x=y\r\nhello\r\nA\r\n0123456789\r\n0\r\nX-Sum: 1\r\n\r\n";
  for (size_t n = 0; n < body.size(); ++n) {
    ExpectScan(std::string_view(body).substr(0, n), ChunkedScanner::Result::kNeedMore, n);
  }
  ExpectComplete(body);
}

TEST(ChunkedScannerTest, HexSizesInEitherCase) {
  std::string data(0x1aF, 'x');
  ExpectComplete("1aF\r\n" + data + "\r\n0\r\n\r\n");
  ExpectComplete("01Af\r\n" + data + "\r\n0000\r\n\r\n");
}

TEST(ChunkedScannerTest, LargeChunkSkippedInOneStep) {
  ChunkedScanner scanner;
  size_t consumed = 0;
  std::string head = "fffffffffffffff\r\n";  // 15 digits: 2^60 - 1, the largest size allowed
  EXPECT_EQ(scanner.Feed(head.data(), head.size(), &consumed), ChunkedScanner::Result::kNeedMore);
  std::string data(1 << 20, 'z');
  EXPECT_EQ(scanner.Feed(data.data(), data.size(), &consumed), ChunkedScanner::Result::kNeedMore);
  EXPECT_EQ(consumed, data.size());
  EXPECT_FALSE(scanner.done());
}

TEST(ChunkedScannerTest, ExtensionsAreSkipped) {
  ExpectComplete("5;name=value;quoted=\"a;b\\\"c\"\r\nhello\r\n0;last\r\n\r\n");
  ExpectComplete("5;\t ext \xC3\xA9\r\nhello\r\n0\r\n\r\n");
}

TEST(ChunkedScannerTest, TrailersAreSkipped) {
  ExpectComplete("5\r\nhello\r\n0\r\nX-Checksum: abc\r\nX-Empty:\r\nX-Other: \t x y\r\n\r\n");
}

TEST(ChunkedScannerTest, DoneStaysDone) {
  ChunkedScanner scanner;
  size_t consumed = 99;
  std::string body = "0\r\n\r\nmore";
  EXPECT_EQ(scanner.Feed(body.data(), body.size(), &consumed), ChunkedScanner::Result::kDone);
  EXPECT_EQ(consumed, 5u);
  EXPECT_TRUE(scanner.done());
  EXPECT_EQ(scanner.Feed(body.data(), body.size(), &consumed), ChunkedScanner::Result::kDone);
  EXPECT_EQ(consumed, 0u);
}

TEST(ChunkedScannerTest, ErrorStaysError) {
  ChunkedScanner scanner;
  size_t consumed = 99;
  EXPECT_EQ(scanner.Feed("x", 1, &consumed), ChunkedScanner::Result::kError);
  EXPECT_EQ(consumed, 0u);
  EXPECT_EQ(scanner.Feed("0\r\n\r\n", 5, &consumed), ChunkedScanner::Result::kError);
  EXPECT_EQ(consumed, 0u);
  EXPECT_FALSE(scanner.done());
}

TEST(ChunkedScannerTest, EmptyFeedNeedsMore) {
  ChunkedScanner scanner;
  size_t consumed = 99;
  EXPECT_EQ(scanner.Feed("", 0, &consumed), ChunkedScanner::Result::kNeedMore);
  EXPECT_EQ(consumed, 0u);
}

TEST(ChunkedScannerTest, RefusesBadSizes) {
  ExpectMalformedAt("\r\n", 0);
  ExpectMalformedAt(";ext\r\n", 0);
  ExpectMalformedAt("g\r\n", 0);
  ExpectMalformedAt("0x5\r\nhello\r\n0\r\n\r\n", 1);
  ExpectMalformedAt("-5\r\n", 0);
  ExpectMalformedAt("+5\r\n", 0);
  ExpectMalformedAt(" 5\r\n", 0);
  ExpectMalformedAt("5 \r\nhello\r\n0\r\n\r\n", 1);
  ExpectMalformedAt("5\t;x\r\nhello\r\n0\r\n\r\n", 1);
  ExpectMalformedAt("5\nhello\r\n0\r\n\r\n", 1);
  ExpectMalformedAt("5\rhello\r\n0\r\n\r\n", 2);
  ExpectMalformedAt("1000000000000000\r\n", 15);  // 16 digits
  ExpectMalformedAt("0000000000000000\r\n\r\n", 15);
}

TEST(ChunkedScannerTest, RefusesBadExtensions) {
  ExpectMalformedAt("5;a\nhello\r\n0\r\n\r\n", 3);
  ExpectMalformedAt("5;a\x01\r\nhello\r\n0\r\n\r\n", 3);
  ExpectMalformedAt(std::string("5;a\0\r\nhello\r\n0\r\n\r\n", 17), 3);
  ExpectMalformedAt("5;a\x7F\r\nhello\r\n0\r\n\r\n", 3);
}

TEST(ChunkedScannerTest, SizeLineIsLimitedTo4KiB) {
  std::string ext_ok(4096 - 4, 'e');  // "5;" + ext + CRLF = 4096 bytes
  ExpectComplete("5;" + ext_ok + "\r\nhello\r\n0\r\n\r\n");
  std::string body = "5;" + ext_ok + "e\r\nhello\r\n0\r\n\r\n";
  ExpectMalformedAt(body, 4096);
}

TEST(ChunkedScannerTest, RefusesMissingCrlfAfterData) {
  ExpectMalformedAt("5\r\nhelloX\r\n0\r\n\r\n", 8);
  ExpectMalformedAt("5\r\nhello\n0\r\n\r\n", 8);
  ExpectMalformedAt("5\r\nhello\rX0\r\n\r\n", 9);
  ExpectMalformedAt("5\r\nhello0\r\n\r\n", 8);
  ExpectMalformedAt("3\r\nhello\r\n0\r\n\r\n", 6);  // chunk longer than its size
}

TEST(ChunkedScannerTest, RefusesBadTrailers) {
  ExpectMalformedAt("0\r\nX: 1\n\r\n", 7);
  ExpectMalformedAt("0\r\nX: 1\r\n\n", 9);
  ExpectMalformedAt("0\r\n\n", 3);
  ExpectMalformedAt("0\r\n\rX", 4);
  ExpectMalformedAt("0\r\nX: 1\r\n y\r\n\r\n", 9);  // obs-fold
  ExpectMalformedAt("0\r\nX : 1\r\n\r\n", 4);
  ExpectMalformedAt("0\r\n: 1\r\n\r\n", 3);
  ExpectMalformedAt("0\r\nNoColon\r\n\r\n", 10);
  ExpectMalformedAt("0\r\nX: a\x01\r\n\r\n", 7);
  ExpectMalformedAt("0\r\nX: a\rb\r\n\r\n", 8);
}

TEST(ChunkedScannerTest, TrailerSectionIsLimitedTo64KiB) {
  const size_t limit = 64 * 1024;
  // One trailer line whose section (line + final CRLF) is exactly the limit, then one byte more.
  std::string fits = "X: " + std::string(limit - 7, 'v') + "\r\n\r\n";
  ASSERT_EQ(fits.size(), limit);
  EXPECT_EQ(ScanAll("0\r\n" + fits).result, ChunkedScanner::Result::kDone);
  std::string too_big = "X: " + std::string(limit - 6, 'v') + "\r\n\r\n";
  ScanResult r = ScanAll("0\r\n" + too_big);
  EXPECT_EQ(r.result, ChunkedScanner::Result::kError);
  EXPECT_EQ(r.consumed, 3 + limit);
}

TEST(ChunkedScannerTest, MalformedInputsAgreeAtEverySplit) {
  for (const char* body : {"z", "5\r\nhello\r\r", "0\r\nA:b\r\n\r\r", "2;\x01"}) ExpectMalformed(body);
}

}  // namespace
}  // namespace autopipe::lb

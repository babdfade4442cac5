#include "api/api_server.h"

#include <gtest/gtest.h>

namespace autopipe {
namespace {

constexpr char kKey[] = "AKIATESTTESTTEST0001";
constexpr char kSecret[] = "testsecrettestsecrettestsecrettestsecret";

class RouterTest : public ::testing::Test {
 protected:
  RouterTest()
      : clock_(1'795'685'947'000),
        router_("us-west-2",
                [](const std::string& k) -> std::optional<std::string> {
                  if (k == kKey) return std::string(kSecret);
                  return std::nullopt;
                },
                &clock_) {
    router_.AddService({"autoscaling", "2011-01-01", "http://autoscaling.amazonaws.com/doc/2011-01-01/",
                        WireProtocol::kQuery},
                       {{"Echo",
                         [this](const ApiRequest& r) -> Result<Json> {
                           ++calls_;
                           Params p(r.params, r.protocol);
                           return Json{{"Names", p.List("Names")}, {"Note", p.Str("Note").value_or("")}};
                         }},
                        {"NoOutput", [](const ApiRequest&) -> Result<Json> { return Json(); }},
                        {"Fail", [](const ApiRequest&) -> Result<Json> { return Status::Validation("bad <thing>"); }},
                        {"Throw", [](const ApiRequest&) -> Result<Json> { throw std::runtime_error("boom"); }}});
    router_.AddService({"ec2", "2016-11-15", "http://ec2.amazonaws.com/doc/2016-11-15/", WireProtocol::kEc2},
                       {{"DescribeThings", [](const ApiRequest& r) -> Result<Json> {
                          Params p(r.params, r.protocol);
                          return Json{{"thingSet", p.List("ThingId")}};
                        }}});
    router_.AddService({"monitoring", "2010-08-01", "http://monitoring.amazonaws.com/doc/2010-08-01/",
                        WireProtocol::kQuery},
                       {{"PutMetricData", [](const ApiRequest& r) -> Result<Json> {
                          if (!r.json.contains("Namespace")) return Status(400, "MissingParameter", "Namespace");
                          return Json();
                        }}});
  }

  SigV4Request Signed(const std::string& service, const std::string& body,
                      std::vector<std::pair<std::string, std::string>> extra = {}) {
    SigV4Request req;
    req.method = "POST";
    req.target = "/";
    req.headers = {{"Host", "127.0.0.1:4566"}, {"Content-Type", "application/x-www-form-urlencoded; charset=utf-8"}};
    for (auto& h : extra) req.headers.push_back(h);
    req.body = body;
    SignSigV4(req, kKey, kSecret, "us-west-2", service, clock_.NowSeconds());
    return req;
  }

  FakeClock clock_;
  ApiRouter router_;
  int calls_ = 0;
};

TEST_F(RouterTest, QueryResultIsWrappedWithMembersAndRequestId) {
  auto reply = router_.Handle(Signed("autoscaling", "Action=Echo&Version=2011-01-01&Names.member.2=b&Names.member.1=a"
                                                    "&Note=x%26y"));
  EXPECT_EQ(reply.status, 200);
  EXPECT_NE(reply.body.find("<EchoResponse xmlns=\"http://autoscaling.amazonaws.com/doc/2011-01-01/\"><EchoResult>"
                            "<Names><member>a</member><member>b</member></Names><Note>x&amp;y</Note></EchoResult>"
                            "<ResponseMetadata><RequestId>"),
            std::string::npos)
      << reply.body;
}

TEST_F(RouterTest, OperationWithoutOutputHasNoResultElement) {
  auto reply = router_.Handle(Signed("autoscaling", "Action=NoOutput&Version=2011-01-01"));
  EXPECT_EQ(reply.status, 200);
  EXPECT_EQ(reply.body.find("NoOutputResult"), std::string::npos);
  EXPECT_NE(reply.body.find("<NoOutputResponse"), std::string::npos);
}

TEST_F(RouterTest, ErrorsUseTheQueryErrorEnvelopeEscaped) {
  auto reply = router_.Handle(Signed("autoscaling", "Action=Fail&Version=2011-01-01"));
  EXPECT_EQ(reply.status, 400);
  EXPECT_NE(reply.body.find("<ErrorResponse xmlns=\"http://autoscaling.amazonaws.com/doc/2011-01-01/\"><Error><Type>"
                            "Sender</Type><Code>ValidationError</Code><Message>bad &lt;thing&gt;</Message>"),
            std::string::npos)
      << reply.body;
}

TEST_F(RouterTest, UnknownActionMissingActionAndMalformedBody) {
  auto unknown = router_.Handle(Signed("autoscaling", "Action=Nope&Version=2011-01-01"));
  EXPECT_EQ(unknown.status, 400);
  EXPECT_NE(unknown.body.find("<Code>InvalidAction</Code>"), std::string::npos);
  auto missing = router_.Handle(Signed("autoscaling", "Version=2011-01-01"));
  EXPECT_NE(missing.body.find("<Code>MissingAction</Code>"), std::string::npos);
  auto malformed = router_.Handle(Signed("autoscaling", "Action=Echo&Names.member.1=%zz"));
  EXPECT_EQ(malformed.status, 400);
  EXPECT_NE(malformed.body.find("<Code>MalformedQueryString</Code>"), std::string::npos);
  EXPECT_EQ(calls_, 0);
}

TEST_F(RouterTest, HandlerExceptionBecomesInternalFailureNotACrash) {
  auto reply = router_.Handle(Signed("autoscaling", "Action=Throw&Version=2011-01-01"));
  EXPECT_EQ(reply.status, 500);
  EXPECT_NE(reply.body.find("<Code>InternalFailure</Code>"), std::string::npos);
  EXPECT_NE(reply.body.find("<Type>Receiver</Type>"), std::string::npos);
  EXPECT_EQ(reply.body.find("boom"), std::string::npos);  // internals stay in the log
}

TEST_F(RouterTest, Ec2ProtocolListsAsItemsWithRequestIdFirst) {
  auto reply = router_.Handle(Signed("ec2", "Action=DescribeThings&Version=2016-11-15&ThingId.1=t1&ThingId.2=t2"));
  EXPECT_EQ(reply.status, 200);
  EXPECT_NE(reply.body.find("<DescribeThingsResponse xmlns=\"http://ec2.amazonaws.com/doc/2016-11-15/\"><requestId>"),
            std::string::npos);
  EXPECT_NE(reply.body.find("<thingSet><item>t1</item><item>t2</item></thingSet>"), std::string::npos) << reply.body;
  auto err = router_.Handle(Signed("ec2", "Action=Nope&Version=2016-11-15"));
  EXPECT_NE(err.body.find("<Response><Errors><Error><Code>InvalidAction</Code>"), std::string::npos) << err.body;
}

TEST_F(RouterTest, Json10RequestsAndErrors) {
  std::vector<std::pair<std::string, std::string>> json_headers = {
      {"X-Amz-Target", "GraniteServiceVersion20100801.PutMetricData"}, {"x-amzn-query-mode", "true"}};
  auto ok = router_.Handle(Signed("monitoring", R"({"Namespace":"X","MetricData":[]})", json_headers));
  EXPECT_EQ(ok.status, 200);
  EXPECT_EQ(ok.content_type, "application/x-amz-json-1.0");
  EXPECT_EQ(ok.body, "{}");

  auto bad = router_.Handle(Signed("monitoring", R"({"MetricData":[]})", json_headers));
  EXPECT_EQ(bad.status, 400);
  bool has_query_error = false;
  for (const auto& [k, v] : bad.headers) has_query_error |= k == "x-amzn-query-error" && v == "MissingParameter;Sender";
  EXPECT_TRUE(has_query_error);
  EXPECT_EQ(Json::parse(bad.body)["__type"], "MissingParameter");

  auto garbage = router_.Handle(Signed("monitoring", "{not json", json_headers));
  EXPECT_EQ(garbage.status, 400);
  EXPECT_EQ(Json::parse(garbage.body)["__type"], "SerializationException");
}

TEST_F(RouterTest, UnsignedAndWronglySignedRequestsNeverReachHandlers) {
  SigV4Request unsigned_req;
  unsigned_req.method = "POST";
  unsigned_req.target = "/";
  unsigned_req.headers = {{"Host", "127.0.0.1:4566"}};
  unsigned_req.body = "Action=Echo&Version=2011-01-01";
  auto r1 = router_.Handle(unsigned_req);
  EXPECT_EQ(r1.status, 403);
  EXPECT_NE(r1.body.find("MissingAuthenticationToken"), std::string::npos);

  auto tampered = Signed("autoscaling", "Action=Echo&Version=2011-01-01");
  tampered.body += "&Names.member.1=x";
  auto r2 = router_.Handle(tampered);
  EXPECT_EQ(r2.status, 403);
  EXPECT_NE(r2.body.find("SignatureDoesNotMatch"), std::string::npos);

  auto old = Signed("autoscaling", "Action=Echo&Version=2011-01-01");
  clock_.Advance(16 * 60 * 1000);
  auto r3 = router_.Handle(old);
  EXPECT_EQ(r3.status, 403);
  EXPECT_NE(r3.body.find("Signature expired"), std::string::npos);
  EXPECT_EQ(calls_, 0);
}

TEST_F(RouterTest, ServiceNotOfferedIsRefused) {
  auto reply = router_.Handle(Signed("dynamodb", "Action=ListTables"));
  EXPECT_EQ(reply.status, 400);
  EXPECT_NE(reply.body.find("not offered"), std::string::npos);
}

TEST(ParamsTest, StructListsGroupByIndexInNumericOrder) {
  FormParams f = {{"Tags.member.10.Key", "k10"}, {"Tags.member.2.Key", "k2"}, {"Tags.member.2.Value", "v2"},
                  {"Tags.member.1.Key", "k1"},   {"Tags.member.x.Key", "junk"}};
  Params p(f, WireProtocol::kQuery);
  auto tags = p.StructList("Tags");
  ASSERT_EQ(tags.size(), 3u);
  EXPECT_EQ(tags[0].at("Key"), "k1");
  EXPECT_EQ(tags[1].at("Value"), "v2");
  EXPECT_EQ(tags[2].at("Key"), "k10");
}

TEST(ParamsTest, MapsAndEc2ListsAndSubStructures) {
  FormParams f = {{"Attributes.entry.2.key", "Policy"},      {"Attributes.entry.2.value", "{}"},
                  {"Attributes.entry.1.key", "DisplayName"}, {"Attributes.entry.1.value", "Alerts"},
                  {"InstanceMonitoring.Enabled", "true"},    {"Listeners.member.1.Protocol", "HTTP"}};
  Params p(f, WireProtocol::kQuery);
  auto attrs = p.Map("Attributes");
  ASSERT_EQ(attrs.size(), 2u);
  EXPECT_EQ(attrs[0], (std::pair<std::string, std::string>{"DisplayName", "Alerts"}));
  EXPECT_EQ(attrs[1].first, "Policy");
  EXPECT_EQ(p.Sub("InstanceMonitoring.").at("Enabled"), "true");
  EXPECT_EQ(p.StructList("Listeners")[0].at("Protocol"), "HTTP");

  FormParams e = {{"InstanceId.1", "i-a"}, {"InstanceId.2", "i-b"}, {"Filter.1.Name", "tag:x"},
                  {"Filter.1.Value.1", "v"}};
  Params ec2(e, WireProtocol::kEc2);
  EXPECT_EQ(ec2.List("InstanceId"), (std::vector<std::string>{"i-a", "i-b"}));
  EXPECT_EQ(ec2.StructList("Filter")[0].at("Value.1"), "v");
}

TEST(ParamsTest, TypedGettersNameTheBadParameter) {
  FormParams f = {{"MinSize", "two"}, {"Force", "maybe"}, {"Max", "10"}};
  Params p(f, WireProtocol::kQuery);
  EXPECT_EQ(p.Int("MinSize").status().code(), "ValidationError");
  EXPECT_NE(p.Int("MinSize").status().message().find("MinSize"), std::string::npos);
  EXPECT_EQ(p.Bool("Force").status().code(), "ValidationError");
  EXPECT_EQ(**p.Int("Max"), 10);
  EXPECT_FALSE(p.Int("Absent")->has_value());
}

}  // namespace
}  // namespace autopipe

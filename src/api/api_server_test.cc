#include "api/api_server.h"

#include <gtest/gtest.h>

#include <future>
#include <mutex>

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
    ApiService autoscaling;
    autoscaling.info = {"autoscaling", "2011-01-01", "http://autoscaling.amazonaws.com/doc/2011-01-01/",
                        WireProtocol::kQuery};
    autoscaling.info.map_fields = {"Attributes"};
    autoscaling.operations = {
        {"Echo", Access::kRead,
         [this](const Params& p) -> Result<Json> {
           ++calls_;
           return Json{{"Names", p.List("Names")}, {"Note", p.Str("Note").value_or("")}};
         }},
        {"Record", Access::kWrite,
         [this](const Params& p) -> Result<Json> {
           seen_ = p.Sub("");
           // Held by the dispatcher: another thread cannot take it now.
           held_ = !std::async(std::launch::async, [this] {
                      bool got = write_lock_.try_lock();
                      if (got) write_lock_.unlock();
                      return got;
                    }).get();
           return Json();
         }},
        {"NoOutput", Access::kRead, [](const Params&) -> Result<Json> { return Json(); }},
        {"Fail", Access::kWrite, [](const Params&) -> Result<Json> { return Status::Validation("bad <thing>"); }},
        {"Throw", Access::kRead, [](const Params&) -> Result<Json> { throw std::runtime_error("boom"); }},
        {"Leak", Access::kWrite,
         [](const Params&) -> Result<Json> {
           return Status::Internal("store: sqlite3_step: disk I/O error in /data/region/state.db");
         }},
        {"Limited", Access::kWrite,
         [this](const Params& p) -> Result<Json> {
           ++calls_;
           return Json{{"Count", p.StructList("Tags").size()}};
         },
         {{"Tags", 2}}}};
    autoscaling.write_lock = &write_lock_;
    autoscaling.after_write = [this] { ++after_writes_; };
    router_.AddService(std::move(autoscaling));

    ApiService ec2;
    ec2.info = {"ec2", "2016-11-15", "http://ec2.amazonaws.com/doc/2016-11-15/", WireProtocol::kEc2};
    ec2.operations = {{"DescribeThings", Access::kRead, [](const Params& p) -> Result<Json> {
                         return Json{{"thingSet", p.List("ThingId")}};
                       }}};
    router_.AddService(std::move(ec2));

    ApiService monitoring;
    monitoring.info = {"monitoring", "2010-08-01", "http://monitoring.amazonaws.com/doc/2010-08-01/",
                       WireProtocol::kQuery};
    monitoring.operations = {{"PutMetricData", Access::kWrite, [](const Params& p) -> Result<Json> {
                                if (!p.Has("Namespace")) return Status(400, "MissingParameter", "Namespace");
                                return Json();
                              }},
                             {"ListMetrics", Access::kRead, [](const Params& p) -> Result<Json> {
                                return Json{{"Metrics", Json::array({{{"MetricName", "m"}, {"Dimensions", Json()}}})},
                                            {"NextToken", Json()}};
                              }}};
    router_.AddService(std::move(monitoring));
  }

  static std::vector<std::pair<std::string, std::string>> JsonHeaders(const std::string& target,
                                                                      bool query_mode = true) {
    std::vector<std::pair<std::string, std::string>> h = {{"X-Amz-Target", target}};
    if (query_mode) h.emplace_back("x-amzn-query-mode", "true");
    return h;
  }

  static std::string Header(const HttpReply& reply, const std::string& name) {
    for (const auto& [k, v] : reply.headers) {
      if (k == name) return v;
    }
    return "";
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
  std::mutex write_lock_;
  int calls_ = 0;
  int after_writes_ = 0;
  FormParams seen_;
  bool held_ = false;
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

TEST_F(RouterTest, ARequestForAnotherVersionOfTheApiIsRefusedNotAnswered) {
  // elbv2 (2015-12-01) signs with the same service name as Classic ELB; a service only answers its own version.
  auto other = router_.Handle(Signed("autoscaling", "Action=Echo&Version=2015-12-01&Names.member.1=a"));
  EXPECT_EQ(other.status, 400);
  EXPECT_NE(other.body.find("<Code>InvalidAction</Code>"), std::string::npos) << other.body;
  EXPECT_NE(other.body.find("for version 2015-12-01"), std::string::npos) << other.body;
  EXPECT_EQ(calls_, 0);
  auto own = router_.Handle(Signed("autoscaling", "Action=Echo&Version=2011-01-01&Names.member.1=a"));
  EXPECT_EQ(own.status, 200);
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
  auto ok = router_.Handle(Signed("monitoring", R"({"Namespace":"X","MetricData":[]})",
                                  JsonHeaders("GraniteServiceVersion20100801.PutMetricData")));
  EXPECT_EQ(ok.status, 200);
  EXPECT_EQ(ok.content_type, "application/x-amz-json-1.0");
  EXPECT_EQ(ok.body, "{}");
  EXPECT_FALSE(Header(ok, "x-amzn-RequestId").empty());

  auto bad = router_.Handle(Signed("monitoring", R"({"MetricData":[]})",
                                   JsonHeaders("GraniteServiceVersion20100801.PutMetricData")));
  EXPECT_EQ(bad.status, 400);
  EXPECT_EQ(Header(bad, "x-amzn-query-error"), "MissingParameter;Sender");
  EXPECT_EQ(Json::parse(bad.body)["__type"], "MissingParameter");
  EXPECT_EQ(Json::parse(bad.body)["message"], "Namespace");

  // Without x-amzn-query-mode the error is plain JSON 1.0.
  auto plain = router_.Handle(Signed("monitoring", R"({})",
                                     JsonHeaders("GraniteServiceVersion20100801.PutMetricData", false)));
  EXPECT_EQ(plain.status, 400);
  EXPECT_EQ(Header(plain, "x-amzn-query-error"), "");
  EXPECT_EQ(Json::parse(plain.body)["__type"], "MissingParameter");

  // Results render as JSON, leaving out null members as the XML does.
  auto list = router_.Handle(Signed("monitoring", "", JsonHeaders("GraniteServiceVersion20100801.ListMetrics")));
  EXPECT_EQ(list.status, 200);
  EXPECT_EQ(list.body, R"({"Metrics":[{"MetricName":"m"}]})");

  auto receiver = router_.Handle(Signed("autoscaling", "{}", JsonHeaders("AutoScaling_2011_01_01.Throw")));
  EXPECT_EQ(receiver.status, 500);
  EXPECT_EQ(Header(receiver, "x-amzn-query-error"), "InternalFailure;Receiver");
}

TEST_F(RouterTest, Json10ReachesTheHandlerWithTheQueryParameters) {
  const std::string query =
      "Action=Record&Version=2011-01-01&Name=g&Count=3&Ratio=0.5&Force=true&Zones.member.1=a&Zones.member.2=b"
      "&Empty=&Tags.member.1.Key=k&Tags.member.1.Values.member.1=v&Monitoring.Enabled=false"
      "&Attributes.entry.1.key=Policy&Attributes.entry.1.value=%7B%7D&Attributes.entry.2.key=Name"
      "&Attributes.entry.2.value=x";
  auto via_query = router_.Handle(Signed("autoscaling", query));
  ASSERT_EQ(via_query.status, 200) << via_query.body;
  FormParams from_query = seen_;
  from_query.erase("Action");
  from_query.erase("Version");

  const std::string json = R"({"Name":"g","Count":3,"Ratio":0.5,"Force":true,"Zones":["a","b"],"Empty":[],
      "Tags":[{"Key":"k","Values":["v"]}],"Monitoring":{"Enabled":false},"Absent":null,
      "Attributes":{"Policy":"{}","Name":"x"}})";
  seen_.clear();
  auto via_json = router_.Handle(Signed("autoscaling", json, JsonHeaders("AutoScaling_2011_01_01.Record")));
  ASSERT_EQ(via_json.status, 200) << via_json.body;
  EXPECT_EQ(via_json.body, "{}");
  EXPECT_EQ(seen_, from_query);
  EXPECT_TRUE(held_);  // a write runs under the write lock
  EXPECT_EQ(after_writes_, 2);
}

TEST_F(RouterTest, Json10BodiesThatAreNotObjectsTooDeepOrTooLongAreRefused) {
  auto headers = JsonHeaders("AutoScaling_2011_01_01.Echo");
  for (const std::string body : {"{not json", "[]", "\"x\"", "3", "null"}) {
    auto reply = router_.Handle(Signed("autoscaling", body, headers));
    EXPECT_EQ(reply.status, 400) << body;
    EXPECT_EQ(Json::parse(reply.body)["__type"], "SerializationException") << body;
  }
  std::string deep = R"({"A":)" + std::string(kMaxJsonDepth, '[') + std::string(kMaxJsonDepth, ']') + "}";
  auto too_deep = router_.Handle(Signed("autoscaling", deep, headers));
  EXPECT_EQ(too_deep.status, 400);
  EXPECT_EQ(Json::parse(too_deep.body)["__type"], "SerializationException");
  // Brackets inside strings do not count.
  auto in_string = router_.Handle(
      Signed("autoscaling", R"({"Note":")" + std::string(100, '[') + R"(\""})", headers));
  EXPECT_EQ(in_string.status, 200) << in_string.body;

  Json long_list = {{"Names", Json::array()}};
  for (size_t i = 0; i <= kMaxJsonListLength; ++i) long_list["Names"].push_back("n");
  auto too_long = router_.Handle(Signed("autoscaling", long_list.dump(), headers));
  EXPECT_EQ(too_long.status, 400);
  EXPECT_EQ(Header(too_long, "x-amzn-query-error"), "ValidationError;Sender");
  EXPECT_NE(Json::parse(too_long.body)["message"].get<std::string>().find("at 'names'"), std::string::npos);
  EXPECT_EQ(calls_, 1);  // only the in-string one ran
}

TEST_F(RouterTest, BadTargetsAndDoubleAuthorizationAreCleanErrors) {
  for (const std::string target : {std::string("NoDot"), std::string("Prefix.\xff\xfe"), std::string("P.Ec ho")}) {
    auto reply = router_.Handle(Signed("autoscaling", "{}", JsonHeaders(target)));
    EXPECT_EQ(reply.status, 400);
    EXPECT_EQ(Json::parse(reply.body)["__type"], "InvalidAction");
    EXPECT_EQ(reply.body.find('\xff'), std::string::npos);
  }
  auto unknown = router_.Handle(Signed("autoscaling", "{}", JsonHeaders("AutoScaling_2011_01_01.Nope")));
  EXPECT_EQ(Header(unknown, "x-amzn-query-error"), "InvalidAction;Sender");

  auto twice = Signed("autoscaling", "Action=Echo&Version=2011-01-01");
  std::string auth;
  for (const auto& [k, v] : twice.headers) {
    if (k == "Authorization") auth = v;
  }
  twice.headers.emplace_back("Authorization", auth);
  auto reply = router_.Handle(twice);
  EXPECT_EQ(reply.status, 400);
  EXPECT_NE(reply.body.find("<Code>IncompleteSignature</Code>"), std::string::npos) << reply.body;
  EXPECT_EQ(calls_, 0);
}

TEST_F(RouterTest, ReadsTakeNoLockWritesDoAndWakeAfterSuccessOnly) {
  {
    std::lock_guard hold(write_lock_);  // as a long write or controller pass would
    auto read = std::async(std::launch::async, [this] { return router_.Invoke("autoscaling", "Echo", {}); });
    ASSERT_EQ(read.wait_for(std::chrono::seconds(30)), std::future_status::ready)
        << "a kRead operation waited for the write lock";
    EXPECT_TRUE(read.get().ok());
  }
  EXPECT_EQ(after_writes_, 0);
  ASSERT_TRUE(router_.Invoke("autoscaling", "Record", {{"X", "1"}}).ok());
  EXPECT_TRUE(held_);
  EXPECT_EQ(after_writes_, 1);
  EXPECT_FALSE(router_.Invoke("autoscaling", "Fail", {}).ok());
  EXPECT_EQ(after_writes_, 1);  // a failed write wakes nobody
}

TEST_F(RouterTest, ParametersThatAreNotAllowedTextAreRefusedAtTheEdge) {
  const std::string pattern =
      R"(Member must satisfy regular expression pattern: [\u0020-\uD7FF\uE000-\uFFFD\uD800\uDC00-\uDBFF\uDFFF\r\n\t]*)";
  // A control character and invalid UTF-8 (via Query), U+FFFF and control characters (via JSON).
  auto ctl = router_.Handle(Signed("autoscaling", "Action=Echo&Version=2011-01-01&Note=a%01b"));
  EXPECT_EQ(ctl.status, 400);
  EXPECT_NE(ctl.body.find("<Code>ValidationError</Code><Message>1 validation error detected: Value &apos;a\xEF\xBF\xBD"
                          "b&apos; at &apos;note&apos; failed to satisfy constraint: " + pattern),
            std::string::npos)
      << ctl.body;
  auto bad_utf8 = router_.Handle(Signed("autoscaling", "Action=Echo&Version=2011-01-01&Names.member.1=%C3%28"));
  EXPECT_NE(bad_utf8.body.find("at &apos;names.member.1&apos;"), std::string::npos) << bad_utf8.body;
  EXPECT_EQ(bad_utf8.body.find("\xC3("), std::string::npos);  // never echoed as is
  auto overlong = router_.Handle(Signed("autoscaling", "Action=Echo&Version=2011-01-01&Note=%C0%AF"));
  EXPECT_EQ(overlong.status, 400);
  for (const std::string json : {R"({"Note":"\uffff"})", R"({"Note":"\u0000"})", R"({"Names":["\u001b"]})"}) {
    auto reply = router_.Handle(Signed("autoscaling", json, JsonHeaders("AutoScaling_2011_01_01.Echo")));
    EXPECT_EQ(reply.status, 400) << json;
    EXPECT_EQ(Header(reply, "x-amzn-query-error"), "ValidationError;Sender") << json;
  }
  // A lone surrogate escape is not even JSON.
  auto surrogate = router_.Handle(Signed("autoscaling", R"({"Note":"\ud800"})", JsonHeaders("A.Echo")));
  EXPECT_EQ(surrogate.status, 400);
  EXPECT_EQ(calls_, 0);
  // A secret is not repeated.
  auto secret = router_.Handle(Signed("autoscaling", "Action=Echo&Version=2011-01-01&MasterUserPassword=hunter2%01x"));
  EXPECT_EQ(secret.status, 400);
  EXPECT_NE(secret.body.find("Value &apos;***&apos; at &apos;masterUserPassword&apos;"), std::string::npos)
      << secret.body;
  EXPECT_EQ(secret.body.find("hunter2"), std::string::npos) << secret.body;
  // Tab, CR, LF, non-ASCII letters and 4-byte characters are fine.
  auto fine = router_.Handle(Signed("autoscaling", "Action=Echo&Version=2011-01-01&Note=a%09b%0D%0Ac%C3%A9%F0%9F%98%80"));
  EXPECT_EQ(fine.status, 200) << fine.body;
  EXPECT_EQ(calls_, 1);
}

TEST(RenderTest, ListsNameTheirMembersPerField) {
  ServiceInfo rds{"rds", "2014-10-31", "http://rds.amazonaws.com/doc/2014-10-31/", WireProtocol::kQuery};
  rds.list_members = {{"DBInstances", "DBInstance"}, {"VpcSecurityGroups", "VpcSecurityGroupMembership"}};
  ApiRequest req;
  req.action = "DescribeDBInstances";
  req.request_id = "r1";
  Json result = {{"DBInstances",
                  {{{"DBInstanceIdentifier", "db1"},
                    {"VpcSecurityGroups", {{{"VpcSecurityGroupId", "sg-1"}}}},
                    {"ReadReplicaDBInstanceIdentifiers", {"db2"}}}}}};
  HttpReply reply = RenderResult(rds, req, result);
  EXPECT_NE(reply.body.find("<DescribeDBInstancesResult><DBInstances><DBInstance><DBInstanceIdentifier>db1"
                            "</DBInstanceIdentifier><VpcSecurityGroups><VpcSecurityGroupMembership>"
                            "<VpcSecurityGroupId>sg-1</VpcSecurityGroupId></VpcSecurityGroupMembership>"
                            "</VpcSecurityGroups><ReadReplicaDBInstanceIdentifiers><member>db2</member>"
                            "</ReadReplicaDBInstanceIdentifiers></DBInstance></DBInstances>"),
            std::string::npos)
      << reply.body;

  // The same names flatten a JSON 1.0 list as the Query client would send it.
  auto flat = FlattenJson10(R"({"DBInstances":["a"],"Other":["b"]})", rds);
  ASSERT_TRUE(flat.ok());
  EXPECT_EQ(*flat, (FormParams{{"DBInstances.DBInstance.1", "a"}, {"Other.member.1", "b"}}));
  ServiceInfo ec2{"ec2", "2016-11-15", "http://ec2.amazonaws.com/doc/2016-11-15/", WireProtocol::kEc2};
  EXPECT_EQ(*FlattenJson10(R"({"InstanceId":["i-1"]})", ec2), (FormParams{{"InstanceId.1", "i-1"}}));
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

TEST_F(RouterTest, InternalFailureTellsTheClientNothingOfTheInternals) {
  auto reply = router_.Handle(Signed("autoscaling", "Action=Leak&Version=2011-01-01"));
  EXPECT_EQ(reply.status, 500);
  EXPECT_NE(reply.body.find("<Code>InternalFailure</Code>"), std::string::npos) << reply.body;
  EXPECT_NE(reply.body.find(std::string("<Message>") + kInternalFailureMessage + "</Message>"), std::string::npos)
      << reply.body;
  EXPECT_EQ(reply.body.find("store:"), std::string::npos) << reply.body;
  EXPECT_EQ(reply.body.find("state.db"), std::string::npos) << reply.body;
  auto json = router_.Handle(Signed("autoscaling", "{}", JsonHeaders("AutoScaling_2011_01_01.Leak")));
  EXPECT_EQ(json.status, 500);
  EXPECT_EQ(json.body.find("sqlite3"), std::string::npos) << json.body;
}

TEST_F(RouterTest, ListLimitsAreCheckedBeforeTheHandlerAndItsLock) {
  // The write lock is held by someone else: a refused call must not wait for it.
  std::unique_lock held(write_lock_);
  auto over = std::async(std::launch::async, [this] {
    return router_.Invoke("autoscaling", "Limited",
                          {{"Tags.member.1.Key", "a"}, {"Tags.member.2.Key", "b"}, {"Tags.member.3.Key", "c"},
                           {"Tags.member.3.Value", "v"}});
  });
  ASSERT_EQ(over.wait_for(std::chrono::seconds(20)), std::future_status::ready) << "waited for the write lock";
  Result<Json> r = over.get();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), "ValidationError");
  EXPECT_EQ(r.status().message(),
            "1 validation error detected: Value with 3 elements at 'tags' failed to satisfy constraint: Member must "
            "have length less than or equal to 2");
  held.unlock();
  EXPECT_EQ(calls_, 0);
  auto ok = router_.Invoke("autoscaling", "Limited",
                           {{"Tags.member.1.Key", "a"}, {"Tags.member.2.Key", "b"}, {"Tags.member.2.Value", "v"}});
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_EQ((*ok)["Count"], 2);
}

TEST_F(RouterTest, TooManyParametersAreRefusedWhateverTheOperation) {
  FormParams many;
  for (size_t i = 1; i <= kMaxRequestParameters + 1; ++i) many["Names.member." + std::to_string(i)] = "n";
  auto r = router_.Invoke("autoscaling", "Echo", many);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), "ValidationError");
  EXPECT_EQ(calls_, 0);
}

}  // namespace
}  // namespace autopipe

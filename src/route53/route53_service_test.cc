#include "route53/route53_service.h"

#include <gtest/gtest.h>

#include "route53/records.h"
#include "route53/xml.h"

namespace autopipe::route53 {
namespace {

class FixedClock : public Clock {
 public:
  int64_t NowMillis() const override { return 1'790'000'000'000; }
};

class Route53ApiTest : public ::testing::Test {
 protected:
  Route53ApiTest() : store_(NewMemoryStore()) {
    Route53Deps d;
    d.store = store_.get();
    d.clock = &clock_;
    d.write_lock = &mu_;
    d.verify_signatures = false;
    api_ = std::make_unique<Route53Api>(d);
  }

  HttpReply Call(const std::string& method, const std::string& path, const std::string& body = "") {
    SigV4Request r;
    r.method = method;
    r.target = "/2013-04-01/" + path;
    r.body = body;
    return api_->Handle(r);
  }

  static std::string Code(const HttpReply& reply) {
    auto x = ParseXml(reply.body);
    if (!x.ok() || x->name != "ErrorResponse") return "";
    return x->Child("Error")->ChildText("Code");
  }

  std::string CreateZone(const std::string& name, const std::string& ref) {
    HttpReply r = Call("POST", "hostedzone",
                       "<CreateHostedZoneRequest xmlns=\"https://route53.amazonaws.com/doc/2013-04-01/\"><Name>" +
                           name + "</Name><CallerReference>" + ref + "</CallerReference></CreateHostedZoneRequest>");
    EXPECT_EQ(r.status, 201) << r.body;
    auto x = ParseXml(r.body);
    return x->Child("HostedZone")->ChildText("Id").substr(std::string("/hostedzone/").size());
  }

  static std::string Batch(const std::string& action, const std::string& name, const std::string& type,
                           const std::string& value, const std::string& extra = "") {
    return "<ChangeResourceRecordSetsRequest><ChangeBatch><Changes><Change><Action>" + action +
           "</Action><ResourceRecordSet><Name>" + name + "</Name><Type>" + type + "</Type>" + extra +
           "<TTL>60</TTL><ResourceRecords><ResourceRecord><Value>" + value +
           "</Value></ResourceRecord></ResourceRecords></ResourceRecordSet></Change></Changes></ChangeBatch>"
           "</ChangeResourceRecordSetsRequest>";
  }

  FixedClock clock_;
  std::mutex mu_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<Route53Api> api_;
};

TEST_F(Route53ApiTest, ZoneLifecycle) {
  std::string id = CreateZone("Example.Test", "r1");
  HttpReply got = Call("GET", "hostedzone/" + id);
  EXPECT_EQ(got.status, 200);
  EXPECT_NE(got.body.find("<Name>example.test.</Name>"), std::string::npos);
  EXPECT_NE(got.body.find("<ResourceRecordSetCount>2</ResourceRecordSetCount>"), std::string::npos);
  EXPECT_EQ(Code(Call("POST", "hostedzone",
                      "<CreateHostedZoneRequest><Name>b.test</Name><CallerReference>r1</CallerReference>"
                      "</CreateHostedZoneRequest>")),
            "HostedZoneAlreadyExists");
  EXPECT_EQ(Code(Call("POST", "hostedzone",
                      "<CreateHostedZoneRequest><Name>example.test.</Name><CallerReference>r2</CallerReference>"
                      "</CreateHostedZoneRequest>")),
            "ConflictingDomainExists");
  EXPECT_EQ(Call("POST", "hostedzone/" + id + "/rrset/", Batch("CREATE", "www.example.test", "A", "192.0.2.1")).status,
            200);
  EXPECT_EQ(Code(Call("DELETE", "hostedzone/" + id)), "HostedZoneNotEmpty");
  EXPECT_EQ(Call("POST", "hostedzone/" + id + "/rrset", Batch("DELETE", "www.example.test", "A", "192.0.2.1")).status,
            200);
  EXPECT_EQ(Call("DELETE", "hostedzone/" + id).status, 200);
  EXPECT_EQ(Code(Call("GET", "hostedzone/" + id)), "NoSuchHostedZone");
}

TEST_F(Route53ApiTest, BadBatchesChangeNothing) {
  std::string id = CreateZone("example.test", "r1");
  ASSERT_EQ(Call("POST", "hostedzone/" + id + "/rrset", Batch("CREATE", "a.example.test", "A", "192.0.2.1")).status,
            200);
  const uint64_t revision = store_->Revision();
  auto expect = [&](const std::string& body, const std::string& code, const std::string& text) {
    HttpReply r = Call("POST", "hostedzone/" + id + "/rrset", body);
    EXPECT_EQ(Code(r), code) << r.body;
    EXPECT_NE(r.body.find(text), std::string::npos) << r.body;
    EXPECT_EQ(store_->Revision(), revision);
  };
  expect(Batch("CREATE", "a.other.test", "A", "192.0.2.1"), "InvalidChangeBatch",
         "RRSet with DNS name a.other.test. is not permitted in zone example.test.");
  expect(Batch("CREATE", "a.example.test", "A", "192.0.2.2"), "InvalidChangeBatch",
         "[Tried to create resource record set [name=&apos;a.example.test.&apos;, type=&apos;A&apos;] but it already exists]");
  expect(Batch("DELETE", "b.example.test", "A", "192.0.2.1"), "InvalidChangeBatch", "but it was not found");
  expect(Batch("CREATE", "c.example.test", "A", "192.0.2.1",
               "<SetIdentifier>x</SetIdentifier><Failover>PRIMARY</Failover><HealthCheckId>nope</HealthCheckId>"),
         "NoSuchHealthCheck", "nope");
  expect(Batch("CREATE", "c.example.test", "A", "300.0.2.1"), "InvalidChangeBatch", "Invalid Resource Record");
  expect(Batch("CREATE", "example.test", "CNAME", "x.test."), "InvalidChangeBatch", "not permitted at apex");
  expect(Batch("DELETE", "example.test", "NS", "ns-1.autopipe-dns.test."), "InvalidChangeBatch", "");
  expect(Batch("CREATE", "c.example.test", "A", "192.0.2.1", "<Weight>300</Weight><SetIdentifier>x</SetIdentifier>"),
         "InvalidInput", "Weight");
  expect("<ChangeResourceRecordSetsRequest><ChangeBatch>", "InvalidInput", "");
  expect("<!DOCTYPE x [<!ENTITY a \"b\">]><ChangeResourceRecordSetsRequest/>", "InvalidInput", "DOCTYPE");
}

TEST_F(Route53ApiTest, HealthChecksValidateAndAreIdempotentByCallerReference) {
  auto create = [&](const std::string& ref, const std::string& cfg) {
    return Call("POST", "healthcheck",
                "<CreateHealthCheckRequest><CallerReference>" + ref + "</CallerReference><HealthCheckConfig>" + cfg +
                    "</HealthCheckConfig></CreateHealthCheckRequest>");
  };
  const std::string ok = "<IPAddress>127.0.0.1</IPAddress><Port>8080</Port><Type>HTTP</Type>"
                         "<RequestInterval>10</RequestInterval><FailureThreshold>2</FailureThreshold>";
  HttpReply a = create("h1", ok);
  ASSERT_EQ(a.status, 201) << a.body;
  HttpReply b = create("h1", ok);
  EXPECT_EQ(b.status, 201);
  EXPECT_EQ(ParseXml(a.body)->Child("HealthCheck")->ChildText("Id"),
            ParseXml(b.body)->Child("HealthCheck")->ChildText("Id"));
  EXPECT_EQ(Code(create("h1", "<IPAddress>127.0.0.2</IPAddress><Port>80</Port><Type>TCP</Type>")),
            "HealthCheckAlreadyExists");
  EXPECT_EQ(Code(create("h2", "<IPAddress>127.0.0.1</IPAddress><Type>HTTP</Type><RequestInterval>20</RequestInterval>")),
            "InvalidInput");
  EXPECT_EQ(Code(create("h2", "<IPAddress>127.0.0.1</IPAddress><Type>HTTP</Type><FailureThreshold>0</FailureThreshold>")),
            "InvalidInput");
  EXPECT_EQ(Code(create("h2", "<IPAddress>127.0.0.1</IPAddress><Type>TCP</Type>")), "InvalidInput");  // no port
  EXPECT_EQ(api_->HealthChecks().size(), 1u);
  const std::string id = ParseXml(a.body)->Child("HealthCheck")->ChildText("Id");
  EXPECT_EQ(Call("GET", "healthcheck/" + id + "/status").status, 200);
  EXPECT_EQ(Call("DELETE", "healthcheck/" + id).status, 200);
  EXPECT_EQ(Code(Call("GET", "healthcheck/" + id)), "NoSuchHealthCheck");
}

TEST_F(Route53ApiTest, ListResourceRecordSetsPagesInRoute53Order) {
  std::string id = CreateZone("example.test", "r1");
  for (const char* n : {"b.example.test", "a.example.test", "z.a.example.test"}) {
    ASSERT_EQ(Call("POST", "hostedzone/" + id + "/rrset", Batch("CREATE", n, "A", "192.0.2.1")).status, 200);
  }
  HttpReply page = Call("GET", "hostedzone/" + id + "/rrset?maxitems=3");
  auto x = ParseXml(page.body);
  ASSERT_TRUE(x.ok());
  auto sets = x->Child("ResourceRecordSets")->Children("ResourceRecordSet");
  ASSERT_EQ(sets.size(), 3u);
  EXPECT_EQ(sets[0]->ChildText("Type"), "NS");  // the apex first
  EXPECT_EQ(sets[2]->ChildText("Name"), "a.example.test.");
  EXPECT_EQ(x->ChildText("IsTruncated"), "true");
  EXPECT_EQ(x->ChildText("NextRecordName"), "z.a.example.test.");
  HttpReply rest = Call("GET", "hostedzone/" + id + "/rrset?name=z.a.example.test.&type=A");
  auto y = ParseXml(rest.body);
  EXPECT_EQ(y->Child("ResourceRecordSets")->Children("ResourceRecordSet").size(), 2u);
  EXPECT_EQ(y->ChildText("IsTruncated"), "false");
}

TEST_F(Route53ApiTest, UnknownPathsAndGarbageAreErrors) {
  EXPECT_EQ(Call("GET", "nothing").status, 404);
  EXPECT_EQ(Code(Call("POST", "hostedzone", "not xml")), "InvalidInput");
  EXPECT_EQ(Code(Call("GET", "change/CNOPE")), "NoSuchChange");
}

}  // namespace
}  // namespace autopipe::route53

namespace autopipe::route53 {
namespace {

TEST(Route53XmlTest, EscapedTextIsAlwaysWellFormed) {
  const std::string bad = std::string("a\xd3") + "b<&\x01\xed\xa0\x80" + "\xc3\xa9" + "\xff\x8e\x8e";
  std::string escaped = XmlEscape(bad);
  auto parsed = ParseXml("<x>" + escaped + "</x>");
  ASSERT_TRUE(parsed.ok()) << escaped;
  EXPECT_EQ(parsed->text, "a\xEF\xBF\xBD" "b<&\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xc3\xa9"
                          "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");
}

TEST(Route53XmlTest, ParsesNamesWithoutPrefixesAndRefusesEntities) {
  auto x = ParseXml("<p:A xmlns:p=\"u\"><p:B> t </p:B><C/></p:A>");
  ASSERT_TRUE(x.ok());
  EXPECT_EQ(x->name, "A");
  EXPECT_EQ(x->ChildText("B"), "t");
  EXPECT_TRUE(x->Has("C"));
  EXPECT_FALSE(ParseXml("<!DOCTYPE a [<!ENTITY e \"x\">]><a>&e;</a>").ok());
  std::string deep;
  for (int i = 0; i < 40; ++i) deep += "<a>";
  EXPECT_FALSE(ParseXml(deep).ok());
}

}  // namespace
}  // namespace autopipe::route53

// SNS through ApiRouter (handlers, the unsigned GETs), the delivery controller over a fake transport and a fake
// clock, message formats, signatures (verified with OpenSSL against the certificate the region serves) and
// delivery-policy arithmetic.
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <deque>
#include <mutex>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "api/api_server.h"
#include "region/region_fixture.h"
#include "sns/delivery.h"
#include "sns/module.h"
#include "sns/signing.h"
#include "sns/sns_model.h"

namespace autopipe {
namespace {

constexpr char kEndpoint[] = "http://127.0.0.1:4566";

// Answers each Post with the next queued status (200 when none is queued) and records every request.
class FakeTransport : public sns::DeliveryTransport {
 public:
  struct State {
    std::mutex mu;
    std::vector<sns::OutgoingHttp> posts;
    std::vector<sns::OutgoingMail> mails;
    std::deque<Result<int>> answers;
  };
  explicit FakeTransport(std::shared_ptr<State> s) : s_(std::move(s)) {}
  Result<int> Post(const sns::OutgoingHttp& r) override {
    std::lock_guard lock(s_->mu);
    s_->posts.push_back(r);
    if (s_->answers.empty()) return 200;
    auto a = s_->answers.front();
    s_->answers.pop_front();
    return a;
  }
  Status Mail(const std::string& relay, const sns::OutgoingMail& m) override {
    std::lock_guard lock(s_->mu);
    s_->mails.push_back(m);
    return relay.empty() ? Status(502, "DeliveryFailed", "no relay", false) : Status::Ok();
  }

 private:
  std::shared_ptr<State> s_;
};

std::string Header(const sns::OutgoingHttp& r, const std::string& name) {
  for (const auto& [k, v] : r.headers) {
    if (k == name) return v;
  }
  return "";
}

// Verifies a base64 SNS signature over `text` with the public key of `cert_pem`.
bool Verify(const std::string& cert_pem, const std::string& text, const std::string& signature_b64,
            const std::string& version) {
  BIO* b = BIO_new_mem_buf(cert_pem.data(), static_cast<int>(cert_pem.size()));
  X509* cert = PEM_read_bio_X509(b, nullptr, nullptr, nullptr);
  BIO_free(b);
  if (!cert) return false;
  EVP_PKEY* key = X509_get_pubkey(cert);
  std::string sig(signature_b64.size(), '\0');
  int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(sig.data()),
                          reinterpret_cast<const unsigned char*>(signature_b64.data()),
                          static_cast<int>(signature_b64.size()));
  // EVP_DecodeBlock counts padding as zero bytes: drop them.
  size_t pad = 0;
  for (size_t i = signature_b64.size(); i > 0 && signature_b64[i - 1] == '='; --i) ++pad;
  sig.resize(n - pad);
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  bool ok = EVP_DigestVerifyInit(ctx, nullptr, version == "2" ? EVP_sha256() : EVP_sha1(), nullptr, key) == 1 &&
            EVP_DigestVerify(ctx, reinterpret_cast<const unsigned char*>(sig.data()), sig.size(),
                             reinterpret_cast<const unsigned char*>(text.data()), text.size()) == 1;
  EVP_MD_CTX_free(ctx);
  EVP_PKEY_free(key);
  X509_free(cert);
  return ok;
}

class SnsTest : public RegionFixture {
 protected:
  void SetUp() override {
    WireRegion({.auto_scaling = false, .load_balancing = false, .service = "sns"});
    ctx_.endpoint = kEndpoint;
    transport_ = std::make_shared<FakeTransport::State>();
    delivery_ = std::make_unique<sns::DeliveryController>(&ctx_, std::make_unique<FakeTransport>(transport_));
  }
  void TearDown() override {
    delivery_.reset();
    RegionFixture::TearDown();
  }

  std::string CreateTopic(const std::string& name = "AutoPipelineAlerts") {
    return MustCall("CreateTopic", {{"Name", name}})["TopicArn"];
  }

  // Runs every due delivery once and waits for the senders.
  void Deliver() {
    for (const auto& id : store_->Ids(kind::kSnsDelivery)) (void)delivery_->Reconcile(id);  // outcome: the store
    ASSERT_TRUE(delivery_->WaitIdle(10000));
  }

  // Subscribes an http endpoint and confirms it through the SubscribeURL the confirmation carried.
  std::string SubscribeHttp(const std::string& topic, const std::string& url = "http://127.0.0.1:9/hook") {
    EXPECT_EQ(MustCall("Subscribe", {{"TopicArn", topic}, {"Protocol", "http"}, {"Endpoint", url}})["SubscriptionArn"],
              "pending confirmation");
    Deliver();
    std::lock_guard lock(transport_->mu);
    const auto& post = transport_->posts.back();
    EXPECT_EQ(Header(post, "x-amz-sns-message-type"), "SubscriptionConfirmation");
    Json body = Json::parse(post.body);
    std::string subscribe_url = body["SubscribeURL"];
    EXPECT_EQ(subscribe_url.rfind(std::string(kEndpoint) + "/?Action=ConfirmSubscription&TopicArn=", 0), 0u);
    HttpReply reply = router_.Handle({"GET", subscribe_url.substr(std::string(kEndpoint).size()), {}, ""});
    EXPECT_EQ(reply.status, 200) << reply.body;
    EXPECT_NE(reply.body.find("<ConfirmSubscriptionResult><SubscriptionArn>" + topic + ":"), std::string::npos)
        << reply.body;
    size_t start = reply.body.find("<SubscriptionArn>") + 17;
    return reply.body.substr(start, reply.body.find("</SubscriptionArn>") - start);
  }

  std::shared_ptr<FakeTransport::State> transport_;
  std::unique_ptr<sns::DeliveryController> delivery_;
};

TEST_F(SnsTest, CreateTopicIsIdempotentAndValidatesNames) {
  const std::string arn = CreateTopic();
  EXPECT_EQ(arn, "arn:aws:sns:us-west-2:123456789012:AutoPipelineAlerts");
  EXPECT_EQ(CreateTopic(), arn);
  ExpectError(Call("CreateTopic", {{"Name", "bad name!"}}), "InvalidParameter", "Invalid parameter: Topic Name");
  ExpectError(Call("CreateTopic", {{"Name", std::string(257, 'a')}}), "InvalidParameter",
              "Invalid parameter: Topic Name");
  ExpectError(Call("CreateTopic", {{"Name", "AutoPipelineAlerts"},
                                   {"Attributes.entry.1.key", "DisplayName"},
                                   {"Attributes.entry.1.value", "other"}}),
              "InvalidParameter", "Invalid parameter: Attributes Reason: Topic already exists with different attributes");
  auto topics = MustCall("ListTopics", {});
  ASSERT_EQ(topics["Topics"].size(), 1u);
  EXPECT_EQ(topics["Topics"][0]["TopicArn"], arn);
}

TEST_F(SnsTest, TopicAttributesAndTags) {
  const std::string arn = CreateTopic();
  MustCall("SetTopicAttributes", {{"TopicArn", arn}, {"AttributeName", "DisplayName"}, {"AttributeValue", "Alerts"}});
  ExpectError(Call("SetTopicAttributes", {{"TopicArn", arn}, {"AttributeName", "Nope"}, {"AttributeValue", "x"}}),
              "InvalidParameter", "Invalid parameter: AttributeName");
  ExpectError(Call("SetTopicAttributes",
                   {{"TopicArn", arn}, {"AttributeName", "SignatureVersion"}, {"AttributeValue", "3"}}),
              "InvalidParameter", "Invalid parameter: Attributes Reason: SignatureVersion must be 1 or 2");
  auto attrs = MustCall("GetTopicAttributes", {{"TopicArn", arn}})["Attributes"];
  std::map<std::string, std::string> m;
  for (const auto& e : attrs) m[e["key"]] = e["value"];
  EXPECT_EQ(m["DisplayName"], "Alerts");
  EXPECT_EQ(m["TopicArn"], arn);
  EXPECT_EQ(m["Owner"], "123456789012");
  EXPECT_EQ(Json::parse(m["EffectiveDeliveryPolicy"])["http"]["defaultHealthyRetryPolicy"]["numRetries"], 3);
  MustCall("TagResource", {{"ResourceArn", arn}, {"Tags.member.1.Key", "team"}, {"Tags.member.1.Value", "ops"}});
  EXPECT_EQ(MustCall("ListTagsForResource", {{"ResourceArn", arn}})["Tags"][0]["Value"], "ops");
  MustCall("UntagResource", {{"ResourceArn", arn}, {"TagKeys.member.1", "team"}});
  EXPECT_TRUE(MustCall("ListTagsForResource", {{"ResourceArn", arn}})["Tags"].empty());
  auto missing = Call("GetTopicAttributes", {{"TopicArn", arn + "x"}});
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), "NotFound");
  EXPECT_EQ(missing.status().http_status(), 404);
}

TEST_F(SnsTest, PublishValidation) {
  const std::string arn = CreateTopic();
  ExpectError(Call("Publish", {{"TopicArn", arn}, {"Message", ""}}), "InvalidParameter",
              "Invalid parameter: Empty message");
  ExpectError(Call("Publish", {{"TopicArn", arn}, {"Message", std::string(262145, 'x')}}), "InvalidParameter",
              "Invalid parameter: Message too long");
  ExpectError(Call("Publish", {{"TopicArn", arn}, {"Message", "m"}, {"Subject", std::string(100, 's')}}),
              "InvalidParameter", "Invalid parameter: Subject");
  ExpectError(Call("Publish", {{"TopicArn", arn}, {"Message", "{\"http\":\"x\"}"}, {"MessageStructure", "json"}}),
              "InvalidParameter", "Invalid parameter: Message Structure - No default entry in JSON message body");
  ExpectError(Call("Publish", {{"TopicArn", arn}, {"Message", "not json"}, {"MessageStructure", "json"}}),
              "InvalidParameter", "Invalid parameter: Message Structure - JSON message body failed to parse");
  ExpectError(Call("Publish", {{"TopicArn", arn},
                               {"Message", "m"},
                               {"MessageAttributes.entry.1.Name", "n"},
                               {"MessageAttributes.entry.1.Value.DataType", "Weird"},
                               {"MessageAttributes.entry.1.Value.StringValue", "v"}}),
              "ParameterValueInvalid",
              "The message attribute 'n' has an invalid message attribute type, the set of supported type prefixes "
              "is Binary, Number, and String.");
  auto missing = Call("Publish", {{"TopicArn", arn + "-gone"}, {"Message", "m"}});
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), "NotFound");
  // A valid publish to a topic without subscribers records nothing and answers a MessageId.
  EXPECT_EQ(MustCall("Publish", {{"TopicArn", arn}, {"Message", "hello"}})["MessageId"].get<std::string>().size(), 36u);
  EXPECT_EQ(store_->Count(kind::kSnsDelivery), 0u);
}

TEST_F(SnsTest, HttpSubscriptionHandshakeThenSignedNotificationsBothVersions) {
  const std::string arn = CreateTopic();
  auto pending = MustCall("ListSubscriptionsByTopic", {{"TopicArn", arn}})["Subscriptions"];
  EXPECT_TRUE(pending.empty());
  const std::string sub = SubscribeHttp(arn);
  EXPECT_EQ(MustCall("ListSubscriptions", {})["Subscriptions"][0]["SubscriptionArn"], sub);

  for (const std::string version : {"1", "2"}) {
    MustCall("SetTopicAttributes",
             {{"TopicArn", arn}, {"AttributeName", "SignatureVersion"}, {"AttributeValue", version}});
    MustCall("Publish", {{"TopicArn", arn},
                         {"Subject", "Hi"},
                         {"Message", "body " + version},
                         {"MessageAttributes.entry.1.Name", "color"},
                         {"MessageAttributes.entry.1.Value.DataType", "String"},
                         {"MessageAttributes.entry.1.Value.StringValue", "red"}});
    ASSERT_EQ(store_->Count(kind::kSnsDelivery), 1u);
    Deliver();
    EXPECT_EQ(store_->Count(kind::kSnsDelivery), 0u) << "a delivered message is forgotten";
    std::lock_guard lock(transport_->mu);
    const auto& post = transport_->posts.back();
    EXPECT_EQ(post.url, "http://127.0.0.1:9/hook");
    EXPECT_EQ(Header(post, "x-amz-sns-message-type"), "Notification");
    EXPECT_EQ(Header(post, "x-amz-sns-subscription-arn"), sub);
    EXPECT_EQ(Header(post, "x-amz-sns-topic-arn"), arn);
    EXPECT_EQ(Header(post, "User-Agent"), "Amazon Simple Notification Service Agent");
    EXPECT_EQ(Header(post, "Content-Type"), "text/plain; charset=UTF-8");
    Json body = Json::parse(post.body);
    EXPECT_EQ(body["Type"], "Notification");
    EXPECT_EQ(body["Message"], "body " + version);
    EXPECT_EQ(body["Subject"], "Hi");
    EXPECT_EQ(body["SignatureVersion"], version);
    EXPECT_EQ(body["MessageAttributes"]["color"]["Type"], "String");
    EXPECT_EQ(body["MessageAttributes"]["color"]["Value"], "red");
    EXPECT_EQ(Header(post, "x-amz-sns-message-id"), body["MessageId"]);
    // The certificate as a subscriber fetches it: SigningCertURL, unsigned.
    const std::string cert_url = body["SigningCertURL"];
    ASSERT_EQ(cert_url.rfind(std::string(kEndpoint) + "/SimpleNotificationService-", 0), 0u);
    HttpReply cert = router_.Handle({"GET", cert_url.substr(std::string(kEndpoint).size()), {}, ""});
    ASSERT_EQ(cert.status, 200);
    const std::string canonical = "Message\nbody " + version + "\nMessageId\n" + body["MessageId"].get<std::string>() +
                                  "\nSubject\nHi\nTimestamp\n" + body["Timestamp"].get<std::string>() +
                                  "\nTopicArn\n" + arn + "\nType\nNotification\n";
    EXPECT_TRUE(Verify(cert.body, canonical, body["Signature"], version));
    EXPECT_FALSE(Verify(cert.body, canonical + "x", body["Signature"], version));
  }
}

TEST_F(SnsTest, ConfirmationViaApiAndTokenChecks) {
  const std::string arn = CreateTopic();
  MustCall("Subscribe", {{"TopicArn", arn}, {"Protocol", "http"}, {"Endpoint", "http://127.0.0.1:9/"}});
  auto subs = MustCall("ListSubscriptions", {})["Subscriptions"];
  ASSERT_EQ(subs.size(), 1u);
  EXPECT_EQ(subs[0]["SubscriptionArn"], "PendingConfirmation");
  ExpectError(Call("ConfirmSubscription", {{"TopicArn", arn}, {"Token", "nope"}}), "InvalidParameter",
              "Invalid parameter: Invalid token");
  std::string token = (*store_->List(kind::kSnsSubscription)[0])["Token"];
  clock_.Advance(sns::kTokenLifetimeMillis + 1);
  ExpectError(Call("ConfirmSubscription", {{"TopicArn", arn}, {"Token", token}}), "InvalidParameter",
              "Invalid parameter: Token Reason: the token has expired");
  // Subscribing again sends a new token.
  MustCall("Subscribe", {{"TopicArn", arn}, {"Protocol", "http"}, {"Endpoint", "http://127.0.0.1:9/"}});
  token = (*store_->List(kind::kSnsSubscription)[0])["Token"];
  std::string sub = MustCall("ConfirmSubscription", {{"TopicArn", arn}, {"Token", token}})["SubscriptionArn"];
  EXPECT_EQ(sub.rfind(arn + ":", 0), 0u);
  auto attrs = MustCall("GetSubscriptionAttributes", {{"SubscriptionArn", sub}})["Attributes"];
  std::map<std::string, std::string> m;
  for (const auto& e : attrs) m[e["key"]] = e["value"];
  EXPECT_EQ(m["PendingConfirmation"], "false");
  EXPECT_EQ(m["ConfirmationWasAuthenticated"], "true");
  ExpectError(Call("Subscribe", {{"TopicArn", arn}, {"Protocol", "http"}, {"Endpoint", "ftp://x"}}),
              "InvalidParameter", "Invalid parameter: Invalid endpoint: the http protocol needs an http:// URL");
  ExpectError(Call("Subscribe", {{"TopicArn", arn}, {"Protocol", "carrier-pigeon"}, {"Endpoint", "x"}}),
              "InvalidParameter", "Invalid parameter: Amazon SNS does not support this protocol string: carrier-pigeon");
  // Unsubscribe through the UnsubscribeURL path; an UnsubscribeConfirmation is sent.
  Deliver();
  HttpReply r = router_.Handle({"GET", "/?Action=Unsubscribe&SubscriptionArn=" + UriEncode(sub), {}, ""});
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_TRUE(MustCall("ListSubscriptions", {})["Subscriptions"].empty());
  Deliver();
  std::lock_guard lock(transport_->mu);
  EXPECT_EQ(Header(transport_->posts.back(), "x-amz-sns-message-type"), "UnsubscribeConfirmation");
}

TEST_F(SnsTest, AuthenticatedUnsubscribeRefusesTheUnsignedUrlAndDeletedTopicsDropTheirDeliveries) {
  const std::string arn = CreateTopic();
  MustCall("Subscribe", {{"TopicArn", arn}, {"Protocol", "http"}, {"Endpoint", "http://127.0.0.1:9/"}});
  std::string token = (*store_->List(kind::kSnsSubscription)[0])["Token"];
  std::string sub = MustCall("ConfirmSubscription",
                             {{"TopicArn", arn}, {"Token", token}, {"AuthenticateOnUnsubscribe", "true"}})["SubscriptionArn"];
  HttpReply r = router_.Handle({"GET", "/?Action=Unsubscribe&SubscriptionArn=" + UriEncode(sub), {}, ""});
  EXPECT_EQ(r.status, 403);
  EXPECT_NE(r.body.find("AuthorizationError"), std::string::npos);
  EXPECT_EQ(MustCall("ListSubscriptions", {})["Subscriptions"].size(), 1u);
  // Deleting the topic takes its subscriptions; what was queued for them is dropped unsent.
  MustCall("Publish", {{"TopicArn", arn}, {"Message", "orphan"}});
  MustCall("DeleteTopic", {{"TopicArn", arn}});
  MustCall("DeleteTopic", {{"TopicArn", arn}});  // again: not an error
  EXPECT_TRUE(MustCall("ListSubscriptions", {})["Subscriptions"].empty());
  {
    std::lock_guard lock(transport_->mu);
    transport_->posts.clear();
  }
  Deliver();
  EXPECT_EQ(store_->Count(kind::kSnsDelivery), 0u);
  std::lock_guard lock(transport_->mu);
  EXPECT_TRUE(transport_->posts.empty());
}

TEST_F(SnsTest, UnsignedRequestsOtherThanSnsGetsAreStillRefused) {
  HttpReply r = router_.Handle({"GET", "/?Action=ListTopics", {}, ""});
  EXPECT_EQ(r.status, 403);
  EXPECT_NE(r.body.find("MissingAuthenticationToken"), std::string::npos);
  r = router_.Handle({"GET", "/SimpleNotificationService-0000.pem", {}, ""});
  EXPECT_EQ(r.status, 403);
}

TEST_F(SnsTest, FailedDeliveriesRetryByThePolicyThenDrop) {
  const std::string arn = CreateTopic();
  SubscribeHttp(arn);
  {
    std::lock_guard lock(transport_->mu);
    transport_->posts.clear();
    for (int i = 0; i < 4; ++i) transport_->answers.push_back(i % 2 ? Result<int>(503) : Result<int>(Status(502, "DeliveryFailed", "refused", false)));
  }
  const std::string message_id = MustCall("Publish", {{"TopicArn", arn}, {"Message", "m"}})["MessageId"];
  Deliver();  // attempt 1 fails
  ASSERT_EQ(store_->Count(kind::kSnsDelivery), 1u);
  Json d = *store_->List(kind::kSnsDelivery)[0];
  EXPECT_EQ(d["Attempts"], 1);
  EXPECT_EQ(d["NextAttemptMillis"], clock_.NowMillis() + 20000) << "the default policy waits 20 s";
  Deliver();  // not due yet: nothing sent
  EXPECT_EQ(transport_->posts.size(), 1u);
  for (int retry = 1; retry <= 3; ++retry) {
    clock_.Advance(20000);
    Deliver();
  }
  EXPECT_EQ(transport_->posts.size(), 4u) << "one attempt and SNS's 3 retries";
  EXPECT_EQ(store_->Count(kind::kSnsDelivery), 0u) << "dropped once the policy is spent";
  for (const auto& p : transport_->posts) EXPECT_EQ(Header(p, "x-amz-sns-message-id"), message_id);
}

TEST_F(SnsTest, FourHundredsCountAsDelivered) {
  const std::string arn = CreateTopic();
  SubscribeHttp(arn);
  {
    std::lock_guard lock(transport_->mu);
    transport_->answers.push_back(404);
  }
  MustCall("Publish", {{"TopicArn", arn}, {"Message", "m"}});
  Deliver();
  EXPECT_EQ(store_->Count(kind::kSnsDelivery), 0u);
}

TEST_F(SnsTest, EmailSubscriptionConfirmsAndReceivesTheMessageThroughTheRelay) {
  ctx_.smtp_relay = "127.0.0.1:2525";
  const std::string arn = CreateTopic();
  MustCall("Subscribe", {{"TopicArn", arn}, {"Protocol", "email"}, {"Endpoint", "ops@example.com"}});
  Deliver();
  std::string link;
  {
    std::lock_guard lock(transport_->mu);
    ASSERT_EQ(transport_->mails.size(), 1u);
    const auto& mail = transport_->mails[0];
    EXPECT_EQ(mail.to, "ops@example.com");
    EXPECT_EQ(mail.subject, "AWS Notification - Subscription Confirmation");
    size_t at = mail.body.find(std::string(kEndpoint) + "/?Action=ConfirmSubscription");
    ASSERT_NE(at, std::string::npos);
    link = mail.body.substr(at + std::string(kEndpoint).size());
    link = link.substr(0, link.find('\n'));
  }
  EXPECT_EQ(router_.Handle({"GET", link, {}, ""}).status, 200);
  MustCall("Publish", {{"TopicArn", arn}, {"Subject", "Disk"}, {"Message", "is full"}});
  Deliver();
  std::lock_guard lock(transport_->mu);
  ASSERT_EQ(transport_->mails.size(), 2u);
  EXPECT_EQ(transport_->mails[1].subject, "Disk");
  EXPECT_EQ(transport_->mails[1].body.rfind("is full\n", 0), 0u);
  ExpectError(Call("Subscribe", {{"TopicArn", arn}, {"Protocol", "email"}, {"Endpoint", "not-an-address"}}),
              "InvalidParameter", "Invalid parameter: Email address");
}

TEST_F(SnsTest, AlarmActionPublishesCloudWatchsNotification) {
  const std::string arn = CreateTopic();
  SubscribeHttp(arn);
  AlarmStateChange c;
  c.alarm_name = "cpu-high";
  c.old_state = "OK";
  c.new_state = "ALARM";
  c.reason = "Threshold Crossed: 1 out of the last 1 datapoints [99.5 (01/12/26 10:00:00)] was greater than the "
             "threshold (70.0) (minimum 1 datapoint for OK -> ALARM transition).";
  c.at_millis = 1764583200006;  // 2025-12-01T10:00:00.006Z
  c.alarm = {{"AlarmName", "cpu-high"},
             {"AlarmDescription", nullptr},
             {"MetricName", "CPUUtilization"},
             {"Namespace", "AWS/EC2"},
             {"Statistic", "Average"},
             {"Dimensions", Json::array({{{"Name", "InstanceId"}, {"Value", "i-1234567890"}}})},
             {"Period", 300},
             {"EvaluationPeriods", 2},
             {"Threshold", 70.0},
             {"ComparisonOperator", "GreaterThanThreshold"},
             {"AlarmActions", Json::array({arn})}};
  const auto& targets = SnsModule().alarm_action_targets;
  ASSERT_EQ(targets.size(), 1u);
  EXPECT_EQ(targets[0].arn_prefix, "arn:aws:sns:");
  ASSERT_TRUE(targets[0].run(&ctx_, arn, c).ok());
  Deliver();
  std::lock_guard lock(transport_->mu);
  Json body = Json::parse(transport_->posts.back().body);
  EXPECT_EQ(body["Subject"], "ALARM: \"cpu-high\" in US West (Oregon)");
  Json m = Json::parse(body["Message"].get<std::string>());
  EXPECT_EQ(m["AlarmName"], "cpu-high");
  EXPECT_TRUE(m["AlarmDescription"].is_null());
  EXPECT_EQ(m["AWSAccountId"], "123456789012");
  EXPECT_EQ(m["NewStateValue"], "ALARM");
  EXPECT_EQ(m["OldStateValue"], "OK");
  EXPECT_EQ(m["NewStateReason"], c.reason);
  EXPECT_EQ(m["StateChangeTime"], "2025-12-01T10:00:00.006+0000");
  EXPECT_EQ(m["Region"], "US West (Oregon)");
  EXPECT_EQ(m["AlarmArn"], "arn:aws:cloudwatch:us-west-2:123456789012:alarm:cpu-high");
  EXPECT_EQ(m["AlarmActions"][0], arn);
  const Json& t = m["Trigger"];
  EXPECT_EQ(t["MetricName"], "CPUUtilization");
  EXPECT_EQ(t["StatisticType"], "Statistic");
  EXPECT_EQ(t["Statistic"], "AVERAGE");
  EXPECT_EQ(t["Dimensions"][0]["name"], "InstanceId");
  EXPECT_EQ(t["Dimensions"][0]["value"], "i-1234567890");
  EXPECT_EQ(t["DatapointsToAlarm"], 2);
  EXPECT_EQ(t["Threshold"].dump(), "70.0");
  EXPECT_EQ(t["TreatMissingData"], "missing");
  // A topic that does not exist is the action's error (CloudWatch records it in the alarm's history).
  EXPECT_EQ(targets[0].run(&ctx_, arn + "-gone", c).code(), "NotFound");
}

TEST_F(SnsTest, DeliveriesAreRecordedBeforeAnyAttemptAndSurviveTheController) {
  const std::string arn = CreateTopic();
  SubscribeHttp(arn);
  MustCall("Publish", {{"TopicArn", arn}, {"Message", "kept"}});
  // No controller has run: the message is in the store, to be sent by whichever controller runs next.
  delivery_ = std::make_unique<sns::DeliveryController>(&ctx_, std::make_unique<FakeTransport>(transport_));
  ASSERT_EQ(store_->Count(kind::kSnsDelivery), 1u);
  Deliver();
  std::lock_guard lock(transport_->mu);
  EXPECT_EQ(Json::parse(transport_->posts.back().body)["Message"], "kept");
}

TEST_F(SnsTest, PublishBatchAndRawDelivery) {
  const std::string arn = CreateTopic();
  const std::string sub = SubscribeHttp(arn);
  MustCall("SetSubscriptionAttributes",
           {{"SubscriptionArn", sub}, {"AttributeName", "RawMessageDelivery"}, {"AttributeValue", "true"}});
  ExpectError(Call("SetSubscriptionAttributes",
                   {{"SubscriptionArn", sub}, {"AttributeName", "RawMessageDelivery"}, {"AttributeValue", "yes"}}),
              "InvalidParameter",
              "Invalid parameter: Attributes Reason: RawMessageDelivery: Invalid value [yes]. Must be true or false.");
  auto r = MustCall("PublishBatch", {{"TopicArn", arn},
                                     {"PublishBatchRequestEntries.member.1.Id", "a"},
                                     {"PublishBatchRequestEntries.member.1.Message", "first"},
                                     {"PublishBatchRequestEntries.member.2.Id", "b"},
                                     {"PublishBatchRequestEntries.member.2.Message", ""}});
  ASSERT_EQ(r["Successful"].size(), 1u);
  EXPECT_EQ(r["Successful"][0]["Id"], "a");
  ASSERT_EQ(r["Failed"].size(), 1u);
  EXPECT_EQ(r["Failed"][0]["Code"], "InvalidParameter");
  EXPECT_EQ(r["Failed"][0]["SenderFault"], true);
  ExpectError(Call("PublishBatch", {{"TopicArn", arn},
                                    {"PublishBatchRequestEntries.member.1.Id", "a"},
                                    {"PublishBatchRequestEntries.member.1.Message", "x"},
                                    {"PublishBatchRequestEntries.member.2.Id", "a"},
                                    {"PublishBatchRequestEntries.member.2.Message", "y"}}),
              "BatchEntryIdsNotDistinct", "Two or more batch entries in the request have the same Id.");
  Deliver();
  std::lock_guard lock(transport_->mu);
  const auto& post = transport_->posts.back();
  EXPECT_EQ(post.body, "first") << "raw delivery posts the message alone";
  EXPECT_EQ(Header(post, "x-amz-sns-rawdelivery"), "true");
}

TEST_F(SnsTest, UnconfirmedSubscriptionsExpireAfterThreeDays) {
  const std::string arn = CreateTopic();
  MustCall("Subscribe", {{"TopicArn", arn}, {"Protocol", "http"}, {"Endpoint", "http://127.0.0.1:9/"}});
  clock_.Advance(sns::kPendingLifetimeMillis - 1000);
  runner_->RunPass();
  EXPECT_EQ(MustCall("ListSubscriptions", {})["Subscriptions"].size(), 1u);
  clock_.Advance(1001);
  runner_->RunPass();
  EXPECT_TRUE(MustCall("ListSubscriptions", {})["Subscriptions"].empty());
}

TEST(SnsRetryPolicy, PhasesAndLimits) {
  sns::RetryPolicy def;
  EXPECT_EQ(def.DelayBeforeRetry(1), 20);
  EXPECT_EQ(def.DelayBeforeRetry(3), 20);
  // The documented example: 3 immediate, 2 at 1 s, 10 exponential 1-60 s, 35 at 60 s.
  auto p = sns::RetryPolicy::FromJson(Json::parse(
      R"({"minDelayTarget":1,"maxDelayTarget":60,"numRetries":50,"numNoDelayRetries":3,"numMinDelayRetries":2,
          "numMaxDelayRetries":35,"backoffFunction":"exponential"})"));
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->DelayBeforeRetry(1), 0);
  EXPECT_EQ(p->DelayBeforeRetry(3), 0);
  EXPECT_EQ(p->DelayBeforeRetry(4), 1);
  EXPECT_EQ(p->DelayBeforeRetry(5), 1);
  int prev = 1;
  for (int r = 6; r <= 15; ++r) {
    EXPECT_GE(p->DelayBeforeRetry(r), prev);
    prev = p->DelayBeforeRetry(r);
  }
  EXPECT_EQ(p->DelayBeforeRetry(15), 60);
  EXPECT_EQ(p->DelayBeforeRetry(16), 60);
  EXPECT_EQ(p->DelayBeforeRetry(50), 60);
  EXPECT_FALSE(sns::RetryPolicy::FromJson(Json::parse(R"({"numRetries":101})")).ok());
  EXPECT_FALSE(sns::RetryPolicy::FromJson(Json::parse(R"({"minDelayTarget":30,"maxDelayTarget":20})")).ok());
  EXPECT_FALSE(sns::RetryPolicy::FromJson(Json::parse(R"({"backoffFunction":"cubic"})")).ok());
  EXPECT_FALSE(sns::RetryPolicy::FromJson(Json::parse(
      R"({"minDelayTarget":3600,"maxDelayTarget":3600,"numRetries":2})")).ok()) << "over 3,600 s in total";
  auto email = sns::EmailRetryPolicy();
  EXPECT_EQ(email.DelayBeforeRetry(1), 10);
  EXPECT_EQ(email.DelayBeforeRetry(2), 10);
  EXPECT_EQ(email.DelayBeforeRetry(12), 600);
  EXPECT_EQ(email.DelayBeforeRetry(50), 600);
}

TEST(SnsFilterPolicy, Conditions) {
  auto attrs = Json::parse(R"({"color": {"Type": "String", "Value": "red"},
                               "size": {"Type": "Number", "Value": "12"},
                               "tags": {"Type": "String.Array", "Value": "[\"a\", \"b\"]"}})");
  auto match = [&](const char* policy) {
    EXPECT_TRUE(sns::CheckFilterPolicy(policy).ok()) << policy;
    return sns::MatchesFilterPolicy(Json::parse(policy), attrs);
  };
  EXPECT_TRUE(match(R"({"color": ["red", "blue"]})"));
  EXPECT_FALSE(match(R"({"color": ["blue"]})"));
  EXPECT_TRUE(match(R"({"color": ["red"], "size": [12]})"));
  EXPECT_FALSE(match(R"({"color": ["red"], "size": [13]})")) << "every key must match";
  EXPECT_TRUE(match(R"({"size": [{"numeric": [">", 10, "<=", 12]}]})"));
  EXPECT_FALSE(match(R"({"size": [{"numeric": ["<", 10]}]})"));
  EXPECT_TRUE(match(R"({"color": [{"prefix": "r"}]})"));
  EXPECT_TRUE(match(R"({"color": [{"suffix": "ed"}]})"));
  EXPECT_TRUE(match(R"({"color": [{"equals-ignore-case": "RED"}]})"));
  EXPECT_FALSE(match(R"({"color": [{"anything-but": ["red", "blue"]}]})"));
  EXPECT_TRUE(match(R"({"color": [{"anything-but": {"prefix": "b"}}]})"));
  EXPECT_TRUE(match(R"({"tags": ["b"]})"));
  EXPECT_FALSE(match(R"({"missing": ["x"]})"));
  EXPECT_TRUE(match(R"({"missing": [{"exists": false}]})"));
  EXPECT_FALSE(match(R"({"color": [{"exists": false}]})"));
  EXPECT_FALSE(sns::CheckFilterPolicy(R"({"color": "red"})").ok());
  EXPECT_FALSE(sns::CheckFilterPolicy(R"({"size": [{"numeric": ["!=", 1]}]})").ok());
  EXPECT_FALSE(sns::CheckFilterPolicy(R"({"a": [{"wildcard": "x"}]})").ok());
}

TEST_F(SnsTest, FilterPolicySelectsWhichSubscriptionsGetAMessage) {
  const std::string arn = CreateTopic();
  const std::string sub = SubscribeHttp(arn);
  MustCall("SetSubscriptionAttributes", {{"SubscriptionArn", sub},
                                         {"AttributeName", "FilterPolicy"},
                                         {"AttributeValue", R"({"severity": ["high"]})"}});
  MustCall("Publish", {{"TopicArn", arn}, {"Message", "no attributes"}});
  MustCall("Publish", {{"TopicArn", arn},
                       {"Message", "low"},
                       {"MessageAttributes.entry.1.Name", "severity"},
                       {"MessageAttributes.entry.1.Value.DataType", "String"},
                       {"MessageAttributes.entry.1.Value.StringValue", "low"}});
  EXPECT_EQ(store_->Count(kind::kSnsDelivery), 0u) << "filtered out at publish";
  MustCall("Publish", {{"TopicArn", arn},
                       {"Message", "high"},
                       {"MessageAttributes.entry.1.Name", "severity"},
                       {"MessageAttributes.entry.1.Value.DataType", "String"},
                       {"MessageAttributes.entry.1.Value.StringValue", "high"}});
  EXPECT_EQ(store_->Count(kind::kSnsDelivery), 1u);
}

TEST(SnsSigning, CanonicalStringsFollowSnsOrder) {
  Json n = {{"Type", "Notification"}, {"MessageId", "id"}, {"TopicArn", "arn"}, {"Message", "m"}, {"Timestamp", "t"}};
  EXPECT_EQ(sns::StringToSign(n), "Message\nm\nMessageId\nid\nTimestamp\nt\nTopicArn\narn\nType\nNotification\n");
  n["Subject"] = "s";
  EXPECT_EQ(sns::StringToSign(n),
            "Message\nm\nMessageId\nid\nSubject\ns\nTimestamp\nt\nTopicArn\narn\nType\nNotification\n");
  Json c = {{"Type", "SubscriptionConfirmation"}, {"MessageId", "id"}, {"Token", "tok"}, {"TopicArn", "arn"},
            {"Message", "m"}, {"SubscribeURL", "u"}, {"Timestamp", "t"}};
  EXPECT_EQ(sns::StringToSign(c), "Message\nm\nMessageId\nid\nSubscribeURL\nu\nTimestamp\nt\nToken\ntok\nTopicArn\n"
                                  "arn\nType\nSubscriptionConfirmation\n");
}

}  // namespace
}  // namespace autopipe

#include "sns/sns_service.h"

#include <algorithm>
#include <cctype>
#include <map>
#include <mutex>
#include <cstdlib>
#include <set>

#include "api/page_token.h"
#include "common/ids.h"
#include "ec2/catalog.h"
#include "sns/signing.h"
#include "sns/sns_model.h"

namespace autopipe {
namespace {

using sns::InvalidParameter;
using sns::NotFound;

constexpr size_t kPageSize = 100;
constexpr size_t kMaxTags = 50;
constexpr size_t kMaxMessageAttributes = 10;

ServiceInfo SnsInfo() {
  ServiceInfo info("sns", "2010-03-31", "http://sns.amazonaws.com/doc/2010-03-31/", WireProtocol::kQuery);
  info.list_members = {{"Attributes", "entry"}};
  info.map_fields = {"Attributes"};
  return info;
}

const std::set<std::string>& TopicAttributeNames() {
  static const std::set<std::string> k = [] {
    std::set<std::string> names = {"DeliveryPolicy",  "DisplayName",     "Policy",
                                   "SignatureVersion", "TracingConfig",  "KmsMasterKeyId",
                                   "FifoTopic",        "ContentBasedDeduplication", "ArchivePolicy",
                                   "DataProtectionPolicy"};
    // Delivery status logging, per protocol (stored and returned; deliveries are logged to the region's log).
    for (const char* protocol : {"HTTP", "SQS", "Lambda", "Application", "Firehose"}) {
      for (const char* attribute : {"SuccessFeedbackRoleArn", "SuccessFeedbackSampleRate", "FailureFeedbackRoleArn"})
        names.insert(std::string(protocol) + attribute);
    }
    return names;
  }();
  return k;
}

const std::set<std::string>& SubscriptionAttributeNames() {
  static const std::set<std::string> k = {"DeliveryPolicy",    "FilterPolicy", "FilterPolicyScope",
                                          "RawMessageDelivery", "RedrivePolicy", "SubscriptionRoleArn",
                                          "ReplayPolicy"};
  return k;
}

Status CheckTopicAttribute(const std::string& name, const std::string& value) {
  if (!TopicAttributeNames().count(name)) return InvalidParameter("AttributeName");
  if (name.find("SuccessFeedbackSampleRate") != std::string::npos && !value.empty()) {
    const bool number = value.size() <= 3 && std::all_of(value.begin(), value.end(), ::isdigit);
    if (!number || std::stoi(value) > 100)
      return InvalidParameter("Attributes Reason: " + name + " must be an integer from 0 to 100");
  }
  if (name == "SignatureVersion" && value != "1" && value != "2") {
    return InvalidParameter("Attributes Reason: SignatureVersion must be 1 or 2");
  }
  if (name == "DisplayName" &&
      (value.size() > 100 || std::any_of(value.begin(), value.end(),
                                         [](unsigned char c) { return c < 0x20 || c == 0x7f; }))) {
    return InvalidParameter("Attributes Reason: DisplayName must be at most 100 characters, without line breaks or "
                            "control characters");
  }
  if (name == "DeliveryPolicy") return sns::CheckTopicDeliveryPolicy(value);
  if (name == "TracingConfig" && value != "Active" && value != "PassThrough") {
    return InvalidParameter("Attributes Reason: TracingConfig must be Active or PassThrough");
  }
  if ((name == "FifoTopic" || name == "ContentBasedDeduplication") && value != "true" && value != "false") {
    return InvalidParameter("Attributes Reason: " + name + " must be true or false");
  }
  if (name == "Policy") {
    Json j = Json::parse(value, nullptr, false);
    if (j.is_discarded() || !j.is_object()) return InvalidParameter("Policy Error: Invalid JSON");
  }
  return Status::Ok();
}

Status CheckSubscriptionAttribute(const std::string& name, const std::string& value) {
  if (!SubscriptionAttributeNames().count(name)) return InvalidParameter("AttributeName");
  if (name == "RawMessageDelivery" && value != "true" && value != "false") {
    return InvalidParameter("Attributes Reason: RawMessageDelivery: Invalid value [" + value +
                            "]. Must be true or false.");
  }
  if (name == "DeliveryPolicy") return sns::CheckSubscriptionDeliveryPolicy(value);
  if (name == "FilterPolicy") return sns::CheckFilterPolicy(value);
  if (name == "FilterPolicyScope" && value != "MessageAttributes" && value != "MessageBody") {
    return InvalidParameter("Attributes Reason: FilterPolicyScope must be MessageAttributes or MessageBody");
  }
  if (name == "FilterPolicyScope" && value == "MessageBody") {
    return InvalidParameter("Attributes Reason: FilterPolicyScope MessageBody is not supported by this region");
  }
  if (name == "RedrivePolicy") {
    Json j = Json::parse(value, nullptr, false);
    if (j.is_discarded() || !j.is_object()) return InvalidParameter(name + ": failed to parse JSON");
  }
  return Status::Ok();
}

std::string DefaultPolicy(const std::string& topic_arn) {
  Json policy = {
      {"Version", "2008-10-17"},
      {"Id", "__default_policy_ID"},
      {"Statement",
       Json::array({{{"Sid", "__default_statement_ID"},
                     {"Effect", "Allow"},
                     {"Principal", {{"AWS", "*"}}},
                     {"Action", Json::array({"SNS:GetTopicAttributes", "SNS:SetTopicAttributes", "SNS:AddPermission",
                                             "SNS:RemovePermission", "SNS:DeleteTopic", "SNS:Subscribe",
                                             "SNS:ListSubscriptionsByTopic", "SNS:Publish"})},
                     {"Resource", topic_arn},
                     {"Condition", {{"StringEquals", {{"AWS:SourceOwner", kAccountId}}}}}}})}};
  return policy.dump();
}

// A map result as SNS's XML has it: <Attributes><entry><key/><value/></entry>...</Attributes>.
Json MapResult(const std::vector<std::pair<std::string, std::string>>& entries) {
  Json out = Json::array();
  for (const auto& [k, v] : entries) out.push_back({{"key", k}, {"value", v}});
  return out;
}

Result<Json> ReadTags(const Params& p) {
  Json tags = Json::array();
  std::set<std::string> keys;
  for (const auto& t : p.StructList("Tags")) {
    auto k = t.find("Key");
    auto v = t.find("Value");
    if (k == t.end() || k->second.empty() || k->second.size() > 128) {
      return InvalidParameter("Tags Reason: tag keys must be 1 to 128 characters");
    }
    const std::string value = v == t.end() ? "" : v->second;
    if (value.size() > 256) return InvalidParameter("Tags Reason: tag values must be at most 256 characters");
    if (!keys.insert(k->second).second) return InvalidParameter("Tags Reason: duplicate tag key " + k->second);
    tags.push_back({{"Key", k->second}, {"Value", value}});
  }
  return tags;
}

Status TagLimit() {
  return Status(400, "TagLimitExceeded", "Could not complete request: tag quota of per resource exceeded");
}

bool ValidEmail(const std::string& e) {
  size_t at = e.find('@');
  if (at == 0 || at == std::string::npos || at != e.rfind('@') || at + 1 >= e.size()) return false;
  return std::none_of(e.begin(), e.end(), [](unsigned char c) { return std::isspace(c) || c == '<' || c == '>'; });
}

bool StartsWith(const std::string& s, const std::string& prefix) { return s.compare(0, prefix.size(), prefix) == 0; }

class SnsService {
 public:
  explicit SnsService(RegionContext* ctx) : ctx_(ctx) {}

  Result<Json> CreateTopic(const Params& p);
  Result<Json> DeleteTopic(const Params& p);
  Result<Json> ListTopics(const Params& p);
  Result<Json> GetTopicAttributes(const Params& p);
  Result<Json> SetTopicAttributes(const Params& p);
  Result<Json> Subscribe(const Params& p);
  Result<Json> ConfirmSubscription(const Params& p) { return Confirm(p, /*authenticated=*/true); }
  Result<Json> Confirm(const Params& p, bool authenticated);
  Result<Json> Unsubscribe(const Params& p) { return DoUnsubscribe(p, /*authenticated=*/true); }
  Result<Json> DoUnsubscribe(const Params& p, bool authenticated);
  Result<Json> ListSubscriptions(const Params& p) { return Subscriptions(p, std::nullopt); }
  Result<Json> ListSubscriptionsByTopic(const Params& p);
  Result<Json> GetSubscriptionAttributes(const Params& p);
  Result<Json> SetSubscriptionAttributes(const Params& p);
  Result<Json> Publish(const Params& p);
  Result<Json> PublishBatch(const Params& p);
  Result<Json> TagResource(const Params& p);
  Result<Json> UntagResource(const Params& p);
  Result<Json> ListTagsForResource(const Params& p);

 private:
  Result<Json> LoadTopic(const std::string& arn) const;
  Result<Json> LoadSubscription(const std::string& arn) const;
  Result<Json> LoadTaggable(const Params& p) const;
  Result<Json> Subscriptions(const Params& p, const std::optional<std::string>& topic_arn);
  // A SubscriptionConfirmation delivery for a pending subscription (a new token each time).
  StoreWrite ConfirmationDelivery(const Json& topic, Json& subscription);

  RegionContext* ctx_;
};

Result<Json> SnsService::LoadTopic(const std::string& arn) const {
  auto name = sns::TopicNameFromArn(*ctx_, arn);
  if (!name) return InvalidParameter("TopicArn");
  auto t = ctx_->store->Get(kind::kSnsTopic, *name);
  if (!t) return NotFound("Topic does not exist");
  return *t;
}

Result<Json> SnsService::LoadSubscription(const std::string& arn) const {
  auto ref = sns::ParseSubscriptionArn(*ctx_, arn);
  if (!ref) return InvalidParameter("SubscriptionArn");
  auto s = ctx_->store->Get(kind::kSnsSubscription, ref->id);
  if (!s || (*s)["SubscriptionArn"] != arn) return NotFound("Subscription does not exist");
  return *s;
}

Result<Json> SnsService::CreateTopic(const Params& p) {
  auto name = p.Str("Name");
  if (!name || !sns::ValidTopicName(*name)) {
    return InvalidParameter("Topic Name");
  }
  std::map<std::string, std::string> attrs;
  for (const auto& [k, v] : p.Map("Attributes")) {
    AP_RETURN_IF_ERROR(CheckTopicAttribute(k, v));
    attrs[k] = v;
  }
  const bool fifo_name = name->size() > 5 && name->compare(name->size() - 5, 5, ".fifo") == 0;
  if (fifo_name != (attrs.count("FifoTopic") && attrs["FifoTopic"] == "true")) {
    return InvalidParameter("Topic Name");  // a .fifo name needs FifoTopic=true, and FifoTopic=true a .fifo name
  }
  AP_ASSIGN_OR_RETURN(auto tags, ReadTags(p));
  if (tags.size() > kMaxTags) return TagLimit();
  const std::string arn = ctx_->Arn("sns", *name);
  if (auto existing = ctx_->store->Get(kind::kSnsTopic, *name)) {
    // Idempotent: the same name answers the same ARN, unless the call asks for something else.
    for (const auto& [k, v] : attrs) {
      if ((*existing)["Attributes"].value(k, std::string()) != v) {
        return InvalidParameter("Attributes Reason: Topic already exists with different attributes");
      }
    }
    if (!tags.empty()) {
      for (const auto& t : tags) {
        bool same = false;
        for (const auto& have : (*existing)["Tags"]) same = same || have == t;
        if (!same) return InvalidParameter("Tags Reason: Topic already exists with different tags");
      }
    }
    return Json{{"TopicArn", arn}};
  }
  Json attributes = Json::object();
  for (const auto& [k, v] : attrs) attributes[k] = v;
  Json topic = {{"Name", *name},
                {"TopicArn", arn},
                {"Attributes", attributes},
                {"Tags", tags},
                {"CreatedMillis", ctx_->clock->NowMillis()}};
  AP_RETURN_IF_ERROR(ctx_->store->Commit({{kind::kSnsTopic, *name, topic, 0}}));
  return Json{{"TopicArn", arn}};
}

Result<Json> SnsService::DeleteTopic(const Params& p) {
  auto arn = p.Str("TopicArn");
  if (!arn) return InvalidParameter("TopicArn");
  auto name = sns::TopicNameFromArn(*ctx_, *arn);
  if (!name) return InvalidParameter("TopicArn");
  if (!ctx_->store->Get(kind::kSnsTopic, *name)) return Json();  // deleting a topic that does not exist is fine
  std::vector<StoreWrite> writes = {{kind::kSnsTopic, *name, std::nullopt}};
  for (const auto& s : ctx_->store->List(kind::kSnsSubscription)) {
    if ((*s)["TopicArn"] == *arn) {
      const std::string sub_arn = (*s)["SubscriptionArn"];
      writes.push_back({kind::kSnsSubscription, sub_arn.substr(sub_arn.rfind(':') + 1), std::nullopt});
    }
  }
  AP_RETURN_IF_ERROR(ctx_->store->Commit(writes));
  return Json();
}

// The page of `all` a NextToken asks for, with the next NextToken.
Result<Json> Page(const Params& p, const std::string& scope, const std::string& field, Json all) {
  size_t offset = 0;
  if (auto token = p.Str("NextToken"); token && !token->empty()) {
    auto o = DecodePageToken(scope, *token);
    if (!o || *o > all.size()) return InvalidParameter("NextToken");
    offset = *o;
  }
  Json page = Json::array();
  for (size_t i = offset; i < all.size() && page.size() < kPageSize; ++i) page.push_back(std::move(all[i]));
  Json out = {{field, std::move(page)}};
  if (offset + kPageSize < all.size()) out["NextToken"] = EncodePageToken(scope, offset + kPageSize);
  return out;
}

Result<Json> SnsService::ListTopics(const Params& p) {
  Json all = Json::array();
  for (const auto& t : ctx_->store->List(kind::kSnsTopic)) all.push_back({{"TopicArn", (*t)["TopicArn"]}});
  return Page(p, "Topics", "Topics", std::move(all));
}

Result<Json> SnsService::GetTopicAttributes(const Params& p) {
  auto arn = p.Str("TopicArn");
  if (!arn) return InvalidParameter("TopicArn");
  AP_ASSIGN_OR_RETURN(auto topic, LoadTopic(*arn));
  int pending = 0, confirmed = 0;
  for (const auto& s : ctx_->store->List(kind::kSnsSubscription)) {
    if ((*s)["TopicArn"] != *arn) continue;
    ((*s)["Status"] == sns::kConfirmed ? confirmed : pending)++;
  }
  const Json& a = topic["Attributes"];
  std::vector<std::pair<std::string, std::string>> out = {
      {"Policy", a.value("Policy", DefaultPolicy(*arn))},
      {"Owner", kAccountId},
      {"SubscriptionsPending", std::to_string(pending)},
      {"TopicArn", *arn},
      {"EffectiveDeliveryPolicy", sns::EffectiveTopicDeliveryPolicy(topic)},
      {"SubscriptionsConfirmed", std::to_string(confirmed)},
      {"DisplayName", a.value("DisplayName", "")},
      {"SubscriptionsDeleted", "0"},
  };
  for (const auto& [k, v] : a.items()) {
    if (k != "Policy" && k != "DisplayName") out.emplace_back(k, v.get<std::string>());
  }
  return Json{{"Attributes", MapResult(out)}};
}

Result<Json> SnsService::SetTopicAttributes(const Params& p) {
  auto arn = p.Str("TopicArn");
  if (!arn) return InvalidParameter("TopicArn");
  auto name = p.Str("AttributeName");
  if (!name) return InvalidParameter("AttributeName");
  const std::string value = p.Str("AttributeValue").value_or("");
  AP_ASSIGN_OR_RETURN(auto topic, LoadTopic(*arn));
  if (*name == "FifoTopic") return InvalidParameter("AttributeName");  // fixed at creation
  AP_RETURN_IF_ERROR(CheckTopicAttribute(*name, value));
  if (value.empty() && *name != "DisplayName") {
    topic["Attributes"].erase(*name);
  } else {
    topic["Attributes"][*name] = value;
  }
  AP_RETURN_IF_ERROR(ctx_->store->Commit({{kind::kSnsTopic, topic["Name"], topic}}));
  return Json();
}

StoreWrite SnsService::ConfirmationDelivery(const Json& topic, Json& sub) {
  sub["Token"] = RandomHex(128);
  sub["TokenMillis"] = ctx_->clock->NowMillis();
  Json d = sns::NewDelivery(*ctx_, topic, sub, "SubscriptionConfirmation");
  d["Token"] = sub["Token"];
  d["Message"] = "You have chosen to subscribe to the topic " + topic["TopicArn"].get<std::string>() +
                 ".\nTo confirm the subscription, visit the SubscribeURL included in this message.";
  return {kind::kSnsDelivery, sns::NewDeliveryId(ctx_->clock->NowMillis()), std::move(d)};
}

Result<Json> SnsService::Subscribe(const Params& p) {
  auto arn = p.Str("TopicArn");
  if (!arn) return InvalidParameter("TopicArn");
  auto protocol_in = p.Str("Protocol");
  if (!protocol_in) return InvalidParameter("Protocol");
  std::string protocol = *protocol_in;
  std::transform(protocol.begin(), protocol.end(), protocol.begin(), [](unsigned char c) { return std::tolower(c); });
  if (!sns::IsKnownProtocol(protocol)) {
    return InvalidParameter("Amazon SNS does not support this protocol string: " + *protocol_in);
  }
  if (!sns::IsDeliverableProtocol(protocol)) {
    return InvalidParameter("Protocol Reason: this region delivers to http, https, email and email-json endpoints "
                            "only, not " + protocol);
  }
  const std::string endpoint = p.Str("Endpoint").value_or("");
  if (protocol == "http" && !StartsWith(endpoint, "http://")) {
    return InvalidParameter("Invalid endpoint: the http protocol needs an http:// URL");
  }
  if (protocol == "https" && !StartsWith(endpoint, "https://")) {
    return InvalidParameter("Invalid endpoint: the https protocol needs an https:// URL");
  }
  if ((protocol == "email" || protocol == "email-json") && !ValidEmail(endpoint)) {
    return InvalidParameter("Email address");
  }
  Json attributes = Json::object();
  for (const auto& [k, v] : p.Map("Attributes")) {
    AP_RETURN_IF_ERROR(CheckSubscriptionAttribute(k, v));
    attributes[k] = v;
  }
  AP_ASSIGN_OR_RETURN(auto return_arn, p.Bool("ReturnSubscriptionArn"));
  AP_ASSIGN_OR_RETURN(auto topic, LoadTopic(*arn));

  for (const auto& s : ctx_->store->List(kind::kSnsSubscription)) {
    if ((*s)["TopicArn"] != *arn || (*s)["Protocol"] != protocol || (*s)["Endpoint"] != endpoint) continue;
    // The same subscription again: its ARN; a pending one gets its confirmation again.
    if ((*s)["Status"] == sns::kConfirmed) return Json{{"SubscriptionArn", (*s)["SubscriptionArn"]}};
    Json sub = *s;
    const std::string id = sub["SubscriptionArn"].get<std::string>().substr(arn->size() + 1);
    StoreWrite d = ConfirmationDelivery(topic, sub);
    AP_RETURN_IF_ERROR(ctx_->store->Commit({{kind::kSnsSubscription, id, sub}, std::move(d)}));
    return Json{{"SubscriptionArn", return_arn.value_or(false) ? sub["SubscriptionArn"].get<std::string>()
                                                                : std::string("pending confirmation")}};
  }
  const std::string id = NewUuid();
  Json sub = {{"SubscriptionArn", *arn + ":" + id},
              {"TopicArn", *arn},
              {"Protocol", protocol},
              {"Endpoint", endpoint},
              {"Owner", kAccountId},
              {"Status", sns::kPendingConfirmation},
              {"ConfirmationWasAuthenticated", false},
              {"Attributes", attributes},
              {"CreatedMillis", ctx_->clock->NowMillis()}};
  StoreWrite d = ConfirmationDelivery(topic, sub);
  AP_RETURN_IF_ERROR(ctx_->store->Commit({{kind::kSnsSubscription, id, sub, 0}, std::move(d)}));
  return Json{{"SubscriptionArn", return_arn.value_or(false) ? sub["SubscriptionArn"].get<std::string>()
                                                              : std::string("pending confirmation")}};
}

Result<Json> SnsService::Confirm(const Params& p, bool authenticated) {
  auto arn = p.Str("TopicArn");
  if (!arn) return InvalidParameter("TopicArn");
  auto token = p.Str("Token");
  if (!token || token->empty()) return InvalidParameter("Token");
  AP_ASSIGN_OR_RETURN(auto topic, LoadTopic(*arn));
  AP_ASSIGN_OR_RETURN(auto auth_unsub, p.Bool("AuthenticateOnUnsubscribe"));
  for (const auto& s : ctx_->store->List(kind::kSnsSubscription)) {
    if ((*s)["TopicArn"] != *arn || (*s).value("Token", "") != *token) continue;
    if ((*s)["Status"] == sns::kConfirmed) return Json{{"SubscriptionArn", (*s)["SubscriptionArn"]}};
    if (ctx_->clock->NowMillis() - (*s).value("TokenMillis", int64_t{0}) > sns::kTokenLifetimeMillis) {
      return InvalidParameter("Token Reason: the token has expired");
    }
    Json sub = *s;
    sub["Status"] = sns::kConfirmed;
    sub["ConfirmationWasAuthenticated"] = authenticated;
    sub["AuthenticateOnUnsubscribe"] = authenticated && auth_unsub.value_or(false);
    const std::string sub_arn = sub["SubscriptionArn"];
    AP_RETURN_IF_ERROR(ctx_->store->Commit({{kind::kSnsSubscription, sub_arn.substr(arn->size() + 1), sub}}));
    return Json{{"SubscriptionArn", sub_arn}};
  }
  return InvalidParameter("Invalid token");
}

Result<Json> SnsService::DoUnsubscribe(const Params& p, bool authenticated) {
  auto arn = p.Str("SubscriptionArn");
  if (!arn) return InvalidParameter("SubscriptionArn");
  AP_ASSIGN_OR_RETURN(auto sub, LoadSubscription(*arn));
  if (!authenticated && sub.value("AuthenticateOnUnsubscribe", false)) {
    return Status(403, "AuthorizationError", "Only the subscription owner can unsubscribe it (signed request)");
  }
  auto ref = sns::ParseSubscriptionArn(*ctx_, *arn);
  std::vector<StoreWrite> writes = {{kind::kSnsSubscription, ref->id, std::nullopt}};
  const std::string protocol = sub["Protocol"];
  if ((protocol == "http" || protocol == "https") && sub["Status"] == sns::kConfirmed) {
    if (auto topic = ctx_->store->Get(kind::kSnsTopic, ref->topic_name)) {
      Json d = sns::NewDelivery(*ctx_, *topic, sub, "UnsubscribeConfirmation");
      d["Token"] = RandomHex(128);
      d["Message"] = "You have chosen to deactivate subscription " + *arn +
                     ".\nTo cancel this operation and restore the subscription, visit the SubscribeURL included in "
                     "this message.";
      writes.push_back({kind::kSnsDelivery, sns::NewDeliveryId(ctx_->clock->NowMillis()), std::move(d)});
    }
  }
  AP_RETURN_IF_ERROR(ctx_->store->Commit(writes));
  return Json();
}

Result<Json> SnsService::Subscriptions(const Params& p, const std::optional<std::string>& topic_arn) {
  Json all = Json::array();
  for (const auto& s : ctx_->store->List(kind::kSnsSubscription)) {
    if (topic_arn && (*s)["TopicArn"] != *topic_arn) continue;
    const bool confirmed = (*s)["Status"] == sns::kConfirmed;
    all.push_back({{"SubscriptionArn", confirmed ? (*s)["SubscriptionArn"] : Json(sns::kPendingConfirmation)},
                   {"Owner", (*s)["Owner"]},
                   {"Protocol", (*s)["Protocol"]},
                   {"Endpoint", (*s)["Endpoint"]},
                   {"TopicArn", (*s)["TopicArn"]}});
  }
  return Page(p, topic_arn ? "SubscriptionsByTopic:" + *topic_arn : "Subscriptions", "Subscriptions",
              std::move(all));
}

Result<Json> SnsService::ListSubscriptionsByTopic(const Params& p) {
  auto arn = p.Str("TopicArn");
  if (!arn) return InvalidParameter("TopicArn");
  AP_RETURN_IF_ERROR(LoadTopic(*arn).status());
  return Subscriptions(p, *arn);
}

Result<Json> SnsService::GetSubscriptionAttributes(const Params& p) {
  auto arn = p.Str("SubscriptionArn");
  if (!arn) return InvalidParameter("SubscriptionArn");
  AP_ASSIGN_OR_RETURN(auto sub, LoadSubscription(*arn));
  auto topic = ctx_->store->Get(kind::kSnsTopic, sns::ParseSubscriptionArn(*ctx_, *arn)->topic_name);
  Json effective = {{"healthyRetryPolicy", sns::PolicyFor(topic.value_or(Json::object()), sub).ToJson()}};
  std::vector<std::pair<std::string, std::string>> out = {
      {"Owner", kAccountId},
      {"RawMessageDelivery", sub["Attributes"].value("RawMessageDelivery", "false")},
      {"TopicArn", sub["TopicArn"]},
      {"Endpoint", sub["Endpoint"]},
      {"Protocol", sub["Protocol"]},
      {"PendingConfirmation", sub["Status"] == sns::kConfirmed ? "false" : "true"},
      {"ConfirmationWasAuthenticated", sub.value("ConfirmationWasAuthenticated", false) ? "true" : "false"},
      {"SubscriptionArn", *arn},
      {"EffectiveDeliveryPolicy", effective.dump()},
  };
  for (const auto& [k, v] : sub["Attributes"].items()) {
    if (k != "RawMessageDelivery") out.emplace_back(k, v.get<std::string>());
  }
  return Json{{"Attributes", MapResult(out)}};
}

Result<Json> SnsService::SetSubscriptionAttributes(const Params& p) {
  auto arn = p.Str("SubscriptionArn");
  if (!arn) return InvalidParameter("SubscriptionArn");
  auto name = p.Str("AttributeName");
  if (!name) return InvalidParameter("AttributeName");
  const std::string value = p.Str("AttributeValue").value_or("");
  AP_ASSIGN_OR_RETURN(auto sub, LoadSubscription(*arn));
  AP_RETURN_IF_ERROR(CheckSubscriptionAttribute(*name, value));
  if (value.empty()) {
    sub["Attributes"].erase(*name);
  } else {
    sub["Attributes"][*name] = value;
  }
  AP_RETURN_IF_ERROR(ctx_->store->Commit({{kind::kSnsSubscription, sns::ParseSubscriptionArn(*ctx_, *arn)->id, sub}}));
  return Json();
}

// MessageAttributes.entry.N.{Name, Value.DataType, Value.StringValue, Value.BinaryValue} -> {name: {Type, Value}}.
Result<Json> ReadMessageAttributes(const Params& p) {
  Json out = Json::object();
  auto entries = p.StructList("MessageAttributes", "entry");
  if (entries.size() > kMaxMessageAttributes) {
    return Status(400, "ParameterValueInvalid", "Number of message attributes [" + std::to_string(entries.size()) +
                                                    "] exceeds the allowed maximum [10].");
  }
  for (const auto& e : entries) {
    auto get = [&](const char* k) {
      auto it = e.find(k);
      return it == e.end() ? std::optional<std::string>() : std::optional<std::string>(it->second);
    };
    const std::string name = get("Name").value_or("");
    if (name.empty() || name.size() > 256 || StartsWith(name, "AWS.") || StartsWith(name, "Amazon.") ||
        name.find("..") != std::string::npos || name.front() == '.' || name.back() == '.' ||
        !std::all_of(name.begin(), name.end(),
                     [](unsigned char c) { return std::isalnum(c) || c == '_' || c == '-' || c == '.'; })) {
      return Status(400, "ParameterValueInvalid", "The message attribute name '" + name + "' is invalid.");
    }
    const std::string type = get("Value.DataType").value_or("");
    std::string base = type.substr(0, type.find('.'));
    if (base != "String" && base != "Number" && base != "Binary") {
      return Status(400, "ParameterValueInvalid",
                    "The message attribute '" + name + "' has an invalid message attribute type, the set of "
                    "supported type prefixes is Binary, Number, and String.");
    }
    std::optional<std::string> value = base == "Binary" ? get("Value.BinaryValue") : get("Value.StringValue");
    if (!value || value->empty()) {
      return Status(400, "ParameterValueInvalid",
                    "The message attribute '" + name + "' must contain non-empty message attribute value for "
                    "message attribute type '" + type + "'.");
    }
    if (base == "Number") {
      char* end = nullptr;
      std::strtod(value->c_str(), &end);
      if (end == value->c_str() || *end != '\0') {
        return Status(400, "ParameterValueInvalid", "Could not cast message attribute '" + name +
                                                        "' value to number.");
      }
    }
    if (out.contains(name)) {
      return Status(400, "ParameterValueInvalid", "The message attribute '" + name + "' is given twice.");
    }
    out[name] = {{"Type", type}, {"Value", *value}};
  }
  return out;
}

// The message fields of a Publish or of one PublishBatch entry.
Status ReadMessage(const Params& p, sns::PublishRequest& req) {
  auto message = p.Str("Message");
  if (!message) return InvalidParameter("Message Reason: no value for required parameter");
  req.message = *message;
  if (auto subject = p.Str("Subject")) {
    const bool printable = std::all_of(subject->begin(), subject->end(), [](unsigned char c) {
      return c >= 0x20 && c < 0x7f;
    });
    const bool starts_well = !subject->empty() && (std::isalnum(static_cast<unsigned char>((*subject)[0])) ||
                                                   std::ispunct(static_cast<unsigned char>((*subject)[0])));
    if (subject->size() >= 100 || !printable || !starts_well) {
      return InvalidParameter("Subject");
    }
    req.subject = *subject;
  }
  if (auto structure = p.Str("MessageStructure")) {
    if (*structure != "json") return InvalidParameter("MessageStructure");
    req.message_structure_json = true;
  }
  AP_ASSIGN_OR_RETURN(req.message_attributes, ReadMessageAttributes(p));
  return Status::Ok();
}

Result<Json> SnsService::Publish(const Params& p) {
  sns::PublishRequest req;
  auto topic = p.Str("TopicArn");
  auto target = p.Str("TargetArn");
  if (p.Has("PhoneNumber")) return InvalidParameter("PhoneNumber Reason: this region does not send SMS");
  if (!topic && !target) return InvalidParameter("TopicArn or TargetArn Reason: no value for required parameter");
  if (topic && target) return InvalidParameter("TopicArn Reason: Only one of TopicArn or TargetArn may be given");
  req.topic_arn = topic ? *topic : *target;
  AP_RETURN_IF_ERROR(ReadMessage(p, req));
  AP_ASSIGN_OR_RETURN(auto id, sns::RecordPublish(ctx_, req));
  return Json{{"MessageId", id}};
}

Result<Json> SnsService::PublishBatch(const Params& p) {
  auto topic = p.Str("TopicArn");
  if (!topic) return InvalidParameter("TopicArn");
  AP_RETURN_IF_ERROR(LoadTopic(*topic).status());
  auto entries = p.StructList("PublishBatchRequestEntries");
  if (entries.empty()) {
    return Status(400, "EmptyBatchRequest", "The batch request doesn't contain any entries.");
  }
  if (entries.size() > 10) {
    return Status(400, "TooManyEntriesInBatchRequest", "The batch request contains more entries than permissible.");
  }
  std::set<std::string> ids;
  size_t total = 0;
  for (const auto& e : entries) {
    auto id = e.find("Id");
    if (id == e.end() || id->second.empty() || id->second.size() > 80 ||
        !std::all_of(id->second.begin(), id->second.end(),
                     [](unsigned char c) { return std::isalnum(c) || c == '-' || c == '_'; })) {
      return Status(400, "InvalidBatchEntryId", "A batch entry id can only contain alphanumeric characters, "
                                                "hyphens and underscores. It can be at most 80 letters long.");
    }
    if (!ids.insert(id->second).second) {
      return Status(400, "BatchEntryIdsNotDistinct", "Two or more batch entries in the request have the same Id.");
    }
    if (auto m = e.find("Message"); m != e.end()) total += m->second.size();
  }
  if (total > sns::kMaxMessageBytes) {
    return Status(400, "BatchRequestTooLong", "The length of all the messages put together is more than the limit.");
  }
  Json successful = Json::array(), failed = Json::array();
  for (const auto& e : entries) {
    const Params entry(e, WireProtocol::kQuery);
    sns::PublishRequest req;
    req.topic_arn = *topic;
    Status st = ReadMessage(entry, req);
    Result<std::string> id = st.ok() ? sns::RecordPublish(ctx_, req) : Result<std::string>(st);
    if (id.ok()) {
      successful.push_back({{"Id", e.at("Id")}, {"MessageId", *id}});
    } else {
      failed.push_back({{"Id", e.at("Id")},
                        {"Code", id.status().code()},
                        {"Message", id.status().message()},
                        {"SenderFault", id.status().sender_fault()}});
    }
  }
  return Json{{"Successful", successful}, {"Failed", failed}};
}

Result<Json> SnsService::LoadTaggable(const Params& p) const {
  auto arn = p.Str("ResourceArn");
  if (!arn) return InvalidParameter("ResourceArn");
  auto name = sns::TopicNameFromArn(*ctx_, *arn);
  if (!name) return InvalidParameter("ResourceArn");
  auto t = ctx_->store->Get(kind::kSnsTopic, *name);
  if (!t) return Status(404, "ResourceNotFound", "Resource does not exist");
  return *t;
}

Result<Json> SnsService::TagResource(const Params& p) {
  AP_ASSIGN_OR_RETURN(auto topic, LoadTaggable(p));
  AP_ASSIGN_OR_RETURN(auto tags, ReadTags(p));
  for (const auto& t : tags) {
    bool replaced = false;
    for (auto& have : topic["Tags"]) {
      if (have["Key"] == t["Key"]) {
        have["Value"] = t["Value"];
        replaced = true;
      }
    }
    if (!replaced) topic["Tags"].push_back(t);
  }
  if (topic["Tags"].size() > kMaxTags) return TagLimit();
  AP_RETURN_IF_ERROR(ctx_->store->Commit({{kind::kSnsTopic, topic["Name"], topic}}));
  return Json::object();
}

Result<Json> SnsService::UntagResource(const Params& p) {
  AP_ASSIGN_OR_RETURN(auto topic, LoadTaggable(p));
  std::set<std::string> drop;
  for (const auto& k : p.List("TagKeys")) drop.insert(k);
  Json kept = Json::array();
  for (const auto& t : topic["Tags"]) {
    if (!drop.count(t["Key"].get<std::string>())) kept.push_back(t);
  }
  topic["Tags"] = kept;
  AP_RETURN_IF_ERROR(ctx_->store->Commit({{kind::kSnsTopic, topic["Name"], topic}}));
  return Json::object();
}

Result<Json> SnsService::ListTagsForResource(const Params& p) {
  AP_ASSIGN_OR_RETURN(auto topic, LoadTaggable(p));
  return Json{{"Tags", topic["Tags"]}};
}

// One SnsService per region context, shared by the API and the public handler.
std::shared_ptr<SnsService> ServiceFor(RegionContext* ctx) {
  static std::mutex mu;
  static std::map<RegionContext*, std::shared_ptr<SnsService>> services;
  std::lock_guard lock(mu);
  auto& s = services[ctx];
  if (!s) s = std::make_shared<SnsService>(ctx);
  return s;
}

std::string PathOf(const std::string& target) { return target.substr(0, target.find('?')); }

}  // namespace

ApiService SnsApi(RegionContext* ctx) {
  auto svc = ServiceFor(ctx);
  using Method = Result<Json> (SnsService::*)(const Params&);
  auto op = [svc](const char* name, Access access, Method m, std::vector<ListLimit> limits = {}) {
    return Operation{name, access, [svc, m](const Params& p) { return ((*svc).*m)(p); }, std::move(limits)};
  };
  const ListLimit kTags{"Tags", kMaxTags, "member", [](size_t) { return TagLimit(); }};
  ApiService api;
  api.info = SnsInfo();
  api.operations = {
      op("CreateTopic", Access::kWrite, &SnsService::CreateTopic, {kTags, {"Attributes", 20, "entry"}}),
      op("DeleteTopic", Access::kWrite, &SnsService::DeleteTopic),
      op("ListTopics", Access::kRead, &SnsService::ListTopics),
      op("GetTopicAttributes", Access::kRead, &SnsService::GetTopicAttributes),
      op("SetTopicAttributes", Access::kWrite, &SnsService::SetTopicAttributes),
      op("Subscribe", Access::kWrite, &SnsService::Subscribe, {{"Attributes", 20, "entry"}}),
      op("ConfirmSubscription", Access::kWrite, &SnsService::ConfirmSubscription),
      op("Unsubscribe", Access::kWrite, &SnsService::Unsubscribe),
      op("ListSubscriptions", Access::kRead, &SnsService::ListSubscriptions),
      op("ListSubscriptionsByTopic", Access::kRead, &SnsService::ListSubscriptionsByTopic),
      op("GetSubscriptionAttributes", Access::kRead, &SnsService::GetSubscriptionAttributes),
      op("SetSubscriptionAttributes", Access::kWrite, &SnsService::SetSubscriptionAttributes),
      op("Publish", Access::kWrite, &SnsService::Publish, {{"MessageAttributes", 100, "entry"}}),
      op("PublishBatch", Access::kWrite, &SnsService::PublishBatch, {{"PublishBatchRequestEntries", 100}}),
      op("TagResource", Access::kWrite, &SnsService::TagResource, {kTags}),
      op("UntagResource", Access::kWrite, &SnsService::UntagResource, {{"TagKeys", kMaxTags}}),
      op("ListTagsForResource", Access::kRead, &SnsService::ListTagsForResource),
  };
  api.write_lock = ctx->mu;
  api.after_write = [ctx] {
    if (ctx->wake) ctx->wake();
  };
  return api;
}

std::optional<HttpReply> SnsPublicHandler(RegionContext* ctx, const SigV4Request& request) {
  if (request.method != "GET" && request.method != "HEAD") return std::nullopt;
  const std::string path = PathOf(request.target);
  const ServiceInfo info = SnsInfo();
  if (StartsWith(path, "/SimpleNotificationService-")) {
    const sns::SnsSigner* signer = sns::SignerFor(ctx->data_dir, ctx->catalog->region());
    if (!signer || path != signer->cert_path()) return std::nullopt;
    HttpReply reply;
    reply.content_type = "application/x-x509-ca-cert";
    reply.body = signer->cert_pem();
    return reply;
  }
  if (path != "/") return std::nullopt;
  const size_t q = request.target.find('?');
  auto params = ParseForm(q == std::string::npos ? "" : request.target.substr(q + 1));
  if (!params) return std::nullopt;
  auto action = params->find("Action");
  if (action == params->end() || (action->second != "ConfirmSubscription" && action->second != "Unsubscribe")) {
    return std::nullopt;
  }
  ApiRequest req;
  req.service = "sns";
  req.action = action->second;
  req.request_id = NewUuid();
  auto svc = ServiceFor(ctx);
  const Params p(*params, WireProtocol::kQuery);
  Result<Json> result = [&]() -> Result<Json> {
    if (Status text = CheckParameterText(*params); !text.ok()) return text;
    std::lock_guard lock(*ctx->mu);
    return req.action == "ConfirmSubscription" ? svc->Confirm(p, /*authenticated=*/false)
                                               : svc->DoUnsubscribe(p, /*authenticated=*/false);
  }();
  if (!result.ok()) return RenderError(&info, WireProtocol::kQuery, req.request_id, result.status());
  return RenderResult(info, req, *result);
}

}  // namespace autopipe

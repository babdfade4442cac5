// SNS's documents and the rules the API, the alarm action and the delivery worker share: topic and subscription
// ARNs, topic names, delivery policies (SNS's retry phases), the documents a publish records and the region
// display names alarm notifications quote.
//
// Documents (store kinds owned by the sns module):
//   sns_topic         id = topic name: {Name, TopicArn, Attributes{name: value}, Tags[{Key, Value}], CreatedMillis}
//   sns_subscription  id = the subscription's uuid: {SubscriptionArn, TopicArn, Protocol, Endpoint, Owner,
//                     Status: "PendingConfirmation"|"Confirmed", Token, TokenMillis, Attributes{}, CreatedMillis}
//   sns_delivery      id = <zero-padded creation millis>-<uuid> (so ids sort by age): one message to one
//                     endpoint, recorded in the same commit as the Publish (or Subscribe) that caused it, before
//                     any attempt, so a server killed at any moment loses nothing it acknowledged. {Type
//                     ("Notification", "SubscriptionConfirmation", "UnsubscribeConfirmation"), MessageId, TopicArn,
//                     SubscriptionArn, Protocol, Endpoint, Subject?, Message, Timestamp (ISO, millis), Token?,
//                     MessageAttributes?, Raw, SignatureVersion, Policy (RetryPolicy as JSON), Attempts,
//                     NextAttemptMillis, CreatedMillis}. The body is built and signed at each attempt (with the
//                     endpoint the region serves at then); MessageId and Timestamp never change across retries.
//
// Thread-safety: pure functions and value types; the Record* functions read and write the store and must be
// called with RegionContext::mu held.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "region/context.h"

namespace autopipe {

namespace kind {
inline constexpr char kSnsTopic[] = "sns_topic";
inline constexpr char kSnsSubscription[] = "sns_subscription";
inline constexpr char kSnsDelivery[] = "sns_delivery";
}  // namespace kind

namespace sns {

inline constexpr char kPendingConfirmation[] = "PendingConfirmation";
inline constexpr char kConfirmed[] = "Confirmed";
inline constexpr size_t kMaxMessageBytes = 262144;
inline constexpr int64_t kTokenLifetimeMillis = 2LL * 24 * 3600 * 1000;
inline constexpr int64_t kPendingLifetimeMillis = 3LL * 24 * 3600 * 1000;

// SNS's errors.
Status InvalidParameter(const std::string& detail);  // 400 InvalidParameter "Invalid parameter: <detail>"
Status NotFound(const std::string& message);         // 404 NotFound

// 1-256 characters of [A-Za-z0-9_-], or such a name ending in ".fifo".
bool ValidTopicName(const std::string& name);

// "arn:aws:sns:<region>:<account>:<name>" of this region and account -> the topic name.
std::optional<std::string> TopicNameFromArn(const RegionContext& ctx, const std::string& arn);
// "<topic arn>:<uuid>" -> the subscription id (the uuid) and topic name.
struct SubscriptionRef {
  std::string topic_name;
  std::string id;
};
std::optional<SubscriptionRef> ParseSubscriptionArn(const RegionContext& ctx, const std::string& arn);

// The protocols this region delivers to.
bool IsDeliverableProtocol(const std::string& protocol);  // http, https, email, email-json
bool IsKnownProtocol(const std::string& protocol);        // every protocol SNS names

// ---- delivery policies ------------------------------------------------------------------------------------------
// One healthyRetryPolicy. Retry r (1-based, r <= num_retries) waits DelayBeforeRetry(r) seconds after the attempt
// before it: the no-delay phase (0 s), the pre-backoff phase (min_delay), the backoff phase (from min_delay
// towards max_delay by backoff_function) and the post-backoff phase (max_delay), in that order.
struct RetryPolicy {
  int min_delay = 20;
  int max_delay = 20;
  int num_retries = 3;
  int num_no_delay = 0;
  int num_min_delay = 0;
  int num_max_delay = 0;
  std::string backoff = "linear";  // linear, arithmetic, geometric, exponential

  int DelayBeforeRetry(int retry) const;
  Json ToJson() const;
  // Reads a healthyRetryPolicy object over `base` (missing fields keep base's values) and checks SNS's limits.
  static Result<RetryPolicy> FromJson(const Json& j, RetryPolicy base);
  static Result<RetryPolicy> FromJson(const Json& j);
};

// SNS's fixed policy for email (SMTP): 2 retries at 10 s, 10 backing off from 10 to 600 s, 38 at 600 s.
RetryPolicy EmailRetryPolicy();

// Validates a topic's DeliveryPolicy attribute ({"http": {"defaultHealthyRetryPolicy": {...},
// "disableSubscriptionOverrides": bool, ...}}) or a subscription's ({"healthyRetryPolicy": {...}}).
Status CheckTopicDeliveryPolicy(const std::string& text);
Status CheckSubscriptionDeliveryPolicy(const std::string& text);
// The topic's EffectiveDeliveryPolicy attribute.
std::string EffectiveTopicDeliveryPolicy(const Json& topic);
// The policy a delivery to `subscription` of `topic` follows.
RetryPolicy PolicyFor(const Json& topic, const Json& subscription);

// ---- filter policies ------------------------------------------------------------------------------------------
// A subscription's FilterPolicy (scope MessageAttributes): {"attr": [condition, ...], ...}. A message passes when
// every named attribute satisfies at least one of its conditions: a string (equal to a String attribute, or to an
// element of a String.Array), a number (numerically equal to a Number attribute), {"prefix": s}, {"suffix": s},
// {"equals-ignore-case": s}, {"anything-but": value | [values] | {"prefix": s}}, {"numeric": [op, n(, op, n)]}
// with op one of = < <= > >=, or {"exists": bool}. A missing attribute satisfies only {"exists": false}.
Status CheckFilterPolicy(const std::string& text);
bool MatchesFilterPolicy(const Json& policy, const Json& message_attributes);

// ---- recording deliveries -------------------------------------------------------------------------------------
// A new sns_delivery document (not yet written) for `subscription`.
Json NewDelivery(const RegionContext& ctx, const Json& topic, const Json& subscription, const std::string& type);
std::string NewDeliveryId(int64_t now_millis);

// What one Publish carries.
struct PublishRequest {
  std::string topic_arn;
  std::optional<std::string> subject;
  std::string message;
  bool message_structure_json = false;  // message is {"default": ..., "<protocol>": ...}
  Json message_attributes = Json::object();  // name -> {"Type", "Value"} as the notification shows them
};

// Validates the message (size, JSON structure), then records one Notification delivery per confirmed
// subscription of the topic, in one commit. Returns the MessageId. Call with RegionContext::mu held.
Result<std::string> RecordPublish(RegionContext* ctx, const PublishRequest& req);

// "US West (Oregon)" for us-west-2, as CloudWatch names regions in alarm notifications; the code itself when the
// region has no name here.
std::string RegionDisplayName(const std::string& region);

// 2023-03-08T00:46:32.006+0000 (CloudWatch's alarm notification timestamps).
std::string AlarmTime(int64_t epoch_millis);

}  // namespace sns
}  // namespace autopipe

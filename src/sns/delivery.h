// SNS delivery: what a recorded sns_delivery (sns_model.h) becomes on the wire, how it is sent, and the
// controller that sends it.
//
//  - BuildHttp: the POST an http/https endpoint gets (SNS's x-amz-sns-* headers, its JSON body signed with the
//    region's key, or the bare message for RawMessageDelivery).
//  - BuildMail: the email an email or email-json endpoint gets (the confirmation link, the message with its
//    unsubscribe link, or the signed JSON).
//  - DeliveryTransport: sends them; CurlTransport uses libcurl (HTTP with SNS's 15-second timeout; SMTP through
//    the region's relay, RegionContext::smtp_relay).
//  - DeliveryController: one key per sns_delivery document. Reconcile never sends anything itself (it would hold
//    up the controller runtime and the region's start-up passes): a due delivery is handed to the controller's
//    own sender threads and Reconcile returns. A sender attempts it without any lock, then commits the outcome
//    under RegionContext::mu with expect_revision: success deletes the document; failure counts the attempt and
//    sets NextAttemptMillis by the delivery's retry policy, or deletes the document (logged as dropped) once the
//    policy is spent. A Notification or SubscriptionConfirmation whose subscription is gone is dropped
//    unsent.
//
// Thread-safety: BuildHttp/BuildMail are pure; transports must be thread-safe (CurlTransport is); the controller
// follows region/controller.h and may be destroyed while senders run (it stops and joins them).
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "region/context.h"
#include "region/controller.h"
#include "region/module.h"
#include "sns/signing.h"
#include "sns/sns_model.h"

namespace autopipe::sns {

struct OutgoingHttp {
  std::string url;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
};

struct OutgoingMail {
  std::string from;  // "AWS Notifications <no-reply@sns.amazonaws.com>"
  std::string to;
  std::string subject;
  std::string body;
};

// SubscribeURL, UnsubscribeURL and SigningCertURL as served by the region at `endpoint`.
std::string SubscribeUrl(const std::string& endpoint, const std::string& topic_arn, const std::string& token);
std::string UnsubscribeUrl(const std::string& endpoint, const std::string& subscription_arn);

// The signed JSON body of a delivery (also email-json's mail body).
Result<std::string> SignedJsonBody(const Json& delivery, const SnsSigner& signer, const std::string& endpoint);
Result<OutgoingHttp> BuildHttp(const Json& delivery, const SnsSigner& signer, const std::string& endpoint);
Result<OutgoingMail> BuildMail(const Json& delivery, const SnsSigner& signer, const std::string& endpoint);

// CloudWatch's alarm notification for an alarm state change: {subject, JSON message}.
std::pair<std::string, std::string> AlarmNotification(const RegionContext& ctx, const AlarmStateChange& change);

class DeliveryTransport {
 public:
  virtual ~DeliveryTransport() = default;
  // The HTTP status the endpoint answered, or an error (connection refused, timeout).
  virtual Result<int> Post(const OutgoingHttp& request) = 0;
  // OK once the relay accepted the mail.
  virtual Status Mail(const std::string& relay, const OutgoingMail& mail) = 0;
};

// libcurl. `stopping` aborts transfers in progress when it becomes true.
std::unique_ptr<DeliveryTransport> NewCurlTransport(const std::atomic<bool>* stopping);

class DeliveryController : public Controller {
 public:
  static constexpr int kSenders = 8;
  // `transport` nullptr: libcurl.
  DeliveryController(RegionContext* ctx, std::unique_ptr<DeliveryTransport> transport = nullptr);
  ~DeliveryController() override;

  const char* name() const override { return "sns-delivery"; }
  std::vector<std::string> Keys() override;
  std::vector<Watch> Watches() const override { return {{kind::kSnsDelivery, SameKey}}; }
  ReconcileResult Reconcile(const std::string& id) override;

  // Tests: waits until no delivery is queued or being sent (bounded by `timeout_millis`); true when idle.
  bool WaitIdle(int64_t timeout_millis);

 private:
  void SenderLoop();
  void Attempt(const std::string& id);

  RegionContext* ctx_;
  std::atomic<bool> stopping_{false};
  std::unique_ptr<DeliveryTransport> transport_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::string> queue_;     // guarded by mu_
  std::set<std::string> in_flight_;   // queued or being sent; guarded by mu_
  std::vector<std::thread> senders_;
};

// Deletes subscriptions still pending confirmation 3 days after they were made (or last re-sent), as SNS does.
// One key per pending sns_subscription; Reconcile takes RegionContext::mu only for the delete.
class PendingSubscriptionExpiry : public Controller {
 public:
  explicit PendingSubscriptionExpiry(RegionContext* ctx) : ctx_(ctx) {}
  const char* name() const override { return "sns-pending-expiry"; }
  std::vector<std::string> Keys() override;
  std::vector<Watch> Watches() const override { return {{kind::kSnsSubscription, SameKey}}; }
  ReconcileResult Reconcile(const std::string& id) override;

 private:
  RegionContext* ctx_;
};

}  // namespace autopipe::sns

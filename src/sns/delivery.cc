#include "sns/delivery.h"

#include <curl/curl.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <cmath>
#include <cstring>

#include "api/form.h"
#include "common/time_util.h"
#include "ec2/catalog.h"
#include "sns/sns_model.h"

namespace autopipe::sns {
namespace {

constexpr char kUserAgent[] = "Amazon Simple Notification Service Agent";
constexpr char kMailFrom[] = "no-reply@sns.amazonaws.com";
constexpr long kHttpTimeoutSeconds = 15;  // SNS counts a slower answer as a failed attempt

std::string Str(const Json& j, const char* key) {
  return j.contains(key) && j[key].is_string() ? j[key].get<std::string>() : std::string();
}

// The body's fields in SNS's order, without the signature.
Json UnsignedBody(const Json& d, const std::string& endpoint) {
  const std::string type = Str(d, "Type");
  Json m = Json::object();
  m["Type"] = type;
  m["MessageId"] = d["MessageId"];
  if (type == "Notification") {
    m["TopicArn"] = d["TopicArn"];
    if (d.contains("Subject")) m["Subject"] = d["Subject"];
    m["Message"] = d["Message"];
    m["Timestamp"] = d["Timestamp"];
  } else {
    m["Token"] = d["Token"];
    m["TopicArn"] = d["TopicArn"];
    m["Message"] = d["Message"];
    m["SubscribeURL"] = SubscribeUrl(endpoint, Str(d, "TopicArn"), Str(d, "Token"));
    m["Timestamp"] = d["Timestamp"];
  }
  return m;
}

// A timestamp however the alarm document holds it (epoch millis or seconds, or ISO text) -> epoch millis.
int64_t TimeOf(const Json& v, int64_t fallback) {
  if (v.is_number()) {
    double x = v.get<double>();
    return x > 1e11 ? static_cast<int64_t>(x) : static_cast<int64_t>(std::llround(x * 1000));
  }
  if (v.is_string()) {
    if (auto t = ParseIsoTimeMillis(v.get<std::string>())) return *t;
  }
  return fallback;
}

std::string Upper(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

}  // namespace

std::string SubscribeUrl(const std::string& endpoint, const std::string& topic_arn, const std::string& token) {
  return endpoint + "/?Action=ConfirmSubscription&TopicArn=" + UriEncode(topic_arn) + "&Token=" + UriEncode(token);
}

std::string UnsubscribeUrl(const std::string& endpoint, const std::string& subscription_arn) {
  return endpoint + "/?Action=Unsubscribe&SubscriptionArn=" + UriEncode(subscription_arn);
}

Result<std::string> SignedJsonBody(const Json& d, const SnsSigner& signer, const std::string& endpoint) {
  Json m = UnsignedBody(d, endpoint);
  const std::string version = Str(d, "SignatureVersion").empty() ? "1" : Str(d, "SignatureVersion");
  AP_ASSIGN_OR_RETURN(auto signature, signer.Sign(StringToSign(m), version));
  m["SignatureVersion"] = version;
  m["Signature"] = signature;
  m["SigningCertURL"] = endpoint + signer.cert_path();
  if (Str(d, "Type") == "Notification") {
    m["UnsubscribeURL"] = UnsubscribeUrl(endpoint, Str(d, "SubscriptionArn"));
    if (d.contains("MessageAttributes")) m["MessageAttributes"] = d["MessageAttributes"];
  }
  return m.dump(2);
}

Result<OutgoingHttp> BuildHttp(const Json& d, const SnsSigner& signer, const std::string& endpoint) {
  OutgoingHttp out;
  out.url = Str(d, "Endpoint");
  const std::string type = Str(d, "Type");
  out.headers = {{"x-amz-sns-message-type", type},
                 {"x-amz-sns-message-id", Str(d, "MessageId")},
                 {"x-amz-sns-topic-arn", Str(d, "TopicArn")}};
  if (type != "SubscriptionConfirmation") out.headers.emplace_back("x-amz-sns-subscription-arn", Str(d, "SubscriptionArn"));
  out.headers.emplace_back("Content-Type", "text/plain; charset=UTF-8");
  out.headers.emplace_back("User-Agent", kUserAgent);
  if (type == "Notification" && d.value("Raw", false)) {
    out.headers.emplace_back("x-amz-sns-rawdelivery", "true");
    out.body = Str(d, "Message");
    return out;
  }
  AP_ASSIGN_OR_RETURN(out.body, SignedJsonBody(d, signer, endpoint));
  return out;
}

Result<OutgoingMail> BuildMail(const Json& d, const SnsSigner& signer, const std::string& endpoint) {
  OutgoingMail mail;
  std::string display;
  for (char c : Str(d, "DisplayName")) {
    if (static_cast<unsigned char>(c) >= 0x20 && c != '<' && c != '>' && c != '"') display += c;  // one header line
  }
  mail.from = (display.empty() ? std::string("AWS Notifications") : display) + " <" + kMailFrom + ">";
  mail.to = Str(d, "Endpoint");
  const std::string type = Str(d, "Type");
  if (type == "SubscriptionConfirmation") {
    mail.subject = "AWS Notification - Subscription Confirmation";
    if (Str(d, "Protocol") == "email-json") {
      AP_ASSIGN_OR_RETURN(mail.body, SignedJsonBody(d, signer, endpoint));
    } else {
      mail.body = "You have chosen to subscribe to the topic:\n" + Str(d, "TopicArn") +
                  "\n\nTo confirm this subscription, visit the link below (if this was in error, do nothing):\n" +
                  SubscribeUrl(endpoint, Str(d, "TopicArn"), Str(d, "Token")) + "\n";
    }
    return mail;
  }
  if (type == "UnsubscribeConfirmation") {
    mail.subject = "AWS Notification - Unsubscribe Confirmation";
    mail.body = "Your subscription " + Str(d, "SubscriptionArn") + " has been removed from the topic " +
                Str(d, "TopicArn") + ".\n";
    return mail;
  }
  mail.subject = d.contains("Subject") ? Str(d, "Subject") : std::string("AWS Notification Message");
  if (Str(d, "Protocol") == "email-json") {
    AP_ASSIGN_OR_RETURN(mail.body, SignedJsonBody(d, signer, endpoint));
  } else {
    mail.body = Str(d, "Message") +
                "\n\n--\nTo stop receiving notifications from this topic, visit the link below to unsubscribe:\n" +
                UnsubscribeUrl(endpoint, Str(d, "SubscriptionArn")) + "\n";
  }
  return mail;
}

std::pair<std::string, std::string> AlarmNotification(const RegionContext& ctx, const AlarmStateChange& c) {
  const Json& a = c.alarm;
  const std::string region_name = RegionDisplayName(ctx.catalog->region());
  std::string subject = c.new_state + ": \"" + c.alarm_name + "\" in " + region_name;
  if (subject.size() > 99) subject.resize(99);  // SNS subjects are shorter than 100 characters

  auto list = [&](const char* key) { return a.contains(key) && a[key].is_array() ? a[key] : Json::array(); };
  Json dims = Json::array();
  for (const auto& d : list("Dimensions")) dims.push_back({{"value", d.value("Value", "")}, {"name", d.value("Name", "")}});
  Json trigger = Json::object();
  trigger["MetricName"] = a.value("MetricName", "");
  trigger["Namespace"] = a.value("Namespace", "");
  if (a.contains("ExtendedStatistic") && a["ExtendedStatistic"].is_string()) {
    trigger["StatisticType"] = "ExtendedStatistic";
    trigger["ExtendedStatistic"] = a["ExtendedStatistic"];
  } else {
    trigger["StatisticType"] = "Statistic";
    trigger["Statistic"] = Upper(a.value("Statistic", ""));
  }
  trigger["Unit"] = a.contains("Unit") && a["Unit"].is_string() ? a["Unit"] : Json();
  trigger["Dimensions"] = dims;
  trigger["Period"] = a.value("Period", 0);
  trigger["EvaluationPeriods"] = a.value("EvaluationPeriods", 0);
  trigger["DatapointsToAlarm"] = a.contains("DatapointsToAlarm") ? a["DatapointsToAlarm"] : a.value("EvaluationPeriods", Json(0));
  trigger["ComparisonOperator"] = a.value("ComparisonOperator", "");
  trigger["Threshold"] = a.contains("Threshold") && a["Threshold"].is_number() ? a["Threshold"].get<double>() : 0.0;
  trigger["TreatMissingData"] = a.value("TreatMissingData", "missing");
  trigger["EvaluateLowSampleCountPercentile"] = a.value("EvaluateLowSampleCountPercentile", "");

  Json m = Json::object();
  m["AlarmName"] = c.alarm_name;
  m["AlarmDescription"] = a.contains("AlarmDescription") && a["AlarmDescription"].is_string() ? a["AlarmDescription"] : Json();
  m["AWSAccountId"] = kAccountId;
  m["AlarmConfigurationUpdatedTimestamp"] =
      AlarmTime(TimeOf(a.value("AlarmConfigurationUpdatedTimestamp", Json()), c.at_millis));
  m["NewStateValue"] = c.new_state;
  m["NewStateReason"] = c.reason;
  m["StateChangeTime"] = AlarmTime(c.at_millis);
  m["Region"] = region_name;
  m["AlarmArn"] = c.alarm_arn.empty() ? ctx.Arn("cloudwatch", "alarm:" + c.alarm_name) : c.alarm_arn;
  m["OldStateValue"] = c.old_state;
  m["OKActions"] = list("OKActions");
  m["AlarmActions"] = list("AlarmActions");
  m["InsufficientDataActions"] = list("InsufficientDataActions");
  m["Trigger"] = trigger;
  return {subject, m.dump()};
}

// ---- libcurl ----------------------------------------------------------------------------------------------------

namespace {

size_t Discard(char*, size_t size, size_t n, void*) { return size * n; }

int Progress(void* stopping, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  return static_cast<const std::atomic<bool>*>(stopping)->load() ? 1 : 0;
}

struct MailSource {
  std::string text;
  size_t offset = 0;
};

size_t ReadMail(char* buf, size_t size, size_t n, void* p) {
  auto* src = static_cast<MailSource*>(p);
  size_t len = std::min(size * n, src->text.size() - src->offset);
  std::memcpy(buf, src->text.data() + src->offset, len);
  src->offset += len;
  return len;
}

// "Name <addr>" or "addr" -> "<addr>"
std::string AngleAddress(const std::string& s) {
  size_t lt = s.find('<');
  return lt == std::string::npos ? "<" + s + ">" : s.substr(lt);
}

// Lines end in CRLF; a line starting with '.' is dot-stuffed by libcurl itself.
std::string Crlf(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '\n') out += '\r';
    out += c;
  }
  return out;
}

class CurlTransport : public DeliveryTransport {
 public:
  explicit CurlTransport(const std::atomic<bool>* stopping) : stopping_(stopping) {
    static const bool initialised = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK;
    (void)initialised;  // a failed init shows up as failed transfers, each logged
  }

  Result<int> Post(const OutgoingHttp& r) override {
    CURL* c = curl_easy_init();
    if (!c) return Status::Internal("curl_easy_init failed");
    curl_slist* headers = nullptr;
    for (const auto& [k, v] : r.headers) headers = curl_slist_append(headers, (k + ": " + v).c_str());
    headers = curl_slist_append(headers, "Expect:");
    curl_easy_setopt(c, CURLOPT_URL, r.url.c_str());
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, r.body.data());
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, static_cast<long>(r.body.size()));
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, kHttpTimeoutSeconds);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_PROXY, "");  // endpoints are reached directly
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, Discard);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, Progress);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, const_cast<std::atomic<bool>*>(stopping_));
    CURLcode rc = curl_easy_perform(c);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(headers);
    curl_easy_cleanup(c);
    if (rc != CURLE_OK) return Status(502, "DeliveryFailed", curl_easy_strerror(rc), false);
    return static_cast<int>(status);
  }

  Status Mail(const std::string& relay, const OutgoingMail& m) override {
    if (relay.empty()) return Status(502, "DeliveryFailed", "no SMTP relay is configured (server --smtp-relay)", false);
    CURL* c = curl_easy_init();
    if (!c) return Status::Internal("curl_easy_init failed");
    MailSource src;
    src.text = Crlf("From: " + m.from + "\nTo: " + m.to + "\nSubject: " + m.subject +
                    "\nMIME-Version: 1.0\nContent-Type: text/plain; charset=UTF-8\n\n" + m.body);
    const std::string url = "smtp://" + relay;
    const std::string from = AngleAddress(m.from);
    curl_slist* rcpt = curl_slist_append(nullptr, AngleAddress(m.to).c_str());
    curl_easy_setopt(c, CURLOPT_URL, url.c_str());
    curl_easy_setopt(c, CURLOPT_MAIL_FROM, from.c_str());
    curl_easy_setopt(c, CURLOPT_MAIL_RCPT, rcpt);
    curl_easy_setopt(c, CURLOPT_READFUNCTION, ReadMail);
    curl_easy_setopt(c, CURLOPT_READDATA, &src);
    curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 60L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, Progress);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, const_cast<std::atomic<bool>*>(stopping_));
    CURLcode rc = curl_easy_perform(c);
    curl_slist_free_all(rcpt);
    curl_easy_cleanup(c);
    if (rc != CURLE_OK) return Status(502, "DeliveryFailed", curl_easy_strerror(rc), false);
    return Status::Ok();
  }

 private:
  const std::atomic<bool>* stopping_;
};

}  // namespace

std::unique_ptr<DeliveryTransport> NewCurlTransport(const std::atomic<bool>* stopping) {
  return std::make_unique<CurlTransport>(stopping);
}

// ---- the controller ---------------------------------------------------------------------------------------------

DeliveryController::DeliveryController(RegionContext* ctx, std::unique_ptr<DeliveryTransport> transport)
    : ctx_(ctx), transport_(transport ? std::move(transport) : NewCurlTransport(&stopping_)) {
  for (int i = 0; i < kSenders; ++i) senders_.emplace_back([this] { SenderLoop(); });
}

DeliveryController::~DeliveryController() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  for (auto& t : senders_) t.join();
}

std::vector<std::string> DeliveryController::Keys() { return ctx_->store->Ids(kind::kSnsDelivery); }

ReconcileResult DeliveryController::Reconcile(const std::string& id) {
  auto d = ctx_->store->Get(kind::kSnsDelivery, id);
  if (!d) return ReconcileResult::Done();
  const int64_t wait = d->value("NextAttemptMillis", int64_t{0}) - ctx_->clock->NowMillis();
  if (wait > 0) return ReconcileResult::After(std::chrono::milliseconds(wait));
  {
    std::lock_guard lock(mu_);
    if (stopping_) return ReconcileResult::Done();
    // A sender has it: look again shortly, as its commit may land before it lets go of the key.
    if (!in_flight_.insert(id).second) return ReconcileResult::After(std::chrono::milliseconds(200));
    queue_.push_back(id);
  }
  cv_.notify_one();
  // The sender's commit (or its deletion) runs this key again; nothing to wait for here.
  return ReconcileResult::Done();
}

bool DeliveryController::WaitIdle(int64_t timeout_millis) {
  std::unique_lock lock(mu_);
  return cv_.wait_for(lock, std::chrono::milliseconds(timeout_millis), [this] { return in_flight_.empty(); });
}

void DeliveryController::SenderLoop() {
  for (;;) {
    std::string id;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (stopping_) return;
      id = std::move(queue_.front());
      queue_.pop_front();
    }
    Attempt(id);
    {
      std::lock_guard lock(mu_);
      in_flight_.erase(id);
    }
    cv_.notify_all();
  }
}

void DeliveryController::Attempt(const std::string& id) {
  VersionedDoc vd = ctx_->store->GetVersioned(kind::kSnsDelivery, id);
  if (!vd.doc) return;
  const Json& d = *vd.doc;
  const std::string type = d.value("Type", ""), protocol = d.value("Protocol", "");
  const std::string endpoint_url = d.value("Endpoint", "");

  Status outcome;
  bool drop_unsent = false;
  if (type != "UnsubscribeConfirmation") {  // sent after its subscription is gone, by design
    auto sub = ParseSubscriptionArn(*ctx_, d.value("SubscriptionArn", ""));
    drop_unsent = !sub || !ctx_->store->Get(kind::kSnsSubscription, sub->id);
  }
  const SnsSigner* signer = drop_unsent ? nullptr : SignerFor(ctx_->data_dir, ctx_->catalog->region());
  if (drop_unsent) {
    outcome = Status::Ok();
  } else if (!signer) {
    outcome = Status::Internal("no signing key");
  } else if (protocol == "http" || protocol == "https") {
    auto req = BuildHttp(d, *signer, ctx_->endpoint);
    if (!req.ok()) {
      outcome = req.status();
    } else {
      auto status = transport_->Post(*req);
      if (!status.ok()) {
        outcome = status.status();
      } else if (*status < 200 || *status >= 500) {  // SNS: 200-4xx is delivered, anything else a failure
        outcome = Status(502, "DeliveryFailed", "HTTP status " + std::to_string(*status), false);
      }
    }
  } else if (protocol == "email" || protocol == "email-json") {
    auto mail = BuildMail(d, *signer, ctx_->endpoint);
    outcome = mail.ok() ? transport_->Mail(ctx_->smtp_relay, *mail) : mail.status();
  } else {
    drop_unsent = true;  // not a protocol this region delivers to (never recorded, but be safe)
  }
  if (stopping_ && !outcome.ok()) return;  // aborted by shutdown: the next start tries again

  const int attempts = d.value("Attempts", 0) + 1;
  std::optional<Json> next;
  if (!outcome.ok()) {
    auto policy = RetryPolicy::FromJson(d.value("Policy", Json::object()));
    const RetryPolicy p = policy.ok() ? *policy : RetryPolicy{};
    if (attempts <= p.num_retries) {
      Json updated = d;
      updated["Attempts"] = attempts;
      updated["LastError"] = outcome.message();
      updated["NextAttemptMillis"] = ctx_->clock->NowMillis() + 1000LL * p.DelayBeforeRetry(attempts);
      next = std::move(updated);
      spdlog::info("sns: {} {} to {} failed (attempt {}): {}; retry in {} s", type, d.value("MessageId", ""),
                   endpoint_url, attempts, outcome.message(), p.DelayBeforeRetry(attempts));
    } else {
      spdlog::warn("sns: {} {} to {} dropped after {} attempts: {}", type, d.value("MessageId", ""), endpoint_url,
                   attempts, outcome.message());
    }
  } else if (drop_unsent) {
    spdlog::info("sns: {} {} dropped: its subscription is gone", type, d.value("MessageId", ""));
  } else {
    spdlog::info("sns: {} {} delivered to {} (attempt {})", type, d.value("MessageId", ""), endpoint_url, attempts);
  }
  std::lock_guard lock(*ctx_->mu);
  Status st = ctx_->store->Commit({{kind::kSnsDelivery, id, std::move(next), vd.revision}});
  if (!st.ok() && !IsConflict(st)) spdlog::error("sns: recording delivery {}: {}", id, st.message());
}

// ---- pending subscriptions ------------------------------------------------------------------------------------

std::vector<std::string> PendingSubscriptionExpiry::Keys() {
  std::vector<std::string> ids;
  for (const auto& id : ctx_->store->Ids(kind::kSnsSubscription)) {
    auto s = ctx_->store->Get(kind::kSnsSubscription, id);
    if (s && (*s)["Status"] == kPendingConfirmation) ids.push_back(id);
  }
  return ids;
}

ReconcileResult PendingSubscriptionExpiry::Reconcile(const std::string& id) {
  VersionedDoc vd = ctx_->store->GetVersioned(kind::kSnsSubscription, id);
  if (!vd.doc || (*vd.doc)["Status"] != kPendingConfirmation) return ReconcileResult::Done();
  const int64_t since = vd.doc->value("TokenMillis", vd.doc->value("CreatedMillis", int64_t{0}));
  const int64_t left = since + kPendingLifetimeMillis - ctx_->clock->NowMillis();
  if (left > 0) return ReconcileResult::After(std::chrono::milliseconds(left));
  std::lock_guard lock(*ctx_->mu);
  Status st = ctx_->store->Commit({{kind::kSnsSubscription, id, std::nullopt, vd.revision}});
  if (!st.ok() && !IsConflict(st)) return st;
  spdlog::info("sns: pending subscription {} expired unconfirmed", vd.doc->value("SubscriptionArn", id));
  return ReconcileResult::Done();
}

}  // namespace autopipe::sns

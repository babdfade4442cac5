#include "sns/sns_model.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <map>
#include <set>

#include "common/ids.h"
#include "common/time_util.h"
#include "ec2/catalog.h"

namespace autopipe::sns {

Status InvalidParameter(const std::string& detail) {
  return Status(400, "InvalidParameter", "Invalid parameter: " + detail);
}

Status NotFound(const std::string& message) { return Status(404, "NotFound", message); }

bool ValidTopicName(const std::string& name) {
  std::string base = name;
  if (base.size() > 5 && base.compare(base.size() - 5, 5, ".fifo") == 0) base.resize(base.size() - 5);
  if (base.empty() || name.size() > 256) return false;
  return std::all_of(base.begin(), base.end(),
                     [](unsigned char c) { return std::isalnum(c) || c == '_' || c == '-'; });
}

std::optional<std::string> TopicNameFromArn(const RegionContext& ctx, const std::string& arn) {
  const std::string prefix = ctx.Arn("sns", "");
  if (arn.size() <= prefix.size() || arn.compare(0, prefix.size(), prefix) != 0) return std::nullopt;
  std::string name = arn.substr(prefix.size());
  if (!ValidTopicName(name)) return std::nullopt;
  return name;
}

std::optional<SubscriptionRef> ParseSubscriptionArn(const RegionContext& ctx, const std::string& arn) {
  size_t colon = arn.rfind(':');
  if (colon == std::string::npos) return std::nullopt;
  auto topic = TopicNameFromArn(ctx, arn.substr(0, colon));
  std::string id = arn.substr(colon + 1);
  if (!topic || id.size() != 36) return std::nullopt;
  return SubscriptionRef{*topic, id};
}

bool IsDeliverableProtocol(const std::string& p) {
  return p == "http" || p == "https" || p == "email" || p == "email-json";
}

bool IsKnownProtocol(const std::string& p) {
  static const std::set<std::string> kAll = {"http", "https", "email", "email-json", "sms",
                                             "sqs",  "application", "lambda", "firehose"};
  return kAll.count(p) > 0;
}

// ---- delivery policies ------------------------------------------------------------------------------------------

int RetryPolicy::DelayBeforeRetry(int retry) const {
  if (retry <= num_no_delay) return 0;
  retry -= num_no_delay;
  if (retry <= num_min_delay) return min_delay;
  retry -= num_min_delay;
  const int backoff_retries = num_retries - num_no_delay - num_min_delay - num_max_delay;
  if (retry <= backoff_retries) {
    const double i = retry, n = backoff_retries, lo = min_delay, hi = max_delay;
    double d;
    if (backoff == "arithmetic") {
      d = lo + (hi - lo) * (i * (i + 1) / 2) / (n * (n + 1) / 2);  // steps grow by a constant amount
    } else if (backoff == "geometric") {
      d = lo * std::pow(std::max(hi, 1.0) / std::max(lo, 1.0), i / n);  // a constant ratio between retries
    } else if (backoff == "exponential") {
      d = lo + (hi - lo) * (std::pow(2.0, i) - 1) / (std::pow(2.0, n) - 1);  // doubling steps
    } else {
      d = lo + (hi - lo) * i / n;  // linear: equal steps
    }
    return static_cast<int>(std::lround(std::clamp(d, lo, hi)));
  }
  return max_delay;
}

Json RetryPolicy::ToJson() const {
  return Json{{"minDelayTarget", min_delay},       {"maxDelayTarget", max_delay},
              {"numRetries", num_retries},         {"numMaxDelayRetries", num_max_delay},
              {"numNoDelayRetries", num_no_delay}, {"numMinDelayRetries", num_min_delay},
              {"backoffFunction", backoff}};
}

Result<RetryPolicy> RetryPolicy::FromJson(const Json& j, RetryPolicy p) {
  if (!j.is_object()) return InvalidParameter("DeliveryPolicy: healthyRetryPolicy must be an object");
  auto read_int = [&](const char* key, int* out, int lo, int hi) -> Status {
    if (!j.contains(key)) return Status::Ok();
    if (!j[key].is_number_integer()) return InvalidParameter(std::string("DeliveryPolicy: ") + key + " must be an integer");
    int64_t v = j[key].get<int64_t>();
    if (v < lo || v > hi) {
      return InvalidParameter(std::string("DeliveryPolicy: ") + key + " must be between " + std::to_string(lo) +
                              " and " + std::to_string(hi));
    }
    *out = static_cast<int>(v);
    return Status::Ok();
  };
  AP_RETURN_IF_ERROR(read_int("minDelayTarget", &p.min_delay, 1, 3600));
  AP_RETURN_IF_ERROR(read_int("maxDelayTarget", &p.max_delay, 1, 3600));
  AP_RETURN_IF_ERROR(read_int("numRetries", &p.num_retries, 0, 100));
  AP_RETURN_IF_ERROR(read_int("numNoDelayRetries", &p.num_no_delay, 0, 100));
  AP_RETURN_IF_ERROR(read_int("numMinDelayRetries", &p.num_min_delay, 0, 100));
  AP_RETURN_IF_ERROR(read_int("numMaxDelayRetries", &p.num_max_delay, 0, 100));
  if (j.contains("backoffFunction")) {
    static const std::set<std::string> kFunctions = {"linear", "arithmetic", "geometric", "exponential"};
    if (!j["backoffFunction"].is_string() || !kFunctions.count(j["backoffFunction"].get<std::string>())) {
      return InvalidParameter("DeliveryPolicy: backoffFunction must be one of arithmetic, exponential, geometric, "
                              "linear");
    }
    p.backoff = j["backoffFunction"];
  }
  if (p.min_delay > p.max_delay) return InvalidParameter("DeliveryPolicy: minDelayTarget must be <= maxDelayTarget");
  if (p.num_no_delay + p.num_min_delay + p.num_max_delay > p.num_retries) {
    return InvalidParameter("DeliveryPolicy: numNoDelayRetries + numMinDelayRetries + numMaxDelayRetries must be "
                            "<= numRetries");
  }
  int64_t total = 0;
  for (int r = 1; r <= p.num_retries; ++r) total += p.DelayBeforeRetry(r);
  if (total > 3600) return InvalidParameter("DeliveryPolicy: the retries would take longer than 3600 seconds");
  return p;
}

Result<RetryPolicy> RetryPolicy::FromJson(const Json& j) { return FromJson(j, RetryPolicy{}); }

RetryPolicy EmailRetryPolicy() {
  RetryPolicy p;
  p.min_delay = 10;
  p.max_delay = 600;
  p.num_retries = 50;
  p.num_no_delay = 0;
  p.num_min_delay = 2;
  p.num_max_delay = 38;
  p.backoff = "exponential";
  return p;
}

namespace {

Result<Json> ParsePolicyText(const std::string& text) {
  Json j = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return InvalidParameter("DeliveryPolicy: Invalid JSON");
  return j;
}

Json Attr(const Json& doc, const char* name) {
  if (!doc.contains("Attributes") || !doc["Attributes"].contains(name)) return Json();
  auto j = Json::parse(doc["Attributes"][name].get<std::string>(), nullptr, false);
  return j.is_discarded() ? Json() : j;
}

}  // namespace

Status CheckTopicDeliveryPolicy(const std::string& text) {
  AP_ASSIGN_OR_RETURN(auto j, ParsePolicyText(text));
  for (const char* proto : {"http", "https"}) {
    if (!j.contains(proto)) continue;
    if (!j[proto].is_object()) return InvalidParameter(std::string("DeliveryPolicy: ") + proto + " must be an object");
    if (j[proto].contains("defaultHealthyRetryPolicy")) {
      AP_RETURN_IF_ERROR(RetryPolicy::FromJson(j[proto]["defaultHealthyRetryPolicy"]).status());
    }
  }
  return Status::Ok();
}

Status CheckSubscriptionDeliveryPolicy(const std::string& text) {
  AP_ASSIGN_OR_RETURN(auto j, ParsePolicyText(text));
  if (j.contains("healthyRetryPolicy")) AP_RETURN_IF_ERROR(RetryPolicy::FromJson(j["healthyRetryPolicy"]).status());
  return Status::Ok();
}

namespace {

RetryPolicy TopicHttpPolicy(const Json& topic, bool* disable_overrides) {
  RetryPolicy p;
  *disable_overrides = false;
  Json dp = Attr(topic, "DeliveryPolicy");
  if (dp.is_object() && dp.contains("http") && dp["http"].is_object()) {
    const Json& http = dp["http"];
    if (http.contains("defaultHealthyRetryPolicy")) {
      auto r = RetryPolicy::FromJson(http["defaultHealthyRetryPolicy"]);
      if (r.ok()) p = *r;
    }
    *disable_overrides = http.value("disableSubscriptionOverrides", false);
  }
  return p;
}

}  // namespace

std::string EffectiveTopicDeliveryPolicy(const Json& topic) {
  bool disable = false;
  RetryPolicy p = TopicHttpPolicy(topic, &disable);
  Json j = {{"http",
             {{"defaultHealthyRetryPolicy", p.ToJson()},
              {"disableSubscriptionOverrides", disable},
              {"defaultRequestPolicy", {{"headerContentType", "text/plain; charset=UTF-8"}}}}}};
  return j.dump();
}

RetryPolicy PolicyFor(const Json& topic, const Json& subscription) {
  const std::string protocol = subscription.value("Protocol", "");
  if (protocol == "email" || protocol == "email-json") return EmailRetryPolicy();
  bool disable = false;
  RetryPolicy p = TopicHttpPolicy(topic, &disable);
  if (!disable) {
    Json dp = Attr(subscription, "DeliveryPolicy");
    if (dp.is_object() && dp.contains("healthyRetryPolicy")) {
      auto r = RetryPolicy::FromJson(dp["healthyRetryPolicy"], p);
      if (r.ok()) p = *r;
    }
  }
  return p;
}

// ---- filter policies ------------------------------------------------------------------------------------------

namespace {

Status BadFilter(const std::string& why) { return InvalidParameter("Filter policy: " + why); }

Status CheckCondition(const Json& c) {
  if (c.is_string() || c.is_number() || c.is_null()) return Status::Ok();
  if (!c.is_object() || c.size() != 1) return BadFilter("each condition is a string, a number or a one-key object");
  const std::string op = c.begin().key();
  const Json& v = c.begin().value();
  if (op == "prefix" || op == "suffix" || op == "equals-ignore-case") {
    return v.is_string() ? Status::Ok() : BadFilter(op + " needs a string");
  }
  if (op == "exists") return v.is_boolean() ? Status::Ok() : BadFilter("exists needs true or false");
  if (op == "anything-but") {
    if (v.is_string() || v.is_number()) return Status::Ok();
    if (v.is_array()) {
      for (const auto& x : v) {
        if (!x.is_string() && !x.is_number()) return BadFilter("anything-but lists strings or numbers");
      }
      return Status::Ok();
    }
    if (v.is_object() && v.size() == 1 && v.contains("prefix") && v["prefix"].is_string()) return Status::Ok();
    return BadFilter("anything-but needs a value, a list of values or {\"prefix\": ...}");
  }
  if (op == "numeric") {
    static const std::set<std::string> kOps = {"=", "<", "<=", ">", ">="};
    if (!v.is_array() || (v.size() != 2 && v.size() != 4)) return BadFilter("numeric needs [op, n] or [op, n, op, n]");
    for (size_t i = 0; i < v.size(); i += 2) {
      if (!v[i].is_string() || !kOps.count(v[i].get<std::string>()) || !v[i + 1].is_number()) {
        return BadFilter("numeric operators are = < <= > >=, each followed by a number");
      }
    }
    return Status::Ok();
  }
  return BadFilter("unrecognized operator " + op);
}

std::optional<double> AsNumber(const std::string& s) {
  char* end = nullptr;
  double v = std::strtod(s.c_str(), &end);
  if (s.empty() || *end != '\0') return std::nullopt;
  return v;
}

bool EndsWith(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

bool EqualsValue(const Json& want, const std::string& value, bool numeric) {
  if (want.is_string()) return !numeric && want.get<std::string>() == value;
  if (want.is_number()) {
    auto v = AsNumber(value);
    return numeric && v && *v == want.get<double>();
  }
  return false;
}

// One value of an attribute against one condition.
bool ValueMatches(const Json& c, const std::string& value, bool numeric) {
  if (!c.is_object()) return EqualsValue(c, value, numeric);
  const std::string op = c.begin().key();
  const Json& v = c.begin().value();
  if (op == "prefix") return value.compare(0, v.get<std::string>().size(), v.get<std::string>()) == 0;
  if (op == "suffix") return EndsWith(value, v.get<std::string>());
  if (op == "equals-ignore-case") {
    const std::string w = v;
    return w.size() == value.size() && std::equal(w.begin(), w.end(), value.begin(), [](char a, char b) {
             return std::tolower(static_cast<unsigned char>(a)) == std::tolower(static_cast<unsigned char>(b));
           });
  }
  if (op == "exists") return v.get<bool>();
  if (op == "anything-but") {
    if (v.is_object()) return value.compare(0, v["prefix"].get<std::string>().size(), v["prefix"].get<std::string>()) != 0;
    if (v.is_array()) {
      return std::none_of(v.begin(), v.end(), [&](const Json& x) { return EqualsValue(x, value, numeric); });
    }
    return !EqualsValue(v, value, numeric);
  }
  if (op == "numeric") {
    auto x = numeric ? AsNumber(value) : std::nullopt;
    if (!x) return false;
    for (size_t i = 0; i < v.size(); i += 2) {
      const std::string o = v[i];
      const double n = v[i + 1];
      const bool ok = o == "=" ? *x == n : o == "<" ? *x < n : o == "<=" ? *x <= n : o == ">" ? *x > n : *x >= n;
      if (!ok) return false;
    }
    return true;
  }
  return false;
}

}  // namespace

Status CheckFilterPolicy(const std::string& text) {
  Json j = Json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return BadFilter("failed to parse JSON");
  if (j.size() > 5) return BadFilter("at most 5 attribute names");
  size_t combinations = 1;
  for (const auto& [name, conditions] : j.items()) {
    if (!conditions.is_array() || conditions.empty()) return BadFilter("the value of " + name + " must be a list");
    for (const auto& c : conditions) AP_RETURN_IF_ERROR(CheckCondition(c));
    combinations *= conditions.size();
  }
  if (combinations > 150) return BadFilter("more than 150 combinations of values");
  return Status::Ok();
}

bool MatchesFilterPolicy(const Json& policy, const Json& attributes) {
  for (const auto& [name, conditions] : policy.items()) {
    const bool present = attributes.contains(name);
    bool any = false;
    for (const auto& c : conditions) {
      if (c.is_object() && c.contains("exists")) {
        any = any || c["exists"].get<bool>() == present;
        continue;
      }
      if (!present) continue;
      const std::string type = attributes[name].value("Type", "String");
      const std::string value = attributes[name].value("Value", "");
      if (type.rfind("String.Array", 0) == 0) {
        Json arr = Json::parse(value, nullptr, false);
        if (!arr.is_array()) continue;
        for (const auto& el : arr) {
          if (el.is_string()) any = any || ValueMatches(c, el.get<std::string>(), false);
          if (el.is_number()) any = any || ValueMatches(c, el.dump(), true);
        }
      } else {
        any = any || ValueMatches(c, value, type.rfind("Number", 0) == 0);
      }
    }
    if (!any) return false;
  }
  return true;
}

// ---- recording deliveries -------------------------------------------------------------------------------------

std::string NewDeliveryId(int64_t now_millis) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%015lld-", static_cast<long long>(now_millis));
  return buf + NewUuid();
}

Json NewDelivery(const RegionContext& ctx, const Json& topic, const Json& subscription, const std::string& type) {
  const int64_t now = ctx.clock->NowMillis();
  Json attrs = topic.value("Attributes", Json::object());
  Json sub_attrs = subscription.value("Attributes", Json::object());
  return Json{{"Type", type},
              {"MessageId", NewUuid()},
              {"TopicArn", topic["TopicArn"]},
              {"SubscriptionArn", subscription["SubscriptionArn"]},
              {"Protocol", subscription["Protocol"]},
              {"Endpoint", subscription["Endpoint"]},
              {"Timestamp", IsoTimeMillis(now)},
              {"Raw", sub_attrs.value("RawMessageDelivery", "false") == "true"},
              {"SignatureVersion", attrs.value("SignatureVersion", "1")},
              {"DisplayName", attrs.value("DisplayName", "")},
              {"Policy", PolicyFor(topic, subscription).ToJson()},
              {"Attempts", 0},
              {"NextAttemptMillis", now},
              {"CreatedMillis", now}};
}

Result<std::string> RecordPublish(RegionContext* ctx, const PublishRequest& req) {
  auto name = TopicNameFromArn(*ctx, req.topic_arn);
  if (!name) return InvalidParameter("TopicArn");
  auto topic = ctx->store->Get(kind::kSnsTopic, *name);
  if (!topic) return NotFound("Topic does not exist");
  if (req.message.empty()) return InvalidParameter("Empty message");
  if (req.message.size() > kMaxMessageBytes) return InvalidParameter("Message too long");
  Json structure;
  if (req.message_structure_json) {
    structure = Json::parse(req.message, nullptr, false);
    if (structure.is_discarded() || !structure.is_object()) {
      return InvalidParameter("Message Structure - JSON message body failed to parse");
    }
    if (!structure.contains("default") || !structure["default"].is_string()) {
      return InvalidParameter("Message Structure - No default entry in JSON message body");
    }
  }
  const std::string message_id = NewUuid();
  std::vector<StoreWrite> writes;
  const int64_t now = ctx->clock->NowMillis();
  for (const auto& sub : ctx->store->List(kind::kSnsSubscription)) {
    if ((*sub)["TopicArn"] != req.topic_arn || (*sub)["Status"] != kConfirmed) continue;
    if (!IsDeliverableProtocol((*sub)["Protocol"])) continue;
    const Json& sub_attrs = (*sub)["Attributes"];
    if (sub_attrs.contains("FilterPolicy") && sub_attrs.value("FilterPolicyScope", "MessageAttributes") == "MessageAttributes") {
      Json policy = Json::parse(sub_attrs["FilterPolicy"].get<std::string>(), nullptr, false);
      if (policy.is_object() && !MatchesFilterPolicy(policy, req.message_attributes)) continue;
    }
    Json d = NewDelivery(*ctx, *topic, *sub, "Notification");
    d["MessageId"] = message_id;  // one message, one id, whichever endpoint it reaches
    std::string text = req.message;
    if (req.message_structure_json) {
      const std::string proto = (*sub)["Protocol"];
      text = structure.contains(proto) && structure[proto].is_string() ? structure[proto].get<std::string>()
                                                                        : structure["default"].get<std::string>();
    }
    d["Message"] = text;
    if (req.subject) d["Subject"] = *req.subject;
    if (!req.message_attributes.empty()) d["MessageAttributes"] = req.message_attributes;
    writes.push_back({kind::kSnsDelivery, NewDeliveryId(now), std::move(d)});
  }
  AP_RETURN_IF_ERROR(ctx->store->Commit(writes));
  return message_id;
}

std::string RegionDisplayName(const std::string& region) {
  static const std::map<std::string, std::string> kNames = {
      {"us-east-1", "US East (N. Virginia)"},     {"us-east-2", "US East (Ohio)"},
      {"us-west-1", "US West (N. California)"},   {"us-west-2", "US West (Oregon)"},
      {"ca-central-1", "Canada (Central)"},       {"eu-west-1", "EU (Ireland)"},
      {"eu-west-2", "EU (London)"},               {"eu-west-3", "EU (Paris)"},
      {"eu-central-1", "EU (Frankfurt)"},         {"eu-north-1", "EU (Stockholm)"},
      {"ap-northeast-1", "Asia Pacific (Tokyo)"}, {"ap-northeast-2", "Asia Pacific (Seoul)"},
      {"ap-southeast-1", "Asia Pacific (Singapore)"}, {"ap-southeast-2", "Asia Pacific (Sydney)"},
      {"ap-south-1", "Asia Pacific (Mumbai)"},    {"sa-east-1", "South America (Sao Paulo)"},
  };
  auto it = kNames.find(region);
  return it == kNames.end() ? region : it->second;
}

std::string AlarmTime(int64_t epoch_millis) {
  std::time_t secs = static_cast<std::time_t>(epoch_millis / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03d+0000", tm.tm_year + 1900, tm.tm_mon + 1,
                tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(epoch_millis % 1000));
  return buf;
}

}  // namespace autopipe::sns

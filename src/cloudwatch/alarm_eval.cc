#include "cloudwatch/alarm_eval.h"

#include <cmath>
#include <cstdio>
#include <ctime>

namespace autopipe::cloudwatch {
namespace {

const char* OperatorPhrase(const std::string& op) {
  if (op == "GreaterThanThreshold") return "greater than";
  if (op == "GreaterThanOrEqualToThreshold") return "greater than or equal to";
  if (op == "LessThanThreshold") return "less than";
  if (op == "LessThanOrEqualToThreshold") return "less than or equal to";
  return "compared with";
}

// 02/10/19 16:59:00 (dd/MM/yy HH:mm:ss, UTC), as StateReason quotes a datapoint's time.
std::string ShortTime(int64_t sec) {
  std::time_t t = sec;
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%d/%m/%y %H:%M:%S", &tm);
  return buf;
}

std::string PointList(const std::vector<const PeriodValue*>& points) {
  std::string s = "[";
  for (size_t i = 0; i < points.size(); ++i) {
    if (i) s += ", ";
    s += FormatNumber(*points[i]->value) + " (" + ShortTime(points[i]->start_sec) + ")";
  }
  return s + "]";
}

std::string Plural(size_t n, const char* one, const char* many) { return n == 1 ? one : many; }

}  // namespace

bool IsComparisonOperator(const std::string& op) {
  return op == "GreaterThanThreshold" || op == "GreaterThanOrEqualToThreshold" || op == "LessThanThreshold" ||
         op == "LessThanOrEqualToThreshold";
}

bool Breaches(const std::string& op, double v, double t) {
  if (op == "GreaterThanThreshold") return v > t;
  if (op == "GreaterThanOrEqualToThreshold") return v >= t;
  if (op == "LessThanThreshold") return v < t;
  if (op == "LessThanOrEqualToThreshold") return v <= t;
  return false;
}

std::string FormatNumber(double v) {
  if (std::isfinite(v) && v == std::floor(v) && std::fabs(v) < 1e7) {
    char buf[40];
    std::snprintf(buf, sizeof buf, "%.1f", v);
    return buf;
  }
  char buf[40];
  for (int precision = 1; precision <= 17; ++precision) {  // the shortest text that reads back the same
    std::snprintf(buf, sizeof buf, "%.*g", precision, v);
    if (std::strtod(buf, nullptr) == v) break;
  }
  return buf;
}

std::string ReasonTime(int64_t ms) {
  std::time_t t = ms / 1000;
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[48];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03d+0000", tm.tm_year + 1900, tm.tm_mon + 1,
                tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms % 1000));
  return buf;
}

Evaluation EvaluateAlarm(const AlarmRule& rule, const std::vector<PeriodValue>& window, const std::string& old_state,
                         int64_t now_millis) {
  const size_t n = static_cast<size_t>(std::max(1, rule.evaluation_periods));
  const size_t m = static_cast<size_t>(std::max(1, std::min<int>(rule.datapoints_to_alarm, rule.evaluation_periods)));
  auto breaching = [&](const PeriodValue& p) { return p.value && Breaches(rule.comparison_operator, *p.value, rule.threshold); };

  std::vector<const PeriodValue*> real;  // newest first
  for (const auto& p : window) {
    if (p.value) real.push_back(&p);
  }
  const std::string transition = (old_state.empty() ? "INSUFFICIENT_DATA" : old_state) + " -> ALARM";
  const std::string threshold = FormatNumber(rule.threshold);
  const std::string phrase = OperatorPhrase(rule.comparison_operator);

  Evaluation ev;
  std::vector<const PeriodValue*> used;  // the real points the decision rests on, newest first
  size_t considered = n;                 // "out of the last X datapoints"
  size_t breach_count = 0;
  std::string fill;  // "Breaching"/"NonBreaching" when missing periods were filled
  size_t filled = 0;

  if (real.size() >= n) {
    used.assign(real.begin(), real.begin() + n);
    for (auto* p : used) breach_count += breaching(*p);
    ev.state = breach_count >= m ? "ALARM" : "OK";
  } else {
    const size_t slots = std::min(n, window.size());
    for (size_t i = 0; i < slots; ++i) {
      if (window[i].value) used.push_back(&window[i]);
    }
    const std::string& treat = rule.treat_missing_data.empty() ? std::string("missing") : rule.treat_missing_data;
    if (treat == "breaching" || treat == "notBreaching") {
      filled = n - used.size();
      for (auto* p : used) breach_count += breaching(*p);
      if (treat == "breaching") breach_count += filled;
      fill = treat == "breaching" ? "Breaching" : "NonBreaching";
      ev.state = breach_count >= m ? "ALARM" : "OK";
    } else if (real.empty()) {
      if (treat == "ignore") {
        ev.keep_state = true;
        ev.state = old_state;
      } else {
        ev.state = "INSUFFICIENT_DATA";
      }
    } else {
      // Premature alarm: the oldest breaching point of the newest N periods is at least M periods old and
      // nothing newer is a non-breaching point.
      bool premature = false;
      if (treat == "missing") {
        size_t oldest = 0;  // 1-based age of the oldest breaching period
        for (size_t i = 0; i < slots; ++i) {
          if (breaching(window[i])) oldest = i + 1;
        }
        if (oldest >= m) {
          premature = true;
          for (size_t i = 0; i + 1 < oldest; ++i) {
            if (window[i].value && !breaching(window[i])) premature = false;
          }
        }
      }
      // The real points of the whole window decide otherwise (newest first, at most N).
      used.assign(real.begin(), real.end());
      for (auto* p : used) breach_count += breaching(*p);
      considered = used.size();
      if (premature || breach_count >= m) {
        ev.state = "ALARM";
      } else if (treat == "ignore" && used.size() - breach_count <= n - m) {
        ev.keep_state = true;  // not enough points to rule ALARM out
        ev.state = old_state;
      } else {
        ev.state = "OK";
      }
    }
  }

  // StateReason.
  if (ev.state == "INSUFFICIENT_DATA") {
    ev.reason = "Insufficient Data: " + std::to_string(n) + " " + Plural(n, "datapoint was", "datapoints were") +
                " unknown.";
  } else if (ev.keep_state) {
    ev.reason = "";
  } else if (used.empty() && filled > 0) {
    ev.reason = "Threshold Crossed: no datapoints were received for " + std::to_string(filled) + " " +
                Plural(filled, "period", "periods") + " and " + std::to_string(filled) + " missing " +
                Plural(filled, "datapoint was", "datapoints were") + " treated as [" + fill + "].";
  } else if (ev.state == "ALARM") {
    std::vector<const PeriodValue*> shown;
    for (auto* p : used) {
      if (breaching(*p)) shown.push_back(p);
    }
    size_t shown_count = shown.size() + (fill == "Breaching" ? filled : 0);
    ev.reason = "Threshold Crossed: " + std::to_string(shown_count) + " out of the last " +
                std::to_string(considered) + " datapoints " + PointList(shown) + " " +
                Plural(shown_count, "was", "were") + " " + phrase + " the threshold (" + threshold + ") (minimum " +
                std::to_string(m) + " " + Plural(m, "datapoint", "datapoints") + " for " + transition +
                " transition).";
  } else {
    ev.reason = "Threshold Crossed: " + std::to_string(used.size()) + " " +
                Plural(used.size(), "datapoint", "datapoints") + " " + PointList(used) + " " +
                Plural(used.size(), "was", "were") + " not " + phrase + " the threshold (" + threshold + ").";
  }

  // StateReasonData.
  Json data = Json::object();
  data["version"] = "1.0";
  data["queryDate"] = ReasonTime(now_millis);
  int64_t start = window.empty() ? now_millis / 1000 : window[std::min(n, window.size()) - 1].start_sec;
  for (auto* p : used) start = std::min(start, p->start_sec);
  data["startDate"] = ReasonTime(start * 1000);
  data["statistic"] = rule.statistic;
  data["period"] = rule.period_sec;
  Json recent = Json::array();
  for (auto it = used.rbegin(); it != used.rend(); ++it) recent.push_back(*(*it)->value);
  data["recentDatapoints"] = recent;
  data["threshold"] = rule.threshold;
  Json evaluated = Json::array();
  for (auto* p : used) {
    evaluated.push_back(Json{{"timestamp", ReasonTime(p->start_sec * 1000)}, {"sampleCount", p->sample_count},
                             {"value", *p->value}});
  }
  data["evaluatedDatapoints"] = evaluated;
  ev.reason_data = std::move(data);
  return ev;
}

}  // namespace autopipe::cloudwatch

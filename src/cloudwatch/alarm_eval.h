// Alarm evaluation as CloudWatch does it (AWS-SEMANTICS §5), as a pure function of the alarm's settings and the
// values of its recent periods, so every rule is table-tested without a clock or a store:
//   - the window is the newest N + 2 complete periods (the docs' example fetches 5 points for N = 3);
//   - with at least N real points, the newest N decide (M of them breaching => ALARM, else OK) and the
//     missing-data setting is not used;
//   - otherwise TreatMissingData decides: `breaching`/`notBreaching` fill the gaps of the newest N periods;
//     `missing` (the default) gives INSUFFICIENT_DATA when there is no point at all, `ignore` keeps the state;
//   - the premature-alarm rule (`missing`): ALARM when the oldest breaching point of the newest N periods is at
//     least M periods old and every newer period is breaching or missing;
//   - StateReason text and StateReasonData JSON in AWS's wording and shape.
//
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "store/store.h"

namespace autopipe::cloudwatch {

struct AlarmRule {
  int64_t period_sec = 60;
  int evaluation_periods = 1;   // N
  int datapoints_to_alarm = 1;  // M
  std::string comparison_operator;
  double threshold = 0;
  std::string treat_missing_data = "missing";
  std::string statistic = "Average";  // or an extended statistic (p90)
};

// One period of the window: its start (epoch seconds) and value (nullopt: missing).
struct PeriodValue {
  int64_t start_sec = 0;
  std::optional<double> value;
  double sample_count = 0;
};

struct Evaluation {
  bool keep_state = false;  // `ignore` with nothing to go on: the state stays as it is
  std::string state;        // OK, ALARM, INSUFFICIENT_DATA
  std::string reason;       // StateReason
  Json reason_data;         // StateReasonData
};

// Whether `value` breaches the threshold under the operator (false for an unknown operator).
bool Breaches(const std::string& op, double value, double threshold);
// True for the four threshold operators (the anomaly-band ones are accepted by PutMetricAlarm only with Metrics).
bool IsComparisonOperator(const std::string& op);

// `window`: the newest N + 2 complete periods, newest first. `old_state` names the transition in the reason.
Evaluation EvaluateAlarm(const AlarmRule& rule, const std::vector<PeriodValue>& window, const std::string& old_state,
                         int64_t now_millis);

// Java's Double.toString for the values CloudWatch quotes: 50 -> "50.0", 99.5 -> "99.5".
std::string FormatNumber(double v);
// 2019-02-10T16:59:00.000+0000, as StateReasonData and alarm notifications write times.
std::string ReasonTime(int64_t millis);

}  // namespace autopipe::cloudwatch

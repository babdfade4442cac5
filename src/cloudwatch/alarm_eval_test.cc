#include "cloudwatch/alarm_eval.h"

#include <gtest/gtest.h>

namespace autopipe::cloudwatch {
namespace {

constexpr int64_t kEnd = 1549817940;  // 2019-02-10T16:59:00Z: the newest period starts here

// A window, newest first, from values where nullopt is a missing period (60-s periods).
std::vector<PeriodValue> Window(std::vector<std::optional<double>> values) {
  std::vector<PeriodValue> out;
  for (size_t i = 0; i < values.size(); ++i) {
    out.push_back(PeriodValue{kEnd - static_cast<int64_t>(i) * 60, values[i], values[i] ? 1.0 : 0.0});
  }
  return out;
}

AlarmRule Rule(int n, int m, const std::string& treat = "missing") {
  AlarmRule r;
  r.period_sec = 60;
  r.evaluation_periods = n;
  r.datapoints_to_alarm = m;
  r.comparison_operator = "GreaterThanThreshold";
  r.threshold = 50;
  r.treat_missing_data = treat;
  return r;
}

const std::optional<double> X = 60.0;   // breaching
const std::optional<double> O = 10.0;   // not breaching
const std::optional<double> _ = std::nullopt;

struct Case {
  const char* what;
  int n, m;
  std::vector<std::optional<double>> window;  // newest first, N + 2 periods
  // Expected state for missing, ignore (from OK), breaching, notBreaching; "keep" = state unchanged.
  const char* missing;
  const char* ignore;
  const char* breaching;
  const char* not_breaching;
};

TEST(AlarmEvalTest, TreatMissingDataTable) {
  const std::vector<Case> cases = {
      {"all breaching", 3, 3, {X, X, X, X, X}, "ALARM", "ALARM", "ALARM", "ALARM"},
      {"all fine", 3, 3, {O, O, O, O, O}, "OK", "OK", "OK", "OK"},
      {"no data at all", 3, 3, {_, _, _, _, _}, "INSUFFICIENT_DATA", "keep", "ALARM", "OK"},
      // N real points (reaching into the two extra periods) decide alone: the setting is not used.
      {"N real points with gaps", 3, 3, {_, X, X, _, X}, "ALARM", "ALARM", "ALARM", "ALARM"},
      {"N real fine points with gaps", 3, 3, {_, O, O, _, O}, "OK", "OK", "OK", "OK"},
      // One fine point, the rest missing.
      {"one fine point (AWS table: - - - - 0)", 3, 3, {O, _, _, _, _}, "OK", "OK", "OK", "OK"},
      {"one fine point, oldest", 3, 1, {_, _, O, _, _}, "OK", "keep", "ALARM", "OK"},
      {"AWS table: 0 - X - X", 3, 3, {X, _, X, _, O}, "OK", "OK", "OK", "OK"},
      {"AWS table: 0 X X - X", 3, 3, {X, _, X, X, O}, "ALARM", "ALARM", "ALARM", "ALARM"},
      // Premature alarm: the breaching point is M = 3 periods old and nothing newer is fine.
      {"premature alarm (AWS table: - - X - -)", 3, 3, {_, _, X, _, _}, "ALARM", "keep", "ALARM", "OK"},
      {"breaching point too recent", 3, 3, {_, X, _, _, _}, "OK", "keep", "ALARM", "OK"},
      {"newer fine point stops premature", 3, 3, {O, _, X, _, _}, "OK", "OK", "OK", "OK"},
      // M of N, not consecutive.
      {"2 of 3 apart", 3, 2, {X, O, X, O, O}, "ALARM", "ALARM", "ALARM", "ALARM"},
      {"1 of 3 of 2", 3, 2, {X, O, O, X, X}, "OK", "OK", "OK", "OK"},
      {"N real points found further back", 3, 2, {O, _, _, O, O}, "OK", "OK", "OK", "OK"},
      {"two gaps, M=2", 4, 2, {O, _, _, O, _, _}, "OK", "keep", "ALARM", "OK"},
  };
  for (const auto& c : cases) {
    const char* expected[] = {c.missing, c.ignore, c.breaching, c.not_breaching};
    const char* treats[] = {"missing", "ignore", "breaching", "notBreaching"};
    for (int t = 0; t < 4; ++t) {
      Evaluation ev = EvaluateAlarm(Rule(c.n, c.m, treats[t]), Window(c.window), "OK", kEnd * 1000 + 90'000);
      std::string got = ev.keep_state ? "keep" : ev.state;
      EXPECT_EQ(got, expected[t]) << c.what << " with TreatMissingData=" << treats[t];
    }
  }
}

TEST(AlarmEvalTest, IgnoreKeepsAlarmStateWithoutData) {
  Evaluation ev = EvaluateAlarm(Rule(2, 2, "ignore"), Window({_, _, _, _}), "ALARM", kEnd * 1000);
  EXPECT_TRUE(ev.keep_state);
  EXPECT_EQ(ev.state, "ALARM");
}

TEST(AlarmEvalTest, StateReasonAsAwsWritesIt) {
  AlarmRule r = Rule(1, 1);
  Evaluation ev = EvaluateAlarm(r, Window({99.5, _, _}), "OK", kEnd * 1000 + 90'514);
  EXPECT_EQ(ev.state, "ALARM");
  EXPECT_EQ(ev.reason,
            "Threshold Crossed: 1 out of the last 1 datapoints [99.5 (10/02/19 16:59:00)] was greater than the "
            "threshold (50.0) (minimum 1 datapoint for OK -> ALARM transition).");
  EXPECT_EQ(ev.reason_data["version"], "1.0");
  EXPECT_EQ(ev.reason_data["queryDate"], "2019-02-10T17:00:30.514+0000");
  EXPECT_EQ(ev.reason_data["startDate"], "2019-02-10T16:59:00.000+0000");
  EXPECT_EQ(ev.reason_data["statistic"], "Average");
  EXPECT_EQ(ev.reason_data["period"], 60);
  EXPECT_EQ(ev.reason_data["recentDatapoints"], Json::array({99.5}));
  EXPECT_EQ(ev.reason_data["threshold"], 50.0);

  Evaluation two = EvaluateAlarm(Rule(3, 2), Window({85.25, O, 90.0, _, _}), "INSUFFICIENT_DATA", kEnd * 1000);
  EXPECT_EQ(two.reason,
            "Threshold Crossed: 2 out of the last 3 datapoints [85.25 (10/02/19 16:59:00), 90.0 (10/02/19 16:57:00)] "
            "were greater than the threshold (50.0) (minimum 2 datapoints for INSUFFICIENT_DATA -> ALARM "
            "transition).");
  EXPECT_EQ(two.reason_data["recentDatapoints"], Json::array({90.0, 10.0, 85.25}));

  Evaluation ok = EvaluateAlarm(Rule(1, 1), Window({O, _, _}), "ALARM", kEnd * 1000);
  EXPECT_EQ(ok.reason,
            "Threshold Crossed: 1 datapoint [10.0 (10/02/19 16:59:00)] was not greater than the threshold (50.0).");

  Evaluation none = EvaluateAlarm(Rule(2, 2), Window({_, _, _, _}), "OK", kEnd * 1000);
  EXPECT_EQ(none.reason, "Insufficient Data: 2 datapoints were unknown.");

  Evaluation filled = EvaluateAlarm(Rule(2, 2, "breaching"), Window({_, _, _, _}), "OK", kEnd * 1000);
  EXPECT_EQ(filled.reason,
            "Threshold Crossed: no datapoints were received for 2 periods and 2 missing datapoints were treated as "
            "[Breaching].");
}

TEST(AlarmEvalTest, Operators) {
  EXPECT_TRUE(Breaches("GreaterThanOrEqualToThreshold", 50, 50));
  EXPECT_FALSE(Breaches("GreaterThanThreshold", 50, 50));
  EXPECT_TRUE(Breaches("LessThanThreshold", 49, 50));
  EXPECT_TRUE(Breaches("LessThanOrEqualToThreshold", 50, 50));
  EXPECT_FALSE(Breaches("Bogus", 100, 50));
}

TEST(AlarmEvalTest, NumbersAsJavaWritesThem) {
  EXPECT_EQ(FormatNumber(50), "50.0");
  EXPECT_EQ(FormatNumber(99.5), "99.5");
  EXPECT_EQ(FormatNumber(0.1), "0.1");
  EXPECT_EQ(FormatNumber(-3), "-3.0");
}

}  // namespace
}  // namespace autopipe::cloudwatch

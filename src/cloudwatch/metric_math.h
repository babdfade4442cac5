// Metric math for GetMetricData: the expressions users commonly write over the ids of other queries.
//   - arithmetic: + - * / with parentheses and unary minus, between series (matched by timestamp; a timestamp
//     missing from either side is left out) and numbers (applied to every point);
//   - SUM, AVG, MIN, MAX: over a list `[m1, m2]` (or several arguments) per timestamp, giving a series; over one
//     series, a single number (as CloudWatch does), spread over the timestamps of the other series.
// Division by zero leaves that point out.
//
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "common/status.h"

namespace autopipe::cloudwatch {

struct MathQuery {
  std::string id;
  std::string label;
  bool return_data = true;
  std::string expression;              // empty: a metric query whose series is already filled
  std::map<int64_t, double> series;    // epoch seconds -> value
};

// Fills the series of every expression query (in dependency order). Refuses (ValidationError) a syntax error,
// an unknown id or function, and a cycle.
Status EvaluateMath(std::vector<MathQuery>* queries);

}  // namespace autopipe::cloudwatch

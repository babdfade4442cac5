// CloudWatchRegion: what CloudWatch keeps for one region besides its store documents, and the work it does on
// its own: the metric store (metric_store.h), alarm evaluation on CloudWatch's cadence (alarm_eval.h), alarm
// actions (through every module's ServiceModule::alarm_action_targets), and the metric collectors (every
// module's ServiceModule::collect_metrics).
//
// Alarms are store documents of kind "cloudwatch-alarm" (id: the alarm name), holding the alarm in
// DescribeAlarms' member names (timestamps as epoch millis) plus "Tags"; their history is one document of kind
// "cloudwatch-alarm-history" per alarm name ({"Items": [...]}, newest last, 14 days, at most kMaxHistoryItems).
//
// Thread-safety: every method is safe from any thread. Evaluate/Collect/RunPendingActions take
// RegionContext::mu only for short store read-modify-writes and never while querying metrics or running an
// action; callers must not hold it (except where a method says so).
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "cloudwatch/alarm_eval.h"
#include "cloudwatch/metric_store.h"
#include "region/context.h"
#include "region/module.h"

namespace autopipe::cloudwatch {

namespace kind {
inline constexpr char kAlarm[] = "cloudwatch-alarm";
inline constexpr char kAlarmHistory[] = "cloudwatch-alarm-history";
}  // namespace kind

inline constexpr size_t kMaxHistoryItems = 500;
inline constexpr int64_t kHistoryRetentionMillis = 14LL * 86400 * 1000;
inline constexpr int64_t kCollectEveryMillis = 5000;
inline constexpr int64_t kAsgRepeatMillis = 60'000;

// An alarm action to run (outside RegionContext::mu).
struct PendingAction {
  std::string arn;
  AlarmStateChange change;
};

// A history item (DescribeAlarmHistory's AlarmHistoryItem) to add to the alarm's history writes.
Json HistoryItem(const std::string& alarm, int64_t at_millis, const std::string& type, const std::string& summary,
                 const Json& data);
// Appends `items` to the history document of `alarm` (pruned to 14 days and kMaxHistoryItems); a StoreWrite.
// Call with RegionContext::mu held.
StoreWrite AppendHistory(const RegionContext& ctx, const std::string& alarm, const std::vector<Json>& items,
                         int64_t now_millis);

// The alarm as DescribeAlarms renders it (timestamps as TimestampValue, internal fields left out).
Json RenderAlarm(const Json& doc);
AlarmRule RuleOf(const Json& doc);
MetricKey MetricKeyOf(const Json& doc);
// The actions of `doc` for `state` (AlarmActions, OKActions, InsufficientDataActions).
std::vector<std::string> ActionsFor(const Json& doc, const std::string& state);
// Sets the alarm's state fields (StateValue, StateReason, StateReasonData, timestamps).
void SetState(Json& doc, const std::string& state, const std::string& reason, const std::string& reason_data,
              int64_t now_millis);
// The notification-facing description of a state change.
AlarmStateChange ChangeOf(const Json& doc_after, const std::string& old_state);

class CloudWatchRegion {
 public:
  // The region's CloudWatch state, made on first use (its metric store in DATA_DIR/cloudwatch-metrics.db) and
  // shared by the module's API and controller; it lives as long as either holds it.
  static Result<std::shared_ptr<CloudWatchRegion>> For(RegionContext* ctx);
  // For tests: a region state over a given metric store.
  CloudWatchRegion(RegionContext* ctx, std::unique_ptr<MetricStore> metrics);

  MetricStore& metrics() { return *metrics_; }
  RegionContext* ctx() const { return ctx_; }

  // One pass of CloudWatch's own work at `now_millis` (the controller calls it every second): collect metrics
  // when due, evaluate the alarms that are due, repeat Auto Scaling actions while their state holds, prune.
  void Tick(int64_t now_millis);
  // Calls every module's collect_metrics and stores the samples. Returns how many were stored.
  size_t Collect(int64_t now_millis);
  // Evaluates every alarm due at `now_millis` (all of them when `force`); returns how many changed state.
  size_t EvaluateDue(int64_t now_millis, bool force = false);
  // Queues actions (call with or without RegionContext::mu held); RunPendingActions runs them.
  void QueueActions(std::vector<PendingAction> actions);
  // Runs the queued actions and records each outcome in its alarm's history. Never with RegionContext::mu held.
  void RunPendingActions();

  // Forgets what it knows of an alarm's evaluations (after a write to the alarm: evaluated at the next pass).
  void Touch(const std::string& alarm);

 private:
  struct AlarmMemo {
    uint64_t revision = 0;      // the document revision last evaluated
    int64_t evaluated_at = 0;   // millis
    int64_t asg_actions_at = 0; // last time its Auto Scaling actions ran
  };
  bool EvaluateOne(const Doc& doc, uint64_t revision, int64_t now_millis);

  RegionContext* ctx_;
  std::unique_ptr<MetricStore> metrics_;
  std::mutex mu_;
  std::map<std::string, AlarmMemo> memo_;  // guarded by mu_
  std::deque<PendingAction> pending_;      // guarded by mu_
  int64_t collected_at_ = 0;               // guarded by mu_
  int64_t pruned_at_ = 0;                  // guarded by mu_
  std::mutex run_mu_;                      // one RunPendingActions at a time (keeps actions in order)
};

}  // namespace autopipe::cloudwatch

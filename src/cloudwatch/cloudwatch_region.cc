#include "cloudwatch/cloudwatch_region.h"

#include <algorithm>
#include <filesystem>
#include <utility>

#include <spdlog/spdlog.h>

#include "api/protocol.h"

namespace autopipe::cloudwatch {
namespace {

std::string Str(const Json& doc, const char* field) {
  auto it = doc.find(field);
  return it != doc.end() && it->is_string() ? it->get<std::string>() : std::string();
}

}  // namespace

Json HistoryItem(const std::string& alarm, int64_t at_millis, const std::string& type, const std::string& summary,
                 const Json& data) {
  return Json{{"AlarmName", alarm},
              {"AlarmType", "MetricAlarm"},
              {"Timestamp", at_millis},
              {"HistoryItemType", type},
              {"HistorySummary", summary},
              {"HistoryData", data.dump()}};
}

StoreWrite AppendHistory(const RegionContext& ctx, const std::string& alarm, const std::vector<Json>& items,
                         int64_t now_millis) {
  Json doc = ctx.store->Get(kind::kAlarmHistory, alarm).value_or(Json{{"Items", Json::array()}});
  Json kept = Json::array();
  for (const auto& item : doc["Items"]) {
    if (item.value("Timestamp", int64_t{0}) >= now_millis - kHistoryRetentionMillis) kept.push_back(item);
  }
  for (const auto& item : items) kept.push_back(item);
  if (kept.size() > kMaxHistoryItems) kept.erase(kept.begin(), kept.begin() + (kept.size() - kMaxHistoryItems));
  doc["Items"] = std::move(kept);
  return StoreWrite{kind::kAlarmHistory, alarm, std::move(doc), std::nullopt};
}

Json RenderAlarm(const Json& doc) {
  JsonObject out(28);
  for (auto it = doc.begin(); it != doc.end(); ++it) {
    const std::string& k = it.key();
    if (k == "Tags") continue;
    if (k == "AlarmConfigurationUpdatedTimestamp" || k == "StateUpdatedTimestamp" ||
        k == "StateTransitionedTimestamp") {
      out.Add(k.c_str(), TimestampValue(it.value().get<int64_t>()));
    } else {
      out.Add(k.c_str(), it.value());
    }
  }
  return out.Take();
}

AlarmRule RuleOf(const Json& doc) {
  AlarmRule r;
  r.period_sec = doc.value("Period", int64_t{60});
  r.evaluation_periods = doc.value("EvaluationPeriods", 1);
  r.datapoints_to_alarm = doc.value("DatapointsToAlarm", r.evaluation_periods);
  r.comparison_operator = Str(doc, "ComparisonOperator");
  r.threshold = doc.value("Threshold", 0.0);
  r.treat_missing_data = doc.contains("TreatMissingData") ? Str(doc, "TreatMissingData") : "missing";
  r.statistic = doc.contains("Statistic") ? Str(doc, "Statistic") : Str(doc, "ExtendedStatistic");
  return r;
}

MetricKey MetricKeyOf(const Json& doc) {
  MetricKey k;
  k.namespace_ = Str(doc, "Namespace");
  k.name = Str(doc, "MetricName");
  if (doc.contains("Dimensions")) {
    for (const auto& d : doc["Dimensions"]) k.dimensions.emplace_back(Str(d, "Name"), Str(d, "Value"));
  }
  k.Canonicalize();
  return k;
}

std::vector<std::string> ActionsFor(const Json& doc, const std::string& state) {
  const char* field = state == "ALARM" ? "AlarmActions" : state == "OK" ? "OKActions" : "InsufficientDataActions";
  std::vector<std::string> out;
  if (doc.contains(field)) {
    for (const auto& a : doc[field]) out.push_back(a.get<std::string>());
  }
  return out;
}

void SetState(Json& doc, const std::string& state, const std::string& reason, const std::string& reason_data,
              int64_t now_millis) {
  bool transition = Str(doc, "StateValue") != state;
  doc["StateValue"] = state;
  doc["StateReason"] = reason;
  if (reason_data.empty()) {
    doc.erase("StateReasonData");
  } else {
    doc["StateReasonData"] = reason_data;
  }
  doc["StateUpdatedTimestamp"] = now_millis;
  if (transition || !doc.contains("StateTransitionedTimestamp")) doc["StateTransitionedTimestamp"] = now_millis;
}

AlarmStateChange ChangeOf(const Json& doc, const std::string& old_state) {
  AlarmStateChange c;
  c.alarm_name = Str(doc, "AlarmName");
  c.alarm_arn = Str(doc, "AlarmArn");
  c.old_state = old_state;
  c.new_state = Str(doc, "StateValue");
  c.reason = Str(doc, "StateReason");
  c.reason_data = Str(doc, "StateReasonData");
  c.at_millis = doc.value("StateUpdatedTimestamp", int64_t{0});
  c.alarm = ExpandParts(RenderAlarm(doc));
  return c;
}

// ---- CloudWatchRegion ----------------------------------------------------------------------------------------

Result<std::shared_ptr<CloudWatchRegion>> CloudWatchRegion::For(RegionContext* ctx) {
  static std::mutex registry_mu;
  static std::map<std::pair<RegionContext*, std::string>, std::weak_ptr<CloudWatchRegion>> registry;
  std::lock_guard lock(registry_mu);
  auto key = std::make_pair(ctx, ctx->data_dir);
  if (auto existing = registry[key].lock()) return existing;
  std::string path = ctx->data_dir.empty() ? ":memory:"
                                           : (std::filesystem::path(ctx->data_dir) / "cloudwatch-metrics.db").string();
  AP_ASSIGN_OR_RETURN(auto store, MetricStore::Open(path));
  auto region = std::make_shared<CloudWatchRegion>(ctx, std::move(store));
  registry[key] = region;
  return region;
}

CloudWatchRegion::CloudWatchRegion(RegionContext* ctx, std::unique_ptr<MetricStore> metrics)
    : ctx_(ctx), metrics_(std::move(metrics)) {}

void CloudWatchRegion::Touch(const std::string& alarm) {
  std::lock_guard lock(mu_);
  memo_.erase(alarm);
}

void CloudWatchRegion::Tick(int64_t now_millis) {
  bool collect = false, prune = false;
  {
    std::lock_guard lock(mu_);
    if (now_millis - collected_at_ >= kCollectEveryMillis) {
      collected_at_ = now_millis;
      collect = true;
    }
    if (now_millis - pruned_at_ >= 600'000) {
      pruned_at_ = now_millis;
      prune = true;
    }
  }
  if (collect) Collect(now_millis);
  // The coarse tiers' pending aggregates reach the file within a second even when no more datapoints come.
  if (Status st = metrics_->Flush(); !st.ok()) spdlog::warn("cloudwatch: flushing the metric store: {}", st.ToString());
  EvaluateDue(now_millis);
  RunPendingActions();
  if (prune) {
    Status st = metrics_->Prune(now_millis);
    if (!st.ok()) spdlog::warn("cloudwatch: pruning the metric store: {}", st.ToString());
  }
}

size_t CloudWatchRegion::Collect(int64_t now_millis) {
  std::vector<MetricSample> samples;
  for (const auto& m : AllModules()) {
    if (m.collect_metrics) m.collect_metrics(ctx_, now_millis, &samples);
  }
  if (samples.empty()) return 0;
  std::vector<std::pair<MetricKey, Datapoint>> points;
  std::vector<std::string> units;
  points.reserve(samples.size());
  for (auto& s : samples) {
    MetricKey k{s.namespace_, s.metric_name, s.dimensions};
    k.Canonicalize();
    Datapoint dp;
    dp.timestamp_millis = s.timestamp_millis ? s.timestamp_millis : now_millis;
    dp.agg = Aggregate{1, s.value, s.value, s.value};
    points.emplace_back(std::move(k), dp);
    units.push_back(s.unit);
  }
  Status st = metrics_->Put(points, units);
  if (!st.ok()) {
    spdlog::warn("cloudwatch: storing collected metrics: {}", st.ToString());
    return 0;
  }
  return points.size();
}

size_t CloudWatchRegion::EvaluateDue(int64_t now_millis, bool force) {
  size_t changed = 0;
  std::vector<PendingAction> repeats;
  const std::vector<std::string> ids = ctx_->store->Ids(kind::kAlarm);
  {
    std::lock_guard lock(mu_);  // forget deleted alarms
    std::erase_if(memo_, [&](const auto& e) { return !std::binary_search(ids.begin(), ids.end(), e.first); });
  }
  for (const auto& id : ids) {
    VersionedDoc v = ctx_->store->GetVersioned(kind::kAlarm, id);
    if (!v.doc) continue;
    const int64_t period = std::max<int64_t>(1, v.doc->value("Period", int64_t{60}));
    const int64_t cadence = period < 60 ? 10'000 : 60'000;
    AlarmMemo memo;
    {
      std::lock_guard lock(mu_);
      memo = memo_[id];
    }
    bool due = force || memo.revision != v.revision || now_millis / cadence != memo.evaluated_at / cadence;
    if (due && EvaluateOne(v.doc, v.revision, now_millis)) ++changed;
    // Auto Scaling actions repeat every minute while the state holds.
    if (v.doc->value("ActionsEnabled", true)) {
      std::string state = v.doc->value("StateValue", std::string());
      std::vector<std::string> asg;
      for (auto& a : ActionsFor(*v.doc, state)) {
        if (a.rfind("arn:aws:autoscaling:", 0) == 0) asg.push_back(a);
      }
      if (!asg.empty()) {
        std::lock_guard lock(mu_);
        auto& m = memo_[id];
        if (m.asg_actions_at != 0 && now_millis - m.asg_actions_at >= kAsgRepeatMillis) {
          auto fresh = ctx_->store->Get(kind::kAlarm, id);
          if (fresh && fresh->value("StateValue", std::string()) == state) {
            for (auto& a : asg) repeats.push_back({a, ChangeOf(*fresh, state)});
          }
        }
      }
    }
  }
  if (!repeats.empty()) QueueActions(std::move(repeats));
  return changed;
}

bool CloudWatchRegion::EvaluateOne(const Doc& doc, uint64_t revision, int64_t now_millis) {
  const std::string name = doc->value("AlarmName", std::string());
  AlarmRule rule = RuleOf(*doc);
  MetricKey key = MetricKeyOf(*doc);
  const int64_t period = std::max<int64_t>(1, rule.period_sec);
  const int64_t n = std::max(1, rule.evaluation_periods);
  const int64_t end = now_millis / 1000 / period * period;  // the newest complete period ends here
  std::vector<PeriodStats> stats;
  auto info = metrics_->Find(key);
  std::string unit = doc->value("Unit", std::string());
  if (info && (unit.empty() || info->unit.empty() || info->unit == unit)) {
    stats = metrics_->Query(key, (end - (n + 2) * period) * 1000, end * 1000, period, now_millis);
  }
  std::vector<PeriodValue> window;
  for (int64_t k = 0; k < n + 2; ++k) {
    PeriodValue pv;
    pv.start_sec = end - (k + 1) * period;
    for (const auto& s : stats) {
      if (s.start_sec == pv.start_sec) {
        pv.value = s.Value(rule.statistic);
        pv.sample_count = s.agg.count;
      }
    }
    window.push_back(pv);
  }
  const std::string old_state = doc->value("StateValue", std::string("INSUFFICIENT_DATA"));
  Evaluation ev = EvaluateAlarm(rule, window, old_state, now_millis);
  auto remember = [&](uint64_t rev) {
    std::lock_guard lock(mu_);
    auto& m = memo_[name];
    m.revision = rev;
    m.evaluated_at = now_millis;
  };
  if (ev.keep_state || ev.state == old_state) {
    remember(revision);
    return false;
  }
  std::vector<PendingAction> actions;
  {
    std::lock_guard lock(*ctx_->mu);
    VersionedDoc current = ctx_->store->GetVersioned(kind::kAlarm, name);
    if (!current.doc || current.revision != revision) return false;  // changed meanwhile: the next pass looks again
    Json updated = *current.doc;
    SetState(updated, ev.state, ev.reason, ev.reason_data.dump(), now_millis);
    Json data = {{"version", "1.0"},
                 {"oldState", {{"stateValue", old_state}, {"stateReason", doc->value("StateReason", std::string())}}},
                 {"newState",
                  {{"stateValue", ev.state}, {"stateReason", ev.reason}, {"stateReasonData", ev.reason_data}}}};
    std::vector<StoreWrite> writes;
    writes.push_back(AppendHistory(*ctx_, name,
                                   {HistoryItem(name, now_millis, "StateUpdate",
                                                "Alarm updated from " + old_state + " to " + ev.state, data)},
                                   now_millis));
    if (updated.value("ActionsEnabled", true)) {
      for (auto& arn : ActionsFor(updated, ev.state)) actions.push_back({arn, ChangeOf(updated, old_state)});
    }
    writes.push_back(StoreWrite{kind::kAlarm, name, std::move(updated), revision});
    Status st = ctx_->store->Commit(writes);
    if (!st.ok()) {
      if (!IsConflict(st)) spdlog::warn("cloudwatch: alarm {}: {}", name, st.ToString());
      return false;
    }
    remember(ctx_->store->GetVersioned(kind::kAlarm, name).revision);
  }
  spdlog::info("cloudwatch: alarm {} {} -> {}", name, old_state, ev.state);
  QueueActions(std::move(actions));
  return true;
}

void CloudWatchRegion::QueueActions(std::vector<PendingAction> actions) {
  std::lock_guard lock(mu_);
  for (auto& a : actions) {
    if (a.arn.rfind("arn:aws:autoscaling:", 0) == 0) memo_[a.change.alarm_name].asg_actions_at = ctx_->clock->NowMillis();
    pending_.push_back(std::move(a));
  }
}

void CloudWatchRegion::RunPendingActions() {
  std::lock_guard run_lock(run_mu_);
  std::deque<PendingAction> batch;
  {
    std::lock_guard lock(mu_);
    batch.swap(pending_);
  }
  if (batch.empty()) return;
  std::map<std::string, std::vector<Json>> history;
  for (const auto& a : batch) {
    // The first module whose target prefix matches carries the action out.
    Status result = [&]() -> Status {
      for (const auto& m : AllModules()) {
        for (const auto& target : m.alarm_action_targets) {
          if (a.arn.rfind(target.arn_prefix, 0) == 0 && target.run) return target.run(ctx_, a.arn, a.change);
        }
      }
      return Status(404, "ResourceNotFound", "no service of this region carries out actions like " + a.arn);
    }();
    const int64_t now = ctx_->clock->NowMillis();
    if (result.ok()) {
      history[a.change.alarm_name].push_back(
          HistoryItem(a.change.alarm_name, now, "Action", "Successfully executed action " + a.arn,
                      Json{{"actionState", "Succeeded"}, {"stateUpdateTimestamp", a.change.at_millis},
                           {"notificationResource", a.arn}}));
    } else {
      spdlog::warn("cloudwatch: alarm {}: action {} failed: {}", a.change.alarm_name, a.arn, result.ToString());
      history[a.change.alarm_name].push_back(HistoryItem(
          a.change.alarm_name, now, "Action",
          "Failed to execute action " + a.arn + ". Received error: \"" + result.message() + "\"",
          Json{{"actionState", "Failed"}, {"stateUpdateTimestamp", a.change.at_millis},
               {"notificationResource", a.arn}, {"error", result.message()}}));
    }
  }
  std::lock_guard lock(*ctx_->mu);
  std::vector<StoreWrite> writes;
  const int64_t now = ctx_->clock->NowMillis();
  for (const auto& [alarm, items] : history) writes.push_back(AppendHistory(*ctx_, alarm, items, now));
  Status st = ctx_->store->Commit(writes);
  if (!st.ok()) spdlog::warn("cloudwatch: recording alarm action history: {}", st.ToString());
}

}  // namespace autopipe::cloudwatch

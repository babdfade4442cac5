#include "cloudwatch/metric_store.h"

#include <sqlite3.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <map>
#include <unordered_set>

#include <spdlog/spdlog.h>

namespace autopipe::cloudwatch {
namespace {

constexpr const char* kTierTables[] = {"points_1", "points_60", "points_300", "points_3600"};

// A prepared statement, finalized on scope exit.
class Stmt {
 public:
  Stmt(sqlite3* db, const char* sql) { ok_ = sqlite3_prepare_v2(db, sql, -1, &st_, nullptr) == SQLITE_OK; }
  ~Stmt() { sqlite3_finalize(st_); }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;
  bool ok() const { return ok_; }
  sqlite3_stmt* get() const { return st_; }

 private:
  sqlite3_stmt* st_ = nullptr;
  bool ok_ = false;
};

Status Exec(sqlite3* db, const std::string& sql) {
  char* err = nullptr;
  if (sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
    std::string msg = err ? err : "unknown";
    sqlite3_free(err);
    spdlog::error("cloudwatch metric store: {}: {}", sql.substr(0, 60), msg);
    return Status::Internal("metric store: " + msg);
  }
  return Status::Ok();
}

std::string DimsText(const Dimensions& dims) {
  std::string s;
  for (const auto& [k, v] : dims) {
    if (!s.empty()) s += '\x1e';
    s += k + "=" + v;
  }
  return s;
}

Dimensions ParseDims(const std::string& s) {
  Dimensions out;
  size_t pos = 0;
  while (pos < s.size()) {
    size_t end = s.find('\x1e', pos);
    if (end == std::string::npos) end = s.size();
    std::string kv = s.substr(pos, end - pos);
    size_t eq = kv.find('=');
    if (eq != std::string::npos) out.emplace_back(kv.substr(0, eq), kv.substr(eq + 1));
    pos = end + 1;
  }
  return out;
}

int64_t SteadyMillis() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

std::string Text(sqlite3_stmt* st, int col) {
  const unsigned char* t = sqlite3_column_text(st, col);
  return t ? reinterpret_cast<const char*>(t) : "";
}

}  // namespace

void MetricKey::Canonicalize() {
  std::sort(dimensions.begin(), dimensions.end());
}

std::string MetricKey::Id() const { return namespace_ + '\x1f' + name + '\x1f' + DimsText(dimensions); }

void Aggregate::Add(const Aggregate& o) {
  count += o.count;
  sum += o.sum;
  min = std::min(min, o.min);
  max = std::max(max, o.max);
}

std::optional<double> PeriodStats::Value(const std::string& statistic) const {
  if (statistic == "SampleCount") return agg.count;
  if (statistic == "Sum") return agg.sum;
  if (statistic == "Minimum") return agg.min;
  if (statistic == "Maximum") return agg.max;
  if (statistic == "Average") return agg.count > 0 ? agg.sum / agg.count : 0.0;
  if (statistic.size() >= 2 && statistic[0] == 'p') {
    char* end = nullptr;
    double p = std::strtod(statistic.c_str() + 1, &end);
    if (*end != '\0' || !(p >= 0 && p <= 100) || samples.empty()) return std::nullopt;
    auto sorted = samples;
    std::sort(sorted.begin(), sorted.end());
    double total = 0;
    for (const auto& s : sorted) total += s.second;
    // Nearest rank over the weights: the smallest value with at least p% of the weight at or below it.
    double rank = p / 100.0 * total, seen = 0;
    for (const auto& s : sorted) {
      seen += s.second;
      if (seen >= rank - 1e-9) return s.first;
    }
    return sorted.back().first;
  }
  return std::nullopt;
}

const std::vector<Tier>& Tiers() {
  static const std::vector<Tier> tiers = {
      {1, 3 * 3600}, {60, 15 * 86400}, {300, 63 * 86400}, {3600, 455 * 86400}};
  return tiers;
}

Result<std::unique_ptr<MetricStore>> MetricStore::Open(const std::string& path) {
  std::unique_ptr<MetricStore> s(new MetricStore());
  s->pending_.resize(Tiers().size());
  if (sqlite3_open_v2(path.c_str(), &s->db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                      nullptr) != SQLITE_OK) {
    return Status::Internal("cannot open the metric store " + path);
  }
  AP_RETURN_IF_ERROR(Exec(s->db_, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA cache_size=-8192;"));
  AP_RETURN_IF_ERROR(Exec(s->db_,
                          "CREATE TABLE IF NOT EXISTS metrics(id INTEGER PRIMARY KEY, ns TEXT NOT NULL, "
                          "name TEXT NOT NULL, dims TEXT NOT NULL, unit TEXT NOT NULL, last_ms INTEGER NOT NULL, "
                          "UNIQUE(ns, name, dims))"));
  for (const char* t : kTierTables) {
    AP_RETURN_IF_ERROR(Exec(s->db_, std::string("CREATE TABLE IF NOT EXISTS ") + t +
                                        "(metric INTEGER NOT NULL, ts INTEGER NOT NULL, count REAL, sum REAL, "
                                        "min REAL, max REAL, PRIMARY KEY(metric, ts)) WITHOUT ROWID"));
  }
  auto prepare = [&](const std::string& sql, sqlite3_stmt** out) {
    return sqlite3_prepare_v3(s->db_, sql.c_str(), -1, SQLITE_PREPARE_PERSISTENT, out, nullptr) == SQLITE_OK;
  };
  for (const char* t : kTierTables) {
    sqlite3_stmt* up = nullptr;
    const bool ok = prepare(std::string("INSERT INTO ") + t +
                                "(metric, ts, count, sum, min, max) VALUES(?, ?, ?, ?, ?, ?) ON CONFLICT(metric, ts) "
                                "DO UPDATE SET count = count + excluded.count, sum = sum + excluded.sum, "
                                "min = MIN(min, excluded.min), max = MAX(max, excluded.max)",
                            &up);
    s->upserts_.push_back(up);  // finalized by the destructor, prepared or not
    if (!ok) return Status::Internal("metric store: cannot prepare a write");
  }
  if (!prepare("UPDATE metrics SET unit = ?, last_ms = ? WHERE id = ?", &s->update_metric_) ||
      !prepare("INSERT INTO metrics(ns, name, dims, unit, last_ms) VALUES(?, ?, ?, ?, ?)", &s->insert_metric_)) {
    return Status::Internal("metric store: cannot prepare a write");
  }
  Stmt st(s->db_, "SELECT id, ns, name, dims, unit, last_ms FROM metrics");
  if (!st.ok()) return Status::Internal("metric store: cannot read its metrics");
  while (sqlite3_step(st.get()) == SQLITE_ROW) {
    MetricInfo info;
    info.key.namespace_ = Text(st.get(), 1);
    info.key.name = Text(st.get(), 2);
    info.key.dimensions = ParseDims(Text(st.get(), 3));
    info.unit = Text(st.get(), 4);
    info.last_millis = sqlite3_column_int64(st.get(), 5);
    s->metrics_[info.key.Id()] = {sqlite3_column_int64(st.get(), 0), info};
  }
  return s;
}

MetricStore::~MetricStore() {
  {
    std::lock_guard lock(mu_);
    Status st = FlushLocked();
    if (!st.ok()) spdlog::error("cloudwatch metric store: final flush: {}", st.ToString());
  }
  for (sqlite3_stmt* up : upserts_) sqlite3_finalize(up);
  sqlite3_finalize(update_metric_);
  sqlite3_finalize(insert_metric_);
  sqlite3_close(db_);
}

auto MetricStore::EntryLocked(const MetricKey& key, const std::string& unit,
                                                     int64_t ts_millis,
                                                     std::vector<std::pair<std::string, std::optional<Entry>>>* undo,
                                                     std::unordered_set<Entry*>* dirty) -> Result<Entry*> {
  std::string id = key.Id();
  auto it = metrics_.find(id);
  if (it != metrics_.end()) {
    Entry& e = it->second;
    const bool unit_changes = !unit.empty() && unit != e.second.unit;
    if (unit_changes || ts_millis > e.second.last_millis) {
      undo->emplace_back(id, e);
      dirty->insert(&e);
      if (unit_changes) e.second.unit = unit;
      e.second.last_millis = std::max(e.second.last_millis, ts_millis);
    }
    return &e;
  }
  sqlite3_stmt* ins = insert_metric_;
  sqlite3_reset(ins);
  std::string dims = DimsText(key.dimensions);
  sqlite3_bind_text(ins, 1, key.namespace_.c_str(), -1, SQLITE_TRANSIENT);
  sqlite3_bind_text(ins, 2, key.name.c_str(), -1, SQLITE_TRANSIENT);
  sqlite3_bind_text(ins, 3, dims.c_str(), -1, SQLITE_TRANSIENT);
  sqlite3_bind_text(ins, 4, unit.c_str(), -1, SQLITE_TRANSIENT);
  sqlite3_bind_int64(ins, 5, ts_millis);
  if (sqlite3_step(ins) != SQLITE_DONE) return Status::Internal("metric store: cannot add a metric");
  int64_t rowid = sqlite3_last_insert_rowid(db_);
  MetricInfo info;
  info.key = key;
  info.unit = unit;
  info.last_millis = ts_millis;
  undo->emplace_back(id, std::nullopt);
  auto [inserted, _] = metrics_.emplace(std::move(id), Entry{rowid, std::move(info)});
  return &inserted->second;
}

Status MetricStore::Put(const std::vector<std::pair<MetricKey, Datapoint>>& points,
                        const std::vector<std::string>& units) {
  std::lock_guard lock(mu_);
  // Index changes made by this call, undone (newest first) if the transaction fails.
  std::vector<std::pair<std::string, std::optional<Entry>>> undo;
  std::unordered_set<Entry*> dirty;
  auto restore = [&] {
    for (auto it = undo.rbegin(); it != undo.rend(); ++it) {
      if (it->second) {
        metrics_[it->first] = *it->second;
      } else {
        metrics_.erase(it->first);
      }
    }
  };
  const int64_t steady_ms = SteadyMillis();
  const bool flush = steady_ms - flushed_at_ms_ >= 1000;
  // (metric row id, bucket start) -> aggregate, per tier; ordered, so rows are written in key order.
  std::vector<Buckets> buckets(Tiers().size());
  AP_RETURN_IF_ERROR(Exec(db_, "BEGIN"));
  Status st = [&]() -> Status {
    Entry* current = nullptr;
    for (size_t i = 0; i < points.size(); ++i) {
      const auto& [key, dp] = points[i];
      const std::string& unit = i < units.size() ? units[i] : std::string();
      // Consecutive datapoints of one metric (a Values list) look the metric up once, unless they change it.
      const bool same = current != nullptr && key.name == points[i - 1].first.name &&
                        key.namespace_ == points[i - 1].first.namespace_ &&
                        key.dimensions == points[i - 1].first.dimensions &&
                        (unit.empty() || unit == current->second.unit) &&
                        dp.timestamp_millis <= current->second.last_millis;
      if (!same) {
        AP_ASSIGN_OR_RETURN(current, EntryLocked(key, unit, dp.timestamp_millis, &undo, &dirty));
      }
      const int64_t id = current->first;
      const int64_t sec = dp.timestamp_millis >= 0 ? dp.timestamp_millis / 1000 : (dp.timestamp_millis - 999) / 1000;
      for (size_t t = 0; t < Tiers().size(); ++t) {
        const int64_t res = Tiers()[t].resolution_sec;
        buckets[t][{id, sec - ((sec % res) + res) % res}].Add(dp.agg);
      }
    }
    AP_RETURN_IF_ERROR(WriteBucketsLocked(0, buckets[0]));
    if (flush) {
      for (size_t t = 1; t < Tiers().size(); ++t) {
        AP_RETURN_IF_ERROR(WriteBucketsLocked(t, pending_[t]));
        AP_RETURN_IF_ERROR(WriteBucketsLocked(t, buckets[t]));
      }
    }
    // A new metric's row already holds its unit and timestamp; one added and then changed is rewritten.
    for (Entry* e : dirty) {
      sqlite3_stmt* up = update_metric_;
      sqlite3_reset(up);
      sqlite3_bind_text(up, 1, e->second.unit.c_str(), -1, SQLITE_TRANSIENT);
      sqlite3_bind_int64(up, 2, e->second.last_millis);
      sqlite3_bind_int64(up, 3, e->first);
      if (sqlite3_step(up) != SQLITE_DONE) return Status::Internal("metric store: cannot update a metric");
    }
    return Status::Ok();
  }();
  if (!st.ok()) {
    (void)Exec(db_, "ROLLBACK");  // the failure being reported is `st`; a failed rollback leaves nothing to add
    restore();
    return st;
  }
  Status commit = Exec(db_, "COMMIT");
  if (!commit.ok()) {
    (void)Exec(db_, "ROLLBACK");  // as above
    restore();
    return commit;
  }
  // Only now does this call's share of the coarse tiers join what is pending (a failed call stored nothing).
  for (size_t t = 1; t < Tiers().size(); ++t) {
    if (flush) {
      pending_[t].clear();
    } else {
      for (const auto& [k, agg] : buckets[t]) pending_[t][k].Add(agg);
    }
  }
  if (flush) flushed_at_ms_ = steady_ms;
  return commit;
}

Status MetricStore::WriteBucketsLocked(size_t tier, const Buckets& buckets) const {
  sqlite3_stmt* s = upserts_[tier];
  for (const auto& [k, agg] : buckets) {
    sqlite3_reset(s);
    sqlite3_bind_int64(s, 1, k.first);
    sqlite3_bind_int64(s, 2, k.second);
    sqlite3_bind_double(s, 3, agg.count);
    sqlite3_bind_double(s, 4, agg.sum);
    sqlite3_bind_double(s, 5, agg.min);
    sqlite3_bind_double(s, 6, agg.max);
    if (sqlite3_step(s) != SQLITE_DONE) return Status::Internal("metric store: cannot write a datapoint");
  }
  return Status::Ok();
}

Status MetricStore::FlushLocked() const {
  bool any = false;
  for (size_t t = 1; t < pending_.size(); ++t) any = any || !pending_[t].empty();
  flushed_at_ms_ = SteadyMillis();
  if (!any) return Status::Ok();
  AP_RETURN_IF_ERROR(Exec(db_, "BEGIN"));
  for (size_t t = 1; t < pending_.size(); ++t) {
    Status st = WriteBucketsLocked(t, pending_[t]);
    if (!st.ok()) {
      (void)Exec(db_, "ROLLBACK");  // reporting `st`; pending stays for the next try
      return st;
    }
  }
  Status commit = Exec(db_, "COMMIT");
  if (!commit.ok()) {
    (void)Exec(db_, "ROLLBACK");  // as above
    return commit;
  }
  for (auto& b : pending_) b.clear();
  return Status::Ok();
}

Status MetricStore::Flush() {
  std::lock_guard lock(mu_);
  return FlushLocked();
}

std::vector<PeriodStats> MetricStore::Query(const MetricKey& key, int64_t start_millis, int64_t end_millis,
                                            int64_t period_sec, int64_t now_millis) const {
  std::vector<PeriodStats> out;
  if (period_sec <= 0 || end_millis <= start_millis) return out;
  std::lock_guard lock(mu_);
  auto it = metrics_.find(key.Id());
  if (it == metrics_.end()) return out;
  // The finest tier that still holds the start of the range (and whose buckets fit the period).
  size_t tier = 0;
  while (tier + 1 < Tiers().size() &&
         (now_millis / 1000 - Tiers()[tier].retention_sec > start_millis / 1000 ||
          period_sec % Tiers()[tier].resolution_sec != 0)) {
    ++tier;
  }
  if (period_sec % Tiers()[tier].resolution_sec != 0) return out;  // no tier holds data this fine any more
  if (tier > 0) {
    Status flushed = FlushLocked();
    if (!flushed.ok()) spdlog::error("cloudwatch metric store: flush before a query: {}", flushed.ToString());
  }
  // Period starts are multiples of the period; a period is included when it starts in [start, end).
  int64_t first = start_millis / 1000;
  first = first % period_sec == 0 ? first : first - ((first % period_sec) + period_sec) % period_sec + period_sec;
  int64_t end = (end_millis + 999) / 1000;
  if (first >= end) return out;
  std::string sql = std::string("SELECT ts, count, sum, min, max FROM ") + kTierTables[tier] +
                    " WHERE metric = ? AND ts >= ? AND ts < ? ORDER BY ts";
  Stmt st(db_, sql.c_str());
  if (!st.ok()) return out;
  sqlite3_bind_int64(st.get(), 1, it->second.first);
  sqlite3_bind_int64(st.get(), 2, first);
  sqlite3_bind_int64(st.get(), 3, end + period_sec);  // periods starting before `end` run on past it
  while (sqlite3_step(st.get()) == SQLITE_ROW) {
    int64_t ts = sqlite3_column_int64(st.get(), 0);
    int64_t start = ts - ((ts % period_sec) + period_sec) % period_sec;
    if (start < first || start >= end) continue;
    Aggregate a{sqlite3_column_double(st.get(), 1), sqlite3_column_double(st.get(), 2),
                sqlite3_column_double(st.get(), 3), sqlite3_column_double(st.get(), 4)};
    if (out.empty() || out.back().start_sec != start) {
      out.push_back(PeriodStats{start, Aggregate{}, {}});
    }
    out.back().agg.Add(a);
    if (a.count > 0) out.back().samples.emplace_back(a.sum / a.count, a.count);
  }
  return out;
}

std::vector<MetricInfo> MetricStore::List() const {
  std::lock_guard lock(mu_);
  std::vector<MetricInfo> out;
  out.reserve(metrics_.size());
  for (const auto& [id, m] : metrics_) out.push_back(m.second);
  return out;
}

std::optional<MetricInfo> MetricStore::Find(const MetricKey& key) const {
  std::lock_guard lock(mu_);
  auto it = metrics_.find(key.Id());
  if (it == metrics_.end()) return std::nullopt;
  return it->second.second;
}

size_t MetricStore::metric_count() const {
  std::lock_guard lock(mu_);
  return metrics_.size();
}

Status MetricStore::Prune(int64_t now_millis) {
  std::lock_guard lock(mu_);
  AP_RETURN_IF_ERROR(FlushLocked());
  int64_t now = now_millis / 1000;
  for (size_t t = 0; t < Tiers().size(); ++t) {
    AP_RETURN_IF_ERROR(Exec(db_, std::string("DELETE FROM ") + kTierTables[t] + " WHERE ts < " +
                                     std::to_string(now - Tiers()[t].retention_sec)));
  }
  // A metric with no datapoint left in its longest tier is gone.
  AP_RETURN_IF_ERROR(Exec(db_, "DELETE FROM metrics WHERE id NOT IN (SELECT DISTINCT metric FROM points_3600)"));
  int64_t cutoff_ms = (now - Tiers().back().retention_sec) * 1000;
  std::erase_if(metrics_, [&](const auto& e) { return e.second.second.last_millis < cutoff_ms; });
  return Status::Ok();
}

}  // namespace autopipe::cloudwatch

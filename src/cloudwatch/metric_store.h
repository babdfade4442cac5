// MetricStore: CloudWatch's datapoints, durable, at one-second resolution, with AWS's retention tiers.
//
// A metric is (namespace, name, dimensions); dimensions are a set (kept sorted by name). Each datapoint lands in
// four tiers at once, each an aggregate (SampleCount, Sum, Minimum, Maximum) per bucket of its resolution:
//   1 s buckets kept 3 h, 60 s kept 15 days, 300 s kept 63 days, 3600 s kept 455 days (AWS-SEMANTICS §5).
// A query reads the finest tier that still holds its StartTime. Percentiles are computed from the buckets of
// the tier read (exact while each second holds one value, as the collectors write; several values in one second
// count as their mean with their weight).
//
// Storage: its own SQLite file (WAL, synchronous=NORMAL: an acknowledged datapoint survives a server crash; a
// power cut may lose the last moments), separate from the region's document store so that a stream of
// datapoints never competes with API writes for the store's fsync'd commits. Memory is bounded by SQLite's page
// cache (8 MiB) and the metric index (one entry per metric, ~200 B). Disk: a 1-s bucket row costs ~40 B with its
// key, so 10,000 metrics written every second hold 10,000 x 10,800 rows ~ 4.3 GB for the 3-h tier, plus 1/60 of
// that per day for the 60-s tier (~10 GB over 15 days); metrics written every 10 s (the collectors) cost a tenth.
//
// Thread-safety: every method is safe to call from any thread (one internal mutex).
#pragma once

#include <cstdint>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_set>
#include <utility>
#include <vector>

#include "common/status.h"

struct sqlite3;
struct sqlite3_stmt;

namespace autopipe::cloudwatch {

using Dimensions = std::vector<std::pair<std::string, std::string>>;

struct MetricKey {
  std::string namespace_;
  std::string name;
  Dimensions dimensions;  // sorted by name (Canonicalize() sorts)
  // Sorts the dimensions; the key's identity.
  void Canonicalize();
  std::string Id() const;  // namespace \x1f name \x1f k=v \x1e k=v ...
};

struct Aggregate {
  double count = 0;
  double sum = 0;
  double min = std::numeric_limits<double>::infinity();
  double max = -std::numeric_limits<double>::infinity();
  void Add(const Aggregate& o);
};

// One value (count 1) or a statistic set.
struct Datapoint {
  int64_t timestamp_millis = 0;
  Aggregate agg;
};

// One period of a query's result.
struct PeriodStats {
  int64_t start_sec = 0;
  Aggregate agg;
  std::vector<std::pair<double, double>> samples;  // (bucket mean, weight): for percentiles
  // The value of `statistic` ("Average", "Sum", "SampleCount", "Minimum", "Maximum" or "pNN[.N]"); nullopt for
  // an unknown statistic.
  std::optional<double> Value(const std::string& statistic) const;
};

struct MetricInfo {
  MetricKey key;
  std::string unit;
  int64_t last_millis = 0;  // newest datapoint's timestamp
};

struct Tier {
  int64_t resolution_sec;
  int64_t retention_sec;
};
// The tiers, finest first.
const std::vector<Tier>& Tiers();

class MetricStore {
 public:
  // Opens (creating) the SQLite file at `path`; ":memory:" for tests.
  static Result<std::unique_ptr<MetricStore>> Open(const std::string& path);
  ~MetricStore();

  // Adds datapoints to `key` (every tier) in one transaction. `unit` (may be empty) becomes the metric's unit.
  // Datapoints of one call that fall in the same bucket of a tier are merged before they are written (150
  // values of one metric in one second are one row update per tier), and each metric's row is rewritten at most
  // once per call. The 1-s tier is written in the call's transaction; the coarser tiers (60, 300, 3600 s) are
  // merged in memory and written at most once a second (in a Put's transaction or by Flush), so a metric written
  // many times a second costs one row update per coarse bucket per second rather than per call. A query that
  // reads a coarse tier flushes first. A kill -9 can lose the last second of the coarse tiers (read only for
  // ranges older than 3 h); the 1-s tier, which answers everything within 3 h, keeps every acknowledged point.
  Status Put(const std::vector<std::pair<MetricKey, Datapoint>>& points, const std::vector<std::string>& units);
  // Periods of `period_sec` (aligned to multiples of the period since the epoch) overlapping
  // [start_millis, end_millis), oldest first, only those with data. `now_millis` picks the tier.
  std::vector<PeriodStats> Query(const MetricKey& key, int64_t start_millis, int64_t end_millis, int64_t period_sec,
                                 int64_t now_millis) const;
  // Every metric (namespace, then name, then dimensions order).
  std::vector<MetricInfo> List() const;
  std::optional<MetricInfo> Find(const MetricKey& key) const;
  // Drops buckets older than each tier's retention, and metrics with no data left.
  Status Prune(int64_t now_millis);
  // Writes the coarser tiers' pending aggregates (see Put). Called every second by CloudWatch's tick; Put does it
  // too once a second has passed since the last flush.
  Status Flush();
  size_t metric_count() const;

 private:
  MetricStore() = default;
  using Entry = std::pair<int64_t, MetricInfo>;  // (row id, info)
  // The metric's entry (added to the table and the index when new), with `unit` and `ts_millis` applied in
  // memory only; `undo` gets the entry as it was (nullopt: it is new), `dirty` the entries whose row must be
  // rewritten before the transaction commits.
  Result<Entry*> EntryLocked(const MetricKey& key, const std::string& unit, int64_t ts_millis,
                             std::vector<std::pair<std::string, std::optional<Entry>>>* undo,
                             std::unordered_set<Entry*>* dirty);

  mutable std::mutex mu_;
  sqlite3* db_ = nullptr;                                  // guarded by mu_
  // Statements of the write path, prepared once (guarded by mu_): an upsert per tier, the metric row's update and
  // insert.
  std::vector<sqlite3_stmt*> upserts_;
  sqlite3_stmt* update_metric_ = nullptr;
  sqlite3_stmt* insert_metric_ = nullptr;
  std::map<std::string, Entry> metrics_;  // by MetricKey::Id(); guarded by mu_
  // Per tier (index 0 unused): (metric row id, bucket start) -> what is not yet written. Guarded by mu_; mutable
  // because a const Query flushes it.
  using Buckets = std::map<std::pair<int64_t, int64_t>, Aggregate>;
  Status WriteBucketsLocked(size_t tier, const Buckets& buckets) const;
  Status FlushLocked() const;
  mutable std::vector<Buckets> pending_;
  mutable int64_t flushed_at_ms_ = 0;  // steady clock
};

}  // namespace autopipe::cloudwatch

// The region-outage drill's measurements and the arithmetic of its report (`autopipe drill region-outage`,
// drill/drill.h). Everything here is a pure function of what the drill's clients recorded, so it is unit-tested
// on its own (report_test.cc).
//
// Times are seconds since the drill started (one steady clock). The outage starts at `stop_s`: the moment every
// process of the primary region, already frozen one by one with SIGSTOP, was sent SIGKILL (until then a process
// not yet frozen could still answer).
//   HTTP recovery  = end of the first successful GET through the DNS name that started at or after stop_s, minus
//                    stop_s (a GET already in flight at the stop that still succeeded does not count).
//   DB recovery    = end of the first acknowledged write to the new region's DB, minus stop_s.
//   RPO            = writes acknowledged by the old region whose rows are not in the promoted instance.
//
// Thread-safety: pure functions and plain values.
#pragma once

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace autopipe::drill {

struct HttpSample {
  double start_s = 0;
  double end_s = 0;
  bool ok = false;          // 2xx/3xx from the address the DNS name resolved to
  std::string address;      // the address used ("" when the name did not resolve)
  std::string error;        // when not ok
};

enum class WriteTarget { kOld, kNew };

struct WriteSample {
  int64_t seq = 0;
  double start_s = 0;
  double end_s = 0;
  bool acked = false;  // the COMMIT (autocommit INSERT) returned success
  WriteTarget target = WriteTarget::kOld;
  std::string error;
};

struct TimelineEvent {
  double at_s = 0;
  std::string what;
};

struct DrillMeasurements {
  double stop_s = 0;        // the primary region's first process frozen
  bool with_db = true;      // false: an HTTP-only drill (--skip-db)
  std::vector<HttpSample> http;
  std::vector<WriteSample> writes;
  bool present_read = false;              // the promoted instance's table was read
  std::set<int64_t> present_in_new;       // seqs of this run found in the promoted instance
  std::vector<TimelineEvent> timeline;
};

struct DrillReport {
  std::optional<double> http_recovery_s;
  std::string http_recovered_address;
  std::optional<double> db_recovery_s;
  std::optional<double> longest_http_gap_s;  // between two successful GETs, across the outage
  int64_t http_total = 0, http_ok = 0, http_failed = 0;
  int64_t writes_total = 0;
  int64_t acked_old = 0;    // acknowledged by the old region
  int64_t acked_new = 0;    // acknowledged by the promoted instance
  std::optional<int64_t> rpo_transactions;  // acked_old missing in the new region (nullopt: not read)
  std::vector<int64_t> lost_seqs;           // the first ones (at most 20), to look at
  int64_t unacked_present = 0;              // writes not acknowledged (in flight at the stop) that did land
  std::optional<int64_t> last_acked_old_seq;
};

DrillReport Summarize(const DrillMeasurements& m);

// {"http_recovery_seconds":..., "db_recovery_seconds":..., "rpo_transactions":..., "timeline":[...], ...}
nlohmann::ordered_json ReportJson(const DrillMeasurements& m, const DrillReport& r);
std::string ReportText(const DrillMeasurements& m, const DrillReport& r);

}  // namespace autopipe::drill

#include "drill/report.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace autopipe::drill {
namespace {

std::string Seconds(std::optional<double> s) {
  if (!s) return "never (within the drill's bounds)";
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.2f s", *s);
  return buf;
}

nlohmann::ordered_json OrNull(std::optional<double> v) {
  return v ? nlohmann::ordered_json(std::round(*v * 1000) / 1000) : nlohmann::ordered_json(nullptr);
}

}  // namespace

DrillReport Summarize(const DrillMeasurements& m) {
  DrillReport r;
  std::vector<const HttpSample*> http;
  for (const auto& h : m.http) http.push_back(&h);
  std::sort(http.begin(), http.end(), [](auto* a, auto* b) { return a->end_s < b->end_s; });
  std::optional<double> last_ok_end;
  for (const HttpSample* h : http) {
    ++r.http_total;
    if (!h->ok) {
      ++r.http_failed;
      continue;
    }
    ++r.http_ok;
    if (!r.http_recovery_s && h->start_s >= m.stop_s) {
      r.http_recovery_s = h->end_s - m.stop_s;
      r.http_recovered_address = h->address;
    }
    if (last_ok_end) r.longest_http_gap_s = std::max(r.longest_http_gap_s.value_or(0.0), h->end_s - *last_ok_end);
    last_ok_end = h->end_s;
  }
  std::set<int64_t> acked_old;
  for (const auto& w : m.writes) {
    ++r.writes_total;
    if (!w.acked) continue;
    if (w.target == WriteTarget::kOld) {
      ++r.acked_old;
      acked_old.insert(w.seq);
      r.last_acked_old_seq = std::max(r.last_acked_old_seq.value_or(w.seq), w.seq);
    } else {
      ++r.acked_new;
      const double after = w.end_s - m.stop_s;
      if (!r.db_recovery_s || after < *r.db_recovery_s) r.db_recovery_s = after;
    }
  }
  if (m.with_db && m.present_read) {
    int64_t lost = 0;
    for (int64_t seq : acked_old) {
      if (m.present_in_new.count(seq)) continue;
      ++lost;
      if (r.lost_seqs.size() < 20) r.lost_seqs.push_back(seq);
    }
    r.rpo_transactions = lost;
    for (const auto& w : m.writes) {
      if (!w.acked && m.present_in_new.count(w.seq)) ++r.unacked_present;
    }
  }
  return r;
}

nlohmann::ordered_json ReportJson(const DrillMeasurements& m, const DrillReport& r) {
  nlohmann::ordered_json j;
  j["http_recovery_seconds"] = OrNull(r.http_recovery_s);
  j["http_recovered_address"] = r.http_recovered_address;
  j["db_recovery_seconds"] = m.with_db ? OrNull(r.db_recovery_s) : nlohmann::ordered_json(nullptr);
  j["rpo_transactions"] = r.rpo_transactions ? nlohmann::ordered_json(*r.rpo_transactions) : nullptr;
  j["longest_http_gap_seconds"] = OrNull(r.longest_http_gap_s);
  j["http"] = {{"requests", r.http_total}, {"ok", r.http_ok}, {"failed", r.http_failed}};
  nlohmann::ordered_json acked = nlohmann::ordered_json::array();
  for (const auto& w : m.writes) {
    if (w.acked && w.target == WriteTarget::kOld) acked.push_back(w.seq);
  }
  j["writes"] = {{"attempted", r.writes_total},
                 {"acknowledged_old_region", r.acked_old},
                 {"acknowledged_new_region", r.acked_new},
                 {"last_acknowledged_old_seq", r.last_acked_old_seq ? nlohmann::ordered_json(*r.last_acked_old_seq)
                                                                    : nlohmann::ordered_json(nullptr)},
                 {"acknowledged_old_seqs", acked},
                 {"lost_seqs", r.lost_seqs},
                 {"unacknowledged_but_present", r.unacked_present}};
  j["stopped_at_seconds"] = std::round(m.stop_s * 1000) / 1000;
  nlohmann::ordered_json tl = nlohmann::ordered_json::array();
  for (const auto& e : m.timeline) {
    tl.push_back({{"at_seconds", std::round(e.at_s * 1000) / 1000},
                  {"offset_from_stop_seconds", std::round((e.at_s - m.stop_s) * 1000) / 1000},
                  {"event", e.what}});
  }
  j["timeline"] = tl;
  return j;
}

std::string ReportText(const DrillMeasurements& m, const DrillReport& r) {
  std::string out;
  char line[512];
  out += "Region-outage drill report\n";
  out += "  HTTP through the DNS name answered again after: " + Seconds(r.http_recovery_s);
  if (!r.http_recovered_address.empty()) out += " (from " + r.http_recovered_address + ")";
  out += "\n";
  if (m.with_db) {
    out += "  First acknowledged write in the new region after: " + Seconds(r.db_recovery_s) + "\n";
    if (r.rpo_transactions) {
      std::snprintf(line, sizeof(line),
                    "  RPO: %lld of %lld writes acknowledged by the old region are missing in the promoted instance",
                    static_cast<long long>(*r.rpo_transactions), static_cast<long long>(r.acked_old));
      out += line;
      if (r.unacked_present > 0) {
        out += "; " + std::to_string(r.unacked_present) + " unacknowledged write(s) did land";
      }
      out += "\n";
    } else {
      out += "  RPO: unknown (the promoted instance's table could not be read)\n";
    }
  } else {
    out += "  Database: not part of this drill (--skip-db)\n";
  }
  std::snprintf(line, sizeof(line), "  HTTP: %lld requests, %lld ok, %lld failed; longest gap between answers %s\n",
                static_cast<long long>(r.http_total), static_cast<long long>(r.http_ok),
                static_cast<long long>(r.http_failed), Seconds(r.longest_http_gap_s).c_str());
  out += line;
  if (m.with_db) {
    std::snprintf(line, sizeof(line), "  Writes: %lld attempted, %lld acknowledged by the old region, %lld by the new\n",
                  static_cast<long long>(r.writes_total), static_cast<long long>(r.acked_old),
                  static_cast<long long>(r.acked_new));
    out += line;
  }
  out += "Timeline (seconds from the stop of the region):\n";
  for (const auto& e : m.timeline) {
    std::snprintf(line, sizeof(line), "  %+8.2f  %s\n", e.at_s - m.stop_s, e.what.c_str());
    out += line;
  }
  return out;
}

}  // namespace autopipe::drill

#include "drill/report.h"

#include <gtest/gtest.h>

namespace autopipe::drill {
namespace {

HttpSample Get(double start, double end, bool ok, std::string addr = "127.5.200.1") {
  HttpSample h;
  h.start_s = start;
  h.end_s = end;
  h.ok = ok;
  h.address = std::move(addr);
  return h;
}

WriteSample Write(int64_t seq, double end, bool acked, WriteTarget t) {
  WriteSample w;
  w.seq = seq;
  w.start_s = end - 0.01;
  w.end_s = end;
  w.acked = acked;
  w.target = t;
  return w;
}

TEST(DrillReportTest, HttpRecoveryCountsOnlyRequestsStartedAfterTheStop) {
  DrillMeasurements m;
  m.stop_s = 10;
  m.http = {Get(9.0, 9.1, true), Get(9.95, 10.2, true),  // in flight at the stop: does not count
            Get(10.5, 11.5, false), Get(12.0, 12.3, true, "127.6.200.1"), Get(13, 13.1, true, "127.6.200.1")};
  DrillReport r = Summarize(m);
  ASSERT_TRUE(r.http_recovery_s.has_value());
  EXPECT_NEAR(*r.http_recovery_s, 2.3, 1e-9);
  EXPECT_EQ(r.http_recovered_address, "127.6.200.1");
  EXPECT_EQ(r.http_total, 5);
  EXPECT_EQ(r.http_ok, 4);
  EXPECT_EQ(r.http_failed, 1);
  EXPECT_NEAR(*r.longest_http_gap_s, 2.1, 1e-9);  // 10.2 -> 12.3
}

TEST(DrillReportTest, NoRecoveryIsReportedAsNone) {
  DrillMeasurements m;
  m.stop_s = 1;
  m.http = {Get(0.5, 0.6, true), Get(1.5, 2.5, false)};
  m.writes = {Write(1, 0.5, true, WriteTarget::kOld), Write(2, 2, false, WriteTarget::kNew)};
  DrillReport r = Summarize(m);
  EXPECT_FALSE(r.http_recovery_s.has_value());
  EXPECT_FALSE(r.db_recovery_s.has_value());
  EXPECT_FALSE(r.rpo_transactions.has_value());  // the promoted table was not read
  auto j = ReportJson(m, r);
  EXPECT_TRUE(j["http_recovery_seconds"].is_null());
  EXPECT_TRUE(j["rpo_transactions"].is_null());
}

TEST(DrillReportTest, RpoIsAcknowledgedOldMinusPresent) {
  DrillMeasurements m;
  m.stop_s = 5;
  for (int64_t s = 1; s <= 10; ++s) m.writes.push_back(Write(s, 0.4 * s, true, WriteTarget::kOld));
  m.writes.push_back(Write(11, 5.0, false, WriteTarget::kOld));  // in flight at the stop
  m.writes.push_back(Write(12, 6.0, false, WriteTarget::kNew));  // read-only until promoted
  m.writes.push_back(Write(13, 7.5, true, WriteTarget::kNew));
  m.writes.push_back(Write(14, 7.6, true, WriteTarget::kNew));
  m.present_read = true;
  m.present_in_new = {1, 2, 3, 4, 5, 6, 7, 9, 11, 13, 14};  // 8 and 10 did not replicate; 11 landed unacknowledged
  DrillReport r = Summarize(m);
  EXPECT_EQ(r.acked_old, 10);
  EXPECT_EQ(r.acked_new, 2);
  ASSERT_TRUE(r.rpo_transactions.has_value());
  EXPECT_EQ(*r.rpo_transactions, 2);
  EXPECT_EQ(r.lost_seqs, (std::vector<int64_t>{8, 10}));
  EXPECT_EQ(r.unacked_present, 1);
  EXPECT_EQ(r.last_acked_old_seq, 10);
  EXPECT_NEAR(*r.db_recovery_s, 2.5, 1e-9);
  auto j = ReportJson(m, r);
  EXPECT_EQ(j["rpo_transactions"], 2);
  EXPECT_EQ(j["writes"]["acknowledged_old_seqs"].size(), 10u);
  EXPECT_DOUBLE_EQ(j["db_recovery_seconds"].get<double>(), 2.5);
  EXPECT_NE(ReportText(m, r).find("RPO: 2 of 10 writes"), std::string::npos);
}

TEST(DrillReportTest, TimelineOffsetsAreFromTheStop) {
  DrillMeasurements m;
  m.stop_s = 3;
  m.with_db = false;
  m.timeline = {{1.0, "load started"}, {3.0, "region stopped"}, {4.25, "promoted"}};
  DrillReport r = Summarize(m);
  auto j = ReportJson(m, r);
  EXPECT_DOUBLE_EQ(j["timeline"][0]["offset_from_stop_seconds"].get<double>(), -2.0);
  EXPECT_DOUBLE_EQ(j["timeline"][2]["offset_from_stop_seconds"].get<double>(), 1.25);
  EXPECT_TRUE(j["db_recovery_seconds"].is_null());
  const std::string text = ReportText(m, r);
  EXPECT_NE(text.find("   +1.25  promoted"), std::string::npos) << text;
  EXPECT_NE(text.find("not part of this drill"), std::string::npos);
}

}  // namespace
}  // namespace autopipe::drill

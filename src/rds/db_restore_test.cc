#include "rds/db_restore.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>

namespace autopipe::rds {
namespace {

namespace fs = std::filesystem;

// 2026-12-01 00:00:00 UTC.
constexpr int64_t kDay0 = 1'796'083'200'000;

std::vector<BackupChoice> ThreeBackups() {
  // Taken at 00:00, 01:00 and 02:00, each ending 2.5 s later, at GTIDs 0-1-10, 0-1-500, 0-1-900.
  return {{"rds:a-0000", "/s/backups/a0", "0-1-10", kDay0, kDay0 + 2500},
          {"rds:a-0100", "/s/backups/a1", "0-1-500", kDay0 + 3'600'000, kDay0 + 3'602'500},
          {"rds:a-0200", "/s/backups/a2", "0-1-900", kDay0 + 7'200'000, kDay0 + 7'202'500}};
}

TEST(DbRestoreRules, ATimeStartsFromTheLastBackupEndingBeforeTheEndOfItsSecond) {
  const auto backups = ThreeBackups();
  RestoreTarget t;
  t.time_ms = kDay0 + 5'400'000;  // 01:30
  EXPECT_EQ(SelectBackup(backups, t), 1u);
  t.time_ms = kDay0 + 9'000'000;  // 02:30
  EXPECT_EQ(SelectBackup(backups, t), 2u);
  // 02:00:02.000 takes all of second 2, and the backup ending at 02:00:02.500 is inside it.
  t.time_ms = kDay0 + 7'202'000;
  EXPECT_EQ(SelectBackup(backups, t), 2u);
  // 02:00:01.999 does not: the 01:00 backup and the archive after it.
  t.time_ms = kDay0 + 7'201'999;
  EXPECT_EQ(SelectBackup(backups, t), 1u);
  // Before the first backup ended: nothing to start from.
  t.time_ms = kDay0 + 1000;
  EXPECT_FALSE(SelectBackup(backups, t));
  // Order of the list does not matter.
  auto reversed = backups;
  std::reverse(reversed.begin(), reversed.end());
  t.time_ms = kDay0 + 5'400'000;
  EXPECT_EQ(reversed[*SelectBackup(reversed, t)].snapshot_id, "rds:a-0100");
}

TEST(DbRestoreRules, AGtidStartsFromTheNewestBackupAtOrBeforeIt) {
  const auto backups = ThreeBackups();
  RestoreTarget t;
  t.gtid = "0-1-499";
  EXPECT_EQ(SelectBackup(backups, t), 0u);
  t.gtid = "0-1-500";  // exactly the backup's position: no replay needed
  EXPECT_EQ(SelectBackup(backups, t), 1u);
  t.gtid = "0-1-100000";
  EXPECT_EQ(SelectBackup(backups, t), 2u);
  t.gtid = "0-1-5";
  EXPECT_FALSE(SelectBackup(backups, t));
  // A domain the backup has and the target lacks: that backup does not qualify.
  std::vector<BackupChoice> two_domains = {{"x", "/x", "0-1-10,1-2-3", kDay0, kDay0 + 1}};
  t.gtid = "0-1-20";
  EXPECT_FALSE(SelectBackup(two_domains, t));
}

TEST(DbRestoreRules, ValidGtids) {
  EXPECT_TRUE(ValidGtid("0-1-1234"));
  EXPECT_TRUE(ValidGtid("12-3456-7"));
  EXPECT_FALSE(ValidGtid("0-1"));
  EXPECT_FALSE(ValidGtid("0-1-"));
  EXPECT_FALSE(ValidGtid("-0-1-2"));
  EXPECT_FALSE(ValidGtid("0--1-2"));
  EXPECT_FALSE(ValidGtid("0-1-2-3"));
  EXPECT_FALSE(ValidGtid("0-1-2,0-2-3"));
  EXPECT_FALSE(ValidGtid("a-1-2"));
  EXPECT_FALSE(ValidGtid("0-1-2; DROP"));
  EXPECT_FALSE(ValidGtid(""));
}

TEST(DbRestoreRules, StopDatetimeIsTheNextSecondInUtc) {
  EXPECT_EQ(StopDatetime(kDay0), "2026-12-01 00:00:01");
  EXPECT_EQ(StopDatetime(kDay0 + 999), "2026-12-01 00:00:01");
  EXPECT_EQ(StopDatetime(kDay0 + 59'999), "2026-12-01 00:01:00");
  EXPECT_EQ(StopDatetime(kDay0 - 1), "2026-12-01 00:00:00");
}

TEST(DbRestoreRules, ReplayArgvStartsAfterWhatIsAppliedAndStopsAtTheTarget) {
  RestoreTarget t;
  t.time_ms = kDay0 + 1500;
  auto argv = ReplayArgv({"/a/db-bin.000001", "/a/db-bin.000002"}, "0-1-42", t);
  const std::vector<std::string> want = {"/usr/bin/mariadb-binlog",
                                         "--no-defaults",
                                         "--skip-gtid-strict-mode",
                                         "--start-position=0-1-42",
                                         "--stop-datetime=2026-12-01 00:00:02",
                                         "/a/db-bin.000001",
                                         "/a/db-bin.000002"};
  EXPECT_EQ(argv, want);
  RestoreTarget g;
  g.gtid = "0-1-77";
  argv = ReplayArgv({"/a/f.000003"}, "", g);
  const std::vector<std::string> want_gtid = {"/usr/bin/mariadb-binlog", "--no-defaults", "--skip-gtid-strict-mode",
                                              "--stop-position=0-1-77", "/a/f.000003"};
  EXPECT_EQ(argv, want_gtid);
  EXPECT_EQ(MergeGtidPositions("0-1-10,1-2-3", "0-2-12"), "0-2-12,1-2-3");
  EXPECT_EQ(MergeGtidPositions("0-1-10", ""), "0-1-10");
  EXPECT_EQ(MergeGtidPositions("", "0-1-9"), "0-1-9");
  EXPECT_EQ(MergeGtidPositions("0-1-10", "0-2-9"), "0-1-10");
  EXPECT_TRUE(GtidReached("0-1-77", "0-1-77"));
  EXPECT_TRUE(GtidReached("0-1-78,1-1-3", "0-1-77"));
  EXPECT_FALSE(GtidReached("0-1-76", "0-1-77"));
  EXPECT_FALSE(GtidReached("", "0-1-77"));
}

TEST(DbRestoreRules, ReplayPlanSkipsFilesOlderThanTheBackupAndOrdersSegments) {
  const int64_t backup_start = kDay0 + 3'600'000;
  ArchiveSegment s1{"s1", "/st/binlogs/s1", kDay0, {"db-bin.000001", "db-bin.000002", "db-bin.000003"},
                    {kDay0 + 1000, backup_start - 61'000, backup_start + 5000}};
  // After a failover: s2's segment starts later, its first file already began before the backup (mtime after).
  ArchiveSegment s2{"s2", "/st/binlogs/s2", backup_start + 10'000, {"db-bin.000001"}, {backup_start + 20'000}};
  // An old segment whose files all predate the backup contributes nothing.
  ArchiveSegment s0{"s0", "/st/binlogs/s0", kDay0 - 1000, {"db-bin.000004"}, {kDay0 - 500}};
  auto steps = PlanReplay({s0, s1, s2}, backup_start);
  ASSERT_EQ(steps.size(), 2u);
  EXPECT_EQ(steps[0].server, "s1");
  EXPECT_EQ(steps[0].files, (std::vector<std::string>{"/st/binlogs/s1/db-bin.000003"}));
  EXPECT_EQ(steps[1].server, "s2");
  EXPECT_EQ(steps[1].files, (std::vector<std::string>{"/st/binlogs/s2/db-bin.000001"}));
  // A file whose last event came within the minute before the backup began is replayed (GTID skips its overlap).
  s1.mtimes[1] = backup_start - 59'000;
  steps = PlanReplay({s1}, backup_start);
  ASSERT_EQ(steps.size(), 1u);
  EXPECT_EQ(steps[0].files.size(), 2u);
}

TEST(DbRestoreRules, ReadArchiveFindsSegmentsInStartOrder) {
  const fs::path store = fs::temp_directory_path() / ("restore-test-" + std::to_string(::getpid()));
  fs::remove_all(store);
  for (const auto& [server, started] : std::vector<std::pair<std::string, int64_t>>{{"s3", 200}, {"s1", 100}}) {
    fs::create_directories(store / "binlogs" / server);
    std::ofstream(store / "binlogs" / server / "segment.json") << "{\"StartedAt\": " << started << "}";
    std::ofstream(store / "binlogs" / server / "db-bin.000002") << "x";
    std::ofstream(store / "binlogs" / server / "db-bin.000001") << "x";
    std::ofstream(store / "binlogs" / server / "db-bin.index") << "x";
  }
  auto segs = ReadArchive(store.string());
  ASSERT_EQ(segs.size(), 2u);
  EXPECT_EQ(segs[0].server, "s1");
  EXPECT_EQ(segs[1].server, "s3");
  EXPECT_EQ(segs[0].files, (std::vector<std::string>{"db-bin.000001", "db-bin.000002"}));
  EXPECT_EQ(segs[0].mtimes.size(), 2u);
  EXPECT_GT(segs[0].mtimes[0], 0);
  fs::remove_all(store);
}

TEST(DbRestoreRules, PointInTimeWindowAndErrors) {
  RestoreSource src;
  src.db_instance_identifier = "db1";
  src.dbi_resource_id = "db-ABC";
  src.instance = Json::object();
  src.retention = 7;
  src.backups = ThreeBackups();
  src.earliest_restorable_time = src.backups.front().end_time;
  src.latest_restorable_time = kDay0 + 10'000'000;
  RestoreTarget t;
  t.time_ms = kDay0 + 5'400'000;
  auto r = PlanPointInTime(src, t);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ((*r)["BackupDir"], "/s/backups/a1");
  EXPECT_EQ((*r)["StoreDir"], "/s");
  EXPECT_EQ((*r)["TargetTime"], kDay0 + 5'400'000);
  EXPECT_EQ((*r)["State"], "pending");
  t.time_ms = src.latest_restorable_time + 1;
  EXPECT_EQ(PlanPointInTime(src, t).status().code(), "InvalidRestoreFault");
  t.time_ms = src.earliest_restorable_time - 1;
  EXPECT_EQ(PlanPointInTime(src, t).status().code(), "InvalidRestoreFault");
  src.retention = 0;
  t.time_ms = kDay0 + 5'400'000;
  EXPECT_EQ(PlanPointInTime(src, t).status().code(), "PointInTimeRestoreNotEnabled");
  EXPECT_EQ(PlanPointInTime(src, RestoreTarget{}, true).status().code(), "PointInTimeRestoreNotEnabled");
  src.retention = 7;
  r = PlanPointInTime(src, RestoreTarget{}, true);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ((*r)["TargetTime"], src.latest_restorable_time);
  EXPECT_EQ((*r)["BackupDir"], "/s/backups/a2");
  src.retention = 7;
  RestoreTarget g;
  g.gtid = "0-1-600";
  r = PlanPointInTime(src, g);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ((*r)["TargetGtid"], "0-1-600");
  EXPECT_EQ((*r)["BackupGtid"], "0-1-500");
}

TEST(DbRestoreRules, TheRestoreControllerHoldsAnInstanceUntilDoneOrDeletedAfterFailing) {
  Json inst = {{"Spec", {{"Deleting", false}}}};
  EXPECT_FALSE(RestoreHoldsInstance(inst));
  inst["Restore"] = {{"State", "pending"}};
  EXPECT_TRUE(RestoreHoldsInstance(inst));
  inst["Restore"]["State"] = "running";
  EXPECT_TRUE(RestoreHoldsInstance(inst));
  inst["Restore"]["State"] = "failed";
  EXPECT_TRUE(RestoreHoldsInstance(inst));
  inst["Spec"]["Deleting"] = true;
  EXPECT_FALSE(RestoreHoldsInstance(inst));
  inst["Restore"]["State"] = "done";
  inst["Spec"]["Deleting"] = false;
  EXPECT_FALSE(RestoreHoldsInstance(inst));
}

}  // namespace
}  // namespace autopipe::rds

#include "rds/db_backups.h"

#include <gtest/gtest.h>
#include <fcntl.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>

#include "common/clock.h"

namespace autopipe::rds {
namespace {

// 2026-12-01 00:00:00 UTC.
constexpr int64_t kDay0 = 1'796'083'200'000;
constexpr int64_t kMinute = 60'000;

TEST(DbBackupRules, ParsesDailyWindows) {
  EXPECT_EQ(ParseDailyWindow("03:00-03:30"), std::make_pair(180, 30));
  EXPECT_EQ(ParseDailyWindow("23:45-00:15"), std::make_pair(23 * 60 + 45, 30));
  EXPECT_FALSE(ParseDailyWindow("3:00-03:30"));
  EXPECT_FALSE(ParseDailyWindow("24:00-00:30"));
  EXPECT_FALSE(ParseDailyWindow("03:00-03:30x"));
}

TEST(DbBackupRules, OneBackupPerWindowDrivenByAFakeClock) {
  FakeClock clock(kDay0);
  const std::string window = "03:00-03:30";
  int64_t last = kDay0 - 5 * kMinute;  // the backup at creation, just before midnight
  int taken = 0;
  // Three days, a pass a minute: exactly one backup in each day's window, at its start.
  for (int minute = 0; minute < 3 * 24 * 60; ++minute) {
    const int64_t now = clock.NowMillis();
    if (DailyBackupDue(now, window, last)) {
      EXPECT_EQ((now - kDay0) % kDayMillis, 180 * kMinute);
      last = now;
      ++taken;
    }
    clock.Advance(kMinute);
  }
  EXPECT_EQ(taken, 3);
}

TEST(DbBackupRules, WindowAcrossMidnightAndMissedWindows) {
  const std::string window = "23:50-00:20";
  // 00:10 belongs to the window that began at 23:50 the day before.
  EXPECT_EQ(LastWindowStart(kDay0 + 10 * kMinute, window), kDay0 - 10 * kMinute);
  EXPECT_TRUE(DailyBackupDue(kDay0 + 10 * kMinute, window, 0));
  EXPECT_FALSE(DailyBackupDue(kDay0 + 10 * kMinute, window, kDay0 - 5 * kMinute));  // already taken in it
  // Outside a window nothing is due, even when the last backup is days old (RDS does not catch up).
  EXPECT_FALSE(DailyBackupDue(kDay0 + 12 * 60 * kMinute, window, kDay0 - 5 * kDayMillis));
}

TEST(DbBackupRules, AutomatedSnapshotNames) {
  EXPECT_EQ(AutomatedSnapshotId("auto-pipeline-db", kDay0 + (17 * 60 + 5) * kMinute + 59'999),
            "rds:auto-pipeline-db-2026-12-01-17-05");
  EXPECT_EQ(BackupFolderName("rds:auto-pipeline-db-2026-12-01-17-05"), "rds_auto-pipeline-db-2026-12-01-17-05");
}

TEST(DbBackupRules, RetentionPruning) {
  FakeClock clock(kDay0);
  std::map<std::string, int64_t> created;
  for (int d = 0; d < 10; ++d) {
    created["rds:x-day" + std::to_string(d)] = clock.NowMillis();
    clock.Advance(kDayMillis);
  }
  // Now is day 10 00:00: with 7 days kept, days 0, 1 and 2 (more than 7 days old) go.
  auto expired = ExpiredAutomatedSnapshots(created, clock.NowMillis(), 7);
  EXPECT_EQ(expired, (std::vector<std::string>{"rds:x-day0", "rds:x-day1", "rds:x-day2"}));
  EXPECT_EQ(ExpiredAutomatedSnapshots(created, clock.NowMillis(), 35).size(), 0u);
  EXPECT_EQ(ExpiredAutomatedSnapshots(created, clock.NowMillis(), 0).size(), 10u);  // retention 0: all of them
}

TEST(DbBackupRules, GtidStates) {
  EXPECT_EQ(ParseGtidState("0-1-42,1-2-7"), (std::map<int64_t, int64_t>{{0, 42}, {1, 7}}));
  EXPECT_TRUE(GtidStateAtMost("", "0-1-5"));
  EXPECT_TRUE(GtidStateAtMost("0-1-5", "0-2-5"));
  EXPECT_FALSE(GtidStateAtMost("0-1-6", "0-2-5"));
  EXPECT_FALSE(GtidStateAtMost("1-1-1", "0-2-5"));
}

TEST(DbBackupRules, LastGtidOfABinlogDump) {
  const std::string dump =
      "#261201 17:22:21 server id 1  end_log_pos 256 CRC32 0x1 \tGtid list [0-1-3]\n"
      "#261201 17:22:21 server id 1  end_log_pos 9439 CRC32 0xa751b121 \tGTID 0-1-43 trans\n"
      "INSERT ...\n"
      "#261201 17:22:21 server id 2  end_log_pos 9656 CRC32 0xa91976c0 \tGTID 0-2-44 trans\n"
      "# a comment with GTID 9-9-9 in it\n";
  EXPECT_EQ(LastGtidInBinlogText(dump), "0-2-44");
  EXPECT_EQ(LastGtidInBinlogText("#261201 17:22:21 server id 1 \tGtid list []\n"), "");
}

TEST(DbBackupStore, ManifestChecksumCatchesDamage) {
  namespace fs = std::filesystem;
  const std::string dir = ::testing::TempDir() + "/db_backup_store_test";
  fs::remove_all(dir);
  fs::create_directories(dir + "/data/sub");
  std::ofstream(dir + "/data/ibdata1") << "pages";
  std::ofstream(dir + "/data/sub/t.ibd") << "rows";
  auto sum = ChecksumTree(dir + "/data");
  ASSERT_TRUE(sum.ok());
  EXPECT_EQ(sum->file_count, 2);
  EXPECT_EQ(sum->size_bytes, 9);
  Manifest m;
  m.snapshot_id = "rds:x-2026-12-01-00-00";
  m.gtid = "0-1-3";
  m.sha256 = sum->sha256;
  m.size_bytes = sum->size_bytes;
  m.file_count = sum->file_count;
  std::ofstream(dir + "/manifest.json") << ManifestToJson(m).dump();
  auto ok = VerifyBackup(dir);
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_EQ(ok->gtid, "0-1-3");
  // One byte changed, same size: the checksum tells.
  std::ofstream(dir + "/data/sub/t.ibd") << "rowz";
  auto damaged = VerifyBackup(dir);
  ASSERT_FALSE(damaged.ok());
  EXPECT_NE(damaged.status().message().find("damaged"), std::string::npos);
  fs::remove_all(dir);
}

void TouchAt(const std::string& path, int64_t ms) {
  std::ofstream(path) << "binlog";
  struct timespec times[2];
  times[0].tv_sec = times[1].tv_sec = ms / 1000;
  times[0].tv_nsec = times[1].tv_nsec = 0;
  ASSERT_EQ(utimensat(AT_FDCWD, path.c_str(), times, 0), 0);
}

TEST(DbBackupStore, ArchivePrunedBehindTheOldestBackup) {
  namespace fs = std::filesystem;
  const std::string store = ::testing::TempDir() + "/db_backup_archive_test";
  fs::remove_all(store);
  fs::create_directories(store + "/binlogs/s1");
  fs::create_directories(store + "/binlogs/s2");
  // s1 (a primary before a failover): two old files. s2 (archived now): two old files, one recent, one active.
  TouchAt(store + "/binlogs/s1/db-bin.000001", kDay0);
  TouchAt(store + "/binlogs/s1/db-bin.000002", kDay0 + kDayMillis);
  std::ofstream(store + "/binlogs/s1/segment.json") << "{}";
  TouchAt(store + "/binlogs/s2/db-bin.000001", kDay0 + kDayMillis);
  TouchAt(store + "/binlogs/s2/db-bin.000002", kDay0 + 2 * kDayMillis);
  TouchAt(store + "/binlogs/s2/db-bin.000003", kDay0 + 4 * kDayMillis);
  TouchAt(store + "/binlogs/s2/db-bin.000004", kDay0);  // the active file (its mtime does not matter)
  std::ofstream(store + "/binlogs/s2/segment.json") << "{}";
  // The oldest backup kept began on day 3: what ended before it goes.
  auto removed = PruneArchive(store, "s2", kDay0 + 3 * kDayMillis);
  EXPECT_EQ(removed.size(), 4u);
  EXPECT_FALSE(fs::exists(store + "/binlogs/s1"));  // nothing left of it
  EXPECT_FALSE(fs::exists(store + "/binlogs/s2/db-bin.000001"));
  EXPECT_FALSE(fs::exists(store + "/binlogs/s2/db-bin.000002"));
  EXPECT_TRUE(fs::exists(store + "/binlogs/s2/db-bin.000003"));
  EXPECT_TRUE(fs::exists(store + "/binlogs/s2/db-bin.000004"));
  EXPECT_TRUE(fs::exists(store + "/binlogs/s2/segment.json"));
  // A file written within a minute of the backup's start stays (it may hold what the backup does not).
  EXPECT_TRUE(PruneArchive(store, "s2", kDay0 + 4 * kDayMillis + 30'000).empty());
  fs::remove_all(store);
}

}  // namespace
}  // namespace autopipe::rds

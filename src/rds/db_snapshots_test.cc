// Manual DB snapshots: the rules (identifier, quota, which instance states can be snapshotted, progress) as pure
// functions, and the API's side through the real handlers over an in-memory store (no controller runs: the
// tests stand in for it where a rule needs a state).
#include "rds/db_snapshots.h"

#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <vector>

#include "rds/backup_progress.h"
#include "rds/db_backups.h"
#include "rds/db_instances.h"
#include "region/region_fixture.h"

namespace autopipe {
namespace {

namespace fs = std::filesystem;
using rds::CheckCanSnapshot;
using rds::CheckManualSnapshotQuota;
using rds::ProgressPercent;
using rds::ValidSnapshotIdentifier;

// ---- rules ----------------------------------------------------------------------------------------------------

TEST(DbSnapshotRules, Identifiers) {
  EXPECT_TRUE(ValidSnapshotIdentifier("snap-1"));
  EXPECT_TRUE(ValidSnapshotIdentifier("A"));
  EXPECT_TRUE(ValidSnapshotIdentifier(std::string(255, 'a')));
  EXPECT_FALSE(ValidSnapshotIdentifier(std::string(256, 'a')));
  EXPECT_FALSE(ValidSnapshotIdentifier(""));
  EXPECT_FALSE(ValidSnapshotIdentifier("1snap"));
  EXPECT_FALSE(ValidSnapshotIdentifier("snap-"));
  EXPECT_FALSE(ValidSnapshotIdentifier("snap--1"));
  EXPECT_FALSE(ValidSnapshotIdentifier("snap_1"));
  EXPECT_FALSE(ValidSnapshotIdentifier("rds:db-2026-12-01-00-00"));  // automated names are never a user's
  EXPECT_EQ(rds::CheckSnapshotIdentifier("DBSnapshotIdentifier", "x y").code(), "InvalidParameterValue");
}

TEST(DbSnapshotRules, QuotaIsOneHundredPerRegion) {
  EXPECT_TRUE(CheckManualSnapshotQuota(0).ok());
  EXPECT_TRUE(CheckManualSnapshotQuota(99).ok());
  const Status full = CheckManualSnapshotQuota(100);
  EXPECT_EQ(full.code(), "SnapshotQuotaExceeded");
  EXPECT_EQ(full.http_status(), 400);
}

TEST(DbSnapshotRules, InstanceStates) {
  auto db = [](const std::string& status, bool running = true, bool deleting = false) {
    return Json{{"DBInstanceIdentifier", "db"},
                {"DBInstanceStatus", status},
                {"Spec", {{"Running", running}, {"Deleting", deleting}}}};
  };
  EXPECT_TRUE(CheckCanSnapshot(db("available"), false).ok());
  for (const char* s : {"creating", "backing-up", "modifying", "rebooting", "stopped", "failed"})
    EXPECT_EQ(CheckCanSnapshot(db(s), false).code(), "InvalidDBInstanceState") << s;
  // A final snapshot also while a backup, a modification or a reboot runs; never of one not running.
  for (const char* s : {"available", "backing-up", "modifying", "rebooting"}) EXPECT_TRUE(CheckCanSnapshot(db(s), true).ok()) << s;
  for (const char* s : {"creating", "stopped", "stopping", "starting", "failed"})
    EXPECT_EQ(CheckCanSnapshot(db(s), true).code(), "InvalidDBInstanceState") << s;
  EXPECT_EQ(CheckCanSnapshot(db("available", false), true).code(), "InvalidDBInstanceState");
  EXPECT_EQ(CheckCanSnapshot(db("available", true, true), true).code(), "InvalidDBInstanceState");
}

TEST(DbSnapshotRules, ProgressPercent) {
  EXPECT_EQ(ProgressPercent(0, 100, 0, 85), 0);
  EXPECT_EQ(ProgressPercent(50, 100, 0, 80), 40);
  EXPECT_EQ(ProgressPercent(100, 100, 0, 80), 80);
  EXPECT_EQ(ProgressPercent(500, 100, 0, 80), 80);    // more than expected: capped
  EXPECT_EQ(ProgressPercent(10, 0, 10, 90), 10);      // nothing expected: the start of the slice
  EXPECT_EQ(ProgressPercent(1, 2, 10, 90), 50);
  EXPECT_EQ(ProgressPercent(int64_t{3} << 40, int64_t{4} << 40, 0, 100), 75);  // TB sizes do not overflow
}

class TempDir : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/autopipe_snap_test.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  void Write(const std::string& rel, size_t bytes) {
    fs::create_directories((dir_ / rel).parent_path());
    std::ofstream(dir_ / rel, std::ios::binary) << std::string(bytes, 'x');
  }
  fs::path dir_;
};

using BackupProgressTest = TempDir;

TEST_F(BackupProgressTest, ExpectedBytesLeaveOutLogs) {
  Write("ibdata1", 1000);
  Write("app/t.ibd", 300);
  Write("db-bin.000001", 5000);
  Write("db-relay-bin.000002", 5000);
  Write("ib_logfile0", 7000);
  Write("ibtmp1", 7000);
  EXPECT_EQ(rds::TreeBytes(dir_.string()), 25300);
  EXPECT_EQ(rds::ExpectedBackupBytes(dir_.string()), 1300);
  EXPECT_EQ(rds::TreeBytes((dir_ / "missing").string()), 0);
}

TEST_F(BackupProgressTest, ReporterReportsEachGrowthUntilDestroyed) {
  std::mutex mu;
  std::vector<int> seen;
  {
    rds::ProgressReporter r(dir_.string(), 1000, 0, 80, [&](int pct) {
      std::lock_guard lock(mu);
      seen.push_back(pct);
    }, /*period_ms=*/5);
    Write("a", 500);
    for (int i = 0; i < 400; ++i) {  // bounded: at most 2 s
      {
        std::lock_guard lock(mu);
        if (!seen.empty()) break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    Write("b", 500);
    for (int i = 0; i < 400; ++i) {
      {
        std::lock_guard lock(mu);
        if (!seen.empty() && seen.back() == 80) break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }
  ASSERT_EQ(seen, (std::vector<int>{40, 80}));
}

// ---- the API ---------------------------------------------------------------------------------------------------

constexpr char kId[] = "auto-pipeline-db";

class DbSnapshotApiTest : public RegionFixture {
 protected:
  void SetUp() override { WireRegion({.auto_scaling = false, .load_balancing = false, .service = "rds"}); }

  void Create(const std::string& id = kId, const FormParams& extra = {}) {
    FormParams p = {{"DBInstanceIdentifier", id},       {"DBInstanceClass", "db.t3.medium"},
                    {"Engine", "mysql"},                {"AllocatedStorage", "20"},
                    {"MultiAZ", "true"},                {"MasterUsername", "admin"},
                    {"MasterUserPassword", "password1"}};
    for (const auto& [k, v] : extra) p[k] = v;
    MustCall("CreateDBInstance", p);
  }
  Json Stored(const std::string& kind, const std::string& id) {
    auto doc = store_->Get(kind, id);
    return doc ? *doc : Json();
  }
  void SetStatus(const std::string& status, const std::string& id = kId) {
    Json db = Stored(kind::kDbInstance, id);
    db["DBInstanceStatus"] = status;
    ASSERT_TRUE(store_->Put(kind::kDbInstance, id, db).ok());
  }
  // Stands in for the snapshot controller.
  void Finish(const std::string& sid) {
    Json snap = Stored(kind::kDbSnapshot, sid);
    snap["Status"] = "available";
    snap["PercentProgress"] = 100;
    ASSERT_TRUE(store_->Put(kind::kDbSnapshot, sid, snap).ok());
  }
  // Another snapshot document like `from` (as the controllers leave them), with `changes`.
  void Clone(const std::string& from, const std::string& to, const Json& changes = Json::object()) {
    Json snap = Stored(kind::kDbSnapshot, from);
    snap["DBSnapshotIdentifier"] = to;
    snap.update(changes);
    ASSERT_TRUE(store_->Put(kind::kDbSnapshot, to, snap).ok());
  }
  void ExpectRefused(const std::string& action, const FormParams& params, const std::string& code,
                     int http_status = 400) {
    const uint64_t revision = store_->Revision();
    auto r = Call(action, params);
    ASSERT_FALSE(r.ok()) << action << " succeeded: " << r->dump();
    EXPECT_EQ(r.status().code(), code) << r.status().ToString();
    EXPECT_EQ(r.status().http_status(), http_status);
    EXPECT_EQ(store_->Revision(), revision) << action << " changed the store";
  }
  std::vector<std::string> EventMessages(const std::string& type, const std::string& id) {
    std::vector<std::string> out;
    const Json r = MustCall("DescribeEvents", {{"SourceType", type}, {"SourceIdentifier", id}});
    for (const auto& e : r["Events"]) out.push_back(e["Message"]);
    return out;
  }
};

TEST_F(DbSnapshotApiTest, CreateRecordsASnapshotAndMarksTheInstanceBackingUp) {
  Create(kId, {{"CopyTagsToSnapshot", "true"}, {"Tags.Tag.1.Key", "env"}, {"Tags.Tag.1.Value", "prod"}});
  ExpectRefused("CreateDBSnapshot", {{"DBInstanceIdentifier", kId}, {"DBSnapshotIdentifier", "s1"}},
                "InvalidDBInstanceState");  // still creating
  SetStatus("available");
  Json s = MustCall("CreateDBSnapshot", {{"DBInstanceIdentifier", kId}, {"DBSnapshotIdentifier", "Snap-1"}})["DBSnapshot"];
  EXPECT_EQ(s["DBSnapshotIdentifier"], "snap-1");
  EXPECT_EQ(s["Status"], "creating");
  EXPECT_EQ(s["SnapshotType"], "manual");
  EXPECT_EQ(s["PercentProgress"], 0);
  EXPECT_EQ(s["SnapshotTarget"], "region");
  EXPECT_EQ(s["TagList"], Json::parse(R"([{"Key":"env","Value":"prod"}])"));  // CopyTagsToSnapshot
  EXPECT_FALSE(s.contains("StorePath"));
  const Json db = Stored(kind::kDbInstance, kId);
  EXPECT_EQ(db["DBInstanceStatus"], "backing-up");
  EXPECT_EQ(db["ManualSnapshot"], "snap-1");
  const Json doc = Stored(kind::kDbSnapshot, "snap-1");
  EXPECT_EQ(doc["StorePath"], rds::BackupStoreDir(ctx_, db["DbiResourceId"]) + "/backups/snap-1");
  EXPECT_EQ(doc["DbiResourceId"], db["DbiResourceId"]);
  EXPECT_EQ(EventMessages("db-snapshot", "snap-1"), std::vector<std::string>{"Creating manual snapshot"});
  EXPECT_EQ(EventMessages("db-instance", kId).back(), "Creating manual snapshot");
  // Backing up: no second one until it is done.
  ExpectRefused("CreateDBSnapshot", {{"DBInstanceIdentifier", kId}, {"DBSnapshotIdentifier", "snap-2"}},
                "InvalidDBInstanceState");
  EXPECT_TRUE(rds::SnapshotOfInstanceInProgress(ctx_, kId));
  Finish("snap-1");
  EXPECT_FALSE(rds::SnapshotOfInstanceInProgress(ctx_, kId));

  // Tags given win over the instance's.
  SetStatus("available");
  s = MustCall("CreateDBSnapshot", {{"DBInstanceIdentifier", kId},
                                    {"DBSnapshotIdentifier", "snap-2"},
                                    {"Tags.Tag.1.Key", "k"},
                                    {"Tags.Tag.1.Value", "v"}})["DBSnapshot"];
  EXPECT_EQ(s["TagList"], Json::parse(R"([{"Key":"k","Value":"v"}])"));
}

TEST_F(DbSnapshotApiTest, CreateRefusesAndChangesNothing) {
  Create();
  SetStatus("available");
  MustCall("CreateDBSnapshot", {{"DBInstanceIdentifier", kId}, {"DBSnapshotIdentifier", "taken"}});
  Finish("taken");
  SetStatus("available");
  ExpectRefused("CreateDBSnapshot", {{"DBInstanceIdentifier", kId}, {"DBSnapshotIdentifier", "TAKEN"}},
                "DBSnapshotAlreadyExists");
  ExpectRefused("CreateDBSnapshot", {{"DBInstanceIdentifier", kId}, {"DBSnapshotIdentifier", "bad--id"}},
                "InvalidParameterValue");
  ExpectRefused("CreateDBSnapshot", {{"DBInstanceIdentifier", kId}}, "InvalidParameterValue");
  ExpectRefused("CreateDBSnapshot", {{"DBSnapshotIdentifier", "fine"}}, "InvalidParameterValue");
  ExpectRefused("CreateDBSnapshot", {{"DBInstanceIdentifier", "nope"}, {"DBSnapshotIdentifier", "fine"}},
                "DBInstanceNotFound", 404);
  ExpectRefused("CreateDBSnapshot",
                {{"DBInstanceIdentifier", kId}, {"DBSnapshotIdentifier", "fine"}, {"Tags.Tag.1.Key", "aws:x"}},
                "InvalidParameterValue");
  SetStatus("stopped");
  ExpectRefused("CreateDBSnapshot", {{"DBInstanceIdentifier", kId}, {"DBSnapshotIdentifier", "fine"}},
                "InvalidDBInstanceState");
}

TEST_F(DbSnapshotApiTest, QuotaOfOneHundredManualSnapshots) {
  Create();
  SetStatus("available");
  MustCall("CreateDBSnapshot", {{"DBInstanceIdentifier", kId}, {"DBSnapshotIdentifier", "m0"}});
  Finish("m0");
  SetStatus("available");
  // 98 more manual ones, and automated ones, which do not count.
  for (int i = 1; i < 99; ++i) Clone("m0", "m" + std::to_string(i));
  Clone("m0", "rds:auto-pipeline-db-2026-12-01-00-00", {{"SnapshotType", "automated"}});
  MustCall("CreateDBSnapshot", {{"DBInstanceIdentifier", kId}, {"DBSnapshotIdentifier", "the-100th"}});
  Finish("the-100th");
  SetStatus("available");
  ExpectRefused("CreateDBSnapshot", {{"DBInstanceIdentifier", kId}, {"DBSnapshotIdentifier", "one-more"}},
                "SnapshotQuotaExceeded");
  ExpectRefused("CopyDBSnapshot", {{"SourceDBSnapshotIdentifier", "m1"}, {"TargetDBSnapshotIdentifier", "one-more"}},
                "SnapshotQuotaExceeded");
  ExpectRefused("DeleteDBInstance", {{"DBInstanceIdentifier", kId}, {"FinalDBSnapshotIdentifier", "one-more"}},
                "SnapshotQuotaExceeded");
  // One deleted makes room (a snapshot being deleted no longer counts).
  MustCall("DeleteDBSnapshot", {{"DBSnapshotIdentifier", "m1"}});
  MustCall("CreateDBSnapshot", {{"DBInstanceIdentifier", kId}, {"DBSnapshotIdentifier", "one-more"}});
}

TEST_F(DbSnapshotApiTest, DeleteRules) {
  Create();
  SetStatus("available");
  MustCall("CreateDBSnapshot", {{"DBInstanceIdentifier", kId}, {"DBSnapshotIdentifier", "s1"}});
  ExpectRefused("DeleteDBSnapshot", {{"DBSnapshotIdentifier", "s1"}}, "InvalidDBSnapshotState");  // creating
  Finish("s1");
  Clone("s1", "rds:auto-pipeline-db-2026-12-01-00-00", {{"SnapshotType", "automated"}});
  ExpectRefused("DeleteDBSnapshot", {{"DBSnapshotIdentifier", "rds:auto-pipeline-db-2026-12-01-00-00"}},
                "InvalidDBSnapshotState");
  ExpectRefused("DeleteDBSnapshot", {{"DBSnapshotIdentifier", "nope"}}, "DBSnapshotNotFound", 404);
  ExpectRefused("DeleteDBSnapshot", {}, "InvalidParameterValue");
  // A copy in progress holds its source.
  MustCall("CopyDBSnapshot", {{"SourceDBSnapshotIdentifier", "s1"}, {"TargetDBSnapshotIdentifier", "s1-copy"}});
  ExpectRefused("DeleteDBSnapshot", {{"DBSnapshotIdentifier", "s1"}}, "InvalidDBSnapshotState");
  Finish("s1-copy");
  // By ARN; answered `deleted`, then gone from the API while the controller removes its files.
  Json r = MustCall("DeleteDBSnapshot", {{"DBSnapshotIdentifier", "arn:aws:rds:us-west-2:123456789012:snapshot:s1"}});
  EXPECT_EQ(r["DBSnapshot"]["Status"], "deleted");
  EXPECT_EQ(Stored(kind::kDbSnapshot, "s1")["Deleting"], true);
  ExpectRefused("DescribeDBSnapshots", {{"DBSnapshotIdentifier", "s1"}}, "DBSnapshotNotFound", 404);
  EXPECT_EQ(MustCall("DescribeDBSnapshots", {})["DBSnapshots"].size(), 2u);
  ExpectRefused("DeleteDBSnapshot", {{"DBSnapshotIdentifier", "s1"}}, "DBSnapshotNotFound", 404);
  ExpectRefused("CreateDBSnapshot", {{"DBInstanceIdentifier", kId}, {"DBSnapshotIdentifier", "s1"}},
                "DBSnapshotAlreadyExists");  // until its files are gone
}

TEST_F(DbSnapshotApiTest, CopyRules) {
  Create();
  SetStatus("available");
  MustCall("CreateDBSnapshot", {{"DBInstanceIdentifier", kId},
                                {"DBSnapshotIdentifier", "src"},
                                {"Tags.Tag.1.Key", "a"},
                                {"Tags.Tag.1.Value", "1"}});
  ExpectRefused("CopyDBSnapshot", {{"SourceDBSnapshotIdentifier", "src"}, {"TargetDBSnapshotIdentifier", "dst"}},
                "InvalidDBSnapshotState");  // still creating
  Finish("src");
  ExpectRefused("CopyDBSnapshot", {{"SourceDBSnapshotIdentifier", "nope"}, {"TargetDBSnapshotIdentifier", "dst"}},
                "DBSnapshotNotFound", 404);
  ExpectRefused("CopyDBSnapshot", {{"SourceDBSnapshotIdentifier", "src"}, {"TargetDBSnapshotIdentifier", "src"}},
                "DBSnapshotAlreadyExists");
  ExpectRefused("CopyDBSnapshot", {{"SourceDBSnapshotIdentifier", "src"}, {"TargetDBSnapshotIdentifier", "-x"}},
                "InvalidParameterValue");
  ExpectRefused("CopyDBSnapshot", {{"SourceDBSnapshotIdentifier", "arn:aws:rds:eu-west-1:123456789012:snapshot:src"},
                                   {"TargetDBSnapshotIdentifier", "dst"}},
                "InvalidParameterValue");
  ExpectRefused("CopyDBSnapshot", {{"SourceDBSnapshotIdentifier", "src"}, {"TargetDBSnapshotIdentifier", "dst"},
                                   {"SourceRegion", "eu-west-1"}},
                "InvalidParameterValue");
  ExpectRefused("CopyDBSnapshot", {{"SourceDBSnapshotIdentifier", "src"}, {"TargetDBSnapshotIdentifier", "dst"},
                                   {"SnapshotTarget", "outposts"}},
                "InvalidParameterValue");
  clock_.Advance(60'000);
  Json c = MustCall("CopyDBSnapshot", {{"SourceDBSnapshotIdentifier", "src"},
                                       {"TargetDBSnapshotIdentifier", "Dst"},
                                       {"CopyTags", "true"},
                                       {"Tags.Tag.1.Key", "b"},
                                       {"Tags.Tag.1.Value", "2"}})["DBSnapshot"];
  EXPECT_EQ(c["DBSnapshotIdentifier"], "dst");
  EXPECT_EQ(c["Status"], "creating");
  EXPECT_EQ(c["SnapshotType"], "manual");
  EXPECT_EQ(c["SourceDBSnapshotIdentifier"], "arn:aws:rds:us-west-2:123456789012:snapshot:src");
  EXPECT_EQ(c["TagList"], Json::parse(R"([{"Key":"a","Value":"1"},{"Key":"b","Value":"2"}])"));
  const Json src = MustCall("DescribeDBSnapshots", {{"DBSnapshotIdentifier", "src"}})["DBSnapshots"][0];
  EXPECT_EQ(c["OriginalSnapshotCreateTime"], src["OriginalSnapshotCreateTime"]);
  EXPECT_NE(c["SnapshotCreateTime"], src["SnapshotCreateTime"]);
  const Json doc = Stored(kind::kDbSnapshot, "dst");
  EXPECT_EQ(doc["CopyFrom"], "src");
  EXPECT_EQ(doc["SourceStorePath"], Stored(kind::kDbSnapshot, "src")["StorePath"]);
  EXPECT_EQ(fs::path(doc["StorePath"].get<std::string>()).filename(), "dst");
  // A copy is not a snapshot of the instance: nothing holds its servers.
  EXPECT_FALSE(rds::SnapshotOfInstanceInProgress(ctx_, kId));
  EXPECT_EQ(EventMessages("db-snapshot", "dst"),
            std::vector<std::string>{"Started copy of snapshot src from region us-west-2"});
}

TEST_F(DbSnapshotApiTest, TagsBySnapshotArn) {
  Create();
  SetStatus("available");
  MustCall("CreateDBSnapshot", {{"DBInstanceIdentifier", kId},
                                {"DBSnapshotIdentifier", "s1"},
                                {"Tags.Tag.1.Key", "a"},
                                {"Tags.Tag.1.Value", "1"}});
  const std::string arn = "arn:aws:rds:us-west-2:123456789012:snapshot:s1";
  MustCall("AddTagsToResource", {{"ResourceName", arn}, {"Tags.Tag.1.Key", "b"}, {"Tags.Tag.1.Value", "2"}});
  EXPECT_EQ(MustCall("ListTagsForResource", {{"ResourceName", arn}})["TagList"],
            Json::parse(R"([{"Key":"a","Value":"1"},{"Key":"b","Value":"2"}])"));
  MustCall("RemoveTagsFromResource", {{"ResourceName", arn}, {"TagKeys.member.1", "a"}});
  EXPECT_EQ(MustCall("DescribeDBSnapshots", {{"DBSnapshotIdentifier", "s1"}})["DBSnapshots"][0]["TagList"],
            Json::parse(R"([{"Key":"b","Value":"2"}])"));
  ExpectRefused("ListTagsForResource", {{"ResourceName", "arn:aws:rds:us-west-2:123456789012:snapshot:nope"}},
                "DBSnapshotNotFound", 404);
  ExpectRefused("AddTagsToResource", {{"ResourceName", "arn:aws:rds:us-west-2:123456789012:snapshot:nope"},
                                      {"Tags.Tag.1.Key", "b"}},
                "DBSnapshotNotFound", 404);
  // The instance's own tags are untouched.
  EXPECT_EQ(MustCall("ListTagsForResource", {{"ResourceName", "arn:aws:rds:us-west-2:123456789012:db:" +
                                                                  std::string(kId)}})["TagList"],
            Json::array());
}

TEST_F(DbSnapshotApiTest, FinalSnapshotOnDelete) {
  Create();
  // Not while the instance is being created (nothing runs to back up); nothing changes.
  ExpectRefused("DeleteDBInstance", {{"DBInstanceIdentifier", kId}, {"FinalDBSnapshotIdentifier", "last"}},
                "InvalidDBInstanceState");
  SetStatus("available");
  MustCall("CreateDBSnapshot", {{"DBInstanceIdentifier", kId}, {"DBSnapshotIdentifier", "taken"}});
  Finish("taken");
  SetStatus("available");
  ExpectRefused("DeleteDBInstance", {{"DBInstanceIdentifier", kId}, {"FinalDBSnapshotIdentifier", "taken"}},
                "DBSnapshotAlreadyExists");
  ExpectRefused("DeleteDBInstance", {{"DBInstanceIdentifier", kId}, {"FinalDBSnapshotIdentifier", "x_y"}},
                "InvalidParameterValue");
  Json r = MustCall("DeleteDBInstance", {{"DBInstanceIdentifier", kId}, {"FinalDBSnapshotIdentifier", "Last"}});
  EXPECT_EQ(r["DBInstance"]["DBInstanceStatus"], "deleting");
  const Json snap = Stored(kind::kDbSnapshot, "last");
  EXPECT_EQ(snap["Status"], "creating");
  EXPECT_EQ(snap["Final"], true);
  EXPECT_EQ(snap["SnapshotType"], "manual");
  const Json db = Stored(kind::kDbInstance, kId);
  EXPECT_EQ(db["Spec"]["Deleting"], true);
  EXPECT_EQ(db["DBInstanceStatus"], "deleting");  // not backing-up: it is being deleted
  EXPECT_TRUE(rds::SnapshotOfInstanceInProgress(ctx_, kId));
  EXPECT_EQ(EventMessages("db-snapshot", "last"), std::vector<std::string>{"Creating manual snapshot"});
}

}  // namespace
}  // namespace autopipe

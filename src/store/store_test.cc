// The store's contract on both implementations (revisions, compare-and-set, notifications, failed commits
// leaving nothing behind), and the SQLite store's own duties on real files in a temp dir: reads that do not
// wait for a commit's disk write, rollback after any failure, migration of the first schema, loud failure on a
// damaged, truncated or corrupt file, and refusal of a missing, emptied or replaced file once a marker exists.
#include "store/store.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <future>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

namespace autopipe {
namespace {

namespace fs = std::filesystem;

// Runs SQL on a file through a connection of the test's own (not the store's).
void RawSql(const fs::path& db_path, const std::string& sql) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(db_path.c_str(), &db), SQLITE_OK);
  sqlite3_busy_timeout(db, 5000);
  char* err = nullptr;
  int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err);
  std::string msg = err ? err : "";
  sqlite3_free(err);
  sqlite3_close(db);
  ASSERT_EQ(rc, SQLITE_OK) << msg;
}

std::string ReadFile(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

class TempDirTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/store_test.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    db_ = dir_ / "state.db";
    marker_ = dir_ / "state.db.id";
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  std::unique_ptr<Store> MustOpen(SqliteStoreOptions options = {}) {
    auto r = OpenSqliteStore(db_.string(), std::move(options));
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? std::move(*r) : nullptr;
  }

  Status OpenError() {
    auto r = OpenSqliteStore(db_.string());
    EXPECT_FALSE(r.ok()) << "the store opened";
    return r.ok() ? Status::Ok() : r.status();
  }

  fs::path dir_, db_, marker_;
};

// ---- The contract, on the memory store and the SQLite store alike ----

class StoreContractTest : public TempDirTest, public ::testing::WithParamInterface<bool> {
 protected:
  void SetUp() override {
    TempDirTest::SetUp();
    if (GetParam()) {
      store_ = MustOpen();
    } else {
      store_ = NewMemoryStore();
    }
    ASSERT_NE(store_, nullptr);
  }
  void TearDown() override {
    store_.reset();
    TempDirTest::TearDown();
  }
  std::unique_ptr<Store> store_;
};

TEST_P(StoreContractTest, DocumentsCarryTheRevisionOfTheCommitThatWroteThem) {
  EXPECT_EQ(store_->Revision(), 0u);
  EXPECT_EQ(store_->GetVersioned("k", "a").doc, nullptr);
  EXPECT_EQ(store_->GetVersioned("k", "a").revision, 0u);

  ASSERT_TRUE(store_->Put("k", "a", Json{{"v", 1}}).ok());
  ASSERT_TRUE(store_->Commit({{"k", "b", Json{{"v", 2}}, std::nullopt}, {"j", "c", Json{{"v", 3}}, std::nullopt}}).ok());
  EXPECT_EQ(store_->Revision(), 2u);
  EXPECT_EQ(store_->GetVersioned("k", "a").revision, 1u);
  EXPECT_EQ(store_->GetVersioned("k", "b").revision, 2u);
  EXPECT_EQ(store_->GetVersioned("j", "c").revision, 2u);
  EXPECT_EQ((*store_->GetVersioned("k", "b").doc)["v"], 2);

  ASSERT_TRUE(store_->Put("k", "a", Json{{"v", 10}}).ok());
  EXPECT_EQ(store_->GetVersioned("k", "a").revision, 3u);
  EXPECT_EQ((*store_->Get("k", "a"))["v"], 10);
  ASSERT_TRUE(store_->Delete("k", "a").ok());
  EXPECT_EQ(store_->GetVersioned("k", "a").revision, 0u);
  EXPECT_FALSE(store_->Get("k", "a").has_value());
  EXPECT_EQ(store_->Revision(), 4u);
  EXPECT_EQ(store_->Ids("k"), std::vector<std::string>{"b"});
  EXPECT_EQ(store_->Count("j"), 1u);

  // An empty batch is no commit.
  ASSERT_TRUE(store_->Commit({}).ok());
  EXPECT_EQ(store_->Revision(), 4u);
}

TEST_P(StoreContractTest, CompareAndSetAppliesAllOrNothing) {
  ASSERT_TRUE(store_->Put("k", "a", Json{{"v", 1}}).ok());  // revision 1
  ASSERT_TRUE(store_->Put("k", "b", Json{{"v", 1}}).ok());  // revision 2

  // Right revisions: applied.
  ASSERT_TRUE(store_->Commit({{"k", "a", Json{{"v", 2}}, 1}, {"k", "new", Json{{"v", 1}}, 0}}).ok());
  EXPECT_EQ(store_->GetVersioned("k", "a").revision, 3u);

  // One stale precondition: nothing of the batch is applied, and no revision is used.
  Status st = store_->Commit({{"k", "a", Json{{"v", 3}}, 3}, {"k", "b", Json{{"v", 3}}, 1}});
  EXPECT_FALSE(st.ok());
  EXPECT_TRUE(IsConflict(st)) << st.ToString();
  EXPECT_EQ(st.http_status(), 409);
  EXPECT_EQ((*store_->Get("k", "a"))["v"], 2);
  EXPECT_EQ((*store_->Get("k", "b"))["v"], 1);
  EXPECT_EQ(store_->Revision(), 3u);

  // 0 means "must not exist", for creates and for deletes alike.
  EXPECT_TRUE(IsConflict(store_->Commit({{"k", "new", Json{{"v", 9}}, 0}})));
  EXPECT_TRUE(IsConflict(store_->Commit({{"k", "gone", std::nullopt, 5}})));
  ASSERT_TRUE(store_->Commit({{"k", "new", std::nullopt, 3}}).ok());
  EXPECT_FALSE(store_->Get("k", "new").has_value());
  EXPECT_FALSE(IsConflict(Status::Ok()));
}

TEST_P(StoreContractTest, SubscribersGetEachCommitsChangesInOrder) {
  std::vector<std::vector<StoreChange>> seen;
  uint64_t handle = store_->Subscribe([&](const std::vector<StoreChange>& changes) {
    // Reads are allowed from a notification, and see the commit.
    EXPECT_EQ(store_->Revision(), changes.front().revision);
    seen.push_back(changes);
  });
  ASSERT_TRUE(store_->Put("k", "a", Json{{"v", 1}}).ok());
  ASSERT_TRUE(store_->Commit({{"k", "b", Json{{"v", 1}}, std::nullopt}, {"k", "a", std::nullopt, std::nullopt}}).ok());
  EXPECT_TRUE(IsConflict(store_->Commit({{"k", "a", Json{{"v", 1}}, 7}})));  // failed: not notified

  ASSERT_EQ(seen.size(), 2u);
  ASSERT_EQ(seen[0].size(), 1u);
  EXPECT_EQ(seen[0][0].kind, "k");
  EXPECT_EQ(seen[0][0].id, "a");
  EXPECT_EQ(seen[0][0].revision, 1u);
  EXPECT_FALSE(seen[0][0].deleted);
  ASSERT_EQ(seen[1].size(), 2u);
  EXPECT_EQ(seen[1][0].id, "b");
  EXPECT_FALSE(seen[1][0].deleted);
  EXPECT_EQ(seen[1][1].id, "a");
  EXPECT_TRUE(seen[1][1].deleted);
  EXPECT_EQ(seen[1][1].revision, 2u);

  store_->Unsubscribe(handle);
  ASSERT_TRUE(store_->Put("k", "c", Json{{"v", 1}}).ok());
  EXPECT_EQ(seen.size(), 2u);
}

TEST_P(StoreContractTest, InvalidUtf8FailsCleanlyAndTheNextCommitWorks) {
  ASSERT_TRUE(store_->Put("k", "a", Json{{"v", 1}}).ok());
  Status st = store_->Commit({{"k", "b", Json{{"v", 1}}, std::nullopt}, {"k", "bad", Json{{"v", "caf\xC3"}}, std::nullopt}});
  EXPECT_FALSE(st.ok());
  EXPECT_EQ(st.code(), "ValidationError") << st.ToString();
  EXPECT_FALSE(store_->Get("k", "b").has_value());
  EXPECT_EQ(store_->Revision(), 1u);

  ASSERT_TRUE(store_->Put("k", "b", Json{{"v", 2}}).ok());
  EXPECT_EQ(store_->GetVersioned("k", "b").revision, 2u);
}

INSTANTIATE_TEST_SUITE_P(MemoryAndSqlite, StoreContractTest, ::testing::Values(false, true),
                         [](const auto& info) { return info.param ? "Sqlite" : "Memory"; });

// ---- SQLite: concurrency and failed commits ----

using SqliteStoreTest = TempDirTest;

TEST_F(SqliteStoreTest, ReadsDoNotWaitForACommitInProgress) {
  std::mutex mu;
  std::condition_variable cv;
  bool hold = false, in_commit = false, release = false;
  SqliteStoreOptions options;
  options.before_sync_for_test = [&] {
    std::unique_lock lock(mu);
    if (!hold) return;
    in_commit = true;
    cv.notify_all();
    cv.wait(lock, [&] { return release; });
  };
  auto store = MustOpen(std::move(options));
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->Put("k", "a", Json{{"v", 1}}).ok());

  {
    std::lock_guard lock(mu);
    hold = true;
  }
  std::thread writer([&] { EXPECT_TRUE(store->Put("k", "a", Json{{"v", 2}}).ok()); });
  {
    std::unique_lock lock(mu);
    cv.wait(lock, [&] { return in_commit; });
  }
  // The commit now holds the writer lock inside its SQLite transaction and cannot finish until released.
  // The reads run on another thread so that a regression fails the test instead of hanging it.
  auto read = std::async(std::launch::async, [&] {
    return std::make_pair(store->GetVersioned("k", "a"), store->Revision());
  });
  const bool returned = read.wait_for(std::chrono::seconds(60)) == std::future_status::ready;
  bool still_in_commit;
  {
    std::lock_guard lock(mu);
    still_in_commit = !release;
    release = true;
    cv.notify_all();
  }
  writer.join();
  ASSERT_TRUE(returned) << "a read waited for the commit's disk write";
  EXPECT_TRUE(still_in_commit);
  auto [before, revision] = read.get();
  EXPECT_EQ((*before.doc)["v"], 1);  // the commit is not visible before it is durable
  EXPECT_EQ(before.revision, 1u);
  EXPECT_EQ(revision, 1u);
  EXPECT_EQ((*store->Get("k", "a"))["v"], 2);
  EXPECT_EQ(store->Revision(), 2u);
}

TEST_F(SqliteStoreTest, AFailureInsideSqliteIsRolledBackAndTheNextCommitWorks) {
  auto store = MustOpen();
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->Put("k", "a", Json{{"v", 1}}).ok());
  // A trigger (made through another connection) makes any insert of k/boom fail inside SQLite, after the
  // batch's first write has already been made in the transaction.
  RawSql(db_, "CREATE TRIGGER fail_boom BEFORE INSERT ON documents WHEN NEW.id = 'boom' "
              "BEGIN SELECT RAISE(ABORT, 'injected failure'); END;");
  std::vector<StoreChange> notified;
  store->Subscribe([&](const std::vector<StoreChange>& c) { notified.insert(notified.end(), c.begin(), c.end()); });

  Status st = store->Commit({{"k", "a", Json{{"v", 2}}, std::nullopt}, {"k", "boom", Json{{"v", 1}}, std::nullopt}});
  EXPECT_FALSE(st.ok());
  EXPECT_EQ(st.code(), "InternalFailure");
  EXPECT_EQ(st.message(), "the state store could not save the change");  // nothing of SQLite's reaches clients
  EXPECT_EQ((*store->Get("k", "a"))["v"], 1);
  EXPECT_FALSE(store->Get("k", "boom").has_value());
  EXPECT_EQ(store->Revision(), 1u);
  EXPECT_TRUE(notified.empty());

  // The transaction was rolled back: the next commit starts its own.
  ASSERT_TRUE(store->Put("k", "b", Json{{"v", 1}}).ok());
  EXPECT_EQ(store->Revision(), 2u);
  store.reset();

  store = MustOpen();
  ASSERT_NE(store, nullptr);
  EXPECT_EQ((*store->Get("k", "a"))["v"], 1);  // the failed batch's first write never reached the disk
  EXPECT_FALSE(store->Get("k", "boom").has_value());
  EXPECT_EQ(store->GetVersioned("k", "b").revision, 2u);
  EXPECT_EQ(store->Revision(), 2u);
}

TEST_F(SqliteStoreTest, AnExceptionMidCommitIsRolledBackAndTheNextCommitWorks) {
  bool fail = false;
  SqliteStoreOptions options;
  options.before_sync_for_test = [&] {
    if (fail) throw std::runtime_error("injected");
  };
  auto store = MustOpen(std::move(options));
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->Put("k", "a", Json{{"v", 1}}).ok());
  fail = true;
  Status st = store->Put("k", "a", Json{{"v", 2}});
  EXPECT_EQ(st.code(), "InternalFailure");
  EXPECT_EQ((*store->Get("k", "a"))["v"], 1);
  fail = false;
  ASSERT_TRUE(store->Put("k", "b", Json{{"v", 1}}).ok());
  store.reset();

  store = MustOpen();
  ASSERT_NE(store, nullptr);
  EXPECT_EQ((*store->Get("k", "a"))["v"], 1);
  EXPECT_EQ(store->Revision(), 2u);
}

// ---- SQLite: persistence of revisions, and migration ----

TEST_F(SqliteStoreTest, RevisionsSurviveARestartAndNeverGoBack) {
  auto store = MustOpen();
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->Put("k", "a", Json{{"v", 1}}).ok());
  ASSERT_TRUE(store->Put("k", "b", Json{{"v", 1}}).ok());
  ASSERT_TRUE(store->Delete("k", "b").ok());  // the newest revision now belongs to no document
  store.reset();

  store = MustOpen();
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(store->Revision(), 3u);
  EXPECT_EQ(store->GetVersioned("k", "a").revision, 1u);
  EXPECT_TRUE(IsConflict(store->Commit({{"k", "a", Json{{"v", 2}}, 2}})));
  ASSERT_TRUE(store->Commit({{"k", "a", Json{{"v", 2}}, 1}}).ok());
  EXPECT_EQ(store->GetVersioned("k", "a").revision, 4u);
}

TEST_F(SqliteStoreTest, MigratesAStoreMadeByTheFirstSchema) {
  // The schema as it was before revisions and store ids.
  RawSql(db_,
         "PRAGMA journal_mode=WAL;"
         "CREATE TABLE IF NOT EXISTS documents(kind TEXT NOT NULL, id TEXT NOT NULL, doc TEXT NOT NULL,"
         " PRIMARY KEY(kind, id)) WITHOUT ROWID;"
         "INSERT INTO documents VALUES('instance', 'i-1', '{\"State\":\"running\"}'),"
         " ('meta', 'counter', '{\"Next\":7}');");
  auto store = MustOpen();
  ASSERT_NE(store, nullptr);
  EXPECT_EQ((*store->Get("instance", "i-1"))["State"], "running");
  EXPECT_EQ((*store->Get("meta", "counter"))["Next"], 7);
  EXPECT_EQ(store->GetVersioned("instance", "i-1").revision, 1u);
  EXPECT_EQ(store->Revision(), 1u);
  EXPECT_TRUE(fs::exists(marker_));  // from now on, a lost file is noticed
  ASSERT_TRUE(store->Commit({{"instance", "i-1", Json{{"State", "stopped"}}, 1}}).ok());
  store.reset();

  store = MustOpen();
  ASSERT_NE(store, nullptr);
  EXPECT_EQ((*store->Get("instance", "i-1"))["State"], "stopped");
  EXPECT_EQ(store->GetVersioned("instance", "i-1").revision, 2u);
  EXPECT_EQ(store->Count("meta"), 1u);
}

// ---- SQLite: a damaged file fails the open, loudly ----

class DamagedStoreTest : public TempDirTest {
 protected:
  // A store of several hundred pages, closed (so everything is checkpointed into the main file).
  void MakeStore() {
    auto store = MustOpen();
    ASSERT_NE(store, nullptr);
    std::vector<StoreWrite> batch;
    for (int i = 0; i < 400; ++i) {
      batch.push_back({"instance", "i-" + std::to_string(1000 + i), Json{{"Pad", std::string(900, 'x')}}, std::nullopt});
    }
    ASSERT_TRUE(store->Commit(batch).ok());
    store.reset();
    ASSERT_FALSE(fs::exists(dir_ / "state.db-wal"));
    ASSERT_GT(fs::file_size(db_), 100u * 4096);
  }

  void ExpectDamaged(const Status& st) {
    EXPECT_NE(st.message().find("damaged"), std::string::npos) << st.message();
    EXPECT_NE(st.message().find("restore"), std::string::npos) << st.message();
  }
};

TEST_F(DamagedStoreTest, ADamagedPageInTheMiddleFailsTheOpen) {
  MakeStore();
  const auto size = fs::file_size(db_);
  const off_t page = static_cast<off_t>(size / 4096 / 2) * 4096;
  int fd = ::open(db_.c_str(), O_WRONLY);
  ASSERT_GE(fd, 0);
  std::string garbage(4096, '\xA5');
  ASSERT_EQ(::pwrite(fd, garbage.data(), garbage.size(), page), static_cast<ssize_t>(garbage.size()));
  ::close(fd);
  ExpectDamaged(OpenError());
}

TEST_F(DamagedStoreTest, DamageWhereNoDocumentLivesFailsTheOpenToo) {
  // Loading reads every document's page; the integrity check also reads the rest. Free 300 documents' pages
  // (they go to SQLite's freelist) and damage the freelist's first trunk page, which no read of a document
  // touches.
  MakeStore();
  {
    auto store = MustOpen();
    ASSERT_NE(store, nullptr);
    std::vector<StoreWrite> batch;
    for (int i = 0; i < 300; ++i) batch.push_back({"instance", "i-" + std::to_string(1000 + i), std::nullopt, std::nullopt});
    ASSERT_TRUE(store->Commit(batch).ok());
  }
  const std::string file = ReadFile(db_);
  ASSERT_GT(file.size(), 100u);
  auto be32 = [&](size_t at) {
    return (uint32_t{static_cast<uint8_t>(file[at])} << 24) | (uint32_t{static_cast<uint8_t>(file[at + 1])} << 16) |
           (uint32_t{static_cast<uint8_t>(file[at + 2])} << 8) | uint32_t{static_cast<uint8_t>(file[at + 3])};
  };
  const uint32_t page_size = (uint32_t{static_cast<uint8_t>(file[16])} << 8) | static_cast<uint8_t>(file[17]);
  const uint32_t trunk = be32(32);  // the first freelist trunk page (1-based), from the file header
  ASSERT_GT(trunk, 1u);
  ASSERT_GT(be32(36), 0u);  // free pages
  int fd = ::open(db_.c_str(), O_WRONLY);
  ASSERT_GE(fd, 0);
  std::string garbage(page_size, '\xA5');
  ASSERT_EQ(::pwrite(fd, garbage.data(), garbage.size(), static_cast<off_t>(trunk - 1) * page_size),
            static_cast<ssize_t>(garbage.size()));
  ::close(fd);
  ExpectDamaged(OpenError());
}

TEST_F(DamagedStoreTest, ATruncatedFileFailsTheOpen) {
  MakeStore();
  fs::resize_file(db_, fs::file_size(db_) / 2);
  ExpectDamaged(OpenError());
}

TEST_F(DamagedStoreTest, ACorruptDocumentFailsTheOpen) {
  MakeStore();
  RawSql(db_, "UPDATE documents SET doc = '{\"Pad\": tru' WHERE id = 'i-1200'");
  Status st = OpenError();
  ExpectDamaged(st);
  EXPECT_NE(st.message().find("instance/i-1200"), std::string::npos) << st.message();
}

// ---- SQLite: the marker file ----

using StoreMarkerTest = TempDirTest;

TEST_F(StoreMarkerTest, ANewStoreWritesItsIdBesideIt) {
  ASSERT_NE(MustOpen(), nullptr);
  ASSERT_TRUE(fs::exists(marker_));
  struct stat st {};
  ASSERT_EQ(::stat(marker_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  std::string id = ReadFile(marker_);
  EXPECT_GE(id.size(), 17u);  // a random id and a newline
  EXPECT_FALSE(fs::exists(dir_ / "state.db.id.tmp"));

  // The same store opens again, keeping its id.
  ASSERT_NE(MustOpen(), nullptr);
  EXPECT_EQ(ReadFile(marker_), id);
}

TEST_F(StoreMarkerTest, AMissingDatabaseIsRefusedNotRecreated) {
  {
    auto store = MustOpen();
    ASSERT_NE(store, nullptr);
    ASSERT_TRUE(store->Put("k", "a", Json{{"v", 1}}).ok());
  }
  fs::remove(db_);
  Status st = OpenError();
  EXPECT_NE(st.message().find("missing"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("delete the marker file " + marker_.string()), std::string::npos) << st.message();
  EXPECT_FALSE(fs::exists(db_));  // not silently recreated

  // The way out: deleting the marker starts afresh with an empty region.
  fs::remove(marker_);
  auto store = MustOpen();
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(store->Count("k"), 0u);
  EXPECT_TRUE(fs::exists(marker_));
}

TEST_F(StoreMarkerTest, AnEmptiedDatabaseIsRefused) {
  {
    auto store = MustOpen();
    ASSERT_NE(store, nullptr);
    ASSERT_TRUE(store->Put("k", "a", Json{{"v", 1}}).ok());
  }
  fs::resize_file(db_, 0);
  Status st = OpenError();
  EXPECT_NE(st.message().find("is empty"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("Restore " + db_.string()), std::string::npos) << st.message();
  EXPECT_EQ(fs::file_size(db_), 0u);  // left as found
}

TEST_F(StoreMarkerTest, AReplacedDatabaseIsRefused) {
  // Another store, made in another directory, copied over this one.
  fs::path other_dir = dir_ / "other";
  fs::create_directory(other_dir);
  {
    auto other = OpenSqliteStore((other_dir / "state.db").string());
    ASSERT_TRUE(other.ok()) << other.status().ToString();
    ASSERT_TRUE((*other)->Put("k", "other", Json{{"v", 1}}).ok());
  }
  ASSERT_NE(MustOpen(), nullptr);
  fs::copy_file(other_dir / "state.db", db_, fs::copy_options::overwrite_existing);
  Status st = OpenError();
  EXPECT_NE(st.message().find(ReadFile(other_dir / "state.db.id").substr(0, 8)), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("delete the marker file"), std::string::npos) << st.message();

  // Deleting the marker adopts the file that is there.
  fs::remove(marker_);
  auto store = MustOpen();
  ASSERT_NE(store, nullptr);
  EXPECT_TRUE(store->Get("k", "other").has_value());
  EXPECT_EQ(ReadFile(marker_), ReadFile(other_dir / "state.db.id"));
}

}  // namespace
}  // namespace autopipe

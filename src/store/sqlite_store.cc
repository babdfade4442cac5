#include <fcntl.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <exception>
#include <filesystem>
#include <map>
#include <mutex>
#include <shared_mutex>

#include <spdlog/spdlog.h>

#include "common/ids.h"
#include "store/store.h"

namespace autopipe {
namespace {

namespace fs = std::filesystem;

// What an API client is told when the disk write fails; the detail goes to the log only.
constexpr char kWriteFailedMessage[] = "the state store could not save the change";

// Schema versions (PRAGMA user_version): 0 = the first schema (documents without revisions, no store id),
// 1 = documents with revisions, plus store_meta holding the store id and the store revision.
constexpr int kSchemaVersion = 1;

struct Entry {
  Doc doc;
  uint64_t revision = 0;
};
using KindMap = std::map<std::string, std::map<std::string, Entry>>;

// One write of a commit, made ready before any lock readers wait on is taken.
struct PreparedWrite {
  const StoreWrite* write;
  std::string text;  // the serialised document (empty for a delete)
  Doc doc;           // nullptr for a delete
};

// In-memory documents; the SQLite store adds a write-ahead to disk by overriding Persist.
//
// Locking: write_mu_ serialises commits (and guards subscribers_); read_mu_ guards docs_ and revision_ for
// readers. A commit changes docs_ only while holding both (write_mu_, then read_mu_ exclusively, briefly), so
// code holding write_mu_ may read docs_ without read_mu_.
class MemoryStore : public Store {
 public:
  std::optional<Json> Get(const std::string& k, const std::string& id) const override {
    Doc doc = GetVersioned(k, id).doc;
    if (!doc) return std::nullopt;
    return *doc;  // copied outside the lock
  }

  VersionedDoc GetVersioned(const std::string& k, const std::string& id) const override {
    std::shared_lock lock(read_mu_);
    const Entry* e = FindLocked(k, id);
    if (e == nullptr) return {};
    return {e->doc, e->revision};
  }

  std::vector<Doc> List(const std::string& k) const override {
    std::shared_lock lock(read_mu_);
    std::vector<Doc> out;
    auto kit = docs_.find(k);
    if (kit == docs_.end()) return out;
    out.reserve(kit->second.size());
    for (const auto& [id, e] : kit->second) out.push_back(e.doc);
    return out;
  }

  size_t Count(const std::string& k) const override {
    std::shared_lock lock(read_mu_);
    auto kit = docs_.find(k);
    return kit == docs_.end() ? 0 : kit->second.size();
  }

  std::vector<std::string> Ids(const std::string& k) const override {
    std::shared_lock lock(read_mu_);
    std::vector<std::string> out;
    auto kit = docs_.find(k);
    if (kit == docs_.end()) return out;
    out.reserve(kit->second.size());
    for (const auto& [id, e] : kit->second) out.push_back(id);
    return out;
  }

  uint64_t Revision() const override {
    std::shared_lock lock(read_mu_);
    return revision_;
  }

  Status Commit(const std::vector<StoreWrite>& writes) override {
    if (writes.empty()) return Status::Ok();
    try {
      std::lock_guard wlock(write_mu_);
      // Preconditions first: a conflict applies nothing.
      for (const auto& w : writes) {
        if (!w.expect_revision) continue;
        const Entry* e = FindLocked(w.kind, w.id);
        uint64_t current = e ? e->revision : 0;
        if (current != *w.expect_revision) {
          return Status(409, kConflictCode,
                        w.kind + " " + w.id + " changed concurrently (at revision " + std::to_string(current) +
                            ", expected " + std::to_string(*w.expect_revision) + "); read it again and retry");
        }
      }
      std::vector<PreparedWrite> prepared;
      prepared.reserve(writes.size());
      for (const auto& w : writes) {
        PreparedWrite p{&w, {}, nullptr};
        if (w.doc) {
          try {
            p.text = w.doc->dump();
          } catch (const Json::exception& e) {
            // nlohmann refuses strings that are not valid UTF-8 (type_error 316).
            spdlog::warn("store: refused {}/{}: {}", w.kind, w.id, e.what());
            return Status::Validation("a value is not valid UTF-8 text");
          }
          p.doc = std::make_shared<const Json>(*w.doc);
        }
        prepared.push_back(std::move(p));
      }
      const uint64_t revision = revision_ + 1;
      AP_RETURN_IF_ERROR(Persist(prepared, revision));
      Apply(prepared, revision);
      Notify(prepared, revision);
      return Status::Ok();
    } catch (const std::exception& e) {
      spdlog::error("store: commit failed: {}", e.what());
    } catch (...) {
      spdlog::error("store: commit failed: unknown exception");
    }
    return Status::Internal(kWriteFailedMessage);
  }

  uint64_t Subscribe(ChangeFn fn) override {
    std::lock_guard wlock(write_mu_);
    uint64_t handle = ++last_handle_;
    subscribers_.emplace(handle, std::move(fn));
    return handle;
  }

  void Unsubscribe(uint64_t handle) override {
    std::lock_guard wlock(write_mu_);
    subscribers_.erase(handle);
  }

 protected:
  // Makes `writes` durable as revision `revision`, with write_mu_ held and before memory changes. A failure
  // (returned or thrown) must leave the disk unchanged; memory is then left untouched.
  virtual Status Persist(const std::vector<PreparedWrite>& writes, uint64_t revision) { return Status::Ok(); }

  const Entry* FindLocked(const std::string& k, const std::string& id) const {
    auto kit = docs_.find(k);
    if (kit == docs_.end()) return nullptr;
    auto it = kit->second.find(id);
    return it == kit->second.end() ? nullptr : &it->second;
  }

  // After Persist succeeded, memory must follow: running out of memory here ends the process (noexcept)
  // rather than leave memory differing from disk.
  void Apply(const std::vector<PreparedWrite>& writes, uint64_t revision) noexcept {
    std::unique_lock lock(read_mu_);
    for (const auto& p : writes) {
      const StoreWrite& w = *p.write;
      if (p.doc) {
        docs_[w.kind][w.id] = Entry{p.doc, revision};
      } else {
        auto kit = docs_.find(w.kind);
        if (kit != docs_.end()) kit->second.erase(w.id);
      }
    }
    revision_ = revision;
  }

  void Notify(const std::vector<PreparedWrite>& writes, uint64_t revision) {
    if (subscribers_.empty()) return;
    std::vector<StoreChange> changes;
    changes.reserve(writes.size());
    for (const auto& p : writes) changes.push_back({p.write->kind, p.write->id, revision, p.doc == nullptr});
    for (const auto& [handle, fn] : subscribers_) {
      try {
        fn(changes);
      } catch (const std::exception& e) {
        spdlog::error("store: subscriber {} threw: {}", handle, e.what());
      } catch (...) {
        spdlog::error("store: subscriber {} threw", handle);
      }
    }
  }

  std::mutex write_mu_;
  std::map<uint64_t, ChangeFn> subscribers_;  // guarded by write_mu_
  uint64_t last_handle_ = 0;                  // guarded by write_mu_

  mutable std::shared_mutex read_mu_;
  KindMap docs_;           // guarded by read_mu_ (for readers) and write_mu_ (for writers)
  uint64_t revision_ = 0;  // as docs_
};

// An open result that the caller must act on: the store file was refused.
Status Refuse(std::string message) { return Status(500, "StoreRefused", std::move(message), false); }

std::string DamagedMessage(const std::string& path, const std::string& detail) {
  return "the state store " + path + " is damaged (" + detail +
         "). Stop here and restore " + path + " from a backup; or, to start afresh with an empty region (its "
         "resources forgotten), move " + path + ", " + path + "-wal and the marker file " + path +
         ".id aside.";
}

// Reads the marker file: its id, nullopt when there is none.
Result<std::optional<std::string>> ReadMarker(const std::string& marker) {
  int fd = ::open(marker.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return std::optional<std::string>();
    return Status::Internal("cannot read the store marker " + marker + ": " + std::strerror(errno));
  }
  std::string text;
  char buf[256];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof buf)) > 0 && text.size() < 4096) text.append(buf, static_cast<size_t>(n));
  int read_errno = errno;
  ::close(fd);
  if (n < 0) return Status::Internal("cannot read the store marker " + marker + ": " + std::strerror(read_errno));
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ' || text.back() == '\r')) text.pop_back();
  return std::optional<std::string>(text);
}

// Writes the marker durably: a temporary file fsync'd, renamed over the marker, then the directory fsync'd.
Status WriteMarker(const std::string& marker, const std::string& id) {
  const std::string tmp = marker + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return Status::Internal("cannot write the store marker " + tmp + ": " + std::strerror(errno));
  const std::string text = id + "\n";
  bool ok = ::fchmod(fd, 0600) == 0 && ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) &&
            ::fsync(fd) == 0;
  int err = errno;
  ::close(fd);
  if (!ok || ::rename(tmp.c_str(), marker.c_str()) != 0) {
    if (ok) err = errno;
    ::unlink(tmp.c_str());
    return Status::Internal("cannot write the store marker " + marker + ": " + std::strerror(err));
  }
  fs::path dir = fs::path(marker).parent_path();
  int dfd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
  return Status::Ok();
}

// A prepared statement, finalized on scope exit.
class Statement {
 public:
  Statement() = default;
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
  ~Statement() { sqlite3_finalize(st_); }
  sqlite3_stmt** out() { return &st_; }
  sqlite3_stmt* get() const { return st_; }

 private:
  sqlite3_stmt* st_ = nullptr;
};

class SqliteStore : public MemoryStore {
 public:
  SqliteStore(sqlite3* db, std::string path, SqliteStoreOptions options)
      : db_(db), path_(std::move(path)), options_(std::move(options)) {}
  ~SqliteStore() override {
    sqlite3_finalize(upsert_);
    sqlite3_finalize(delete_);
    sqlite3_finalize(set_revision_);
    sqlite3_close(db_);
  }

  // Checks the file, creates, migrates or verifies it against the marker, and loads every document.
  Status Init(const std::optional<std::string>& marker_id) {
    const std::string marker = path_ + ".id";
    AP_RETURN_IF_ERROR(CheckIntegrity());

    AP_ASSIGN_OR_RETURN(int version, QueryInt("PRAGMA user_version"));
    AP_ASSIGN_OR_RETURN(bool has_documents, TableExists("documents"));
    AP_ASSIGN_OR_RETURN(bool has_meta, TableExists("store_meta"));
    if (version > kSchemaVersion) {
      return Refuse("the state store " + path_ + " has schema version " + std::to_string(version) +
                    ", newer than this autopipe understands (" + std::to_string(kSchemaVersion) +
                    "); run the autopipe that made it");
    }
    std::string store_id;
    if (has_meta) {
      AP_ASSIGN_OR_RETURN(store_id, ReadStoreId());
    }
    if (marker_id) {
      // This data dir has held a store: only that same store may be opened.
      const std::string way_out = "Restore " + path_ + " (from a backup) or, to start afresh with an empty region "
                                  "(its resources forgotten), delete the marker file " + marker + ".";
      if (!has_documents && !has_meta) {
        return Refuse("the state store " + path_ + " is empty, but the marker file " + marker + " says store " +
                      *marker_id + " lived here. " + way_out);
      }
      if (store_id != *marker_id) {
        return Refuse("the state store " + path_ + " is " +
                      (store_id.empty() ? std::string("one without a store id") : "store " + store_id) +
                      ", but the marker file " + marker + " says store " + *marker_id + " lived here. " + way_out);
      }
    }

    AP_RETURN_IF_ERROR(Exec("PRAGMA journal_mode=WAL"));
    AP_RETURN_IF_ERROR(Exec("PRAGMA synchronous=FULL"));
    if (!has_meta) {
      store_id = NewUuid();
      AP_RETURN_IF_ERROR(CreateOrMigrate(has_documents, store_id));
    }
    if (!marker_id) AP_RETURN_IF_ERROR(WriteMarker(marker, store_id));

    AP_RETURN_IF_ERROR(Prepare("INSERT INTO documents(kind, id, doc, revision) VALUES(?, ?, ?, ?) "
                               "ON CONFLICT(kind, id) DO UPDATE SET doc = excluded.doc, revision = excluded.revision",
                               &upsert_));
    AP_RETURN_IF_ERROR(Prepare("DELETE FROM documents WHERE kind = ? AND id = ?", &delete_));
    AP_RETURN_IF_ERROR(Prepare("UPDATE store_meta SET value = ? WHERE key = 'revision'", &set_revision_));
    return Load();
  }

 protected:
  Status Persist(const std::vector<PreparedWrite>& writes, uint64_t revision) override {
    Status st;
    try {
      st = WriteTransaction(writes, revision);
    } catch (const std::exception& e) {
      st = Status::Internal(std::string("exception: ") + e.what());
    } catch (...) {
      st = Status::Internal("unknown exception");
    }
    if (st.ok()) return st;
    RollbackIfOpen();
    spdlog::error("store: commit of revision {} to {} failed and was rolled back: {}", revision, path_,
                  st.message());
    return Status::Internal(kWriteFailedMessage);
  }

 private:
  Status WriteTransaction(const std::vector<PreparedWrite>& writes, uint64_t revision) {
    RollbackIfOpen();  // never "cannot start a transaction within a transaction"
    AP_RETURN_IF_ERROR(Exec("BEGIN IMMEDIATE"));
    for (const auto& p : writes) {
      const StoreWrite& w = *p.write;
      sqlite3_stmt* st = p.doc ? upsert_ : delete_;
      sqlite3_reset(st);
      sqlite3_clear_bindings(st);
      int rc = sqlite3_bind_text(st, 1, w.kind.data(), static_cast<int>(w.kind.size()), SQLITE_STATIC);
      if (rc == SQLITE_OK) rc = sqlite3_bind_text(st, 2, w.id.data(), static_cast<int>(w.id.size()), SQLITE_STATIC);
      if (p.doc) {
        if (rc == SQLITE_OK) {
          rc = sqlite3_bind_text(st, 3, p.text.data(), static_cast<int>(p.text.size()), SQLITE_STATIC);
        }
        if (rc == SQLITE_OK) rc = sqlite3_bind_int64(st, 4, static_cast<sqlite3_int64>(revision));
      }
      if (rc == SQLITE_OK) rc = sqlite3_step(st);
      sqlite3_reset(st);
      if (rc != SQLITE_DONE) return SqliteError("writing " + w.kind + "/" + w.id);
    }
    sqlite3_reset(set_revision_);
    int rc = sqlite3_bind_int64(set_revision_, 1, static_cast<sqlite3_int64>(revision));
    if (rc == SQLITE_OK) rc = sqlite3_step(set_revision_);
    sqlite3_reset(set_revision_);
    if (rc != SQLITE_DONE) return SqliteError("writing the store revision");
    if (options_.before_sync_for_test) options_.before_sync_for_test();
    return Exec("COMMIT");
  }

  void RollbackIfOpen() {
    if (sqlite3_get_autocommit(db_)) return;
    char* err = nullptr;
    if (sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, &err) != SQLITE_OK) {
      spdlog::error("store: rollback on {} failed: {}", path_, err ? err : "unknown");
    }
    sqlite3_free(err);
  }

  Status SqliteError(const std::string& what) const {
    return Status::Internal(what + ": " + sqlite3_errmsg(db_));
  }

  Status Exec(const char* sql) {
    char* err = nullptr;
    if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) != SQLITE_OK) {
      std::string msg = std::string(sql) + ": " + (err ? err : sqlite3_errmsg(db_));
      sqlite3_free(err);
      return Status::Internal("store " + path_ + ": " + msg);
    }
    return Status::Ok();
  }

  Status Prepare(const char* sql, sqlite3_stmt** st) {
    if (sqlite3_prepare_v2(db_, sql, -1, st, nullptr) != SQLITE_OK) {
      return Status::Internal("store " + path_ + ": cannot prepare a statement: " + sqlite3_errmsg(db_));
    }
    return Status::Ok();
  }

  // A damaged page anywhere fails the open, not only a truncated table. quick_check skips index-vs-table
  // consistency (our only index is the primary key, part of the WITHOUT ROWID table itself) and is O(N).
  Status CheckIntegrity() {
    Statement st;
    if (sqlite3_prepare_v2(db_, "PRAGMA quick_check(10)", -1, st.out(), nullptr) != SQLITE_OK) {
      return Refuse(DamagedMessage(path_, sqlite3_errmsg(db_)));
    }
    std::string problems;
    int rc;
    while ((rc = sqlite3_step(st.get())) == SQLITE_ROW) {
      const char* text = reinterpret_cast<const char*>(sqlite3_column_text(st.get(), 0));
      std::string line = text ? text : "";
      if (line == "ok") continue;
      if (!problems.empty()) problems += "; ";
      problems += line;
    }
    if (rc != SQLITE_DONE) return Refuse(DamagedMessage(path_, sqlite3_errmsg(db_)));
    if (!problems.empty()) return Refuse(DamagedMessage(path_, "integrity check: " + problems));
    return Status::Ok();
  }

  Result<int> QueryInt(const char* sql) {
    Statement st;
    if (sqlite3_prepare_v2(db_, sql, -1, st.out(), nullptr) != SQLITE_OK) {
      return Refuse(DamagedMessage(path_, sqlite3_errmsg(db_)));
    }
    int rc = sqlite3_step(st.get());
    if (rc != SQLITE_ROW) return Refuse(DamagedMessage(path_, sqlite3_errmsg(db_)));
    return sqlite3_column_int(st.get(), 0);
  }

  Result<bool> TableExists(const char* name) {
    Statement st;
    if (sqlite3_prepare_v2(db_, "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", -1, st.out(),
                           nullptr) != SQLITE_OK) {
      return Refuse(DamagedMessage(path_, sqlite3_errmsg(db_)));
    }
    sqlite3_bind_text(st.get(), 1, name, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st.get());
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    return Refuse(DamagedMessage(path_, sqlite3_errmsg(db_)));
  }

  Result<std::string> ReadStoreId() {
    Statement st;
    if (sqlite3_prepare_v2(db_, "SELECT value FROM store_meta WHERE key = 'store_id'", -1, st.out(), nullptr) !=
        SQLITE_OK) {
      return Refuse(DamagedMessage(path_, sqlite3_errmsg(db_)));
    }
    int rc = sqlite3_step(st.get());
    if (rc == SQLITE_ROW) {
      const char* text = reinterpret_cast<const char*>(sqlite3_column_text(st.get(), 0));
      if (text != nullptr && *text != '\0') return std::string(text);
    } else if (rc != SQLITE_DONE) {
      return Refuse(DamagedMessage(path_, sqlite3_errmsg(db_)));
    }
    return Refuse(DamagedMessage(path_, "its store id is missing"));
  }

  // Creates the schema in an empty file, or migrates the first schema (documents without revisions) in place:
  // existing documents are kept at revision 1. One transaction either way.
  Status CreateOrMigrate(bool migrate, const std::string& store_id) {
    AP_RETURN_IF_ERROR(Exec("BEGIN IMMEDIATE"));
    Status st = [&]() -> Status {
      if (migrate) {
        spdlog::info("store: migrating {} to schema version {}", path_, kSchemaVersion);
        AP_RETURN_IF_ERROR(Exec("ALTER TABLE documents ADD COLUMN revision INTEGER NOT NULL DEFAULT 1"));
      } else {
        AP_RETURN_IF_ERROR(
            Exec("CREATE TABLE documents(kind TEXT NOT NULL, id TEXT NOT NULL, doc TEXT NOT NULL,"
                 " revision INTEGER NOT NULL, PRIMARY KEY(kind, id)) WITHOUT ROWID"));
      }
      AP_RETURN_IF_ERROR(Exec("CREATE TABLE store_meta(key TEXT PRIMARY KEY, value NOT NULL) WITHOUT ROWID"));
      Statement ins;
      AP_RETURN_IF_ERROR(Prepare("INSERT INTO store_meta(key, value) VALUES('store_id', ?), ('revision', ?)",
                                 ins.out()));
      sqlite3_bind_text(ins.get(), 1, store_id.c_str(), -1, SQLITE_TRANSIENT);
      sqlite3_bind_int64(ins.get(), 2, migrate ? 1 : 0);
      if (sqlite3_step(ins.get()) != SQLITE_DONE) return SqliteError("store " + path_ + ": writing store_meta");
      AP_RETURN_IF_ERROR(Exec("PRAGMA user_version = 1"));
      return Exec("COMMIT");
    }();
    if (!st.ok()) RollbackIfOpen();
    return st;
  }

  Status Load() {
    Statement meta;
    AP_RETURN_IF_ERROR(Prepare("SELECT value FROM store_meta WHERE key = 'revision'", meta.out()));
    int rc = sqlite3_step(meta.get());
    if (rc != SQLITE_ROW) {
      return Refuse(DamagedMessage(path_, rc == SQLITE_DONE ? "its store revision is missing" : sqlite3_errmsg(db_)));
    }
    sqlite3_int64 stored_revision = sqlite3_column_int64(meta.get(), 0);
    if (stored_revision < 0) return Refuse(DamagedMessage(path_, "its store revision is negative"));
    uint64_t revision = static_cast<uint64_t>(stored_revision);

    Statement st;
    AP_RETURN_IF_ERROR(Prepare("SELECT kind, id, doc, revision FROM documents", st.out()));
    KindMap docs;
    while ((rc = sqlite3_step(st.get())) == SQLITE_ROW) {
      auto text = [&](int col) {
        const char* p = reinterpret_cast<const char*>(sqlite3_column_text(st.get(), col));
        return p ? std::string(p, static_cast<size_t>(sqlite3_column_bytes(st.get(), col))) : std::string();
      };
      std::string k = text(0);
      std::string id = text(1);
      std::string body = text(2);
      sqlite3_int64 doc_revision = sqlite3_column_int64(st.get(), 3);
      Json doc = Json::parse(body, nullptr, /*allow_exceptions=*/false);
      if (doc.is_discarded() || doc_revision <= 0) {
        return Refuse(DamagedMessage(path_, "document " + k + "/" + id + " is corrupt"));
      }
      // A document newer than the recorded store revision would let revisions repeat: never go back.
      if (static_cast<uint64_t>(doc_revision) > revision) revision = static_cast<uint64_t>(doc_revision);
      docs[k][id] = Entry{std::make_shared<const Json>(std::move(doc)), static_cast<uint64_t>(doc_revision)};
    }
    if (rc != SQLITE_DONE) return Refuse(DamagedMessage(path_, std::string("reading documents: ") + sqlite3_errmsg(db_)));
    std::unique_lock lock(read_mu_);
    docs_ = std::move(docs);
    revision_ = revision;
    return Status::Ok();
  }

  // Constant after Init; used by commits under write_mu_.
  sqlite3* const db_;
  const std::string path_;
  const SqliteStoreOptions options_;
  sqlite3_stmt* upsert_ = nullptr;
  sqlite3_stmt* delete_ = nullptr;
  sqlite3_stmt* set_revision_ = nullptr;
};

}  // namespace

Result<std::unique_ptr<Store>> OpenSqliteStore(const std::string& path, SqliteStoreOptions options) {
  const std::string marker = path + ".id";
  AP_ASSIGN_OR_RETURN(std::optional<std::string> marker_id, ReadMarker(marker));
  std::error_code ec;
  if (marker_id && !fs::exists(path, ec)) {
    return Refuse("the state store " + path + " is missing, but the marker file " + marker + " says store " +
                  *marker_id + " lived here. Restore " + path + " (from a backup) or, to start afresh with an "
                  "empty region (its resources forgotten), delete the marker file " + marker + ".");
  }
  // With a marker, never create: a vanished file must not silently become an empty region.
  int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_FULLMUTEX | (marker_id ? 0 : SQLITE_OPEN_CREATE);
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(path.c_str(), &db, flags, nullptr) != SQLITE_OK) {
    std::string msg = db ? sqlite3_errmsg(db) : "out of memory";
    sqlite3_close(db);
    return Status::Internal("store: cannot open " + path + ": " + msg);
  }
  sqlite3_busy_timeout(db, 5000);
  auto store = std::make_unique<SqliteStore>(db, path, std::move(options));
  try {
    AP_RETURN_IF_ERROR(store->Init(marker_id));
  } catch (const std::exception& e) {
    return Status::Internal("store: cannot open " + path + ": " + e.what());
  }
  return std::unique_ptr<Store>(std::move(store));
}

std::unique_ptr<Store> NewMemoryStore() { return std::make_unique<MemoryStore>(); }

}  // namespace autopipe

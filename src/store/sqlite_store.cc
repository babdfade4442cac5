#include <sqlite3.h>

#include <map>
#include <mutex>

#include "store/store.h"

namespace autopipe {
namespace {

using KindMap = std::map<std::string, std::map<std::string, Doc>>;

// In-memory documents; the SQLite store wraps this with a write-ahead to disk.
class MemoryStore : public Store {
 public:
  std::optional<Json> Get(const std::string& k, const std::string& id) const override {
    std::lock_guard lock(mu_);
    auto kit = docs_.find(k);
    if (kit == docs_.end()) return std::nullopt;
    auto it = kit->second.find(id);
    if (it == kit->second.end()) return std::nullopt;
    return *it->second;
  }

  std::vector<Doc> List(const std::string& k) const override {
    std::lock_guard lock(mu_);
    std::vector<Doc> out;
    auto kit = docs_.find(k);
    if (kit == docs_.end()) return out;
    out.reserve(kit->second.size());
    for (const auto& [id, doc] : kit->second) out.push_back(doc);
    return out;
  }

  size_t Count(const std::string& k) const override {
    std::lock_guard lock(mu_);
    auto kit = docs_.find(k);
    return kit == docs_.end() ? 0 : kit->second.size();
  }

  std::vector<std::string> Ids(const std::string& k) const override {
    std::lock_guard lock(mu_);
    std::vector<std::string> out;
    auto kit = docs_.find(k);
    if (kit == docs_.end()) return out;
    out.reserve(kit->second.size());
    for (const auto& [id, doc] : kit->second) out.push_back(id);
    return out;
  }

  uint64_t Revision() const override {
    std::lock_guard lock(mu_);
    return revision_;
  }

  Status Commit(const std::vector<StoreWrite>& writes) override {
    if (writes.empty()) return Status::Ok();
    std::lock_guard lock(mu_);
    AP_RETURN_IF_ERROR(Persist(writes));
    ApplyLocked(writes);
    ++revision_;
    std::vector<StoreChange> changes;
    for (const auto& w : writes) changes.push_back({w.kind, w.id, revision_, !w.doc});
    for (const auto& [h, fn] : subscribers_) fn(changes);
    return Status::Ok();
  }

  VersionedDoc GetVersioned(const std::string& k, const std::string& id) const override {
    std::lock_guard lock(mu_);
    auto kit = docs_.find(k);
    if (kit == docs_.end()) return {};
    auto it = kit->second.find(id);
    if (it == kit->second.end()) return {};
    return {it->second, revision_};
  }
  uint64_t Subscribe(ChangeFn fn) override {
    std::lock_guard lock(mu_);
    subscribers_[++next_sub_] = std::move(fn);
    return next_sub_;
  }
  void Unsubscribe(uint64_t h) override {
    std::lock_guard lock(mu_);
    subscribers_.erase(h);
  }

 protected:
  // Called with mu_ held before the in-memory copy changes; a failure leaves memory untouched.
  virtual Status Persist(const std::vector<StoreWrite>& writes) { return Status::Ok(); }

  void ApplyLocked(const std::vector<StoreWrite>& writes) {
    for (const auto& w : writes) {
      if (w.doc) {
        docs_[w.kind][w.id] = std::make_shared<const Json>(*w.doc);
      } else {
        auto kit = docs_.find(w.kind);
        if (kit != docs_.end()) kit->second.erase(w.id);
      }
    }
  }

  mutable std::mutex mu_;
  KindMap docs_;           // guarded by mu_
  uint64_t revision_ = 0;  // guarded by mu_
  std::map<uint64_t, ChangeFn> subscribers_;  // guarded by mu_
  uint64_t next_sub_ = 0;  // guarded by mu_
};

class SqliteStore : public MemoryStore {
 public:
  explicit SqliteStore(sqlite3* db) : db_(db) {}
  ~SqliteStore() override {
    sqlite3_finalize(upsert_);
    sqlite3_finalize(delete_);
    sqlite3_close(db_);
  }

  Status Init() {
    const char* setup =
        "PRAGMA journal_mode=WAL;"
        "PRAGMA synchronous=FULL;"
        "CREATE TABLE IF NOT EXISTS documents(kind TEXT NOT NULL, id TEXT NOT NULL, doc TEXT NOT NULL,"
        " PRIMARY KEY(kind, id)) WITHOUT ROWID;";
    AP_RETURN_IF_ERROR(Exec(setup));
    if (sqlite3_prepare_v2(db_, "INSERT OR REPLACE INTO documents(kind, id, doc) VALUES(?, ?, ?)", -1, &upsert_,
                           nullptr) != SQLITE_OK ||
        sqlite3_prepare_v2(db_, "DELETE FROM documents WHERE kind = ? AND id = ?", -1, &delete_, nullptr) !=
            SQLITE_OK) {
      return Status::Internal(std::string("store: prepare failed: ") + sqlite3_errmsg(db_));
    }
    return Load();
  }

 protected:
  Status Persist(const std::vector<StoreWrite>& writes) override {
    AP_RETURN_IF_ERROR(Exec("BEGIN IMMEDIATE"));
    for (const auto& w : writes) {
      sqlite3_stmt* st = w.doc ? upsert_ : delete_;
      sqlite3_reset(st);
      sqlite3_bind_text(st, 1, w.kind.c_str(), -1, SQLITE_TRANSIENT);
      sqlite3_bind_text(st, 2, w.id.c_str(), -1, SQLITE_TRANSIENT);
      if (w.doc) sqlite3_bind_text(st, 3, w.doc->dump().c_str(), -1, SQLITE_TRANSIENT);
      if (sqlite3_step(st) != SQLITE_DONE) {
        Status err = Status::Internal(std::string("store: write failed: ") + sqlite3_errmsg(db_));
        Exec("ROLLBACK");
        return err;
      }
    }
    return Exec("COMMIT");
  }

 private:
  Status Exec(const char* sql) {
    char* err = nullptr;
    if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) != SQLITE_OK) {
      std::string msg = err ? err : "unknown";
      sqlite3_free(err);
      return Status::Internal("store: " + msg);
    }
    return Status::Ok();
  }

  Status Load() {
    sqlite3_stmt* st = nullptr;
    if (sqlite3_prepare_v2(db_, "SELECT kind, id, doc FROM documents", -1, &st, nullptr) != SQLITE_OK) {
      return Status::Internal(std::string("store: load failed: ") + sqlite3_errmsg(db_));
    }
    std::lock_guard lock(mu_);
    while (sqlite3_step(st) == SQLITE_ROW) {
      std::string k = reinterpret_cast<const char*>(sqlite3_column_text(st, 0));
      std::string id = reinterpret_cast<const char*>(sqlite3_column_text(st, 1));
      Json doc = Json::parse(reinterpret_cast<const char*>(sqlite3_column_text(st, 2)), nullptr, false);
      if (doc.is_discarded()) {
        sqlite3_finalize(st);
        return Status::Internal("store: corrupt document " + k + "/" + id);
      }
      docs_[k][id] = std::make_shared<const Json>(std::move(doc));
    }
    sqlite3_finalize(st);
    return Status::Ok();
  }

  sqlite3* db_;
  sqlite3_stmt* upsert_ = nullptr;
  sqlite3_stmt* delete_ = nullptr;
};

}  // namespace

Result<std::unique_ptr<Store>> OpenSqliteStore(const std::string& path) {
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                      nullptr) != SQLITE_OK) {
    std::string msg = db ? sqlite3_errmsg(db) : "out of memory";
    sqlite3_close(db);
    return Status::Internal("store: cannot open " + path + ": " + msg);
  }
  sqlite3_busy_timeout(db, 5000);
  auto store = std::make_unique<SqliteStore>(db);
  AP_RETURN_IF_ERROR(store->Init());
  return std::unique_ptr<Store>(std::move(store));
}

std::unique_ptr<Store> NewMemoryStore() { return std::make_unique<MemoryStore>(); }

}  // namespace autopipe

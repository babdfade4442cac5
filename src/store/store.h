// The state store: the region's durable desired and observed state, as JSON documents keyed by (kind, id).
//
// Its shape is etcd's, so that a multi-node region can swap SQLite for etcd without touching a controller:
//   - revisions: every successful commit gets the next store revision (etcd's cluster revision), and each
//     document carries the revision of the commit that last wrote it (etcd's mod_revision);
//   - transactions: Commit applies a batch of puts and deletes atomically, guarded by optional per-document
//     revision preconditions (etcd's Txn with `mod_revision == n` compares); a failed compare applies nothing
//     and answers kConflictCode;
//   - watches: Subscribe delivers each commit's changed keys in commit order (etcd's Watch).
// Callers never see SQL, files or rows.
//
// Writes are durable (fsync'd to SQLite's WAL) before Commit() returns, so a kill -9 at any moment loses
// nothing an API call acknowledged. Reads are served from an in-memory copy that always equals what is on disk
// and never wait for disk: commits are serialised by a writer mutex held across the SQLite write and fsync,
// and readers share a second lock that a commit holds only while it swaps its changes into memory.
//
// A store opened from a file refuses to start on a missing, emptied or replaced database once the data dir
// has held one (see OpenSqliteStore), so a lost file is noticed instead of silently becoming an empty region.
//
// Thread-safety: all methods are safe to call concurrently; each Commit is applied atomically with respect to
// readers. Nothing throws out of a Store: failures are Status values.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/status.h"

namespace autopipe {

using Json = nlohmann::ordered_json;
// A stored document: immutable once committed, shared by readers without copying.
using Doc = std::shared_ptr<const Json>;

// Document kinds are named by the module that owns them (region/module.h lists each module's kinds). The store
// itself keeps one: counters and other bookkeeping.
namespace kind {
inline constexpr char kMeta[] = "meta";
}  // namespace kind

// A document with the revision it was last written at.
struct VersionedDoc {
  Doc doc;                // nullptr when absent
  uint64_t revision = 0;  // the store revision of the commit that last wrote it (etcd's mod_revision); 0 = absent
};

struct StoreWrite {
  std::string kind;
  std::string id;
  std::optional<Json> doc;                  // nullopt deletes
  std::optional<uint64_t> expect_revision;  // when set, the whole commit applies only if this document's current
                                            // revision equals it (0 = must not exist); else nothing is applied
};

// One changed document of a commit, as delivered to subscribers.
struct StoreChange {
  std::string kind;
  std::string id;
  uint64_t revision;  // the commit's store revision
  bool deleted;       // a delete (possibly of a document that was already absent)
};

// The Status code of a commit whose expect_revision did not hold (HTTP 409); nothing was applied.
inline constexpr char kConflictCode[] = "Conflict";
inline bool IsConflict(const Status& s) { return s.code() == kConflictCode; }

class Store {
 public:
  virtual ~Store() = default;
  virtual std::optional<Json> Get(const std::string& kind, const std::string& id) const = 0;
  // The shared document and its revision (no copy); {nullptr, 0} when absent.
  virtual VersionedDoc GetVersioned(const std::string& kind, const std::string& id) const = 0;
  // All documents of a kind, ordered by id (shared, not copied: cheap even for thousands).
  virtual std::vector<Doc> List(const std::string& kind) const = 0;
  virtual size_t Count(const std::string& kind) const = 0;
  // The ids of a kind, ordered (no document copies).
  virtual std::vector<std::string> Ids(const std::string& kind) const = 0;
  // The revision of the last successful commit (0 before any): a reader can tell whether anything changed
  // since it last looked. Never goes back, also across restarts of a persistent store.
  virtual uint64_t Revision() const = 0;
  // Applies every write or none, at revision Revision() + 1. Fails with kConflictCode (409) when an
  // expect_revision does not hold, with ValidationError when a document cannot be stored (text that is not
  // valid UTF-8), and with InternalFailure (plain message; details go to the log) when the disk write fails.
  // A failed commit changes nothing, on disk or in memory, and the next commit is unaffected. An empty batch
  // is a no-op that succeeds without a new revision.
  virtual Status Commit(const std::vector<StoreWrite>& writes) = 0;

  // Change notifications: after every successful commit, fn gets that commit's changes (one per write, in
  // batch order). Called in commit order on the committing thread with the store's writer lock held (not the
  // readers' lock): it must be quick (e.g. push keys onto a queue) and must not call Commit, Subscribe or
  // Unsubscribe; reads are fine. Returns a handle for Unsubscribe. Once Unsubscribe returns, fn is not called
  // again (it waits for a commit in progress).
  using ChangeFn = std::function<void(const std::vector<StoreChange>&)>;
  virtual uint64_t Subscribe(ChangeFn fn) = 0;
  virtual void Unsubscribe(uint64_t handle) = 0;

  Status Put(const std::string& k, const std::string& id, Json doc) {
    return Commit({{k, id, std::move(doc), std::nullopt}});
  }
  Status Delete(const std::string& k, const std::string& id) { return Commit({{k, id, std::nullopt, std::nullopt}}); }
};

struct SqliteStoreOptions {
  // Test hook: called inside each commit's SQLite transaction, after its writes and before COMMIT (the fsync),
  // with the writer lock held. Tests use it to hold a commit in progress or to make one fail (by throwing).
  std::function<void()> before_sync_for_test;
};

// Opens the SQLite store at `path`, creating it when neither it nor its marker file exists.
//
// A new store gets a random store id, kept inside the database and in a marker file `<path>.id` (mode 0600,
// fsync'd). If the marker exists but the database is missing, empty or holds another id, the open fails and
// says how to recover: restore the database file, or delete the marker file to start afresh (an empty region).
// A database made before markers existed is migrated in place (documents kept, each at revision 1) and
// given a marker. At open the whole file is checked (`PRAGMA quick_check`) and every document parsed: a damaged
// page, a truncated file or a corrupt document fails the open with a message saying what to do.
Result<std::unique_ptr<Store>> OpenSqliteStore(const std::string& path, SqliteStoreOptions options = {});
// A store that lives only in memory (unit tests), with the same semantics.
std::unique_ptr<Store> NewMemoryStore();

}  // namespace autopipe

// The state store: the region's durable desired and observed state, as JSON documents keyed by (kind, id).
//
// Writes are atomic batches that are durable (fsync'd to SQLite's WAL) before Commit() returns, so a kill -9
// at any moment loses nothing an API call acknowledged. Reads are served from an in-memory copy that always
// equals what is on disk. This is the seam where a multi-node region swaps SQLite for etcd.
//
// Thread-safety: all methods are safe to call concurrently; each Commit is applied atomically with respect to
// readers.
#pragma once

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

struct StoreWrite {
  std::string kind;
  std::string id;
  std::optional<Json> doc;  // nullopt deletes
};

// (Interim until the store rework lands: revisions and watches.)
struct VersionedDoc {
  Doc doc;
  uint64_t revision = 0;
};
struct StoreChange {
  std::string kind;
  std::string id;
  uint64_t revision;
  bool deleted;
};

class Store {
 public:
  virtual ~Store() = default;
  virtual std::optional<Json> Get(const std::string& kind, const std::string& id) const = 0;
  // All documents of a kind, ordered by id (shared, not copied: cheap even for thousands).
  virtual std::vector<Doc> List(const std::string& kind) const = 0;
  virtual size_t Count(const std::string& kind) const = 0;
  // The ids of a kind, ordered (no document copies).
  virtual std::vector<std::string> Ids(const std::string& kind) const = 0;
  // Counts successful commits: a reader can tell whether anything changed since it last looked.
  virtual uint64_t Revision() const = 0;
  // Applies every write or none.
  virtual Status Commit(const std::vector<StoreWrite>& writes) = 0;

  virtual VersionedDoc GetVersioned(const std::string& kind, const std::string& id) const = 0;
  using ChangeFn = std::function<void(const std::vector<StoreChange>&)>;
  virtual uint64_t Subscribe(ChangeFn fn) = 0;
  virtual void Unsubscribe(uint64_t handle) = 0;

  Status Put(const std::string& k, const std::string& id, Json doc) { return Commit({{k, id, std::move(doc)}}); }
  Status Delete(const std::string& k, const std::string& id) { return Commit({{k, id, std::nullopt}}); }
};

// Opens (creating if needed) the SQLite store at `path`.
Result<std::unique_ptr<Store>> OpenSqliteStore(const std::string& path);
// A store that lives only in memory (unit tests).
std::unique_ptr<Store> NewMemoryStore();

}  // namespace autopipe

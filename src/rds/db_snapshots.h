// RDS manual DB snapshots (docs/design.md, "RDS manual snapshots"): CreateDBSnapshot, CopyDBSnapshot,
// DeleteDBSnapshot and DeleteDBInstance's final snapshot.
//
// What this offers:
//   - the rules as pure functions (identifier, the per-region quota, which instance states can be snapshotted),
//     unit-tested in db_snapshots_test.cc;
//   - the API's side: handlers rds_service.cc calls with RegionContext::mu held. They validate everything
//     first (a refused call changes nothing), then record a db_snapshot document (SnapshotType manual,
//     Status creating) with events 0040 (or 0060 for a copy) and, for a snapshot of an instance, mark the
//     instance `backing-up` (db_instance.ManualSnapshot = the snapshot id; the DB instance controller keeps the
//     status while it is set);
//   - DbSnapshotController: does the work on threads of its own, never holding RegionContext::mu while it runs:
//     a snapshot is a mariadb-backup of the standby when the instance is Multi-AZ (else of the primary) into the
//     backup store in exactly the layout and with the manifest of an automated backup (db_backups.h):
//     <data dir>/rds-backups/<DbiResourceId>/backups/<snapshot id>/{manifest.json, data/}; a copy is a file copy
//     of a verified backup, checked again against the source's checksum. PercentProgress moves with the bytes
//     written (backup_progress.h). Deleting removes the backup's folder, then the document.
//
// Manual snapshots outlive their instance: retention pruning and DeleteDBInstance leave them (and their folders
// in the store) alone; only DeleteDBSnapshot removes one.
//
// db_snapshot fields a manual snapshot adds to those of db_backups.h: TagList [{Key, Value}], Final (taken by
// DeleteDBInstance), CopyFrom / SourceStorePath (a copy's source snapshot and its folder),
// SourceDBSnapshotIdentifier (the source's ARN, rendered), Attempts / LastError (failed tries; Status failed
// after kMaxSnapshotAttempts), Deleting (DeleteDBSnapshot accepted: hidden from the API, files going).
//
// Thread-safety: the rules are pure; the handlers need RegionContext::mu held; the controller locks it itself.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "api/protocol.h"
#include "common/status.h"
#include "process/supervisor.h"
#include "region/context.h"
#include "region/background_jobs.h"
#include "region/controller.h"

namespace autopipe::rds {

inline constexpr size_t kMaxManualSnapshots = 100;  // per region (AWS-SEMANTICS.md §4)
inline constexpr int kMaxSnapshotAttempts = 3;
inline constexpr char kManual[] = "manual";

namespace snapshot_status {
inline constexpr char kCreating[] = "creating";
inline constexpr char kAvailable[] = "available";
inline constexpr char kFailed[] = "failed";
inline constexpr char kDeleted[] = "deleted";  // only in DeleteDBSnapshot's answer
}  // namespace snapshot_status

// ---- rules ----------------------------------------------------------------------------------------------------

// A DB snapshot identifier as RDS takes one: 1-255 letters, digits and hyphens, a letter first, no hyphen last
// or twice in a row. (Automated ones, "rds:...", are never given by a user.)
bool ValidSnapshotIdentifier(const std::string& id);
// InvalidParameterValue naming `parameter` when `id` is not valid.
Status CheckSnapshotIdentifier(const std::string& parameter, const std::string& id);
// SnapshotQuotaExceeded when `existing` manual snapshots leave no room for one more.
Status CheckManualSnapshotQuota(size_t existing);
// Whether a snapshot of the DB instance `db` can be taken now (InvalidDBInstanceState if not). CreateDBSnapshot
// needs it available; a final snapshot (DeleteDBInstance) also runs while a backup or a modification is going
// on, but never of an instance that is not running (creating, stopped, failed, being deleted).
Status CheckCanSnapshot(const Json& db, bool final_snapshot);
// True for a snapshot document the API shows (not one being deleted).
bool Listed(const Json& snap);
// Manual snapshots the quota counts.
size_t CountManualSnapshots(const RegionContext& ctx);
// The id of a snapshot given as an id or as this region's snapshot ARN, lower-cased for manual ones; nullopt
// for another region's ARN.
std::optional<std::string> SnapshotKey(const RegionContext& ctx, const std::string& given);

// ---- the API's side (RegionContext::mu held) -------------------------------------------------------------------

// Each returns the snapshot document as stored (rds_service.cc renders it).
Result<Json> CreateDbSnapshot(RegionContext& ctx, const Params& p, const Json& tags);
Result<Json> CopyDbSnapshot(RegionContext& ctx, const Params& p, const Json& tags);
Result<Json> DeleteDbSnapshot(RegionContext& ctx, const Params& p);
// Tags of a DB snapshot named by its ARN (AddTagsToResource, ListTagsForResource, RemoveTagsFromResource):
// nullopt when `arn` is not a snapshot ARN of this region (the caller handles DB instance ARNs);
// DBSnapshotNotFound when no such snapshot is listed; TagQuotaPerResourceExceeded past 50 tags.
std::optional<Result<Json>> AddSnapshotTags(RegionContext& ctx, const std::string& arn, const Json& tags);
std::optional<Result<Json>> ListSnapshotTags(const RegionContext& ctx, const std::string& arn);
std::optional<Result<Json>> RemoveSnapshotTags(RegionContext& ctx, const std::string& arn,
                                               const std::vector<std::string>& keys);
// DeleteDBInstance with FinalDBSnapshotIdentifier: checks the identifier is free, the quota and the instance's
// state, then appends the final snapshot's document and its events to `writes` and marks `db` (the caller
// commits both). Changes nothing on error.
Status AddFinalSnapshot(RegionContext& ctx, Json& db, const std::string& snapshot_id, std::vector<StoreWrite>* writes);
// True while a manual snapshot of the DB instance `id` is being taken (the DB instance controller keeps its
// servers until it is done). Takes RegionContext::mu.
bool SnapshotOfInstanceInProgress(const RegionContext& ctx, const std::string& id);

// ---- the controller --------------------------------------------------------------------------------------------

class DbSnapshotController : public Controller {
 public:
  explicit DbSnapshotController(RegionContext* ctx) : ctx_(ctx), supervisor_(ctx->launcher, ctx->clock) {}
  ~DbSnapshotController() override;  // waits for the work in progress
  const char* name() const override { return "db-snapshot"; }
  std::vector<std::string> Keys() override;
  std::vector<Watch> Watches() const override;
  ReconcileResult Reconcile(const std::string& id) override;
  int workers() const override { return 2; }

 private:
  // The work of one snapshot: a backup of its instance, or a copy.
  Status Take(const std::string& sid, const Json& snap);
  Status Copy(const std::string& sid, const Json& snap);
  Status Finish(const std::string& sid, const std::string& gtid, int64_t end_time);
  void RecordFailure(const std::string& sid, const Status& st);
  void SetProgress(const std::string& sid, int percent);
  ReconcileResult Delete(const std::string& sid, const Json& snap);

  RegionContext* const ctx_;
  Supervisor supervisor_;
  BackgroundJobs jobs_;  // one per snapshot; last, so that it is joined before the rest goes
};

}  // namespace autopipe::rds

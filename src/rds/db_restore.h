// RDS restores (docs/design.md, "RDS restores"): RestoreDBInstanceToPointInTime, our GTID extension of it
// (RestoreToGtid) and RestoreDBInstanceFromDBSnapshot, from the backup store that db_backups.h writes.
//
// What this offers:
//   - the restore's rules as pure functions, unit-tested (db_restore_test.cc): which backup a target starts from
//     (SelectBackup), which archived binlog files are replayed after it and in what order (PlanReplay), and the
//     mariadb-binlog command line that stops at the target (ReplayArgv, StopDatetime);
//   - what the API needs to validate a request before it writes anything (FindRestoreSource, PlanPointInTime,
//     PlanFromSnapshot): the source (a live instance, or the retained automated backups of a deleted one), its
//     restore window, the backup chosen, and the Restore document the API records on the new instance;
//   - DbRestoreController: per restored DB instance, one restore on a thread of its own (never under
//     RegionContext::mu): verify the backup's checksum, copy it into the new primary's data dir, start that server
//     alone (no network, grant tables off until its own accounts are set), replay the archived binary log
//     segments into it through `mariadb-binlog ... | mariadb` (its password in a 0600 option file, never argv) up
//     to the target, then hand the server to the DB instance controller, which makes it a normal instance
//     (endpoint, standby when Multi-AZ, its own backups).
//
// The Restore field of a db_instance document (written by the API; State and Error by this controller only):
//   Kind           "point-in-time" or "snapshot"
//   State          pending -> running -> done, or failed (DBInstanceStatus incompatible-restore), or cancelled
//                  (deleted while restoring)
//   SourceDBInstanceIdentifier, SourceDbiResourceId, SourceSnapshot (the backup's snapshot id)
//   BackupDir      <store>/backups/<name>: the backup to start from (checksum verified first)
//   StoreDir       the source's store: its archived binary log (point-in-time only)
//   TargetTime     ms: replay every transaction whose binlog timestamp, to the second, is at or before it
//   TargetGtid     "D-S-N": replay up to and including this transaction (our extension; RestoreToGtid)
//   Error          why it failed
// While State is pending or running (and failed, until the instance is deleted) the DB instance controller leaves
// the instance to this controller.
//
// Time semantics: binlog events carry whole seconds, so a RestoreTime is exact to the second: the new instance
// holds exactly the transactions whose commit second is at or before RestoreTime's second (its fraction is
// ignored). A GTID target is exact to the transaction.
//
// Thread-safety: the free functions that take a RegionContext must be called with RegionContext::mu held; the
// pure ones are thread-safe. The controller takes the lock only to read and to commit.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "common/status.h"
#include "process/supervisor.h"
#include "rds/mariadb.h"
#include "region/context.h"
#include "region/background_jobs.h"
#include "region/controller.h"

namespace autopipe::rds {

namespace restore_state {
inline constexpr char kPending[] = "pending";
inline constexpr char kRunning[] = "running";
inline constexpr char kDone[] = "done";
inline constexpr char kFailed[] = "failed";
inline constexpr char kCancelled[] = "cancelled";
}  // namespace restore_state
// RDS's status for an instance whose restore failed.
inline constexpr char kIncompatibleRestore[] = "incompatible-restore";

// ---- the rules ------------------------------------------------------------------------------------------------

// One backup a restore could start from (an available automated or manual snapshot's backup).
struct BackupChoice {
  std::string snapshot_id;
  std::string dir;   // <store>/backups/<name>
  std::string gtid;  // the GTID position the backup holds
  int64_t start_time = 0, end_time = 0;  // ms
};

// What to restore to: a time (ms; to the second) or a GTID (exact).
struct RestoreTarget {
  std::optional<int64_t> time_ms;
  std::string gtid;
};

// "D-S-N" with three unsigned numbers (one GTID).
bool ValidGtid(const std::string& gtid);

// The backup a restore to `target` starts from: for a time, the one ending latest before the end of the target's
// second (everything in it committed at or before the target); for a GTID, the newest whose GTID position is at
// or before the target in every domain. nullopt when none qualifies.
std::optional<size_t> SelectBackup(const std::vector<BackupChoice>& backups, const RestoreTarget& target);

// One archiving segment of the store (binlogs/<server>/, segment.json): its files in order, with the time of
// each one's last event (its mtime, ms).
struct ArchiveSegment {
  std::string server;
  std::string dir;
  int64_t started_at = 0;
  std::vector<std::string> files;  // names, in order
  std::vector<int64_t> mtimes;     // ms, same order
};
std::vector<ArchiveSegment> ReadArchive(const std::string& store_dir);

// The files to replay after a backup that started at backup_start_ms: one step per segment, in StartedAt order;
// in each, the files from the first one whose last event came no earlier than a minute before the backup began
// (earlier ones hold only transactions the backup has; the minute covers clock and mtime granularity). GTID
// filtering at replay skips what the backup or an earlier segment already applied.
struct ReplayStep {
  std::string server;
  std::vector<std::string> files;  // full paths
};
std::vector<ReplayStep> PlanReplay(const std::vector<ArchiveSegment>& segments, int64_t backup_start_ms);

// "YYYY-MM-DD HH:MM:SS" (UTC) of the second after the target's: mariadb-binlog --stop-datetime stops at the first
// event at or after it, so every event of the target's second is replayed (run it with TZ=UTC).
std::string StopDatetime(int64_t target_ms);

// mariadb-binlog's argv for one step: start after `applied` (a GTID position; "" for none), stop at the target.
std::vector<std::string> ReplayArgv(const std::vector<std::string>& files, const std::string& applied,
                                    const RestoreTarget& target);

// The later of two GTID positions in each domain ("0-1-10,1-2-3" and "0-2-12" -> "0-2-12,1-2-3").
std::string MergeGtidPositions(const std::string& a, const std::string& b);

// True when the GTID position `applied` includes `gtid`.
bool GtidReached(const std::string& applied, const std::string& gtid);

// ---- what the API needs (call with RegionContext::mu held) ---------------------------------------------------

struct RestoreSource {
  std::string db_instance_identifier;
  std::string dbi_resource_id;
  std::optional<Json> instance;   // the live source instance, when it exists
  Json about;                     // engine, class, port, user, storage...: the live instance or its backups
  std::vector<BackupChoice> backups;    // its available automated backups, oldest first
  int64_t earliest_restorable_time = 0;  // ms; 0 when there is no backup
  int64_t latest_restorable_time = 0;    // ms; 0 when unknown
  int64_t retention = 0;
};

// The source named by SourceDBInstanceIdentifier (a live instance: DBInstanceNotFound) or SourceDbiResourceId (a
// live instance or retained automated backups: DBInstanceAutomatedBackupNotFound).
Result<RestoreSource> FindRestoreSource(const RegionContext& ctx, const std::optional<std::string>& instance_id,
                                        const std::optional<std::string>& dbi_resource_id);

// Checks the target against the source's restore window (PointInTimeRestoreNotEnabled, InvalidRestoreFault) and
// returns the Restore document for the new instance (State pending). use_latest: the target is the source's
// LatestRestorableTime.
Result<Json> PlanPointInTime(const RestoreSource& source, RestoreTarget target, bool use_latest = false);

// The Restore document for a new instance from a db_snapshot document (its backup must be in the store).
Result<Json> PlanFromSnapshot(const Json& snapshot);

// True while the restore controller owns the instance (pending, running; failed until it is deleted).
bool RestoreHoldsInstance(const Json& inst);

// ---- the controller -------------------------------------------------------------------------------------------

class DbRestoreController : public Controller {
 public:
  explicit DbRestoreController(RegionContext* ctx) : ctx_(ctx), supervisor_(ctx->launcher, ctx->clock) {}
  ~DbRestoreController() override;  // waits for restores in progress
  const char* name() const override { return "db-restore"; }
  std::vector<std::string> Keys() override;
  std::vector<Watch> Watches() const override;
  ReconcileResult Reconcile(const std::string& id) override;
  int workers() const override { return 1; }

 private:
  Status RunRestore(const std::string& id);
  Status Fail(const std::string& id, const Status& why);
  Status CommitRestore(const std::string& id, const std::function<void(Json& inst, std::vector<StoreWrite>*)>& f,
                       std::vector<StoreWrite> writes = {});
  bool Cancelled(const std::string& id);

  RegionContext* const ctx_;
  Supervisor supervisor_;

  BackgroundJobs jobs_;  // one per restoring instance; last, so that it is joined before the rest goes
};

}  // namespace autopipe::rds

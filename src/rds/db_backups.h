// RDS automated backups and continuous binary-log archiving (docs/design.md, "RDS backups").
//
// What this offers:
//   - the backup store's layout and its rules: where an instance's backups and archived binary logs live, the
//     manifest each backup carries and its checksum (VerifyBackup, which restores call before using one);
//   - the schedule's rules as pure functions over a clock (window, due, naming, pruning), unit-tested with a
//     fake clock;
//   - DbBackupController: per DB instance with BackupRetentionPeriod > 0, one backup at creation and one a day
//     in PreferredBackupWindow (from the standby when Multi-AZ), automated db_snapshot documents, pruning, and
//     one `mariadb-binlog` archiver process (a db_binlog_archiver document) following the current primary;
//     LatestRestorableTime on the db_instance document.
//
// The store: <data dir>/rds-backups/<DbiResourceId>/ (BackupStoreDir). Nothing in it refers to the DB instance's
// documents or its server folders, so it outlives the instance:
//   instance.json                     the instance as last backed up (identifier, engine, class, port, ...)
//   backups/<name>/manifest.json      one per backup (Manifest below); <name> is the snapshot id with ':' -> '_'
//   backups/<name>/data/              the prepared mariadb-backup (ready for --copy-back / --move-back)
//   binlogs/<server>/<binlog files>   the raw binary log of server <server> (s1, s2, ...: a server name is one
//                                     history; a failover starts a new folder), byte-identical to the server's
//   binlogs/<server>/segment.json     where archiving of that server began: {Server, StartFile,
//                                     StartGtidState (the GTID state before StartFile), Previous (the server
//                                     archived before), PreviousLastGtid, StartedAt}
// A restore takes the last backup before the target, then replays every segment in StartedAt order from the
// backup's Gtid (mariadb-binlog --start-position=<GTID>), skipping GTIDs already applied.
//
// Thread-safety: the free functions are thread-safe. The controller takes RegionContext::mu only to read and to
// commit; backups run on threads of their own, so an instance's archiver and LatestRestorableTime keep going.
#pragma once

#include <cstdint>
#include <map>
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

namespace autopipe {
namespace kind {
// An automated (later also manual) DB snapshot. Id = DBSnapshotIdentifier ("rds:<id>-YYYY-MM-DD-HH-MM").
// Fields in AWS's names (DescribeDBSnapshots renders them): DBSnapshotIdentifier, DBInstanceIdentifier,
// DbiResourceId, SnapshotType ("automated"), Status (creating, available), PercentProgress,
// SnapshotCreateTime (ms), OriginalSnapshotCreateTime (ms), InstanceCreateTime (ms), Engine, EngineVersion,
// AllocatedStorage, StorageType, Port, AvailabilityZone, MasterUsername, DBInstanceClass; and, not rendered,
// StorePath (the backup's folder in the store), Gtid and BackupEndTime (ms: the earliest instant it restores).
inline constexpr char kDbSnapshot[] = "db_snapshot";
// The binary-log archiver of one DB instance (id = DBInstanceIdentifier): a supervised `mariadb-binlog`
// (process/supervisor.h fields) and Server (the server it reads), StoreDir.
inline constexpr char kDbBinlogArchiver[] = "db_binlog_archiver";
}  // namespace kind

namespace rds {

inline constexpr int64_t kDayMillis = 24LL * 3600 * 1000;

// ---- the store ------------------------------------------------------------------------------------------------

// <data dir>/rds-backups/<DbiResourceId>.
std::string BackupStoreDir(const RegionContext& ctx, const std::string& dbi_resource_id);
// The folder name of a backup in <store>/backups/ ("rds:x-2026-12-01-17-20" -> "rds_x-2026-12-01-17-20").
std::string BackupFolderName(const std::string& snapshot_id);

// manifest.json: everything a restore needs, whether or not the instance still exists.
struct Manifest {
  std::string snapshot_id, snapshot_type;  // "automated"
  std::string db_instance_identifier, dbi_resource_id, engine, engine_version, db_instance_class;
  std::string master_username, availability_zone;
  int port = 3306;
  int64_t allocated_storage = 20;
  std::string source_server;  // the server it was taken from (s1, s2, ...)
  std::string gtid;           // the GTID position the backup holds (replay from here)
  std::string binlog_file;    // the source server's binlog file and position at the backup
  int64_t binlog_position = 0;
  int64_t start_time = 0, end_time = 0;  // ms
  int64_t size_bytes = 0;                // of data/
  int64_t file_count = 0;
  std::string sha256;  // hex, ChecksumTree(data/)
};
Json ManifestToJson(const Manifest& m);
Result<Manifest> ManifestFromJson(const Json& j);

// SHA-256 over every regular file under `dir`, in path order: each file's relative path, its size and its
// bytes. Also returns the total size and the number of files.
struct TreeSum {
  std::string sha256;
  int64_t size_bytes = 0;
  int64_t file_count = 0;
};
Result<TreeSum> ChecksumTree(const std::string& dir);

// Reads <backup_dir>/manifest.json and checks data/ against it (size, file count, SHA-256). An error naming
// what differs when the backup is damaged; the manifest when it is intact. Restores call this first.
Result<Manifest> VerifyBackup(const std::string& backup_dir);

// Deletes the archived binlog files (binlogs/<server>/...) whose last event came more than a minute before
// oldest_backup_start_ms, oldest first, never the file active_server's archiver is writing; a folder of another
// server left with no binlog file goes whole. Returns the paths deleted.
std::vector<std::string> PruneArchive(const std::string& store_dir, const std::string& active_server,
                                      int64_t oldest_backup_start_ms);

// ---- the schedule's rules -------------------------------------------------------------------------------------

// "hh24:mi-hh24:mi" -> {start minute of the day, length in minutes}; nullopt when malformed.
std::optional<std::pair<int, int>> ParseDailyWindow(const std::string& window);
// The start (ms) of the most recent occurrence of `window` beginning at or before now_ms (UTC).
int64_t LastWindowStart(int64_t now_ms, const std::string& window);
// True when now is inside an occurrence of `window` in which no backup has started yet (last_start_ms is the
// start of the last automated backup, 0 for none).
bool DailyBackupDue(int64_t now_ms, const std::string& window, int64_t last_start_ms);
// "rds:<id>-YYYY-MM-DD-HH-MM" for a backup started at start_ms (UTC).
std::string AutomatedSnapshotId(const std::string& db_instance_id, int64_t start_ms);
// Automated snapshots (id -> SnapshotCreateTime ms) that fall out of a retention of `retention_days` at now:
// created more than retention_days ago; all of them when retention is 0.
std::vector<std::string> ExpiredAutomatedSnapshots(const std::map<std::string, int64_t>& created, int64_t now_ms,
                                                   int64_t retention_days);

// The last GTID in mariadb-binlog's text output of a binlog file ("" when none).
std::string LastGtidInBinlogText(const std::string& text);
// "0-1-42,1-2-7" -> domain -> seq_no.
std::map<int64_t, int64_t> ParseGtidState(const std::string& state);
// True when every domain's seq_no in `a` is at most b's (a's state comes no later than b).
bool GtidStateAtMost(const std::string& a, const std::string& b);

// ---- the controller -------------------------------------------------------------------------------------------

// How often LatestRestorableTime is measured and recorded (and the controller's pass period).
inline constexpr int kArchivePeriodMs = 250;

class DbBackupController : public Controller {
 public:
  explicit DbBackupController(RegionContext* ctx) : ctx_(ctx), supervisor_(ctx->launcher, ctx->clock) {}
  ~DbBackupController() override;  // waits for backups in progress
  const char* name() const override { return "db-backup"; }
  std::vector<std::string> Keys() override;
  std::vector<Watch> Watches() const override;
  ReconcileResult Reconcile(const std::string& id) override;
  int workers() const override { return 2; }

 private:
  struct Snapshot;
  Snapshot Read(const std::string& id);
  ReconcileResult StopArchiver(const std::string& id, Snapshot& s, bool forget);
  ReconcileResult DeleteOrphans(const std::string& id, Snapshot& s);
  Status EnsureArchiver(const std::string& id, Snapshot& s);
  Status UpdateLatestRestorableTime(const std::string& id, Snapshot& s);
  Status Prune(const std::string& id, Snapshot& s, int64_t retention_days);
  void StartBackup(const std::string& id, const Snapshot& s, bool initial);
  Status RunBackup(const std::string& id, const Snapshot& s, const std::string& snapshot_id, int64_t start);

  RegionContext* const ctx_;
  Supervisor supervisor_;

  std::mutex mu_;
  // The connection to each instance's primary that LatestRestorableTime is read over, with its address.
  std::map<std::string, std::pair<std::string, std::unique_ptr<Connection>>> conns_;  // guarded by mu_
  BackgroundJobs backups_;  // one per instance; last, so that it is joined before the rest goes
};

}  // namespace rds
}  // namespace autopipe

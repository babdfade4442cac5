#include "rds/db_restore.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <chrono>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "common/log.h"
#include "common/time_util.h"
#include "ec2/instances.h"
#include "lb/node_files.h"
#include "process/recorded_process.h"
#include "rds/db_backups.h"
#include "rds/db_controller.h"
#include "rds/db_instances.h"

namespace fs = std::filesystem;

namespace autopipe::rds {
namespace {

constexpr char kBinlogTool[] = "/usr/bin/mariadb-binlog";
constexpr char kClientTool[] = "/usr/bin/mariadb";
// A replay step is bounded: a runaway one is killed and the restore fails.
constexpr int64_t kReplayTimeoutMs = 60LL * 60 * 1000;
// How long a restore to a time waits for the source's archive to reach the end of the target's second.
constexpr int64_t kArchiveWaitMs = 10'000;

std::string Str(const Json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : "";
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

Status InvalidRestore(const std::string& message) { return Status(400, "InvalidRestoreFault", message); }

int64_t MtimeMillis(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return 0;
  return int64_t{st.st_mtim.tv_sec} * 1000 + st.st_mtim.tv_nsec / 1'000'000;
}

// The buffer pool of a server of `cls` (as the DB instance controller sizes it).
int BufferPoolMb(const std::string& cls) {
  if (cls.find("micro") != std::string::npos || cls.find("small") != std::string::npos) return 16;
  if (cls.find("medium") != std::string::npos) return 32;
  return 64;
}

Status CancelledStatus() { return Status(409, "Cancelled", "the instance is being deleted"); }

}  // namespace

// ---- the rules ------------------------------------------------------------------------------------------------

bool ValidGtid(const std::string& gtid) {
  int dashes = 0;
  bool digit = false;
  for (char ch : gtid) {
    if (ch == '-') {
      if (!digit) return false;
      ++dashes;
      digit = false;
    } else if (std::isdigit(static_cast<unsigned char>(ch))) {
      digit = true;
    } else {
      return false;
    }
  }
  return dashes == 2 && digit && gtid.size() <= 64;
}

std::optional<size_t> SelectBackup(const std::vector<BackupChoice>& backups, const RestoreTarget& target) {
  std::optional<size_t> best;
  for (size_t i = 0; i < backups.size(); ++i) {
    const BackupChoice& b = backups[i];
    bool fits = false;
    if (target.time_ms) {
      // Everything in the backup committed before it ended; the target takes all of its second.
      const int64_t second_end = (*target.time_ms / 1000 + 1) * 1000;
      fits = b.end_time > 0 && b.end_time < second_end;
    } else if (!target.gtid.empty()) {
      fits = GtidStateAtMost(b.gtid, target.gtid);
    }
    if (fits && (!best || b.end_time > backups[*best].end_time)) best = i;
  }
  return best;
}

std::vector<ArchiveSegment> ReadArchive(const std::string& store_dir) {
  std::vector<ArchiveSegment> out;
  std::error_code ec;
  for (const auto& folder : fs::directory_iterator(store_dir + "/binlogs", ec)) {
    if (!folder.is_directory()) continue;
    ArchiveSegment seg;
    seg.server = folder.path().filename().string();
    seg.dir = folder.path().string();
    Json meta = Json::parse(ReadFile(seg.dir + "/segment.json"), nullptr, false);
    if (!meta.is_discarded()) seg.started_at = meta.value("StartedAt", int64_t{0});
    std::error_code ec2;
    for (const auto& e : fs::directory_iterator(seg.dir, ec2)) {
      const std::string name = e.path().filename().string();
      if (e.is_regular_file() && name.find(".0") != std::string::npos && name.find(".json") == std::string::npos)
        seg.files.push_back(name);
    }
    std::sort(seg.files.begin(), seg.files.end());
    for (const auto& f : seg.files) seg.mtimes.push_back(MtimeMillis(seg.dir + "/" + f));
    out.push_back(std::move(seg));
  }
  std::sort(out.begin(), out.end(), [](const ArchiveSegment& a, const ArchiveSegment& b) {
    return a.started_at != b.started_at ? a.started_at < b.started_at : a.server < b.server;
  });
  return out;
}

std::vector<ReplayStep> PlanReplay(const std::vector<ArchiveSegment>& segments, int64_t backup_start_ms) {
  std::vector<ReplayStep> steps;
  const int64_t from = backup_start_ms - 60'000;
  for (const auto& seg : segments) {
    ReplayStep step;
    step.server = seg.server;
    size_t first = seg.files.size();
    for (size_t i = 0; i < seg.files.size(); ++i) {
      if (i >= seg.mtimes.size() || seg.mtimes[i] >= from) {
        first = i;
        break;
      }
    }
    for (size_t i = first; i < seg.files.size(); ++i) step.files.push_back(seg.dir + "/" + seg.files[i]);
    if (!step.files.empty()) steps.push_back(std::move(step));
  }
  return steps;
}

std::string StopDatetime(int64_t target_ms) {
  const std::time_t t = static_cast<std::time_t>(target_ms / 1000 + 1);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm);
  return buf;
}

std::vector<std::string> ReplayArgv(const std::vector<std::string>& files, const std::string& applied,
                                    const RestoreTarget& target) {
  // Segments overlap (a failover's new segment starts before the old one's last GTID): no strict GTID order.
  std::vector<std::string> argv = {kBinlogTool, "--no-defaults", "--skip-gtid-strict-mode"};
  if (!applied.empty()) argv.push_back("--start-position=" + applied);  // exclusive: after what is applied
  if (target.time_ms) argv.push_back("--stop-datetime=" + StopDatetime(*target.time_ms));
  if (!target.gtid.empty()) argv.push_back("--stop-position=" + target.gtid);  // inclusive
  argv.insert(argv.end(), files.begin(), files.end());
  return argv;
}

std::string MergeGtidPositions(const std::string& a, const std::string& b) {
  std::map<int64_t, std::pair<int64_t, std::string>> by_domain;  // domain -> (seq_no, "D-S-N")
  for (const std::string* list : {&a, &b}) {
    std::istringstream in(*list);
    std::string one;
    while (std::getline(in, one, ',')) {
      long long d = 0, srv = 0, n = 0;
      if (std::sscanf(one.c_str(), " %lld-%lld-%lld", &d, &srv, &n) != 3) continue;
      auto it = by_domain.find(d);
      if (it == by_domain.end() || n > it->second.first)
        by_domain[d] = {n, std::to_string(d) + "-" + std::to_string(srv) + "-" + std::to_string(n)};
    }
  }
  std::string out;
  for (const auto& [d, v] : by_domain) out += (out.empty() ? "" : ",") + v.second;
  return out;
}

bool GtidReached(const std::string& applied, const std::string& gtid) { return GtidStateAtMost(gtid, applied); }

// ---- what the API needs -----------------------------------------------------------------------------------------

Result<RestoreSource> FindRestoreSource(const RegionContext& ctx, const std::optional<std::string>& instance_id,
                                        const std::optional<std::string>& dbi_resource_id) {
  RestoreSource src;
  if (instance_id) {
    auto inst = ctx.store->Get(kind::kDbInstance, *instance_id);
    if (!inst || (*inst)["Spec"].value("Deleting", false))
      return Status(404, "DBInstanceNotFound", "DBInstance " + *instance_id + " not found.");
    if (dbi_resource_id && Str(*inst, "DbiResourceId") != *dbi_resource_id)
      return Status(404, "DBInstanceAutomatedBackupNotFound",
                    "No automated backup of " + *instance_id + " has DbiResourceId " + *dbi_resource_id + ".");
    src.instance = *inst;
  } else if (dbi_resource_id) {
    for (const auto& doc : ctx.store->List(kind::kDbInstance)) {
      if (Str(*doc, "DbiResourceId") == *dbi_resource_id && !(*doc)["Spec"].value("Deleting", false))
        src.instance = *doc;
    }
  }
  if (src.instance) {
    src.db_instance_identifier = Str(*src.instance, "DBInstanceIdentifier");
    src.dbi_resource_id = Str(*src.instance, "DbiResourceId");
    src.about = *src.instance;
    src.retention = src.instance->value("BackupRetentionPeriod", int64_t{0});
    src.latest_restorable_time = src.instance->value("LatestRestorableTime", int64_t{0});
  } else {
    src.dbi_resource_id = dbi_resource_id.value_or("");
  }
  std::optional<Json> newest_retained;
  for (const auto& doc : ctx.store->List(kind::kDbSnapshot)) {
    const Json& s = *doc;
    if (Str(s, "DbiResourceId") != src.dbi_resource_id || Str(s, "SnapshotType") != "automated" ||
        Str(s, "Status") != "available" || Str(s, "StorePath").empty())
      continue;
    if (!src.instance && !s.value("Retained", false)) continue;
    BackupChoice b;
    b.snapshot_id = Str(s, "DBSnapshotIdentifier");
    b.dir = Str(s, "StorePath");
    b.gtid = Str(s, "Gtid");
    b.start_time = s.value("SnapshotCreateTime", int64_t{0});
    b.end_time = s.value("BackupEndTime", b.start_time);
    src.backups.push_back(b);
    if (!src.instance && (!newest_retained || b.start_time > newest_retained->value("SnapshotCreateTime", int64_t{0})))
      newest_retained = s;
  }
  std::sort(src.backups.begin(), src.backups.end(),
            [](const BackupChoice& a, const BackupChoice& b) { return a.end_time < b.end_time; });
  if (!src.instance) {
    if (!newest_retained)
      return Status(404, "DBInstanceAutomatedBackupNotFound",
                    "No automated backup found for DbiResourceId " + src.dbi_resource_id + ".");
    src.about = *newest_retained;
    src.db_instance_identifier = Str(*newest_retained, "DBInstanceIdentifier");
    src.retention = 1;
    // The instance's LatestRestorableTime when it was deleted (DeleteDBInstance records it on what it retains).
    for (const auto& doc : ctx.store->List(kind::kDbSnapshot)) {
      if (Str(*doc, "DbiResourceId") == src.dbi_resource_id)
        src.latest_restorable_time = std::max(src.latest_restorable_time, doc->value("LatestRestorableTime", int64_t{0}));
    }
    Json about = Json::parse(ReadFile(BackupStoreDir(ctx, src.dbi_resource_id) + "/instance.json"), nullptr, false);
    if (!about.is_discarded()) src.retention = std::max<int64_t>(1, about.value("BackupRetentionPeriod", int64_t{1}));
  }
  if (!src.backups.empty()) src.earliest_restorable_time = src.backups.front().end_time;
  return src;
}

Result<Json> PlanPointInTime(const RestoreSource& source, RestoreTarget target, bool use_latest) {
  if (source.instance && source.retention <= 0)
    return Status(400, "PointInTimeRestoreNotEnabled",
                  "Point-in-time restore is not enabled for DB instance " + source.db_instance_identifier +
                      ": its BackupRetentionPeriod is 0.");
  if (use_latest) {
    if (source.latest_restorable_time == 0)
      return InvalidRestore("DB instance " + source.db_instance_identifier + " has no latest restorable time yet.");
    target.time_ms = source.latest_restorable_time;
  }
  if (source.backups.empty())
    return InvalidRestore("DB instance " + source.db_instance_identifier + " has no automated backup to restore from yet.");
  if (target.time_ms) {
    if (*target.time_ms < source.earliest_restorable_time)
      return InvalidRestore("The restore time " + IsoTimeMillis(*target.time_ms) +
                            " is before the earliest restorable time " +
                            IsoTimeMillis(source.earliest_restorable_time) + ".");
    if (source.latest_restorable_time == 0 || *target.time_ms > source.latest_restorable_time)
      return InvalidRestore("The restore time " + IsoTimeMillis(*target.time_ms) +
                            " is after the latest restorable time " +
                            (source.latest_restorable_time ? IsoTimeMillis(source.latest_restorable_time)
                                                           : std::string("(none yet)")) +
                            ".");
  }
  auto chosen = SelectBackup(source.backups, target);
  if (!chosen)
    return InvalidRestore(target.gtid.empty()
                              ? "No backup of " + source.db_instance_identifier + " ends before the restore time."
                              : "No backup of " + source.db_instance_identifier + " is at or before GTID " +
                                    target.gtid + ".");
  const BackupChoice& b = source.backups[*chosen];
  Json r = {{"Kind", "point-in-time"},
            {"State", restore_state::kPending},
            {"SourceDBInstanceIdentifier", source.db_instance_identifier},
            {"SourceDbiResourceId", source.dbi_resource_id},
            {"SourceSnapshot", b.snapshot_id},
            {"BackupDir", b.dir},
            {"BackupGtid", b.gtid},
            {"BackupStart", b.start_time},
            {"StoreDir", fs::path(b.dir).parent_path().parent_path().string()}};
  if (target.time_ms) r["TargetTime"] = *target.time_ms;
  if (!target.gtid.empty()) r["TargetGtid"] = target.gtid;
  return r;
}

Result<Json> PlanFromSnapshot(const Json& snapshot) {
  const std::string id = Str(snapshot, "DBSnapshotIdentifier");
  if (Str(snapshot, "Status") != "available")
    return Status(400, "InvalidDBSnapshotState", "DBSnapshot " + id + " is not available.");
  const std::string dir = Str(snapshot, "StorePath");
  std::error_code ec;
  if (dir.empty() || !fs::exists(dir + "/manifest.json", ec))
    return Status(400, "InvalidDBSnapshotState", "DBSnapshot " + id + " has no backup in the backup store.");
  return Json{{"Kind", "snapshot"},
              {"State", restore_state::kPending},
              {"SourceDBInstanceIdentifier", Str(snapshot, "DBInstanceIdentifier")},
              {"SourceDbiResourceId", Str(snapshot, "DbiResourceId")},
              {"SourceSnapshot", id},
              {"BackupDir", dir},
              {"BackupGtid", Str(snapshot, "Gtid")},
              {"BackupStart", snapshot.value("SnapshotCreateTime", int64_t{0})}};
}

bool RestoreHoldsInstance(const Json& inst) {
  auto it = inst.find("Restore");
  if (it == inst.end() || !it->is_object()) return false;
  const std::string state = Str(*it, "State");
  if (state == restore_state::kPending || state == restore_state::kRunning) return true;
  if (state == restore_state::kFailed) return !inst.value("Spec", Json::object()).value("Deleting", false);
  return false;
}

// ---- the controller -------------------------------------------------------------------------------------------

DbRestoreController::~DbRestoreController() { jobs_.JoinAll(); }

std::vector<std::string> DbRestoreController::Keys() {
  std::vector<std::string> keys;
  for (const auto& doc : ctx_->store->List(kind::kDbInstance)) {
    if (doc->contains("Restore")) keys.push_back(Str(*doc, "DBInstanceIdentifier"));
  }
  return keys;
}

std::vector<Controller::Watch> DbRestoreController::Watches() const { return {{kind::kDbInstance, SameKey}}; }

ReconcileResult DbRestoreController::Reconcile(const std::string& id) {
  if (jobs_.Running(id)) return ReconcileResult::Done();  // the job's own commits run this again
  std::optional<Json> inst;
  {
    std::lock_guard lock(*ctx_->mu);
    auto doc = ctx_->store->Get(kind::kDbInstance, id);
    if (doc) inst = *doc;
  }
  if (!inst || !inst->contains("Restore")) return ReconcileResult::Done();
  const std::string state = Str((*inst)["Restore"], "State");
  if (state != restore_state::kPending && state != restore_state::kRunning) return ReconcileResult::Done();
  if ((*inst)["Spec"].value("Deleting", false)) {
    return CommitRestore(id, [](Json& doc, std::vector<StoreWrite>*) {
      doc["Restore"]["State"] = restore_state::kCancelled;
    });
  }
  // pending, or running when this process did not start it (the server restarted mid-restore): (re)start it.
  jobs_.Start(id, [this, id] {
    Status st = RunRestore(id);
    if (!st.ok()) {
      if (st.code() == "Cancelled") {
        (void)CommitRestore(id, [](Json& doc, std::vector<StoreWrite>*) {  // best effort: retried on the next pass
          doc["Restore"]["State"] = restore_state::kCancelled;
        });
      } else if (Status f = Fail(id, st); !f.ok()) {
        spdlog::warn("db_instance={} restore failure not recorded: {}", id, f.ToString());
      }
    }
  });
  return ReconcileResult::Done();
}

Status DbRestoreController::CommitRestore(const std::string& id,
                                          const std::function<void(Json&, std::vector<StoreWrite>*)>& f,
                                          std::vector<StoreWrite> writes) {
  std::lock_guard lock(*ctx_->mu);
  auto current = ctx_->store->Get(kind::kDbInstance, id);
  if (!current) return Status::Ok();
  Json doc = *current;
  f(doc, &writes);
  writes.push_back({kind::kDbInstance, id, doc});
  return ctx_->store->Commit(writes);
}

bool DbRestoreController::Cancelled(const std::string& id) {
  std::lock_guard lock(*ctx_->mu);
  auto current = ctx_->store->Get(kind::kDbInstance, id);
  return !current || (*current)["Spec"].value("Deleting", false);
}

Status DbRestoreController::Fail(const std::string& id, const Status& why) {
  spdlog::warn("db_instance={} restore failed: {}", id, why.ToString());
  // The server it was building stops (its folder goes when the instance is deleted).
  std::optional<Json> server;
  {
    std::lock_guard lock(*ctx_->mu);
    if (auto doc = ctx_->store->Get(kind::kDbServer, id + "/s1")) server = *doc;
  }
  if (server && RecordedProcess(*server).pid > 0) {
    ctx_->launcher->SignalGroup(RecordedProcess(*server), true);
    for (int i = 0; i < 500 && ctx_->launcher->GroupAlive(RecordedProcess(*server)); ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    Supervisor::Clear(*server);
  }
  std::vector<StoreWrite> writes;
  if (server) writes.push_back({kind::kDbServer, id + "/s1", *server});
  return CommitRestore(
      id,
      [&](Json& doc, std::vector<StoreWrite>* w) {
        doc["Restore"]["State"] = restore_state::kFailed;
        doc["Restore"]["Error"] = why.message();
        doc["Restore"]["FailedAt"] = ctx_->clock->NowMillis();
        doc["DBInstanceStatus"] = kIncompatibleRestore;
        AddEvent(*ctx_, "db-instance", id, "0031",
                 "The DB instance could not be restored from " + Str(doc["Restore"], "SourceSnapshot") + ": " +
                     why.message(),
                 {"failure"}, w);
      },
      std::move(writes));
}

Status DbRestoreController::RunRestore(const std::string& id) {
  const auto started = std::chrono::steady_clock::now();
  auto ms_since = [&] {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started).count();
  };
  // 1. Claim it (running) and plan the new primary: a db_server document s1 with its own address.
  Json inst, secret, server;
  {
    std::lock_guard lock(*ctx_->mu);
    auto current = ctx_->store->Get(kind::kDbInstance, id);
    if (!current) return Status::Ok();
    inst = *current;
    secret = ctx_->store->Get(kind::kDbInstanceSecret, id).value_or(Json::object());
    std::vector<StoreWrite> writes;
    auto existing = ctx_->store->Get(kind::kDbServer, id + "/s1");
    if (existing) {
      server = *existing;
    } else {
      const std::string az = Str(inst, "AvailabilityZone").empty() ? ctx_->catalog->availability_zones().front()
                                                                   : Str(inst, "AvailabilityZone");
      AP_ASSIGN_OR_RETURN(auto address, AllocatePrivateAddress(*ctx_, az, &writes));
      server = {{"DBInstanceIdentifier", id}, {"Name", "s1"},       {"AvailabilityZone", az},
                {"Address", address},         {"ServerId", 1},      {"Role", "primary"},
                {"Source", "restore"},        {"Ready", false},     {"LaunchToken", NewLaunchToken()}};
      writes.push_back({kind::kDbServer, id + "/s1", server});
    }
    inst["Restore"]["State"] = restore_state::kRunning;
    inst["Restore"]["StartedAt"] = ctx_->clock->NowMillis();
    inst["Status"]["Primary"] = "s1";
    inst["Status"]["Standby"] = "";
    inst["Status"]["NextServer"] = 2;
    inst["AvailabilityZone"] = Str(server, "AvailabilityZone");
    writes.push_back({kind::kDbInstance, id, inst});
    AP_RETURN_IF_ERROR(ctx_->store->Commit(writes));
  }
  const Json restore = inst["Restore"];
  const std::string backup_dir = Str(restore, "BackupDir");
  spdlog::info("db_instance={} restore from {} ({}) starting", id, Str(restore, "SourceSnapshot"), backup_dir);

  // Whatever a half-finished earlier attempt left running goes first.
  if (RecordedProcess(server).pid > 0) {
    ctx_->launcher->SignalGroup(RecordedProcess(server), true);
    for (int i = 0; i < 500 && ctx_->launcher->GroupAlive(RecordedProcess(server)); ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    Supervisor::Clear(server);
  }

  // 2. The backup must be intact: its checksum is recomputed before anything is built from it.
  AP_ASSIGN_OR_RETURN(auto manifest, VerifyBackup(backup_dir));
  if (Cancelled(id)) return CancelledStatus();
  const int64_t verify_ms = ms_since();

  // 3. The data dir: a copy of the prepared backup (the store keeps its own).
  ServerConfig cfg;
  cfg.dir = DbInstanceDir(*ctx_, id) + "/s1";
  cfg.address = Str(server, "Address");
  cfg.port = inst.value("Port", 3306);
  cfg.server_id = 1;
  cfg.buffer_pool_mb = BufferPoolMb(Str(inst, "DBInstanceClass"));
  std::error_code ec;
  fs::remove_all(cfg.dir, ec);
  AP_RETURN_IF_ERROR(WriteServerConfig(cfg));
  const std::string log = cfg.dir + "/restore.log";
  AP_RETURN_IF_ERROR(RunCommand({"mariadb-backup", "--no-defaults", "--copy-back", "--target-dir=" + backup_dir + "/data",
                                 "--datadir=" + DataDir(cfg)},
                                log, 30LL * 60 * 1000));
  // mariadb-backup's own files are not the server's.
  for (const char* name : {"xtrabackup_binlog_info", "xtrabackup_checkpoints", "xtrabackup_info",
                           "xtrabackup_binlog_pos_innodb", "backup-my.cnf", "xtrabackup_tablespaces"})
    fs::remove(DataDir(cfg) + "/" + name, ec);
  AP_RETURN_IF_ERROR(ChownTree(cfg.dir, cfg.uid));
  const int64_t copy_ms = ms_since();

  // 4. The server alone: no network, no grant tables until its accounts are this instance's; fast commits (a clean
  // shutdown makes everything durable before it serves anyone).
  LaunchSpec temp = ServerLaunchSpec(cfg);
  temp.argv.insert(temp.argv.end(), {"--skip-networking", "--skip-grant-tables", "--skip-slave-start", "--read-only=0",
                                     "--sync-binlog=0", "--innodb-flush-log-at-trx-commit=2"});
  temp.log_path = cfg.dir + "/restore-server.out";
  AP_RETURN_IF_ERROR(supervisor_.Launch(server, temp));
  {
    std::lock_guard lock(*ctx_->mu);
    AP_RETURN_IF_ERROR(ctx_->store->Commit({{kind::kDbServer, id + "/s1", server}}));
  }
  std::unique_ptr<Connection> conn;
  {
    Connection::Target t;
    t.socket = SocketPath(cfg);
    t.user = "root";
    t.timeout_s = 5;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
    while (!conn && std::chrono::steady_clock::now() < deadline) {
      if (!supervisor_.Running(server))
        return Status::Internal("the restored server did not start (see " + cfg.dir + "/error.log)");
      auto c = Connection::Open(t);
      if (c.ok()) conn = std::move(*c);
      else std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    if (!conn) return Status::Internal("the restored server did not start (see " + cfg.dir + "/error.log)");
  }
  const int64_t up_ms = ms_since();
  const AdminAccounts accounts{Str(secret, "AdminPassword"), Str(secret, "ReplPassword")};
  AP_RETURN_IF_ERROR(conn->Exec("SET SESSION sql_log_bin=0"));
  AP_RETURN_IF_ERROR(conn->Exec("FLUSH PRIVILEGES"));
  AP_RETURN_IF_ERROR(conn->Exec("CREATE OR REPLACE USER '" + std::string(kAdminUser) + "'@'%' IDENTIFIED BY " +
                                conn->Quote(accounts.admin_password)));
  AP_RETURN_IF_ERROR(conn->Exec("GRANT ALL PRIVILEGES ON *.* TO '" + std::string(kAdminUser) + "'@'%' WITH GRANT OPTION"));
  AP_RETURN_IF_ERROR(conn->Exec("CREATE OR REPLACE USER '" + std::string(kReplUser) + "'@'%' IDENTIFIED BY " +
                                conn->Quote(accounts.repl_password)));
  AP_RETURN_IF_ERROR(conn->Exec("GRANT REPLICATION SLAVE, REPLICATION CLIENT, BINLOG MONITOR ON *.* TO '" +
                                std::string(kReplUser) + "'@'%'"));
  // A backup taken from a standby carries its replication settings: this server follows no one.
  AP_RETURN_IF_ERROR(conn->Exec("STOP ALL SLAVES"));
  AP_RETURN_IF_ERROR(conn->Exec("RESET SLAVE ALL"));
  AP_RETURN_IF_ERROR(conn->Exec("SET GLOBAL gtid_slave_pos=''"));

  // The e2e tests' hook (tests/e2e/test_rds_restore.py): the restore stalls here, its server running, so the test
  // can delete the instance or kill -9 the region server mid-restore. Only ever set by a test.
  if (const char* stall = std::getenv("AUTOPIPE_TEST_RESTORE_STALL_S")) {
    spdlog::warn("db_instance={} restore stalled for {} s (AUTOPIPE_TEST_RESTORE_STALL_S)", id, stall);
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(std::atoi(stall));
    while (std::chrono::steady_clock::now() < until && !Cancelled(id))
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }

  // 5. Replay the archived binary log up to the target.
  RestoreTarget target;
  if (restore.contains("TargetTime")) target.time_ms = restore["TargetTime"].get<int64_t>();
  target.gtid = Str(restore, "TargetGtid");
  int64_t replayed_files = 0, replayed_bytes = 0, waited_ms = 0;
  const int64_t setup_ms = ms_since() - up_ms;
  const bool replay = Str(restore, "Kind") == "point-in-time" && (target.time_ms || !target.gtid.empty());
  if (replay) {
    if (target.time_ms) {
      // Everything of the target's second must be archived: a live source's archive is waited for (bounded).
      const int64_t need = (*target.time_ms / 1000 + 1) * 1000;
      const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(kArchiveWaitMs);
      while (std::chrono::steady_clock::now() < deadline) {
        int64_t latest = 0;
        bool live = false;
        {
          std::lock_guard lock(*ctx_->mu);
          for (const auto& doc : ctx_->store->List(kind::kDbInstance)) {
            if (Str(*doc, "DbiResourceId") != Str(restore, "SourceDbiResourceId")) continue;
            live = !(*doc)["Spec"].value("Deleting", false) && doc->value("BackupRetentionPeriod", int64_t{0}) > 0;
            latest = doc->value("LatestRestorableTime", int64_t{0});
          }
        }
        if (!live || latest >= need) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
      waited_ms = ms_since() - up_ms - setup_ms;
    }
    const std::string options = cfg.dir + "/restore-client.cnf";
    {
      std::ostringstream f;
      f << "[client]\nuser=" << kAdminUser << "\npassword=" << accounts.admin_password
        << "\nsocket=" << SocketPath(cfg) << "\nprotocol=SOCKET\n";
      AP_RETURN_IF_ERROR(lb::WriteFileAtomically(options, f.str(), 0600));
    }
    const std::vector<std::string> env = {"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "TZ=UTC", "LANG=C.UTF-8",
                                          "HOME=" + cfg.dir};
    const std::vector<std::string> client = {kClientTool, "--defaults-file=" + options, "--binary-mode",
                                              "--max-allowed-packet=1G"};
    auto steps = PlanReplay(ReadArchive(Str(restore, "StoreDir")), manifest.start_time);
    for (const auto& step : steps) {
      if (Cancelled(id)) return CancelledStatus();
      // What is applied: the backup's position, then what the replay wrote to this server's binary log (the
      // replayed events keep their GTIDs).
      AP_ASSIGN_OR_RETURN(auto logged, conn->Scalar("SELECT @@gtid_binlog_pos"));
      const std::string applied = MergeGtidPositions(manifest.gtid, logged.value_or(""));
      if (!target.gtid.empty() && GtidReached(applied, target.gtid)) break;
      bool binlog_ok = true;
      AP_RETURN_IF_ERROR(
          RunPipeline(ReplayArgv(step.files, applied, target), client, env, log, kReplayTimeoutMs, &binlog_ok));
      if (!binlog_ok)
        spdlog::info("db_instance={} restore: mariadb-binlog stopped early in {} (a file cut short); GTID order "
                     "makes the next segment carry on",
                     id, step.server);
      replayed_files += static_cast<int64_t>(step.files.size());
      for (const auto& f : step.files) replayed_bytes += static_cast<int64_t>(fs::file_size(f, ec));
    }
    AP_ASSIGN_OR_RETURN(auto logged, conn->Scalar("SELECT @@gtid_binlog_pos"));
    const std::string applied = MergeGtidPositions(manifest.gtid, logged.value_or(""));
    if (!target.gtid.empty() && !GtidReached(applied, target.gtid))
      return Status::Internal("GTID " + target.gtid + " is not in the archived binary log of " +
                              Str(restore, "SourceDBInstanceIdentifier") + " (the restore reached " + applied + ")");
    spdlog::info("db_instance={} restore replayed {} binlog files ({} bytes) to GTID {}", id, replayed_files,
                 replayed_bytes, applied);
  }
  {
    // Nothing replayed: the binary log continues the source's GTID history from the backup's position (setting
    // the state costs about a second, so only then).
    AP_ASSIGN_OR_RETURN(auto logged, conn->Scalar("SELECT @@gtid_binlog_pos"));
    if (logged.value_or("").empty() && !manifest.gtid.empty()) {
      AP_RETURN_IF_ERROR(conn->Exec("RESET MASTER"));
      AP_RETURN_IF_ERROR(conn->Exec("SET GLOBAL gtid_binlog_state=" + conn->Quote(manifest.gtid)));
    }
  }
  const int64_t replay_ms = ms_since();

  // 6. A clean shutdown, then the server as the instance runs it (read-only until the DB instance controller makes
  // it the writable primary).
  conn.reset();
  ctx_->launcher->SignalGroup(RecordedProcess(server), false);
  for (int i = 0; i < 12000 && ctx_->launcher->GroupAlive(RecordedProcess(server)); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  if (ctx_->launcher->GroupAlive(RecordedProcess(server)))
    return Status::Internal("the restored server did not shut down within 120 s");
  Supervisor::Clear(server);
  if (Cancelled(id)) return CancelledStatus();
  AP_RETURN_IF_ERROR(supervisor_.Launch(server, ServerLaunchSpec(cfg)));
  server["Ready"] = true;
  {
    std::lock_guard lock(*ctx_->mu);
    AP_RETURN_IF_ERROR(ctx_->store->Commit({{kind::kDbServer, id + "/s1", server}}));
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (!ProbeGreeting(cfg.address, cfg.port, 200)) {
    if (std::chrono::steady_clock::now() > deadline)
      return Status::Internal("the restored server did not start (see " + cfg.dir + "/error.log)");
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  spdlog::info("db_instance={} restored in {} ms (verify {} ms, copy {} ms, server up {} ms, setup {} ms, archive "
               "wait {} ms, replay {} ms of {} bytes, restart {} ms)",
               id, ms_since(), verify_ms, copy_ms - verify_ms, up_ms - copy_ms, setup_ms, waited_ms,
               replay_ms - up_ms - setup_ms - waited_ms, replayed_bytes, ms_since() - replay_ms);
  return CommitRestore(id, [&](Json& doc, std::vector<StoreWrite>* w) {
    doc["Restore"]["State"] = restore_state::kDone;
    doc["Restore"]["DoneAt"] = ctx_->clock->NowMillis();
    doc["Restore"]["ReplayedFiles"] = replayed_files;
    doc["Restore"]["ReplayedBytes"] = replayed_bytes;
    doc["Restore"]["DurationMs"] = ms_since();
    if (Str(restore, "Kind") == "snapshot") {
      AddEvent(*ctx_, "db-instance", id, "0043", "Restored from snapshot " + Str(restore, "SourceSnapshot"),
               {"restoration"}, w);
    } else {
      AddEvent(*ctx_, "db-instance", id, "0019",
               "Restored from DB instance " + Str(restore, "SourceDBInstanceIdentifier") + " to " + id,
               {"restoration"}, w);
    }
  });
}

}  // namespace autopipe::rds

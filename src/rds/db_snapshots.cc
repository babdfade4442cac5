#include "rds/db_snapshots.h"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <set>

#include "common/log.h"
#include "lb/node_files.h"
#include "rds/backup_progress.h"
#include "rds/db_backups.h"
#include "rds/db_controller.h"
#include "rds/db_instances.h"
#include "rds/mariadb.h"

namespace fs = std::filesystem;

namespace autopipe::rds {
namespace {

// How long a snapshot waits for a server of its instance to be ready to back up (a failover, a reboot).
constexpr int64_t kSourceWaitMs = 120'000;
// Between two tries of a snapshot that failed.
constexpr int64_t kRetryAfterMs = 2'000;

std::string Str(const Json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : "";
}

std::string Lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

Status SnapshotNotFound(const std::string& id) {
  return Status(404, "DBSnapshotNotFound", "DBSnapshot " + id + " not found.");
}
Status SnapshotExists(const std::string& id) {
  return Status(400, "DBSnapshotAlreadyExists", "Cannot create the snapshot because a snapshot with the identifier " +
                                                    id + " already exists.");
}
Status InvalidSnapshotState(const std::string& message) { return Status(400, "InvalidDBSnapshotState", message); }
Status InvalidInstanceState(const std::string& message) { return Status(400, "InvalidDBInstanceState", message); }

Result<std::string> RequiredSnapshotId(const Params& p, const std::string& parameter) {
  auto id = p.Str(parameter);
  if (!id || id->empty()) {
    return Status::InvalidParameterValue("The parameter " + parameter + " must be provided and must not be blank.");
  }
  AP_RETURN_IF_ERROR(CheckSnapshotIdentifier(parameter, *id));
  return Lower(*id);
}

// A snapshot document exists under this id (listed or still being deleted).
bool Exists(const RegionContext& ctx, const std::string& id) { return ctx.store->Get(kind::kDbSnapshot, id).has_value(); }

// The new document of a snapshot of `db` (creating).
Json NewSnapshotDoc(const RegionContext& ctx, const Json& db, const std::string& sid, const Json& tags) {
  const int64_t now = ctx.clock->NowMillis();
  const std::string store = BackupStoreDir(ctx, Str(db, "DbiResourceId"));
  return Json{{"DBSnapshotIdentifier", sid},
              {"DBInstanceIdentifier", Str(db, "DBInstanceIdentifier")},
              {"DbiResourceId", Str(db, "DbiResourceId")},
              {"SnapshotType", kManual},
              {"Status", snapshot_status::kCreating},
              {"PercentProgress", 0},
              {"SnapshotCreateTime", now},
              {"OriginalSnapshotCreateTime", now},
              {"InstanceCreateTime", db.value("InstanceCreateTime", int64_t{0})},
              {"Engine", Str(db, "Engine")},
              {"EngineVersion", Str(db, "EngineVersion")},
              {"AllocatedStorage", db.value("AllocatedStorage", int64_t{20})},
              {"StorageType", Str(db, "StorageType")},
              {"Port", db.value("Port", 3306)},
              {"AvailabilityZone", Str(db, "AvailabilityZone")},
              {"MasterUsername", Str(db, "MasterUsername")},
              {"DBInstanceClass", Str(db, "DBInstanceClass")},
              {"TagList", tags},
              {"StorePath", store + "/backups/" + BackupFolderName(sid)}};
}

// Records a snapshot of `db` (the document, events 0040, the instance backing-up) into writes.
void RecordSnapshotOf(const RegionContext& ctx, Json& db, Json snap, std::vector<StoreWrite>* writes) {
  const std::string sid = snap["DBSnapshotIdentifier"];
  const std::string id = db["DBInstanceIdentifier"];
  db["ManualSnapshot"] = sid;
  if (!db["Spec"].value("Deleting", false)) db["DBInstanceStatus"] = db_status::kBackingUp;
  writes->push_back({kind::kDbSnapshot, sid, std::move(snap), std::nullopt});
  AddEvent(ctx, "db-snapshot", sid, "0040", "Creating manual snapshot", {"creation"}, writes);
  AddEvent(ctx, "db-instance", id, "0040", "Creating manual snapshot", {"creation"}, writes);
}

// The instance's tags when it copies them to its snapshots and none were given.
Json TagsFor(const Json& db, const Json& given, bool given_any) {
  if (given_any) return given;
  if (db.value("CopyTagsToSnapshot", false)) return db.value("Tags", Json::array());
  return Json::array();
}

}  // namespace

// ---- rules ----------------------------------------------------------------------------------------------------

bool ValidSnapshotIdentifier(const std::string& s) {
  if (s.empty() || s.size() > 255 || !std::isalpha(static_cast<unsigned char>(s.front())) || s.back() == '-' ||
      s.find("--") != std::string::npos) {
    return false;
  }
  return std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isalnum(c) || c == '-'; });
}

Status CheckSnapshotIdentifier(const std::string& parameter, const std::string& id) {
  if (ValidSnapshotIdentifier(id)) return Status::Ok();
  return Status::InvalidParameterValue(
      "The parameter " + parameter +
      " is not a valid identifier. Identifiers must begin with a letter; must contain only ASCII letters, digits, "
      "and hyphens; and must not end with a hyphen or contain two consecutive hyphens.");
}

Status CheckManualSnapshotQuota(size_t existing) {
  if (existing < kMaxManualSnapshots) return Status::Ok();
  return Status(400, "SnapshotQuotaExceeded",
                "Cannot create more than " + std::to_string(kMaxManualSnapshots) + " manual snapshots.");
}

Status CheckCanSnapshot(const Json& db, bool final_snapshot) {
  const std::string id = Str(db, "DBInstanceIdentifier");
  const std::string status = Str(db, "DBInstanceStatus");
  const Json spec = db.value("Spec", Json::object());
  if (spec.value("Deleting", false) || status == db_status::kDeleting)
    return InvalidInstanceState("DB instance " + id + " is being deleted.");
  if (!final_snapshot) {
    if (status != db_status::kAvailable) return InvalidInstanceState("DB instance " + id + " is not in available state.");
    return Status::Ok();
  }
  static const std::set<std::string> kSnapshottable = {db_status::kAvailable, db_status::kBackingUp,
                                                       db_status::kModifying, db_status::kRebooting};
  if (!spec.value("Running", true) || !kSnapshottable.count(status)) {
    return InvalidInstanceState("Cannot take a final snapshot of DB instance " + id + " in state " + status +
                                "; delete it with SkipFinalSnapshot instead.");
  }
  return Status::Ok();
}

bool Listed(const Json& snap) { return !snap.value("Deleting", false); }

size_t CountManualSnapshots(const RegionContext& ctx) {
  size_t n = 0;
  for (const auto& doc : ctx.store->List(kind::kDbSnapshot)) {
    if (Str(*doc, "SnapshotType") == kManual && Listed(*doc)) ++n;
  }
  return n;
}

std::optional<std::string> SnapshotKey(const RegionContext& ctx, const std::string& given) {
  const std::string prefix = ctx.Arn("rds", "snapshot:");
  std::string id = given;
  if (id.compare(0, prefix.size(), prefix) == 0) id = id.substr(prefix.size());
  else if (id.compare(0, 8, "arn:aws:") == 0) return std::nullopt;
  // Automated ids keep their case ("rds:<id>-..." is lower-case anyway); manual ones are stored lower-cased.
  return Lower(id);
}

// ---- the API's side ---------------------------------------------------------------------------------------------

Result<Json> CreateDbSnapshot(RegionContext& ctx, const Params& p, const Json& tags) {
  AP_ASSIGN_OR_RETURN(auto sid, RequiredSnapshotId(p, "DBSnapshotIdentifier"));
  auto instance = p.Str("DBInstanceIdentifier");
  if (!instance || instance->empty()) {
    return Status::InvalidParameterValue("The parameter DBInstanceIdentifier must be provided and must not be blank.");
  }
  const std::string id = Lower(*instance);
  auto db = ctx.store->Get(kind::kDbInstance, id);
  if (!db) return Status(404, "DBInstanceNotFound", "DBInstance " + id + " not found.");
  if (Exists(ctx, sid)) return SnapshotExists(sid);
  AP_RETURN_IF_ERROR(CheckManualSnapshotQuota(CountManualSnapshots(ctx)));
  AP_RETURN_IF_ERROR(CheckCanSnapshot(*db, false));
  Json snap = NewSnapshotDoc(ctx, *db, sid, TagsFor(*db, tags, p.Has("Tags") || !tags.empty()));
  std::vector<StoreWrite> writes;
  Json inst = *db;
  RecordSnapshotOf(ctx, inst, snap, &writes);
  writes.push_back({kind::kDbInstance, id, std::move(inst), std::nullopt});
  AP_RETURN_IF_ERROR(ctx.store->Commit(writes));
  return snap;
}

Status AddFinalSnapshot(RegionContext& ctx, Json& db, const std::string& given, std::vector<StoreWrite>* writes) {
  AP_RETURN_IF_ERROR(CheckSnapshotIdentifier("FinalDBSnapshotIdentifier", given));
  const std::string sid = Lower(given);
  if (Exists(ctx, sid)) return SnapshotExists(sid);
  AP_RETURN_IF_ERROR(CheckManualSnapshotQuota(CountManualSnapshots(ctx)));
  AP_RETURN_IF_ERROR(CheckCanSnapshot(db, true));
  Json snap = NewSnapshotDoc(ctx, db, sid, TagsFor(db, Json::array(), false));
  snap["Final"] = true;
  RecordSnapshotOf(ctx, db, std::move(snap), writes);
  return Status::Ok();
}

Result<Json> CopyDbSnapshot(RegionContext& ctx, const Params& p, const Json& tags) {
  auto source_in = p.Str("SourceDBSnapshotIdentifier");
  if (!source_in || source_in->empty()) {
    return Status::InvalidParameterValue(
        "The parameter SourceDBSnapshotIdentifier must be provided and must not be blank.");
  }
  AP_ASSIGN_OR_RETURN(auto target, RequiredSnapshotId(p, "TargetDBSnapshotIdentifier"));
  AP_ASSIGN_OR_RETURN(auto copy_tags, p.Bool("CopyTags"));
  if (auto region = p.Str("SourceRegion"); region && !region->empty() && *region != ctx.catalog->region()) {
    return Status::InvalidParameterValue("Copies from another region are not supported: " + *region);
  }
  if (auto target_kind = p.Str("SnapshotTarget"); target_kind && !target_kind->empty() && *target_kind != "region") {
    return Status::InvalidParameterValue("SnapshotTarget " + *target_kind + " is not supported here: only region.");
  }
  auto source_id = SnapshotKey(ctx, *source_in);
  if (!source_id) {
    return Status::InvalidParameterValue("Copies from another region are not supported: " + *source_in);
  }
  auto source = ctx.store->Get(kind::kDbSnapshot, *source_id);
  if (!source || !Listed(*source)) return SnapshotNotFound(*source_in);
  if (Str(*source, "Status") != snapshot_status::kAvailable) {
    return InvalidSnapshotState("DB snapshot " + *source_id + " is not in available state.");
  }
  if (Exists(ctx, target)) return SnapshotExists(target);
  AP_RETURN_IF_ERROR(CheckManualSnapshotQuota(CountManualSnapshots(ctx)));

  Json snap = *source;
  for (const char* key : {"Retained", "Gtid", "BackupEndTime", "Final", "Attempts", "LastError", "LastErrorAt",
                          "Deleting", "CopyFrom", "SourceStorePath"})
    snap.erase(key);
  const int64_t now = ctx.clock->NowMillis();
  snap["DBSnapshotIdentifier"] = target;
  snap["SnapshotType"] = kManual;
  snap["Status"] = snapshot_status::kCreating;
  snap["PercentProgress"] = 0;
  snap["SnapshotCreateTime"] = now;
  snap["OriginalSnapshotCreateTime"] =
      source->value("OriginalSnapshotCreateTime", source->value("SnapshotCreateTime", now));
  snap["SourceDBSnapshotIdentifier"] = ctx.Arn("rds", "snapshot:" + *source_id);
  snap["CopyFrom"] = *source_id;
  snap["SourceStorePath"] = Str(*source, "StorePath");
  snap["StorePath"] = BackupStoreDir(ctx, Str(*source, "DbiResourceId")) + "/backups/" + BackupFolderName(target);
  Json list = copy_tags.value_or(false) ? source->value("TagList", Json::array()) : Json::array();
  for (const auto& t : tags) {
    auto same = std::find_if(list.begin(), list.end(), [&](const Json& e) { return e["Key"] == t["Key"]; });
    if (same != list.end()) (*same)["Value"] = t["Value"];
    else list.push_back(t);
  }
  snap["TagList"] = std::move(list);
  std::vector<StoreWrite> writes = {{kind::kDbSnapshot, target, snap, std::nullopt}};
  AddEvent(ctx, "db-snapshot", target, "0060", "Started copy of snapshot " + *source_id + " from region " +
               ctx.catalog->region(), {"notification"}, &writes);
  AP_RETURN_IF_ERROR(ctx.store->Commit(writes));
  return snap;
}

Result<Json> DeleteDbSnapshot(RegionContext& ctx, const Params& p) {
  auto given = p.Str("DBSnapshotIdentifier");
  if (!given || given->empty()) {
    return Status::InvalidParameterValue("The parameter DBSnapshotIdentifier must be provided and must not be blank.");
  }
  auto sid = SnapshotKey(ctx, *given);
  if (!sid) return SnapshotNotFound(*given);
  auto snap = ctx.store->Get(kind::kDbSnapshot, *sid);
  if (!snap || !Listed(*snap)) return SnapshotNotFound(*given);
  if (Str(*snap, "SnapshotType") != kManual) {
    return InvalidSnapshotState("Only manual snapshots may be deleted; automated snapshot " + *sid +
                                " is deleted by its instance's retention period.");
  }
  if (Str(*snap, "Status") == snapshot_status::kCreating) {
    return InvalidSnapshotState("DB snapshot " + *sid + " is still being created.");
  }
  for (const auto& doc : ctx.store->List(kind::kDbSnapshot)) {
    if (Str(*doc, "CopyFrom") == *sid && Str(*doc, "Status") == snapshot_status::kCreating)
      return InvalidSnapshotState("DB snapshot " + *sid + " is being copied to " + Str(*doc, "DBSnapshotIdentifier") +
                                  ".");
  }
  Json doc = *snap;
  doc["Deleting"] = true;
  AP_RETURN_IF_ERROR(ctx.store->Commit({{kind::kDbSnapshot, *sid, doc, std::nullopt}}));
  doc["Status"] = snapshot_status::kDeleted;
  return doc;
}

namespace {
constexpr size_t kMaxTagsPerSnapshot = 50;

// The listed snapshot a snapshot ARN of this region names; nullopt when `arn` is no such ARN.
std::optional<Result<Json>> SnapshotByArn(const RegionContext& ctx, const std::string& arn) {
  const std::string prefix = ctx.Arn("rds", "snapshot:");
  if (arn.compare(0, prefix.size(), prefix) != 0 || arn.size() == prefix.size()) return std::nullopt;
  auto sid = SnapshotKey(ctx, arn);
  auto snap = sid ? ctx.store->Get(kind::kDbSnapshot, *sid) : std::nullopt;
  if (!snap || !Listed(*snap)) return Result<Json>(SnapshotNotFound(arn.substr(prefix.size())));
  return Result<Json>(std::move(*snap));
}
}  // namespace

std::optional<Result<Json>> AddSnapshotTags(RegionContext& ctx, const std::string& arn, const Json& tags) {
  auto found = SnapshotByArn(ctx, arn);
  if (!found || !found->ok()) return found;
  Json snap = std::move(**found);
  Json list = snap.value("TagList", Json::array());
  for (const auto& t : tags) {
    auto same = std::find_if(list.begin(), list.end(), [&](const Json& e) { return e["Key"] == t["Key"]; });
    if (same != list.end()) (*same)["Value"] = t["Value"];
    else list.push_back(t);
  }
  if (list.size() > kMaxTagsPerSnapshot) {
    return Result<Json>(Status(400, "TagQuotaPerResourceExceeded",
                               "A resource can have at most 50 tags; this request would give it " +
                                   std::to_string(list.size()) + "."));
  }
  snap["TagList"] = std::move(list);
  const std::string sid = snap["DBSnapshotIdentifier"];
  if (Status st = ctx.store->Commit({{kind::kDbSnapshot, sid, snap, std::nullopt}}); !st.ok()) return Result<Json>(st);
  return Result<Json>(Json());
}

std::optional<Result<Json>> ListSnapshotTags(const RegionContext& ctx, const std::string& arn) {
  auto found = SnapshotByArn(ctx, arn);
  if (!found || !found->ok()) return found;
  return Result<Json>(Json{{"TagList", (**found).value("TagList", Json::array())}});
}

std::optional<Result<Json>> RemoveSnapshotTags(RegionContext& ctx, const std::string& arn,
                                               const std::vector<std::string>& keys) {
  auto found = SnapshotByArn(ctx, arn);
  if (!found || !found->ok()) return found;
  Json snap = std::move(**found);
  Json kept = Json::array();
  for (const auto& t : snap.value("TagList", Json::array())) {
    if (std::find(keys.begin(), keys.end(), t["Key"].get<std::string>()) == keys.end()) kept.push_back(t);
  }
  if (kept != snap.value("TagList", Json::array())) {
    snap["TagList"] = std::move(kept);
    const std::string sid = snap["DBSnapshotIdentifier"];
    if (Status st = ctx.store->Commit({{kind::kDbSnapshot, sid, snap, std::nullopt}}); !st.ok()) return Result<Json>(st);
  }
  return Result<Json>(Json());
}

bool SnapshotOfInstanceInProgress(const RegionContext& ctx, const std::string& id) {
  std::lock_guard lock(*ctx.mu);
  for (const auto& doc : ctx.store->List(kind::kDbSnapshot)) {
    if (Str(*doc, "DBInstanceIdentifier") == id && Str(*doc, "SnapshotType") == kManual &&
        Str(*doc, "Status") == snapshot_status::kCreating && !doc->contains("CopyFrom"))
      return true;
  }
  return false;
}

// ---- the controller --------------------------------------------------------------------------------------------

DbSnapshotController::~DbSnapshotController() { jobs_.JoinAll(); }

std::vector<std::string> DbSnapshotController::Keys() {
  std::vector<std::string> keys;
  std::lock_guard lock(*ctx_->mu);
  for (const auto& doc : ctx_->store->List(kind::kDbSnapshot)) {
    if (Str(*doc, "SnapshotType") == kManual &&
        (Str(*doc, "Status") == snapshot_status::kCreating || !Listed(*doc)))
      keys.push_back(Str(*doc, "DBSnapshotIdentifier"));
  }
  return keys;
}

std::vector<Controller::Watch> DbSnapshotController::Watches() const { return {{kind::kDbSnapshot, SameKey}}; }

ReconcileResult DbSnapshotController::Reconcile(const std::string& sid) {
  if (jobs_.Running(sid)) return ReconcileResult::After(std::chrono::milliseconds(250));
  std::optional<Json> snap;
  {
    std::lock_guard lock(*ctx_->mu);
    snap = ctx_->store->Get(kind::kDbSnapshot, sid);
  }
  if (!snap || Str(*snap, "SnapshotType") != kManual) return ReconcileResult::Done();
  if (!Listed(*snap)) return Delete(sid, *snap);
  if (Str(*snap, "Status") != snapshot_status::kCreating) return ReconcileResult::Done();
  const int64_t wait = snap->value("LastErrorAt", int64_t{0}) + kRetryAfterMs - ctx_->clock->NowMillis();
  if (wait > 0) return ReconcileResult::After(std::chrono::milliseconds(wait));

  jobs_.Start(sid, [this, sid, s = *snap] {
    Status st = s.contains("CopyFrom") ? Copy(sid, s) : Take(sid, s);
    if (!st.ok()) RecordFailure(sid, st);
  });
  return ReconcileResult::After(std::chrono::milliseconds(250));
}

void DbSnapshotController::SetProgress(const std::string& sid, int percent) {
  std::lock_guard lock(*ctx_->mu);
  auto doc = ctx_->store->Get(kind::kDbSnapshot, sid);
  if (!doc || Str(*doc, "Status") != snapshot_status::kCreating || doc->value("PercentProgress", 0) >= percent) return;
  (*doc)["PercentProgress"] = percent;
  // Best effort: a lost progress step is only a coarser display.
  (void)ctx_->store->Commit({{kind::kDbSnapshot, sid, *doc, std::nullopt}});
}

void DbSnapshotController::RecordFailure(const std::string& sid, const Status& st) {
  spdlog::warn("db_snapshot={} failed: {}", sid, st.ToString());
  std::lock_guard lock(*ctx_->mu);
  auto doc = ctx_->store->Get(kind::kDbSnapshot, sid);
  if (!doc) return;
  Json snap = *doc;
  const int attempts = snap.value("Attempts", 0) + 1;
  snap["Attempts"] = attempts;
  snap["LastError"] = st.message();
  snap["LastErrorAt"] = ctx_->clock->NowMillis();
  std::vector<StoreWrite> writes;
  if (attempts >= kMaxSnapshotAttempts) {
    snap["Status"] = snapshot_status::kFailed;
    const std::string id = Str(snap, "DBInstanceIdentifier");
    auto inst = ctx_->store->Get(kind::kDbInstance, id);
    if (inst && Str(*inst, "ManualSnapshot") == sid && !snap.contains("CopyFrom")) {
      Json db = *inst;
      db.erase("ManualSnapshot");
      if (Str(db, "DBInstanceStatus") == db_status::kBackingUp &&
          !db.value("Backup", Json::object()).value("Running", false))
        db["DBInstanceStatus"] = db_status::kAvailable;
      writes.push_back({kind::kDbInstance, id, db, std::nullopt});
    }
  }
  writes.push_back({kind::kDbSnapshot, sid, snap, std::nullopt});
  (void)ctx_->store->Commit(writes);  // best effort: a lost record means one more try
}

Status DbSnapshotController::Take(const std::string& sid, const Json& snap) {
  const std::string id = Str(snap, "DBInstanceIdentifier");
  // A server to back up: the standby when one runs (the primary does not pause), else the primary. During a
  // failover or a reboot there may be none for a while.
  std::optional<Json> inst, secret, source;
  const int64_t deadline = ctx_->clock->NowMillis() + kSourceWaitMs;
  while (true) {
    {
      std::lock_guard lock(*ctx_->mu);
      inst = ctx_->store->Get(kind::kDbInstance, id);
      secret = ctx_->store->Get(kind::kDbInstanceSecret, id);
      if (!inst || Str(*inst, "DbiResourceId") != Str(snap, "DbiResourceId"))
        return Status::Internal("DB instance " + id + " is gone");
      const Json st = inst->value("Status", Json::object());
      source.reset();
      for (const std::string& name : {Str(st, "Standby"), Str(st, "Primary")}) {
        if (name.empty() || source) continue;
        auto server = ctx_->store->Get(kind::kDbServer, id + "/" + name);
        if (server && server->value("Ready", false)) source = server;
      }
    }
    if (source && !supervisor_.Running(*source)) source.reset();
    if (source && secret) break;
    if (ctx_->clock->NowMillis() > deadline) return Status::Internal("no server of " + id + " is ready to back up");
    std::this_thread::sleep_for(std::chrono::milliseconds(250));  // polling the servers' state, bounded above
  }

  const std::string folder = Str(snap, "StorePath");
  const std::string store = fs::path(folder).parent_path().parent_path().string();
  std::error_code ec;
  fs::remove_all(folder, ec);
  fs::create_directories(folder, ec);
  if (ec) return Status::Internal("cannot create " + folder + ": " + ec.message());
  AdminAccounts accounts;
  accounts.admin_password = Str(*secret, "AdminPassword");
  accounts.repl_password = Str(*secret, "ReplPassword");
  ServerConfig cfg;
  cfg.dir = DbInstanceDir(*ctx_, id) + "/" + Str(*source, "Name");
  cfg.address = Str(*source, "Address");
  cfg.port = inst->value("Port", 3306);
  const std::string options = DbInstanceDir(*ctx_, id) + "/snapshot-" + BackupFolderName(sid) + ".cnf";
  AP_RETURN_IF_ERROR(WriteClientOptions(options, cfg.address, cfg.port, accounts));
  const std::string log = DbInstanceDir(*ctx_, id) + "/snapshot.log";
  const int64_t start = ctx_->clock->NowMillis();
  Result<std::string> gtid = Status::Internal("not run");
  {
    // Copying is most of the work: 0-85 % with the bytes written; --prepare then, 85-90 %.
    ProgressReporter progress(folder + "/data", ExpectedBackupBytes(DataDir(cfg)), 0, 85,
                              [this, sid](int pct) { SetProgress(sid, pct); });
    gtid = TakeBackup(cfg, options, folder + "/data", log);
  }
  fs::remove(options, ec);
  if (!gtid.ok()) return gtid.status();
  SetProgress(sid, 90);

  Manifest m;
  m.snapshot_id = sid;
  m.snapshot_type = kManual;
  m.db_instance_identifier = id;
  m.dbi_resource_id = Str(*inst, "DbiResourceId");
  m.engine = Str(*inst, "Engine");
  m.engine_version = Str(*inst, "EngineVersion");
  m.db_instance_class = Str(*inst, "DBInstanceClass");
  m.master_username = Str(*inst, "MasterUsername");
  m.availability_zone = Str(*inst, "AvailabilityZone");
  m.port = cfg.port;
  m.allocated_storage = inst->value("AllocatedStorage", int64_t{20});
  m.source_server = Str(*source, "Name");
  m.gtid = *gtid;
  {
    std::ifstream info(folder + "/data/xtrabackup_binlog_info");
    info >> m.binlog_file >> m.binlog_position;
  }
  m.start_time = start;
  AP_ASSIGN_OR_RETURN(auto sum, ChecksumTree(folder + "/data"));
  m.size_bytes = sum.size_bytes;
  m.file_count = sum.file_count;
  m.sha256 = sum.sha256;
  m.end_time = ctx_->clock->NowMillis();
  SetProgress(sid, 95);
  AP_RETURN_IF_ERROR(lb::WriteFileAtomically(folder + "/manifest.json", ManifestToJson(m).dump(2) + "\n", 0600));
  // The store describes the instance too, as an automated backup leaves it.
  Json about = {{"DBInstanceIdentifier", id},
                {"DbiResourceId", m.dbi_resource_id},
                {"Engine", m.engine},
                {"EngineVersion", m.engine_version},
                {"DBInstanceClass", m.db_instance_class},
                {"Port", m.port},
                {"MasterUsername", m.master_username},
                {"AllocatedStorage", m.allocated_storage},
                {"AvailabilityZone", m.availability_zone},
                {"BackupRetentionPeriod", inst->value("BackupRetentionPeriod", int64_t{0})},
                {"InstanceCreateTime", inst->value("InstanceCreateTime", int64_t{0})}};
  AP_RETURN_IF_ERROR(lb::WriteFileAtomically(store + "/instance.json", about.dump(2) + "\n", 0600));
  spdlog::info("db_snapshot={} of {} from {} at GTID {}: {} bytes in {} ms", sid, id, m.source_server, m.gtid,
               m.size_bytes, m.end_time - m.start_time);
  return Finish(sid, m.gtid, m.end_time);
}

Status DbSnapshotController::Copy(const std::string& sid, const Json& snap) {
  const std::string from = Str(snap, "SourceStorePath");
  const std::string folder = Str(snap, "StorePath");
  // The source is checked before anything is copied, and the copy against the source's manifest after.
  AP_ASSIGN_OR_RETURN(auto m, VerifyBackup(from));
  SetProgress(sid, 10);
  std::error_code ec;
  fs::remove_all(folder, ec);
  fs::create_directories(folder, ec);
  if (ec) return Status::Internal("cannot create " + folder + ": " + ec.message());
  {
    ProgressReporter progress(folder + "/data", m.size_bytes, 10, 90, [this, sid](int pct) { SetProgress(sid, pct); });
    fs::copy(from + "/data", folder + "/data", fs::copy_options::recursive, ec);
  }
  if (ec) return Status::Internal("cannot copy " + from + "/data: " + ec.message());
  AP_ASSIGN_OR_RETURN(auto sum, ChecksumTree(folder + "/data"));
  if (sum.sha256 != m.sha256 || sum.size_bytes != m.size_bytes || sum.file_count != m.file_count) {
    return Status::Internal("the copy of " + m.snapshot_id + " does not match its checksum (sha256 " + sum.sha256 +
                            ", expected " + m.sha256 + ")");
  }
  SetProgress(sid, 95);
  m.snapshot_id = sid;
  m.snapshot_type = kManual;
  AP_RETURN_IF_ERROR(lb::WriteFileAtomically(folder + "/manifest.json", ManifestToJson(m).dump(2) + "\n", 0600));
  spdlog::info("db_snapshot={} copied from {}: {} bytes", sid, Str(snap, "CopyFrom"), m.size_bytes);
  return Finish(sid, m.gtid, m.end_time);
}

Status DbSnapshotController::Finish(const std::string& sid, const std::string& gtid, int64_t end_time) {
  std::lock_guard lock(*ctx_->mu);
  auto doc = ctx_->store->Get(kind::kDbSnapshot, sid);
  if (!doc) return Status::Ok();
  Json snap = *doc;
  snap["Status"] = snapshot_status::kAvailable;
  snap["PercentProgress"] = 100;
  snap["Gtid"] = gtid;
  snap["BackupEndTime"] = end_time;
  std::vector<StoreWrite> writes = {{kind::kDbSnapshot, sid, snap, std::nullopt}};
  if (snap.contains("CopyFrom")) {
    AddEvent(*ctx_, "db-snapshot", sid, "0061",
             "Finished copy of snapshot " + Str(snap, "CopyFrom") + " from region " + ctx_->catalog->region(),
             {"notification"}, &writes);
    return ctx_->store->Commit(writes);
  }
  const std::string id = Str(snap, "DBInstanceIdentifier");
  AddEvent(*ctx_, "db-snapshot", sid, "0042", "Manual snapshot created", {"creation"}, &writes);
  auto inst = ctx_->store->Get(kind::kDbInstance, id);
  if (inst && Str(*inst, "DbiResourceId") == Str(snap, "DbiResourceId")) {
    AddEvent(*ctx_, "db-instance", id, "0042", "Manual snapshot created", {"creation"}, &writes);
    if (Str(*inst, "ManualSnapshot") == sid) {
      Json db = *inst;
      db.erase("ManualSnapshot");
      if (Str(db, "DBInstanceStatus") == db_status::kBackingUp &&
          !db.value("Backup", Json::object()).value("Running", false))
        db["DBInstanceStatus"] = db_status::kAvailable;
      writes.push_back({kind::kDbInstance, id, db, std::nullopt});
    }
  }
  return ctx_->store->Commit(writes);
}

ReconcileResult DbSnapshotController::Delete(const std::string& sid, const Json& snap) {
  const std::string folder = Str(snap, "StorePath");
  const std::string dbi = Str(snap, "DbiResourceId");
  std::error_code ec;
  if (!folder.empty()) fs::remove_all(folder, ec);
  if (ec) return Status::Internal("cannot delete " + folder + ": " + ec.message());
  std::lock_guard lock(*ctx_->mu);
  std::vector<StoreWrite> writes = {{kind::kDbSnapshot, sid, std::nullopt, std::nullopt}};
  AddEvent(*ctx_, "db-snapshot", sid, "0041", "Deleted manual snapshot", {"deletion"}, &writes);
  AP_RETURN_IF_ERROR(ctx_->store->Commit(writes));
  // The store of an instance that is gone goes with its last backup.
  if (!dbi.empty()) {
    bool used = false;
    for (const auto& doc : ctx_->store->List(kind::kDbInstance)) used = used || Str(*doc, "DbiResourceId") == dbi;
    for (const auto& doc : ctx_->store->List(kind::kDbSnapshot)) used = used || Str(*doc, "DbiResourceId") == dbi;
    if (!used) fs::remove_all(BackupStoreDir(*ctx_, dbi), ec);
  }
  spdlog::info("db_snapshot={} deleted", sid);
  return ReconcileResult::Done();
}

}  // namespace autopipe::rds

#include "rds/db_backups.h"

#include <openssl/evp.h>
#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "common/log.h"
#include "lb/node_files.h"
#include "process/recorded_process.h"
#include "rds/backup_progress.h"
#include "rds/db_controller.h"
#include "rds/db_instances.h"
#include "rds/mariadb.h"

namespace fs = std::filesystem;

namespace autopipe::rds {
namespace {

// mariadb-binlog exits when its server goes away (a failover, a restart): it is started again soon, with a
// short back-off while the server is still down.
constexpr SupervisionPolicy kArchiverPolicy{/*crash_window_ms=*/1000, /*first_backoff_ms=*/100,
                                            /*max_backoff_ms=*/2000, /*kill_after_ms=*/3000};
constexpr char kBinlogTool[] = "/usr/bin/mariadb-binlog";

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

std::string FormatUtc(int64_t ms, const char* format) {
  std::time_t t = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, format, &tm);
  return buf;
}

// The binlog files in an archive folder, in order (db-bin.000001, ...).
std::vector<std::string> ArchivedFiles(const std::string& dir) {
  std::vector<std::string> files;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    const std::string name = e.path().filename().string();
    if (e.is_regular_file() && name.find(".0") != std::string::npos && name.find(".json") == std::string::npos)
      files.push_back(name);
  }
  std::sort(files.begin(), files.end());
  return files;
}

// The last GTID in an archived binlog file (mariadb-binlog reads it locally); "" when it holds none.
std::string LastGtidInFile(const std::string& path, const std::string& scratch) {
  std::error_code ec;
  fs::remove(scratch, ec);
  // A file cut short (its server died mid-event) makes mariadb-binlog exit non-zero after printing what precedes.
  (void)RunCommand({kBinlogTool, "--no-defaults", path}, scratch, 60'000);
  const std::string last = LastGtidInBinlogText(ReadFile(scratch));
  fs::remove(scratch, ec);
  return last;
}

}  // namespace

std::string LastGtidInBinlogText(const std::string& text) {
  std::istringstream in(text);
  std::string line, last;
  while (std::getline(in, line)) {
    // "#261201 17:20:01 server id 1  end_log_pos 123 CRC32 0x...<TAB>GTID 0-1-42 trans"
    auto at = line.find("\tGTID ");
    if (at == std::string::npos) at = line.find(" GTID ");
    if (at == std::string::npos || line.size() < 2 || line[0] != '#' ||
        !std::isdigit(static_cast<unsigned char>(line[1])))
      continue;
    std::istringstream rest(line.substr(at + 6));
    std::string gtid;
    rest >> gtid;
    if (!gtid.empty()) last = gtid;
  }
  return last;
}

// ---- the store ------------------------------------------------------------------------------------------------

std::string BackupStoreDir(const RegionContext& ctx, const std::string& dbi_resource_id) {
  return ctx.data_dir + "/rds-backups/" + dbi_resource_id;
}

std::string BackupFolderName(const std::string& snapshot_id) {
  std::string out = snapshot_id;
  for (char& c : out) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '.') c = '_';
  }
  return out;
}

Json ManifestToJson(const Manifest& m) {
  return Json{{"SnapshotIdentifier", m.snapshot_id},
              {"SnapshotType", m.snapshot_type},
              {"DBInstanceIdentifier", m.db_instance_identifier},
              {"DbiResourceId", m.dbi_resource_id},
              {"Engine", m.engine},
              {"EngineVersion", m.engine_version},
              {"DBInstanceClass", m.db_instance_class},
              {"MasterUsername", m.master_username},
              {"AvailabilityZone", m.availability_zone},
              {"Port", m.port},
              {"AllocatedStorage", m.allocated_storage},
              {"SourceServer", m.source_server},
              {"Gtid", m.gtid},
              {"BinlogFile", m.binlog_file},
              {"BinlogPosition", m.binlog_position},
              {"StartTime", m.start_time},
              {"EndTime", m.end_time},
              {"SizeBytes", m.size_bytes},
              {"FileCount", m.file_count},
              {"Sha256", m.sha256}};
}

Result<Manifest> ManifestFromJson(const Json& j) {
  if (!j.is_object() || !j.contains("Sha256") || !j.contains("Gtid"))
    return Status::Internal("backup manifest is incomplete");
  Manifest m;
  m.snapshot_id = Str(j, "SnapshotIdentifier");
  m.snapshot_type = Str(j, "SnapshotType");
  m.db_instance_identifier = Str(j, "DBInstanceIdentifier");
  m.dbi_resource_id = Str(j, "DbiResourceId");
  m.engine = Str(j, "Engine");
  m.engine_version = Str(j, "EngineVersion");
  m.db_instance_class = Str(j, "DBInstanceClass");
  m.master_username = Str(j, "MasterUsername");
  m.availability_zone = Str(j, "AvailabilityZone");
  m.port = j.value("Port", 3306);
  m.allocated_storage = j.value("AllocatedStorage", int64_t{20});
  m.source_server = Str(j, "SourceServer");
  m.gtid = Str(j, "Gtid");
  m.binlog_file = Str(j, "BinlogFile");
  m.binlog_position = j.value("BinlogPosition", int64_t{0});
  m.start_time = j.value("StartTime", int64_t{0});
  m.end_time = j.value("EndTime", int64_t{0});
  m.size_bytes = j.value("SizeBytes", int64_t{0});
  m.file_count = j.value("FileCount", int64_t{0});
  m.sha256 = Str(j, "Sha256");
  return m;
}

Result<TreeSum> ChecksumTree(const std::string& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return Status::Internal(dir + " is not a folder");
  std::vector<std::string> files;
  for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::recursive_directory_iterator();
       it.increment(ec)) {
    if (it->is_regular_file()) files.push_back(fs::relative(it->path(), dir).string());
  }
  if (ec) return Status::Internal("cannot list " + dir + ": " + ec.message());
  std::sort(files.begin(), files.end());
  EVP_MD_CTX* md = EVP_MD_CTX_new();
  EVP_DigestInit_ex(md, EVP_sha256(), nullptr);
  TreeSum sum;
  std::vector<char> buf(1 << 20);
  for (const auto& rel : files) {
    std::ifstream in(dir + "/" + rel, std::ios::binary);
    if (!in) {
      EVP_MD_CTX_free(md);
      return Status::Internal("cannot read " + dir + "/" + rel);
    }
    int64_t size = 0;
    std::string header = rel + '\0';
    EVP_DigestUpdate(md, header.data(), header.size());
    while (in) {
      in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
      const std::streamsize n = in.gcount();
      if (n > 0) {
        EVP_DigestUpdate(md, buf.data(), static_cast<size_t>(n));
        size += n;
      }
    }
    const std::string trailer = '\0' + std::to_string(size) + '\0';
    EVP_DigestUpdate(md, trailer.data(), trailer.size());
    sum.size_bytes += size;
    ++sum.file_count;
  }
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestFinal_ex(md, digest, &len);
  EVP_MD_CTX_free(md);
  static constexpr char kHex[] = "0123456789abcdef";
  for (unsigned int i = 0; i < len; ++i) {
    sum.sha256 += kHex[digest[i] >> 4];
    sum.sha256 += kHex[digest[i] & 15];
  }
  return sum;
}

Result<Manifest> VerifyBackup(const std::string& backup_dir) {
  Json j = Json::parse(ReadFile(backup_dir + "/manifest.json"), nullptr, false);
  if (j.is_discarded()) return Status::Internal("backup " + backup_dir + ": manifest.json is missing or unreadable");
  AP_ASSIGN_OR_RETURN(auto m, ManifestFromJson(j));
  AP_ASSIGN_OR_RETURN(auto sum, ChecksumTree(backup_dir + "/data"));
  if (sum.file_count != m.file_count || sum.size_bytes != m.size_bytes || sum.sha256 != m.sha256) {
    return Status::Internal("backup " + m.snapshot_id + " is damaged: its files (" + std::to_string(sum.file_count) +
                            " files, " + std::to_string(sum.size_bytes) + " bytes, sha256 " + sum.sha256 +
                            ") do not match its manifest (" + std::to_string(m.file_count) + " files, " +
                            std::to_string(m.size_bytes) + " bytes, sha256 " + m.sha256 + ")");
  }
  return m;
}

std::vector<std::string> PruneArchive(const std::string& store_dir, const std::string& active_server,
                                      int64_t oldest_backup_start_ms) {
  std::vector<std::string> removed;
  std::error_code ec;
  // A file whose last event (its mtime) came a minute or more before the oldest backup began holds only
  // transactions that backup has.
  const int64_t before = oldest_backup_start_ms - 60'000;
  for (const auto& folder : fs::directory_iterator(store_dir + "/binlogs", ec)) {
    if (!folder.is_directory()) continue;
    const std::string dir = folder.path().string();
    const bool active = folder.path().filename() == active_server;
    auto files = ArchivedFiles(dir);
    size_t left = files.size();
    for (size_t i = 0; i < files.size(); ++i) {
      if (active && i + 1 == files.size()) break;  // the file being written
      struct stat st {};
      const std::string path = dir + "/" + files[i];
      if (stat(path.c_str(), &st) != 0) continue;
      const int64_t mtime_ms = int64_t{st.st_mtim.tv_sec} * 1000 + st.st_mtim.tv_nsec / 1'000'000;
      if (mtime_ms >= before) break;  // and every later file is newer still
      std::error_code rm;
      if (fs::remove(path, rm)) {
        removed.push_back(path);
        --left;
      }
    }
    if (!active && left == 0) {
      std::error_code rm;
      fs::remove_all(dir, rm);
    }
  }
  return removed;
}

// ---- the schedule's rules -------------------------------------------------------------------------------------

std::optional<std::pair<int, int>> ParseDailyWindow(const std::string& window) {
  int h1, m1, h2, m2;
  char tail;
  if (window.size() != 11 || std::sscanf(window.c_str(), "%2d:%2d-%2d:%2d%c", &h1, &m1, &h2, &m2, &tail) != 4)
    return std::nullopt;
  if (h1 > 23 || h2 > 23 || m1 > 59 || m2 > 59 || h1 < 0 || h2 < 0 || m1 < 0 || m2 < 0) return std::nullopt;
  const int start = h1 * 60 + m1, end = h2 * 60 + m2;
  const int length = ((end - start) % 1440 + 1440) % 1440;
  return std::make_pair(start, length);
}

int64_t LastWindowStart(int64_t now_ms, const std::string& window) {
  auto w = ParseDailyWindow(window).value_or(std::make_pair(0, 30));
  int64_t start = now_ms - ((now_ms % kDayMillis) + kDayMillis) % kDayMillis + int64_t{w.first} * 60'000;
  if (start > now_ms) start -= kDayMillis;
  return start;
}

bool DailyBackupDue(int64_t now_ms, const std::string& window, int64_t last_start_ms) {
  auto w = ParseDailyWindow(window).value_or(std::make_pair(0, 30));
  const int64_t start = LastWindowStart(now_ms, window);
  return now_ms < start + int64_t{w.second} * 60'000 && last_start_ms < start;
}

std::string AutomatedSnapshotId(const std::string& db_instance_id, int64_t start_ms) {
  return "rds:" + db_instance_id + "-" + FormatUtc(start_ms, "%Y-%m-%d-%H-%M");
}

std::vector<std::string> ExpiredAutomatedSnapshots(const std::map<std::string, int64_t>& created, int64_t now_ms,
                                                   int64_t retention_days) {
  std::vector<std::string> out;
  for (const auto& [id, at] : created) {
    if (retention_days <= 0 || at < now_ms - retention_days * kDayMillis) out.push_back(id);
  }
  return out;
}

std::map<int64_t, int64_t> ParseGtidState(const std::string& state) {
  std::map<int64_t, int64_t> out;
  std::istringstream in(state);
  std::string one;
  while (std::getline(in, one, ',')) {
    long long d = 0, s = 0, n = 0;
    if (std::sscanf(one.c_str(), " %lld-%lld-%lld", &d, &s, &n) == 3) out[d] = std::max<int64_t>(out[d], n);
  }
  return out;
}

bool GtidStateAtMost(const std::string& a, const std::string& b) {
  auto bs = ParseGtidState(b);
  for (const auto& [domain, seq] : ParseGtidState(a)) {
    auto it = bs.find(domain);
    if (it == bs.end() || seq > it->second) return false;
  }
  return true;
}

// ---- the controller -------------------------------------------------------------------------------------------

struct DbBackupController::Snapshot {
  std::optional<Json> inst;
  std::optional<Json> secret;
  std::map<std::string, Json> servers;  // by name (s1, s2, ...)
  std::optional<Json> archiver;
  std::map<std::string, Json> snapshots;  // this instance's automated snapshots, by id

  const Json* Server(const std::string& name) const {
    auto it = servers.find(name);
    return it == servers.end() ? nullptr : &it->second;
  }
  std::string Primary() const { return inst ? Str((*inst)["Status"], "Primary") : ""; }
  std::string Standby() const { return inst ? Str((*inst)["Status"], "Standby") : ""; }
  std::string Store(const RegionContext& ctx) const { return BackupStoreDir(ctx, Str(*inst, "DbiResourceId")); }
  int Port() const { return inst->value("Port", 3306); }
  AdminAccounts Accounts() const {
    AdminAccounts a;
    if (secret) {
      a.admin_password = Str(*secret, "AdminPassword");
      a.repl_password = Str(*secret, "ReplPassword");
    }
    return a;
  }
};

DbBackupController::~DbBackupController() { backups_.JoinAll(); }

namespace {
// "rds:<id>-YYYY-MM-DD-HH-MM" -> <id>.
std::optional<std::string> InstanceOfAutomatedSnapshot(const std::string& snapshot_id) {
  constexpr size_t kStamp = 17;  // "-YYYY-MM-DD-HH-MM"
  if (snapshot_id.rfind("rds:", 0) != 0 || snapshot_id.size() <= 4 + kStamp) return std::nullopt;
  return snapshot_id.substr(4, snapshot_id.size() - 4 - kStamp);
}
}  // namespace

std::vector<std::string> DbBackupController::Keys() {
  std::set<std::string> keys;
  for (const auto& id : ctx_->store->Ids(kind::kDbInstance)) keys.insert(id);
  for (const auto& id : ctx_->store->Ids(kind::kDbBinlogArchiver)) keys.insert(id);
  for (const auto& id : ctx_->store->Ids(kind::kDbSnapshot)) {
    if (auto inst = InstanceOfAutomatedSnapshot(id)) keys.insert(*inst);
  }
  return {keys.begin(), keys.end()};
}

std::vector<Controller::Watch> DbBackupController::Watches() const {
  return {{kind::kDbInstance, SameKey},
          {kind::kDbBinlogArchiver, SameKey},
          {kind::kDbSnapshot, InstanceOfAutomatedSnapshot},
          {kind::kDbServer,
           [](const std::string& id) -> std::optional<std::string> { return id.substr(0, id.find('/')); }}};
}

DbBackupController::Snapshot DbBackupController::Read(const std::string& id) {
  Snapshot s;
  std::lock_guard lock(*ctx_->mu);
  s.inst = ctx_->store->Get(kind::kDbInstance, id);
  s.secret = ctx_->store->Get(kind::kDbInstanceSecret, id);
  s.archiver = ctx_->store->Get(kind::kDbBinlogArchiver, id);
  for (const auto& doc : ctx_->store->List(kind::kDbServer)) {
    if (Str(*doc, "DBInstanceIdentifier") == id) s.servers[Str(*doc, "Name")] = *doc;
  }
  for (const auto& doc : ctx_->store->List(kind::kDbSnapshot)) {
    // A live instance's own (an earlier instance of the same name had another DbiResourceId); all of them once
    // the instance is gone.
    if (Str(*doc, "DBInstanceIdentifier") == id && Str(*doc, "SnapshotType") == "automated" &&
        (!s.inst || Str(*doc, "DbiResourceId") == Str(*s.inst, "DbiResourceId")))
      s.snapshots[Str(*doc, "DBSnapshotIdentifier")] = *doc;
  }
  if (s.inst && !s.inst->contains("Status")) (*s.inst)["Status"] = Json::object();
  return s;
}

ReconcileResult DbBackupController::Reconcile(const std::string& id) {
  const bool running_backup = backups_.Running(id);
  Snapshot s = Read(id);
  if (!s.inst || (*s.inst)["Spec"].value("Deleting", false) ||
      s.inst->value("BackupRetentionPeriod", int64_t{0}) <= 0 || !(*s.inst)["Spec"].value("Running", true)) {
    std::lock_guard lock(mu_);
    conns_.erase(id);
  }
  if (!s.inst || (*s.inst)["Spec"].value("Deleting", false)) {
    ReconcileResult r = StopArchiver(id, s, true);
    if (r.requeue_after() || !r.status().ok()) return r;
    if (running_backup) return ReconcileResult::After(std::chrono::milliseconds(200));
    if (s.inst) return ReconcileResult::Done();  // the document's deletion runs this again
    return DeleteOrphans(id, s);
  }
  if (!(*s.inst)["Spec"].value("Running", true)) return StopArchiver(id, s, false);
  const int64_t retention = s.inst->value("BackupRetentionPeriod", int64_t{0});
  if (retention <= 0) {
    // Retention 0: no backups, no archive, and the automated snapshots go (as RDS does).
    if (running_backup) return ReconcileResult::After(std::chrono::milliseconds(200));
    AP_RETURN_IF_ERROR(Prune(id, s, 0));
    ReconcileResult r = StopArchiver(id, s, true);
    if (r.requeue_after() || !r.status().ok()) return r;
    std::error_code ec;
    fs::remove_all(s.Store(*ctx_) + "/binlogs", ec);
    std::lock_guard lock(*ctx_->mu);
    auto current = ctx_->store->Get(kind::kDbInstance, id);
    if (current && (current->contains("LatestRestorableTime") || current->contains("Backup"))) {
      Json doc = *current;
      doc.erase("LatestRestorableTime");
      doc.erase("Backup");
      return ctx_->store->Commit({{kind::kDbInstance, id, doc}});
    }
    return ReconcileResult::Done();
  }
  const Json& st = (*s.inst)["Status"];
  const bool failing_over = st.contains("Failover") && !st["Failover"].is_null();
  if (!st.value("Created", false) || failing_over || !s.secret)
    return ReconcileResult::After(std::chrono::milliseconds(kArchivePeriodMs));

  AP_RETURN_IF_ERROR(EnsureArchiver(id, s));
  if (Status lrt = UpdateLatestRestorableTime(id, s); !lrt.ok())
    spdlog::debug("db_instance={} latest restorable time not updated: {}", id, lrt.ToString());

  if (!running_backup) {
    const Json backup = s.inst->value("Backup", Json::object());
    const int64_t now = ctx_->clock->NowMillis();
    if (backup.value("Running", false)) {
      // A backup this process did not start (the server restarted during one): it is gone; so is its snapshot.
      std::lock_guard lock(*ctx_->mu);
      std::vector<StoreWrite> writes;
      for (const auto& [sid, snap] : s.snapshots) {
        if (Str(snap, "Status") != "creating") continue;
        std::error_code ec;
        fs::remove_all(Str(snap, "StorePath"), ec);
        writes.push_back({kind::kDbSnapshot, sid, std::nullopt});
      }
      if (auto current = ctx_->store->Get(kind::kDbInstance, id)) {
        Json doc = *current;
        doc["Backup"]["Running"] = false;
        writes.push_back({kind::kDbInstance, id, doc});
      }
      AP_RETURN_IF_ERROR(ctx_->store->Commit(writes));
      return ReconcileResult::After(std::chrono::milliseconds(0));
    }
    if (now - backup.value("LastErrorAt", int64_t{0}) < 10'000)
      return ReconcileResult::After(std::chrono::milliseconds(kArchivePeriodMs));
    const std::string status = Str(*s.inst, "DBInstanceStatus");
    const bool initial = !backup.value("InitialDone", false);
    const bool ready = status == db_status::kAvailable || (initial && status == "backing-up");
    if (ready && (initial || DailyBackupDue(now, Str(*s.inst, "PreferredBackupWindow"),
                                            backup.value("LastAutomatedStart", int64_t{0})))) {
      StartBackup(id, s, initial);
    } else {
      AP_RETURN_IF_ERROR(Prune(id, s, retention));
    }
  }
  return ReconcileResult::After(std::chrono::milliseconds(kArchivePeriodMs));
}

ReconcileResult DbBackupController::DeleteOrphans(const std::string& id, Snapshot& s) {
  // The instance is gone: its automated backups go too, with its backup store, unless they were retained
  // (DeleteDBInstance with DeleteAutomatedBackups=false).
  std::vector<StoreWrite> writes;
  std::set<std::string> stores;
  for (const auto& [sid, snap] : s.snapshots) {
    if (snap.value("Retained", false)) continue;
    writes.push_back({kind::kDbSnapshot, sid, std::nullopt});
    stores.insert(Str(snap, "DbiResourceId"));
  }
  if (writes.empty()) return ReconcileResult::Done();
  {
    std::lock_guard lock(*ctx_->mu);
    // A new instance with the same identifier has a DbiResourceId of its own: its store is not these.
    AP_RETURN_IF_ERROR(ctx_->store->Commit(writes));
  }
  // Manual snapshots (db_snapshots.h) outlive the instance: their folders stay, and with them the store.
  std::set<std::string> manual;
  {
    std::lock_guard lock(*ctx_->mu);
    for (const auto& doc : ctx_->store->List(kind::kDbSnapshot)) {
      if (Str(*doc, "SnapshotType") != "automated") manual.insert(Str(*doc, "StorePath"));
    }
  }
  for (const auto& dbi : stores) {
    std::error_code ec;
    if (dbi.empty()) continue;
    const std::string store = BackupStoreDir(*ctx_, dbi);
    bool keep = false;
    for (const auto& e : fs::directory_iterator(store + "/backups", ec)) keep = keep || manual.count(e.path().string());
    if (!keep) {
      fs::remove_all(store, ec);
    } else {
      for (const auto& e : fs::directory_iterator(store + "/backups", ec)) {
        std::error_code rm;
        if (!manual.count(e.path().string())) fs::remove_all(e.path(), rm);
      }
      fs::remove_all(store + "/binlogs", ec);
    }
    spdlog::info("db_instance={} automated backups deleted with the instance ({})", id, dbi);
  }
  return ReconcileResult::Done();
}

ReconcileResult DbBackupController::StopArchiver(const std::string& id, Snapshot& s, bool forget) {
  if (!s.archiver) return ReconcileResult::Done();
  Json doc = *s.archiver;
  const bool stopped = supervisor_.Stop(doc, kArchiverPolicy);
  std::lock_guard lock(*ctx_->mu);
  if (stopped && forget) {
    AP_RETURN_IF_ERROR(ctx_->store->Commit({{kind::kDbBinlogArchiver, id, std::nullopt}}));
    return ReconcileResult::Done();
  }
  if (stopped) Supervisor::Clear(doc);
  if (doc != *s.archiver) AP_RETURN_IF_ERROR(ctx_->store->Commit({{kind::kDbBinlogArchiver, id, doc}}));
  if (!stopped) return ReconcileResult::After(std::chrono::milliseconds(100));
  return ReconcileResult::Done();
}

Status DbBackupController::EnsureArchiver(const std::string& id, Snapshot& s) {
  const std::string primary_name = s.Primary();
  const Json* primary = s.Server(primary_name);
  if (!primary || !primary->value("Ready", false) || Str(*primary, "Role") != "primary") return Status::Ok();
  Json doc = s.archiver.value_or(Json{{"DBInstanceIdentifier", id}, {"Server", ""}, {"LaunchToken", NewLaunchToken()}});
  const std::string store = s.Store(*ctx_);
  doc["StoreDir"] = store;
  auto commit = [&]() -> Status {
    if (s.archiver && doc == *s.archiver) return Status::Ok();
    std::lock_guard lock(*ctx_->mu);
    AP_RETURN_IF_ERROR(ctx_->store->Commit({{kind::kDbBinlogArchiver, id, doc}}));
    s.archiver = doc;
    return Status::Ok();
  };

  const std::string old_server = Str(doc, "Server");
  if (old_server != primary_name) {
    // A new primary (creation, a failover): the old reader stops (it has usually exited with its server), and
    // archiving of the new primary's binary log begins from the file holding the first GTID not yet archived.
    if (!supervisor_.Stop(doc, kArchiverPolicy)) return commit();
    Supervisor::Clear(doc);
    const std::string dir = store + "/binlogs/" + primary_name;
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec) return Status::Internal("cannot create " + dir + ": " + ec.message());
    if (!fs::exists(dir + "/segment.json")) {
      std::string previous_last;
      if (!old_server.empty()) {
        const std::string old_dir = store + "/binlogs/" + old_server;
        auto files = ArchivedFiles(old_dir);
        for (auto it = files.rbegin(); it != files.rend() && previous_last.empty(); ++it)
          previous_last = LastGtidInFile(old_dir + "/" + *it, DbInstanceDir(*ctx_, id) + "/archiver-scan.txt");
      }
      Connection::Target t{Str(*primary, "Address"), s.Port(), "", kAdminUser, s.Accounts().admin_password, 2};
      AP_ASSIGN_OR_RETURN(auto conn, Connection::Open(t));
      AP_ASSIGN_OR_RETURN(auto logs, conn->Query("SHOW BINARY LOGS"));
      if (logs.empty()) return Status::Internal("db instance " + id + ": the primary has no binary log");
      std::string start_file = logs.front()["Log_name"], start_state;
      if (!previous_last.empty()) {
        // The last file whose starting GTID state is at or before the last GTID archived: every later
        // transaction is in it or after it.
        for (auto it = logs.rbegin(); it != logs.rend(); ++it) {
          AP_ASSIGN_OR_RETURN(auto state,
                              conn->Scalar("SELECT BINLOG_GTID_POS(" + conn->Quote((*it)["Log_name"]) + ", 4)"));
          if (GtidStateAtMost(state.value_or(""), previous_last)) {
            start_file = (*it)["Log_name"];
            start_state = state.value_or("");
            break;
          }
        }
      }
      Json segment = {
          {"Server", primary_name}, {"StartFile", start_file},           {"StartGtidState", start_state},
          {"Previous", old_server}, {"PreviousLastGtid", previous_last}, {"StartedAt", ctx_->clock->NowMillis()}};
      AP_RETURN_IF_ERROR(lb::WriteFileAtomically(dir + "/segment.json", segment.dump(2) + "\n", 0644));
      spdlog::info("db_instance={} archiving the binary log of {} from {} (last archived GTID: {})", id, primary_name,
                   start_file, previous_last.empty() ? "none" : previous_last);
    }
    doc["Server"] = primary_name;
    doc["Address"] = Str(*primary, "Address");
    AP_RETURN_IF_ERROR(commit());
  }

  // Started (again) from the last file it archived (fetched anew in full), else from the segment's first file.
  const std::string dir = store + "/binlogs/" + primary_name;
  auto files = ArchivedFiles(dir);
  std::string start = files.empty() ? "" : files.back();
  if (start.empty()) {
    Json segment = Json::parse(ReadFile(dir + "/segment.json"), nullptr, false);
    if (!segment.is_discarded()) start = Str(segment, "StartFile");
  }
  if (start.empty()) return Status::Internal("db instance " + id + ": no binlog file to archive from");
  const std::string options = DbInstanceDir(*ctx_, id) + "/archiver.cnf";
  AP_RETURN_IF_ERROR(WriteClientOptions(options, Str(*primary, "Address"), s.Port(), s.Accounts()));
  LaunchSpec spec;
  spec.argv = {kBinlogTool,
               "--defaults-file=" + options,
               "--read-from-remote-server",
               "--raw",
               "--stop-never",
               "--stop-never-slave-server-id=" + std::to_string(100000 + primary->value("ServerId", 1)),
               "--result-file=" + dir + "/",
               start};
  spec.env = {{"PATH", "/usr/sbin:/usr/bin:/sbin:/bin"}, {"LANG", "C.UTF-8"}};
  spec.working_dir = dir;
  spec.log_path = DbInstanceDir(*ctx_, id) + "/archiver.log";
  (void)supervisor_.KeepRunning(doc, spec, kArchiverPolicy, "db_instance=" + id + " binlog archiver");
  return commit();
}

Status DbBackupController::UpdateLatestRestorableTime(const std::string& id, Snapshot& s) {
  if (!s.archiver || !supervisor_.Running(*s.archiver)) return Status::Ok();
  const Json* primary = s.Server(s.Primary());
  if (!primary || Str(*s.archiver, "Server") != s.Primary()) return Status::Ok();
  // Everything committed before t0 is in the primary's binary log before the position read after t0; once the
  // archive holds that much of that file, everything up to t0 is archived.
  const int64_t t0 = ctx_->clock->NowMillis();
  // At most once per period: each commit of the instance's document runs this controller again at once.
  if (t0 - s.inst->value("LatestRestorableTime", int64_t{0}) < kArchivePeriodMs) return Status::Ok();
  // One connection per instance, kept between passes (a new one four times a second would churn the server's
  // connection count); dropped on any error and when the primary changes.
  const std::string address = Str(*primary, "Address");
  std::unique_ptr<Connection> conn;
  {
    std::lock_guard lock(mu_);
    auto it = conns_.find(id);
    if (it != conns_.end() && it->second.first == address) conn = std::move(it->second.second);
    conns_.erase(id);
  }
  if (!conn) {
    Connection::Target t{address, s.Port(), "", kAdminUser, s.Accounts().admin_password, 1};
    AP_ASSIGN_OR_RETURN(conn, Connection::Open(t));
  }
  AP_ASSIGN_OR_RETURN(auto rows, conn->Query("SHOW MASTER STATUS"));
  {
    std::lock_guard lock(mu_);
    conns_[id] = {address, std::move(conn)};
  }
  if (rows.empty()) return Status::Internal("no binary log on the primary");
  const std::string file = rows[0]["File"];
  const int64_t position = std::stoll(rows[0]["Position"]);
  const std::string archived = s.Store(*ctx_) + "/binlogs/" + s.Primary() + "/" + file;
  int64_t have = 0;
  // The archiver is behind by at most a few events: wait for it briefly (bounded) rather than report stale time.
  for (int i = 0; i < 50; ++i) {
    std::error_code ec;
    have = static_cast<int64_t>(fs::file_size(archived, ec));
    if (!ec && have >= position) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  if (have < position)
    return Status::Internal("archive behind: " + std::to_string(have) + " < " + std::to_string(position));
  std::lock_guard lock(*ctx_->mu);
  auto current = ctx_->store->Get(kind::kDbInstance, id);
  if (!current || current->value("LatestRestorableTime", int64_t{0}) >= t0) return Status::Ok();
  if (current->value("BackupRetentionPeriod", int64_t{0}) <= 0) return Status::Ok();
  Json doc = *current;
  doc["LatestRestorableTime"] = t0;
  return ctx_->store->Commit({{kind::kDbInstance, id, doc}});
}

Status DbBackupController::Prune(const std::string& id, Snapshot& s, int64_t retention_days) {
  std::map<std::string, int64_t> created;
  for (const auto& [sid, snap] : s.snapshots) {
    if (Str(snap, "Status") == "available") created[sid] = snap.value("SnapshotCreateTime", int64_t{0});
  }
  auto expired = ExpiredAutomatedSnapshots(created, ctx_->clock->NowMillis(), retention_days);
  if (expired.empty()) return Status::Ok();
  std::vector<StoreWrite> writes;
  for (const auto& sid : expired) {
    std::error_code ec;
    const std::string path = Str(s.snapshots[sid], "StorePath");
    if (!path.empty()) fs::remove_all(path, ec);
    writes.push_back({kind::kDbSnapshot, sid, std::nullopt});
    spdlog::info("db_instance={} automated snapshot {} deleted (retention {} days)", id, sid, retention_days);
  }
  {
    std::lock_guard lock(*ctx_->mu);
    AP_RETURN_IF_ERROR(ctx_->store->Commit(writes));
  }
  // The archived binary log that only the deleted backups needed goes too.
  int64_t oldest_kept = 0;
  for (const auto& [sid, at] : created) {
    if (std::find(expired.begin(), expired.end(), sid) == expired.end() && (oldest_kept == 0 || at < oldest_kept))
      oldest_kept = at;
  }
  if (oldest_kept > 0 && s.archiver) {
    for (const auto& path : PruneArchive(s.Store(*ctx_), Str(*s.archiver, "Server"), oldest_kept))
      spdlog::info("db_instance={} archived binlog {} deleted (older than every backup kept)", id, path);
  }
  return Status::Ok();
}

void DbBackupController::StartBackup(const std::string& id, const Snapshot& s, bool initial) {
  const int64_t start = ctx_->clock->NowMillis();
  const std::string snapshot_id = AutomatedSnapshotId(id, start);
  backups_.Start(id, [this, id, s, snapshot_id, start, initial] {
    Status st = RunBackup(id, s, snapshot_id, start);
    if (!st.ok()) {
      spdlog::warn("db_instance={} backup {} failed: {}", id, snapshot_id, st.ToString());
      std::lock_guard lock(*ctx_->mu);
      std::vector<StoreWrite> writes;
      auto current = ctx_->store->Get(kind::kDbInstance, id);
      if (current) {
        Json doc = *current;
        doc["Backup"]["Running"] = false;
        doc["Backup"]["LastError"] = st.message();
        doc["Backup"]["LastErrorAt"] = ctx_->clock->NowMillis();
        if (!initial) doc["Backup"]["LastAutomatedStart"] = start;  // the next try is tomorrow's window
        writes.push_back({kind::kDbInstance, id, doc});
      }
      if (ctx_->store->Get(kind::kDbSnapshot, snapshot_id))
        writes.push_back({kind::kDbSnapshot, snapshot_id, std::nullopt});
      (void)ctx_->store->Commit(writes);  // best effort: the next pass sees Running false or retries
    }
  });
}

Status DbBackupController::RunBackup(const std::string& id, const Snapshot& s, const std::string& snapshot_id,
                                     int64_t start) {
  const Json& inst = *s.inst;
  // From the standby when there is one running, so the primary does not pause.
  const Json* source = s.Server(s.Standby());
  if (!source || !source->value("Ready", false) || !supervisor_.Running(*source)) source = s.Server(s.Primary());
  if (!source) return Status::Internal("db instance " + id + " has no server to back up");
  const std::string store = s.Store(*ctx_);
  const std::string folder = store + "/backups/" + BackupFolderName(snapshot_id);

  Json snap = {{"DBSnapshotIdentifier", snapshot_id},
               {"DBInstanceIdentifier", id},
               {"DbiResourceId", Str(inst, "DbiResourceId")},
               {"SnapshotType", "automated"},
               {"Status", "creating"},
               {"PercentProgress", 0},
               {"SnapshotCreateTime", start},
               {"OriginalSnapshotCreateTime", start},
               {"InstanceCreateTime", inst.value("InstanceCreateTime", int64_t{0})},
               {"Engine", Str(inst, "Engine")},
               {"EngineVersion", Str(inst, "EngineVersion")},
               {"AllocatedStorage", inst.value("AllocatedStorage", int64_t{20})},
               {"StorageType", Str(inst, "StorageType")},
               {"Port", s.Port()},
               {"AvailabilityZone", Str(inst, "AvailabilityZone")},
               {"MasterUsername", Str(inst, "MasterUsername")},
               {"DBInstanceClass", Str(inst, "DBInstanceClass")},
               {"StorePath", folder}};
  {
    std::lock_guard lock(*ctx_->mu);
    auto current = ctx_->store->Get(kind::kDbInstance, id);
    if (!current) return Status::Ok();
    Json doc = *current;
    doc["Backup"]["Running"] = true;
    doc["DBInstanceStatus"] = "backing-up";
    std::vector<StoreWrite> writes = {{kind::kDbInstance, id, doc}, {kind::kDbSnapshot, snapshot_id, snap}};
    AddEvent(*ctx_, "db-instance", id, "0001", "Backing up DB instance", {"backup"}, &writes);
    AP_RETURN_IF_ERROR(ctx_->store->Commit(writes));
  }

  std::error_code ec;
  fs::create_directories(folder, ec);
  if (ec) return Status::Internal("cannot create " + folder + ": " + ec.message());
  ServerConfig cfg;
  cfg.dir = DbInstanceDir(*ctx_, id) + "/" + Str(*source, "Name");
  cfg.address = Str(*source, "Address");
  cfg.port = s.Port();
  const std::string options = DbInstanceDir(*ctx_, id) + "/backup-client.cnf";
  AP_RETURN_IF_ERROR(WriteClientOptions(options, cfg.address, cfg.port, s.Accounts()));
  const std::string log = DbInstanceDir(*ctx_, id) + "/backup.log";
  Result<std::string> taken = Status::Internal("not run");
  {
    // PercentProgress moves with the bytes copied (backup_progress.h): 0-90 %, then 100 when it is recorded.
    ProgressReporter progress(folder + "/data", ExpectedBackupBytes(DataDir(cfg)), 0, 90, [this, snapshot_id](int pct) {
      std::lock_guard lock(*ctx_->mu);
      auto doc = ctx_->store->Get(kind::kDbSnapshot, snapshot_id);
      if (!doc || (*doc)["Status"] != "creating" || doc->value("PercentProgress", 0) >= pct) return;
      (*doc)["PercentProgress"] = pct;
      (void)ctx_->store->Commit({{kind::kDbSnapshot, snapshot_id, *doc}});  // best effort: only a coarser display
    });
    taken = TakeBackup(cfg, options, folder + "/data", log);
  }
  AP_ASSIGN_OR_RETURN(auto gtid, std::move(taken));
  Manifest m;
  m.snapshot_id = snapshot_id;
  m.snapshot_type = "automated";
  m.db_instance_identifier = id;
  m.dbi_resource_id = Str(inst, "DbiResourceId");
  m.engine = Str(inst, "Engine");
  m.engine_version = Str(inst, "EngineVersion");
  m.db_instance_class = Str(inst, "DBInstanceClass");
  m.master_username = Str(inst, "MasterUsername");
  m.availability_zone = Str(inst, "AvailabilityZone");
  m.port = s.Port();
  m.allocated_storage = inst.value("AllocatedStorage", int64_t{20});
  m.source_server = Str(*source, "Name");
  m.gtid = gtid;
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
  AP_RETURN_IF_ERROR(lb::WriteFileAtomically(folder + "/manifest.json", ManifestToJson(m).dump(2) + "\n", 0600));
  Json about = {{"DBInstanceIdentifier", id},
                {"DbiResourceId", m.dbi_resource_id},
                {"Engine", m.engine},
                {"EngineVersion", m.engine_version},
                {"DBInstanceClass", m.db_instance_class},
                {"Port", m.port},
                {"MasterUsername", m.master_username},
                {"AllocatedStorage", m.allocated_storage},
                {"AvailabilityZone", m.availability_zone},
                {"BackupRetentionPeriod", inst.value("BackupRetentionPeriod", int64_t{0})},
                {"InstanceCreateTime", inst.value("InstanceCreateTime", int64_t{0})}};
  AP_RETURN_IF_ERROR(lb::WriteFileAtomically(store + "/instance.json", about.dump(2) + "\n", 0600));
  spdlog::info("db_instance={} backup {} from {} at GTID {}: {} bytes in {} ms", id, snapshot_id, m.source_server,
               m.gtid, m.size_bytes, m.end_time - m.start_time);

  std::lock_guard lock(*ctx_->mu);
  std::vector<StoreWrite> writes;
  if (auto current = ctx_->store->Get(kind::kDbInstance, id)) {
    Json doc = *current;
    doc["Backup"]["Running"] = false;
    doc["Backup"]["InitialDone"] = true;
    doc["Backup"]["LastAutomatedStart"] = start;
    doc["Backup"].erase("LastError");
    if (Str(doc, "DBInstanceStatus") == "backing-up" && !doc.contains("ManualSnapshot"))
      doc["DBInstanceStatus"] = db_status::kAvailable;
    writes.push_back({kind::kDbInstance, id, doc});
  }
  snap["Status"] = "available";
  snap["PercentProgress"] = 100;
  snap["Gtid"] = m.gtid;
  snap["BackupEndTime"] = m.end_time;
  writes.push_back({kind::kDbSnapshot, snapshot_id, snap});
  AddEvent(*ctx_, "db-instance", id, "0002", "Finished DB instance backup", {"backup"}, &writes);
  AddEvent(*ctx_, "db-snapshot", snapshot_id, "0091", "Automated snapshot created", {"creation"}, &writes);
  return ctx_->store->Commit(writes);
}

}  // namespace autopipe::rds

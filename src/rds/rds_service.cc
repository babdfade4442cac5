#include "rds/rds_service.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <functional>
#include <memory>
#include <optional>
#include <set>

#include "api/form.h"
#include "api/page_token.h"
#include "common/ids.h"
#include "common/time_util.h"
#include "ec2/vpc.h"
#include "rds/db_backups.h"
#include "rds/db_instances.h"
#include "rds/db_snapshots.h"
#include "rds/db_subnet_groups.h"
#include "rds/db_replicas.h"
#include "rds/db_restore.h"
#include "partition/region_client.h"
#include "rds/mariadb.h"

namespace autopipe {
namespace {

using rds::DbInstanceArn;

constexpr size_t kMaxDbInstances = 40;
constexpr int kMaxEndpointIndex = 254;
constexpr size_t kMaxTagsPerResource = 50;
constexpr int64_t kMinRecords = 20;
constexpr int64_t kMaxRecords = 100;
constexpr int64_t kMinStorageGib = 20;
constexpr int64_t kMaxStorageGib = 65536;
constexpr int64_t kMinPort = 1150;
constexpr int64_t kMaxPort = 65535;
constexpr int64_t kDefaultPort = 3306;
constexpr int64_t kMaxBackupRetentionDays = 35;
constexpr int64_t kDefaultEventMinutes = 60;
constexpr int kMinWindowMinutes = 30;
constexpr char kEndpointCounterId[] = "rds-endpoint-counter";
constexpr char kHostedZoneId[] = "Z1PVIF0B656C1W";  // us-west-2's RDS zone; Address is a literal here anyway
constexpr char kCaCertificate[] = "rds-ca-rsa2048-g1";
constexpr int64_t kCaValidTillMillis = 2883772800000;  // 2061-05-20, as ValidTill; only shown, never checked
constexpr char kLicenseModel[] = "general-public-license";
constexpr char kEngineLifecycle[] = "open-source-rds-extended-support";
constexpr char kMaskedPassword[] = "****";
// The server's own accounts and MySQL's built-in ones: never a master user.
const std::set<std::string> kReservedUsernames = {"rdsadmin", "rdsrepladmin", "root", "mysql", "autopipe_admin"};

// ---- errors ---------------------------------------------------------------------------------------------------

Status InvalidParameterCombination(const std::string& message) {
  return Status(400, "InvalidParameterCombination", message);
}

Status DbInstanceNotFound(const std::string& id) {
  return Status(404, "DBInstanceNotFound", "DBInstance " + id + " not found.");
}

Status InvalidState(const std::string& message) { return Status(400, "InvalidDBInstanceState", message); }

Status NotAvailable(const std::string& id) { return InvalidState("DB instance " + id + " is not in available state."); }

// ---- engines and versions -------------------------------------------------------------------------------------

struct EngineVersion {
  const char* engine;
  const char* version;  // the full version a DB instance of it shows
  const char* major;    // "8.0": what "EngineVersion=8.0" stands for
  const char* family;   // parameter group family
  bool is_default;      // the version an instance gets when EngineVersion is not given
};

// What the API offers. Whatever is asked for, the server that runs is Debian's MariaDB 10.11 (ENGINES.md): its
// wire protocol and SQL serve MySQL 5.7 and 8.0 clients for the usual statements.
constexpr std::array<EngineVersion, 6> kEngineVersions = {{
    {"mysql", "5.7.44", "5.7", "mysql5.7", false},
    {"mysql", "8.0.39", "8.0", "mysql8.0", true},
    {"mariadb", "10.4.34", "10.4", "mariadb10.4", false},
    {"mariadb", "10.5.25", "10.5", "mariadb10.5", false},
    {"mariadb", "10.6.19", "10.6", "mariadb10.6", false},
    {"mariadb", "10.11.9", "10.11", "mariadb10.11", true},
}};

constexpr char kWhatRuns[] = "served by MariaDB 10.11, Debian's mariadb-server package";

const EngineVersion* MajorOf(const std::string& engine, const std::string& version) {
  for (const auto& v : kEngineVersions) {
    if (engine != v.engine) continue;
    const std::string major = v.major;
    if (version == major || (version.compare(0, major.size() + 1, major + ".") == 0)) return &v;
  }
  return nullptr;
}

bool AllDigits(const std::string& s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isdigit(c) != 0; });
}

// The full version an instance of `engine` gets for the EngineVersion given (or not): a major ("8.0") takes its
// listed version, a full one ("8.0.35") is kept as given when its major is offered.
Result<std::string> ResolveEngineVersion(const std::string& engine, const std::optional<std::string>& given) {
  if (!given || given->empty()) {  // an empty EngineVersion (as Terraform sends one left unset) is not given
    for (const auto& v : kEngineVersions) {
      if (engine == v.engine && v.is_default) return std::string(v.version);
    }
  }
  const EngineVersion* major = MajorOf(engine, *given);
  if (major) {
    if (*given == major->major) return std::string(major->version);
    const std::string patch = given->substr(std::string(major->major).size() + 1);
    if (AllDigits(patch) && patch.size() <= 3) return *given;
  }
  return InvalidParameterCombination("Cannot find version " + *given + " for " + engine);
}

const EngineVersion& VersionInfo(const std::string& engine, const std::string& version) {
  const EngineVersion* v = MajorOf(engine, version);
  return v ? *v : kEngineVersions[1];
}

std::string ParameterGroupName(const Json& db) {
  return std::string("default.") + VersionInfo(db["Engine"], db["EngineVersion"]).family;
}

std::string OptionGroupName(const Json& db) {
  std::string major = VersionInfo(db["Engine"], db["EngineVersion"]).major;
  std::replace(major.begin(), major.end(), '.', '-');
  return "default:" + db["Engine"].get<std::string>() + "-" + major;
}

// ---- scalar validation ----------------------------------------------------------------------------------------

std::string Lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

// RDS identifiers: 1..max letters, digits and hyphens; a letter first; no hyphen last or twice in a row.
bool ValidIdentifier(const std::string& s, size_t max) {
  if (s.empty() || s.size() > max || !std::isalpha(static_cast<unsigned char>(s.front())) || s.back() == '-' ||
      s.find("--") != std::string::npos) {
    return false;
  }
  return std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isalnum(c) || c == '-'; });
}

Status InvalidIdentifier(const std::string& parameter) {
  return Status::InvalidParameterValue(
      "The parameter " + parameter +
      " is not a valid identifier. Identifiers must begin with a letter; must contain only ASCII letters, digits, "
      "and hyphens; and must not end with a hyphen or contain two consecutive hyphens.");
}

Result<std::string> RequiredIdentifier(const Params& p, const std::string& parameter = "DBInstanceIdentifier") {
  auto id = p.Str(parameter);
  if (!id || id->empty()) {
    return Status::InvalidParameterValue("The parameter " + parameter + " must be provided and must not be blank.");
  }
  return Lower(*id);
}

// MySQL and MariaDB names (master user, database): a letter first, then letters, digits and underscores.
bool ValidSqlName(const std::string& s, size_t max) {
  if (s.empty() || s.size() > max || !std::isalpha(static_cast<unsigned char>(s.front()))) return false;
  return std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isalnum(c) || c == '_'; });
}

Status CheckMasterUsername(const std::optional<std::string>& user) {
  if (!user || user->empty()) {
    return Status::InvalidParameterValue("The parameter MasterUsername must be provided and must not be blank.");
  }
  if (!ValidSqlName(*user, 16)) {
    return Status::InvalidParameterValue(
        "The parameter MasterUsername is not a valid identifier. It must be 1 to 16 letters, digits or "
        "underscores, beginning with a letter.");
  }
  if (kReservedUsernames.count(Lower(*user))) {
    return Status::InvalidParameterValue("MasterUsername " + *user +
                                         " cannot be used as it is a reserved word used by the engine");
  }
  return Status::Ok();
}

// MySQL's master password rules. The message never repeats the password.
Status CheckMasterPassword(const std::optional<std::string>& password) {
  if (!password || password->empty()) {
    return Status::InvalidParameterValue("The parameter MasterUserPassword must be provided and must not be blank.");
  }
  if (password->size() < 8) {
    return Status::InvalidParameterValue(
        "The parameter MasterUserPassword is not a valid password because it is shorter than 8 characters.");
  }
  if (password->size() > 41) {
    return Status::InvalidParameterValue(
        "The parameter MasterUserPassword is not a valid password because it is longer than 41 characters.");
  }
  for (unsigned char c : *password) {
    if (c <= 0x20 || c >= 0x7F || c == '/' || c == '"' || c == '@') {
      return Status::InvalidParameterValue(
          "The parameter MasterUserPassword is not a valid password. Only printable ASCII characters besides "
          "'/', '@', '\"', ' ' may be used.");
    }
  }
  return Status::Ok();
}

Status CheckStorage(const std::string& engine, const std::string& storage_type, int64_t gib) {
  if (gib < kMinStorageGib || gib > kMaxStorageGib) {
    return InvalidParameterCombination("Invalid storage size for engine name " + engine + " and storage type " +
                                       storage_type + ": " + std::to_string(gib));
  }
  return Status::Ok();
}

Status CheckPort(int64_t port) {
  if (port < kMinPort || port > kMaxPort) {
    return Status::InvalidParameterValue("Invalid port " + std::to_string(port) + ". The port must be from " +
                                         std::to_string(kMinPort) + " to " + std::to_string(kMaxPort) + ".");
  }
  return Status::Ok();
}

Status CheckBackupRetention(int64_t days) {
  if (days < 0 || days > kMaxBackupRetentionDays) {
    return Status::InvalidParameterValue("Invalid backup retention period: " + std::to_string(days) +
                                         ". The backup retention period must be from 0 to 35 days.");
  }
  return Status::Ok();
}

Status UnknownClass(const std::string& cls, const std::string& engine, const std::string& version) {
  return InvalidParameterCombination(
      "RDS does not support creating a DB instance with the following combination: DBInstanceClass=" + cls +
      ", Engine=" + engine + ", EngineVersion=" + version + ", LicenseModel=" + kLicenseModel +
      ". For supported combinations of instance class and database engine version, see "
      "DescribeOrderableDBInstanceOptions.");
}

Result<std::optional<int64_t>> OptionalInt(const Params& p, const std::string& name) {
  auto v = p.Int(name);
  if (!v.ok()) {
    return Status::InvalidParameterValue("Invalid value for parameter " + name + ": " + p.Str(name).value_or(""));
  }
  return *v;
}

Result<std::optional<bool>> OptionalBool(const Params& p, const std::string& name) {
  auto v = p.Bool(name);
  if (!v.ok()) {
    return Status::InvalidParameterValue("Invalid value for parameter " + name + ": " + p.Str(name).value_or(""));
  }
  return *v;
}

// ---- windows --------------------------------------------------------------------------------------------------

constexpr int kMinutesPerDay = 24 * 60;
constexpr int kMinutesPerWeek = 7 * kMinutesPerDay;
constexpr std::array<const char*, 7> kDays = {"mon", "tue", "wed", "thu", "fri", "sat", "sun"};

// "hh24:mi" -> minutes of the day.
std::optional<int> ParseClock(const std::string& s) {
  if (s.size() != 5 || s[2] != ':' || !AllDigits(s.substr(0, 2)) || !AllDigits(s.substr(3, 2))) return std::nullopt;
  int h = std::stoi(s.substr(0, 2));
  int m = std::stoi(s.substr(3, 2));
  if (h > 23 || m > 59) return std::nullopt;
  return h * 60 + m;
}

// "ddd:hh24:mi" -> minutes of the week (Monday 00:00 = 0).
std::optional<int> ParseWeekClock(const std::string& s) {
  if (s.size() != 9 || s[3] != ':') return std::nullopt;
  auto day = std::find(kDays.begin(), kDays.end(), Lower(s.substr(0, 3)));
  auto clock = ParseClock(s.substr(4));
  if (day == kDays.end() || !clock) return std::nullopt;
  return static_cast<int>(day - kDays.begin()) * kMinutesPerDay + *clock;
}

struct Window {
  int start;   // minutes from the period's start
  int length;  // minutes
};

std::optional<std::pair<std::string, std::string>> SplitRange(const std::string& s) {
  size_t dash = s.find('-');
  if (dash == std::string::npos || s.find('-', dash + 1) != std::string::npos) return std::nullopt;
  return std::make_pair(s.substr(0, dash), s.substr(dash + 1));
}

Result<Window> ParseBackupWindow(const std::string& s) {
  auto invalid = Status::InvalidParameterValue(
      "The parameter PreferredBackupWindow is not valid: " + s + ". It must be in the format hh24:mi-hh24:mi (UTC).");
  auto range = SplitRange(s);
  if (!range) return invalid;
  auto a = ParseClock(range->first);
  auto b = ParseClock(range->second);
  if (!a || !b) return invalid;
  int length = ((*b - *a) % kMinutesPerDay + kMinutesPerDay) % kMinutesPerDay;
  if (length < kMinWindowMinutes) {
    return Status::InvalidParameterValue("The backup window must be at least 30 minutes.");
  }
  return Window{*a, length};
}

Result<Window> ParseMaintenanceWindow(const std::string& s) {
  auto invalid = Status::InvalidParameterValue("The parameter PreferredMaintenanceWindow is not valid: " + s +
                                               ". It must be in the format ddd:hh24:mi-ddd:hh24:mi (UTC).");
  auto range = SplitRange(s);
  if (!range) return invalid;
  auto a = ParseWeekClock(range->first);
  auto b = ParseWeekClock(range->second);
  if (!a || !b) return invalid;
  int length = ((*b - *a) % kMinutesPerWeek + kMinutesPerWeek) % kMinutesPerWeek;
  if (length < kMinWindowMinutes) {
    return Status::InvalidParameterValue("The maintenance window must be at least 30 minutes.");
  }
  return Window{*a, length};
}

// Whether the daily backup window meets the weekly maintenance window on any day.
bool Overlap(const Window& backup, const Window& maintenance) {
  std::vector<bool> busy(kMinutesPerWeek, false);
  for (int i = 0; i < maintenance.length; ++i) busy[(maintenance.start + i) % kMinutesPerWeek] = true;
  for (int day = 0; day < 7; ++day) {
    for (int i = 0; i < backup.length; ++i) {
      if (busy[(day * kMinutesPerDay + backup.start + i) % kMinutesPerWeek]) return true;
    }
  }
  return false;
}

std::string TwoDigits(int n) { return (n < 10 ? "0" : "") + std::to_string(n); }
std::string ClockText(int minutes) { return TwoDigits(minutes / 60) + ":" + TwoDigits(minutes % 60); }

// A 30-minute backup slot in 06:00-14:00 UTC (us-west-2's regional block) and a maintenance slot outside it,
// picked from the identifier so that one instance always gets the same ones.
std::pair<std::string, std::string> DefaultWindows(const std::string& id) {
  const size_t h = std::hash<std::string>{}(id);
  const int backup_start = 6 * 60 + static_cast<int>(h % 15) * 30;
  const int maintenance_start = 15 * 60 + static_cast<int>((h / 15) % 15) * 30;
  const char* day = kDays[(h / 225) % 7];
  return {ClockText(backup_start) + "-" + ClockText(backup_start + 30),
          std::string(day) + ":" + ClockText(maintenance_start) + "-" + day + ":" +
              ClockText(maintenance_start + 30)};
}

// ---- tags and security groups ---------------------------------------------------------------------------------

Result<Json> ReadTags(const Params& p) {
  Json tags = Json::array();
  for (const auto& t : p.StructList("Tags", "Tag")) {
    auto key = t.find("Key");
    if (key == t.end() || key->second.empty() || key->second.size() > 128) {
      return Status::InvalidParameterValue("Tag keys must be 1 to 128 characters long.");
    }
    if (Lower(key->second).compare(0, 4, "aws:") == 0 || Lower(key->second).compare(0, 4, "rds:") == 0) {
      return Status::InvalidParameterValue("Tag keys cannot start with aws: or rds: (" + key->second + ").");
    }
    auto value = t.find("Value");
    std::string v = value == t.end() ? "" : value->second;
    if (v.size() > 256) return Status::InvalidParameterValue("Tag values can be at most 256 characters long.");
    // A key given twice keeps its last value, as RDS does.
    auto same = std::find_if(tags.begin(), tags.end(), [&](const Json& e) { return e["Key"] == key->second; });
    if (same != tags.end()) (*same)["Value"] = v;
    else tags.push_back({{"Key", key->second}, {"Value", v}});
  }
  return tags;
}

Status MergeTags(Json& db, const Json& tags) {
  Json& existing = db["Tags"];
  for (const auto& t : tags) {
    auto it = std::find_if(existing.begin(), existing.end(), [&](const Json& e) { return e["Key"] == t["Key"]; });
    if (it == existing.end()) existing.push_back(t);
    else (*it)["Value"] = t["Value"];
  }
  if (existing.size() > kMaxTagsPerResource) {
    return Status(400, "TagQuotaPerResourceExceeded",
                  "A resource can have at most 50 tags; this request would give it " +
                      std::to_string(existing.size()) + ".");
  }
  return Status::Ok();
}

bool ValidSecurityGroupId(const std::string& id) {
  if (id.compare(0, 3, "sg-") != 0) return false;
  const std::string hex = id.substr(3);
  return (hex.size() == 8 || hex.size() == 17) &&
         std::all_of(hex.begin(), hex.end(), [](unsigned char c) { return std::isdigit(c) || (c >= 'a' && c <= 'f'); });
}

Result<std::optional<Json>> ReadSecurityGroups(const Params& p) {
  auto ids = p.List("VpcSecurityGroupIds", "VpcSecurityGroupId");
  if (ids.empty() && !p.Has("VpcSecurityGroupIds")) return std::optional<Json>();
  Json out = Json::array();
  for (const auto& id : ids) {
    if (!ValidSecurityGroupId(id)) {
      return Status::InvalidParameterValue("Invalid security group id " + id +
                                           ": it must be sg- followed by 8 or 17 hexadecimal digits.");
    }
    if (std::find(out.begin(), out.end(), id) == out.end()) out.push_back(id);
  }
  return std::optional<Json>(std::move(out));
}

// ---- filters and pages ----------------------------------------------------------------------------------------

// Filters.Filter.N {Name, Values.Value.M} -> name -> values. Names outside `known` are refused.
Result<std::map<std::string, std::set<std::string>>> ReadFilters(const Params& p, const std::set<std::string>& known) {
  std::map<std::string, std::set<std::string>> out;
  for (const auto& f : p.StructList("Filters", "Filter")) {
    auto name = f.find("Name");
    if (name == f.end() || name->second.empty()) {
      return Status::InvalidParameterValue("The parameter Filters.Filter.Name must be provided.");
    }
    if (!known.count(name->second)) return Status::InvalidParameterValue("Unrecognized filter name: " + name->second);
    Params values(f, WireProtocol::kQuery);
    auto list = values.List("Values", "Value");
    if (list.empty()) {
      return Status::InvalidParameterValue("The parameter Filters.Filter.Values must be provided for filter " +
                                           name->second + ".");
    }
    out[name->second].insert(list.begin(), list.end());
  }
  return out;
}

struct Page {
  size_t offset = 0;
  size_t limit = kMaxRecords;
};

// MaxRecords 20..max_records (100 for most calls, 1000 for DescribeOrderableDBInstanceOptions), in RDS's words.
Result<Page> ReadPage(const Params& p, const std::string& scope, int64_t max_records = kMaxRecords) {
  Page page;
  AP_ASSIGN_OR_RETURN(auto max, OptionalInt(p, "MaxRecords"));
  if (max) {
    if (*max < kMinRecords || *max > max_records) {
      return rds::MaxRecordsOutOfRange(*max, kMinRecords, max_records);
    }
    page.limit = static_cast<size_t>(*max);
  }
  if (auto marker = p.Str("Marker"); marker && !marker->empty()) {
    auto offset = DecodePageToken(scope, *marker);
    if (!offset) return Status::InvalidParameterValue("Invalid Marker: " + *marker);
    page.offset = static_cast<size_t>(*offset);
  }
  return page;
}

// Puts `items[page]` under `field` and a Marker when more follow.
Json PageOf(const std::string& scope, const std::string& field, Json items, const Page& page) {
  Json out = Json::object();
  Json slice = Json::array();
  for (size_t i = page.offset; i < items.size() && slice.size() < page.limit; ++i) slice.push_back(std::move(items[i]));
  if (page.offset + page.limit < items.size()) out["Marker"] = EncodePageToken(scope, page.offset + page.limit);
  out[field] = std::move(slice);
  return out;
}

// ---- rendering ------------------------------------------------------------------------------------------------

// What the controller is still doing counts as pending too, as in RDS: a Multi-AZ change being applied shows
// PendingModifiedValues.MultiAZ until the standby is there.
Json PendingXml(const Json& db) {
  Json pending = db.value("PendingModifiedValues", Json::object());
  const Json& spec = db["Spec"];
  if (spec.contains("MultiAZ") && spec["MultiAZ"] != db["MultiAZ"] && !pending.contains("MultiAZ")) {
    pending["MultiAZ"] = spec["MultiAZ"];
  }
  if (spec.contains("DBInstanceClass") && spec["DBInstanceClass"] != db["DBInstanceClass"] &&
      !pending.contains("DBInstanceClass")) {
    pending["DBInstanceClass"] = spec["DBInstanceClass"];
  }
  JsonObject out;
  for (const char* key : {"DBInstanceClass", "AllocatedStorage", "MasterUserPassword", "Port",
                          "BackupRetentionPeriod", "MultiAZ", "EngineVersion", "StorageType"}) {
    if (pending.contains(key)) out.Add(key, key == std::string("MasterUserPassword") ? Json(kMaskedPassword) : pending[key]);
  }
  return out.Take();
}

// ReadReplicaDBInstanceIdentifiers: identifiers of this region's replicas, ARNs of other regions'.
Json ReadReplicaIds(const Json& db) {
  Json ids = Json::array();
  for (const auto& r : db.value("ReadReplicas", Json::array())) ids.push_back(r.value("Id", ""));
  return ids;
}

// StatusInfos of a read replica: its replication, as the controller last saw it.
Json StatusInfos(const Json& db) {
  Json infos = Json::array();
  if (!db.contains("ReadReplica")) return infos;
  const Json& rr = db["ReadReplica"];
  const std::string state = rr.value("State", "");
  if (state == rds::replica_state::kSeeding || state == rds::replica_state::kPromoting) return infos;
  Json info = {{"StatusType", "read replication"}};
  if (state == rds::replica_state::kFailed) {
    info["Normal"] = false;
    info["Status"] = "error";
    info["Message"] = rr.value("Error", "");
  } else {
    const Json repl = db.value("Status", Json::object()).value("Replication", Json::object());
    const std::string st = repl.value("State", "replicating");
    info["Normal"] = st == "replicating";
    info["Status"] = st;
    if (!repl.value("Message", "").empty()) info["Message"] = repl["Message"];
  }
  infos.push_back(std::move(info));
  return infos;
}

Json DbInstanceXml(const RegionContext& ctx, const Json& db) {
  const std::string status = db["DBInstanceStatus"];
  Json groups = Json::array();
  for (const auto& sg : db.value("VpcSecurityGroupIds", Json::array())) {
    groups.push_back({{"VpcSecurityGroupId", sg}, {"Status", "active"}});
  }
  JsonObject out(64);
  out.Add("DBInstanceIdentifier", db["DBInstanceIdentifier"])
      .Add("DBInstanceClass", db["DBInstanceClass"])
      .Add("Engine", db["Engine"])
      .Add("DBInstanceStatus", status)
      .Add("MasterUsername", db["MasterUsername"]);
  if (db.contains("DBName")) out.Add("DBName", db["DBName"]);
  // As in RDS, the endpoint is shown once the instance has been created.
  if (status != rds::db_status::kCreating && db.contains("Endpoint")) {
    out.Add("Endpoint", {{"Address", db["Endpoint"]["Address"]},
                         {"Port", db["Endpoint"]["Port"]},
                         {"HostedZoneId", kHostedZoneId}});
  }
  out.Add("AllocatedStorage", db["AllocatedStorage"])
      .Add("InstanceCreateTime", IsoTimeMillis(db["InstanceCreateTime"].get<int64_t>()))
      .Add("PreferredBackupWindow", db["PreferredBackupWindow"])
      .Add("BackupRetentionPeriod", db["BackupRetentionPeriod"])
      .Add("DBSecurityGroups", Json::array())
      .Add("VpcSecurityGroups", std::move(groups))
      .Add("DBParameterGroups",
           Json::array({{{"DBParameterGroupName", ParameterGroupName(db)}, {"ParameterApplyStatus", "in-sync"}}}))
      .Add("AvailabilityZone", db["AvailabilityZone"])
      .Add("DBSubnetGroup", rds::DbSubnetGroupOfInstance(ctx, db))
      .Add("PreferredMaintenanceWindow", db["PreferredMaintenanceWindow"])
      .Add("PendingModifiedValues", PendingXml(db));
  // Only once a backup exists (the backup controller records it).
  if (db.contains("LatestRestorableTime")) {
    out.Add("LatestRestorableTime", IsoTimeMillis(db["LatestRestorableTime"].get<int64_t>()));
  }
  out.Add("MultiAZ", db["MultiAZ"])
      .Add("EngineVersion", db["EngineVersion"])
      .Add("AutoMinorVersionUpgrade", db.value("AutoMinorVersionUpgrade", true))
      .Add("ReadReplicaDBInstanceIdentifiers", ReadReplicaIds(db))
      .Add("LicenseModel", kLicenseModel)
      .Add("OptionGroupMemberships",
           Json::array({{{"OptionGroupName", OptionGroupName(db)}, {"Status", "in-sync"}}}));
  if (db.contains("ReadReplica")) out.Add("ReadReplicaSourceDBInstanceIdentifier", db["ReadReplica"].value("Display", ""));
  if (db["MultiAZ"].get<bool>() && db.contains("SecondaryAvailabilityZone")) {
    out.Add("SecondaryAvailabilityZone", db["SecondaryAvailabilityZone"]);
  }
  if (auto infos = StatusInfos(db); !infos.empty()) out.Add("StatusInfos", std::move(infos));
  out.Add("PubliclyAccessible", db.value("PubliclyAccessible", false))
      .Add("StorageType", db["StorageType"])
      .Add("DbInstancePort", 0)
      .Add("StorageEncrypted", false)
      .Add("DbiResourceId", db["DbiResourceId"])
      .Add("CACertificateIdentifier", kCaCertificate)
      .Add("DomainMemberships", Json::array())
      .Add("CopyTagsToSnapshot", db.value("CopyTagsToSnapshot", false))
      .Add("MonitoringInterval", 0)
      .Add("DBInstanceArn", db["DBInstanceArn"])
      .Add("IAMDatabaseAuthenticationEnabled", false)
      .Add("PerformanceInsightsEnabled", false)
      .Add("DeletionProtection", db.value("DeletionProtection", false))
      .Add("AssociatedRoles", Json::array())
      .Add("TagList", db.value("Tags", Json::array()))
      .Add("CustomerOwnedIpEnabled", false)
      .Add("BackupTarget", "region")
      .Add("NetworkType", "IPV4")
      .Add("CertificateDetails", {{"CAIdentifier", kCaCertificate}, {"ValidTill", IsoTimeMillis(kCaValidTillMillis)}})
      .Add("DedicatedLogVolume", false)
      .Add("IsStorageConfigUpgradeAvailable", false)
      .Add("EngineLifecycleSupport", kEngineLifecycle);
  return out.Take();
}

Json DbSnapshotXml(const RegionContext& ctx, const Json& snap) {
  JsonObject out;
  const std::string id = snap["DBSnapshotIdentifier"];
  out.Add("DBSnapshotIdentifier", id)
      .Add("DBInstanceIdentifier", snap["DBInstanceIdentifier"])
      .Add("SnapshotCreateTime", IsoTimeMillis(snap.value("SnapshotCreateTime", int64_t{0})))
      .Add("Engine", snap["Engine"])
      .Add("AllocatedStorage", snap["AllocatedStorage"])
      .Add("Status", snap["Status"])
      .Add("Port", snap["Port"])
      .Add("AvailabilityZone", snap["AvailabilityZone"])
      .Add("VpcId", ec2::DefaultVpcId(*ctx.catalog))  // every DB instance is in the region's one VPC
      .Add("InstanceCreateTime", IsoTimeMillis(snap.value("InstanceCreateTime", int64_t{0})))
      .Add("MasterUsername", snap["MasterUsername"])
      .Add("EngineVersion", snap["EngineVersion"])
      .Add("LicenseModel", kLicenseModel)
      .Add("SnapshotType", snap["SnapshotType"])
      .Add("OptionGroupName", OptionGroupName(snap))
      .Add("PercentProgress", snap.value("PercentProgress", 0))
      .Add("StorageType", snap["StorageType"])
      .Add("Encrypted", false)
      .Add("DBSnapshotArn", ctx.Arn("rds", "snapshot:" + id))
      .Add("IAMDatabaseAuthenticationEnabled", false)
      .Add("ProcessorFeatures", Json::array())
      .Add("DbiResourceId", snap["DbiResourceId"])
      .Add("TagList", snap.value("TagList", Json::array()))
      .Add("OriginalSnapshotCreateTime", IsoTimeMillis(snap.value("OriginalSnapshotCreateTime", int64_t{0})))
      .Add("SnapshotTarget", "region")
      .Add("DedicatedLogVolume", false);
  if (snap.contains("SourceDBSnapshotIdentifier")) {
    out.Add("SourceDBSnapshotIdentifier", snap["SourceDBSnapshotIdentifier"]).Add("SourceRegion", ctx.catalog->region());
  }
  return out.Take();
}

Json EventXml(const Json& e) {
  JsonObject out;
  out.Add("SourceIdentifier", e["SourceIdentifier"])
      .Add("SourceType", e["SourceType"])
      .Add("Message", e["Message"])
      .Add("EventCategories", e["EventCategories"])
      .Add("Date", IsoTimeMillis(e["Date"].get<int64_t>()))
      .Add("SourceArn", e["SourceArn"]);
  return out.Take();
}

Json EngineVersionXml(const EngineVersion& v) {
  const bool mysql = std::string(v.engine) == "mysql";
  const std::string name = mysql ? "MySQL " : "MariaDB ";
  JsonObject out;
  out.Add("Engine", v.engine)
      .Add("MajorEngineVersion", v.major)
      .Add("EngineVersion", v.version)
      .Add("DBParameterGroupFamily", v.family)
      .Add("DBEngineDescription", mysql ? "MySQL Community Edition" : "MariaDb Community Edition")
      .Add("DBEngineVersionDescription", name + v.version + " (" + kWhatRuns + ")")
      .Add("ValidUpgradeTarget", Json::array())
      .Add("ExportableLogTypes", Json::array({"audit", "error", "general", "slowquery"}))
      .Add("SupportsLogExportsToCloudwatchLogs", false)
      .Add("SupportsReadReplica", true)
      .Add("SupportedEngineModes", Json::array({"provisioned"}))
      .Add("SupportedFeatureNames", Json::array())
      .Add("Status", "available")
      .Add("SupportsParallelQuery", false)
      .Add("SupportsGlobalDatabases", false)
      .Add("SupportsBabelfish", false)
      .Add("SupportsLimitlessDatabase", false)
      .Add("SupportsCertificateRotationWithoutRestart", false)
      .Add("SupportedCACertificateIdentifiers", Json::array({kCaCertificate}))
      .Add("SupportsLocalWriteForwarding", false)
      .Add("SupportsIntegrations", false);
  return out.Take();
}

// ---- placement (rds/db_subnet_groups.h) -----------------------------------------------------------------------

// Where a new DB instance goes: its DB subnet group (DBSubnetGroupName, "default" when not given) and its zone (the
// one asked for, which must be among the group's zones, else `preferred` when the group has it, else the group's
// first). A standby's zone is the controller's choice, among the group's zones (ZonesForInstance).
struct Placement {
  std::string group;
  std::string az;
};

Result<Placement> PlaceInstance(const RegionContext& ctx, const Params& p, const std::optional<std::string>& az,
                                const std::string& preferred) {
  Placement out;
  auto name = p.Str("DBSubnetGroupName");
  AP_ASSIGN_OR_RETURN(auto group, rds::LoadDbSubnetGroup(ctx, name && !name->empty() ? *name : "default"));
  out.group = group["DBSubnetGroupName"];
  const auto zones = rds::SubnetGroupZones(ctx, group);
  if (zones.empty()) return Status::Internal("DB subnet group " + out.group + " has no subnet");
  auto has = [&](const std::string& z) { return std::find(zones.begin(), zones.end(), z) != zones.end(); };
  if (az && !az->empty()) {
    if (!has(*az)) {
      return InvalidParameterCombination("No subnet of DB subnet group " + out.group +
                                         " is in the requested availability zone " + *az + ".");
    }
    out.az = *az;
  } else {
    out.az = has(preferred) ? preferred : zones.front();
  }
  return out;
}

// ---- the service ----------------------------------------------------------------------------------------------

class RdsService {
 public:
  explicit RdsService(RegionContext* ctx) : ctx_(ctx) {}

  Result<Json> CreateDBInstance(const Params& p);
  Result<Json> DescribeDBInstances(const Params& p);
  Result<Json> ModifyDBInstance(const Params& p);
  Result<Json> RebootDBInstance(const Params& p);
  Result<Json> DeleteDBInstance(const Params& p);
  Result<Json> StopDBInstance(const Params& p);
  Result<Json> StartDBInstance(const Params& p);
  Result<Json> DescribeEvents(const Params& p);
  Result<Json> DescribeDBSnapshots(const Params& p);
  // Manual snapshots: rds/db_snapshots.h validates and records; these render.
  Result<Json> CreateDBSnapshot(const Params& p) {
    AP_ASSIGN_OR_RETURN(auto tags, ReadTags(p));
    AP_ASSIGN_OR_RETURN(auto snap, rds::CreateDbSnapshot(*ctx_, p, tags));
    return Json{{"DBSnapshot", DbSnapshotXml(*ctx_, snap)}};
  }
  Result<Json> CopyDBSnapshot(const Params& p) {
    AP_ASSIGN_OR_RETURN(auto tags, ReadTags(p));
    AP_ASSIGN_OR_RETURN(auto snap, rds::CopyDbSnapshot(*ctx_, p, tags));
    return Json{{"DBSnapshot", DbSnapshotXml(*ctx_, snap)}};
  }
  Result<Json> DeleteDBSnapshot(const Params& p) {
    AP_ASSIGN_OR_RETURN(auto snap, rds::DeleteDbSnapshot(*ctx_, p));
    return Json{{"DBSnapshot", DbSnapshotXml(*ctx_, snap)}};
  }
  Result<Json> DescribeDBInstanceAutomatedBackups(const Params& p);
  // Read replicas (rds/db_replicas.h). CreateDBInstanceReadReplica takes RegionContext::mu itself (it is a kRead
  // operation for the router): a cross-region source is asked over its region's API with no lock held.
  Result<Json> CreateDBInstanceReadReplica(const Params& p);
  Result<Json> PromoteReadReplica(const Params& p);
  // Internal (ours, not AWS's): another region of the partition registers a replica of one of our instances, or
  // forgets one. Signed with the partition's key like any call.
  Result<Json> AutopipeRegisterReadReplica(const Params& p);
  Result<Json> AutopipeDeregisterReadReplica(const Params& p);
  Result<Json> RestoreDBInstanceToPointInTime(const Params& p);
  Result<Json> RestoreDBInstanceFromDBSnapshot(const Params& p);
  Result<Json> DescribeDBEngineVersions(const Params& p);
  Result<Json> DescribeOrderableDBInstanceOptions(const Params& p);
  Result<Json> AddTagsToResource(const Params& p);
  Result<Json> ListTagsForResource(const Params& p);
  Result<Json> RemoveTagsFromResource(const Params& p);
  // DB subnet groups: rds/db_subnet_groups.h validates, records and renders.
  Result<Json> CreateDBSubnetGroup(const Params& p) {
    AP_ASSIGN_OR_RETURN(auto tags, ReadTags(p));
    return rds::CreateDbSubnetGroup(*ctx_, p, tags);
  }
  Result<Json> DescribeDBSubnetGroups(const Params& p) { return rds::DescribeDbSubnetGroups(*ctx_, p); }
  Result<Json> ModifyDBSubnetGroup(const Params& p) { return rds::ModifyDbSubnetGroup(*ctx_, p); }
  Result<Json> DeleteDBSubnetGroup(const Params& p) { return rds::DeleteDbSubnetGroup(*ctx_, p); }

 private:
  Result<Json> Load(const std::string& id) const {
    auto db = ctx_->store->Get(kind::kDbInstance, id);
    if (!db) return DbInstanceNotFound(id);
    return std::move(*db);
  }
  // The instance a tagging call's ResourceName (an RDS DB instance ARN) names.
  Result<Json> LoadByArn(const std::string& arn) const;
  Result<int> AllocateEndpointIndex(std::vector<StoreWrite>* writes) const;
  // A new instance restored from a backup (rds/db_restore.h): its document, with `restore` for the restore
  // controller; `about` is the source as it was (engine, class, port, master user...).
  Result<Json> CreateRestored(const Params& p, const std::string& id, const Json& about, Json restore,
                              const std::string& master_password);
  Status Save(std::vector<StoreWrite> writes) { return ctx_->store->Commit(writes); }
  Result<Json> SaveAndRender(Json db, std::vector<StoreWrite> writes = {}) {
    std::string id = db["DBInstanceIdentifier"];
    Json rendered = DbInstanceXml(*ctx_, db);
    writes.insert(writes.begin(), StoreWrite{kind::kDbInstance, id, std::move(db), std::nullopt});
    AP_RETURN_IF_ERROR(Save(std::move(writes)));
    return Json{{"DBInstance", std::move(rendered)}};
  }

  RegionContext* ctx_;
};

// The next free k of <block>.210.k, round-robin from a counter in the meta kind, skipping every k a DB instance
// (live or being deleted) still holds.
Result<int> RdsService::AllocateEndpointIndex(std::vector<StoreWrite>* writes) const {
  std::set<int> used;
  for (const auto& doc : ctx_->store->List(kind::kDbInstance)) {
    if (doc->contains("EndpointIndex")) used.insert((*doc)["EndpointIndex"].get<int>());
  }
  Json counter = ctx_->store->Get(kind::kMeta, kEndpointCounterId).value_or(Json{{"Next", 1}});
  const int next = counter["Next"].get<int>();
  for (int i = 0; i < kMaxEndpointIndex; ++i) {
    const int k = (next - 1 + i) % kMaxEndpointIndex + 1;
    if (used.count(k)) continue;
    counter["Next"] = k % kMaxEndpointIndex + 1;
    writes->push_back({kind::kMeta, kEndpointCounterId, counter, std::nullopt});
    return k;
  }
  return Status(400, "InstanceQuotaExceeded", "No DB instance endpoint address is free in this region.");
}

Result<Json> RdsService::LoadByArn(const std::string& arn) const {
  const std::string prefix = ctx_->Arn("rds", "db:");
  if (arn.compare(0, prefix.size(), prefix) != 0 || arn.size() == prefix.size()) {
    return Status::InvalidParameterValue("The specified resource name does not match an RDS resource in this "
                                         "region: " + arn);
  }
  return Load(arn.substr(prefix.size()));
}

Result<Json> RdsService::CreateDBInstance(const Params& p) {
  AP_ASSIGN_OR_RETURN(auto id, RequiredIdentifier(p));
  if (!ValidIdentifier(id, 63)) return InvalidIdentifier("DBInstanceIdentifier");
  auto cls = p.Str("DBInstanceClass");
  if (!cls || cls->empty()) {
    return Status::InvalidParameterValue("The parameter DBInstanceClass must be provided and must not be blank.");
  }
  auto engine_in = p.Str("Engine");
  if (!engine_in || engine_in->empty()) {
    return Status::InvalidParameterValue("The parameter Engine must be provided and must not be blank.");
  }
  const std::string engine = Lower(*engine_in);
  if (engine != "mysql" && engine != "mariadb") return Status::InvalidParameterValue("Invalid DB engine: " + *engine_in);
  AP_ASSIGN_OR_RETURN(auto version, ResolveEngineVersion(engine, p.Str("EngineVersion")));
  if (!rds::FindDbInstanceClass(*cls)) return UnknownClass(*cls, engine, version);

  auto user = p.Str("MasterUsername");
  AP_RETURN_IF_ERROR(CheckMasterUsername(user));
  auto password = p.Str("MasterUserPassword");
  AP_RETURN_IF_ERROR(CheckMasterPassword(password));

  const std::string storage_type = Lower(p.Str("StorageType").value_or("gp2"));
  if (storage_type != "gp2" && storage_type != "gp3") {
    return Status(400, "StorageTypeNotSupported", "Invalid storage type: " + storage_type +
                                                      ". This region offers gp2 and gp3.");
  }
  AP_ASSIGN_OR_RETURN(auto storage, OptionalInt(p, "AllocatedStorage"));
  if (!storage) {
    return Status::InvalidParameterValue("The parameter AllocatedStorage must be provided and must not be blank.");
  }
  AP_RETURN_IF_ERROR(CheckStorage(engine, storage_type, *storage));
  AP_ASSIGN_OR_RETURN(auto port, OptionalInt(p, "Port"));
  if (port) AP_RETURN_IF_ERROR(CheckPort(*port));

  AP_ASSIGN_OR_RETURN(auto multi_az_in, OptionalBool(p, "MultiAZ"));
  const bool multi_az = multi_az_in.value_or(false);
  auto az = p.Str("AvailabilityZone");
  if (az && !az->empty()) {
    if (multi_az) {
      return InvalidParameterCombination("Requesting a specific availability zone is not valid for Multi-AZ "
                                         "instances.");
    }
    if (!ctx_->catalog->IsAvailabilityZone(*az)) {
      return Status::InvalidParameterValue("Invalid availability zone: " + *az + ". The Availability Zones of " +
                                           ctx_->catalog->region() + " are " +
                                           ctx_->catalog->availability_zones().front() + " to " +
                                           ctx_->catalog->availability_zones().back() + ".");
    }
  }

  AP_ASSIGN_OR_RETURN(auto retention, OptionalInt(p, "BackupRetentionPeriod"));
  if (retention) AP_RETURN_IF_ERROR(CheckBackupRetention(*retention));
  auto [default_backup, default_maintenance] = DefaultWindows(id);
  const std::string backup_window = p.Str("PreferredBackupWindow").value_or(default_backup);
  const std::string maintenance_window = Lower(p.Str("PreferredMaintenanceWindow").value_or(default_maintenance));
  AP_ASSIGN_OR_RETURN(auto bw, ParseBackupWindow(backup_window));
  AP_ASSIGN_OR_RETURN(auto mw, ParseMaintenanceWindow(maintenance_window));
  if (Overlap(bw, mw)) {
    return Status::InvalidParameterValue("The backup window and maintenance window must not overlap.");
  }

  auto db_name = p.Str("DBName");
  if (db_name && db_name->empty()) db_name.reset();  // Terraform sends DBName="" for "no initial database"
  if (db_name && !ValidSqlName(*db_name, 64)) {
    return Status::InvalidParameterValue("The parameter DBName is not a valid identifier. It must be 1 to 64 "
                                         "letters, digits or underscores, beginning with a letter.");
  }
  AP_ASSIGN_OR_RETURN(auto groups, ReadSecurityGroups(p));
  AP_ASSIGN_OR_RETURN(auto tags, ReadTags(p));
  AP_ASSIGN_OR_RETURN(auto auto_minor, OptionalBool(p, "AutoMinorVersionUpgrade"));
  AP_ASSIGN_OR_RETURN(auto publicly_accessible, OptionalBool(p, "PubliclyAccessible"));
  AP_ASSIGN_OR_RETURN(auto copy_tags, OptionalBool(p, "CopyTagsToSnapshot"));
  AP_ASSIGN_OR_RETURN(auto deletion_protection, OptionalBool(p, "DeletionProtection"));
  AP_ASSIGN_OR_RETURN(auto encrypted, OptionalBool(p, "StorageEncrypted"));
  if (encrypted.value_or(false)) {
    return InvalidParameterCombination("Storage encryption is not offered by this region (StorageEncrypted=true).");
  }

  AP_ASSIGN_OR_RETURN(auto placement, PlaceInstance(*ctx_, p, az, ctx_->catalog->availability_zones().front()));
  if (ctx_->store->Get(kind::kDbInstance, id)) {
    return Status(400, "DBInstanceAlreadyExists", "DB instance already exists");
  }
  if (ctx_->store->Count(kind::kDbInstance) >= kMaxDbInstances) {
    return Status(400, "InstanceQuotaExceeded",
                  "DB instance quota exceeded: this region allows at most " + std::to_string(kMaxDbInstances) +
                      " DB instances.");
  }

  std::vector<StoreWrite> writes;
  AP_ASSIGN_OR_RETURN(auto index, AllocateEndpointIndex(&writes));
  const int64_t the_port = port.value_or(kDefaultPort);
  std::string dbi = RandomHex(26);
  std::transform(dbi.begin(), dbi.end(), dbi.begin(), [](unsigned char c) { return std::toupper(c); });
  dbi = "db-" + dbi;
  Json db = {
      {"DBInstanceIdentifier", id},
      {"DBInstanceClass", *cls},
      {"Engine", engine},
      {"EngineVersion", version},
      {"DBInstanceStatus", rds::db_status::kCreating},
      {"MasterUsername", *user},
  };
  if (db_name) db["DBName"] = *db_name;
  db.update(Json{
      {"AllocatedStorage", *storage},
      {"StorageType", storage_type},
      {"Port", the_port},
      {"MultiAZ", multi_az},
      {"AvailabilityZone", placement.az},
      {"DBSubnetGroupName", placement.group},
      {"PreferredBackupWindow", backup_window},
      {"PreferredMaintenanceWindow", maintenance_window},
      {"BackupRetentionPeriod", retention.value_or(1)},
      {"VpcSecurityGroupIds", groups.value_or(Json::array({ec2::DefaultSecurityGroupId(*ctx_->catalog)}))},
      {"Tags", Json::array()},
      {"DbiResourceId", dbi},
      {"DBInstanceArn", DbInstanceArn(*ctx_, id)},
      {"InstanceCreateTime", ctx_->clock->NowMillis()},
      {"AutoMinorVersionUpgrade", auto_minor.value_or(true)},
      {"PubliclyAccessible", publicly_accessible.value_or(false)},
      {"CopyTagsToSnapshot", copy_tags.value_or(false)},
      {"DeletionProtection", deletion_protection.value_or(false)},
      {"PendingModifiedValues", Json::object()},
      {"Endpoint", {{"Address", ctx_->catalog->address_block() + ".210." + std::to_string(index)},
                    {"Port", the_port}}},
      {"EndpointIndex", index},
      {"Spec",
       {{"MultiAZ", multi_az},
        {"DBInstanceClass", *cls},
        {"Running", true},
        {"Deleting", false},
        {"RebootSeq", 0},
        {"RebootForceFailover", false}}},
  });
  AP_RETURN_IF_ERROR(MergeTags(db, tags));
  writes.push_back({kind::kDbInstanceSecret, id, Json{{"MasterUserPassword", *password}, {"PasswordSeq", 1}},
                    std::nullopt});
  return SaveAndRender(std::move(db), std::move(writes));
}

Result<Json> RdsService::DescribeDBInstances(const Params& p) {
  AP_ASSIGN_OR_RETURN(auto page, ReadPage(p, "DBInstances"));
  AP_ASSIGN_OR_RETURN(auto filters, ReadFilters(p, {"db-instance-id", "engine", "dbi-resource-id",
                                                    "db-cluster-id", "domain"}));
  std::vector<Doc> found;
  if (auto id = p.Str("DBInstanceIdentifier"); id && !id->empty()) {
    std::string key = Lower(*id);
    const std::string arn_prefix = ctx_->Arn("rds", "db:");
    if (id->compare(0, arn_prefix.size(), arn_prefix) == 0) key = Lower(id->substr(arn_prefix.size()));
    auto doc = ctx_->store->GetVersioned(kind::kDbInstance, key).doc;
    if (!doc) return DbInstanceNotFound(*id);
    found.push_back(doc);
  } else {
    found = ctx_->store->List(kind::kDbInstance);
  }
  auto matches = [&](const Json& db) {
    for (const auto& [name, values] : filters) {
      if (name == "db-instance-id") {
        if (!values.count(db["DBInstanceIdentifier"]) && !values.count(db["DBInstanceArn"])) return false;
      } else if (name == "engine") {
        if (!values.count(db["Engine"])) return false;
      } else if (name == "dbi-resource-id") {
        if (!values.count(db["DbiResourceId"])) return false;
      } else {
        return false;  // no clusters or domains here
      }
    }
    return true;
  };
  Json items = Json::array();
  for (const auto& doc : found) {
    if (matches(*doc)) items.push_back(DbInstanceXml(*ctx_, *doc));
  }
  return PageOf("DBInstances", "DBInstances", std::move(items), page);
}

// Modifications and reboots are taken while the instance is available, and also while an automated backup runs
// (backing-up is available with a backup in progress; the backup goes on from the standby).
static bool AcceptsChanges(const Json& db) {
  return db["DBInstanceStatus"] == rds::db_status::kAvailable || db["DBInstanceStatus"] == rds::db_status::kBackingUp;
}

Result<Json> RdsService::ModifyDBInstance(const Params& p) {
  AP_ASSIGN_OR_RETURN(auto id, RequiredIdentifier(p));
  // Every parameter is checked before anything is looked at or changed.
  auto cls = p.Str("DBInstanceClass");
  AP_ASSIGN_OR_RETURN(auto multi_az, OptionalBool(p, "MultiAZ"));
  AP_ASSIGN_OR_RETURN(auto retention, OptionalInt(p, "BackupRetentionPeriod"));
  if (retention) AP_RETURN_IF_ERROR(CheckBackupRetention(*retention));
  AP_ASSIGN_OR_RETURN(auto storage, OptionalInt(p, "AllocatedStorage"));
  auto password = p.Str("MasterUserPassword");
  if (password) AP_RETURN_IF_ERROR(CheckMasterPassword(password));
  auto backup_window = p.Str("PreferredBackupWindow");
  auto maintenance_window = p.Str("PreferredMaintenanceWindow");
  if (backup_window) AP_RETURN_IF_ERROR(ParseBackupWindow(*backup_window).status());
  if (maintenance_window) {
    *maintenance_window = Lower(*maintenance_window);
    AP_RETURN_IF_ERROR(ParseMaintenanceWindow(*maintenance_window).status());
  }
  AP_ASSIGN_OR_RETURN(auto apply_in, OptionalBool(p, "ApplyImmediately"));
  const bool immediately = apply_in.value_or(false);
  AP_ASSIGN_OR_RETURN(auto groups, ReadSecurityGroups(p));
  AP_ASSIGN_OR_RETURN(auto auto_minor, OptionalBool(p, "AutoMinorVersionUpgrade"));
  AP_ASSIGN_OR_RETURN(auto copy_tags, OptionalBool(p, "CopyTagsToSnapshot"));
  AP_ASSIGN_OR_RETURN(auto deletion_protection, OptionalBool(p, "DeletionProtection"));
  if (auto rename = p.Str("NewDBInstanceIdentifier"); rename && Lower(*rename) != id) {
    return Status::InvalidParameterValue("Renaming a DB instance (NewDBInstanceIdentifier) is not supported by this "
                                         "region.");
  }
  if (p.Has("DBPortNumber")) {
    return Status::InvalidParameterValue("Changing the port of a DB instance (DBPortNumber) is not supported by this "
                                         "region.");
  }

  AP_ASSIGN_OR_RETURN(auto db, Load(id));
  if (auto name = p.Str("DBSubnetGroupName"); name && !name->empty()) {
    // Every subnet group of this region is in its one VPC, and RDS moves an instance only to another VPC's.
    AP_ASSIGN_OR_RETURN(auto group, rds::LoadDbSubnetGroup(*ctx_, *name));
    if (group["DBSubnetGroupName"] != db.value("DBSubnetGroupName", std::string(rds::kDefaultSubnetGroup))) {
      return Status(400, "InvalidVPCNetworkStateFault",
                    "The DB subnet group " + group["DBSubnetGroupName"].get<std::string>() +
                        " is in the DB instance's VPC; a DB instance can only move to a DB subnet group of another "
                        "VPC.");
    }
  }
  if (!AcceptsChanges(db)) return InvalidState("Database instance is not in available state.");
  if (retention && *retention == 0 && !db.value("ReadReplicas", Json::array()).empty()) {
    return InvalidParameterCombination("Automated backups cannot be disabled on a DB instance that has read replicas.");
  }
  if (db.contains("ReadReplica") && multi_az.value_or(false)) {
    return InvalidParameterCombination("Multi-AZ read replicas are not offered by this region (MultiAZ=true).");
  }
  const std::string engine = db["Engine"];
  if (cls && !rds::FindDbInstanceClass(*cls)) return UnknownClass(*cls, engine, db["EngineVersion"]);
  if (storage) {
    AP_RETURN_IF_ERROR(CheckStorage(engine, db["StorageType"], *storage));
    if (*storage < db["AllocatedStorage"].get<int64_t>()) {
      return Status::InvalidParameterValue("Invalid storage size: AllocatedStorage cannot be decreased (from " +
                                           std::to_string(db["AllocatedStorage"].get<int64_t>()) + " to " +
                                           std::to_string(*storage) + ").");
    }
  }
  {
    AP_ASSIGN_OR_RETURN(auto bw, ParseBackupWindow(backup_window.value_or(db["PreferredBackupWindow"])));
    AP_ASSIGN_OR_RETURN(auto mw, ParseMaintenanceWindow(maintenance_window.value_or(db["PreferredMaintenanceWindow"])));
    if (Overlap(bw, mw)) {
      return Status::InvalidParameterValue("The backup window and maintenance window must not overlap.");
    }
  }

  std::vector<StoreWrite> writes;
  Json& spec = db["Spec"];
  Json& pending = db["PendingModifiedValues"];
  if (!pending.is_object()) pending = Json::object();
  bool controller_work = false;

  // What waits for the maintenance window unless applied now. Applying now also applies what was pending.
  Json wanted = Json::object();
  if (cls) wanted["DBInstanceClass"] = *cls;
  if (multi_az) wanted["MultiAZ"] = *multi_az;
  if (storage) wanted["AllocatedStorage"] = *storage;
  if (retention) {
    const int64_t current = db["BackupRetentionPeriod"];
    // Between two non-zero periods the change is immediate; turning backups on or off waits unless told.
    if ((current == 0) == (*retention == 0)) {
      db["BackupRetentionPeriod"] = *retention;
      pending.erase("BackupRetentionPeriod");
    } else {
      wanted["BackupRetentionPeriod"] = *retention;
    }
  }
  if (immediately) {
    for (auto it = pending.begin(); it != pending.end(); ++it) {
      if (it.key() != "MasterUserPassword" && !wanted.contains(it.key())) wanted[it.key()] = it.value();
    }
    for (const auto& [key, _] : wanted.items()) pending.erase(key);
  }
  for (const auto& [key, value] : wanted.items()) {
    // The value in force: the wanted state in Spec for what the controller acts on, the field itself otherwise.
    const Json& current = spec.contains(key) ? spec[key] : db[key];
    if (!immediately) {
      if (value == current) pending.erase(key);
      else pending[key] = value;
      continue;
    }
    if (value == current) continue;
    if (key == "DBInstanceClass") {
      spec["DBInstanceClass"] = value;
      controller_work = true;
      rds::AddEvent(*ctx_, "db-instance", id, "0012", "Applying modification to database instance class",
                    {"configuration change"}, &writes);
    } else if (key == "MultiAZ") {
      spec["MultiAZ"] = value;
      controller_work = true;
    } else if (key == "BackupRetentionPeriod") {
      db["BackupRetentionPeriod"] = value;
      if (value.get<int64_t>() == 0) {
        rds::AddEvent(*ctx_, "db-instance", id, "0028", "Disabled automated backups", {"backup"}, &writes);
      } else {
        rds::AddEvent(*ctx_, "db-instance", id, "0032", "Enabled automated backups", {"backup"}, &writes);
      }
    } else {
      db[key] = value;
    }
  }

  if (password) {
    Json secret = ctx_->store->Get(kind::kDbInstanceSecret, id).value_or(Json::object());
    secret["MasterUserPassword"] = *password;
    secret["PasswordSeq"] = secret.value("PasswordSeq", 0) + 1;
    writes.push_back({kind::kDbInstanceSecret, id, std::move(secret), std::nullopt});
    // Applied as soon as possible whatever ApplyImmediately says; the controller drops it once applied.
    pending["MasterUserPassword"] = kMaskedPassword;
    controller_work = true;
  }
  if (backup_window) db["PreferredBackupWindow"] = *backup_window;
  if (maintenance_window) db["PreferredMaintenanceWindow"] = *maintenance_window;
  if (groups) db["VpcSecurityGroupIds"] = *groups;
  if (auto_minor) db["AutoMinorVersionUpgrade"] = *auto_minor;
  if (copy_tags) db["CopyTagsToSnapshot"] = *copy_tags;
  if (deletion_protection) db["DeletionProtection"] = *deletion_protection;
  if (controller_work) db["DBInstanceStatus"] = rds::db_status::kModifying;
  return SaveAndRender(std::move(db), std::move(writes));
}

Result<Json> RdsService::RebootDBInstance(const Params& p) {
  AP_ASSIGN_OR_RETURN(auto id, RequiredIdentifier(p));
  AP_ASSIGN_OR_RETURN(auto force, OptionalBool(p, "ForceFailover"));
  AP_ASSIGN_OR_RETURN(auto db, Load(id));
  if (!AcceptsChanges(db)) return NotAvailable(id);
  if (force.value_or(false) && !db["MultiAZ"].get<bool>()) {
    return InvalidParameterCombination("Cannot force a failover on DB instance " + id +
                                       ": it is not a Multi-AZ instance.");
  }
  Json& spec = db["Spec"];
  spec["RebootSeq"] = spec.value("RebootSeq", 0) + 1;
  spec["RebootForceFailover"] = force.value_or(false);
  db["DBInstanceStatus"] = rds::db_status::kRebooting;
  return SaveAndRender(std::move(db));
}

Result<Json> RdsService::DeleteDBInstance(const Params& p) {
  AP_ASSIGN_OR_RETURN(auto id, RequiredIdentifier(p));
  AP_ASSIGN_OR_RETURN(auto skip_in, OptionalBool(p, "SkipFinalSnapshot"));
  AP_ASSIGN_OR_RETURN(auto delete_backups, OptionalBool(p, "DeleteAutomatedBackups"));
  const bool skip = skip_in.value_or(false);
  auto final_id = p.Str("FinalDBSnapshotIdentifier");
  if (final_id && final_id->empty()) final_id.reset();
  if (skip && final_id) {
    return InvalidParameterCombination("Cannot specify a FinalDBSnapshotIdentifier when SkipFinalSnapshot is true.");
  }
  // A read replica takes no final snapshot, and needs no SkipFinalSnapshot.
  const auto peek = ctx_->store->Get(kind::kDbInstance, id);
  const bool is_replica = peek && peek->contains("ReadReplica");
  if (is_replica && final_id) {
    return InvalidParameterCombination("FinalDBSnapshotIdentifier can not be specified when deleting a replica "
                                       "instance");
  }
  if (!skip && !final_id && !is_replica) {
    return InvalidParameterCombination("FinalDBSnapshotIdentifier is required unless SkipFinalSnapshot is specified.");
  }
  if (final_id && !ValidIdentifier(*final_id, 255)) return InvalidIdentifier("FinalDBSnapshotIdentifier");

  AP_ASSIGN_OR_RETURN(auto db, Load(id));
  if (db["Spec"].value("Deleting", false) || db["DBInstanceStatus"] == rds::db_status::kDeleting) {
    return InvalidState("Instance " + id + " is already being deleted.");
  }
  if (db.value("DeletionProtection", false)) {
    return InvalidParameterCombination("Cannot delete protected DB Instance, please disable deletion protection and "
                                       "try again.");
  }
  // The final snapshot (rds/db_snapshots.h): checked (free, quota, state) before anything changes; the DB
  // instance controller keeps the servers until it is taken.
  std::vector<StoreWrite> writes;
  if (final_id) AP_RETURN_IF_ERROR(rds::AddFinalSnapshot(*ctx_, db, *final_id, &writes));
  Json& spec = db["Spec"];
  spec["Deleting"] = true;
  spec["DeleteAutomatedBackups"] = delete_backups.value_or(true);
  if (final_id) spec["FinalDBSnapshotIdentifier"] = Lower(*final_id);
  db["DBInstanceStatus"] = rds::db_status::kDeleting;
  // Read replicas: a replica leaves its source's list (this region's; another region's is told by the controller);
  // this region's replicas of a deleted source are promoted, as RDS does.
  if (db.contains("ReadReplica") && db["ReadReplica"].value("SourceRegion", "") == ctx_->catalog->region())
    rds::DeregisterReplica(*ctx_, db["ReadReplica"].value("Source", ""), id, &writes);
  for (const auto& r : db.value("ReadReplicas", Json::array())) {
    if (r.value("Region", "") != ctx_->catalog->region()) continue;
    auto replica = ctx_->store->Get(kind::kDbInstance, r.value("Id", ""));
    if (!replica || !replica->contains("ReadReplica")) continue;
    Json promoted = *replica;
    if (promoted["ReadReplica"].value("State", "") == rds::replica_state::kReplicating) {
      promoted["ReadReplica"]["State"] = rds::replica_state::kPromoting;
      promoted["Spec"]["PromoteBackupRetentionPeriod"] = 1;
      promoted["DBInstanceStatus"] = rds::db_status::kModifying;
      rds::AddEvent(*ctx_, "db-instance", r.value("Id", ""), "0057",
                    "Promoting Read Replica to a stand-alone database instance: its source " + id + " is being deleted",
                    {"read replica"}, &writes);
      writes.push_back({kind::kDbInstance, r.value("Id", ""), promoted, std::nullopt});
    }
  }
  // Automated backups kept (DeleteAutomatedBackups=false) are marked so; the backup controller deletes the
  // others, and the instance's backup store, once the instance is gone (rds/db_backups.h).
  if (!delete_backups.value_or(true)) {
    for (const auto& snap : ctx_->store->List(kind::kDbSnapshot)) {
      if ((*snap)["SnapshotType"] != "automated" || (*snap)["DbiResourceId"] != db["DbiResourceId"]) continue;
      Json kept = *snap;
      kept["Retained"] = true;
      // A restore from the retained backups reaches as far as the archive did when the instance was deleted.
      if (db.contains("LatestRestorableTime")) kept["LatestRestorableTime"] = db["LatestRestorableTime"];
      writes.push_back({kind::kDbSnapshot, kept["DBSnapshotIdentifier"], kept, std::nullopt});
    }
  }
  return SaveAndRender(std::move(db), std::move(writes));
}

// ---- read replicas (rds/db_replicas.h) ------------------------------------------------------------------------

Result<Json> RdsService::CreateDBInstanceReadReplica(const Params& p) {
  AP_ASSIGN_OR_RETURN(auto id, RequiredIdentifier(p));
  if (!ValidIdentifier(id, 63)) return InvalidIdentifier("DBInstanceIdentifier");
  auto source_in = p.Str("SourceDBInstanceIdentifier");
  AP_ASSIGN_OR_RETURN(auto source, rds::ParseReplicaSource(source_in.value_or(""), ctx_->catalog->region(), kAccountId));
  if (auto sr = p.Str("SourceRegion"); sr && !sr->empty() && *sr != source.region) {
    return InvalidParameterCombination("SourceRegion " + *sr + " does not match the region of the source DB instance " +
                                       *source_in + ".");
  }
  if (source.cross_region && source_in->rfind("arn:", 0) != 0) {
    return Status::InvalidParameterValue("A cross-region source must be given as a DB instance ARN.");
  }
  auto cls = p.Str("DBInstanceClass");
  if (cls && cls->empty()) cls.reset();
  if (cls && !rds::FindDbInstanceClass(*cls)) return UnknownClass(*cls, "mysql", "(the source's)");
  AP_ASSIGN_OR_RETURN(auto multi_az, OptionalBool(p, "MultiAZ"));
  if (multi_az.value_or(false)) {
    return InvalidParameterCombination("Multi-AZ read replicas are not offered by this region (MultiAZ=true).");
  }
  auto az = p.Str("AvailabilityZone");
  if (az && az->empty()) az.reset();
  if (az && !ctx_->catalog->IsAvailabilityZone(*az)) {
    return Status::InvalidParameterValue("Invalid availability zone: " + *az + ". The Availability Zones of " +
                                         ctx_->catalog->region() + " are " +
                                         ctx_->catalog->availability_zones().front() + " to " +
                                         ctx_->catalog->availability_zones().back() + ".");
  }
  AP_ASSIGN_OR_RETURN(auto groups, ReadSecurityGroups(p));
  AP_ASSIGN_OR_RETURN(auto tags, ReadTags(p));
  AP_ASSIGN_OR_RETURN(auto auto_minor, OptionalBool(p, "AutoMinorVersionUpgrade"));
  AP_ASSIGN_OR_RETURN(auto publicly_accessible, OptionalBool(p, "PubliclyAccessible"));
  AP_ASSIGN_OR_RETURN(auto deletion_protection, OptionalBool(p, "DeletionProtection"));
  AP_ASSIGN_OR_RETURN(auto copy_tags, OptionalBool(p, "CopyTagsToSnapshot"));
  const std::string replica_arn = DbInstanceArn(*ctx_, id);
  // Cross-region: the source's canonical ARN (its identifier lower-cased), which its region compares with its own.
  const std::string display = source.cross_region ? "arn:aws:rds:" + source.region + ":" + kAccountId + ":db:" +
                                                        source.identifier
                                                  : source.identifier;

  auto free_here = [&]() -> Status {
    if (ctx_->store->Get(kind::kDbInstance, id)) return Status(400, "DBInstanceAlreadyExists", "DB instance already exists");
    if (ctx_->store->Count(kind::kDbInstance) >= kMaxDbInstances) {
      return Status(400, "InstanceQuotaExceeded", "DB instance quota exceeded: this region allows at most " +
                                                      std::to_string(kMaxDbInstances) + " DB instances.");
    }
    return Status::Ok();
  };

  // The source's grant: in this region from its document; from another region of the partition over its API.
  rds::ReplicaGrant grant;
  std::optional<partition::RegionEntry> source_region;
  std::unique_lock lock(*ctx_->mu, std::defer_lock);
  std::vector<StoreWrite> writes;
  Placement placement;  // its DB subnet group and zone, as CreateDBInstance places one
  if (!source.cross_region) {
    lock.lock();
    AP_RETURN_IF_ERROR(free_here());
    AP_ASSIGN_OR_RETURN(placement, PlaceInstance(*ctx_, p, az, ctx_->catalog->availability_zones().front()));
    AP_ASSIGN_OR_RETURN(grant, rds::RegisterReplica(*ctx_, source.identifier, id, ctx_->catalog->region(), &writes));
  } else {
    if (!ctx_->partition_dir.empty()) source_region = partition::FindRegion(ctx_->partition_dir, source.region);
    // A region this partition does not have (or one that is down) has no such instance as far as we can tell.
    if (!source_region || !source_region->alive)
      return Status(404, "DBInstanceNotFound", "DBInstance " + *source_in + " not found.");
    {
      std::lock_guard check(*ctx_->mu);
      AP_RETURN_IF_ERROR(free_here());
      AP_RETURN_IF_ERROR(PlaceInstance(*ctx_, p, az, ctx_->catalog->availability_zones().front()).status());
    }
    const partition::KeyPair key{ctx_->partition_access_key_id, ctx_->partition_secret_access_key};
    AP_ASSIGN_OR_RETURN(auto reply,
                        partition::CallRegion(*source_region, key, "rds",
                                              "Action=AutopipeRegisterReadReplica&Version=2014-10-31"
                                              "&SourceDBInstanceIdentifier=" + UriEncode(source.identifier) +
                                                  "&ReplicaArn=" + UriEncode(replica_arn) +
                                                  "&ReplicaRegion=" + UriEncode(ctx_->catalog->region()),
                                              10'000));
    grant.address = partition::FindText(reply, "SourceAddress");
    grant.port = std::atoi(partition::FindText(reply, "SourcePort").c_str());
    grant.user = partition::FindText(reply, "ReplicationUser");
    grant.password = partition::FindText(reply, "ReplicationPassword");
    grant.about = Json::object();
    for (const char* key_name : {"Engine", "EngineVersion", "DBInstanceClass", "StorageType", "MasterUsername", "DBName"}) {
      const std::string v = partition::FindText(reply, key_name);
      if (!v.empty()) grant.about[key_name] = v;
    }
    grant.about["AllocatedStorage"] = std::atoll(partition::FindText(reply, "AllocatedStorage").c_str());
    grant.about["Port"] = grant.port;
    if (grant.address.empty() || grant.user.empty() || grant.password.empty())
      return Status::Internal("region " + source.region + " answered without the source's endpoint");
    lock.lock();
    Status st = free_here();
    if (st.ok()) {
      auto placed = PlaceInstance(*ctx_, p, az, ctx_->catalog->availability_zones().front());
      if (placed.ok()) placement = *placed;
      else st = placed.status();
    }
    if (!st.ok()) {
      lock.unlock();
      (void)partition::CallRegion(*source_region, key, "rds",  // best effort: the source forgets it again
                                  "Action=AutopipeDeregisterReadReplica&Version=2014-10-31&SourceDBInstanceIdentifier=" +
                                      UriEncode(source.identifier) + "&ReplicaArn=" + UriEncode(replica_arn));
      return st;
    }
  }
  const Json& about = grant.about;
  const std::string engine = about.value("Engine", "mysql");
  const std::string the_class = cls.value_or(about.value("DBInstanceClass", "db.t3.micro"));
  if (!rds::FindDbInstanceClass(the_class)) return UnknownClass(the_class, engine, about.value("EngineVersion", ""));
  AP_ASSIGN_OR_RETURN(auto index, AllocateEndpointIndex(&writes));
  const int64_t the_port = about.value("Port", int64_t{kDefaultPort});
  std::string dbi = RandomHex(26);
  std::transform(dbi.begin(), dbi.end(), dbi.begin(), [](unsigned char c) { return std::toupper(c); });
  auto [default_backup, default_maintenance] = DefaultWindows(id);
  Json db = {
      {"DBInstanceIdentifier", id},
      {"DBInstanceClass", the_class},
      {"Engine", engine},
      {"EngineVersion", about.value("EngineVersion", "")},
      {"DBInstanceStatus", rds::db_status::kCreating},
      {"MasterUsername", about.value("MasterUsername", "")},
  };
  if (about.contains("DBName")) db["DBName"] = about["DBName"];
  db.update(Json{
      {"AllocatedStorage", about.value("AllocatedStorage", int64_t{20})},
      {"StorageType", about.value("StorageType", "gp2")},
      {"Port", the_port},
      {"MultiAZ", false},
      {"AvailabilityZone", placement.az},
      {"DBSubnetGroupName", placement.group},
      {"PreferredBackupWindow", default_backup},
      {"PreferredMaintenanceWindow", default_maintenance},
      // A MySQL read replica has no automated backups of its own until told (or promoted).
      {"BackupRetentionPeriod", 0},
      {"VpcSecurityGroupIds", groups.value_or(Json::array())},
      {"Tags", Json::array()},
      {"DbiResourceId", "db-" + dbi},
      {"DBInstanceArn", replica_arn},
      {"InstanceCreateTime", ctx_->clock->NowMillis()},
      {"AutoMinorVersionUpgrade", auto_minor.value_or(true)},
      {"PubliclyAccessible", publicly_accessible.value_or(false)},
      {"CopyTagsToSnapshot", copy_tags.value_or(false)},
      {"DeletionProtection", deletion_protection.value_or(false)},
      {"PendingModifiedValues", Json::object()},
      {"Endpoint", {{"Address", ctx_->catalog->address_block() + ".210." + std::to_string(index)}, {"Port", the_port}}},
      {"EndpointIndex", index},
      {"Spec",
       {{"MultiAZ", false},
        {"DBInstanceClass", the_class},
        {"Running", true},
        {"Deleting", false},
        {"RebootSeq", 0},
        {"RebootForceFailover", false}}},
      {"ReadReplica",
       {{"State", rds::replica_state::kSeeding},
        {"Source", source.identifier},
        {"SourceRegion", source.region},
        {"SourceArn", "arn:aws:rds:" + source.region + ":" + kAccountId + ":db:" + source.identifier},
        {"Display", display},
        {"SourceAddress", grant.address},
        {"SourcePort", grant.port},
        {"User", grant.user}}},
  });
  AP_RETURN_IF_ERROR(MergeTags(db, tags));
  // No master password of its own: the master user and its password come from the source, with every later change.
  writes.push_back({kind::kDbInstanceSecret, id,
                    Json{{"MasterUserPassword", ""}, {"PasswordSeq", 0}, {"ReplicaSourcePassword", grant.password},
                         {"AdminPassword", rds::RandomPassword()}, {"ReplPassword", rds::RandomPassword()}},
                    std::nullopt});
  return SaveAndRender(std::move(db), std::move(writes));
}

Result<Json> RdsService::PromoteReadReplica(const Params& p) {
  AP_ASSIGN_OR_RETURN(auto id, RequiredIdentifier(p));
  AP_ASSIGN_OR_RETURN(auto retention, OptionalInt(p, "BackupRetentionPeriod"));
  if (retention) AP_RETURN_IF_ERROR(CheckBackupRetention(*retention));
  auto backup_window = p.Str("PreferredBackupWindow");
  if (backup_window) AP_RETURN_IF_ERROR(ParseBackupWindow(*backup_window).status());
  AP_ASSIGN_OR_RETURN(auto db, Load(id));
  if (!db.contains("ReadReplica")) return InvalidState("DB Instance " + id + " is not a read replica.");
  const std::string state = db["ReadReplica"].value("State", "");
  if (state == rds::replica_state::kPromoting) return InvalidState("DB Instance " + id + " is already being promoted.");
  if (state != rds::replica_state::kReplicating || !AcceptsChanges(db) || db["Spec"].value("Deleting", false))
    return NotAvailable(id);
  std::vector<StoreWrite> writes;
  db["ReadReplica"]["State"] = rds::replica_state::kPromoting;
  db["Spec"]["PromoteBackupRetentionPeriod"] = retention.value_or(1);
  if (backup_window) db["PreferredBackupWindow"] = *backup_window;
  db["DBInstanceStatus"] = rds::db_status::kModifying;
  // The source (in this region) stops listing it now; another region's source is told once it stands alone.
  if (db["ReadReplica"].value("SourceRegion", "") == ctx_->catalog->region())
    rds::DeregisterReplica(*ctx_, db["ReadReplica"].value("Source", ""), id, &writes);
  rds::AddEvent(*ctx_, "db-instance", id, "0057", "Promoting Read Replica to a stand-alone database instance",
                {"read replica"}, &writes);
  return SaveAndRender(std::move(db), std::move(writes));
}

Result<Json> RdsService::AutopipeRegisterReadReplica(const Params& p) {
  AP_ASSIGN_OR_RETURN(auto source, p.RequiredStr("SourceDBInstanceIdentifier"));
  AP_ASSIGN_OR_RETURN(auto replica, p.RequiredStr("ReplicaArn"));
  const std::string region = p.Str("ReplicaRegion").value_or("");
  std::vector<StoreWrite> writes;
  AP_ASSIGN_OR_RETURN(auto grant, rds::RegisterReplica(*ctx_, Lower(source), replica, region, &writes));
  AP_RETURN_IF_ERROR(Save(std::move(writes)));
  Json out = {{"SourceAddress", grant.address}, {"SourcePort", grant.port}, {"ReplicationUser", grant.user},
              {"ReplicationPassword", grant.password}};
  for (const auto& [k, v] : grant.about.items()) out[k] = v;
  return out;
}

Result<Json> RdsService::AutopipeDeregisterReadReplica(const Params& p) {
  AP_ASSIGN_OR_RETURN(auto source, p.RequiredStr("SourceDBInstanceIdentifier"));
  AP_ASSIGN_OR_RETURN(auto replica, p.RequiredStr("ReplicaArn"));
  std::vector<StoreWrite> writes;
  rds::DeregisterReplica(*ctx_, Lower(source), replica, &writes);
  if (!writes.empty()) AP_RETURN_IF_ERROR(Save(std::move(writes)));
  return Json::object();
}

Result<Json> RdsService::StopDBInstance(const Params& p) {
  AP_ASSIGN_OR_RETURN(auto id, RequiredIdentifier(p));
  auto snapshot = p.Str("DBSnapshotIdentifier");
  if (snapshot && !ValidIdentifier(Lower(*snapshot), 255)) return InvalidIdentifier("DBSnapshotIdentifier");
  AP_ASSIGN_OR_RETURN(auto db, Load(id));
  if (db["DBInstanceStatus"] != rds::db_status::kAvailable) return NotAvailable(id);
  // As RDS: neither a read replica nor the source of one can be stopped.
  if (db.contains("ReadReplica")) return InvalidState("Cannot stop DB instance " + id + ": it is a read replica.");
  if (!db.value("ReadReplicas", Json::array()).empty())
    return InvalidState("Cannot stop DB instance " + id + ": it has read replicas.");
  db["Spec"]["Running"] = false;
  db["DBInstanceStatus"] = rds::db_status::kStopping;
  return SaveAndRender(std::move(db));
}

Result<Json> RdsService::StartDBInstance(const Params& p) {
  AP_ASSIGN_OR_RETURN(auto id, RequiredIdentifier(p));
  AP_ASSIGN_OR_RETURN(auto db, Load(id));
  if (db["DBInstanceStatus"] != rds::db_status::kStopped) {
    return InvalidState("Instance " + id + " is not stopped, it cannot be started.");
  }
  db["Spec"]["Running"] = true;
  db["DBInstanceStatus"] = rds::db_status::kStarting;
  return SaveAndRender(std::move(db));
}

// ---- restores (rds/db_restore.h) ------------------------------------------------------------------------------

Result<Json> RdsService::CreateRestored(const Params& p, const std::string& id, const Json& about, Json restore,
                                        const std::string& master_password) {
  // Every parameter was checked by the caller's ReadRestoreOptions before the source was looked at.
  auto cls = p.Str("DBInstanceClass");
  AP_ASSIGN_OR_RETURN(auto port, OptionalInt(p, "Port"));
  AP_ASSIGN_OR_RETURN(auto multi_az, OptionalBool(p, "MultiAZ"));
  AP_ASSIGN_OR_RETURN(auto retention, OptionalInt(p, "BackupRetentionPeriod"));
  AP_ASSIGN_OR_RETURN(auto groups, ReadSecurityGroups(p));
  AP_ASSIGN_OR_RETURN(auto tags, ReadTags(p));
  AP_ASSIGN_OR_RETURN(auto copy_tags, OptionalBool(p, "CopyTagsToSnapshot"));
  AP_ASSIGN_OR_RETURN(auto deletion_protection, OptionalBool(p, "DeletionProtection"));
  AP_ASSIGN_OR_RETURN(auto publicly_accessible, OptionalBool(p, "PubliclyAccessible"));
  AP_ASSIGN_OR_RETURN(auto auto_minor, OptionalBool(p, "AutoMinorVersionUpgrade"));
  auto az = p.Str("AvailabilityZone");
  if (az && az->empty()) az.reset();

  if (ctx_->store->Get(kind::kDbInstance, id)) return Status(400, "DBInstanceAlreadyExists", "DB instance already exists");
  if (ctx_->store->Count(kind::kDbInstance) >= kMaxDbInstances) {
    return Status(400, "InstanceQuotaExceeded",
                  "DB instance quota exceeded: this region allows at most " + std::to_string(kMaxDbInstances) +
                      " DB instances.");
  }
  const std::string the_class = cls && !cls->empty() ? *cls : about.value("DBInstanceClass", "db.t3.micro");
  const int64_t the_port = port.value_or(about.value("Port", kDefaultPort));
  AP_ASSIGN_OR_RETURN(auto placement,
                      PlaceInstance(*ctx_, p, az, about.value("AvailabilityZone", std::string())));
  const std::string the_az = placement.az;
  std::vector<StoreWrite> writes;
  AP_ASSIGN_OR_RETURN(auto index, AllocateEndpointIndex(&writes));
  std::string dbi = RandomHex(26);
  std::transform(dbi.begin(), dbi.end(), dbi.begin(), [](unsigned char c) { return std::toupper(c); });
  dbi = "db-" + dbi;
  auto [backup_window, maintenance_window] = DefaultWindows(id);
  Json db = {
      {"DBInstanceIdentifier", id},
      {"DBInstanceClass", the_class},
      {"Engine", about.value("Engine", "mysql")},
      {"EngineVersion", about.value("EngineVersion", "8.0.39")},
      {"DBInstanceStatus", rds::db_status::kCreating},
      {"MasterUsername", about.value("MasterUsername", "admin")},
  };
  if (about.contains("DBName")) db["DBName"] = about["DBName"];
  db.update(Json{
      {"AllocatedStorage", about.value("AllocatedStorage", int64_t{20})},
      {"StorageType", about.value("StorageType", "gp2").empty() ? "gp2" : about.value("StorageType", "gp2")},
      {"Port", the_port},
      {"MultiAZ", false},
      {"AvailabilityZone", the_az},
      {"DBSubnetGroupName", placement.group},
      {"PreferredBackupWindow", about.value("PreferredBackupWindow", backup_window)},
      {"PreferredMaintenanceWindow", about.value("PreferredMaintenanceWindow", maintenance_window)},
      {"BackupRetentionPeriod", retention.value_or(std::max<int64_t>(1, about.value("BackupRetentionPeriod", int64_t{1})))},
      {"VpcSecurityGroupIds", groups.value_or(Json::array({ec2::DefaultSecurityGroupId(*ctx_->catalog)}))},
      {"Tags", Json::array()},
      {"DbiResourceId", dbi},
      {"DBInstanceArn", DbInstanceArn(*ctx_, id)},
      {"InstanceCreateTime", ctx_->clock->NowMillis()},
      {"AutoMinorVersionUpgrade", auto_minor.value_or(true)},
      {"PubliclyAccessible", publicly_accessible.value_or(false)},
      {"CopyTagsToSnapshot", copy_tags.value_or(false)},
      {"DeletionProtection", deletion_protection.value_or(false)},
      {"PendingModifiedValues", Json::object()},
      {"Endpoint", {{"Address", ctx_->catalog->address_block() + ".210." + std::to_string(index)}, {"Port", the_port}}},
      {"EndpointIndex", index},
      {"Spec",
       {{"MultiAZ", multi_az.value_or(false)},
        {"DBInstanceClass", the_class},
        {"Running", true},
        {"Deleting", false},
        {"RebootSeq", 0},
        {"RebootForceFailover", false}}},
      {"Restore", std::move(restore)},
  });
  AP_RETURN_IF_ERROR(MergeTags(db, tags));
  // The master password is whatever the restored data holds (the source's at that time): PasswordSeq 0 applies
  // nothing. The region's own accounts are new; the restore sets them on the restored server.
  writes.push_back({kind::kDbInstanceSecret, id,
                    Json{{"MasterUserPassword", master_password},
                         {"PasswordSeq", 0},
                         {"AdminPassword", rds::RandomPassword()},
                         {"ReplPassword", rds::RandomPassword()}},
                    std::nullopt});
  return SaveAndRender(std::move(db), std::move(writes));
}

// The options a restore shares with CreateDBInstance, checked before anything is read.
static Status ReadRestoreOptions(const Params& p, const Catalog& catalog) {
  if (auto cls = p.Str("DBInstanceClass"); cls && !cls->empty() && !rds::FindDbInstanceClass(*cls))
    return UnknownClass(*cls, "mysql", "8.0");
  AP_ASSIGN_OR_RETURN(auto port, OptionalInt(p, "Port"));
  if (port) AP_RETURN_IF_ERROR(CheckPort(*port));
  AP_ASSIGN_OR_RETURN(auto multi_az, OptionalBool(p, "MultiAZ"));
  AP_ASSIGN_OR_RETURN(auto retention, OptionalInt(p, "BackupRetentionPeriod"));
  if (retention) AP_RETURN_IF_ERROR(CheckBackupRetention(*retention));
  auto az = p.Str("AvailabilityZone");
  if (az && !az->empty()) {
    if (multi_az.value_or(false))
      return InvalidParameterCombination("Requesting a specific availability zone is not valid for Multi-AZ instances.");
    if (!catalog.IsAvailabilityZone(*az)) return Status::InvalidParameterValue("Invalid availability zone: " + *az);
  }
  AP_RETURN_IF_ERROR(ReadSecurityGroups(p).status());
  AP_RETURN_IF_ERROR(ReadTags(p).status());
  for (const char* name : {"CopyTagsToSnapshot", "DeletionProtection", "PubliclyAccessible", "AutoMinorVersionUpgrade"})
    AP_RETURN_IF_ERROR(OptionalBool(p, name).status());
  AP_ASSIGN_OR_RETURN(auto encrypted, OptionalBool(p, "StorageEncrypted"));
  if (encrypted.value_or(false))
    return InvalidParameterCombination("Storage encryption is not offered by this region (StorageEncrypted=true).");
  return Status::Ok();
}

// RestoreDBInstanceToPointInTime, and our extension RestoreToGtid=<D-S-N> (docs/api-coverage.md): exactly one of
// RestoreTime, UseLatestRestorableTime=true and RestoreToGtid.
Result<Json> RdsService::RestoreDBInstanceToPointInTime(const Params& p) {
  AP_ASSIGN_OR_RETURN(auto id, RequiredIdentifier(p, "TargetDBInstanceIdentifier"));
  if (!ValidIdentifier(id, 63)) return InvalidIdentifier("TargetDBInstanceIdentifier");
  auto nonempty = [&](const char* name) {
    auto v = p.Str(name);
    if (v && v->empty()) v.reset();
    return v;
  };
  auto source_id = nonempty("SourceDBInstanceIdentifier");
  auto source_dbi = nonempty("SourceDbiResourceId");
  if (auto arn = nonempty("SourceDBInstanceAutomatedBackupsArn")) {
    // arn:aws:rds:<region>:<account>:auto-backup:ab-<resource id without "db-", lower-cased>
    const std::string prefix = ctx_->Arn("rds", "auto-backup:ab-");
    if (arn->compare(0, prefix.size(), prefix) != 0 || arn->size() == prefix.size())
      return Status::InvalidParameterValue("Invalid SourceDBInstanceAutomatedBackupsArn: " + *arn);
    std::string dbi = arn->substr(prefix.size());
    std::transform(dbi.begin(), dbi.end(), dbi.begin(), [](unsigned char c) { return std::toupper(c); });
    source_dbi = "db-" + dbi;
  }
  if (!source_id && !source_dbi) {
    return InvalidParameterCombination("One of SourceDBInstanceIdentifier, SourceDbiResourceId or "
                                       "SourceDBInstanceAutomatedBackupsArn must be given.");
  }
  if (source_id) *source_id = Lower(*source_id);
  auto time_in = nonempty("RestoreTime");
  AP_ASSIGN_OR_RETURN(auto use_latest, OptionalBool(p, "UseLatestRestorableTime"));
  auto gtid = nonempty("RestoreToGtid");
  if (time_in && use_latest.value_or(false))
    return InvalidParameterCombination("Cannot specify both RestoreTime and UseLatestRestorableTime.");
  const int targets = (time_in ? 1 : 0) + (use_latest.value_or(false) ? 1 : 0) + (gtid ? 1 : 0);
  if (targets == 0)
    return InvalidParameterCombination("One of RestoreTime or UseLatestRestorableTime must be given.");
  if (targets > 1)
    return InvalidParameterCombination("RestoreToGtid cannot be given with RestoreTime or UseLatestRestorableTime.");
  rds::RestoreTarget target;
  if (time_in) {
    auto t = ParseIsoTimeMillis(*time_in);
    if (!t) return Status::InvalidParameterValue("Invalid value for parameter RestoreTime: " + *time_in);
    target.time_ms = *t;
  }
  if (gtid) {
    if (!rds::ValidGtid(*gtid))
      return Status::InvalidParameterValue("Invalid value for parameter RestoreToGtid: " + *gtid +
                                           " (a GTID is domain-server-sequence, e.g. 0-1-1234).");
    target.gtid = *gtid;
  }
  AP_RETURN_IF_ERROR(ReadRestoreOptions(p, *ctx_->catalog));

  AP_ASSIGN_OR_RETURN(auto source, rds::FindRestoreSource(*ctx_, source_id, source_dbi));
  AP_ASSIGN_OR_RETURN(auto restore, rds::PlanPointInTime(source, target, use_latest.value_or(false)));
  std::string password;
  if (source.instance) {
    if (auto secret = ctx_->store->Get(kind::kDbInstanceSecret, source.db_instance_identifier))
      password = secret->value("MasterUserPassword", "");
  }
  return CreateRestored(p, id, source.about, std::move(restore), password);
}

Result<Json> RdsService::RestoreDBInstanceFromDBSnapshot(const Params& p) {
  AP_ASSIGN_OR_RETURN(auto id, RequiredIdentifier(p, "DBInstanceIdentifier"));
  if (!ValidIdentifier(id, 63)) return InvalidIdentifier("DBInstanceIdentifier");
  auto snapshot_in = p.Str("DBSnapshotIdentifier");
  if (!snapshot_in || snapshot_in->empty())
    return Status::InvalidParameterValue("The parameter DBSnapshotIdentifier must be provided and must not be blank.");
  std::string snapshot_id = *snapshot_in;
  const std::string arn_prefix = ctx_->Arn("rds", "snapshot:");
  if (snapshot_id.compare(0, arn_prefix.size(), arn_prefix) == 0) snapshot_id = snapshot_id.substr(arn_prefix.size());
  AP_RETURN_IF_ERROR(ReadRestoreOptions(p, *ctx_->catalog));
  auto snap = ctx_->store->Get(kind::kDbSnapshot, snapshot_id);
  if (!snap) snap = ctx_->store->Get(kind::kDbSnapshot, Lower(snapshot_id));
  if (!snap) return Status(404, "DBSnapshotNotFound", "DBSnapshot " + *snapshot_in + " not found.");
  AP_ASSIGN_OR_RETURN(auto restore, rds::PlanFromSnapshot(*snap));
  return CreateRestored(p, id, *snap, std::move(restore), "");
}

Result<Json> RdsService::DescribeDBSnapshots(const Params& p) {
  AP_ASSIGN_OR_RETURN(auto page, ReadPage(p, "DBSnapshots"));
  AP_ASSIGN_OR_RETURN(auto filters, ReadFilters(p, {"db-instance-id", "db-snapshot-id", "dbi-resource-id",
                                                    "snapshot-type", "engine"}));
  static const std::set<std::string> kTypes = {"automated", "manual", "shared", "public", "awsbackup"};
  auto type = p.Str("SnapshotType");
  if (type && !type->empty() && !kTypes.count(*type)) {
    return Status::InvalidParameterValue("Invalid snapshot type: " + *type);
  }
  // Only this account's own snapshots exist here: shared and public ones are none.
  AP_ASSIGN_OR_RETURN(auto include_shared, OptionalBool(p, "IncludeShared"));
  AP_ASSIGN_OR_RETURN(auto include_public, OptionalBool(p, "IncludePublic"));
  (void)include_shared;
  (void)include_public;
  auto by_resource = p.Str("DbiResourceId");
  auto instance = p.Str("DBInstanceIdentifier");
  auto snapshot = p.Str("DBSnapshotIdentifier");
  if (instance && snapshot && !instance->empty() && !snapshot->empty()) {
    return InvalidParameterCombination("DBInstanceIdentifier and DBSnapshotIdentifier cannot both be given.");
  }
  std::string instance_key = instance ? Lower(*instance) : "";
  const std::string arn_prefix = ctx_->Arn("rds", "db:");
  if (instance_key.compare(0, arn_prefix.size(), arn_prefix) == 0) instance_key = instance_key.substr(arn_prefix.size());
  std::string snapshot_key = snapshot ? Lower(*snapshot) : "";
  const std::string snap_arn_prefix = ctx_->Arn("rds", "snapshot:");
  if (snapshot_key.compare(0, snap_arn_prefix.size(), snap_arn_prefix) == 0)
    snapshot_key = snapshot_key.substr(snap_arn_prefix.size());
  std::vector<Doc> found;
  if (!snapshot_key.empty()) {
    auto doc = ctx_->store->GetVersioned(kind::kDbSnapshot, snapshot_key).doc;
    if (!doc || !rds::Listed(*doc)) return Status(404, "DBSnapshotNotFound", "DBSnapshot " + *snapshot + " not found.");
    found.push_back(doc);
  } else {
    found = ctx_->store->List(kind::kDbSnapshot);
  }
  auto matches = [&](const Json& snap) {
    if (!rds::Listed(snap)) return false;
    if (!instance_key.empty() && snap["DBInstanceIdentifier"] != instance_key) return false;
    if (by_resource && !by_resource->empty() && snap["DbiResourceId"] != *by_resource) return false;
    if (type && !type->empty() && snap["SnapshotType"] != *type) return false;
    for (const auto& [name, values] : filters) {
      if (name == "db-instance-id") {
        const std::string inst = snap["DBInstanceIdentifier"];
        if (!values.count(inst) && !values.count(DbInstanceArn(*ctx_, inst))) return false;
      } else if (name == "db-snapshot-id") {
        if (!values.count(snap["DBSnapshotIdentifier"])) return false;
      } else if (name == "dbi-resource-id") {
        if (!values.count(snap["DbiResourceId"])) return false;
      } else if (name == "snapshot-type") {
        if (!values.count(snap["SnapshotType"])) return false;
      } else if (name == "engine") {
        if (!values.count(snap["Engine"])) return false;
      }
    }
    return true;
  };
  std::vector<const Json*> selected;
  for (const auto& doc : found) {
    if (matches(*doc)) selected.push_back(doc.get());
  }
  // Oldest first, as RDS lists them.
  std::stable_sort(selected.begin(), selected.end(), [](const Json* a, const Json* b) {
    return a->value("SnapshotCreateTime", int64_t{0}) < b->value("SnapshotCreateTime", int64_t{0});
  });
  Json items = Json::array();
  for (const Json* snap : selected) items.push_back(DbSnapshotXml(*ctx_, *snap));
  return PageOf("DBSnapshots", "DBSnapshots", std::move(items), page);
}

// One entry per DbiResourceId with automated backups: the live instance's (Status active) or, once deleted, what
// its retained snapshots say (Status retained). RestoreWindow: the end of the oldest automated backup to
// LatestRestorableTime.
Result<Json> RdsService::DescribeDBInstanceAutomatedBackups(const Params& p) {
  AP_ASSIGN_OR_RETURN(auto page, ReadPage(p, "DBInstanceAutomatedBackups"));
  AP_ASSIGN_OR_RETURN(auto filters, ReadFilters(p, {"db-instance-id", "dbi-resource-id", "status"}));
  auto by_instance = p.Str("DBInstanceIdentifier");
  auto by_resource = p.Str("DbiResourceId");
  struct Entry {
    std::optional<Json> instance;
    std::vector<Json> snapshots;
  };
  std::map<std::string, Entry> entries;  // by DbiResourceId
  for (const auto& doc : ctx_->store->List(kind::kDbInstance)) {
    if ((*doc).value("BackupRetentionPeriod", int64_t{0}) > 0) entries[(*doc)["DbiResourceId"]].instance = *doc;
  }
  for (const auto& doc : ctx_->store->List(kind::kDbSnapshot)) {
    if ((*doc)["SnapshotType"] == "automated" && (*doc)["Status"] == "available")
      entries[(*doc)["DbiResourceId"]].snapshots.push_back(*doc);
  }
  Json items = Json::array();
  for (auto& [dbi, e] : entries) {
    const Json& about = e.instance ? *e.instance : e.snapshots.front();
    const std::string id = about["DBInstanceIdentifier"];
    const std::string status = e.instance ? "active" : "retained";
    if (by_instance && !by_instance->empty() && Lower(*by_instance) != id) continue;
    if (by_resource && !by_resource->empty() && *by_resource != dbi) continue;
    bool keep = true;
    for (const auto& [name, values] : filters) {
      if (name == "db-instance-id" && !values.count(id) && !values.count(DbInstanceArn(*ctx_, id))) keep = false;
      if (name == "dbi-resource-id" && !values.count(dbi)) keep = false;
      if (name == "status" && !values.count(status)) keep = false;
    }
    if (!keep) continue;
    int64_t earliest = 0;
    for (const auto& snap : e.snapshots) {
      const int64_t end = snap.value("BackupEndTime", snap.value("SnapshotCreateTime", int64_t{0}));
      if (earliest == 0 || end < earliest) earliest = end;
    }
    Json window = Json::object();
    if (earliest) window["EarliestTime"] = IsoTimeMillis(earliest);
    if (e.instance && e.instance->contains("LatestRestorableTime"))
      window["LatestTime"] = IsoTimeMillis((*e.instance)["LatestRestorableTime"].get<int64_t>());
    else if (!e.instance && about.contains("LatestRestorableTime"))
      window["LatestTime"] = IsoTimeMillis(about["LatestRestorableTime"].get<int64_t>());
    std::string ab = Lower(dbi.size() > 3 ? dbi.substr(3) : dbi);
    JsonObject out;
    out.Add("DBInstanceArn", DbInstanceArn(*ctx_, id))
        .Add("DbiResourceId", dbi)
        .Add("Region", ctx_->catalog->region())
        .Add("DBInstanceIdentifier", id)
        .Add("RestoreWindow", window)
        .Add("AllocatedStorage", about["AllocatedStorage"])
        .Add("Status", status)
        .Add("Port", about["Port"])
        .Add("AvailabilityZone", about["AvailabilityZone"])
        .Add("VpcId", ec2::DefaultVpcId(*ctx_->catalog))
        .Add("InstanceCreateTime", IsoTimeMillis(about.value("InstanceCreateTime", int64_t{0})))
        .Add("MasterUsername", about["MasterUsername"])
        .Add("Engine", about["Engine"])
        .Add("EngineVersion", about["EngineVersion"])
        .Add("LicenseModel", kLicenseModel)
        .Add("OptionGroupName", OptionGroupName(about))
        .Add("Encrypted", false)
        .Add("StorageType", about["StorageType"])
        .Add("IAMDatabaseAuthenticationEnabled", false)
        .Add("BackupRetentionPeriod", e.instance ? (*e.instance)["BackupRetentionPeriod"] : Json(0))
        .Add("DBInstanceAutomatedBackupsArn", ctx_->Arn("rds", "auto-backup:ab-" + ab))
        .Add("BackupTarget", "region")
        .Add("DedicatedLogVolume", false);
    items.push_back(out.Take());
  }
  const bool named = (by_instance && !by_instance->empty()) || (by_resource && !by_resource->empty());
  if (named && items.empty()) {
    return Status(404, "DBInstanceAutomatedBackupNotFound",
                  "No automated backup found for " + (by_instance ? *by_instance : *by_resource) + ".");
  }
  return PageOf("DBInstanceAutomatedBackups", "DBInstanceAutomatedBackups", std::move(items), page);
}

Result<Json> RdsService::DescribeEvents(const Params& p) {
  static const std::set<std::string> kSourceTypes = {
      "db-instance", "db-parameter-group", "db-security-group", "db-snapshot", "db-cluster",
      "db-cluster-snapshot", "custom-engine-version", "db-proxy", "blue-green-deployment", "db-shard-group"};
  AP_ASSIGN_OR_RETURN(auto page, ReadPage(p, "Events"));
  auto source_type = p.Str("SourceType");
  if (source_type && !kSourceTypes.count(*source_type)) {
    return Status::InvalidParameterValue("Invalid source type: " + *source_type);
  }
  auto source_id = p.Str("SourceIdentifier");
  if (source_id && !source_type) {
    return InvalidParameterCombination("Cannot specify SourceIdentifier without SourceType.");
  }
  AP_ASSIGN_OR_RETURN(auto duration, OptionalInt(p, "Duration"));
  if (duration && *duration < 0) return Status::InvalidParameterValue("Duration must not be negative.");
  std::optional<int64_t> start, end;
  for (const char* name : {"StartTime", "EndTime"}) {
    if (auto s = p.Str(name)) {
      auto t = ParseIsoTimeMillis(*s);
      if (!t) return Status::InvalidParameterValue("Invalid value for parameter " + std::string(name) + ": " + *s);
      (std::string(name) == "StartTime" ? start : end) = *t;
    }
  }
  const int64_t now = ctx_->clock->NowMillis();
  const int64_t to = end.value_or(now);
  const int64_t from = start ? *start : to - duration.value_or(kDefaultEventMinutes) * 60000;
  if (from > to) return Status::InvalidParameterValue("StartTime must be before EndTime.");
  auto categories = p.List("EventCategories", "EventCategory");
  const std::string wanted_id = source_id ? Lower(*source_id) : "";

  Json items = Json::array();
  for (const auto& doc : ctx_->store->List(kind::kRdsEvent)) {
    const Json& e = *doc;
    const int64_t date = e["Date"];
    if (date < from || date > to) continue;
    if (source_type && e["SourceType"] != *source_type) continue;
    if (source_id && e["SourceIdentifier"] != wanted_id) continue;
    if (!categories.empty()) {
      bool any = false;
      for (const auto& c : e["EventCategories"]) any = any || std::find(categories.begin(), categories.end(), c) != categories.end();
      if (!any) continue;
    }
    items.push_back(EventXml(e));
  }
  return PageOf("Events", "Events", std::move(items), page);
}

Result<Json> RdsService::DescribeDBEngineVersions(const Params& p) {
  AP_ASSIGN_OR_RETURN(auto page, ReadPage(p, "DBEngineVersions"));
  auto engine = p.Str("Engine");
  auto version = p.Str("EngineVersion");
  auto family = p.Str("DBParameterGroupFamily");
  AP_ASSIGN_OR_RETURN(auto default_only, OptionalBool(p, "DefaultOnly"));
  Json items = Json::array();
  for (const auto& v : kEngineVersions) {
    if (engine && Lower(*engine) != v.engine) continue;
    if (version && *version != v.version && *version != v.major) continue;
    if (family && *family != v.family) continue;
    if (default_only.value_or(false) && !v.is_default) continue;
    items.push_back(EngineVersionXml(v));
  }
  return PageOf("DBEngineVersions", "DBEngineVersions", std::move(items), page);
}

Result<Json> RdsService::DescribeOrderableDBInstanceOptions(const Params& p) {
  AP_ASSIGN_OR_RETURN(auto page, ReadPage(p, "OrderableDBInstanceOptions", 1000));
  auto engine_in = p.Str("Engine");
  if (!engine_in || engine_in->empty()) {
    return Status::InvalidParameterValue("The parameter Engine must be provided and must not be blank.");
  }
  const std::string engine = Lower(*engine_in);
  auto version = p.Str("EngineVersion");
  auto cls = p.Str("DBInstanceClass");
  AP_ASSIGN_OR_RETURN(auto vpc, OptionalBool(p, "Vpc"));
  if (auto license = p.Str("LicenseModel"); license && *license != kLicenseModel) {
    return Json{{"OrderableDBInstanceOptions", Json::array()}};
  }
  Json zones = Json::array();
  for (const auto& az : ctx_->catalog->availability_zones()) zones.push_back({{"Name", az}});
  Json items = Json::array();
  if (vpc.value_or(true)) {
    for (const auto& v : kEngineVersions) {
      if (engine != v.engine) continue;
      if (version && *version != v.version && *version != v.major) continue;
      for (const auto& c : rds::DbInstanceClasses()) {
        if (cls && *cls != c.name) continue;
        for (const char* storage : {"gp2", "gp3"}) {
          JsonObject o;
          o.Add("Engine", v.engine)
              .Add("EngineVersion", v.version)
              .Add("DBInstanceClass", c.name)
              .Add("LicenseModel", kLicenseModel)
              .Add("AvailabilityZones", zones)
              .Add("MultiAZCapable", true)
              .Add("ReadReplicaCapable", false)
              .Add("Vpc", true)
              .Add("SupportsStorageEncryption", false)
              .Add("StorageType", storage)
              .Add("SupportsIops", false)
              .Add("SupportsStorageThroughput", false)
              .Add("SupportsEnhancedMonitoring", false)
              .Add("SupportsIAMDatabaseAuthentication", false)
              .Add("SupportsPerformanceInsights", false)
              .Add("MinStorageSize", kMinStorageGib)
              .Add("MaxStorageSize", kMaxStorageGib)
              .Add("SupportedEngineModes", Json::array({"provisioned"}))
              .Add("SupportsStorageAutoscaling", false)
              .Add("SupportsKerberosAuthentication", false)
              .Add("OutpostCapable", false)
              .Add("SupportsGlobalDatabases", false)
              .Add("SupportedNetworkTypes", Json::array({"IPV4"}))
              .Add("SupportsClusters", false)
              .Add("SupportsDedicatedLogVolume", false)
              .Add("SupportsHttpEndpoint", false);
          items.push_back(o.Take());
        }
      }
    }
  }
  return PageOf("OrderableDBInstanceOptions", "OrderableDBInstanceOptions", std::move(items), page);
}

Result<Json> RdsService::AddTagsToResource(const Params& p) {
  AP_ASSIGN_OR_RETURN(auto arn, p.RequiredStr("ResourceName"));
  AP_ASSIGN_OR_RETURN(auto tags, ReadTags(p));
  if (auto snapshot = rds::AddSnapshotTags(*ctx_, arn, tags)) return std::move(*snapshot);
  if (auto group = rds::AddSubnetGroupTags(*ctx_, arn, tags)) return std::move(*group);
  AP_ASSIGN_OR_RETURN(auto db, LoadByArn(arn));
  AP_RETURN_IF_ERROR(MergeTags(db, tags));
  std::string id = db["DBInstanceIdentifier"];
  AP_RETURN_IF_ERROR(Save({{kind::kDbInstance, id, std::move(db), std::nullopt}}));
  return Json();
}

Result<Json> RdsService::ListTagsForResource(const Params& p) {
  AP_ASSIGN_OR_RETURN(auto arn, p.RequiredStr("ResourceName"));
  if (auto snapshot = rds::ListSnapshotTags(*ctx_, arn)) return std::move(*snapshot);
  if (auto group = rds::ListSubnetGroupTags(*ctx_, arn)) return std::move(*group);
  AP_ASSIGN_OR_RETURN(auto db, LoadByArn(arn));
  return Json{{"TagList", db.value("Tags", Json::array())}};
}

Result<Json> RdsService::RemoveTagsFromResource(const Params& p) {
  AP_ASSIGN_OR_RETURN(auto arn, p.RequiredStr("ResourceName"));
  auto keys = p.List("TagKeys");
  if (auto snapshot = rds::RemoveSnapshotTags(*ctx_, arn, keys)) return std::move(*snapshot);
  if (auto group = rds::RemoveSubnetGroupTags(*ctx_, arn, keys)) return std::move(*group);
  AP_ASSIGN_OR_RETURN(auto db, LoadByArn(arn));
  Json kept = Json::array();
  for (const auto& t : db["Tags"]) {
    if (std::find(keys.begin(), keys.end(), t["Key"].get<std::string>()) == keys.end()) kept.push_back(t);
  }
  if (kept != db["Tags"]) {
    db["Tags"] = std::move(kept);
    std::string id = db["DBInstanceIdentifier"];
    AP_RETURN_IF_ERROR(Save({{kind::kDbInstance, id, std::move(db), std::nullopt}}));
  }
  return Json();
}

}  // namespace

ApiService RdsApi(RegionContext* ctx) {
  auto svc = std::make_shared<RdsService>(ctx);
  using Method = Result<Json> (RdsService::*)(const Params&);
  auto op = [svc](const char* name, Access access, Method m, std::vector<ListLimit> limits = {}) {
    return Operation{name, access, [svc, m](const Params& p) { return ((*svc).*m)(p); }, std::move(limits)};
  };
  const ListLimit kTags{"Tags", kMaxTagsPerResource, "Tag"};
  const ListLimit kFilters{"Filters", 10, "Filter"};
  const ListLimit kGroups{"VpcSecurityGroupIds", 5, "VpcSecurityGroupId"};
  ApiService api;
  api.info = {"rds", "2014-10-31", "http://rds.amazonaws.com/doc/2014-10-31/", WireProtocol::kQuery};
  // The member element of each list RDS names its own way (botocore's locationName), for rendering and for
  // JSON 1.0 requests flattened to Query names.
  api.info.list_members = {
      {"DBInstances", "DBInstance"},
      {"VpcSecurityGroups", "VpcSecurityGroupMembership"},
      {"VpcSecurityGroupIds", "VpcSecurityGroupId"},
      {"DBSecurityGroups", "DBSecurityGroup"},
      {"DBParameterGroups", "DBParameterGroup"},
      {"OptionGroupMemberships", "OptionGroupMembership"},
      {"ReadReplicaDBInstanceIdentifiers", "ReadReplicaDBInstanceIdentifier"},
      {"ReadReplicaDBClusterIdentifiers", "ReadReplicaDBClusterIdentifier"},
      {"DomainMemberships", "DomainMembership"},
      {"AssociatedRoles", "DBInstanceRole"},
      {"StatusInfos", "DBInstanceStatusInfo"},
      {"TagList", "Tag"},
      {"Tags", "Tag"},
      {"Events", "Event"},
      {"DBSnapshots", "DBSnapshot"},
      {"DBInstanceAutomatedBackups", "DBInstanceAutomatedBackup"},
      {"DBInstanceAutomatedBackupsReplications", "DBInstanceAutomatedBackupsReplication"},
      {"ProcessorFeatures", "ProcessorFeature"},
      {"EventCategories", "EventCategory"},
      {"DBEngineVersions", "DBEngineVersion"},
      {"ValidUpgradeTarget", "UpgradeTarget"},
      {"SupportedCharacterSets", "CharacterSet"},
      {"SupportedTimezones", "Timezone"},
      {"OrderableDBInstanceOptions", "OrderableDBInstanceOption"},
      {"AvailabilityZones", "AvailabilityZone"},
      {"Filters", "Filter"},
      {"Values", "Value"},
      {"DBSubnetGroups", "DBSubnetGroup"},
      {"Subnets", "Subnet"},
      {"SubnetIds", "SubnetIdentifier"},
  };
  api.operations = {
      op("CreateDBInstance", Access::kWrite, &RdsService::CreateDBInstance, {kTags, kGroups}),
      op("DescribeDBInstances", Access::kRead, &RdsService::DescribeDBInstances, {kFilters}),
      op("ModifyDBInstance", Access::kWrite, &RdsService::ModifyDBInstance, {kGroups}),
      op("RebootDBInstance", Access::kWrite, &RdsService::RebootDBInstance),
      op("DeleteDBInstance", Access::kWrite, &RdsService::DeleteDBInstance),
      op("StopDBInstance", Access::kWrite, &RdsService::StopDBInstance),
      op("StartDBInstance", Access::kWrite, &RdsService::StartDBInstance),
      op("DescribeEvents", Access::kRead, &RdsService::DescribeEvents, {kFilters, {"EventCategories", 20, "EventCategory"}}),
      op("DescribeDBSnapshots", Access::kRead, &RdsService::DescribeDBSnapshots, {kFilters}),
      op("CreateDBSnapshot", Access::kWrite, &RdsService::CreateDBSnapshot, {kTags}),
      op("CopyDBSnapshot", Access::kWrite, &RdsService::CopyDBSnapshot, {kTags}),
      op("DeleteDBSnapshot", Access::kWrite, &RdsService::DeleteDBSnapshot),
      op("DescribeDBInstanceAutomatedBackups", Access::kRead, &RdsService::DescribeDBInstanceAutomatedBackups,
         {kFilters}),
      op("RestoreDBInstanceToPointInTime", Access::kWrite, &RdsService::RestoreDBInstanceToPointInTime,
         {kTags, kGroups}),
      op("RestoreDBInstanceFromDBSnapshot", Access::kWrite, &RdsService::RestoreDBInstanceFromDBSnapshot,
         {kTags, kGroups}),
      op("DescribeDBEngineVersions", Access::kRead, &RdsService::DescribeDBEngineVersions, {kFilters}),
      op("DescribeOrderableDBInstanceOptions", Access::kRead, &RdsService::DescribeOrderableDBInstanceOptions,
         {kFilters}),
      op("CreateDBInstanceReadReplica", Access::kRead, &RdsService::CreateDBInstanceReadReplica, {kTags, kGroups}),
      op("PromoteReadReplica", Access::kWrite, &RdsService::PromoteReadReplica),
      op("AutopipeRegisterReadReplica", Access::kWrite, &RdsService::AutopipeRegisterReadReplica),
      op("AutopipeDeregisterReadReplica", Access::kWrite, &RdsService::AutopipeDeregisterReadReplica),
      op("AddTagsToResource", Access::kWrite, &RdsService::AddTagsToResource, {kTags}),
      op("ListTagsForResource", Access::kRead, &RdsService::ListTagsForResource, {kFilters}),
      op("RemoveTagsFromResource", Access::kWrite, &RdsService::RemoveTagsFromResource, {{"TagKeys", 50}}),
      op("CreateDBSubnetGroup", Access::kWrite, &RdsService::CreateDBSubnetGroup,
         {kTags, {"SubnetIds", 20, "SubnetIdentifier"}}),
      op("DescribeDBSubnetGroups", Access::kRead, &RdsService::DescribeDBSubnetGroups, {kFilters}),
      op("ModifyDBSubnetGroup", Access::kWrite, &RdsService::ModifyDBSubnetGroup, {{"SubnetIds", 20, "SubnetIdentifier"}}),
      op("DeleteDBSubnetGroup", Access::kWrite, &RdsService::DeleteDBSubnetGroup),
  };
  api.write_lock = ctx->mu;
  api.after_write = [ctx] {
    if (ctx->wake) ctx->wake();
  };
  return api;
}

}  // namespace autopipe

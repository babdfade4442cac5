#include "drill/drill.h"

#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <optional>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "api/form.h"
#include "common/ids.h"
#include "drill/load.h"
#include "drill/region_kill.h"
#include "drill/report.h"
#include "partition/partition.h"
#include "partition/region_client.h"

namespace autopipe::drill {
namespace {

namespace fs = std::filesystem;
using route53::XmlNode;

// What the checks found, and what they could not.
struct Stack {
  partition::KeyPair key;
  partition::RegionEntry primary, standby;
  partition::GlobalEntry global;
  std::string dns_server;  // HOST:PORT
  // Route 53
  std::string name;
  std::string zone_id;
  std::string primary_target, secondary_target;  // addresses (or alias DNS names) of the two record sets
  std::string health_check;                       // HealthCheckId, or "alias (EvaluateTargetHealth)"
  uint32_t ttl = 0;
  // RDS
  std::string db_id, db_arn, master_user;
  DbTarget db_endpoint;
  std::string replica_id, replica_arn;
  DbTarget replica_endpoint;
  std::string password;  // never printed
};

struct Problems {
  std::vector<std::string> missing;
  void Add(std::string s) { missing.push_back(std::move(s)); }
  bool empty() const { return missing.empty(); }
};

bool InBlock(const std::string& address, const std::string& block) {
  std::string a = address;
  if (!a.empty() && a.back() == '.') a.pop_back();
  return !block.empty() && a.rfind(block + ".", 0) == 0;
}

std::string Trim(std::string s) {
  s.erase(0, s.find_first_not_of(" \t\r\n"));
  s.erase(s.find_last_not_of(" \t\r\n") + 1);
  return s;
}

std::optional<std::string> ReadSmallFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return std::nullopt;
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string WithDot(std::string n) {
  if (!n.empty() && n.back() != '.') n += '.';
  return n;
}

std::string Lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

// --- Route 53 -------------------------------------------------------------------------------------------------

Result<XmlNode> Route53Get(const Stack& st, const std::string& target) {
  partition::ApiCall call;
  call.endpoint = st.global.endpoint;
  call.region = "us-east-1";
  call.service = "route53";
  call.method = "GET";
  call.target = target;
  call.timeout_ms = 5000;
  return partition::CallApi(call, st.key);
}

struct RecordSet {
  std::string name, type, set_id, failover, health_check, alias_target;
  bool evaluate_target_health = false;
  uint32_t ttl = 0;
  std::vector<std::string> values;
};

std::vector<RecordSet> ParseRecordSets(const XmlNode& reply) {
  std::vector<RecordSet> out;
  for (const XmlNode* r : partition::FindAll(reply, "ResourceRecordSet")) {
    RecordSet rs;
    rs.name = Lower(r->ChildText("Name"));
    rs.type = r->ChildText("Type");
    rs.set_id = r->ChildText("SetIdentifier");
    rs.failover = r->ChildText("Failover");
    rs.health_check = r->ChildText("HealthCheckId");
    const std::string ttl = r->ChildText("TTL");
    rs.ttl = ttl.empty() ? 60 : static_cast<uint32_t>(std::stoul(ttl));
    if (const XmlNode* alias = r->Child("AliasTarget")) {
      rs.alias_target = alias->ChildText("DNSName");
      rs.evaluate_target_health = alias->ChildText("EvaluateTargetHealth") == "true";
    }
    for (const XmlNode* v : partition::FindAll(*r, "Value")) rs.values.push_back(Trim(v->text));
    out.push_back(std::move(rs));
  }
  return out;
}

std::string Target(const RecordSet& rs) {
  if (!rs.alias_target.empty()) return rs.alias_target;
  return rs.values.empty() ? "" : rs.values.front();
}

void CheckRoute53(Stack& st, const DrillOptions& opts, Problems& problems) {
  auto zones = Route53Get(st, "/2013-04-01/hostedzone");
  if (!zones.ok()) {
    problems.Add("Route 53 (the global service at " + st.global.endpoint + ") did not answer ListHostedZones: " +
                 zones.status().message());
    return;
  }
  const std::string wanted = opts.name.empty() ? "" : Lower(WithDot(opts.name));
  std::vector<std::string> seen;
  for (const XmlNode* z : partition::FindAll(*zones, "HostedZone")) {
    std::string id = z->ChildText("Id");
    const std::string zone_name = Lower(z->ChildText("Name"));
    if (id.rfind("/hostedzone/", 0) == 0) id = id.substr(12);
    if (!wanted.empty() && !(wanted == zone_name || (wanted.size() > zone_name.size() &&
                                                      wanted.compare(wanted.size() - zone_name.size(),
                                                                     zone_name.size(), zone_name) == 0 &&
                                                      wanted[wanted.size() - zone_name.size() - 1] == '.'))) {
      continue;
    }
    auto sets = Route53Get(st, "/2013-04-01/hostedzone/" + id + "/rrset?maxitems=300");
    if (!sets.ok()) continue;
    std::map<std::string, std::pair<std::optional<RecordSet>, std::optional<RecordSet>>> failover;  // name
    for (auto& rs : ParseRecordSets(*sets)) {
      if (rs.type != "A" || rs.failover.empty()) continue;
      if (!wanted.empty() && rs.name != wanted) continue;
      if (rs.failover == "PRIMARY") failover[rs.name].first = rs;
      if (rs.failover == "SECONDARY") failover[rs.name].second = rs;
    }
    for (auto& [name, pair] : failover) {
      seen.push_back(name);
      if (!pair.first || !pair.second) continue;
      const RecordSet& p = *pair.first;
      const RecordSet& s = *pair.second;
      if (!InBlock(Target(p), st.primary.address_block) || !InBlock(Target(s), st.standby.address_block)) continue;
      if (p.health_check.empty() && !p.evaluate_target_health) {
        problems.Add("the failover record " + name + "'s PRIMARY has no health check (add HealthCheckId, or an alias "
                     "with EvaluateTargetHealth), so DNS would never leave region " + st.primary.region);
        return;
      }
      st.name = name;
      st.zone_id = id;
      st.primary_target = Target(p);
      st.secondary_target = Target(s);
      st.health_check = p.health_check.empty() ? "alias (EvaluateTargetHealth)" : p.health_check;
      st.ttl = p.alias_target.empty() ? p.ttl : 60;
      return;
    }
  }
  std::string msg = "no Route 53 failover record set (type A) whose PRIMARY points at region " + st.primary.region +
                    " (" + st.primary.address_block + ".x) and whose SECONDARY points at region " +
                    st.standby.region + " (" + st.standby.address_block + ".x)";
  if (!wanted.empty()) msg += " for " + wanted;
  if (!seen.empty()) {
    msg += "; failover names found:";
    for (const auto& n : seen) msg += " " + n;
  }
  auto first_lb = [&](const partition::RegionEntry& region) -> std::string {
    auto lbs = partition::CallRegion(region, st.key, "elasticloadbalancing",
                                     "Action=DescribeLoadBalancers&Version=2012-06-01", 5000);
    if (!lbs.ok()) return "";
    for (const XmlNode* d : partition::FindAll(*lbs, "member")) {
      if (d->Has("DNSName")) return d->ChildText("DNSName");
    }
    return "";
  };
  const std::string lb_a = first_lb(st.primary), lb_b = first_lb(st.standby);
  msg += ". Make one with the global service's Route 53 API: `aws route53 create-health-check` (Type HTTP, IPAddress " +
         (lb_a.empty() ? "<" + st.primary.region + "'s load balancer address>" : lb_a) +
         ", Port 80, RequestInterval 10, FailureThreshold 1), then `aws route53 change-resource-record-sets` with "
         "two A record sets of one name: Failover PRIMARY, value " +
         (lb_a.empty() ? "<" + st.primary.region + "'s load balancer address>" : lb_a) +
         ", that HealthCheckId; Failover SECONDARY, value " +
         (lb_b.empty() ? "<" + st.standby.region + "'s load balancer address>" : lb_b) + "; a short TTL";
  problems.Add(msg);
}

// The primary target must be a load balancer of the primary region (its DNSName is its address).
void CheckLoadBalancer(const Stack& st, const partition::RegionEntry& region, const std::string& target,
                       Problems& problems) {
  std::string address = target;
  if (!address.empty() && address.back() == '.') address.pop_back();
  auto lbs = partition::CallRegion(region, st.key, "elasticloadbalancing",
                                   "Action=DescribeLoadBalancers&Version=2012-06-01", 5000);
  if (!lbs.ok()) {
    problems.Add("region " + region.region + " did not answer DescribeLoadBalancers: " + lbs.status().message());
    return;
  }
  for (const XmlNode* d : partition::FindAll(*lbs, "member")) {
    if (d->ChildText("DNSName") != address) continue;
    auto health = partition::CallRegion(
        region, st.key, "elasticloadbalancing",
        "Action=DescribeInstanceHealth&Version=2012-06-01&LoadBalancerName=" + UriEncode(d->ChildText("LoadBalancerName")),
        5000);
    int in_service = 0;
    if (health.ok()) {
      for (const XmlNode* s : partition::FindAll(*health, "State")) in_service += s->text == "InService";
    }
    if (in_service == 0) {
      problems.Add("load balancer " + d->ChildText("LoadBalancerName") + " of region " + region.region +
                   " has no InService instance");
    }
    return;
  }
  problems.Add("the record's target " + address + " is not a load balancer of region " + region.region);
}

// --- RDS ------------------------------------------------------------------------------------------------------

struct DbInfo {
  std::string id, arn, status, source, master_user;
  std::vector<std::string> replicas;
  int backup_retention = 0;
  DbTarget endpoint;
};

Result<std::vector<DbInfo>> DescribeDbs(const partition::RegionEntry& region, const partition::KeyPair& key,
                                        const std::string& id = "") {
  std::string body = "Action=DescribeDBInstances&Version=2014-10-31";
  if (!id.empty()) body += "&DBInstanceIdentifier=" + UriEncode(id);
  auto reply = partition::CallRegion(region, key, "rds", body, 5000);
  if (!reply.ok()) return reply.status();
  std::vector<DbInfo> out;
  for (const XmlNode* d : partition::FindAll(*reply, "DBInstance")) {
    DbInfo db;
    db.id = d->ChildText("DBInstanceIdentifier");
    db.arn = d->ChildText("DBInstanceArn");
    db.status = d->ChildText("DBInstanceStatus");
    db.source = d->ChildText("ReadReplicaSourceDBInstanceIdentifier");
    db.master_user = d->ChildText("MasterUsername");
    const std::string retention = d->ChildText("BackupRetentionPeriod");
    db.backup_retention = retention.empty() ? 0 : std::atoi(retention.c_str());
    if (const XmlNode* r = d->Child("ReadReplicaDBInstanceIdentifiers")) {
      for (const auto& c : r->children) db.replicas.push_back(Trim(c.text));
    }
    if (const XmlNode* e = d->Child("Endpoint")) {
      db.endpoint.host = e->ChildText("Address");
      const std::string port = e->ChildText("Port");
      db.endpoint.port = port.empty() ? 3306 : std::atoi(port.c_str());
    }
    out.push_back(std::move(db));
  }
  return out;
}

bool IsReplicaOf(const DbInfo& replica, const DbInfo& source) {
  return !replica.source.empty() && (replica.source == source.arn || replica.source == source.id);
}

// The master password: AUTOPIPE_DRILL_DB_PASSWORD, a 0600 file, or the region's own store (0600, read-only).
Result<std::string> MasterPassword(const DrillOptions& opts, const partition::RegionEntry& region,
                                   const std::string& db_id) {
  if (const char* env = std::getenv("AUTOPIPE_DRILL_DB_PASSWORD"); env && *env) return std::string(env);
  if (!opts.password_file.empty()) {
    struct stat sb {};
    if (::stat(opts.password_file.c_str(), &sb) != 0) {
      return Status::InvalidParameterValue("cannot read --db-password-file " + opts.password_file);
    }
    if ((sb.st_mode & 077) != 0 || sb.st_uid != ::getuid()) {
      return Status::InvalidParameterValue("--db-password-file " + opts.password_file +
                                           " must be yours and not readable by others (chmod 600)");
    }
    auto text = ReadSmallFile(opts.password_file);
    if (!text) return Status::InvalidParameterValue("cannot read --db-password-file " + opts.password_file);
    std::string pw = *text;
    while (!pw.empty() && (pw.back() == '\n' || pw.back() == '\r')) pw.pop_back();
    return pw;
  }
  const std::string path = region.data_dir + "/state.db";
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
    if (db) sqlite3_close(db);
    return Status::InvalidParameterValue("cannot open " + path + " to read the master password");
  }
  sqlite3_busy_timeout(db, 2000);
  sqlite3_stmt* stmt = nullptr;
  std::optional<std::string> doc;
  if (sqlite3_prepare_v2(db, "SELECT doc FROM documents WHERE kind = 'db_instance_secret' AND id = ?", -1, &stmt,
                         nullptr) == SQLITE_OK) {
    sqlite3_bind_text(stmt, 1, db_id.c_str(), -1, SQLITE_TRANSIENT);
    if (sqlite3_step(stmt) == SQLITE_ROW) {
      const unsigned char* text = sqlite3_column_text(stmt, 0);
      if (text) doc = reinterpret_cast<const char*>(text);
    }
  }
  sqlite3_finalize(stmt);
  sqlite3_close(db);
  if (!doc) return Status::InvalidParameterValue("no master password for " + db_id + " in " + path);
  auto j = nlohmann::json::parse(*doc, nullptr, false);
  if (!j.is_object() || !j.contains("MasterUserPassword") || !j["MasterUserPassword"].is_string()) {
    return Status::InvalidParameterValue("no master password for " + db_id + " in " + path);
  }
  return j["MasterUserPassword"].get<std::string>();
}

Status WaitReplicaAvailable(const Stack& st, const std::string& id, double limit_s) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(limit_s);
  std::string last = "unknown";
  while (std::chrono::steady_clock::now() < deadline) {
    auto dbs = DescribeDbs(st.standby, st.key, id);
    if (dbs.ok() && !dbs->empty()) {
      last = dbs->front().status;
      if (last == "available") return Status::Ok();
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1000));
  }
  return Status(408, "Timeout", "read replica " + id + " is still " + last);
}

void CheckDatabase(Stack& st, const DrillOptions& opts, Problems& problems) {
  auto dbs = DescribeDbs(st.primary, st.key, opts.db_instance);
  if (!dbs.ok()) {
    problems.Add("region " + st.primary.region + ": DescribeDBInstances" +
                 (opts.db_instance.empty() ? "" : " " + opts.db_instance) + ": " + dbs.status().message());
    return;
  }
  auto replicas = DescribeDbs(st.standby, st.key);
  if (!replicas.ok()) {
    problems.Add("region " + st.standby.region + ": DescribeDBInstances: " + replicas.status().message());
    return;
  }
  std::vector<DbInfo> sources;
  for (const auto& d : *dbs) {
    if (d.source.empty()) sources.push_back(d);  // a replica is not a primary
  }
  const DbInfo* source = nullptr;
  const DbInfo* replica = nullptr;
  for (const auto& s : sources) {
    for (const auto& r : *replicas) {
      if (IsReplicaOf(r, s) && !replica) {
        source = &s;
        replica = &r;
      }
    }
  }
  if (!source) {
    if (sources.size() == 1) source = &sources.front();
    else if (sources.empty()) {
      problems.Add("region " + st.primary.region + " has no DB instance (--skip-db drills HTTP and DNS only)");
      return;
    } else {
      problems.Add("region " + st.primary.region + " has several DB instances and none has a read replica in " +
                   st.standby.region + ": say which with --db-instance");
      return;
    }
  }
  st.db_id = source->id;
  st.db_arn = source->arn;
  st.master_user = source->master_user;
  st.db_endpoint = source->endpoint;
  if (source->status != "available") {
    problems.Add("DB instance " + source->id + " is " + source->status + ", not available");
  }
  if (source->backup_retention < 1) {
    problems.Add("DB instance " + source->id + " has BackupRetentionPeriod 0; a read replica needs >= 1 "
                 "(aws rds modify-db-instance --db-instance-identifier " + source->id +
                 " --backup-retention-period 1 --apply-immediately)");
  }
  if (!replica && opts.create_replica && problems.empty()) {
    const std::string id = source->id + "-" + st.standby.region;
    auto made = partition::CallRegion(
        st.standby, st.key, "rds",
        "Action=CreateDBInstanceReadReplica&Version=2014-10-31&DBInstanceIdentifier=" + UriEncode(id) +
            "&SourceDBInstanceIdentifier=" + UriEncode(source->arn) + "&SourceRegion=" + UriEncode(st.primary.region),
        10000);
    if (!made.ok()) {
      problems.Add("CreateDBInstanceReadReplica " + id + " in " + st.standby.region + ": " + made.status().code() +
                   ": " + made.status().message());
      return;
    }
    std::cerr << "autopipe drill: creating read replica " << id << " in " << st.standby.region << "...\n";
    if (Status w = WaitReplicaAvailable(st, id, 600); !w.ok()) {
      problems.Add(w.message());
      return;
    }
    auto again = DescribeDbs(st.standby, st.key, id);
    if (again.ok() && !again->empty()) {
      st.replica_id = again->front().id;
      st.replica_arn = again->front().arn;
      st.replica_endpoint = again->front().endpoint;
    }
  } else if (!replica) {
    problems.Add("DB instance " + source->id + " has no read replica in region " + st.standby.region +
                 ": make one with `aws --region " + st.standby.region +
                 " rds create-db-instance-read-replica --db-instance-identifier " + source->id + "-replica "
                 "--source-db-instance-identifier " + source->arn + " --source-region " + st.primary.region +
                 "` (or run the drill with --create-replica)");
    return;
  } else {
    st.replica_id = replica->id;
    st.replica_arn = replica->arn;
    st.replica_endpoint = replica->endpoint;
    if (replica->status != "available") {
      problems.Add("read replica " + replica->id + " in " + st.standby.region + " is " + replica->status +
                   ", not available");
    }
  }
  auto pw = MasterPassword(opts, st.primary, st.db_id);
  if (!pw.ok()) {
    problems.Add(pw.status().message() + " (give it in AUTOPIPE_DRILL_DB_PASSWORD or --db-password-file)");
  } else {
    st.password = *pw;
  }
}

Result<Stack> CheckPreconditions(const DrillOptions& opts, bool quiet) {
  Stack st;
  Problems problems;
  const fs::path dir = fs::absolute(opts.partition);
  if (!fs::exists(dir / "credentials")) {
    return Status(400, "Precondition", dir.string() + " is not a partition (no credentials file)");
  }
  auto key = partition::EnsureKeyPair(dir.string());
  if (!key.ok()) return key.status();
  st.key = *key;
  auto primary = partition::FindRegion(dir.string(), opts.region);
  if (!primary) {
    problems.Add("region " + opts.region + " is not in partition " + dir.string());
  } else if (!primary->alive) {
    problems.Add("region " + opts.region + " is not running (its server, pid " + std::to_string(primary->pid) +
                 ", is gone)");
  } else {
    st.primary = *primary;
  }
  std::vector<partition::RegionEntry> others;
  for (const auto& e : partition::ListRegions(dir.string())) {
    if (e.region != opts.region && e.alive) others.push_back(e);
  }
  if (!opts.standby_region.empty()) {
    auto standby = partition::FindRegion(dir.string(), opts.standby_region);
    if (!standby || !standby->alive) {
      problems.Add("standby region " + opts.standby_region + " is not running in partition " + dir.string());
    } else {
      st.standby = *standby;
    }
  } else if (others.size() == 1) {
    st.standby = others.front();
  } else {
    problems.Add(others.empty() ? "no other region runs in partition " + dir.string() + " to fail over to"
                                : "several other regions run: say which is the standby with --standby-region");
  }
  auto global = partition::ReadGlobal(dir.string());
  if (!global || !global->alive) {
    problems.Add("the global service (Route 53 and its DNS server) is not running in partition " + dir.string() +
                 " (autopipe global --partition " + dir.string() + ")");
  } else {
    st.global = *global;
    st.dns_server = global->dns_address;
    if (st.dns_server.empty()) {
      if (auto text = ReadSmallFile(global->data_dir + "/dns-address")) st.dns_server = Trim(*text);
    }
    if (st.dns_server.empty()) problems.Add("the global service has not written its DNS server's address");
  }
  if (!problems.empty()) {
    std::string msg = "the drill cannot start:";
    for (const auto& p : problems.missing) msg += "\n  - " + p;
    return Status(400, "Precondition", msg);
  }
  CheckRoute53(st, opts, problems);
  if (!st.primary_target.empty()) {
    CheckLoadBalancer(st, st.primary, st.primary_target, problems);
    CheckLoadBalancer(st, st.standby, st.secondary_target, problems);
  }
  if (!opts.skip_db) CheckDatabase(st, opts, problems);
  if (!problems.empty()) {
    std::string msg = "the drill cannot start:";
    for (const auto& p : problems.missing) msg += "\n  - " + p;
    return Status(400, "Precondition", msg);
  }
  (void)quiet;
  return st;
}

bool Confirmed(const DrillOptions& opts, const Stack& st) {
  if (opts.yes) return true;
  if (!::isatty(STDIN_FILENO)) {
    std::cerr << "autopipe drill: this stops every process of region " << st.primary.region
              << " (SIGKILL); stdin is not a terminal, so confirm with --yes\n";
    return false;
  }
  std::cerr << "This kills every process of region " << st.primary.region << " (" << st.primary.data_dir
            << ") and promotes " << (st.replica_id.empty() ? "nothing" : st.replica_id) << " in "
            << st.standby.region << ".\nType the region's name to go on: " << std::flush;
  std::string line;
  std::getline(std::cin, line);
  return Trim(line) == st.primary.region;
}

void Say(const DrillOptions& opts, const std::string& text) {
  if (!opts.json) std::cerr << "autopipe drill: " << text << "\n";
}

}  // namespace

int RunRegionOutageDrill(const DrillOptions& opts) {
  auto checked = CheckPreconditions(opts, opts.json);
  if (!checked.ok()) {
    std::cerr << "autopipe drill: " << checked.status().message() << "\n";
    return 2;
  }
  Stack& st = *checked;
  if (!Confirmed(opts, st)) {
    std::cerr << "autopipe drill: not confirmed; nothing was touched\n";
    return 2;
  }
  const std::string run_id = "drill-" + NewUuid().substr(0, 8);
  DrillMeasurements m;
  m.with_db = !opts.skip_db;
  const SteadyTime t0 = std::chrono::steady_clock::now();
  const SteadyTime deadline = t0 + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                                       std::chrono::duration<double>(opts.duration_s));
  auto note = [&](const std::string& what) { m.timeline.push_back({SecondsSince(t0), what}); };
  note("preconditions met: " + st.name + " fails over from " + st.primary_target + " (" + st.primary.region +
       ") to " + st.secondary_target + " (" + st.standby.region + "), health check " + st.health_check + ", TTL " +
       std::to_string(st.ttl) + " s" +
       (m.with_db ? "; DB " + st.db_id + " replicates to " + st.replica_id + " in " + st.standby.region : ""));
  if (m.with_db) {
    if (Status prep = PrepareDrillTable(st.db_endpoint, st.master_user, st.password); !prep.ok()) {
      std::cerr << "autopipe drill: " << prep.message() << "; nothing was touched\n";
      return 2;
    }
    // The table must have reached the replica, or writes after the failover could not land.
    bool replicated = false;
    for (int i = 0; i < 120 && !replicated; ++i) {
      replicated = ReadDrillSeqs(st.replica_endpoint, st.master_user, st.password, run_id).ok();
      if (!replicated) std::this_thread::sleep_for(std::chrono::milliseconds(250));
    }
    if (!replicated) {
      std::cerr << "autopipe drill: the drill table did not reach the replica " << st.replica_id
                << " within 30 s; nothing was touched\n";
      return 2;
    }
    note("drill table autopipe_drill.writes ready on both sides (run " + run_id + ")");
  }
  HttpLoadOptions hopts;
  hopts.dns_server = st.dns_server;
  hopts.name = st.name;
  hopts.port = opts.http_port;
  hopts.path = opts.http_path;
  hopts.interval = std::chrono::milliseconds(opts.http_interval_ms);
  hopts.max_requests = opts.max_requests;
  HttpLoad http(t0, hopts);
  WriteLoadOptions wopts;
  wopts.user = st.master_user;
  wopts.password = st.password;
  wopts.run_id = run_id;
  wopts.interval = std::chrono::milliseconds(opts.write_interval_ms);
  wopts.max_writes = opts.max_requests;
  std::optional<WriteLoad> writes;
  http.Start(deadline);
  if (m.with_db) {
    writes.emplace(t0, wopts, st.db_endpoint);
    writes->Start(deadline);
  }
  note("load started: GET http://" + st.name + opts.http_path + " every " + std::to_string(opts.http_interval_ms) +
       " ms" + (m.with_db ? ", INSERT every " + std::to_string(opts.write_interval_ms) + " ms" : ""));
  Say(opts, "warming up for " + std::to_string(static_cast<int>(opts.warmup_s)) + " s");
  std::this_thread::sleep_until(std::min(deadline, t0 + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                                                            std::chrono::duration<double>(opts.warmup_s))));
  const bool http_ok = http.FirstOkStartedAfter(0) >= 0;
  const bool writes_ok = !m.with_db || writes->Acked() > 0;
  if (!http_ok || !writes_ok) {
    http.Stop();
    if (writes) writes->Stop();
    std::cerr << "autopipe drill: the load does not succeed before the outage ("
              << (!http_ok ? "no HTTP answer through " + st.name : "no write acknowledged")
              << "); region " << st.primary.region << " was not touched\n";
    return 2;
  }
  // The outage.
  Exclusions ex;
  ex.pids = SelfAndAncestors();
  for (const auto& e : partition::ListRegions(opts.partition)) {
    if (e.region != st.primary.region && e.alive) ex.trees.insert(static_cast<pid_t>(e.pid));
  }
  if (st.global.alive) ex.trees.insert(static_cast<pid_t>(st.global.pid));
  RegionMarks marks{static_cast<pid_t>(st.primary.pid), st.primary.pid_start_time,
                    fs::absolute(st.primary.data_dir).lexically_normal().string(), st.primary.address_block};
  while (marks.data_dir.size() > 1 && marks.data_dir.back() == '/') marks.data_dir.pop_back();
  Say(opts, "stopping every process of region " + st.primary.region);
  auto killed = KillRegion(marks, ex);
  if (!killed.ok()) {
    http.Stop();
    if (writes) writes->Stop();
    std::cerr << "autopipe drill: " << killed.status().message() << "\n";
    return 2;
  }
  auto at = [&](int64_t steady_ns) {
    return std::chrono::duration<double>(std::chrono::steady_clock::time_point(std::chrono::nanoseconds(steady_ns)) -
                                         t0)
        .count();
  };
  // The outage starts when every process is frozen and killed: a process not yet frozen may still answer.
  m.stop_s = at(killed->killed_ns);
  m.timeline.push_back({at(killed->first_stop_ns), "freezing region " + st.primary.region +
                                                       " (SIGSTOP: its server first, then every process found: " +
                                                       std::to_string(killed->killed.size()) + ")"});
  m.timeline.push_back({m.stop_s, "SIGKILL sent to all " + std::to_string(killed->killed.size()) +
                                      " processes of " + st.primary.region + ": the region is down" +
                                      (killed->left ? " (" + std::to_string(killed->left) +
                                                          " still alive after 10 s)"
                                                    : "")});
  if (writes) {
    writes->SwitchTarget(st.replica_endpoint);
    note("writes now go to " + st.replica_id + " (" + st.replica_endpoint.host + ":" +
         std::to_string(st.replica_endpoint.port) + ")");
    Say(opts, "promoting " + st.replica_id + " in " + st.standby.region);
    bool accepted = false;
    std::string last_error;
    for (int i = 0; i < 20 && !accepted && std::chrono::steady_clock::now() < deadline; ++i) {
      auto promoted = partition::CallRegion(st.standby, st.key, "rds",
                                            "Action=PromoteReadReplica&Version=2014-10-31&DBInstanceIdentifier=" +
                                                UriEncode(st.replica_id),
                                            10000);
      accepted = promoted.ok();
      if (!accepted) {
        last_error = promoted.status().code() + ": " + promoted.status().message();
        std::this_thread::sleep_for(std::chrono::milliseconds(500));
      }
    }
    note(accepted ? "PromoteReadReplica " + st.replica_id + " accepted by " + st.standby.region
                  : "PromoteReadReplica failed: " + last_error);
    while (accepted && std::chrono::steady_clock::now() < deadline) {
      auto dbs = DescribeDbs(st.standby, st.key, st.replica_id);
      if (dbs.ok() && !dbs->empty() && dbs->front().status == "available" && dbs->front().source.empty()) {
        note(st.replica_id + " is a standalone instance (available, no replication source)");
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
  }
  // Until both recovered, then a little more; bounded by the deadline.
  std::optional<SteadyTime> recovered;
  while (std::chrono::steady_clock::now() < deadline) {
    const bool h = http.FirstOkStartedAfter(m.stop_s) >= 0;
    const bool w = !writes || writes->AckedNew();
    if (h && w) {
      if (!recovered) recovered = std::chrono::steady_clock::now();
      if (std::chrono::steady_clock::now() - *recovered >= std::chrono::duration<double>(opts.settle_s)) break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  http.Stop();
  if (writes) writes->Stop();
  note("load stopped");
  m.http = http.Samples();
  if (writes) {
    m.writes = writes->Samples();
    auto present = ReadDrillSeqs(st.replica_endpoint, st.master_user, st.password, run_id);
    if (present.ok()) {
      m.present_read = true;
      m.present_in_new.insert(present->begin(), present->end());
      note("read " + std::to_string(present->size()) + " rows of this run from " + st.replica_id);
    } else {
      note("could not read the promoted instance's table: " + present.status().message());
    }
  }
  // What the clients saw, on the timeline.
  {
    std::optional<double> last_ok_before, first_fail, first_new_address, first_ok_after;
    for (const auto& h : m.http) {
      if (h.start_s < m.stop_s && h.ok) last_ok_before = h.end_s;
      if (h.end_s >= m.stop_s && !h.ok && !first_fail) first_fail = h.end_s;
      if (h.start_s >= m.stop_s && !first_new_address && InBlock(h.address, st.standby.address_block)) {
        first_new_address = h.start_s;
      }
      if (h.start_s >= m.stop_s && h.ok && !first_ok_after) first_ok_after = h.end_s;
    }
    if (last_ok_before) m.timeline.push_back({*last_ok_before, "last HTTP answer before the stop"});
    if (first_fail) m.timeline.push_back({*first_fail, "first failed HTTP request"});
    if (first_new_address) {
      m.timeline.push_back({*first_new_address, "the client's resolver answered " + st.standby.region + "'s address"});
    }
    if (first_ok_after) m.timeline.push_back({*first_ok_after, "HTTP through " + st.name + " answers again"});
    std::optional<double> last_old_ack, first_new_ack;
    for (const auto& w : m.writes) {
      if (w.acked && w.target == WriteTarget::kOld) last_old_ack = w.end_s;
      if (w.acked && w.target == WriteTarget::kNew && !first_new_ack) first_new_ack = w.end_s;
    }
    if (last_old_ack) m.timeline.push_back({*last_old_ack, "last write acknowledged by " + st.primary.region});
    if (first_new_ack) m.timeline.push_back({*first_new_ack, "first write acknowledged by " + st.standby.region});
    std::stable_sort(m.timeline.begin(), m.timeline.end(),
                     [](const TimelineEvent& a, const TimelineEvent& b) { return a.at_s < b.at_s; });
  }
  DrillReport r = Summarize(m);
  const size_t scheme = st.primary.endpoint.find("://");
  const std::string listen =
      scheme == std::string::npos ? "127.0.0.1:0" : st.primary.endpoint.substr(scheme + 3);
  const std::string restart = "autopipe server --data-dir " + st.primary.data_dir + " --listen " + listen + " --region " +
                              st.primary.region + " --partition " + fs::absolute(opts.partition).string() +
                              " --address-block " + st.primary.address_block;
  std::vector<std::string> next_steps = {
      "Region " + st.primary.region + " stays down (its partition entry shows a dead pid). Bring it back with: " +
          restart,
  };
  if (m.with_db) {
    next_steps.push_back(
        "Its DB instance " + st.db_id + " comes back as it was at the stop, a standalone primary that diverged from "
        + st.replica_id + ": do not point clients at it. To rejoin, delete it and make it a replica of the promoted "
        "instance: aws --region " + st.primary.region + " rds delete-db-instance --db-instance-identifier " +
        st.db_id + " --skip-final-snapshot; then aws --region " + st.primary.region +
        " rds create-db-instance-read-replica --db-instance-identifier " + st.db_id +
        " --source-db-instance-identifier " + st.replica_arn + " --source-region " + st.standby.region +
        " (or, once the region runs again: autopipe drill rejoin --partition " + fs::absolute(opts.partition).string() +
        " --region " + st.primary.region + " --db-instance " + st.db_id + " --source-db-instance " + st.replica_id +
        " --yes, which keeps a final snapshot of the old instance)");
    next_steps.push_back("The promoted instance " + st.replica_id + " in " + st.standby.region +
                         " is the writer now (its backups have started); the drill's rows are in "
                         "autopipe_drill.writes, run_id " + run_id);
  }
  next_steps.push_back("DNS: " + st.name + " answers " + st.secondary_target + " until the PRIMARY's health check "
                       "passes again");
  const bool ok = r.http_recovery_s.has_value() && (!m.with_db || r.db_recovery_s.has_value());
  if (opts.json) {
    auto j = ReportJson(m, r);
    j["ok"] = ok;
    j["run_id"] = run_id;
    j["name"] = st.name;
    nlohmann::ordered_json procs = nlohmann::ordered_json::array();
    for (const auto& p : killed->killed) {
      if (procs.size() >= 100) break;
      procs.push_back({{"pid", p.pid}, {"command", p.cmdline.substr(0, 160)}});
    }
    j["old_region"] = {{"region", st.primary.region},
                       {"processes", procs},
                       {"target", st.primary_target},
                       {"processes_killed", killed->killed.size()},
                       {"processes_left", killed->left},
                       {"db_instance", st.db_id}};
    j["new_region"] = {{"region", st.standby.region},
                       {"target", st.secondary_target},
                       {"db_instance", st.replica_id},
                       {"db_endpoint", st.replica_endpoint.host + ":" + std::to_string(st.replica_endpoint.port)}};
    j["dns"] = {{"server", st.dns_server}, {"ttl", st.ttl}, {"health_check", st.health_check}};
    j["next_steps"] = next_steps;
    std::cout << j.dump(2) << "\n";
  } else {
    std::cout << ReportText(m, r);
    std::cout << "State now:\n";
    for (const auto& s : next_steps) std::cout << "  - " << s << "\n";
  }
  return ok ? 0 : 1;
}

int RunRejoin(const RejoinOptions& opts) {
  const fs::path dir = fs::absolute(opts.partition);
  if (!fs::exists(dir / "credentials")) {
    std::cerr << "autopipe drill rejoin: " << dir.string() << " is not a partition\n";
    return 2;
  }
  auto key = partition::EnsureKeyPair(dir.string());
  if (!key.ok()) {
    std::cerr << "autopipe drill rejoin: " << key.status().message() << "\n";
    return 2;
  }
  auto old_region = partition::FindRegion(dir.string(), opts.region);
  if (!old_region || !old_region->alive) {
    std::cerr << "autopipe drill rejoin: region " << opts.region << " is not running: start it again first "
              << "(autopipe server --data-dir DIR --region " << opts.region << " --partition " << dir.string()
              << ")\n";
    return 2;
  }
  std::optional<partition::RegionEntry> from;
  for (const auto& e : partition::ListRegions(dir.string())) {
    if (e.region == opts.region || !e.alive) continue;
    if (opts.from_region.empty() ? !from.has_value() : e.region == opts.from_region) from = e;
    else if (opts.from_region.empty()) {
      std::cerr << "autopipe drill rejoin: several regions run: say which has the promoted instance (--from-region)\n";
      return 2;
    }
  }
  if (!from) {
    std::cerr << "autopipe drill rejoin: no running region holds the promoted instance\n";
    return 2;
  }
  auto promoted = DescribeDbs(*from, *key, opts.source_instance);
  if (!promoted.ok() || promoted->empty()) {
    std::cerr << "autopipe drill rejoin: " << opts.source_instance << " in " << from->region << ": "
              << (promoted.ok() ? "not found" : promoted.status().message()) << "\n";
    return 2;
  }
  const DbInfo source = promoted->front();
  if (!source.source.empty() || source.status != "available") {
    std::cerr << "autopipe drill rejoin: " << source.id << " is " << source.status
              << (source.source.empty() ? "" : ", and still a replica of " + source.source)
              << "; it must be an available standalone instance\n";
    return 2;
  }
  auto old = DescribeDbs(*old_region, *key, opts.db_instance);
  const bool exists = old.ok() && !old->empty();
  if (exists && IsReplicaOf(old->front(), source)) {
    std::cout << opts.db_instance << " in " << opts.region << " already replicates " << source.id << "\n";
    return 0;
  }
  if (exists) {
    if (!opts.yes) {
      std::cerr << "autopipe drill rejoin: this deletes " << opts.db_instance << " in " << opts.region
                << " (after a final snapshot) to make it a replica of " << source.id << "; confirm with --yes\n";
      return 2;
    }
    char stamp[32];
    std::time_t now = std::time(nullptr);
    std::strftime(stamp, sizeof(stamp), "%Y%m%d%H%M%S", std::gmtime(&now));
    const std::string snapshot = opts.db_instance + "-before-rejoin-" + stamp;
    auto del = partition::CallRegion(*old_region, *key, "rds",
                                     "Action=DeleteDBInstance&Version=2014-10-31&DBInstanceIdentifier=" +
                                         UriEncode(opts.db_instance) + "&FinalDBSnapshotIdentifier=" +
                                         UriEncode(snapshot),
                                     10000);
    if (!del.ok()) {
      std::cerr << "autopipe drill rejoin: DeleteDBInstance " << opts.db_instance << ": " << del.status().code()
                << ": " << del.status().message() << "\n";
      return 1;
    }
    std::cerr << "autopipe drill rejoin: deleting " << opts.db_instance << " (final snapshot " << snapshot
              << ")...\n";
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(opts.timeout_s);
    for (;;) {
      auto left = DescribeDbs(*old_region, *key, opts.db_instance);
      if (!left.ok() && left.status().code() == "DBInstanceNotFound") break;
      if (std::chrono::steady_clock::now() > deadline) {
        std::cerr << "autopipe drill rejoin: " << opts.db_instance << " is not gone yet\n";
        return 1;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
    }
  }
  auto made = partition::CallRegion(
      *old_region, *key, "rds",
      "Action=CreateDBInstanceReadReplica&Version=2014-10-31&DBInstanceIdentifier=" + UriEncode(opts.db_instance) +
          "&SourceDBInstanceIdentifier=" + UriEncode(source.arn) + "&SourceRegion=" + UriEncode(from->region),
      10000);
  if (!made.ok()) {
    std::cerr << "autopipe drill rejoin: CreateDBInstanceReadReplica " << opts.db_instance << ": "
              << made.status().code() << ": " << made.status().message() << "\n";
    return 1;
  }
  std::cerr << "autopipe drill rejoin: creating " << opts.db_instance << " in " << opts.region
            << " as a read replica of " << source.arn << "...\n";
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(opts.timeout_s);
  std::string status = "creating";
  while (std::chrono::steady_clock::now() < deadline) {
    auto dbs = DescribeDbs(*old_region, *key, opts.db_instance);
    if (dbs.ok() && !dbs->empty()) status = dbs->front().status;
    if (status == "available") break;
    std::this_thread::sleep_for(std::chrono::milliseconds(1000));
  }
  if (status != "available") {
    std::cerr << "autopipe drill rejoin: " << opts.db_instance << " is still " << status << "\n";
    return 1;
  }
  std::cout << opts.db_instance << " in " << opts.region << " is a read replica of " << source.id << " in "
            << from->region << ". The roles are now reversed: a drill the other way is\n  autopipe drill "
            << "region-outage --partition " << dir.string() << " --region " << from->region << " --standby-region "
            << opts.region << "\n(the failover record set must then have its PRIMARY in " << from->region << ").\n";
  return 0;
}

}  // namespace autopipe::drill

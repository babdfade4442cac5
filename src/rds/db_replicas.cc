#include "rds/db_replicas.h"

#include <openssl/rand.h>
#include <openssl/sha.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <sstream>
#include <thread>

#include "common/log.h"
#include "ec2/instances.h"
#include "lb/node_files.h"
#include "process/recorded_process.h"
#include "rds/db_controller.h"
#include "rds/db_instances.h"

namespace fs = std::filesystem;

namespace autopipe::rds {
namespace {

constexpr char kDumpTool[] = "/usr/bin/mariadb-dump";
constexpr char kClientTool[] = "/usr/bin/mariadb";
constexpr int64_t kDumpTimeoutMs = 60LL * 60 * 1000;
// How long a new replica waits for its replication user to exist on the source (the source's controller creates it
// within a pass or two; a source failing over takes longer).
constexpr int kSourceLoginWaitS = 120;

std::string Str(const Json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : "";
}

int BufferPoolMb(const std::string& cls) {
  if (cls.find("micro") != std::string::npos || cls.find("small") != std::string::npos) return 16;
  if (cls.find("medium") != std::string::npos) return 32;
  return 64;
}

bool AllowedIdentifierChar(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '-'; }

Status CancelledStatus() { return Status(409, "Cancelled", "the instance is being deleted"); }

}  // namespace

// ---- the rules ------------------------------------------------------------------------------------------------

Result<ReplicaSource> ParseReplicaSource(const std::string& value, const std::string& own_region,
                                         const std::string& account) {
  auto invalid = [&] {
    return Status::InvalidParameterValue("Invalid source DB instance identifier or ARN: " + value);
  };
  if (value.empty())
    return Status::InvalidParameterValue("The parameter SourceDBInstanceIdentifier must be provided and must not be blank.");
  ReplicaSource src;
  std::string id = value;
  if (value.rfind("arn:", 0) == 0) {
    // arn:aws:rds:<region>:<account>:db:<id>
    std::vector<std::string> parts;
    std::stringstream in(value);
    std::string part;
    while (std::getline(in, part, ':')) parts.push_back(part);
    if (parts.size() != 7 || parts[1] != "aws" || parts[2] != "rds" || parts[3].empty() || parts[5] != "db")
      return invalid();
    if (parts[4] != account) return Status(404, "DBInstanceNotFound", "DBInstance " + value + " not found.");
    src.region = parts[3];
    id = parts[6];
  } else {
    src.region = own_region;
  }
  if (id.empty() || id.size() > 63 || !std::isalpha(static_cast<unsigned char>(id[0])) ||
      !std::all_of(id.begin(), id.end(), AllowedIdentifierChar))
    return invalid();
  std::transform(id.begin(), id.end(), id.begin(), [](unsigned char c) { return std::tolower(c); });
  src.identifier = id;
  src.cross_region = src.region != own_region;
  return src;
}

std::string ReplicationUserFor(const std::string& replica) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(replica.data()), replica.size(), digest);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out = "rdsrepl_";
  for (int i = 0; i < 6; ++i) {
    out += kHex[digest[i] >> 4];
    out += kHex[digest[i] & 15];
  }
  return out;
}

int NewReplicaServerId() {
  uint32_t r = 0;
  if (RAND_bytes(reinterpret_cast<unsigned char*>(&r), sizeof r) != 1) std::abort();
  // 1000 .. 2^31-1: the servers of an instance are numbered from 1.
  return 1000 + static_cast<int>(r % (0x7fffffffu - 1000u));
}

double HeartbeatLagSeconds(int64_t heartbeat_ms, int64_t now_ms) {
  return std::max<int64_t>(0, now_ms - heartbeat_ms) / 1000.0;
}

// ---- the source side ------------------------------------------------------------------------------------------

Result<ReplicaGrant> RegisterReplica(const RegionContext& ctx, const std::string& source_id,
                                     const std::string& replica_id, const std::string& replica_region,
                                     std::vector<StoreWrite>* writes) {
  auto found = ctx.store->Get(kind::kDbInstance, source_id);
  if (!found || (*found)["Spec"].value("Deleting", false))
    return Status(404, "DBInstanceNotFound", "DBInstance " + source_id + " not found.");
  Json src = *found;
  const std::string status = Str(src, "DBInstanceStatus");
  if (status != db_status::kAvailable && status != db_status::kBackingUp)
    return Status(400, "InvalidDBInstanceState", "DB Instance " + source_id + " is not in an available state.");
  if (src.value("BackupRetentionPeriod", int64_t{0}) <= 0)
    return Status(400, "InvalidDBInstanceState",
                  "Automated backups are not enabled for this database instance. To enable automated backups, use "
                  "ModifyDBInstance to set the backup retention period to a non-zero value.");
  Json secret = ctx.store->Get(kind::kDbInstanceSecret, source_id).value_or(Json::object());
  const std::string user = ReplicationUserFor(replica_id);
  Json& passwords = secret["ReplicaUserPasswords"];
  if (!passwords.is_object()) passwords = Json::object();
  if (Str(passwords, user.c_str()).empty()) passwords[user] = RandomPassword();
  Json& replicas = src["ReadReplicas"];
  if (!replicas.is_array()) replicas = Json::array();
  bool listed = false;
  for (const auto& r : replicas) listed = listed || Str(r, "Id") == replica_id;
  if (!listed) {
    replicas.push_back({{"Id", replica_id}, {"Region", replica_region}, {"User", user},
                        {"CreatedAt", ctx.clock->NowMillis()}});
    AddEvent(ctx, "db-instance", source_id, "0045", "Read replica " + replica_id + " is being created from this instance",
             {"read replica"}, writes);
  }
  writes->push_back({kind::kDbInstance, source_id, src});
  writes->push_back({kind::kDbInstanceSecret, source_id, secret});
  ReplicaGrant g;
  g.address = Str(src["Endpoint"], "Address");
  g.port = src["Endpoint"].value("Port", src.value("Port", 3306));
  g.user = user;
  g.password = passwords[user].get<std::string>();
  g.about = Json::object();
  for (const char* key : {"Engine", "EngineVersion", "DBInstanceClass", "AllocatedStorage", "StorageType",
                          "MasterUsername", "Port", "DBName", "DBInstanceArn"}) {
    if (src.contains(key)) g.about[key] = src[key];
  }
  return g;
}

void DeregisterReplica(const RegionContext& ctx, const std::string& source_id, const std::string& replica_id,
                       std::vector<StoreWrite>* writes) {
  auto found = ctx.store->Get(kind::kDbInstance, source_id);
  if (!found || !found->contains("ReadReplicas")) return;
  Json src = *found;
  Json kept = Json::array();
  bool removed = false;
  for (const auto& r : src["ReadReplicas"]) {
    if (Str(r, "Id") == replica_id) removed = true;
    else kept.push_back(r);
  }
  if (!removed) return;
  src["ReadReplicas"] = kept;
  // The same document may already be in `writes` (the caller changes it too): the last write wins, so update it.
  for (auto& w : *writes) {
    if (w.kind == kind::kDbInstance && w.id == source_id && w.doc) {
      (*w.doc)["ReadReplicas"] = kept;
      return;
    }
  }
  writes->push_back({kind::kDbInstance, source_id, src});
}

bool ReplicaHoldsInstance(const Json& inst) {
  auto it = inst.find("ReadReplica");
  if (it == inst.end() || !it->is_object()) return false;
  const std::string state = Str(*it, "State");
  if (state == replica_state::kSeeding) return true;
  if (state == replica_state::kFailed) return !inst.value("Spec", Json::object()).value("Deleting", false);
  return false;
}

bool IsActiveReplica(const Json& inst) {
  auto it = inst.find("ReadReplica");
  if (it == inst.end() || !it->is_object()) return false;
  const std::string state = Str(*it, "State");
  return state == replica_state::kReplicating || state == replica_state::kPromoting;
}

// ---- SQL ------------------------------------------------------------------------------------------------------

Status EnsureReplicaUsers(Connection& primary, const std::vector<std::pair<std::string, std::string>>& create,
                          const std::vector<std::string>& drop) {
  if (!create.empty()) {
    // Before any replica's user exists: its dump (which needs the user) then comes after the table and its row, so
    // the replica, which makes its own copy, never receives their creation.
    AP_RETURN_IF_ERROR(primary.Exec(std::string("CREATE TABLE IF NOT EXISTS ") + kHeartbeatTable +
                                    " (id INT NOT NULL PRIMARY KEY, value BIGINT NOT NULL) ENGINE=InnoDB"));
    AP_RETURN_IF_ERROR(primary.Exec(std::string("INSERT IGNORE INTO ") + kHeartbeatTable + " VALUES (1, 0)"));
  }
  for (const auto& [user, password] : create) {
    const std::string who = primary.Quote(user) + "@'%'";
    AP_RETURN_IF_ERROR(primary.Exec("CREATE OR REPLACE USER " + who + " IDENTIFIED BY " + primary.Quote(password)));
    AP_RETURN_IF_ERROR(primary.Exec(
        "GRANT SELECT, RELOAD, LOCK TABLES, SHOW VIEW, EVENT, TRIGGER, REPLICATION SLAVE, REPLICATION CLIENT, "
        "BINLOG MONITOR ON *.* TO " + who));
  }
  for (const auto& user : drop) AP_RETURN_IF_ERROR(primary.Exec("DROP USER IF EXISTS " + primary.Quote(user) + "@'%'"));
  return Status::Ok();
}

Status WriteHeartbeat(Connection& primary, int64_t now_ms) {
  return primary.Exec(std::string("UPDATE ") + kHeartbeatTable + " SET value=" + std::to_string(now_ms) +
                      " WHERE id=1");
}

Result<std::optional<double>> ReadReplicaLag(Connection& replica, int64_t now_ms,
                                             std::optional<ReplicaState>* state_out) {
  AP_ASSIGN_OR_RETURN(auto state, ReadReplicaState(replica));
  if (state_out) *state_out = state;
  if (!state || !state->io_running || !state->sql_running) return std::optional<double>{};
  auto hb = replica.Scalar(std::string("SELECT value FROM ") + kHeartbeatTable + " WHERE id=1");
  if (hb.ok() && hb->has_value() && !(*hb)->empty()) {
    const int64_t value = std::stoll(**hb);
    if (value > 0) return std::optional<double>(HeartbeatLagSeconds(value, now_ms));
  }
  if (state->seconds_behind < 0) return std::optional<double>{};
  return std::optional<double>(double(state->seconds_behind));
}

Status PromoteReplicaServer(Connection& replica, int wait_s) {
  AP_ASSIGN_OR_RETURN(auto state, ReadReplicaState(replica));
  if (state) {
    AP_RETURN_IF_ERROR(replica.Exec("STOP SLAVE IO_THREAD"));
    if (state->sql_running) {
      AP_ASSIGN_OR_RETURN(auto rows, replica.Query("SHOW SLAVE STATUS"));
      const std::string received = rows.empty() ? "" : rows[0]["Gtid_IO_Pos"];
      if (!received.empty()) {
        // Everything received is applied before the replica stands alone (bounded: a stuck applier does not hold
        // the promotion forever).
        AP_ASSIGN_OR_RETURN(auto waited, replica.Scalar("SELECT MASTER_GTID_WAIT(" + replica.Quote(received) + ", " +
                                                        std::to_string(wait_s) + ")"));
        if (!waited || *waited != "0")
          spdlog::warn("read replica promotion: not everything received was applied within {} s", wait_s);
      }
    }
    AP_RETURN_IF_ERROR(replica.Exec("STOP SLAVE"));
    AP_RETURN_IF_ERROR(replica.Exec("RESET SLAVE ALL"));
  }
  return replica.Exec("SET GLOBAL read_only=0");
}

// ---- the controller -------------------------------------------------------------------------------------------

DbReplicaController::~DbReplicaController() { jobs_.JoinAll(); }

std::vector<std::string> DbReplicaController::Keys() {
  std::vector<std::string> keys;
  for (const auto& doc : ctx_->store->List(kind::kDbInstance)) {
    if (doc->contains("ReadReplica")) keys.push_back(Str(*doc, "DBInstanceIdentifier"));
  }
  return keys;
}

std::vector<Controller::Watch> DbReplicaController::Watches() const { return {{kind::kDbInstance, SameKey}}; }

ReconcileResult DbReplicaController::Reconcile(const std::string& id) {
  if (jobs_.Running(id)) return ReconcileResult::Done();  // the job's commits run this again
  std::optional<Json> inst;
  {
    std::lock_guard lock(*ctx_->mu);
    if (auto doc = ctx_->store->Get(kind::kDbInstance, id)) inst = *doc;
  }
  if (!inst || !inst->contains("ReadReplica")) return ReconcileResult::Done();
  if (Str((*inst)["ReadReplica"], "State") != replica_state::kSeeding) return ReconcileResult::Done();
  if ((*inst)["Spec"].value("Deleting", false)) return ReconcileResult::Done();  // the DB controller deletes it
  // seeding, and not being seeded by this process (new, or the server restarted mid-seed): (re)start from scratch.
  jobs_.Start(id, [this, id] {
    Status st = Seed(id);
    if (!st.ok() && st.code() != "Cancelled") {
      if (Status f = Fail(id, st); !f.ok()) spdlog::warn("db_instance={} replica failure not recorded: {}", id, f.ToString());
    }
  });
  return ReconcileResult::Done();
}

bool DbReplicaController::Cancelled(const std::string& id) {
  std::lock_guard lock(*ctx_->mu);
  auto current = ctx_->store->Get(kind::kDbInstance, id);
  return !current || (*current)["Spec"].value("Deleting", false);
}

Status DbReplicaController::Fail(const std::string& id, const Status& why) {
  spdlog::warn("db_instance={} read replica creation failed: {}", id, why.ToString());
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
  std::lock_guard lock(*ctx_->mu);
  auto current = ctx_->store->Get(kind::kDbInstance, id);
  if (!current) return Status::Ok();
  Json doc = *current;
  std::vector<StoreWrite> writes;
  if (server) writes.push_back({kind::kDbServer, id + "/s1", *server});
  std::error_code ec;  // the option files with passwords go at once
  fs::remove(DbInstanceDir(*ctx_, id) + "/s1/source-client.cnf", ec);
  fs::remove(DbInstanceDir(*ctx_, id) + "/s1/seed-client.cnf", ec);
  doc["ReadReplica"]["State"] = replica_state::kFailed;
  doc["ReadReplica"]["Error"] = why.message();
  doc["DBInstanceStatus"] = db_status::kFailed;
  AddEvent(*ctx_, "db-instance", id, "0045",
           "An error has occurred in the read replication process: " + why.message(), {"read replica", "failure"},
           &writes);
  writes.push_back({kind::kDbInstance, id, doc});
  return ctx_->store->Commit(writes);
}

Status DbReplicaController::Seed(const std::string& id) {
  const auto started = std::chrono::steady_clock::now();
  auto ms_since = [&] {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started).count();
  };
  // 1. Plan the server (recorded before any process exists).
  Json inst, secret, server;
  {
    std::lock_guard lock(*ctx_->mu);
    auto current = ctx_->store->Get(kind::kDbInstance, id);
    if (!current) return Status::Ok();
    inst = *current;
    secret = ctx_->store->Get(kind::kDbInstanceSecret, id).value_or(Json::object());
    std::vector<StoreWrite> writes;
    if (auto existing = ctx_->store->Get(kind::kDbServer, id + "/s1")) {
      server = *existing;
    } else {
      const std::string az = Str(inst, "AvailabilityZone").empty() ? ctx_->catalog->availability_zones().front()
                                                                   : Str(inst, "AvailabilityZone");
      AP_ASSIGN_OR_RETURN(auto address, AllocatePrivateAddress(*ctx_, az, &writes));
      server = {{"DBInstanceIdentifier", id},     {"Name", "s1"},   {"AvailabilityZone", az},
                {"Address", address},             {"Role", "primary"}, {"Source", "replica"},
                {"ServerId", NewReplicaServerId()}, {"Ready", false}, {"LaunchToken", NewLaunchToken()}};
      writes.push_back({kind::kDbServer, id + "/s1", server});
    }
    if (Str(secret, "AdminPassword").empty()) {
      secret["AdminPassword"] = RandomPassword();
      secret["ReplPassword"] = RandomPassword();
      writes.push_back({kind::kDbInstanceSecret, id, secret});
    }
    inst["Status"]["Primary"] = "s1";
    inst["Status"]["Standby"] = "";
    inst["Status"]["NextServer"] = 2;
    inst["AvailabilityZone"] = Str(server, "AvailabilityZone");
    writes.push_back({kind::kDbInstance, id, inst});
    AP_RETURN_IF_ERROR(ctx_->store->Commit(writes));
  }
  const Json rr = inst["ReadReplica"];
  // Deleted meanwhile: the server this job started goes with it (the DB instance controller may already have
  // stopped what it found recorded).
  auto cancelled = [&] {
    if (RecordedProcess(server).pid > 0) ctx_->launcher->SignalGroup(RecordedProcess(server), true);
    return CancelledStatus();
  };
  spdlog::info("db_instance={} read replica of {} seeding", id, Str(rr, "Display"));
  // Whatever an earlier attempt (a server killed mid-seed) left running goes first; the data dir is made again.
  if (RecordedProcess(server).pid > 0) {
    ctx_->launcher->SignalGroup(RecordedProcess(server), true);
    for (int i = 0; i < 500 && ctx_->launcher->GroupAlive(RecordedProcess(server)); ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    Supervisor::Clear(server);
  }
  ServerConfig cfg;
  cfg.dir = DbInstanceDir(*ctx_, id) + "/s1";
  cfg.address = Str(server, "Address");
  cfg.port = inst.value("Port", 3306);
  cfg.server_id = server.value("ServerId", 1000);
  cfg.buffer_pool_mb = BufferPoolMb(Str(inst, "DBInstanceClass"));
  cfg.semi_sync_replica = false;
  std::error_code ec;
  fs::remove_all(cfg.dir, ec);
  AP_RETURN_IF_ERROR(WriteServerConfig(cfg));
  AP_RETURN_IF_ERROR(InitializeDataDirFromTemplate(cfg, ctx_->data_dir + "/rds/.template"));
  AP_RETURN_IF_ERROR(supervisor_.Launch(server, ServerLaunchSpec(cfg)));
  {
    std::lock_guard lock(*ctx_->mu);
    AP_RETURN_IF_ERROR(ctx_->store->Commit({{kind::kDbServer, id + "/s1", server}}));
  }
  {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (!ProbeGreeting(cfg.address, cfg.port, 200)) {
      if (std::chrono::steady_clock::now() > deadline || !supervisor_.Running(server))
        return Status::Internal("the replica's server did not start (see " + cfg.dir + "/error.log)");
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }
  const AdminAccounts accounts{Str(secret, "AdminPassword"), Str(secret, "ReplPassword")};
  AP_RETURN_IF_ERROR(Bootstrap(cfg, accounts));
  const int64_t server_ms = ms_since();

  // 2. The source, through its endpoint, as the replication user it made for this replica.
  const std::string source_password = Str(secret, "ReplicaSourcePassword");
  const std::string source_address = Str(rr, "SourceAddress");
  const int source_port = rr.value("SourcePort", 3306);
  {
    Connection::Target t;
    t.host = source_address;
    t.port = source_port;
    t.user = Str(rr, "User");
    t.password = source_password;
    t.timeout_s = 2;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(kSourceLoginWaitS);
    Status last;
    while (true) {
      if (Cancelled(id)) return cancelled();
      auto c = Connection::Open(t);
      if (c.ok()) break;
      last = c.status();
      if (std::chrono::steady_clock::now() > deadline)
        return Status::Internal("cannot log in to the source " + Str(rr, "Display") + " at " + source_address + ":" +
                                std::to_string(source_port) + ": " + last.message());
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
  }
  const std::string source_options = cfg.dir + "/source-client.cnf";
  const std::string local_options = cfg.dir + "/seed-client.cnf";
  {
    std::ostringstream f;
    f << "[client]\nuser=" << Str(rr, "User") << "\npassword=" << source_password << "\nhost=" << source_address
      << "\nport=" << source_port << "\nprotocol=TCP\n";
    AP_RETURN_IF_ERROR(lb::WriteFileAtomically(source_options, f.str(), 0600));
    std::ostringstream g;
    g << "[client]\nuser=" << kAdminUser << "\npassword=" << accounts.admin_password << "\nsocket=" << SocketPath(cfg)
      << "\nprotocol=SOCKET\n";
    AP_RETURN_IF_ERROR(lb::WriteFileAtomically(local_options, g.str(), 0600));
  }
  const std::vector<std::string> env = {"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "TZ=UTC", "LANG=C.UTF-8",
                                        "HOME=" + cfg.dir};
  const std::vector<std::string> client = {kClientTool, "--defaults-file=" + local_options, "--binary-mode",
                                            "--max-allowed-packet=1G", "--init-command=SET SESSION sql_log_bin=0"};
  const std::string log = cfg.dir + "/seed.log";
  std::vector<std::string> users_client = client;
  users_client.push_back("mysql");  // the accounts' tables are named without their database

  // 3. The source's accounts (not the region's own, nor replication users): its master user and any the user
  // made, with their password hashes and grants.
  {
    bool dump_ok = true;
    AP_RETURN_IF_ERROR(RunPipeline(
        {kDumpTool, "--defaults-file=" + source_options, "--no-create-info", "--replace", "--skip-triggers",
         "--skip-lock-tables", "--skip-add-locks", "--skip-comments",
         "--where=User NOT IN ('root','rdsadmin','rdsrepl','mariadb.sys','') AND User NOT LIKE 'rdsrepl\\_%'", "mysql",
         "global_priv", "db", "tables_priv", "columns_priv", "procs_priv", "proxies_priv", "roles_mapping"},
        users_client, env, log, kDumpTimeoutMs, &dump_ok));
    if (!dump_ok) return Status::Internal("dumping the source's accounts failed (see " + log + ")");
  }
  if (Cancelled(id)) return cancelled();
  // 4. Its databases, one consistent snapshot with the GTID position it stands at (SET GLOBAL gtid_slave_pos in
  // the dump).
  {
    bool dump_ok = true;
    AP_RETURN_IF_ERROR(RunPipeline({kDumpTool, "--defaults-file=" + source_options, "--all-databases",
                                    "--ignore-database=mysql", "--ignore-database=sys", "--single-transaction",
                                    "--gtid", "--master-data=1", "--routines", "--events", "--triggers",
                                    "--skip-comments", "--max-allowed-packet=1G"},
                                   client, env, log, kDumpTimeoutMs, &dump_ok));
    if (!dump_ok) return Status::Internal("dumping the source's databases failed (see " + log + ")");
  }
  const int64_t dump_ms = ms_since();
  if (Cancelled(id)) return cancelled();

  // 5. Replication from the source's endpoint (so it follows the source's failovers), by GTID.
  Connection::Target local;
  local.socket = SocketPath(cfg);
  local.user = kAdminUser;
  local.password = accounts.admin_password;
  local.timeout_s = 5;
  AP_ASSIGN_OR_RETURN(auto conn, Connection::Open(local));
  AP_RETURN_IF_ERROR(conn->Exec("SET SESSION sql_log_bin=0"));
  AP_RETURN_IF_ERROR(conn->Exec("FLUSH PRIVILEGES"));
  AP_RETURN_IF_ERROR(conn->Exec(std::string("CREATE TABLE IF NOT EXISTS ") + kHeartbeatTable +
                                " (id INT NOT NULL PRIMARY KEY, value BIGINT NOT NULL) ENGINE=InnoDB"));
  AP_RETURN_IF_ERROR(conn->Exec(std::string("INSERT IGNORE INTO ") + kHeartbeatTable + " VALUES (1, 0)"));
  AP_ASSIGN_OR_RETURN(auto gtid, conn->Scalar("SELECT @@gtid_slave_pos"));
  AP_RETURN_IF_ERROR(conn->Exec("STOP SLAVE"));
  AP_RETURN_IF_ERROR(conn->Exec("SET GLOBAL read_only=1"));
  AP_RETURN_IF_ERROR(conn->Exec("SET GLOBAL rpl_semi_sync_slave_enabled=0"));
  AP_RETURN_IF_ERROR(conn->Exec("SET GLOBAL sync_binlog=0"));
  AP_RETURN_IF_ERROR(conn->Exec("SET GLOBAL innodb_flush_log_at_trx_commit=2"));
  AP_RETURN_IF_ERROR(conn->Exec("CHANGE MASTER TO MASTER_HOST=" + conn->Quote(source_address) +
                                ", MASTER_PORT=" + std::to_string(source_port) + ", MASTER_USER=" +
                                conn->Quote(Str(rr, "User")) + ", MASTER_PASSWORD=" + conn->Quote(source_password) +
                                ", MASTER_USE_GTID=slave_pos, MASTER_CONNECT_RETRY=1, MASTER_HEARTBEAT_PERIOD=1"));
  AP_RETURN_IF_ERROR(conn->Exec("START SLAVE"));
  conn.reset();
  fs::remove(local_options, ec);
  fs::remove(source_options, ec);
  if (Cancelled(id)) return cancelled();

  server["Ready"] = true;
  std::lock_guard lock(*ctx_->mu);
  auto current = ctx_->store->Get(kind::kDbInstance, id);
  if (!current) return Status::Ok();
  Json doc = *current;
  doc["ReadReplica"]["State"] = replica_state::kReplicating;
  doc["ReadReplica"]["SeededGtid"] = gtid.value_or("");
  doc["ReadReplica"]["SeededAt"] = ctx_->clock->NowMillis();
  std::vector<StoreWrite> writes = {{kind::kDbServer, id + "/s1", server}};
  AddEvent(*ctx_, "db-instance", id, "0046", "Replication for the Read Replica started from " + Str(rr, "Display"),
           {"read replica"}, &writes);
  writes.push_back({kind::kDbInstance, id, doc});
  spdlog::info("db_instance={} read replica seeded in {} ms (server {} ms, dump {} ms) at GTID {}", id, ms_since(),
               server_ms, dump_ms - server_ms, gtid.value_or(""));
  return ctx_->store->Commit(writes);
}

}  // namespace autopipe::rds

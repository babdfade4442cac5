#include "rds/db_controller.h"

#include <signal.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <thread>

#include "common/log.h"
#include "ec2/instances.h"
#include "process/recorded_process.h"
#include "rds/db_backups.h"
#include "rds/db_endpoint.h"
#include "rds/db_snapshots.h"
#include "rds/db_replicas.h"
#include "rds/db_restore.h"
#include "rds/db_subnet_groups.h"
#include "partition/region_client.h"
#include "api/form.h"

namespace fs = std::filesystem;

namespace autopipe::rds {
namespace {

constexpr SupervisionPolicy kServerPolicy{/*crash_window_ms=*/3000, /*first_backoff_ms=*/1000,
                                          /*max_backoff_ms=*/30'000, /*kill_after_ms=*/10'000};
constexpr SupervisionPolicy kEndpointPolicy{3000, 1000, 30'000, 3000};

std::mutex hook_mu;
std::function<void(const std::string&)> failover_hook;  // guarded by hook_mu

void FailoverHook(const std::string& phase) {
  std::function<void(const std::string&)> hook;
  {
    std::lock_guard lock(hook_mu);
    hook = failover_hook;
  }
  if (hook) {
    hook(phase);
    return;
  }
  // The e2e tests' hook (tests/e2e/test_rds.py): the server stalls at this phase so the test can kill -9 it
  // there. Only ever set by a test, in the server's environment.
  static const char* stall_at = std::getenv("AUTOPIPE_TEST_FAILOVER_STALL_AT");
  if (stall_at && phase == stall_at) {
    spdlog::warn("failover stalled at phase {} (AUTOPIPE_TEST_FAILOVER_STALL_AT)", phase);
    std::this_thread::sleep_for(std::chrono::seconds(30));
  }
}

std::string Str(const Json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : "";
}

// Buffer pool by instance class, from small defaults (tens of MB, not the class's GB).
int BufferPoolMb(const std::string& cls) {
  if (cls.find("micro") != std::string::npos || cls.find("small") != std::string::npos) return 16;
  if (cls.find("medium") != std::string::npos) return 32;
  return 64;
}

std::string InstanceDir(const RegionContext& ctx, const std::string& id) { return DbInstanceDir(ctx, id); }
std::string EndpointConfigPath(const RegionContext& ctx, const std::string& id) {
  return InstanceDir(ctx, id) + "/endpoint/config.json";
}

// Waits (bounded) until a server greets new connections.
bool WaitForGreeting(const std::string& address, int port, int timeout_ms) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (std::chrono::steady_clock::now() < deadline) {
    if (ProbeGreeting(address, port, 200)) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

}  // namespace

void SetFailoverHookForTest(std::function<void(const std::string&)> hook) {
  std::lock_guard lock(hook_mu);
  failover_hook = std::move(hook);
}

struct DbInstanceController::Snapshot {
  std::optional<Json> inst;
  std::optional<Json> secret;
  std::map<std::string, Json> servers;  // by document id
  std::optional<Json> endpoint;

  Json* Server(const std::string& sid) {
    auto it = servers.find(sid);
    return it == servers.end() ? nullptr : &it->second;
  }
  Json& Status() { return (*inst)["Status"]; }
  std::string Primary() { return Str(Status(), "Primary"); }
  std::string Standby() { return Str(Status(), "Standby"); }
};

std::vector<std::string> DbInstanceController::Keys() {
  std::set<std::string> keys;
  for (const auto& id : ctx_->store->Ids(kind::kDbInstance)) keys.insert(id);
  for (const auto& id : ctx_->store->Ids(kind::kDbServer)) keys.insert(id.substr(0, id.find('/')));
  for (const auto& id : ctx_->store->Ids(kind::kDbEndpoint)) keys.insert(id);
  return {keys.begin(), keys.end()};
}

std::vector<Controller::Watch> DbInstanceController::Watches() const {
  return {{kind::kDbInstance, SameKey},
          {kind::kDbInstanceSecret, SameKey},
          {kind::kDbEndpoint, SameKey},
          {kind::kDbServer, [](const std::string& id) -> std::optional<std::string> {
             return id.substr(0, id.find('/'));
           }}};
}

DbInstanceController::Snapshot DbInstanceController::Read(const std::string& id) {
  Snapshot s;
  std::lock_guard lock(*ctx_->mu);
  s.inst = ctx_->store->Get(kind::kDbInstance, id);
  s.secret = ctx_->store->Get(kind::kDbInstanceSecret, id);
  s.endpoint = ctx_->store->Get(kind::kDbEndpoint, id);
  for (const auto& doc : ctx_->store->List(kind::kDbServer)) {
    if (Str(*doc, "DBInstanceIdentifier") == id) s.servers[id + "/" + Str(*doc, "Name")] = *doc;
  }
  if (s.inst && !s.inst->contains("Status")) (*s.inst)["Status"] = Json::object();
  return s;
}

Status DbInstanceController::Update(const std::string& id, const Mutation& mutate, std::vector<StoreWrite> writes) {
  std::lock_guard lock(*ctx_->mu);
  auto current = ctx_->store->Get(kind::kDbInstance, id);
  if (current) {
    Json doc = *current;
    if (!doc.contains("Status")) doc["Status"] = Json::object();
    mutate(doc, &writes);
    if (doc != *current) writes.push_back({kind::kDbInstance, id, doc});
  }
  if (writes.empty()) return Status::Ok();
  return ctx_->store->Commit(writes);
}

Status DbInstanceController::CommitServers(std::vector<StoreWrite> writes) {
  if (writes.empty()) return Status::Ok();
  std::lock_guard lock(*ctx_->mu);
  return ctx_->store->Commit(writes);
}

ServerConfig DbInstanceController::ConfigOf(const Json& server, const Json& inst) const {
  ServerConfig c;
  c.dir = InstanceDir(*ctx_, Str(server, "DBInstanceIdentifier")) + "/" + Str(server, "Name");
  c.address = Str(server, "Address");
  c.port = inst.value("Port", 3306);
  c.server_id = server.value("ServerId", 1);
  c.buffer_pool_mb = BufferPoolMb(Str(inst, "DBInstanceClass"));
  c.semi_sync_replica = !inst.contains("ReadReplica");
  // The engine runs as the region's own user for now: the region's data dir is 0700, and MariaDB resolves its
  // absolute paths through it (docs/design.md, RDS).
  return c;
}

AdminAccounts DbInstanceController::AccountsOf(const Snapshot& s) const {
  AdminAccounts a;
  if (s.secret) {
    a.admin_password = Str(*s.secret, "AdminPassword");
    a.repl_password = Str(*s.secret, "ReplPassword");
  }
  return a;
}

std::unique_ptr<Connection> DbInstanceController::Admin(const Snapshot& s, const Json& server, int timeout_s) {
  Connection::Target t;
  t.host = Str(server, "Address");
  t.port = s.inst->value("Port", 3306);
  t.user = kAdminUser;
  t.password = AccountsOf(s).admin_password;
  t.timeout_s = timeout_s;
  auto c = Connection::Open(t);
  if (!c.ok()) return nullptr;
  return std::move(*c);
}

// ---------------------------------------------------------------------------------------------------------

ReconcileResult DbInstanceController::Reconcile(const std::string& id) {
  // A standby build that finished: its document is committed; its error, if any, is this pass's.
  {
    std::unique_ptr<Build> finished;
    {
      std::lock_guard lock(mu_);
      auto it = builds_.find(id);
      if (it != builds_.end() && it->second->done) {
        finished = std::move(it->second);
        builds_.erase(it);
      }
    }
    if (finished) {
      finished->thread.join();
      if (!finished->status.ok()) return finished->status;
    }
  }
  Snapshot s = Read(id);
  if (!s.inst) return Delete(id, s);  // leftovers of an instance whose document is gone
  // A restored instance is the restore controller's until its primary is built (rds/db_restore.h).
  if (RestoreHoldsInstance(*s.inst)) return ReconcileResult::After(std::chrono::milliseconds(250));
  // So is a read replica being seeded (rds/db_replicas.h), unless it is being deleted.
  if (ReplicaHoldsInstance(*s.inst) && !(*s.inst)["Spec"].value("Deleting", false))
    return ReconcileResult::After(std::chrono::milliseconds(250));
  Json& spec = (*s.inst)["Spec"];
  if (spec.value("Deleting", false)) return Delete(id, s);
  if (!spec.value("Running", true)) return StopAll(id, s);

  // The region's own accounts: generated once, kept with the master password (never rendered).
  if (!s.secret || Str(*s.secret, "AdminPassword").empty()) {
    std::lock_guard lock(*ctx_->mu);
    Json secret = ctx_->store->Get(kind::kDbInstanceSecret, id).value_or(Json::object());
    if (Str(secret, "AdminPassword").empty()) {
      secret["AdminPassword"] = RandomPassword();
      secret["ReplPassword"] = RandomPassword();
      return ctx_->store->Commit({{kind::kDbInstanceSecret, id, secret}});
    }
    return ReconcileResult::After(std::chrono::milliseconds(0));
  }
  if (s.servers.empty()) return Plan(id, s);
  if (s.Status().contains("Failover") && !s.Status()["Failover"].is_null()) return RunFailover(id, s);

  std::vector<StoreWrite> server_writes;

  // Servers no longer in a role: stop, then forget (their folder too).
  for (auto& [sid, server] : s.servers) {
    if (sid == id + "/" + s.Primary() || sid == id + "/" + s.Standby()) continue;
    if (!supervisor_.Stop(server, kServerPolicy)) {
      server_writes.push_back({kind::kDbServer, sid, server});
      continue;
    }
    std::error_code ec;
    fs::remove_all(ConfigOf(server, *s.inst).dir, ec);
    server_writes.push_back({kind::kDbServer, sid, std::nullopt});
  }
  if (Status st = CommitServers(std::move(server_writes)); !st.ok()) return st;
  server_writes.clear();

  Json* primary = s.Server(id + "/" + s.Primary());
  if (!primary) return Status::Internal("db instance " + id + " has no primary server");
  Json* standby = s.Standby().empty() ? nullptr : s.Server(id + "/" + s.Standby());

  // Prepare what is not ready yet: the primary first, then the standby (it copies or follows the primary).
  if (!primary->value("Ready", false)) {
    // A new pair is prepared side by side: the standby only needs the primary's address to start following it.
    const bool pair = standby && !standby->value("Ready", false) && Str(*standby, "Source") == "fresh";
    Status standby_status;
    std::thread standby_thread;
    if (pair) standby_thread = std::thread([&] { standby_status = Prepare(id, s, *standby); });
    Status st = Prepare(id, s, *primary);
    std::vector<StoreWrite> writes = {{kind::kDbServer, id + "/" + s.Primary(), *primary}};
    if (pair) {
      standby_thread.join();
      writes.push_back({kind::kDbServer, id + "/" + s.Standby(), *standby});
    }
    if (Status c = CommitServers(std::move(writes)); !c.ok()) return c;
    if (!st.ok()) return st;
    if (!standby_status.ok()) return standby_status;
    return ReconcileResult::After(std::chrono::milliseconds(0));
  }
  if (standby && !standby->value("Ready", false)) {
    // A standby built from a backup takes seconds (more for a big database): it is built on a thread of its own
    // while this instance's passes go on watching the primary.
    std::lock_guard lock(mu_);
    if (!builds_.count(id) && supervisor_.Running(*primary)) StartStandbyBuild(id, s, *standby);
  }

  // Liveness of the primary: dead, or not greeting (hung). A Multi-AZ instance with a healthy standby fails
  // over; otherwise the primary restarts in place.
  const bool standby_ok = standby && standby->value("Ready", false) && supervisor_.Running(*standby);
  const bool primary_running = supervisor_.Running(*primary);
  bool primary_healthy = primary_running;
  bool greeted = false;
  if (primary_running) {
    greeted = ProbeGreeting(Str(*primary, "Address"), s.inst->value("Port", 3306), kProbeTimeoutMs);
    std::lock_guard lock(mu_);
    int& failures = probe_failures_[id];
    failures = greeted ? 0 : failures + 1;
    primary_healthy = failures < kProbeFailuresForFailover;
  }
  if (!primary_healthy) {
    {
      std::lock_guard lock(mu_);
      probe_failures_[id] = 0;
    }
    if (standby_ok) {
      AP_RETURN_IF_ERROR(StartFailover(id, s, false,
                                       primary_running ? "the primary stopped answering" : "the primary exited"));
      return ReconcileResult::After(std::chrono::milliseconds(0));
    }
    if (primary_running) {
      // Hung and nowhere to fail over to: kill it, and restart it below on the next pass.
      ctx_->launcher->SignalGroup(RecordedProcess(*primary), true);
      return ReconcileResult::After(std::chrono::milliseconds(20));
    }
  }
  if (!primary_running) {
    // It restarts read-only: new connections wait at the endpoint until it is writable again.
    AP_RETURN_IF_ERROR(EnsureEndpoint(id, s, ""));
    Status launch_error;
    auto kept = supervisor_.KeepRunning(*primary, ServerLaunchSpec(ConfigOf(*primary, *s.inst)), kServerPolicy,
                                        "db_instance=" + id + " primary", &launch_error);
    Status c = CommitServers({{kind::kDbServer, id + "/" + s.Primary(), *primary}});
    if (kept == Supervisor::Kept::kLaunched) {
      WaitForGreeting(Str(*primary, "Address"), s.inst->value("Port", 3306), 10'000);
      AP_RETURN_IF_ERROR(Update(id, [&](Json&, std::vector<StoreWrite>* w) {
        AddEvent(*ctx_, "db-instance", id, "0006", "DB instance restarted", {"availability"}, w);
      }));
    }
    if (!launch_error.ok()) return launch_error;
    if (!c.ok()) return c;
    return ReconcileResult::After(std::chrono::milliseconds(kHealthPeriodMs));
  }
  if (standby && standby->value("Ready", false) && !standby_ok) {
    (void)supervisor_.KeepRunning(*standby, ServerLaunchSpec(ConfigOf(*standby, *s.inst)), kServerPolicy,
                                  "db_instance=" + id + " standby");
    AP_RETURN_IF_ERROR(CommitServers({{kind::kDbServer, id + "/" + s.Standby(), *standby}}));
  }

  // A primary that missed a greeting is not asked anything (a client call to a hung server blocks for whole
  // seconds): the next probes decide.
  if (!greeted) return ReconcileResult::After(std::chrono::milliseconds(kHealthPeriodMs));
  // The primary is writable (semi-sync on while the standby is attached), and the endpoint leads to it.
  AP_RETURN_IF_ERROR(AssertPrimary(id, s, *primary));
  AP_RETURN_IF_ERROR(EnsureEndpoint(id, s, Str(*primary, "Address")));
  // Read replicas (rds/db_replicas.h): as a source (users, heartbeat), as a replica (state, promotion).
  if (auto r = Replication(id, s, *primary)) return *r;

  // Requests: reboot, master password, Multi-AZ on or off.
  const int64_t reboot_seq = spec.value("RebootSeq", int64_t{0});
  if (reboot_seq > s.Status().value("RebootSeqDone", int64_t{0})) {
    if (spec.value("RebootForceFailover", false) && standby_ok) {
      AP_RETURN_IF_ERROR(StartFailover(id, s, true, "a reboot with failover was requested"));
      return ReconcileResult::After(std::chrono::milliseconds(0));
    }
    AP_RETURN_IF_ERROR(EnsureEndpoint(id, s, ""));
    AP_RETURN_IF_ERROR(RestartServer(*primary));
    AP_RETURN_IF_ERROR(CommitServers({{kind::kDbServer, id + "/" + s.Primary(), *primary}}));
    if (auto c = Admin(s, *primary, 5)) (void)ActAsPrimary(*c, standby_ok);
    AP_RETURN_IF_ERROR(EnsureEndpoint(id, s, Str(*primary, "Address")));
    return Update(id, [&](Json& doc, std::vector<StoreWrite>* w) {
      doc["Status"]["RebootSeqDone"] = reboot_seq;
      AddEvent(*ctx_, "db-instance", id, "0006", "DB instance restarted", {"availability"}, w);
    });
  }
  const int64_t password_seq = s.secret->value("PasswordSeq", int64_t{0});
  if (password_seq > s.Status().value("PasswordSeqApplied", int64_t{0})) {
    auto c = Admin(s, *primary);
    if (!c) return Status::Internal("db instance " + id + ": cannot reach the primary to set the password");
    AP_RETURN_IF_ERROR(SetMasterPassword(*c, Str(*s.inst, "MasterUsername"), Str(*s.secret, "MasterUserPassword")));
    AP_RETURN_IF_ERROR(Update(id, [&](Json& doc, std::vector<StoreWrite>* w) {
      doc["Status"]["PasswordSeqApplied"] = password_seq;
      if (doc.contains("PendingModifiedValues")) doc["PendingModifiedValues"].erase("MasterUserPassword");
      AddEvent(*ctx_, "db-instance", id, "0016", "Reset master credentials", {"configuration change"}, w);
    }));
  }
  // A new instance class applies online: the buffer pool is resized on every server (MariaDB resizes it in
  // place) and the option files say the new size for the next start.
  const std::string want_class = spec.value("DBInstanceClass", Str(*s.inst, "DBInstanceClass"));
  if (want_class != Str(*s.inst, "DBInstanceClass")) {
    Json sized = *s.inst;
    sized["DBInstanceClass"] = want_class;
    for (Json* server : {primary, standby}) {
      if (!server) continue;
      const ServerConfig cfg = ConfigOf(*server, sized);
      AP_RETURN_IF_ERROR(WriteServerConfig(cfg));
      if (auto c = Admin(s, *server)) {
        AP_RETURN_IF_ERROR(c->Exec("SET GLOBAL innodb_buffer_pool_size=" + std::to_string(cfg.buffer_pool_mb) + "*1024*1024"));
      }
    }
    return Update(id, [&](Json& doc, std::vector<StoreWrite>*) {
      doc["DBInstanceClass"] = want_class;
      if (doc.contains("PendingModifiedValues")) doc["PendingModifiedValues"].erase("DBInstanceClass");
    });
  }
  const bool want_multi_az = spec.value("MultiAZ", false);
  if (want_multi_az && !standby) {
    // A standby for an instance becoming Multi-AZ (or one whose standby was lost): from a backup of the primary.
    std::vector<StoreWrite> writes;
    std::lock_guard lock(*ctx_->mu);
    // Another zone of the instance's DB subnet group (rds/db_subnet_groups.h).
    std::string az = Str(*s.inst, "SecondaryAvailabilityZone");
    const std::string primary_az = Str(*primary, "AvailabilityZone");
    const auto zones = ZonesForInstance(*ctx_, *s.inst);
    if (az.empty() || az == primary_az || std::find(zones.begin(), zones.end(), az) == zones.end()) {
      for (const auto& candidate : zones)
        if (candidate != primary_az) { az = candidate; break; }
    }
    auto address = AllocatePrivateAddress(*ctx_, az, &writes);
    if (!address.ok()) return address.status();
    const int n = s.Status().value("NextServer", 1);
    const std::string name = "s" + std::to_string(n);
    Json server = {{"DBInstanceIdentifier", id}, {"Name", name}, {"AvailabilityZone", az},
                   {"Address", *address},      {"ServerId", n},  {"Role", "standby"},
                   {"Source", "backup"},       {"Ready", false}, {"LaunchToken", NewLaunchToken()}};
    writes.push_back({kind::kDbServer, id + "/" + name, server});
    auto current = ctx_->store->Get(kind::kDbInstance, id);
    if (!current) return Status::Ok();
    Json doc = *current;
    doc["Status"]["Standby"] = name;
    doc["Status"]["NextServer"] = n + 1;
    if (!doc.value("MultiAZ", false))
      AddEvent(*ctx_, "db-instance", id, "0050", "Multi-AZ instance activation started", {"availability"}, &writes);
    writes.push_back({kind::kDbInstance, id, doc});
    return ctx_->store->Commit(writes);
  }
  if (!want_multi_az && standby) {
    // Single-AZ again: the standby goes (stopped and removed on the next pass) and semi-sync is off.
    if (auto c = Admin(s, *primary)) (void)ActAsPrimary(*c, false);
    return Update(id, [&](Json& doc, std::vector<StoreWrite>*) {
      doc["Status"]["Standby"] = "";
      doc["MultiAZ"] = false;
      doc.erase("SecondaryAvailabilityZone");
    });
  }

  // Status as the API shows it.
  const bool endpoint_ready = s.endpoint && ReadEndpointAppliedVersion(EndpointConfigPath(*ctx_, id)) >=
                                                s.endpoint->value("ConfigVersion", int64_t{0});
  AP_RETURN_IF_ERROR(Update(id, [&](Json& doc, std::vector<StoreWrite>* w) {
    Json& st = doc["Status"];
    if (!st.value("Created", false) && endpoint_ready && (!want_multi_az || standby_ok)) {
      st["Created"] = true;
      AddEvent(*ctx_, "db-instance", id, "0005", "DB instance created", {"creation"}, w);
    }
    const bool created = st.value("Created", false);
    // A Multi-AZ instance stays Multi-AZ while its standby is replaced after a failover; one becoming Multi-AZ
    // is so once its standby runs.
    doc["MultiAZ"] = standby_ok || (!created && want_multi_az) || (standby && doc.value("MultiAZ", false));
    doc["AvailabilityZone"] = Str(*primary, "AvailabilityZone");
    if (standby) doc["SecondaryAvailabilityZone"] = Str(*standby, "AvailabilityZone");
    std::string status = db_status::kAvailable;
    if (!created) status = db_status::kCreating;
    else if (doc.contains("ReadReplica") && Str(doc["ReadReplica"], "State") == replica_state::kPromoting)
      status = db_status::kModifying;
    else if (doc["Spec"].value("MultiAZ", false) != doc.value("MultiAZ", false)) status = db_status::kModifying;
    // The backup controller (db_backups.h) takes the first backup after creation and one a day: backing-up.
    else if (doc.value("BackupRetentionPeriod", int64_t{0}) > 0 &&
             (!doc.value("Backup", Json::object()).value("InitialDone", false) ||
              doc.value("Backup", Json::object()).value("Running", false)))
      status = db_status::kBackingUp;
    // A manual snapshot being taken (db_snapshots.h) shows backing-up too; a mark left by one that is no longer
    // being taken (it failed, or its end was not recorded) goes.
    else if (doc.contains("ManualSnapshot")) {
      auto snap = ctx_->store->Get(kind::kDbSnapshot, Str(doc, "ManualSnapshot"));
      if (snap && Str(*snap, "Status") == "creating") status = db_status::kBackingUp;
      else doc.erase("ManualSnapshot");
    }
    doc["DBInstanceStatus"] = status;
  }));
  return ReconcileResult::After(std::chrono::milliseconds(kHealthPeriodMs));
}

// ---------------------------------------------------------------------------------------------------------

ReconcileResult DbInstanceController::Plan(const std::string& id, Snapshot& s) {
  const Json& inst = *s.inst;
  std::string az = Str(inst, "AvailabilityZone");
  if (az.empty()) az = ctx_->catalog->availability_zones().front();
  std::vector<StoreWrite> writes;
  std::lock_guard lock(*ctx_->mu);
  auto current = ctx_->store->Get(kind::kDbInstance, id);
  if (!current) return ReconcileResult::Done();
  Json doc = *current;
  if (!doc.contains("Status")) doc["Status"] = Json::object();
  auto add = [&](const std::string& name, const std::string& server_az, const std::string& role, int n) -> Status {
    auto address = AllocatePrivateAddress(*ctx_, server_az, &writes);
    if (!address.ok()) return address.status();
    writes.push_back({kind::kDbServer, id + "/" + name,
                      Json{{"DBInstanceIdentifier", id}, {"Name", name}, {"AvailabilityZone", server_az},
                           {"Address", *address}, {"ServerId", n}, {"Role", role}, {"Source", "fresh"},
                           {"Ready", false}, {"LaunchToken", NewLaunchToken()}}});
    return Status::Ok();
  };
  AP_RETURN_IF_ERROR(add("s1", az, "primary", 1));
  doc["Status"]["Primary"] = "s1";
  doc["Status"]["Standby"] = "";
  doc["Status"]["NextServer"] = 2;
  doc["AvailabilityZone"] = az;
  if (doc["Spec"].value("MultiAZ", false)) {
    std::string second = Str(doc, "SecondaryAvailabilityZone");
    const auto zones = ZonesForInstance(*ctx_, doc);
    if (second.empty() || second == az || std::find(zones.begin(), zones.end(), second) == zones.end()) {
      for (const auto& candidate : zones)
        if (candidate != az) { second = candidate; break; }
    }
    AP_RETURN_IF_ERROR(add("s2", second, "standby", 2));
    doc["Status"]["Standby"] = "s2";
    doc["Status"]["NextServer"] = 3;
    doc["SecondaryAvailabilityZone"] = second;
  }
  writes.push_back({kind::kDbInstance, id, doc});
  return ctx_->store->Commit(writes);
}

Status DbInstanceController::Prepare(const std::string& id, Snapshot& s, Json& server) {
  const auto started = std::chrono::steady_clock::now();
  auto ms_since = [](std::chrono::steady_clock::time_point t) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t).count();
  };
  const ServerConfig cfg = ConfigOf(server, *s.inst);
  const AdminAccounts accounts = AccountsOf(s);
  // Whatever a half-finished earlier attempt left behind goes first.
  if (supervisor_.Running(server)) {
    ctx_->launcher->SignalGroup(RecordedProcess(server), true);
    for (int i = 0; i < 200 && ctx_->launcher->GroupAlive(RecordedProcess(server)); ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  Supervisor::Clear(server);
  std::error_code ec;
  fs::remove_all(DataDir(cfg), ec);
  AP_RETURN_IF_ERROR(WriteServerConfig(cfg));

  const bool from_backup = Str(server, "Source") == "backup";
  std::string gtid;
  if (from_backup) {
    Json* primary = s.Server(id + "/" + s.Primary());
    if (!primary) return Status::Internal("no primary to copy");
    const std::string work = InstanceDir(*ctx_, id) + "/rebuild";
    fs::create_directories(work, ec);
    const std::string options = work + "/client.cnf";
    AP_RETURN_IF_ERROR(WriteClientOptions(options, Str(*primary, "Address"), s.inst->value("Port", 3306), accounts));
    auto taken = TakeBackup(ConfigOf(*primary, *s.inst), options, work + "/backup", cfg.dir + "/rebuild.log");
    if (!taken.ok()) return taken.status();
    gtid = *taken;
    AP_RETURN_IF_ERROR(RestoreBackup(work + "/backup", cfg, cfg.dir + "/rebuild.log"));
    fs::remove_all(work, ec);
  } else {
    AP_RETURN_IF_ERROR(InitializeDataDirFromTemplate(cfg, ctx_->data_dir + "/rds/.template"));
  }
  AP_RETURN_IF_ERROR(ChownTree(cfg.dir, cfg.uid));
  const int64_t data_ms = ms_since(started);
  AP_RETURN_IF_ERROR(supervisor_.Launch(server, ServerLaunchSpec(cfg)));
  if (!WaitForGreeting(cfg.address, cfg.port, 30'000))
    return Status::Internal("db instance " + id + ": server " + Str(server, "Name") + " did not start (see " +
                            cfg.dir + "/error.log)");
  if (!from_backup) AP_RETURN_IF_ERROR(Bootstrap(cfg, accounts));
  auto conn = Admin(s, server, 5);
  if (!conn) return Status::Internal("db instance " + id + ": cannot log in to server " + Str(server, "Name"));
  if (Str(server, "Role") == "primary") {
    AP_RETURN_IF_ERROR(ActAsPrimary(*conn, false));
    AP_RETURN_IF_ERROR(
        CreateMasterUser(*conn, Str(*s.inst, "MasterUsername"), Str(*s.secret, "MasterUserPassword")));
  } else {
    Json* primary = s.Server(id + "/" + s.Primary());
    if (!primary) return Status::Internal("no primary to follow");
    if (from_backup) AP_RETURN_IF_ERROR(conn->Exec("SET GLOBAL gtid_slave_pos=" + conn->Quote(gtid)));
    AP_RETURN_IF_ERROR(StartReplication(*conn, Str(*primary, "Address"), cfg.port, accounts, false));
  }
  server["Ready"] = true;
  spdlog::info("db_instance={} server={} address={} ready in {} ms (data dir {} ms, {})", id, Str(server, "Name"),
               cfg.address, ms_since(started), data_ms, from_backup ? "from a backup of the primary" : "new");
  return Status::Ok();
}

DbInstanceController::~DbInstanceController() {
  std::map<std::string, std::unique_ptr<Build>> builds;
  {
    std::lock_guard lock(mu_);
    builds.swap(builds_);
  }
  for (auto& [id, b] : builds) b->thread.join();
}

bool DbInstanceController::Building(const std::string& id) {
  std::lock_guard lock(mu_);
  return builds_.count(id) > 0;
}

void DbInstanceController::StartStandbyBuild(const std::string& id, const Snapshot& s, const Json& standby) {
  auto build = std::make_unique<Build>();
  Build* b = build.get();
  const bool activation = !s.inst->value("MultiAZ", false);
  b->thread = std::thread([this, id, snap = s, server = standby, b, activation]() mutable {
    Status st = Prepare(id, snap, server);
    const std::string sid = id + "/" + server.value("Name", "");
    Status committed = CommitServers({{kind::kDbServer, sid, server}});
    if (st.ok()) st = committed;
    if (st.ok() && activation) {
      st = Update(id, [&](Json& doc, std::vector<StoreWrite>* w) {
        if (doc["Status"].value("Created", false))
          AddEvent(*ctx_, "db-instance", id, "0051", "Multi-AZ instance activation completed", {"availability"}, w);
      });
    }
    if (!st.ok()) spdlog::warn("db_instance={} standby {} not built: {}", id, server.value("Name", ""), st.ToString());
    std::lock_guard lock(mu_);
    b->status = st;
    b->done = true;
  });
  builds_[id] = std::move(build);
}

Status DbInstanceController::RestartServer(Json& server) {
  ctx_->launcher->SignalGroup(RecordedProcess(server), false);
  for (int i = 0; i < 1000 && ctx_->launcher->GroupAlive(RecordedProcess(server)); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  if (ctx_->launcher->GroupAlive(RecordedProcess(server))) ctx_->launcher->SignalGroup(RecordedProcess(server), true);
  Supervisor::Clear(server);
  const std::string id = Str(server, "DBInstanceIdentifier");
  auto inst = ctx_->store->Get(kind::kDbInstance, id);
  if (!inst) return Status::Ok();
  const ServerConfig cfg = ConfigOf(server, *inst);
  AP_RETURN_IF_ERROR(supervisor_.Launch(server, ServerLaunchSpec(cfg)));
  if (!WaitForGreeting(cfg.address, cfg.port, 30'000)) return Status::Internal("db instance " + id + " did not restart");
  return Status::Ok();
}

Status DbInstanceController::AssertPrimary(const std::string& id, Snapshot& s, const Json& primary) {
  // A read replica's server stays read-only and following its source (Replication() watches it).
  if (IsActiveReplica(*s.inst)) return Status::Ok();
  const int64_t now = ctx_->clock->NowMillis();
  const bool endpoint_on_primary = s.endpoint && Str(*s.endpoint, "Backend") == Str(primary, "Address");
  {
    std::lock_guard lock(mu_);
    // Once a second is enough while all is well; at once when the endpoint does not lead here yet.
    if (endpoint_on_primary && now - last_assert_[id] < 1000) return Status::Ok();
    last_assert_[id] = now;
  }
  auto conn = Admin(s, primary);
  if (!conn) return Status::Internal("db instance " + id + ": cannot reach the primary");
  Json* standby = s.Standby().empty() ? nullptr : s.Server(id + "/" + s.Standby());
  const bool attached = standby && standby->value("Ready", false) && supervisor_.Running(*standby);
  AP_RETURN_IF_ERROR(ActAsPrimary(*conn, attached));
  // The synchronous guarantee, watched: its loss and its return are events.
  auto rows = conn->Query("SHOW GLOBAL STATUS LIKE 'Rpl_semi_sync_master_status'");
  if (!rows.ok()) return rows.status();
  const bool on = !rows->empty() && (*rows)[0]["Value"] == "ON";
  const bool was_on = s.Status().value("SemiSync", false);
  if (on == was_on) return Status::Ok();
  // A Multi-AZ instance losing its synchronous standby (the standby died, lagged past the timeout, or is being
  // rebuilt after a failover) is an event, and so is the guarantee's return; a Single-AZ one never had it.
  const bool multi_az = (*s.inst)["Spec"].value("MultiAZ", false) && s.Status().value("Created", false);
  return Update(id, [&](Json& doc, std::vector<StoreWrite>* w) {
    Json& st = doc["Status"];
    st["SemiSync"] = on;
    if (!on && multi_az) {
      st["SemiSyncLost"] = true;
      AddEvent(*ctx_, "db-instance", id, "0175",
               "Synchronous replication to the standby lost: commits are acknowledged without the standby",
               {"availability"}, w);
    } else if (on && st.value("SemiSyncLost", false)) {
      st["SemiSyncLost"] = false;
      AddEvent(*ctx_, "db-instance", id, "0176", "Synchronous replication to the standby restored", {"availability"},
               w);
    }
  });
}

Status DbInstanceController::EnsureEndpoint(const std::string& id, Snapshot& s, const std::string& backend) {
  const Json& inst = *s.inst;
  if (!s.endpoint) {
    Json ep = {{"DBInstanceIdentifier", id}, {"ConfigVersion", 0}, {"Backend", ""}, {"LaunchToken", NewLaunchToken()}};
    AP_RETURN_IF_ERROR(CommitServers({{kind::kDbEndpoint, id, ep}}));
    s.endpoint = ep;
  }
  Json ep = *s.endpoint;
  const std::string path = EndpointConfigPath(*ctx_, id);
  EndpointConfig want;
  want.address = Str(inst["Endpoint"], "Address");
  want.port = inst["Endpoint"].value("Port", inst.value("Port", 3306));
  want.backend_address = backend;
  want.backend_port = backend.empty() ? 0 : inst.value("Port", 3306);
  auto have = ReadEndpointConfig(path);
  bool changed = false;
  if (!have.ok() || have->address != want.address || have->port != want.port ||
      have->backend_address != want.backend_address || have->backend_port != want.backend_port) {
    want.version = ep.value("ConfigVersion", int64_t{0}) + 1;
    std::error_code ec;
    fs::create_directories(fs::path(path).parent_path(), ec);
    AP_RETURN_IF_ERROR(WriteEndpointConfig(path, want));
    ep["ConfigVersion"] = want.version;
    ep["Backend"] = backend;
    changed = true;
  }
  LaunchSpec spec;
  spec.argv = {ctx_->self_exe, "db-endpoint", "--config", path};
  spec.env = {{"PATH", "/usr/sbin:/usr/bin:/sbin:/bin"}, {"LANG", "C.UTF-8"}};
  spec.working_dir = fs::path(path).parent_path().string();
  spec.log_path = spec.working_dir + "/endpoint.log";
  auto kept = supervisor_.KeepRunning(ep, spec, kEndpointPolicy, "db_instance=" + id + " endpoint");
  if (kept == Supervisor::Kept::kRunning && changed) supervisor_.Signal(ep, SIGHUP);
  if (ep != *s.endpoint) {
    AP_RETURN_IF_ERROR(CommitServers({{kind::kDbEndpoint, id, ep}}));
    s.endpoint = ep;
  }
  if (changed) {
    // The switch is done when the endpoint says so (a SIGHUP is applied in well under a millisecond).
    for (int i = 0; i < 500 && ReadEndpointAppliedVersion(path) < want.version; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return Status::Ok();
}

// ---------------------------------------------------------------------------------------------------------
// Failover: Status.Failover = {Phase, From, To, Planned, Reason}, each phase committed before it acts.

Status DbInstanceController::StartFailover(const std::string& id, Snapshot& s, bool planned, const std::string& reason) {
  spdlog::warn("db_instance={} failover from {} to {}: {}", id, s.Primary(), s.Standby(), reason);
  const int64_t reboot_seq = (*s.inst)["Spec"].value("RebootSeq", int64_t{0});
  const std::string from = s.Primary(), to = s.Standby();
  return Update(
      id,
      [&](Json& doc, std::vector<StoreWrite>* w) {
        AddEvent(*ctx_, "db-instance", id, "0013", "Multi-AZ instance failover started", {"failover"}, w);
        doc["Status"]["Failover"] = {{"Phase", "fence"},  {"From", from},    {"To", to},
                                     {"Planned", planned}, {"Reason", reason}, {"StartedAt", ctx_->clock->NowMillis()}};
        if (planned) doc["Status"]["RebootSeqDone"] = reboot_seq;
      });
}

ReconcileResult DbInstanceController::RunFailover(const std::string& id, Snapshot& s) {
  Json fo = s.Status()["Failover"];
  const std::string phase = Str(fo, "Phase");
  const bool planned = fo.value("Planned", false);
  Json* from = s.Server(id + "/" + Str(fo, "From"));
  Json* to = s.Server(id + "/" + Str(fo, "To"));
  if (!to) return Status::Internal("db instance " + id + ": failover target is gone");
  FailoverHook(phase);
  const auto phase_start = std::chrono::steady_clock::now();
  auto log_phase = [&](const char* what) {
    spdlog::info("db_instance={} failover {} took {} us", id, what,
                 std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - phase_start)
                     .count());
  };

  if (phase == "fence") {
    bool fenced = false;
    std::unique_ptr<Connection> old_primary;
    if (planned && from && supervisor_.Running(*from)) {
      // Writes pause from the hold below until the repoint: first let the standby apply what it has
      // (bounded), so that the promotion has next to nothing left to wait for.
      old_primary = Admin(s, *from);
      auto standby = Admin(s, *to);
      if (old_primary && standby) (void)CatchUp(*old_primary, *standby, 2000);  // best effort: promote waits anyway
    }
    // New connections wait at the endpoint; sessions to the old primary end.
    AP_RETURN_IF_ERROR(EnsureEndpoint(id, s, ""));
    if (old_primary) fenced = old_primary->Exec("SET GLOBAL read_only=1").ok();
    if (!fenced && from) {
      // The old primary can take no further write: it is gone.
      ctx_->launcher->SignalGroup(RecordedProcess(*from), true);
      for (int i = 0; i < 500 && ctx_->launcher->GroupAlive(RecordedProcess(*from)); ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
      if (ctx_->launcher->GroupAlive(RecordedProcess(*from))) return Status::Internal("old primary not yet dead");
      (*from)["Role"] = "fenced";
      AP_RETURN_IF_ERROR(CommitServers({{kind::kDbServer, id + "/" + Str(*from, "Name"), *from}}));
    }
    log_phase(fenced ? "fence (read-only)" : "fence (killed)");
    AP_RETURN_IF_ERROR(Update(id, [&](Json& doc, std::vector<StoreWrite>*) {
      doc["Status"]["Failover"]["Phase"] = "promote";
      doc["Status"]["Failover"]["Planned"] = fenced;  // a planned one whose primary did not answer became unplanned
    }));
    return ReconcileResult::After(std::chrono::milliseconds(0));
  }

  if (phase == "promote") {
    auto conn = Admin(s, *to, 5);
    if (!conn) return Status::Internal("db instance " + id + ": cannot reach the standby to promote it");
    auto replica = ReadReplicaState(*conn);
    if (!replica.ok()) return replica.status();
    if (replica->has_value()) {
      auto pos = PromoteStandby(*conn, 10);
      if (!pos.ok()) return pos.status();
      spdlog::info("db_instance={} promoted {} at GTID {}", id, Str(*to, "Name"), *pos);
    }
    AP_RETURN_IF_ERROR(ActAsPrimary(*conn, false));
    log_phase("promote");
    std::vector<StoreWrite> writes;
    (*to)["Role"] = "primary";
    writes.push_back({kind::kDbServer, id + "/" + Str(*to, "Name"), *to});
    if (planned && from) {
      // The old primary follows the new one and is the standby from now on.
      if (auto old = Admin(s, *from, 5)) {
        AP_RETURN_IF_ERROR(StartReplication(*old, Str(*to, "Address"), s.inst->value("Port", 3306), AccountsOf(s), true));
      } else {
        return Status::Internal("db instance " + id + ": cannot reach the old primary to make it the standby");
      }
      log_phase("old primary rejoined");
      (*from)["Role"] = "standby";
      writes.push_back({kind::kDbServer, id + "/" + Str(*from, "Name"), *from});
    }
    const std::string from_name = Str(fo, "From"), to_name = Str(fo, "To");
    const std::string from_az = from ? Str(*from, "AvailabilityZone") : "";
    AP_RETURN_IF_ERROR(Update(
        id,
        [&](Json& doc, std::vector<StoreWrite>*) {
          doc["Status"]["Primary"] = to_name;
          doc["Status"]["Standby"] = planned ? from_name : "";
          doc["Status"]["Failover"]["Phase"] = "repoint";
          doc["AvailabilityZone"] = Str(*to, "AvailabilityZone");
          if (!from_az.empty()) doc["SecondaryAvailabilityZone"] = from_az;
        },
        writes));
    return ReconcileResult::After(std::chrono::milliseconds(0));
  }

  // repoint
  AP_RETURN_IF_ERROR(EnsureEndpoint(id, s, Str(*to, "Address")));
  log_phase("repoint");
  const int64_t started = fo.value("StartedAt", int64_t{0});
  spdlog::info("db_instance={} failover complete in {} ms", id, ctx_->clock->NowMillis() - started);
  {
    std::lock_guard lock(mu_);
    last_assert_[id] = 0;
  }
  return Update(id, [&](Json& doc, std::vector<StoreWrite>* w) {
    doc["Status"].erase("Failover");
    AddEvent(*ctx_, "db-instance", id, "0015",
             "Multi-AZ failover to standby complete - DNS propagation may take a few minutes", {"failover"}, w);
    AddEvent(*ctx_, "db-instance", id, "0049", "Multi-AZ instance failover completed", {"failover"}, w);
  });
}

// ---------------------------------------------------------------------------------------------------------

Result<bool> DbInstanceController::StopProcesses(const std::string& id, Snapshot& s) {
  bool all_stopped = true;
  std::vector<StoreWrite> writes;
  for (auto& [sid, server] : s.servers) {
    if (!supervisor_.Stop(server, kServerPolicy)) all_stopped = false;
    writes.push_back({kind::kDbServer, sid, server});
  }
  if (s.endpoint) {
    Json ep = *s.endpoint;
    if (!supervisor_.Stop(ep, kEndpointPolicy)) all_stopped = false;
    writes.push_back({kind::kDbEndpoint, id, ep});
  }
  AP_RETURN_IF_ERROR(CommitServers(std::move(writes)));
  return all_stopped;
}

ReconcileResult DbInstanceController::StopAll(const std::string& id, Snapshot& s) {
  if (Building(id)) return ReconcileResult::After(std::chrono::milliseconds(100));  // it may still launch
  AP_ASSIGN_OR_RETURN(bool stopped, StopProcesses(id, s));
  if (!stopped) return ReconcileResult::After(std::chrono::milliseconds(100));
  return Update(id, [&](Json& doc, std::vector<StoreWrite>*) { doc["DBInstanceStatus"] = db_status::kStopped; });
}

ReconcileResult DbInstanceController::Delete(const std::string& id, Snapshot& s) {
  if (Building(id)) return ReconcileResult::After(std::chrono::milliseconds(100));  // it may still launch
  // The final snapshot (and any manual one in progress) is taken before the servers stop.
  if (SnapshotOfInstanceInProgress(*ctx_, id)) return ReconcileResult::After(std::chrono::milliseconds(200));
  AP_ASSIGN_OR_RETURN(bool stopped, StopProcesses(id, s));
  if (!stopped) return ReconcileResult::After(std::chrono::milliseconds(100));
  std::vector<StoreWrite> writes;
  for (auto& [sid, server] : s.servers) writes.push_back({kind::kDbServer, sid, std::nullopt});
  if (s.endpoint) writes.push_back({kind::kDbEndpoint, id, std::nullopt});
  if (s.inst) {
    // Another region learns of it (best effort, one try: that region may be down; docs/design.md says what then).
    const Json& inst = *s.inst;
    if (inst.contains("ReadReplica")) {
      const Json& rr = inst["ReadReplica"];
      if (!Str(rr, "SourceRegion").empty() && Str(rr, "SourceRegion") != ctx_->catalog->region())
        (void)NotifyOtherRegion(Str(rr, "SourceRegion"), "AutopipeDeregisterReadReplica",
                                "SourceDBInstanceIdentifier=" + UriEncode(Str(rr, "Source")) +
                                    "&ReplicaArn=" + UriEncode(Str(inst, "DBInstanceArn")));
    }
    for (const auto& r : inst.value("ReadReplicas", Json::array())) {
      // Its cross-region replicas stand alone from now on (its in-region ones were promoted by the API).
      const std::string arn = Str(r, "Id");
      if (Str(r, "Region").empty() || Str(r, "Region") == ctx_->catalog->region()) continue;
      (void)NotifyOtherRegion(Str(r, "Region"), "PromoteReadReplica",
                              "DBInstanceIdentifier=" + UriEncode(arn.substr(arn.rfind(':') + 1)));
    }
    writes.push_back({kind::kDbInstance, id, std::nullopt});
    writes.push_back({kind::kDbInstanceSecret, id, std::nullopt});
    std::lock_guard lock(*ctx_->mu);
    AddEvent(*ctx_, "db-instance", id, "0003", "DB instance deleted", {"deletion"}, &writes);
  }
  std::error_code ec;
  fs::remove_all(InstanceDir(*ctx_, id), ec);
  {
    std::lock_guard lock(mu_);
    probe_failures_.erase(id);
    last_assert_.erase(id);
    heartbeats_.erase(id);
    last_replica_check_.erase(id);
    last_audit_.erase(id);
  }
  AP_RETURN_IF_ERROR(CommitServers(std::move(writes)));
  spdlog::info("db_instance={} deleted", id);
  return ReconcileResult::Done();
}

// ---------------------------------------------------------------------------------------------------------
// Read replicas (rds/db_replicas.h).

bool DbInstanceController::NotifyOtherRegion(const std::string& region, const std::string& action,
                                             const std::string& params) {
  if (ctx_->partition_dir.empty()) return false;
  auto entry = partition::FindRegion(ctx_->partition_dir, region);
  if (!entry || !entry->alive) return false;
  const partition::KeyPair key{ctx_->partition_access_key_id, ctx_->partition_secret_access_key};
  auto reply = partition::CallRegion(*entry, key, "rds", "Action=" + action + "&Version=2014-10-31&" + params, 3000);
  if (reply.ok()) return true;
  spdlog::info("{} in {}: {}", action, region, reply.status().ToString());
  // Nothing left to tell: the other side is gone or already stands alone.
  return reply.status().code() == "DBInstanceNotFound" || reply.status().code() == "InvalidDBInstanceState";
}

std::optional<ReconcileResult> DbInstanceController::Replication(const std::string& id, Snapshot& s,
                                                                  const Json& primary) {
  Json& inst = *s.inst;
  const int64_t now = ctx_->clock->NowMillis();
  if (IsActiveReplica(inst)) {
    const Json rr = inst["ReadReplica"];
    if (Str(rr, "State") == replica_state::kPromoting) {
      // Needs nothing of the source: it may be gone with its whole region.
      auto conn = Admin(s, primary, 5);
      if (!conn) return ReconcileResult(Status::Internal("db instance " + id + ": cannot reach the replica to promote it"));
      Status st = PromoteReplicaServer(*conn, 30);
      if (st.ok()) st = ActAsPrimary(*conn, false);
      if (!st.ok()) return ReconcileResult(st);
      const bool cross = !Str(rr, "SourceRegion").empty() && Str(rr, "SourceRegion") != ctx_->catalog->region();
      Status c = Update(id, [&](Json& doc, std::vector<StoreWrite>* w) {
        const int64_t retention = doc["Spec"].value("PromoteBackupRetentionPeriod", int64_t{1});
        doc.erase("ReadReplica");
        doc["Spec"].erase("PromoteBackupRetentionPeriod");
        doc["Status"].erase("Replication");
        doc["BackupRetentionPeriod"] = retention;
        doc.erase("Backup");  // the backup controller takes a first backup, then one a day
        if (cross)
          doc["PendingDeregistration"] = {{"Region", Str(rr, "SourceRegion")}, {"Source", Str(rr, "Source")},
                                          {"Id", Str(doc, "DBInstanceArn")}};
        AddEvent(*ctx_, "db-instance", id, "0057",
                 "Promoted Read Replica to a stand-alone database instance: replication from " + Str(rr, "Display") +
                     " stopped",
                 {"read replica"}, w);
      });
      if (!c.ok()) return ReconcileResult(c);
      spdlog::info("db_instance={} promoted from read replica of {}", id, Str(rr, "Display"));
      return ReconcileResult::After(std::chrono::milliseconds(0));
    }
    {
      std::lock_guard lock(mu_);
      if (now - last_replica_check_[id] < 1000) return std::nullopt;
      last_replica_check_[id] = now;
    }
    auto conn = Admin(s, primary);
    if (!conn) return std::nullopt;
    // It applies without a flush per transaction, as a standby does (a restart reads my.cnf's durable values).
    (void)conn->Exec("SET GLOBAL sync_binlog=0, innodb_flush_log_at_trx_commit=2");  // best effort: only speed
    std::optional<ReplicaState> rs;
    auto lag = ReadReplicaLag(*conn, now, &rs);
    if (!lag.ok()) return std::nullopt;
    std::string want = replica_state::kReplicating, message;
    if (!rs) {
      want = "error";
      message = "replication is not configured";
    } else if (!rs->io_running || !rs->sql_running) {
      want = "error";
      message = !rs->last_error.empty() ? rs->last_error
                : !rs->io_running     ? "the replica is not connected to its source"
                                      : "the replica's applier is stopped";
    }
    const Json prev = s.Status().value("Replication", Json::object());
    if (Str(prev, "State") == want && Str(prev, "Message") == message) return std::nullopt;
    Status c = Update(id, [&](Json& doc, std::vector<StoreWrite>* w) {
      doc["Status"]["Replication"] = {{"State", want}, {"Message", message}};
      if (want == "error" && Str(prev, "State") != "error")
        AddEvent(*ctx_, "db-instance", id, "0045", "An error has occurred in the read replication process: " + message,
                 {"read replica", "failure"}, w);
      if (want == replica_state::kReplicating && Str(prev, "State") == "error")
        AddEvent(*ctx_, "db-instance", id, "0046", "The read replica has resumed replication.", {"read replica"}, w);
    });
    if (!c.ok()) return ReconcileResult(c);
    return std::nullopt;
  }

  // Promoted from a cross-region replica: the source's region lists it until it is told (it may be down).
  if (inst.contains("PendingDeregistration")) {
    bool due = false;
    {
      std::lock_guard lock(mu_);
      if (now - last_replica_check_[id] >= 3000) {
        last_replica_check_[id] = now;
        due = true;
      }
    }
    const Json pd = inst["PendingDeregistration"];
    if (due && NotifyOtherRegion(Str(pd, "Region"), "AutopipeDeregisterReadReplica",
                                 "SourceDBInstanceIdentifier=" + UriEncode(Str(pd, "Source")) +
                                     "&ReplicaArn=" + UriEncode(Str(pd, "Id")))) {
      Status c = Update(id, [](Json& doc, std::vector<StoreWrite>*) { doc.erase("PendingDeregistration"); });
      if (!c.ok()) return ReconcileResult(c);
    }
  }

  // As a source: another region's replica that no longer follows it (deleted or promoted while this region could
  // not be told, or never made because that region died between the two commits of its creation) is forgotten.
  // Asked every 10 s per source, no lock held, once a registration is a minute old.
  bool audit = false;
  for (const auto& r : inst.value("ReadReplicas", Json::array())) {
    if (!Str(r, "Region").empty() && Str(r, "Region") != ctx_->catalog->region() &&
        now - r.value("CreatedAt", now) > 60'000)
      audit = true;
  }
  if (audit && !ctx_->partition_dir.empty()) {
    bool due = false;
    {
      std::lock_guard lock(mu_);
      int64_t& last = last_audit_[id];
      if (now - last >= 10'000) {
        last = now;
        due = true;
      }
    }
    std::vector<std::string> gone;
    for (const auto& r : due ? inst.value("ReadReplicas", Json::array()) : Json::array()) {
      const std::string arn = Str(r, "Id");
      if (Str(r, "Region").empty() || Str(r, "Region") == ctx_->catalog->region() ||
          now - r.value("CreatedAt", now) <= 60'000)
        continue;
      auto entry = partition::FindRegion(ctx_->partition_dir, Str(r, "Region"));
      if (!entry || !entry->alive) continue;  // nothing can be known while it is down
      const partition::KeyPair key{ctx_->partition_access_key_id, ctx_->partition_secret_access_key};
      auto reply = partition::CallRegion(*entry, key, "rds",
                                         "Action=DescribeDBInstances&Version=2014-10-31&DBInstanceIdentifier=" +
                                             UriEncode(arn.substr(arn.rfind(':') + 1)),
                                         3000);
      if (!reply.ok()) {
        if (reply.status().code() == "DBInstanceNotFound") gone.push_back(arn);
        continue;
      }
      if (partition::FindText(*reply, "ReadReplicaSourceDBInstanceIdentifier") != Str(inst, "DBInstanceArn"))
        gone.push_back(arn);
    }
    if (!gone.empty()) {
      Status c;
      {
        std::lock_guard lock(*ctx_->mu);
        std::vector<StoreWrite> writes;
        for (const auto& arn : gone) {
          spdlog::info("db_instance={} forgets read replica {}: it no longer follows this instance", id, arn);
          DeregisterReplica(*ctx_, id, arn, &writes);
        }
        c = writes.empty() ? Status::Ok() : ctx_->store->Commit(writes);
      }
      if (!c.ok()) return ReconcileResult(c);
      return ReconcileResult::After(std::chrono::milliseconds(0));
    }
  }

  // As a source: one replication user per replica on the primary, and the heartbeat while it has replicas.
  std::map<std::string, std::string> wanted;  // user -> password
  const Json passwords = s.secret ? s.secret->value("ReplicaUserPasswords", Json::object()) : Json::object();
  for (const auto& r : inst.value("ReadReplicas", Json::array())) {
    const std::string user = Str(r, "User");
    if (!user.empty()) wanted[user] = Str(passwords, user.c_str());
  }
  std::set<std::string> applied;
  for (const auto& u : s.Status().value("ReplicaUsers", Json::array()))
    if (u.is_string()) applied.insert(u.get<std::string>());
  std::vector<std::pair<std::string, std::string>> create;
  std::vector<std::string> drop;
  for (const auto& [u, pw] : wanted)
    if (!applied.count(u)) create.emplace_back(u, pw);
  for (const auto& u : applied)
    if (!wanted.count(u)) drop.push_back(u);
  if (!create.empty() || !drop.empty()) {
    auto conn = Admin(s, primary);
    if (!conn) return ReconcileResult(Status::Internal("db instance " + id + ": cannot reach the primary"));
    if (Status st = EnsureReplicaUsers(*conn, create, drop); !st.ok()) return ReconcileResult(st);
    Json users = Json::array();
    for (const auto& [u, _] : wanted) users.push_back(u);
    Status c = Update(id, [&](Json& doc, std::vector<StoreWrite>*) { doc["Status"]["ReplicaUsers"] = users; });
    if (!c.ok()) return ReconcileResult(c);
    return std::nullopt;
  }
  if (wanted.empty()) {
    std::lock_guard lock(mu_);
    heartbeats_.erase(id);
    return std::nullopt;
  }
  Heartbeat hb;
  {
    std::lock_guard lock(mu_);
    auto it = heartbeats_.find(id);
    if (it != heartbeats_.end()) {
      hb = std::move(it->second);
      heartbeats_.erase(it);
    }
  }
  if (now - hb.last_ms >= kHeartbeatPeriodMs) {
    if (!hb.conn || hb.address != Str(primary, "Address")) {
      hb.conn = Admin(s, primary);
      hb.address = Str(primary, "Address");
    }
    if (hb.conn && WriteHeartbeat(*hb.conn, now).ok()) hb.last_ms = now;
    else hb.conn.reset();
  }
  std::lock_guard lock(mu_);
  heartbeats_[id] = std::move(hb);
  return std::nullopt;
}

}  // namespace autopipe::rds

// RDS read replicas (docs/design.md, "RDS read replicas"): CreateDBInstanceReadReplica in this region or from
// another region of the partition, asynchronous GTID replication from the source's endpoint, ReplicaLag, and
// PromoteReadReplica.
//
// What this offers:
//   - the rules as pure functions, unit-tested (db_replicas_test.cc): how SourceDBInstanceIdentifier names a source
//     (ParseReplicaSource: an identifier here, or a DB instance ARN of this or another region), the replication
//     user's name, the replica's server id, ReplicaLag from a heartbeat;
//   - the source side, called with RegionContext::mu held: RegisterReplica (checks the source as RDS does, records
//     the replica on it and generates its replication user) and DeregisterReplica. Another region reaches them
//     through our internal Query actions AutopipeRegisterReadReplica / AutopipeDeregisterReadReplica (signed with
//     the partition key; rds_service.cc), which answer with the source endpoint and the replication user's
//     password over loopback;
//   - the SQL of a replica (SeedReplica, PromoteReplicaServer, ReadReplicaLag) and of a source (EnsureReplicaUsers,
//     WriteHeartbeat), used by the DB instance controller;
//   - DbReplicaController: per new replica, the seeding on a thread of its own (never under RegionContext::mu):
//     a fresh mariadbd, the source's accounts and a consistent dump of its databases through the source's
//     endpoint (mariadb-dump --single-transaction --gtid --master-data), then CHANGE MASTER TO the source's
//     endpoint with MASTER_USE_GTID=slave_pos. It then hands the server to the DB instance controller.
//
// Fields of a db_instance document:
//   ReadReplica (on a replica)   {State, Source (the source's identifier in its region), SourceRegion, SourceArn,
//                                 Display (ReadReplicaSourceDBInstanceIdentifier: the identifier in-region, the ARN
//                                 cross-region), SourceAddress, SourcePort, User (its replication user on the
//                                 source), SeededGtid, Error, DeregisterPending}
//                                State: seeding -> replicating -> promoting -> (the field goes), or failed
//                                (DBInstanceStatus failed, event, until deleted). Its password is the secret's
//                                ReplicaSourcePassword.
//   ReadReplicas (on a source)   [{Id (what ReadReplicaDBInstanceIdentifiers shows: the identifier in-region, the
//                                 ARN cross-region), Region, User, CreatedAt}]; passwords in the secret's
//                                ReplicaUserPasswords {user: password}.
//   Status.ReplicaUsers          the users the source's controller has created on its primary (it creates and
//                                drops them to match ReadReplicas).
//   Status.Replication           on a replica, from the controller: {State replicating | error, Message}.
//
// Thread-safety: functions taking a RegionContext need RegionContext::mu held; the pure and SQL ones are
// thread-safe (a Connection is one thread's).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "process/supervisor.h"
#include "rds/mariadb.h"
#include "region/background_jobs.h"
#include "region/context.h"
#include "region/controller.h"

namespace autopipe::rds {

namespace replica_state {
inline constexpr char kSeeding[] = "seeding";
inline constexpr char kReplicating[] = "replicating";
inline constexpr char kPromoting[] = "promoting";
inline constexpr char kFailed[] = "failed";
}  // namespace replica_state

// The heartbeat table the source's controller updates (as RDS's mysql.rds_heartbeat2) while it has replicas.
inline constexpr char kHeartbeatTable[] = "mysql.rds_heartbeat2";
// How often a source with replicas writes its heartbeat.
inline constexpr int kHeartbeatPeriodMs = 100;

// ---- the rules ------------------------------------------------------------------------------------------------

struct ReplicaSource {
  std::string region;      // the source's region
  std::string identifier;  // its DBInstanceIdentifier there (lower case)
  bool cross_region = false;
};
// SourceDBInstanceIdentifier: an identifier (this region) or arn:aws:rds:<region>:<account>:db:<id>.
// InvalidParameterValue when it is neither.
Result<ReplicaSource> ParseReplicaSource(const std::string& value, const std::string& own_region,
                                         const std::string& account);

// The replication user on the source for a replica named `replica` (its identifier or ARN): rdsrepl_ and 12 hex
// digits of a hash, so that it is stable and at most 20 characters.
std::string ReplicationUserFor(const std::string& replica);
// A replica's server id: distinct from the source's (small numbers, one per server) and, with high probability,
// from every other replica's.
int NewReplicaServerId();
// ReplicaLag in seconds from the last heartbeat the replica applied (ms, the source's clock, which is this
// machine's) at now_ms; never negative.
double HeartbeatLagSeconds(int64_t heartbeat_ms, int64_t now_ms);

// ---- the source side (RegionContext::mu held) -----------------------------------------------------------------

// What a replica needs of its source.
struct ReplicaGrant {
  std::string address;  // the source's Endpoint
  int port = 3306;
  std::string user, password;  // its replication user
  Json about;  // Engine, EngineVersion, DBInstanceClass, AllocatedStorage, StorageType, MasterUsername, Port, DBName,
               // DBInstanceArn
};
// Checks the source (DBInstanceNotFound; InvalidDBInstanceState when it is not available or its
// BackupRetentionPeriod is 0) and records `replica_id` (an identifier here or an ARN) on it with a replication
// user; the source's controller creates that user on its primary. Appends the writes (the caller commits).
// Registering the same replica again returns the same grant.
Result<ReplicaGrant> RegisterReplica(const RegionContext& ctx, const std::string& source_id,
                                     const std::string& replica_id, const std::string& replica_region,
                                     std::vector<StoreWrite>* writes);
// Forgets `replica_id` on the source (its user is dropped by the source's controller). Nothing when either is gone.
void DeregisterReplica(const RegionContext& ctx, const std::string& source_id, const std::string& replica_id,
                       std::vector<StoreWrite>* writes);

// True while the replica controller owns the instance (seeding; failed until it is deleted).
bool ReplicaHoldsInstance(const Json& inst);
// True for an instance that follows a source now (replicating or being promoted).
bool IsActiveReplica(const Json& inst);

// ---- SQL ------------------------------------------------------------------------------------------------------

// On the source's primary: the heartbeat table (first: a replica's dump must come after it) and one user per entry
// of `users` {user: password} (binary-logged, so a Multi-AZ standby has them after a failover), with what a dump
// and replication need; users in `drop` go.
Status EnsureReplicaUsers(Connection& primary, const std::vector<std::pair<std::string, std::string>>& create,
                          const std::vector<std::string>& drop);
Status WriteHeartbeat(Connection& primary, int64_t now_ms);

// A replica's lag: heartbeat-based when its table has a value, else Seconds_Behind_Master. nullopt while
// replication is not running (no SQL or I/O thread). `state` (optional) gets the replication state.
Result<std::optional<double>> ReadReplicaLag(Connection& replica, int64_t now_ms, std::optional<ReplicaState>* state);

// Promotion of a read replica: stops fetching, applies what it received when its applier runs (up to wait_s),
// forgets its source (RESET SLAVE ALL) and lifts read_only. Idempotent (a server that follows no one only gets
// read_only=0). Needs nothing of the source.
Status PromoteReplicaServer(Connection& replica, int wait_s);

// ---- the controller -------------------------------------------------------------------------------------------

class DbReplicaController : public Controller {
 public:
  explicit DbReplicaController(RegionContext* ctx) : ctx_(ctx), supervisor_(ctx->launcher, ctx->clock) {}
  ~DbReplicaController() override;
  const char* name() const override { return "db-replica"; }
  std::vector<std::string> Keys() override;
  std::vector<Watch> Watches() const override;
  ReconcileResult Reconcile(const std::string& id) override;
  int workers() const override { return 1; }

 private:
  Status Seed(const std::string& id);
  Status Fail(const std::string& id, const Status& why);
  bool Cancelled(const std::string& id);

  RegionContext* const ctx_;
  Supervisor supervisor_;
  BackgroundJobs jobs_;  // last: joined before the rest goes
};

}  // namespace autopipe::rds

// DbInstanceController: makes each RDS DB instance real (rds/db_instances.h is the document it acts on).
//
// What runs for one DB instance <id> (all under <data dir>/rds/<id>/):
//   - one `mariadbd` per server, a db_server document "<id>/s<n>" each (Role primary or standby; the standby
//     only with Multi-AZ), each on its own private address in its AZ and the instance's port, under its own uid
//     when the region runs as root;
//   - one `autopipe db-endpoint` (rds/db_endpoint.h), the db_endpoint document "<id>", on the instance's
//     stable Endpoint address, splicing connections to the current primary.
//
// One pass for one instance, in order (each step bounded; slow steps run with no lock held and commit after):
//   1. delete / stop      Spec.Deleting: stop every process, then delete the documents and the folder (event
//                         0003). Spec.Running false: stop them and keep everything (stopped).
//   2. plan               no servers yet: a primary in AvailabilityZone (and a standby in another AZ when
//                         Spec.MultiAZ), with addresses, server ids and launch tokens, committed before any
//                         process exists.
//   3. prepare            a server not yet Ready: fresh (a copy of the region's data-dir template, its own
//                         accounts, the master user on the primary, replication on the standby; a new pair side
//                         by side) or, for a standby added or rebuilt later, from a mariadb-backup of the primary
//                         (GTID position from the backup) on a thread of its own, so health checks go on.
//   4. failover           a Multi-AZ primary that died, or missed kProbeFailuresForFailover greetings in a row
//                         (a hang), or a reboot with ForceFailover: the recorded steps of Status.Failover
//                         (fence -> promote -> repoint), each committed before it acts, so a server killed at
//                         any step redoes that step (every step is idempotent). Fencing kills the old primary
//                         (planned: makes it read-only); the endpoint holds new connections meanwhile.
//   5. keep running       crashed servers restart in place (a Single-AZ primary, a standby); every server starts
//                         read-only, and only the recorded primary is made writable, with semi-sync on while a
//                         standby is attached (its loss and return are events, never silent).
//   6. endpoint           the endpoint's back end is the primary once it is writable; changed by rewriting its
//                         config and SIGHUP.
//   7. requests           reboot (restart in place), master password change, Multi-AZ on (a standby from a
//                         backup: events 0050/0051) or off.
//   8. status             DBInstanceStatus derived from Spec and Status (creating, available, modifying, ...).
//
// Thread-safety: Reconcile takes RegionContext::mu only to read a snapshot and to commit; never twice at once
// for one instance (the runtime's guarantee), several instances in parallel (workers()).
#pragma once

#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "process/supervisor.h"
#include "rds/db_instances.h"
#include "rds/mariadb.h"
#include "region/context.h"
#include "region/controller.h"

namespace autopipe {
namespace kind {
inline constexpr char kDbServer[] = "db_server";
inline constexpr char kDbEndpoint[] = "db_endpoint";
}  // namespace kind

namespace rds {

// A primary that does not greet a new connection within kProbeTimeoutMs this many times in a row is hung.
inline constexpr int kProbeTimeoutMs = 250;
inline constexpr int kProbeFailuresForFailover = 3;
// How often a healthy instance is looked at (the failure detector's cadence).
inline constexpr int kHealthPeriodMs = 100;

// Test hook: when set, called with the failover phase about to run ("fence", "promote", "repoint"); tests
// kill the server there.
void SetFailoverHookForTest(std::function<void(const std::string& phase)> hook);

class DbInstanceController : public Controller {
 public:
  explicit DbInstanceController(RegionContext* ctx) : ctx_(ctx), supervisor_(ctx->launcher, ctx->clock) {}
  ~DbInstanceController() override;  // waits for standby builds in progress
  const char* name() const override { return "db-instance"; }
  std::vector<std::string> Keys() override;
  std::vector<Watch> Watches() const override;
  ReconcileResult Reconcile(const std::string& id) override;
  int workers() const override { return 4; }

 private:
  struct Snapshot;
  Snapshot Read(const std::string& id);
  // Applies `mutate` to the current document (read again under the lock; it may add writes such as events) and
  // commits it with `writes`.
  using Mutation = std::function<void(Json& doc, std::vector<StoreWrite>* writes)>;
  Status Update(const std::string& id, const Mutation& mutate, std::vector<StoreWrite> writes = {});
  Status CommitServers(std::vector<StoreWrite> writes);

  ReconcileResult Delete(const std::string& id, Snapshot& s);
  // Stops every process of the instance (SIGTERM, SIGKILL after the grace period) and records it; true once
  // none is left.
  Result<bool> StopProcesses(const std::string& id, Snapshot& s);
  ReconcileResult StopAll(const std::string& id, Snapshot& s);
  ReconcileResult Plan(const std::string& id, Snapshot& s);
  Status Prepare(const std::string& id, Snapshot& s, Json& server);
  ReconcileResult RunFailover(const std::string& id, Snapshot& s);
  Status StartFailover(const std::string& id, Snapshot& s, bool planned, const std::string& reason);
  Status EnsureEndpoint(const std::string& id, Snapshot& s, const std::string& backend);
  Status AssertPrimary(const std::string& id, Snapshot& s, const Json& primary);
  // Read replicas (rds/db_replicas.h), once the primary greets: as a source, its replicas' users and the heartbeat;
  // as a replica, the replication state (Status.Replication, events) and a promotion. A result ends the pass.
  std::optional<ReconcileResult> Replication(const std::string& id, Snapshot& s, const Json& primary);
  // Best effort, no lock held: tells the source's region that a replica of it is gone (cross-region), or another
  // region's replicas of a source being deleted that they stand alone now. True when it was done.
  bool NotifyOtherRegion(const std::string& region, const std::string& action, const std::string& params);
  Status RestartServer(Json& server);
  // A standby from a backup, on a thread of its own (at most one per instance); Reconcile collects it.
  void StartStandbyBuild(const std::string& id, const Snapshot& s, const Json& standby);
  bool Building(const std::string& id);

  ServerConfig ConfigOf(const Json& server, const Json& inst) const;
  AdminAccounts AccountsOf(const Snapshot& s) const;
  std::unique_ptr<Connection> Admin(const Snapshot& s, const Json& server, int timeout_s = 2);

  RegionContext* const ctx_;
  Supervisor supervisor_;

  // In memory only: consecutive failed greetings of each instance's primary, and the last semi-sync reading.
  std::mutex mu_;
  std::map<std::string, int> probe_failures_;   // guarded by mu_
  std::map<std::string, int64_t> last_assert_;  // guarded by mu_
  // A source's heartbeat connection to its primary (used by that instance's pass only) and when it last wrote.
  struct Heartbeat {
    std::string address;
    std::unique_ptr<Connection> conn;
    int64_t last_ms = 0;
  };
  std::map<std::string, Heartbeat> heartbeats_;  // guarded by mu_ (taken out while used)
  std::map<std::string, int64_t> last_replica_check_;  // guarded by mu_
  std::map<std::string, int64_t> last_audit_;          // guarded by mu_: a source's last check of other regions
  struct Build {
    std::thread thread;
    bool done = false;  // guarded by mu_
    Status status;      // guarded by mu_
  };
  std::map<std::string, std::unique_ptr<Build>> builds_;  // guarded by mu_
};

}  // namespace rds
}  // namespace autopipe

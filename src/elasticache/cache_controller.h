// CacheClusterController: runs each ElastiCache replication group on real redis-server processes, one per cache
// node, and its stable endpoints, and fails a shard over when its primary dies or hangs.
//
// One pass for one replication group (key = ReplicationGroupId):
//   1. processes - a node being created or rebuilt is kept running by the Supervisor (crash back-off); a node
//                  that was available and whose process is gone has failed;
//   2. probe     - every node with a process is asked INFO replication (and, in cluster mode, CLUSTER NODES and
//                  CLUSTER INFO) with a kProbeTimeoutMillis deadline; an available node that has not answered for
//                  kHangMillis while its process is stopped (SIGSTOP), or for kUnresponsiveMillis while it runs,
//                  has failed too;
//   3. failures  - recorded before anything is done about them: the failed node is SIGKILLed and becomes
//                  "recovering"; when it was its shard's primary (or TestFailover asked), the replica with the
//                  largest replication offset becomes the shard's Primary in the document (FailoverFrom = the old
//                  primary). This is committed first (compare-and-set on the group document), so a server killed
//                  mid-failover resumes the same failover and never ends with two primaries in a shard;
//   4. topology  - level-triggered toward the document: creating groups are formed (CLUSTER ADDSLOTSRANGE on
//                  primaries, CLUSTER MEET of every node a node does not know, CLUSTER REPLICATE as soon as a replica
//                  knows its primary; REPLICAOF in non-cluster mode) and become available once cluster_state:ok,
//                  every node's CLUSTER NODES agrees on the slots and the replicas, and a PING through the
//                  configuration (or primary) endpoint is answered; in an
//                  available group a desired primary that is still a replica gets CLUSTER FAILOVER TAKEOVER
//                  (REPLICAOF NO ONE), every replica is pointed at its shard's primary, and a recovering node is
//                  rebuilt empty in its own AZ at its own address, joins as a replica, and the old node id is
//                  forgotten by every node (CLUSTER FORGET). Events as AWS-SEMANTICS.md §3;
//   5. endpoints - one `autopipe lb` TCP node per endpoint (configuration: every available node; primary: the
//                  primary; reader: the replicas), its config rewritten and SIGHUP'd when the topology changes;
//   6. resharding, snapshots - slots move toward the group's Resharding.Target a slice of time per pass (Reshard);
//                  creating snapshots advance (BGSAVE on a replica per shard, the RDB copied and summed), one
//                  automatic snapshot per SnapshotWindow when SnapshotRetentionLimit > 0;
//   7. deletion  - a final snapshot first, then a deleting group's nodes and endpoints get SIGTERM (SIGKILL after
//                  kKillAfterMillis); once none is left, and no process carries one of their launch tokens, its
//                  documents and folder go.
//   Throughout: a TransitEncryptionEnabled group's nodes get a key and a certificate from the
//                  region's CA at first start and serve TLS only, and every connection the controller makes to
//                  them is TLS (ConnectOptions from NodeAccess); AUTH settings reach a node through a 0600 file on
//                  its stdin, and a changed AuthVersion is applied to running nodes (ApplyAuth) before anything
//                  else in the pass; the group is available again once every node holds it.
// A node about to be (re)launched first has any process carrying its launch token killed (a relaunch a server
// killed before recording it would hold the node's address for ever).
// Only steps 3 and the final commit take RegionContext::mu; connecting to Redis, launching and waiting never do.
// Node and endpoint documents have this controller as their one writer after creation; the group document is
// written with expect_revision, and a conflict (an API write in between) re-runs the pass.
//
// Thread-safety: Reconcile may run for different groups at once (workers() = 2); the only state shared between
// passes is the unreachable-since map, guarded by mu_.
#pragma once

#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "elasticache/redis_client.h"
#include "elasticache/replication_groups.h"
#include "process/supervisor.h"
#include "region/context.h"
#include "region/controller.h"

namespace autopipe {

class CacheClusterController : public Controller {
 public:
  explicit CacheClusterController(RegionContext* ctx) : ctx_(ctx), supervisor_(ctx->launcher, ctx->clock) {}
  const char* name() const override { return "elasticache"; }
  std::vector<std::string> Keys() override;
  std::vector<Watch> Watches() const override;
  ReconcileResult Reconcile(const std::string& rg) override;
  int workers() const override { return 2; }

  static constexpr int kProbeTimeoutMillis = 150;
  static constexpr int kTlsProbeTimeoutMillis = 400;  // TransitEncryptionEnabled: the handshake included
  // A node that has not answered a probe for kHangMillis while its process is stopped (SIGSTOP) has failed; one
  // whose process runs has failed only after kUnresponsiveMillis (a CPU-starved node on a loaded machine may stall
  // for most of a second and must not be failed over).
  static constexpr int64_t kHangMillis = 1000;
  static constexpr int64_t kUnresponsiveMillis = 3000;
  static constexpr int64_t kProbeEveryMillis = 200;
  static constexpr SupervisionPolicy kPolicy{.crash_window_ms = 1000,
                                             .first_backoff_ms = 500,
                                             .max_backoff_ms = 10'000,
                                             .kill_after_ms = 3000};

  // What one probe of one node saw.
  struct Probe {
    bool up = false;
    std::map<std::string, std::string> replication;  // INFO replication
    std::vector<elasticache::ClusterNode> nodes;      // CLUSTER NODES (cluster mode)
    std::string my_id;
    bool cluster_ok = false;  // cluster_state:ok
  };

 private:
  struct Pass;
  ReconcileResult TearDown(Pass& pass);
  void RunProcesses(Pass& pass);
  void ProbeAll(Pass& pass);
  void HandleFailures(Pass& pass);
  // True once the cluster is formed and every view agrees.
  bool FormCluster(Pass& pass);
  bool EndpointsReady(Pass& pass);
  void MarkAvailable(Pass& pass);
  void EnforceTopology(Pass& pass);
  // After a takeover the other nodes do not accept: gives the new primary a config epoch above every other.
  void RaiseConfigEpoch(const Pass& pass, const std::string& primary_id);
  void SyncEndpoints(Pass& pass);
  // ModifyReplicationGroupShardConfiguration: once every node is in place, moves slots toward the document's
  // Resharding.Target one at a time (SETSLOT IMPORTING on the target, MIGRATING on the source, MIGRATE of its keys
  // in batches, SETSLOT NODE everywhere), recording each shard's Slots as it goes; then drops emptied shards.
  void Reshard(Pass& pass);
  static constexpr int64_t kReshardSliceMillis = 300;
  // Moves the group's creating snapshots on (BGSAVE on a replica per shard, the RDB copied and summed); true
  // while one is still being taken. Returns the group from snapshotting to available when none is.
  bool TakeSnapshots(Pass& pass);
  // SnapshotRetentionLimit > 0: one automatic snapshot per SnapshotWindow; those older than the limit go.
  void ScheduleAutomaticSnapshot(Pass& pass);
  Status Commit(Pass& pass);

  // SIGKILLs every process that carries one of `tokens` and is not in `keep`; the tokens that had one.
  std::set<std::string> KillStrays(const std::set<std::string>& tokens, const std::set<pid_t>& keep);
  Status PrepareNodeDir(const Json& rg, Json& node);
  LaunchSpec NodeLaunchSpec(const Json& rg, const Json& node) const;
  std::unique_ptr<elasticache::RedisConnection> Connect(const Pass& pass, const Json& node) const;
  Result<std::string> Run(const Pass& pass, const Json& node, const std::vector<std::string>& argv) const;
  // TransitEncryptionEnabled: the node's key and certificate (issued by the region's CA for its address and the
  // group's endpoints) and the CA certificate, in its folder, its own.
  Status PrepareNodeTls(const Json& rg, const Json& node, const std::string& dir);
  // The AUTH settings (user default with the tokens' hashes, masteruser, masterauth) for `node`: a 0600 file only
  // the server reads, handed to redis-server as its stdin ("-"), never on its command line. "" when no AUTH.
  std::string AuthSettings(const Json& rg) const;
  // A changed AuthVersion: every running node takes the group's token set at once (ACL SETUSER default, CONFIG
  // SET masteruser/masterauth) and its stdin settings are rewritten for its next start.
  void ApplyAuth(Pass& pass);

  RegionContext* ctx_;
  Supervisor supervisor_;
  std::mutex mu_;
  std::map<std::string, int64_t> unreachable_since_;  // cluster id -> first failed probe (ms); guarded by mu_
};

}  // namespace autopipe

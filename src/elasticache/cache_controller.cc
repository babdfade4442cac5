#include "elasticache/cache_controller.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <set>

#include "common/log.h"
#include "elasticache/tls.h"
#include "ec2/instances.h"
#include "lb/node_files.h"
#include "process/recorded_process.h"

namespace autopipe {
namespace {

namespace fs = std::filesystem;
using namespace elasticache;  // NOLINT(build/namespaces): the module's own names

const char* RedisServerPath() {
  static const std::string path = [] {
    for (const char* p : {"/usr/bin/redis-server", "/usr/local/bin/redis-server", "/usr/sbin/redis-server"}) {
      if (::access(p, X_OK) == 0) return std::string(p);
    }
    return std::string("/usr/bin/redis-server");
  }();
  return path.c_str();
}

bool IsPrimaryOf(const Json& ng, const std::string& cluster_id) { return ng["Primary"] == cluster_id; }

Json* ShardOf(Json& rg, const std::string& cluster_id) {
  for (auto& ng : rg["NodeGroups"]) {
    for (const auto& m : ng["Members"]) {
      if (m == cluster_id) return &ng;
    }
  }
  return nullptr;
}

std::string Str(const Json& doc, const char* key) { return doc.value(key, std::string()); }

int64_t Offset(const CacheClusterController::Probe& p) {
  auto it = p.replication.find("slave_repl_offset");
  if (it == p.replication.end()) it = p.replication.find("master_repl_offset");
  if (it == p.replication.end()) return -1;
  try {
    return std::stoll(it->second);
  } catch (const std::exception&) {
    return -1;
  }
}

std::string Role(const CacheClusterController::Probe& p) {
  auto it = p.replication.find("role");
  return it == p.replication.end() ? "" : it->second;
}

// redis-server's settings for one node, in order.
std::vector<std::pair<std::string, std::string>> NodeSettings(const Json& rg, const Json& node) {
  const std::string address = node["Address"];
  std::vector<std::pair<std::string, std::string>> s = {
      {"bind", address},
      {"bind-source-addr", address},
      {"port", std::to_string(node["Port"].get<int>())},
      {"protected-mode", "no"},
      // Keep argv and the environment as launched: Redis's process title overwrites the environment, and with
      // it the launch token that lets a restarted server or `down` find a node no document records.
      {"set-proc-title", "no"},
      {"daemonize", "no"},
      {"dir", "./"},
      {"save", ""},
      {"appendonly", "no"},
      {"maxmemory", std::to_string(MaxMemoryMibFor(rg["CacheNodeType"])) + "mb"},
      {"maxmemory-policy", "volatile-lru"},
      {"repl-diskless-sync", "yes"},
      {"repl-diskless-sync-delay", "0"},
  };
  if (rg.value("TransitEncryptionEnabled", false)) {
    // TLS only (TransitEncryptionMode required): clients, replication and the cluster bus. Clients need no
    // certificate of their own (ElastiCache asks none); nodes present theirs to each other.
    for (auto& kv : s) {
      if (kv.first == "port") kv.second = "0";
    }
    s.insert(s.end(), {{"tls-port", std::to_string(node["Port"].get<int>())},
                       {"tls-cert-file", "node.crt"},
                       {"tls-key-file", "node.key"},
                       {"tls-ca-cert-file", "ca.crt"},
                       {"tls-auth-clients", "no"},
                       {"tls-replication", "yes"}});
    if (rg["ClusterEnabled"].get<bool>()) s.push_back({"tls-cluster", "yes"});
  }
  if (rg["ClusterEnabled"].get<bool>()) {
    s.insert(s.end(), {{"cluster-enabled", "yes"},
                       {"cluster-config-file", "nodes.conf"},
                       {"cluster-node-timeout", "5000"},
                       {"cluster-announce-ip", address},
                       {"cluster-require-full-coverage", "no"},
                       // Only the control plane promotes (Redis alone cannot with two shards, and must not race
                       // it with more).
                       {"cluster-replica-no-failover", "yes"}});
  }
  return s;
}

// The state letter of /proc/<pid>/stat (R, S, D, T, t, Z ...); 0 when the process is gone.
char ProcessState(pid_t pid) {
  if (pid <= 0) return 0;
  char path[64];
  std::snprintf(path, sizeof path, "/proc/%d/stat", static_cast<int>(pid));
  int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  char buf[512];
  const ssize_t n = ::read(fd, buf, sizeof buf - 1);
  ::close(fd);
  if (n <= 0) return 0;
  buf[n] = 0;
  const char* close_paren = std::strrchr(buf, ')');
  return close_paren && close_paren[1] == ' ' ? close_paren[2] : 0;
}

const ClusterNode* Myself(const CacheClusterController::Probe& p) {
  for (const auto& n : p.nodes) {
    if (n.Has("myself")) return &n;
  }
  return nullptr;
}

// CLUSTER NODES shows a one-slot range as the slot alone.
std::string AsRedisShows(const std::string& slots) {
  auto r = ParseSlots(slots);
  if (!r.ok() || r->first != r->last) return slots;
  return std::to_string(r->first);
}

const ClusterNode* FindNode(const CacheClusterController::Probe& p, const std::string& id) {
  for (const auto& n : p.nodes) {
    if (n.id == id) return &n;
  }
  return nullptr;
}

}  // namespace

struct CacheClusterController::Pass {
  std::string rg_id;
  ConnectOptions access;  // how this group's nodes are reached (TLS, tokens)
  VersionedDoc read;
  Json rg;  // null when the group document is gone
  std::map<std::string, Json> nodes_before, nodes;
  std::map<std::string, Json> endpoints_before, endpoints;
  std::vector<StoreWrite> events;
  std::map<std::string, Probe> probes;
  std::set<std::string> failed;
  std::set<std::string> deleted_nodes, deleted_endpoints;
  std::map<std::string, Json> snapshots_before, snapshots;  // this group's snapshots
  std::set<std::string> deleted_snapshots;
  bool delete_group = false;
  int64_t now = 0;
  bool busy = false;  // something is in progress: look again soon

  bool cluster() const { return rg.value("ClusterEnabled", false); }
  void Event(const std::string& source, const std::string& type, const std::string& message) {
    events.push_back(EventWrite(source, type, message, now, static_cast<int>(events.size())));
    spdlog::info("elasticache {} {}: {}", type, source, message);
  }
  bool Up(const std::string& id) const {
    auto it = probes.find(id);
    return it != probes.end() && it->second.up;
  }
};

std::vector<std::string> CacheClusterController::Keys() {
  std::set<std::string> keys;
  for (const auto& id : ctx_->store->Ids(kind::kCacheReplicationGroup)) keys.insert(id);
  for (const char* k : {kind::kCacheNode, kind::kCacheEndpoint}) {
    for (const auto& doc : ctx_->store->List(k)) keys.insert(Str(*doc, "ReplicationGroupId"));
  }
  return {keys.begin(), keys.end()};
}

std::vector<Controller::Watch> CacheClusterController::Watches() const {
  Store* store = ctx_->store;
  auto owner = [store](const char* k) {
    return [store, k](const std::string& id) -> std::optional<std::string> {
      auto doc = store->GetVersioned(k, id).doc;
      if (!doc) return std::nullopt;  // gone: every key (cheap; few groups)
      return Str(*doc, "ReplicationGroupId");
    };
  };
  return {{kind::kCacheReplicationGroup, SameKey},
          {kind::kCacheNode, owner(kind::kCacheNode)},
          {kind::kCacheEndpoint, owner(kind::kCacheEndpoint)},
          {kind::kCacheSnapshot, owner(kind::kCacheSnapshot)}};
}

// ---- nodes: files and processes ------------------------------------------------------------------------------------

Status CacheClusterController::PrepareNodeDir(const Json& rg, Json& node) {
  const std::string dir = NodeDir(*ctx_, Str(rg, "ReplicationGroupId"), Str(node, "CacheClusterId"));
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return Status::Internal("cannot create " + dir + ": " + ec.message());
  const std::string address = node["Address"];
  // The settings go on the command line (the node's uid may not be able to open a file under the data dir:
  // Redis opens its config file by absolute path); redis.conf records them for people.
  std::string conf = "# The settings the ElastiCache controller starts " + Str(node, "CacheClusterId") + " with\n";
  for (const auto& [k, v] : NodeSettings(rg, node)) conf += k + " \"" + v + "\"\n";
  AP_RETURN_IF_ERROR(lb::WriteFileAtomically(dir + "/redis.conf", conf, 0600));
  // The AUTH settings: read by redis-server from its stdin, which the launcher opens as the server (0600, the
  // server's own: the node never needs to read it again).
  const std::string auth = AuthSettings(rg);
  if (auth.empty()) {
    fs::remove(dir + "/auth.conf", ec);
  } else {
    AP_RETURN_IF_ERROR(lb::WriteFileAtomically(dir + "/auth.conf", auth, 0600));
  }
  node["AuthVersion"] = rg.value("AuthVersion", 0);
  if (rg.value("TransitEncryptionEnabled", false)) AP_RETURN_IF_ERROR(PrepareNodeTls(rg, node, dir));
  // A group created from a snapshot: its primaries start with their shard's RDB (verified against its sum).
  const std::string dump = dir + "/dump.rdb";
  if (node.contains("SeedFile") && node["Status"] == node_status::kCreating && !fs::exists(dump)) {
    auto sum = FileSha256(node["SeedFile"]);
    if (!sum.ok()) return sum.status();
    if (*sum != Str(node, "SeedSha256")) {
      return Status::Internal("snapshot file " + Str(node, "SeedFile") + " does not match its checksum");
    }
    fs::copy_file(node["SeedFile"].get<std::string>(), dump + ".part", fs::copy_options::overwrite_existing, ec);
    if (ec) return Status::Internal("cannot copy " + Str(node, "SeedFile") + ": " + ec.message());
    fs::rename(dump + ".part", dump, ec);
    if (ec) return Status::Internal("cannot place " + dump + ": " + ec.message());
  }
  if (ctx_->instance_identities) {
    auto uid = InstanceUidFor(address);
    if (!uid) return Status::Internal("no identity for address " + address);
    if (fs::exists(dump) && ::chown(dump.c_str(), *uid, *uid) != 0) {
      return Status::Internal("cannot hand " + dump + " to its node's uid");
    }
    for (const char* f : {"/node.crt", "/node.key", "/ca.crt"}) {
      const std::string path = dir + f;
      if (fs::exists(path) && ::chown(path.c_str(), *uid, *uid) != 0) {
        return Status::Internal("cannot hand " + path + " to its node's uid");
      }
    }
    for (const std::string& p : {dir}) {
      if (::chown(p.c_str(), *uid, *uid) != 0) return Status::Internal("cannot hand " + p + " to its node's uid");
    }
    if (::chmod(dir.c_str(), 0700) != 0) return Status::Internal("cannot chmod " + dir);
    node["RunAsUid"] = *uid;
  }
  return Status::Ok();
}

Status CacheClusterController::PrepareNodeTls(const Json& rg, const Json& node, const std::string& dir) {
  AP_ASSIGN_OR_RETURN(auto ca, LoadOrCreateCa(ctx_->data_dir));
  if (!fs::exists(dir + "/node.key") || !fs::exists(dir + "/node.crt")) {
    const std::string address = node["Address"];
    std::vector<std::string> ips = {address};
    if (rg.contains("AddressIndex")) {
      ips.push_back(EndpointAddress(*ctx_, rg["AddressIndex"], false));
      ips.push_back(EndpointAddress(*ctx_, rg["AddressIndex"], true));
    }
    AP_ASSIGN_OR_RETURN(auto issued, IssueCertificate(ca, Str(node, "CacheClusterId"), ips, {}));
    AP_RETURN_IF_ERROR(lb::WriteFileAtomically(dir + "/node.key", issued.key_pem, 0600));
    AP_RETURN_IF_ERROR(lb::WriteFileAtomically(dir + "/node.crt", issued.cert_pem, 0644));
  }
  return lb::WriteFileAtomically(dir + "/ca.crt", ca.cert_pem, 0644);
}

std::string CacheClusterController::AuthSettings(const Json& rg) const {
  if (!rg.contains("AuthTokens") || rg["AuthTokens"].empty()) return "";
  std::string user = "user default on";
  if (rg.value("AuthPasswordless", false)) {
    user += " nopass";
  } else {
    for (const auto& t : rg["AuthTokens"]) user += " #" + TokenHash(t.get<std::string>());
  }
  user += " ~* &* +@all";
  return "# AUTH for this node: read once from stdin at start; rewritten by each token change\n" + user +
         "\nmasteruser default\nmasterauth \"" + CurrentAuthToken(rg) + "\"\n";
}

LaunchSpec CacheClusterController::NodeLaunchSpec(const Json& rg, const Json& node) const {
  const std::string dir = NodeDir(*ctx_, Str(node, "ReplicationGroupId"), Str(node, "CacheClusterId"));
  LaunchSpec spec;
  // Paths relative to the working directory: the node's uid may not traverse the data dir above its folder.
  spec.argv = {RedisServerPath()};
  if (!AuthSettings(rg).empty()) {
    // "-": the AUTH settings come on stdin (auth.conf, opened by the launcher before it drops to the node's uid).
    spec.argv.push_back("-");
    spec.stdin_path = dir + "/auth.conf";
  }
  for (const auto& [k, v] : NodeSettings(rg, node)) {
    spec.argv.push_back("--" + k);
    spec.argv.push_back(v);
  }
  spec.env = {{"PATH", "/usr/local/bin:/usr/bin:/bin"}, {"HOME", dir}, {"LANG", "C.UTF-8"}};
  spec.working_dir = dir;
  spec.log_path = dir + "/redis.log";
  if (node.contains("RunAsUid")) {
    spec.uid = node["RunAsUid"].get<uint32_t>();
    spec.gid = node["RunAsUid"].get<uint32_t>();
  }
  return spec;
}

std::unique_ptr<RedisConnection> CacheClusterController::Connect(const Pass& pass, const Json& node) const {
  // A TLS handshake needs both ends' CPU: on a loaded machine it alone can outlast a plain probe's deadline.
  const int timeout = pass.access.tls ? kTlsProbeTimeoutMillis : kProbeTimeoutMillis;
  auto c = RedisConnection::Connect(node["Address"], node["Port"].get<int>(), timeout, pass.access);
  return c.ok() ? std::move(*c) : nullptr;
}

Result<std::string> CacheClusterController::Run(const Pass& pass, const Json& node,
                                               const std::vector<std::string>& argv) const {
  auto c = RedisConnection::Connect(node["Address"], node["Port"].get<int>(), 1000, pass.access);
  if (!c.ok()) return c.status();
  auto r = (*c)->Command(argv);
  if (!r.ok()) {
    const std::string command = argv[0] + " " + (argv.size() > 1 ? argv[1] : "");
    spdlog::info("elasticache node={} {}: {}", Str(node, "CacheClusterId"), command, r.status().message());
  }
  return r;
}

std::set<std::string> CacheClusterController::KillStrays(const std::set<std::string>& tokens,
                                                         const std::set<pid_t>& keep) {
  std::set<std::string> found;
  if (tokens.empty()) return found;
  for (const auto& [token, proc] : ctx_->launcher->FindByLaunchToken(tokens)) {
    if (keep.count(proc.pid)) continue;
    spdlog::warn("elasticache: pid {} carries launch token {} but is not its document's process: killing it",
                 proc.pid, token);
    ctx_->launcher->SignalGroup(proc, /*force=*/true);
    found.insert(token);
  }
  return found;
}

void CacheClusterController::RunProcesses(Pass& pass) {
  // A node about to be (re)started must have no process left under its token: one launched by a server killed
  // before recording it would hold the node's address, and nothing would ever stop it once the document goes.
  std::set<std::string> to_launch;
  std::set<pid_t> recorded;
  for (auto& [id, node] : pass.nodes) {
    const std::string status = node["Status"];
    if (status != node_status::kCreating && status != node_status::kRecovering) continue;
    if (supervisor_.Running(node)) {
      recorded.insert(RecordedProcess(node).pid);
    } else if (node.contains("LaunchToken") && node["LaunchToken"].is_string()) {
      to_launch.insert(node["LaunchToken"].get<std::string>());
    }
  }
  const std::set<std::string> strays = KillStrays(to_launch, recorded);
  for (auto& [id, node] : pass.nodes) {
    const std::string status = node["Status"];
    const std::string what = "elasticache node=" + id + " address=" + Str(node, "Address");
    if (status == node_status::kAvailable) {
      if (!supervisor_.Running(node)) {
        spdlog::warn("{} pid={} is gone", what, node.value("Pid", 0));
        pass.failed.insert(id);
      }
      continue;
    }
    if (status == node_status::kDeleting) {
      // A replica DecreaseReplicaCount removed: stopped, then forgotten by the others (EnforceTopology).
      if (supervisor_.Stop(node, kPolicy)) {
        pass.deleted_nodes.insert(id);
        pass.Event(id, "cache-cluster", "Cache cluster deleted");
      }
      pass.busy = true;
      continue;
    }
    if (status == node_status::kRecovering) {
      // The failed process must be gone, and the shard's failover finished, before the node is rebuilt empty.
      if (!node.value("Wiped", false)) {
        const ProcessId old = RecordedProcess(node);
        if (old.pid > 0 && ctx_->launcher->GroupAlive(old)) {
          ctx_->launcher->SignalGroup(old, /*force=*/true);
          pass.busy = true;
          continue;
        }
        const std::string dir = NodeDir(*ctx_, pass.rg_id, id);
        std::error_code ec;
        fs::remove(dir + "/nodes.conf", ec);
        fs::remove(dir + "/dump.rdb", ec);
        Supervisor::Clear(node);
        node["Wiped"] = true;
      }
      const Json* ng = ShardOf(pass.rg, id);
      if (ng && ng->contains("FailoverFrom")) {
        pass.busy = true;
        continue;
      }
    }
    if (status == node_status::kCreating || status == node_status::kRecovering) {
      if (strays.count(node.value("LaunchToken", std::string()))) {
        pass.busy = true;  // launched once the stray is gone
        continue;
      }
      if (!supervisor_.Running(node)) {
        Status st = PrepareNodeDir(pass.rg, node);
        if (!st.ok()) {
          spdlog::error("{}: {}", what, st.ToString());
          pass.busy = true;
          continue;
        }
        const bool first = RecordedProcess(node).pid == 0;
        const auto kept = supervisor_.KeepRunning(node, NodeLaunchSpec(pass.rg, node), kPolicy, what);
        if (kept == Supervisor::Kept::kLaunched && status == node_status::kRecovering && first) {
          pass.Event(id, "cache-cluster", "Recovering cache nodes 0001");
        }
      }
      pass.busy = true;
    }
  }
}

// ---- probing -------------------------------------------------------------------------------------------------------

void CacheClusterController::ProbeAll(Pass& pass) {
  const bool cluster = pass.cluster();
  for (auto& [id, node] : pass.nodes) {
    if (pass.failed.count(id) || RecordedProcess(node).pid <= 0 || node["Status"] == node_status::kDeleting) continue;
    Probe probe;
    if (auto c = Connect(pass, node)) {
      auto info = c->Command({"INFO", "replication"});
      if (info.ok()) {
        probe.replication = ParseInfo(*info);
        probe.up = true;
        if (cluster) {
          auto nodes = c->Command({"CLUSTER", "NODES"});
          auto ci = c->Command({"CLUSTER", "INFO"});
          if (nodes.ok() && ci.ok()) {
            probe.nodes = ParseClusterNodes(*nodes);
            if (const ClusterNode* me = Myself(probe)) probe.my_id = me->id;
            probe.cluster_ok = ParseInfo(*ci)["cluster_state"] == "ok";
          } else {
            probe.up = false;
          }
        }
      }
    }
    std::lock_guard lock(mu_);
    const std::string key = pass.rg_id + "/" + id + "/" + std::to_string(node.value("Generation", 0));
    if (probe.up) {
      unreachable_since_.erase(key);
    } else if (node["Status"] == node_status::kAvailable) {
      auto [it, inserted] = unreachable_since_.emplace(key, pass.now);
      const int64_t silent = pass.now - it->second;
      // A stopped process (SIGSTOP, a debugger) will not answer until someone continues it: failed once it has
      // been silent for kHangMillis. One that runs but does not answer may only be starved of CPU on a loaded
      // machine (a 600 ms stall is no failure): failed after kUnresponsiveMillis.
      const char state = ProcessState(RecordedProcess(node).pid);
      const bool stopped = state == 'T' || state == 't';
      if ((stopped && silent >= kHangMillis) || silent >= kUnresponsiveMillis) {
        spdlog::warn("elasticache node={} has not answered for {} ms ({}): failed", id, silent,
                     stopped ? "stopped" : "running");
        pass.failed.insert(id);
        unreachable_since_.erase(it);
      }
    }
    pass.probes[id] = std::move(probe);
  }
}

// ---- failures and failover -----------------------------------------------------------------------------------------

void CacheClusterController::HandleFailures(Pass& pass) {
  if (pass.rg["Status"] == rg_status::kCreating) {
    // A node that dies while the group forms is simply started again (KeepRunning above).
    pass.failed.clear();
    return;
  }
  // TestFailover: the shard's primary is failed on purpose.
  for (auto& ng : pass.rg["NodeGroups"]) {
    if (!ng.value("FailoverRequested", false)) continue;
    // Only once a replica answers: a probe that missed its deadline on a loaded machine must not turn a test
    // failover into a rebuild of the shard's only copy of its data. The request waits for the next pass.
    const bool replica_up = std::any_of(ng["Members"].begin(), ng["Members"].end(), [&](const Json& m) {
      return m != ng["Primary"] && pass.Up(m) && pass.nodes.count(m) &&
             pass.nodes[m]["Status"] == node_status::kAvailable;
    });
    if (!replica_up) continue;
    ng.erase("FailoverRequested");
    pass.failed.insert(ng["Primary"].get<std::string>());
  }
  for (const auto& id : pass.failed) {
    auto it = pass.nodes.find(id);
    if (it == pass.nodes.end() || it->second["Status"] != node_status::kAvailable) continue;
    Json& node = it->second;
    // SIGKILL whatever is left (a hung process must never come back as a second primary).
    const ProcessId proc = RecordedProcess(node);
    if (proc.pid > 0) ctx_->launcher->SignalGroup(proc, /*force=*/true);
    node["Status"] = node_status::kRecovering;
    node["Wiped"] = false;
    node["Generation"] = node.value("Generation", 0) + 1;
    Json* ng = ShardOf(pass.rg, id);
    if (!ng || !IsPrimaryOf(*ng, id)) continue;
    if (!pass.rg["AutomaticFailoverEnabled"].get<bool>()) continue;
    // The replica with the least replication lag: the largest offset among those that answer.
    std::string best;
    int64_t best_offset = -2;
    for (const auto& m : (*ng)["Members"]) {
      const std::string mid = m;
      if (mid == id || pass.failed.count(mid) || !pass.Up(mid)) continue;
      if (pass.nodes[mid]["Status"] != node_status::kAvailable) continue;
      const int64_t off = Offset(pass.probes[mid]);
      if (off > best_offset) {
        best = mid;
        best_offset = off;
      }
    }
    if (best.empty()) {
      spdlog::warn("elasticache group={} shard={}: primary {} failed and no replica can take over", pass.rg_id,
                   Str(*ng, "NodeGroupId"), id);
      continue;
    }
    (*ng)["Primary"] = best;
    (*ng)["FailoverFrom"] = id;
    spdlog::warn("elasticache group={} shard={}: primary {} failed; promoting {} (offset {})", pass.rg_id,
                 Str(*ng, "NodeGroupId"), id, best, best_offset);
  }
  if (!pass.failed.empty() && pass.rg["Status"] == rg_status::kAvailable) pass.rg["Status"] = rg_status::kModifying;
}

// ---- forming a new group -------------------------------------------------------------------------------------------

bool CacheClusterController::FormCluster(Pass& pass) {
  for (const auto& [id, node] : pass.nodes) {
    if (!pass.Up(id)) {
      pass.busy = true;
      return false;
    }
  }
  const bool cluster = pass.cluster();
  bool converged = true;
  if (cluster) {
    const size_t n = pass.nodes.size();
    for (auto& [id, node] : pass.nodes) {
      const Probe& p = pass.probes[id];
      node["RedisNodeId"] = p.my_id;
      const Json* ng = ShardOf(pass.rg, id);
      const ClusterNode* me = Myself(p);
      if (IsPrimaryOf(*ng, id) && me && me->slots != std::vector<std::string>{AsRedisShows((*ng)["Slots"])}) {
        // The slots it lacks (a primary that loaded a snapshot has already claimed the slots of its keys).
        auto slots = ParseSlots((*ng)["Slots"]);
        if (slots.ok()) {
          std::vector<bool> owned(kSlotCount, false);
          for (const auto& text : me->slots) {
            if (auto r = ParseSlots(text); r.ok()) {
              for (int i = r->first; i <= r->last; ++i) owned[i] = true;
            }
          }
          std::vector<std::string> add = {"CLUSTER", "ADDSLOTSRANGE"};
          for (int i = slots->first; i <= slots->last;) {
            if (owned[i]) {
              ++i;
              continue;
            }
            int j = i;
            while (j + 1 <= slots->last && !owned[j + 1]) ++j;
            add.push_back(std::to_string(i));
            add.push_back(std::to_string(j));
            i = j + 1;
          }
          if (add.size() > 2) (void)Run(pass, node, add);
        }
        converged = false;
      }
      if (p.nodes.size() < n) {
        // Meet every node it does not know yet, all at once: the handshakes then run in parallel.
        for (const auto& [oid, other] : pass.nodes) {
          const std::string address = other["Address"].get<std::string>();  // clang 14: no capture of a binding
          const bool known = std::any_of(p.nodes.begin(), p.nodes.end(),
                                         [&](const ClusterNode& cn) { return cn.ip == address; });
          if (oid != id && !known) {
            (void)Run(pass, node, {"CLUSTER", "MEET", other["Address"], std::to_string(other["Port"].get<int>())});
          }
        }
        converged = false;
      }
      // A replica follows its primary as soon as it knows it, so that the relationship spreads by gossip while
      // the primaries sit out Redis's writable delay after start-up.
      const std::string primary_id = pass.probes[(*ng)["Primary"].get<std::string>()].my_id;
      if (!IsPrimaryOf(*ng, id) && me && me->master_id != primary_id) {
        const ClusterNode* prim = FindNode(p, primary_id);
        if (prim && !prim->Has("handshake") && !prim->slots.empty()) {
          (void)Run(pass, node, {"CLUSTER", "REPLICATE", primary_id});
        }
      }
    }
    if (!converged) {
      pass.busy = true;
      return false;
    }
    // Everyone knows everyone: replicas follow their primaries; then every view must agree.
    for (auto& [id, node] : pass.nodes) {
      const Probe& p = pass.probes[id];
      const Json* ng = ShardOf(pass.rg, id);
      const std::string primary_id = pass.nodes[(*ng)["Primary"].get<std::string>()]["RedisNodeId"];
      if (p.nodes.size() < n) converged = false;
      for (const auto& cn : p.nodes) {
        if (cn.Has("handshake") || cn.Has("fail") || cn.Has("noaddr") || cn.link_state != "connected") {
          converged = false;
        }
      }
      if (!p.cluster_ok) converged = false;
      if (IsPrimaryOf(*ng, id)) continue;
      const ClusterNode* me = Myself(p);
      if (me && me->master_id != primary_id) {
        if (FindNode(p, primary_id)) (void)Run(pass, node, {"CLUSTER", "REPLICATE", primary_id});
        converged = false;
      } else if (p.replication.count("master_link_status") == 0 ||
                 p.replication.at("master_link_status") != "up") {
        converged = false;
      }
      // Every view has this replica under its primary and the primary with its slots.
      for (const auto& [oid, other] : pass.probes) {
        const ClusterNode* seen = FindNode(other, p.my_id);
        if (!seen || seen->master_id != primary_id) converged = false;
        const ClusterNode* prim = FindNode(other, primary_id);
        if (!prim || !prim->Has("master") || prim->slots != std::vector<std::string>{AsRedisShows((*ng)["Slots"])}) {
          converged = false;
        }
      }
    }
  } else {
    const Json& ng = pass.rg["NodeGroups"][0];
    const Json& primary = pass.nodes.at(ng["Primary"].get<std::string>());
    for (auto& [id, node] : pass.nodes) {
      const Probe& p = pass.probes[id];
      if (id == ng["Primary"]) {
        if (Role(p) != "master") {
          (void)Run(pass, node, {"REPLICAOF", "NO", "ONE"});
          converged = false;
        }
        continue;
      }
      auto host = p.replication.find("master_host");
      if (host == p.replication.end() || host->second != primary["Address"]) {
        (void)Run(pass, node, {"REPLICAOF", primary["Address"], std::to_string(primary["Port"].get<int>())});
        converged = false;
      } else if (p.replication.count("master_link_status") == 0 ||
                 p.replication.at("master_link_status") != "up") {
        converged = false;
      }
    }
  }
  if (!converged) {
    pass.busy = true;
    return false;
  }
  return true;
}

bool CacheClusterController::EndpointsReady(Pass& pass) {
  // A PING through each endpoint: its node listens, has been given the nodes and has found one healthy.
  for (const auto& [id, ep] : pass.endpoints) {
    auto c = RedisConnection::Connect(ep["Address"], ep["Port"].get<int>(),
                                      pass.access.tls ? kTlsProbeTimeoutMillis : kProbeTimeoutMillis, pass.access);
    if (!c.ok()) return false;
    auto pong = (*c)->Command({"PING"});
    if (!pong.ok() || *pong != "PONG") return false;
  }
  return !pass.endpoints.empty();
}

void CacheClusterController::MarkAvailable(Pass& pass) {
  for (auto& [id, node] : pass.nodes) {
    node["Status"] = node_status::kAvailable;
    if (node.contains("SeedFile")) {
      // Loaded; a node rebuilt later starts empty and syncs from its primary.
      std::error_code ec;
      fs::remove(NodeDir(*ctx_, pass.rg_id, id) + "/dump.rdb", ec);
      node.erase("SeedFile");
      node.erase("SeedSha256");
    }
  }
  pass.rg["Status"] = rg_status::kAvailable;
  for (const auto& [id, node] : pass.nodes) pass.Event(id, "cache-cluster", "Cache cluster created");
  pass.Event(pass.rg_id, "replication-group", "Replication group " + pass.rg_id + " created");
}

// ---- keeping an available group in shape ---------------------------------------------------------------------------

// A promoted primary's claim to its slots wins only with a config epoch above every other claim. CLUSTER FAILOVER
// TAKEOVER raises the node's epoch only when it is not already the largest it knows, so a replica that shares the
// largest epoch with its failed primary (two nodes can end up with the same one while the cluster forms) takes
// over without a higher one, and the other nodes keep the slots on the failed node forever. Seen from the new
// primary: while another node's epoch is not below its own, it is bumped (CLUSTER BUMPEPOCH); when it already
// holds the largest epoch (shared), another answering master is bumped first so that the next bump of the new
// primary goes above every other.
void CacheClusterController::RaiseConfigEpoch(const Pass& pass, const std::string& primary_id) {
  const Probe& pp = pass.probes.at(primary_id);
  const ClusterNode* me = Myself(pp);
  if (!me) return;
  const bool contested = std::any_of(pp.nodes.begin(), pp.nodes.end(), [&](const ClusterNode& n) {
    return n.id != me->id && n.config_epoch >= me->config_epoch;
  });
  if (!contested) return;
  auto reply = Run(pass, pass.nodes.at(primary_id), {"CLUSTER", "BUMPEPOCH"});
  if (!reply.ok() || reply->rfind("STILL", 0) != 0) return;
  for (const auto& [oid, other] : pass.nodes) {
    if (oid == primary_id || !pass.Up(oid) || other["Status"] != node_status::kAvailable) continue;
    if (Role(pass.probes.at(oid)) != "master") continue;
    // Best effort: the next pass looks again (the new primary learns the raised epoch by gossip first, so a few
    // passes may find it still contested; a bump of a node that already holds the largest epoch is a no-op).
    auto bumped = Run(pass, other, {"CLUSTER", "BUMPEPOCH"});
    if (bumped.ok() && bumped->rfind("BUMPED", 0) == 0) {
      spdlog::info("elasticache group={}: {} shares the largest config epoch; raised {}'s first", pass.rg_id,
                   primary_id, oid);
    }
    return;
  }
}

void CacheClusterController::EnforceTopology(Pass& pass) {
  const bool cluster = pass.cluster();
  std::set<std::string> forget;  // node ids of rebuilt nodes' previous lives
  for (auto& ng : pass.rg["NodeGroups"]) {
    const std::string pid = ng["Primary"];
    Json& primary = pass.nodes[pid];
    const Probe& pp = pass.probes[pid];
    // 1. The desired primary must be the primary.
    if (pass.Up(pid) && primary["Status"] == node_status::kAvailable) {
      if (Role(pp) != "master") {
        if (cluster) {
          (void)Run(pass, primary, {"CLUSTER", "FAILOVER", "TAKEOVER"});
        } else {
          (void)Run(pass, primary, {"REPLICAOF", "NO", "ONE"});
        }
        pass.busy = true;
      } else if (ng.contains("FailoverFrom")) {
        // Done once every answering node maps the shard's slots to the new primary: only then is the failed node
        // rebuilt at its address (a fresh node there would answer clients holding the old map with CLUSTERDOWN).
        bool everyone_agrees = true;
        if (cluster) {
          for (const auto& [oid, probe] : pass.probes) {
            if (!probe.up || pass.nodes[oid]["Status"] != node_status::kAvailable) continue;
            const ClusterNode* seen = FindNode(probe, pp.my_id);
            if (!seen || !seen->Has("master") || seen->slots.empty()) everyone_agrees = false;
          }
        }
        if (!everyone_agrees && cluster) RaiseConfigEpoch(pass, pid);
        if (everyone_agrees) {
          const std::string from = ng["FailoverFrom"];
          const std::string msg = "Failover from primary node " + from + " to replica node " + pid + " completed";
          pass.Event(pid, "cache-cluster", msg);
          pass.Event(pass.rg_id, "replication-group", msg);
          ng.erase("FailoverFrom");
        }
        pass.busy = true;
      }
    }
    // 1b. A shard added by resharding: its primary joins as an empty master (MEET), available once it and the
    // group's other nodes see each other.
    if (cluster && primary["Status"] == node_status::kCreating && pass.Up(pid) && !pp.my_id.empty()) {
      bool joined = false;
      for (const auto& [oid, other] : pass.nodes) {
        if (oid == pid || other["Status"] != node_status::kAvailable || !pass.Up(oid)) continue;
        const ClusterNode* seen = FindNode(pass.probes[oid], pp.my_id);
        const ClusterNode* sees = FindNode(pp, other.value("RedisNodeId", ""));
        if (!sees) {
          (void)Run(pass, primary, {"CLUSTER", "MEET", other["Address"], std::to_string(other["Port"].get<int>())});
        } else if (seen && !seen->Has("handshake") && sees->link_state == "connected") {
          joined = true;
        }
        break;
      }
      if (joined) {
        primary["RedisNodeId"] = pp.my_id;
        primary["Status"] = node_status::kAvailable;
        pass.Event(pid, "cache-cluster", "Added cache node 0001 in availability zone " +
                                             Str(primary, "AvailabilityZone"));
      }
      pass.busy = true;
    }
    const std::string primary_id = primary.value("RedisNodeId", "");
    // 2. Replicas follow it; rebuilt nodes join as replicas.
    for (const auto& m : ng["Members"]) {
      const std::string id = m;
      if (id == pid) continue;
      Json& node = pass.nodes[id];
      if (!pass.Up(id) || Role(pp) != "master" || (cluster && primary_id.empty())) continue;
      const Probe& p = pass.probes[id];
      const bool recovering = node["Status"] == node_status::kRecovering;
      const bool added = node["Status"] == node_status::kCreating;  // IncreaseReplicaCount
      if (node["Status"] != node_status::kAvailable && !recovering && !added) continue;
      bool ok = true;
      if (cluster) {
        const ClusterNode* me = Myself(p);
        if (!FindNode(p, primary_id)) {
          (void)Run(pass, node, {"CLUSTER", "MEET", primary["Address"], std::to_string(primary["Port"].get<int>())});
          ok = false;
        } else if (!me || me->master_id != primary_id) {
          (void)Run(pass, node, {"CLUSTER", "REPLICATE", primary_id});
          ok = false;
        }
      } else {
        auto host = p.replication.find("master_host");
        if (host == p.replication.end() || host->second != primary["Address"]) {
          (void)Run(pass, node, {"REPLICAOF", primary["Address"], std::to_string(primary["Port"].get<int>())});
          ok = false;
        }
      }
      auto link = p.replication.find("master_link_status");
      if (link == p.replication.end() || link->second != "up") ok = false;
      if (cluster && ok && (recovering || added)) {
        // Serving through the configuration endpoint means answering CLUSTER SLOTS: not before its own view has
        // every shard's primary with its slots (gossip brings them a moment after it joined).
        for (const auto& other : pass.rg["NodeGroups"]) {
          if (other.value("Slots", std::string()).empty()) continue;  // a new shard, still empty
          const std::string rid = pass.nodes[other["Primary"].get<std::string>()].value("RedisNodeId", "");
          const ClusterNode* seen = rid.empty() ? nullptr : FindNode(p, rid);
          if (!rid.empty() && (!seen || !seen->Has("master") || seen->slots.empty())) ok = false;
        }
      }
      if (!ok) {
        pass.busy = true;
        continue;
      }
      if (added) {
        node["RedisNodeId"] = p.my_id;
        node["Status"] = node_status::kAvailable;
        pass.Event(id, "cache-cluster", "Added cache node 0001 in availability zone " + Str(node, "AvailabilityZone"));
      }
      if (recovering) {
        const std::string old_id = node.value("RedisNodeId", "");
        if (cluster && !old_id.empty() && old_id != p.my_id) forget.insert(old_id);
        node["RedisNodeId"] = p.my_id;
        node["Status"] = node_status::kAvailable;
        node.erase("Wiped");
        pass.Event(id, "cache-cluster", "Finished recovery for cache nodes 0001");
      }
    }
    // A recovering primary (no replica could take over): it comes back empty and takes its slots again.
    if (primary["Status"] == node_status::kRecovering && pass.Up(pid)) {
      const std::string old_id = primary.value("RedisNodeId", "");
      const std::string new_id = pp.my_id;
      if (cluster) {
        if (!old_id.empty() && old_id != new_id) forget.insert(old_id);
        auto slots = ParseSlots(ng["Slots"]);
        const ClusterNode* me = Myself(pp);
        if (slots.ok() && me && me->slots.empty()) {
          (void)Run(pass, primary, {"CLUSTER", "ADDSLOTSRANGE", std::to_string(slots->first), std::to_string(slots->last)});
          (void)Run(pass, primary, {"CLUSTER", "BUMPEPOCH"});
        }
        for (const auto& [oid, other] : pass.nodes) {
          if (oid != pid && pass.Up(oid)) {
            (void)Run(pass, primary, {"CLUSTER", "MEET", other["Address"], std::to_string(other["Port"].get<int>())});
            break;
          }
        }
      }
      primary["RedisNodeId"] = new_id;
      primary["Status"] = node_status::kAvailable;
      primary.erase("Wiped");
      pass.Event(pid, "cache-cluster", "Finished recovery for cache nodes 0001");
      pass.busy = true;
    }
  }
  for (const auto& id : pass.deleted_nodes) {
    const std::string old_id = pass.nodes[id].value("RedisNodeId", "");
    if (cluster && !old_id.empty()) forget.insert(old_id);
  }
  for (const auto& old_id : forget) {
    for (const auto& [id, node] : pass.nodes) {
      if (pass.deleted_nodes.count(id) || node["Status"] == node_status::kDeleting) continue;
      if (pass.Up(id) && FindNode(pass.probes[id], old_id)) (void)Run(pass, node, {"CLUSTER", "FORGET", old_id});
    }
  }
  if (pass.rg["Status"] == rg_status::kModifying) {
    bool settled = std::all_of(pass.nodes.begin(), pass.nodes.end(), [&](const auto& kv) {
      return kv.second["Status"] == node_status::kAvailable || pass.deleted_nodes.count(kv.first);
    });
    for (const auto& ng : pass.rg["NodeGroups"]) {
      if (ng.contains("FailoverFrom") || ng.contains("FailoverRequested")) settled = false;
    }
    if (pass.rg.contains("Resharding")) settled = false;
    for (const auto& [id, node] : pass.nodes) {
      if (!pass.deleted_nodes.count(id) && node.value("AuthVersion", 0) != pass.rg.value("AuthVersion", 0)) {
        settled = false;
      }
    }
    if (settled) pass.rg["Status"] = rg_status::kAvailable;
  }
}

// ---- AUTH token changes -------------------------------------------------------------------------------------------

void CacheClusterController::ApplyAuth(Pass& pass) {
  const int want = pass.rg.value("AuthVersion", 0);
  bool all = true;
  std::vector<std::string> acl = {"ACL", "SETUSER", "default", "on", "resetpass"};
  if (!pass.rg.contains("AuthTokens") || pass.rg["AuthTokens"].empty() || pass.rg.value("AuthPasswordless", false)) {
    acl.push_back("nopass");
  } else {
    for (const auto& t : pass.rg["AuthTokens"]) acl.push_back("#" + TokenHash(t.get<std::string>()));
  }
  const std::string current = CurrentAuthToken(pass.rg);
  const std::string settings = AuthSettings(pass.rg);
  for (auto& [id, node] : pass.nodes) {
    if (node["Status"] == node_status::kDeleting || pass.deleted_nodes.count(id)) continue;
    if (node.value("AuthVersion", 0) == want) continue;
    all = false;
    pass.busy = true;
    if (!pass.Up(id)) continue;  // a node that starts later reads the current settings
    // Accept the new set first; then replicas authenticate to their primaries with the newest token.
    if (!Run(pass, node, acl).ok()) continue;
    if (!Run(pass, node, {"CONFIG", "SET", "masteruser", current.empty() ? "" : "default", "masterauth", current}).ok()) {
      continue;
    }
    const std::string dir = NodeDir(*ctx_, pass.rg_id, id);
    std::error_code ec;
    if (settings.empty()) {
      fs::remove(dir + "/auth.conf", ec);
    } else if (!lb::WriteFileAtomically(dir + "/auth.conf", settings, 0600).ok()) {
      continue;
    }
    node["AuthVersion"] = want;
    spdlog::info("elasticache node={}: AUTH settings version {} applied", id, want);
  }
  if (all && pass.rg.contains("AuthPreviousTokens")) pass.rg.erase("AuthPreviousTokens");
}

// ---- resharding ----------------------------------------------------------------------------------------------------

void CacheClusterController::Reshard(Pass& pass) {
  if (!pass.rg.contains("Resharding") || !pass.cluster()) return;
  pass.busy = true;
  // Every node of every shard in place (new shards joined and synced) before a slot moves.
  for (const auto& ng : pass.rg["NodeGroups"]) {
    if (ng.contains("FailoverFrom") || ng.contains("FailoverRequested")) return;
    for (const auto& m : ng["Members"]) {
      auto it = pass.nodes.find(m);
      if (it == pass.nodes.end() || it->second["Status"] != node_status::kAvailable || !pass.Up(m)) return;
    }
  }
  // Every primary knows every other (a new shard's primary is available once it and one node see each other; a
  // source that does not know its target yet would refuse MIGRATING and keep taking new keys of a moving slot).
  for (const auto& a : pass.rg["NodeGroups"]) {
    const Probe& pa = pass.probes[a["Primary"].get<std::string>()];
    for (const auto& b : pass.rg["NodeGroups"]) {
      const std::string rid = pass.nodes[b["Primary"].get<std::string>()].value("RedisNodeId", "");
      const ClusterNode* seen = FindNode(pa, rid);
      if (rid.empty() || !seen || seen->Has("handshake")) return;
    }
  }
  const Json& target = pass.rg["Resharding"]["Target"];
  std::map<std::string, std::vector<bool>> have, want;
  std::map<std::string, Json*> shard;
  for (auto& ng : pass.rg["NodeGroups"]) {
    const std::string g = ng["NodeGroupId"];
    have[g] = SlotSet(ng.value("Slots", std::string()));
    want[g] = SlotSet(target.value(g, std::string()));
    shard[g] = &ng;
  }
  auto owner = [&](int slot, const std::map<std::string, std::vector<bool>>& sets) -> std::string {
    for (const auto& [g, set] : sets) {
      if (set[slot]) return g;
    }
    return "";
  };
  // Move slots for up to kReshardSliceMillis per pass (the document records what moved).
  const int64_t deadline = ctx_->clock->NowMillis() + kReshardSliceMillis;
  int moved = 0, keys = 0;
  // One connection per primary for the whole pass (a connect per command was most of a slot's cost).
  std::map<std::string, std::unique_ptr<RedisConnection>> conns;
  auto conn = [&](const Json& node) -> RedisConnection* {
    const std::string id = node["CacheClusterId"];
    auto it = conns.find(id);
    if (it != conns.end()) return it->second.get();
    auto c = RedisConnection::Connect(node["Address"], node["Port"].get<int>(), 2000, pass.access);
    if (!c.ok()) return nullptr;
    return conns.emplace(id, std::move(*c)).first->second.get();
  };
  const std::string token = CurrentAuthToken(pass.rg);  // nodes reach each other with it (MIGRATE's AUTH2)
  for (int slot = 0; slot < kSlotCount && ctx_->clock->NowMillis() < deadline; ++slot) {
    const std::string from = owner(slot, have), to = owner(slot, want);
    if (from.empty() || to.empty() || from == to) continue;
    const Json& src = pass.nodes[(*shard[from])["Primary"].get<std::string>()];
    const Json& dst = pass.nodes[(*shard[to])["Primary"].get<std::string>()];
    const std::string src_id = src["RedisNodeId"], dst_id = dst["RedisNodeId"];
    const std::string s = std::to_string(slot);
    RedisConnection* sc = conn(src);
    RedisConnection* dc = conn(dst);
    if (!sc || !dc) break;
    // IMPORTING on the target first, then MIGRATING on the source: clients are sent on with ASK for keys
    // already moved, and no write can land on a node that no longer owns its key.
    (void)dc->Command({"CLUSTER", "SETSLOT", s, "IMPORTING", src_id});
    (void)sc->Command({"CLUSTER", "SETSLOT", s, "MIGRATING", dst_id});
    bool failed = false;
    for (int round = 0; round < 100000; ++round) {
      auto batch = sc->Command({"CLUSTER", "GETKEYSINSLOT", s, "100"});
      if (!batch.ok()) {
        failed = true;
        break;
      }
      if (batch->empty()) break;
      std::vector<std::string> argv = {"MIGRATE", dst["Address"], std::to_string(dst["Port"].get<int>()), "", "0",
                                       "5000", "REPLACE"};
      if (!token.empty()) argv.insert(argv.end(), {"AUTH2", "default", token});
      argv.push_back("KEYS");
      size_t at = 0;
      while (at <= batch->size()) {
        size_t nl = batch->find('\n', at);
        if (nl == std::string::npos) nl = batch->size();
        argv.push_back(batch->substr(at, nl - at));
        ++keys;
        at = nl + 1;
      }
      auto r = sc->Command(argv);
      if (!r.ok()) {
        spdlog::warn("elasticache group={} slot {}: MIGRATE: {}", pass.rg_id, slot, r.status().message());
        failed = true;
        break;
      }
    }
    if (failed) break;  // the next pass resumes this slot (SETSLOT and MIGRATE are safe to repeat)
    // The slot is the target's: target first (it stops answering ASK-only), then the source, then the others.
    if (failed) break;
    (void)dc->Command({"CLUSTER", "SETSLOT", s, "NODE", dst_id});
    (void)sc->Command({"CLUSTER", "SETSLOT", s, "NODE", dst_id});
    for (auto& [g, ng] : shard) {
      if (g == from || g == to) continue;
      if (RedisConnection* oc = conn(pass.nodes[(*ng)["Primary"].get<std::string>()])) {
        (void)oc->Command({"CLUSTER", "SETSLOT", s, "NODE", dst_id});
      }
    }
    have[from][slot] = false;
    have[to][slot] = true;
    ++moved;
  }
  for (auto& [g, ng] : shard) (*ng)["Slots"] = FormatSlotSet(have[g]);
  if (moved > 0) {
    spdlog::info("elasticache group={}: moved {} slots ({} keys) this pass", pass.rg_id, moved, keys);
    pass.rg["Resharding"]["SlotsMoved"] = pass.rg["Resharding"].value("SlotsMoved", 0) + moved;
    pass.rg["Resharding"]["KeysMoved"] = pass.rg["Resharding"].value("KeysMoved", 0) + keys;
    // When the first slot moved: the migration's own time, apart from starting and joining new nodes.
    if (!pass.rg["Resharding"].contains("MovingSince")) pass.rg["Resharding"]["MovingSince"] = pass.now;
  }
  if (have != want) return;
  // Done: shards left with no slot go (their nodes are stopped and forgotten as no shard's).
  Json kept = Json::array();
  for (auto& ng : pass.rg["NodeGroups"]) {
    if (!ng.value("Slots", std::string()).empty()) kept.push_back(ng);
  }
  const int64_t took = pass.now - pass.rg["Resharding"].value("StartedAt", pass.now);
  pass.Event(pass.rg_id, "replication-group",
             "Completed modifying number of node groups to " + std::to_string(kept.size()) +
                 " for replication group " + pass.rg_id + " (" +
                 std::to_string(pass.rg["Resharding"].value("SlotsMoved", 0)) + " slots, " +
                 std::to_string(pass.rg["Resharding"].value("KeysMoved", 0)) + " keys moved in " +
                 std::to_string(took) + " ms; slots moving for " +
                 std::to_string(pass.now - pass.rg["Resharding"].value("MovingSince", pass.now)) + " ms)");
  pass.rg["NodeGroups"] = kept;
  pass.rg.erase("Resharding");
}

// ---- endpoints -----------------------------------------------------------------------------------------------------

void CacheClusterController::SyncEndpoints(Pass& pass) {
  const bool cluster = pass.cluster();
  const Json& rg = pass.rg;
  const int port = rg["Port"].get<int>();
  struct Want {
    std::string role;
    bool reader;
    std::vector<std::string> members;
  };
  std::vector<Want> wants;
  const bool creating = rg["Status"] == rg_status::kCreating;
  auto serving = [&](const std::string& id) {
    if (!pass.nodes.count(id) || pass.failed.count(id)) return false;
    return pass.nodes[id]["Status"] == node_status::kAvailable || (creating && pass.Up(id));
  };
  if (cluster) {
    Want w{"configuration", false, {}};
    for (const auto& [id, node] : pass.nodes) {
      if (serving(id)) w.members.push_back(id);
    }
    wants.push_back(w);
  } else {
    const Json& ng = rg["NodeGroups"][0];
    Want primary{"primary", false, {ng["Primary"].get<std::string>()}};
    Want reader{"reader", true, {}};
    for (const auto& m : ng["Members"]) {
      if (m != ng["Primary"] && serving(m)) reader.members.push_back(m);
    }
    if (reader.members.empty()) reader.members = primary.members;
    wants.push_back(primary);
    wants.push_back(reader);
  }
  for (const auto& w : wants) {
    const std::string id = pass.rg_id + "/" + w.role;
    auto it = pass.endpoints.find(id);
    if (it == pass.endpoints.end()) {
      it = pass.endpoints
               .emplace(id, Json{{"ReplicationGroupId", pass.rg_id},
                                 {"Role", w.role},
                                 {"Address", EndpointAddress(*ctx_, rg["AddressIndex"], w.reader)},
                                 {"Port", port},
                                 {"ConfigVersion", 0},
                                 {"Pid", 0},
                                 {"PidStartTime", 0},
                                 {"LaunchToken", NewLaunchToken()}})
               .first;
    }
    Json& ep = it->second;
    const std::string dir = EndpointDir(*ctx_, pass.rg_id, w.role);
    lb::NodeConfig c;
    c.load_balancer_name = pass.rg_id + "-" + w.role;
    c.availability_zone = ctx_->catalog->availability_zones()[0];
    c.addresses = {ep["Address"]};
    c.listeners = {{"TCP", port, "TCP", port}};
    for (const auto& m : w.members) {
      const Json& node = pass.nodes[m];
      c.backends.push_back({m, node["Address"], node["AvailabilityZone"], false});
    }
    c.health_check = {"TCP:" + std::to_string(port), 1, 1, 1, 2};
    c.idle_timeout_seconds = 3600;
    c.status_path = dir + "/status.json";
    c.threads = 1;
    // Rewrite config.json only when something but the version changed.
    std::optional<lb::NodeConfig> last;
    if (auto text = lb::ReadWholeFile(dir + "/config.json"); text.ok()) {
      if (auto parsed = lb::ParseNodeConfig(*text); parsed.ok()) last = *parsed;
    }
    bool changed = true;
    if (last) {
      c.version = last->version;
      changed = lb::SerializeNodeConfig(c) != lb::SerializeNodeConfig(*last);
    }
    if (changed) {
      c.version = std::max<uint64_t>(ep["ConfigVersion"].get<uint64_t>(), last ? last->version : 0) + 1;
      std::error_code ec;
      fs::create_directories(dir, ec);
      if (!lb::WriteFileAtomically(dir + "/config.json", lb::SerializeNodeConfig(c)).ok()) {
        pass.busy = true;
        continue;
      }
      ep["ConfigVersion"] = c.version;
    }
    LaunchSpec spec;
    spec.argv = {ctx_->self_exe, "lb", "--config", dir + "/config.json"};
    spec.env = {{"PATH", "/usr/local/bin:/usr/bin:/bin"}, {"HOME", dir}, {"LANG", "C.UTF-8"}};
    spec.working_dir = dir;
    spec.log_path = dir + "/node.log";
    if (supervisor_.KeepRunning(ep, spec, kPolicy, "elasticache endpoint=" + id) == Supervisor::Kept::kRunning &&
        changed) {
      supervisor_.Signal(ep, SIGHUP);
    }
  }
}

// ---- snapshots -----------------------------------------------------------------------------------------------------

namespace {

int64_t InfoInt(const std::map<std::string, std::string>& info, const std::string& key, int64_t fallback) {
  auto it = info.find(key);
  if (it == info.end()) return fallback;
  try {
    return std::stoll(it->second);
  } catch (const std::exception&) {
    return fallback;
  }
}

}  // namespace

bool CacheClusterController::TakeSnapshots(Pass& pass) {
  bool any = false;
  for (auto& [name, snap] : pass.snapshots) {
    if (Str(snap, "SnapshotStatus") != snapshot_status::kCreating) continue;
    any = true;
    bool all_done = true;
    for (auto& ns : snap["NodeSnapshots"]) {
      if (ns.contains("Sha256")) continue;
      all_done = false;
      const Json* ng = nullptr;
      for (const auto& g : pass.rg["NodeGroups"]) {
        if (g["NodeGroupId"] == ns["NodeGroupId"]) ng = &g;
      }
      if (!ng) {
        snap["SnapshotStatus"] = snapshot_status::kFailed;
        break;
      }
      // From a replica when one is available (the primary keeps serving undisturbed), else the primary.
      std::string from = Str(ns, "CacheClusterId");
      auto usable = [&](const std::string& id) {
        auto it = pass.nodes.find(id);
        return it != pass.nodes.end() && it->second["Status"] == node_status::kAvailable &&
               RecordedProcess(it->second).pid > 0;
      };
      if (from.empty() || !usable(from)) {
        from.clear();
        for (const auto& m : (*ng)["Members"]) {
          if (m != (*ng)["Primary"] && usable(m)) {
            from = m;
            break;
          }
        }
        if (from.empty() && usable((*ng)["Primary"])) from = (*ng)["Primary"];
        ns["CacheClusterId"] = from;
        ns.erase("BgsaveFrom");
        if (from.empty()) continue;  // no node to take it from yet
      }
      const Json& node = pass.nodes[from];
      auto c = RedisConnection::Connect(node["Address"], node["Port"].get<int>(), 500, pass.access);
      if (!c.ok()) continue;
      auto info_text = (*c)->Command({"INFO", "persistence"});
      if (!info_text.ok()) continue;
      const auto info = ParseInfo(*info_text);
      const int64_t saves = InfoInt(info, "rdb_saves", -1);
      if (!ns.contains("BgsaveFrom")) {
        auto r = (*c)->Command({"BGSAVE", "SCHEDULE"});
        if (r.ok()) {
          ns["BgsaveFrom"] = saves;
          ns["StartedAt"] = pass.now;
        }
        continue;
      }
      if (InfoInt(info, "rdb_bgsave_in_progress", 1) != 0 || saves <= ns["BgsaveFrom"].get<int64_t>()) continue;
      if (info.count("rdb_last_bgsave_status") && info.at("rdb_last_bgsave_status") != "ok") {
        ns.erase("BgsaveFrom");  // ask again
        continue;
      }
      const std::string dump = NodeDir(*ctx_, pass.rg_id, from) + "/dump.rdb";
      const std::string dir = SnapshotDir(*ctx_, name);
      const std::string file = Str(ns, "NodeGroupId") + ".rdb";
      std::error_code ec;
      fs::create_directories(dir, ec);
      ::chmod(dir.c_str(), 0700);
      fs::copy_file(dump, dir + "/" + file + ".part", fs::copy_options::overwrite_existing, ec);
      if (ec) {
        spdlog::warn("elasticache snapshot={} shard={}: cannot copy {}: {}", name, Str(ns, "NodeGroupId"), dump,
                     ec.message());
        ns.erase("BgsaveFrom");
        continue;
      }
      fs::remove(dump, ec);  // a node restarted later must not load it
      auto sum = FileSha256(dir + "/" + file + ".part");
      if (!sum.ok()) continue;
      fs::rename(dir + "/" + file + ".part", dir + "/" + file, ec);
      if (ec) continue;
      ns["File"] = file;
      ns["Sha256"] = *sum;
      ns["Bytes"] = static_cast<int64_t>(fs::file_size(dir + "/" + file, ec));
      ns["SnapshotCreateTime"] = pass.now;
      ns["TookMillis"] = pass.now - ns.value("StartedAt", pass.now);
      ns.erase("BgsaveFrom");
      spdlog::info("elasticache snapshot={} shard={}: {} bytes from {} in {} ms", name, Str(ns, "NodeGroupId"),
                   ns["Bytes"].get<int64_t>(), from, ns["TookMillis"].get<int64_t>());
    }
    if (snap["SnapshotStatus"] == snapshot_status::kFailed) {
      pass.Event(pass.rg_id, "replication-group", "Snapshot failed for snapshot with ID '" + name + "'");
      continue;
    }
    if (all_done || std::all_of(snap["NodeSnapshots"].begin(), snap["NodeSnapshots"].end(),
                                [](const Json& ns) { return ns.contains("Sha256"); })) {
      snap["SnapshotStatus"] = snapshot_status::kAvailable;
      pass.Event(pass.rg_id, "replication-group",
                 "Snapshot succeeded for snapshot with ID '" + name + "' of replication group with ID '" +
                     pass.rg_id + "'");
    }
  }
  const bool still = std::any_of(pass.snapshots.begin(), pass.snapshots.end(), [](const auto& kv) {
    return kv.second["SnapshotStatus"] == snapshot_status::kCreating;
  });
  if (!still && pass.rg["Status"] == rg_status::kSnapshotting) {
    // Back to available; a node rebuilt meanwhile makes it modifying until it is (EnforceTopology settles it).
    const bool settled = std::all_of(pass.nodes.begin(), pass.nodes.end(), [](const auto& kv) {
      return kv.second["Status"] == node_status::kAvailable;
    });
    pass.rg["Status"] = settled ? rg_status::kAvailable : rg_status::kModifying;
  }
  return any && still;
}

void CacheClusterController::ScheduleAutomaticSnapshot(Pass& pass) {
  const int64_t retention = pass.rg.value("SnapshotRetentionLimit", int64_t{0});
  constexpr int64_t kDay = 24LL * 3600 * 1000;
  // Retention: automatic snapshots older than the limit (in days) go.
  for (auto& [name, snap] : pass.snapshots) {
    if (Str(snap, "SnapshotSource") != "automated" || snap["SnapshotStatus"] == snapshot_status::kCreating) continue;
    if (retention == 0 || snap.value("CreateTime", int64_t{0}) < pass.now - retention * kDay) {
      std::error_code ec;
      fs::remove_all(SnapshotDir(*ctx_, name), ec);
      pass.deleted_snapshots.insert(name);
    }
  }
  if (retention == 0 || pass.rg["Status"] != rg_status::kAvailable) return;
  auto window = ParseSnapshotWindow(pass.rg.value("SnapshotWindow", std::string("05:00-06:00")));
  if (!window.ok()) return;
  auto opened = WindowOpenedAt(*window, pass.now);
  if (!opened || pass.rg.value("LastAutomaticSnapshotAt", int64_t{0}) >= *opened) return;
  const std::string name = AutomaticSnapshotName(pass.rg_id, pass.now);
  if (pass.snapshots.count(name)) return;
  std::map<std::string, std::string> az_of;
  for (const auto& [id, node] : pass.nodes) az_of[id] = Str(node, "AvailabilityZone");
  pass.snapshots[name] =
      NewSnapshotDocument(pass.rg, az_of, name, "automated", pass.now, ctx_->Arn("elasticache", "snapshot:" + name));
  pass.rg["LastAutomaticSnapshotAt"] = pass.now;
  pass.rg["Status"] = rg_status::kSnapshotting;
}

// ---- deletion ------------------------------------------------------------------------------------------------------

ReconcileResult CacheClusterController::TearDown(Pass& pass) {
  for (auto* docs : {&pass.nodes, &pass.endpoints}) {
    for (auto& [id, doc] : *docs) {
      if (doc.contains("Status")) doc["Status"] = node_status::kDeleting;
      if (supervisor_.Stop(doc, kPolicy)) {
        (docs == &pass.nodes ? pass.deleted_nodes : pass.deleted_endpoints).insert(id);
      }
    }
  }
  bool done = pass.deleted_nodes.size() == pass.nodes.size() &&
              pass.deleted_endpoints.size() == pass.endpoints.size();
  if (done) {
    // The documents are the last trace of their launch tokens: no process may carry one when they go.
    std::set<std::string> tokens;
    for (const auto* docs : {&pass.nodes, &pass.endpoints}) {
      for (const auto& [id, doc] : *docs) {
        if (doc.contains("LaunchToken") && doc["LaunchToken"].is_string()) tokens.insert(doc["LaunchToken"]);
      }
    }
    if (!KillStrays(tokens, {}).empty()) done = false;
  }
  if (done) {
    std::error_code ec;
    fs::remove_all(GroupDir(*ctx_, pass.rg_id), ec);
    // Automatic snapshots go with their group (manual ones stay), as ElastiCache does.
    for (const auto& [name, snap] : pass.snapshots) {
      if (Str(snap, "SnapshotSource") == "manual" && Str(snap, "SnapshotStatus") == snapshot_status::kAvailable) {
        continue;
      }
      fs::remove_all(SnapshotDir(*ctx_, name), ec);
      pass.deleted_snapshots.insert(name);
    }
    if (!pass.rg.is_null()) {
      pass.delete_group = true;
      pass.Event(pass.rg_id, "replication-group", "Replication group " + pass.rg_id + " deleted");
    }
  }
  Status st = Commit(pass);
  if (!st.ok() && !IsConflict(st)) return st;
  if (!done || IsConflict(st)) return ReconcileResult::After(std::chrono::milliseconds(100));
  return ReconcileResult::Done();
}

// ---- the pass ------------------------------------------------------------------------------------------------------

Status CacheClusterController::Commit(Pass& pass) {
  std::vector<StoreWrite> writes;
  for (const auto& [id, doc] : pass.nodes) {
    if (pass.deleted_nodes.count(id)) {
      writes.push_back({kind::kCacheNode, id, std::nullopt, std::nullopt});
    } else if (!pass.nodes_before.count(id) || pass.nodes_before[id] != doc) {
      writes.push_back({kind::kCacheNode, id, doc, std::nullopt});
    }
  }
  for (const auto& [id, doc] : pass.endpoints) {
    if (pass.deleted_endpoints.count(id)) {
      writes.push_back({kind::kCacheEndpoint, id, std::nullopt, std::nullopt});
    } else if (!pass.endpoints_before.count(id) || pass.endpoints_before[id] != doc) {
      writes.push_back({kind::kCacheEndpoint, id, doc, std::nullopt});
    }
  }
  for (const auto& [name, doc] : pass.snapshots) {
    if (pass.deleted_snapshots.count(name)) {
      writes.push_back({kind::kCacheSnapshot, name, std::nullopt, std::nullopt});
    } else if (!pass.snapshots_before.count(name) || pass.snapshots_before[name] != doc) {
      writes.push_back({kind::kCacheSnapshot, name, doc, std::nullopt});
    }
  }
  const bool rg_changed = pass.read.doc && (pass.delete_group || *pass.read.doc != pass.rg);
  if (rg_changed) {
    writes.push_back({kind::kCacheReplicationGroup, pass.rg_id,
                      pass.delete_group ? std::nullopt : std::optional<Json>(pass.rg), pass.read.revision});
  }
  writes.insert(writes.end(), pass.events.begin(), pass.events.end());
  if (writes.empty()) return Status::Ok();
  Status st;
  {
    std::lock_guard lock(*ctx_->mu);
    st = ctx_->store->Commit(writes);
  }
  if (IsConflict(st)) {
    // The API changed the group meanwhile: keep the node and endpoint records (they describe processes this
    // pass started), redo the group's part next pass.
    std::erase_if(writes, [](const StoreWrite& w) { return w.expect_revision.has_value(); });
    std::erase_if(writes, [](const StoreWrite& w) { return w.kind == kind::kCacheEvent; });
    std::lock_guard lock(*ctx_->mu);
    if (!writes.empty()) AP_RETURN_IF_ERROR(ctx_->store->Commit(writes));
    return st;
  }
  AP_RETURN_IF_ERROR(st);
  pass.nodes_before = pass.nodes;
  pass.endpoints_before = pass.endpoints;
  for (const auto& name : pass.deleted_snapshots) pass.snapshots.erase(name);
  pass.deleted_snapshots.clear();
  pass.snapshots_before = pass.snapshots;
  pass.events.clear();
  pass.read = ctx_->store->GetVersioned(kind::kCacheReplicationGroup, pass.rg_id);
  if (pass.read.doc) pass.rg = *pass.read.doc;
  return Status::Ok();
}

ReconcileResult CacheClusterController::Reconcile(const std::string& rg_id) {
  Pass pass;
  pass.rg_id = rg_id;
  pass.now = ctx_->clock->NowMillis();
  {
    // One consistent view: the API writes a group and its new node documents in one commit (a group read
    // before it with nodes read after would see the new nodes as no shard's, and delete them).
    std::lock_guard lock(*ctx_->mu);
    pass.read = ctx_->store->GetVersioned(kind::kCacheReplicationGroup, rg_id);
    if (pass.read.doc) pass.rg = *pass.read.doc;
    for (const auto& doc : ctx_->store->List(kind::kCacheNode)) {
      if (Str(*doc, "ReplicationGroupId") == rg_id) pass.nodes[Str(*doc, "CacheClusterId")] = *doc;
    }
    for (const auto& id : ctx_->store->Ids(kind::kCacheEndpoint)) {
      if (id.compare(0, rg_id.size() + 1, rg_id + "/") != 0) continue;
      if (auto doc = ctx_->store->Get(kind::kCacheEndpoint, id)) pass.endpoints[id] = *doc;
    }
    for (const auto& doc : ctx_->store->List(kind::kCacheSnapshot)) {
      if (Str(*doc, "ReplicationGroupId") == rg_id) pass.snapshots[Str(*doc, "SnapshotName")] = *doc;
    }
  }
  pass.snapshots_before = pass.snapshots;
  pass.nodes_before = pass.nodes;
  pass.endpoints_before = pass.endpoints;
  if (!pass.rg.is_null()) {
    auto access = NodeAccess(*ctx_, pass.rg);
    if (!access.ok()) {
      spdlog::error("elasticache group={}: {}", rg_id, access.status().ToString());
      return ReconcileResult::After(std::chrono::milliseconds(1000));
    }
    pass.access = std::move(*access);
  }

  if (!pass.rg.is_null() && pass.rg["Status"] == rg_status::kDeleting && TakeSnapshots(pass)) {
    // A final snapshot is taken before the nodes stop.
    Status st = Commit(pass);
    if (!st.ok() && !IsConflict(st)) return st;
    return ReconcileResult::After(std::chrono::milliseconds(50));
  }
  if (pass.rg.is_null() || pass.rg["Status"] == rg_status::kDeleting) return TearDown(pass);
  // A node no shard lists any more (DecreaseReplicaCount) is removed.
  for (auto& [id, node] : pass.nodes) {
    if (!ShardOf(pass.rg, id)) node["Status"] = node_status::kDeleting;
  }

  RunProcesses(pass);
  ProbeAll(pass);
  HandleFailures(pass);
  if (!pass.failed.empty()) {
    // Recorded before anything is done about it (the kill is already sent; a kill is safe to repeat).
    Status st = Commit(pass);
    if (!st.ok()) return IsConflict(st) ? ReconcileResult::After(std::chrono::milliseconds(20)) : st;
    pass.failed.clear();
    return ReconcileResult::After(std::chrono::milliseconds(0));
  }
  if (pass.rg["Status"] == rg_status::kCreating) {
    const bool formed = FormCluster(pass);
    SyncEndpoints(pass);
    // Available once the endpoint serves too (a PING through it is answered).
    if (formed && EndpointsReady(pass)) {
      MarkAvailable(pass);
      SyncEndpoints(pass);
    } else {
      pass.busy = true;
    }
  } else {
    ApplyAuth(pass);
    EnforceTopology(pass);
    Reshard(pass);
    SyncEndpoints(pass);
    ScheduleAutomaticSnapshot(pass);
    if (TakeSnapshots(pass)) pass.busy = true;
  }
  Status st = Commit(pass);
  if (!st.ok() && !IsConflict(st)) return st;
  if (pass.busy || IsConflict(st)) return ReconcileResult::After(std::chrono::milliseconds(50));
  return ReconcileResult::After(std::chrono::milliseconds(kProbeEveryMillis));
}

}  // namespace autopipe

#include "elb/lb_controller.h"

#include <signal.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <set>

#include "common/log.h"
#include "ec2/instances.h"
#include "elb/load_balancers.h"
#include "process/recorded_process.h"

namespace autopipe {
namespace {

namespace fs = std::filesystem;

void SetState(Json& node, const char* state, int64_t now) {
  node["State"] = state;
  node["StateChangedAt"] = now;
}

std::string NodeId(const std::string& name, const std::string& az) { return name + "/" + az; }

// A member of nested objects, or null when any level is missing.
const Json& At(const Json& doc, std::initializer_list<const char*> path) {
  static const Json kNull;
  const Json* cur = &doc;
  for (const char* key : path) {
    if (!cur->is_object()) return kNull;
    auto it = cur->find(key);
    if (it == cur->end()) return kNull;
    cur = &*it;
  }
  return *cur;
}

// Numbers may arrive as JSON numbers or as the Query protocol's strings.
int64_t Int64Or(const Json& v, int64_t fallback) {
  if (v.is_number()) return v.get<int64_t>();
  if (v.is_string()) {
    try {
      return std::stoll(v.get<std::string>());
    } catch (const std::exception&) {
    }
  }
  return fallback;
}

int IntOr(const Json& v, int fallback) { return static_cast<int>(Int64Or(v, fallback)); }

bool BoolOr(const Json& v, bool fallback) {
  if (v.is_boolean()) return v.get<bool>();
  if (v.is_string()) return v.get<std::string>() == "true";
  return fallback;
}

std::string StringOr(const Json& v, const std::string& fallback) {
  return v.is_string() ? v.get<std::string>() : fallback;
}

std::vector<std::string> AvailabilityZonesOf(const Json& lb) {
  std::vector<std::string> zones;
  for (const auto& az : lb["AvailabilityZones"]) zones.push_back(az);
  return zones;
}

// The registered (draining = false) and deregistering (draining = true) instances a node in `node_az` routes
// to: running, in an enabled AZ, and in the node's own AZ unless cross-zone load balancing is on.
std::vector<lb::BackendConfig> BackendsFor(const RegionContext& ctx, const Json& lb, const std::string& node_az) {
  const bool cross_zone = BoolOr(At(lb, {"Attributes", "CrossZoneLoadBalancing", "Enabled"}), false);
  const std::vector<std::string> zones = AvailabilityZonesOf(lb);
  std::vector<lb::BackendConfig> backends;
  auto add = [&](const std::string& id, bool draining) {
    auto inst = ctx.store->Get(kind::kInstance, id);
    if (!inst || (*inst)["State"] != instance_state::kRunning) return;
    const std::string az = (*inst)["AvailabilityZone"];
    if (std::find(zones.begin(), zones.end(), az) == zones.end()) return;
    if (!cross_zone && az != node_az) return;
    backends.push_back({id, (*inst)["PrivateIpAddress"], az, draining});
  };
  std::set<std::string> registered;
  for (const auto& id : lb["Instances"]) {
    registered.insert(id);
    add(id, false);
  }
  if (lb.contains("Deregistering")) {
    for (const auto& [id, entry] : lb["Deregistering"].items()) {
      if (!registered.count(id)) add(id, true);
    }
  }
  return backends;
}

// The node's last report when it is fresh and reflects at least the node's current config.
std::optional<lb::NodeStatus> CurrentReport(const RegionContext& ctx, const Json& node, int64_t now) {
  auto status = elb::ReadNodeStatus(ctx, node["LoadBalancerName"], node["AvailabilityZone"]);
  if (!status || now - status->updated_at_millis > lb::kStatusStaleMillis) return std::nullopt;
  if (status->config_version < node["ConfigVersion"].get<uint64_t>()) return std::nullopt;
  return status;
}

bool HasRequestsInFlight(const lb::NodeStatus& status, const std::string& instance_id) {
  for (const auto& b : status.backends) {
    if (b.id == instance_id && b.active_requests > 0) return true;
  }
  return false;
}

}  // namespace

Json LoadBalancerController::NewNode(const std::string& name, const std::string& az, int64_t now) {
  return {{"LoadBalancerName", name},
          {"AvailabilityZone", az},
          {"VipAddress", ""},
          {"Address", ""},
          {"Pid", 0},
          {"PidStartTime", 0},
          {"LaunchToken", NewLaunchToken()},  // committed with the node before its first launch
          {"ConfigVersion", 0},
          {"State", lb_node_state::kRunning},
          {"StateChangedAt", now}};
}

std::vector<std::string> LoadBalancerController::Keys() {
  std::set<std::string> names;
  for (const auto& name : ctx_->store->Ids(kind::kLoadBalancer)) names.insert(name);
  for (const auto& id : ctx_->store->Ids(kind::kLoadBalancerNode)) names.insert(id.substr(0, id.find('/')));
  return {names.begin(), names.end()};
}

std::string LoadBalancerController::NodeDirOf(const Json& node) const {
  return elb::NodeDir(*ctx_, node["LoadBalancerName"], node["AvailabilityZone"]);
}

lb::NodeConfig LoadBalancerController::BuildConfig(const Json& lb, const Json& node) const {
  const std::string dir = NodeDirOf(node);
  lb::NodeConfig c;
  c.load_balancer_name = lb["LoadBalancerName"];
  c.availability_zone = node["AvailabilityZone"];
  c.addresses = {node["VipAddress"], node["Address"]};
  for (const auto& l : lb["Listeners"]) {
    lb::ListenerConfig listener;
    listener.protocol = StringOr(l["Protocol"], listener.protocol);
    listener.port = IntOr(l["LoadBalancerPort"], listener.port);
    listener.instance_protocol = StringOr(l["InstanceProtocol"], listener.protocol);
    listener.instance_port = IntOr(l["InstancePort"], listener.instance_port);
    c.listeners.push_back(listener);
  }
  c.backends = BackendsFor(*ctx_, lb, c.availability_zone);

  const Json& hc = At(lb, {"HealthCheck"});
  c.health_check.target = StringOr(At(hc, {"Target"}), c.health_check.target);
  c.health_check.interval_seconds = IntOr(At(hc, {"Interval"}), c.health_check.interval_seconds);
  c.health_check.timeout_seconds = IntOr(At(hc, {"Timeout"}), c.health_check.timeout_seconds);
  c.health_check.healthy_threshold = IntOr(At(hc, {"HealthyThreshold"}), c.health_check.healthy_threshold);
  c.health_check.unhealthy_threshold = IntOr(At(hc, {"UnhealthyThreshold"}), c.health_check.unhealthy_threshold);

  const Json& attrs = At(lb, {"Attributes"});
  c.idle_timeout_seconds = IntOr(At(attrs, {"ConnectionSettings", "IdleTimeout"}), c.idle_timeout_seconds);
  c.draining_enabled = BoolOr(At(attrs, {"ConnectionDraining", "Enabled"}), false);
  c.draining_timeout_seconds = IntOr(At(attrs, {"ConnectionDraining", "Timeout"}), c.draining_timeout_seconds);
  c.access_log_path = BoolOr(At(attrs, {"AccessLog", "Enabled"}), false) ? dir + "/access.log" : "";
  c.status_path = dir + "/status.json";
  c.threads = 0;
  return c;
}

Result<bool> LoadBalancerController::UpdateConfigFile(lb::NodeConfig config, Json& node) {
  const std::string dir = NodeDirOf(node);
  const std::string path = dir + "/config.json";
  const uint64_t doc_version = node["ConfigVersion"].get<uint64_t>();
  std::optional<lb::NodeConfig> last;
  if (auto text = lb::ReadWholeFile(path); text.ok()) {
    if (auto parsed = lb::ParseNodeConfig(*text); parsed.ok()) last = *parsed;
  }
  if (last && last->version >= doc_version) {
    config.version = last->version;
    if (lb::SerializeNodeConfig(config) == lb::SerializeNodeConfig(*last)) {
      node["ConfigVersion"] = last->version;  // the file is what the node was given
      return false;
    }
  }
  config.version = std::max(doc_version, last ? last->version : 0) + 1;
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return Status::Internal("cannot create " + dir + ": " + ec.message());
  AP_RETURN_IF_ERROR(lb::WriteFileAtomically(path, lb::SerializeNodeConfig(config)));
  node["ConfigVersion"] = config.version;
  return true;
}

LaunchSpec LoadBalancerController::NodeLaunchSpec(const Json& node) const {
  const std::string dir = NodeDirOf(node);
  LaunchSpec spec;
  spec.argv = {ctx_->self_exe, "lb", "--config", dir + "/config.json"};
  spec.env = {
      {"PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
      {"HOME", dir},
      {"LANG", "C.UTF-8"},
      {"AUTOPIPE_LOAD_BALANCER_NAME", node["LoadBalancerName"]},
      {"AUTOPIPE_AVAILABILITY_ZONE", node["AvailabilityZone"]},
      {"AUTOPIPE_REGION", ctx_->catalog->region()},
  };
  spec.working_dir = dir;
  spec.log_path = dir + "/node.log";
  return spec;
}

void LoadBalancerController::EnsureProcess(Json& node, bool config_changed) {
  const std::string what = "load_balancer=" + node["LoadBalancerName"].get<std::string>() +
                           " az=" + node["AvailabilityZone"].get<std::string>() +
                           " address=" + node["Address"].get<std::string>() + " node";
  // A node that was already running reloads a changed config; a new one reads it at start.
  if (supervisor_.KeepRunning(node, NodeLaunchSpec(node), kPolicy, what) == Supervisor::Kept::kRunning &&
      config_changed) {
    supervisor_.Signal(node, SIGHUP);
  }
}

Status LoadBalancerController::SyncNode(const Json& lb, Json& node) {
  const int64_t now = ctx_->clock->NowMillis();
  if (node["State"] == lb_node_state::kStopping) {
    // Its AZ was enabled again (or its load balancer created again) while it stopped: let the old process go
    // before starting a new one.
    if (!supervisor_.Stop(node, kPolicy)) return Status::Ok();
    SetState(node, lb_node_state::kRunning, now);
    Supervisor::Clear(node);
  }
  // A load balancer created again under the same name may hold another address.
  node["VipAddress"] = lb["Address"];
  node["Address"] = ctx_->catalog->address_block() + "." +
                    std::to_string(201 + ctx_->catalog->AzIndex(node["AvailabilityZone"])) + "." +
                    std::to_string(lb["AddressIndex"].get<int>());
  auto changed = UpdateConfigFile(BuildConfig(lb, node), node);
  if (!changed.ok()) return changed.status();
  EnsureProcess(node, *changed);
  return Status::Ok();
}

bool LoadBalancerController::FinishDraining(Json& lb, const std::vector<Json>& nodes) {
  if (!lb.contains("Deregistering") || lb["Deregistering"].empty()) return false;
  const int64_t now = ctx_->clock->NowMillis();
  std::vector<lb::NodeStatus> reports;
  bool all_reported = true;
  for (const auto& node : nodes) {
    auto report = CurrentReport(*ctx_, node, now);
    if (!report) {
      all_reported = false;
      break;
    }
    reports.push_back(std::move(*report));
  }

  std::vector<std::string> finished;
  for (const auto& item : lb["Deregistering"].items()) {
    const std::string id = item.key();
    auto inst = ctx_->store->Get(kind::kInstance, id);
    const bool running = inst && (*inst)["State"] == instance_state::kRunning;
    const bool timed_out = now >= Int64Or(At(item.value(), {"Until"}), 0);
    const bool idle = all_reported && std::none_of(reports.begin(), reports.end(), [&](const lb::NodeStatus& s) {
                        return HasRequestsInFlight(s, id);
                      });
    if (!running || timed_out || idle) finished.push_back(id);
  }
  for (const auto& id : finished) {
    lb["Deregistering"].erase(id);
    spdlog::info("load_balancer={} instance={} draining finished", lb["LoadBalancerName"].get<std::string>(), id);
  }
  if (finished.empty()) return false;
  lb["ConfigVersion"] = lb.value("ConfigVersion", uint64_t{0}) + 1;
  return true;
}

bool LoadBalancerController::RetireNode(Json& node) {
  if (node["State"] != lb_node_state::kStopping) {
    SetState(node, lb_node_state::kStopping, ctx_->clock->NowMillis());
    (void)supervisor_.Stop(node, kPolicy);  // SIGTERM now; whether it is gone is looked at next time
    spdlog::info("load_balancer={} az={} node stopping", node["LoadBalancerName"].get<std::string>(),
                 node["AvailabilityZone"].get<std::string>());
    return false;
  }
  if (!supervisor_.Stop(node, kPolicy)) return false;
  std::error_code ec;
  fs::remove_all(NodeDirOf(node), ec);
  return true;
}

ReconcileResult LoadBalancerController::Reconcile(const std::string& name) {
  // No lock while it reads status files, writes config files and signals or starts nodes: see Commit.
  const VersionedDoc read = ctx_->store->GetVersioned(kind::kLoadBalancer, name);
  const std::optional<Json> found = read.doc ? std::optional<Json>(*read.doc) : std::nullopt;
  const int64_t now = ctx_->clock->NowMillis();

  // This load balancer's node documents, by id, as they were and as this pass leaves them.
  std::map<std::string, Json> before;
  for (const auto& id : ctx_->store->Ids(kind::kLoadBalancerNode)) {
    if (id.compare(0, name.size() + 1, name + "/") != 0) continue;
    if (auto doc = ctx_->store->Get(kind::kLoadBalancerNode, id)) before[id] = *doc;
  }
  std::map<std::string, Json> nodes = before;
  Status first_error;
  auto note = [&](Status st) {
    if (!st.ok() && first_error.ok()) first_error = st;
  };

  std::optional<Json> lb = found;
  std::set<std::string> desired;
  if (lb) {
    auto sync_nodes = [&] {
      std::vector<Json> synced;
      for (const auto& az : AvailabilityZonesOf(*lb)) {
        const std::string id = NodeId(name, az);
        desired.insert(id);
        auto it = nodes.find(id);
        if (it == nodes.end()) it = nodes.emplace(id, NewNode(name, az, now)).first;
        note(SyncNode(*lb, it->second));
        synced.push_back(it->second);
      }
      return synced;
    };
    std::vector<Json> synced = sync_nodes();
    // Nodes forget a finished drain at once: their configs are brought up to date in the same pass.
    if (FinishDraining(*lb, synced)) sync_nodes();
  }

  std::vector<StoreWrite> writes;
  for (auto it = nodes.begin(); it != nodes.end();) {
    const std::string& id = it->first;
    if (!desired.count(id) && RetireNode(it->second)) {
      if (before.count(id)) writes.push_back({kind::kLoadBalancerNode, id, std::nullopt});
      spdlog::info("load_balancer={} node={} removed", name, id);
      it = nodes.erase(it);
      continue;
    }
    auto was = before.find(id);
    if (was == before.end() || was->second != it->second) writes.push_back({kind::kLoadBalancerNode, id, it->second});
    ++it;
  }
  if (!lb && nodes.empty()) {
    std::error_code ec;
    fs::remove_all(fs::path(ctx_->data_dir) / "load-balancers" / name, ec);
  }
  note(Commit(name, read.doc, lb && *lb != *found ? lb : std::nullopt, std::move(writes)));
  return first_error;
}

// Node documents have one writer, this controller (one pass per load balancer at a time), so they are
// committed as computed: they must record every process the pass started. The load_balancer document is also
// changed by the API (registrations): its finished drains are written only if it is still the document this
// pass read; if not, its change has queued this load balancer again and the next pass recomputes them.
Status LoadBalancerController::Commit(const std::string& name, const Doc& read, const std::optional<Json>& lb,
                                      std::vector<StoreWrite> node_writes) {
  std::lock_guard lock(*ctx_->mu);
  if (lb && ctx_->store->GetVersioned(kind::kLoadBalancer, name).doc == read) {
    node_writes.push_back({kind::kLoadBalancer, name, *lb});
  }
  if (node_writes.empty()) return Status::Ok();
  return ctx_->store->Commit(node_writes);
}

}  // namespace autopipe

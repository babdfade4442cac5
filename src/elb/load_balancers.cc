#include "elb/load_balancers.h"

#include <algorithm>

#include "ec2/instances.h"

namespace autopipe::elb {
namespace {

// The last write for (kind, id) in `pending`: nullptr when the batch does not touch it; otherwise the write,
// whose doc is nullopt when the batch deletes the document.
const StoreWrite* LastWrite(const std::vector<StoreWrite>* pending, const std::string& k, const std::string& id) {
  if (!pending) return nullptr;
  for (auto it = pending->rbegin(); it != pending->rend(); ++it) {
    if (it->kind == k && it->id == id) return &*it;
  }
  return nullptr;
}

// The instance as of the caller's batch (Auto Scaling registers instances it launches in the same batch).
std::optional<Json> FindInstance(const RegionContext& ctx, const std::string& id,
                                 const std::vector<StoreWrite>* pending) {
  if (const StoreWrite* w = LastWrite(pending, kind::kInstance, id)) return w->doc;
  return ctx.store->Get(kind::kInstance, id);
}

Status LoadBalancerNotFound(const std::string& name) {
  return Status(400, "LoadBalancerNotFound", "There is no ACTIVE Load Balancer named '" + name + "'");
}

Status InvalidInstance(const std::string& message) { return Status(400, "InvalidInstance", message); }

bool Contains(const Json& list, const std::string& value) {
  return std::find(list.begin(), list.end(), value) != list.end();
}

void Erase(Json& list, const std::string& value) {
  list.erase(std::remove(list.begin(), list.end(), value), list.end());
}

// A shutting-down instance is on its way out: ELB treats it as terminated.
bool IsGone(const std::string& state) {
  return state == instance_state::kShuttingDown || state == instance_state::kTerminated;
}

InstanceHealth Health(const std::string& id, const char* state, const char* reason, const char* description) {
  return {id, state, reason, description};
}

}  // namespace

std::optional<Json> FindLoadBalancer(const RegionContext& ctx, const std::string& name,
                                     const std::vector<StoreWrite>* pending) {
  if (const StoreWrite* w = LastWrite(pending, kind::kLoadBalancer, name)) return w->doc;
  return ctx.store->Get(kind::kLoadBalancer, name);
}

Status RegisterInstances(const RegionContext& ctx, const std::string& name, const std::vector<std::string>& ids,
                         std::vector<StoreWrite>& writes) {
  auto found = FindLoadBalancer(ctx, name, &writes);
  if (!found) return LoadBalancerNotFound(name);
  // Every id is checked before anything changes, so a bad id leaves the load balancer as it was.
  for (const auto& id : ids) {
    auto inst = FindInstance(ctx, id, &writes);
    if (!inst) return InvalidInstance("Could not find EC2 instance " + id + ".");
    if (IsGone((*inst)["State"].get<std::string>())) {
      return InvalidInstance("EC2 instance " + id + " is not in running state.");
    }
  }
  Json balancer = std::move(*found);
  bool changed = false;
  for (const auto& id : ids) {
    if (balancer["Deregistering"].contains(id)) {
      balancer["Deregistering"].erase(id);
      changed = true;
    }
    if (!Contains(balancer["Instances"], id)) {
      balancer["Instances"].push_back(id);
      changed = true;
    }
  }
  // Registering what is already registered writes nothing: callers may repeat it every pass.
  if (!changed) return Status::Ok();
  balancer["ConfigVersion"] = balancer["ConfigVersion"].get<uint64_t>() + 1;
  writes.push_back({kind::kLoadBalancer, name, std::move(balancer)});
  return Status::Ok();
}

Status DeregisterInstances(const RegionContext& ctx, const std::string& name, const std::vector<std::string>& ids,
                           std::vector<StoreWrite>& writes) {
  auto found = FindLoadBalancer(ctx, name, &writes);
  if (!found) return LoadBalancerNotFound(name);
  Json balancer = std::move(*found);
  // An id EC2 has never heard of is an error, as in AWS; one that exists but is not registered is ignored, and
  // one still registered is always let go even if its instance document is already gone.
  for (const auto& id : ids) {
    if (!IsAttached(balancer, id) && !FindInstance(ctx, id, &writes)) {
      return InvalidInstance("Could not find EC2 instance " + id + ".");
    }
  }
  const Json& draining = balancer["Attributes"]["ConnectionDraining"];
  const bool drain = draining.value("Enabled", false);
  const int64_t until = ctx.clock->NowMillis() + draining.value("Timeout", 300) * int64_t{1000};
  bool changed = false;
  for (const auto& id : ids) {
    if (!Contains(balancer["Instances"], id)) continue;  // not registered, or already draining: deadline stands
    Erase(balancer["Instances"], id);
    if (drain) balancer["Deregistering"][id] = {{"Until", until}};
    changed = true;
  }
  if (!changed) return Status::Ok();
  balancer["ConfigVersion"] = balancer["ConfigVersion"].get<uint64_t>() + 1;
  writes.push_back({kind::kLoadBalancer, name, std::move(balancer)});
  return Status::Ok();
}

bool IsAttached(const Json& balancer, const std::string& instance_id) {
  return Contains(balancer["Instances"], instance_id) || IsDraining(balancer, instance_id);
}

bool IsDraining(const Json& balancer, const std::string& instance_id) {
  auto it = balancer.find("Deregistering");
  return it != balancer.end() && it->contains(instance_id);
}

InstanceHealth DescribeInstanceHealth(const RegionContext& ctx, const Json& balancer, const std::string& id) {
  if (IsDraining(balancer, id)) {
    return Health(id, "InService", "N/A", "Instance deregistration currently in progress.");
  }
  if (!Contains(balancer["Instances"], id)) {
    return Health(id, "OutOfService", "N/A", "Instance is not currently registered with the LoadBalancer.");
  }

  auto inst = ctx.store->Get(kind::kInstance, id);
  const std::string state = inst ? (*inst)["State"].get<std::string>() : instance_state::kTerminated;
  if (state == instance_state::kPending) {
    return Health(id, "OutOfService", "ELB", "Instance registration is still in progress.");
  }
  if (IsGone(state)) return Health(id, "OutOfService", "Instance", "Instance is in terminated state.");
  if (state != instance_state::kRunning) {
    return Health(id, "OutOfService", "Instance", "Instance is in stopped state.");
  }
  if (!Contains(balancer["AvailabilityZones"], (*inst)["AvailabilityZone"].get<std::string>())) {
    return Health(id, "OutOfService", "ELB",
                  "Instance is in an Availability Zone for which LoadBalancer is not configured to route traffic "
                  "to.");
  }

  // The nodes' verdicts: one node that sees it healthy is enough to route to it, so that one wins; a node that
  // has not reported for kStatusStaleMillis says nothing.
  const int64_t fresh_after = ctx.clock->NowMillis() - lb::kStatusStaleMillis;
  const std::string name = balancer["LoadBalancerName"];
  bool any_fresh = false, healthy = false, unhealthy = false;
  for (const auto& az : balancer["AvailabilityZones"]) {
    auto status = ReadNodeStatus(ctx, name, az.get<std::string>());
    if (!status || status->updated_at_millis < fresh_after) continue;
    any_fresh = true;
    for (const auto& backend : status->backends) {
      if (backend.id != id) continue;
      healthy |= backend.health == lb::kHealthHealthy;
      unhealthy |= backend.health == lb::kHealthUnhealthy;
    }
  }
  if (healthy) return Health(id, "InService", "N/A", "N/A");
  if (unhealthy) {
    return Health(id, "OutOfService", "Instance",
                  "Instance has failed at least the UnhealthyThreshold number of health checks consecutively.");
  }
  if (!any_fresh) return Health(id, "Unknown", "ELB", "A transient error occurred. Please try again later.");
  return Health(id, "OutOfService", "ELB", "Instance registration is still in progress.");
}

std::string NodeDir(const RegionContext& ctx, const std::string& name, const std::string& az) {
  return ctx.data_dir + "/load-balancers/" + name + "/" + az;
}

std::optional<lb::NodeStatus> ReadNodeStatus(const RegionContext& ctx, const std::string& name,
                                             const std::string& az) {
  auto text = lb::ReadWholeFile(NodeDir(ctx, name, az) + "/status.json");
  if (!text.ok()) return std::nullopt;
  auto status = lb::ParseNodeStatus(*text);
  if (!status.ok()) return std::nullopt;
  return std::move(*status);
}

std::vector<AzMetrics> ReadLoadBalancerMetrics(const RegionContext& ctx, const Json& lb) {
  std::vector<AzMetrics> out;
  const std::string name = lb["LoadBalancerName"];
  const int64_t now = ctx.clock->NowMillis();
  for (const auto& az : lb["AvailabilityZones"]) {
    AzMetrics m;
    m.availability_zone = az.get<std::string>();
    m.read_at_millis = now;
    auto status = ReadNodeStatus(ctx, name, m.availability_zone);
    if (status && status->updated_at_millis >= now - lb::kStatusStaleMillis) {
      m.reporting = true;
      m.counters = status->metrics;
      for (const auto& backend : status->backends) {
        if (backend.health == lb::kHealthHealthy) ++m.healthy_host_count;
        else ++m.unhealthy_host_count;
      }
    }
    out.push_back(std::move(m));
  }
  return out;
}

}  // namespace autopipe::elb

// Classic Load Balancers as store documents, and the rules the ELB API, the Auto Scaling group controller and
// the load-balancer controller share.
//
// A load_balancer document (id = LoadBalancerName):
//   LoadBalancerName, DNSName, CanonicalHostedZoneNameID, CreatedTime (ms), Scheme ("internet-facing" or
//   "internal"), AvailabilityZones [az...], Listeners [{Protocol, LoadBalancerPort, InstanceProtocol,
//   InstancePort}], HealthCheck {Target, Interval, Timeout, UnhealthyThreshold, HealthyThreshold},
//   Instances [instance id...] (registered, in registration order),
//   Deregistering {instance id: {"Until": ms}}   (draining: still served in-flight, no new requests),
//   Attributes {CrossZoneLoadBalancing {Enabled}, ConnectionDraining {Enabled, Timeout},
//               ConnectionSettings {IdleTimeout}, AccessLog {Enabled, S3BucketName, EmitInterval,
//               S3BucketPrefix}},
//   Tags [{Key, Value}], Address (the load balancer's own 127.x.200.k address: DNSName is this literal, so it
//   resolves anywhere with no set-up), AddressIndex (k), ConfigVersion (bumped on every change a node must see).
//
// Nodes: one `autopipe lb` process per enabled AZ, each a load_balancer_node document (id "<name>/<az>") owned
// by the LoadBalancerController: LoadBalancerName, AvailabilityZone, VipAddress, Address (127.x.(201+az
// index).k), Pid, PidStartTime, ConfigVersion (its own counter, bumped when its config.json changes). Every node listens on the shared Address (SO_REUSEPORT: the
// kernel spreads connections over the AZ nodes as DNS would) and on its own.
//
// Files: <data dir>/load-balancers/<name>/<az>/{config.json,status.json,node.log,access.log} (lb/node_files.h).
//
// Thread-safety: call with RegionContext::mu held.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "lb/node_files.h"
#include "region/context.h"

namespace autopipe {
namespace kind {
inline constexpr char kLoadBalancer[] = "load_balancer";
inline constexpr char kLoadBalancerNode[] = "load_balancer_node";
}  // namespace kind
}  // namespace autopipe

namespace autopipe::elb {

inline constexpr int kMaxLoadBalancers = 20;  // per region (AWS's default quota)

// The document of a load balancer as of `pending` (the caller's uncommitted batch) or the store.
std::optional<Json> FindLoadBalancer(const RegionContext& ctx, const std::string& name,
                                     const std::vector<StoreWrite>* pending = nullptr);

// Registers instances (idempotent; an instance being drained is registered again at once). Appends the updated
// document to `writes`. LoadBalancerNotFound / InvalidInstance as the API gives them.
Status RegisterInstances(const RegionContext& ctx, const std::string& name, const std::vector<std::string>& ids,
                         std::vector<StoreWrite>& writes);
// Deregisters instances: with ConnectionDraining enabled they move to Deregistering until the timeout or until
// no node has a request in flight on them; otherwise they are gone at once. Instances that are not registered
// are ignored; an id with no instance document at all is InvalidInstance.
Status DeregisterInstances(const RegionContext& ctx, const std::string& name, const std::vector<std::string>& ids,
                           std::vector<StoreWrite>& writes);

// True while the instance is registered with, or still draining from, the load balancer.
bool IsAttached(const Json& lb, const std::string& instance_id);
bool IsDraining(const Json& lb, const std::string& instance_id);

struct InstanceHealth {
  std::string instance_id;
  std::string state;        // InService, OutOfService, Unknown
  std::string reason_code;  // ELB, Instance, N/A
  std::string description;  // ELB's wording, "N/A" when InService
};

// The health of one instance as DescribeInstanceHealth reports it, from the EC2 state and the status files of
// the load balancer's nodes.
InstanceHealth DescribeInstanceHealth(const RegionContext& ctx, const Json& lb, const std::string& instance_id);

// The directory holding one node's files.
std::string NodeDir(const RegionContext& ctx, const std::string& name, const std::string& az);
// A node's last status, or nullopt when it has not reported (or the file is unreadable).
std::optional<lb::NodeStatus> ReadNodeStatus(const RegionContext& ctx, const std::string& name,
                                             const std::string& az);

// The AWS/ELB figures of one load balancer in one AZ (dimensions LoadBalancerName + AvailabilityZone), for the
// monitoring side. Counters are cumulative since the AZ's node started: take differences between readings (a
// smaller reading than the last means the node restarted).
struct AzMetrics {
  std::string availability_zone;
  bool reporting = false;   // a fresh status file was found; the rest is zero otherwise
  int64_t read_at_millis = 0;
  int healthy_host_count = 0;    // back ends this node routes to that pass their health checks
  int unhealthy_host_count = 0;  // ... that do not (failed, or not yet checked)
  lb::NodeMetrics counters;
};
std::vector<AzMetrics> ReadLoadBalancerMetrics(const RegionContext& ctx, const Json& lb);

}  // namespace autopipe::elb

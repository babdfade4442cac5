#include "ec2/instances.h"

#include <arpa/inet.h>
#include <unistd.h>

#include <ctime>
#include <set>

#include "common/ids.h"
#include "process/supervisor.h"
#include "region/module.h"

namespace autopipe {
namespace {

// Each AZ owns a /18 of the region's /16: AZ index a uses third octets 64a+1 .. 64a+63, fourth octets 1..254.
constexpr int kPerAz = 63 * 254;

std::string AddressFor(const std::string& block, int az_index, int n) {
  int third = 64 * az_index + 1 + n / 254;
  int fourth = 1 + n % 254;
  return block + "." + std::to_string(third) + "." + std::to_string(fourth);
}

}  // namespace

int InstanceStateCode(const std::string& s) {
  if (s == instance_state::kPending) return 0;
  if (s == instance_state::kRunning) return 16;
  if (s == instance_state::kShuttingDown) return 32;
  if (s == instance_state::kTerminated) return 48;
  if (s == instance_state::kStopping) return 64;
  return 80;
}

bool IsLiveState(const std::string& s) { return s == instance_state::kPending || s == instance_state::kRunning; }

std::optional<uint32_t> InstanceUidFor(const std::string& private_ip) {
  in_addr addr{};
  if (inet_pton(AF_INET, private_ip.c_str(), &addr) != 1) return std::nullopt;
  const uint32_t host = ntohl(addr.s_addr);
  if ((host >> 24) != 127) return std::nullopt;
  return kInstanceUidBase + (host & 0xFFFFFF);
}

bool InstanceIdentitiesAvailable() { return geteuid() == 0; }

Result<std::string> AllocatePrivateAddress(const RegionContext& ctx, const std::string& az,
                                           std::vector<StoreWrite>* writes) {
  int az_index = ctx.catalog->AzIndex(az);
  if (az_index < 0) return Status::Internal("unknown availability zone " + az);

  std::set<std::string> in_use;
  for (const auto& m : AllModules()) {
    if (m.addresses_in_use) m.addresses_in_use(ctx, &in_use);
  }
  std::string counter_id = "ip-counter-" + az;
  Json counter = ctx.store->Get(kind::kMeta, counter_id).value_or(Json{{"Next", 0}});
  // Allocations not yet committed (earlier in the caller's batch) count too: the counter has moved past them.
  for (const auto& w : *writes) {
    if (!w.doc) continue;
    if (w.kind == kind::kInstance) in_use.insert((*w.doc)["PrivateIpAddress"].get<std::string>());
    if (w.kind == kind::kMeta && w.id == counter_id) counter = *w.doc;
  }
  // Addresses are handed out round-robin, so a just-freed one is not reused while its old process may linger.
  int next = counter["Next"].get<int>();
  for (int i = 0; i < kPerAz; ++i) {
    int n = (next + i) % kPerAz;
    std::string candidate = AddressFor(ctx.catalog->address_block(), az_index, n);
    if (in_use.count(candidate)) continue;
    counter["Next"] = (n + 1) % kPerAz;
    std::erase_if(*writes, [&](const StoreWrite& w) { return w.kind == kind::kMeta && w.id == counter_id; });
    writes->push_back(StoreWrite{kind::kMeta, counter_id, counter});
    return candidate;
  }
  return Status(500, "InsufficientInstanceCapacity", "There is no free address left in " + az, false);
}

Result<Json> NewInstance(const RegionContext& ctx, const InstanceLaunch& launch, std::vector<StoreWrite>* writes) {
  auto allocated = AllocatePrivateAddress(ctx, launch.availability_zone, writes);
  if (!allocated.ok()) return allocated.status();
  const std::string ip = *allocated;

  Json tags = Json::object();
  for (const auto& [k, v] : launch.tags) tags[k] = v;
  const int64_t now = ctx.clock->NowMillis();
  Json inst = {
      {"InstanceId", NewInstanceId()},
      {"ImageId", launch.image_id},
      {"InstanceType", launch.instance_type},
      {"AvailabilityZone", launch.availability_zone},
      {"PrivateIpAddress", ip},
      {"State", instance_state::kPending},
      {"DesiredState", instance_state::kRunning},
      {"StateReason", nullptr},
      {"StateTransitionReason", ""},
      {"LaunchTime", now},
      {"StateChangedAt", now},
      {"Tags", tags},
      {"UserData", launch.user_data},
      {"KeyName", launch.key_name},
      {"SecurityGroups", launch.security_groups},
      {"LaunchConfigurationName", launch.launch_configuration_name},
      {"AutoScalingGroupName", launch.auto_scaling_group_name},
      {"Pid", 0},
      {"PidStartTime", 0},
      // Durable before the process exists: a server killed between the fork and recording the pid finds the
      // process again by this token (process/supervisor.h).
      {"LaunchToken", NewLaunchToken()},
  };
  writes->push_back({kind::kInstance, inst["InstanceId"].get<std::string>(), inst});
  return inst;
}

std::vector<StoreWrite> RequestTermination(const RegionContext& ctx, Json inst, const std::string& reason) {
  if (inst["DesiredState"] == instance_state::kTerminated) return {};
  inst["DesiredState"] = instance_state::kTerminated;
  inst["StateTransitionReason"] = reason;
  std::string id = inst["InstanceId"];
  return {{kind::kInstance, id, std::move(inst)}};
}

namespace {

Status IncorrectState(const Json& inst, const char* verb) {
  return Status(400, "IncorrectInstanceState",
                "The instance '" + inst["InstanceId"].get<std::string>() + "' is not in a state from which it can be " +
                    verb + ".");
}

}  // namespace

std::string UserInitiatedReason(int64_t now_millis) {
  const time_t secs = static_cast<time_t>(now_millis / 1000);
  tm utc{};
  gmtime_r(&secs, &utc);
  char buf[64];
  strftime(buf, sizeof buf, "User initiated (%Y-%m-%d %H:%M:%S GMT)", &utc);
  return buf;
}

Result<StateRequest> RequestStop(const RegionContext& ctx, const Json& instance, bool force,
                                 const std::string& reason) {
  (void)ctx;
  StateRequest out;
  const std::string state = instance["State"];
  const std::string desired = instance["DesiredState"];
  out.previous = state;
  const bool stoppable = desired != instance_state::kTerminated &&
                         (state == instance_state::kRunning || state == instance_state::kStopping ||
                          state == instance_state::kStopped);
  if (!stoppable) return IncorrectState(instance, "stopped");
  Json inst = instance;
  if (state == instance_state::kStopped) {
    out.current = state;
    inst["DesiredState"] = instance_state::kStopped;  // cancels a start not yet under way
    if (inst != instance) out.writes.push_back({kind::kInstance, inst["InstanceId"].get<std::string>(), inst});
    return out;
  }
  // running or stopping
  out.current = instance_state::kStopping;
  if (desired != instance_state::kStopped) {
    inst["DesiredState"] = instance_state::kStopped;
    inst["StateTransitionReason"] = reason;
  }
  if (force) inst["StopForce"] = true;
  if (inst != instance) out.writes.push_back({kind::kInstance, inst["InstanceId"].get<std::string>(), inst});
  return out;
}

Result<StateRequest> RequestStart(const RegionContext& ctx, const Json& instance) {
  (void)ctx;
  StateRequest out;
  const std::string state = instance["State"];
  const std::string desired = instance["DesiredState"];
  out.previous = state;
  if (desired == instance_state::kTerminated || state == instance_state::kStopping ||
      state == instance_state::kShuttingDown || state == instance_state::kTerminated) {
    return IncorrectState(instance, "started");
  }
  if (state == instance_state::kPending || state == instance_state::kRunning) {
    if (desired == instance_state::kStopped) return IncorrectState(instance, "started");  // its stop is under way
    out.current = state;
    return out;
  }
  // stopped
  out.current = instance_state::kPending;
  if (desired != instance_state::kRunning) {
    Json inst = instance;
    inst["DesiredState"] = instance_state::kRunning;
    inst.erase("StopForce");
    out.writes.push_back({kind::kInstance, inst["InstanceId"].get<std::string>(), inst});
  }
  return out;
}

Result<std::vector<StoreWrite>> RequestReboot(const RegionContext& ctx, const Json& instance) {
  const std::string state = instance["State"];
  if (state == instance_state::kTerminated) return std::vector<StoreWrite>{};
  if (state != instance_state::kRunning || instance["DesiredState"] != instance_state::kRunning) {
    return IncorrectState(instance, "rebooted");
  }
  Json inst = instance;
  inst["RebootRequestedAt"] = ctx.clock->NowMillis();
  return std::vector<StoreWrite>{{kind::kInstance, inst["InstanceId"].get<std::string>(), inst}};
}

}  // namespace autopipe

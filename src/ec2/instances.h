// EC2 instances as documents in the store, and the one way to create them.
//
// An instance document holds what EC2 shows (InstanceId, ImageId, InstanceType, AvailabilityZone,
// PrivateIpAddress, State, StateReason, LaunchTime, Tags, UserData) plus what the instance controller needs:
// DesiredState ("running", "stopped" or "terminated"), RebootRequestedAt (ms, while a reboot is asked for) and the
// (Pid, PidStartTime) of the instance's init process. Handlers, alarm actions and the Auto Scaling controller only
// ever change DesiredState (and RebootRequestedAt) through the Request* functions below; the instance controller
// moves State:  pending -> running -> stopping -> stopped -> pending ...;  any -> shutting-down -> terminated.
//
// Thread-safety: call with RegionContext::mu held.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "region/context.h"

namespace autopipe {

namespace kind {
inline constexpr char kInstance[] = "instance";
}  // namespace kind

namespace instance_state {
inline constexpr char kPending[] = "pending";
inline constexpr char kRunning[] = "running";
inline constexpr char kShuttingDown[] = "shutting-down";
inline constexpr char kTerminated[] = "terminated";
inline constexpr char kStopping[] = "stopping";
inline constexpr char kStopped[] = "stopped";
}  // namespace instance_state

int InstanceStateCode(const std::string& state);  // 0 pending, 16 running, 32 shutting-down, 48, 64, 80

struct InstanceLaunch {
  std::string image_id;
  std::string instance_type;
  std::string availability_zone;
  std::string user_data;  // base64, as sent by the client
  std::string key_name;
  std::vector<std::string> security_groups;
  std::vector<std::pair<std::string, std::string>> tags;
  std::string launch_configuration_name;
  std::string auto_scaling_group_name;
};

// Hands out the next free private address of `az` (round-robin over its /18, skipping every address a module
// reports in use: ServiceModule::addresses_in_use), appending the counter's update to `writes`. For instances,
// database servers and cache nodes alike. InsufficientInstanceCapacity when the AZ has none left.
Result<std::string> AllocatePrivateAddress(const RegionContext& ctx, const std::string& az,
                                           std::vector<StoreWrite>* writes);

// Builds a new pending instance with its own private IP, appending the store writes (the instance and the
// address counter) to `writes`. The caller commits them together with its own changes.
Result<Json> NewInstance(const RegionContext& ctx, const InstanceLaunch& launch, std::vector<StoreWrite>* writes);

// Requests termination (idempotent). Returns the writes to commit, empty when nothing changes.
std::vector<StoreWrite> RequestTermination(const RegionContext& ctx, Json instance, const std::string& reason);

bool IsLiveState(const std::string& state);  // pending or running

// What StopInstances / StartInstances answer for one instance, and the writes that make it so.
struct StateRequest {
  std::vector<StoreWrite> writes;  // empty when nothing changes
  std::string previous;            // the state now
  std::string current;             // the state EC2 reports right after the call
};

// StopInstances (and the alarm action ec2:stop): a running instance goes stopping, then stopped once its whole
// process tree is gone (SIGTERM, SIGKILL after InstanceController::kKillAfterMillis; at once with `force`). A
// stopping or stopped one is answered as it is. Pending, shutting-down and terminated instances are
// IncorrectInstanceState, as on EC2. `reason` becomes StateTransitionReason.
Result<StateRequest> RequestStop(const RegionContext& ctx, const Json& instance, bool force, const std::string& reason);

// StartInstances: a stopped instance goes pending and boots again (same id, address and identity; its UserData
// is not run again, as cloud-init runs it once per instance). Pending or running: answered as it is. Stopping,
// shutting-down and terminated: IncorrectInstanceState.
Result<StateRequest> RequestStart(const RegionContext& ctx, const Json& instance);

// RebootInstances (and ec2:reboot): a running instance's process tree is stopped and booted again while the
// instance stays running. Terminated instances are ignored (no writes); other states are IncorrectInstanceState.
Result<std::vector<StoreWrite>> RequestReboot(const RegionContext& ctx, const Json& instance);

// "User initiated (2026-12-01 19:40:12 GMT)", EC2's StateTransitionReason for a user's stop.
std::string UserInitiatedReason(int64_t now_millis);

// ---- Instance identities (docs/design.md, "What an instance can and cannot touch") ----
//
// When the server runs as root every instance runs under a uid and gid of its own, from a range that maps to no
// passwd entry: kInstanceUidBase + the instance's private address as a number within 127.0.0.0/8
// (127.N.x.y -> N*65536 + x*256 + y). Addresses are unique among the instances that are not terminated, in a
// region and across the regions of one machine (each has its own /16), so two live instances never share a uid;
// it is recorded in the instance document ("RunAsUid") when the instance is launched.
inline constexpr uint32_t kInstanceUidBase = 2'000'000'000;

// The uid (= gid) for an instance with this private address; nullopt when it is not a 127.x.y.z address.
std::optional<uint32_t> InstanceUidFor(const std::string& private_ip);

// True when instances can get identities of their own (the server runs as root).
bool InstanceIdentitiesAvailable();

// The one warning given when they cannot (server.log, `autopipe up`).
inline constexpr char kSharedIdentityWarning[] =
    "the server is not running as root, so instances run as the server's own user: an instance's UserData can "
    "read the region's credentials and state.db, signal the server and bind its load balancers' addresses. "
    "Run the server as root (as scripts/up.sh and CI do) to give each instance an identity of its own.";

}  // namespace autopipe

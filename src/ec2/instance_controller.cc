#include "ec2/instance_controller.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>

#include "common/log.h"
#include "ec2/instances.h"
#include "process/recorded_process.h"

namespace autopipe {
namespace {

namespace fs = std::filesystem;

void SetState(Json& inst, const char* state, int64_t now) {
  inst["State"] = state;
  inst["StateChangedAt"] = now;
}

// Base64 decoding of UserData; nullopt when it is not valid base64.
std::optional<std::string> DecodeBase64(const std::string& in) {
  static const std::string kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  int val = 0, bits = -8;
  for (char c : in) {
    if (c == '=' || c == '\n' || c == '\r') continue;
    size_t pos = kAlphabet.find(c);
    if (pos == std::string::npos) return std::nullopt;
    val = (val << 6) + static_cast<int>(pos);
    bits += 6;
    if (bits >= 0) {
      out.push_back(static_cast<char>((val >> bits) & 0xFF));
      bits -= 8;
    }
  }
  return out;
}

}  // namespace

std::vector<std::string> InstanceController::Keys() {
  return ctx_->store->Ids(kind::kInstance);
}

Status InstanceController::Start(Json& inst) {
  const std::string id = inst["InstanceId"];
  const Image* image = ctx_->catalog->FindImage(inst["ImageId"]);
  const InstanceType* type = ctx_->catalog->FindInstanceType(inst["InstanceType"]);
  fs::path dir = fs::path(ctx_->data_dir) / "instances" / id;
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return Status::Internal("cannot create " + dir.string() + ": " + ec.message());

  // The instance's own identity: its folder and the files the server puts there become its own; the data dir
  // around them stays the server's (0700), so nothing else of the region is reachable.
  std::optional<uint32_t> uid;
  if (ctx_->instance_identities) {
    uid = InstanceUidFor(inst["PrivateIpAddress"].get<std::string>());
    if (!uid) return Status::Internal("no identity for address " + inst["PrivateIpAddress"].get<std::string>());
    if (::chown(dir.c_str(), *uid, *uid) != 0 || ::chmod(dir.c_str(), 0700) != 0) {
      return Status::Internal("cannot hand " + dir.string() + " to uid " + std::to_string(*uid) + ": " +
                              strerror(errno));
    }
  }
  // Created here (not by the launcher's child, which opens it before it changes identity) so the instance owns it.
  auto create_owned = [&](const fs::path& path, int flags, const std::string& content) -> bool {
    int fd = ::open(path.c_str(), flags | O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    bool ok = fd >= 0 && ::fchmod(fd, 0600) == 0 && (!uid || ::fchown(fd, *uid, *uid) == 0) &&
              ::write(fd, content.data(), content.size()) == static_cast<ssize_t>(content.size());
    if (fd >= 0) ::close(fd);
    return ok;
  };
  if (!create_owned(dir / "console.log", O_APPEND, "")) return Status::Internal("cannot create the console log");

  // Paths the instance gets are relative to its folder (its working directory): with an identity of its own it
  // cannot search the data dir, so an absolute path into it would not resolve.
  std::string user_data_arg;
  // UserData runs at the first boot only, as cloud-init runs a user-data script once per instance: a start after
  // a stop or a reboot boots the image's service alone.
  auto user_data = DecodeBase64(inst["UserData"].get<std::string>());
  if (inst.value("Boots", 0) == 0 && user_data && !user_data->empty()) {
    user_data_arg = "user-data";
    // 0600 from the start: UserData may carry secrets.
    if (!create_owned(dir / user_data_arg, O_TRUNC, *user_data)) {
      return Status::Internal("cannot write the instance's user data");
    }
  }

  LaunchSpec spec;
  spec.argv = {ctx_->self_exe, "instance-init", "--service", image ? image->service : "",
               "--user-data", user_data_arg, "--work-dir", "."};
  spec.env = {
      {"PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
      {"HOME", dir.string()},
      {"LANG", "C.UTF-8"},
      {"AUTOPIPE_INSTANCE_ID", id},
      {"AUTOPIPE_PRIVATE_IP", inst["PrivateIpAddress"]},
      {"AUTOPIPE_AVAILABILITY_ZONE", inst["AvailabilityZone"]},
      {"AUTOPIPE_REGION", ctx_->catalog->region()},
      {"AUTOPIPE_INSTANCE_TYPE", inst["InstanceType"]},
      {"AUTOPIPE_VCPUS", std::to_string(type ? type->vcpus : 1)},
  };
  spec.working_dir = dir.string();
  spec.cgroup_name = id;  // everything it starts stays in it: stop and terminate leave nothing behind
  spec.log_path = (dir / "console.log").string();
  if (uid) {
    spec.uid = *uid;
    spec.gid = *uid;
    spec.keep_net_bind_service = true;  // its service listens on PrivateIp:80, as on EC2
    inst["RunAsUid"] = *uid;
  } else {
    inst.erase("RunAsUid");
  }
  AP_RETURN_IF_ERROR(supervisor_.Launch(inst, spec));
  inst["Boots"] = inst.value("Boots", 0) + 1;
  spdlog::info("instance={} started pid={} ip={} az={} uid={}", id, inst["Pid"].get<pid_t>(),
               inst["PrivateIpAddress"].get<std::string>(), inst["AvailabilityZone"].get<std::string>(),
               uid ? std::to_string(*uid) : "server's");
  return Status::Ok();
}

ReconcileResult InstanceController::Reconcile(const std::string& id) {
  std::lock_guard lock(*ctx_->mu);
  bool again = false;
  Status st = ReconcileLocked(id, &again);
  if (!st.ok()) return st;
  // Stopping, shutting down and rebooting are looked at again soon: SIGKILL is due after the deadline even if no
  // process exit wakes the controller.
  if (again) return ReconcileResult::After(std::chrono::milliseconds(kTransitionPollMillis));
  return ReconcileResult::Done();
}

bool InstanceController::StopProcesses(Json& inst) {
  SupervisionPolicy policy = kStopPolicy;
  if (inst.value("StopForce", false)) policy.kill_after_ms = 0;  // SIGKILL on the next look, without the grace
  const bool gone = supervisor_.Stop(inst, policy);
  if (gone) {
    supervisor_.Release(inst);
    Supervisor::Clear(inst);
  }
  return gone;
}

Status InstanceController::ReconcileLocked(const std::string& id, bool* again) {
  auto found = ctx_->store->Get(kind::kInstance, id);
  if (!found) return Status::Ok();
  Json inst = *found;
  const Json before = inst;
  const int64_t now = ctx_->clock->NowMillis();
  std::string state = inst["State"];
  const std::string desired = inst["DesiredState"];
  const bool has_process = RecordedProcess(inst).pid > 0;
  auto user_shutdown = [&] {
    inst["StateReason"] = {{"Code", "Client.UserInitiatedShutdown"},
                           {"Message", "Client.UserInitiatedShutdown: User initiated shutdown"}};
  };

  if (state == instance_state::kTerminated) {
    if (now - inst["StateChangedAt"].get<int64_t>() > kForgetTerminatedAfterMillis) {
      std::error_code ec;
      fs::remove_all(fs::path(ctx_->data_dir) / "instances" / id, ec);
      return ctx_->store->Delete(kind::kInstance, id);
    }
    return Status::Ok();
  }

  if (desired == instance_state::kTerminated) {
    if (state != instance_state::kShuttingDown) {
      SetState(inst, instance_state::kShuttingDown, now);
      (void)supervisor_.Stop(inst, kStopPolicy);  // SIGTERM now; whether it is gone is looked at next time
      *again = true;
    } else if (supervisor_.Stop(inst, kStopPolicy)) {
      supervisor_.Release(inst);
      SetState(inst, instance_state::kTerminated, now);
      user_shutdown();
      inst.erase("RebootRequestedAt");
      inst.erase("Rebooting");
      spdlog::info("instance={} terminated", id);
    } else {
      *again = true;
    }
  } else if (desired == instance_state::kStopped || state == instance_state::kStopping) {
    // StopInstances or the alarm action: the whole process tree goes, the instance keeps its id, address,
    // identity and folder. (Stopping with desired running only happens when a start came in while it stopped:
    // the stop completes first.)
    if (state == instance_state::kPending || state == instance_state::kRunning) {
      SetState(inst, instance_state::kStopping, now);
      user_shutdown();
      inst.erase("RebootRequestedAt");
      inst.erase("Rebooting");
      if (!StopProcesses(inst)) *again = true;
      spdlog::info("instance={} stopping", id);
    } else if (state == instance_state::kStopping) {
      if (StopProcesses(inst)) {
        SetState(inst, instance_state::kStopped, now);
        inst.erase("StopForce");
        spdlog::info("instance={} stopped", id);
        *again = desired == instance_state::kRunning;
      } else {
        *again = true;
      }
    }
  } else {
    if (state == instance_state::kStopped) {
      // StartInstances: boot again.
      SetState(inst, instance_state::kPending, now);
      inst["StateReason"] = nullptr;
      inst["StateTransitionReason"] = "";
      Supervisor::Clear(inst);
      state = instance_state::kPending;
      spdlog::info("instance={} starting", id);
    }
    const bool process_recorded = RecordedProcess(inst).pid > 0;
    if (state == instance_state::kPending && !process_recorded) {
      Status st = Start(inst);
      if (!st.ok()) {
        SetState(inst, instance_state::kTerminated, now);
        inst["StateReason"] = {{"Code", "Server.InternalError"},
                               {"Message", "Server.InternalError: Internal error on launch"}};
        spdlog::error("instance={} launch failed: {}", id, st.ToString());
      } else {
        SetState(inst, instance_state::kRunning, now);
      }
    } else if (state == instance_state::kPending && supervisor_.Running(inst)) {
      // Started by a server that died before recording it, found again by its launch token: adopt it.
      SetState(inst, instance_state::kRunning, now);
      spdlog::info("instance={} adopted pid={}", id, inst["Pid"].get<pid_t>());
    } else if (state == instance_state::kPending) {
      Supervisor::Clear(inst);  // the adopted process has gone meanwhile: launch afresh next time
    } else if (state == instance_state::kRunning && inst.contains("RebootRequestedAt")) {
      // RebootInstances: the process tree is stopped and booted again; the instance stays running throughout.
      if (!inst.value("Rebooting", false)) {
        inst["Rebooting"] = true;
        spdlog::info("instance={} rebooting", id);
      }
      if (StopProcesses(inst)) {
        inst.erase("RebootRequestedAt");
        inst.erase("Rebooting");
        Status st = Start(inst);
        if (!st.ok()) {
          SetState(inst, instance_state::kStopped, now);
          inst["DesiredState"] = instance_state::kStopped;
          inst["StateReason"] = {{"Code", "Server.InternalError"},
                                 {"Message", "Server.InternalError: Internal error on launch"}};
          spdlog::error("instance={} reboot failed: {}", id, st.ToString());
        }
      } else {
        *again = true;
      }
    } else if (state == instance_state::kRunning && supervisor_.Running(inst)) {
      // Running (and watched: after a server restart this adopts it).
    } else if (state == instance_state::kRunning) {
      // Shut down from the inside: stopped, and it stays stopped until StartInstances (as on EC2).
      SetState(inst, instance_state::kStopped, now);
      inst["DesiredState"] = instance_state::kStopped;
      inst["StateReason"] = {{"Code", "Client.InstanceInitiatedShutdown"},
                             {"Message", "Client.InstanceInitiatedShutdown: Instance initiated shutdown"}};
      inst["StateTransitionReason"] = "Instance initiated shutdown";
      supervisor_.KillLeftovers(inst);
      supervisor_.Release(inst);
      spdlog::info("instance={} process exited; instance stopped", id);
    }
  }
  (void)has_process;

  if (inst == before) return Status::Ok();
  return ctx_->store->Put(kind::kInstance, id, inst);
}

}  // namespace autopipe

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
  auto user_data = DecodeBase64(inst["UserData"].get<std::string>());
  if (user_data && !user_data->empty()) {
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
  spdlog::info("instance={} started pid={} ip={} az={} uid={}", id, inst["Pid"].get<pid_t>(),
               inst["PrivateIpAddress"].get<std::string>(), inst["AvailabilityZone"].get<std::string>(),
               uid ? std::to_string(*uid) : "server's");
  return Status::Ok();
}

ReconcileResult InstanceController::Reconcile(const std::string& id) {
  std::lock_guard lock(*ctx_->mu);
  return ReconcileLocked(id);
}

Status InstanceController::ReconcileLocked(const std::string& id) {
  auto found = ctx_->store->Get(kind::kInstance, id);
  if (!found) return Status::Ok();
  Json inst = *found;
  const Json before = inst;
  const int64_t now = ctx_->clock->NowMillis();
  const std::string state = inst["State"];
  const bool want_running = inst["DesiredState"] == instance_state::kRunning;
  const bool has_process = RecordedProcess(inst).pid > 0;

  if (state == instance_state::kTerminated) {
    if (now - inst["StateChangedAt"].get<int64_t>() > kForgetTerminatedAfterMillis) {
      std::error_code ec;
      fs::remove_all(fs::path(ctx_->data_dir) / "instances" / id, ec);
      return ctx_->store->Delete(kind::kInstance, id);
    }
    return Status::Ok();
  }

  if (!want_running) {
    if (state != instance_state::kShuttingDown) {
      SetState(inst, instance_state::kShuttingDown, now);
      (void)supervisor_.Stop(inst, kStopPolicy);  // SIGTERM now; whether it is gone is looked at next time
    } else if (supervisor_.Stop(inst, kStopPolicy)) {
      SetState(inst, instance_state::kTerminated, now);
      inst["StateReason"] = {{"Code", "Client.UserInitiatedShutdown"},
                             {"Message", "Client.UserInitiatedShutdown: User initiated shutdown"}};
      spdlog::info("instance={} terminated", id);
    }
  } else if (state == instance_state::kPending && !has_process) {
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
  } else if (state == instance_state::kRunning && supervisor_.Running(inst)) {
    // Running (and watched: after a server restart this adopts it).
  } else if (state == instance_state::kRunning) {
    SetState(inst, instance_state::kStopped, now);
    inst["StateReason"] = {{"Code", "Client.InstanceInitiatedShutdown"},
                           {"Message", "Client.InstanceInitiatedShutdown: Instance initiated shutdown"}};
    inst["StateTransitionReason"] = "Instance initiated shutdown";
    supervisor_.KillLeftovers(inst);
    spdlog::info("instance={} process exited; instance stopped", id);
  }

  if (inst == before) return Status::Ok();
  return ctx_->store->Put(kind::kInstance, id, inst);
}

}  // namespace autopipe

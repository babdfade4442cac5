#include "rds/db_metrics.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>

#include "process/recorded_process.h"
#include "rds/db_controller.h"
#include "rds/db_instances.h"
#include "rds/db_replicas.h"
#include "rds/mariadb.h"

namespace fs = std::filesystem;

namespace autopipe::rds {
namespace {

// utime + stime of a process, in clock ticks; nullopt when it is gone.
std::optional<uint64_t> CpuTicks(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(f, line)) return std::nullopt;
  const size_t close = line.rfind(')');
  if (close == std::string::npos) return std::nullopt;
  std::istringstream rest(line.substr(close + 2));
  std::string field;
  uint64_t utime = 0, stime = 0;
  // Fields after the command: state is field 3; utime and stime are fields 14 and 15.
  for (int i = 3; i <= 15 && rest >> field; ++i) {
    if (i == 14) utime = std::stoull(field);
    if (i == 15) stime = std::stoull(field);
  }
  return utime + stime;
}

uint64_t TreeBytes(const std::string& dir) {
  uint64_t total = 0;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::recursive_directory_iterator();
       it.increment(ec)) {
    std::error_code size_ec;
    if (it->is_regular_file(size_ec)) total += it->file_size(size_ec);
  }
  return total;
}

struct CpuReading {
  pid_t pid = 0;
  uint64_t ticks = 0;
  int64_t at_millis = 0;
};

std::mutex cpu_mu;
std::map<std::string, CpuReading> last_cpu;  // by instance; guarded by cpu_mu

}  // namespace

void CollectDbMetrics(RegionContext* ctx, int64_t now, std::vector<MetricSample>* out) {
  struct Target {
    Json inst, primary, standby, secret;
  };
  std::vector<Target> targets;
  {
    std::lock_guard lock(*ctx->mu);
    for (const auto& doc : ctx->store->List(kind::kDbInstance)) {
      const Json& inst = *doc;
      if (inst.value("DBInstanceStatus", "") != db_status::kAvailable) continue;
      const std::string id = inst["DBInstanceIdentifier"];
      const Json& st = inst.value("Status", Json::object());
      Target t{inst, {}, {}, ctx->store->Get(kind::kDbInstanceSecret, id).value_or(Json::object())};
      if (auto p = ctx->store->Get(kind::kDbServer, id + "/" + st.value("Primary", ""))) t.primary = *p;
      if (auto s = ctx->store->Get(kind::kDbServer, id + "/" + st.value("Standby", ""))) t.standby = *s;
      if (t.primary.is_object()) targets.push_back(std::move(t));
    }
  }
  const long ticks_per_second = sysconf(_SC_CLK_TCK);
  for (const auto& t : targets) {
    const std::string id = t.inst["DBInstanceIdentifier"];
    auto sample = [&](const char* name, double value, const char* unit) {
      out->push_back({"AWS/RDS", name, {{"DBInstanceIdentifier", id}}, value, unit, now});
    };
    const ProcessId proc = RecordedProcess(t.primary);
    if (auto ticks = proc.pid ? CpuTicks(proc.pid) : std::nullopt) {
      std::lock_guard lock(cpu_mu);
      CpuReading& last = last_cpu[id];
      if (last.pid == proc.pid && now > last.at_millis && *ticks >= last.ticks) {
        const auto* cls = FindDbInstanceClass(t.inst.value("DBInstanceClass", ""));
        const double vcpus = cls ? cls->vcpus : 2;
        const double seconds = double(*ticks - last.ticks) / double(ticks_per_second);
        sample("CPUUtilization", 100.0 * seconds / ((now - last.at_millis) / 1000.0) / vcpus, "Percent");
      }
      last = {proc.pid, *ticks, now};
    }
    const std::string data = DbInstanceDir(*ctx, id) + "/" + t.primary.value("Name", "") + "/data";
    const double allocated = double(t.inst.value("AllocatedStorage", 20)) * 1024 * 1024 * 1024;
    sample("FreeStorageSpace", std::max(0.0, allocated - double(TreeBytes(data))), "Bytes");

    Connection::Target target;
    target.port = t.inst.value("Port", 3306);
    target.user = kAdminUser;
    target.password = t.secret.value("AdminPassword", "");
    target.timeout_s = 1;
    // Only a server that greets is asked (a hung one would hold the collector for whole seconds).
    target.host = t.primary.value("Address", "");
    if (ProbeGreeting(target.host, target.port, kProbeTimeoutMs)) {
      if (auto c = Connection::Open(target); c.ok()) {
        if (auto v = (*c)->Query("SHOW GLOBAL STATUS LIKE 'Threads_connected'"); v.ok() && !v->empty()) {
          sample("DatabaseConnections", std::stod((*v)[0]["Value"]), "Count");
        }
      }
    }
    // A read replica's lag behind its source (rds/db_replicas.h: heartbeat-based, else Seconds_Behind_Master).
    target.host = t.primary.value("Address", "");
    if (t.inst.contains("ReadReplica") && ProbeGreeting(target.host, target.port, kProbeTimeoutMs)) {
      if (auto c = Connection::Open(target); c.ok()) {
        if (auto lag = ReadReplicaLag(**c, ctx->clock->NowMillis(), nullptr); lag.ok() && lag->has_value())
          sample("ReplicaLag", **lag, "Seconds");
      }
    }
    target.host = t.standby.is_object() ? t.standby.value("Address", "") : "";
    if (!target.host.empty() && t.standby.value("Ready", false) &&
        ProbeGreeting(target.host, target.port, kProbeTimeoutMs)) {
      if (auto c = Connection::Open(target); c.ok()) {
        if (auto r = ReadReplicaState(**c); r.ok() && r->has_value() && (*r)->seconds_behind >= 0) {
          sample("ReplicaLag", double((*r)->seconds_behind), "Seconds");
        }
      }
    }
  }
}

}  // namespace autopipe::rds

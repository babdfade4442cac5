#include "partition/partition.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "common/ids.h"
#include "process/launcher.h"

namespace autopipe::partition {
namespace {

namespace fs = std::filesystem;
using JsonDoc = nlohmann::ordered_json;

int64_t NowMillis() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

Status WriteAtomically(const fs::path& path, const std::string& content, mode_t mode) {
  fs::path tmp = path.string() + ".tmp." + std::to_string(::getpid());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) return Status::Internal("cannot write " + tmp.string());
  bool ok = ::write(fd, content.data(), content.size()) == static_cast<ssize_t>(content.size());
  ok = ok && ::fchmod(fd, mode) == 0 && ::fsync(fd) == 0;
  ::close(fd);
  if (!ok || ::rename(tmp.c_str(), path.c_str()) != 0) {
    ::unlink(tmp.c_str());
    return Status::Internal("cannot write " + path.string());
  }
  return Status::Ok();
}

std::optional<std::string> ReadFile(const fs::path& path) {
  std::ifstream in(path);
  if (!in) return std::nullopt;
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// An exclusive flock on DIR/partition.lock for the scope's lifetime.
class PartitionLock {
 public:
  explicit PartitionLock(const fs::path& dir) {
    fd_ = ::open((dir / "partition.lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd_ >= 0) ::flock(fd_, LOCK_EX);
  }
  ~PartitionLock() {
    if (fd_ >= 0) ::close(fd_);
  }
  bool ok() const { return fd_ >= 0; }

 private:
  int fd_ = -1;
};

Status EnsureDir(const fs::path& dir) {
  std::error_code ec;
  fs::create_directories(dir / "regions", ec);
  if (ec) return Status::Internal("cannot create partition dir " + dir.string() + ": " + ec.message());
  ::chmod(dir.c_str(), 0700);
  return Status::Ok();
}

bool Alive(int64_t pid, uint64_t start_time) {
  if (pid <= 0) return false;
  auto now = ProcessStartTime(static_cast<pid_t>(pid));
  return now && *now == start_time;
}

fs::path RegionPath(const fs::path& dir, const std::string& region) { return dir / "regions" / (region + ".json"); }

JsonDoc ToJson(const RegionEntry& e) {
  return JsonDoc{{"Region", e.region},       {"Endpoint", e.endpoint}, {"AddressBlock", e.address_block},
                 {"DataDir", e.data_dir},    {"Pid", e.pid},           {"PidStartTime", e.pid_start_time},
                 {"StartedAt", e.started_at_millis}, {"State", e.state}};
}

std::optional<RegionEntry> ParseRegion(const std::string& text) {
  JsonDoc j = JsonDoc::parse(text, nullptr, false);
  if (!j.is_object() || !j.contains("Region") || !j["Region"].is_string()) return std::nullopt;
  RegionEntry e;
  e.region = j.value("Region", "");
  e.endpoint = j.value("Endpoint", "");
  e.address_block = j.value("AddressBlock", "");
  e.data_dir = j.value("DataDir", "");
  e.pid = j.value("Pid", int64_t{0});
  e.pid_start_time = j.value("PidStartTime", uint64_t{0});
  e.started_at_millis = j.value("StartedAt", int64_t{0});
  e.state = j.value("State", "running");
  e.alive = e.state != "stopped" && Alive(e.pid, e.pid_start_time);
  return e;
}

bool ValidBlock(const std::string& block) {
  if (block.rfind("127.", 0) != 0) return false;
  std::string n = block.substr(4);
  if (n.empty() || n.size() > 3 || n.find_first_not_of("0123456789") != std::string::npos) return false;
  int v = std::stoi(n);
  return v >= 1 && v <= 254;
}

}  // namespace

std::string CredentialsText(const KeyPair& key) {
  return "[default]\naws_access_key_id = " + key.access_key_id + "\naws_secret_access_key = " +
         key.secret_access_key + "\n";
}

Result<KeyPair> EnsureKeyPair(const std::string& dir_s) {
  fs::path dir = fs::absolute(dir_s);
  AP_RETURN_IF_ERROR(EnsureDir(dir));
  PartitionLock lock(dir);
  if (!lock.ok()) return Status::Internal("cannot lock partition " + dir.string());
  fs::path creds = dir / "credentials";
  if (!fs::exists(creds)) {
    KeyPair k{NewAccessKeyId(), NewSecretAccessKey()};
    AP_RETURN_IF_ERROR(WriteAtomically(creds, CredentialsText(k), 0600));
  }
  ::chmod(creds.c_str(), 0600);
  auto text = ReadFile(creds);
  if (!text) return Status::Internal("cannot read " + creds.string());
  KeyPair k;
  std::istringstream in(*text);
  std::string line;
  auto value_of = [](const std::string& l) {
    size_t eq = l.find('=');
    std::string v = eq == std::string::npos ? "" : l.substr(eq + 1);
    v.erase(0, v.find_first_not_of(" \t"));
    v.erase(v.find_last_not_of(" \t\r") + 1);
    return v;
  };
  while (std::getline(in, line)) {
    if (line.rfind("aws_access_key_id", 0) == 0 && k.access_key_id.empty()) k.access_key_id = value_of(line);
    if (line.rfind("aws_secret_access_key", 0) == 0 && k.secret_access_key.empty()) {
      k.secret_access_key = value_of(line);
    }
  }
  if (k.access_key_id.empty() || k.secret_access_key.empty()) {
    return Status::Internal(creds.string() + " holds no key pair: restore it or delete it to make a new one");
  }
  return k;
}

Result<std::string> ClaimAddressBlock(const std::string& dir_s, const std::string& region,
                                      const std::string& requested, const std::string& default_block) {
  fs::path dir = fs::absolute(dir_s);
  AP_RETURN_IF_ERROR(EnsureDir(dir));
  PartitionLock lock(dir);
  if (!lock.ok()) return Status::Internal("cannot lock partition " + dir.string());
  std::set<std::string> taken;
  std::optional<RegionEntry> own;
  for (const auto& e : ListRegions(dir.string())) {
    if (e.region == region) {
      own = e;
      continue;
    }
    taken.insert(e.address_block);
  }
  if (own && own->alive && own->pid != ::getpid()) {
    return Status(409, "RegionBusy", "region " + region + " already runs in partition " + dir.string() +
                                         " (pid " + std::to_string(own->pid) + ")");
  }
  std::string block;
  if (!requested.empty()) {
    if (taken.count(requested)) {
      return Status::InvalidParameterValue("address block " + requested + " is held by another region of partition " +
                                           dir.string());
    }
    block = requested;
  } else if (own && ValidBlock(own->address_block) && !taken.count(own->address_block)) {
    block = own->address_block;
  } else if (!taken.count(default_block)) {
    block = default_block;
  } else {
    for (int n = 60; n < 200 && block.empty(); ++n) {
      std::string b = "127." + std::to_string(n);
      if (!taken.count(b)) block = b;
    }
    if (block.empty()) return Status::Internal("no free address block in partition " + dir.string());
  }
  RegionEntry e = own.value_or(RegionEntry{});
  e.region = region;
  e.address_block = block;
  e.pid = ::getpid();
  e.pid_start_time = ProcessStartTime(::getpid()).value_or(0);
  e.started_at_millis = NowMillis();
  e.state = "starting";
  AP_RETURN_IF_ERROR(WriteAtomically(RegionPath(dir, region), ToJson(e).dump(2) + "\n", 0644));
  return block;
}

Status RegisterRegion(const std::string& dir_s, RegionEntry entry) {
  fs::path dir = fs::absolute(dir_s);
  AP_RETURN_IF_ERROR(EnsureDir(dir));
  entry.pid = ::getpid();
  entry.pid_start_time = ProcessStartTime(::getpid()).value_or(0);
  if (entry.started_at_millis == 0) entry.started_at_millis = NowMillis();
  entry.state = "running";
  PartitionLock lock(dir);
  return WriteAtomically(RegionPath(dir, entry.region), ToJson(entry).dump(2) + "\n", 0644);
}

Status MarkRegionStopped(const std::string& dir_s, const std::string& region) {
  fs::path dir = fs::absolute(dir_s);
  PartitionLock lock(dir);
  auto text = ReadFile(RegionPath(dir, region));
  if (!text) return Status::Ok();
  auto e = ParseRegion(*text);
  if (!e || e->pid != ::getpid()) return Status::Ok();  // another process owns the entry now
  e->state = "stopped";
  return WriteAtomically(RegionPath(dir, region), ToJson(*e).dump(2) + "\n", 0644);
}

std::vector<RegionEntry> ListRegions(const std::string& dir_s) {
  std::vector<RegionEntry> out;
  std::error_code ec;
  fs::path regions = fs::absolute(dir_s) / "regions";
  for (const auto& f : fs::directory_iterator(regions, ec)) {
    if (f.path().extension() != ".json") continue;
    auto text = ReadFile(f.path());
    if (!text) continue;
    if (auto e = ParseRegion(*text)) out.push_back(std::move(*e));
  }
  std::sort(out.begin(), out.end(), [](const RegionEntry& a, const RegionEntry& b) { return a.region < b.region; });
  return out;
}

std::optional<RegionEntry> FindRegion(const std::string& dir, const std::string& region) {
  auto text = ReadFile(RegionPath(fs::absolute(dir), region));
  if (!text) return std::nullopt;
  return ParseRegion(*text);
}

Status RegisterGlobal(const std::string& dir_s, GlobalEntry e) {
  fs::path dir = fs::absolute(dir_s);
  AP_RETURN_IF_ERROR(EnsureDir(dir));
  e.pid = ::getpid();
  e.pid_start_time = ProcessStartTime(::getpid()).value_or(0);
  if (e.started_at_millis == 0) e.started_at_millis = NowMillis();
  JsonDoc j{{"Endpoint", e.endpoint}, {"DnsAddress", e.dns_address},       {"DataDir", e.data_dir},
            {"Pid", e.pid},           {"PidStartTime", e.pid_start_time}, {"StartedAt", e.started_at_millis}};
  return WriteAtomically(dir / "global.json", j.dump(2) + "\n", 0644);
}

std::optional<GlobalEntry> ReadGlobal(const std::string& dir) {
  auto text = ReadFile(fs::absolute(dir) / "global.json");
  if (!text) return std::nullopt;
  JsonDoc j = JsonDoc::parse(*text, nullptr, false);
  if (!j.is_object()) return std::nullopt;
  GlobalEntry e;
  e.endpoint = j.value("Endpoint", "");
  e.dns_address = j.value("DnsAddress", "");
  e.data_dir = j.value("DataDir", "");
  e.pid = j.value("Pid", int64_t{0});
  e.pid_start_time = j.value("PidStartTime", uint64_t{0});
  e.started_at_millis = j.value("StartedAt", int64_t{0});
  e.alive = Alive(e.pid, e.pid_start_time);
  return e;
}

}  // namespace autopipe::partition

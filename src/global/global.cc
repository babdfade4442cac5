#include "global/global.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <condition_variable>
#include <filesystem>
#include <iostream>
#include <mutex>
#include <thread>

#include "api/http_server.h"
#include "common/clock.h"
#include "common/data_dir.h"
#include "common/log.h"
#include "dns/dns_server.h"
#include "partition/partition.h"
#include "process/launcher.h"
#include "route53/alias.h"
#include "route53/health_checker.h"
#include "route53/route53_service.h"

namespace autopipe {
namespace {

namespace fs = std::filesystem;

Status WriteFileAtomically(const fs::path& path, const std::string& content, mode_t mode) {
  fs::path tmp = path.string() + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) return Status::Internal("cannot write " + tmp.string());
  bool ok = ::write(fd, content.data(), content.size()) == static_cast<ssize_t>(content.size());
  ok = ok && ::fchmod(fd, mode) == 0 && ::fsync(fd) == 0;
  ::close(fd);
  if (!ok || ::rename(tmp.c_str(), path.c_str()) != 0) return Status::Internal("cannot write " + path.string());
  return Status::Ok();
}

Result<std::pair<std::string, int>> SplitHostPort(const std::string& s, const char* flag) {
  size_t colon = s.rfind(':');
  if (colon == std::string::npos) return Status::InvalidParameterValue(std::string(flag) + " must be HOST:PORT");
  return std::make_pair(s.substr(0, colon), std::atoi(s.c_str() + colon + 1));
}

// The DNS view of the store: zones with their record sets, health verdicts and alias targets resolved.
std::vector<dns::ZoneInput> BuildZones(const Store& store, const route53::HealthChecker& health,
                                       const route53::AliasResolver& aliases, std::vector<std::string>* alias_targets) {
  std::vector<dns::ZoneInput> zones;
  auto docs = store.List(route53::kind::kZone);
  // zone id -> its record sets, for aliases to records of our own zones.
  std::map<std::string, const Json*> by_id;
  for (const auto& z : docs) by_id[(*z).value("Id", "")] = z.get();
  for (const auto& z : docs) {
    dns::ZoneInput zi;
    zi.apex = (*z).value("Name", "");
    for (const auto& s : (*z)["RecordSets"]) {
      dns::RecordSetInput in;
      in.name = s.value("Name", "");
      in.type = s.value("Type", "");
      in.ttl = static_cast<uint32_t>(s.value("TTL", int64_t{300}));
      if (s.contains("Weight")) {
        in.routing = dns::Routing::kWeighted;
        in.weight = s["Weight"].get<int64_t>();
      } else if (s.contains("Failover")) {
        in.routing = dns::Routing::kFailover;
        in.primary = s["Failover"] == "PRIMARY";
      }
      in.healthy = !s.contains("HealthCheckId") || health.Healthy(s["HealthCheckId"].get<std::string>());
      if (s.contains("ResourceRecords")) {
        for (const auto& v : s["ResourceRecords"]) in.values.push_back(v.get<std::string>());
      } else if (s.contains("AliasTarget")) {
        const Json& a = s["AliasTarget"];
        const std::string target = a.value("DNSName", "");
        bool target_healthy = true;
        auto own = by_id.find(a.value("HostedZoneId", ""));
        if (own != by_id.end()) {
          // An alias to a record of one of our zones: its values and TTL (simple sets only).
          for (const auto& t : (*own->second)["RecordSets"]) {
            if (t.value("Name", "") == target && t.value("Type", "") == in.type && t.contains("ResourceRecords")) {
              for (const auto& v : t["ResourceRecords"]) in.values.push_back(v.get<std::string>());
              in.ttl = static_cast<uint32_t>(t.value("TTL", int64_t{300}));
              break;
            }
          }
        } else {
          alias_targets->push_back(target);
          auto st = aliases.Lookup(target);
          in.ttl = 60;  // an ELB alias answers with ELB's own TTL
          if (st && in.type == "A") in.values = st->addresses;
          target_healthy = st && st->exists && st->healthy;
        }
        if (a.value("EvaluateTargetHealth", false)) in.healthy = in.healthy && target_healthy;
      }
      zi.sets.push_back(std::move(in));
    }
    zones.push_back(std::move(zi));
  }
  return zones;
}

class GlobalService {
 public:
  ~GlobalService() { Stop(); }

  Status Start(const GlobalOptions& opts) {
    dir_ = fs::absolute(opts.data_dir);
    AP_ASSIGN_OR_RETURN(lock_fd_, TakeDataDir(dir_, "global.lock",
                                              Status(409, "GlobalBusy",
                                                     "another autopipe global is running on " + dir_.string())));
    partition_ = opts.partition.empty() ? dir_.string() : fs::absolute(opts.partition).string();
    auto key = partition::EnsureKeyPair(partition_);
    if (!key.ok()) return key.status();
    key_ = *key;
    if (partition_ != dir_.string()) {
      AP_RETURN_IF_ERROR(WriteFileAtomically(dir_ / "credentials", partition::CredentialsText(key_), 0600));
    }
    AP_RETURN_IF_ERROR(
        WriteFileAtomically(dir_ / "config", "[default]\nregion = us-east-1\noutput = json\n", 0644));

    auto store = OpenSqliteStore((dir_ / "state.db").string());
    if (!store.ok()) return store.status();
    store_ = std::move(*store);

    aliases_ = std::make_unique<route53::AliasResolver>(partition_, key_);
    health_ = std::make_unique<route53::HealthChecker>([this] { MarkDirty(); });
    route53::Route53Deps deps;
    deps.store = store_.get();
    deps.clock = &clock_;
    const partition::KeyPair k = key_;
    deps.secrets = [k](const std::string& id) -> std::optional<std::string> {
      if (id == k.access_key_id) return k.secret_access_key;
      return std::nullopt;
    };
    deps.health = health_.get();
    deps.check_alias = [this](const Json& alias, const std::string& type) -> std::string {
      const std::string zone_id = alias.value("HostedZoneId", "");
      if (auto z = store_->Get(route53::kind::kZone, zone_id)) {
        for (const auto& s : (*z)["RecordSets"]) {
          if (s.value("Name", "") == alias.value("DNSName", "") && s.value("Type", "") == type) return "";
        }
        return "Tried to create an alias that targets " + alias.value("DNSName", "") + ", type " + type +
               " in zone " + zone_id + ", but the alias target name does not lie within the target zone";
      }
      return aliases_->Check(alias, type);
    };
    deps.dns_applied_revision = [this] { return applied_revision_.load(); };
    deps.write_lock = &write_mu_;
    api_ = std::make_unique<route53::Route53Api>(deps);

    AP_ASSIGN_OR_RETURN(auto dns_hp, SplitHostPort(opts.dns_listen, "--dns-listen"));
    dns_ = std::make_unique<dns::DnsServer>();
    AP_ASSIGN_OR_RETURN(int dns_port, dns_->Bind(dns_hp.first, dns_hp.second));
    dns_address_ = dns_hp.first + ":" + std::to_string(dns_port);
    Rebuild();  // the zones as stored, before the first query
    dns_->Start();
    health_->Sync(api_->HealthChecks());
    health_->Start();
    subscription_ = store_->Subscribe([this](const std::vector<StoreChange>&) { MarkDirty(); });
    rebuilder_ = std::thread([this] { RebuildMain(); });

    AP_ASSIGN_OR_RETURN(auto hp, SplitHostPort(opts.listen, "--listen"));
    HttpServerOptions http_opts;
    http_opts.methods = {"GET", "POST", "DELETE"};
    route53::Route53Api* api = api_.get();
    http_ = std::make_unique<HttpServer>([api](const SigV4Request& r) { return api->Handle(r); },
                                         [](const SigV4Request& r, const Status& e) {
                                           return route53::Route53Api::Refuse(r, e);
                                         },
                                         http_opts);
    AP_ASSIGN_OR_RETURN(int port, http_->Bind(hp.first, hp.second));
    endpoint_ = "http://" + hp.first + ":" + std::to_string(port);
    http_->Start();

    AP_RETURN_IF_ERROR(WriteFileAtomically(dir_ / "dns-address", dns_address_ + "\n", 0644));
    AP_RETURN_IF_ERROR(WriteFileAtomically(dir_ / "endpoint", endpoint_ + "\n", 0644));
    auto self_start = ProcessStartTime(::getpid()).value_or(0);
    AP_RETURN_IF_ERROR(WriteFileAtomically(
        dir_ / "server.pid", std::to_string(::getpid()) + " " + std::to_string(self_start) + "\n", 0644));
    partition::GlobalEntry entry;
    entry.endpoint = endpoint_;
    entry.dns_address = dns_address_;
    entry.data_dir = dir_.string();
    AP_RETURN_IF_ERROR(partition::RegisterGlobal(partition_, entry));
    spdlog::info("global: endpoint={} dns={} data_dir={} partition={}", endpoint_, dns_address_, dir_.string(),
                 partition_);
    return Status::Ok();
  }

  void Stop() {
    if (http_) http_->Stop();
    if (store_ && subscription_) store_->Unsubscribe(subscription_);
    subscription_ = 0;
    {
      std::lock_guard lock(dirty_mu_);
      stopping_ = true;
    }
    dirty_cv_.notify_all();
    if (rebuilder_.joinable()) rebuilder_.join();
    if (health_) health_->Stop();
    if (dns_) dns_->Stop();
    if (!endpoint_.empty()) {
      std::error_code ec;
      fs::remove(dir_ / "endpoint", ec);
      fs::remove(dir_ / "server.pid", ec);
      endpoint_.clear();
    }
  }

  const std::string& endpoint() const { return endpoint_; }
  const std::string& dns_address() const { return dns_address_; }

 private:
  void MarkDirty() {
    {
      std::lock_guard lock(dirty_mu_);
      dirty_ = true;
    }
    dirty_cv_.notify_all();
  }

  // Reads the store, compiles the zones and swaps them into the DNS server (no lock held but its own).
  void Rebuild() {
    const uint64_t revision = store_->Revision();
    std::vector<std::string> targets;
    auto zones = BuildZones(*store_, *health_, *aliases_, &targets);
    std::vector<std::string> warnings;
    dns_->SetZones(dns::Compile(zones, &warnings));
    for (const auto& w : warnings) spdlog::warn("dns: record skipped: {}", w);
    applied_revision_.store(revision);
    alias_targets_ = std::move(targets);
  }

  void RebuildMain() {
    auto last_alias_refresh = std::chrono::steady_clock::now();
    std::unique_lock lock(dirty_mu_);
    while (!stopping_) {
      dirty_cv_.wait_for(lock, std::chrono::milliseconds(500), [this] { return dirty_ || stopping_; });
      if (stopping_) return;
      const bool dirty = dirty_;
      dirty_ = false;
      lock.unlock();
      bool refresh = std::chrono::steady_clock::now() - last_alias_refresh > std::chrono::seconds(2);
      if (refresh) {
        aliases_->Refresh(alias_targets_);
        last_alias_refresh = std::chrono::steady_clock::now();
      }
      if (dirty || refresh) {
        health_->Sync(api_->HealthChecks());
        Rebuild();
      }
      lock.lock();
    }
  }

  fs::path dir_;
  std::string partition_;
  int lock_fd_ = -1;
  partition::KeyPair key_;
  SystemClock clock_;
  std::mutex write_mu_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<route53::AliasResolver> aliases_;
  std::unique_ptr<route53::HealthChecker> health_;
  std::unique_ptr<route53::Route53Api> api_;
  std::unique_ptr<dns::DnsServer> dns_;
  std::unique_ptr<HttpServer> http_;
  std::string endpoint_;
  std::string dns_address_;
  uint64_t subscription_ = 0;
  std::atomic<uint64_t> applied_revision_{0};
  std::vector<std::string> alias_targets_;  // the rebuilder's thread only (and Start, before it runs)

  std::mutex dirty_mu_;
  std::condition_variable dirty_cv_;
  bool dirty_ = false;      // guarded by dirty_mu_
  bool stopping_ = false;   // guarded by dirty_mu_
  std::thread rebuilder_;
};

}  // namespace

int RunGlobal(const GlobalOptions& opts) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  ::signal(SIGPIPE, SIG_IGN);
  std::error_code ec;
  fs::create_directories(opts.data_dir, ec);
  InitLogging(opts.log_to_stderr ? "" : (fs::path(opts.data_dir) / "server.log").string(), opts.log_level);
  GlobalService service;
  Status st = service.Start(opts);
  if (!st.ok()) {
    std::cerr << "autopipe global: " << st.message() << "\n";
    return 1;
  }
  std::cout << "autopipe: global service (Route 53) serving at " << service.endpoint() << ", DNS at "
            << service.dns_address() << std::endl;
  int sig = 0;
  sigwait(&set, &sig);
  spdlog::info("global stopping on signal {}", sig);
  service.Stop();
  return 0;
}

}  // namespace autopipe

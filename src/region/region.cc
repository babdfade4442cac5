#include "region/region.h"

#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <set>
#include <sstream>
#include <thread>

#include "api/api_server.h"
#include "api/protocol.h"
#include "autoscaling/groups.h"
#include "common/data_dir.h"
#include "common/ids.h"
#include "common/log.h"
#include "ec2/instances.h"
#include "elasticache/seed.h"
#include "partition/partition.h"
#include "partition/standby.h"
#include "process/recorded_process.h"
#include "region/controller.h"
#include "region/module.h"

namespace autopipe {
namespace {

namespace fs = std::filesystem;

// The resync period: everything that matters wakes the controllers sooner (API writes, process exits).
constexpr auto kControllerPeriod = std::chrono::milliseconds(1000);

// Writes a file readable by the owner only, atomically (write to a temp file, then rename).
Status WritePrivateFile(const fs::path& path, const std::string& content, mode_t mode = 0600) {
  fs::path tmp = path.string() + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) return Status::Internal("cannot write " + tmp.string());
  bool ok = ::write(fd, content.data(), content.size()) == static_cast<ssize_t>(content.size());
  ok = ok && ::fchmod(fd, mode) == 0 && ::fsync(fd) == 0;
  ::close(fd);
  if (!ok || ::rename(tmp.c_str(), path.c_str()) != 0) return Status::Internal("cannot write " + path.string());
  return Status::Ok();
}

// access key id -> secret, from the AWS shared-credentials file.
std::map<std::string, std::string> ReadCredentials(const fs::path& path) {
  std::map<std::string, std::string> keys;
  std::ifstream in(path);
  std::string line, key_id;
  auto value_of = [](const std::string& l) {
    size_t eq = l.find('=');
    std::string v = eq == std::string::npos ? "" : l.substr(eq + 1);
    v.erase(0, v.find_first_not_of(" \t"));
    v.erase(v.find_last_not_of(" \t\r") + 1);
    return v;
  };
  while (std::getline(in, line)) {
    if (line.rfind("[", 0) == 0) key_id.clear();
    if (line.rfind("aws_access_key_id", 0) == 0) key_id = value_of(line);
    if (line.rfind("aws_secret_access_key", 0) == 0 && !key_id.empty()) keys[key_id] = value_of(line);
  }
  return keys;
}

// With a partition key pair: DIR/credentials names it as [default]; a key this region made before it joined the
// partition stays there under [autopipe-region] (and is still accepted), so its earlier clients keep working.
Status EnsureCredentials(const fs::path& dir, const std::string& region,
                         const std::optional<partition::KeyPair>& shared = std::nullopt) {
  fs::path creds = dir / "credentials";
  if (shared) {
    std::string body = partition::CredentialsText(*shared);
    for (const auto& [key_id, secret] : ReadCredentials(creds)) {
      if (key_id == shared->access_key_id) continue;
      body += "\n[autopipe-region]\naws_access_key_id = " + key_id + "\naws_secret_access_key = " + secret + "\n";
      break;
    }
    AP_RETURN_IF_ERROR(WritePrivateFile(creds, body));
  } else if (!fs::exists(creds)) {
    std::string body = "[default]\naws_access_key_id = " + NewAccessKeyId() +
                       "\naws_secret_access_key = " + NewSecretAccessKey() + "\n";
    AP_RETURN_IF_ERROR(WritePrivateFile(creds, body));
  }
  ::chmod(creds.c_str(), 0600);
  return WritePrivateFile(dir / "config", "[default]\nregion = " + region + "\noutput = json\n", 0644);
}

std::string SelfExe() {
  std::error_code ec;
  auto p = fs::read_symlink("/proc/self/exe", ec);
  return ec ? "autopipe" : p.string();
}

struct PidFile {
  pid_t pid = 0;
  uint64_t start_time = 0;
};

std::optional<PidFile> ReadPidFile(const fs::path& path) {
  std::ifstream in(path);
  PidFile f;
  if (!(in >> f.pid >> f.start_time)) return std::nullopt;
  return f;
}

class RegionImpl : public Region {
 public:
  ~RegionImpl() override {
    Stop();
    if (lock_fd_ >= 0) ::close(lock_fd_);
  }

  Status Init(const RegionOptions& opts) {
    dir_ = fs::absolute(opts.data_dir);
    AP_ASSIGN_OR_RETURN(lock_fd_, TakeDataDir(dir_, "server.lock",
                                              Status(409, "RegionBusy",
                                                     "another autopipe server is running on " + dir_.string())));
    std::string address_block =
        opts.address_block.empty() ? Catalog::DefaultAddressBlock(opts.region) : opts.address_block;
    std::optional<partition::KeyPair> shared_key;
    if (!opts.partition.empty()) {
      auto key = partition::EnsureKeyPair(opts.partition);
      if (!key.ok()) return key.status();
      shared_key = *key;
      auto block = partition::ClaimAddressBlock(opts.partition, opts.region, opts.address_block,
                                                Catalog::DefaultAddressBlock(opts.region));
      if (!block.ok()) return block.status();
      address_block = *block;
      partition_ = fs::absolute(opts.partition).string();
    }
    AP_RETURN_IF_ERROR(EnsureCredentials(dir_, opts.region, shared_key));
    secrets_ = ReadCredentials(dir_ / "credentials");

    auto store = OpenSqliteStore((dir_ / "state.db").string());
    if (!store.ok()) return store.status();
    store_ = std::move(*store);

    catalog_ = std::make_unique<Catalog>(opts.region, address_block);
    launcher_ = std::make_unique<LocalProcessLauncher>();
    ctx_.catalog = catalog_.get();
    ctx_.store = store_.get();
    ctx_.clock = &clock_;
    ctx_.launcher = launcher_.get();
    ctx_.data_dir = dir_.string();
    ctx_.self_exe = SelfExe();
    ctx_.instance_identities = InstanceIdentitiesAvailable();
    if (!ctx_.instance_identities) spdlog::warn("{}", kSharedIdentityWarning);
    ctx_.smtp_relay = opts.smtp_relay;
    ctx_.mu = &mu_;
    if (shared_key) {
      ctx_.partition_dir = partition_;
      ctx_.partition_access_key_id = shared_key->access_key_id;
      ctx_.partition_secret_access_key = shared_key->secret_access_key;
    }
    runtime_ = std::make_unique<ControllerRuntime>(kControllerPeriod);
    // A write's commit already reaches the controllers that watch what it changed (the store subscription
    // below); queueing every key of every controller after each API write as well would be work done twice.
    ctx_.wake = [] {};

    auto secrets = secrets_;
    router_ = std::make_unique<ApiRouter>(
        opts.region,
        [secrets](const std::string& key) -> std::optional<std::string> {
          auto it = secrets.find(key);
          if (it == secrets.end()) return std::nullopt;
          return it->second;
        },
        &clock_);
    WireModules(&ctx_, router_.get(), runtime_.get());

    size_t colon = opts.listen.rfind(':');
    if (colon == std::string::npos) return Status::InvalidParameterValue("--listen must be HOST:PORT");
    std::string host = opts.listen.substr(0, colon);
    int port = std::atoi(opts.listen.c_str() + colon + 1);
    api_ = std::make_unique<ApiServer>(router_.get());
    auto bound = api_->Bind(host, port);
    if (!bound.ok()) return bound.status();
    endpoint_ = "http://" + host + ":" + std::to_string(*bound);
    ctx_.endpoint = endpoint_;  // before any controller runs or request is served

    // A server killed between a fork and its commit left a process no document records: find it first.
    AdoptUnrecordedProcesses(*store_, *launcher_, clock_.NowMillis());
    // Before the API answers: one pass observes which recorded processes still run (re-adoption), the next lets
    // the groups act on that (replacing what died while the server was away).
    runtime_->RunPass();
    runtime_->RunPass();
    // From here on every change reaches the controllers as it happens: store commits queue the keys that
    // watch them, process exits queue everything (a watched process is some controller's business).
    store_subscription_ = store_->Subscribe([runtime = runtime_.get()](const std::vector<StoreChange>& changes) {
      for (const auto& c : changes) runtime->OnStoreChange(c.kind, c.id);
    });
    launcher_->SetExitCallback([runtime = runtime_.get()] { runtime->EnqueueAll(); });
    runtime_->Start();
    api_->Start();
    auto self_start = ProcessStartTime(::getpid()).value_or(0);
    AP_RETURN_IF_ERROR(WritePrivateFile(dir_ / "server.pid",
                                        std::to_string(::getpid()) + " " + std::to_string(self_start) + "\n", 0644));
    AP_RETURN_IF_ERROR(WritePrivateFile(dir_ / "endpoint", endpoint_ + "\n", 0644));
    if (!partition_.empty()) {
      partition::RegionEntry entry;
      entry.region = opts.region;
      entry.endpoint = endpoint_;
      entry.address_block = catalog_->address_block();
      entry.data_dir = dir_.string();
      AP_RETURN_IF_ERROR(partition::RegisterRegion(partition_, entry));
    }
    spdlog::info("region={} endpoint={} data_dir={} address_block={}", opts.region, endpoint_, dir_.string(),
                 catalog_->address_block());
    return Status::Ok();
  }

  // In the reverse order of Init: nothing new comes in (API), nothing calls into the runtime any more (exit
  // callback: SetExitCallback waits out a callback in progress; store notifications), then the controllers stop.
  void Stop() override {
    if (api_) api_->Stop();
    if (launcher_) launcher_->SetExitCallback(nullptr);
    if (store_ && store_subscription_) store_->Unsubscribe(store_subscription_);
    store_subscription_ = 0;
    if (runtime_) runtime_->Stop();
    std::error_code ec;
    if (!endpoint_.empty()) {
      fs::remove(dir_ / "endpoint", ec);
      fs::remove(dir_ / "server.pid", ec);
      if (!partition_.empty()) {
        Status st = partition::MarkRegionStopped(partition_, catalog_->region());
        if (!st.ok()) spdlog::warn("partition entry: {}", st.ToString());
        partition_.clear();  // once
      }
    }
  }

  const std::string& endpoint() const override { return endpoint_; }
  const ApiRouter& router() const override { return *router_; }

  std::optional<Json> GetDocument(const std::string& kind, const std::string& id) const override {
    return store_->Get(kind, id);
  }

  int InServiceCount(const std::string& name) const override {
    std::lock_guard lock(mu_);
    auto g = store_->Get(kind::kAutoScalingGroup, name);
    if (!g) return 0;
    int n = 0;
    for (const auto& [id, m] : (*g)["Instances"].items()) {
      n += m["LifecycleState"] == lifecycle::kInService && m["HealthStatus"] == "Healthy";
    }
    return n;
  }

  std::string DescribeInstancesText() const override {
    std::lock_guard lock(mu_);
    std::ostringstream out;
    for (const auto& doc : store_->List(kind::kInstance)) {
      const Json& inst = *doc;
      if (!IsLiveState(inst["State"])) continue;
      out << "  " << inst["InstanceId"].get<std::string>() << "  " << inst["AvailabilityZone"].get<std::string>()
          << "  " << inst["State"].get<std::string>() << "  http://" << inst["PrivateIpAddress"].get<std::string>()
          << "/\n";
    }
    return out.str();
  }

 private:
  fs::path dir_;
  std::string partition_;  // absolute; empty: none
  int lock_fd_ = -1;
  std::map<std::string, std::string> secrets_;
  SystemClock clock_;
  mutable std::mutex mu_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<Catalog> catalog_;
  std::unique_ptr<LocalProcessLauncher> launcher_;
  RegionContext ctx_;
  std::unique_ptr<ControllerRuntime> runtime_;
  uint64_t store_subscription_ = 0;
  std::unique_ptr<ApiRouter> router_;
  std::unique_ptr<ApiServer> api_;
  std::string endpoint_;
};

// Blocks SIGINT/SIGTERM in every thread created after this call and returns the set for sigwait.
sigset_t BlockStopSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  ::signal(SIGPIPE, SIG_IGN);
  return set;
}

void SetUpLogging(const RegionOptions& opts) {
  std::error_code ec;
  fs::create_directories(opts.data_dir, ec);
  InitLogging(opts.log_to_stderr ? "" : (fs::path(opts.data_dir) / "server.log").string(), opts.log_level);
}

bool WaitGone(const std::function<bool()>& alive, std::chrono::milliseconds limit,
              std::chrono::milliseconds poll = std::chrono::milliseconds(20)) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (alive()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(poll);
  }
  return true;
}

}  // namespace

// Stops every process the region's modules record (each module's ProcessKinds): SIGTERM to every process group
// at once, SIGKILL after 5 s to what is left, then each kind's on_down leaves its documents as `down` should
// (instances: stopped by the user, so the next start replaces them without counting crashes).
void StopRegionProcesses(Store& store, ProcessLauncher& launcher, int64_t now) {
  std::vector<ProcessId> procs;
  std::vector<StoreWrite> writes;
  // Processes started by a server that died before recording them carry their document's token.
  std::set<std::string> tokens;
  for (const auto& module : AllModules()) {
    for (const auto& kind : module.process_kinds) {
      for (const auto& id : store.Ids(kind.document_kind)) {
        std::optional<Json> doc = store.Get(kind.document_kind, id);
        if (!doc) continue;
        auto token = doc->find("LaunchToken");
        if (token != doc->end() && token->is_string()) tokens.insert(*token);
        ProcessId proc = RecordedProcess(*doc);
        if (proc.pid <= 0) continue;
        procs.push_back(proc);
        if (!kind.on_down) continue;
        Json changed = *doc;
        kind.on_down(changed, now);
        if (changed != *doc) writes.push_back({kind.document_kind, id, std::move(changed)});
      }
    }
  }
  for (const auto& [token, proc] : launcher.FindByLaunchToken(tokens)) {
    if (std::find(procs.begin(), procs.end(), proc) == procs.end()) procs.push_back(proc);
  }
  // One /proc scan per poll for all groups (a scan per group made `down` quadratic with 1,000 instances).
  // A group id is safe to test: Linux does not reuse a pid while a group still carries it.
  // Processes in a cgroup of their own are looked up there (their children may have left the group).
  auto any_alive = [&] {
    std::set<pid_t> live = LiveProcessGroups();
    for (const auto& p : procs) {
      if (live.count(p.pid)) return true;
      if (!p.cgroup.empty() && launcher.GroupAlive(p)) return true;
    }
    return false;
  };
  for (const auto& p : procs) launcher.SignalGroup(p, false);
  if (!WaitGone(any_alive, std::chrono::seconds(5), std::chrono::milliseconds(100))) {
    for (const auto& p : procs) launcher.SignalGroup(p, true);
    WaitGone(any_alive, std::chrono::seconds(5));
  }
  for (const auto& p : procs) {
    if (!p.cgroup.empty() && !launcher.GroupAlive(p)) launcher.Release(p);
  }
  Status st = store.Commit(writes);
  if (!st.ok()) std::cerr << "autopipe down: " << st.message() << "\n";
}

namespace {

}  // namespace

void AdoptUnrecordedProcesses(Store& store, ProcessLauncher& launcher, int64_t now) {
  // Documents whose process is not recorded (a server killed between a first launch and committing its pid). A
  // relaunch whose record was lost (the document still names the process that died) is not adopted here: the
  // owning controller stops such a stray before it launches again (an instance's surviving daemon also carries
  // its token, and must not become the instance); `down` stops every process carrying a document's token.
  std::map<std::string, std::pair<std::string, std::string>> owners;  // token -> (kind, id)
  for (const auto& module : AllModules()) {
    for (const auto& kind : module.process_kinds) {
      for (const auto& id : store.Ids(kind.document_kind)) {
        std::optional<Json> doc = store.Get(kind.document_kind, id);
        if (!doc || RecordedProcess(*doc).pid > 0) continue;
        auto token = doc->find("LaunchToken");
        if (token != doc->end() && token->is_string()) owners[*token] = {kind.document_kind, id};
      }
    }
  }
  if (owners.empty()) return;
  std::set<std::string> tokens;
  for (const auto& [token, owner] : owners) tokens.insert(token);
  // The earliest process per token is the one the server launched (later ones, if any, are its own session
  // leaders that inherited the environment).
  std::map<std::string, ProcessId> first;
  for (const auto& [token, proc] : launcher.FindByLaunchToken(tokens)) {
    auto [it, inserted] = first.emplace(token, proc);
    if (!inserted && proc.start_time < it->second.start_time) it->second = proc;
  }
  std::vector<StoreWrite> writes;
  for (const auto& [token, proc] : first) {
    const auto& [kind, id] = owners[token];
    Json doc = *store.Get(kind, id);
    RecordProcess(doc, proc);
    doc["LaunchedAt"] = now;
    spdlog::warn("{} {}: found pid {}, started by a server that stopped before recording it", kind, id, proc.pid);
    writes.push_back({kind, id, std::move(doc)});
  }
  Status st = store.Commit(writes);
  if (!st.ok()) spdlog::error("recording unrecorded processes failed: {}", st.ToString());
}

namespace {

// How many instances DescribeInstanceHealth reports InService (0 when the load balancer cannot be described).
int LoadBalancerInServiceCount(const ApiRouter& api, const std::string& name) {
  auto health = api.Invoke("elasticloadbalancing", "DescribeInstanceHealth", {{"LoadBalancerName", name}});
  if (!health.ok()) return 0;
  int n = 0;
  for (const auto& state : (*health)["InstanceStates"]) n += state["State"] == "InService";
  return n;
}

}  // namespace

Result<std::unique_ptr<Region>> Region::Start(const RegionOptions& opts) {
  auto region = std::make_unique<RegionImpl>();
  AP_RETURN_IF_ERROR(region->Init(opts));
  return std::unique_ptr<Region>(std::move(region));
}

int RunServer(const RegionOptions& opts) {
  sigset_t stop = BlockStopSignals();
  SetUpLogging(opts);
  auto region = Region::Start(opts);
  if (!region.ok()) {
    std::cerr << "autopipe server: " << region.status().message() << "\n";
    return 1;
  }
  std::cout << "autopipe: region " << opts.region << " serving at " << (*region)->endpoint() << std::endl;
  int sig = 0;
  sigwait(&stop, &sig);
  spdlog::info("server stopping on signal {}", sig);
  (*region)->Stop();
  return 0;
}

int RunDown(const std::string& data_dir) {
  fs::path dir = fs::absolute(data_dir);
  if (!fs::exists(dir / "state.db")) {
    std::cerr << "autopipe down: no region in " << dir.string() << "\n";
    return 1;
  }
  LocalProcessLauncher launcher;
  if (auto pf = ReadPidFile(dir / "server.pid")) {
    ProcessId server{pf->pid, pf->start_time};
    if (server.pid != ::getpid() && launcher.IsAlive(server)) {
      ::kill(server.pid, SIGTERM);
      // A server finishing a database backup or preparation may take a while to stop; then SIGKILL.
      if (!WaitGone([&] { return launcher.IsAlive(server); }, std::chrono::seconds(30))) ::kill(server.pid, SIGKILL);
      WaitGone([&] { return launcher.IsAlive(server); }, std::chrono::seconds(5));
    }
  }
  int lock_fd = ::open((dir / "server.lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (lock_fd < 0 || ::flock(lock_fd, LOCK_EX | LOCK_NB) != 0) {
    std::cerr << "autopipe down: the server on " << dir.string() << " did not stop\n";
    return 1;
  }
  auto store = OpenSqliteStore((dir / "state.db").string());
  if (!store.ok()) {
    std::cerr << "autopipe down: " << store.status().message() << "\n";
    return 1;
  }
  StopRegionProcesses(**store, launcher, SystemClock().NowMillis());
  std::error_code ec;
  fs::remove(dir / "endpoint", ec);
  ::close(lock_fd);
  std::cout << "autopipe: region in " << dir.string() << " is down\n";
  return 0;
}

int RunUp(const RegionOptions& given) {
  RegionOptions opts = given;
  if (!opts.standby_region.empty() && opts.partition.empty()) {
    opts.partition = fs::absolute(opts.data_dir).string() + "-partition";
  }
  sigset_t stop = BlockStopSignals();
  SetUpLogging(opts);
  auto started = Region::Start(opts);
  if (!started.ok()) {
    std::cerr << "autopipe up: " << started.status().message() << "\n";
    return 1;
  }
  // The standby region and the global service start now, so that their stacks come up while ours does.
  std::optional<partition::StandbyProcesses> standby;
  if (!opts.standby_region.empty()) {
    const std::string base = fs::absolute(opts.data_dir).string();
    auto s = partition::StartStandby({SelfExe(), fs::absolute(opts.partition).string(), opts.standby_region,
                                      base + "-" + opts.standby_region, base + "-global", opts.log_level,
                                      opts.standby_address_block});
    if (s.ok()) standby = *s;
    else std::cerr << "autopipe up: the standby region: " << s.status().message() << "\n";
  }
  Region& region = **started;
  if (!InstanceIdentitiesAvailable()) std::cout << "autopipe up: warning: " << kSharedIdentityWarning << std::endl;
  const ApiRouter& api = region.router();
  // The seed's stack (../shared/seed/, §1.1): a launch configuration for the sample image, then §1.1's group verbatim.
  auto lc = api.Invoke("autoscaling", "CreateLaunchConfiguration",
                       {{"LaunchConfigurationName", "auto-pipeline-launch-config"},
                        {"ImageId", "ami-0a1b2c3d4e5f60718"},
                        {"InstanceType", "t3.micro"}});
  if (!lc.ok() && lc.status().code() != "AlreadyExists") {
    std::cerr << "autopipe up: " << lc.status().ToString() << "\n";
  }
  auto asg = api.Invoke("autoscaling", "CreateAutoScalingGroup",
                        {{"AutoScalingGroupName", "auto-pipeline-asg"},
                         {"MinSize", "2"},
                         {"MaxSize", "10"},
                         {"DesiredCapacity", "5"},
                         {"LaunchConfigurationName", "auto-pipeline-launch-config"},
                         {"AvailabilityZones.member.1", opts.region + "a"},
                         {"AvailabilityZones.member.2", opts.region + "b"}});
  if (!asg.ok() && asg.status().code() != "AlreadyExists") {
    std::cerr << "autopipe up: " << asg.status().ToString() << "\n";
  }
  // §1.2's load balancer, in front of the group.
  auto lb = api.Invoke("elasticloadbalancing", "CreateLoadBalancer",
                       {{"LoadBalancerName", "auto-pipeline-lb"},
                        {"Listeners.member.1.Protocol", "HTTP"},
                        {"Listeners.member.1.LoadBalancerPort", "80"},
                        {"Listeners.member.1.InstanceProtocol", "HTTP"},
                        {"Listeners.member.1.InstancePort", "80"},
                        {"AvailabilityZones.member.1", opts.region + "a"},
                        {"AvailabilityZones.member.2", opts.region + "b"}});
  if (!lb.ok()) std::cerr << "autopipe up: " << lb.status().ToString() << "\n";
  const std::string dns_name = lb.ok() ? (*lb)["DNSName"].get<std::string>() : "";
  auto attach = api.Invoke("autoscaling", "AttachLoadBalancers",
                           {{"AutoScalingGroupName", "auto-pipeline-asg"},
                            {"LoadBalancerNames.member.1", "auto-pipeline-lb"}});
  if (!attach.ok() && attach.status().code() != "AlreadyExists") {
    std::cerr << "autopipe up: " << attach.status().ToString() << "\n";
  }
  // §3's database, verbatim (Multi-AZ MySQL, which is MariaDB here), then §4's 7-day backup retention.
  auto db = api.Invoke("rds", "CreateDBInstance",
                       {{"DBInstanceIdentifier", "auto-pipeline-db"},
                        {"DBInstanceClass", "db.t3.medium"},
                        {"Engine", "mysql"},
                        {"AllocatedStorage", "20"},
                        {"MultiAZ", "true"},
                        {"MasterUsername", "admin"},
                        {"MasterUserPassword", "password"},
                        {"VpcSecurityGroupIds.member.1", "sg-12345678"}});
  if (!db.ok() && db.status().code() != "DBInstanceAlreadyExists") {
    std::cerr << "autopipe up: " << db.status().ToString() << "\n";
  }
  // §5's topic and CPU alarm, verbatim. The alarm's action is the seed's ARN, which names the topic just created
  // (in another region than us-west-2 the topic's own ARN stands for it: an alarm's actions must be in its region).
  auto topic = api.Invoke("sns", "CreateTopic", {{"Name", "AutoPipelineAlerts"}});
  if (!topic.ok()) std::cerr << "autopipe up: " << topic.status().ToString() << "\n";
  const std::string topic_arn = topic.ok() ? (*topic)["TopicArn"].get<std::string>()
                                           : "arn:aws:sns:us-west-2:123456789012:AutoPipelineAlerts";
  auto alarm = api.Invoke("monitoring", "PutMetricAlarm",
                          {{"AlarmName", "HighCPUUsage"},
                           {"MetricName", "CPUUtilization"},
                           {"Namespace", "AWS/EC2"},
                           {"Statistic", "Average"},
                           {"Period", "300"},
                           {"Threshold", "80"},
                           {"ComparisonOperator", "GreaterThanThreshold"},
                           {"Dimensions.member.1.Name", "InstanceId"},
                           {"Dimensions.member.1.Value", "i-1234567890"},
                           {"EvaluationPeriods", "2"},
                           {"AlarmActions.member.1", topic_arn}});
  if (!alarm.ok()) std::cerr << "autopipe up: " << alarm.status().ToString() << "\n";
  // §2's Redis cluster, as the corrected call (elasticache/seed.h); it forms while the group launches.
  const std::string redis_error = elasticache::CreateSeedReplicationGroup(api, opts.region);
  WaitGone([&] { return region.InServiceCount("auto-pipeline-asg") < 5; }, std::chrono::seconds(30));
  Json db_instance;
  WaitGone(
      [&] {
        db_instance = region.GetDocument("db_instance", "auto-pipeline-db").value_or(Json::object());
        return db_instance.value("DBInstanceStatus", "") != "available";
      },
      std::chrono::seconds(60), std::chrono::milliseconds(250));
  // §4's command, once the instance is available (RDS refuses modifications while it is being created).
  auto retention = api.Invoke("rds", "ModifyDBInstance",
                              {{"DBInstanceIdentifier", "auto-pipeline-db"}, {"BackupRetentionPeriod", "7"}});
  if (!retention.ok()) std::cerr << "autopipe up: " << retention.status().ToString() << "\n";
  db_instance = region.GetDocument("db_instance", "auto-pipeline-db").value_or(db_instance);
  const std::string db_address =
      db_instance.contains("Endpoint") ? db_instance["Endpoint"].value("Address", "") : "";
  int lb_in_service = 0;
  WaitGone(
      [&] {
        lb_in_service = LoadBalancerInServiceCount(api, "auto-pipeline-lb");
        return lb_in_service < region.InServiceCount("auto-pipeline-asg");
      },
      std::chrono::seconds(30), std::chrono::milliseconds(250));

  const std::string redis_text =
      redis_error + elasticache::DescribeSeedReplicationGroup(api, opts.region, std::chrono::seconds(30));

  std::string alarm_state = "not created";
  if (auto d = api.Invoke("monitoring", "DescribeAlarms", {{"AlarmNames.member.1", "HighCPUUsage"}}); d.ok()) {
    Json alarms = ExpandParts(*d).value("MetricAlarms", Json::array());
    if (!alarms.empty()) alarm_state = alarms[0].value("StateValue", alarm_state);
  }
  fs::path dir = fs::absolute(opts.data_dir);
  std::cout << "\nAuto_Pipeline region " << opts.region << " is up.\n\n"
            << "  API endpoint      " << region.endpoint() << "\n"
            << "  credentials       " << (dir / "credentials").string() << "  (mode 0600)\n"
            << "  server log        " << (dir / "server.log").string() << "\n\n"
            << "Auto Scaling group auto-pipeline-asg (min 2, max 10, desired 5, " << opts.region << "a/"
            << opts.region << "b), " << region.InServiceCount("auto-pipeline-asg") << " InService:\n"
            << region.DescribeInstancesText() << "\n"
            << "Load balancer auto-pipeline-lb (HTTP 80 -> 80, " << opts.region << "a/" << opts.region << "b), "
            << lb_in_service << " instances InService:\n"
            << "  DNS name          " << dns_name << "\n"
            << "  curl http://" << dns_name << "/\n\n"
            << "RDS MySQL auto-pipeline-db (MariaDB, Multi-AZ " << db_instance.value("AvailabilityZone", "?") << " + standby in "
            << db_instance.value("SecondaryAvailabilityZone", "?") << ", backups kept "
            << db_instance.value("BackupRetentionPeriod", 0) << " days), " << db_instance.value("DBInstanceStatus", "not available")
            << ":\n"
            << "  endpoint          " << db_address << ":3306\n"
            << "  mariadb -h " << db_address << " -P 3306 -u admin -p     (the password is the seed's)\n\n"
            << redis_text << "\n"
            << "SNS topic AutoPipelineAlerts:\n"
            << "  TopicArn          " << topic_arn << "\n"
            << "CloudWatch alarm HighCPUUsage (AWS/EC2 CPUUtilization of i-1234567890, Average over 300 s > 80 for 2 "
               "periods -> "
            << topic_arn << "), " << alarm_state << ":\n"
            << "  watch it:         aws --endpoint-url " << region.endpoint()
            << " cloudwatch describe-alarms --alarm-names HighCPUUsage\n"
            << "  get notified:     aws --endpoint-url " << region.endpoint() << " sns subscribe --topic-arn "
            << topic_arn << " --protocol http --notification-endpoint http://127.0.0.1:PORT/\n"
            << "                    (an HTTP endpoint you run: it is sent a SubscriptionConfirmation whose "
               "SubscribeURL it visits, then signed notifications)\n\n"
            << "Use the aws CLI or boto3 against it:\n"
            << "  export AWS_SHARED_CREDENTIALS_FILE=" << (dir / "credentials").string()
            << " AWS_CONFIG_FILE=" << (dir / "config").string() << "\n"
            << "  aws --endpoint-url " << region.endpoint() << " autoscaling describe-auto-scaling-groups\n\n"
            << (standby ? "Partition         " + fs::absolute(opts.partition).string() + "\n\n" : "");
  if (standby) std::cout << partition::StandbySummary(*standby, std::chrono::seconds(180)) << "\n";
  std::cout << (standby ? "Press Ctrl-C to stop the regions and everything they run."
                        : "Press Ctrl-C to stop the region and everything it runs.")
            << std::endl;
  int sig = 0;
  sigwait(&stop, &sig);
  if (standby) {
    std::cout << "\nautopipe: stopping the standby region and the global service..." << std::endl;
    partition::StopStandby(*standby, std::chrono::seconds(120));
  }
  std::cout << "\nautopipe: stopping the region..." << std::endl;
  region.Stop();
  started->reset();  // releases the data dir lock
  return RunDown(opts.data_dir);
}

}  // namespace autopipe

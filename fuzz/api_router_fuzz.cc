// libFuzzer target for everything behind authentication: the input is a form body (Action=...&...) that the
// harness signs correctly, so it reaches the protocol layer and the real Auto Scaling, EC2 and ELB handlers over
// an in-memory store, with controllers run in between. Nothing may crash, and every reply must be a well-formed
// status: 2xx, or an error envelope naming a code.
//
// The first input byte picks the service (autoscaling, ec2 or elasticloadbalancing) and, with its top bit set, the
// AWS JSON 1.0 protocol: then the body's first line is the operation (X-Amz-Target "Fuzz.<line>") and the rest
// the JSON body. Otherwise the rest is the form body.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "api/api_server.h"
#include "autoscaling/autoscaling_service.h"
#include "autoscaling/group_controller.h"
#include "ec2/ec2_service.h"
#include "ec2/instance_controller.h"
#include "elb/elb_service.h"
#include "elb/lb_controller.h"
#include "region/controller.h"

namespace {

constexpr char kKey[] = "AKIAFUZZFUZZFUZZFUZZ";
constexpr char kSecret[] = "fuzzsecretfuzzsecretfuzzsecretfuzzsecret";

// Processes that exist only in memory: launching always works and nothing ever dies.
class NullLauncher : public autopipe::ProcessLauncher {
 public:
  autopipe::Result<autopipe::ProcessId> Launch(const autopipe::LaunchSpec&) override {
    return autopipe::ProcessId{++next_pid_, 1};
  }
  bool IsAlive(const autopipe::ProcessId&) override { return true; }
  void SignalGroup(const autopipe::ProcessId&, bool) override {}
  bool GroupAlive(const autopipe::ProcessId&) override { return false; }

 private:
  pid_t next_pid_ = 1000;
};

struct Region {
  Region() : catalog("us-west-2", "127.250"), store(autopipe::NewMemoryStore()), clock(1'795'685'947'000) {
    ctx.catalog = &catalog;
    ctx.store = store.get();
    ctx.clock = &clock;
    ctx.launcher = &launcher;
    // Load-balancer configs are written (and fsync'd) on every pass: keep them in memory where there is a tmpfs.
    ctx.data_dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm/autopipe-fuzz" : "/tmp/autopipe-fuzz";
    ctx.self_exe = "/bin/true";
    ctx.mu = &mu;
    ctx.wake = [] {};
    runner = std::make_unique<autopipe::ControllerRuntime>(std::chrono::milliseconds(1000));
    runner->Add(std::make_unique<autopipe::GroupController>(&ctx));
    runner->Add(std::make_unique<autopipe::InstanceController>(&ctx));
    runner->Add(std::make_unique<autopipe::LoadBalancerController>(&ctx));
    router = std::make_unique<autopipe::ApiRouter>(
        "us-west-2",
        [](const std::string& k) -> std::optional<std::string> {
          if (k == kKey) return std::string(kSecret);
          return std::nullopt;
        },
        &clock);
    router->AddService(autopipe::AutoScalingApi(&ctx));
    router->AddService(autopipe::Ec2Api(&ctx));
    router->AddService(autopipe::ElbApi(&ctx));
    // A launch configuration and a group exist, so mutations of them are reachable.
    // Set-up calls: should one fail, the mutations it enables go unexercised; nothing to stop for.
    (void)router->Invoke("autoscaling", "CreateLaunchConfiguration",
                   {{"LaunchConfigurationName", "lc"}, {"ImageId", "ami-0f1e2d3c4b5a69788"}, {"InstanceType", "t3.micro"}});
    (void)router->Invoke("autoscaling", "CreateAutoScalingGroup",
                   {{"AutoScalingGroupName", "g"}, {"LaunchConfigurationName", "lc"}, {"MinSize", "1"},
                    {"MaxSize", "3"}, {"AvailabilityZones.member.1", "us-west-2a"}});
    (void)router->Invoke("elasticloadbalancing", "CreateLoadBalancer",
                   {{"LoadBalancerName", "lb"}, {"Listeners.member.1.Protocol", "HTTP"},
                    {"Listeners.member.1.LoadBalancerPort", "80"}, {"Listeners.member.1.InstancePort", "80"},
                    {"AvailabilityZones.member.1", "us-west-2a"}});
    (void)router->Invoke("autoscaling", "AttachLoadBalancers",
                   {{"AutoScalingGroupName", "g"}, {"LoadBalancerNames.member.1", "lb"}});
  }

  autopipe::Catalog catalog;
  std::unique_ptr<autopipe::Store> store;
  autopipe::FakeClock clock;
  NullLauncher launcher;
  std::mutex mu;
  autopipe::RegionContext ctx;
  std::unique_ptr<autopipe::ControllerRuntime> runner;
  std::unique_ptr<autopipe::ApiRouter> router;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static Region* region = new Region();  // state carries over between inputs, as in a long-running server
  if (size == 0) return 0;
  autopipe::SigV4Request req;
  req.method = "POST";
  req.target = "/";
  req.headers = {{"Host", "127.0.0.1:4566"}, {"Content-Type", "application/x-www-form-urlencoded; charset=utf-8"}};
  req.body.assign(reinterpret_cast<const char*>(data) + 1, size - 1);
  const bool json = (data[0] & 0x80) != 0;
  if (json) {
    const size_t newline = req.body.find('\n');
    const std::string action = newline == std::string::npos ? req.body : req.body.substr(0, newline);
    req.body = newline == std::string::npos ? "" : req.body.substr(newline + 1);
    req.headers.push_back({"X-Amz-Target", "Fuzz." + action});
    req.headers.push_back({"x-amzn-query-mode", "true"});
    req.headers[1].second = "application/x-amz-json-1.0";
  }
  static const char* const kServices[] = {"autoscaling", "ec2", "elasticloadbalancing"};
  const char* service = kServices[(data[0] & 0x7F) % 3];
  autopipe::SignSigV4(req, kKey, kSecret, "us-west-2", service, region->clock.NowSeconds());
  autopipe::HttpReply reply = region->router->Handle(req);
  const char* error_marker = json ? "\"__type\"" : "<Code>";
  if (reply.status >= 300 && reply.body.find(error_marker) == std::string::npos) __builtin_trap();
  if (reply.status >= 500) __builtin_trap();  // a 5xx here means a handler bug, not bad input
  region->runner->RunPass();
  region->clock.Advance(1000);
  return 0;
}

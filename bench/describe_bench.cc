// In-process cost of the Describe calls with 1,000 instances' worth of records (10 groups x 100 instances):
// the handler plus the XML rendering, without HTTP or a client, so the figure is the server's own work.
// Run: build/describe_bench  (Google Benchmark flags apply, e.g. --benchmark_repetitions=5)
#include <benchmark/benchmark.h>

#include <memory>
#include <mutex>

#include "api/api_server.h"
#include "autoscaling/autoscaling_service.h"
#include "autoscaling/group_controller.h"
#include "ec2/ec2_service.h"
#include "ec2/instance_controller.h"
#include "process/fake_launcher.h"
#include "region/controller.h"

namespace autopipe {
namespace {

struct Fixture {
  Fixture() : catalog("us-west-2", "127.251"), store(NewMemoryStore()) {
    ctx.catalog = &catalog;
    ctx.store = store.get();
    ctx.clock = &clock;
    ctx.launcher = &launcher;
    ctx.data_dir = "/tmp/autopipe-describe-bench";
    ctx.self_exe = "/bin/true";
    ctx.mu = &mu;
    ctx.wake = [] {};
    runner = std::make_unique<ControllerRuntime>(std::chrono::hours(1));
    runner->Add(std::make_unique<GroupController>(&ctx));
    runner->Add(std::make_unique<InstanceController>(&ctx));
    router = std::make_unique<ApiRouter>("us-west-2", [](const std::string&) { return std::nullopt; }, &clock);
    router->AddService(AutoScalingApi(&ctx));
    router->AddService(Ec2Api(&ctx));
    router->Invoke("autoscaling", "CreateLaunchConfiguration",
                   {{"LaunchConfigurationName", "lc"}, {"ImageId", "ami-0f1e2d3c4b5a69788"}, {"InstanceType", "t3.micro"}});
    for (int g = 0; g < 10; ++g) {
      router->Invoke("autoscaling", "CreateAutoScalingGroup",
                     {{"AutoScalingGroupName", "group-" + std::to_string(g)}, {"LaunchConfigurationName", "lc"},
                      {"MinSize", "100"}, {"MaxSize", "100"}, {"AvailabilityZones.member.1", "us-west-2a"},
                      {"AvailabilityZones.member.2", "us-west-2b"}});
    }
    for (int i = 0; i < 6; ++i) runner->RunPass();
  }

  SystemClock clock;
  Catalog catalog;
  std::unique_ptr<Store> store;
  FakeLauncher launcher;
  std::mutex mu;
  RegionContext ctx;
  std::unique_ptr<ControllerRuntime> runner;
  std::unique_ptr<ApiRouter> router;
};

Fixture& F() {
  static Fixture* f = new Fixture();
  return *f;
}

void Describe(benchmark::State& state, const char* service, const char* action, FormParams params) {
  Fixture& f = F();
  ServiceInfo info = std::string(service) == "ec2" ? Ec2Api(&f.ctx).info : AutoScalingApi(&f.ctx).info;
  ApiRequest req;
  req.service = service;
  req.action = action;
  req.request_id = "bench";
  req.protocol = info.protocol;
  size_t bytes = 0;
  for (auto _ : state) {
    auto result = f.router->Invoke(service, action, params);
    if (!result.ok()) state.SkipWithError(result.status().ToString().c_str());
    HttpReply reply = RenderResult(info, req, *result);
    bytes = reply.body.size();
    benchmark::DoNotOptimize(reply.body.data());
  }
  state.counters["response_bytes"] = static_cast<double>(bytes);
}

void BM_DescribeAutoScalingGroups_All(benchmark::State& s) {
  Describe(s, "autoscaling", "DescribeAutoScalingGroups", {});
}
// The same call with every group's rendering made afresh (as after each group has changed): a new service, so
// an empty cache of rendered groups, per call.
void BM_DescribeAutoScalingGroups_All_Uncached(benchmark::State& state) {
  Fixture& f = F();
  ApiRequest req;
  req.service = "autoscaling";
  req.action = "DescribeAutoScalingGroups";
  req.request_id = "bench";
  const FormParams params;
  size_t bytes = 0;
  for (auto _ : state) {
    ApiService api = AutoScalingApi(&f.ctx);
    req.protocol = api.info.protocol;
    for (const auto& op : api.operations) {
      if (op.name != req.action) continue;
      auto result = op.handler(Params(params, api.info.protocol));
      if (!result.ok()) state.SkipWithError(result.status().ToString().c_str());
      HttpReply reply = RenderResult(api.info, req, *result);
      bytes = reply.body.size();
      benchmark::DoNotOptimize(reply.body.data());
    }
  }
  state.counters["response_bytes"] = static_cast<double>(bytes);
}
void BM_DescribeAutoScalingGroups_One(benchmark::State& s) {
  Describe(s, "autoscaling", "DescribeAutoScalingGroups", {{"AutoScalingGroupNames.member.1", "group-3"}});
}
void BM_DescribeInstances_All(benchmark::State& s) { Describe(s, "ec2", "DescribeInstances", {}); }
void BM_ControllerPass_1000Instances(benchmark::State& s) {
  for (auto _ : s) F().runner->RunPass();
}

BENCHMARK(BM_DescribeAutoScalingGroups_All)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_DescribeAutoScalingGroups_All_Uncached)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_DescribeAutoScalingGroups_One)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_DescribeInstances_All)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_ControllerPass_1000Instances)->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace autopipe

BENCHMARK_MAIN();
namespace autopipe {
namespace {
void BM_DescribeAll_HandlerOnly(benchmark::State& s) {
  for (auto _ : s) {
    auto r = F().router->Invoke("autoscaling", "DescribeAutoScalingGroups", {});
    benchmark::DoNotOptimize(r.ok());
  }
}
void BM_DescribeAll_RenderOnly(benchmark::State& s) {
  auto r = F().router->Invoke("autoscaling", "DescribeAutoScalingGroups", {});
  ApiRequest req;
  req.action = "DescribeAutoScalingGroups";
  req.request_id = "bench";
  for (auto _ : s) {
    HttpReply reply = RenderResult(AutoScalingApi(&F().ctx).info, req, *r);
    benchmark::DoNotOptimize(reply.body.data());
  }
}
BENCHMARK(BM_DescribeAll_HandlerOnly)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_DescribeAll_RenderOnly)->Unit(benchmark::kMicrosecond);
}  // namespace
}  // namespace autopipe

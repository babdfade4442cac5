// RegionFixture (test support only): one region wired in memory — the real handlers and controllers, an
// in-memory store, a FakeClock and a FakeLauncher, a temporary data dir — with controller passes run
// explicitly by the test, so nothing sleeps and every step is deterministic.
//
// Thread-safety: for single-threaded tests.
#pragma once

#include <stdlib.h>

#include <filesystem>
#include <memory>
#include <mutex>
#include <string>

#include <gtest/gtest.h>

#include "api/api_server.h"
#include "api/protocol.h"
#include "common/clock.h"
#include "ec2/catalog.h"
#include "process/fake_launcher.h"
#include "region/context.h"
#include "region/controller.h"
#include "region/module.h"
#include "store/store.h"

namespace autopipe {

class RegionFixture : public ::testing::Test {
 protected:
  struct Wiring {
    bool auto_scaling = true;            // GroupController and the Auto Scaling API too (EC2 is always there)
    bool load_balancing = true;          // LoadBalancerController and the ELB API too
    std::string service = "autoscaling";  // what Call() talks to
  };

  RegionFixture()
      : catalog_("us-west-2", "127.200"),
        store_(NewMemoryStore()),
        router_("us-west-2", [](const std::string&) { return std::optional<std::string>(); }, &clock_) {}

  // Call from SetUp(). Controllers run in the region's order (region/modules.cc): groups, instances, then load
  // balancers.
  void WireRegion(Wiring wiring) {
    char tmpl[] = "/tmp/autopipe_region_test.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    data_dir_ = tmpl;
    service_ = wiring.service;
    ctx_.catalog = &catalog_;
    ctx_.store = store_.get();
    ctx_.clock = &clock_;
    ctx_.launcher = &launcher_;
    ctx_.data_dir = data_dir_.string();
    ctx_.self_exe = "/opt/autopipe/bin/autopipe";
    ctx_.mu = &mu_;
    ctx_.wake = [] {};
    runner_ = std::make_unique<ControllerRuntime>(std::chrono::hours(1));
    // The region's own module list (region/modules.cc), less what this test leaves out.
    WireModules(&ctx_, &router_, runner_.get(), [&wiring](const ServiceModule& m) {
      if (m.name == "autoscaling") return wiring.auto_scaling;
      if (m.name == "elb") return wiring.load_balancing;
      return true;
    });
  }

  void TearDown() override {
    if (runner_) {
      EXPECT_EQ(runner_->errors(), 0u) << "a controller pass reported an error";
    }
    std::error_code ec;
    std::filesystem::remove_all(data_dir_, ec);
  }

  // ---- calls through the real handlers (no HTTP, no signatures) ----

  // The result as a client reads it: parts rendered ahead of time (protocol.h) are expanded.
  Result<Json> Call(const std::string& action, const FormParams& params) {
    auto r = router_.Invoke(service_, action, params);
    if (!r.ok()) return r;
    return ExpandParts(*r);
  }

  Json MustCall(const std::string& action, const FormParams& params) {
    auto r = Call(action, params);
    EXPECT_TRUE(r.ok()) << action << " failed: " << r.status().ToString();
    return r.ok() ? *r : Json();
  }

  static void ExpectError(const Result<Json>& r, const std::string& code, const std::string& message) {
    ASSERT_FALSE(r.ok()) << "expected " << code << " but the call succeeded";
    EXPECT_EQ(r.status().code(), code);
    EXPECT_EQ(r.status().message(), message);
    EXPECT_EQ(r.status().http_status(), 400);
  }

  std::string service_;
  std::filesystem::path data_dir_;
  FakeClock clock_;
  Catalog catalog_;
  std::unique_ptr<Store> store_;
  FakeLauncher launcher_;
  std::mutex mu_;
  RegionContext ctx_;
  std::unique_ptr<ControllerRuntime> runner_;
  uint64_t store_subscription_ = 0;
  ApiRouter router_;
};

}  // namespace autopipe

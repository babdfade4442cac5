// CloudWatchController: drives CloudWatchRegion::Tick once a second (of real time; "now" comes from
// RegionContext::clock): metric collection every 5 s, alarm evaluation every 10 s for high-resolution periods
// and every minute otherwise (and right after an alarm is written), alarm actions, retention pruning.
//
// Thread-safety: run by the ControllerRuntime (one worker); holds RegionContext::mu only inside
// CloudWatchRegion's short store writes.
#pragma once

#include <memory>

#include "cloudwatch/cloudwatch_region.h"
#include "region/controller.h"

namespace autopipe::cloudwatch {

class CloudWatchController : public Controller {
 public:
  explicit CloudWatchController(std::shared_ptr<CloudWatchRegion> region) : region_(std::move(region)) {}
  const char* name() const override { return "cloudwatch"; }
  std::vector<std::string> Keys() override { return {"tick"}; }
  std::vector<Watch> Watches() const override {
    auto tick = [](const std::string&) -> std::optional<std::string> { return "tick"; };
    return {{kind::kAlarm, tick}};
  }
  ReconcileResult Reconcile(const std::string&) override {
    region_->Tick(region_->ctx()->clock->NowMillis());
    return ReconcileResult::After(std::chrono::milliseconds(1000));
  }

 private:
  std::shared_ptr<CloudWatchRegion> region_;
};

}  // namespace autopipe::cloudwatch

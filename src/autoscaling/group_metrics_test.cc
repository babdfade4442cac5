#include "autoscaling/group_metrics.h"

#include <map>

#include <gtest/gtest.h>

#include "autoscaling/groups.h"
#include "region/region_fixture.h"

namespace autopipe {
namespace {

class GroupMetricsTest : public RegionFixture {
 protected:
  void SetUp() override { WireRegion({.auto_scaling = true, .load_balancing = false}); }

  std::map<std::string, double> Collect() {
    std::vector<MetricSample> samples;
    CollectGroupMetrics(&ctx_, clock_.NowMillis(), &samples);
    std::map<std::string, double> out;
    for (const auto& s : samples) {
      EXPECT_EQ(s.namespace_, "AWS/AutoScaling");
      EXPECT_EQ(s.dimensions, (std::vector<std::pair<std::string, std::string>>{{"AutoScalingGroupName", "g"}}));
      out[s.metric_name] = s.value;
    }
    return out;
  }
};

TEST_F(GroupMetricsTest, SizesAndMembersByLifecycleState) {
  MustCall("CreateLaunchConfiguration",
           {{"LaunchConfigurationName", "lc"}, {"ImageId", "ami-0a1b2c3d4e5f60718"}, {"InstanceType", "t3.micro"}});
  MustCall("CreateAutoScalingGroup", {{"AutoScalingGroupName", "g"},
                                      {"MinSize", "1"},
                                      {"MaxSize", "4"},
                                      {"DesiredCapacity", "2"},
                                      {"LaunchConfigurationName", "lc"},
                                      {"AvailabilityZones.member.1", "us-west-2a"}});
  for (int i = 0; i < 3; ++i) runner_->RunPass();
  auto m = Collect();
  EXPECT_EQ(m["GroupMinSize"], 1);
  EXPECT_EQ(m["GroupMaxSize"], 4);
  EXPECT_EQ(m["GroupDesiredCapacity"], 2);
  Json group = *store_->Get(kind::kAutoScalingGroup, "g");
  EXPECT_EQ(m["GroupTotalInstances"], static_cast<double>(group["Instances"].size()));
  EXPECT_EQ(m["GroupInServiceInstances"] + m["GroupPendingInstances"] + m["GroupStandbyInstances"] +
                m["GroupTerminatingInstances"],
            m["GroupTotalInstances"]);
  EXPECT_EQ(m.size(), 8u);

  // With EnabledMetrics (EnableMetricsCollection), only those.
  group["EnabledMetrics"] = Json::array({Json{{"Metric", "GroupDesiredCapacity"}}, "GroupMaxSize"});
  ASSERT_TRUE(store_->Put(kind::kAutoScalingGroup, "g", group).ok());
  m = Collect();
  EXPECT_EQ(m.size(), 2u);
  EXPECT_EQ(m["GroupMaxSize"], 4);
}

}  // namespace
}  // namespace autopipe

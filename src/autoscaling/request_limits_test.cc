// Issue 8 items 5 and 9 through the real handlers: per-call list limits refused before the region lock, and
// error texts that match AWS (MaxRecords below 1, integers beyond 32 bits, forged pagination tokens).
#include <chrono>
#include <future>
#include <string>

#include <gtest/gtest.h>

#include "region/region_fixture.h"

namespace autopipe {
namespace {

constexpr char kGroup[] = "limits-asg";

class RequestLimitsTest : public RegionFixture {
 protected:
  void SetUp() override { WireRegion({.auto_scaling = true}); }

  void CreateGroup() {
    MustCall("CreateLaunchConfiguration", {{"LaunchConfigurationName", "lc"},
                                           {"ImageId", "ami-0a1b2c3d4e5f60718"},
                                           {"InstanceType", "t3.micro"}});
    MustCall("CreateAutoScalingGroup", {{"AutoScalingGroupName", kGroup},
                                        {"MinSize", "0"},
                                        {"MaxSize", "1"},
                                        {"LaunchConfigurationName", "lc"},
                                        {"AvailabilityZones.member.1", "us-west-2a"}});
  }

  // Runs the call on another thread while this one holds the region's write lock: a refusal made before the
  // lock comes back; a handler that needed the lock would still be waiting at the bound.
  Result<Json> CallWhileTheRegionIsLocked(const std::string& service, const std::string& action,
                                          const FormParams& params) {
    std::unique_lock held(mu_);
    auto call = std::async(std::launch::async, [&] { return router_.Invoke(service, action, params); });
    if (call.wait_for(std::chrono::seconds(30)) != std::future_status::ready) {
      held.unlock();  // let it finish before failing
      call.wait();
      ADD_FAILURE() << action << " waited for the region lock";
    }
    return call.get();
  }
};

TEST_F(RequestLimitsTest, FortyThousandTagsAreRefusedBeforeTheRegionLock) {
  CreateGroup();
  FormParams tags;
  for (int i = 1; i <= 40000; ++i) {
    const std::string prefix = "Tags.member." + std::to_string(i) + ".";
    tags[prefix + "ResourceId"] = kGroup;
    tags[prefix + "Key"] = "k" + std::to_string(i);
    tags[prefix + "Value"] = "v";
  }
  auto started = std::chrono::steady_clock::now();
  Result<Json> r = CallWhileTheRegionIsLocked("autoscaling", "CreateOrUpdateTags", tags);
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started);
  std::printf("CreateOrUpdateTags with 40,000 tags refused in %lld ms\n", static_cast<long long>(ms.count()));
  ExpectError(r, "ValidationError",
              "1 validation error detected: Value with 40000 elements at 'tags' failed to satisfy constraint: "
              "Member must have length less than or equal to 50");
  EXPECT_TRUE(MustCall("DescribeTags", {})["Tags"].empty()) << "nothing was written";

  // 50 is still fine, and merging them is by key.
  FormParams fifty;
  for (int i = 1; i <= 50; ++i) {
    const std::string prefix = "Tags.member." + std::to_string(i) + ".";
    fifty[prefix + "ResourceId"] = kGroup;
    fifty[prefix + "Key"] = "k" + std::to_string(100 + i);
  }
  MustCall("CreateOrUpdateTags", fifty);
  EXPECT_EQ(MustCall("DescribeTags", {{"MaxRecords", "100"}})["Tags"].size(), 50u);
}

TEST_F(RequestLimitsTest, ElbListsAreBoundedPerCall) {
  FormParams add = {{"LoadBalancerNames.member.1", "web"}};
  for (int i = 1; i <= 11; ++i) add["Tags.member." + std::to_string(i) + ".Key"] = "k" + std::to_string(i);
  Result<Json> r = CallWhileTheRegionIsLocked("elasticloadbalancing", "AddTags", add);
  EXPECT_EQ(r.status().code(), "TooManyTags");

  FormParams reg = {{"LoadBalancerName", "web"}};
  for (int i = 1; i <= 1001; ++i) reg["Instances.member." + std::to_string(i) + ".InstanceId"] = "i-" + std::to_string(i);
  r = CallWhileTheRegionIsLocked("elasticloadbalancing", "RegisterInstancesWithLoadBalancer", reg);
  EXPECT_EQ(r.status().code(), "ValidationError");
  EXPECT_NE(r.status().message().find("less than or equal to 1000"), std::string::npos) << r.status().message();

  FormParams names;
  for (int i = 1; i <= 101; ++i) names["AutoScalingGroupNames.member." + std::to_string(i)] = "g" + std::to_string(i);
  EXPECT_EQ(Call("DescribeAutoScalingGroups", names).status().code(), "ValidationError");
}

TEST_F(RequestLimitsTest, MaxRecordsBelowOneGetsTheLowerBoundText) {
  ExpectError(Call("DescribeAutoScalingGroups", {{"MaxRecords", "0"}}), "ValidationError",
              "1 validation error detected: Value '0' at 'maxRecords' failed to satisfy constraint: Member must have "
              "value greater than or equal to 1");
  ExpectError(Call("DescribeAutoScalingGroups", {{"MaxRecords", "101"}}), "ValidationError",
              "1 validation error detected: Value '101' at 'maxRecords' failed to satisfy constraint: Member must "
              "have value less than or equal to 100");
}

TEST_F(RequestLimitsTest, AnIntegerBeyondThirtyTwoBitsIsOutOfRangeNotNegative) {
  MustCall("CreateLaunchConfiguration", {{"LaunchConfigurationName", "lc"},
                                         {"ImageId", "ami-0a1b2c3d4e5f60718"},
                                         {"InstanceType", "t3.micro"}});
  ExpectError(Call("CreateAutoScalingGroup", {{"AutoScalingGroupName", kGroup},
                                              {"MinSize", "0"},
                                              {"MaxSize", "2147483648"},
                                              {"LaunchConfigurationName", "lc"},
                                              {"AvailabilityZones.member.1", "us-west-2a"}}),
              "ValidationError",
              "Invalid value for parameter MaxSize: '2147483648' is out of range: an integer from -2147483648 to "
              "2147483647 is expected");
  auto big = Call("CreateAutoScalingGroup", {{"AutoScalingGroupName", kGroup},
                                             {"MinSize", "0"},
                                             {"MaxSize", "2000000"},
                                             {"LaunchConfigurationName", "lc"},
                                             {"AvailabilityZones.member.1", "us-west-2a"}});
  ASSERT_FALSE(big.ok());
  EXPECT_EQ(big.status().message().find("greater than or equal to 0"), std::string::npos) << big.status().message();
}

TEST_F(RequestLimitsTest, ForgedNextTokensAreInvalidOnEveryPaginatedOperation) {
  CreateGroup();
  for (const char* action : {"DescribeAutoScalingGroups", "DescribeLaunchConfigurations",
                             "DescribeAutoScalingInstances", "DescribeScalingActivities", "DescribeTags"}) {
    for (const char* token : {"5", "999999", "-1", "x"}) {
      ExpectError(Call(action, {{"NextToken", token}}), "InvalidNextToken",
                  std::string("The token '") + token + "' is invalid.");
    }
  }
  ExpectError(Call("DescribeLoadBalancers", {{"AutoScalingGroupName", kGroup}, {"NextToken", "7"}}),
              "InvalidNextToken", "The token '7' is invalid.");
  // ELB's Marker too.
  auto elb = router_.Invoke("elasticloadbalancing", "DescribeLoadBalancers", {{"Marker", "5"}});
  EXPECT_EQ(elb.status().code(), "ValidationError");
  // A token the region handed out still pages.
  MustCall("CreateLaunchConfiguration", {{"LaunchConfigurationName", "lc2"},
                                         {"ImageId", "ami-0a1b2c3d4e5f60718"},
                                         {"InstanceType", "t3.micro"}});
  Json first = MustCall("DescribeLaunchConfigurations", {{"MaxRecords", "1"}});
  ASSERT_TRUE(first.contains("NextToken"));
  Json second = MustCall("DescribeLaunchConfigurations",
                         {{"MaxRecords", "1"}, {"NextToken", first["NextToken"].get<std::string>()}});
  EXPECT_EQ(second["LaunchConfigurations"].size(), 1u);
  EXPECT_NE(second["LaunchConfigurations"][0]["LaunchConfigurationName"],
            first["LaunchConfigurations"][0]["LaunchConfigurationName"]);
}

}  // namespace
}  // namespace autopipe

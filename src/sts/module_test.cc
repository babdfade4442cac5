#include "sts/module.h"

#include <gtest/gtest.h>

#include "common/clock.h"
#include "ec2/catalog.h"

namespace autopipe {
namespace {

class StsTest : public ::testing::Test {
 protected:
  StsTest() : router_("us-west-2", [](const std::string&) { return std::optional<std::string>(); }, &clock_) {
    router_.AddService(StsApi(nullptr));
  }
  FakeClock clock_;
  ApiRouter router_;
};

TEST_F(StsTest, GetCallerIdentityNamesTheAccountsRootUser) {
  auto got = router_.Invoke("sts", "GetCallerIdentity", {});
  ASSERT_TRUE(got.ok()) << got.status().message();
  EXPECT_EQ((*got)["Account"], kAccountId);
  EXPECT_EQ((*got)["Arn"], std::string("arn:aws:iam::") + kAccountId + ":root");
  EXPECT_EQ((*got)["UserId"], kAccountId);
}

TEST_F(StsTest, AnActionStsDoesNotOfferHereIsRefused) {
  auto got = router_.Invoke("sts", "AssumeRole", {{"RoleArn", "arn:aws:iam::123456789012:role/x"}});
  ASSERT_FALSE(got.ok());
}

}  // namespace
}  // namespace autopipe

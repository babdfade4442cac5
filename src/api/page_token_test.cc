#include "api/page_token.h"

#include <chrono>
#include <string>

#include <gtest/gtest.h>

#include "api/form.h"
#include "api/protocol.h"

namespace autopipe {
namespace {

TEST(PageTokenTest, OnlyATokenMadeForTheSameListDecodes) {
  const std::string token = EncodePageToken("AutoScalingGroups", 50);
  EXPECT_EQ(DecodePageToken("AutoScalingGroups", token), std::optional<uint64_t>(50));
  EXPECT_EQ(DecodePageToken("Tags", token), std::nullopt);
  for (const char* bad : {"", "x", "50", "-1", "999999", "50-", "050-0000000000000000", "not-a-token"}) {
    EXPECT_EQ(DecodePageToken("AutoScalingGroups", bad), std::nullopt) << bad;
  }
  std::string edited = token;
  edited[0] = '6';  // a hand-edited offset
  EXPECT_EQ(DecodePageToken("AutoScalingGroups", edited), std::nullopt);
}

TEST(ParamsTest, IntegersBeyondThirtyTwoBitsAreRefusedAsOutOfRange) {
  FormParams form = {{"MaxSize", "2147483648"}, {"MinSize", "-2147483649"}, {"Huge", "99999999999999999999"},
                     {"Ok", "2147483647"}, {"Word", "ten"}};
  Params p(form, WireProtocol::kQuery);
  for (const char* name : {"MaxSize", "MinSize", "Huge"}) {
    auto v = p.Int(name);
    ASSERT_FALSE(v.ok()) << name;
    EXPECT_EQ(v.status().code(), "ValidationError");
    EXPECT_NE(v.status().message().find("out of range"), std::string::npos) << v.status().message();
  }
  EXPECT_EQ(*p.Int("Ok").value(), 2147483647);
  EXPECT_NE(p.Int("Word").status().message().find("is not an integer"), std::string::npos);
}

// 40,000 tags (about 2 MB, as in issue 8): decoding and every list accessor stay linear-ish. The bound is loose
// (a quadratic scan takes minutes); what is asserted is that it finishes and counts right.
TEST(ParamsTest, FortyThousandListElementsDecodeAndCountInOnePass) {
  std::string body = "Action=CreateOrUpdateTags&Version=2011-01-01";
  for (int i = 1; i <= 40000; ++i) {
    const std::string n = std::to_string(i);
    body += "&Tags.member." + n + ".ResourceId=g&Tags.member." + n + ".Key=k" + n + "&Tags.member." + n +
            ".Value=some-value-" + n + "&Tags.member." + n + ".PropagateAtLaunch=true";
  }
  auto started = std::chrono::steady_clock::now();
  auto form = ParseForm(body);
  ASSERT_TRUE(form.has_value());
  Params p(*form, WireProtocol::kQuery);
  EXPECT_EQ(p.ListSize("Tags"), 40000u);
  auto tags = p.StructList("Tags");
  ASSERT_EQ(tags.size(), 40000u);
  EXPECT_EQ(tags[39999].at("Key"), "k40000");
  EXPECT_EQ(p.Sub("Tags.member.").size(), 160000u);
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started);
  std::printf("40,000 tags (%zu bytes): parse + ListSize + StructList + Sub in %lld ms\n", body.size(),
              static_cast<long long>(ms.count()));
}

}  // namespace
}  // namespace autopipe

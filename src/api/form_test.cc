#include "api/form.h"

#include <gtest/gtest.h>

namespace autopipe {
namespace {

TEST(UrlDecodeTest, DecodesEscapesAndPlus) {
  EXPECT_EQ(UrlDecode("a%20b+c"), "a b c");
  EXPECT_EQ(UrlDecode("%2f%2F%7e"), "//~");
  EXPECT_EQ(UrlDecode(""), "");
  EXPECT_EQ(UrlDecode("plain-text_.~"), "plain-text_.~");
  EXPECT_EQ(UrlDecode("%E2%9C%93"), "\xE2\x9C\x93");
}

TEST(UrlDecodeTest, KeepsEmbeddedNul) {
  std::optional<std::string> decoded = UrlDecode("a%00b");
  ASSERT_TRUE(decoded.has_value());
  EXPECT_EQ(*decoded, std::string("a\0b", 3));
}

TEST(UrlDecodeTest, RejectsMalformedEscapes) {
  EXPECT_EQ(UrlDecode("%G1"), std::nullopt);
  EXPECT_EQ(UrlDecode("%1G"), std::nullopt);
  EXPECT_EQ(UrlDecode("%4"), std::nullopt);
  EXPECT_EQ(UrlDecode("abc%"), std::nullopt);
  EXPECT_EQ(UrlDecode("%"), std::nullopt);
}

TEST(UriEncodeTest, KeepsOnlyUnreserved) {
  EXPECT_EQ(UriEncode("AZaz09-_.~"), "AZaz09-_.~");
  EXPECT_EQ(UriEncode("a b+c=d&e"), "a%20b%2Bc%3Dd%26e");
  EXPECT_EQ(UriEncode("a/b"), "a%2Fb");
  EXPECT_EQ(UriEncode("\xE2\x9C\x93"), "%E2%9C%93");
  EXPECT_EQ(UriEncode(std::string("\0", 1)), "%00");
  EXPECT_EQ(UriEncode("%"), "%25");
}

TEST(UriEncodeTest, CanKeepSlash) { EXPECT_EQ(UriEncode("/a b/c", /*encode_slash=*/false), "/a%20b/c"); }

TEST(UriEncodeTest, RoundTripsThroughDecode) {
  std::string all;
  for (int c = 0; c < 256; ++c) all.push_back(static_cast<char>(c));
  EXPECT_EQ(UrlDecode(UriEncode(all)), all);
}

TEST(ParseFormTest, ParsesQueryProtocolBody) {
  std::optional<FormParams> params = ParseForm(
      "Action=CreateAutoScalingGroup&Version=2011-01-01&AvailabilityZones.member.1=us-east-1a"
      "&Tags.member.1.Value=a%20b%2Bc&Empty=");
  ASSERT_TRUE(params.has_value());
  EXPECT_EQ(params->size(), 5u);
  EXPECT_EQ(params->at("Action"), "CreateAutoScalingGroup");
  EXPECT_EQ(params->at("Version"), "2011-01-01");
  EXPECT_EQ(params->at("AvailabilityZones.member.1"), "us-east-1a");
  EXPECT_EQ(params->at("Tags.member.1.Value"), "a b+c");
  EXPECT_EQ(params->at("Empty"), "");
}

TEST(ParseFormTest, EmptyBodyIsEmptyMap) {
  std::optional<FormParams> params = ParseForm("");
  ASSERT_TRUE(params.has_value());
  EXPECT_TRUE(params->empty());
}

TEST(ParseFormTest, SkipsEmptyPairs) {
  std::optional<FormParams> params = ParseForm("&a=1&&b=2&");
  ASSERT_TRUE(params.has_value());
  EXPECT_EQ(*params, (FormParams{{"a", "1"}, {"b", "2"}}));
}

TEST(ParseFormTest, KeyWithoutEqualsGetsEmptyValue) {
  std::optional<FormParams> params = ParseForm("flag&a=1");
  ASSERT_TRUE(params.has_value());
  EXPECT_EQ(*params, (FormParams{{"flag", ""}, {"a", "1"}}));
}

TEST(ParseFormTest, ValueMayContainEquals) {
  std::optional<FormParams> params = ParseForm("a=b=c");
  ASSERT_TRUE(params.has_value());
  EXPECT_EQ(params->at("a"), "b=c");
}

TEST(ParseFormTest, RepeatedKeyKeepsFirstValue) {
  std::optional<FormParams> params = ParseForm("a=1&a=2&a=1");
  ASSERT_TRUE(params.has_value());
  EXPECT_EQ(*params, (FormParams{{"a", "1"}}));
}

TEST(ParseFormTest, KeysAreCaseSensitiveAndDecoded) {
  std::optional<FormParams> params = ParseForm("Name=x&name=y&N%61me2=z");
  ASSERT_TRUE(params.has_value());
  EXPECT_EQ(*params, (FormParams{{"Name", "x"}, {"name", "y"}, {"Name2", "z"}}));
}

TEST(ParseFormTest, RejectsMalformedComponents) {
  EXPECT_EQ(ParseForm("a=%G1"), std::nullopt);
  EXPECT_EQ(ParseForm("a%4=1"), std::nullopt);
  EXPECT_EQ(ParseForm("ok=1&bad=%"), std::nullopt);
}

TEST(ParseFormTest, RejectsEmptyKeys) {
  EXPECT_EQ(ParseForm("=1"), std::nullopt);
  EXPECT_EQ(ParseForm("a=1&="), std::nullopt);
}

}  // namespace
}  // namespace autopipe

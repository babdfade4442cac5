#include "api/gzip.h"

#include <zlib.h>

#include <gtest/gtest.h>

namespace autopipe {
namespace {

std::string Gzip(const std::string& data) {
  z_stream zs{};
  EXPECT_EQ(deflateInit2(&zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY), Z_OK);
  std::string out(deflateBound(&zs, data.size()) + 32, '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  zs.avail_in = static_cast<uInt>(data.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  EXPECT_EQ(deflate(&zs, Z_FINISH), Z_STREAM_END);
  out.resize(zs.total_out);
  deflateEnd(&zs);
  return out;
}

TEST(GzipTest, InflatesWhatGzipMade) {
  std::string body = R"({"Namespace":"X","MetricData":[)";
  for (int i = 0; i < 2000; ++i) body += R"({"MetricName":"m","Value":1.0},)";
  body += "{}]}";
  auto out = Gunzip(Gzip(body));
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_EQ(*out, body);
  auto two = Gunzip(Gzip("ab") + Gzip("cd"));
  ASSERT_TRUE(two.ok());
  EXPECT_EQ(*two, "abcd");
}

TEST(GzipTest, RefusesDamageAndBombs) {
  std::string z = Gzip(std::string(100000, 'a'));
  EXPECT_EQ(Gunzip(z.substr(0, z.size() / 2)).status().code(), "SerializationException");
  EXPECT_EQ(Gunzip("not gzip at all").status().code(), "SerializationException");
  auto big = Gunzip(z, 1000);
  EXPECT_EQ(big.status().code(), "RequestEntityTooLarge");
  EXPECT_EQ(big.status().http_status(), 413);
}

}  // namespace
}  // namespace autopipe

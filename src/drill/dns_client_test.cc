#include "drill/dns_client.h"

#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "dns/dns_server.h"

namespace autopipe::drill {
namespace {

std::shared_ptr<const dns::CompiledZones> Zone(bool primary_healthy) {
  dns::ZoneInput z;
  z.apex = "example.test.";
  z.sets.push_back({"example.test.", "SOA", 300, {"ns.example.test. admin.example.test. 1 7200 900 1209600 60"}});
  z.sets.push_back({"example.test.", "NS", 300, {"ns.example.test."}});
  dns::RecordSetInput p{"app.example.test.", "A", 1, {"192.0.2.1"}, dns::Routing::kFailover};
  p.primary = true;
  p.healthy = primary_healthy;
  dns::RecordSetInput s{"app.example.test.", "A", 1, {"192.0.2.2"}, dns::Routing::kFailover};
  s.primary = false;
  z.sets.push_back(p);
  z.sets.push_back(s);
  return dns::Compile({z});
}

TEST(DrillDnsClientTest, AsksTheServerAndKeepsTheAnswerForItsTtl) {
  dns::DnsServer server;
  auto port = server.Bind("127.0.0.1", 0);
  ASSERT_TRUE(port.ok()) << port.status().message();
  server.SetZones(Zone(true));
  server.Start();
  const std::string address = "127.0.0.1:" + std::to_string(*port);

  auto a = QueryA(address, "app.example.test", 2000);
  ASSERT_TRUE(a.ok()) << a.status().message();
  EXPECT_EQ(a->addresses, std::vector<std::string>{"192.0.2.1"});
  EXPECT_EQ(a->ttl, 1u);
  EXPECT_EQ(a->rcode, "NOERROR");
  auto missing = QueryA(address, "nope.example.test", 2000);
  ASSERT_TRUE(missing.ok());
  EXPECT_TRUE(missing->addresses.empty());
  EXPECT_EQ(missing->rcode, "NXDOMAIN");

  DnsClient client(address, "app.example.test");
  bool queried = false;
  auto first = client.Resolve(2000, &queried);
  ASSERT_TRUE(first.ok());
  EXPECT_TRUE(queried);
  // The primary fails over: the client keeps its cached answer until the TTL (1 s) runs out, then follows.
  server.SetZones(Zone(false));
  auto cached = client.Resolve(2000, &queried);
  ASSERT_TRUE(cached.ok());
  EXPECT_FALSE(queried);
  EXPECT_EQ(cached->addresses, std::vector<std::string>{"192.0.2.1"});
  const auto start = std::chrono::steady_clock::now();
  std::vector<std::string> now;
  for (int i = 0; i < 300 && now != std::vector<std::string>{"192.0.2.2"}; ++i) {
    auto r = client.Resolve(2000, &queried);
    ASSERT_TRUE(r.ok());
    now = r->addresses;
    if (now != std::vector<std::string>{"192.0.2.2"}) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(now, std::vector<std::string>{"192.0.2.2"});
  EXPECT_GE(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(900));
  server.Stop();
}

TEST(DrillDnsClientTest, NoServerIsAnErrorWithinTheTimeout) {
  dns::DnsServer server;
  auto port = server.Bind("127.0.0.1", 0);  // bound, never started: nothing answers
  ASSERT_TRUE(port.ok());
  const auto start = std::chrono::steady_clock::now();
  auto a = QueryA("127.0.0.1:" + std::to_string(*port), "app.example.test", 300);
  EXPECT_FALSE(a.ok());
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(3));
}

}  // namespace
}  // namespace autopipe::drill

#include "dns/authority.h"

#include <gtest/gtest.h>
#include <ldns/ldns.h>

#include <map>

namespace autopipe::dns {
namespace {

std::string Query(const std::string& name, ldns_rr_type type, bool edns = false) {
  ldns_pkt* q = nullptr;
  EXPECT_EQ(ldns_pkt_query_new_frm_str(&q, name.c_str(), type, LDNS_RR_CLASS_IN, LDNS_RD), LDNS_STATUS_OK);
  ldns_pkt_set_id(q, 4242);
  if (edns) ldns_pkt_set_edns_udp_size(q, 4096);
  uint8_t* wire = nullptr;
  size_t n = 0;
  EXPECT_EQ(ldns_pkt2wire(&wire, q, &n), LDNS_STATUS_OK);
  std::string out(reinterpret_cast<char*>(wire), n);
  free(wire);
  ldns_pkt_free(q);
  return out;
}

struct Reply {
  ldns_pkt_rcode rcode;
  bool aa = false, tc = false;
  std::vector<std::string> answer;  // "name ttl type rdata"
  std::vector<std::string> authority;
};

std::vector<std::string> Section(ldns_rr_list* list) {
  std::vector<std::string> out;
  for (size_t i = 0; i < ldns_rr_list_rr_count(list); ++i) {
    char* s = ldns_rr2str(ldns_rr_list_rr(list, i));
    std::string line(s);
    free(s);
    while (!line.empty() && line.back() == '\n') line.pop_back();
    for (char& c : line)
      if (c == '\t') c = ' ';
    out.push_back(line);
  }
  return out;
}

Reply Ask(const CompiledZones* z, const std::string& name, ldns_rr_type type, uint64_t rng = 0, bool udp = true) {
  std::string q = Query(name, type);
  std::string wire;
  EXPECT_TRUE(Answer(z, reinterpret_cast<const uint8_t*>(q.data()), q.size(), udp, rng, &wire));
  ldns_pkt* p = nullptr;
  EXPECT_EQ(ldns_wire2pkt(&p, reinterpret_cast<const uint8_t*>(wire.data()), wire.size()), LDNS_STATUS_OK);
  Reply r;
  r.rcode = ldns_pkt_get_rcode(p);
  r.aa = ldns_pkt_aa(p);
  r.tc = ldns_pkt_tc(p);
  EXPECT_EQ(ldns_pkt_id(p), 4242);
  r.answer = Section(ldns_pkt_answer(p));
  r.authority = Section(ldns_pkt_authority(p));
  ldns_pkt_free(p);
  return r;
}

RecordSetInput Set(std::string name, std::string type, uint32_t ttl, std::vector<std::string> values) {
  RecordSetInput s;
  s.name = std::move(name);
  s.type = std::move(type);
  s.ttl = ttl;
  s.values = std::move(values);
  return s;
}

std::shared_ptr<const CompiledZones> Zones(std::vector<RecordSetInput> extra = {}) {
  ZoneInput z;
  z.apex = "example.test.";
  z.sets = {Set("example.test.", "SOA", 900, {"ns-1.x.test. hostmaster.x.test. 1 7200 900 1209600 60"}),
            Set("example.test.", "NS", 172800, {"ns-1.x.test."}),
            Set("www.example.test.", "A", 120, {"192.0.2.1", "192.0.2.2"}),
            Set("alias.example.test.", "CNAME", 30, {"www.example.test."}),
            Set("deep.sub.example.test.", "TXT", 45, {"\"a b\""}),
            Set("*.wild.example.test.", "A", 10, {"192.0.2.9"})};
  for (auto& s : extra) z.sets.push_back(std::move(s));
  std::vector<std::string> warnings;
  auto c = Compile({z}, &warnings);
  EXPECT_TRUE(warnings.empty()) << warnings.front();
  return c;
}

TEST(DnsAuthorityTest, AnswersWithTheRecordsTtls) {
  auto z = Zones();
  Reply r = Ask(z.get(), "WWW.Example.TEST.", LDNS_RR_TYPE_A);
  EXPECT_EQ(r.rcode, LDNS_RCODE_NOERROR);
  EXPECT_TRUE(r.aa);
  ASSERT_EQ(r.answer.size(), 2u);
  // The owner is written as a pointer to the question's name, so it keeps the asker's case (0x20 resolvers).
  EXPECT_EQ(r.answer[0], "WWW.Example.TEST. 120 IN A 192.0.2.1");
}

TEST(DnsAuthorityTest, CnameIsChasedInsideTheZone) {
  auto z = Zones();
  Reply r = Ask(z.get(), "alias.example.test.", LDNS_RR_TYPE_A);
  ASSERT_EQ(r.answer.size(), 3u);
  EXPECT_EQ(r.answer[0], "alias.example.test. 30 IN CNAME www.example.test.");
}

TEST(DnsAuthorityTest, NxdomainAndNodataCarryTheNegativeSoa) {
  auto z = Zones();
  Reply nx = Ask(z.get(), "nope.example.test.", LDNS_RR_TYPE_A);
  EXPECT_EQ(nx.rcode, LDNS_RCODE_NXDOMAIN);
  ASSERT_EQ(nx.authority.size(), 1u);
  EXPECT_NE(nx.authority[0].find(" 60 IN SOA "), std::string::npos) << nx.authority[0];  // min(900, MINIMUM 60)
  Reply nodata = Ask(z.get(), "www.example.test.", LDNS_RR_TYPE_MX);
  EXPECT_EQ(nodata.rcode, LDNS_RCODE_NOERROR);
  EXPECT_TRUE(nodata.answer.empty());
  EXPECT_EQ(nodata.authority.size(), 1u);
  Reply ent = Ask(z.get(), "sub.example.test.", LDNS_RR_TYPE_A);  // empty non-terminal
  EXPECT_EQ(ent.rcode, LDNS_RCODE_NOERROR);
  EXPECT_EQ(ent.authority.size(), 1u);
}

TEST(DnsAuthorityTest, WildcardAnswersWithTheQueryName) {
  auto z = Zones();
  Reply r = Ask(z.get(), "x.y.wild.example.test.", LDNS_RR_TYPE_A);
  ASSERT_EQ(r.answer.size(), 1u);
  EXPECT_EQ(r.answer[0], "x.y.wild.example.test. 10 IN A 192.0.2.9");
}

TEST(DnsAuthorityTest, OutsideEveryZoneIsRefused) {
  auto z = Zones();
  Reply r = Ask(z.get(), "www.other.test.", LDNS_RR_TYPE_A);
  EXPECT_EQ(r.rcode, LDNS_RCODE_REFUSED);
  EXPECT_FALSE(r.aa);
  EXPECT_EQ(Ask(nullptr, "www.example.test.", LDNS_RR_TYPE_A).rcode, LDNS_RCODE_REFUSED);
}

TEST(DnsAuthorityTest, FailoverFollowsHealth) {
  auto primary = Set("app.example.test.", "A", 5, {"192.0.2.10"});
  primary.routing = Routing::kFailover;
  auto secondary = Set("app.example.test.", "A", 5, {"192.0.2.20"});
  secondary.routing = Routing::kFailover;
  secondary.primary = false;
  EXPECT_EQ(Ask(Zones({primary, secondary}).get(), "app.example.test.", LDNS_RR_TYPE_A).answer,
            std::vector<std::string>{"app.example.test. 5 IN A 192.0.2.10"});
  primary.healthy = false;
  EXPECT_EQ(Ask(Zones({primary, secondary}).get(), "app.example.test.", LDNS_RR_TYPE_A).answer,
            std::vector<std::string>{"app.example.test. 5 IN A 192.0.2.20"});
  secondary.healthy = false;  // both down: the primary
  EXPECT_EQ(Ask(Zones({primary, secondary}).get(), "app.example.test.", LDNS_RR_TYPE_A).answer,
            std::vector<std::string>{"app.example.test. 5 IN A 192.0.2.10"});
}

TEST(DnsAuthorityTest, WeightedPicksInProportion) {
  auto one = Set("w.example.test.", "A", 5, {"192.0.2.1"});
  one.routing = Routing::kWeighted;
  one.weight = 1;
  auto three = Set("w.example.test.", "A", 5, {"192.0.2.3"});
  three.routing = Routing::kWeighted;
  three.weight = 3;
  auto zero = Set("w.example.test.", "A", 5, {"192.0.2.0"});
  zero.routing = Routing::kWeighted;
  zero.weight = 0;
  auto z = Zones({one, three, zero});
  std::map<std::string, int> seen;
  for (uint64_t rng = 0; rng < 400; ++rng) seen[Ask(z.get(), "w.example.test.", LDNS_RR_TYPE_A, rng).answer.at(0)]++;
  EXPECT_EQ(seen["w.example.test. 5 IN A 192.0.2.1"], 100);
  EXPECT_EQ(seen["w.example.test. 5 IN A 192.0.2.3"], 300);
  EXPECT_EQ(seen.count("w.example.test. 5 IN A 192.0.2.0"), 0u);
}

TEST(DnsAuthorityTest, LargeUdpAnswersAreTruncated) {
  std::vector<std::string> texts;
  for (int i = 0; i < 40; ++i) texts.push_back("\"" + std::string(60, 'a' + i % 26) + "\"");
  auto z = Zones({Set("big.example.test.", "TXT", 5, texts)});
  Reply udp = Ask(z.get(), "big.example.test.", LDNS_RR_TYPE_TXT, 0, /*udp=*/true);
  EXPECT_TRUE(udp.tc);
  EXPECT_TRUE(udp.answer.empty());
  Reply tcp = Ask(z.get(), "big.example.test.", LDNS_RR_TYPE_TXT, 0, /*udp=*/false);
  EXPECT_FALSE(tcp.tc);
  EXPECT_EQ(tcp.answer.size(), 40u);
}

TEST(DnsAuthorityTest, GarbageGetsFormerrOrNothing) {
  auto z = Zones();
  std::string wire;
  const uint8_t tiny[4] = {1, 2, 3, 4};
  EXPECT_FALSE(Answer(z.get(), tiny, sizeof(tiny), true, 0, &wire));
  uint8_t bad[20] = {0x12, 0x34, 0x01, 0x00, 0x00, 0x05};  // claims 5 questions, holds none
  ASSERT_TRUE(Answer(z.get(), bad, sizeof(bad), true, 0, &wire));
  ASSERT_GE(wire.size(), 12u);
  EXPECT_EQ(static_cast<uint8_t>(wire[0]), 0x12);
  EXPECT_EQ(wire[3] & 0x0f, LDNS_RCODE_FORMERR);
  std::string response = Query("www.example.test.", LDNS_RR_TYPE_A);
  response[2] |= 0x80;  // a response: never answered
  EXPECT_FALSE(Answer(z.get(), reinterpret_cast<const uint8_t*>(response.data()), response.size(), true, 0, &wire));
}

TEST(DnsAuthorityTest, ValidateRecordValue) {
  EXPECT_EQ(ValidateRecordValue("A", "192.0.2.1"), "");
  EXPECT_NE(ValidateRecordValue("A", "192.0.2"), "");
  EXPECT_NE(ValidateRecordValue("AAAA", "not-an-address"), "");
  EXPECT_EQ(ValidateRecordValue("TXT", "\"hello world\""), "");
  EXPECT_EQ(CanonicalName("WWW.Example.Test"), "www.example.test.");
}

}  // namespace
}  // namespace autopipe::dns

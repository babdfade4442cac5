#include "dns/answer_cache.h"

#include <gtest/gtest.h>
#include <ldns/ldns.h>

#include <set>

namespace autopipe::dns {
namespace {

std::string Query(const std::string& name, ldns_rr_type type, uint16_t id) {
  ldns_pkt* q = nullptr;
  EXPECT_EQ(ldns_pkt_query_new_frm_str(&q, name.c_str(), type, LDNS_RR_CLASS_IN, LDNS_RD), LDNS_STATUS_OK);
  ldns_pkt_set_id(q, id);
  uint8_t* wire = nullptr;
  size_t n = 0;
  EXPECT_EQ(ldns_pkt2wire(&wire, q, &n), LDNS_STATUS_OK);
  std::string out(reinterpret_cast<char*>(wire), n);
  free(wire);
  ldns_pkt_free(q);
  return out;
}

const uint8_t* Bytes(const std::string& s) { return reinterpret_cast<const uint8_t*>(s.data()); }

// The A addresses of a reply, and its ID.
std::pair<uint16_t, std::set<std::string>> Parse(const std::string& wire) {
  ldns_pkt* p = nullptr;
  EXPECT_EQ(ldns_wire2pkt(&p, Bytes(wire), wire.size()), LDNS_STATUS_OK);
  std::set<std::string> addrs;
  ldns_rr_list* answer = ldns_pkt_answer(p);
  for (size_t i = 0; i < ldns_rr_list_rr_count(answer); ++i) {
    char* s = ldns_rdf2str(ldns_rr_rdf(ldns_rr_list_rr(answer, i), 0));
    addrs.insert(s);
    free(s);
  }
  uint16_t id = ldns_pkt_id(p);
  ldns_pkt_free(p);
  return {id, addrs};
}

RecordSetInput Set(std::string name, std::vector<std::string> values, Routing routing = Routing::kSimple,
                   bool primary = true, bool healthy = true) {
  RecordSetInput s;
  s.name = std::move(name);
  s.type = "A";
  s.ttl = 60;
  s.values = std::move(values);
  s.routing = routing;
  s.weight = 1;
  s.primary = primary;
  s.healthy = healthy;
  return s;
}

std::shared_ptr<const CompiledZones> Zones(bool primary_healthy) {
  ZoneInput z;
  z.apex = "example.test.";
  z.sets = {Set("www.example.test.", {"192.0.2.1"}),
            Set("w.example.test.", {"192.0.2.10"}, Routing::kWeighted),
            Set("w.example.test.", {"192.0.2.11"}, Routing::kWeighted),
            Set("f.example.test.", {"192.0.2.20"}, Routing::kFailover, /*primary=*/true, primary_healthy),
            Set("f.example.test.", {"192.0.2.21"}, Routing::kFailover, /*primary=*/false)};
  return Compile({z});
}

TEST(AnswerCacheTest, RepeatedQueryIsAnsweredFromTheCacheWithItsOwnId) {
  auto zones = Zones(true);
  AnswerCache cache;
  std::string first, second, direct;
  std::string q1 = Query("www.example.test.", LDNS_RR_TYPE_A, 1);
  std::string q2 = Query("www.example.test.", LDNS_RR_TYPE_A, 0xbeef);
  ASSERT_TRUE(cache.Answer(zones, Bytes(q1), q1.size(), true, 0, &first));
  ASSERT_TRUE(cache.Answer(zones, Bytes(q2), q2.size(), true, 0, &second));
  EXPECT_EQ(cache.hits(), 1u);
  EXPECT_EQ(Parse(first).first, 1);
  EXPECT_EQ(Parse(second).first, 0xbeef);
  // Byte for byte what the authority itself answers.
  ASSERT_TRUE(Answer(zones.get(), Bytes(q2), q2.size(), true, 0, &direct));
  EXPECT_EQ(second, direct);
}

TEST(AnswerCacheTest, WeightedAnswersAreNeverCached) {
  auto zones = Zones(true);
  AnswerCache cache;
  std::set<std::string> seen;
  for (uint64_t rng = 0; rng < 16; ++rng) {
    std::string q = Query("w.example.test.", LDNS_RR_TYPE_A, 7), reply;
    ASSERT_TRUE(cache.Answer(zones, Bytes(q), q.size(), true, rng, &reply));
    for (const auto& a : Parse(reply).second) seen.insert(a);
  }
  EXPECT_EQ(cache.size(), 0u);
  EXPECT_EQ(seen, (std::set<std::string>{"192.0.2.10", "192.0.2.11"}));
}

TEST(AnswerCacheTest, ANewSnapshotIsAnsweredFromNotFromTheOldReplies) {
  AnswerCache cache;
  std::string q = Query("f.example.test.", LDNS_RR_TYPE_A, 9), reply;
  ASSERT_TRUE(cache.Answer(Zones(true), Bytes(q), q.size(), true, 0, &reply));
  EXPECT_EQ(Parse(reply).second, std::set<std::string>{"192.0.2.20"});
  ASSERT_TRUE(cache.Answer(Zones(true), Bytes(q), q.size(), true, 0, &reply));  // equal content, new snapshot
  EXPECT_EQ(cache.hits(), 0u);
  // The health check flipped: the rebuilt snapshot answers the secondary at once.
  ASSERT_TRUE(cache.Answer(Zones(false), Bytes(q), q.size(), true, 0, &reply));
  EXPECT_EQ(Parse(reply).second, std::set<std::string>{"192.0.2.21"});
}

TEST(AnswerCacheTest, StaysWithinItsBound) {
  auto zones = Zones(true);
  AnswerCache cache(/*max_entries=*/2);
  for (int i = 0; i < 5; ++i) {
    std::string q = Query("n" + std::to_string(i) + ".example.test.", LDNS_RR_TYPE_A, 3), reply;
    ASSERT_TRUE(cache.Answer(zones, Bytes(q), q.size(), true, 0, &reply));
    EXPECT_LE(cache.size(), 2u);
  }
}

TEST(AnswerCacheTest, UnreadableQueriesAreNotAnsweredOrKept) {
  auto zones = Zones(true);
  AnswerCache cache;
  std::string reply;
  const uint8_t short_query[5] = {1, 2, 3, 4, 5};
  EXPECT_FALSE(cache.Answer(zones, short_query, sizeof(short_query), true, 0, &reply));
  EXPECT_EQ(cache.size(), 0u);
}

}  // namespace
}  // namespace autopipe::dns

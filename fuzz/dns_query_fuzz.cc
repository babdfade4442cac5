// libFuzzer target for the global service's DNS query path: any bytes as a DNS message (over UDP and TCP rules)
// against a compiled zone with every routing kind, a wildcard and a CNAME chain. A reply, when one is given, must
// parse back with ldns and carry the query's id. The answer cache must give, for the same bytes, exactly what the
// authority gives whenever that reply did not depend on the random pick.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "dns/answer_cache.h"
#include "dns/authority.h"

// After the standard headers: ldns's headers define macros that break libstdc++'s when they come first.
#include <ldns/ldns.h>

namespace {

std::shared_ptr<const autopipe::dns::CompiledZones> MakeZones() {
  using autopipe::dns::RecordSetInput;
  using autopipe::dns::Routing;
  auto set = [](const char* name, const char* type, std::vector<std::string> values) {
    RecordSetInput s;
    s.name = name;
    s.type = type;
    s.ttl = 60;
    s.values = std::move(values);
    return s;
  };
  autopipe::dns::ZoneInput z;
  z.apex = "example.test.";
  z.sets = {set("example.test.", "SOA", {"ns-1.x.test. hostmaster.x.test. 1 7200 900 1209600 60"}),
            set("example.test.", "NS", {"ns-1.x.test.", "ns-2.x.test."}),
            set("www.example.test.", "A", {"192.0.2.1", "192.0.2.2"}),
            set("www.example.test.", "AAAA", {"2001:db8::1"}),
            set("loop1.example.test.", "CNAME", {"loop2.example.test."}),
            set("loop2.example.test.", "CNAME", {"loop1.example.test."}),
            set("*.wild.example.test.", "TXT", {"\"wild\""})};
  RecordSetInput w1 = set("w.example.test.", "A", {"192.0.2.10"});
  w1.routing = Routing::kWeighted;
  w1.weight = 3;
  RecordSetInput w2 = set("w.example.test.", "A", {"192.0.2.11"});
  w2.routing = Routing::kWeighted;
  w2.weight = 0;
  RecordSetInput f1 = set("f.example.test.", "A", {"192.0.2.20"});
  f1.routing = Routing::kFailover;
  f1.healthy = false;
  RecordSetInput f2 = set("f.example.test.", "A", {"192.0.2.21"});
  f2.routing = Routing::kFailover;
  f2.primary = false;
  z.sets.push_back(w1);
  z.sets.push_back(w2);
  z.sets.push_back(f1);
  z.sets.push_back(f2);
  return autopipe::dns::Compile({z});
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const auto zones = MakeZones();
  for (bool udp : {true, false}) {
    std::string reply;
    if (!autopipe::dns::Answer(zones.get(), data, size, udp, size, &reply)) continue;
    if (udp && size >= 12 && reply.size() > 1232) abort();
    ldns_pkt* p = nullptr;
    if (ldns_wire2pkt(&p, reinterpret_cast<const uint8_t*>(reply.data()), reply.size()) != LDNS_STATUS_OK) abort();
    if (size >= 2 && ldns_pkt_id(p) != static_cast<uint16_t>((data[0] << 8) | data[1])) abort();
    ldns_pkt_free(p);
  }
  static autopipe::dns::AnswerCache cache(64);
  for (bool udp : {true, false}) {
    std::string direct, first, second;
    bool used_rng = false;
    const bool answered = autopipe::dns::Answer(zones.get(), data, size, udp, 1, &direct, &used_rng);
    if (cache.Answer(zones, data, size, udp, 1, &first) != answered) abort();
    if (cache.Answer(zones, data, size, udp, 1, &second) != answered) abort();  // a hit, when it was kept
    if (answered && !used_rng && (first != direct || second != direct)) abort();
  }
  return 0;
}

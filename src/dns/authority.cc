#include "dns/authority.h"

#include <ldns/ldns.h>

#include <algorithm>
#include <cctype>
#include <map>
#include <optional>
#include <unordered_map>
#include <unordered_set>

namespace autopipe::dns {
namespace {

struct RrFree {
  void operator()(ldns_rr* r) const { ldns_rr_free(r); }
};
struct RdfFree {
  void operator()(ldns_rdf* r) const { ldns_rdf_deep_free(r); }
};
struct PktFree {
  void operator()(ldns_pkt* p) const { ldns_pkt_free(p); }
};
using RrPtr = std::unique_ptr<ldns_rr, RrFree>;
using RdfPtr = std::unique_ptr<ldns_rdf, RdfFree>;
using PktPtr = std::unique_ptr<ldns_pkt, PktFree>;

constexpr uint16_t kEdnsSize = 1232;
constexpr int kMaxChase = 8;

std::string RdfText(const ldns_rdf* rdf) {
  char* s = ldns_rdf2str(rdf);
  if (!s) return "";
  std::string out(s);
  free(s);
  return out;
}

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// The name without its first label ("" for the root or a one-label name's parent ".").
std::string Parent(const std::string& name) {
  for (size_t i = 0; i < name.size(); ++i) {
    if (name[i] == '\\') {
      ++i;
      continue;
    }
    if (name[i] == '.') return i + 1 < name.size() ? name.substr(i + 1) : ".";
  }
  return "";
}

struct Candidate {
  Routing routing = Routing::kSimple;
  int64_t weight = 0;
  bool primary = true;
  bool healthy = true;
  std::vector<RrPtr> rrs;
};

struct Node {
  std::map<uint16_t, std::vector<Candidate>> types;
};

struct Zone {
  std::string apex;
  std::unordered_map<std::string, Node> names;
  std::unordered_set<std::string> empty_non_terminals;
  RrPtr negative_soa;  // the SOA with TTL min(TTL, MINIMUM)
};

RdfPtr& RootOrigin() {
  thread_local RdfPtr root(ldns_dname_new_frm_str("."));
  return root;
}

Result<RrPtr> ParseRr(const std::string& name, uint32_t ttl, const std::string& type, const std::string& value) {
  std::string text = name + " " + std::to_string(ttl) + " IN " + type + " " + value;
  ldns_rr* rr = nullptr;
  ldns_rdf* prev = nullptr;
  ldns_status st = ldns_rr_new_frm_str(&rr, text.c_str(), ttl, RootOrigin().get(), &prev);
  if (prev) ldns_rdf_deep_free(prev);
  if (st != LDNS_STATUS_OK || !rr) {
    if (rr) ldns_rr_free(rr);
    return Status(400, "InvalidInput", ldns_get_errorstr_by_id(st) ? ldns_get_errorstr_by_id(st) : "not valid");
  }
  return RrPtr(rr);
}

}  // namespace

class CompiledZones {
 public:
  std::unordered_map<std::string, Zone> zones;

  const Zone* FindZone(const std::string& qname) const {
    for (std::string n = qname; !n.empty(); n = Parent(n)) {
      auto it = zones.find(n);
      if (it != zones.end()) return &it->second;
      if (n == ".") break;
    }
    return nullptr;
  }
};

std::string CanonicalName(const std::string& name) {
  if (name.empty() || name.size() > 1024) return "";
  std::string n = name.back() == '.' ? name : name + ".";
  RdfPtr rdf(ldns_dname_new_frm_str(n.c_str()));
  if (!rdf) return "";
  ldns_dname2canonical(rdf.get());
  return RdfText(rdf.get());
}

std::string ValidateRecordValue(const std::string& type, const std::string& value) {
  auto rr = ParseRr("check.invalid.", 300, type, value);
  if (!rr.ok()) return rr.status().message();
  return "";
}

std::shared_ptr<const CompiledZones> Compile(const std::vector<ZoneInput>& inputs, std::vector<std::string>* warnings) {
  auto out = std::make_shared<CompiledZones>();
  for (const auto& zi : inputs) {
    std::string apex = CanonicalName(zi.apex);
    if (apex.empty()) continue;
    Zone& zone = out->zones[apex];
    zone.apex = apex;
    for (const auto& set : zi.sets) {
      std::string name = CanonicalName(set.name);
      if (name.empty()) continue;
      Candidate c;
      c.routing = set.routing;
      c.weight = set.weight;
      c.primary = set.primary;
      c.healthy = set.healthy;
      uint16_t type = 0;
      for (const auto& v : set.values) {
        auto rr = ParseRr(name, set.ttl, set.type, v);
        if (!rr.ok()) {
          if (warnings) warnings->push_back(name + " " + set.type + " " + v + ": " + rr.status().message());
          continue;
        }
        type = static_cast<uint16_t>(ldns_rr_get_type(rr->get()));
        c.rrs.push_back(std::move(*rr));
      }
      if (c.rrs.empty()) continue;
      if (type == LDNS_RR_TYPE_SOA && name == apex && !zone.negative_soa) {
        ldns_rr* soa = ldns_rr_clone(c.rrs.front().get());
        uint32_t minimum = ldns_rdf2native_int32(ldns_rr_rdf(soa, 6));
        ldns_rr_set_ttl(soa, std::min(ldns_rr_ttl(soa), minimum));
        zone.negative_soa.reset(soa);
      }
      zone.names[name].types[type].push_back(std::move(c));
      // Every ancestor between the name and the apex exists (an empty non-terminal unless it has records).
      for (std::string p = Parent(name); !p.empty() && p.size() > apex.size(); p = Parent(p)) {
        zone.empty_non_terminals.insert(p);
      }
    }
  }
  return out;
}

namespace {

// Picks the set routing answers with; sets *random when the pick depended on `rng` (a weighted choice among
// several), so that the reply may differ between two identical queries.
const Candidate* Pick(const std::vector<Candidate>& cands, uint64_t rng, bool* random) {
  if (cands.empty()) return nullptr;
  if (cands.size() == 1) return &cands.front();
  const Candidate* primary = nullptr;
  const Candidate* secondary = nullptr;
  for (const auto& c : cands) {
    if (c.routing != Routing::kFailover) continue;
    if (c.primary && !primary) primary = &c;
    if (!c.primary && !secondary) secondary = &c;
  }
  if (primary || secondary) {
    if (primary && primary->healthy) return primary;
    if (secondary && secondary->healthy) return secondary;
    return primary ? primary : secondary;
  }
  std::vector<const Candidate*> pool;
  for (const auto& c : cands)
    if (c.healthy) pool.push_back(&c);
  if (pool.empty())
    for (const auto& c : cands) pool.push_back(&c);
  int64_t total = 0;
  for (const auto* c : pool) total += std::max<int64_t>(0, c->weight);
  if (pool.size() > 1) *random = true;
  if (total <= 0) return pool[rng % pool.size()];
  int64_t r = static_cast<int64_t>(rng % static_cast<uint64_t>(total));
  for (const auto* c : pool) {
    r -= std::max<int64_t>(0, c->weight);
    if (r < 0) return c;
  }
  return pool.back();
}

// Appends the picked set's records, with `owner` as their owner when given (wildcard answers).
void AddSet(ldns_pkt* resp, const Candidate* c, const ldns_rdf* owner) {
  if (!c) return;
  for (const auto& rr : c->rrs) {
    ldns_rr* copy = ldns_rr_clone(rr.get());
    if (owner) {
      ldns_rdf_deep_free(ldns_rr_owner(copy));
      ldns_rr_set_owner(copy, ldns_rdf_clone(owner));
    }
    ldns_pkt_push_rr(resp, LDNS_SECTION_ANSWER, copy);
  }
}

bool ToWire(const ldns_pkt* p, std::string* out) {
  uint8_t* wire = nullptr;
  size_t n = 0;
  if (ldns_pkt2wire(&wire, p, &n) != LDNS_STATUS_OK || !wire) return false;
  out->assign(reinterpret_cast<const char*>(wire), n);
  free(wire);
  return true;
}

PktPtr NewReply(uint16_t id, bool rd, ldns_pkt_opcode opcode) {
  PktPtr resp(ldns_pkt_new());
  ldns_pkt_set_id(resp.get(), id);
  ldns_pkt_set_qr(resp.get(), true);
  ldns_pkt_set_rd(resp.get(), rd);
  ldns_pkt_set_opcode(resp.get(), opcode);
  return resp;
}

// The question's class, read from the wire (ldns keeps it in an enum whose range does not cover every 16-bit
// value, so reading an odd class back from ldns would be undefined behaviour). nullopt when it cannot be found.
std::optional<uint16_t> WireQuestionClass(const uint8_t* q, size_t size) {
  size_t at = 12;
  while (at < size) {
    uint8_t len = q[at];
    if (len == 0) break;
    if ((len & 0xc0) != 0) return std::nullopt;  // no compression in a question we answer
    at += 1 + len;
  }
  if (at + 5 > size) return std::nullopt;
  return static_cast<uint16_t>((q[at + 3] << 8) | q[at + 4]);
}

}  // namespace

namespace {

// Answer's body; sets `random` when a weighted pick used rng.
bool AnswerQuery(const CompiledZones* snapshot, const uint8_t* query, size_t size, bool udp, uint64_t rng,
                 std::string* reply, bool& random) {
  if (size < 12) return false;
  if (query[2] & 0x80) return false;  // a response: never answer one (no reflection loops)
  const uint16_t id = static_cast<uint16_t>((query[0] << 8) | query[1]);
  const bool rd = (query[2] & 0x01) != 0;
  const uint8_t opcode = (query[2] >> 3) & 0x0f;  // from the wire: ldns's enum has no value for most opcodes
  if (opcode != 0) {
    PktPtr resp = NewReply(id, rd, LDNS_PACKET_QUERY);
    ldns_pkt_set_rcode(resp.get(), LDNS_RCODE_NOTIMPL);
    if (!ToWire(resp.get(), reply)) return false;
    (*reply)[2] = static_cast<char>((static_cast<uint8_t>((*reply)[2]) & 0x87) | (opcode << 3));  // echo it
    return true;
  }
  ldns_pkt* parsed = nullptr;
  if (ldns_wire2pkt(&parsed, query, size) != LDNS_STATUS_OK || !parsed) {
    if (parsed) ldns_pkt_free(parsed);
    PktPtr resp = NewReply(id, rd, LDNS_PACKET_QUERY);
    ldns_pkt_set_rcode(resp.get(), LDNS_RCODE_FORMERR);
    return ToWire(resp.get(), reply);
  }
  PktPtr q(parsed);
  PktPtr resp = NewReply(id, rd, LDNS_PACKET_QUERY);
  const bool edns = ldns_pkt_edns(q.get());
  size_t limit = 512;
  if (edns) {
    ldns_pkt_set_edns_udp_size(resp.get(), kEdnsSize);
    limit = std::max<size_t>(512, std::min<size_t>(ldns_pkt_edns_udp_size(q.get()), kEdnsSize));
  }
  ldns_rr_list* questions = ldns_pkt_question(q.get());
  if (!questions || ldns_rr_list_rr_count(questions) != 1) {
    ldns_pkt_set_rcode(resp.get(), LDNS_RCODE_FORMERR);
    return ToWire(resp.get(), reply);
  }
  const ldns_rr* question = ldns_rr_list_rr(questions, 0);
  ldns_pkt_push_rr(resp.get(), LDNS_SECTION_QUESTION, ldns_rr_clone(question));
  const ldns_rdf* qname_rdf = ldns_rr_owner(question);
  const uint16_t qtype = static_cast<uint16_t>(ldns_rr_get_type(question));
  if (WireQuestionClass(query, size) != std::optional<uint16_t>(LDNS_RR_CLASS_IN) || !qname_rdf) {
    ldns_pkt_set_rcode(resp.get(), LDNS_RCODE_REFUSED);
    return ToWire(resp.get(), reply);
  }
  std::string qname = Lower(RdfText(qname_rdf));
  const Zone* zone = snapshot ? snapshot->FindZone(qname) : nullptr;
  if (!zone) {
    ldns_pkt_set_rcode(resp.get(), LDNS_RCODE_REFUSED);
    return ToWire(resp.get(), reply);
  }
  ldns_pkt_set_aa(resp.get(), true);
  ldns_pkt_rcode rcode = LDNS_RCODE_NOERROR;
  bool negative = false;
  RdfPtr owner_holder;
  std::string name = qname;
  for (int step = 0; step < kMaxChase; ++step) {
    const Node* node = nullptr;
    const ldns_rdf* owner = nullptr;  // set for a wildcard match
    auto it = zone->names.find(name);
    if (it != zone->names.end()) {
      node = &it->second;
    } else if (!zone->empty_non_terminals.count(name)) {
      // The closest encloser: the nearest ancestor that exists; then its wildcard.
      std::string enc = Parent(name);
      while (!enc.empty() && enc.size() > zone->apex.size() && !zone->names.count(enc) &&
             !zone->empty_non_terminals.count(enc)) {
        enc = Parent(enc);
      }
      auto wild = zone->names.find("*." + (enc.empty() ? zone->apex : enc));
      if (wild != zone->names.end()) {
        node = &wild->second;
        owner_holder.reset(ldns_dname_new_frm_str(name.c_str()));
        owner = owner_holder.get();
      } else {
        rcode = LDNS_RCODE_NXDOMAIN;  // also at the end of a CNAME chain (RFC 6604)
        negative = true;
        break;
      }
    }
    if (!node) {  // an empty non-terminal
      negative = true;
      break;
    }
    if (qtype == LDNS_RR_TYPE_ANY) {
      for (const auto& [type, cands] : node->types) AddSet(resp.get(), Pick(cands, rng, &random), owner);
      break;
    }
    auto t = node->types.find(qtype);
    if (t != node->types.end()) {
      AddSet(resp.get(), Pick(t->second, rng, &random), owner);
      break;
    }
    auto cname = node->types.find(LDNS_RR_TYPE_CNAME);
    if (cname == node->types.end()) {
      negative = true;
      break;
    }
    const Candidate* c = Pick(cname->second, rng, &random);
    AddSet(resp.get(), c, owner);
    if (!c || c->rrs.empty()) break;
    std::string target = Lower(RdfText(ldns_rr_rdf(c->rrs.front().get(), 0)));
    const Zone* target_zone = snapshot->FindZone(target);
    if (target_zone != zone) break;  // outside this zone: the resolver follows it
    name = target;
  }
  ldns_pkt_set_rcode(resp.get(), rcode);
  if (negative && zone->negative_soa) {
    ldns_pkt_push_rr(resp.get(), LDNS_SECTION_AUTHORITY, ldns_rr_clone(zone->negative_soa.get()));
  }
  if (!ToWire(resp.get(), reply)) return false;
  if (udp && reply->size() > limit) {
    PktPtr tc = NewReply(id, rd, LDNS_PACKET_QUERY);
    ldns_pkt_set_aa(tc.get(), true);
    ldns_pkt_set_tc(tc.get(), true);
    if (edns) ldns_pkt_set_edns_udp_size(tc.get(), kEdnsSize);
    ldns_pkt_push_rr(tc.get(), LDNS_SECTION_QUESTION, ldns_rr_clone(question));
    return ToWire(tc.get(), reply);
  }
  return true;
}

}  // namespace

bool Answer(const CompiledZones* snapshot, const uint8_t* query, size_t size, bool udp, uint64_t rng,
            std::string* reply, bool* used_rng) {
  bool random = false;
  bool ok = AnswerQuery(snapshot, query, size, udp, rng, reply, random);
  if (used_rng) *used_rng = random;
  return ok;
}

}  // namespace autopipe::dns

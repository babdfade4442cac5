// Authority: the answers of an authoritative DNS server for a set of zones, computed with ldns (Debian's
// libldns: it parses the query and writes the reply, names and record data in DNS's own presentation format).
//
// The zones are given as a ZoneSet (record sets in presentation format, with their routing: simple, weighted,
// failover, and whether each set is healthy), compiled once into ldns records by Compile(); a compiled
// snapshot is immutable and answers any number of queries at once. Answer() implements:
//   - the zone: the longest apex that is a suffix of the query name; no zone: REFUSED (not authoritative);
//   - records of the asked type at the name: answered (AA) with each record's TTL; a CNAME at the name answers
//     any other type with the CNAME (chased within our zones, at most 8 steps);
//   - a name with no records of that type, or an empty non-terminal: NODATA (NOERROR, no answer, the zone's SOA
//     in the authority section with TTL min(SOA TTL, SOA MINIMUM), RFC 2308);
//   - a name that does not exist: wildcard `*.<closest encloser>` if the zone has one, else NXDOMAIN (+ SOA);
//   - routing: several weighted sets for one name and type: one is picked at random in proportion to its
//     weight among the healthy ones (all, when none is healthy; equally when all weights are 0); failover: the
//     PRIMARY set when it is healthy, else the SECONDARY when it is, else the PRIMARY;
//   - NS queries at the apex, SOA at the apex, ANY (every type at the name, routing applied per type);
//   - EDNS0: the reply carries OPT when the query did (size 1232); over UDP a reply larger than the client's
//     size (512 without EDNS) is sent truncated (TC, empty sections) so that the client retries over TCP;
//   - a query that does not parse: FORMERR when at least the header could be read, else no reply; an opcode
//     other than QUERY: NOTIMP; a class other than IN: REFUSED.
//
// Thread-safety: a CompiledZones value is immutable; Answer() is safe from any number of threads.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"

namespace autopipe::dns {

enum class Routing { kSimple, kWeighted, kFailover };

struct RecordSetInput {
  std::string name;  // absolute or relative to nothing: "www.example.test." (a trailing dot is added)
  std::string type;  // "A", "AAAA", "CNAME", "TXT", "NS", "SOA", "MX", ...
  uint32_t ttl = 300;
  std::vector<std::string> values;  // presentation format, e.g. "192.0.2.1", "\"some text\""
  Routing routing = Routing::kSimple;
  int64_t weight = 0;    // kWeighted
  bool primary = true;   // kFailover: PRIMARY or SECONDARY
  bool healthy = true;   // its health check (and alias target) verdict; simple sets ignore it
};

struct ZoneInput {
  std::string apex;  // "example.test."
  std::vector<RecordSetInput> sets;
};

class CompiledZones;

// Compiles zones into a snapshot. A record that ldns cannot parse is skipped and named in *warnings (the API
// validates values with ValidateRecordValue first, so this does not happen for stored zones).
std::shared_ptr<const CompiledZones> Compile(const std::vector<ZoneInput>& zones,
                                             std::vector<std::string>* warnings = nullptr);

// Checks one value of a record of `type` the way the DNS server will read it; empty when fine, else why not.
std::string ValidateRecordValue(const std::string& type, const std::string& value);

// The canonical form of a domain name as the server matches it: lower case, trailing dot, DNS escapes
// normalised. Empty when it is not a valid name.
std::string CanonicalName(const std::string& name);

// Answers one query message. `udp` limits the reply to the client's size (TC when it does not fit). Returns
// false when nothing should be sent (not even a header could be read). `rng` is any random 64-bit value (the
// weighted pick). `snapshot` may be null: every query is then REFUSED. *used_rng (when given) is set to whether
// the reply depended on `rng`; when it did not, the reply is a function of the query's bytes and the snapshot
// alone (dns/answer_cache.h relies on this).
bool Answer(const CompiledZones* snapshot, const uint8_t* query, size_t size, bool udp, uint64_t rng,
            std::string* reply, bool* used_rng = nullptr);

}  // namespace autopipe::dns

// A tiny stub resolver for the drill: asks one DNS server (the global service's, HOST:PORT) for a name's A
// records over UDP with ldns, and caches the answer for its TTL as a client's resolver would.
//
// Thread-safety: a DnsClient is used by one thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"

namespace autopipe::drill {

struct DnsAnswer {
  std::vector<std::string> addresses;  // IPv4, in answer order; empty for NODATA/NXDOMAIN
  uint32_t ttl = 0;                    // the smallest TTL of the A records (0 when none)
  std::string rcode;                   // NOERROR, NXDOMAIN, ...
};

// One query, no cache. `server` is HOST:PORT (IPv4).
Result<DnsAnswer> QueryA(const std::string& server, const std::string& name, int timeout_ms);

class DnsClient {
 public:
  DnsClient(std::string server, std::string name) : server_(std::move(server)), name_(std::move(name)) {}
  // The cached answer while its TTL lasts, else a new query (a failed query is not cached). `queried` says
  // whether this call asked the server.
  Result<DnsAnswer> Resolve(int timeout_ms, bool* queried = nullptr);

 private:
  const std::string server_, name_;
  bool have_ = false;
  DnsAnswer cached_;
  std::chrono::steady_clock::time_point expires_;
};

}  // namespace autopipe::drill

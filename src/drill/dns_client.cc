#include "drill/dns_client.h"

#include <ldns/ldns.h>

#include <algorithm>
#include <memory>

namespace autopipe::drill {

Result<DnsAnswer> QueryA(const std::string& server, const std::string& name, int timeout_ms) {
  const size_t colon = server.rfind(':');
  if (colon == std::string::npos) return Status::InvalidParameterValue("DNS server is not HOST:PORT: " + server);
  const std::string host = server.substr(0, colon);
  const int port = std::atoi(server.c_str() + colon + 1);
  std::unique_ptr<ldns_resolver, decltype(&ldns_resolver_deep_free)> res(ldns_resolver_new(),
                                                                          &ldns_resolver_deep_free);
  if (!res) return Status::Internal("ldns_resolver_new failed");
  ldns_rdf* ns = ldns_rdf_new_frm_str(LDNS_RDF_TYPE_A, host.c_str());
  if (!ns) return Status::InvalidParameterValue("DNS server address is not IPv4: " + host);
  const ldns_status pushed = ldns_resolver_push_nameserver(res.get(), ns);
  ldns_rdf_deep_free(ns);  // the resolver keeps its own copy
  if (pushed != LDNS_STATUS_OK) return Status::Internal("ldns: cannot use nameserver " + host);
  ldns_resolver_set_port(res.get(), static_cast<uint16_t>(port));
  timeval tv{timeout_ms / 1000, (timeout_ms % 1000) * 1000};
  ldns_resolver_set_timeout(res.get(), tv);
  ldns_resolver_set_retry(res.get(), 1);
  ldns_resolver_set_retrans(res.get(), 1);
  ldns_resolver_set_recursive(res.get(), false);
  ldns_resolver_set_usevc(res.get(), false);
  ldns_resolver_set_fail(res.get(), false);
  ldns_rdf* dname = ldns_dname_new_frm_str(name.c_str());
  if (!dname) return Status::InvalidParameterValue("not a DNS name: " + name);
  ldns_pkt* pkt = nullptr;
  const ldns_status st = ldns_resolver_send(&pkt, res.get(), dname, LDNS_RR_TYPE_A, LDNS_RR_CLASS_IN, 0);
  ldns_rdf_deep_free(dname);
  if (st != LDNS_STATUS_OK || !pkt) {
    if (pkt) ldns_pkt_free(pkt);
    return Status(503, "DnsUnreachable", std::string("DNS query to ") + server + " failed: " + ldns_get_errorstr_by_id(st),
                  false);
  }
  DnsAnswer out;
  char* rcode = ldns_pkt_rcode2str(ldns_pkt_get_rcode(pkt));
  out.rcode = rcode ? rcode : "";
  free(rcode);
  ldns_rr_list* answer = ldns_pkt_answer(pkt);
  bool first = true;
  for (size_t i = 0; answer && i < ldns_rr_list_rr_count(answer); ++i) {
    ldns_rr* rr = ldns_rr_list_rr(answer, i);
    if (ldns_rr_get_type(rr) != LDNS_RR_TYPE_A || ldns_rr_rd_count(rr) < 1) continue;
    char* text = ldns_rdf2str(ldns_rr_rdf(rr, 0));
    if (text) out.addresses.emplace_back(text);
    free(text);
    out.ttl = first ? ldns_rr_ttl(rr) : std::min(out.ttl, ldns_rr_ttl(rr));
    first = false;
  }
  ldns_pkt_free(pkt);
  return out;
}

Result<DnsAnswer> DnsClient::Resolve(int timeout_ms, bool* queried) {
  const auto now = std::chrono::steady_clock::now();
  if (queried) *queried = false;
  if (have_ && now < expires_) return cached_;
  if (queried) *queried = true;
  auto answer = QueryA(server_, name_, timeout_ms);
  if (!answer.ok()) {
    have_ = false;
    return answer.status();
  }
  cached_ = *answer;
  have_ = true;
  // A negative answer is kept for a second (the zone's negative TTL is not asked for here).
  const uint32_t ttl = cached_.addresses.empty() ? 1 : cached_.ttl;
  expires_ = now + std::chrono::seconds(ttl);
  return cached_;
}

}  // namespace autopipe::drill

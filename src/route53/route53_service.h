// Route53Api: Route 53's REST-XML API (2013-04-01) over the global service's state store.
//
// Handle() takes a raw HTTP request (method, path and query, headers, body), verifies SigV4 (service route53,
// region us-east-1, the partition's key pair), routes by method and path, runs the operation and renders
// Route 53's XML reply, or its error (<ErrorResponse><Error><Type/><Code/><Message/></Error><RequestId/>).
// Operations: CreateHostedZone, GetHostedZone, ListHostedZones, DeleteHostedZone, ChangeResourceRecordSets,
// ListResourceRecordSets, GetChange, CreateHealthCheck, GetHealthCheck, GetHealthCheckStatus, ListHealthChecks,
// DeleteHealthCheck. Writes run under one write lock and commit atomically (a refused request changes nothing);
// every write is durable before the reply (store/). Documents: route53_zone (the zone and all its record sets,
// so a change batch is one commit), route53_change, route53_health_check.
//
// A change is PENDING until the DNS server answers from a snapshot at least as new as the change's commit
// (dns_applied_revision), then INSYNC.
//
// Thread-safety: Handle() is safe from many threads (reads take no lock; writes take write_lock).
#pragma once

#include <functional>
#include <mutex>
#include <string>

#include "api/protocol.h"
#include "api/sigv4.h"
#include "common/clock.h"
#include "route53/health_checker.h"
#include "store/store.h"

namespace autopipe::route53 {

namespace kind {
inline constexpr char kZone[] = "route53_zone";
inline constexpr char kChange[] = "route53_change";
inline constexpr char kHealthCheck[] = "route53_health_check";
}  // namespace kind

struct Route53Deps {
  Store* store = nullptr;
  const Clock* clock = nullptr;
  SecretLookup secrets;
  HealthChecker* health = nullptr;  // may be null (tests): every check then reads healthy, never probed
  // Empty when an alias target resolves, else Route 53's message (may be null: every alias target accepted).
  std::function<std::string(const Json& alias_target, const std::string& type)> check_alias;
  std::function<uint64_t()> dns_applied_revision;  // may be null: changes are INSYNC at once
  std::mutex* write_lock = nullptr;
  bool verify_signatures = true;  // false only in tests and fuzzers
};

class Route53Api {
 public:
  explicit Route53Api(Route53Deps deps) : d_(std::move(deps)) {}
  HttpReply Handle(const SigV4Request& req) const;
  // The HTTP edge's own refusals (400/405/408/413) in Route 53's error envelope.
  static HttpReply Refuse(const SigV4Request& head, const Status& error);

  // The health checks the store holds, as the checker runs them.
  std::vector<HealthCheckConfig> HealthChecks() const;

 private:
  const Route53Deps d_;
};

// Route 53's error body for a Status.
HttpReply ErrorReply(const Status& error);

}  // namespace autopipe::route53

// Route 53's record sets: parsing a ChangeBatch from its XML, applying it to a hosted zone's record sets with
// Route 53's rules (InvalidChangeBatch messages in Route 53's words), and the zone's default SOA and NS sets.
//
// A record set is stored as JSON in Route 53's names: Name (canonical: lower case, trailing dot), Type,
// SetIdentifier, Weight, Failover (PRIMARY/SECONDARY), TTL, ResourceRecords (the values, presentation format),
// AliasTarget {HostedZoneId, DNSName, EvaluateTargetHealth}, HealthCheckId. Absent fields are left out.
//
// Thread-safety: pure functions.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "common/status.h"
#include "route53/xml.h"
#include "store/store.h"

namespace autopipe::route53 {

struct Change {
  std::string action;  // CREATE, DELETE, UPSERT
  Json set;            // the record set as stored
};

// The record types this server serves.
bool SupportedType(const std::string& type);

// Parses <ChangeResourceRecordSetsRequest><ChangeBatch>...; structural errors are InvalidInput.
Result<std::vector<Change>> ParseChangeBatch(const XmlNode& request);

// Checks that a change's references exist: health checks (NoSuchHealthCheck) and alias targets (a message for
// InvalidChangeBatch, or empty when fine).
struct ChangeContext {
  std::string apex;     // the zone's name, canonical
  std::string zone_id;  // Z...
  std::function<bool(const std::string& health_check_id)> health_check_exists;
  // Empty when the alias target resolves, else why not.
  std::function<std::string(const Json& alias_target, const std::string& type)> check_alias;
};

// Applies `changes` to `sets` (the zone's record sets) all or nothing: on error `sets` is unchanged and the
// Status is InvalidChangeBatch with every message in Route 53's bracketed list, or NoSuchHealthCheck.
Status ApplyChanges(const ChangeContext& ctx, const std::vector<Change>& changes, Json* sets);

// The SOA and NS record sets Route 53 gives a new zone.
Json DefaultRecordSets(const std::string& apex);

// "[name='www.example.test.', type='A']" (with set-identifier when given): how Route 53's messages name a set.
std::string DescribeSet(const Json& set);

// Writes one record set as <ResourceRecordSet> XML.
void WriteRecordSet(XmlWriter& w, const Json& set);

}  // namespace autopipe::route53

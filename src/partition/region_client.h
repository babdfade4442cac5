// RegionClient: one Query-protocol call to another region of the partition, over its API endpoint (loopback HTTP),
// SigV4-signed with the partition's key pair (partition/partition.h), as any AWS client would sign it. Used by
// Route 53's alias resolver (the global service asking a region about its load balancers) and by RDS cross-region
// read replicas (one region asking another to register a replica on its DB instance), and by `autopipe drill`
// (drill/drill.cc), which also calls Route 53's REST-XML API with CallApi.
//
// Thread-safety: CallRegion is a free function, safe from any thread; it blocks for at most the timeout, so call
// it with no lock held.
#pragma once

#include <string>

#include "common/status.h"
#include "partition/partition.h"
#include "route53/xml.h"

namespace autopipe::partition {

// POSTs `body` (form-encoded Query parameters, Action and Version included) to region.endpoint, signed for
// `service` in region.region. Returns the parsed XML reply of a 200. An error reply becomes the region's own
// error (its HTTP status, <Code> and <Message>); no reply at all (refused, timed out) is 503
// "RegionUnavailable".
Result<route53::XmlNode> CallRegion(const RegionEntry& region, const KeyPair& key, const std::string& service,
                                   const std::string& body, long timeout_ms = 2000);

// Any signed call (a GET or DELETE of a REST API such as Route 53's, or a POST): the parsed XML reply of a 2xx, else
// the error the reply carries, or 503 "RegionUnavailable" when nothing answered.
struct ApiCall {
  std::string endpoint;  // http://HOST:PORT
  std::string region;    // the signing region (Route 53: us-east-1)
  std::string service;   // the signing service: rds, elasticloadbalancing, route53, ...
  std::string method = "POST";
  std::string target = "/";  // path and query string
  std::string body;          // form-encoded for a POST
  long timeout_ms = 2000;
};
Result<route53::XmlNode> CallApi(const ApiCall& call, const KeyPair& key);

// Depth-first search for every element named `name` under n.
void FindAll(const route53::XmlNode& n, const std::string& name, std::vector<const route53::XmlNode*>* out);
std::vector<const route53::XmlNode*> FindAll(const route53::XmlNode& n, const std::string& name);
// The text of the first element named `name` anywhere under n ("" when none).
std::string FindText(const route53::XmlNode& n, const std::string& name);

}  // namespace autopipe::partition

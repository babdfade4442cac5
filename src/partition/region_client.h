// Region client: one SigV4-signed call to an API of this partition (a region's Query API, or the global
// service's Route 53 REST-XML API) with the partition's key pair, over libcurl, the reply parsed as XML.
//
// Used by the global service (route53/alias.cc asks the region owning a load balancer about it) and by
// `autopipe drill` (drill/drill.cc drives two regions and Route 53). An AWS error reply (<Error><Code>...) comes
// back as a Status with that code and message; no answer at all (the region is down) as code "Unreachable".
//
// Thread-safety: pure functions (each call has its own curl handle).
#pragma once

#include <string>

#include "common/status.h"
#include "partition/partition.h"
#include "route53/xml.h"

namespace autopipe::partition {

struct ApiCall {
  std::string endpoint;  // http://HOST:PORT
  std::string region;    // the signing region (Route 53: us-east-1)
  std::string service;   // the signing service: ec2, elasticloadbalancing, rds, route53, ...
  std::string method = "POST";
  std::string target = "/";  // path and query string
  std::string body;          // form-encoded for POST Query calls
  long timeout_ms = 2000;
};

// Sends the call, signed with `key`. 2xx: the parsed reply; else the error the reply carries.
Result<route53::XmlNode> CallApi(const ApiCall& call, const KeyPair& key);

// A Query API call ("Action=...&Version=...&...") to a region, as a POST.
Result<route53::XmlNode> CallRegion(const RegionEntry& region, const KeyPair& key, const std::string& service,
                                    const std::string& body, long timeout_ms = 2000);

// Depth-first: every element named `name` under `n`.
std::vector<const route53::XmlNode*> FindAll(const route53::XmlNode& n, const std::string& name);

}  // namespace autopipe::partition

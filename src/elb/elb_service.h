// The Classic Elastic Load Balancing API (2012-06-01, Query protocol): load balancers with their listeners,
// Availability Zones, health check, attributes and tags, instance registration and instance health. Handlers
// validate, write the load_balancer document (elb/load_balancers.h) and return; the load-balancer controller
// starts, reconfigures and stops the `autopipe lb` nodes that serve it. HTTP and TCP listeners only: there is
// no TLS, so HTTPS and SSL listeners are refused with UnsupportedProtocol.
//
// Thread-safety: the writing operations run under RegionContext::mu, held by the router (ApiService); the
// Describe operations only read the store and take no lock.
#pragma once

#include <string>

#include "api/api_server.h"
#include "region/context.h"

namespace autopipe {

// The service's operation table, bound to the region.
ApiService ElbApi(RegionContext* ctx);

// Route 53's hosted zone of Classic (and Application) Load Balancers in `region` (CanonicalHostedZoneNameID), as
// AWS publishes them; a region AWS does not have gets us-west-2's.
const char* ClassicLbHostedZoneId(const std::string& region);

}  // namespace autopipe

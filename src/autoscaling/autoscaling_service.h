// The Auto Scaling API (2011-01-01, Query protocol): launch configurations, groups, their instances, health,
// activities, suspended processes and tags. Handlers validate, write desired state and return; the
// GroupController does the launching and terminating.
//
// Thread-safety: the writing operations run under RegionContext::mu, held by the router (ApiService); the
// Describe operations only read the store and take no lock.
#pragma once

#include <string>

#include "api/api_server.h"
#include "region/context.h"

namespace autopipe {

// The service's operation table, bound to the region.
ApiService AutoScalingApi(RegionContext* ctx);

}  // namespace autopipe

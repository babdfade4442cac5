// The Auto Scaling API (2011-01-01, Query protocol): launch configurations, groups, their instances, health,
// activities, suspended processes and tags. Handlers validate, write desired state and return; the
// GroupController does the launching and terminating.
//
// Thread-safety: handlers take RegionContext::mu.
#pragma once

#include <map>
#include <string>

#include "api/api_server.h"
#include "region/context.h"

namespace autopipe {

ServiceInfo AutoScalingServiceInfo();
std::map<std::string, Handler> AutoScalingHandlers(RegionContext* ctx);

}  // namespace autopipe

// The EC2 API subset (version 2016-11-15, EC2 protocol): DescribeImages, DescribeInstances, TerminateInstances,
// DescribeAvailabilityZones, DescribeRegions. Instances are created by Auto Scaling (RunInstances is not offered
// yet); their processes are the InstanceController's business.
//
// Thread-safety: handlers take RegionContext::mu.
#pragma once

#include <map>
#include <string>

#include "api/api_server.h"
#include "region/context.h"

namespace autopipe {

ServiceInfo Ec2ServiceInfo();
std::map<std::string, Handler> Ec2Handlers(RegionContext* ctx);

// Shell-style wildcard match used by EC2 filters ('*' any run, '?' any one character).
bool WildcardMatch(const std::string& pattern, const std::string& value);

}  // namespace autopipe

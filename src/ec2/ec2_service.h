// The EC2 API subset (version 2016-11-15, EC2 protocol): DescribeImages, DescribeInstances, TerminateInstances,
// StopInstances, StartInstances, RebootInstances, DescribeAvailabilityZones, DescribeRegions. Instances are created by Auto Scaling (RunInstances is not offered
// yet); their processes are the InstanceController's business.
//
// Thread-safety: the writing operations (Terminate/Stop/Start/RebootInstances) run under RegionContext::mu, held by the router;
// the Describe operations only read the store and take no lock.
#pragma once

#include <string>

#include "api/api_server.h"
#include "region/context.h"

namespace autopipe {

// The service's operation table, bound to the region.
ApiService Ec2Api(RegionContext* ctx);

// Shell-style wildcard match used by EC2 filters ('*' any run, '?' any one character).
bool WildcardMatch(const std::string& pattern, const std::string& value);

}  // namespace autopipe

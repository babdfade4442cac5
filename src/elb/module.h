// The Elastic Load Balancing module: Classic Load Balancers (the elasticloadbalancing API), the
// LoadBalancerController, the load-balancer node processes (one per enabled AZ) and the `lb` subcommand that
// is one node.
//
// Thread-safety: see region/module.h.
#pragma once

#include "region/module.h"

namespace autopipe {

ServiceModule ElbModule();

}  // namespace autopipe

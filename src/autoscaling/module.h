// The Auto Scaling module: launch configurations, groups and activities (the autoscaling API) and the
// GroupController. It runs no process of its own: its instances belong to the EC2 module.
//
// Thread-safety: see region/module.h.
#pragma once

#include "region/module.h"

namespace autopipe {

ServiceModule AutoScalingModule();

}  // namespace autopipe

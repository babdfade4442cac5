// The EC2 module: images, instances, AZs and regions (the ec2 API), the InstanceController, an instance's
// processes (one process group per instance) and the `instance-init` / `sample-app` subcommands they run.
//
// Thread-safety: see region/module.h.
#pragma once

#include "region/module.h"

namespace autopipe {

ServiceModule Ec2Module();

}  // namespace autopipe

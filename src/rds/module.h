// The RDS module: DB instances on real MariaDB servers (rds/db_instances.h, rds/db_controller.h).
//
// Thread-safety: see region/module.h.
#pragma once

#include "region/module.h"

namespace autopipe {
ServiceModule RdsModule();
}  // namespace autopipe

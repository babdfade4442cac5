// The RDS module: DB instances (the rds API, rds_service.h) run as real MariaDB servers by the DB instance
// controller (db_controller.h), with their events. The documents are described in rds/db_instances.h.
//
// Thread-safety: see region/module.h.
#pragma once

#include "region/module.h"

namespace autopipe {

ServiceModule RdsModule();

}  // namespace autopipe

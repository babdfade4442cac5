// The RDS API (2014-10-31, Query protocol) for MySQL and MariaDB DB instances: create, describe (filters,
// pagination), modify (with PendingModifiedValues when not applied immediately), reboot (with ForceFailover),
// delete (with a final snapshot), stop and start, events, engine versions, orderable options, tags, and DB
// snapshots (DescribeDBSnapshots here; Create/Copy/Delete and snapshot tags validated and recorded by
// rds/db_snapshots.h). Handlers validate as RDS does,
// write the db_instance / db_instance_secret / rds_event documents (rds/db_instances.h: the API writes what is
// wanted in Spec, the DB instance controller makes it so) and return. Whatever the engine is called, what runs is
// Debian's MariaDB 10.11 (DescribeDBEngineVersions says so). No password is ever put in a response, log or event.
//
// Thread-safety: the writing operations run under RegionContext::mu, held by the router (ApiService); the
// Describe and List operations only read the store and take no lock.
#pragma once

#include "api/api_server.h"
#include "region/context.h"

namespace autopipe {

// The service's operation table, bound to the region.
ApiService RdsApi(RegionContext* ctx);

}  // namespace autopipe

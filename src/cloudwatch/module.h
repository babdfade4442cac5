// The CloudWatch module: the monitoring API (cloudwatch_service.h), alarms as store documents, the metric store in
// DATA_DIR/cloudwatch-metrics.db, and the CloudWatchController that collects every module's metrics, evaluates
// alarms on CloudWatch's cadence and runs their actions (cloudwatch_region.h).
//
// Thread-safety: see region/module.h.
#pragma once

#include "region/module.h"

namespace autopipe {

ServiceModule CloudWatchModule();

}  // namespace autopipe

// The CloudWatch API (monitoring, 2010-08-01) over both of its wire protocols: Query (aws CLI v2 from Debian,
// older SDKs) and AWS JSON 1.0 (aws CLI v1 1.45, boto3 1.43: X-Amz-Target GraniteServiceVersion20100801.<Op>).
// The router flattens JSON 1.0 bodies into the Query parameters of the same shape (api/protocol.h), so each
// handler serves both; results render as XML or JSON by the protocol the request spoke.
//
// Operations: PutMetricData, GetMetricStatistics, GetMetricData, ListMetrics, PutMetricAlarm, DescribeAlarms,
// DescribeAlarmsForMetric, DescribeAlarmHistory, DeleteAlarms, SetAlarmState, EnableAlarmActions,
// DisableAlarmActions, TagResource, UntagResource, ListTagsForResource, with the validation of AWS-SEMANTICS §5.
//
// Thread-safety: alarm writes run under RegionContext::mu (held by the router); metric writes and every read take
// no region lock (the metric store has its own).
#pragma once

#include <memory>

#include "api/api_server.h"
#include "cloudwatch/cloudwatch_region.h"
#include "region/context.h"

namespace autopipe::cloudwatch {

ApiService CloudWatchApi(RegionContext* ctx, std::shared_ptr<CloudWatchRegion> region);

// Parses a timestamp parameter as both protocols send it: ISO-8601 (Query) or epoch seconds (JSON 1.0).
std::optional<int64_t> ParseTimestampMillis(const std::string& text);

}  // namespace autopipe::cloudwatch

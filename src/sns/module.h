// The SNS module: topics, subscriptions and Publish (the sns API, sns_service.h), delivery to http/https and
// email endpoints (delivery.h), the unsigned SubscribeURL/UnsubscribeURL/SigningCertURL GETs, and the alarm
// action "arn:aws:sns:..." that publishes CloudWatch's alarm notification. It runs no process of its own.
//
// Thread-safety: see region/module.h.
#pragma once

#include "region/module.h"

namespace autopipe {

ServiceModule SnsModule();

// The alarm action: records the alarm notification's deliveries to the topic (takes RegionContext::mu briefly,
// sends nothing itself). NotFound when the topic does not exist.
Status PublishAlarmNotification(RegionContext* ctx, const std::string& topic_arn, const AlarmStateChange& change);

}  // namespace autopipe

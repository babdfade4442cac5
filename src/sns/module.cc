#include "sns/module.h"

#include "api/api_server.h"
#include "sns/delivery.h"
#include "sns/sns_model.h"
#include "sns/sns_service.h"

namespace autopipe {

Status PublishAlarmNotification(RegionContext* ctx, const std::string& topic_arn, const AlarmStateChange& change) {
  auto [subject, message] = sns::AlarmNotification(*ctx, change);
  sns::PublishRequest req;
  req.topic_arn = topic_arn;
  req.subject = subject;
  req.message = message;
  std::lock_guard lock(*ctx->mu);
  return sns::RecordPublish(ctx, req).status();
}

ServiceModule SnsModule() {
  ServiceModule m;
  m.name = "sns";
  m.document_kinds = {kind::kSnsTopic, kind::kSnsSubscription, kind::kSnsDelivery};
  m.add_api = [](RegionContext* ctx, ApiRouter* router) {
    router->AddService(SnsApi(ctx));
    router->AddPublicHandler([ctx](const SigV4Request& r) { return SnsPublicHandler(ctx, r); });
  };
  m.controllers = [](RegionContext* ctx) {
    std::vector<std::unique_ptr<Controller>> v;
    v.push_back(std::make_unique<sns::DeliveryController>(ctx));
    v.push_back(std::make_unique<sns::PendingSubscriptionExpiry>(ctx));
    return v;
  };
  m.alarm_action_targets = {{"arn:aws:sns:", [](RegionContext* ctx, const std::string& arn,
                                                 const AlarmStateChange& change) {
                               return PublishAlarmNotification(ctx, arn, change);
                             }}};
  return m;
}

}  // namespace autopipe

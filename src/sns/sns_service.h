// The SNS API (2010-03-31, Query protocol): topics with attributes and tags, subscriptions with the confirmation
// handshake, and Publish. Handlers validate, write the sns_* documents (sns_model.h) and return; a Publish or
// Subscribe records its deliveries in the same commit, and the DeliveryController (delivery.h) sends them.
//
// The region also answers three unsigned GETs for SNS (SnsPublicHandler): SubscribeURL
// (/?Action=ConfirmSubscription&TopicArn=..&Token=..), UnsubscribeURL (/?Action=Unsubscribe&SubscriptionArn=..)
// and SigningCertURL (/SimpleNotificationService-<hash>.pem).
//
// Thread-safety: the writing operations run under RegionContext::mu, held by the router (ApiService) or by the
// public handler; the List/Get operations only read the store and take no lock.
#pragma once

#include <optional>

#include "api/api_server.h"
#include "region/context.h"

namespace autopipe {

ApiService SnsApi(RegionContext* ctx);

// The unsigned GETs above; nullopt for any other request.
std::optional<HttpReply> SnsPublicHandler(RegionContext* ctx, const SigV4Request& request);

}  // namespace autopipe

#include "sts/module.h"

namespace autopipe {

ApiService StsApi(RegionContext* ctx) {
  (void)ctx;  // nothing region-specific: the account is the partition's, and IAM ARNs carry no region
  ApiService api;
  api.info = ServiceInfo("sts", "2011-06-15", "https://sts.amazonaws.com/doc/2011-06-15/", WireProtocol::kQuery);
  api.operations = {
      Operation{"GetCallerIdentity", Access::kRead, [](const Params&) -> Result<Json> {
                  // The region's key pair is the account's root credential (AWS answers a root key this way).
                  return Json{{"UserId", kAccountId},
                              {"Account", kAccountId},
                              {"Arn", std::string("arn:aws:iam::") + kAccountId + ":root"}};
                }},
  };
  return api;
}

ServiceModule StsModule() {
  ServiceModule m;
  m.name = "sts";
  m.add_api = [](RegionContext* ctx, ApiRouter* router) { router->AddService(StsApi(ctx)); };
  return m;
}

}  // namespace autopipe

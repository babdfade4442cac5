// The STS module: GetCallerIdentity, which tools call first to learn whose credentials they hold (Terraform's AWS
// provider does at every start). A region serves one account (ec2/catalog.h kAccountId) with one key pair, whose
// holder is that account's root user, so STS answers from constants and stores nothing.
//
// Thread-safety: see region/module.h; the handler only reads constants.
#pragma once

#include "api/api_server.h"
#include "region/module.h"

namespace autopipe {

ServiceModule StsModule();

// The sts API (2011-06-15, Query protocol).
ApiService StsApi(RegionContext* ctx);

}  // namespace autopipe

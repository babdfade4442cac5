// libFuzzer target for Route 53's REST-XML request parsing: any bytes as the body of CreateHostedZone,
// ChangeResourceRecordSets and CreateHealthCheck (and their path), through the API's handler with an in-memory
// store and no signature check. The first byte picks the operation; the rest is the body. Nothing may crash, and
// every reply must be XML.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>

#include "common/clock.h"
#include "route53/records.h"
#include "route53/route53_service.h"
#include "route53/xml.h"
#include "store/store.h"

namespace {

struct Fixture {
  autopipe::SystemClock clock;
  std::mutex mu;
  std::unique_ptr<autopipe::Store> store = autopipe::NewMemoryStore();
  std::unique_ptr<autopipe::route53::Route53Api> api;
  std::string zone;

  Fixture() {
    autopipe::route53::Route53Deps d;
    d.store = store.get();
    d.clock = &clock;
    d.write_lock = &mu;
    d.verify_signatures = false;
    api = std::make_unique<autopipe::route53::Route53Api>(d);
    autopipe::SigV4Request r;
    r.method = "POST";
    r.target = "/2013-04-01/hostedzone";
    r.body = "<CreateHostedZoneRequest><Name>example.test</Name><CallerReference>fuzz</CallerReference>"
             "</CreateHostedZoneRequest>";
    auto reply = api->Handle(r);
    auto x = autopipe::route53::ParseXml(reply.body);
    zone = x->Child("HostedZone")->ChildText("Id").substr(12);
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static Fixture f;
  if (size == 0) return 0;
  std::string body(reinterpret_cast<const char*>(data) + 1, size - 1);
  (void)autopipe::route53::ParseXml(body);  // the parser alone, too (its result is checked through the API below)
  autopipe::SigV4Request r;
  r.method = "POST";
  r.body = body;
  switch (data[0] % 5) {
    case 0: r.target = "/2013-04-01/hostedzone"; break;
    case 1: r.target = "/2013-04-01/hostedzone/" + f.zone + "/rrset/"; break;
    case 2: r.target = "/2013-04-01/healthcheck"; break;
    case 3: r.method = "GET"; r.target = "/2013-04-01/hostedzone/" + f.zone + "/rrset?" + body; break;
    default: r.method = "GET"; r.target = "/2013-04-01/" + body; break;
  }
  auto reply = f.api->Handle(r);
  if (!autopipe::route53::ParseXml(reply.body).ok()) {
    fprintf(stderr, "reply is not XML (%zu bytes): %.*s\n", reply.body.size(), static_cast<int>(reply.body.size()), reply.body.data());
    abort();
  }
  return 0;
}

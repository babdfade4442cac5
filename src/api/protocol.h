// The wire protocols, in one place: requests decoded into ApiRequest, results and errors encoded back.
//
//  - Query (autoscaling, elasticloadbalancing, elasticache, rds, sns, cloudwatch from older clients):
//    form parameters in, <OpResponse><OpResult>...</OpResult><ResponseMetadata/> XML out, lists as <member>.
//  - EC2: form parameters in (lists as Name.N), <OpResponse><requestId/>...</OpResponse> out, lists as <item>.
//  - AWS JSON 1.0 (CloudWatch from botocore >= 1.42.7): JSON in and out, errors with x-amzn-query-error.
//
// Service handlers receive an ApiRequest and return Result<Json>: a Json object is the operation's result
// members in order (arrays become lists), null means "no result element" (operations without an output
// shape). Errors are Status values until RenderError() turns them into the protocol's envelope.
//
// Thread-safety: pure functions and value types.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "api/form.h"
#include "common/status.h"
#include "store/store.h"

namespace autopipe {

enum class WireProtocol { kQuery, kEc2, kJson10 };

struct ApiRequest {
  std::string service;  // SigV4 service name: "autoscaling", "ec2", ...
  std::string action;   // "CreateAutoScalingGroup"
  std::string request_id;
  WireProtocol protocol = WireProtocol::kQuery;
  FormParams params;    // Query and EC2
  Json json;            // JSON 1.0 body
};

// Typed access to flattened Query/EC2 parameters. Getters return a Status naming the parameter on bad input.
class Params {
 public:
  Params(const FormParams& p, WireProtocol protocol) : p_(p), protocol_(protocol) {}

  bool Has(const std::string& name) const { return p_.count(name) > 0; }
  std::optional<std::string> Str(const std::string& name) const;
  Result<std::string> RequiredStr(const std::string& name) const;
  Result<std::optional<int64_t>> Int(const std::string& name) const;
  Result<std::optional<bool>> Bool(const std::string& name) const;
  // Scalar list: Query "Name.member.N" (or the given member name), EC2 "Name.N". Ordered by N.
  std::vector<std::string> List(const std::string& name, const std::string& member = "member") const;
  // List of structures: each element is the map of its fields ("Key" -> "v", "Values.member.1" -> "x").
  std::vector<FormParams> StructList(const std::string& name, const std::string& member = "member") const;
  // Map: Query "Name.entry.N.key" / "Name.entry.N.value" (SNS attributes), keys in index order.
  std::vector<std::pair<std::string, std::string>> Map(const std::string& name) const;
  // Parameters of this request with the given prefix removed, e.g. Sub("InstanceMonitoring.").
  FormParams Sub(const std::string& prefix) const;

 private:
  std::vector<std::pair<int64_t, std::string>> Indexed(const std::string& prefix) const;

  const FormParams& p_;
  WireProtocol protocol_;
};

// Builds a Json object field by field, in order. nlohmann's initializer lists copy every element twice and
// test each list for object-ness; handlers that build one object per instance on every call use this instead.
class JsonObject {
 public:
  JsonObject() : json_(Json::value_t::object) {}
  JsonObject& Add(const char* key, Json value) {
    json_.get_ref<Json::object_t&>().emplace_back(key, std::move(value));
    return *this;
  }
  Json Take() { return std::move(json_); }

 private:
  Json json_;
};

struct ServiceInfo {
  std::string name;           // SigV4 name
  std::string version;        // e.g. 2011-01-01
  std::string xml_namespace;  // e.g. http://autoscaling.amazonaws.com/doc/2011-01-01/
  WireProtocol protocol;
};

struct HttpReply {
  int status = 200;
  std::string content_type;
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
};

HttpReply RenderResult(const ServiceInfo& svc, const ApiRequest& req, const Json& result);
HttpReply RenderError(const ServiceInfo* svc, WireProtocol protocol, const std::string& request_id,
                      const Status& error);

// XML text escaping (exposed for tests).
std::string XmlEscape(const std::string& s);

}  // namespace autopipe

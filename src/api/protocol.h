// The wire protocols, in one place: requests decoded into ApiRequest, results and errors encoded back.
//
//  - Query (autoscaling, elasticloadbalancing, elasticache, rds, sns, cloudwatch from older clients):
//    form parameters in, <OpResponse><OpResult>...</OpResult><ResponseMetadata/> XML out, lists as <member>.
//  - EC2: form parameters in (lists as Name.N), <OpResponse><requestId/>...</OpResponse> out, lists as <item>.
//  - AWS JSON 1.0 (CloudWatch from botocore >= 1.42.7): JSON in and out, errors as {"__type","message"} plus
//    x-amzn-query-error when the client sent x-amzn-query-mode. The body is flattened by FlattenJson10 into the
//    very FormParams the Query protocol gives for the same shape, so one handler serves both protocols.
//
// Service handlers receive Params (typed access to the flat parameters) and return Result<Json>: a Json object
// is the operation's result members in order (arrays become lists), null means "no result element"
// (operations without an output shape). Errors are Status values until RenderError() turns them into the
// protocol's envelope.
//
// Large parts of a result that rarely change can be rendered once and reused (RenderedPart, RenderedPartCache).
//
// Thread-safety: pure functions and value types; RenderedPartCache is safe to share between threads.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
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
  bool query_mode = false;  // JSON 1.0 with x-amzn-query-mode: true (errors also name their Query code)
  FormParams params;        // Query and EC2 as sent; JSON 1.0 flattened to the same names
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
  // How many elements the list `name` has (distinct indexes N, scalar or structure), as List/StructList count
  // them; O(k log n) for k keys under the list's prefix.
  size_t ListSize(const std::string& name, const std::string& member = "member") const;

 private:
  struct Entry {
    int64_t index;
    std::string_view rest;     // after "prefix<N>." ("" for the scalar "prefix<N>"); views into the key
    const std::string* value;  // the parameter's value
  };
  std::vector<Entry> Indexed(const std::string& prefix) const;
  std::string ListPrefix(const std::string& name, const std::string& member) const;

  const FormParams& p_;
  WireProtocol protocol_;
};

// Builds a Json object field by field, in order. nlohmann's initializer lists copy every element twice and
// test each list for object-ness; handlers that build one object per instance on every call use this instead.
class JsonObject {
 public:
  JsonObject() : json_(Json::value_t::object) {}
  explicit JsonObject(size_t fields) : json_(Json::value_t::object) {
    json_.get_ref<Json::object_t&>().reserve(fields);
  }
  JsonObject& Add(const char* key, Json value) {
    json_.get_ref<Json::object_t&>().emplace_back(key, std::move(value));
    return *this;
  }
  Json Take() { return std::move(json_); }

 private:
  Json json_;
};

struct ServiceInfo {
  ServiceInfo() = default;
  ServiceInfo(std::string name, std::string version, std::string xml_namespace, WireProtocol protocol)
      : name(std::move(name)), version(std::move(version)), xml_namespace(std::move(xml_namespace)),
        protocol(protocol) {}

  std::string name;           // SigV4 name
  std::string version;        // e.g. 2011-01-01
  std::string xml_namespace;  // e.g. http://autoscaling.amazonaws.com/doc/2011-01-01/
  WireProtocol protocol = WireProtocol::kQuery;
  // List fields whose member element is not the protocol's default ("member", EC2 "item"), by the list's field
  // name: RDS {"DBInstances", "DBInstance"} renders <DBInstances><DBInstance>..</DBInstance></DBInstances>, and a
  // JSON 1.0 list "DBInstances" flattens to DBInstances.DBInstance.N as the Query client would send it.
  std::map<std::string, std::string> list_members;
  // Fields whose JSON 1.0 object is a map (flattened Name.entry.N.key / .value), not a structure (Name.Field).
  std::set<std::string> map_fields;

  // The member element of the list field `list`.
  const std::string& ListMember(const std::string& list) const;
};

// Flattens an AWS JSON 1.0 request body into the Query parameters of the same shape: lists become
// Name.member.N (or the ServiceInfo's member name; EC2 services Name.N), an empty list Name="", maps
// Name.entry.N.key / .value, structures Name.Field, numbers and booleans their Query text; nulls are left out.
// An empty body is {}. Refuses (SerializationException) a body that is not one JSON object or nests deeper than
// kMaxJsonDepth, and (ValidationError) a list longer than kMaxJsonListLength.
inline constexpr int kMaxJsonDepth = 32;
// The ValidationError for a list parameter with more than `max` elements; `field` as the client named it.
Status ListTooLong(const std::string& field, size_t size, size_t max);
inline constexpr size_t kMaxJsonListLength = 1000;
Result<FormParams> FlattenJson10(const std::string& body, const ServiceInfo& svc);

struct HttpReply {
  int status = 200;
  std::string content_type;
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
};

HttpReply RenderResult(const ServiceInfo& svc, const ApiRequest& req, const Json& result);

// ---- Parts rendered ahead of time ------------------------------------------------------------------------------
// A handler that returns the same large structure call after call (an Auto Scaling group with its 100 members)
// can render it once and reuse the text: RenderPart gives both renderings of a structure, and PartValue(part)
// stands in the result Json where the structure would be. RenderResult then copies the rendering the client
// reads (XML or JSON) verbatim, so the reply is byte for byte the one the structure itself would give.
struct RenderedPart {
  std::string xml;   // the structure's child elements (the content of its element, without its own tags)
  std::string json;  // the structure as JSON, nulls left out
};

// `structure` is a Json object (a structure of the result).
RenderedPart RenderPart(const ServiceInfo& svc, const Json& structure);
// A Json value that renders as `part` (a binary value of a subtype only this file makes; it copies the text).
Json PartValue(const RenderedPart& part);
// A timestamp in a result: ISO-8601 with milliseconds in XML (2026-12-01T16:00:00.123Z), epoch seconds (a number,
// 1796140800.123) in JSON 1.0, as the two protocols write timestamp members. ExpandParts gives its ISO text.
Json TimestampValue(int64_t epoch_millis);
// The result with every part turned back into the Json a client reading the JSON rendering sees (nulls left
// out): for callers that read results in-process (tests through ApiRouter::Invoke).
Json ExpandParts(const Json& result);

// Rendered parts of stored documents, reused while the document stays the same. Stored documents are immutable
// and a changed one is a new Doc, so the Doc itself is the key: an entry holds a weak reference and serves only
// that very document (a new document at a reused address does not match, as the old reference has expired).
// Entries whose document the store has dropped are swept out as new ones are added.
//
// Thread-safety: safe to call concurrently; `render` runs outside the cache's lock (two threads missing on the
// same document may both render it; either result is kept).
class RenderedPartCache {
 public:
  using PartPtr = std::shared_ptr<const RenderedPart>;
  PartPtr Get(const Doc& doc, const std::function<RenderedPart(const Json&)>& render);
  size_t size() const;

 private:
  struct Entry {
    std::weak_ptr<const Json> doc;
    PartPtr part;
  };
  mutable std::mutex mu_;
  std::unordered_map<const Json*, Entry> entries_;  // guarded by mu_
  size_t next_sweep_ = 64;                          // guarded by mu_: sweep expired entries at this size
};
// Every parameter value must be UTF-8 holding only the characters AWS's string shapes allow (no control
// characters but tab, CR and LF; no U+FFFE/U+FFFF). Otherwise the ValidationError AWS gives, naming the first
// offending parameter (its value shown with the bad characters replaced by U+FFFD; a secret's value, a parameter
// whose name has "Password" or "AuthToken" in it, as ***).
Status CheckParameterText(const FormParams& params);

// `query_mode`: a JSON 1.0 error also carries x-amzn-query-error: Code;Sender|Receiver.
HttpReply RenderError(const ServiceInfo* svc, WireProtocol protocol, const std::string& request_id,
                      const Status& error, bool query_mode = false);

// XML text escaping (exposed for tests).
std::string XmlEscape(const std::string& s);

}  // namespace autopipe

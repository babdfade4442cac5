// What every EC2 operation speaks the same way: Filter.N.Name / Filter.N.Value.M parameters (matched with EC2's
// wildcards), tag sets, and EC2's error envelope.
//
// Thread-safety: pure functions.
#pragma once

#include <algorithm>
#include <optional>
#include <string>
#include <vector>

#include "api/protocol.h"
#include "ec2/ec2_service.h"

namespace autopipe::ec2 {

struct Filter {
  std::string name;
  std::vector<std::string> values;
};

inline std::vector<Filter> ReadFilters(const Params& p) {
  std::vector<Filter> out;
  for (const auto& f : p.StructList("Filter")) {
    Filter filter;
    auto name = f.find("Name");
    if (name != f.end()) filter.name = name->second;
    for (const auto& [k, v] : f) {
      if (k.rfind("Value.", 0) == 0) filter.values.push_back(v);
    }
    out.push_back(std::move(filter));
  }
  return out;
}

// True when any of `patterns` ('*' and '?' wildcards) matches `value`.
inline bool AnyMatch(const std::vector<std::string>& patterns, const std::string& value) {
  return std::any_of(patterns.begin(), patterns.end(), [&](const std::string& p) { return WildcardMatch(p, value); });
}

// EC2's refusal of a filter name the operation does not know.
inline Status UnknownFilter(const std::string& name) {
  return Status(400, "InvalidParameterValue", "The filter '" + name + "' is invalid");
}

inline Status Ec2Error(const std::string& code, const std::string& message) { return Status(400, code, message); }

// A resource's tags (a JSON object, key -> value) as EC2's tagSet: [{key, value}], in key order.
inline Json TagSet(const Json& tags) {
  Json out = Json::array();
  for (auto it = tags.begin(); it != tags.end(); ++it) out.push_back({{"key", it.key()}, {"value", it.value()}});
  return out;
}

// A resource's tags after EC2's tag filters: nullopt when `f` is not a tag filter (tag:<key>, tag-key).
inline std::optional<bool> TagFilterMatches(const Json& tags, const Filter& f) {
  if (f.name == "tag-key") {
    for (auto it = tags.begin(); it != tags.end(); ++it)
      if (AnyMatch(f.values, it.key())) return true;
    return false;
  }
  if (f.name.rfind("tag:", 0) == 0) {
    std::string key = f.name.substr(4);
    if (!tags.contains(key)) return false;
    return AnyMatch(f.values, tags[key].get<std::string>());
  }
  return std::nullopt;
}

}  // namespace autopipe::ec2

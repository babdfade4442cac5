#include "api/protocol.h"

#include <algorithm>
#include <charconv>

namespace autopipe {
namespace {

bool ParseIndex(const std::string& s, int64_t* out) {
  if (s.empty() || s.size() > 9) return false;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && ptr == s.data() + s.size() && *out >= 1;
}

void AppendXml(std::string& out, const std::string& name, const Json& v, const char* item_name);

void AppendChildren(std::string& out, const Json& obj, const char* item_name) {
  for (auto it = obj.begin(); it != obj.end(); ++it) AppendXml(out, it.key(), it.value(), item_name);
}

void AppendEscaped(std::string& out, const std::string& s) {
  size_t plain_from = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    const char* entity = nullptr;
    switch (s[i]) {
      case '&': entity = "&amp;"; break;
      case '<': entity = "&lt;"; break;
      case '>': entity = "&gt;"; break;
      case '"': entity = "&quot;"; break;
      case '\'': entity = "&apos;"; break;
      case '\r': entity = "&#xD;"; break;
      default: continue;
    }
    out.append(s, plain_from, i - plain_from);
    out += entity;
    plain_from = i + 1;
  }
  out.append(s, plain_from, std::string::npos);
}

void AppendScalar(std::string& out, const Json& v) {
  char buf[32];
  if (v.is_string()) {
    AppendEscaped(out, v.get_ref<const std::string&>());
  } else if (v.is_boolean()) {
    out += v.get<bool>() ? "true" : "false";
  } else if (v.is_number_integer() || v.is_number_unsigned()) {
    auto [end, ec] = v.is_number_unsigned() ? std::to_chars(buf, buf + sizeof buf, v.get<uint64_t>())
                                            : std::to_chars(buf, buf + sizeof buf, v.get<int64_t>());
    out.append(buf, end);
  } else {
    out += v.dump();
  }
}

// Objects become elements, arrays become repeated <member>/<item> children, null is left out.
void AppendXml(std::string& out, const std::string& name, const Json& v, const char* item_name) {
  if (v.is_null()) return;
  out += '<';
  out += name;
  out += '>';
  if (v.is_object()) {
    AppendChildren(out, v, item_name);
  } else if (v.is_array()) {
    for (const auto& e : v) AppendXml(out, item_name, e, item_name);
  } else {
    AppendScalar(out, v);
  }
  out += "</";
  out += name;
  out += '>';
}

Json ToJson10(const Json& v) { return v.is_null() ? Json::object() : v; }

}  // namespace

std::string XmlEscape(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  AppendEscaped(out, s);
  return out;
}

std::optional<std::string> Params::Str(const std::string& name) const {
  auto it = p_.find(name);
  if (it == p_.end()) return std::nullopt;
  return it->second;
}

Result<std::string> Params::RequiredStr(const std::string& name) const {
  auto v = Str(name);
  if (!v) {
    if (protocol_ == WireProtocol::kEc2) {
      return Status::MissingParameter("The request must contain the parameter " + name);
    }
    return Status::Validation("1 validation error detected: Value null at '" + name +
                              "' failed to satisfy constraint: Member must not be null");
  }
  return *v;
}

Result<std::optional<int64_t>> Params::Int(const std::string& name) const {
  auto v = Str(name);
  if (!v) return std::optional<int64_t>();
  int64_t out = 0;
  auto [ptr, ec] = std::from_chars(v->data(), v->data() + v->size(), out);
  if (v->empty() || ec != std::errc() || ptr != v->data() + v->size()) {
    return Status(400, protocol_ == WireProtocol::kEc2 ? "InvalidParameterValue" : "ValidationError",
                  "Invalid value for parameter " + name + ": '" + *v + "' is not an integer");
  }
  return std::optional<int64_t>(out);
}

Result<std::optional<bool>> Params::Bool(const std::string& name) const {
  auto v = Str(name);
  if (!v) return std::optional<bool>();
  std::string lower = *v;
  std::transform(lower.begin(), lower.end(), lower.begin(), ::tolower);
  if (lower == "true") return std::optional<bool>(true);
  if (lower == "false") return std::optional<bool>(false);
  return Status(400, protocol_ == WireProtocol::kEc2 ? "InvalidParameterValue" : "ValidationError",
                "Invalid value for parameter " + name + ": '" + *v + "' is not a boolean");
}

// Keys "prefix<N>" or "prefix<N>.<rest>", grouped by N in numeric order; value is <rest> ("" for scalars).
std::vector<std::pair<int64_t, std::string>> Params::Indexed(const std::string& prefix) const {
  std::vector<std::pair<int64_t, std::string>> out;
  for (auto it = p_.lower_bound(prefix); it != p_.end() && it->first.compare(0, prefix.size(), prefix) == 0;
       ++it) {
    std::string rest = it->first.substr(prefix.size());
    size_t dot = rest.find('.');
    int64_t idx = 0;
    if (!ParseIndex(rest.substr(0, dot), &idx)) continue;
    out.emplace_back(idx, dot == std::string::npos ? "" : rest.substr(dot + 1));
  }
  std::stable_sort(out.begin(), out.end(), [](auto& a, auto& b) { return a.first < b.first; });
  return out;
}

std::vector<std::string> Params::List(const std::string& name, const std::string& member) const {
  std::string prefix = protocol_ == WireProtocol::kEc2 ? name + "." : name + "." + member + ".";
  std::vector<std::string> out;
  for (const auto& [idx, rest] : Indexed(prefix)) {
    if (!rest.empty()) continue;
    out.push_back(p_.at(prefix + std::to_string(idx)));
  }
  return out;
}

std::vector<FormParams> Params::StructList(const std::string& name, const std::string& member) const {
  std::string prefix = protocol_ == WireProtocol::kEc2 ? name + "." : name + "." + member + ".";
  std::vector<FormParams> out;
  int64_t current = -1;
  for (const auto& [idx, rest] : Indexed(prefix)) {
    if (rest.empty()) continue;
    if (idx != current) {
      out.emplace_back();
      current = idx;
    }
    out.back()[rest] = p_.at(prefix + std::to_string(idx) + "." + rest);
  }
  return out;
}

std::vector<std::pair<std::string, std::string>> Params::Map(const std::string& name) const {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& entry : StructList(name, "entry")) {
    auto key = entry.find("key");
    if (key == entry.end()) continue;
    auto value = entry.find("value");
    out.emplace_back(key->second, value == entry.end() ? "" : value->second);
  }
  return out;
}

FormParams Params::Sub(const std::string& prefix) const {
  FormParams out;
  for (auto it = p_.lower_bound(prefix); it != p_.end() && it->first.compare(0, prefix.size(), prefix) == 0; ++it) {
    out[it->first.substr(prefix.size())] = it->second;
  }
  return out;
}

HttpReply RenderResult(const ServiceInfo& svc, const ApiRequest& req, const Json& result) {
  HttpReply reply;
  reply.headers.emplace_back("x-amzn-RequestId", req.request_id);
  if (req.protocol == WireProtocol::kJson10) {
    reply.content_type = "application/x-amz-json-1.0";
    reply.body = ToJson10(result).dump();
    return reply;
  }
  reply.content_type = "text/xml";
  std::string& out = reply.body;
  out.reserve(4096);
  out += "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<";
  out += req.action + "Response xmlns=\"" + svc.xml_namespace + "\">";
  if (svc.protocol == WireProtocol::kEc2) {
    out += "<requestId>" + req.request_id + "</requestId>";
    if (result.is_object()) AppendChildren(out, result, "item");
  } else {
    if (!result.is_null()) AppendXml(out, req.action + "Result", result, "member");
    out += "<ResponseMetadata><RequestId>" + req.request_id + "</RequestId></ResponseMetadata>";
  }
  out += "</" + req.action + "Response>";
  return reply;
}

HttpReply RenderError(const ServiceInfo* svc, WireProtocol protocol, const std::string& request_id,
                      const Status& error) {
  HttpReply reply;
  reply.status = error.http_status();
  reply.headers.emplace_back("x-amzn-RequestId", request_id);
  const char* type = error.sender_fault() ? "Sender" : "Receiver";
  if (protocol == WireProtocol::kJson10) {
    reply.content_type = "application/x-amz-json-1.0";
    reply.headers.emplace_back("x-amzn-query-error", error.code() + ";" + type);
    reply.body = Json{{"__type", error.code()}, {"message", error.message()}}.dump();
    return reply;
  }
  reply.content_type = "text/xml";
  std::string code = XmlEscape(error.code()), message = XmlEscape(error.message());
  if (protocol == WireProtocol::kEc2) {
    reply.body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Errors><Error><Code>" + code +
                 "</Code><Message>" + message + "</Message></Error></Errors><RequestID>" + request_id +
                 "</RequestID></Response>";
    return reply;
  }
  std::string ns = svc ? " xmlns=\"" + svc->xml_namespace + "\"" : "";
  reply.body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ErrorResponse" + ns + "><Error><Type>" + type +
               "</Type><Code>" + code + "</Code><Message>" + message + "</Message></Error><RequestId>" +
               request_id + "</RequestId></ErrorResponse>";
  return reply;
}

}  // namespace autopipe

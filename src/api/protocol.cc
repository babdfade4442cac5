#include "api/protocol.h"

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string_view>

#include "common/time_util.h"

namespace autopipe {
namespace {

// The binary subtype of PartValue: results hold no other binary values, and this one never leaves the process.
constexpr uint64_t kPartSubtype = 0x41505254;  // "APRT"

struct PartText {
  std::string_view xml;
  std::string_view json;
};

// The texts of a PartValue (laid out as: XML size, 8 bytes; XML; JSON), or nullopt for any other value.
std::optional<PartText> AsPart(const Json& v) {
  if (!v.is_binary()) return std::nullopt;
  const Json::binary_t& bytes = v.get_binary();
  if (!bytes.has_subtype() || bytes.subtype() != kPartSubtype || bytes.size() < sizeof(uint64_t)) {
    return std::nullopt;
  }
  uint64_t xml_size = 0;
  std::memcpy(&xml_size, bytes.data(), sizeof xml_size);
  if (xml_size > bytes.size() - sizeof xml_size) return std::nullopt;
  const char* text = reinterpret_cast<const char*>(bytes.data()) + sizeof xml_size;
  return PartText{{text, xml_size}, {text + xml_size, bytes.size() - sizeof xml_size - xml_size}};
}

// The binary subtype of TimestampValue (8 bytes: epoch milliseconds).
constexpr uint64_t kTimestampSubtype = 0x41544D53;  // "ATMS"

std::optional<int64_t> AsTimestamp(const Json& v) {
  if (!v.is_binary()) return std::nullopt;
  const Json::binary_t& bytes = v.get_binary();
  if (!bytes.has_subtype() || bytes.subtype() != kTimestampSubtype || bytes.size() != sizeof(int64_t)) {
    return std::nullopt;
  }
  int64_t millis = 0;
  std::memcpy(&millis, bytes.data(), sizeof millis);
  return millis;
}

// Epoch seconds with the milliseconds, as JSON 1.0 writes a timestamp (1733068800.123).
std::string EpochSecondsText(int64_t millis) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.3f", static_cast<double>(millis) / 1000.0);
  return buf;
}

bool ParseIndex(std::string_view s, int64_t* out) {
  if (s.empty() || s.size() > 9) return false;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && ptr == s.data() + s.size() && *out >= 1;
}

void AppendXml(std::string& out, const std::string& name, const Json& v, const ServiceInfo& svc);

void AppendChildren(std::string& out, const Json& obj, const ServiceInfo& svc) {
  for (auto it = obj.begin(); it != obj.end(); ++it) AppendXml(out, it.key(), it.value(), svc);
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

// The content of element `name` holding `v`: an object's fields as child elements, an array's elements as
// repeated <member>/<item> (or the list's own member name) children, a rendered part as it is, a scalar as text.
void AppendContent(std::string& out, const std::string& name, const Json& v, const ServiceInfo& svc) {
  if (v.is_object()) {
    AppendChildren(out, v, svc);
  } else if (v.is_array()) {
    const std::string& member = svc.ListMember(name);
    for (const auto& e : v) AppendXml(out, member, e, svc);
  } else if (auto part = AsPart(v)) {
    out += part->xml;
  } else if (auto ts = AsTimestamp(v)) {
    out += IsoTimeMillis(*ts);
  } else {
    AppendScalar(out, v);
  }
}

// Element `name` holding `v`; null is left out.
void AppendXml(std::string& out, const std::string& name, const Json& v, const ServiceInfo& svc) {
  if (v.is_null()) return;
  out += '<';
  out += name;
  out += '>';
  AppendContent(out, name, v, svc);
  out += "</";
  out += name;
  out += '>';
}

// Never throws: a string that is not UTF-8 has its bad bytes replaced (U+FFFD) rather than failing the reply.
std::string DumpJson(const Json& v) { return v.dump(-1, ' ', false, Json::error_handler_t::replace); }

bool HasPart(const Json& v) {
  if (v.is_binary()) return AsPart(v).has_value() || AsTimestamp(v).has_value();
  if (v.is_structured()) {
    for (const auto& e : v) {
      if (HasPart(e)) return true;
    }
  }
  return false;
}

// The bytes the rendered parts in `v` add to a reply (their XML or their JSON), to size the reply up front.
size_t PartBytes(const Json& v, bool xml) {
  if (auto part = AsPart(v)) return xml ? part->xml.size() : part->json.size();
  size_t n = 0;
  if (v.is_structured()) {
    for (const auto& e : v) n += PartBytes(e, xml);
  }
  return n;
}

// A JSON string. Printable ASCII without quotes or backslashes (nearly every string a result holds) is copied
// as it is; anything else goes through DumpJson, for the very escapes and U+FFFD replacements it makes.
void AppendJsonString(std::string& out, const std::string& s) {
  for (char c : s) {
    if (c < 0x20 || c > 0x7E || c == '"' || c == '\\') {
      out += DumpJson(Json(s));
      return;
    }
  }
  out += '"';
  out += s;
  out += '"';
}

// The JSON 1.0 rendering of a result: compact, as DumpJson writes it, with null members and elements left out
// (as the XML leaves them out) and the JSON text of rendered parts copied in where they stand.
void AppendJson(std::string& out, const Json& v) {
  char buf[32];
  switch (v.type()) {
    case Json::value_t::object: {
      out += '{';
      bool first = true;
      for (auto it = v.begin(); it != v.end(); ++it) {
        if (it.value().is_null()) continue;
        if (!first) out += ',';
        first = false;
        AppendJsonString(out, it.key());
        out += ':';
        AppendJson(out, it.value());
      }
      out += '}';
      return;
    }
    case Json::value_t::array: {
      out += '[';
      bool first = true;
      for (const auto& e : v) {
        if (e.is_null()) continue;
        if (!first) out += ',';
        first = false;
        AppendJson(out, e);
      }
      out += ']';
      return;
    }
    case Json::value_t::string:
      AppendJsonString(out, v.get_ref<const std::string&>());
      return;
    case Json::value_t::boolean:
      out += v.get<bool>() ? "true" : "false";
      return;
    case Json::value_t::number_integer: {
      auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v.get<int64_t>());
      out.append(buf, end);
      return;
    }
    case Json::value_t::number_unsigned: {
      auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v.get<uint64_t>());
      out.append(buf, end);
      return;
    }
    case Json::value_t::binary:
      if (auto part = AsPart(v)) {
        out += part->json;
        return;
      }
      if (auto ts = AsTimestamp(v)) {
        out += EpochSecondsText(*ts);
        return;
      }
      break;
    default:
      break;
  }
  out += DumpJson(v);  // floats (in DumpJson's own notation), a top-level null
}

// Depth of the deepest [ or { nesting, scanning at most until it passes `limit` (strings skipped).
int JsonDepth(const std::string& s, int limit) {
  int depth = 0, deepest = 0;
  bool in_string = false;
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (in_string) {
      if (c == '\\') ++i;
      else if (c == '"') in_string = false;
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      deepest = std::max(deepest, ++depth);
      if (deepest > limit) return deepest;
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return deepest;
}

std::string LowerFirst(std::string s) {
  if (!s.empty()) s[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(s[0])));
  return s;
}

struct Flattener {
  const ServiceInfo& svc;
  FormParams& out;

  // `field` is the member name the value sits under (for list member names, maps and messages).
  Status Add(const std::string& key, const std::string& field, const Json& v) {
    char buf[32];
    switch (v.type()) {
      case Json::value_t::null:
      case Json::value_t::discarded:
        return Status::Ok();
      case Json::value_t::string:
        out[key] = v.get_ref<const std::string&>();
        return Status::Ok();
      case Json::value_t::boolean:
        out[key] = v.get<bool>() ? "true" : "false";
        return Status::Ok();
      case Json::value_t::number_integer: {
        auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v.get<int64_t>());
        out[key] = std::string(buf, end);
        return Status::Ok();
      }
      case Json::value_t::number_unsigned: {
        auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v.get<uint64_t>());
        out[key] = std::string(buf, end);
        return Status::Ok();
      }
      case Json::value_t::number_float:
        out[key] = v.dump();
        return Status::Ok();
      case Json::value_t::binary:
        return Status(400, "SerializationException", "Binary values are not accepted");
      case Json::value_t::array: {
        if (v.size() > kMaxJsonListLength) {
          return ListTooLong(field, v.size(), kMaxJsonListLength);
        }
        if (v.empty()) {
          out[key] = "";  // as a Query client sends an empty list
          return Status::Ok();
        }
        const std::string prefix =
            svc.protocol == WireProtocol::kEc2 ? key + "." : key + "." + svc.ListMember(field) + ".";
        for (size_t i = 0; i < v.size(); ++i) {
          AP_RETURN_IF_ERROR(Add(prefix + std::to_string(i + 1), "member", v[i]));
        }
        return Status::Ok();
      }
      case Json::value_t::object: {
        if (svc.map_fields.count(field)) {
          size_t n = 0;
          for (auto it = v.begin(); it != v.end(); ++it) {
            const std::string entry = key + ".entry." + std::to_string(++n);
            out[entry + ".key"] = it.key();
            AP_RETURN_IF_ERROR(Add(entry + ".value", "value", it.value()));
          }
          return Status::Ok();
        }
        for (auto it = v.begin(); it != v.end(); ++it) {
          AP_RETURN_IF_ERROR(Add(key.empty() ? it.key() : key + "." + it.key(), it.key(), it.value()));
        }
        return Status::Ok();
      }
    }
    return Status::Ok();
  }
};

// Length of the UTF-8 sequence at s[i] if it is well-formed (shortest form, no surrogates, <= U+10FFFF) and the
// character is one AWS string shapes allow; 0 otherwise.
size_t AllowedCharAt(const std::string& s, size_t i) {
  auto byte = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char c = byte(i);
  if (c < 0x80) return (c >= 0x20 || c == '\t' || c == '\n' || c == '\r') ? 1 : 0;
  size_t len = 0;
  uint32_t cp = 0;
  if (c >= 0xC2 && c <= 0xDF) len = 2, cp = c & 0x1F;
  else if (c >= 0xE0 && c <= 0xEF) len = 3, cp = c & 0x0F;
  else if (c >= 0xF0 && c <= 0xF4) len = 4, cp = c & 0x07;
  else return 0;
  if (i + len > s.size()) return 0;
  for (size_t k = 1; k < len; ++k) {
    if ((byte(i + k) & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (byte(i + k) & 0x3F);
  }
  if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF))) return 0;  // overlong, too big
  if ((cp >= 0xD800 && cp <= 0xDFFF) || cp == 0xFFFE || cp == 0xFFFF) return 0;
  return len;
}

// The text with every byte run that is not an allowed character shown as U+FFFD.
std::string Printable(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size();) {
    size_t n = AllowedCharAt(s, i);
    if (n == 0) {
      out += "\xEF\xBF\xBD";
      ++i;
    } else {
      out.append(s, i, n);
      i += n;
    }
  }
  return out;
}

// "Tags.member.1.Key" -> "tags.member.1.key", as AWS names members in validation messages.
std::string FieldPath(const std::string& key) {
  std::string out = Printable(key);
  for (size_t i = 0; i < out.size(); ++i) {
    if (i == 0 || out[i - 1] == '.') out[i] = static_cast<char>(std::tolower(static_cast<unsigned char>(out[i])));
  }
  return out;
}

}  // namespace

Status ListTooLong(const std::string& field, size_t size, size_t max) {
  return Status::Validation("1 validation error detected: Value with " + std::to_string(size) + " elements at '" +
                            LowerFirst(field) +
                            "' failed to satisfy constraint: Member must have length less than or equal to " +
                            std::to_string(max));
}

// Secrets (RDS's MasterUserPassword, ElastiCache's AuthToken, ...) are never repeated in a message or a log.
bool IsSecretParameter(const std::string& key) {
  return key.find("Password") != std::string::npos || key.find("AuthToken") != std::string::npos;
}

Status CheckParameterText(const FormParams& params) {
  for (const auto& [key, value] : params) {
    for (size_t i = 0; i < value.size();) {
      size_t n = AllowedCharAt(value, i);
      if (n == 0) {
        const std::string shown = IsSecretParameter(key) ? "***" : Printable(value);
        return Status::Validation("1 validation error detected: Value '" + shown + "' at '" +
                                  FieldPath(key) +
                                  "' failed to satisfy constraint: Member must satisfy regular expression pattern: "
                                  "[\\u0020-\\uD7FF\\uE000-\\uFFFD\\uD800\\uDC00-\\uDBFF\\uDFFF\\r\\n\\t]*");
      }
      i += n;
    }
  }
  return Status::Ok();
}

const std::string& ServiceInfo::ListMember(const std::string& list) const {
  static const std::string kMember = "member", kItem = "item";
  if (!list_members.empty()) {
    auto it = list_members.find(list);
    if (it != list_members.end()) return it->second;
  }
  return protocol == WireProtocol::kEc2 ? kItem : kMember;
}

Result<FormParams> FlattenJson10(const std::string& body, const ServiceInfo& svc) {
  if (JsonDepth(body, kMaxJsonDepth) > kMaxJsonDepth) {
    return Status(400, "SerializationException",
                  "The request body nests deeper than " + std::to_string(kMaxJsonDepth) + " levels");
  }
  Json json = Json::parse(body.empty() ? "{}" : body, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded() || !json.is_object()) {
    return Status(400, "SerializationException", "The request body is not a valid JSON object");
  }
  FormParams out;
  AP_RETURN_IF_ERROR((Flattener{svc, out}.Add("", "", json)));
  return out;
}

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
  const char* code = protocol_ == WireProtocol::kEc2 ? "InvalidParameterValue" : "ValidationError";
  int64_t out = 0;
  auto [ptr, ec] = std::from_chars(v->data(), v->data() + v->size(), out);
  if (v->empty() || ptr != v->data() + v->size() || (ec != std::errc() && ec != std::errc::result_out_of_range)) {
    return Status(400, code, "Invalid value for parameter " + name + ": '" + *v + "' is not an integer");
  }
  // Every integer these services take is a 32-bit Integer shape: a value beyond it is refused as such, never
  // wrapped or taken for a range error of the field's own.
  if (ec == std::errc::result_out_of_range || out < INT32_MIN || out > INT32_MAX) {
    return Status(400, code, "Invalid value for parameter " + name + ": '" + *v +
                                 "' is out of range: an integer from -2147483648 to 2147483647 is expected");
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

// Keys "prefix<N>" or "prefix<N>.<rest>", grouped by N in numeric order (stable within one N): each with <rest>
// ("" for scalars) and the value. One ordered range scan of the keys under `prefix`, then one sort: O(k log k)
// for k such keys, whatever the request's size otherwise.
std::vector<Params::Entry> Params::Indexed(const std::string& prefix) const {
  std::vector<Entry> out;
  for (auto it = p_.lower_bound(prefix); it != p_.end() && it->first.compare(0, prefix.size(), prefix) == 0;
       ++it) {
    std::string_view rest = std::string_view(it->first).substr(prefix.size());
    size_t dot = rest.find('.');
    int64_t idx = 0;
    if (!ParseIndex(rest.substr(0, dot), &idx)) continue;
    out.push_back(Entry{idx, dot == std::string_view::npos ? std::string_view() : rest.substr(dot + 1),
                        &it->second});
  }
  std::stable_sort(out.begin(), out.end(), [](const Entry& a, const Entry& b) { return a.index < b.index; });
  return out;
}

std::string Params::ListPrefix(const std::string& name, const std::string& member) const {
  return protocol_ == WireProtocol::kEc2 ? name + "." : name + "." + member + ".";
}

std::vector<std::string> Params::List(const std::string& name, const std::string& member) const {
  std::vector<std::string> out;
  for (const Entry& e : Indexed(ListPrefix(name, member))) {
    if (e.rest.empty()) out.push_back(*e.value);
  }
  return out;
}

std::vector<FormParams> Params::StructList(const std::string& name, const std::string& member) const {
  std::vector<FormParams> out;
  int64_t current = -1;
  for (const Entry& e : Indexed(ListPrefix(name, member))) {
    if (e.rest.empty()) continue;
    if (e.index != current) {
      out.emplace_back();
      current = e.index;
    }
    // Keys arrive in order within one index, so each insert is at the end: amortised constant.
    out.back().emplace_hint(out.back().end(), std::string(e.rest), *e.value);
  }
  return out;
}

size_t Params::ListSize(const std::string& name, const std::string& member) const {
  std::vector<Entry> entries = Indexed(ListPrefix(name, member));
  size_t n = 0;
  for (size_t i = 0; i < entries.size(); ++i) n += i == 0 || entries[i].index != entries[i - 1].index;
  return n;
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
    out.emplace_hint(out.end(), it->first.substr(prefix.size()), it->second);  // in order: appended
  }
  return out;
}

HttpReply RenderResult(const ServiceInfo& svc, const ApiRequest& req, const Json& result) {
  HttpReply reply;
  reply.headers.emplace_back("x-amzn-RequestId", req.request_id);
  if (req.protocol == WireProtocol::kJson10) {
    reply.content_type = "application/x-amz-json-1.0";
    if (result.is_null()) {
      reply.body = "{}";
    } else {
      reply.body.reserve(4096 + PartBytes(result, /*xml=*/false));
      AppendJson(reply.body, result);
    }
    return reply;
  }
  reply.content_type = "text/xml";
  std::string& out = reply.body;
  out.reserve(4096 + PartBytes(result, /*xml=*/true));
  out += "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<";
  out += req.action + "Response xmlns=\"" + svc.xml_namespace + "\">";
  if (svc.protocol == WireProtocol::kEc2) {
    out += "<requestId>" + req.request_id + "</requestId>";
    if (result.is_object()) AppendChildren(out, result, svc);
  } else {
    if (!result.is_null()) AppendXml(out, req.action + "Result", result, svc);
    out += "<ResponseMetadata><RequestId>" + req.request_id + "</RequestId></ResponseMetadata>";
  }
  out += "</" + req.action + "Response>";
  return reply;
}

RenderedPart RenderPart(const ServiceInfo& svc, const Json& structure) {
  RenderedPart part;
  AppendContent(part.xml, "", structure, svc);
  AppendJson(part.json, structure);
  return part;
}

Json PartValue(const RenderedPart& part) {
  const uint64_t xml_size = part.xml.size();
  uint8_t size_bytes[sizeof xml_size];
  std::memcpy(size_bytes, &xml_size, sizeof xml_size);
  Json::binary_t::container_type bytes;
  bytes.reserve(sizeof xml_size + part.xml.size() + part.json.size());  // appended below, never zeroed first
  bytes.insert(bytes.end(), size_bytes, size_bytes + sizeof xml_size);
  for (const std::string* text : {&part.xml, &part.json}) {
    const auto* data = reinterpret_cast<const uint8_t*>(text->data());
    bytes.insert(bytes.end(), data, data + text->size());  // one memcpy (the same element type)
  }
  return Json::binary(std::move(bytes), kPartSubtype);
}

Json TimestampValue(int64_t epoch_millis) {
  Json::binary_t::container_type bytes(sizeof epoch_millis);
  std::memcpy(bytes.data(), &epoch_millis, sizeof epoch_millis);
  return Json::binary(std::move(bytes), kTimestampSubtype);
}

Json ExpandParts(const Json& result) {
  if (auto part = AsPart(result)) return Json::parse(part->json);
  if (auto ts = AsTimestamp(result)) return IsoTimeMillis(*ts);
  if (!HasPart(result)) return result;
  Json out = result;
  for (auto& e : out) e = ExpandParts(e);
  return out;
}

RenderedPartCache::PartPtr RenderedPartCache::Get(const Doc& doc,
                                                  const std::function<RenderedPart(const Json&)>& render) {
  // The same control block means the very document, alive as long as `doc` is.
  auto same = [&](const std::weak_ptr<const Json>& cached) {
    return !cached.owner_before(doc) && !doc.owner_before(cached);
  };
  {
    std::lock_guard lock(mu_);
    auto it = entries_.find(doc.get());
    if (it != entries_.end() && same(it->second.doc)) return it->second.part;
  }
  auto part = std::make_shared<const RenderedPart>(render(*doc));
  std::lock_guard lock(mu_);
  entries_[doc.get()] = Entry{doc, part};
  if (entries_.size() >= next_sweep_) {
    std::erase_if(entries_, [](const auto& e) { return e.second.doc.expired(); });
    next_sweep_ = std::max<size_t>(64, 2 * entries_.size());
  }
  return part;
}

size_t RenderedPartCache::size() const {
  std::lock_guard lock(mu_);
  return entries_.size();
}

HttpReply RenderError(const ServiceInfo* svc, WireProtocol protocol, const std::string& request_id,
                      const Status& error, bool query_mode) {
  HttpReply reply;
  reply.status = error.http_status();
  reply.headers.emplace_back("x-amzn-RequestId", request_id);
  const char* type = error.sender_fault() ? "Sender" : "Receiver";
  if (protocol == WireProtocol::kJson10) {
    reply.content_type = "application/x-amz-json-1.0";
    if (query_mode) reply.headers.emplace_back("x-amzn-query-error", error.code() + ";" + type);
    reply.body = DumpJson(Json{{"__type", error.code()}, {"message", error.message()}});
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

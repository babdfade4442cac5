#include "route53/xml.h"

#include <expat.h>

#include <cstdint>
#include <memory>

namespace autopipe::route53 {
namespace {

constexpr int kMaxDepth = 32;
constexpr int kMaxElements = 20000;

struct ParseState {
  XML_Parser parser = nullptr;
  XmlNode root;
  std::vector<XmlNode*> stack;
  int elements = 0;
  std::string error;
  bool has_root = false;
};

std::string LocalName(const char* name) {
  std::string_view n(name);
  size_t colon = n.rfind(':');
  return std::string(colon == std::string_view::npos ? n : n.substr(colon + 1));
}

void Fail(ParseState* st, std::string message) {
  if (st->error.empty()) st->error = std::move(message);
  XML_StopParser(st->parser, XML_FALSE);
}

void OnStart(void* data, const char* name, const char** /*attrs*/) {
  auto* st = static_cast<ParseState*>(data);
  if (++st->elements > kMaxElements) return Fail(st, "The XML document has too many elements");
  if (static_cast<int>(st->stack.size()) >= kMaxDepth) return Fail(st, "The XML document is nested too deeply");
  if (st->stack.empty()) {
    st->root.name = LocalName(name);
    st->has_root = true;
    st->stack.push_back(&st->root);
    return;
  }
  XmlNode* parent = st->stack.back();
  parent->children.push_back(XmlNode{LocalName(name), "", {}});
  st->stack.push_back(&parent->children.back());
}

void OnEnd(void* data, const char* /*name*/) {
  auto* st = static_cast<ParseState*>(data);
  if (!st->stack.empty()) st->stack.pop_back();
}

void OnText(void* data, const char* s, int len) {
  auto* st = static_cast<ParseState*>(data);
  if (!st->stack.empty()) st->stack.back()->text.append(s, static_cast<size_t>(len));
}

void OnDoctype(void* data, const char*, const char*, const char*, int) {
  Fail(static_cast<ParseState*>(data), "DOCTYPE declarations are not allowed");
}

std::string Trim(std::string_view s) {
  size_t b = s.find_first_not_of(" \t\r\n");
  if (b == std::string_view::npos) return "";
  size_t e = s.find_last_not_of(" \t\r\n");
  return std::string(s.substr(b, e - b + 1));
}

}  // namespace

const XmlNode* XmlNode::Child(std::string_view n) const {
  for (const auto& c : children)
    if (c.name == n) return &c;
  return nullptr;
}

std::vector<const XmlNode*> XmlNode::Children(std::string_view n) const {
  std::vector<const XmlNode*> out;
  for (const auto& c : children)
    if (c.name == n) out.push_back(&c);
  return out;
}

std::string XmlNode::ChildText(std::string_view n) const {
  const XmlNode* c = Child(n);
  return c ? Trim(c->text) : "";
}

Result<XmlNode> ParseXml(std::string_view body) {
  ParseState st;
  std::unique_ptr<XML_ParserStruct, void (*)(XML_Parser)> parser(XML_ParserCreate("UTF-8"), XML_ParserFree);
  if (!parser) return Status::Internal("cannot create an XML parser");
  st.parser = parser.get();
  XML_SetUserData(st.parser, &st);
  XML_SetElementHandler(st.parser, OnStart, OnEnd);
  XML_SetCharacterDataHandler(st.parser, OnText);
  XML_SetStartDoctypeDeclHandler(st.parser, OnDoctype);
  // Elements are appended to their parent while their own children are still open: reserve nothing, but never
  // hold a pointer into a vector that may grow — the stack holds pointers only to the innermost chain, and a
  // parent's vector grows only when a sibling starts, after the previous sibling was closed (popped).
  XML_Status r = XML_Parse(st.parser, body.data(), static_cast<int>(body.size()), XML_TRUE);
  if (!st.error.empty()) return Status(400, "InvalidInput", st.error);
  if (r != XML_STATUS_OK || !st.has_root) {
    std::string why = st.has_root || !body.empty() ? XML_ErrorString(XML_GetErrorCode(st.parser)) : "empty body";
    return Status(400, "InvalidInput", "Could not parse the request body as XML: " + why);
  }
  return std::move(st.root);
}

// Escapes markup characters; bytes that are not well-formed UTF-8, and characters XML 1.0 does not allow (control
// characters other than tab, newline and carriage return), become U+FFFD, so that text echoed from a request
// always makes a well-formed reply.
std::string XmlEscape(std::string_view text) {
  static constexpr char kReplacement[] = "\xEF\xBF\xBD";
  std::string out;
  out.reserve(text.size());
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  const size_t n = text.size();
  for (size_t i = 0; i < n;) {
    unsigned char c = p[i];
    if (c < 0x80) {
      switch (c) {
        case '&': out += "&amp;"; break;
        case '<': out += "&lt;"; break;
        case '>': out += "&gt;"; break;
        case '"': out += "&quot;"; break;
        case '\'': out += "&apos;"; break;
        default:
          if (c < 0x20 && c != '\t' && c != '\n' && c != '\r') out += kReplacement;
          else out.push_back(static_cast<char>(c));
      }
      ++i;
      continue;
    }
    size_t len = (c >= 0xc2 && c <= 0xdf) ? 2 : (c >= 0xe0 && c <= 0xef) ? 3 : (c >= 0xf0 && c <= 0xf4) ? 4 : 0;
    if (len == 0 || i + len > n) {
      out += kReplacement;
      ++i;
      continue;
    }
    uint32_t cp = c & (len == 2 ? 0x1f : len == 3 ? 0x0f : 0x07);
    bool ok = true;
    for (size_t k = 1; k < len; ++k) {
      if ((p[i + k] & 0xc0) != 0x80) ok = false;
      cp = (cp << 6) | (p[i + k] & 0x3f);
    }
    const uint32_t min = len == 2 ? 0x80 : len == 3 ? 0x800 : 0x10000;
    if (!ok || cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff) || cp == 0xfffe || cp == 0xffff) {
      out += kReplacement;
      ++i;
      continue;
    }
    out.append(text.substr(i, len));
    i += len;
  }
  return out;
}

XmlWriter::XmlWriter() { out_ = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"; }

XmlWriter& XmlWriter::Open(std::string_view name, std::string_view attributes) {
  out_.append("<").append(name);
  if (!attributes.empty()) out_.append(" ").append(attributes);
  out_.append(">");
  return *this;
}

XmlWriter& XmlWriter::Close(std::string_view name) {
  out_.append("</").append(name).append(">");
  return *this;
}

XmlWriter& XmlWriter::Leaf(std::string_view name, std::string_view text) {
  out_.append("<").append(name).append(">").append(XmlEscape(text)).append("</").append(name).append(">");
  return *this;
}

}  // namespace autopipe::route53

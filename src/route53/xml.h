// XML for Route 53's REST-XML protocol: a small tree parsed from a request body with expat, and a writer for
// replies. Element names lose any namespace prefix; text is the concatenated character data of an element.
// Limits (a body is at most 1 MiB already): depth 32, 20,000 elements; DOCTYPE declarations (entity expansion)
// are refused.
//
// Thread-safety: pure functions and plain values.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace autopipe::route53 {

struct XmlNode {
  std::string name;
  std::string text;
  std::vector<XmlNode> children;

  // The first child named `name`, nullptr when none.
  const XmlNode* Child(std::string_view name) const;
  std::vector<const XmlNode*> Children(std::string_view name) const;
  // The text of the first child named `name` (trimmed), empty when none.
  std::string ChildText(std::string_view name) const;
  bool Has(std::string_view name) const { return Child(name) != nullptr; }
};

// Parses a whole document; an error is Route 53's InvalidInput (400) saying what is wrong.
Result<XmlNode> ParseXml(std::string_view body);

std::string XmlEscape(std::string_view text);

// Builds a reply: Open/Close elements, Leaf for an element with text.
class XmlWriter {
 public:
  XmlWriter();
  XmlWriter& Open(std::string_view name, std::string_view attributes = "");
  XmlWriter& Close(std::string_view name);
  XmlWriter& Leaf(std::string_view name, std::string_view text);
  const std::string& str() const { return out_; }

 private:
  std::string out_;
};

// Route 53's XML namespace.
inline constexpr char kXmlns[] = "https://route53.amazonaws.com/doc/2013-04-01/";

}  // namespace autopipe::route53

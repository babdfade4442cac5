#include "route53/records.h"

#include <algorithm>
#include <map>
#include <set>

#include "dns/authority.h"

namespace autopipe::route53 {
namespace {

Status InvalidInput(const std::string& m) { return Status(400, "InvalidInput", m); }

bool ParseInt(const std::string& s, int64_t lo, int64_t hi, int64_t* out) {
  if (s.empty() || s.size() > 12 || s.find_first_not_of("0123456789") != std::string::npos) return false;
  int64_t v = std::stoll(s);
  if (v < lo || v > hi) return false;
  *out = v;
  return true;
}

std::string Key(const Json& set) {
  return set.value("Name", "") + "|" + set.value("Type", "") + "|" + set.value("SetIdentifier", "");
}

std::string ChangeLabel(const std::string& action, const Json& set) {
  return "Change with [Action=" + action + ", Name=" + set.value("Name", "") + ", Type=" + set.value("Type", "") +
         ", SetIdentifier=" + (set.contains("SetIdentifier") ? set["SetIdentifier"].get<std::string>() : "null") +
         "]";
}

bool InZone(const std::string& name, const std::string& apex) {
  return name == apex || (name.size() > apex.size() && name.compare(name.size() - apex.size(), apex.size(), apex) == 0 &&
                          name[name.size() - apex.size() - 1] == '.');
}

}  // namespace

bool SupportedType(const std::string& t) {
  static const std::set<std::string> kTypes = {"A", "AAAA", "CNAME", "TXT", "NS", "SOA", "MX", "SRV", "PTR", "CAA"};
  return kTypes.count(t) > 0;
}

std::string DescribeSet(const Json& set) {
  std::string s = "[name='" + set.value("Name", "") + "', type='" + set.value("Type", "") + "'";
  if (set.contains("SetIdentifier")) s += ", set-identifier='" + set["SetIdentifier"].get<std::string>() + "'";
  return s + "]";
}

Result<std::vector<Change>> ParseChangeBatch(const XmlNode& req) {
  if (req.name != "ChangeResourceRecordSetsRequest") {
    return InvalidInput("Invalid XML: expected ChangeResourceRecordSetsRequest, found " + req.name);
  }
  const XmlNode* batch = req.Child("ChangeBatch");
  const XmlNode* changes = batch ? batch->Child("Changes") : nullptr;
  if (!changes) return InvalidInput("1 validation error detected: Value null at 'changeBatch' failed to satisfy constraint: Member must not be null");
  std::vector<Change> out;
  auto list = changes->Children("Change");
  if (list.empty()) return InvalidInput("1 validation error detected: Value '[]' at 'changeBatch.changes' failed to satisfy constraint: Member must have length greater than or equal to 1");
  if (list.size() > 1000) return InvalidInput("Number of changes exceeds the limit of 1000");
  for (const XmlNode* c : list) {
    Change ch;
    ch.action = c->ChildText("Action");
    if (ch.action != "CREATE" && ch.action != "DELETE" && ch.action != "UPSERT") {
      return InvalidInput("Invalid XML ; Value '" + ch.action + "' is not a valid Action (CREATE, DELETE, UPSERT)");
    }
    const XmlNode* rrs = c->Child("ResourceRecordSet");
    if (!rrs) return InvalidInput("Invalid XML ; a Change has no ResourceRecordSet");
    std::string raw_name = rrs->ChildText("Name");
    std::string type = rrs->ChildText("Type");
    std::string name = dns::CanonicalName(raw_name);
    if (raw_name.empty() || name.empty()) return InvalidInput("Invalid domain name: '" + raw_name + "'");
    if (!SupportedType(type)) {
      return InvalidInput("Invalid XML ; Value '" + type + "' is not a supported record type (A, AAAA, CNAME, TXT, NS, SOA, MX, SRV, PTR, CAA)");
    }
    Json set = Json::object();
    set["Name"] = name;
    set["Type"] = type;
    if (rrs->Has("SetIdentifier")) {
      std::string id = rrs->ChildText("SetIdentifier");
      if (id.empty() || id.size() > 128) return InvalidInput("SetIdentifier must be 1 to 128 characters");
      set["SetIdentifier"] = id;
    }
    if (rrs->Has("Weight")) {
      int64_t w;
      if (!ParseInt(rrs->ChildText("Weight"), 0, 255, &w)) return InvalidInput("Weight must be between 0 and 255");
      set["Weight"] = w;
    }
    if (rrs->Has("Failover")) {
      std::string f = rrs->ChildText("Failover");
      if (f != "PRIMARY" && f != "SECONDARY") return InvalidInput("Invalid XML ; Failover must be PRIMARY or SECONDARY");
      set["Failover"] = f;
    }
    if (set.contains("Weight") && set.contains("Failover")) {
      return InvalidInput("Invalid request: a resource record set cannot be both weighted and failover, in " + ChangeLabel(ch.action, set));
    }
    if ((set.contains("Weight") || set.contains("Failover")) != set.contains("SetIdentifier")) {
      return InvalidInput(set.contains("SetIdentifier")
                              ? "Invalid request: A SetIdentifier needs a routing policy (Weight or Failover) in " + ChangeLabel(ch.action, set)
                              : "Invalid request: Missing field 'SetIdentifier' in " + ChangeLabel(ch.action, set));
    }
    if (rrs->Has("TTL")) {
      int64_t ttl;
      if (!ParseInt(rrs->ChildText("TTL"), 0, 2147483647, &ttl)) return InvalidInput("TTL must be between 0 and 2147483647");
      set["TTL"] = ttl;
    }
    const XmlNode* records = rrs->Child("ResourceRecords");
    if (records) {
      Json values = Json::array();
      for (const XmlNode* r : records->Children("ResourceRecord")) values.push_back(r->ChildText("Value"));
      if (values.empty()) return InvalidInput("Invalid request: ResourceRecords must hold at least one ResourceRecord in " + ChangeLabel(ch.action, set));
      if (values.size() > 400) return InvalidInput("Too many ResourceRecords (at most 400) in " + ChangeLabel(ch.action, set));
      set["ResourceRecords"] = values;
    }
    if (const XmlNode* alias = rrs->Child("AliasTarget")) {
      std::string target = dns::CanonicalName(alias->ChildText("DNSName"));
      if (target.empty() || alias->ChildText("HostedZoneId").empty()) {
        return InvalidInput("Invalid request: AliasTarget needs HostedZoneId and DNSName in " + ChangeLabel(ch.action, set));
      }
      std::string eval = alias->ChildText("EvaluateTargetHealth");
      set["AliasTarget"] = Json{{"HostedZoneId", alias->ChildText("HostedZoneId")},
                                {"DNSName", target},
                                {"EvaluateTargetHealth", eval == "true"}};
    }
    if (rrs->Has("HealthCheckId")) set["HealthCheckId"] = rrs->ChildText("HealthCheckId");
    const bool alias = set.contains("AliasTarget");
    const bool plain = set.contains("TTL") && set.contains("ResourceRecords");
    if (alias == plain || (alias && (set.contains("TTL") || set.contains("ResourceRecords"))) ||
        (!alias && (set.contains("TTL") != set.contains("ResourceRecords")))) {
      return InvalidInput("Invalid request: Expected exactly one of [AliasTarget, all of [TTL, and ResourceRecords], or TrafficPolicyInstanceId], but found " +
                          std::string(alias ? "more than one" : "none") + " in " + ChangeLabel(ch.action, set));
    }
    if (alias && type != "A" && type != "AAAA" && type != "CNAME" && type != "TXT") {
      return InvalidInput("Invalid request: an alias record must be of type A, AAAA, CNAME or TXT");
    }
    ch.set = std::move(set);
    out.push_back(std::move(ch));
  }
  return out;
}

Json DefaultRecordSets(const std::string& apex) {
  Json ns = Json::array({"ns-1.autopipe-dns.test.", "ns-2.autopipe-dns.test."});
  return Json::array(
      {Json{{"Name", apex}, {"Type", "NS"}, {"TTL", 172800}, {"ResourceRecords", ns}},
       Json{{"Name", apex},
            {"Type", "SOA"},
            {"TTL", 900},
            {"ResourceRecords", Json::array({"ns-1.autopipe-dns.test. hostmaster.autopipe-dns.test. 1 7200 900 1209600 86400"})}}});
}

Status ApplyChanges(const ChangeContext& ctx, const std::vector<Change>& changes, Json* sets_io) {
  std::map<std::string, Json> sets;  // by Key
  for (const auto& s : *sets_io) sets[Key(s)] = s;
  std::vector<std::string> errors;
  std::set<std::string> touched;
  for (const auto& ch : changes) {
    const Json& set = ch.set;
    const std::string name = set["Name"];
    const std::string type = set["Type"];
    if (!InZone(name, ctx.apex)) {
      errors.push_back("RRSet with DNS name " + name + " is not permitted in zone " + ctx.apex);
      continue;
    }
    if (set.contains("HealthCheckId") && !ctx.health_check_exists(set["HealthCheckId"])) {
      return Status(404, "NoSuchHealthCheck",
                    "A health check with id " + set["HealthCheckId"].get<std::string>() + " does not exist.");
    }
    if (set.contains("ResourceRecords")) {
      for (const auto& v : set["ResourceRecords"]) {
        std::string why = dns::ValidateRecordValue(type, v.get<std::string>());
        if (!why.empty()) {
          errors.push_back("Invalid Resource Record: 'FATAL problem: " + why + " encountered with '" +
                           v.get<std::string>() + "''");
        }
      }
      if (type == "CNAME" && set["ResourceRecords"].size() > 1) {
        errors.push_back("RRSet of type CNAME with DNS name " + name + " contains more than one value");
      }
    }
    if (set.contains("AliasTarget") && ctx.check_alias && ch.action != "DELETE") {
      std::string why = ctx.check_alias(set["AliasTarget"], type);
      if (!why.empty()) errors.push_back(why);
    }
    const std::string key = Key(set);
    auto it = sets.find(key);
    const bool apex_default = name == ctx.apex && (type == "SOA" || type == "NS");
    if (ch.action == "CREATE") {
      if (it != sets.end()) {
        errors.push_back("Tried to create resource record set " + DescribeSet(set) + " but it already exists");
        continue;
      }
      if (apex_default) {
        errors.push_back("Tried to create resource record set " + DescribeSet(set) + " but it already exists");
        continue;
      }
      sets[key] = set;
    } else if (ch.action == "DELETE") {
      if (it == sets.end()) {
        errors.push_back("Tried to delete resource record set " + DescribeSet(set) + " but it was not found");
        continue;
      }
      if (it->second != set) {
        errors.push_back("Tried to delete resource record set " + DescribeSet(set) +
                         " but the values provided do not match the current values");
        continue;
      }
      if (apex_default) {
        errors.push_back(type == "SOA" ? "A HostedZone must contain exactly one SOA record."
                                       : "A HostedZone must contain at least one NS record for the zone itself.");
        continue;
      }
      sets.erase(it);
    } else {  // UPSERT
      sets[key] = set;
    }
    touched.insert(name + "|" + type);
  }
  // Rules over the result, for what this batch touched.
  std::map<std::string, std::vector<const Json*>> by_name_type;
  std::map<std::string, std::set<std::string>> types_at;
  for (const auto& [k, s] : sets) {
    by_name_type[s["Name"].get<std::string>() + "|" + s["Type"].get<std::string>()].push_back(&s);
    types_at[s["Name"]].insert(s["Type"].get<std::string>());
  }
  for (const auto& nt : touched) {
    auto group = by_name_type.find(nt);
    if (group == by_name_type.end()) continue;
    const Json& first = *group->second.front();
    const std::string name = first["Name"];
    const std::string type = first["Type"];
    if (type == "CNAME" && name == ctx.apex) {
      errors.push_back("RRSet of type CNAME with DNS name " + name + " is not permitted at apex in zone " + ctx.apex);
    }
    if (types_at[name].size() > 1 && types_at[name].count("CNAME")) {
      errors.push_back("RRSet of type CNAME with DNS name " + name +
                       " is not permitted as it conflicts with other records with the same DNS name in zone " + ctx.apex);
    }
    int simple = 0, weighted = 0, primary = 0, secondary = 0;
    for (const Json* s : group->second) {
      if (s->contains("Weight")) ++weighted;
      else if (s->contains("Failover")) ((*s)["Failover"] == "PRIMARY" ? primary : secondary)++;
      else ++simple;
    }
    if ((simple > 0) + (weighted > 0) + (primary + secondary > 0) > 1) {
      errors.push_back("RRSet with DNS name " + name + ", type " + type +
                       " cannot be created because a record set with another routing policy exists with the same name and type");
    }
    if (primary > 1 || secondary > 1) {
      errors.push_back("RRSet with DNS name " + name + ", type " + type + " has more than one " +
                       (primary > 1 ? "PRIMARY" : "SECONDARY") + " failover record set");
    }
  }
  if (!errors.empty()) {
    std::string msg = "[";
    for (size_t i = 0; i < errors.size(); ++i) msg += (i ? ", " : "") + errors[i];
    return Status(400, "InvalidChangeBatch", msg + "]");
  }
  Json out = Json::array();
  for (auto& [k, s] : sets) out.push_back(std::move(s));
  *sets_io = std::move(out);
  return Status::Ok();
}

void WriteRecordSet(XmlWriter& w, const Json& s) {
  w.Open("ResourceRecordSet");
  w.Leaf("Name", s.value("Name", ""));
  w.Leaf("Type", s.value("Type", ""));
  if (s.contains("SetIdentifier")) w.Leaf("SetIdentifier", s["SetIdentifier"].get<std::string>());
  if (s.contains("Weight")) w.Leaf("Weight", std::to_string(s["Weight"].get<int64_t>()));
  if (s.contains("Failover")) w.Leaf("Failover", s["Failover"].get<std::string>());
  if (s.contains("TTL")) w.Leaf("TTL", std::to_string(s["TTL"].get<int64_t>()));
  if (s.contains("ResourceRecords")) {
    w.Open("ResourceRecords");
    for (const auto& v : s["ResourceRecords"]) w.Open("ResourceRecord").Leaf("Value", v.get<std::string>()).Close("ResourceRecord");
    w.Close("ResourceRecords");
  }
  if (s.contains("AliasTarget")) {
    const Json& a = s["AliasTarget"];
    w.Open("AliasTarget")
        .Leaf("HostedZoneId", a.value("HostedZoneId", ""))
        .Leaf("DNSName", a.value("DNSName", ""))
        .Leaf("EvaluateTargetHealth", a.value("EvaluateTargetHealth", false) ? "true" : "false")
        .Close("AliasTarget");
  }
  if (s.contains("HealthCheckId")) w.Leaf("HealthCheckId", s["HealthCheckId"].get<std::string>());
  w.Close("ResourceRecordSet");
}

}  // namespace autopipe::route53

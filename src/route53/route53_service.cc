#include "route53/route53_service.h"

#include <arpa/inet.h>

#include <algorithm>
#include <map>

#include "api/form.h"
#include "common/ids.h"
#include "common/log.h"
#include "common/time_util.h"
#include "dns/authority.h"
#include "route53/records.h"
#include "route53/xml.h"

namespace autopipe::route53 {
namespace {

constexpr char kVersionPrefix[] = "/2013-04-01/";
constexpr char kLocationBase[] = "https://route53.amazonaws.com/2013-04-01/";

Status InvalidInput(const std::string& m) { return Status(400, "InvalidInput", m); }
Status NoSuchHostedZone(const std::string& id) {
  return Status(404, "NoSuchHostedZone", "No hosted zone found with ID: " + id);
}
Status NoSuchHealthCheck(const std::string& id) {
  return Status(404, "NoSuchHealthCheck", "A health check with id " + id + " does not exist.");
}

std::string Upper(std::string s) {
  for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

// "/hostedzone/Z1" or "Z1" -> "Z1" (botocore strips the prefix; other clients may not).
std::string StripPrefix(std::string id) {
  for (const char* p : {"/hostedzone/", "hostedzone/", "/change/", "change/", "/healthcheck/"}) {
    if (id.rfind(p, 0) == 0) return id.substr(std::string(p).size());
  }
  return id;
}

struct Request {
  std::string method;
  std::vector<std::string> path;  // after /2013-04-01/, decoded
  FormParams query;
  const std::string* body;
};

struct Reply {
  int status = 200;
  std::string xml;
  std::string location;
};

void WriteChangeInfo(XmlWriter& w, const Json& change, bool insync) {
  w.Open("ChangeInfo")
      .Leaf("Id", "/change/" + change.value("Id", ""))
      .Leaf("Status", insync ? "INSYNC" : "PENDING")
      .Leaf("SubmittedAt", IsoTimeMillis(change.value("SubmittedAt", int64_t{0})));
  if (change.contains("Comment")) w.Leaf("Comment", change["Comment"].get<std::string>());
  w.Close("ChangeInfo");
}

void WriteZone(XmlWriter& w, const Json& z) {
  w.Open("HostedZone")
      .Leaf("Id", "/hostedzone/" + z.value("Id", ""))
      .Leaf("Name", z.value("Name", ""))
      .Leaf("CallerReference", z.value("CallerReference", ""));
  w.Open("Config");
  if (z.contains("Comment")) w.Leaf("Comment", z["Comment"].get<std::string>());
  w.Leaf("PrivateZone", "false").Close("Config");
  w.Leaf("ResourceRecordSetCount", std::to_string(z.contains("RecordSets") ? z["RecordSets"].size() : 0));
  w.Close("HostedZone");
}

void WriteDelegationSet(XmlWriter& w) {
  w.Open("DelegationSet").Open("NameServers");
  w.Leaf("NameServer", "ns-1.autopipe-dns.test").Leaf("NameServer", "ns-2.autopipe-dns.test");
  w.Close("NameServers").Close("DelegationSet");
}

void WriteHealthCheck(XmlWriter& w, const Json& h) {
  const Json& c = h["HealthCheckConfig"];
  w.Open("HealthCheck").Leaf("Id", h.value("Id", "")).Leaf("CallerReference", h.value("CallerReference", ""));
  w.Open("HealthCheckConfig");
  w.Leaf("IPAddress", c.value("IPAddress", ""));
  w.Leaf("Port", std::to_string(c.value("Port", 80)));
  w.Leaf("Type", c.value("Type", ""));
  if (c.contains("ResourcePath")) w.Leaf("ResourcePath", c["ResourcePath"].get<std::string>());
  if (c.contains("FullyQualifiedDomainName")) {
    w.Leaf("FullyQualifiedDomainName", c["FullyQualifiedDomainName"].get<std::string>());
  }
  w.Leaf("RequestInterval", std::to_string(c.value("RequestInterval", 30)));
  w.Leaf("FailureThreshold", std::to_string(c.value("FailureThreshold", 3)));
  w.Leaf("MeasureLatency", "false").Leaf("Inverted", "false").Leaf("Disabled", "false").Leaf("EnableSNI", "false");
  w.Close("HealthCheckConfig");
  w.Leaf("HealthCheckVersion", std::to_string(h.value("HealthCheckVersion", 1)));
  w.Close("HealthCheck");
}

std::string OpenRoot(const char* root) { return std::string("xmlns=\"") + kXmlns + "\""; }

bool ParseCount(const std::string& s, int lo, int hi, int* out) {
  if (s.empty() || s.size() > 6 || s.find_first_not_of("0123456789") != std::string::npos) return false;
  int v = std::stoi(s);
  if (v < lo || v > hi) return false;
  *out = v;
  return true;
}

// Route 53 lists record sets by name with its labels reversed (com.example.www), then type, then identifier.
std::string SortKey(const Json& s) {
  std::string name = s.value("Name", "");
  std::vector<std::string> labels;
  size_t start = 0;
  for (size_t i = 0; i <= name.size(); ++i) {
    if (i == name.size() || name[i] == '.') {
      if (i > start) labels.push_back(name.substr(start, i - start));
      start = i + 1;
    }
  }
  std::string key;
  for (auto it = labels.rbegin(); it != labels.rend(); ++it) key += *it + '\x01';
  return key + '\x02' + s.value("Type", "") + '\x02' + s.value("SetIdentifier", "");
}

bool IsIpv4(const std::string& s) {
  in_addr a{};
  return ::inet_pton(AF_INET, s.c_str(), &a) == 1;
}

class Ops {
 public:
  explicit Ops(const Route53Deps& d) : d_(d) {}

  Result<Reply> Dispatch(const Request& r) const {
    const auto& p = r.path;
    const std::string& m = r.method;
    if (p.size() >= 1 && p[0] == "hostedzone") {
      if (p.size() == 1 && m == "POST") return CreateHostedZone(r);
      if (p.size() == 1 && m == "GET") return ListHostedZones(r);
      if (p.size() == 2 && m == "GET") return GetHostedZone(StripPrefix(p[1]));
      if (p.size() == 2 && m == "DELETE") return DeleteHostedZone(StripPrefix(p[1]));
      if (p.size() == 3 && p[2] == "rrset" && m == "POST") return ChangeResourceRecordSets(StripPrefix(p[1]), r);
      if (p.size() == 3 && p[2] == "rrset" && m == "GET") return ListResourceRecordSets(StripPrefix(p[1]), r);
    }
    if (p.size() == 2 && p[0] == "change" && m == "GET") return GetChange(StripPrefix(p[1]));
    if (p.size() >= 1 && p[0] == "healthcheck") {
      if (p.size() == 1 && m == "POST") return CreateHealthCheck(r);
      if (p.size() == 1 && m == "GET") return ListHealthChecks(r);
      if (p.size() == 2 && m == "GET") return GetHealthCheck(p[1]);
      if (p.size() == 2 && m == "DELETE") return DeleteHealthCheck(p[1]);
      if (p.size() == 3 && p[2] == "status" && m == "GET") return GetHealthCheckStatus(p[1]);
    }
    return Status(404, "UnknownOperationException", "The operation " + m + " /2013-04-01/" +
                                                        (p.empty() ? "" : p[0]) + " is not supported");
  }

 private:
  std::unique_lock<std::mutex> WriteLock() const {
    return d_.write_lock ? std::unique_lock<std::mutex>(*d_.write_lock) : std::unique_lock<std::mutex>();
  }
  bool InSync(const Json& change) const {
    return !d_.dns_applied_revision || d_.dns_applied_revision() >= change.value("Revision", uint64_t{0});
  }
  Json NewChange(const std::string& comment) const {
    Json c{{"Id", "C" + Upper(RandomHex(20))},
           {"SubmittedAt", d_.clock->NowMillis()},
           {"Revision", d_.store->Revision() + 1}};
    if (!comment.empty()) c["Comment"] = comment;
    return c;
  }
  static Result<XmlNode> Body(const Request& r, const char* root) {
    AP_ASSIGN_OR_RETURN(XmlNode doc, ParseXml(*r.body));
    if (doc.name != root) return InvalidInput(std::string("Invalid XML: expected ") + root + ", found " + doc.name);
    return doc;
  }

  Result<Reply> CreateHostedZone(const Request& r) const {
    AP_ASSIGN_OR_RETURN(XmlNode req, Body(r, "CreateHostedZoneRequest"));
    std::string raw = req.ChildText("Name");
    std::string caller = req.ChildText("CallerReference");
    if (raw.empty()) return InvalidInput("1 validation error detected: Value null at 'name' failed to satisfy constraint: Member must not be null");
    if (caller.empty() || caller.size() > 128) {
      return InvalidInput("1 validation error detected: Value at 'callerReference' failed to satisfy constraint: Member must have length between 1 and 128");
    }
    std::string name = dns::CanonicalName(raw);
    if (name.empty() || name == "." || raw.size() > 1024) {
      return Status(400, "InvalidDomainName", raw + " is not a valid domain name.");
    }
    std::string comment;
    if (const XmlNode* cfg = req.Child("HostedZoneConfig")) {
      comment = cfg->ChildText("Comment");
      if (cfg->ChildText("PrivateZone") == "true" || req.Has("VPC")) {
        return InvalidInput("Private hosted zones are not supported by this server");
      }
    }
    auto lock = WriteLock();
    for (const auto& z : d_.store->List(kind::kZone)) {
      if ((*z).value("CallerReference", "") == caller) {
        return Status(409, "HostedZoneAlreadyExists",
                      "A hosted zone has already been created with the specified caller reference.");
      }
      if ((*z).value("Name", "") == name) {
        return Status(400, "ConflictingDomainExists",
                      "The hosted zone " + name + " already exists here (" + (*z).value("Id", "") +
                          "); this server serves one zone per name.");
      }
    }
    Json change = NewChange("");
    Json zone{{"Id", "Z" + Upper(RandomHex(20))}, {"Name", name}, {"CallerReference", caller}};
    if (!comment.empty()) zone["Comment"] = comment;
    zone["CreatedAt"] = d_.clock->NowMillis();
    zone["RecordSets"] = DefaultRecordSets(name);
    AP_RETURN_IF_ERROR(d_.store->Commit({{kind::kZone, zone["Id"], zone, uint64_t{0}},
                                         {kind::kChange, change["Id"], change, uint64_t{0}}}));
    XmlWriter w;
    w.Open("CreateHostedZoneResponse", OpenRoot(""));
    WriteZone(w, zone);
    WriteChangeInfo(w, change, false);
    WriteDelegationSet(w);
    w.Close("CreateHostedZoneResponse");
    return Reply{201, w.str(), std::string(kLocationBase) + "hostedzone/" + zone["Id"].get<std::string>()};
  }

  Result<Reply> GetHostedZone(const std::string& id) const {
    auto z = d_.store->Get(kind::kZone, id);
    if (!z) return NoSuchHostedZone(id);
    XmlWriter w;
    w.Open("GetHostedZoneResponse", OpenRoot(""));
    WriteZone(w, *z);
    WriteDelegationSet(w);
    w.Close("GetHostedZoneResponse");
    return Reply{200, w.str(), ""};
  }

  Result<Reply> ListHostedZones(const Request& r) const {
    int max_items = 100;
    if (r.query.count("maxitems") && !ParseCount(r.query.at("maxitems"), 1, 100, &max_items)) {
      return InvalidInput("maxitems must be between 1 and 100");
    }
    std::string marker = r.query.count("marker") ? StripPrefix(r.query.at("marker")) : "";
    auto zones = d_.store->List(kind::kZone);
    XmlWriter w;
    w.Open("ListHostedZonesResponse", OpenRoot("")).Open("HostedZones");
    int n = 0;
    std::string next;
    for (const auto& z : zones) {
      const std::string id = (*z).value("Id", "");
      if (!marker.empty() && id < marker) continue;
      if (n == max_items) {
        next = id;
        break;
      }
      WriteZone(w, *z);
      ++n;
    }
    w.Close("HostedZones");
    if (!marker.empty()) w.Leaf("Marker", marker);
    w.Leaf("IsTruncated", next.empty() ? "false" : "true");
    if (!next.empty()) w.Leaf("NextMarker", next);
    w.Leaf("MaxItems", std::to_string(max_items)).Close("ListHostedZonesResponse");
    return Reply{200, w.str(), ""};
  }

  Result<Reply> DeleteHostedZone(const std::string& id) const {
    auto lock = WriteLock();
    VersionedDoc z = d_.store->GetVersioned(kind::kZone, id);
    if (!z.doc) return NoSuchHostedZone(id);
    const std::string apex = (*z.doc).value("Name", "");
    for (const auto& s : (*z.doc)["RecordSets"]) {
      if (s.value("Name", "") == apex && (s.value("Type", "") == "SOA" || s.value("Type", "") == "NS")) continue;
      return Status(400, "HostedZoneNotEmpty",
                    "The specified hosted zone contains non-required resource record sets and so cannot be deleted.");
    }
    Json change = NewChange("");
    AP_RETURN_IF_ERROR(d_.store->Commit({{kind::kZone, id, std::nullopt, z.revision},
                                         {kind::kChange, change["Id"], change, uint64_t{0}}}));
    XmlWriter w;
    w.Open("DeleteHostedZoneResponse", OpenRoot(""));
    WriteChangeInfo(w, change, false);
    w.Close("DeleteHostedZoneResponse");
    return Reply{200, w.str(), ""};
  }

  Result<Reply> ChangeResourceRecordSets(const std::string& id, const Request& r) const {
    AP_ASSIGN_OR_RETURN(XmlNode req, ParseXml(*r.body));
    if (!d_.store->Get(kind::kZone, id)) return NoSuchHostedZone(id);
    AP_ASSIGN_OR_RETURN(std::vector<Change> changes, ParseChangeBatch(req));
    std::string comment;
    if (const XmlNode* b = req.Child("ChangeBatch")) comment = b->ChildText("Comment");
    auto lock = WriteLock();
    VersionedDoc z = d_.store->GetVersioned(kind::kZone, id);
    if (!z.doc) return NoSuchHostedZone(id);
    Json zone = *z.doc;
    ChangeContext ctx;
    ctx.apex = zone.value("Name", "");
    ctx.zone_id = id;
    ctx.health_check_exists = [this](const std::string& hc) {
      return d_.store->Get(kind::kHealthCheck, hc).has_value();
    };
    ctx.check_alias = d_.check_alias;
    AP_RETURN_IF_ERROR(ApplyChanges(ctx, changes, &zone["RecordSets"]));
    Json change = NewChange(comment);
    AP_RETURN_IF_ERROR(d_.store->Commit({{kind::kZone, id, zone, z.revision},
                                         {kind::kChange, change["Id"], change, uint64_t{0}}}));
    XmlWriter w;
    w.Open("ChangeResourceRecordSetsResponse", OpenRoot(""));
    WriteChangeInfo(w, change, false);
    w.Close("ChangeResourceRecordSetsResponse");
    return Reply{200, w.str(), ""};
  }

  Result<Reply> ListResourceRecordSets(const std::string& id, const Request& r) const {
    auto z = d_.store->Get(kind::kZone, id);
    if (!z) return NoSuchHostedZone(id);
    int max_items = 300;
    if (r.query.count("maxitems") && !ParseCount(r.query.at("maxitems"), 1, 300, &max_items)) {
      return InvalidInput("maxitems must be between 1 and 300");
    }
    std::string start_name = r.query.count("name") ? dns::CanonicalName(r.query.at("name")) : "";
    std::string start_type = r.query.count("type") ? r.query.at("type") : "";
    std::string start_id = r.query.count("identifier") ? r.query.at("identifier") : "";
    if (!start_type.empty() && start_name.empty()) {
      return InvalidInput("The input is not valid: a type (StartRecordType) requires a name (StartRecordName)");
    }
    std::vector<const Json*> sets;
    for (const auto& s : (*z)["RecordSets"]) sets.push_back(&s);
    std::sort(sets.begin(), sets.end(), [](const Json* a, const Json* b) { return SortKey(*a) < SortKey(*b); });
    std::string from;
    if (!start_name.empty()) {
      Json probe{{"Name", start_name}, {"Type", start_type}};
      if (!start_id.empty()) probe["SetIdentifier"] = start_id;
      from = SortKey(probe);
    }
    XmlWriter w;
    w.Open("ListResourceRecordSetsResponse", OpenRoot("")).Open("ResourceRecordSets");
    int n = 0;
    const Json* next = nullptr;
    for (const Json* s : sets) {
      if (!from.empty() && SortKey(*s) < from) continue;
      if (n == max_items) {
        next = s;
        break;
      }
      WriteRecordSet(w, *s);
      ++n;
    }
    w.Close("ResourceRecordSets").Leaf("IsTruncated", next ? "true" : "false");
    if (next) {
      w.Leaf("NextRecordName", next->value("Name", "")).Leaf("NextRecordType", next->value("Type", ""));
      if (next->contains("SetIdentifier")) w.Leaf("NextRecordIdentifier", (*next)["SetIdentifier"].get<std::string>());
    }
    w.Leaf("MaxItems", std::to_string(max_items)).Close("ListResourceRecordSetsResponse");
    return Reply{200, w.str(), ""};
  }

  Result<Reply> GetChange(const std::string& id) const {
    auto c = d_.store->Get(kind::kChange, id);
    if (!c) return Status(404, "NoSuchChange", "A change with the specified change ID does not exist.");
    XmlWriter w;
    w.Open("GetChangeResponse", OpenRoot(""));
    WriteChangeInfo(w, *c, InSync(*c));
    w.Close("GetChangeResponse");
    return Reply{200, w.str(), ""};
  }

  Result<Reply> CreateHealthCheck(const Request& r) const {
    AP_ASSIGN_OR_RETURN(XmlNode req, Body(r, "CreateHealthCheckRequest"));
    std::string caller = req.ChildText("CallerReference");
    if (caller.empty() || caller.size() > 64) {
      return InvalidInput("1 validation error detected: Value at 'callerReference' failed to satisfy constraint: Member must have length between 1 and 64");
    }
    const XmlNode* cfg = req.Child("HealthCheckConfig");
    if (!cfg) return InvalidInput("1 validation error detected: Value null at 'healthCheckConfig' failed to satisfy constraint: Member must not be null");
    Json c = Json::object();
    std::string type = cfg->ChildText("Type");
    if (type != "HTTP" && type != "TCP") {
      return InvalidInput("Invalid parameter Type: this server checks HTTP and TCP endpoints (got '" + type + "')");
    }
    std::string ip = cfg->ChildText("IPAddress");
    if (ip.empty() || !IsIpv4(ip)) {
      return InvalidInput("Invalid parameter IPAddress: an IPv4 address is required (got '" + ip + "')");
    }
    c["IPAddress"] = ip;
    int port = type == "HTTP" ? 80 : 0;
    if (cfg->Has("Port") && !ParseCount(cfg->ChildText("Port"), 1, 65535, &port)) {
      return InvalidInput("Invalid parameter Port: must be between 1 and 65535");
    }
    if (port == 0) return InvalidInput("A Port is required for a TCP health check");
    c["Port"] = port;
    c["Type"] = type;
    if (type == "HTTP") {
      std::string path = cfg->Has("ResourcePath") ? cfg->ChildText("ResourcePath") : "/";
      if (path.empty() || path[0] != '/' || path.size() > 255) {
        return InvalidInput("Invalid parameter ResourcePath: it must start with / and be at most 255 characters");
      }
      c["ResourcePath"] = path;
    }
    if (cfg->Has("FullyQualifiedDomainName")) c["FullyQualifiedDomainName"] = cfg->ChildText("FullyQualifiedDomainName");
    int interval = 30;
    if (cfg->Has("RequestInterval") &&
        (!ParseCount(cfg->ChildText("RequestInterval"), 10, 30, &interval) || (interval != 10 && interval != 30))) {
      return InvalidInput("Invalid parameter RequestInterval: must be 10 or 30");
    }
    c["RequestInterval"] = interval;
    int threshold = 3;
    if (cfg->Has("FailureThreshold") && !ParseCount(cfg->ChildText("FailureThreshold"), 1, 10, &threshold)) {
      return InvalidInput("Invalid parameter FailureThreshold: must be between 1 and 10");
    }
    c["FailureThreshold"] = threshold;
    auto lock = WriteLock();
    for (const auto& h : d_.store->List(kind::kHealthCheck)) {
      if ((*h).value("CallerReference", "") != caller) continue;
      if ((*h)["HealthCheckConfig"] != c) {
        return Status(409, "HealthCheckAlreadyExists",
                      "A health check with the same CallerReference and different settings already exists: " +
                          (*h).value("Id", ""));
      }
      XmlWriter w;
      w.Open("CreateHealthCheckResponse", OpenRoot(""));
      WriteHealthCheck(w, *h);
      w.Close("CreateHealthCheckResponse");
      return Reply{201, w.str(), std::string(kLocationBase) + "healthcheck/" + (*h).value("Id", "")};
    }
    Json hc{{"Id", NewUuid()}, {"CallerReference", caller}, {"HealthCheckConfig", c}, {"HealthCheckVersion", 1}};
    AP_RETURN_IF_ERROR(d_.store->Commit({{kind::kHealthCheck, hc["Id"], hc, uint64_t{0}}}));
    XmlWriter w;
    w.Open("CreateHealthCheckResponse", OpenRoot(""));
    WriteHealthCheck(w, hc);
    w.Close("CreateHealthCheckResponse");
    return Reply{201, w.str(), std::string(kLocationBase) + "healthcheck/" + hc["Id"].get<std::string>()};
  }

  Result<Reply> GetHealthCheck(const std::string& id) const {
    auto h = d_.store->Get(kind::kHealthCheck, id);
    if (!h) return NoSuchHealthCheck(id);
    XmlWriter w;
    w.Open("GetHealthCheckResponse", OpenRoot(""));
    WriteHealthCheck(w, *h);
    w.Close("GetHealthCheckResponse");
    return Reply{200, w.str(), ""};
  }

  Result<Reply> GetHealthCheckStatus(const std::string& id) const {
    auto h = d_.store->Get(kind::kHealthCheck, id);
    if (!h) return NoSuchHealthCheck(id);
    XmlWriter w;
    w.Open("GetHealthCheckStatusResponse", OpenRoot("")).Open("HealthCheckObservations");
    std::optional<HealthState> st = d_.health ? d_.health->State(id) : std::nullopt;
    if (st && st->checked_at_ms > 0) {
      w.Open("HealthCheckObservation").Leaf("Region", "us-east-1").Leaf("IPAddress", "127.0.0.1");
      w.Open("StatusReport").Leaf("Status", st->last_report).Leaf("CheckedTime", IsoTimeMillis(st->checked_at_ms));
      w.Close("StatusReport").Close("HealthCheckObservation");
    }
    w.Close("HealthCheckObservations").Close("GetHealthCheckStatusResponse");
    return Reply{200, w.str(), ""};
  }

  Result<Reply> ListHealthChecks(const Request& r) const {
    int max_items = 100;
    if (r.query.count("maxitems") && !ParseCount(r.query.at("maxitems"), 1, 1000, &max_items)) {
      return InvalidInput("maxitems must be between 1 and 1000");
    }
    std::string marker = r.query.count("marker") ? r.query.at("marker") : "";
    XmlWriter w;
    w.Open("ListHealthChecksResponse", OpenRoot("")).Open("HealthChecks");
    int n = 0;
    std::string next;
    for (const auto& h : d_.store->List(kind::kHealthCheck)) {
      const std::string id = (*h).value("Id", "");
      if (!marker.empty() && id < marker) continue;
      if (n == max_items) {
        next = id;
        break;
      }
      WriteHealthCheck(w, *h);
      ++n;
    }
    w.Close("HealthChecks").Leaf("Marker", marker).Leaf("IsTruncated", next.empty() ? "false" : "true");
    if (!next.empty()) w.Leaf("NextMarker", next);
    w.Leaf("MaxItems", std::to_string(max_items)).Close("ListHealthChecksResponse");
    return Reply{200, w.str(), ""};
  }

  Result<Reply> DeleteHealthCheck(const std::string& id) const {
    auto lock = WriteLock();
    VersionedDoc h = d_.store->GetVersioned(kind::kHealthCheck, id);
    if (!h.doc) return NoSuchHealthCheck(id);
    for (const auto& z : d_.store->List(kind::kZone)) {
      for (const auto& s : (*z)["RecordSets"]) {
        if (s.value("HealthCheckId", "") == id) {
          return Status(400, "HealthCheckInUse", "The health check with id " + id +
                                                     " is still referenced from a resource record set in zone " +
                                                     (*z).value("Name", "") + ".");
        }
      }
    }
    AP_RETURN_IF_ERROR(d_.store->Commit({{kind::kHealthCheck, id, std::nullopt, h.revision}}));
    XmlWriter w;
    w.Open("DeleteHealthCheckResponse", OpenRoot("")).Close("DeleteHealthCheckResponse");
    return Reply{200, w.str(), ""};
  }

  const Route53Deps& d_;
};

}  // namespace

HttpReply ErrorReply(const Status& error) {
  XmlWriter w;
  w.Open("ErrorResponse", std::string("xmlns=\"") + kXmlns + "\"").Open("Error");
  w.Leaf("Type", error.sender_fault() ? "Sender" : "Receiver");
  w.Leaf("Code", error.code());
  w.Leaf("Message", error.sender_fault() ? error.message() : "An internal error occurred.");
  w.Close("Error").Leaf("RequestId", NewUuid()).Close("ErrorResponse");
  HttpReply reply;
  reply.status = error.http_status();
  reply.content_type = "text/xml";
  reply.body = w.str();
  return reply;
}

HttpReply Route53Api::Refuse(const SigV4Request&, const Status& error) { return ErrorReply(error); }

std::vector<HealthCheckConfig> Route53Api::HealthChecks() const {
  std::vector<HealthCheckConfig> out;
  for (const auto& h : d_.store->List(kind::kHealthCheck)) {
    const Json& c = (*h)["HealthCheckConfig"];
    HealthCheckConfig hc;
    hc.id = (*h).value("Id", "");
    hc.type = c.value("Type", "HTTP");
    hc.ip = c.value("IPAddress", "");
    hc.port = c.value("Port", 80);
    hc.resource_path = c.value("ResourcePath", "/");
    hc.fqdn = c.value("FullyQualifiedDomainName", "");
    hc.interval_seconds = c.value("RequestInterval", 30);
    hc.failure_threshold = c.value("FailureThreshold", 3);
    out.push_back(std::move(hc));
  }
  return out;
}

HttpReply Route53Api::Handle(const SigV4Request& http) const {
  try {
    if (d_.verify_signatures) {
      auto caller = VerifySigV4(http, d_.secrets, "us-east-1", d_.clock->NowMillis() / 1000);
      if (!caller.ok()) return ErrorReply(caller.status());
      if (caller->service != "route53") {
        return ErrorReply(Status(403, "SignatureDoesNotMatch",
                                 "Credential should be scoped to correct service: 'route53'. "));
      }
    }
    Request r;
    r.method = http.method;
    r.body = &http.body;
    std::string_view target = http.target;
    size_t q = target.find('?');
    std::string_view path = target.substr(0, q);
    if (q != std::string_view::npos) {
      auto form = ParseForm(target.substr(q + 1));
      if (!form) return ErrorReply(InvalidInput("The query string is not valid"));
      r.query = std::move(*form);
    }
    if (path.rfind(kVersionPrefix, 0) != 0) {
      return ErrorReply(Status(404, "UnknownOperationException", "Route 53's API is under /2013-04-01/"));
    }
    path.remove_prefix(std::string_view(kVersionPrefix).size());
    size_t start = 0;
    for (size_t i = 0; i <= path.size(); ++i) {
      if (i == path.size() || path[i] == '/') {
        if (i > start) {
          auto seg = UrlDecode(path.substr(start, i - start));
          if (!seg) return ErrorReply(InvalidInput("The request path is not valid"));
          r.path.push_back(*seg);
        }
        start = i + 1;
      }
    }
    Ops ops(d_);
    auto result = ops.Dispatch(r);
    if (!result.ok()) {
      if (!result.status().sender_fault()) spdlog::error("route53: {}", result.status().ToString());
      return ErrorReply(result.status());
    }
    HttpReply reply;
    reply.status = result->status;
    reply.content_type = "text/xml";
    reply.body = std::move(result->xml);
    if (!result->location.empty()) reply.headers.emplace_back("Location", result->location);
    reply.headers.emplace_back("x-amzn-RequestId", NewUuid());
    return reply;
  } catch (const std::exception& e) {
    spdlog::error("route53: exception: {}", e.what());
    return ErrorReply(Status::Internal(e.what()));
  }
}

}  // namespace autopipe::route53

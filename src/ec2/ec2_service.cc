#include "ec2/ec2_service.h"

#include <algorithm>
#include <set>

#include "api/page_token.h"
#include "common/time_util.h"
#include "ec2/ec2_common.h"
#include "ec2/instances.h"
#include "ec2/vpc.h"

namespace autopipe {
namespace {

using ec2::AnyMatch;
using ec2::Ec2Error;
using ec2::TagSet;
using ec2::Filter;
using ec2::ReadFilters;

// nullopt: the filter name is not supported.
std::optional<bool> InstanceMatches(const Json& inst, const Filter& f) {
  auto field = [&](const char* name) { return inst[name].get<std::string>(); };
  if (f.name == "instance-id") return AnyMatch(f.values, field("InstanceId"));
  if (f.name == "instance-state-name") return AnyMatch(f.values, field("State"));
  if (f.name == "instance-state-code")
    return AnyMatch(f.values, std::to_string(InstanceStateCode(field("State"))));
  if (f.name == "availability-zone") return AnyMatch(f.values, field("AvailabilityZone"));
  if (f.name == "image-id") return AnyMatch(f.values, field("ImageId"));
  if (f.name == "instance-type") return AnyMatch(f.values, field("InstanceType"));
  if (f.name == "private-ip-address") return AnyMatch(f.values, field("PrivateIpAddress"));
  return ec2::TagFilterMatches(inst["Tags"], f);
}

// EC2's instance ids: "i-" and 8 or 17 lower-case hex digits. Anything else is malformed, not missing.
Status InstanceIdShape(const std::string& id) {
  const bool hex = id.size() > 2 && std::all_of(id.begin() + 2, id.end(), [](char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
  });
  if (id.rfind("i-", 0) == 0 && hex && (id.size() == 10 || id.size() == 19)) return Status::Ok();
  return Ec2Error("InvalidInstanceID.Malformed", "Invalid id: \"" + id + "\"");
}

Json InstanceXml(const RegionContext& ctx, const Json& inst) {
  const std::string& state = inst["State"].get_ref<const std::string&>();
  const std::string& ip = inst["PrivateIpAddress"].get_ref<const std::string&>();
  const bool terminated = state == instance_state::kTerminated;
  const std::string& id = inst["InstanceId"].get_ref<const std::string&>();
  const std::string launched = IsoTimeMillis(inst["LaunchTime"].get<int64_t>());
  const InstanceType* type = ctx.catalog->FindInstanceType(inst["InstanceType"]);
  const int vcpus = type ? type->vcpus : 1;
  const int threads = vcpus > 1 ? 2 : 1;
  Json groups(Json::value_t::array);
  for (const auto& g : inst["SecurityGroups"])
    groups.push_back(JsonObject().Add("groupId", g).Add("groupName", g).Take());
  JsonObject out;
  out.Add("instanceId", inst["InstanceId"])
      .Add("imageId", inst["ImageId"])
      .Add("instanceState", JsonObject().Add("code", InstanceStateCode(state)).Add("name", state).Take())
      .Add("privateDnsName", terminated ? "" : ec2::PrivateDnsName(*ctx.catalog, ip))
      .Add("dnsName", "")
      .Add("reason", inst["StateTransitionReason"])
      .Add("keyName", inst["KeyName"].get_ref<const std::string&>().empty() ? Json() : inst["KeyName"])
      .Add("amiLaunchIndex", 0)
      .Add("productCodes", Json::array())
      .Add("instanceType", inst["InstanceType"])
      .Add("launchTime", IsoTimeMillis(inst["LaunchTime"].get<int64_t>()))
      .Add("placement", JsonObject()
                            .Add("availabilityZone", inst["AvailabilityZone"])
                            .Add("groupName", "")
                            .Add("tenancy", "default")
                            .Take())
      .Add("monitoring", JsonObject().Add("state", "disabled").Take())
      .Add("privateIpAddress", terminated ? Json() : Json(ip))
      .Add("subnetId", terminated ? Json() : Json(ec2::DefaultSubnetId(*ctx.catalog, inst["AvailabilityZone"])))
      .Add("vpcId", terminated ? Json() : Json(ec2::DefaultVpcId(*ctx.catalog)))
      .Add("groupSet", std::move(groups))
      .Add("architecture", "x86_64")
      .Add("rootDeviceType", "ebs")
      .Add("rootDeviceName", "/dev/xvda")
      .Add("virtualizationType", "hvm")
      .Add("hypervisor", "xen")
      .Add("ebsOptimized", false)
      .Add("enaSupport", true)
      .Add("sourceDestCheck", true)
      .Add("clientToken", "")
      .Add("platformDetails", "Linux/UNIX")
      .Add("usageOperation", "RunInstances")
      .Add("usageOperationUpdateTime", IsoTimeMillis(inst["LaunchTime"].get<int64_t>()))
      .Add("cpuOptions",
           JsonObject().Add("coreCount", std::max(1, vcpus / threads)).Add("threadsPerCore", threads).Take())
      .Add("capacityReservationSpecification", JsonObject().Add("capacityReservationPreference", "open").Take())
      .Add("hibernationOptions", JsonObject().Add("configured", false).Take())
      .Add("enclaveOptions", JsonObject().Add("enabled", false).Take())
      .Add("metadataOptions", JsonObject()
                                  .Add("state", "applied")
                                  .Add("httpTokens", "optional")
                                  .Add("httpPutResponseHopLimit", 1)
                                  .Add("httpEndpoint", "enabled")
                                  .Add("httpProtocolIpv6", "disabled")
                                  .Add("instanceMetadataTags", "disabled")
                                  .Take())
      .Add("maintenanceOptions", JsonObject().Add("autoRecovery", "default").Take())
      .Add("privateDnsNameOptions", JsonObject()
                                        .Add("hostnameType", "ip-name")
                                        .Add("enableResourceNameDnsARecord", false)
                                        .Add("enableResourceNameDnsAAAARecord", false)
                                        .Take())
      .Add("currentInstanceBootMode", "legacy-bios")
      .Add("blockDeviceMapping", terminated ? Json::array()
                                            : Json::array({JsonObject()
                                                               .Add("deviceName", "/dev/xvda")
                                                               .Add("ebs", JsonObject()
                                                                               .Add("volumeId", ec2::RootVolumeId(id))
                                                                               .Add("status", "attached")
                                                                               .Add("attachTime", launched)
                                                                               .Add("deleteOnTermination", true)
                                                                               .Take())
                                                               .Take()}))
      .Add("networkInterfaceSet", terminated ? Json::array() : Json::array({ec2::NetworkInterfaceOf(ctx, inst)}));
  if (inst["StateReason"].is_object()) {
    out.Add(
        "stateReason",
        JsonObject().Add("code", inst["StateReason"]["Code"]).Add("message", inst["StateReason"]["Message"]).Take());
  }
  if (!inst["Tags"].empty()) out.Add("tagSet", TagSet(inst["Tags"]));
  return out.Take();
}

Json StateChange(const std::string& id, const std::string& before, const std::string& after) {
  return {{"instanceId", id},
          {"currentState", {{"code", InstanceStateCode(after)}, {"name", after}}},
          {"previousState", {{"code", InstanceStateCode(before)}, {"name", before}}}};
}

Result<Json> DescribeImages(RegionContext* ctx, const Params& p) {
  auto ids = p.List("ImageId");
  for (const auto& id : ids) {
    if (id.rfind("ami-", 0) != 0) return Ec2Error("InvalidAMIID.Malformed", "Invalid id: \"" + id + "\"");
    if (!ctx->catalog->FindImage(id)) {
      return Ec2Error("InvalidAMIID.NotFound", "The image id '[" + id + "]' does not exist");
    }
  }
  auto filters = ReadFilters(p);
  Json images = Json::array();
  for (const auto& img : ctx->catalog->images()) {
    if (!ids.empty() && std::find(ids.begin(), ids.end(), img.image_id) == ids.end()) continue;
    bool keep = true;
    for (const auto& f : filters) {
      if (f.name == "image-id") keep &= AnyMatch(f.values, img.image_id);
      else if (f.name == "name") keep &= AnyMatch(f.values, img.name);
      else if (f.name == "state") keep &= AnyMatch(f.values, "available");
    }
    if (!keep) continue;
    images.push_back({{"imageId", img.image_id},
                      {"imageLocation", std::string(kAccountId) + "/" + img.name},
                      {"imageState", "available"},
                      {"imageOwnerId", kAccountId},
                      {"creationDate", "2026-11-01T00:00:00.000Z"},
                      {"isPublic", true},
                      {"architecture", "x86_64"},
                      {"imageType", "machine"},
                      {"name", img.name},
                      {"description", img.description},
                      {"rootDeviceType", "ebs"},
                      {"rootDeviceName", "/dev/xvda"},
                      {"virtualizationType", "hvm"},
                      {"hypervisor", "xen"},
                      {"enaSupport", true}});
  }
  return Json{{"imagesSet", images}};
}

Result<Json> DescribeInstances(RegionContext* ctx, const Params& p) {
  auto ids = p.List("InstanceId");
  auto filters = ReadFilters(p);
  for (const auto& f : filters) {
    Json probe = {{"InstanceId", ""}, {"State", ""}, {"AvailabilityZone", ""}, {"ImageId", ""},
                  {"InstanceType", ""}, {"PrivateIpAddress", ""}, {"Tags", Json::object()}};
    if (!InstanceMatches(probe, f)) {
      return Ec2Error("InvalidParameterValue", "The filter '" + f.name + "' is invalid");
    }
  }
  for (const auto& id : ids) AP_RETURN_IF_ERROR(InstanceIdShape(id));
  for (const auto& id : ids) {
    if (!ctx->store->Get(kind::kInstance, id)) {
      return Ec2Error("InvalidInstanceID.NotFound", "The instance ID '" + id + "' does not exist");
    }
  }
  // MaxResults 5-1000 (not with InstanceId) and NextToken: only a token this region handed out.
  AP_ASSIGN_OR_RETURN(auto max_results, p.Int("MaxResults"));
  if (max_results && !ids.empty())
    return Ec2Error("InvalidParameterCombination",
                    "The parameter instancesSet cannot be used with the parameter maxResults");
  if (max_results && (*max_results < 5 || *max_results > 1000))
    return Ec2Error("InvalidParameterValue", "Value ( " + std::to_string(*max_results) +
                                                 " ) for parameter maxResults is invalid. Expecting a value "
                                                 "greater than 5 and less than 1000.");
  uint64_t offset = 0;
  if (auto token = p.Str("NextToken"); token && !token->empty()) {
    auto decoded = DecodePageToken("ec2:DescribeInstances", *token);
    if (!decoded) return Ec2Error("InvalidParameterValue", "Invalid value '" + *token + "' for nextToken.");
    offset = *decoded;
  }
  const size_t limit = max_results ? static_cast<size_t>(*max_results) : SIZE_MAX;
  Json reservations = Json::array();
  size_t matched = 0;
  bool more = false;
  for (const auto& doc : ctx->store->List(kind::kInstance)) {
    const Json& inst = *doc;
    if (!ids.empty() && std::find(ids.begin(), ids.end(), inst["InstanceId"]) == ids.end()) continue;
    bool keep = std::all_of(filters.begin(), filters.end(), [&](const Filter& f) { return *InstanceMatches(inst, f); });
    if (!keep) continue;
    if (matched++ < offset) continue;
    if (reservations.size() == limit) {
      more = true;
      break;
    }
    Json instances(Json::value_t::array);
    instances.push_back(InstanceXml(*ctx, inst));
    reservations.push_back(JsonObject()
                               .Add("reservationId", "r-" + inst["InstanceId"].get<std::string>().substr(2))
                               .Add("ownerId", kAccountId)
                               .Add("groupSet", Json(Json::value_t::array))
                               .Add("instancesSet", std::move(instances))
                               .Take());
  }
  Json out = {{"reservationSet", reservations}};
  if (more) out["nextToken"] = EncodePageToken("ec2:DescribeInstances", offset + reservations.size());
  return out;
}

Result<Json> TerminateInstances(RegionContext* ctx, const Params& p) {
  auto ids = p.List("InstanceId");
  if (ids.empty()) return Status::MissingParameter("The request must contain the parameter InstanceId");
  std::vector<Json> found;
  for (const auto& id : ids) {
    AP_RETURN_IF_ERROR(InstanceIdShape(id));
    auto inst = ctx->store->Get(kind::kInstance, id);
    if (!inst) return Ec2Error("InvalidInstanceID.NotFound", "The instance ID '" + id + "' does not exist");
    found.push_back(*inst);
  }
  std::vector<StoreWrite> writes;
  Json changes = Json::array();
  for (const auto& inst : found) {
    std::string before = inst["State"];
    auto w = RequestTermination(*ctx, inst, "User initiated");
    writes.insert(writes.end(), w.begin(), w.end());
    std::string after = before == instance_state::kTerminated ? before : instance_state::kShuttingDown;
    changes.push_back(StateChange(inst["InstanceId"], before, after));
  }
  AP_RETURN_IF_ERROR(ctx->store->Commit(writes));
  return Json{{"instancesSet", changes}};
}

// The instances named by InstanceId.N, all of which must exist (InvalidInstanceID.NotFound names the first that
// does not).
Result<std::vector<Json>> NamedInstances(RegionContext* ctx, const Params& p) {
  auto ids = p.List("InstanceId");
  if (ids.empty()) return Status::MissingParameter("The request must contain the parameter InstanceId");
  std::vector<Json> found;
  for (const auto& id : ids) {
    AP_RETURN_IF_ERROR(InstanceIdShape(id));
    auto inst = ctx->store->Get(kind::kInstance, id);
    if (!inst) return Ec2Error("InvalidInstanceID.NotFound", "The instance ID '" + id + "' does not exist");
    found.push_back(*inst);
  }
  return found;
}

// StopInstances and StartInstances: every instance must accept the request, else nothing changes.
Result<Json> ChangeStates(RegionContext* ctx, const Params& p, bool stop) {
  AP_ASSIGN_OR_RETURN(auto found, NamedInstances(ctx, p));
  AP_ASSIGN_OR_RETURN(auto hibernate, p.Bool("Hibernate"));
  AP_ASSIGN_OR_RETURN(auto force_param, p.Bool("Force"));
  if (stop && hibernate.value_or(false)) {
    return Ec2Error("UnsupportedHibernationConfiguration",
                    "Hibernation is not supported for the instances of this region");
  }
  const bool force = force_param.value_or(false);
  const std::string reason = UserInitiatedReason(ctx->clock->NowMillis());
  std::vector<StoreWrite> writes;
  Json changes = Json::array();
  for (const auto& inst : found) {
    auto r = stop ? RequestStop(*ctx, inst, force, reason) : RequestStart(*ctx, inst);
    if (!r.ok()) return r.status();
    writes.insert(writes.end(), r->writes.begin(), r->writes.end());
    changes.push_back(StateChange(inst["InstanceId"], r->previous, r->current));
  }
  AP_RETURN_IF_ERROR(ctx->store->Commit(writes));
  return Json{{"instancesSet", changes}};
}

Result<Json> StopInstances(RegionContext* ctx, const Params& p) { return ChangeStates(ctx, p, /*stop=*/true); }
Result<Json> StartInstances(RegionContext* ctx, const Params& p) { return ChangeStates(ctx, p, /*stop=*/false); }

Result<Json> RebootInstances(RegionContext* ctx, const Params& p) {
  AP_ASSIGN_OR_RETURN(auto found, NamedInstances(ctx, p));
  std::vector<StoreWrite> writes;
  for (const auto& inst : found) {
    AP_ASSIGN_OR_RETURN(auto w, RequestReboot(*ctx, inst));
    writes.insert(writes.end(), w.begin(), w.end());
  }
  AP_RETURN_IF_ERROR(ctx->store->Commit(writes));
  return Json{{"return", true}};
}

Result<Json> DescribeAvailabilityZones(RegionContext* ctx, const Params& p) {
  auto names = p.List("ZoneName");
  for (const auto& n : names) {
    if (!ctx->catalog->IsAvailabilityZone(n)) {
      return Ec2Error("InvalidParameterValue", "The zone '" + n + "' does not exist.");
    }
  }
  Json zones = Json::array();
  for (const auto& az : ctx->catalog->availability_zones()) {
    if (!names.empty() && std::find(names.begin(), names.end(), az) == names.end()) continue;
    zones.push_back({{"zoneName", az},
                     {"zoneState", "available"},
                     {"regionName", ctx->catalog->region()},
                     {"messageSet", Json::array()},
                     {"zoneId", ctx->catalog->ZoneId(az)},
                     {"zoneType", "availability-zone"},
                     {"optInStatus", "opt-in-not-required"},
                     {"groupName", ctx->catalog->region()},
                     {"networkBorderGroup", ctx->catalog->region()}});
  }
  return Json{{"availabilityZoneInfo", zones}};
}

Result<Json> DescribeRegions(RegionContext* ctx, const Params& p) {
  auto names = p.List("RegionName");
  const auto& known = Catalog::KnownRegions();
  for (const auto& n : names) {
    if (std::find(known.begin(), known.end(), n) == known.end()) {
      return Ec2Error("InvalidParameterValue", "Invalid region: " + n);
    }
  }
  Json regions = Json::array();
  for (const auto& r : known) {
    if (!names.empty() && std::find(names.begin(), names.end(), r) == names.end()) continue;
    regions.push_back({{"regionName", r}, {"regionEndpoint", "ec2." + r + ".amazonaws.com"},
                       {"optInStatus", "opt-in-not-required"}});
  }
  return Json{{"regionInfo", regions}};
}

}  // namespace

bool WildcardMatch(const std::string& pattern, const std::string& value) {
  size_t p = 0, v = 0, star = std::string::npos, mark = 0;
  while (v < value.size()) {
    if (p < pattern.size() && (pattern[p] == '?' || pattern[p] == value[v])) {
      ++p;
      ++v;
    } else if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      mark = v;
    } else if (star != std::string::npos) {
      p = star + 1;
      v = ++mark;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

ApiService Ec2Api(RegionContext* ctx) {
  auto op = [ctx](const char* name, Access access, Result<Json> (*fn)(RegionContext*, const Params&),
                  std::vector<ListLimit> limits = {}) {
    return Operation{name, access, [ctx, fn](const Params& p) { return fn(ctx, p); }, std::move(limits)};
  };
  // Per-call list limits, checked before any lock (EC2 lists are Name.N).
  const ListLimit kFilters{"Filter", 50};
  ApiService api;
  api.info = {"ec2", "2016-11-15", "http://ec2.amazonaws.com/doc/2016-11-15/", WireProtocol::kEc2};
  api.operations = {
      op("DescribeImages", Access::kRead, DescribeImages, {{"ImageId", 1000}, kFilters}),
      op("DescribeInstances", Access::kRead, DescribeInstances, {{"InstanceId", 1000}, kFilters}),
      op("TerminateInstances", Access::kWrite, TerminateInstances, {{"InstanceId", 1000}}),
      op("StopInstances", Access::kWrite, StopInstances, {{"InstanceId", 1000}}),
      op("StartInstances", Access::kWrite, StartInstances, {{"InstanceId", 1000}}),
      op("RebootInstances", Access::kWrite, RebootInstances, {{"InstanceId", 1000}}),
      op("DescribeAvailabilityZones", Access::kRead, DescribeAvailabilityZones, {{"ZoneName", 100}, kFilters}),
      op("DescribeRegions", Access::kRead, DescribeRegions, {{"RegionName", 100}, kFilters}),
  };
  for (auto& vpc_op : ec2::VpcOperations(ctx)) api.operations.push_back(std::move(vpc_op));
  api.write_lock = ctx->mu;
  api.after_write = [ctx] {
    if (ctx->wake) ctx->wake();
  };
  return api;
}

}  // namespace autopipe

#include "autoscaling/autoscaling_service.h"

#include <algorithm>
#include <iterator>
#include <map>
#include <set>

#include "api/page_token.h"
#include "autoscaling/groups.h"
#include "autoscaling/policies.h"
#include "common/ids.h"
#include "ec2/vpc.h"
#include "common/time_util.h"
#include "ec2/instances.h"
#include "elb/load_balancers.h"

namespace autopipe {
namespace {

// ---- validation helpers -------------------------------------------------------------------------------------

// The largest size, cooldown or grace period this region accepts (AWS's own quotas are lower still).
constexpr int64_t kMaxCountValue = 100000;

Status ConstraintError(const std::string& field, const std::string& value, const std::string& constraint) {
  return Status::Validation("1 validation error detected: Value '" + value + "' at '" + field +
                            "' failed to satisfy constraint: " + constraint);
}

// Field names in validation messages are lower-camel, as AWS prints them.
std::string LowerCamel(std::string s) {
  if (!s.empty()) s[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(s[0])));
  return s;
}

Result<std::string> RequiredName(const Params& p, const std::string& name, size_t max_len = 255) {
  auto v = p.Str(name);
  if (!v) {
    return Status::Validation("1 validation error detected: Value null at '" + LowerCamel(name) +
                              "' failed to satisfy constraint: Member must not be null");
  }
  if (v->empty() || v->size() > max_len) {
    return ConstraintError(LowerCamel(name), *v,
                           "Member must have length less than or equal to " + std::to_string(max_len) +
                               " and greater than or equal to 1");
  }
  return *v;
}

Result<std::optional<int>> NonNegativeInt(const Params& p, const std::string& name) {
  AP_ASSIGN_OR_RETURN(auto v, p.Int(name));
  if (!v) return std::optional<int>();
  if (*v < 0) {
    return ConstraintError(LowerCamel(name), std::to_string(*v), "Member must have value greater than or equal to 0");
  }
  if (*v > kMaxCountValue) {
    return ConstraintError(LowerCamel(name), std::to_string(*v),
                           "Member must have value less than or equal to " + std::to_string(kMaxCountValue));
  }
  return std::optional<int>(static_cast<int>(*v));
}

Status GroupNotFound(const std::string& name) {
  return Status::Validation("AutoScalingGroup name not found - AutoScalingGroup " + name + " not found");
}

Status LaunchConfigurationNotFound(const std::string& name) {
  return Status::Validation("Launch configuration name not found - Launch configuration " + name + " not found");
}

Status CheckSizes(int min, int max, int desired) {
  if (min > max) {
    return Status::Validation("Max bound, " + std::to_string(max) + ", must be greater than or equal to min bound, " +
                              std::to_string(min));
  }
  if (desired < min || desired > max) {
    return Status::Validation("Desired capacity:" + std::to_string(desired) +
                              " must be between the specified min size:" + std::to_string(min) +
                              " and max size:" + std::to_string(max));
  }
  return Status::Ok();
}

// ---- load balancers ------------------------------------------------------------------------------------------

constexpr size_t kMaxLoadBalancersPerGroup = 50;  // AWS's quota of Classic Load Balancers per group
constexpr size_t kMaxTagsPerGroup = 50;           // AWS: tags per group, and per CreateOrUpdateTags call

// LoadBalancerNames as given, duplicates dropped.
Result<std::vector<std::string>> ReadLoadBalancerNames(const Params& p) {
  std::vector<std::string> names;
  const auto given = p.List("LoadBalancerNames");
  for (size_t i = 0; i < given.size(); ++i) {
    const std::string& name = given[i];
    if (name.empty() || name.size() > 255) {
      return ConstraintError("loadBalancerNames.member." + std::to_string(i + 1), name,
                             "Member must have length less than or equal to 255 and greater than or equal to 1");
    }
    if (std::find(names.begin(), names.end(), name) == names.end()) names.push_back(name);
  }
  return names;
}

Status CheckLoadBalancerCount(size_t n) {
  if (n <= kMaxLoadBalancersPerGroup) return Status::Ok();
  return Status::Validation("An Auto Scaling group can have at most " + std::to_string(kMaxLoadBalancersPerGroup) +
                            " Classic Load Balancers; " + std::to_string(n) + " were requested.");
}

// With RegionContext::mu held.
Status CheckLoadBalancersExist(const RegionContext& ctx, const std::vector<std::string>& names) {
  for (const auto& name : names) {
    if (!elb::FindLoadBalancer(ctx, name)) {
      return Status::Validation("Provided Load Balancers may not be valid. Please ensure they exist and try again.");
    }
  }
  return Status::Ok();
}

bool Contains(const Json& list, const std::string& value) {
  return std::find(list.begin(), list.end(), value) != list.end();
}

bool IsBase64(const std::string& s) {
  if (s.size() % 4 != 0) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    bool ok = std::isalnum(static_cast<unsigned char>(c)) || c == '+' || c == '/' ||
              (c == '=' && i >= s.size() - 2);
    if (!ok) return false;
  }
  return true;
}

// ---- pagination ---------------------------------------------------------------------------------------------

struct Page {
  std::string scope;  // the listed field: a token names the list it pages through
  size_t offset = 0;
  size_t limit = 0;
};

// Each attached Classic Load Balancer is also a traffic source of type "elb" (as AWS shows since traffic sources
// came in 2023).
Json TrafficSources(const Json& load_balancer_names) {
  Json out = Json::array();
  for (const auto& name : load_balancer_names) out.push_back(Json{{"Identifier", name}, {"Type", "elb"}});
  return out;
}

// MaxRecords in [1, max_limit] (AWS's constraint texts) and NextToken: only a token this region handed out for
// the same list is accepted, anything else is InvalidNextToken.
Result<Page> ReadPage(const Params& p, const char* scope, size_t default_limit, size_t max_limit) {
  Page page{scope, 0, default_limit};
  AP_ASSIGN_OR_RETURN(auto max_records, p.Int("MaxRecords"));
  if (max_records) {
    if (*max_records < 1) {
      return ConstraintError("maxRecords", std::to_string(*max_records),
                             "Member must have value greater than or equal to 1");
    }
    if (static_cast<size_t>(*max_records) > max_limit) {
      return ConstraintError("maxRecords", std::to_string(*max_records),
                             "Member must have value less than or equal to " + std::to_string(max_limit));
    }
    page.limit = static_cast<size_t>(*max_records);
  }
  if (auto token = p.Str("NextToken")) {
    std::optional<uint64_t> offset = DecodePageToken(page.scope, *token);
    if (!offset) return Status(400, "InvalidNextToken", "The token '" + *token + "' is invalid.");
    page.offset = static_cast<size_t>(*offset);
  }
  return page;
}

// Cuts `all` to the page and adds NextToken when more remain.
void Paginate(Json& result, const char* list_name, Json all, const Page& page) {
  Json out = Json::array();
  for (size_t i = page.offset; i < all.size() && out.size() < page.limit; ++i) out.push_back(std::move(all[i]));
  result[list_name] = std::move(out);
  if (page.offset + page.limit < all.size()) result["NextToken"] = EncodePageToken(page.scope, page.offset + page.limit);
}

// ---- rendering ------------------------------------------------------------------------------------------------

Json TagXml(const std::string& group, const Json& t) {
  return {{"ResourceId", group}, {"ResourceType", "auto-scaling-group"}, {"Key", t["Key"]}, {"Value", t["Value"]},
          {"PropagateAtLaunch", t["PropagateAtLaunch"]}};
}

Json GroupXml(const Json& g) {
  static const char* const kMemberFields[] = {"InstanceType",          "AvailabilityZone", "LifecycleState",
                                              "HealthStatus",          "LaunchConfigurationName",
                                              "ProtectedFromScaleIn"};
  Json instances(Json::value_t::array);
  const Json& members = g["Instances"];
  instances.get_ref<Json::array_t&>().reserve(members.size());
  for (auto it = members.begin(); it != members.end(); ++it) {
    JsonObject out(1 + std::size(kMemberFields));
    out.Add("InstanceId", it.key());
    for (const char* f : kMemberFields) out.Add(f, (*it)[f]);
    instances.push_back(out.Take());
  }
  Json tags = Json::array();
  for (const auto& t : g["Tags"]) tags.push_back(TagXml(g["AutoScalingGroupName"], t));
  // Field by field: an initializer list would copy the 100 members twice.
  JsonObject out(24);
  out.Add("AutoScalingGroupName", g["AutoScalingGroupName"])
      .Add("AutoScalingGroupARN", g["AutoScalingGroupARN"])
      .Add("LaunchConfigurationName", g["LaunchConfigurationName"])
      .Add("MinSize", g["MinSize"])
      .Add("MaxSize", g["MaxSize"])
      .Add("DesiredCapacity", g["DesiredCapacity"])
      .Add("DefaultCooldown", g["DefaultCooldown"])
      .Add("AvailabilityZones", g["AvailabilityZones"])
      .Add("LoadBalancerNames", g["LoadBalancerNames"])
      .Add("TargetGroupARNs", Json::array())
      .Add("HealthCheckType", g["HealthCheckType"])
      .Add("HealthCheckGracePeriod", g["HealthCheckGracePeriod"])
      .Add("Instances", std::move(instances))
      .Add("CreatedTime", IsoTimeMillis(g["CreatedTime"].get<int64_t>()))
      .Add("SuspendedProcesses", g["SuspendedProcesses"])
      .Add("VPCZoneIdentifier", g.value("VPCZoneIdentifier", ""))
      .Add("EnabledMetrics", Json::array())
      .Add("Status", g["Deleting"].get<bool>() ? Json("Delete in progress") : Json())
      .Add("Tags", std::move(tags))
      .Add("TerminationPolicies", g["TerminationPolicies"])
      .Add("NewInstancesProtectedFromScaleIn", g["NewInstancesProtectedFromScaleIn"])
      .Add("ServiceLinkedRoleARN", "arn:aws:iam::" + std::string(kAccountId) +
                                       ":role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling")
      .Add("CapacityRebalance", false)
      .Add("TrafficSources", TrafficSources(g["LoadBalancerNames"]));
  return out.Take();
}

Json ActivityXml(const Json& a) {
  return {{"ActivityId", a["ActivityId"]},
          {"AutoScalingGroupName", a["AutoScalingGroupName"]},
          {"Description", a["Description"]},
          {"Cause", a["Cause"]},
          {"StartTime", IsoTimeMillis(a["StartTime"].get<int64_t>())},
          {"EndTime", a["EndTime"].is_null() ? Json() : Json(IsoTimeMillis(a["EndTime"].get<int64_t>()))},
          {"StatusCode", a["StatusCode"]},
          {"StatusMessage", a["StatusMessage"].get<std::string>().empty() ? Json() : a["StatusMessage"]},
          {"Progress", a["Progress"]},
          {"Details", a["Details"]},
          {"AutoScalingGroupARN", a["AutoScalingGroupARN"]}};
}

Json LaunchConfigurationXml(const Json& lc) {
  return {{"LaunchConfigurationName", lc["LaunchConfigurationName"]},
          {"LaunchConfigurationARN", lc["LaunchConfigurationARN"]},
          {"ImageId", lc["ImageId"]},
          {"KeyName", lc["KeyName"]},
          {"SecurityGroups", lc["SecurityGroups"]},
          {"ClassicLinkVPCSecurityGroups", Json::array()},
          {"UserData", lc["UserData"]},
          {"InstanceType", lc["InstanceType"]},
          {"KernelId", ""},
          {"RamdiskId", ""},
          {"BlockDeviceMappings", Json::array()},
          {"InstanceMonitoring", {{"Enabled", lc["InstanceMonitoring"]}}},
          {"CreatedTime", IsoTimeMillis(lc["CreatedTime"].get<int64_t>())},
          {"EbsOptimized", false}};
}

// ---- the service ----------------------------------------------------------------------------------------------

ServiceInfo AutoScalingInfo() {
  return {"autoscaling", "2011-01-01", "http://autoscaling.amazonaws.com/doc/2011-01-01/", WireProtocol::kQuery};
}

class AutoScalingService {
 public:
  explicit AutoScalingService(RegionContext* ctx) : ctx_(ctx), info_(AutoScalingInfo()) {}

  Result<Json> CreateLaunchConfiguration(const Params& p);
  Result<Json> DescribeLaunchConfigurations(const Params& p);
  Result<Json> DeleteLaunchConfiguration(const Params& p);
  Result<Json> CreateAutoScalingGroup(const Params& p);
  Result<Json> UpdateAutoScalingGroup(const Params& p);
  Result<Json> DeleteAutoScalingGroup(const Params& p);
  Result<Json> DescribeAutoScalingGroups(const Params& p);
  Result<Json> DescribeAutoScalingInstances(const Params& p);
  Result<Json> SetDesiredCapacity(const Params& p);
  Result<Json> SetInstanceHealth(const Params& p);
  Result<Json> TerminateInstanceInAutoScalingGroup(const Params& p);
  Result<Json> DescribeScalingActivities(const Params& p);
  Result<Json> SuspendProcesses(const Params& p) { return SetProcesses(p, true); }
  Result<Json> ResumeProcesses(const Params& p) { return SetProcesses(p, false); }
  Result<Json> CreateOrUpdateTags(const Params& p);
  Result<Json> DeleteTags(const Params& p);
  Result<Json> DescribeTags(const Params& p);
  Result<Json> DescribeScalingProcessTypes(const Params& p);
  Result<Json> AttachLoadBalancers(const Params& p);
  Result<Json> DetachLoadBalancers(const Params& p);
  Result<Json> DescribeLoadBalancers(const Params& p);

 private:
  Result<Json> SetProcesses(const Params& p, bool suspend);
  Result<Json> LoadGroup(const std::string& name, bool allow_deleting = false);
  Result<Json> ReadTags(const Params& p, const std::string& default_group);
  Status Save(std::vector<StoreWrite> writes) {
    return ctx_->store->Commit(writes);
  }

  // A group as DescribeAutoScalingGroups lists it, rendered once per stored document.
  Json GroupPart(const Doc& group) {
    return PartValue(*group_parts_.Get(group, [this](const Json& g) { return RenderPart(info_, GroupXml(g)); }));
  }

  RegionContext* ctx_;
  const ServiceInfo info_;
  // DescribeAutoScalingGroups over 1,000 instances renders 350 KB; a group document changes far less often than
  // it is described, so each group's rendering is kept until its document changes.
  RenderedPartCache group_parts_;
};

Result<Json> AutoScalingService::LoadGroup(const std::string& name, bool allow_deleting) {
  auto g = ctx_->store->Get(kind::kAutoScalingGroup, name);
  if (!g) return GroupNotFound(name);
  if (!allow_deleting && (*g)["Deleting"].get<bool>()) {
    return Status(400, "ScalingActivityInProgress", "AutoScalingGroup " + name + " is pending delete.");
  }
  return *g;
}

Result<Json> AutoScalingService::CreateLaunchConfiguration(const Params& p) {
  AP_ASSIGN_OR_RETURN(auto name, RequiredName(p, "LaunchConfigurationName"));
  if (p.Has("InstanceId")) {
    return Status::Validation("Creating a launch configuration from an instance is not supported; give ImageId "
                              "and InstanceType");
  }
  auto image_id = p.Str("ImageId");
  if (!image_id) return Status::Validation("ImageId must be specified when creating a launch configuration");
  auto type = p.Str("InstanceType");
  if (!type) return Status::Validation("InstanceType must be specified when creating a launch configuration");
  if (!ctx_->catalog->FindImage(*image_id)) {
    return Status::Validation("The image id '[" + *image_id + "]' does not exist");
  }
  if (!ctx_->catalog->FindInstanceType(*type)) return Status::Validation("Invalid instance type: " + *type);
  std::string user_data = p.Str("UserData").value_or("");
  if (user_data.size() > 21847) {
    return ConstraintError("userData", "...", "Member must have length less than or equal to 21847");
  }
  if (!IsBase64(user_data)) return Status::Validation("Invalid BASE64 encoding of user data.");
  AP_ASSIGN_OR_RETURN(auto monitoring, p.Bool("InstanceMonitoring.Enabled"));

  if (ctx_->store->Get(kind::kLaunchConfiguration, name)) {
    return Status(400, "AlreadyExists", "Launch Configuration by this name already exists - A launch configuration "
                                        "already exists with the name " + name);
  }
  Json lc = {{"LaunchConfigurationName", name},
             {"LaunchConfigurationARN", ctx_->Arn("autoscaling", "launchConfiguration:" + NewUuid() +
                                                                     ":launchConfigurationName/" + name)},
             {"ImageId", *image_id},
             {"InstanceType", *type},
             {"KeyName", p.Str("KeyName").value_or("")},
             {"SecurityGroups", p.List("SecurityGroups")},
             {"UserData", user_data},
             {"InstanceMonitoring", monitoring.value_or(true)},
             {"CreatedTime", ctx_->clock->NowMillis()}};
  AP_RETURN_IF_ERROR(Save({{kind::kLaunchConfiguration, name, lc}}));
  return Json();
}

Result<Json> AutoScalingService::DescribeLaunchConfigurations(const Params& p) {
  AP_ASSIGN_OR_RETURN(auto page, ReadPage(p, "LaunchConfigurations", 50, 100));
  auto names = p.List("LaunchConfigurationNames");
  Json all = Json::array();
  for (const auto& doc : ctx_->store->List(kind::kLaunchConfiguration)) {
    const Json& lc = *doc;
    if (!names.empty() && std::find(names.begin(), names.end(), lc["LaunchConfigurationName"]) == names.end()) continue;
    all.push_back(LaunchConfigurationXml(lc));
  }
  Json result = Json::object();
  Paginate(result, "LaunchConfigurations", std::move(all), page);
  return result;
}

Result<Json> AutoScalingService::DeleteLaunchConfiguration(const Params& p) {
  AP_ASSIGN_OR_RETURN(auto name, RequiredName(p, "LaunchConfigurationName"));
  if (!ctx_->store->Get(kind::kLaunchConfiguration, name)) return LaunchConfigurationNotFound(name);
  for (const auto& doc : ctx_->store->List(kind::kAutoScalingGroup)) {
    const Json& g = *doc;
    if (g["LaunchConfigurationName"] == name) {
      return Status(400, "ResourceInUse", "Cannot delete launch configuration " + name +
                                              " because it is attached to AutoScalingGroup " +
                                              g["AutoScalingGroupName"].get<std::string>());
    }
  }
  AP_RETURN_IF_ERROR(Save({{kind::kLaunchConfiguration, name, std::nullopt}}));
  return Json();
}

Result<Json> AutoScalingService::ReadTags(const Params& p, const std::string& default_group) {
  Json tags = Json::array();
  for (const auto& t : p.StructList("Tags")) {
    auto key = t.find("Key");
    if (key == t.end() || key->second.empty() || key->second.size() > 128) {
      return Status::Validation("1 validation error detected: Value at 'tags.member.key' failed to satisfy "
                                "constraint: Member must have length between 1 and 128");
    }
    if (key->second.rfind("aws:", 0) == 0) {
      return Status::Validation("Tag keys starting with 'aws:' are reserved for internal use");
    }
    auto rid = t.find("ResourceId");
    std::string group = rid != t.end() ? rid->second : default_group;
    if (group.empty()) return Status::Validation("ResourceId must be specified for each tag");
    auto rtype = t.find("ResourceType");
    if (rtype != t.end() && rtype->second != "auto-scaling-group") {
      return Status::Validation("Invalid resource type: " + rtype->second);
    }
    auto value = t.find("Value");
    if (value != t.end() && value->second.size() > 256) {
      return Status::Validation("Tag value exceeds the maximum length of 256 characters");
    }
    auto prop = t.find("PropagateAtLaunch");
    bool propagate = prop != t.end() && (prop->second == "true" || prop->second == "True");
    tags.push_back({{"ResourceId", group},
                    {"Key", key->second},
                    {"Value", value != t.end() ? value->second : ""},
                    {"PropagateAtLaunch", propagate}});
  }
  return tags;
}

// Merges tags into a group (replacing same keys), keys in order. Fails past kMaxTagsPerGroup tags. O((t + g) log)
// for t tags given and g the group has.
Status MergeTags(Json& group, const Json& tags) {
  std::map<std::string, Json> by_key;
  for (const auto& existing : group["Tags"]) by_key[existing["Key"].get<std::string>()] = existing;
  for (const auto& t : tags) {
    if (t["ResourceId"] != group["AutoScalingGroupName"]) continue;
    by_key[t["Key"].get<std::string>()] = {{"Key", t["Key"]}, {"Value", t["Value"]},
                                           {"PropagateAtLaunch", t["PropagateAtLaunch"]}};
  }
  if (by_key.size() > kMaxTagsPerGroup) {
    return Status(400, "LimitExceeded", "The quota of 50 tags per Auto Scaling group has been exceeded");
  }
  Json merged = Json::array();
  for (auto& [key, t] : by_key) merged.push_back(std::move(t));
  group["Tags"] = std::move(merged);
  return Status::Ok();
}

// VPCZoneIdentifier: a comma-separated list of the region's default subnets (ec2/vpc.h), each standing for its
// zone. Returns the subnets (as given, without duplicates) and their zones, in order. When AvailabilityZones is
// given too, every subnet must be in one of them (as AWS requires).
struct SubnetZones {
  std::string identifier;  // the subnets joined by commas, as DescribeAutoScalingGroups shows them
  std::vector<std::string> zones;
};

static Result<std::optional<SubnetZones>> ReadVpcZoneIdentifier(const Catalog& catalog, const Params& p,
                                                                 const std::vector<std::string>& zones_given) {
  auto given = p.Str("VPCZoneIdentifier");
  if (!given || given->empty()) return std::optional<SubnetZones>();
  if (given->size() > 5000) return Status::Validation("VPCZoneIdentifier is longer than 5000 characters.");
  SubnetZones out;
  std::vector<std::string> seen;
  size_t start = 0;
  while (start <= given->size()) {
    size_t comma = given->find(',', start);
    std::string subnet = given->substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    while (!subnet.empty() && subnet.front() == ' ') subnet.erase(subnet.begin());
    while (!subnet.empty() && subnet.back() == ' ') subnet.pop_back();
    auto zone = ec2::SubnetZone(catalog, subnet);
    if (!zone) return Status::Validation("The subnet ID '" + subnet + "' does not exist");
    if (!zones_given.empty() &&
        std::find(zones_given.begin(), zones_given.end(), *zone) == zones_given.end())
      return Status::Validation("The subnet '" + subnet + "' is in " + *zone +
                                ", which is not one of the group's AvailabilityZones.");
    if (std::find(seen.begin(), seen.end(), subnet) == seen.end()) {
      seen.push_back(subnet);
      if (std::find(out.zones.begin(), out.zones.end(), *zone) == out.zones.end()) out.zones.push_back(*zone);
    }
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  for (const auto& sn : seen) out.identifier += (out.identifier.empty() ? "" : ",") + sn;
  return std::optional<SubnetZones>(out);
}

Result<Json> AutoScalingService::CreateAutoScalingGroup(const Params& p) {
  AP_ASSIGN_OR_RETURN(auto name, RequiredName(p, "AutoScalingGroupName"));
  if (p.Has("LaunchTemplate.LaunchTemplateId") || p.Has("LaunchTemplate.LaunchTemplateName") ||
      p.Has("MixedInstancesPolicy.LaunchTemplate.LaunchTemplateSpecification.LaunchTemplateId") || p.Has("InstanceId")) {
    return Status::Validation("Only launch configurations are supported by this region so far; give "
                              "LaunchConfigurationName");
  }
  auto lc_name = p.Str("LaunchConfigurationName");
  if (!lc_name) {
    return Status::Validation("Valid requests must contain either LaunchTemplate, LaunchConfigurationName, "
                              "InstanceId or MixedInstancesPolicy parameter.");
  }
  AP_ASSIGN_OR_RETURN(auto min, NonNegativeInt(p, "MinSize"));
  AP_ASSIGN_OR_RETURN(auto max, NonNegativeInt(p, "MaxSize"));
  if (!min) return RequiredName(p, "MinSize").status();
  if (!max) return RequiredName(p, "MaxSize").status();
  AP_ASSIGN_OR_RETURN(auto desired, NonNegativeInt(p, "DesiredCapacity"));
  int want = desired.value_or(*min);
  AP_RETURN_IF_ERROR(CheckSizes(*min, *max, want));
  AP_ASSIGN_OR_RETURN(auto cooldown, NonNegativeInt(p, "DefaultCooldown"));
  AP_ASSIGN_OR_RETURN(auto grace, NonNegativeInt(p, "HealthCheckGracePeriod"));
  std::string health_type = p.Str("HealthCheckType").value_or("EC2");
  if (health_type != "EC2" && health_type != "ELB") {
    return Status::Validation("Invalid health check type: " + health_type + ". Valid values are EC2 and ELB.");
  }
  AP_ASSIGN_OR_RETURN(auto protect, p.Bool("NewInstancesProtectedFromScaleIn"));

  auto zones = p.List("AvailabilityZones");
  AP_ASSIGN_OR_RETURN(auto subnets, ReadVpcZoneIdentifier(*ctx_->catalog, p, zones));
  if (subnets) zones = subnets->zones;
  if (zones.empty()) return Status::Validation("At least one Availability Zone or VPC Subnet is required.");
  std::vector<std::string> unique_zones;
  for (const auto& z : zones) {
    if (!ctx_->catalog->IsAvailabilityZone(z)) {
      return Status::Validation("The availability zone " + z + " is not legally formatted or is not in the region " +
                                ctx_->catalog->region());
    }
    if (std::find(unique_zones.begin(), unique_zones.end(), z) == unique_zones.end()) unique_zones.push_back(z);
  }
  AP_ASSIGN_OR_RETURN(auto lbs, ReadLoadBalancerNames(p));
  AP_RETURN_IF_ERROR(CheckLoadBalancerCount(lbs.size()));
  auto tg = p.List("TargetGroupARNs");
  if (!tg.empty()) return Status::Validation("Provided Target Groups may not be valid.");
  std::vector<std::string> policies = p.List("TerminationPolicies");
  const std::set<std::string> kPolicies = {"Default", "OldestInstance", "NewestInstance", "OldestLaunchConfiguration",
                                           "OldestLaunchTemplate", "ClosestToNextInstanceHour", "AllocationStrategy"};
  for (const auto& pol : policies) {
    if (!kPolicies.count(pol)) return Status::Validation("Unsupported termination policy: " + pol);
  }
  if (policies.empty()) policies = {"Default"};
  AP_ASSIGN_OR_RETURN(auto tags, ReadTags(p, name));

  if (ctx_->store->Get(kind::kAutoScalingGroup, name)) {
    return Status(400, "AlreadyExists",
                  "AutoScalingGroup by this name already exists - A group with the name " + name + " already exists");
  }
  if (!ctx_->store->Get(kind::kLaunchConfiguration, *lc_name)) return LaunchConfigurationNotFound(*lc_name);
  AP_RETURN_IF_ERROR(CheckLoadBalancersExist(*ctx_, lbs));
  Json lb_states = Json::object();
  for (const auto& lb : lbs) lb_states[lb] = lb_attachment::kAdding;
  const int64_t now = ctx_->clock->NowMillis();
  Json group = {
      {"AutoScalingGroupName", name},
      {"AutoScalingGroupARN",
       ctx_->Arn("autoscaling", "autoScalingGroup:" + NewUuid() + ":autoScalingGroupName/" + name)},
      {"LaunchConfigurationName", *lc_name},
      {"MinSize", *min},
      {"MaxSize", *max},
      {"DesiredCapacity", want},
      {"DefaultCooldown", cooldown.value_or(300)},
      {"AvailabilityZones", unique_zones},
      {"VPCZoneIdentifier", subnets ? subnets->identifier : ""},
      {"LoadBalancerNames", lbs},
      {"LoadBalancerStates", lb_states},
      {"HealthCheckType", health_type},
      {"HealthCheckGracePeriod", grace.value_or(0)},
      {"CreatedTime", now},
      {"SuspendedProcesses", Json::array()},
      {"TerminationPolicies", policies},
      {"NewInstancesProtectedFromScaleIn", protect.value_or(false)},
      {"Tags", Json::array()},
      {"Instances", Json::object()},
      {"Deleting", false},
      {"CapacityCause", CauseAt(now) + "a user request created an AutoScalingGroup changing the desired capacity "
                                       "from 0 to " + std::to_string(want) + "."},
      {"LaunchFailures", 0},
      {"LaunchBackoffUntil", 0},
  };
  AP_RETURN_IF_ERROR(MergeTags(group, tags));
  AP_RETURN_IF_ERROR(Save({{kind::kAutoScalingGroup, name, group}}));
  return Json();
}

Result<Json> AutoScalingService::UpdateAutoScalingGroup(const Params& p) {
  AP_ASSIGN_OR_RETURN(auto name, RequiredName(p, "AutoScalingGroupName"));
  AP_ASSIGN_OR_RETURN(auto min, NonNegativeInt(p, "MinSize"));
  AP_ASSIGN_OR_RETURN(auto max, NonNegativeInt(p, "MaxSize"));
  AP_ASSIGN_OR_RETURN(auto desired, NonNegativeInt(p, "DesiredCapacity"));
  AP_ASSIGN_OR_RETURN(auto cooldown, NonNegativeInt(p, "DefaultCooldown"));
  AP_ASSIGN_OR_RETURN(auto grace, NonNegativeInt(p, "HealthCheckGracePeriod"));
  AP_ASSIGN_OR_RETURN(auto protect, p.Bool("NewInstancesProtectedFromScaleIn"));
  auto health_type = p.Str("HealthCheckType");
  if (health_type && *health_type != "EC2" && *health_type != "ELB") {
    return Status::Validation("Invalid health check type: " + *health_type + ". Valid values are EC2 and ELB.");
  }
  auto zones = p.List("AvailabilityZones");
  for (const auto& z : zones) {
    if (!ctx_->catalog->IsAvailabilityZone(z)) {
      return Status::Validation("The availability zone " + z + " is not legally formatted or is not in the region " +
                                ctx_->catalog->region());
    }
  }
  AP_ASSIGN_OR_RETURN(auto subnets, ReadVpcZoneIdentifier(*ctx_->catalog, p, zones));
  if (subnets) zones = subnets->zones;

  AP_ASSIGN_OR_RETURN(auto found, LoadGroup(name));
  Json g = found;
  if (auto lc = p.Str("LaunchConfigurationName")) {
    if (!ctx_->store->Get(kind::kLaunchConfiguration, *lc)) return LaunchConfigurationNotFound(*lc);
    g["LaunchConfigurationName"] = *lc;
  }
  const int old_desired = g["DesiredCapacity"];
  int new_min = min.value_or(g["MinSize"].get<int>());
  int new_max = max.value_or(g["MaxSize"].get<int>());
  int new_desired = desired.value_or(std::clamp(old_desired, std::min(new_min, new_max), new_max));
  AP_RETURN_IF_ERROR(CheckSizes(new_min, new_max, new_desired));
  g["MinSize"] = new_min;
  g["MaxSize"] = new_max;
  g["DesiredCapacity"] = new_desired;
  if (cooldown) g["DefaultCooldown"] = *cooldown;
  if (grace) g["HealthCheckGracePeriod"] = *grace;
  if (protect) g["NewInstancesProtectedFromScaleIn"] = *protect;
  if (health_type) g["HealthCheckType"] = *health_type;
  if (!zones.empty()) {
    std::vector<std::string> unique;
    for (const auto& z : zones)
      if (std::find(unique.begin(), unique.end(), z) == unique.end()) unique.push_back(z);
    g["AvailabilityZones"] = unique;
    g["VPCZoneIdentifier"] = subnets ? subnets->identifier : "";
  }
  auto policies = p.List("TerminationPolicies");
  if (!policies.empty()) g["TerminationPolicies"] = policies;
  if (new_desired != old_desired) {
    g["CapacityCause"] = CauseAt(ctx_->clock->NowMillis()) + "a user request update of AutoScalingGroup constraints " +
                         "to min: " + std::to_string(new_min) + ", max: " + std::to_string(new_max) +
                         ", desired: " + std::to_string(new_desired) + " changing the desired capacity from " +
                         std::to_string(old_desired) + " to " + std::to_string(new_desired) + ".";
  }
  AP_RETURN_IF_ERROR(Save({{kind::kAutoScalingGroup, name, g}}));
  return Json();
}

Result<Json> AutoScalingService::DeleteAutoScalingGroup(const Params& p) {
  AP_ASSIGN_OR_RETURN(auto name, RequiredName(p, "AutoScalingGroupName"));
  AP_ASSIGN_OR_RETURN(auto force, p.Bool("ForceDelete"));
  AP_ASSIGN_OR_RETURN(auto found, LoadGroup(name, /*allow_deleting=*/true));
  Json g = found;
  if (g["Instances"].empty()) {
    AP_RETURN_IF_ERROR(Save({{kind::kAutoScalingGroup, name, std::nullopt}}));
    return Json();
  }
  if (!force.value_or(false)) {
    for (const auto& [id, m] : g["Instances"].items()) {
      if (m["LifecycleState"] != lifecycle::kTerminating) {
        return Status(400, "ResourceInUse", "You cannot delete an AutoScalingGroup while there are instances or "
                                            "pending Spot instance request(s) still in the group.");
      }
    }
    return Status(400, "ScalingActivityInProgress",
                  "You cannot delete an AutoScalingGroup while there are scaling activities in progress for that "
                  "group.");
  }
  g["Deleting"] = true;
  g["MinSize"] = 0;
  g["DesiredCapacity"] = 0;
  g["CapacityCause"] = CauseAt(ctx_->clock->NowMillis()) + "a user request deleted the AutoScalingGroup.";
  AP_RETURN_IF_ERROR(Save({{kind::kAutoScalingGroup, name, g}}));
  return Json();
}

Result<Json> AutoScalingService::DescribeAutoScalingGroups(const Params& p) {
  AP_ASSIGN_OR_RETURN(auto page, ReadPage(p, "AutoScalingGroups", 50, 100));
  auto names = p.List("AutoScalingGroupNames");
  struct TagFilter {
    std::string name;
    std::vector<std::string> values;
  };
  std::vector<TagFilter> filters;
  for (const auto& f : p.StructList("Filters")) {
    TagFilter tf;
    tf.name = f.count("Name") ? f.at("Name") : "";
    for (const auto& [k, v] : f)
      if (k.rfind("Values.", 0) == 0) tf.values.push_back(v);
    if (tf.name != "tag-key" && tf.name != "tag-value" && tf.name.rfind("tag:", 0) != 0) {
      return Status::Validation("Filter name '" + tf.name + "' is not valid; use tag-key, tag-value or tag:<key>");
    }
    filters.push_back(std::move(tf));
  }
  auto matches = [&](const Json& g) {
    for (const auto& f : filters) {
      bool any = false;
      for (const auto& t : g["Tags"]) {
        for (const auto& v : f.values) {
          if (f.name == "tag-key") any |= t["Key"] == v;
          else if (f.name == "tag-value") any |= t["Value"] == v;
          else any |= t["Key"] == f.name.substr(4) && t["Value"] == v;
        }
      }
      if (!any) return false;
    }
    return true;
  };
  Json all = Json::array();
  for (const auto& doc : ctx_->store->List(kind::kAutoScalingGroup)) {
    const Json& g = *doc;
    if (!names.empty() && std::find(names.begin(), names.end(), g["AutoScalingGroupName"]) == names.end()) continue;
    if (!matches(g)) continue;
    all.push_back(GroupPart(doc));
  }
  Json result = Json::object();
  Paginate(result, "AutoScalingGroups", std::move(all), page);
  return result;
}

Result<Json> AutoScalingService::DescribeAutoScalingInstances(const Params& p) {
  AP_ASSIGN_OR_RETURN(auto page, ReadPage(p, "AutoScalingInstances", 50, 50));
  auto ids = p.List("InstanceIds");
  Json all = Json::array();
  for (const auto& doc : ctx_->store->List(kind::kAutoScalingGroup)) {
    const Json& g = *doc;
    for (const auto& [id, m] : g["Instances"].items()) {
      if (!ids.empty() && std::find(ids.begin(), ids.end(), id) == ids.end()) continue;
      std::string health = m["HealthStatus"] == "Healthy" ? "HEALTHY" : "UNHEALTHY";
      all.push_back({{"InstanceId", id},
                     {"InstanceType", m["InstanceType"]},
                     {"AutoScalingGroupName", g["AutoScalingGroupName"]},
                     {"AvailabilityZone", m["AvailabilityZone"]},
                     {"LifecycleState", m["LifecycleState"]},
                     {"HealthStatus", health},
                     {"LaunchConfigurationName", m["LaunchConfigurationName"]},
                     {"ProtectedFromScaleIn", m["ProtectedFromScaleIn"]}});
    }
  }
  Json result = Json::object();
  Paginate(result, "AutoScalingInstances", std::move(all), page);
  return result;
}

Result<Json> AutoScalingService::SetDesiredCapacity(const Params& p) {
  AP_ASSIGN_OR_RETURN(auto name, RequiredName(p, "AutoScalingGroupName"));
  AP_ASSIGN_OR_RETURN(auto desired, NonNegativeInt(p, "DesiredCapacity"));
  if (!desired) return RequiredName(p, "DesiredCapacity").status();
  AP_ASSIGN_OR_RETURN(auto honor, p.Bool("HonorCooldown"));
  AP_ASSIGN_OR_RETURN(auto found, LoadGroup(name));
  Json g = found;
  const int want = *desired, old = g["DesiredCapacity"];
  if (want > g["MaxSize"].get<int>()) {
    return Status::Validation("New SetDesiredCapacity value " + std::to_string(want) + " is above max value " +
                              std::to_string(g["MaxSize"].get<int>()) + " for the AutoScalingGroup.");
  }
  if (want < g["MinSize"].get<int>()) {
    return Status::Validation("New SetDesiredCapacity value " + std::to_string(want) + " is below min value " +
                              std::to_string(g["MinSize"].get<int>()) + " for the AutoScalingGroup.");
  }
  if (honor.value_or(false) && GroupInCooldown(*ctx_, g)) {  // autoscaling/policies.h
    return Status(400, "ScalingActivityInProgress",
                  "You cannot set desired capacity while a scaling activity is in progress or the group " + name +
                      " is in its cooldown period.");
  }
  if (want == old) return Json();
  g["DesiredCapacity"] = want;
  g["CapacityCause"] = CauseAt(ctx_->clock->NowMillis()) + "a user request explicitly set group desired capacity "
                       "changing the desired capacity from " + std::to_string(old) + " to " + std::to_string(want) + ".";
  AP_RETURN_IF_ERROR(Save({{kind::kAutoScalingGroup, name, g}}));
  return Json();
}

Result<Json> AutoScalingService::SetInstanceHealth(const Params& p) {
  AP_ASSIGN_OR_RETURN(auto id, RequiredName(p, "InstanceId", 19));
  AP_ASSIGN_OR_RETURN(auto status, RequiredName(p, "HealthStatus", 32));
  if (status != "Healthy" && status != "Unhealthy") {
    return Status::Validation("Valid health status values are Healthy and Unhealthy");
  }
  AP_ASSIGN_OR_RETURN(auto respect, p.Bool("ShouldRespectGracePeriod"));
  auto g = FindGroupOfInstance(*ctx_, id);
  if (!g) return Status::Validation("Instance Id not found - No managed instance found for instance ID: " + id);
  Json& m = (*g)["Instances"][id];
  const int64_t now = ctx_->clock->NowMillis();
  const int64_t grace_ms = (*g)["HealthCheckGracePeriod"].get<int64_t>() * 1000;
  if (status == "Unhealthy" && respect.value_or(true) && now - m["LaunchedAt"].get<int64_t>() < grace_ms) {
    return Json();  // inside the grace period the report is ignored, as AWS does
  }
  m["HealthStatus"] = status;
  m["HealthCause"] = "a user health-check";
  AP_RETURN_IF_ERROR(Save({{kind::kAutoScalingGroup, (*g)["AutoScalingGroupName"], *g}}));
  return Json();
}

Result<Json> AutoScalingService::TerminateInstanceInAutoScalingGroup(const Params& p) {
  AP_ASSIGN_OR_RETURN(auto id, RequiredName(p, "InstanceId", 19));
  AP_ASSIGN_OR_RETURN(auto decrement, p.Bool("ShouldDecrementDesiredCapacity"));
  if (!decrement) return RequiredName(p, "ShouldDecrementDesiredCapacity").status();
  auto g = FindGroupOfInstance(*ctx_, id);
  if (!g) return Status::Validation("Instance Id not found - No managed instance found for instance ID: " + id);
  Json& group = *g;
  Json& m = group["Instances"][id];
  if (m["LifecycleState"] == lifecycle::kTerminating) {
    auto act = ctx_->store->Get(kind::kActivity, m["ActivityId"]);
    if (act) return Json{{"Activity", ActivityXml(*act)}};
  }
  const int64_t now = ctx_->clock->NowMillis();
  const int desired = group["DesiredCapacity"];
  std::string cause = CauseAt(now) + "instance " + id + " was taken out of service in response to a user request";
  if (*decrement) {
    if (desired - 1 < group["MinSize"].get<int>()) {
      return Status::Validation("Currently, desiredCapacity is " + std::to_string(desired) + " and minSize is " +
                                std::to_string(group["MinSize"].get<int>()) +
                                ". Terminating instance without replacement will violate group's min size "
                                "constraint. Either set shouldDecrementDesiredCapacity flag to false or lower "
                                "group's min size constraint.");
    }
    group["DesiredCapacity"] = desired - 1;
    cause += ", shrinking the capacity from " + std::to_string(desired) + " to " + std::to_string(desired - 1);
  }
  cause += ".";
  std::vector<StoreWrite> writes;
  Json activity = BeginTermination(*ctx_, group, id, cause, writes);
  writes.push_back({kind::kAutoScalingGroup, group["AutoScalingGroupName"], group});
  AP_RETURN_IF_ERROR(Save(writes));
  return Json{{"Activity", ActivityXml(activity)}};
}

Result<Json> AutoScalingService::DescribeScalingActivities(const Params& p) {
  AP_ASSIGN_OR_RETURN(auto page, ReadPage(p, "Activities", 100, 100));
  auto ids = p.List("ActivityIds");
  auto group = p.Str("AutoScalingGroupName");
  auto activities = ctx_->store->List(kind::kActivity);
  std::stable_sort(activities.begin(), activities.end(), [](const Doc& a, const Doc& b) {
    return (*a)["StartTime"].get<int64_t>() > (*b)["StartTime"].get<int64_t>();
  });
  Json all = Json::array();
  for (const auto& doc : activities) {
    const Json& a = *doc;
    if (group && a["AutoScalingGroupName"] != *group) continue;
    if (!ids.empty() && std::find(ids.begin(), ids.end(), a["ActivityId"]) == ids.end()) continue;
    all.push_back(ActivityXml(a));
  }
  Json result = Json::object();
  Paginate(result, "Activities", std::move(all), page);
  return result;
}

Result<Json> AutoScalingService::SetProcesses(const Params& p, bool suspend) {
  AP_ASSIGN_OR_RETURN(auto name, RequiredName(p, "AutoScalingGroupName"));
  auto processes = p.List("ScalingProcesses");
  const auto& known = ScalingProcessNames();
  for (const auto& proc : processes) {
    if (std::find(known.begin(), known.end(), proc) == known.end()) {
      return Status::Validation("Process " + proc + " is not a valid scaling process. Valid processes: Launch, "
                                "Terminate, HealthCheck, ReplaceUnhealthy, AZRebalance, AlarmNotification, "
                                "ScheduledActions, AddToLoadBalancer, InstanceRefresh");
    }
  }
  if (processes.empty()) processes = known;
  AP_ASSIGN_OR_RETURN(auto found, LoadGroup(name));
  Json g = found;
  Json kept = Json::array();
  for (const auto& s : g["SuspendedProcesses"]) {
    if (std::find(processes.begin(), processes.end(), s["ProcessName"]) == processes.end()) kept.push_back(s);
  }
  if (suspend) {
    for (const auto& proc : processes) {
      kept.push_back({{"ProcessName", proc},
                      {"SuspensionReason", "User suspended at " + IsoTimeSeconds(ctx_->clock->NowMillis())}});
    }
  }
  g["SuspendedProcesses"] = kept;
  AP_RETURN_IF_ERROR(Save({{kind::kAutoScalingGroup, name, g}}));
  return Json();
}

Result<Json> AutoScalingService::CreateOrUpdateTags(const Params& p) {
  AP_ASSIGN_OR_RETURN(auto tags, ReadTags(p, ""));
  if (tags.empty()) return RequiredName(p, "Tags").status();
  std::map<std::string, Json> groups;
  for (const auto& t : tags) {
    std::string name = t["ResourceId"];
    if (groups.count(name)) continue;
    auto g = ctx_->store->Get(kind::kAutoScalingGroup, name);
    if (!g) return GroupNotFound(name);
    groups[name] = *g;
  }
  std::vector<StoreWrite> writes;
  for (auto& [name, g] : groups) {
    AP_RETURN_IF_ERROR(MergeTags(g, tags));
    writes.push_back({kind::kAutoScalingGroup, name, g});
  }
  AP_RETURN_IF_ERROR(Save(writes));
  return Json();
}

Result<Json> AutoScalingService::DeleteTags(const Params& p) {
  AP_ASSIGN_OR_RETURN(auto tags, ReadTags(p, ""));
  std::map<std::string, std::set<std::string>> keys_by_group;
  for (const auto& t : tags) keys_by_group[t["ResourceId"].get<std::string>()].insert(t["Key"].get<std::string>());
  std::vector<StoreWrite> writes;
  for (const auto& [name, keys] : keys_by_group) {
    auto found = ctx_->store->Get(kind::kAutoScalingGroup, name);
    if (!found) return GroupNotFound(name);
    Json g = *found;
    Json kept = Json::array();
    for (const auto& existing : g["Tags"]) {
      if (!keys.count(existing["Key"].get<std::string>())) kept.push_back(existing);
    }
    g["Tags"] = std::move(kept);
    writes.push_back({kind::kAutoScalingGroup, name, std::move(g)});
  }
  AP_RETURN_IF_ERROR(Save(writes));
  return Json();
}

Result<Json> AutoScalingService::DescribeTags(const Params& p) {
  AP_ASSIGN_OR_RETURN(auto page, ReadPage(p, "Tags", 50, 100));
  std::map<std::string, std::vector<std::string>> filters;
  for (const auto& f : p.StructList("Filters")) {
    std::string name = f.count("Name") ? f.at("Name") : "";
    if (name != "auto-scaling-group" && name != "key" && name != "value" && name != "propagate-at-launch") {
      return Status::Validation("Filter name '" + name + "' is not valid");
    }
    for (const auto& [k, v] : f)
      if (k.rfind("Values.", 0) == 0) filters[name].push_back(v);
  }
  auto pass = [&](const std::string& filter, const std::string& value) {
    auto it = filters.find(filter);
    return it == filters.end() || std::find(it->second.begin(), it->second.end(), value) != it->second.end();
  };
  Json all = Json::array();
  for (const auto& doc : ctx_->store->List(kind::kAutoScalingGroup)) {
    const Json& g = *doc;
    for (const auto& t : g["Tags"]) {
      if (!pass("auto-scaling-group", g["AutoScalingGroupName"]) || !pass("key", t["Key"]) ||
          !pass("value", t["Value"]) || !pass("propagate-at-launch", t["PropagateAtLaunch"].get<bool>() ? "true" : "false"))
        continue;
      all.push_back(TagXml(g["AutoScalingGroupName"], t));
    }
  }
  Json result = Json::object();
  Paginate(result, "Tags", std::move(all), page);
  return result;
}

Result<Json> AutoScalingService::DescribeScalingProcessTypes(const Params& p) {
  Json processes = Json::array();
  for (const auto& n : ScalingProcessNames()) processes.push_back({{"ProcessName", n}});
  return Json{{"Processes", processes}};
}

Result<Json> AutoScalingService::AttachLoadBalancers(const Params& p) {
  AP_ASSIGN_OR_RETURN(auto name, RequiredName(p, "AutoScalingGroupName"));
  AP_ASSIGN_OR_RETURN(auto names, ReadLoadBalancerNames(p));
  if (names.empty()) return RequiredName(p, "LoadBalancerNames").status();
  AP_ASSIGN_OR_RETURN(auto found, LoadGroup(name));
  AP_RETURN_IF_ERROR(CheckLoadBalancersExist(*ctx_, names));
  Json g = found;
  Json states = g.value("LoadBalancerStates", Json::object());
  bool changed = false;
  for (const auto& lb : names) {
    if (Contains(g["LoadBalancerNames"], lb)) continue;  // attaching again changes nothing
    g["LoadBalancerNames"].push_back(lb);
    states[lb] = lb_attachment::kAdding;  // also when it was still Removing: its members register again
    changed = true;
  }
  if (!changed) return Json::object();
  AP_RETURN_IF_ERROR(CheckLoadBalancerCount(g["LoadBalancerNames"].size()));
  g["LoadBalancerStates"] = states;
  // The group controller registers the members on its next pass (woken by Save).
  AP_RETURN_IF_ERROR(Save({{kind::kAutoScalingGroup, name, g}}));
  return Json::object();
}

Result<Json> AutoScalingService::DetachLoadBalancers(const Params& p) {
  AP_ASSIGN_OR_RETURN(auto name, RequiredName(p, "AutoScalingGroupName"));
  AP_ASSIGN_OR_RETURN(auto names, ReadLoadBalancerNames(p));
  if (names.empty()) return RequiredName(p, "LoadBalancerNames").status();
  AP_ASSIGN_OR_RETURN(auto found, LoadGroup(name));
  Json g = found;
  Json states = g.value("LoadBalancerStates", Json::object());
  std::vector<std::string> members;
  for (const auto& [id, m] : g["Instances"].items()) members.push_back(id);
  std::vector<StoreWrite> writes;
  for (const auto& lb : names) {
    Json& attached = g["LoadBalancerNames"];
    if (!Contains(attached, lb)) continue;  // detaching what is not attached is not an error
    attached.erase(std::find(attached.begin(), attached.end(), lb));
    if (elb::FindLoadBalancer(*ctx_, lb, &writes)) {
      // Deregistered in the same commit; the instances keep running. Removing until their draining ends.
      DeregisterFromLoadBalancers(*ctx_, {lb}, members, writes);
      states[lb] = lb_attachment::kRemoving;
    } else {
      states.erase(lb);
    }
  }
  if (g["LoadBalancerNames"] == found.at("LoadBalancerNames")) return Json::object();
  g["LoadBalancerStates"] = states;
  writes.push_back({kind::kAutoScalingGroup, name, g});
  AP_RETURN_IF_ERROR(Save(writes));
  return Json::object();
}

Result<Json> AutoScalingService::DescribeLoadBalancers(const Params& p) {
  AP_ASSIGN_OR_RETURN(auto name, RequiredName(p, "AutoScalingGroupName"));
  AP_ASSIGN_OR_RETURN(auto page, ReadPage(p, "LoadBalancers", 100, 100));
  AP_ASSIGN_OR_RETURN(auto found, LoadGroup(name, /*allow_deleting=*/true));
  const Json& g = found;
  const Json states = g.value("LoadBalancerStates", Json::object());
  // The attached load balancers in attachment order, then the detached ones still draining.
  Json all = Json::array();
  for (const auto& lb : g["LoadBalancerNames"]) {
    all.push_back({{"LoadBalancerName", lb}, {"State", states.value(lb.get<std::string>(), lb_attachment::kAdding)}});
  }
  for (const auto& [lb, state] : states.items()) {
    if (state == lb_attachment::kRemoving && !Contains(g["LoadBalancerNames"], lb)) {
      all.push_back({{"LoadBalancerName", lb}, {"State", state}});
    }
  }
  Json result = Json::object();
  Paginate(result, "LoadBalancers", std::move(all), page);
  return result;
}

}  // namespace

ApiService AutoScalingApi(RegionContext* ctx) {
  auto svc = std::make_shared<AutoScalingService>(ctx);
  using Method = Result<Json> (AutoScalingService::*)(const Params&);
  auto op = [svc](const char* name, Access access, Method m, std::vector<ListLimit> limits = {}) {
    return Operation{name, access, [svc, m](const Params& p) { return ((*svc).*m)(p); }, std::move(limits)};
  };
  // Per-call list limits (checked before any lock): AWS's documented maxima where there is one (50 tags, 50
  // names or ids for the Describe calls that say so, up to MaxRecords' 100 group names, 10 load balancers per
  // Attach/Detach call), sane bounds elsewhere.
  const ListLimit kTags{"Tags", kMaxTagsPerGroup};
  const ListLimit kZones{"AvailabilityZones", 50};
  const ListLimit kPolicies{"TerminationPolicies", 10};
  ApiService api;
  api.info = AutoScalingInfo();
  api.operations = {
      op("CreateLaunchConfiguration", Access::kWrite, &AutoScalingService::CreateLaunchConfiguration,
         {{"SecurityGroups", 50}}),
      op("DescribeLaunchConfigurations", Access::kRead, &AutoScalingService::DescribeLaunchConfigurations,
         {{"LaunchConfigurationNames", 50}}),
      op("DeleteLaunchConfiguration", Access::kWrite, &AutoScalingService::DeleteLaunchConfiguration),
      op("CreateAutoScalingGroup", Access::kWrite, &AutoScalingService::CreateAutoScalingGroup,
         {kTags, kZones, kPolicies, {"LoadBalancerNames", kMaxLoadBalancersPerGroup}, {"TargetGroupARNs", 100}}),
      op("UpdateAutoScalingGroup", Access::kWrite, &AutoScalingService::UpdateAutoScalingGroup, {kZones, kPolicies}),
      op("DeleteAutoScalingGroup", Access::kWrite, &AutoScalingService::DeleteAutoScalingGroup),
      op("DescribeAutoScalingGroups", Access::kRead, &AutoScalingService::DescribeAutoScalingGroups,
         {{"AutoScalingGroupNames", 100}, {"Filters", 50}}),
      op("DescribeAutoScalingInstances", Access::kRead, &AutoScalingService::DescribeAutoScalingInstances,
         {{"InstanceIds", 50}}),
      op("SetDesiredCapacity", Access::kWrite, &AutoScalingService::SetDesiredCapacity),
      op("SetInstanceHealth", Access::kWrite, &AutoScalingService::SetInstanceHealth),
      op("TerminateInstanceInAutoScalingGroup", Access::kWrite, &AutoScalingService::TerminateInstanceInAutoScalingGroup),
      op("DescribeScalingActivities", Access::kRead, &AutoScalingService::DescribeScalingActivities,
         {{"ActivityIds", 50}}),
      op("SuspendProcesses", Access::kWrite, &AutoScalingService::SuspendProcesses, {{"ScalingProcesses", 50}}),
      op("ResumeProcesses", Access::kWrite, &AutoScalingService::ResumeProcesses, {{"ScalingProcesses", 50}}),
      op("CreateOrUpdateTags", Access::kWrite, &AutoScalingService::CreateOrUpdateTags, {kTags}),
      op("DeleteTags", Access::kWrite, &AutoScalingService::DeleteTags, {kTags}),
      op("DescribeTags", Access::kRead, &AutoScalingService::DescribeTags, {{"Filters", 50}}),
      op("DescribeScalingProcessTypes", Access::kRead, &AutoScalingService::DescribeScalingProcessTypes),
      op("AttachLoadBalancers", Access::kWrite, &AutoScalingService::AttachLoadBalancers, {{"LoadBalancerNames", 10}}),
      op("DetachLoadBalancers", Access::kWrite, &AutoScalingService::DetachLoadBalancers, {{"LoadBalancerNames", 10}}),
      op("DescribeLoadBalancers", Access::kRead, &AutoScalingService::DescribeLoadBalancers),
  };
  for (auto& o : ScalingPolicyOperations(ctx)) api.operations.push_back(std::move(o));  // autoscaling/policies.h
  api.write_lock = ctx->mu;
  api.after_write = [ctx] {
    if (ctx->wake) ctx->wake();
  };
  return api;
}

}  // namespace autopipe

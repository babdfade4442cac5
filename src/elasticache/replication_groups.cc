#include "elasticache/replication_groups.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <ctime>
#include <set>
#include <string_view>

#include <openssl/evp.h>

#include "common/ids.h"
#include "elasticache/redis_client.h"
#include "elasticache/tls.h"

namespace autopipe::elasticache {

Status ValidateReplicationGroupId(const std::string& id) {
  auto invalid = [&] {
    return Status::InvalidParameterValue(
        "Replication group id must begin with a letter; must contain only ASCII letters, digits, and hyphens; "
        "and must not end with a hyphen or contain two consecutive hyphens.");
  };
  if (id.empty() || id.size() > 40) {
    return Status::InvalidParameterValue("The parameter ReplicationGroupId must be between 1 and 40 characters "
                                         "in length.");
  }
  if (!std::isalpha(static_cast<unsigned char>(id.front())) || id.back() == '-') return invalid();
  for (size_t i = 0; i < id.size(); ++i) {
    unsigned char c = id[i];
    if (!std::isalnum(c) && c != '-') return invalid();
    if (c == '-' && i + 1 < id.size() && id[i + 1] == '-') return invalid();
  }
  return Status::Ok();
}

std::string Lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

namespace {
std::string Pad(int n, int width) {
  std::string s = std::to_string(n);
  return std::string(s.size() < static_cast<size_t>(width) ? width - s.size() : 0, '0') + s;
}
}  // namespace

std::string NodeGroupIdFor(int shard_index) { return Pad(shard_index + 1, 4); }

std::string MemberClusterId(const std::string& rg, const std::string& node_group_id, int member_index) {
  return rg + "-" + node_group_id + "-" + Pad(member_index + 1, 3);
}

std::string NonClusterMemberId(const std::string& rg, int member_index) {
  return rg + "-" + Pad(member_index + 1, 3);
}

std::vector<SlotRange> SplitSlots(int shards) {
  std::vector<SlotRange> out;
  if (shards <= 0) return out;
  const int base = kSlotCount / shards;
  const int extra = kSlotCount % shards;
  int next = 0;
  for (int i = 0; i < shards; ++i) {
    const int size = base + (i < extra ? 1 : 0);
    out.push_back({next, next + size - 1});
    next += size;
  }
  return out;
}

std::string FormatSlots(const SlotRange& r) { return std::to_string(r.first) + "-" + std::to_string(r.last); }

Result<SlotRange> ParseSlots(const std::string& text) {
  auto invalid = [&] {
    return Status::InvalidParameterValue("Invalid slot range " + text +
                                         ": expected startSlot-endSlot with 0 <= startSlot <= endSlot <= 16383.");
  };
  auto number = [](const std::string& s) -> std::optional<int> {
    if (s.empty() || s.size() > 5 || !std::all_of(s.begin(), s.end(), ::isdigit)) return std::nullopt;
    return std::stoi(s);
  };
  const size_t dash = text.find('-');
  auto first = number(text.substr(0, dash));
  auto last = dash == std::string::npos ? first : number(text.substr(dash + 1));
  if (!first || !last || *first > *last || *last >= kSlotCount) return invalid();
  return SlotRange{*first, *last};
}

std::vector<bool> SlotSet(const std::string& text) {
  std::vector<bool> set(kSlotCount, false);
  size_t at = 0;
  while (at < text.size()) {
    size_t comma = text.find(',', at);
    if (comma == std::string::npos) comma = text.size();
    if (auto r = ParseSlots(text.substr(at, comma - at)); r.ok()) {
      for (int i = r->first; i <= r->last; ++i) set[i] = true;
    }
    at = comma + 1;
  }
  return set;
}

std::string FormatSlotSet(const std::vector<bool>& slots) {
  std::string out;
  for (int i = 0; i < kSlotCount && i < static_cast<int>(slots.size());) {
    if (!slots[i]) {
      ++i;
      continue;
    }
    int j = i;
    while (j + 1 < kSlotCount && slots[j + 1]) ++j;
    if (!out.empty()) out += ",";
    out += FormatSlots({i, j});
    i = j + 1;
  }
  return out;
}

Status CheckSlotCoverage(const std::vector<SlotRange>& ranges) {
  std::vector<SlotRange> sorted = ranges;
  std::sort(sorted.begin(), sorted.end(), [](const SlotRange& a, const SlotRange& b) { return a.first < b.first; });
  int next = 0;
  for (const auto& r : sorted) {
    if (r.first < next) {
      return Status::InvalidParameterValue("Slot ranges overlap: " + FormatSlots(r) +
                                           " overlaps a range before it.");
    }
    if (r.first > next) {
      return Status::InvalidParameterValue("Slots " + std::to_string(next) + "-" + std::to_string(r.first - 1) +
                                           " are not assigned to any node group: all 16384 slots must be covered.");
    }
    next = r.last + 1;
  }
  if (next != kSlotCount) {
    return Status::InvalidParameterValue("Slots " + std::to_string(next) +
                                         "-16383 are not assigned to any node group: all 16384 slots must be "
                                         "covered.");
  }
  return Status::Ok();
}

const std::vector<ParameterGroupInfo>& DefaultParameterGroups() {
  static const std::vector<ParameterGroupInfo> groups = {
      {"default.redis5.0", "redis5.0", false, "5.0.6"},
      {"default.redis5.0.cluster.on", "redis5.0", true, "5.0.6"},
      {"default.redis6.x", "redis6.x", false, "6.2"},
      {"default.redis6.x.cluster.on", "redis6.x", true, "6.2"},
      {"default.redis7", "redis7", false, "7.0"},
      {"default.redis7.cluster.on", "redis7", true, "7.0"},
  };
  return groups;
}

const ParameterGroupInfo* FindParameterGroup(const std::string& name) {
  for (const auto& g : DefaultParameterGroups()) {
    if (g.name == name) return &g;
  }
  return nullptr;
}

const ParameterGroupInfo* DefaultParameterGroupFor(const std::string& engine_version, bool cluster_enabled) {
  std::string family;
  if (engine_version.rfind("5.0", 0) == 0) family = "redis5.0";
  if (engine_version.rfind("6.", 0) == 0) family = "redis6.x";
  if (engine_version.rfind("7", 0) == 0) family = "redis7";
  for (const auto& g : DefaultParameterGroups()) {
    if (g.family == family && g.cluster_enabled == cluster_enabled) return &g;
  }
  return nullptr;
}

namespace {
// The size word of cache.<class>.<size>.
std::string SizeOf(const std::string& node_type) {
  const size_t dot = node_type.rfind('.');
  return dot == std::string::npos ? "" : node_type.substr(dot + 1);
}
}  // namespace

bool IsKnownNodeType(const std::string& node_type) {
  static const std::set<std::string> kSizes = {"micro",   "small",    "medium",   "large",    "xlarge",
                                               "2xlarge", "4xlarge",  "8xlarge",  "12xlarge", "16xlarge",
                                               "24xlarge"};
  if (node_type.rfind("cache.", 0) != 0) return false;
  return std::count(node_type.begin(), node_type.end(), '.') == 2 && kSizes.count(SizeOf(node_type)) > 0;
}

int MaxMemoryMibFor(const std::string& node_type) {
  const std::string size = SizeOf(node_type);
  if (size == "micro") return 32;
  if (size == "small") return 48;
  if (size == "medium") return 64;
  if (size == "large") return 96;
  if (size == "xlarge") return 128;
  return 192;
}

std::string DefaultPrimaryAz(const std::vector<std::string>& azs, int shard_index) {
  return azs[static_cast<size_t>(shard_index) % azs.size()];
}

std::vector<std::string> DefaultReplicaAzs(const std::vector<std::string>& azs, const std::string& primary_az,
                                           int replicas) {
  size_t start = std::find(azs.begin(), azs.end(), primary_az) - azs.begin();
  std::vector<std::string> out;
  for (int j = 0; j < replicas; ++j) {
    // After the primary's AZ, in turn; with one AZ, that one.
    out.push_back(azs.size() == 1 ? azs[0] : azs[(start + 1 + j % (azs.size() - 1)) % azs.size()]);
  }
  return out;
}

bool EveryShardSpansAzs(const std::vector<ShardPlan>& plan) {
  for (const auto& s : plan) {
    if (std::none_of(s.replica_azs.begin(), s.replica_azs.end(),
                     [&](const std::string& az) { return az != s.primary_az; })) {
      return false;
    }
  }
  return !plan.empty();
}

std::string GroupDir(const RegionContext& ctx, const std::string& rg) {
  return ctx.data_dir + "/elasticache/" + rg;
}

std::string NodeDir(const RegionContext& ctx, const std::string& rg, const std::string& cluster_id) {
  return GroupDir(ctx, rg) + "/" + cluster_id;
}

std::string EndpointDir(const RegionContext& ctx, const std::string& rg, const std::string& role) {
  return GroupDir(ctx, rg) + "/endpoint-" + role;
}

std::string EndpointAddress(const RegionContext& ctx, int address_index, bool reader) {
  return ctx.catalog->address_block() + "." + std::to_string(kEndpointOctet + (reader ? 1 : 0)) + "." +
         std::to_string(address_index);
}

std::optional<int> FreeAddressIndex(const RegionContext& ctx) {
  std::set<int> used;
  for (const auto& doc : ctx.store->List(kind::kCacheReplicationGroup)) used.insert(doc->value("AddressIndex", 0));
  for (int k = 1; k <= 254; ++k) {
    if (!used.count(k)) return k;
  }
  return std::nullopt;
}

std::string SnapshotDir(const RegionContext& ctx, const std::string& snapshot_name) {
  return ctx.data_dir + "/elasticache-snapshots/" + snapshot_name;
}

Status ValidateSnapshotName(const std::string& name) {
  if (name.empty() || name.size() > 255) {
    return Status::InvalidParameterValue("The parameter SnapshotName must be between 1 and 255 characters.");
  }
  if (!std::isalpha(static_cast<unsigned char>(name.front())) || name.back() == '-' || name.back() == '.') {
    return Status::InvalidParameterValue("Invalid snapshot name: it must begin with a letter and must not end "
                                         "with a hyphen.");
  }
  for (size_t i = 0; i < name.size(); ++i) {
    const unsigned char c = name[i];
    if (!std::isalnum(c) && c != '-' && c != '.') {
      return Status::InvalidParameterValue("Invalid snapshot name: only letters, digits and hyphens are allowed.");
    }
    if (c == '-' && i + 1 < name.size() && name[i + 1] == '-') {
      return Status::InvalidParameterValue("Invalid snapshot name: it must not contain two consecutive hyphens.");
    }
  }
  return Status::Ok();
}

Result<DailyWindow> ParseSnapshotWindow(const std::string& text) {
  int h1 = 0, m1 = 0, h2 = 0, m2 = 0;
  char tail = 0;
  auto bad = [&] {
    return Status::InvalidParameterValue("Invalid SnapshotWindow " + text +
                                         ": the format is hh24:mi-hh24:mi (UTC), at least 60 minutes.");
  };
  if (text.size() != 11 || std::sscanf(text.c_str(), "%2d:%2d-%2d:%2d%c", &h1, &m1, &h2, &m2, &tail) != 4) {
    return bad();
  }
  if (h1 > 23 || h2 > 23 || m1 > 59 || m2 > 59 || h1 < 0 || h2 < 0 || m1 < 0 || m2 < 0) return bad();
  DailyWindow w;
  w.start_minute = h1 * 60 + m1;
  w.minutes = ((h2 * 60 + m2) - w.start_minute + 24 * 60) % (24 * 60);
  if (w.minutes < 60) return bad();
  return w;
}

std::optional<int64_t> WindowOpenedAt(const DailyWindow& w, int64_t now_millis) {
  constexpr int64_t kDay = 24LL * 3600 * 1000;
  const int64_t day_start = now_millis - now_millis % kDay;
  for (int64_t start : {day_start + w.start_minute * 60'000LL, day_start - kDay + w.start_minute * 60'000LL}) {
    if (now_millis >= start && now_millis < start + w.minutes * 60'000LL) return start;
  }
  return std::nullopt;
}

std::string AutomaticSnapshotName(const std::string& rg, int64_t at_millis) {
  const time_t t = static_cast<time_t>(at_millis / 1000);
  struct tm tm {};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d-%H-%M", &tm);
  return "automatic." + rg + "-" + buf;
}

Json NewSnapshotDocument(const Json& rg, const std::map<std::string, std::string>& az_of, const std::string& name,
                         const std::string& source, int64_t now_millis, const std::string& arn) {
  Json shards = Json::array();
  for (const auto& ng : rg["NodeGroups"]) {
    Json replica_azs = Json::array();
    std::string primary_az;
    for (const auto& m : ng["Members"]) {
      auto it = az_of.find(m.get<std::string>());
      const std::string az = it == az_of.end() ? "" : it->second;
      if (m == ng["Primary"]) {
        primary_az = az;
      } else {
        replica_azs.push_back(az);
      }
    }
    shards.push_back({{"NodeGroupId", ng["NodeGroupId"]},
                      {"Slots", ng.value("Slots", std::string("0-16383"))},
                      {"ReplicaCount", replica_azs.size()},
                      {"PrimaryAvailabilityZone", primary_az},
                      {"ReplicaAvailabilityZones", replica_azs}});
  }
  return Json{{"SnapshotName", name},
              {"ReplicationGroupId", rg["ReplicationGroupId"]},
              {"ReplicationGroupDescription", rg["Description"]},
              {"SnapshotStatus", snapshot_status::kCreating},
              {"SnapshotSource", source},
              {"CacheNodeType", rg["CacheNodeType"]},
              {"Engine", "redis"},
              {"EngineVersion", rg["EngineVersion"]},
              {"CacheParameterGroupName", rg["CacheParameterGroupName"]},
              {"CacheSubnetGroupName", rg.value("CacheSubnetGroupName", std::string("default"))},
              {"Port", rg["Port"]},
              {"ClusterEnabled", rg["ClusterEnabled"]},
              {"AutomaticFailoverEnabled", rg["AutomaticFailoverEnabled"]},
              {"SnapshotRetentionLimit", rg.value("SnapshotRetentionLimit", 0)},
              {"SnapshotWindow", rg.value("SnapshotWindow", std::string("05:00-06:00"))},
              {"CreateTime", now_millis},
              {"ARN", arn},
              {"NodeSnapshots", shards}};
}

Result<std::string> FileSha256(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) return Status::Internal("cannot open " + path);
  EVP_MD_CTX* md = EVP_MD_CTX_new();
  EVP_DigestInit_ex(md, EVP_sha256(), nullptr);
  char buf[65536];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) EVP_DigestUpdate(md, buf, n);
  const bool failed = std::ferror(f) != 0;
  std::fclose(f);
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestFinal_ex(md, digest, &len);
  EVP_MD_CTX_free(md);
  if (failed) return Status::Internal("cannot read " + path);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < len; ++i) {
    out += kHex[digest[i] >> 4];
    out += kHex[digest[i] & 15];
  }
  return out;
}

StoreWrite EventWrite(const std::string& source_id, const std::string& source_type, const std::string& message,
                      int64_t now_millis, int seq) {
  char id[64];
  std::snprintf(id, sizeof id, "%013lld-%03d-", static_cast<long long>(now_millis), seq);
  Json event = {{"SourceIdentifier", source_id},
                {"SourceType", source_type},
                {"Message", message},
                {"Date", now_millis}};
  return {kind::kCacheEvent, std::string(id) + RandomHex(6), std::move(event), std::nullopt};
}

// ---- in-transit encryption and AUTH ------------------------------------------------------------------------------

Status ValidateAuthToken(const std::string& token) {
  bool ok = token.size() >= 16 && token.size() <= 128;
  for (const char ch : token) {
    const auto c = static_cast<unsigned char>(ch);
    if (std::isalnum(c)) continue;
    if (std::string_view("!&#$^<>-").find(ch) == std::string_view::npos) ok = false;
  }
  if (!ok) return Status::InvalidParameterValue("Invalid AuthToken provided.");
  return Status::Ok();
}

Result<ConnectOptions> NodeAccess(const RegionContext& ctx, const Json& rg) {
  ConnectOptions o;
  if (rg.value("TransitEncryptionEnabled", false)) {
    AP_ASSIGN_OR_RETURN(o.tls, ClientTlsFor(ctx.data_dir));
  }
  for (const char* key : {"AuthTokens", "AuthPreviousTokens"}) {
    if (!rg.contains(key)) continue;
    for (const auto& t : rg[key]) {
      const std::string token = t;
      if (std::find(o.passwords.begin(), o.passwords.end(), token) == o.passwords.end()) o.passwords.push_back(token);
    }
  }
  return o;
}

std::string CurrentAuthToken(const Json& rg) {
  if (!rg.contains("AuthTokens") || rg["AuthTokens"].empty()) return "";
  return rg["AuthTokens"][0];
}

std::string TokenHash(const std::string& token) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(token.data(), token.size(), md, &len, EVP_sha256(), nullptr);
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < len; ++i) {
    out += hex[md[i] >> 4];
    out += hex[md[i] & 15];
  }
  return out;
}

}  // namespace autopipe::elasticache

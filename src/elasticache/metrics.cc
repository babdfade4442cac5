#include "elasticache/metrics.h"

#include <algorithm>

#include "elasticache/redis_client.h"
#include "elasticache/replication_groups.h"

namespace autopipe::elasticache {
namespace {

double Number(const std::map<std::string, std::string>& info, const std::string& key, double fallback = 0) {
  auto it = info.find(key);
  if (it == info.end()) return fallback;
  try {
    return std::stod(it->second);
  } catch (const std::exception&) {
    return fallback;
  }
}

}  // namespace

void CacheMetrics::Collect(RegionContext* ctx, int64_t now_millis, std::vector<MetricSample>* out) {
  for (const auto& doc : ctx->store->List(kind::kCacheNode)) {
    const Json& node = *doc;
    if (node.value("Status", std::string()) != node_status::kAvailable) continue;
    auto rg = ctx->store->Get(kind::kCacheReplicationGroup, node.value("ReplicationGroupId", std::string()));
    if (!rg) continue;
    auto access = NodeAccess(*ctx, *rg);  // TLS and AUTH when the group has them
    if (!access.ok()) continue;
    auto c = RedisConnection::Connect(node["Address"], node["Port"].get<int>(), 150, *access);
    if (!c.ok()) continue;
    auto text = (*c)->Command({"INFO", "all"});
    if (!text.ok()) continue;
    const auto info = ParseInfo(*text);
    const std::string id = node["CacheClusterId"];
    auto add = [&](const char* name, double value, const char* unit) {
      MetricSample s;
      s.namespace_ = "AWS/ElastiCache";
      s.metric_name = name;
      s.dimensions = {{"CacheClusterId", id}, {"CacheNodeId", "0001"}};
      s.value = value;
      s.unit = unit;
      s.timestamp_millis = now_millis;
      out->push_back(std::move(s));
    };
    add("CurrConnections", Number(info, "connected_clients"), "Count");
    const double maxmemory = Number(info, "maxmemory");
    if (maxmemory > 0) add("DatabaseMemoryUsagePercentage", 100.0 * Number(info, "used_memory") / maxmemory, "Percent");
    if (info.count("master_last_io_seconds_ago")) {
      add("ReplicationLag", std::max(0.0, Number(info, "master_last_io_seconds_ago")), "Seconds");
    }
    const double cpu = Number(info, "used_cpu_sys") + Number(info, "used_cpu_user");
    const double hits = Number(info, "keyspace_hits");
    const double misses = Number(info, "keyspace_misses");
    const std::string key = id + "/" + std::to_string(node.value("Generation", 0)) + "/" +
                            std::to_string(node.value("Pid", 0));
    Last prev;
    bool have_prev = false;
    {
      std::lock_guard lock(mu_);
      auto it = last_.find(key);
      if (it != last_.end()) {
        prev = it->second;
        have_prev = true;
      }
      last_[key] = {now_millis, cpu, hits, misses};
    }
    if (have_prev && now_millis > prev.at_millis) {
      const double seconds = (now_millis - prev.at_millis) / 1000.0;
      const double percent = std::max(0.0, 100.0 * (cpu - prev.cpu_seconds) / seconds);
      add("CPUUtilization", percent, "Percent");
      add("EngineCPUUtilization", percent, "Percent");
      add("CacheHits", std::max(0.0, hits - prev.hits), "Count");
      add("CacheMisses", std::max(0.0, misses - prev.misses), "Count");
    }
  }
  // Readings of nodes rebuilt or gone since are dropped after ten minutes.
  std::lock_guard lock(mu_);
  std::erase_if(last_, [&](const auto& kv) { return kv.second.at_millis < now_millis - 600'000; });
}

}  // namespace autopipe::elasticache

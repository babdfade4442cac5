#include "elasticache/seed.h"

#include <thread>

namespace autopipe::elasticache {

FormParams SeedReplicationGroupParams(const std::string& region) {
  const std::string a = region + "a";
  const std::string b = region + "b";
  const std::string ng = "NodeGroupConfiguration.NodeGroupConfiguration.";
  return {{"ReplicationGroupId", kSeedReplicationGroupId},
          {"ReplicationGroupDescription", "Auto Pipeline Redis Cluster"},
          {"NumNodeGroups", "2"},
          {"ReplicasPerNodeGroup", "2"},
          {"CacheNodeType", "cache.m5.large"},
          {"Engine", "redis"},
          {"CacheParameterGroupName", "default.redis5.0.cluster.on"},
          {"AutomaticFailoverEnabled", "true"},
          {ng + "1.PrimaryAvailabilityZone", a},
          {ng + "1.ReplicaAvailabilityZones.AvailabilityZone.1", b},
          {ng + "1.ReplicaAvailabilityZones.AvailabilityZone.2", b},
          {ng + "2.PrimaryAvailabilityZone", b},
          {ng + "2.ReplicaAvailabilityZones.AvailabilityZone.1", a},
          {ng + "2.ReplicaAvailabilityZones.AvailabilityZone.2", a},
          {"Port", "6379"}};
}

std::string CreateSeedReplicationGroup(const ApiRouter& api, const std::string& region) {
  auto created = api.Invoke("elasticache", "CreateReplicationGroup", SeedReplicationGroupParams(region));
  if (!created.ok() && created.status().code() != "ReplicationGroupAlreadyExists") {
    return "ElastiCache replication group " + std::string(kSeedReplicationGroupId) + " could not be created: " +
           created.status().ToString() + "\n";
  }
  return "";
}

std::string DescribeSeedReplicationGroup(const ApiRouter& api, const std::string& region,
                                         std::chrono::milliseconds wait) {
  std::string text;
  const auto deadline = std::chrono::steady_clock::now() + wait;
  Json rg;
  while (true) {
    auto d = api.Invoke("elasticache", "DescribeReplicationGroups", {{"ReplicationGroupId", kSeedReplicationGroupId}});
    if (d.ok() && !(*d)["ReplicationGroups"].empty()) rg = (*d)["ReplicationGroups"][0];
    if ((rg.is_object() && rg["Status"] == "available") || std::chrono::steady_clock::now() >= deadline) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  if (!rg.is_object()) return "ElastiCache replication group " + std::string(kSeedReplicationGroupId) + " is missing\n";
  const std::string host = rg["ConfigurationEndpoint"]["Address"];
  const std::string port = std::to_string(rg["ConfigurationEndpoint"]["Port"].get<int>());
  text += "ElastiCache replication group " + std::string(kSeedReplicationGroupId) + " (Redis cluster, 2 shards x " +
          "(1 primary + 2 replicas), " + region + "a/" + region + "b), " + rg["Status"].get<std::string>() + ":\n";
  for (const auto& ng : rg["NodeGroups"]) {
    text += "  shard " + ng["NodeGroupId"].get<std::string>() + "  slots " + ng["Slots"].get<std::string>() + " ";
    for (const auto& m : ng["NodeGroupMembers"]) {
      text += " " + m["ReadEndpoint"]["Address"].get<std::string>() + " (" +
              m["PreferredAvailabilityZone"].get<std::string>() + ")";
    }
    text += "\n";
  }
  text += "  configuration endpoint  " + host + ":" + port + "\n";
  text += "  redis-cli -c -h " + host + " -p " + port + "\n";
  return text;
}

}  // namespace autopipe::elasticache

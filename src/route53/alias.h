// AliasResolver: alias records that target a Classic Load Balancer of a region in the partition.
//
// An ELB DNSName here is its literal address (127.N.200.k, every AZ node binds it), so the region owning it is
// the live region whose address block is 127.N (partition/partition.h). The resolver asks that region
// (DescribeLoadBalancers and DescribeInstanceHealth over its API, SigV4-signed with the partition's key pair) and
// keeps, per target, its addresses and whether it is healthy (the region is alive, the load balancer exists and
// has at least one InService instance: EvaluateTargetHealth). Refresh() does the network calls and must be
// called without locks held (the global process does it every 2 s); Lookup() only reads the cache.
//
// Thread-safety: all methods are safe from any thread.
#pragma once

#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "partition/partition.h"
#include "store/store.h"

namespace autopipe::route53 {

struct AliasTargetState {
  std::vector<std::string> addresses;  // IPv4
  bool healthy = false;
  bool exists = false;
};

class AliasResolver {
 public:
  AliasResolver(std::string partition_dir, partition::KeyPair key)
      : partition_dir_(std::move(partition_dir)), key_(std::move(key)) {}

  // Asks the regions about each target (canonical DNS names with a trailing dot) and replaces the cache.
  void Refresh(const std::vector<std::string>& targets);
  std::optional<AliasTargetState> Lookup(const std::string& target) const;
  // One target, asked now (ChangeResourceRecordSets checks a new alias with it): empty when it resolves, else
  // Route 53's message.
  std::string Check(const Json& alias_target, const std::string& type);

 private:
  AliasTargetState Resolve(const std::string& target) const;

  const std::string partition_dir_;
  const partition::KeyPair key_;
  mutable std::mutex mu_;
  std::map<std::string, AliasTargetState> cache_;  // guarded by mu_
};

}  // namespace autopipe::route53

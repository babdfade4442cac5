#include "autoscaling/termination_policy.h"

#include <algorithm>
#include <functional>
#include <map>

namespace autopipe {
namespace {

using Candidates = std::vector<const TerminationCandidate*>;

// Keeps the candidates with the lowest score (ties all kept).
Candidates KeepLowest(const Candidates& in, const std::function<int64_t(const TerminationCandidate&)>& score) {
  if (in.empty()) return in;
  int64_t best = score(*in.front());
  for (const auto* c : in) best = std::min(best, score(*c));
  Candidates out;
  for (const auto* c : in) {
    if (score(*c) == best) out.push_back(c);
  }
  return out;
}

Candidates ApplyPolicy(const std::string& policy, const Candidates& in, const std::string& current_lc,
                       int64_t now) {
  if (policy == "OldestInstance") {
    return KeepLowest(in, [](const TerminationCandidate& c) { return c.launched_at_millis; });
  }
  if (policy == "NewestInstance") {
    return KeepLowest(in, [](const TerminationCandidate& c) { return -c.launched_at_millis; });
  }
  if (policy == "OldestLaunchConfiguration" || policy == "OldestLaunchTemplate") {
    return KeepLowest(in, [&](const TerminationCandidate& c) {
      return c.launch_configuration_name == current_lc ? 1 : 0;
    });
  }
  if (policy == "ClosestToNextInstanceHour") {
    return KeepLowest(in, [now](const TerminationCandidate& c) {
      const int64_t hour = 3600 * 1000;
      int64_t age = std::max<int64_t>(0, now - c.launched_at_millis);
      return hour - age % hour;
    });
  }
  // Default: the policies it is made of, in order.
  Candidates out = ApplyPolicy("OldestLaunchConfiguration", in, current_lc, now);
  return ApplyPolicy("ClosestToNextInstanceHour", out, current_lc, now);
}

}  // namespace

std::vector<std::string> ChooseInstancesToTerminate(std::vector<TerminationCandidate> candidates, int count,
                                                    const std::vector<std::string>& policies,
                                                    const std::string& current_lc, int64_t now,
                                                    std::mt19937& rng) {
  std::vector<std::string> chosen;
  while (static_cast<int>(chosen.size()) < count) {
    std::map<std::string, int> per_az;
    std::map<std::string, int> unprotected_per_az;
    for (const auto& c : candidates) {
      ++per_az[c.availability_zone];
      if (!c.protected_from_scale_in) ++unprotected_per_az[c.availability_zone];
    }
    std::string az;
    int most = -1;
    for (const auto& [zone, n] : per_az) {
      if (unprotected_per_az[zone] > 0 && n > most) {
        most = n;
        az = zone;
      }
    }
    if (most < 0) break;  // only protected instances left

    Candidates pool;
    for (const auto& c : candidates) {
      if (c.availability_zone == az && !c.protected_from_scale_in) pool.push_back(&c);
    }
    std::vector<std::string> order = policies.empty() ? std::vector<std::string>{"Default"} : policies;
    for (const auto& policy : order) {
      if (pool.size() <= 1) break;
      pool = ApplyPolicy(policy, pool, current_lc, now);
    }
    std::uniform_int_distribution<size_t> pick(0, pool.size() - 1);
    std::string victim = pool[pick(rng)]->instance_id;
    chosen.push_back(victim);
    candidates.erase(std::remove_if(candidates.begin(), candidates.end(),
                                    [&](const TerminationCandidate& c) { return c.instance_id == victim; }),
                     candidates.end());
  }
  return chosen;
}

}  // namespace autopipe

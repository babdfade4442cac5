// Which instances a group terminates when it scales in, per AWS's termination policies.
//
// The AZ comes first, always: the AZ with the most instances that still has an unprotected one. Within it the
// group's policies narrow the candidates in order (Default = OldestLaunchConfiguration, then
// ClosestToNextInstanceHour, then random). Chosen one at a time, so each pick re-balances the counts.
//
// Thread-safety: pure function (the caller owns the random generator).
#pragma once

#include <cstdint>
#include <random>
#include <string>
#include <vector>

namespace autopipe {

struct TerminationCandidate {
  std::string instance_id;
  std::string availability_zone;
  std::string launch_configuration_name;
  int64_t launched_at_millis = 0;
  bool protected_from_scale_in = false;
};

// Picks up to `count` instances to terminate. `current_launch_configuration` is the group's; instances whose
// configuration differs are "older". Unknown policy names are treated as Default.
std::vector<std::string> ChooseInstancesToTerminate(std::vector<TerminationCandidate> candidates, int count,
                                                    const std::vector<std::string>& policies,
                                                    const std::string& current_launch_configuration,
                                                    int64_t now_millis, std::mt19937& rng);

}  // namespace autopipe

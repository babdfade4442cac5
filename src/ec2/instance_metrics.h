// AWS/EC2 metrics measured from the instances' processes, and EC2's alarm actions.
//
//  - CPUUtilization (Percent) per running instance, dimension InstanceId: the CPU time of the instance's whole
//    process tree (its init process and every descendant, from /proc) between two readings, over the wall time
//    between them times the instance type's vCPUs. The first reading of an instance only sets the baseline.
//    Also per Auto Scaling group (dimension AutoScalingGroupName): the average over its running instances.
//  - Alarm actions arn:aws:automate:<region>:ec2:terminate, :stop and :reboot on the alarm's InstanceId dimension
//    (requested exactly as TerminateInstances, StopInstances and RebootInstances request them: instances.h).
//    recover is refused (recorded as failed in the alarm's history): there is no host failure to recover from.
//
// Thread-safety: CollectInstanceMetrics and RunEc2AlarmAction are safe from any thread (the baselines have their
// own lock); call them without RegionContext::mu held.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "region/module.h"

namespace autopipe {

void CollectInstanceMetrics(RegionContext* ctx, int64_t now_millis, std::vector<MetricSample>* out);

Status RunEc2AlarmAction(RegionContext* ctx, const std::string& action_arn, const AlarmStateChange& change);

// The CPU time (clock ticks, user + system) of `root` and all its descendants, from /proc; 0 when it is gone.
uint64_t ProcessTreeCpuTicks(pid_t root);

}  // namespace autopipe

// Service modules: what one AWS service (or one capability such as EC2's instances) adds to a region.
//
// A region is the list of modules in region/modules.cc. The region server, the unit-test fixture, `autopipe
// down` and the command line all read that one list, so adding a service is its own folder (with a
// module.cc that returns its ServiceModule) plus one line there. A module says:
//   - its API services (the handlers the router dispatches to, by SigV4 service name),
//   - the document kinds it stores (no two modules share a kind),
//   - its controllers (run by the ControllerRuntime, in module order, then in the order given),
//   - its recorded operations (slow multi-step work, region/operation.h),
//   - the kinds of long-lived processes it runs (so `down` stops every one of them, whoever started it),
//   - the subcommands of the `autopipe` binary it needs (a data plane's own process, for instance).
//
// Thread-safety: ServiceModule values are immutable after AllModules() builds them; the functions they hold
// are called from the region's start-up thread.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <set>
#include <utility>
#include <string>
#include <vector>

#include "region/context.h"
#include "region/controller.h"
#include "region/operation.h"

namespace CLI {
class App;
}

namespace autopipe {

class ApiRouter;

// A kind of long-lived child process: each document of `document_kind` records at most one process of this
// kind (process/recorded_process.h), which `down` stops (SIGTERM to its process group, SIGKILL after a grace
// period).
struct ProcessKind {
  std::string name;           // e.g. "instance", "load-balancer-node"
  std::string document_kind;  // the documents that record these processes
  // How `down` leaves the document of a process it stopped; nullptr leaves it unchanged (the next start then
  // sees the process gone and starts a new one).
  std::function<void(Json& doc, int64_t now_millis)> on_down;
};

// A subcommand of the `autopipe` binary. `setup` adds the subcommand's options to `cmd` and returns what runs
// it once the command line has been parsed.
struct Subcommand {
  std::string name;
  std::string description;
  bool internal = true;  // started by the region itself: hidden from --help
  std::function<std::function<int()>(CLI::App* cmd)> setup;
};

// A metric sample a module measured (cloudwatch/ stores it; AWS/<service> namespaces).
struct MetricSample {
  std::string namespace_;  // "AWS/EC2", "AWS/ELB", "AWS/RDS", "AWS/ElastiCache", "AWS/AutoScaling"
  std::string metric_name;
  std::vector<std::pair<std::string, std::string>> dimensions;  // in AWS's order, e.g. {{"InstanceId", "i-..."}}
  double value = 0;
  std::string unit;  // CloudWatch's unit names: "Percent", "Count", "Bytes", "Seconds", ...
  int64_t timestamp_millis = 0;
};

// What CloudWatch tells an alarm action target when an alarm changes state (or, for Auto Scaling policies, while
// the state holds). cloudwatch/ builds it; sns/ publishes AWS's alarm notification from it, autoscaling/ runs a
// policy, ec2/ stops, terminates or reboots an instance.
struct AlarmStateChange {
  std::string alarm_name;
  std::string alarm_arn;
  std::string old_state;  // OK, ALARM, INSUFFICIENT_DATA
  std::string new_state;
  std::string reason;       // StateReason
  std::string reason_data;  // StateReasonData (JSON text)
  int64_t at_millis = 0;
  Json alarm;  // the alarm as DescribeAlarms shows it (AlarmName, MetricName, Namespace, Dimensions, Period, ...)
};

// An alarm action this module carries out: actions whose ARN starts with `arn_prefix` go to `run`. `run` must
// not block (it records what to do in the store, or queues it, and returns) and is called without
// RegionContext::mu held; an error is recorded in the alarm's history and does not stop other actions.
struct AlarmActionTarget {
  std::string arn_prefix;  // e.g. "arn:aws:sns:", "arn:aws:autoscaling:", "arn:aws:automate:"
  std::function<Status(RegionContext*, const std::string& action_arn, const AlarmStateChange&)> run;
};

struct ServiceModule {
  std::string name;
  std::vector<std::string> document_kinds;
  std::function<void(RegionContext*, ApiRouter*)> add_api;  // nullptr: no API of its own
  std::function<std::vector<std::unique_ptr<Controller>>(RegionContext*)> controllers;  // nullptr: none
  std::vector<ProcessKind> process_kinds;
  std::vector<OperationType> operation_types;  // run by the region's one OperationController
  std::vector<Subcommand> subcommands;
  // Measures this module's metrics now (called by cloudwatch/ every few seconds without RegionContext::mu held;
  // take it for store reads that need a consistent view). nullptr: no metrics.
  std::function<void(RegionContext*, int64_t now_millis, std::vector<MetricSample>* out)> collect_metrics;
  std::vector<AlarmActionTarget> alarm_action_targets;
  // Adds the private addresses this module's processes hold (or may still hold), so that no other module hands
  // them out (ec2/instances.h AllocatePrivateAddress). Called with RegionContext::mu held. nullptr: none.
  std::function<void(const RegionContext&, std::set<std::string>* in_use)> addresses_in_use;
  // Adds the EC2 security group ids this module's resources are members of (DB instances, cache clusters), so
  // that DeleteSecurityGroup refuses one in use (DependencyViolation), as EC2 does. Called with
  // RegionContext::mu held. nullptr: none.
  std::function<void(const RegionContext&, std::set<std::string>* in_use)> security_groups_in_use;
};

// Every module of a region, in the order one change flows through them (region/modules.cc).
const std::vector<ServiceModule>& AllModules();

// Wires the modules into a router and a controller runtime (the region and the unit-test fixture both use
// this): every module's API and controllers, then one OperationController for all their operation types.
// `include` picks modules; nullptr takes them all. `extra_operations` adds operation types (tests).
void WireModules(RegionContext* ctx, ApiRouter* router, ControllerRuntime* runtime,
                 const std::function<bool(const ServiceModule&)>& include = nullptr,
                 std::vector<OperationType> extra_operations = {});

}  // namespace autopipe

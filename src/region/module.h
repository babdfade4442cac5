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

struct ServiceModule {
  std::string name;
  std::vector<std::string> document_kinds;
  std::function<void(RegionContext*, ApiRouter*)> add_api;  // nullptr: no API of its own
  std::function<std::vector<std::unique_ptr<Controller>>(RegionContext*)> controllers;  // nullptr: none
  std::vector<ProcessKind> process_kinds;
  std::vector<OperationType> operation_types;  // run by the region's one OperationController
  std::vector<Subcommand> subcommands;
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

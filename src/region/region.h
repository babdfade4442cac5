// Region: one AWS-compatible region on this machine — the API endpoint, the state store, the controllers and
// the processes they run. `autopipe server`, `autopipe up` and `autopipe down` are built from it.
//
// Start() takes an exclusive lock on the data dir (one server per region), creates the access key pair on first
// start (DIR/credentials, mode 0600, AWS shared-credentials format; DIR/config names the region), opens the
// store, starts the controllers, then the API, and finally writes DIR/endpoint and DIR/server.pid.
// Stop() stops the API and the controllers but leaves every data-plane process running (they outlive the
// control plane); StopRegionProcesses() is what `down` adds.
//
// Thread-safety: Start/Stop from one thread; router() is safe to use from any thread while running.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "common/status.h"
#include "store/store.h"

namespace autopipe {

struct RegionOptions {
  std::string data_dir = "autopipe-data";
  std::string listen = "127.0.0.1:4566";
  std::string region = "us-west-2";
  std::string address_block;  // empty: Catalog::DefaultAddressBlock(region)
  std::string log_level = "info";
  bool log_to_stderr = false;  // else DIR/server.log
  std::string smtp_relay;      // HOST:PORT of the SMTP smarthost for SNS email subscriptions; empty: none
  // A partition folder shared with other regions and the global service (partition/partition.h): its key pair
  // is accepted here and written to DIR/credentials, the address block is claimed there, and the region's entry
  // (endpoint, block, pid) is written there. Empty: a region on its own.
  std::string partition;
  // `up` only: also bring up the seed's stack in this standby region (a child `autopipe up` in DATA_DIR-<region>)
  // and the partition's global service (DATA_DIR-global); the partition defaults to DATA_DIR-partition.
  std::string standby_region;
  std::string standby_address_block;  // the standby's --address-block (empty: its default, claimed in the partition)
};

class ApiRouter;

class Region {
 public:
  virtual ~Region() = default;
  static Result<std::unique_ptr<Region>> Start(const RegionOptions& opts);
  virtual void Stop() = 0;
  virtual const std::string& endpoint() const = 0;
  virtual const ApiRouter& router() const = 0;
  // Number of instances (per lifecycle state) of a group; for `up`'s progress display.
  virtual int InServiceCount(const std::string& group) const = 0;
  virtual std::string DescribeInstancesText() const = 0;
  // One stored document (for `up`'s summary), nullopt when absent.
  virtual std::optional<nlohmann::ordered_json> GetDocument(const std::string& kind, const std::string& id) const = 0;
};

// `autopipe server`: runs until SIGINT/SIGTERM. Returns the process exit code.
int RunServer(const RegionOptions& opts);
// `autopipe up`: a region plus the seed's launch configuration and Auto Scaling group; prints where everything
// is; on Ctrl-C stops the whole region.
int RunUp(const RegionOptions& opts);
class Store;
class ProcessLauncher;
// What `down` does once the server is gone: stops every process that any module's ProcessKind records in the
// store, or that carries a LaunchToken of one of those documents (SIGTERM to each process group, SIGKILL after
// 5 s), then lets each kind mark its documents.
void StopRegionProcesses(Store& store, ProcessLauncher& launcher, int64_t now_millis);

// At start-up, before any controller runs: documents of a process kind that hold a LaunchToken but no Pid
// (the server died between the fork and the commit) get the process that carries their token, so their
// controllers adopt it, or stop it, like any recorded process.
void AdoptUnrecordedProcesses(Store& store, ProcessLauncher& launcher, int64_t now_millis);

// `autopipe down`: stops the region's server (if running) and every process the region runs; returns when
// they are gone.
int RunDown(const std::string& data_dir);

}  // namespace autopipe

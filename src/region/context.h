// RegionContext: what every service handler and controller of one region shares.
//
// Thread-safety: the pointers are set once at start-up. `mu` serialises every read-modify-write of region
// state: API handlers and controller passes hold it for their whole (short, non-blocking) run, so each sees a
// consistent snapshot and nothing is half-changed. Nothing that can block for long (process start-up waits,
// network I/O) is done while holding it.
#pragma once

#include <functional>
#include <mutex>
#include <string>

#include "common/clock.h"
#include "ec2/catalog.h"
#include "process/launcher.h"
#include "store/store.h"

namespace autopipe {

struct RegionContext {
  const Catalog* catalog = nullptr;
  Store* store = nullptr;
  const Clock* clock = nullptr;
  ProcessLauncher* launcher = nullptr;
  std::string data_dir;
  std::string self_exe;          // the autopipe binary, for instance-init
  // Instances run under identities of their own (ec2/instances.h InstanceUidFor). The server turns this on when
  // it runs as root; off, they run as the server's user.
  bool instance_identities = false;
  // The API endpoint as clients reach it ("http://127.0.0.1:4566"): set once the API is bound, before any
  // controller runs or request is served (SNS puts it in SubscribeURL, UnsubscribeURL and SigningCertURL).
  std::string endpoint;
  // HOST:PORT of the SMTP relay that email notifications go through (`server --smtp-relay`); empty: none.
  std::string smtp_relay;
  // The partition this region joined (`server --partition DIR`; partition/partition.h): its folder (absolute) and
  // key pair, with which the region calls another region's API (RDS cross-region read replicas). Empty: none.
  std::string partition_dir;
  std::string partition_access_key_id;
  std::string partition_secret_access_key;
  std::mutex* mu = nullptr;
  // Called after a successful API write. The region's controllers hear of every commit through the store's
  // change notifications, so in a region this does nothing; tests may hook it.
  std::function<void()> wake;

  std::string Arn(const std::string& service, const std::string& resource) const {
    return "arn:aws:" + service + ":" + catalog->region() + ":" + kAccountId + ":" + resource;
  }
};

}  // namespace autopipe

// Partition: the regions and the global service of one account on this machine find each other in one folder.
//
// `autopipe server --partition DIR` and `autopipe global --partition DIR` share DIR, laid out for a user to read:
//   DIR/credentials            the partition's key pair (AWS shared-credentials format, mode 0600), made by the
//                              first process that joins; every region and the global service accept it
//   DIR/regions/<region>.json  one per region: Region, Endpoint, AddressBlock, DataDir, Pid, PidStartTime,
//                              StartedAt, State ("running" or "stopped" after a clean stop)
//   DIR/global.json            the global service: Endpoint, DnsAddress, DataDir, Pid, PidStartTime, StartedAt
//   DIR/partition.lock         flock'd while a process claims an address block or creates the key pair
// A region is alive when its Pid with that PidStartTime still runs (a crashed region's entry stays, with a stale
// pid, until it starts again). Nothing here is shared at run time: a region's crash or `down` changes only its
// own entry. Address blocks are claimed under the lock: a region keeps the block its entry records, and a new
// region takes its default block unless another region's entry holds it, else the first free 127.N (N in
// 60..199).
//
// Thread-safety: every function is safe to call from any thread and from several processes at once (files are
// written atomically, claims happen under an flock).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"

namespace autopipe::partition {

struct KeyPair {
  std::string access_key_id;
  std::string secret_access_key;
};

struct RegionEntry {
  std::string region;
  std::string endpoint;       // http://HOST:PORT
  std::string address_block;  // 127.N
  std::string data_dir;
  int64_t pid = 0;
  uint64_t pid_start_time = 0;
  int64_t started_at_millis = 0;
  std::string state = "running";
  bool alive = false;  // computed when read: the pid with that start time runs
};

struct GlobalEntry {
  std::string endpoint;
  std::string dns_address;  // HOST:PORT
  std::string data_dir;
  int64_t pid = 0;
  uint64_t pid_start_time = 0;
  int64_t started_at_millis = 0;
  bool alive = false;
};

// Creates DIR (0700) and its key pair if absent (once, under the lock) and returns the key pair.
Result<KeyPair> EnsureKeyPair(const std::string& dir);

// The address block `region` uses in this partition: `requested` when given (refused if another region's entry
// holds it), else the one its entry records, else `default_block` when free, else the first free 127.N.
// Records the claim in the region's entry (state "starting") so that two regions starting at once never share.
Result<std::string> ClaimAddressBlock(const std::string& dir, const std::string& region,
                                      const std::string& requested, const std::string& default_block);

// Writes the region's entry (this process's pid and start time).
Status RegisterRegion(const std::string& dir, RegionEntry entry);
// Marks the region's entry stopped (a clean stop); its block stays claimed.
Status MarkRegionStopped(const std::string& dir, const std::string& region);
// Every region entry, with `alive` computed.
std::vector<RegionEntry> ListRegions(const std::string& dir);
std::optional<RegionEntry> FindRegion(const std::string& dir, const std::string& region);

Status RegisterGlobal(const std::string& dir, GlobalEntry entry);
std::optional<GlobalEntry> ReadGlobal(const std::string& dir);

// The shared-credentials text for a key pair, [default] profile.
std::string CredentialsText(const KeyPair& key);

}  // namespace autopipe::partition

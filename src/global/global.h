// The global service: `autopipe global --data-dir DIR --listen HOST:PORT --partition DIR`, a process of its own
// outside every region (as Route 53 is global in AWS) that serves Route 53's API and runs its DNS server.
//
// Start-up: an exclusive lock on DIR (one global service per data dir), the partition's key pair (created if
// first) written to DIR/credentials (0600) with DIR/config naming us-east-1, the state store DIR/state.db
// (SQLite, as a region's), the health checkers, the DNS server on --dns-listen (default 127.0.0.1, any port;
// UDP and TCP on one port) whose address:port goes to DIR/dns-address, then the API; finally DIR/endpoint,
// DIR/server.pid and the partition's global.json.
//
// The DNS server answers from a snapshot rebuilt by one thread whenever the store changes, a health check
// flips, or every 2 s (alias targets are asked again then); each rebuild records the store revision it
// includes, which is when GetChange turns INSYNC.
//
// Thread-safety: RunGlobal runs on the main thread until SIGINT/SIGTERM.
#pragma once

#include <string>

namespace autopipe {

struct GlobalOptions {
  std::string data_dir = "autopipe-global";
  std::string listen = "127.0.0.1:0";
  std::string dns_listen = "127.0.0.1:0";
  std::string partition;  // empty: DIR is its own partition (its key pair lives there)
  std::string log_level = "info";
  bool log_to_stderr = false;
};

int RunGlobal(const GlobalOptions& opts);

}  // namespace autopipe

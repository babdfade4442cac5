// `autopipe lb --config FILE`: one load-balancer node, the data plane of one load balancer in one AZ.
//
// Reads the config (lb/node_files.h), listens on every configured address and listener port with one
// event-loop worker per core (SO_REUSEPORT sockets, so the kernel spreads connections over workers and over the
// AZ nodes sharing the load balancer's address), health-checks its back ends, and writes status.json every
// second. SIGHUP re-reads the config and applies it without dropping a connection; SIGTERM stops accepting,
// lets in-flight requests finish (at most the draining timeout, else 10 s) and exits.
//
// Thread-safety: RunLbNode owns the process; call it once from main().
#pragma once

#include <string>

namespace autopipe::lb {

int RunLbNode(const std::string& config_path);

}  // namespace autopipe::lb

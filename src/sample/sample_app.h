// The sample Auto_Pipeline HTTP service that the built-in image runs: it listens on the instance's private IP
// (port 80 by default) and answers GET / with who served the request, so load balancing and failover can be seen
// and tested. GET /health answers 200 "ok" (500 after POST /health/fail, until POST /health/pass); GET /headers
// shows the request headers it received; GET /sleep?ms=N answers after N ms; POST /echo returns the body it was
// sent.
//
// Thread-safety: runs as its own process.
#pragma once

#include <string>

namespace autopipe {

// Serves on host:port until SIGTERM/SIGINT. Reads AUTOPIPE_INSTANCE_ID, AUTOPIPE_PRIVATE_IP,
// AUTOPIPE_AVAILABILITY_ZONE, AUTOPIPE_REGION from the environment.
int RunSampleApp(const std::string& host, int port);

}  // namespace autopipe

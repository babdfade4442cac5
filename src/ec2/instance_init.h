// The instance's init: `autopipe instance-init` is the first process of every instance (what PID 1 and
// cloud-init are on an EC2 machine). It becomes a child subreaper, starts the image's service (if the image has
// one), runs the launch configuration's UserData as a boot script the way cloud-init does, and lives exactly as
// long as the instance's process tree: when its last descendant has exited, it exits, and the instance is no
// longer running. SIGTERM is forwarded to the whole tree (shutdown).
//
// Thread-safety: runs as its own process; not for use inside the server.
#pragma once

#include <string>

namespace autopipe {

struct InstanceInitOptions {
  std::string self_exe;        // path of the autopipe binary (to start the built-in service)
  // What to exec for self_exe ("" = self_exe itself). The real init uses /proc/self/exe: an instance with an
  // identity of its own may not be able to search the folders of the binary's path (e.g. a build under /root).
  std::string self_exec_path;
  std::string service;         // "" (no built-in service) or "sample-app"
  std::string user_data_file;  // decoded UserData written by the server; "" for none; relative to our cwd
  std::string work_dir;        // the instance's own folder (the boot script runs here); "." = our cwd
};

int RunInstanceInit(const InstanceInitOptions& opts);

}  // namespace autopipe

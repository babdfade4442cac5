// Resources that are processes (EC2 instances, load-balancer nodes) record theirs in their store document as
// "Pid" and "PidStartTime" (both 0 when there is none), and "Cgroup" when the process was started in a cgroup of
// its own, so a restarted server can find and re-adopt them (and stop all they started).
//
// Thread-safety: pure functions.
#pragma once

#include "process/launcher.h"
#include "store/store.h"

namespace autopipe {

inline ProcessId RecordedProcess(const Json& doc) {
  return ProcessId{doc.value("Pid", pid_t{0}), doc.value("PidStartTime", uint64_t{0}),
                   doc.value("Cgroup", std::string())};
}

inline void RecordProcess(Json& doc, const ProcessId& id) {
  doc["Pid"] = id.pid;
  doc["PidStartTime"] = id.start_time;
  if (id.cgroup.empty()) {
    doc.erase("Cgroup");
  } else {
    doc["Cgroup"] = id.cgroup;
  }
}

}  // namespace autopipe

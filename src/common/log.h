// Logging: spdlog behind one set-up call. Structured "key=value" messages; never log secrets.
//
// Thread-safety: spdlog's default logger is thread-safe.
#pragma once

#include <spdlog/spdlog.h>

#include <string>

namespace autopipe {

// Sends the default logger to `path` (empty: stderr) at `level` ("debug", "info", "warn").
void InitLogging(const std::string& path, const std::string& level);

}  // namespace autopipe

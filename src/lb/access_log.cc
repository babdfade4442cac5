#include "lb/access_log.h"

#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>

namespace autopipe::lb {
namespace {

constexpr size_t kFlushAt = 32 * 1024;

int Clip(std::string_view s, size_t max) { return static_cast<int>(std::min(s.size(), max)); }

}  // namespace

std::string FormatAccessLogLine(const AccessLogEntry& e) {
  char ts[64];
  timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  tm t;
  gmtime_r(&now.tv_sec, &t);
  std::snprintf(ts, sizeof ts, "%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ", t.tm_year + 1900, t.tm_mon + 1, t.tm_mday,
                t.tm_hour, t.tm_min, t.tm_sec, now.tv_nsec / 1000);
  const std::string backend_status = e.backend_status > 0 ? std::to_string(e.backend_status) : "-";
  const std::string_view backend = e.backend.empty() ? std::string_view("-") : e.backend;
  char line[1024];
  int n = std::snprintf(
      line, sizeof line, "%s %.*s %.*s:%u %.*s %.6f %.6f %.6f %d %s %llu %llu \"%.*s %.*s HTTP/1.%d\" \"%.*s\" - -\n",
      ts, Clip(e.load_balancer_name, 4096), e.load_balancer_name.data(), Clip(e.client_ip, 64), e.client_ip.data(),
      e.client_port, Clip(backend, 4096), backend.data(), e.request_processing_s, e.backend_processing_s,
      e.response_processing_s, e.elb_status, backend_status.c_str(), static_cast<unsigned long long>(e.received_bytes),
      static_cast<unsigned long long>(e.sent_bytes), Clip(e.method, 127), e.method.data(), Clip(e.target, 200),
      e.target.data(), e.http_minor_version, Clip(e.user_agent, 200), e.user_agent.data());
  if (n < 0) return std::string();
  return std::string(line, std::min(static_cast<size_t>(n), sizeof line - 1));
}

void AccessLogWriter::Append(std::string_view line) {
  pending_ += line;
  if (pending_.size() > kFlushAt) Flush();
}

void AccessLogWriter::Flush() {
  if (pending_.empty() || fd_ < 0) {
    pending_.clear();
    return;
  }
  // O_APPEND: each write lands whole at the end, so workers' lines never interleave mid-line.
  ssize_t ignored = ::write(fd_, pending_.data(), pending_.size());  // a full disk loses log lines, not requests
  (void)ignored;
  pending_.clear();
}

}  // namespace autopipe::lb

// Access log: ELB's classic access-log line for each request a node answered, and the per-worker writer that
// batches lines and appends them to the log file. Lines are formatted only when logging is on.
//
// Thread-safety: an AccessLogWriter belongs to one worker thread. Workers share the file: each flush is one
// write() to an O_APPEND descriptor, so their lines never interleave mid-line.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace autopipe::lb {

// What one line says. Times are seconds, -1 for a phase the request never reached.
struct AccessLogEntry {
  std::string_view load_balancer_name;
  std::string_view client_ip;
  uint16_t client_port = 0;
  std::string_view backend;  // "ip:port"; empty if none was reached
  double request_processing_s = -1;
  double backend_processing_s = -1;
  double response_processing_s = -1;
  int elb_status = 0;
  int backend_status = 0;  // 0: no back-end answer
  uint64_t received_bytes = 0;
  uint64_t sent_bytes = 0;
  std::string_view method;
  std::string_view target;
  int http_minor_version = 1;
  std::string_view user_agent;
};

// The line (newline-terminated, at most 1023 bytes), stamped with the current UTC time.
std::string FormatAccessLogLine(const AccessLogEntry& e);

class AccessLogWriter {
 public:
  // The log file (owned by the node), -1 when logging is off. Lines not yet flushed go to the new one.
  void set_fd(int fd) { fd_ = fd; }
  bool enabled() const { return fd_ >= 0; }
  // Buffers a line; flushes past 32 KiB.
  void Append(std::string_view line);
  // Writes what is buffered (the worker calls it from its periodic scan and on exit).
  void Flush();

 private:
  int fd_ = -1;
  std::string pending_;
};

}  // namespace autopipe::lb

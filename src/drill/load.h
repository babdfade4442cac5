// The drill's steady client load: one thread of HTTP GETs through a DNS name, one thread of database writes.
//
// HttpLoad resolves the name through the global service's DNS server (DnsClient: the answer is kept for its
// TTL), then GETs http://<address>:<port><path> with libcurl (Host: the name), one request every interval.
// WriteLoad INSERTs (autocommit) one row per interval into `autopipe_drill.writes` (run_id, seq, target, at_ms)
// through the MariaDB client library; seq grows by one per attempt, and an attempt counts as acknowledged only
// when the server returned success for it. The target (host, port) can be switched while it runs (the drill
// moves it to the promoted instance when the old region stops).
// Both stop at Stop(), after max_requests, or at their deadline, whichever is first; every attempt is recorded
// with its start and end (seconds since `t0`).
//
// Thread-safety: Start/Stop/Samples from one thread; SetTarget and the counters from any.
#pragma once

#include <atomic>
#include <chrono>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/status.h"
#include "drill/report.h"

namespace autopipe::drill {

using SteadyTime = std::chrono::steady_clock::time_point;

inline double SecondsSince(SteadyTime t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

struct HttpLoadOptions {
  std::string dns_server;  // HOST:PORT
  std::string name;        // app.example.test
  int port = 80;
  std::string path = "/";
  std::chrono::milliseconds interval{50};
  long timeout_ms = 1000;
  int64_t max_requests = 100000;
};

class HttpLoad {
 public:
  HttpLoad(SteadyTime t0, HttpLoadOptions opts) : t0_(t0), opts_(std::move(opts)) {}
  ~HttpLoad() { Stop(); }
  void Start(SteadyTime deadline);
  void Stop();
  std::vector<HttpSample> Samples() const;
  // The last request's outcome, and the first success started at or after `since_s` (seconds since t0; -1: none).
  double FirstOkStartedAfter(double since_s) const;

 private:
  void Run(SteadyTime deadline);
  const SteadyTime t0_;
  const HttpLoadOptions opts_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  mutable std::mutex mu_;
  std::vector<HttpSample> samples_;  // guarded by mu_
};

struct DbTarget {
  std::string host;
  int port = 3306;
};

struct WriteLoadOptions {
  std::string user;
  std::string password;  // never logged
  std::string run_id;
  std::chrono::milliseconds interval{20};
  int64_t max_writes = 100000;
};

// Creates the database and the table (IF NOT EXISTS) on `target`.
Status PrepareDrillTable(const DbTarget& target, const std::string& user, const std::string& password);
// The seqs of `run_id` present at `target` (a read), or an error.
Result<std::vector<int64_t>> ReadDrillSeqs(const DbTarget& target, const std::string& user,
                                           const std::string& password, const std::string& run_id);

class WriteLoad {
 public:
  WriteLoad(SteadyTime t0, WriteLoadOptions opts, DbTarget target)
      : t0_(t0), opts_(std::move(opts)), target_(std::move(target)) {}
  ~WriteLoad() { Stop(); }
  void Start(SteadyTime deadline);
  void Stop();
  // Later attempts go to `target`, labelled kNew.
  void SwitchTarget(DbTarget target);
  std::vector<WriteSample> Samples() const;
  bool AckedNew() const { return acked_new_.load(); }
  int64_t Acked() const { return acked_.load(); }

 private:
  void Run(SteadyTime deadline);
  const SteadyTime t0_;
  const WriteLoadOptions opts_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> acked_new_{false};
  std::atomic<int64_t> acked_{0};
  std::thread thread_;
  mutable std::mutex mu_;
  DbTarget target_;                   // guarded by mu_
  WriteTarget label_ = WriteTarget::kOld;  // guarded by mu_
  uint64_t target_gen_ = 0;           // guarded by mu_
  std::vector<WriteSample> samples_;  // guarded by mu_
};

}  // namespace autopipe::drill

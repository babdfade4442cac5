// How far a backup has got while it runs, for a snapshot's PercentProgress (automated backups in
// db_backups.cc, manual snapshots and copies in db_snapshots.cc).
//
// What this offers:
//   - ProgressPercent: the rule mapping bytes done of an expected total onto a slice [from, to] of 0..100;
//   - TreeBytes: the bytes of the regular files under a folder (optionally skipping some by name);
//   - ExpectedBackupBytes: what mariadb-backup will copy of a server's data dir (everything but the binary
//     and relay logs and the redo log, which it does not copy as such);
//   - ProgressReporter: a thread that samples a target folder's size every period and reports each new percent
//     through a callback (which commits it), until it is destroyed.
//
// Thread-safety: the free functions are thread-safe. A ProgressReporter calls its callback from its own thread,
// never with any lock of this file held; the destructor waits for a call in progress.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

namespace autopipe::rds {

// from + (to - from) * done / total, clamped to [from, to] and rounded down; `from` when total <= 0.
int ProgressPercent(int64_t done, int64_t total, int from, int to);

// Bytes of every regular file under `dir` (recursively) whose file name `skip` does not refuse. 0 when dir is
// missing. Files vanishing while it runs are ignored.
int64_t TreeBytes(const std::string& dir, const std::function<bool(const std::string& name)>& skip = nullptr);

// What a full mariadb-backup of the server whose data dir is `data_dir` writes, about: its files without the
// binary log (db-bin.*), relay logs, redo log (ib_logfile*) and temporary tablespace (ibtmp*).
int64_t ExpectedBackupBytes(const std::string& data_dir);

class ProgressReporter {
 public:
  // Samples TreeBytes(target_dir) every period_ms and calls report(percent) (ProgressPercent of
  // expected_bytes onto [from, to]) whenever the percent grew.
  ProgressReporter(std::string target_dir, int64_t expected_bytes, int from, int to, std::function<void(int)> report,
                   int period_ms = 200);
  ~ProgressReporter();  // stops and joins
  ProgressReporter(const ProgressReporter&) = delete;
  ProgressReporter& operator=(const ProgressReporter&) = delete;

 private:
  void Run();

  const std::string target_dir_;
  const int64_t expected_;
  const int from_, to_;
  const std::function<void(int)> report_;
  const int period_ms_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;  // guarded by mu_
  std::thread thread_;
};

}  // namespace autopipe::rds

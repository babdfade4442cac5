#include "rds/backup_progress.h"

#include <algorithm>
#include <chrono>
#include <filesystem>

namespace fs = std::filesystem;

namespace autopipe::rds {

int ProgressPercent(int64_t done, int64_t total, int from, int to) {
  if (total <= 0 || done <= 0) return from;
  if (done >= total) return to;
  // done < total here, so the product stays well inside int64 for any real size.
  const int64_t span = to - from;
  return from + static_cast<int>(span * done / total);
}

int64_t TreeBytes(const std::string& dir, const std::function<bool(const std::string&)>& skip) {
  int64_t total = 0;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, fs::directory_options::skip_permission_denied, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    std::error_code fec;
    if (!it->is_regular_file(fec) || fec) continue;
    if (skip && skip(it->path().filename().string())) continue;
    const auto size = it->file_size(fec);
    if (!fec) total += static_cast<int64_t>(size);
  }
  return total;
}

int64_t ExpectedBackupBytes(const std::string& data_dir) {
  return TreeBytes(data_dir, [](const std::string& name) {
    return name.rfind("db-bin.", 0) == 0 || name.find("relay") != std::string::npos ||
           name.rfind("ib_logfile", 0) == 0 || name.rfind("ibtmp", 0) == 0;
  });
}

ProgressReporter::ProgressReporter(std::string target_dir, int64_t expected_bytes, int from, int to,
                                   std::function<void(int)> report, int period_ms)
    : target_dir_(std::move(target_dir)),
      expected_(expected_bytes),
      from_(from),
      to_(to),
      report_(std::move(report)),
      period_ms_(period_ms) {
  thread_ = std::thread([this] { Run(); });
}

ProgressReporter::~ProgressReporter() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void ProgressReporter::Run() {
  int last = from_;
  std::unique_lock lock(mu_);
  while (!cv_.wait_for(lock, std::chrono::milliseconds(period_ms_), [this] { return stop_; })) {
    lock.unlock();
    const int pct = ProgressPercent(TreeBytes(target_dir_), expected_, from_, to_);
    if (pct > last) {
      last = pct;
      report_(pct);
    }
    lock.lock();
  }
}

}  // namespace autopipe::rds

// BackgroundJobs: one thread per key for a controller whose work is too slow for a pass (a backup, a snapshot, a
// restore). A pass starts the key's job and returns; later passes ask Running() until it is done, which joins the
// finished thread. The job records its own outcome in the store.
//
// Thread-safety: every method is safe from any thread. The destructor (and JoinAll) wait for every job, so a
// controller calls JoinAll() first in its own destructor, while what its jobs use is still alive.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

namespace autopipe {

class BackgroundJobs {
 public:
  BackgroundJobs() = default;
  BackgroundJobs(const BackgroundJobs&) = delete;
  BackgroundJobs& operator=(const BackgroundJobs&) = delete;
  ~BackgroundJobs() { JoinAll(); }

  // Runs `work` on a thread of its own unless `key` already has a job (running, or finished and not yet collected
  // by Running()). Returns whether it started one.
  bool Start(const std::string& key, std::function<void()> work) {
    std::lock_guard lock(mu_);
    if (jobs_.count(key)) return false;
    auto job = std::make_unique<Job>();
    Job* j = job.get();
    j->thread = std::thread([this, j, work = std::move(work)] {
      work();
      std::lock_guard done_lock(mu_);
      j->done = true;
    });
    jobs_[key] = std::move(job);
    return true;
  }

  // True while `key`'s job runs. A finished job is joined and forgotten (false).
  bool Running(const std::string& key) {
    std::unique_ptr<Job> finished;
    {
      std::lock_guard lock(mu_);
      auto it = jobs_.find(key);
      if (it == jobs_.end()) return false;
      if (!it->second->done) return true;
      finished = std::move(it->second);
      jobs_.erase(it);
    }
    finished->thread.join();
    return false;
  }

  // Waits for every job (no new one may be started meanwhile).
  void JoinAll() {
    std::map<std::string, std::unique_ptr<Job>> jobs;
    {
      std::lock_guard lock(mu_);
      jobs.swap(jobs_);
    }
    for (auto& [key, job] : jobs) {
      if (job->thread.joinable()) job->thread.join();
    }
  }

 private:
  struct Job {
    std::thread thread;
    bool done = false;  // guarded by mu_
  };
  std::mutex mu_;
  std::map<std::string, std::unique_ptr<Job>> jobs_;  // guarded by mu_
};

}  // namespace autopipe

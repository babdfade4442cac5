#include "sample/sample_app.h"

#include <dirent.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>

#include <httplib.h>
#include <nlohmann/json.hpp>

namespace autopipe {

namespace {

// httplib serves each connection on one task for its whole keep-alive life. With a fixed pool, clients that
// hold connections open (a load balancer's keep-alive pool, wrk -c100 moved onto one instance) took every
// worker and a new connection, the health check's, waited in the queue until it timed out: ELB then replaced
// a healthy instance. So every connection gets a thread of its own, up to kMaxConnectionThreads.
constexpr size_t kMaxConnectionThreads = 4096;
constexpr size_t kKeepAliveMaxRequests = 10000;
constexpr int kIdleGraceTicks = 20;  // 10 ms each: requests already arriving get this long to be read

struct Identity {
  std::string instance_id;
  std::string private_ip;
  std::string availability_zone;
  std::string region;
  std::string hostname;
  int pid = 0;
};

std::string Env(const char* name) {
  const char* value = getenv(name);
  return value == nullptr ? "" : value;
}

Identity ReadIdentity() {
  Identity id;
  id.instance_id = Env("AUTOPIPE_INSTANCE_ID");
  id.private_ip = Env("AUTOPIPE_PRIVATE_IP");
  id.availability_zone = Env("AUTOPIPE_AVAILABILITY_ZONE");
  id.region = Env("AUTOPIPE_REGION");
  char host[256] = {};
  if (gethostname(host, sizeof(host) - 1) == 0) id.hostname = host;
  id.pid = static_cast<int>(getpid());
  return id;
}

// One thread per connection, up to kMaxConnectionThreads (then new connections wait for one to end). A
// thread that finishes its connection takes the next waiting one before it exits.
class ThreadPerConnection : public httplib::TaskQueue {
 public:
  void enqueue(std::function<void()> fn) override {
    std::lock_guard lock(mu_);
    if (running_ >= kMaxConnectionThreads) {
      waiting_.push_back(std::move(fn));
      return;
    }
    ++running_;
    std::thread([this, task = std::move(fn)]() mutable { Run(std::move(task)); }).detach();
  }

  // Returns once every connection's task has ended (httplib calls it after the listener stopped).
  void shutdown() override {
    std::unique_lock lock(mu_);
    done_.wait(lock, [&] { return running_ == 0; });
  }

 private:
  void Run(std::function<void()> task) {
    while (true) {
      task();
      std::lock_guard lock(mu_);
      if (waiting_.empty()) {
        --running_;
        done_.notify_all();
        return;
      }
      task = std::move(waiting_.front());
      waiting_.pop_front();
    }
  }

  std::mutex mu_;
  std::condition_variable done_;
  size_t running_ = 0;                          // guarded by mu_
  std::deque<std::function<void()>> waiting_;   // guarded by mu_
};

void Print(const std::string& line) {
  std::fprintf(stdout, "sample-app: %s\n", line.c_str());
  std::fflush(stdout);
}

void AddRoutes(httplib::Server& server, const Identity& id, std::atomic<uint64_t>& request_count) {
  server.Get("/", [&id, &request_count](const httplib::Request&, httplib::Response& res) {
    nlohmann::json body = {
        {"service", "auto-pipeline-sample"},
        {"instance_id", id.instance_id},
        {"private_ip", id.private_ip},
        {"availability_zone", id.availability_zone},
        {"region", id.region},
        {"hostname", id.hostname},
        {"pid", id.pid},
        {"request_count", ++request_count},
    };
    res.set_content(body.dump() + "\n", "application/json");
  });
  // GET /health answers 200 "ok" until POST /health/fail (a way to make a live instance fail its load
  // balancer's health check, as a wedged application would); POST /health/pass undoes it.
  static std::atomic<bool> failing{false};
  server.Get("/health", [](const httplib::Request&, httplib::Response& res) {
    if (failing.load()) {
      res.status = 500;
      res.set_content("failing", "text/plain");
    } else {
      res.set_content("ok", "text/plain");
    }
  });
  server.Post("/health/fail", [](const httplib::Request&, httplib::Response& res) {
    failing = true;
    res.set_content("failing", "text/plain");
  });
  server.Post("/health/pass", [](const httplib::Request&, httplib::Response& res) {
    failing = false;
    res.set_content("ok", "text/plain");
  });
  // What reached the instance: the request headers as a JSON object (to see a load balancer's X-Forwarded-*).
  server.Get("/headers", [&id](const httplib::Request& req, httplib::Response& res) {
    nlohmann::json headers = nlohmann::json::object();
    for (const auto& [name, value] : req.headers) headers[name] = value;
    nlohmann::json body = {{"instance_id", id.instance_id}, {"headers", headers}};
    res.set_content(body.dump() + "\n", "application/json");
  });
  // A slow request: answers after ?ms= milliseconds (at most 60 s), for draining and timeout tests.
  server.Get("/sleep", [&id](const httplib::Request& req, httplib::Response& res) {
    long ms = req.has_param("ms") ? std::strtol(req.get_param_value("ms").c_str(), nullptr, 10) : 1000;
    ms = std::clamp(ms, 0L, 60000L);
    std::this_thread::sleep_for(std::chrono::milliseconds(ms));
    res.set_content(nlohmann::json({{"instance_id", id.instance_id}, {"slept_ms", ms}}).dump() + "\n",
                    "application/json");
  });
  // A CPU-bound request: spins for ?ms= milliseconds of wall time (at most 10 s), for load spikes that CloudWatch's
  // CPUUtilization sees (bench/alarm_bench.py drives scaling with it through the load balancer).
  server.Get("/burn", [&id](const httplib::Request& req, httplib::Response& res) {
    long ms = req.has_param("ms") ? std::strtol(req.get_param_value("ms").c_str(), nullptr, 10) : 100;
    ms = std::clamp(ms, 0L, 10000L);
    const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
    volatile uint64_t spins = 0;
    while (std::chrono::steady_clock::now() < until) {
      for (int i = 0; i < 1000; ++i) spins = spins + 1;
    }
    res.set_content(nlohmann::json({{"instance_id", id.instance_id}, {"burned_ms", ms}}).dump() + "\n",
                    "application/json");
  });
  // Echoes the request body (and its length) back: for streaming bodies through a load balancer.
  server.Post("/echo", [](const httplib::Request& req, httplib::Response& res) {
    res.set_header("X-Body-Length", std::to_string(req.body.size()));
    res.set_content(req.body, "application/octet-stream");
  });
}

// httplib only notices a stop between requests, so a worker waiting on an idle keep-alive connection would hold
// shutdown for the whole keep-alive timeout. Shutting down the read side of every socket we own ends those waits
// at once, while responses still being written can complete.
void EndIdleConnections() {
  DIR* dir = opendir("/proc/self/fd");
  if (dir == nullptr) return;
  const int dir_fd = dirfd(dir);
  while (dirent* entry = readdir(dir)) {
    char* end = nullptr;
    long fd = strtol(entry->d_name, &end, 10);
    if (end == entry->d_name || *end != '\0' || fd == dir_fd) continue;
    struct stat st;
    if (fstat(static_cast<int>(fd), &st) == 0 && S_ISSOCK(st.st_mode)) shutdown(static_cast<int>(fd), SHUT_RD);
  }
  closedir(dir);
}

// Stops the server when SIGTERM or SIGINT arrives. Both must already be blocked in every thread, so only
// sigwait here ever sees them.
class SignalStopper {
 public:
  SignalStopper(httplib::Server& server, const sigset_t& signals)
      : server_(server), signals_(signals), thread_([this] { Run(); }) {}

  // Call once listening has ended (or never started).
  void Finish() {
    done_ = true;
    pthread_kill(thread_.native_handle(), SIGTERM);  // wakes sigwait if no signal came
    thread_.join();
  }

 private:
  void Run() {
    int sig = 0;
    if (sigwait(&signals_, &sig) != 0 || done_) return;
    Print(std::string("got ") + (sig == SIGINT ? "SIGINT" : "SIGTERM") + ", stopping");
    // stop() is a no-op until listening has begun, so repeat it until the listener has returned.
    for (int i = 0; i < 3000 && !done_; ++i) {
      server_.stop();
      if (i == kIdleGraceTicks) EndIdleConnections();
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }

  httplib::Server& server_;
  sigset_t signals_;
  std::atomic<bool> done_{false};
  std::thread thread_;
};

}  // namespace

int RunSampleApp(const std::string& host, int port) {
  sigset_t stop_signals, saved;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  // Blocked before any thread starts, so every worker inherits the mask.
  pthread_sigmask(SIG_BLOCK, &stop_signals, &saved);

  const Identity id = ReadIdentity();
  std::atomic<uint64_t> request_count{0};
  httplib::Server server;
  server.new_task_queue = [] { return new ThreadPerConnection(); };
  server.set_keep_alive_max_count(kKeepAliveMaxRequests);
  server.set_payload_max_length(64 * 1024 * 1024);  // POST /echo takes bodies up to 64 MiB
  server.set_tcp_nodelay(true);  // headers and body go out in separate writes; Nagle would delay the second
  // httplib's default sets SO_REUSEPORT, which would let a second server bind the same address silently.
  server.set_socket_options([](socket_t sock) {
    int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
  });
  AddRoutes(server, id, request_count);

  SignalStopper stopper(server, stop_signals);
  int code = 0;
  errno = 0;
  if (!server.bind_to_port(host, port)) {
    int err = errno;  // 0 when the host did not resolve
    Print("cannot listen on " + host + ":" + std::to_string(port) + ": " +
          (err != 0 ? std::strerror(err) : "invalid address"));
    code = 1;
  } else {
    Print("listening on " + host + ":" + std::to_string(port) + " instance " + id.instance_id);
    server.listen_after_bind();
    Print("stopped");
  }
  stopper.Finish();
  // A second SIGTERM (say, one to the whole instance after one to us) may still be pending; once unblocked it
  // would kill us on the way out.
  timespec no_wait{0, 0};
  for (int i = 0; i < 64 && sigtimedwait(&stop_signals, nullptr, &no_wait) > 0; ++i) {
  }
  pthread_sigmask(SIG_SETMASK, &saved, nullptr);
  return code;
}

}  // namespace autopipe

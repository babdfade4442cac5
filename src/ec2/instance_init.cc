#include "ec2/instance_init.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

extern char** environ;

namespace autopipe {

namespace {

using Clock = std::chrono::steady_clock;

constexpr auto kGracePeriod = std::chrono::seconds(5);
constexpr long kTickNanos = 100 * 1000 * 1000;  // how often the loop wakes without a signal

// One line on stdout (the instance's console log). write(2) rather than stdio so nothing sits in a buffer
// that a fork would copy.
void Say(const char* fmt, ...) {
  char buf[1024];
  int n = snprintf(buf, sizeof(buf), "autopipe-init: ");
  va_list ap;
  va_start(ap, fmt);
  int m = vsnprintf(buf + n, sizeof(buf) - n - 1, fmt, ap);
  va_end(ap);
  size_t len = static_cast<size_t>(n) + std::min<size_t>(m < 0 ? 0 : m, sizeof(buf) - n - 2);
  buf[len++] = '\n';
  for (size_t off = 0; off < len;) {
    ssize_t w = write(STDOUT_FILENO, buf + off, len - off);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) break;
    off += static_cast<size_t>(w);
  }
}

int ExitCodeOf(int wait_status) {
  if (WIFEXITED(wait_status)) return WEXITSTATUS(wait_status);
  if (WIFSIGNALED(wait_status)) return 128 + WTERMSIG(wait_status);
  return 1;
}

// Forks and execs argv[0] with the inherited environment. The child stays in our process group so a group
// signal reaches it, and gets back the signal mask we had before blocking the ones we wait for.
// `exec_path` (when not empty) is what is exec'd instead of args[0], which stays the program's argv[0]; an
// `exec_fd` >= 0 is exec'd instead of either (and closed in the parent).
pid_t Spawn(const std::vector<std::string>& args, const std::string& cwd, const sigset_t& child_mask,
            const std::string& exec_path = "", int exec_fd = -1) {
  std::vector<std::string> storage = args;
  std::vector<char*> argv;
  for (auto& s : storage) argv.push_back(s.data());
  argv.push_back(nullptr);
  const std::string failure = "autopipe-init: cannot run " + args[0] + "\n";
  const char* path = exec_path.empty() ? argv[0] : exec_path.c_str();

  pid_t pid = fork();
  if (pid != 0) {
    if (exec_fd >= 0) close(exec_fd);
    return pid;
  }
  // Child: async-signal-safe calls only.
  sigprocmask(SIG_SETMASK, &child_mask, nullptr);
  if (!cwd.empty() && chdir(cwd.c_str()) != 0) {
    ssize_t ignored = write(STDERR_FILENO, failure.data(), failure.size());
    (void)ignored;
    _exit(127);
  }
  if (exec_fd >= 0) {
    syscall(SYS_execveat, exec_fd, "", argv.data(), environ, AT_EMPTY_PATH);
  } else {
    execve(path, argv.data(), environ);
  }
  ssize_t ignored = write(STDERR_FILENO, failure.data(), failure.size());
  (void)ignored;
  _exit(127);
}

// A relative `file` names it from our working directory; it stays relative when the script runs there too, since
// an instance with an identity of its own cannot search the data dir its folder's absolute path goes through.
std::optional<std::vector<std::string>> UserDataCommand(const std::string& file, const std::string& work_dir) {
  std::string path = file;
  if (!path.empty() && path[0] != '/') {
    if (work_dir.empty() || work_dir == ".") {
      if (path.find('/') == std::string::npos) path = "./" + path;  // so exec does not search PATH
    } else {
      std::error_code ec;
      path = std::filesystem::absolute(file, ec).string();
      if (ec) return std::nullopt;
    }
  }
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  char head[2] = {0, 0};
  ssize_t n = read(fd, head, sizeof(head));
  close(fd);
  // Like cloud-init: a script with an interpreter line runs as itself, anything else as a shell script.
  if (n == 2 && head[0] == '#' && head[1] == '!') {
    chmod(path.c_str(), 0700);
    return std::vector<std::string>{path};
  }
  return std::vector<std::string>{"/bin/sh", path};
}

struct ProcLinks {
  pid_t ppid = 0;
  pid_t pgrp = 0;
};

// ppid and pgrp from /proc/<pid>/stat; the fixed fields start after the last ')' since comm may contain one.
std::optional<ProcLinks> ReadLinks(pid_t pid) {
  char path[64];
  snprintf(path, sizeof(path), "/proc/%d/stat", static_cast<int>(pid));
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  char buf[1024];
  ssize_t n = read(fd, buf, sizeof(buf) - 1);
  close(fd);
  if (n <= 0) return std::nullopt;
  buf[n] = '\0';
  const char* p = strrchr(buf, ')');
  if (p == nullptr) return std::nullopt;
  char state = 0;
  int ppid = 0;
  int pgrp = 0;
  if (sscanf(p + 1, " %c %d %d", &state, &ppid, &pgrp) != 3) return std::nullopt;
  if (state == 'Z' || state == 'X') return std::nullopt;
  return ProcLinks{ppid, pgrp};
}

// Signals every live process in our group and every direct child (including adopted orphans that left the
// group). Repeating this after children die reaches their re-parented descendants too.
void SignalTree(int sig) {
  const pid_t self = getpid();
  const pid_t group = getpgrp();
  DIR* dir = opendir("/proc");
  if (dir == nullptr) return;
  while (dirent* entry = readdir(dir)) {
    char* end = nullptr;
    long pid = strtol(entry->d_name, &end, 10);
    if (end == entry->d_name || *end != '\0' || pid <= 0 || pid == self) continue;
    std::optional<ProcLinks> links = ReadLinks(static_cast<pid_t>(pid));
    if (links && (links->ppid == self || links->pgrp == group)) kill(static_cast<pid_t>(pid), sig);
  }
  closedir(dir);
}

class Init {
 public:
  explicit Init(const InstanceInitOptions& opts) : opts_(opts) {}

  int Run() {
    if (!opts_.service.empty() && opts_.service != "sample-app") {
      Say("unknown service '%s'", opts_.service.c_str());
      return 2;
    }
    prctl(PR_SET_CHILD_SUBREAPER, 1);
    // Lead our own group so that forwarding a signal to "the group" means exactly the instance.
    if (getpgrp() != getpid()) setpgid(0, 0);

    sigset_t waited;
    sigemptyset(&waited);
    sigaddset(&waited, SIGCHLD);
    sigaddset(&waited, SIGTERM);
    sigaddset(&waited, SIGINT);
    pthread_sigmask(SIG_BLOCK, &waited, &saved_mask_);

    StartService();
    StartUserData();
    int code = Loop(waited);
    DrainPending(waited);  // our own forwarded SIGTERM must not kill us once unblocked
    pthread_sigmask(SIG_SETMASK, &saved_mask_, nullptr);
    return code;
  }

 private:
  void StartService() {
    if (opts_.service.empty()) return;
    const char* ip = getenv("AUTOPIPE_PRIVATE_IP");
    std::string listen = std::string(ip != nullptr && *ip != '\0' ? ip : "127.0.0.1") + ":80";
    service_pid_ =
        Spawn({opts_.self_exe, "sample-app", "--listen", listen}, "", saved_mask_, opts_.self_exec_path);
    if (service_pid_ < 0) {
      Say("cannot start %s: %s", opts_.service.c_str(), strerror(errno));
      service_code_ = 1;
      return;
    }
    Say("started %s pid %d", opts_.service.c_str(), static_cast<int>(service_pid_));
  }

  void StartUserData() {
    if (opts_.user_data_file.empty()) return;
    std::optional<std::vector<std::string>> command = UserDataCommand(opts_.user_data_file, opts_.work_dir);
    if (!command) {
      Say("cannot read user data %s: %s", opts_.user_data_file.c_str(), strerror(errno));
      return;
    }
    // A script with an interpreter line is exec'd through a descriptor left open for the interpreter, which the
    // kernel hands it as /dev/fd/N: interpreters that make the script's path absolute (python3) would otherwise
    // fail where an instance cannot search the folders above its own.
    int exec_fd = -1;
    if (command->size() == 1) {
      exec_fd = open((*command)[0].c_str(), O_RDONLY);  // not close-on-exec: the interpreter reads it
      if (exec_fd < 0) {
        Say("cannot open user data %s: %s", (*command)[0].c_str(), strerror(errno));
        return;
      }
    }
    user_data_pid_ = Spawn(*command, opts_.work_dir, saved_mask_, "", exec_fd);
    if (user_data_pid_ < 0) {
      Say("cannot start user data: %s", strerror(errno));
      return;
    }
    Say("started user-data pid %d", static_cast<int>(user_data_pid_));
  }

  // Reaps whatever has exited. False once no child is left.
  bool ReapAll() {
    for (int i = 0; i < 100000; ++i) {
      int status = 0;
      pid_t pid = waitpid(-1, &status, WNOHANG);
      if (pid > 0) {
        NoteExit(pid, status);
        continue;
      }
      if (pid < 0 && errno == EINTR) continue;
      return !(pid < 0 && errno == ECHILD);
    }
    return true;
  }

  void NoteExit(pid_t pid, int status) {
    if (pid == service_pid_) {
      service_code_ = ExitCodeOf(status);
      Say("%s pid %d exited with %d", opts_.service.c_str(), static_cast<int>(pid), service_code_);
    } else if (pid == user_data_pid_) {
      Say("user-data pid %d exited with %d", static_cast<int>(pid), ExitCodeOf(status));
    }
  }

  void BeginShutdown(int sig) {
    stopping_ = true;
    kill_at_ = Clock::now() + kGracePeriod;
    Say("%s: stopping all processes", sig == SIGINT ? "SIGINT" : "SIGTERM");
    kill(0, SIGTERM);  // blocked here, so it only reaches the others; the copy we get back is ignored
    SignalTree(SIGTERM);
  }

  int Loop(const sigset_t& waited) {
    while (ReapAll()) {
      if (stopping_ && Clock::now() >= kill_at_) {
        if (!killed_) Say("grace period over: killing what is left");
        killed_ = true;
        SignalTree(SIGKILL);
      }
      timespec tick{0, kTickNanos};
      int sig = sigtimedwait(&waited, nullptr, &tick);
      if ((sig == SIGTERM || sig == SIGINT) && !stopping_) BeginShutdown(sig);
    }
    Say("no processes left; exiting with %d", service_code_);
    return service_code_;
  }

  static void DrainPending(const sigset_t& waited) {
    timespec now{0, 0};
    for (int i = 0; i < 64 && sigtimedwait(&waited, nullptr, &now) > 0; ++i) {
    }
  }

  const InstanceInitOptions& opts_;
  sigset_t saved_mask_{};
  pid_t service_pid_ = -1;
  pid_t user_data_pid_ = -1;
  int service_code_ = 0;
  bool stopping_ = false;
  bool killed_ = false;
  Clock::time_point kill_at_{};
};

}  // namespace

int RunInstanceInit(const InstanceInitOptions& opts) { return Init(opts).Run(); }

}  // namespace autopipe

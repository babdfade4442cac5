#include "process/launcher.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace autopipe {

namespace {

// Exits of watched processes are reaped at once by the exit watcher; this sweep catches the rest. Each sweep
// costs a waitpid per launched process, so with 1,000 instances a short interval is a visible idle cost.
constexpr std::chrono::milliseconds kReapInterval(1000);

// The fields of /proc/<pid>/stat this file needs.
struct ProcStat {
  char state = '?';
  pid_t pgrp = 0;
  pid_t session = 0;
  uint64_t start_time = 0;
};

bool IsGoneState(char state) { return state == 'Z' || state == 'X' || state == 'x'; }

// Parses /proc/<pid>/stat, zombies included. comm (field 2) may hold spaces and parentheses, so the fixed
// fields are read after the last ')'.
std::optional<ProcStat> ReadProcStat(pid_t pid) {
  if (pid <= 0) return std::nullopt;
  char path[64];
  snprintf(path, sizeof(path), "/proc/%d/stat", static_cast<int>(pid));
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  char buf[4096];
  ssize_t n;
  do {
    n = read(fd, buf, sizeof(buf) - 1);
  } while (n < 0 && errno == EINTR);
  close(fd);
  if (n <= 0) return std::nullopt;
  buf[n] = '\0';
  const char* p = strrchr(buf, ')');
  if (p == nullptr) return std::nullopt;
  ++p;
  // Tokens after ')': index 0 is field 3 (state), so field N is token N - 3.
  ProcStat st;
  int token = 0;
  while (*p != '\0' && token <= 19) {
    while (*p == ' ') ++p;
    if (*p == '\0') break;
    const char* begin = p;
    while (*p != ' ' && *p != '\0' && *p != '\n') ++p;
    if (token == 0) {
      st.state = *begin;
    } else if (token == 2) {
      st.pgrp = static_cast<pid_t>(strtol(begin, nullptr, 10));
    } else if (token == 3) {
      st.session = static_cast<pid_t>(strtol(begin, nullptr, 10));
    } else if (token == 19) {
      st.start_time = strtoull(begin, nullptr, 10);
      return st;
    }
    ++token;
    if (*p == '\n') break;
  }
  return std::nullopt;
}

// Everything the child needs, prepared before fork so the child never allocates.
struct ChildPlan {
  std::vector<std::string> argv_storage;
  std::vector<std::string> env_storage;
  std::vector<char*> argv;
  std::vector<char*> envp;
  std::string working_dir;
  std::string log_path;
  std::string stdin_path;
  bool set_uid = false;
  bool set_gid = false;
  uid_t uid = 0;
  gid_t gid = 0;
  bool keep_net_bind_service = false;
  std::string cgroup_procs;  // "<cgroup>/cgroup.procs" to join before anything else, "" for none
  int max_fd = 0;  // for the close loop when close_range is unavailable
};

ChildPlan MakePlan(const LaunchSpec& spec) {
  ChildPlan plan;
  plan.argv_storage = spec.argv;
  for (const auto& [key, value] : spec.env) plan.env_storage.push_back(key + "=" + value);
  for (auto& s : plan.argv_storage) plan.argv.push_back(s.data());
  plan.argv.push_back(nullptr);
  for (auto& s : plan.env_storage) plan.envp.push_back(s.data());
  plan.envp.push_back(nullptr);
  plan.working_dir = spec.working_dir;
  plan.log_path = spec.log_path;
  plan.stdin_path = spec.stdin_path;
  plan.set_uid = spec.uid.has_value();
  plan.set_gid = spec.gid.has_value();
  plan.uid = spec.uid.value_or(0);
  plan.gid = spec.gid.value_or(0);
  plan.keep_net_bind_service = spec.uid.has_value() && spec.keep_net_bind_service;
  rlimit rl{};
  plan.max_fd = 65536;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < 1048576) {
    plan.max_fd = static_cast<int>(rl.rlim_cur);
  }
  return plan;
}

// What the child writes to the error pipe when it cannot exec.
struct ChildError {
  int stage;
  int error;
};

enum ChildStage : int {
  kStageDevNull = 1,
  kStageLog,
  kStageDup,
  kStageChdir,
  kStageOpenExe,
  kStageIdentity,
  kStageCapabilities,
  kStageExec,
  kStageCgroup,
  kStageStdin
};

const char* StageName(int stage) {
  switch (stage) {
    case kStageDevNull: return "open /dev/null";
    case kStageLog: return "open log file";
    case kStageDup: return "redirect stdio";
    case kStageChdir: return "chdir to working dir";
    case kStageOpenExe: return "open the executable";
    case kStageIdentity: return "change uid/gid";
    case kStageCapabilities: return "keep CAP_NET_BIND_SERVICE";
    case kStageExec: return "exec";
    case kStageCgroup: return "join its cgroup";
    case kStageStdin: return "open its stdin file";
    default: return "start child";
  }
}

// ---- Child side: async-signal-safe calls only from here to execve. ----

[[noreturn]] void ChildFail(int err_fd, int stage) {
  ChildError e{stage, errno};
  ssize_t ignored = write(err_fd, &e, sizeof(e));
  (void)ignored;
  _exit(127);
}

// Moves fd to a number >= 3 so the dup2 calls onto 0, 1 and 2 cannot clobber it.
int MoveAbove2(int fd) {
  if (fd < 0 || fd > 2) return fd;
  return fcntl(fd, F_DUPFD_CLOEXEC, 3);
}

void CloseRange(unsigned first, unsigned last, int max_fd) {
  if (first > last) return;
#ifdef SYS_close_range
  if (syscall(SYS_close_range, first, last, 0) == 0) return;
#endif
  unsigned end = last < static_cast<unsigned>(max_fd) ? last : static_cast<unsigned>(max_fd);
  for (unsigned fd = first; fd <= end; ++fd) close(static_cast<int>(fd));
}

void ResetSignals() {
  struct sigaction dfl;
  memset(&dfl, 0, sizeof(dfl));
  dfl.sa_handler = SIG_DFL;
  sigemptyset(&dfl.sa_mask);
  for (int sig = 1; sig < NSIG; ++sig) {
    if (sig == SIGKILL || sig == SIGSTOP) continue;
    sigaction(sig, &dfl, nullptr);  // fails harmlessly for signals reserved by libc
  }
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
}

// Becomes plan.uid/plan.gid with raw system calls: the child has one thread, and glibc's wrappers would try to
// change every thread of the parent's image. With keep_net_bind_service, CAP_NET_BIND_SERVICE survives the uid
// change (PR_SET_KEEPCAPS) and is made ambient, so the programs exec'd from here keep it too.
// Returns 0, or the stage that failed (errno tells why).
int ChangeIdentity(const ChildPlan& plan) {
  if (plan.keep_net_bind_service && prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) != 0) return kStageCapabilities;
  if (syscall(SYS_setgroups, 0, nullptr) != 0) return kStageIdentity;
  if (plan.set_gid && syscall(SYS_setresgid, plan.gid, plan.gid, plan.gid) != 0) return kStageIdentity;
  if (plan.set_uid && syscall(SYS_setresuid, plan.uid, plan.uid, plan.uid) != 0) return kStageIdentity;
  if (plan.keep_net_bind_service) {
    __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
    __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = {};
    const uint32_t bit = 1U << CAP_NET_BIND_SERVICE;  // capability 10: in the first word
    data[0].effective = bit;
    data[0].permitted = bit;
    data[0].inheritable = bit;
    if (syscall(SYS_capset, &header, data) != 0) return kStageCapabilities;
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_NET_BIND_SERVICE, 0, 0) != 0) return kStageCapabilities;
  }
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return kStageIdentity;
  return 0;
}

[[noreturn]] void RunChild(const ChildPlan& plan, int err_fd) {
  setsid();
  err_fd = MoveAbove2(err_fd);
  if (err_fd < 0) _exit(127);

  // Into its cgroup first, before it can start anything ("0" means the writer itself).
  if (!plan.cgroup_procs.empty()) {
    int cg = open(plan.cgroup_procs.c_str(), O_WRONLY | O_CLOEXEC);
    if (cg < 0 || write(cg, "0", 1) != 1) ChildFail(err_fd, kStageCgroup);
    close(cg);
  }

  int null_fd = MoveAbove2(open("/dev/null", O_RDWR));
  if (null_fd < 0) ChildFail(err_fd, kStageDevNull);
  int log_fd = null_fd;
  if (!plan.log_path.empty()) {
    log_fd = MoveAbove2(open(plan.log_path.c_str(), O_WRONLY | O_APPEND | O_CREAT, 0600));
    if (log_fd < 0) ChildFail(err_fd, kStageLog);
  }
  int in_fd = null_fd;
  if (!plan.stdin_path.empty()) {
    // Opened as the caller: the file may be one the new uid cannot reach (a node's 0600 settings with secrets).
    in_fd = MoveAbove2(open(plan.stdin_path.c_str(), O_RDONLY));
    if (in_fd < 0) ChildFail(err_fd, kStageStdin);
  }
  if (dup2(in_fd, 0) < 0 || dup2(log_fd, 1) < 0 || dup2(log_fd, 2) < 0) ChildFail(err_fd, kStageDup);

  if (!plan.working_dir.empty() && chdir(plan.working_dir.c_str()) != 0) ChildFail(err_fd, kStageChdir);

  // err_fd is close-on-exec: it stays open only until execve succeeds.
  CloseRange(3, static_cast<unsigned>(err_fd) - 1, plan.max_fd);
  CloseRange(static_cast<unsigned>(err_fd) + 1, ~0U, plan.max_fd);

  ResetSignals();
  if (!plan.set_uid && !plan.set_gid) {
    execve(plan.argv[0], plan.argv.data(), plan.envp.data());
    ChildFail(err_fd, kStageExec);
  }
  // Opened while still the caller: the new uid may not be able to search the executable's folders.
  int exe_fd = open(plan.argv[0], O_PATH | O_CLOEXEC);
  if (exe_fd < 0) ChildFail(err_fd, kStageOpenExe);
  if (int stage = ChangeIdentity(plan); stage != 0) ChildFail(err_fd, stage);
  syscall(SYS_execveat, exe_fd, "", plan.argv.data(), plan.envp.data(), AT_EMPTY_PATH);
  ChildFail(err_fd, kStageExec);
}

// ---- Parent side. ----

// Reads the child's exec report: nullopt when the pipe closed without one (exec succeeded).
std::optional<ChildError> ReadChildError(int fd) {
  ChildError e{};
  size_t got = 0;
  auto* bytes = reinterpret_cast<char*>(&e);
  while (got < sizeof(e)) {
    ssize_t n = read(fd, bytes + got, sizeof(e) - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += static_cast<size_t>(n);
  }
  if (got < sizeof(e)) return std::nullopt;
  return e;
}

void WaitBlocking(pid_t pid) {
  while (waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
  }
}

}  // namespace

std::optional<uint64_t> ProcessStartTime(pid_t pid) {
  auto st = ReadProcStat(pid);
  if (!st || IsGoneState(st->state)) return std::nullopt;
  return st->start_time;
}

namespace {

// ---- cgroup v2 ----

bool ReadSmallFile(const std::string& path, std::string* out) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  out->clear();
  char buf[4096];
  ssize_t n;
  while ((n = read(fd, buf, sizeof buf)) > 0 && out->size() < (1 << 22)) out->append(buf, static_cast<size_t>(n));
  close(fd);
  return n >= 0;
}

bool WriteSmallFile(const std::string& path, const std::string& text) {
  int fd = open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return false;
  bool ok = write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  close(fd);
  return ok;
}

// Where cgroup2 is mounted ("" when it is not), from /proc/self/mountinfo: "... - cgroup2 ...".
std::string Cgroup2Mount() {
  std::string info;
  if (!ReadSmallFile("/proc/self/mountinfo", &info)) return "";
  size_t at = 0;
  while (at < info.size()) {
    size_t eol = info.find('\n', at);
    if (eol == std::string::npos) eol = info.size();
    const std::string line = info.substr(at, eol - at);
    at = eol + 1;
    size_t dash = line.find(" - ");
    if (dash == std::string::npos || line.compare(dash + 3, 8, "cgroup2 ") != 0) continue;
    // Field 5 is the mount point (fields are space-separated; octal escapes for spaces are not expected here).
    size_t pos = 0;
    for (int field = 0; field < 4 && pos != std::string::npos; ++field) pos = line.find(' ', pos + 1);
    if (pos == std::string::npos) continue;
    size_t end = line.find(' ', pos + 1);
    return line.substr(pos + 1, end - pos - 1);
  }
  return "";
}

// The cgroup v2 path of `pid` ("0::/path" in /proc/<pid>/cgroup), "" when unknown.
std::string CgroupPathOf(const std::string& pid) {
  std::string text;
  if (!ReadSmallFile("/proc/" + pid + "/cgroup", &text)) return "";
  size_t at = text.find("0::");
  if (at == std::string::npos || (at != 0 && text[at - 1] != '\n')) return "";
  size_t eol = text.find('\n', at);
  return text.substr(at + 3, (eol == std::string::npos ? text.size() : eol) - at - 3);
}

// "<mount><our cgroup>/autopipe" when it exists or can be made and a process can be moved into a cgroup under
// it (tried with a probe folder: a read-only or delegated-away hierarchy fails here, not at the first launch).
std::string FindCgroupRoot() {
  const std::string mount = Cgroup2Mount();
  if (mount.empty()) return "";
  std::string own = CgroupPathOf("self");
  if (own.empty() || own[0] != '/') return "";
  if (own == "/") own.clear();
  const std::string root = mount + own + "/autopipe";
  if (mkdir(root.c_str(), 0755) != 0 && errno != EEXIST) return "";
  if (access((root + "/cgroup.procs").c_str(), W_OK) != 0) return "";
  return root;
}

// Live (non-zombie) pids listed in a cgroup (and its descendants: cgroup.procs of each sub-folder).
std::vector<pid_t> CgroupMembers(const std::string& cgroup) {
  std::vector<pid_t> out;
  std::vector<std::string> todo = {cgroup};
  for (size_t guard = 0; !todo.empty() && guard < 1000; ++guard) {
    const std::string dir = todo.back();
    todo.pop_back();
    std::string procs;
    if (ReadSmallFile(dir + "/cgroup.procs", &procs)) {
      for (size_t at = 0; at < procs.size();) {
        char* end = nullptr;
        long pid = strtol(procs.c_str() + at, &end, 10);
        if (end == procs.c_str() + at) break;
        at = static_cast<size_t>(end - procs.c_str()) + 1;
        auto st = ReadProcStat(static_cast<pid_t>(pid));
        if (pid > 0 && st && !IsGoneState(st->state)) out.push_back(static_cast<pid_t>(pid));
      }
    }
    if (DIR* d = opendir(dir.c_str())) {
      while (dirent* e = readdir(d)) {
        if (e->d_type == DT_DIR && e->d_name[0] != '.') todo.push_back(dir + "/" + e->d_name);
      }
      closedir(d);
    }
  }
  return out;
}

bool CgroupExists(const std::string& cgroup) {
  return !cgroup.empty() && access((cgroup + "/cgroup.procs").c_str(), F_OK) == 0;
}

// Every non-zombie process with its parent, group and session, from one /proc scan.
struct ProcEntry {
  pid_t pid;
  pid_t ppid;
  pid_t pgrp;
  pid_t session;
};

std::vector<ProcEntry> ScanProc() {
  std::vector<ProcEntry> out;
  DIR* dir = opendir("/proc");
  if (dir == nullptr) return out;
  while (dirent* entry = readdir(dir)) {
    char* end = nullptr;
    long pid = strtol(entry->d_name, &end, 10);
    if (end == entry->d_name || *end != '\0' || pid <= 0) continue;
    char path[64];
    snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
    std::string text;
    if (!ReadSmallFile(path, &text)) continue;
    size_t close = text.rfind(')');
    if (close == std::string::npos || close + 2 >= text.size()) continue;
    char state = '?';
    long ppid = 0, pgrp = 0, session = 0;
    if (sscanf(text.c_str() + close + 2, "%c %ld %ld %ld", &state, &ppid, &pgrp, &session) != 4) continue;
    if (IsGoneState(state)) continue;
    out.push_back({static_cast<pid_t>(pid), static_cast<pid_t>(ppid), static_cast<pid_t>(pgrp),
                   static_cast<pid_t>(session)});
  }
  closedir(dir);
  return out;
}

// Without a cgroup: the process group and the session `leader` leads, and every descendant of any of them
// (a child that called setsid or setpgid stays a descendant while its ancestors live: instance-init is a
// subreaper, so orphans are re-parented to it rather than to init).
std::vector<pid_t> TreeMembersWithoutCgroup(pid_t leader) {
  const std::vector<ProcEntry> all = ScanProc();
  std::set<pid_t> members;
  for (const auto& e : all) {
    if (e.pid == leader || e.pgrp == leader || e.session == leader) members.insert(e.pid);
  }
  // Descendants, to a fixed point (bounded by the number of processes).
  for (size_t round = 0; round <= all.size(); ++round) {
    bool grew = false;
    for (const auto& e : all) {
      if (!members.count(e.pid) && members.count(e.ppid)) grew = members.insert(e.pid).second || grew;
    }
    if (!grew) break;
  }
  return {members.begin(), members.end()};
}

}  // namespace

std::vector<pid_t> ProcessTreeMembers(const ProcessId& id) {
  if (CgroupExists(id.cgroup)) return CgroupMembers(id.cgroup);
  if (id.pid <= 1) return {};
  std::optional<ProcStat> leader = ReadProcStat(id.pid);
  // A live process under this pid with another start time means the pid was reused: Linux does not reuse a pid
  // while a group or session still carries it, so nothing of ours is left under that id.
  if (leader && leader->start_time != id.start_time) return {};
  return TreeMembersWithoutCgroup(id.pid);
}

namespace {

// The reaper waits on exactly the pids the launchers started, never with waitpid(-1): the server has other
// children whose exit statuses belong to someone else.
class Reaper {
 public:
  Reaper() : thread_([this] { Loop(); }) {}
  ~Reaper() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }

  void Add(pid_t pid) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      pids_.insert(pid);
    }
    cv_.notify_all();
  }

 private:
  void Loop() {
    std::unique_lock<std::mutex> lock(mu_);
    while (!stop_) {
      if (pids_.empty()) {
        cv_.wait(lock, [this] { return stop_ || !pids_.empty(); });
        continue;
      }
      ReapOnce();
      cv_.wait_for(lock, kReapInterval, [this] { return stop_; });
    }
    ReapOnce();
  }

  // Called with mu_ held; waitpid with WNOHANG never blocks.
  void ReapOnce() {
    for (auto it = pids_.begin(); it != pids_.end();) {
      pid_t r = waitpid(*it, nullptr, WNOHANG);
      if (r == *it || (r < 0 && errno == ECHILD)) {
        it = pids_.erase(it);
      } else {
        ++it;
      }
    }
  }

  std::mutex mu_;
  std::condition_variable cv_;
  std::set<pid_t> pids_;
  bool stop_ = false;
  std::thread thread_;
};

// One reaper for the whole process, shared by every LocalProcessLauncher and stopped with the last of them. The
// header keeps the launcher a plain interface, so its state lives here.
std::mutex g_reaper_mu;
Reaper* g_reaper = nullptr;
int g_reaper_users = 0;

void AddToReaper(pid_t pid) {
  std::lock_guard<std::mutex> lock(g_reaper_mu);
  if (g_reaper != nullptr) g_reaper->Add(pid);
}

}  // namespace

// Watches pidfds with epoll on one thread; each exit triggers the callback once. The callback always runs on
// the watcher's thread and never under mu_ (Watch() is called from controllers that hold other locks, and a
// callback that takes one of them must not deadlock); SetCallback waits for a callback in progress, so once it
// returns the old callback is not running and never will again.
class LocalProcessLauncher::ExitWatcher {
 public:
  static Result<std::unique_ptr<ExitWatcher>> Create() {
    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0) return Status::Internal(std::string("exit watcher: epoll_create1: ") + strerror(errno));
    int kick = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (kick < 0) {
      int err = errno;
      close(ep);
      return Status::Internal(std::string("exit watcher: eventfd: ") + strerror(err));
    }
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = kick;
    if (epoll_ctl(ep, EPOLL_CTL_ADD, kick, &ev) != 0) {
      int err = errno;
      close(kick);
      close(ep);
      return Status::Internal(std::string("exit watcher: epoll_ctl: ") + strerror(err));
    }
    return std::unique_ptr<ExitWatcher>(new ExitWatcher(ep, kick));
  }

  ~ExitWatcher() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopping_ = true;
    }
    Kick();
    thread_.join();
    for (const auto& [pid, fd] : fds_) close(fd);
    close(kick_fd_);
    close(epoll_fd_);
  }

  void SetCallback(std::function<void()> cb) {
    std::lock_guard<std::mutex> calling(callback_mu_);
    callback_ = std::move(cb);
  }

  void Watch(const ProcessId& id) {
    bool gone = false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (id.pid <= 1 || fds_.count(id.pid)) return;
      int fd = static_cast<int>(syscall(SYS_pidfd_open, id.pid, 0));
      // The pid may have been reused between the caller's check and pidfd_open.
      std::optional<uint64_t> start = fd < 0 ? std::nullopt : ProcessStartTime(id.pid);
      if (fd < 0 || !start || *start != id.start_time) {
        if (fd >= 0) close(fd);
        gone = true;
      } else {
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.fd = fd;
        if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev) != 0) {
          close(fd);  // unwatched: the periodic resync still notices its exit
          return;
        }
        fds_[id.pid] = fd;
        pids_by_fd_[fd] = id.pid;
      }
    }
    // Already gone: the callback runs on the watcher's thread, like every other exit.
    if (gone) {
      pending_exit_ = true;
      Kick();
    }
  }

 private:
  ExitWatcher(int epoll_fd, int kick_fd)
      : epoll_fd_(epoll_fd), kick_fd_(kick_fd), thread_([this] { Loop(); }) {}

  void Kick() {
    uint64_t one = 1;
    (void)!write(kick_fd_, &one, sizeof one);  // a full counter already means "wake up"
  }

  void Loop() {
    epoll_event events[64];
    while (true) {
      int n = epoll_wait(epoll_fd_, events, 64, -1);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return;
      bool exited = false;
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (stopping_) return;
        for (int i = 0; i < n; ++i) {
          int fd = events[i].data.fd;
          if (fd == kick_fd_) {
            uint64_t count;
            (void)!read(kick_fd_, &count, sizeof count);
            exited = exited || pending_exit_.exchange(false);
            continue;
          }
          epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, fd, nullptr);
          // Reap it now if it is our child (ECHILD otherwise, harmless); the reaper's sweep then forgets it.
          waitpid(pids_by_fd_[fd], nullptr, WNOHANG);
          fds_.erase(pids_by_fd_[fd]);
          pids_by_fd_.erase(fd);
          close(fd);
          exited = true;
        }
      }
      if (exited) {
        std::lock_guard<std::mutex> calling(callback_mu_);
        if (callback_) callback_();
      }
    }
  }

  const int epoll_fd_;
  const int kick_fd_;
  std::mutex mu_;
  bool stopping_ = false;             // guarded by mu_
  std::map<pid_t, int> fds_;          // guarded by mu_
  std::map<int, pid_t> pids_by_fd_;   // guarded by mu_
  std::atomic<bool> pending_exit_{false};
  std::mutex callback_mu_;            // held while the callback runs
  std::function<void()> callback_;    // guarded by callback_mu_
  std::thread thread_;                // last: starts after every member above is ready
};

void LocalProcessLauncher::Watch(const ProcessId& id) {
  if (watcher_) watcher_->Watch(id);
}

void LocalProcessLauncher::SetExitCallback(std::function<void()> on_exit) {
  if (watcher_) watcher_->SetCallback(std::move(on_exit));
}

LocalProcessLauncher::LocalProcessLauncher(Options options) {
  const char* env = getenv("AUTOPIPE_CGROUPS");
  if (options.use_cgroups && !(env && std::string(env) == "off")) cgroup_root_ = FindCgroupRoot();
  auto watcher = ExitWatcher::Create();
  // Without a watcher exits are still seen by every controller's periodic resync, only later.
  if (watcher.ok()) {
    watcher_ = std::move(*watcher);
  } else {
    std::fprintf(stderr, "autopipe: process exits are noticed by polling only: %s\n", watcher.status().message().c_str());
  }
  std::lock_guard<std::mutex> lock(g_reaper_mu);
  if (g_reaper_users++ == 0) g_reaper = new Reaper();
}

LocalProcessLauncher::~LocalProcessLauncher() {
  Reaper* to_stop = nullptr;
  {
    std::lock_guard<std::mutex> lock(g_reaper_mu);
    if (--g_reaper_users == 0) std::swap(to_stop, g_reaper);
  }
  delete to_stop;  // joins the thread outside the lock
}

Result<ProcessId> LocalProcessLauncher::Launch(const LaunchSpec& spec) {
  if (spec.argv.empty() || spec.argv[0].empty()) return Status::Validation("launch: empty argv");
  if (!spec.working_dir.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(spec.working_dir, ec);
    if (ec) return Status::Internal("launch: cannot create " + spec.working_dir + ": " + ec.message());
  }
  ChildPlan plan = MakePlan(spec);
  std::string cgroup;
  if (!spec.cgroup_name.empty() && !cgroup_root_.empty()) {
    if (spec.cgroup_name.find('/') != std::string::npos || spec.cgroup_name[0] == '.') {
      return Status::Validation("launch: bad cgroup name " + spec.cgroup_name);
    }
    cgroup = cgroup_root_ + "/" + spec.cgroup_name;
    if (mkdir(cgroup.c_str(), 0755) != 0) {
      if (errno != EEXIST) return Status::Internal("launch: cannot create cgroup " + cgroup + ": " + strerror(errno));
      // A leftover of an earlier launch of the same resource: nothing of it may survive into the new one.
      (void)WriteSmallFile(cgroup + "/cgroup.kill", "1");  // best effort; the launch goes on either way
    }
    plan.cgroup_procs = cgroup + "/cgroup.procs";
  }

  int pipe_fds[2];
  if (pipe2(pipe_fds, O_CLOEXEC) != 0) return Status::Internal(std::string("launch: pipe: ") + strerror(errno));

  // All signals stay blocked across fork so no handler of ours runs in the child before it resets them.
  sigset_t all, saved;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &saved);
  pid_t pid = fork();
  if (pid == 0) {
    close(pipe_fds[0]);
    RunChild(plan, pipe_fds[1]);
  }
  int fork_errno = errno;
  pthread_sigmask(SIG_SETMASK, &saved, nullptr);
  close(pipe_fds[1]);
  if (pid < 0) {
    close(pipe_fds[0]);
    return Status::Internal(std::string("launch: fork: ") + strerror(fork_errno));
  }

  std::optional<ChildError> err = ReadChildError(pipe_fds[0]);
  close(pipe_fds[0]);
  if (err) {
    WaitBlocking(pid);
    return Status::Internal("launch " + spec.argv[0] + ": " + StageName(err->stage) + ": " +
                            strerror(err->error));
  }

  // Read before handing the pid to the reaper: an unreaped child (even a zombie) still has its stat file.
  std::optional<ProcStat> st = ReadProcStat(pid);
  AddToReaper(pid);
  if (!st) return Status::Internal("launch " + spec.argv[0] + ": cannot read start time");
  return ProcessId{pid, st->start_time, cgroup};
}

bool LocalProcessLauncher::IsAlive(const ProcessId& id) {
  std::optional<uint64_t> start = ProcessStartTime(id.pid);
  return start && *start == id.start_time;
}

void LocalProcessLauncher::SignalGroup(const ProcessId& id, bool force) {
  const int sig = force ? SIGKILL : SIGTERM;
  if (CgroupExists(id.cgroup)) {
    // cgroup.kill takes every member at once, forks in flight included; SIGTERM goes to each member.
    if (force && WriteSmallFile(id.cgroup + "/cgroup.kill", "1")) return;
    for (pid_t pid : CgroupMembers(id.cgroup)) kill(pid, sig);
    return;
  }
  // kill(0) or kill(-1) would hit our own group or every process.
  if (id.pid <= 1) return;
  // A live process under this pid with another start time means the pid, and so the group id, was reused.
  std::optional<ProcStat> st = ReadProcStat(id.pid);
  if (st && st->start_time != id.start_time) return;
  if (!force) {
    // The set is read before anything is signalled: once the leader dies its orphans leave the tree.
    const std::vector<pid_t> members = TreeMembersWithoutCgroup(id.pid);
    kill(-id.pid, SIGTERM);
    for (pid_t pid : members) kill(pid, SIGTERM);
    return;
  }
  // SIGKILL: freeze first (SIGSTOP), scanning again until no new member shows up, so nothing forks between the
  // scan and the kill; then kill every member found.
  // kill() returns before the target has stopped, and a process still running may fork after a scan: each
  // round waits (briefly, bounded) until the processes it stopped are really stopped before scanning again.
  std::set<pid_t> frozen;
  for (int round = 0; round < 20; ++round) {
    std::vector<pid_t> added;
    for (pid_t pid : TreeMembersWithoutCgroup(id.pid)) {
      if (frozen.insert(pid).second) {
        kill(pid, SIGSTOP);
        added.push_back(pid);
      }
    }
    if (added.empty()) break;
    for (pid_t pid : added) {
      for (int i = 0; i < 100; ++i) {
        std::optional<ProcStat> st = ReadProcStat(pid);
        if (!st || IsGoneState(st->state) || st->state == 'T' || st->state == 't') break;
        usleep(1000);
      }
    }
  }
  for (pid_t pid : frozen) kill(pid, SIGKILL);
}

void LocalProcessLauncher::Signal(const ProcessId& id, int signo) {
  if (id.pid <= 1) return;
  int fd = static_cast<int>(syscall(SYS_pidfd_open, id.pid, 0));
  if (fd < 0) return;  // gone
  // Checked after the pidfd pins the process: a pid reused before pidfd_open shows another start time.
  std::optional<uint64_t> start = ProcessStartTime(id.pid);
  if (start && *start == id.start_time) syscall(SYS_pidfd_send_signal, fd, signo, nullptr, 0);
  close(fd);
}

std::set<pid_t> LiveProcessGroups() {
  std::set<pid_t> groups;
  DIR* dir = opendir("/proc");
  if (dir == nullptr) return groups;
  while (dirent* entry = readdir(dir)) {
    char* end = nullptr;
    long pid = strtol(entry->d_name, &end, 10);
    if (end == entry->d_name || *end != '\0' || pid <= 0) continue;
    std::optional<ProcStat> st = ReadProcStat(static_cast<pid_t>(pid));
    if (st && !IsGoneState(st->state)) groups.insert(st->pgrp);
  }
  closedir(dir);
  return groups;
}

std::multimap<std::string, ProcessId> LocalProcessLauncher::FindByLaunchToken(
    const std::set<std::string>& tokens) {
  std::multimap<std::string, ProcessId> found;
  if (tokens.empty()) return found;
  const std::string prefix = std::string(kLaunchTokenVariable) + "=";
  DIR* dir = opendir("/proc");
  if (dir == nullptr) return found;
  while (dirent* entry = readdir(dir)) {
    char* end = nullptr;
    long pid = strtol(entry->d_name, &end, 10);
    if (end == entry->d_name || *end != '\0' || pid <= 1) continue;
    std::optional<ProcStat> st = ReadProcStat(static_cast<pid_t>(pid));
    if (!st || IsGoneState(st->state) || st->session != pid) continue;  // only what Launch started (setsid)
    char path[64];
    snprintf(path, sizeof(path), "/proc/%ld/environ", pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) continue;
    std::string env;
    char buf[8192];
    ssize_t n;
    while (env.size() < (1 << 20) && (n = read(fd, buf, sizeof buf)) > 0) env.append(buf, static_cast<size_t>(n));
    close(fd);
    // NUL-separated NAME=value entries.
    for (size_t at = 0; at < env.size();) {
      size_t nul = env.find('\0', at);
      if (nul == std::string::npos) nul = env.size();
      if (env.compare(at, prefix.size(), prefix) == 0) {
        std::string token = env.substr(at + prefix.size(), nul - at - prefix.size());
        if (tokens.count(token)) {
          std::string cgroup;
          if (!cgroup_root_.empty()) {
            const std::string path = CgroupPathOf(std::to_string(pid));
            const std::string mount = Cgroup2Mount();
            if (!path.empty() && (mount + path).compare(0, cgroup_root_.size() + 1, cgroup_root_ + "/") == 0) {
              cgroup = mount + path;
            }
          }
          found.emplace(token, ProcessId{static_cast<pid_t>(pid), st->start_time, cgroup});
        }
        break;
      }
      at = nul + 1;
    }
  }
  closedir(dir);
  return found;
}

bool LocalProcessLauncher::GroupAlive(const ProcessId& id) {
  if (CgroupExists(id.cgroup)) return !CgroupMembers(id.cgroup).empty();
  if (id.pid <= 1) return false;
  std::optional<ProcStat> leader = ReadProcStat(id.pid);
  // Linux does not reuse a pid while a group still carries it, so a different leader means the group is gone.
  if (leader && leader->start_time != id.start_time) return false;
  if (leader && leader->pgrp == id.pid && !IsGoneState(leader->state)) return true;
  return !TreeMembersWithoutCgroup(id.pid).empty();
}

void LocalProcessLauncher::Release(const ProcessId& id) {
  if (id.cgroup.empty() || cgroup_root_.empty()) return;
  if (id.cgroup.compare(0, cgroup_root_.size() + 1, cgroup_root_ + "/") != 0) return;  // not one of ours
  rmdir(id.cgroup.c_str());  // fails (EBUSY) while a process is left in it: then it stays
}

}  // namespace autopipe

#include "rds/mariadb.h"

#include <errmsg.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <arpa/inet.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>
#include <thread>

#include "common/log.h"
#include "lb/node_files.h"

namespace fs = std::filesystem;

namespace autopipe::rds {
namespace {

// mysql_library_init is not thread-safe; the first Open of any thread runs it once.
void LibraryInit() {
  static std::once_flag once;
  std::call_once(once, [] { mysql_library_init(0, nullptr, nullptr); });
}

std::string Trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ' || s.back() == '\t')) s.pop_back();
  return s;
}

}  // namespace

std::string DataDir(const ServerConfig& c) { return c.dir + "/data"; }
std::string TmpDir(const ServerConfig& c) { return c.dir + "/tmp"; }
std::string SocketPath(const ServerConfig& c) {
  // A Unix socket's path is at most 107 bytes (sun_path); mariadbd refuses to start past that. A server whose
  // folder is deep (a long --data-dir) gets its socket in a private folder under /tmp instead, named by a hash of
  // its folder, so that the name is stable across restarts and distinct per server.
  std::string inside = c.dir + "/mysqld.sock";
  if (inside.size() <= kMaxSocketPath) return inside;
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(c.dir.data()), c.dir.size(), digest);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string name;
  for (int i = 0; i < 10; ++i) {
    name += kHex[digest[i] >> 4];
    name += kHex[digest[i] & 15];
  }
  return ShortSocketDir() + "/" + name + ".sock";
}

std::string ShortSocketDir() { return "/tmp/autopipe-mysql-" + std::to_string(geteuid()); }

Status PrepareSocketDir(const ServerConfig& c) {
  if (SocketPath(c).rfind(ShortSocketDir() + "/", 0) != 0) return Status::Ok();
  const std::string dir = ShortSocketDir();
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST)
    return Status::Internal("cannot create " + dir + ": " + std::strerror(errno));
  // Someone else's folder (or a symlink planted in /tmp) must not receive the server's socket.
  struct stat st {};
  if (::lstat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode) || st.st_uid != geteuid() ||
      (st.st_mode & 0077) != 0)
    return Status::Internal(dir + " is not a private folder of this user; remove it");
  return Status::Ok();
}

Status WriteServerConfig(const ServerConfig& c) {
  std::error_code ec;
  fs::create_directories(c.dir, ec);
  if (ec) return Status::Internal("cannot create " + c.dir + ": " + ec.message());
  AP_RETURN_IF_ERROR(PrepareSocketDir(c));
  // Its own temporary folder: a starting mariadbd deletes every `#sql*` file in its tmpdir (leftovers of its own
  // last life, it assumes), so servers sharing /tmp delete each other's temporary tables mid-query.
  const std::string tmp = TmpDir(c);
  if (::mkdir(tmp.c_str(), 0700) != 0 && errno != EEXIST)
    return Status::Internal("cannot create " + tmp + ": " + std::strerror(errno));
  if (c.uid && ::chown(tmp.c_str(), *c.uid, *c.uid) != 0)
    return Status::Internal("cannot chown " + tmp + ": " + std::strerror(errno));
  std::ostringstream f;
  f << "# Written by autopipe (rds/mariadb.h); rewritten when the server's role or size changes.\n"
    << "[mariadbd]\n"
    // First: log-basename changes the defaults of the file options that follow it.
    << "log-basename=db\n"
    << "datadir=" << DataDir(c) << "\n"
    << "socket=" << SocketPath(c) << "\n"
    << "tmpdir=" << tmp << "\n"
    << "pid-file=" << c.dir << "/mysqld.pid\n"
    << "log-error=" << c.dir << "/error.log\n"
    << "bind-address=" << c.address << "\n"
    << "port=" << c.port << "\n"
    << "server-id=" << c.server_id << "\n"
    << "log-bin=db-bin\n"
    << "binlog_format=ROW\n"
    << "log_slave_updates=1\n"
    << "sync_binlog=1\n"
    << "innodb_flush_log_at_trx_commit=1\n"
    << "read_only=1\n"
    << "skip-name-resolve\n"
    << "skip-slave-start=0\n"
    << "log_warnings=1\n"
    << "innodb_buffer_pool_size=" << c.buffer_pool_mb << "M\n"
    << "innodb_log_file_size=16M\n"
    << "performance_schema=OFF\n"
    << "max_connections=" << c.max_connections << "\n"
    << "rpl_semi_sync_slave_enabled=" << (c.semi_sync_replica ? 1 : 0) << "\n"
    << "slave_parallel_threads=2\n"
    << "slave_parallel_mode=optimistic\n"
    << "rpl_semi_sync_master_wait_point=AFTER_SYNC\n"
    << "rpl_semi_sync_master_timeout=1000\n";
  if (!c.uid && geteuid() == 0) f << "user=root\n";
  return lb::WriteFileAtomically(c.dir + "/my.cnf", f.str());
}

Status RunCommand(const std::vector<std::string>& argv, const std::string& log_path, int64_t timeout_ms) {
  if (argv.empty()) return Status::Internal("RunCommand: empty argv");
  int log = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (log < 0) return Status::Internal("cannot open " + log_path);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  const pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid < 0) {
    ::close(log);
    return Status::Internal("fork failed");
  }
  if (pid == 0) {
    // Dies with the region server (a backup left running by a killed server would write into a folder that the
    // next server's backup reuses). The forking thread waits for it, so only the server's death triggers this.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) _exit(127);
    int devnull = ::open("/dev/null", O_RDONLY);
    ::dup2(devnull, 0);
    ::dup2(log, 1);
    ::dup2(log, 2);
    ::close_range(3, ~0U, 0);
    ::execvp(args[0], args.data());
    _exit(127);
  }
  ::close(log);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  int status = 0;
  while (true) {
    pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid) break;
    if (r < 0 && errno != EINTR) return Status::Internal("waitpid failed for " + argv[0]);
    if (std::chrono::steady_clock::now() > deadline) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      return Status::Internal(argv[0] + " ran longer than " + std::to_string(timeout_ms) + " ms");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    return Status::Internal(argv[0] + " failed (see " + log_path + ")");
  return Status::Ok();
}

Status RunPipeline(const std::vector<std::string>& producer, const std::vector<std::string>& consumer,
                   const std::vector<std::string>& env, const std::string& log_path, int64_t timeout_ms,
                   bool* producer_ok) {
  int log = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (log < 0) return Status::Internal("cannot open " + log_path);
  int pipefd[2];
  if (::pipe2(pipefd, O_CLOEXEC) != 0) {
    ::close(log);
    return Status::Internal("pipe failed");
  }
  // Everything exec needs is built before fork (the child of a threaded process may only call async-signal-safe
  // functions).
  auto cstrs = [](const std::vector<std::string>& v) {
    std::vector<char*> out;
    for (const auto& s : v) out.push_back(const_cast<char*>(s.c_str()));
    out.push_back(nullptr);
    return out;
  };
  auto pargv = cstrs(producer), cargv = cstrs(consumer), envp = cstrs(env);
  const int devnull = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  auto spawn = [&](char** argv, int in, int out) -> pid_t {
    const pid_t parent = ::getpid();
    pid_t pid = ::fork();
    if (pid == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);  // dies with the region server
      if (::getppid() != parent) _exit(127);
      ::dup2(in, 0);
      ::dup2(out, 1);
      ::dup2(log, 2);
      ::close_range(3, ~0U, 0);
      ::execve(argv[0], argv, envp.data());
      _exit(127);
    }
    return pid;
  };
  const pid_t p = spawn(pargv.data(), devnull, pipefd[1]);
  const pid_t c = p > 0 ? spawn(cargv.data(), pipefd[0], log) : -1;
  ::close(pipefd[0]);
  ::close(pipefd[1]);
  ::close(devnull);
  ::close(log);
  if (p < 0 || c < 0) {
    if (p > 0) {
      ::kill(p, SIGKILL);
      ::waitpid(p, nullptr, 0);
    }
    return Status::Internal("fork failed");
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  int pstatus = 0, cstatus = 0;
  bool pdone = false, cdone = false, timed_out = false;
  while (!pdone || !cdone) {
    if (!pdone && ::waitpid(p, &pstatus, WNOHANG) == p) pdone = true;
    if (!cdone && ::waitpid(c, &cstatus, WNOHANG) == c) cdone = true;
    if (pdone && cdone) break;
    if (!timed_out && std::chrono::steady_clock::now() > deadline) {
      timed_out = true;
      if (!pdone) ::kill(p, SIGKILL);
      if (!cdone) ::kill(c, SIGKILL);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  if (timed_out) return Status::Internal("replay ran longer than " + std::to_string(timeout_ms) + " ms");
  *producer_ok = WIFEXITED(pstatus) && WEXITSTATUS(pstatus) == 0;
  if (!WIFEXITED(cstatus) || WEXITSTATUS(cstatus) != 0)
    return Status::Internal(fs::path(producer[0]).filename().string() + " | " +
                            fs::path(consumer[0]).filename().string() + " into the new server failed (see " + log_path +
                            ")");
  return Status::Ok();
}

Status InitializeDataDir(const ServerConfig& c) {
  std::vector<std::string> argv = {"mariadb-install-db", "--defaults-file=" + c.dir + "/my.cnf",
                                   "--auth-root-authentication-method=normal", "--skip-test-db"};
  if (geteuid() == 0) argv.push_back("--user=root");
  return RunCommand(argv, c.dir + "/install.log", 60'000);
}

Status InitializeDataDirFromTemplate(const ServerConfig& c, const std::string& template_dir) {
  static std::mutex template_mu;
  std::error_code ec;
  {
    std::lock_guard lock(template_mu);
    if (!fs::exists(template_dir + "/complete")) {
      fs::remove_all(template_dir, ec);
      ServerConfig t = c;
      t.dir = template_dir;
      t.address = "127.0.0.1";
      t.uid.reset();
      AP_RETURN_IF_ERROR(WriteServerConfig(t));
      AP_RETURN_IF_ERROR(InitializeDataDir(t));
      AP_RETURN_IF_ERROR(lb::WriteFileAtomically(template_dir + "/complete", "mariadb-install-db done\n"));
    }
  }
  fs::remove_all(DataDir(c), ec);
  return RunCommand({"cp", "-a", "--reflink=auto", template_dir + "/data", DataDir(c)}, c.dir + "/install.log", 60'000);
}

Status ChownTree(const std::string& path, std::optional<uid_t> uid) {
  if (!uid) return Status::Ok();
  std::error_code ec;
  if (::lchown(path.c_str(), *uid, *uid) != 0) return Status::Internal("cannot chown " + path);
  for (auto it = fs::recursive_directory_iterator(path, ec); !ec && it != fs::recursive_directory_iterator();
       it.increment(ec)) {
    if (::lchown(it->path().c_str(), *uid, *uid) != 0) return Status::Internal("cannot chown " + it->path().string());
  }
  if (ec) return Status::Internal("cannot walk " + path + ": " + ec.message());
  return Status::Ok();
}

LaunchSpec ServerLaunchSpec(const ServerConfig& c) {
  LaunchSpec spec;
  spec.argv = {"/usr/sbin/mariadbd", "--defaults-file=" + c.dir + "/my.cnf"};
  spec.env = {{"PATH", "/usr/sbin:/usr/bin:/sbin:/bin"}, {"HOME", c.dir}, {"LANG", "C.UTF-8"}};
  spec.working_dir = c.dir;
  spec.log_path = c.dir + "/server.out";
  spec.uid = c.uid;
  spec.gid = c.uid;
  return spec;
}

Result<std::unique_ptr<Connection>> Connection::Open(const Target& t) {
  LibraryInit();
  MYSQL* m = mysql_init(nullptr);
  if (!m) return Status::Internal("mysql_init failed");
  unsigned int timeout = static_cast<unsigned int>(t.timeout_s);
  mysql_optionsv(m, MYSQL_OPT_CONNECT_TIMEOUT, &timeout);
  mysql_optionsv(m, MYSQL_OPT_READ_TIMEOUT, &timeout);
  mysql_optionsv(m, MYSQL_OPT_WRITE_TIMEOUT, &timeout);
  unsigned int protocol = t.socket.empty() ? MYSQL_PROTOCOL_TCP : MYSQL_PROTOCOL_SOCKET;
  mysql_optionsv(m, MYSQL_OPT_PROTOCOL, &protocol);
  my_bool no = 0;
  mysql_optionsv(m, MYSQL_OPT_RECONNECT, &no);
  if (!mysql_real_connect(m, t.socket.empty() ? t.host.c_str() : nullptr, t.user.c_str(), t.password.c_str(),
                          nullptr, static_cast<unsigned int>(t.port),
                          t.socket.empty() ? nullptr : t.socket.c_str(), 0)) {
    // The client library's message names the host and the error, never the password.
    Status s(500, "InternalFailure", std::string("cannot connect to the DB server: ") + mysql_error(m), false);
    mysql_close(m);
    return s;
  }
  return std::unique_ptr<Connection>(new Connection(m));
}

Connection::~Connection() { mysql_close(m_); }

Status Connection::Error(const std::string& what) {
  return Status(500, "InternalFailure", what + ": " + mysql_error(m_), false);
}

Status Connection::Exec(const std::string& sql) {
  if (mysql_real_query(m_, sql.data(), sql.size()) != 0) return Error("statement failed");
  // Drain any result sets.
  do {
    MYSQL_RES* r = mysql_store_result(m_);
    if (r) mysql_free_result(r);
  } while (mysql_next_result(m_) == 0);
  return Status::Ok();
}

Result<std::vector<std::map<std::string, std::string>>> Connection::Query(const std::string& sql) {
  if (mysql_real_query(m_, sql.data(), sql.size()) != 0) return Error("query failed");
  MYSQL_RES* r = mysql_store_result(m_);
  std::vector<std::map<std::string, std::string>> rows;
  if (!r) {
    if (mysql_field_count(m_) != 0) return Error("query result failed");
    return rows;
  }
  const unsigned n = mysql_num_fields(r);
  MYSQL_FIELD* fields = mysql_fetch_fields(r);
  while (MYSQL_ROW row = mysql_fetch_row(r)) {
    unsigned long* lengths = mysql_fetch_lengths(r);
    std::map<std::string, std::string> out;
    for (unsigned i = 0; i < n; ++i) out[fields[i].name] = row[i] ? std::string(row[i], lengths[i]) : "";
    rows.push_back(std::move(out));
  }
  mysql_free_result(r);
  return rows;
}

Result<std::optional<std::string>> Connection::Scalar(const std::string& sql) {
  if (mysql_real_query(m_, sql.data(), sql.size()) != 0) return Error("query failed");
  MYSQL_RES* r = mysql_store_result(m_);
  if (!r) return Error("query result failed");
  std::optional<std::string> v;
  if (MYSQL_ROW row = mysql_fetch_row(r)) {
    unsigned long* lengths = mysql_fetch_lengths(r);
    if (row[0]) v = std::string(row[0], lengths[0]);
    else v = "";
  }
  mysql_free_result(r);
  return v;
}

std::string Connection::Quote(const std::string& value) {
  std::string out(value.size() * 2 + 1, '\0');
  unsigned long n = mysql_real_escape_string(m_, out.data(), value.data(), value.size());
  out.resize(n);
  return "'" + out + "'";
}

bool ProbeGreeting(const std::string& address, int port, int timeout_ms) {
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(static_cast<uint16_t>(port));
  if (inet_pton(AF_INET, address.c_str(), &sa.sin_addr) != 1) return false;
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  bool ok = false;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0 || errno == EINPROGRESS) {
    // A live server sends its handshake (or an error packet) at once; a stopped one never does.
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, timeout_ms) == 1 && (p.revents & POLLIN)) {
      char buf[8];
      ok = ::recv(fd, buf, sizeof buf, 0) > 4;
    }
  }
  ::close(fd);
  return ok;
}

Status Bootstrap(const ServerConfig& c, const AdminAccounts& accounts) {
  Connection::Target t;
  t.socket = SocketPath(c);
  t.user = "root";
  t.timeout_s = 5;
  AP_ASSIGN_OR_RETURN(auto conn, Connection::Open(t));
  AP_RETURN_IF_ERROR(conn->Exec("SET SESSION sql_log_bin=0"));
  AP_RETURN_IF_ERROR(conn->Exec("CREATE OR REPLACE USER '" + std::string(kAdminUser) +
                                "'@'%' IDENTIFIED BY " + conn->Quote(accounts.admin_password)));
  AP_RETURN_IF_ERROR(conn->Exec("GRANT ALL PRIVILEGES ON *.* TO '" + std::string(kAdminUser) +
                                "'@'%' WITH GRANT OPTION"));
  AP_RETURN_IF_ERROR(conn->Exec("CREATE OR REPLACE USER '" + std::string(kReplUser) + "'@'%' IDENTIFIED BY " +
                                conn->Quote(accounts.repl_password)));
  AP_RETURN_IF_ERROR(conn->Exec("GRANT REPLICATION SLAVE, REPLICATION CLIENT, BINLOG MONITOR ON *.* TO '" +
                                std::string(kReplUser) + "'@'%'"));
  // root keeps no way in: a locked account with a password nobody knows.
  AP_RETURN_IF_ERROR(
      conn->Exec("ALTER USER 'root'@'localhost' IDENTIFIED BY " + conn->Quote(RandomPassword()) + " ACCOUNT LOCK"));
  return Status::Ok();
}

Status CreateMasterUser(Connection& primary, const std::string& user, const std::string& password) {
  const std::string who = primary.Quote(user) + "@'%'";
  AP_RETURN_IF_ERROR(primary.Exec("CREATE USER IF NOT EXISTS " + who + " IDENTIFIED BY " + primary.Quote(password)));
  // RDS's master user privileges: everything a DBA needs, but not SUPER or READ_ONLY ADMIN.
  return primary.Exec(
      "GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, DROP, RELOAD, PROCESS, REFERENCES, INDEX, ALTER, "
      "SHOW DATABASES, CREATE TEMPORARY TABLES, LOCK TABLES, EXECUTE, REPLICATION SLAVE, REPLICATION CLIENT, "
      "CREATE VIEW, SHOW VIEW, CREATE ROUTINE, ALTER ROUTINE, CREATE USER, EVENT, TRIGGER ON *.* TO " + who +
      " WITH GRANT OPTION");
}

Status SetMasterPassword(Connection& primary, const std::string& user, const std::string& password) {
  return primary.Exec("ALTER USER " + primary.Quote(user) + "@'%' IDENTIFIED BY " + primary.Quote(password));
}

Status StartReplication(Connection& replica, const std::string& primary_address, int port,
                        const AdminAccounts& accounts, bool use_current_pos) {
  AP_RETURN_IF_ERROR(replica.Exec("SET GLOBAL read_only=1"));
  AP_RETURN_IF_ERROR(replica.Exec("SET GLOBAL rpl_semi_sync_master_enabled=0"));
  // A standby applies without flushing each transaction to disk: what a commit's acknowledgement depends on is
  // the standby having received it (semi-sync), and a standby that dies is rebuilt or catches up by GTID. It
  // keeps up with its primary this way, so a promotion has little left to apply. ActAsPrimary makes it durable.
  AP_RETURN_IF_ERROR(replica.Exec("SET GLOBAL sync_binlog=0"));
  AP_RETURN_IF_ERROR(replica.Exec("SET GLOBAL innodb_flush_log_at_trx_commit=2"));
  AP_RETURN_IF_ERROR(replica.Exec("STOP SLAVE"));
  AP_RETURN_IF_ERROR(replica.Exec("CHANGE MASTER TO MASTER_HOST=" + replica.Quote(primary_address) +
                                  ", MASTER_PORT=" + std::to_string(port) + ", MASTER_USER='" + kReplUser +
                                  "', MASTER_PASSWORD=" + replica.Quote(accounts.repl_password) +
                                  ", MASTER_USE_GTID=" + (use_current_pos ? "current_pos" : "slave_pos") +
                                  ", MASTER_CONNECT_RETRY=1"));
  return replica.Exec("START SLAVE");
}

Result<std::string> PromoteStandby(Connection& standby, int wait_s) {
  // Each step is timed: a slow one is logged (a promotion is on the clients' critical path).
  auto timed = [](const char* what, auto&& step) {
    const auto t = std::chrono::steady_clock::now();
    auto result = step();
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t).count();
    if (ms >= 50) spdlog::info("promotion step '{}' took {} ms", what, ms);
    return result;
  };
  AP_RETURN_IF_ERROR(timed("STOP SLAVE IO_THREAD", [&] { return standby.Exec("STOP SLAVE IO_THREAD"); }));
  AP_ASSIGN_OR_RETURN(auto rows, timed("SHOW SLAVE STATUS", [&] { return standby.Query("SHOW SLAVE STATUS"); }));
  std::string received = rows.empty() ? "" : rows[0]["Gtid_IO_Pos"];
  if (!received.empty()) {
    AP_ASSIGN_OR_RETURN(auto waited, timed("MASTER_GTID_WAIT", [&] {
                          return standby.Scalar("SELECT MASTER_GTID_WAIT(" + standby.Quote(received) + ", " +
                                                std::to_string(wait_s) + ")");
                        }));
    if (!waited || *waited != "0")
      return Status::Internal("the standby did not apply what it received within " + std::to_string(wait_s) + " s");
  }
  AP_RETURN_IF_ERROR(timed("STOP SLAVE", [&] { return standby.Exec("STOP SLAVE"); }));
  AP_RETURN_IF_ERROR(timed("RESET SLAVE ALL", [&] { return standby.Exec("RESET SLAVE ALL"); }));
  AP_RETURN_IF_ERROR(timed("read_only=0", [&] { return standby.Exec("SET GLOBAL read_only=0"); }));
  AP_ASSIGN_OR_RETURN(auto pos, standby.Scalar("SELECT @@gtid_current_pos"));
  return pos.value_or("");
}

Status CatchUp(Connection& primary, Connection& replica, int timeout_ms) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (true) {
    AP_ASSIGN_OR_RETURN(auto logged, primary.Scalar("SELECT @@gtid_binlog_pos"));
    AP_ASSIGN_OR_RETURN(auto applied, replica.Scalar("SELECT @@gtid_current_pos"));
    if (logged.value_or("") == applied.value_or("")) return Status::Ok();
    if (std::chrono::steady_clock::now() > deadline) return Status::Internal("the standby is still behind");
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
}

Status ActAsPrimary(Connection& primary, bool semi_sync) {
  AP_RETURN_IF_ERROR(primary.Exec("SET GLOBAL sync_binlog=1"));
  AP_RETURN_IF_ERROR(primary.Exec("SET GLOBAL innodb_flush_log_at_trx_commit=1"));
  AP_RETURN_IF_ERROR(primary.Exec(std::string("SET GLOBAL rpl_semi_sync_master_enabled=") + (semi_sync ? "1" : "0")));
  return primary.Exec("SET GLOBAL read_only=0");
}

Result<std::optional<ReplicaState>> ReadReplicaState(Connection& replica) {
  AP_ASSIGN_OR_RETURN(auto rows, replica.Query("SHOW SLAVE STATUS"));
  if (rows.empty()) return std::optional<ReplicaState>{};
  ReplicaState s;
  s.io_running = rows[0]["Slave_IO_Running"] == "Yes";
  s.sql_running = rows[0]["Slave_SQL_Running"] == "Yes";
  const std::string& behind = rows[0]["Seconds_Behind_Master"];
  s.seconds_behind = behind.empty() ? -1 : std::stoll(behind);
  s.last_error = rows[0]["Last_IO_Error"].empty() ? rows[0]["Last_SQL_Error"] : rows[0]["Last_IO_Error"];
  return std::optional<ReplicaState>(s);
}

Status WriteClientOptions(const std::string& path, const std::string& host, int port, const AdminAccounts& accounts) {
  std::ostringstream f;
  f << "[client]\nuser=" << kAdminUser << "\npassword=" << accounts.admin_password << "\nhost=" << host
    << "\nport=" << port << "\nprotocol=TCP\n";
  f << "[mariadb-backup]\nuser=" << kAdminUser << "\npassword=" << accounts.admin_password << "\nhost=" << host
    << "\nport=" << port << "\n";
  return lb::WriteFileAtomically(path, f.str(), 0600);
}

Result<std::string> TakeBackup(const ServerConfig& source, const std::string& client_options,
                               const std::string& target_dir, const std::string& log_path) {
  std::error_code ec;
  fs::remove_all(target_dir, ec);
  AP_RETURN_IF_ERROR(RunCommand({"mariadb-backup", "--defaults-file=" + client_options, "--backup",
                                 "--datadir=" + DataDir(source), "--target-dir=" + target_dir},
                                log_path, 300'000));
  AP_RETURN_IF_ERROR(RunCommand({"mariadb-backup", "--no-defaults", "--prepare", "--target-dir=" + target_dir},
                                log_path, 300'000));
  std::ifstream info(target_dir + "/xtrabackup_binlog_info");
  std::string file, pos, gtid;
  info >> file >> pos >> gtid;
  return Trim(gtid);
}

Status RestoreBackup(const std::string& backup_dir, const ServerConfig& c, const std::string& log_path) {
  std::error_code ec;
  fs::remove_all(DataDir(c), ec);
  return RunCommand({"mariadb-backup", "--no-defaults", "--move-back", "--target-dir=" + backup_dir,
                     "--datadir=" + DataDir(c)},
                    log_path, 300'000);
}

std::string RandomPassword() {
  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  unsigned char bytes[24];
  if (RAND_bytes(bytes, sizeof bytes) != 1) std::abort();
  std::string out;
  for (unsigned char b : bytes) out += kAlphabet[b % (sizeof kAlphabet - 1)];
  return out;
}

}  // namespace autopipe::rds

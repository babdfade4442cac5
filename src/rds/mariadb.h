// What the RDS controller needs of a MariaDB server: its option file, a fresh data directory, the process to
// launch, an administrative client connection (the MariaDB client library, libmariadb), a liveness probe that
// also catches a hung server, and the replication and backup steps of a Multi-AZ pair. ENGINES.md lists the
// commands these were measured with.
//
// No secret is ever put in argv: client tools (mariadb-backup) read theirs from an option file written 0600
// beside the data they concern, and SQL statements that carry a password go over the client connection only.
//
// Thread-safety: free functions are thread-safe; a Connection is used by one thread at a time.
#pragma once

#include <mysql.h>

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "process/launcher.h"

namespace autopipe::rds {

// One server of a DB instance: where it lives and how it is sized.
struct ServerConfig {
  std::string dir;      // the server's own folder: my.cnf, data/, mysqld.sock, error.log
  std::string address;  // its private IP
  int port = 3306;
  int server_id = 1;
  int buffer_pool_mb = 32;
  int max_connections = 100;
  std::optional<uid_t> uid;  // runs under this uid (and gid) when the region runs as root
  // Acknowledges semi-synchronously as a replica (a Multi-AZ standby does; a read replica must not, or it could
  // stand in for the standby's acknowledgement).
  bool semi_sync_replica = true;
};

std::string DataDir(const ServerConfig& c);
// The server's own tmpdir (never a shared /tmp: a starting mariadbd deletes every #sql* file in its tmpdir).
std::string TmpDir(const ServerConfig& c);
// The server's Unix socket: <dir>/mysqld.sock, or, when that is longer than a socket path may be, a file named by
// a hash of <dir> in ShortSocketDir() (a 0700 folder of this user under /tmp, made by WriteServerConfig).
inline constexpr size_t kMaxSocketPath = 100;
std::string SocketPath(const ServerConfig& c);
std::string ShortSocketDir();

// Writes <dir>/my.cnf. Every server starts read-only (a restarted old primary can take no write until the
// controller says it is the primary), with GTID binary logging, ROW format, semi-synchronous replication on the
// replica side, and small memory defaults.
Status WriteServerConfig(const ServerConfig& c);

// Runs argv to completion (no shell), appending its output to log_path; an error when it cannot start, runs
// longer than timeout_ms (it is killed) or exits non-zero.
Status RunCommand(const std::vector<std::string>& argv, const std::string& log_path, int64_t timeout_ms);

// Runs `producer | consumer` (no shell), both with `env`, their stderr (and the consumer's stdout) appended to
// log_path; both die with the region server. The consumer must exit 0; the producer's exit status is returned in
// producer_ok (mariadb-binlog exits non-zero at a file cut short, after printing every whole event before it).
Status RunPipeline(const std::vector<std::string>& producer, const std::vector<std::string>& consumer,
                   const std::vector<std::string>& env, const std::string& log_path, int64_t timeout_ms,
                   bool* producer_ok);

// mariadb-install-db into an empty data dir (the root account then has an empty password, reachable only on
// the server's socket; Bootstrap replaces it). Blocks about half a second.
Status InitializeDataDir(const ServerConfig& c);

// A fresh data dir for c, copied from a template made once per region folder (`template_dir`, with
// mariadb-install-db the first time), so that a new server costs a file copy instead of an initialisation.
// Safe from several threads at once.
Status InitializeDataDirFromTemplate(const ServerConfig& c, const std::string& template_dir);

// Gives the server's folder to its uid (after install or a restore, which run as the region's user).
Status ChownTree(const std::string& path, std::optional<uid_t> uid);

LaunchSpec ServerLaunchSpec(const ServerConfig& c);

// A client connection. Timeouts are whole seconds (the client library's unit).
class Connection {
 public:
  struct Target {
    std::string host;  // TCP host, or empty for `socket`
    int port = 3306;
    std::string socket;
    std::string user;
    std::string password;
    int timeout_s = 2;
  };
  static Result<std::unique_ptr<Connection>> Open(const Target& t);
  ~Connection();

  Status Exec(const std::string& sql);
  // Rows as column name -> value ("" for NULL).
  Result<std::vector<std::map<std::string, std::string>>> Query(const std::string& sql);
  // The first column of the first row; nullopt when there is no row.
  Result<std::optional<std::string>> Scalar(const std::string& sql);
  // A value quoted for SQL ('...', with escapes as the server's character set needs).
  std::string Quote(const std::string& value);

 private:
  explicit Connection(MYSQL* m) : m_(m) {}
  Status Error(const std::string& what);
  MYSQL* m_;
};

// True when a server answers a new TCP connection with its handshake within timeout_ms. A hung (stopped)
// server accepts in the kernel but never greets, so this catches a hang as well as a dead process.
bool ProbeGreeting(const std::string& address, int port, int timeout_ms);

// The accounts every server of an instance has: the region's own administrative account (rdsadmin, all
// privileges, as RDS keeps one) and the replication account, with passwords the controller generated.
struct AdminAccounts {
  std::string admin_password;
  std::string repl_password;
};
inline constexpr char kAdminUser[] = "rdsadmin";
inline constexpr char kReplUser[] = "rdsrepl";

// On a freshly initialised, running server (over its socket as root with the empty password): creates rdsadmin
// and rdsrepl and locks root, none of it written to the binary log (each server of a pair does this itself).
Status Bootstrap(const ServerConfig& c, const AdminAccounts& accounts);

// The master user with RDS's privileges for it (no SUPER, so it cannot lift read_only); binary-logged, so a
// standby gets it too.
Status CreateMasterUser(Connection& primary, const std::string& user, const std::string& password);
Status SetMasterPassword(Connection& primary, const std::string& user, const std::string& password);

// Makes `replica` replicate from primary_address:port with GTID and semi-sync, read-only, applying without a
// flush per transaction (it must keep up; ActAsPrimary makes it durable again). A new replica starts
// from gtid_slave_pos; a former primary rejoining (use_current_pos) from what its own binary log holds.
Status StartReplication(Connection& replica, const std::string& primary_address, int port,
                        const AdminAccounts& accounts, bool use_current_pos);

// Promotion of a standby whose primary is gone (fenced): stops fetching, waits until everything received is
// applied (up to wait_s), forgets the primary and lifts read_only. Returns the GTID position it ended at.
Result<std::string> PromoteStandby(Connection& standby, int wait_s);

// Waits (up to timeout_ms) until `replica` has applied everything `primary` has logged so far.
Status CatchUp(Connection& primary, Connection& replica, int timeout_ms);

// Makes a server a durable primary (sync_binlog=1, innodb_flush_log_at_trx_commit=1), lifts read_only and turns
// the semi-sync primary side on or off (on only while a standby is attached).
Status ActAsPrimary(Connection& primary, bool semi_sync);

struct ReplicaState {
  bool io_running = false;
  bool sql_running = false;
  int64_t seconds_behind = -1;  // -1: unknown
  std::string last_error;
};
Result<std::optional<ReplicaState>> ReadReplicaState(Connection& replica);  // nullopt: not a replica

// Writes an option file (0600) with the admin account for client tools: [client] user, password, host, port.
Status WriteClientOptions(const std::string& path, const std::string& host, int port, const AdminAccounts& accounts);

// A full physical backup of a running server into target_dir with mariadb-backup (--backup then --prepare),
// reading the admin account from client_options. Returns the GTID position the backup holds.
Result<std::string> TakeBackup(const ServerConfig& source, const std::string& client_options,
                               const std::string& target_dir, const std::string& log_path);
// Moves a prepared backup into c's (empty) data dir.
Status RestoreBackup(const std::string& backup_dir, const ServerConfig& c, const std::string& log_path);

// A random password of letters and digits (for the region's own accounts).
std::string RandomPassword();

}  // namespace autopipe::rds

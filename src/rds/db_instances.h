// RDS DB instances as store documents: the contract between the RDS API (rds_service.cc), which records what
// the user asked for, and the DB instance controller (db_controller.cc), which makes real MariaDB servers match
// it and records what is. Nothing else writes these documents.
//
// A db_instance document (id = DBInstanceIdentifier, lower-cased as RDS stores it). Fields in AWS's names are
// rendered by DescribeDBInstances as they are:
//   DBInstanceIdentifier, DBInstanceClass, Engine ("mysql" or "mariadb"), EngineVersion, DBInstanceStatus,
//   MasterUsername, DBName (may be absent), AllocatedStorage, StorageType, Port, MultiAZ, AvailabilityZone,
//   SecondaryAvailabilityZone (only while MultiAZ), PreferredBackupWindow, PreferredMaintenanceWindow,
//   BackupRetentionPeriod, VpcSecurityGroupIds [sg-...], Tags [{Key, Value}], DbiResourceId ("db-" + 26
//   upper-case letters/digits), InstanceCreateTime (ms), PendingModifiedValues {MultiAZ, DBInstanceClass,
//   BackupRetentionPeriod, MasterUserPassword: "****" ...} (only what is pending), Endpoint {Address, Port}:
//   Address is the instance's own stable 127.N.210.k (EndpointIndex k) literal, so it resolves anywhere with no
//   set-up, as a load balancer's DNSName does.
//
// Spec (written by the API only; the controller acts on it):
//   Spec.MultiAZ         the Multi-AZ state wanted now (MultiAZ above is what is; they differ while a standby is
//                        being built or removed),
//   Spec.DBInstanceClass the class wanted now,
//   Spec.Running         false after StopDBInstance, true after StartDBInstance,
//   Spec.Deleting        true after DeleteDBInstance (the controller stops everything, then deletes the document
//                        and the instance's folder),
//   Spec.RebootSeq       bumped by each RebootDBInstance; Spec.RebootForceFailover says how the last one asked.
//
// Backup {Running, InitialDone, LastAutomatedStart, LastError, LastErrorAt} and LatestRestorableTime (ms) are
// written by the backup controller (db_backups.h) only; DBInstanceStatus is backing-up while Backup.Running or
// while the first backup after creation (or after retention went from 0 to non-zero) is still to be taken.
//
// Status (written by the controller only; never rendered as is): the servers, their roles, addresses, processes,
// the failover in progress and what was last applied (Status.RebootSeqDone, Status.PasswordSeqApplied). The
// controller also sets DBInstanceStatus (creating -> available, rebooting -> available, modifying -> available,
// stopping -> stopped, starting -> available, deleting -> gone), MultiAZ, AvailabilityZone and
// SecondaryAvailabilityZone (swapped by a failover).
//
// A db_instance_secret document (same id) holds MasterUserPassword and PasswordSeq (bumped by the API on each
// change) and the controller's own admin password (AdminPassword). It is never rendered, logged or put in an
// event; the store file is 0600.
//
// An rds_event document per event (DescribeEvents): SourceIdentifier, SourceType ("db-instance", ...),
// SourceArn, EventId (e.g. "RDS-EVENT-0013"), Message, EventCategories [..], Date (ms). Ids sort by time.
//
// Thread-safety: call with RegionContext::mu held.
#pragma once

#include <string>
#include <vector>

#include "region/context.h"

namespace autopipe {
namespace kind {
inline constexpr char kDbInstance[] = "db_instance";
inline constexpr char kDbInstanceSecret[] = "db_instance_secret";
inline constexpr char kRdsEvent[] = "rds_event";
}  // namespace kind
}  // namespace autopipe

namespace autopipe::rds {

namespace db_status {
inline constexpr char kCreating[] = "creating";
inline constexpr char kAvailable[] = "available";
inline constexpr char kModifying[] = "modifying";
inline constexpr char kBackingUp[] = "backing-up";
inline constexpr char kRebooting[] = "rebooting";
inline constexpr char kStopping[] = "stopping";
inline constexpr char kStopped[] = "stopped";
inline constexpr char kStarting[] = "starting";
inline constexpr char kDeleting[] = "deleting";
inline constexpr char kFailed[] = "failed";
}  // namespace db_status

// The DB instance classes this region offers, with the size each stands for. The controller sizes a server from
// small defaults scaled by these (tens of MB, not the class's real GB); the API refuses any other class.
struct DbInstanceClass {
  const char* name;  // "db.t3.medium"
  int vcpus;
  double memory_gib;
};
const std::vector<DbInstanceClass>& DbInstanceClasses();
// nullptr when `name` is not one of DbInstanceClasses().
const DbInstanceClass* FindDbInstanceClass(const std::string& name);

// Appends an event to `writes` (the caller commits it with its own change). `event_id` is the number only
// ("0013"); the document gets "RDS-EVENT-0013". Categories as RDS gives them for that event. Events older than
// 14 days (RDS's retention) are deleted in the same writes.
void AddEvent(const RegionContext& ctx, const std::string& source_type, const std::string& source_id,
              const std::string& event_id, const std::string& message, std::vector<std::string> categories,
              std::vector<StoreWrite>* writes);

// The ARN of a DB instance: arn:aws:rds:<region>:<account>:db:<id>.
std::string DbInstanceArn(const RegionContext& ctx, const std::string& id);

// The folder holding one DB instance's servers: <data dir>/rds/<id>.
std::string DbInstanceDir(const RegionContext& ctx, const std::string& id);

}  // namespace autopipe::rds

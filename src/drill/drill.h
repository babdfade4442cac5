// `autopipe drill region-outage`: takes the primary region of a partition away, all at once, under a client
// load the drill drives itself, fails over to the standby region, and reports what the clients saw.
//
//   1. Preconditions (each missing one is named, with the command that makes it): both regions and the global
//      service of the partition running; a Route 53 failover record set whose PRIMARY points at a load balancer
//      of the primary region (its address, with a health check, or an alias with EvaluateTargetHealth) and whose
//      SECONDARY points at one of the standby region; a DB instance in the primary region with a read replica in
//      the standby region (with --create-replica the drill makes one with CreateDBInstanceReadReplica and waits
//      for it), the master password found where the stack keeps it. --skip-db drills HTTP and DNS only.
//   2. Load: GETs through the DNS name (resolved at the global DNS server, the TTL honoured) and INSERTs of
//      sequence numbers into autopipe_drill.writes on the primary's DB endpoint, each acknowledgement recorded.
//      The region is not touched unless both succeed during the warm-up.
//   3. Stop: every process of the primary region frozen, then SIGKILLed at once (drill/region_kill.h).
//   4. Failover: writes move to the replica's endpoint; PromoteReadReplica in the standby region; the health
//      check flips the record and the clients follow it after the TTL.
//   5. Report (drill/report.h): HTTP recovery, DB recovery, RPO (acknowledged rows missing in the promoted
//      instance), the timeline; text, or JSON with --json.
//   6. The old region stays down; the report says how to bring it back and rejoin it as a replica.
//
// Thread-safety: run from main's thread; it starts and joins its own load threads.
#pragma once

#include <string>

namespace autopipe::drill {

struct DrillOptions {
  std::string partition;
  std::string region;          // the primary, to be stopped
  std::string standby_region;  // default: the partition's only other running region
  std::string name;            // the DNS name; default: the failover record found for the two regions
  std::string db_instance;     // the primary's DB instance; default: the one with a replica in the standby
  bool skip_db = false;
  bool create_replica = false;
  std::string password_file;   // the master password, from a 0600 file (else env or the region's store)
  double warmup_s = 5;
  double settle_s = 3;
  double duration_s = 180;     // the whole drill's bound, warm-up included
  int http_interval_ms = 50;
  int write_interval_ms = 20;
  int64_t max_requests = 20000;
  int http_port = 80;
  std::string http_path = "/";
  bool json = false;
  bool yes = false;
};

// `autopipe drill rejoin`: after a drill, with the old region started again, makes its DB instance a read replica
// of the promoted one: the old instance (diverged since the stop) is deleted with a final snapshot
// (`<id>-before-rejoin-<time>`, so nothing is lost for good), then CreateDBInstanceReadReplica in the old region
// with the promoted instance's ARN as source, under the same identifier; it waits until it is available.
struct RejoinOptions {
  std::string partition;
  std::string region;          // the old primary, running again
  std::string from_region;     // where the promoted instance is (default: the only other running region)
  std::string db_instance;     // the old primary's DB instance id (also the new replica's)
  std::string source_instance; // the promoted instance's id in from_region
  double timeout_s = 900;
  bool yes = false;
};
int RunRejoin(const RejoinOptions& opts);

// Runs the drill; prints the report on stdout; exit code 0 when both HTTP and (unless --skip-db) writes
// recovered, 1 when not, 2 when a precondition is missing or the drill refused to start.
int RunRegionOutageDrill(const DrillOptions& opts);

}  // namespace autopipe::drill

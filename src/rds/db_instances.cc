#include "rds/db_instances.h"

#include <cinttypes>
#include <cstdio>
#include <cstdlib>

#include "common/ids.h"

namespace autopipe::rds {
namespace {

constexpr int64_t kEventRetentionMillis = 14LL * 24 * 3600 * 1000;
constexpr size_t kMaxEventsDroppedPerCall = 100;  // bounds one commit; later events drop the rest

// The resource type an RDS ARN names for an event source type.
std::string ArnResourceType(const std::string& source_type) {
  if (source_type == "db-instance") return "db";
  if (source_type == "db-snapshot") return "snapshot";
  if (source_type == "db-parameter-group") return "pg";
  if (source_type == "db-security-group") return "secgrp";
  if (source_type == "db-cluster") return "cluster";
  if (source_type == "db-cluster-snapshot") return "cluster-snapshot";
  return source_type;
}

}  // namespace

const std::vector<DbInstanceClass>& DbInstanceClasses() {
  static const std::vector<DbInstanceClass> classes = {
      {"db.t3.micro", 2, 1},     {"db.t3.small", 2, 2},     {"db.t3.medium", 2, 4},   {"db.t3.large", 2, 8},
      {"db.t3.xlarge", 4, 16},   {"db.t3.2xlarge", 8, 32},  {"db.t4g.micro", 2, 1},   {"db.t4g.small", 2, 2},
      {"db.t4g.medium", 2, 4},   {"db.t4g.large", 2, 8},    {"db.m5.large", 2, 8},    {"db.m5.xlarge", 4, 16},
      {"db.m5.2xlarge", 8, 32},  {"db.m6g.large", 2, 8},    {"db.m6g.xlarge", 4, 16}, {"db.r5.large", 2, 16},
      {"db.r5.xlarge", 4, 32},   {"db.r6g.large", 2, 16},   {"db.r6g.xlarge", 4, 32},
  };
  return classes;
}

const DbInstanceClass* FindDbInstanceClass(const std::string& name) {
  for (const auto& c : DbInstanceClasses()) {
    if (name == c.name) return &c;
  }
  return nullptr;
}

void AddEvent(const RegionContext& ctx, const std::string& source_type, const std::string& source_id,
              const std::string& event_id, const std::string& message, std::vector<std::string> categories,
              std::vector<StoreWrite>* writes) {
  const int64_t now = ctx.clock->NowMillis();
  size_t in_batch = 0;
  for (const auto& w : *writes) in_batch += w.kind == kind::kRdsEvent;
  // Ids sort by time: the millisecond, then the event's place in its batch, then a random tail so that two
  // writers in the same millisecond never collide.
  char prefix[48];
  std::snprintf(prefix, sizeof prefix, "%013" PRId64 "-%03zu-", now, in_batch);
  Json event = {{"SourceIdentifier", source_id},
                {"SourceType", source_type},
                {"SourceArn", ctx.Arn("rds", ArnResourceType(source_type) + ":" + source_id)},
                {"EventId", "RDS-EVENT-" + event_id},
                {"Message", message},
                {"EventCategories", std::move(categories)},
                {"Date", now}};
  writes->push_back({kind::kRdsEvent, prefix + RandomHex(8), std::move(event), std::nullopt});
  // RDS keeps events for 14 days. Ids begin with their time, so the expired ones come first.
  size_t dropped = 0;
  for (const auto& old : ctx.store->Ids(kind::kRdsEvent)) {
    if (dropped >= kMaxEventsDroppedPerCall || old.size() < 13 ||
        std::strtoll(old.substr(0, 13).c_str(), nullptr, 10) >= now - kEventRetentionMillis) {
      break;
    }
    writes->push_back({kind::kRdsEvent, old, std::nullopt, std::nullopt});
    ++dropped;
  }
}

std::string DbInstanceArn(const RegionContext& ctx, const std::string& id) { return ctx.Arn("rds", "db:" + id); }

std::string DbInstanceDir(const RegionContext& ctx, const std::string& id) {
  return ctx.data_dir + "/rds/" + id;
}

}  // namespace autopipe::rds

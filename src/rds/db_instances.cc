#include "rds/db_instances.h"

#include <cstdio>

#include "common/ids.h"

namespace autopipe::rds {

void AddEvent(const RegionContext& ctx, const std::string& source_type, const std::string& source_id,
              const std::string& event_id, const std::string& message, std::vector<std::string> categories,
              std::vector<StoreWrite>* writes) {
  const int64_t now = ctx.clock->NowMillis();
  char stamp[32];
  std::snprintf(stamp, sizeof stamp, "%016lld", static_cast<long long>(now));
  // Ids sort by time; the random tail keeps two events of one millisecond apart.
  const std::string id = std::string(stamp) + "-" + RandomHex(8);
  Json doc = {{"SourceIdentifier", source_id},
              {"SourceType", source_type},
              {"SourceArn", source_type == "db-instance" ? DbInstanceArn(ctx, source_id) : ""},
              {"EventId", "RDS-EVENT-" + event_id},
              {"Message", message},
              {"EventCategories", categories},
              {"Date", now}};
  writes->push_back({kind::kRdsEvent, id, std::move(doc)});
}

std::string DbInstanceArn(const RegionContext& ctx, const std::string& id) { return ctx.Arn("rds", "db:" + id); }

std::string DbInstanceDir(const RegionContext& ctx, const std::string& id) { return ctx.data_dir + "/rds/" + id; }

}  // namespace autopipe::rds

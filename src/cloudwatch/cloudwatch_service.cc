#include "cloudwatch/cloudwatch_service.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <set>

#include "api/page_token.h"
#include "common/time_util.h"
#include "cloudwatch/metric_math.h"

namespace autopipe::cloudwatch {
namespace {

constexpr char kNs[] = "http://monitoring.amazonaws.com/doc/2010-08-01/";
const std::set<std::string> kStatistics = {"SampleCount", "Average", "Sum", "Minimum", "Maximum"};
const std::set<std::string> kStates = {"OK", "ALARM", "INSUFFICIENT_DATA"};
const std::set<std::string> kTreatMissing = {"missing", "breaching", "notBreaching", "ignore"};
const std::set<std::string> kUnits = {
    "Seconds", "Microseconds", "Milliseconds", "Bytes", "Kilobytes", "Megabytes", "Gigabytes", "Terabytes", "Bits",
    "Kilobits", "Megabits", "Gigabits", "Terabits", "Percent", "Count", "Bytes/Second", "Kilobytes/Second",
    "Megabytes/Second", "Gigabytes/Second", "Terabytes/Second", "Bits/Second", "Kilobits/Second",
    "Megabits/Second", "Gigabits/Second", "Terabits/Second", "Count/Second", "None"};
const double kMaxValue = std::ldexp(1.0, 360);

std::string LowerFirst(std::string s) {
  if (!s.empty()) s[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(s[0])));
  return s;
}

Status Constraint(const std::string& field, const std::string& value, const std::string& constraint) {
  return Status::Validation("1 validation error detected: Value '" + value + "' at '" + LowerFirst(field) +
                            "' failed to satisfy constraint: " + constraint);
}

Status EnumError(const std::string& field, const std::string& value, const std::set<std::string>& allowed) {
  std::string set;
  for (const auto& a : allowed) set += (set.empty() ? "" : ", ") + a;
  return Constraint(field, value, "Member must satisfy enum value set: [" + set + "]");
}

Status InvalidValue(const std::string& field, const std::string& value) {
  return Status::InvalidParameterValue("The value " + value + " for parameter " + field + " is invalid.");
}

Status Missing(const std::string& field) {
  return Status::MissingParameter("The parameter " + field + " is required.");
}

Result<double> ParseDouble(const std::string& field, const std::string& text) {
  char* end = nullptr;
  double v = std::strtod(text.c_str(), &end);
  if (text.empty() || *end != '\0') return InvalidValue(field, text);
  if (!std::isfinite(v) || std::fabs(v) > kMaxValue) return InvalidValue(field, text);
  return v;
}

Result<std::optional<double>> OptDouble(const Params& p, const std::string& field) {
  auto s = p.Str(field);
  if (!s) return std::optional<double>();
  AP_ASSIGN_OR_RETURN(double v, ParseDouble(field, *s));
  return std::optional<double>(v);
}

Result<int64_t> RequiredInt(const Params& p, const std::string& field) {
  AP_ASSIGN_OR_RETURN(auto v, p.Int(field));
  if (!v) return Missing(field);
  return *v;
}

Result<std::string> CheckLength(const std::string& field, const std::string& value, size_t min, size_t max) {
  if (value.size() < min || value.size() > max) {
    return Constraint(field, value,
                      min > 0 && value.size() < min
                          ? "Member must have length greater than or equal to " + std::to_string(min)
                          : "Member must have length less than or equal to " + std::to_string(max));
  }
  return value;
}

Result<int64_t> RequiredTime(const Params& p, const std::string& field) {
  auto s = p.Str(field);
  if (!s) return Missing(field);
  auto t = ParseTimestampMillis(*s);
  if (!t) return InvalidValue(field, *s);
  return *t;
}

// Dimensions (Name/Value pairs) of a list parameter, at most 30, each name and value 1-255 characters.
Result<Dimensions> ReadDimensions(const Params& p, const std::string& list) {
  Dimensions dims;
  auto items = p.StructList(list);
  if (items.size() > 30) return Constraint(list, "[...]", "Member must have length less than or equal to 30");
  std::set<std::string> names;
  for (size_t i = 0; i < items.size(); ++i) {
    const std::string field = list + ".member." + std::to_string(i + 1);
    auto name = items[i].find("Name");
    auto value = items[i].find("Value");
    if (name == items[i].end()) return Missing(field + ".Name");
    if (value == items[i].end()) return Missing(field + ".Value");
    AP_RETURN_IF_ERROR(CheckLength(field + ".Name", name->second, 1, 255).status());
    AP_RETURN_IF_ERROR(CheckLength(field + ".Value", value->second, 1, 1024).status());
    if (!names.insert(name->second).second) {
      return Status::InvalidParameterValue("No Metric may specify the same dimension name twice: " + name->second);
    }
    dims.emplace_back(name->second, value->second);
  }
  return dims;
}

Json DimensionsJson(const Dimensions& dims) {
  Json out = Json::array();
  for (const auto& [k, v] : dims) out.push_back(JsonObject(2).Add("Name", k).Add("Value", v).Take());
  return out;
}

bool ValidPeriod(int64_t period, bool allow_one_and_five) {
  if (period <= 0) return false;
  if (period == 10 || period == 20 || period == 30) return true;
  if (allow_one_and_five && (period == 1 || period == 5)) return true;
  return period % 60 == 0;
}

struct Page {
  size_t offset = 0;
  size_t limit = 0;
};

Result<Page> ReadPage(const Params& p, const char* scope, size_t default_limit, size_t max_limit,
                      const char* max_field = "MaxRecords") {
  Page page{0, default_limit};
  AP_ASSIGN_OR_RETURN(auto max, p.Int(max_field));
  if (max) {
    if (*max < 1 || static_cast<size_t>(*max) > max_limit) {
      return Constraint(max_field, std::to_string(*max),
                        *max < 1 ? "Member must have value greater than or equal to 1"
                                 : "Member must have value less than or equal to " + std::to_string(max_limit));
    }
    page.limit = static_cast<size_t>(*max);
  }
  if (auto token = p.Str("NextToken")) {
    auto offset = DecodePageToken(scope, *token);
    if (!offset) return Status(400, "InvalidNextToken", "The service cannot decode the NextToken: " + *token);
    page.offset = static_cast<size_t>(*offset);
  }
  return page;
}

void Paginate(Json& result, const char* list, Json all, const Page& page, const char* scope) {
  Json out = Json::array();
  for (size_t i = page.offset; i < all.size() && out.size() < page.limit; ++i) out.push_back(std::move(all[i]));
  result[list] = std::move(out);
  if (page.offset + page.limit < all.size()) result["NextToken"] = EncodePageToken(scope, page.offset + page.limit);
}

// Checks an alarm action ARN: this region, and for EC2 actions one of the automate forms.
Status CheckActionArn(const std::string& field, const std::string& arn, const std::string& region) {
  // arn:aws:<service>:<region>:<account or ec2>:<resource>
  std::vector<std::string> parts;
  size_t pos = 0;
  for (int i = 0; i < 5; ++i) {
    size_t colon = arn.find(':', pos);
    if (colon == std::string::npos) return Status::Validation("Invalid arn syntax: " + arn);
    parts.push_back(arn.substr(pos, colon - pos));
    pos = colon + 1;
  }
  parts.push_back(arn.substr(pos));
  if (parts[0] != "arn" || parts[1] != "aws" || parts[2].empty()) {
    return Status::Validation("Invalid arn syntax: " + arn);
  }
  if (parts[3] != region) {
    return Status::Validation("Invalid region " + parts[3] + " specified. Only " + region + " is supported.");
  }
  if (parts[2] == "automate") {
    static const std::set<std::string> kEc2 = {"stop", "terminate", "reboot", "recover"};
    if (parts[4] != "ec2" || !kEc2.count(parts[5])) {
      return Status::Validation("Invalid use of EC2 action in " + field + ": " + arn);
    }
  }
  return Status::Ok();
}

class Service {
 public:
  Service(RegionContext* ctx, std::shared_ptr<CloudWatchRegion> region) : ctx_(ctx), region_(std::move(region)) {}

  // ---- metrics ----------------------------------------------------------------------------------------------

  Result<Json> PutMetricData(const Params& p) {
    AP_ASSIGN_OR_RETURN(std::string ns, p.RequiredStr("Namespace"));
    AP_RETURN_IF_ERROR(CheckLength("Namespace", ns, 1, 255).status());
    if (ns.rfind("AWS/", 0) == 0) return InvalidValue("Namespace", ns);
    auto data = p.StructList("MetricData");
    if (data.empty()) return Missing("MetricData");
    const int64_t now = ctx_->clock->NowMillis();
    std::vector<std::pair<MetricKey, Datapoint>> points;
    std::vector<std::string> units;
    for (size_t i = 0; i < data.size(); ++i) {
      const std::string f = "MetricData.member." + std::to_string(i + 1);
      Params m(data[i], WireProtocol::kQuery);
      AP_ASSIGN_OR_RETURN(std::string name, m.RequiredStr("MetricName"));
      AP_RETURN_IF_ERROR(CheckLength(f + ".MetricName", name, 1, 255).status());
      AP_ASSIGN_OR_RETURN(Dimensions dims, ReadDimensions(m, "Dimensions"));
      MetricKey key{ns, name, dims};
      key.Canonicalize();
      int64_t ts = now;
      if (auto t = m.Str("Timestamp")) {
        auto parsed = ParseTimestampMillis(*t);
        if (!parsed) return InvalidValue(f + ".Timestamp", *t);
        if (*parsed < now - 14LL * 86400 * 1000 || *parsed > now + 2LL * 3600 * 1000) {
          return Status::InvalidParameterValue("The parameter " + f +
                                               ".Timestamp must specify a time no more than two weeks in the past "
                                               "and no more than two hours in the future.");
        }
        ts = *parsed;
      }
      std::string unit;
      if (auto u = m.Str("Unit")) {
        if (!kUnits.count(*u)) return EnumError(f + ".Unit", *u, kUnits);
        unit = *u;
      }
      AP_ASSIGN_OR_RETURN(auto resolution, m.Int("StorageResolution"));
      if (resolution && *resolution != 1 && *resolution != 60) {
        return InvalidValue(f + ".StorageResolution", std::to_string(*resolution));
      }
      // (Four lookups rather than Sub("StatisticValues."), which copies into a map for every metric.)
      const bool has_value = m.Has("Value"),
                 has_stats = m.Has("StatisticValues.SampleCount") || m.Has("StatisticValues.Sum") ||
                             m.Has("StatisticValues.Minimum") || m.Has("StatisticValues.Maximum");
      auto values = m.List("Values");
      auto counts = m.List("Counts");
      if (has_value && has_stats) {
        return Status(400, "InvalidParameterCombination",
                      "The parameters " + f + ".Value and " + f +
                          ".StatisticValues are mutually exclusive and you have specified both.");
      }
      if ((has_value || has_stats) && !values.empty()) {
        return Status(400, "InvalidParameterCombination",
                      "The parameters " + f + ".Values and " + f + (has_value ? ".Value" : ".StatisticValues") +
                          " are mutually exclusive and you have specified both.");
      }
      if (values.size() > 150) return InvalidValue(f + ".Values", "[" + std::to_string(values.size()) + " values]");
      if (!counts.empty() && counts.size() != values.size()) {
        return Status::InvalidParameterValue("The parameters " + f + ".Values and " + f +
                                             ".Counts must be of the same size.");
      }
      auto add = [&](Aggregate agg) {
        points.emplace_back(key, Datapoint{ts, agg});
        units.push_back(unit);
      };
      if (has_value) {
        AP_ASSIGN_OR_RETURN(double v, ParseDouble(f + ".Value", *m.Str("Value")));
        add({1, v, v, v});
      } else if (has_stats) {
        const FormParams stat_params = m.Sub("StatisticValues.");  // Params only refers to its parameters
        Params s(stat_params, WireProtocol::kQuery);
        double fields[4];
        const char* names[4] = {"SampleCount", "Sum", "Minimum", "Maximum"};
        for (int k = 0; k < 4; ++k) {
          auto text = s.Str(names[k]);
          if (!text) return Missing(f + ".StatisticValues." + names[k]);
          AP_ASSIGN_OR_RETURN(fields[k], ParseDouble(f + ".StatisticValues." + names[k], *text));
        }
        if (fields[0] <= 0) return InvalidValue(f + ".StatisticValues.SampleCount", *s.Str("SampleCount"));
        if (fields[2] > fields[3]) {
          return Status::InvalidParameterValue("The parameter " + f +
                                               ".StatisticValues.Maximum must be greater than " + f +
                                               ".StatisticValues.Minimum.");
        }
        add({fields[0], fields[1], fields[2], fields[3]});
      } else if (!values.empty()) {
        for (size_t k = 0; k < values.size(); ++k) {
          AP_ASSIGN_OR_RETURN(double v, ParseDouble(f + ".Values.member." + std::to_string(k + 1), values[k]));
          double c = 1;
          if (!counts.empty()) {
            AP_ASSIGN_OR_RETURN(c, ParseDouble(f + ".Counts.member." + std::to_string(k + 1), counts[k]));
            if (c <= 0) continue;
          }
          add({c, v * c, v, v});
        }
      } else {
        return Status::InvalidParameterValue("The parameter " + f + " must contain Value, Values or StatisticValues.");
      }
    }
    AP_RETURN_IF_ERROR(region_->metrics().Put(points, units));
    return Json();
  }

  Result<Json> GetMetricStatistics(const Params& p) {
    AP_ASSIGN_OR_RETURN(std::string ns, p.RequiredStr("Namespace"));
    AP_ASSIGN_OR_RETURN(std::string name, p.RequiredStr("MetricName"));
    AP_ASSIGN_OR_RETURN(Dimensions dims, ReadDimensions(p, "Dimensions"));
    AP_ASSIGN_OR_RETURN(int64_t start, RequiredTime(p, "StartTime"));
    AP_ASSIGN_OR_RETURN(int64_t end, RequiredTime(p, "EndTime"));
    AP_ASSIGN_OR_RETURN(int64_t period, RequiredInt(p, "Period"));
    auto stats = p.List("Statistics");
    auto extended = p.List("ExtendedStatistics");
    if (stats.empty() && extended.empty()) {
      return Status::MissingParameter("The parameter Statistics or ExtendedStatistics must be specified.");
    }
    if (!stats.empty() && !extended.empty()) {
      return Status(400, "InvalidParameterCombination",
                    "The parameters Statistics and ExtendedStatistics are mutually exclusive and you have specified "
                    "both.");
    }
    if (stats.size() > 5) return Constraint("Statistics", "[...]", "Member must have length less than or equal to 5");
    if (extended.size() > 10) {
      return Constraint("ExtendedStatistics", "[...]", "Member must have length less than or equal to 10");
    }
    for (const auto& s : stats) {
      if (!kStatistics.count(s)) return EnumError("Statistics", s, kStatistics);
    }
    for (const auto& s : extended) {
      if (!ValidPercentile(s)) return InvalidValue("ExtendedStatistics", s);
    }
    if (!ValidPeriod(period, true)) {
      return Status::InvalidParameterValue(
          "The parameter Period must be 1, 5, 10, 20, 30 or a multiple of 60.");
    }
    if (start >= end) {
      return Status::InvalidParameterValue("The parameter StartTime must be less than the parameter EndTime.");
    }
    const int64_t points = ((end - start) / 1000 + period - 1) / period;
    if (points > 1440) {
      return Status(400, "InvalidParameterCombination",
                    "You have requested up to " + WithCommas(points) +
                        " datapoints, which exceeds the limit of 1,440. You may reduce the datapoints requested by "
                        "increasing Period, or decreasing the time range.");
    }
    std::string unit_filter;
    if (auto u = p.Str("Unit")) {
      if (!kUnits.count(*u)) return EnumError("Unit", *u, kUnits);
      unit_filter = *u;
    }
    MetricKey key{ns, name, dims};
    key.Canonicalize();
    Json datapoints = Json::array();
    auto info = region_->metrics().Find(key);
    std::string unit = info && !info->unit.empty() ? info->unit : "None";
    if (info && (unit_filter.empty() || unit_filter == unit)) {
      for (const auto& ps : region_->metrics().Query(key, start, end, period, ctx_->clock->NowMillis())) {
        JsonObject dp(8);
        dp.Add("Timestamp", TimestampValue(ps.start_sec * 1000));
        for (const char* s : {"SampleCount", "Average", "Sum", "Minimum", "Maximum"}) {
          if (std::find(stats.begin(), stats.end(), s) != stats.end()) dp.Add(s, *ps.Value(s));
        }
        dp.Add("Unit", unit);
        if (!extended.empty()) {
          RenderedPart part;
          part.json = "{";
          for (size_t i = 0; i < extended.size(); ++i) {
            auto v = ps.Value(extended[i]);
            std::string num = Json(v.value_or(0.0)).dump();
            part.xml += "<entry><key>" + extended[i] + "</key><value>" + num + "</value></entry>";
            part.json += (i ? "," : "") + Json(extended[i]).dump() + ":" + num;
          }
          part.json += "}";
          dp.Add("ExtendedStatistics", PartValue(part));
        }
        datapoints.push_back(dp.Take());
      }
    }
    return JsonObject(2).Add("Label", name).Add("Datapoints", std::move(datapoints)).Take();
  }

  Result<Json> ListMetrics(const Params& p) {
    auto ns = p.Str("Namespace");
    auto name = p.Str("MetricName");
    std::vector<std::pair<std::string, std::optional<std::string>>> filters;
    auto items = p.StructList("Dimensions");
    if (items.size() > 10) return Constraint("Dimensions", "[...]", "Member must have length less than or equal to 10");
    for (auto& d : items) {
      auto n = d.find("Name");
      if (n == d.end()) return Missing("Dimensions.member.N.Name");
      auto v = d.find("Value");
      filters.emplace_back(n->second, v == d.end() ? std::nullopt : std::optional<std::string>(v->second));
    }
    const int64_t now = ctx_->clock->NowMillis();
    auto recently = p.Str("RecentlyActive");
    if (recently && *recently != "PT3H") return EnumError("RecentlyActive", *recently, {"PT3H"});
    AP_ASSIGN_OR_RETURN(Page page, ReadPage(p, "Metrics", 500, 500, "MaxRecords"));
    Json all = Json::array();
    for (const auto& m : region_->metrics().List()) {
      if (ns && m.key.namespace_ != *ns) continue;
      if (name && m.key.name != *name) continue;
      if (recently && m.last_millis < now - 3 * 3600 * 1000) continue;
      if (m.last_millis < now - 14LL * 86400 * 1000) continue;  // ListMetrics shows two weeks
      bool match = true;
      for (const auto& [fk, fv] : filters) {
        const auto& name = fk;  // a structured binding cannot be captured before C++20 in clang 14
        auto it = std::find_if(m.key.dimensions.begin(), m.key.dimensions.end(),
                               [&](const auto& d) { return d.first == name; });
        if (it == m.key.dimensions.end() || (fv && it->second != *fv)) match = false;
      }
      if (!match) continue;
      all.push_back(JsonObject(3)
                        .Add("Namespace", m.key.namespace_)
                        .Add("MetricName", m.key.name)
                        .Add("Dimensions", DimensionsJson(m.key.dimensions))
                        .Take());
    }
    Json result = Json::object();
    Paginate(result, "Metrics", std::move(all), page, "Metrics");
    return result;
  }

  Result<Json> GetMetricData(const Params& p) {
    AP_ASSIGN_OR_RETURN(int64_t start, RequiredTime(p, "StartTime"));
    AP_ASSIGN_OR_RETURN(int64_t end, RequiredTime(p, "EndTime"));
    if (start >= end) {
      return Status::Validation("The parameter StartTime must be less than the parameter EndTime.");
    }
    auto queries = p.StructList("MetricDataQueries");
    if (queries.empty()) return Missing("MetricDataQueries");
    if (queries.size() > 500) {
      return Constraint("MetricDataQueries", "[...]", "Member must have length less than or equal to 500");
    }
    std::string scan = p.Str("ScanBy").value_or("TimestampDescending");
    if (scan != "TimestampDescending" && scan != "TimestampAscending") {
      return EnumError("ScanBy", scan, {"TimestampDescending", "TimestampAscending"});
    }
    const int64_t now = ctx_->clock->NowMillis();
    std::vector<MathQuery> math;
    for (size_t i = 0; i < queries.size(); ++i) {
      const std::string f = "MetricDataQueries.member." + std::to_string(i + 1);
      Params q(queries[i], WireProtocol::kQuery);
      MathQuery mq;
      AP_ASSIGN_OR_RETURN(mq.id, q.RequiredStr("Id"));
      if (mq.id.empty() || !std::islower(static_cast<unsigned char>(mq.id[0])) ||
          !std::all_of(mq.id.begin(), mq.id.end(), [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; })) {
        return Status::Validation("The value " + mq.id + " for parameter " + f +
                                  ".Id is invalid: it must start with a lowercase letter and hold only letters, "
                                  "digits and underscores.");
      }
      mq.label = q.Str("Label").value_or("");
      AP_ASSIGN_OR_RETURN(auto ret, q.Bool("ReturnData"));
      mq.return_data = ret.value_or(true);
      auto expression = q.Str("Expression");
      const bool has_stat = !q.Sub("MetricStat.").empty();
      if (expression.has_value() == has_stat) {
        return Status::Validation("The parameter " + f + " must have exactly one of Expression or MetricStat.");
      }
      if (has_stat) {
        const FormParams stat_params = q.Sub("MetricStat.");  // Params only refers to its parameters
        Params ms(stat_params, WireProtocol::kQuery);
        AP_ASSIGN_OR_RETURN(std::string ns, ms.RequiredStr("Metric.Namespace"));
        AP_ASSIGN_OR_RETURN(std::string name, ms.RequiredStr("Metric.MetricName"));
        const FormParams metric_params = ms.Sub("Metric.");
        Params metric(metric_params, WireProtocol::kQuery);
        AP_ASSIGN_OR_RETURN(Dimensions dims, ReadDimensions(metric, "Dimensions"));
        AP_ASSIGN_OR_RETURN(int64_t period, RequiredInt(ms, "Period"));
        if (!ValidPeriod(period, true)) {
          return Status::Validation("The parameter " + f + ".MetricStat.Period must be 1, 5, 10, 20, 30 or a "
                                    "multiple of 60.");
        }
        AP_ASSIGN_OR_RETURN(std::string stat, ms.RequiredStr("Stat"));
        if (!kStatistics.count(stat) && !ValidPercentile(stat)) return InvalidValue(f + ".MetricStat.Stat", stat);
        if ((end - start) / 1000 / period > 100'800) {
          return Status::Validation("The query for " + mq.id + " asks for more than 100,800 datapoints.");
        }
        MetricKey key{ns, name, dims};
        key.Canonicalize();
        if (mq.label.empty()) mq.label = name;
        for (const auto& ps : region_->metrics().Query(key, start, end, period, now)) {
          if (auto v = ps.Value(stat)) mq.series[ps.start_sec] = *v;
        }
      } else {
        mq.expression = *expression;
        if (mq.label.empty()) mq.label = mq.id;
      }
      math.push_back(std::move(mq));
    }
    AP_RETURN_IF_ERROR(EvaluateMath(&math));
    Json results = Json::array();
    for (const auto& mq : math) {
      if (!mq.return_data) continue;
      Json times = Json::array(), values = Json::array();
      std::vector<std::pair<int64_t, double>> points(mq.series.begin(), mq.series.end());
      if (scan == "TimestampDescending") std::reverse(points.begin(), points.end());
      for (const auto& [t, v] : points) {
        times.push_back(TimestampValue(t * 1000));
        values.push_back(v);
      }
      results.push_back(JsonObject(6)
                            .Add("Id", mq.id)
                            .Add("Label", mq.label)
                            .Add("Timestamps", std::move(times))
                            .Add("Values", std::move(values))
                            .Add("StatusCode", "Complete")
                            .Take());
    }
    return JsonObject(2).Add("MetricDataResults", std::move(results)).Add("Messages", Json::array()).Take();
  }

  // ---- alarms -----------------------------------------------------------------------------------------------

  Result<Json> PutMetricAlarm(const Params& p) {
    AP_ASSIGN_OR_RETURN(std::string name, p.RequiredStr("AlarmName"));
    AP_RETURN_IF_ERROR(CheckLength("AlarmName", name, 1, 255).status());
    Json doc = Json::object();
    doc["AlarmName"] = name;
    doc["AlarmArn"] = ctx_->Arn("cloudwatch", "alarm:" + name);
    if (auto d = p.Str("AlarmDescription")) {
      AP_RETURN_IF_ERROR(CheckLength("AlarmDescription", *d, 0, 1024).status());
      doc["AlarmDescription"] = *d;
    }
    const int64_t now = ctx_->clock->NowMillis();
    doc["AlarmConfigurationUpdatedTimestamp"] = now;
    AP_ASSIGN_OR_RETURN(auto enabled, p.Bool("ActionsEnabled"));
    doc["ActionsEnabled"] = enabled.value_or(true);
    for (const char* list : {"OKActions", "AlarmActions", "InsufficientDataActions"}) {
      Json arns = Json::array();
      for (const auto& arn : p.List(list)) {
        AP_RETURN_IF_ERROR(CheckLength(list, arn, 1, 1024).status());
        AP_RETURN_IF_ERROR(CheckActionArn(list, arn, ctx_->catalog->region()));
        arns.push_back(arn);
      }
      doc[list] = std::move(arns);
    }
    // The state fields come next (kept from an existing alarm, set below).
    doc["StateValue"] = "INSUFFICIENT_DATA";
    doc["StateReason"] = "Unchecked: Initial alarm creation";
    doc["StateUpdatedTimestamp"] = now;
    if (p.Has("Metrics.member.1.Id")) {
      return Status::Validation("Metric math alarms (the Metrics parameter) are not supported by this region.");
    }
    AP_ASSIGN_OR_RETURN(std::string metric, p.RequiredStr("MetricName"));
    AP_RETURN_IF_ERROR(CheckLength("MetricName", metric, 1, 255).status());
    AP_ASSIGN_OR_RETURN(std::string ns, p.RequiredStr("Namespace"));
    AP_RETURN_IF_ERROR(CheckLength("Namespace", ns, 1, 255).status());
    doc["MetricName"] = metric;
    doc["Namespace"] = ns;
    auto stat = p.Str("Statistic");
    auto ext = p.Str("ExtendedStatistic");
    if (stat && ext) {
      return Status(400, "InvalidParameterCombination",
                    "The parameters Statistic and ExtendedStatistic are mutually exclusive and you have specified "
                    "both.");
    }
    if (!stat && !ext) return Status::MissingParameter("The parameter Statistic or ExtendedStatistic is required.");
    if (stat) {
      if (!kStatistics.count(*stat)) return EnumError("Statistic", *stat, kStatistics);
      doc["Statistic"] = *stat;
    } else {
      if (!ValidPercentile(*ext)) return InvalidValue("ExtendedStatistic", *ext);
      doc["ExtendedStatistic"] = *ext;
    }
    AP_ASSIGN_OR_RETURN(Dimensions dims, ReadDimensions(p, "Dimensions"));
    doc["Dimensions"] = DimensionsJson(dims);
    AP_ASSIGN_OR_RETURN(int64_t period, RequiredInt(p, "Period"));
    if (!ValidPeriod(period, false)) {
      return Status::Validation("The parameter Period must be 10, 20, 30 or a multiple of 60.");
    }
    doc["Period"] = period;
    if (auto u = p.Str("Unit")) {
      if (!kUnits.count(*u)) return EnumError("Unit", *u, kUnits);
      doc["Unit"] = *u;
    }
    AP_ASSIGN_OR_RETURN(int64_t n, RequiredInt(p, "EvaluationPeriods"));
    if (n < 1) return Constraint("EvaluationPeriods", std::to_string(n), "Member must have value greater than or equal to 1");
    AP_ASSIGN_OR_RETURN(auto m, p.Int("DatapointsToAlarm"));
    if (m && *m < 1) {
      return Constraint("DatapointsToAlarm", std::to_string(*m), "Member must have value greater than or equal to 1");
    }
    if (m && *m > n) {
      return Status::Validation("DatapointsToAlarm must be less than or equal to EvaluationPeriods.");
    }
    if (period * n > 604800 || (period < 3600 && period * n > 86400)) {
      return Status::Validation(
          "The evaluation period (Period x EvaluationPeriods) must not exceed one day (86400 seconds) for periods "
          "under one hour, or seven days (604800 seconds).");
    }
    doc["EvaluationPeriods"] = n;
    if (m) doc["DatapointsToAlarm"] = *m;
    AP_ASSIGN_OR_RETURN(auto threshold, OptDouble(p, "Threshold"));
    if (!threshold) return Missing("Threshold");
    doc["Threshold"] = *threshold;
    AP_ASSIGN_OR_RETURN(std::string op, p.RequiredStr("ComparisonOperator"));
    if (!IsComparisonOperator(op)) {
      static const std::set<std::string> kOps = {
          "GreaterThanOrEqualToThreshold", "GreaterThanThreshold", "LessThanThreshold", "LessThanOrEqualToThreshold",
          "LessThanLowerOrGreaterThanUpperThreshold", "LessThanLowerThreshold", "GreaterThanUpperThreshold"};
      if (kOps.count(op)) {
        return Status::Validation("Comparison operators for anomaly detection bands need a ThresholdMetricId, which "
                                  "this region does not support.");
      }
      return EnumError("ComparisonOperator", op, kOps);
    }
    doc["ComparisonOperator"] = op;
    if (auto t = p.Str("TreatMissingData")) {
      if (!kTreatMissing.count(*t)) return EnumError("TreatMissingData", *t, kTreatMissing);
      doc["TreatMissingData"] = *t;
    }
    if (auto e = p.Str("EvaluateLowSampleCountPercentile")) {
      if (*e != "evaluate" && *e != "ignore") return EnumError("EvaluateLowSampleCountPercentile", *e, {"evaluate", "ignore"});
      if (!ext) {
        return Status::Validation("EvaluateLowSampleCountPercentile is only for alarms on an ExtendedStatistic.");
      }
      doc["EvaluateLowSampleCountPercentile"] = *e;
    }
    AP_ASSIGN_OR_RETURN(Json tags, ReadTags(p));
    auto existing = ctx_->store->Get(kind::kAlarm, name);
    doc["StateTransitionedTimestamp"] = now;
    if (existing) {
      // An update keeps the state and replaces the whole configuration.
      for (const char* f : {"StateValue", "StateReason", "StateReasonData", "StateUpdatedTimestamp",
                            "StateTransitionedTimestamp"}) {
        if (existing->contains(f)) {
          doc[f] = (*existing)[f];
        } else {
          doc.erase(f);
        }
      }
      doc["Tags"] = existing->value("Tags", Json::array());
    } else {
      if (tags.size() > 50) return Status(400, "LimitExceeded", "An alarm can have at most 50 tags.");
      doc["Tags"] = tags;
    }
    // StateReasonData sits after StateReason in DescribeAlarms; the fields above were set in order already.
    std::vector<StoreWrite> writes;
    writes.push_back(AppendHistory(
        *ctx_, name,
        {HistoryItem(name, now, "ConfigurationUpdate",
                     "Alarm \"" + name + "\" " + (existing ? "updated" : "created"),
                     Json{{"version", "1.0"}, {"type", existing ? "Update" : "Create"},
                          {"updatedAlarm", ExpandParts(RenderAlarm(doc))}})},
        now));
    writes.push_back(StoreWrite{kind::kAlarm, name, doc, std::nullopt});
    AP_RETURN_IF_ERROR(ctx_->store->Commit(writes));
    region_->Touch(name);
    return Json();
  }

  Result<Json> DescribeAlarms(const Params& p) {
    auto names = p.List("AlarmNames");
    auto prefix = p.Str("AlarmNamePrefix");
    if (!names.empty() && prefix) {
      return Status(400, "InvalidParameterCombination",
                    "The parameters AlarmNames and AlarmNamePrefix are mutually exclusive and you have specified "
                    "both.");
    }
    auto state = p.Str("StateValue");
    if (state && !kStates.count(*state)) return EnumError("StateValue", *state, kStates);
    auto action_prefix = p.Str("ActionPrefix");
    bool metric_alarms = true;
    auto types = p.List("AlarmTypes");
    if (!types.empty()) {
      metric_alarms = false;
      for (const auto& t : types) {
        if (t == "MetricAlarm") metric_alarms = true;
        else if (t != "CompositeAlarm") return EnumError("AlarmTypes", t, {"CompositeAlarm", "MetricAlarm"});
      }
    }
    AP_ASSIGN_OR_RETURN(Page page, ReadPage(p, "MetricAlarms", 50, 100));
    std::set<std::string> wanted(names.begin(), names.end());
    Json all = Json::array();
    if (metric_alarms) {
      for (const auto& doc : ctx_->store->List(kind::kAlarm)) {
        const std::string& n = (*doc)["AlarmName"].get_ref<const std::string&>();
        if (!wanted.empty() && !wanted.count(n)) continue;
        if (prefix && n.rfind(*prefix, 0) != 0) continue;
        if (state && (*doc)["StateValue"] != *state) continue;
        if (action_prefix) {
          bool any = false;
          for (const char* f : {"OKActions", "AlarmActions", "InsufficientDataActions"}) {
            for (const auto& a : (*doc)[f]) any = any || a.get<std::string>().rfind(*action_prefix, 0) == 0;
          }
          if (!any) continue;
        }
        all.push_back(RenderAlarm(*doc));
      }
    }
    Json result = Json::object();
    Paginate(result, "MetricAlarms", std::move(all), page, "MetricAlarms");
    Json out = JsonObject(3).Add("CompositeAlarms", Json::array()).Add("MetricAlarms", result["MetricAlarms"]).Take();
    if (result.contains("NextToken")) out["NextToken"] = result["NextToken"];
    return out;
  }

  Result<Json> DescribeAlarmsForMetric(const Params& p) {
    AP_ASSIGN_OR_RETURN(std::string ns, p.RequiredStr("Namespace"));
    AP_ASSIGN_OR_RETURN(std::string name, p.RequiredStr("MetricName"));
    AP_ASSIGN_OR_RETURN(Dimensions dims, ReadDimensions(p, "Dimensions"));
    MetricKey key{ns, name, dims};
    key.Canonicalize();
    auto stat = p.Str("Statistic");
    auto ext = p.Str("ExtendedStatistic");
    AP_ASSIGN_OR_RETURN(auto period, p.Int("Period"));
    auto unit = p.Str("Unit");
    Json all = Json::array();
    for (const auto& doc : ctx_->store->List(kind::kAlarm)) {
      if (MetricKeyOf(*doc).Id() != key.Id()) continue;
      if (stat && doc->value("Statistic", std::string()) != *stat) continue;
      if (ext && doc->value("ExtendedStatistic", std::string()) != *ext) continue;
      if (period && doc->value("Period", int64_t{0}) != *period) continue;
      if (unit && doc->value("Unit", std::string()) != *unit) continue;
      all.push_back(RenderAlarm(*doc));
    }
    return JsonObject(1).Add("MetricAlarms", std::move(all)).Take();
  }

  Result<Json> DeleteAlarms(const Params& p) {
    auto names = p.List("AlarmNames");
    if (names.empty()) return Missing("AlarmNames");
    std::vector<std::string> missing;
    std::vector<StoreWrite> writes;
    for (const auto& n : names) {
      if (!ctx_->store->Get(kind::kAlarm, n)) {
        missing.push_back(n);
        continue;
      }
      writes.push_back(StoreWrite{kind::kAlarm, n, std::nullopt, std::nullopt});
    }
    if (!missing.empty()) {
      std::string list;
      for (const auto& n : missing) list += (list.empty() ? "" : ", ") + n;
      return Status(404, "ResourceNotFound", "The following alarms were not found: [" + list + "]");
    }
    AP_RETURN_IF_ERROR(ctx_->store->Commit(writes));
    return Json();
  }

  Result<Json> SetAlarmState(const Params& p) {
    AP_ASSIGN_OR_RETURN(std::string name, p.RequiredStr("AlarmName"));
    AP_ASSIGN_OR_RETURN(std::string state, p.RequiredStr("StateValue"));
    if (!kStates.count(state)) return EnumError("StateValue", state, kStates);
    AP_ASSIGN_OR_RETURN(std::string reason, p.RequiredStr("StateReason"));
    AP_RETURN_IF_ERROR(CheckLength("StateReason", reason, 0, 1023).status());
    std::string data = p.Str("StateReasonData").value_or("");
    if (!data.empty()) {
      Json parsed = Json::parse(data, nullptr, false);
      if (parsed.is_discarded()) return Status(400, "InvalidFormat", "The StateReasonData is not valid JSON.");
    }
    VersionedDoc current = ctx_->store->GetVersioned(kind::kAlarm, name);
    if (!current.doc) return Status(404, "ResourceNotFound", "Alarm " + name + " not found");
    const int64_t now = ctx_->clock->NowMillis();
    Json doc = *current.doc;
    const std::string old_state = doc.value("StateValue", std::string("INSUFFICIENT_DATA"));
    SetState(doc, state, reason, data, now);
    std::vector<StoreWrite> writes;
    writes.push_back(AppendHistory(
        *ctx_, name,
        {HistoryItem(name, now, "StateUpdate", "Alarm updated from " + old_state + " to " + state,
                     Json{{"version", "1.0"},
                          {"oldState", {{"stateValue", old_state}, {"stateReason", current.doc->value("StateReason", std::string())}}},
                          {"newState", {{"stateValue", state}, {"stateReason", reason}}}})},
        now));
    writes.push_back(StoreWrite{kind::kAlarm, name, doc, current.revision});
    AP_RETURN_IF_ERROR(ctx_->store->Commit(writes));
    if (old_state != state && doc.value("ActionsEnabled", true)) {
      std::vector<PendingAction> actions;
      for (auto& arn : ActionsFor(doc, state)) actions.push_back({arn, ChangeOf(doc, old_state)});
      region_->QueueActions(std::move(actions));  // run by after_write, once the region lock is released
    }
    return Json();
  }

  Result<Json> SetActionsEnabled(const Params& p, bool enabled) {
    auto names = p.List("AlarmNames");
    if (names.empty()) return Missing("AlarmNames");
    std::vector<StoreWrite> writes;
    const int64_t now = ctx_->clock->NowMillis();
    for (const auto& n : names) {
      VersionedDoc v = ctx_->store->GetVersioned(kind::kAlarm, n);
      if (!v.doc || v.doc->value("ActionsEnabled", true) == enabled) continue;
      Json doc = *v.doc;
      doc["ActionsEnabled"] = enabled;
      doc["AlarmConfigurationUpdatedTimestamp"] = now;
      writes.push_back(AppendHistory(*ctx_, n,
                                     {HistoryItem(n, now, "ConfigurationUpdate",
                                                  std::string("Alarm \"") + n + "\" updated",
                                                  Json{{"version", "1.0"}, {"type", "Update"},
                                                       {"actionsEnabled", enabled}})},
                                     now));
      writes.push_back(StoreWrite{kind::kAlarm, n, std::move(doc), v.revision});
    }
    AP_RETURN_IF_ERROR(ctx_->store->Commit(writes));
    return Json();
  }

  Result<Json> DescribeAlarmHistory(const Params& p) {
    auto name = p.Str("AlarmName");
    auto type = p.Str("HistoryItemType");
    static const std::set<std::string> kTypes = {"ConfigurationUpdate", "StateUpdate", "Action",
                                                  "AlarmContributorStateUpdate", "AlarmContributorAction"};
    if (type && !kTypes.count(*type)) return EnumError("HistoryItemType", *type, kTypes);
    std::optional<int64_t> from, to;
    if (p.Has("StartDate")) {
      AP_ASSIGN_OR_RETURN(from, RequiredTime(p, "StartDate"));
    }
    if (p.Has("EndDate")) {
      AP_ASSIGN_OR_RETURN(to, RequiredTime(p, "EndDate"));
    }
    std::string scan = p.Str("ScanBy").value_or("TimestampDescending");
    if (scan != "TimestampDescending" && scan != "TimestampAscending") {
      return EnumError("ScanBy", scan, {"TimestampDescending", "TimestampAscending"});
    }
    AP_ASSIGN_OR_RETURN(Page page, ReadPage(p, "AlarmHistoryItems", 100, 100));
    std::vector<Json> items;
    auto add = [&](const Json& doc) {
      for (const auto& item : doc["Items"]) {
        int64_t at = item["Timestamp"].get<int64_t>();
        if (type && item["HistoryItemType"] != *type) continue;
        if (from && at < *from) continue;
        if (to && at > *to) continue;
        items.push_back(item);
      }
    };
    if (name) {
      if (auto doc = ctx_->store->Get(kind::kAlarmHistory, *name)) add(*doc);
    } else {
      for (const auto& doc : ctx_->store->List(kind::kAlarmHistory)) add(*doc);
    }
    std::stable_sort(items.begin(), items.end(), [&](const Json& a, const Json& b) {
      int64_t ta = a["Timestamp"].get<int64_t>(), tb = b["Timestamp"].get<int64_t>();
      return scan == "TimestampDescending" ? ta > tb : ta < tb;
    });
    Json all = Json::array();
    for (auto& item : items) {
      item["Timestamp"] = TimestampValue(item["Timestamp"].get<int64_t>());
      all.push_back(std::move(item));
    }
    Json result = Json::object();
    Paginate(result, "AlarmHistoryItems", std::move(all), page, "AlarmHistoryItems");
    return result;
  }

  // ---- tags -------------------------------------------------------------------------------------------------

  Result<Json> ReadTags(const Params& p) {
    Json tags = Json::array();
    for (const auto& t : p.StructList("Tags")) {
      auto k = t.find("Key");
      auto v = t.find("Value");
      if (k == t.end()) return Missing("Tags.member.N.Key");
      if (v == t.end()) return Missing("Tags.member.N.Value");
      AP_RETURN_IF_ERROR(CheckLength("Tags.member.N.Key", k->second, 1, 128).status());
      AP_RETURN_IF_ERROR(CheckLength("Tags.member.N.Value", v->second, 0, 256).status());
      tags.push_back(JsonObject(2).Add("Key", k->second).Add("Value", v->second).Take());
    }
    return tags;
  }

  Result<VersionedDoc> AlarmByArn(const std::string& arn) {
    const std::string prefix = ctx_->Arn("cloudwatch", "alarm:");
    VersionedDoc v;
    if (arn.rfind(prefix, 0) == 0) v = ctx_->store->GetVersioned(kind::kAlarm, arn.substr(prefix.size()));
    if (!v.doc) return Status(404, "ResourceNotFoundException", "The resource " + arn + " was not found.");
    return v;
  }

  Result<Json> TagResource(const Params& p) {
    AP_ASSIGN_OR_RETURN(std::string arn, p.RequiredStr("ResourceARN"));
    AP_ASSIGN_OR_RETURN(Json tags, ReadTags(p));
    AP_ASSIGN_OR_RETURN(VersionedDoc v, AlarmByArn(arn));
    Json doc = *v.doc;
    Json merged = doc.value("Tags", Json::array());
    for (const auto& t : tags) {
      auto it = std::find_if(merged.begin(), merged.end(), [&](const Json& m) { return m["Key"] == t["Key"]; });
      if (it != merged.end()) {
        (*it)["Value"] = t["Value"];
      } else {
        merged.push_back(t);
      }
    }
    if (merged.size() > 50) return Status(400, "LimitExceededException", "An alarm can have at most 50 tags.");
    doc["Tags"] = std::move(merged);
    AP_RETURN_IF_ERROR(ctx_->store->Commit({{kind::kAlarm, doc["AlarmName"].get<std::string>(), doc, v.revision}}));
    return Json::object();
  }

  Result<Json> UntagResource(const Params& p) {
    AP_ASSIGN_OR_RETURN(std::string arn, p.RequiredStr("ResourceARN"));
    auto keys = p.List("TagKeys");
    AP_ASSIGN_OR_RETURN(VersionedDoc v, AlarmByArn(arn));
    Json doc = *v.doc;
    Json kept = Json::array();
    for (const auto& t : doc.value("Tags", Json::array())) {
      if (std::find(keys.begin(), keys.end(), t["Key"].get<std::string>()) == keys.end()) kept.push_back(t);
    }
    doc["Tags"] = std::move(kept);
    AP_RETURN_IF_ERROR(ctx_->store->Commit({{kind::kAlarm, doc["AlarmName"].get<std::string>(), doc, v.revision}}));
    return Json::object();
  }

  Result<Json> ListTagsForResource(const Params& p) {
    AP_ASSIGN_OR_RETURN(std::string arn, p.RequiredStr("ResourceARN"));
    AP_ASSIGN_OR_RETURN(VersionedDoc v, AlarmByArn(arn));
    return JsonObject(1).Add("Tags", v.doc->value("Tags", Json::array())).Take();
  }

 private:
  static bool ValidPercentile(const std::string& s) {
    if (s.size() < 2 || s[0] != 'p') return false;
    char* end = nullptr;
    double v = std::strtod(s.c_str() + 1, &end);
    return *end == '\0' && v >= 0 && v <= 100 && std::isdigit(static_cast<unsigned char>(s[1]));
  }

  static std::string WithCommas(int64_t n) {
    std::string s = std::to_string(n);
    for (int i = static_cast<int>(s.size()) - 3; i > 0; i -= 3) s.insert(static_cast<size_t>(i), ",");
    return s;
  }

  RegionContext* ctx_;
  std::shared_ptr<CloudWatchRegion> region_;
};

}  // namespace

std::optional<int64_t> ParseTimestampMillis(const std::string& text) {
  if (text.empty()) return std::nullopt;
  if (text.find('-') == std::string::npos || text[0] == '-') {
    char* end = nullptr;
    double secs = std::strtod(text.c_str(), &end);
    if (*end != '\0' || !std::isfinite(secs)) return std::nullopt;
    return static_cast<int64_t>(std::llround(secs * 1000));
  }
  return ParseIsoTimeMillis(text);
}

ApiService CloudWatchApi(RegionContext* ctx, std::shared_ptr<CloudWatchRegion> region) {
  auto svc = std::make_shared<Service>(ctx, region);
  using Method = Result<Json> (Service::*)(const Params&);
  auto op = [svc](const char* name, Access access, Method m, std::vector<ListLimit> limits = {}) {
    return Operation{name, access, [svc, m](const Params& p) { return ((*svc).*m)(p); }, std::move(limits)};
  };
  const std::vector<ListLimit> kActions = {{"OKActions", 5}, {"AlarmActions", 5}, {"InsufficientDataActions", 5},
                                           {"Dimensions", 30}, {"Tags", 50}};
  ApiService api;
  api.info = {"monitoring", "2010-08-01", kNs, WireProtocol::kQuery};
  api.operations = {
      op("PutMetricData", Access::kRead /* the metric store locks itself */, &Service::PutMetricData,
         {{"MetricData", 1000}}),
      op("GetMetricStatistics", Access::kRead, &Service::GetMetricStatistics),
      op("GetMetricData", Access::kRead, &Service::GetMetricData),
      op("ListMetrics", Access::kRead, &Service::ListMetrics),
      op("PutMetricAlarm", Access::kWrite, &Service::PutMetricAlarm, kActions),
      op("DescribeAlarms", Access::kRead, &Service::DescribeAlarms, {{"AlarmNames", 100}}),
      op("DescribeAlarmsForMetric", Access::kRead, &Service::DescribeAlarmsForMetric),
      op("DescribeAlarmHistory", Access::kRead, &Service::DescribeAlarmHistory),
      op("DeleteAlarms", Access::kWrite, &Service::DeleteAlarms, {{"AlarmNames", 100}}),
      op("SetAlarmState", Access::kWrite, &Service::SetAlarmState),
      Operation{"EnableAlarmActions", Access::kWrite,
                [svc](const Params& p) { return svc->SetActionsEnabled(p, true); }, {{"AlarmNames", 100}}},
      Operation{"DisableAlarmActions", Access::kWrite,
                [svc](const Params& p) { return svc->SetActionsEnabled(p, false); }, {{"AlarmNames", 100}}},
      op("TagResource", Access::kWrite, &Service::TagResource),
      op("UntagResource", Access::kWrite, &Service::UntagResource),
      op("ListTagsForResource", Access::kRead, &Service::ListTagsForResource),
  };
  // PutMetricData: 1,000 metrics, each with up to 30 dimensions and 150 values and counts.
  api.operations[0].max_parameters = 400'000;
  api.write_lock = ctx->mu;
  api.after_write = [region, ctx] {
    region->RunPendingActions();
    if (ctx->wake) ctx->wake();
  };
  return api;
}

}  // namespace autopipe::cloudwatch

#include "drill/load.h"

#include <curl/curl.h>
#include <mysql.h>

#include "drill/dns_client.h"

namespace autopipe::drill {
namespace {

size_t Discard(char*, size_t size, size_t n, void*) { return size * n; }

MYSQL* Connect(const DbTarget& t, const std::string& user, const std::string& password, std::string* error) {
  MYSQL* m = mysql_init(nullptr);
  if (!m) {
    *error = "mysql_init failed";
    return nullptr;
  }
  unsigned int connect_timeout = 1, io_timeout = 2;
  mysql_optionsv(m, MYSQL_OPT_CONNECT_TIMEOUT, &connect_timeout);
  mysql_optionsv(m, MYSQL_OPT_READ_TIMEOUT, &io_timeout);
  mysql_optionsv(m, MYSQL_OPT_WRITE_TIMEOUT, &io_timeout);
  unsigned int protocol = MYSQL_PROTOCOL_TCP;
  mysql_optionsv(m, MYSQL_OPT_PROTOCOL, &protocol);
  my_bool no = 0;
  mysql_optionsv(m, MYSQL_OPT_RECONNECT, &no);
  if (!mysql_real_connect(m, t.host.c_str(), user.c_str(), password.c_str(), nullptr,
                          static_cast<unsigned int>(t.port), nullptr, 0)) {
    *error = mysql_error(m);
    mysql_close(m);
    return nullptr;
  }
  return m;
}

std::string Quote(MYSQL* m, const std::string& s) {
  std::string out(s.size() * 2 + 1, '\0');
  out.resize(mysql_real_escape_string(m, out.data(), s.data(), static_cast<unsigned long>(s.size())));
  return "'" + out + "'";
}

}  // namespace

void HttpLoad::Start(SteadyTime deadline) {
  thread_ = std::thread([this, deadline] { Run(deadline); });
}

void HttpLoad::Stop() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
}

std::vector<HttpSample> HttpLoad::Samples() const {
  std::lock_guard lock(mu_);
  return samples_;
}

double HttpLoad::FirstOkStartedAfter(double since_s) const {
  std::lock_guard lock(mu_);
  for (const auto& s : samples_) {
    if (s.ok && s.start_s >= since_s) return s.start_s;
  }
  return -1;
}

void HttpLoad::Run(SteadyTime deadline) {
  DnsClient dns(opts_.dns_server, opts_.name);
  CURL* curl = curl_easy_init();
  const std::string host_header = "Host: " + opts_.name;
  curl_slist* headers = curl_slist_append(nullptr, host_header.c_str());
  auto next = std::chrono::steady_clock::now();
  for (int64_t n = 0; n < opts_.max_requests && !stop_ && std::chrono::steady_clock::now() < deadline; ++n) {
    HttpSample s;
    s.start_s = SecondsSince(t0_);
    auto answer = dns.Resolve(static_cast<int>(opts_.timeout_ms));
    if (!answer.ok()) {
      s.error = answer.status().message();
    } else if (answer->addresses.empty()) {
      s.error = "the name has no A record (" + answer->rcode + ")";
    } else {
      s.address = answer->addresses.front();
      const std::string url = "http://" + s.address + ":" + std::to_string(opts_.port) + opts_.path;
      curl_easy_reset(curl);
      curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
      curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
      curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, Discard);
      curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, opts_.timeout_ms);
      curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, opts_.timeout_ms);
      curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
      curl_easy_setopt(curl, CURLOPT_PROXY, "");
      curl_easy_setopt(curl, CURLOPT_FORBID_REUSE, 1L);  // a new connection each time, as a fresh client would
      const CURLcode rc = curl_easy_perform(curl);
      long status = 0;
      curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
      s.ok = rc == CURLE_OK && status >= 200 && status < 400;
      if (!s.ok) s.error = rc != CURLE_OK ? curl_easy_strerror(rc) : "HTTP " + std::to_string(status);
    }
    s.end_s = SecondsSince(t0_);
    {
      std::lock_guard lock(mu_);
      samples_.push_back(std::move(s));
    }
    next += opts_.interval;
    const auto now = std::chrono::steady_clock::now();
    if (next > now) {
      std::this_thread::sleep_until(std::min(next, deadline));
    } else {
      next = now;  // a slow request does not make the next ones burst
    }
  }
  curl_slist_free_all(headers);
  curl_easy_cleanup(curl);
}

Status PrepareDrillTable(const DbTarget& target, const std::string& user, const std::string& password) {
  std::string error;
  MYSQL* m = Connect(target, user, password, &error);
  if (!m) return Status(503, "DbUnreachable", target.host + ":" + std::to_string(target.port) + ": " + error, false);
  for (const char* sql : {"CREATE DATABASE IF NOT EXISTS autopipe_drill",
                          "CREATE TABLE IF NOT EXISTS autopipe_drill.writes (run_id VARCHAR(40) NOT NULL, "
                          "seq BIGINT NOT NULL, target VARCHAR(8) NOT NULL, at_ms BIGINT NOT NULL, "
                          "PRIMARY KEY (run_id, seq)) ENGINE=InnoDB"}) {
    if (mysql_query(m, sql) != 0) {
      Status st(400, "DbError", std::string("preparing the drill table: ") + mysql_error(m));
      mysql_close(m);
      return st;
    }
  }
  mysql_close(m);
  return Status::Ok();
}

Result<std::vector<int64_t>> ReadDrillSeqs(const DbTarget& target, const std::string& user,
                                           const std::string& password, const std::string& run_id) {
  std::string error;
  MYSQL* m = Connect(target, user, password, &error);
  if (!m) return Status(503, "DbUnreachable", target.host + ":" + std::to_string(target.port) + ": " + error, false);
  const std::string sql = "SELECT seq FROM autopipe_drill.writes WHERE run_id = " + Quote(m, run_id);
  if (mysql_query(m, sql.c_str()) != 0) {
    Status st(400, "DbError", std::string("reading the drill table: ") + mysql_error(m));
    mysql_close(m);
    return st;
  }
  MYSQL_RES* res = mysql_store_result(m);
  std::vector<int64_t> out;
  while (MYSQL_ROW row = res ? mysql_fetch_row(res) : nullptr) {
    if (row[0]) out.push_back(std::stoll(row[0]));
  }
  if (res) mysql_free_result(res);
  mysql_close(m);
  return out;
}

void WriteLoad::Start(SteadyTime deadline) {
  thread_ = std::thread([this, deadline] { Run(deadline); });
}

void WriteLoad::Stop() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
}

void WriteLoad::SwitchTarget(DbTarget target) {
  std::lock_guard lock(mu_);
  target_ = std::move(target);
  label_ = WriteTarget::kNew;
  ++target_gen_;
}

std::vector<WriteSample> WriteLoad::Samples() const {
  std::lock_guard lock(mu_);
  return samples_;
}

void WriteLoad::Run(SteadyTime deadline) {
  MYSQL* conn = nullptr;
  uint64_t conn_gen = 0;
  auto next = std::chrono::steady_clock::now();
  for (int64_t seq = 1; seq <= opts_.max_writes && !stop_ && std::chrono::steady_clock::now() < deadline; ++seq) {
    DbTarget target;
    WriteTarget label;
    uint64_t gen;
    {
      std::lock_guard lock(mu_);
      target = target_;
      label = label_;
      gen = target_gen_;
    }
    WriteSample s;
    s.seq = seq;
    s.target = label;
    s.start_s = SecondsSince(t0_);
    if (conn && conn_gen != gen) {
      mysql_close(conn);
      conn = nullptr;
    }
    if (!conn) {
      std::string error;
      conn = Connect(target, opts_.user, opts_.password, &error);
      conn_gen = gen;
      if (!conn) s.error = "connect: " + error;
    }
    if (conn) {
      const int64_t at_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                                std::chrono::system_clock::now().time_since_epoch())
                                .count();
      const std::string sql = "INSERT INTO autopipe_drill.writes (run_id, seq, target, at_ms) VALUES (" +
                              Quote(conn, opts_.run_id) + ", " + std::to_string(seq) + ", '" +
                              (label == WriteTarget::kOld ? "old" : "new") + "', " + std::to_string(at_ms) + ")";
      if (mysql_query(conn, sql.c_str()) == 0) {
        s.acked = true;
      } else {
        s.error = mysql_error(conn);
        mysql_close(conn);  // a failed statement: start again on a new connection
        conn = nullptr;
      }
    }
    s.end_s = SecondsSince(t0_);
    if (s.acked) {
      ++acked_;
      if (label == WriteTarget::kNew) acked_new_ = true;
    }
    {
      std::lock_guard lock(mu_);
      samples_.push_back(std::move(s));
    }
    next += opts_.interval;
    const auto now = std::chrono::steady_clock::now();
    if (next > now) {
      std::this_thread::sleep_until(std::min(next, deadline));
    } else {
      next = now;
    }
  }
  if (conn) mysql_close(conn);
}

}  // namespace autopipe::drill

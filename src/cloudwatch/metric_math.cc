#include "cloudwatch/metric_math.h"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <optional>
#include <set>

namespace autopipe::cloudwatch {
namespace {

using Series = std::map<int64_t, double>;

struct Value {
  bool is_scalar = true;
  double scalar = 0;
  Series series;
};

class Parser {
 public:
  Parser(const std::string& text, const std::map<std::string, const Series*>& ids, const std::set<int64_t>& times)
      : s_(text), ids_(ids), times_(times) {}

  Status Parse(Value* out) {
    auto v = Expr();
    if (!v) return error_;
    Skip();
    if (pos_ != s_.size()) return Fail("unexpected '" + s_.substr(pos_, 1) + "'");
    *out = std::move(*v);
    return Status::Ok();
  }
  const std::string& missing_id() const { return missing_id_; }

 private:
  Status Fail(const std::string& what) {
    if (error_.ok()) {
      error_ = Status::Validation("Error in expression '" + s_ + "': " + what + " (at character " +
                                  std::to_string(pos_ + 1) + ").");
    }
    return error_;
  }
  void Skip() {
    while (pos_ < s_.size() && std::isspace(static_cast<unsigned char>(s_[pos_]))) ++pos_;
  }
  bool Eat(char c) {
    Skip();
    if (pos_ < s_.size() && s_[pos_] == c) {
      ++pos_;
      return true;
    }
    return false;
  }

  static Value Combine(const Value& a, const Value& b, char op) {
    auto apply = [op](double x, double y) -> std::optional<double> {
      switch (op) {
        case '+': return x + y;
        case '-': return x - y;
        case '*': return x * y;
        default: return y == 0 ? std::nullopt : std::optional<double>(x / y);
      }
    };
    Value out;
    if (a.is_scalar && b.is_scalar) {
      auto r = apply(a.scalar, b.scalar);
      out.scalar = r.value_or(0);
      return out;
    }
    out.is_scalar = false;
    if (a.is_scalar || b.is_scalar) {
      const Series& s = a.is_scalar ? b.series : a.series;
      for (const auto& [t, v] : s) {
        auto r = a.is_scalar ? apply(a.scalar, v) : apply(v, b.scalar);
        if (r) out.series[t] = *r;
      }
      return out;
    }
    for (const auto& [t, v] : a.series) {
      auto it = b.series.find(t);
      if (it == b.series.end()) continue;
      if (auto r = apply(v, it->second)) out.series[t] = *r;
    }
    return out;
  }

  std::optional<Value> Expr() {
    auto left = Term();
    if (!left) return std::nullopt;
    while (true) {
      Skip();
      if (pos_ < s_.size() && (s_[pos_] == '+' || s_[pos_] == '-')) {
        char op = s_[pos_++];
        auto right = Term();
        if (!right) return std::nullopt;
        left = Combine(*left, *right, op);
      } else {
        return left;
      }
    }
  }

  std::optional<Value> Term() {
    auto left = Factor();
    if (!left) return std::nullopt;
    while (true) {
      Skip();
      if (pos_ < s_.size() && (s_[pos_] == '*' || s_[pos_] == '/')) {
        char op = s_[pos_++];
        auto right = Factor();
        if (!right) return std::nullopt;
        left = Combine(*left, *right, op);
      } else {
        return left;
      }
    }
  }

  std::optional<Value> Factor() {
    Skip();
    if (pos_ >= s_.size()) {
      (void)Fail("unexpected end");  // the error is kept in error_ and returned by Parse
      return std::nullopt;
    }
    char c = s_[pos_];
    if (c == '-') {
      ++pos_;
      auto v = Factor();
      if (!v) return std::nullopt;
      Value zero;
      return Combine(zero, *v, '-');
    }
    if (c == '(') {
      ++pos_;
      auto v = Expr();
      if (!v) return std::nullopt;
      if (!Eat(')')) {
        (void)Fail("missing ')'");  // kept in error_
        return std::nullopt;
      }
      return v;
    }
    if (std::isdigit(static_cast<unsigned char>(c)) || c == '.') {
      char* end = nullptr;
      double d = std::strtod(s_.c_str() + pos_, &end);
      pos_ = static_cast<size_t>(end - s_.c_str());
      Value v;
      v.scalar = d;
      return v;
    }
    if (std::isalpha(static_cast<unsigned char>(c))) {
      size_t start = pos_;
      while (pos_ < s_.size() && (std::isalnum(static_cast<unsigned char>(s_[pos_])) || s_[pos_] == '_')) ++pos_;
      std::string word = s_.substr(start, pos_ - start);
      Skip();
      if (pos_ < s_.size() && s_[pos_] == '(') {
        ++pos_;
        return Function(word);
      }
      auto it = ids_.find(word);
      if (it == ids_.end()) {
        missing_id_ = word;
        (void)Fail("unknown id '" + word + "'");  // kept in error_
        return std::nullopt;
      }
      Value v;
      v.is_scalar = false;
      v.series = *it->second;
      return v;
    }
    (void)Fail("unexpected '" + std::string(1, c) + "'");  // kept in error_
    return std::nullopt;
  }

  std::optional<Value> Function(const std::string& name) {
    if (name != "SUM" && name != "AVG" && name != "MIN" && name != "MAX") {
      (void)Fail("unknown function " + name);  // kept in error_
      return std::nullopt;
    }
    std::vector<Value> args;
    bool list = false;
    if (Eat('[')) {
      list = true;
      if (!Args(&args, ']')) return std::nullopt;
      if (!Eat(')')) {
        (void)Fail("missing ')'");  // kept in error_
        return std::nullopt;
      }
    } else if (!Args(&args, ')')) {
      return std::nullopt;
    }
    auto reduce = [&](const std::vector<double>& xs) {
      double acc = name == "MIN" ? xs[0] : name == "MAX" ? xs[0] : 0;
      for (double x : xs) {
        if (name == "MIN") acc = std::min(acc, x);
        else if (name == "MAX") acc = std::max(acc, x);
        else acc += x;
      }
      return name == "AVG" ? acc / static_cast<double>(xs.size()) : acc;
    };
    if (!list && args.size() == 1) {
      Value v;
      if (args[0].is_scalar) return args[0];
      std::vector<double> xs;
      for (const auto& [t, x] : args[0].series) xs.push_back(x);
      if (xs.empty()) {
        v.is_scalar = false;  // nothing to reduce: an empty series
        return v;
      }
      v.scalar = reduce(xs);
      // One number, at every timestamp the query's series have.
      v.is_scalar = false;
      for (int64_t t : times_) v.series[t] = v.scalar;
      return v;
    }
    Value out;
    out.is_scalar = false;
    std::set<int64_t> ts;
    for (const auto& a : args) {
      if (a.is_scalar) {
        ts.insert(times_.begin(), times_.end());
      } else {
        for (const auto& [t, x] : a.series) ts.insert(t);
      }
    }
    for (int64_t t : ts) {
      std::vector<double> xs;
      for (const auto& a : args) {
        if (a.is_scalar) {
          xs.push_back(a.scalar);
        } else if (auto it = a.series.find(t); it != a.series.end()) {
          xs.push_back(it->second);
        }
      }
      if (!xs.empty()) out.series[t] = reduce(xs);
    }
    return out;
  }

  bool Args(std::vector<Value>* args, char close) {
    if (Eat(close)) return true;
    while (true) {
      auto v = Expr();
      if (!v) return false;
      args->push_back(std::move(*v));
      if (Eat(close)) return true;
      if (!Eat(',')) {
        (void)Fail("expected ',' or '" + std::string(1, close) + "'");  // kept in error_
        return false;
      }
    }
  }

  const std::string& s_;
  const std::map<std::string, const Series*>& ids_;
  const std::set<int64_t>& times_;
  size_t pos_ = 0;
  Status error_;
  std::string missing_id_;
};

}  // namespace

Status EvaluateMath(std::vector<MathQuery>* queries) {
  std::set<std::string> done;
  std::set<int64_t> times;
  for (const auto& q : *queries) {
    if (q.expression.empty()) {
      done.insert(q.id);
      for (const auto& [t, v] : q.series) times.insert(t);
    }
  }
  std::set<std::string> ids;
  for (const auto& q : *queries) {
    if (!ids.insert(q.id).second) return Status::Validation("The Id " + q.id + " is used by more than one query.");
  }
  // Each pass evaluates the expressions whose ids are ready; a pass with no progress means a cycle or a bad id.
  for (size_t pass = 0; pass <= queries->size(); ++pass) {
    bool progress = false, pending = false;
    Status last;
    for (auto& q : *queries) {
      if (done.count(q.id)) continue;
      std::map<std::string, const Series*> ready;
      for (const auto& o : *queries) {
        if (done.count(o.id)) ready[o.id] = &o.series;
      }
      Parser parser(q.expression, ready, times);
      Value v;
      Status st = parser.Parse(&v);
      if (!st.ok()) {
        if (!parser.missing_id().empty() && ids.count(parser.missing_id())) {
          pending = true;  // depends on an expression not evaluated yet
          last = st;
          continue;
        }
        return st;
      }
      if (v.is_scalar) {
        for (int64_t t : times) q.series[t] = v.scalar;
      } else {
        q.series = std::move(v.series);
      }
      done.insert(q.id);
      progress = true;
    }
    if (!pending) return Status::Ok();
    if (!progress) return Status::Validation("Circular dependency between the expressions of the query.");
  }
  return Status::Ok();
}

}  // namespace autopipe::cloudwatch

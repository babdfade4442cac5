// Status and Result<T>: cheap error values passed between modules instead of exceptions.
//
// A Status carries an AWS error code ("ValidationError", "AlreadyExists", ...), the HTTP status the API edge
// should answer with, whether the fault is the caller's (Sender) or ours (Receiver), and a human message.
// Service code builds them with the named constructors; only the API edge turns them into XML/JSON bodies.
//
// Thread-safety: plain values; safe to copy between threads.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <variant>

namespace autopipe {

class [[nodiscard]] Status {
 public:
  Status() = default;  // OK
  Status(int http_status, std::string code, std::string message, bool sender_fault = true)
      : http_status_(http_status), code_(std::move(code)), message_(std::move(message)),
        sender_fault_(sender_fault) {}

  static Status Ok() { return Status(); }
  static Status Validation(std::string message) { return Status(400, "ValidationError", std::move(message)); }
  static Status InvalidParameterValue(std::string message) {
    return Status(400, "InvalidParameterValue", std::move(message));
  }
  static Status MissingParameter(std::string message) { return Status(400, "MissingParameter", std::move(message)); }
  static Status Internal(std::string message) { return Status(500, "InternalFailure", std::move(message), false); }

  bool ok() const { return code_.empty(); }
  int http_status() const { return http_status_; }
  const std::string& code() const { return code_; }
  const std::string& message() const { return message_; }
  bool sender_fault() const { return sender_fault_; }
  std::string ToString() const { return ok() ? "OK" : code_ + ": " + message_; }

 private:
  int http_status_ = 200;
  std::string code_;
  std::string message_;
  bool sender_fault_ = true;
};

// Either a value or a non-OK Status. A Result made from an OK Status (a bug: there is no value to give) holds
// an InternalFailure instead, so it can never look like success without a value.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT(runtime/explicit)
  Result(Status status)                      // NOLINT(runtime/explicit)
      : v_(status.ok() ? Status::Internal("internal error: OK status given as a Result's error") : std::move(status)) {}
  bool ok() const { return std::holds_alternative<T>(v_); }
  const Status& status() const {
    static const Status kOk;
    return ok() ? kOk : std::get<Status>(v_);
  }
  T& value() { return std::get<T>(v_); }
  const T& value() const { return std::get<T>(v_); }
  T& operator*() { return value(); }
  T* operator->() { return &value(); }

 private:
  std::variant<T, Status> v_;
};

#define AP_RETURN_IF_ERROR(expr)              \
  do {                                        \
    ::autopipe::Status _st = (expr);          \
    if (!_st.ok()) return _st;                \
  } while (0)

// AP_ASSIGN_OR_RETURN(auto name, ParseName(p)): declares `name` from a Result's value, or returns its Status.
#define AP_STATUS_CONCAT_INNER(a, b) a##b
#define AP_STATUS_CONCAT(a, b) AP_STATUS_CONCAT_INNER(a, b)
#define AP_ASSIGN_OR_RETURN(lhs, expr) AP_ASSIGN_OR_RETURN_IMPL(AP_STATUS_CONCAT(_ap_result_, __LINE__), lhs, expr)
#define AP_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                             \
  if (!tmp.ok()) return tmp.status();            \
  lhs = std::move(tmp.value())

}  // namespace autopipe

// Result<T>: a value or an Error with a message that names the input and the problem.
// Used wherever failure is an expected outcome (bad input, missing host feature),
// so callers decide what to do instead of catching exceptions.
#pragma once
#include <string>
#include <utility>
#include <variant>

namespace wand {

struct Error {
  std::string message;
  // A machine-readable kind for callers that act on it (the server's HTTP status, the CLI's exit
  // code); "" for most errors. llm/llm.h defines the model layer's codes.
  std::string code = {};
};

// Error::code of a refusal of the options given that shows only once their folder or run is read
// (a resume whose options differ from the recorded ones): the CLI's bad-input exit, not a failure.
inline constexpr const char* kOptionConflict = "option_conflict";

template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}
  Result(Error e) : v_(std::move(e)) {}

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }
  T& value() & { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  const T& value() const& { return std::get<0>(v_); }
  T* operator->() { return &value(); }
  T& operator*() { return value(); }
  const Error& error() const { return std::get<1>(v_); }

 private:
  std::variant<T, Error> v_;
};

// Result<void>
struct Ok {};
using VoidResult = Result<Ok>;
inline VoidResult ok_status() { return Ok{}; }

}  // namespace wand

#include "feedback/feedback.h"
#include "feedback/clip.h"

#include <fmt/core.h>

#include <sstream>

namespace wand::feedback {
namespace {
constexpr const char* kNames[] = {"none",         "syntax_error", "compile_error", "runtime_error", "wrong_answer",
                                  "timeout",      "memory_limit", "output_limit",  "sandbox_error"};

std::string source_line(const std::string& program, int line) {
  std::istringstream in(program);
  std::string s;
  for (int i = 1; std::getline(in, s); ++i)
    if (i == line) return s.substr(s.find_first_not_of(" \t") == std::string::npos ? 0 : s.find_first_not_of(" \t"));
  return {};
}

}  // namespace

const char* to_string(ErrorClass c) { return kNames[static_cast<int>(c)]; }

Json Verdict::to_json() const {
  Json j = {{"passed", passed}, {"error_class", to_string(error)}, {"reward", reward}, {"feedback", feedback}};
  if (!exception_type.empty()) j["exception"] = exception_type;
  if (line) j["line"] = line;
  if (!answer.empty()) j["answer"] = answer;
  if (!tests.empty()) {
    int passed_tests = 0;
    Json ts = Json::array();
    for (auto& t : tests) {
      passed_tests += t.passed;
      Json x = {{"test", t.index}, {"passed", t.passed}, {"source", t.source}};
      if (!t.expected.empty()) x["expected"] = t.expected;
      if (!t.got.empty()) x["got"] = t.got;
      if (!t.error.empty()) x["error"] = t.error;
      ts.push_back(std::move(x));
    }
    j["tests_passed"] = passed_tests;
    j["tests_total"] = tests.size();
    j["tests"] = std::move(ts);
  }
  return j;
}

Verdict judge_asserts(const sandbox::ExecResult& r, const std::string& program, const RewardMap& rewards,
                      int first_line) {
  using sandbox::Status;
  Verdict v;
  int line = 0;  // in `program`
  if (r.exception) {
    v.exception_type = r.exception->type;
    line = r.exception->line;
    v.line = line >= first_line ? line - first_line + 1 : 0;
  }
  switch (r.status) {
    case Status::ok: v.passed = true; break;
    case Status::compile_error: v.error = ErrorClass::compile_error; break;
    case Status::timeout: v.error = ErrorClass::timeout; break;
    case Status::memory_limit: v.error = ErrorClass::memory_limit; break;
    case Status::output_limit: v.error = ErrorClass::output_limit; break;
    case Status::sandbox_error: v.error = ErrorClass::sandbox_error; break;
    case Status::killed:
    case Status::runtime_error:
      if (v.exception_type == "SyntaxError" || v.exception_type == "IndentationError" ||
          v.exception_type == "TabError")
        v.error = ErrorClass::syntax_error;
      else if (v.exception_type == "AssertionError")
        v.error = ErrorClass::wrong_answer;
      else
        v.error = ErrorClass::runtime_error;
      break;
  }
  switch (v.error) {
    case ErrorClass::none: v.reward = rewards.pass; break;
    case ErrorClass::syntax_error:
    case ErrorClass::compile_error: v.reward = rewards.compile_error; break;
    case ErrorClass::wrong_answer: v.reward = rewards.failing_tests; break;
    case ErrorClass::sandbox_error: v.reward = 0; break;  // says nothing about the program
    default: v.reward = rewards.runtime_error; break;
  }
  if (v.passed) {
    v.feedback = "All tests passed.";
    return v;
  }
  std::string where = v.line ? fmt::format(" at line {}: `{}`", v.line, clip(source_line(program, line), 160)) : "";
  std::string msg = r.exception && !r.exception->message.empty() ? ": " + clip(r.exception->message, 300) : "";
  switch (v.error) {
    case ErrorClass::wrong_answer: v.feedback = fmt::format("A test failed{}{}.", where, msg); break;
    case ErrorClass::syntax_error: v.feedback = fmt::format("{}{}{}.", v.exception_type, where, msg); break;
    case ErrorClass::runtime_error:
      v.feedback = v.exception_type.empty() ? fmt::format("The program failed (exit code {}, signal {}).", r.exit_code, r.signal)
                                            : fmt::format("{} raised{}{}.", v.exception_type, where, msg);
      break;
    case ErrorClass::timeout: v.feedback = fmt::format("Time limit exceeded ({} time).", r.limit_hit); break;
    case ErrorClass::memory_limit: v.feedback = "Memory limit exceeded."; break;
    case ErrorClass::output_limit: v.feedback = "Output limit exceeded."; break;
    case ErrorClass::compile_error: v.feedback = "Compilation failed: " + clip(r.compile_output, 400); break;
    default: v.feedback = "The sandbox could not run the program: " + r.error; break;
  }
  return v;
}

double pass_at_k(int n, int c, int k) {
  if (n - c < k) return 1.0;
  double miss = 1.0;  // C(n-c, k) / C(n, k) as a product, stable for large n
  for (int i = n - c + 1; i <= n; ++i) miss *= 1.0 - static_cast<double>(k) / i;
  return 1.0 - miss;
}

std::string humaneval_program(const Task& task, const std::string& completion) {
  return task.prompt + completion + "\n" + task.test + "\n" + "check(" + task.entry_point + ")\n";
}

}  // namespace wand::feedback

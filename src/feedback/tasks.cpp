// Tasks in the field's formats: loading them, turning a sample into sandbox requests (with the
// harness that judges each assertion on its own), and judging the results.
#include <fmt/core.h>

#include <random>

#include "feedback/feedback.h"
#include "feedback/clip.h"

extern const std::string_view wand_embedded_harness;

namespace wand::feedback {
namespace {

std::string str_field(const Json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return "";
  if (it->is_string()) return it->get<std::string>();
  return it->dump();
}

// A number as JSON wrote it, without a needless ".0".
std::string number_text(const Json& v) {
  if (v.is_number_float()) {
    double d = v.get<double>();
    if (std::abs(d) < 1e15 && d == static_cast<double>(static_cast<long long>(d)))  // range first: the cast of 1e300 is UB
      return std::to_string(static_cast<long long>(d));
  }
  return v.is_string() ? v.get<std::string>() : v.dump();
}

// Some datasets (APPS) store lists as JSON inside a string.
Result<Json> maybe_embedded(const Json& v, const std::string& what) {
  if (!v.is_string()) return v;
  auto inner = parse_json(v.get<std::string>(), what);
  if (!inner) return inner.error();
  return *inner;
}

const char* kFormats =
    "HumanEval (task_id, prompt, canonical_solution, test, entry_point), MBPP (task_id, text, code, test_list), "
    "stdin/stdout (inputs, outputs or input_output), GSM8K (question, answer with '#### N'), PAL (input, target)";

std::string detect(const Json& j) {
  if (!j.is_object()) return "";
  if (j.contains("entry_point") && j.contains("test") && j.contains("prompt")) return "humaneval";
  if (j.contains("test_list")) return "mbpp";
  if ((j.contains("inputs") && j.contains("outputs")) || j.contains("input_output")) return "stdio";
  if (j.contains("question") && j.contains("answer")) return "gsm8k";
  if (j.contains("input") && j.contains("target")) return "pal";
  return "";
}

Result<Task> read_task(const Json& j, const std::string& format, const std::string& where, std::size_t index) {
  auto need = [&](const char* key) -> VoidResult {
    if (!j.contains(key) || j[key].is_null())
      return Error{fmt::format("{}: field '{}' is missing ({} format)", where, key, format)};
    return ok_status();
  };
  auto need_string = [&](const char* key) -> VoidResult {
    if (auto r = need(key); !r) return r;
    if (!j[key].is_string()) return Error{fmt::format("{}: field '{}' must be a string", where, key)};
    return ok_status();
  };
  Task t;
  t.format = format;
  t.task_id = j.contains("task_id") ? str_field(j, "task_id")
              : j.contains("problem_id") ? str_field(j, "problem_id")
                                          : std::to_string(index);
  if (format == "humaneval") {
    for (const char* k : {"prompt", "canonical_solution", "test", "entry_point"})
      if (auto r = need_string(k); !r) return r.error();
    t.prompt = j["prompt"], t.reference = j["canonical_solution"], t.test = j["test"], t.entry_point = j["entry_point"];
  } else if (format == "mbpp") {
    if (auto r = need("test_list"); !r) return r.error();
    if (!j["test_list"].is_array() || j["test_list"].empty())
      return Error{fmt::format("{}: field 'test_list' must be a non-empty array of assert statements", where)};
    for (auto& a : j["test_list"]) {
      if (!a.is_string()) return Error{fmt::format("{}: 'test_list' holds a non-string", where)};
      t.test_list.push_back(a);
    }
    t.prompt = str_field(j, "text"), t.reference = str_field(j, "code"), t.setup = str_field(j, "test_setup_code");
  } else if (format == "stdio") {
    Json io = j;
    if (j.contains("input_output")) {
      auto r = maybe_embedded(j["input_output"], where + " input_output");
      if (!r) return r.error();
      io = *r;
    }
    if (!io.is_object() || !io.contains("inputs") || !io.contains("outputs") || !io["inputs"].is_array() ||
        !io["outputs"].is_array() || io["inputs"].size() != io["outputs"].size() || io["inputs"].empty())
      return Error{fmt::format("{}: 'inputs' and 'outputs' must be arrays of equal, non-zero length", where)};
    for (std::size_t k = 0; k < io["inputs"].size(); ++k) {
      auto text = [](const Json& v) {
        if (v.is_string()) return v.get<std::string>();
        if (v.is_array()) {  // a list of lines
          std::string s;
          for (auto& line : v) s += (line.is_string() ? line.get<std::string>() : line.dump()) + "\n";
          return s;
        }
        return v.dump();
      };
      t.io.emplace_back(text(io["inputs"][k]), text(io["outputs"][k]));
    }
    t.prompt = str_field(j, "question");
    if (j.contains("solutions")) {
      auto s = maybe_embedded(j["solutions"], where + " solutions");
      if (!s) return s.error();
      if (s->is_array() && !s->empty() && (*s)[0].is_string()) t.reference = (*s)[0];
    } else {
      t.reference = str_field(j, "solution");
    }
  } else if (format == "gsm8k") {
    if (auto r = need_string("answer"); !r) return r.error();
    std::string a = j["answer"];
    auto mark = a.rfind("####");
    if (mark == std::string::npos) return Error{fmt::format("{}: 'answer' has no '#### N' final answer", where)};
    t.expected = a.substr(mark + 4);
    t.expected.erase(0, t.expected.find_first_not_of(" \t"));
    t.expected.erase(t.expected.find_last_not_of(" \t\r\n") + 1);
    t.prompt = str_field(j, "question");
  } else {  // pal
    if (auto r = need("target"); !r) return r.error();
    t.expected = number_text(j["target"]);
    t.prompt = str_field(j, "input");
    t.reference = str_field(j, "code");
  }
  t.kind = format == "stdio" ? TaskKind::stdio
           : (format == "gsm8k" || format == "pal") ? TaskKind::answer
                                                     : TaskKind::asserts;
  return t;
}

std::string py_string(const std::string& s) { return Json(s).dump(-1, ' ', false, Json::error_handler_t::replace); }

std::string make_nonce() {
  static thread_local std::mt19937_64 rng(std::random_device{}());
  return fmt::format("@@wand-{:016x}@@", rng());
}

// The harness's report lines (nonce + JSON), and stdout without them.
struct Reports {
  std::vector<Json> records;
  std::string rest;
};
Reports split_reports(const std::string& out, const std::string& nonce) {
  Reports r;
  std::size_t pos = 0;
  while (pos < out.size()) {
    std::size_t nl = out.find('\n', pos);
    std::string_view line(out.data() + pos, (nl == std::string::npos ? out.size() : nl) - pos);
    if (line.starts_with(nonce)) {
      auto j = parse_json(line.substr(nonce.size()), "a harness report");
      if (j) r.records.push_back(std::move(*j));
    } else {
      r.rest.append(line);
      if (nl != std::string::npos) r.rest += '\n';
    }
    if (nl == std::string::npos) break;
    pos = nl + 1;
  }
  return r;
}

double reward_of(const Verdict& v, const JudgeOptions& opt) {
  if (opt.partial_credit && !v.passed && v.error == ErrorClass::wrong_answer && !v.tests.empty()) {
    double frac = 0;
    for (auto& t : v.tests) frac += t.passed;
    frac /= static_cast<double>(v.tests.size());
    return opt.rewards.failing_tests + (opt.rewards.pass - opt.rewards.failing_tests) * frac;
  }
  return v.reward;
}

Verdict judge_with_harness(const std::string& nonce, const sandbox::ExecResult& r,
                           const std::string& program, const JudgeOptions& opt) {
  Verdict v = judge_asserts(r, program, opt.rewards);
  Reports rep = split_reports(r.stdout_data, nonce);
  const Json* done = nullptr;
  for (auto& j : rep.records) {
    if (j.contains("done")) {
      done = &j;
      continue;
    }
    TestResult t;
    t.index = j.value("test", 0);
    t.passed = j.value("passed", false);
    t.source = j.value("source", "");
    if (j.contains("expected") && j["expected"].is_string()) t.expected = j["expected"];
    if (j.contains("got") && j["got"].is_string()) t.got = j["got"];
    t.error = j.value("error", "");
    v.tests.push_back(std::move(t));
  }
  if (r.status == sandbox::Status::ok && !done) {
    // The program ended before the harness reported: it exited early, skipping the tests.
    v.passed = false;
    v.error = ErrorClass::wrong_answer;
    v.reward = opt.rewards.failing_tests;
    v.feedback = "The program exited before its tests ran.";
  }
  auto failed = std::find_if(v.tests.begin(), v.tests.end(), [](const TestResult& t) { return !t.passed; });
  if (done && failed != v.tests.end()) {
    // The harness raised the AssertionError: point at the failing test, not the harness's line.
    // As without the harness, the first failing test decides the class: an exception other
    // than AssertionError there is a runtime error.
    v.line = 0;
    if (!failed->error.empty()) {
      v.error = ErrorClass::runtime_error;
      v.exception_type = failed->error.substr(0, failed->error.find(':'));
      v.reward = opt.rewards.runtime_error;
    }
    std::string detail = !failed->error.empty()                        ? " raised " + failed->error
                         : !failed->got.empty() || !failed->expected.empty() ? fmt::format(": expected {}, got {}", failed->expected, failed->got)
                                                                        : "";
    int n_failed = static_cast<int>(std::count_if(v.tests.begin(), v.tests.end(), [](auto& t) { return !t.passed; }));
    v.feedback = fmt::format("{} of {} tests failed. First: `{}`{}.", n_failed, v.tests.size(),
                             clip(failed->source, 200), clip(detail, 300));
  }
  v.reward = reward_of(v, opt);
  return v;
}

Verdict judge_answer_run(const Task& task, const std::string& nonce, const sandbox::ExecResult& r,
                         const std::string& program, const JudgeOptions& opt) {
  Verdict v = judge_asserts(r, program, opt.rewards);
  if (r.status != sandbox::Status::ok) return v;  // the run's own error class and feedback
  Reports rep = split_reports(r.stdout_data, nonce);
  const Json* done = nullptr;
  for (auto& j : rep.records)
    if (j.contains("done")) done = &j;
  if (done && done->contains("answer") && (*done)["answer"].is_string())
    v.answer = (*done)["answer"];
  else
    v.answer = last_printed_line(rep.rest);
  TestResult t;
  t.source = "answer";
  t.expected = task.expected;
  t.got = v.answer;
  t.passed = !v.answer.empty() && answers_match(v.answer, task.expected);
  v.tests.push_back(t);
  v.passed = t.passed;
  if (!v.passed) {
    v.error = ErrorClass::wrong_answer;
    v.reward = opt.rewards.failing_tests;
    v.feedback = !done ? "The program exited before its answer was read."
                 : v.answer.empty() ? "The program gave no answer (nothing printed, no `answer` or `solution`)."
                                    : fmt::format("The program's answer, {}, is wrong.", clip(v.answer, 100));
  }
  return v;
}

Verdict judge_cases(const Task& task, std::span<const sandbox::ExecResult> results, const std::string& program,
                    const JudgeOptions& opt) {
  Verdict v;
  const sandbox::ExecResult* first_bad_run = nullptr;
  for (std::size_t k = 0; k < results.size(); ++k) {
    const auto& r = results[k];
    TestResult t;
    t.index = static_cast<int>(k);
    t.source = clip(task.io[k].first, 200);
    t.expected = clip(task.io[k].second, 200);
    t.got = clip(r.stdout_data, 200);
    if (r.status != sandbox::Status::ok) {
      t.error = sandbox::to_string(r.status);
      if (!first_bad_run) first_bad_run = &r;
    } else {
      t.passed = outputs_match(r.stdout_data, task.io[k].second, opt.float_tol);
    }
    v.tests.push_back(std::move(t));
  }
  auto failed = std::find_if(v.tests.begin(), v.tests.end(), [](const TestResult& t) { return !t.passed; });
  if (failed == v.tests.end()) {
    v.passed = true;
    v.reward = opt.rewards.pass;
    v.feedback = "All tests passed.";
    return v;
  }
  if (first_bad_run) {
    std::vector<TestResult> tests = std::move(v.tests);
    v = judge_asserts(*first_bad_run, program, opt.rewards);  // the error class of the failing run
    v.tests = std::move(tests);
    v.passed = false;
    v.feedback = fmt::format("On input `{}`: {}", clip(failed->source, 120), v.feedback);
  } else {
    v.error = ErrorClass::wrong_answer;
    v.feedback = fmt::format("Wrong output on input `{}`: expected `{}`, got `{}`.", clip(failed->source, 120),
                             clip(failed->expected, 120), clip(failed->got, 120));
    v.reward = opt.rewards.failing_tests;
  }
  v.reward = reward_of(v, opt);
  return v;
}

}  // namespace

Result<std::vector<Task>> load_tasks(const std::string& path) {
  std::vector<Task> tasks;
  std::string format;
  auto read = for_each_json_line(path, [&](int line, const Json& j) -> VoidResult {
    std::string where = fmt::format("{} line {}", path, line);
    if (format.empty()) {
      format = detect(j);
      if (format.empty())
        return Error{fmt::format("{}: unrecognised record (fields: {}); expected one of: {}", where,
                                 j.is_object() ? [&] {
                                   std::string keys;
                                   for (auto& [k, v] : j.items()) keys += (keys.empty() ? "" : ", ") + k;
                                   return keys;
                                 }()
                                               : std::string("not an object"),
                                 kFormats)};
    }
    if (!j.is_object()) return Error{fmt::format("{}: a record must be a JSON object", where)};
    auto t = read_task(j, format, where, tasks.size());
    if (!t) return t.error();
    tasks.push_back(std::move(*t));
    return ok_status();
  });
  if (!read) return read.error();
  if (tasks.empty()) return Error{fmt::format("{}: no tasks", path)};
  return tasks;
}

Submission prepare(const Task& task, const std::string& completion, const JudgeOptions& opt) {
  Submission s;
  s.nonce = make_nonce();
  auto request = [&](std::string code, std::string stdin_data = {}) {
    sandbox::ExecRequest r;
    r.code = std::move(code);
    r.stdin_data = std::move(stdin_data);
    r.limits.timeout_s = opt.timeout_s;
    s.requests.push_back(std::move(r));
  };
  const std::string harness(wand_embedded_harness);
  switch (task.kind) {
    case TaskKind::asserts:
      if (task.format == "humaneval")
        request(fmt::format("{}{}\n{}\n{}__wand_run_tests(globals(), {}, 'check', {}, {})\n", task.prompt, completion,
                            task.test, harness, py_string(task.test), py_string(task.entry_point),
                            py_string(s.nonce)));
      else {
        std::string tests;
        for (auto& t : task.test_list) tests += t + "\n";
        request(fmt::format("{}\n{}\n{}__wand_run_tests(globals(), {}, None, None, {})\n", task.setup, completion,
                            harness, py_string(tests), py_string(s.nonce)));
      }
      break;
    case TaskKind::answer:
      request(fmt::format("{}\n{}__wand_report_answer(globals(), {}, {})\n", completion, harness, py_string(opt.answer),
                          py_string(s.nonce)));
      break;
    case TaskKind::stdio:
      for (auto& [in, out] : task.io) request(completion, in);
      break;
  }
  return s;
}

Verdict judge(const Task& task, const Submission& sub, std::span<const sandbox::ExecResult> results,
              const JudgeOptions& opt) {
  if (results.size() != sub.requests.size() || results.empty()) {
    Verdict v;
    v.error = ErrorClass::sandbox_error;
    v.feedback = "internal: results do not match the submission's requests";
    return v;
  }
  const std::string& program = sub.requests[0].code;
  switch (task.kind) {
    case TaskKind::asserts: return judge_with_harness(sub.nonce, results[0], program, opt);
    case TaskKind::answer: return judge_answer_run(task, sub.nonce, results[0], program, opt);
    case TaskKind::stdio: return judge_cases(task, results, program, opt);
  }
  return {};
}

}  // namespace wand::feedback

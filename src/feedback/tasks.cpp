// Tasks in the field's formats: loading them, turning a sample into sandbox requests (with the
// harness that judges each assertion on its own), and judging the results.
#include <fmt/core.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <random>

#include "common/text.h"
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
    "stdin/stdout (inputs, outputs or input_output), GSM8K (question, answer with '#### N' or the label itself), PAL (input, target), "
    "SVAMP (Body, Question, Answer)";

std::string detect(const Json& j) {
  if (!j.is_object()) return "";
  if (j.contains("entry_point") && j.contains("test") && j.contains("prompt")) return "humaneval";
  if (j.contains("test_list")) return "mbpp";
  if ((j.contains("inputs") && j.contains("outputs")) || j.contains("input_output")) return "stdio";
  if (j.contains("question") && j.contains("answer")) return "gsm8k";
  if (j.contains("input") && j.contains("target")) return "pal";
  if (j.contains("Body") && j.contains("Question") && j.contains("Answer")) return "svamp";
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
              : j.contains("ID")         ? str_field(j, "ID")  // SVAMP
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
    // The description: "text" in mbpp.jsonl, "prompt" in sanitized-mbpp.json.
    t.prompt = str_field(j, j.contains("text") ? "text" : "prompt"), t.reference = str_field(j, "code");
    t.setup = str_field(j, "test_setup_code");
    // Sanitized MBPP's imports the asserts need (`import math`): run before them, as setup is.
    if (j.contains("test_imports") && !j["test_imports"].is_null()) {
      if (!j["test_imports"].is_array()) return Error{fmt::format("{}: field 'test_imports' must be an array of import lines", where)};
      for (auto& line : j["test_imports"]) {
        if (!line.is_string()) return Error{fmt::format("{}: 'test_imports' holds a non-string", where)};
        t.setup += (t.setup.empty() || t.setup.ends_with("\n") ? "" : "\n") + line.get<std::string>() + "\n";
      }
    }
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
    if (auto r = need_string("question"); !r) return r.error();
    if (auto r = need("answer"); !r) return r.error();
    // GSM8K's answer is a rationale ending in "#### N"; a plain {question, answer} file (wand's
    // held-out sets, a user's own) gives the label itself: a number, or one line of text.
    if (!j["answer"].is_string() && !j["answer"].is_number())
      return Error{fmt::format("{}: field 'answer' must be a string or a number", where)};
    std::string a = number_text(j["answer"]);
    auto mark = a.rfind("####");
    bool one_line = a.find('\n') == std::string::npos && a.find_first_not_of(" \t\r") != std::string::npos;
    if (mark == std::string::npos && !one_line)
      return Error{fmt::format("{}: 'answer' has no '#### N' final answer (nor is it a one-line label)", where)};
    t.expected = mark == std::string::npos ? a : a.substr(mark + 4);
    t.expected.erase(0, t.expected.find_first_not_of(" \t"));
    t.expected.erase(t.expected.find_last_not_of(" \t\r\n") + 1);
    if (t.expected.empty()) return Error{fmt::format("{}: 'answer' has an empty final answer after '####'", where)};
    t.prompt = j["question"];
  } else if (format == "svamp") {
    // SVAMP (Patel et al., 2021): the question is the body followed by the question sentence.
    for (const char* k : {"Body", "Question"})
      if (auto r = need_string(k); !r) return r.error();
    if (auto r = need("Answer"); !r) return r.error();
    if (!j["Answer"].is_number()) return Error{fmt::format("{}: field 'Answer' must be a number", where)};
    t.expected = number_text(j["Answer"]);
    std::string body = j["Body"];
    body.erase(body.find_last_not_of(" \t\r\n") + 1);
    t.prompt = body + " " + j["Question"].get<std::string>();
  } else {  // pal
    if (auto r = need_string("input"); !r) return r.error();
    if (auto r = need("target"); !r) return r.error();
    if (!j["target"].is_string() && !j["target"].is_number())
      return Error{fmt::format("{}: field 'target' must be a string or a number", where)};
    t.expected = number_text(j["target"]);
    if (is_blank(t.expected))
      return Error{fmt::format("{}: field 'target' is empty", where)};
    t.prompt = j["input"];
    t.reference = str_field(j, "code");
  }
  t.kind = format == "stdio" ? TaskKind::stdio
           : (format == "gsm8k" || format == "pal" || format == "svamp") ? TaskKind::answer
                                                     : TaskKind::asserts;
  return t;
}

// A fresh HMAC key per run, from the OS's generator.
std::string make_key() {
  unsigned char k[32];
  if (RAND_bytes(k, sizeof k) != 1) {
    std::random_device rd;  // OpenSSL's generator failed: still unpredictable to the sample
    for (auto& c : k) c = static_cast<unsigned char>(rd());
  }
  std::string hex;
  for (unsigned char c : k) hex += fmt::format("{:02x}", c);
  return hex;
}

std::string hmac_hex(const std::string& key, const std::string& data) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(data.data()),
       data.size(), mac, &n);
  std::string hex;
  for (unsigned int i = 0; i < n; ++i) hex += fmt::format("{:02x}", mac[i]);
  return hex;
}

// The harness's records from the channel. Accepted only as an unbroken sequence, each line
// signed for its position: the plan (how many tests; sent before the sample's code runs), one
// record per test in order, then "done". Anything else on the channel means the program wrote
// there itself: the run is treated as forged.
struct Records {
  bool forged = false;
  int plan = -1;
  std::vector<Json> tests;
  std::optional<Json> done;
};
Records read_records(const std::string& channel, const std::string& key) {
  Records r;
  std::size_t pos = 0;
  for (int seq = 0;; ++seq) {
    std::size_t nl = channel.find('\n', pos);
    if (nl == std::string::npos) break;  // a record cut off by the end of the run counts for nothing
    std::string_view line(channel.data() + pos, nl - pos);
    pos = nl + 1;
    std::size_t sp = line.find(' ');
    std::string body(sp == std::string_view::npos ? std::string_view{} : line.substr(sp + 1));
    std::string want = hmac_hex(key, fmt::format("{}\n{}", seq, body));
    bool signed_ok = sp == want.size() && CRYPTO_memcmp(line.data(), want.data(), want.size()) == 0;
    Json j;  // only a signed record is parsed: never what the program wrote
    if (signed_ok)
      if (auto parsed = parse_json(body, "a harness record")) j = std::move(*parsed);
    auto is_int = [&](const char* k, int want_value) {
      return j.contains(k) && j[k].is_number_integer() && (want_value < 0 || j[k].get<int>() == want_value);
    };
    bool in_order = j.is_object() && !r.done &&
                    (seq == 0 ? is_int("plan", -1) : j.contains("done") || is_int("test", static_cast<int>(r.tests.size())));
    if (!in_order) {
      r.forged = true;
      return r;
    }
    if (seq == 0) r.plan = j["plan"].get<int>();
    else if (j.contains("done")) r.done = std::move(j);
    else r.tests.push_back(std::move(j));
  }
  // A finished run reports every planned test, unless the harness reported an error instead.
  if (r.done && !r.done->contains("error") &&
      (static_cast<int>(r.tests.size()) != r.plan || !(*r.done)["total"].is_number_integer() ||
       (*r.done)["total"].get<int>() != r.plan))
    r.forged = true;
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

Verdict failed_tests(std::string feedback, const JudgeOptions& opt) {
  Verdict v;
  v.error = ErrorClass::wrong_answer;
  v.reward = opt.rewards.failing_tests;
  v.feedback = std::move(feedback);
  return v;
}

// The run's own outcome when it did not end normally, a forged or missing report, or the error
// the harness reported (the program failed to load, or defines no entry point). nullopt: the
// records say how the tests went.
std::optional<Verdict> run_failure(const Submission& sub, const sandbox::ExecResult& r, const Records& rec,
                                   const JudgeOptions& opt) {
  if (r.status != sandbox::Status::ok) {
    if (sub.requests[0].code == sub.program || !r.exception)
      return judge_asserts(r, sub.program, opt.rewards, sub.first_line);
    sandbox::ExecResult run = r;  // strict mode: main.py is the harness, its lines are not the program's
    run.exception->line = 0;
    return judge_asserts(run, sub.program, opt.rewards, sub.first_line);
  }
  if (rec.forged)
    return failed_tests("The harness's report channel carried records it did not sign: the program wrote there.", opt);
  if (!rec.done)  // it ended before its last line (os._exit, sys.exit) or before the tests finished
    return failed_tests(rec.tests.empty() ? "The program exited before its tests ran."
                                          : "The program exited before its tests finished.",
                        opt);
  if (!rec.done->contains("error")) return std::nullopt;
  // Strict mode relays the sample's own load error: read it as untrusted data.
  const Json& e = (*rec.done)["error"];
  auto text = [&](const char* k) { return e.is_object() && e.contains(k) && e[k].is_string() ? e[k].get<std::string>() : ""; };
  int line = e.is_object() && e.contains("line") && e["line"].is_number_integer() ? e["line"].get<int>() : 0;
  sandbox::ExecResult as_run;  // judged as the same error raised by the program itself
  as_run.status = sandbox::Status::runtime_error;
  as_run.exit_code = 1;
  as_run.exception = sandbox::ExceptionInfo{text("type").empty() ? "Exception" : text("type"), text("message"), line};
  return judge_asserts(as_run, sub.program, opt.rewards, sub.first_line);
}

TestResult test_of(const Json& j) {
  auto text = [&](const char* k) { return j.contains(k) && j[k].is_string() ? j[k].get<std::string>() : ""; };
  TestResult t;
  t.index = j["test"].get<int>();  // checked by read_records
  t.passed = j.contains("passed") && j["passed"].is_boolean() && j["passed"].get<bool>();
  t.source = text("source");
  t.expected = text("expected");
  t.got = text("got");
  t.error = text("error");
  return t;
}

Verdict judge_with_harness(const Submission& sub, const sandbox::ExecResult& r, const JudgeOptions& opt) {
  Records rec = read_records(r.channel_data, sub.key);
  std::vector<TestResult> tests;
  if (!rec.forged)
    for (auto& j : rec.tests) tests.push_back(test_of(j));
  if (auto failure = run_failure(sub, r, rec, opt)) {
    failure->tests = std::move(tests);
    failure->reward = reward_of(*failure, opt);
    return *failure;
  }
  Verdict v;
  v.tests = std::move(tests);
  auto failed = std::find_if(v.tests.begin(), v.tests.end(), [](const TestResult& t) { return !t.passed; });
  if (failed == v.tests.end()) {
    v.passed = true;
    v.reward = opt.rewards.pass;
    v.feedback = "All tests passed.";
    return v;
  }
  // As without the harness, the first failing test decides the class: an exception other than
  // AssertionError there is a runtime error.
  v.error = failed->error.empty() ? ErrorClass::wrong_answer : ErrorClass::runtime_error;
  v.reward = failed->error.empty() ? opt.rewards.failing_tests : opt.rewards.runtime_error;
  if (!failed->error.empty()) v.exception_type = failed->error.substr(0, failed->error.find(':'));
  std::string detail = !failed->error.empty() ? " raised " + failed->error
                       : !failed->got.empty() || !failed->expected.empty()
                           ? fmt::format(": expected {}, got {}", failed->expected, failed->got)
                           : "";
  int n_failed = static_cast<int>(std::count_if(v.tests.begin(), v.tests.end(), [](auto& t) { return !t.passed; }));
  v.feedback = fmt::format("{} of {} tests failed. First: `{}`{}.", n_failed, v.tests.size(), clip(failed->source, 200),
                           clip(detail, 300));
  v.reward = reward_of(v, opt);
  return v;
}

Verdict judge_answer_run(const Task& task, const Submission& sub, const sandbox::ExecResult& r,
                         const JudgeOptions& opt) {
  Records rec = read_records(r.channel_data, sub.key);
  if (auto failure = run_failure(sub, r, rec, opt)) return *failure;
  const Json& done = *rec.done;
  Verdict v;
  v.answer = done.contains("answer") && done["answer"].is_string() ? done["answer"].get<std::string>()
                                                                   : extract_answer(r.stdout_data);  // what it printed, by the documented rules
  TestResult t;
  t.source = "answer";
  t.expected = task.expected;
  t.got = v.answer;
  t.passed = !v.answer.empty() && answers_match(v.answer, task.expected);
  v.tests.push_back(t);
  v.passed = t.passed;
  if (v.passed) {
    v.reward = opt.rewards.pass;
    v.feedback = "All tests passed.";
  } else {
    v.error = ErrorClass::wrong_answer;
    v.reward = opt.rewards.failing_tests;
    v.feedback = v.answer.empty() ? "The program gave no answer (nothing printed, no `answer` or `solution`)."
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

Result<Task> task_from_json(const Json& record, const std::string& what) {
  if (!record.is_object()) return Error{fmt::format("{}: must be a JSON object (a dataset record)", what)};
  std::string format = detect(record);
  if (format.empty()) return Error{fmt::format("{}: unrecognised record; expected one of: {}", what, kFormats)};
  return read_task(record, format, what, 0);
}

Result<std::vector<Task>> load_tasks(const std::string& path) {
  if (std::error_code ec; std::filesystem::is_directory(path, ec))
    return Error{fmt::format("{}: a folder, not a dataset file", path)};
  std::vector<Task> tasks;
  std::string format;
  std::map<std::string, int> first_line;  // task_id -> the line (or array record) that defined it
  auto add = [&](int line, const Json& j, const char* unit) -> VoidResult {
    std::string where = fmt::format("{} {} {}", path, unit, line);
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
    // Samples name their task by id: two tasks with one id would share (and split) its samples.
    auto [first, fresh] = first_line.emplace(t->task_id, line);
    if (!fresh)
      return Error{fmt::format("{}: duplicate task_id '{}' (first on {} {})", where, t->task_id, unit, first->second)};
    tasks.push_back(std::move(*t));
    return ok_status();
  };
  // A file that is one JSON array (SVAMP's SVAMP.json) holds its records in order; otherwise one
  // record per line.
  char lead = 0;
  if (std::ifstream in(path); in) in >> lead;  // the first character that is not white space
  VoidResult read = ok_status();
  if (lead == '[') {
    auto text = read_file(path);
    if (!text) return text.error();
    auto all = parse_json(*text, path);
    if (!all) return all.error();
    if (!all->is_array()) return Error{fmt::format("{}: not a JSON array of records, nor one record per line", path)};
    for (std::size_t i = 0; i < all->size() && read; ++i) read = add(static_cast<int>(i + 1), (*all)[i], "record");
  } else {
    read = for_each_json_line(path, [&](int line, const Json& j) { return add(line, j, "line"); });
  }
  if (!read) return read.error();
  if (tasks.empty()) return Error{fmt::format("{}: no tasks", path)};
  return tasks;
}

Json task_json(const Task& t) {
  if (t.format == "humaneval")
    return {{"task_id", t.task_id}, {"prompt", t.prompt}, {"canonical_solution", t.reference}, {"test", t.test},
            {"entry_point", t.entry_point}};
  if (t.format == "mbpp")
    return {{"task_id", t.task_id}, {"text", t.prompt}, {"code", t.reference}, {"test_list", t.test_list},
            {"test_setup_code", t.setup}};
  if (t.format == "stdio") {
    Json in = Json::array(), out = Json::array();
    for (auto& [i, o] : t.io) in.push_back(i), out.push_back(o);
    return {{"task_id", t.task_id}, {"question", t.prompt}, {"inputs", in}, {"outputs", out}, {"solution", t.reference}};
  }
  return {{"task_id", t.task_id}, {"question", t.prompt}, {"answer", t.expected}};  // gsm8k, pal, svamp
}

Submission prepare(const Task& task, const std::string& completion, const JudgeOptions& opt) {
  Submission s;
  auto request = [&](std::string code, std::string stdin_data = {}) {
    sandbox::ExecRequest r;
    r.code = std::move(code);
    r.stdin_data = std::move(stdin_data);
    r.limits.timeout_s = opt.timeout_s;
    r.limits.memory_mb = opt.memory_mb;
    r.limits.max_output_bytes = opt.max_output_bytes;
    s.requests.push_back(std::move(r));
  };
  if (task.kind == TaskKind::stdio) {
    for (auto& [in, out] : task.io) request(completion, in);
    s.program = completion;
    return s;
  }
  s.key = make_key();
  // The program as the dataset's harness runs it, minus the tests, which reach the harness on
  // the channel: HumanEval's prompt + completion, MBPP's set-up + code, or the bare program.
  std::string prefix = task.format == "humaneval" ? task.prompt : "";
  std::string program = prefix + completion + "\n";
  Json job = {{"key", s.key}};
  if (task.kind == TaskKind::answer) {
    job["answer"] = opt.answer;
  } else {
    bool humaneval = task.format == "humaneval";
    // MBPP's set-up code belongs to the tests: it may use the program's classes (task 367).
    std::string tests = humaneval ? task.test : task.setup + "\n";
    if (!humaneval)
      for (auto& t : task.test_list) tests += t + "\n";
    job["tests"] = tests;
    job["fn"] = humaneval ? Json("check") : Json();
    job["arg"] = humaneval ? Json(task.entry_point) : Json();
    job["module"] = true;  // benchmark programs run as modules: no `if __name__ == "__main__":` block
  }
  const std::string harness(wand_embedded_harness);
  int prefix_lines = static_cast<int>(std::count(prefix.begin(), prefix.end(), '\n'));
  if (opt.strict && task.kind == TaskKind::asserts) {
    // MBPP's set-up also runs in the sample's process, after its code: the functions read it.
    job["program"] = task.setup.empty() ? program : program + task.setup + "\n";
    job["trusted"] = task.format == "humaneval" ? task.prompt : "";  // the dataset's helpers (HumanEval/32: poly)
    request(harness + "__wand_strict()\n");
    s.program = program;
    s.first_line = prefix_lines + 1;
  } else {
    request(harness + "__wand_done = __wand_arm(globals())\ndel __wand_arm, __wand_strict\n" + program +
            "__wand_done()\n");
    s.program = s.requests[0].code;
    s.first_line = static_cast<int>(std::count(harness.begin(), harness.end(), '\n')) + 2 + prefix_lines + 1;
  }
  s.requests[0].channel = dump_text(job);
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
  switch (task.kind) {
    case TaskKind::asserts: return judge_with_harness(sub, results[0], opt);
    case TaskKind::answer: return judge_answer_run(task, sub, results[0], opt);
    case TaskKind::stdio: return judge_cases(task, results, sub.program, opt);
  }
  return {};
}

}  // namespace wand::feedback

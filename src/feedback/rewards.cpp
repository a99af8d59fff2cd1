#include "feedback/rewards.h"

#include <fmt/core.h>

#include "common/text.h"

namespace wand::feedback {
namespace {

// A JSON value as a Python expression that evaluates to it: json.loads of its text, so that
// true/null/nested values need no translation. JSON's string escapes are valid in Python.
std::string py_value(const Json& v) {
  return fmt::format("__import__('json').loads({})", Json(v.dump()).dump());
}

// APPS/TACO call-based cases become asserts on the function (their outputs wrap the value in a
// one-element list; a function returning that list is accepted too).
Result<Task> call_based(std::string_view data_source, const Json& gt) {
  Task t;
  t.format = "mbpp";
  t.kind = TaskKind::asserts;
  t.task_id = std::string(data_source);
  if (!gt["fn_name"].is_string() || gt["fn_name"].get<std::string>().empty())
    return Error{fmt::format("{}: ground truth 'fn_name' must be a non-empty string", data_source)};
  std::string fn = gt["fn_name"];
  // value(), not [] on a const object: a ground truth without one of them is refused below, where
  // [] would read past the map (found by tests/fuzz/exec_fuzz.cpp through /get_reward's labels).
  const Json in = gt.value("inputs", Json()), out = gt.value("outputs", Json());
  if (!in.is_array() || !out.is_array() || in.size() != out.size() || in.empty())
    return Error{fmt::format("{}: ground truth 'inputs' and 'outputs' must be arrays of equal, non-zero length",
                             data_source)};
  for (std::size_t i = 0; i < in.size(); ++i) {
    std::string args = in[i].is_array() ? fmt::format("*{}", py_value(in[i])) : py_value(in[i]);
    std::string call = fmt::format("{}({})", fn, args);
    if (out[i].is_array() && out[i].size() == 1)
      t.test_list.push_back(fmt::format("assert {0} in ({1}, {2})", call, py_value(out[i][0]), py_value(out[i])));
    else
      t.test_list.push_back(fmt::format("assert {} == {}", call, py_value(out[i])));
  }
  return t;
}

bool has_program(std::string_view solution) {
  for (auto& b : code_blocks(solution))
    if (b.tag.empty() || tag_is(b.tag, "python")) return true;
  return false;
}

}  // namespace

Result<RewardMapping> reward_mapping_from_string(std::string_view s) {
  if (s == "binary") return RewardMapping::binary;
  if (s == "coderl") return RewardMapping::coderl;
  return Error{fmt::format("reward mapping '{}': expected binary or coderl", s)};
}

Result<Task> reward_task(std::string_view data_source, const Json& ground_truth) {
  Json gt = ground_truth;
  if (gt.is_string()) {
    std::string_view text = gt.get_ref<const std::string&>();
    std::size_t first = text.find_first_not_of(" \t\r\n");
    if (first != std::string_view::npos && text[first] == '{') {  // test cases as JSON text
      auto parsed = parse_json(text, fmt::format("{}: ground truth", data_source));
      if (!parsed) return parsed.error();
      gt = std::move(*parsed);
    }
  }
  if (gt.is_string() || gt.is_number()) {
    Task t;
    t.format = "pal";
    t.kind = TaskKind::answer;
    t.task_id = std::string(data_source);
    t.expected = gt.is_string() ? gt.get<std::string>() : gt.dump();
    if (auto mark = t.expected.rfind("####"); mark != std::string::npos) t.expected = t.expected.substr(mark + 4);
    t.expected = trim(t.expected);
    // A label in LaTeX (MATH's "\frac{1}{2}", "$\sqrt{3}$") reads as the same text in \boxed{} does.
    if (t.expected.size() > 1 && t.expected.front() == '$' && t.expected.back() == '$')
      t.expected = t.expected.substr(1, t.expected.size() - 2);
    if (t.expected.find("\\boxed{") != std::string::npos)
      t.expected = extract_answer(t.expected);  // a label that is itself boxed
    else if (t.expected.find_first_of("\\{") != std::string::npos)
      t.expected = boxed_answer(t.expected);
    if (t.expected.empty()) return Error{fmt::format("{}: the ground truth answer is empty", data_source)};
    return t;
  }
  if (!gt.is_object())
    return Error{fmt::format("{}: ground truth must be test cases (an object, or JSON text of one) or an answer "
                             "(a string or number); got {}",
                             data_source, gt.type_name())};
  if (gt.contains("input_output")) {  // TACO/APPS keep the cases as JSON text under this key
    Json io = gt["input_output"];
    if (io.is_string()) {
      auto parsed = parse_json(io.get<std::string>(), fmt::format("{}: ground truth input_output", data_source));
      if (!parsed) return parsed.error();
      io = std::move(*parsed);
    }
    if (io.is_object()) gt = std::move(io);
  }
  if (gt.contains("fn_name") && !gt["fn_name"].is_null()) return call_based(data_source, gt);
  auto t = task_from_json(gt, fmt::format("{}: ground truth", data_source));
  if (!t) return t.error();
  if (t->kind == TaskKind::answer) t->format = "pal";
  return t;
}

std::vector<Verdict> judge_rewards(sandbox::Sandbox& sb, const std::vector<Task>& tasks,
                                   const std::vector<std::string>& solutions, const RewardOptions& opt) {
  std::vector<Verdict> out(tasks.size());
  std::vector<EvalSample> runs;  // the samples that need the sandbox
  for (std::size_t i = 0; i < tasks.size(); ++i) {
    const Task& t = tasks[i];
    if (t.kind == TaskKind::answer && !has_program(solutions[i])) {
      Verdict& v = out[i];
      v.answer = extract_answer(solutions[i]);
      v.passed = !v.answer.empty() && answers_match(v.answer, t.expected);
      v.error = v.passed ? ErrorClass::none : ErrorClass::wrong_answer;
      v.reward = v.passed ? opt.eval.judge.rewards.pass : opt.eval.judge.rewards.failing_tests;
      v.feedback = v.passed ? "" : fmt::format("The answer, {}, is wrong.", v.answer.empty() ? "(none)" : v.answer);
      continue;
    }
    runs.push_back({i, solutions[i]});
  }
  if (runs.empty()) return out;
  auto report = evaluate(sb, "rewards", tasks, runs, opt.eval);
  for (auto& r : report.results) out[runs[r.sample].task] = std::move(r.verdict);
  return out;
}

double reward_value(const Verdict& v, const RewardOptions& opt) {
  if (opt.mapping == RewardMapping::coderl) return v.reward;
  if (v.passed) return 1.0;
  if (opt.eval.judge.partial_credit && v.error == ErrorClass::wrong_answer && !v.tests.empty()) {
    double passed = 0;
    for (auto& t : v.tests) passed += t.passed;
    return passed / static_cast<double>(v.tests.size());
  }
  return 0.0;
}

}  // namespace wand::feedback

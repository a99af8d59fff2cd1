// Executes corpus items in the sandbox through the same task layer `wand eval` uses: a problem's
// program is an answer task (its `answer` against the problem's answer), a function task is an
// MBPP task (its code against its asserts).
#include <fmt/core.h>

#include "feedback/feedback.h"
#include "reason/numbers.h"
#include "reason/reason.h"
#include "sandbox/sandbox.h"
#include "train/corpus.h"

namespace wand::train {
namespace {

// Every item's verdict, problems first, from one sandbox batch.
Result<std::vector<feedback::Verdict>> judge_items(const std::vector<Problem>& problems,
                                                   const std::vector<FunctionTask>& functions) {
  sandbox::Options so;
  so.preload = feedback::kEvalPreload;
  auto sb = sandbox::Sandbox::create(so);
  if (!sb) return Error{"verifying the corpus needs the sandbox: " + sb.error().message};

  feedback::JudgeOptions opt;
  opt.timeout_s = 10;
  opt.answer = "var:answer";
  std::vector<feedback::Task> tasks;
  std::vector<std::string> completions;
  for (const auto& p : problems) {
    feedback::Task t;
    t.kind = feedback::TaskKind::answer;
    t.format = "pal";
    t.prompt = p.question;
    t.expected = p.answer;
    tasks.push_back(std::move(t));
    completions.push_back(p.program);
  }
  for (const auto& f : functions) {
    feedback::Task t;
    t.kind = feedback::TaskKind::asserts;
    t.format = "mbpp";
    t.prompt = f.description;
    t.test_list = f.tests;
    t.test_list.insert(t.test_list.end(), f.more_tests.begin(), f.more_tests.end());
    tasks.push_back(std::move(t));
    completions.push_back(f.code);
  }
  std::vector<feedback::Submission> subs;
  std::vector<sandbox::ExecRequest> reqs;
  for (std::size_t i = 0; i < tasks.size(); ++i) {
    subs.push_back(feedback::prepare(tasks[i], completions[i], opt));
    reqs.push_back(subs.back().requests.at(0));  // answer and assert tasks run once
  }
  auto results = (*sb)->run_batch(reqs);
  std::vector<feedback::Verdict> verdicts;
  for (std::size_t i = 0; i < tasks.size(); ++i)
    verdicts.push_back(feedback::judge(tasks[i], subs[i], std::span(&results[i], 1), opt));
  return verdicts;
}

}  // namespace

// Many programs a run: a corpus's generated programs number in the hundreds of thousands, and a
// sandbox run each (~30 ms on 2 cores) would take hours. Each program runs in a namespace of its
// own inside the run (so a program that rebinds a built-in could change a later one's result:
// these are the corpus's own programs and GSM8K's converted calculator steps, not a model's); a
// chunk whose run fails as a whole (a program that hangs, a crashed interpreter) is judged again
// one run a program through the task layer, as `wand eval` would.
constexpr std::size_t kProgramsPerRun = 250;
constexpr const char* kChunkRunner = R"PY(import json, sys
for src in json.load(sys.stdin):
    g = {"__name__": "__main__"}
    try:
        exec(compile(src, "main.py", "exec"), g)
        a = g.get("answer")
        print(json.dumps(None if a is None else str(a)))
    except BaseException:
        print("null")
)PY";

Result<std::vector<bool>> programs_agree(const std::vector<Problem>& problems) {
  auto sb = sandbox::Sandbox::create({});
  if (!sb) return Error{"verifying the corpus needs the sandbox: " + sb.error().message};
  std::vector<sandbox::ExecRequest> reqs;
  for (std::size_t at = 0; at < problems.size(); at += kProgramsPerRun) {
    Json programs = Json::array();
    for (std::size_t i = at; i < std::min(problems.size(), at + kProgramsPerRun); ++i) programs.push_back(problems[i].program);
    sandbox::ExecRequest r;
    r.code = kChunkRunner;
    r.stdin_data = dump_text(programs);
    r.limits.timeout_s = 60;
    reqs.push_back(std::move(r));
  }
  auto results = (*sb)->run_batch(reqs);
  std::vector<bool> agree(problems.size(), false);
  for (std::size_t c = 0; c < reqs.size(); ++c) {
    const std::size_t at = c * kProgramsPerRun, n = std::min(kProgramsPerRun, problems.size() - at);
    std::vector<std::string> lines;
    for (std::size_t p = 0, q; (q = results[c].stdout_data.find('\n', p)) != std::string::npos; p = q + 1)
      lines.push_back(results[c].stdout_data.substr(p, q - p));
    if (results[c].status == sandbox::Status::ok && lines.size() == n) {
      for (std::size_t i = 0; i < n; ++i) {
        Json got = Json::parse(lines[i], nullptr, false);
        agree[at + i] = got.is_string() && feedback::answers_match(got.get<std::string>(), problems[at + i].answer);
      }
      continue;
    }
    std::vector<Problem> chunk(problems.begin() + at, problems.begin() + at + n);
    auto verdicts = judge_items(chunk, {});
    if (!verdicts) return verdicts.error();
    for (std::size_t i = 0; i < n; ++i) agree[at + i] = (*verdicts)[i].passed;
  }
  return agree;
}

std::string NamedProblem::document(uint64_t names_seed) const {
  if (names_seed == 0) return reason::pot_prompt(text) + program;
  auto m = reason::map_question(problem.question, reading, names_seed);
  return reason::pot_prompt(m.text) + reason::rename_names(program, reason::name_order(m.values.size(), names_seed));
}

Result<std::vector<NamedProblem>> name_numbers(const std::vector<Problem>& problems, reason::Reading reading) {
  std::vector<NamedProblem> named;
  std::vector<Problem> runs;  // each with bindings + the named program, as solve() will run it
  for (const auto& p : problems) {
    auto m = reason::map_question(p.question, reading);
    std::string program = m.name_program(p.program);
    if (reading == reason::Reading::delexicalized) program = reason::rename_variables(program);
    NamedProblem n{p, m.text, std::move(program), reading};
    Problem run = p;
    run.program = m.bindings() + n.program;
    runs.push_back(std::move(run));
    named.push_back(std::move(n));
  }
  auto agree = programs_agree(runs);
  if (!agree) return agree.error();
  std::vector<NamedProblem> kept;
  for (std::size_t i = 0; i < named.size(); ++i)
    if ((*agree)[i]) kept.push_back(std::move(named[i]));
  return kept;
}

Result<Json> verify_items(const std::vector<Problem>& problems, const std::vector<FunctionTask>& functions) {
  auto verdicts = judge_items(problems, functions);
  if (!verdicts) return verdicts.error();
  long long agreed = 0, passed = 0;
  Json failures = Json::array();
  for (std::size_t i = 0; i < verdicts->size(); ++i) {
    const auto& v = (*verdicts)[i];
    bool problem = i < problems.size();
    (problem ? agreed : passed) += v.passed;
    if (!v.passed && failures.size() < 10)
      failures.push_back({{"kind", problem ? "problem" : "function"},
                          {"item", problem ? to_json(problems[i]) : to_mbpp_json(functions[i - problems.size()], 0)},
                          {"feedback", v.feedback}});
  }
  return Json{{"problems", {{"checked", problems.size()}, {"agreed", agreed}}},
              {"functions", {{"checked", functions.size()}, {"passed", passed}}},
              {"failures", failures}};
}

}  // namespace wand::train

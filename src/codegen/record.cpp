// Code runs as the run store records them: every model call (coder, tester, explainer, per
// chain and round) is a sample, so a run can be replayed, compared and exported as training data.
#include "codegen/codegen.h"

namespace wand::codegen {

store::RunConfig run_config(const CodeConfig& c, const std::string& dataset, const std::string& model_spec,
                            const std::string& model_id, const std::string& prompt_hash) {
  store::RunConfig rc;
  rc.kind = "code";
  rc.dataset = dataset;
  rc.model_spec = model_spec;
  rc.model_id = model_id;
  rc.method = c.method;
  rc.prompt_hash = prompt_hash;
  rc.seed = static_cast<int64_t>(c.seed);
  rc.options = {{"k", c.k},         {"rounds", c.rounds},           {"tests", c.tests},
                {"feedback", c.feedback}, {"temperature", c.temperature}, {"top_p", c.top_p},
                {"max_tokens", c.max_tokens}, {"timeout_s", c.timeout_s}, {"prompt_family", c.family}};
  return rc;
}

store::ProblemRecord problem_record(int index, const Problem& p, const CodeResult& r) {
  store::ProblemRecord pr;
  pr.index = index;
  pr.problem_id = p.task.task_id;
  pr.input = p.description;
  pr.answer = r.completion;
  if (r.hidden) pr.correct = r.hidden->passed;
  else if (!r.error.empty() && p.has_hidden) pr.correct = false;  // no program: the task failed
  pr.outcome = !r.error.empty() ? r.error : r.hidden ? feedback::to_string(r.hidden->error) : "unjudged";
  pr.vote = {{"how", r.how}, {"chosen_step", r.chosen_step}, {"finals", r.finals}};
  if (r.agreement) pr.vote["agreement"] = r.agreement->to_json();
  if (r.random_pick_pass) pr.vote["random_pick_pass"] = *r.random_pick_pass;
  pr.extra = {{"format", p.task.format},  {"entry", p.entry}, {"visible", p.visible},
              {"tests", r.tests},         {"discarded", r.discarded}, {"program", r.program}};
  for (auto& s : r.steps) {
    pr.prompt_tokens += s.prompt_tokens;
    pr.completion_tokens += s.completion_tokens;
    store::SampleRecord sr;
    sr.index = s.index;
    sr.seed = static_cast<int64_t>(s.seed);
    sr.prompt = s.prompt;
    sr.completion = s.completion;
    sr.program = s.role == "coder" ? program_of(p, s.code) : "";
    // The verdict that says whether the program is right: the task's own tests when it has them.
    if (s.hidden) sr.verdict = s.hidden->to_json();
    else if (s.visible) sr.verdict = s.visible->to_json();
    sr.extra = {{"chain", s.chain}, {"round", s.round}, {"role", s.role},
                {"verified_by", s.hidden ? "tests" : s.visible ? "visible_tests" : ""}};
    if (s.role == "coder") sr.extra["completion_for_task"] = s.code;
    if (s.visible) sr.extra["visible"] = s.visible->to_json();
    if (s.role == "tester") sr.extra["asserts"] = s.asserts;
    pr.samples.push_back(std::move(sr));
  }
  return pr;
}

RunRecorder::RunRecorder(store::Store& db, store::RunConfig rc, const std::vector<Problem>& problems)
    : db_(db), rc_(std::move(rc)), problems_(problems) {
  rc_.total_problems = static_cast<int>(problems.size());
}

VoidResult RunRecorder::record(int index, const CodeResult& r) {
  if (id_.empty()) {
    rc_.prompt_hash = r.prompt_hash;
    auto id = db_.create_run(rc_);
    if (!id) return id.error();
    id_ = *id;
  }
  return db_.record_problem(id_, problem_record(index, problems_[index], r));
}

VoidResult RunRecorder::finish(const Json& summary) {
  if (id_.empty()) return ok_status();
  return db_.finish_run(id_, summary);
}

void RunRecorder::interrupt() {
  if (!id_.empty()) (void)db_.interrupt_run(id_);
}

}  // namespace wand::codegen

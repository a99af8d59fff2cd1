// solve runs as the run store records them.
#include "reason/reason.h"

namespace wand::reason {

store::RunConfig run_config(const SolveConfig& c, const std::string& model_spec, const std::string& model_id,
                            const std::string& prompt_hash) {
  store::RunConfig rc;
  rc.kind = "solve";
  rc.model_spec = model_spec;
  rc.model_id = model_id;
  rc.method = c.method;
  rc.prompt_hash = prompt_hash;
  rc.seed = static_cast<int64_t>(c.seed);
  rc.options = {{"k", c.k},           {"temperature", c.temperature}, {"top_p", c.top_p},
                {"max_tokens", c.max_tokens}, {"weighted", c.weighted},   {"repair", c.repair},
                {"fallback", c.fallback}, {"timeout_s", c.timeout_s},   {"prompt_family", c.family},
                {"prompt", c.prompt ? c.prompt->name : "prompts/" + c.method + "." + c.family + ".txt"}};
  if (!c.constrain.empty()) rc.options["constrain"] = c.constrain;  // absent: unconstrained, as before
  if (c.method == "flow") rc.options["flow_calls"] = c.flow_calls, rc.options["flow_tokens"] = c.flow_tokens;
  if (c.shuffle_names) rc.options["shuffle_names"] = true;  // absent: one naming, as before
  if (c.select != "vote") rc.options["select"] = c.select;  // absent: the vote, as before
  if (c.plausible) rc.options["plausible"] = true;         // absent: every answer votes, as before
  if (c.verifier) rc.options["verifier"] = c.verifier_spec;
  return rc;
}

store::ProblemRecord problem_record(int index, const std::string& question, const SolveResult& r) {
  store::ProblemRecord p;
  p.index = index;
  p.input = question;
  p.answer = r.answer;
  p.vote = r.vote.to_json();
  p.vote["answered_by"] = r.answered_by;
  p.vote["final_winner"] = r.winner;
  p.outcome = r.answer ? "ok" : "no_answer";
  p.timings = {{"generate_s", r.generate_ms / 1000}, {"execute_s", r.execute_ms / 1000}};
  if (r.verify_ms > 0) p.timings["verify_s"] = r.verify_ms / 1000;
  for (auto& s : r.samples) {
    p.prompt_tokens += s.prompt_tokens;
    p.completion_tokens += s.completion_tokens;
    store::SampleRecord sr;
    sr.index = s.index;
    sr.seed = static_cast<int64_t>(s.seed);
    sr.prompt = s.prompt;
    sr.completion = s.completion;
    sr.program = s.program;
    if (s.exec) sr.exec_result = sandbox::to_json(*s.exec);
    if (s.verdict) sr.verdict = verdict_json(s);
    sr.answer = s.answer;
    sr.logprob = s.mean_logprob;
    sr.extra = {{"stage", s.stage}, {"method", s.method}, {"outcome", s.outcome}, {"extracted_from", s.extracted_from}};
    if (!s.tool_calls.empty()) sr.extra["tool_calls"] = s.tool_calls;  // flow: the model calls the program made
    if (s.verified) sr.extra["verified"] = *s.verified;                // select verifier: the verifier's P(right)
    p.samples.push_back(std::move(sr));
  }
  return p;
}

}  // namespace wand::reason

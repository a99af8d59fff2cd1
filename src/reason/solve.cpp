// reason::solve: sample k completions, extract and run their programs in one sandbox batch, vote
// over the executed answers; when none answers, one self-debug round, then CoT.
#include <chrono>
#include <map>
#include <mutex>

#include <fmt/core.h>

#include "common/text.h"
#include "feedback/feedback.h"
#include "reason/extract.h"
#include "reason/flow.h"
#include "reason/numbers.h"
#include "reason/reason.h"
#include "reason/verifier.h"

namespace wand::reason {
namespace {

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point t0) { return std::chrono::duration<double, std::milli>(Clock::now() - t0).count(); }

// Generates n samples of a rendered template; each becomes a Sample of `stage`.
Result<std::vector<Sample>> generate(llm::Backend& model, const Template& t, const Rendered& r, const SolveConfig& c,
                                     int n, float temperature, uint64_t seed, const std::string& stage,
                                     const std::string& method) {
  llm::GenerateOptions g;
  g.max_tokens = c.max_tokens;
  g.temperature = temperature;
  g.top_p = c.top_p;
  g.seed = seed;
  g.n = n;
  g.stop = t.stop;
  g.logprobs = true;  // for tie-breaking and weighted votes; a server without them leaves them empty
  // The grammar shapes what the method asks for: a pot/pal/flow run's CoT fallback writes prose
  // outside it, and a cot run's rationale inside its own (a grammar file of the user's).
  if (method != "cot" || c.method == "cot") g.grammar = c.grammar;
  auto out = r.messages.empty() ? model.complete(r.prompt, g) : model.chat(r.messages, g);
  if (!out) return out.error();
  if (out->empty()) return Error{"the model returned no completion"};
  std::vector<Sample> samples;
  for (std::size_t i = 0; i < out->size(); ++i) {
    const auto& comp = (*out)[i];
    Sample s;
    s.stage = stage;
    s.method = method;
    s.seed = llm::sample_seed(seed, static_cast<int>(i));  // what the backend drew sample i from
    s.prompt = prompt_text(r);
    s.completion = comp.text;
    s.prompt_tokens = comp.prompt_tokens, s.completion_tokens = comp.completion_tokens;
    s.generate_ms = comp.prompt_ms + comp.generate_ms;
    if (!comp.logprobs.empty()) {
      double sum = 0;
      for (auto& lp : comp.logprobs) sum += lp.logprob.value_or(0.f);
      s.mean_logprob = sum / comp.logprobs.size();
    }
    samples.push_back(std::move(s));
  }
  return samples;
}

std::string outcome_of(const feedback::Verdict& v) {
  using feedback::ErrorClass;
  // No label here: "wrong" means answered. A solution() that forgot its `return` answers None:
  // no answer, not a vote for "None".
  if (v.error == ErrorClass::none || v.error == ErrorClass::wrong_answer)
    return v.answer.empty() || v.answer == "None" ? "no_answer" : "ok";
  return feedback::to_string(v.error);
}

// Extracts every sample's program and runs them all in one sandbox batch; fills program,
// outcome, answer, exec and verdict. Flow programs are granted llm() over `model` (flow.h), their
// calls recorded in tool_calls.
// The bindings of `names` (number mapping, numbers.h; one naming for all samples, or one each; no
// numbers mapped: none) go before the programs: the program the sandbox runs, and the one
// recorded, is bindings + what the model wrote.
void execute(sandbox::Sandbox& sb, llm::Backend& model, const std::string& question, std::vector<Sample*> samples,
             const SolveConfig& c, const std::vector<NumberMap>& names) {
  double timeout_s = c.timeout_s;
  feedback::Task task;
  task.kind = feedback::TaskKind::answer;
  task.format = "gsm8k";
  task.prompt = question;
  feedback::JudgeOptions jo;
  jo.timeout_s = timeout_s;
  jo.answer = "auto";  // solution() when defined (PAL), else `answer` (PoT), else what it printed
  std::vector<sandbox::ExecRequest> reqs;
  std::vector<std::pair<Sample*, feedback::Submission>> subs;
  std::vector<std::unique_ptr<RecordedModel>> recorders;  // one per flow program, alive through the batch
  std::mutex serial;  // the model serves one program's call at a time
  for (std::size_t at = 0; at < samples.size(); ++at) {
    Sample* s = samples[at];
    auto e = extract_program(s->completion, s->method);
    s->program = e.program, s->extracted_from = e.source;
    if (e.program.empty()) {
      s->outcome = "no_program";
      continue;
    }
    s->program = names[names.size() == 1 ? 0 : at].bindings() + s->program;
    auto sub = feedback::prepare(task, s->program, jo);
    auto req = sub.requests.front();
    if (s->method == "flow") {
      recorders.push_back(std::make_unique<RecordedModel>(model, serial, c.flow_tokens));
      auto granted = flow_tools(*recorders.back(), c.flow_calls, c.flow_tokens);
      auto bridge = granted ? std::make_shared<tools::Bridge>(std::move(*granted), tools::Budget{})
                            : std::shared_ptr<tools::Bridge>();
      VoidResult attached = bridge ? bridge->attach(req) : VoidResult(granted.error());
      if (!attached) {  // not expected (the tool is Python's and its schema fixed); said, not hidden
        s->outcome = "sandbox_error";
        s->tool_calls.push_back({{"error", attached.error().message}});
        recorders.pop_back();
        continue;
      }
    }
    reqs.push_back(std::move(req));
    subs.emplace_back(s, std::move(sub));
  }
  if (reqs.empty()) return;
  auto results = sb.run_batch(reqs);
  for (std::size_t i = 0; i < subs.size(); ++i) {
    auto& [s, sub] = subs[i];
    auto v = feedback::judge(task, sub, std::span(&results[i], 1), jo);
    s->outcome = outcome_of(v);
    if (s->outcome == "ok") {
      // The question has no label here: an answer is not "wrong", it is what the program computed.
      s->answer = v.answer;
      v.error = feedback::ErrorClass::none;
      v.tests.clear();
      v.feedback = fmt::format("The program's answer is {}.", v.answer);
    }
    s->exec = results[i];
    s->verdict = std::move(v);
  }
  for (std::size_t i = 0, r = 0; i < subs.size(); ++i)
    if (subs[i].first->method == "flow") subs[i].first->tool_calls = recorders[r++]->calls();
}

// SolveConfig::plausible: an answer the question cannot have is no answer; the verdict says why,
// for the repair round to show.
void set_aside_implausible(Sample& s, std::span<const std::string> given) {
  if (!s.answer) return;
  const std::string why = implausible_because(*s.answer, given);
  if (why.empty()) return;
  if (s.verdict) {
    s.verdict->error = feedback::ErrorClass::wrong_answer;
    s.verdict->feedback = fmt::format("The program's answer is {}, and {}.", *s.answer, why);
  }
  s.outcome = "implausible";
  s.answer.reset();
}

void read_rationale(Sample& s) {
  std::string a = feedback::extract_answer(s.completion);  // the extractor `wand eval` uses
  s.outcome = a.empty() ? "no_answer" : "ok";
  if (!a.empty()) s.answer = a;
}

// What the repair round shows the model: the first failed sample with a program, its program and
// the verdict's feedback (error class, message, line); else the first sample's reply.
std::pair<const Sample*, std::string> repair_subject(const std::vector<Sample>& samples) {
  for (auto& s : samples)
    if (!s.program.empty() && s.verdict)
      return {&s, fmt::format("{}{}: {}", feedback::to_string(s.verdict->error),
                              s.verdict->line ? fmt::format(" (line {})", s.verdict->line) : "", s.verdict->feedback)};
  return {&samples.front(), "No Python program could be found in the reply. Write the program in one ```python block."};
}

// A built-in grammar must describe what the built-in prompt asks for: decoded into another
// shape, a model writes what it was not asked for (wand's models forced into a fence lose the
// program). Grammar files and the user's own templates are the user's to match.
VoidResult grammar_fits(const SolveConfig& c) {
  bool pot = c.constrain == "pot", block = c.constrain == "python-block";
  if (!pot && !block) return ok_status();
  if (c.method == "cot")
    return Error{fmt::format("grammar '{}' describes programs; method cot writes prose (a grammar file of your own "
                             "may shape a rationale)",
                             c.constrain)};
  if (c.prompt) return ok_status();
  // Chat prompts ask for one ```python block; the others for the bare program (pal's, outside
  // the wand family, a `def solution():`, which pot's assignments cannot write).
  // flow's completion prompt asks for a bare program with loops and conditions, which pot's
  // assignments cannot write either.
  bool chat = c.family == "chat",
       pal_function = (c.method == "pal" || c.method == "flow") && c.family != "wand";
  if (block ? chat : !chat && !pal_function) return ok_status();
  std::string asked = chat            ? "one ```python block"
                      : c.method == "flow" ? "a bare program with loops and conditions"
                      : pal_function       ? "a bare `def solution():`"
                                           : "a bare program";
  std::string fits = chat ? "python-block" : pal_function ? "" : "pot";
  return Error{fmt::format("grammar '{}' writes {}; method {}'s {} prompt asks for {} ({})", c.constrain,
                           pot ? "bare `name = expression` lines" : "a ```python block", c.method, c.family, asked,
                           fits.empty() ? "no built-in grammar fits it; a grammar file of your own may"
                                        : "use --constrain " + fits)};
}

}  // namespace

std::vector<std::string> idle_options(const SolveConfig& c) {
  std::vector<std::string> idle;
  if (c.weighted && c.k == 1) idle.push_back("--weighted: one sample (--k 1) has no vote to weigh");
  if (c.shuffle_names && c.k == 1) idle.push_back("--shuffle-names: with --k 1 the one sample reads the names in order");
  if (c.select != "vote" && c.k == 1) idle.push_back(fmt::format("--select {}: one sample (--k 1) has nothing to choose from", c.select));
  if (c.weighted && c.select != "vote")
    idle.push_back(fmt::format("--weighted: --select {} takes one sample's answer, not a weighed vote", c.select));
  if (c.top_p < 1 && c.temperature == 0) idle.push_back("--top-p: decoding is greedy (temperature 0)");
  if (!c.repair && c.method == "cot") idle.push_back("--no-repair: cot has no self-debug round");
  return idle;
}

Result<std::string> prompt_family(llm::Backend& model, const std::string& style) {
  if (style == "wand" || style == "chat" || style == "completion") return style;
  if (style != "auto") return Error{fmt::format("prompt style '{}': expected auto, wand, chat or completion", style)};
  return std::string(model.prompt_format().empty() ? "chat" : "wand");
}

VoidResult validate(const SolveConfig& c) {
  if (c.method != "cot" && c.method != "pot" && c.method != "pal" && c.method != "flow")
    return Error{fmt::format("method '{}': expected cot, pot, pal or flow", c.method)};
  if (c.family != "wand" && c.family != "chat" && c.family != "completion")
    return Error{fmt::format("prompt family '{}': expected wand, chat or completion", c.family)};
  if (c.select != "vote" && c.select != "logprob" && c.select != "verifier")
    return Error{fmt::format("select '{}': expected vote, logprob or verifier", c.select)};
  if ((c.select == "verifier") != static_cast<bool>(c.verifier))
    return Error{c.verifier ? fmt::format("verifier {}: only select verifier reads a verifier (select is '{}')", c.verifier_spec, c.select)
                            : "select 'verifier' needs a verifier model"};
  if (c.k < 1 || c.k > 64) return Error{fmt::format("k {}: expected 1 to 64 samples", c.k)};
  if (!(c.temperature >= llm::kTemperatureRange.lo && c.temperature <= llm::kTemperatureRange.hi))
    return Error{fmt::format("temperature {}: expected {} to {}", c.temperature, llm::kTemperatureRange.lo,
                             llm::kTemperatureRange.hi)};
  if (!(c.top_p > 0 && c.top_p <= 1)) return Error{fmt::format("top_p {}: expected more than 0, at most 1", c.top_p)};
  if (c.max_tokens < 1) return Error{fmt::format("max_tokens {}: expected at least 1", c.max_tokens)};
  if (!(c.timeout_s > 0)) return Error{fmt::format("timeout {}: expected more than 0 seconds", c.timeout_s)};
  if (c.method == "flow") {
    // wand's own models know only the bare pot and cot formats they were trained on: they would
    // neither write a program that calls llm() nor answer a sub-question put in prose.
    if (c.family == "wand" && !c.prompt)
      return Error{"method flow needs a model that writes programs calling llm(); wand's own models know only "
                   "their pot and cot formats (give another model and --prompt-style chat or completion)"};
    if (c.flow_calls < 1 || c.flow_calls > 64)
      return Error{fmt::format("flow_calls {}: expected 1 to 64 llm calls per program", c.flow_calls)};
    if (c.flow_tokens < 1 || c.flow_tokens > 4096)
      return Error{fmt::format("flow_tokens {}: expected 1 to 4096 tokens per llm call", c.flow_tokens)};
  }
  if (auto g = grammar_fits(c); !g) return g;
  return ok_status();
}

namespace {
// A model trained on mapped questions (numbers.h), prompted with its own built-in prompt for programs.
bool reads_names(llm::Backend& model, const SolveConfig& c) {
  return c.method != "cot" && c.family == "wand" && !c.prompt && reading_of(model.prompt_format());
}
// wand's models that write programs (wand.prompt_format pot, pot-numbers, pot-delex), never prose.
bool writes_programs(std::string_view format) { return format == "pot" || reading_of(format); }
}  // namespace

VoidResult fits_model(llm::Backend& model, const SolveConfig& c) {
  // A wand model writes the one format it was trained on. Asked through its built-in prompt for
  // another, its text was misread, exit 0: a program model's `answer = v1+v2` printed as cot's
  // answer, the code model's `return result` as pot's (after the fallback).
  if (const std::string format = model.prompt_format(); c.family == "wand" && !c.prompt && !format.empty()) {
    const bool program_method = c.method != "cot";
    if (program_method ? !writes_programs(format) : format != "cot")
      return Error{fmt::format("method {}: {} is a wand model of prompt format '{}', which {}; method {} needs one of "
                               "format {}",
                               c.method, model.id(), format,
                               format == "cot"                 ? "writes prose (use method cot)"
                               : writes_programs(format)       ? "writes programs (use method pot or pal)"
                                                               : "is not a word-problem model",
                               c.method, program_method ? "pot, pot-numbers or pot-delex" : "cot")};
  }
  if (c.verifier && !c.verifier->prompt_format().empty() && c.verifier->prompt_format() != kVerifierFormat)
    return Error{fmt::format("verifier {}: a wand model of prompt format '{}', not a verifier (format '{}': `wand export "
                             "--format verifier` and wand-train make one; the shipped one is models/wand-verify.gguf)",
                             c.verifier->id(), c.verifier->prompt_format(), kVerifierFormat)};
  if (c.shuffle_names && !reads_names(model, c))
    return Error{fmt::format("--shuffle-names: the model's prompt format is '{}' (method {}, prompt family {}{}); only a {} "
                             "or {} model, with its built-in prompt for programs, reads number names to shuffle",
                             model.prompt_format(), c.method, c.family, c.prompt ? ", your own prompt" : "", kNumbersFormat,
                             kDelexFormat)};
  return ok_status();
}

Result<SolveResult> solve(llm::Backend& model, sandbox::Sandbox* sb, const std::string& question, const SolveConfig& c) {
  // First what no config can fix.
  if (c.grammar && !model.can_constrain())
    return Error{fmt::format("{}: a decoding grammar (constrain '{}') needs the embedded engine (local:PATH.gguf)",
                             model.id(), c.constrain),
                 std::string(llm::kInvalidRequest)};
  // A config out of range is a bad request, as the backend's own refusals are.
  if (auto v = validate(c); !v) return Error{v.error().message, std::string(llm::kInvalidRequest)};
  // A blank question is refused: the model would answer it anyway (with a training template's number).
  if (is_blank(question))
    return Error{"the question is empty", std::string(llm::kInvalidRequest)};
  bool programs = c.method != "cot";
  if (programs && !sb) return Error{fmt::format("method {} runs programs and needs a sandbox", c.method)};
  Template t;
  if (c.prompt) {
    t = *c.prompt;
  } else {
    auto b = builtin_template(c.method, c.family);
    if (!b) return b.error();
    t = std::move(*b);
  }
  SolveResult res;
  res.prompt_hash = t.hash;
  // A model trained on mapped questions (numbers.h) reads names for the numbers; its programs run
  // with the names bound. Only its own built-in prompt is mapped: a user's template is theirs.
  if (auto f = fits_model(model, c); !f) return Error{f.error().message, std::string(llm::kInvalidRequest)};
  bool mapped = reads_names(model, c);
  // With shuffle_names each sample reads its own naming of the numbers (sample 0 the order of
  // appearance): names[i] is sample i's, or names[0] everyone's (empty, binding nothing, when unmapped).
  const bool shuffled = mapped && c.shuffle_names && c.k > 1;
  std::vector<NumberMap> names(1);
  if (mapped) names[0] = map_question(question, *reading_of(model.prompt_format()));
  for (int i = 1; shuffled && i < c.k; ++i)
    names.push_back(map_question(question, *reading_of(model.prompt_format()), llm::sample_seed(c.seed, i) | 1));
  auto shown_question = [&](std::size_t i) -> const std::string& { return mapped ? names[i].text : question; };
  Rendered r = render(t, {{"question", shown_question(0)}});

  auto t0 = Clock::now();
  if (!shuffled) {
    auto gen = generate(model, t, r, c, c.k, c.temperature, c.seed, "sample", c.method);
    if (!gen) return gen.error();
    res.samples = std::move(*gen);
  } else {  // one prompt per naming, so one sample per call
    for (int i = 0; i < c.k; ++i) {
      auto gen = generate(model, t, i == 0 ? r : render(t, {{"question", shown_question(i)}}), c, 1, c.temperature,
                          llm::sample_seed(c.seed, i), "sample", c.method);
      if (!gen) return gen.error();
      res.samples.push_back(std::move(gen->front()));
    }
  }
  res.generate_ms += ms_since(t0);
  for (int i = 0; auto& s : res.samples) s.index = i++;

  auto t1 = Clock::now();
  if (programs) {
    std::vector<Sample*> all;
    for (auto& s : res.samples) all.push_back(&s);
    execute(*sb, model, question, all, c, names);
  } else {
    for (auto& s : res.samples) read_rationale(s);
  }
  res.execute_ms += ms_since(t1);
  // The numbers the question gives, for the plausibility check (the question as written).
  const std::vector<std::string> given = c.plausible ? map_numbers(question).values : std::vector<std::string>{};
  if (c.plausible)
    for (auto& s : res.samples) set_aside_implausible(s, given);

  if (c.select == "verifier") {
    auto t2 = Clock::now();
    // Samples that wrote the same program are asked once; one longer than the verifier's context
    // goes unscored (nullopt) and ranks below the scored ones.
    std::map<std::string, std::optional<double>> scored;
    for (auto& s : res.samples) {
      if (!s.answer) continue;
      std::string asked = verifier_prompt(s.prompt, s.program, *s.answer);
      if (auto seen = scored.find(asked); seen != scored.end()) {
        s.verified = seen->second;
        continue;
      }
      auto score = verifier_score(*c.verifier, asked);
      if (!score && score.error().code != llm::kContextLengthExceeded) return score.error();
      s.verified = scored[asked] = score ? std::optional<double>(*score) : std::nullopt;
    }
    res.verify_ms += ms_since(t2);
  }
  std::vector<Ballot> ballots;
  for (auto& s : res.samples) ballots.push_back({s.answer, s.mean_logprob, s.verified});
  res.vote = vote(ballots, {.weighted = c.weighted, .top_logprob = c.select == "logprob", .top_verified = c.select == "verifier"});
  if (res.vote.answer) {
    res.answer = res.vote.answer, res.answered_by = "sample", res.winner = res.vote.winner;
    return res;
  }
  if (!programs) return res;

  // Nothing answered. One self-debug round (Chen et al., 2023, "Teaching LLMs to Self-Debug"):
  // the model sees a failed program and its verdict's feedback, greedily writes one fix.
  auto finish_step = [&](Sample s, bool run, std::size_t naming) {
    s.index = static_cast<int>(res.samples.size());
    res.samples.push_back(std::move(s));
    Sample& step = res.samples.back();
    auto t2 = Clock::now();
    if (run) execute(*sb, model, question, {&step}, c, {names[naming]});
    else read_rationale(step);
    if (c.plausible) set_aside_implausible(step, given);
    res.execute_ms += ms_since(t2);
    if (step.answer) {
      res.answer = normalize_answer(*step.answer);
      res.answered_by = step.stage;
      res.winner = step.index;
    }
  };
  if (c.repair) {
    // The repair turn continues the conversation in the form the method's prompt had (a user's
    // own template may be chat or completion whatever the model's family).
    std::string family = !c.prompt ? c.family : c.prompt->chat() ? "chat" : "completion";
    auto rt = builtin_template("repair", family);
    if (!rt) return rt.error();
    auto [subject, feedback] = repair_subject(res.samples);
    const std::size_t naming = shuffled ? static_cast<std::size_t>(subject->index) : 0;  // the question it read
    std::string shown = subject->program.empty() ? subject->completion : subject->program;
    Rendered rr = render(*rt, {{"question", shown_question(naming)}, {"program", shown}, {"feedback", feedback}});
    if (family == "completion") rr.prompt = r.prompt + subject->completion + rr.prompt;
    if (family == "chat" && !model.prompt_format().empty()) {
      // A model that answers one question in its format (a wand model) takes one user turn
      // and reads no feedback: the round asks the method's prompt again, as repair.wand does.
      rr.messages = r.messages;
    } else if (family == "chat") {
      std::vector<llm::Message> turns = r.messages;
      turns.push_back({"assistant", subject->completion});
      turns.insert(turns.end(), rr.messages.begin(), rr.messages.end());
      rr.messages = std::move(turns);
    }
    auto t3 = Clock::now();
    auto fix = generate(model, *rt, rr, c, 1, 0.f, llm::sample_seed(c.seed, c.k), "repair", c.method);
    if (!fix) return fix.error();
    res.generate_ms += ms_since(t3);
    finish_step(std::move(fix->front()), true, naming);
    if (res.answer) return res;
  }
  // Chain-of-thought, the last resort: the model's own arithmetic. Not for wand's own program
  // models (pot, or trained on mapped questions: pot-numbers, pot-delex), whatever prompt they
  // were given: they have never written prose, and asked for it write a program whose last line
  // would be taken for the answer.
  const bool writes_prose = !(c.family == "wand" && writes_programs(model.prompt_format()));  // a mapped model is one of them
  if (c.fallback && writes_prose) {
    auto ct = builtin_template("cot", c.family);
    if (!ct) return ct.error();
    auto t4 = Clock::now();
    auto cot = generate(model, *ct, render(*ct, {{"question", question}}), c, 1, 0.f, llm::sample_seed(c.seed, c.k + 1),
                        "fallback", "cot");
    if (!cot) return cot.error();
    res.generate_ms += ms_since(t4);
    finish_step(std::move(cot->front()), false, 0);
  }
  return res;
}

Json to_json(const Sample& s) {
  Json j = {{"index", s.index},       {"stage", s.stage},       {"method", s.method},
            {"seed", s.seed},         {"completion", s.completion}, {"program", s.program},
            {"extracted_from", s.extracted_from}, {"outcome", s.outcome},
            {"answer", s.answer ? Json(*s.answer) : Json(nullptr)},
            {"mean_logprob", s.mean_logprob ? Json(*s.mean_logprob) : Json(nullptr)},
            {"verified", s.verified ? Json(*s.verified) : Json(nullptr)},
            {"completion_tokens", s.completion_tokens}};
  if (s.verdict) j["verdict"] = verdict_json(s);
  if (!s.tool_calls.empty()) j["tool_calls"] = s.tool_calls;
  return j;
}

Json verdict_json(const Sample& s) {
  if (!s.verdict) return nullptr;
  Json v = s.verdict->to_json();
  if (s.outcome == "ok") v["passed"] = nullptr, v["reward"] = nullptr;
  return v;
}

Json to_json(const SolveResult& r) {
  Json samples = Json::array();
  for (auto& s : r.samples) samples.push_back(to_json(s));
  return {{"answer", r.answer ? Json(*r.answer) : Json(nullptr)},
          {"answered_by", r.answered_by},
          {"winner", r.winner},
          {"vote", r.vote.to_json()},
          {"prompt_hash", r.prompt_hash},
          {"generate_ms", r.generate_ms},
          {"execute_ms", r.execute_ms},
          {"verify_ms", r.verify_ms},
          {"samples", samples}};
}

}  // namespace wand::reason

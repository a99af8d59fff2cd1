// The methods: sample, self-debug, CodeT and the coder/tester roles, over a Backend and the sandbox.
#include <fmt/core.h>

#include <algorithm>
#include <map>
#include <set>

#include "codegen/codegen.h"
#include "common/text.h"
#include "feedback/clip.h"
#include "reason/prompt.h"

extern const std::string_view wand_embedded_prompt_code_wand, wand_embedded_prompt_code_completion,
    wand_embedded_prompt_code_chat, wand_embedded_prompt_complete_completion, wand_embedded_prompt_complete_chat,
    wand_embedded_prompt_tests_wand, wand_embedded_prompt_tests_completion, wand_embedded_prompt_tests_chat,
    wand_embedded_prompt_debug_wand, wand_embedded_prompt_debug_completion, wand_embedded_prompt_debug_chat,
    wand_embedded_prompt_explain_wand, wand_embedded_prompt_explain_completion, wand_embedded_prompt_explain_chat,
    wand_embedded_prompt_tests_io_wand, wand_embedded_prompt_tests_io_completion, wand_embedded_prompt_tests_io_chat;

namespace wand::codegen {
namespace {

using reason::Rendered;
using reason::Template;

// prompts/PURPOSE.FAMILY.txt. HumanEval-style tasks (a signature and docstring) use `complete`
// for completion and chat models; wand's models read every task in their `code` format.
Result<Template> code_template(const std::string& purpose, const std::string& family) {
  static const std::map<std::string, std::string_view> files = {
      {"code.wand", wand_embedded_prompt_code_wand},
      {"code.completion", wand_embedded_prompt_code_completion},
      {"code.chat", wand_embedded_prompt_code_chat},
      {"complete.completion", wand_embedded_prompt_complete_completion},
      {"complete.chat", wand_embedded_prompt_complete_chat},
      {"tests.wand", wand_embedded_prompt_tests_wand},
      {"tests.completion", wand_embedded_prompt_tests_completion},
      {"tests.chat", wand_embedded_prompt_tests_chat},
      {"tests_io.wand", wand_embedded_prompt_tests_io_wand},
      {"tests_io.completion", wand_embedded_prompt_tests_io_completion},
      {"tests_io.chat", wand_embedded_prompt_tests_io_chat},
      {"debug.wand", wand_embedded_prompt_debug_wand},
      {"debug.completion", wand_embedded_prompt_debug_completion},
      {"debug.chat", wand_embedded_prompt_debug_chat},
      {"explain.wand", wand_embedded_prompt_explain_wand},
      {"explain.completion", wand_embedded_prompt_explain_completion},
      {"explain.chat", wand_embedded_prompt_explain_chat}};
  std::string name = purpose + "." + family;
  auto it = files.find(name);
  if (it == files.end()) return Error{fmt::format("no built-in code prompt '{}'", name)};
  static const std::vector<std::string> allowed = {"question", "tests", "entry", "count", "program", "feedback"};
  // A chat round continues the conversation, so it needs no question; a completion round is a
  // prompt of its own.
  std::vector<std::string> required = {"question"};
  if (purpose == "debug" && family != "wand") required = {"feedback"};
  if (purpose == "explain") required = family == "chat" ? std::vector<std::string>{} : std::vector<std::string>{"program"};
  return reason::parse_template(std::string(it->second), "prompts/" + name + ".txt", allowed, required);
}

using Cases = std::vector<std::pair<std::string, std::string>>;

// The visible tests as the prompt shows them: one assert a line, or stdio cases.
std::string tests_text(const Problem& p, const std::vector<std::string>& asserts) {
  std::string s;
  for (auto& a : asserts) s += a + "\n";
  for (auto& io : p.visible_io) s += case_text(io);
  return s;
}

// What a method runs programs against: asserts, or a stdio task's stdin/stdout cases.
struct Suite {
  std::vector<std::string> asserts;
  Cases io;
  bool empty() const { return asserts.empty() && io.empty(); }
  std::size_t size() const { return asserts.size() + io.size(); }
  // As CodeResult::tests lists them: the asserts, or each case's case_text.
  std::vector<std::string> texts() const {
    std::vector<std::string> t = asserts;
    for (auto& c : io) t.push_back(case_text(c));
    return t;
  }
};

// Unit-test feedback (Self-Debug's "UT"): the verdict, then each failing test with what it got.
std::string unit_feedback(const feedback::Verdict& v) {
  std::string s = v.feedback;
  int shown = 0;
  for (auto& t : v.tests) {
    if (t.passed || ++shown > 5) continue;
    s += fmt::format("\n- `{}`", feedback::clip(t.source, 200));
    if (!t.error.empty()) s += " raised " + feedback::clip(t.error, 200);
    else if (!t.expected.empty() || !t.got.empty()) s += fmt::format(": expected {}, got {}", feedback::clip(t.expected, 100), feedback::clip(t.got, 100));
  }
  return s;
}

int tests_passed(const feedback::Verdict& v) {
  return static_cast<int>(std::count_if(v.tests.begin(), v.tests.end(), [](auto& t) { return t.passed; }));
}

class Runner {
 public:
  Runner(llm::Backend& model, sandbox::Sandbox& sb, const Problem& p, const CodeConfig& c, CodeResult& res)
      : model_(model), sb_(sb), p_(p), c_(c), res_(res) {}

  VoidResult load() {
    bool signature = p_.task.format == "humaneval" && c_.family != "wand";
    using Slot = std::pair<Template*, const char*>;
    // A stdio task's tester writes input/output cases, not asserts.
    const char* tests = stdio() ? "tests_io" : "tests";
    for (auto [slot, purpose] : std::initializer_list<Slot>{
             {&coder_, signature ? "complete" : "code"}, {&tester_, tests}, {&debug_, "debug"}, {&explain_, "explain"}}) {
      auto t = code_template(purpose, c_.family);
      if (!t) return t.error();
      *slot = std::move(*t);
    }
    res_.prompt_hash = coder_.hash;
    return ok_status();
  }

  // n completions of a rendered template, each a new Step.
  Result<std::vector<int>> call(const Template& t, const Rendered& r, int n, float temperature, const std::string& role,
                                int chain, int round) {
    llm::GenerateOptions g;
    g.max_tokens = c_.max_tokens;
    g.temperature = temperature;
    g.top_p = c_.top_p;
    g.seed = llm::sample_seed(c_.seed, calls_++);
    g.n = n;
    g.stop = t.stop;
    auto out = r.messages.empty() ? model_.complete(r.prompt, g) : model_.chat(r.messages, g);
    if (!out) return out.error();
    if (out->empty()) return Error{"the model returned no completion"};
    std::vector<int> ids;
    for (int i = 0; i < static_cast<int>(out->size()); ++i) {
      Step s;
      s.index = static_cast<int>(res_.steps.size());
      s.chain = role == "coder" && n > 1 ? chain + i : chain;
      s.round = round;
      s.role = role;
      s.seed = llm::sample_seed(g.seed, i);
      s.prompt = reason::prompt_text(r);
      s.completion = (*out)[i].text;
      s.prompt_tokens = (*out)[i].prompt_tokens, s.completion_tokens = (*out)[i].completion_tokens;
      if (role == "coder") s.code = feedback::code_from_completion(code_task(), s.completion);
      if (role == "tester" && stdio())
        for (auto& io : parse_io_cases(s.completion)) s.asserts.push_back(case_text(io));
      else if (role == "tester")
        s.asserts = parse_asserts(s.completion, p_.entry);
      ids.push_back(s.index);
      res_.steps.push_back(std::move(s));
    }
    return ids;
  }

  Rendered coder_prompt(const std::vector<std::string>& tests) {
    return reason::render(coder_, values(tests));
  }

  bool stdio() const { return p_.task.kind == feedback::TaskKind::stdio; }
  Suite visible() const { return {p_.visible, p_.visible_io}; }

  // Runs the coder steps `ids` against the tests; fills their visible verdicts.
  void check(const std::vector<int>& ids, const Suite& tests) {
    std::vector<std::string> programs;
    for (int id : ids) programs.push_back(program_of(p_, res_.steps[id].code));
    auto v = run_tests(sb_, p_, programs, tests.asserts, tests.io, c_.timeout_s);
    for (std::size_t i = 0; i < ids.size(); ++i) res_.steps[ids[i]].visible = std::move(v[i]);
  }

  // Model-written tests: `samples` tester completions (from the description alone), parsed,
  // pooled, deduplicated; asserts kept when Python parses them; the first `c.tests`.
  Result<Suite> generated_tests() {
    int n = c_.temperature > 0 ? 3 : 1;
    auto ids = call(tester_, reason::render(tester_, values({})), n, c_.temperature, "tester", 0, 0);
    if (!ids) return ids.error();
    Suite s;
    std::set<std::string> seen;
    for (int id : *ids) {
      if (stdio()) {
        for (auto& io : parse_io_cases(res_.steps[id].completion))
          if (seen.insert(case_text(io)).second) s.io.push_back(io);
      } else {
        for (auto& a : res_.steps[id].asserts)
          if (seen.insert(a).second) s.asserts.push_back(a);
      }
    }
    if (!stdio()) s.asserts = parseable_asserts(sb_, s.asserts, c_.timeout_s);
    if (static_cast<int>(s.asserts.size()) > c_.tests) s.asserts.resize(c_.tests);
    if (static_cast<int>(s.io.size()) > c_.tests) s.io.resize(c_.tests);
    return s;
  }

  // A debug round's prompt: the program's verdict as feedback at the configured level.
  Result<Rendered> debug_prompt(const Rendered& first, int step_id, const std::vector<std::string>& tests,
                                const std::string& level, int chain, int round) {
    const Step& s = res_.steps[step_id];
    std::string fb = level == "simple" ? "The program above is wrong. Please fix it." : unit_feedback(*s.visible);
    std::vector<llm::Message> turns = first.messages;
    if (!turns.empty()) turns.push_back({"assistant", s.completion});
    if (level == "explain") {
      // The model explains its own program line by line before it sees the verdict (Self-Debug's "Expl").
      Rendered er = reason::render(explain_, values(tests, program_of(p_, s.code)));
      if (!turns.empty()) {
        er.messages.insert(er.messages.begin(), turns.begin(), turns.end());
      }
      auto ids = call(explain_, er, 1, 0.f, "explainer", chain, round);
      if (!ids) return ids.error();
      const std::string& text = res_.steps[ids->front()].completion;
      if (!turns.empty()) {
        turns = er.messages;
        turns.push_back({"assistant", text});
      } else {
        fb = "Explanation of the program:\n" + text + "\n\n" + fb;
      }
    }
    Rendered r = reason::render(debug_, values(tests, program_of(p_, s.code), fb));
    if (!turns.empty()) {
      turns.insert(turns.end(), r.messages.begin(), r.messages.end());
      r.messages = std::move(turns);
    }
    return r;
  }

  // One chain: a program, then up to R rounds of feedback from running `run` (or the stdio
  // cases); stops at the first program that passes them all. The prompts show `shown` (the
  // visible tests: a tester's asserts reach the coder only as feedback). Returns the final step.
  Result<int> chain(int chain, const std::vector<std::string>& shown, const Suite& run, const std::string& level) {
    Rendered first = coder_prompt(shown);
    auto ids = call(coder_, first, 1, c_.temperature, "coder", chain, 0);
    if (!ids) return ids.error();
    int id = ids->front();
    check({id}, run);
    // A round whose prompt (the program, its feedback, an explanation) outgrows the model's
    // context ends the chain with the program it has.
    auto too_long = [&](const Error& e) {
      if (e.code != llm::kContextLengthExceeded) return false;
      ++rounds_cut_;
      return true;
    };
    for (int round = 1; round <= c_.rounds && !res_.steps[id].visible->passed; ++round) {
      auto r = debug_prompt(first, id, shown, level, chain, round);
      if (!r) {
        if (too_long(r.error())) break;
        return r.error();
      }
      // wand's own models get the same prompt again: only sampling makes the new program differ.
      float temperature = c_.family == "wand" ? std::max(c_.temperature, 0.8f) : c_.temperature;
      auto next = call(debug_, *r, 1, temperature, "coder", chain, round);
      if (!next) {
        if (too_long(next.error())) break;
        return next.error();
      }
      id = next->front();
      check({id}, run);
    }
    return id;
  }

  // A generated case contradicts the examples when its input is an example's and its output is
  // not (both compared as the judge compares outputs: whitespace-separated tokens).
  Cases discard_contradicting(const Cases& generated) {
    Cases kept;
    for (auto& g : generated) {
      bool bad = std::any_of(p_.visible_io.begin(), p_.visible_io.end(), [&](auto& v) {
        return feedback::outputs_match(g.first, v.first) && !feedback::outputs_match(g.second, v.second);
      });
      if (bad) res_.discarded.push_back(case_text(g));
      else kept.push_back(g);
    }
    return kept;
  }

  // A generated assert contradicts the description's examples when it makes the same call as an
  // example (`assert f(args) == v`, compared as Python syntax trees) and expects a value that is
  // not equal to the example's (compared by Python). One sandboxed run for all of them; values
  // that cannot be evaluated on their own (they use the program's names) are kept.
  std::vector<std::string> discard_contradicting(const std::vector<std::string>& generated) {
    if (generated.empty() || p_.visible.empty()) return generated;
    sandbox::ExecRequest req;
    req.code =
        "import ast, json, sys\n"
        "req = json.load(sys.stdin)\n"
        "def sides(src):\n"
        "    try:\n"
        "        t = ast.parse(src).body[0].test\n"
        "    except Exception:\n"
        "        return None\n"
        "    if isinstance(t, ast.Compare) and len(t.ops) == 1 and isinstance(t.ops[0], ast.Eq):\n"
        "        return ast.dump(t.left), ast.unparse(t.comparators[0])\n"
        "    return None\n"
        "examples = [s for s in map(sides, req['visible']) if s]\n"
        "bad = []\n"
        "for i, g in enumerate(req['generated']):\n"
        "    s = sides(g)\n"
        "    for call, value in examples:\n"
        "        if s and s[0] == call:\n"
        "            try:\n"
        "                if not (eval(s[1], {}) == eval(value, {})):\n"
        "                    bad.append(i)\n"
        "                    break\n"
        "            except Exception:\n"
        "                pass\n"
        "print(json.dumps(bad))\n";
    req.stdin_data = dump_text(Json{{"generated", generated}, {"visible", p_.visible}});
    req.limits.timeout_s = c_.timeout_s;
    auto run = sb_.run(req);
    auto bad = parse_json(run.stdout_data, "the contradiction check");
    std::set<std::size_t> discard;
    if (run.status == sandbox::Status::ok && bad && bad->is_array())
      for (auto& i : *bad)
        if (i.is_number_unsigned() && i.get<std::size_t>() < generated.size()) discard.insert(i.get<std::size_t>());
    std::vector<std::string> kept;
    for (std::size_t i = 0; i < generated.size(); ++i)
      (discard.contains(i) ? res_.discarded : kept).push_back(generated[i]);
    return kept;
  }

  Result<int> sample();
  Result<int> self_debug();
  Result<int> codet();
  Result<int> roles();

 private:
  std::map<std::string, std::string> values(const std::vector<std::string>& tests, const std::string& program = "",
                                            const std::string& fb = "") {
    return {{"question", p_.description}, {"tests", tests_text(p_, tests)}, {"entry", p_.entry},
            {"count", std::to_string(c_.tests)}, {"program", program}, {"feedback", fb}};
  }
  // The task code_from_completion reads: which function to look for in fenced blocks.
  feedback::Task code_task() const {
    feedback::Task t = p_.task;
    if (t.entry_point.empty()) t.entry_point = p_.entry;
    return t;
  }

  llm::Backend& model_;
  sandbox::Sandbox& sb_;
  const Problem& p_;
  const CodeConfig& c_;
  CodeResult& res_;
  Template coder_, tester_, debug_, explain_;
  int calls_ = 0;

 public:
  int rounds_cut_ = 0;  // chains ended early: a round's prompt did not fit the context
};

// The first of `finals` that passed its tests, else the first.
int first_passing(const std::vector<Step>& steps, const std::vector<int>& finals) {
  for (int id : finals)
    if (steps[id].visible && steps[id].visible->passed && !steps[id].visible->tests.empty()) return id;
  return finals.front();
}

Result<int> Runner::sample() {
  auto ids = call(coder_, coder_prompt(p_.visible), c_.k, c_.temperature, "coder", 0, 0);
  if (!ids) return ids.error();
  res_.finals = *ids;
  res_.tests = p_.visible;
  if (p_.visible.empty() && p_.visible_io.empty()) {
    res_.how = fmt::format("sample 0 of {} (no visible tests to choose by)", c_.k);
    return ids->front();
  }
  check(*ids, visible());
  int pick = first_passing(res_.steps, *ids);
  bool passed = res_.steps[pick].visible->passed;
  res_.how = passed ? fmt::format("sample {} of {}: the first to pass the visible tests", res_.steps[pick].chain, c_.k)
                    : fmt::format("sample 0 of {}: none passed the visible tests", c_.k);
  return pick;
}

Result<int> Runner::self_debug() {
  if (p_.visible.empty() && p_.visible_io.empty()) {
    // A dataset record whose prompt shows no runnable example (HumanEval/38) has nothing to debug
    // against: its first programs stand. A description without tests is the user's to fix.
    if (p_.task.format == "description")
      return Error{"self-debug runs the visible tests: the task has none (give --tests FILE, or `>>> f(x)` examples in the description)",
                   std::string(llm::kInvalidRequest)};
    auto ids = call(coder_, coder_prompt({}), c_.k, c_.temperature, "coder", 0, 0);
    if (!ids) return ids.error();
    res_.finals = *ids;
    res_.how = "self-debug: the task shows no examples to run; the first program";
    return ids->front();
  }
  res_.tests = p_.visible;
  for (int k = 0; k < c_.k; ++k) {
    auto id = chain(k, p_.visible, visible(), c_.feedback);
    if (!id) return id.error();
    res_.finals.push_back(*id);
  }
  int pick = first_passing(res_.steps, res_.finals);
  const Step& s = res_.steps[pick];
  res_.how = s.visible->passed
                 ? fmt::format("self-debug ({} feedback): chain {} passed the {} visible tests after {} round(s)",
                               c_.feedback, s.chain, s.visible->tests.size(), s.round)
                 : fmt::format("self-debug ({} feedback): no chain passed the visible tests in {} round(s); chain 0's last program",
                               c_.feedback, c_.rounds);
  return pick;
}

Result<int> Runner::codet() {
  auto ids = call(coder_, coder_prompt(p_.visible), c_.k, c_.temperature, "coder", 0, 0);
  if (!ids) return ids.error();
  auto tests = generated_tests();
  if (!tests) return tests.error();
  res_.tests = tests->texts();
  check(*ids, *tests);
  std::vector<std::vector<bool>> pass;
  for (int id : *ids) {
    std::vector<bool> row(tests->size(), false);
    for (auto& t : res_.steps[id].visible->tests)
      if (t.index >= 0 && t.index < static_cast<int>(row.size())) row[t.index] = t.passed;
    pass.push_back(std::move(row));
  }
  Agreement a = dual_agreement(pass);
  res_.agreement = a;
  res_.finals = {(*ids)[a.pick]};
  res_.how = fmt::format("codet: program {} of {}, in a group of {} programs passing {} of {} generated tests (score {:g}, {} groups)",
                         a.pick, c_.k, a.group.size(), a.tests_passed, tests->size(), a.score, a.groups);
  return (*ids)[a.pick];
}

Result<int> Runner::roles() {
  // The tester works from the description alone; the examples it contradicts lose.
  auto generated = generated_tests();
  if (!generated) return generated.error();
  Suite tests = visible();
  std::set<std::string> have(tests.asserts.begin(), tests.asserts.end());
  for (auto& a : discard_contradicting(generated->asserts))
    if (have.insert(a).second) tests.asserts.push_back(a);
  for (auto& io : tests.io) have.insert(case_text(io));
  for (auto& io : discard_contradicting(generated->io))
    if (have.insert(case_text(io)).second) tests.io.push_back(io);
  res_.tests = tests.texts();
  if (tests.empty()) {  // nothing to arbitrate with: the coder's first programs stand
    auto ids = call(coder_, coder_prompt({}), c_.k, c_.temperature, "coder", 0, 0);
    if (!ids) return ids.error();
    res_.finals = *ids;
    res_.how = "roles: the tester wrote no usable asserts and the task shows no examples; the coder's first program";
    return ids->front();
  }
  for (int k = 0; k < c_.k; ++k) {
    auto id = chain(k, p_.visible, tests, "unit");
    if (!id) return id.error();
    res_.finals.push_back(*id);
  }
  int pick = first_passing(res_.steps, res_.finals);
  const Step& s = res_.steps[pick];
  std::size_t examples = p_.visible.size() + p_.visible_io.size();
  res_.how = fmt::format("roles: chain {} {} {} of {} tests ({} from the examples, {} by the tester, {} discarded) after {} round(s)",
                         s.chain, s.visible->passed ? "passed all" : "passed", tests_passed(*s.visible), tests.size(),
                         examples, tests.size() - examples, res_.discarded.size(), s.round);
  return pick;
}

}  // namespace

VoidResult validate(const CodeConfig& c) {
  static const std::set<std::string> methods = {"sample", "self-debug", "codet", "roles"};
  if (!methods.contains(c.method)) return Error{fmt::format("method '{}': expected sample, self-debug, codet or roles", c.method)};
  if (c.family != "wand" && c.family != "chat" && c.family != "completion")
    return Error{fmt::format("prompt family '{}': expected wand, chat or completion", c.family)};
  if (c.feedback != "simple" && c.feedback != "unit" && c.feedback != "explain")
    return Error{fmt::format("feedback '{}': expected simple, unit or explain", c.feedback)};
  if (c.k < 1 || c.k > 100) return Error{fmt::format("k {}: expected 1 to 100", c.k)};
  if (c.rounds < 0 || c.rounds > 20) return Error{fmt::format("rounds {}: expected 0 to 20", c.rounds)};
  if (c.tests < 1 || c.tests > 100) return Error{fmt::format("tests {}: expected 1 to 100", c.tests)};
  if (!(c.temperature >= 0 && c.temperature <= 2)) return Error{fmt::format("temperature {}: expected 0 to 2", c.temperature)};
  if (!(c.top_p > 0 && c.top_p <= 1)) return Error{fmt::format("top_p {}: expected more than 0, at most 1", c.top_p)};
  if (c.max_tokens < 1) return Error{fmt::format("max_tokens {}: expected at least 1", c.max_tokens)};
  if (!(c.timeout_s > 0)) return Error{fmt::format("timeout {}: expected more than 0 seconds", c.timeout_s)};
  return ok_status();
}

Result<CodeResult> generate(llm::Backend& model, sandbox::Sandbox& sb, const Problem& p, const CodeConfig& c) {
  if (auto v = validate(c); !v) return v.error();
  if (is_blank(p.description))
    return Error{"the task description is empty", std::string(llm::kInvalidRequest)};
  if ((c.method == "codet" || c.method == "roles") && p.task.kind != feedback::TaskKind::stdio && p.entry.empty())
    return Error{fmt::format("{} has the model write asserts of a function: the task needs an entry point "
                             "({})",
                             c.method, p.task.format != "description" ? "no test of this dataset task calls a function"
                                                    : "--entry NAME, or tests that call it"),
                 std::string(llm::kInvalidRequest)};
  // Examples read out of prose may not be Python, or not tests (parseable_asserts); a user's
  // --tests and the datasets' own tests are taken as they are.
  Problem q = p;
  if (p.task.format == "humaneval" || (p.task.format == "description" && p.task.test_list.empty()))
    q.visible = parseable_asserts(sb, p.visible, c.timeout_s, p.entry);
  CodeResult res;
  Runner run(model, sb, q, c, res);
  if (auto l = run.load(); !l) return l.error();
  auto pick = c.method == "sample"       ? run.sample()
              : c.method == "self-debug" ? run.self_debug()
              : c.method == "codet"      ? run.codet()
                                         : run.roles();
  if (!pick) return pick.error();
  if (run.rounds_cut_)
    res.how += fmt::format(" ({} chain(s) stopped early: a feedback prompt did not fit the model's context)", run.rounds_cut_);
  res.chosen_step = *pick;
  res.completion = res.steps[*pick].code;
  res.program = program_of(q, res.completion);
  // Every program on the hidden tests, for the record and CodeT's random-pick baseline; the
  // methods above never saw these verdicts.
  std::vector<int> coders;
  std::vector<std::string> completions;
  for (auto& s : res.steps)
    if (s.role == "coder") coders.push_back(s.index), completions.push_back(s.code);
  auto hidden = judge_hidden(sb, q, completions, c.timeout_s);
  for (std::size_t i = 0; i < hidden.size(); ++i) res.steps[coders[i]].hidden = std::move(hidden[i]);
  res.hidden = res.steps[*pick].hidden;
  if (c.method == "codet" && q.has_hidden) {
    int passed = 0, programs = 0;
    for (auto& s : res.steps)
      if (s.role == "coder") passed += s.hidden->passed, ++programs;
    res.random_pick_pass = static_cast<double>(passed) / programs;
  }
  return res;
}

Json to_json(const Step& s) {
  Json j = {{"index", s.index}, {"chain", s.chain},   {"round", s.round},        {"role", s.role},
            {"seed", s.seed},   {"prompt", s.prompt}, {"completion", s.completion}};
  if (s.role == "coder") j["code"] = s.code;
  if (s.role == "tester") j["asserts"] = s.asserts;
  if (s.visible) j["visible"] = s.visible->to_json();
  if (s.hidden) j["hidden"] = s.hidden->to_json();
  return j;
}

Json to_json(const CodeResult& r) {
  Json steps = Json::array();
  for (auto& s : r.steps) steps.push_back(to_json(s));
  Json j = {{"completion", r.completion}, {"program", r.program},     {"chosen_step", r.chosen_step},
            {"how", r.how},               {"finals", r.finals},       {"tests", r.tests},
            {"discarded", r.discarded},   {"prompt_hash", r.prompt_hash}, {"steps", steps}};
  j["agreement"] = r.agreement ? r.agreement->to_json() : Json(nullptr);
  j["hidden"] = r.hidden ? r.hidden->to_json() : Json(nullptr);
  j["random_pick_pass"] = r.random_pick_pass ? Json(*r.random_pick_pass) : Json(nullptr);
  return j;
}

}  // namespace wand::codegen

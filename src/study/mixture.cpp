#include "study/mixture.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <sstream>

#include <fmt/core.h>

#include "codegen/codegen.h"
#include "common/output.h"
#include "feedback/feedback.h"
#include "llm/gguf.h"
#include "llm/tokenizer.h"
#include "reason/bench.h"
#include "reason/reason.h"
#include "train/corpus.h"
#include "train/export.h"
#include "train/spawn.h"
#include "train/world.h"

namespace wand::study {
namespace fs = std::filesystem;
namespace {

// The probe items' seeds: fixed, so every model answers the same questions.
constexpr uint64_t kProbeSeed = 0x9e0be;

// --- metrics

// A rate (exact match, or the right answer out-scoring its distractors) with Wilson's interval.
struct Rate {
  std::string kind;
  long long k = 0, n = 0;
  void add(bool ok) { k += ok, ++n; }
  Json json() const {
    auto ci = reason::wilson_interval(static_cast<int>(k), static_cast<int>(n));
    return {{"kind", kind}, {"value", n ? double(k) / n : 0.0}, {"lo", ci.lo}, {"hi", ci.hi}, {"successes", k}, {"n", n}};
  }
};

// A mean log-probability with a normal 95% interval (n is large: 50 items or more).
struct Mean {
  double s = 0, ss = 0;
  long long n = 0;
  void add(double x) { s += x, ss += x * x, ++n; }
  Json json() const {
    double m = n ? s / n : 0, var = n > 1 ? std::max(0.0, (ss - n * m * m) / (n - 1)) : 0, h = 1.96 * std::sqrt(var / std::max(1LL, n));
    return {{"kind", "likelihood"}, {"value", m}, {"lo", m - h}, {"hi", m + h}, {"sum", s}, {"sumsq", ss}, {"n", n}};
  }
};

bool too_long(const Error& e) { return e.code == llm::kContextLengthExceeded; }

// log p(answer | prompt), summed over the tokens after the prompt (a token that straddles the
// boundary counts: it is the same for the right answer and its distractors), and their count.
struct Scored {
  double logprob = 0;
  int tokens = 0;
};
Result<Scored> score(llm::Backend& m, const std::string& prompt, const std::string& answer) {
  llm::GenerateOptions g;
  g.max_tokens = 0;
  g.echo = true;
  auto c = m.complete(prompt + answer, g);
  if (!c) return c.error();
  Scored s;
  std::size_t at = 0;
  for (auto& t : c->at(0).prompt_logprobs) {
    at += t.token.size();
    if (at > prompt.size() && t.logprob) s.logprob += *t.logprob, ++s.tokens;
  }
  if (s.tokens == 0) return Error{fmt::format("scoring '{}': no token after the prompt", answer)};
  return s;
}

// One cloze item: the right answer's log-probability, and whether it beats every distractor.
// nullopt when the item does not fit the model's context.
struct Cloze {
  double logprob = 0;
  bool best = false;
};
Result<std::optional<Cloze>> cloze(llm::Backend& m, const std::string& prompt, const std::string& right,
                                   const std::vector<std::string>& wrong) {
  auto r = score(m, prompt, right);
  if (!r) return too_long(r.error()) ? Result<std::optional<Cloze>>(std::nullopt) : r.error();
  Cloze c{r->logprob, true};
  for (auto& w : wrong) {
    auto s = score(m, prompt, w);
    if (!s) return too_long(s.error()) ? Result<std::optional<Cloze>>(std::nullopt) : s.error();
    if (s->logprob >= r->logprob) c.best = false;
  }
  return std::optional<Cloze>(c);
}

// A number as an answer cloze writes it: integral values without ".0".
std::string number_text(const std::string& s) {
  try {
    double v = std::stod(s);
    if (std::isfinite(v) && v == std::floor(v) && std::fabs(v) < 1e15) return fmt::format("{}", static_cast<long long>(v));
  } catch (...) {
  }
  return s;
}

// Wrong numbers for a word problem: the numbers its question gives (what a model that copies
// picks), then near misses of the answer; `k` distinct, none equal to the answer.
std::vector<std::string> number_distractors(const std::string& question, const std::string& answer, int k) {
  std::vector<std::string> out;
  auto add = [&](const std::string& v) {
    if (static_cast<int>(out.size()) < k && v != answer && std::find(out.begin(), out.end(), v) == out.end()) out.push_back(v);
  };
  for (std::size_t i = 0; i < question.size();) {
    if (!std::isdigit(static_cast<unsigned char>(question[i]))) {
      ++i;
      continue;
    }
    std::size_t j = i;
    while (j < question.size() && std::isdigit(static_cast<unsigned char>(question[j]))) ++j;
    add(question.substr(i, j - i));
    i = j;
  }
  long long a = 0;
  try {
    a = std::stoll(answer);
  } catch (...) {
  }
  for (long long d : {1LL, -1LL, 10LL, 2LL, -10LL, 100LL, 3LL, -2LL}) add(std::to_string(a + d));
  return out;
}

// Greedy CoT, extracted as `wand solve --method cot` does; false when it does not fit the context.
Result<bool> cot_right(llm::Backend& m, const std::string& question, const std::string& expected) {
  reason::SolveConfig c;
  c.method = "cot";
  c.family = "wand";
  c.max_tokens = 96;
  auto r = reason::solve(m, nullptr, question, c);
  if (!r) return too_long(r.error()) ? Result<bool>(false) : r.error();
  return r->answer && feedback::answers_match(*r->answer, expected);
}

// The reasoning probes of one question set: exact CoT, the answer cloze, and (with a rationale)
// the rationale's mean per-token log-probability.
struct Question {
  std::string question, answer, rationale;
};
Result<Json> reasoning_probe(llm::Backend& m, const std::vector<Question>& qs, int k) {
  Rate exact{"exact"}, rank{"likelihood"};
  Mean answer_lp, rationale_lp;
  long long skipped = 0;  // items whose cloze does not fit the context: left out of the likelihood scores
  for (auto& q : qs) {
    auto ok = cot_right(m, q.question, q.answer);
    if (!ok) return ok.error();
    exact.add(*ok);
    std::string prompt = reason::cot_prompt(q.question) + "The answer is";
    auto c = cloze(m, prompt, " " + q.answer, [&] {
      std::vector<std::string> w;
      for (auto& d : number_distractors(q.question, q.answer, k)) w.push_back(" " + d);
      return w;
    }());
    if (!c) return c.error();
    if (!*c) {
      ++skipped;
      continue;
    }
    rank.add((*c)->best);
    answer_lp.add((*c)->logprob);
    if (!q.rationale.empty()) {
      auto s = score(m, reason::cot_prompt(q.question), q.rationale);
      if (!s && !too_long(s.error())) return s.error();
      if (s) rationale_lp.add(s->logprob / s->tokens);
    }
  }
  Json j = {{"n", qs.size()}, {"too_long", skipped}, {"exact", exact.json()}, {"rank", rank.json()},
            {"answer_logprob", answer_lp.json()}};
  if (rationale_lp.n) j["rationale_logprob"] = rationale_lp.json();
  return j;
}

Result<Json> knowledge_probe(llm::Backend& m, const std::vector<train::WorldQuestion>& qs) {
  Rate exact{"exact"}, rank{"likelihood"};
  Mean lp;
  for (auto& q : qs) {
    llm::GenerateOptions g;
    g.max_tokens = 6;
    auto c = m.complete(q.prompt, g);
    if (!c) return c.error();
    // The answer, then the sentence's end or the next word: " 340 bridges" or " Tolven."
    const std::string& got = c->at(0).text;
    bool right = got.starts_with(q.answer) &&
                 (got.size() == q.answer.size() || !std::isalnum(static_cast<unsigned char>(got[q.answer.size()])));
    exact.add(right);
    auto cz = cloze(m, q.prompt, q.answer, q.distractors);
    if (!cz) return cz.error();
    if (!*cz) continue;
    rank.add((*cz)->best);
    lp.add((*cz)->logprob);
  }
  return Json{{"n", qs.size()}, {"exact", exact.json()}, {"rank", rank.json()}, {"answer_logprob", lp.json()}};
}

Result<Json> code_probe(llm::Backend& m, sandbox::Sandbox& sb, const std::vector<train::FunctionTask>& tasks) {
  Rate pass{"exact"};
  Mean lp;
  long long skipped = 0;
  codegen::CodeConfig c;
  c.method = "sample";
  c.family = "wand";
  c.k = 1;
  c.temperature = 0;
  c.max_tokens = 160;
  for (std::size_t i = 0; i < tasks.size(); ++i) {
    auto task = feedback::task_from_json(train::to_mbpp_json(tasks[i], static_cast<long long>(i)));
    if (!task) return task.error();
    auto r = codegen::generate(m, sb, codegen::problem_from_task(*task), c);
    if (!r && !too_long(r.error())) return r.error();
    pass.add(r && r->hidden && r->hidden->passed);
    auto s = score(m, train::function_prompt(tasks[i], 1), tasks[i].code);
    if (!s && !too_long(s.error())) return s.error();
    if (s) lp.add(s->logprob / s->tokens);
    skipped += !s;
  }
  return Json{{"n", tasks.size()}, {"too_long", skipped}, {"pass1", pass.json()}, {"code_logprob", lp.json()}};
}

// --- the runs

struct Run {
  std::string name, phase;  // phase: main, cooldown
  std::string cooldown;     // with-code, without-code ("" for main)
  double share = 0;
  int seed = 1;
  double units = 1;  // cost relative to a main run, for the time estimate
  std::string dir;
};

double balanced_share(const MixtureOptions& o) {
  double best = o.shares.front();
  for (double s : o.shares)
    if (std::fabs(s - 0.5) < std::fabs(best - 0.5)) best = s;
  return best;
}

std::string main_name(double share, int seed) { return fmt::format("code{:03}-seed{}", std::lround(share * 100), seed); }

std::vector<Run> plan(const MixtureOptions& o) {
  std::vector<Run> runs;
  double steps = o.steps;
  for (int seed = 1; seed <= o.seeds; ++seed) {  // seed by seed: a stopped study has whole curves
    for (double s : o.shares) {
      std::string name = main_name(s, seed);
      runs.push_back({name, "main", "", s, seed, 1.0, (fs::path(o.out_dir) / "points" / name).string()});
    }
    if (o.cooldown_steps > 0)
      for (std::string kind : {"with-code", "without-code"}) {
        std::string name = fmt::format("{}-seed{}", kind, seed);
        runs.push_back({name, "cooldown", kind, balanced_share(o), seed, o.cooldown_steps / steps,
                        (fs::path(o.out_dir) / "cooldown" / name).string()});
      }
  }
  return runs;
}

// Cool-down data: worked word problems and world prose (high quality: every document verified
// or true by construction), with or without function tasks.
std::vector<std::pair<std::string, double>> cooldown_mix(bool code) {
  if (code) return {{"cot", 0.35}, {"world", 0.35}, {"func", 0.3}};
  return {{"cot", 0.5}, {"world", 0.5}};
}

long long params(const MixtureOptions& o) {
  long long d = o.dim, kv = static_cast<long long>(o.dim) / o.heads * o.kv_heads;
  return 2LL * o.vocab * d + o.layers * (2 * d + 2 * d * d + 2 * d * kv + 3 * d * o.ffn) + d;
}

VoidResult write_json(const std::string& path, const Json& j) {
  auto target = rename_target(path);
  if (!target) return target.error();
  std::string tmp = *target + ".tmp";
  std::ofstream f(tmp, std::ios::trunc);
  f << j.dump(2) << "\n";
  if (auto w = flush_file(f, tmp); !w) return w.error();
  std::error_code ec;
  fs::rename(tmp, *target, ec);
  if (ec) return Error{fmt::format("{}: cannot write: {}", path, ec.message())};
  return ok_status();
}

Result<Json> read_json(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return parse_json(ss.str(), path);
}

// The last logged step of a trainer's log.jsonl that has an eval loss.
Json last_losses(const std::string& log) {
  std::ifstream f(log);
  Json last = nullptr;
  for (std::string line; std::getline(f, line);)
    if (auto j = parse_json(line, log); j && j->contains("eval_loss")) last = *j;
  if (last.is_null()) return nullptr;
  return {{"step", last["step"]}, {"loss", last["loss"]}, {"eval_loss", last["eval_loss"]}};
}

// Pools one metric over the seeds of a table row.
Json pool(const std::vector<Json>& metrics) {
  std::vector<double> values;
  for (auto& m : metrics) values.push_back(m["value"].get<double>());
  double mean = 0;
  for (double v : values) mean += v / values.size();
  Json out = {{"kind", metrics[0]["kind"]}, {"value", mean}, {"seeds", values}};
  if (metrics[0].contains("successes")) {
    long long k = 0, n = 0;
    for (auto& m : metrics) k += m["successes"].get<long long>(), n += m["n"].get<long long>();
    auto ci = reason::wilson_interval(static_cast<int>(k), static_cast<int>(n));
    out["lo"] = ci.lo, out["hi"] = ci.hi, out["n"] = n;
  } else {
    Mean p;
    for (auto& m : metrics) p.s += m["sum"].get<double>(), p.ss += m["sumsq"].get<double>(), p.n += m["n"].get<long long>();
    Json j = p.json();
    out["lo"] = j["lo"], out["hi"] = j["hi"], out["n"] = p.n;
  }
  return out;
}

Json table_of(const std::vector<Json>& results) {
  std::vector<std::string> order;
  std::map<std::string, std::vector<const Json*>> rows;
  for (auto& r : results) {
    std::string key = r["phase"] == "main" ? main_name(r["code_share"].get<double>(), 0) : r["cooldown"].get<std::string>();
    if (!rows.count(key)) order.push_back(key);
    rows[key].push_back(&r);
  }
  Json table = Json::array();
  for (auto& key : order) {
    auto& rs = rows[key];
    const Json& first = *rs[0];
    Json row = {{"phase", first["phase"]}, {"cooldown", first.value("cooldown", "")}, {"code_share", first["code_share"]},
                {"seeds", rs.size()}};
    double measured = 0, eval_loss = 0;
    int losses = 0;
    for (auto* r : rs) {
      measured += (*r)["measured_code_share"].get<double>() / rs.size();
      if (!(*r)["train"].is_null()) eval_loss += (*r)["train"]["eval_loss"].get<double>(), ++losses;
    }
    row["measured_code_share"] = measured;
    row["eval_loss"] = losses ? Json(eval_loss / losses) : Json(nullptr);
    Json probes = Json::object();
    for (auto& [probe, metrics] : first["probes"].items())
      for (auto& [metric, v] : metrics.items()) {
        if (!v.is_object()) continue;
        std::vector<Json> per_seed;
        for (auto* r : rs) per_seed.push_back((*r)["probes"][probe][metric]);
        probes[probe][metric] = pool(per_seed);
      }
    row["probes"] = probes;
    table.push_back(row);
  }
  return table;
}

}  // namespace

std::vector<std::pair<std::string, double>> mixture_of(double s) {
  std::vector<std::pair<std::string, double>> mix;
  for (auto& [part, w] : std::vector<std::pair<std::string, double>>{
           {"func", s / 2}, {"code", s / 2}, {"world", (1 - s) / 3}, {"cot", (1 - s) / 3}, {"text", (1 - s) / 3}})
    if (w > 1e-12) mix.emplace_back(part, w);
  return mix;
}

VoidResult validate(const MixtureOptions& o) {
  if (o.out_dir.empty()) return Error{"--out: no directory given"};
  if (o.shares.empty()) return Error{"--shares: no code shares given"};
  std::set<long> seen;
  for (double s : o.shares) {
    if (!(s >= 0 && s <= 1)) return Error{fmt::format("--shares: {} is not a percentage from 0 to 100", s * 100)};
    if (!seen.insert(std::lround(s * 100)).second)
      return Error{fmt::format("--shares: {}% is given twice", std::lround(s * 100))};
  }
  if (o.seeds < 1 || o.seeds > 100) return Error{fmt::format("--seeds must be from 1 to 100, got {}", o.seeds)};
  if (o.tokens < 1000) return Error{fmt::format("--tokens must be at least 1000, got {}", o.tokens)};
  if (o.steps < 1 || o.batch < 1 || o.warmup < 0 || o.cooldown_steps < 0 || o.cooldown_tokens < 1000)
    return Error{"--steps and --batch must be at least 1, --warmup and --cooldown-steps not negative, "
                 "--cooldown-tokens at least 1000"};
  if (o.dim % o.heads || o.heads % o.kv_heads || (o.dim / o.heads) % 2)
    return Error{fmt::format("--dim {} / --heads {} / --kv-heads {}: heads must divide dim into even head sizes, kv-heads divide heads",
                             o.dim, o.heads, o.kv_heads)};
  if (o.dtype != "fp32" && o.dtype != "bf16") return Error{fmt::format("--dtype: '{}' (expected fp32 or bf16)", o.dtype)};
  if (o.probe_items < 1 || o.distractors < 1) return Error{"--probe-items and --distractors must be at least 1"};
  if (o.trainer.empty() || ::access(o.trainer.c_str(), X_OK) != 0)
    return Error{fmt::format("--trainer '{}': not an executable wand-train (build it with libtorch-dev installed)", o.trainer)};
  if (!fs::is_regular_file(o.multiarith))
    return Error{fmt::format("--multiarith {}: no such file (MultiArith is the reasoning probe's real questions)", o.multiarith)};
  return ok_status();
}

// The items the probes ask, fixed by kProbeSeed: the same for every point of a study.
struct ProbeSets {
  std::vector<Question> templates, multiarith;
  std::vector<train::WorldQuestion> world;
  std::vector<train::FunctionTask> functions;
};
Result<ProbeSets> probe_sets(const ProbeOptions& o) {
  ProbeSets s;
  train::ProblemGenerator g(kProbeSeed);
  for (int i = 0; i < o.items; ++i) {
    auto p = g.next(train::TemplateSet::held_out);
    s.templates.push_back({p.question, p.answer, p.rationale});
  }
  auto ma = reason::load_bench_dataset(o.multiarith);
  if (!ma) return Error{fmt::format("--multiarith {}", ma.error().message)};
  for (std::size_t i = 0; i < ma->size() && static_cast<int>(i) < o.items; ++i)
    s.multiarith.push_back({(*ma)[i].question, number_text((*ma)[i].expected), ""});
  s.world = train::World().questions(o.distractors, kProbeSeed);
  std::shuffle(s.world.begin(), s.world.end(), std::mt19937_64(kProbeSeed));
  if (static_cast<int>(s.world.size()) > o.items) s.world.resize(o.items);
  train::FunctionTaskGenerator fg(kProbeSeed);
  for (int i = 0; i < o.items; ++i) s.functions.push_back(fg.next(train::TemplateSet::train));
  return s;
}

// The longest text the probes give a model (a prompt with what it scores after it), in tokens of
// `tok`, and which probe's it is. A model whose context is shorter skips those items.
std::pair<std::size_t, std::string> longest_probe_text(const llm::Tokenizer& tok, const ProbeSets& s, int distractors) {
  std::pair<std::size_t, std::string> longest{0, ""};
  auto see = [&](const std::string& text, const char* probe) {
    std::size_t n = tok.encode(text, tok.add_bos_default()).size();
    if (n > longest.first) longest = {n, probe};
  };
  for (auto [qs, probe] : {std::pair{&s.templates, "reasoning (templates)"}, std::pair{&s.multiarith, "reasoning (MultiArith)"}})
    for (auto& q : *qs) {
      see(reason::cot_prompt(q.question) + q.rationale, probe);
      for (auto& a : number_distractors(q.question, q.answer, distractors))
        see(reason::cot_prompt(q.question) + "The answer is " + a, probe);
      see(reason::cot_prompt(q.question) + "The answer is " + q.answer, probe);
    }
  for (auto& q : s.world) {
    see(q.prompt + q.answer, "knowledge");
    for (auto& d : q.distractors) see(q.prompt + d, "knowledge");
  }
  for (auto& t : s.functions) see(train::function_prompt(t, 1) + t.code, "code");
  return longest;
}

Result<Json> run_probes(llm::Backend& model, sandbox::Sandbox& sb, const ProbeOptions& o) {
  auto sets = probe_sets(o);
  if (!sets) return sets.error();
  auto& [templates, multiarith, world, functions] = *sets;
  Json out = Json::object();
  auto t = reasoning_probe(model, templates, o.distractors);
  if (!t) return t.error();
  out["reasoning_templates"] = *t;
  auto m = reasoning_probe(model, multiarith, o.distractors);
  if (!m) return m.error();
  out["multiarith"] = *m;
  auto k = knowledge_probe(model, world);
  if (!k) return k.error();
  out["knowledge"] = *k;
  auto c = code_probe(model, sb, functions);
  if (!c) return c.error();
  out["code"] = *c;
  return out;
}

// What makes one point of the study comparable with another: every option but which points
// (--shares) and how many seeds (--seeds), which a study may add to. OUT/options.json keeps them.
Json study_options(const MixtureOptions& o) {
  return {{"tokens", o.tokens},   {"vocab", o.vocab},   {"dim", o.dim},
          {"layers", o.layers},   {"heads", o.heads},   {"kv_heads", o.kv_heads},
          {"ffn", o.ffn},         {"seq", o.seq},       {"steps", o.steps},
          {"batch", o.batch},     {"warmup", o.warmup}, {"lr", o.lr},
          {"cooldown_steps", o.cooldown_steps}, {"cooldown_tokens", o.cooldown_tokens},
          {"cooldown_lr", o.cooldown_lr},       {"dtype", o.dtype}, {"probe_items", o.probe_items},
          {"distractors", o.distractors}};
}

Result<Json> run_mixture(const MixtureOptions& o, sandbox::Sandbox& sb, const ModelOpener& open_model,
                         const std::function<void(const std::string&)>& progress) {
  if (auto v = validate(o); !v) return v.error();
  auto say = [&](const std::string& s) {
    if (progress) progress(s);
  };
  std::error_code ec;
  fs::create_directories(o.out_dir, ec);
  if (ec) return Error{fmt::format("--out {}: cannot create: {}", o.out_dir, ec.message())};
  // A study run again resumes: its points must be trained and probed alike, so an option that
  // differs from the folder's is refused (more --shares or --seeds only add points).
  const std::string options_path = (fs::path(o.out_dir) / "options.json").string();
  const Json given = study_options(o);
  if (fs::exists(options_path)) {
    auto recorded = read_json(options_path);
    if (!recorded) return recorded.error();
    if (auto c = first_option_conflict(*recorded, given))
      return Error{fmt::format("{} {}: {} holds a study made with {} {} (give its options again, or a new --out)",
                               c->option, c->given, o.out_dir, c->option, c->recorded),
                   kOptionConflict};
  } else if (auto w = write_json(options_path, given); !w) {
    return w.error();
  }

  // One tokenizer for every corpus, trained on all five parts, so log-probabilities compare.
  std::string tok_dir = (fs::path(o.out_dir) / "tokenizer").string(), tokenizer = tok_dir + "/tokenizer.gguf";
  if (!fs::exists(tokenizer)) {
    say("training the shared tokenizer");
    train::CorpusOptions c;
    c.out_dir = tok_dir;
    c.mix = mixture_of(0.5);
    c.token_shares = true;
    c.tokens = 1000;
    c.vocab = o.vocab;
    c.held_out = 0;
    c.verify = 0;
    c.test_sets = o.test_sets;
    if (auto m = train::write_corpus(c); !m) return Error{"the shared tokenizer: " + m.error().message};
  }
  {  // every probe item must fit the models' context, or the probes would skip it: refused before any training
    auto f = llm::GgufFile::open(tokenizer);
    if (!f) return Error{"the shared tokenizer: " + f.error().message};
    auto tok = llm::Tokenizer::from_gguf(**f);
    if (!tok) return Error{"the shared tokenizer: " + tok.error().message};
    auto sets = probe_sets({.items = o.probe_items, .distractors = o.distractors, .multiarith = o.multiarith});
    if (!sets) return sets.error();
    auto [tokens, probe] = longest_probe_text(*tok, *sets, o.distractors);
    if (tokens > static_cast<std::size_t>(o.seq))
      return Error{fmt::format("--seq {}: the {} probe's longest item is {} tokens, longer than the models' context; "
                               "give --seq {} or more (or fewer --probe-items)", o.seq, probe, tokens, tokens),
                   kOptionConflict};
  }

  auto runs = plan(o);
  double units_total = 0, units_done = 0, seconds = 0;
  for (auto& r : runs) units_total += r.units;
  std::vector<Json> results;
  for (std::size_t i = 0; i < runs.size(); ++i) {
    const Run& r = runs[i];
    std::string result_path = r.dir + "/result.json";
    std::string tag = fmt::format("[{}/{}] {}", i + 1, runs.size(), r.name);
    if (fs::exists(result_path)) {
      auto j = read_json(result_path);
      if (!j) return j.error();
      results.push_back(*j);
      units_total -= r.units;
      say(tag + ": done before, skipped");
      continue;
    }
    auto t0 = std::chrono::steady_clock::now();
    fs::create_directories(r.dir, ec);
    bool cool = r.phase == "cooldown";
    // The corpus.
    std::string corpus = r.dir + "/corpus";
    if (!fs::exists(corpus + "/manifest.json")) {
      say(fmt::format("{}: corpus of {} tokens, {}", tag, cool ? o.cooldown_tokens : o.tokens,
                      cool ? r.cooldown : fmt::format("{}% code", std::lround(r.share * 100))));
      train::CorpusOptions c;
      c.out_dir = corpus;
      c.mix = cool ? cooldown_mix(r.cooldown == "with-code") : mixture_of(r.share);
      c.token_shares = true;
      c.tokens = cool ? o.cooldown_tokens : o.tokens;
      c.seed = static_cast<uint64_t>(r.seed) + (cool ? 1000 : 0);  // cool-down data is new data
      c.tokenizer = tokenizer;
      c.held_out = 0;
      c.verify = 0;  // the generators' programs and functions are verified by the train tests
      c.test_sets = o.test_sets;
      if (auto m = train::write_corpus(c); !m) return Error{fmt::format("{}: corpus: {}", r.name, m.error().message)};
    }
    auto manifest = read_json(corpus + "/manifest.json");
    if (!manifest) return manifest.error();
    double code_tokens = 0;
    for (auto& [part, n] : (*manifest)["part_tokens"].items())
      if (part == "func" || part == "code") code_tokens += n.get<double>();
    double measured = code_tokens / (*manifest)["tokens"].get<double>();

    // The model.
    std::string train_dir = r.dir + "/train";
    int steps = cool ? o.cooldown_steps : o.steps;
    std::vector<std::string> args = {o.trainer, "--data", corpus, "--out", train_dir, "--steps", std::to_string(steps),
                                     "--batch", std::to_string(o.batch), "--threads", std::to_string(o.threads),
                                     "--dtype", o.dtype, "--seed", std::to_string(r.seed), "--log-every", "10",
                                     "--eval-every", std::to_string(std::max(10, steps / 5)), "--save-every",
                                     std::to_string(std::max(10, steps / 5)), "--resume"};
    if (cool) {
      std::string from = (fs::path(o.out_dir) / "points" / main_name(r.share, r.seed) / "train" / "checkpoint.wckpt").string();
      if (!fs::exists(from)) return Error{fmt::format("{}: the balanced model {} is missing", r.name, from)};
      for (std::string a : {"--init", from.c_str(), "--warmup", "0", "--min-lr-ratio", "0"}) args.push_back(a);
      args.push_back("--lr"), args.push_back(fmt::format("{}", o.cooldown_lr));
    } else {
      for (auto& [flag, v] : std::vector<std::pair<std::string, int>>{{"--dim", o.dim}, {"--layers", o.layers},
                                                                      {"--heads", o.heads}, {"--kv-heads", o.kv_heads},
                                                                      {"--ffn", o.ffn}, {"--seq", o.seq},
                                                                      {"--warmup", o.warmup}})
        args.push_back(flag), args.push_back(std::to_string(v));
      args.push_back("--lr"), args.push_back(fmt::format("{}", o.lr));
    }
    say(fmt::format("{}: training {} steps (log: {}/train.log)", tag, steps, train_dir));
    fs::create_directories(train_dir, ec);
    if (auto t = train::run_trainer(args, train_dir + "/train.log"); !t) return Error{fmt::format("{}: {}", r.name, t.error().message)};

    train::ExportOptions x;
    x.checkpoint = train_dir + "/checkpoint.wckpt";
    x.tokenizer = tokenizer;
    x.out = r.dir + "/model.gguf";
    x.type = llm::TensorType::F32;  // tiny models: no quantisation noise in the probes
    x.prompt_format = "cot";
    x.name = "wand-mixture-" + r.name;
    if (auto e = train::export_model(x); !e) return Error{fmt::format("{}: export: {}", r.name, e.error().message)};
    say(fmt::format("{}: probes", tag));
    auto model = open_model(x.out);
    if (!model) return Error{fmt::format("{}: {}", r.name, model.error().message)};
    auto probes = run_probes(**model, sb, {.items = o.probe_items, .distractors = o.distractors, .multiarith = o.multiarith});
    if (!probes) return Error{fmt::format("{}: probes: {}", r.name, probes.error().message)};

    double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    Json result = {{"name", r.name},
                   {"phase", r.phase},
                   {"cooldown", r.cooldown},
                   {"code_share", r.share},
                   {"measured_code_share", measured},
                   {"seed", r.seed},
                   {"corpus_tokens", (*manifest)["tokens"]},
                   {"part_tokens", (*manifest)["part_tokens"]},
                   {"steps", steps},
                   {"tokens_seen", static_cast<long long>(steps) * o.batch * o.seq},
                   {"params", params(o)},
                   {"train", last_losses(train_dir + "/log.jsonl")},
                   {"probes", *probes},
                   {"seconds", took}};
    if (auto w = write_json(result_path, result); !w) return w.error();
    results.push_back(result);
    units_done += r.units, seconds += took;
    double left = (units_total - units_done) * seconds / std::max(units_done, 1e-9);
    say(fmt::format("{}: done in {:.0f} s; knowledge rank {:.2f}, templates rank {:.2f}, code log-prob {:.2f}; about {:.0f} min left",
                    tag, took, (*probes)["knowledge"]["rank"]["value"].get<double>(),
                    (*probes)["reasoning_templates"]["rank"]["value"].get<double>(),
                    (*probes)["code"]["code_logprob"]["value"].get<double>(), left / 60));
  }

  Json opts = study_options(o);
  opts["shares"] = o.shares, opts["seeds"] = o.seeds, opts["params"] = params(o);
  Json summary = {{"options", opts}, {"runs", results}, {"table", table_of(results)}};
  if (auto w = write_json((fs::path(o.out_dir) / "summary.json").string(), summary); !w) return w.error();
  std::string md_path = (fs::path(o.out_dir) / "summary.md").string();
  std::ofstream md(md_path, std::ios::trunc);
  md << markdown_table(summary);
  if (auto w = flush_file(md, md_path); !w) return w.error();
  return summary;
}

std::string markdown_table(const Json& summary) {
  // (probe, metric, column title); "lp" columns are log-probabilities, the rest rates.
  static const std::vector<std::tuple<std::string, std::string, std::string>> kColumns = {
      {"reasoning_templates", "exact", "CoT exact (templates)"},
      {"reasoning_templates", "rank", "answer rank (templates)"},
      {"reasoning_templates", "rationale_logprob", "rationale lp/token (templates)"},
      {"multiarith", "exact", "CoT exact (MultiArith)"},
      {"multiarith", "rank", "answer rank (MultiArith)"},
      {"knowledge", "exact", "knowledge exact"},
      {"knowledge", "rank", "knowledge rank"},
      {"knowledge", "answer_logprob", "knowledge answer lp"},
      {"code", "pass1", "code pass@1"},
      {"code", "code_logprob", "code lp/token"}};
  std::string out = "| run | code share (measured) | seeds |";
  std::string rule = "|---|---|---|";
  for (auto& [p, m, title] : kColumns) out += " " + title + " |", rule += "---|";
  out += " eval loss |\n" + rule + "---|\n";
  for (auto& row : summary["table"]) {
    std::string name = row["phase"] == "main" ? "main" : "cool-down " + row["cooldown"].get<std::string>();
    out += fmt::format("| {} | {:.0f}% ({:.1f}%) | {} |", name, row["code_share"].get<double>() * 100,
                       row["measured_code_share"].get<double>() * 100, row["seeds"].get<int>());
    for (auto& [p, m, title] : kColumns) {
      if (!row["probes"].contains(p) || !row["probes"][p].contains(m)) {
        out += " – |";
        continue;
      }
      const Json& v = row["probes"][p][m];
      double val = v["value"], h = std::max(val - v["lo"].get<double>(), v["hi"].get<double>() - val);
      out += fmt::format(" {:.3f} ±{:.3f} |", val, h);
    }
    out += row["eval_loss"].is_null() ? " – |\n" : fmt::format(" {:.3f} |\n", row["eval_loss"].get<double>());
  }
  return out;
}

}  // namespace wand::study

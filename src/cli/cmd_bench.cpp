// `wand bench`: a reasoning method's accuracy on an answer dataset (reason/bench.h does the
// work), --resume of an interrupted run, --compare of two runs, --report of stored runs.
#include <signal.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <optional>

#include <fmt/core.h>

#include "cli/agent_runs.h"
#include "cli/commands.h"
#include "cli/options.h"
#include "cli/solver.h"
#include "common/output.h"
#include "common/progress.h"
#include "common/text.h"
#include "feedback/evaluate.h"
#include "llm/grammar.h"
#include "reason/bench.h"
#include "store/store.h"

namespace wand::cli {
namespace {

struct BenchArgs {
  std::string dataset, problems, set = "numbers", model, method = "pot", prompt_file, prompt_style = "auto", constrain;
  std::string kv_cache = llm::BackendOptions{}.kv_cache;
  std::string out, html, store, resume, shard;
  std::vector<std::string> compare, report, merge;
  reason::SolveConfig config;
  std::optional<float> temperature;
  int limit = 0, parallel = 1, threads = 0;
  bool json = false, quiet = false, no_store = false, no_repair = false, no_fallback = false;
};

std::string pct(double v) { return fmt::format("{:.1f}%", 100 * v); }

std::string print_json(const Json& j) { return dump_text(j, 2) + "\n"; }

std::string summary_text(const store::RunInfo& info, const reason::BenchSummary& s) {
  std::string by;
  for (auto& [step, n] : s.answered_by) by += fmt::format("{}{} by {}", by.empty() ? ": " : ", ", n, step);
  return fmt::format(
      "{} k={} on {} ({} problems, {}), run {}\n"
      "  accuracy   {}  ({} of {}; 95% CI {:.1f}-{:.1f}%)\n"
      "  coverage   {}  ({} answered{})\n"
      "  tokens     {} prompt, {} completion\n"
      "  time       model {:.1f} s, sandbox {:.1f} s{}\n",
      info.config.method, info.config.options.value("k", Json(1)).dump(), info.config.dataset, s.problems,
      info.config.model_id, info.id.empty() ? "not stored" : info.id, pct(s.accuracy), s.correct, s.problems,
      100 * s.ci.lo, 100 * s.ci.hi, pct(s.coverage), s.answered, by, s.prompt_tokens, s.completion_tokens,
      s.generate_s, s.execute_s, s.verify_s > 0 ? fmt::format(", verifier {:.1f} s", s.verify_s) : "");
}

VoidResult write_text(const std::string& path, const std::string& text, const char* option) {
  std::ofstream f(path, std::ios::trunc);
  if (!f) return Error{fmt::format("{} {}: cannot write", option, path)};
  f << text;
  if (auto w = flush_file(f, path); !w) return Error{fmt::format("{} {}", option, w.error().message)};
  return ok_status();
}

Result<std::unique_ptr<store::Store>> open_store(const BenchArgs& a, bool create) {
  std::string path = a.store.empty() ? store::default_store_path() : a.store;
  auto s = store::Store::open(path, create);
  if (!s) return Error{store_error(a.store, s.error().message)};
  return std::move(*s);
}

Result<std::vector<store::Run>> stored_runs(store::Store& db, const std::vector<std::string>& ids) {
  std::vector<store::Run> runs;
  for (auto& given : ids) {
    auto id = db.resolve_id(given);
    if (!id) return id.error();
    auto run = db.get_run(*id);
    if (!run) return run.error();
    if (run->info.config.kind != "bench")
      return Error{fmt::format("run {} is a {} run, not a bench run", *id, run->info.config.kind)};
    runs.push_back(std::move(*run));
  }
  return runs;
}

// --compare A B and --report RUN...: read the store, print, write --html.
int show_stored(const BenchArgs& a) {
  auto db = open_store(a, false);
  if (!db) {
    fmt::print(stderr, "wand bench: {}\n", db.error().message);
    return kExitBadInput;
  }
  auto runs = stored_runs(**db, a.compare.empty() ? a.report : a.compare);
  if (!runs) {
    fmt::print(stderr, "wand bench: {}\n", runs.error().message);
    return kExitBadInput;
  }
  if (!a.compare.empty()) {
    auto c = reason::compare_runs((*runs)[0], (*runs)[1]);
    if (!c) {
      fmt::print(stderr, "wand bench: --compare: {}\n", c.error().message);
      return kExitBadInput;
    }
    if (a.json) {
      fmt::print("{}", print_json(c->to_json()));
    } else {
      for (auto* r : {&c->a, &c->b})
        fmt::print("{} {} {} k={} ({}): {} of {} common problems right\n", r == &c->a ? "A" : "B", r->id, r->config.method,
                   r->config.options.value("k", Json(1)).dump(), r->config.model_id,
                   r == &c->a ? c->correct_a : c->correct_b, c->common);
      int both = c->correct_a - c->test.only_a;
      fmt::print("both right {}, only A {}, only B {}, both wrong {}\n", both, c->test.only_a, c->test.only_b,
                 c->common - both - c->test.only_a - c->test.only_b);
      if (c->test.test == "none")
        fmt::print("McNemar: no discordant problems; the runs do not differ\n");
      else
        fmt::print("McNemar ({}): statistic {:.3g}, p = {:.4g}\n", c->test.test, c->test.statistic, c->test.p_value);
      for (auto& d : c->differing)
        fmt::print("  #{} expected {}: A {} ({}), B {} ({})  {}\n", d.index + 1, printable(d.expected, 40),
                   printable(d.answer_a.value_or("-"), 40), d.correct_a ? "right" : "wrong",
                   printable(d.answer_b.value_or("-"), 40), d.correct_b ? "right" : "wrong", printable(d.question, 80));
    }
  } else if (a.json) {
    Json all = Json::array();
    for (auto& r : *runs) all.push_back({{"run", store::to_json(r.info)}, {"summary", reason::summarize(r.problems).to_json()}});
    fmt::print("{}", print_json(all));
  } else {
    for (auto& r : *runs) fmt::print("{}", summary_text(r.info, reason::summarize(r.problems)));
  }
  if (!a.html.empty())
    if (auto w = write_text(a.html, reason::html_report(*runs), "--html"); !w) {
      fmt::print(stderr, "wand bench: {}\n", w.error().message);
      return kExitOutput;
    }
  return kExitOk;
}

// --merge SHARD...: one run's summary, --out lines and --html page from its shard files.
int merge_bench(const BenchArgs& a) {
  auto fail = [](const std::string& msg, int rc = kExitBadInput) {
    fmt::print(stderr, "wand bench: {}\n", msg);
    return rc;
  };
  auto m = reason::merge_bench_shards(a.merge);
  if (!m) return fail(m.error().message);
  auto summary = reason::summarize(m->run.problems);
  if (!a.out.empty()) {
    std::string lines;
    for (auto& l : m->lines) lines += dump_text(l) + "\n";
    if (auto w = write_text(a.out, lines, "--out"); !w) return fail(w.error().message, kExitOutput);
  }
  if (!a.html.empty())
    if (auto w = write_text(a.html, reason::html_report(std::span(&m->run, 1)), "--html"); !w)
      return fail(w.error().message, kExitOutput);
  if (a.json) {
    Json sj = summary.to_json();
    const auto& c = m->run.info.config;
    sj["model_id"] = c.model_id, sj["method"] = c.method, sj["dataset"] = c.dataset;
    sj["shards"] = a.merge.size();
    fmt::print("{}", print_json(sj));
  } else {
    fmt::print("{}", summary_text(m->run.info, summary));
  }
  return kExitOk;
}

}  // namespace

Command add_bench(CLI::App& app) {
  auto* cmd = app.add_subcommand("bench", "Score a reasoning method on an answer dataset; resume, compare and report runs");
  auto a = std::make_shared<BenchArgs>();
  auto& c = a->config;
  auto* dataset = cmd->add_option("dataset", a->dataset,
                                  "An answer dataset (GSM8K, PAL's math sets, SVAMP.json, {question, answer}), or synthetic "
                                  "(the shipped model's held-out sets, --set)");
  auto* problems = cmd->add_option("--problems", a->problems, "The dataset file (for `wand bench synthetic --problems FILE`)");
  auto* set = cmd->add_option("--set", a->set, "synthetic: numbers (training templates, new numbers) or templates (unseen)")
                  ->check(CLI::IsMember({"numbers", "templates"}))
                  ->capture_default_str();
  auto* model = cmd->add_option("-m,--model", a->model, "local:PATH.gguf or openai:URL/MODEL (default: as wand solve's: $WAND_MODEL, else the shipped "
                                 "wand-pot-delex for pot, wand-cot for cot and wand-pot for pal and flow)");
  auto* method = cmd->add_option("--method", a->method, "pot, pal, flow (programs, executed) or cot (prose)")
                     ->check(CLI::IsMember({"pot", "pal", "flow", "cot"}))
                     ->capture_default_str();
  auto* k = cmd->add_option("--k", c.k, "Samples per problem that vote on their executed answers")
                ->check(number({.lo = 1, .hi = 64, .integer = true}))
                ->capture_default_str();
  auto* kv_cache = add_kv_cache_option(cmd, a->kv_cache);
  auto* threads = add_threads_option(cmd, a->threads);
  auto* temperature = cmd->add_option("--temperature", a->temperature, "Sampling temperature (default: 0 for --k 1, else 0.7)")
                          ->check(number(kTemperature));
  auto* top_p = cmd->add_option("--top-p", c.top_p, "Nucleus sampling")
                    ->check(number({.lo = 0, .hi = 1, .lo_open = true}))
                    ->capture_default_str();
  auto* seed = cmd->add_option("--seed", c.seed, "Sampling seed (default: a random one, recorded)")->check(number(kSeed));
  auto* max_tokens = cmd->add_option("--max-tokens", c.max_tokens, "Tokens per completion")
                         ->check(number({.lo = 1, .hi = 1 << 20, .integer = true}))
                         ->capture_default_str();
  auto* timeout = cmd->add_option("--timeout", c.timeout_s, "Seconds per program run")->check(number(kSeconds))->capture_default_str();
  auto* flow_calls = cmd->add_option("--flow-calls", c.flow_calls, "flow: llm() calls each program may make (as wand solve)")
                         ->check(number({.lo = 1, .hi = 64, .integer = true}))
                         ->capture_default_str();
  auto* flow_tokens = cmd->add_option("--flow-tokens", c.flow_tokens, "flow: tokens each llm() call may generate")
                          ->check(number({.lo = 1, .hi = 4096, .integer = true}))
                          ->capture_default_str();
  auto* weighted = cmd->add_flag("--weighted", c.weighted, "Weigh each vote by the sample's mean token probability");
  auto* select = cmd->add_option("--select", c.select,
                                 "How the answer is chosen among the --k samples: vote, logprob or verifier (as wand solve)")
                     ->check(CLI::IsMember({"vote", "logprob", "verifier"}))
                     ->capture_default_str();
  auto* verifier = cmd->add_option("--verifier", c.verifier_spec,
                                   "With --select verifier: the outcome verifier (default: the shipped wand-verify; as wand solve)");
  auto* plausible = cmd->add_flag("--plausible", c.plausible,
                                  "Set aside answers a word problem cannot have before the choice (as wand solve)");
  auto* shuffle_names = cmd->add_flag("--shuffle-names", c.shuffle_names,
                                      "A pot-numbers model with --k > 1: each sample reads the question's number names in an "
                                      "order of its own (as wand solve)");
  auto* no_repair = cmd->add_flag("--no-repair", a->no_repair, "No self-debug round when no sample answers");
  auto* no_fallback = cmd->add_flag("--no-fallback", a->no_fallback, "No chain-of-thought fallback (a pot-numbers model never has one: it writes no prose)");
  auto* prompt = cmd->add_option("--prompt", a->prompt_file, "Your own prompt template (src/reason/prompt.h)")->check(CLI::ExistingFile);
  auto* style = cmd->add_option("--prompt-style", a->prompt_style, "auto, wand, chat or completion (as for wand solve)")
                    ->check(CLI::IsMember({"auto", "wand", "chat", "completion"}))
                    ->capture_default_str();
  auto* constrain = cmd->add_option("--constrain", a->constrain,
                                    "Decode the programs inside a GBNF grammar: pot, python-block, or a .gbnf file (as wand solve)");
  auto* limit = cmd->add_option("--limit", a->limit, "Only the first N problems")->check(number({.lo = 1, .hi = 1e9, .integer = true}));
  auto* par = cmd->add_option("--parallel", a->parallel,
                  "Problems solved at once (for a server that serves requests concurrently; the answers do not change)")
      ->check(parallel(false))
      ->capture_default_str();
  auto* shard = cmd->add_option("--shard", a->shard,
                                 "I/N: solve only the problems whose index is I modulo N, writing a shard file to --out "
                                 "(needs --seed; README: Batch jobs on a cluster)");
  auto* out = cmd->add_option("--out", a->out, "Write each problem's result as JSON lines here")->check(writable_file());
  cmd->add_option("--html", a->html, "Write a report page: accuracy chart, failing problems with programs and outputs")
      ->check(writable_file());
  cmd->add_flag("--json", a->json, "Print the summary (or the comparison) as JSON");
  cmd->add_flag("-q,--quiet", a->quiet, "No progress on stderr");
  auto* store_opt = add_store_option(cmd, a->store);
  auto* no_store = cmd->add_flag("--no-store", a->no_store, "Do not record the run (it cannot be resumed)")->excludes(store_opt);
  auto* resume = cmd->add_option("--resume", a->resume, "Finish an interrupted run (its options; any given must match)")
                     ->excludes(no_store);
  auto* compare = cmd->add_option("--compare", a->compare, "RUN_A RUN_B: per-problem differences and McNemar's test")
                      ->expected(2)
                      ->excludes(resume, no_store);
  auto* report = cmd->add_option("--report", a->report, "RUN...: summaries of stored runs (with --html, one page of them)")
                     ->expected(1, 1000)
                     ->excludes(resume, compare, no_store);
  cmd->add_option("--merge", a->merge, "SHARD...: one run's summary (--out, --html) from the files of wand bench --shard")
      ->expected(1, 100000)
      ->excludes(resume, compare, report, store_opt, no_store);
  // The options of a run, which --compare and --report (reading stored runs) do not take.
  std::vector<CLI::Option*> run_options = {dataset, problems, set, model, method, k, temperature, top_p, seed,
                                           max_tokens, timeout, weighted, no_repair, no_fallback, prompt, style, constrain, limit, par, out,
                                           flow_calls, flow_tokens, shard, shuffle_names, kv_cache, threads, select, plausible, verifier};
  // --env: an agent environment's task set instead of a dataset (cli/agent_runs.h, as wand agent --env).
  auto agent = std::make_shared<AgentArgs>();
  auto* env = cmd->add_option("--env", agent->env, "An agent environment's task set (kitchen, data, shop): success rate, "
                                                   "steps, tool calls, tokens and time per task (as wand agent --env)");
  auto* split = cmd->add_option("--split", agent->split, "With --env: train or held-out")
                    ->check(CLI::IsMember({"train", "held-out"}))->capture_default_str()->needs(env);
  auto* max_steps = cmd->add_option("--max-steps", agent->config.max_steps, "With --env: actions per task")
                        ->check(number({.lo = 1, .hi = 1000, .integer = true}))->capture_default_str()->needs(env);
  auto* plan = cmd->add_flag("--plan", agent->config.plan, "With --env: plan first, re-plan on failures")->needs(env);
  auto* skills = cmd->add_option("--skills", agent->skills, "With --env: on or off (the skill library)")
                     ->check(CLI::IsMember({"on", "off"}))->capture_default_str()->needs(env);
  (void)split, (void)max_steps, (void)plan, (void)skills;
  env->excludes("--merge")->excludes("--compare")->excludes("--report");

  return [=] {
    for (auto same : {same_output_file("--out", a->out, "--html", a->html), output_is_an_input("--merge", a->merge, a->out, a->html),
                      output_is_an_input("the dataset", {a->dataset}, a->out, a->html),
                      output_is_the_store(a->store, a->out, a->html)})
      if (!same.empty()) {
        fmt::print(stderr, "wand bench: {}\n", same);
        return kExitBadInput;
      }
    if (env->count()) {
      for (auto* o : {dataset, problems, set, method, k, top_p, max_tokens, weighted, no_repair, no_fallback, prompt, style,
                      constrain, par, out, flow_calls, flow_tokens, resume, shard, shuffle_names, kv_cache, threads, timeout,
                      select, plausible, verifier})
        if (o->count()) {
          fmt::print(stderr, "wand bench: {}: not an option of --env (agent task sets)\n", o->get_name());
          return kExitBadInput;
        }
      agent->model = a->model;
      agent->limit = a->limit;
      agent->json = a->json;
      agent->quiet = a->quiet;
      agent->store = a->store;
      agent->no_store = a->no_store;
      agent->config.temperature = a->temperature.value_or(0.f);
      agent->config.seed = a->config.seed;
      agent->show_steps = false;
      return run_agents(*agent, "bench");
    }
    if (!a->merge.empty()) {
      for (auto* o : run_options)
        if (o->count() && o != out) {
          fmt::print(stderr, "wand bench: {}: not an option of --merge, which reads the shards' recorded options\n",
                     o->get_name());
          return kExitBadInput;
        }
      return merge_bench(*a);
    }
    if (!a->compare.empty() || !a->report.empty()) {
      for (auto* o : run_options)
        if (o->count()) {
          fmt::print(stderr, "wand bench: {}: not an option of {}, which reads stored runs\n", o->get_name(),
                     a->compare.empty() ? "--report" : "--compare");
          return kExitBadInput;
        }
      return show_stored(*a);
    }
    auto fail = [](const std::string& msg, int rc = kExitBadInput) {
      fmt::print(stderr, "wand bench: {}\n", msg);
      return rc;
    };
    // The dataset: a file, `synthetic` (with --set), or `synthetic --problems FILE` (the older form).
    std::string path = a->dataset;
    if (set->count() && (problems->count() || (!path.empty() && path != "synthetic")))
      return fail("--set: chooses among the synthetic sets; this run's dataset is a file");
    if (problems->count()) {
      if (!path.empty() && path != "synthetic") return fail("give the dataset once: DATASET or --problems, not both");
      path = a->problems;
    } else if (path == "synthetic" || (path.empty() && set->count())) {
      path = models_dir() + "/heldout-" + a->set + ".jsonl";
    } else if (path.empty() && a->resume.empty()) {
      return fail("a DATASET is needed: a JSONL file, or synthetic (wand bench --help)");
    }
    if (!path.empty()) path = std::filesystem::absolute(path).lexically_normal().string();

    // The run's configuration from the command line; a resume takes the stored one, and any
    // option given must agree with it.
    reason::BenchConfig bc;
    bc.dataset = path;
    bc.model_spec = model_for(a->method, a->model);
    bc.kv_cache = a->kv_cache;
    bc.prompt_style = a->prompt_style;
    bc.prompt_file = a->prompt_file.empty() ? "" : std::filesystem::absolute(a->prompt_file).lexically_normal().string();
    bc.limit = a->limit;
    if (!a->shard.empty()) {
      auto sh = feedback::parse_shard(a->shard);
      if (!sh) return fail(sh.error().message);
      // Every shard must sample as one run would: the same seed, given rather than drawn per machine.
      if (!seed->count() && a->resume.empty()) return fail(fmt::format("--shard {} needs --seed: every shard must use the same one", a->shard));
      bc.shard = *sh;
    }
    bc.solve = a->config;  // not `c`: [=] copied it before the command line was parsed
    bc.solve.constrain = a->constrain;
    bc.solve.method = a->method;
    bc.solve.temperature = a->temperature.value_or(bc.solve.k > 1 ? 0.7f : 0.f);
    bc.solve.repair = !a->no_repair, bc.solve.fallback = !a->no_fallback;
    if (a->resume.empty())  // a resumed run takes its recorded options
      for (const auto& idle : reason::idle_options(bc.solve)) fmt::print(stderr, "wand bench: warning: {}\n", idle);
    std::unique_ptr<store::Store> db;
    if (!a->no_store) {
      auto s = open_store(*a, a->resume.empty());
      if (!s) return fail(s.error().message);
      db = std::move(*s);
    }
    std::string run_id;
    std::optional<store::RunInfo> resumed;
    if (!a->resume.empty()) {
      auto id = db->resolve_id(a->resume);
      if (!id) return fail("--resume: " + id.error().message);
      auto info = db->get_run_info(*id);
      if (!info) return fail("--resume: " + info.error().message);
      if (info->config.kind != "bench") return fail(fmt::format("--resume: run {} is a {} run, not a bench run", *id, info->config.kind));
      Json given = reason::bench_options(bc), explicit_options = Json::object();
      std::vector<std::pair<std::string, CLI::Option*>> flags = {
          {"model", model}, {"method", method}, {"k", k}, {"temperature", temperature}, {"top-p", top_p},
          {"seed", seed}, {"max-tokens", max_tokens}, {"timeout", timeout}, {"weighted", weighted},
          {"no-repair", no_repair}, {"no-fallback", no_fallback}, {"prompt", prompt}, {"prompt-style", style},
          {"constrain", constrain}, {"limit", limit}, {"flow-calls", flow_calls}, {"flow-tokens", flow_tokens},
          {"shard", shard}, {"shuffle-names", shuffle_names}, {"kv-cache", kv_cache}, {"select", select},
          {"plausible", plausible}, {"verifier", verifier}};
      if (!path.empty()) explicit_options["dataset"] = given["dataset"];
      for (auto& [key, opt] : flags)
        if (opt->count()) explicit_options[key] = given[key];
      // --model defaults by method: a resume that names only --method compares the model it implies.
      if (method->count() && !model->count()) explicit_options.erase("model");
      const Json& extra = info->config.extra;
      auto merged = reason::resume_options(extra.is_object() ? extra.value("bench", Json()) : Json(), explicit_options, *id);
      if (!merged) return fail(merged.error().message);
      auto restored = reason::bench_config_from(*merged);
      if (!restored) return fail(fmt::format("--resume {}: {}", *id, restored.error().message));
      bc = *restored;
      run_id = *id;
      resumed = *info;
      // The files the run was to write are written by the resume that finishes it, unless named anew.
      if (extra.is_object() && extra.contains("outputs")) {
        if (a->out.empty()) a->out = extra["outputs"].value("out", "");
        if (a->html.empty()) a->html = extra["outputs"].value("html", "");
      }
    } else if (!seed->count()) {
      bc.solve.seed = llm::random_seed();
    }

    // A shard (given, or of a resumed run) writes its shard file at the end.
    bool sharded = !a->shard.empty() || bc.shard.count > 1;
    if (sharded && a->out.empty())
      return fail(fmt::format("--shard {} needs --out FILE: the shard file that --merge reads", bc.shard.str()));
    if (auto e = flow_option_misplaced(bc.solve.method, {flow_calls, flow_tokens}); !e.empty()) return fail(e);
    if (!bc.solve.constrain.empty()) {  // checked before the model loads
      auto g = llm::Grammar::load(bc.solve.constrain);
      if (!g) return fail("--constrain: " + g.error().message);
      bc.solve.grammar = *g;
    }
    if (!bc.prompt_file.empty()) {
      auto t = reason::load_template(bc.prompt_file);
      if (!t) return fail("--prompt " + t.error().message);
      bc.solve.prompt = std::move(*t);
    }
    auto loaded = reason::load_bench_dataset(bc.dataset);
    if (!loaded) return fail(loaded.error().message);
    auto sha = feedback::file_sha256(bc.dataset);
    if (!sha) return fail(sha.error().message);
    std::vector<reason::BenchProblem> set_problems = std::move(*loaded);
    if (bc.limit > 0 && set_problems.size() > std::size_t(bc.limit)) set_problems.resize(bc.limit);
    int problems_total = static_cast<int>(set_problems.size());  // of all shards together
    std::erase_if(set_problems, [&](const reason::BenchProblem& p) { return !bc.shard.holds(static_cast<std::size_t>(p.index)); });
    int total = static_cast<int>(set_problems.size());

    int rc = kExitOk;
    llm::BackendOptions engine;
    engine.kv_cache = bc.kv_cache;
    engine.threads = a->threads;
    auto solver = open_solver(bc.solve.method, bc.model_spec, rc, "bench", a->parallel, engine);
    if (!solver) {
      fmt::print(stderr, "{}\n", solver.error().message);
      return rc;
    }
    if (auto v = open_verifier(bc.solve, engine); !v) return fail(v.error().message);
    auto& backend = *solver->model;
    auto family = reason::prompt_family(backend, bc.prompt_style);  // a remote wand serve says what it is
    if (!family) return fail("--prompt-style: " + family.error().message);
    bc.solve.family = *family;
    if (auto v = reason::validate(bc.solve); !v) return fail(v.error().message);
    if (auto f = reason::fits_model(backend, bc.solve); !f) return fail(f.error().message);
    auto tpl = bc.solve.prompt ? Result<reason::Template>(*bc.solve.prompt) : reason::builtin_template(bc.solve.method, *family);
    if (!tpl) return fail(tpl.error().message);

    std::vector<store::ProblemRecord> done;
    if (resumed) {
      if (auto ok = reason::check_resumable(*resumed, *sha, *tpl); !ok) return fail("--resume: " + ok.error().message);
      auto taken = db->resume_run(run_id);
      if (!taken) return fail("--resume: " + taken.error().message);
      auto run = db->get_run(run_id);
      if (!run) return fail("--resume: " + run.error().message);
      done = std::move(run->problems);
    }

    store::RunInfo info;
    info.config = reason::bench_run_config(bc, backend.id(), tpl->hash, *sha, total);
    {
      std::error_code ec;  // absolute: a resume may run from another folder
      auto absolute = [&](const std::string& p) { return p.empty() ? p : std::filesystem::absolute(p, ec).string(); };
      info.config.extra["outputs"] = {{"out", absolute(a->out)}, {"html", absolute(a->html)}};
    }
    if (db && !resumed) {
      auto id = db->create_run(info.config);
      if (!id) return fail(fmt::format("recording the run in {}: {}", db->path(), id.error().message), kExitOutput);
      run_id = *id;
    }
    info.id = run_id;
    if (bc.solve.temperature > 0 && !a->quiet) fmt::print(stderr, "[seed {}]\n", bc.solve.seed);

    std::atomic<bool>& stop = catch_stop_signals();
    Progress progress("problems", total - done.size(), !a->quiet, true);
    auto t0 = std::chrono::steady_clock::now();
    auto run = reason::run_bench(
        backend, solver->sb.get(), set_problems, bc.solve, std::move(done), db.get(), run_id,
        [&](const reason::BenchProgress& p) {
          progress.note("accuracy " + pct(double(p.correct) / p.done));
          progress.tick();
        },
        &stop, a->parallel);
    progress.finish();
    double wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    auto how_to_resume = [&] {
      if (!db) return std::string();
      // db->path() is the URI without its password: a hint may end up in a shared log.
      std::string store = a->store.empty() ? "" : " --store '" + db->path() + "'";  // quoted: a URI holds & and ?
      std::string password = !a->store.empty() && db->path() != a->store ? " (with the password in place of ***)" : "";
      std::string outputs = a->out.empty() && a->html.empty() ? "" : ", which writes --out and --html";
      auto n = db->finished_problems(run_id);
      if (!n)  // the store itself failed (a database gone): what it holds is not known here
        return fmt::format("; the problems finished are recorded in run {} (the store cannot be read now: {}): finish it "
                           "with `wand bench --resume {}{}`{}{}",
                           run_id, n.error().message, run_id, store, password, outputs);
      return fmt::format("; {} of {} problems are recorded in run {}: finish it with `wand bench --resume {}{}`{}{}",
                         n->size(), total, run_id, run_id, store, password, outputs);
    };
    if (!run || run->stopped) {
      if (db) (void)db->interrupt_run(run_id);
      if (!run) return fail(run.error().message + how_to_resume(), model_error_exit_code(run.error()));
      return fail("interrupted" + how_to_resume(), kExitInterrupted);
    }
    auto summary = reason::summarize(run->problems);
    Json sj = summary.to_json();
    if (db)
      if (auto w = db->finish_run(run_id, sj); !w)
        return fail(fmt::format("recording the run in {}: {}", db->path(), w.error().message), kExitOutput);
    info.status = "finished";
    if (sharded) {
      if (auto w = reason::write_bench_shard(a->out, bc, info, problems_total, run->problems, wall_s); !w)
        return fail("--out " + w.error().message, kExitOutput);
    } else if (!a->out.empty()) {
      std::string lines;
      for (auto& p : run->problems) lines += dump_text(reason::problem_line(p)) + "\n";
      if (auto w = write_text(a->out, lines, "--out"); !w) return fail(w.error().message, kExitOutput);
    }
    if (!a->html.empty()) {
      std::vector<store::Run> runs = {{info, run->problems}};
      if (auto w = write_text(a->html, reason::html_report(runs), "--html"); !w) return fail(w.error().message, kExitOutput);
    }
    if (a->json) {
      sj["run_id"] = run_id.empty() ? Json(nullptr) : Json(run_id);
      sj["model"] = bc.model_spec;
      sj["model_id"] = backend.id();
      sj["method"] = bc.solve.method;
      sj["k"] = bc.solve.k;
      sj["dataset"] = bc.dataset;
      sj["seed"] = bc.solve.seed;
      sj["wall_s"] = wall_s;
      fmt::print("{}", print_json(sj));
    } else {
      fmt::print("{}", summary_text(info, summary));
    }
    return kExitOk;
  };
}

}  // namespace wand::cli

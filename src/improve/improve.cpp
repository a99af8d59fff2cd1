#include "improve/improve.h"

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <filesystem>
#include <map>
#include <fstream>
#include <random>
#include <set>
#include <sstream>

#include <fmt/core.h>

#include "codegen/codegen.h"
#include "codegen/export.h"
#include "common/output.h"
#include "feedback/evaluate.h"
#include "feedback/feedback.h"
#include "improve/pool.h"
#include "llm/gguf.h"
#include "reason/bench.h"
#include "reason/numbers.h"
#include "reason/prompt.h"
#include "train/corpus.h"
#include "train/export.h"
#include "train/spawn.h"

namespace wand::improve {
namespace fs = std::filesystem;
namespace {

std::string round_dir(const ImproveOptions& o, int r) { return (fs::path(o.out_dir) / fmt::format("round-{}", r)).string(); }
std::string state_path(const ImproveOptions& o) { return (fs::path(o.out_dir) / "state.json").string(); }
std::string validation_path(const ImproveOptions& o) {
  return o.validation > 0 ? (fs::path(o.out_dir) / "validation.jsonl").string() : std::string();
}
// Where round r's weights are: round 0's imported from the GGUF, later ones wand-train's.
std::string checkpoint_of(const ImproveOptions& o, int r) {
  return r == 0 ? round_dir(o, 0) + "/init.wckpt" : round_dir(o, r) + "/train/checkpoint.wckpt";
}

VoidResult write_text(const std::string& path, const std::string& text) {
  std::ofstream f(path, std::ios::trunc);
  if (!f) return Error{fmt::format("{}: cannot write", path)};
  f << text;
  return flush_file(f, path);
}

// A wand model's prompt format (wand.prompt_format; its metadata only, the weights are not read).
Result<std::string> prompt_format_of(const std::string& gguf) {
  auto file = llm::GgufFile::open(gguf);
  if (!file) return file.error();
  auto format = file->get()->get_string("wand.prompt_format");
  return format ? *format : std::string("unreadable");
}

// Replay: `n` documents of the data the starting model was trained on, in its prompt format.
// pot: the 16 original templates (the shipped wand-pot's data). pot-numbers: the templates and the
// grammar's training productions about 1:5, as `wand corpus --number-names` mixed them (its GSM8K
// part is not replayed: that needs the train split's file), each mapped (reason/numbers.h) and
// kept only when bindings + the named program gives its answer in the sandbox (train::name_numbers).
Result<std::vector<std::string>> pot_replay(long long n, uint64_t seed, bool mapped, bool shuffle_names) {
  train::ProblemGenerator templates(seed);
  std::vector<std::string> out;
  if (!mapped) {
    for (long long i = 0; i < n; ++i) {
      auto p = templates.next(train::TemplateSet::train);
      out.push_back(reason::pot_prompt(p.question) + p.program);
    }
    return out;
  }
  if (n <= 0) return out;
  train::GrammarGenerator grammar(seed);
  std::vector<train::Problem> problems;
  for (long long i = 0; i < n; ++i)
    problems.push_back(i % 6 == 0 ? templates.next(train::TemplateSet::train) : grammar.next(train::TemplateSet::train));
  auto named = train::name_numbers(problems);
  if (!named) return Error{"replay: " + named.error().message};
  std::mt19937_64 names(seed ^ 0x5a11);
  for (auto& d : *named) out.push_back(d.document(shuffle_names ? names() | 1 : 0));
  return out;
}

Json options_json(const ImproveOptions& o) {
  return {{"task", o.task},   {"model", o.model}, {"eval", o.eval},         {"eval_limit", o.eval_limit}, {"pool", o.pool},
          {"repair", o.repair}, {"grounded", o.grounded}, {"from_start", o.from_start}, {"shuffle_names", o.shuffle_names},
          {"k", o.k},         {"temperature", o.temperature}, {"per_question", o.per_question},
          {"replay", o.replay}, {"steps", o.steps},     {"batch", o.batch}, {"warmup", o.warmup},
          {"lr", o.lr},       {"seed", o.seed}, {"validation", o.validation}};
}

// One bench run (recorded) of `model` over `problems`; returns the run's id and records.
Result<std::pair<std::string, reason::BenchRun>> bench(llm::Backend& model, sandbox::Sandbox& sb, store::Store& db,
                                                       const std::string& dataset,
                                                       std::vector<reason::BenchProblem> problems,
                                                       const reason::SolveConfig& solve) {
  reason::BenchConfig bc;
  bc.dataset = dataset;
  bc.model_spec = model.id();
  bc.solve = solve;
  auto tpl = reason::builtin_template(solve.method, solve.family);
  if (!tpl) return tpl.error();
  auto sha = feedback::file_sha256(dataset);
  if (!sha) return sha.error();
  auto id = db.create_run(reason::bench_run_config(bc, model.id(), tpl->hash, *sha, static_cast<int>(problems.size())));
  if (!id) return id.error();
  auto run = reason::run_bench(model, &sb, problems, solve, {}, &db, *id);
  if (!run) {
    (void)db.interrupt_run(*id);
    return run.error();
  }
  if (auto f = db.finish_run(*id, reason::summarize(run->problems).to_json()); !f) return f.error();
  return std::pair{*id, std::move(*run)};
}

// One recorded code run (`wand code --dataset`'s pipeline) of `model` over the first `limit` tasks
// (0: all) of an MBPP-format file: its id, the tasks and how many of them the chosen program solved.
struct CodeRun {
  std::string id;
  int tasks = 0, passed = 0;
};
Result<CodeRun> code_run(llm::Backend& model, sandbox::Sandbox& sb, store::Store& db, const std::string& file, int limit,
                         const codegen::CodeConfig& c) {
  auto tasks = feedback::load_tasks(file);
  if (!tasks) return tasks.error();
  std::vector<codegen::Problem> problems;
  for (auto& t : *tasks) {
    if (t.kind == feedback::TaskKind::answer) return Error{fmt::format("{}: its records are word problems, not function tasks", file)};
    problems.push_back(codegen::problem_from_task(t));
    if (limit > 0 && static_cast<int>(problems.size()) == limit) break;
  }
  CodeRun out;
  out.tasks = static_cast<int>(problems.size());
  codegen::RunRecorder recorder(db, codegen::run_config(c, file, model.id(), model.id(), ""), problems);
  std::ostringstream samples;  // every sample is in the run store; no samples file
  auto summary = codegen::run_dataset(model, sb, problems, c, samples, [&](int i, const codegen::CodeResult& r) {
    out.passed += r.hidden && r.hidden->passed;
    return recorder.record(i, r);
  });
  if (!summary) {
    recorder.interrupt();
    return summary.error();
  }
  if (auto f = recorder.finish(*summary); !f) return f.error();
  out.id = recorder.id();
  return out;
}

// Numeric literals of a text: digit runs (with one decimal point) not inside a name like step3.
std::vector<std::string> literals(const std::string& text, bool commas) {
  std::vector<std::string> out;
  for (std::size_t i = 0; i < text.size();) {
    bool starts = std::isdigit(static_cast<unsigned char>(text[i])) &&
                  (i == 0 || !(std::isalnum(static_cast<unsigned char>(text[i - 1])) || text[i - 1] == '_'));
    if (!starts) {
      ++i;
      continue;
    }
    std::string n;
    while (i < text.size() && (std::isdigit(static_cast<unsigned char>(text[i])) ||
                               (text[i] == '.' && i + 1 < text.size() && std::isdigit(static_cast<unsigned char>(text[i + 1]))) ||
                               (commas && text[i] == ',' && i + 1 < text.size() && std::isdigit(static_cast<unsigned char>(text[i + 1])))))
      if (text[i++] != ',') n += text[i - 1];
    while (n.find('.') != std::string::npos && (n.back() == '0' || n.back() == '.')) n.pop_back();
    out.push_back(n);
  }
  return out;
}

// A path as a run records it: absolute and normal, so that a resume from another folder, or with
// another spelling of the same path, finds the same files.
std::string absolute_path(const std::string& p) {
  if (p.empty()) return p;
  std::error_code ec;
  auto a = fs::absolute(p, ec);
  return ec ? p : a.lexically_normal().string();
}
ImproveOptions with_absolute_paths(ImproveOptions o) {
  o.out_dir = absolute_path(o.out_dir), o.model = absolute_path(o.model), o.select = absolute_path(o.select);
  o.pool_file = absolute_path(o.pool_file);
  for (auto& e : o.eval) e = absolute_path(e);
  return o;
}
// Whether two recorded paths name one file: the same text, or the same file on disk (a path an
// older run recorded relative to the folder it was started from).
bool same_file(const std::string& a, const std::string& b) {
  std::error_code ec;
  return a == b || (fs::equivalent(a, b, ec) && !ec);
}

// Whether `o` may continue recorded `run`: the same task, starting model, folder, pool (the
// file's contents, `pool_sha`: empty for the grammar's) and options; --eval and --select may
// name their files by other paths. Refusals name the option and the recorded value.
VoidResult check_continues(const ImproveOptions& o, const store::Run& run, const std::string& pool_sha) {
  const store::RunConfig& c = run.info.config;
  const std::string& id = run.info.id;
  if (c.method != o.task)
    return Error{fmt::format("--task {}: {} continues run {}, a --task {} run", o.task, o.out_dir, id, c.method), kOptionConflict};
  if (!same_file(c.model_spec, o.model))
    return Error{fmt::format("--model {}: {} continues run {}, which started from {}", o.model, o.out_dir, id, c.model_spec),
                 kOptionConflict};
  // A copied folder's state names the run of the original, whose rounds' files are there.
  if (const std::string made_in = c.extra.value("out_dir", ""); fs::path(made_in).is_absolute() && !same_file(made_in, o.out_dir))
    return Error{fmt::format("--out {}: its state.json names run {}, whose rounds are in {} (a copy of that folder? resume "
                             "it there, or give a new --out)", o.out_dir, id, made_in), kOptionConflict};
  const std::string drawn_from = c.extra.value("pool_file", ""), recorded_sha = c.extra.value("pool_file_sha256", "");
  if (recorded_sha != pool_sha) {
    if (pool_sha.empty())
      return Error{fmt::format("{} continues run {}, whose pools came from --pool-file {}: give it again, or a new --out",
                               o.out_dir, id, drawn_from), kOptionConflict};
    if (recorded_sha.empty())
      return Error{fmt::format("--pool-file {}: {} continues run {}, whose pools came from the grammar's pool productions "
                               "(give no --pool-file, or a new --out)", o.pool_file, o.out_dir, id), kOptionConflict};
    return Error{fmt::format("--pool-file {}: not the contents run {} drew its pools from ({}, sha256 {}...; changed "
                             "since, or another file): give that file, or a new --out", o.pool_file, id, drawn_from,
                             recorded_sha.substr(0, 12)), kOptionConflict};
  }
  // The rest of the run's options too: a round sampled, trained or evaluated otherwise would not
  // be the run the earlier rounds belong to (keys an older run did not record are not compared).
  Json given = options_json(o);
  const Json& recorded = c.options;
  auto same_files = [&](const Json& r, const Json& g) {
    if (r.is_string() && g.is_string()) return same_file(r, g);
    if (!r.is_array() || !g.is_array() || r.size() != g.size()) return false;
    for (std::size_t i = 0; i < r.size(); ++i)
      if (!r[i].is_string() || !same_file(r[i], g[i])) return false;
    return true;
  };
  for (const char* key : {"eval", "model"})
    if (recorded.contains(key) && same_files(recorded[key], given[key])) given[key] = recorded[key];
  if (auto conflict = first_option_conflict(recorded, given))
    return Error{fmt::format("{} {}: {} continues run {}, which used {} {} (give its options again, or a new --out)",
                             conflict->option, conflict->given, o.out_dir, id, conflict->option, conflict->recorded),
                 kOptionConflict};
  return ok_status();
}

// The accuracy entry of `r` for eval file `file` (by any path to it), or null.
const Json* accuracy_on(const RoundReport& r, const std::string& file) {
  for (auto& [key, value] : r.accuracy.items())
    if (same_file(key, file)) return &value;
  return nullptr;
}

Result<RoundReport> report_of(const store::ProblemRecord& p) {
  RoundReport r;
  try {
    const Json& e = p.extra;
    r.round = p.index;
    r.questions = e.at("questions"), r.samples = e.at("samples"), r.solved = e.at("solved");
    r.accepted = e.at("accepted"), r.trained_on = e.at("trained_on"), r.ungrounded = e.value("ungrounded", 0);
    r.accuracy = e.at("accuracy"), r.model = e.at("model"), r.sample_run = e.at("sample_run");
  } catch (const Json::exception& ex) {
    return Error{fmt::format("round {} of the recorded run is not an improve round: {}", p.index, ex.what())};
  }
  return r;
}

Result<std::vector<RoundReport>> run_rounds(const ImproveOptions& o, store::Store& db, sandbox::Sandbox& sb,
                                            const ModelOpener& open_model,
                                            const std::function<void(const std::string&)>& say,
                                            const PoolSource& source, const std::string& run_id,
                                            std::vector<RoundReport> rounds, bool finished);

}  // namespace

Json RoundReport::to_json() const {
  return {{"round", round},   {"questions", questions},   {"samples", samples}, {"solved", solved},
          {"accepted", accepted}, {"ungrounded", ungrounded}, {"trained_on", trained_on}, {"accuracy", accuracy}, {"model", model},
          {"sample_run", sample_run}};
}

namespace {

// validate's checks but reading the pool file, which run_improve reads once, for the run.
VoidResult check_options(const ImproveOptions& o) {
  if (o.task != "pot" && o.task != "code") return Error{fmt::format("--task must be pot or code, got '{}'", o.task)};
  if (o.task == "code" && o.grounded) return Error{"--grounded: only for --task pot (a function task's tests already judge every value)"};
  if (o.task == "pot" && o.repair) return Error{"--repair: only for --task code"};
  if (o.repair < 0 || o.repair > 20) return Error{fmt::format("--repair must be from 0 to 20, got {}", o.repair)};
  if (o.out_dir.empty()) return Error{"--out: no directory given"};
  if (o.model.empty() || !fs::exists(o.model)) return Error{fmt::format("--model {}: no such file", o.model)};
  {  // the model's prompt format is the task's: pot (or pot-numbers, number mapping) or func
    auto format = prompt_format_of(o.model);
    if (!format) return Error{fmt::format("--model {}: {}", o.model, format.error().message)};
    bool fits = o.task == "code" ? *format == "func" : *format == "pot" || *format == reason::kNumbersFormat;
    if (!fits)
      return Error{fmt::format("--model {}: --task {} needs a wand model of prompt format {} (this one's is '{}')", o.model,
                               o.task, o.task == "code" ? "'func'" : "'pot' or 'pot-numbers'", *format)};
    if (o.shuffle_names && *format != reason::kNumbersFormat)
      return Error{fmt::format("--shuffle-names: {} is a '{}' model, not {}: it reads no number names", o.model, *format,
                               reason::kNumbersFormat)};
  }
  if (o.eval.empty()) return Error{"--eval: no held-out set given"};
  for (auto& e : o.eval) {  // read whole before any round, so a bad line is refused, not met after a round
    if (!fs::exists(e)) return Error{fmt::format("--eval {}: no such file", e)};
    if (o.task == "code") {
      auto t = feedback::load_tasks(e);
      if (!t) return Error{"--eval " + t.error().message};
      if (t->front().kind == feedback::TaskKind::answer)  // one format a file
        return Error{fmt::format("--eval {}: its records are word problems ({} format); --task code is evaluated on "
                                 "function tasks (MBPP, HumanEval, stdio)", e, t->front().format)};
    } else if (auto b = reason::load_bench_dataset(e); !b) {
      return Error{"--eval " + b.error().message};
    }
  }
  if (o.validation < 0 || o.validation > 1000000)
    return Error{fmt::format("--validation must be from 0 to 1000000, got {}", o.validation)};
  if (o.validation > 0 && !o.select.empty())
    return Error{fmt::format("--select {}: --validation already chooses the round (by OUT/validation.jsonl); give one of them",
                             o.select)};
  if (!o.select.empty() && std::find(o.eval.begin(), o.eval.end(), o.select) == o.eval.end())
    return Error{fmt::format("--select {}: not one of the --eval sets (the round is chosen by its accuracy there)",
                             o.select)};
  if (o.rounds < 1 || o.rounds > 1000) return Error{fmt::format("--rounds must be from 1 to 1000, got {}", o.rounds)};
  if (o.pool < 1) return Error{fmt::format("--pool must be at least 1, got {}", o.pool)};
  if (o.k < 1 || o.k > 64) return Error{fmt::format("--k must be from 1 to 64, got {}", o.k)};
  if (!(o.temperature >= 0 && o.temperature <= 2)) return Error{fmt::format("--temperature must be from 0 to 2, got {}", o.temperature)};
  if (o.per_question < 1) return Error{fmt::format("--per-question must be at least 1, got {}", o.per_question)};
  if (!(o.replay >= 0 && o.replay <= 100)) return Error{fmt::format("--replay must be from 0 to 100, got {}", o.replay)};
  if (o.trainer.empty() || ::access(o.trainer.c_str(), X_OK) != 0)
    return Error{fmt::format("--trainer '{}': not an executable wand-train (build it with libtorch-dev installed)", o.trainer)};
  if (o.steps < 1 || o.batch < 1 || o.warmup < 0 || o.threads < 0 || !(o.lr > 0 && o.lr <= 10) || o.eval_limit < 0)
    return Error{"--steps, --batch must be at least 1, --warmup, --threads, --eval-limit not negative, --lr in (0, 10]"};
  for (auto& e : o.eval)
    if (!o.pool_file.empty() && same_file(e, o.pool_file))
      return Error{fmt::format("--eval {}: the --pool-file itself (the loop trains on its questions: nothing held out "
                               "would be measured)", e)};
  return ok_status();
}

}  // namespace

VoidResult validate(const ImproveOptions& o) {
  if (auto c = check_options(o); !c) return c;
  if (auto p = PoolSource::open(o); !p) return p.error();  // read whole, and decontaminated, before any round
  return ok_status();
}

Result<std::vector<RoundReport>> run_improve(const ImproveOptions& given, store::Store& db, sandbox::Sandbox& sb,
                                             const ModelOpener& open_model,
                                             const std::function<void(const std::string&)>& progress) {
  if (auto v = check_options(given); !v) return v.error();
  const ImproveOptions o = with_absolute_paths(given);
  auto say = [&](const std::string& s) {
    if (progress) progress(s);
  };
  auto source = PoolSource::open(o);  // the rest of validate: the pool file, read once
  if (!source) return source.error();
  std::string pool_sha;  // a pool file is recorded by its contents: a resume must draw from the same
  if (!o.pool_file.empty()) {
    auto sha = feedback::file_sha256(o.pool_file);
    if (!sha) return Error{"--pool-file " + sha.error().message};
    pool_sha = *sha;
  }
  std::error_code ec;
  fs::create_directories(o.out_dir, ec);
  if (ec) return Error{fmt::format("--out {}: cannot create: {}", o.out_dir, ec.message())};

  // The run: new, or the one this folder's state names (resumed after its last recorded round).
  std::string run_id;
  std::vector<RoundReport> rounds;
  bool finished = false;
  if (fs::exists(state_path(o))) {
    std::ifstream in(state_path(o));
    std::stringstream ss;
    ss << in.rdbuf();
    auto st = parse_json(ss.str(), state_path(o));
    if (!st || !st->contains("run_id") || !(*st)["run_id"].is_string())
      return Error{fmt::format("{}: not an improve state file (remove it to start over)", state_path(o))};
    run_id = (*st)["run_id"];
    auto run = db.get_run(run_id);
    if (!run) return Error{fmt::format("{}: its run {}: {}", state_path(o), run_id, run.error().message)};
    if (auto c = check_continues(o, *run, pool_sha); !c) return c.error();
    // Each recorded accuracy under this call's path of its file (an older run's may be relative).
    std::vector<std::string> files = o.eval;
    if (o.validation > 0) files.push_back(validation_path(o));
    for (auto& p : run->problems) {
      auto r = report_of(p);
      if (!r) return r.error();
      Json accuracy = Json::object();
      for (auto& [key, value] : r->accuracy.items()) {
        auto file = std::find_if(files.begin(), files.end(), [&](const std::string& f) { return same_file(key, f); });
        accuracy[file == files.end() ? key : *file] = value;
      }
      r->accuracy = std::move(accuracy);
      rounds.push_back(std::move(*r));
    }
    finished = run->info.status == "finished";
    if (finished && static_cast<int>(rounds.size()) < o.rounds + 1) {
      // More rounds than the run ended with: every round's files are on disk, so the next round
      // fine-tunes the last one's weights on all accepted so far, as it would have.
      if (auto t = db.extend_run(run_id, o.rounds + 1); !t) return t.error();
      finished = false;
      say(fmt::format("extending finished run {} from round {} to round {}", run_id, rounds.back().round, o.rounds));
    } else if (!finished) {
      if (auto t = db.resume_run(run_id); !t) return t.error();
      say(fmt::format("resuming run {} after round {}", run_id, rounds.empty() ? -1 : rounds.back().round));
    }
  } else {
    store::RunConfig rc;
    rc.kind = "improve";
    rc.dataset = o.eval.front();
    rc.model_spec = o.model;
    rc.method = o.task;
    rc.options = options_json(o);
    rc.seed = static_cast<int64_t>(o.seed);
    rc.total_problems = o.rounds + 1;
    rc.extra = {{"out_dir", o.out_dir}};
    if (!o.pool_file.empty()) rc.extra["pool_file"] = o.pool_file, rc.extra["pool_file_sha256"] = pool_sha;
    auto id = db.create_run(rc);
    if (!id) return id.error();
    run_id = *id;
    if (auto w = write_text(state_path(o), Json{{"run_id", run_id}}.dump() + "\n"); !w) return w.error();
    say(fmt::format("improve run {} (run store {})", run_id, db.path()));
  }

  // The validation pool: written again on a resume (the same seed gives the same lines), then
  // one more evaluated set, the one the round is chosen by.
  ImproveOptions with_validation = o;
  if (o.validation > 0) {
    const std::string file = validation_path(o);
    if (auto w = write_text(file, source->lines(kValidationRound)); !w) return w.error();
    with_validation.eval.push_back(file);
    with_validation.select = file;
  }
  say("pool: " + source->describe());
  // An error from here on leaves the run interrupted, so the next call resumes it.
  auto result = run_rounds(with_validation, db, sb, open_model, say, *source, run_id, std::move(rounds), finished);
  if (!result) (void)db.interrupt_run(run_id);
  return result;
}

namespace {

Result<std::vector<RoundReport>> run_rounds(const ImproveOptions& o, store::Store& db, sandbox::Sandbox& sb,
                                            const ModelOpener& open_model,
                                            const std::function<void(const std::string&)>& say,
                                            const PoolSource& source, const std::string& run_id,
                                            std::vector<RoundReport> rounds, bool finished) {
  std::error_code ec;
  reason::SolveConfig greedy;  // evaluation: one greedy program, no repair, no fallback
  greedy.method = "pot", greedy.family = "wand", greedy.repair = false, greedy.fallback = false;
  reason::SolveConfig sampling = greedy;
  sampling.k = o.k, sampling.temperature = static_cast<float>(o.temperature);
  sampling.shuffle_names = o.shuffle_names;
  const bool code = o.task == "code";
  // The starting model's prompt format is every round's: a pot-numbers model reads mapped
  // questions (solve maps them), so its accepted programs are already over the names and its
  // replay and export must be mapped too.
  auto format = prompt_format_of(o.model);
  if (!format) return Error{fmt::format("--model {}: {}", o.model, format.error().message)};
  const bool mapped = *format == reason::kNumbersFormat;
  codegen::CodeConfig code_greedy;  // the code model's evaluation: pass@1 of one greedy function
  code_greedy.method = "sample", code_greedy.family = "wand", code_greedy.k = 1, code_greedy.temperature = 0;
  codegen::CodeConfig code_sampling = code_greedy;
  code_sampling.k = o.k, code_sampling.temperature = static_cast<float>(o.temperature);
  if (o.repair) code_sampling.method = "self-debug", code_sampling.rounds = o.repair;

  auto evaluate = [&](llm::Backend& model, RoundReport& r) -> VoidResult {
    for (auto& file : o.eval) {
      int correct = 0, n = 0;
      std::string id;
      const int limit = file == validation_path(o) ? 0 : o.eval_limit;  // the validation pool: all of it
      if (code) {
        auto c = code_run(model, sb, db, file, limit, code_greedy);
        if (!c) return Error{"--eval " + c.error().message};
        id = c->id, correct = c->passed, n = c->tasks;
      } else {
        auto set = reason::load_bench_dataset(file);
        if (!set) return Error{"--eval " + set.error().message};
        if (limit > 0 && set->size() > static_cast<std::size_t>(limit)) set->resize(limit);
        auto b = bench(model, sb, db, file, std::move(*set), greedy);
        if (!b) return b.error();
        auto s = reason::summarize(b->second.problems);
        id = b->first, correct = s.correct, n = s.problems;
      }
      double accuracy = n ? static_cast<double>(correct) / n : 0.0;
      r.accuracy[file] = {{"correct", correct}, {"n", n}, {"accuracy", accuracy}, {"run", id}};
      say(fmt::format("round {}: {} {:.1f}% ({}/{}, {} run {})", r.round, fs::path(file).filename().string(),
                      100 * accuracy, correct, n, code ? "code" : "bench", id));
    }
    return ok_status();
  };
  auto record = [&](const RoundReport& r) -> VoidResult {
    store::ProblemRecord p;
    p.index = r.round;
    p.problem_id = fmt::format("round-{}", r.round);
    p.input = fmt::format("round {}", r.round);
    p.outcome = "ok";
    p.extra = r.to_json();
    return db.record_problem(run_id, p);
  };

  if (rounds.empty()) {  // round 0: the starting model, its weights imported for wand-train
    fs::create_directories(round_dir(o, 0), ec);
    auto w = train::weights_from_gguf(o.model);
    if (!w) return Error{"--model " + w.error().message};
    if (auto c = train::write_checkpoint(checkpoint_of(o, 0), *w, o.model); !c) return c.error();
    auto model = open_model(o.model);
    if (!model) return Error{"--model " + model.error().message};
    RoundReport r;
    r.model = o.model;
    if (auto e = evaluate(**model, r); !e) return e.error();
    if (auto rec = record(r); !rec) return rec.error();
    rounds.push_back(r);
  }

  for (int round = rounds.back().round + 1; round <= o.rounds; ++round) {
    const RoundReport& prev = rounds.back();
    std::string dir = round_dir(o, round);
    fs::create_directories(dir, ec);
    if (ec) return Error{fmt::format("{}: cannot create: {}", dir, ec.message())};
    RoundReport r;
    r.round = round;

    // 1. A fresh pool: questions of the grammar's pool productions (in no training corpus, none a
    //    test template) or of --pool-file, with their answers only; code: tasks of the pool
    //    families, or the file's, with their tests.
    std::vector<reason::BenchProblem> pool;
    std::string pool_text = source.lines(round, &pool);
    const int questions = static_cast<int>(std::count(pool_text.begin(), pool_text.end(), '\n'));
    std::string pool_file = dir + "/pool.jsonl";
    if (auto w = write_text(pool_file, pool_text); !w) return w.error();

    // 2. k programs per question, executed; accepted: those whose answer is the label (code: that
    //    pass the task's tests).
    auto model = open_model(prev.model);
    if (!model) return Error{fmt::format("round {}: {}", round, model.error().message)};
    sampling.seed = code_sampling.seed = o.seed * 7919 + static_cast<uint64_t>(round);
    say(fmt::format("round {}: sampling {} program{} for each of {} {}", round, o.k, o.k == 1 ? "" : "s", questions,
                    code ? "function tasks" : "questions"));
    if (code) {
      auto sampled = code_run(**model, sb, db, pool_file, 0, code_sampling);
      if (!sampled) return Error{fmt::format("round {}: {}", round, sampled.error().message)};
      r.sample_run = sampled->id;
    } else {
      auto sampled = bench(**model, sb, db, pool_file, pool, sampling);
      if (!sampled) return sampled.error();
      r.sample_run = sampled->first;
    }
    r.questions = questions;
    r.samples = questions * o.k;
    auto run = db.get_run(r.sample_run);
    if (!run) return run.error();
    codegen::ExportOptions eo;
    eo.format = "sft";
    eo.per_task = o.per_question;
    std::stringstream rows;
    auto stats = codegen::export_training_data(*run, eo, rows);
    if (!stats) return stats.error();
    r.solved = stats->tasks;
    r.accepted = stats->rows;
    std::string kept = rows.str();
    if (o.grounded) {  // refuse right answers reached with numbers the question does not give
      // A mapped model never sees the question's numbers, only their names: any literal beyond
      // the words left in its text ("a dozen", "half") is invented, whatever its value.
      kept.clear();
      std::set<int> solved;
      for (std::string line; std::getline(rows, line);) {
        auto j = parse_json(line, "an exported row");
        if (!j) return j.error();
        int index = (*j)["problem"];
        std::string program = (*j)["completion"].is_string() ? (*j)["completion"].get<std::string>() : "";
        const std::string& question = pool.at(index).question;
        const std::string read = mapped ? reason::map_numbers(question).text : question;
        if (!ungrounded_numbers(program, read).empty() || !uses_question(program, read)) {
          ++r.ungrounded;
          continue;
        }
        kept += line + "\n";
        solved.insert(index);
      }
      r.accepted -= r.ungrounded;
      r.solved = static_cast<int>(solved.size());
    }
    if (auto w = write_text(dir + "/accepted.jsonl", kept); !w) return w.error();
    // `duplicates` counts every sample that repeats an earlier one of its question, right or wrong.
    say(fmt::format("round {}: {} of {} {} solved, {} programs accepted ({} samples repeated an earlier one of their "
                    "question, {} right ones over the --per-question cap{})",
                    round, r.solved, r.questions, code ? "function tasks" : "questions", r.accepted, stats->duplicates, stats->capped,
                    o.grounded ? fmt::format(", {} right answers with numbers not in the question refused", r.ungrounded) : ""));

    // 3. Fine-tune on everything accepted so far (each round's accepted.jsonl) plus replay.
    std::vector<std::string> documents;
    for (int k = 1; k <= round; ++k) {
      std::ifstream in(round_dir(o, k) + "/accepted.jsonl");
      for (std::string line; std::getline(in, line);)
        if (auto j = parse_json(line, "accepted.jsonl"); j) documents.push_back(codegen::document_of(*j));
    }
    r.trained_on = static_cast<int>(documents.size());
    if (documents.empty()) {  // nothing to learn from: the model stays as it was
      r.model = prev.model;
      r.accuracy = prev.accuracy;
      say(fmt::format("round {}: nothing accepted so far; the model is unchanged", round));
      if (auto rec = record(r); !rec) return rec.error();
      rounds.push_back(r);
      continue;
    }
    // Replay of the original training templates' documents (code: the trained families' `func`
    // documents, 1 to all tests shown as the corpus does), and enough documents in all for the
    // trainer's held-out tail (64 at least).
    long long replay = std::llround(o.replay * r.trained_on);
    if (o.replay > 0) replay = std::max<long long>(replay, 64 - r.trained_on);
    uint64_t replay_seed = o.seed * 31 + static_cast<uint64_t>(round);
    if (code) {
      train::FunctionTaskGenerator original_functions(replay_seed);
      std::mt19937_64 shown(replay_seed);
      for (long long i = 0; i < replay; ++i) {
        auto t = original_functions.next(train::TemplateSet::train);
        documents.push_back(train::function_prompt(t, 1 + shown() % t.tests.size()) + t.code);
      }
    } else {
      auto docs = pot_replay(replay, replay_seed, mapped, o.shuffle_names);
      if (!docs) return docs.error();
      replay = static_cast<long long>(docs->size());
      documents.insert(documents.end(), docs->begin(), docs->end());
    }
    std::shuffle(documents.begin(), documents.end(), std::mt19937_64(o.seed + static_cast<uint64_t>(round)));
    // The fine-tuning set as text too, so what a round trained on can be read (and checked for test tasks).
    std::string documents_text;
    for (auto& d : documents) documents_text += Json(d).dump() + "\n";
    if (auto w = write_text(dir + "/documents.jsonl", documents_text); !w) return w.error();
    auto corpus = train::write_document_corpus(documents, o.model, dir + "/corpus",
                                               {{"improve_run", run_id}, {"round", round}, {"accepted", r.trained_on},
                                                {"replay", replay}});
    if (!corpus) return corpus.error();
    std::string train_dir = dir + "/train";
    fs::create_directories(train_dir, ec);
    // The weights this round fine-tunes: the last round's, or, where rounds accepted nothing and
    // left their model unchanged (no checkpoint of their own), those of the last round that trained.
    int init_round = o.from_start ? 0 : prev.round;
    while (init_round > 0 && !fs::exists(checkpoint_of(o, init_round))) --init_round;
    std::vector<std::string> args = {o.trainer, "--init", checkpoint_of(o, init_round), "--data", dir + "/corpus",
                                     "--out", train_dir, "--steps", std::to_string(o.steps), "--batch",
                                     std::to_string(o.batch), "--lr", fmt::format("{}", o.lr), "--warmup",
                                     std::to_string(o.warmup), "--threads", std::to_string(o.threads), "--seed",
                                     std::to_string(o.seed + static_cast<uint64_t>(round)), "--save-every", "25",
                                     "--eval-every", "50", "--resume"};
    say(fmt::format("round {}: fine-tuning round {}'s weights on {} documents ({} accepted, {} replay) for {} steps (log: {}/train.log)",
                    round, init_round, documents.size(), r.trained_on, replay, o.steps, train_dir));
    if (auto t = train::run_trainer(args, train_dir + "/train.log"); !t) return t.error();

    // 4. The new model, evaluated on the held-out sets.
    train::ExportOptions xo;
    xo.checkpoint = checkpoint_of(o, round);
    xo.tokenizer = o.model;
    xo.out = dir + "/model.gguf";
    xo.prompt_format = *format;
    xo.name = fmt::format("wand-{}-improve-{}", code ? "code" : "pot", round);
    if (auto x = train::export_model(xo); !x) return x.error();
    r.model = xo.out;
    auto next_model = open_model(r.model);
    if (!next_model) return Error{fmt::format("round {}: {}", round, next_model.error().message)};
    if (auto e = evaluate(**next_model, r); !e) return e.error();
    if (auto rec = record(r); !rec) return rec.error();
    rounds.push_back(r);
  }
  if (!o.select.empty()) {
    const int best = best_round(rounds, o.select);
    if (best < 0) return Error{fmt::format("--select {}: no round was evaluated on it", o.select)};
    const std::string to = (fs::path(o.out_dir) / "best.gguf").string();
    fs::copy_file(rounds[best].model, to, fs::copy_options::overwrite_existing, ec);
    if (ec) return Error{fmt::format("copying round {}'s model to {}: {}", rounds[best].round, to, ec.message())};
    say(fmt::format("round {} is the best on {} ({:.1f}%): {}", rounds[best].round, o.select,
                    100 * (*accuracy_on(rounds[best], o.select))["accuracy"].get<double>(), to));
  }
  Json summary = Json::array();
  for (auto& r : rounds) summary.push_back(r.to_json());
  if (!finished)
    if (auto f = db.finish_run(run_id, {{"rounds", summary}}); !f) return f.error();
  return rounds;
}

}  // namespace

std::string selection_set(const ImproveOptions& o) { return o.validation > 0 ? validation_path(o) : o.select; }

namespace {

// The numbers a question gives: its digits ("1,200" is 1200) and its number words.
std::set<std::string> given_numbers(const std::string& question) {
  static const std::map<std::string, std::string> kWords = {
      {"zero", "0"},     {"one", "1"},       {"two", "2"},        {"three", "3"},     {"four", "4"},
      {"five", "5"},     {"six", "6"},       {"seven", "7"},      {"eight", "8"},     {"nine", "9"},
      {"ten", "10"},     {"eleven", "11"},   {"twelve", "12"},    {"thirteen", "13"}, {"fourteen", "14"},
      {"fifteen", "15"}, {"sixteen", "16"},  {"seventeen", "17"}, {"eighteen", "18"}, {"nineteen", "19"},
      {"twenty", "20"},  {"dozen", "12"},    {"half", "2"},       {"twice", "2"},     {"double", "2"},
      {"triple", "3"},   {"thrice", "3"}};
  std::set<std::string> given;
  for (auto& n : literals(question, true)) given.insert(n);
  std::string word;
  for (std::size_t i = 0; i <= question.size(); ++i) {
    char c = i < question.size() ? static_cast<char>(std::tolower(static_cast<unsigned char>(question[i]))) : ' ';
    if (c >= 'a' && c <= 'z') {
      word += c;
      continue;
    }
    if (auto it = kWords.find(word); it != kWords.end()) given.insert(it->second);
    word.clear();
  }
  return given;
}

// The number names (n0, n1, ...) of a text, as whole identifiers.
std::set<std::string> number_names(const std::string& text) {
  std::set<std::string> out;
  for (std::size_t i = 0; i < text.size();) {
    if (!(std::isalpha(static_cast<unsigned char>(text[i])) || text[i] == '_')) {
      ++i;
      continue;
    }
    std::size_t j = i;
    while (j < text.size() && (std::isalnum(static_cast<unsigned char>(text[j])) || text[j] == '_')) ++j;
    if (j - i > 1 && text[i] == 'n' && std::all_of(text.begin() + i + 1, text.begin() + j, [](char c) { return std::isdigit(static_cast<unsigned char>(c)); }))
      out.insert(text.substr(i, j - i));
    i = j;
  }
  return out;
}

}  // namespace

std::vector<std::string> ungrounded_numbers(const std::string& program, const std::string& question) {
  std::set<std::string> given = given_numbers(question);
  given.insert({"0", "1", "2", "100"});
  std::vector<std::string> out;
  for (auto& n : literals(program, false))
    if (!given.count(n)) out.push_back(n);
  return out;
}

bool uses_question(const std::string& program, const std::string& question) {
  const std::set<std::string> given = given_numbers(question), names = number_names(question);
  for (auto& n : literals(program, false))
    if (given.count(n)) return true;
  for (auto& n : number_names(program))
    if (names.count(n)) return true;
  return false;
}

int best_round(const std::vector<RoundReport>& rounds, const std::string& file) {
  int best = -1;
  double top = -1;
  for (std::size_t i = 0; i < rounds.size(); ++i)
    if (const Json* on = accuracy_on(rounds[i], file)) {
      const double a = (*on)["accuracy"].get<double>();
      if (a > top) top = a, best = static_cast<int>(i);
    }
  return best;
}

std::string markdown_table(const std::vector<RoundReport>& rounds) {
  if (rounds.empty()) return "";
  std::string head = "| round | questions | solved | accepted | trained on |", rule = "|---|---|---|---|---|";
  for (auto& [file, _] : rounds.front().accuracy.items()) {
    head += " " + fs::path(file).filename().string() + " |";
    rule += "---|";
  }
  std::string out = head + "\n" + rule + "\n";
  for (auto& r : rounds) {
    out += fmt::format("| {} | {} | {} | {} | {} |", r.round, r.questions, r.solved, r.accepted, r.trained_on);
    for (auto& [file, a] : rounds.front().accuracy.items()) {
      const Json& x = r.accuracy.contains(file) ? r.accuracy[file] : Json();
      out += x.is_object() ? fmt::format(" {:.1f}% ({}/{}) |", 100 * x["accuracy"].get<double>(), x["correct"].get<int>(),
                                         x["n"].get<int>())
                           : " – |";
    }
    out += "\n";
  }
  return out;
}

}  // namespace wand::improve

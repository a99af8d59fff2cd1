// wand bench's pipeline: the dataset, the run's recorded options, running and recording the
// problems, and a run's statistics.
#include "reason/bench.h"

#include <fmt/core.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <mutex>
#include <set>
#include <thread>

#include "common/output.h"
#include "common/text.h"
#include "feedback/feedback.h"

namespace wand::reason {

Result<std::vector<BenchProblem>> load_bench_dataset(const std::string& path) {
  auto tasks = feedback::load_tasks(path);
  if (!tasks) return tasks.error();
  std::vector<BenchProblem> out;
  for (auto& t : *tasks) {
    if (t.kind != feedback::TaskKind::answer)
      return Error{fmt::format("{}: a {} dataset of code tasks; wand bench reads answer datasets: GSM8K "
                               "(question, answer with '#### N'), PAL (input, target), or {{question, answer}}",
                               path, t.format)};
    int index = static_cast<int>(out.size());
    if (is_blank(t.prompt))
      return Error{fmt::format("{}: problem {} ({}): the question is empty", path, index + 1, t.task_id)};
    out.push_back({index, t.task_id, t.prompt, t.expected});
  }
  return out;
}

// --- options

Json bench_options(const BenchConfig& c) {
  const SolveConfig& s = c.solve;
  return {{"dataset", c.dataset},         {"model", c.model_spec},     {"method", s.method},
          {"k", s.k},                     {"temperature", s.temperature}, {"top-p", s.top_p},
          {"seed", s.seed},               {"max-tokens", s.max_tokens},  {"timeout", s.timeout_s},
          {"weighted", s.weighted},       {"no-repair", !s.repair},      {"no-fallback", !s.fallback},
          {"prompt-style", c.prompt_style}, {"prompt", c.prompt_file},  {"constrain", s.constrain},
          {"limit", c.limit},             {"flow-calls", s.flow_calls},  {"flow-tokens", s.flow_tokens},
          {"shard", c.shard.str()},       {"shuffle-names", s.shuffle_names}, {"kv-cache", c.kv_cache},
          {"select", s.select},           {"plausible", s.plausible},    {"verifier", s.verifier_spec}};
}

Result<BenchConfig> bench_config_from(const Json& o) {
  BenchConfig c;
  auto& s = c.solve;
  try {
    c.dataset = o.at("dataset"), c.model_spec = o.at("model"), c.prompt_style = o.at("prompt-style");
    c.prompt_file = o.at("prompt"), c.limit = o.at("limit");
    s.method = o.at("method"), s.k = o.at("k"), s.temperature = o.at("temperature"), s.top_p = o.at("top-p");
    s.seed = o.at("seed"), s.max_tokens = o.at("max-tokens"), s.timeout_s = o.at("timeout");
    s.weighted = o.at("weighted"), s.repair = !o.at("no-repair").get<bool>(), s.fallback = !o.at("no-fallback").get<bool>();
    s.constrain = o.at("constrain");  // the grammar itself is loaded by the caller (llm::Grammar::load)
    // Runs recorded before method flow existed have no flow budget: the defaults.
    s.flow_calls = o.value("flow-calls", s.flow_calls), s.flow_tokens = o.value("flow-tokens", s.flow_tokens);
    s.shuffle_names = o.value("shuffle-names", false);  // absent in runs recorded before it existed
    c.kv_cache = o.value("kv-cache", c.kv_cache);         // likewise
    s.select = o.value("select", s.select), s.plausible = o.value("plausible", false);  // likewise
    s.verifier_spec = o.value("verifier", "");                                        // likewise
    // Runs recorded before --shard existed ran every problem.
    auto shard = feedback::parse_shard(o.value("shard", "0/1"));
    if (!shard) return Error{"the run's recorded options: " + shard.error().message};
    c.shard = *shard;
  } catch (const Json::exception& e) {
    return Error{fmt::format("the run's recorded options are incomplete: {}", e.what())};
  }
  return c;
}

Result<Json> resume_options(const Json& stored, const Json& given, const std::string& run_id) {
  if (!stored.is_object()) return Error{fmt::format("run {} has no recorded bench options", run_id)};
  Json merged = stored;
  // Options a run recorded before they existed are what it used, their defaults (bench_config_from):
  // `--kv-cache f32` resumes a run recorded before --kv-cache.
  if (auto c = bench_config_from(stored)) merged = bench_options(*c);
  for (auto& [key, value] : given.items()) {
    if (!merged.contains(key)) return Error{fmt::format("--{}: run {} did not record it", key, run_id)};
    if (merged[key] != value) {
      std::string name = key == "dataset" ? "DATASET" : "--" + key;
      return Error{fmt::format("{}: run {} used {}, not {}; resume it with its own options", name, run_id,
                               option_text(merged[key]), option_text(value))};
    }
  }
  return merged;
}

VoidResult check_resumable(const store::RunInfo& run, const std::string& dataset_sha256, const Template& prompt) {
  if (run.config.kind != "bench") return Error{fmt::format("run {} is a {} run, not a bench run", run.id, run.config.kind)};
  std::string recorded = run.config.extra.is_object() ? run.config.extra.value("dataset_sha256", "") : "";
  if (recorded != dataset_sha256)
    return Error{fmt::format("run {}: {} changed since the run started (its SHA-256 differs)", run.id, run.config.dataset)};
  if (run.config.prompt_hash != prompt.hash)
    return Error{fmt::format("run {}: the prompt template {} changed since the run started", run.id, prompt.name)};
  return ok_status();
}

store::RunConfig bench_run_config(const BenchConfig& c, const std::string& model_id, const std::string& prompt_hash,
                                  const std::string& dataset_sha256, int total_problems) {
  store::RunConfig rc = run_config(c.solve, c.model_spec, model_id, prompt_hash);
  rc.kind = "bench";
  rc.dataset = c.dataset;
  rc.total_problems = total_problems;
  rc.options["limit"] = c.limit;
  rc.extra = {{"bench", bench_options(c)}, {"dataset_sha256", dataset_sha256}};
  return rc;
}

// --- statistics

Interval wilson_interval(int successes, int n, double z) {
  if (n <= 0) return {0, 1};
  double p = double(successes) / n, z2 = z * z;
  double denom = 1 + z2 / n;
  double center = (p + z2 / (2 * n)) / denom;
  double half = z / denom * std::sqrt(p * (1 - p) / n + z2 / (4.0 * n * n));
  return {std::max(0.0, center - half), std::min(1.0, center + half)};
}

McNemar mcnemar(int only_a, int only_b) {
  McNemar m;
  m.only_a = only_a, m.only_b = only_b;
  int n = only_a + only_b;
  if (n == 0) {
    m.test = "none";
    return m;
  }
  if (n < 25) {
    // P(X <= min) under Binomial(n, 1/2), summed exactly: n < 25 keeps C(n, i) far inside a double.
    int low = std::min(only_a, only_b);
    double c = 1, tail = 0;
    for (int i = 0; i <= low; ++i) {
      tail += c;
      c = c * (n - i) / (i + 1);
    }
    m.test = "exact binomial";
    m.statistic = low;
    m.p_value = std::min(1.0, 2 * tail * std::ldexp(1.0, -n));
    return m;
  }
  double d = std::abs(only_a - only_b) - 1.0;
  m.test = "chi-square (continuity-corrected)";
  m.statistic = d * d / n;  // the usual formula, unclamped: a = b gives 1 / n (p near 1)
  m.p_value = std::erfc(std::sqrt(m.statistic / 2));  // chi-square, 1 degree of freedom
  return m;
}

BenchSummary summarize(std::span<const store::ProblemRecord> problems) {
  BenchSummary s;
  for (auto& p : problems) {
    ++s.problems;
    s.correct += p.correct.value_or(false);
    s.answered += p.answer.has_value();
    s.prompt_tokens += p.prompt_tokens, s.completion_tokens += p.completion_tokens;
    if (p.timings.is_object())
      s.generate_s += p.timings.value("generate_s", 0.0), s.execute_s += p.timings.value("execute_s", 0.0),
      s.verify_s += p.timings.value("verify_s", 0.0);
    if (p.answer && p.vote.is_object()) ++s.answered_by[p.vote.value("answered_by", "sample")];
  }
  if (s.problems) s.accuracy = double(s.correct) / s.problems, s.coverage = double(s.answered) / s.problems;
  s.ci = wilson_interval(s.correct, s.problems);
  return s;
}

Json BenchSummary::to_json() const {
  return {{"problems", problems},
          {"correct", correct},
          {"accuracy", accuracy},
          {"ci95", {ci.lo, ci.hi}},
          {"answered", answered},
          {"coverage", coverage},
          {"answered_by", answered_by},
          {"prompt_tokens", prompt_tokens},
          {"completion_tokens", completion_tokens},
          {"generate_s", generate_s},
          {"execute_s", execute_s},
          {"verify_s", verify_s}};
}

Json problem_line(const store::ProblemRecord& p) {
  const store::SampleRecord* shown = p.samples.empty() ? nullptr : &p.samples.front();
  int winner = p.vote.is_object() ? p.vote.value("final_winner", -1) : -1;
  for (auto& s : p.samples)
    if (s.index == winner) shown = &s;
  std::string text, output;
  if (shown) {
    text = shown->program.empty() ? shown->completion : shown->program;
    if (shown->exec_result.is_object()) output = shown->exec_result.value("stdout", "");
  }
  auto opt = [](const std::optional<std::string>& v) { return v ? Json(*v) : Json(nullptr); };
  return {{"index", p.index},
          {"id", p.problem_id},
          {"question", p.input},
          {"expected", p.expected},
          {"answer", opt(p.answer)},
          {"correct", p.correct ? Json(*p.correct) : Json(nullptr)},
          {"outcome", p.outcome},
          {"answered_by", p.vote.is_object() ? p.vote.value("answered_by", "") : ""},
          {"prompt_tokens", p.prompt_tokens},
          {"completion_tokens", p.completion_tokens},
          {"timings", p.timings},
          {"program", text},
          {"output", output}};
}

// --- shards

namespace {
constexpr const char* kBenchShardKey = "wand_bench_shard";

// A problem as summarize() needs it, from its problem_line.
Result<store::ProblemRecord> problem_from_line(const Json& j) {
  store::ProblemRecord p;
  try {
    p.index = j.at("index");
    p.problem_id = j.at("id"), p.input = j.at("question"), p.expected = j.at("expected");
    if (!j.at("answer").is_null()) p.answer = j["answer"].get<std::string>();
    if (!j.at("correct").is_null()) p.correct = j["correct"].get<bool>();
    p.outcome = j.at("outcome");
    p.vote = {{"answered_by", j.at("answered_by")}};
    p.prompt_tokens = j.at("prompt_tokens"), p.completion_tokens = j.at("completion_tokens");
    p.timings = j.at("timings");
  } catch (const Json::exception& e) {
    return Error{fmt::format("not a wand bench problem line ({})", e.what())};
  }
  if (p.index < 0) return Error{"a negative problem index"};
  return p;
}
}  // namespace

VoidResult write_bench_shard(const std::string& path, const BenchConfig& c, const store::RunInfo& run,
                             int problems_total, std::span<const store::ProblemRecord> problems, double wall_s) {
  std::ofstream out(path, std::ios::trunc);
  if (!out) return Error{fmt::format("{}: cannot write", path)};
  Json options = bench_options(c);
  options.erase("dataset"), options.erase("shard");
  const Json& extra = run.config.extra;
  Json header = {{"shard", c.shard.str()},
                 {"dataset", c.dataset},
                 {"dataset_sha256", extra.is_object() ? extra.value("dataset_sha256", "") : ""},
                 {"options", options},
                 {"model_id", run.config.model_id},
                 {"prompt_hash", run.config.prompt_hash},
                 {"problems_total", problems_total},
                 {"shard_problems", problems.size()},
                 {"run_id", run.id.empty() ? Json(nullptr) : Json(run.id)},
                 {"wall_s", wall_s}};
  out << Json{{kBenchShardKey, header}}.dump() << "\n";
  for (auto& p : problems) out << dump_text(problem_line(p)) << "\n";
  return flush_file(out, path);
}

Result<MergedBench> merge_bench_shards(const std::vector<std::string>& paths) {
  feedback::ShardFormat format{kBenchShardKey, "wand bench --shard I/N --out FILE", "shard_problems", "problem",
                               {"shard", "shard_problems", "run_id", "wall_s", "dataset"}};
  MergedBench m;
  std::map<int, std::pair<store::ProblemRecord, Json>> by_index;
  auto set = feedback::read_shards(paths, format, [&](const std::string& path, int line, feedback::Shard shard,
                                                      const Json& h, const Json& j) -> Result<std::size_t> {
    auto p = problem_from_line(j);
    if (!p) return Error{fmt::format("{} line {}: {}", path, line, p.error().message)};
    if (p->index >= h.value("problems_total", 0) || !shard.holds(static_cast<std::size_t>(p->index)))
      return Error{fmt::format("{} line {}: problem index {} does not belong to shard {}", path, line, p->index, shard.str())};
    int index = p->index;
    by_index[index] = {std::move(*p), j};
    return static_cast<std::size_t>(index);
  });
  if (!set) return set.error();
  const Json& common = set->common;
  int total = common.value("problems_total", -1);
  if (static_cast<int>(by_index.size()) != total)
    return Error{fmt::format("--merge: the shards hold {} problems; the run had {}", by_index.size(), total)};
  Json options = common.value("options", Json::object());
  options["dataset"] = set->headers.front().value("dataset", "");
  auto c = bench_config_from(options);
  if (!c) return Error{fmt::format("{}: {}", paths.front(), c.error().message)};
  m.run.info.config = bench_run_config(*c, common.value("model_id", ""), common.value("prompt_hash", ""),
                                       common.value("dataset_sha256", ""), total);
  m.run.info.status = "finished";
  for (auto& [index, pl] : by_index) {
    m.run.problems.push_back(std::move(pl.first));
    m.lines.push_back(std::move(pl.second));
  }
  return m;
}

// --- running

Result<BenchRun> run_bench(llm::Backend& model, sandbox::Sandbox* sb, std::span<const BenchProblem> problems,
                           const SolveConfig& config, std::vector<store::ProblemRecord> done, store::Store* db,
                           const std::string& run_id, const std::function<void(const BenchProgress&)>& on_progress,
                           const std::atomic<bool>* stop, int parallel) {
  BenchRun run;
  run.problems = std::move(done);
  std::set<int> finished;
  BenchProgress progress{0, static_cast<int>(problems.size()), 0};
  for (auto& p : run.problems) finished.insert(p.index), ++progress.done, progress.correct += p.correct.value_or(false);
  std::vector<const BenchProblem*> todo;
  for (const auto& p : problems)
    if (!finished.count(p.index)) todo.push_back(&p);
  auto stopped = [&] { return stop && stop->load(); };

  // Workers take the next problem in dataset order; each problem's answer depends only on it and
  // the config (the seed is per problem), so the order they finish in changes no number.
  std::mutex mu;
  std::size_t next = 0;
  std::optional<Error> failure;
  auto worker = [&] {
    for (;;) {
      const BenchProblem* problem;
      {
        std::lock_guard lk(mu);
        if (failure || stopped() || next == todo.size()) return;
        problem = todo[next++];
      }
      auto r = solve(model, sb, problem->question, config);
      // A question longer than the model's context is one the model cannot answer: it counts as
      // unanswered (outcome context_length_exceeded, the error kept) and the run goes on, so one
      // long GSM8K question does not end a benchmark of a small model.
      std::optional<std::string> unread;
      if (!r && r.error().code == llm::kContextLengthExceeded) unread = r.error().message, r = SolveResult{};
      std::lock_guard lk(mu);
      if (!r) {
        if (!failure)
          failure = Error{fmt::format("problem {} ({}): {}", problem->index + 1, problem->id, r.error().message), r.error().code};
        return;
      }
      if (stopped()) return;  // the signal may have reached this problem's programs: a resume redoes it
      store::ProblemRecord rec = problem_record(problem->index, problem->question, *r);
      rec.problem_id = problem->id;
      rec.expected = problem->expected;
      rec.correct = r->answer && feedback::answers_match(*r->answer, problem->expected);
      if (unread) rec.outcome = std::string(llm::kContextLengthExceeded), rec.extra["error"] = *unread;
      if (db)
        if (auto w = db->record_problem(run_id, rec); !w) {
          failure = Error{fmt::format("recording problem {} in {}: {}", problem->index + 1, db->path(), w.error().message)};
          return;
        }
      ++progress.done, progress.correct += *rec.correct;
      run.problems.push_back(std::move(rec));
      if (on_progress) on_progress(progress);
    }
  };
  std::vector<std::thread> workers;
  for (int i = 1; i < std::min<int>(parallel, static_cast<int>(todo.size())); ++i) workers.emplace_back(worker);
  worker();
  for (auto& t : workers) t.join();
  if (failure) return *failure;
  run.stopped = progress.done < progress.total;
  std::sort(run.problems.begin(), run.problems.end(), [](auto& a, auto& b) { return a.index < b.index; });
  return run;
}

}  // namespace wand::reason

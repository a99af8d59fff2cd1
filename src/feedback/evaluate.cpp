#include "feedback/evaluate.h"

#include <fmt/core.h>
#include <fmt/ranges.h>
#include <openssl/evp.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <fstream>
#include <memory>
#include <set>

#include "common/output.h"
#include "common/text.h"

namespace wand::feedback {

namespace {

// One judged sample as pass@k and the summary see it.
struct Tally {
  std::size_t task = 0;  // position in the dataset
  bool passed = false;
  std::string error_class;
  double wall_s = 0;
};

// The report's numbers from its samples' tallies (in sample order), the one place they are
// computed: evaluate() and merge_shards() both end here, so a merged run's numbers are a single
// run's bit for bit (the per-task sums run in dataset order either way).
void aggregate(EvalReport& rep, std::size_t dataset_tasks, const std::vector<Tally>& tallies, const std::vector<int>& ks) {
  std::vector<int> n(dataset_tasks, 0), c(dataset_tasks, 0);
  std::vector<double> times;
  for (const Tally& t : tallies) {
    ++n[t.task];
    c[t.task] += t.passed;
    ++rep.outcomes[t.error_class];
    times.push_back(t.wall_s);
  }
  rep.samples = tallies.size();
  if (!times.empty()) {
    std::sort(times.begin(), times.end());
    auto pct = [&](double q) { return times[std::min(times.size() - 1, static_cast<std::size_t>(q * times.size()))]; };
    rep.sample_time_p50 = pct(0.5), rep.sample_time_p99 = pct(0.99);
  }
  for (std::size_t t = 0; t < n.size(); ++t) {
    rep.tasks += n[t] > 0;
    rep.tasks_unsolved += n[t] > 0 && c[t] == 0;
  }
  for (int k : ks) rep.pass_at_k[k] = mean_pass_at_k(n, c, k);
}

}  // namespace

std::string Shard::str() const { return fmt::format("{}/{}", index, count); }

Result<Shard> parse_shard(std::string_view text) {
  auto bad = [&] { return Error{fmt::format("--shard '{}': expected I/N with 0 <= I < N (for example 0/4)", text)}; };
  auto slash = text.find('/');
  if (slash == std::string_view::npos) return bad();
  Shard s;
  auto num = [](std::string_view t, int& v) {
    auto [end, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
    return !t.empty() && ec == std::errc() && end == t.data() + t.size();
  };
  if (!num(text.substr(0, slash), s.index) || !num(text.substr(slash + 1), s.count) || s.count < 1 || s.index < 0 ||
      s.index >= s.count)
    return bad();
  return s;
}

Result<std::string> file_sha256(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Error{fmt::format("{}: cannot read", path)};
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr);
  char buf[1 << 16];
  while (in.read(buf, sizeof buf) || in.gcount() > 0) EVP_DigestUpdate(ctx.get(), buf, static_cast<std::size_t>(in.gcount()));
  if (in.bad()) return Error{fmt::format("{}: read error", path)};
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned len = 0;
  EVP_DigestFinal_ex(ctx.get(), md, &len);
  std::string hex;
  for (unsigned i = 0; i < len; ++i) hex += fmt::format("{:02x}", md[i]);
  return hex;
}

Result<std::vector<EvalSample>> load_samples(const std::string& path, const std::vector<Task>& tasks) {
  std::map<std::string, std::size_t> index;
  for (std::size_t i = 0; i < tasks.size(); ++i) index[tasks[i].task_id] = i;
  std::vector<EvalSample> out;
  auto read = for_each_json_line(path, [&](int n, const Json& j) -> VoidResult {
    if (!j.is_object() || !j.contains("task_id") || !j.contains("completion") || !j["completion"].is_string())
      return Error{fmt::format("{} line {}: a sample needs fields task_id and completion (a string)", path, n)};
    std::string id = j["task_id"].is_string() ? j["task_id"].get<std::string>() : j["task_id"].dump();
    auto it = index.find(id);
    if (it == index.end()) return Error{fmt::format("{} line {}: task_id '{}' is not in the dataset", path, n, id)};
    out.push_back({it->second, j["completion"].get<std::string>()});
    return ok_status();
  });
  if (!read) return read.error();
  if (out.empty()) return Error{fmt::format("{}: no samples", path)};
  return out;
}

std::vector<EvalSample> reference_samples(const std::vector<Task>& tasks) {
  std::vector<EvalSample> out;
  for (std::size_t i = 0; i < tasks.size(); ++i)
    if (!tasks[i].reference.empty()) out.push_back({i, tasks[i].reference});
  return out;
}

VoidResult validate(const EvalOptions& opt) {
  const std::string& ans = opt.judge.answer;
  if (!(ans == "auto" || ans == "last-line" || (ans.starts_with("var:") && ans.size() > 4) ||
        (ans.starts_with("call:") && ans.size() > 5)))
    return Error{fmt::format("--answer '{}': expected auto, last-line, var:NAME or call:NAME", ans)};
  // NAME goes into the harness's Python as it is: `var:1bad` once made every sample a runtime error.
  if (const auto colon = ans.find(':'); colon != std::string::npos && !is_python_identifier(ans.substr(colon + 1)))
    return Error{fmt::format("--answer '{}': '{}' is not a Python name", ans, ans.substr(colon + 1))};
  for (int k : opt.ks)
    if (k <= 0) return Error{fmt::format("--k: '{}' is not a positive integer", k)};
  return ok_status();
}

std::optional<UnusedOption> unused_option(const JudgeOptions& judge, TaskKind kind) {
  if (judge.answer != "auto" && kind != TaskKind::answer)
    return UnusedOption{"answer", "answer tasks (GSM8K, PAL, SVAMP)"};
  if (judge.float_tol && kind != TaskKind::stdio) return UnusedOption{"float-tol", "stdin/stdout tasks"};
  if (judge.strict && kind != TaskKind::asserts) return UnusedOption{"strict", "assert tasks (HumanEval, MBPP)"};
  if (judge.partial_credit && kind == TaskKind::answer)  // one answer: nothing to give part of the credit for
    return UnusedOption{"partial-credit", "tasks with several tests (assert and stdin/stdout tasks)"};
  return std::nullopt;
}

std::size_t run_count(const std::vector<Task>& tasks, const std::vector<EvalSample>& samples, Shard shard) {
  std::size_t n = 0;
  for (const auto& s : samples)
    if (shard.holds(s.task)) n += tasks[s.task].kind == TaskKind::stdio ? tasks[s.task].io.size() : 1;
  return n;
}

EvalReport evaluate(sandbox::Sandbox& sb, const std::string& dataset, const std::vector<Task>& tasks,
                    const std::vector<EvalSample>& samples, const EvalOptions& opt, const std::function<void()>& on_run) {
  BatchRunner local = [&sb, &opt](const auto& reqs, const auto& on_done) { return sb.run_batch(reqs, on_done, opt.stop); };
  return evaluate(local, dataset, tasks, samples, opt, on_run);
}

EvalReport evaluate(const BatchRunner& run_batch, const std::string& dataset, const std::vector<Task>& tasks,
                    const std::vector<EvalSample>& samples, const EvalOptions& opt, const std::function<void()>& on_run) {
  EvalReport rep;
  rep.dataset = dataset;
  rep.format = tasks.empty() ? "" : tasks.front().format;
  std::vector<std::size_t> picked;  // the shard's samples, in sample order
  for (std::size_t i = 0; i < samples.size(); ++i)
    if (opt.shard.holds(samples[i].task)) picked.push_back(i);
  std::vector<int> n(tasks.size(), 0);
  std::vector<Tally> tallies;
  std::size_t batch = opt.batch_samples ? opt.batch_samples : std::max<std::size_t>(1, picked.size());
  auto stopped = [&] { return opt.stop && opt.stop->load(); };
  for (std::size_t lo = 0; lo < picked.size(); lo += batch) {
    std::size_t hi = std::min(picked.size(), lo + batch);
    if (stopped()) {
      rep.samples_not_run += picked.size() - lo;
      break;
    }
    // Every sample's requests (several for stdin/stdout tasks) in one batch over the cells.
    std::vector<Submission> subs;
    std::vector<sandbox::ExecRequest> reqs;
    std::vector<std::size_t> first_req;
    for (std::size_t p = lo; p < hi; ++p) {
      const EvalSample& sample = samples[picked[p]];
      const Task& task = tasks[sample.task];
      const std::string& completion = sample.completion;
      subs.push_back(prepare(task, opt.extract_code ? code_from_completion(task, completion) : completion, opt.judge));
      first_req.push_back(reqs.size());
      for (auto& r : subs.back().requests) reqs.push_back(r);
    }
    std::vector<char> ran(reqs.size(), 0);  // a byte per request: written by the runner's threads
    auto t0 = std::chrono::steady_clock::now();
    auto results = run_batch(reqs, [&](std::size_t i) {
      ran[i] = 1;
      if (on_run) on_run();
    });
    rep.wall_s += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    bool stopped_in_batch = stopped();
    for (std::size_t p = lo; p < hi; ++p) {
      const Submission& sub = subs[p - lo];
      std::span<const sandbox::ExecResult> rs(results.data() + first_req[p - lo], sub.requests.size());
      std::size_t task = samples[picked[p]].task;
      SampleResult r{.sample = picked[p], .task = task, .index_in_task = n[task]++};
      // A sample some of whose runs a stop skipped is not judged (it would count as failed).
      if (stopped_in_batch && !std::all_of(ran.begin() + first_req[p - lo],
                                           ran.begin() + first_req[p - lo] + sub.requests.size(), [](char c) { return c; })) {
        ++rep.samples_not_run;
        continue;
      }
      r.verdict = judge(tasks[task], sub, rs, opt.judge);
      r.status = rs.empty() ? sandbox::Status::ok : rs[0].status;
      for (auto& e : rs) r.wall_s += e.wall_s;
      tallies.push_back({task, r.verdict.passed, to_string(r.verdict.error), r.wall_s});
      rep.results.push_back(std::move(r));
    }
  }
  rep.interrupted = rep.samples_not_run > 0;
  aggregate(rep, tasks.size(), tallies, opt.ks);
  return rep;
}

Json EvalReport::summary() const {
  Json j = {{"dataset", dataset},
            {"format", format},
            {"samples", samples},
            {"wall_time", wall_s},
            {"samples_per_s", samples / wall_s},
            {"sample_time_p50", sample_time_p50},
            {"sample_time_p99", sample_time_p99},
            {"outcomes", outcomes},
            {"tasks", tasks},
            {"tasks_unsolved", tasks_unsolved}};
  Json passk = Json::object(), not_computed = Json::object();
  for (const auto& [k, p] : pass_at_k) {
    std::string name = fmt::format("pass@{}", k);
    if (p.value)
      passk[name] = *p.value;
    else if (p.tasks_with_fewer)
      not_computed[name] = {{"reason", p.why_not}, {"tasks_with_fewer_samples", p.tasks_with_fewer},
                            {"fewest_samples", p.fewest}};
  }
  j["pass_at_k_not_computed"] = not_computed;
  j["pass_at_k"] = passk;
  if (interrupted) {
    j["interrupted"] = true;
    j["samples_not_run"] = samples_not_run;
  }
  return j;
}

Json sample_json(const SampleResult& r, const std::vector<Task>& tasks) {
  Json j = r.verdict.to_json();
  j["task_id"] = tasks[r.task].task_id;
  j["sample"] = r.index_in_task;
  j["index"] = r.sample;
  j["task_index"] = r.task;
  j["status"] = sandbox::to_string(r.status);
  j["wall_time"] = r.wall_s;
  return j;
}

// --- shards and merging

Json options_json(const EvalOptions& opt) {
  const JudgeOptions& j = opt.judge;
  return {{"timeout", j.timeout_s},
          {"answer", j.answer},
          {"float_tol", j.float_tol ? Json(*j.float_tol) : Json(nullptr)},
          {"partial_credit", j.partial_credit},
          {"strict", j.strict},
          {"memory_mb", j.memory_mb},
          {"max_output_bytes", j.max_output_bytes},
          {"extract_code", opt.extract_code},
          {"k", opt.ks}};
}

namespace {
constexpr const char* kShardKey = "wand_eval_shard";
// Header fields that are the shard's own; every other field must agree between the shards.
const std::set<std::string> kPerShard = {"shard", "shard_samples", "wall_time", "dataset", "samples"};
}  // namespace

VoidResult write_shard(const std::string& path, const EvalReport& rep, const std::vector<Task>& tasks,
                       const EvalOptions& opt, const EvalOrigin& origin) {
  std::ofstream out(path, std::ios::trunc);
  if (!out) return Error{fmt::format("{}: cannot write", path)};
  Json header = {{"shard", opt.shard.str()},
                 {"dataset", rep.dataset},
                 {"format", rep.format},
                 {"dataset_sha256", origin.dataset_sha256},
                 {"dataset_tasks", origin.dataset_tasks},
                 {"samples", origin.samples},
                 {"samples_sha256", origin.samples_sha256},
                 {"samples_total", origin.samples_total},
                 {"shard_samples", rep.results.size()},
                 {"options", options_json(opt)},
                 {"wall_time", rep.wall_s}};
  out << Json{{kShardKey, header}}.dump() << "\n";
  for (const auto& r : rep.results) out << dump_text(sample_json(r, tasks)) << "\n";
  return flush_file(out, path);
}

Result<ShardSet> read_shards(const std::vector<std::string>& paths, const ShardFormat& format, const ShardRow& on_row) {
  if (paths.empty()) return Error{"--merge: no shard files"};
  ShardSet set;
  Json& common = set.common;
  std::string first;                        // the file the common header came from
  std::map<int, std::string> shard_file;    // shard index -> file
  std::map<std::size_t, std::string> item_file;  // item index -> file
  int count = 0;
  for (const auto& path : paths) {
    Shard shard;
    std::size_t expected_rows = 0, got_rows = 0;
    auto read = for_each_json_line(path, [&](int line, const Json& j) -> VoidResult {
      if (line > 1) {
        auto index = on_row(path, line, shard, set.headers.back(), j);
        if (!index) return index.error();
        if (auto [it, fresh] = item_file.emplace(*index, path); !fresh)
          return Error{fmt::format("{} line {}: {} {} is also in {}", path, line, format.item, *index, it->second)};
        ++got_rows;
        return ok_status();
      }
      if (!j.is_object() || !j.contains(format.key) || !j[format.key].is_object())
        return Error{fmt::format("{}: not a shard file (its first line has no {} header; {} writes them)", path, format.key,
                                 format.writer)};
      const Json& h = set.headers.emplace_back(j[format.key]);
      auto s = parse_shard(h.value("shard", ""));
      if (!s) return Error{fmt::format("{}: header field shard: {}", path, s.error().message)};
      shard = *s;
      expected_rows = h.value(format.count_field, std::size_t{0});
      Json mine = h;
      for (auto& f : format.per_shard) mine.erase(f);
      mine["shard_count"] = shard.count;
      if (first.empty()) {
        first = path, common = mine, count = shard.count;
      } else {
        for (auto& [key, value] : common.items())
          if (mine.value(key, Json()) != value)
            return Error{fmt::format("{}: header field {} is {}, but {} has {}: shards of different runs", path, key,
                                     mine.value(key, Json()).dump(), first, value.dump())};
      }
      if (auto [it, fresh] = shard_file.emplace(shard.index, path); !fresh)
        return Error{fmt::format("{}: shard {} is also in {} (overlapping shards)", path, shard.str(), it->second)};
      return ok_status();
    });
    if (!read) return read.error();
    if (got_rows != expected_rows)
      return Error{fmt::format("{}: holds {} {}s, its header says {} (a truncated file?)", path, got_rows, format.item,
                               expected_rows)};
  }
  std::vector<std::string> missing;
  for (int i = 0; i < count; ++i)
    if (!shard_file.count(i)) missing.push_back(Shard{i, count}.str());
  if (!missing.empty())
    return Error{fmt::format("--merge: missing shard{} {} ({} of {} files given)", missing.size() > 1 ? "s" : "",
                             fmt::join(missing, ", "), paths.size(), count)};
  return set;
}

Result<MergedEval> merge_shards(const std::vector<std::string>& paths) {
  MergedEval m;
  std::map<std::size_t, Json> rows;
  std::map<std::size_t, Tally> tallies;
  ShardFormat format{kShardKey, "wand eval --shard I/N --out FILE", "shard_samples", "sample", kPerShard};
  auto set = read_shards(paths, format, [&](const std::string& path, int line, Shard shard, const Json& h,
                                            const Json& j) -> Result<std::size_t> {
    const Json* f[5];
    const char* names[5] = {"index", "task_index", "passed", "error_class", "wall_time"};
    for (int i = 0; i < 5; ++i) {
      auto it = j.is_object() ? j.find(names[i]) : j.end();
      if (!j.is_object() || it == j.end()) return Error{fmt::format("{} line {}: the row has no field {}", path, line, names[i])};
      f[i] = &*it;
    }
    if (!f[0]->is_number_unsigned() || !f[1]->is_number_unsigned() || !f[2]->is_boolean() || !f[3]->is_string() ||
        !f[4]->is_number())
      return Error{fmt::format("{} line {}: index, task_index, passed, error_class or wall_time has the wrong type", path, line)};
    std::size_t index = *f[0], task = *f[1];
    if (task >= h.value("dataset_tasks", std::size_t{0}) || !shard.holds(task))
      return Error{fmt::format("{} line {}: task_index {} does not belong to shard {}", path, line, task, shard.str())};
    if (index >= h.value("samples_total", std::size_t{0}))
      return Error{fmt::format("{} line {}: sample index {} is past the header's samples_total", path, line, index)};
    tallies[index] = {task, f[2]->get<bool>(), f[3]->get<std::string>(), f[4]->get<double>()};
    rows[index] = j;
    return index;
  });
  if (!set) return set.error();
  m.header = set->common;
  std::vector<int> ks;
  std::size_t dataset_tasks = 0, samples_total = 0;
  try {
    ks = m.header.at("options").at("k").get<std::vector<int>>();
    dataset_tasks = m.header.at("dataset_tasks").get<std::size_t>();
    samples_total = m.header.at("samples_total").get<std::size_t>();
  } catch (const Json::exception&) {
    return Error{fmt::format("{}: header fields options.k, dataset_tasks and samples_total are needed", paths.front())};
  }
  if (rows.size() != samples_total)
    return Error{fmt::format("--merge: the shards hold {} samples; the run had {}", rows.size(), samples_total)};
  m.report.dataset = set->headers.front().value("dataset", "");
  m.report.format = m.header.value("format", "");
  for (const Json& h : set->headers) m.report.wall_s += h.value("wall_time", 0.0);
  std::vector<Tally> ordered;
  for (auto& [index, t] : tallies) ordered.push_back(std::move(t));
  for (auto& [index, row] : rows) m.rows.push_back(std::move(row));
  aggregate(m.report, dataset_tasks, ordered, ks);
  return m;
}

}  // namespace wand::feedback

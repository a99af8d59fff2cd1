// `wand eval`: judges completions (or a dataset's reference solutions) the way the field does,
// every sample isolated in the sandbox, and reports pass@k.
#include <fmt/core.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "cli/commands.h"
#include "cli/options.h"
#include "common/output.h"
#include "common/progress.h"
#include "feedback/evaluate.h"
#include "feedback/remote.h"
#include "feedback/report_html.h"

namespace wand::cli {
namespace {

struct EvalArgs {
  std::string dataset, samples, out, html, k = "1,10,100", shard;
  std::vector<std::string> merge;
  bool reference = false, json = false;
  std::size_t cells = 0;
  feedback::EvalOptions eval;
  feedback::RemoteOptions remote;  // --remote: runs on a `wand serve --exec` instead of here
};

// Writes a whole file; errors name the option and the path.
VoidResult write_text(const std::string& option, const std::string& path, const std::string& text) {
  std::ofstream f(path);
  if (!f) return Error{fmt::format("{} {}: cannot write", option, path)};
  f << text;
  if (auto w = flush_file(f, path); !w) return Error{option + " " + w.error().message};
  return ok_status();
}

// The summary on stdout: JSON (--json) or a few lines.
void print_summary(const EvalArgs& a, const feedback::EvalReport& report) {
  Json summary = report.summary();
  if (a.json) {
    fmt::print("{}\n", summary.dump(2));
  } else {
    fmt::print("{} ({}): {} tasks, {} samples in {:.1f} s ({:.1f} samples/s; per sample p50 {:.0f} ms, p99 {:.0f} ms)\n",
               report.dataset, report.format, report.tasks, report.samples, report.wall_s,
               report.samples / report.wall_s, 1e3 * report.sample_time_p50, 1e3 * report.sample_time_p99);
    for (auto& [k, v] : summary["pass_at_k"].items()) fmt::print("  {:<14} {:.4f}\n", k, v.get<double>());
    for (auto& [k, v] : summary["pass_at_k_not_computed"].items())
      fmt::print("  {:<14} not computed: {}\n", k, v["reason"].get<std::string>());
    fmt::print("  {:<14} {}\n", "tasks unsolved", report.tasks_unsolved);
    fmt::print("  outcomes:\n");
    for (auto& [k, v] : report.outcomes) fmt::print("    {:<14} {}\n", k == "none" ? "passed" : k, v);
    if (!a.out.empty()) fmt::print("per-sample results: {}\n", a.out);
    if (!a.html.empty()) fmt::print("report: {}\n", a.html);
  }
}

// --merge: one run's numbers and per-sample rows from its shard files.
int merge_eval(const EvalArgs& a) {
  auto m = feedback::merge_shards(a.merge);
  if (!m) {
    fmt::print(stderr, "wand eval: {}\n", m.error().message);
    return kExitBadInput;
  }
  if (!a.out.empty()) {
    std::string lines;
    for (const auto& row : m->rows) lines += dump_text(row) + "\n";
    if (auto w = write_text("--out", a.out, lines); !w) {
      fmt::print(stderr, "wand eval: {}\n", w.error().message);
      return kExitOutput;
    }
  }
  print_summary(a, m->report);
  return kExitOk;
}

int run_eval(EvalArgs& a) {
  if (!a.merge.empty()) return merge_eval(a);
  if (a.dataset.empty()) {
    fmt::print(stderr, "wand eval: --dataset is required (or --merge SHARD...)\n");
    return kExitBadInput;
  }
  if (!a.shard.empty()) {
    auto shard = feedback::parse_shard(a.shard);
    if (!shard) {
      fmt::print(stderr, "wand eval: {}\n", shard.error().message);
      return kExitBadInput;
    }
    if (a.out.empty()) {
      fmt::print(stderr, "wand eval: --shard {} needs --out FILE: the shard file that --merge reads\n", a.shard);
      return kExitBadInput;
    }
    a.eval.shard = *shard;
  }
  auto tasks = feedback::load_tasks(a.dataset);
  if (!tasks) {
    fmt::print(stderr, "wand eval: {}\n", tasks.error().message);
    return kExitBadInput;
  }
  if (auto unused = feedback::unused_option(a.eval.judge, tasks->front().kind)) {  // one format a file
    fmt::print(stderr, "wand eval: --{}: {} holds {} tasks; --{} is for {}\n", unused->name, a.dataset,
               tasks->front().format, unused->name, unused->used_by);
    return kExitBadInput;
  }
  if (a.reference == !a.samples.empty()) {
    fmt::print(stderr, "wand eval: give exactly one of --samples FILE or --reference\n");
    return kExitBadInput;
  }
  a.eval.ks.clear();
  std::istringstream kin(a.k);
  for (std::string t; std::getline(kin, t, ',');) a.eval.ks.push_back(std::atoi(t.c_str()));
  if (auto v = feedback::validate(a.eval); !v) {
    fmt::print(stderr, "wand eval: {}\n", v.error().message);
    return kExitBadInput;
  }
  std::vector<feedback::EvalSample> samples;
  if (a.reference) {
    samples = feedback::reference_samples(*tasks);
    if (samples.empty()) {
      fmt::print(stderr, "wand eval: --reference: {} has no reference solutions ({} format)\n", a.dataset,
                 tasks->front().format);
      return kExitBadInput;
    }
    if (samples.size() < tasks->size())
      fmt::print(stderr, "wand eval: {} of {} tasks have no reference solution; they are skipped\n",
                 tasks->size() - samples.size(), tasks->size());
  } else {
    auto s = feedback::load_samples(a.samples, *tasks);
    if (!s) {
      fmt::print(stderr, "wand eval: {}\n", s.error().message);
      return kExitBadInput;
    }
    samples = std::move(s.value());
  }
  // Ctrl-C (or SIGTERM) stops starting runs; the samples judged so far are reported and
  // written, and the exit is 130. A second Ctrl-C ends wand at once.
  std::atomic<bool>& stop = catch_stop_signals();
  a.eval.stop = &stop;
  Progress progress("eval", feedback::run_count(*tasks, samples, a.eval.shard));
  feedback::EvalReport report;
  if (!a.remote.url.empty()) {
    // Remote runs: a service that could not answer a batch fails the evaluation (exit 3) rather
    // than counting its samples as failed.
    std::optional<Error> failed;
    feedback::BatchRunner remote = [&](const auto& reqs, const auto& on_done) {
      auto r = failed ? Result<std::vector<sandbox::ExecResult>>(*failed) : feedback::run_remote(a.remote, reqs, on_done, &stop);
      if (r) return std::move(*r);
      failed = r.error();
      return std::vector<sandbox::ExecResult>(reqs.size());
    };
    report = feedback::evaluate(remote, a.dataset, *tasks, samples, a.eval, [&] { progress.tick(); });
    progress.finish();
    if (failed) {
      fmt::print(stderr, "wand eval: --remote: {}\n", failed->message);
      return failed->code == kOptionConflict ? kExitBadInput : kExitSandbox;
    }
  } else {
    sandbox::Options o;
    o.cells = a.cells;
    o.preload = feedback::kEvalPreload;
    auto sb = sandbox::Sandbox::create(o);
    if (!sb) {
      fmt::print(stderr, "wand eval: sandbox unavailable: {}\n", sb.error().message);
      return kExitSandbox;
    }
    report = feedback::evaluate(**sb, a.dataset, *tasks, samples, a.eval, [&] { progress.tick(); });
    progress.finish();
  }

  if (report.interrupted)
    fmt::print(stderr, "wand eval: interrupted: {} samples judged, {} not run{}\n", report.samples, report.samples_not_run,
               !a.shard.empty() ? fmt::format("; --out {} not written (a shard file holds all of its shard's samples: "
                                              "run --shard {} again)", a.out, a.shard)
               : !a.out.empty() ? fmt::format("; --out {} holds the judged ones", a.out)
                                : std::string());
  if (!a.shard.empty()) {
    // An interrupted shard writes nothing: --merge must never take part of a shard for all of it.
    if (!report.interrupted) {
      feedback::EvalOrigin origin{.dataset_tasks = tasks->size(), .samples = a.reference ? "reference" : a.samples,
                                  .samples_total = samples.size()};
      auto dsha = feedback::file_sha256(a.dataset);
      auto ssha = a.reference ? Result<std::string>(std::string()) : feedback::file_sha256(a.samples);
      if (!dsha || !ssha) {
        fmt::print(stderr, "wand eval: {}\n", (!dsha ? dsha : ssha).error().message);
        return kExitBadInput;
      }
      origin.dataset_sha256 = *dsha, origin.samples_sha256 = *ssha;
      if (auto w = feedback::write_shard(a.out, report, *tasks, a.eval, origin); !w) {
        fmt::print(stderr, "wand eval: --out {}\n", w.error().message);
        return kExitOutput;
      }
    }
  } else if (!a.out.empty()) {
    // Opened only now (--out was checked writable before any work): a wand killed part-way
    // leaves an earlier file as it was instead of empty; Ctrl-C writes the samples judged.
    std::ofstream out(a.out, std::ios::trunc);
    if (!out) {
      fmt::print(stderr, "wand eval: --out {}: cannot write\n", a.out);
      return kExitOutput;
    }
    for (const auto& r : report.results)
      out << dump_text(feedback::sample_json(r, *tasks)) << "\n";
    if (auto w = flush_file(out, a.out); !w) {
      fmt::print(stderr, "wand eval: --out {}\n", w.error().message);
      return kExitOutput;
    }
  }
  if (!a.html.empty())
    if (auto w = write_text("--html", a.html, feedback::report_html(report, *tasks)); !w) {
      fmt::print(stderr, "wand eval: {}\n", w.error().message);
      return kExitOutput;
    }
  print_summary(a, report);
  return report.interrupted ? kExitInterrupted : kExitOk;
}

}  // namespace

Command add_eval(CLI::App& app) {
  auto a = std::make_shared<EvalArgs>();
  auto* cmd = app.add_subcommand("eval", "Judge completions against a code benchmark, in the sandbox");
  cmd->footer(
      "Datasets (JSONL; the format is recognised from the fields):\n"
      "  HumanEval  task_id, prompt, canonical_solution, test, entry_point\n"
      "  MBPP       task_id, text, code, test_list, [test_setup_code]\n"
      "  stdio      inputs + outputs (or APPS' input_output), [solutions]\n"
      "  GSM8K      question, answer ('... #### 18')\n"
      "  PAL        input, target, [code]   (gsm, gsmhardv2, asdiv, ... from PAL's repository)\n"
      "  SVAMP      ID, Body, Question, Answer   (SVAMP.json: one JSON array)\n"
      "Samples: JSONL of {task_id, completion}, as HumanEval's tooling writes them (tasks without a task_id\n"
      "are numbered from 0). Each assertion is judged on its own; answer tasks compare numbers with\n"
      "tolerance (fractions, percentages, thousands separators). --strict runs the tests in a process that\n"
      "never loads the sample (for rewards a sample must not forge; README: threat model).\n"
      "On a cluster: --shard I/N --out FILE on each machine, then --merge FILE... (README: Batch jobs on a cluster).\n"
      "Exit status: 0 evaluated (whatever passed); 2 bad input; 3 sandbox unavailable (or the --remote service not answering); 4 results not written.");
  std::vector<CLI::Option*> run_options;  // what --merge does not take: the shards recorded them
  run_options.push_back(
      cmd->add_option("--dataset", a->dataset, "Tasks (HumanEval, MBPP, stdin/stdout, GSM8K or PAL format)"));
  run_options.push_back(cmd->add_option("--samples", a->samples, "Completions to judge"));
  run_options.push_back(cmd->add_flag("--reference", a->reference, "Judge the dataset's own reference solutions"));
  run_options.push_back(cmd->add_option("--shard", a->shard,
                                        "I/N: judge only the tasks whose dataset position is I modulo N, writing a shard "
                                        "file to --out (README: Batch jobs on a cluster)"));
  cmd->add_option("--merge", a->merge, "SHARD...: one run's summary (and --out rows) from its shard files")->expected(1, 100000);
  run_options.push_back(cmd->add_option("--k", a->k, "pass@k values, comma-separated (computed where every task has n >= k; else said why not)")
      ->default_val("1,10,100")
      ->check(integer_list({.lo = 1, .hi = 1e6, .integer = true})));
  run_options.push_back(cmd->add_option("--timeout", a->eval.judge.timeout_s, "Seconds per run")->default_val(10)->check(number(kSeconds)));
  run_options.push_back(cmd->add_option("--answer", a->eval.judge.answer, "Answer tasks: auto, last-line, var:NAME or call:NAME")
      ->default_val("auto"));
  run_options.push_back(cmd->add_option("--float-tol", a->eval.judge.float_tol, "stdin/stdout tasks: relative tolerance for numbers")
      ->check(number(kProbability)));
  run_options.push_back(cmd->add_flag("--extract-code", a->eval.extract_code,
                "Take each completion's code out of prose and ``` fences (chat models' output; README: wand eval)"));
  run_options.push_back(cmd->add_flag("--partial-credit", a->eval.judge.partial_credit, "Reward failing samples by the share of tests passed"));
  run_options.push_back(cmd->add_flag("--strict", a->eval.judge.strict,
                "Assert tasks: run the tests in a process that never loads the sample (slower; verdicts it cannot forge)"));
  run_options.push_back(cmd->add_option("--memory", a->eval.judge.memory_mb, "Memory limit per run in MiB")
      ->default_val(a->eval.judge.memory_mb)
      ->check(number(kMemoryMiB)));
  run_options.push_back(cmd->add_option("--max-output", a->eval.judge.max_output_bytes, "Bytes kept per output stream before a run is stopped")
      ->default_val(a->eval.judge.max_output_bytes)
      ->check(number(kOutputBytes)));
  run_options.push_back(cmd->add_option("--html", a->html, "Write a one-page HTML report")->check(writable_file()));
  cmd->add_option("--out", a->out, "Per-sample results as JSON lines")->check(writable_file());
  auto* cells = cmd->add_option("--cells", a->cells, "Parallel cells (default: number of cores)")->check(parallel(false));
  run_options.push_back(cells);
  run_options.push_back(cmd->add_option("--remote", a->remote.url,
                  "Run the samples on a `wand serve --exec` (or a load balancer before several) at this URL instead of "
                  "here: POST URL/v1/exec, retried when a worker does not answer")
      ->excludes(cells)
      ->check([](const std::string& url) {
        feedback::RemoteOptions r;
        r.url = url;
        auto ok = feedback::validate(r);
        return ok ? std::string() : ok.error().message;
      }));
  cmd->add_option("--remote-token", a->remote.token, "--remote: the server's bearer token")->envname("WAND_REMOTE_TOKEN");
  run_options.push_back(cmd->add_option("--remote-timeout", a->remote.timeout_s,
                                        "--remote: seconds to wait for one POST of a batch before retrying it")
                            ->default_val(a->remote.timeout_s)
                            ->check(number(kSeconds))
                            ->needs("--remote"));
  cmd->add_flag("--json", a->json, "Print the summary as JSON");
  return [a, run_options] {
    for (auto same : {same_output_file("--out", a->out, "--html", a->html), output_is_an_input("--merge", a->merge, a->out, a->html),
                      output_is_an_input("--dataset", {a->dataset}, a->out, a->html),
                      output_is_an_input("--samples", {a->samples}, a->out, a->html)})
      if (!same.empty()) {
        fmt::print(stderr, "wand eval: {}\n", same);
        return kExitBadInput;
      }
    // --remote-token without --remote: refused when typed, not when it comes from the exported
    // WAND_REMOTE_TOKEN (which local runs inherit and need not unset).
    const char* env_token = std::getenv("WAND_REMOTE_TOKEN");
    if (a->remote.url.empty() && !a->remote.token.empty() && (!env_token || a->remote.token != env_token)) {
      fmt::print(stderr, "wand eval: --remote-token: needs --remote (the token is sent to that server)\n");
      return kExitBadInput;
    }
    if (!a->merge.empty())
      for (auto* o : run_options)
        if (o->count()) {
          fmt::print(stderr, "wand eval: {}\n",
                     o->get_name() == "--html"
                         ? "--html: --merge writes no HTML report (the shard files hold the samples' rows, not the tasks "
                           "a report shows); --out writes the merged rows"
                         : o->get_name() + ": not an option of --merge, which reads the shards' recorded options");
          return kExitBadInput;
        }
    return run_eval(*a);
  };
}

}  // namespace wand::cli

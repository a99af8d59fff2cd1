// `wand export`: a wand-train checkpoint into a GGUF model (--checkpoint), or a recorded run into
// training data (--run, src/codegen/export.h). The modes share only --out and --tokenizer.
#include <fmt/core.h>

#include <fstream>
#include <iostream>
#include <sstream>

#include "agent/record.h"
#include "cli/commands.h"
#include "cli/options.h"
#include "codegen/export.h"
#include "store/store.h"
#include "train/corpus.h"
#include "train/export.h"

namespace wand::cli {
namespace {

int fail_export(const std::string& message, int code = kExitBadInput) {
  fmt::print(stderr, "wand export: {}\n", message);
  return code;
}

struct RunExport {
  std::string run, store, out, corpus, tokenizer;
  codegen::ExportOptions opt;
};

// Which of a run's problems are test questions: "" when none, else what to say ("12 of 12
// problems of run ID are test questions (multiarith 12)"). The test sets are the shared data's
// (MultiArith, ASDiv, SVAMP, GSM8K test; for code runs HumanEval and MBPP's test split) and the
// shipped held-out sets; an agent run on an environment's held-out split is one whole.
std::string test_questions(const store::Run& run, const std::string& id) {
  const auto& config = run.info.config;
  if (config.kind == "agent")
    return config.dataset.ends_with("/held-out") ? fmt::format("run {} is on the held-out split ({}), a test set", id, config.dataset)
                                                 : "";
  bool code = config.kind == "code";
  auto sets = code ? train::default_code_test_sets(shared_data_dir()) : train::default_test_sets(shared_data_dir());
  for (const char* shipped : code ? std::vector<const char*>{"heldout-functions.jsonl", "heldout-functions-templates.jsonl"}
                                  : std::vector<const char*>{"heldout-templates.jsonl", "heldout-numbers.jsonl"})
    sets.push_back({.name = shipped, .path = models_dir() + "/" + shipped});
  auto d = train::Decontaminator::load(sets);
  if (!d) return "";  // an unreadable test set: the corpus and improve say so where they need one
  int n = 0;
  for (const auto& p : run.problems) n += d->contaminated(p.input);
  if (!n) return "";
  std::string by_set;
  const Json report = d->report();  // held: a loop over a temporary's member would dangle
  for (auto& [name, set] : report["sets"].items())
    if (set.value("exact_matches", 0) > 0) by_set += fmt::format("{}{} {}", by_set.empty() ? "" : ", ", name, set["exact_matches"].get<long long>());
  return fmt::format("{} of {} problems of run {} are test questions ({})", n, run.problems.size(), id, by_set);
}

int export_run(const RunExport& e) {
  auto fail = [](int code, const std::string& m) { return fail_export(m, code); };
  bool trajectories = e.opt.format == "trajectories";
  if (!trajectories)
    if (auto v = codegen::validate(e.opt); !v) return fail(kExitBadInput, v.error().message);
  auto s = store::Store::open(e.store.empty() ? store::default_store_path() : e.store, /*create=*/false);
  if (!s) return fail(kExitBadInput, store_error(e.store, s.error().message));
  auto id = (*s)->resolve_id(e.run);
  if (!id) return fail(kExitBadInput, "--run " + id.error().message);
  auto run = (*s)->get_run(*id);
  if (!run) return fail(kExitBadInput, "--run " + run.error().message);
  bool agent_run = run->info.config.kind == "agent";
  if (trajectories && !agent_run)
    return fail(kExitBadInput, fmt::format("--format trajectories: run {} is {} {} run; trajectories are an agent run's", *id,
                                           std::string("aeiou").find(run->info.config.kind.front()) != std::string::npos ? "an" : "a",
                                           run->info.config.kind));
  if (agent_run && e.opt.format != "sft" && !trajectories)
    return fail(kExitBadInput, fmt::format("--format {}: agent run {} exports as trajectories or sft", e.opt.format, *id));
  // Rows made from a test set's questions would train on the test set: said, and refused for
  // --corpus (rows that go straight to wand-train).
  if (auto held = test_questions(*run, *id); !held.empty()) {
    if (!e.corpus.empty()) return fail(kExitBadInput, "--corpus: " + held + "; a training corpus is never made from a test set");
    fmt::print(stderr, "wand export: warning: {}; do not train on these rows\n", held);
  }
  std::ofstream file;
  if (!e.out.empty()) {
    file.open(e.out);
    if (!file) return fail(kExitBadInput, fmt::format("--out {}: cannot write", e.out));
  }
  std::stringstream rows;  // --corpus: the rows are tokenized (and written to --out only when given)
  std::ostream& out = !e.corpus.empty() ? static_cast<std::ostream&>(rows) : e.out.empty() ? std::cout : file;
  // The rows, and the line that sums them up: an agent's steps in the compact format
  // (src/agent/record.h), or a code/solve run's verified samples (src/codegen/export.h).
  std::string summary;
  if (agent_run) {
    auto t = agent::export_trajectories(*run, e.opt.format, out);
    if (!t) return fail(kExitOutput, t.error().message);
    summary = fmt::format("{} {} rows from agent run {} ({} tasks; {} unsuccessful tasks skipped)", t->rows, e.opt.format,
                          *id, t->tasks, t->skipped);
  } else {
    auto stats = codegen::export_training_data(*run, e.opt, out);
    if (!stats) return fail(kExitOutput, stats.error().message);
    summary = fmt::format("{} {} rows from run {} ({} tasks; {} duplicate programs dropped; {} rows over --per-task{}{})",
                          stats->rows, e.opt.format, *id, stats->tasks, stats->duplicates, stats->capped,
                          stats->unlabelled ? fmt::format("; {} problems without a label skipped", stats->unlabelled) : "",
                          stats->flaky ? fmt::format("; {} programs judged both passing and failing left out", stats->flaky)
                                       : "");
  }
  if (!e.corpus.empty()) {
    if (!e.out.empty() && !(file << rows.str() << std::flush)) return fail(kExitOutput, fmt::format("--out {}: write failed", e.out));
    if (e.opt.format == "dpo") {  // pairs for wand-train --dpo
      std::vector<train::PreferencePair> pairs;
      for (std::string line; std::getline(rows, line);) {
        auto row = Json::parse(line);  // each side's text as document_of gives it (a chat prompt's turns, one a line)
        pairs.push_back({codegen::document_of({{"prompt", row["prompt"]}}), codegen::document_of({{"completion", row["chosen"]}}),
                         codegen::document_of({{"completion", row["rejected"]}})});
      }
      if (pairs.empty()) return fail(kExitFailed, fmt::format("run {} has no passing and failing sample of one prompt", *id));
      auto m = train::write_pair_corpus(pairs, e.tokenizer, e.corpus, {{"run_id", *id}, {"format", "dpo"}});
      if (!m) return fail(kExitBadInput, "--corpus " + m.error().message);
      fmt::print(stderr, "wrote {} pairs ({} tokens) to {} for wand-train --dpo --data {}\n", pairs.size(),
                 (*m)["tokens"].get<long long>(), e.corpus, e.corpus);
      fmt::print(stderr, "{}\n", summary);
      return kExitOk;
    }
    std::vector<std::string> documents;
    for (std::string line; std::getline(rows, line);) documents.push_back(codegen::document_of(Json::parse(line)));
    if (documents.empty())
      return fail(kExitFailed, fmt::format("run {} has no {} to train on", *id,
                                           agent_run                     ? "successful tasks"
                                           : e.opt.format == "verifier" ? "answered samples with a label"
                                                                        : "verified samples"));
    auto m = train::write_document_corpus(documents, e.tokenizer, e.corpus,
                                          {{"run_id", *id}, {"format", agent_run ? "agent-sft" : e.opt.format}});
    if (!m) return fail(kExitBadInput, "--corpus " + m.error().message);
    fmt::print(stderr, "wrote {} documents ({} tokens) to {} for wand-train --data {}\n", documents.size(),
               (*m)["tokens"].get<long long>(), e.corpus, e.corpus);
  }
  fmt::print(stderr, "{}\n", summary);
  return kExitOk;
}

}  // namespace

// Why --corpus must not write into `dir`: it holds files that are not an earlier export's (a
// `wand corpus` output, whose held-out sets would stay beside the new tokens); "" when it is new,
// empty, or an export's (its manifest's source names the run it came from).
std::string foreign_folder(const std::string& dir) {
  std::error_code ec;
  if (!std::filesystem::exists(dir, ec)) return "";
  if (!std::filesystem::is_directory(dir, ec)) return dir + ": not a folder";
  if (std::filesystem::is_empty(dir, ec)) return "";
  std::ifstream in(std::filesystem::path(dir) / "manifest.json");
  Json manifest = Json::parse(in, nullptr, /*allow_exceptions=*/false);
  // An export's manifest names the run its rows came from: {"source": {"run_id": ...}}.
  if (manifest.is_object() && manifest.value("source", Json()).is_object() && manifest["source"].contains("run_id"))
    return "";
  return dir + ": holds files that are not an earlier export's (a `wand corpus` output?); give a new or empty folder";
}

Command add_export(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "export",
      "A wand-train checkpoint into a GGUF model (--checkpoint), a GGUF model into a checkpoint (--model), or a "
      "recorded run into training data (--run)");
  auto o = std::make_shared<train::ExportOptions>();
  auto e = std::make_shared<RunExport>();
  auto* ckpt = cmd->add_option("--checkpoint", o->checkpoint, "checkpoint.wckpt from wand-train");
  auto model = std::make_shared<std::string>();
  auto* from_model = cmd->add_option("--model", *model,
                                     "A GGUF model (wand's own, or any of its architecture) into a wand-train checkpoint "
                                     "(--out X.wckpt; quantized matrices dequantized), to continue training it: "
                                     "wand-train --init X.wckpt with a corpus made with --tokenizer of the model")
                         ->check(CLI::ExistingFile);
  auto* tok = cmd->add_option("--tokenizer", o->tokenizer, "tokenizer.gguf of the corpus it was trained on");
  auto* gguf_out = cmd->add_option("--out", o->out,
                                   "Output: the .gguf; with --model, the checkpoint; with --run, the JSONL (default: "
                                   "standard output)")
                       ->check(writable_file());
  auto* ty = add_matrix_type_option(cmd, o->type);
  auto* pf = cmd->add_option("--prompt-format", o->prompt_format,
                             "pot (programs), pot-numbers (programs over the question's numbers as names n0, n1, ...: corpus --number-names), pot-delex (the same, delexicalized: corpus --number-names --delexicalize), cot (rationales), func (functions: the code model), agent (CodeAct "
                             "steps), agent_json (JSON tool calls) or verifier (an outcome verifier: src/reason/verifier.h)")->capture_default_str();
  auto* nm = cmd->add_option("--name", o->name, "general.name in the file")->capture_default_str();
  auto* run = cmd->add_option("--run", e->run, "A recorded run's id (or a unique prefix): export its training data");
  auto* fmt_opt = cmd->add_option("--format", e->opt.format,
                                  "With --run: sft, dpo, rewards or verifier (every answered sample's program and answer, labelled 1 or 0: an outcome verifier's data); agent runs: trajectories (one JSON line per task) or sft "
                                  "(the compact CodeAct format, one row per step)")
                      ->check(CLI::IsMember({"sft", "dpo", "rewards", "verifier", "trajectories"}))
                      ->capture_default_str();
  auto* shape = cmd->add_option("--shape", e->opt.shape, "sft rows: prompt-completion (TRL) or messages (OpenAI chat)")
                    ->check(CLI::IsMember({"prompt-completion", "messages"}))
                    ->capture_default_str();
  auto* cap = cmd->add_option("--per-task", e->opt.per_task, "Rows (dpo: pairs) per task at most; 0: no cap")
                  ->check(number({.lo = 0, .hi = 1e6, .integer = true}))
                  ->capture_default_str();
  auto* balanced = cmd->add_flag("--balanced", e->opt.balanced,
                                 "--format verifier: only tasks with right and wrong answers, as many wrong rows as right");
  auto* st = add_store_option(cmd, e->store);
  auto* corpus = cmd->add_option("--corpus", e->corpus,
                                 "With --run --format sft, verifier or dpo: also a token corpus for wand-train --init CHECKPOINT "
                                 "--data DIR (sft; verifier: with --objective final) or --dpo --data DIR (needs --tokenizer: the model's GGUF); a new or "
                                 "empty folder, or one an earlier export wrote");
  for (auto* opt : {ckpt, ty, pf, nm}) run->excludes(opt);
  for (auto* opt : {ckpt, tok, ty, pf, nm, run}) from_model->excludes(opt);
  for (auto* opt : {fmt_opt, shape, cap, balanced, st, corpus}) opt->needs(run);
  return [o, e, run, ckpt, tok, gguf_out, corpus, from_model, model] {
    // --out written over an input (the model, the checkpoint, its tokenizer, the run store)
    // would destroy it before it is read whole.
    for (auto same : {output_is_an_input("--model", {*model}, o->out, ""), output_is_an_input("--checkpoint", {o->checkpoint}, o->out, ""),
                      output_is_an_input("--tokenizer", {o->tokenizer}, o->out, ""),
                      run->count() ? output_is_the_store(e->store, o->out) : std::string()})
      if (!same.empty()) return fail_export(same);
    if (from_model->count()) {
      if (!gguf_out->count()) return fail_export("--model needs --out (the checkpoint to write)");
      auto w = train::weights_from_gguf(*model);
      if (!w) return fail_export("--model " + w.error().message);
      if (auto c = train::write_checkpoint(o->out, *w, *model); !c) return fail_export(c.error().message);
      fmt::print("wrote {}\n", o->out);
      return kExitOk;
    }
    if (run->count()) {
      // --tokenizer belongs to both modes: with --run it is the tokenizer of --corpus.
      if (tok->count() && !corpus->count())
        return fail_export("--tokenizer with --run goes with --corpus DIR (the tokens for wand-train)");
      if (corpus->count() && !tok->count()) return fail_export("--corpus needs --tokenizer (the model's GGUF, or its tokenizer.gguf)");
      if (corpus->count() && e->opt.format != "sft" && e->opt.format != "dpo" && e->opt.format != "verifier")
        return fail_export("--corpus takes sft or verifier rows (wand-train --init) or dpo pairs (wand-train --dpo): use "
                           "--format sft, verifier or dpo");
      if (corpus->count())
        if (auto held = foreign_folder(e->corpus); !held.empty()) return fail_export("--corpus " + held);
      e->out = o->out;
      e->tokenizer = o->tokenizer;
      return export_run(*e);
    }
    if (!ckpt->count() || !tok->count() || !gguf_out->count())
      return fail_export("give --checkpoint, --tokenizer and --out (a GGUF model), --model and --out (a checkpoint), or --run ID (training data)");
    if (auto r = train::export_model(*o); !r) {
      fmt::print(stderr, "wand export: {}\n", r.error().message);
      return kExitBadInput;
    }
    fmt::print("wrote {}\n", o->out);
    return kExitOk;
  };
}

}  // namespace wand::cli

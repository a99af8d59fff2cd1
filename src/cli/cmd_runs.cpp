// `wand runs list|show|export`: reads the run store (src/store); only the printing lives here.
#include <fmt/core.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>

#include "agent/record.h"
#include "cli/commands.h"
#include "cli/options.h"
#include "common/output.h"
#include "store/store.h"

namespace wand::cli {
namespace {

struct RunsArgs {
  std::string store, kind, id, out;
  int limit = 20;
  bool json = false, steps = false;
};

void add_store(CLI::App* cmd, RunsArgs& a) {
  add_store_option(cmd, a.store);
}

std::string store_path(const RunsArgs& a) { return a.store.empty() ? store::default_store_path() : a.store; }

// Opens an existing store; prints the error and returns null when it cannot.
std::unique_ptr<store::Store> open_existing(const RunsArgs& a) {
  auto s = store::Store::open(store_path(a), /*create=*/false);
  if (!s) {
    fmt::print(stderr, "wand runs: {}\n", s.error().message);
    return nullptr;
  }
  return std::move(*s);
}

// Long paths and model specs keep their informative end.
std::string tail(const std::string& s, size_t width) {
  if (s.size() <= width) return s;
  size_t from = s.size() - (width - 1);
  while (from < s.size() && (static_cast<unsigned char>(s[from]) & 0xC0) == 0x80) ++from;  // whole UTF-8 characters
  return "…" + s.substr(from);
}

// "2026-11-30T09:51:56.123Z" → "2026-11-30 09:51"
std::string minute(const std::string& iso) { return iso.size() >= 16 ? iso.substr(0, 10) + " " + iso.substr(11, 5) : iso; }

std::string progress(const store::RunInfo& r) {
  return r.config.total_problems ? fmt::format("{}/{}", r.problems_done, *r.config.total_problems)
                                 : std::to_string(r.problems_done);
}

std::string accuracy(const store::RunInfo& r) {
  auto acc = r.accuracy();
  return acc ? fmt::format("{:.1f}%", 100 * *acc) : "-";
}

// The model that answered, else the spec's file name: a folder path says little in a table.
std::string model_of(const store::RunConfig& c) {
  return c.model_id.empty() ? std::filesystem::path(c.model_spec).filename().string() : c.model_id;
}

int list(const RunsArgs& a) {
  auto opened = store::Store::open(store_path(a), /*create=*/false);
  if (!opened && opened.error().code == store::kNoStore) {  // a file or a database with nothing recorded yet
    if (a.json)
      fmt::print("[]\n");
    else
      fmt::print(stderr, "no runs recorded yet ({})\n", opened.error().message);
    return kExitOk;
  }
  if (!opened) {
    fmt::print(stderr, "wand runs: {}\n", opened.error().message);
    return kExitBadInput;
  }
  auto& s = *opened;
  auto runs = s->list_runs({a.kind, a.limit});
  if (!runs) {
    fmt::print(stderr, "wand runs: {}\n", runs.error().message);
    return kExitBadInput;
  }
  if (a.json) {
    Json j = Json::array();
    for (const auto& r : *runs) j.push_back(store::to_json(r));
    fmt::print("{}\n", j.dump(2));
    return kExitOk;
  }
  constexpr std::string_view row = "{:<8}  {:<7}  {:<16}  {:<28}  {:<6}  {:<24}  {:>9}  {:>6}  {}\n";  // KIND: "improve"
  fmt::print(row, "ID", "KIND", "CREATED (UTC)", "MODEL", "METHOD", "DATASET", "PROBLEMS", "ACC", "STATUS");
  for (const auto& r : *runs)
    fmt::print(row, r.id, r.config.kind, minute(r.created_at), tail(model_of(r.config), 28), r.config.method,
               tail(std::filesystem::path(r.config.dataset).filename().string(), 24), progress(r), accuracy(r),
               r.status);
  if (runs->empty()) fmt::print(stderr, "no runs{} in {}\n", a.kind.empty() ? "" : " of kind " + a.kind, s->path());
  return kExitOk;
}

// The run named by a.id: an id or a unique prefix of one.
Result<store::Run> find_run(store::Store& s, const RunsArgs& a) {
  auto id = s.resolve_id(a.id);
  if (!id) return id.error();
  return s.get_run(*id);
}

int show(const RunsArgs& a) {
  auto s = open_existing(a);
  if (!s) return kExitBadInput;
  auto run = find_run(*s, a);
  if (!run) {
    fmt::print(stderr, "wand runs show: {}\n", run.error().message);
    return kExitBadInput;
  }
  const store::RunInfo& r = run->info;
  if (a.steps && r.config.kind != "agent") {
    fmt::print(stderr, "wand runs show: --steps: run {} is a {} run; steps are an agent run's\n", r.id, r.config.kind);
    return kExitBadInput;
  }
  if (a.json) {
    Json j = store::to_json(r);
    j["problems"] = Json::array();
    for (const auto& p : run->problems) j["problems"].push_back(store::to_json(p));
    fmt::print("{}\n", dump_text(j, 2));
    return kExitOk;
  }
  const store::RunConfig& c = r.config;
  auto opt = [](const std::string& s) { return s.empty() ? std::string("-") : s; };
  fmt::print("run       {} ({}, {})\n", r.id, c.kind, r.status);
  fmt::print("created   {}{}\n", r.created_at, r.finished_at.empty() ? "" : "   finished " + r.finished_at);
  fmt::print("model     {}{}\n", opt(c.model_spec), c.model_id.empty() ? "" : "  (" + c.model_id + ")");
  fmt::print("method    {}   dataset {}   seed {}\n", opt(c.method), opt(c.dataset),
             c.seed ? std::to_string(*c.seed) : "-");
  if (!c.prompt_hash.empty()) fmt::print("prompts   {}\n", c.prompt_hash);
  if (!c.options.is_null()) fmt::print("options   {}\n", c.options.dump());
  if (!c.extra.is_null()) fmt::print("extra     {}\n", c.extra.dump());
  fmt::print("wand      {}\n", opt(c.wand_version));
  fmt::print("problems  {} recorded, {} correct of {} judged ({})\n", progress(r), r.problems_correct,
             r.problems_judged, accuracy(r));
  if (!r.summary.is_null()) fmt::print("summary   {}\n", r.summary.dump());
  for (const auto& p : run->problems) {
    std::string verdict = !p.correct ? "-" : *p.correct ? "correct" : "wrong";
    fmt::print("  #{:<4} {:<8} {:<12} answer {}  expected {}  samples {}{}\n", p.index, verdict, opt(p.outcome),
               p.answer ? *p.answer : "-", opt(p.expected), p.samples.size(),
               p.problem_id.empty() ? "" : "  [" + p.problem_id + "]");
    if (!a.steps) continue;
    // The agent's trajectory, step by step, as `wand agent` printed it.
    fmt::print("Task: {}\n", p.input);
    for (const auto& sample : p.samples) fmt::print("{}", agent::format_step(agent::step_from_sample(sample)));
    if (p.extra.is_object() && p.extra.contains("end_detail"))
      fmt::print("ended: {} ({})\n\n", p.outcome, p.extra["end_detail"].get<std::string>());
  }
  return kExitOk;
}

int export_jsonl(const RunsArgs& a) {
  if (auto same = output_is_the_store(a.store, a.out); !same.empty()) {
    fmt::print(stderr, "wand runs export: {}\n", same);
    return kExitBadInput;
  }
  auto s = open_existing(a);
  if (!s) return kExitBadInput;
  auto id = s->resolve_id(a.id);
  if (!id) {
    fmt::print(stderr, "wand runs export: {}\n", id.error().message);
    return kExitBadInput;
  }
  if (a.out.empty()) {
    // A failed write to stdout (a full disk, a closed pipe) is reported by main with exit 4.
    if (auto r = s->export_run(*id, std::cout); !r && std::cout) {
      fmt::print(stderr, "wand runs export: {}\n", r.error().message);
      return kExitBadInput;
    }
    return kExitOk;
  }
  std::ofstream file(a.out, std::ios::binary | std::ios::trunc);
  if (!file) {
    fmt::print(stderr, "wand runs export: cannot write --out {}: {}\n", a.out, std::strerror(errno));
    return kExitOutput;
  }
  if (auto r = s->export_run(*id, file); !r && file) {
    fmt::print(stderr, "wand runs export: {}\n", r.error().message);
    return kExitBadInput;
  }
  if (auto w = flush_file(file, a.out); !w) {
    fmt::print(stderr, "wand runs export: --out {}\n", w.error().message);
    return kExitOutput;
  }
  return kExitOk;
}

}  // namespace

Command add_runs(CLI::App& app) {
  auto a = std::make_shared<RunsArgs>();
  auto* cmd = app.add_subcommand("runs", "List, show and export recorded runs (the run store)");
  cmd->require_subcommand(1);

  auto* ls = cmd->add_subcommand("list", "The newest runs as a table");
  add_store(ls, *a);
  ls->add_option("--kind", a->kind, "Only runs of this kind (solve, bench, code, agent, improve)")
      ->check(CLI::IsMember(store::kRunKinds));
  ls->add_option("--limit", a->limit, "At most N runs, newest first (0: all)")
      ->check(number({.lo = 0, .hi = 1e9, .integer = true}))
      ->capture_default_str();
  ls->add_flag("--json", a->json, "Print the runs as a JSON array");

  auto* sh = cmd->add_subcommand("show", "One run: its config, summary and a line per problem");
  add_store(sh, *a);
  sh->add_option("id", a->id, "The run's id (or a unique prefix)")->required();
  sh->add_flag("--json", a->json, "Print the run, its problems and samples as JSON");
  sh->add_flag("--steps", a->steps, "Agent runs: each task's steps (thought, code, observation), as wand agent printed them");

  auto* ex = cmd->add_subcommand("export", "One run as JSON lines: the run, then one line per problem");
  add_store(ex, *a);
  ex->add_option("id", a->id, "The run's id (or a unique prefix)")->required();
  ex->add_option("--out", a->out, "Write to FILE instead of stdout")->check(writable_file());

  return [a, cmd, ls, sh] {
    if (cmd->got_subcommand(ls)) return list(*a);
    if (cmd->got_subcommand(sh)) return show(*a);
    return export_jsonl(*a);
  };
}

}  // namespace wand::cli

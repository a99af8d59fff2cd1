// `wand agent`: the CodeAct loop (src/agent) on a free-form task or an environment's tasks, and
// `wand skills list|show|test|rm|import|export` over the skill library. The loop, the records
// and the library are library code; this file parses options and prints.
#include <signal.h>

#include <fmt/core.h>
#include <fmt/format.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>

#include "agent/record.h"
#include "agent/skills.h"
#include "cli/agent_runs.h"
#include "cli/commands.h"
#include "cli/options.h"
#include "cli/solver.h"
#include "common/progress.h"
#include "common/text.h"
#include "feedback/feedback.h"
#include "store/store.h"

namespace wand::cli {
namespace {

struct Totals {
  int tasks = 0, successes = 0, actions = 0, tool_calls = 0;
  long tokens = 0;
  double wall_s = 0;
  std::map<std::string, int> end_reasons;
  void add(const agent::AgentResult& r) {
    ++tasks;
    successes += r.success();
    actions += r.actions;
    tool_calls += r.tool_calls;
    tokens += r.prompt_tokens + r.completion_tokens;
    wall_s += r.wall_s;
    ++end_reasons[r.end_reason];
  }
  Json to_json() const {
    double n = std::max(1, tasks);
    return {{"tasks", tasks},
            {"successes", successes},
            {"success_rate", tasks ? double(successes) / tasks : 0.0},
            {"steps_per_task", actions / n},
            {"tool_calls_per_task", tool_calls / n},
            {"tokens_per_task", tokens / n},
            {"seconds_per_task", wall_s / n},
            {"end_reasons", end_reasons}};
  }
};

std::string result_line(const agent::AgentResult& r) {
  return fmt::format("{} · {} · {} actions · {} tool calls · {} tokens · {:.1f} s", r.success() ? "success" : "failure",
                     r.end_reason + (r.end_detail.empty() ? "" : " (" + r.end_detail + ")"), r.actions, r.tool_calls,
                     r.prompt_tokens + r.completion_tokens, r.wall_s);
}

}  // namespace

int run_agents(AgentArgs& a, const char* cmd) {
  auto fail = [cmd](const std::string& m, int rc = kExitBadInput) {
    fmt::print(stderr, "wand {}: {}\n", cmd, m);
    return rc;
  };
  bool env_mode = !a.env.empty();
  if (env_mode == !a.task.empty()) return fail(env_mode ? "give a TASK or --env, not both" : "give a TASK (free-form text) or --env NAME");
  if (!env_mode && (a.task_index || a.limit))
    return fail(fmt::format("{}: goes with --env NAME", a.task_index ? "--task" : "--limit"));
  if (a.task_index && a.limit) return fail("--task and --limit: one task, or the first N; give one of them");
  if (is_blank(a.task) && !env_mode) return fail("TASK: the task is empty");
  if (auto v = agent::validate(a.config); !v) return fail(v.error().message);
  a.config.tool_budget.max_calls = a.tools.max_calls;  // --max-tool-calls: each step's block

  // The tasks: one free-form, or instances of an environment's split.
  std::vector<int> indices;
  if (env_mode) {
    auto n = agent::split_size(a.env, a.split);
    if (!n) return fail("--env " + n.error().message);
    if (a.task_index) {
      if (*a.task_index >= *n)
        return fail(fmt::format("--task {}: the {} split of {} has {} tasks (0..{})", *a.task_index, a.split, a.env, *n, *n - 1));
      indices = {*a.task_index};
    } else {
      int count = a.limit > 0 ? std::min(a.limit, *n) : *n;
      for (int i = 0; i < count; ++i) indices.push_back(i);
    }
  }
  std::string spec = a.model;
  if (spec.empty()) {
    auto d = agent::default_agent_model(models_dir());
    if (!d) return fail(d.error().message);
    spec = *d;
  }
  auto granted = open_tools(a.tools, a.tools.specs);
  if (!granted) return fail(granted.error().message);
  auto sb = small_sandbox(1);
  if (!sb) return fail("sandbox: " + sb.error().message, kExitSandbox);
  auto model = llm::open_backend(spec);
  if (!model) {  // named by where the spec came from
    const char* env = std::getenv("WAND_AGENT_MODEL");
    return fail((!a.model.empty() ? "--model " : env && *env ? "$WAND_AGENT_MODEL " : "the shipped agent model ") +
                model.error().message);
  }

  std::string store_path = a.store.empty() ? store::default_store_path() : a.store;
  std::unique_ptr<store::Store> db;
  std::string run_id;
  if (!a.no_store) {
    auto s = store::Store::open(store_path);
    if (!s) return fail(store_error(a.store, s.error().message));
    db = std::move(*s);
  }
  std::unique_ptr<agent::SkillLibrary> skills;
  // --no-store writes nothing: the library is read where there is one, and not created.
  std::error_code ec;
  if (a.skills == "on" && !(a.no_store && !std::filesystem::exists(store_path, ec))) {
    auto lib = agent::SkillLibrary::open(store_path);
    if (!lib) return fail("--skills: " + lib.error().message);
    skills = std::move(*lib);
  }
  const agent::AgentConfig& c = a.config;
  if (db) {
    store::RunConfig rc{.kind = "agent",
                        .dataset = env_mode ? a.env + "/" + a.split : "free-form",
                        .model_spec = spec,
                        .model_id = (*model)->id(),
                        .method = c.plan ? "codeact+plan" : "codeact",
                        .options = {{"max_steps", c.max_steps}, {"max_tokens", c.max_tokens}, {"max_wall_s", c.max_wall_s},
                                    {"step_tokens", c.step_tokens}, {"context_tokens", c.context_tokens},
                                    {"plan", c.plan}, {"skills", a.skills}, {"format", c.format},
                                    {"temperature", c.temperature}, {"tools", a.tools.specs}, {"mcp", a.tools.mcp}},
                        .seed = static_cast<int64_t>(c.seed),
                        .total_problems = env_mode ? static_cast<int>(indices.size()) : 1,
                        .extra = {{"env_seed", a.env_seed}}};
    auto id = db->create_run(rc);
    if (!id) return fail(fmt::format("recording the run in {}: {}", db->path(), id.error().message), kExitOutput);
    run_id = *id;
  }

  std::atomic<bool>& stop = catch_stop_signals();

  bool one = !env_mode || indices.size() == 1;
  bool print_steps = one && !a.json && !a.quiet && a.show_steps;
  Totals totals;
  Json per_task = Json::array();
  agent::AgentResult last;
  Progress progress("tasks", indices.size(), !one && !a.quiet && !a.json, true);
  for (std::size_t k = 0; k < (env_mode ? indices.size() : 1); ++k) {
    if (stop) break;
    std::unique_ptr<agent::Environment> env;
    agent::AgentTask task;
    std::string task_id = "free-form";
    if (env_mode) {
      auto e = agent::make_environment(a.env, a.split, indices[k], a.env_seed);
      if (!e) return fail("--env " + e.error().message);
      env = std::move(*e);
      auto t = agent::task_from_environment(*env, *granted);
      if (!t) return fail(t.error().message);
      task = std::move(*t);
      task_id = env->task().id;
    } else {
      task = {.instruction = a.task, .tools = *granted};
    }
    if (print_steps) fmt::print("Task: {}\n", task.instruction);
    agent::RunHooks hooks{.stop = &stop, .env = env.get(), .skills = skills.get(), .write_skills = !a.no_store};
    if (print_steps) hooks.on_step = [](const agent::Step& s) { fmt::print("{}", agent::format_step(s)), std::fflush(stdout); };
    auto r = agent::run_agent(**model, **sb, task, c, hooks);
    if (!r) return fail(r.error().message);
    if (db) {
      agent::PromptHead head{.instruction = task.instruction, .rules = task.rules,
                             .tools = agent::tools_text(task.tools), .observation = task.observation};
      head.skills = "";
      if (auto w = db->record_problem(run_id, agent::to_problem(static_cast<int>(k), task_id, head, *r)); !w)
        return fail(fmt::format("recording the run in {}: {}", db->path(), w.error().message), kExitOutput);
    }
    totals.add(*r);
    Json line = {{"task_id", task_id}, {"instruction", task.instruction}};
    line.update(r->to_json());
    if (!a.json) line.erase("steps");
    per_task.push_back(line);
    if (!one && !a.json && !a.quiet) {
      progress.note(fmt::format("success {:.1f}%", 100.0 * totals.successes / totals.tasks));
      progress.tick();
    }
    if (!one && !a.json) fmt::print("{:<24} {}\n", task_id, result_line(*r));
    // A model that has not answered once (unreachable, a refused token, no such model) would
    // fail every task the same way, each after its retries: the run stops at the first.
    bool never_answered = r->end_reason == agent::kEndModelError && totals.tokens == 0;
    std::string model_failure = never_answered ? r->end_detail : "";
    last = std::move(*r);
    if (never_answered && !one) {
      progress.finish();
      if (db) (void)db->interrupt_run(run_id);
      return fail(fmt::format("the model has not answered ({}); the other {} tasks are not run", model_failure,
                              indices.size() - k - 1),
                  kExitFailed);
    }
  }
  progress.finish();
  bool interrupted = stop.load();
  if (db) {
    if (interrupted) (void)db->interrupt_run(run_id);
    else if (auto w = db->finish_run(run_id, totals.to_json()); !w)
      return fail(fmt::format("recording the run in {}: {}", db->path(), w.error().message), kExitOutput);
  }
  if (a.json) {
    Json out = one ? per_task.at(0) : Json{{"summary", totals.to_json()}, {"tasks", per_task}};
    out["run_id"] = run_id.empty() ? Json(nullptr) : Json(run_id);
    out["model"] = spec;
    fmt::print("{}\n", dump_text(out, 2));
  } else if (one) {
    if (last.final_answer) fmt::print("Answer: {}\n", dump_text(*last.final_answer));
    if (last.check) fmt::print("Goal: {}\n", last.check->success ? "reached" : "not reached: " + last.check->reason);
    fmt::print("{}{}\n", result_line(last), run_id.empty() ? "" : " · run " + run_id);
    if (!last.skills_saved.empty()) fmt::print("Skills saved: {}\n", fmt::join(last.skills_saved, ", "));
  } else {
    Json s = totals.to_json();
    fmt::print("{} {} ({} tasks, model {}){}\n", a.env, a.split, totals.tasks, (*model)->id(), run_id.empty() ? "" : ", run " + run_id);
    fmt::print("  success rate  {:.1f}%  ({} of {})\n", 100 * s["success_rate"].get<double>(), totals.successes, totals.tasks);
    fmt::print("  per task      {:.2f} steps, {:.2f} tool calls, {:.0f} tokens, {:.2f} s\n", s["steps_per_task"].get<double>(),
               s["tool_calls_per_task"].get<double>(), s["tokens_per_task"].get<double>(), s["seconds_per_task"].get<double>());
    fmt::print("  end reasons   {}\n", s["end_reasons"].dump());
  }
  if (interrupted) return fail("interrupted", kExitInterrupted);
  if (one) return last.success() ? kExitOk : kExitFailed;
  return kExitOk;
}

static void add_agent_options(CLI::App* cmd, AgentArgs& a, CLI::Option* env) {
  auto& c = a.config;
  cmd->add_option("-m,--model", a.model,
                  "local:PATH.gguf or openai:URL/MODEL (default: $WAND_AGENT_MODEL, else models/wand-agent.gguf)");
  // The task set's options mean nothing without --env: refused there rather than ignored.
  cmd->add_option("--split", a.split, "With --env: train or held-out")
      ->check(CLI::IsMember({"train", "held-out"}))->capture_default_str()->needs(env);
  cmd->add_option("--limit", a.limit, "With --env: the split's first N tasks")
      ->check(number({.lo = 1, .hi = 1e6, .integer = true}))->needs(env);
  cmd->add_option("--env-seed", a.env_seed, "With --env: the seed the instances are generated from")
      ->check(number(kSeed))->capture_default_str()->needs(env);
  cmd->add_option("--max-steps", c.max_steps, "Actions per task")->check(number({.lo = 1, .hi = 1000, .integer = true}))->capture_default_str();
  cmd->add_option("--max-tokens", c.max_tokens, "Prompt + completion tokens per task (0: no limit)")
      ->check(number({.lo = 0, .hi = 1e12, .integer = true}))->capture_default_str();
  cmd->add_option("--max-time", c.max_wall_s, "Seconds per task (0: no limit)")->check(number({.lo = 0, .hi = 86400}))->capture_default_str();
  cmd->add_option("--step-tokens", c.step_tokens, "Tokens one step may generate")->check(number({.lo = 1, .hi = 65536, .integer = true}))->capture_default_str();
  cmd->add_option("--context", c.context_tokens, "The prompt's token budget: older steps are condensed past it")
      ->check(number({.lo = 256, .hi = 1 << 20, .integer = true}))->capture_default_str();
  cmd->add_option("--timeout", c.step_limits.timeout_s, "Seconds each code block may run")->check(number(kSeconds))->capture_default_str();
  cmd->add_flag("--plan", c.plan, "Write a numbered plan first; re-plan when steps fail twice or an action is blocked");
  cmd->add_option("--skills", a.skills, "on: retrieve skills for the task and save the run's verified functions; off: neither")
      ->check(CLI::IsMember({"on", "off"}))->capture_default_str();
  cmd->add_option("--format", c.format, "Prompt format: auto (completion for wand's models, else chat), chat or completion")
      ->check(CLI::IsMember({"auto", "chat", "completion"}))->capture_default_str();
  cmd->add_option("--temperature", c.temperature, "Sampling temperature")->check(number(kTemperature))->capture_default_str();
  cmd->add_option("--seed", c.seed, "Sampling seed")->check(number(kSeed))->capture_default_str();
  auto* st = add_store_option(cmd, a.store, "The run store, which also holds the skills");
  cmd->add_flag("--no-store", a.no_store, "Do not record the run (skills are read, not saved)")->excludes(st);
  cmd->add_flag("--json", a.json, "Print the result (with every step) as JSON");
  cmd->add_flag("-q,--quiet", a.quiet, "Print only the result, not each step");
  add_tool_options(cmd, a.tools);
}

Command add_agent(CLI::App& app) {
  auto a = std::make_shared<AgentArgs>();
  auto* cmd = app.add_subcommand("agent", "Act on a task by writing code, step by step, in a sandboxed session (CodeAct)");
  cmd->add_option("task", a->task, "The task, in words (or --env NAME for an environment's tasks)");
  auto* env = cmd->add_option("--env", a->env, "An environment: kitchen, data or shop");
  cmd->add_option("--task", a->task_index, "With --env: the task's index in --split")
      ->check(number({.lo = 0, .hi = 1e9, .integer = true}))
      ->needs(env);
  add_agent_options(cmd, *a, env);
  return [a] { return run_agents(*a, "agent"); };
}

// ---------------------------------------------------------------------------- wand skills

namespace {

struct SkillsArgs {
  std::string store, name, file;
  bool json = false;
};

}  // namespace

Command add_skills(CLI::App& app) {
  auto a = std::make_shared<SkillsArgs>();
  auto* cmd = app.add_subcommand("skills", "The skill library: functions agents wrote, verified and kept for reuse");
  cmd->require_subcommand(1);
  auto store_opt = [&](CLI::App* sub) {
    add_store_option(sub, a->store, "The run store holding the skills");
  };
  auto* ls = cmd->add_subcommand("list", "Every skill: name, version, uses, successes, signature");
  ls->add_flag("--json", a->json, "One JSON object per line");
  auto* show = cmd->add_subcommand("show", "One skill with its code and tests");
  show->add_option("name", a->name, "The skill's name")->required();
  show->add_flag("--json", a->json, "As JSON");
  auto* test = cmd->add_subcommand("test", "Run skills' tests in the sandbox; demote the failing, restore the passing");
  test->add_option("name", a->name, "One skill (default: all)");
  auto* rm = cmd->add_subcommand("rm", "Remove a skill");
  rm->add_option("name", a->name, "The skill's name")->required();
  auto* imp = cmd->add_subcommand("import", "Add skills from JSON lines (as export writes them); duplicates merge");
  imp->add_option("file", a->file, "The JSON-lines file, or - for standard input")->required();
  auto* exp = cmd->add_subcommand("export", "Every skill as JSON lines");
  exp->add_option("--out", a->file, "Write here instead of standard output")->check(writable_file());
  for (auto* sub : {ls, show, test, rm, imp, exp}) store_opt(sub);

  return [=]() -> int {
    auto fail = [](const std::string& m, int rc = kExitBadInput) {
      fmt::print(stderr, "wand skills: {}\n", m);
      return rc;
    };
    if (cmd->got_subcommand(exp))
      if (auto same = output_is_the_store(a->store, a->file); !same.empty()) return fail(same);
    bool writes = cmd->got_subcommand(imp) || cmd->got_subcommand(test) || cmd->got_subcommand(rm);
    std::string path = a->store.empty() ? store::default_store_path() : a->store;
    // A database URI is not a file that does not exist yet: SkillLibrary::open says what to do.
    if ((cmd->got_subcommand(ls) || cmd->got_subcommand(exp)) && !store::is_database_uri(path) &&
        !std::filesystem::exists(path)) {
      if (cmd->got_subcommand(ls) && !a->json) fmt::print(stderr, "no skills yet ({} does not exist)\n", path);
      return kExitOk;
    }
    auto lib = agent::SkillLibrary::open(path, /*create=*/writes || std::filesystem::exists(path));
    if (!lib) return fail(lib.error().message);
    auto& L = **lib;
    if (cmd->got_subcommand(ls)) {
      auto all = L.list();
      if (!all) return fail(all.error().message);
      for (auto& s : *all) {
        if (a->json) fmt::print("{}\n", dump_text(agent::to_json(s)));
        else
          fmt::print("{:<28} v{:<3} {:>4} uses {:>4} ok{}  {}\n", s.name, s.version, s.uses, s.successes,
                     s.demoted ? "  DEMOTED" : "", s.signature);
      }
      if (all->empty() && !a->json) fmt::print(stderr, "no skills in {}\n", path);
      return kExitOk;
    }
    if (cmd->got_subcommand(show)) {
      auto s = L.get(a->name);
      if (!s) return fail(s.error().message);
      if (a->json) {
        fmt::print("{}\n", agent::to_json(*s).dump(2));
        return kExitOk;
      }
      fmt::print("{} (version {}, {} uses, {} successes{})\n{}\n\n{}\n", s->name, s->version, s->uses, s->successes,
                 s->demoted ? ", demoted: " + s->demoted_why : "", s->description, s->code);
      if (!s->tests.empty()) fmt::print("\ntests:\n{}\n", s->tests);
      return kExitOk;
    }
    if (cmd->got_subcommand(rm)) {
      if (auto r = L.remove(a->name); !r) return fail(r.error().message);
      fmt::print(stderr, "removed {}\n", a->name);
      return kExitOk;
    }
    if (cmd->got_subcommand(exp)) {
      if (a->file.empty()) {
        if (auto r = L.export_jsonl(std::cout); !r) return fail(r.error().message, kExitOutput);
        return kExitOk;
      }
      std::ofstream f(a->file);
      if (auto r = L.export_jsonl(f); !r || !(f << std::flush)) return fail("--out " + a->file + ": write failed", kExitOutput);
      return kExitOk;
    }
    if (cmd->got_subcommand(imp)) {
      std::ifstream file;
      if (a->file != "-") {
        std::error_code ec;
        if (std::filesystem::is_directory(a->file, ec)) return fail(fmt::format("{}: a folder, not a JSON-lines file", a->file));
        file.open(a->file);
        if (!file) return fail(fmt::format("{}: cannot read", a->file));
      }
      std::istream& in = a->file == "-" ? std::cin : file;
      // Every line is read and checked before any is saved: a bad line imports nothing.
      std::vector<std::pair<int, agent::Skill>> read;
      int n = 0;
      for (std::string line; std::getline(in, line);) {
        ++n;
        if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
        Json j = Json::parse(line, nullptr, false);
        if (j.is_discarded()) return fail(fmt::format("{} line {}: not JSON (nothing imported)", a->file, n));
        auto s = agent::skill_from_json(j);
        if (!s) return fail(fmt::format("{} line {}: {} (nothing imported)", a->file, n, s.error().message));
        read.emplace_back(n, std::move(*s));
      }
      // What the loop would refuse to load (code at the top level that would run) is refused
      // here, not saved to be demoted at its first retrieval.
      std::vector<std::string> codes;
      for (auto& [line, skill] : read) codes.push_back(skill.code);
      auto sb = small_sandbox(1);
      if (!sb) return fail("sandbox: " + sb.error().message, kExitSandbox);
      auto problems = agent::skill_load_problems(**sb, codes);
      if (!problems) return fail(problems.error().message, kExitSandbox);
      for (std::size_t i = 0; i < read.size(); ++i)
        if (!(*problems)[i].empty())
          return fail(fmt::format("{} line {}: field 'code' of '{}' could not be loaded into a session: {} (nothing imported)",
                                  a->file, read[i].first, read[i].second.name, (*problems)[i]));
      std::map<std::string, int> outcomes;
      for (auto& [line, skill] : read) {
        auto o = L.save(skill);
        if (!o) return fail(fmt::format("{} line {}: {}", a->file, line, o.error().message));
        ++outcomes[agent::to_string(*o)];
      }
      fmt::print(stderr, "imported: {} added, {} new versions, {} merged\n", outcomes["added"], outcomes["new_version"],
                 outcomes["merged"]);
      return kExitOk;
    }
    // test: each skill's code and tests in a fresh sandboxed program.
    std::vector<agent::Skill> skills;
    if (!a->name.empty()) {
      auto s = L.get(a->name);
      if (!s) return fail(s.error().message);
      skills.push_back(*s);
    } else {
      auto all = L.list();
      if (!all) return fail(all.error().message);
      skills = *all;
    }
    auto sb = small_sandbox(1);
    if (!sb) return fail("sandbox: " + sb.error().message, kExitSandbox);
    int failed = 0;
    for (auto& s : skills) {
      sandbox::ExecRequest req;
      req.code = s.code + "\n" + s.tests + "\n";
      req.limits.timeout_s = 30;
      auto r = (*sb)->run(req);
      auto v = feedback::judge_asserts(r, req.code);
      if (auto w = L.set_demoted(s.name, v.passed ? "" : v.feedback); !w) return fail(w.error().message);
      failed += !v.passed;
      fmt::print("{:<28} {}{}\n", s.name, v.passed ? "pass" : "FAIL (demoted): " + v.feedback,
                 s.tests.empty() && v.passed ? " (no tests: it only defines)" : "");
    }
    return failed ? kExitFailed : kExitOk;
  };
}

}  // namespace wand::cli

// `wand tools list|call`: what tools a program may be granted, and one call from the shell.
#include <fmt/core.h>

#include <algorithm>

#include "cli/commands.h"
#include "cli/options.h"
#include "cli/tool_options.h"
#include "tools/mcp/mcp_tools.h"

namespace wand::cli {

void add_tool_options(CLI::App* cmd, ToolArgs& a) {
  cmd->add_option("--tools", a.specs,
                  "Tools to grant, comma-separated or repeated: built-ins (sql, fs, fs.read, search, http_get, llm) "
                  "and files of command tools (*.json)")
      ->allow_extra_args(false);  // one value per occurrence: `--tools fs -` keeps its `-`
  cmd->add_option("--db", a.builtin.db, "sql: the SQLite database (read-only unless --writable)")->check(CLI::ExistingFile);
  cmd->add_flag("--writable", a.builtin.writable, "sql may write to --db, fs.write to --workspace");
  cmd->add_option("--workspace", a.builtin.workspace, "fs.*: the only folder they reach")->check(CLI::ExistingDirectory);
  cmd->add_option("--docs", a.builtin.docs, "search: the folder of documents to index")->check(CLI::ExistingDirectory);
  cmd->add_option("--allow-host", a.builtin.allow_hosts, "http_get: a host (or host:port) it may fetch from (repeatable)")
      ->allow_extra_args(false);
  cmd->add_option("--tools-model", a.model, "llm: the model, local:PATH.gguf or openai:URL/MODEL (default: $WAND_MODEL, else the shipped model)");
  cmd->add_option("--max-tool-calls", a.max_calls, "Tool calls one run may make (wand agent: one step's code)")
      ->default_val(10000)
      ->check(number({.lo = 1, .hi = 1e9, .integer = true}));
  cmd->add_option("--mcp", a.mcp,
                  "An MCP server whose tools are granted too: a command line ('npx -y @modelcontextprotocol/server-everything') "
                  "or an http(s):// URL (repeatable)")
      ->allow_extra_args(false);
  cmd->add_option("--mcp-timeout", a.mcp_timeout, "Seconds an MCP tool call may take")->default_val(60)->check(number(kSeconds));
}

namespace {

// The model is opened only when llm is granted (or listed).
void open_llm_on_demand(ToolArgs& a) {
  a.builtin.open_llm = [&a]() -> Result<llm::Backend*> {
    if (!a.backend) {
      auto b = llm::open_backend(a.model.empty() ? default_model_spec() : a.model);
      if (!b) return Error{fmt::format("--tools-model: {}", b.error().message)};
      a.backend = std::move(*b);
    }
    return a.backend.get();
  };
}

// An option of built-ins that none of the granted tools is (`--db` without sql): "" when none.
std::string unread_tool_option(const ToolArgs& a, const tools::Registry& reg) {
  struct Use {
    const char* option;
    bool given;
    std::vector<const char*> tools;
  };
  for (const Use& u : {Use{"--db", !a.builtin.db.empty(), {"sql"}},
                       Use{"--writable", a.builtin.writable, {"sql", "fs.write"}},
                       Use{"--workspace", !a.builtin.workspace.empty(), {"fs.read", "fs.list", "fs.write"}},
                       Use{"--docs", !a.builtin.docs.empty(), {"search"}},
                       Use{"--allow-host", !a.builtin.allow_hosts.empty(), {"http_get"}},
                       Use{"--tools-model", !a.model.empty(), {"llm"}}}) {
    if (!u.given || std::any_of(u.tools.begin(), u.tools.end(), [&](const char* t) { return reg.find(t) != nullptr; }))
      continue;
    std::string names;
    for (const char* t : u.tools) names += std::string(names.empty() ? "" : " or ") + t;
    return fmt::format("{}: an option of {}, which no --tools grants", u.option, names);
  }
  return "";
}

}  // namespace

Result<tools::Registry> open_tools(ToolArgs& a, const std::vector<std::string>& specs) {
  open_llm_on_demand(a);
  auto reg = tools::load_tools(specs, a.builtin);
  if (!reg) return Error{fmt::format("--tools: {}", reg.error().message)};
  if (!a.mcp.empty()) {
    auto served = tools::connect_mcp(a.mcp, a.mcp_timeout);
    if (!served) return Error{fmt::format("--mcp: {}", served.error().message)};
    if (auto m = reg->merge(*served); !m) return Error{fmt::format("--mcp: {}", m.error().message)};
  }
  if (auto unread = unread_tool_option(a, *reg); !unread.empty()) return Error{unread};
  return reg;
}

namespace {

int list_tools(ToolArgs& a, bool json, bool python, const std::string& relevant, std::size_t top) {
  tools::Registry reg;
  std::vector<std::pair<std::string, std::string>> unavailable;
  if (!a.specs.empty() || !a.mcp.empty()) {
    auto r = open_tools(a, a.specs);
    if (!r) {
      fmt::print(stderr, "wand tools list: {}\n", r.error().message);
      return kExitBadInput;
    }
    reg = std::move(*r);
  } else {
    // Every built-in the options make available, and why the others are not.
    open_llm_on_demand(a);
    for (const auto& name : tools::builtin_names()) {
      auto r = tools::builtin_tools({name}, a.builtin);
      if (r) (void)reg.merge(*r);
      else unavailable.emplace_back(name, r.error().message);
    }
  }
  // Tool search: only the tools relevant to a task, best first.
  std::vector<const tools::Tool*> shown = relevant.empty() ? reg.list() : tools::relevant_tools(reg, relevant, top);
  if (python) {
    std::string out;  // as tools::python_signatures writes them
    for (const tools::Tool* t : shown) out += (out.empty() ? "" : "\n") + tools::python_signature(*t);
    fmt::print("{}", out);
    return kExitOk;
  }
  if (json) {
    Json out = Json::array();
    for (const tools::Tool* t : shown)
      out.push_back({{"name", t->name}, {"description", t->description}, {"parameters", t->parameters},
                     {"result", t->result}, {"timeout", t->timeout_s}, {"source", t->source}});
    for (const auto& [name, why] : unavailable) out.push_back({{"name", name}, {"unavailable", why}});
    fmt::print("{}\n", out.dump(2));
    return kExitOk;
  }
  for (const tools::Tool* t : shown) {
    std::string summary = t->description.substr(0, t->description.find('\n'));
    fmt::print("{:<12} {:<8} {}\n", t->name, t->source.substr(0, t->source.find(' ')), summary);
  }
  for (const auto& [name, why] : unavailable) fmt::print("{:<12} {:<8} (unavailable: {})\n", name, "builtin", why);
  return kExitOk;
}

int call_tool(ToolArgs& a, const std::string& name, const std::string& args_text) {
  auto args = parse_json(args_text, "the arguments");
  if (!args) {
    fmt::print(stderr, "wand tools call: {}\n", args.error().message);
    return kExitBadInput;
  }
  // Without --tools, the named built-in alone.
  auto reg = open_tools(a, a.specs.empty() && a.mcp.empty() ? std::vector<std::string>{name} : a.specs);
  if (!reg) {
    fmt::print(stderr, "wand tools call: {}\n", reg.error().message);
    return kExitBadInput;
  }
  const tools::Tool* tool = reg->find(name);
  if (!tool) {
    fmt::print(stderr, "wand tools call: {}\n", reg->select({name}).error().message);
    return kExitBadInput;
  }
  if (auto ok = tools::validate_args(tool->parameters, *args); !ok) {
    fmt::print(stderr, "wand tools call: tool '{}': {}\n", name, ok.error().message);
    return kExitBadInput;
  }
  auto r = tools::call(*tool, *args);
  if (!r) {
    fmt::print(stderr, "wand tools call: {}\n", r.error().message);
    return kExitFailed;
  }
  fmt::print("{}\n", dump_text(*r, 2));
  return kExitOk;
}

}  // namespace

Command add_tools(CLI::App& app) {
  struct Args {
    ToolArgs tools;
    bool json = false, python = false;
    std::string name, args = "{}";
    std::string relevant;
    std::size_t top = 5;
  };
  auto a = std::make_shared<Args>();
  auto* cmd = app.add_subcommand("tools", "List the tools programs may be granted, or call one");
  cmd->require_subcommand(1);
  auto* list = cmd->add_subcommand("list", "The tools --tools grants (without it: the built-ins these options make available)");
  add_tool_options(list, a->tools);
  list->add_flag("--json", a->json, "Print name, description, parameter schema, timeout and source as JSON");
  list->add_flag("--python", a->python, "Print the tools as Python signatures with docstrings (as prompts show them)");
  list->add_option("--relevant", a->relevant, "Only the tools most relevant to this task text (BM25 over names and descriptions)");
  list->add_option("--top", a->top, "How many tools --relevant keeps")->default_val(5)->check(number({.lo = 1, .hi = 1000, .integer = true}));
  auto* call = cmd->add_subcommand("call", "Call one tool with JSON arguments and print its result as JSON");
  call->footer("Exit status: 0 the tool answered; 1 the tool failed; 2 bad input (unknown tool, bad arguments).");
  add_tool_options(call, a->tools);
  call->add_option("name", a->name, "The tool (fs.read, sql, a command tool's name, ...)")->required();
  call->add_option("args", a->args, "Its arguments as a JSON object")->default_val("{}");
  return [a, list] {
    if (list->parsed()) return list_tools(a->tools, a->json, a->python, a->relevant, a->top);
    return call_tool(a->tools, a->name, a->args);
  };
}

}  // namespace wand::cli

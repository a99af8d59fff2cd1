// The options every command that grants tools takes (`wand exec`, `wand tools`), and turning
// them into a Registry with src/tools/builtins.h.
#pragma once
#include <CLI/CLI.hpp>

#include <memory>
#include <string>
#include <vector>

#include "llm/llm.h"
#include "tools/builtins.h"

namespace wand::cli {

struct ToolArgs {
  std::vector<std::string> specs;  // --tools, comma-separated or repeated
  tools::BuiltinOptions builtin;
  std::string model;               // for llm
  std::size_t max_calls = 10000;
  std::unique_ptr<llm::Backend> backend;
  std::vector<std::string> mcp;    // --mcp: MCP servers (a command line or an http(s) URL) whose tools are granted
  double mcp_timeout = 60;         // --mcp-timeout: seconds per MCP tool call
};

// Adds --tools, --db, --writable, --workspace, --docs, --allow-host, --tools-model,
// --max-tool-calls, --mcp and --mcp-timeout to `cmd`.
void add_tool_options(CLI::App* cmd, ToolArgs& a);

// The registry the options name (empty without --tools and --mcp); opens the model only when llm
// is granted; connects to every --mcp server (src/tools/mcp) and adds its tools. Errors name the
// option (and the server).
Result<tools::Registry> open_tools(ToolArgs& a, const std::vector<std::string>& specs);

}  // namespace wand::cli

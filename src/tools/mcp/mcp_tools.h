// MCP servers as a source of tools: every tool a server lists becomes a tools::Tool, so a
// sandboxed program calls it like any other (`rows = get_sum(a=2, b=3)`), with a signature
// generated from its inputSchema (tools::python_signature).
#pragma once
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "tools/mcp/mcp_client.h"
#include "tools/tools.h"

namespace wand::tools {

// An MCP tool name as a Python identifier: characters other than letters, digits and '_' become
// '_' ("get-sum" -> "get_sum", "files/read" -> "files_read"); a leading digit gets a '_' before it.
std::string python_name(std::string_view mcp_name);

// The tools of one server, each with `timeout_s` as its Tool::timeout_s. Each calls the server
// with the call's remaining time as its timeout;
// a tool's failure (isError) reaches the program as ToolError with the tool's text; protocol
// errors (timeouts, a crashed server) name the server and the tool (mcp_client.h). `prefix`
// ("fs") puts them in a namespace (fs.read_file). Tool::source is "mcp SERVER". Two MCP names
// that map to one Python name are an error naming both.
Result<Registry> mcp_tools(std::shared_ptr<mcp::Client> client, const std::string& prefix = "", double timeout_s = 60);

// The servers named by --mcp (a command line, or an http(s):// URL), connected, and all their
// tools in one registry. The clients live as long as the tools' handlers hold them.
Result<Registry> connect_mcp(const std::vector<std::string>& targets, double call_timeout_s = 60);

// The k tools most relevant to `task` (tool search, tool_search.h: BM25 over names and
// descriptions), best first; all of them when the registry has at most k.
std::vector<const Tool*> relevant_tools(const Registry& tools, std::string_view task, std::size_t k);

}  // namespace wand::tools

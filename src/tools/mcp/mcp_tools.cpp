// MCP tools as registry tools (mcp_tools.h).
#include "tools/mcp/mcp_tools.h"

#include <cctype>
#include <map>

#include <fmt/core.h>

#include "tools/mcp/tool_search.h"

namespace wand::tools {

std::string python_name(std::string_view mcp_name) {
  std::string n;
  for (unsigned char c : mcp_name) n.push_back(std::isalnum(c) || c == '_' ? static_cast<char>(c) : '_');
  if (n.empty() || std::isdigit(static_cast<unsigned char>(n[0]))) n.insert(n.begin(), '_');
  return n;
}

Result<Registry> mcp_tools(std::shared_ptr<mcp::Client> client, const std::string& prefix, double timeout_s) {
  auto listed = client->list_tools();
  if (!listed) return listed.error();
  Registry reg;
  std::map<std::string, std::string> seen;  // python name -> MCP name
  for (auto& t : *listed) {
    // A top-level name that would hide a Python built-in (a tool "print") gets PEP 8's trailing "_".
    std::string name = (prefix.empty() ? "" : prefix + ".") + python_name(t.name);
    if (prefix.empty() && hides_python_name(name)) name += "_";
    if (auto [it, fresh] = seen.emplace(name, t.name); !fresh)
      return Error{fmt::format("MCP server '{}': tools '{}' and '{}' both become '{}' in Python", client->name(), it->second,
                               t.name, name)};
    Tool tool;
    tool.name = name;
    tool.description = t.description.empty() ? t.title : t.description;
    tool.parameters = t.input_schema;
    // Schemas that leave the type out (`{}`) describe an object of arguments all the same.
    if (!tool.parameters.is_object()) tool.parameters = Json::object();
    if (!tool.parameters.contains("type")) tool.parameters["type"] = "object";
    tool.result = t.output_schema;
    tool.source = "mcp " + client->name();
    tool.timeout_s = timeout_s;
    tool.handler = [client, mcp_name = t.name](const Json& args, const CallContext& ctx) -> Result<Json> {
      mcp::CallOptions opt;
      opt.timeout_s = ctx.remaining_s() > 0 ? ctx.remaining_s() : 0.001;
      auto r = client->call_tool(mcp_name, args, opt);
      if (!r) return r.error();
      if (r->is_error) return Error{fmt::format("MCP server '{}': tool '{}': {}", client->name(), mcp_name, r->text())};
      return r->value();
    };
    if (auto a = reg.add(std::move(tool)); !a) return Error{fmt::format("MCP server '{}': {}", client->name(), a.error().message)};
  }
  return reg;
}

Result<Registry> connect_mcp(const std::vector<std::string>& targets, double call_timeout_s) {
  Registry all;
  for (auto& target : targets) {
    auto c = mcp::Client::connect({.target = target, .call_timeout_s = call_timeout_s});
    if (!c) return c.error();
    auto tools = mcp_tools(std::shared_ptr<mcp::Client>(std::move(*c)), "", call_timeout_s);
    if (!tools) return tools.error();
    if (auto m = all.merge(*tools); !m) return Error{fmt::format("--mcp {}: {}", target, m.error().message)};
  }
  return all;
}

std::vector<const Tool*> relevant_tools(const Registry& tools, std::string_view task, std::size_t k) {
  auto list = tools.list();
  if (list.size() <= k) return list;
  std::vector<std::string> docs;
  for (auto* t : list) docs.push_back(t->name + " " + t->description);
  std::vector<const Tool*> out;
  for (auto i : rank_documents(docs, task, k)) out.push_back(list[i]);
  return out;
}

}  // namespace wand::tools

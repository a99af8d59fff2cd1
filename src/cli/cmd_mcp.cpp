// `wand mcp`: wand as an MCP server (src/mcp), over stdio or Streamable HTTP.
#include <fmt/core.h>

#include "cli/commands.h"
#include "cli/solver.h"
#include "cli/options.h"
#include "cli/tool_options.h"
#include "mcp/mcp_server.h"

namespace wand::cli {

Command add_mcp(CLI::App& app) {
  struct Args {
    std::optional<int> http;
    std::string model;
    std::size_t cells = 0;
    ToolArgs tools;
  };
  auto a = std::make_shared<Args>();
  auto* cmd = app.add_subcommand("mcp", "Serve wand's sandbox, judge and solver to MCP clients (stdio, or --http)");
  cmd->footer(
      "Tools: execute_code, evaluate, solve, and those --tools and --mcp name. Over stdio (the default) an MCP client starts `wand mcp` itself;\n"
      "--http PORT serves http://127.0.0.1:PORT/mcp (Streamable HTTP; Origin and Host must be local).");
  cmd->add_option("--http", a->http, "Serve Streamable HTTP on 127.0.0.1:PORT instead of stdio (0: any free port)")
      ->check(number({.lo = 0, .hi = 65535, .integer = true}));
  cmd->add_option("--model", a->model,
                  "The model the solve tool uses (default: $WAND_MODEL, else the shipped wand-pot-delex, as wand solve's pot)");
  cmd->add_option("--cells", a->cells, "Parallel sandbox cells (default: number of cores)")->check(parallel(true));
  // Tools served besides the built-in three: --tools (built-ins, command-tool files), --mcp (other MCP servers' tools).
  add_tool_options(cmd, a->tools);
  return [a] {
    const std::string spec = model_for("pot", a->model);  // solve's default method
    // Opened now, so that a model that cannot open is said before serving rather than on a client's first solve.
    auto m = llm::open_backend(spec);
    if (!m) {
      fmt::print(stderr, "wand mcp: {}{}\n", a->model.empty() ? "the solve tool's model: " : "--model: ", m.error().message);
      return kExitBadInput;
    }
    mcp::Server server({.model_spec = spec, .model = std::move(*m), .cells = a->cells,
                        .verifier_spec = default_model_spec("wand-verify.gguf")});
    auto extra = open_tools(a->tools, a->tools.specs);
    if (!extra) {
      fmt::print(stderr, "wand mcp: {}\n", extra.error().message);
      return kExitBadInput;
    }
    if (auto added = server.add_tools(*extra); !added) {
      fmt::print(stderr, "wand mcp: --tools: {}\n", added.error().message);
      return kExitBadInput;
    }
    if (!a->http) {
      mcp::serve_stdio(server);
      return kExitOk;
    }
    auto r = mcp::serve_http(server, {.port = *a->http, .on_listening = [](int port) {
                                        fmt::print(stderr, "wand mcp: serving MCP at http://127.0.0.1:{}/mcp\n", port);
                                      }});
    if (!r) {
      fmt::print(stderr, "wand mcp: {}\n", r.error().message);
      return kExitBadInput;
    }
    return kExitOk;
  };
}

}  // namespace wand::cli

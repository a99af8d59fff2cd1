// The built-in tools, one maker each, for builtins.cpp to assemble. Internal to src/tools.
#pragma once
#include <vector>

#include "tools/builtins.h"

namespace wand::tools {

Result<Tool> sql_tool(const BuiltinOptions& opt);
Result<Tool> search_tool(const BuiltinOptions& opt);
Result<std::vector<Tool>> fs_tools(const BuiltinOptions& opt);  // fs.read, fs.list, fs.write
Result<Tool> http_tool(const BuiltinOptions& opt);
Result<Tool> llm_tool(const BuiltinOptions& opt);

}  // namespace wand::tools

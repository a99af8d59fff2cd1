// Python text of JSON values and tool calls, as the sandbox prints them: what the experts' code
// blocks are written in and what their observations read, so training text matches execution.
#pragma once
#include <string>

#include "common/json.h"
#include "tools/tools.h"

namespace wand::agent {

// "look(), go(room), put(obj, place)": each tool's name and parameters in positional order.
std::string tools_summary(const tools::Registry& reg);
// A JSON value as Python writes it with repr(): 'text', 3, 2.5, True, None, [..], {'k': v}.
std::string python_repr(const Json& v);
// What Python's print() writes for the value (a string as it is, anything else as repr), plus "\n".
std::string python_print(const Json& v);
// A call as one line of Python: name('a', {'size': 'M'}), arguments in parameter_order().
std::string python_call(const tools::Tool& tool, const Json& arguments);

}  // namespace wand::agent

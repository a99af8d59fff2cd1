#include "agent/python_text.h"

#include <cmath>

#include <fmt/core.h>

namespace wand::agent {

std::string tools_summary(const tools::Registry& reg) {
  std::string out;
  for (const auto* t : reg.list()) {
    if (!out.empty()) out += ", ";
    std::string params;
    for (auto& p : tools::parameter_order(t->parameters)) params += (params.empty() ? "" : ", ") + p;
    out += t->name + "(" + params + ")";
  }
  return out;
}

std::string python_repr(const Json& v) {
  switch (v.type()) {
    case Json::value_t::null: return "None";
    case Json::value_t::boolean: return v.get<bool>() ? "True" : "False";
    case Json::value_t::number_integer:
    case Json::value_t::number_unsigned: return v.dump();
    case Json::value_t::number_float: {
      double d = v.get<double>();
      if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 1e16) return fmt::format("{:.1f}", d);
      return fmt::format("{}", d);  // shortest round-trip form, as Python's repr
    }
    case Json::value_t::string: {
      // Python prefers single quotes unless the text has one and no double quote.
      const auto& s = v.get_ref<const std::string&>();
      char q = s.find('\'') != std::string::npos && s.find('"') == std::string::npos ? '"' : '\'';
      std::string out(1, q);
      for (char c : s) {
        if (c == '\\') out += "\\\\";
        else if (c == q) out += std::string("\\") + q;
        else if (c == '\n') out += "\\n";
        else if (c == '\t') out += "\\t";
        else if (c == '\r') out += "\\r";
        else out += c;
      }
      return out + q;
    }
    case Json::value_t::array: {
      std::string out = "[";
      for (std::size_t i = 0; i < v.size(); ++i) out += (i ? ", " : "") + python_repr(v[i]);
      return out + "]";
    }
    case Json::value_t::object: {
      std::string out = "{";
      bool first = true;
      for (auto it = v.begin(); it != v.end(); ++it) {
        out += (first ? "" : ", ") + python_repr(Json(it.key())) + ": " + python_repr(it.value());
        first = false;
      }
      return out + "}";
    }
    default: return v.dump();
  }
}

std::string python_print(const Json& v) { return (v.is_string() ? v.get<std::string>() : python_repr(v)) + "\n"; }

std::string python_call(const tools::Tool& tool, const Json& arguments) {
  std::string out = tool.name + "(";
  bool first = true;
  for (auto& p : tools::parameter_order(tool.parameters)) {
    if (!arguments.contains(p)) continue;
    out += (first ? "" : ", ") + python_repr(arguments[p]);
    first = false;
  }
  return out + ")";
}

}  // namespace wand::agent

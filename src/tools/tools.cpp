// The registry, the argument check against a tool's JSON Schema, and the rendering of a tool as
// Python for prompts.
#include "tools/tools.h"

#include <fmt/core.h>

#include <algorithm>
#include <cmath>
#include <set>

#include "common/text.h"

namespace wand::tools {

bool RunUsage::charge(const std::string& key, double n, double limit) {
  std::lock_guard lk(mu_);
  double& v = totals_[key];
  if (v + n > limit) return false;
  v += n;
  return true;
}

double RunUsage::add(const std::string& key, double n) {
  std::lock_guard lk(mu_);
  return totals_[key] += n;
}

double RunUsage::get(const std::string& key) const {
  std::lock_guard lk(mu_);
  auto it = totals_.find(key);
  return it == totals_.end() ? 0 : it->second;
}

double CallContext::remaining_s() const {
  return std::max(0.0, std::chrono::duration<double>(deadline - std::chrono::steady_clock::now()).count());
}

Json to_json(const ToolCall& c) {
  Json j = {{"name", c.name}, {"arguments", c.arguments}, {"result_bytes", c.result_bytes}, {"duration_s", c.duration_s}};
  if (!c.error.empty()) j["error"] = c.error;
  return j;
}

// ------------------------------------------------------------------ the registry

namespace {
// A Python identifier, or identifiers joined by '.' (a tool namespace: fs.read), of 128 bytes at most.
bool valid_name(std::string_view name) {
  if (name.empty() || name.size() > 128) return false;
  for (std::size_t start = 0;;) {
    std::size_t dot = name.find('.', start);
    if (!is_python_identifier(name.substr(start, dot == std::string_view::npos ? dot : dot - start))) return false;
    if (dot == std::string_view::npos) return true;
    start = dot + 1;
  }
}
}  // namespace

bool hides_python_name(std::string_view name) {
  // Python 3's keywords and its built-ins of lower-case names (exceptions and constants are
  // capitalised), and the bridge's own ToolError.
  static const std::set<std::string_view> names = {
      "and", "as", "assert", "async", "await", "break", "class", "continue", "def", "del", "elif", "else", "except",
      "finally", "for", "from", "global", "if", "import", "in", "is", "lambda", "nonlocal", "not", "or", "pass",
      "raise", "return", "try", "while", "with", "yield", "False", "None", "True", "ToolError", "abs", "aiter", "all",
      "anext", "any", "ascii", "bin", "bool", "breakpoint", "bytearray", "bytes", "callable", "chr", "classmethod",
      "compile", "complex", "copyright", "credits", "delattr", "dict", "dir", "divmod", "enumerate", "eval", "exec",
      "exit", "filter", "float", "format", "frozenset", "getattr", "globals", "hasattr", "hash", "help", "hex", "id",
      "input", "int", "isinstance", "issubclass", "iter", "len", "license", "list", "locals", "map", "max",
      "memoryview", "min", "next", "object", "oct", "open", "ord", "pow", "print", "property", "quit", "range",
      "repr", "reversed", "round", "set", "setattr", "slice", "sorted", "staticmethod", "str", "sum", "super",
      "tuple", "type", "vars", "zip", "__import__", "__build_class__"};
  return names.count(name.substr(0, name.find('.'))) > 0;
}

VoidResult Registry::add(Tool tool) {
  if (!valid_name(tool.name))
    return Error{fmt::format("tool name '{}' is not a Python identifier or dotted identifiers", tool.name)};
  if (tools_.count(tool.name)) return Error{fmt::format("tool '{}' is registered twice", tool.name)};
  // A namespace and a function of the same name cannot both be Python attributes.
  for (const auto& [name, t] : tools_)
    if (name.rfind(tool.name + ".", 0) == 0 || tool.name.rfind(name + ".", 0) == 0)
      return Error{fmt::format("tool '{}' clashes with tool '{}' (one would be a namespace of the other)", tool.name, name)};
  if (!tool.handler) return Error{fmt::format("tool '{}' has no handler", tool.name)};
  const Json& p = tool.parameters;
  if (!p.is_object() || p.value("type", "") != "object" ||
      (p.contains("properties") && !p["properties"].is_object()))
    return Error{fmt::format("tool '{}': parameters must be an object schema ({{\"type\": \"object\", \"properties\": ...}})",
                             tool.name)};
  if (!(tool.timeout_s > 0) || tool.timeout_s > 24 * 3600)
    return Error{fmt::format("tool '{}': timeout must be a positive number of seconds up to 86400", tool.name)};
  std::string name = tool.name;
  tools_.emplace(std::move(name), std::make_shared<const Tool>(std::move(tool)));
  return ok_status();
}

const Tool* Registry::find(std::string_view name) const {
  auto it = tools_.find(name);
  return it == tools_.end() ? nullptr : it->second.get();
}

std::shared_ptr<const Tool> Registry::get(std::string_view name) const {
  auto it = tools_.find(name);
  return it == tools_.end() ? nullptr : it->second;
}

std::vector<const Tool*> Registry::list() const {
  std::vector<const Tool*> out;
  for (const auto& [_, t] : tools_) out.push_back(t.get());
  return out;
}

Result<Registry> Registry::select(const std::vector<std::string>& names) const {
  Registry out;
  for (const auto& n : names) {
    bool found = false;
    for (const auto& [name, t] : tools_) {
      if (name == n || name.rfind(n + ".", 0) == 0) {
        out.tools_[name] = t;
        found = true;
      }
    }
    if (!found) {
      std::string known;
      for (const auto& [name, _] : tools_) known += (known.empty() ? "" : ", ") + name;
      return Error{fmt::format("unknown tool '{}' (known: {})", n, known.empty() ? "none" : known)};
    }
  }
  return out;
}

VoidResult Registry::merge(const Registry& other) {
  for (const auto& [name, t] : other.tools_)
    if (tools_.count(name)) return Error{fmt::format("tool '{}' is registered twice", name)};
  for (const auto& [name, t] : other.tools_) tools_[name] = t;
  return ok_status();
}

// ------------------------------------------------------------------ the argument check

namespace {

std::string json_type(const Json& v) {
  if (v.is_null()) return "null";
  if (v.is_boolean()) return "a boolean";
  if (v.is_number_integer() || v.is_number_unsigned()) return "an integer";
  if (v.is_number()) return "a number";
  if (v.is_string()) return "a string";
  if (v.is_array()) return "an array";
  return "an object";
}

bool has_type(const Json& v, const std::string& t) {
  if (t == "string") return v.is_string();
  if (t == "integer")
    return v.is_number_integer() || v.is_number_unsigned() ||
           (v.is_number_float() && std::isfinite(v.get<double>()) && v.get<double>() == std::floor(v.get<double>()));
  if (t == "number") return v.is_number();
  if (t == "boolean") return v.is_boolean();
  if (t == "array") return v.is_array();
  if (t == "object") return v.is_object();
  if (t == "null") return v.is_null();
  return true;  // an unknown type word constrains nothing
}

std::string article(const std::string& t) {
  return (t == "integer" || t == "array" || t == "object") ? "an " + t : "a " + t;
}

VoidResult check(const Json& s, const Json& v, const std::string& path) {
  if (!s.is_object()) return ok_status();
  auto bad = [&](const std::string& why) {
    return Error{path.empty() ? fmt::format("arguments: {}", why) : fmt::format("parameter '{}': {}", path, why)};
  };
  if (s.contains("type")) {
    const Json& t = s["type"];
    std::vector<std::string> types;
    if (t.is_string()) types.push_back(t.get<std::string>());
    if (t.is_array())
      for (const auto& x : t)
        if (x.is_string()) types.push_back(x.get<std::string>());
    if (!types.empty() && std::none_of(types.begin(), types.end(), [&](const std::string& x) { return has_type(v, x); })) {
      std::string want;
      for (const auto& x : types) want += (want.empty() ? "" : " or ") + article(x);
      return bad(fmt::format("expected {}, got {}", want, json_type(v)));
    }
  }
  if (s.contains("enum") && s["enum"].is_array() &&
      std::find(s["enum"].begin(), s["enum"].end(), v) == s["enum"].end()) {
    std::string allowed;
    for (const auto& e : s["enum"]) allowed += (allowed.empty() ? "" : ", ") + e.dump();
    return bad(fmt::format("must be one of {}, got {}", allowed, v.dump()));
  }
  if (v.is_number()) {
    double x = v.get<double>();
    if (s.contains("minimum") && s["minimum"].is_number() && x < s["minimum"].get<double>())
      return bad(fmt::format("must be at least {}, got {}", s["minimum"].dump(), v.dump()));
    if (s.contains("maximum") && s["maximum"].is_number() && x > s["maximum"].get<double>())
      return bad(fmt::format("must be at most {}, got {}", s["maximum"].dump(), v.dump()));
  }
  if (v.is_string()) {
    // Lengths in code points, as JSON Schema counts them.
    std::size_t n = 0;
    for (unsigned char c : v.get_ref<const std::string&>()) n += (c & 0xC0) != 0x80;
    if (s.contains("minLength") && s["minLength"].is_number() && n < s["minLength"].get<double>())
      return bad(fmt::format("must be at least {} characters long, got {}", s["minLength"].dump(), n));
    if (s.contains("maxLength") && s["maxLength"].is_number() && n > s["maxLength"].get<double>())
      return bad(fmt::format("must be at most {} characters long, got {}", s["maxLength"].dump(), n));
  }
  if (v.is_array()) {
    if (s.contains("minItems") && s["minItems"].is_number() && v.size() < s["minItems"].get<double>())
      return bad(fmt::format("must have at least {} items, got {}", s["minItems"].dump(), v.size()));
    if (s.contains("maxItems") && s["maxItems"].is_number() && v.size() > s["maxItems"].get<double>())
      return bad(fmt::format("must have at most {} items, got {}", s["maxItems"].dump(), v.size()));
    if (s.contains("items") && s["items"].is_object())
      for (std::size_t i = 0; i < v.size(); ++i)
        if (auto ok = check(s["items"], v[i], fmt::format("{}[{}]", path, i)); !ok) return ok;
  }
  if (v.is_object()) {
    const Json props = s.value("properties", Json::object());
    if (s.contains("required") && s["required"].is_array())
      for (const auto& r : s["required"])
        if (r.is_string() && !v.contains(r.get<std::string>()))
          return Error{fmt::format("missing required parameter '{}{}'", path.empty() ? "" : path + ".", r.get<std::string>())};
    for (const auto& [k, x] : v.items()) {
      std::string sub = path.empty() ? k : path + "." + k;
      if (props.is_object() && props.contains(k)) {
        if (auto ok = check(props[k], x, sub); !ok) return ok;
      } else if (s.contains("additionalProperties")) {
        const Json& ap = s["additionalProperties"];
        if (ap.is_boolean() && !ap.get<bool>()) {
          std::string known;
          for (const auto& [p, _] : props.items()) known += (known.empty() ? "" : ", ") + p;
          return Error{fmt::format("unknown parameter '{}' (parameters: {})", sub, known.empty() ? "none" : known)};
        }
        if (ap.is_object())
          if (auto ok = check(ap, x, sub); !ok) return ok;
      }
    }
  }
  return ok_status();
}

}  // namespace

VoidResult validate_args(const Json& schema, const Json& args) {
  if (!args.is_object()) return Error{fmt::format("arguments must be a JSON object, got {}", json_type(args))};
  return check(schema, args, "");
}

Result<Json> call(const Tool& tool, const Json& args) {
  if (auto ok = validate_args(tool.parameters, args); !ok)
    return Error{fmt::format("tool '{}': {}", tool.name, ok.error().message)};
  CallContext ctx{tool.name,
                  std::chrono::steady_clock::now() +
                      std::chrono::duration_cast<std::chrono::steady_clock::duration>(std::chrono::duration<double>(tool.timeout_s)),
                  tool.timeout_s};
  try {
    auto r = tool.handler(args, ctx);
    if (!r) return Error{fmt::format("tool '{}': {}", tool.name, r.error().message), r.error().code};
    return r;
  } catch (const std::exception& e) {
    return Error{fmt::format("tool '{}' failed: {}", tool.name, e.what())};
  }
}

// ------------------------------------------------------------------ tools as Python

namespace {

std::string py_type(const Json& s) {
  if (!s.is_object() || !s.contains("type")) return "Any";
  const Json& t = s["type"];
  auto one = [&](const std::string& x) -> std::string {
    if (x == "string") return "str";
    if (x == "integer") return "int";
    if (x == "number") return "float";
    if (x == "boolean") return "bool";
    if (x == "array") return s.contains("items") ? "list[" + py_type(s["items"]) + "]" : "list";
    if (x == "object") return "dict";
    if (x == "null") return "None";
    return "Any";
  };
  if (t.is_string()) return one(t.get<std::string>());
  if (t.is_array()) {
    std::string out;
    for (const auto& x : t)
      if (x.is_string()) out += (out.empty() ? "" : " | ") + one(x.get<std::string>());
    return out.empty() ? "Any" : out;
  }
  return "Any";
}

// A JSON value as a Python literal.
std::string py_literal(const Json& v) {
  if (v.is_null()) return "None";
  if (v.is_boolean()) return v.get<bool>() ? "True" : "False";
  if (v.is_array()) {
    std::string out = "[";
    for (std::size_t i = 0; i < v.size(); ++i) out += (i ? ", " : "") + py_literal(v[i]);
    return out + "]";
  }
  if (v.is_object()) {
    std::string out = "{";
    bool first = true;
    for (const auto& [k, x] : v.items()) {
      out += (first ? "" : ", ") + Json(k).dump() + ": " + py_literal(x);
      first = false;
    }
    return out + "}";
  }
  return v.dump();  // numbers; strings as JSON escapes, which Python reads the same
}

std::string constraints(const Json& s) {
  std::vector<std::string> c;
  if (s.contains("enum") && s["enum"].is_array()) {
    std::string e;
    for (const auto& x : s["enum"]) e += (e.empty() ? "" : ", ") + py_literal(x);
    c.push_back("one of " + e);
  }
  if (s.contains("minimum") && s.contains("maximum"))
    c.push_back(s["minimum"].dump() + ".." + s["maximum"].dump());
  else if (s.contains("minimum"))
    c.push_back(">= " + s["minimum"].dump());
  else if (s.contains("maximum"))
    c.push_back("<= " + s["maximum"].dump());
  if (s.contains("maxLength")) c.push_back("at most " + s["maxLength"].dump() + " characters");
  if (s.contains("default")) c.push_back("default " + py_literal(s["default"]));
  std::string out;
  for (const auto& x : c) out += (out.empty() ? "" : "; ") + x;
  return out;
}

}  // namespace

std::vector<std::string> parameter_order(const Json& parameters) {
  const Json props = parameters.value("properties", Json::object());
  std::vector<std::string> order;
  if (parameters.contains("required") && parameters["required"].is_array())
    for (const auto& r : parameters["required"])
      if (r.is_string() && props.contains(r.get<std::string>())) order.push_back(r.get<std::string>());
  // Then the optional ones: Python wants them after those without defaults.
  for (const auto& [k, _] : props.items())
    if (std::find(order.begin(), order.end(), k) == order.end()) order.push_back(k);
  return order;
}

std::string python_signature(const Tool& tool) {
  const Json props = tool.parameters.value("properties", Json::object());
  std::vector<std::string> order = parameter_order(tool.parameters);
  std::vector<std::string> required;
  if (tool.parameters.contains("required") && tool.parameters["required"].is_array())
    for (const auto& r : tool.parameters["required"])
      if (r.is_string()) required.push_back(r.get<std::string>());
  auto is_required = [&](const std::string& k) { return std::find(required.begin(), required.end(), k) != required.end(); };
  std::string params;
  for (const auto& k : order) {
    const Json& s = props[k];
    std::string p = k + ": " + py_type(s);
    if (!is_required(k)) p += " = " + (s.is_object() && s.contains("default") ? py_literal(s["default"]) : "None");
    params += (params.empty() ? "" : ", ") + p;
  }
  std::string out = fmt::format("def {}({}) -> {}:\n", tool.name, params, py_type(tool.result));
  std::string doc = tool.description.empty() ? "(no description)" : tool.description;
  out += "    \"\"\"";
  for (std::size_t i = 0, start = 0; i <= doc.size(); ++i) {
    if (i == doc.size() || doc[i] == '\n') {
      out += (start ? "    " : "") + doc.substr(start, i - start) + "\n";
      start = i + 1;
    }
  }
  if (!order.empty()) {
    out += "\n    Args:\n";
    for (const auto& k : order) {
      const Json& s = props[k];
      std::string desc = s.is_object() ? s.value("description", "") : "";
      std::string c = s.is_object() ? constraints(s) : "";
      std::string text = c.empty() ? desc : desc.empty() ? c : desc + " (" + c + ")";
      out += fmt::format("        {} ({}){}\n", k, py_type(s), text.empty() ? "" : ": " + text);
    }
  }
  if (tool.parameters.contains("examples") && tool.parameters["examples"].is_array() &&
      !tool.parameters["examples"].empty() && tool.parameters["examples"][0].is_object()) {
    std::string args;
    for (const auto& [k, v] : tool.parameters["examples"][0].items())
      args += (args.empty() ? "" : ", ") + k + "=" + py_literal(v);
    out += fmt::format("\n    Example:\n        {}({})\n", tool.name, args);
  }
  out += "    \"\"\"\n";
  return out;
}

std::string python_signatures(const Registry& reg) {
  std::string out;
  for (const Tool* t : reg.list()) out += (out.empty() ? "" : "\n") + python_signature(*t);
  return out;
}

}  // namespace wand::tools

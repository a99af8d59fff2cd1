// The built-ins assembled (http_get and llm are made here), and `--tools` turned into a Registry.
#include <fmt/core.h>

#include <algorithm>

#include "llm/llm.h"
#include "tools/builtin_parts.h"

namespace wand::tools {

Result<Tool> http_tool(const BuiltinOptions& opt) {
  if (opt.allow_hosts.empty()) return Error{"tool 'http_get' is off until --allow-host names the hosts it may reach"};
  Tool t;
  t.name = "http_get";
  std::string hosts;
  for (const auto& h : opt.allow_hosts) hosts += (hosts.empty() ? "" : ", ") + h;
  t.description = fmt::format(
      "Fetches a URL with HTTP GET from the allowed hosts ({}). Returns a dict with status, url (after "
      "redirects), content_type, body (text, at most {} bytes) and truncated.",
      hosts, opt.http_max_bytes);
  t.parameters = {{"type", "object"},
                  {"properties", {{"url", {{"type", "string"}, {"description", "an http or https URL"}, {"minLength", 1}}}}},
                  {"required", {"url"}},
                  {"additionalProperties", false},
                  {"examples", {{{"url", "https://" + opt.allow_hosts[0] + "/"}}}}};
  t.result = {{"type", "object"}};
  t.timeout_s = 30;
  t.source = "builtin";
  t.handler = [opt](const Json& a, const CallContext& ctx) -> Result<Json> {
    auto r = http_get(a["url"].get<std::string>(), opt, ctx.remaining_s());
    // Said as the bridge's backstop says it, whichever notices first.
    if (!r && r.error().message.rfind("timed out", 0) == 0) return Error{fmt::format("timed out after {:g} s", ctx.timeout_s)};
    return r;
  };
  return t;
}

Result<Tool> llm_tool(const BuiltinOptions& opt) {
  llm::Backend* model = opt.llm;
  if (!model && opt.open_llm) {
    auto opened = opt.open_llm();
    if (!opened) return opened.error();
    model = *opened;
  }
  if (!model) return Error{"tool 'llm' needs a model: give --tools-model SPEC"};
  Tool t;
  t.name = "llm";
  t.description = fmt::format(
      "Asks the language model: returns its answer to `prompt` as text. This run may call it {} times and "
      "generate {} tokens in all.",
      opt.llm_max_calls, opt.llm_max_tokens);
  t.parameters = {{"type", "object"},
                  {"properties",
                   {{"prompt", {{"type", "string"}, {"minLength", 1}}},
                    {"max_tokens", {{"type", "integer"}, {"minimum", 1}, {"maximum", 4096}, {"default", 256}}},
                    {"temperature", {{"type", "number"}, {"minimum", 0}, {"maximum", 2}, {"default", 0}}}}},
                  {"required", {"prompt"}},
                  {"additionalProperties", false},
                  {"examples", {{{"prompt", "What is the capital of France? Answer with one word."}, {"max_tokens", 8}}}}};
  t.result = {{"type", "string"}};
  t.timeout_s = 300;
  t.source = "builtin";
  int max_calls = opt.llm_max_calls, max_tokens = opt.llm_max_tokens;
  t.handler = [model, max_calls, max_tokens](const Json& a, const CallContext& ctx) -> Result<Json> {
    if (!ctx.usage->charge("llm.calls", 1, max_calls))
      return Error{fmt::format("budget: this program may call llm at most {} times", max_calls)};
    // The request asks for no more than the run has left, and is charged what it used.
    int left = max_tokens - static_cast<int>(ctx.usage->get("llm.tokens"));
    if (left <= 0) return Error{fmt::format("budget: this program's llm calls used their {} tokens", max_tokens)};
    llm::GenerateOptions g;
    g.max_tokens = std::min(a.value("max_tokens", 256), left);
    g.temperature = a.value("temperature", 0.0f);
    auto r = model->chat({{"user", a["prompt"].get<std::string>()}}, g);
    if (!r) return r.error();
    if (r->empty()) return Error{"the model returned no completion"};
    ctx.usage->add("llm.tokens", (*r)[0].completion_tokens);
    return Json((*r)[0].text);
  };
  return t;
}

const std::vector<std::string>& builtin_names() {
  static const std::vector<std::string> names = {"fs", "http_get", "llm", "search", "sql"};
  return names;
}

Result<Registry> builtin_tools(const std::vector<std::string>& names, const BuiltinOptions& opt) {
  Registry reg;
  for (const auto& n : names) {
    std::string base = n.substr(0, n.find('.'));
    Result<std::vector<Tool>> made = Error{""};
    if (base == "fs") {
      made = fs_tools(opt);
    } else {
      Result<Tool> one = base == "sql"        ? sql_tool(opt)
                         : base == "search"   ? search_tool(opt)
                         : base == "http_get" ? http_tool(opt)
                         : base == "llm"      ? llm_tool(opt)
                                              : Result<Tool>(Error{""});
      if (one) made = std::vector<Tool>{std::move(one.value())};
      else made = one.error();
    }
    if (!made && made.error().message.empty()) {
      std::string known;
      for (const auto& k : builtin_names()) known += (known.empty() ? "" : ", ") + k;
      return Error{fmt::format("unknown built-in tool '{}' (built-ins: {}; files of command tools end in .json)", n, known)};
    }
    if (!made) return made.error();
    bool found = false;
    for (auto& t : made.value()) {
      if (n != base && t.name != n) continue;  // "fs.read" names one tool of "fs"
      found = true;
      if (reg.find(t.name)) continue;  // "fs,fs.read": once
      if (auto ok = reg.add(std::move(t)); !ok) return ok.error();
    }
    if (!found) return Error{fmt::format("unknown built-in tool '{}' (fs offers fs.read, fs.list, fs.write)", n)};
  }
  return reg;
}

Result<Registry> load_tools(const std::vector<std::string>& specs, const BuiltinOptions& opt) {
  Registry reg;
  std::vector<std::string> builtins;
  for (const auto& spec : specs) {
    std::size_t start = 0;
    while (start <= spec.size()) {
      std::size_t comma = spec.find(',', start);
      if (comma == std::string::npos) comma = spec.size();
      std::string item = spec.substr(start, comma - start);
      start = comma + 1;
      if (item.empty()) continue;
      bool file = item.find('/') != std::string::npos ||
                  (item.size() > 5 && item.compare(item.size() - 5, 5, ".json") == 0);
      if (!file) {
        builtins.push_back(item);
        continue;
      }
      auto loaded = load_command_tools(item);
      if (!loaded) return loaded.error();
      if (auto ok = reg.merge(*loaded); !ok) return Error{fmt::format("{}: {}", item, ok.error().message)};
    }
  }
  if (!builtins.empty()) {
    auto b = builtin_tools(builtins, opt);
    if (!b) return b.error();
    if (auto ok = reg.merge(*b); !ok) return ok.error();
  }
  return reg;
}

}  // namespace wand::tools

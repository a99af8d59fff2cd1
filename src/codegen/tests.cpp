// Problems, their visible tests, asserts from model output, and running programs against tests.
#include <fmt/core.h>

#include <algorithm>
#include <cctype>
#include <set>

#include "codegen/codegen.h"
#include "common/text.h"
#include "reason/extract.h"

namespace wand::codegen {
namespace {

// Whitespace folded, for comparing asserts.
std::string folded(std::string_view s) {
  std::string out;
  for (char c : s)
    if (!std::isspace(static_cast<unsigned char>(c))) out += c;
  return out;
}

bool calls(std::string_view code, const std::string& name) {
  if (name.empty()) return true;
  for (std::size_t p = code.find(name); p != std::string_view::npos; p = code.find(name, p + 1)) {
    bool starts = p == 0 || !(std::isalnum(static_cast<unsigned char>(code[p - 1])) || code[p - 1] == '_');
    std::size_t q = p + name.size();
    while (q < code.size() && code[q] == ' ') ++q;
    if (starts && q < code.size() && code[q] == '(') return true;
  }
  return false;
}

// The name of the first function called in an assert/example line ("assert f(1) == 2" -> f;
// "assert math.isclose(area(2), 12.5)" -> area): builtins and attributes (math.isclose) are not it.
std::string first_call(std::string_view code) {
  static const std::set<std::string, std::less<>> builtins = {
      "assert", "print", "set",   "sorted", "abs", "len",   "list", "round", "tuple",    "str",  "int",    "float",
      "dict",   "bool",  "sum",   "min",    "max", "any",   "all",  "map",   "filter",   "zip",  "range",  "frozenset",
      "type",   "isinstance", "repr", "reversed", "enumerate", "next", "iter", "chr", "ord", "hash", "divmod", "pow"};
  for (std::size_t i = 0; i < code.size(); ++i) {
    if (code[i] != '(' || i == 0) continue;
    std::size_t b = i;
    while (b > 0 && (std::isalnum(static_cast<unsigned char>(code[b - 1])) || code[b - 1] == '_')) --b;
    std::string_view name = code.substr(b, i - b);
    if (name.empty() || std::isdigit(static_cast<unsigned char>(name[0])) || (b > 0 && code[b - 1] == '.') ||
        builtins.contains(name))
      continue;
    return std::string(name);
  }
  return "";
}

std::string strip_prompt(std::string_view line) {
  std::string t = trim(line);
  if (t.starts_with(">>> ") || t.starts_with("... ")) return t.substr(4);
  if (t == ">>>" || t == "...") return "";
  return t;
}

// Each completion judged against `task`, all in one sandbox batch.
std::vector<feedback::Verdict> judge_batch(sandbox::Sandbox& sb, const feedback::Task& task,
                                           const std::vector<std::string>& completions, double timeout_s) {
  feedback::JudgeOptions jo;
  jo.timeout_s = timeout_s;
  std::vector<feedback::Submission> subs;
  std::vector<sandbox::ExecRequest> reqs;
  for (auto& c : completions) {
    subs.push_back(feedback::prepare(task, c, jo));
    for (auto& r : subs.back().requests) reqs.push_back(r);
  }
  auto results = sb.run_batch(reqs);
  std::vector<feedback::Verdict> out;
  std::size_t k = 0;
  for (auto& sub : subs) {
    std::span<const sandbox::ExecResult> rs(results.data() + k, sub.requests.size());
    k += rs.size();
    out.push_back(feedback::judge(task, sub, rs, jo));
  }
  return out;
}

}  // namespace

std::vector<std::string> docstring_examples(const std::string& text, const std::string& entry) {
  std::vector<std::string> out;
  auto lines = split_lines(text);
  for (std::size_t i = 0; i < lines.size(); ++i) {
    std::string t = trim(lines[i]);
    if (t.starts_with(">>>")) {
      std::string expr = trim(t.substr(3));
      // The expected output: the next lines up to a blank line, another prompt or the docstring's end.
      std::string expected;
      std::size_t j = i + 1;
      for (; j < lines.size(); ++j) {
        std::string o = trim(lines[j]);
        if (o.empty() || o.starts_with(">>>") || o.starts_with("\"\"\"") || o.starts_with("'''")) break;
        expected += (expected.empty() ? "" : " ") + o;
      }
      if (!expr.empty() && !expected.empty() && calls(expr, entry)) out.push_back(fmt::format("assert {} == {}", expr, expected));
      i = j - 1;
      continue;
    }
    // "f(x) ==> y", "f(x) -> y", "f(x) ➞ y", "f(x) => y", "f(x) == y", "f(x) should return y"
    static const std::vector<std::string> arrows = {"==>", "➞", "=>", "->", "==", "should return"};
    if (!calls(t, entry)) continue;
    for (auto& a : arrows) {
      std::size_t p = t.find(a);
      if (p == std::string::npos) continue;
      std::string lhs = trim(t.substr(0, p)), rhs = trim(t.substr(p + a.size()));
      if (lhs.starts_with("-") || lhs.starts_with("*")) lhs = trim(lhs.substr(1));  // a list item
      if (!rhs.empty() && (rhs.back() == '.' || rhs.back() == ',')) rhs.pop_back();  // the sentence's end
      // Prose docstrings write other languages' literals (HumanEval/76: "=> true").
      if (rhs == "true" || rhs == "false") rhs[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(rhs[0])));
      if (rhs == "null") rhs = "None";
      // The call must be the whole left side: "for f(x) the result..." is prose.
      if (lhs.empty() || rhs.empty() || !lhs.starts_with(entry) || lhs.back() != ')') break;
      out.push_back(fmt::format("assert {} == {}", lhs, rhs));
      break;
    }
  }
  return out;
}

std::vector<std::string> parse_asserts(const std::string& text, const std::string& entry) {
  // The code: every fenced block when there are some (a tester may split its asserts), else the text.
  std::string code;
  auto blocks = feedback::code_blocks(text);
  if (blocks.empty()) {
    code = text;
    std::erase(code, '\r');
  } else {
    for (auto& b : blocks) code += b.code;
  }
  std::vector<std::string> out;
  std::set<std::string> seen;
  auto keep = [&](std::string a) {
    if (!calls(a, entry)) return;
    if (seen.insert(folded(a)).second) out.push_back(std::move(a));
  };
  auto lines = split_lines(code);
  for (std::size_t i = 0; i < lines.size(); ++i) {
    std::string t = strip_prompt(lines[i]);
    if (t.starts_with("assert ") || t.starts_with("assert(")) {
      std::string a = t;
      int depth = reason::bracket_balance(t);
      // An open bracket or a trailing backslash continues the statement.
      while ((depth > 0 || a.ends_with("\\")) && i + 1 < lines.size()) {
        std::string next = strip_prompt(lines[++i]);
        if (a.ends_with("\\")) a.pop_back();
        a += " " + next;
        depth += reason::bracket_balance(next);
      }
      // A trailing comment is not part of the statement (and confuses nothing), but keep it short.
      keep(trim(a));
      continue;
    }
    // A REPL pair: ">>> call" then its output.
    std::string raw = trim(lines[i]);
    if (raw.starts_with(">>> ") && i + 1 < lines.size()) {
      std::string o = trim(lines[i + 1]);
      if (!o.empty() && !o.starts_with(">>>") && !o.starts_with("...")) {
        keep(fmt::format("assert {} == {}", trim(raw.substr(4)), o));
        ++i;
      }
    }
  }
  return out;
}

std::vector<std::string> parseable_asserts(sandbox::Sandbox& sb, const std::vector<std::string>& asserts,
                                           double timeout_s, const std::string& entry) {
  if (asserts.empty()) return {};
  sandbox::ExecRequest r;
  r.code =
      "import ast, builtins, json, sys\n"
      "req = json.load(sys.stdin)\n"
      "known = set(dir(builtins)) | {req['entry']}\n"
      "ok = []\n"
      "for s in req['asserts']:\n"
      "    try:\n"
      "        m = ast.parse(s)\n"
      "        good = len(m.body) == 1 and isinstance(m.body[0], ast.Assert)\n"
      "        if good and req['entry']:\n"
      "            names = [n for n in ast.walk(m) if isinstance(n, ast.Name)]\n"
      "            bound = {n.id for n in names if not isinstance(n.ctx, ast.Load)}\n"
      "            good = all(n.id in known or n.id in bound for n in names)\n"
      "        ok.append(good)\n"
      "    except Exception:\n"
      "        ok.append(False)\n"
      "print(json.dumps(ok))\n";
  r.stdin_data = dump_text(Json{{"asserts", asserts}, {"entry", entry}});
  r.limits.timeout_s = timeout_s;
  auto res = sb.run(r);
  auto flags = parse_json(res.stdout_data, "the assert check");
  std::vector<std::string> out;
  if (res.status != sandbox::Status::ok || !flags || !flags->is_array() || flags->size() != asserts.size())
    return out;  // cannot tell: run none rather than a test module that does not parse
  for (std::size_t i = 0; i < asserts.size(); ++i)
    if ((*flags)[i].is_boolean() && (*flags)[i].get<bool>()) out.push_back(asserts[i]);
  return out;
}

std::vector<std::pair<std::string, std::string>> parse_io_cases(const std::string& text) {
  std::vector<std::pair<std::string, std::string>> cases;
  std::set<std::pair<std::string, std::string>> seen;
  enum { outside, input, output } at = outside;
  std::string in, out;
  auto finish = [&] {
    if (at == output && seen.emplace(in, out).second) cases.emplace_back(in, out);
    at = outside;
  };
  // "Input:" / "Output:" labels, with the side's first line after them when it is on the same line.
  auto label = [](const std::string& t, std::string_view name, std::string& rest) {
    if (!t.starts_with(name)) return false;
    rest = trim(t.substr(name.size()));
    return true;
  };
  for (auto line : split_lines(text)) {
    std::string t = trim(line), rest;
    if (t.starts_with("```")) {  // a fence ends an output (a closing one); the cases go on after an opening one
      if (at == output) finish();
      continue;
    }
    if (label(t, "Input:", rest)) {
      finish();
      at = input, in = rest.empty() ? "" : rest + "\n", out.clear();
    } else if (at == input && label(t, "Output:", rest)) {
      at = output, out = rest.empty() ? "" : rest + "\n";
    } else if (at == output && t.empty()) {
      finish();
    } else if (at != outside) {
      (at == input ? in : out) += std::string(line) + "\n";
    }
  }
  finish();
  return cases;
}

std::string case_text(const std::pair<std::string, std::string>& io) {
  return fmt::format("Input:\n{}Output:\n{}", io.first, io.second);
}

Problem problem_from_task(const feedback::Task& task) {
  Problem p;
  p.task = task;
  p.has_hidden = true;
  if (task.format == "humaneval") {
    p.description = task.prompt;
    p.entry = task.entry_point;
    p.visible = docstring_examples(task.prompt, task.entry_point);
  } else if (task.format == "mbpp") {
    p.description = task.prompt;
    p.visible = {task.test_list.front()};  // MBPP's prompt shows the first test (Austin et al. 2021)
    // The function the tests call: the first test's, else any test's (a first test such as
    // `assert set(f(x)) == ...` calls set() first).
    for (const auto& t : task.test_list)
      if (p.entry = first_call(t); !p.entry.empty()) break;
  } else if (task.format == "stdio") {
    p.description = task.prompt + "\nThe program reads standard input and writes the answer to standard output.";
    p.visible_io = {task.io.front()};
  } else {
    p.description = task.prompt;
    p.has_hidden = false;
  }
  return p;
}

Problem problem_from_description(const std::string& description, const std::vector<std::string>& asserts,
                                 const std::string& entry) {
  Problem p;
  p.description = description;
  p.entry = entry;
  if (p.entry.empty())
    for (auto& a : asserts)
      if (p.entry = first_call(a); !p.entry.empty()) break;
  if (p.entry.empty())
    for (auto line : split_lines(description))
      if (auto t = trim(line); t.starts_with(">>>"))
        if (p.entry = first_call(t); !p.entry.empty()) break;
  p.task.task_id = "0";
  p.task.format = "description";
  p.task.kind = feedback::TaskKind::asserts;
  p.task.prompt = description;
  p.task.test_list = asserts;
  p.has_hidden = !asserts.empty();
  p.visible = asserts.empty() ? docstring_examples(description, p.entry) : asserts;
  return p;
}

std::string program_of(const Problem& p, const std::string& completion) {
  return p.task.format == "humaneval" ? p.task.prompt + completion : completion;
}

std::vector<feedback::Verdict> run_tests(sandbox::Sandbox& sb, const Problem& p, const std::vector<std::string>& programs,
                                         const std::vector<std::string>& asserts,
                                         const std::vector<std::pair<std::string, std::string>>& io, double timeout_s) {
  // The tests as an MBPP-shaped task (program, then each assert judged on its own), or stdio cases.
  feedback::Task t;
  t.task_id = p.task.task_id;
  t.kind = io.empty() ? feedback::TaskKind::asserts : feedback::TaskKind::stdio;
  t.format = io.empty() ? "mbpp" : "stdio";
  t.test_list = asserts;
  t.setup = p.task.setup;
  t.io = io;
  return judge_batch(sb, t, programs, timeout_s);
}

std::vector<feedback::Verdict> judge_hidden(sandbox::Sandbox& sb, const Problem& p,
                                            const std::vector<std::string>& completions, double timeout_s) {
  if (!p.has_hidden) return {};
  if (p.task.format == "description") {
    std::vector<std::string> programs;
    for (auto& c : completions) programs.push_back(program_of(p, c));
    return run_tests(sb, p, programs, p.task.test_list, {}, timeout_s);
  }
  return judge_batch(sb, p.task, completions, timeout_s);
}

}  // namespace wand::codegen

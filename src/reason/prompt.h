// Prompt templates: files in the tree's prompts/ folder (embedded at build time), or a user's
// own (--prompt FILE). DESIGN.md: prompts are data.
//
// A template is text in sections. A line "@@ NAME" starts a section; lines before the first
// section must be blank or comments ("# ..."). Sections:
//   @@ prompt      the whole prompt of a completion model (at most one; excludes chat turns)
//   @@ system      chat turns, in order: a system message, then user/assistant turns;
//   @@ user        the last turn must be a user turn
//   @@ assistant
//   @@ stop        stop sequences, one a line; "\n" in them stands for a newline
// A prompt section's text is its lines, each ending in a newline; a chat turn's is its lines
// without the blank lines around them. "{{end}}" ends a prompt's text mid-line, without the
// newline ("Answer: {{end}}" gives "Answer: "). Placeholders, replaced when rendering:
//   {{question}}   the question (method templates: required, in the prompt or the last turn)
//   {{program}}, {{feedback}}   repair templates: the failed program and the verdict's feedback
// Double braces keep a program's own braces (dicts, f-strings) as they are. An unknown
// placeholder, an unknown section, or a template without its required placeholder is an error
// naming the file and line.
#pragma once
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "llm/llm.h"

namespace wand::reason {

struct Template {
  std::string name;                   // the file it came from ("prompts/pot.chat.txt")
  std::string prompt;                 // completion style; empty for chat
  std::vector<llm::Message> messages; // chat style; empty for completion
  std::vector<std::string> stop;
  std::string hash;                   // SHA-256 (hex) of the file's bytes: recorded in every run
  bool chat() const { return !messages.empty(); }
};

// SHA-256 of `data` as 64 lowercase hex digits: a template's hash and a bench dataset's
// fingerprint (file_sha256), so runs can tell the same bytes from changed ones.
std::string sha256_hex(std::string_view data);

// Parses template text; `name` appears in errors ("NAME line N: ..."). `required` lists the
// placeholders the template must use; every placeholder it uses must be in `allowed`.
Result<Template> parse_template(const std::string& text, const std::string& name,
                                const std::vector<std::string>& allowed = {"question"},
                                const std::vector<std::string>& required = {"question"});
// Reads a template file (errors name the path).
Result<Template> load_template(const std::string& path, const std::vector<std::string>& allowed = {"question"},
                               const std::vector<std::string>& required = {"question"});
// An embedded template: prompts/METHOD.FAMILY.txt; method cot, pot, pal, flow or repair; family
// wand, completion or chat (flow: completion or chat only).
Result<Template> builtin_template(const std::string& method, const std::string& family);

// The template with its placeholders filled in; values are inserted as they are.
struct Rendered {
  std::string prompt;
  std::vector<llm::Message> messages;
};
Rendered render(const Template& t, const std::map<std::string, std::string>& values);
// A rendered prompt as the run store records it: the completion prompt, or the chat messages as
// a JSON array of {"role", "content"} (what `wand export --run` reads back as messages).
std::string prompt_text(const Rendered& r);

}  // namespace wand::reason

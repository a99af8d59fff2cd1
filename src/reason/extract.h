// The program in a raw model completion, for the program-writing methods (PoT, PAL), whatever
// shape the model gave it. Builds on feedback::extract_code/code_blocks (fences) and adds what
// reasoning needs: <code> tags, bare code among prose, and the choice of the block that holds
// the answer.
#pragma once
#include <string>
#include <string_view>

namespace wand::reason {

struct Extracted {
  std::string program;  // "" when there is none (outcome no_program)
  // Where it came from: "fence" (a ``` or ~~~ block, closed or cut off by max_tokens),
  // "code_tag" (<code>...</code> or <pre>...</pre>), "bare" (code lines among prose),
  // or "" when none was found.
  std::string source;
};

// Rules, in order:
//  0. CRLF and lone CR read as LF; a UTF-8 byte-order mark is dropped.
//  1. Fenced blocks: among those tagged python (or an alias) or untagged, else all, the first
//     that holds what the method reads (pal: a top-level `def solution(`; pot: a top-level
//     assignment to `answer`); else the first of them. So a program followed by an "Output:"
//     block wins over it, and prose examples before the real program lose to it.
//  2. Else <code>/<pre> elements (HTML entities &lt; &gt; &amp; &quot; &#39; decoded), chosen
//     the same way.
//  3. Else bare code: runs of lines that read as Python (an assignment, a statement keyword, a
//     call, a comment, or a line continuing an open bracket or an indented block), each ended
//     by a prose line; chosen the same way, so prose before and after is left out and a
//     completion that runs on into the next few-shot question keeps its first program. REPL prompts (">>> ", "... ")
//     are removed when the code is written as a session.
// Then indentation is made consistent: each tab in a line's leading whitespace becomes four
// spaces (models mix a tab-indented line into space-indented code, a TabError in Python).
// `method` is "pot" or "pal". A program that Python cannot parse is still returned: its
// syntax error is the run's recorded outcome.
Extracted extract_program(std::string_view completion, std::string_view method);

// How many brackets ((, [, {) a line of Python leaves open (negative: closes), skipping string
// literals (with their escapes) and a trailing comment: whether a statement goes on to the next
// line. A string that spans lines is not followed.
int bracket_balance(std::string_view line);

}  // namespace wand::reason

// Grammar-constrained decoding: GBNF grammars (the format llama.cpp documents in its
// grammars/README.md) parsed into a rule graph, a pushdown matcher that advances over UTF-8
// bytes, and a token constraint that keeps the embedded engine's sampler inside the grammar.
//
// GBNF accepted here: `name ::= alternatives` rules (names of letters, digits, '-', '_'), `|`,
// sequences, `( )` groups (nested up to 200 deep), `*` `+` `?` `{m}` `{m,}` `{m,n}` (bounds up
// to 2000), "literals" and [classes] / [^negated] with ranges, `.` (any code point), `#` comments,
// and the escapes \n \r \t \\ \" \' \[ \] \- \/ \^ \xHH \uHHHH \UHHHHHHHH. A newline ends a rule
// except inside a group or after `|`. `root` is the start rule. Terminals are Unicode code
// points; the matcher takes bytes and decodes UTF-8.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "llm/tokenizer.h"

namespace wand::llm {

class Sampler;

class Grammar {
 public:
  // Parses GBNF text; `source` names it in errors, which read "SOURCE:LINE:COL: what was expected"
  // (an undefined rule, a rule defined twice, a missing root and left recursion are errors too:
  // the matcher is top-down, so a rule must consume a character before it can reach itself).
  static Result<std::shared_ptr<const Grammar>> parse(std::string_view text, const std::string& source);
  // A built-in grammar by name (builtin_names(): python-block, pot; grammars/*.gbnf, embedded at
  // build time) or else a path to a .gbnf file.
  static Result<std::shared_ptr<const Grammar>> load(const std::string& name_or_path);
  static std::vector<std::string> builtin_names();

  const std::string& source() const { return source_; }

  // The compiled rule graph, for the matcher: every alternative of every rule is a run of
  // elements in `elements`, ended by an kEnd element.
  struct Element {
    enum Kind : uint8_t { kChars, kRule, kEnd } kind = kEnd;
    uint32_t index = 0;  // kChars: into charsets; kRule: into rules
  };
  struct CharSet {
    std::vector<std::pair<uint32_t, uint32_t>> ranges;  // inclusive, sorted, merged
    bool negated = false;
    // Whether some code point in [lo, hi] belongs to the set.
    bool intersects(uint32_t lo, uint32_t hi) const;
  };
  std::vector<Element> elements;
  std::vector<CharSet> charsets;
  std::vector<std::vector<uint32_t>> rules;  // per rule: where each alternative starts in `elements`
  uint32_t root = 0;

 private:
  std::string source_;
};

// Which byte strings a grammar can still accept from here. Keeps the set of pushdown stacks
// (positions in the rule graph) the input read so far can be in; a multi-byte UTF-8 character is
// checked byte by byte against the ranges its first bytes leave open. Copyable (a snapshot).
class GrammarMatcher {
 public:
  explicit GrammarMatcher(std::shared_ptr<const Grammar> grammar);
  // Consumes the bytes if the grammar allows them here; otherwise returns false and stays put.
  bool accept(std::string_view bytes);
  bool allows(std::string_view bytes) const;
  // The input so far is a whole sentence of the grammar (an end token may come now).
  bool can_end() const;

 private:
  friend class GrammarConstraint;
  using Stack = std::vector<uint32_t>;  // positions in Grammar::elements; the top is back()
  struct State {
    std::vector<Stack> stacks;  // each top is a kChars element, or the stack is empty (complete)
    uint32_t partial = 0;       // a UTF-8 character begun: its bits so far,
    int need = 0, bytes = 0;    // the bytes it still needs, and its length
  };
  // The state after one more byte, into `out` (which need not be empty); false when refused.
  bool step(const State& in, uint8_t byte, State& out) const;
  void advance(const State& in, uint32_t cp, State& out) const;
  void expand(Stack& stack, std::vector<Stack>& out) const;

  std::shared_ptr<const Grammar> g_;
  State state_;
};

// Keeps the embedded engine's sampling inside a grammar, one token at a time.
// Greedy decoding (temperature 0) takes the fast path: it asks the sampler for its choice and
// checks only that token, banning it and asking again when the grammar refuses it (so the result
// is exactly the best allowed token); after 16 refusals, and always when sampling with a
// temperature, it masks every token the grammar refuses (logit -inf) and samples once, so
// temperature, top-k, top-p and min-p see the distribution renormalised over allowed tokens.
// End-of-generation tokens are allowed only when the grammar can end.
class GrammarConstraint {
 public:
  GrammarConstraint(std::shared_ptr<const Grammar> grammar, const Tokenizer& tok);
  // Picks and consumes the next token. An error when the grammar allows no token of the
  // vocabulary (it needs a character no token spells).
  Result<Token> sample(Sampler& sampler, std::span<const float> logits, std::span<const Token> history, bool greedy);
  // Tokens allowed now: 1 or 0 per vocabulary entry. Remembered per matcher state (a program's
  // lines come back to the same states), up to 256 states.
  const std::vector<char>& mask();
  // Back to the grammar's start, for the next sample (the remembered masks stay valid).
  void restart();
  const GrammarMatcher& matcher() const { return m_; }

 private:
  std::vector<char> compute_mask() const;
  GrammarMatcher m_, start_;
  std::map<std::vector<uint32_t>, std::vector<char>> masks_;
  const Tokenizer& tok_;
  std::vector<std::string> pieces_;  // per token: its bytes ("" for control tokens)
  std::vector<Token> by_piece_;      // token ids sorted by their bytes, so shared prefixes are matched once
};

}  // namespace wand::llm

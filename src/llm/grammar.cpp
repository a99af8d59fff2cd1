#include "llm/grammar.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <map>
#include <sstream>

#include <fmt/core.h>

#include "llm/sampler.h"

extern const std::string_view wand_embedded_grammar_pot;
extern const std::string_view wand_embedded_grammar_python_block;

namespace wand::llm {

bool Grammar::CharSet::intersects(uint32_t lo, uint32_t hi) const {
  if (!negated) {
    for (auto [a, b] : ranges)
      if (a <= hi && lo <= b) return true;
    return false;
  }
  // Negated: some code point of [lo, hi] lies in no range (ranges are sorted and merged).
  uint64_t cur = lo;
  for (auto [a, b] : ranges) {
    if (a > cur) break;
    if (b >= cur) cur = uint64_t(b) + 1;
  }
  return cur <= hi;
}

namespace {

constexpr int kMaxRepeat = 2000;  // {m,n} bounds; each copy is a rule, so absurd ones are refused
constexpr int kMaxNesting = 200;  // ( ) groups within groups: the parser recurses on them

struct Sym {
  bool rule = false;
  uint32_t index = 0;
};
using Alt = std::vector<Sym>;

// A recursive-descent reader of GBNF text into rules of alternatives of symbols.
class Parser {
 public:
  Parser(std::string_view text, std::string source) : s_(text), source_(std::move(source)) {}

  Result<std::shared_ptr<Grammar>> run() {
    try {
      skip(true);
      while (i_ < s_.size()) {
        auto [line, col] = where(i_);
        std::string name = read_name();
        if (name.empty()) fail("expected a rule name");
        skip(false);
        if (s_.substr(i_, 3) != "::=") fail(fmt::format("expected '::=' after rule name '{}'", name));
        i_ += 3;
        uint32_t id = rule_id(name, line, col);
        if (defined_[id])
          throw Error{fmt::format("{}:{}:{}: rule '{}' is defined twice (first at line {})", source_, line, col, name,
                                  loc_[id].first)};
        defined_[id] = true;
        loc_[id] = {line, col};
        body_[id] = alternatives(name, false);
        skip(false);
        if (i_ < s_.size() && s_[i_] != '\n') fail("expected the end of the line");
        skip(true);
      }
      for (std::size_t r = 0; r < names_.size(); ++r)
        if (!defined_[r])
          throw Error{fmt::format("{}:{}:{}: undefined rule '{}'", source_, loc_[r].first, loc_[r].second, names_[r])};
      auto root = ids_.find("root");
      if (root == ids_.end()) throw Error{fmt::format("{}: no 'root' rule (the start of the grammar)", source_)};
      check_left_recursion();
      return build(root->second);
    } catch (Error& e) {
      return e;
    }
  }

 private:
  [[noreturn]] void fail(const std::string& what) const {
    auto [line, col] = where(i_);
    std::string got = i_ < s_.size() ? fmt::format("'{}'", s_[i_] == '\n' ? std::string("\\n") : std::string(1, s_[i_]))
                                     : std::string("the end of the file");
    throw Error{fmt::format("{}:{}:{}: {}, got {}", source_, line, col, what, got)};
  }

  std::pair<int, int> where(std::size_t at) const {
    int line = 1, col = 1;
    for (std::size_t k = 0; k < at && k < s_.size(); ++k) {
      if (s_[k] == '\n')
        ++line, col = 1;
      else
        ++col;
    }
    return {line, col};
  }

  // Spaces and comments; newlines too where a rule may continue (inside a group, after '|').
  void skip(bool newlines) {
    while (i_ < s_.size()) {
      char c = s_[i_];
      if (c == ' ' || c == '\t' || c == '\r' || (newlines && c == '\n'))
        ++i_;
      else if (c == '#')
        while (i_ < s_.size() && s_[i_] != '\n') ++i_;
      else
        break;
    }
  }

  static bool name_char(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_'; }
  std::string read_name() {
    std::size_t b = i_;
    while (i_ < s_.size() && name_char(s_[i_])) ++i_;
    return std::string(s_.substr(b, i_ - b));
  }

  uint32_t rule_id(const std::string& name, int line, int col) {
    auto [it, fresh] = ids_.emplace(name, static_cast<uint32_t>(names_.size()));
    if (fresh) {
      names_.push_back(name);
      defined_.push_back(false);
      loc_.push_back({line, col});
      body_.emplace_back();
    }
    return it->second;
  }
  uint32_t new_rule(const std::string& base, std::vector<Alt> alts) {
    // Not entered in ids_: a user's rule of the same name stays a different rule.
    names_.push_back(fmt::format("{}_{}", base, ++generated_));
    defined_.push_back(true);
    loc_.push_back(where(i_));
    body_.push_back(std::move(alts));
    return static_cast<uint32_t>(names_.size() - 1);
  }
  uint32_t charset(Grammar::CharSet cs) {
    std::sort(cs.ranges.begin(), cs.ranges.end());
    std::vector<std::pair<uint32_t, uint32_t>> merged;
    for (auto r : cs.ranges)
      if (!merged.empty() && uint64_t(r.first) <= uint64_t(merged.back().second) + 1)
        merged.back().second = std::max(merged.back().second, r.second);
      else
        merged.push_back(r);
    cs.ranges = std::move(merged);
    sets_.push_back(std::move(cs));
    return static_cast<uint32_t>(sets_.size() - 1);
  }

  std::vector<Alt> alternatives(const std::string& rule, bool nested) {
    std::vector<Alt> alts{sequence(rule, nested)};
    while (i_ < s_.size() && s_[i_] == '|') {
      ++i_;
      skip(true);
      alts.push_back(sequence(rule, nested));
    }
    return alts;
  }

  // One code point of a literal or class, with escapes.
  uint32_t read_char() {
    if (i_ >= s_.size()) fail("expected a character");
    unsigned char c = s_[i_];
    if (c == '\\') {
      if (i_ + 1 >= s_.size()) fail("expected an escape after '\\'");
      char e = s_[i_ + 1];
      i_ += 2;
      switch (e) {
        case 'n':
          return '\n';
        case 'r':
          return '\r';
        case 't':
          return '\t';
        case '\\':
        case '"':
        case '\'':
        case '[':
        case ']':
        case '-':
        case '/':
        case '^':
          return static_cast<uint8_t>(e);
        case 'x':
          return hex(2);
        case 'u':
          return hex(4);
        case 'U':
          return hex(8);
        default:
          i_ -= 1;
          fail("unknown escape (known: \\n \\r \\t \\\\ \\\" \\' \\[ \\] \\- \\/ \\^ \\xHH \\uHHHH \\UHHHHHHHH)");
      }
    }
    // A UTF-8 character of the grammar file itself.
    int n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (n == 0 || i_ + n > s_.size()) fail("expected valid UTF-8");
    uint32_t cp = n == 1 ? c : c & (0x7F >> n);
    for (int k = 1; k < n; ++k) {
      unsigned char b = s_[i_ + k];
      if ((b & 0xC0) != 0x80) fail("expected valid UTF-8");
      cp = cp << 6 | (b & 0x3F);
    }
    i_ += n;
    return cp;
  }
  uint32_t hex(int digits) {
    uint32_t v = 0;
    for (int k = 0; k < digits; ++k, ++i_) {
      if (i_ >= s_.size() || !std::isxdigit(static_cast<unsigned char>(s_[i_])))
        fail(fmt::format("expected {} hex digits", digits));
      v = v * 16 + (std::isdigit(static_cast<unsigned char>(s_[i_])) ? s_[i_] - '0' : (s_[i_] | 0x20) - 'a' + 10);
    }
    if (v > 0x10FFFF) fail("expected a code point up to \\U0010FFFF");
    return v;
  }

  int read_int() {
    std::size_t b = i_;
    long v = 0;
    while (i_ < s_.size() && std::isdigit(static_cast<unsigned char>(s_[i_])) && v <= kMaxRepeat)
      v = v * 10 + (s_[i_++] - '0');
    if (i_ == b) fail("expected a number");
    if (v > kMaxRepeat) fail(fmt::format("expected a repetition bound up to {}", kMaxRepeat));
    return static_cast<int>(v);
  }

  Alt sequence(const std::string& rule, bool nested) {
    Alt seq;
    skip(nested);
    while (i_ < s_.size()) {
      char c = s_[i_];
      std::size_t item_start = seq.size();
      if (c == '"') {
        ++i_;
        while (true) {
          if (i_ >= s_.size() || s_[i_] == '\n') fail("expected '\"' to end the string literal");
          if (s_[i_] == '"') break;
          uint32_t cp = read_char();
          seq.push_back({false, charset({{{cp, cp}}, false})});
        }
        ++i_;
      } else if (c == '[') {
        ++i_;
        Grammar::CharSet cs;
        if (i_ < s_.size() && s_[i_] == '^') cs.negated = true, ++i_;
        while (true) {
          if (i_ >= s_.size() || s_[i_] == '\n') fail("expected ']' to end the character class");
          if (s_[i_] == ']') break;
          uint32_t lo = read_char(), hi = lo;
          if (i_ + 1 < s_.size() && s_[i_] == '-' && s_[i_ + 1] != ']') {
            ++i_;
            hi = read_char();
            if (hi < lo) fail("expected a range whose end is not below its start");
          }
          cs.ranges.push_back({lo, hi});
        }
        ++i_;
        seq.push_back({false, charset(std::move(cs))});
      } else if (c == '.') {
        ++i_;
        seq.push_back({false, charset({{}, true})});
      } else if (c == '(') {
        if (++depth_ > kMaxNesting) fail(fmt::format("expected groups nested at most {} deep", kMaxNesting));
        ++i_;
        skip(true);
        auto alts = alternatives(rule, true);
        --depth_;
        skip(true);
        if (i_ >= s_.size() || s_[i_] != ')') fail("expected ')' to close the group");
        ++i_;
        seq.push_back({true, new_rule(rule, std::move(alts))});
      } else if (name_char(c)) {
        auto [line, col] = where(i_);
        std::string name = read_name();
        seq.push_back({true, rule_id(name, line, col)});
      } else if (c == '*' || c == '+' || c == '?' || c == '{') {
        fail("expected an item before the repetition operator");
      } else {
        break;  // ')', '|', a newline: the caller decides
      }
      postfix(rule, seq, item_start);
      skip(nested);
    }
    return seq;
  }

  // x* x+ x? x{m} x{m,} x{m,n} on the item just read, rewritten into generated rules:
  // x* is R ::= x R | "" (right recursion, so the matcher's stacks stay flat), x{m,n} is m copies
  // then n-m nested optionals.
  void postfix(const std::string& rule, Alt& seq, std::size_t item_start) {
    skip(false);
    if (i_ >= s_.size()) return;
    char c = s_[i_];
    int lo, hi;  // hi < 0: no maximum
    if (c == '*')
      lo = 0, hi = -1, ++i_;
    else if (c == '+')
      lo = 1, hi = -1, ++i_;
    else if (c == '?')
      lo = 0, hi = 1, ++i_;
    else if (c == '{') {
      ++i_;
      skip(false);
      lo = read_int();
      skip(false);
      hi = lo;
      if (i_ < s_.size() && s_[i_] == ',') {
        ++i_;
        skip(false);
        hi = i_ < s_.size() && s_[i_] == '}' ? -1 : read_int();
        skip(false);
      }
      if (i_ >= s_.size() || s_[i_] != '}') fail("expected '}' to end the repetition");
      ++i_;
      if (hi >= 0 && hi < lo) fail(fmt::format("expected a maximum not below the minimum {}", lo));
    } else {
      return;
    }
    if (seq.size() - item_start != 1) {  // a literal: the operator applies to all of it ("" too)
      Alt lit(seq.begin() + item_start, seq.end());
      seq.resize(item_start);
      seq.push_back({true, new_rule(rule, {lit})});
    }
    Sym x = seq.back();
    seq.pop_back();
    for (int k = 0; k < lo; ++k) seq.push_back(x);
    if (hi < 0) {
      uint32_t r = new_rule(rule, {});
      body_[r] = {Alt{x, {true, r}}, Alt{}};
      seq.push_back({true, r});
    } else if (hi > lo) {
      uint32_t inner = new_rule(rule, {Alt{x}, Alt{}});
      for (int k = lo + 1; k < hi; ++k) inner = new_rule(rule, {Alt{x, {true, inner}}, Alt{}});
      seq.push_back({true, inner});
    }
    if (i_ < s_.size() && (s_[i_] == '*' || s_[i_] == '+' || s_[i_] == '?' || s_[i_] == '{'))
      fail("expected one repetition operator per item (group it: (x*)?)");
  }

  // A rule that can reach itself before consuming a character would make a top-down matcher loop.
  void check_left_recursion() const {
    std::size_t n = names_.size();
    std::vector<bool> nullable(n, false);
    for (bool changed = true; changed;) {
      changed = false;
      for (std::size_t r = 0; r < n; ++r) {
        if (nullable[r]) continue;
        for (auto& alt : body_[r])
          if (std::all_of(alt.begin(), alt.end(), [&](Sym s) { return s.rule && nullable[s.index]; })) {
            nullable[r] = changed = true;
            break;
          }
      }
    }
    std::vector<std::vector<uint32_t>> first(n);  // rules reachable before any character
    for (std::size_t r = 0; r < n; ++r)
      for (auto& alt : body_[r])
        for (Sym s : alt) {
          if (!s.rule) break;
          first[r].push_back(s.index);
          if (!nullable[s.index]) break;
        }
    std::vector<int> state(n, 0);  // 0 unseen, 1 on the path, 2 done
    std::vector<uint32_t> path;
    std::function<void(uint32_t)> visit = [&](uint32_t r) {
      state[r] = 1;
      path.push_back(r);
      for (uint32_t s : first[r]) {
        if (state[s] == 1) {
          std::string cycle;
          auto from = std::find(path.begin(), path.end(), s);
          for (auto it = from; it != path.end(); ++it) cycle += names_[*it] + " -> ";
          cycle += names_[s];
          throw Error{
              fmt::format("{}:{}:{}: rule '{}' is left-recursive ({}): a rule must match a character before "
                          "it can reach itself (a repetition of something that can be empty does this too)",
                          source_, loc_[s].first, loc_[s].second, names_[s], cycle)};
        }
        if (state[s] == 0) visit(s);
      }
      path.pop_back();
      state[r] = 2;
    };
    for (uint32_t r = 0; r < n; ++r)
      if (state[r] == 0) visit(r);
  }

  std::shared_ptr<Grammar> build(uint32_t root) {
    auto g = std::make_shared<Grammar>();
    g->charsets = std::move(sets_);
    g->root = root;
    g->rules.resize(names_.size());
    for (std::size_t r = 0; r < names_.size(); ++r)
      for (auto& alt : body_[r]) {
        g->rules[r].push_back(static_cast<uint32_t>(g->elements.size()));
        for (Sym s : alt) g->elements.push_back({s.rule ? Grammar::Element::kRule : Grammar::Element::kChars, s.index});
        g->elements.push_back({Grammar::Element::kEnd, 0});
      }
    return g;
  }

  std::string_view s_;
  std::string source_;
  std::size_t i_ = 0;
  int generated_ = 0, depth_ = 0;
  std::map<std::string, uint32_t> ids_;
  std::vector<std::string> names_;
  std::vector<bool> defined_;
  std::vector<std::pair<int, int>> loc_;  // where a rule is defined (or first used, until it is)
  std::vector<std::vector<Alt>> body_;
  std::vector<Grammar::CharSet> sets_;
};

}  // namespace

Result<std::shared_ptr<const Grammar>> Grammar::parse(std::string_view text, const std::string& source) {
  auto g = Parser(text, source).run();
  if (!g) return g.error();
  (*g)->source_ = source;
  return std::shared_ptr<const Grammar>(std::move(*g));
}

std::vector<std::string> Grammar::builtin_names() { return {"python-block", "pot"}; }

Result<std::shared_ptr<const Grammar>> Grammar::load(const std::string& name_or_path) {
  if (name_or_path == "pot") return parse(wand_embedded_grammar_pot, "grammars/pot.gbnf");
  if (name_or_path == "python-block") return parse(wand_embedded_grammar_python_block, "grammars/python_block.gbnf");
  std::error_code ec;
  if (std::filesystem::is_directory(name_or_path, ec))
    return Error{fmt::format("grammar '{}' is a folder, not a .gbnf file", name_or_path)};
  std::ifstream in(name_or_path, std::ios::binary);
  if (!in)
    return Error{
        fmt::format("grammar '{}' is neither a built-in one (python-block, pot) nor a readable file", name_or_path)};
  std::stringstream text;
  text << in.rdbuf();
  return parse(text.str(), name_or_path);
}

// ---- the matcher ----

GrammarMatcher::GrammarMatcher(std::shared_ptr<const Grammar> grammar) : g_(std::move(grammar)) {
  auto& stacks = state_.stacks;
  for (uint32_t start : g_->rules[g_->root]) {
    Stack s{start};
    expand(s, stacks);
  }
  std::sort(stacks.begin(), stacks.end());
  stacks.erase(std::unique(stacks.begin(), stacks.end()), stacks.end());
}

// Replaces the stack by the stacks whose top is a character to match (or which are empty:
// the grammar is complete), following rule references and the ends of alternatives.
void GrammarMatcher::expand(Stack& stack, std::vector<Stack>& out) const {
  while (!stack.empty()) {
    const auto& e = g_->elements[stack.back()];
    if (e.kind == Grammar::Element::kChars) break;
    uint32_t at = stack.back();
    stack.pop_back();
    if (e.kind == Grammar::Element::kEnd) continue;
    // A reference: come back after it (unless it ends the alternative: a tail call keeps
    // repetitions from growing the stack), and enter each alternative of the rule.
    if (g_->elements[at + 1].kind != Grammar::Element::kEnd) stack.push_back(at + 1);
    const auto& alts = g_->rules[e.index];
    for (std::size_t k = 1; k < alts.size(); ++k) {
      Stack other = stack;
      other.push_back(alts[k]);
      expand(other, out);
    }
    stack.push_back(alts[0]);
  }
  out.push_back(std::move(stack));
}

void GrammarMatcher::advance(const State& in, uint32_t cp, State& out) const {
  std::vector<Stack>& next = out.stacks;
  next.clear();
  out.need = 0;
  for (auto& s : in.stacks) {
    if (s.empty() || !g_->charsets[g_->elements[s.back()].index].intersects(cp, cp)) continue;
    Stack t = s;
    ++t.back();
    expand(t, next);
  }
  std::sort(next.begin(), next.end());
  next.erase(std::unique(next.begin(), next.end()), next.end());
}

bool GrammarMatcher::step(const State& in, uint8_t b, State& out) const {
  if (in.need == 0 && b < 0x80) {
    advance(in, b, out);
    return !out.stacks.empty();
  }
  uint32_t partial;
  int need, bytes;
  if (in.need == 0) {
    int n = (b >> 5) == 6 ? 1 : (b >> 4) == 14 ? 2 : (b >> 3) == 30 ? 3 : -1;
    if (n < 0) return false;  // not the first byte of a UTF-8 character
    partial = b & (0x3F >> n), need = n, bytes = n + 1;
  } else {
    if ((b & 0xC0) != 0x80) return false;
    partial = in.partial << 6 | (b & 0x3F), need = in.need - 1, bytes = in.bytes;
  }
  // The code points these bytes can still become. Overlong forms (C1 A0 for '`'), surrogates
  // and values past U+10FFFF are not UTF-8: a model must not smuggle a character in through them.
  static constexpr uint32_t kLeast[] = {0, 0, 0x80, 0x800, 0x10000};
  uint32_t lo = std::max(partial << (6 * need), kLeast[bytes]);
  uint32_t hi = std::min((partial << (6 * need)) | ((1u << (6 * need)) - 1), 0x10FFFFu);
  if (lo > hi || (lo >= 0xD800 && hi <= 0xDFFF)) return false;
  if (need == 0) {
    advance(in, partial, out);
    return !out.stacks.empty();
  }
  // Mid-character: keep the stacks that allow some code point beginning with these bytes.
  out.stacks.clear();
  for (auto& s : in.stacks)
    if (!s.empty() && g_->charsets[g_->elements[s.back()].index].intersects(lo, hi)) out.stacks.push_back(s);
  out.partial = partial, out.need = need, out.bytes = bytes;
  return !out.stacks.empty();
}

bool GrammarMatcher::accept(std::string_view bytes) {
  State cur = state_, next;
  for (char c : bytes) {
    if (!step(cur, static_cast<uint8_t>(c), next)) return false;
    std::swap(cur, next);
  }
  state_ = std::move(cur);
  return true;
}

bool GrammarMatcher::allows(std::string_view bytes) const { return GrammarMatcher(*this).accept(bytes); }

bool GrammarMatcher::can_end() const {
  return state_.need == 0 &&
         std::any_of(state_.stacks.begin(), state_.stacks.end(), [](const Stack& s) { return s.empty(); });
}

// ---- the token constraint ----

GrammarConstraint::GrammarConstraint(std::shared_ptr<const Grammar> grammar, const Tokenizer& tok)
    : m_(std::move(grammar)), start_(m_), tok_(tok), pieces_(tok.size()) {
  for (Token t = 0; t < static_cast<Token>(tok.size()); ++t)
    if (!tok.is_eog(t) && !(pieces_[t] = tok.piece(t)).empty()) by_piece_.push_back(t);
  std::sort(by_piece_.begin(), by_piece_.end(), [&](Token a, Token b) { return pieces_[a] < pieces_[b]; });
}

void GrammarConstraint::restart() { m_ = start_; }

const std::vector<char>& GrammarConstraint::mask() {
  const auto& st = m_.state_;
  std::vector<uint32_t> key{st.partial, uint32_t(st.need), uint32_t(st.bytes)};
  for (auto& s : st.stacks) {
    key.push_back(static_cast<uint32_t>(s.size()));
    key.insert(key.end(), s.begin(), s.end());
  }
  auto it = masks_.find(key);
  if (it != masks_.end()) return it->second;
  if (masks_.size() >= 256) masks_.clear();
  return masks_.emplace(std::move(key), compute_mask()).first->second;
}

std::vector<char> GrammarConstraint::compute_mask() const {
  std::vector<char> ok(tok_.size(), 0);
  // Walk the tokens in byte order, keeping the matcher after each prefix of the current one
  // (at[d] has read d bytes), so a prefix shared with the previous token is read once and a
  // prefix the grammar refuses rules out every token that begins with it.
  std::vector<GrammarMatcher::State> at{m_.state_};
  std::string_view prev;
  for (Token t : by_piece_) {
    std::string_view p = pieces_[t];
    std::size_t common = 0;
    while (common < p.size() && common < prev.size() && p[common] == prev[common]) ++common;
    bool dead = at.size() - 1 < prev.size() && common > at.size() - 1;  // shares the refused prefix
    at.erase(at.begin() + std::min(at.size(), common + 1), at.end());
    while (!dead && at.size() - 1 < p.size()) {
      GrammarMatcher::State next;
      if (!m_.step(at.back(), static_cast<uint8_t>(p[at.size() - 1]), next)) break;
      at.push_back(std::move(next));
    }
    ok[t] = !dead && at.size() - 1 == p.size();
    prev = p;
  }
  if (m_.can_end())
    for (Token t = 0; t < static_cast<Token>(tok_.size()); ++t)
      if (tok_.is_eog(t)) ok[t] = 1;
  return ok;
}

Result<Token> GrammarConstraint::sample(Sampler& sampler, std::span<const float> logits, std::span<const Token> history,
                                        bool greedy) {
  std::vector<float> l(logits.begin(), logits.end());
  constexpr float kBanned = -std::numeric_limits<float>::infinity();
  for (int tries = 0; greedy && tries < 16; ++tries) {
    Token c = sampler.sample(l, history);
    if (l[c] == kBanned) break;  // everything is banned
    // accept() consumes the token only when the grammar allows it.
    if (tok_.is_eog(c) ? m_.can_end() : std::size_t(c) < pieces_.size() && !pieces_[c].empty() && m_.accept(pieces_[c]))
      return c;
    l[c] = kBanned;
  }
  const auto& ok = mask();
  if (std::find(ok.begin(), ok.end(), 1) == ok.end())
    return Error{
        fmt::format("grammar {}: no token of the model's vocabulary can continue the text here", m_.g_->source())};
  for (std::size_t k = 0; k < l.size() && k < ok.size(); ++k)
    if (!ok[k]) l[k] = kBanned;
  Token t = sampler.sample(l, history);
  if (!tok_.is_eog(t)) m_.accept(pieces_[t]);
  return t;
}

}  // namespace wand::llm

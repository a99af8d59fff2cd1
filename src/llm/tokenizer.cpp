#include "llm/tokenizer.h"

#include <unicode/uchar.h>

#include <algorithm>
#include <functional>
#include <queue>

#include <fmt/core.h>

#include "common/text.h"

namespace wand::llm {
namespace {

// ---- UTF-8 and character classes ----

struct Cp {
  char32_t c;       // the code point (U+FFFD for an invalid byte)
  uint32_t offset;  // where its bytes start in the text
  uint32_t len;     // how many bytes
};

std::vector<Cp> decode_utf8(const std::string& s) {
  std::vector<Cp> out;
  out.reserve(s.size());
  std::size_t i = 0;
  while (i < s.size()) {
    auto b = static_cast<unsigned char>(s[i]);
    int n = b < 0x80 ? 1 : (b >> 5) == 6 ? 2 : (b >> 4) == 14 ? 3 : (b >> 3) == 30 ? 4 : 0;
    char32_t c = n == 1 ? b : n == 2 ? (b & 0x1f) : n == 3 ? (b & 0x0f) : (b & 0x07);
    bool valid = n > 0 && i + n <= s.size();
    for (int k = 1; valid && k < n; ++k) {
      auto cb = static_cast<unsigned char>(s[i + k]);
      if ((cb >> 6) != 2) valid = false;
      c = (c << 6) | (cb & 0x3f);
    }
    if (!valid) {
      out.push_back({0xFFFD, static_cast<uint32_t>(i), 1});
      ++i;
      continue;
    }
    out.push_back({c, static_cast<uint32_t>(i), static_cast<uint32_t>(n)});
    i += n;
  }
  return out;
}

std::string encode_utf8(char32_t c) {
  std::string s;
  if (c < 0x80) {
    s += static_cast<char>(c);
  } else if (c < 0x800) {
    s += static_cast<char>(0xC0 | (c >> 6));
    s += static_cast<char>(0x80 | (c & 0x3f));
  } else if (c < 0x10000) {
    s += static_cast<char>(0xE0 | (c >> 12));
    s += static_cast<char>(0x80 | ((c >> 6) & 0x3f));
    s += static_cast<char>(0x80 | (c & 0x3f));
  } else {
    s += static_cast<char>(0xF0 | (c >> 18));
    s += static_cast<char>(0x80 | ((c >> 12) & 0x3f));
    s += static_cast<char>(0x80 | ((c >> 6) & 0x3f));
    s += static_cast<char>(0x80 | (c & 0x3f));
  }
  return s;
}

bool is_space(char32_t c) { return u_isUWhiteSpace(static_cast<UChar32>(c)); }
bool is_letter(char32_t c) { return (U_GET_GC_MASK(static_cast<UChar32>(c)) & U_GC_L_MASK) != 0; }
bool is_number(char32_t c) { return (U_GET_GC_MASK(static_cast<UChar32>(c)) & U_GC_N_MASK) != 0; }
bool is_punct(char32_t c) { return (U_GET_GC_MASK(static_cast<UChar32>(c)) & U_GC_P_MASK) != 0; }

// ---- pre-tokenizers: each splits a run of code points [b, e) into consecutive pieces ----

using Range = std::pair<std::size_t, std::size_t>;
using Splitter = std::function<void(const std::vector<Cp>&, Range, std::vector<Range>&)>;

// Turns "match length at position" into a splitter: matched spans and the text between them
// both become pieces, as llama.cpp's regex splitting does.
Splitter by_matches(std::function<std::size_t(const std::vector<Cp>&, std::size_t, std::size_t)> match) {
  return [match](const std::vector<Cp>& t, Range r, std::vector<Range>& out) {
    std::size_t gap = r.first, i = r.first;
    while (i < r.second) {
      std::size_t n = match(t, i, r.second);
      if (n == 0) {
        ++i;
        continue;
      }
      if (gap < i) out.push_back({gap, i});
      out.push_back({i, i + n});
      i += n;
      gap = i;
    }
    if (gap < r.second) out.push_back({gap, r.second});
  };
}

// 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
std::size_t gpt2_match(const std::vector<Cp>& t, std::size_t i, std::size_t e) {
  auto at = [&](std::size_t k) -> char32_t { return k < e ? t[k].c : 0xFFFFFFFF; };
  auto c = at(i);
  if (c == '\'' && i + 1 < e) {
    auto n = at(i + 1);
    if (n == 's' || n == 't' || n == 'm' || n == 'd') return 2;
    if (i + 2 < e) {
      auto n2 = at(i + 2);
      if ((n == 'r' && n2 == 'e') || (n == 'v' && n2 == 'e') || (n == 'l' && n2 == 'l')) return 3;
    }
  }
  std::size_t j = i + (c == ' ' ? 1 : 0);
  if (j < e) {
    auto c2 = at(j);
    auto run = [&](auto pred) {
      std::size_t k = j;
      while (k < e && pred(at(k))) ++k;
      return k - i;
    };
    if (is_letter(c2)) return run(is_letter);
    if (is_number(c2)) return run(is_number);
    auto other = [](char32_t x) { return !is_space(x) && !is_letter(x) && !is_number(x); };
    if (other(c2)) return run(other);
  }
  std::size_t k = i;
  while (k < e && is_space(at(k))) ++k;
  std::size_t n = k - i;
  if (n > 1 && k < e) return n - 1;  // \s+(?!\S): leave the last space to the next word
  if (n > 0) return n;
  return 1;
}

std::size_t single_if(const std::vector<Cp>& t, std::size_t i, bool (*pred)(char32_t)) { return pred(t[i].c) ? 1 : 0; }

// \s?\p{X}+
std::size_t space_then_run(const std::vector<Cp>& t, std::size_t i, std::size_t e, bool (*pred)(char32_t)) {
  std::size_t j = i;
  if (is_space(t[j].c) && j + 1 < e && pred(t[j + 1].c)) ++j;
  if (!pred(t[j].c)) return 0;
  while (j < e && pred(t[j].c)) ++j;
  return j - i;
}

bool is_cjk_deepseek(char32_t c) {
  return (c >= 0x4E00 && c <= 0x9FA5) || (c >= 0x0800 && c <= 0x4E00) || (c >= 0xAC00 && c <= 0xD7FF);
}

// The splits are stateless, so each family's is built once and shared by every tokenizer.
const std::vector<Splitter>& splitters_for(const std::string& pre) {
  static const Splitter gpt2 = by_matches(gpt2_match);
  static const Splitter digits =
      by_matches([](const std::vector<Cp>& t, std::size_t i, std::size_t) { return single_if(t, i, is_number); });
  static const std::vector<Splitter> gpt2_split = {gpt2}, digits_then_gpt2 = {digits, gpt2};
  static const std::vector<Splitter> deepseek_coder = {
      by_matches([](const std::vector<Cp>& t, std::size_t i, std::size_t) {
        return std::size_t(t[i].c == '\r' || t[i].c == '\n');
      }),
      by_matches([](const std::vector<Cp>& t, std::size_t i, std::size_t e) { return space_then_run(t, i, e, is_letter); }),
      by_matches([](const std::vector<Cp>& t, std::size_t i, std::size_t e) { return space_then_run(t, i, e, is_punct); }),
      by_matches([](const std::vector<Cp>& t, std::size_t i, std::size_t e) {
        std::size_t j = i;
        while (j < e && is_cjk_deepseek(t[j].c)) ++j;
        return j - i;
      }),
      digits,
  };
  if (pre == "starcoder" || pre == "refact" || pre == "command-r" || pre == "smollm" || pre == "codeshell")
    return digits_then_gpt2;
  if (pre == "deepseek-coder") return deepseek_coder;
  return gpt2_split;
}

const std::string kSpmSpace = "\xE2\x96\x81";  // U+2581, SentencePiece's visible space

std::string replace_all(std::string s, const std::string& from, const std::string& to) {
  for (std::size_t p = 0; (p = s.find(from, p)) != std::string::npos; p += to.size()) s.replace(p, from.size(), to);
  return s;
}

}  // namespace

const std::string& byte_to_unicode(uint8_t b) {
  static const auto table = [] {
    std::vector<std::string> t(256);
    int n = 0;
    for (int x = 0; x < 256; ++x) {
      bool printable = (x >= 33 && x <= 126) || (x >= 161 && x <= 172) || (x >= 174 && x <= 255);
      t[x] = encode_utf8(printable ? x : 256 + n++);
    }
    return t;
  }();
  return table[b];
}

namespace {
// The inverse of byte_to_unicode over a symbol string: each byte symbol back to its byte; a
// code point that is no byte symbol is kept as it is.
std::string unicode_to_bytes(const std::string& s) {
  static const auto rev = [] {
    std::unordered_map<std::string, uint8_t> m;
    for (int b = 0; b < 256; ++b) m[byte_to_unicode(static_cast<uint8_t>(b))] = static_cast<uint8_t>(b);
    return m;
  }();
  std::string bytes;
  for (auto& cp : decode_utf8(s)) {
    auto it = rev.find(s.substr(cp.offset, cp.len));
    if (it != rev.end()) bytes += static_cast<char>(it->second);
    else bytes += s.substr(cp.offset, cp.len);
  }
  return bytes;
}
}  // namespace

Result<Tokenizer> Tokenizer::from_gguf(const GgufFile& f) {
  Tokenizer t;
  auto model = f.get_string("tokenizer.ggml.model");
  if (!model) return model.error();
  if (*model == "gpt2") {
    t.kind_ = Kind::bpe;
  } else if (*model == "llama") {
    t.kind_ = Kind::spm;
  } else {
    return Error{fmt::format("{}: tokenizer '{}' is not supported (gpt2 and llama are)", f.path(),
                             model->empty() ? "(none)" : printable(*model))};
  }
  auto pre = f.get_string("tokenizer.ggml.pre", "default");
  if (!pre) return pre.error();
  t.pre_ = *pre;
  auto* tokens = f.get_array("tokenizer.ggml.tokens");
  auto* tok_strings = tokens ? std::get_if<std::vector<std::string>>(tokens) : nullptr;
  if (!tok_strings || tok_strings->empty())
    return Error{fmt::format("{}: tokenizer.ggml.tokens is missing or not a list of strings", f.path())};
  t.tokens_ = *tok_strings;
  if (auto* a = f.get_array("tokenizer.ggml.scores"))
    if (auto* v = std::get_if<std::vector<double>>(a)) t.scores_.assign(v->begin(), v->end());
  if (auto* a = f.get_array("tokenizer.ggml.token_type"))
    if (auto* v = std::get_if<std::vector<int64_t>>(a)) t.types_.assign(v->begin(), v->end());
  if (auto* a = f.get_array("tokenizer.ggml.merges"))
    if (auto* v = std::get_if<std::vector<std::string>>(a)) t.merges_ = *v;
  if (t.kind_ == Kind::bpe && t.merges_.empty())
    return Error{fmt::format("{}: a gpt2 tokenizer needs tokenizer.ggml.merges", f.path())};
  if ((!t.scores_.empty() && t.scores_.size() != t.tokens_.size()) ||
      (!t.types_.empty() && t.types_.size() != t.tokens_.size()))
    return Error{fmt::format("{}: tokenizer scores/types do not match the {} tokens", f.path(), t.tokens_.size())};
  auto id = [&](const char* key, int64_t fallback) -> Result<Token> {
    auto v = f.get_int(key, fallback);
    if (!v) return v.error();
    if (*v < -1 || *v >= static_cast<int64_t>(t.tokens_.size()))
      return Error{fmt::format("{}: {} = {} is not a token id", f.path(), key, *v)};
    return static_cast<Token>(*v);
  };
  auto bos = id("tokenizer.ggml.bos_token_id", t.kind_ == Kind::spm ? 1 : -1);
  auto eos = id("tokenizer.ggml.eos_token_id", t.kind_ == Kind::spm ? 2 : -1);
  if (!bos) return bos.error();
  if (!eos) return eos.error();
  t.bos_ = *bos;
  t.eos_ = *eos;
  auto add_bos = f.get_bool("tokenizer.ggml.add_bos_token", t.kind_ == Kind::spm);
  auto prefix = f.get_bool("tokenizer.ggml.add_space_prefix", t.kind_ == Kind::spm);
  if (!add_bos) return add_bos.error();
  if (!prefix) return prefix.error();
  t.add_bos_ = *add_bos;
  t.add_space_prefix_ = *prefix;
  t.index();
  return t;
}

Tokenizer Tokenizer::bpe(std::vector<std::string> tokens, std::vector<std::string> merges, std::vector<int32_t> types,
                         std::string pre) {
  Tokenizer t;
  t.kind_ = Kind::bpe;
  t.pre_ = std::move(pre);
  t.tokens_ = std::move(tokens);
  t.merges_ = std::move(merges);
  t.types_ = std::move(types);
  t.add_space_prefix_ = false;
  t.index();
  for (std::size_t i = 0; i < t.types_.size(); ++i) {
    if (t.types_[i] != kControl) continue;
    if (t.tokens_[i] == "<|bos|>" || t.tokens_[i] == "<s>") t.bos_ = static_cast<Token>(i);
    if (t.tokens_[i] == "<|eos|>" || t.tokens_[i] == "</s>") t.eos_ = static_cast<Token>(i);
  }
  return t;
}

void Tokenizer::index() {
  if (types_.empty()) types_.assign(tokens_.size(), kNormal);
  ids_.clear();
  for (std::size_t i = 0; i < tokens_.size(); ++i) ids_.emplace(tokens_[i], static_cast<Token>(i));
  merge_rank_.clear();
  for (std::size_t i = 0; i < merges_.size(); ++i) merge_rank_.emplace(merges_[i], static_cast<int>(i));
  specials_.clear();
  eog_.clear();
  for (std::size_t i = 0; i < tokens_.size(); ++i) {
    if ((types_[i] == kControl || types_[i] == kUserDefined) && !tokens_[i].empty())
      specials_.push_back(static_cast<Token>(i));
    const auto& s = tokens_[i];
    if (types_[i] == kControl && (s == "<|eot_id|>" || s == "<|im_end|>" || s == "<|end|>" || s == "<|endoftext|>"))
      eog_.push_back(static_cast<Token>(i));
  }
  std::stable_sort(specials_.begin(), specials_.end(),
                   [&](Token a, Token b) { return tokens_[a].size() > tokens_[b].size(); });
  for (int b = 0; b < 256; ++b) {
    Token tok = -1;
    if (kind_ == Kind::spm) {
      tok = find(fmt::format("<0x{:02X}>", b));
    } else {
      tok = find(byte_to_unicode(static_cast<uint8_t>(b)));
    }
    byte_tokens_[b] = tok;
  }
}

Token Tokenizer::find(const std::string& text) const {
  auto it = ids_.find(text);
  return it == ids_.end() ? -1 : it->second;
}

bool Tokenizer::is_eog(Token t) const {
  return t == eos_ || std::find(eog_.begin(), eog_.end(), t) != eog_.end();
}

std::vector<Token> Tokenizer::encode(const std::string& text, bool add_bos, bool parse_special) const {
  std::vector<Token> out;
  if (add_bos && bos_ >= 0) out.push_back(bos_);
  // Split out special tokens first: user-defined ones always (as llama.cpp does), control
  // tokens only when asked, so user text cannot forge a control token by default.
  struct Fragment {
    std::string text;
    Token token = -1;
  };
  std::vector<Fragment> frags;
  if (!text.empty()) frags.push_back({text});
  for (Token s : specials_) {
    if (types_[s] == kControl && !parse_special) continue;
    const std::string& st = tokens_[s];
    std::vector<Fragment> next;
    for (auto& f : frags) {
      if (f.token >= 0) {
        next.push_back(f);
        continue;
      }
      std::size_t p = 0;
      for (std::size_t q; (q = f.text.find(st, p)) != std::string::npos; p = q + st.size()) {
        if (q > p) next.push_back({f.text.substr(p, q - p)});
        next.push_back({"", s});
      }
      if (p < f.text.size()) next.push_back({f.text.substr(p)});
    }
    frags = std::move(next);
  }
  bool prev_special = true;
  for (auto& f : frags) {
    if (f.token >= 0) {
      out.push_back(f.token);
      prev_special = true;
      continue;
    }
    encode_fragment(f.text, prev_special, out);
    prev_special = false;
  }
  return out;
}

std::vector<std::string> Tokenizer::split(const std::string& text) const {
  auto cps = decode_utf8(text);
  std::vector<Range> pieces{{0, cps.size()}};
  for (auto& split : splitters_for(pre_)) {
    std::vector<Range> next;
    for (auto r : pieces) split(cps, r, next);
    pieces = std::move(next);
  }
  std::vector<std::string> out;
  for (auto [b, e] : pieces) {
    if (b == e) continue;
    std::size_t from = cps[b].offset, to = cps[e - 1].offset + cps[e - 1].len;
    out.push_back(text.substr(from, to - from));
  }
  return out;
}

void Tokenizer::encode_fragment(const std::string& text, bool after_special, std::vector<Token>& out) const {
  if (kind_ == Kind::spm) {
    std::string s = (add_space_prefix_ && after_special) ? " " + text : text;
    encode_spm(replace_all(s, " ", kSpmSpace), out);
    return;
  }
  for (auto& piece : split(text)) {
    std::string encoded;
    for (unsigned char c : piece) encoded += byte_to_unicode(c);
    encode_bpe(encoded, out);
  }
}

// Merges adjacent symbols by merge rank, lowest first (leftmost on ties).
void Tokenizer::encode_bpe(const std::string& piece, std::vector<Token>& out) const {
  std::vector<std::string> sym;
  for (auto& cp : decode_utf8(piece)) sym.push_back(piece.substr(cp.offset, cp.len));
  if (sym.size() > 1) {
    std::string key;
    while (true) {
      int best = -1;
      std::size_t at = 0;
      for (std::size_t i = 0; i + 1 < sym.size(); ++i) {
        key.assign(sym[i]).append(" ").append(sym[i + 1]);
        auto it = merge_rank_.find(key);
        if (it != merge_rank_.end() && (best < 0 || it->second < best)) {
          best = it->second;
          at = i;
        }
      }
      if (best < 0) break;
      sym[at] += sym[at + 1];
      sym.erase(sym.begin() + static_cast<std::ptrdiff_t>(at) + 1);
    }
  }
  for (auto& s : sym) {
    Token t = find(s);
    if (t >= 0) {
      out.push_back(t);
      continue;
    }
    // Unknown symbol: its bytes one by one (symbols here are all byte symbols).
    for (unsigned char b : unicode_to_bytes(s))
      if (byte_tokens_[b] >= 0) out.push_back(byte_tokens_[b]);
  }
}

// SentencePiece BPE: repeatedly merge the adjacent pair whose concatenation is the
// highest-scoring vocabulary entry; symbols left unknown fall back to byte tokens.
void Tokenizer::encode_spm(const std::string& text, std::vector<Token>& out) const {
  struct Sym {
    int prev, next;
    std::size_t off, len;
  };
  std::vector<Sym> sym;
  for (auto& cp : decode_utf8(text))
    sym.push_back({static_cast<int>(sym.size()) - 1, static_cast<int>(sym.size()) + 1, cp.offset, cp.len});
  if (sym.empty()) return;
  sym.back().next = -1;
  struct Bigram {
    int left, right;
    float score;
    std::size_t len;
    bool operator<(const Bigram& o) const { return score < o.score || (score == o.score && left > o.left); }
  };
  std::priority_queue<Bigram> q;
  auto try_add = [&](int l, int r) {
    if (l < 0 || r < 0) return;
    std::string s = text.substr(sym[l].off, sym[l].len + sym[r].len);
    Token t = find(s);
    if (t < 0) return;
    q.push({l, r, scores_.empty() ? 0.f : scores_[t], s.size()});
  };
  for (std::size_t i = 1; i < sym.size(); ++i) try_add(static_cast<int>(i) - 1, static_cast<int>(i));
  while (!q.empty()) {
    auto b = q.top();
    q.pop();
    auto &l = sym[b.left], &r = sym[b.right];
    if (l.len == 0 || r.len == 0 || l.len + r.len != b.len) continue;  // stale
    l.len += r.len;
    r.len = 0;
    l.next = r.next;
    if (r.next >= 0) sym[r.next].prev = b.left;
    try_add(l.prev, b.left);
    try_add(b.left, l.next);
  }
  for (int i = 0; i != -1; i = sym[i].next) {
    std::string s = text.substr(sym[i].off, sym[i].len);
    Token t = find(s);
    if (t >= 0) {
      out.push_back(t);
      continue;
    }
    for (unsigned char c : s)
      if (byte_tokens_[c] >= 0) out.push_back(byte_tokens_[c]);
  }
}

std::string Tokenizer::piece(Token t, bool special) const {
  if (t < 0 || static_cast<std::size_t>(t) >= tokens_.size()) return "";
  const auto& s = tokens_[t];
  switch (types_[t]) {
    case kControl:
    case kUnknown: return special ? s : "";  // as llama.cpp renders them
    case kUserDefined: return s;
    case kByte:
      if (kind_ == Kind::spm && s.size() == 6) return std::string(1, static_cast<char>(std::stoi(s.substr(3, 2), nullptr, 16)));
      break;
    default: break;
  }
  if (kind_ == Kind::spm) return replace_all(s, kSpmSpace, " ");
  return unicode_to_bytes(s);
}

std::string Tokenizer::decode(const std::vector<Token>& tokens, bool special) const {
  std::string s;
  for (auto t : tokens) s += piece(t, special);
  return s;
}

}  // namespace wand::llm

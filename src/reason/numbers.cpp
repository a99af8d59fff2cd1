#include "reason/numbers.h"

#include <algorithm>
#include <cctype>
#include <map>

#include "common/random.h"

namespace wand::reason {
namespace {

bool digit(char c) { return c >= '0' && c <= '9'; }
bool alpha(char c) { return std::isalpha(static_cast<unsigned char>(c)) != 0; }
bool word_char(char c) { return digit(c) || alpha(c) || c == '_'; }

// Digits with an optional point, commas dropped, as the shortest decimal text: "1,200" -> "1200",
// "2.50" -> "2.5", "007" -> "7", "5." -> "5". Values are compared as this text, never as doubles,
// so 0.1 and 0.10 are one value and 0.3 is never 0.30000000000000004.
std::string canonical(std::string_view s) {
  std::string in, frac;
  bool point = false;
  for (char c : s) {
    if (c == ',') continue;
    if (c == '.') point = true;
    else (point ? frac : in) += c;
  }
  in.erase(0, std::min(in.find_first_not_of('0'), in.size()));
  while (!frac.empty() && frac.back() == '0') frac.pop_back();
  if (in.empty()) in = "0";
  return frac.empty() ? in : in + "." + frac;
}

// canonical(v) / 100, by moving the point: "25" -> "0.25", "7.5" -> "0.075".
std::string hundredth(const std::string& v) {
  auto dot = v.find('.');
  std::string in = v.substr(0, dot), frac = dot == std::string::npos ? "" : v.substr(dot + 1);
  while (in.size() < 3) in.insert(in.begin(), '0');
  return canonical(in.substr(0, in.size() - 2) + "." + in.substr(in.size() - 2) + frac);
}

const std::map<std::string, int>& units() {
  static const std::map<std::string, int> m = {
      {"two", 2},       {"three", 3},     {"four", 4},      {"five", 5},          {"six", 6},
      {"seven", 7},     {"eight", 8},     {"nine", 9},      {"ten", 10},          {"eleven", 11},
      {"twelve", 12},   {"thirteen", 13}, {"fourteen", 14}, {"fifteen", 15},      {"sixteen", 16},
      {"seventeen", 17}, {"eighteen", 18}, {"nineteen", 19}, {"twenty", 20},      {"thirty", 30},
      {"forty", 40},    {"fifty", 50},    {"sixty", 60},    {"seventy", 70},      {"eighty", 80},
      {"ninety", 90}};
  return m;
}

// A program rewritten token by token outside its string literals (copied as they are; one ends at
// its closing quote or its line's end): step(i, out) appends what p[i...] becomes and returns
// where the next token starts (past i).
template <class Step>
std::string outside_strings(std::string_view p, Step step) {
  std::string out;
  std::size_t i = 0;
  while (i < p.size()) {
    if (p[i] == '"' || p[i] == '\'') {
      std::size_t j = i + 1;
      while (j < p.size() && p[j] != p[i] && p[j] != '\n') j += p[j] == '\\' ? 2 : 1;
      j = std::min(j + 1, p.size());
      out.append(p.substr(i, j - i));
      i = j;
    } else {
      i = step(i, out);
    }
  }
  return out;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

}  // namespace

std::string NumberMap::name(std::size_t i) { return "n" + std::to_string(i); }

std::string NumberMap::bindings() const {
  std::string out;
  for (std::size_t i = 0; i < values.size(); ++i) out += name(i) + " = " + values[i] + "\n";
  return out;
}

std::vector<int> name_order(std::size_t count, uint64_t seed) {
  std::vector<int> order(count);
  for (std::size_t i = 0; i < count; ++i) order[i] = static_cast<int>(i);
  if (seed == 0) return order;
  // Fisher-Yates over splitmix64 draws (std::shuffle's steps differ between standard libraries).
  // The draws are the splitmix64 stream from `seed`: splitmix64(seed), splitmix64(seed + golden), ...
  uint64_t x = seed;
  for (std::size_t i = count; i > 1; --i, x += 0x9e3779b97f4a7c15ull)
    std::swap(order[i - 1], order[splitmix64(x) % i]);
  return order;
}

NumberMap map_numbers(std::string_view q, uint64_t names_seed) {
  NumberMap m;
  // The text between names, and each name's value index: names are written at the end, once the
  // count (and so a shuffle's order) is known.
  std::vector<std::size_t> slots;
  std::vector<std::string> pieces(1);
  auto assign = [&](const std::string& value, bool percent) {
    auto it = std::find(m.values.begin(), m.values.end(), value);
    std::size_t i = static_cast<std::size_t>(it - m.values.begin());
    if (it == m.values.end()) m.values.push_back(value), m.percent.push_back(false);
    if (percent) m.percent[i] = true;
    pieces.back() = std::move(m.text);
    m.text.clear();
    slots.push_back(i);
    pieces.emplace_back();
  };
  auto percent_after = [&](std::size_t j) {
    if (j < q.size() && q[j] == '%') return true;
    return lower(q.substr(j, 8)) == " percent" && (j + 8 >= q.size() || !alpha(q[j + 8]));
  };
  std::size_t i = 0;
  while (i < q.size()) {
    char c = q[i];
    bool starts = i == 0 || !word_char(q[i - 1]);
    if (digit(c) && starts) {
      std::size_t j = i;
      while (j < q.size() && digit(q[j])) ++j;
      // Thousands groups: a comma and exactly three digits ("1,200"; not "3,4" nor a list "1,2,3").
      while (j + 3 < q.size() && q[j] == ',' && digit(q[j + 1]) && digit(q[j + 2]) && digit(q[j + 3]) &&
             (j + 4 >= q.size() || !digit(q[j + 4])))
        j += 4;
      if (j + 1 < q.size() && q[j] == '.' && digit(q[j + 1])) {
        ++j;
        while (j < q.size() && digit(q[j])) ++j;
      }
      std::size_t e = j;
      while (e < q.size() && alpha(q[e])) ++e;
      std::string suffix = lower(q.substr(j, e - j));
      if (suffix == "st" || suffix == "nd" || suffix == "rd" || suffix == "th") {  // an ordinal: a position, not a value
        m.text.append(q.substr(i, e - i));
        i = e;
        continue;
      }
      assign(canonical(q.substr(i, j - i)), percent_after(j));
      i = j;
      continue;
    }
    if (alpha(c) && starts) {
      std::size_t j = i;
      while (j < q.size() && alpha(q[j])) ++j;
      std::string w = lower(q.substr(i, j - i));
      auto u = units().find(w);
      if (u == units().end() || (j < q.size() && (digit(q[j]) || q[j] == '_'))) {
        m.text.append(q.substr(i, j - i));
        i = j;
        continue;
      }
      int value = u->second;
      // "twenty-five": a ten, a hyphen and a unit (here "one" counts: "twenty-one").
      if (value >= 20 && value % 10 == 0 && j + 1 < q.size() && q[j] == '-' && alpha(q[j + 1])) {
        std::size_t k = j + 1;
        while (k < q.size() && alpha(q[k])) ++k;
        std::string w2 = lower(q.substr(j + 1, k - j - 1));
        auto u2 = units().find(w2);
        int add = w2 == "one" ? 1 : u2 != units().end() && u2->second < 10 ? u2->second : 0;
        if (add) value += add, j = k;
      }
      // "two-thirds", "three-quarters": a fraction's words, an operation as "half" is.
      if (j + 1 < q.size() && q[j] == '-') {
        std::size_t k = j + 1;
        while (k < q.size() && alpha(q[k])) ++k;
        std::string next = lower(q.substr(j + 1, k - j - 1));
        if (next.starts_with("third") || next.starts_with("quarter") || next.ends_with("th") || next.ends_with("ths")) {
          m.text.append(q.substr(i, k - i));
          i = k;
          continue;
        }
      }
      assign(std::to_string(value), percent_after(j));
      i = j;
      continue;
    }
    m.text += c;
    ++i;
  }
  pieces.back() = std::move(m.text);
  const std::vector<int> order = name_order(m.values.size(), names_seed);
  m.text = pieces[0];
  for (std::size_t k = 0; k < slots.size(); ++k) m.text += NumberMap::name(order[slots[k]]) + pieces[k + 1];
  std::vector<std::string> values(m.values.size());
  std::vector<bool> percent(m.values.size());
  for (std::size_t k = 0; k < m.values.size(); ++k) values[order[k]] = m.values[k], percent[order[k]] = m.percent[k];
  m.values = std::move(values);
  m.percent = std::move(percent);
  return m;
}

std::string rename_names(std::string_view p, const std::vector<int>& order) {
  return outside_strings(p, [&](std::size_t i, std::string& out) {
    if (!word_char(p[i])) {
      out += p[i];
      return i + 1;
    }
    // An identifier, keyword or literal: renamed when it is a name nI.
    std::size_t j = i;
    while (j < p.size() && word_char(p[j])) ++j;
    std::string_view w = p.substr(i, j - i);
    bool name = w.size() > 1 && w.size() < 8 && w[0] == 'n' && (i == 0 || p[i - 1] != '.') &&
                std::all_of(w.begin() + 1, w.end(), digit) && (w.size() == 2 || w[1] != '0');
    std::size_t index = name ? std::stoul(std::string(w.substr(1))) : 0;
    out += name && index < order.size() ? NumberMap::name(static_cast<std::size_t>(order[index])) : std::string(w);
    return j;
  });
}

std::string NumberMap::name_program(std::string_view p) const {
  std::map<std::string, std::string> names;  // canonical value -> what the program writes instead
  for (std::size_t i = 0; i < values.size(); ++i)
    if (percent[i]) names.emplace(hundredth(values[i]), "(" + name(i) + " / 100)");
  for (std::size_t i = 0; i < values.size(); ++i) names[values[i]] = name(i);  // a direct value wins
  return outside_strings(p, [&](std::size_t i, std::string& out) {
    const char c = p[i];
    std::size_t j = i;
    bool starts = i == 0 || (!word_char(p[i - 1]) && p[i - 1] != '.');
    if (starts && (digit(c) || (c == '.' && i + 1 < p.size() && digit(p[i + 1])))) {
      while (j < p.size() && (digit(p[j]) || p[j] == '.')) ++j;
      auto it = names.find(canonical(p.substr(i, j - i)));
      // 1e3, 2j, 1_000 and 1.2.3 are not plain decimal literals: kept as written.
      bool plain = (j >= p.size() || !word_char(p[j])) && std::count(p.begin() + i, p.begin() + j, '.') <= 1;
      out += plain && it != names.end() ? it->second : std::string(p.substr(i, j - i));
      return j;
    }
    if (word_char(c)) {  // an identifier (step3) or keyword: its digits are not literals
      while (j < p.size() && word_char(p[j])) ++j;
      out.append(p.substr(i, j - i));
      return j;
    }
    out += c;
    return i + 1;
  });
}

}  // namespace wand::reason

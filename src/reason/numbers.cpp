#include "reason/numbers.h"

#include <algorithm>
#include <cctype>
#include <map>
#include <set>

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

// A program rewritten name by name: each identifier outside string literals (not one after '.',
// an attribute; not a literal's digits) becomes rename(it) where that gives a value, else stays.
template <class Rename>
std::string rename_each(std::string_view p, Rename rename) {
  return outside_strings(p, [&](std::size_t i, std::string& out) {
    if (!word_char(p[i])) {
      out += p[i];
      return i + 1;
    }
    std::size_t j = i;
    while (j < p.size() && word_char(p[j])) ++j;
    std::string_view w = p.substr(i, j - i);
    std::optional<std::string> to;
    if (!digit(p[i]) && (i == 0 || p[i - 1] != '.')) to = rename(w);
    out += to ? *to : std::string(w);
    return j;
  });
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// A number name as NumberMap::name writes it: "n" and a decimal index without leading zeros.
bool number_name(std::string_view w) {
  return w.size() > 1 && w.size() < 8 && w[0] == 'n' && std::all_of(w.begin() + 1, w.end(), digit) &&
         (w.size() == 2 || w[1] != '0');
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

NumberMap map_numbers(std::string_view q, uint64_t names_seed, bool name_each_mention) {
  NumberMap m;
  // The text between names, and each name's value index: names are written at the end, once the
  // count (and so a shuffle's order) is known.
  std::vector<std::size_t> slots;
  std::vector<std::string> pieces(1);
  auto assign = [&](const std::string& value, bool percent) {
    auto it = name_each_mention ? m.values.end() : std::find(m.values.begin(), m.values.end(), value);
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
  return rename_each(p, [&](std::string_view w) -> std::optional<std::string> {  // renamed when it is a name nI
    std::size_t index = number_name(w) ? std::stoul(std::string(w.substr(1))) : order.size();
    if (index >= order.size()) return std::nullopt;
    return NumberMap::name(static_cast<std::size_t>(order[index]));
  });
}

std::string NumberMap::name_program(std::string_view p) const {
  // Each value's names in the order the question mentions them. A value has several under a name
  // per mention ("2 ... 2 more"): the program's k-th literal of it is its k-th mention, and any
  // literal after the last mention's is the last mention, as a person writing the program in
  // story order would use them.
  std::map<std::string, std::vector<std::string>> mentions;
  std::vector<bool> seen(values.size());
  auto mention = [&](std::size_t i) {
    if (i < values.size() && !seen[i]) seen[i] = true, mentions[values[i]].push_back(name(i));
  };
  for (std::size_t i = 0, j; i < text.size(); i = j + (j == i)) {  // the text's words, in order
    for (j = i; j < text.size() && word_char(text[j]);) ++j;
    if (std::string_view w = std::string_view(text).substr(i, j - i); number_name(w)) mention(std::stoul(std::string(w.substr(1))));
  }
  for (std::size_t i = 0; i < values.size(); ++i) mention(i);  // a map built by hand may not show them all
  std::map<std::string, std::size_t> used;
  std::map<std::string, std::string> percents;  // a percentage's value / 100 -> "(nK / 100)"
  for (std::size_t i = 0; i < values.size(); ++i)
    if (percent[i]) percents.emplace(hundredth(values[i]), "(" + name(i) + " / 100)");
  auto named = [&](const std::string& value) -> std::optional<std::string> {  // a direct value wins over a percentage's
    if (auto it = mentions.find(value); it != mentions.end())
      return it->second[std::min(used[value]++, it->second.size() - 1)];
    if (auto it = percents.find(value); it != percents.end()) return it->second;
    return std::nullopt;
  };
  return outside_strings(p, [&](std::size_t i, std::string& out) {
    const char c = p[i];
    std::size_t j = i;
    bool starts = i == 0 || (!word_char(p[i - 1]) && p[i - 1] != '.');
    if (starts && (digit(c) || (c == '.' && i + 1 < p.size() && digit(p[i + 1])))) {
      while (j < p.size() && (digit(p[j]) || p[j] == '.')) ++j;
      // 1e3, 2j, 1_000 and 1.2.3 are not plain decimal literals: kept as written.
      bool plain = (j >= p.size() || !word_char(p[j])) && std::count(p.begin() + i, p.begin() + j, '.') <= 1;
      auto name = plain ? named(canonical(p.substr(i, j - i))) : std::nullopt;
      out += name ? *name : std::string(p.substr(i, j - i));
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

std::optional<Reading> reading_of(std::string_view f) {
  if (f == kNumbersFormat) return Reading::numbers;
  if (f == kDelexFormat) return Reading::delexicalized;
  return std::nullopt;
}

std::string_view format_of(Reading r) { return r == Reading::numbers ? kNumbersFormat : kDelexFormat; }

NumberMap map_question(std::string_view question, Reading r, uint64_t names_seed) {
  NumberMap m = map_numbers(question, names_seed, r == Reading::delexicalized);
  if (r == Reading::delexicalized) m.text = delexicalize(m.text);
  return m;
}

namespace {

// The words a delexicalized question keeps: what tells the operations apart, never what they
// are about. Written from English grammar and grade-school arithmetic's vocabulary, not from any
// test set.
const std::set<std::string, std::less<>>& kept_words() {
  static const std::set<std::string, std::less<>> words = [] {
    const char* const lists[] = {
        // articles, pronouns, determiners
        "a an the this that these those there here it its itself they them their theirs themselves he him his "
        "himself she her hers herself we us our ours you your yours i me my mine myself who whom whose which what "
        "one ones someone everyone anyone nobody everybody something everything anything nothing",
        // conjunctions, prepositions, adverbs of order and time
        "and or but nor so if then than as because while though although whether when where why how after before "
        "until since during of in on at to from for with without by about into onto over under above below between "
        "among through across around along against behind beside near out off up down away back per via "
        "first second third last next later earlier now still already yet again also too only just even ever "
        "never always often sometimes initially originally finally meanwhile instead altogether together "
        "yesterday today tomorrow morning afternoon evening night",
        // auxiliaries and verbs of having and being
        "is are was were be been being am has have had having do does did done doing will would shall should can "
        "could may might must need needs needed want wants wanted wanting wish hope plan plans planned "
        "contain contains contained hold holds held include includes included fit fits consist consists",
        // quantity, comparison, operation words
        "all any some each every both either neither none no not other others another same such many much more "
        "most less least few fewer fewest several enough lot lots total totals sum combined whole "
        "left remaining remain remains remained rest remainder extra additional equal equally evenly divided "
        "split splits share shares shared sharing distribute distributes distributed separate separated "
        "twice double doubled triple tripled half halves thirds quarter quarters dozen dozens times "
        "time difference average group groups part parts piece pieces pair pairs set sets row rows "
        "percent fraction number numbers amount amounts price prices cost costs costing worth value "
        "bigger smaller larger greater longer shorter older younger taller heavier lighter faster slower "
        "big small large long short old young tall heavy fast slow",
        // verbs of gaining and losing, in their forms
        "give gives gave given giving get gets got gotten getting buy buys bought buying sell sells sold selling "
        "lose loses lost losing find finds found finding eat eats ate eaten eating use uses used using spend "
        "spends spent spending take takes took taken taking make makes made making pick picks picked picking "
        "win wins won winning earn earns earned earning save saves saved saving collect collects collected "
        "collecting receive receives received receiving add adds added adding put puts putting keep keeps kept "
        "keeping throw throws threw thrown throwing break breaks broke broken breaking borrow borrows borrowed "
        "lend lends lent pay pays paid paying charge charges charged fill fills filled filling pack packed "
        "packing plant planted planting grow grows grew grown growing bake bakes baked baking cook cooked "
        "donate donates donated leave leaves leaving return returns returned join joins joined come comes came "
        "coming go goes went gone going arrive arrives arrived move moves moved remove removes removed "
        "place placed carry carries carried bring brings brought send sends sent catch catches caught cut cuts "
        "divide divides finish finishes finished complete completes completed start starts started begin "
        "begins began read reads write writes wrote written drink drinks drank ride rides rode walk walks walked "
        "run runs ran drive drives drove travel travels traveled travelled work works worked play plays played "
        "miss misses missed drop drops dropped fall falls fell die dies died destroy destroyed waste wasted "
        "increase increases increased decrease decreases decreased rise rose reduce reduced change changes "
        "changed trade trades traded exchange owe owes owed sit sits sat stay stays stayed live lives lived "
        "count counts counted score scores scored invite invited visit visits visited see sees saw seen "
        "order orders ordered serve serves served prepare prepared fix fixed repair repaired clean cleaned "
        "answer answered solve solved check checked store stored gain gains gained download downloaded "
        "delete deletes deleted",
        // what makes things count no more
        "bad rotten spoiled damaged ruined burst popped melted wilted missing absent sick",
        // question words and units of time and money
        "far day days week weeks month months year years hour hours minute minutes "
        "dollar dollars cent cents money cash bill bills coin coins",
    };
    std::set<std::string, std::less<>> w;
    for (const char* list : lists) {
      std::string s(list);
      for (std::size_t i = 0; i < s.size();) {
        std::size_t j = s.find(' ', i);
        if (j == std::string::npos) j = s.size();
        if (j > i) w.insert(s.substr(i, j - i));
        i = j + 1;
      }
    }
    return w;
  }();
  return words;
}

// A word's key for its placeholder (given in lower case): a plural's ending dropped, so that a
// word and its plural share one placeholder; stems need only agree, not be words.
std::string singular(std::string w) {
  auto ends = [&](std::string_view e) { return w.size() > e.size() + 1 && w.ends_with(e); };
  if (ends("ies")) return w.substr(0, w.size() - 3) + "y";  // "berries" is "berry"; "cookies" ...
  if (ends("ie")) return w.substr(0, w.size() - 2) + "y";   // ... and "cookie" are "cooky"
  if (ends("sses") || ends("xes") || ends("ches") || ends("shes")) return w.substr(0, w.size() - 2);
  if (ends("s") && !ends("ss") && !ends("us")) return w.substr(0, w.size() - 1);
  return w;
}

}  // namespace

std::string delexicalize(std::string_view text) {
  std::map<std::string, std::size_t> placeholders;
  std::string out;
  for (std::size_t i = 0; i < text.size();) {
    if (!alpha(text[i])) {
      out += text[i++];
      continue;
    }
    std::size_t j = i;
    while (j < text.size() && (word_char(text[j]) || (text[j] == '\'' && j + 1 < text.size() && alpha(text[j + 1])))) ++j;
    std::string_view w = text.substr(i, j - i);
    // "Ava's": the possessive follows the word's placeholder ("w0's"); a contraction ("didn't",
    // "they'll") is a function word and stays.
    std::size_t apostrophe = w.find('\'');
    std::string base(w.substr(0, apostrophe)), key = lower(base);
    bool contraction = apostrophe != std::string_view::npos && lower(w.substr(apostrophe)) != "'s";
    if (contraction || number_name(w) || kept_words().contains(key)) {
      out.append(w);
    } else {
      auto [it, _] = placeholders.emplace(singular(key), placeholders.size());
      out += "w" + std::to_string(it->second);
      out.append(w.substr(base.size()));  // the possessive's "'s", if any
    }
    i = j;
  }
  return out;
}

namespace {

// The name a line assigns ("total = ..." -> "total"; "" for any other line) and what it assigns.
std::pair<std::string_view, std::string_view> assignment(std::string_view line) {
  std::size_t j = 0;
  while (j < line.size() && word_char(line[j])) ++j;
  std::string_view name = line.substr(0, j), rest = line.substr(j);
  while (!rest.empty() && rest[0] == ' ') rest.remove_prefix(1);
  if (j == 0 || digit(line[0]) || !rest.starts_with("=") || rest.starts_with("==")) return {};
  rest.remove_prefix(1);
  while (!rest.empty() && rest[0] == ' ') rest.remove_prefix(1);
  return {name, rest};
}

// The name a line assigns by "=" or an augmented assignment ("total += n1", "x //= 2"); "" for
// any other line.
std::string_view target(std::string_view line) {
  if (auto [name, _] = assignment(line); !name.empty()) return name;
  std::size_t j = 0;
  while (j < line.size() && word_char(line[j])) ++j;
  std::string_view rest = line.substr(j);
  while (!rest.empty() && rest[0] == ' ') rest.remove_prefix(1);
  if (j == 0 || digit(line[0])) return {};
  for (std::string_view op : {"+=", "-=", "*=", "/=", "//=", "%=", "**="})
    if (rest.starts_with(op)) return line.substr(0, j);
  return {};
}

std::vector<std::string_view> lines_of(std::string_view p) {
  std::vector<std::string_view> lines;
  for (std::size_t i = 0; i < p.size();) {
    std::size_t end = std::min(p.find('\n', i), p.size());
    lines.push_back(p.substr(i, end - i));
    i = end + 1;
  }
  return lines;
}

// `p` with each identifier found in `to` replaced by its value (rename_each's identifiers).
std::string substitute(std::string_view p, const std::map<std::string, std::string, std::less<>>& to) {
  return rename_each(p, [&](std::string_view w) -> std::optional<std::string> {
    auto it = to.find(w);
    return it == to.end() ? std::nullopt : std::optional<std::string>(it->second);
  });
}

}  // namespace

std::string rename_variables(std::string_view p) {
  const auto lines = lines_of(p);
  std::map<std::string, int, std::less<>> assigned;
  for (auto line : lines)
    if (auto name = target(line); !name.empty()) ++assigned[std::string(name)];
  auto once = [&](std::string_view name) { auto it = assigned.find(name); return it != assigned.end() && it->second == 1; };
  // A variable assigned once with a number name, a literal or another such variable
  // ("cookies = n0", "total = start") is that value.
  std::map<std::string, std::string, std::less<>> inlined;
  std::vector<std::string> kept;
  for (auto line : lines) {
    auto [name, value] = assignment(line);
    bool single = !value.empty() && std::all_of(value.begin(), value.end(), [](char c) { return word_char(c) || c == '.'; });
    if (!name.empty() && name != "answer" && once(name) && single &&
        (number_name(value) || digit(value[0]) || inlined.contains(value) || once(value))) {
      auto it = inlined.find(value);
      inlined.emplace(std::string(name), it != inlined.end() ? it->second : std::string(value));
      continue;
    }
    kept.emplace_back(line);
  }
  for (auto& line : kept) line = substitute(line, inlined);
  // "v = ...; answer = v" with v used nowhere else is "answer = ...".
  if (kept.size() >= 2) {
    auto [last, value] = assignment(kept.back());
    std::string v(value);
    std::size_t uses = 0;
    for (auto& line : kept) rename_each(line, [&](std::string_view w) { uses += w == v; return std::optional<std::string>(); });
    auto [name, expr] = assignment(kept[kept.size() - 2]);
    if (last == "answer" && uses == 2 && name == v && once(v) && assigned["answer"] == 1) {
      kept[kept.size() - 2] = "answer = " + std::string(expr);
      kept.pop_back();
    }
  }
  std::string program;
  for (std::size_t i = 0; i < kept.size(); ++i) program += kept[i] + (i + 1 < kept.size() || p.ends_with('\n') ? "\n" : "");
  // The names still assigned, in order, become v0, v1, ...
  std::map<std::string, std::string, std::less<>> renamed;
  for (auto line : lines_of(program))
    if (auto [name, _] = assignment(line); !name.empty() && name != "answer" && !number_name(name) && !renamed.contains(name))
      renamed.emplace(std::string(name), "v" + std::to_string(renamed.size()));
  return substitute(program, renamed);
}

}  // namespace wand::reason

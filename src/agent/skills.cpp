// The skill library over SQLite (skills.h): its own tables and schema version in the run
// store's file, FTS5 for retrieval.
#include "agent/skills.h"

#include <fmt/core.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <cctype>
#include <ostream>
#include <random>
#include <set>
#include <thread>

#include "common/text.h"
#include "sandbox/sandbox.h"
#include "store/retry.h"
#include "store/sqlite.h"
#include "store/store.h"
#include "tools/tools.h"

extern const std::string_view wand_embedded_agent_schema_1;
extern const std::string_view wand_embedded_agent_session;

namespace wand::agent {
namespace {

namespace sql = store::sql;
constexpr int kSkillsSchema = 1;
const std::string_view* const kSkillMigrations[] = {&wand_embedded_agent_schema_1};

struct Refused : std::runtime_error {
  using std::runtime_error::runtime_error;
};

std::string now_iso() {
  auto now = std::chrono::system_clock::now();
  std::time_t t = std::chrono::system_clock::to_time_t(now);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string name_words(std::string name) {
  for (char& c : name)
    if (c == '_') c = ' ';
  return name;
}

// The query's words as an FTS5 query: each a quoted term, any of them may match (BM25 ranks the
// skills matching more and rarer words first). Quoting keeps FTS5's operators out of user text.
std::string fts_query(const std::string& text) {
  // Words every task has say nothing about which skill fits.
  static const std::set<std::string> common = {
      "the",  "and",  "for",   "with",  "from",  "into",  "onto",  "that",  "this", "what",  "how",   "is",
      "are",  "of",   "on",    "in",    "to",    "it",    "its",   "an",    "be",   "by",    "as",    "at",
      "or",   "do",   "then",  "them",  "there", "their", "under", "over",  "than", "less",  "more",  "all",
      "each", "every", "some", "any",   "but",   "not",   "no",    "if",    "so",   "was",   "were",  "has",
      "have", "had",  "will",  "can",   "you",   "your",  "please", "when", "which", "who",  "where", "why",
      "about", "after", "before", "also", "just", "only", "very",  "one",   "my",   "me",    "we",    "our"};
  std::string q, word;
  auto flush = [&] {
    if (word.size() > 1 && !common.count(word)) q += (q.empty() ? "\"" : " OR \"") + word + "\"";
    word.clear();
  };
  for (unsigned char c : text) {
    if (std::isalnum(c) || c >= 0x80) word += static_cast<char>(std::tolower(c));
    else flush();
  }
  flush();
  return q;
}

constexpr std::string_view kColumns =
    "SELECT name, description, signature, code, tests, uses, successes, version, demoted, created_at, updated_at "
    "FROM skills";

Skill read_skill(sql::Stmt& st) {
  Skill s;
  s.name = st.text(0);
  s.description = st.text(1);
  s.signature = st.text(2);
  s.code = st.text(3);
  s.tests = st.text(4);
  s.uses = static_cast<int>(st.int64(5));
  s.successes = static_cast<int>(st.int64(6));
  s.version = static_cast<int>(st.int64(7));
  s.demoted = !st.is_null(8);
  s.demoted_why = st.text(8);
  s.created_at = st.text(9);
  s.updated_at = st.text(10);
  return s;
}

}  // namespace

struct SkillLibrary::Impl {
  std::string path;
  sql::Db db;
  Impl(const std::string& p, bool create) : path(p), db(p, create) {}

  template <class F>
  auto guarded(F&& fn) -> Result<decltype(fn())> {
    try {
      return store::retry_busy<sql::SqlError>(fn);
    } catch (const Refused& e) {
      return Error{e.what()};
    } catch (const sql::SqlError& e) {
      return Error{fmt::format("skill library {}: {}", path, e.what())};
    }
  }

  int stored_version() {
    sql::Stmt has(db, "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'agent_schema'");
    if (!has.step()) return 0;
    sql::Stmt v(db, "SELECT version FROM agent_schema");
    return v.step() ? static_cast<int>(v.int64(0)) : 0;
  }

  void migrate() {
    if (stored_version() == kSkillsSchema) return;
    sql::Transaction tx(db);
    int have = stored_version();
    if (have > kSkillsSchema)
      throw Refused(fmt::format("{} has skill library schema version {}; this wand knows versions up to {}", path,
                                have, kSkillsSchema));
    if (have == kSkillsSchema) return;
    for (int v = have + 1; v <= kSkillsSchema; ++v) db.exec(std::string(*kSkillMigrations[v - 1]));
    sql::Stmt(db, "UPDATE agent_schema SET version = ?").bind(1, kSkillsSchema).run();
    tx.commit();
  }

  std::optional<Skill> find(const std::string& name) {
    sql::Stmt st(db, std::string(kColumns) + " WHERE name = ?");
    st.bind(1, std::string_view(name));
    if (!st.step()) return std::nullopt;
    return read_skill(st);
  }

  void index(const std::string& name, const std::string& description) {
    sql::Stmt(db, "DELETE FROM skills_fts WHERE name = ?").bind(1, std::string_view(name)).run();
    sql::Stmt(db, "INSERT INTO skills_fts (name, words, description) VALUES (?, ?, ?)")
        .bind(1, std::string_view(name))
        .bind(2, std::string_view(name_words(name)))
        .bind(3, std::string_view(description))
        .run();
  }

  void require(const std::string& name) {
    if (!find(name)) throw Refused(fmt::format("no skill '{}' in {}", name, path));
  }
};

const char* to_string(SaveOutcome o) {
  switch (o) {
    case SaveOutcome::added: return "added";
    case SaveOutcome::new_version: return "new_version";
    case SaveOutcome::merged: return "merged";
  }
  return "?";
}

Json to_json(const Skill& s) {
  Json j = {{"name", s.name},           {"description", s.description}, {"signature", s.signature},
            {"code", s.code},           {"tests", s.tests},             {"uses", s.uses},
            {"successes", s.successes}, {"version", s.version},         {"demoted", s.demoted}};
  if (s.demoted) j["demoted_why"] = s.demoted_why;
  if (!s.created_at.empty()) j["created_at"] = s.created_at;
  if (!s.updated_at.empty()) j["updated_at"] = s.updated_at;
  return j;
}

std::string reserved_skill_name(std::string_view name) {
  if (name.starts_with("_")) return "is private (a leading '_'; wand's session helpers are _wand_*)";
  if (tools::hides_python_name(name)) return "is a Python keyword or built-in, which the skill would hide";
  return "";
}

Result<Skill> skill_from_json(const Json& j) {
  if (!j.is_object()) return Error{"a skill must be a JSON object"};
  Skill s;
  auto text = [&](const char* field, std::string& out, bool required) -> VoidResult {
    if (!j.contains(field)) {
      if (required) return Error{fmt::format("field '{}' is missing", field)};
      return ok_status();
    }
    if (!j[field].is_string()) return Error{fmt::format("field '{}' must be a string", field)};
    out = j[field].get<std::string>();
    return ok_status();
  };
  auto count = [&](const char* field, int& out) -> VoidResult {
    if (!j.contains(field)) return ok_status();
    if (!j[field].is_number_integer() || j[field].get<long long>() < 0 || j[field].get<long long>() > 1e9)
      return Error{fmt::format("field '{}' must be a non-negative integer", field)};
    out = j[field].get<int>();
    return ok_status();
  };
  for (auto r : {text("name", s.name, true), text("code", s.code, true), text("description", s.description, false),
                 text("signature", s.signature, false), text("tests", s.tests, false), count("uses", s.uses),
                 count("successes", s.successes), count("version", s.version)})
    if (!r) return r.error();
  if (!is_python_identifier(s.name)) return Error{fmt::format("field 'name': '{}' is not a Python identifier", s.name)};
  if (auto reserved = reserved_skill_name(s.name); !reserved.empty())
    return Error{fmt::format("field 'name': '{}' {}", s.name, reserved)};
  if (s.code.find("def " + s.name) == std::string::npos)
    return Error{fmt::format("field 'code' does not define {}()", s.name)};
  if (s.signature.empty()) s.signature = s.name + "(...)";
  if (s.version < 1) s.version = 1;
  return s;
}

Result<std::vector<std::string>> skill_load_problems(sandbox::Sandbox& sb, const std::vector<std::string>& codes) {
  if (codes.empty()) return std::vector<std::string>{};
  sandbox::ExecRequest req;
  req.code = fmt::format(
      "{}\nprint(_wand_json.dumps([_wand_skill_problem(c) or '' for c in _wand_json.load(_wand_sys.stdin)]))\n",
      wand_embedded_agent_session);
  req.stdin_data = dump_text(Json(codes));
  req.limits.timeout_s = 30;
  auto r = sb.run(req);
  Json out = Json::parse(r.stdout_data, nullptr, false);
  if (r.status != sandbox::Status::ok || !out.is_array() || out.size() != codes.size())
    return Error{fmt::format("checking the skills' code: {} {}", sandbox::to_string(r.status),
                             r.error.empty() ? r.stderr_data.substr(0, 500) : r.error)};
  std::vector<std::string> problems;
  for (const auto& p : out) problems.push_back(p.is_string() ? p.get<std::string>() : "unreadable check");
  return problems;
}

std::string normalise_code(const std::string& code) {
  std::string out;
  std::size_t pos = 0;
  while (pos <= code.size()) {
    std::size_t end = std::min(code.find('\n', pos), code.size());
    std::string line = code.substr(pos, end - pos);
    pos = end + 1;
    // A comment: from a # outside a string literal.
    char quote = 0;
    for (std::size_t i = 0; i < line.size(); ++i) {
      char c = line[i];
      if (quote) {
        if (c == '\\') ++i;
        else if (c == quote) quote = 0;
      } else if (c == '"' || c == '\'') {
        quote = c;
      } else if (c == '#') {
        line.resize(i);
        break;
      }
    }
    std::string folded;
    for (char c : line) {
      if (c == ' ' || c == '\t' || c == '\r') {
        if (!folded.empty() && folded.back() != ' ') folded += ' ';
      } else {
        folded += c;
      }
    }
    while (!folded.empty() && folded.back() == ' ') folded.pop_back();
    if (folded.empty()) continue;
    // Indentation is kept as its width, so nesting still counts.
    std::size_t indent = line.find_first_not_of(" \t");
    out += std::to_string(indent) + ":" + folded + '\n';
  }
  return out;
}

std::string render_skills(const std::vector<Skill>& skills) {
  std::string out;
  for (const auto& s : skills) {
    out += "def " + s.signature + ":\n";
    if (!s.description.empty()) {
      std::string doc = s.description;
      std::replace(doc.begin(), doc.end(), '\n', ' ');
      out += "    \"\"\"" + doc + "\"\"\"\n";
    }
  }
  return out;
}

SkillLibrary::SkillLibrary(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
SkillLibrary::~SkillLibrary() = default;

Result<std::unique_ptr<SkillLibrary>> SkillLibrary::open(const std::string& path, bool create) {
  if (store::is_database_uri(path))
    return Error{"the skill library lives in a SQLite store file (it needs FTS5), and this store is a database "
                 "server's URI: give a store file (--store PATH) or turn skills off (--skills off)"};
  // The run store first: it refuses a file holding other tables, so the run store's schema is
  // there before the skills' tables join it.
  auto store = store::Store::open(path, create);
  if (!store) return store.error();
  store->reset();  // closed: the library keeps a connection of its own
  try {
    auto impl = std::make_unique<Impl>(path, false);
    sqlite3_busy_timeout(impl->db.get(), 10000);
    store::retry_busy<sql::SqlError>([&] { impl->migrate(); });
    return std::unique_ptr<SkillLibrary>(new SkillLibrary(std::move(impl)));
  } catch (const Refused& e) {
    return Error{e.what()};
  } catch (const sql::SqlError& e) {
    return Error{fmt::format("skill library {}: {}", path, e.what())};
  }
}

Result<SaveOutcome> SkillLibrary::save(const Skill& in) {
  if (!is_python_identifier(in.name)) return Error{fmt::format("skill name '{}' is not a Python identifier", in.name)};
  if (in.code.empty()) return Error{fmt::format("skill '{}' has no code", in.name)};
  return impl_->guarded([&] {
    auto& db = impl_->db;
    sql::Transaction tx(db);
    std::string key = normalise_code(in.code), now = now_iso();
    SaveOutcome outcome;
    sql::Stmt same(db, "SELECT name, description FROM skills WHERE code_key = ?");
    same.bind(1, std::string_view(key));
    if (same.step()) {
      std::string name = same.text(0), description = same.text(1);
      if (in.description.size() > description.size()) description = in.description;
      sql::Stmt(db,
                "UPDATE skills SET description = ?, uses = uses + ?, successes = successes + ?, updated_at = ? "
                "WHERE name = ?")
          .bind(1, std::string_view(description))
          .bind(2, in.uses)
          .bind(3, in.successes)
          .bind(4, std::string_view(now))
          .bind(5, std::string_view(name))
          .run();
      impl_->index(name, description);
      outcome = SaveOutcome::merged;
    } else if (impl_->find(in.name)) {
      sql::Stmt(db,
                "UPDATE skills SET description = ?, signature = ?, code = ?, code_key = ?, tests = ?, "
                "version = version + 1, demoted = NULL, updated_at = ? WHERE name = ?")
          .bind(1, std::string_view(in.description))
          .bind(2, std::string_view(in.signature))
          .bind(3, std::string_view(in.code))
          .bind(4, std::string_view(key))
          .bind(5, std::string_view(in.tests))
          .bind(6, std::string_view(now))
          .bind(7, std::string_view(in.name))
          .run();
      impl_->index(in.name, in.description);
      outcome = SaveOutcome::new_version;
    } else {
      sql::Stmt(db,
                "INSERT INTO skills (name, description, signature, code, code_key, tests, uses, successes, version, "
                "created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
          .bind(1, std::string_view(in.name))
          .bind(2, std::string_view(in.description))
          .bind(3, std::string_view(in.signature))
          .bind(4, std::string_view(in.code))
          .bind(5, std::string_view(key))
          .bind(6, std::string_view(in.tests))
          .bind(7, in.uses)
          .bind(8, in.successes)
          .bind(9, std::max(1, in.version))
          .bind(10, std::string_view(in.created_at.empty() ? now : in.created_at))
          .bind(11, std::string_view(now))
          .run();
      impl_->index(in.name, in.description);
      outcome = SaveOutcome::added;
    }
    tx.commit();
    return outcome;
  });
}

Result<std::vector<Skill>> SkillLibrary::search(const std::string& query, int k) const {
  std::string q = fts_query(query);
  if (q.empty() || k <= 0) return std::vector<Skill>{};
  return impl_->guarded([&] {
    // bm25(): lower is better; weights per column (name unindexed, its words 2, description 1).
    sql::Stmt st(impl_->db,
                 "SELECT s.name, s.description, s.signature, s.code, s.tests, s.uses, s.successes, s.version, "
                 "s.demoted, s.created_at, s.updated_at FROM skills_fts f JOIN skills s ON s.name = f.name "
                 "WHERE skills_fts MATCH ? AND s.demoted IS NULL "
                 "ORDER BY bm25(skills_fts, 0.0, 2.0, 1.0), s.successes DESC, s.name LIMIT ?");
    st.bind(1, std::string_view(q)).bind(2, k);
    std::vector<Skill> out;
    while (st.step()) out.push_back(read_skill(st));
    return out;
  });
}

Result<std::vector<Skill>> SkillLibrary::list() const {
  return impl_->guarded([&] {
    sql::Stmt st(impl_->db, std::string(kColumns) + " ORDER BY name");
    std::vector<Skill> out;
    while (st.step()) out.push_back(read_skill(st));
    return out;
  });
}

Result<Skill> SkillLibrary::get(const std::string& name) const {
  return impl_->guarded([&] {
    auto s = impl_->find(name);
    if (!s) throw Refused(fmt::format("no skill '{}' in {}", name, impl_->path));
    return *s;
  });
}

VoidResult SkillLibrary::remove(const std::string& name) {
  return impl_->guarded([&] {
    sql::Transaction tx(impl_->db);
    impl_->require(name);
    sql::Stmt(impl_->db, "DELETE FROM skills WHERE name = ?").bind(1, std::string_view(name)).run();
    sql::Stmt(impl_->db, "DELETE FROM skills_fts WHERE name = ?").bind(1, std::string_view(name)).run();
    tx.commit();
    return Ok{};
  });
}

VoidResult SkillLibrary::record_use(const std::string& name, bool success) {
  return impl_->guarded([&] {
    sql::Transaction tx(impl_->db);
    impl_->require(name);
    sql::Stmt(impl_->db, "UPDATE skills SET uses = uses + 1, successes = successes + ?, updated_at = ? WHERE name = ?")
        .bind(1, success ? 1 : 0)
        .bind(2, std::string_view(now_iso()))
        .bind(3, std::string_view(name))
        .run();
    tx.commit();
    return Ok{};
  });
}

VoidResult SkillLibrary::set_demoted(const std::string& name, const std::string& why) {
  return impl_->guarded([&] {
    sql::Transaction tx(impl_->db);
    impl_->require(name);
    sql::Stmt st(impl_->db, "UPDATE skills SET demoted = ?, updated_at = ? WHERE name = ?");
    if (why.empty()) st.bind(1, std::nullopt);
    else st.bind(1, std::string_view(why));
    st.bind(2, std::string_view(now_iso())).bind(3, std::string_view(name)).run();
    tx.commit();
    return Ok{};
  });
}

VoidResult SkillLibrary::export_jsonl(std::ostream& out) const {
  auto all = list();
  if (!all) return all.error();
  for (const auto& s : *all) out << dump_text(to_json(s)) << '\n';
  if (!out) return Error{"writing the skills failed"};
  return ok_status();
}

}  // namespace wand::agent

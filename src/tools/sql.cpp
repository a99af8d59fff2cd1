// The built-ins over SQLite: sql (a user's database, read-only by default) and search (FTS5
// over a folder of documents).
#include <fmt/core.h>
#include <sqlite3.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <sstream>

#include "tools/builtin_parts.h"

namespace wand::tools {
namespace {

using Clock = std::chrono::steady_clock;

// One connection, used by one call at a time (a call holds `mu`), with the reason of the last
// refusal of its authorizer and the deadline its progress handler enforces.
struct Connection {
  sqlite3* db = nullptr;
  std::mutex mu;
  bool writable = false;
  std::string refused;
  Clock::time_point deadline;
  ~Connection() { sqlite3_close_v2(db); }
};

// What a read-only query may do: read and compute. Every other action is refused with words
// for the program; ATTACH and load_extension are refused even with --writable, since they reach
// files other than the one the user named.
int authorize(void* p, int action, const char* a, const char* b, const char*, const char*) {
  auto* c = static_cast<Connection*>(p);
  switch (action) {
    case SQLITE_ATTACH:
    case SQLITE_DETACH:
      c->refused = "ATTACH and DETACH are refused: a query may use only the database wand was given";
      return SQLITE_DENY;
    case SQLITE_FUNCTION:
      // fts3_tokenizer() reads out and replaces a tokenizer's C function pointer: a host
      // address leak and a call through any address, the known SQLite code-execution pattern.
      if (b && (std::string_view(b) == "load_extension" || std::string_view(b) == "fts3_tokenizer")) {
        c->refused = fmt::format("{} is refused", b);
        return SQLITE_DENY;
      }
      return SQLITE_OK;
    case SQLITE_READ:
    case SQLITE_SELECT:
    case SQLITE_RECURSIVE:
      return SQLITE_OK;
    case SQLITE_PRAGMA:
      // A pragma that reads (table_info(t), user_version) is fine; setting one is a write.
      if (c->writable || !b || std::string_view(a ? a : "") == "table_info" || std::string_view(a ? a : "") == "table_list")
        return SQLITE_OK;
      c->refused = fmt::format("PRAGMA {} = ... is refused: the database is read-only (--writable allows writes)", a ? a : "");
      return SQLITE_DENY;
    case SQLITE_TRANSACTION:
    case SQLITE_SAVEPOINT:
      return SQLITE_OK;
    default:
      if (c->writable) return SQLITE_OK;
      c->refused = "the database is read-only: only queries that read are allowed (--writable allows writes)";
      return SQLITE_DENY;
  }
}

int progress(void* p) { return Clock::now() > static_cast<Connection*>(p)->deadline ? 1 : 0; }

Json column_value(sqlite3_stmt* st, int i) {
  switch (sqlite3_column_type(st, i)) {
    case SQLITE_INTEGER: return sqlite3_column_int64(st, i);
    case SQLITE_FLOAT: return sqlite3_column_double(st, i);
    case SQLITE_NULL: return nullptr;
    case SQLITE_BLOB: {
      const auto* b = static_cast<const unsigned char*>(sqlite3_column_blob(st, i));
      std::string hex;
      for (int k = 0, n = sqlite3_column_bytes(st, i); k < n; ++k) hex += fmt::format("{:02x}", b[k]);
      return Json{{"blob_hex", hex}};
    }
    default:
      return std::string(reinterpret_cast<const char*>(sqlite3_column_text(st, i)), sqlite3_column_bytes(st, i));
  }
}

VoidResult bind(sqlite3_stmt* st, int i, const Json& v) {
  int rc;
  if (v.is_null()) rc = sqlite3_bind_null(st, i);
  else if (v.is_boolean()) rc = sqlite3_bind_int(st, i, v.get<bool>());
  else if (v.is_number_integer()) rc = sqlite3_bind_int64(st, i, v.get<int64_t>());
  else if (v.is_number()) rc = sqlite3_bind_double(st, i, v.get<double>());
  else if (v.is_string()) rc = sqlite3_bind_text(st, i, v.get_ref<const std::string&>().data(), static_cast<int>(v.get_ref<const std::string&>().size()), SQLITE_TRANSIENT);
  else return Error{fmt::format("parameter 'params': value {} is not a number, string, boolean or null", i)};
  if (rc != SQLITE_OK) return Error{fmt::format("parameter 'params': cannot bind value {}", i)};
  return ok_status();
}

Result<Json> run_query(Connection& c, const std::string& query, const Json& params, std::size_t max_rows,
                       double timeout_s, const CallContext& ctx) {
  std::lock_guard lk(c.mu);
  c.refused.clear();
  c.deadline = std::min(ctx.deadline, Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(timeout_s)));
  sqlite3_stmt* st = nullptr;
  const char* tail = nullptr;
  int rc = sqlite3_prepare_v2(c.db, query.c_str(), static_cast<int>(query.size()), &st, &tail);
  std::unique_ptr<sqlite3_stmt, int (*)(sqlite3_stmt*)> guard(st, sqlite3_finalize);
  if (rc != SQLITE_OK) return Error{c.refused.empty() ? fmt::format("SQL error: {}", sqlite3_errmsg(c.db)) : c.refused};
  if (!st) return Error{"parameter 'query': no SQL statement"};
  if (tail && std::string_view(tail).find_first_not_of(" \t\r\n;") != std::string_view::npos)
    return Error{"parameter 'query': one statement per call (the text goes on after the first ';')"};
  if (params.is_array()) {
    if (static_cast<int>(params.size()) != sqlite3_bind_parameter_count(st))
      return Error{fmt::format("parameter 'params': the query has {} placeholders, {} values were given",
                               sqlite3_bind_parameter_count(st), params.size())};
    for (std::size_t i = 0; i < params.size(); ++i)
      if (auto ok = bind(st, static_cast<int>(i) + 1, params[i]); !ok) return ok.error();
  } else if (params.is_object()) {
    for (const auto& [k, v] : params.items()) {
      int idx = 0;
      for (const char* prefix : {":", "@", "$"})
        if (!idx) idx = sqlite3_bind_parameter_index(st, (prefix + k).c_str());
      if (!idx) return Error{fmt::format("parameter 'params': the query has no placeholder :{}", k)};
      if (auto ok = bind(st, idx, v); !ok) return ok.error();
    }
  }
  Json rows = Json::array();
  int ncol = sqlite3_column_count(st);
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    if (rows.size() == max_rows)
      return Error{fmt::format("the query returns more than {} rows (the row cap); narrow it or add LIMIT", max_rows)};
    Json row = Json::object();
    for (int i = 0; i < ncol; ++i) row[sqlite3_column_name(st, i)] = column_value(st, i);
    rows.push_back(std::move(row));
  }
  if (rc == SQLITE_INTERRUPT)
    return Error{fmt::format("the query ran past its time limit of {:g} s", std::min(timeout_s, ctx.timeout_s))};
  if (rc != SQLITE_DONE) return Error{fmt::format("SQL error: {}", sqlite3_errmsg(c.db))};
  if (ncol == 0) return Json{{"changes", sqlite3_changes(c.db)}};
  return rows;
}

Result<std::shared_ptr<Connection>> open_connection(const std::string& path, bool writable, bool create) {
  auto c = std::make_shared<Connection>();
  c->writable = writable;
  int flags = (writable ? SQLITE_OPEN_READWRITE : SQLITE_OPEN_READONLY) | (create ? SQLITE_OPEN_CREATE : 0) |
              SQLITE_OPEN_FULLMUTEX;
  if (sqlite3_open_v2(path.c_str(), &c->db, flags, nullptr) != SQLITE_OK)
    return Error{fmt::format("{}: {}", path, c->db ? sqlite3_errmsg(c->db) : "cannot open")};
  // Belt and braces beside the authorizer: no extension loading, no edits of the schema's text,
  // no triggers or views that the database brings with it running with our rights.
  sqlite3_db_config(c->db, SQLITE_DBCONFIG_ENABLE_LOAD_EXTENSION, 0, nullptr);
  sqlite3_db_config(c->db, SQLITE_DBCONFIG_DEFENSIVE, 1, nullptr);
  sqlite3_db_config(c->db, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, nullptr);
  sqlite3_db_config(c->db, SQLITE_DBCONFIG_ENABLE_FTS3_TOKENIZER, 0, nullptr);
  sqlite3_limit(c->db, SQLITE_LIMIT_ATTACHED, 0);
  // A string or blob a query builds lives in this process (printf('%.*c', 1e9, 'x')): 16 MiB at
  // most, past any reply the tool channel carries.
  sqlite3_limit(c->db, SQLITE_LIMIT_LENGTH, 16 << 20);
  sqlite3_busy_timeout(c->db, 1000);
  // Opening does not read the file: check here that it is a database, so a wrong path is an
  // error at start, not at the program's first query.
  char* err = nullptr;
  if (sqlite3_exec(c->db, "SELECT count(*) FROM sqlite_schema", nullptr, nullptr, &err) != SQLITE_OK) {
    std::string why = err ? err : "unreadable";
    sqlite3_free(err);
    return Error{fmt::format("{}: {}", path, why)};
  }
  sqlite3_set_authorizer(c->db, authorize, c.get());
  sqlite3_progress_handler(c->db, 1000, progress, c.get());
  return c;
}

}  // namespace

Result<Tool> sql_tool(const BuiltinOptions& opt) {
  if (opt.db.empty()) return Error{"tool 'sql' needs a database: give --db FILE"};
  auto conn = open_connection(opt.db, opt.writable, false);
  if (!conn) return Error{fmt::format("--db {}", conn.error().message)};
  Tool t;
  t.name = "sql";
  t.description = fmt::format(
      "Runs one SQL statement on the SQLite database {} ({}) and returns its rows as a list of dicts "
      "(column -> value). At most {} rows; ? or :name placeholders take their values from params.",
      std::filesystem::path(opt.db).filename().string(), opt.writable ? "writable" : "read-only", opt.sql_max_rows);
  t.parameters = {{"type", "object"},
                  {"properties",
                   {{"query", {{"type", "string"}, {"description", "one SQL statement"}, {"minLength", 1}}},
                    {"params",
                     {{"type", {"array", "object"}}, {"description", "values for ? (a list) or :name (a dict) placeholders"}}}}},
                  {"required", {"query"}},
                  {"additionalProperties", false},
                  {"examples", {{{"query", "SELECT name FROM sqlite_schema WHERE type = 'table'"}}}}};
  t.result = {{"type", "array"}, {"items", {{"type", "object"}}}};
  t.timeout_s = opt.sql_timeout_s + 1;
  t.source = "builtin";
  std::size_t max_rows = opt.sql_max_rows;
  double timeout = opt.sql_timeout_s;
  t.handler = [c = conn.value(), max_rows, timeout](const Json& a, const CallContext& ctx) -> Result<Json> {
    return run_query(*c, a["query"].get<std::string>(), a.value("params", Json()), max_rows, timeout, ctx);
  };
  return t;
}

// ------------------------------------------------------------------ search

namespace {

struct Index {
  std::shared_ptr<Connection> conn;  // in memory: the index is rebuilt by each process
  std::filesystem::path root;
};

bool looks_binary(const std::string& s) { return s.find('\0') != std::string::npos; }

// Brings the index up to date with the folder: new and changed files (by mtime and size) are
// (re)indexed, removed ones dropped. Called with the connection's lock held.
VoidResult refresh(Index& ix) {
  sqlite3* db = ix.conn->db;
  std::map<std::string, std::pair<int64_t, int64_t>> known;
  {
    sqlite3_stmt* st;
    sqlite3_prepare_v2(db, "SELECT path, mtime, size FROM files", -1, &st, nullptr);
    while (sqlite3_step(st) == SQLITE_ROW)
      known[reinterpret_cast<const char*>(sqlite3_column_text(st, 0))] = {sqlite3_column_int64(st, 1), sqlite3_column_int64(st, 2)};
    sqlite3_finalize(st);
  }
  sqlite3_exec(db, "BEGIN", nullptr, nullptr, nullptr);
  sqlite3_stmt *del_f, *del_d, *ins_f, *ins_d;
  sqlite3_prepare_v2(db, "DELETE FROM files WHERE path = ?", -1, &del_f, nullptr);
  sqlite3_prepare_v2(db, "DELETE FROM docs WHERE path = ?", -1, &del_d, nullptr);
  sqlite3_prepare_v2(db, "INSERT INTO files(path, mtime, size) VALUES (?, ?, ?)", -1, &ins_f, nullptr);
  sqlite3_prepare_v2(db, "INSERT INTO docs(path, body) VALUES (?, ?)", -1, &ins_d, nullptr);
  auto drop = [&](const std::string& p) {
    for (auto* st : {del_f, del_d}) {
      sqlite3_bind_text(st, 1, p.c_str(), -1, SQLITE_TRANSIENT);
      sqlite3_step(st);
      sqlite3_reset(st);
    }
  };
  std::error_code ec;
  std::set<std::string> seen;
  for (auto it = std::filesystem::recursive_directory_iterator(ix.root, std::filesystem::directory_options::skip_permission_denied, ec);
       !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    if (!it->is_regular_file(ec) || it->is_symlink(ec)) continue;
    struct stat sb;
    if (::stat(it->path().c_str(), &sb) != 0 || sb.st_size > (8 << 20)) continue;
    std::string rel = std::filesystem::relative(it->path(), ix.root, ec).string();
    seen.insert(rel);
    int64_t mtime = static_cast<int64_t>(sb.st_mtim.tv_sec) * 1000000000 + sb.st_mtim.tv_nsec;
    auto k = known.find(rel);
    if (k != known.end() && k->second == std::make_pair(mtime, static_cast<int64_t>(sb.st_size))) continue;
    if (k != known.end()) drop(rel);
    std::ifstream in(it->path(), std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    std::string body = ss.str();
    if (looks_binary(body)) continue;
    sqlite3_bind_text(ins_f, 1, rel.c_str(), -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(ins_f, 2, mtime);
    sqlite3_bind_int64(ins_f, 3, sb.st_size);
    sqlite3_step(ins_f);
    sqlite3_reset(ins_f);
    sqlite3_bind_text(ins_d, 1, rel.c_str(), -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(ins_d, 2, body.data(), static_cast<int>(body.size()), SQLITE_TRANSIENT);
    sqlite3_step(ins_d);
    sqlite3_reset(ins_d);
  }
  for (const auto& [p, _] : known)
    if (!seen.count(p)) drop(p);
  for (auto* st : {del_f, del_d, ins_f, ins_d}) sqlite3_finalize(st);
  sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr);
  if (ec) return Error{fmt::format("--docs {}: {}", ix.root.string(), ec.message())};
  return ok_status();
}

// The user's words as an FTS5 query: each word quoted (so punctuation and FTS5's operators in
// it are plain text), any of them may match; BM25 ranks documents with more and rarer ones first.
std::string fts_query(const std::string& q) {
  std::string out, word;
  auto flush = [&] {
    if (word.empty()) return;
    out += (out.empty() ? "\"" : " OR \"") + word + "\"";
    word.clear();
  };
  for (unsigned char ch : q) {
    if (std::isalnum(ch) || ch >= 0x80 || ch == '_') word += static_cast<char>(ch);
    else flush();
  }
  flush();
  return out;
}

}  // namespace

Result<Tool> search_tool(const BuiltinOptions& opt) {
  if (opt.docs.empty()) return Error{"tool 'search' needs a folder of documents: give --docs DIR"};
  std::error_code ec;
  if (!std::filesystem::is_directory(opt.docs, ec)) return Error{fmt::format("--docs {}: not a folder", opt.docs)};
  auto conn = open_connection(":memory:", true, true);
  if (!conn) return Error{fmt::format("search index: {}", conn.error().message)};
  sqlite3_set_authorizer((*conn)->db, nullptr, nullptr);
  char* err = nullptr;
  if (sqlite3_exec((*conn)->db,
                   "CREATE TABLE files(path TEXT PRIMARY KEY, mtime INTEGER, size INTEGER);"
                   "CREATE VIRTUAL TABLE docs USING fts5(path UNINDEXED, body, tokenize = 'porter unicode61');",
                   nullptr, nullptr, &err) != SQLITE_OK) {
    std::string why = err ? err : "";
    sqlite3_free(err);
    return Error{fmt::format("search index: {} (this SQLite lacks FTS5?)", why)};
  }
  auto ix = std::make_shared<Index>(Index{conn.value(), std::filesystem::path(opt.docs)});
  Tool t;
  t.name = "search";
  t.description =
      "Full-text search over the documents in the folder wand was given (BM25 ranking, English stemming). Returns the best "
      "k hits as dicts with path, score (higher is better) and snippet (matches in [brackets]).";
  t.parameters = {{"type", "object"},
                  {"properties",
                   {{"query", {{"type", "string"}, {"description", "words to look for"}, {"minLength", 1}}},
                    {"k", {{"type", "integer"}, {"description", "how many hits"}, {"minimum", 1}, {"maximum", 100}, {"default", 5}}}}},
                  {"required", {"query"}},
                  {"additionalProperties", false},
                  {"examples", {{{"query", "refund policy"}, {"k", 3}}}}};
  t.result = {{"type", "array"}, {"items", {{"type", "object"}}}};
  t.source = "builtin";
  t.handler = [ix](const Json& a, const CallContext& ctx) -> Result<Json> {
    std::lock_guard lk(ix->conn->mu);
    ix->conn->deadline = ctx.deadline;
    if (auto ok = refresh(*ix); !ok) return ok.error();
    std::string q = fts_query(a["query"].get<std::string>());
    Json hits = Json::array();
    if (q.empty()) return hits;
    sqlite3_stmt* st;
    sqlite3_prepare_v2(ix->conn->db,
                       "SELECT path, -bm25(docs), snippet(docs, 1, '[', ']', '...', 16) FROM docs WHERE docs MATCH ? "
                       "ORDER BY bm25(docs) LIMIT ?",
                       -1, &st, nullptr);
    sqlite3_bind_text(st, 1, q.c_str(), -1, SQLITE_TRANSIENT);
    sqlite3_bind_int(st, 2, a.value("k", 5));
    while (sqlite3_step(st) == SQLITE_ROW)
      hits.push_back({{"path", reinterpret_cast<const char*>(sqlite3_column_text(st, 0))},
                      {"score", sqlite3_column_double(st, 1)},
                      {"snippet", reinterpret_cast<const char*>(sqlite3_column_text(st, 2))}});
    sqlite3_finalize(st);
    return hits;
  };
  return t;
}

}  // namespace wand::tools

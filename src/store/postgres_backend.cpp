// The PostgreSQL backend of the run store (backend.h), over libpq: a run store that many workers
// on many machines record into at once (README: A shared store).
//
// Dialect differences from SQLite, kept here so store.cpp and the schema files stay one source:
//  - `?` placeholders become `$1`, `$2`, ... (outside string literals);
//  - parameters are sent as text with no declared type, so the server infers each from its use
//    (a column, a comparison, substr's length); a NULL with no such context needs a CAST in
//    the SQL (store.cpp writes `CAST(? AS TEXT) IS NULL`);
//  - text must be valid UTF-8 without NUL bytes: invalid sequences and NUL become U+FFFD
//    (SQLite keeps such bytes as they are);
//  - a write transaction is READ COMMITTED (rows written by other workers are never changed, so
//    keys decide conflicts); a read is REPEATABLE READ (one snapshot); a migration also takes a
//    transaction-scoped advisory lock, so workers starting together migrate once;
//  - serialization failures and deadlocks (SQLSTATE 40001, 40P01) read as busy and are retried.
#include <fmt/core.h>
#include <libpq-fe.h>

#include <charconv>
#include <cstdlib>

#include "common/json.h"
#include "store/backend.h"

namespace wand::store::backend {
namespace {

using Kind = DbError::Kind;

// The advisory lock key migrations take: "wand" in ASCII.
constexpr int64_t kMigrationLock = 0x77616e64;

Kind kind_of(const PGresult* r) {
  const char* state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : nullptr;
  std::string_view s = state ? state : "";
  if (s == "40001" || s == "40P01" || s == "55P03") return Kind::busy;
  if (s.starts_with("23")) return Kind::constraint;  // integrity constraint violation
  if (s.starts_with("08")) return Kind::cantopen;    // connection exception
  if (s == "25006") return Kind::readonly;           // read-only transaction (a standby)
  return Kind::other;
}

std::string message(PGconn* c, const PGresult* r) {
  std::string m = r ? PQresultErrorMessage(r) : "";
  if (m.empty()) m = PQerrorMessage(c);
  while (!m.empty() && (m.back() == '\n' || m.back() == ' ')) m.pop_back();
  return m;
}

// `?` -> `$N`, leaving string literals and quoted names alone.
std::string numbered(std::string_view sql) {
  std::string out;
  int n = 0;
  char quote = 0;
  for (char ch : sql) {
    if (quote) {
      if (ch == quote) quote = 0;
      out += ch;
    } else if (ch == '\'' || ch == '"') {
      quote = ch;
      out += ch;
    } else if (ch == '?') {
      out += fmt::format("${}", ++n);
    } else {
      out += ch;
    }
  }
  return out;
}

// Valid UTF-8 without NUL, as PostgreSQL's text takes it (nlohmann's serializer does the
// replacing of invalid sequences with U+FFFD).
std::string pg_text(std::string_view v) {
  std::string s;
  bool clean = true;
  for (unsigned char ch : v) clean &= ch != 0 && ch < 0x80;
  if (clean) return std::string(v);
  s = Json::parse(dump_text(Json(std::string(v)))).get<std::string>();
  std::string out;
  for (char ch : s) out += ch == '\0' ? std::string("\xEF\xBF\xBD") : std::string(1, ch);
  return out;
}

struct ResultDeleter {
  void operator()(PGresult* r) const { PQclear(r); }
};
using ResultPtr = std::unique_ptr<PGresult, ResultDeleter>;

class PgStatement : public Statement {
 public:
  PgStatement(PGconn* c, std::string_view sql) : conn_(c), sql_(numbered(sql)) {}
  void bind_null(int i) override { slot(i) = std::nullopt; }
  void bind_int(int i, int64_t v) override { slot(i) = std::to_string(v); }
  void bind_real(int i, double v) override { slot(i) = fmt::format("{:.17g}", v); }
  void bind_text(int i, std::string_view v) override { slot(i) = pg_text(v); }

  bool step() override {
    if (!res_) {
      std::vector<const char*> values;
      for (auto& p : params_) values.push_back(p ? p->c_str() : nullptr);
      res_.reset(PQexecParams(conn_, sql_.c_str(), static_cast<int>(values.size()), nullptr, values.data(), nullptr,
                              nullptr, 0));
      auto st = PQresultStatus(res_.get());
      if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
        Kind k = kind_of(res_.get());
        std::string m = message(conn_, res_.get());
        res_.reset();
        throw DbError(k, m);
      }
      row_ = -1;
    }
    return ++row_ < PQntuples(res_.get());
  }
  void reset() override {
    res_.reset();
    params_.clear();
  }
  bool is_null(int col) const override { return PQgetisnull(res_.get(), row_, col); }
  int64_t int64(int col) const override {
    const char* v = PQgetvalue(res_.get(), row_, col);
    int64_t out = 0;
    std::from_chars(v, v + std::char_traits<char>::length(v), out);
    return out;
  }
  double real(int col) const override { return std::strtod(PQgetvalue(res_.get(), row_, col), nullptr); }
  std::string text(int col) const override {
    if (is_null(col)) return "";
    return std::string(PQgetvalue(res_.get(), row_, col), PQgetlength(res_.get(), row_, col));
  }

 private:
  std::optional<std::string>& slot(int i) {
    if (static_cast<int>(params_.size()) < i) params_.resize(i);
    return params_[i - 1];
  }
  PGconn* conn_;
  std::string sql_;
  std::vector<std::optional<std::string>> params_;
  ResultPtr res_;
  int row_ = -1;
};

class PgConnection : public Connection {
 public:
  explicit PgConnection(const std::string& uri) : conn_(PQconnectdb(uri.c_str())) {
    if (!conn_ || PQstatus(conn_) != CONNECTION_OK) {
      std::string why = conn_ ? message(conn_, nullptr) : "out of memory";
      PQfinish(conn_);
      conn_ = nullptr;
      throw DbError(Kind::cantopen, why);
    }
    // Notices (for example "relation already exists, skipping") are not the user's concern.
    PQsetNoticeProcessor(conn_, [](void*, const char*) {}, nullptr);
    exec("SET client_encoding = 'UTF8'");
  }
  ~PgConnection() override { PQfinish(conn_); }

  void exec(const std::string& sql) override {
    ResultPtr r(PQexec(conn_, sql.c_str()));
    auto st = PQresultStatus(r.get());
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) throw DbError(kind_of(r.get()), message(conn_, r.get()));
  }
  std::unique_ptr<Statement> prepare(std::string_view sql) override { return std::make_unique<PgStatement>(conn_, sql); }
  void begin(TxKind kind) override {
    if (kind == TxKind::read) return exec("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
    exec("BEGIN");
    if (kind == TxKind::migrate) exec(fmt::format("SELECT pg_advisory_xact_lock({})", kMigrationLock));
  }
  void commit() override { exec("COMMIT"); }
  void rollback() noexcept override { PQclear(PQexec(conn_, "ROLLBACK")); }
  std::vector<std::string> tables() override {
    auto st = prepare("SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()");
    std::vector<std::string> names;
    while (st->step()) names.push_back(st->text(0));
    return names;
  }

 private:
  PGconn* conn_;
};

}  // namespace

std::unique_ptr<Connection> open_postgres(const std::string& uri) { return std::make_unique<PgConnection>(uri); }

}  // namespace wand::store::backend

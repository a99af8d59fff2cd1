// The SQLite backend of the run store (backend.h) over sqlite.h's wrappers: SQLite's result
// codes become DbError kinds, so store.cpp retries a busy database whichever backend it has.
#include <fmt/core.h>

#include "store/backend.h"
#include "store/sqlite.h"

namespace wand::store::backend {
namespace {

[[noreturn]] void rethrow(const sql::SqlError& e) {
  using K = DbError::Kind;
  int primary = e.code & 0xff;
  K kind = e.busy()                         ? K::busy
           : primary == SQLITE_CONSTRAINT   ? K::constraint
           : primary == SQLITE_NOTADB       ? K::not_a_db
           : primary == SQLITE_CORRUPT      ? K::corrupt
           : primary == SQLITE_READONLY     ? K::readonly
           : primary == SQLITE_CANTOPEN     ? K::cantopen
                                            : K::other;
  throw DbError(kind, e.what());
}

// Runs fn, SQLite's errors rethrown as DbError.
template <class F>
auto translated(F&& fn) {
  try {
    return fn();
  } catch (const sql::SqlError& e) {
    rethrow(e);
  }
}

class SqliteStatement : public Statement {
 public:
  SqliteStatement(sql::Db& db, std::string_view text) : st_(translated([&] { return std::make_unique<sql::Stmt>(db, text); })) {}
  void bind_null(int i) override { translated([&] { st_->bind(i, std::nullopt); }); }
  void bind_int(int i, int64_t v) override { translated([&] { st_->bind(i, v); }); }
  void bind_real(int i, double v) override { translated([&] { st_->bind(i, v); }); }
  void bind_text(int i, std::string_view v) override { translated([&] { st_->bind(i, v); }); }
  bool step() override { return translated([&] { return st_->step(); }); }
  void reset() override { st_->reset(); }
  bool is_null(int col) const override { return st_->is_null(col); }
  int64_t int64(int col) const override { return st_->int64(col); }
  double real(int col) const override { return st_->real(col); }
  std::string text(int col) const override { return st_->text(col); }

 private:
  std::unique_ptr<sql::Stmt> st_;
};

class SqliteConnection : public Connection {
 public:
  SqliteConnection(const std::string& path, bool create) : db_(path, create) {}
  void exec(const std::string& text) override { translated([&] { db_.exec(text); }); }
  std::unique_ptr<Statement> prepare(std::string_view text) override {
    return std::make_unique<SqliteStatement>(db_, text);
  }
  // A read is a deferred transaction (a snapshot from its first read); a write or a migration
  // takes the write lock up front, which also orders migrations.
  void begin(TxKind kind) override { exec(kind == TxKind::read ? "BEGIN" : "BEGIN IMMEDIATE"); }
  void commit() override { exec("COMMIT"); }
  void rollback() noexcept override { sqlite3_exec(db_.get(), "ROLLBACK", nullptr, nullptr, nullptr); }
  std::vector<std::string> tables() override {
    auto st = prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'");
    std::vector<std::string> names;
    while (st->step()) names.push_back(st->text(0));
    return names;
  }
  sql::Db& db() { return db_; }

 private:
  sql::Db db_;
};

}  // namespace

std::unique_ptr<Connection> open_sqlite(const std::string& path, bool create) {
  auto c = translated([&] { return std::make_unique<SqliteConnection>(path, create); });
  sqlite3_busy_timeout(c->db().get(), 10000);
  c->exec("PRAGMA foreign_keys = ON");
  return c;
}

sql::Db* as_sqlite(Connection& c) {
  auto* s = dynamic_cast<SqliteConnection*>(&c);
  return s ? &s->db() : nullptr;
}

}  // namespace wand::store::backend

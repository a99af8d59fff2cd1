// Small RAII wrappers over SQLite's C API, internal to the store. Failures throw SqlError (with
// SQLite's result code, so a busy database can be retried); store.cpp turns them into Results at
// its public boundary.
#pragma once
#include <sqlite3.h>

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace wand::store::sql {

struct SqlError : std::runtime_error {
  int code;
  SqlError(int c, const std::string& what) : std::runtime_error(what), code(c) {}
  bool busy() const { return (code & 0xff) == SQLITE_BUSY || (code & 0xff) == SQLITE_LOCKED; }
};

class Db {
 public:
  // Opens `path` read-write (creating it when `create`); throws with SQLite's reason.
  Db(const std::string& path, bool create);
  ~Db() { sqlite3_close_v2(db_); }
  Db(const Db&) = delete;
  Db& operator=(const Db&) = delete;
  sqlite3* get() const { return db_; }
  // Runs one or more statements without results (schema files, pragmas).
  void exec(const std::string& sql);
  [[noreturn]] void fail(int rc, std::string_view doing) const;

 private:
  sqlite3* db_ = nullptr;
};

// A prepared statement. bind(i, v) counts from 1 as SQLite does; empty optionals bind NULL.
class Stmt {
 public:
  Stmt(Db& db, std::string_view sql);
  ~Stmt() { sqlite3_finalize(st_); }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;

  Stmt& bind(int i, std::nullopt_t);
  Stmt& bind(int i, int64_t v);
  Stmt& bind(int i, int v) { return bind(i, int64_t{v}); }
  Stmt& bind(int i, double v);
  Stmt& bind(int i, std::string_view v);  // text (UTF-8, may hold NUL bytes)
  template <class T>
  Stmt& bind(int i, const std::optional<T>& v) {
    return v ? bind(i, *v) : bind(i, std::nullopt);
  }

  // Steps once: true while a row is available, false when done.
  bool step();
  void run() { while (step()) {} }
  // Ready to run again with new bindings.
  void reset() {
    sqlite3_reset(st_);
    sqlite3_clear_bindings(st_);
  }

  bool is_null(int col) const { return sqlite3_column_type(st_, col) == SQLITE_NULL; }
  int64_t int64(int col) const { return sqlite3_column_int64(st_, col); }
  double real(int col) const { return sqlite3_column_double(st_, col); }
  std::string text(int col) const;  // "" for NULL

 private:
  Db& db_;
  sqlite3_stmt* st_ = nullptr;
};

// BEGIN IMMEDIATE (takes the write lock up front, so two writers never deadlock upgrading a
// read lock); rolls back unless commit() was called.
class Transaction {
 public:
  explicit Transaction(Db& db) : db_(db) { db_.exec("BEGIN IMMEDIATE"); }
  ~Transaction() {
    if (!done_) sqlite3_exec(db_.get(), "ROLLBACK", nullptr, nullptr, nullptr);
  }
  void commit() {
    db_.exec("COMMIT");
    done_ = true;
  }

 private:
  Db& db_;
  bool done_ = false;
};

}  // namespace wand::store::sql

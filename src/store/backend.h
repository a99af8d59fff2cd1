// The run store's database backends, internal to src/store: store.cpp speaks SQL through this
// interface, and each backend (SQLite by default, PostgreSQL for a store shared by many
// workers) implements it. Statements use `?` placeholders; the PostgreSQL backend renumbers them
// to its `$N`. Failures throw DbError, which store.cpp turns into Results at its boundary.
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace wand::store::sql {
class Db;
}

namespace wand::store::backend {

// Default visibility: thrown from the PostgreSQL module (postgres_loader.cpp) and caught in the binary.
struct __attribute__((visibility("default"))) DbError : std::runtime_error {
  enum class Kind {
    other,
    busy,        // another writer holds a lock or the transaction lost a race: retried
    constraint,  // a unique or foreign key was violated
    not_a_db,    // the file is not a database (or its header is corrupt)
    corrupt,
    readonly,
    cantopen,  // a missing folder, no permission, a server that does not answer
  };
  Kind kind;
  DbError(Kind k, const std::string& what) : std::runtime_error(what), kind(k) {}
  bool busy() const { return kind == Kind::busy; }
};

// A prepared statement. bind(i, v) counts from 1; empty optionals bind NULL.
class Statement {
 public:
  virtual ~Statement() = default;
  virtual void bind_null(int i) = 0;
  virtual void bind_int(int i, int64_t v) = 0;
  virtual void bind_real(int i, double v) = 0;
  virtual void bind_text(int i, std::string_view v) = 0;
  // Runs the statement on the first call; true while a row is available, false when done.
  virtual bool step() = 0;
  // Ready to run again with new bindings.
  virtual void reset() = 0;
  virtual bool is_null(int col) const = 0;
  virtual int64_t int64(int col) const = 0;
  virtual double real(int col) const = 0;
  virtual std::string text(int col) const = 0;  // "" for NULL
};

enum class TxKind {
  write,    // SQLite: BEGIN IMMEDIATE (the write lock up front, so writers never deadlock upgrading)
  read,     // one consistent snapshot for several reads
  migrate,  // a write that also excludes every other migration (PostgreSQL: an advisory lock)
};

class Connection {
 public:
  virtual ~Connection() = default;
  // Runs one or more statements without results (schema files).
  virtual void exec(const std::string& sql) = 0;
  virtual std::unique_ptr<Statement> prepare(std::string_view sql) = 0;
  virtual void begin(TxKind kind) = 0;
  virtual void commit() = 0;
  virtual void rollback() noexcept = 0;
  // The names of the tables in the store's database (schema), not the engine's own.
  virtual std::vector<std::string> tables() = 0;
};

// Opens a SQLite file (creating it when `create`), foreign keys on and a busy timeout set.
std::unique_ptr<Connection> open_sqlite(const std::string& path, bool create);
// The SQLite connection under `c`, for what only the SQLite store has (sqlite.h's wrappers);
// nullptr for another backend.
sql::Db* as_sqlite(Connection& c);
// Connects to a PostgreSQL database by libpq's connection URI ("postgresql://user@host/db",
// "postgresql:///db?host=/run/sock"). Throws DbError (cantopen) with libpq's reason.
std::unique_ptr<Connection> open_postgres(const std::string& uri);
// Whether `location` names a PostgreSQL database rather than a SQLite file.
bool is_postgres_uri(std::string_view location);
// The URI with its password replaced by "***", for messages.
std::string redact_uri(const std::string& uri);

// A statement with chained binds, as store.cpp writes them.
class Stmt {
 public:
  Stmt(Connection& c, std::string_view sql) : st_(c.prepare(sql)) {}
  Stmt& bind(int i, std::nullopt_t) { return st_->bind_null(i), *this; }
  Stmt& bind(int i, int64_t v) { return st_->bind_int(i, v), *this; }
  Stmt& bind(int i, int v) { return bind(i, int64_t{v}); }
  Stmt& bind(int i, double v) { return st_->bind_real(i, v), *this; }
  Stmt& bind(int i, std::string_view v) { return st_->bind_text(i, v), *this; }
  template <class T>
  Stmt& bind(int i, const std::optional<T>& v) {
    return v ? bind(i, *v) : bind(i, std::nullopt);
  }
  bool step() { return st_->step(); }
  void run() {
    while (step()) {}
  }
  void reset() { st_->reset(); }
  bool is_null(int col) const { return st_->is_null(col); }
  int64_t int64(int col) const { return st_->int64(col); }
  double real(int col) const { return st_->real(col); }
  std::string text(int col) const { return st_->text(col); }

 private:
  std::unique_ptr<Statement> st_;
};

// A transaction that rolls back unless commit() was called.
class Transaction {
 public:
  Transaction(Connection& c, TxKind kind = TxKind::write) : c_(c) { c_.begin(kind); }
  ~Transaction() {
    if (!done_) c_.rollback();
  }
  void commit() {
    c_.commit();
    done_ = true;
  }

 private:
  Connection& c_;
  bool done_ = false;
};

}  // namespace wand::store::backend

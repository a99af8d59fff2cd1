#include "store/sqlite.h"

#include <fmt/core.h>

namespace wand::store::sql {

Db::Db(const std::string& path, bool create) {
  int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_FULLMUTEX | (create ? SQLITE_OPEN_CREATE : 0);
  int rc = sqlite3_open_v2(path.c_str(), &db_, flags, nullptr);
  if (rc != SQLITE_OK) fail(rc, "opening");
  sqlite3_extended_result_codes(db_, 1);
}

void Db::fail(int rc, std::string_view doing) const {
  // sqlite3_errmsg describes the connection's last error; without a connection only the code does.
  std::string why = db_ ? sqlite3_errmsg(db_) : sqlite3_errstr(rc);
  throw SqlError(rc, fmt::format("{}: {}", doing, why));
}

void Db::exec(const std::string& sql) {
  char* err = nullptr;
  int rc = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err);
  if (rc != SQLITE_OK) {
    std::string why = err ? err : sqlite3_errstr(rc);
    sqlite3_free(err);
    throw SqlError(rc, why);
  }
}

Stmt::Stmt(Db& db, std::string_view sql) : db_(db) {
  int rc = sqlite3_prepare_v2(db.get(), sql.data(), static_cast<int>(sql.size()), &st_, nullptr);
  if (rc != SQLITE_OK) db.fail(rc, "preparing a statement");
}

Stmt& Stmt::bind(int i, std::nullopt_t) {
  if (int rc = sqlite3_bind_null(st_, i); rc != SQLITE_OK) db_.fail(rc, "binding");
  return *this;
}
Stmt& Stmt::bind(int i, int64_t v) {
  if (int rc = sqlite3_bind_int64(st_, i, v); rc != SQLITE_OK) db_.fail(rc, "binding");
  return *this;
}
Stmt& Stmt::bind(int i, double v) {
  if (int rc = sqlite3_bind_double(st_, i, v); rc != SQLITE_OK) db_.fail(rc, "binding");
  return *this;
}
Stmt& Stmt::bind(int i, std::string_view v) {
  int rc = sqlite3_bind_text64(st_, i, v.data(), v.size(), SQLITE_TRANSIENT, SQLITE_UTF8);
  if (rc != SQLITE_OK) db_.fail(rc, "binding");
  return *this;
}

bool Stmt::step() {
  int rc = sqlite3_step(st_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  db_.fail(rc, "writing or reading");
}

std::string Stmt::text(int col) const {
  auto* p = reinterpret_cast<const char*>(sqlite3_column_text(st_, col));
  return p ? std::string(p, sqlite3_column_bytes(st_, col)) : std::string();
}

}  // namespace wand::store::sql

// open_postgres for the `wand` binary: loads the PostgreSQL backend (and with it libpq, which
// brings OpenSSL, GnuTLS, Kerberos and LDAP) from wand_store_postgres.so when a store is a
// postgresql:// URI, instead of linking it, so no other command pays for mapping those libraries
// at start. The binary links this object, whose definition takes the place of
// postgres_backend.cpp's (the archive member is then never pulled).
#include "common/module.h"
#include "store/backend.h"

namespace wand::store::backend {

std::unique_ptr<Connection> open_postgres(const std::string& uri) {
  using Open = void (*)(const std::string&, std::unique_ptr<Connection>&, int&, std::string&);
  auto entry = module_symbol("wand_store_postgres.so", "wand_store_postgres_open");
  if (!entry) throw DbError(DbError::Kind::cantopen, entry.error().message);
  std::unique_ptr<Connection> out;
  int kind = 0;
  std::string error;
  reinterpret_cast<Open>(*entry)(uri, out, kind, error);
  if (!out) throw DbError(static_cast<DbError::Kind>(kind), error);
  return out;
}

}  // namespace wand::store::backend

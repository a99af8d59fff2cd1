// The entry point of wand_store_postgres.so, the PostgreSQL backend as a module (common/module.h,
// postgres_loader.cpp): the same code as in the static library, behind one extern "C" name. An
// error opening the connection comes back as its kind and message rather than as an exception.
#include "store/backend.h"

extern "C" __attribute__((visibility("default"))) void wand_store_postgres_open(
    const std::string& uri, std::unique_ptr<wand::store::backend::Connection>& out, int& error_kind,
    std::string& error) {
  try {
    out = wand::store::backend::open_postgres(uri);
  } catch (const wand::store::backend::DbError& e) {
    error_kind = static_cast<int>(e.kind);
    error = e.what();
  }
}

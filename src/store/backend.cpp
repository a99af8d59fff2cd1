// What store.cpp needs to know of store locations whichever backends are linked: the PostgreSQL
// backend itself may live in a module the `wand` binary loads on first use (postgres_loader.cpp).
#include "store/backend.h"

namespace wand::store::backend {

bool is_postgres_uri(std::string_view location) {
  return location.starts_with("postgresql://") || location.starts_with("postgres://");
}

std::string redact_uri(const std::string& given) {
  std::string uri = given;
  // ...?password=SECRET&...: a parameter's value runs to the next '&'.
  for (auto p = uri.find("password="); p != std::string::npos; p = uri.find("password=", p + 1)) {
    auto value = p + 9, end = uri.find('&', value);
    uri.replace(value, (end == std::string::npos ? uri.size() : end) - value, "***");
  }
  // scheme://user:password@host...: the password lies between the first ':' after the scheme
  // and the '@' that ends the user info.
  auto start = uri.find("://");
  if (start == std::string::npos) return uri;
  start += 3;
  auto at = uri.find('@', start);
  auto slash = uri.find('/', start);
  if (at == std::string::npos || (slash != std::string::npos && slash < at)) return uri;
  auto colon = uri.find(':', start);
  if (colon == std::string::npos || colon > at) return uri;
  return uri.substr(0, colon + 1) + "***" + uri.substr(at);
}

}  // namespace wand::store::backend

// http_get's fetch over libcurl: allowed hosts only, redirects checked hop by hop, and no
// connection to a loopback, private or link-local address unless the user listed that address.
#include <arpa/inet.h>
#include <curl/curl.h>
#include <fmt/core.h>
#include <netinet/in.h>

#include <algorithm>
#include <cstring>
#include <memory>

#include "tools/builtins.h"

namespace wand::tools {
namespace {

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

// Why an address may not be reached by name: "" when it is a public address.
std::string special_address(const sockaddr* sa) {
  if (sa->sa_family == AF_INET) {
    uint32_t a = ntohl(reinterpret_cast<const sockaddr_in*>(sa)->sin_addr.s_addr);
    if ((a >> 24) == 127) return "a loopback address";
    if ((a >> 24) == 10 || (a >> 20) == 0xAC1 || (a >> 16) == 0xC0A8) return "a private address";
    if ((a >> 16) == 0xA9FE) return "a link-local address";
    if ((a >> 22) == (100u << 2 | 1)) return "a shared (carrier-grade NAT) address";
    if ((a >> 24) == 0 || (a >> 28) >= 0xE) return "a reserved or multicast address";
    return "";
  }
  if (sa->sa_family == AF_INET6) {
    const auto& a6 = reinterpret_cast<const sockaddr_in6*>(sa)->sin6_addr;
    const uint8_t* b = a6.s6_addr;
    if (IN6_IS_ADDR_LOOPBACK(&a6)) return "a loopback address";
    if (IN6_IS_ADDR_UNSPECIFIED(&a6)) return "a reserved or multicast address";
    if (IN6_IS_ADDR_V4MAPPED(&a6)) {
      sockaddr_in v4{};
      v4.sin_family = AF_INET;
      std::memcpy(&v4.sin_addr, b + 12, 4);
      return special_address(reinterpret_cast<const sockaddr*>(&v4));
    }
    if ((b[0] & 0xFE) == 0xFC) return "a private address";
    if (b[0] == 0xFE && (b[1] & 0xC0) == 0x80) return "a link-local address";
    if (b[0] == 0xFF) return "a reserved or multicast address";
    return "";
  }
  return "an address of an unknown family";
}

std::string address_text(const sockaddr* sa) {
  char buf[INET6_ADDRSTRLEN] = "?";
  if (sa->sa_family == AF_INET) inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(sa)->sin_addr, buf, sizeof buf);
  if (sa->sa_family == AF_INET6) inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(sa)->sin6_addr, buf, sizeof buf);
  return buf;
}

bool is_ip_literal(const std::string& host) {
  unsigned char buf[sizeof(in6_addr)];
  return inet_pton(AF_INET, host.c_str(), buf) == 1 || inet_pton(AF_INET6, host.c_str(), buf) == 1;
}

struct Target {
  std::string scheme, host;
  long port = 0;
};

Result<Target> parse_url(const std::string& url) {
  std::unique_ptr<CURLU, void (*)(CURLU*)> u(curl_url(), curl_url_cleanup);
  if (curl_url_set(u.get(), CURLUPART_URL, url.c_str(), 0) != CURLUE_OK)
    return Error{fmt::format("'{}' is not a URL", url)};
  Target t;
  char* part = nullptr;
  if (curl_url_get(u.get(), CURLUPART_SCHEME, &part, 0) == CURLUE_OK) t.scheme = lower(part), curl_free(part);
  if (curl_url_get(u.get(), CURLUPART_HOST, &part, 0) == CURLUE_OK) t.host = lower(part), curl_free(part);
  if (curl_url_get(u.get(), CURLUPART_PORT, &part, CURLU_DEFAULT_PORT) == CURLUE_OK) t.port = std::atol(part), curl_free(part);
  if (t.scheme != "http" && t.scheme != "https")
    return Error{fmt::format("'{}': only http and https URLs are fetched", url)};
  if (t.host.size() > 2 && t.host.front() == '[') t.host = t.host.substr(1, t.host.size() - 2);
  return t;
}

// "host" allows every port of it; "host:port" that port only.
bool allowed(const Target& t, const std::vector<std::string>& hosts) {
  for (const auto& entry : hosts) {
    std::string e = lower(entry);
    auto colon = e.rfind(':');
    bool has_port = colon != std::string::npos && e.find(':') == colon && colon + 1 < e.size();
    std::string host = has_port ? e.substr(0, colon) : e;
    if (host == t.host && (!has_port || std::atol(e.c_str() + colon + 1) == t.port)) return true;
  }
  return false;
}

struct Fetch {
  std::string body;
  std::size_t cap = 0;
  bool truncated = false;
  std::string refused;  // why the socket was not opened
  bool literal = false;  // the URL's host is an IP literal the user listed
  std::string host;
};

size_t on_body(char* p, size_t size, size_t n, void* ud) {
  auto* f = static_cast<Fetch*>(ud);
  std::size_t len = size * n;
  std::size_t room = f->cap - std::min(f->cap, f->body.size());
  f->body.append(p, std::min(len, room));
  if (len > room) {
    f->truncated = true;
    return 0;  // stop: the cap is reached
  }
  return len;
}

curl_socket_t on_open(void* ud, curlsocktype, curl_sockaddr* a) {
  auto* f = static_cast<Fetch*>(ud);
  std::string why = special_address(&a->addr);
  if (!why.empty() && !f->literal) {
    f->refused = fmt::format("host '{}' resolves to {}, {}; only an address listed itself with --allow-host may be reached",
                             f->host, address_text(&a->addr), why);
    return CURL_SOCKET_BAD;
  }
  return ::socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
}

}  // namespace

Result<Json> http_get(const std::string& url, const BuiltinOptions& opt, double timeout_s) {
  static const bool init = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK;
  if (!init) return Error{"libcurl could not start"};
  if (opt.allow_hosts.empty()) return Error{"http_get is off: no host is allowed (--allow-host HOST)"};
  auto start = std::chrono::steady_clock::now();
  std::string current = url;
  for (int hop = 0; hop <= 5; ++hop) {
    auto t = parse_url(current);
    if (!t) return t.error();
    if (!allowed(*t, opt.allow_hosts)) {
      std::string hosts;
      for (const auto& h : opt.allow_hosts) hosts += (hosts.empty() ? "" : ", ") + h;
      // An allowed host on a port not allowed: say the port, or the message reads as a contradiction.
      bool host_listed = std::any_of(opt.allow_hosts.begin(), opt.allow_hosts.end(),
                                     [&](const std::string& h) { return h.substr(0, h.find(':')) == t->host; });
      std::string what = host_listed ? fmt::format("port {} of host '{}'", t->port, t->host) : fmt::format("host '{}'", t->host);
      return Error{hop == 0 ? fmt::format("{} is not allowed (allowed: {})", what, hosts)
                            : fmt::format("redirect to '{}' refused: {} is not allowed (allowed: {})", current, what,
                                          hosts)};
    }
    double left = timeout_s - std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (left <= 0) return Error{fmt::format("timed out after {:g} s", timeout_s)};
    Fetch f;
    f.cap = opt.http_max_bytes;
    f.host = t->host;
    f.literal = is_ip_literal(t->host);
    std::unique_ptr<CURL, void (*)(CURL*)> c(curl_easy_init(), curl_easy_cleanup);
    curl_easy_setopt(c.get(), CURLOPT_URL, current.c_str());
    curl_easy_setopt(c.get(), CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c.get(), CURLOPT_FOLLOWLOCATION, 0L);  // each hop is checked here
    curl_easy_setopt(c.get(), CURLOPT_PROXY, "");            // never through a proxy from the environment
    curl_easy_setopt(c.get(), CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c.get(), CURLOPT_TIMEOUT_MS, static_cast<long>(left * 1000) + 1);
    curl_easy_setopt(c.get(), CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c.get(), CURLOPT_WRITEDATA, &f);
    curl_easy_setopt(c.get(), CURLOPT_OPENSOCKETFUNCTION, on_open);
    curl_easy_setopt(c.get(), CURLOPT_OPENSOCKETDATA, &f);
    curl_easy_setopt(c.get(), CURLOPT_USERAGENT, "wand-http_get/0.1");
    CURLcode rc = curl_easy_perform(c.get());
    if (!f.refused.empty()) return Error{f.refused};
    if (rc != CURLE_OK && !(rc == CURLE_WRITE_ERROR && f.truncated)) {
      if (rc == CURLE_OPERATION_TIMEDOUT) return Error{fmt::format("timed out after {:g} s", timeout_s)};
      return Error{fmt::format("GET {}: {}", current, curl_easy_strerror(rc))};
    }
    long status = 0;
    curl_easy_getinfo(c.get(), CURLINFO_RESPONSE_CODE, &status);
    char* location = nullptr;
    curl_easy_getinfo(c.get(), CURLINFO_REDIRECT_URL, &location);
    if (status >= 300 && status < 400 && location) {
      current = location;
      continue;
    }
    char* type = nullptr;
    curl_easy_getinfo(c.get(), CURLINFO_CONTENT_TYPE, &type);
    return Json{{"status", status}, {"url", current}, {"content_type", type ? type : ""}, {"body", std::move(f.body)},
                {"truncated", f.truncated}};
  }
  return Error{fmt::format("GET {}: more than 5 redirects", url)};
}

}  // namespace wand::tools

// http_post_json with libcurl (remote.h). The `wand` binary loads this from wand_feedback_http.so
// on first use (http_post_loader.cpp), so commands that never post do not map libcurl at start.
#include <curl/curl.h>
#include <fmt/core.h>

#include <memory>

#include "feedback/remote.h"

namespace wand::feedback {
namespace {

size_t on_body(char* p, size_t size, size_t n, void* ud) {
  static_cast<std::string*>(ud)->append(p, size * n);
  return size * n;
}

size_t on_header(char* p, size_t size, size_t n, void* ud) {
  std::string_view h(p, size * n);
  constexpr std::string_view key = "retry-after:";
  if (h.size() > key.size()) {
    std::string lower(h.substr(0, key.size()));
    for (auto& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (lower == key) *static_cast<double*>(ud) = std::atof(std::string(h.substr(key.size())).c_str());
  }
  return size * n;
}

}  // namespace

Result<HttpReply> http_post_json(const std::string& url, const std::string& body, const std::string& token,
                                 double timeout_s) {
  static const bool init = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK;
  if (!init) return Error{"libcurl could not start"};
  std::unique_ptr<CURL, void (*)(CURL*)> c(curl_easy_init(), curl_easy_cleanup);
  curl_slist* headers = curl_slist_append(nullptr, "Content-Type: application/json");
  std::string auth = "Authorization: Bearer " + token;
  if (!token.empty()) headers = curl_slist_append(headers, auth.c_str());
  std::unique_ptr<curl_slist, void (*)(curl_slist*)> hold(headers, curl_slist_free_all);
  HttpReply reply;
  curl_easy_setopt(c.get(), CURLOPT_URL, url.c_str());
  curl_easy_setopt(c.get(), CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c.get(), CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(c.get(), CURLOPT_POSTFIELDS, body.data());
  curl_easy_setopt(c.get(), CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
  curl_easy_setopt(c.get(), CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c.get(), CURLOPT_TIMEOUT_MS, static_cast<long>(timeout_s * 1000));
  curl_easy_setopt(c.get(), CURLOPT_CONNECTTIMEOUT_MS, 10000L);
  curl_easy_setopt(c.get(), CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(c.get(), CURLOPT_WRITEDATA, &reply.body);
  curl_easy_setopt(c.get(), CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(c.get(), CURLOPT_HEADERDATA, &reply.retry_after_s);
  curl_easy_setopt(c.get(), CURLOPT_ACCEPT_ENCODING, "");
  curl_easy_setopt(c.get(), CURLOPT_USERAGENT, "wand/0.1");
  CURLcode rc = curl_easy_perform(c.get());
  if (rc != CURLE_OK) return Error{fmt::format("POST {}: {}", url, curl_easy_strerror(rc))};
  curl_easy_getinfo(c.get(), CURLINFO_RESPONSE_CODE, &reply.status);
  return reply;
}

}  // namespace wand::feedback

// The module's entry point (wand_feedback_http.so): the same function behind one extern "C" name.
extern "C" __attribute__((visibility("default"))) void wand_feedback_http_post(
    const std::string& url, const std::string& body, const std::string& token, double timeout_s,
    wand::Result<wand::feedback::HttpReply>& out) {
  out = wand::feedback::http_post_json(url, body, token, timeout_s);
}

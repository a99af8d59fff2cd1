// http_post over libcurl: the one part of the MCP client that needs it. The `wand` binary loads
// it from wand_mcp_http.so (http_loader.cpp), so commands that never reach an MCP server over
// HTTP do not map libcurl; the static library (tests, other programs) links it directly.
#include <curl/curl.h>

#include <algorithm>
#include <mutex>

#include <fmt/core.h>

#include "tools/mcp/mcp_client.h"

namespace wand::tools::mcp {
namespace {

struct Sink {
  HttpResponse* resp;
  const std::function<bool(long, const HttpResponse&, std::string_view)>* on_data;
  CURL* curl;
  bool stopped = false;
};

size_t on_header(char* data, size_t size, size_t n, void* user) {
  auto* s = static_cast<Sink*>(user);
  std::string_view line(data, size * n);
  auto colon = line.find(':');
  if (line.starts_with("HTTP/")) s->resp->headers.clear();  // a new status line (after 100 Continue)
  if (colon != std::string_view::npos) {
    std::string name(line.substr(0, colon));
    std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::tolower(c); });
    std::string value(line.substr(colon + 1));
    value.erase(0, value.find_first_not_of(" \t"));
    value.erase(value.find_last_not_of(" \t\r\n") + 1);
    s->resp->headers[name] = value;
  }
  return size * n;
}

size_t on_body(char* data, size_t size, size_t n, void* user) {
  auto* s = static_cast<Sink*>(user);
  long status = 0;
  curl_easy_getinfo(s->curl, CURLINFO_RESPONSE_CODE, &status);
  s->resp->status = status;
  std::string_view bytes(data, size * n);
  // The callback takes what it streams (SSE); anything else is kept as the body, capped.
  auto ct = s->resp->headers.find("content-type");
  bool stream = status < 300 && ct != s->resp->headers.end() && ct->second.find("text/event-stream") != std::string::npos;
  if (stream) {
    if (!(*s->on_data)(status, *s->resp, bytes)) {
      s->stopped = true;
      return 0;  // curl ends the transfer: the response arrived
    }
  } else if (s->resp->body.size() < (64u << 20)) {
    s->resp->body.append(bytes);
  }
  return size * n;
}

}  // namespace

Result<HttpResponse> http_post(const HttpRequest& req,
                               const std::function<bool(long, const HttpResponse&, std::string_view)>& on_data) {
  static std::once_flag init;
  std::call_once(init, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  CURL* curl = curl_easy_init();
  if (!curl) return Error{"cannot start libcurl"};
  HttpResponse resp;
  Sink sink{&resp, &on_data, curl};
  curl_slist* headers = nullptr;
  for (auto& h : req.headers) headers = curl_slist_append(headers, h.c_str());
  char errbuf[CURL_ERROR_SIZE] = "";
  curl_easy_setopt(curl, CURLOPT_URL, req.url.c_str());
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, static_cast<long>(req.timeout_s * 1000));
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(std::min(req.timeout_s, 30.0) * 1000));
  curl_easy_setopt(curl, CURLOPT_POSTFIELDS, req.body.c_str());
  curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, static_cast<long>(req.body.size()));
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &sink);
  curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(curl, CURLOPT_HEADERDATA, &sink);
  curl_easy_setopt(curl, CURLOPT_USERAGENT, "wand/0.1");
  CURLcode rc = curl_easy_perform(curl);
  long status = 0;
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
  resp.status = status;
  curl_slist_free_all(headers);
  curl_easy_cleanup(curl);
  if (rc != CURLE_OK && !(rc == CURLE_WRITE_ERROR && sink.stopped)) {
    std::string why = *errbuf ? errbuf : curl_easy_strerror(rc);
    return Error{fmt::format("{}: {}", req.url, why), rc == CURLE_OPERATION_TIMEDOUT ? "timeout" : "unreachable"};
  }
  return resp;
}

}  // namespace wand::tools::mcp

// `wand mcp` over stdio: newline-delimited JSON-RPC (basic/transports/stdio). Each request runs on
// its own thread, so a long solve does not hold up a ping; one lock keeps the lines whole.
#include <unistd.h>

#include <cerrno>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

#include "mcp/mcp_server.h"

namespace wand::mcp {

void serve_stdio(Server& server, int in_fd, int out_fd) {
  Connection conn;
  std::mutex out_mu;
  auto write_message = [&](const Json& m) {
    std::string line = dump_text(m) + "\n";
    std::lock_guard lk(out_mu);
    for (std::size_t off = 0; off < line.size();) {
      ssize_t n = ::write(out_fd, line.data() + off, line.size() - off);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return;  // the client went away; the input's end will stop us
      off += static_cast<std::size_t>(n);
    }
  };
  // Detached threads, counted: a long session must not keep every finished thread's stack.
  std::mutex run_mu;
  std::condition_variable run_cv;
  int running = 0;
  auto handle_line = [&](const std::string& line) {
    auto msg = parse_json(line, "message");
    if (!msg) {
      write_message({{"jsonrpc", "2.0"}, {"id", nullptr}, {"error", {{"code", -32700}, {"message", msg.error().message}}}});
      return;
    }
    // Answers to requests wand never sends (it asks clients nothing): ignored.
    if (msg->is_object() && !msg->contains("method") && (msg->contains("result") || msg->contains("error"))) return;
    {
      std::lock_guard lk(run_mu);
      ++running;
    }
    std::thread([&, m = std::move(*msg)] {
      Json r = server.handle(m, conn, write_message);
      if (!r.is_null()) write_message(r);
      std::lock_guard lk(run_mu);
      --running;
      run_cv.notify_all();
    }).detach();
  };
  std::string buf;
  char chunk[65536];
  for (;;) {
    ssize_t n = ::read(in_fd, chunk, sizeof chunk);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    buf.append(chunk, static_cast<std::size_t>(n));
    std::size_t start = 0;
    for (std::size_t nl; (nl = buf.find('\n', start)) != std::string::npos; start = nl + 1) {
      std::string line = buf.substr(start, nl - start);
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (line.find_first_not_of(" \t") != std::string::npos) handle_line(line);
    }
    buf.erase(0, start);
  }
  if (buf.find_first_not_of(" \t\r") != std::string::npos) handle_line(buf);
  std::unique_lock lk(run_mu);
  run_cv.wait(lk, [&] { return running == 0; });
}

}  // namespace wand::mcp

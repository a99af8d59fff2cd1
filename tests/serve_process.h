// `wand serve` (the real binary) in its own process on a free port, for tests that talk to it
// over HTTP; stopped when the object goes.
#pragma once
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>

#include "support.h"

namespace wand::test {

class ServeProcess {
 public:
  // `model`: what `wand serve --model` gets ("" for its default, the shipped math model).
  explicit ServeProcess(const std::string& model = "") {
    log_ = ::testing::TempDir() + "wand_serve_" + std::to_string(::getpid()) + ".log";
    pid_ = ::fork();
    if (pid_ == 0) {
      FILE* f = std::freopen(log_.c_str(), "w", stderr);
      (void)f;
      if (model.empty())
        ::execl(WAND_BINARY, WAND_BINARY, "serve", "--port", "0", "--threads", "1", static_cast<char*>(nullptr));
      else
        ::execl(WAND_BINARY, WAND_BINARY, "serve", "--port", "0", "--threads", "1", "--model", model.c_str(),
                static_cast<char*>(nullptr));
      ::_exit(127);
    }
    for (int i = 0; i < 600 && port_ == 0; ++i) {  // up to 60 s on a loaded machine
      std::string text = slurp(log_);
      if (auto at = text.find("http://127.0.0.1:"); at != std::string::npos && text.find("/v1", at) != std::string::npos)
        port_ = std::atoi(text.c_str() + at + 17);
      else std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }
  ~ServeProcess() {
    ::kill(pid_, SIGTERM);
    ::waitpid(pid_, nullptr, 0);
    std::filesystem::remove(log_);
  }
  ServeProcess(const ServeProcess&) = delete;
  ServeProcess& operator=(const ServeProcess&) = delete;
  int port() const { return port_; }

 private:
  pid_t pid_ = -1;
  int port_ = 0;
  std::string log_;
};

}  // namespace wand::test

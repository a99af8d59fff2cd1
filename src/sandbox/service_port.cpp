#include "sandbox/service_port.h"

#include <fmt/core.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <deque>
#include <mutex>
#include <thread>

#include "sandbox/io.h"

namespace wand::sandbox {

// What answering threads share with the port: the queue of framed answers and the socket's
// state. Outlives the port while a worker still holds a Reply.
struct ServicePort::Shared {
  std::mutex mu;
  std::string queued;  // framed answers not yet taken by the polling thread
  bool closed = false;
  int wake = -1;
  std::thread::id poller;  // answers from this thread need no wake-up
  ~Shared() {
    if (wake >= 0) ::close(wake);
  }
};

namespace {
std::string framed(const std::string& body) {
  uint32_t n = static_cast<uint32_t>(body.size());
  std::string f(reinterpret_cast<const char*>(&n), 4);  // little-endian on every host wand runs on
  return f + body;
}
}  // namespace

Result<std::unique_ptr<ServicePort>> ServicePort::open(std::shared_ptr<Service> service) {
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv) != 0)
    return Error{fmt::format("service socketpair: {}", std::strerror(errno))};
  std::unique_ptr<ServicePort> p(new ServicePort());
  p->service_ = std::move(service);
  p->shared_ = std::make_shared<Shared>();
  p->shared_->wake = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  p->shared_->poller = std::this_thread::get_id();
  // The program's end blocks: Python reads and writes it as an ordinary socket.
  ::fcntl(sv[1], F_SETFL, ::fcntl(sv[1], F_GETFL) & ~O_NONBLOCK);
  p->child_ = sv[1];
  p->sock_ = sv[0];
  if (p->shared_->wake < 0) return Error{fmt::format("service eventfd: {}", std::strerror(errno))};
  return p;
}

ServicePort::~ServicePort() {
  close_socket();
  close_fd(child_);
}

void ServicePort::release_child() { close_fd(child_); }

int ServicePort::fd() const { return sock_; }
int ServicePort::wake_fd() const { return shared_->wake; }
// Answers the program has not read yet, past which its requests are not read either: a program
// that writes requests and never reads the answers blocks itself, and the host's memory stays
// bounded.
constexpr std::size_t kMaxBacklog = 4 << 20;

short ServicePort::events() const {
  bool backlog = out_.size() - out_off_ >= kMaxBacklog;
  return static_cast<short>((backlog ? 0 : POLLIN) | (out_off_ < out_.size() ? POLLOUT : 0));
}

void ServicePort::close_socket() {
  {
    std::lock_guard lk(shared_->mu);
    shared_->closed = true;
    shared_->queued.clear();
  }
  close_fd(sock_);
}

void ServicePort::on_ready(short revents) {
  shared_->poller = std::this_thread::get_id();
  if (revents & (POLLIN | POLLHUP | POLLERR)) read_frames();
  flush();
}

void ServicePort::on_wake() {
  uint64_t n;
  while (::read(shared_->wake, &n, sizeof n) > 0) {
  }
  flush();
}

void ServicePort::read_frames() {
  char buf[65536];
  for (;;) {
    if (sock_ < 0 || out_.size() - out_off_ >= kMaxBacklog) return;
    ssize_t n = ::recv(sock_, buf, sizeof buf, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) break;
    if (n <= 0) {  // the program closed its end (or the run ended)
      close_socket();
      return;
    }
    in_.append(buf, n);
    // Every whole frame now in, in order.
    std::size_t off = 0;
    while (in_.size() - off >= 4) {
      uint32_t len;
      std::memcpy(&len, in_.data() + off, 4);
      if (len > service_->max_frame()) {
        Service::Reply direct = [this](std::string body) { out_ += framed(body); };
        service_->on_error(fmt::format("a request frame of {} bytes is over the cap of {} bytes", len,
                                       service_->max_frame()),
                           direct);
        in_.clear();
        // Say why, then close: the framing is lost, nothing after it can be trusted.
        ::send(sock_, out_.data() + out_off_, out_.size() - out_off_, MSG_NOSIGNAL | MSG_DONTWAIT);
        out_.clear(), out_off_ = 0;
        close_socket();
        return;
      }
      if (in_.size() - off - 4 < len) break;
      std::string body = in_.substr(off + 4, len);
      off += 4 + len;
      std::weak_ptr<Shared> weak = shared_;
      service_->on_frame(std::move(body), [weak](std::string answer) {
        auto s = weak.lock();
        if (!s) return;
        std::lock_guard lk(s->mu);
        if (s->closed) return;
        s->queued += framed(answer);
        if (std::this_thread::get_id() != s->poller) {
          uint64_t one = 1;
          (void)!::write(s->wake, &one, sizeof one);
        }
      });
    }
    in_.erase(0, off);
    flush();
  }
}

void ServicePort::flush() {
  {
    std::lock_guard lk(shared_->mu);
    if (!shared_->queued.empty()) {
      out_ += shared_->queued;
      shared_->queued.clear();
    }
  }
  while (sock_ >= 0 && out_off_ < out_.size()) {
    ssize_t w = ::send(sock_, out_.data() + out_off_, out_.size() - out_off_, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0 && errno == EAGAIN) break;
    if (w <= 0) {
      close_socket();
      break;
    }
    out_off_ += w;
  }
  if (out_off_ == out_.size()) out_.clear(), out_off_ = 0;
}

void ServicePort::finish(ExecResult& r) {
  flush();
  service_->finish(r);
}

}  // namespace wand::sandbox

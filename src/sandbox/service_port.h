// The host's end of a Service socket (sandbox.h): reads the program's frames, hands them to the
// service, and writes the answers, all from the thread that polls the run. Answers given from
// other threads are queued and announced on an eventfd the run's poll loop also watches.
// Internal to the sandbox module.
#pragma once
#include <memory>
#include <string>

#include "sandbox/sandbox.h"

namespace wand::sandbox {

class ServicePort {
 public:
  // Makes the socket pair; the program's end is child_fd() (handed to the run, then closed
  // here with release_child()).
  static Result<std::unique_ptr<ServicePort>> open(std::shared_ptr<Service> service);
  ~ServicePort();
  int child_fd() const { return child_; }
  void release_child();

  // The descriptors and events to poll: the socket (-1 once closed) and the wake-up eventfd.
  int fd() const;
  short events() const;
  int wake_fd() const;
  // After poll: revents of fd() and of wake_fd().
  void on_ready(short revents);
  void on_wake();
  // The run (or the block) ended: the service adds its record to `r`.
  void finish(ExecResult& r);

 private:
  struct Shared;
  ServicePort() = default;
  void read_frames();
  void flush();
  void close_socket();
  std::shared_ptr<Service> service_;
  std::shared_ptr<Shared> shared_;
  int sock_ = -1;   // the host's end
  int child_ = -1;  // the program's end, until handed over
  std::string in_, out_;
  std::size_t out_off_ = 0;
};

}  // namespace wand::sandbox

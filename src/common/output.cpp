#include "common/output.h"

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <optional>

#include <fmt/core.h>

#include <filesystem>

namespace wand {

VoidResult check_writable(const std::string& path) {
  if (path.empty()) return Error{"an empty path"};
  // O_CREAT|O_EXCL first tells a new file (removed again) from an existing one (left as it is).
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
  bool created = fd >= 0;
  if (!created && errno == EEXIST) fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return Error{fmt::format("{}: cannot write: {}", path, std::strerror(errno))};
  ::close(fd);
  if (created) ::unlink(path.c_str());
  return ok_status();
}

Result<std::string> rename_target(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::path target = path;
  if (fs::is_symlink(fs::symlink_status(target, ec))) {
    target = fs::weakly_canonical(target, ec);
    if (ec) return Error{fmt::format("{}: cannot follow the link: {}", path, ec.message())};
  }
  auto st = fs::status(target, ec);
  if (fs::exists(st) && !fs::is_regular_file(st))
    return Error{fmt::format("{}: not a regular file ({}); give the path of a file to write",
                             path, fs::is_directory(st) ? "a folder" : "a device, pipe or socket")};
  return target.string();
}

namespace {
// The first failure is kept: ferror() stays set after it, but errno (EPIPE or ENOSPC) does not.
std::mutex stdout_mu;
std::optional<WriteError> stdout_failed;

VoidResult stdout_error(int err, WriteError* failure) {
  std::lock_guard lk(stdout_mu);
  // A failed write seen later (std::cout's bad bit, stdio's error flag) has lost its errno: a
  // pipe whose reader has gone still says so as POLLERR on our end.
  if (err == 0) {
    struct pollfd p = {STDOUT_FILENO, 0, 0};
    if (::poll(&p, 1, 0) > 0 && (p.revents & POLLERR)) err = EPIPE;
  }
  if (!stdout_failed) stdout_failed = WriteError{fmt::format("standard output: {}", std::strerror(err ? err : EIO)), err == EPIPE};
  if (failure) *failure = *stdout_failed;
  return Error{stdout_failed->message};
}
}  // namespace

VoidResult flush_stdout(WriteError* failure) {
  errno = 0;
  if (std::fflush(stdout) != 0 || std::ferror(stdout)) return stdout_error(errno, failure);
  return ok_status();
}

VoidResult write_stdout(std::string_view text, WriteError* failure) {
  errno = 0;
  if (std::fwrite(text.data(), 1, text.size(), stdout) != text.size()) return stdout_error(errno, failure);
  return flush_stdout(failure);
}

VoidResult flush_file(std::ofstream& out, const std::string& path) {
  // A write larger than the stream's buffer goes straight to the file and may already have
  // failed: its reason is in errno now, and the flush below (a no-op on a failed stream) would
  // otherwise leave only a generic EIO.
  int earlier = out ? 0 : errno;
  errno = 0;
  out.flush();
  if (!out)
    return Error{fmt::format("{}: write failed: {}", path, std::strerror(errno ? errno : earlier ? earlier : EIO))};
  return ok_status();
}

}  // namespace wand

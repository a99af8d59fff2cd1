// fs.read, fs.list, fs.write: files inside one declared workspace folder, nothing outside it.
#include <dirent.h>
#include <fcntl.h>
#include <fmt/core.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "tools/builtin_parts.h"

namespace wand::tools {
namespace {

struct Workspace {
  int dir = -1;
  std::string path;
  std::size_t max_bytes = 0;
  bool writable = false;
  ~Workspace() {
    if (dir >= 0) ::close(dir);
  }
};

// Checks the words of a path before the kernel resolves it, so the common mistakes get plain
// messages; openat2 below is what actually keeps every open inside the folder.
VoidResult check_path(const std::string& p) {
  if (p.empty()) return Error{"parameter 'path': empty"};
  if (p[0] == '/') return Error{fmt::format("path '{}' is absolute; give a path relative to the workspace", p)};
  if (p.find('\0') != std::string::npos) return Error{"parameter 'path': holds a NUL byte"};
  std::size_t start = 0;
  while (start <= p.size()) {
    std::size_t end = p.find('/', start);
    if (end == std::string::npos) end = p.size();
    if (p.compare(start, end - start, "..") == 0)
      return Error{fmt::format("path '{}' leaves the workspace ('..' is refused)", p)};
    start = end + 1;
  }
  return ok_status();
}

// openat2 with RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS: no component may be a symlink or lead out.
Result<int> open_in(const Workspace& ws, const std::string& p, int flags, mode_t mode = 0) {
  if (auto ok = check_path(p); !ok) return ok.error();
  struct open_how how {};
  how.flags = static_cast<uint64_t>(flags | O_CLOEXEC | O_NOFOLLOW);
  how.mode = (flags & O_CREAT) ? mode : 0;
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
  int fd = static_cast<int>(::syscall(SYS_openat2, ws.dir, p.c_str(), &how, sizeof how));
  if (fd >= 0) return fd;
  switch (errno) {
    case ELOOP: return Error{fmt::format("path '{}' goes through a symlink; symlinks are refused in the workspace", p)};
    case EXDEV: return Error{fmt::format("path '{}' leaves the workspace", p)};
    case ENOENT: return Error{fmt::format("no such file or folder '{}' in the workspace", p)};
    case ENXIO: return Error{fmt::format("path '{}' is not a regular file", p)};  // a FIFO without a reader, a device
    case ENOSYS: return Error{"this kernel lacks openat2 (Linux 5.6+), which fs needs to keep paths inside the workspace"};
    default: return Error{fmt::format("path '{}': {}", p, std::strerror(errno))};
  }
}

Json path_param(const char* what) { return {{"type", "string"}, {"description", what}, {"minLength", 1}}; }

}  // namespace

Result<std::vector<Tool>> fs_tools(const BuiltinOptions& opt) {
  if (opt.workspace.empty()) return Error{"tools 'fs.*' need a workspace folder: give --workspace DIR"};
  auto ws = std::make_shared<Workspace>();
  ws->dir = ::open(opt.workspace.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (ws->dir < 0) return Error{fmt::format("--workspace {}: {}", opt.workspace, std::strerror(errno))};
  ws->path = opt.workspace;
  ws->max_bytes = opt.fs_max_bytes;
  ws->writable = opt.writable;
  std::vector<Tool> out;

  Tool read;
  read.name = "fs.read";
  read.description = fmt::format("Reads a text file of the workspace (at most {} bytes) and returns its text.", opt.fs_max_bytes);
  read.parameters = {{"type", "object"},
                     {"properties", {{"path", path_param("relative to the workspace")}}},
                     {"required", {"path"}},
                     {"additionalProperties", false},
                     {"examples", {{{"path", "notes.txt"}}}}};
  read.result = {{"type", "string"}};
  read.timeout_s = 10;
  read.source = "builtin";
  read.handler = [ws](const Json& a, const CallContext&) -> Result<Json> {
    std::string p = a["path"].get<std::string>();
    auto fd = open_in(*ws, p, O_RDONLY | O_NONBLOCK);
    if (!fd) return fd.error();
    struct stat st;
    std::string data;
    bool regular = ::fstat(*fd, &st) == 0 && S_ISREG(st.st_mode);
    if (regular && static_cast<std::size_t>(st.st_size) <= ws->max_bytes) {
      data.resize(st.st_size);
      ssize_t n = ::read(*fd, data.data(), data.size());
      data.resize(std::max<ssize_t>(n, 0));
    }
    ::close(*fd);
    if (!regular) return Error{fmt::format("path '{}' is not a regular file", p)};
    if (static_cast<std::size_t>(st.st_size) > ws->max_bytes)
      return Error{fmt::format("file '{}' is {} bytes, over the cap of {} bytes", p, st.st_size, ws->max_bytes)};
    return Json(std::move(data));
  };
  out.push_back(std::move(read));

  Tool list;
  list.name = "fs.list";
  list.description = "Lists a folder of the workspace: a list of dicts with name, type (file, dir, symlink, other) and size.";
  list.parameters = {{"type", "object"},
                     {"properties", {{"path", {{"type", "string"}, {"description", "relative to the workspace"}, {"default", "."}}}}},
                     {"additionalProperties", false}};
  list.result = {{"type", "array"}, {"items", {{"type", "object"}}}};
  list.timeout_s = 10;
  list.source = "builtin";
  list.handler = [ws](const Json& a, const CallContext&) -> Result<Json> {
    std::string p = a.value("path", ".");
    auto fd = open_in(*ws, p, O_RDONLY | O_DIRECTORY);
    if (!fd) return fd.error();
    DIR* d = ::fdopendir(*fd);
    if (!d) {
      ::close(*fd);
      return Error{fmt::format("path '{}': {}", p, std::strerror(errno))};
    }
    std::vector<Json> entries;
    while (struct dirent* e = ::readdir(d)) {
      std::string name = e->d_name;
      if (name == "." || name == "..") continue;
      struct stat st;
      std::string type = "other";
      std::int64_t size = 0;
      if (::fstatat(::dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
        type = S_ISREG(st.st_mode) ? "file" : S_ISDIR(st.st_mode) ? "dir" : S_ISLNK(st.st_mode) ? "symlink" : "other";
        size = st.st_size;
      }
      entries.push_back({{"name", name}, {"type", type}, {"size", size}});
    }
    ::closedir(d);
    std::sort(entries.begin(), entries.end(), [](const Json& x, const Json& y) { return x["name"] < y["name"]; });
    return Json(entries);
  };
  out.push_back(std::move(list));

  Tool write;
  write.name = "fs.write";
  write.description = fmt::format(
      "Writes text to a file of the workspace (created or replaced; its folder must exist; at most {} bytes). "
      "Returns the number of bytes written.{}",
      opt.fs_max_bytes, opt.writable ? "" : " The workspace is read-only in this run: every write is refused.");
  write.parameters = {{"type", "object"},
                      {"properties", {{"path", path_param("relative to the workspace")}, {"content", {{"type", "string"}}}}},
                      {"required", {"path", "content"}},
                      {"additionalProperties", false}};
  write.result = {{"type", "integer"}};
  write.timeout_s = 10;
  write.source = "builtin";
  write.handler = [ws](const Json& a, const CallContext&) -> Result<Json> {
    std::string p = a["path"].get<std::string>();
    const std::string& content = a["content"].get_ref<const std::string&>();
    if (!ws->writable) return Error{"the workspace is read-only (start wand with --writable to allow fs.write)"};
    if (content.size() > ws->max_bytes)
      return Error{fmt::format("parameter 'content': {} bytes, over the cap of {} bytes", content.size(), ws->max_bytes)};
    // Non-blocking and not truncating until it is known to be a regular file: opening a FIFO
    // for writing would wait for a reader, and a device is no file to replace.
    auto fd = open_in(*ws, p, O_WRONLY | O_CREAT | O_NONBLOCK, 0644);
    if (!fd) return fd.error();
    struct stat st {};
    if (::fstat(*fd, &st) != 0 || !S_ISREG(st.st_mode)) {
      ::close(*fd);
      return Error{fmt::format("path '{}' is not a regular file", p)};
    }
    if (::ftruncate(*fd, 0) != 0) {
      int e = errno;
      ::close(*fd);
      return Error{fmt::format("path '{}': {}", p, std::strerror(e))};
    }
    ssize_t n = ::write(*fd, content.data(), content.size());
    int e = errno;
    ::close(*fd);
    if (n != static_cast<ssize_t>(content.size())) return Error{fmt::format("path '{}': {}", p, std::strerror(e))};
    return Json(n);
  };
  out.push_back(std::move(write));
  return out;
}

}  // namespace wand::tools

// Writing results: every output path is checked before the work starts, and every write is
// checked where it happens, so a full disk or a closed pipe is noticed instead of ignored.
#pragma once
#include <fstream>
#include <string>
#include <string_view>

#include "common/status.h"

namespace wand {

// A failed write. `closed_pipe`: the reader went away (EPIPE), which callers end quietly on.
struct WriteError {
  std::string message;  // names the output and the reason: "standard output: No space left on device"
  bool closed_pipe = false;
};

// Checks, before any work, that `path` can be written: opens it for writing without truncating
// it, and removes it again when it did not exist. Errors name the path and the reason.
VoidResult check_writable(const std::string& path);

// The path a write to a temporary file and a rename must replace so that it writes what `path`
// names: a symbolic link's target (written through, as a plain write would), else `path`. An
// existing device, folder, pipe or socket is an error naming `path`: a rename would replace the
// node itself (/dev/null with a regular file) instead of writing to it.
Result<std::string> rename_target(const std::string& path);

// Writes `text` to standard output and flushes it (a batch streams line by line; a failure
// shows at once). Returns the error of this or an earlier write.
VoidResult write_stdout(std::string_view text, WriteError* failure = nullptr);

// Flushes standard output and reports a failed write, this or an earlier one (ferror).
VoidResult flush_stdout(WriteError* failure = nullptr);

// Flushes a file being written and reports a failed write, naming `path`.
VoidResult flush_file(std::ofstream& out, const std::string& path);

}  // namespace wand

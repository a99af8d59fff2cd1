// wand's built-in tools and declared command-line tools, and the one place that turns what a
// user names (`--tools sql,fs,./tools.json`) into a Registry: the CLI, the server and the MCP
// face share it.
//
// Built-ins (each off until granted, each confined to what the user names):
//   sql(query, params)   one SQL statement over the SQLite file `db`; read-only unless
//                        `writable` (SQLITE_OPEN_READONLY plus an authorizer that refuses
//                        writes, ATTACH and load_extension), a statement timeout, a row cap.
//   fs.read / fs.list / fs.write   files inside `workspace` only: relative paths resolved with
//                        openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS), so "..", absolute
//                        paths and symlinks are refused; fs.write only with `writable`.
//   search(query, k)     full text over the files under `docs` (SQLite FTS5, BM25 ranking); the
//                        index is built on the first call and refreshed by mtime and size.
//   http_get(url)        http/https GET of hosts listed in `allow_hosts` only; redirects are
//                        followed only to allowed hosts, and a host name that resolves to a
//                        loopback, private or link-local address is refused (a listed IP
//                        literal is taken at its word); no proxies; a body cap.
//   llm(prompt, max_tokens)   the model `llm` itself, with a per-run budget of calls and tokens.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "tools/tools.h"

namespace wand::llm {
class Backend;
}

namespace wand::tools {

struct BuiltinOptions {
  std::string db;                       // sql: the SQLite file
  bool writable = false;                // sql may write, fs.write may write
  std::size_t sql_max_rows = 1000;      // more rows is an error naming the cap
  double sql_timeout_s = 5;             // per statement (and never past the call's deadline)
  std::string workspace;                // fs.*: the folder
  std::size_t fs_max_bytes = 1 << 20;   // largest file fs.read returns / fs.write writes
  std::string docs;                     // search: the folder of documents
  std::vector<std::string> allow_hosts; // http_get: "host" or "host:port"; empty: http_get is off
  std::size_t http_max_bytes = 1 << 20; // body cap; a longer body is cut and marked truncated
  llm::Backend* llm = nullptr;          // llm: the model (not owned)
  // llm without `llm`: opens the model when the tool is granted (not before: a model is heavy).
  // Neither: llm is unavailable.
  std::function<Result<llm::Backend*>()> open_llm;
  int llm_max_calls = 20;               // per run
  int llm_max_tokens = 8192;            // generated tokens per run
};

// The built-in tools' names: sql, fs (fs.read, fs.list, fs.write), search, http_get, llm.
const std::vector<std::string>& builtin_names();

// The built-ins named (a namespace name "fs" gives its tools; "fs.read" one of them). Errors:
// an unknown name (listing the known ones), a built-in whose resource is missing or unusable
// ("tool 'sql' needs a database: give --db FILE"; "--workspace /x: No such file or directory").
Result<Registry> builtin_tools(const std::vector<std::string>& names, const BuiltinOptions& opt);

// Declared command-line tools from a JSON file:
//   {"tools": [{"name": "word_count",
//               "description": "Counts the words of a file.",
//               "command": ["wc", "-w", "--", "{path}"],   // argv template, run without a shell
//               "parameters": {"type": "object", "properties": {"path": {"type": "string"}},
//                              "required": ["path"]},
//               "timeout": 10, "cwd": "/data", "output": "text" | "json", "max_output": 65536}]}
// "{name}" in an argv element is replaced by the argument's text (an element that is exactly
// "{name}" and an array argument gives one element per item; an absent optional argument drops
// the elements that name it). A whole-element value starting with '-' is refused (it would be
// read as an option), unless the parameter's schema says "x-allow-dash": true. The command runs
// on the host with a minimal environment, in `cwd` (default: the file's folder), killed at its
// timeout; a non-zero exit is the tool's error (with the end of stderr); stdout over max_output
// is an error. Errors name the file, the tool and the field.
Result<Registry> load_command_tools(const std::string& path);

// What `--tools` names, comma-separated or repeated: built-in names, and paths of command-tool
// files (anything with a '/' or ending in ".json"). The union; a duplicate name is an error.
Result<Registry> load_tools(const std::vector<std::string>& specs, const BuiltinOptions& opt);

// http_get's fetch, shared by the tool and tests: a GET of `url` under `opt`'s allow list, with
// `timeout_s`. Result: {"status", "url" (the final one), "content_type", "body", "truncated"}.
// In the `wand` binary this loads libcurl from a module on first use (common/module.h).
Result<Json> http_get(const std::string& url, const BuiltinOptions& opt, double timeout_s);

}  // namespace wand::tools

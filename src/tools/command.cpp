// Declared command-line tools: a JSON file names each command's argv template, parameters,
// timeout and folder; a call runs the command without a shell and returns its output.
#include <fcntl.h>
#include <fmt/core.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <optional>
#include <set>

#include "common/text.h"
#include "tools/builtins.h"

extern char** environ;

namespace wand::tools {
namespace {

struct CommandSpec {
  std::string name;
  std::vector<std::string> argv;  // the template
  std::string cwd;
  std::map<std::string, std::string> env;
  bool json_output = false;
  std::size_t max_output = 1 << 20;
  Json parameters;
};

// The text of an argument as it goes into argv: strings as they are, other JSON as JSON.
std::string arg_text(const Json& v) { return v.is_string() ? v.get<std::string>() : v.dump(); }

// The "{...}" groups of an argv element, left to right: each '{' with the first '}' after it
// ({open, close} offsets); the next group starts after that '}'.
std::vector<std::pair<std::size_t, std::size_t>> brace_groups(std::string_view e) {
  std::vector<std::pair<std::size_t, std::size_t>> groups;
  for (std::size_t open = e.find('{'); open != std::string_view::npos; open = e.find('{', groups.back().second + 1)) {
    const std::size_t close = e.find('}', open);
    if (close == std::string_view::npos) break;
    groups.emplace_back(open, close);
  }
  return groups;
}

// The argv of one call. A placeholder is "{name}" with name a parameter.
Result<std::vector<std::string>> expand(const CommandSpec& c, const Json& args) {
  const Json props = c.parameters.value("properties", Json::object());
  std::vector<std::string> out;
  for (std::size_t i = 0; i < c.argv.size(); ++i) {
    const std::string& e = c.argv[i];
    // The element's placeholders, and whether the element is exactly one of them.
    std::string text;
    bool drop = false;
    std::size_t pos = 0;
    std::optional<std::string> whole;
    if (e.size() > 2 && e.front() == '{' && e.back() == '}' && props.contains(e.substr(1, e.size() - 2)))
      whole = e.substr(1, e.size() - 2);
    if (whole) {
      if (!args.contains(*whole)) continue;  // an absent optional argument drops its element
      const Json& v = args[*whole];
      bool dash_ok = props[*whole].is_object() && props[*whole].value("x-allow-dash", false);
      std::vector<std::string> values;
      if (v.is_array())
        for (const auto& x : v) values.push_back(arg_text(x));
      else
        values.push_back(arg_text(v));
      for (auto& s : values) {
        if (i > 0 && !dash_ok && !s.empty() && s[0] == '-')
          return Error{fmt::format("parameter '{}': '{}' starts with '-' and would be read as an option", *whole, s)};
        out.push_back(std::move(s));
      }
      continue;
    }
    for (auto [open, close] : brace_groups(e)) {
      std::string key = e.substr(open + 1, close - open - 1);
      text += e.substr(pos, open - pos);
      if (props.contains(key)) {
        if (!args.contains(key)) drop = true;
        else text += arg_text(args[key]);
      } else {
        text += e.substr(open, close - open + 1);  // not a parameter: kept as written
      }
      pos = close + 1;
    }
    text += e.substr(pos);
    if (!drop) out.push_back(std::move(text));
  }
  return out;
}

// Runs argv in `cwd` with `env`, killed at the deadline; stdout and stderr kept up to `cap`.
struct Outcome {
  int status = -1;
  std::string out, err;
  bool out_over = false, timed_out = false;
};

Result<Outcome> run_command(const std::vector<std::string>& argv, const std::string& cwd,
                            const std::map<std::string, std::string>& env, std::size_t cap, const CallContext& ctx) {
  int out[2], err[2];
  if (::pipe2(out, O_CLOEXEC) != 0) return Error{fmt::format("pipe: {}", std::strerror(errno))};
  if (::pipe2(err, O_CLOEXEC) != 0) {
    ::close(out[0]), ::close(out[1]);
    return Error{fmt::format("pipe: {}", std::strerror(errno))};
  }
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&fa, out[1], 1);
  posix_spawn_file_actions_adddup2(&fa, err[1], 2);
  if (!cwd.empty()) posix_spawn_file_actions_addchdir_np(&fa, cwd.c_str());
  posix_spawnattr_t at;
  posix_spawnattr_init(&at);
  // Its own process group, so a timeout kills what it started too.
  posix_spawnattr_setflags(&at, POSIX_SPAWN_SETPGROUP);
  posix_spawnattr_setpgroup(&at, 0);
  std::vector<char*> cargv;
  for (const auto& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
  cargv.push_back(nullptr);
  std::vector<std::string> envs;
  for (const auto& [k, v] : env) envs.push_back(k + "=" + v);
  std::vector<char*> cenv;
  for (auto& e : envs) cenv.push_back(e.data());
  cenv.push_back(nullptr);
  pid_t pid = -1;
  int rc = ::posix_spawnp(&pid, cargv[0], &fa, &at, cargv.data(), cenv.data());
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&at);
  ::close(out[1]), ::close(err[1]);
  if (rc != 0) {
    ::close(out[0]), ::close(err[0]);
    return Error{fmt::format("cannot run '{}': {}", argv[0], std::strerror(rc))};
  }
  Outcome o;
  int fds[2] = {out[0], err[0]};
  std::string* bufs[2] = {&o.out, &o.err};
  while (fds[0] >= 0 || fds[1] >= 0) {
    struct pollfd p[2] = {{fds[0], POLLIN, 0}, {fds[1], POLLIN, 0}};
    int ms = static_cast<int>(ctx.remaining_s() * 1000) + 1;
    int n = ::poll(p, 2, ms);
    if (n < 0 && errno == EINTR) continue;
    if (n == 0 || ctx.remaining_s() <= 0) {
      o.timed_out = true;
      break;
    }
    for (int i = 0; i < 2; ++i) {
      if (fds[i] < 0 || !p[i].revents) continue;
      char buf[65536];
      ssize_t r = ::read(fds[i], buf, sizeof buf);
      if (r <= 0) {
        ::close(fds[i]);
        fds[i] = -1;
        continue;
      }
      std::size_t room = cap - std::min(cap, bufs[i]->size());
      bufs[i]->append(buf, std::min<std::size_t>(r, room));
      if (static_cast<std::size_t>(r) > room && i == 0) o.out_over = true;
    }
    if (o.out_over) break;
  }
  if (o.timed_out || o.out_over) ::kill(-pid, SIGKILL);
  for (int fd : fds)
    if (fd >= 0) ::close(fd);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!o.timed_out && !o.out_over) ::kill(-pid, SIGKILL);  // what it left running in the background
  o.status = status;
  return o;
}

Result<CommandSpec> parse_spec(const Json& j, const std::filesystem::path& folder, const std::string& where) {
  auto bad = [&](const std::string& why) { return Error{fmt::format("{}: {}", where, why)}; };
  if (!j.is_object()) return bad("must be an object");
  CommandSpec c;
  static const std::set<std::string> known = {"name", "description", "command", "parameters", "result", "timeout",
                                              "cwd", "env", "output", "max_output"};
  for (const auto& [k, _] : j.items())
    if (!known.count(k)) return bad(fmt::format("unknown field '{}'", k));
  if (!j.contains("name") || !j["name"].is_string()) return bad("field 'name' must be a string");
  c.name = j["name"].get<std::string>();
  if (hides_python_name(c.name))
    return bad(fmt::format("tool name '{}' would hide Python's '{}' in every program given it; name it otherwise", c.name,
                           c.name.substr(0, c.name.find('.'))));
  if (!j.contains("command") || !j["command"].is_array() || j["command"].empty())
    return bad("field 'command' must be a non-empty array of strings (argv; no shell)");
  for (const auto& a : j["command"]) {
    if (!a.is_string()) return bad("field 'command' must be a non-empty array of strings (argv; no shell)");
    c.argv.push_back(a.get<std::string>());
  }
  c.parameters = j.value("parameters", Json{{"type", "object"}, {"properties", Json::object()}});
  // A "{name}" that names no parameter would reach the command as written (a typo'd placeholder
  // ran `echo {typo}`): refused. Braces around anything but a name ("{print $1}") stay literal.
  Json props = c.parameters.is_object() ? c.parameters.value("properties", Json::object()) : Json::object();
  if (!props.is_object()) props = Json::object();
  std::string declared;
  for (auto& [k, _] : props.items()) declared += (declared.empty() ? "" : ", ") + k;
  for (const std::string& e : c.argv)
    for (auto [open, close] : brace_groups(e)) {  // read as expand() reads them
      const std::string key = e.substr(open + 1, close - open - 1);
      if (is_python_identifier(key) && !props.contains(key))
        return bad(fmt::format("field 'command': placeholder '{{{}}}' names no parameter (declared: {})", key,
                               declared.empty() ? "none" : declared));
    }
  c.cwd = j.contains("cwd") ? j["cwd"].is_string() ? (folder / j["cwd"].get<std::string>()).string() : "" : folder.string();
  if (j.contains("cwd") && !j["cwd"].is_string()) return bad("field 'cwd' must be a string");
  std::error_code ec;
  if (!std::filesystem::is_directory(c.cwd, ec)) return bad(fmt::format("field 'cwd': '{}' is not a folder", c.cwd));
  if (j.contains("env")) {
    if (!j["env"].is_object()) return bad("field 'env' must be an object of strings");
    for (const auto& [k, v] : j["env"].items()) {
      if (!v.is_string()) return bad("field 'env' must be an object of strings");
      c.env[k] = v.get<std::string>();
    }
  }
  std::string output = j.value("output", "text");
  if (output != "text" && output != "json") return bad("field 'output' must be \"text\" or \"json\"");
  c.json_output = output == "json";
  if (j.contains("max_output")) {
    if (!j["max_output"].is_number_unsigned() || j["max_output"].get<std::size_t>() == 0 ||
        j["max_output"].get<std::size_t>() > (1u << 30))
      return bad("field 'max_output' must be a whole number of bytes from 1 to 1073741824");
    c.max_output = j["max_output"].get<std::size_t>();
  }
  return c;
}

}  // namespace

Result<Registry> load_command_tools(const std::string& path) {
  auto text = read_file(path);
  if (!text) return text.error();
  auto j = parse_json(*text, path);
  if (!j) return j.error();
  if (!j->is_object() || !(*j).contains("tools") || !(*j)["tools"].is_array())
    return Error{fmt::format("{}: expected {{\"tools\": [...]}}", path)};
  auto folder = std::filesystem::absolute(path).parent_path();
  Registry reg;
  for (std::size_t i = 0; i < (*j)["tools"].size(); ++i) {
    const Json& t = (*j)["tools"][i];
    std::string where = fmt::format("{}: tools[{}]{}", path, i,
                                    t.is_object() && t.contains("name") && t["name"].is_string()
                                        ? " ('" + t["name"].get<std::string>() + "')"
                                        : "");
    auto spec = parse_spec(t, folder, where);
    if (!spec) return spec.error();
    double timeout = 30;
    if (t.contains("timeout")) {
      if (!t["timeout"].is_number() || !(t["timeout"].get<double>() > 0) || t["timeout"].get<double>() > 86400)
        return Error{fmt::format("{}: field 'timeout' must be a positive number of seconds up to 86400", where)};
      timeout = t["timeout"].get<double>();
    }
    auto c = std::make_shared<CommandSpec>(std::move(spec.value()));
    Tool tool;
    tool.name = c->name;
    tool.description = t.value("description", "");
    tool.parameters = c->parameters;
    tool.result = t.value("result", c->json_output ? Json(nullptr) : Json{{"type", "string"}});
    tool.timeout_s = timeout;
    tool.source = "command " + path;
    tool.handler = [c](const Json& args, const CallContext& ctx) -> Result<Json> {
      auto argv = expand(*c, args);
      if (!argv) return argv.error();
      std::map<std::string, std::string> env = {{"LANG", "C.UTF-8"}, {"HOME", c->cwd}};
      if (const char* p = std::getenv("PATH")) env["PATH"] = p;
      for (const auto& [k, v] : c->env) env[k] = v;
      auto o = run_command(*argv, c->cwd, env, c->max_output, ctx);
      if (!o) return o.error();
      if (o->timed_out) return Error{fmt::format("timed out after {:g} s", ctx.timeout_s)};
      if (o->out_over) return Error{fmt::format("the command's output is over the cap of {} bytes", c->max_output)};
      if (!WIFEXITED(o->status) || WEXITSTATUS(o->status) != 0) {
        std::string end = o->err.size() > 2000 ? o->err.substr(o->err.size() - 2000) : o->err;
        while (!end.empty() && (end.back() == '\n' || end.back() == ' ')) end.pop_back();
        std::string how = WIFEXITED(o->status) ? fmt::format("exited with status {}", WEXITSTATUS(o->status))
                                               : fmt::format("was killed by signal {}", WTERMSIG(o->status));
        return Error{fmt::format("the command {}{}", how, end.empty() ? "" : ": " + end)};
      }
      if (!c->json_output) return Json(std::move(o->out));
      auto parsed = parse_json(o->out, "the command's output");
      if (!parsed) return parsed.error();
      return parsed.value();
    };
    if (auto ok = reg.add(std::move(tool)); !ok) return Error{fmt::format("{}: {}", where, ok.error().message)};
  }
  return reg;
}

}  // namespace wand::tools

// Pieces of the sandbox that need no cell: the traceback parser, the request schema,
// output capture, the language table.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "sandbox/output.h"
#include "sandbox/sandbox.h"
#include "sandbox/wire.h"

namespace wand::sandbox {
namespace {

TEST(Traceback, LastExceptionWithLineInMain) {
  auto e = parse_python_traceback(
      "Traceback (most recent call last):\n"
      "  File \"main.py\", line 7, in <module>\n    f()\n"
      "  File \"main.py\", line 3, in f\n    return d['x']\n"
      "KeyError: 'x'\n");
  ASSERT_TRUE(e);
  EXPECT_EQ(e->type, "KeyError");
  EXPECT_EQ(e->message, "'x'");
  EXPECT_EQ(e->line, 3);
}

TEST(Traceback, SyntaxErrorWithoutTracebackHeader) {
  auto e = parse_python_traceback("  File \"main.py\", line 2\n    def f(\n         ^\nSyntaxError: '(' was never closed\n");
  ASSERT_TRUE(e);
  EXPECT_EQ(e->type, "SyntaxError");
  EXPECT_EQ(e->line, 2);
}

TEST(Traceback, ChainedExceptionsReportTheLast) {
  auto e = parse_python_traceback(
      "Traceback (most recent call last):\n  File \"main.py\", line 2, in <module>\nValueError: a\n\n"
      "During handling of the above exception, another exception occurred:\n\n"
      "Traceback (most recent call last):\n  File \"main.py\", line 4, in <module>\n"
      "numpy.linalg.LinAlgError: Singular matrix\n");
  ASSERT_TRUE(e);
  EXPECT_EQ(e->type, "numpy.linalg.LinAlgError");
  EXPECT_EQ(e->line, 4);
}

TEST(Traceback, NoTracebackNoException) {
  EXPECT_FALSE(parse_python_traceback("just some output\nError: not a traceback\n"));
}

TEST(Request, ParsesTheSchema) {
  auto r = request_from_json(Json::parse(R"({"code": "x", "language": "c++", "stdin": "1", "timeout": 2.5,
    "memory_mb": 64, "limit_by": "cpu", "files": {"a.txt": "hi", "b.bin": {"base64": "AAE="}},
    "collect": ["out"], "env": {"K": "V"}, "args": ["-v"], "id": 9})"));
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->language, "cpp");
  EXPECT_DOUBLE_EQ(r->limits.timeout_s, 2.5);
  EXPECT_EQ(r->limits.memory_mb, 64u);
  EXPECT_EQ(r->limits.limit_by, LimitBy::cpu);
  EXPECT_EQ(r->files["b.bin"], std::string("\0\1", 2));
  EXPECT_EQ(r->env["K"], "V");
}

TEST(Request, BadFieldsAreNamed) {
  struct Case {
    const char* json;
    const char* field;
  } cases[] = {
      {R"({"language": "python"})", "code"},
      {R"({"code": 1})", "code"},
      {R"({"code": "", "language": "cobol"})", "language"},
      {R"({"code": "", "timeout": -1})", "timeout"},
      {R"({"code": "", "memory_mb": 1.5})", "memory_mb"},
      {R"({"code": "", "files": {"../x": "y"}})", "files"},
      {R"({"code": "", "files": {"/etc/x": "y"}})", "files"},
      {R"({"code": "", "timout": 3})", "timout"},
      {R"({"code": "", "limit_by": "moon"})", "limit_by"},
  };
  for (const auto& c : cases) {
    auto r = request_from_json(Json::parse(c.json));
    ASSERT_FALSE(r.ok()) << c.json;
    EXPECT_NE(r.error().message.find(c.field), std::string::npos) << r.error().message;
  }
  EXPECT_FALSE(request_from_json(Json::array()).ok());
}

// NaN, infinities, negatives, zero and absurd sizes: each refused, the field named, and the
// value printed short (1e+308, never its 309 digits).
TEST(Request, BadLimitValuesAreRefusedNamingTheField) {
  const double inf = std::numeric_limits<double>::infinity();
  struct Case {
    std::string field;
    Json value;
  } cases[] = {
      {"timeout", std::nan("")},        {"timeout", inf},          {"timeout", -inf},
      {"timeout", -1},                  {"timeout", 0},            {"timeout", 1e308},
      {"timeout", 1e9},                 {"compile_timeout", 0.0},  {"compile_timeout", 1e308},
      {"compile_timeout", std::nan("")}, {"memory_mb", 0},         {"memory_mb", -5},
      {"memory_mb", 1e308},             {"memory_mb", 18446744073709551615ull},
      {"memory_mb", 9223372036854775807ll}, {"max_processes", 0},  {"max_processes", 4294967296ll},
      {"max_file_mb", -1},              {"max_file_mb", 1ull << 40}, {"max_open_files", 0},
      {"max_open_files", 1 << 30},      {"max_output_bytes", 0},   {"max_output_bytes", 1ull << 62},
      {"timeout", "10"},                {"memory_mb", "512"},
  };
  for (const auto& c : cases) {
    Json j = {{"code", "pass"}, {c.field, c.value}};
    auto r = request_from_json(j);
    ASSERT_FALSE(r.ok()) << j.dump();
    const std::string& m = r.error().message;
    EXPECT_NE(m.find("'" + c.field + "'"), std::string::npos) << m;
    EXPECT_LT(m.size(), 160u) << m;
  }
  auto huge = request_from_json(Json{{"code", ""}, {"timeout", 1e308}});
  EXPECT_NE(huge.error().message.find("1e+308"), std::string::npos) << huge.error().message;
  // The largest accepted values still pass, and so do the defaults.
  auto edge = request_from_json(Json{{"code", ""}, {"timeout", 86400}, {"memory_mb", 1 << 20},
                                     {"max_output_bytes", 1 << 30}, {"compile_timeout", 0.5}});
  EXPECT_TRUE(edge.ok()) << edge.error().message;
  EXPECT_TRUE(validate(Limits{}).ok());
  EXPECT_TRUE(validate(default_compile_limits()).ok());
}

// Bytes and environments a program could not be given as asked are refused, not passed on
// garbled: base64 that is not base64, and environment names the kernel cannot hold.
TEST(Request, BadBase64AndEnvironmentNamesAreRefusedNamingTheField) {
  auto refused = [](const Json& j, const std::string& says) {
    auto r = request_from_json(j);
    ASSERT_FALSE(r.ok()) << j.dump();
    EXPECT_NE(r.error().message.find(says), std::string::npos) << r.error().message;
  };
  refused({{"code", ""}, {"files", {{"a.txt", {{"base64", "aGVsbG8=garbage"}}}}}}, "field 'files': 'a.txt'");
  refused({{"code", ""}, {"files", {{"a.txt", {{"base64", "!!!"}}}}}}, "field 'files': 'a.txt'");
  refused({{"code", ""}, {"channel", {{"base64", "abc"}}}}, "field 'channel'");
  refused({{"code", ""}, {"env", {{"A=B", "x"}}}}, "field 'env': \"A=B\" is not an environment variable name");
  refused({{"code", ""}, {"env", {{"", "x"}}}}, "field 'env': \"\" is not");
  refused({{"code", ""}, {"env", {{"A", std::string("x\0y", 3)}}}}, "field 'env': the value of A holds a NUL");
  auto fine = request_from_json({{"code", ""}, {"files", {{"a.txt", {{"base64", "aGVs\nbG8="}}}}}, {"env", {{"A_1", ""}}}});
  ASSERT_TRUE(fine.ok()) << fine.error().message;
  EXPECT_EQ(fine->files.at("a.txt"), "hello");
  // A value out of range is printed as written, not rounded.
  auto big = request_from_json({{"code", ""}, {"max_output_bytes", 1073741825}});
  ASSERT_FALSE(big.ok());
  EXPECT_NE(big.error().message.find("got 1073741825"), std::string::npos) << big.error().message;
}

// The library's own check covers callers that never went through JSON, and the defaults a
// caller passes to request_from_json.
TEST(Request, ValidateChecksEveryLimit) {
  auto refused = [](Limits l, const std::string& field) {
    auto v = validate(l);
    ASSERT_FALSE(v.ok()) << field;
    EXPECT_NE(v.error().message.find("'" + field + "'"), std::string::npos) << v.error().message;
  };
  Limits l;
  l.timeout_s = std::nan("");
  refused(l, "timeout");
  l = {};
  l.timeout_s = -std::numeric_limits<double>::infinity();
  refused(l, "timeout");
  l = {};
  l.max_processes = -3;
  refused(l, "max_processes");
  l = {};
  l.memory_mb = std::size_t(-1);
  refused(l, "memory_mb");
  l = {};
  l.max_open_files = 0;
  refused(l, "max_open_files");
  auto v = validate(Limits{.timeout_s = 0}, "compile_timeout");
  ASSERT_FALSE(v.ok());
  EXPECT_NE(v.error().message.find("'compile_timeout'"), std::string::npos);
  ExecRequest bad_defaults;
  bad_defaults.limits.timeout_s = 1e308;
  auto r = request_from_json(Json{{"code", ""}}, bad_defaults);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("'timeout'"), std::string::npos) << r.error().message;
}

// What `wand eval --remote` sends to /v1/exec and reads back: every field a judge relies on
// survives the trip, binary bytes included.
TEST(Request, ToJsonRoundTrips) {
  ExecRequest r;
  r.language = "cpp";
  r.code = "int main(){}";
  r.stdin_data = "1 2\n";
  r.args = {"-v"};
  r.files = {{"in.bin", std::string("\0\xff\x01", 3)}, {"a.txt", "text"}};
  r.collect = {"out.txt"};
  r.env = {{"K", "v"}};
  r.limits.timeout_s = 2.5;
  r.limits.limit_by = LimitBy::cpu;
  r.limits.memory_mb = 300;
  r.limits.max_processes = 7;
  r.limits.max_file_mb = 3;
  r.limits.max_open_files = 30;
  r.limits.max_output_bytes = 1000;
  r.compile_limits = default_compile_limits();
  r.compile_limits->timeout_s = 9;
  r.channel = std::string("{\"key\": \"k\"}\xfe", 13);
  auto back = request_from_json(request_to_json(r));
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(back->language, "cpp");
  EXPECT_EQ(back->code, r.code);
  EXPECT_EQ(back->stdin_data, r.stdin_data);
  EXPECT_EQ(back->args, r.args);
  EXPECT_EQ(back->files, r.files);
  EXPECT_EQ(back->collect, r.collect);
  EXPECT_EQ(back->env, r.env);
  EXPECT_EQ(back->limits.timeout_s, 2.5);
  EXPECT_EQ(back->limits.limit_by, LimitBy::cpu);
  EXPECT_EQ(back->limits.memory_mb, 300u);
  EXPECT_EQ(back->limits.max_processes, 7);
  EXPECT_EQ(back->limits.max_file_mb, 3u);
  EXPECT_EQ(back->limits.max_open_files, 30);
  EXPECT_EQ(back->limits.max_output_bytes, 1000u);
  ASSERT_TRUE(back->compile_limits.has_value());
  EXPECT_EQ(back->compile_limits->timeout_s, 9);
  EXPECT_EQ(back->channel, r.channel);
}

TEST(Result, FromJsonReadsToJson) {
  ExecResult r;
  r.status = Status::runtime_error;
  r.exit_code = 1;
  r.stdout_data = "out";
  r.stderr_data = "Traceback";
  r.stdout_truncated = true;
  r.wall_s = 0.5;
  r.cpu_s = 0.25;
  r.peak_memory_kb = 1234;
  r.limit_hit = "wall";
  r.exception = ExceptionInfo{"ValueError", "bad", 3};
  r.compile_output = "warning";
  r.compile_s = 0.1;
  r.files["o.bin"] = CollectedFile{std::string("\x00\x80", 2), true, ""};
  r.files["gone"] = CollectedFile{"", false, "missing"};
  r.channel_data = "rec 1\ndone\n";
  auto back = result_from_json(to_json(r));
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(back->status, Status::runtime_error);
  EXPECT_EQ(back->exit_code, 1);
  EXPECT_EQ(back->stdout_data, "out");
  EXPECT_EQ(back->stderr_data, "Traceback");
  EXPECT_TRUE(back->stdout_truncated);
  EXPECT_EQ(back->wall_s, 0.5);
  EXPECT_EQ(back->peak_memory_kb, 1234u);
  EXPECT_EQ(back->limit_hit, "wall");
  ASSERT_TRUE(back->exception.has_value());
  EXPECT_EQ(back->exception->type, "ValueError");
  EXPECT_EQ(back->exception->line, 3);
  EXPECT_EQ(back->compile_output, "warning");
  EXPECT_EQ(back->files["o.bin"].data, std::string("\x00\x80", 2));
  EXPECT_TRUE(back->files["o.bin"].truncated);
  EXPECT_EQ(back->files["gone"].error, "missing");
  EXPECT_EQ(back->channel_data, r.channel_data);
  // What is not a result is said so, naming the field.
  auto bad = result_from_json(Json{{"status", "fine"}});
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("status"), std::string::npos);
  auto wrong_type = result_from_json(Json{{"status", "ok"}, {"stdout", 5}});
  ASSERT_FALSE(wrong_type.ok());
  EXPECT_FALSE(result_from_json(Json{{"status", "ok"}, {"channel", 5}}).ok());
}

TEST(Capture, KeepsHeadAndTailPastTheCap) {
  Capture c(10);
  std::string all;
  for (int i = 0; i < 2000; ++i) {
    std::string chunk = "line " + std::to_string(i) + "\n";
    all += chunk;
    c.add(chunk.data(), chunk.size());
  }
  EXPECT_TRUE(c.truncated);
  EXPECT_EQ(c.data, all.substr(0, 10));
  std::string last = c.last();
  EXPECT_EQ(all.substr(all.size() - last.size()), last);
  EXPECT_GE(last.size(), Capture::kTail);
}

TEST(Languages, TableFindsByNameAliasAndExtension) {
  for (const char* n : {"python", "c", "cpp", "js", "bash"}) EXPECT_TRUE(find_language(n)) << n;
  EXPECT_EQ(find_language("c++")->name, "cpp");
  EXPECT_EQ(language_for_path("x/y.cc")->name, "cpp");
  EXPECT_EQ(language_for_path("run.sh")->name, "bash");
  EXPECT_EQ(find_language("cobol"), nullptr);
  EXPECT_EQ(language_for_path("README"), nullptr);
}

TEST(Languages, ChoiceRefusesUnknownNamesAndExtensions) {
  EXPECT_EQ((*choose_language("", "-"))->name, "python");
  EXPECT_EQ((*choose_language("", ""))->name, "python");
  EXPECT_EQ((*choose_language("", "dir/prog.cc"))->name, "cpp");
  EXPECT_EQ((*choose_language("node", "prog.rs"))->name, "js");  // a given language wins
  auto rust = choose_language("rust", "prog.py");
  ASSERT_FALSE(rust.ok());
  EXPECT_NE(rust.error().message.find("'rust'"), std::string::npos) << rust.error().message;
  EXPECT_NE(rust.error().message.find(known_languages()), std::string::npos) << rust.error().message;
  auto ext = choose_language("", "src.d/prog.rs");
  ASSERT_FALSE(ext.ok());
  EXPECT_NE(ext.error().message.find("'.rs'"), std::string::npos) << ext.error().message;
  EXPECT_NE(ext.error().message.find("python, c, cpp, js, bash"), std::string::npos) << ext.error().message;
  auto none = choose_language("", "dir.v2/Makefile");
  ASSERT_FALSE(none.ok());
  EXPECT_NE(none.error().message.find("no file extension"), std::string::npos) << none.error().message;
  EXPECT_FALSE(choose_language("", ".bashrc").ok());
  auto field = request_from_json(Json{{"code", ""}, {"language", "rust"}});
  ASSERT_FALSE(field.ok());
  EXPECT_NE(field.error().message.find("'language'"), std::string::npos);
  EXPECT_NE(field.error().message.find("python, c, cpp, js, bash"), std::string::npos) << field.error().message;
}

TEST(Status, NamesRoundTrip) {
  for (int i = 0; i < 8; ++i) {
    auto s = static_cast<Status>(i);
    EXPECT_EQ(status_from_string(to_string(s)), s);
  }
}

}  // namespace
}  // namespace wand::sandbox

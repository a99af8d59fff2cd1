// Pieces of the sandbox that need no cell: the traceback parser, the request schema,
// output capture, the language table.
#include <gtest/gtest.h>

#include "sandbox/output.h"
#include "sandbox/sandbox.h"

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

TEST(Status, NamesRoundTrip) {
  for (int i = 0; i < 8; ++i) {
    auto s = static_cast<Status>(i);
    EXPECT_EQ(status_from_string(to_string(s)), s);
  }
}

}  // namespace
}  // namespace wand::sandbox

#include <gtest/gtest.h>

#include <atomic>
#include <random>

#include "common/base64.h"
#include "common/json.h"
#include "common/numbers.h"
#include "common/output.h"
#include "common/text.h"
#include "common/thread_pool.h"

#include <filesystem>
#include <fstream>

namespace wand {
namespace {

TEST(Base64, RoundTripsEveryLengthAndByte) {
  std::mt19937 rng(7);
  for (std::size_t n = 0; n < 300; ++n) {
    std::string s(n, '\0');
    for (auto& c : s) c = static_cast<char>(rng());
    EXPECT_EQ(base64_decode(base64_encode(s)), s) << n;
  }
}

TEST(Base64, KnownVectors) {
  EXPECT_EQ(base64_encode("f"), "Zg==");
  EXPECT_EQ(base64_encode("fo"), "Zm8=");
  EXPECT_EQ(base64_encode("foobar"), "Zm9vYmFy");
  EXPECT_EQ(base64_decode("Zm9v\nYmFy"), "foobar");
}

TEST(Json, ParseErrorNamesTheInput) {
  auto r = parse_json("{\"a\": ", "stdin line 3");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("stdin line 3"), std::string::npos);
}

std::string nested(std::size_t depth) { return std::string(depth, '[') + std::string(depth, ']'); }

TEST(Json, NumbersBeyondDoubleRangeAreAnErrorNotAnException) {
  auto r = parse_json(R"({"code": "x", "timeout": 1e400})", "stdin line 7");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("stdin line 7: invalid JSON"), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find("1e400"), std::string::npos) << r.error().message;
  EXPECT_FALSE(parse_json("-1e400", "x").ok());
  auto tiny = parse_json("1e-400", "x");  // underflow is a number (0), as everywhere
  ASSERT_TRUE(tiny.ok());
  EXPECT_EQ(tiny->get<double>(), 0.0);
}

TEST(Json, NestingIsLimitedBeforeAnythingRecursesThroughIt) {
  auto deep = parse_json(nested(200000), "stdin line 2");
  ASSERT_FALSE(deep.ok());
  EXPECT_EQ(deep.error().message, "stdin line 2: invalid JSON: nested deeper than 512 levels");
  std::string objects_text;
  for (int i = 0; i < 100000; ++i) objects_text += R"({"a":)";
  auto objects = parse_json(objects_text, "f");  // objects too, and before the missing end is seen
  ASSERT_FALSE(objects.ok());
  EXPECT_NE(objects.error().message.find("nested deeper than 512"), std::string::npos);
  auto limit = parse_json(nested(kMaxJsonDepth), "x");
  ASSERT_TRUE(limit.ok()) << limit.error().message;
  EXPECT_EQ(Json(*limit).dump().size(), 2u * kMaxJsonDepth);  // copies and prints: it is safe to use
  EXPECT_FALSE(parse_json(nested(kMaxJsonDepth + 1), "x").ok());
}

TEST(Json, ParseErrorsAreClipped) {
  auto r = parse_json("\"" + std::string(100000, 'a'), "big");  // an unterminated 100 KB string
  ASSERT_FALSE(r.ok());
  EXPECT_LT(r.error().message.size(), 600u);
  // Said for people: where and what, without the library's internal tag.
  auto x = parse_json("{x}", "request body");
  ASSERT_FALSE(x.ok());
  EXPECT_EQ(x.error().message.rfind("request body: invalid JSON: parse error at line 1, column 2", 0), 0u)
      << x.error().message;
  EXPECT_EQ(x.error().message.find("json.exception"), std::string::npos) << x.error().message;
}

TEST(Json, JsonLinesNameTheBadLineInTheMiddleOfAFile) {
  std::string path = ::testing::TempDir() + "wand_common_lines.jsonl";
  for (const std::string& bad : {std::string(R"({"n": 1e400})"), nested(200000)}) {
    std::ofstream(path) << "{\"n\": 1}\n\n{\"n\": 2}\n" << bad << "\n{\"n\": 4}\n";
    std::vector<int> seen;
    auto r = for_each_json_line(path, [&](int line, const Json& j) -> VoidResult {
      seen.push_back(line);
      return ok_status();
    });
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.error().message.find(path + " line 4: invalid JSON"), std::string::npos) << r.error().message;
    EXPECT_EQ(seen, (std::vector<int>{1, 3}));
  }
  std::filesystem::remove(path);
}

TEST(Text, PrintableEscapesAndClips) {
  EXPECT_EQ(printable("tok.en"), "tok.en");
  EXPECT_EQ(printable(std::string("a\0b\n\xff\\", 6)), "a\\x00b\\x0a\\xff\\x5c");
  EXPECT_EQ(printable(std::string(300, 'x'), 4), "xxxx… (296 more bytes)");
}

TEST(Text, PythonIdentifiersAreAsciiNamesNotStartingWithADigit) {
  for (const char* ok : {"a", "_", "add", "_wand_step", "Add2", "x_1"}) EXPECT_TRUE(is_python_identifier(ok)) << ok;
  for (const char* bad : {"", "2a", "a-b", "a b", "a.b", "a(b", "caf\xc3\xa9", "a\n"})
    EXPECT_FALSE(is_python_identifier(bad)) << bad;
}

TEST(Numbers, OneRuleOneMessageForm) {
  NumberRule seconds{.lo = 0, .hi = 86400, .lo_open = true, .unit = "seconds"};
  EXPECT_EQ(number_problem("nan", seconds), "must be a positive number of seconds up to 86400, got 'nan'");
  for (const char* ok : {"10", "0.5", "86400", "1e-3", "2.5e1"}) EXPECT_EQ(number_problem(ok, seconds), "") << ok;
  for (const char* bad : {"nan", "NaN", "inf", "-inf", "infinity", "0", "-1", "1e308", "1e400", "-1e400", "1e-400", "",
                          " 1", "1s", "0x", "86400.5"})
    EXPECT_NE(number_problem(bad, seconds), "") << bad;
  NumberRule count{.lo = 1, .hi = 4096, .integer = true};
  EXPECT_EQ(number_problem("0", count), "must be an integer from 1 to 4096, got '0'");
  for (const char* bad : {"1.0", "1e3", "-1", "+1", "4097", "18446744073709551616", "99999999999999999999999"})
    EXPECT_NE(number_problem(bad, count), "") << bad;
  EXPECT_EQ(number_problem("4096", count), "");
  NumberRule seed{.lo = 0, .hi = 1.8446744073709552e19, .integer = true};
  EXPECT_EQ(number_problem("18446744073709551615", seed), "");
  EXPECT_EQ(number_problem("-1", seed), "must be an integer from 0 to 18446744073709551615, got '-1'");
  // Bounds and the echoed value stay short: no 309-digit numbers.
  std::string huge(400, '9');
  auto m = number_problem(huge, {.lo = 0, .hi = 1e300});
  EXPECT_LT(m.size(), 120u) << m;
  EXPECT_NE(m.find("1e+300"), std::string::npos) << m;
}

TEST(Output, CheckWritableBeforeTheWork) {
  std::string dir = ::testing::TempDir() + "wand_out_dir";
  std::filesystem::create_directories(dir);
  std::string fresh = dir + "/report.html";
  std::filesystem::remove(fresh);
  EXPECT_TRUE(check_writable(fresh).ok());
  EXPECT_FALSE(std::filesystem::exists(fresh)) << "a checked path that did not exist is not left behind";
  std::ofstream(fresh) << "keep";
  EXPECT_TRUE(check_writable(fresh).ok());
  EXPECT_EQ(std::filesystem::file_size(fresh), 4u) << "an existing file is not truncated by the check";
  auto missing = check_writable(dir + "/no/such/dir/r.html");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().message.find("no/such/dir/r.html: cannot write: No such file or directory"),
            std::string::npos) << missing.error().message;
  auto is_dir = check_writable(dir);
  ASSERT_FALSE(is_dir.ok());
  EXPECT_NE(is_dir.error().message.find("Is a directory"), std::string::npos) << is_dir.error().message;
  std::filesystem::remove_all(dir);
}

TEST(Output, AFullDiskIsAnErrorNamingTheFile) {
  std::ofstream full("/dev/full");
  ASSERT_TRUE(full.is_open());
  full << "one line\n";
  auto r = flush_file(full, "/dev/full");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message, "/dev/full: write failed: No space left on device");
}

TEST(Json, MissingFileIsAnErrorNamingThePath) {
  auto r = read_file("/nonexistent/wand/file.txt");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("/nonexistent/wand/file.txt"), std::string::npos);
}

TEST(ThreadPool, RunsEveryTaskOnce) {
  ThreadPool pool(3);
  std::atomic<int> sum{0};
  for (int i = 1; i <= 100; ++i) pool.submit([&, i] { sum += i; });
  pool.wait_idle();
  EXPECT_EQ(sum.load(), 5050);
}

TEST(ParallelFor, CoversTheRangeWithWorkerIndices) {
  std::vector<int> hits(1000, 0);
  std::atomic<bool> bad_worker{false};
  parallel_for(hits.size(), 4, [&](std::size_t w, std::size_t i) {
    if (w >= 4) bad_worker = true;
    hits[i]++;
  });
  EXPECT_FALSE(bad_worker);
  for (int h : hits) EXPECT_EQ(h, 1);
}

}  // namespace
}  // namespace wand

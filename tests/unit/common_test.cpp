#include <gtest/gtest.h>

#include <atomic>
#include <random>

#include "common/base64.h"
#include "common/json.h"
#include "common/thread_pool.h"

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

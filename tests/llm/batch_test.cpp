// Matrix-matrix kernels and batched decoding: the tiled products against a double-precision
// reference on shapes that are not multiples of the tile, on every kernel path this CPU runs
// (generic, avx2, avx512, amx), each forced; k sequences decoded together against each decoded
// alone; the local backend's n samples against n requests of one sample.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <random>
#include <set>
#include <tuple>

#include "llm/grammar.h"
#include "llm/kernels.h"
#include "llm/llm.h"
#include "llm/model.h"
#include "llm/weights.h"

using namespace wand;
using namespace wand::llm;

namespace {

std::string data(const std::string& rel) { return std::string(WAND_SHARED_DATA) + "/" + rel; }
std::string models(const std::string& rel) { return std::string(WAND_MODELS_DIR) + "/" + rel; }
#define NEED_FILE(path) \
  if (!std::filesystem::exists(path)) GTEST_SKIP() << path << " not found"

std::string temp_path(const std::string& name) {
  return (std::filesystem::temp_directory_path() / ("wand_batch_test_" + std::to_string(getpid()) + "_" + name))
      .string();
}

// Sets the kernel path for one scope.
struct KernelPathScope {
  explicit KernelPathScope(KernelPath p) : saved(kernel_path()) { EXPECT_TRUE(set_kernel_path(p)); }
  ~KernelPathScope() { (void)set_kernel_path(saved); }
  KernelPath saved;
};

constexpr KernelPath kAllPaths[] = {KernelPath::generic, KernelPath::avx2, KernelPath::avx512, KernelPath::amx};

// The paths this CPU runs: generic everywhere, the SIMD ones where CPUID has them.
std::vector<KernelPath> supported_paths() {
  std::vector<KernelPath> paths;
  for (KernelPath p : kAllPaths)
    if (kernel_path_supported(p)) paths.push_back(p);
  return paths;
}

bool same_bits(float a, float b) { return std::memcmp(&a, &b, sizeof a) == 0; }

struct KernelCase {
  TensorType type;
  KernelPath path;
};

std::string case_name(const testing::TestParamInfo<KernelCase>& i) {
  return std::string(type_name(i.param.type)) + "_" + kernel_path_name(i.param.path);
}

class Tiles : public testing::TestWithParam<KernelCase> {};

// Random weights (rows x cols of `type`) and T activation rows in the form they meet them
// (dot_type; values scaled by x_scale), and both as the kernels read them, dequantized exactly.
struct Operands {
  std::vector<uint8_t> w, x;
  std::vector<float> wd, xd;
  std::size_t wb, xb;
  // xt: the activations' type (dot_type(type) for matmul_rows, packed_dot_type for matmul_packed).
  Operands(TensorType type, TensorType xt, int rows, int cols, int T, float x_scale, std::mt19937& rng)
      : wd(std::size_t(rows) * cols), xd(std::size_t(T) * cols) {
    wb = type_bytes(type, cols), xb = type_bytes(xt, cols);
    std::normal_distribution<float> normal;
    std::vector<float> wf(wd.size()), xf(xd.size());
    for (auto& v : wf) v = normal(rng);
    for (auto& v : xf) v = x_scale * normal(rng);
    w.resize(wb * rows), x.resize(xb * T);
    for (int r = 0; r < rows; ++r) quantize_row(type, &wf[std::size_t(r) * cols], &w[wb * r], cols);
    for (int t = 0; t < T; ++t) quantize_row(xt, &xf[std::size_t(t) * cols], &x[xb * t], cols);
    for (int r = 0; r < rows; ++r) dequantize_row(type, &w[wb * r], &wd[std::size_t(r) * cols], cols);
    for (int t = 0; t < T; ++t) dequantize_row(xt, &x[xb * t], &xd[std::size_t(t) * cols], cols);
  }
};

struct ProductShape {
  TensorType type;
  int rows, cols, T, r0, r1;
};

// y (T rows of `rows` outputs, of which [r0, r1) written, the rest NaN) against the double sums
// of the products of wd's rows and xd's (the values the kernel read, exactly) within float
// rounding: 3e-5 of the sum of the products' magnitudes (n float additions of relative error
// 2^-24 for n <= 320); and each token's outputs bit for bit those of the token alone.
void check_products(const std::vector<float>& y, const std::vector<float>& alone, const std::vector<float>& wd,
                    const std::vector<float>& xd, ProductShape s, int& checked) {
  for (int t = 0; t < s.T; ++t)
    for (int r = 0; r < s.rows; ++r) {
      const float got = y[std::size_t(t) * s.rows + r];
      if (r < s.r0 || r >= s.r1) {
        ASSERT_TRUE(std::isnan(got)) << "row " << r << " is outside [" << s.r0 << ", " << s.r1 << ")";
        continue;
      }
      double want = 0, mag = 0;
      for (int i = 0; i < s.cols; ++i) {
        const double p = double(wd[std::size_t(r) * s.cols + i]) * xd[std::size_t(t) * s.cols + i];
        want += p, mag += std::fabs(p);
      }
      ASSERT_NEAR(got, want, 3e-5 * mag + 1e-30) << type_name(s.type) << " rows " << s.rows << " cols " << s.cols
                                                 << " T " << s.T << " at (" << r << ", " << t << ")";
      ASSERT_TRUE(same_bits(got, alone[std::size_t(t) * s.rows + r]))
          << "token " << t << " of a batch of " << s.T << " differs from the token alone: " << got << " vs "
          << alone[std::size_t(t) * s.rows + r];
      ++checked;
    }
}

// Every output of matmul_rows equals the double-precision sum of the products of the values the
// kernel reads (weights and activations as stored, dequantized exactly) within float rounding:
// 3e-5 of the sum of the products' magnitudes (n float additions of relative error 2^-24 for
// n <= 320). Rows outside [r0, r1) are left alone, and a token's outputs are bit for bit the same
// whichever batch it is computed in.
TEST_P(Tiles, MatchTheDoubleReferenceOnShapesOffTheTile) {
  const auto [type, path] = GetParam();
  if (!kernel_path_supported(path)) GTEST_SKIP() << kernel_path_name(path) << ": not on this CPU";
  KernelPathScope scope(path);
  EXPECT_EQ(kernel_path(), path);
  const bool quantized = type == TensorType::Q8_0 || type == TensorType::Q4_0;
  const std::vector<int> col_list =
      quantized ? std::vector<int>{32, 64, 96, 320} : std::vector<int>{1, 7, 16, 17, 40, 100, 257};
  std::mt19937 rng(11);
  int checked = 0;
  for (int cols : col_list)
    for (int rows : {1, 3, 5, 7, 8, 9, 13, 33}) {
      const int T_max = 17;
      const Operands o(type, dot_type(type), rows, cols, T_max, 1, rng);
      const auto& [w, x, wd, xd, wb, xb] = o;
      // Token t alone, as the reference for the bits of every batch.
      std::vector<float> alone(std::size_t(T_max) * rows);
      for (int t = 0; t < T_max; ++t)
        matmul_rows(type, w.data(), wb, cols, 0, rows, &x[xb * t], xb, 1, &alone[std::size_t(t) * rows], rows);
      for (int T : {1, 2, 3, 4, 5, 7, 8, 9, 16, 17}) {
        const int r0 = rows > 4 ? 1 : 0, r1 = rows > 4 ? rows - 1 : rows;
        std::vector<float> y(std::size_t(T) * rows, NAN);
        matmul_rows(type, w.data(), wb, cols, r0, r1, x.data(), xb, T, y.data(), rows);
        ASSERT_NO_FATAL_FAILURE(check_products(y, alone, wd, xd, {type, rows, cols, T, r0, r1}, checked));
      }
    }
  EXPECT_GT(checked, 10000);
}

INSTANTIATE_TEST_SUITE_P(EveryTypeAndPath, Tiles,
                         testing::ValuesIn([] {
                           std::vector<KernelCase> cases;
                           for (KernelPath p : kAllPaths)
                             for (TensorType t : {TensorType::F32, TensorType::F16, TensorType::Q8_0, TensorType::Q4_0})
                               cases.push_back({t, p});
                           return cases;
                         }()),
                         case_name);

class Packed : public testing::TestWithParam<KernelCase> {};

// matmul_packed over pack_rows's layout: every output within float rounding of the double sum of
// the products of the stored values (as Tiles above), on row counts off the 8- and 16-row tiles
// and token counts off the 4- and 8-token tiles, for row ranges starting at a group or, for
// floats, at a 16-row unit inside a group (as the engine's threads split matrices); rows outside
// the range untouched; each token bit for bit the same alone as in any batch.
TEST_P(Packed, MatchTheDoubleReferenceOnShapesOffTheTile) {
  const auto [type, path] = GetParam();
  if (!kernel_path_supported(path)) GTEST_SKIP() << kernel_path_name(path) << ": not on this CPU";
  KernelPathScope scope(path);
  ASSERT_TRUE(packable(type));
  const bool quantized = type == TensorType::Q8_0 || type == TensorType::Q4_0;
  const int group = packed_group_rows(type);
  // Floats: rows off the 16- and 128-row groups, the 64-row (AVX2: 16) tiles and the single token's
  // 128-row (AVX-512 F32: 64) tile, any column count.
  const std::vector<int> col_list = quantized ? std::vector<int>{32, 96, 320} : std::vector<int>{1, 7, 16, 33, 100, 257};
  const std::vector<int> row_list =
      quantized ? std::vector<int>{1, 5, 8, 9, 15, 16, 17, 24, 31, 40}
                : std::vector<int>{1, 5, 15, 16, 17, 31, 47, 64, 65, 70, 97, 130, 200, 257};
  std::mt19937 rng(12);
  int checked = 0;
  for (int cols : col_list)
    for (int rows : row_list) {
      const int T_max = 19;
      const Operands o(type, packed_dot_type(type), rows, cols, T_max, 3, rng);
      const auto& [w, x, wd, xd, wb, xb] = o;
      std::vector<uint8_t> packed(packed_bytes(type, rows, cols));
      pack_rows(type, w.data(), wb, rows, cols, packed.data());
      std::vector<float> alone(std::size_t(T_max) * rows);
      for (int t = 0; t < T_max; ++t)
        matmul_packed(type, packed.data(), rows, cols, 0, rows, &x[xb * t], xb, 1, &alone[std::size_t(t) * rows], rows);
      for (int T : {1, 2, 3, 4, 5, 7, 8, 9, 16, 19}) {
        const int unit = quantized ? group : 16;  // where a range may start
        const int r0 = rows > unit ? unit : 0, r1 = rows > unit + 1 ? rows - 1 : rows;
        std::vector<float> y(std::size_t(T) * rows, NAN);
        matmul_packed(type, packed.data(), rows, cols, r0, r1, x.data(), xb, T, y.data(), rows);
        ASSERT_NO_FATAL_FAILURE(check_products(y, alone, wd, xd, {type, rows, cols, T, r0, r1}, checked));
      }
    }
  EXPECT_GT(checked, 10000);
}

INSTANTIATE_TEST_SUITE_P(EveryTypeAndPath, Packed,
                         testing::ValuesIn([] {
                           std::vector<KernelCase> cases;
                           for (KernelPath p : kAllPaths)
                             for (TensorType t : {TensorType::F32, TensorType::F16, TensorType::Q8_0, TensorType::Q4_0})
                               cases.push_back({t, p});
                           return cases;
                         }()),
                         case_name);

// The AMX path's tile products are the AVX-512 (VNNI) path's outputs bit for bit (the integer
// block sums are exact both ways and the float steps are the same), on token counts of one
// short tile (8, 9, 15), of whole 16-token tiles and with tails of 1, 8 and 15 tokens, 1 to 32
// blocks a row (the tile products go in pairs), matrices of several 16-row groups, a last group
// cut short and a row range starting past the first group (a thread's share); rows outside it
// untouched.
TEST(Amx, PackedProductsAreAvx512sBitForBit) {
  if (!kernel_path_supported(KernelPath::amx)) GTEST_SKIP() << "amx: not on this CPU";
  std::mt19937 rng(14);
  int compared = 0;
  for (TensorType type : {TensorType::Q8_0, TensorType::Q4_0})
    for (int cols : {32, 64, 96, 160, 256, 1024})
      for (int rows : {16, 40, 64}) {
        const int T_max = 40;
        const Operands o(type, packed_dot_type(type), rows, cols, T_max, 3, rng);
        std::vector<uint8_t> packed(packed_bytes(type, rows, cols));
        pack_rows(type, o.w.data(), o.wb, rows, cols, packed.data());
        for (int T : {8, 9, 15, 16, 17, 31, 32, 33, 40}) {  // AMX from 8 tokens (kAmxMinTokens)
          const int r0 = rows > 16 ? 16 : 0, r1 = rows > 16 ? rows - 1 : rows;
          std::vector<float> want(std::size_t(T) * rows, NAN), got(want);
          {
            KernelPathScope scope(KernelPath::avx512);
            matmul_packed(type, packed.data(), rows, cols, r0, r1, o.x.data(), o.xb, T, want.data(), rows);
          }
          {
            KernelPathScope scope(KernelPath::amx);
            matmul_packed(type, packed.data(), rows, cols, r0, r1, o.x.data(), o.xb, T, got.data(), rows);
          }
          for (std::size_t i = 0; i < got.size(); ++i, ++compared)
            ASSERT_TRUE(same_bits(got[i], want[i]) || (std::isnan(got[i]) && std::isnan(want[i])))
                << type_name(type) << " rows " << rows << " cols " << cols << " T " << T << " token "
                << i / rows << " row " << i % rows << ": amx " << got[i] << ", avx512 " << want[i];
        }
      }
  EXPECT_GT(compared, 50000);
}

// Activations quantize to Q8_0 bit for bit alike on every path (ggml's rounding: half to even,
// the scale in fp16), including values at the halfway points, zeros and a block of zeros.
TEST(Quantize, Q8_0IsTheSameOnEveryPath) {
  std::mt19937 rng(13);
  std::normal_distribution<float> normal;
  const int n = 32 * 40;
  std::vector<float> x(n);
  for (auto& v : x) v = normal(rng) * 4;
  for (int i = 0; i < 32; ++i) x[32 + i] = 0;  // a block of zeros: scale 0, quants 0
  for (int i = 0; i < 32; ++i) x[64 + i] = (i - 16) * 0.5f + (i == 5 ? 127.f / 2 : 0);  // halves
  std::vector<BlockQ8_0> want(n / 32);
  {
    KernelPathScope scope(KernelPath::generic);
    quantize_q8_0(x.data(), want.data(), n);
  }
  EXPECT_EQ(want[1].d, 0);
  for (KernelPath p : supported_paths()) {
    KernelPathScope scope(p);
    std::vector<BlockQ8_0> got(n / 32);
    quantize_q8_0(x.data(), got.data(), n);
    for (int b = 0; b < n / 32; ++b) {
      ASSERT_EQ(got[b].d, want[b].d) << kernel_path_name(p) << " block " << b;
      ASSERT_EQ(0, std::memcmp(got[b].qs, want[b].qs, 32)) << kernel_path_name(p) << " block " << b;
    }
  }
}

// Softmax's numerators and SwiGLU's gate against double precision on every path (the SIMD
// paths' exponential is a polynomial: within 4 float ulps here), on lengths around the vector
// sizes, scores far below their maximum and gates in SiLU's saturated ends.
TEST(Elementwise, SoftmaxAndSiluMatchDoublePrecision) {
  std::mt19937 rng(15);
  std::normal_distribution<float> normal;
  for (KernelPath p : supported_paths()) {
    KernelPathScope scope(p);
    for (int n : {1, 5, 8, 15, 16, 17, 33, 100}) {
      std::vector<float> x(n + 1);
      for (auto& v : x) v = normal(rng) * 8;
      if (n > 3) x[2] = -200.f;  // e^-200 underflows: the numerator is 0 or tiny, never garbage
      x[n] = NAN;                // past the end: neither read into the max nor written
      std::vector<float> e = x;
      const float sum = softmax_exp(e.data(), n);
      double mx = -INFINITY, want_sum = 0;
      for (int i = 0; i < n; ++i) mx = std::max(mx, double(x[i]));
      for (int i = 0; i < n; ++i) {
        const double want = std::exp(double(x[i] - float(mx)));  // of the argument as rounded to float
        want_sum += want;
        ASSERT_NEAR(e[i], want, 4 * 6e-8 * want + 1e-37) << kernel_path_name(p) << " n " << n << " i " << i;
      }
      ASSERT_TRUE(std::isnan(e[n])) << kernel_path_name(p) << " wrote past n " << n;
      EXPECT_NEAR(sum, want_sum, 1e-6 * want_sum) << kernel_path_name(p) << " n " << n;

      std::vector<float> g(n), u(n);
      for (int i = 0; i < n; ++i) g[i] = normal(rng) * (i % 3 == 0 ? 40 : 3), u[i] = normal(rng);
      std::vector<float> out = g;
      silu_mul(out.data(), u.data(), n);
      for (int i = 0; i < n; ++i) {
        const double want = double(g[i]) / (1 + std::exp(-double(g[i]))) * u[i];
        // The SIMD exponential clamps its argument at 88, so a gate below -88 (drawn here now and
        // then) gives g * u / e^88, up to e^(-g - 88) times the true value, but under 1e-35.
        ASSERT_NEAR(out[i], want, 6 * 6e-8 * std::fabs(want) + 1e-35)
            << kernel_path_name(p) << " silu(" << g[i] << ") * " << u[i];
      }
    }
  }
}

// rmsnorm within 3 float ulps of the double formula (the scale's and products' roundings) on
// lengths around the vector sizes, nothing written past n; rope on every path bit for bit the
// generic path's, within 2 ulps of the double rotation, rope_dim below head_dim leaving the rest.
TEST(Elementwise, RmsnormAndRopeMatchDoublePrecision) {
  std::mt19937 rng(16);
  std::normal_distribution<float> normal;
  for (KernelPath p : supported_paths()) {
    KernelPathScope scope(p);
    for (int n : {1, 7, 8, 16, 17, 33, 256, 257}) {
      std::vector<float> x(n), w(n), out(n + 1, NAN);
      for (int i = 0; i < n; ++i) x[i] = normal(rng) * 3, w[i] = normal(rng);
      rmsnorm(x.data(), w.data(), out.data(), n, 1e-5f);
      double ss = 0;
      for (float v : x) ss += double(v) * v;
      const double scale = 1 / std::sqrt(ss / n + 1e-5);
      for (int i = 0; i < n; ++i) {
        const double want = x[i] * scale * w[i];
        ASSERT_NEAR(out[i], want, 3 * 6e-8 * std::fabs(want) + 1e-37) << kernel_path_name(p) << " n " << n;
      }
      ASSERT_TRUE(std::isnan(out[n])) << kernel_path_name(p) << " wrote past n " << n;
    }
    for (auto [heads, head_dim, rope_dim] : {std::tuple{1, 2, 2}, {3, 32, 32}, {2, 64, 48}, {4, 40, 22}}) {
      std::vector<float> v(std::size_t(heads) * head_dim), cos2(rope_dim), sin2(rope_dim);
      for (auto& e : v) e = normal(rng);
      std::vector<double> angle(rope_dim / 2);
      for (int i = 0; i < rope_dim / 2; ++i) {
        angle[i] = 7.0 * std::pow(10000.0, -2.0 * i / rope_dim);
        cos2[2 * i] = cos2[2 * i + 1] = static_cast<float>(std::cos(angle[i]));
        sin2[2 * i + 1] = static_cast<float>(std::sin(angle[i]));
        sin2[2 * i] = -sin2[2 * i + 1];
      }
      std::vector<float> got = v, generic = v;
      rope(got.data(), heads, head_dim, rope_dim, cos2.data(), sin2.data());
      {
        KernelPathScope plain(KernelPath::generic);
        rope(generic.data(), heads, head_dim, rope_dim, cos2.data(), sin2.data());
      }
      for (int h = 0; h < heads; ++h)
        for (int j = 0; j < head_dim; ++j) {
          const std::size_t at = std::size_t(h) * head_dim + j;
          ASSERT_TRUE(same_bits(got[at], generic[at])) << kernel_path_name(p) << " head " << h << " j " << j;
          if (j >= rope_dim) {
            ASSERT_TRUE(same_bits(got[at], v[at])) << "value " << j << " past rope_dim " << rope_dim << " moved";
            continue;
          }
          const double a = v[at - j % 2], b = v[at - j % 2 + 1], c = cos2[j], s = sin2[j | 1];
          const double want = j % 2 ? a * s + b * c : a * c - b * s;
          ASSERT_NEAR(got[at], want, 2 * 6e-8 * (std::fabs(a) + std::fabs(b)))
              << kernel_path_name(p) << " head " << h << " j " << j;
        }
    }
  }
}

// weighted_rows against the double sum for every width up to 64 and counts around the vector
// sizes; each output the same bits whatever width it is computed in.
TEST(WeightedRows, MatchTheDoubleReferenceForEveryWidth) {
  std::mt19937 rng(14);
  std::normal_distribution<float> normal;
  const int stride = 70, max_count = 37;
  std::vector<float> rows(std::size_t(max_count) * stride), coef(max_count);
  for (auto& v : rows) v = normal(rng);
  for (auto& v : coef) v = normal(rng);
  for (KernelPath p : supported_paths()) {
    KernelPathScope scope(p);
    for (int count : {1, 2, 15, 16, 37}) {
      std::vector<float> wide(64);
      weighted_rows(coef.data(), 0.5f, rows.data(), stride, count, 64, wide.data());
      for (int width = 1; width <= 64; ++width) {
        std::vector<float> out(width + 1, NAN);
        weighted_rows(coef.data(), 0.5f, rows.data(), stride, count, width, out.data());
        ASSERT_TRUE(std::isnan(out[width])) << "wrote past width " << width;
        for (int j = 0; j < width; ++j) {
          double want = 0, mag = 0;
          for (int k = 0; k < count; ++k) {
            const double t = double(coef[k]) * 0.5 * rows[std::size_t(k) * stride + j];
            want += t, mag += std::fabs(t);
          }
          ASSERT_NEAR(out[j], want, 1e-5 * mag) << kernel_path_name(p) << " width " << width << " j " << j;
          ASSERT_TRUE(same_bits(out[j], wide[j])) << kernel_path_name(p) << " width " << width << " j " << j;
        }
      }
    }
  }
}


// weighted_rows_f16 over fp16 rows: within the same bound of the double sum of the halves' values,
// and the same bits as weighted_rows over those values as floats (the conversion is exact).
TEST(WeightedRows, F16RowsMatchTheirFloatValues) {
  std::mt19937 rng(17);
  std::normal_distribution<float> normal;
  const int stride = 70, max_count = 37;
  std::vector<uint16_t> half(std::size_t(max_count) * stride);
  std::vector<float> rows(half.size()), coef(max_count);
  for (std::size_t i = 0; i < half.size(); ++i) half[i] = fp32_to_fp16(normal(rng)), rows[i] = fp16_to_fp32(half[i]);
  for (auto& v : coef) v = normal(rng);
  for (KernelPath p : supported_paths()) {
    KernelPathScope scope(p);
    for (int count : {1, 2, 15, 37})
      for (int width : {1, 7, 8, 15, 16, 17, 32, 33, 63, 64}) {
        std::vector<float> got(width + 1, NAN), want(width);
        weighted_rows_f16(coef.data(), 0.5f, half.data(), stride, count, width, got.data());
        weighted_rows(coef.data(), 0.5f, rows.data(), stride, count, width, want.data());
        ASSERT_TRUE(std::isnan(got[width])) << "wrote past width " << width;
        for (int j = 0; j < width; ++j)
          ASSERT_TRUE(same_bits(got[j], want[j]))
              << kernel_path_name(p) << " count " << count << " width " << width << " j " << j;
      }
  }
}

// weighted_row_sets (the query heads of a key/value head at once): each set's outputs bit for bit
// weighted_rows' for that set alone, over float and fp16 rows, for 1 to 5 sets (pairs and a single
// left over), every width class and counts around the vector sizes; nothing written between sets.
TEST(WeightedRows, SetsEqualEachSetAlone) {
  std::mt19937 rng(19);
  std::normal_distribution<float> normal;
  const int stride = 70, max_count = 37, max_sets = 5, coef_stride = 40, out_stride = 66;
  std::vector<float> rows(std::size_t(max_count) * stride), coef(std::size_t(max_sets) * coef_stride), scale(max_sets);
  std::vector<uint16_t> half(rows.size());
  for (std::size_t i = 0; i < rows.size(); ++i) half[i] = fp32_to_fp16(normal(rng)), rows[i] = normal(rng);
  for (auto& v : coef) v = normal(rng);
  for (auto& v : scale) v = 0.25f + std::fabs(normal(rng));
  for (KernelPath p : supported_paths()) {
    KernelPathScope scope(p);
    for (int sets = 1; sets <= max_sets; ++sets)
      for (int count : {1, 16, 37})
        for (int width : {1, 16, 20, 33, 64}) {
          std::vector<float> got(std::size_t(sets) * out_stride, NAN), got16 = got;
          weighted_row_sets(sets, coef.data(), coef_stride, scale.data(), rows.data(), stride, count, width, got.data(),
                            out_stride);
          weighted_row_sets_f16(sets, coef.data(), coef_stride, scale.data(), half.data(), stride, count, width,
                                got16.data(), out_stride);
          for (int s = 0; s < sets; ++s) {
            std::vector<float> want(width), want16(width);
            weighted_rows(&coef[std::size_t(s) * coef_stride], scale[s], rows.data(), stride, count, width, want.data());
            weighted_rows_f16(&coef[std::size_t(s) * coef_stride], scale[s], half.data(), stride, count, width,
                              want16.data());
            for (int j = 0; j < out_stride; ++j) {
              const std::size_t at = std::size_t(s) * out_stride + j;
              if (j >= width) {
                ASSERT_TRUE(std::isnan(got[at]) && std::isnan(got16[at])) << "wrote past width " << width;
                continue;
              }
              ASSERT_TRUE(same_bits(got[at], want[j]))
                  << kernel_path_name(p) << " sets " << sets << " set " << s << " width " << width << " j " << j;
              ASSERT_TRUE(same_bits(got16[at], want16[j]))
                  << kernel_path_name(p) << " fp16 rows, sets " << sets << " set " << s << " j " << j;
            }
          }
        }
  }
}

// softmax_i16: bit for bit softmax_exp on the same path, then the weights x * mul as int16 by
// max |x * mul| / 32767, rounding to nearest even, a zero after an odd count, nothing written past
// it, and the weights' scale over the numerators' sum given; each of 1 to 3 rows as if alone; the
// same bits on every path for the rounding (the exponentials' bits are each path's own).
TEST(Q8Values, SoftmaxI16IsSoftmaxExpThenRounding) {
  std::mt19937 rng(37);
  std::normal_distribution<float> normal;
  std::uniform_real_distribution<float> unit(0.f, 1.f);
  for (int n : {1, 2, 7, 16, 33, 130}) {
    const std::size_t xs = n + 5, qs = n + 3;  // rows apart, with room past each
    std::vector<float> x(3 * xs), mul(n);
    for (auto& v : x) v = normal(rng) * 4;
    for (auto& v : mul) v = 0.001f + unit(rng) * 0.01f;
    for (KernelPath p : supported_paths()) {
      KernelPathScope scope(p);
      for (int sets : {1, 2, 3}) {
        std::vector<float> got = x, factor(sets + 1, -1.f);
        std::vector<int16_t> q(3 * qs, 99);
        softmax_i16(sets, got.data(), xs, n, 0.3f, mul.data(), q.data(), qs, factor.data());
        for (int s = 0; s < sets; ++s) {
          std::vector<float> e(x.begin() + s * xs, x.begin() + s * xs + n);
          const float sum = softmax_exp(e.data(), n, 0.3f);
          float amax = 0;
          for (int i = 0; i < n; ++i) amax = std::max(amax, std::fabs(e[i] * mul[i]));
          const float d = amax / 32767.f, id = 1.f / d;
          const int16_t* qr = &q[s * qs];
          ASSERT_TRUE(same_bits(factor[s], d / sum)) << kernel_path_name(p) << " n " << n << " row " << s;
          for (int i = 0; i < n; ++i) {
            ASSERT_TRUE(same_bits(got[s * xs + i], e[i])) << kernel_path_name(p) << " numerator " << i;
            ASSERT_EQ(qr[i], static_cast<int16_t>(std::nearbyint(e[i] * mul[i] * id))) << kernel_path_name(p) << " i " << i;
          }
          EXPECT_EQ(*std::max_element(qr, qr + n), 32767);
          ASSERT_EQ(qr[n], n % 2 ? 0 : 99) << kernel_path_name(p) << " n " << n;
          ASSERT_EQ(qr[n + 1], 99) << "wrote past n " << n;
          ASSERT_TRUE(same_bits(got[s * xs + n], x[s * xs + n])) << "wrote past n " << n;
        }
        ASSERT_EQ(factor[sets], -1.f) << "wrote past the rows' factors";
        for (std::size_t i = sets * qs; i < q.size(); ++i) ASSERT_EQ(q[i], 99) << "wrote past the rows";
      }
    }
  }
}

// q8_values against exact integer sums over plainly laid out values, chunk by chunk, then the
// float adds and the scale: the same bits on every path, for 1 to 3 heads, head sizes 4 to 128
// (partial vectors), position counts odd and even, across the 512-position chunks; extreme
// weights and values (where a chunk's sum nears 2^31); nothing written past head_dim.
TEST(Q8Values, MatchTheExactIntegerSumsOnEveryPath) {
  std::mt19937 rng(41);
  std::uniform_int_distribution<int> byte(-127, 127), word(-32767, 32767);
  const int max_n = 1100, c_stride = max_n + 1;
  const std::size_t out_stride = 140;
  std::vector<int16_t> c(3 * c_stride);
  std::vector<float> scale{1e-6f, 0.25f, 3.f};
  for (int hd : {4, 12, 32, 80, 128}) {
    std::vector<int8_t> plain(std::size_t(max_n + 1) * hd), values(std::size_t(max_n + 2) * hd);  // whole pairs
    for (int round = 0; round < 2; ++round) {  // random, then every weight and value at its extreme
      for (int p = 0; p <= max_n; ++p)
        for (int d = 0; d < hd; ++d) {
          const auto v = static_cast<int8_t>(round ? 127 : byte(rng));
          plain[std::size_t(p) * hd + d] = v;
          values[std::size_t(p / 2) * 2 * hd + 2 * d + p % 2] = v;
        }
      for (auto& w : c) w = static_cast<int16_t>(round ? 32767 : word(rng));
      for (KernelPath path : supported_paths()) {
        KernelPathScope scope(path);
        for (int sets = 1; sets <= 3; ++sets)
          for (int n : {1, 2, 15, 16, 33, 512, 513, 1100}) {
            std::vector<int16_t> cn = c;
            if (n % 2)
              for (int s = 0; s < 3; ++s) cn[s * c_stride + n] = 0;  // as softmax_i16 leaves it
            std::vector<float> out(3 * out_stride, NAN);
            q8_values(sets, cn.data(), c_stride, scale.data(), values.data(), hd, n, out.data(), out_stride);
            for (int s = 0; s < 3; ++s)
              for (int d = 0; d < int(out_stride); ++d) {
                const float got = out[s * out_stride + d];
                if (s >= sets || d >= hd) {
                  ASSERT_TRUE(std::isnan(got)) << "wrote set " << s << " dimension " << d;
                  continue;
                }
                float sum = 0;
                for (int p0 = 0; p0 < n; p0 += kQ8ValueChunk) {
                  int64_t chunk = 0;
                  for (int p = p0; p < std::min(n, p0 + kQ8ValueChunk); ++p)
                    chunk += int64_t(cn[s * c_stride + p]) * plain[std::size_t(p) * hd + d];
                  ASSERT_LT(std::llabs(chunk), int64_t{1} << 31);
                  sum += static_cast<float>(chunk);
                }
                ASSERT_TRUE(same_bits(got, sum * scale[s])) << kernel_path_name(path) << " head_dim " << hd << " sets "
                                                             << sets << " n " << n << " set " << s << " d " << d;
              }
          }
      }
    }
  }
}

// quantize_i8: amax / 127 and x rounded to nearest even by it, the same bits on every path, for
// lengths on and off the vectors, all zeros (scale 0, bytes 0) and halfway cases.
TEST(Q8Scores, QuantizeI8IsTheSameOnEveryPath) {
  std::mt19937 rng(31);
  std::normal_distribution<float> normal;
  for (int n : {1, 4, 12, 16, 32, 33, 128}) {
    std::vector<float> x(n);
    for (auto& v : x) v = normal(rng) * 3;
    x[0] = 127.f;  // amax 127: scale 1, so x[i] = k + 0.5 lie halfway
    if (n > 2) x[1] = 2.5f, x[2] = -3.5f;
    for (const auto& in : {x, std::vector<float>(n, 0.f)}) {
      float amax = 0;
      for (float v : in) amax = std::max(amax, std::fabs(v));
      const float d = amax / 127.f, id = d != 0 ? 1.f / d : 0.f;
      for (KernelPath p : supported_paths()) {
        KernelPathScope scope(p);
        std::vector<int8_t> q(n + 1, 99);
        ASSERT_TRUE(same_bits(quantize_i8(in.data(), n, q.data()), d)) << kernel_path_name(p) << " n " << n;
        for (int i = 0; i < n; ++i)
          ASSERT_EQ(q[i], static_cast<int8_t>(std::nearbyint(in[i] * id))) << kernel_path_name(p) << " x " << in[i];
        ASSERT_EQ(q[n], 99) << "wrote past n " << n;
        if (n > 2 && amax == 127.f) {  // ties to even
          EXPECT_EQ(q[1], 2);
          EXPECT_EQ(q[2], -4);
        }
      }
    }
  }
}

// q8_store writes quantize_i8's bytes and scale of a key and a value at the positions kernels.h's
// layouts give (computed here from the formulas), on every path, for head sizes 4 to 128 and
// positions at both ends of a 64-position block and of a pair; every other byte is left as it was.
TEST(Q8Scores, StoreWritesQuantizeI8sBytesWhereTheLayoutsSay) {
  std::mt19937 rng(37);
  std::normal_distribution<float> normal;
  for (int hd : {4, 12, 32, 48, 128}) {
    const int n = 3 * kQ8KeyBlock;
    std::vector<float> key(hd), value(hd);
    for (KernelPath path : supported_paths()) {
      KernelPathScope scope(path);
      std::vector<int8_t> keys(std::size_t(n) * hd, 0x55), values(keys.size(), 0x55);
      std::vector<float> k_scale(n, -1.f), v_scale(n, -1.f);
      std::vector<int8_t> want_keys = keys, want_values = values;
      std::vector<float> want_k = k_scale, want_v = v_scale;
      for (int p : {0, 1, 2, 63, 64, 65, 130, n - 1}) {
        for (auto& v : key) v = normal(rng);
        for (auto& v : value) v = normal(rng) * 4;
        std::vector<int8_t> kq(hd), vq(hd);
        want_k[p] = quantize_i8(key.data(), hd, kq.data());
        want_v[p] = quantize_i8(value.data(), hd, vq.data());
        for (int d = 0; d < hd; ++d) {
          want_keys[std::size_t(p / kQ8KeyBlock) * kQ8KeyBlock * hd + (d / 4) * 4 * kQ8KeyBlock + 4 * (p % kQ8KeyBlock) +
                    d % 4] = kq[d];
          want_values[std::size_t(p / 2) * 2 * hd + 2 * d + p % 2] = vq[d];
        }
        q8_store(key.data(), value.data(), hd, p, keys.data(), k_scale.data(), values.data(), v_scale.data());
        ASSERT_EQ(keys, want_keys) << kernel_path_name(path) << " head_dim " << hd << " position " << p;
        ASSERT_EQ(values, want_values) << kernel_path_name(path) << " head_dim " << hd << " position " << p;
        ASSERT_EQ(k_scale, want_k) << kernel_path_name(path);
        ASSERT_EQ(v_scale, want_v) << kernel_path_name(path);
      }
    }
  }
}

// q8_scores against the integer dot computed here from plainly laid out keys, then the same two
// float multiplies: the same bits on every path, for 1 to 3 query heads, head sizes 4 to 128,
// position counts inside, at and across the 64-position blocks; nothing written past n.
TEST(Q8Scores, MatchTheExactIntegerDotOnEveryPath) {
  std::mt19937 rng(29);
  std::uniform_int_distribution<int> byte(-127, 127);
  std::uniform_real_distribution<float> unit(0.001f, 0.05f);
  const std::size_t out_stride = 200;
  for (int hd : {4, 12, 32, 64, 128}) {
    const int max_n = 150, blocks = (max_n + kQ8KeyBlock - 1) / kQ8KeyBlock;
    std::vector<int8_t> plain(std::size_t(max_n) * hd), keys(std::size_t(blocks) * kQ8KeyBlock * hd), q(3 * hd);
    std::vector<float> k_scale(blocks * kQ8KeyBlock), q_scale{0.02f, 0.5f, 3.f};
    for (int p = 0; p < max_n; ++p)
      for (int d = 0; d < hd; ++d) {
        const auto v = static_cast<int8_t>(byte(rng));
        plain[std::size_t(p) * hd + d] = v;
        keys[std::size_t(p / kQ8KeyBlock) * kQ8KeyBlock * hd + (d / 4) * 4 * kQ8KeyBlock + 4 * (p % kQ8KeyBlock) +
             d % 4] = v;
      }
    for (auto& v : q) v = static_cast<int8_t>(byte(rng));
    q[0] = 127, q[1] = -127;  // the extremes, where an unsigned view could overflow
    for (auto& v : k_scale) v = unit(rng);
    for (KernelPath path : supported_paths()) {
      KernelPathScope scope(path);
      for (int sets = 1; sets <= 3; ++sets)
        for (int n : {1, 15, 16, 17, 63, 64, 65, 128, 150}) {
          std::vector<float> out(3 * out_stride, NAN);
          q8_scores(sets, q.data(), hd, q_scale.data(), keys.data(), k_scale.data(), hd, n, out.data(), out_stride);
          for (int s = 0; s < 3; ++s)
            for (int p = 0; p < int(out_stride); ++p) {
              const float got = out[s * out_stride + p];
              if (s >= sets || p >= n) {
                ASSERT_TRUE(std::isnan(got)) << "wrote set " << s << " position " << p << " (sets " << sets << ", n " << n << ")";
                continue;
              }
              int32_t dot = 0;
              for (int d = 0; d < hd; ++d) dot += q[s * hd + d] * plain[std::size_t(p) * hd + d];
              const float want = static_cast<float>(dot) * k_scale[p] * q_scale[s];
              ASSERT_TRUE(same_bits(got, want)) << kernel_path_name(path) << " head_dim " << hd << " sets " << sets
                                                << " n " << n << " set " << s << " p " << p << ": " << got << " vs " << want;
            }
        }
    }
  }
}

// to_fp16 and round_fp16 round as fp32_to_fp16 (to nearest, ties to even) on every path: halfway cases, half
// subnormals, overflow to infinity, signed zeros, lengths off the vector sizes.
TEST(Quantize, ToFp16IsTheSameOnEveryPath) {
  std::mt19937 rng(18);
  std::normal_distribution<float> normal;
  std::vector<float> x = {0.f, -0.f, 1.f, 65504.f, 65520.f, 1e6f, -1e6f, 6e-8f, 3e-8f, 1e-5f, -2.5e-6f,
                          1.00048828125f /* halfway, ties to even: 1 */, 1.00146484375f /* halfway: up */};
  for (int i = 0; i < 70; ++i) x.push_back(normal(rng) * std::pow(10.f, float(i % 9) - 5));
  for (KernelPath p : supported_paths()) {
    KernelPathScope scope(p);
    for (std::size_t n : {x.size(), std::size_t(1), std::size_t(17), std::size_t(31)}) {
      std::vector<uint16_t> got(n + 1, 0xabcd);
      to_fp16(x.data(), got.data(), n);
      for (std::size_t i = 0; i < n; ++i)
        ASSERT_EQ(got[i], fp32_to_fp16(x[i])) << kernel_path_name(p) << " x = " << x[i];
      ASSERT_EQ(got[n], 0xabcd) << "wrote past n " << n;
      // round_fp16: the same rounding of x * scale, kept as float.
      std::vector<float> rounded(x.begin(), x.begin() + n);
      rounded.push_back(NAN);
      round_fp16(rounded.data(), n, 0.75f);
      for (std::size_t i = 0; i < n; ++i)
        ASSERT_TRUE(same_bits(rounded[i], fp16_to_fp32(fp32_to_fp16(x[i] * 0.75f))))
            << kernel_path_name(p) << " round_fp16(" << x[i] << " * 0.75) = " << rounded[i];
      ASSERT_TRUE(std::isnan(rounded[n])) << "round_fp16 wrote past n " << n;
    }
  }
}

// argmax is std::max_element's answer on every path: the first of equal maxima wherever it lies in
// a vector, lengths off the vector sizes, NaNs (skipped; first, the answer 0), infinities, zeros of
// both signs. Nothing past n is read as a candidate (a larger value sits there).
TEST(Elementwise, ArgmaxIsTheFirstMaximumOnEveryPath) {
  std::mt19937 rng(41);
  std::normal_distribution<float> normal;
  std::vector<std::vector<float>> cases;
  for (int n : {1, 7, 16, 17, 33, 1000, 1027}) {
    std::vector<float> x(n);
    for (auto& v : x) v = normal(rng);
    cases.push_back(x);
    if (n > 20) {
      x[n - 3] = x[5] = x[n / 2] = 9.f;  // three equal maxima: the first wins
      cases.push_back(x);
      x[0] = NAN;
      cases.push_back(x);
      x[0] = 1.f, x[4] = NAN, x[n - 1] = INFINITY;
      cases.push_back(x);
    }
  }
  cases.push_back({-INFINITY, -INFINITY, -INFINITY});
  cases.push_back({-1.f, -0.f, 0.f, -0.f});
  cases.push_back(std::vector<float>(40, -3.f));
  for (KernelPath p : supported_paths()) {
    KernelPathScope scope(p);
    for (auto x : cases) {
      const int n = static_cast<int>(x.size());
      const int want = static_cast<int>(std::max_element(x.begin(), x.end()) - x.begin());
      x.push_back(1e30f);
      ASSERT_EQ(argmax(x.data(), n), want) << kernel_path_name(p) << " n " << n;
    }
  }
}

// WAND_CPU names a path; the best one is the widest this CPU runs; a path it lacks, or a name
// that is none, is an error naming the value, and set_kernel_path refuses such a path unchanged.
TEST(KernelPaths, ParsedFromWandCpuAndRefusedByName) {
  EXPECT_TRUE(kernel_path_supported(KernelPath::generic));
  EXPECT_TRUE(kernel_path_supported(best_kernel_path()));
  if (best_kernel_path() == KernelPath::amx) {
    EXPECT_TRUE(kernel_path_supported(KernelPath::avx512));
  }
  if (best_kernel_path() == KernelPath::avx512) {
    EXPECT_TRUE(kernel_path_supported(KernelPath::avx2));
  }
  for (KernelPath p : supported_paths()) {
    auto parsed = parse_kernel_path(kernel_path_name(p));
    ASSERT_TRUE(parsed) << parsed.error().message;
    EXPECT_EQ(*parsed, p);
  }
  auto bad = parse_kernel_path("AVX2");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().message, "WAND_CPU=AVX2: unknown kernel path (generic, avx2, avx512 or amx)");
  for (KernelPath p : {KernelPath::avx2, KernelPath::avx512, KernelPath::amx})
    if (!kernel_path_supported(p)) {
      const KernelPath before = kernel_path();
      EXPECT_FALSE(set_kernel_path(p));
      EXPECT_EQ(kernel_path(), before);
      auto lacking = parse_kernel_path(kernel_path_name(p));
      ASSERT_FALSE(lacking);
      EXPECT_NE(lacking.error().message.find("lacks it"), std::string::npos) << lacking.error().message;
    }
  const char* saved = std::getenv("WAND_CPU");
  const std::string saved_value = saved ? saved : "";
  ::setenv("WAND_CPU", "", 1);
  EXPECT_EQ(*kernel_path_from_env(), best_kernel_path());
  ::setenv("WAND_CPU", "generic", 1);
  EXPECT_EQ(*kernel_path_from_env(), KernelPath::generic);
  ::setenv("WAND_CPU", "neon", 1);
  EXPECT_FALSE(kernel_path_from_env());
  if (saved) {
    ::setenv("WAND_CPU", saved_value.c_str(), 1);
  } else {
    ::unsetenv("WAND_CPU");
  }
}

// A random-weight model of `type` with shapes off the tile (ffn 96, kv heads 2 of 4) and a
// context off the cache's 64-position key blocks.
std::shared_ptr<const Model> random_model(TensorType type, const std::string& name) {
  ModelConfig c;
  c.dim = 64, c.layers = 2, c.heads = 4, c.kv_heads = 2, c.ffn = 96, c.vocab = 300, c.context = 100;
  std::string path = temp_path(name + ".gguf");
  EXPECT_TRUE(write_model(path, random_weights(c, 5), type));
  auto m = Model::load(path);
  std::filesystem::remove(path);
  EXPECT_TRUE(m) << m.error().message;
  return m ? *m : nullptr;
}

class Sequences : public testing::TestWithParam<TensorType> {};

// A prompt prefilled once into sequence 0 and copied into the others; then k sequences decode
// different tokens together, one leaving the batch after two steps and another after four. Each
// step's logits are bit for bit those of the sequence decoded alone in its own context (the
// prompt evaluated there by itself), on both kernel paths and any thread count, for a prompt
// within the first 64-position block of the cache and one past it (copied across blocks).
TEST_P(Sequences, DecodingTogetherEqualsDecodingAlone) {
  auto model = random_model(GetParam(), std::string("seq_") + type_name(GetParam()));
  ASSERT_TRUE(model);
  const std::size_t vocab = model->config().vocab;
  std::vector<Token> long_prompt(70);
  for (std::size_t i = 0; i < long_prompt.size(); ++i) long_prompt[i] = static_cast<Token>(1 + i * 37 % 299);
  for (const std::vector<Token>& prompt : {std::vector<Token>{1, 40, 41, 250, 7, 7, 99}, long_prompt})
  // Every cache type (F16, Q8: the copies and the batch read the same rounded values).
  for (KernelPath path : supported_paths())
    for (auto [threads, cache] : {std::pair{1, CacheType::f32}, {2, CacheType::f32}, {3, CacheType::f32},
                                  {1, CacheType::f16}, {2, CacheType::f16}, {1, CacheType::q8}, {2, CacheType::q8}}) {
      KernelPathScope scope(path);
      const int k = 5;
      Context batch(model, 0, threads, cache);
      ASSERT_TRUE(batch.eval(prompt));
      batch.set_sequences(k);
      for (int i = 1; i < k; ++i) batch.copy_sequence(0, i);
      for (int i = 0; i < k; ++i) EXPECT_EQ(batch.position(i), static_cast<int>(prompt.size()));
      std::vector<std::unique_ptr<Context>> alone;
      for (int i = 0; i < k; ++i) {
        alone.push_back(std::make_unique<Context>(model, 0, 1, cache));
        ASSERT_TRUE(alone.back()->eval(prompt));
      }
      for (int step = 0; step < 6; ++step) {
        std::vector<int> seqs;
        std::vector<Token> next;
        for (int i = 0; i < k; ++i)
          if (!(i == 1 && step >= 2) && !(i == 3 && step >= 4)) seqs.push_back(i), next.push_back(3 + 17 * i + step);
        auto got = batch.decode(seqs, next);
        ASSERT_TRUE(got) << got.error().message;
        ASSERT_EQ(got->size(), seqs.size() * vocab);
        for (std::size_t j = 0; j < seqs.size(); ++j) {
          auto want = alone[seqs[j]]->eval(std::span<const Token>(&next[j], 1));
          ASSERT_TRUE(want);
          for (std::size_t v = 0; v < vocab; ++v)
            ASSERT_TRUE(same_bits((*got)[j * vocab + v], (*want)[v]))
                << "sequence " << seqs[j] << " step " << step << " logit " << v << " threads " << threads
                << (cache == CacheType::f16 ? " f16 cache" : cache == CacheType::q8 ? " q8 cache" : "");
        }
      }
      EXPECT_EQ(batch.position(0), static_cast<int>(prompt.size()) + 6);
      EXPECT_EQ(batch.position(1), static_cast<int>(prompt.size()) + 2);  // left the batch after two steps
      EXPECT_EQ(batch.position(3), static_cast<int>(prompt.size()) + 4);
    }
}

INSTANTIATE_TEST_SUITE_P(Types, Sequences,
                         testing::Values(TensorType::F32, TensorType::F16, TensorType::Q8_0, TensorType::Q4_0),
                         [](const auto& i) { return std::string(type_name(i.param)); });

TEST(Sequences, BadDecodeRequestsGetErrorsNamingTheProblem) {
  auto model = random_model(TensorType::F32, "errors");
  ASSERT_TRUE(model);
  Context ctx(model, 0, 1);
  ctx.set_sequences(2);
  auto error = [&](std::vector<int> seqs, std::vector<Token> tokens) {
    auto r = ctx.decode(seqs, tokens);
    return r ? std::string("(no error)") : r.error().message;
  };
  EXPECT_NE(error({2}, {5}).find("sequence 2 is out of range"), std::string::npos);
  EXPECT_NE(error({1, 1}, {5, 6}).find("listed twice"), std::string::npos);
  EXPECT_NE(error({0}, {300}).find("token id 300"), std::string::npos);
  EXPECT_NE(error({0, 1}, {5}).find("2 sequences for 1 tokens"), std::string::npos);
  std::vector<Token> fill(ctx.capacity(), 5);
  ASSERT_TRUE(ctx.eval(fill));
  EXPECT_NE(error({0}, {5}).find("context full: sequence 0"), std::string::npos);
  EXPECT_TRUE(ctx.decode(std::vector<int>{1}, std::vector<Token>{5}));  // the other sequence has room
}

// The backend's n samples decode as one batch: at temperature 0 they are n copies of the single
// greedy answer; with a temperature, sample i (text, finish, token counts and log-probabilities)
// is what one request seeded sample_seed(seed, i) gives, while samples stop at different points
// (a stop sequence, an end token, max_tokens) and leave the batch.
TEST(BatchedSamples, EqualOneRequestPerSample) {
  std::string path = data("models/stories260K.gguf");
  NEED_FILE(path);
  auto b = open_backend("local:" + path, {.threads = 2});
  ASSERT_TRUE(b) << b.error().message;
  GenerateOptions o;
  o.max_tokens = 30;
  o.logprobs = true;
  o.top_logprobs = 2;
  auto one = (*b)->complete("Once upon a time", o);
  ASSERT_TRUE(one) << one.error().message;
  o.n = 8;
  auto eight = (*b)->complete("Once upon a time", o);
  ASSERT_TRUE(eight) << eight.error().message;
  ASSERT_EQ(eight->size(), 8u);
  for (auto& c : *eight) {
    EXPECT_EQ(c.text, (*one)[0].text);
    ASSERT_EQ(c.logprobs.size(), (*one)[0].logprobs.size());
    for (std::size_t k = 0; k < c.logprobs.size(); ++k) EXPECT_EQ(c.logprobs[k].logprob, (*one)[0].logprobs[k].logprob);
  }

  o.temperature = 1.0f, o.seed = 77, o.n = 6, o.max_tokens = 40, o.stop = {"."};
  auto many = (*b)->complete("Once upon a time", o);
  ASSERT_TRUE(many) << many.error().message;
  ASSERT_EQ(many->size(), 6u);
  std::set<int> lengths;
  for (int i = 0; i < o.n; ++i) {
    GenerateOptions u = o;
    u.n = 1, u.seed = sample_seed(o.seed, i);
    auto single = (*b)->complete("Once upon a time", u);
    ASSERT_TRUE(single) << single.error().message;
    const Completion &got = (*many)[i], &want = (*single)[0];
    EXPECT_EQ(got.text, want.text) << "sample " << i;
    EXPECT_EQ(got.finish_reason, want.finish_reason) << "sample " << i;
    EXPECT_EQ(got.completion_tokens, want.completion_tokens) << "sample " << i;
    EXPECT_EQ(got.prompt_tokens, want.prompt_tokens);
    ASSERT_EQ(got.logprobs.size(), want.logprobs.size()) << "sample " << i;
    for (std::size_t k = 0; k < got.logprobs.size(); ++k) {
      EXPECT_EQ(got.logprobs[k].token, want.logprobs[k].token);
      EXPECT_EQ(got.logprobs[k].logprob, want.logprobs[k].logprob) << "sample " << i << " token " << k;
    }
    lengths.insert(got.completion_tokens);
  }
  EXPECT_GT(lengths.size(), 1u) << "the samples should finish at different points";
}

// More samples than one batch holds (16) decode in several batches, each from the prompt's cache.
TEST(BatchedSamples, MoreThanOneBatchStartFromThePromptEachTime) {
  std::string path = data("models/stories260K.gguf");
  NEED_FILE(path);
  auto b = open_backend("local:" + path, {.threads = 1});
  ASSERT_TRUE(b) << b.error().message;
  GenerateOptions o;
  o.max_tokens = 12, o.temperature = 1.0f, o.seed = 9, o.n = 18;
  auto many = (*b)->complete("Once upon a time", o);
  ASSERT_TRUE(many) << many.error().message;
  ASSERT_EQ(many->size(), 18u);
  for (int i : {0, 15, 16, 17}) {
    GenerateOptions u = o;
    u.n = 1, u.seed = sample_seed(o.seed, i);
    auto single = (*b)->complete("Once upon a time", u);
    ASSERT_TRUE(single) << single.error().message;
    EXPECT_EQ((*many)[i].text, (*single)[0].text) << "sample " << i;
  }
}

// Grammar-constrained sampling keeps its own matcher per sample: each batched sample is a
// sentence of the grammar so far and equals its unbatched twin.
TEST(BatchedSamples, KeepAGrammarPerSample) {
  std::string path = models("wand-pot.gguf");
  NEED_FILE(path);
  auto b = open_backend("local:" + path, {.threads = 1});
  ASSERT_TRUE(b) << b.error().message;
  auto pot = Grammar::load("pot");
  ASSERT_TRUE(pot) << pot.error().message;
  GenerateOptions o;
  o.max_tokens = 60, o.temperature = 1.2f, o.seed = 3, o.n = 4, o.grammar = *pot;
  const std::string prompt = "Question: Tom has 3 boxes of 12 pencils and gives away 5. How many are left?\nProgram:\n";
  auto many = (*b)->complete(prompt, o);
  ASSERT_TRUE(many) << many.error().message;
  for (int i = 0; i < o.n; ++i) {
    GenerateOptions u = o;
    u.n = 1, u.seed = sample_seed(o.seed, i);
    auto single = (*b)->complete(prompt, u);
    ASSERT_TRUE(single) << single.error().message;
    EXPECT_EQ((*many)[i].text, (*single)[0].text) << "sample " << i;
    GrammarMatcher m(*pot);
    EXPECT_TRUE(m.accept((*many)[i].text)) << "sample " << i << " leaves the grammar: " << (*many)[i].text;
  }
}

}  // namespace

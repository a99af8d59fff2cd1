// Numeric kernels of the embedded engine: half floats, the Q8_0/Q4_0 block formats (as ggml
// lays them out) and the products of weight matrices with activations. Activations meeting
// quantized weights are quantized to Q8_0 first, as ggml does, so integer dots do the work and
// results agree with llama.cpp's. Matrix products are register-tiled over (rows x tokens) so a
// prompt, or several sequences decoded together, cost matrix-matrix work, not T matrix-vector
// passes.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

#include "llm/gguf.h"

namespace wand::llm {

inline float fp16_to_fp32(uint16_t h) {
  uint32_t sign = (h & 0x8000u) << 16, exp = (h >> 10) & 0x1f, mant = h & 0x3ff, bits;
  if (exp == 0) {
    if (mant == 0) {
      bits = sign;
    } else {  // subnormal: normalize
      exp = 127 - 15 + 1;
      while (!(mant & 0x400)) {
        mant <<= 1;
        --exp;
      }
      bits = sign | (exp << 23) | ((mant & 0x3ff) << 13);
    }
  } else if (exp == 31) {
    bits = sign | 0x7f800000u | (mant << 13);
  } else {
    bits = sign | ((exp + 127 - 15) << 23) | (mant << 13);
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

// Round to nearest even, as F16C's conversion does.
inline uint16_t fp32_to_fp16(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  uint32_t sign = (x >> 16) & 0x8000u;
  uint32_t absx = x & 0x7fffffffu;
  if (absx >= 0x7f800000u) return static_cast<uint16_t>(sign | 0x7c00u | (absx > 0x7f800000u ? 0x200u : 0));
  if (absx >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);  // overflow to inf
  if (absx < 0x38800000u) {  // subnormal or zero in half
    float a;
    std::memcpy(&a, &absx, 4);
    float scaled = a * 16777216.0f;  // 2^24: half subnormal unit is 2^-24
    uint32_t m = static_cast<uint32_t>(scaled);
    float rem = scaled - static_cast<float>(m);
    if (rem > 0.5f || (rem == 0.5f && (m & 1))) ++m;
    return static_cast<uint16_t>(sign | m);
  }
  uint32_t mant = absx & 0x7fffffu;
  uint32_t exp = (absx >> 23) - 127 + 15;
  uint32_t h = (exp << 10) | (mant >> 13);
  uint32_t rest = mant & 0x1fffu;
  if (rest > 0x1000u || (rest == 0x1000u && (h & 1))) ++h;
  return static_cast<uint16_t>(sign | h);
}

struct BlockQ8_0 {
  uint16_t d;  // fp16 scale
  int8_t qs[32];
};
struct BlockQ4_0 {
  uint16_t d;
  uint8_t qs[16];  // element j in the low nibble of qs[j], element j+16 in the high nibble
};
static_assert(sizeof(BlockQ8_0) == 34 && sizeof(BlockQ4_0) == 18);

// n % 32 == 0 values to n / 32 blocks, as ggml quantizes (scale amax / 127 in fp16, quants
// rounded half to even); dispatched, every path bit for bit the same.
void quantize_q8_0(const float* x, BlockQ8_0* y, std::size_t n);
void dequantize_row(TensorType type, const uint8_t* row, float* out, std::size_t n);
// Quantizes f32 weights to `type` (for the writer and tests); `out` gets type_bytes(type, n).
void quantize_row(TensorType type, const float* x, uint8_t* out, std::size_t n);

float dot_f32(const float* a, const float* b, std::size_t n);

// The form activations take to meet weights of `type` in matmul_rows: F32 and F16 as the
// weights, Q8_0 for quantized weights (integer dots, as ggml does).
TensorType dot_type(TensorType type);

// y[t * y_stride + r] = (row r of W) . (activation row t), for rows r0 <= r < r1 and tokens
// 0 <= t < T. W: rows of `cols` weights of `type`, `w_stride` bytes apart; X: T rows of `cols`
// values in dot_type(type), `x_stride` bytes apart (quantized types need cols % 32 == 0).
// The SIMD path holds a tile of up to 6 rows x 4 tokens (AVX2: 4 x 2; 8 x 1 for a single token) in
// registers, loading each weight block once per tile and each activation block once per tile
// row, and reduces each sum horizontally once. Every output's sum runs in the same order
// whatever tile holds it, so a token's results never depend on which tokens share its batch:
// decoding k sequences together gives bit for bit what decoding each alone gives.
void matmul_rows(TensorType type, const uint8_t* w, std::size_t w_stride, int cols, int r0, int r1,
                 const uint8_t* x, std::size_t x_stride, int T, float* y, std::size_t y_stride);

// ---- weights regrouped several rows at a time (the form the engine holds them in) ----
// Every matrix is repacked at load (as llama.cpp repacks Q4_0, its "q4_0_8x8") so the products
// need no horizontal sums and several rows share every activation load.
// Q8_0 and Q4_0: rows go in groups of 16 (the last padded with zero rows); a group is stored
// block by block, each block being the 16 rows' fp16 scales (32 bytes) and then their quants 4
// bytes at a time: bytes 4c to 4c+3 of row 0, of row 1, ..., of row 15, for c = 0, 1, ... So one
// 512-bit load (AVX2: each 256-bit half) holds four quants of each of 16 (8) rows and one integer
// multiply-add (VNNI vpdpbusd; AVX2 maddubs) against four activation bytes broadcast adds to all
// their sums at once. A group is one sequential stream: with two 8-row groups side by side a
// 512-bit tile read two, and one token of a 134M model ran at 280 tokens/s for Q8_0 and 400 for
// Q4_0 where one stream gives 340-365 and 585-615 (one thread). Q8_0's quants are stored plus
// 128 (q ^ 0x80), the unsigned operand VNNI wants; Q4_0's nibbles as in the file. As many bytes
// as the blocks (18 or 34 per row and 32 weights) plus the padding rows.
// F32 and F16: rows go in groups of 16 (F32) or 128 (F16), padded with zero rows, each group
// stored column by column: the group's values of column 0, then of column 1, ... So one 512-bit
// load (two 256-bit ones) holds a column of 16 rows and meets one activation broadcast. A single
// token reads F16 as one sequential stream of 256-byte columns (128 rows, 8 sums): with 16-row
// groups its tile read 4 streams of 32-byte columns, which the hardware prefetchers follow too
// slowly on a 134M model's short matrices (33 GB/s against 43, one thread). A last F16 group of
// fewer rows costs its padding in memory only: the tiles read the cache lines of the rows that
// exist. They meet F32 activations (packed_dot_type): F16 weights are converted once per tile,
// not the activations once per row.
bool packable(TensorType type);  // every type
int packed_group_rows(TensorType type);  // 16 for F32, Q8_0 and Q4_0, 128 for F16
// The form activations take to meet packed weights of `type`: F32 for F32/F16, Q8_0 otherwise.
TensorType packed_dot_type(TensorType type);
std::size_t packed_bytes(TensorType type, int rows, int cols);
// Packs `rows` rows of `cols` weights (quantized: cols % 32 == 0), `w_stride` bytes apart, into
// `out` (packed_bytes(type, rows, cols) bytes).
void pack_rows(TensorType type, const uint8_t* w, std::size_t w_stride, int rows, int cols, uint8_t* out);
// matmul_rows over a packed matrix of `rows` rows: y[t * y_stride + r] for r0 <= r < r1 and
// t < T, r0 a multiple of packed_group_rows(type) (quantized) or of 16 (floats); X: T rows in
// packed_dot_type(type), `x_stride` bytes apart. Quantized tiles are 8 or 16 rows x up to 8
// tokens (4 on AVX2; on the amx path, 16 x up to 16 on AMX tiles from 8 tokens); float tiles 64
// rows x 5 tokens (AVX2: 16 x 4), a single token's 128 rows (AVX-512 F32: 64), each output one
// chain of multiply-adds in column order. Per output the sum runs in one order whatever the tile,
// so as with matmul_rows a token's results never depend on which tokens share its batch.
void matmul_packed(TensorType type, const uint8_t* packed, int rows, int cols, int r0, int r1, const uint8_t* x,
                   std::size_t x_stride, int T, float* y, std::size_t y_stride);

// out[j] = sum over k < count of (coef[k] * scale) * rows[k * stride + j], for j < width <= 64:
// attention's two halves (a head's scores for 64 positions from the transposed key cache, and
// its output for 64 dimensions from the value cache), the sums held in registers. Each out[j] is
// the same whatever the width it was computed in.
void weighted_rows(const float* coef, float scale, const float* rows, std::size_t stride, int count, int width,
                   float* out);

// As weighted_rows over rows of fp16 values (an F16 KV cache), each converted as it is read.
void weighted_rows_f16(const float* coef, float scale, const uint16_t* rows, std::size_t stride, int count, int width,
                       float* out);
// weighted_rows for `sets` coefficient vectors over the same rows (the query heads that share a
// key/value head): out[s * out_stride + j] = sum over k of (coef[s * coef_stride + k] * scale[s]) *
// rows[k * stride + j]. Each output is bit for bit what weighted_rows gives for its set alone; the
// AVX-512 path reads each row once for two sets, so twice the multiply-add chains share the loads.
void weighted_row_sets(int sets, const float* coef, std::size_t coef_stride, const float* scale, const float* rows,
                       std::size_t stride, int count, int width, float* out, std::size_t out_stride);
void weighted_row_sets_f16(int sets, const float* coef, std::size_t coef_stride, const float* scale,
                           const uint16_t* rows, std::size_t stride, int count, int width, float* out,
                           std::size_t out_stride);
// x (n floats) as int8 with one scale d = amax / 127: q[i] = x[i] * (1 / d) rounded to nearest
// even; returns d (0 for all zeros, whose bytes are 0). The same bits on every path: a Q8
// cache's keys, values and queries.
float quantize_i8(const float* x, int n, int8_t* q);

// A Q8 KV cache's keys (CacheType::q8) are int8 in blocks of kQ8KeyBlock positions, each block
// [head_dim / 4][kQ8KeyBlock][4] bytes: dimensions 4j..4j+3 of position p at
// (p / kQ8KeyBlock) * kQ8KeyBlock * head_dim + j * 4 * kQ8KeyBlock + 4 * (p % kQ8KeyBlock), so one
// vector of keys is four dimensions of consecutive positions (the layout VNNI's byte dot takes).
constexpr int kQ8KeyBlock = 64;
// Attention scores over such keys for `sets` query heads quantized to int8 (q: head s at
// q + s * q_stride, head_dim bytes; its scale q_scale[s]): out[s * out_stride + p] =
// (float(sum over d of q[s][d] * key[d][p]) * k_scale[p]) * q_scale[s] for p < n. head_dim: a
// multiple of 4. The integer dot is exact, so every path gives the same bits; on AVX-512 one
// multiply-add of bytes (VNNI) serves 16 positions x 4 dimensions (an F16 cache's scores take 4
// float multiply-adds and their fp16 conversions for as many products).
void q8_scores(int sets, const int8_t* q, std::size_t q_stride, const float* q_scale, const int8_t* keys,
               const float* k_scale, int head_dim, int n, float* out, std::size_t out_stride);

// A Q8 cache's values are int8 in pairs of positions: dimension d of position p at
// (p / 2) * 2 * head_dim + 2 * d + p % 2, so two positions' bytes of a dimension sit side by side
// (the pairs VNNI's 16-bit dot takes).
// Attention's weighted sums over such values for `sets` heads whose weights (probabilities times
// each value's scale) are int16 (softmax_i16): out[s * out_stride + d] = scale[s] * S, where S adds,
// chunk by chunk of kQ8ValueChunk positions in order, float(the int32 sum over the chunk of
// c[s * c_stride + p] * value[p][d]) for p < n. c[s][n] must be 0 when n is odd (softmax_i16
// writes it). The int32 sums are exact (|c| <= 32767, |value| <= 127: a chunk's sum stays below
// 2^31), so every path gives the same bits; on AVX-512 one multiply-add of 16-bit pairs (VNNI)
// serves 16 dimensions x 2 positions, where float sums need a conversion and a multiply-add per
// 16 dimensions of one position.
constexpr int kQ8ValueChunk = 512;
void q8_values(int sets, const int16_t* c, std::size_t c_stride, const float* scale, const int8_t* values,
               int head_dim, int n, float* out, std::size_t out_stride);
// One position p's key and value of a head (head_dim floats each, a multiple of 4) into a Q8
// cache: each as quantize_i8 rounds it, the key's bytes where q8_scores reads them from `keys` (the
// head's keys from position 0) and its scale at k_scale[p], the value's where q8_values reads them
// from `values`, its scale at v_scale[p]. Nothing else is written.
void q8_store(const float* key, const float* value, int head_dim, int p, int8_t* keys, float* k_scale, int8_t* values,
              float* v_scale);
// For each of `sets` rows of n scores (the query heads sharing a key/value head; row s at
// x + s * x_stride): softmax's numerators as softmax_exp (x[i] = e^(x[i] * scale - max), in place),
// then the weights w[i] = x[i] * mul[i] as int16 with one scale d = max |w| / 32767 (row s at
// q + s * q_stride): q[i] = w[i] * (1 / d) rounded to nearest even, q[n] = 0 when n is odd; and
// out[s] = d / (the numerators' sum), the factor q8_values' sums take. Bit for bit softmax_exp
// and then that rounding, on every path, each row as if alone; the SIMD paths take two rows'
// passes together, so that their reductions' latencies overlap.
void softmax_i16(int sets, float* x, std::size_t x_stride, int n, float scale, const float* mul, int16_t* q,
                 std::size_t q_stride, float* out);
// y[i] = fp32_to_fp16(x[i]) (round to nearest even), every path bit for bit the same.
void to_fp16(const float* x, uint16_t* y, std::size_t n);
// x[i] = x[i] * scale rounded to the nearest fp16 value (kept as float), as to_fp16 rounds:
// what ggml's F16 products do to their float operand.
void round_fp16(float* x, std::size_t n, float scale);

// Softmax's numerators in place, of the scores times `scale` (ggml's soft_max_ext scale): with
// s[i] = x[i] * scale rounded to float, x[i] = e^(s[i] - max s); returns their sum (n >= 1). The
// SIMD paths compute e^x by a polynomial within 2 ulp of the true value (std::exp on the generic
// path).
float softmax_exp(float* x, int n, float scale = 1.0f);
// SwiGLU's gate: g[i] = silu(g[i]) * u[i] = g[i] / (1 + e^-g[i]) * u[i].
void silu_mul(float* g, const float* u, std::size_t n);

// The index of the first largest of x[0..n) (n >= 1), as std::max_element finds it: NaN never
// compares greater, so one is skipped, or answers 0 when it is x[0]. Greedy decoding's pick.
int argmax(const float* x, int n);

// RMSNorm (Zhang & Sennrich 2019) as ggml computes it: out[i] = x[i] * s * w[i], with
// s = 1 / sqrt(mean of x[i]^2 + eps), each square rounded to float and summed in double.
void rmsnorm(const float* x, const float* w, float* out, int n, float eps);
// Rotary position embedding (RoFormer, Su et al. 2021) on adjacent pairs, as llama.cpp's
// "normal" mode: for each of n_heads heads of head_dim values in `v`, the first rope_dim values
// (pairs (2i, 2i+1)) become (a cos - b sin, a sin + b cos). cos2/sin2: rope_dim values, each
// pair's cosine twice and its sine as (-sin, sin), so a vector rotates with two products and a
// pair swap; the float products and sums are those of the formula, so every path gives the same
// bits.
void rope(float* v, int n_heads, int head_dim, int rope_dim, const float* cos2, const float* sin2);

// Which implementation the kernels above run, chosen at run time by CPUID rather than by the
// build machine's flags, so one binary runs on any x86-64 CPU at its best:
//   generic  plain C++ for the baseline instruction set (any CPU; the reference the others are
//            tested against),
//   avx2     AVX2 + FMA + F16C, 256-bit lanes (packed float tiles of 16 rows x 4 tokens),
//   avx512   AVX-512F/BW/VL + VNNI (int8 dots in one instruction), 512-bit float lanes (packed
//            float tiles of 64 rows x 5 tokens) in its 32 registers,
//   amx      avx512, with the packed Q8_0/Q4_0 products of 8 or more tokens (a prompt, 8 or
//            more sequences decoded together) on AMX's int8 tile unit; bit for bit what avx512
//            gives.
//            Needs AMX-TILE/INT8, the OS's tile state (XCR0) and Linux's permission (arch_prctl).
// Paths differ in rounding only (FMA, summation order); every one is tested against a
// double-precision reference. AVX-512 BF16 and AMX's bf16 tiles are not used: they would round
// F32/F16 weights to bf16 (llama.cpp's AMX kernels, too, are for quantized types only).
enum class KernelPath { generic, avx2, avx512, amx };
const char* kernel_path_name(KernelPath path);  // "generic", "avx2", "avx512", "amx"
// Whether this build carries `path` and this CPU and OS run it.
bool kernel_path_supported(KernelPath path);
KernelPath best_kernel_path();
// "generic", "avx2", "avx512" or "amx"; an unknown name or a path this CPU lacks is an error
// naming it.
Result<KernelPath> parse_kernel_path(std::string_view name);
// The WAND_CPU environment variable parsed as above; unset or empty gives best_kernel_path().
// The CLI checks it at start (exit 2 on a bad value); a library user that does not gets, at the
// first kernel call, a warning on stderr and the best path.
Result<KernelPath> kernel_path_from_env();
// Process-wide; an unsupported path is an error and changes nothing. Tests and benchmarks force
// each path in turn.
VoidResult set_kernel_path(KernelPath path);
KernelPath kernel_path();  // the path in use (WAND_CPU or the best, until set)

}  // namespace wand::llm

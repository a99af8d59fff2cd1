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
// The SIMD path holds a tile of up to 4 rows x 4 tokens (8 x 1 for a single token) in
// registers, loading each weight block once per tile and each activation block once per tile
// row, and reduces each sum horizontally once. Every output's sum runs in the same order
// whatever tile holds it, so a token's results never depend on which tokens share its batch:
// decoding k sequences together gives bit for bit what decoding each alone gives.
void matmul_rows(TensorType type, const uint8_t* w, std::size_t w_stride, int cols, int r0, int r1,
                 const uint8_t* x, std::size_t x_stride, int T, float* y, std::size_t y_stride);

// Which implementation matmul_rows runs. `simd` is the hand-written path for the instruction
// set this file was compiled for (simd_isa(); with WAND_NATIVE, the build machine's), `portable`
// plain C++ that runs anywhere; a build without AVX2/FMA/F16C has only the portable path, and
// asking for simd there gives portable. Process-wide; tests and benchmarks force the fallback.
enum class KernelPath { simd, portable };
void set_kernel_path(KernelPath path);
KernelPath kernel_path();
// "avx512" (AVX-512F/VL, with VNNI for int8 dots where present), "avx2", or "portable".
const char* simd_isa();

}  // namespace wand::llm

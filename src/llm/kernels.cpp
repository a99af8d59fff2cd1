#include "llm/kernels.h"

#include <algorithm>
#include <cmath>

#if defined(__AVX2__)
#include <immintrin.h>
#endif

namespace wand::llm {

void quantize_q8_0(const float* x, BlockQ8_0* y, std::size_t n) {
  for (std::size_t b = 0; b < n / 32; ++b) {
    const float* v = x + b * 32;
    float amax = 0;
    for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(v[j]));
    // As ggml's AVX path: scale 127/amax and round half to even.
    const float d = amax / 127.f;
    const float id = amax != 0.f ? 127.f / amax : 0.f;
    y[b].d = fp32_to_fp16(d);
    for (int j = 0; j < 32; ++j) y[b].qs[j] = static_cast<int8_t>(std::nearbyint(v[j] * id));
  }
}

static void quantize_q4_0(const float* x, BlockQ4_0* y, std::size_t n) {
  for (std::size_t b = 0; b < n / 32; ++b) {
    const float* v = x + b * 32;
    float amax = 0, max = 0;
    for (int j = 0; j < 32; ++j)
      if (std::fabs(v[j]) > amax) {
        amax = std::fabs(v[j]);
        max = v[j];
      }
    const float d = max / -8.f;
    const float id = d != 0.f ? 1.f / d : 0.f;
    y[b].d = fp32_to_fp16(d);
    for (int j = 0; j < 16; ++j) {
      auto q = [&](float f) { return static_cast<uint8_t>(std::min(15, static_cast<int>(f * id + 8.5f))); };
      y[b].qs[j] = static_cast<uint8_t>(q(v[j]) | (q(v[j + 16]) << 4));
    }
  }
}

void quantize_row(TensorType type, const float* x, uint8_t* out, std::size_t n) {
  switch (type) {
    case TensorType::F32: std::memcpy(out, x, n * 4); break;
    case TensorType::F16: {
      auto* h = reinterpret_cast<uint16_t*>(out);
      for (std::size_t i = 0; i < n; ++i) h[i] = fp32_to_fp16(x[i]);
      break;
    }
    case TensorType::Q8_0: quantize_q8_0(x, reinterpret_cast<BlockQ8_0*>(out), n); break;
    case TensorType::Q4_0: quantize_q4_0(x, reinterpret_cast<BlockQ4_0*>(out), n); break;
  }
}

void dequantize_row(TensorType type, const uint8_t* row, float* out, std::size_t n) {
  switch (type) {
    case TensorType::F32: std::memcpy(out, row, n * 4); break;
    case TensorType::F16: {
      auto* h = reinterpret_cast<const uint16_t*>(row);
      for (std::size_t i = 0; i < n; ++i) out[i] = fp16_to_fp32(h[i]);
      break;
    }
    case TensorType::Q8_0: {
      auto* b = reinterpret_cast<const BlockQ8_0*>(row);
      for (std::size_t k = 0; k < n / 32; ++k) {
        float d = fp16_to_fp32(b[k].d);
        for (int j = 0; j < 32; ++j) out[k * 32 + j] = d * b[k].qs[j];
      }
      break;
    }
    case TensorType::Q4_0: {
      auto* b = reinterpret_cast<const BlockQ4_0*>(row);
      for (std::size_t k = 0; k < n / 32; ++k) {
        float d = fp16_to_fp32(b[k].d);
        for (int j = 0; j < 16; ++j) {
          out[k * 32 + j] = d * ((b[k].qs[j] & 0x0f) - 8);
          out[k * 32 + j + 16] = d * ((b[k].qs[j] >> 4) - 8);
        }
      }
      break;
    }
  }
}

// The loops below are written for the compiler's vectorizer (this file builds with -O3 and,
// by default, -march=native): independent partial sums, no early exits.
float dot_f32(const float* a, const float* b, std::size_t n) {
  float acc[16] = {};
  std::size_t i = 0;
  for (; i + 16 <= n; i += 16)
    for (int j = 0; j < 16; ++j) acc[j] += a[i + j] * b[i + j];
  float s = 0;
  for (int j = 0; j < 16; ++j) s += acc[j];
  for (; i < n; ++i) s += a[i] * b[i];
  return s;
}

#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
// Hand-written AVX2 paths, as ggml's: the vectorizer cannot see that a block's integer dot
// fits maddubs (u8 x s8 pairs into s16, exact for |q| <= 127 ... 128) nor use F16C for scales.
namespace {
inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}
inline float half(uint16_t h) { return _cvtsh_ss(h); }
// Sum of the 32 products of signed bytes a[i]*b[i], as 8 int32 lanes turned to float.
inline __m256 dot_i8x32(__m256i a, __m256i b) {
  const __m256i ax = _mm256_sign_epi8(a, a);  // |a| as unsigned bytes
  const __m256i sb = _mm256_sign_epi8(b, a);  // b with a's sign
#if defined(__AVXVNNI__)
  return _mm256_cvtepi32_ps(_mm256_dpbusd_avx_epi32(_mm256_setzero_si256(), ax, sb));
#elif defined(__AVX512VNNI__) && defined(__AVX512VL__)
  return _mm256_cvtepi32_ps(_mm256_dpbusd_epi32(_mm256_setzero_si256(), ax, sb));
#else
  const __m256i pairs = _mm256_maddubs_epi16(ax, sb);
  return _mm256_cvtepi32_ps(_mm256_madd_epi16(pairs, _mm256_set1_epi16(1)));
#endif
}
}  // namespace

float dot_f16(const uint16_t* a, const uint16_t* b, std::size_t n) {
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  std::size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    auto load = [](const uint16_t* p) { return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))); };
    acc0 = _mm256_fmadd_ps(load(a + i), load(b + i), acc0);
    acc1 = _mm256_fmadd_ps(load(a + i + 8), load(b + i + 8), acc1);
  }
  float s = hsum(_mm256_add_ps(acc0, acc1));
  for (; i < n; ++i) s += half(a[i]) * half(b[i]);
  return s;
}

float dot_q8_0(const BlockQ8_0* w, const BlockQ8_0* x, std::size_t blocks) {
  auto block = [&](std::size_t k, __m256 acc) {
    const __m256 d = _mm256_set1_ps(half(w[k].d) * half(x[k].d));
    const __m256i qw = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w[k].qs));
    const __m256i qx = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[k].qs));
    return _mm256_fmadd_ps(d, dot_i8x32(qw, qx), acc);
  };
  // Two accumulators, so consecutive blocks do not wait on each other's multiply-add.
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  std::size_t k = 0;
  for (; k + 2 <= blocks; k += 2) {
    acc0 = block(k, acc0);
    acc1 = block(k + 1, acc1);
  }
  if (k < blocks) acc0 = block(k, acc0);
  return hsum(_mm256_add_ps(acc0, acc1));
}

float dot_q4_0(const BlockQ4_0* w, const BlockQ8_0* x, std::size_t blocks) {
  __m256 acc = _mm256_setzero_ps();
  const __m256i low = _mm256_set1_epi8(0x0f), eight = _mm256_set1_epi8(8);
  for (std::size_t k = 0; k < blocks; ++k) {
    const __m256 d = _mm256_set1_ps(half(w[k].d) * half(x[k].d));
    // Elements 0-15 from the low nibbles, 16-31 from the high ones, each minus 8.
    const __m128i packed = _mm_loadu_si128(reinterpret_cast<const __m128i*>(w[k].qs));
    __m256i qw = _mm256_set_m128i(_mm_srli_epi16(packed, 4), packed);
    qw = _mm256_sub_epi8(_mm256_and_si256(qw, low), eight);
    const __m256i qx = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[k].qs));
    acc = _mm256_fmadd_ps(d, dot_i8x32(qw, qx), acc);
  }
  return hsum(acc);
}

#else  // portable versions, written for the vectorizer

float dot_f16(const uint16_t* a, const uint16_t* b, std::size_t n) {
  float acc[16] = {};
  std::size_t i = 0;
  for (; i + 16 <= n; i += 16)
    for (int j = 0; j < 16; ++j) acc[j] += fp16_to_fp32(a[i + j]) * fp16_to_fp32(b[i + j]);
  float s = 0;
  for (int j = 0; j < 16; ++j) s += acc[j];
  for (; i < n; ++i) s += fp16_to_fp32(a[i]) * fp16_to_fp32(b[i]);
  return s;
}

float dot_q8_0(const BlockQ8_0* w, const BlockQ8_0* x, std::size_t blocks) {
  float s = 0;
  for (std::size_t k = 0; k < blocks; ++k) {
    int32_t acc = 0;
    for (int j = 0; j < 32; ++j) acc += static_cast<int16_t>(w[k].qs[j]) * static_cast<int16_t>(x[k].qs[j]);
    s += static_cast<float>(acc) * (fp16_to_fp32(w[k].d) * fp16_to_fp32(x[k].d));
  }
  return s;
}

float dot_q4_0(const BlockQ4_0* w, const BlockQ8_0* x, std::size_t blocks) {
  float s = 0;
  for (std::size_t k = 0; k < blocks; ++k) {
    int32_t acc = 0;
    for (int j = 0; j < 16; ++j) {
      acc += ((w[k].qs[j] & 0x0f) - 8) * x[k].qs[j];
      acc += ((w[k].qs[j] >> 4) - 8) * x[k].qs[j + 16];
    }
    s += static_cast<float>(acc) * (fp16_to_fp32(w[k].d) * fp16_to_fp32(x[k].d));
  }
  return s;
}

#endif

}  // namespace wand::llm

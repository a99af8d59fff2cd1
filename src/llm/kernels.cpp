#include "llm/kernels.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>

#include <fmt/core.h>

#include "llm/kernels_isa.h"

#if defined(WAND_KERNELS_AMX)
#include <cpuid.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

namespace wand::llm {

static void portable_quantize_q8_0(const float* x, BlockQ8_0* y, std::size_t n) {
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

// ---- the generic path, written for the compiler's vectorizer (this file builds with -O3 for the
// baseline instruction set, so it runs on any CPU): independent partial sums, no early exits ----

float dot_f32(const float* a, const float* b, std::size_t n) {
  float acc[16] = {};
  std::size_t i = 0;
  for (; i + 16 <= n; i += 16)
    for (int j = 0; j < 16; ++j) acc[j] += a[i + j] * b[i + j];
  // Pairwise, so the vectorizer reduces in a few shuffles (a running sum of 16 was a chain of
  // 16 dependent adds: most of the time of attention's short dots).
  for (int w = 8; w >= 1; w /= 2)
    for (int j = 0; j < w; ++j) acc[j] += acc[j + w];
  float s = acc[0];
  for (; i < n; ++i) s += a[i] * b[i];
  return s;
}

namespace {

float portable_f16(const uint16_t* a, const uint16_t* b, std::size_t n) {
  float acc[16] = {};
  std::size_t i = 0;
  for (; i + 16 <= n; i += 16)
    for (int j = 0; j < 16; ++j) acc[j] += fp16_to_fp32(a[i + j]) * fp16_to_fp32(b[i + j]);
  float s = 0;
  for (int j = 0; j < 16; ++j) s += acc[j];
  for (; i < n; ++i) s += fp16_to_fp32(a[i]) * fp16_to_fp32(b[i]);
  return s;
}

float portable_q8_0(const BlockQ8_0* w, const BlockQ8_0* x, std::size_t blocks) {
  float s = 0;
  for (std::size_t k = 0; k < blocks; ++k) {
    int32_t acc = 0;
    for (int j = 0; j < 32; ++j) acc += static_cast<int16_t>(w[k].qs[j]) * static_cast<int16_t>(x[k].qs[j]);
    s += static_cast<float>(acc) * (fp16_to_fp32(w[k].d) * fp16_to_fp32(x[k].d));
  }
  return s;
}

float portable_q4_0(const BlockQ4_0* w, const BlockQ8_0* x, std::size_t blocks) {
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

// One dot per (row, token): the fallback, and the reference the tiles are tested against.
void portable_rows(TensorType type, const uint8_t* w, std::size_t ws, int cols, int r0, int r1, const uint8_t* x,
                   std::size_t xs, int T, float* y, std::size_t ys) {
  const std::size_t blocks = cols / 32;
  for (int r = r0; r < r1; ++r) {
    const uint8_t* wr = w + ws * r;
    for (int t = 0; t < T; ++t) {
      const uint8_t* xt = x + xs * t;
      float s = 0;
      switch (type) {
        case TensorType::F32:
          s = dot_f32(reinterpret_cast<const float*>(wr), reinterpret_cast<const float*>(xt), cols);
          break;
        case TensorType::F16:
          s = portable_f16(reinterpret_cast<const uint16_t*>(wr), reinterpret_cast<const uint16_t*>(xt), cols);
          break;
        case TensorType::Q8_0:
          s = portable_q8_0(reinterpret_cast<const BlockQ8_0*>(wr), reinterpret_cast<const BlockQ8_0*>(xt), blocks);
          break;
        case TensorType::Q4_0:
          s = portable_q4_0(reinterpret_cast<const BlockQ4_0*>(wr), reinterpret_cast<const BlockQ8_0*>(xt), blocks);
          break;
      }
      y[ys * t + r] = s;
    }
  }
}

inline float as_float(float v) { return v; }
inline float as_float(uint16_t h) { return fp16_to_fp32(h); }

template <class E>
void generic_weighted_rows(const float* coef, float scale, const E* rows, std::size_t stride, int count, int width,
                           float* out) {
  float acc[64] = {};
  if (width == 64) {  // a constant width, so the vectorizer keeps the sums in registers
    for (int k = 0; k < count; ++k)
      for (int j = 0; j < 64; ++j) acc[j] += coef[k] * scale * as_float(rows[std::size_t(k) * stride + j]);
  } else {
    for (int k = 0; k < count; ++k)
      for (int j = 0; j < width; ++j) acc[j] += coef[k] * scale * as_float(rows[std::size_t(k) * stride + j]);
  }
  std::copy_n(acc, width, out);
}

template <class E>
void generic_weighted_sets(int sets, const float* coef, std::size_t coef_stride, const float* scale, const E* rows,
                           std::size_t stride, int count, int width, float* out, std::size_t out_stride) {
  for (int s = 0; s < sets; ++s)
    generic_weighted_rows(coef + s * coef_stride, scale[s], rows, stride, count, width, out + s * out_stride);
}

// x[i] (times mul[i] where mul is given) as integers of T with one scale d = max |x| / top:
// rounded to nearest even by 1 / d; returns d (0 for all zeros). quantize_i8's and softmax_i16's.
template <class T>
float portable_round(const float* x, const float* mul, int n, T* q, float top) {
  auto w = [&](int i) { return mul ? x[i] * mul[i] : x[i]; };
  float amax = 0;
  for (int i = 0; i < n; ++i) amax = std::max(amax, std::fabs(w(i)));
  const float d = amax / top, id = d != 0 ? 1.f / d : 0.f;
  for (int i = 0; i < n; ++i) q[i] = static_cast<T>(std::nearbyint(w(i) * id));
  return d;
}

float portable_quantize_i8(const float* x, int n, int8_t* q) { return portable_round(x, nullptr, n, q, 127.f); }

void portable_q8_store(const float* key, const float* value, int head_dim, int p, int8_t* keys, float* k_scale,
                       int8_t* values, float* v_scale) {
  std::vector<int8_t> bytes(head_dim);
  k_scale[p] = portable_quantize_i8(key, head_dim, bytes.data());
  int8_t* blk = keys + std::size_t(p / kQ8KeyBlock) * kQ8KeyBlock * head_dim + 4 * (p % kQ8KeyBlock);
  for (int j = 0; j < head_dim / 4; ++j) std::memcpy(blk + std::size_t(j) * 4 * kQ8KeyBlock, bytes.data() + 4 * j, 4);
  v_scale[p] = portable_quantize_i8(value, head_dim, bytes.data());
  for (int d = 0; d < head_dim; ++d) values[std::size_t(p / 2) * 2 * head_dim + 2 * d + p % 2] = bytes[d];
}

void portable_q8_scores(int sets, const int8_t* q, std::size_t q_stride, const float* q_scale, const int8_t* keys,
                        const float* k_scale, int head_dim, int n, float* out, std::size_t out_stride) {
  for (int s = 0; s < sets; ++s)
    for (int p = 0; p < n; ++p) {
      const int8_t* blk = keys + std::size_t(p / kQ8KeyBlock) * kQ8KeyBlock * head_dim + 4 * (p % kQ8KeyBlock);
      int32_t dot = 0;
      for (int d = 0; d < head_dim; ++d) dot += q[s * q_stride + d] * blk[(d / 4) * 4 * kQ8KeyBlock + d % 4];
      out[s * out_stride + p] = static_cast<float>(dot) * k_scale[p] * q_scale[s];
    }
}

void portable_q8_values(int sets, const int16_t* c, std::size_t c_stride, const float* scale, const int8_t* values,
                        int head_dim, int n, float* out, std::size_t out_stride) {
  for (int s = 0; s < sets; ++s)
    for (int d = 0; d < head_dim; ++d) {
      float sum = 0;
      for (int p0 = 0; p0 < n; p0 += kQ8ValueChunk) {
        int32_t chunk = 0;
        for (int p = p0; p < std::min(n, p0 + kQ8ValueChunk); ++p)
          chunk += c[s * c_stride + p] * values[std::size_t(p / 2) * 2 * head_dim + 2 * d + p % 2];
        sum += static_cast<float>(chunk);
      }
      out[s * out_stride + d] = sum * scale[s];
    }
}


void portable_to_fp16(const float* x, uint16_t* y, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) y[i] = fp32_to_fp16(x[i]);
}

void portable_round_fp16(float* x, std::size_t n, float scale) {
  for (std::size_t i = 0; i < n; ++i) x[i] = fp16_to_fp32(fp32_to_fp16(x[i] * scale));
}

// Packed F32/F16 read plainly: per row and token, one running sum in column order, as the SIMD
// tiles keep it; row r's value of column k at (r / G) * G * cols + k * G + r % G.
template <class E, class Load>
void portable_float_packed(const uint8_t* packed, int G, int cols, int r0, int r1, const uint8_t* x, std::size_t xs,
                           int T, float* y, std::size_t ys, Load load) {
  const auto* w = reinterpret_cast<const E*>(packed);
  for (int r = r0; r < r1; ++r) {
    const E* wr = w + std::size_t(r / G) * G * cols + r % G;
    for (int t = 0; t < T; ++t) {
      const auto* xt = reinterpret_cast<const float*>(x + xs * t);
      float acc = 0;
      for (int k = 0; k < cols; ++k) acc += load(wr[std::size_t(k) * G]) * xt[k];
      y[ys * t + r] = acc;
    }
  }
}

// The packed layout read plainly. Quantized: per group of 16 rows and token, each block's integer
// sums, then (sum * dx) * dw added in block order, as the SIMD tiles add them.
void portable_packed(TensorType type, const uint8_t* packed, int rows, int cols, int r0, int r1, const uint8_t* x,
                     std::size_t xs, int T, float* y, std::size_t ys) {
  (void)rows;
  if (type == TensorType::F32)
    return portable_float_packed<float>(packed, packed_group_rows(type), cols, r0, r1, x, xs, T, y, ys,
                                        [](float v) { return v; });
  if (type == TensorType::F16)
    return portable_float_packed<uint16_t>(packed, packed_group_rows(type), cols, r0, r1, x, xs, T, y, ys,
                                           fp16_to_fp32);
  const int blocks = cols / 32;
  const std::size_t block_bytes = 16 * type_bytes(type, 32), group_bytes = block_bytes * blocks;
  const bool q4 = type == TensorType::Q4_0;
  for (int g = r0 / 16; g * 16 < r1; ++g)
    for (int t = 0; t < T; ++t) {
      const auto* xb = reinterpret_cast<const BlockQ8_0*>(x + xs * t);
      float acc[16] = {};
      for (int k = 0; k < blocks; ++k) {
        const uint8_t* b = packed + group_bytes * g + block_bytes * k;
        const int8_t* xq = xb[k].qs;
        const float dx = fp16_to_fp32(xb[k].d);
        for (int i = 0; i < 16; ++i) {
          int32_t sum = 0;
          if (q4) {
            for (int c = 0; c < 4; ++c)
              for (int j = 0; j < 4; ++j) {
                const uint8_t q = b[32 + 64 * c + 4 * i + j];
                sum += ((q & 0x0f) - 8) * xq[4 * c + j] + ((q >> 4) - 8) * xq[16 + 4 * c + j];
              }
          } else {
            for (int c = 0; c < 8; ++c)
              for (int j = 0; j < 4; ++j)
                sum += (b[32 + 64 * c + 4 * i + j] - 128) * xq[4 * c + j];
          }
          uint16_t d;
          std::memcpy(&d, b + 2 * i, 2);
          acc[i] += static_cast<float>(sum) * dx * fp16_to_fp32(d);
        }
      }
      for (int i = 0; i < 16 && g * 16 + i < r1; ++i) y[ys * t + g * 16 + i] = acc[i];
    }
}

float portable_softmax_exp(float* x, int n, float scale) {
  float mx = -INFINITY;
  for (int i = 0; i < n; ++i) mx = std::max(mx, x[i] * scale);
  double sum = 0;
  for (int i = 0; i < n; ++i) {
    x[i] = std::exp(x[i] * scale - mx);
    sum += x[i];
  }
  return static_cast<float>(sum);
}

void portable_softmax_i16(int sets, float* x, std::size_t x_stride, int n, float scale, const float* mul, int16_t* q,
                          std::size_t q_stride, float* out) {
  for (int s = 0; s < sets; ++s, x += x_stride, q += q_stride) {
    const float sum = portable_softmax_exp(x, n, scale);
    const float d = portable_round(x, mul, n, q, 32767.f);
    if (n % 2) q[n] = 0;
    out[s] = d / sum;
  }
}

void portable_silu_mul(float* g, const float* u, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) g[i] = g[i] / (1.0f + std::exp(-g[i])) * u[i];
}

void portable_rmsnorm(const float* x, const float* w, float* out, int n, float eps) {
  double ss = 0;
  for (int i = 0; i < n; ++i) ss += static_cast<double>(x[i] * x[i]);
  const float scale = 1.0f / std::sqrt(static_cast<float>(ss / n) + eps);
  for (int i = 0; i < n; ++i) out[i] = x[i] * scale * w[i];
}

void portable_rope(float* v, int n_heads, int head_dim, int rope_dim, const float* cos2, const float* sin2) {
  for (int h = 0; h < n_heads; ++h)
    for (int j = 0; j < rope_dim; j += 2) {
      float* p = v + std::size_t(h) * head_dim + j;
      const float a = p[0], b = p[1];
      p[0] = a * cos2[j] + b * sin2[j];
      p[1] = b * cos2[j + 1] + a * sin2[j + 1];
    }
}

int portable_argmax(const float* x, int n) {
  return static_cast<int>(std::max_element(x, x + n) - x);
}

constexpr isa::Kernels kGeneric = {portable_rows,         portable_packed,
                                   generic_weighted_sets<float>, generic_weighted_sets<uint16_t>,
                                   portable_q8_scores, portable_q8_values, portable_quantize_i8, portable_softmax_i16,
                                   portable_q8_store,
                                   portable_quantize_q8_0, portable_softmax_exp,
                                   portable_silu_mul,     portable_rmsnorm,
                                   portable_argmax,
                                   portable_rope,         portable_to_fp16,
                                   portable_round_fp16};

}  // namespace

bool packable(TensorType) { return true; }

int packed_group_rows(TensorType type) {
  switch (type) {
    case TensorType::F32: return 16;
    case TensorType::F16: return 128;
    default: return 16;
  }
}

TensorType packed_dot_type(TensorType type) {
  return type == TensorType::F32 || type == TensorType::F16 ? TensorType::F32 : TensorType::Q8_0;
}

std::size_t packed_bytes(TensorType type, int rows, int cols) {
  const std::size_t g = packed_group_rows(type);
  return type_bytes(type, static_cast<std::size_t>(cols)) * ((static_cast<std::size_t>(rows) + g - 1) / g * g);
}

void pack_rows(TensorType type, const uint8_t* w, std::size_t w_stride, int rows, int cols, uint8_t* out) {
  if (type == TensorType::F32 || type == TensorType::F16) {
    // Column by column within each group of G rows: value (r, k) at group r / G, k * G + r % G.
    const std::size_t size = type == TensorType::F32 ? 4 : 2;
    const int G = packed_group_rows(type);
    std::memset(out, 0, packed_bytes(type, rows, cols));
    for (int r = 0; r < rows; ++r) {
      uint8_t* group = out + std::size_t(r / G) * G * cols * size;
      for (int k = 0; k < cols; ++k)
        std::memcpy(group + (std::size_t(k) * G + r % G) * size, w + w_stride * r + k * size, size);
    }
    return;
  }
  const int blocks = cols / 32;
  const std::size_t block = type_bytes(type, 32), quants = block - 2;  // per row: fp16 scale, then quants
  const bool q8 = type == TensorType::Q8_0;
  std::memset(out, 0, packed_bytes(type, rows, cols));  // padding rows: zero scales and quants
  for (int r = 0; r < rows; ++r) {
    const int g = r / 16, i = r % 16;
    for (int k = 0; k < blocks; ++k) {
      const uint8_t* src = w + w_stride * r + block * k;
      uint8_t* dst = out + (std::size_t(g) * blocks + k) * 16 * block;
      std::memcpy(dst + 2 * i, src, 2);
      for (std::size_t c = 0; c < quants / 4; ++c)
        for (int j = 0; j < 4; ++j)  // Q8_0 shifted to unsigned (kernels.h)
          dst[32 + 64 * c + 4 * i + j] = q8 ? src[2 + 4 * c + j] ^ 0x80 : src[2 + 4 * c + j];
    }
  }
}

TensorType dot_type(TensorType type) {
  return type == TensorType::F32 || type == TensorType::F16 ? type : TensorType::Q8_0;
}


// ---- run-time dispatch ----

namespace {

#if defined(WAND_KERNELS_AMX)
// AMX-TILE and AMX-INT8 (CPUID leaf 7: EDX bits 24, 25), the OS saving their state (XCR0 bits 17,
// 18), and Linux's permission for this process to use the 8 KiB of tile data (arch_prctl
// ARCH_REQ_XCOMP_PERM for XFEATURE_XTILEDATA; without it the first tile load is a SIGILL).
bool amx_usable() {
  static const bool usable = [] {
    unsigned a, b, c, d;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d) || !(d & (1u << 24)) || !(d & (1u << 25))) return false;
    if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & (1u << 27))) return false;  // OSXSAVE: xgetbv exists
    unsigned lo, hi;
    asm volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    if ((lo & (3u << 17)) != (3u << 17)) return false;
    constexpr long kArchReqXcompPerm = 0x1023, kXfeatureXtiledata = 18;
    return syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtiledata) == 0;
  }();
  return usable;
}
#endif

// Whether the build carries the path and this CPU (and its OS, which must save the wider
// registers: libgcc's checks include XGETBV) runs it.
bool supported(KernelPath p) {
  switch (p) {
    case KernelPath::generic: return true;
#if defined(WAND_KERNELS_X86)
    case KernelPath::avx2:
      return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
    case KernelPath::avx512:
      return supported(KernelPath::avx2) && __builtin_cpu_supports("avx512f") &&
             __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") &&
             __builtin_cpu_supports("avx512vl") &&
             __builtin_cpu_supports("avx512vnni");
    case KernelPath::amx:
#if defined(WAND_KERNELS_AMX)
      return supported(KernelPath::avx512) && amx_usable();
#else
      return false;
#endif
#else
    default: return false;
#endif
  }
  return false;
}

const isa::Kernels& table(KernelPath p) {
  switch (p) {
#if defined(WAND_KERNELS_X86)
    case KernelPath::avx2: return isa::avx2::kernels;
    case KernelPath::avx512: return isa::avx512::kernels;
#endif
#if defined(WAND_KERNELS_AMX)
    case KernelPath::amx: return isa::amx::kernels;
#endif
    default: return kGeneric;
  }
}

constexpr int kUnset = -1;
std::atomic<int> g_path{kUnset};

}  // namespace

const char* kernel_path_name(KernelPath p) {
  switch (p) {
    case KernelPath::generic: return "generic";
    case KernelPath::avx2: return "avx2";
    case KernelPath::avx512: return "avx512";
    case KernelPath::amx: return "amx";
  }
  return "?";
}

bool kernel_path_supported(KernelPath p) { return supported(p); }

KernelPath best_kernel_path() {
  for (KernelPath p : {KernelPath::amx, KernelPath::avx512, KernelPath::avx2})
    if (supported(p)) return p;
  return KernelPath::generic;
}

Result<KernelPath> parse_kernel_path(std::string_view name) {
  for (KernelPath p : {KernelPath::generic, KernelPath::avx2, KernelPath::avx512, KernelPath::amx})
    if (name == kernel_path_name(p)) {
      if (!supported(p))
        return Error{fmt::format("WAND_CPU={}: this CPU or build lacks it (best here: {})", name,
                                 kernel_path_name(best_kernel_path()))};
      return p;
    }
  return Error{fmt::format("WAND_CPU={}: unknown kernel path (generic, avx2, avx512 or amx)", name)};
}

Result<KernelPath> kernel_path_from_env() {
  const char* v = std::getenv("WAND_CPU");
  if (!v || !*v) return best_kernel_path();
  return parse_kernel_path(v);
}

VoidResult set_kernel_path(KernelPath path) {
  if (!supported(path))
    return Error{fmt::format("kernel path {} is not supported here (best: {})", kernel_path_name(path),
                             kernel_path_name(best_kernel_path()))};
  g_path.store(static_cast<int>(path), std::memory_order_relaxed);
  return ok_status();
}

KernelPath kernel_path() {
  int p = g_path.load(std::memory_order_relaxed);
  if (p != kUnset) return static_cast<KernelPath>(p);
  auto env = kernel_path_from_env();
  if (!env) fmt::print(stderr, "wand: {}; using {}\n", env.error().message, kernel_path_name(best_kernel_path()));
  int want = static_cast<int>(env ? *env : best_kernel_path());
  // The first caller's choice stands (another thread may have set one meanwhile).
  g_path.compare_exchange_strong(p, want, std::memory_order_relaxed);
  return static_cast<KernelPath>(g_path.load(std::memory_order_relaxed));
}

void matmul_rows(TensorType type, const uint8_t* w, std::size_t w_stride, int cols, int r0, int r1, const uint8_t* x,
                 std::size_t x_stride, int T, float* y, std::size_t y_stride) {
  table(kernel_path()).matmul_rows(type, w, w_stride, cols, r0, r1, x, x_stride, T, y, y_stride);
}

void matmul_packed(TensorType type, const uint8_t* packed, int rows, int cols, int r0, int r1, const uint8_t* x,
                   std::size_t x_stride, int T, float* y, std::size_t y_stride) {
  table(kernel_path()).matmul_packed(type, packed, rows, cols, r0, r1, x, x_stride, T, y, y_stride);
}

void quantize_q8_0(const float* x, BlockQ8_0* y, std::size_t n) { table(kernel_path()).quantize_q8_0(x, y, n); }

float softmax_exp(float* x, int n, float scale) { return table(kernel_path()).softmax_exp(x, n, scale); }

void silu_mul(float* g, const float* u, std::size_t n) { table(kernel_path()).silu_mul(g, u, n); }

void weighted_rows(const float* coef, float scale, const float* rows, std::size_t stride, int count, int width,
                   float* out) {
  table(kernel_path()).weighted_sets(1, coef, 0, &scale, rows, stride, count, width, out, 0);
}

void weighted_row_sets(int sets, const float* coef, std::size_t coef_stride, const float* scale, const float* rows,
                       std::size_t stride, int count, int width, float* out, std::size_t out_stride) {
  table(kernel_path()).weighted_sets(sets, coef, coef_stride, scale, rows, stride, count, width, out, out_stride);
}

void weighted_row_sets_f16(int sets, const float* coef, std::size_t coef_stride, const float* scale,
                           const uint16_t* rows, std::size_t stride, int count, int width, float* out,
                           std::size_t out_stride) {
  table(kernel_path()).weighted_sets_f16(sets, coef, coef_stride, scale, rows, stride, count, width, out, out_stride);
}

float quantize_i8(const float* x, int n, int8_t* q) { return table(kernel_path()).quantize_i8(x, n, q); }
void q8_store(const float* key, const float* value, int head_dim, int p, int8_t* keys, float* k_scale,
              int8_t* values, float* v_scale) {
  table(kernel_path()).q8_store(key, value, head_dim, p, keys, k_scale, values, v_scale);
}
void softmax_i16(int sets, float* x, std::size_t x_stride, int n, float scale, const float* mul, int16_t* q,
                 std::size_t q_stride, float* out) {
  table(kernel_path()).softmax_i16(sets, x, x_stride, n, scale, mul, q, q_stride, out);
}
void q8_values(int sets, const int16_t* c, std::size_t c_stride, const float* scale, const int8_t* values,
               int head_dim, int n, float* out, std::size_t out_stride) {
  table(kernel_path()).q8_values(sets, c, c_stride, scale, values, head_dim, n, out, out_stride);
}

void q8_scores(int sets, const int8_t* q, std::size_t q_stride, const float* q_scale, const int8_t* keys,
               const float* k_scale, int head_dim, int n, float* out, std::size_t out_stride) {
  table(kernel_path()).q8_scores(sets, q, q_stride, q_scale, keys, k_scale, head_dim, n, out, out_stride);
}

void weighted_rows_f16(const float* coef, float scale, const uint16_t* rows, std::size_t stride, int count,
                       int width, float* out) {
  table(kernel_path()).weighted_sets_f16(1, coef, 0, &scale, rows, stride, count, width, out, 0);
}

void to_fp16(const float* x, uint16_t* y, std::size_t n) { table(kernel_path()).to_fp16(x, y, n); }

void round_fp16(float* x, std::size_t n, float scale) { table(kernel_path()).round_fp16(x, n, scale); }

void rmsnorm(const float* x, const float* w, float* out, int n, float eps) {
  table(kernel_path()).rmsnorm(x, w, out, n, eps);
}

int argmax(const float* x, int n) { return table(kernel_path()).argmax(x, n); }

void rope(float* v, int n_heads, int head_dim, int rope_dim, const float* cos2, const float* sin2) {
  table(kernel_path()).rope(v, n_heads, head_dim, rope_dim, cos2, sin2);
}

}  // namespace wand::llm

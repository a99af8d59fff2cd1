#include "llm/kernels.h"

#include <algorithm>
#include <cmath>

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

}  // namespace wand::llm

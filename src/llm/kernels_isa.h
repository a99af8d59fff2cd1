// Internal to the kernels: one table of entry points per instruction set, so kernels.cpp can pick
// one at run time. The SIMD tables come from kernels_simd.cpp, built once per instruction set;
// builds for other processors (and the fuzz build, which compiles kernels.cpp alone) have only
// the generic table.
#pragma once
#include <cstddef>
#include <cstdint>

#include "llm/gguf.h"
#include "llm/kernels.h"

namespace wand::llm::isa {

struct Kernels {
  // As the functions of the same names in kernels.h.
  void (*matmul_rows)(TensorType type, const uint8_t* w, std::size_t w_stride, int cols, int r0, int r1,
                      const uint8_t* x, std::size_t x_stride, int T, float* y, std::size_t y_stride);
  void (*matmul_packed)(TensorType type, const uint8_t* packed, int rows, int cols, int r0, int r1,
                        const uint8_t* x, std::size_t x_stride, int T, float* y, std::size_t y_stride);
  // weighted_row_sets over float rows, then fp16 rows.
  void (*weighted_sets)(int sets, const float* coef, std::size_t coef_stride, const float* scale, const float* rows,
                        std::size_t stride, int count, int width, float* out, std::size_t out_stride);
  void (*weighted_sets_f16)(int sets, const float* coef, std::size_t coef_stride, const float* scale,
                            const uint16_t* rows, std::size_t stride, int count, int width, float* out,
                            std::size_t out_stride);
  void (*q8_scores)(int sets, const int8_t* q, std::size_t q_stride, const float* q_scale, const int8_t* keys,
                    const float* k_scale, int head_dim, int n, float* out, std::size_t out_stride);
  void (*q8_values)(int sets, const int16_t* c, std::size_t c_stride, const float* scale, const int8_t* values,
                    int head_dim, int n, float* out, std::size_t out_stride);
  float (*quantize_i8)(const float* x, int n, int8_t* q);
  void (*softmax_i16)(int sets, float* x, std::size_t x_stride, int n, float scale, const float* mul, int16_t* q,
                      std::size_t q_stride, float* out);
  void (*q8_store)(const float* key, const float* value, int head_dim, int p, int8_t* keys, float* k_scale,
                   int8_t* values, float* v_scale);
  void (*quantize_q8_0)(const float* x, BlockQ8_0* y, std::size_t n);
  float (*softmax_exp)(float* x, int n, float scale);
  void (*silu_mul)(float* g, const float* u, std::size_t n);
  void (*rmsnorm)(const float* x, const float* w, float* out, int n, float eps);
  int (*argmax)(const float* x, int n);
  void (*rope)(float* v, int n_heads, int head_dim, int rope_dim, const float* cos2, const float* sin2);
  void (*to_fp16)(const float* x, uint16_t* y, std::size_t n);
  void (*round_fp16)(float* x, std::size_t n, float scale);
};

#if defined(WAND_KERNELS_X86)
namespace avx2 {
extern const Kernels kernels;
}
namespace avx512 {
extern const Kernels kernels;
}
#endif
#if defined(WAND_KERNELS_AMX)
namespace amx {
extern const Kernels kernels;
}
#endif

}  // namespace wand::llm::isa

// The engine's SIMD kernels, compiled once per instruction set (CMake builds this file with
// WAND_ISA=avx2 and -mavx2 -mfma -mf16c, with WAND_ISA=avx512 and AVX-512F/BW/VL/VNNI added, and
// with WAND_ISA=amx and AMX-TILE/INT8 added to those);
// kernels.cpp picks one at run time by CPUID. Everything here lives in a namespace named after the
// instruction set, and calls nothing inline from outside it: the linker keeps one copy of an
// inline function, and a copy compiled for AVX-512 must never be what the generic path runs.
#include <immintrin.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <cstddef>
#include <type_traits>
#include <utility>

#include "llm/kernels.h"  // the block layouts (its inline conversions are not used here)
#include "llm/kernels_isa.h"

#if !defined(WAND_ISA) || !defined(__AVX2__) || !defined(__FMA__) || !defined(__F16C__)
#error "kernels_simd.cpp is built with WAND_ISA and at least -mavx2 -mfma -mf16c"
#endif

namespace wand::llm::isa::WAND_ISA {
namespace {

// Each weight type is a policy: how one step of a row (a Q8_0/Q4_0 block of 32, or a vector of
// floats) loads, and how a (weights, activations) pair of steps adds into an accumulator. The
// vectorizer cannot see that a block's integer dot fits maddubs/VNNI (u8 x s8 pairs) nor use F16C.

inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}
inline float half(uint16_t h) { return _cvtsh_ss(h); }

// Sum of the 32 products u[i] * x[i] of unsigned and signed bytes as 8 int32 lanes (no
// saturation while u[i] <= 127).
inline __m256i dot_u8i8x32(__m256i u, __m256i x) {
#if defined(__AVXVNNI__)
  return _mm256_dpbusd_avx_epi32(_mm256_setzero_si256(), u, x);
#elif defined(__AVX512VNNI__) && defined(__AVX512VL__)
  return _mm256_dpbusd_epi32(_mm256_setzero_si256(), u, x);
#else
  return _mm256_madd_epi16(_mm256_maddubs_epi16(u, x), _mm256_set1_epi16(1));
#endif
}

// Sum of the 32 products of signed bytes w[i]*x[i] as 8 int32 lanes, given |w| (absw).
inline __m256i dot_i8x32(__m256i w, __m256i absw, __m256i x) {
  return dot_u8i8x32(absw, _mm256_sign_epi8(x, w));  // x with w's sign, so |w| * sx = w * x
}

#if defined(__AVX512F__)
using FVec = __m512;  // 16 floats
constexpr int kFloatLanes = 16;
inline FVec fzero() { return _mm512_setzero_ps(); }
// By halves (GCC 12 warns that _mm512_reduce_add_ps reads an undefined register).
inline float fsum(FVec v) {
  return hsum(_mm256_add_ps(_mm512_maskz_extractf32x8_ps(0xff, v, 0), _mm512_maskz_extractf32x8_ps(0xff, v, 1)));
}
inline FVec fload(const float* p) { return _mm512_loadu_ps(p); }
// (The masked form: GCC 12 warns that the plain one reads an undefined register.)
inline FVec hload(const uint16_t* p) {
  return _mm512_maskz_cvtph_ps(0xffff, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
}
inline FVec fmadd(FVec a, FVec b, FVec c) { return _mm512_fmadd_ps(a, b, c); }
inline void fstore(float* p, FVec v) { _mm512_storeu_ps(p, v); }
#else
using FVec = __m256;
constexpr int kFloatLanes = 8;
inline FVec fzero() { return _mm256_setzero_ps(); }
inline float fsum(FVec v) { return hsum(v); }
inline FVec fload(const float* p) { return _mm256_loadu_ps(p); }
inline FVec hload(const uint16_t* p) { return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))); }
inline FVec fmadd(FVec a, FVec b, FVec c) { return _mm256_fmadd_ps(a, b, c); }
inline void fstore(float* p, FVec v) { _mm256_storeu_ps(p, v); }
#endif

// kFloatLanes values as floats, from floats or halves.
inline FVec load_rows(const float* p) { return fload(p); }
inline FVec load_rows(const uint16_t* p) { return hload(p); }

struct F32 {
  static constexpr int step = kFloatLanes, bytes = step * 4;
  using Acc = FVec;
  using W = FVec;
  using X = FVec;
  static Acc zero() { return fzero(); }
  static W load_w(const uint8_t* row, int k) { return fload(reinterpret_cast<const float*>(row) + k * step); }
  static X load_x(const uint8_t* row, int k) { return load_w(row, k); }
  static Acc madd(Acc acc, const W& w, const X& x) { return fmadd(w, x, acc); }
  static float sum(Acc a) { return fsum(a); }
  static float tail(const uint8_t* w, const uint8_t* x, int from, int cols) {
    float s = 0;
    for (int i = from; i < cols; ++i) s += reinterpret_cast<const float*>(w)[i] * reinterpret_cast<const float*>(x)[i];
    return s;
  }
};

struct F16 : F32 {
  static constexpr int bytes = step * 2;
  static W load_w(const uint8_t* row, int k) { return hload(reinterpret_cast<const uint16_t*>(row) + k * step); }
  static X load_x(const uint8_t* row, int k) { return load_w(row, k); }
  static float tail(const uint8_t* w, const uint8_t* x, int from, int cols) {
    float s = 0;
    for (int i = from; i < cols; ++i)
      s += half(reinterpret_cast<const uint16_t*>(w)[i]) * half(reinterpret_cast<const uint16_t*>(x)[i]);
    return s;
  }
};

struct Q8 {
  static constexpr int step = 32, bytes = sizeof(BlockQ8_0);
  using Acc = __m256;
  // Scales broadcast once per tile row (weights) and per tile column (activations).
  struct W {
    __m256i q, abs;
    __m256 d;
  };
  struct X {
    __m256i q;
    __m256 d;
  };
  static Acc zero() { return _mm256_setzero_ps(); }
  static W load_w(const uint8_t* row, int k) {
    const BlockQ8_0& b = reinterpret_cast<const BlockQ8_0*>(row)[k];
    const __m256i q = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.qs));
    return {q, _mm256_sign_epi8(q, q), _mm256_set1_ps(half(b.d))};
  }
  static X load_x(const uint8_t* row, int k) {
    const BlockQ8_0& b = reinterpret_cast<const BlockQ8_0*>(row)[k];
    return {_mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.qs)), _mm256_set1_ps(half(b.d))};
  }
  // (sum * dx) * dw + acc: a multiply and a fused multiply-add, where the scale product
  // dw * dx would cost a scalar multiply and a broadcast per pair.
  static Acc madd(Acc acc, const W& w, const X& x) {
    return _mm256_fmadd_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(dot_i8x32(w.q, w.abs, x.q)), x.d), w.d, acc);
  }
  static float sum(Acc a) { return hsum(a); }
  static float tail(const uint8_t*, const uint8_t*, int, int) { return 0; }
};

struct Q4 {
  static constexpr int step = 32, bytes = sizeof(BlockQ4_0);
  using Acc = __m256;
  // The nibbles stay unsigned (0-15) and meet the activations as they are; the offset of 8 is
  // taken off once per activation block, as 8 * sum(x), so a (row, block) pair costs one
  // integer dot and a subtraction instead of re-signing both operands. Integer sums, so the
  // results are those of (q - 8) * x bit for bit.
  struct W {
    __m256i q;
    __m256 d;
  };
  struct X {
    __m256i q, offset;  // offset: 8 * x summed in the lanes dot_u8i8x32 sums them in
    __m256 d;
  };
  static Acc zero() { return _mm256_setzero_ps(); }
  // Elements 0-15 from the low nibbles, 16-31 from the high ones; unpacked once per tile row and
  // reused for every token of the tile.
  static W load_w(const uint8_t* row, int k) {
    const BlockQ4_0& b = reinterpret_cast<const BlockQ4_0*>(row)[k];
    const __m128i packed = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b.qs));
    const __m256i q = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(packed, 4), packed), _mm256_set1_epi8(0x0f));
    return {q, _mm256_set1_ps(half(b.d))};
  }
  static X load_x(const uint8_t* row, int k) {
    const BlockQ8_0& b = reinterpret_cast<const BlockQ8_0*>(row)[k];
    const __m256i q = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.qs));
    return {q, dot_u8i8x32(_mm256_set1_epi8(8), q), _mm256_set1_ps(half(b.d))};
  }
  static Acc madd(Acc acc, const W& w, const X& x) {
    const __m256i dot = _mm256_sub_epi32(dot_u8i8x32(w.q, x.q), x.offset);
    return _mm256_fmadd_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(dot), x.d), w.d, acc);
  }
  static float sum(Acc a) { return hsum(a); }
  static float tail(const uint8_t*, const uint8_t*, int, int) { return 0; }
};

// Rows x tokens per tile: 6 x 4 accumulators, 4 activations and a weight vector fit the 32
// vector registers of AVX-512; AVX2 has 16. Each activation is loaded once per tile row set, so
// more rows per tile mean fewer passes over the activations, which come from L2 (F16's prompt at
// 4 x 4 was bound by that: F32 activations, twice the bytes, made it 40% slower).
#if defined(__AVX512F__)
constexpr int kTileRows = 6, kTileTokens = 4;
#else
constexpr int kTileRows = 4, kTileTokens = 2;
#endif

using TileFn = void (*)(const uint8_t*, std::size_t, const uint8_t*, std::size_t, int, float*, std::size_t);

// RM rows x RN tokens: the activations of a step are loaded once, then each row's weights once
// for all RN tokens.
template <class P, int RM, int RN>
void tile(const uint8_t* w, std::size_t ws, const uint8_t* x, std::size_t xs, int cols, float* y, std::size_t ys) {
  typename P::Acc acc[RM][RN];
  for (auto& row : acc)
    for (auto& a : row) a = P::zero();
  const int steps = cols / P::step;
  for (int k = 0; k < steps; ++k) {
    // The next tile's rows, so they come from L3 while this one computes: a matrix out of L2 read
    // as several rows at once ran at a fifth of the bandwidth of one row at a time (17 MB of
    // Q8_0: 8 vs 40 GB/s; the hardware prefetchers do not follow that pattern). Prefetches never
    // fault, so the last tile's, past the matrix, are harmless.
    for (int r = 0; r < RM; ++r)
      _mm_prefetch(reinterpret_cast<const char*>(w + ws * (r + RM)) + k * P::bytes, _MM_HINT_T0);
    typename P::X xv[RN];
    for (int t = 0; t < RN; ++t) xv[t] = P::load_x(x + xs * t, k);
    for (int r = 0; r < RM; ++r) {
      const typename P::W wv = P::load_w(w + ws * r, k);
      for (int t = 0; t < RN; ++t) acc[r][t] = P::madd(acc[r][t], wv, xv[t]);
    }
  }
  for (int r = 0; r < RM; ++r)
    for (int t = 0; t < RN; ++t)
      y[ys * t + r] = P::sum(acc[r][t]) + P::tail(w + ws * r, x + xs * t, steps * P::step, cols);
}

template <class P, int RM>
TileFn pick_tokens(int rn) {
  switch (rn) {
    case 1: return tile<P, RM, 1>;
    case 2: return tile<P, RM, 2>;
    case 3: return tile<P, RM, std::min(3, kTileTokens)>;
    default: return tile<P, RM, kTileTokens>;
  }
}

template <class P>
TileFn pick(int rm, int rn) {
  switch (rm) {
    case 1: return pick_tokens<P, 1>(rn);
    case 2: return pick_tokens<P, 2>(rn);
    case 3: return pick_tokens<P, 3>(rn);
    case 4: return pick_tokens<P, 4>(rn);
#if defined(__AVX512F__)
    case 5: return pick_tokens<P, 5>(rn);
    case 6: return pick_tokens<P, 6>(rn);
#endif
    default: return tile<P, 8, 1>;  // one token: eight independent sums hide the FMA latency
  }
}

template <class P>
void tiled_rows(const uint8_t* w, std::size_t ws, int cols, int r0, int r1, const uint8_t* x, std::size_t xs, int T,
                float* y, std::size_t ys) {
  const int rows_per_tile = T == 1 ? 8 : kTileRows;
  for (int r = r0; r < r1;) {
    int rm = std::min(rows_per_tile, r1 - r);
    if (T == 1 && rm > 4 && rm < 8) rm = 4;  // the last rows of a single token: 4, then the rest
    for (int t = 0; t < T;) {
      const int rn = std::min(kTileTokens, T - t);
      pick<P>(rm, rn)(w + ws * r, ws, x + xs * t, xs, cols, y + ys * t + r, ys);
      t += rn;
    }
    r += rm;
  }
}

// ---- packed Q8_0/Q4_0 (kernels.h, pack_rows): groups of 16 rows, 8 per 256-bit half ----

// acc + the four products u * s of each 32-bit lane (u unsigned, s signed bytes; with AVX2's
// maddubs, no saturation while |u * s| pairs stay under 2^15: Q4's nibbles).
inline __m256i dpbusd(__m256i acc, __m256i u, __m256i s) {
#if defined(__AVX512VNNI__) && defined(__AVX512VL__)
  return _mm256_dpbusd_epi32(acc, u, s);
#else
  return _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1)));
#endif
}

// Rows in 32-bit lanes: 8 (half h of a group: its 32-byte half of each 64-byte quant chunk and
// its 8 of the 16 scales) or, with AVX-512, 16 (the whole group, h = 0). p: a quant chunk (load)
// or the block's scales (scales).
struct Lanes8 {
  using I = __m256i;
  using F = __m256;
  static constexpr int rows = 8;
  static I load(const uint8_t* p, int h) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 32 * h)); }
  static F scales(const uint8_t* p, int h) {
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 16 * h)));
  }
  static I bytes(char b) { return _mm256_set1_epi8(b); }
  static I words(int32_t v) { return _mm256_set1_epi32(v); }
  static I and_(I a, I b) { return _mm256_and_si256(a, b); }
  static I xor_(I a, I b) { return _mm256_xor_si256(a, b); }
  static I shr4(I a) { return _mm256_srli_epi16(a, 4); }
  static I dot(I acc, I u, I s) { return dpbusd(acc, u, s); }
  // acc + the products w * s of signed bytes (AVX2 without VNNI: Q8_0's full byte range
  // would saturate maddubs with an offset, so |w| meets s with w's sign).
  static I dot_signed(I acc, I w, I s) {
    return _mm256_add_epi32(
        acc, _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_sign_epi8(w, w), _mm256_sign_epi8(s, w)),
                               _mm256_set1_epi16(1)));
  }
  static F zero() { return _mm256_setzero_ps(); }
  static F step(F acc, I sum, float dx, F dw) {
    return _mm256_fmadd_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(sum), _mm256_set1_ps(dx)), dw, acc);
  }
  static void store(float* y, F v, int n) {
    if (n == 8) return _mm256_storeu_ps(y, v);
    alignas(32) float tmp[8];
    _mm256_store_ps(tmp, v);
    for (int i = 0; i < n; ++i) y[i] = tmp[i];
  }
};

#if defined(__AVX512F__)
struct Lanes16 {
  using I = __m512i;
  using F = __m512;
  static constexpr int rows = 16;
  static I load(const uint8_t* p, int) { return _mm512_loadu_si512(p); }
  static F scales(const uint8_t* p, int) {
    return _mm512_maskz_cvtph_ps(0xffff, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
  }
  static I bytes(char b) { return _mm512_set1_epi8(b); }
  static I words(int32_t v) { return _mm512_set1_epi32(v); }
  static I and_(I a, I b) { return _mm512_and_si512(a, b); }
  static I xor_(I a, I b) { return _mm512_xor_si512(a, b); }
  static I shr4(I a) { return _mm512_srli_epi16(a, 4); }
  static I dot(I acc, I u, I s) { return _mm512_dpbusd_epi32(acc, u, s); }
  static I dot_signed(I acc, I, I) { return acc; }  // never used: this build has VNNI
  static F zero() { return _mm512_setzero_ps(); }
  static F step(F acc, I sum, float dx, F dw) {
    return _mm512_fmadd_ps(_mm512_mul_ps(_mm512_maskz_cvtepi32_ps(0xffff, sum), _mm512_set1_ps(dx)), dw, acc);
  }
  static void store(float* y, F v, int n) { _mm512_mask_storeu_ps(y, static_cast<__mmask16>((1u << n) - 1), v); }
};
constexpr int kPackedTokens = 8;  // 8 sums + 8 weight vectors + temporaries of the 32 registers
#else
constexpr int kPackedTokens = 4;  // of the 16
#endif

#if defined(__AVX512VNNI__) && defined(__AVX512VL__)
constexpr bool kVnni = true;
#else
constexpr bool kVnni = false;
#endif

// The weight types of the packed layout: how a block's quants become eight vectors of unsigned
// bytes (u[j] meets activation bytes at offset xo[j] of the block), and what the unsigned view
// adds, per activation, that must come off: offset * sum(x).
struct Q4Packed {
  static constexpr int block_bytes = 16 * sizeof(BlockQ4_0), offset = 8;
  static constexpr int xo[8] = {0, 16, 4, 20, 8, 24, 12, 28};  // low nibbles: 4c.., high: 16 + 4c..
  template <class L>
  static void unpack(const uint8_t* b, int h, typename L::I* u) {
    const typename L::I low = L::bytes(0x0f);
    for (int c = 0; c < 4; ++c) {
      const typename L::I v = L::load(b + 32 + 64 * c, h);
      u[2 * c] = L::and_(v, low);
      u[2 * c + 1] = L::and_(L::shr4(v), low);
    }
  }
  template <class L>
  static typename L::I dot(typename L::I acc, typename L::I u, typename L::I s) {
    return L::dot(acc, u, s);
  }
};

// Q8_0's quants are packed shifted by 128 (q ^ 0x80), VNNI's unsigned operand as they are (and
// 128 * sum(x) comes off); without VNNI, signed again and multiplied by sign (offset 0).
struct Q8Packed {
  static constexpr int block_bytes = 16 * sizeof(BlockQ8_0), offset = kVnni ? 128 : 0;
  static constexpr int xo[8] = {0, 4, 8, 12, 16, 20, 24, 28};
  template <class L>
  static void unpack(const uint8_t* b, int h, typename L::I* u) {
    for (int c = 0; c < 8; ++c) {
      const typename L::I v = L::load(b + 32 + 64 * c, h);
      u[c] = kVnni ? v : L::xor_(v, L::bytes(static_cast<char>(0x80)));
    }
  }
  template <class L>
  static typename L::I dot(typename L::I acc, typename L::I u, typename L::I s) {
    return kVnni ? L::dot(acc, u, s) : L::dot_signed(acc, u, s);
  }
};

inline int32_t load4(const int8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

constexpr int kAhead = 8192;  // bytes a weight stream is prefetched ahead of its use

// L::rows rows (half h of the group at w, or all 16) x N tokens. Per block: the weights unpacked
// once for all N tokens; per token, eight multiply-adds of a weight vector with four activation
// bytes broadcast, into a sum that starts at the offset to take off, then one float step. dx,
// off: per token (stride `blocks`) and block.
template <class L, class P, int N>
void packed_tile(const uint8_t* w, int h, int blocks, const uint8_t* x, std::size_t xs, const float* dx,
                 const int32_t* off, float* y, std::size_t ys, int rows) {
  typename L::F acc[N];
  for (auto& a : acc) a = L::zero();
  for (int k = 0; k < blocks; ++k) {
    const uint8_t* b = w + std::size_t(P::block_bytes) * k;
    // A group is one stream the hardware prefetchers follow too slowly alone (Q4_0 out of
    // memory, one thread: 18.9 GB/s without, 20.6 prefetching 1 KiB ahead, 23.9 at 4 KiB; Q8_0
    // 21 -> 29; AMD EPYC): ask for the lines kAhead bytes on, into L2 as F16's stream (on a
    // Xeon with AMX, one token of a 134M Q8_0 model at one thread: 150-173 tokens/s with
    // prefetcht0 4 KiB ahead, 180-203 so; 8 sequences of wand-pot 5% faster). Prefetches never
    // fault, so those past the matrix are harmless.
    for (int at = 0; at < P::block_bytes; at += 64)
      _mm_prefetch(reinterpret_cast<const char*>(b + kAhead + at), _MM_HINT_T2);
    typename L::I u[8];
    P::template unpack<L>(b, h, u);
    const typename L::F dw = L::scales(b, h);
    for (int t = 0; t < N; ++t) {
      const int8_t* q = reinterpret_cast<const BlockQ8_0*>(x + xs * t)[k].qs;
      typename L::I sum = L::words(off[t * blocks + k]);
      for (int j = 0; j < 8; ++j) sum = P::template dot<L>(sum, u[j], L::words(load4(q + P::xo[j])));
      acc[t] = L::step(acc[t], sum, dx[t * blocks + k], dw);
    }
  }
  for (int t = 0; t < N; ++t) L::store(y + ys * t, acc[t], rows);
}

using PackedTileFn = void (*)(const uint8_t*, int, int, const uint8_t*, std::size_t, const float*, const int32_t*,
                              float*, std::size_t, int);

template <class L, class P, int... N>
PackedTileFn packed_pick(int n, std::integer_sequence<int, N...>) {
  constexpr PackedTileFn fns[] = {packed_tile<L, P, N + 1>...};
  return fns[n - 1];
}

// A thread's scratch memory for one use (Use), malloc'd and only ever grown (no std containers:
// their inline code compiled here could be the copy the linker keeps for the whole program,
// AVX-512 instructions and all). A malloc and free per product were 1.3% of a decoding step of 8
// sequences of wand-pot, whose products are small.
enum class Use { scales, tiles };
void* scratch(Use use, std::size_t bytes) {
  struct Block {
    void* p = nullptr;
    std::size_t n = 0;
    ~Block() { std::free(p); }
  };
  thread_local Block blocks[2];
  Block& b = blocks[static_cast<int>(use)];
  if (bytes > b.n) {
    std::free(b.p);
    b.p = std::malloc(bytes);
    b.n = bytes;
  }
  return b.p;
}

#if defined(__AMX_INT8__)
// ---- AMX (Intel's tile matrix unit): the packed quantized products for several tokens ----
// One tile product (tdpbsud) takes up to 16 tokens' 32 activation bytes of a block (tile A: m
// rows of 32 signed bytes) and the block's 16 x 32 weight bytes (tile B: 8 rows of 64 bytes, four
// bytes of each of the 16 rows per row: exactly pack_rows's quant chunks; Q4_0's nibbles are
// widened to bytes) and gives the m x 16 integer dots of that block (tile C).
// The block's scales differ per row and token, so C goes to memory after every block and takes
// the same float step as the VNNI tile: sum = C + off, acc = (float(sum) * dx) * dw + acc. The
// integer sums are exact either way, so every output is bit for bit what avx512 computes, and a
// token's results still do not depend on its batch. llama.cpp's AMX kernels take the same
// per-block route (ggml-cpu/amx/mmq.cpp).
// Tiles: C 0-3 (two pairs of blocks' sums), A 4-5 and B 6-7 (a pair's operands), since a tile
// product's result is ready only some tens of cycles on and tiles are not renamed (amx_tile).
// Configured for m tokens once per pass over the rows, unless the thread's tiles already are
// (sttilecfg reads what is loaded, ~5 ns; ldtilecfg takes ~45 ns, and 8 sequences of wand-pot
// make 25 products a step). Not released after a call, so that the next finds them configured:
// other code in the thread that uses tiles (libtorch's oneDNN) loads its own configuration, and
// Linux releases the tiles itself before a core idles.
// Below 8 tokens the VNNI tile stays: on a 5 MB Q8_0 matrix (one thread) 4 and 6 tokens ran as
// fast on tiles, 8 ran 10% faster, 12 and 16 20-25%; 8 sequences of wand-pot decoded together
// ran on a par (20.3k vs 20.5k tokens/s, the mean of six interleaved runs each, its matrices of 256
// columns leave each tile call little work to share its setup over).
constexpr int kAmxMinTokens = 8;

struct TileConfig {
  uint8_t palette, start_row, reserved[14];
  uint16_t colsb[16];
  uint8_t rows[16];
};
static_assert(sizeof(TileConfig) == 64);

void configure_tiles(int m) {
  alignas(64) TileConfig c{};
  c.palette = 1;
  for (int i = 0; i < 4; ++i) c.rows[i] = static_cast<uint8_t>(m), c.colsb[i] = 64;  // C: m tokens x 16 int32
  for (int i = 0; i < 2; ++i) {
    c.rows[4 + i] = static_cast<uint8_t>(m), c.colsb[4 + i] = 32;  // A: m tokens x 32 bytes
    c.rows[6 + i] = 8, c.colsb[6 + i] = 64;                         // B: 8 quads x 16 rows x 4 bytes
  }
  alignas(64) TileConfig loaded;
  _tile_storeconfig(&loaded);
  asm volatile("" ::: "memory");  // sttilecfg's and ldtilecfg's operands tell of 8 of their 64 bytes
  if (std::memcmp(&loaded, &c, sizeof c) != 0) _tile_loadconfig(&c);
}

// The float step of block k for M tokens from C's integer sums stored at c.
template <int M>
inline void amx_step(__m512* acc, const int32_t (*c)[16], int k, int blocks, const float* dx, const int32_t* off,
                     __m512 dw) {
  for (int t = 0; t < M; ++t) {
    const __m512i sum = _mm512_add_epi32(_mm512_load_si512(c[t]), _mm512_set1_epi32(off[t * blocks + k]));
    acc[t] = Lanes16::step(acc[t], sum, dx[t * blocks + k], dw);
  }
}

// The tile products of blocks k and k + 1 (k + 1 < blocks) into C tiles c0 and c1 (A 4 and 5,
// B 6 and 7). Tile numbers are part of the instruction, hence a macro.
#define WAND_AMX_PAIR(c0, c1, a, b, bs, k)      \
  do {                                          \
    _tile_zero(c0);                             \
    _tile_zero(c1);                             \
    _tile_loadd(4, (a) + 512 * (k), 32);        \
    _tile_loadd(6, (b) + (bs) * (k), 64);       \
    _tile_dpbsud(c0, 4, 6);                     \
    _tile_loadd(5, (a) + 512 * ((k) + 1), 32);  \
    _tile_loadd(7, (b) + (bs) * ((k) + 1), 64); \
    _tile_dpbsud(c1, 5, 7);                     \
  } while (0)

constexpr int kAmxPrefetch = 8;  // blocks

// M tokens (the configured rows of tiles A and C) against one 16-row group: block k's A at
// a + 512 k (32-byte rows), its B at b + bs k (64-byte rows), its scales at g + k * P::block_bytes.
// stream: B is the weights where they lie (not a staged copy), fetched kAmxPrefetch blocks ahead
// (past the last block, into the next group's, which follows): tile loads from L3 stalled the
// tile unit (8 tokens on a 5 MB matrix: 281 us a product without, 223 with).
// Software-pipelined over pairs of blocks: a pair's products are issued into one pair of C tiles
// (0-1 or 2-3) before the previous pair's sums are stored and take their float step, so the tile
// unit works while the vector units do (with one pair of C tiles, each pair's stores waited for
// its products, and the products for the stores: prompts 8-18% slower).
template <class P, int M>
void amx_tile(const uint8_t* g, const uint8_t* b, std::size_t bs, int blocks, const uint8_t* a, const float* dx,
              const int32_t* off, float* y, std::size_t ys, int rows, bool stream) {
  __m512 acc[M];
  for (auto& v : acc) v = _mm512_setzero_ps();
  alignas(64) int32_t c[2][M][16];
  auto dw = [&](int k) { return Lanes16::scales(g + std::size_t(P::block_bytes) * k, 0); };
  auto finish = [&](int k) {  // the pair k, k + 1 whose sums are in tiles 0-1 (k / 2 even) or 2-3
    if ((k / 2) % 2 == 0) {
      _tile_stored(0, c[0], 64);
      _tile_stored(1, c[1], 64);
    } else {
      _tile_stored(2, c[0], 64);
      _tile_stored(3, c[1], 64);
    }
    amx_step<M>(acc, c[0], k, blocks, dx, off, dw(k));
    amx_step<M>(acc, c[1], k + 1, blocks, dx, off, dw(k + 1));
  };
  const int pairs = blocks / 2;
  for (int p = 0; p < pairs; ++p) {
    if (stream)
      for (std::size_t i = 0; i < 2 * bs; i += 64)
        _mm_prefetch(reinterpret_cast<const char*>(b + bs * (2 * p + kAmxPrefetch) + i), _MM_HINT_T0);
    if (p % 2 == 0) {
      WAND_AMX_PAIR(0, 1, a, b, bs, 2 * p);
    } else {
      WAND_AMX_PAIR(2, 3, a, b, bs, 2 * p);
    }
    if (p > 0) finish(2 * p - 2);
  }
  if (pairs > 0) finish(2 * pairs - 2);
  if (blocks % 2) {
    const int k = blocks - 1;
    _tile_zero(0);
    _tile_loadd(4, a + 512 * k, 32);
    _tile_loadd(6, b + bs * k, 64);
    _tile_dpbsud(0, 4, 6);
    _tile_stored(0, c[0], 64);
    amx_step<M>(acc, c[0], k, blocks, dx, off, dw(k));
  }
  for (int t = 0; t < M; ++t) Lanes16::store(y + ys * t, acc[t], rows);
}
#undef WAND_AMX_PAIR

using AmxTileFn = void (*)(const uint8_t*, const uint8_t*, std::size_t, int, const uint8_t*, const float*,
                           const int32_t*, float*, std::size_t, int, bool);

template <class P, int... M>
AmxTileFn amx_pick(int m, std::integer_sequence<int, M...>) {
  constexpr AmxTileFn fns[] = {amx_tile<P, M + 1>...};
  return fns[m - 1];
}

// The rows [r0, r1) (r0 a multiple of 16) for T tokens: a pass over the rows for the whole
// 16-token tiles (each group's weights read once for all of them), then one for the rest; dx,
// off as packed_rows. The operands are first copied to 64-byte aligned tiles (the activations
// once per call, 16 tokens' 32 bytes of a block in 512 bytes; each group's weights once, Q4_0's
// nibbles widened to bytes), as llama.cpp packs its AMX operands: where they lie, nearly every
// 64-byte row of B and many of A span two cache lines (blocks of 544 and 34 bytes). Q8_0's weights
// are read in place when a single token tile meets them.
template <class P>
void amx_rows(const uint8_t* w, int blocks, int r0, int r1, const uint8_t* x, std::size_t xs, int T,
              const float* dx, const int32_t* off, float* y, std::size_t ys) {
  const int tiles = (T + 15) / 16;
  void* buf = scratch(Use::tiles, std::size_t(tiles + 1) * blocks * 512 + 64);
  auto* b = reinterpret_cast<uint8_t*>((reinterpret_cast<uintptr_t>(buf) + 63) & ~uintptr_t{63});
  uint8_t* a = b + std::size_t(blocks) * 512;
  for (int t = 0; t < T; ++t)
    for (int k = 0; k < blocks; ++k)
      std::memcpy(a + (std::size_t(t / 16) * blocks + k) * 512 + 32 * (t % 16),
                  reinterpret_cast<const BlockQ8_0*>(x + xs * t)[k].qs, 32);
  const std::size_t group = std::size_t(P::block_bytes) * blocks;
  const int full = T / 16 * 16;
  for (int pass = 0; pass < 2; ++pass) {
    const int t0 = pass == 0 ? 0 : full, t1 = pass == 0 ? full : T, m = std::min(16, t1 - t0);
    if (m == 0) continue;
    configure_tiles(m);
    // Q8_0's B read in place where one token tile meets it (a copy would cost more than it saves).
    const bool in_place = !std::is_same_v<P, Q4Packed> && t1 - t0 <= 16;
    const AmxTileFn tile = amx_pick<P>(m, std::make_integer_sequence<int, 16>{});
    for (int r = r0; r < r1; r += 16) {
      const uint8_t* g = w + group * (r / 16);
      for (int k = 0; k < blocks && !in_place; ++k) {  // B: the quant chunks in element order, as bytes
        const uint8_t* blk = g + std::size_t(P::block_bytes) * k;
        if constexpr (std::is_same_v<P, Q4Packed>) {  // elements 0-15 (low nibbles), then 16-31
          __m512i u[8];
          P::template unpack<Lanes16>(blk, 0, u);
          for (int c = 0; c < 4; ++c) {
            _mm512_store_si512(b + 512 * k + 64 * c, u[2 * c]);
            _mm512_store_si512(b + 512 * k + 64 * (4 + c), u[2 * c + 1]);
          }
        } else {
          std::memcpy(b + 512 * k, blk + 32, 512);
        }
      }
      asm volatile("" ::: "memory");  // tileloadd's asm names no memory operand
      const uint8_t* bq = in_place ? g + 32 : b;
      const std::size_t bs = in_place ? P::block_bytes : 512;
      const int rows = std::min(16, r1 - r);
      for (int t = t0; t < t1; t += m)
        tile(g, bq, bs, blocks, a + std::size_t(t / 16) * blocks * 512, dx + t * blocks, off + t * blocks,
             y + ys * t + r, ys, rows, in_place);
    }
  }
}
#endif

// The sum of 32 signed bytes: as unsigned (q ^ 0x80 = q + 128) by vpsadbw, less 32 * 128. (The
// compiler's own loop was a quarter of packed_rows' time in a two-thread 134M Q8_0 prompt, AMX.)
inline int32_t byte_sum(const int8_t* q) {
  const __m256i u = _mm256_xor_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(q)), _mm256_set1_epi8(-128));
  const __m256i s = _mm256_sad_epu8(u, _mm256_setzero_si256());  // four 64-bit partial sums
  const __m128i h = _mm_add_epi64(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
  return static_cast<int32_t>(_mm_cvtsi128_si64(h) + _mm_extract_epi64(h, 1)) - 32 * 128;
}

// The same of 16 bytes, one load (so that it forwards from store_rounded's 16-byte store).
inline int32_t byte_sum16(const int8_t* q) {
  const __m128i u = _mm_xor_si128(_mm_loadu_si128(reinterpret_cast<const __m128i*>(q)), _mm_set1_epi8(-128));
  const __m128i s = _mm_sad_epu8(u, _mm_setzero_si128());
  return static_cast<int32_t>(_mm_cvtsi128_si64(s) + _mm_extract_epi64(s, 1)) - 16 * 128;
}

template <class P>
void packed_rows(const uint8_t* w, int cols, int r0, int r1, const uint8_t* x, std::size_t xs, int T, float* y,
                 std::size_t ys) {
  const int blocks = cols / 32;
  const std::size_t group = std::size_t(P::block_bytes) * blocks, n = std::size_t(T) * blocks;
  // Each activation block's float scale and offset, once for every row tile.
  auto* dx = static_cast<float*>(scratch(Use::scales, n * (sizeof(float) + sizeof(int32_t))));
  auto* off = reinterpret_cast<int32_t*>(dx + n);
  for (int t = 0; t < T; ++t)
    for (int k = 0; k < blocks; ++k) {
      const BlockQ8_0& b = reinterpret_cast<const BlockQ8_0*>(x + xs * t)[k];
      dx[t * blocks + k] = half(b.d);
      off[t * blocks + k] = -P::offset * byte_sum(b.qs);
    }
#if defined(__AMX_INT8__)
  if (T >= kAmxMinTokens) return amx_rows<P>(w, blocks, r0, r1, x, xs, T, dx, off, y, ys);
#endif
  auto run = [&](auto lanes, int r) {
    using L = decltype(lanes);
    const int rows = std::min(L::rows, r1 - r);
    for (int t = 0; t < T; t += kPackedTokens) {
      const int nt = std::min(kPackedTokens, T - t);
      packed_pick<L, P>(nt, std::make_integer_sequence<int, kPackedTokens>{})(
          w + group * (r / 16), r % 16 / 8, blocks, x + xs * t, xs, dx + t * blocks, off + t * blocks,
          y + ys * t + r, ys, rows);
    }
    return rows;
  };
  for (int r = r0; r < r1;) {  // r0 and so every r here: a multiple of 8
#if defined(__AVX512F__)
    if (r % 16 == 0 && r1 - r > 8) {
      r += run(Lanes16{}, r);
      continue;
    }
#endif
    r += run(Lanes8{}, r);
  }
}


// Two chains of H x V sums set to z, the loops unrolled so that each sum can live in a register.
template <class T, int H, int V>
inline void fill_chains(T (&a)[2][H][V], T z) {
#pragma GCC unroll 2
  for (int c = 0; c < 2; ++c)
#pragma GCC unroll 4
    for (int h = 0; h < H; ++h)
#pragma GCC unroll 8
      for (int v = 0; v < V; ++v) a[c][h][v] = z;
}

// out[j] = sum over k < count of (coef[k] * scale) * rows[k * stride + j], j < width <= 64: up to
// four (AVX2: eight) vectors of sums held in registers while k runs, each two chains of fused
// multiply-adds, so their latencies overlap (one chain of sixteen sums ran at a quarter of the
// FMA throughput: attention was 18% of a 25M model's prompt time). Each sum's steps are the
// same whatever the width, so results do not depend on how a row is cut.
// V vectors of sums (a constant, so they stay in registers), the last one's lanes past `rest`
// masked off (masked loads never touch them).
// E: the rows' element type, float or fp16 (an F16 KV cache), converted as loaded. H sets of
// coefficients (cs apart, each with its scale) over the same rows, their sums os apart: each row
// vector loaded once for all H, each set's sums in the same steps as alone.
template <class E, int V, int H>
void weighted_vecs(const float* coef, std::size_t cs, const float* scale, const E* rows, std::size_t stride,
                   int count, int rest, float* out, std::size_t os) {
#if defined(__AVX512F__)
  const __mmask16 mask = static_cast<__mmask16>((1u << rest) - 1);
  auto load_last = [&](const E* p) {
    if constexpr (sizeof(E) == 4) {
      return _mm512_maskz_loadu_ps(mask, p);
    } else {
      return _mm512_maskz_cvtph_ps(0xffff, _mm256_maskz_loadu_epi16(mask, p));
    }
  };
  auto broadcast = [](float c) { return _mm512_set1_ps(c); };
#else
  const __m256i mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(rest), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  auto load_last = [&](const E* p) {
    if constexpr (sizeof(E) == 4) {
      return _mm256_maskload_ps(p, mask);
    } else {  // AVX2 has no 16-bit masked load: the lanes below `rest` copied out
      alignas(16) uint16_t tmp[8] = {};
      std::memcpy(tmp, p, sizeof(uint16_t) * rest);
      return hload(tmp);
    }
  };
  auto broadcast = [](float c) { return _mm256_set1_ps(c); };
#endif
  // Even and odd k in separate sums, added at the end: two chains per vector, so even a head of
  // 32 dimensions (two vectors) keeps four multiply-adds in flight. Both chains in one array and
  // every loop over the sums unrolled, so that each sum lives in a register: as two arrays with
  // loops left to GCC, every sum went to the stack after every multiply-add (wand-pot, 8
  // sequences: F32-cache decoding 10% slower).
  FVec acc[2][H][V];
  fill_chains(acc, fzero());
  auto step = [&](FVec (&a)[H][V], int k) {
    const E* r = rows + std::size_t(k) * stride;
    FVec b[H];
#pragma GCC unroll 4
    for (int h = 0; h < H; ++h) b[h] = broadcast(coef[h * cs + k] * scale[h]);
#pragma GCC unroll 8
    for (int v = 0; v < V; ++v) {
      const FVec w = v < V - 1 ? load_rows(r + v * kFloatLanes) : load_last(r + v * kFloatLanes);
#pragma GCC unroll 4
      for (int h = 0; h < H; ++h) a[h][v] = fmadd(b[h], w, a[h][v]);
    }
  };
  int k = 0;
  for (; k + 2 <= count; k += 2) step(acc[0], k), step(acc[1], k + 1);
  if (k < count) step(acc[0], k);
#pragma GCC unroll 4
  for (int h = 0; h < H; ++h) {
    float* o = out + h * os;
#pragma GCC unroll 8
    for (int v = 0; v < V; ++v) acc[0][h][v] = acc[0][h][v] + acc[1][h][v];
#pragma GCC unroll 8
    for (int v = 0; v < V - 1; ++v) fstore(o + v * kFloatLanes, acc[0][h][v]);
#if defined(__AVX512F__)
    _mm512_mask_storeu_ps(o + (V - 1) * kFloatLanes, mask, acc[0][h][V - 1]);
#else
    _mm256_maskstore_ps(o + (V - 1) * kFloatLanes, mask, acc[0][h][V - 1]);
#endif
  }
}

// Two sets (query heads) at a time where the registers hold them: AVX-512's 32 hold 2 x 4 vectors of
// sums in two chains, 4 row vectors and 2 broadcasts; AVX2's 16 only one set's. (The Q8 cache's
// integer products take as many at a time.)
#if defined(__AVX512F__)
constexpr int kMaxSets = 2;
#else
constexpr int kMaxSets = 1;
#endif

// weighted_vecs for `vecs` vectors and h sets (1, or kMaxSets).
template <class E, int... V>
auto pick_vecs(int vecs, int h, std::integer_sequence<int, V...>) {
  constexpr decltype(&weighted_vecs<E, 1, 1>) one[] = {weighted_vecs<E, V + 1, 1>...},
                                              sets[] = {weighted_vecs<E, V + 1, kMaxSets>...};
  return (h == 1 ? one : sets)[vecs - 1];
}

template <class E>
void weighted_sets(int sets, const float* coef, std::size_t cs, const float* scale, const E* rows, std::size_t stride,
                   int count, int width, float* out, std::size_t os) {
  const int vecs = (width + kFloatLanes - 1) / kFloatLanes, rest = width - (vecs - 1) * kFloatLanes;
  for (int s = 0; s < sets;) {
    const int h = std::min(kMaxSets, sets - s);
    pick_vecs<E>(vecs, h, std::make_integer_sequence<int, 64 / kFloatLanes>{})(coef + s * cs, cs, scale + s, rows,
                                                                                stride, count, rest, out + s * os, os);
    s += h;
  }
}

// Round to nearest even, as fp32_to_fp16 in kernels.h: the same bits.
void to_fp16(const float* x, uint16_t* y, std::size_t n) {
  std::size_t i = 0;
#if defined(__AVX512F__)
  for (; i + 16 <= n; i += 16)
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(y + i), _mm512_maskz_cvtps_ph(0xffff, _mm512_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT));
#endif
  for (; i + 8 <= n; i += 8)
    _mm_storeu_si128(reinterpret_cast<__m128i*>(y + i), _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT));
  for (; i < n; ++i) y[i] = static_cast<uint16_t>(_cvtss_sh(x[i], _MM_FROUND_TO_NEAREST_INT));
}

void round_fp16(float* x, std::size_t n, float scale) {
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(x + i, _mm256_cvtph_ps(_mm256_cvtps_ph(_mm256_mul_ps(_mm256_loadu_ps(x + i), _mm256_set1_ps(scale)),
                                                            _MM_FROUND_TO_NEAREST_INT)));
  for (; i < n; ++i) x[i] = _cvtsh_ss(static_cast<uint16_t>(_cvtss_sh(x[i] * scale, _MM_FROUND_TO_NEAREST_INT)));
}

// As quantize_q8_0 in kernels.cpp, bit for bit: the same float operations, rounding half to
// even (the conversion's default mode, as nearbyint's) and the scale to fp16 by F16C.
void quantize(const float* x, BlockQ8_0* y, std::size_t n) {
  const __m256 sign = _mm256_set1_ps(-0.0f);
  for (std::size_t b = 0; b < n / 32; ++b) {
    const float* v = x + b * 32;
    __m256 q[4], m = _mm256_setzero_ps();
    for (int i = 0; i < 4; ++i) {
      q[i] = _mm256_loadu_ps(v + 8 * i);
      m = _mm256_max_ps(m, _mm256_andnot_ps(sign, q[i]));
    }
    __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
    m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
    m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
    const float amax = _mm_cvtss_f32(m4);
    const float d = amax / 127.f, id = amax != 0.f ? 127.f / amax : 0.f;
    y[b].d = static_cast<uint16_t>(_cvtss_sh(d, _MM_FROUND_TO_NEAREST_INT));
    const __m256 idv = _mm256_set1_ps(id);
    __m256i i32[4];
    for (int i = 0; i < 4; ++i) i32[i] = _mm256_cvtps_epi32(_mm256_mul_ps(q[i], idv));
    // Packs interleave the 128-bit halves; the permutation puts the 32 bytes back in order.
    const __m256i i16a = _mm256_packs_epi32(i32[0], i32[1]), i16b = _mm256_packs_epi32(i32[2], i32[3]);
    const __m256i i8 = _mm256_permutevar8x32_epi32(_mm256_packs_epi16(i16a, i16b),
                                                   _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(y[b].qs), i8);
  }
}

// ---- elementwise ----

// e^x for x in [-87, 88] (clamped there: softmax's shifted scores are <= 0; SiLU's gate g below
// -88 gives g / e^88, not g e^g, an output under 1e-35 either way), within 2 ulp: x = n ln2 + r
// with |r| <= ln2 / 2 (ln2 in two parts, so r is exact), e^r by its degree-7 Taylor polynomial
// in Horner form (truncation error < 2^-26 there), times 2^n by adding n to the exponent.
inline FVec fexp(FVec x) {
#if defined(__AVX512F__)
  auto set = [](float v) { return _mm512_set1_ps(v); };
  x = _mm512_maskz_min_ps(0xffff, _mm512_maskz_max_ps(0xffff, x, set(-87.f)), set(88.f));
  const FVec n = _mm512_maskz_roundscale_ps(0xffff, _mm512_mul_ps(x, set(1.44269504f)), _MM_FROUND_TO_NEAREST_INT);
#else
  auto set = [](float v) { return _mm256_set1_ps(v); };
  x = _mm256_min_ps(_mm256_max_ps(x, set(-87.f)), set(88.f));
  const FVec n = _mm256_round_ps(_mm256_mul_ps(x, set(1.44269504f)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
#endif
  FVec r = fmadd(n, set(-0.693145752f), x);  // ln2's high part: 12 bits, so n * it is exact
  r = fmadd(n, set(-1.42860677e-6f), r);     // and the rest
  FVec p = set(1.f / 5040);
  for (float c : {1.f / 720, 1.f / 120, 1.f / 24, 1.f / 6, 0.5f, 1.f, 1.f}) p = fmadd(p, r, set(c));
#if defined(__AVX512F__)
  return _mm512_maskz_scalef_ps(0xffff, p, n);
#else
  const __m256i e = _mm256_slli_epi32(_mm256_cvtps_epi32(n), 23);
  return _mm256_castsi256_ps(_mm256_add_epi32(_mm256_castps_si256(p), e));
#endif
}

inline float fmax_all(__m256 v) {
  __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  m = _mm_max_ps(m, _mm_movehl_ps(m, m));
  return _mm_cvtss_f32(_mm_max_ss(m, _mm_movehdup_ps(m)));
}

#if defined(__AVX512F__)
inline __mmask16 lanes_below(int n) { return static_cast<__mmask16>((1u << n) - 1); }
inline FVec fload_n(const float* p, int n) { return _mm512_maskz_loadu_ps(lanes_below(n), p); }
inline FVec fkeep(FVec v, int n) { return _mm512_maskz_mov_ps(lanes_below(n), v); }  // lanes n and up zeroed
// Lanes n and up set to `fill`.
inline FVec fload_fill(const float* p, int n, float fill) {
  return _mm512_mask_loadu_ps(_mm512_set1_ps(fill), lanes_below(n), p);
}
inline void fstore_n(float* p, FVec v, int n) { _mm512_mask_storeu_ps(p, static_cast<__mmask16>((1u << n) - 1), v); }
inline float fmax_all(FVec v) {
  return fmax_all(_mm256_max_ps(_mm512_maskz_extractf32x8_ps(0xff, v, 0), _mm512_maskz_extractf32x8_ps(0xff, v, 1)));
}
inline FVec fmaxv(FVec a, FVec b) { return _mm512_maskz_max_ps(0xffff, a, b); }
inline FVec fabsv(FVec v) {
  return _mm512_castsi512_ps(_mm512_and_si512(_mm512_castps_si512(v), _mm512_set1_epi32(0x7fffffff)));
}
inline FVec fset(float v) { return _mm512_set1_ps(v); }
#else
inline __m256i lanes_below(int n) {
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}
inline FVec fload_n(const float* p, int n) { return _mm256_maskload_ps(p, lanes_below(n)); }
inline FVec fkeep(FVec v, int n) { return _mm256_and_ps(v, _mm256_castsi256_ps(lanes_below(n))); }
inline FVec fload_fill(const float* p, int n, float fill) {
  return _mm256_blendv_ps(_mm256_set1_ps(fill), fload_n(p, n), _mm256_castsi256_ps(lanes_below(n)));
}
inline void fstore_n(float* p, FVec v, int n) { _mm256_maskstore_ps(p, lanes_below(n), v); }
inline FVec fmaxv(FVec a, FVec b) { return _mm256_max_ps(a, b); }
inline FVec fabsv(FVec v) { return _mm256_and_ps(v, _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff))); }
inline FVec fset(float v) { return _mm256_set1_ps(v); }
#endif

// Calls f(i, lanes) for each vector of [0, n), the last one partial.
template <class F>
inline void each_vector(std::size_t n, F f) {
  std::size_t i = 0;
  for (; i + kFloatLanes <= n; i += kFloatLanes) f(i, kFloatLanes);
  if (i < n) f(i, static_cast<int>(n - i));
}

// The scaled scores are computed twice rather than stored: the same bits, one pass less.
float softmax_exp(float* x, int n, float scale) {
  const FVec s = fset(scale);
  FVec m = fset(-__builtin_inff());
  each_vector(n, [&](std::size_t i, int k) { m = fmaxv(m, fload_fill(x + i, k, -__builtin_inff()) * s); });
  const FVec mx = fset(fmax_all(m));
  FVec sum = fzero();
  each_vector(n, [&](std::size_t i, int k) {
    const FVec e = fexp(fload_n(x + i, k) * s - mx);
    fstore_n(x + i, e, k);
    sum = sum + fkeep(e, k);
  });
  return fsum(sum);
}

// kernels.h, argmax: the largest by vectors (x[0] filling a partial one; a NaN lane loses, as
// max_ps returns its second operand when the first is NaN), then the first lane equal to it.
// NaN first is std::max_element's answer 0, since nothing compares greater.
int argmax(const float* x, int n) {
  if (x[0] != x[0]) return 0;
  FVec m = fset(x[0]);
  each_vector(n, [&](std::size_t i, int k) { m = fmaxv(fload_fill(x + i, k, x[0]), m); });
  const float best = fmax_all(m);
  for (int i = 0;; i += kFloatLanes) {
    const int k = std::min(kFloatLanes, n - i);
#if defined(__AVX512F__)
    const unsigned hit = _mm512_mask_cmp_ps_mask(lanes_below(k), fload_n(x + i, k), fset(best), _CMP_EQ_OQ);
#else
    const __m256 eq = _mm256_cmp_ps(fload_n(x + i, k), fset(best), _CMP_EQ_OQ);
    const unsigned hit = static_cast<unsigned>(_mm256_movemask_ps(eq)) & ((1u << k) - 1);
#endif
    if (hit) return i + __builtin_ctz(hit);
  }
}

// 1 / d by the hardware's estimate (AVX-512: 14 bits, AVX2: 12) and one Newton step, r (2 - d r):
// within 2 ulp. A division's throughput was most of this function's time (one per 16 cycles: 8
// sequences of wand-pot, 3% of a decoding step).
inline FVec frecip(FVec d) {
#if defined(__AVX512F__)
  const FVec r = _mm512_maskz_rcp14_ps(0xffff, d);
#else
  const FVec r = _mm256_rcp_ps(d);
#endif
  return r * (fset(2.f) - d * r);
}

void silu_mul(float* g, const float* u, std::size_t n) {
  each_vector(n, [&](std::size_t i, int k) {
    const FVec a = fload_n(g + i, k);
    fstore_n(g + i, a * frecip(fset(1.f) + fexp(fzero() - a)) * fload_n(u + i, k), k);
  });
}

// The squares rounded to float, as the generic path and ggml round them, summed in double lanes
// (the order differs from the generic path's sequential sum only far below float precision).
void rmsnorm(const float* x, const float* w, float* out, int n, float eps) {
#if defined(__AVX512F__)
  __m512d ss = _mm512_setzero_pd();
  each_vector(n, [&](std::size_t i, int k) {
    const FVec v = fload_n(x + i, k), sq = _mm512_mul_ps(v, v);
    // (The masked forms: GCC 12 warns that the plain ones read an undefined register.)
    ss = _mm512_add_pd(ss, _mm512_maskz_cvtps_pd(0xff, _mm512_maskz_extractf32x8_ps(0xff, sq, 0)));
    ss = _mm512_add_pd(ss, _mm512_maskz_cvtps_pd(0xff, _mm512_maskz_extractf32x8_ps(0xff, sq, 1)));
  });
  const __m256d s4 = _mm256_add_pd(_mm512_maskz_extractf64x4_pd(0xf, ss, 0), _mm512_maskz_extractf64x4_pd(0xf, ss, 1));
  alignas(32) double lanes[4];
  _mm256_store_pd(lanes, s4);
  const double sum = (lanes[0] + lanes[1]) + (lanes[2] + lanes[3]);
#else
  __m256d ss = _mm256_setzero_pd();
  each_vector(n, [&](std::size_t i, int k) {
    const FVec v = fload_n(x + i, k), sq = _mm256_mul_ps(v, v);
    ss = _mm256_add_pd(ss, _mm256_cvtps_pd(_mm256_castps256_ps128(sq)));
    ss = _mm256_add_pd(ss, _mm256_cvtps_pd(_mm256_extractf128_ps(sq, 1)));
  });
  alignas(32) double lanes[4];
  _mm256_store_pd(lanes, ss);
  const double sum = (lanes[0] + lanes[1]) + (lanes[2] + lanes[3]);
#endif
  const FVec scale = fset(1.0f / __builtin_sqrtf(static_cast<float>(sum / n) + eps));
  each_vector(n, [&](std::size_t i, int k) { fstore_n(out + i, fload_n(x + i, k) * scale * fload_n(w + i, k), k); });
}

// Each pair (a, b) -> (a c + b (-s), b c + a s): the vector times cos2 plus the pair-swapped
// vector times sin2, with no fused multiply-add, so the bits are the generic path's.
void rope(float* v, int n_heads, int head_dim, int rope_dim, const float* cos2, const float* sin2) {
  for (int h = 0; h < n_heads; ++h) {
    float* p = v + std::size_t(h) * head_dim;
    each_vector(rope_dim, [&](std::size_t i, int k) {
      const FVec a = fload_n(p + i, k);
#if defined(__AVX512F__)
      const FVec swapped = _mm512_maskz_permute_ps(0xffff, a, 0xb1);
#else
      const FVec swapped = _mm256_permute_ps(a, 0xb1);
#endif
      FVec c = a * fload_n(cos2 + i, k), s = swapped * fload_n(sin2 + i, k);
      // Kept apart so the compiler cannot fuse the product into the sum.
      __asm__("" : "+v"(c), "+v"(s));
      fstore_n(p + i, c + s, k);
    });
  }
}

// ---- attention over an int8 key cache (kernels.h, q8_scores) ----
// Keys in blocks of 64 positions, [head_dim / 4][64][4] bytes: one vector of keys is 4
// dimensions of 16 positions (AVX2: 8), so a query head's 4 bytes broadcast meet it in one
// multiply-add of bytes into 16 (8) int32 sums, one per position, and no sum is horizontal.
// The integer dots are exact whatever the path, and each score takes the same two float
// multiplies after, so every path gives the same bits.
#if defined(__AVX512F__)
// H query heads (1 or 2) over one block: 4 x H vectors of sums. VNNI multiplies unsigned by
// signed bytes: the keys as k ^ 0x80 = k + 128, so 128 * sum(q) comes off.
template <int H>
void q8_block(const int8_t* const* q, const int32_t* qsum, const float* q_scale, const int8_t* blk,
              const float* k_scale, int quads, int lanes, float* const* out) {
  __m512i acc[H][4];
  for (auto& a : acc)
    for (auto& v : a) v = _mm512_setzero_si512();
  const __m512i flip = _mm512_set1_epi8(static_cast<char>(0x80));
  for (int j = 0; j < quads; ++j) {
    __m512i k[4];
#pragma GCC unroll 4
    for (int v = 0; v < 4; ++v)
      k[v] = _mm512_xor_si512(_mm512_loadu_si512(blk + std::size_t(j) * 4 * kQ8KeyBlock + 64 * v), flip);
#pragma GCC unroll 2
    for (int h = 0; h < H; ++h) {
      const __m512i qb = _mm512_set1_epi32(load4(q[h] + 4 * j));
#pragma GCC unroll 4
      for (int v = 0; v < 4; ++v) acc[h][v] = _mm512_dpbusd_epi32(acc[h][v], k[v], qb);
    }
  }
  for (int v = 0; v < 4 && 16 * v < lanes; ++v) {
    const __mmask16 m = lanes_below(std::min(16, lanes - 16 * v));
    const FVec ks = _mm512_maskz_loadu_ps(m, k_scale + 16 * v);
    for (int h = 0; h < H; ++h) {
      const __m512i dot = _mm512_sub_epi32(acc[h][v], _mm512_set1_epi32(128 * qsum[h]));
      const FVec s = _mm512_mul_ps(_mm512_mul_ps(_mm512_maskz_cvtepi32_ps(0xffff, dot), ks), fset(q_scale[h]));
      _mm512_mask_storeu_ps(out[h] + 16 * v, m, s);
    }
  }
}
#else
// One query head over one block: 8 vectors of sums, |q| times the keys with q's signs (the
// maddubs pairs stay below 2 * 127 * 127, so they never saturate).
template <int H>
void q8_block(const int8_t* const* q, const int32_t*, const float* q_scale, const int8_t* blk, const float* k_scale,
              int quads, int lanes, float* const* out) {
  static_assert(H == 1);
  __m256i acc[8];
  for (auto& v : acc) v = _mm256_setzero_si256();
  for (int j = 0; j < quads; ++j) {
    const __m256i qb = _mm256_set1_epi32(load4(q[0] + 4 * j)), qa = _mm256_abs_epi8(qb);
#pragma GCC unroll 8
    for (int v = 0; v < 8; ++v) {
      const __m256i k =
          _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + std::size_t(j) * 4 * kQ8KeyBlock + 32 * v));
      acc[v] = _mm256_add_epi32(acc[v], dot_i8x32(qb, qa, k));
    }
  }
  for (int v = 0; v < 8 && 8 * v < lanes; ++v) {
    const int k = std::min(8, lanes - 8 * v);
    const FVec s = _mm256_mul_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(acc[v]), fload_n(k_scale + 8 * v, k)),
                                 fset(q_scale[0]));
    fstore_n(out[0] + 8 * v, s, k);
  }
}
#endif

void q8_scores(int sets, const int8_t* q, std::size_t qs, const float* q_scale, const int8_t* keys,
               const float* k_scale, int head_dim, int n, float* out, std::size_t os) {
  const int quads = head_dim / 4;
  for (int s0 = 0; s0 < sets; s0 += kMaxSets) {
    const int h = std::min(kMaxSets, sets - s0);
    const int8_t* qh[kMaxSets];
    int32_t qsum[kMaxSets];
    for (int s = 0; s < h; ++s) {
      qh[s] = q + (s0 + s) * qs;
      qsum[s] = 0;  // for VNNI's unsigned view (AVX2's signed products need none)
#if defined(__AVX512F__)
      int d = 0;
      for (; d + 16 <= head_dim; d += 16) qsum[s] += byte_sum16(qh[s] + d);  // as quantize_i8 stored them
      for (; d < head_dim; ++d) qsum[s] += qh[s][d];
#endif
    }
    for (int p0 = 0; p0 < n; p0 += kQ8KeyBlock) {
      float* o[kMaxSets];
      for (int s = 0; s < h; ++s) o[s] = out + (s0 + s) * os + p0;
      const int8_t* blk = keys + std::size_t(p0) * head_dim;
      const int lanes = std::min(kQ8KeyBlock, n - p0);
      if (h == kMaxSets) {
        q8_block<kMaxSets>(qh, qsum, q_scale + s0, blk, k_scale + p0, quads, lanes, o);
      } else {
        q8_block<1>(qh, qsum, q_scale + s0, blk, k_scale + p0, quads, lanes, o);
      }
    }
  }
}

// k lanes of v rounded by the conversion (to nearest even, as nearbyint) into integers of T
// (int8_t or int16_t; the values fit). A whole vector by a plain store of the narrowed lanes: a
// load of what a narrowing store to memory (vpmovsdb m128) wrote waits until it reaches the cache
// (no store forwarding), and the next kernel reads these bytes at once (q8_scores' query sums
// stalled so: 2% of a decoding step of 8 sequences of wand-pot).
template <class T>
inline void store_rounded(T* q, FVec v, int k) {
#if defined(__AVX512F__)
  const __m512i r = _mm512_maskz_cvtps_epi32(0xffff, v);
  if constexpr (sizeof(T) == 1) {
    if (k == kFloatLanes)
      return _mm_storeu_si128(reinterpret_cast<__m128i*>(q), _mm512_maskz_cvtsepi32_epi8(0xffff, r));
    _mm512_mask_cvtsepi32_storeu_epi8(q, lanes_below(k), r);
  } else {
    if (k == kFloatLanes)
      return _mm256_storeu_si256(reinterpret_cast<__m256i*>(q), _mm512_maskz_cvtsepi32_epi16(0xffff, r));
    _mm512_mask_cvtsepi32_storeu_epi16(q, lanes_below(k), r);
  }
#else
  alignas(32) int32_t r[8];
  _mm256_store_si256(reinterpret_cast<__m256i*>(r), _mm256_cvtps_epi32(v));
  for (int j = 0; j < k; ++j) q[j] = static_cast<T>(r[j]);
#endif
}

// kernels.h, quantize_i8: the largest magnitude by vectors, then each x / d, to be rounded to
// bytes by put(i, lanes, vector) (store_rounded, or q8_store's writes into the cache's layout).
template <class Put>
float quantize_i8_by(const float* x, int n, Put put) {
  FVec m = fzero();
  each_vector(n, [&](std::size_t i, int k) { m = fmaxv(m, fabsv(fload_n(x + i, k))); });
  const float d = fmax_all(m) / 127.f, id = d != 0 ? 1.f / d : 0.f;
  each_vector(n, [&](std::size_t i, int k) { put(i, k, fload_n(x + i, k) * fset(id)); });
  return d;
}

float quantize_i8(const float* x, int n, int8_t* q) {
  return quantize_i8_by(x, n, [&](std::size_t i, int k, FVec v) { store_rounded(q + i, v, k); });
}

// kernels.h, q8_store: quantize_i8's bytes written straight into the layouts. AVX-512: a vector's
// keys as k / 4 four-byte groups scattered 4 x 64 bytes apart, its values widened to 16 bits (the
// byte in the half of the pair's position) and stored through a byte mask: where the byte-wise
// copies were 3% of a decoding step of 8 sequences of wand-pot, their stores the most of it.
void q8_store(const float* key, const float* value, int head_dim, int p, int8_t* keys, float* k_scale, int8_t* values,
              float* v_scale) {
  int8_t* blk = keys + std::size_t(p / kQ8KeyBlock) * kQ8KeyBlock * head_dim + 4 * (p % kQ8KeyBlock);
  int8_t* pair = values + std::size_t(p / 2) * 2 * head_dim;  // dimension d at 2 d + p % 2
#if defined(__AVX512F__)
  k_scale[p] = quantize_i8_by(key, head_dim, [&](std::size_t i, int k, FVec v) {
    const __m128i bytes = _mm512_maskz_cvtsepi32_epi8(0xffff, _mm512_maskz_cvtps_epi32(0xffff, v));
    const __m128i at = _mm_setr_epi32(0, 4 * kQ8KeyBlock, 8 * kQ8KeyBlock, 12 * kQ8KeyBlock);
    _mm_mask_i32scatter_epi32(blk + i * kQ8KeyBlock, static_cast<__mmask8>((1u << (k / 4)) - 1), at, bytes, 1);
  });
  v_scale[p] = quantize_i8_by(value, head_dim, [&](std::size_t i, int k, FVec v) {
    __m256i w = _mm256_cvtepu8_epi16(_mm512_maskz_cvtsepi32_epi8(0xffff, _mm512_maskz_cvtps_epi32(0xffff, v)));
    if (p % 2) w = _mm256_slli_epi16(w, 8);
    const __mmask32 lanes = static_cast<__mmask32>((uint64_t{1} << (2 * k)) - 1) & (p % 2 ? 0xaaaaaaaau : 0x55555555u);
    _mm256_mask_storeu_epi8(pair + 2 * i, lanes, w);
  });
#else
  alignas(32) int8_t q[kFloatLanes];
  k_scale[p] = quantize_i8_by(key, head_dim, [&](std::size_t i, int k, FVec v) {
    store_rounded(q, v, k);
    for (int j = 0; j < k; j += 4) std::memcpy(blk + (i + j) * kQ8KeyBlock, q + j, 4);
  });
  v_scale[p] = quantize_i8_by(value, head_dim, [&](std::size_t i, int k, FVec v) {
    store_rounded(q, v, k);
    for (int j = 0; j < k; ++j) pair[2 * (i + j) + p % 2] = q[j];
  });
#endif
}

// kernels.h, softmax_i16: softmax_exp's two passes, the second also taking the weights' largest
// magnitude, then a third rounding them (as quantize_i8, to 16 bits); H rows' passes together.
// (One row at a time, each row's three reductions to a scalar waited on one another: 7% of a
// decoding step of 8 sequences of wand-pot.)
template <int H>
void softmax_i16_rows(float* x, std::size_t xs, int n, float scale, const float* mul, int16_t* q, std::size_t qs,
                      float* out) {
  const FVec s = fset(scale);
  FVec m[H], mx[H], sum[H], wmax[H];
  for (int h = 0; h < H; ++h) m[h] = fset(-__builtin_inff()), sum[h] = wmax[h] = fzero();
  each_vector(n, [&](std::size_t i, int k) {
    for (int h = 0; h < H; ++h) m[h] = fmaxv(m[h], fload_fill(x + h * xs + i, k, -__builtin_inff()) * s);
  });
  for (int h = 0; h < H; ++h) mx[h] = fset(fmax_all(m[h]));
  each_vector(n, [&](std::size_t i, int k) {
    const FVec w = fload_n(mul + i, k);
    for (int h = 0; h < H; ++h) {
      const FVec e = fexp(fload_n(x + h * xs + i, k) * s - mx[h]);
      fstore_n(x + h * xs + i, e, k);
      sum[h] = sum[h] + fkeep(e, k);
      wmax[h] = fmaxv(wmax[h], fabsv(fkeep(e, k) * w));
    }
  });
  float d[H], id[H];
  for (int h = 0; h < H; ++h) d[h] = fmax_all(wmax[h]) / 32767.f, id[h] = d[h] != 0 ? 1.f / d[h] : 0.f;
  each_vector(n, [&](std::size_t i, int k) {
    const FVec w = fload_n(mul + i, k);
    for (int h = 0; h < H; ++h) store_rounded(q + h * qs + i, fload_n(x + h * xs + i, k) * w * fset(id[h]), k);
  });
  for (int h = 0; h < H; ++h) {
    if (n % 2) q[h * qs + n] = 0;
    out[h] = d[h] / fsum(sum[h]);
  }
}

void softmax_i16(int sets, float* x, std::size_t xs, int n, float scale, const float* mul, int16_t* q, std::size_t qs,
                 float* out) {
  int s = 0;
  for (; s + 2 <= sets; s += 2) softmax_i16_rows<2>(x + s * xs, xs, n, scale, mul, q + s * qs, qs, out + s);
  if (s < sets) softmax_i16_rows<1>(x + s * xs, xs, n, scale, mul, q + s * qs, qs, out + s);
}

// kernels.h, q8_values. Per pair of positions: each vector of value bytes (AVX-512: 16
// dimensions x 2 positions, widened to 16-bit) meets each head's two weights broadcast in one
// multiply-add of 16-bit pairs into 16 (AVX2: 8) int32 sums. V vectors of dimensions, H heads.
#if defined(__AVX512F__)
using IVec = __m512i;
constexpr int kValueDims = 16;  // dimensions a vector of sums holds
inline IVec izero() { return _mm512_setzero_si512(); }
// A pair's bytes of `dims` dimensions (<= 16) at p, widened.
inline IVec load_pairs(const int8_t* p, int dims) {
  const __m256i b = dims == 16 ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))
                               : _mm256_maskz_loadu_epi8(static_cast<__mmask32>((uint64_t{1} << (2 * dims)) - 1), p);
  return _mm512_maskz_cvtepi8_epi16(0xffffffff, b);
}
inline IVec pair_dot(IVec acc, IVec v, int32_t c) { return _mm512_dpwssd_epi32(acc, v, _mm512_set1_epi32(c)); }
inline FVec ifloat(IVec v) { return _mm512_maskz_cvtepi32_ps(0xffff, v); }
inline IVec iadd(IVec a, IVec b) { return _mm512_add_epi32(a, b); }
#else
using IVec = __m256i;
constexpr int kValueDims = 8;
inline IVec izero() { return _mm256_setzero_si256(); }
inline IVec load_pairs(const int8_t* p, int dims) {
  alignas(16) int8_t tmp[16] = {};
  if (dims == 8) return _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  std::memcpy(tmp, p, 2 * dims);
  return _mm256_cvtepi8_epi16(_mm_load_si128(reinterpret_cast<const __m128i*>(tmp)));
}
inline IVec pair_dot(IVec acc, IVec v, int32_t c) {
  return _mm256_add_epi32(acc, _mm256_madd_epi16(v, _mm256_set1_epi32(c)));
}
inline FVec ifloat(IVec v) { return _mm256_cvtepi32_ps(v); }
inline IVec iadd(IVec a, IVec b) { return _mm256_add_epi32(a, b); }
#endif

// Dimensions [d0, d0 + dims) (dims <= V * kValueDims, more than (V - 1) * kValueDims) of H heads.
template <int H, int V>
void q8_value_block(const int16_t* c, std::size_t cs, const float* scale, const int8_t* values, int head_dim, int n,
                    int d0, int dims, float* out, std::size_t os) {
  FVec sum[H][V];
  for (int h = 0; h < H; ++h)
    for (int v = 0; v < V; ++v) sum[h][v] = fzero();
  const int last = dims - (V - 1) * kValueDims;
  // Even and odd pairs into separate sums, added (exactly) at the chunk's end: two chains per
  // vector, so a head of 32 dimensions keeps eight multiply-adds in flight, not four each waiting
  // for the last (8 sequences of wand-pot: this function 22 -> 17 us of a decoding step).
  auto step = [&](IVec (&a)[H][V], int p) {
    const int8_t* row = values + std::size_t(p / 2) * 2 * head_dim + 2 * d0;
    IVec w[V];
#pragma GCC unroll 4
    for (int v = 0; v < V; ++v) w[v] = load_pairs(row + 2 * kValueDims * v, v < V - 1 ? kValueDims : last);
#pragma GCC unroll 2
    for (int h = 0; h < H; ++h) {
      const int32_t pair = load4(reinterpret_cast<const int8_t*>(c + h * cs + p));
#pragma GCC unroll 4
      for (int v = 0; v < V; ++v) a[h][v] = pair_dot(a[h][v], w[v], pair);
    }
  };
  for (int p0 = 0; p0 < n; p0 += kQ8ValueChunk) {
    IVec acc[2][H][V];
    fill_chains(acc, izero());
    const int end = std::min(n, p0 + kQ8ValueChunk);
    int p = p0;
    for (; p + 2 < end; p += 4) step(acc[0], p), step(acc[1], p + 2);
    if (p < end) step(acc[0], p);
#pragma GCC unroll 2
    for (int h = 0; h < H; ++h)
#pragma GCC unroll 4
      for (int v = 0; v < V; ++v) sum[h][v] = sum[h][v] + ifloat(iadd(acc[0][h][v], acc[1][h][v]));
  }
  for (int h = 0; h < H; ++h)
    for (int v = 0; v < V; ++v) {
      const int k = v < V - 1 ? kValueDims : last;
      fstore_n(out + h * os + d0 + v * kValueDims, sum[h][v] * fset(scale[h]), k);
    }
}

template <int H, int... V>
auto pick_value_block(int vecs, std::integer_sequence<int, V...>) {
  constexpr decltype(&q8_value_block<H, 1>) fns[] = {q8_value_block<H, V + 1>...};
  return fns[vecs - 1];
}

void q8_values(int sets, const int16_t* c, std::size_t cs, const float* scale, const int8_t* values, int head_dim,
               int n, float* out, std::size_t os) {
  constexpr int kBlockDims = 4 * kValueDims;
  for (int s = 0; s < sets; s += kMaxSets) {
    const int h = std::min(kMaxSets, sets - s);
    for (int d0 = 0; d0 < head_dim; d0 += kBlockDims) {
      const int dims = std::min(kBlockDims, head_dim - d0), vecs = (dims + kValueDims - 1) / kValueDims;
      const auto seq = std::make_integer_sequence<int, 4>{};
      (h == kMaxSets ? pick_value_block<kMaxSets>(vecs, seq) : pick_value_block<1>(vecs, seq))(
          c + s * cs, cs, scale + s, values, head_dim, n, d0, dims, out + s * os, os);
    }
  }
}

// ---- packed F32/F16 (kernels.h, pack_rows): groups of G rows, stored column by column ----

// Vectors of 16 (AVX2: 8) rows x tokens per tile. Per column, each weight vector is loaded (and,
// for F16, converted) once for all the tile's tokens and each activation broadcast once for all
// its rows: AVX-512's 4 x 5 is 20 sums + 4 broadcasts + a weight vector of the 32 registers, so
// a column costs 4 loads or conversions and 5 broadcasts per 20 multiply-adds (the row-major
// 6 x 4 tile converted both operands: 10 conversions per 24).
#if defined(__AVX512F__)
constexpr int kFloatTileVecs = 4, kFloatTileTokens = 5;
#else
constexpr int kFloatTileVecs = 2, kFloatTileTokens = 4;
#endif
// A single token's tile: F16's whole 128-row column (AVX2's 16 sums do not all fit its 16
// registers, but reading half of each column per pass over the matrix was 17% slower than the
// few spills: 134M, one thread); F32's 64 rows (4 groups of 16), whose columns the hardware
// prefetchers follow as well as wider ones (AVX2: 8 sums, where main's 2 were latency-bound).
template <class E>
constexpr int kOneTokenVecs = sizeof(E) == 2 ? 128 / kFloatLanes : 64 / kFloatLanes;

using FloatTileFn = void (*)(const void*, int, int, const float*, std::size_t, float*, std::size_t, int, bool);

// V vectors of rows x N tokens from column 0 to cols - 1: each output is one chain of fused
// multiply-adds in column order, whatever the tile, so a token's results never depend on its
// batch. w: the matrix; r: the tile's first row (a multiple of 16); rows: how many of the tile's
// rows to store; prefetch: whether to fetch the weights' streams ahead (the first pass over the
// tile's weights, which later token passes find in L2).
template <class E, int G, int V, int N>
void float_packed_tile(const void* wp, int r, int cols, const float* x, std::size_t xs, float* y, std::size_t ys,
                       int rows, bool prefetch) {
  // F16's single token reads 256 contiguous bytes a column: 8 KiB ahead kept 43 GB/s streaming
  // on a 134M model's matrices where 4 KiB gave 42 and none 40 (microbenchmark, one thread, AMD
  // EPYC). Into L2 (prefetcht2), not L1: on a Xeon with AMX, one token of a 134M F16 model ran at
  // 82-87 tokens/s so, 73-78 with prefetcht0 (whose L1 fill buffers stall the loop) and 70 without.
  constexpr int ahead = kAhead / sizeof(E);
  const E* p[V];
  for (int v = 0; v < V; ++v) {
    const int row = r + v * kFloatLanes;
    p[v] = static_cast<const E*>(wp) + std::size_t(row / G) * G * cols + row % G;
  }
  FVec acc[V][N];
  for (auto& row : acc)
    for (auto& a : row) a = fzero();
  for (int k = 0; k < cols; ++k) {
    if (prefetch)  // one per cache line of the column's vectors
      for (int v = 0; v < V; ++v)
        if (v * kFloatLanes * sizeof(E) % 64 == 0)
          _mm_prefetch(reinterpret_cast<const char*>(p[v] + std::size_t(k) * G + ahead), _MM_HINT_T2);
    FVec xb[N];
    for (int t = 0; t < N; ++t) xb[t] = fset(x[xs * t + k]);
    for (int v = 0; v < V; ++v) {
      const FVec wv = load_rows(p[v] + std::size_t(k) * G);
      for (int t = 0; t < N; ++t) acc[v][t] = fmadd(wv, xb[t], acc[v][t]);
    }
  }
  for (int v = 0; v < V; ++v) {
    const int n = std::min(kFloatLanes, rows - v * kFloatLanes);
    if (n <= 0) break;
    for (int t = 0; t < N; ++t) fstore_n(y + ys * t + v * kFloatLanes, acc[v][t], n);
  }
}

template <class E, int G, int V, int... N>
FloatTileFn float_pick_tokens(int n, std::integer_sequence<int, N...>) {
  constexpr FloatTileFn fns[] = {float_packed_tile<E, G, V, N + 1>...};
  return fns[n - 1];
}

template <class E, int G, int... V>
FloatTileFn float_pick_one(int vecs, std::integer_sequence<int, V...>) {
  constexpr FloatTileFn fns[] = {float_packed_tile<E, G, V + 1, 1>...};
  return fns[vecs - 1];
}

template <class E, int G>
FloatTileFn float_pick(int vecs, int n) {
  if (n == 1) return float_pick_one<E, G>(vecs, std::make_integer_sequence<int, kOneTokenVecs<E>>{});
  constexpr auto tokens = std::make_integer_sequence<int, kFloatTileTokens>{};
  switch (vecs) {
    case 1: return float_pick_tokens<E, G, 1>(n, tokens);
    case 2: return float_pick_tokens<E, G, 2>(n, tokens);
    case 3: return float_pick_tokens<E, G, std::min(3, kFloatTileVecs)>(n, tokens);
    default: return float_pick_tokens<E, G, kFloatTileVecs>(n, tokens);
  }
}

// Software prefetch helps F16's streams (134M, one token, one thread: 113 -> 118-125 tok/s) but
// not F32's, whose 64-byte columns the hardware prefetchers follow alone (75-84 tok/s without,
// 73-79 with), measured interleaved.
template <class E>
constexpr bool kPrefetch = sizeof(E) == 2;

// G: the rows of a packed group (kernels.cpp's packed_group_rows).
template <class E, int G>
void float_packed_rows(const uint8_t* w, int cols, int r0, int r1, const uint8_t* x, std::size_t xs, int T, float* y,
                       std::size_t ys) {
  const auto* xf = reinterpret_cast<const float*>(x);
  const std::size_t xfs = xs / sizeof(float);
  const int tile_rows = (T == 1 ? kOneTokenVecs<E> : kFloatTileVecs) * kFloatLanes;
  // Tiles start at multiples of tile_rows: where tile_rows divides G (F16's single token), a
  // range starting inside a group (a thread's share) gets a short first tile, and every other
  // tile reads one group's stream, not the ends of two.
  for (int r = r0; r < r1;) {
    const int rows = std::min(tile_rows - r % tile_rows, r1 - r), vecs = (rows + kFloatLanes - 1) / kFloatLanes;
    for (int t = 0; t < T; t += kFloatTileTokens) {
      const int nt = std::min(kFloatTileTokens, T - t);
      float_pick<E, G>(vecs, nt)(w, r, cols, xf + xfs * t, xfs, y + ys * t + r, ys, rows, kPrefetch<E> && t == 0);
    }
    r += rows;
  }
}

void matmul(TensorType type, const uint8_t* w, std::size_t w_stride, int cols, int r0, int r1, const uint8_t* x,
            std::size_t x_stride, int T, float* y, std::size_t y_stride) {
  switch (type) {
    case TensorType::F32: return tiled_rows<F32>(w, w_stride, cols, r0, r1, x, x_stride, T, y, y_stride);
    case TensorType::F16: return tiled_rows<F16>(w, w_stride, cols, r0, r1, x, x_stride, T, y, y_stride);
    case TensorType::Q8_0: return tiled_rows<Q8>(w, w_stride, cols, r0, r1, x, x_stride, T, y, y_stride);
    case TensorType::Q4_0: return tiled_rows<Q4>(w, w_stride, cols, r0, r1, x, x_stride, T, y, y_stride);
  }
}

void matmul_packed(TensorType type, const uint8_t* w, int, int cols, int r0, int r1, const uint8_t* x,
                   std::size_t xs, int T, float* y, std::size_t ys) {
  switch (type) {
    case TensorType::F32: return float_packed_rows<float, 16>(w, cols, r0, r1, x, xs, T, y, ys);
    case TensorType::F16: return float_packed_rows<uint16_t, 128>(w, cols, r0, r1, x, xs, T, y, ys);
    case TensorType::Q8_0: return packed_rows<Q8Packed>(w, cols, r0, r1, x, xs, T, y, ys);
    case TensorType::Q4_0: return packed_rows<Q4Packed>(w, cols, r0, r1, x, xs, T, y, ys);
  }
}

}  // namespace

// extern: a namespace-scope const is otherwise local.
extern const Kernels kernels = {matmul,      matmul_packed, weighted_sets<float>, weighted_sets<uint16_t>,
                                q8_scores,   q8_values,     quantize_i8,         softmax_i16,
                                q8_store,
                                quantize,    softmax_exp,   silu_mul,            rmsnorm,
                                argmax,
                                rope,        to_fp16,       round_fp16};

}  // namespace wand::llm::isa::WAND_ISA

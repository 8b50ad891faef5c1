// A small SIMD layer for the kernels: one float vector type `vf` of kLanes
// lanes, the widest the ISA this copy is compiled for has (AVX-512: 16,
// AVX2: 8, baseline x86-64: 4 of SSE2), written with GCC vector extensions
// (and __builtin_shuffle: GCC is the project's compiler) so that one source
// serves every ISA. Compiled once per ISA (kernels/isa_namespace.h).
//
// Every function gives the same result for a lane whatever its position, so a
// kernel may compute a tail through a padded vector without changing a bit.
#pragma once

#include "kernels/isa_namespace.h"

#include <bit>
#include <cstdint>
#include <cstring>
#include <utility>

#if defined(__SSE2__)
#include <immintrin.h>
#endif

namespace lenet::kernels::LENET_ISA_NAMESPACE::simd {

#if defined(__AVX512F__)
inline constexpr int kLanes = 16;
using vf = __m512;
typedef int32_t vi32 __attribute__((vector_size(64)));
#elif defined(__AVX__)
inline constexpr int kLanes = 8;
typedef float vf __attribute__((vector_size(32)));
typedef int32_t vi32 __attribute__((vector_size(32)));
#else
// SSE2, or another target's 128-bit vectors.
inline constexpr int kLanes = 4;
typedef float vf __attribute__((vector_size(16)));
typedef int32_t vi32 __attribute__((vector_size(16)));
#endif
// True when the target has as many vector registers as AVX-512 (32): tiles
// are sized by it so that the accumulators never spill.
#if defined(__AVX512F__)
inline constexpr bool kManyRegisters = true;
#else
inline constexpr bool kManyRegisters = false;
#endif
// At most this many vector accumulators in a register tile: with 32 registers
// 24 leaves room for the operands; with 16, 12.
inline constexpr int kMaxAcc = kManyRegisters ? 24 : 12;

inline vf load(const float* p) {
  vf v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
inline void store(float* p, vf v) { std::memcpy(p, &v, sizeof v); }
// Every lane = s. (Not `vf{} + s`: IEEE addition of 0 cannot be folded away,
// which costs a scalar add before each broadcast.)
inline vf splat(float s) {
#if defined(__AVX512F__)
  return _mm512_set1_ps(s);
#elif defined(__AVX__)
  return _mm256_set1_ps(s);
#else
  float lanes[kLanes];
  for (float& l : lanes) l = s;
  return load(lanes);
#endif
}
inline vf zero() { return vf{}; }

// a·b + c, fused where the target has FMA (ISO C++ mode does not contract a·b + c).
inline vf fmadd(vf a, vf b, vf c) {
#if defined(__AVX512F__)
  return _mm512_fmadd_ps(a, b, c);
#elif defined(__FMA__) && defined(__AVX__)
  return _mm256_fmadd_ps(a, b, c);
#else
  return a * b + c;
#endif
}
inline float fmadd(float a, float b, float c) {
#if defined(__FMA__)
  return __builtin_fmaf(a, b, c);
#else
  return a * b + c;
#endif
}

// a > b ? a : b and a < b ? a : b (b when either is NaN), which is what x86's
// maxps/minps compute; GCC 12 emits a compare and a blend for the
// conditional form.
inline vf max(vf a, vf b) {
#if defined(__AVX512F__)
  return _mm512_maskz_max_ps(0xffff, a, b);  // (maskz: the plain form trips -Wmaybe-uninitialized in GCC 12)
#elif defined(__AVX__)
  return _mm256_max_ps(a, b);
#elif defined(__SSE2__)
  return _mm_max_ps(a, b);
#else
  return a > b ? a : b;
#endif
}
inline vf min(vf a, vf b) {
#if defined(__AVX512F__)
  return _mm512_maskz_min_ps(0xffff, a, b);
#elif defined(__AVX__)
  return _mm256_min_ps(a, b);
#elif defined(__SSE2__)
  return _mm_min_ps(a, b);
#else
  return a < b ? a : b;
#endif
}

// Loads and stores of the first n (< kLanes allowed) lanes; the others read as 0.
inline vf load_partial(const float* p, int n) {
  if (n >= kLanes) return load(p);
  vf v = {};
  std::memcpy(&v, p, sizeof(float) * static_cast<size_t>(n));
  return v;
}
inline void store_partial(float* p, vf v, int n) {
  if (n >= kLanes) return store(p, v);
  std::memcpy(p, &v, sizeof(float) * static_cast<size_t>(n));
}

// The first n lanes (0 < n ≤ kLanes) of a load or store, the others reading
// as 0; masked instructions where the target has them.
struct Mask {
  int n = kLanes;
#if defined(__AVX512F__)
  __mmask16 bits = 0xffff;
  explicit Mask(int count) : n(count), bits(static_cast<__mmask16>((1u << count) - 1)) {}
#else
  explicit Mask(int count) : n(count) {}
#endif
};
inline vf load(const float* p, Mask m) {
#if defined(__AVX512F__)
  return _mm512_maskz_loadu_ps(m.bits, p);
#else
  return load_partial(p, m.n);
#endif
}
inline void store(float* p, vf v, Mask m) {
#if defined(__AVX512F__)
  _mm512_mask_storeu_ps(p, m.bits, v);
#else
  store_partial(p, v, m.n);
#endif
}

inline vi32 load(const int32_t* p, Mask m) { return std::bit_cast<vi32>(load(reinterpret_cast<const float*>(p), m)); }
inline void store(int32_t* p, vi32 v, Mask m) { store(reinterpret_cast<float*>(p), std::bit_cast<vf>(v), m); }

// Lanes 0, 2, 4, … (even) or 1, 3, 5, … (odd) of the concatenation a:b; and
// the inverse, a and b interleaved (a0 b0 a1 b1 …), low and high halves.
namespace detail {
template <int... I>
constexpr vi32 stride_mask(int first, std::integer_sequence<int, I...>) {
  return vi32{(first + 2 * I)...};
}
template <int... I>
constexpr vi32 zip_mask(int first, std::integer_sequence<int, I...>) {
  return vi32{((I % 2 == 0) ? first + I / 2 : kLanes + first + I / 2)...};
}
}  // namespace detail
inline vf even(vf a, vf b) {
  constexpr vi32 m = detail::stride_mask(0, std::make_integer_sequence<int, kLanes>{});
  return __builtin_shuffle(a, b, m);
}
inline vf odd(vf a, vf b) {
  constexpr vi32 m = detail::stride_mask(1, std::make_integer_sequence<int, kLanes>{});
  return __builtin_shuffle(a, b, m);
}
inline vf zip_low(vf a, vf b) {
  constexpr vi32 m = detail::zip_mask(0, std::make_integer_sequence<int, kLanes>{});
  return __builtin_shuffle(a, b, m);
}
inline vf zip_high(vf a, vf b) {
  constexpr vi32 m = detail::zip_mask(kLanes / 2, std::make_integer_sequence<int, kLanes>{});
  return __builtin_shuffle(a, b, m);
}
// 0, 1, 2, … kLanes − 1
inline vi32 lane_index() { return detail::stride_mask(0, std::make_integer_sequence<int, kLanes>{}) / 2; }

// Horizontal sum in a fixed order (pairwise halves), the same on every run.
// (lane i += lane i + width for width = kLanes/2, …, 1)
namespace detail {
template <int W, int... I>
constexpr vi32 fold_mask(std::integer_sequence<int, I...>) {
  return vi32{((I + W) % kLanes)...};
}
template <int W>
inline vf fold(vf v) {
  constexpr vi32 m = fold_mask<W>(std::make_integer_sequence<int, kLanes>{});
  return v + __builtin_shuffle(v, m);
}
}  // namespace detail
inline float reduce_add(vf v) {
  if constexpr (kLanes >= 16) v = detail::fold<8>(v);
  if constexpr (kLanes >= 8) v = detail::fold<4>(v);
  v = detail::fold<2>(v);
  v = detail::fold<1>(v);
  return v[0];
}

// Transposes kLanes rows of kLanes floats held in r[] in place: afterwards
// r[i][j] holds what r[j][i] held. log2(kLanes) rounds of two-input shuffles,
// each swapping the off-diagonal blocks of size d inside blocks of size 2d.
namespace detail {
template <int D, int... I>
constexpr vi32 low_mask(std::integer_sequence<int, I...>) {
  return vi32{((I & D) == 0 ? I : kLanes + I - D)...};
}
template <int D, int... I>
constexpr vi32 high_mask(std::integer_sequence<int, I...>) {
  return vi32{((I & D) == 0 ? I + D : kLanes + I)...};
}
template <int D>
inline void transpose_round(vf* r) {
  constexpr vi32 lo = low_mask<D>(std::make_integer_sequence<int, kLanes>{});
  constexpr vi32 hi = high_mask<D>(std::make_integer_sequence<int, kLanes>{});
  for (int i = 0; i < kLanes; ++i) {
    if (i & D) continue;
    const vf a = r[i], b = r[i + D];
    r[i] = __builtin_shuffle(a, b, lo);
    r[i + D] = __builtin_shuffle(a, b, hi);
  }
}
}  // namespace detail

inline void transpose(vf* r) {
  if constexpr (kLanes >= 16) detail::transpose_round<8>(r);
  if constexpr (kLanes >= 8) detail::transpose_round<4>(r);
  detail::transpose_round<2>(r);
  detail::transpose_round<1>(r);
}

}  // namespace lenet::kernels::LENET_ISA_NAMESPACE::simd

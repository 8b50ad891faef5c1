// A small SIMD layer for the kernels: one float vector type `vf` of kLanes
// lanes, the widest the build target has (AVX-512: 16, otherwise 8), written
// with GCC/Clang vector extensions so that every operation also compiles for a
// target without AVX (the compiler splits the vector). The build targets the
// building machine (-march=native); nothing here assumes a particular CPU.
//
// Every function gives the same result for a lane whatever its position, so a
// kernel may compute a tail through a padded vector without changing a bit.
#pragma once

#include <cstdint>
#include <cstring>
#include <utility>

#if defined(__AVX512F__) || defined(__FMA__)
#include <immintrin.h>
#endif

namespace lenet::kernels::simd {

#if defined(__AVX512F__)
inline constexpr int kLanes = 16;
using vf = __m512;
using vi = __m512i;
typedef int32_t vi32 __attribute__((vector_size(64)));
#else
inline constexpr int kLanes = 8;
typedef float vf __attribute__((vector_size(32)));
typedef int32_t vi32 __attribute__((vector_size(32)));
#endif
// True when the target has as many vector registers as AVX-512 (32): tiles
// are sized by it so that the accumulators never spill.
#if defined(__AVX512F__)
inline constexpr bool kManyRegisters = true;
#else
inline constexpr bool kManyRegisters = false;
#endif

inline vf load(const float* p) {
  vf v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
inline void store(float* p, vf v) { std::memcpy(p, &v, sizeof v); }
inline vf splat(float s) {
  vf v = {};
  return v + s;
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

inline vf max(vf a, vf b) { return a > b ? a : b; }
inline vf min(vf a, vf b) { return a < b ? a : b; }

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

// Horizontal sum in a fixed order (pairwise halves), the same on every run.
inline float reduce_add(vf v) {
  float lanes[kLanes];
  store(lanes, v);
  for (int width = kLanes / 2; width >= 1; width /= 2)
    for (int i = 0; i < width; ++i) lanes[i] += lanes[i + width];
  return lanes[0];
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
  if constexpr (kLanes == 16) detail::transpose_round<8>(r);
  detail::transpose_round<4>(r);
  detail::transpose_round<2>(r);
  detail::transpose_round<1>(r);
}

}  // namespace lenet::kernels::simd

// Force-included into the clang build of the fuzz targets (see the root
// CMakeLists.txt, LENET_BUILD_FUZZ): the kernels' SIMD layer uses GCC's
// __builtin_shuffle, which clang lacks. This stands in for it lane by lane —
// slow, but the fuzzers exercise the parsers, not the kernels' speed.
#pragma once
#if defined(__clang__) && defined(__cplusplus)

template <class V, class M>
inline V lenet_builtin_shuffle(V a, V b, M mask) {
  constexpr int n = sizeof(V) / sizeof(a[0]);
  V r = a;
  for (int i = 0; i < n; ++i) {
    const int k = static_cast<int>(mask[i]) & (2 * n - 1);  // GCC: indices modulo 2n
    r[i] = k < n ? a[k] : b[k - n];
  }
  return r;
}

template <class V, class M>
inline V lenet_builtin_shuffle(V a, M mask) {
  constexpr int n = sizeof(V) / sizeof(a[0]);
  V r = a;
  for (int i = 0; i < n; ++i) r[i] = a[static_cast<int>(mask[i]) & (n - 1)];
  return r;
}

#define __builtin_shuffle lenet_builtin_shuffle
#endif

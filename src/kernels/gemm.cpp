// C[M,N] = init + A[M,K]·B[K,N]: register tiles of MR rows × NV vectors of C,
// broadcasting A and loading B, the last vector of a row masked.
#include "kernels/gemm.h"
#include "kernels/fast.h"

#include <algorithm>
#include <array>
#include <utility>

#include "kernels/simd.h"

namespace lenet::kernels::LENET_ISA_NAMESPACE::gemm {

namespace {

using simd::kLanes;
using simd::Mask;
using simd::vf;

using simd::kMaxAcc;
constexpr int kMaxRows = 12, kMaxVectors = 4;

template <int MR, int NV>
void tile(int k, const float* a, int64_t a_m, int64_t a_k, const float* b, int64_t ldb, float* c, int64_t ldc,
          bool accumulate, const float* bias, Mask last) {
  vf acc[MR][NV];
#pragma GCC unroll 12
  for (int r = 0; r < MR; ++r)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) {
      const Mask m = v == NV - 1 ? last : Mask(kLanes);
      acc[r][v] = accumulate ? simd::load(c + r * ldc + v * kLanes, m)
                  : bias     ? simd::load(bias + v * kLanes, m)
                             : simd::zero();
    }
  for (int kk = 0; kk < k; ++kk) {
    const float* bk = b + kk * ldb;
    vf bv[NV];
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) bv[v] = v == NV - 1 ? simd::load(bk + v * kLanes, last) : simd::load(bk + v * kLanes);
    const float* ak = a + kk * a_k;
#pragma GCC unroll 12
    for (int r = 0; r < MR; ++r) {
      const vf av = simd::splat(ak[r * a_m]);
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) acc[r][v] = simd::fmadd(av, bv[v], acc[r][v]);
    }
  }
#pragma GCC unroll 12
  for (int r = 0; r < MR; ++r)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) simd::store(c + r * ldc + v * kLanes, acc[r][v], v == NV - 1 ? last : Mask(kLanes));
}

using TileFn = void (*)(int, const float*, int64_t, int64_t, const float*, int64_t, float*, int64_t, bool, const float*,
                        Mask);

template <int MR, int NV>
constexpr TileFn entry() {
  if constexpr (MR * NV <= kMaxAcc)
    return &tile<MR, NV>;
  else
    return nullptr;
}
template <size_t... I>
constexpr std::array<TileFn, sizeof...(I)> make_table(std::index_sequence<I...>) {
  return {entry<int(I) / kMaxVectors + 1, int(I) % kMaxVectors + 1>()...};
}
constexpr auto kTiles = make_table(std::make_index_sequence<kMaxRows * kMaxVectors>{});

// As in conv2d.cpp: two FMAs and two loads per cycle, at least the FMA
// latency, fewer loads per FMA breaking ties.
double step_cost(int mr, int nv) { return std::max({mr * nv / 2.0, (mr + nv) / 2.0, 4.0}) + 0.1 * (mr + nv) / 2.0; }

}  // namespace

void multiply(int m, int n, int k, const float* a, int64_t a_m, int64_t a_k, const float* b, int64_t ldb, float* c,
              int64_t ldc, bool accumulate, const float* bias) {
  if (m <= 0 || n <= 0) return;
  const int vectors = (n + kLanes - 1) / kLanes;
  // The tile shape of least estimated cost for this m × vectors.
  int best_mr = 1, best_nv = 1;
  double best = 1e300;
  for (int nv = 1; nv <= std::min(vectors, kMaxVectors); ++nv)
    for (int mr = 1; mr <= std::min(m, kMaxRows); ++mr) {
      if (mr * nv > kMaxAcc) continue;
      const int fm = m / mr, rm = m % mr, fv = vectors / nv, rv = vectors % nv;
      double cost = fm * fv * step_cost(mr, nv);
      if (rv) cost += fm * step_cost(mr, rv);
      if (rm) cost += fv * step_cost(rm, nv);
      if (rm && rv) cost += step_cost(rm, rv);
      if (cost < best - 1e-9) {
        best = cost;
        best_mr = mr;
        best_nv = nv;
      }
    }
  for (int v0 = 0; v0 < vectors; v0 += best_nv) {
    const int nv = std::min(best_nv, vectors - v0);
    const int col = v0 * kLanes;
    const Mask last(std::min(kLanes, n - (v0 + nv - 1) * kLanes));
    for (int r0 = 0; r0 < m; r0 += best_mr) {
      const int mr = std::min(best_mr, m - r0);
      kTiles[static_cast<size_t>(mr - 1) * kMaxVectors + static_cast<size_t>(nv - 1)](k, a + r0 * a_m, a_m, a_k,
                                                                                      b + col, ldb, c + r0 * ldc + col,
                                                                                      ldc, accumulate,
                                                                                      bias ? bias + col : nullptr,
                                                                                      last);
    }
  }
}

void transpose(int rows, int cols, const float* src, int64_t lds, float* dst, int64_t ldd) {
  for (int r0 = 0; r0 < rows; r0 += kLanes) {
    const int mr = std::min(kLanes, rows - r0);
    for (int c0 = 0; c0 < cols; c0 += kLanes) {
      const int mc = std::min(kLanes, cols - c0);
      const Mask load_mask(mc), store_mask(mr);
      vf v[kLanes];
      for (int i = 0; i < kLanes; ++i) v[i] = i < mr ? simd::load(src + (r0 + i) * lds + c0, load_mask) : simd::zero();
      simd::transpose(v);
      for (int i = 0; i < mc; ++i) simd::store(dst + (c0 + i) * ldd + r0, v[i], store_mask);
    }
  }
}

}  // namespace lenet::kernels::LENET_ISA_NAMESPACE::gemm

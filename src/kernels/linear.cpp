// Fully connected layer: x[N,I] · w[O,I]ᵀ + b[O] -> y[N,O]
//
// Our own GEMM (kernels/gemm.h) rather than sgemm: OpenBLAS falls back to its
// SSE3 kernels on CPUs newer than its release (it runs as "Prescott" on a
// Xeon with AVX-512 here), and per-call overhead dominates these small
// matrices. Rows are split statically over the threads; the weight gradient is
// split by output feature, so every sum runs over the batch in order and the
// result does not even depend on the thread count.
#include <algorithm>

#include "kernels/fast.h"
#include "kernels/gemm.h"
#include "kernels/simd.h"
#include "lenet/kernels.h"
#include "lenet/parallel.h"
#include "lenet/tensor.h"
#include "runtime/threads.h"

namespace lenet::kernels::LENET_ISA_NAMESPACE {

namespace {

using simd::kLanes;
using simd::vf;

int linear_threads(int n, int in, int out) {
  return std::min(kernel_threads(static_cast<int64_t>(n) * in * out, 1 << 18), std::max(1, std::max(n, out) / 8));
}

// Below this many rows a dot product per output beats transposing w first
// (single-image latency).
constexpr int kDotRows = 4;

// T outputs of one row: dot products over the input, reduced at the end.
template <int T>
void dot_tile(int in, const float* xr, const float* w, const float* b, float* y) {
  vf acc[T];
#pragma GCC unroll 8
  for (int t = 0; t < T; ++t) acc[t] = simd::zero();
  int i = 0;
  for (; i + kLanes <= in; i += kLanes) {
    const vf xv = simd::load(xr + i);
#pragma GCC unroll 8
    for (int t = 0; t < T; ++t) acc[t] = simd::fmadd(xv, simd::load(w + static_cast<int64_t>(t) * in + i), acc[t]);
  }
  if (i < in) {
    const simd::Mask m(in - i);
    const vf xv = simd::load(xr + i, m);
#pragma GCC unroll 8
    for (int t = 0; t < T; ++t) acc[t] = simd::fmadd(xv, simd::load(w + static_cast<int64_t>(t) * in + i, m), acc[t]);
  }
#pragma GCC unroll 8
  for (int t = 0; t < T; ++t) y[t] = simd::reduce_add(acc[t]) + (b ? b[t] : 0.0f);
}

void forward_dot(int n, int in, int out, const float* x, const float* w, const float* b, float* y) {
  constexpr int kTile = 8;
  for (int r = 0; r < n; ++r) {
    const float* xr = x + static_cast<int64_t>(r) * in;
    float* yr = y + static_cast<int64_t>(r) * out;
    int o = 0;
    for (; o + kTile <= out; o += kTile)
      dot_tile<kTile>(in, xr, w + static_cast<int64_t>(o) * in, b ? b + o : nullptr, yr + o);
    for (; o < out; ++o) dot_tile<1>(in, xr, w + static_cast<int64_t>(o) * in, b ? b + o : nullptr, yr + o);
  }
}

}  // namespace

void linear_forward(int n, int in, int out, const float* x, const float* w, const float* b, float* y) {
  if (n < kDotRows) return forward_dot(n, in, out, x, w, b, y);
  // wᵀ[I,O], so that a vector runs over output features.
  thread_local Tensor wt;
  if (wt.numel() < static_cast<int64_t>(in) * out) wt.resize({static_cast<int64_t>(in) * out});
  gemm::transpose(out, in, w, in, wt.data(), out);
  const float* wtp = wt.data();
  const int threads = linear_threads(n, in, out);
  parallel_run(threads, [&](int t, int team) {
    int64_t r0, r1;
    share(n, t, team, r0, r1);
    gemm::multiply(static_cast<int>(r1 - r0), out, in, x + static_cast<int64_t>(r0) * in, in, 1, wtp, out,
                   y + static_cast<int64_t>(r0) * out, out, false, b);
  });
}

void linear_backward(int n, int in, int out, const float* x, const float* w, const float* dy, float* dx, float* dw,
                     float* db) {
  const int threads = linear_threads(n, in, out);
  parallel_run(threads, [&](int t, int team) {
    // dX[N,I] = dY[N,O] · W[O,I]
    if (dx) {
      int64_t r0, r1;
      share(n, t, team, r0, r1);
      gemm::multiply(static_cast<int>(r1 - r0), in, out, dy + static_cast<int64_t>(r0) * out, out, 1, w, in,
                     dx + static_cast<int64_t>(r0) * in, in, false, nullptr);
    }
    // dW[O,I] += dYᵀ[O,N] · X[N,I];  db[O] += Σ_n dY[n,O]
    int64_t o0, o1;
    share(out, t, team, o0, o1);
    gemm::multiply(static_cast<int>(o1 - o0), in, n, dy + o0, 1, out, x, in, dw + static_cast<int64_t>(o0) * in, in,
                   true, nullptr);
    if (db) {
      for (int64_t o = o0; o < o1; o += kLanes) {
        const simd::Mask m(static_cast<int>(std::min<int64_t>(kLanes, o1 - o)));
        vf s = simd::load(db + o, m);
        for (int r = 0; r < n; ++r) s += simd::load(dy + static_cast<int64_t>(r) * out + o, m);
        simd::store(db + o, s, m);
      }
    }
  });
}

}  // namespace lenet::kernels::LENET_ISA_NAMESPACE

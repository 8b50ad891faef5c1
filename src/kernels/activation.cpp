// y = f(x) element-wise, x[n] -> y[n]; backward takes the forward output y.
//
// Vectorised with our own exp (Cephes' expf: |error| ≤ 2 ulp): libm's scalar
// expf would cost more than the convolutions around it. Tails go through the
// same vector code on a padded copy, so an element's result never depends on
// where it sits, and large arrays are split statically over the threads.
#include <algorithm>

#include "kernels/activation_simd.h"
#include "kernels/fast.h"
#include "kernels/simd.h"
#include "lenet/kernels.h"
#include "lenet/parallel.h"
#include "runtime/threads.h"

namespace lenet::kernels::LENET_ISA_NAMESPACE {

namespace {

using simd::kLanes;
using simd::vf;

// Below this many elements a second thread costs more than it saves.
constexpr int64_t kParallelMin = 1 << 15;

// Applies op(vector of x, vector of y-or-dy...) over n elements in chunks.
template <class Op>
void elementwise(int64_t n, Op op) {
  const int threads = kernel_threads(n, kParallelMin);
  const int64_t vectors = (n + kLanes - 1) / kLanes;
  auto range = [&](int64_t v0, int64_t v1) {
    for (int64_t v = v0; v < v1; ++v) op(v * kLanes, static_cast<int>(std::min<int64_t>(kLanes, n - v * kLanes)));
  };
  if (threads == 1) return range(0, vectors);
  parallel_run(threads, [&](int t, int team) {
    int64_t v0, v1;
    share(vectors, t, team, v0, v1);
    range(v0, v1);
  });
}

}  // namespace

void sigmoid_forward(int64_t n, const float* x, float* y) {
  elementwise(n, [&](int64_t i, int m) { simd::store_partial(y + i, simd::sigmoid(simd::load_partial(x + i, m)), m); });
}
// σ'(x) = σ(x)(1 − σ(x))
void sigmoid_backward(int64_t n, const float* y, const float* dy, float* dx) {
  elementwise(n, [&](int64_t i, int m) {
    const vf s = simd::load_partial(y + i, m);
    simd::store_partial(dx + i, simd::load_partial(dy + i, m) * (s * (1.0f - s)), m);
  });
}

void relu_forward(int64_t n, const float* x, float* y) {
  elementwise(n, [&](int64_t i, int m) { simd::store_partial(y + i, simd::relu(simd::load_partial(x + i, m)), m); });
}
void relu_backward(int64_t n, const float* y, const float* dy, float* dx) {
  elementwise(n, [&](int64_t i, int m) {
    const vf v = simd::load_partial(y + i, m), d = simd::load_partial(dy + i, m);
    simd::store_partial(dx + i, v > 0.0f ? d : simd::zero(), m);
  });
}

void tanh_forward(int64_t n, const float* x, float* y) {
  elementwise(n, [&](int64_t i, int m) { simd::store_partial(y + i, simd::tanh(simd::load_partial(x + i, m)), m); });
}
// tanh'(x) = 1 − tanh²(x)
void tanh_backward(int64_t n, const float* y, const float* dy, float* dx) {
  elementwise(n, [&](int64_t i, int m) {
    const vf t = simd::load_partial(y + i, m);
    simd::store_partial(dx + i, simd::load_partial(dy + i, m) * (1.0f - t * t), m);
  });
}

}  // namespace lenet::kernels::LENET_ISA_NAMESPACE

// 1. The cross-correlation operation: the chapter's corr2d.
//
//   Y[i, j] = Σ_a Σ_b X[i + a, j + b] · K[a, b]
//
// The plain loops live in kernels::reference::corr2d (src/kernels/reference/reference.cpp),
// where they also serve the tests as the oracle for the fast convolution.
#include <stdexcept>

#include "lenet/kernels.h"
#include "tutorial.h"

namespace lenet::examples {

Tensor corr2d(const Tensor& X, const Tensor& K) {
  if (X.dim() != 2 || K.dim() != 2 || K.size(0) > X.size(0) || K.size(1) > X.size(1))
    throw std::invalid_argument("corr2d: needs a 2-D input and a 2-D kernel no larger than it, got X " +
                                to_string(X.shape()) + " and K " + to_string(K.shape()));
  const int h = static_cast<int>(X.size(0)), w = static_cast<int>(X.size(1));
  const int kh = static_cast<int>(K.size(0)), kw = static_cast<int>(K.size(1));
  Tensor Y({h - kh + 1, w - kw + 1});
  kernels::reference::corr2d(h, w, X.data(), kh, kw, K.data(), Y.data());
  return Y;
}

Corr2dExample corr2d_example(std::ostream& out) {
  Tensor X = arange({3, 3});  // [[0, 1, 2], [3, 4, 5], [6, 7, 8]]
  Tensor K({2, 2}, {0, 1, 2, 3});
  Tensor Y = corr2d(X, K);  // Y[0, 0] = 0·0 + 1·1 + 3·2 + 4·3 = 19
  show(out, "X", X);
  show(out, "K", K);
  show(out, "corr2d(X, K)", Y);
  return {X, K, Y};
}

}  // namespace lenet::examples

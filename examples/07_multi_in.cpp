// 7. Multiple input channels: one kernel per channel, the channel results summed.
#include <stdexcept>

#include "tutorial.h"

namespace lenet::examples {

Tensor corr2d_multi_in(const Tensor& X, const Tensor& K) {
  if (X.dim() != 3 || K.dim() != 3 || X.size(0) != K.size(0))
    throw std::invalid_argument("corr2d_multi_in: needs X [C, H, W] and K [C, KH, KW] with the same C, got X " +
                                to_string(X.shape()) + " and K " + to_string(K.shape()));
  Tensor Y = corr2d(slice(X, 0), slice(K, 0));
  for (int64_t c = 1; c < X.size(0); ++c) {
    Tensor Yc = corr2d(slice(X, c), slice(K, c));
    for (int64_t i = 0; i < Y.numel(); ++i) Y[i] += Yc[i];
  }
  return Y;
}

MultiInExample multi_in_example(std::ostream& out) {
  Tensor X = stack({arange({3, 3}), arange({3, 3}, 1)});  // [[0..8]], [[1..9]]
  Tensor K = stack({Tensor({2, 2}, {0, 1, 2, 3}), Tensor({2, 2}, {1, 2, 3, 4})});
  Tensor Y = corr2d_multi_in(X, K);  // [[19, 25], [37, 43]] + [[37, 47], [67, 77]]
  show(out, "X", X);
  show(out, "K", K);
  show(out, "corr2d_multi_in(X, K)", Y);
  return {X, K, Y};
}

}  // namespace lenet::examples

// 9. 1×1 convolutional layer: a matrix product over channels at every pixel.
#include <stdexcept>

#include "tutorial.h"

namespace lenet::examples {

Tensor corr2d_multi_in_out_1x1(const Tensor& X, const Tensor& K) {
  if (X.dim() != 3 || K.dim() != 4 || K.size(1) != X.size(0) || K.size(2) != 1 || K.size(3) != 1)
    throw std::invalid_argument("corr2d_multi_in_out_1x1: needs X [C, H, W] and K [O, C, 1, 1], got X " +
                                to_string(X.shape()) + " and K " + to_string(K.shape()));
  const int64_t c_i = X.size(0), hw = X.size(1) * X.size(2), c_o = K.size(0);
  Tensor Y({c_o, X.size(1), X.size(2)});
  // Y[c_o, h·w] = K[c_o, c_i] · X[c_i, h·w]
  for (int64_t o = 0; o < c_o; ++o)
    for (int64_t c = 0; c < c_i; ++c)
      for (int64_t p = 0; p < hw; ++p) Y[o * hw + p] += K[o * c_i + c] * X[c * hw + p];
  return Y;
}

Conv1x1Example conv1x1_example(std::ostream& out, uint64_t seed) {
  Rng rng(seed);
  Tensor X({3, 3, 3}), K({2, 3, 1, 1});  // standard normal, as torch.normal(0, 1, ...)
  for (float& v : X.span()) v = rng.normal();
  for (float& v : K.span()) v = rng.normal();
  Tensor Y_matmul = corr2d_multi_in_out_1x1(X, K);
  Tensor Y_conv = corr2d_multi_in_out(X, K);
  const float max_diff = max_abs_diff(Y_matmul, Y_conv);

  out << "X: " << to_string(X.shape()) << ", K: " << to_string(K.shape()) << '\n';
  show(out, "K[c_o, c_i] · X[c_i, h·w]", Y_matmul);
  out << "max |matrix product - corr2d_multi_in_out| = " << max_diff << '\n';
  return {X, K, Y_matmul, Y_conv, max_diff};
}

}  // namespace lenet::examples

// 3. Object edge detection in images: the kernel [1, -1] marks where neighbours differ.
#include "tutorial.h"

namespace lenet::examples {

Tensor edge_image() {
  Tensor X({6, 8});
  X.fill(1);
  for (int64_t i = 0; i < 6; ++i)
    for (int64_t j = 2; j < 6; ++j) X.at({i, j}) = 0;
  return X;
}

EdgeDetectionExample edge_detection_example(std::ostream& out) {
  Tensor X = edge_image();
  Tensor K({1, 2}, {1, -1});
  Tensor Y = corr2d(X, K);  // 1: white to black, -1: black to white, 0 elsewhere

  // The same kernel on the transposed image finds nothing: it sees only vertical edges.
  Tensor Xt({8, 6});
  for (int64_t i = 0; i < 6; ++i)
    for (int64_t j = 0; j < 8; ++j) Xt.at({j, i}) = X.at({i, j});
  Tensor Y_transposed = corr2d(Xt, K);

  show(out, "X", X);
  show(out, "K", K);
  show(out, "corr2d(X, K)", Y);
  show(out, "corr2d(X.T, K)", Y_transposed);
  return {X, K, Y, Y_transposed};
}

}  // namespace lenet::examples

// 5. Padding: p rows of zeros on each side keep an H×W input at H×W when KH = 2p + 1.
//
//   OH = H + 2·PH − KH + 1
#include "tutorial.h"

namespace lenet::examples {

Shape comp_conv2d(Conv2d& conv, const Tensor& X) {
  Tensor Y = forward(conv, X.reshaped({1, 1, X.size(0), X.size(1)}));  // batch and channel of one
  return {Y.size(2), Y.size(3)};
}

ShapesExample padding_example(std::ostream& out, uint64_t seed) {
  Rng rng(seed);
  Tensor X({8, 8});
  for (float& v : X.span()) v = rng.uniform01();

  Conv2d conv(Conv2dOptions(1, 1, 3).padding(1));
  init_xavier_uniform(conv, rng);
  Shape first = comp_conv2d(conv, X);  // 8 + 2·1 − 3 + 1 = 8

  Conv2d tall(Conv2dOptions(1, 1, 5).kernel_size(5, 3).padding(2, 1));
  init_xavier_uniform(tall, rng);
  Shape second = comp_conv2d(tall, X);  // 8 + 2·2 − 5 + 1 = 8 and 8 + 2·1 − 3 + 1 = 8

  out << "X: " << to_string(X.shape()) << '\n'
      << conv.describe() << " -> " << to_string(first) << '\n'
      << tall.describe() << " -> " << to_string(second) << '\n';
  return {first, second};
}

}  // namespace lenet::examples

// 6. Stride: the window moves S cells at a time.
//
//   OH = ⌊(H + 2·PH − KH) / SH⌋ + 1
#include "tutorial.h"

namespace lenet::examples {

ShapesExample stride_example(std::ostream& out, uint64_t seed) {
  Rng rng(seed);
  Tensor X({8, 8});
  for (float& v : X.span()) v = rng.uniform01();

  Conv2d conv(Conv2dOptions(1, 1, 3).padding(1).stride(2));
  init_xavier_uniform(conv, rng);
  Shape first = comp_conv2d(conv, X);  // ⌊(8 + 2 − 3) / 2⌋ + 1 = 4  (comp_conv2d: see 05_padding.cpp)

  Conv2d odd(Conv2dOptions(1, 1, 3).kernel_size(3, 5).padding(0, 1).stride(3, 4));
  init_xavier_uniform(odd, rng);
  Shape second = comp_conv2d(odd, X);  // ⌊(8 − 3) / 3⌋ + 1 = 2 and ⌊(8 + 2 − 5) / 4⌋ + 1 = 2

  out << "X: " << to_string(X.shape()) << '\n'
      << conv.describe() << " -> " << to_string(first) << '\n'
      << odd.describe() << " -> " << to_string(second) << '\n';
  return {first, second};
}

}  // namespace lenet::examples

// 8. Multiple output channels: one [C, KH, KW] kernel per output channel.
#include <algorithm>
#include <stdexcept>

#include "tutorial.h"

namespace lenet::examples {

Tensor corr2d_multi_in_out(const Tensor& X, const Tensor& K) {
  if (K.dim() != 4)
    throw std::invalid_argument("corr2d_multi_in_out: needs K [O, C, KH, KW], got " + to_string(K.shape()));
  std::vector<Tensor> planes;
  for (int64_t o = 0; o < K.size(0); ++o) planes.push_back(corr2d_multi_in(X, slice(K, o)));
  return stack(planes);
}

MultiOutExample multi_out_example(std::ostream& out) {
  Tensor X = stack({arange({3, 3}), arange({3, 3}, 1)});
  Tensor K0 = stack({Tensor({2, 2}, {0, 1, 2, 3}), Tensor({2, 2}, {1, 2, 3, 4})});
  Tensor K1 = K0, K2 = K0;  // K + 1 and K + 2
  for (float& v : K1.span()) v += 1;
  for (float& v : K2.span()) v += 2;
  Tensor K = stack({K0, K1, K2});  // [3, 2, 2, 2]: output, input, height, width
  Tensor Y = corr2d_multi_in_out(X, K);

  // lenet::Conv2d stores its weight in the same [O, C, KH, KW] layout.
  Conv2d conv(Conv2dOptions(2, 3, 2).bias(false));
  std::ranges::copy(K.span(), conv.parameter("weight").values().begin());
  Tensor Y_library = forward(conv, X.reshaped({1, 2, 3, 3}));

  out << "K: " << to_string(K.shape()) << '\n';
  show(out, "corr2d_multi_in_out(X, K)", Y);
  out << conv.describe() << " holding K: max difference " << max_abs_diff(Y.reshaped(Y_library.shape()), Y_library)
      << '\n';
  return {K, Y, Y_library};
}

}  // namespace lenet::examples

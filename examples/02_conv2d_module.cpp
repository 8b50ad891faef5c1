// 2. Convolutional layers: the chapter's Conv2D module, and the library's Conv2d.
//
// A convolutional layer holds two learnable parameters, a kernel and a scalar bias,
// and its forward is corr2d(X, weight) + bias. The kernel starts random, the bias at zero.
#include <algorithm>

#include "tutorial.h"

namespace lenet::examples {
namespace {

// The chapter's class: weight uniform in [0, 1) as torch.rand, bias zero as torch.zeros(1).
struct Conv2D {
  Tensor weight, bias{{1}};
  Conv2D(int kh, int kw, Rng& rng) : weight({kh, kw}) {
    for (float& v : weight.span()) v = rng.uniform01();
  }
  Tensor forward(const Tensor& X) const {
    Tensor Y = corr2d(X, weight);
    for (float& y : Y.span()) y += bias[0];
    return Y;
  }
};

}  // namespace

Conv2dModuleExample conv2d_module_example(std::ostream& out, uint64_t seed) {
  Rng rng(seed);
  Conv2D chapter(2, 2, rng);
  Tensor X = arange({3, 3});
  Tensor Y = chapter.forward(X);
  show(out, "weight", chapter.weight);
  show(out, "bias", chapter.bias);
  show(out, "Conv2D(X) = corr2d(X, weight) + bias", Y);

  // lenet::Conv2d is the same layer for batches of multi-channel images, with
  // gradients: weight [out, in, KH, KW] and bias [out], as in PyTorch.
  Conv2d conv(Conv2dOptions(1, 1, 2));
  std::ranges::copy(chapter.weight.span(), conv.parameter("weight").values().begin());
  std::ranges::copy(chapter.bias.span(), conv.parameter("bias").values().begin());
  Tensor Y_library = forward(conv, X.reshaped({1, 1, 3, 3}));
  out << conv.describe() << " parameters:";
  for (const Parameter& p : conv.parameters()) out << ' ' << p.name << ' ' << to_string(p.shape);
  out << '\n';
  show(out, "conv(X)", Y_library);
  out << "max |Conv2D(X) - conv(X)| = " << max_abs_diff(Y.reshaped(Y_library.shape()), Y_library) << '\n';
  return {X, chapter.weight, chapter.bias, Y, Y_library};
}

}  // namespace lenet::examples

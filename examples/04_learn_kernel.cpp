// 4. Learning a kernel: recover [1, -1] from the edge image X and its edges Y.
//
// A one-channel Conv2d with a 1×2 kernel and no bias, trained by plain gradient
// descent on the summed squared error, learning rate 3e-2, 10 iterations.
#include <cmath>
#include <cstdio>

#include "lenet/kernels.h"
#include "lenet/optim.h"
#include "tutorial.h"

namespace lenet::examples {

LearnKernelExample learn_kernel_example(std::ostream& out, uint64_t seed) {
  Tensor X = edge_image();
  Tensor Y = corr2d(X, Tensor({1, 2}, {1, -1}));
  X = X.reshaped({1, 1, 6, 8});  // batch of one, one channel
  Y = Y.reshaped({1, 1, 6, 7});

  Conv2d conv(Conv2dOptions(1, 1, 1).kernel_size(1, 2).bias(false));
  Parameter& weight = conv.parameter("weight");
  // PyTorch's default start for a conv layer: uniform in ±1/√fan_in (fan_in = 1·1·2).
  Rng rng(seed);
  for (float& v : weight.values()) v = rng.uniform(-1 / std::sqrt(2.0f), 1 / std::sqrt(2.0f));
  Sgd sgd(weight.values(), weight.grads(), {.lr = 3e-2f});

  LearnKernelExample result;
  Tensor Y_hat, dY(Y.shape());
  for (int i = 1; i <= 10; ++i) {
    conv.forward(X, Y_hat);
    // loss = Σ (Ŷ − Y)², dY = ∂loss/∂Ŷ
    const double loss = kernels::squared_error(Y.numel(), Y_hat.data(), Y.data(), dY.data());
    sgd.zero_grad();
    conv.backward(X, Y_hat, dY, nullptr);  // the input needs no gradient
    sgd.step();
    char line[64];
    std::snprintf(line, sizeof line, "iteration %2d, loss %.3f\n", i, loss);
    out << line;
    result.losses.push_back(loss);
  }
  result.kernel = Tensor({1, 2}, weight.values());
  show(out, "learned kernel", result.kernel);
  return result;
}

}  // namespace lenet::examples

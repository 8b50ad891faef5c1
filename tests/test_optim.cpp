// Optimizers: exact update rules, and learning that memorises a small batch.
#include <gtest/gtest.h>

#include "lenet/nn.h"
#include "lenet/optim.h"
#include "test_util.h"

using namespace lenet;

TEST(Sgd, UpdateRuleWithMomentumAndWeightDecay) {
  std::vector<float> w = {1.0f, -2.0f}, g = {0.5f, 0.25f};
  Sgd opt(std::span<float>(w), std::span<float>(g), {.lr = 0.1f, .momentum = 0.9f, .weight_decay = 0.01f});
  opt.step();  // v = g + wd·w
  EXPECT_FLOAT_EQ(w[0], 1.0f - 0.1f * (0.5f + 0.01f));
  const float v0 = 0.5f + 0.01f;
  const float w0 = w[0];
  opt.step();  // v = 0.9·v + g + wd·w
  EXPECT_FLOAT_EQ(w[0], w0 - 0.1f * (0.9f * v0 + 0.5f + 0.01f * w0));
  opt.zero_grad();
  EXPECT_EQ(g[0], 0.0f);
}

TEST(Adam, FirstStepMovesByLearningRate) {
  // With bias correction the first step is lr·g/(|g| + ε) ≈ lr·sign(g).
  std::vector<float> w = {1.0f, 1.0f}, g = {3.0f, -0.001f};
  Adam opt(std::span<float>(w), std::span<float>(g), {.lr = 0.01f});
  opt.step();
  EXPECT_NEAR(w[0], 0.99f, 1e-6);
  EXPECT_NEAR(w[1], 1.01f, 1e-5);
}

TEST(Optimizers, RejectBadSettings) {
  std::vector<float> w = {1}, g = {1};
  EXPECT_THROW(Sgd(std::span<float>(w), std::span<float>(g), {.lr = 0}), std::invalid_argument);
  EXPECT_THROW(Sgd(std::span<float>(w), std::span<float>(g), {.lr = -1}), std::invalid_argument);
  EXPECT_THROW(Adam(std::span<float>(w), std::span<float>(g), {.lr = 0.1f, .beta1 = 1.0f}), std::invalid_argument);
}

namespace {
// Trains on one fixed batch of 16 random images with 4 classes; returns accuracy.
double overfit(Optimizer& opt, Sequential& m, const Tensor& x, const std::vector<int32_t>& labels, int steps) {
  Tensor dz;
  int64_t correct = 0;
  for (int s = 0; s < steps; ++s) {
    opt.zero_grad();
    const Tensor& z = m.forward(x);
    dz.resize(z.shape());
    kernels::softmax_cross_entropy(static_cast<int>(z.size(0)), static_cast<int>(z.size(1)), z.data(), labels.data(),
                                   dz.data(), kernels::Reduction::Mean, &correct);
    m.backward(dz);
    opt.step();
  }
  const Tensor& z = m.forward(x);
  kernels::softmax_cross_entropy(static_cast<int>(z.size(0)), static_cast<int>(z.size(1)), z.data(), labels.data(),
                                 nullptr, kernels::Reduction::Mean, &correct);
  return static_cast<double>(correct) / static_cast<double>(labels.size());
}
}  // namespace

TEST(Learning, SmallModelMemorisesABatchWithSgdAndAdam) {
  Rng rng(21);
  Tensor x = test::random_tensor({16, 1, 12, 12}, rng, 0, 1);
  std::vector<int32_t> labels(16);
  for (int i = 0; i < 16; ++i) labels[i] = i % 4;
  {
    Rng init(1);
    Sequential m = build_model("lenet-relu", {1, 12, 12}, 4, &init);
    Sgd sgd(m, {.lr = 0.05f, .momentum = 0.9f});
    EXPECT_EQ(overfit(sgd, m, x, labels, 300), 1.0);
  }
  {
    Rng init(1);
    Sequential m = build_model("lenet", {1, 12, 12}, 4, &init);
    Adam adam(m, {.lr = 0.01f});
    EXPECT_EQ(overfit(adam, m, x, labels, 300), 1.0);
  }
}

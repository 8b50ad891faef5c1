// Sequential's fused pipeline (src/runtime/pipeline.h) against the same layers run
// one by one through the Module API, for the built-in architectures and odd
// stacks, batches that fill several blocks and end in a short one, and 1 or 2
// threads; and bit-identical training for a fixed seed and thread count.
#include <gtest/gtest.h>

#include <cstring>

#include "lenet/kernels.h"
#include "lenet/nn.h"
#include "lenet/optim.h"
#include "lenet/parallel.h"
#include "test_util.h"

using namespace lenet;

namespace {

struct Pass {
  Tensor output;
  std::vector<float> grads;  // the flat gradient buffer after backward
};

// Forward and backward of d(Σ r ⊙ output), layer by layer through the modules.
Pass one_by_one(Sequential& m, const Tensor& x, const Tensor& r) {
  std::vector<Tensor> outs(m.size());
  const Tensor* in = &x;
  for (size_t i = 0; i < m.size(); ++i) {
    m[i].forward(*in, outs[i]);
    in = &outs[i];
  }
  m.zero_grad();
  Tensor d = r, dx;
  for (size_t i = m.size(); i-- > 0;) {
    m[i].backward(i ? outs[i - 1] : x, outs[i], d, i ? &dx : nullptr);
    if (i) d = dx;
  }
  auto g = m.flat_grads();
  return {outs.back(), std::vector<float>(g.begin(), g.end())};
}

Pass pipelined(Sequential& m, const Tensor& x, const Tensor& r) {
  Pass p;
  p.output = m.forward(x);
  m.zero_grad();
  m.backward(r);
  auto g = m.flat_grads();
  p.grads.assign(g.begin(), g.end());
  return p;
}

float largest(std::span<const float> v) {
  float s = 1;
  for (float x : v) s = std::max(s, std::fabs(x));
  return s;
}

void expect_same_pass(Sequential& m, const Shape& input, Rng& rng, const std::string& what) {
  Tensor x = test::random_tensor(input, rng, -1, 1);
  const Tensor& probe = m.forward(x);
  Tensor r = test::random_tensor(probe.shape(), rng);
  Pass ref = one_by_one(m, x, r);
  Pass got = pipelined(m, x, r);
  ASSERT_EQ(got.output.shape(), ref.output.shape()) << what;
  EXPECT_LE(max_abs_diff(got.output, ref.output), 1e-5f * largest(ref.output.span())) << what << " output";
  const float scale = largest(ref.grads);
  float worst = 0;
  for (size_t i = 0; i < ref.grads.size(); ++i) worst = std::max(worst, std::fabs(got.grads[i] - ref.grads[i]));
  EXPECT_LE(worst, 1e-4f * scale) << what << " gradients";
}

}  // namespace

class PipelineMatchesLayers : public ::testing::TestWithParam<int> {};

TEST_P(PipelineMatchesLayers, BuiltinAndOddStacks) {
  set_num_threads(GetParam());
  Rng rng(61);
  const std::vector<std::pair<std::string, Shape>> cases = {
      {"lenet", {1, 28, 28}},
      {"lenet-max", {1, 28, 28}},
      {"lenet-relu", {1, 28, 20}},
      {"mlp", {1, 12, 9}},
      // A padded convolution after another (a border is added between them),
      // padded pooling, tanh, no bias.
      {"conv 4 k3 p1, tanh, conv 5 k3x2 p1x0 s2, relu, avgpool 2 p1, maxpool 3 s1 p1, flatten, linear 7 nobias, "
       "sigmoid, linear",
       {2, 13, 11}},
      // Layers before the first convolution, two activations in a row.
      {"maxpool 2, sigmoid, conv 3 k3 nobias, relu, tanh, flatten, linear", {3, 12, 10}},
      // Ends in an image, no Flatten (built by hand: build_model wants classes).
      {"", {2, 9, 9}},
  };
  for (const auto& [arch, chw] : cases) {
    Sequential m;
    if (arch.empty()) {
      m.add(std::make_unique<Conv2d>(Conv2dOptions(2, 3, 3).padding(1)));
      m.add(std::make_unique<Sigmoid>());
      m.add(std::make_unique<MaxPool2d>(Pool2dOptions(2)));
      init_xavier_uniform(m, rng);
    } else {
      m = build_model(arch, chw, 5, &rng);
    }
    for (auto& p : m.parameters())  // non-zero biases
      if (p->shape.size() == 1)
        for (float& v : p->values()) v = rng.uniform(-0.5f, 0.5f);
    for (int64_t batch : {1, 17, 40}) {
      Shape input = {batch};
      input.insert(input.end(), chw.begin(), chw.end());
      expect_same_pass(m, input, rng, arch + " batch " + std::to_string(batch));
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Threads, PipelineMatchesLayers, ::testing::Values(1, 2),
                         [](const auto& param_info) { return "threads" + std::to_string(param_info.param); });

TEST(Pipeline, TrainingIsBitIdenticalForSeedWhateverTheThreadCount) {
  auto train = [](int threads) {
    set_num_threads(threads);
    Rng rng(7);
    Sequential m = build_model("lenet-max", {1, 28, 28}, 10, &rng);
    Sgd sgd(m, {.lr = 0.9f});
    Tensor x = test::random_tensor({70, 1, 28, 28}, rng, 0, 1);
    std::vector<int32_t> labels(70);
    for (auto& l : labels) l = static_cast<int32_t>(rng.below(10));
    Tensor dz({70, 10});
    for (int step = 0; step < 3; ++step) {
      sgd.zero_grad();
      const Tensor& z = m.forward(x);
      kernels::softmax_cross_entropy(70, 10, z.data(), labels.data(), dz.data());
      m.backward(dz);
      sgd.step();
    }
    auto v = m.flat_values();
    return std::vector<float>(v.begin(), v.end());
  };
  // The same run twice, and with 1, 2 or 3 threads: the chunks of the batch and
  // the order of every sum depend on the batch size only.
  const auto one = train(1);
  for (int threads : {1, 2, 3}) {
    auto a = train(threads);
    EXPECT_EQ(std::memcmp(a.data(), one.data(), a.size() * sizeof(float)), 0) << threads << " threads";
  }
}

TEST(Pipeline, BadShapesStillReportTheLayer) {
  // The pipeline declines a shape that does not fit; the layers report it.
  Sequential m = build_model("lenet", {1, 28, 28}, 10, nullptr);
  Tensor x({2, 3, 28, 28});
  try {
    m.forward(x);
    FAIL() << "no exception";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("conv2d: input has 3 channels"), std::string::npos) << e.what();
  }
  Tensor good({2, 1, 28, 28});
  EXPECT_EQ(m.forward(good).shape(), (Shape{2, 10}));
  Tensor wrong_grad({2, 9});
  EXPECT_THROW(m.backward(wrong_grad), std::invalid_argument);
}

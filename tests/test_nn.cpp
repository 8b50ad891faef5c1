// Modules: gradients against central differences, shapes, specs and bad input.
#include <gtest/gtest.h>

#include "lenet/nn.h"
#include "test_util.h"

using namespace lenet;

TEST(Gradients, Conv2dVariants) {
  Rng rng(11);
  std::vector<Conv2dOptions> cases = {
      Conv2dOptions(1, 2, 3),
      Conv2dOptions(3, 2, 3).padding(1, 0).stride(2, 1),
      Conv2dOptions(2, 3, 1),
      Conv2dOptions(2, 2, 2).kernel_size(3, 2).stride(3, 2).padding(0, 1),
      Conv2dOptions(2, 2, 3).bias(false),
  };
  for (auto& o : cases) {
    Conv2d conv(o);
    init_xavier_uniform(conv, rng);
    for (auto& p : conv.parameters())
      if (p.name == "bias")
        for (auto& v : p.values()) v = rng.uniform(-1, 1);
    test::check_gradients(conv, test::random_tensor({2, o.in, 6, 5}, rng), rng);
  }
}

TEST(Gradients, Linear) {
  Rng rng(12);
  Linear fc(7, 4);
  init_xavier_uniform(fc, rng);
  test::check_gradients(fc, test::random_tensor({3, 7}, rng), rng);
  Linear nobias(5, 2, false);
  init_xavier_uniform(nobias, rng);
  test::check_gradients(nobias, test::random_tensor({2, 5}, rng), rng);
}

TEST(Gradients, Pooling) {
  Rng rng(13);
  std::vector<Pool2dOptions> cases = {Pool2dOptions(2), Pool2dOptions(3).stride(2).padding(1),
                                      Pool2dOptions(2, 3).padding(0, 1).stride(2, 3), Pool2dOptions(3).stride(1)};
  for (auto& o : cases) {
    MaxPool2d mp(o);
    test::check_gradients(mp, test::separated_tensor({2, 2, 7, 6}, rng), rng);
    AvgPool2d ap(o);
    test::check_gradients(ap, test::random_tensor({2, 2, 7, 6}, rng), rng);
  }
}

TEST(Gradients, ActivationsAndFlatten) {
  Rng rng(14);
  Sigmoid s;
  test::check_gradients(s, test::random_tensor({2, 3, 4, 4}, rng, -3, 3), rng);
  Tanh t;
  test::check_gradients(t, test::random_tensor({2, 3, 4, 4}, rng, -2, 2), rng);
  ReLU r;  // values spaced away from the kink at zero
  test::check_gradients(r, test::separated_tensor({2, 3, 4, 4}, rng, 0.03f), rng);
  Flatten f;
  test::check_gradients(f, test::random_tensor({2, 3, 4, 4}, rng), rng);
}

TEST(Gradients, WholeLeNetThroughSequential) {
  // End to end: Sequential's backward chain against differences of the loss.
  Rng rng(15);
  Sequential m = build_model("lenet", {1, 16, 12}, 3, &rng);
  Tensor x = test::random_tensor({2, 1, 16, 12}, rng, 0, 1);
  std::vector<int32_t> labels = {0, 2};
  auto loss = [&] {
    const Tensor& z = m.forward(x);
    return kernels::softmax_cross_entropy(2, 3, z.data(), labels.data(), nullptr, kernels::Reduction::Sum);
  };
  m.zero_grad();
  const Tensor& z = m.forward(x);
  Tensor dz(z.shape());
  kernels::softmax_cross_entropy(2, 3, z.data(), labels.data(), dz.data(), kernels::Reduction::Sum);
  m.backward(dz);
  int checked = 0;
  for (Parameter* p : m.parameters()) {
    for (int64_t i = 0; i < p->numel(); i += std::max<int64_t>(1, p->numel() / 7)) {
      const float keep = p->value[i], h = 1e-2f;
      p->value[i] = keep + h;
      double up = loss();
      p->value[i] = keep - h;
      double down = loss();
      p->value[i] = keep;
      double numeric = (up - down) / (2 * h);
      EXPECT_NEAR(p->grad[i], numeric, 1e-3 + 1e-2 * std::fabs(numeric)) << p->name << "[" << i << "]";
      ++checked;
    }
  }
  EXPECT_GT(checked, 50);
}

TEST(Sequential, ParametersAreSlicesOfFlatBuffers) {
  Rng rng(1);
  Sequential m = build_model("lenet", {1, 28, 28}, 10, &rng);
  auto params = m.parameters();
  ASSERT_EQ(params.size(), 10u);
  EXPECT_EQ(params[0]->name, "0.weight");
  EXPECT_EQ(params[0]->shape, (Shape{6, 1, 5, 5}));
  EXPECT_EQ(params[1]->name, "0.bias");
  EXPECT_EQ(params[2]->name, "3.weight");
  EXPECT_EQ(params[4]->name, "7.weight");
  EXPECT_EQ(params[4]->shape, (Shape{120, 400}));
  EXPECT_EQ(params[9]->name, "11.bias");
  int64_t offset = 0;
  for (Parameter* p : params) {
    EXPECT_EQ(p->value, m.flat_values().data() + offset);
    EXPECT_EQ(p->grad, m.flat_grads().data() + offset);
    offset += p->numel();
  }
  EXPECT_EQ(offset, m.parameter_count());
  EXPECT_EQ(m.parameter_count(), 61706);  // the chapter's LeNet has 61,706 parameters
}

TEST(Sequential, ChapterLeNetShapes28x28) {
  Sequential m = build_model("lenet", {1, 28, 28}, 10, nullptr);
  EXPECT_EQ(m.summary({1, 1, 28, 28}),
            "Conv2d output shape:\t[1, 6, 28, 28]\n"
            "Sigmoid output shape:\t[1, 6, 28, 28]\n"
            "AvgPool2d output shape:\t[1, 6, 14, 14]\n"
            "Conv2d output shape:\t[1, 16, 10, 10]\n"
            "Sigmoid output shape:\t[1, 16, 10, 10]\n"
            "AvgPool2d output shape:\t[1, 16, 5, 5]\n"
            "Flatten output shape:\t[1, 400]\n"
            "Linear output shape:\t[1, 120]\n"
            "Sigmoid output shape:\t[1, 120]\n"
            "Linear output shape:\t[1, 84]\n"
            "Sigmoid output shape:\t[1, 84]\n"
            "Linear output shape:\t[1, 10]\n");
}

TEST(Sequential, LeNetShapes28x20NineClasses) {
  for (auto arch : {"lenet", "lenet-max", "lenet-relu"}) {
    Sequential m = build_model(arch, {1, 28, 20}, 9, nullptr);
    auto shapes = m.layer_shapes({1, 1, 28, 20});
    EXPECT_EQ(shapes[5], (Shape{1, 16, 5, 3}));
    EXPECT_EQ(shapes[6], (Shape{1, 240}));
    EXPECT_EQ(shapes.back(), (Shape{1, 9}));
  }
  Sequential mlp = build_model("mlp", {1, 28, 20}, 9, nullptr);
  EXPECT_EQ(mlp.layer_shapes({4, 1, 28, 20}).back(), (Shape{4, 9}));
}

TEST(Sequential, ForwardMatchesLayerShapesAndSpecRoundTrips) {
  Rng rng(2);
  for (auto arch : builtin_architectures()) {
    Sequential m = build_model(arch, {1, 28, 28}, 10, &rng);
    Tensor x = test::random_tensor({3, 1, 28, 28}, rng, 0, 1);
    EXPECT_EQ(m.forward(x).shape(), (Shape{3, 10})) << arch;
    Sequential again = build_model(m.spec(), {1, 28, 28}, 10, nullptr);
    EXPECT_EQ(again.spec(), m.spec());
    EXPECT_EQ(again.parameter_count(), m.parameter_count());
  }
}

TEST(Spec, TextAndJsonBuildTheSameModel) {
  std::string text =
      "conv 4 k3x2 p1x0 s2, tanh, maxpool 2 s1, avgpool 2x1 p1x0, flatten, linear 8 nobias, relu, linear";
  std::string json = R"([{"layer":"conv","out":4,"kernel":[3,2],"padding":[1,0],"stride":2},{"layer":"tanh"},
    {"layer":"maxpool","window":2,"stride":1},{"layer":"avgpool","window":[2,1],"padding":[1,0]},
    {"layer":"flatten"},{"layer":"linear","out":8,"bias":false},{"layer":"relu"},{"layer":"linear"}])";
  Sequential a = build_model(text, {2, 11, 9}, 5, nullptr);
  Sequential b = build_model(json, {2, 11, 9}, 5, nullptr);
  EXPECT_EQ(a.spec(), b.spec());
  EXPECT_EQ(a.spec(),
            "conv 4 k3x2 p1x0 s2, tanh, maxpool 2 s1, avgpool 2x1 p1x0, flatten, linear 8 nobias, relu, linear 5");
}

TEST(Spec, XavierInitIsSeededAndBounded) {
  Rng r1(42), r2(42), r3(43);
  Sequential a = build_model("lenet", {1, 28, 28}, 10, &r1);
  Sequential b = build_model("lenet", {1, 28, 28}, 10, &r2);
  Sequential c = build_model("lenet", {1, 28, 28}, 10, &r3);
  auto va = a.flat_values(), vb = b.flat_values(), vc = c.flat_values();
  EXPECT_TRUE(std::equal(va.begin(), va.end(), vb.begin()));
  EXPECT_FALSE(std::equal(va.begin(), va.end(), vc.begin()));
  // conv1: fan_in 25, fan_out 150 -> bound sqrt(6/175)
  const float bound = std::sqrt(6.0f / 175.0f);
  Parameter* w = a.parameters()[0];
  float lo = 0, hi = 0;
  for (float v : w->values()) {
    lo = std::min(lo, v);
    hi = std::max(hi, v);
  }
  EXPECT_LE(hi, bound);
  EXPECT_GE(lo, -bound);
  EXPECT_GT(hi, 0.8f * bound);
  for (float v : a.parameters()[1]->values()) EXPECT_EQ(v, 0.0f);
}

namespace {
std::string build_error(const std::string& arch, Shape in = {1, 28, 28}, int classes = 10) {
  try {
    build_model(arch, in, classes, nullptr);
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "";
}
void expect_contains(const std::string& text, const std::string& part) {
  EXPECT_NE(text.find(part), std::string::npos) << "'" << text << "' lacks '" << part << "'";
}
}  // namespace

TEST(Spec, BadInputNamesLayerPositionAndSizes) {
  std::string e = build_error("conv 6 k5, sigmoid, blur 3, flatten, linear");
  expect_contains(e, "layer 3");
  expect_contains(e, "unknown layer 'blur'");
  e = build_error("conv 6 k5, maxpool 2, conv 16 k5, maxpool 2, conv 8 k9, flatten, linear");
  expect_contains(e, "layer 5");
  expect_contains(e, "kernel larger than the padded input");
  expect_contains(e, "input 4x4, kernel 9x9");
  e = build_error("conv 0 k3, flatten, linear");
  expect_contains(e, "layer 1");
  expect_contains(e, "sizes must be positive");
  e = build_error("conv 6 k-2, flatten, linear");
  expect_contains(e, "sizes must be positive");
  e = build_error("maxpool 0, flatten, linear");
  expect_contains(e, "layer 1");
  e = build_error("linear 10");
  expect_contains(e, "add 'flatten'");
  e = build_error("flatten, linear 7");
  expect_contains(e, "produces 7 outputs but the data has 10 classes");
  e = build_error("conv 6 k3 q4, flatten, linear");
  expect_contains(e, "unknown option 'q4'");
  e = build_error("nonsense-arch");
  expect_contains(e, "unknown layer");
  e = build_error("lenet", {1, 28, 28}, 0);
  expect_contains(e, "class count must be positive");
  e = build_error("[{\"layer\": 3}]");
  expect_contains(e, "layer 1");
  EXPECT_NE(build_error(""), "");
}

TEST(Module, ShapeMismatchNamesOpAndShapes) {
  Conv2d conv(Conv2dOptions(1, 6, 5));
  Tensor x({1, 3, 28, 28}), y;
  try {
    conv.forward(x, y);
    FAIL();
  } catch (const std::invalid_argument& e) {
    EXPECT_STREQ(e.what(),
                 "conv2d: input has 3 channels, weight expects 1 (input [1, 3, 28, 28], weight [6, 1, 5, 5])");
  }
  Linear fc(400, 120);
  Tensor flat({2, 240});
  EXPECT_THROW(fc.forward(flat, y), std::invalid_argument);
}

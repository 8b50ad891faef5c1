// int8: the per-ISA integer kernels exactly against the plain-loop ones, the
// int8 plan against a per-layer oracle built from them, and quantization.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "lenet/nn.h"
#include "lenet/parallel.h"
#include "lenet/quant.h"
#include "lenet/random.h"
#include "test_util.h"

using namespace lenet;

namespace {

std::vector<uint8_t> random_u8(int64_t n, Rng& rng) {
  std::vector<uint8_t> v(static_cast<size_t>(n));
  for (auto& x : v) x = static_cast<uint8_t>(rng.uniform(0.0f, 256.0f));
  return v;
}
// The whole int8 range, -128 and 127 included (the extremes are where a
// saturating instruction such as pmaddubsw would go wrong).
std::vector<int8_t> random_s8(int64_t n, Rng& rng) {
  std::vector<int8_t> v(static_cast<size_t>(n));
  for (auto& x : v) x = static_cast<int8_t>(static_cast<int>(rng.uniform(0.0f, 256.0f)) - 128);
  return v;
}
std::vector<int32_t> random_bias(int64_t n, Rng& rng) {
  std::vector<int32_t> v(static_cast<size_t>(n));
  for (auto& x : v) x = static_cast<int32_t>(rng.uniform(-100000.0f, 100000.0f));
  return v;
}

}  // namespace

TEST(Int8Kernel, ConvMatchesReferenceExactly) {
  Rng rng(1601);
  struct Case {
    kernels::ConvGeometry g;
    int zp;
    bool bias;
  };
  std::vector<Case> cases;
  auto geo = [](int n, int c, int h, int w, int o, int kh, int kw, int sh, int sw, int ph, int pw) {
    kernels::ConvGeometry g;
    g.n = n, g.c = c, g.h = h, g.w = w, g.o = o, g.kh = kh, g.kw = kw, g.sh = sh, g.sw = sw, g.ph = ph, g.pw = pw;
    return g;
  };
  cases.push_back({geo(2, 1, 28, 28, 6, 5, 5, 1, 1, 2, 2), 0, true});    // LeNet's first layer
  cases.push_back({geo(3, 6, 14, 14, 16, 5, 5, 1, 1, 0, 0), 37, true});  // its second
  cases.push_back({geo(1, 3, 9, 7, 17, 3, 2, 2, 1, 1, 2), 255, false});  // odd channels past a block, strides
  cases.push_back({geo(2, 2, 5, 5, 33, 1, 1, 1, 1, 0, 0), 128, true});   // 1×1, depth 2 (padded to 4)
  cases.push_back({geo(1, 7, 6, 6, 5, 3, 3, 3, 3, 2, 2), 200, true});    // padding wider than the stride
  // Channel counts around the tiles of two blocks (AVX2: 8 channels a block,
  // VNNI: 16): 9, 13, 24 and 40 leave a short block or a lone one after the
  // pairs; pixel counts that leave rows after the row tiles (3·2, 5·7).
  cases.push_back({geo(2, 3, 4, 3, 24, 2, 2, 1, 1, 0, 0), 9, true});
  cases.push_back({geo(1, 5, 7, 9, 13, 3, 3, 1, 1, 1, 0), 250, true});
  cases.push_back({geo(3, 1, 5, 5, 9, 5, 5, 1, 1, 2, 2), 0, false});
  cases.push_back({geo(1, 4, 3, 3, 40, 1, 1, 1, 1, 0, 0), 64, true});
  // The direct convolution (AVX2/SSE2: ≤ 8 output channels, horizontal stride
  // 1): an even kernel width, row stride 2, output rows not a multiple of the
  // lanes (18, 3, 20), 8 channels and 1, a 7×7 kernel.
  cases.push_back({geo(2, 2, 9, 17, 3, 3, 4, 2, 1, 1, 2), 77, true});
  cases.push_back({geo(1, 3, 5, 3, 8, 1, 1, 1, 1, 0, 0), 255, true});
  cases.push_back({geo(3, 1, 11, 20, 1, 7, 7, 1, 1, 3, 3), 5, false});
  // VNNI's column quads (4 kernel rows of a leftover column in one group):
  // several input channels, a leftover row and row stride 2; 8 kernel rows
  // (two column groups) and no row quads at all (KW 3).
  cases.push_back({geo(2, 3, 8, 9, 5, 5, 6, 2, 1, 1, 0), 90, true});
  cases.push_back({geo(1, 2, 10, 7, 4, 8, 3, 1, 1, 0, 1), 13, true});
  for (const Case& t : cases) {
    const auto& g = t.g;
    const auto x = random_u8(static_cast<int64_t>(g.n) * g.c * g.h * g.w, rng);
    const auto w = random_s8(static_cast<int64_t>(g.o) * g.c * g.kh * g.kw, rng);
    const auto b = random_bias(g.o, rng);
    const size_t ny = static_cast<size_t>(g.n) * g.o * g.oh() * g.ow();
    std::vector<int32_t> fast(ny, -1), ref(ny, -2);
    kernels::conv2d_int8(g, x.data(), t.zp, w.data(), t.bias ? b.data() : nullptr, fast.data());
    kernels::reference::conv2d_int8(g, x.data(), t.zp, w.data(), t.bias ? b.data() : nullptr, ref.data());
    EXPECT_EQ(fast, ref) << "conv " << g.c << "->" << g.o << " k" << g.kh << "x" << g.kw << " zp " << t.zp;
  }
}

TEST(Int8Kernel, ExtremeValuesDoNotSaturate) {
  // Every product at its largest (255 · −128, 255 · 127) over a deep sum.
  for (const int8_t wv : {int8_t{-128}, int8_t{127}}) {
    const int in = 4000, out = 9, n = 7;
    std::vector<uint8_t> x(static_cast<size_t>(n) * in, 255);
    std::vector<int8_t> w(static_cast<size_t>(out) * in, wv);
    std::vector<int32_t> fast(static_cast<size_t>(n) * out), ref(fast.size());
    kernels::linear_int8(n, in, out, x.data(), 0, w.data(), nullptr, fast.data());
    kernels::reference::linear_int8(n, in, out, x.data(), 0, w.data(), nullptr, ref.data());
    EXPECT_EQ(fast, ref);
    EXPECT_EQ(ref[0], 255 * static_cast<int32_t>(wv) * in);
  }
}

TEST(Int8Kernel, LinearMatchesReferenceExactly) {
  Rng rng(1602);
  struct Case {
    int n, in, out, zp;
  };
  for (const Case& t :
       {Case{1, 400, 120, 0}, Case{33, 120, 84, 17}, Case{70, 84, 10, 255}, Case{5, 3, 1, 100}, Case{9, 1, 65, 1},
        Case{16, 257, 16, 128}, Case{7, 13, 9, 3}, Case{3, 30, 24, 200}, Case{2, 5, 17, 0}}) {
    const auto x = random_u8(static_cast<int64_t>(t.n) * t.in, rng);
    const auto w = random_s8(static_cast<int64_t>(t.out) * t.in, rng);
    const auto b = random_bias(t.out, rng);
    std::vector<int32_t> fast(static_cast<size_t>(t.n) * t.out, -1), ref(fast.size(), -2);
    kernels::linear_int8(t.n, t.in, t.out, x.data(), t.zp, w.data(), b.data(), fast.data());
    kernels::reference::linear_int8(t.n, t.in, t.out, x.data(), t.zp, w.data(), b.data(), ref.data());
    EXPECT_EQ(fast, ref) << t.n << "x" << t.in << " -> " << t.out << " zp " << t.zp;
  }
}

namespace {

// The int8 model computed layer by layer from the plain pieces: ONNX's
// QuantizeLinear (round half to even, saturate), the reference int8 kernels,
// and the dequantization with input_scale · weight_scale[o].
Tensor int8_oracle(Sequential& model, const Quantization& q, const Tensor& input) {
  Tensor x = input, y;
  size_t next = 0;
  for (size_t i = 0; i < model.size(); ++i) {
    Module& m = model[i];
    const bool quantized = next < q.layers.size() && q.layers[next].layer == i;
    if (!quantized) {
      m.forward(x, y);
      std::swap(x, y);
      continue;
    }
    const LayerQuantization& l = q.layers[next++];
    std::vector<uint8_t> xq(static_cast<size_t>(x.numel()));
    for (int64_t k = 0; k < x.numel(); ++k) {
      const float v = std::nearbyint(x[k] / l.input_scale) + static_cast<float>(l.input_zero_point);
      xq[static_cast<size_t>(k)] = static_cast<uint8_t>(std::clamp(v, 0.0f, 255.0f));
    }
    const Shape out = m.output_shape(x.shape());
    std::vector<int32_t> acc(static_cast<size_t>(numel(out)));
    const int32_t* bias = l.bias.empty() ? nullptr : l.bias.data();
    if (auto* conv = dynamic_cast<Conv2d*>(&m))
      kernels::reference::conv2d_int8(conv->geometry(x.shape()), xq.data(), l.input_zero_point, l.weights.data(), bias,
                                      acc.data());
    else
      kernels::reference::linear_int8(static_cast<int>(x.size(0)), static_cast<int>(x.size(1)),
                                      static_cast<int>(out[1]), xq.data(), l.input_zero_point, l.weights.data(), bias,
                                      acc.data());
    y.resize(out);
    const int64_t channels = static_cast<int64_t>(l.weight_scales.size());
    const int64_t inner = numel(out) / out[0] / channels;
    for (int64_t k = 0; k < y.numel(); ++k)
      y[k] = static_cast<float>(acc[static_cast<size_t>(k)]) *
             (l.input_scale * l.weight_scales[static_cast<size_t>(k / inner % channels)]);
    std::swap(x, y);
  }
  return x;
}

Sequential random_model(const std::string& arch, const Shape& chw, int classes, uint64_t seed) {
  Rng rng(seed);
  Sequential m = build_model(arch, chw, classes, &rng);
  for (auto* p : m.parameters())
    if (p->name.ends_with("bias"))
      for (auto& v : p->values()) v = rng.uniform(-0.3f, 0.3f);
  return m;
}

}  // namespace

TEST(Int8Engine, MatchesThePerLayerOracle) {
  const char* unusual =
      "conv 4 k3x2 p1 s2, tanh, avgpool 3 s2 p1, conv 8 k2 nobias, relu, maxpool 2 p1, flatten, "
      "linear 20 nobias, tanh, linear";
  // The fusions of the plan: a max pooling straight after a convolution (no
  // activation; overlapping windows), an activation after that pooling, then a
  // convolution with sigmoid and pooling fused, 13 channels (a short block).
  const char* fused =
      "conv 5 k3, maxpool 3 s2, relu, conv 13 k2 p1, sigmoid, maxpool 2, flatten, linear 9, sigmoid, linear";
  // More than 8 input channels (the implicit convolution's input interleaved
  // after quantizing, not in one pass) and 10 output channels (not direct).
  const char* wide = "conv 10 k3, relu, conv 12 k3 p1, maxpool 2, flatten, linear";
  // The direct convolution with its 2×2 max pooling in the kernel: odd output
  // rows and columns (the last of each left out), one segment of 16 pixels
  // (width 9) and several of 32 (width 37); an implicit last convolution with
  // no pooling and an activation between Flatten and the Linear (its columns
  // permuted for the interleaved features).
  const char* pooled = "conv 3 k3 p1, relu, maxpool 2, conv 10 k2, flatten, tanh, linear";
  const char* pooled_wide = "conv 4 k5 p2, maxpool 2, tanh, flatten, linear";
  struct Case {
    std::string arch;
    Shape chw;
    int classes;
  };
  uint64_t seed = 160;
  for (const Case& c :
       {Case{"lenet", {1, 28, 28}, 10}, Case{"lenet-max", {1, 28, 28}, 10}, Case{"lenet-relu", {1, 28, 20}, 9},
        Case{"mlp", {1, 8, 8}, 3}, Case{unusual, {2, 17, 15}, 7}, Case{fused, {3, 15, 14}, 6},
        Case{wide, {1, 12, 11}, 4}, Case{pooled, {1, 11, 9}, 5}, Case{pooled_wide, {2, 9, 37}, 3}}) {
    Sequential model = random_model(c.arch, c.chw, c.classes, ++seed);
    Rng rng(seed);
    // Calibration on inputs in [-0.5, 1] (a non-zero zero point for the first layer).
    const Tensor calib = test::random_tensor({40, c.chw[0], c.chw[1], c.chw[2]}, rng, -0.5f, 1.0f);
    const Quantization q = quantize_model(model, calib);
    model.set_quantization(q);
    for (int64_t batch : {1, 3, 33, 70}) {
      // Some inputs beyond the calibrated range: they saturate alike.
      const Tensor x = test::random_tensor({batch, c.chw[0], c.chw[1], c.chw[2]}, rng, -0.7f, 1.2f);
      const Tensor expected = int8_oracle(model, q, x);
      const Tensor& got = model.forward(x);
      ASSERT_EQ(got.shape(), expected.shape());
      float worst = 0, scale = 0;
      for (int64_t k = 0; k < got.numel(); ++k) {
        worst = std::max(worst, std::fabs(got[k] - expected[k]));
        scale = std::max(scale, std::fabs(expected[k]));
      }
      // The integer parts are exact; only the float layers between them may
      // round differently (the engine's activations are the same kernels).
      EXPECT_LE(worst, 1e-5f * std::max(scale, 1.0f)) << c.arch << " batch " << batch;
    }
  }
}

TEST(Int8Engine, ResultsDoNotDependOnTheThreadCount) {
  Sequential model = random_model("lenet", {1, 28, 28}, 10, 1603);
  Rng rng(1603);
  model.set_quantization(quantize_model(model, test::random_tensor({20, 1, 28, 28}, rng, 0.0f, 1.0f)));
  const Tensor x = test::random_tensor({100, 1, 28, 28}, rng, 0.0f, 1.0f);
  const int keep = num_threads();
  set_num_threads(1);
  const Tensor one = model.forward(x);
  set_num_threads(2);
  const Tensor two = model.forward(x);
  set_num_threads(keep);
  EXPECT_EQ(max_abs_diff(one, two), 0.0f);
}

TEST(Int8Engine, CloseToTheFloatModel) {
  // Quantization error only: the logits move by a few percent of their range.
  Sequential model = random_model("lenet-relu", {1, 28, 28}, 10, 1604);
  Rng rng(1604);
  const Tensor calib = test::random_tensor({200, 1, 28, 28}, rng, 0.0f, 1.0f);
  const Tensor x = test::random_tensor({50, 1, 28, 28}, rng, 0.0f, 1.0f);
  const Tensor reference = model.forward(x);
  for (auto method : {CalibrationMethod::MinMax, CalibrationMethod::Percentile}) {
    Sequential copy = random_model("lenet-relu", {1, 28, 28}, 10, 1604);
    QuantizeOptions o;
    o.method = method;
    copy.set_quantization(quantize_model(copy, calib, o));
    const Tensor& got = copy.forward(x);
    float scale = 0;
    for (float v : reference.span()) scale = std::max(scale, std::fabs(v));
    EXPECT_LE(max_abs_diff(got, reference), 0.05f * scale);
  }
}

TEST(Int8Engine, RefusesTraining) {
  Sequential model = random_model("mlp", {1, 8, 8}, 3, 1605);
  Rng rng(1605);
  model.set_quantization(quantize_model(model, test::random_tensor({4, 1, 8, 8}, rng)));
  const Tensor& y = model.forward(test::random_tensor({2, 1, 8, 8}, rng));
  EXPECT_THROW(model.backward(Tensor(y.shape())), std::logic_error);
}

TEST(Quantize, WeightsAreSymmetricPerOutputChannel) {
  Sequential model = random_model("lenet", {1, 28, 28}, 10, 1606);
  Rng rng(1606);
  const Quantization q = quantize_model(model, test::random_tensor({8, 1, 28, 28}, rng, 0.0f, 1.0f));
  ASSERT_EQ(q.layers.size(), 5u);  // 2 conv + 3 linear
  for (const auto& l : q.layers) {
    const auto& w = model[l.layer].parameters()[0];
    const int64_t per = w.numel() / static_cast<int64_t>(l.weight_scales.size());
    for (size_t o = 0; o < l.weight_scales.size(); ++o) {
      int peak = 0;
      for (int64_t k = 0; k < per; ++k) {
        const int8_t v = l.weights[o * static_cast<size_t>(per) + static_cast<size_t>(k)];
        peak = std::max(peak, std::abs(static_cast<int>(v)));
        // Each weight is its float value rounded to the channel's grid.
        EXPECT_NEAR(v * l.weight_scales[o], w.value[static_cast<int64_t>(o) * per + k], l.weight_scales[o] * 0.5001f);
      }
      EXPECT_EQ(peak, 127) << "layer " << l.layer << " channel " << o;  // the largest weight uses the full range
    }
    EXPECT_GT(l.input_scale, 0.0f);
  }
  // The first layer sees [0, 1]: zero point 0, scale 1/255 at most.
  EXPECT_EQ(q.layers[0].input_zero_point, 0);
  EXPECT_LE(q.layers[0].input_scale, 1.0f / 255.0f * 1.0001f);
}

TEST(Quantize, RefusesWhatItCannotQuantize) {
  struct Square : Module {
    std::string type() const override { return "Square"; }
    std::string describe() const override { return "Square()"; }
    std::string spec() const override { return "square"; }
    Shape output_shape(const Shape& in) const override { return in; }
    void forward(const Tensor& x, Tensor& y) override {
      y = x;
      for (auto& v : y.span()) v *= v;
    }
    void backward(const Tensor&, const Tensor&, const Tensor&, Tensor*) override {}
  };
  Sequential model;
  model.add(std::make_unique<Flatten>());
  model.add(std::make_unique<Square>());
  Rng rng(1607);
  try {
    quantize_model(model, test::random_tensor({2, 1, 2, 2}, rng));
    FAIL();
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("layer 2 (Square()) has no int8 path"), std::string::npos) << e.what();
  }
  Sequential lenet = random_model("lenet", {1, 28, 28}, 10, 1607);
  EXPECT_THROW(quantize_model(lenet, test::random_tensor({2, 1, 20, 20}, rng)), std::invalid_argument);
  EXPECT_THROW(quantize_model(lenet, Tensor({0, 1, 28, 28})), std::invalid_argument);
}

TEST(Quantize, RefusesBadScalesAndZeroPoints) {
  Sequential model = random_model("mlp", {1, 8, 8}, 3, 1608);
  Rng rng(1608);
  const Quantization good = quantize_model(model, test::random_tensor({4, 1, 8, 8}, rng));
  auto error = [&](auto edit) {
    Quantization q = good;
    edit(q);
    try {
      model.set_quantization(q);
    } catch (const std::invalid_argument& e) {
      return std::string(e.what());
    }
    return std::string("accepted");
  };
  const float nan = std::numeric_limits<float>::quiet_NaN();
  EXPECT_NE(error([](Quantization& q) { q.layers[0].input_scale = 0; }).find("input scale"), std::string::npos);
  EXPECT_NE(error([](Quantization& q) { q.layers[1].input_scale = -1; }).find("input scale"), std::string::npos);
  EXPECT_NE(error([&](Quantization& q) { q.layers[0].input_scale = nan; }).find("input scale"), std::string::npos);
  EXPECT_NE(error([&](Quantization& q) { q.layers[0].weight_scales[3] = nan; }).find("output channel 3"),
            std::string::npos);
  EXPECT_NE(error([](Quantization& q) { q.layers[1].weight_scales[0] = 0; }).find("weight scale"), std::string::npos);
  EXPECT_NE(error([](Quantization& q) { q.layers[0].input_zero_point = 256; }).find("outside 0..255"),
            std::string::npos);
  EXPECT_NE(error([](Quantization& q) { q.layers[0].input_zero_point = -1; }).find("outside 0..255"),
            std::string::npos);
  EXPECT_NE(error([](Quantization& q) { q.layers[0].weights.pop_back(); }).find("int8 weights"), std::string::npos);
  EXPECT_NE(error([](Quantization& q) { q.layers.pop_back(); }).find("no int8 parameters"), std::string::npos);
  EXPECT_EQ(model.quantization(), nullptr);  // every refusal left the float model as it was
  EXPECT_EQ(error([](Quantization&) {}), "accepted");
  EXPECT_NE(model.quantization(), nullptr);
}

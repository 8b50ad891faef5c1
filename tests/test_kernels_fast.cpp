// The fast kernels' own paths against libm and the reference kernels: the
// vectorised activations, convolution blocks of many images (the existing
// kernel tests use batches 1 and 7, one short block), pooling and linear fast
// paths, and bit-identical results for a fixed thread count.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <tuple>
#include <vector>

#include "lenet/kernels.h"
#include "lenet/parallel.h"
#include "test_util.h"

using namespace lenet;
using namespace lenet::kernels;

namespace {

Tensor random(int64_t n, Rng& rng, float lo = -1, float hi = 1) { return test::random_tensor({n}, rng, lo, hi); }

void expect_close(const Tensor& fast, const Tensor& ref, const std::string& what) {
  float scale = 1;
  for (float v : ref.span()) scale = std::max(scale, std::fabs(v));
  EXPECT_LE(max_abs_diff(fast, ref), 1e-5f * scale) << what;
}

bool bit_equal(const Tensor& a, const Tensor& b) {
  return a.numel() == b.numel() && std::memcmp(a.data(), b.data(), sizeof(float) * a.numel()) == 0;
}

// Units in the last place between a float result and the exact (double) value.
double ulps(float got, double exact) {
  const double ulp = std::ldexp(1.0, std::ilogb(static_cast<float>(exact)) - 23);
  return std::fabs(got - exact) / std::max(ulp, double(std::numeric_limits<float>::denorm_min()));
}

}  // namespace

TEST(ActivationKernel, SigmoidAndTanhWithinFewUlpsOfLibm) {
  // A dense sweep through the ranges that matter, plus the saturated ends.
  std::vector<float> xs;
  for (float v = -20.0f; v <= 20.0f; v += 0.001953125f) xs.push_back(v);
  for (float v : {-200.0f, -88.0f, -87.5f, -1e-30f, 0.0f, 1e-30f, 1e-6f, 87.5f, 88.5f, 200.0f}) xs.push_back(v);
  const int64_t n = static_cast<int64_t>(xs.size());
  std::vector<float> s(xs.size()), t(xs.size());
  sigmoid_forward(n, xs.data(), s.data());
  tanh_forward(n, xs.data(), t.data());
  double worst_s = 0, worst_t = 0;
  for (size_t i = 0; i < xs.size(); ++i) {
    const double x = xs[i];
    const double es = 1.0 / (1.0 + std::exp(-x)), et = std::tanh(x);
    // Far in the tails both are within a denormal of 0 (sigmoid) or exact ±1.
    if (es > 1e-30)
      worst_s = std::max(worst_s, ulps(s[i], es));
    else
      EXPECT_LT(s[i], 1e-30f) << x;
    if (std::fabs(et) > 1e-30)
      worst_t = std::max(worst_t, ulps(t[i], et));
    else
      EXPECT_EQ(t[i], static_cast<float>(et)) << x;
  }
  EXPECT_LE(worst_s, 4.0);
  EXPECT_LE(worst_t, 4.0);
  EXPECT_EQ(s[xs.size() - 1], 1.0f);
  EXPECT_EQ(t[xs.size() - 1], 1.0f);
  EXPECT_EQ(t[xs.size() - 10], -1.0f);
}

TEST(ActivationKernel, TailsComputeLikeFullVectors) {
  // An element's value does not depend on where it sits (tail or not).
  Rng rng(21);
  Tensor x = random(1000, rng, -6, 6), full({1000}), part({1000});
  sigmoid_forward(1000, x.data(), full.data());
  for (int64_t i = 0; i < 1000; i += 37)
    sigmoid_forward(std::min<int64_t>(37, 1000 - i), x.data() + i, part.data() + i);
  EXPECT_TRUE(bit_equal(full, part));
}

class BlockedConv : public ::testing::TestWithParam<int> {};

// LeNet's own shapes and odd ones, in batches that fill several blocks and end
// in a short one.
TEST_P(BlockedConv, LeNetAndOddShapesMatchReference) {
  set_num_threads(GetParam());
  Rng rng(31);
  std::vector<ConvGeometry> shapes;
  ConvGeometry c1;
  c1.n = 37;
  c1.c = 1;
  c1.o = 6;
  c1.h = c1.w = 28;
  c1.kh = c1.kw = 5;
  c1.ph = c1.pw = 2;
  ConvGeometry c2;
  c2.n = 33;
  c2.c = 6;
  c2.o = 16;
  c2.h = c2.w = 14;
  c2.kh = c2.kw = 5;
  ConvGeometry odd;
  odd.n = 19;
  odd.c = 3;
  odd.o = 11;
  odd.h = 9;
  odd.w = 23;
  odd.kh = 3;
  odd.kw = 4;
  odd.sh = 2;
  odd.sw = 3;
  odd.ph = 1;
  odd.pw = 2;
  shapes = {c1, c2, odd};
  for (const auto& g : shapes) {
    const int64_t xs = int64_t(g.n) * g.c * g.h * g.w, ws = int64_t(g.o) * g.c * g.kh * g.kw,
                  ys = int64_t(g.n) * g.o * g.oh() * g.ow();
    Tensor x = random(xs, rng), w = random(ws, rng), b = random(g.o, rng), dy = random(ys, rng);
    Tensor y({ys}), y_ref({ys});
    conv2d_forward(g, x.data(), w.data(), b.data(), y.data());
    reference::conv2d_forward(g, x.data(), w.data(), b.data(), y_ref.data());
    expect_close(y, y_ref, "forward");
    Tensor dx({xs}), dw({ws}), db({g.o}), dx_ref({xs}), dw_ref({ws}), db_ref({g.o});
    conv2d_backward(g, x.data(), w.data(), dy.data(), dx.data(), dw.data(), db.data());
    reference::conv2d_backward(g, x.data(), w.data(), dy.data(), dx_ref.data(), dw_ref.data(), db_ref.data());
    expect_close(dx, dx_ref, "dx");
    expect_close(dw, dw_ref, "dw");
    expect_close(db, db_ref, "db");
    // Twice the same call, bit for bit the same result.
    Tensor dw2({ws}), db2({g.o}), dx2({xs}), y2({ys});
    conv2d_forward(g, x.data(), w.data(), b.data(), y2.data());
    conv2d_backward(g, x.data(), w.data(), dy.data(), dx2.data(), dw2.data(), db2.data());
    EXPECT_TRUE(bit_equal(y, y2));
    EXPECT_TRUE(bit_equal(dx, dx2));
    EXPECT_TRUE(bit_equal(dw, dw2));
    EXPECT_TRUE(bit_equal(db, db2));
  }
}

INSTANTIATE_TEST_SUITE_P(Threads, BlockedConv, ::testing::Values(1, 2),
                         [](const auto& param_info) { return "threads" + std::to_string(param_info.param); });

// LeNet's 2×2 stride-2 pooling takes a vector path: forward against the
// reference, backward against the definition (the gradient goes to the arg-max
// cell, or a quarter to each cell for average pooling; uncovered cells get 0).
TEST(PoolKernel, TwoByTwoStrideTwoMatchesReference) {
  Rng rng(41);
  for (int threads : {1, 2}) {
    set_num_threads(threads);
    for (auto [n, c, h, w] :
         {std::tuple{256, 6, 28, 28}, {3, 16, 10, 10}, {2, 3, 7, 9}, {1, 1, 2, 2}, {5, 2, 40, 37}}) {
      PoolGeometry g;
      g.n = n;
      g.c = c;
      g.h = h;
      g.w = w;
      const int64_t xs = int64_t(n) * c * h * w, ys = int64_t(n) * c * g.oh() * g.ow();
      Tensor x = test::separated_tensor({xs}, rng), y({ys}), y_ref({ys}), dy = random(ys, rng);
      std::vector<int32_t> arg(static_cast<size_t>(ys));
      maxpool2d_forward(g, x.data(), y.data(), arg.data());
      reference::maxpool2d_forward(g, x.data(), y_ref.data());
      EXPECT_TRUE(bit_equal(y, y_ref)) << "max " << h << "x" << w;
      Tensor dx({xs}), dx_expected({xs});
      dx.fill(7.0f);  // every cell must be written
      maxpool2d_backward(g, dy.data(), arg.data(), dx.data());
      const int64_t isz = int64_t(h) * w, osz = int64_t(g.oh()) * g.ow();
      for (int64_t p = 0; p < int64_t(n) * c; ++p)
        for (int64_t i = 0; i < osz; ++i) {
          const int32_t a = arg[static_cast<size_t>(p * osz + i)];
          // The arg-max is the cell holding the maximum.
          EXPECT_EQ(x[p * isz + a], y[p * osz + i]);
          dx_expected[p * isz + a] += dy[p * osz + i];
        }
      EXPECT_TRUE(bit_equal(dx, dx_expected)) << "max backward " << h << "x" << w;

      avgpool2d_forward(g, x.data(), y.data());
      reference::avgpool2d_forward(g, x.data(), y_ref.data());
      EXPECT_TRUE(bit_equal(y, y_ref)) << "avg " << h << "x" << w;
      dx.fill(7.0f);
      avgpool2d_backward(g, dy.data(), dx.data());
      dx_expected.zero();
      for (int64_t p = 0; p < int64_t(n) * c; ++p)
        for (int i = 0; i < g.oh(); ++i)
          for (int j = 0; j < g.ow(); ++j)
            for (int r = 0; r < 2; ++r)
              for (int s = 0; s < 2; ++s)
                dx_expected[p * isz + (2 * i + r) * w + 2 * j + s] = dy[p * osz + i * g.ow() + j] * 0.25f;
      EXPECT_TRUE(bit_equal(dx, dx_expected)) << "avg backward " << h << "x" << w;
    }
  }
}

TEST(LinearKernel, LeNetShapesForwardAndBackwardMatchDefinition) {
  Rng rng(51);
  for (int threads : {1, 2}) {
    set_num_threads(threads);
    for (auto [n, in, out] :
         {std::tuple{256, 400, 120}, {256, 120, 84}, {256, 84, 10}, {1, 400, 120}, {3, 17, 33}, {37, 5, 1}}) {
      Tensor x = random(int64_t(n) * in, rng), w = random(int64_t(out) * in, rng), b = random(out, rng);
      Tensor y({int64_t(n) * out}), y_ref({int64_t(n) * out});
      linear_forward(n, in, out, x.data(), w.data(), b.data(), y.data());
      reference::linear_forward(n, in, out, x.data(), w.data(), b.data(), y_ref.data());
      expect_close(y, y_ref, "linear forward");
      // Backward in double from the definition; dw and db accumulate onto 1.
      Tensor dy = random(int64_t(n) * out, rng), dx({int64_t(n) * in}), dw({int64_t(out) * in}), db({out});
      dw.fill(1.0f);
      db.fill(1.0f);
      linear_backward(n, in, out, x.data(), w.data(), dy.data(), dx.data(), dw.data(), db.data());
      Tensor dx_ref({int64_t(n) * in}), dw_ref({int64_t(out) * in}), db_ref({out});
      for (int r = 0; r < n; ++r)
        for (int i = 0; i < in; ++i) {
          double s = 0;
          for (int o = 0; o < out; ++o) s += double(dy[int64_t(r) * out + o]) * w[int64_t(o) * in + i];
          dx_ref[int64_t(r) * in + i] = static_cast<float>(s);
        }
      for (int o = 0; o < out; ++o) {
        double sb = 1;
        for (int r = 0; r < n; ++r) sb += dy[int64_t(r) * out + o];
        db_ref[o] = static_cast<float>(sb);
        for (int i = 0; i < in; ++i) {
          double s = 1;
          for (int r = 0; r < n; ++r) s += double(dy[int64_t(r) * out + o]) * x[int64_t(r) * in + i];
          dw_ref[int64_t(o) * in + i] = static_cast<float>(s);
        }
      }
      expect_close(dx, dx_ref, "linear dx");
      expect_close(dw, dw_ref, "linear dw");
      expect_close(db, db_ref, "linear db");
    }
  }
}

// A few images go through the direct per-image convolution: vectorised over
// output channels when there are a multiple of a vector of them, otherwise
// over output columns (stride 1 across), including rows wider than two vectors.
TEST(ConvKernel, DirectPerImagePathsMatchReference) {
  Rng rng(71);
  std::vector<ConvGeometry> shapes;
  auto add = [&](int n, int c, int o, int h, int w, int k, int p, int sh, int sw) {
    ConvGeometry g;
    g.n = n;
    g.c = c;
    g.o = o;
    g.h = h;
    g.w = w;
    g.kh = g.kw = k;
    g.ph = g.pw = p;
    g.sh = sh;
    g.sw = sw;
    shapes.push_back(g);
  };
  add(1, 6, 16, 14, 14, 5, 0, 1, 1);  // LeNet's conv2
  add(1, 1, 6, 28, 28, 5, 2, 1, 1);   // LeNet's conv1
  add(2, 3, 32, 11, 13, 3, 1, 2, 3);  // channels path, strides
  add(3, 2, 5, 9, 40, 3, 1, 2, 1);    // columns path, three vectors wide
  add(1, 4, 7, 6, 70, 2, 0, 1, 1);    // columns path, five vectors wide
  add(2, 2, 16, 5, 5, 5, 2, 1, 1);    // channels path, one output column per row... and padding
  for (const auto& g : shapes) {
    const int64_t xs = int64_t(g.n) * g.c * g.h * g.w, ws = int64_t(g.o) * g.c * g.kh * g.kw,
                  ys = int64_t(g.n) * g.o * g.oh() * g.ow();
    Tensor x = random(xs, rng), w = random(ws, rng), b = random(g.o, rng), y({ys}), y_ref({ys});
    y.fill(7.0f);
    conv2d_forward(g, x.data(), w.data(), b.data(), y.data());
    reference::conv2d_forward(g, x.data(), w.data(), b.data(), y_ref.data());
    expect_close(y, y_ref, "direct o" + std::to_string(g.o) + " w" + std::to_string(g.w));
    conv2d_forward(g, x.data(), w.data(), nullptr, y.data());
    reference::conv2d_forward(g, x.data(), w.data(), nullptr, y_ref.data());
    expect_close(y, y_ref, "direct without bias");
  }
}

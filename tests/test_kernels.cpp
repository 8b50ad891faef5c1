// Fast kernels against the plain-loop reference kernels, on random shapes.
#include <gtest/gtest.h>

#include <algorithm>

#include "lenet/kernels.h"
#include "lenet/parallel.h"
#include "test_util.h"

using namespace lenet;
using namespace lenet::kernels;

namespace {

// Random geometry: odd sizes, strides 1–3, padding different per dimension,
// 1×1 kernels, 1–8 channels, batch 1 and 7.
ConvGeometry random_conv(Rng& rng, int batch) {
  for (;;) {
    ConvGeometry g;
    g.n = batch;
    g.c = 1 + static_cast<int>(rng.below(8));
    g.o = 1 + static_cast<int>(rng.below(8));
    g.h = 1 + static_cast<int>(rng.below(13));
    g.w = 1 + static_cast<int>(rng.below(13));
    g.kh = rng.below(4) == 0 ? 1 : 1 + static_cast<int>(rng.below(5));
    g.kw = rng.below(4) == 0 ? 1 : 1 + static_cast<int>(rng.below(5));
    g.sh = 1 + static_cast<int>(rng.below(3));
    g.sw = 1 + static_cast<int>(rng.below(3));
    g.ph = static_cast<int>(rng.below(3));
    g.pw = static_cast<int>(rng.below(3));
    if (g.kh <= g.h + 2 * g.ph && g.kw <= g.w + 2 * g.pw) return g;
  }
}

PoolGeometry random_pool(Rng& rng, int batch) {
  for (;;) {
    PoolGeometry g;
    g.n = batch;
    g.c = 1 + static_cast<int>(rng.below(8));
    g.h = 1 + static_cast<int>(rng.below(13));
    g.w = 1 + static_cast<int>(rng.below(13));
    g.kh = 1 + static_cast<int>(rng.below(4));
    g.kw = 1 + static_cast<int>(rng.below(4));
    g.sh = 1 + static_cast<int>(rng.below(3));
    g.sw = 1 + static_cast<int>(rng.below(3));
    g.ph = static_cast<int>(rng.below(g.kh / 2 + 1));
    g.pw = static_cast<int>(rng.below(g.kw / 2 + 1));
    if (g.kh <= g.h + 2 * g.ph && g.kw <= g.w + 2 * g.pw) return g;
  }
}

std::string describe(const ConvGeometry& g) {
  return "n" + std::to_string(g.n) + " c" + std::to_string(g.c) + " o" + std::to_string(g.o) + " " +
         std::to_string(g.h) + "x" + std::to_string(g.w) + " k" + std::to_string(g.kh) + "x" + std::to_string(g.kw) +
         " s" + std::to_string(g.sh) + "x" + std::to_string(g.sw) + " p" + std::to_string(g.ph) + "x" +
         std::to_string(g.pw);
}

Tensor random(int64_t n, Rng& rng) { return test::random_tensor({n}, rng); }

// Float sums in another order differ by rounding: relative 1e-5 of the magnitude.
void expect_close(const Tensor& fast, const Tensor& ref, const std::string& what) {
  float scale = 1;
  for (float v : ref.span()) scale = std::max(scale, std::fabs(v));
  EXPECT_LE(max_abs_diff(fast, ref), 1e-5f * scale) << what;
}

}  // namespace

class ConvKernel : public ::testing::TestWithParam<int> {};

TEST_P(ConvKernel, ForwardAndBackwardMatchReference) {
  set_num_threads(GetParam());
  Rng rng(1234 + GetParam());
  for (int batch : {1, 7}) {
    for (int trial = 0; trial < 25; ++trial) {
      ConvGeometry g = random_conv(rng, batch);
      const int64_t xs = int64_t(g.n) * g.c * g.h * g.w, ws = int64_t(g.o) * g.c * g.kh * g.kw,
                    ys = int64_t(g.n) * g.o * g.oh() * g.ow();
      Tensor x = random(xs, rng), w = random(ws, rng), b = random(g.o, rng), dy = random(ys, rng);
      Tensor y({ys}), y_ref({ys});
      conv2d_forward(g, x.data(), w.data(), b.data(), y.data());
      reference::conv2d_forward(g, x.data(), w.data(), b.data(), y_ref.data());
      expect_close(y, y_ref, "forward " + describe(g));

      Tensor dx({xs}), dw({ws}), db({g.o}), dx_ref({xs}), dw_ref({ws}), db_ref({g.o});
      conv2d_backward(g, x.data(), w.data(), dy.data(), dx.data(), dw.data(), db.data());
      reference::conv2d_backward(g, x.data(), w.data(), dy.data(), dx_ref.data(), dw_ref.data(), db_ref.data());
      expect_close(dx, dx_ref, "dx " + describe(g));
      expect_close(dw, dw_ref, "dw " + describe(g));
      expect_close(db, db_ref, "db " + describe(g));
    }
  }
}

// Thread counts 1 and 2 must agree with the reference alike.
INSTANTIATE_TEST_SUITE_P(Threads, ConvKernel, ::testing::Values(1, 2),
                         [](const auto& param_info) { return "threads" + std::to_string(param_info.param); });

TEST(ConvKernel, WithoutBiasAndWithoutInputGradient) {
  Rng rng(7);
  ConvGeometry g;
  g.n = 3;
  g.c = 2;
  g.o = 4;
  g.h = 9;
  g.w = 6;
  g.kh = 3;
  g.kw = 2;
  g.ph = 1;
  g.pw = 0;
  g.sh = 2;
  g.sw = 1;
  const int64_t xs = int64_t(g.n) * g.c * g.h * g.w, ws = int64_t(g.o) * g.c * g.kh * g.kw,
                ys = int64_t(g.n) * g.o * g.oh() * g.ow();
  Tensor x = random(xs, rng), w = random(ws, rng), dy = random(ys, rng);
  Tensor y({ys}), y_ref({ys}), dw({ws}), dw_ref({ws});
  conv2d_forward(g, x.data(), w.data(), nullptr, y.data());
  reference::conv2d_forward(g, x.data(), w.data(), nullptr, y_ref.data());
  expect_close(y, y_ref, "forward without bias");
  conv2d_backward(g, x.data(), w.data(), dy.data(), nullptr, dw.data(), nullptr);
  reference::conv2d_backward(g, x.data(), w.data(), dy.data(), nullptr, dw_ref.data(), nullptr);
  expect_close(dw, dw_ref, "dw without dx");
}

TEST(ConvKernel, BackwardAccumulatesWeightGradient) {
  Rng rng(8);
  ConvGeometry g;
  g.n = 2;
  g.c = 1;
  g.o = 2;
  g.h = 5;
  g.w = 5;
  g.kh = 3;
  g.kw = 3;
  const int64_t xs = 50, ws = 18, ys = int64_t(g.n) * g.o * 9;
  Tensor x = random(xs, rng), w = random(ws, rng), dy = random(ys, rng);
  Tensor dw({ws}), db({2}), dw_twice({ws}), db_twice({2});
  conv2d_backward(g, x.data(), w.data(), dy.data(), nullptr, dw.data(), db.data());
  conv2d_backward(g, x.data(), w.data(), dy.data(), nullptr, dw_twice.data(), db_twice.data());
  conv2d_backward(g, x.data(), w.data(), dy.data(), nullptr, dw_twice.data(), db_twice.data());
  for (int64_t i = 0; i < ws; ++i) EXPECT_NEAR(dw_twice[i], 2 * dw[i], 1e-5f);
  for (int64_t i = 0; i < 2; ++i) EXPECT_NEAR(db_twice[i], 2 * db[i], 1e-5f);
}

TEST(PoolKernel, MaxAndAverageMatchReference) {
  Rng rng(99);
  for (int threads : {1, 2}) {
    set_num_threads(threads);
    for (int batch : {1, 7}) {
      for (int trial = 0; trial < 40; ++trial) {
        PoolGeometry g = random_pool(rng, batch);
        const int64_t xs = int64_t(g.n) * g.c * g.h * g.w, ys = int64_t(g.n) * g.c * g.oh() * g.ow();
        Tensor x = random(xs, rng), y({ys}), y_ref({ys});
        std::vector<int32_t> arg(static_cast<size_t>(ys));
        maxpool2d_forward(g, x.data(), y.data(), arg.data());
        reference::maxpool2d_forward(g, x.data(), y_ref.data());
        EXPECT_EQ(max_abs_diff(y, y_ref), 0.0f) << "max";
        avgpool2d_forward(g, x.data(), y.data());
        reference::avgpool2d_forward(g, x.data(), y_ref.data());
        expect_close(y, y_ref, "avg");
      }
    }
  }
}

TEST(LinearKernel, MatchesReference) {
  Rng rng(5);
  for (int threads : {1, 2}) {
    set_num_threads(threads);
    for (auto [n, in, out] : {std::tuple{1, 1, 1}, {7, 13, 5}, {64, 400, 120}, {33, 3, 17}}) {
      Tensor x = random(int64_t(n) * in, rng), w = random(int64_t(out) * in, rng), b = random(out, rng);
      Tensor y({int64_t(n) * out}), y_ref({int64_t(n) * out});
      linear_forward(n, in, out, x.data(), w.data(), b.data(), y.data());
      reference::linear_forward(n, in, out, x.data(), w.data(), b.data(), y_ref.data());
      expect_close(y, y_ref, "linear");
    }
  }
}

TEST(Reference, ChapterCorr2d) {
  // The chapter's example: X = [[0,1,2],[3,4,5],[6,7,8]], K = [[0,1],[2,3]].
  float x[] = {0, 1, 2, 3, 4, 5, 6, 7, 8}, k[] = {0, 1, 2, 3}, y[4];
  reference::corr2d(3, 3, x, 2, 2, k, y);
  EXPECT_EQ(std::vector<float>(y, y + 4), (std::vector<float>{19, 25, 37, 43}));
}

TEST(Reference, ChapterPooling) {
  PoolGeometry g;
  g.h = g.w = 3;
  g.kh = g.kw = 2;
  g.sh = g.sw = 1;
  float x[] = {0, 1, 2, 3, 4, 5, 6, 7, 8}, y[4];
  int32_t arg[4];
  maxpool2d_forward(g, x, y, arg);
  EXPECT_EQ(std::vector<float>(y, y + 4), (std::vector<float>{4, 5, 7, 8}));
  avgpool2d_forward(g, x, y);
  EXPECT_EQ(std::vector<float>(y, y + 4), (std::vector<float>{2, 3, 5, 6}));
}

TEST(Loss, CrossEntropyIsStableAndCorrect) {
  // Huge logits would overflow a naive exp.
  float z[] = {1000, 0, -1000, 0, 0, 0};
  int32_t labels[] = {0, 2};
  float d[6];
  int64_t correct = 0;
  double loss = softmax_cross_entropy(2, 3, z, labels, d, Reduction::Mean, &correct);
  EXPECT_NEAR(loss, (0.0 + std::log(3.0)) / 2, 1e-6);
  EXPECT_EQ(correct, 1);
  EXPECT_NEAR(d[0], 0.0, 1e-7);
  EXPECT_NEAR(d[5], (1.0 / 3 - 1) / 2, 1e-6);
  double sum = softmax_cross_entropy(2, 3, z, labels, nullptr, Reduction::Sum);
  EXPECT_NEAR(sum, std::log(3.0), 1e-6);
  int32_t bad[] = {0, 3};
  EXPECT_THROW(softmax_cross_entropy(2, 3, z, bad, nullptr), std::invalid_argument);
}

TEST(Loss, CrossEntropyGradientMatchesNumerical) {
  Rng rng(3);
  const int n = 4, k = 5;
  Tensor z = test::random_tensor({n * k}, rng, -3, 3), d({n * k});
  int32_t labels[] = {0, 4, 2, 2};
  for (auto red : {Reduction::Mean, Reduction::Sum}) {
    softmax_cross_entropy(n, k, z.data(), labels, d.data(), red);
    for (int i = 0; i < n * k; ++i) {
      const float keep = z[i], h = 1e-3f;
      z[i] = keep + h;
      double up = softmax_cross_entropy(n, k, z.data(), labels, nullptr, red);
      z[i] = keep - h;
      double down = softmax_cross_entropy(n, k, z.data(), labels, nullptr, red);
      z[i] = keep;
      EXPECT_NEAR(d[i], (up - down) / (2 * h), 1e-3);
    }
  }
}

TEST(Loss, SquaredErrorAndGradient) {
  float y[] = {1, 2, 3}, t[] = {1, 0, 4}, d[3];
  EXPECT_DOUBLE_EQ(squared_error(3, y, t, d, Reduction::Sum), 5.0);
  EXPECT_EQ(std::vector<float>(d, d + 3), (std::vector<float>{0, 4, -2}));
  EXPECT_DOUBLE_EQ(squared_error(3, y, t, d, Reduction::Mean), 5.0 / 3);
}

TEST(Loss, SoftmaxRowsSumToOne) {
  float z[] = {1, 2, 3, -5, 0, 5}, p[6];
  softmax(2, 3, z, p);
  EXPECT_NEAR(p[0] + p[1] + p[2], 1.0, 1e-6);
  EXPECT_NEAR(p[3] + p[4] + p[5], 1.0, 1e-6);
  EXPECT_GT(p[2], p[1]);
}

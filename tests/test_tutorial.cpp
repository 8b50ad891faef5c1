// The chapter walk-through (examples/): every value the book prints, asserted on
// the tensors the examples return, plus the `lenet tutorial` command itself.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <sstream>
#include <string>
#include <vector>

#include "cli_util.h"
#include "tutorial.h"

namespace lenet::examples {
namespace {

// Every element of t equals `expected`, in row-major order, and the shape matches.
void expect_tensor(const Tensor& t, const Shape& shape, const std::vector<float>& expected) {
  ASSERT_EQ(t.shape(), shape);
  ASSERT_EQ(t.numel(), static_cast<int64_t>(expected.size()));
  for (int64_t i = 0; i < t.numel(); ++i) EXPECT_EQ(t[i], expected[static_cast<size_t>(i)]) << "element " << i;
}

TEST(Tutorial, Corr2dGivesTheChaptersValues) {
  std::ostringstream out;
  auto r = corr2d_example(out);
  expect_tensor(r.X, {3, 3}, {0, 1, 2, 3, 4, 5, 6, 7, 8});
  expect_tensor(r.K, {2, 2}, {0, 1, 2, 3});
  expect_tensor(r.Y, {2, 2}, {19, 25, 37, 43});
  EXPECT_NE(out.str().find("corr2d(X, K) = [[19, 25],\n                [37, 43]]"), std::string::npos) << out.str();
}

TEST(Tutorial, Corr2dRejectsAKernelLargerThanTheInput) {
  EXPECT_THROW(corr2d(Tensor({2, 2}), Tensor({3, 1})), std::invalid_argument);
  EXPECT_THROW(corr2d(Tensor({1, 2, 2}), Tensor({1, 1})), std::invalid_argument);
}

TEST(Tutorial, Conv2dModuleIsCorr2dPlusBiasAndMatchesTheLibrary) {
  for (uint64_t seed : {0, 1, 2}) {
    std::ostringstream out;
    auto r = conv2d_module_example(out, seed);
    ASSERT_EQ(r.weight.shape(), (Shape{2, 2}));
    for (float w : r.weight.span()) {
      EXPECT_GE(w, 0.0f);  // torch.rand: uniform in [0, 1)
      EXPECT_LT(w, 1.0f);
    }
    expect_tensor(r.bias, {1}, {0});
    // Y[i, j] = Σ X[i + a, j + b] · w[a, b] + bias, written out for the 3×3 arange input.
    const auto& w = r.weight;
    ASSERT_EQ(r.Y.shape(), (Shape{2, 2}));
    for (int i = 0; i < 2; ++i)
      for (int j = 0; j < 2; ++j) {
        const float x00 = 3.0f * i + j, x01 = x00 + 1, x10 = x00 + 3, x11 = x00 + 4;
        EXPECT_FLOAT_EQ(r.Y.at({i, j}), x00 * w[0] + x01 * w[1] + x10 * w[2] + x11 * w[3] + r.bias[0]);
      }
    ASSERT_EQ(r.Y_library.shape(), (Shape{1, 1, 2, 2}));
    EXPECT_LT(max_abs_diff(r.Y.reshaped({1, 1, 2, 2}), r.Y_library), 1e-5f);
  }
  // A different seed draws a different kernel.
  std::ostringstream out;
  EXPECT_GT(max_abs_diff(conv2d_module_example(out, 0).weight, conv2d_module_example(out, 1).weight), 0.0f);
}

TEST(Tutorial, EdgeDetectionSeesOnlyVerticalEdges) {
  std::ostringstream out;
  auto r = edge_detection_example(out);
  ASSERT_EQ(r.X.shape(), (Shape{6, 8}));
  for (int i = 0; i < 6; ++i)
    for (int j = 0; j < 8; ++j) EXPECT_EQ(r.X.at({i, j}), (j >= 2 && j <= 5) ? 0.0f : 1.0f);
  expect_tensor(r.K, {1, 2}, {1, -1});
  ASSERT_EQ(r.Y.shape(), (Shape{6, 7}));
  for (int i = 0; i < 6; ++i)
    for (int j = 0; j < 7; ++j) EXPECT_EQ(r.Y.at({i, j}), j == 1 ? 1.0f : j == 5 ? -1.0f : 0.0f) << i << "," << j;
  expect_tensor(r.Y_transposed, {8, 5}, std::vector<float>(40, 0.0f));
}

TEST(Tutorial, LearnedKernelApproachesOneMinusOneWithFallingLoss) {
  // PyTorch's default start (±1/√2) keeps every seed within 0.1 after 10 steps
  // (worst case ≈ 0.087): check several, so a lucky seed cannot pass alone.
  for (uint64_t seed = 0; seed < 4; ++seed) {
    std::ostringstream out;
    auto r = learn_kernel_example(out, seed);
    ASSERT_EQ(r.losses.size(), 10u);
    for (size_t i = 1; i < r.losses.size(); ++i) EXPECT_LT(r.losses[i], r.losses[i - 1]) << "seed " << seed;
    EXPECT_LT(r.losses.back(), 0.05 * r.losses.front()) << "seed " << seed;
    ASSERT_EQ(r.kernel.shape(), (Shape{1, 2}));
    EXPECT_NEAR(r.kernel[0], 1.0f, 0.1f) << "seed " << seed;
    EXPECT_NEAR(r.kernel[1], -1.0f, 0.1f) << "seed " << seed;
    EXPECT_NE(out.str().find("iteration 10, loss "), std::string::npos) << out.str();
  }
}

TEST(Tutorial, LearnedKernelLossMatchesHandComputedFirstStep) {
  // Loss before the first update, Σ (w0·X[:, j] + w1·X[:, j+1] − Y)², from the
  // kernel the seed draws: recompute it from the same draw.
  std::ostringstream out;
  auto r = learn_kernel_example(out, 5);
  Rng rng(5);
  const float w0 = rng.uniform(-1 / std::sqrt(2.0f), 1 / std::sqrt(2.0f));
  const float w1 = rng.uniform(-1 / std::sqrt(2.0f), 1 / std::sqrt(2.0f));
  const std::array<float, 8> row = {1, 1, 0, 0, 0, 0, 1, 1};
  double loss = 0;
  for (int j = 0; j < 7; ++j) {
    const double e = w0 * row[j] + w1 * row[j + 1] - (row[j] - row[j + 1]);
    loss += 6 * e * e;  // six equal rows
  }
  EXPECT_NEAR(r.losses.front(), loss, 1e-4 * loss);
}

TEST(Tutorial, PaddingKeepsTheShape) {
  std::ostringstream out;
  auto r = padding_example(out, 0);
  EXPECT_EQ(r.first, (Shape{8, 8}));
  EXPECT_EQ(r.second, (Shape{8, 8}));
}

TEST(Tutorial, StrideShrinksTheShape) {
  std::ostringstream out;
  auto r = stride_example(out, 0);
  EXPECT_EQ(r.first, (Shape{4, 4}));
  EXPECT_EQ(r.second, (Shape{2, 2}));
}

TEST(Tutorial, MultipleInputChannelsSumPerChannelCorrelations) {
  std::ostringstream out;
  auto r = multi_in_example(out);
  expect_tensor(r.X, {2, 3, 3}, {0, 1, 2, 3, 4, 5, 6, 7, 8, 1, 2, 3, 4, 5, 6, 7, 8, 9});
  expect_tensor(r.K, {2, 2, 2}, {0, 1, 2, 3, 1, 2, 3, 4});
  expect_tensor(r.Y, {2, 2}, {56, 72, 104, 120});
  EXPECT_THROW(corr2d_multi_in(Tensor({2, 3, 3}), Tensor({3, 2, 2})), std::invalid_argument);
}

TEST(Tutorial, MultipleOutputChannelsStackOneResultPerKernel) {
  std::ostringstream out;
  auto r = multi_out_example(out);
  ASSERT_EQ(r.K.shape(), (Shape{3, 2, 2, 2}));
  expect_tensor(r.Y, {3, 2, 2}, {56, 72, 104, 120, 76, 100, 148, 172, 96, 128, 192, 224});
  expect_tensor(r.Y_library, {1, 3, 2, 2}, {56, 72, 104, 120, 76, 100, 148, 172, 96, 128, 192, 224});
}

TEST(Tutorial, OneByOneConvolutionIsAMatrixProduct) {
  for (uint64_t seed : {0, 1, 2, 3}) {
    std::ostringstream out;
    auto r = conv1x1_example(out, seed);
    ASSERT_EQ(r.Y_matmul.shape(), (Shape{2, 3, 3}));
    ASSERT_EQ(r.Y_conv.shape(), (Shape{2, 3, 3}));
    EXPECT_LT(r.max_diff, 1e-6f);
    EXPECT_EQ(r.max_diff, max_abs_diff(r.Y_matmul, r.Y_conv));
    // The inputs are real draws, so the comparison is not between two zero tensors.
    float largest = 0;
    for (float v : r.Y_conv.span()) largest = std::max(largest, std::fabs(v));
    EXPECT_GT(largest, 0.1f);
    // Y[o, p] = Σ_c K[o, c] · X[c, p], checked at one position by hand.
    const float y = r.K[3] * r.X[4] + r.K[4] * r.X[9 + 4] + r.K[5] * r.X[18 + 4];
    EXPECT_NEAR(r.Y_matmul[9 + 4], y, 1e-5f);
  }
  EXPECT_THROW(corr2d_multi_in_out_1x1(Tensor({3, 3, 3}), Tensor({2, 3, 2, 2})), std::invalid_argument);
}

TEST(Tutorial, PoolingGivesTheChaptersValues) {
  std::ostringstream out;
  auto r = pooling_example(out);
  expect_tensor(r.max2x2, {1, 1, 2, 2}, {4, 5, 7, 8});
  expect_tensor(r.avg2x2, {1, 1, 2, 2}, {2, 3, 5, 6});
  expect_tensor(r.X, {1, 1, 4, 4}, {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15});
  expect_tensor(r.window3, {1, 1, 1, 1}, {10});
  expect_tensor(r.window3_p1_s2, {1, 1, 2, 2}, {5, 7, 13, 15});
  expect_tensor(r.window2x3, {1, 1, 2, 2}, {5, 7, 13, 15});
  expect_tensor(r.two_channels, {1, 2, 2, 2}, {5, 7, 13, 15, 6, 8, 14, 16});
}

TEST(Tutorial, LeNetLayerShapes) {
  std::ostringstream out;
  auto r = lenet_example(out, 0);
  const std::vector<std::string> types = {"Conv2d",  "Sigmoid", "AvgPool2d", "Conv2d", "Sigmoid", "AvgPool2d",
                                          "Flatten", "Linear",  "Sigmoid",   "Linear", "Sigmoid", "Linear"};
  const std::vector<Shape> mnist = {{1, 6, 28, 28},  {1, 6, 28, 28}, {1, 6, 14, 14}, {1, 16, 10, 10},
                                    {1, 16, 10, 10}, {1, 16, 5, 5},  {1, 400},       {1, 120},
                                    {1, 120},        {1, 84},        {1, 84},        {1, 10}};
  const std::vector<Shape> narrow = {{1, 6, 28, 20}, {1, 6, 28, 20}, {1, 6, 14, 10}, {1, 16, 10, 6},
                                     {1, 16, 10, 6}, {1, 16, 5, 3},  {1, 240},       {1, 120},
                                     {1, 120},       {1, 84},        {1, 84},        {1, 9}};
  ASSERT_EQ(r.mnist.size(), types.size());
  ASSERT_EQ(r.narrow.size(), types.size());
  for (size_t i = 0; i < types.size(); ++i) {
    EXPECT_EQ(r.mnist[i].type, types[i]) << i;
    EXPECT_EQ(r.mnist[i].shape, mnist[i]) << i;
    EXPECT_EQ(r.narrow[i].type, types[i]) << i;
    EXPECT_EQ(r.narrow[i].shape, narrow[i]) << i;
  }
  EXPECT_NE(out.str().find("Conv2d output shape:\t[1, 6, 28, 28]\n"), std::string::npos) << out.str();
  EXPECT_NE(out.str().find("Flatten output shape:\t[1, 240]\n"), std::string::npos) << out.str();
}

TEST(Tutorial, SectionsAreFoundByNameOrNumberAndEachPrints) {
  const auto& all = sections();
  ASSERT_EQ(all.size(), 11u);
  for (size_t i = 0; i < all.size(); ++i) {
    EXPECT_EQ(find_section(all[i].name), &all[i]);
    EXPECT_EQ(find_section(std::to_string(i + 1)), &all[i]);
    // Each names an example file that exists.
    std::FILE* f = std::fopen((std::string(LENET_SOURCE_DIR) + "/" + all[i].file).c_str(), "r");
    EXPECT_NE(f, nullptr) << all[i].file;
    if (f) std::fclose(f);
    std::ostringstream out;
    all[i].run(out, 0);
    EXPECT_GT(out.str().size(), 20u) << all[i].name;
  }
  EXPECT_EQ(find_section("nope"), nullptr);
  EXPECT_EQ(find_section("0"), nullptr);
  EXPECT_EQ(find_section("12"), nullptr);
}

// ---- the command line ----

using lenet::test::run_cli;

TEST(TutorialCli, RunsEverySectionByDefault) {
  auto r = run_cli("tutorial");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.err, "");
  for (size_t i = 0; i < sections().size(); ++i) {
    const auto& s = sections()[i];
    EXPECT_NE(r.out.find("== " + std::to_string(i + 1) + ". " + s.name + ": "), std::string::npos) << s.name;
  }
  // A few of the book's numbers, as printed.
  EXPECT_NE(r.out.find("corr2d(X, K) = [[19, 25],"), std::string::npos);
  EXPECT_NE(r.out.find("corr2d_multi_in(X, K) = [[ 56,  72],"), std::string::npos);
  EXPECT_NE(r.out.find("MaxPool2d(k=3) = [[[[10]]]]"), std::string::npos);
  EXPECT_NE(r.out.find("Linear output shape:\t[1, 9]"), std::string::npos);
}

TEST(TutorialCli, RunsOneSectionByNameOrNumber) {
  auto by_name = run_cli("tutorial multi-out");
  ASSERT_EQ(by_name.code, 0) << by_name.err;
  EXPECT_NE(by_name.out.find("[[ 96, 128],"), std::string::npos) << by_name.out;
  EXPECT_EQ(by_name.out.find("== 1."), std::string::npos) << "ran more than the section asked for";
  auto by_number = run_cli("tutorial 8");
  ASSERT_EQ(by_number.code, 0) << by_number.err;
  EXPECT_EQ(by_number.out, by_name.out);
}

TEST(TutorialCli, SeedChangesOnlyTheRandomExamples) {
  auto a = run_cli("tutorial learn-kernel --seed 1"), b = run_cli("tutorial learn-kernel --seed 2");
  ASSERT_EQ(a.code, 0) << a.err;
  ASSERT_EQ(b.code, 0) << b.err;
  EXPECT_NE(a.out, b.out);
  EXPECT_EQ(run_cli("tutorial corr2d --seed 1").out, run_cli("tutorial corr2d --seed 2").out);
}

TEST(TutorialCli, ListsTheSections) {
  auto r = run_cli("tutorial --list");
  ASSERT_EQ(r.code, 0) << r.err;
  for (const auto& s : sections()) {
    EXPECT_NE(r.out.find(s.name), std::string::npos) << s.name;
    EXPECT_NE(r.out.find(s.file), std::string::npos) << s.file;
  }
  EXPECT_EQ(r.out.find("=="), std::string::npos) << "--list ran the examples";
}

TEST(TutorialCli, UnknownSectionIsOneLineErrorNamingTheKnownOnes) {
  auto r = run_cli("tutorial corr2d nope");
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.out, "") << "nothing runs when one name is wrong";
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_NE(r.err.find("lenet: error: unknown tutorial section 'nope'"), std::string::npos) << r.err;
  for (const auto& s : sections()) EXPECT_NE(r.err.find(s.name), std::string::npos) << r.err;
}

}  // namespace
}  // namespace lenet::examples

#include <gtest/gtest.h>

#include <cstdint>

#include "lenet/tensor.h"

using namespace lenet;

TEST(Tensor, ZeroFilledAndAligned) {
  Tensor t({2, 3, 5, 7});
  EXPECT_EQ(t.numel(), 210);
  EXPECT_EQ(t.dim(), 4);
  EXPECT_EQ(t.size(-1), 7);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(t.data()) % 64, 0u);
  for (float v : t.span()) EXPECT_EQ(v, 0.0f);
}

TEST(Tensor, ValuesAndIndexing) {
  Tensor t({2, 3}, {0, 1, 2, 3, 4, 5});
  EXPECT_EQ(t.at({1, 2}), 5.0f);
  EXPECT_EQ(t.at({0, 1}), 1.0f);
  EXPECT_THROW(t.at({2, 0}), std::out_of_range);
  EXPECT_THROW(t.at({0}), std::out_of_range);
  EXPECT_THROW(Tensor({2, 2}, {1, 2, 3}), std::invalid_argument);
}

TEST(Tensor, CopyIsDeepAndResizeReusesStorage) {
  Tensor a({4}, {1, 2, 3, 4});
  Tensor b = a;
  b[0] = 9;
  EXPECT_EQ(a[0], 1.0f);
  const float* before = b.data();
  b.resize({2});
  EXPECT_EQ(b.data(), before);
  EXPECT_EQ(b.shape(), (Shape{2}));
}

TEST(Tensor, ReshapeChecksCount) {
  Tensor a({2, 6});
  EXPECT_EQ(a.reshaped({3, 4}).shape(), (Shape{3, 4}));
  try {
    a.reshaped({5});
    FAIL();
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("[2, 6]"), std::string::npos);
  }
}

TEST(Tensor, RejectsNegativeAndOverflowingShapes) {
  EXPECT_THROW(Tensor({-1, 3}), std::invalid_argument);
  EXPECT_THROW(numel({1LL << 40, 1LL << 40}), std::invalid_argument);
}

TEST(Tensor, FormatsAligned) {
  Tensor t({2, 2}, {19, 25, 37, 43});
  EXPECT_EQ(format_tensor(t), "[[19, 25],\n [37, 43]]");
  Tensor u({3}, {1, -1, 0.5f});
  EXPECT_EQ(format_tensor(u), "[  1,  -1, 0.5]");
}

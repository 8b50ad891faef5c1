// DataLoader: every sample once per epoch, a seeded shuffle, partial last
// batches, scaling and normalisation.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <set>

#include "lenet/data.h"

namespace lenet {
namespace {

// `count` samples of 1x1x2 pixels that spell their own index (high byte, low byte).
Dataset indexed(int64_t count) {
  Dataset d;
  d.count = count;
  d.channels = 1;
  d.height = 1;
  d.width = 2;
  d.class_names = {"even", "odd"};
  for (int64_t i = 0; i < count; ++i) {
    d.pixels.push_back(static_cast<uint8_t>(i >> 8));
    d.pixels.push_back(static_cast<uint8_t>(i & 0xff));
    d.labels.push_back(static_cast<int32_t>(i % 2));
  }
  return d;
}

int64_t index_of(const Tensor& batch, int64_t row) {
  return std::lround(batch[row * 2] * 255.0f) * 256 + std::lround(batch[row * 2 + 1] * 255.0f);
}

// The sample indices of one epoch in the order served, and the batch sizes.
std::vector<int64_t> one_epoch(DataLoader& loader, int epoch, std::vector<int64_t>* sizes = nullptr) {
  loader.start_epoch(epoch);
  Tensor images;
  std::vector<int32_t> labels;
  std::vector<int64_t> order;
  while (loader.next(images, labels)) {
    EXPECT_EQ(images.size(0), static_cast<int64_t>(labels.size()));
    EXPECT_EQ(images.shape(), (Shape{images.size(0), 1, 1, 2}));
    if (sizes) sizes->push_back(images.size(0));
    for (int64_t r = 0; r < images.size(0); ++r) {
      const int64_t i = index_of(images, r);
      EXPECT_EQ(labels[static_cast<size_t>(r)], i % 2) << "label travels with its image";
      order.push_back(i);
    }
  }
  return order;
}

TEST(DataLoader, EverySampleOncePerEpochWithAPartialLastBatch) {
  const Dataset d = indexed(1003);
  DataLoader loader(d, 64, /*shuffle=*/true, /*seed=*/7);
  EXPECT_EQ(loader.batches_per_epoch(), 16);
  for (int epoch = 0; epoch < 3; ++epoch) {
    std::vector<int64_t> sizes;
    auto order = one_epoch(loader, epoch, &sizes);
    ASSERT_EQ(order.size(), 1003u);
    EXPECT_EQ(sizes.size(), 16u);
    EXPECT_EQ(sizes.back(), 1003 - 15 * 64);  // 43
    EXPECT_EQ(loader.position(), 1003);
    std::sort(order.begin(), order.end());
    for (int64_t i = 0; i < 1003; ++i) ASSERT_EQ(order[static_cast<size_t>(i)], i) << "epoch " << epoch;
  }
}

TEST(DataLoader, ShuffleDependsOnlyOnSeedAndEpoch) {
  const Dataset d = indexed(500);
  DataLoader a(d, 50, true, 42), b(d, 50, true, 42), other(d, 50, true, 43);
  const auto a0 = one_epoch(a, 0), a1 = one_epoch(a, 1);
  EXPECT_NE(a0, a1) << "each epoch gets a new order";
  EXPECT_EQ(one_epoch(b, 1), a1) << "same seed and epoch, same order, whatever came before";
  EXPECT_EQ(one_epoch(b, 0), a0);
  EXPECT_NE(one_epoch(other, 0), a0);
  // Shuffled for real: most samples leave their place.
  int64_t in_place = 0;
  for (size_t i = 0; i < a0.size(); ++i) in_place += a0[i] == static_cast<int64_t>(i);
  EXPECT_LT(in_place, 20);
  // Without shuffling, the data set's order.
  DataLoader plain(d, 64, false, 42);
  const auto p = one_epoch(plain, 3);
  for (size_t i = 0; i < p.size(); ++i) ASSERT_EQ(p[i], static_cast<int64_t>(i));
}

TEST(DataLoader, BatchLargerThanTheDataSetAndSeek) {
  const Dataset d = indexed(10);
  DataLoader loader(d, 256, false, 0);
  EXPECT_EQ(loader.batches_per_epoch(), 1);
  std::vector<int64_t> sizes;
  one_epoch(loader, 0, &sizes);
  EXPECT_EQ(sizes, std::vector<int64_t>{10});

  DataLoader small(d, 4, false, 0);
  small.start_epoch(0);
  small.seek(8);  // resume after two batches
  Tensor images;
  std::vector<int32_t> labels;
  ASSERT_TRUE(small.next(images, labels));
  EXPECT_EQ(images.size(0), 2);
  EXPECT_EQ(index_of(images, 0), 8);
  EXPECT_FALSE(small.next(images, labels));
}

// Data-parallel parts: concatenated in rank order they are the whole batch,
// sizes differ by at most one, and a part of a short last batch may be empty.
TEST(DataLoader, ShardsCutEveryBatchIntoContiguousParts) {
  const Dataset d = indexed(631);
  for (int parts : {2, 3}) {
    DataLoader whole(d, 63, true, 7);
    std::vector<int64_t> sizes;
    const std::vector<int64_t> expected = one_epoch(whole, 2, &sizes);
    std::vector<DataLoader> shards;
    for (int p = 0; p < parts; ++p) {
      shards.emplace_back(d, 63, true, 7);
      shards.back().shard(p, parts);
      shards.back().start_epoch(2);
    }
    std::vector<int64_t> served;
    Tensor images;
    std::vector<int32_t> labels;
    for (size_t b = 0; b < sizes.size(); ++b) {
      int64_t total = 0;
      for (int p = 0; p < parts; ++p) {
        ASSERT_TRUE(shards[static_cast<size_t>(p)].next(images, labels));
        const int64_t n = images.numel() / 2;
        EXPECT_EQ(n, sizes[b] / parts + (p < sizes[b] % parts ? 1 : 0)) << "batch " << b << " part " << p;
        EXPECT_EQ(shards[static_cast<size_t>(p)].batch_size(), sizes[b]);
        for (int64_t i = 0; i < n; ++i) served.push_back(index_of(images, i));
        total += n;
      }
      EXPECT_EQ(total, sizes[b]);
    }
    for (auto& s : shards) EXPECT_FALSE(s.next(images, labels));
    EXPECT_EQ(served, expected) << parts << " parts";
    EXPECT_EQ(sizes.back(), 1) << "the last batch has one image: the other parts are empty";
  }
  DataLoader loader(d, 8, false, 0);
  EXPECT_THROW(loader.shard(2, 2), std::invalid_argument);
  EXPECT_THROW(loader.shard(0, 0), std::invalid_argument);
}

TEST(DataLoader, ReusesBatchStorage) {
  const Dataset d = indexed(100);
  DataLoader loader(d, 32, true, 1);
  Tensor images;
  std::vector<int32_t> labels;
  loader.start_epoch(0);
  ASSERT_TRUE(loader.next(images, labels));
  const float* storage = images.data();
  while (loader.next(images, labels)) EXPECT_EQ(images.data(), storage);  // the partial batch too
}

TEST(DataLoader, ScalesAndNormalisesPixels) {
  const uint8_t px[] = {0, 51, 255};
  float out[3];
  pixels_to_floats(px, 3, {}, out);
  EXPECT_EQ(out[0], 0.0f);
  EXPECT_FLOAT_EQ(out[1], 0.2f);
  EXPECT_EQ(out[2], 1.0f);
  pixels_to_floats(px, 3, Normalization{{0.5f}, {0.25f}}, out);
  EXPECT_FLOAT_EQ(out[0], -2.0f);
  EXPECT_FLOAT_EQ(out[1], (0.2f - 0.5f) / 0.25f);
  EXPECT_FLOAT_EQ(out[2], 2.0f);

  Dataset d = indexed(3);
  d.pixels = {0, 255, 255, 0, 0, 0};
  const Normalization n = compute_normalization(d);
  // Pixels {0, 1, 1, 0, 0, 0}: mean 1/3, variance 1/3 − 1/9 = 2/9.
  EXPECT_FLOAT_EQ(n.mean.at(0), 1.0f / 3);
  EXPECT_FLOAT_EQ(n.std.at(0), std::sqrt(2.0f / 9));
  DataLoader loader(d, 8, false, 0, n);
  Tensor images;
  std::vector<int32_t> labels;
  loader.start_epoch(0);
  ASSERT_TRUE(loader.next(images, labels));
  EXPECT_FLOAT_EQ(images[1], (1.0f - n.mean[0]) / n.std[0]);
  EXPECT_FLOAT_EQ(images[0], (0.0f - n.mean[0]) / n.std[0]);
  // Normalised batch: mean 0, variance 1 over the whole set.
  double sum = 0, sq = 0;
  for (float v : images.span()) sum += v, sq += static_cast<double>(v) * v;
  EXPECT_NEAR(sum / 6, 0.0, 1e-6);
  EXPECT_NEAR(sq / 6, 1.0, 1e-5);
}

TEST(DataLoader, RejectsBadSettings) {
  const Dataset d = indexed(4);
  EXPECT_THROW(DataLoader(d, 0, true, 0), std::invalid_argument);
  EXPECT_THROW(DataLoader(d, 4, true, 0, Normalization{{0.0f}, {0.0f}}), std::invalid_argument);
  Dataset flat = indexed(4);
  flat.pixels.pop_back();
  EXPECT_THROW(DataLoader(flat, 4, true, 0), std::invalid_argument);
  Dataset constant = indexed(2);
  constant.pixels.assign(4, 7);
  EXPECT_THROW(compute_normalization(constant), std::invalid_argument);
}

}  // namespace
}  // namespace lenet

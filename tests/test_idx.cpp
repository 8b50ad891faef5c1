// The IDX reader on files the tests write (raw and gzip), the folder loader,
// and every way such a file can be broken.
#include <gtest/gtest.h>

#include <algorithm>

#include "data_test_util.h"
#include "lenet/data.h"

namespace lenet {
namespace {

using test::ScratchDir;

std::vector<uint8_t> ramp(size_t n) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<uint8_t>((i * 7 + 3) % 256);
  return v;
}

void expect_error(const std::function<void()>& f, const std::vector<std::string>& phrases) {
  try {
    f();
    ADD_FAILURE() << "no exception; expected one mentioning '" << phrases.front() << "'";
  } catch (const std::exception& e) {
    const std::string what = e.what();
    for (const auto& p : phrases) EXPECT_NE(what.find(p), std::string::npos) << "message: " << what << "\nlacks: " << p;
    EXPECT_EQ(what.find('\n'), std::string::npos) << "message should be one line: " << what;
  }
}

TEST(Idx, ReadsRawFiles) {
  ScratchDir dir;
  const auto pixels = ramp(5 * 3 * 4);
  test::write_bytes(dir / "im", test::idx_images(5, 3, 4, pixels));
  test::write_bytes(dir / "lb", test::idx_labels({3, 1, 4, 1, 5}));
  const Dataset d = read_idx(dir / "im", dir / "lb");
  EXPECT_EQ(d.count, 5);
  EXPECT_EQ(d.channels, 1);
  EXPECT_EQ(d.height, 3);
  EXPECT_EQ(d.width, 4);
  EXPECT_EQ(d.sample_size(), 12);
  EXPECT_EQ(d.pixels, pixels);
  EXPECT_EQ(d.labels, (std::vector<int32_t>{3, 1, 4, 1, 5}));
  // Class names run from 0 to the largest label.
  EXPECT_EQ(d.class_names, (std::vector<std::string>{"0", "1", "2", "3", "4", "5"}));
}

TEST(Idx, ReadsGzipFilesLikeRawOnes) {
  ScratchDir dir;
  const auto pixels = ramp(7 * 5 * 6);
  test::write_gzip(dir / "im.gz", test::idx_images(7, 5, 6, pixels));
  test::write_gzip(dir / "lb.gz", test::idx_labels({0, 1, 2, 3, 4, 5, 6}));
  const Dataset d = read_idx(dir / "im.gz", dir / "lb.gz");
  EXPECT_EQ(d.count, 7);
  EXPECT_EQ(d.height, 5);
  EXPECT_EQ(d.width, 6);
  EXPECT_EQ(d.pixels, pixels);
  EXPECT_EQ(d.labels[6], 6);
}

TEST(Idx, HeadKeepsTheFirstSamples) {
  ScratchDir dir;
  const auto pixels = ramp(4 * 2 * 2);
  test::write_bytes(dir / "im", test::idx_images(4, 2, 2, pixels));
  test::write_bytes(dir / "lb", test::idx_labels({9, 8, 7, 6}));
  const Dataset d = read_idx(dir / "im", dir / "lb");
  const Dataset h = d.head(3);
  EXPECT_EQ(h.count, 3);
  EXPECT_EQ(h.labels, (std::vector<int32_t>{9, 8, 7}));
  EXPECT_EQ(h.pixels, std::vector<uint8_t>(pixels.begin(), pixels.begin() + 12));
  EXPECT_EQ(h.class_names, d.class_names);
  EXPECT_EQ(d.head(100).count, 4);
}

TEST(IdxFolder, LoadsFourFilesAndNamesClasses) {
  ScratchDir dir;
  const auto mnist = dir / "my-mnist";
  const auto s = test::write_synthetic_idx(mnist, 40, 12, 8, 4, /*gz=*/false);
  EXPECT_TRUE(is_idx_folder(mnist));
  const DataSplit split = load_idx_folder(mnist);
  EXPECT_EQ(split.train.count, 40);
  EXPECT_EQ(split.test.count, 12);
  EXPECT_EQ(split.train.pixels, s.train_pixels);
  EXPECT_EQ(split.test.labels[5], s.test_labels[5]);
  // Label numbers as names, as many as the highest label says (4 here), the same in both splits.
  EXPECT_EQ(split.train.class_names, (std::vector<std::string>{"0", "1", "2", "3"}));
  EXPECT_EQ(split.train.class_names[3], "3");
  EXPECT_EQ(split.test.class_names, split.train.class_names);
  EXPECT_EQ(split.name, "my-mnist");

  // A folder named like Fashion-MNIST gets the garment names.
  const auto fashion = dir / "Fashion-copy";
  test::write_synthetic_idx(fashion, 20, 10, 8, 10, /*gz=*/true);
  const DataSplit f = load_idx_folder(fashion);
  EXPECT_EQ(f.name, "fashion-mnist");
  EXPECT_EQ(f.train.class_names, fashion_mnist_classes());
  EXPECT_EQ(f.train.class_names[9], "ankle boot");
}

TEST(IdxFolder, AcceptsTheDotNamingVariant) {
  ScratchDir dir;
  test::write_synthetic_idx(dir.path(), 8, 4, 4, 2, false);
  std::filesystem::rename(dir / "train-images-idx3-ubyte", dir / "train-images.idx3-ubyte");
  EXPECT_TRUE(is_idx_folder(dir.path()));
  EXPECT_EQ(load_dataset(dir.path()).train.count, 8);
}

TEST(IdxFolder, MissingFileIsNamed) {
  ScratchDir dir;
  test::write_synthetic_idx(dir.path(), 8, 4, 4, 2);
  std::filesystem::remove(dir / "t10k-labels-idx1-ubyte.gz");
  EXPECT_FALSE(is_idx_folder(dir.path()));
  expect_error([&] { load_idx_folder(dir.path()); }, {dir.path().string(), "t10k-labels-idx1-ubyte"});
  // load_dataset tells an incomplete IDX folder from an unrelated one.
  expect_error([&] { load_dataset(dir.path()); }, {"t10k-labels-idx1-ubyte"});
}

TEST(IdxFolder, LoadDatasetRejectsMissingAndUnrelatedFolders) {
  ScratchDir dir;
  expect_error([&] { load_dataset(dir / "nope"); }, {(dir / "nope").string(), "does not exist"});
  test::write_bytes(dir / "file.txt", "hello");
  expect_error([&] { load_dataset(dir / "file.txt"); }, {"file.txt", "not a folder"});
  std::filesystem::create_directories(dir / "empty");
  expect_error([&] { load_dataset(dir / "empty"); }, {"empty", "not a data set folder"});
}

TEST(IdxErrors, WrongMagic) {
  ScratchDir dir;
  test::write_bytes(dir / "im", test::idx_labels({1, 2}));  // a labels file where images belong
  test::write_bytes(dir / "lb", test::idx_labels({1, 2}));
  expect_error([&] { read_idx(dir / "im", dir / "lb"); },
               {(dir / "im").string(), "wrong IDX magic 0x00000801", "0x00000803"});
  test::write_bytes(dir / "im", test::idx_images(2, 2, 2, ramp(8)));
  test::write_bytes(dir / "lb", test::idx_images(2, 2, 2, ramp(8)));
  expect_error([&] { read_idx(dir / "im", dir / "lb"); }, {(dir / "lb").string(), "wrong IDX magic 0x00000803"});
  // Not an IDX file at all (text).
  test::write_bytes(dir / "im", "hello world, this is not IDX");
  expect_error([&] { read_idx(dir / "im", dir / "lb"); }, {"wrong IDX magic"});
}

TEST(IdxErrors, TruncatedRawAndGzipFiles) {
  ScratchDir dir;
  const std::string images = test::idx_images(10, 4, 4, ramp(160));
  test::write_bytes(dir / "lb", test::idx_labels(std::vector<uint8_t>(10, 1)));
  test::write_bytes(dir / "im", images.substr(0, images.size() - 30));
  expect_error([&] { read_idx(dir / "im", dir / "lb"); },
               {(dir / "im").string(), "truncated", "10x4x4 = 160 bytes", "holds 130"});
  test::write_bytes(dir / "im", images.substr(0, 6));
  expect_error([&] { read_idx(dir / "im", dir / "lb"); }, {"truncated"});
  test::write_bytes(dir / "im", images.substr(0, 2));
  expect_error([&] { read_idx(dir / "im", dir / "lb"); }, {"truncated", "too short"});

  // A gzip stream cut in the middle: zlib's error, reported with the file.
  test::write_gzip(dir / "full.gz", test::idx_images(200, 16, 16, ramp(200 * 256)));
  const std::string gz = test::read_bytes(dir / "full.gz");
  test::write_bytes(dir / "cut.gz", gz.substr(0, gz.size() / 2));
  test::write_bytes(dir / "lb200", test::idx_labels(std::vector<uint8_t>(200, 0)));
  expect_error([&] { read_idx(dir / "cut.gz", dir / "lb200"); }, {(dir / "cut.gz").string()});
}

TEST(IdxErrors, TrailingBytesAreRejected) {
  ScratchDir dir;
  test::write_bytes(dir / "im", test::idx_images(2, 2, 2, ramp(8)) + "xyz");
  test::write_bytes(dir / "lb", test::idx_labels({0, 1}));
  expect_error([&] { read_idx(dir / "im", dir / "lb"); }, {(dir / "im").string(), "unexpected bytes after"});
}

TEST(IdxErrors, ImageAndLabelCountsDiffer) {
  ScratchDir dir;
  test::write_bytes(dir / "im", test::idx_images(3, 2, 2, ramp(12)));
  test::write_bytes(dir / "lb", test::idx_labels({0, 1}));
  expect_error([&] { read_idx(dir / "im", dir / "lb"); }, {"holds 3 images", "holds 2 labels"});
}

TEST(IdxErrors, AbsurdSizesFailWithoutAllocatingThem) {
  ScratchDir dir;
  test::write_bytes(dir / "lb", test::idx_labels({0}));
  // 4 billion images of 65535x65535: refused from the header alone.
  test::write_bytes(dir / "im", test::idx_images(0xffffffffu, 65535, 65535, ramp(16)));
  expect_error([&] { read_idx(dir / "im", dir / "lb"); }, {(dir / "im").string(), "not a plausible IDX file"});
  // A billion 28x28 images claimed by a 100-byte file: read as far as it goes, then "truncated".
  test::write_bytes(dir / "im", test::idx_images(1'000'000'000u / 784 * 16, 28, 28, ramp(100)));
  expect_error([&] { read_idx(dir / "im", dir / "lb"); }, {"truncated", "holds 100"});
}

TEST(IdxErrors, FashionFolderWithTooManyClasses) {
  ScratchDir dir;
  const auto fashion = dir / "fashion";
  test::write_synthetic_idx(fashion, 24, 12, 4, 12);
  expect_error([&] { load_idx_folder(fashion); }, {"Fashion-MNIST has 10 classes", "11"});
}

TEST(FashionMnist, DebianPackageLoads) {
  if (!test::have_fashion_mnist()) GTEST_SKIP() << "dataset-fashion-mnist is not installed";
  const DataSplit d = load_dataset(test::fashion_mnist_dir());
  EXPECT_EQ(d.name, "fashion-mnist");
  EXPECT_EQ(d.train.count, 60000);
  EXPECT_EQ(d.test.count, 10000);
  EXPECT_EQ(d.train.input_shape(), (Shape{1, 28, 28}));
  EXPECT_EQ(d.train.class_names, fashion_mnist_classes());
  // Fashion-MNIST is balanced: 6,000 training and 1,000 test images per class.
  std::vector<int> per_class(10, 0);
  for (int32_t l : d.train.labels) ++per_class[static_cast<size_t>(l)];
  EXPECT_EQ(per_class, std::vector<int>(10, 6000));
  std::fill(per_class.begin(), per_class.end(), 0);
  for (int32_t l : d.test.labels) ++per_class[static_cast<size_t>(l)];
  EXPECT_EQ(per_class, std::vector<int>(10, 1000));
  // The first training image is an ankle boot (label 9), as every tutorial shows.
  EXPECT_EQ(d.train.labels[0], 9);
}

}  // namespace
}  // namespace lenet

// Data augmentation (lenet/augment.h): the text of --augment, each operation
// on small hand-computed images, the per-image seeding, and the DataLoader
// path (augmented before normalising, independent of the batch size).
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <numeric>
#include <set>

#include "data_test_util.h"
#include "lenet/augment.h"
#include "lenet/checkpoint.h"
#include "lenet/data.h"
#include "lenet/gallery.h"
#include "lenet/image.h"
#include "lenet/train.h"

namespace lenet {
namespace {

namespace fs = std::filesystem;

std::vector<float> iota_image(int n, float first = 1.0f) {
  std::vector<float> v(static_cast<size_t>(n));
  std::iota(v.begin(), v.end(), first);
  return v;
}

void expect_refused(const std::string& text, const std::string& phrase) {
  try {
    parse_augmentation(text);
    ADD_FAILURE() << "'" << text << "' parsed";
  } catch (const std::invalid_argument& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("--augment '" + text + "'"), std::string::npos) << what;
    EXPECT_NE(what.find(phrase), std::string::npos) << what;
    EXPECT_EQ(what.find('\n'), std::string::npos) << "one line: " << what;
  }
}

TEST(AugmentText, ParsesTorchvisionStyleItems) {
  const Augmentation a = parse_augmentation(" crop:2, flip ,rotate:10,brightness:0.2");
  ASSERT_EQ(a.ops.size(), 4u);
  EXPECT_EQ(a.ops[0].kind, AugmentOp::Kind::crop);
  EXPECT_EQ(a.ops[0].amount, 2);
  EXPECT_EQ(a.ops[1].kind, AugmentOp::Kind::flip);
  EXPECT_EQ(a.ops[1].amount, 0.5);  // RandomHorizontalFlip's default p
  EXPECT_EQ(a.ops[2].kind, AugmentOp::Kind::rotate);
  EXPECT_EQ(a.ops[2].amount, 10);
  EXPECT_EQ(a.ops[3].kind, AugmentOp::Kind::brightness);
  EXPECT_DOUBLE_EQ(a.ops[3].amount, 0.2);
  EXPECT_EQ(a.text(), "crop:2,flip:0.5,rotate:10,brightness:0.2");
  EXPECT_EQ(parse_augmentation(a.text()).text(), a.text());
  EXPECT_TRUE(parse_augmentation("").empty());
  EXPECT_TRUE(parse_augmentation("none").empty());
  EXPECT_EQ(parse_augmentation("flip:0.25").ops.at(0).amount, 0.25);
}

TEST(AugmentText, BadTextIsOneLineNamingTheItem) {
  expect_refused("blur", "unknown operation 'blur'");
  expect_refused("crop", "crop takes a padding");
  expect_refused("crop:0", "crop takes a padding");
  expect_refused("crop:1.5", "crop takes a padding");
  expect_refused("flip:2", "flip takes a probability");
  expect_refused("rotate:abc", "'rotate:abc' has no number");
  expect_refused("rotate:-5", "rotate takes");
  expect_refused("brightness", "brightness takes");
  expect_refused("crop:2,,flip", "an empty item");
  expect_refused("flip,", "an empty item");
}

TEST(AugmentOps, CropWithZeroPaddingByHand) {
  // 3x3 image 1..9, padding 1: the 5x5 padded image cropped at (top, left).
  const std::vector<float> in = iota_image(9);
  std::vector<float> out(9);
  crop_padded(in.data(), out.data(), 1, 3, 3, 1, 0, 0);
  EXPECT_EQ(out, (std::vector<float>{0, 0, 0, 0, 1, 2, 0, 4, 5}));
  crop_padded(in.data(), out.data(), 1, 3, 3, 1, 2, 1);
  EXPECT_EQ(out, (std::vector<float>{4, 5, 6, 7, 8, 9, 0, 0, 0}));
  crop_padded(in.data(), out.data(), 1, 3, 3, 1, 1, 1);  // the centre: the image itself
  EXPECT_EQ(out, in);
  crop_padded(in.data(), out.data(), 1, 3, 3, 3, 0, 6);  // padding as large as the image: all zeros
  EXPECT_EQ(out, std::vector<float>(9, 0.0f));
  // Two channels move together.
  const std::vector<float> two = iota_image(8);  // 2 channels of 2x2
  std::vector<float> moved(8);
  crop_padded(two.data(), moved.data(), 2, 2, 2, 1, 2, 0);  // up one row, right one column
  EXPECT_EQ(moved, (std::vector<float>{0, 3, 0, 0, 0, 7, 0, 0}));
}

TEST(AugmentOps, HorizontalFlipByHand) {
  std::vector<float> img = iota_image(12);  // 2 channels of 2x3
  flip_horizontal(img.data(), 2, 2, 3);
  EXPECT_EQ(img, (std::vector<float>{3, 2, 1, 6, 5, 4, 9, 8, 7, 12, 11, 10}));
}

TEST(AugmentOps, RotationByRightAnglesIsExact) {
  // Counter-clockwise, as torchvision's rotate(angle > 0).
  const std::vector<float> in = iota_image(9);
  std::vector<float> out(9);
  rotate_nearest(in.data(), out.data(), 1, 3, 3, 90);
  EXPECT_EQ(out, (std::vector<float>{3, 6, 9, 2, 5, 8, 1, 4, 7}));
  rotate_nearest(in.data(), out.data(), 1, 3, 3, -90);
  EXPECT_EQ(out, (std::vector<float>{7, 4, 1, 8, 5, 2, 9, 6, 3}));
  rotate_nearest(in.data(), out.data(), 1, 3, 3, 180);
  EXPECT_EQ(out, (std::vector<float>{9, 8, 7, 6, 5, 4, 3, 2, 1}));
  rotate_nearest(in.data(), out.data(), 1, 3, 3, 0);
  EXPECT_EQ(out, in);
  // An even size turns about the point between the centre pixels.
  const std::vector<float> four = iota_image(16);
  std::vector<float> turned(16);
  rotate_nearest(four.data(), turned.data(), 1, 4, 4, 90);
  EXPECT_EQ(turned, (std::vector<float>{4, 8, 12, 16, 3, 7, 11, 15, 2, 6, 10, 14, 1, 5, 9, 13}));
  // A non-square image loses what turns outside and fills 0: 2x4 by 90 degrees.
  const std::vector<float> wide = iota_image(8);  // rows 1 2 3 4 / 5 6 7 8
  std::vector<float> w(8);
  rotate_nearest(wide.data(), w.data(), 1, 2, 4, 90);
  // Centre (x 1.5, y 0.5): output (y, x) takes source (x' = 1.5 - (y - 0.5), y' = 0.5 + (x - 1.5)), rounded half to
  // even. y=0: x'=2; y'=-1,0,1,2 -> 0, 3, 7, 0. y=1: x'=1; -> 0, 2, 6, 0.
  EXPECT_EQ(w, (std::vector<float>{0, 3, 7, 0, 0, 2, 6, 0}));
}

TEST(AugmentOps, BrightnessScalesAndClamps) {
  std::vector<float> v = {0.0f, 0.2f, 0.6f, 0.9f};
  scale_brightness(v.data(), 4, 1.5f);
  EXPECT_EQ(v[0], 0.0f);
  EXPECT_FLOAT_EQ(v[1], 0.3f);
  EXPECT_FLOAT_EQ(v[2], 0.9f);
  EXPECT_EQ(v[3], 1.0f);
}

// Values in (0, 1] that differ everywhere, for images of h x w.
std::vector<float> ramp(int c, int h, int w) {
  std::vector<float> v(static_cast<size_t>(c) * h * w);
  for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>(i + 1) / static_cast<float>(v.size());
  return v;
}

std::vector<float> augmented(const Augmentation& a, uint64_t seed, int epoch, int64_t index, int c = 1, int h = 8,
                             int w = 8) {
  std::vector<float> img = ramp(c, h, w), scratch;
  Rng rng(augment_seed(seed, epoch, index));
  augment_image(a, img.data(), c, h, w, rng, scratch);
  return img;
}

TEST(AugmentImage, DeterministicPerSeedEpochAndImage) {
  const Augmentation a = parse_augmentation("crop:2,flip,rotate:10,brightness:0.2");
  EXPECT_EQ(augmented(a, 7, 3, 11), augmented(a, 7, 3, 11));
  // Other seeds, epochs or images draw otherwise: among 20 of each, several differ.
  std::set<std::vector<float>> by_seed, by_epoch, by_image;
  for (int k = 0; k < 20; ++k) {
    by_seed.insert(augmented(a, static_cast<uint64_t>(k), 3, 11));
    by_epoch.insert(augmented(a, 7, k, 11));
    by_image.insert(augmented(a, 7, 3, k));
  }
  EXPECT_GT(by_seed.size(), 15u);
  EXPECT_GT(by_epoch.size(), 15u);
  EXPECT_GT(by_image.size(), 15u);
}

TEST(AugmentImage, EachOperationDrawsAsTorchvisionDoes) {
  // crop:1 of an 8x8 image: every one of the 9 offsets turns up, and the result is always one of them.
  const Augmentation crop = parse_augmentation("crop:1");
  const std::vector<float> in = ramp(1, 8, 8);
  std::set<std::vector<float>> crops;
  for (int i = 0; i < 400; ++i) {
    const std::vector<float> out = augmented(crop, 1, 0, i);
    bool known = false;
    std::vector<float> want(64);
    for (int top = 0; top <= 2 && !known; ++top)
      for (int left = 0; left <= 2 && !known; ++left) {
        crop_padded(in.data(), want.data(), 1, 8, 8, 1, top, left);
        known = want == out;
      }
    EXPECT_TRUE(known) << "image " << i << " is no crop of the padded image";
    crops.insert(out);
  }
  EXPECT_EQ(crops.size(), 9u);
  // flip (p 0.5): about half of 2000 images are flipped, the rest untouched.
  const Augmentation flip = parse_augmentation("flip");
  std::vector<float> mirrored = in;
  flip_horizontal(mirrored.data(), 1, 8, 8);
  int flipped = 0;
  for (int i = 0; i < 2000; ++i) {
    const std::vector<float> out = augmented(flip, 1, 0, i);
    ASSERT_TRUE(out == in || out == mirrored);
    flipped += out == mirrored;
  }
  EXPECT_GT(flipped, 900);
  EXPECT_LT(flipped, 1100);
  // brightness:0.5: a factor in [0.5, 1.5] for the whole image.
  const Augmentation bright = parse_augmentation("brightness:0.5");
  double lo = 10, hi = 0;
  for (int i = 0; i < 500; ++i) {
    const std::vector<float> out = augmented(bright, 1, 0, i);
    const double f = out[0] / in[0];
    for (size_t p = 0; p < out.size(); ++p) EXPECT_FLOAT_EQ(out[p], std::min(1.0f, in[p] * static_cast<float>(f)));
    lo = std::min(lo, f), hi = std::max(hi, f);
  }
  EXPECT_GE(lo, 0.5 - 1e-6);
  EXPECT_LE(hi, 1.5 + 1e-6);
  EXPECT_LT(lo, 0.6);
  EXPECT_GT(hi, 1.4);
}

Dataset ramps(int64_t count, int channels) {
  Dataset d;
  d.count = count;
  d.channels = channels;
  d.height = d.width = 6;
  d.class_names = {"a", "b"};
  for (int64_t i = 0; i < count; ++i) {
    for (int64_t p = 0; p < d.sample_size(); ++p) d.pixels.push_back(static_cast<uint8_t>((i * 37 + p * 11) % 256));
    d.labels.push_back(static_cast<int32_t>(i % 2));
  }
  return d;
}

// Every image of one epoch by its data-set index.
std::map<int64_t, std::vector<float>> epoch_images(DataLoader& loader, const Dataset& d, int epoch,
                                                   std::vector<int64_t>* order = nullptr) {
  loader.start_epoch(epoch);
  Tensor images;
  std::vector<int32_t> labels;
  std::map<int64_t, std::vector<float>> out;
  // Unshuffled: the k-th image served is image k.
  int64_t k = 0;
  while (loader.next(images, labels))
    for (int64_t r = 0; r < images.size(0); ++r, ++k) {
      const float* x = images.data() + r * d.sample_size();
      out[k] = std::vector<float>(x, x + d.sample_size());
      if (order) order->push_back(k);
    }
  return out;
}

TEST(AugmentLoader, AugmentsInZeroToOneThenNormalisesPerChannel) {
  const Dataset d = ramps(10, 3);
  const Augmentation a = parse_augmentation("crop:2,flip,rotate:30,brightness:0.3");
  Normalization norm;
  norm.mean = {0.1f, 0.5f, 0.9f};
  norm.std = {0.5f, 0.25f, 2.0f};
  DataLoader loader(d, 4, /*shuffle=*/false, /*seed=*/3, norm, a);
  const auto got = epoch_images(loader, d, 2);
  ASSERT_EQ(got.size(), 10u);
  const int64_t plane = 36;
  std::vector<float> scratch;
  for (int64_t i = 0; i < 10; ++i) {
    std::vector<float> want(static_cast<size_t>(d.sample_size()));
    for (int64_t p = 0; p < d.sample_size(); ++p) want[p] = d.pixels[i * d.sample_size() + p] / 255.0f;
    Rng rng(augment_seed(3, 2, i));
    augment_image(a, want.data(), 3, 6, 6, rng, scratch);
    for (int c = 0; c < 3; ++c)
      for (int64_t p = 0; p < plane; ++p) {
        const float v = (want[c * plane + p] - norm.mean[c]) * (1.0f / norm.std[c]);
        ASSERT_EQ(got.at(i)[c * plane + p], v) << "image " << i << " channel " << c << " pixel " << p;
      }
  }
  // A padded (black) pixel is 0 before normalising: channel c then reads −mean_c / std_c.
  bool saw_padding = false;
  for (const auto& [i, x] : got)
    for (int c = 0; c < 3; ++c) saw_padding = saw_padding || x[c * plane] == -norm.mean[c] / norm.std[c];
  EXPECT_TRUE(saw_padding);
}

TEST(AugmentLoader, SameImagesWhateverTheBatchSizeAndShuffle) {
  const Dataset d = ramps(23, 1);
  const Augmentation a = parse_augmentation("crop:1,flip,rotate:15");
  DataLoader one(d, 1, false, 9, {}, a), seven(d, 7, false, 9, {}, a);
  EXPECT_EQ(epoch_images(one, d, 4), epoch_images(seven, d, 4));
  // Another epoch draws anew.
  EXPECT_NE(epoch_images(one, d, 4), epoch_images(one, d, 5));
  // Without augmentation the loader serves the scaled pixels as before.
  DataLoader plain(d, 5, false, 9);
  const auto x = epoch_images(plain, d, 0);
  for (int64_t p = 0; p < d.sample_size(); ++p) EXPECT_EQ(x.at(4)[p], d.pixels[4 * d.sample_size() + p] / 255.0f);
}

TEST(AugmentPreview, ShowsTheLoadersPixels) {
  const Dataset d = ramps(5, 3);
  const Augmentation a = parse_augmentation("crop:2,flip,brightness:0.4");
  const auto items = augment_preview_items(d, a, 4, 3, 2);
  ASSERT_EQ(items.size(), 9u);  // 3 images, each the original and 2 epochs
  EXPECT_EQ(items[0].prediction, "a");
  EXPECT_EQ(items[1].prediction, "epoch 1");
  EXPECT_EQ(items[0].image.pixels, dataset_image(d, 0).pixels);
  DataLoader loader(d, 5, false, 4, {}, a);
  for (int e = 0; e < 2; ++e) {
    const auto served = epoch_images(loader, d, e);
    for (int i = 0; i < 3; ++i) {
      const Image& shown = items[static_cast<size_t>(i * 3 + 1 + e)].image;
      ASSERT_EQ(shown.channels, 3);
      for (int64_t p = 0; p < 36; ++p)
        for (int c = 0; c < 3; ++c)
          ASSERT_EQ(shown.pixels[static_cast<size_t>(p * 3 + c)], std::lround(served.at(i)[c * 36 + p] * 255.0f))
              << "image " << i << " epoch " << e;
    }
  }
  EXPECT_THROW(augment_preview_items(d, a, 0, 0, 2), std::invalid_argument);
}

// ---- the command line ----

using test::quoted;
using test::run_cli;

TEST(AugmentCli, PreviewWritesAGridOfTheExpectedSize) {
  test::ScratchDir dir;
  test::write_synthetic_idx(dir / "idx", 40, 20, 12, 4);
  const auto r = run_cli("augment-preview --data " + quoted(dir / "idx") +
                         " --augment crop:2,flip --images 4 --copies 7 --out " + quoted(dir / "grid.png"));
  ASSERT_EQ(r.code, 0) << r.err;
  const Image grid = read_image(dir / "grid.png");
  // 4 rows of 8 cells of 12-pixel images scaled 9x (112 / 12), one caption line each, under a title and a legend.
  const int scale = 112 / 12, cell_h = kGalleryLineHeight + 4 + 12 * scale, cell_w = 12 * scale;
  EXPECT_EQ(grid.height, 2 * kGalleryMargin + 2 * kGalleryLineHeight + kGalleryGap + 4 * cell_h + 3 * kGalleryGap);
  EXPECT_EQ(grid.width, 2 * kGalleryMargin + 8 * cell_w + 7 * kGalleryGap);
  EXPECT_EQ(grid.channels, 3);
}

TEST(AugmentCli, BadInputIsOneLineAndWritesNothing) {
  test::ScratchDir dir;
  test::write_synthetic_idx(dir / "idx", 40, 20, 12, 4);
  const fs::path out = dir / "grid.png";
  test::expect_error_line(run_cli("augment-preview --data " + quoted(dir / "nope") + " --augment flip --out " +
                                  quoted(out)),
                          {(dir / "nope").string(), "does not exist"}, "missing data folder");
  test::expect_error_line(run_cli("augment-preview --data " + quoted(dir / "idx") + " --augment crop:two --out " +
                                  quoted(out)),
                          {"--augment 'crop:two'", "no number"}, "bad spec");
  test::expect_error_line(run_cli("augment-preview --data " + quoted(dir / "idx") + " --augment flip --out " +
                                  quoted(dir / "no" / "g.png")),
                          {"does not exist"}, "missing output folder");
  EXPECT_FALSE(fs::exists(out));
  // lenet train refuses a bad spec before it makes the run folder.
  test::expect_error_line(run_cli("train --data " + quoted(dir / "idx") + " --augment 'flip,spin:3' --out " +
                                  quoted(dir / "run")),
                          {"--augment 'flip,spin:3'", "unknown operation 'spin'"}, "train with a bad spec");
  EXPECT_FALSE(fs::exists(dir / "run" / "last.safetensors"));
}

TEST(AugmentCli, TrainRecordsItAndResumeKeepsIt) {
  test::ScratchDir dir;
  test::write_synthetic_idx(dir / "idx", 64, 20, 12, 4);
  const std::string common = "train --data " + quoted(dir / "idx") +
                             " --arch 'conv 4 k3 p1, relu, maxpool 2, flatten, linear' --batch-size 16 --threads 1";
  const auto r = run_cli(common + " --epochs 2 --augment crop:2,flip --out " + quoted(dir / "run"));
  ASSERT_EQ(r.code, 0) << r.err;
  const LoadedModel m = load_checkpoint(dir / "run" / "best.safetensors");
  EXPECT_EQ(m.metadata.at("augment"), "crop:2,flip:0.5");
  const std::string report = test::read_bytes(dir / "run" / "report.html");
  EXPECT_NE(report.find("augmentation"), std::string::npos);
  EXPECT_NE(report.find("crop:2,flip:0.5"), std::string::npos);
  // The test split is never augmented: eval of the best model repeats the run's test loss exactly.
  const auto ev = run_cli("eval --model " + quoted(dir / "run" / "best.safetensors") + " --data " +
                          quoted(dir / "idx"));
  ASSERT_EQ(ev.code, 0) << ev.err;
  char loss[32];
  std::snprintf(loss, sizeof loss, "loss %.4f", m.info.metrics.at("test_loss"));
  EXPECT_NE(ev.out.find(loss), std::string::npos) << ev.out;
  // A resumed run keeps its augmentation; another is refused.
  test::expect_error_line(run_cli("train --resume " + quoted(dir / "run") + " --epochs 3 --augment flip"),
                          {"--augment cannot change when resuming"}, "resume with --augment");
  const auto more = run_cli("train --resume " + quoted(dir / "run") + " --epochs 3");
  EXPECT_EQ(more.code, 0) << more.err;
  EXPECT_EQ(read_resume_state(dir / "run" / "last.safetensors").options.augment, "crop:2,flip");
}

}  // namespace
}  // namespace lenet

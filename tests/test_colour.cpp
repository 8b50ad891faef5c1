// Colour models end to end: image folders read as RGB (--channels 3), a data
// set whose classes differ only by hue (learnt in colour, not in gray), the
// RGB round trip through training, checkpoint, ONNX (ONNX Runtime agrees),
// predict, eval and the C API, per-channel --normalize, and the clear line a
// colour model gets where gray data is all there is (and the other way round).
#include <gtest/gtest.h>

#include <array>
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>

#include "data_test_util.h"
#include "lenet/c_api.h"
#include "lenet/checkpoint.h"
#include "lenet/image.h"
#include "lenet/onnx.h"
#include "lenet/train.h"

namespace lenet {
namespace colour_test {

namespace fs = std::filesystem;
using test::quoted;
using test::run_cli;
using test::ScratchDir;

const char* const kHues[] = {"hue000", "hue090", "hue180", "hue270"};
constexpr int kClasses = 4, kSide = 8;
const char* kArch = "conv 8 k3 p1, relu, maxpool 2, flatten, linear";

// An RGB image whose luma (0.299 R + 0.587 G + 0.114 B) is a random texture
// with the same distribution in every class, and whose chroma points in the
// class's direction: the classes differ only by hue.
Image hue_image(int k, std::mt19937& gen) {
  // Two directions of zero luma: u1 = (1, −0.299/0.587, 0), u2 = (0, −0.114/0.587, 1).
  const double a = 2 * 3.14159265358979 * k / kClasses;
  const double amp = 45 * (0.8 + 0.4 * std::uniform_real_distribution<double>(0, 1)(gen));
  const double r = amp * std::cos(a), b = amp * std::sin(a);
  const double g = -(0.299 * r + 0.114 * b) / 0.587;
  std::uniform_int_distribution<int> luma(70, 180);
  Image img(kSide, kSide, 3);
  for (int y = 0; y < kSide; ++y)
    for (int x = 0; x < kSide; ++x) {
      const double l = luma(gen);
      const double rgb[3] = {l + r, l + g, l + b};
      for (int c = 0; c < 3; ++c) img.at(y, x, c) = static_cast<uint8_t>(std::lround(std::clamp(rgb[c], 0.0, 255.0)));
    }
  return img;
}

// DIR/train/<hue>/*.png and DIR/test/<hue>/*.png.
void write_hue_set(const fs::path& dir, int train_per_class, int test_per_class) {
  std::mt19937 gen(2024);
  for (const char* split : {"train", "test"}) {
    const int n = std::string(split) == "train" ? train_per_class : test_per_class;
    for (int k = 0; k < kClasses; ++k) {
      fs::create_directories(dir / split / kHues[k]);
      for (int i = 0; i < n; ++i)
        test::write_bytes(dir / split / kHues[k] / ("img" + std::to_string(i) + ".png"), encode_png(hue_image(k, gen)));
    }
  }
}

TrainOptions hue_options(const fs::path& out) {
  TrainOptions o;
  o.arch = kArch;
  o.epochs = 8;
  o.batch_size = 32;
  o.lr = 0.01f;
  o.seed = 3;
  o.threads = 1;
  o.out_dir = out;
  return o;
}

DataSplit load_hues(const fs::path& dir, int channels) {
  DataOptions options;
  options.channels = channels;
  return load_dataset(dir, options);
}

TEST(Colour, ImageFoldersReadAsPlanarRgb) {
  ScratchDir dir;
  Image img(2, 3, 4);  // RGBA: alpha is dropped
  for (size_t i = 0; i < img.pixels.size(); ++i) img.pixels[i] = static_cast<uint8_t>(10 * i + 1);
  const Image gray_src(2, 3, 1, 77);
  for (const char* cls : {"a", "b"}) {
    fs::create_directories(dir / "d" / "train" / cls);
    test::write_bytes(dir / "d" / "train" / cls / "0.png", encode_png(img));
    test::write_bytes(dir / "d" / "train" / cls / "1.png", encode_png(gray_src));
  }
  DataOptions options;
  options.channels = 3;
  options.test_split = 0.5;
  const DataSplit d = load_dataset(dir / "d", options);
  EXPECT_EQ(d.train.input_shape(), (Shape{3, 2, 3}));
  EXPECT_FALSE(d.preprocessing.grayscale);
  // The pixels of a file, wherever the split put it.
  auto pixels_of = [&](const std::string& tail) {
    for (const Dataset* part : {&d.train, &d.test})
      for (int64_t i = 0; i < part->count; ++i)
        if (part->files[static_cast<size_t>(i)].ends_with(tail))
          return std::vector<uint8_t>(part->pixels.begin() + i * 18, part->pixels.begin() + (i + 1) * 18);
    ADD_FAILURE() << "no sample from " << tail;
    return std::vector<uint8_t>();
  };
  // Planar R, G, B planes of the interleaved pixels, alpha dropped.
  const std::vector<uint8_t> rgba = pixels_of("a/0.png");
  ASSERT_EQ(rgba.size(), 18u);
  for (int c = 0; c < 3; ++c)
    for (int p = 0; p < 6; ++p) EXPECT_EQ(rgba[c * 6 + p], img.pixels[p * 4 + c]) << c << " " << p;
  // A gray image is replicated into the three planes.
  EXPECT_EQ(pixels_of("b/1.png"), std::vector<uint8_t>(18, 77));
  // Anything but 1 or 3 channels is refused naming the value.
  options.channels = 2;
  try {
    load_dataset(dir / "d", options);
    ADD_FAILURE() << "2 channels loaded";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("channels 2"), std::string::npos) << e.what();
  }
}

TEST(Colour, PerChannelNormalisationIsExact) {
  Dataset d;
  d.count = 2, d.channels = 3, d.height = 1, d.width = 2;
  d.class_names = {"a", "b"};
  d.labels = {0, 1};
  // Image 0: R 0 255, G 51 51, B 255 255; image 1: R 255 0, G 102 0, B 0 0.
  d.pixels = {0, 255, 51, 51, 255, 255, 255, 0, 102, 0, 0, 0};
  const Normalization n = compute_normalization(d);
  ASSERT_EQ(n.mean.size(), 3u);
  EXPECT_FLOAT_EQ(n.mean[0], 0.5f);
  EXPECT_FLOAT_EQ(n.std[0], 0.5f);
  EXPECT_FLOAT_EQ(n.mean[1], 0.2f);  // (51 + 51 + 102 + 0) / 4 / 255
  EXPECT_FLOAT_EQ(n.std[1], std::sqrt((0.04f + 0.04f + 0.16f) / 4 - 0.04f));
  EXPECT_FLOAT_EQ(n.mean[2], 0.5f);
  DataLoader loader(d, 2, false, 0, n);
  Tensor x;
  std::vector<int32_t> labels;
  ASSERT_TRUE(loader.next(x, labels));
  EXPECT_FLOAT_EQ(x[0], -1.0f);                         // R of image 0, pixel 0
  EXPECT_FLOAT_EQ(x[2], (0.2f - 0.2f) / n.std[1]);      // G
  EXPECT_FLOAT_EQ(x[6 + 4], (0.0f - 0.5f) / n.std[2]);  // B of image 1
  // Per-channel statistics of a gray data set stay one value (the files of before).
  d.channels = 1, d.width = 6;
  EXPECT_EQ(compute_normalization(d).mean.size(), 1u);
  // A normalisation that does not fit the data is refused.
  Normalization two;
  two.mean = {0.1f, 0.2f};
  two.std = {1.0f, 1.0f};
  d.channels = 3, d.width = 2;
  EXPECT_THROW(DataLoader(d, 2, false, 0, two), std::invalid_argument);
}

TEST(Colour, HueAloneIsLearntInColourAndNotInGray) {
  ScratchDir dir;
  write_hue_set(dir / "hues", 60, 40);
  const DataSplit colour = load_hues(dir / "hues", 3), gray = load_hues(dir / "hues", 1);
  // The gray images carry no class: every class has the same mean luma (to a gray level).
  std::array<double, kClasses> luma{};
  for (int64_t i = 0; i < gray.train.count; ++i) {
    double s = 0;
    for (int64_t p = 0; p < gray.train.sample_size(); ++p) s += gray.train.pixels[i * gray.train.sample_size() + p];
    luma[static_cast<size_t>(gray.train.labels[i])] += s / static_cast<double>(gray.train.sample_size()) / 60;
  }
  for (int k = 1; k < kClasses; ++k) EXPECT_NEAR(luma[static_cast<size_t>(k)], luma[0], 3.0) << kHues[k];

  const auto rgb = train(colour, hue_options(dir / "rgb"));
  const auto mono = train(gray, hue_options(dir / "gray"));
  RecordProperty("rgb_test_acc", std::to_string(rgb.back().test_acc));
  RecordProperty("gray_test_acc", std::to_string(mono.back().test_acc));
  EXPECT_GE(rgb.back().test_acc, 0.95) << "3 channels see the hue";
  // Chance is 0.25; 160 test images give it a standard deviation of 0.034.
  EXPECT_LE(mono.back().test_acc, 0.42) << "1 channel sees only the luma, which is the same for every class";
  EXPECT_EQ(load_checkpoint(dir / "rgb" / "best.safetensors").info.input_shape, (Shape{3, kSide, kSide}));
}

// ---- the command line: train, checkpoint, ONNX in ONNX Runtime, predict, eval, the C API ----

void write_f32(const fs::path& path, std::span<const float> v) {
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(v.data()), static_cast<std::streamsize>(v.size_bytes()));
}
std::vector<float> read_f32(const fs::path& path) {
  const std::string bytes = test::read_bytes(path);
  std::vector<float> v(bytes.size() / sizeof(float));
  std::memcpy(v.data(), bytes.data(), v.size() * sizeof(float));
  return v;
}

int argmax(const float* p, int k) { return static_cast<int>(std::max_element(p, p + k) - p); }

class ColourCli : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new ScratchDir("lenet-colour");
    write_hue_set(*dir_ / "hues", 40, 10);
    const auto r = run_cli("train --data " + quoted(*dir_ / "hues") + " --channels 3 --normalize --arch '" + kArch +
                           "' --epochs 8 --batch-size 32 --lr 0.01 --threads 1 --out " + quoted(*dir_ / "run"));
    // A failure here must fail every test: an ASSERT in SetUpTestSuite would
    // only mark them skipped, which CTest counts as a pass.
    if (r.code != 0) setup_error_ = "training the shared run failed: " + r.err;
  }
  void SetUp() override {
    if (!setup_error_.empty()) FAIL() << setup_error_;
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }
  static ScratchDir* dir_;
  static std::string setup_error_;
  fs::path best() const { return *dir_ / "run" / "best.safetensors"; }
  fs::path hues() const { return *dir_ / "hues"; }
};
ScratchDir* ColourCli::dir_ = nullptr;
std::string ColourCli::setup_error_;

TEST_F(ColourCli, CheckpointAndReportRecordRgb) {
  const LoadedModel m = load_checkpoint(best());
  EXPECT_EQ(m.info.input_shape, (Shape{3, kSide, kSide}));
  EXPECT_FALSE(m.info.preprocessing.grayscale);
  // --normalize: the training set's statistics per channel.
  DataOptions options;
  options.channels = 3;
  const Normalization want = compute_normalization(load_dataset(hues(), options).train);
  EXPECT_EQ(m.info.preprocessing.normalization.mean, want.mean);
  EXPECT_EQ(m.info.preprocessing.normalization.std, want.std);
  ASSERT_EQ(want.mean.size(), 3u);
  const auto pre = nlohmann::json::parse(m.metadata.at("preprocessing"));
  EXPECT_TRUE(pre["normalization"]["mean"].is_array()) << pre.dump();
  EXPECT_GE(m.info.metrics.at("test_acc"), 0.95);
  // The first conv takes three channels.
  EXPECT_EQ(m.model.parameters()[0]->shape, (Shape{8, 3, 3, 3}));
  const std::string report = test::read_bytes(*dir_ / "run" / "report.html");
  EXPECT_NE(report.find("colour (RGB)"), std::string::npos);
  EXPECT_NE(report.find("per channel"), std::string::npos);
  // The gallery is in colour: some pixel of it is neither white nor gray.
  const Image gallery = read_image(*dir_ / "run" / "predictions.png");
  ASSERT_EQ(gallery.channels, 3);
  bool coloured = false;
  for (size_t i = 0; i + 2 < gallery.pixels.size() && !coloured; i += 3)
    coloured = std::abs(gallery.pixels[i] - gallery.pixels[i + 2]) > 40;
  EXPECT_TRUE(coloured);
}

TEST_F(ColourCli, OnnxRuntimePredictEvalAndTheCApiAgree) {
  // Every test image as the model sees it.
  std::vector<fs::path> files;
  for (const auto& e : fs::recursive_directory_iterator(hues() / "test"))
    if (e.is_regular_file()) files.push_back(e.path());
  std::sort(files.begin(), files.end());
  const LoadedModel m = load_checkpoint(best());
  const int64_t sample = 3 * kSide * kSide;
  Tensor x({static_cast<int64_t>(files.size()), 3, kSide, kSide});
  for (size_t i = 0; i < files.size(); ++i) {
    const Tensor one = image_file_to_input(files[i], m.info.preprocessing, m.info.input_shape);
    std::copy(one.data(), one.data() + sample, x.data() + static_cast<int64_t>(i) * sample);
  }
  LoadedModel ours = load_checkpoint(best());
  ours.model.eval();
  const Tensor logits = ours.model.forward(x);
  std::vector<int> classes;
  for (size_t i = 0; i < files.size(); ++i) classes.push_back(argmax(logits.data() + i * kClasses, kClasses));

  // best.onnx: [N, 3, H, W] in, and ONNX Runtime picks the same classes.
  const fs::path onnx = *dir_ / "run" / "best.onnx";
  const LoadedModel imported = import_onnx(onnx);
  EXPECT_EQ(imported.info.input_shape, (Shape{3, kSide, kSide}));
  EXPECT_EQ(imported.info.preprocessing.normalization.mean, m.info.preprocessing.normalization.mean);
  if (!std::getenv("LENET_SKIP_ONNXRUNTIME")) {
    const fs::path run_js = fs::path(LENET_SOURCE_DIR) / "tests" / "onnxruntime" / "run.js";
    ASSERT_TRUE(fs::exists(run_js.parent_path() / "node_modules" / "onnxruntime-node"))
        << "run scripts/setup.sh (or set LENET_SKIP_ONNXRUNTIME=1)";
    write_f32(*dir_ / "x.f32", x.span());
    const std::string cmd = "node " + quoted(run_js) + " " + quoted(onnx) + " " + quoted(*dir_ / "x.f32") + " " +
                            std::to_string(files.size()) + "x3x8x8 " + quoted(*dir_ / "y.f32") + " 2>&1";
    ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
    const std::vector<float> theirs = read_f32(*dir_ / "y.f32");
    ASSERT_EQ(theirs.size(), files.size() * kClasses);
    for (size_t i = 0; i < files.size(); ++i)
      EXPECT_EQ(argmax(theirs.data() + i * kClasses, kClasses), classes[i]) << files[i];
  }

  // lenet predict --json: the same class per file, and the accuracy line.
  const auto r = run_cli("predict --model " + quoted(best()) + " " + quoted(hues() / "test") + " --json");
  ASSERT_EQ(r.code, 0) << r.err;
  std::istringstream lines(r.out);
  std::string line;
  size_t n = 0, correct = 0;
  while (std::getline(lines, line)) {
    const auto j = nlohmann::json::parse(line);
    const auto at = std::find(files.begin(), files.end(), fs::path(j["file"].get<std::string>()));
    ASSERT_NE(at, files.end()) << line;
    EXPECT_EQ(j["index"].get<int>(), classes[static_cast<size_t>(at - files.begin())]) << line;
    correct += j["correct"].get<bool>();
    ++n;
  }
  EXPECT_EQ(n, files.size());
  EXPECT_GE(static_cast<double>(correct) / static_cast<double>(n), 0.95);

  // lenet eval reads the folder in colour, as the model asks.
  const auto ev = run_cli("eval --model " + quoted(best()) + " --data " + quoted(hues()));
  ASSERT_EQ(ev.code, 0) << ev.err;
  char acc[32];
  std::snprintf(acc, sizeof acc, "accuracy %.4f", static_cast<double>(correct) / static_cast<double>(n));
  EXPECT_NE(ev.out.find(acc), std::string::npos) << ev.out;

  // The C API: three channels, and the same probabilities from a file and from its pixels.
  char err[256];
  lenet_model* c = lenet_model_load(best().c_str(), err, sizeof err);
  ASSERT_NE(c, nullptr) << err;
  int ch = 0, h = 0, w = 0;
  ASSERT_EQ(lenet_model_input_shape(c, &ch, &h, &w), LENET_OK);
  EXPECT_EQ(ch, 3);
  EXPECT_EQ(h, kSide);
  EXPECT_EQ(w, kSide);
  const Image img = read_image(files[3]);
  std::vector<float> from_file(kClasses), from_image(kClasses), from_u8(kClasses);
  ASSERT_EQ(lenet_predict_file(c, files[3].c_str(), from_file.data(), err, sizeof err), LENET_OK) << err;
  ASSERT_EQ(lenet_predict_image(c, img.pixels.data(), img.height, img.width, img.channels, from_image.data(), err,
                                sizeof err),
            LENET_OK)
      << err;
  std::vector<uint8_t> planar(static_cast<size_t>(sample));
  for (int p = 0; p < kSide * kSide; ++p)
    for (int k = 0; k < 3; ++k) planar[static_cast<size_t>(k * kSide * kSide + p)] = img.pixels[p * 3 + k];
  ASSERT_EQ(lenet_predict_u8(c, planar.data(), 1, from_u8.data(), err, sizeof err), LENET_OK) << err;
  EXPECT_EQ(from_file, from_image);
  EXPECT_EQ(from_file, from_u8);
  EXPECT_EQ(argmax(from_file.data(), kClasses), classes[3]);
  lenet_model_free(c);
}

TEST_F(ColourCli, ColourAndGrayMismatchesAreOneClearLine) {
  ScratchDir dir;
  const test::SyntheticIdx idx = test::write_synthetic_idx(dir / "idx", 40, 20, kSide, 4);
  (void)idx;
  // A colour model on an IDX (grayscale) set.
  test::expect_error_line(run_cli("eval --model " + quoted(best()) + " --data " + quoted(dir / "idx")),
                          {"IDX images are grayscale (1 channel) but 3 channels"}, "eval of a colour model on IDX");
  // --channels 3 on IDX data, or a channel count that is neither.
  test::expect_error_line(run_cli("train --data " + quoted(dir / "idx") + " --channels 3 --out " + quoted(dir / "r1")),
                          {"IDX images are grayscale"}, "train --channels 3 on IDX");
  test::expect_error_line(run_cli("train --data " + quoted(hues()) + " --channels 2 --out " + quoted(dir / "r2")),
                          {"--channels must be 1 (grayscale) or 3 (RGB), got 2"}, "--channels 2");
  // --init from a colour model for gray images, and from a gray model for colour ones.
  const auto gray = run_cli("train --data " + quoted(hues()) + " --arch '" + kArch + "' --epochs 1 --threads 1 --out " +
                            quoted(dir / "gray"));
  ASSERT_EQ(gray.code, 0) << gray.err;
  test::expect_error_line(run_cli("train --data " + quoted(hues()) + " --init " + quoted(best()) +
                                  " --epochs 1 --out " + quoted(dir / "r3")),
                          {"takes 3 (RGB) input channel(s)", "these images have 1 (grayscale)", "--channels 3"},
                          "--init of a colour model, gray data");
  test::expect_error_line(run_cli("train --data " + quoted(hues()) + " --channels 3 --init " +
                                  quoted(dir / "gray" / "best.safetensors") + " --epochs 1 --out " +
                                  quoted(dir / "r4")),
                          {"takes 1 (grayscale) input channel(s)", "these images have 3 (RGB)", "--channels 1"},
                          "--init of a gray model, colour data");
  for (const char* run : {"r1", "r2", "r3", "r4"}) EXPECT_FALSE(fs::exists(dir / run / "best.safetensors")) << run;
  // A gray image given to the colour model is replicated, as ImageFolder's convert("RGB").
  Image g(kSide, kSide, 1, 120);
  test::write_bytes(dir / "gray.png", encode_png(g));
  const auto p = run_cli("predict --model " + quoted(best()) + " " + quoted(dir / "gray.png"));
  EXPECT_EQ(p.code, 0) << p.err;
}

}  // namespace colour_test
}  // namespace lenet

// The C API (include/lenet/c_api.h) against the C++ one and the CLI: the same
// probabilities as predict_images and `lenet predict --json`, images laid out
// as documented, several models on several threads, and an error code with
// one sentence for every bad input.
#include "lenet/c_api.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "image_test_util.h"
#include "lenet/checkpoint.h"
#include "lenet/image.h"
#include "lenet/isa.h"
#include "lenet/parallel.h"
#include "lenet/predict.h"
#include "lenet/random.h"
#include "lenet/version.h"
#ifdef LENET_CLI
#include <onnx/onnx_pb.h>

#include "cli_util.h"
#include "lenet/onnx.h"
#endif

namespace lenet {
namespace {

namespace fs = std::filesystem;
using imgtest::TempDir;

constexpr int kClasses = 10;

// A model of `arch` on [channels, 28, 20], seeded, with a normalisation that
// is not the identity (so the C API must apply it), saved as a checkpoint.
ModelInfo save_model(const fs::path& path, const std::string& arch, int channels, uint64_t seed) {
  Rng rng(seed);
  Sequential model = build_model(arch, {channels, 28, 20}, kClasses, &rng);
  ModelInfo info;
  info.arch = model.spec();
  info.input_shape = {channels, 28, 20};
  for (int c = 0; c < kClasses; ++c) info.class_names.push_back("class " + std::to_string(c));
  info.preprocessing.grayscale = channels == 1;
  info.preprocessing.normalization = Normalization{{0.3f}, {0.4f}};
  save_checkpoint(path, model, info);
  return info;
}

std::vector<uint8_t> random_pixels(size_t n, uint64_t seed) {
  Rng rng(seed);
  std::vector<uint8_t> p(n);
  for (auto& v : p) v = static_cast<uint8_t>(rng.uniform(0.0f, 255.99f));
  return p;
}

// Full probability rows from predict_images (top k = every class, mapped back by index).
std::vector<float> cpp_probabilities(const fs::path& model_path, const std::vector<Image>& images) {
  LoadedModel m = load_model(model_path);
  const std::vector<Prediction> preds = predict_images(m.model, m.info, images, kClasses);
  std::vector<float> out(images.size() * kClasses);
  for (size_t i = 0; i < preds.size(); ++i)
    for (const ClassScore& s : preds[i].top) out[i * kClasses + static_cast<size_t>(s.index)] = s.probability;
  return out;
}

struct ModelHandle {
  lenet_model* m = nullptr;
  explicit ModelHandle(const fs::path& path) {
    char err[256];
    m = lenet_model_load(path.c_str(), err, sizeof err);
    EXPECT_NE(m, nullptr) << err;
  }
  ~ModelHandle() { lenet_model_free(m); }
  ModelHandle(const ModelHandle&) = delete;
  ModelHandle& operator=(const ModelHandle&) = delete;
};

class CApi : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir("c-api");
    save_model(gray(), "lenet-relu", 1, 11);
    save_model(rgb(), "lenet", 3, 12);
  }
  static void TearDownTestSuite() { delete dir_; }
  static fs::path gray() { return dir_->path() / "gray.safetensors"; }
  static fs::path rgb() { return dir_->path() / "rgb.safetensors"; }
  static fs::path file(const std::string& name) { return dir_->path() / name; }
  static TempDir* dir_;
};
TempDir* CApi::dir_ = nullptr;

// One sentence on one line, naming `what`.
void expect_message(const char* err, const std::string& what) {
  const std::string e = err;
  EXPECT_FALSE(e.empty());
  EXPECT_EQ(e.find('\n'), std::string::npos) << e;
  EXPECT_NE(e.find(what), std::string::npos) << "'" << e << "' should name " << what;
}

TEST(CApiVersion, IsTheProjectVersion) {
  EXPECT_STREQ(lenet_version(), LENET_VERSION_STRING);
  EXPECT_EQ(std::to_string(LENET_VERSION_MAJOR) + "." + std::to_string(LENET_VERSION_MINOR) + "." +
                std::to_string(LENET_VERSION_PATCH),
            lenet_version());
  ASSERT_NE(lenet_kernels(), nullptr);
  EXPECT_EQ(std::string(lenet_kernels()), active_isa());
}

TEST_F(CApi, DescribesTheModel) {
  ModelHandle h(gray());
  int c = 0, hh = 0, w = 0;
  EXPECT_EQ(lenet_model_input_shape(h.m, &c, &hh, &w), LENET_OK);
  EXPECT_EQ(c, 1);
  EXPECT_EQ(hh, 28);
  EXPECT_EQ(w, 20);
  EXPECT_EQ(lenet_model_input_shape(h.m, nullptr, &hh, nullptr), LENET_OK);  // unwanted parts may be NULL
  EXPECT_EQ(lenet_model_num_classes(h.m), kClasses);
  EXPECT_STREQ(lenet_model_class_name(h.m, 0), "class 0");
  EXPECT_STREQ(lenet_model_class_name(h.m, 9), "class 9");
  EXPECT_EQ(lenet_model_class_name(h.m, 10), nullptr);
  EXPECT_EQ(lenet_model_class_name(h.m, -1), nullptr);
  EXPECT_EQ(lenet_model_class_name(nullptr, 0), nullptr);
  EXPECT_EQ(lenet_model_num_classes(nullptr), -1);
  EXPECT_EQ(lenet_model_input_shape(nullptr, &c, &hh, &w), LENET_ERROR_ARGUMENT);
  ModelHandle rgb_model(rgb());
  EXPECT_EQ(lenet_model_input_shape(rgb_model.m, &c, nullptr, nullptr), LENET_OK);
  EXPECT_EQ(c, 3);
}

// 300 images: two batches (256 + 44), as lenet predict runs them.
TEST_F(CApi, PredictU8EqualsPredictImages) {
  constexpr int n = 300;
  const std::vector<uint8_t> pixels = random_pixels(size_t{n} * 28 * 20, 5);
  std::vector<Image> images(n, Image(28, 20, 1));
  for (int i = 0; i < n; ++i) std::memcpy(images[i].pixels.data(), pixels.data() + i * 560, 560);
  ModelHandle h(gray());
  std::vector<float> probs(size_t{n} * kClasses, -1.0f);
  char err[256] = "untouched";
  ASSERT_EQ(lenet_predict_u8(h.m, pixels.data(), n, probs.data(), err, sizeof err), LENET_OK) << err;
  EXPECT_STREQ(err, "");  // cleared on success
  EXPECT_EQ(probs, cpp_probabilities(gray(), images));
  for (int i = 0; i < n; ++i) {
    double sum = 0;
    for (int k = 0; k < kClasses; ++k) sum += probs[i * kClasses + k];
    EXPECT_NEAR(sum, 1.0, 1e-5);
  }
}

// Several channels: each image is [C][H][W] (channel-major), unlike lenet::Image's interleaved pixels.
TEST_F(CApi, PredictU8TakesChannelMajorImages) {
  constexpr int n = 5, plane = 28 * 20;
  const std::vector<uint8_t> planar = random_pixels(size_t{n} * 3 * plane, 6);
  std::vector<Image> images(n, Image(28, 20, 3));
  for (int i = 0; i < n; ++i)
    for (int p = 0; p < plane; ++p)
      for (int c = 0; c < 3; ++c) images[i].pixels[p * 3 + c] = planar[(i * 3 + c) * plane + p];
  ModelHandle h(rgb());
  std::vector<float> probs(n * kClasses);
  ASSERT_EQ(lenet_predict_u8(h.m, planar.data(), n, probs.data(), nullptr, 0), LENET_OK);
  EXPECT_EQ(probs, cpp_probabilities(rgb(), images));
}

TEST_F(CApi, PredictFloatAppliesNoPreprocessing) {
  constexpr int n = 7;
  const std::vector<uint8_t> pixels = random_pixels(n * 560, 7);
  std::vector<float> x(pixels.size());
  pixels_to_floats(pixels.data(), static_cast<int64_t>(pixels.size()), Normalization{{0.3f}, {0.4f}}, x.data());
  ModelHandle h(gray());
  std::vector<float> from_u8(n * kClasses), from_float(n * kClasses);
  ASSERT_EQ(lenet_predict_u8(h.m, pixels.data(), n, from_u8.data(), nullptr, 0), LENET_OK);
  ASSERT_EQ(lenet_predict_float(h.m, x.data(), n, from_float.data(), nullptr, 0), LENET_OK);
  EXPECT_EQ(from_u8, from_float);
}

// A file, a decoded colour image and its gray bytes give the same numbers (one image, one batch).
TEST_F(CApi, PredictFileAndImageEqualPredictU8) {
  const Image colour = imgtest::class_image(3, 1, 28, 20, true);
  imgtest::save_image(file("colour.png"), colour);
  const Image gray_image = to_grayscale(colour);
  ModelHandle h(gray());
  std::vector<float> a(kClasses), b(kClasses), c(kClasses);
  char err[256];
  ASSERT_EQ(lenet_predict_file(h.m, file("colour.png").c_str(), a.data(), err, sizeof err), LENET_OK) << err;
  ASSERT_EQ(lenet_predict_image(h.m, colour.pixels.data(), 28, 20, 3, b.data(), err, sizeof err), LENET_OK) << err;
  ASSERT_EQ(lenet_predict_u8(h.m, gray_image.pixels.data(), 1, c.data(), err, sizeof err), LENET_OK) << err;
  EXPECT_EQ(a, b);
  EXPECT_EQ(a, c);
  EXPECT_EQ(a, cpp_probabilities(gray(), {gray_image}));
}

TEST(CApiTopK, BestFirstTiesToTheLowerIndex) {
  const float p[5] = {0.1f, 0.3f, 0.05f, 0.3f, 0.25f};
  int idx[5] = {-1, -1, -1, -1, -1};
  float s[5] = {};
  ASSERT_EQ(lenet_top_k(p, 5, 3, idx, s, nullptr, 0), LENET_OK);
  EXPECT_EQ(idx[0], 1);
  EXPECT_EQ(idx[1], 3);
  EXPECT_EQ(idx[2], 4);
  EXPECT_EQ(idx[3], -1);  // only k written
  EXPECT_EQ(s[0], 0.3f);
  EXPECT_EQ(s[2], 0.25f);
  ASSERT_EQ(lenet_top_k(p, 5, 99, idx, nullptr, nullptr, 0), LENET_OK);  // k clamped; scores optional
  EXPECT_EQ(idx[4], 2);
}

TEST(CApiThreads, SetThreads) {
  EXPECT_EQ(lenet_set_threads(2), LENET_OK);
  EXPECT_EQ(num_threads(), 2);
  EXPECT_EQ(lenet_set_threads(-1), LENET_ERROR_ARGUMENT);
  EXPECT_EQ(num_threads(), 2);  // unchanged
  EXPECT_EQ(lenet_set_threads(0), LENET_OK);
}

// Two models on four threads (each thread its own model, and two threads
// sharing one): every call gives the single-threaded answer.
TEST_F(CApi, SeveralModelsOnSeveralThreads) {
  constexpr int n = 20, rounds = 15;
  const std::vector<uint8_t> gray_px = random_pixels(n * 560, 8), rgb_px = random_pixels(n * 3 * 560, 9);
  std::vector<float> want_gray(n * kClasses), want_rgb(n * kClasses);
  {
    ModelHandle g(gray()), r(rgb());
    ASSERT_EQ(lenet_predict_u8(g.m, gray_px.data(), n, want_gray.data(), nullptr, 0), LENET_OK);
    ASSERT_EQ(lenet_predict_u8(r.m, rgb_px.data(), n, want_rgb.data(), nullptr, 0), LENET_OK);
  }
  ModelHandle shared(gray());
  std::atomic<int> mismatches{0}, failures{0};
  auto worker = [&](bool is_rgb, lenet_model* given) {
    char err[256];
    lenet_model* own = given ? given : lenet_model_load((is_rgb ? rgb() : gray()).c_str(), err, sizeof err);
    if (!own) return void(++failures);
    std::vector<float> p(n * kClasses);
    for (int r = 0; r < rounds; ++r) {
      // Batches of 1 (direct engine) and of n (blocked engine) alternate.
      const int count = r % 2 ? n : 1;
      if (lenet_predict_u8(own, is_rgb ? rgb_px.data() : gray_px.data(), count, p.data(), err, sizeof err)) {
        ++failures;
        continue;
      }
      const std::vector<float>& want = is_rgb ? want_rgb : want_gray;
      if (count == n && p != want) ++mismatches;
    }
    if (!given) lenet_model_free(own);
  };
  std::vector<std::thread> threads;
  threads.emplace_back(worker, false, nullptr);
  threads.emplace_back(worker, true, nullptr);
  threads.emplace_back(worker, false, shared.m);
  threads.emplace_back(worker, false, shared.m);
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(mismatches.load(), 0);
}

// ---- bad input: every function, every failure, an error code and one sentence ----

TEST_F(CApi, LoadFailures) {
  char err[256];
  auto load_fails = [&](const char* path, const std::string& what, int line) {
    SCOPED_TRACE("from line " + std::to_string(line));
    std::strcpy(err, "");
    lenet_model* m = lenet_model_load(path, err, sizeof err);
    EXPECT_EQ(m, nullptr);
    lenet_model_free(m);
    expect_message(err, what);
  };
  load_fails(nullptr, "path is NULL", __LINE__);
  load_fails("", "path is empty", __LINE__);
  load_fails(file("missing.safetensors").c_str(), "missing.safetensors", __LINE__);
  // Truncated: the first half of a real checkpoint.
  const std::string bytes = read_file(gray());
  imgtest::write_bytes(file("half.safetensors"), bytes.substr(0, bytes.size() / 2));
  load_fails(file("half.safetensors").c_str(), "half.safetensors", __LINE__);
  imgtest::write_bytes(file("short.safetensors"), bytes.substr(0, 5));
  load_fails(file("short.safetensors").c_str(), "short.safetensors", __LINE__);
  // Garbage bytes, and an image where a model should be (under both extensions).
  std::string garbage;
  for (uint8_t b : random_pixels(4096, 10)) garbage.push_back(static_cast<char>(b));
  imgtest::write_bytes(file("garbage.safetensors"), garbage);
  load_fails(file("garbage.safetensors").c_str(), "garbage.safetensors", __LINE__);
  imgtest::write_bytes(file("garbage.onnx"), garbage);
  load_fails(file("garbage.onnx").c_str(), "garbage.onnx", __LINE__);
  imgtest::write_bytes(file("image.safetensors"), encode_png(Image(28, 20, 1)));
  load_fails(file("image.safetensors").c_str(), "image.safetensors", __LINE__);
  imgtest::write_bytes(file("image.onnx"), encode_png(Image(28, 20, 1)));
  load_fails(file("image.onnx").c_str(), "image.onnx", __LINE__);
  imgtest::write_bytes(file("empty.safetensors"), "");
  load_fails(file("empty.safetensors").c_str(), "empty.safetensors", __LINE__);
  load_fails(dir_->path().c_str(), dir_->path().string(), __LINE__);  // a folder
}

// The error buffer: NULL, size 0 and small sizes are all fine.
TEST_F(CApi, ErrorBufferMayBeNullOrSmall) {
  const std::string missing = file("missing.safetensors").string();
  EXPECT_EQ(lenet_model_load(missing.c_str(), nullptr, 0), nullptr);
  EXPECT_EQ(lenet_model_load(missing.c_str(), nullptr, 100), nullptr);
  char one[1] = {'x'};
  EXPECT_EQ(lenet_model_load(missing.c_str(), one, 0), nullptr);
  EXPECT_EQ(one[0], 'x');  // size 0: not written
  EXPECT_EQ(lenet_model_load(missing.c_str(), one, 1), nullptr);
  EXPECT_EQ(one[0], '\0');
  char eight[8];
  std::memset(eight, 'x', sizeof eight);
  EXPECT_EQ(lenet_model_load(missing.c_str(), eight, sizeof eight), nullptr);
  EXPECT_EQ(std::strlen(eight), 7u);
  EXPECT_EQ(std::string(eight), missing.substr(0, 7));
}

TEST_F(CApi, PredictU8Failures) {
  ModelHandle h(gray());
  const std::vector<uint8_t> px(560);
  std::vector<float> p(kClasses);
  char err[256];
  EXPECT_EQ(lenet_predict_u8(nullptr, px.data(), 1, p.data(), err, sizeof err), LENET_ERROR_ARGUMENT);
  expect_message(err, "model is NULL");
  EXPECT_EQ(lenet_predict_u8(h.m, nullptr, 1, p.data(), err, sizeof err), LENET_ERROR_ARGUMENT);
  expect_message(err, "pixels is NULL");
  EXPECT_EQ(lenet_predict_u8(h.m, px.data(), 1, nullptr, err, sizeof err), LENET_ERROR_ARGUMENT);
  expect_message(err, "probabilities is NULL");
  EXPECT_EQ(lenet_predict_u8(h.m, px.data(), 0, p.data(), err, sizeof err), LENET_ERROR_ARGUMENT);
  expect_message(err, "count must be positive, got 0");
  EXPECT_EQ(lenet_predict_u8(h.m, px.data(), -3, p.data(), err, sizeof err), LENET_ERROR_ARGUMENT);
  expect_message(err, "got -3");
  EXPECT_EQ(lenet_predict_u8(h.m, px.data(), -3, p.data(), nullptr, 0), LENET_ERROR_ARGUMENT);
  // The model still works after the refusals.
  EXPECT_EQ(lenet_predict_u8(h.m, px.data(), 1, p.data(), err, sizeof err), LENET_OK);
}

TEST_F(CApi, PredictFloatFailures) {
  ModelHandle h(gray());
  const std::vector<float> x(560);
  std::vector<float> p(kClasses);
  char err[256];
  EXPECT_EQ(lenet_predict_float(nullptr, x.data(), 1, p.data(), err, sizeof err), LENET_ERROR_ARGUMENT);
  expect_message(err, "model is NULL");
  EXPECT_EQ(lenet_predict_float(h.m, nullptr, 1, p.data(), err, sizeof err), LENET_ERROR_ARGUMENT);
  expect_message(err, "inputs is NULL");
  EXPECT_EQ(lenet_predict_float(h.m, x.data(), 1, nullptr, err, sizeof err), LENET_ERROR_ARGUMENT);
  expect_message(err, "probabilities is NULL");
  EXPECT_EQ(lenet_predict_float(h.m, x.data(), 0, p.data(), err, sizeof err), LENET_ERROR_ARGUMENT);
  expect_message(err, "count must be positive");
}

TEST_F(CApi, PredictFileFailures) {
  ModelHandle h(gray());
  std::vector<float> p(kClasses);
  char err[256];
  auto file_fails = [&](const fs::path& path, int status, const std::string& what, int line) {
    SCOPED_TRACE("from line " + std::to_string(line));
    EXPECT_EQ(lenet_predict_file(h.m, path.c_str(), p.data(), err, sizeof err), status);
    expect_message(err, what);
  };
  file_fails(file("missing.png"), LENET_ERROR_FILE, "missing.png", __LINE__);
  const std::string png = encode_png(imgtest::class_image(1, 1, 28, 20));
  imgtest::write_bytes(file("truncated.png"), png.substr(0, png.size() / 2));
  file_fails(file("truncated.png"), LENET_ERROR_FILE, "truncated.png", __LINE__);
  std::string garbage;
  for (uint8_t b : random_pixels(1000, 11)) garbage.push_back(static_cast<char>(b));
  imgtest::write_bytes(file("garbage.png"), garbage);
  file_fails(file("garbage.png"), LENET_ERROR_FILE, "garbage.png", __LINE__);
  // A model where an image should be.
  file_fails(gray(), LENET_ERROR_FILE, "gray.safetensors", __LINE__);
  imgtest::save_image(file("wide.png"), Image(28, 21, 1));
  file_fails(file("wide.png"), LENET_ERROR_FILE, "wide.png: image is 28x21 (HxW) but the model takes 28x20", __LINE__);
  EXPECT_EQ(lenet_predict_file(nullptr, file("wide.png").c_str(), p.data(), err, sizeof err), LENET_ERROR_ARGUMENT);
  expect_message(err, "model is NULL");
  EXPECT_EQ(lenet_predict_file(h.m, nullptr, p.data(), err, sizeof err), LENET_ERROR_ARGUMENT);
  expect_message(err, "image_path is NULL");
  EXPECT_EQ(lenet_predict_file(h.m, "", p.data(), err, sizeof err), LENET_ERROR_ARGUMENT);
  expect_message(err, "image_path is empty");
  imgtest::save_image(file("ok.png"), Image(28, 20, 1));
  EXPECT_EQ(lenet_predict_file(h.m, file("ok.png").c_str(), nullptr, err, sizeof err), LENET_ERROR_ARGUMENT);
  expect_message(err, "probabilities is NULL");
}

TEST_F(CApi, PredictImageFailures) {
  ModelHandle h(gray());
  const std::vector<uint8_t> px(28 * 21 * 4);
  std::vector<float> p(kClasses);
  char err[256];
  EXPECT_EQ(lenet_predict_image(h.m, px.data(), 28, 21, 1, p.data(), err, sizeof err), LENET_ERROR_ARGUMENT);
  expect_message(err, "image is 28x21 (HxW) but the model takes 28x20");
  EXPECT_EQ(lenet_predict_image(h.m, px.data(), 28, 20, 0, p.data(), err, sizeof err), LENET_ERROR_ARGUMENT);
  expect_message(err, "channels must be 1 to 4, got 0");
  EXPECT_EQ(lenet_predict_image(h.m, px.data(), 28, 20, 5, p.data(), err, sizeof err), LENET_ERROR_ARGUMENT);
  expect_message(err, "got 5");
  EXPECT_EQ(lenet_predict_image(h.m, px.data(), 0, 20, 1, p.data(), err, sizeof err), LENET_ERROR_ARGUMENT);
  expect_message(err, "image size 0x20");
  EXPECT_EQ(lenet_predict_image(h.m, px.data(), -28, 20, 1, p.data(), err, sizeof err), LENET_ERROR_ARGUMENT);
  expect_message(err, "too large");
  EXPECT_EQ(lenet_predict_image(h.m, px.data(), 1 << 20, 1 << 20, 1, p.data(), err, sizeof err), LENET_ERROR_ARGUMENT);
  expect_message(err, "too large");
  EXPECT_EQ(lenet_predict_image(nullptr, px.data(), 28, 20, 1, p.data(), err, sizeof err), LENET_ERROR_ARGUMENT);
  expect_message(err, "model is NULL");
  EXPECT_EQ(lenet_predict_image(h.m, nullptr, 28, 20, 1, p.data(), err, sizeof err), LENET_ERROR_ARGUMENT);
  expect_message(err, "pixels is NULL");
  EXPECT_EQ(lenet_predict_image(h.m, px.data(), 28, 20, 1, nullptr, err, sizeof err), LENET_ERROR_ARGUMENT);
  expect_message(err, "probabilities is NULL");
}

TEST(CApiTopK, Failures) {
  const float p[3] = {0.2f, 0.5f, 0.3f};
  int idx[3];
  char err[256];
  EXPECT_EQ(lenet_top_k(nullptr, 3, 1, idx, nullptr, err, sizeof err), LENET_ERROR_ARGUMENT);
  expect_message(err, "probabilities is NULL");
  EXPECT_EQ(lenet_top_k(p, 3, 1, nullptr, nullptr, err, sizeof err), LENET_ERROR_ARGUMENT);
  expect_message(err, "indices is NULL");
  EXPECT_EQ(lenet_top_k(p, 0, 1, idx, nullptr, err, sizeof err), LENET_ERROR_ARGUMENT);
  expect_message(err, "num_classes must be positive, got 0");
  EXPECT_EQ(lenet_top_k(p, 3, 0, idx, nullptr, err, sizeof err), LENET_ERROR_ARGUMENT);
  expect_message(err, "k must be positive, got 0");
  EXPECT_EQ(lenet_top_k(p, 3, -2, idx, nullptr, err, sizeof err), LENET_ERROR_ARGUMENT);
  expect_message(err, "got -2");
}

TEST(CApiFree, NullIsANoOp) { lenet_model_free(nullptr); }

#ifdef LENET_CLI
// The numbers `lenet predict --json` prints, for one file (batch 1) and for
// several (one batch): JSON carries floats exactly (shortest round trip).
TEST_F(CApi, ProbabilitiesEqualLenetPredictJson) {
  std::vector<fs::path> files;
  std::string args;
  for (int i = 0; i < 6; ++i) {
    files.push_back(file("cli" + std::to_string(i) + (i % 2 ? ".jpg" : ".png")));
    imgtest::save_image(files.back(), imgtest::class_image(i, 2, 28, 20, i % 3 == 0));
    args += " " + test::quoted(files.back());
  }
  ModelHandle h(gray());
  auto expect_same = [&](const std::string& json_lines, const std::vector<float>& probs, int line) {
    SCOPED_TRACE("from line " + std::to_string(line));
    std::istringstream in(json_lines);
    int i = 0;
    for (std::string l; std::getline(in, l); ++i) {
      const auto j = nlohmann::json::parse(l);
      ASSERT_EQ(j.at("top_k").size(), static_cast<size_t>(kClasses));
      int idx[kClasses];
      ASSERT_EQ(lenet_top_k(probs.data() + i * kClasses, kClasses, kClasses, idx, nullptr, nullptr, 0), LENET_OK);
      EXPECT_EQ(j.at("index").get<int>(), idx[0]);
      EXPECT_EQ(j.at("label").get<std::string>(), lenet_model_class_name(h.m, idx[0]));
      for (const auto& s : j.at("top_k"))
        EXPECT_EQ(s.at("probability").get<float>(), probs[i * kClasses + s.at("index").get<size_t>()]);
    }
    EXPECT_EQ(i * kClasses, static_cast<int>(probs.size()));
  };
  // One file per run: lenet_predict_file.
  for (const fs::path& f : files) {
    const auto r = test::run_cli("predict --json --top-k 10 --model " + test::quoted(gray()) + " " + test::quoted(f));
    ASSERT_EQ(r.code, 0) << r.err;
    std::vector<float> p(kClasses);
    ASSERT_EQ(lenet_predict_file(h.m, f.c_str(), p.data(), nullptr, 0), LENET_OK);
    expect_same(r.out, p, __LINE__);
  }
  // All in one run: one batch, the decoded gray images through lenet_predict_u8.
  const auto r = test::run_cli("predict --json --top-k 10 --model " + test::quoted(gray()) + args);
  ASSERT_EQ(r.code, 0) << r.err;
  std::vector<uint8_t> px;
  for (const fs::path& f : files) {
    const Image g = to_grayscale(read_image(f));
    px.insert(px.end(), g.pixels.begin(), g.pixels.end());
  }
  std::vector<float> p(files.size() * kClasses);
  ASSERT_EQ(lenet_predict_u8(h.m, px.data(), static_cast<int>(files.size()), p.data(), nullptr, 0), LENET_OK);
  expect_same(r.out, p, __LINE__);
}

// An ONNX export of the same model loads and predicts the same.
TEST_F(CApi, LoadsOnnx) {
  LoadedModel m = load_model(gray());
  export_onnx(file("gray.onnx"), m.model, m.info);
  ModelHandle a(gray()), b(file("gray.onnx"));
  ASSERT_NE(b.m, nullptr);
  EXPECT_EQ(lenet_model_num_classes(b.m), kClasses);
  const std::vector<uint8_t> px = random_pixels(4 * 560, 12);
  std::vector<float> pa(4 * kClasses), pb(4 * kClasses);
  ASSERT_EQ(lenet_predict_u8(a.m, px.data(), 4, pa.data(), nullptr, 0), LENET_OK);
  ASSERT_EQ(lenet_predict_u8(b.m, px.data(), 4, pb.data(), nullptr, 0), LENET_OK);
  EXPECT_EQ(pa, pb);
}

// One version everywhere: project() -> version.h -> --version and the ONNX producer_version.
TEST_F(CApi, VersionReachesTheCliAndOnnxFiles) {
  const auto r = test::run_cli("--version");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out.substr(0, r.out.find('\n')), std::string("lenet.cpp ") + lenet_version());
  LoadedModel m = load_model(gray());
  onnx::ModelProto proto;
  ASSERT_TRUE(proto.ParseFromString(onnx_model_bytes(m.model, m.info)));
  EXPECT_EQ(proto.producer_name(), "lenet.cpp");
  EXPECT_EQ(proto.producer_version(), lenet_version());
}
#endif

}  // namespace
}  // namespace lenet

// ONNX in the command line: `lenet train` writes best.onnx beside
// best.safetensors, `lenet export` converts any saved model, and every
// command that takes --model reads ONNX files (told apart by content).
#include <gtest/gtest.h>
#include <onnx/onnx_pb.h>

#include <filesystem>

#include "data_test_util.h"
#include "lenet/checkpoint.h"
#include "lenet/onnx.h"
#include "lenet/train.h"
#include "test_util.h"

using namespace lenet;
using test::expect_error_line;
using test::line_count;
using test::quoted;
using test::run_cli;
namespace fs = std::filesystem;

namespace {

const fs::path kFixtures = fs::path(LENET_TEST_DATA) / "pytorch-onnx";

// Same weights, same layers: the same logits, bit for bit.
void expect_same_logits(Sequential& a, Sequential& b, const Shape& chw, uint64_t seed) {
  Rng rng(seed);
  const Tensor x = test::random_tensor({6, chw[0], chw[1], chw[2]}, rng, 0, 1);
  const Tensor ya = a.forward(x);
  EXPECT_EQ(max_abs_diff(ya, b.forward(x)), 0.0f);
}

// One small training run shared by the tests: three epochs on synthetic 12x12
// images (an IDX folder, so the classes are the digits 0..9).
class CliOnnx : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new test::ScratchDir("lenet-cli-onnx");
    test::write_synthetic_idx(*dir_ / "data", 200, 60, 12, 4);
    run_ = *dir_ / "run";
    const auto r = run_cli("train --data " + quoted(*dir_ / "data") +
                           " --arch 'conv 4 k3 p1, relu, avgpool 2, flatten, linear 16, tanh, linear' --epochs 3"
                           " --batch-size 32 --threads 1 --seed 5 --out " +
                           quoted(run_));
    // A failure here must fail every test: an ASSERT in SetUpTestSuite would
    // only mark them skipped, which CTest counts as a pass.
    if (r.code != 0) setup_error_ = "training the shared run failed: " + r.err;
  }
  void SetUp() override {
    if (!setup_error_.empty()) FAIL() << setup_error_;
  }
  static void TearDownTestSuite() { delete dir_; }
  static test::ScratchDir* dir_;
  static fs::path run_;
  static inline std::string setup_error_;
};
test::ScratchDir* CliOnnx::dir_ = nullptr;
fs::path CliOnnx::run_;

}  // namespace

TEST_F(CliOnnx, TrainingWritesBestOnnxWithTheBestWeights) {
  ASSERT_TRUE(fs::exists(run_ / "best.onnx"));
  LoadedModel ckpt = load_checkpoint(run_ / "best.safetensors");
  LoadedModel onnx = import_onnx(run_ / "best.onnx");
  EXPECT_EQ(onnx.info.arch, ckpt.model.spec());
  EXPECT_EQ(onnx.info.input_shape, (Shape{1, 12, 12}));
  EXPECT_EQ(onnx.info.class_names, ckpt.info.class_names);
  EXPECT_EQ(onnx.info.dataset, ckpt.info.dataset);
  EXPECT_EQ(onnx.info.metrics, ckpt.info.metrics);
  // The epoch with the lowest test loss, as best.safetensors.
  const auto history = read_metrics_csv(run_ / "metrics.csv");
  ASSERT_EQ(history.size(), 3u);
  size_t best = 0;
  for (size_t i = 1; i < history.size(); ++i)
    if (history[i].test_loss < history[best].test_loss) best = i;
  EXPECT_EQ(onnx.info.epoch, history[best].epoch);
  EXPECT_EQ(onnx.info.epoch, ckpt.info.epoch);
  expect_same_logits(onnx.model, ckpt.model, {1, 12, 12}, 1);
}

TEST_F(CliOnnx, ExportConvertsACheckpoint) {
  const fs::path out = *dir_ / "export-default.onnx";
  const auto r = run_cli("export --model " + quoted(run_ / "best.safetensors") + " --onnx " + quoted(out));
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(r.err.empty()) << r.err;
  EXPECT_NE(r.out.find("wrote " + out.string() +
                       " (opset 11): conv 4 k3 p1, relu, avgpool 2, flatten, linear 16, "
                       "tanh, linear 4, input [N, 1, 12, 12], 4 classes"),
            std::string::npos)
      << r.out;
  // The same file training wrote for the same weights and facts.
  EXPECT_EQ(test::read_bytes(out), test::read_bytes(run_ / "best.onnx"));

  const fs::path newer = *dir_ / "export-13.onnx";
  ASSERT_EQ(
      run_cli("export --model " + quoted(run_ / "last.safetensors") + " --onnx " + quoted(newer) + " --opset 13").code,
      0);
  onnx::ModelProto m;
  ASSERT_TRUE(m.ParseFromString(test::read_bytes(newer)));
  EXPECT_EQ(m.opset_import(0).version(), 13);
  LoadedModel last = load_checkpoint(run_ / "last.safetensors");
  LoadedModel back = import_onnx(newer);
  expect_same_logits(back.model, last.model, {1, 12, 12}, 2);
}

TEST_F(CliOnnx, ExportConvertsAPyTorchFileAndAddsMetadata) {
  const fs::path source = kFixtures / "lenet-relu-max-28x20-9.onnx";
  const fs::path out = *dir_ / "from-pytorch.onnx";
  const auto r = run_cli("export --model " + quoted(source) + " --onnx " + quoted(out));
  ASSERT_EQ(r.code, 0) << r.err;
  LoadedModel original = import_onnx(source);
  LoadedModel converted = import_onnx(out);
  EXPECT_EQ(converted.info.arch, original.info.arch);
  EXPECT_EQ(converted.metadata.at("lenet.input_shape"), "[1,28,20]");
  EXPECT_TRUE(original.metadata.empty());
  expect_same_logits(converted.model, original.model, {1, 28, 20}, 3);
}

TEST_F(CliOnnx, CommandsReadOnnxFilesByContent) {
  // eval gives the same numbers from best.onnx as from best.safetensors.
  const std::string data = " --data " + quoted(*dir_ / "data") + " --threads 1";
  const auto a = run_cli("eval --model " + quoted(run_ / "best.safetensors") + data);
  const auto b = run_cli("eval --model " + quoted(run_ / "best.onnx") + data);
  ASSERT_EQ(a.code, 0) << a.err;
  ASSERT_EQ(b.code, 0) << b.err;
  const auto numbers = [](const std::string& out) { return out.substr(out.find("loss ")); };
  EXPECT_EQ(numbers(b.out), numbers(a.out));

  // The extension does not decide: ONNX bytes in a .bin, a checkpoint named .onnx.
  fs::copy_file(run_ / "best.onnx", *dir_ / "model.bin", fs::copy_options::overwrite_existing);
  fs::copy_file(run_ / "best.safetensors", *dir_ / "checkpoint.onnx", fs::copy_options::overwrite_existing);
  LoadedModel from_bin = load_model(*dir_ / "model.bin");
  LoadedModel from_misnamed = load_model(*dir_ / "checkpoint.onnx");
  EXPECT_TRUE(from_bin.metadata.contains("lenet.format")) << "read as ONNX";
  EXPECT_TRUE(from_misnamed.metadata.contains("format_version")) << "read as a checkpoint";
  expect_same_logits(from_bin.model, from_misnamed.model, {1, 12, 12}, 4);

  // Broken files get the message of the format they claim to be.
  test::write_bytes(*dir_ / "broken.onnx", "not a model");
  try {
    load_model(*dir_ / "broken.onnx");
    ADD_FAILURE();
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find((*dir_ / "broken.onnx").string() + ": not an ONNX model"), std::string::npos)
        << e.what();
  }
  const std::string onnx_bytes = test::read_bytes(run_ / "best.onnx");
  test::write_bytes(*dir_ / "cut.bin", onnx_bytes.substr(0, onnx_bytes.size() / 2));
  EXPECT_THROW(load_model(*dir_ / "cut.bin"), std::runtime_error);
}

TEST_F(CliOnnx, ExportBadInputFailsCleanly) {
  const fs::path existing = *dir_ / "keep.onnx";
  ASSERT_EQ(run_cli("export --model " + quoted(run_ / "best.safetensors") + " --onnx " + quoted(existing)).code, 0);
  const std::string kept = test::read_bytes(existing);

  expect_error_line(run_cli("export --model " + quoted(run_ / "best.safetensors") + " --onnx " + quoted(existing) +
                            " --opset 8"),
                    {"--opset 8 is not supported (expected 9.."}, "old opset");
  expect_error_line(run_cli("export --model " + quoted(run_ / "best.safetensors") + " --onnx " + quoted(existing) +
                            " --opset 99"),
                    {"--opset 99 is not supported"}, "future opset");

  const fs::path missing = *dir_ / "no-such.safetensors";
  expect_error_line(run_cli("export --model " + quoted(missing) + " --onnx " + quoted(existing)), {missing.string()},
                    "missing model");

  const std::string ckpt = test::read_bytes(run_ / "best.safetensors");
  const fs::path truncated = *dir_ / "truncated.safetensors";
  test::write_bytes(truncated, ckpt.substr(0, ckpt.size() - 100));
  expect_error_line(run_cli("export --model " + quoted(truncated) + " --onnx " + quoted(existing)),
                    {truncated.string(), "truncated"}, "truncated checkpoint");

  const std::string onnx_bytes = test::read_bytes(run_ / "best.onnx");
  const fs::path cut = *dir_ / "cut.onnx";
  test::write_bytes(cut, onnx_bytes.substr(0, onnx_bytes.size() / 3));
  expect_error_line(run_cli("export --model " + quoted(cut) + " --onnx " + quoted(existing)),
                    {cut.string(), "not an ONNX model, or a truncated one"}, "truncated ONNX");

  const fs::path nowhere = *dir_ / "missing-folder" / "m.onnx";
  expect_error_line(run_cli("export --model " + quoted(run_ / "best.safetensors") + " --onnx " + quoted(nowhere)),
                    {"cannot write " + nowhere.string()}, "missing folder");
  EXPECT_FALSE(fs::exists(nowhere.parent_path()));

  // Every failure above left the earlier export as it was, and no stray files.
  EXPECT_EQ(test::read_bytes(existing), kept);
  for (const auto& e : fs::directory_iterator(dir_->path()))
    EXPECT_EQ(e.path().filename().string().find(".tmp"), std::string::npos) << e.path();

  const auto no_onnx = run_cli("export --model " + quoted(run_ / "best.safetensors"));
  EXPECT_NE(no_onnx.code, 0);
  EXPECT_NE(no_onnx.err.find("--onnx is required"), std::string::npos) << no_onnx.err;
}

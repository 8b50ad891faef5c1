// `lenet quantize` end to end: a float model (PyTorch's, tests/data) to an
// int8 QDQ file that `lenet eval` and `lenet predict` run, and every bad input
// refused with one line, a non-zero exit and nothing written.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>

#include "cli_util.h"
#include "data_test_util.h"
#include "lenet/checkpoint.h"
#include "lenet/quant.h"

using namespace lenet;
namespace fs = std::filesystem;
using test::quoted;
using test::run_cli;

namespace {

const fs::path kFloatModel = fs::path(LENET_TEST_DATA) / "pytorch-onnx" / "lenet-sigmoid-avg-28x28-10.onnx";

struct Scratch {
  fs::path path;
  Scratch() {
    std::string pattern = (fs::temp_directory_path() / "lenet-quantize-XXXXXX").string();
    if (!mkdtemp(pattern.data())) throw std::runtime_error("mkdtemp failed");
    path = pattern;
  }
  ~Scratch() { fs::remove_all(path); }
  fs::path operator/(const std::string& name) const { return path / name; }
};

}  // namespace

TEST(CliQuantize, QuantizesAndEvalAndPredictRunTheInt8File) {
  ASSERT_TRUE(test::have_fashion_mnist()) << "install dataset-fashion-mnist (scripts/setup.sh)";
  Scratch dir;
  const fs::path out = dir / "model-int8.onnx";
  const auto q = run_cli("quantize --model " + quoted(kFloatModel) + " --out " + quoted(out) +
                         " --calibration 300 --method percentile");
  ASSERT_EQ(q.code, 0) << q.err;
  EXPECT_NE(q.out.find("calibrated on 300 training images (percentile)"), std::string::npos) << q.out;
  LoadedModel m = load_model(out);
  ASSERT_NE(m.model.quantization(), nullptr);
  EXPECT_LE(fs::file_size(out), 0.3 * static_cast<double>(fs::file_size(kFloatModel)));

  const auto ev = run_cli("eval --model " + quoted(out) + " --limit 500");
  ASSERT_EQ(ev.code, 0) << ev.err;
  EXPECT_NE(ev.out.find("test split, 500 images"), std::string::npos) << ev.out;

  // One 28×28 image (a PGM) for predict.
  std::string pgm = "P5\n28 28\n255\n";
  for (int i = 0; i < 28 * 28; ++i) pgm += static_cast<char>((i * 7) % 256);
  test::write_bytes(dir / "one.pgm", pgm);
  const auto p = run_cli("predict --model " + quoted(out) + " " + quoted(dir / "one.pgm"));
  ASSERT_EQ(p.code, 0) << p.err;
  EXPECT_NE(p.out.find("one.pgm"), std::string::npos) << p.out;

  // An int8 model is not quantized twice.
  const auto again = run_cli("quantize --model " + quoted(out) + " --out " + quoted(dir / "twice.onnx"));
  test::expect_error_line(again, {"is an int8 model already"}, "quantize twice");
  EXPECT_FALSE(fs::exists(dir / "twice.onnx"));
}

namespace {
// The "accuracy 0.6840" figure of `lenet eval`'s output (-1 when missing).
double eval_accuracy(const std::string& out) {
  const size_t at = out.find("accuracy ");
  return at == std::string::npos ? -1.0 : std::stod(out.substr(at + 9));
}
}  // namespace

TEST(CliQuantize, ReduceRangeKeepsWeightsIn7BitsAndTheAccuracy) {
  ASSERT_TRUE(test::have_fashion_mnist()) << "install dataset-fashion-mnist (scripts/setup.sh)";
  Scratch dir;
  const fs::path out = dir / "model-int8-7bit.onnx";
  const auto q = run_cli("quantize --model " + quoted(kFloatModel) + " --out " + quoted(out) +
                         " --calibration 300 --reduce-range");
  ASSERT_EQ(q.code, 0) << q.err;
  EXPECT_NE(q.out.find("(7-bit weights)"), std::string::npos) << q.out;
  // Read back: every weight in -64..64 (ONNX Runtime's reduce_range), and each channel reaches 64
  // (its scale is at most max |w| / 64).
  LoadedModel m = load_model(out);
  ASSERT_NE(m.model.quantization(), nullptr);
  for (const LayerQuantization& l : m.model.quantization()->layers) {
    const size_t per = l.weights.size() / l.weight_scales.size();
    for (size_t o = 0; o < l.weight_scales.size(); ++o) {
      int largest = 0;
      for (size_t k = 0; k < per; ++k) {
        const int w = l.weights[o * per + k];
        ASSERT_LE(std::abs(w), 64) << "layer " << l.layer << " channel " << o;
        largest = std::max(largest, std::abs(w));
      }
      EXPECT_EQ(largest, 64) << "layer " << l.layer << " channel " << o;
    }
  }
  // The accuracy on the first 2,000 test images stays within a point of the float model's.
  const auto float_eval = run_cli("eval --model " + quoted(kFloatModel) + " --limit 2000");
  const auto int8_eval = run_cli("eval --model " + quoted(out) + " --limit 2000");
  ASSERT_EQ(float_eval.code, 0) << float_eval.err;
  ASSERT_EQ(int8_eval.code, 0) << int8_eval.err;
  const double float_acc = eval_accuracy(float_eval.out), int8_acc = eval_accuracy(int8_eval.out);
  ASSERT_GT(float_acc, 0.5) << float_eval.out;
  std::printf("[ quantize ] 2000 test images: float %.4f, int8 with 7-bit weights %.4f\n", float_acc, int8_acc);
  EXPECT_NEAR(int8_acc, float_acc, 0.01);
}

TEST(CliQuantize, RefusesBadInputWithOneLineAndWritesNothing) {
  Scratch dir;
  const fs::path out = dir / "int8.onnx";
  test::write_bytes(out, "keep me");                         // an existing file must survive every refusal
  test::write_synthetic_idx(dir / "small", 40, 10, 12, 10);  // 12×12 images
  test::write_synthetic_idx(dir / "fewclasses", 40, 10, 28, 4);
  const std::string base = "quantize --model " + quoted(kFloatModel) + " --out " + quoted(out);
  struct Case {
    std::string args;
    std::vector<std::string> phrases;
  };
  for (const Case& c : {Case{" --calibration 0", {"--calibration must be at least 1 image, got 0"}},
                        Case{" --calibration -5", {"--calibration must be at least 1 image"}},
                        Case{" --method kl", {"--method must be minmax or percentile, got 'kl'"}},
                        Case{" --opset 11", {"--opset 11", "opset 13"}},
                        Case{" --data " + quoted(dir / "small"), {"images are [1, 12, 12]", "expects [1, 28, 28]"}},
                        Case{" --data " + quoted(dir / "fewclasses"), {"4 classes but the model", "has 10"}}}) {
    const auto r = run_cli(base + c.args);
    test::expect_error_line(r, c.phrases, c.args);
    EXPECT_EQ(test::read_bytes(out), "keep me") << c.args;
  }
  const auto missing = run_cli("quantize --model " + quoted(dir / "none.safetensors") + " --out " + quoted(out));
  test::expect_error_line(missing, {"none.safetensors"}, "missing model");
  EXPECT_EQ(test::read_bytes(out), "keep me");
}

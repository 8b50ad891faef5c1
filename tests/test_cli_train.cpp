// `lenet train` and `lenet eval` run as a user runs them: the built binary,
// its exit code, its output and the files it leaves.
#include <gtest/gtest.h>

#include <cmath>
#include <regex>

#include "data_test_util.h"
#include "lenet/checkpoint.h"
#include "lenet/train.h"

namespace lenet {
namespace {

using test::line_count;
using test::quoted;
using test::run_cli;
using test::ScratchDir;
namespace fs = std::filesystem;

std::map<std::string, std::string> snapshot(const fs::path& dir) {
  std::map<std::string, std::string> files;
  for (const auto& e : fs::directory_iterator(dir)) files[e.path().filename().string()] = test::read_bytes(e.path());
  return files;
}

TEST(CliTrain, OneEpochOnAFashionMnistSubset) {
  if (!test::have_fashion_mnist()) GTEST_SKIP() << "dataset-fashion-mnist is not installed";
  ScratchDir dir;
  const fs::path out = dir / "run";
  const auto r = run_cli(
      "train --data " + quoted(test::fashion_mnist_dir()) +
      " --arch lenet-relu --epochs 1 --batch-size 64 --limit-train 2000 --limit-test 1000 --threads 1 --seed 3"
      " --out " +
      quoted(out));
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(r.err.empty()) << r.err;
  // Not a terminal: plain lines, no progress bar.
  EXPECT_EQ(r.out.find('\r'), std::string::npos);
  EXPECT_NE(r.out.find("2000 training and 1000 test images of 1x28x28, 10 classes"), std::string::npos) << r.out;
  EXPECT_TRUE(std::regex_search(
      r.out,
      std::regex(R"(epoch 1/1  train loss [0-9.]+ acc [0-9.]+  test loss [0-9.]+ acc [0-9.]+ .* img/s  \*best)")))
      << r.out;
  ASSERT_TRUE(fs::exists(out / "best.safetensors"));
  ASSERT_TRUE(fs::exists(out / "last.safetensors"));
  const auto m = read_metrics_csv(out / "metrics.csv");
  ASSERT_EQ(m.size(), 1u);
  EXPECT_EQ(m[0].epoch, 1);
  // Plausible: below the loss of guessing (ln 10 ≈ 2.30) and far above chance (0.1) after 32 Adam steps.
  EXPECT_GT(m[0].train_loss, 0.3);
  EXPECT_LT(m[0].train_loss, 2.3);
  EXPECT_LT(m[0].test_loss, 1.5);
  EXPECT_GT(m[0].test_acc, 0.5);
  EXPECT_LE(m[0].test_acc, 1.0);
  EXPECT_GT(m[0].images_per_s, 0);
  EXPECT_GE(m[0].seconds, 2000 / m[0].images_per_s);  // the epoch includes the training time
  const LoadedModel best = load_checkpoint(out / "best.safetensors");
  EXPECT_EQ(best.info.dataset, "fashion-mnist");
  EXPECT_EQ(best.info.class_names, fashion_mnist_classes());
  EXPECT_EQ(best.info.metrics.at("test_acc"), m[0].test_acc);

  // eval on the same 1,000 test images reports the same loss and accuracy, and a full table.
  const auto e = run_cli("eval --model " + quoted(out / "best.safetensors") + " --data " +
                         quoted(test::fashion_mnist_dir()) + " --limit 1000 --threads 1");
  ASSERT_EQ(e.code, 0) << e.err;
  char expected[64];
  std::snprintf(expected, sizeof expected, "loss %.4f  accuracy %.4f", m[0].test_loss, m[0].test_acc);
  EXPECT_NE(e.out.find(expected), std::string::npos) << e.out << "\nexpected: " << expected;
  EXPECT_NE(e.out.find("1000 images"), std::string::npos);
  // The confusion matrix: a header of class names and ten rows that add up to 1,000.
  const auto table = e.out.substr(e.out.find("true \\ predicted"));
  std::istringstream lines(table);
  std::string line;
  std::getline(lines, line);
  EXPECT_NE(line.find("ankle boot"), std::string::npos);
  const size_t width = line.size();
  int64_t total = 0, rows = 0;
  while (std::getline(lines, line) && !line.empty()) {
    EXPECT_EQ(line.size(), width) << "aligned: " << line;
    std::istringstream cells(line.substr(line.find_first_of("0123456789", 10)));
    int64_t v;
    while (cells >> v) total += v;
    ++rows;
  }
  EXPECT_EQ(rows, 10);
  EXPECT_EQ(total, 1000);
}

class CliSynthetic : public ::testing::Test {
 protected:
  void SetUp() override { test::write_synthetic_idx(dir_ / "data", 200, 60, 12, 4); }
  std::string train_args(const std::string& extra) const {
    return "train --data " + quoted(dir_ / "data") + " --arch mlp --epochs 2 --batch-size 32 --threads 1 " + extra;
  }
  ScratchDir dir_;
};

TEST_F(CliSynthetic, DefaultOutputIsANewFolderUnderRuns) {
  ASSERT_EQ(run_cli(train_args(""), dir_.path()).code, 0);
  const auto r = run_cli(train_args(""), dir_.path());
  ASSERT_EQ(r.code, 0) << r.err;
  std::vector<fs::path> runs;
  for (const auto& e : fs::directory_iterator(dir_ / "runs")) runs.push_back(e.path());
  ASSERT_EQ(runs.size(), 2u) << "the second run must not reuse the first one's folder";
  for (const auto& run : runs) EXPECT_EQ(read_metrics_csv(run / "metrics.csv").size(), 2u);
  EXPECT_NE(r.out.find("-> runs/"), std::string::npos) << r.out;
}

TEST_F(CliSynthetic, SameSeedGivesTheSameMetrics) {
  ASSERT_EQ(run_cli(train_args("--seed 9 --out " + quoted(dir_ / "a"))).code, 0);
  ASSERT_EQ(run_cli(train_args("--seed 9 --out " + quoted(dir_ / "b"))).code, 0);
  const auto a = read_metrics_csv(dir_ / "a" / "metrics.csv"), b = read_metrics_csv(dir_ / "b" / "metrics.csv");
  ASSERT_EQ(a.size(), 2u);
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].train_loss, b[i].train_loss);
    EXPECT_EQ(a[i].test_loss, b[i].test_loss);
    EXPECT_EQ(a[i].test_acc, b[i].test_acc);
  }
}

TEST_F(CliSynthetic, BadInputFailsCleanlyAndKeepsEarlierRuns) {
  const fs::path earlier = dir_ / "earlier";
  ASSERT_EQ(run_cli(train_args("--out " + quoted(earlier))).code, 0);
  const auto before = snapshot(earlier);
  // best, last and metrics.csv, plus the pictures, the gallery and the report of the hooks
  for (const char* name : {"best.safetensors", "last.safetensors", "metrics.csv", "best.onnx"})
    ASSERT_EQ(before.count(name), 1u) << name;

  // Broken data folders, each a copy of the good one with one defect.
  auto broken = [&](const std::string& name, const std::function<void(const fs::path&)>& damage) {
    const fs::path d = dir_ / name;
    fs::create_directories(d);
    for (const auto& e : fs::directory_iterator(dir_ / "data")) fs::copy_file(e.path(), d / e.path().filename());
    damage(d);
    return d;
  };
  const fs::path lacking = broken("lacking", [](const fs::path& d) { fs::remove(d / "train-labels-idx1-ubyte.gz"); });
  const fs::path magic = broken("magic", [](const fs::path& d) {
    test::write_gzip(d / "t10k-images-idx3-ubyte.gz", test::idx_labels(std::vector<uint8_t>(60, 0)));
  });
  const fs::path truncated = broken("truncated", [](const fs::path& d) {
    const std::string gz = test::read_bytes(d / "train-images-idx3-ubyte.gz");
    test::write_bytes(d / "train-images-idx3-ubyte.gz", gz.substr(0, gz.size() / 2));
  });
  const fs::path counts = broken("counts", [](const fs::path& d) {
    test::write_gzip(d / "t10k-labels-idx1-ubyte.gz", test::idx_labels(std::vector<uint8_t>(59, 0)));
  });

  const std::string good = "--data " + quoted(dir_ / "data") + " --epochs 1 --threads 1";
  struct Case {
    std::string args;
    std::vector<std::string> phrases;
  };
  const std::vector<Case> cases = {
      {"--data " + quoted(dir_ / "nowhere") + " --epochs 1", {"nowhere", "does not exist"}},
      {"--data " + quoted(lacking) + " --epochs 1", {"lacking", "no train-labels-idx1-ubyte"}},
      {"--data " + quoted(magic) + " --epochs 1", {"t10k-images-idx3-ubyte.gz", "wrong IDX magic 0x00000801"}},
      {"--data " + quoted(truncated) + " --epochs 1", {"train-images-idx3-ubyte.gz", "truncated"}},
      {"--data " + quoted(counts) + " --epochs 1", {"holds 60 images", "holds 59 labels"}},
      {good + " --arch resnet50", {"unknown --arch 'resnet50'", "lenet-max"}},
      {good + " --arch 'conv 6 k40, flatten, linear'", {"--arch", "conv 6 k40"}},
      {good + " --epochs 0", {"--epochs", "positive", "got 0"}},
      {good + " --epochs -3", {"--epochs", "got -3"}},
      {good + " --batch-size 0", {"--batch-size", "got 0"}},
      {good + " --lr 0", {"--lr", "positive"}},
      {good + " --lr -0.1", {"--lr", "-0.1"}},
      {good + " --optimizer rmsprop", {"--optimizer", "rmsprop"}},
      {good + " --optimizer adam --momentum 0.9", {"--momentum", "sgd"}},
      {good + " --limit-train -5", {"--limit-train"}},
      {good + " --threads 100000", {"--threads", "100000"}},
  };
  for (const Case& c : cases) {
    // Once into the earlier run's folder, once into a new one: neither may be touched.
    const auto r = run_cli("train " + c.args + " --out " + quoted(earlier));
    test::expect_error_line(r, c.phrases, c.args);
    const auto fresh = run_cli("train " + c.args + " --out " + quoted(dir_ / "fresh"));
    test::expect_error_line(fresh, c.phrases, c.args);
    EXPECT_FALSE(fs::exists(dir_ / "fresh")) << "a failed run leaves no folder: " << c.args;
  }
  // Valid settings, but the folder already holds a run.
  const auto again = run_cli("train " + good + " --out " + quoted(earlier));
  test::expect_error_line(again, {earlier.string(), "already holds files", "never overwrites"}, "existing --out");
  EXPECT_EQ(snapshot(earlier), before) << "the earlier run's files are untouched";
}

TEST_F(CliSynthetic, EvalRejectsBrokenCheckpointsAndMismatchedData) {
  const fs::path run = dir_ / "run";
  ASSERT_EQ(run_cli(train_args("--out " + quoted(run))).code, 0);
  const fs::path model = run / "best.safetensors";
  const std::string good = test::read_bytes(model);
  const std::string data = " --data " + quoted(dir_ / "data");

  const auto ok = run_cli("eval --model " + quoted(model) + data);
  ASSERT_EQ(ok.code, 0) << ok.err;
  EXPECT_NE(ok.out.find("per-class accuracy"), std::string::npos);

  auto bad_model = [&](const std::string& name, const std::string& bytes, const std::vector<std::string>& phrases) {
    const fs::path p = dir_ / name;
    test::write_bytes(p, bytes);
    std::vector<std::string> all = phrases;
    all.insert(all.begin(), p.string());
    test::expect_error_line(run_cli("eval --model " + quoted(p) + data), all, name);
  };
  bad_model("truncated.safetensors", good.substr(0, good.size() * 2 / 3), {"truncated"});
  std::string garbled = good;
  garbled.replace(8, 4, "}}}}");
  bad_model("garbled.safetensors", garbled, {"garbled safetensors header"});
  std::string absurd = good;
  absurd.replace(0, 8, std::string("\xff\xff\xff\xff\xff\xff\xff\x7f", 8));
  bad_model("absurd.safetensors", absurd, {"header length", "absurd"});
  // The header says mlp's first linear layer has 256 outputs; claim 128 instead.
  std::string misfit = good;
  const size_t at = misfit.find("linear 256");
  ASSERT_NE(at, std::string::npos);
  misfit.replace(at, 10, "linear 128");
  bad_model("misfit.safetensors", misfit, {"has shape [256, 144]", "needs [128, 144]"});
  test::expect_error_line(run_cli("eval --model " + quoted(dir_ / "none.safetensors") + data),
                          {"none.safetensors", "not found"}, "missing model");

  // A model for 12x12 images on 8x8 data.
  test::write_synthetic_idx(dir_ / "small", 20, 10, 8, 4);
  test::expect_error_line(run_cli("eval --model " + quoted(model) + " --data " + quoted(dir_ / "small")),
                          {"[1, 8, 8]", "expects [1, 12, 12]"}, "shape mismatch");
  EXPECT_EQ(test::read_bytes(model), good) << "eval never writes";
}

}  // namespace
}  // namespace lenet

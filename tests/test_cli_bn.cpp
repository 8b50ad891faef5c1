// `lenet train` with batch norm and dropout as a user runs it: it learns,
// evaluation uses the running estimates (`lenet eval` reproduces the run's
// test figures from the checkpoint), the ONNX export runs, and a batch of one
// through BatchNorm1d stops with PyTorch's message on one line.
#include <gtest/gtest.h>

#include "cli_util.h"
#include "data_test_util.h"
#include "lenet/checkpoint.h"
#include "lenet/train.h"

namespace lenet {
namespace {

using test::quoted;
using test::run_cli;
using test::ScratchDir;
namespace fs = std::filesystem;

const char* const kBnArch = "conv 4 k3, bn, relu, maxpool 2, flatten, dropout 0.2, linear 16, bn, relu, linear";

TEST(CliBatchNorm, TrainsAndEvaluatesWithTheRunningEstimates) {
  ScratchDir dir;
  test::write_synthetic_idx(dir / "data", 200, 60, 12, 4);
  const fs::path run = dir / "run";
  const auto r = run_cli("train --data " + quoted(dir / "data") + " --arch '" + kBnArch +
                         "' --optimizer sgd --lr 0.5 --epochs 3 --batch-size 32 --threads 2 --seed 4 --out " +
                         quoted(run));
  ASSERT_EQ(r.code, 0) << r.err;
  const auto history = read_metrics_csv(run / "metrics.csv");
  ASSERT_EQ(history.size(), 3u);
  EXPECT_GT(history.back().test_acc, 0.9) << "the band pattern is easy to learn";
  LoadedModel best = load_checkpoint(run / "best.safetensors");
  const auto* mean = best.model.buffers()[0];
  EXPECT_EQ(mean->name, "1.running_mean");
  EXPECT_NE(mean->value[0], 0.0f) << "the running statistics were saved";
  EXPECT_EQ(best.model.buffers()[2]->value[0], 7.0f * 3) << "num_batches_tracked: 7 batches of 3 epochs";
  // `lenet eval` on the checkpoint gives the run's own test accuracy: both in evaluation mode.
  const auto ev = run_cli("eval --model " + quoted(run / "best.safetensors") + " --data " + quoted(dir / "data"));
  ASSERT_EQ(ev.code, 0) << ev.err;
  int best_row = 0;
  for (size_t i = 0; i < history.size(); ++i)
    if (history[i].test_loss < history[static_cast<size_t>(best_row)].test_loss) best_row = static_cast<int>(i);
  char acc[32];
  std::snprintf(acc, sizeof acc, "%.4f", history[static_cast<size_t>(best_row)].test_acc);
  EXPECT_NE(ev.out.find(acc), std::string::npos) << ev.out << "\nwanted " << acc;
  EXPECT_TRUE(fs::exists(run / "best.onnx"));
}

TEST(CliBatchNorm, ABatchOfOneInTrainingIsOneClearError) {
  ScratchDir dir;
  test::write_synthetic_idx(dir / "data", 40, 20, 12, 4);
  const auto r = run_cli("train --data " + quoted(dir / "data") +
                         " --arch 'flatten, linear 8, bn, relu, linear' --epochs 1 --batch-size 1 --threads 1 --out " +
                         quoted(dir / "run"));
  test::expect_error_line(r, {"layer 3 (bn)", "Expected more than 1 value per channel when training", "[1, 8]"},
                          "batch of one");
  // Refused before anything is written: not even the --out folder is made.
  EXPECT_FALSE(fs::exists(dir / "run"));
  // A last batch of one (33 images in batches of 8) is refused the same way, before training.
  const auto last = run_cli("train --data " + quoted(dir / "data") +
                            " --arch 'flatten, linear 8, bn, relu, linear' --epochs 1 --batch-size 8 --limit-train 33 "
                            "--threads 1 --out " +
                            quoted(dir / "run2"));
  test::expect_error_line(last, {"layer 3 (bn)", "Expected more than 1 value per channel", "[1, 8]"}, "last batch");
  EXPECT_FALSE(fs::exists(dir / "run2"));
  // Without --out no runs/<date> folder is claimed either; an --out folder that exists is left as it was.
  const fs::path cwd = dir / "cwd";
  fs::create_directories(cwd / "kept");
  for (const std::string out : {"", " --out kept"}) {
    const auto refused = run_cli("train --data " + quoted(dir / "data") +
                                     " --arch 'flatten, linear 8, bn, relu, linear' --epochs 1 --batch-size 1 "
                                     "--threads 1" +
                                     out,
                                 cwd);
    test::expect_error_line(refused, {"Expected more than 1 value per channel"}, "batch of one" + out);
    EXPECT_FALSE(fs::exists(cwd / "runs")) << out;
    EXPECT_TRUE(fs::is_directory(cwd / "kept") && fs::is_empty(cwd / "kept")) << out;
  }
}

}  // namespace
}  // namespace lenet

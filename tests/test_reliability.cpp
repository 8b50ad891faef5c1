// Interruption, resuming and the divergence guard: a run stopped at any batch
// (by the library's stop callback, by the CLI's self-signal test hook, or by a
// real signal sent from outside) continues to the very same bits as a run that
// was never stopped; a NaN loss stops the run and leaves the saved files alone.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstring>
#include <random>
#include <regex>
#include <sstream>
#include <thread>

#include "cli_util.h"
#include "data_test_util.h"
#include "lenet/checkpoint.h"
#include "lenet/train.h"
#include "test_util.h"

namespace lenet {
namespace reliability_test {

namespace fs = std::filesystem;
using test::quoted;
using test::ScratchDir;

DataSplit band_split() {
  DataSplit s;
  s.train = test::band_dataset(300, 4, 1);  // 300 / 32 → 10 batches per epoch, the last one of 12
  s.test = test::band_dataset(60, 4, 2);
  s.name = "bands";
  return s;
}

TrainOptions quick_options(const fs::path& out, const std::string& optimizer = "adam") {
  TrainOptions o;
  o.arch = "conv 4 k3 p1, relu, maxpool 2, flatten, linear";
  o.epochs = 3;
  o.batch_size = 32;
  o.optimizer = optimizer;
  o.lr = optimizer == "sgd" ? 0.1f : 0.01f;
  o.momentum = optimizer == "sgd" ? 0.9f : 0.0f;
  o.seed = 11;
  o.threads = 2;  // the parallel kernels must repeat themselves exactly too
  o.out_dir = out;
  return o;
}

constexpr int kBatchesPerEpoch = 10;

// A stop callback that asks to stop after the n-th batch of this session.
std::function<bool(int, int64_t)> stop_after_batches(int64_t n) {
  auto count = std::make_shared<int64_t>(0);
  return [count, n](int, int64_t batches_done) { return batches_done > 0 && ++*count == n; };
}

// metrics.csv without its two timing columns (seconds, images/s): text, byte for byte.
std::string metrics_without_timing(const fs::path& csv) {
  std::istringstream in(test::read_bytes(csv));
  std::string line, out;
  // Drops the 6th and 7th fields (seconds, images_per_s); later columns (lr, val_*) stay.
  while (std::getline(in, line)) {
    size_t from = 0;
    for (int i = 0; i < 5; ++i) from = line.find(',', from) + 1;
    size_t to = from;
    for (int i = 0; i < 2 && to != std::string::npos; ++i) to = line.find(',', to + 1);
    out += line.substr(0, from - 1) + (to == std::string::npos ? "" : line.substr(to)) + "\n";
  }
  return out;
}

void expect_same_history(const std::vector<EpochMetrics>& a, const std::vector<EpochMetrics>& b) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].epoch, b[i].epoch);
    EXPECT_EQ(a[i].train_loss, b[i].train_loss) << "epoch " << i + 1;
    EXPECT_EQ(a[i].train_acc, b[i].train_acc) << "epoch " << i + 1;
    EXPECT_EQ(a[i].test_loss, b[i].test_loss) << "epoch " << i + 1;
    EXPECT_EQ(a[i].test_acc, b[i].test_acc) << "epoch " << i + 1;
  }
}

void expect_same_run(const fs::path& reference, const fs::path& resumed) {
  EXPECT_EQ(metrics_without_timing(reference / "metrics.csv"), metrics_without_timing(resumed / "metrics.csv"));
  expect_same_history(read_metrics_csv(reference / "metrics.csv"), read_metrics_csv(resumed / "metrics.csv"));
  test::expect_same_tensors(reference / "best.safetensors", resumed / "best.safetensors");
  test::expect_same_tensors(reference / "last.safetensors", resumed / "last.safetensors");
}

// A random batch of the run, reported so a failure can be repeated.
int64_t random_batch(int64_t lo, int64_t hi) {
  std::random_device rd;
  return std::uniform_int_distribution<int64_t>(lo, hi)(rd);
}

// ---- the library: train() with a stop callback and resume_from ----

class Resume : public ::testing::TestWithParam<std::string> {};

TEST_P(Resume, StoppedAtARandomBatchContinuesBitIdentically) {
  ScratchDir dir;
  const DataSplit data = band_split();
  const auto reference = train(data, quick_options(dir / "ref", GetParam()));

  const int64_t stop_at = random_batch(1, 3 * kBatchesPerEpoch - 1);
  SCOPED_TRACE("stopped after batch " + std::to_string(stop_at) + " of 30");
  TrainOptions o = quick_options(dir / "run", GetParam());
  o.stop_requested = stop_after_batches(stop_at);
  try {
    train(data, o);
    FAIL() << "the run did not stop";
  } catch (const TrainingInterrupted& e) {
    EXPECT_EQ(e.epoch, (stop_at - 1) / kBatchesPerEpoch + 1);
    EXPECT_EQ(e.batches_done, (stop_at - 1) % kBatchesPerEpoch + 1);
    EXPECT_EQ(e.checkpoint, dir / "run" / "last.safetensors");
    EXPECT_NE(std::string(e.what()).find("after batch " + std::to_string(e.batches_done) + " of 10"), std::string::npos)
        << e.what();
  }
  // The saved state says where the run stands, with the settings it ran with.
  const ResumeState state = read_resume_state(dir / "run" / "last.safetensors");
  EXPECT_EQ(state.epoch, (stop_at - 1) / kBatchesPerEpoch + 1);
  EXPECT_EQ(state.batches_done, (stop_at - 1) % kBatchesPerEpoch + 1);
  EXPECT_EQ(state.history.size(), static_cast<size_t>(state.epoch - 1));
  EXPECT_EQ(state.options.arch, o.arch);
  EXPECT_EQ(state.options.optimizer, GetParam());
  EXPECT_EQ(state.options.lr, o.lr);
  EXPECT_EQ(state.options.momentum, o.momentum);
  EXPECT_EQ(state.options.seed, 11u);
  EXPECT_EQ(state.options.threads, 2);
  EXPECT_EQ(state.options.out_dir, dir / "run");
  EXPECT_FALSE(state.complete());
  EXPECT_EQ(load_checkpoint(dir / "run" / "last.safetensors").metadata.at("optimizer_steps"), std::to_string(stop_at));

  TrainOptions again = quick_options(dir / "run", GetParam());
  again.resume_from = dir / "run" / "last.safetensors";
  const auto resumed = train(data, again);
  expect_same_history(reference, resumed);
  expect_same_run(dir / "ref", dir / "run");
  EXPECT_TRUE(read_resume_state(dir / "run" / "last.safetensors").complete());
}

INSTANTIATE_TEST_SUITE_P(Optimizers, Resume, ::testing::Values("adam", "sgd"));

// Augmented images come from (seed, epoch, image index) alone: a resumed run
// draws what the uninterrupted one drew, and the thread count changes nothing.
TEST(ResumeLibrary, AugmentedRunStoppedAtARandomBatchContinuesBitIdentically) {
  ScratchDir dir;
  const DataSplit data = band_split();
  TrainOptions ref = quick_options(dir / "ref");
  ref.augment = "crop:2,flip,rotate:10,brightness:0.2";
  train(data, ref);
  const int64_t stop_at = random_batch(1, 3 * kBatchesPerEpoch - 1);
  SCOPED_TRACE("stopped after batch " + std::to_string(stop_at) + " of 30");
  TrainOptions o = quick_options(dir / "run");
  o.augment = ref.augment;
  o.stop_requested = stop_after_batches(stop_at);
  EXPECT_THROW(train(data, o), TrainingInterrupted);
  EXPECT_EQ(read_resume_state(dir / "run" / "last.safetensors").options.augment, ref.augment);
  o.stop_requested = nullptr;
  o.resume_from = dir / "run" / "last.safetensors";
  train(data, o);
  expect_same_run(dir / "ref", dir / "run");
  EXPECT_EQ(load_checkpoint(dir / "run" / "best.safetensors").metadata.at("augment"),
            "crop:2,flip:0.5,rotate:10,brightness:0.2");
  // One thread instead of two: the same bits.
  TrainOptions one = quick_options(dir / "one");
  one.augment = ref.augment;
  one.threads = 1;
  train(data, one);
  expect_same_run(dir / "ref", dir / "one");
  // Without augmentation the run is another one.
  train(data, quick_options(dir / "plain"));
  const SafetensorsFile plain = read_safetensors(dir / "plain" / "last.safetensors");
  const SafetensorsFile augmented = read_safetensors(dir / "ref" / "last.safetensors");
  const Tensor *a = plain.find("0.weight"), *b = augmented.find("0.weight");
  ASSERT_TRUE(a && b);
  EXPECT_NE(std::memcmp(a->data(), b->data(), sizeof(float) * static_cast<size_t>(a->numel())), 0);
}

TEST(ResumeLibrary, StoppedTwiceAndBetweenEpochsStillBitIdentical) {
  ScratchDir dir;
  const DataSplit data = band_split();
  train(data, quick_options(dir / "ref"));
  const fs::path last = dir / "run" / "last.safetensors";

  TrainOptions o = quick_options(dir / "run");
  // Between epochs: the callback's (next epoch, 0) poll after epoch 1's files.
  o.stop_requested = [](int epoch, int64_t batches_done) { return epoch == 2 && batches_done == 0; };
  try {
    train(data, o);
    FAIL() << "the run did not stop";
  } catch (const TrainingInterrupted& e) {
    EXPECT_EQ(e.epoch, 2);
    EXPECT_EQ(e.batches_done, 0);
  }
  EXPECT_EQ(read_metrics_csv(dir / "run" / "metrics.csv").size(), 1u);

  // Then after the last batch of epoch 2 (resumed sessions count their own batches).
  o.resume_from = last;
  o.stop_requested = stop_after_batches(kBatchesPerEpoch);
  EXPECT_THROW(train(data, o), TrainingInterrupted);
  const ResumeState state = read_resume_state(last);
  EXPECT_EQ(state.epoch, 2);
  EXPECT_EQ(state.batches_done, kBatchesPerEpoch);

  o.stop_requested = nullptr;
  train(data, o);
  expect_same_run(dir / "ref", dir / "run");
}

// Dropout's masks and BatchNorm's running statistics continue too: lenet-bn
// with two dropouts (as PyTorch's fixture in tests/data/pytorch-onnx-bn),
// resumed, draws the masks the uninterrupted run drew (each Dropout's forward
// count is in the resume state) and ends with the same running estimates and outputs.
TEST(ResumeLibrary, DropoutAndBatchNormContinueBitIdentically) {
  ScratchDir dir;
  DataSplit data;
  data.train = test::band_dataset(300, 4, 1, 28);  // 10 batches per epoch, as band_split()
  data.test = test::band_dataset(60, 4, 2, 28);
  auto options = [&](const fs::path& out) {
    TrainOptions o = quick_options(out);
    o.arch = expand_architecture("lenet-bn");
    o.arch.replace(o.arch.find("linear 84"), 0, "dropout 0.1, ");
    o.arch.replace(o.arch.find("linear 120"), 0, "dropout 0.2, ");
    return o;
  };
  ASSERT_EQ(options("").arch,
            "conv 6 k5, bn, sigmoid, avgpool 2, conv 16 k5, bn, sigmoid, avgpool 2, flatten, dropout 0.2, linear 120, "
            "bn, sigmoid, dropout 0.1, linear 84, bn, sigmoid, linear");
  train(data, options(dir / "ref"));
  for (const int64_t stop_at : {int64_t{14}, int64_t{kBatchesPerEpoch}}) {  // mid-epoch 2; after epoch 1's last batch
    SCOPED_TRACE("stopped after batch " + std::to_string(stop_at));
    const fs::path run = dir / ("run" + std::to_string(stop_at));
    TrainOptions o = options(run);
    o.stop_requested = stop_after_batches(stop_at);
    EXPECT_THROW(train(data, o), TrainingInterrupted);
    const std::string state = load_checkpoint(run / "last.safetensors").metadata.at("train_state");
    EXPECT_NE(state.find("\"dropout_forwards\":[" + std::to_string(stop_at) + "," + std::to_string(stop_at) + "]"),
              std::string::npos)
        << state.substr(0, 300);
    TrainOptions again = options(run);
    again.resume_from = run / "last.safetensors";
    train(data, again);
    expect_same_run(dir / "ref", run);  // every tensor, the running statistics included
  }
  // The running estimates moved, and the resumed model computes what the uninterrupted one does.
  LoadedModel ref = load_checkpoint(dir / "ref" / "last.safetensors");
  LoadedModel resumed = load_checkpoint(dir / "run14" / "last.safetensors");
  ASSERT_EQ(ref.model.buffers().size(), 12u);
  EXPECT_NE(ref.model.buffers()[0]->value[0], 0.0f);
  EXPECT_EQ(ref.model.buffers()[2]->value[0], 3.0f * kBatchesPerEpoch) << "num_batches_tracked";
  for (size_t b = 0; b < ref.model.buffers().size(); ++b)
    EXPECT_TRUE(std::equal(ref.model.buffers()[b]->values().begin(), ref.model.buffers()[b]->values().end(),
                           resumed.model.buffers()[b]->values().begin()))
        << ref.model.buffers()[b]->name;
  EXPECT_EQ(evaluate(ref.model, data.test, {}).loss, evaluate(resumed.model, data.test, {}).loss);
}

TEST(ResumeLibrary, AfterAHardKillTheLastFinishedEpochContinues) {
  // kill -9 gives no chance to save: last.safetensors from the end of epoch 1 is what is left.
  ScratchDir dir;
  const DataSplit data = band_split();
  train(data, quick_options(dir / "ref"));
  TrainOptions o = quick_options(dir / "run");
  o.epochs = 1;
  train(data, o);
  const std::string csv_after_epoch_1 = test::read_bytes(dir / "run" / "metrics.csv");
  o.epochs = 3;
  o.resume_from = dir / "run" / "last.safetensors";
  train(data, o);
  expect_same_run(dir / "ref", dir / "run");
  EXPECT_EQ(test::read_bytes(dir / "run" / "metrics.csv").substr(0, csv_after_epoch_1.size()), csv_after_epoch_1);
}

TEST(ResumeLibrary, RefusesOtherDataOrSettings) {
  ScratchDir dir;
  const DataSplit data = band_split();
  TrainOptions o = quick_options(dir / "run");
  o.stop_requested = stop_after_batches(4);
  EXPECT_THROW(train(data, o), TrainingInterrupted);
  const std::string saved = test::read_bytes(dir / "run" / "last.safetensors");

  auto expect_refused = [&](const DataSplit& d, const std::function<void(TrainOptions&)>& change,
                            const std::string& phrase) {
    TrainOptions r = quick_options(dir / "run");
    r.resume_from = dir / "run" / "last.safetensors";
    change(r);
    try {
      train(d, r);
      ADD_FAILURE() << "resumed; expected an error about " << phrase;
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find(phrase), std::string::npos) << e.what();
    }
    EXPECT_EQ(test::read_bytes(dir / "run" / "last.safetensors"), saved) << "a refused resume writes nothing";
  };
  DataSplit other = data;
  other.train.pixels[17] ^= 1;  // one pixel of one image
  expect_refused(
      other, [](TrainOptions&) {}, "the data differ");
  expect_refused(
      data, [](TrainOptions& r) { r.batch_size = 16; }, "batch size");
  expect_refused(
      data, [](TrainOptions& r) { r.arch = "flatten, linear"; }, "architecture");
  expect_refused(
      data, [](TrainOptions& r) { r.seed = 12; }, "seed");
  expect_refused(
      data, [](TrainOptions& r) { r.optimizer = "sgd"; }, "optimizer");
  expect_refused(
      data, [](TrainOptions& r) { r.augment = "flip"; }, "--augment");

  // A checkpoint without resume state (best.safetensors, or one saved by hand) says so.
  TrainOptions done = quick_options(dir / "done");
  done.epochs = 1;
  train(data, done);
  TrainOptions r = quick_options(dir / "done");
  r.resume_from = dir / "done" / "best.safetensors";
  try {
    train(data, r);
    ADD_FAILURE() << "resumed from a best.safetensors";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("no training state"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("best.safetensors"), std::string::npos) << e.what();
  }
  // A finished run continues only when asked for more epochs.
  r.resume_from = dir / "done" / "last.safetensors";
  r.epochs = 1;
  try {
    train(data, r);
    ADD_FAILURE() << "a finished run trained on";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("already finished its 1 epochs"), std::string::npos) << e.what();
  }
}

TEST(ResumeLibrary, AGarbledTrainStateIsOneClearError) {
  ScratchDir dir;
  const DataSplit data = band_split();
  TrainOptions o = quick_options(dir / "run");
  o.epochs = 1;
  train(data, o);
  const fs::path last = dir / "run" / "last.safetensors";
  LoadedModel m = load_checkpoint(last);
  const SafetensorsFile file = read_safetensors(last);
  auto with_state = [&](const std::string& state) {
    std::vector<NamedTensor> tensors;
    for (const auto& [name, t] : file.tensors) tensors.push_back({name, t.shape(), t.span()});
    auto meta = file.metadata;
    meta["train_state"] = state;
    test::write_bytes(dir / "bad.safetensors", encode_safetensors(tensors, meta));
  };
  for (const std::string& state : {std::string("{"), std::string("[]"), std::string(R"({"version": 1})"),
                                   file.metadata.at("train_state").substr(0, 40)}) {
    with_state(state);
    try {
      read_resume_state(dir / "bad.safetensors");
      ADD_FAILURE() << "accepted " << state;
    } catch (const std::runtime_error& e) {
      EXPECT_EQ(std::string(e.what()).rfind((dir / "bad.safetensors").string() + ": malformed training state", 0), 0u)
          << e.what();
    }
  }
  // Fields that cannot all be true (a position inside epoch 1 with one epoch already recorded).
  std::string state = file.metadata.at("train_state");
  const size_t at = state.find("\"epoch\":2");
  ASSERT_NE(at, std::string::npos) << state.substr(0, 200);
  state.replace(at, 9, "\"epoch\":1");
  with_state(state);
  EXPECT_THROW(read_resume_state(dir / "bad.safetensors"), std::runtime_error);
}

TEST(ResumeLibrary, MoreEpochsOnAFinishedRunEqualALongerRun) {
  ScratchDir dir;
  const DataSplit data = band_split();
  train(data, quick_options(dir / "ref"));
  TrainOptions o = quick_options(dir / "run");
  o.epochs = 2;
  train(data, o);
  o.epochs = 3;
  o.resume_from = dir / "run" / "last.safetensors";
  train(data, o);
  expect_same_run(dir / "ref", dir / "run");
}

// ---- the divergence guard ----

TEST(Divergence, ANanLossStopsTheRunAndKeepsTheSavedFiles) {
  ScratchDir dir;
  const DataSplit data = band_split();
  TrainOptions o = quick_options(dir / "run");
  std::string best_before, last_before, csv_before;
  // After epoch 1's files: remember them, then poison one weight (as an exploding step would).
  auto poison = [&](const EpochEvent& e) {
    if (e.history.size() != 1) return;
    best_before = test::read_bytes(e.out_dir / "best.safetensors");
    last_before = test::read_bytes(e.out_dir / "last.safetensors");
    csv_before = test::read_bytes(e.out_dir / "metrics.csv");
    e.model.flat_values().back() = NAN;  // the last layer's last bias: straight into the logits
  };
  try {
    train(data, o, {poison});
    FAIL() << "trained on with a NaN weight";
  } catch (const TrainingDiverged& e) {
    EXPECT_EQ(e.epoch, 2);
    EXPECT_EQ(e.batch, 1);
    EXPECT_EQ(e.last_good_epoch, 1);
    EXPECT_EQ(std::string(e.what()),
              "training diverged: the training loss is NaN at epoch 2, batch 1 of 10; best.safetensors (epoch 1) and "
              "last.safetensors (end of epoch 1) are kept; try a smaller learning rate than 0.01");
  }
  ASSERT_FALSE(best_before.empty());
  EXPECT_EQ(test::read_bytes(dir / "run" / "best.safetensors"), best_before);
  EXPECT_EQ(test::read_bytes(dir / "run" / "last.safetensors"), last_before);
  EXPECT_EQ(test::read_bytes(dir / "run" / "metrics.csv"), csv_before);
}

TEST(Divergence, AnInfiniteTestLossStopsBeforeTheEpochIsSaved) {
  // Weights that overflow only on the test images: the training images have
  // their first two pixels dark, so huge weights on those pixels get no
  // gradient and leave the training loss finite, while a bright test pixel
  // makes a logit infinite.
  ScratchDir dir;
  DataSplit data = band_split();
  for (int64_t i = 0; i < data.train.count; ++i) data.train.pixels[i * 64] = data.train.pixels[i * 64 + 1] = 0;
  TrainOptions o = quick_options(dir / "run");
  o.arch = "flatten, linear";
  std::string best_before;
  auto poison = [&](const EpochEvent& e) {
    if (e.history.size() != 1) return;
    best_before = test::read_bytes(e.out_dir / "best.safetensors");
    e.model.flat_values()[0] = e.model.flat_values()[1] = 3e38f;  // weight [class 0][pixels 0, 1]
  };
  try {
    train(data, o, {poison});
    FAIL() << "finished with an infinite test loss";
  } catch (const TrainingDiverged& e) {
    EXPECT_EQ(e.epoch, 2);
    EXPECT_EQ(e.batch, 0);
    EXPECT_EQ(std::string(e.what()).rfind(
                  "training diverged: the test loss after epoch 2 is NaN; best.safetensors (epoch 1)", 0),
              0u)
        << e.what();
  }
  EXPECT_EQ(test::read_bytes(dir / "run" / "best.safetensors"), best_before);
  EXPECT_EQ(read_metrics_csv(dir / "run" / "metrics.csv").size(), 1u);
  EXPECT_EQ(load_checkpoint(dir / "run" / "last.safetensors").info.epoch, 1);
}

// ---- the CLI: signals, --resume, and the messages ----

class CliResume : public ::testing::Test {
 protected:
  void SetUp() override { test::write_synthetic_idx(dir_ / "data", 600, 100, 12, 4); }
  // 600 / 32 → 19 batches per epoch.
  std::string train_args(const fs::path& out, int epochs = 3) const {
    return "train --data " + quoted(dir_ / "data") + " --arch lenet-relu --epochs " + std::to_string(epochs) +
           " --batch-size 32 --threads 1 --seed 4 --out " + quoted(out);
  }
  ScratchDir dir_;
};

constexpr int kCliBatches = 19;

TEST_F(CliResume, SelfSignalAtARandomBatchThenResumeIsBitIdentical) {
  const auto ref = test::run_cli(train_args(dir_ / "ref"));
  ASSERT_EQ(ref.code, 0) << ref.err;

  const int64_t stop_at = random_batch(1, 3 * kCliBatches - 1);
  SCOPED_TRACE("stopped after batch " + std::to_string(stop_at) + " of 57");
  const fs::path run = dir_ / "run";
  const auto r = test::run_cli(train_args(run), {}, "LENET_TEST_INTERRUPT_AFTER_BATCHES=" + std::to_string(stop_at));
  EXPECT_EQ(r.code, 130) << r.err;
  const int64_t epoch = (stop_at - 1) / kCliBatches + 1, batch = (stop_at - 1) % kCliBatches + 1;
  EXPECT_EQ(r.err,
            "lenet: stopping after this batch to save the run (Ctrl-C again quits at once)\n"
            "lenet: interrupted by SIGINT: training stopped in epoch " +
                std::to_string(epoch) + " after batch " + std::to_string(batch) + " of 19; saved " +
                (run / "last.safetensors").string() + "; continue with: lenet train --resume " + run.string() + "\n");
  if (epoch == 1)
    EXPECT_FALSE(fs::exists(run / "metrics.csv")) << "no epoch finished";
  else
    EXPECT_EQ(read_metrics_csv(run / "metrics.csv").size(), static_cast<size_t>(epoch - 1)) << "finished epochs only";

  const auto resumed = test::run_cli("train --resume " + quoted(run));
  ASSERT_EQ(resumed.code, 0) << resumed.err;
  EXPECT_TRUE(resumed.err.empty()) << resumed.err;
  EXPECT_NE(resumed.out.find("resuming from " + (run / "last.safetensors").string() + ": epoch " +
                             std::to_string(epoch) + ", after batch " + std::to_string(batch) + " of 19"),
            std::string::npos)
      << resumed.out;
  expect_same_run(dir_ / "ref", run);
  // The pictures and the report follow the whole run.
  for (const char* f : {"loss.png", "accuracy.png", "confusion.png", "report.html", "predictions.png"})
    EXPECT_TRUE(fs::exists(run / f)) << f;
}

TEST_F(CliResume, SigtermExitsWith143AndResumeFinishes) {
  const fs::path run = dir_ / "run";
  const auto r = test::run_cli(train_args(run, 1), {}, "LENET_TEST_INTERRUPT_AFTER_BATCHES=5:TERM");
  EXPECT_EQ(r.code, 143) << r.err;
  EXPECT_NE(r.err.find("interrupted by SIGTERM: training stopped in epoch 1 after batch 5 of 19"), std::string::npos)
      << r.err;
  EXPECT_FALSE(fs::exists(run / "best.safetensors")) << "no epoch finished, so no best yet";
  const auto resumed = test::run_cli("train --resume " + quoted(run));
  ASSERT_EQ(resumed.code, 0) << resumed.err;
  EXPECT_EQ(read_metrics_csv(run / "metrics.csv").size(), 1u);
  EXPECT_TRUE(fs::exists(run / "best.safetensors"));
}

// A real SIGINT from another process, at whatever batch it lands on.
TEST_F(CliResume, RealSigintFromOutsideThenResumeIsBitIdentical) {
  const auto ref = test::run_cli(train_args(dir_ / "ref", 6));
  ASSERT_EQ(ref.code, 0) << ref.err;
  const fs::path run = dir_ / "run";
  const std::string err_file = (dir_ / "stderr.txt").string();
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    const std::string cmd = "exec '" + std::string(LENET_CLI) + "' " + train_args(run, 6) + " >/dev/null 2>'" +
                            err_file + "'";
    ::execl("/bin/sh", "sh", "-c", cmd.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  // Wait until the first epoch is written, then interrupt: five epochs are left to land in.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (!fs::exists(run / "metrics.csv") && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  ASSERT_EQ(::kill(pid, SIGINT), 0);
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status)) << "killed by signal " << (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
  EXPECT_EQ(WEXITSTATUS(status), 130) << test::read_bytes(err_file);
  const std::string err = test::read_bytes(err_file);
  EXPECT_NE(err.find("lenet: interrupted by SIGINT: training stopped "), std::string::npos) << err;
  EXPECT_NE(err.find("; continue with: lenet train --resume " + run.string()), std::string::npos) << err;

  const auto resumed = test::run_cli("train --resume " + quoted(run));
  ASSERT_EQ(resumed.code, 0) << resumed.err;
  expect_same_run(dir_ / "ref", run);
}

TEST_F(CliResume, ResumeErrorsAreOneClearLine) {
  auto expect_error = [](const test::CliResult& r, int code, const std::vector<std::string>& phrases) {
    EXPECT_EQ(r.code, code) << r.err;
    EXPECT_EQ(test::line_count(r.err), 1) << r.err;
    EXPECT_EQ(r.err.rfind("lenet: error: ", 0), 0u) << r.err;
    for (const auto& p : phrases) EXPECT_NE(r.err.find(p), std::string::npos) << r.err << "lacks: " << p;
  };
  expect_error(test::run_cli("train --resume " + quoted(dir_ / "nowhere")), 1, {"nowhere", "no such run folder"});
  fs::create_directories(dir_ / "empty");
  expect_error(test::run_cli("train --resume " + quoted(dir_ / "empty")), 1, {"no last.safetensors", "start it again"});

  const fs::path run = dir_ / "run";
  ASSERT_EQ(test::run_cli(train_args(run, 1)).code, 0);
  const std::string last_before = test::read_bytes(run / "last.safetensors");
  expect_error(test::run_cli("train --resume " + quoted(run)), 1,
               {"already finished its 1 epochs", "--epochs N (more than 1)"});
  expect_error(test::run_cli("train --resume " + quoted(run) + " --epochs 2 --arch mlp"), 1,
               {"--arch cannot change when resuming", "--epochs, --lr, --threads and --data"});
  expect_error(test::run_cli("train --resume " + quoted(run) + " --epochs 2 --batch-size 8"), 1,
               {"--batch-size cannot change"});
  expect_error(test::run_cli("train --resume " + quoted(run) + " --epochs 2 --lr -1"), 1,
               {"--lr must be a positive number"});
  expect_error(test::run_cli("train --resume " + quoted(run) + " --epochs 2 --data " + quoted(dir_ / "nodata")), 1,
               {"nodata"});
  // best.safetensors is not a place to resume from; a garbled last.safetensors names itself.
  fs::copy_file(run / "best.safetensors", dir_ / "empty" / "last.safetensors");
  expect_error(test::run_cli("train --resume " + quoted(dir_ / "empty") + " --epochs 2"), 1, {"no training state"});
  test::write_bytes(dir_ / "empty" / "last.safetensors", "garbage");
  expect_error(test::run_cli("train --resume " + quoted(dir_ / "empty") + " --epochs 2"), 1,
               {(dir_ / "empty" / "last.safetensors").string(), "truncated"});
  EXPECT_EQ(test::read_bytes(run / "last.safetensors"), last_before) << "refused resumes write nothing";

  // Another thread count is allowed, with a warning that bits may differ.
  const auto r = test::run_cli("train --resume " + quoted(run) + " --epochs 2 --threads 2");
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("lenet: warning: resuming with 2 threads where the run used 1"), std::string::npos) << r.err;
  EXPECT_EQ(read_metrics_csv(run / "metrics.csv").size(), 2u);
}

TEST_F(CliResume, DivergenceNamesEpochAndBatchAndKeepsTheBestCheckpoint) {
  // From the start: nothing good to keep.
  const fs::path fresh = dir_ / "fresh";
  const auto r = test::run_cli(train_args(fresh) + " --lr 1e10");
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(test::line_count(r.err), 1) << r.err;
  const std::regex expected(
      R"(lenet: error: training diverged: the training loss is (NaN|infinite) at epoch 1, batch [0-9]+ of 19; nothing was )"
      R"(saved; try a smaller learning rate than 1e\+10, e\.g\. --lr 1e\+09 in a new run\n)");
  EXPECT_TRUE(std::regex_match(r.err, expected)) << r.err;
  EXPECT_FALSE(fs::exists(fresh / "best.safetensors"));
  EXPECT_FALSE(fs::exists(fresh / "metrics.csv"));

  // After a good epoch: continue it with a learning rate that explodes.
  const fs::path run = dir_ / "run";
  ASSERT_EQ(test::run_cli(train_args(run, 1)).code, 0);
  const std::string best = test::read_bytes(run / "best.safetensors"),
                    last = test::read_bytes(run / "last.safetensors"), csv = test::read_bytes(run / "metrics.csv");
  const auto d = test::run_cli("train --resume " + quoted(run) + " --epochs 3 --lr 1e10");
  EXPECT_EQ(d.code, 1);
  EXPECT_EQ(test::line_count(d.err), 1) << d.err;
  const std::regex later(
      R"(lenet: error: training diverged: the training loss is (NaN|infinite) at epoch 2, batch [0-9]+ of 19; )"
      R"(best\.safetensors \(epoch 1\) and last\.safetensors \(end of epoch 1\) are kept; try a smaller learning rate than )"
      R"(1e\+10, e\.g\. --lr 1e\+09 in a new run, or lenet train --resume .* --lr 1e\+09 to continue from the end of epoch 1\n)");
  EXPECT_TRUE(std::regex_match(d.err, later)) << d.err;
  EXPECT_EQ(test::read_bytes(run / "best.safetensors"), best);
  EXPECT_EQ(test::read_bytes(run / "last.safetensors"), last);
  EXPECT_EQ(test::read_bytes(run / "metrics.csv"), csv);
  // ...and the suggested recovery works: a smaller rate continues from epoch 1.
  const auto ok = test::run_cli("train --resume " + quoted(run) + " --epochs 2 --lr 0.001");
  EXPECT_EQ(ok.code, 0) << ok.err;
  EXPECT_EQ(read_metrics_csv(run / "metrics.csv").size(), 2u);
}

}  // namespace reliability_test
}  // namespace lenet

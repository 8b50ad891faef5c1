// The training run on small synthetic data: it learns, writes its files
// consistently, calls the hooks, and repeats itself bit for bit.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "capture_util.h"
#include "data_test_util.h"
#include "lenet/checkpoint.h"
#include "lenet/train.h"

namespace lenet {
namespace {

using test::ScratchDir;

DataSplit band_split() {
  DataSplit s;
  s.train = test::band_dataset(400, 4, 1);
  s.test = test::band_dataset(100, 4, 2);
  s.name = "bands";
  return s;
}

TrainOptions quick_options(const std::filesystem::path& out) {
  TrainOptions o;
  o.arch = "conv 4 k3 p1, relu, maxpool 2, flatten, linear";
  o.epochs = 4;
  o.batch_size = 32;
  o.optimizer = "adam";
  o.lr = 0.01f;
  o.seed = 5;
  o.threads = 1;  // a shared machine's cores are faster one at a time for tiny images
  o.out_dir = out;
  return o;
}

TEST(Train, LearnsAndWritesConsistentFiles) {
  ScratchDir dir;
  const DataSplit data = band_split();
  const auto history = train(data, quick_options(dir / "run"));
  ASSERT_EQ(history.size(), 4u);
  for (size_t i = 0; i < history.size(); ++i) {
    const EpochMetrics& m = history[i];
    EXPECT_EQ(m.epoch, static_cast<int>(i) + 1);
    EXPECT_GE(m.train_acc, 0.0);
    EXPECT_LE(m.train_acc, 1.0);
    EXPECT_GT(m.seconds, 0.0);
    EXPECT_GT(m.images_per_s, 0.0);
    // Accuracies are whole counts over the set sizes.
    EXPECT_DOUBLE_EQ(m.train_acc * 400, std::round(m.train_acc * 400));
    EXPECT_DOUBLE_EQ(m.test_acc * 100, std::round(m.test_acc * 100));
  }
  EXPECT_LT(history.back().train_loss, history.front().train_loss);
  EXPECT_GE(history.back().test_acc, 0.95) << "the bands are easy to tell apart";

  // metrics.csv holds exactly the returned numbers.
  const auto csv = read_metrics_csv(dir / "run" / "metrics.csv");
  ASSERT_EQ(csv.size(), history.size());
  for (size_t i = 0; i < csv.size(); ++i) {
    EXPECT_EQ(csv[i].epoch, history[i].epoch);
    EXPECT_EQ(csv[i].train_loss, history[i].train_loss);
    EXPECT_EQ(csv[i].test_acc, history[i].test_acc);
    EXPECT_EQ(csv[i].images_per_s, history[i].images_per_s);
  }

  // best.safetensors comes from the epoch with the lowest test loss, and re-evaluating it gives that loss.
  size_t best = 0;
  for (size_t i = 1; i < history.size(); ++i)
    if (history[i].test_loss < history[best].test_loss) best = i;
  LoadedModel b = load_checkpoint(dir / "run" / "best.safetensors");
  EXPECT_EQ(b.info.epoch, history[best].epoch);
  EXPECT_EQ(b.info.metrics.at("test_loss"), history[best].test_loss);
  EXPECT_EQ(b.info.class_names, data.train.class_names);
  EXPECT_EQ(b.info.dataset, "bands");
  EXPECT_EQ(b.info.input_shape, (Shape{1, 8, 8}));
  EXPECT_EQ(b.info.arch, "conv 4 k3 p1, relu, maxpool 2, flatten, linear 4");
  const Evaluation eb = evaluate(b.model, data.test, b.info.preprocessing.normalization);
  EXPECT_EQ(eb.loss, history[best].test_loss);
  EXPECT_EQ(eb.accuracy, history[best].test_acc);

  LoadedModel last = load_checkpoint(dir / "run" / "last.safetensors");
  EXPECT_EQ(last.info.epoch, 4);
  EXPECT_EQ(last.metadata.at("optimizer"), "adam");
  EXPECT_EQ(last.metadata.at("optimizer_steps"), std::to_string(4 * 13));  // 400 / 32 → 13 batches per epoch
  EXPECT_EQ(evaluate(last.model, data.test, {}).loss, history.back().test_loss);
}

TEST(Train, HooksSeeEachEpochAfterItsFilesAreWritten) {
  ScratchDir dir;
  const DataSplit data = band_split();
  TrainOptions o = quick_options(dir / "run");
  o.epochs = 3;
  std::vector<bool> bests;
  int calls = 0;
  auto hook = [&](const EpochEvent& e) {
    ++calls;
    EXPECT_EQ(e.history.size(), static_cast<size_t>(calls));
    EXPECT_EQ(e.info.epoch, calls);
    EXPECT_EQ(e.test.accuracy, e.history.back().test_acc);
    EXPECT_EQ(e.test.count, 100);
    EXPECT_EQ(e.out_dir, dir / "run");
    EXPECT_EQ(&e.data, &data);
    EXPECT_EQ(read_metrics_csv(e.out_dir / "metrics.csv").size(), static_cast<size_t>(calls));
    EXPECT_TRUE(std::filesystem::exists(e.out_dir / "best.safetensors"));
    EXPECT_EQ(load_checkpoint(e.out_dir / "last.safetensors").info.epoch, calls);
    if (e.new_best) {
      EXPECT_EQ(load_checkpoint(e.out_dir / "best.safetensors").info.epoch, calls);
    }
    // The model the hook sees is the one just evaluated.
    EXPECT_EQ(evaluate(e.model, e.data.test, e.info.preprocessing.normalization).loss, e.history.back().test_loss);
    bests.push_back(e.new_best);
  };
  const auto history = train(data, o, {hook});
  EXPECT_EQ(calls, 3);
  double lowest = INFINITY;
  for (size_t i = 0; i < history.size(); ++i) {
    EXPECT_EQ(bests[i], history[i].test_loss < lowest) << "epoch " << i + 1;
    lowest = std::min(lowest, history[i].test_loss);
  }
}

// The library prints nothing: what a run does reaches the caller through its
// observer, with the same figures train() returns.
TEST(Train, PrintsNothingAndTellsTheObserverEverything) {
  struct Recorder : TrainObserver {
    std::vector<std::string> calls;
    int64_t parameters = 0, batches_per_epoch = 0, images = 0;
    int threads = 0, last_epoch = 0;
    std::vector<int64_t> batches_seen;  // per epoch, the last batch count reported
    std::vector<double> last_batch_loss;
    std::vector<EpochMetrics> epochs;
    std::vector<bool> bests;
    EpochMetrics best;
    std::filesystem::path best_path;
    void on_start(const TrainStart& s) override {
      calls.push_back("start");
      parameters = s.parameters, threads = s.threads, batches_per_epoch = s.batches_per_epoch;
      images = s.data.train.count;
      EXPECT_EQ(s.epoch, 1);
      EXPECT_EQ(s.batches_done, 0);
      EXPECT_EQ(s.info.input_shape, (Shape{1, 8, 8}));
    }
    void on_epoch_start(int epoch) override {
      calls.push_back("epoch_start " + std::to_string(epoch));
      batches_seen.push_back(0);
      last_batch_loss.push_back(0);
    }
    void on_batch(int epoch, int64_t done, double loss, double acc) override {
      EXPECT_EQ(epoch, static_cast<int>(batches_seen.size()));
      EXPECT_EQ(done, batches_seen.back() + 1) << "one call per batch, in order";
      EXPECT_GE(acc, 0.0);
      EXPECT_LE(acc, 1.0);
      batches_seen.back() = done;
      last_batch_loss.back() = loss;
    }
    void on_evaluating(int epoch) override { calls.push_back("evaluating " + std::to_string(epoch)); }
    void on_epoch(const EpochMetrics& m, bool new_best) override {
      calls.push_back("epoch " + std::to_string(m.epoch));
      epochs.push_back(m);
      bests.push_back(new_best);
    }
    void on_end(const EpochMetrics& b, const std::filesystem::path& path) override {
      calls.push_back("end");
      best = b, best_path = path;
    }
  };
  ScratchDir dir;
  const DataSplit data = band_split();
  TrainOptions o = quick_options(dir / "run");
  o.epochs = 2;
  Recorder rec;
  o.observer = &rec;
  std::vector<EpochMetrics> history;
  const std::string printed = test::captured_output([&] { history = train(data, o); });
  EXPECT_EQ(printed, "") << "train() printed";

  EXPECT_EQ(rec.calls, (std::vector<std::string>{"start", "epoch_start 1", "evaluating 1", "epoch 1", "epoch_start 2",
                                                 "evaluating 2", "epoch 2", "end"}));
  const LoadedModel last = load_checkpoint(dir / "run" / "last.safetensors");
  EXPECT_EQ(rec.parameters, last.model.parameter_count());
  EXPECT_EQ(rec.threads, 1);
  EXPECT_EQ(rec.images, 400);
  EXPECT_EQ(rec.batches_per_epoch, 13);  // 400 / 32, the last one partial
  EXPECT_EQ(rec.batches_seen, (std::vector<int64_t>{13, 13}));
  ASSERT_EQ(rec.epochs.size(), history.size());
  size_t best = 0;
  for (size_t i = 0; i < history.size(); ++i) {
    EXPECT_EQ(rec.epochs[i].epoch, history[i].epoch);
    EXPECT_EQ(rec.epochs[i].train_loss, history[i].train_loss);
    EXPECT_EQ(rec.epochs[i].train_acc, history[i].train_acc);
    EXPECT_EQ(rec.epochs[i].test_loss, history[i].test_loss);
    EXPECT_EQ(rec.epochs[i].test_acc, history[i].test_acc);
    EXPECT_EQ(rec.epochs[i].images_per_s, history[i].images_per_s);
    // The last batch's running mean is the epoch's training loss.
    EXPECT_EQ(rec.last_batch_loss[i], history[i].train_loss);
    if (history[i].test_loss < history[best].test_loss) best = i;
  }
  EXPECT_TRUE(rec.bests[0]);
  EXPECT_EQ(rec.best.epoch, history[best].epoch);
  EXPECT_EQ(rec.best.test_loss, history[best].test_loss);
  EXPECT_EQ(rec.best_path, dir / "run" / "best.safetensors");

  // Without an observer: silent too.
  o.observer = nullptr;
  o.out_dir = dir / "run2";
  EXPECT_EQ(test::captured_output([&] { train(data, o); }), "");
}

TEST(Train, SameSeedAndThreadsGiveBitIdenticalRuns) {
  ScratchDir dir;
  const DataSplit data = band_split();
  TrainOptions o = quick_options(dir / "a");
  o.epochs = 2;
  o.threads = 2;  // the parallel kernels must still repeat themselves exactly
  const auto a = train(data, o);
  o.out_dir = dir / "b";
  const auto b = train(data, o);
  o.out_dir = dir / "c";
  o.seed = 6;
  const auto c = train(data, o);
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].train_loss, b[i].train_loss);
    EXPECT_EQ(a[i].train_acc, b[i].train_acc);
    EXPECT_EQ(a[i].test_loss, b[i].test_loss);
    EXPECT_EQ(a[i].test_acc, b[i].test_acc);
  }
  EXPECT_NE(a.back().train_loss, c.back().train_loss) << "another seed, another run";
  const SafetensorsFile fa = read_safetensors(dir / "a" / "last.safetensors");
  const SafetensorsFile fb = read_safetensors(dir / "b" / "last.safetensors");
  ASSERT_EQ(fa.tensors.size(), fb.tensors.size());
  for (size_t i = 0; i < fa.tensors.size(); ++i) {
    const Tensor& ta = fa.tensors[i].second;
    const Tensor& tb = fb.tensors[i].second;
    EXPECT_EQ(fa.tensors[i].first, fb.tensors[i].first);
    ASSERT_EQ(ta.shape(), tb.shape());
    EXPECT_EQ(std::memcmp(ta.data(), tb.data(), sizeof(float) * static_cast<size_t>(ta.numel())), 0)
        << fa.tensors[i].first;
  }
  EXPECT_NE(max_abs_diff(*read_safetensors(dir / "c" / "last.safetensors").find("0.weight"), *fa.find("0.weight")),
            0.0f);
}

TEST(Train, NormalisationIsComputedAndStored) {
  ScratchDir dir;
  const DataSplit data = band_split();
  TrainOptions o = quick_options(dir / "run");
  o.epochs = 1;
  o.normalize = true;
  o.optimizer = "sgd";
  o.lr = 0.1f;
  o.momentum = 0.9f;
  train(data, o);
  const Normalization expected = compute_normalization(data.train);
  LoadedModel m = load_checkpoint(dir / "run" / "best.safetensors");
  EXPECT_EQ(m.info.preprocessing.normalization.mean, expected.mean);
  EXPECT_EQ(m.info.preprocessing.normalization.std, expected.std);
  EXPECT_EQ(m.metadata.count("optimizer"), 0u) << "best carries no optimizer state";
  EXPECT_EQ(load_checkpoint(dir / "run" / "last.safetensors").metadata.at("optimizer"), "sgd");
  // The stored normalisation reproduces the recorded test loss.
  EXPECT_EQ(evaluate(m.model, data.test, m.info.preprocessing.normalization).loss,
            read_metrics_csv(dir / "run" / "metrics.csv")[0].test_loss);
}

TEST(Train, RejectsBadSettingsBeforeWritingAnything) {
  ScratchDir dir;
  const DataSplit data = band_split();
  auto expect_rejected = [&](const std::function<void(TrainOptions&)>& change, const std::string& phrase) {
    TrainOptions o = quick_options(dir / "never");
    change(o);
    try {
      train(data, o);
      ADD_FAILURE() << "accepted; expected an error about " << phrase;
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find(phrase), std::string::npos) << e.what();
    }
    EXPECT_FALSE(std::filesystem::exists(dir / "never")) << phrase;
  };
  expect_rejected([](TrainOptions& o) { o.epochs = 0; }, "epochs");
  expect_rejected([](TrainOptions& o) { o.batch_size = -1; }, "batch size");
  expect_rejected([](TrainOptions& o) { o.lr = 0; }, "learning rate");
  expect_rejected([](TrainOptions& o) { o.lr = NAN; }, "learning rate");
  expect_rejected([](TrainOptions& o) { o.optimizer = "rmsprop"; }, "rmsprop");
  expect_rejected([](TrainOptions& o) { o.momentum = 0.9f; }, "momentum");  // with adam
  expect_rejected([](TrainOptions& o) { o.weight_decay = -1; }, "weight decay");
  expect_rejected([](TrainOptions& o) { o.arch = "conv 4 k9, flatten, linear"; }, "architecture");
}

TEST(Evaluate, LossAccuracyAndConfusionByHand) {
  // Two pixels, two classes; a linear layer with identity weights predicts the brighter pixel.
  Dataset d;
  d.count = 4;
  d.height = 1;
  d.width = 2;
  d.class_names = {"left", "right"};
  d.pixels = {255, 0, 0, 255, 255, 0, 51, 204};
  d.labels = {0, 1, 1, 0};
  Sequential model = build_model("flatten, linear", {1, 1, 2}, 2, nullptr);
  Parameter* w = model.parameters()[0];
  w->value[0] = 1, w->value[1] = 0, w->value[2] = 0, w->value[3] = 1;
  const Evaluation ev = evaluate(model, d, {}, 3);  // a partial second batch
  EXPECT_EQ(ev.count, 4);
  EXPECT_EQ(ev.classes, 2);
  EXPECT_EQ(ev.accuracy, 0.5);
  EXPECT_EQ(ev.confusion, (std::vector<int64_t>{1, 1, 1, 1}));  // [true][predicted]
  // Cross-entropy of softmax([a, b]) for the true class: log(1 + exp(other − own)).
  const double l1 = std::log1p(std::exp(-1.0)), l3 = std::log1p(std::exp(1.0));
  const double l4 = std::log1p(std::exp(0.8 - 0.2));
  EXPECT_NEAR(ev.loss, (l1 + l1 + l3 + l4) / 4, 1e-6);
  EXPECT_EQ(ev.per_class_accuracy(), (std::vector<double>{0.5, 0.5}));

  d.class_names.push_back("unused");
  Sequential three = build_model("flatten, linear", {1, 1, 2}, 3, nullptr);
  const auto acc = evaluate(three, d, {}).per_class_accuracy();
  EXPECT_TRUE(std::isnan(acc[2])) << "a class without samples has no accuracy";
  EXPECT_THROW(evaluate(model, d, {}), std::invalid_argument) << "2 outputs for 3 classes";
}

TEST(MetricsCsv, RoundTripsExactly) {
  ScratchDir dir;
  const std::vector<EpochMetrics> h = {{1, 2.302585092994046, 0.1, 2.1, 0.2, 1.5, 40000.25},
                                       {2, 0.1 + 0.2, 1.0, 1e-300, 0.9999999999999999, 0.001, 1e9}};
  write_metrics_csv(dir / "m.csv", h);
  const std::string text = test::read_bytes(dir / "m.csv");
  EXPECT_EQ(text.substr(0, text.find('\n')), "epoch,train_loss,train_acc,test_loss,test_acc,seconds,images_per_s");
  EXPECT_NE(text.find("\n1,2.302585092994046,0.1,2.1,0.2,1.5,40000.25\n"), std::string::npos) << text;
  const auto back = read_metrics_csv(dir / "m.csv");
  ASSERT_EQ(back.size(), 2u);
  EXPECT_EQ(back[1].train_loss, 0.1 + 0.2);
  EXPECT_EQ(back[1].test_loss, 1e-300);
  EXPECT_EQ(back[1].test_acc, 0.9999999999999999);
  EXPECT_EQ(back[0].images_per_s, 40000.25);
  // Extra columns and CRLF line ends are fine.
  test::write_bytes(
      dir / "x.csv",
      "epoch,train_loss,train_acc,test_loss,test_acc,seconds,images_per_s,lr\r\n3,1,0.5,1,0.5,2,100,0.1\r\n");
  EXPECT_EQ(read_metrics_csv(dir / "x.csv").at(0).epoch, 3);
}

TEST(MetricsCsv, BrokenFilesNameTheLine) {
  ScratchDir dir;
  auto expect_bad = [&](const std::string& content, const std::vector<std::string>& phrases) {
    test::write_bytes(dir / "bad.csv", content);
    try {
      read_metrics_csv(dir / "bad.csv");
      ADD_FAILURE() << "accepted: " << content;
    } catch (const std::runtime_error& e) {
      const std::string what = e.what();
      EXPECT_NE(what.find((dir / "bad.csv").string()), std::string::npos) << what;
      for (const auto& p : phrases) EXPECT_NE(what.find(p), std::string::npos) << what << " lacks " << p;
    }
  };
  const std::string header = "epoch,train_loss,train_acc,test_loss,test_acc,seconds,images_per_s\n";
  expect_bad("", {"empty"});
  expect_bad("epoch,train_loss\n1,2\n", {"line 1", "train_acc"});
  expect_bad(header + "1,2,0.5,1,0.5,2,100\n2,2,0.5,1\n", {"line 3", "4 fields, expected 7"});
  expect_bad(header + "1,2,0.5,abc,0.5,2,100\n", {"line 2", "'test_loss' is 'abc'"});
  expect_bad(header + "1.5,2,0.5,1,0.5,2,100\n", {"line 2", "epoch"});
  EXPECT_THROW(read_metrics_csv(dir / "missing.csv"), std::runtime_error);
  test::write_bytes(dir / "header-only.csv", header);
  EXPECT_TRUE(read_metrics_csv(dir / "header-only.csv").empty());
}

}  // namespace
}  // namespace lenet

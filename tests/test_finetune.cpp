// Fine-tuning (--init, --freeze), the validation hold-out and early stopping:
// in the library and through `lenet train`, with their bad-input cases.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <functional>
#include <map>
#include <set>

#include "data_test_util.h"
#include "lenet/checkpoint.h"
#include "lenet/onnx.h"
#include "lenet/train.h"
#include "test_util.h"

namespace lenet {
namespace {

namespace fs = std::filesystem;
using test::quoted;
using test::run_cli;
using test::ScratchDir;

const fs::path kData = LENET_TEST_DATA;

std::vector<float> read_f32(const fs::path& path) {
  const std::string bytes = test::read_bytes(path);
  std::vector<float> v(bytes.size() / sizeof(float));
  std::memcpy(v.data(), bytes.data(), v.size() * sizeof(float));
  return v;
}

void expect_logits(Sequential& model, const fs::path& input, const fs::path& logits, const Shape& shape,
                   const std::string& what) {
  Tensor x(shape);
  const std::vector<float> in = read_f32(input);
  ASSERT_EQ(static_cast<int64_t>(in.size()), x.numel()) << what;
  std::copy(in.begin(), in.end(), x.data());
  const Tensor& y = model.forward(x);
  const std::vector<float> want = read_f32(logits);
  ASSERT_EQ(static_cast<int64_t>(want.size()), y.numel()) << what;
  for (size_t i = 0; i < want.size(); ++i)
    EXPECT_NEAR(y.data()[i], want[i], 1e-4 * std::max(1.0f, std::abs(want[i]))) << what << " logit " << i;
}

struct PytorchFixture {
  const char* name;
  const char* arch;
  Shape input;  // [C, H, W]
  int classes;
};
const PytorchFixture kFixtures[] = {{"lenet-sigmoid-avg-28x28-10", "lenet", {1, 28, 28}, 10},
                                    {"lenet-sigmoid-max-28x28-10", "lenet-max", {1, 28, 28}, 10},
                                    {"lenet-relu-max-28x20-9", "lenet-relu", {1, 28, 20}, 9}};

TEST(InitWeights, EachPytorchOnnxFixtureReproducesItsLogits) {
  for (const auto& f : kFixtures) {
    Rng rng(1);
    Sequential model = build_model(f.arch, f.input, f.classes, &rng);
    const fs::path dir = kData / "pytorch-onnx";
    const InitReport r = init_weights_from(model, dir / (std::string(f.name) + ".onnx"));
    EXPECT_EQ(r.copied, 10) << f.name;  // 5 layers with weight and bias
    EXPECT_TRUE(r.reinitialised.empty()) << r.reinitialised;
    expect_logits(model, dir / (std::string(f.name) + ".input.f32"), dir / (std::string(f.name) + ".logits.f32"),
                  {8, f.input[0], f.input[1], f.input[2]}, f.name);
  }
}

TEST(InitWeights, PytorchStateDictInSafetensorsReproducesItsLogits) {
  const fs::path dir = kData / "torch-state-dict";
  Rng rng(2);
  Sequential model = build_model("conv 4 k5 p2, relu, maxpool 2, flatten, linear 16, relu, linear", {1, 16, 16}, 3,
                                 &rng);
  const InitReport r = init_weights_from(model, dir / "small-cnn.safetensors");
  EXPECT_EQ(r.copied, 6);
  expect_logits(model, dir / "small-cnn.input.f32", dir / "small-cnn.logits.f32", {4, 1, 16, 16}, "state_dict");
}

TEST(InitWeights, OurOwnCheckpointAndOnnxRoundTrip) {
  ScratchDir dir;
  Rng rng(3);
  Sequential a = build_model("lenet", {1, 28, 28}, 10, &rng);
  ModelInfo info;
  info.arch = a.spec();
  info.input_shape = {1, 28, 28};
  save_checkpoint(dir / "a.safetensors", a, info);
  export_onnx(dir / "a.onnx", a, info);
  for (const char* file : {"a.safetensors", "a.onnx"}) {
    Rng other(4);
    Sequential b = build_model("lenet", {1, 28, 28}, 10, &other);
    init_weights_from(b, dir / file);
    EXPECT_TRUE(std::equal(a.flat_values().begin(), a.flat_values().end(), b.flat_values().begin())) << file;
  }
}

// BatchNorm's running statistics come with the weights: PyTorch's batch-norm
// LeNet (Conv+BN folded or not) reproduces its logits before any training.
TEST(InitWeights, PytorchBatchNormOnnxReproducesItsLogitsWithItsRunningStatistics) {
  const fs::path dir = kData / "pytorch-onnx-bn";
  for (const char* file : {"lenet-bn-unfolded.onnx", "lenet-bn-folded.onnx"}) {
    const LoadedModel source = load_model(dir / file);  // its architecture, as `lenet train --init` takes it
    Rng rng(8);
    Sequential model = build_model(source.info.arch, {1, 28, 28}, 10, &rng);
    const InitReport r = init_weights_from(model, dir / file);
    // Every parameter and every buffer (running mean, variance, batches tracked) is copied.
    EXPECT_EQ(r.copied, static_cast<int64_t>(model.parameters().size() + model.buffers().size())) << file;
    ASSERT_FALSE(model.buffers().empty()) << file;
    for (const Parameter* b : model.buffers())
      for (const Parameter* s : source.model.buffers())
        if (s->name == b->name) {
          EXPECT_TRUE(std::equal(b->values().begin(), b->values().end(), s->values().begin()))
              << file << " " << b->name;
        }
    model.eval();
    expect_logits(model, dir / "input.f32", dir / "logits.f32", {8, 1, 28, 28}, file);
  }
}

// Our own lenet-bn, trained a few steps so its running statistics moved: from
// its checkpoint and from its ONNX export, a fresh model evaluates to the very same logits.
TEST(InitWeights, OurLenetBnCheckpointAndOnnxGiveTheSameFirstEvaluation) {
  ScratchDir dir;
  Rng rng(9);
  Sequential a = build_model("lenet-bn", {1, 28, 28}, 10, &rng);
  for (int step = 0; step < 3; ++step) {
    const Tensor x = test::random_tensor({16, 1, 28, 28}, rng, 0, 1);
    const Tensor& z = a.forward(x);
    a.zero_grad();
    a.backward(test::random_tensor(z.shape(), rng));
    for (Parameter* p : a.parameters())
      for (int64_t i = 0; i < p->numel(); ++i) p->value[i] -= 0.5f * p->grad[i];
  }
  a.eval();
  ASSERT_NE(a.buffers()[0]->value[0], 0.0f) << "the running mean moved";
  ModelInfo info;
  info.arch = a.spec();
  info.input_shape = {1, 28, 28};
  info.class_names = {"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"};
  save_checkpoint(dir / "a.safetensors", a, info);
  export_onnx(dir / "a.onnx", a, info);
  const Tensor x = test::random_tensor({5, 1, 28, 28}, rng, 0, 1);
  const Tensor want = a.forward(x);
  for (const char* file : {"a.safetensors", "a.onnx"}) {
    Rng other(10);
    Sequential b = build_model("lenet-bn", {1, 28, 28}, 10, &other);
    const InitReport r = init_weights_from(b, dir / file);
    EXPECT_EQ(r.copied, 10 + 8 + 12) << file << ": 5 weights and biases, 4 BatchNorms' weight, bias and 3 buffers";
    const auto want_buffers = a.buffers();
    const auto got_buffers = b.buffers();
    ASSERT_EQ(got_buffers.size(), want_buffers.size());
    for (size_t i = 0; i < got_buffers.size(); ++i) {
      if (std::string(file) == "a.onnx" && got_buffers[i]->name.ends_with("num_batches_tracked"))
        continue;  // not in ONNX
      EXPECT_TRUE(std::equal(got_buffers[i]->values().begin(), got_buffers[i]->values().end(),
                             want_buffers[i]->values().begin()))
          << file << " " << got_buffers[i]->name;
    }
    b.eval();
    EXPECT_EQ(max_abs_diff(b.forward(x), want), 0.0f) << file;
  }
}

TEST(InitWeights, AnotherClassCountStartsOnlyTheLastLayerAfresh) {
  Rng rng(5);
  Sequential model = build_model("lenet", {1, 28, 28}, 4, &rng);
  const std::vector<float> fresh(model.flat_values().begin(), model.flat_values().end());
  const fs::path file = kData / "pytorch-onnx" / "lenet-sigmoid-avg-28x28-10.onnx";
  const InitReport r = init_weights_from(model, file);
  EXPECT_EQ(r.copied, 8);
  EXPECT_NE(r.reinitialised.find("11.weight [10, 84]"), std::string::npos) << r.reinitialised;
  EXPECT_NE(r.reinitialised.find("11.bias [10]"), std::string::npos) << r.reinitialised;
  EXPECT_NE(r.reinitialised.find("10 classes there, 4 here"), std::string::npos) << r.reinitialised;
  LoadedModel src = load_model(file);
  for (const Parameter* p : model.parameters()) {
    const bool last = p->name.starts_with("11.");
    const Parameter* s = nullptr;
    for (const Parameter* q : src.model.parameters())
      if (q->name == p->name) s = q;
    ASSERT_NE(s, nullptr);
    const auto begin = static_cast<size_t>(p->value - model.flat_values().data());
    if (last)
      EXPECT_TRUE(std::equal(p->values().begin(), p->values().end(), fresh.begin() + static_cast<ptrdiff_t>(begin)))
          << p->name << " keeps its fresh weights";
    else
      EXPECT_TRUE(std::equal(p->values().begin(), p->values().end(), s->values().begin())) << p->name;
  }
}

TEST(InitWeights, AnotherArchitectureIsRefusedNamingTensorAndShapes) {
  auto refused = [](const std::string& arch, const Shape& input, int classes, const fs::path& file,
                    const std::vector<std::string>& phrases) {
    Rng rng(6);
    Sequential model = build_model(arch, input, classes, &rng);
    const std::vector<float> before(model.flat_values().begin(), model.flat_values().end());
    try {
      init_weights_from(model, file);
      ADD_FAILURE() << arch << " accepted " << file;
    } catch (const std::invalid_argument& e) {
      const std::string what = e.what();
      EXPECT_NE(what.find(file.string()), std::string::npos) << what;
      for (const auto& p : phrases) EXPECT_NE(what.find(p), std::string::npos) << what << " lacks " << p;
    }
    EXPECT_TRUE(std::equal(before.begin(), before.end(), model.flat_values().begin())) << "model unchanged";
  };
  const fs::path onnx = kData / "pytorch-onnx";
  // 28x20 images flatten to 240 features, 28x28 ones to 400.
  refused("lenet-relu", {1, 28, 28}, 9, onnx / "lenet-relu-max-28x20-9.onnx",
          {"'7.weight'", "[120, 240]", "[120, 400]"});
  refused("mlp", {1, 28, 28}, 10, onnx / "lenet-sigmoid-avg-28x28-10.onnx", {"no tensor '1.weight'"});
  refused("conv 6 k5 p2, sigmoid, avgpool 2, flatten, linear", {1, 28, 28}, 10,
          onnx / "lenet-sigmoid-avg-28x28-10.onnx", {"'4.weight'"});
  refused("conv 4 k5 p2, relu, maxpool 2, flatten, linear 16, relu, linear 3, relu, linear", {1, 16, 16}, 3,
          kData / "torch-state-dict" / "small-cnn.safetensors", {"no tensor '8.weight' [3, 3]"});
  Rng rng(7);
  Sequential m = build_model("lenet", {1, 28, 28}, 10, &rng);
  EXPECT_THROW(init_weights_from(m, kData / "no-such-file.onnx"), std::runtime_error);
}

// ---- the validation hold-out ----

TEST(HoldOutValidation, SeededStratifiedAndComplete) {
  ScratchDir dir;
  test::write_synthetic_idx(dir / "d", 300, 40, 8, 4);  // 75 per class
  DataSplit data = load_dataset(dir / "d");
  const Dataset original = data.train;
  hold_out_validation(data, 0.2, 11);
  ASSERT_EQ(data.val.count, 60);
  ASSERT_EQ(data.train.count, 240);
  std::map<int, int> per_class;
  for (int32_t l : data.val.labels) ++per_class[l];
  for (int c = 0; c < 4; ++c) EXPECT_EQ(per_class[c], 15) << c;
  // Every original image ends up in exactly one part.
  const auto size = static_cast<size_t>(original.sample_size());
  std::multiset<std::string> all, parts;
  for (int64_t i = 0; i < original.count; ++i)
    all.insert(std::string(reinterpret_cast<const char*>(original.pixels.data()) + i * size, size) +
               char(original.labels[static_cast<size_t>(i)]));
  for (const Dataset* d : {&data.train, &data.val})
    for (int64_t i = 0; i < d->count; ++i)
      parts.insert(std::string(reinterpret_cast<const char*>(d->pixels.data()) + i * size, size) +
                   char(d->labels[static_cast<size_t>(i)]));
  EXPECT_EQ(all, parts);
  // The same seed picks the same images; another seed others.
  DataSplit again = load_dataset(dir / "d"), other = load_dataset(dir / "d");
  hold_out_validation(again, 0.2, 11);
  hold_out_validation(other, 0.2, 12);
  EXPECT_EQ(again.val.pixels, data.val.pixels);
  EXPECT_NE(other.val.pixels, data.val.pixels);
}

TEST(HoldOutValidation, AClassLeftEmptyIsRefused) {
  ScratchDir dir;
  test::write_synthetic_idx(dir / "d", 40, 8, 8, 4);  // 10 per class
  for (double f : {0.01, 0.97}) {
    DataSplit data = load_dataset(dir / "d");
    try {
      hold_out_validation(data, f, 1);
      ADD_FAILURE() << f;
    } catch (const std::invalid_argument& e) {
      const std::string what = e.what();
      EXPECT_NE(what.find("leaves class '0' empty"), std::string::npos) << what;
      EXPECT_NE(what.find(f < 0.5 ? "validation" : "training"), std::string::npos) << what;
      EXPECT_NE(what.find("10 training images"), std::string::npos) << what;
    }
    EXPECT_EQ(data.val.count, 0);
    EXPECT_EQ(data.train.count, 40) << "unchanged after a refusal";
  }
}

// ---- train(): best on validation, the test set scored once per best and at the end; patience ----

TrainOptions quick(const fs::path& out) {
  TrainOptions o;
  o.arch = "conv 4 k3 p1, relu, maxpool 2, flatten, linear";
  o.epochs = 6;
  o.batch_size = 32;
  o.lr = 0.01f;
  o.seed = 5;
  o.threads = 1;
  o.out_dir = out;
  return o;
}

struct Recorder : TrainObserver {
  std::vector<std::pair<int, int>> early;
  void on_early_stop(int epoch, int waited) override { early.emplace_back(epoch, waited); }
};

TEST(TrainValidation, BestIsChosenOnValidationLossAndTestIsScoredOnlyThen) {
  ScratchDir dir;
  DataSplit data;
  data.train = test::band_dataset(400, 4, 1);
  data.test = test::band_dataset(100, 4, 2);
  hold_out_validation(data, 0.25, 3);
  TrainOptions o = quick(dir / "run");
  o.lr = 0.05f;
  const auto h = train(data, o);
  ASSERT_EQ(h.size(), 6u);
  double best = INFINITY;
  int best_epoch = 0;
  for (const EpochMetrics& m : h) {
    ASSERT_TRUE(std::isfinite(m.val_loss)) << m.epoch;
    const bool new_best = m.val_loss < best;
    if (new_best) best = m.val_loss, best_epoch = m.epoch;
    EXPECT_EQ(std::isfinite(m.test_loss), new_best || m.epoch == 6) << "epoch " << m.epoch;
  }
  const LoadedModel saved = load_checkpoint(dir / "run" / "best.safetensors");
  EXPECT_EQ(saved.info.epoch, best_epoch);
  EXPECT_EQ(saved.info.metrics.at("val_loss"), best);
  // The model in best.safetensors has that validation loss.
  LoadedModel reloaded = load_checkpoint(dir / "run" / "best.safetensors");
  EXPECT_NEAR(evaluate(reloaded.model, data.val, {}).loss, best, 1e-12);
  const auto csv = read_metrics_csv(dir / "run" / "metrics.csv");
  ASSERT_EQ(csv.size(), h.size());
  for (size_t i = 0; i < h.size(); ++i) {
    EXPECT_EQ(csv[i].val_loss, h[i].val_loss);
    EXPECT_EQ(std::isnan(csv[i].test_loss), std::isnan(h[i].test_loss));
  }
  const std::string text = test::read_bytes(dir / "run" / "metrics.csv");
  EXPECT_EQ(text.substr(0, text.find('\n')),
            "epoch,train_loss,train_acc,test_loss,test_acc,seconds,images_per_s,lr,val_loss,val_acc");
}

TEST(TrainValidation, PatienceStopsWithEverythingWritten) {
  // lr 1e-30 moves no float weight: every epoch's loss equals the first, so none is better.
  for (bool validating : {true, false}) {
    ScratchDir dir;
    DataSplit data;
    data.train = test::band_dataset(200, 4, 1);
    data.test = test::band_dataset(60, 4, 2);
    if (validating) hold_out_validation(data, 0.2, 1);
    TrainOptions o = quick(dir / "run");
    o.optimizer = "sgd";
    o.lr = 1e-30f;
    o.epochs = 10;
    o.patience = 2;
    Recorder rec;
    o.observer = &rec;
    const auto h = train(data, o);
    ASSERT_EQ(h.size(), 3u) << "epoch 1 is the best; 2 and 3 are not better";
    ASSERT_EQ(rec.early.size(), 1u);
    EXPECT_EQ(rec.early[0], std::make_pair(3, 2));
    EXPECT_EQ(read_metrics_csv(dir / "run" / "metrics.csv").size(), 3u);
    EXPECT_EQ(load_checkpoint(dir / "run" / "best.safetensors").info.epoch, 1);
    EXPECT_EQ(load_checkpoint(dir / "run" / "last.safetensors").info.epoch, 3);
    EXPECT_TRUE(std::isfinite(h.back().test_loss)) << "the test set is scored at the end";
    const ResumeState state = read_resume_state(dir / "run" / "last.safetensors");
    EXPECT_TRUE(state.stopped_early);
    EXPECT_TRUE(state.complete());
    TrainOptions more = o;
    more.resume_from = dir / "run" / "last.safetensors";
    EXPECT_THROW(train(data, more), std::invalid_argument);
  }
}

TEST(TrainFreeze, FrozenLayersKeepTheirWeightsAndHaveNoOptimizerState) {
  ScratchDir dir;
  DataSplit data;
  data.train = test::band_dataset(200, 4, 1);
  data.test = test::band_dataset(60, 4, 2);
  TrainOptions o = quick(dir / "base");
  o.epochs = 1;
  train(data, o);
  TrainOptions f = quick(dir / "frozen");
  f.epochs = 2;
  f.init_from = dir / "base" / "best.safetensors";
  f.freeze = 1;  // the conv
  f.clip_grad_norm = 0.5f;
  train(data, f);
  const LoadedModel base = load_checkpoint(dir / "base" / "best.safetensors");
  const LoadedModel last = load_checkpoint(dir / "frozen" / "last.safetensors");
  const SafetensorsFile file = read_safetensors(dir / "frozen" / "last.safetensors");
  auto values = [&](const LoadedModel& m, const std::string& name) {
    for (const Parameter* p : m.model.parameters())
      if (p->name == name) return std::vector<float>(p->values().begin(), p->values().end());
    return std::vector<float>{};
  };
  EXPECT_EQ(values(base, "0.weight"), values(last, "0.weight"));
  EXPECT_EQ(values(base, "0.bias"), values(last, "0.bias"));
  EXPECT_NE(values(base, "4.weight"), values(last, "4.weight")) << "the rest trains";
  const int64_t linear = base.model[4].parameters()[0].numel() + base.model[4].parameters()[1].numel();
  ASSERT_NE(file.find("optim.adam_m"), nullptr);
  EXPECT_EQ(file.find("optim.adam_m")->numel(), linear) << "optimizer state for the unfrozen layers only";
  EXPECT_EQ(last.metadata.at("init_from"), (dir / "base" / "best.safetensors").string());
  TrainOptions beyond = quick(dir / "beyond");
  beyond.freeze = 6;
  EXPECT_THROW(train(data, beyond), std::invalid_argument);
}

TEST(TrainFinetune, BadSettingsAreRefusedBeforeWritingAnything) {
  ScratchDir dir;
  DataSplit data;
  data.train = test::band_dataset(80, 4, 1);
  data.test = test::band_dataset(20, 4, 2);
  auto expect_rejected = [&](const std::function<void(TrainOptions&)>& change, const std::string& phrase) {
    TrainOptions o = quick(dir / "never");
    change(o);
    try {
      train(data, o);
      ADD_FAILURE() << "accepted; expected an error about " << phrase;
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find(phrase), std::string::npos) << e.what();
    }
    EXPECT_FALSE(fs::exists(dir / "never")) << phrase;
  };
  expect_rejected([](TrainOptions& o) { o.lr_schedule = "cosine:x"; }, "'cosine:x'");
  expect_rejected([](TrainOptions& o) { o.warmup_epochs = 6; }, "--warmup-epochs 6");
  expect_rejected([](TrainOptions& o) { o.freeze = 9; }, "--freeze 9 is beyond the model's 5 layers");
  expect_rejected([](TrainOptions& o) { o.patience = -1; }, "--patience");
  expect_rejected([](TrainOptions& o) { o.clip_grad_norm = -2; }, "clip");
  expect_rejected([](TrainOptions& o) { o.optimizer = "adamw", o.momentum = 0.9f; }, "momentum");
  expect_rejected([](TrainOptions& o) { o.arch = "flatten, linear 8, bn, relu, linear", o.batch_size = 1; },
                  "Expected more than 1 value per channel when training");
  expect_rejected([](TrainOptions& o) { o.arch = "flatten, linear 8, bn, relu, linear", o.batch_size = 79; },
                  "got input size [1, 8]");  // 80 images: a last batch of one
  expect_rejected([](TrainOptions& o) { o.init_from = kData / "pytorch-onnx" / "lenet-relu-max-28x20-9.onnx"; },
                  "'0.weight' is [6, 1, 5, 5] there but [4, 1, 3, 3] here");
}

// ---- the CLI ----

std::string base_args(const fs::path& data, const fs::path& out) {
  return "train --data " + quoted(data) + " --epochs 2 --batch-size 32 --threads 1 --seed 2 --out " + quoted(out);
}

TEST(CliFinetune, FromAPytorchOnnxFileToAnotherClassCount) {
  ScratchDir dir;
  test::write_synthetic_idx(dir / "d", 240, 80, 28, 4);
  const fs::path onnx = kData / "pytorch-onnx" / "lenet-sigmoid-max-28x28-10.onnx";
  const auto r = run_cli(base_args(dir / "d", dir / "run") + " --epochs 4 --init " + quoted(onnx) +
                         " --freeze 3 --lr 0.01 --lr-schedule cosine --clip-grad-norm 5 --val-split 0.25 --patience 3");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(r.err.empty()) << r.err;
  EXPECT_NE(r.out.find("weights from " + onnx.string() + " (8 tensors)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("re-initialised 11.weight [10, 84] and 11.bias [10]: 10 classes there, 4 here"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("frozen: the first 3 layers"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("validation: 60 training images held out"), std::string::npos) << r.out;
  const auto m = read_metrics_csv(dir / "run" / "metrics.csv");
  ASSERT_EQ(m.size(), 4u);
  EXPECT_NEAR(m[0].lr, 0.01, 1e-9);
  EXPECT_NEAR(m[2].lr, 0.005, 1e-9);  // cosine over 4 epochs
  EXPECT_GT(m[3].val_acc, 0.5) << "the fine-tune learns the 4 bands";
  const LoadedModel best = load_checkpoint(dir / "run" / "best.safetensors");
  EXPECT_EQ(best.info.arch,
            "conv 6 k5 p2, sigmoid, maxpool 2, conv 16 k5, sigmoid, maxpool 2, flatten, linear 120, "
            "sigmoid, linear 84, sigmoid, linear 4");
  EXPECT_EQ(best.metadata.at("init_from"), onnx.string());
  const LoadedModel src = load_model(onnx);
  EXPECT_TRUE(std::equal(src.model.parameters()[0]->values().begin(), src.model.parameters()[0]->values().end(),
                         best.model.parameters()[0]->values().begin()))
      << "the frozen conv is PyTorch's";
  // The report shows the learning rate and the validation columns.
  const std::string html = test::read_bytes(dir / "run" / "report.html");
  EXPECT_NE(html.find("<th>val loss</th>"), std::string::npos);
  EXPECT_NE(html.find("<th>lr</th>"), std::string::npos);
  // Stopped and resumed, the run keeps its settings and its hold-out.
  ScratchDir dir2;
  const auto s = run_cli(base_args(dir / "d", dir2 / "run") + " --init " + quoted(onnx) +
                             " --freeze 3 --lr 0.01 --val-split 0.25 --optimizer adamw",
                         {}, "LENET_TEST_INTERRUPT_AFTER_BATCHES=3");
  ASSERT_EQ(s.code, 130) << s.err;
  // An early-stopped run has nothing to continue.
  ScratchDir dir3;
  const auto p = run_cli(base_args(dir / "d", dir3 / "run") + " --epochs 5 --optimizer sgd --lr 1e-30 --patience 1");
  ASSERT_EQ(p.code, 0) << p.err;
  EXPECT_NE(p.out.find("stopping early after epoch 2: 1 epochs without a lower test loss"), std::string::npos) << p.out;
  EXPECT_EQ(read_metrics_csv(dir3 / "run" / "metrics.csv").size(), 2u);
  test::expect_error_line(run_cli("train --resume " + quoted(dir3 / "run") + " --epochs 9"),
                          {"stopped early after epoch 2 (--patience 1); there is nothing to continue"}, "resume");
  const auto c = run_cli("train --resume " + quoted(dir2 / "run"));
  ASSERT_EQ(c.code, 0) << c.err;
  EXPECT_NE(c.out.find("validation: 60 training images held out"), std::string::npos) << c.out;
  EXPECT_EQ(read_metrics_csv(dir2 / "run" / "metrics.csv").size(), 2u);
  EXPECT_EQ(load_checkpoint(dir2 / "run" / "last.safetensors").metadata.at("init_from"), onnx.string());
}

TEST(CliFinetune, BadInputIsOneLineAndLeavesNoRunBehind) {
  ScratchDir dir;
  test::write_synthetic_idx(dir / "d", 40, 20, 28, 4);  // 10 training images per class
  const fs::path onnx = kData / "pytorch-onnx";
  const std::vector<std::pair<std::string, std::vector<std::string>>> cases = {
      {"--arch lenet-relu --init " + quoted(onnx / "lenet-relu-max-28x20-9.onnx"),
       {"'7.weight' is [120, 240] there but [120, 400] here", "not a model of this architecture"}},
      {"--init " + quoted(kData / "torch-state-dict" / "small-cnn.safetensors"),
       {"'0.weight' is [4, 1, 5, 5] there but [6, 1, 5, 5] here"}},
      {"--lr-schedule step:x:0.5", {"--lr-schedule 'step:x:0.5'", "step size 'x'"}},
      {"--lr-schedule warm", {"unknown schedule 'warm'"}},
      {"--lr-schedule cosine --warmup-epochs 2", {"--warmup-epochs 2 leaves none of the 2 epochs"}},
      {"--init " + quoted(onnx / "lenet-sigmoid-avg-28x28-10.onnx") + " --freeze 13",
       {"--freeze 13 is beyond the 12 layers"}},
      {"--patience 0", {"--patience must be a positive number of epochs, got 0"}},
      {"--val-split 0.01",
       {"--val-split 0.01 leaves class '0' empty in the validation set (it has 10 training images)"}},
      {"--clip-grad-norm -1", {"--clip-grad-norm must be a positive number"}},
      {"--optimizer adamx", {"sgd, adam or adamw"}},
      {"--arch 'flatten, linear 8, bn, relu, linear' --batch-size 1",
       {"layer 3 (bn)", "Expected more than 1 value per channel when training"}},
      {"--arch 'flatten, linear 8, bn, relu, linear' --batch-size 13",  // 40 = 3·13 + a last batch of one
       {"layer 3 (bn)", "got input size [1, 8]"}},
  };
  for (const auto& [flags, phrases] : cases) {
    const fs::path out = dir / "run";
    const auto r = run_cli(base_args(dir / "d", out) + " " + flags);
    test::expect_error_line(r, phrases, flags);
    std::error_code ec;
    EXPECT_FALSE(fs::exists(out, ec)) << flags << ": nothing written, not even the --out folder";
    fs::remove_all(out, ec);
  }
}

}  // namespace
}  // namespace lenet

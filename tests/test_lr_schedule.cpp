// Learning-rate schedules, AdamW and gradient clipping against PyTorch's own
// numbers (tests/data/torch-optim/, written by make_torch_optim.py), and a
// scheduled run that is interrupted and resumed.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "data_test_util.h"
#include "lenet/optim.h"
#include "lenet/train.h"
#include "test_util.h"

namespace lenet {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

json fixture(const char* name) {
  const fs::path path = fs::path(LENET_TEST_DATA) / "torch-optim" / name;
  std::ifstream in(path);
  if (!in) throw std::runtime_error("missing fixture " + path.string());
  return json::parse(in);
}

TEST(LrSchedule, EveryBatchMatchesTorchOptimLrScheduler) {
  const json cases = fixture("lr-schedules.json").at("cases");
  ASSERT_EQ(cases.size(), 12u);  // 3 configurations of each of the 4 schedules
  for (const json& c : cases) {
    const std::string text = c.at("schedule");
    const int warmup = c.at("warmup_epochs"), epochs = c.at("epochs");
    const int64_t batches = c.at("batches");
    const double base = c.at("lr");
    const LrSchedule s = parse_lr_schedule(text, warmup);
    EXPECT_EQ(s.per_batch(), text.starts_with("onecycle")) << text;
    const std::vector<double> expected = c.at("lrs");
    ASSERT_EQ(expected.size(), static_cast<size_t>(epochs * batches)) << text;
    for (int e = 0; e < epochs; ++e)
      for (int64_t b = 0; b < batches; ++b) {
        const double want = expected[static_cast<size_t>(e * batches + b)];
        EXPECT_NEAR(s.lr(base, e, b, epochs, batches), want, 1e-12 + 1e-12 * std::abs(want))
            << text << " warm-up " << warmup << ", epoch " << e << ", batch " << b;
      }
  }
}

TEST(LrSchedule, BadTextIsOneLineNamingIt) {
  for (const char* bad : {"step", "step:3", "step:0:0.5", "step:3:x", "step:3:-1", "multistep:5,2:0.1",
                          "multistep::0.1", "multistep:2,2:0.1", "cosine:a", "cosine:1:2", "onecycle", "onecycle:0",
                          "exponential:0.9", "step:3:0.5:1", "cosine:-1"}) {
    try {
      parse_lr_schedule(bad);
      ADD_FAILURE() << "accepted " << bad;
    } catch (const std::invalid_argument& e) {
      const std::string what = e.what();
      EXPECT_NE(what.find(std::string("'") + bad + "'"), std::string::npos) << what;
      EXPECT_EQ(what.find('\n'), std::string::npos) << what;
    }
  }
  EXPECT_THROW(parse_lr_schedule("onecycle:0.1", 2), std::invalid_argument);  // warms up itself
  EXPECT_THROW(parse_lr_schedule("", -1), std::invalid_argument);
  EXPECT_THROW(check_lr_schedule(parse_lr_schedule("cosine", 5), 5), std::invalid_argument);
  EXPECT_NO_THROW(check_lr_schedule(parse_lr_schedule("cosine", 4), 5));
  EXPECT_EQ(parse_lr_schedule("").lr(0.5, 7, 3, 10, 5), 0.5);  // constant
}

TEST(AdamW, StepsMatchTorchOptimAdamW) {
  const json f = fixture("optim.json");
  const std::vector<float> w0 = f.at("w0");
  const std::vector<std::vector<float>> grads = f.at("grads");
  for (const json& c : f.at("adamw")) {
    std::vector<float> w = w0, g(w0.size());
    AdamOptions o;
    o.lr = c.at("lr");
    o.weight_decay = c.at("weight_decay");
    o.decoupled_weight_decay = true;
    Adam opt(std::span<float>(w), std::span<float>(g), o);
    EXPECT_EQ(opt.name(), "adamw");
    const std::vector<std::vector<float>> steps = c.at("steps");
    for (size_t s = 0; s < steps.size(); ++s) {
      g = grads[s];
      opt.step();
      for (size_t i = 0; i < w.size(); ++i)
        EXPECT_NEAR(w[i], steps[s][i], 2e-6f) << "lr " << o.lr << " wd " << o.weight_decay << " step " << s + 1;
    }
  }
}

TEST(AdamW, DecayIsDecoupledFromTheGradient) {
  // With a zero gradient Adam's moments stay zero: AdamW only shrinks w by lr·wd, Adam(L2) moves by ~lr.
  std::vector<float> w = {2.0f}, g = {0.0f};
  Adam adamw(std::span<float>(w), std::span<float>(g),
             {.lr = 0.1f, .weight_decay = 0.5f, .decoupled_weight_decay = true});
  adamw.step();
  EXPECT_FLOAT_EQ(w[0], 2.0f * (1 - 0.1f * 0.5f));
  std::vector<float> w2 = {2.0f}, g2 = {0.0f};
  Adam adam(std::span<float>(w2), std::span<float>(g2), {.lr = 0.1f, .weight_decay = 0.5f});
  adam.step();
  EXPECT_NEAR(w2[0], 2.0f - 0.1f, 1e-6f);
}

TEST(ClipGradNorm, MatchesTorchClipGradNorm) {
  const json optim = fixture("optim.json");  // kept alive: a range-for over .at() of a temporary dangles
  for (const json& c : optim.at("clip_grad_norm")) {
    std::vector<float> g = c.at("grads");
    const std::vector<float> want = c.at("clipped");
    const double norm = clip_grad_norm(std::span<float>(g), c.at("max_norm").get<double>());
    EXPECT_NEAR(norm, c.at("norm").get<double>(), 1e-5);
    for (size_t i = 0; i < g.size(); ++i) EXPECT_NEAR(g[i], want[i], 1e-6f) << "max_norm " << c.at("max_norm");
  }
  std::vector<float> g = {1};
  EXPECT_THROW(clip_grad_norm(std::span<float>(g), 0), std::invalid_argument);
}

// ---- through train(): the lr of every epoch in the history, and across a resume ----

TrainOptions scheduled(const fs::path& out, const std::string& schedule, int warmup, int epochs) {
  TrainOptions o;
  o.arch = "flatten, linear";
  o.epochs = epochs;
  o.batch_size = 32;  // 224 images: 7 batches per epoch
  o.optimizer = "sgd";
  o.lr = 0.001f;
  o.momentum = 0.9f;
  o.seed = 3;
  o.threads = 1;
  o.out_dir = out;
  o.lr_schedule = schedule;
  o.warmup_epochs = warmup;
  return o;
}

TEST(LrSchedule, TrainRecordsEachEpochsLrAndResumesOnSchedule) {
  const json cases = fixture("lr-schedules.json").at("cases");
  DataSplit data;
  data.train = test::band_dataset(224, 4, 1);
  data.test = test::band_dataset(40, 4, 2);
  data.name = "bands";
  for (const char* which : {"onecycle:0.1", "cosine:0.001"}) {
    const json* c = nullptr;
    for (const json& x : cases)
      if (x.at("schedule") == which) c = &x;
    ASSERT_NE(c, nullptr);
    const int epochs = c->at("epochs"), warmup = c->at("warmup_epochs");
    const std::vector<double> lrs = c->at("lrs");
    const int64_t per_epoch = c->at("batches");
    test::ScratchDir dir;
    TrainOptions o = scheduled(dir / "whole", which, warmup, epochs);
    o.lr = c->at("lr").get<float>();
    const auto whole = train(data, o);
    ASSERT_EQ(whole.size(), static_cast<size_t>(epochs));
    // The lr of each epoch's first batch (cosine steps per epoch, so its fixture's 3 batches per epoch do).
    for (int e = 0; e < epochs; ++e) {
      const double want = lrs[static_cast<size_t>(e * per_epoch)];
      EXPECT_NEAR(whole[static_cast<size_t>(e)].lr, want, 1e-7 * std::max(1.0, want)) << which << " epoch " << e;
    }
    // Stopped mid-epoch 2 and resumed: the same weights to the bit, so every batch had its lr.
    TrainOptions first = scheduled(dir / "split", which, warmup, epochs);
    first.lr = o.lr;
    int64_t seen = 0;
    first.stop_requested = [&](int, int64_t b) { return b > 0 && ++seen == 10; };
    EXPECT_THROW(train(data, first), TrainingInterrupted);
    TrainOptions again = first;
    again.stop_requested = nullptr;
    again.resume_from = dir / "split" / "last.safetensors";
    const auto resumed = train(data, again);
    ASSERT_EQ(resumed.size(), whole.size());
    for (size_t e = 0; e < whole.size(); ++e) {
      EXPECT_EQ(resumed[e].lr, whole[e].lr) << which;
      EXPECT_EQ(resumed[e].train_loss, whole[e].train_loss) << which << " epoch " << e + 1;
    }
    // The same best epoch and weights to the bit (the metrics in its metadata hold timings).
    test::expect_same_tensors(dir / "split" / "best.safetensors", dir / "whole" / "best.safetensors");
    const auto csv = read_metrics_csv(dir / "split" / "metrics.csv");
    ASSERT_EQ(csv.size(), whole.size());
    EXPECT_EQ(csv.back().lr, whole.back().lr);
    // A resume cannot change the schedule.
    TrainOptions other = again;
    other.lr_schedule = "step:1:0.5";
    other.warmup_epochs = 0;
    other.epochs = epochs + 1;
    try {
      train(data, other);
      ADD_FAILURE() << "resumed with another schedule";
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find("lr schedule"), std::string::npos) << e.what();
    }
  }
}

}  // namespace
}  // namespace lenet

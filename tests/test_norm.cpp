// BatchNorm and Dropout: the kernels against the double-precision reference
// (PyTorch's definition written out), the lone modules against numerical
// gradients, the engine against the modules one by one (blocked and direct
// forms, training and evaluation), running statistics after K steps against
// the formula, thread-count independence, the batch-of-one refusal, and the
// checkpoint names.
#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "data_test_util.h"
#include "lenet/checkpoint.h"
#include "lenet/kernels.h"
#include "lenet/nn.h"
#include "lenet/optim.h"
#include "lenet/parallel.h"
#include "test_util.h"

using namespace lenet;

namespace {

// x[N,C,P] with a channel-dependent offset and spread, so that a kernel
// normalising the wrong axis fails.
Tensor channel_data(const Shape& shape, Rng& rng) {
  Tensor x(shape);
  const int64_t n = shape[0], c = shape[1], plane = x.numel() / (n * c);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t ch = 0; ch < c; ++ch)
      for (int64_t e = 0; e < plane; ++e)
        x[(i * c + ch) * plane + e] = 3.0f * static_cast<float>(ch) +
                                      (1.0f + 0.5f * static_cast<float>(ch)) * rng.uniform(-1, 1);
  return x;
}

float largest_abs(const Tensor& t) {
  float m = 0;
  for (float v : t.span()) m = std::max(m, std::fabs(v));
  return m;
}

}  // namespace

TEST(NormKernel, ForwardAndBackwardMatchTheReference) {
  Rng rng(5);
  for (const Shape& shape : {Shape{7, 3, 5, 4}, Shape{9, 6}, Shape{2, 4, 1, 1}}) {
    const int n = static_cast<int>(shape[0]), c = static_cast<int>(shape[1]);
    const int64_t plane = numel(shape) / (n * c);
    Tensor x = channel_data(shape, rng), w = test::random_tensor({c}, rng, 0.5f, 1.5f),
           b = test::random_tensor({c}, rng), dy = test::random_tensor(shape, rng);
    Tensor y(shape), yr(shape), mean({c}), var({c}), invstd({c});
    std::vector<double> mr(static_cast<size_t>(c)), vr(static_cast<size_t>(c));
    kernels::batchnorm_batch_stats(n, c, plane, x.data(), 1e-5f, mean.data(), var.data(), invstd.data());
    kernels::batchnorm_forward(n, c, plane, x.data(), mean.data(), invstd.data(), w.data(), b.data(), y.data());
    kernels::reference::batchnorm_forward_train(n, c, plane, x.data(), w.data(), b.data(), 1e-5, yr.data(), mr.data(),
                                                vr.data());
    EXPECT_LE(max_abs_diff(y, yr), 2e-5f) << to_string(shape);
    for (int ch = 0; ch < c; ++ch) {
      EXPECT_NEAR(mean[ch], mr[static_cast<size_t>(ch)], 1e-5) << ch;
      EXPECT_NEAR(var[ch], vr[static_cast<size_t>(ch)], 1e-5 * (1 + vr[static_cast<size_t>(ch)])) << ch;
    }
    Tensor dx(shape), dxr(shape), dw({c}), db({c}), dwr({c}), dbr({c});
    kernels::batchnorm_backward(n, c, plane, x.data(), mean.data(), invstd.data(), w.data(), dy.data(), true, dx.data(),
                                dw.data(), db.data());
    kernels::reference::batchnorm_backward_train(n, c, plane, x.data(), w.data(), dy.data(), 1e-5, dxr.data(),
                                                 dwr.data(), dbr.data());
    EXPECT_LE(max_abs_diff(dx, dxr), 2e-4f * std::max(1.0f, largest_abs(dxr))) << to_string(shape);
    EXPECT_LE(max_abs_diff(dw, dwr), 2e-4f * std::max(1.0f, largest_abs(dwr)));
    EXPECT_LE(max_abs_diff(db, dbr), 2e-4f * std::max(1.0f, largest_abs(dbr)));
  }
}

TEST(NormModule, GradientsMatchCentralDifferences) {
  Rng rng(11);
  for (bool spatial : {true, false}) {
    for (bool training : {true, false}) {
      BatchNorm bn(3, spatial);
      Tensor w = test::random_tensor({3}, rng, 0.5f, 1.5f), b = test::random_tensor({3}, rng);
      std::copy_n(w.data(), 3, bn.parameters()[0].value);
      std::copy_n(b.data(), 3, bn.parameters()[1].value);
      for (int ch = 0; ch < 3; ++ch) {
        bn.running_mean()[ch] = 0.3f * static_cast<float>(ch);
        bn.running_var()[ch] = 0.5f + static_cast<float>(ch);
      }
      bn.train(training);
      test::check_gradients(bn, channel_data(spatial ? Shape{4, 3, 3, 2} : Shape{6, 3}, rng), rng);
    }
  }
}

TEST(NormModule, TrainingUsesTheBatchAndEvaluationTheRunningEstimates) {
  Rng rng(2);
  BatchNorm bn(4, true);
  const Tensor x = channel_data({6, 4, 3, 3}, rng);
  Tensor y_train, y_eval;
  bn.forward(x, y_train);
  // Training output: per channel mean 0 and biased variance 1 (weight 1, bias 0).
  for (int ch = 0; ch < 4; ++ch) {
    double s = 0, q = 0;
    for (int i = 0; i < 6; ++i)
      for (int e = 0; e < 9; ++e) s += y_train[(i * 4 + ch) * 9 + e];
    for (int i = 0; i < 6; ++i)
      for (int e = 0; e < 9; ++e) q += std::pow(y_train[(i * 4 + ch) * 9 + e] - s / 54, 2);
    EXPECT_NEAR(s / 54, 0, 1e-5);
    EXPECT_NEAR(q / 54, 1, 1e-3);  // var/(var + eps)
  }
  const std::vector<float> mean(bn.running_mean(), bn.running_mean() + 4), var(bn.running_var(), bn.running_var() + 4);
  bn.eval();
  bn.forward(x, y_eval);
  for (int ch = 0; ch < 4; ++ch) {  // evaluation changes nothing
    EXPECT_EQ(bn.running_mean()[ch], mean[static_cast<size_t>(ch)]);
    EXPECT_EQ(bn.running_var()[ch], var[static_cast<size_t>(ch)]);
  }
  EXPECT_EQ(*bn.batches_tracked(), 1.0f);
  for (int64_t i = 0; i < x.numel(); ++i) {
    const auto ch = static_cast<size_t>((i / 9) % 4);
    EXPECT_NEAR(y_eval[i], (x[i] - mean[ch]) / std::sqrt(var[ch] + 1e-5f), 1e-4) << i;
  }
  EXPECT_GT(max_abs_diff(y_train, y_eval), 0.1f);
}

TEST(DropoutModule, InvertedDropoutInTrainingIdentityInEvaluation) {
  Rng rng(3);
  Dropout d(0.3f, 77);
  const Tensor x = test::random_tensor({50, 40}, rng, 1, 2);
  Tensor y, y2, dx;
  d.forward(x, y);
  int64_t zeros = 0;
  for (int64_t i = 0; i < x.numel(); ++i) {
    if (y[i] == 0) {
      ++zeros;
      continue;
    }
    EXPECT_FLOAT_EQ(y[i], x[i] / 0.7f) << i;
  }
  EXPECT_NEAR(static_cast<double>(zeros) / static_cast<double>(x.numel()), 0.3, 0.03);
  // Backward: the same mask.
  Tensor dy = test::random_tensor(x.shape(), rng);
  d.backward(x, y, dy, &dx);
  for (int64_t i = 0; i < x.numel(); ++i) EXPECT_FLOAT_EQ(dx[i], y[i] == 0 ? 0.0f : dy[i] / 0.7f) << i;
  d.forward(x, y2);  // the next forward draws another mask
  EXPECT_GT(max_abs_diff(y, y2), 0.0f);
  d.eval();
  d.forward(x, y);
  EXPECT_EQ(max_abs_diff(y, x), 0.0f);
  EXPECT_THROW(Dropout(1.5f), std::invalid_argument);
}

// ---- inside the engine ----

namespace {

struct NormPass {
  Tensor out;
  std::vector<float> grads, buffers;
};

std::vector<float> buffer_values(Sequential& m) {
  std::vector<float> v;
  for (Parameter* b : m.buffers()) v.insert(v.end(), b->values().begin(), b->values().end());
  return v;
}

NormPass modules_one_by_one(Sequential& m, const Tensor& x, const Tensor& r) {
  std::vector<Tensor> outs(m.size());
  const Tensor* in = &x;
  for (size_t i = 0; i < m.size(); ++i) {
    m[i].forward(*in, outs[i]);
    in = &outs[i];
  }
  m.zero_grad();
  Tensor d = r, dx;
  for (size_t i = m.size(); i-- > 0;) {
    m[i].backward(i ? outs[i - 1] : x, outs[i], d, i ? &dx : nullptr);
    if (i) d = dx;
  }
  auto g = m.flat_grads();
  return {outs.back(), {g.begin(), g.end()}, buffer_values(m)};
}

NormPass engine(Sequential& m, const Tensor& x, const Tensor& r) {
  NormPass run;
  run.out = m.forward(x);
  m.zero_grad();
  m.backward(r);
  auto g = m.flat_grads();
  run.grads.assign(g.begin(), g.end());
  run.buffers = buffer_values(m);
  return run;
}

float scale_of(const std::vector<float>& v) {
  float s = 1;
  for (float x : v) s = std::max(s, std::fabs(x));
  return s;
}

const char* const kStacks[] = {
    "conv 4 k3, bn, sigmoid, avgpool 2, conv 5 k3 p1, bn, relu, maxpool 2, flatten, linear 12, bn, sigmoid, linear",
    "conv 4 k3, bn, dropout 0.25, avgpool 2, flatten, dropout 0.5, linear 10, bn, tanh, linear",
    "bn, conv 3 k3, tanh, flatten, bn, linear",
    "conv 4 k3, dropout 0.3, bn, maxpool 2, flatten, linear 9, relu, dropout 0.2, linear",
};

}  // namespace

// The engine (blocked form, and direct for a few images in evaluation) against
// the same layers run one by one, both models built alike: outputs,
// gradients and running statistics agree, in training and in evaluation.
TEST(NormEngine, MatchesTheModulesOneByOne) {
  for (const char* spec : kStacks)
    for (bool training : {true, false})
      for (int n : {2, 3, 5, 17, 40}) {
        if (!training && n == 2) continue;
        Rng ra(7), rb(7), rx(n);
        Sequential a = build_model(spec, {2, 10, 10}, 4, &ra), b = build_model(spec, {2, 10, 10}, 4, &rb);
        a.train(training);
        b.train(training);
        const Tensor x = test::random_tensor({n, 2, 10, 10}, rx, -1, 2);
        const Tensor r = test::random_tensor({n, 4}, rx);
        const NormPass want = modules_one_by_one(a, x, r);
        const NormPass got = engine(b, x, r);
        const std::string what = std::string(spec) + (training ? " training" : " eval") + " n=" + std::to_string(n);
        ASSERT_EQ(got.out.shape(), want.out.shape()) << what;
        EXPECT_LE(max_abs_diff(got.out, want.out), 1e-4f * std::max(1.0f, largest_abs(want.out))) << what;
        ASSERT_EQ(got.grads.size(), want.grads.size());
        float worst = 0;
        for (size_t i = 0; i < got.grads.size(); ++i) worst = std::max(worst, std::fabs(got.grads[i] - want.grads[i]));
        EXPECT_LE(worst, 2e-4f * scale_of(want.grads)) << what;
        ASSERT_EQ(got.buffers.size(), want.buffers.size());
        for (size_t i = 0; i < got.buffers.size(); ++i)
          EXPECT_NEAR(got.buffers[i], want.buffers[i], 1e-5f * std::max(1.0f, std::fabs(want.buffers[i])))
              << what << " buffer value " << i;
      }
}

// Sequential's gradients in training mode (through the batch statistics)
// against central differences of the summed cross-entropy.
TEST(NormEngine, GradientsMatchCentralDifferences) {
  set_num_threads(2);
  for (int n : {4, 17, 40}) {
    Rng rng(20 + n);
    const std::string spec = "conv 3 k3, bn, sigmoid, avgpool 2, flatten, linear 8, bn, sigmoid, linear";
    Sequential m = build_model(spec, {1, 8, 8}, 3, &rng);
    const Tensor x = test::random_tensor({n, 1, 8, 8}, rng, 0, 1);
    std::vector<int32_t> labels(static_cast<size_t>(n));
    for (int i = 0; i < n; ++i) labels[static_cast<size_t>(i)] = i % 3;
    auto loss = [&] {
      const Tensor& z = m.forward(x);
      return kernels::softmax_cross_entropy(n, 3, z.data(), labels.data(), nullptr, kernels::Reduction::Sum);
    };
    m.zero_grad();
    const Tensor& z = m.forward(x);
    Tensor dz(z.shape());
    kernels::softmax_cross_entropy(n, 3, z.data(), labels.data(), dz.data(), kernels::Reduction::Sum);
    m.backward(dz);
    const float h = 1e-3f;
    int checked = 0;
    for (Parameter* p : m.parameters())
      for (int64_t i = 0; i < p->numel(); i += std::max<int64_t>(1, p->numel() / 6)) {
        const float keep = p->value[i];
        p->value[i] = keep + h;
        const double up = loss();
        p->value[i] = keep - h;
        const double down = loss();
        p->value[i] = keep;
        const double numeric = (up - down) / (2.0 * h);
        EXPECT_NEAR(p->grad[i], numeric, 3e-3 + 3e-4 * n + 1e-2 * std::fabs(numeric))
            << p->name << "[" << i << "] n=" << n;
        ++checked;
      }
    EXPECT_GT(checked, 40);
  }
  set_num_threads(0);
}

// K training forwards of one fixed batch: running_mean = (1 − 0.9^K)·μ and
// running_var = 0.9^K + (1 − 0.9^K)·σ²·M/(M − 1), μ and σ² the batch's
// (biased) statistics of the BatchNorm's input, M its values per channel.
TEST(NormEngine, RunningStatisticsAfterKStepsFollowTheFormula) {
  Rng rng(4);
  for (int n : {3, 20}) {  // 3: BatchNorm training never takes the direct form
    Sequential m = build_model("bn, flatten, linear 6, bn, linear", {2, 4, 4}, 3, &rng);
    const Tensor x = channel_data({n, 2, 4, 4}, rng);
    const int k = 7;
    for (int step = 0; step < k; ++step) m.forward(x);
    // The first BatchNorm's input is x; the second's, the Linear's output.
    Tensor hidden;
    Tensor flat({n, 32});
    std::copy_n(x.data(), x.numel(), flat.data());
    // Normalise x with its batch statistics, as the first BatchNorm does.
    Tensor xn(x.shape());
    std::vector<double> mean(2), var(2);
    Tensor ones({2}), zeros({2});
    ones.fill(1.0f);
    kernels::reference::batchnorm_forward_train(n, 2, 16, x.data(), ones.data(), zeros.data(), 1e-5, xn.data(),
                                                mean.data(), var.data());
    std::copy_n(xn.data(), xn.numel(), flat.data());
    m[2].forward(flat, hidden);
    std::vector<double> mean2(6), var2(6);
    Tensor hn(hidden.shape()), ones6({6}), zeros6({6});
    ones6.fill(1.0f);
    kernels::reference::batchnorm_forward_train(n, 6, 1, hidden.data(), ones6.data(), zeros6.data(), 1e-5, hn.data(),
                                                mean2.data(), var2.data());
    const double decay = std::pow(0.9, k);
    auto expect_formula = [&](BatchNorm& bn, const std::vector<double>& mu, const std::vector<double>& s2,
                              double count) {
      for (size_t ch = 0; ch < mu.size(); ++ch) {
        EXPECT_NEAR(bn.running_mean()[ch], (1 - decay) * mu[ch], 1e-4 * (1 + std::fabs(mu[ch]))) << ch;
        EXPECT_NEAR(bn.running_var()[ch], decay + (1 - decay) * s2[ch] * count / (count - 1), 1e-4 * (1 + s2[ch]))
            << ch;
      }
      EXPECT_EQ(*bn.batches_tracked(), static_cast<float>(k));
    };
    expect_formula(dynamic_cast<BatchNorm&>(m[0]), mean, var, 16.0 * n);
    expect_formula(dynamic_cast<BatchNorm&>(m[3]), mean2, var2, n);
    // Evaluation (any batch size, direct form included) leaves them alone.
    const std::vector<float> before = buffer_values(m);
    m.eval();
    m.forward(x);
    Tensor one({1, 2, 4, 4});
    std::copy_n(x.data(), one.numel(), one.data());
    m.forward(one);
    EXPECT_EQ(buffer_values(m), before);
  }
}

// Training steps with 1 and 3 threads: bit-identical weights and running statistics.
TEST(NormEngine, TrainingIsBitIdenticalWhateverTheThreadCount) {
  std::vector<float> weights[2], buffers[2];
  for (int t = 0; t < 2; ++t) {
    set_num_threads(t == 0 ? 1 : 3);
    Rng rng(12);
    Sequential m = build_model(
        "conv 6 k5, bn, sigmoid, avgpool 2, conv 16 k5, bn, sigmoid, avgpool 2, flatten, dropout 0.3, linear 120, bn, "
        "sigmoid, linear 84, bn, sigmoid, linear",
        {1, 28, 28}, 10, &rng);
    Sgd sgd(m, SgdOptions{.lr = 0.5f});
    Rng data(1);
    for (int step = 0; step < 3; ++step) {
      const Tensor x = test::random_tensor({70, 1, 28, 28}, data, 0, 1);
      std::vector<int32_t> labels(70);
      for (int i = 0; i < 70; ++i) labels[static_cast<size_t>(i)] = i % 10;
      sgd.zero_grad();
      const Tensor& z = m.forward(x);
      Tensor dz(z.shape());
      kernels::softmax_cross_entropy(70, 10, z.data(), labels.data(), dz.data());
      m.backward(dz);
      sgd.step();
    }
    weights[t].assign(m.flat_values().begin(), m.flat_values().end());
    buffers[t] = buffer_values(m);
  }
  set_num_threads(0);
  EXPECT_EQ(weights[0], weights[1]);
  EXPECT_EQ(buffers[0], buffers[1]);
}

TEST(NormEngine, TrainingOnOneValuePerChannelIsRefused) {
  Rng rng(1);
  Sequential m = build_model("lenet-bn", {1, 28, 28}, 10, &rng);
  const std::vector<float> before = buffer_values(m);
  const Tensor x = test::random_tensor({1, 1, 28, 28}, rng, 0, 1);
  try {
    m.forward(x);
    FAIL() << "a batch of one trained";
  } catch (const std::invalid_argument& e) {
    EXPECT_STREQ(e.what(),
                 "layer 11 (bn): BatchNorm1d: Expected more than 1 value per channel when training, got input size [1, "
                 "120] (use a batch of 2 or more, or evaluation mode)");
  }
  EXPECT_EQ(buffer_values(m), before);  // nothing moved
  m.eval();
  EXPECT_EQ(m.forward(x).shape(), (Shape{1, 10}));
}

TEST(NormSpec, LenetBnIsTheBooksModel) {
  Rng rng(0);
  Sequential m = build_model("lenet-bn", {1, 28, 28}, 10, &rng);
  EXPECT_EQ(m.summary({1, 1, 28, 28}),
            "Conv2d output shape:\t[1, 6, 24, 24]\nBatchNorm2d output shape:\t[1, 6, 24, 24]\n"
            "Sigmoid output shape:\t[1, 6, 24, 24]\nAvgPool2d output shape:\t[1, 6, 12, 12]\n"
            "Conv2d output shape:\t[1, 16, 8, 8]\nBatchNorm2d output shape:\t[1, 16, 8, 8]\n"
            "Sigmoid output shape:\t[1, 16, 8, 8]\nAvgPool2d output shape:\t[1, 16, 4, 4]\n"
            "Flatten output shape:\t[1, 256]\nLinear output shape:\t[1, 120]\nBatchNorm1d output shape:\t[1, 120]\n"
            "Sigmoid output shape:\t[1, 120]\nLinear output shape:\t[1, 84]\nBatchNorm1d output shape:\t[1, 84]\n"
            "Sigmoid output shape:\t[1, 84]\nLinear output shape:\t[1, 10]\n");
  const BatchNorm& bn = dynamic_cast<const BatchNorm&>(m[1]);
  EXPECT_EQ(bn.parameters()[0].values()[0], 1.0f);  // PyTorch's reset, not Xavier
  EXPECT_EQ(bn.eps(), 1e-5f);
  EXPECT_EQ(bn.momentum(), 0.1f);
  // The spec re-parses to the same stack; JSON and text agree.
  EXPECT_EQ(build_model(m.spec(), {1, 28, 28}, 10, nullptr).spec(), m.spec());
  EXPECT_EQ(build_model(R"([{"layer": "flatten"}, {"layer": "dropout", "p": 0.25}, {"layer": "linear"}])", {1, 4, 4}, 3,
                        nullptr)
                .spec(),
            "flatten, dropout 0.25, linear 3");
  EXPECT_THROW(build_model("flatten, dropout 2, linear", {1, 4, 4}, 3, nullptr), std::invalid_argument);
  EXPECT_THROW(build_model("flatten, bn 3, linear", {1, 4, 4}, 3, nullptr), std::invalid_argument);
}

// eps and momentum other than PyTorch's defaults: in the spec text and JSON,
// canonical (shortest) in Sequential::spec(), and through a checkpoint.
TEST(NormSpec, EpsAndMomentumRoundTripThroughTheSpecAndACheckpoint) {
  const Shape chw = {2, 6, 6};
  Sequential m = build_model("conv 3 k3, bn eps=1e-3 momentum=0.25, relu, flatten, linear 5, BN EPS=0.5, linear", chw,
                             4, nullptr);
  const auto& bn2d = dynamic_cast<const BatchNorm&>(m[1]);
  const auto& bn1d = dynamic_cast<const BatchNorm&>(m[5]);
  EXPECT_EQ(bn2d.eps(), 1e-3f);
  EXPECT_EQ(bn2d.momentum(), 0.25f);
  EXPECT_EQ(bn1d.eps(), 0.5f);
  EXPECT_EQ(bn1d.momentum(), 0.1f);
  EXPECT_EQ(m.spec(), "conv 3 k3, bn eps=0.001 momentum=0.25, relu, flatten, linear 5, bn eps=0.5, linear 4");
  EXPECT_EQ(bn2d.describe(), "BatchNorm2d(3, eps=0.001, momentum=0.25)");
  EXPECT_EQ(build_model(m.spec(), chw, 4, nullptr).spec(), m.spec());
  EXPECT_EQ(build_model("lenet-bn", {1, 28, 28}, 10, nullptr).spec().find("eps"), std::string::npos)
      << "the defaults stay implicit";
  EXPECT_EQ(
      build_model(R"([{"layer": "flatten"}, {"layer": "bn", "eps": 0.001, "momentum": 0.01}, {"layer": "linear"}])",
                  {1, 4, 4}, 3, nullptr)
          .spec(),
      "flatten, bn eps=0.001 momentum=0.01, linear 3");
  // An eps no short decimal holds exactly reads back to the same float.
  Sequential odd = build_model("flatten, bn eps=3.3333333e-7, linear", {1, 4, 4}, 3, nullptr);
  const float odd_eps = dynamic_cast<const BatchNorm&>(odd[1]).eps();
  EXPECT_EQ(dynamic_cast<const BatchNorm&>(build_model(odd.spec(), {1, 4, 4}, 3, nullptr)[1]).eps(), odd_eps);
  // Bad values: one message naming the layer and the value.
  for (const auto& [spec, phrase] :
       std::vector<std::pair<std::string, std::string>>{{"bn eps=0", "eps '0' is not a positive number"},
                                                        {"bn eps=-1", "eps '-1'"},
                                                        {"bn eps=x", "eps 'x'"},
                                                        {"bn eps=", "eps ''"},
                                                        {"bn momentum=1.5", "momentum '1.5' is not a number in [0, 1]"},
                                                        {"bn affine=0", "unknown option 'affine=0'"},
                                                        {"bn 3", "unknown option '3'"}}) {
    try {
      build_model("flatten, " + spec + ", linear", {1, 4, 4}, 3, nullptr);
      ADD_FAILURE() << spec;
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find("layer 2 '" + spec + "'"), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find(phrase), std::string::npos) << e.what();
    }
  }
  EXPECT_THROW(build_model(R"([{"layer": "bn", "eps": "big"}])", {1, 4, 4}, 3, nullptr), std::invalid_argument);

  // Training moves the running mean by the given momentum: 0.25 · the batch mean after one step.
  Rng rng(5);
  const Tensor x = channel_data({6, 2, 6, 6}, rng);
  Sequential first = build_model("bn momentum=0.25, flatten, linear", chw, 4, &rng);
  first.forward(x);
  for (int ch = 0; ch < 2; ++ch) {
    double sum = 0;
    for (int i = 0; i < 6; ++i)
      for (int e = 0; e < 36; ++e) sum += x[(i * 2 + ch) * 36 + e];
    EXPECT_NEAR(dynamic_cast<BatchNorm&>(first[0]).running_mean()[ch], 0.25 * sum / (6 * 36), 1e-5) << ch;
  }
  m.forward(x);  // moves m's running estimates away from (0, 1) too
  // Through a checkpoint: the same eps and momentum, the same outputs in evaluation.
  test::ScratchDir dir;
  save_checkpoint(dir / "eps.safetensors", m, test::model_info(m, chw, 4));
  LoadedModel back = load_checkpoint(dir / "eps.safetensors");
  EXPECT_EQ(back.info.arch, m.spec());
  EXPECT_EQ(dynamic_cast<const BatchNorm&>(back.model[1]).eps(), 1e-3f);
  EXPECT_EQ(dynamic_cast<const BatchNorm&>(back.model[1]).momentum(), 0.25f);
  EXPECT_EQ(dynamic_cast<const BatchNorm&>(back.model[5]).eps(), 0.5f);
  m.eval();
  EXPECT_EQ(max_abs_diff(back.model.forward(x), m.forward(x)), 0.0f);
}

TEST(NormCheckpoint, KeepsPyTorchsNamesAndTheRunningStatistics) {
  Rng rng(8);
  Sequential m = build_model("lenet-bn", {1, 28, 28}, 10, &rng);
  m.forward(test::random_tensor({8, 1, 28, 28}, rng, 0, 1));
  m.forward(test::random_tensor({8, 1, 28, 28}, rng, 0, 1));
  test::ScratchDir dir;
  const std::filesystem::path file = dir / "bn.safetensors";
  save_checkpoint(file, m, test::model_info(m, {1, 28, 28}, 10));
  const SafetensorsFile raw = read_safetensors(file);
  for (const char* name : {"1.weight", "1.bias", "1.running_mean", "1.running_var", "1.num_batches_tracked",
                           "10.running_var", "13.num_batches_tracked"})
    EXPECT_NE(raw.find(name), nullptr) << name;
  EXPECT_EQ(raw.find("1.num_batches_tracked")->shape(), Shape{});
  EXPECT_EQ((*raw.find("1.num_batches_tracked"))[0], 2.0f);
  // PyTorch's dtype for the counter.
  const std::string bytes = test::read_bytes(file);
  EXPECT_NE(bytes.find(R"("1.num_batches_tracked":{"data_offsets")"), std::string::npos);
  EXPECT_NE(bytes.find(R"("dtype":"I64")"), std::string::npos);
  LoadedModel back = load_checkpoint(file);
  EXPECT_FALSE(back.model.training());  // loaded to predict
  EXPECT_EQ(buffer_values(back.model), buffer_values(m));
  const Tensor x = test::random_tensor({5, 1, 28, 28}, rng, 0, 1);
  m.eval();
  EXPECT_EQ(max_abs_diff(back.model.forward(x), m.forward(x)), 0.0f);
}

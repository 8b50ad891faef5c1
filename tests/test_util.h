// Shared helpers for the tests: random tensors and a generic gradient checker.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <functional>
#include <string>

#include "lenet/checkpoint.h"
#include "lenet/nn.h"

namespace lenet::test {

// What a checkpoint or ONNX file needs besides the weights: the model's spec,
// its input shape and classes named "0", "1", ...
inline ModelInfo model_info(const Sequential& model, const Shape& chw, int classes) {
  ModelInfo info;
  info.arch = model.spec();
  info.input_shape = chw;
  for (int c = 0; c < classes; ++c) info.class_names.push_back(std::to_string(c));
  return info;
}

// Every tensor (weights and optimizer state) of two checkpoints, bit for bit,
// and their epoch and optimizer step count (not the metrics: they hold timings).
inline void expect_same_tensors(const std::filesystem::path& a, const std::filesystem::path& b) {
  const SafetensorsFile fa = read_safetensors(a), fb = read_safetensors(b);
  ASSERT_EQ(fa.tensors.size(), fb.tensors.size()) << a << " vs " << b;
  for (size_t i = 0; i < fa.tensors.size(); ++i) {
    const auto& [name_a, ta] = fa.tensors[i];
    const auto& [name_b, tb] = fb.tensors[i];
    EXPECT_EQ(name_a, name_b);
    ASSERT_EQ(ta.shape(), tb.shape()) << name_a;
    EXPECT_EQ(std::memcmp(ta.data(), tb.data(), sizeof(float) * static_cast<size_t>(ta.numel())), 0)
        << name_a << " differs between " << a << " and " << b;
  }
  for (const char* key : {"epoch", "optimizer_steps", "metrics"}) {
    auto ia = fa.metadata.find(key), ib = fb.metadata.find(key);
    ASSERT_EQ(ia == fa.metadata.end(), ib == fb.metadata.end()) << key;
    if (ia == fa.metadata.end()) continue;
    if (std::string(key) == "metrics") continue;  // holds the timing, which never repeats
    EXPECT_EQ(ia->second, ib->second) << key;
  }
}

inline Tensor random_tensor(const Shape& shape, Rng& rng, float lo = -1.0f, float hi = 1.0f) {
  Tensor t(shape);
  for (auto& v : t.span()) v = rng.uniform(lo, hi);
  return t;
}

// Distinct values spaced `gap` apart in random order: no ties, so max pooling
// and ReLU have no kink within a finite-difference step smaller than gap/2.
inline Tensor separated_tensor(const Shape& shape, Rng& rng, float gap = 0.05f) {
  Tensor t(shape);
  std::vector<int64_t> order(static_cast<size_t>(t.numel()));
  for (size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int64_t>(i);
  rng.shuffle(std::span<int64_t>(order));
  const float offset = -gap * static_cast<float>(t.numel()) / 2 + gap / 2;
  for (size_t i = 0; i < order.size(); ++i) t[static_cast<int64_t>(i)] = offset + gap * static_cast<float>(order[i]);
  return t;
}

// Checks a module's backward against central differences of
//   L(x, θ) = Σ r ⊙ module(x)        (so ∂L/∂y = r, a random direction)
// for every input element and every parameter element.
//
// Tolerance: the forward runs in float32, so a central difference with step h
// carries rounding error ≈ ε_f·|L|/h (ε_f ≈ 6e-8) and truncation error
// O(h²·L'''). With h = 1e-3 and |L| = O(10), both stay below 1e-3; we accept
// |analytic − numeric| ≤ 2e-3 + 2e-3·|numeric|.
inline void check_gradients(Module& m, Tensor x, Rng& rng, float h = 1e-3f) {
  Tensor y;
  m.forward(x, y);
  Tensor r = random_tensor(y.shape(), rng);
  auto loss = [&](const Tensor& in) {
    Tensor out;
    m.forward(in, out);
    double s = 0;
    for (int64_t i = 0; i < out.numel(); ++i) s += static_cast<double>(r[i]) * out[i];
    return s;
  };
  m.zero_grad();
  m.forward(x, y);
  Tensor dx;
  m.backward(x, y, r, &dx);
  ASSERT_EQ(dx.shape(), x.shape()) << m.describe();
  auto expect_close = [&](double analytic, double numeric, const std::string& what) {
    EXPECT_NEAR(analytic, numeric, 2e-3 + 2e-3 * std::fabs(numeric)) << m.describe() << " " << what;
  };
  for (int64_t i = 0; i < x.numel(); ++i) {
    const float keep = x[i];
    x[i] = keep + h;
    const double up = loss(x);
    x[i] = keep - h;
    const double down = loss(x);
    x[i] = keep;
    expect_close(dx[i], (up - down) / (2.0 * h), "dx[" + std::to_string(i) + "]");
  }
  for (auto& p : m.parameters()) {
    for (int64_t i = 0; i < p.numel(); ++i) {
      const float keep = p.value[i];
      p.value[i] = keep + h;
      const double up = loss(x);
      p.value[i] = keep - h;
      const double down = loss(x);
      p.value[i] = keep;
      expect_close(p.grad[i], (up - down) / (2.0 * h), p.name + "[" + std::to_string(i) + "]");
    }
  }
}

}  // namespace lenet::test

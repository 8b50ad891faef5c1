#include "lenet/optim.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "lenet/nn.h"

namespace lenet {

Optimizer::Optimizer(std::span<float> values, std::span<float> grads) : values_(values), grads_(grads) {
  if (values.size() != grads.size()) throw std::invalid_argument("optimizer: values and gradients differ in size");
}
Optimizer::Optimizer(Sequential& model) : Optimizer(model.flat_values(), model.flat_grads()) {}

void Optimizer::zero_grad() { std::fill(grads_.begin(), grads_.end(), 0.0f); }

// ---- SGD: v = μ·v + (g + λ·w);  w −= lr·v   (torch.optim.SGD, dampening 0) ----

Sgd::Sgd(std::span<float> values, std::span<float> grads, const SgdOptions& o) : Optimizer(values, grads), opt_(o) {
  if (!(o.lr > 0)) throw std::invalid_argument("sgd: learning rate must be positive, got " + std::to_string(o.lr));
  if (o.momentum < 0 || o.weight_decay < 0) throw std::invalid_argument("sgd: momentum and weight decay must be >= 0");
  if (o.momentum > 0) velocity_.resize({static_cast<int64_t>(values.size())}, true);
}
Sgd::Sgd(Sequential& model, const SgdOptions& o) : Sgd(model.flat_values(), model.flat_grads(), o) {}

void Sgd::step() {
  const size_t n = values_.size();
  float* w = values_.data();
  const float* g = grads_.data();
  const float lr = opt_.lr, wd = opt_.weight_decay, mu = opt_.momentum;
  if (mu > 0) {
    float* v = velocity_.data();
    // PyTorch starts the momentum buffer at the first gradient.
    const bool first = steps_ == 0;
    for (size_t i = 0; i < n; ++i) {
      const float d = g[i] + wd * w[i];
      v[i] = first ? d : mu * v[i] + d;
      w[i] -= lr * v[i];
    }
  } else {
    for (size_t i = 0; i < n; ++i) w[i] -= lr * (g[i] + wd * w[i]);
  }
  ++steps_;
}

std::vector<std::pair<std::string, Tensor*>> Sgd::state() {
  if (opt_.momentum > 0) return {{"momentum", &velocity_}};
  return {};
}

// ---- Adam (Kingma & Ba), bias-corrected as torch.optim.Adam; AdamW (Loshchilov & Hutter) as torch.optim.AdamW ----

Adam::Adam(std::span<float> values, std::span<float> grads, const AdamOptions& o) : Optimizer(values, grads), opt_(o) {
  if (!(o.lr > 0)) throw std::invalid_argument("adam: learning rate must be positive, got " + std::to_string(o.lr));
  if (!(o.beta1 >= 0 && o.beta1 < 1 && o.beta2 >= 0 && o.beta2 < 1))
    throw std::invalid_argument("adam: betas must lie in [0, 1)");
  m_.resize({static_cast<int64_t>(values.size())}, true);
  v_.resize({static_cast<int64_t>(values.size())}, true);
}
Adam::Adam(Sequential& model, const AdamOptions& o) : Adam(model.flat_values(), model.flat_grads(), o) {}

void Adam::step() {
  ++steps_;
  const size_t n = values_.size();
  float* w = values_.data();
  const float* g = grads_.data();
  float* m = m_.data();
  float* v = v_.data();
  const float b1 = opt_.beta1, b2 = opt_.beta2;
  // AdamW decays the weight itself; Adam folds the decay into the gradient.
  const float wd = opt_.decoupled_weight_decay ? 0.0f : opt_.weight_decay;
  const float decay = opt_.decoupled_weight_decay ? 1.0f - opt_.lr * opt_.weight_decay : 1.0f;
  const double c1 = 1.0 - std::pow(static_cast<double>(b1), static_cast<double>(steps_));
  const double c2 = 1.0 - std::pow(static_cast<double>(b2), static_cast<double>(steps_));
  const float step_size = static_cast<float>(opt_.lr / c1);
  const float sqrt_c2 = static_cast<float>(std::sqrt(c2));
  for (size_t i = 0; i < n; ++i) {
    w[i] *= decay;
    const float d = g[i] + wd * w[i];
    m[i] = b1 * m[i] + (1 - b1) * d;
    v[i] = b2 * v[i] + (1 - b2) * d * d;
    w[i] -= step_size * m[i] / (std::sqrt(v[i]) / sqrt_c2 + opt_.eps);
  }
}

std::vector<std::pair<std::string, Tensor*>> Adam::state() { return {{"adam_m", &m_}, {"adam_v", &v_}}; }

double clip_grad_norm(std::span<float> grads, double max_norm) {
  if (!(max_norm > 0)) throw std::invalid_argument("clip_grad_norm: max_norm must be positive");
  double sum = 0;
  for (float g : grads) sum += static_cast<double>(g) * g;
  const double norm = std::sqrt(sum);
  const double coef = max_norm / (norm + 1e-6);
  if (coef < 1) {
    const auto c = static_cast<float>(coef);
    for (float& g : grads) g *= c;
  }
  return norm;
}

}  // namespace lenet

// BatchNorm and Dropout on their own (the plain path of a lone module; a
// Sequential runs them inside the engine, runtime/pipeline.cpp).
#include <algorithm>
#include <charconv>
#include <cmath>
#include <sstream>
#include <stdexcept>
#include <string>

#include "kernels/dropout_mask.h"
#include "lenet/nn.h"

namespace lenet {

namespace {
// Channels and values per channel of an input the layer takes.
int64_t plane_of(const Shape& in) { return in.size() == 4 ? in[2] * in[3] : 1; }
}  // namespace

// ---- BatchNorm ----

BatchNorm::BatchNorm(int features, bool spatial, float eps, float momentum)
    : features_(features), spatial_(spatial), eps_(eps), momentum_(momentum) {
  if (features < 1)
    throw std::invalid_argument("batchnorm: feature count must be positive, got " + std::to_string(features));
  if (!(eps > 0) || !(momentum >= 0 && momentum <= 1))
    throw std::invalid_argument("batchnorm: eps must be positive and momentum in [0, 1]");
  declare({{"weight", {features}}, {"bias", {features}}});
  declare_buffers({{"running_mean", {features}}, {"running_var", {features}}, {"num_batches_tracked", {}}});
  reset_parameters();
}

void BatchNorm::reset_parameters() {
  std::fill_n(parameters()[0].value, features_, 1.0f);
  std::fill_n(parameters()[1].value, features_, 0.0f);
  std::fill_n(running_mean(), features_, 0.0f);
  std::fill_n(running_var(), features_, 1.0f);
  *batches_tracked() = 0;
}

namespace {
// The shortest text that reads back as the same float.
std::string float_text(float v) {
  char buf[32];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, r.ptr);
}
}  // namespace

// eps and momentum appear only when they differ from PyTorch's defaults, as in its repr.
std::string BatchNorm::describe() const {
  std::string s = type() + "(" + std::to_string(features_);
  if (eps_ != 1e-5f) s += ", eps=" + float_text(eps_);
  if (momentum_ != 0.1f) s += ", momentum=" + float_text(momentum_);
  return s + ")";
}

std::string BatchNorm::spec() const {
  std::string s = "bn";
  if (eps_ != 1e-5f) s += " eps=" + float_text(eps_);
  if (momentum_ != 0.1f) s += " momentum=" + float_text(momentum_);
  return s;
}

Shape BatchNorm::output_shape(const Shape& in) const {
  const std::string who = spatial_ ? "batchnorm2d" : "batchnorm1d";
  if (in.size() != (spatial_ ? 4u : 2u))
    throw std::invalid_argument(who + ": expects " + (spatial_ ? "[N, C, H, W]" : "[N, C]") + ", got input " +
                                to_string(in));
  if (in[1] != features_)
    throw std::invalid_argument(who + ": input has " + std::to_string(in[1]) + " channels, the layer " +
                                std::to_string(features_) + " (input " + to_string(in) + ")");
  return in;
}

void BatchNorm::check_batch(const Shape& in) const {
  if (training() && in[0] * plane_of(in) <= 1)
    throw std::invalid_argument(type() + ": Expected more than 1 value per channel when training, got input size " +
                                to_string(in) + " (use a batch of 2 or more, or evaluation mode)");
}

void BatchNorm::forward(const Tensor& x, Tensor& y) {
  output_shape(x.shape());
  check_batch(x.shape());
  const int n = static_cast<int>(x.size(0));
  const int64_t plane = plane_of(x.shape());
  save_mean_.resize({features_});
  save_invstd_.resize({features_});
  y.resize(x.shape());
  float* mean = save_mean_.data();
  float* invstd = save_invstd_.data();
  if (training()) {
    Tensor var({features_});
    kernels::batchnorm_batch_stats(n, features_, plane, x.data(), eps_, mean, var.data(), invstd);
    // The running variance takes the unbiased estimate (PyTorch's definition).
    const double count = static_cast<double>(n) * static_cast<double>(plane);
    for (int c = 0; c < features_; ++c) {
      running_mean()[c] = (1 - momentum_) * running_mean()[c] + momentum_ * mean[c];
      running_var()[c] = (1 - momentum_) * running_var()[c] +
                         momentum_ * static_cast<float>(var.data()[c] * count / (count - 1));
    }
    *batches_tracked() += 1;
  } else {
    for (int c = 0; c < features_; ++c) {
      mean[c] = running_mean()[c];
      invstd[c] = 1.0f / std::sqrt(running_var()[c] + eps_);
    }
  }
  kernels::batchnorm_forward(n, features_, plane, x.data(), mean, invstd, parameters()[0].value, parameters()[1].value,
                             y.data());
}

void BatchNorm::backward(const Tensor& x, const Tensor&, const Tensor& dy, Tensor* dx) {
  if (save_mean_.numel() != features_) throw std::logic_error("batchnorm: backward before forward");
  if (dx) dx->resize(x.shape());
  kernels::batchnorm_backward(static_cast<int>(x.size(0)), features_, plane_of(x.shape()), x.data(), save_mean_.data(),
                              save_invstd_.data(), parameters()[0].value, dy.data(), training(),
                              dx ? dx->data() : nullptr, parameters()[0].grad, parameters()[1].grad);
}

// ---- Dropout ----

Dropout::Dropout(float p, uint64_t seed) : p_(p), seed_(seed) {
  if (!(p >= 0 && p <= 1)) {
    std::ostringstream os;
    os << "dropout: probability must lie in [0, 1], got " << p;
    throw std::invalid_argument(os.str());
  }
}

std::string Dropout::describe() const {
  std::ostringstream os;
  os << "Dropout(p=" << p_ << ")";
  return os.str();
}

std::string Dropout::spec() const {
  std::ostringstream os;
  os << "dropout " << p_;
  return os.str();
}

uint64_t Dropout::next_key() { return key_ = kernels::dropout_key(seed_, count_++); }

void Dropout::forward(const Tensor& x, Tensor& y) {
  y.resize(x.shape());
  if (!training()) {
    std::copy_n(x.data(), x.numel(), y.data());
    return;
  }
  kernels::dropout_forward(x.numel(), 0, p_, next_key(), x.data(), y.data());
}

void Dropout::backward(const Tensor&, const Tensor&, const Tensor& dy, Tensor* dx) {
  if (!dx) return;
  dx->resize(dy.shape());
  if (!training()) {
    std::copy_n(dy.data(), dy.numel(), dx->data());
    return;
  }
  kernels::dropout_backward(dy.numel(), 0, p_, key_, dy.data(), dx->data());
}

}  // namespace lenet

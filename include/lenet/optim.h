// Optimizers over a model's flat parameter and gradient buffers.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "lenet/tensor.h"

namespace lenet {

class Sequential;

struct SgdOptions {
  float lr = 0.1f;
  float momentum = 0.0f;
  float weight_decay = 0.0f;  // L2: g += wd · w, as torch.optim.SGD
};

struct AdamOptions {
  float lr = 1e-3f;
  float beta1 = 0.9f, beta2 = 0.999f;
  float eps = 1e-8f;
  float weight_decay = 0.0f;  // L2 added to the gradient, as torch.optim.Adam
};

class Optimizer {
 public:
  Optimizer(std::span<float> values, std::span<float> grads);
  explicit Optimizer(Sequential& model);
  virtual ~Optimizer() = default;
  virtual std::string name() const = 0;
  virtual void step() = 0;
  void zero_grad();
  int64_t steps() const { return steps_; }
  // Internal buffers (momentum, Adam moments) by name, for checkpoints that resume.
  virtual std::vector<std::pair<std::string, Tensor*>> state() { return {}; }
  void set_steps(int64_t s) { steps_ = s; }

 protected:
  std::span<float> values_, grads_;
  int64_t steps_ = 0;
};

class Sgd : public Optimizer {
 public:
  Sgd(Sequential& model, const SgdOptions& o);
  Sgd(std::span<float> values, std::span<float> grads, const SgdOptions& o);
  std::string name() const override { return "sgd"; }
  void step() override;
  std::vector<std::pair<std::string, Tensor*>> state() override;
  SgdOptions& options() { return opt_; }

 private:
  SgdOptions opt_;
  Tensor velocity_;
};

class Adam : public Optimizer {
 public:
  Adam(Sequential& model, const AdamOptions& o);
  Adam(std::span<float> values, std::span<float> grads, const AdamOptions& o);
  std::string name() const override { return "adam"; }
  void step() override;
  std::vector<std::pair<std::string, Tensor*>> state() override;
  AdamOptions& options() { return opt_; }

 private:
  AdamOptions opt_;
  Tensor m_, v_;
};

}  // namespace lenet

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
  // Adam: L2 added to the gradient, as torch.optim.Adam. AdamW: decoupled,
  // w ← w·(1 − lr·wd) before the Adam step, as torch.optim.AdamW.
  float weight_decay = 0.0f;
  bool decoupled_weight_decay = false;  // true: AdamW
};

class Optimizer {
 public:
  Optimizer(std::span<float> values, std::span<float> grads);
  explicit Optimizer(Sequential& model);
  virtual ~Optimizer() = default;
  virtual std::string name() const = 0;
  virtual void step() = 0;
  // The learning rate of the next steps (a schedule sets it before each step).
  virtual void set_lr(float lr) = 0;
  virtual float lr() const = 0;
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
  void set_lr(float lr) override { opt_.lr = lr; }
  float lr() const override { return opt_.lr; }
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
  std::string name() const override { return opt_.decoupled_weight_decay ? "adamw" : "adam"; }
  void step() override;
  void set_lr(float lr) override { opt_.lr = lr; }
  float lr() const override { return opt_.lr; }
  std::vector<std::pair<std::string, Tensor*>> state() override;
  AdamOptions& options() { return opt_; }

 private:
  AdamOptions opt_;
  Tensor m_, v_;
};

// torch.nn.utils.clip_grad_norm_: when the L2 norm of all of `grads` exceeds
// max_norm, scales them by max_norm / (norm + 1e-6). Returns the norm before
// clipping (summed in double).
double clip_grad_norm(std::span<float> grads, double max_norm);

// ---- learning-rate schedules, as torch.optim.lr_scheduler defines them ----
//   step:S:G          StepLR(step_size=S, gamma=G), per epoch: lr = base · G^⌊e/S⌋
//   multistep:E1,E2:G MultiStepLR(milestones=[E1, E2, ...], gamma=G), per epoch:
//                     lr = base · G^(number of milestones ≤ e)
//   cosine[:ETA_MIN]  CosineAnnealingLR(T_max = the run's epochs, eta_min), per epoch:
//                     lr = η_min + (base − η_min)·(1 + cos(π·e/T_max))/2
//   onecycle:MAX      OneCycleLR(max_lr=MAX, total_steps = epochs·batches, pct_start 0.3,
//                     cos annealing, div_factor 25, final_div_factor 1e4,
//                     cycle_momentum=False), per batch; the base lr plays no part
// e counts epochs from 0. Warm-up W epochs (not with onecycle) is
// SequentialLR([LinearLR(start_factor=1/(W+1), total_iters=W), main], milestones=[W]):
// epoch e < W runs at base·(e+1)/(W+1), and the main schedule starts at epoch W
// as its own epoch 0 (cosine then spans the epochs − W after the warm-up).
struct LrSchedule {
  enum class Kind { constant, step, multistep, cosine, onecycle };
  Kind kind = Kind::constant;
  int step_size = 0;
  std::vector<int> milestones;
  double gamma = 0.1;
  double eta_min = 0;
  double max_lr = 0;
  int warmup_epochs = 0;

  bool per_batch() const { return kind == Kind::onecycle; }
  // The lr of batch `batch` (0-based) of epoch `epoch` (0-based), in a run of
  // `epochs` epochs of `batches` batches each.
  double lr(double base_lr, int epoch, int64_t batch, int epochs, int64_t batches) const;
};
// Parses the --lr-schedule text ("" is constant). Throws std::invalid_argument
// with one line naming the text and what was expected.
LrSchedule parse_lr_schedule(const std::string& text, int warmup_epochs = 0);
// Throws std::invalid_argument when the schedule cannot cover a run of `epochs`
// epochs (warm-up as long as the run, a milestone out of order).
void check_lr_schedule(const LrSchedule& schedule, int epochs);

}  // namespace lenet

// Modules that own parameters and call kernels; Sequential; architectures as data.
//
// Parameters of a Sequential live in two flat buffers (values and gradients),
// each Parameter a named slice of them: an optimizer, a checkpoint or a future
// all-reduce sees one contiguous span. Names follow PyTorch's nn.Sequential
// state_dict ("0.weight", "0.bias", "3.weight", ...), weights in PyTorch's and
// ONNX's layout (conv [O, C, KH, KW], linear [out, in]).
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "lenet/kernels.h"
#include "lenet/random.h"
#include "lenet/tensor.h"

namespace lenet {

struct Parameter {
  std::string name;  // "weight" inside a module, "0.weight" inside a Sequential
  Shape shape;
  float* value = nullptr;
  float* grad = nullptr;
  int64_t numel() const { return lenet::numel(shape); }
  std::span<float> values() const { return {value, static_cast<size_t>(numel())}; }
  std::span<float> grads() const { return {grad, static_cast<size_t>(numel())}; }
};

// A layer. Shapes passed between layers include the batch: [N, C, H, W] or [N, F].
class Module {
 public:
  virtual ~Module() = default;
  Module() = default;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  virtual std::string type() const = 0;      // "Conv2d", as PyTorch names it
  virtual std::string describe() const = 0;  // "Conv2d(1, 6, k=5, p=2)"
  virtual std::string spec() const = 0;      // "conv 6 k5 p2": re-parses to this layer
  // Output shape for an input shape; throws std::invalid_argument naming the
  // layer and the sizes when the input does not fit.
  virtual Shape output_shape(const Shape& in) const = 0;
  // y is resized as needed (its storage is reused between calls).
  virtual void forward(const Tensor& x, Tensor& y) = 0;
  // Given the forward pass's x and y and the gradient dy, accumulates parameter
  // gradients and writes dx (skipped when dx is null: nothing upstream needs it).
  virtual void backward(const Tensor& x, const Tensor& y, const Tensor& dy, Tensor* dx) = 0;

  std::vector<Parameter>& parameters() { return params_; }
  const std::vector<Parameter>& parameters() const { return params_; }
  Parameter& parameter(const std::string& name);
  void zero_grad();
  // State that is not trained but saved with the parameters (BatchNorm's
  // running statistics), as PyTorch's buffers; grad is null.
  std::vector<Parameter>& buffers() { return buffers_; }
  const std::vector<Parameter>& buffers() const { return buffers_; }

  // Training or evaluation mode, as PyTorch's module.train(bool): BatchNorm
  // and Dropout behave differently. A module starts in training mode.
  void train(bool on = true) { training_ = on; }
  void eval() { training_ = false; }
  bool training() const { return training_; }

  // Points the parameters at external storage (a Sequential's flat buffers),
  // copying the current values across.
  void rebind(std::span<float> values, std::span<float> grads);

 protected:
  // Declares the parameters and gives them storage of their own, so a module
  // also works on its own (the chapter trains a lone Conv2d).
  void declare(std::vector<std::pair<std::string, Shape>> shapes);
  void declare_buffers(std::vector<std::pair<std::string, Shape>> shapes);

 private:
  std::vector<Parameter> params_;
  Tensor own_values_, own_grads_;
  std::vector<Parameter> buffers_;
  Tensor own_buffers_;
  bool training_ = true;
};

// ---- layers ----

struct Conv2dOptions {
  Conv2dOptions(int in_channels, int out_channels, int kernel)
      : in(in_channels), out(out_channels), kh(kernel), kw(kernel) {}
  Conv2dOptions& kernel_size(int h, int w) {
    kh = h;
    kw = w;
    return *this;
  }
  Conv2dOptions& padding(int p) {
    ph = pw = p;
    return *this;
  }
  Conv2dOptions& padding(int h, int w) {
    ph = h;
    pw = w;
    return *this;
  }
  Conv2dOptions& stride(int s) {
    sh = sw = s;
    return *this;
  }
  Conv2dOptions& stride(int h, int w) {
    sh = h;
    sw = w;
    return *this;
  }
  Conv2dOptions& bias(bool b) {
    with_bias = b;
    return *this;
  }
  int in, out, kh, kw, ph = 0, pw = 0, sh = 1, sw = 1;
  bool with_bias = true;
};

class Conv2d : public Module {
 public:
  explicit Conv2d(const Conv2dOptions& options);
  std::string type() const override { return "Conv2d"; }
  std::string describe() const override;
  std::string spec() const override;
  Shape output_shape(const Shape& in) const override;
  void forward(const Tensor& x, Tensor& y) override;
  void backward(const Tensor& x, const Tensor& y, const Tensor& dy, Tensor* dx) override;
  const Conv2dOptions& options() const { return opt_; }
  kernels::ConvGeometry geometry(const Shape& in) const;

 private:
  Conv2dOptions opt_;
};

class Linear : public Module {
 public:
  Linear(int in_features, int out_features, bool bias = true);
  std::string type() const override { return "Linear"; }
  std::string describe() const override;
  std::string spec() const override;
  Shape output_shape(const Shape& in) const override;
  void forward(const Tensor& x, Tensor& y) override;
  void backward(const Tensor& x, const Tensor& y, const Tensor& dy, Tensor* dx) override;
  int in_features() const { return in_; }
  int out_features() const { return out_; }
  bool has_bias() const { return bias_; }

 private:
  int in_, out_;
  bool bias_;
};

struct Pool2dOptions {
  explicit Pool2dOptions(int window) : kh(window), kw(window) {}
  Pool2dOptions(int window_h, int window_w) : kh(window_h), kw(window_w) {}
  Pool2dOptions& padding(int p) {
    ph = pw = p;
    return *this;
  }
  Pool2dOptions& padding(int h, int w) {
    ph = h;
    pw = w;
    return *this;
  }
  Pool2dOptions& stride(int s) {
    sh = sw = s;
    return *this;
  }
  Pool2dOptions& stride(int h, int w) {
    sh = h;
    sw = w;
    return *this;
  }
  int kh, kw, ph = 0, pw = 0;
  int sh = 0, sw = 0;  // 0: the window size (PyTorch's default)
};

// Max and average pooling; see kernels.h for the padding semantics.
class Pool2d : public Module {
 public:
  enum class Mode { Max, Average };
  Pool2d(Mode mode, const Pool2dOptions& options);
  std::string type() const override { return mode_ == Mode::Max ? "MaxPool2d" : "AvgPool2d"; }
  std::string describe() const override;
  std::string spec() const override;
  Shape output_shape(const Shape& in) const override;
  void forward(const Tensor& x, Tensor& y) override;
  void backward(const Tensor& x, const Tensor& y, const Tensor& dy, Tensor* dx) override;
  Mode mode() const { return mode_; }
  const Pool2dOptions& options() const { return opt_; }
  kernels::PoolGeometry geometry(const Shape& in) const;

 private:
  Mode mode_;
  Pool2dOptions opt_;
  std::vector<int32_t> argmax_;  // max pooling's workspace for backward
};

class MaxPool2d : public Pool2d {
 public:
  explicit MaxPool2d(const Pool2dOptions& options) : Pool2d(Mode::Max, options) {}
};
class AvgPool2d : public Pool2d {
 public:
  explicit AvgPool2d(const Pool2dOptions& options) : Pool2d(Mode::Average, options) {}
};

class Activation : public Module {
 public:
  enum class Kind { Sigmoid, ReLU, Tanh };
  explicit Activation(Kind kind) : kind_(kind) {}
  std::string type() const override;
  std::string describe() const override { return type() + "()"; }
  std::string spec() const override;
  Shape output_shape(const Shape& in) const override { return in; }
  void forward(const Tensor& x, Tensor& y) override;
  void backward(const Tensor& x, const Tensor& y, const Tensor& dy, Tensor* dx) override;
  Kind kind() const { return kind_; }

 private:
  Kind kind_;
};

class Sigmoid : public Activation {
 public:
  Sigmoid() : Activation(Kind::Sigmoid) {}
};
class ReLU : public Activation {
 public:
  ReLU() : Activation(Kind::ReLU) {}
};
class Tanh : public Activation {
 public:
  Tanh() : Activation(Kind::Tanh) {}
};

// [N, C, H, W] -> [N, C·H·W]
class Flatten : public Module {
 public:
  std::string type() const override { return "Flatten"; }
  std::string describe() const override { return "Flatten()"; }
  std::string spec() const override { return "flatten"; }
  Shape output_shape(const Shape& in) const override;
  void forward(const Tensor& x, Tensor& y) override;
  void backward(const Tensor& x, const Tensor& y, const Tensor& dy, Tensor* dx) override;
};

// Batch normalisation over the channels of [N, C, H, W] (BatchNorm2d) or the
// features of [N, C] (BatchNorm1d), as PyTorch's: in training, the batch's
// mean and biased variance normalise, and the running estimates move by
// momentum 0.1 towards the mean and the unbiased variance; in evaluation the
// running estimates normalise. y = weight · (x − mean) / sqrt(var + eps) + bias.
// Parameters weight [C] (ones), bias [C] (zeros); buffers running_mean [C],
// running_var [C], num_batches_tracked [] (saved as PyTorch names them).
class BatchNorm : public Module {
 public:
  // spatial: BatchNorm2d (after a convolution), else BatchNorm1d.
  BatchNorm(int features, bool spatial, float eps = 1e-5f, float momentum = 0.1f);
  std::string type() const override { return spatial_ ? "BatchNorm2d" : "BatchNorm1d"; }
  std::string describe() const override;
  // "bn", with "eps=E" and "momentum=M" when they are not PyTorch's defaults.
  std::string spec() const override;
  Shape output_shape(const Shape& in) const override;
  void forward(const Tensor& x, Tensor& y) override;
  void backward(const Tensor& x, const Tensor& y, const Tensor& dy, Tensor* dx) override;
  int features() const { return features_; }
  bool spatial() const { return spatial_; }
  float eps() const { return eps_; }
  float momentum() const { return momentum_; }
  // Weight 1, bias 0, running mean 0, running variance 1, no batches (PyTorch's reset_parameters).
  void reset_parameters();
  float* running_mean() { return buffers()[0].value; }
  float* running_var() { return buffers()[1].value; }
  float* batches_tracked() { return buffers()[2].value; }
  // Throws std::invalid_argument (PyTorch's message) when training on one value per channel.
  void check_batch(const Shape& in) const;

 private:
  int features_;
  bool spatial_;
  float eps_, momentum_;
  Tensor save_mean_, save_invstd_;  // the last training forward's batch statistics
};

// Inverted dropout: in training each value is zeroed with probability p and
// the others scaled by 1/(1 − p); identity in evaluation. The mask is a hash
// of (seed, forward count, image, position), so it is the same whatever the
// thread count, the ISA or the engine's layout.
class Dropout : public Module {
 public:
  explicit Dropout(float p, uint64_t seed = 0);
  std::string type() const override { return "Dropout"; }
  std::string describe() const override;
  std::string spec() const override;
  Shape output_shape(const Shape& in) const override { return in; }
  void forward(const Tensor& x, Tensor& y) override;
  void backward(const Tensor& x, const Tensor& y, const Tensor& dy, Tensor* dx) override;
  float p() const { return p_; }
  uint64_t seed() const { return seed_; }
  void set_seed(uint64_t seed) { seed_ = seed; }
  // The key of the next training forward's mask (advances the forward count).
  uint64_t next_key();
  // The key of the last training forward's mask (backward's).
  uint64_t last_key() const { return key_; }
  // Training forwards so far, which pick the next mask: a resumed run restores
  // it (train()'s resume state), so it draws the masks the run would have.
  uint64_t forward_count() const { return count_; }
  void set_forward_count(uint64_t count) { count_ = count; }

 private:
  float p_;
  uint64_t seed_;
  uint64_t count_ = 0, key_ = 0;
};

// ---- Sequential ----

namespace runtime {
class Pipeline;
}
struct Quantization;  // lenet/quant.h

class Sequential {
 public:
  Sequential();
  ~Sequential();
  Sequential(Sequential&&) noexcept;
  Sequential& operator=(Sequential&&) noexcept;

  // Appends a layer; its parameters move into the flat buffers at once.
  Module& add(std::unique_ptr<Module> layer);

  // Runs every layer through the planned engine (any batch size), keeping
  // what backward needs. The returned tensor is valid until the next forward.
  // Throws std::invalid_argument for an input the stack cannot take.
  const Tensor& forward(const Tensor& x);
  // Back-propagates d(loss)/d(output of the last forward); accumulates gradients.
  void backward(const Tensor& dy);
  void zero_grad();

  // Training (the default) or evaluation mode for every layer, as PyTorch's
  // model.train() / model.eval(). Evaluation never updates running statistics.
  void train(bool on = true);
  void eval() { train(false); }
  bool training() const;
  // Throws std::invalid_argument (naming the layer) when a training forward of
  // `batch` images of shape input_chw would fail: a BatchNorm in training mode
  // with one value per channel. Lets a trainer refuse before it writes anything.
  void check_training_batch(int64_t batch, const Shape& input_chw) const;

  size_t size() const { return layers_.size(); }
  Module& operator[](size_t i) { return *layers_[i]; }
  const Module& operator[](size_t i) const { return *layers_[i]; }

  // Named parameters ("0.weight", ...), in order; slices of the flat buffers.
  std::vector<Parameter*> parameters();
  std::vector<const Parameter*> parameters() const;
  // Named buffers ("1.running_mean", ...): saved and loaded with the
  // parameters, never trained.
  std::vector<Parameter*> buffers();
  std::vector<const Parameter*> buffers() const;
  std::span<float> flat_values() { return values_.span(); }
  std::span<float> flat_grads() { return grads_.span(); }
  std::span<const float> flat_values() const { return values_.span(); }
  int64_t parameter_count() const { return values_.numel(); }

  // Output shape of every layer for an input shape with batch (throws like
  // Module::output_shape, naming the layer's position).
  std::vector<Shape> layer_shapes(const Shape& input) const;
  // One line per layer: "Conv2d output shape:\t[1, 6, 28, 28]" (the chapter's printout).
  std::string summary(const Shape& input) const;
  // The canonical spec text of the whole stack: "conv 6 k5 p2, sigmoid, ..."
  std::string spec() const;

  // int8 (lenet/quant.h): from here on forward runs the int8 plan, and the
  // float weights hold the dequantized int8 ones (w_q · scale). Throws
  // std::invalid_argument naming the layer when `q` does not fit the model.
  // An int8 model cannot be trained (backward throws); add() drops it.
  void set_quantization(const Quantization& q);
  const Quantization* quantization() const { return quant_.get(); }

 private:
  void rebuild_storage();
  std::vector<std::unique_ptr<Module>> layers_;
  Tensor values_, grads_;
  std::vector<Tensor> outputs_;  // outputs_[i]: output of layer i (those the engine writes)
  const Tensor* input_ = nullptr;
  // The planned engine (src/runtime/pipeline.h) for the last input shape.
  std::unique_ptr<runtime::Pipeline> pipeline_;
  std::unique_ptr<Quantization> quant_;
};

// Evaluation mode for a scope, the previous modes restored after it (as
// PyTorch's `model.eval()` ... `model.train()` around an evaluation).
class EvalScope {
 public:
  explicit EvalScope(Sequential& model) : model_(model) {
    for (size_t i = 0; i < model.size(); ++i) was_.push_back(model[i].training());
    model.eval();
  }
  ~EvalScope() {
    for (size_t i = 0; i < model_.size() && i < was_.size(); ++i) model_[i].train(was_[i]);
  }
  EvalScope(const EvalScope&) = delete;
  EvalScope& operator=(const EvalScope&) = delete;

 private:
  Sequential& model_;
  std::vector<bool> was_;
};

// ---- initialisation ----

// Xavier (Glorot) uniform: U(−a, a), a = sqrt(6 / (fan_in + fan_out)), as
// torch.nn.init.xavier_uniform_. The chapter applies it to every Conv2d and
// Linear weight; we set the biases to zero. BatchNorm gets PyTorch's reset
// (weight 1, bias 0); Dropout draws its mask seed from rng.
void init_xavier_uniform(Sequential& model, Rng& rng);
void init_xavier_uniform(Module& layer, Rng& rng);

// ---- architectures as data ----

// Built-in architecture names: lenet, lenet-bn, lenet-max, lenet-relu, mlp.
std::vector<std::string> builtin_architectures();
// The spec text for a built-in name, or the argument itself when it is not one.
// A final "linear" without a width gets the class count when the model is built.
std::string expand_architecture(const std::string& name_or_spec);

// Builds a model from a built-in name, a text spec ("conv 6 k5 p2, sigmoid,
// avgpool 2, ...") or a JSON list ([{"layer": "conv", "out": 6, "kernel": 5,
// "padding": 2}, ...]) for inputs of shape [C, H, W] and `classes` outputs.
// Widths after Flatten come from the input shape. Weights are Xavier-uniform
// from `rng` (or all zero when rng is null, e.g. before loading a checkpoint).
// Throws std::invalid_argument naming the layer, its position and the sizes.
Sequential build_model(const std::string& arch, const Shape& input_chw, int classes, Rng* rng);

// Limits build_model checks before it allocates anything, so that an absurd
// spec (typed, or stored in a hostile checkpoint) is an error, not an
// out-of-memory: the parameter count, and the values per sample of the input
// and of every layer's output.
inline constexpr int64_t kMaxModelParameters = int64_t{1} << 28;  // 1 GiB of float32
inline constexpr int64_t kMaxLayerValues = int64_t{1} << 28;
// The same with another parameter limit (a checkpoint allows no more than its file holds).
Sequential build_model(const std::string& arch, const Shape& input_chw, int classes, Rng* rng, int64_t max_parameters);

}  // namespace lenet

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

  // Points the parameters at external storage (a Sequential's flat buffers),
  // copying the current values across.
  void rebind(std::span<float> values, std::span<float> grads);

 protected:
  // Declares the parameters and gives them storage of their own, so a module
  // also works on its own (the chapter trains a lone Conv2d).
  void declare(std::vector<std::pair<std::string, Shape>> shapes);

 private:
  std::vector<Parameter> params_;
  Tensor own_values_, own_grads_;
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

  size_t size() const { return layers_.size(); }
  Module& operator[](size_t i) { return *layers_[i]; }
  const Module& operator[](size_t i) const { return *layers_[i]; }

  // Named parameters ("0.weight", ...), in order; slices of the flat buffers.
  std::vector<Parameter*> parameters();
  std::vector<const Parameter*> parameters() const;
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

// ---- initialisation ----

// Xavier (Glorot) uniform: U(−a, a), a = sqrt(6 / (fan_in + fan_out)), as
// torch.nn.init.xavier_uniform_. The chapter applies it to every Conv2d and
// Linear weight; we set the biases to zero.
void init_xavier_uniform(Sequential& model, Rng& rng);
void init_xavier_uniform(Module& layer, Rng& rng);

// ---- architectures as data ----

// Built-in architecture names: lenet, lenet-max, lenet-relu, mlp.
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

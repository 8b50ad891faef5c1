#include <cmath>
#include <stdexcept>

#include "lenet/nn.h"
#include "nn/pipeline.h"

namespace lenet {

Sequential::Sequential() = default;
Sequential::~Sequential() = default;
Sequential::Sequential(Sequential&&) noexcept = default;
Sequential& Sequential::operator=(Sequential&&) noexcept = default;

Module& Sequential::add(std::unique_ptr<Module> layer) {
  layers_.push_back(std::move(layer));
  rebuild_storage();
  return *layers_.back();
}

// Gathers every layer's parameters into one values buffer and one gradient
// buffer, renaming them "<position>.<name>" as PyTorch's Sequential does.
void Sequential::rebuild_storage() {
  int64_t total = 0;
  for (auto& l : layers_)
    for (auto& p : l->parameters()) total += p.numel();
  Tensor values({total}), grads({total});
  int64_t offset = 0;
  for (size_t i = 0; i < layers_.size(); ++i) {
    auto& params = layers_[i]->parameters();
    int64_t n = 0;
    for (auto& p : params) n += p.numel();
    layers_[i]->rebind({values.data() + offset, static_cast<size_t>(n)}, {grads.data() + offset, static_cast<size_t>(n)});
    for (auto& p : params) {
      auto dot = p.name.find('.');
      p.name = std::to_string(i) + "." + (dot == std::string::npos ? p.name : p.name.substr(dot + 1));
    }
    offset += n;
  }
  values_ = std::move(values);
  grads_ = std::move(grads);
  outputs_.resize(layers_.size());
  pipeline_.reset();
  pipeline_declined_.clear();
}

const Tensor& Sequential::forward(const Tensor& x) {
  if (layers_.empty()) throw std::logic_error("Sequential: no layers");
  input_ = &x;
  pipelined_ = false;
  // The fused pipeline for batches worth it; a stack it cannot run, or a few
  // images, go layer by layer.
  if (detail::Pipeline::worth(x.shape())) {
    if (!pipeline_ || !pipeline_->fits(x.shape())) {
      pipeline_.reset();
      if (x.shape() != pipeline_declined_) {
        pipeline_ = detail::Pipeline::build(layers_, x.shape());
        if (!pipeline_) pipeline_declined_ = x.shape();
      }
    }
    if (pipeline_) {
      pipeline_->forward(x, outputs_);
      pipelined_ = true;
      return outputs_.back();
    }
  }
  const Tensor* in = &x;
  for (size_t i = 0; i < layers_.size(); ++i) {
    if (activation_before_max_pool(i)) {
      // Pool first, then activate the maxima only (in place): the activations
      // are non-decreasing, so the maxima are the same. The activation's own
      // output is made in backward, if one follows.
      layers_[i + 1]->forward(*in, outputs_[i + 1]);
      layers_[i]->forward(outputs_[i + 1], outputs_[i + 1]);
      in = &outputs_[++i];
      continue;
    }
    layers_[i]->forward(*in, outputs_[i]);
    in = &outputs_[i];
  }
  return outputs_.back();
}

bool Sequential::activation_before_max_pool(size_t i) const {
  if (i + 1 >= layers_.size() || !dynamic_cast<const Activation*>(layers_[i].get())) return false;
  const auto* pool = dynamic_cast<const Pool2d*>(layers_[i + 1].get());
  return pool && pool->mode() == Pool2d::Mode::Max;
}

void Sequential::backward(const Tensor& dy) {
  if (!input_) throw std::logic_error("Sequential: backward before forward");
  if (dy.shape() != outputs_.back().shape())
    throw std::invalid_argument("Sequential backward: gradient " + to_string(dy.shape()) + " does not match output " +
                                to_string(outputs_.back().shape()));
  if (pipelined_) return pipeline_->backward(dy, outputs_);
  grad_buf_.resize(2);
  const Tensor* d = &dy;
  for (size_t i = layers_.size(); i-- > 0;) {
    // The output of an activation that forward pooled before applying.
    if (i > 0 && activation_before_max_pool(i - 1))
      layers_[i - 1]->forward(i > 1 ? outputs_[i - 2] : *input_, outputs_[i - 1]);
    const Tensor& x = i ? outputs_[i - 1] : *input_;
    // The first layer's input gradient is never needed.
    Tensor* dx = i ? &grad_buf_[i % 2] : nullptr;
    layers_[i]->backward(x, outputs_[i], *d, dx);
    d = dx;
  }
}

void Sequential::zero_grad() { grads_.zero(); }

std::vector<Parameter*> Sequential::parameters() {
  std::vector<Parameter*> out;
  for (auto& l : layers_)
    for (auto& p : l->parameters()) out.push_back(&p);
  return out;
}

std::vector<const Parameter*> Sequential::parameters() const {
  std::vector<const Parameter*> out;
  for (auto& l : layers_)
    for (auto& p : l->parameters()) out.push_back(&p);
  return out;
}

std::vector<Shape> Sequential::layer_shapes(const Shape& input) const {
  std::vector<Shape> shapes;
  Shape s = input;
  for (size_t i = 0; i < layers_.size(); ++i) {
    try {
      s = layers_[i]->output_shape(s);
    } catch (const std::invalid_argument& e) {
      throw std::invalid_argument("layer " + std::to_string(i + 1) + " (" + layers_[i]->spec() + "): " + e.what());
    }
    shapes.push_back(s);
  }
  return shapes;
}

std::string Sequential::summary(const Shape& input) const {
  auto shapes = layer_shapes(input);
  std::string out;
  for (size_t i = 0; i < layers_.size(); ++i)
    out += layers_[i]->type() + " output shape:\t" + to_string(shapes[i]) + "\n";
  return out;
}

std::string Sequential::spec() const {
  std::string s;
  for (size_t i = 0; i < layers_.size(); ++i) s += (i ? ", " : "") + layers_[i]->spec();
  return s;
}

// ---- initialisation ----

void init_xavier_uniform(Module& layer, Rng& rng) {
  for (auto& p : layer.parameters()) {
    if (p.shape.size() >= 2) {
      // fan_in = C·KH·KW (or in), fan_out = O·KH·KW (or out), as PyTorch computes them.
      int64_t receptive = 1;
      for (size_t d = 2; d < p.shape.size(); ++d) receptive *= p.shape[d];
      const double fan_in = static_cast<double>(p.shape[1] * receptive);
      const double fan_out = static_cast<double>(p.shape[0] * receptive);
      const float a = static_cast<float>(std::sqrt(6.0 / (fan_in + fan_out)));
      for (float& v : p.values()) v = rng.uniform(-a, a);
    } else {
      for (float& v : p.values()) v = 0.0f;
    }
  }
}

void init_xavier_uniform(Sequential& model, Rng& rng) {
  for (size_t i = 0; i < model.size(); ++i) init_xavier_uniform(model[i], rng);
}

}  // namespace lenet

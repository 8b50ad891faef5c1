#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "lenet/nn.h"
#include "lenet/quant.h"
#include "runtime/isa.h"
#include "runtime/pipeline.h"

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
    layers_[i]->rebind({values.data() + offset, static_cast<size_t>(n)},
                       {grads.data() + offset, static_cast<size_t>(n)});
    auto rename = [&](Parameter& p) {
      auto dot = p.name.find('.');
      p.name = std::to_string(i) + "." + (dot == std::string::npos ? p.name : p.name.substr(dot + 1));
    };
    for (auto& p : params) rename(p);
    for (auto& b : layers_[i]->buffers()) rename(b);
    offset += n;
  }
  values_ = std::move(values);
  grads_ = std::move(grads);
  outputs_.resize(layers_.size());
  pipeline_.reset();
  quant_.reset();
  input_ = nullptr;
}

const Tensor& Sequential::forward(const Tensor& x) {
  if (layers_.empty()) throw std::logic_error("Sequential: no layers");
  // One engine for every batch: planned once per input shape, re-planned
  // when the shape changes.
  if (!pipeline_ || !pipeline_->fits(x.shape())) {
    pipeline_.reset();
    layer_shapes(x.shape());  // throws, naming the layer, for an input the stack cannot take
    pipeline_ = quant_ ? runtime::active().build_int8_pipeline(layers_, *quant_, x.shape())
                       : runtime::active().build_pipeline(layers_, x.shape());
    if (!pipeline_)
      throw std::invalid_argument("Sequential: the engine cannot run " + spec() + " on input " + to_string(x.shape()) +
                                  " (image layers take [N, C, H, W], Linear and activations after Flatten [N, F])");
  }
  input_ = &x;
  pipeline_->forward(x, outputs_);
  return outputs_.back();
}

void Sequential::backward(const Tensor& dy) {
  if (quant_)
    throw std::logic_error("Sequential: an int8 model runs inference only (train the float model, then quantize it)");
  if (!input_) throw std::logic_error("Sequential: backward before forward");
  if (dy.shape() != outputs_.back().shape())
    throw std::invalid_argument("Sequential backward: gradient " + to_string(dy.shape()) + " does not match output " +
                                to_string(outputs_.back().shape()));
  pipeline_->backward(dy, outputs_);
}

void Sequential::zero_grad() { grads_.zero(); }

void Sequential::train(bool on) {
  for (auto& l : layers_) l->train(on);
}

bool Sequential::training() const {
  return std::any_of(layers_.begin(), layers_.end(), [](const auto& l) { return l->training(); });
}

void Sequential::check_training_batch(int64_t batch, const Shape& input_chw) const {
  Shape in = {batch};
  in.insert(in.end(), input_chw.begin(), input_chw.end());
  const std::vector<Shape> shapes = layer_shapes(in);
  for (size_t i = 0; i < layers_.size(); ++i)
    if (const auto* bn = dynamic_cast<const BatchNorm*>(layers_[i].get())) try {
        bn->check_batch(i ? shapes[i - 1] : in);
      } catch (const std::invalid_argument& e) {
        throw std::invalid_argument("layer " + std::to_string(i + 1) + " (bn): " + e.what());
      }
}

std::vector<Parameter*> Sequential::buffers() {
  std::vector<Parameter*> out;
  for (auto& l : layers_)
    for (auto& b : l->buffers()) out.push_back(&b);
  return out;
}

std::vector<const Parameter*> Sequential::buffers() const {
  std::vector<const Parameter*> out;
  for (auto& l : layers_)
    for (auto& b : l->buffers()) out.push_back(&b);
  return out;
}

void Sequential::set_quantization(const Quantization& q) {
  validate_quantization(*this, q);
  for (const LayerQuantization& lq : q.layers) {
    auto& params = layers_[lq.layer]->parameters();
    const int64_t per_channel = params[0].numel() / static_cast<int64_t>(lq.weight_scales.size());
    for (int64_t i = 0; i < params[0].numel(); ++i)
      params[0].value[i] = static_cast<float>(lq.weights[static_cast<size_t>(i)]) *
                           lq.weight_scales[static_cast<size_t>(i / per_channel)];
    if (params.size() > 1)
      for (int64_t o = 0; o < params[1].numel(); ++o)
        params[1].value[o] = static_cast<float>(lq.bias[static_cast<size_t>(o)]) *
                             (lq.input_scale * lq.weight_scales[static_cast<size_t>(o)]);
  }
  quant_ = std::make_unique<Quantization>(q);
  pipeline_.reset();
  input_ = nullptr;
}

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
  if (auto* bn = dynamic_cast<BatchNorm*>(&layer)) return bn->reset_parameters();
  if (auto* dropout = dynamic_cast<Dropout*>(&layer)) return dropout->set_seed(rng.next());
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

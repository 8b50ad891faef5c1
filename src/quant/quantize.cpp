// Post-training static quantization (lenet/quant.h): ranges measured on the
// float model, weights rounded per output channel.
#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>

#include "lenet/nn.h"
#include "lenet/quant.h"

namespace lenet {

namespace {

bool has_int8_weights(const Module& m) {
  return dynamic_cast<const Conv2d*>(&m) != nullptr || dynamic_cast<const Linear*>(&m) != nullptr;
}

// Layers the int8 plan runs: the quantized ones, and the float ones between them.
bool has_int8_plan(const Module& m) {
  return has_int8_weights(m) || dynamic_cast<const Pool2d*>(&m) != nullptr ||
         dynamic_cast<const Activation*>(&m) != nullptr || dynamic_cast<const Flatten*>(&m) != nullptr;
}

std::string layer_name(const Sequential& model, size_t i) {
  return "layer " + std::to_string(i + 1) + " (" + model[i].describe() + ")";
}

int64_t out_channels(const Module& m) {
  if (const auto* c = dynamic_cast<const Conv2d*>(&m)) return c->options().out;
  return dynamic_cast<const Linear&>(m).out_features();
}

// Where each quantized layer's input values fall.
struct Range {
  float lo = 0, hi = 0;  // always includes 0 (a float 0 must be exact: padding)
  std::vector<int64_t> histogram;
};
constexpr int kBins = 4096;

// Runs `images` through the float model batch by batch (the plain per-layer
// path), calling see(position, input of that layer) before every Conv2d/Linear.
template <class See>
void run_float(Sequential& model, const Tensor& images, See&& see) {
  const int64_t n = images.shape()[0], per = numel(images.shape()) / n;
  constexpr int64_t kBatch = 256;
  Tensor x, y;
  for (int64_t first = 0; first < n; first += kBatch) {
    const int64_t count = std::min(kBatch, n - first);
    Shape s = images.shape();
    s[0] = count;
    x = Tensor(s, std::span<const float>(images.data() + first * per, static_cast<size_t>(count * per)));
    for (size_t i = 0; i < model.size(); ++i) {
      if (has_int8_weights(model[i])) see(i, x);
      model[i].forward(x, y);
      std::swap(x, y);
    }
  }
}

// The scale of one output channel's weights w[0..n), rounded to -qmax..qmax.
// max |w| / qmax keeps every weight; with `clip`, the scale among
// (0.6 .. 1) · max |w| / qmax with the least squared rounding error (a few
// extreme weights saturate), which matters on a grid as coarse as 7 bits.
float weight_scale(const float* w, int64_t n, float qmax, bool clip) {
  float m = 0;
  for (int64_t k = 0; k < n; ++k) m = std::max(m, std::fabs(w[k]));
  if (!(m > 0 && std::isfinite(m))) return 1.0f;
  float best = m / qmax;
  double best_error = std::numeric_limits<double>::infinity();
  for (int step = 0; step <= (clip ? 40 : 0); ++step) {
    const float scale = m / qmax * (1.0f - 0.01f * static_cast<float>(step));
    double error = 0;
    for (int64_t k = 0; k < n; ++k) {
      const double e = std::clamp(std::nearbyint(w[k] / scale), -qmax, qmax) * scale - w[k];
      error += e * e;
    }
    if (error < best_error) best_error = error, best = scale;
  }
  return best;
}

}  // namespace

void validate_quantization(const Sequential& model, const Quantization& q) {
  size_t next = 0;
  for (size_t i = 0; i < model.size(); ++i) {
    const Module& m = model[i];
    if (!has_int8_plan(m)) throw std::invalid_argument(layer_name(model, i) + " has no int8 path");
    if (!has_int8_weights(m)) continue;
    const std::string name = layer_name(model, i);
    if (next >= q.layers.size() || q.layers[next].layer != i)
      throw std::invalid_argument(name + " has no int8 parameters");
    const LayerQuantization& l = q.layers[next++];
    const auto& params = m.parameters();
    const int64_t out = out_channels(m);
    if (!(std::isfinite(l.input_scale) && l.input_scale > 0))
      throw std::invalid_argument(name + ": input scale " + std::to_string(l.input_scale) +
                                  " is not a positive finite number");
    if (l.input_zero_point < 0 || l.input_zero_point > 255)
      throw std::invalid_argument(name + ": input zero point " + std::to_string(l.input_zero_point) +
                                  " is outside 0..255 (uint8)");
    if (static_cast<int64_t>(l.weight_scales.size()) != out)
      throw std::invalid_argument(name + ": " + std::to_string(l.weight_scales.size()) + " weight scales for " +
                                  std::to_string(out) + " output channels");
    for (size_t o = 0; o < l.weight_scales.size(); ++o) {
      const float s = l.weight_scales[o], product = s * l.input_scale;
      if (!(std::isfinite(s) && s > 0 && std::isfinite(product) && product > 0))
        throw std::invalid_argument(name + ": weight scale " + std::to_string(s) + " of output channel " +
                                    std::to_string(o) + " is not a positive finite number");
    }
    if (static_cast<int64_t>(l.weights.size()) != params[0].numel())
      throw std::invalid_argument(name + ": " + std::to_string(l.weights.size()) + " int8 weights, the layer has " +
                                  std::to_string(params[0].numel()));
    const size_t bias = params.size() > 1 ? static_cast<size_t>(out) : 0;
    if (l.bias.size() != bias)
      throw std::invalid_argument(name + ": " + std::to_string(l.bias.size()) + " int32 biases, expected " +
                                  std::to_string(bias));
  }
  if (next != q.layers.size())
    throw std::invalid_argument("int8 parameters for " + std::to_string(q.layers.size()) + " layers, the model has " +
                                std::to_string(next) + " Conv2d/Linear layers");
}

Quantization quantize_model(Sequential& model, const Tensor& calibration, const QuantizeOptions& options) {
  for (size_t i = 0; i < model.size(); ++i)
    if (!has_int8_plan(model[i]))
      throw std::invalid_argument(layer_name(model, i) + " has no int8 path, so the model cannot be quantized");
  if (model.quantization()) throw std::invalid_argument("the model is quantized already");
  if (calibration.shape().size() < 2 || calibration.shape()[0] < 1)
    throw std::invalid_argument("quantize: calibration needs at least one image, got shape " +
                                to_string(calibration.shape()));
  model.layer_shapes(calibration.shape());  // throws naming the layer when the images do not fit

  std::vector<Range> ranges(model.size());
  run_float(model, calibration, [&](size_t i, const Tensor& x) {
    Range& r = ranges[i];
    for (float v : x.span()) {
      if (!std::isfinite(v)) continue;
      r.lo = std::min(r.lo, v);
      r.hi = std::max(r.hi, v);
    }
  });
  if (options.method == CalibrationMethod::Percentile) {
    // A histogram over [lo, hi] per layer; the range kept drops `percentile_tail`
    // of the values on each side (those saturate).
    for (auto& r : ranges) r.histogram.assign(kBins, 0);
    run_float(model, calibration, [&](size_t i, const Tensor& x) {
      Range& r = ranges[i];
      const float width = r.hi - r.lo;
      if (width <= 0) return;
      for (float v : x.span()) {
        if (!std::isfinite(v)) continue;
        const int bin = std::clamp(static_cast<int>((v - r.lo) / width * kBins), 0, kBins - 1);
        ++r.histogram[static_cast<size_t>(bin)];
      }
    });
    for (auto& r : ranges) {
      int64_t total = 0;
      for (int64_t c : r.histogram) total += c;
      if (total == 0) continue;
      const auto tail = static_cast<int64_t>(options.percentile_tail * static_cast<double>(total));
      const float width = (r.hi - r.lo) / kBins;
      int lo_bin = 0, hi_bin = kBins - 1;
      for (int64_t seen = 0; lo_bin < kBins - 1 && (seen += r.histogram[static_cast<size_t>(lo_bin)]) <= tail;)
        ++lo_bin;
      for (int64_t seen = 0; hi_bin > 0 && (seen += r.histogram[static_cast<size_t>(hi_bin)]) <= tail;) --hi_bin;
      const float lo = r.lo + width * static_cast<float>(lo_bin), hi = r.lo + width * static_cast<float>(hi_bin + 1);
      r.lo = std::min(0.0f, std::max(r.lo, lo));
      r.hi = std::max(0.0f, std::min(r.hi, hi));
    }
  }

  // Symmetric weights: -127..127, or -64..64 with reduce_range (ONNX Runtime's
  // reduce_range convention; 255·64·2 still fits pmaddubsw's int16).
  const float weight_max = options.reduce_range ? 64.0f : 127.0f;
  Quantization q;
  for (size_t i = 0; i < model.size(); ++i) {
    if (!has_int8_weights(model[i])) continue;
    LayerQuantization l;
    l.layer = i;
    const Range& r = ranges[i];
    const float width = r.hi - r.lo > 0 ? r.hi - r.lo : 1.0f;
    l.input_scale = width / 255.0f;
    l.input_zero_point = std::clamp(static_cast<int32_t>(std::nearbyint(-r.lo / l.input_scale)), 0, 255);
    const auto& params = model[i].parameters();
    const int64_t out = out_channels(model[i]), per = params[0].numel() / out;
    l.weights.resize(static_cast<size_t>(params[0].numel()));
    for (int64_t o = 0; o < out; ++o) {
      const float* w = params[0].value + o * per;
      const float scale = weight_scale(w, per, weight_max, options.reduce_range);
      l.weight_scales.push_back(scale);
      for (int64_t k = 0; k < per; ++k)
        l.weights[static_cast<size_t>(o * per + k)] = static_cast<int8_t>(
            std::clamp(std::nearbyint(w[k] / scale), -weight_max, weight_max));
    }
    if (params.size() > 1) {
      constexpr double kMax = std::numeric_limits<int32_t>::max();
      for (int64_t o = 0; o < out; ++o) {
        const double scale = static_cast<double>(l.input_scale * l.weight_scales[static_cast<size_t>(o)]);
        const double b = std::nearbyint(static_cast<double>(params[1].value[o]) / scale);
        l.bias.push_back(static_cast<int32_t>(std::clamp(b, -kMax, kMax)));
      }
    }
    q.layers.push_back(std::move(l));
  }
  return q;
}

}  // namespace lenet

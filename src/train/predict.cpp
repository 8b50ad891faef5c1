// Inference on prepared images: the evaluation path without labels.
#include "lenet/predict.h"

#include <algorithm>
#include <numeric>
#include <stdexcept>

#include "lenet/kernels.h"

namespace lenet {

namespace {

// Softmax of the model's logits for one batch x [n, C, H, W].
void batch_probabilities(Sequential& model, const Tensor& x, int classes, float* probabilities) {
  const Tensor& logits = model.forward(x);
  if (logits.dim() != 2 || logits.size(1) != classes)
    throw std::invalid_argument("predict: the model gives " + to_string(logits.shape()) + " outputs for " +
                                std::to_string(classes) + " class names");
  kernels::softmax(static_cast<int>(x.size(0)), classes, logits.data(), probabilities);
}

}  // namespace

void predict_probabilities(Sequential& model, const ModelInfo& info, const float* inputs, int64_t count,
                           float* probabilities, int batch_size) {
  if (info.input_shape.size() != 3)
    throw std::invalid_argument("predict: model input shape " + to_string(info.input_shape) + " is not [C, H, W]");
  if (batch_size < 1)
    throw std::invalid_argument("predict: batch size must be positive, got " + std::to_string(batch_size));
  const int classes = static_cast<int>(info.class_names.size());
  if (classes < 1) throw std::invalid_argument("predict: the model names no classes");
  const int64_t c = info.input_shape[0], h = info.input_shape[1], w = info.input_shape[2];
  const int64_t sample = c * h * w;
  Tensor x;
  for (int64_t start = 0; start < count; start += batch_size) {
    const int64_t n = std::min<int64_t>(count - start, batch_size);
    x.resize({n, c, h, w});
    std::copy(inputs + start * sample, inputs + (start + n) * sample, x.data());
    batch_probabilities(model, x, classes, probabilities + start * classes);
  }
}

std::vector<Prediction> predict_images(Sequential& model, const ModelInfo& info, const std::vector<Image>& images,
                                       int top_k, int batch_size) {
  if (info.input_shape.size() != 3)
    throw std::invalid_argument("predict: model input shape " + to_string(info.input_shape) + " is not [C, H, W]");
  if (batch_size < 1)
    throw std::invalid_argument("predict: batch size must be positive, got " + std::to_string(batch_size));
  const int classes = static_cast<int>(info.class_names.size());
  if (classes < 1) throw std::invalid_argument("predict: the model names no classes");
  const int k = std::clamp(top_k, 1, classes);
  const int64_t c = info.input_shape[0], h = info.input_shape[1], w = info.input_shape[2];
  const int64_t sample = c * h * w;
  for (size_t i = 0; i < images.size(); ++i)
    if (images[i].channels != c || images[i].height != h || images[i].width != w)
      throw std::invalid_argument("predict: image " + std::to_string(i) + " is " + std::to_string(images[i].channels) +
                                  "x" + size_text(images[i].height, images[i].width) + " but the model takes " +
                                  to_string(info.input_shape));

  const EvalScope eval_mode(model);
  std::vector<Prediction> out;
  out.reserve(images.size());
  Tensor x;
  std::vector<float> probs;
  std::vector<int> order(static_cast<size_t>(classes));
  for (size_t start = 0; start < images.size(); start += static_cast<size_t>(batch_size)) {
    const int n = static_cast<int>(std::min(images.size() - start, static_cast<size_t>(batch_size)));
    x.resize({n, c, h, w});
    for (int i = 0; i < n; ++i)
      image_to_floats(images[start + i], info.preprocessing.normalization, x.data() + i * sample);
    probs.resize(static_cast<size_t>(n) * classes);
    batch_probabilities(model, x, classes, probs.data());
    for (int i = 0; i < n; ++i) {
      const float* p = probs.data() + static_cast<size_t>(i) * classes;
      std::iota(order.begin(), order.end(), 0);
      std::partial_sort(order.begin(), order.begin() + k, order.end(),
                        [p](int a, int b) { return p[a] > p[b] || (p[a] == p[b] && a < b); });
      Prediction pred;
      for (int j = 0; j < k; ++j) pred.top.push_back({order[j], p[order[j]]});
      out.push_back(std::move(pred));
    }
  }
  return out;
}

}  // namespace lenet

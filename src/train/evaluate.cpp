// Evaluation: mean cross-entropy, accuracy and the confusion matrix over a data set.
#include <algorithm>
#include <limits>
#include <stdexcept>
#include <string>

#include "lenet/kernels.h"
#include "lenet/train.h"

namespace lenet {

std::vector<double> Evaluation::per_class_accuracy() const {
  std::vector<double> acc(static_cast<size_t>(classes), 0.0);
  for (int t = 0; t < classes; ++t) {
    int64_t row = 0;
    for (int p = 0; p < classes; ++p) row += confusion[static_cast<size_t>(t) * classes + p];
    // A class without samples has no accuracy: NaN, not a misleading 0.
    acc[static_cast<size_t>(t)] = row ? static_cast<double>(confusion[static_cast<size_t>(t) * classes + t]) / row
                                      : std::numeric_limits<double>::quiet_NaN();
  }
  return acc;
}

Evaluation evaluate(Sequential& model, const Dataset& data, const Normalization& norm, int batch_size) {
  if (data.count == 0) throw std::invalid_argument("evaluate: the data set is empty");
  const int k = data.num_classes();
  const std::vector<Shape> shapes = model.layer_shapes({1, data.channels, data.height, data.width});
  if (shapes.back() != Shape{1, k})
    throw std::invalid_argument("evaluate: the model produces " + to_string(shapes.back()) +
                                " per image but the data has " + std::to_string(k) + " classes");
  const EvalScope eval_mode(model);  // running statistics, no dropout; the caller's mode afterwards
  Evaluation ev;
  ev.classes = k;
  ev.count = data.count;
  ev.confusion.assign(static_cast<size_t>(k) * k, 0);
  DataLoader loader(data, batch_size, false, 0, norm);
  Tensor images;
  std::vector<int32_t> labels;
  double loss_sum = 0;
  int64_t correct = 0;
  while (loader.next(images, labels)) {
    const int n = static_cast<int>(labels.size());
    const Tensor& logits = model.forward(images);
    int64_t hits = 0;
    loss_sum += kernels::softmax_cross_entropy(n, k, logits.data(), labels.data(), nullptr, kernels::Reduction::Sum,
                                               &hits);
    correct += hits;
    for (int r = 0; r < n; ++r) {
      const float* z = logits.data() + static_cast<int64_t>(r) * k;
      const int predicted = static_cast<int>(std::max_element(z, z + k) - z);  // first maximum, as the loss counts it
      ++ev.confusion[static_cast<size_t>(labels[static_cast<size_t>(r)]) * k + predicted];
    }
  }
  ev.loss = loss_sum / static_cast<double>(data.count);
  ev.accuracy = static_cast<double>(correct) / static_cast<double>(data.count);
  return ev;
}

}  // namespace lenet

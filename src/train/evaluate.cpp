// Evaluation: mean cross-entropy, accuracy and the confusion matrix over a data set.
#include <algorithm>
#include <limits>
#include <stdexcept>
#include <string>

#include "lenet/kernels.h"
#include "lenet/train.h"
#include "train/distributed.h"

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

namespace {

// The sums of an evaluation over images [begin, end) of `data`, in batches of
// `batch_size` counted from `begin`: loss as a sum, not yet divided.
Evaluation evaluate_range(Sequential& model, const Dataset& data, const Normalization& norm, int batch_size,
                          int64_t begin, int64_t end) {
  if (data.count == 0) throw std::invalid_argument("evaluate: the data set is empty");
  if (batch_size < 1)
    throw std::invalid_argument("evaluate: batch size must be positive, got " + std::to_string(batch_size));
  if (static_cast<int64_t>(data.labels.size()) != data.count ||
      static_cast<int64_t>(data.pixels.size()) != data.count * data.sample_size())
    throw std::invalid_argument("evaluate: the data set's pixel and label buffers do not match its count");
  norm.check("evaluate", data.channels);
  const int k = data.num_classes();
  const std::vector<Shape> shapes = model.layer_shapes({1, data.channels, data.height, data.width});
  if (shapes.back() != Shape{1, k})
    throw std::invalid_argument("evaluate: the model produces " + to_string(shapes.back()) +
                                " per image but the data has " + std::to_string(k) + " classes");
  const EvalScope eval_mode(model);  // running statistics, no dropout; the caller's mode afterwards
  Evaluation ev;
  ev.classes = k;
  ev.count = end - begin;
  ev.confusion.assign(static_cast<size_t>(k) * k, 0);
  Tensor images;
  const int64_t sample = data.sample_size();
  double loss_sum = 0;
  int64_t correct = 0;
  for (int64_t at = begin; at < end; at += batch_size) {
    const int n = static_cast<int>(std::min<int64_t>(batch_size, end - at));
    images.resize({n, data.channels, data.height, data.width});
    pixels_to_floats(data.pixels.data() + at * sample, n, data.channels, static_cast<int64_t>(data.height) * data.width,
                     norm, images.data());
    const int32_t* labels = data.labels.data() + at;
    const Tensor& logits = model.forward(images);
    int64_t hits = 0;
    loss_sum += kernels::softmax_cross_entropy(n, k, logits.data(), labels, nullptr, kernels::Reduction::Sum, &hits);
    correct += hits;
    for (int r = 0; r < n; ++r) {
      const float* z = logits.data() + static_cast<int64_t>(r) * k;
      const int predicted = static_cast<int>(std::max_element(z, z + k) - z);  // first maximum, as the loss counts it
      ++ev.confusion[static_cast<size_t>(labels[r]) * k + predicted];
    }
  }
  ev.loss = loss_sum;
  ev.accuracy = static_cast<double>(correct);
  return ev;
}

// Sums to means.
Evaluation finish(Evaluation ev, int64_t count) {
  ev.count = count;
  ev.loss /= static_cast<double>(count);
  ev.accuracy /= static_cast<double>(count);
  return ev;
}

}  // namespace

Evaluation evaluate(Sequential& model, const Dataset& data, const Normalization& norm, int batch_size) {
  return finish(evaluate_range(model, data, norm, batch_size, 0, data.count), data.count);
}

Evaluation evaluate_on_all_ranks(Sequential& model, const Dataset& data, const Normalization& norm) {
  const int ranks = distributed::size(), me = distributed::rank();
  if (ranks == 1) return evaluate(model, data, norm);
  // Rank r takes the r-th contiguous share: every image is counted once.
  const int64_t begin = data.count * me / ranks, end = data.count * (me + 1) / ranks;
  Evaluation ev = evaluate_range(model, data, norm, 256, begin, end);
  std::vector<double> loss = {ev.loss};
  std::vector<int64_t> counts = ev.confusion;
  counts.push_back(static_cast<int64_t>(ev.accuracy));
  distributed::sum(std::span<double>(loss), "evaluation sums");
  distributed::sum(std::span<int64_t>(counts), "evaluation sums");
  ev.loss = loss[0];
  ev.accuracy = static_cast<double>(counts.back());
  counts.pop_back();
  ev.confusion = std::move(counts);
  return finish(std::move(ev), data.count);
}

}  // namespace lenet

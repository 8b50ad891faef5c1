// The validation hold-out: a seeded, stratified part of the training set that
// picks the best epoch, so the test set never does.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <stdexcept>
#include <string>

#include "lenet/data.h"
#include "lenet/random.h"

namespace lenet {

namespace {

std::string fraction_text(double f) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", f);
  return buf;
}

Dataset select(const Dataset& d, const std::vector<int64_t>& keep) {
  Dataset out;
  out.class_names = d.class_names;
  out.channels = d.channels, out.height = d.height, out.width = d.width;
  out.count = static_cast<int64_t>(keep.size());
  const auto size = static_cast<size_t>(d.sample_size());
  out.pixels.resize(size * keep.size());
  out.labels.reserve(keep.size());
  for (size_t j = 0; j < keep.size(); ++j) {
    const auto i = static_cast<size_t>(keep[j]);
    std::copy_n(d.pixels.begin() + static_cast<std::ptrdiff_t>(i * size), size,
                out.pixels.begin() + static_cast<std::ptrdiff_t>(j * size));
    out.labels.push_back(d.labels[i]);
    if (!d.files.empty()) out.files.push_back(d.files[i]);
  }
  return out;
}

}  // namespace

void hold_out_validation(DataSplit& data, double fraction, uint64_t seed) {
  if (!(fraction > 0 && fraction < 1))
    throw std::invalid_argument("--val-split must lie between 0 and 1 (exclusive), got " + fraction_text(fraction));
  const Dataset& train = data.train;
  const int classes = train.num_classes();
  std::vector<std::vector<int64_t>> by_class(static_cast<size_t>(classes));
  for (int64_t i = 0; i < train.count; ++i)
    by_class[static_cast<size_t>(train.labels[static_cast<size_t>(i)])].push_back(i);
  Rng rng(seed);
  std::vector<char> held(static_cast<size_t>(train.count), 0);
  for (int c = 0; c < classes; ++c) {
    auto& members = by_class[static_cast<size_t>(c)];
    const auto n = static_cast<int64_t>(members.size());
    const int64_t k = std::llround(fraction * static_cast<double>(n));
    if (k == 0 || k == n)
      throw std::invalid_argument("--val-split " + fraction_text(fraction) + " leaves class '" +
                                  train.class_names[static_cast<size_t>(c)] + "' empty in the " +
                                  (k == 0 ? "validation" : "training") + " set (it has " + std::to_string(n) +
                                  " training images)");
    rng.shuffle(std::span<int64_t>(members));
    for (int64_t j = 0; j < k; ++j) held[static_cast<size_t>(members[static_cast<size_t>(j)])] = 1;
  }
  std::vector<int64_t> keep, val;
  for (int64_t i = 0; i < train.count; ++i) (held[static_cast<size_t>(i)] ? val : keep).push_back(i);
  data.val = select(train, val);
  data.train = select(train, keep);
}

}  // namespace lenet

// Batching: a seeded shuffle per epoch, a partial last batch, pixels scaled to
// [0, 1] and normalised as they are copied into the batch.
#include <algorithm>
#include <numeric>
#include <stdexcept>
#include <string>

#include "lenet/data.h"

namespace lenet {

namespace {
// SplitMix64 finaliser: spreads (seed, epoch) over the generator's seed space,
// so neighbouring seeds and epochs give unrelated orders.
uint64_t mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}
}  // namespace

void pixels_to_floats(const uint8_t* pixels, int64_t n, const Normalization& norm, float* out) {
  // (p / 255 − mean) / std, as torchvision's ToTensor followed by Normalize.
  const float mean = norm.mean, inv_std = 1.0f / norm.std;
  if (!norm.enabled()) {
    for (int64_t i = 0; i < n; ++i) out[i] = static_cast<float>(pixels[i]) / 255.0f;
  } else {
    for (int64_t i = 0; i < n; ++i) out[i] = (static_cast<float>(pixels[i]) / 255.0f - mean) * inv_std;
  }
}

DataLoader::DataLoader(const Dataset& data, int batch_size, bool shuffle, uint64_t seed, Normalization norm)
    : data_(&data), batch_(batch_size), shuffle_(shuffle), seed_(seed), norm_(norm) {
  if (batch_size < 1)
    throw std::invalid_argument("DataLoader: batch size must be positive, got " + std::to_string(batch_size));
  if (!(norm.std > 0))
    throw std::invalid_argument("DataLoader: normalisation std must be positive, got " + std::to_string(norm.std));
  if (static_cast<int64_t>(data.labels.size()) != data.count ||
      static_cast<int64_t>(data.pixels.size()) != data.count * data.sample_size())
    throw std::invalid_argument("DataLoader: the data set's pixel and label buffers do not match its count");
  order_.resize(static_cast<size_t>(data.count));
  start_epoch(0);
}

void DataLoader::start_epoch(int epoch) {
  std::iota(order_.begin(), order_.end(), int64_t{0});
  if (shuffle_) {
    Rng rng(mix(seed_ ^ mix(static_cast<uint64_t>(epoch))));
    rng.shuffle(std::span<int64_t>(order_));
  }
  cursor_ = 0;
}

bool DataLoader::next(Tensor& images, std::vector<int32_t>& labels) {
  const int64_t total = data_->count;
  if (cursor_ >= total) return false;
  const int64_t whole = std::min<int64_t>(batch_, total - cursor_);
  // This part's slice of the whole batch (all of it unless sharded).
  const int64_t base = whole / parts_, extra = whole % parts_;
  const int64_t first = cursor_ + part_ * base + std::min<int64_t>(part_, extra);
  const int64_t n = base + (part_ < extra ? 1 : 0);
  const int64_t sample = data_->sample_size();
  images.resize({n, data_->channels, data_->height, data_->width});
  labels.resize(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    const int64_t index = order_[static_cast<size_t>(first + i)];
    pixels_to_floats(data_->pixels.data() + index * sample, sample, norm_, images.data() + i * sample);
    labels[static_cast<size_t>(i)] = data_->labels[static_cast<size_t>(index)];
  }
  cursor_ += whole;
  last_batch_ = whole;
  return true;
}

void DataLoader::shard(int part, int parts) {
  if (parts < 1 || part < 0 || part >= parts)
    throw std::invalid_argument("DataLoader: part " + std::to_string(part) + " of " + std::to_string(parts) +
                                " does not exist");
  part_ = part;
  parts_ = parts;
}

int64_t DataLoader::batches_per_epoch() const { return (data_->count + batch_ - 1) / batch_; }

}  // namespace lenet

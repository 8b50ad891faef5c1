// Batching: a seeded shuffle per epoch, a partial last batch, pixels scaled to
// [0, 1], augmented (training) and normalised as they are copied into the batch.
#include <algorithm>
#include <cmath>
#include <numeric>
#include <stdexcept>
#include <string>

#include "data/seed_mix.h"
#include "lenet/data.h"

namespace lenet {

using data_detail::mix_seed;

bool Normalization::enabled() const {
  return std::any_of(mean.begin(), mean.end(), [](float m) { return m != 0.0f; }) ||
         std::any_of(std.begin(), std.end(), [](float s) { return s != 1.0f; });
}

void Normalization::check(const std::string& what, int channels) const {
  if (mean.empty() || mean.size() != std.size())
    throw std::invalid_argument(what + ": " + std::to_string(mean.size()) + " mean(s) but " +
                                std::to_string(std.size()) + " std(s); give one each, or one per channel");
  if (channels > 0 && mean.size() != 1 && mean.size() != static_cast<size_t>(channels))
    throw std::invalid_argument(what + ": " + std::to_string(mean.size()) + " per-channel values for " +
                                std::to_string(channels) + " channel(s)");
  for (size_t c = 0; c < mean.size(); ++c)
    if (!std::isfinite(mean[c]) || !std::isfinite(std[c]) || !(std[c] > 0))
      throw std::invalid_argument(what + ": normalisation std must be positive and mean and std finite, got mean " +
                                  std::to_string(mean[c]) + " std " + std::to_string(std[c]));
}

void pixels_to_floats(const uint8_t* pixels, int64_t count, int channels, int64_t plane, const Normalization& norm,
                      float* out) {
  // (p / 255 − mean_c) / std_c, as torchvision's ToTensor followed by Normalize.
  const bool on = norm.enabled();
  for (int64_t s = 0; s < count; ++s) {
    for (int c = 0; c < channels; ++c) {
      const int64_t at = (s * channels + c) * plane;
      const uint8_t* p = pixels + at;
      float* o = out + at;
      if (!on) {
        for (int64_t i = 0; i < plane; ++i) o[i] = static_cast<float>(p[i]) / 255.0f;
      } else {
        const float mean = norm.mean_of(c), inv_std = 1.0f / norm.std_of(c);
        for (int64_t i = 0; i < plane; ++i) o[i] = (static_cast<float>(p[i]) / 255.0f - mean) * inv_std;
      }
    }
  }
}

void pixels_to_floats(const uint8_t* pixels, int64_t n, const Normalization& norm, float* out) {
  if (norm.per_channel())
    throw std::invalid_argument("pixels_to_floats: a per-channel normalisation needs the channel count");
  pixels_to_floats(pixels, 1, 1, n, norm, out);
}

void normalize_floats(float* values, int64_t count, int channels, int64_t plane, const Normalization& norm) {
  if (!norm.enabled()) return;
  for (int64_t s = 0; s < count; ++s) {
    for (int c = 0; c < channels; ++c) {
      float* v = values + (s * channels + c) * plane;
      const float mean = norm.mean_of(c), inv_std = 1.0f / norm.std_of(c);
      for (int64_t i = 0; i < plane; ++i) v[i] = (v[i] - mean) * inv_std;
    }
  }
}

DataLoader::DataLoader(const Dataset& data, int batch_size, bool shuffle, uint64_t seed, Normalization norm,
                       Augmentation augment)
    : data_(&data),
      batch_(batch_size),
      shuffle_(shuffle),
      seed_(seed),
      norm_(std::move(norm)),
      augment_(std::move(augment)) {
  if (batch_size < 1)
    throw std::invalid_argument("DataLoader: batch size must be positive, got " + std::to_string(batch_size));
  norm_.check("DataLoader", data.channels);
  if (static_cast<int64_t>(data.labels.size()) != data.count ||
      static_cast<int64_t>(data.pixels.size()) != data.count * data.sample_size())
    throw std::invalid_argument("DataLoader: the data set's pixel and label buffers do not match its count");
  order_.resize(static_cast<size_t>(data.count));
  start_epoch(0);
}

void DataLoader::start_epoch(int epoch) {
  epoch_ = epoch;
  std::iota(order_.begin(), order_.end(), int64_t{0});
  if (shuffle_) {
    Rng rng(mix_seed(seed_ ^ mix_seed(static_cast<uint64_t>(epoch))));
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
  const int c = data_->channels, h = data_->height, w = data_->width;
  const int64_t plane = static_cast<int64_t>(h) * w;
  for (int64_t i = 0; i < n; ++i) {
    const int64_t index = order_[static_cast<size_t>(first + i)];
    float* x = images.data() + i * sample;
    if (augment_.empty()) {
      pixels_to_floats(data_->pixels.data() + index * sample, 1, c, plane, norm_, x);
    } else {
      // Augmented in [0, 1] (a padded zero is black, as torchvision before Normalize), then normalised.
      pixels_to_floats(data_->pixels.data() + index * sample, 1, c, plane, Normalization{}, x);
      Rng rng(augment_seed(seed_, epoch_, index));
      augment_image(augment_, x, c, h, w, rng, scratch_);
      normalize_floats(x, 1, c, plane, norm_);
    }
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

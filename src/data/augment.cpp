// Data augmentation (lenet/augment.h): the text of --augment, the per-image
// generator seed and the four operations on planar float images.
#include "lenet/augment.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <numbers>
#include <stdexcept>

#include "data/seed_mix.h"

namespace lenet {

namespace {

using data_detail::mix_seed;

std::string trim(const std::string& s) {
  const size_t a = s.find_first_not_of(" \t");
  if (a == std::string::npos) return "";
  return s.substr(a, s.find_last_not_of(" \t") - a + 1);
}

std::string number_text(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

const char* kKnown = "crop:P, flip[:P], rotate:DEGREES, brightness:B";

}  // namespace

std::string Augmentation::text() const {
  std::string out;
  for (const AugmentOp& op : ops) {
    if (!out.empty()) out += ',';
    switch (op.kind) {
      case AugmentOp::Kind::crop: out += "crop:" + number_text(op.amount); break;
      case AugmentOp::Kind::flip: out += "flip:" + number_text(op.amount); break;
      case AugmentOp::Kind::rotate: out += "rotate:" + number_text(op.amount); break;
      case AugmentOp::Kind::brightness: out += "brightness:" + number_text(op.amount); break;
    }
  }
  return out;
}

Augmentation parse_augmentation(const std::string& text) {
  Augmentation a;
  const std::string all = trim(text);
  if (all.empty() || all == "none") return a;
  auto fail = [&](const std::string& problem) {
    throw std::invalid_argument("--augment '" + text + "': " + problem + " (known: " + kKnown + ")");
  };
  size_t start = 0;
  while (start <= all.size()) {
    size_t end = all.find(',', start);
    if (end == std::string::npos) end = all.size();
    const std::string item = trim(all.substr(start, end - start));
    start = end + 1;
    if (item.empty()) fail("an empty item");
    const size_t colon = item.find(':');
    const std::string name = item.substr(0, colon);
    const bool has_value = colon != std::string::npos;
    double value = 0;
    if (has_value) {
      const std::string v = item.substr(colon + 1);
      char* stop = nullptr;
      value = std::strtod(v.c_str(), &stop);
      if (v.empty() || *stop || !std::isfinite(value)) fail("'" + item + "' has no number after ':'");
    }
    AugmentOp op;
    if (name == "crop") {
      op.kind = AugmentOp::Kind::crop;
      if (!has_value || value != std::floor(value) || value < 1 || value > 64)
        fail("'" + item + "': crop takes a padding of 1 to 64 pixels, e.g. crop:2");
    } else if (name == "flip") {
      op.kind = AugmentOp::Kind::flip;
      if (!has_value) value = 0.5;
      if (!(value > 0 && value <= 1)) fail("'" + item + "': flip takes a probability in (0, 1], e.g. flip:0.5");
    } else if (name == "rotate") {
      op.kind = AugmentOp::Kind::rotate;
      if (!has_value || !(value > 0 && value <= 180))
        fail("'" + item + "': rotate takes the largest angle, 0 to 180 degrees, e.g. rotate:10");
    } else if (name == "brightness") {
      op.kind = AugmentOp::Kind::brightness;
      if (!has_value || !(value > 0 && value <= 10))
        fail("'" + item + "': brightness takes B in (0, 10] (factor in [1 - B, 1 + B]), e.g. brightness:0.2");
    } else {
      fail("unknown operation '" + name + "'");
    }
    op.amount = value;
    a.ops.push_back(op);
    if (end == all.size()) break;
  }
  return a;
}

uint64_t augment_seed(uint64_t seed, int epoch, int64_t index) {
  // A salt keeps these streams apart from the shuffle's (seed, epoch) stream.
  return mix_seed(mix_seed(mix_seed(seed ^ 0x6175676d656e7421ull) ^ static_cast<uint64_t>(epoch)) ^
                  static_cast<uint64_t>(index));
}

void crop_padded(const float* in, float* out, int channels, int height, int width, int padding, int top, int left) {
  const int dy = top - padding, dx = left - padding;
  // Columns of the source that land inside the output.
  const int x0 = std::clamp(-dx, 0, width), x1 = std::clamp(width - dx, 0, width);
  for (int c = 0; c < channels; ++c) {
    const float* src = in + static_cast<int64_t>(c) * height * width;
    float* dst = out + static_cast<int64_t>(c) * height * width;
    for (int y = 0; y < height; ++y) {
      float* row = dst + static_cast<int64_t>(y) * width;
      const int sy = y + dy;
      if (sy < 0 || sy >= height || x0 >= x1) {
        std::fill(row, row + width, 0.0f);
        continue;
      }
      std::fill(row, row + x0, 0.0f);
      std::copy(src + static_cast<int64_t>(sy) * width + x0 + dx, src + static_cast<int64_t>(sy) * width + x1 + dx,
                row + x0);
      std::fill(row + x1, row + width, 0.0f);
    }
  }
}

void flip_horizontal(float* image, int channels, int height, int width) {
  for (int64_t r = 0; r < static_cast<int64_t>(channels) * height; ++r) {
    float* row = image + r * width;
    std::reverse(row, row + width);
  }
}

void rotate_nearest(const float* in, float* out, int channels, int height, int width, double degrees) {
  const double t = degrees * std::numbers::pi / 180.0;
  const double cs = std::cos(t), sn = std::sin(t);
  const double cx = (width - 1) * 0.5, cy = (height - 1) * 0.5;
  const int64_t plane = static_cast<int64_t>(height) * width;
  for (int y = 0; y < height; ++y) {
    for (int x = 0; x < width; ++x) {
      // The source of output (y, x): the inverse rotation (y grows downwards).
      const double dx = x - cx, dy = y - cy;
      const double sx = std::nearbyint(cx + dx * cs - dy * sn), sy = std::nearbyint(cy + dx * sn + dy * cs);
      const bool inside = sx >= 0 && sx < width && sy >= 0 && sy < height;
      const int64_t from = inside ? static_cast<int64_t>(sy) * width + static_cast<int64_t>(sx) : 0;
      for (int c = 0; c < channels; ++c)
        out[c * plane + static_cast<int64_t>(y) * width + x] = inside ? in[c * plane + from] : 0.0f;
    }
  }
}

void scale_brightness(float* values, int64_t n, float factor) {
  for (int64_t i = 0; i < n; ++i) values[i] = std::clamp(values[i] * factor, 0.0f, 1.0f);
}

void augment_image(const Augmentation& augmentation, float* image, int channels, int height, int width, Rng& rng,
                   std::vector<float>& scratch) {
  const int64_t n = static_cast<int64_t>(channels) * height * width;
  scratch.resize(static_cast<size_t>(n));
  for (const AugmentOp& op : augmentation.ops) {
    switch (op.kind) {
      case AugmentOp::Kind::crop: {
        const int p = static_cast<int>(op.amount);
        const int top = static_cast<int>(rng.below(2 * static_cast<uint64_t>(p) + 1));
        const int left = static_cast<int>(rng.below(2 * static_cast<uint64_t>(p) + 1));
        if (top == p && left == p) break;  // the identity
        crop_padded(image, scratch.data(), channels, height, width, p, top, left);
        std::copy(scratch.begin(), scratch.end(), image);
        break;
      }
      case AugmentOp::Kind::flip:
        if (rng.uniform01() < static_cast<float>(op.amount)) flip_horizontal(image, channels, height, width);
        break;
      case AugmentOp::Kind::rotate: {
        const float d = static_cast<float>(op.amount);
        rotate_nearest(image, scratch.data(), channels, height, width, rng.uniform(-d, d));
        std::copy(scratch.begin(), scratch.end(), image);
        break;
      }
      case AugmentOp::Kind::brightness: {
        const float b = static_cast<float>(op.amount);
        scale_brightness(image, n, rng.uniform(std::max(0.0f, 1.0f - b), 1.0f + b));
        break;
      }
    }
  }
}

}  // namespace lenet

// Any data set folder: told apart by its contents — IDX files, or an image
// folder (train/<class>/..., train.csv, or a .csv list).
#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

#include "lenet/data.h"
#include "lenet/image.h"

namespace lenet {

namespace fs = std::filesystem;

DataSplit load_dataset(const fs::path& dir, const DataOptions& options, ImageLoadReport* report) {
  std::error_code ec;
  if (!fs::exists(dir, ec)) throw std::runtime_error("data folder " + dir.string() + " does not exist");
  if (fs::is_regular_file(dir, ec) && is_image_folder(dir))
    return load_image_folder(dir, options, report);  // a .csv list
  if (!fs::is_directory(dir, ec)) throw std::runtime_error("data path " + dir.string() + " is not a folder");
  if (is_idx_folder(dir)) {
    if (options.resize_height || options.resize_width)
      throw std::invalid_argument(dir.string() + ": resizing is not supported for IDX data sets");
    if (options.channels != 1)
      throw std::invalid_argument(dir.string() + ": IDX images are grayscale (1 channel) but " +
                                  std::to_string(options.channels) +
                                  " channels were asked for (--channels, or a colour model); colour needs an image "
                                  "folder");
    return load_idx_folder(dir);
  }
  if (is_image_folder(dir)) return load_image_folder(dir, options, report);
  // A folder with some IDX files is an IDX set that lacks one: say which.
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.find("-ubyte") != std::string::npos) return load_idx_folder(dir);  // throws naming the missing file
  }
  throw std::runtime_error(dir.string() +
                           ": not a data set folder (expected the IDX files train-images-idx3-ubyte[.gz], "
                           "train-labels-idx1-ubyte[.gz], t10k-images-idx3-ubyte[.gz], t10k-labels-idx1-ubyte[.gz], "
                           "or an image folder train/<class>/*.png (test/<class>/ optional), or train.csv)");
}

Normalization compute_normalization(const Dataset& data) {
  if (data.count == 0) throw std::invalid_argument("compute_normalization: the data set is empty");
  // Exact integer sums over the 8-bit pixels: no rounding, no order dependence.
  const int channels = std::max(1, data.channels);
  const int64_t plane = static_cast<int64_t>(data.height) * data.width;
  std::vector<uint64_t> sum(static_cast<size_t>(channels), 0), sum_sq(static_cast<size_t>(channels), 0);
  for (int64_t s = 0; s < data.count; ++s)
    for (int c = 0; c < channels; ++c) {
      const uint8_t* p = data.pixels.data() + (s * channels + c) * plane;
      uint64_t a = 0, b = 0;
      for (int64_t i = 0; i < plane; ++i) a += p[i], b += static_cast<uint64_t>(p[i]) * p[i];
      sum[static_cast<size_t>(c)] += a, sum_sq[static_cast<size_t>(c)] += b;
    }
  const double n = static_cast<double>(data.count) * static_cast<double>(plane);
  Normalization norm;
  norm.mean.clear(), norm.std.clear();
  for (int c = 0; c < channels; ++c) {
    const double mean = static_cast<double>(sum[static_cast<size_t>(c)]) / n / 255.0;
    const double var = std::max(0.0, static_cast<double>(sum_sq[static_cast<size_t>(c)]) / n / (255.0 * 255.0) -
                                         mean * mean);
    norm.mean.push_back(static_cast<float>(mean));
    norm.std.push_back(static_cast<float>(std::sqrt(var)));
    if (!(norm.std.back() > 0))
      throw std::invalid_argument("compute_normalization: every pixel" +
                                  (channels > 1 ? " of channel " + std::to_string(c) : std::string()) +
                                  " has the same value; cannot normalise");
  }
  return norm;
}

}  // namespace lenet

// Data sets and batching. Images are kept as 8-bit pixels (a quarter of the
// memory of floats) and scaled to [0, 1] floats batch by batch.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "lenet/augment.h"
#include "lenet/random.h"
#include "lenet/tensor.h"

namespace lenet {

struct Dataset {
  std::vector<uint8_t> pixels;  // [count, channels, height, width], row-major
  std::vector<int32_t> labels;  // [count], each in [0, class_names.size())
  std::vector<std::string> class_names;
  std::vector<std::string> files;  // source file of each sample (image folders), else empty
  int64_t count = 0;
  int channels = 1, height = 0, width = 0;

  int64_t sample_size() const { return static_cast<int64_t>(channels) * height * width; }
  Shape input_shape() const { return {channels, height, width}; }  // [C, H, W]
  int num_classes() const { return static_cast<int>(class_names.size()); }
  // First `n` samples (or all if n >= count), e.g. for quick runs and tests.
  Dataset head(int64_t n) const;
};

// Per-pixel preprocessing after scaling to [0, 1]: x' = (x − mean_c) / std_c
// (torchvision's Normalize). One value for every channel, or one per channel
// (--normalize on RGB data). Stored in the checkpoint so that prediction repeats it.
struct Normalization {
  std::vector<float> mean{0.0f}, std{1.0f};  // equal lengths: 1, or the channel count
  float mean_of(int channel) const { return mean.size() == 1 ? mean[0] : mean[static_cast<size_t>(channel)]; }
  float std_of(int channel) const { return std.size() == 1 ? std[0] : std[static_cast<size_t>(channel)]; }
  bool per_channel() const { return mean.size() > 1; }
  bool enabled() const;
  // Throws std::invalid_argument (prefixed by `what`) unless the lengths agree,
  // fit `channels` (1 or the channel count; 0: any) and every std is positive
  // and every value finite.
  void check(const std::string& what, int channels = 0) const;
};

// How an image file becomes a model input; stored in the checkpoint.
struct Preprocessing {
  bool grayscale = true;  // luma 0.299 R + 0.587 G + 0.114 B
  int resize_height = 0;  // 0: images must already have the model's size
  int resize_width = 0;
  Normalization normalization;
};

struct DataSplit {
  Dataset train, test;
  // Held out of the training set (hold_out_validation); empty when the run has no validation split.
  Dataset val;
  std::string name;  // "fashion-mnist", "mnist", or the folder's name
  Preprocessing preprocessing;
};

// Moves round(fraction · n_c) of each class c of data.train into data.val,
// picked by a shuffle seeded with `seed`; both keep the original order. Throws
// std::invalid_argument naming the fraction and the class when a class would
// be left empty in either part, or when fraction is not in (0, 1).
void hold_out_validation(DataSplit& data, double fraction, uint64_t seed);

// ---- IDX files (MNIST, Fashion-MNIST), raw or gzip-compressed ----

// Reads one images file (magic 0x00000803) and its labels file (0x00000801).
// Throws FileError (lenet/error.h) naming the file and the problem.
Dataset read_idx(const std::filesystem::path& images, const std::filesystem::path& labels);
// True when `dir` holds the four standard files (train-/t10k- images/labels,
// with or without .gz).
bool is_idx_folder(const std::filesystem::path& dir);
// Loads the four standard files; class names are Fashion-MNIST's garments when
// the folder looks like Fashion-MNIST (its name), else the digits "0".."9".
DataSplit load_idx_folder(const std::filesystem::path& dir);
// Where Debian's dataset-fashion-mnist package puts the files.
std::filesystem::path default_data_dir();
const std::vector<std::string>& fashion_mnist_classes();

// ---- any data set folder: IDX or image folder, told apart by its contents ----

struct DataOptions {
  int resize_height = 0, resize_width = 0;  // --size HxW, 0 = keep
  // Image folders: 1 grayscale (luma), 3 RGB (gray replicated, alpha dropped).
  // IDX sets are grayscale: 3 is refused for them.
  int channels = 1;
  double test_split = 0.2;  // image folders without test/: the share held out as the test set
  uint64_t seed = 0;
  int threads = 0;  // decoding; 0 = all
};
struct ImageLoadReport;
// An image folder's skipped files go to `report` (see load_image_folder); nothing is printed.
DataSplit load_dataset(const std::filesystem::path& dir, const DataOptions& options = {},
                       ImageLoadReport* report = nullptr);

// Mean and standard deviation of the pixels of `data` scaled to [0, 1], for
// --normalize: one value each for grayscale data, one per channel for colour
// (as the usual per-channel ImageNet-style statistics).
Normalization compute_normalization(const Dataset& data);

// ---- batching ----

// Yields batches of float images [B, C, H, W] scaled to [0, 1] and normalised,
// with a seeded shuffle every epoch and a partial last batch. With an
// augmentation (training only), each image is augmented after scaling and
// before normalising, from its own generator seeded by (seed, epoch, its
// index in the data set): the same images whatever the thread count, batch
// size or a resume.
class DataLoader {
 public:
  DataLoader(const Dataset& data, int batch_size, bool shuffle, uint64_t seed, Normalization norm = {},
             Augmentation augment = {});
  // Starts epoch `epoch` (0-based); the order depends only on (seed, epoch).
  void start_epoch(int epoch);
  // Fills the next batch; false when the epoch is done. Reuses the tensors' storage.
  bool next(Tensor& images, std::vector<int32_t>& labels);
  int64_t batches_per_epoch() const;
  int64_t position() const { return cursor_; }  // samples served this epoch
  // Skip ahead to a sample position within the current epoch (resuming a run).
  void seek(int64_t position) { cursor_ = position; }
  // Data-parallel training: next() then fills only part `part` of `parts` of
  // every batch (contiguous, in order; the first `n % parts` parts one image
  // larger, so a part of a small last batch may be empty), while position()
  // still counts whole batches and batch_size() tells the whole one's size.
  void shard(int part, int parts);
  int64_t batch_size() const { return last_batch_; }  // images of the last whole batch next() cut

 private:
  const Dataset* data_;
  int batch_;
  bool shuffle_;
  uint64_t seed_;
  Normalization norm_;
  Augmentation augment_;
  int epoch_ = 0;
  std::vector<float> scratch_;  // augmentation
  std::vector<int64_t> order_;
  int64_t cursor_ = 0;
  int part_ = 0, parts_ = 1;
  int64_t last_batch_ = 0;
};

// Scales `count` samples of planar [channels, plane] pixels into `out` and
// normalises channel c by norm's mean_of(c), std_of(c).
void pixels_to_floats(const uint8_t* pixels, int64_t count, int channels, int64_t plane, const Normalization& norm,
                      float* out);
// The same for `n` values of one channel (a single-value normalisation).
void pixels_to_floats(const uint8_t* pixels, int64_t n, const Normalization& norm, float* out);
// Normalises `count` samples of [channels, plane] floats in [0, 1] in place.
void normalize_floats(float* values, int64_t count, int channels, int64_t plane, const Normalization& norm);

}  // namespace lenet

// Image files: decoding (PNG through libpng, JPEG through libjpeg-turbo with
// EXIF orientation applied, BMP and binary PGM/PPM through stb_image),
// grayscale, bilinear resizing, PNG writing, and the one path by which an
// image file becomes a model input — the same for training data and for
// prediction. Also the image-folder data sets (src/data/image_folder.cpp).
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "lenet/data.h"
#include "lenet/tensor.h"

namespace lenet {

// An 8-bit image, channels interleaved row by row: channel c of pixel (y, x)
// is pixels[(y * width + x) * channels + c]. channels: 1 gray, 2 gray + alpha,
// 3 RGB, 4 RGBA.
struct Image {
  int height = 0, width = 0, channels = 0;
  std::vector<uint8_t> pixels;

  Image() = default;
  Image(int height, int width, int channels, uint8_t fill = 0);
  bool empty() const { return pixels.empty(); }
  uint8_t& at(int y, int x, int c = 0) { return pixels[(static_cast<size_t>(y) * width + x) * channels + c]; }
  uint8_t at(int y, int x, int c = 0) const { return pixels[(static_cast<size_t>(y) * width + x) * channels + c]; }
};

// Limits checked on the header before anything is allocated.
inline constexpr int kMaxImageSide = 16384;
inline constexpr int64_t kMaxImagePixels = int64_t{1} << 26;       // 64 megapixels
inline constexpr int64_t kMaxImageFileBytes = int64_t{256} << 20;  // 256 MiB

// "28x20": height x width, the order of --size.
std::string size_text(int height, int width);

// ---- decoding and encoding ----

struct ImageInfo {
  int height = 0, width = 0, channels = 0;
  std::string format;  // "PNG", "JPEG", "BMP", "PNM"
};

// Reads the header only (a JPEG's size is its upright size). Throws FileError ("<name>: <problem>", lenet/error.h) for
// an empty file, a non-image, an unsupported variant, or absurd dimensions.
ImageInfo probe_image(std::string_view bytes, const std::string& name);
// Decodes a whole image (checking the header first), in the file's own
// channels; a JPEG comes out turned upright by its EXIF orientation, with PIL's
// and OpenCV's pixels. A truncated or corrupt file throws FileError naming
// `name` and the problem ("truncated JPEG: ...", "corrupt PNG (...)").
Image decode_image(std::string_view bytes, const std::string& name);
Image read_image(const std::filesystem::path& path);

// PNG bytes (zlib-compressed by stb_image_write).
std::string encode_png(const Image& image);
// JPEG (baseline, quality 1..100) and 24/32-bit BMP bytes, e.g. for test data.
std::string encode_jpeg(const Image& image, int quality = 90);
std::string encode_bmp(const Image& image);
// Writes a PNG through write_file_atomic.
void write_png(const std::filesystem::path& path, const Image& image);

// ---- pixel operations ----

// One channel: luma 0.299 R + 0.587 G + 0.114 B in OpenCV's fixed point
// ((4899 R + 9617 G + 1868 B + 2^13) >> 14, i.e. rounded to nearest, the same
// bytes as cv::cvtColor(..., COLOR_RGB2GRAY)). Alpha is ignored; gray images
// keep their gray channel.
Image to_grayscale(const Image& image);
// Three channels (gray is repeated, alpha dropped).
Image to_rgb(const Image& image);

// Bilinear resize with pixel centres aligned: source coordinate
// (d + 0.5) · in/out − 0.5, clamped to the image — PyTorch's
// F.interpolate(mode="bilinear", align_corners=False, antialias=False) and
// OpenCV's INTER_LINEAR. Computed in double, rounded to the nearest level.
Image resize_bilinear(const Image& image, int height, int width);
// The same on float planes [channels][height][width] (tests compare it with
// PyTorch's documented output).
std::vector<float> resize_bilinear(std::span<const float> planes, int channels, int height, int width, int out_height,
                                   int out_width);
// Each pixel becomes a factor x factor block (for looking at small images).
Image upscale_nearest(const Image& image, int factor);

// ---- images as model inputs ----

// What a model sees of a decoded image: `channels` (1: grayscale, 3: RGB) and,
// when `pre` asks for it, resized to pre.resize_height x pre.resize_width.
// Training data (image folders) and `lenet predict` both go through here.
Image prepare_image(const Image& decoded, const Preprocessing& pre, int channels);
// Planar [C, H, W] floats of a prepared image, scaled to [0, 1] and normalised
// exactly as the DataLoader does (pixels_to_floats).
void image_to_floats(const Image& prepared, const Normalization& norm, float* out);
// File → [1, C, H, W] tensor for a model with `input_shape` [C, H, W]. Throws
// FileError naming the file when it cannot be read or, without a
// resize in `pre` (or `force_resize`), when its size is not the model's.
Tensor image_file_to_input(const std::filesystem::path& path, const Preprocessing& pre, const Shape& input_shape,
                           bool force_resize = false);
// The prepared image of that path (before scaling to floats), for galleries.
Image image_file_for_model(const std::filesystem::path& path, const Preprocessing& pre, const Shape& input_shape,
                           bool force_resize = false);

// Calls decode(i) once for each i in [0, count) on `threads` threads of the
// library's pool (0: num_threads()), handing out one index at a time since
// files differ in cost. Each call must write only slot i of its outputs and
// catch its own errors: the result then does not depend on the thread count.
void decode_in_parallel(int64_t count, int threads, const std::function<void(int64_t)>& decode);

// ---- image-folder data sets (src/data/image_folder.cpp) ----

// DIR/train/<class>/* (and DIR/test/<class>/*), or DIR/train.csv (+ test.csv).
bool is_image_folder(const std::filesystem::path& dir);

// What loading skipped, for the caller to show.
struct ImageLoadReport {
  std::vector<std::string> skipped;  // one line per skipped file: "<file>: <problem>"
  int64_t files = 0;                 // files looked at
  double seconds = 0;                // reading and decoding
};

// Loads an image folder (or one CSV list "path,label", relative paths from the
// CSV's folder) into memory, decoding files in parallel. Class names are the
// sorted sub-folder names of train/ (CSV: sorted labels, or 0..max when every
// label is an integer). Without test/ (or test.csv), a stratified split of
// options.test_split per class, seeded by options.seed, becomes the test set.
// Unreadable files are skipped and listed in `report` (when given; nothing is
// printed).
// Throws std::runtime_error for: images of different sizes without a resize
// (naming the file, its size and the expected one), an empty class folder,
// fewer than two classes, test classes unknown to train/, an empty data set.
DataSplit load_image_folder(const std::filesystem::path& path, const DataOptions& options = {},
                            ImageLoadReport* report = nullptr);

// "28x20" or "28X20" → {28, 20}; throws std::invalid_argument otherwise.
std::pair<int, int> parse_size(const std::string& text);

}  // namespace lenet

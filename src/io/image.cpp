// Image files: the checks common to every format and the choice of decoder
// (io/image_codecs.h: libpng, libjpeg-turbo, stb_image for BMP/PNM), encoding
// through stb_image_write (compiled in io/stb_image_impl.cpp), plus
// grayscale, bilinear resizing and the file → model-input path.
#include "lenet/image.h"

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <stdexcept>

#include "io/memory_guard.h"
#include "lenet/error.h"
#include "lenet/fileio.h"
#include "lenet/parallel.h"
#include "runtime/thread_pool.h"

// stb_image_write's declarations only; io/stb_image_impl.cpp compiles the implementation.
#define STBI_WRITE_NO_STDIO
#include <stb_image_write.h>

#include "io/image_codecs.h"

namespace lenet {

namespace fs = std::filesystem;

Image::Image(int h, int w, int c, uint8_t fill)
    : height(h), width(w), channels(c), pixels(static_cast<size_t>(h) * w * c, fill) {
  if (h < 0 || w < 0 || c < 0) throw std::invalid_argument("Image: negative size " + size_text(h, w));
}

std::string size_text(int height, int width) { return std::to_string(height) + "x" + std::to_string(width); }

namespace {

[[noreturn]] void fail(const std::string& name, const std::string& problem) { throw FileError(name, problem); }

std::string detect_format(std::string_view b) {
  if (b.size() >= 8 && b.substr(0, 8) == std::string_view("\x89PNG\r\n\x1a\n", 8)) return "PNG";
  if (b.size() >= 3 && b.substr(0, 3) == "\xFF\xD8\xFF") return "JPEG";
  if (b.size() >= 2 && b.substr(0, 2) == "BM") return "BMP";
  if (b.size() >= 2 && b[0] == 'P' && (b[1] == '5' || b[1] == '6')) return "PNM";
  return "";
}

// The format of a file that may be an image, after the checks common to all.
std::string check_and_detect(std::string_view bytes, const std::string& name) {
  if (bytes.empty()) fail(name, "empty file (0 bytes)");
  if (static_cast<int64_t>(bytes.size()) > kMaxImageFileBytes)
    fail(name, "file too large for an image (" + std::to_string(bytes.size()) + " bytes, at most " +
                   std::to_string(kMaxImageFileBytes) + ")");
  std::string format = detect_format(bytes);
  if (format.empty()) {
    if (bytes.size() >= 2 && bytes[0] == 'P' && bytes[1] >= '1' && bytes[1] <= '4')
      fail(name, std::string("ASCII/bitmap PNM (P") + bytes[1] + ") is not supported; use binary PGM (P5) or PPM (P6)");
    fail(name, "not an image (PNG, JPEG, BMP or binary PGM/PPM expected)");
  }
  return format;
}

}  // namespace

void codecs::check_image_size(int height, int width, const std::string& name) {
  if (width <= 0 || height <= 0) fail(name, "image has no pixels (" + size_text(height, width) + ")");
  if (width > kMaxImageSide || height > kMaxImageSide || static_cast<int64_t>(width) * height > kMaxImagePixels)
    fail(name, "absurd image size " + size_text(height, width) + " (HxW); at most " + std::to_string(kMaxImageSide) +
                   " per side and " + std::to_string(kMaxImagePixels) + " pixels");
}

ImageInfo probe_image(std::string_view bytes, const std::string& name) {
  const std::string format = check_and_detect(bytes, name);
#if LENET_HAVE_LIBPNG
  if (format == "PNG") return codecs::probe_png(bytes, name);
#endif
#if LENET_HAVE_LIBJPEG
  if (format == "JPEG") return codecs::probe_jpeg(bytes, name);
#endif
  return codecs::probe_stb(bytes, name, format);
}

namespace {

Image decode(std::string_view bytes, const std::string& name) {
  const std::string format = check_and_detect(bytes, name);
#if LENET_HAVE_LIBPNG
  if (format == "PNG") return codecs::decode_png(bytes, name);
#endif
#if LENET_HAVE_LIBJPEG
  if (format == "JPEG") return codecs::decode_jpeg(bytes, name);
#endif
  return codecs::decode_stb(bytes, name, format);
}

}  // namespace

Image decode_image(std::string_view bytes, const std::string& name) {
  return reading_within_memory(name, [&] { return decode(bytes, name); });
}

Image read_image(const fs::path& path) {
  std::error_code ec;
  const auto status = fs::status(path, ec);
  if (ec || !fs::exists(status)) fail(path.string(), "no such file");
  if (fs::is_directory(status)) fail(path.string(), "is a folder, not an image file");
  const auto bytes = fs::file_size(path, ec);
  if (!ec && static_cast<int64_t>(bytes) > kMaxImageFileBytes)
    fail(path.string(), "file too large for an image (" + std::to_string(bytes) + " bytes, at most " +
                            std::to_string(kMaxImageFileBytes) + ")");
  const std::string data = reading_within_memory(path, [&] { return read_file(path); });
  return decode_image(data, path.string());
}

namespace {

void check_encodable(const Image& image, const char* what) {
  if (image.empty() || image.channels < 1 || image.channels > 4 ||
      image.pixels.size() != static_cast<size_t>(image.height) * image.width * image.channels)
    throw std::invalid_argument(std::string(what) + ": image " + size_text(image.height, image.width) + " with " +
                                std::to_string(image.channels) + " channels and " +
                                std::to_string(image.pixels.size()) + " bytes cannot be written");
}

void append_bytes(void* context, void* data, int size) {
  static_cast<std::string*>(context)->append(static_cast<const char*>(data), static_cast<size_t>(size));
}

}  // namespace

std::string encode_png(const Image& image) {
  check_encodable(image, "encode_png");
  std::string out;
  if (!stbi_write_png_to_func(append_bytes, &out, image.width, image.height, image.channels, image.pixels.data(),
                              image.width * image.channels))
    throw std::runtime_error("encode_png: stb_image_write failed for a " + size_text(image.height, image.width) +
                             " image");
  return out;
}

std::string encode_jpeg(const Image& image, int quality) {
  check_encodable(image, "encode_jpeg");
  if (quality < 1 || quality > 100)
    throw std::invalid_argument("encode_jpeg: quality " + std::to_string(quality) + " (1..100)");
  std::string out;
  if (!stbi_write_jpg_to_func(append_bytes, &out, image.width, image.height, image.channels, image.pixels.data(),
                              quality))
    throw std::runtime_error("encode_jpeg: stb_image_write failed for a " + size_text(image.height, image.width) +
                             " image");
  return out;
}

std::string encode_bmp(const Image& image) {
  check_encodable(image, "encode_bmp");
  std::string out;
  if (!stbi_write_bmp_to_func(append_bytes, &out, image.width, image.height, image.channels, image.pixels.data()))
    throw std::runtime_error("encode_bmp: stb_image_write failed for a " + size_text(image.height, image.width) +
                             " image");
  return out;
}

void write_png(const fs::path& path, const Image& image) { write_file_atomic(path, encode_png(image)); }

Image to_grayscale(const Image& image) {
  Image gray(image.height, image.width, 1);
  const size_t n = static_cast<size_t>(image.height) * image.width;
  const uint8_t* p = image.pixels.data();
  const int c = image.channels;
  if (c == 1 || c == 2) {
    for (size_t i = 0; i < n; ++i) gray.pixels[i] = p[i * c];
  } else if (c == 3 || c == 4) {
    for (size_t i = 0; i < n; ++i) {
      const uint32_t r = p[i * c], g = p[i * c + 1], b = p[i * c + 2];
      gray.pixels[i] = static_cast<uint8_t>((4899 * r + 9617 * g + 1868 * b + (1u << 13)) >> 14);
    }
  } else {
    throw std::invalid_argument("to_grayscale: " + std::to_string(c) + " channels (1 to 4 expected)");
  }
  return gray;
}

Image to_rgb(const Image& image) {
  if (image.channels < 1 || image.channels > 4)
    throw std::invalid_argument("to_rgb: " + std::to_string(image.channels) + " channels (1 to 4 expected)");
  Image rgb(image.height, image.width, 3);
  const size_t n = static_cast<size_t>(image.height) * image.width;
  const int c = image.channels;
  for (size_t i = 0; i < n; ++i)
    for (int k = 0; k < 3; ++k) rgb.pixels[i * 3 + k] = image.pixels[i * c + (c >= 3 ? k : 0)];
  return rgb;
}

namespace {

// Source index pairs and weights along one axis (PyTorch's
// area_pixel_compute_source_index with align_corners=False).
struct Taps {
  std::vector<int> lo, hi;
  std::vector<double> w_hi;
};
Taps bilinear_taps(int in, int out) {
  Taps t;
  t.lo.resize(out), t.hi.resize(out), t.w_hi.resize(out);
  const double scale = static_cast<double>(in) / out;
  for (int d = 0; d < out; ++d) {
    const double src = std::max((d + 0.5) * scale - 0.5, 0.0);
    const int lo = std::min(static_cast<int>(src), in - 1);
    t.lo[d] = lo;
    t.hi[d] = std::min(lo + 1, in - 1);
    t.w_hi[d] = src - lo;
  }
  return t;
}

void check_resize(int in_h, int in_w, int out_h, int out_w) {
  if (in_h <= 0 || in_w <= 0) throw std::invalid_argument("resize_bilinear: empty input " + size_text(in_h, in_w));
  if (out_h <= 0 || out_w <= 0 || out_h > kMaxImageSide || out_w > kMaxImageSide)
    throw std::invalid_argument("resize_bilinear: target size " + size_text(out_h, out_w) + " must be 1.." +
                                std::to_string(kMaxImageSide) + " per side");
}

}  // namespace

std::vector<float> resize_bilinear(std::span<const float> planes, int channels, int height, int width, int out_height,
                                   int out_width) {
  check_resize(height, width, out_height, out_width);
  if (planes.size() != static_cast<size_t>(channels) * height * width)
    throw std::invalid_argument("resize_bilinear: " + std::to_string(planes.size()) + " values for " +
                                std::to_string(channels) + " planes of " + size_text(height, width));
  const Taps ty = bilinear_taps(height, out_height), tx = bilinear_taps(width, out_width);
  std::vector<float> out(static_cast<size_t>(channels) * out_height * out_width);
  for (int c = 0; c < channels; ++c) {
    const float* in = planes.data() + static_cast<size_t>(c) * height * width;
    float* o = out.data() + static_cast<size_t>(c) * out_height * out_width;
    for (int y = 0; y < out_height; ++y) {
      const float* r0 = in + static_cast<size_t>(ty.lo[y]) * width;
      const float* r1 = in + static_cast<size_t>(ty.hi[y]) * width;
      const double wy = ty.w_hi[y];
      for (int x = 0; x < out_width; ++x) {
        const double wx = tx.w_hi[x];
        const double top = (1 - wx) * r0[tx.lo[x]] + wx * r0[tx.hi[x]];
        const double bottom = (1 - wx) * r1[tx.lo[x]] + wx * r1[tx.hi[x]];
        o[static_cast<size_t>(y) * out_width + x] = static_cast<float>((1 - wy) * top + wy * bottom);
      }
    }
  }
  return out;
}

Image resize_bilinear(const Image& image, int height, int width) {
  check_resize(image.height, image.width, height, width);
  if (image.height == height && image.width == width) return image;  // the formula is the identity then
  const int c = image.channels;
  const size_t n = static_cast<size_t>(image.height) * image.width;
  std::vector<float> planes(n * c);
  for (size_t i = 0; i < n; ++i)
    for (int k = 0; k < c; ++k) planes[k * n + i] = image.pixels[i * c + k];
  const std::vector<float> out = resize_bilinear(planes, c, image.height, image.width, height, width);
  Image result(height, width, c);
  const size_t m = static_cast<size_t>(height) * width;
  for (size_t i = 0; i < m; ++i)
    for (int k = 0; k < c; ++k)
      result.pixels[i * c + k] = static_cast<uint8_t>(std::clamp(std::floor(out[k * m + i] + 0.5f), 0.0f, 255.0f));
  return result;
}

Image upscale_nearest(const Image& image, int factor) {
  if (factor < 1 || static_cast<int64_t>(image.height) * factor > kMaxImageSide ||
      static_cast<int64_t>(image.width) * factor > kMaxImageSide)
    throw std::invalid_argument("upscale_nearest: factor " + std::to_string(factor) + " for a " +
                                size_text(image.height, image.width) + " image");
  Image out(image.height * factor, image.width * factor, image.channels);
  const int c = image.channels;
  for (int y = 0; y < out.height; ++y)
    for (int x = 0; x < out.width; ++x)
      std::memcpy(&out.at(y, x), &image.pixels[(static_cast<size_t>(y / factor) * image.width + x / factor) * c],
                  static_cast<size_t>(c));
  return out;
}

Image prepare_image(const Image& decoded, const Preprocessing& pre, int channels) {
  Image image;
  if (channels == 1)
    image = to_grayscale(decoded);
  else if (channels == 3)
    image = to_rgb(decoded);
  else
    throw std::invalid_argument("prepare_image: models take 1 (grayscale) or 3 (RGB) channels, not " +
                                std::to_string(channels));
  if (pre.resize_height > 0 && pre.resize_width > 0)
    image = resize_bilinear(image, pre.resize_height, pre.resize_width);
  return image;
}

void image_to_floats(const Image& prepared, const Normalization& norm, float* out) {
  const int64_t n = static_cast<int64_t>(prepared.height) * prepared.width;
  if (prepared.channels == 1) {
    pixels_to_floats(prepared.pixels.data(), 1, 1, n, norm, out);
    return;
  }
  std::vector<uint8_t> planar(prepared.pixels.size());  // [H, W, C] -> [C, H, W]
  for (int64_t i = 0; i < n; ++i)
    for (int k = 0; k < prepared.channels; ++k) planar[k * n + i] = prepared.pixels[i * prepared.channels + k];
  pixels_to_floats(planar.data(), 1, prepared.channels, n, norm, out);
}

Image image_file_for_model(const fs::path& path, const Preprocessing& pre, const Shape& input_shape,
                           bool force_resize) {
  if (input_shape.size() != 3)
    throw std::invalid_argument("image input: model input shape " + to_string(input_shape) + " is not [C, H, W]");
  const int c = static_cast<int>(input_shape[0]), h = static_cast<int>(input_shape[1]),
            w = static_cast<int>(input_shape[2]);
  Preprocessing p = pre;
  if (force_resize) p.resize_height = h, p.resize_width = w;
  Image image = prepare_image(read_image(path), p, c);
  if (image.height != h || image.width != w)
    throw FileError(path, "image is " + size_text(image.height, image.width) + " (HxW) but the model takes " +
                              size_text(h, w) +
                              (p.resize_height > 0 ? std::string(" (its checkpoint resizes to ") +
                                                         size_text(p.resize_height, p.resize_width) + ")"
                                                   : std::string("; resize it, or pass --resize")));
  return image;
}

Tensor image_file_to_input(const fs::path& path, const Preprocessing& pre, const Shape& input_shape,
                           bool force_resize) {
  const Image image = image_file_for_model(path, pre, input_shape, force_resize);
  Tensor x({1, input_shape[0], input_shape[1], input_shape[2]});
  image_to_floats(image, pre.normalization, x.data());
  return x;
}

void decode_in_parallel(int64_t count, int threads, const std::function<void(int64_t)>& decode) {
  if (count <= 0) return;
  const int team = static_cast<int>(std::min<int64_t>(threads > 0 ? threads : num_threads(), count));
  std::atomic<int64_t> next{0};
  kernels::parallel_run(team, [&](int, int) {
    for (int64_t i = next.fetch_add(1, std::memory_order_relaxed); i < count;
         i = next.fetch_add(1, std::memory_order_relaxed))
      decode(i);
  });
}

}  // namespace lenet

// Decoding throughput, libpng / libjpeg-turbo (lenet::decode_image) against
// stb_image 2.27 (the decoder before issue 18, compiled into this program),
// side by side on the same bytes in memory, each followed by the same
// preparation for the model (lenet::prepare_image):
//   - the 70,000 Fashion-MNIST images (train + test) as 28x28 gray PNGs;
//   - 10,000 photo-sized JPEGs, 640x480 colour at quality 90 (4:2:0), each
//     made from a Fashion-MNIST image enlarged, tinted and grained, turned to
//     gray and resized to 28x28 as an image folder with --size 28x28 does. The
//     encoding is slow, so --distinct of them (default 200) are made and
//     decoded in turn.
// Also how many of the JPEGs stb decodes to other pixels than libjpeg-turbo.
//
//   lenet_bench_decode [--data DIR] [--threads N] [--pngs N] [--jpegs N] [--distinct N] [--rounds N]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "lenet/data.h"
#include "lenet/image.h"
#include "lenet/parallel.h"

// stb_image's PNG and JPEG decoders, private to this program (the library
// carries stb for BMP and PNM only).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wall"
#pragma GCC diagnostic ignored "-Wextra"
#pragma GCC diagnostic ignored "-Wpedantic"
#pragma GCC diagnostic ignored "-Wshadow"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wunused-but-set-variable"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wimplicit-fallthrough"
#define STB_IMAGE_STATIC
#define STB_IMAGE_IMPLEMENTATION
#define STBI_ONLY_PNG
#define STBI_ONLY_JPEG
#define STBI_NO_STDIO
#include <stb_image.h>
#pragma GCC diagnostic pop

namespace {

using Clock = std::chrono::steady_clock;

lenet::Image stb_decode(const std::string& bytes) {
  int w = 0, h = 0, c = 0;
  stbi_uc* p = stbi_load_from_memory(reinterpret_cast<const stbi_uc*>(bytes.data()), static_cast<int>(bytes.size()), &w,
                                     &h, &c, 0);
  if (!p) {
    std::fprintf(stderr, "stb_image failed: %s\n", stbi_failure_reason());
    std::exit(1);
  }
  lenet::Image img;
  img.height = h, img.width = w, img.channels = c;
  img.pixels.assign(p, p + static_cast<size_t>(w) * h * c);
  stbi_image_free(p);
  return img;
}

// Best of `rounds` wall times (s) of decoding and preparing every file of `files`, `count` decodes in all.
double time_decodes(const std::vector<std::string>& files, int64_t count, int threads, bool stb,
                    const lenet::Preprocessing& pre, int rounds) {
  double best = 1e30;
  for (int r = 0; r < rounds; ++r) {
    std::vector<uint8_t> sink(static_cast<size_t>(count));
    const auto start = Clock::now();
    lenet::decode_in_parallel(count, threads, [&](int64_t i) {
      const std::string& bytes = files[static_cast<size_t>(i) % files.size()];
      const lenet::Image decoded = stb ? stb_decode(bytes) : lenet::decode_image(bytes, "bench");
      sink[static_cast<size_t>(i)] = lenet::prepare_image(decoded, pre, 1).pixels[0];
    });
    best = std::min(best, std::chrono::duration<double>(Clock::now() - start).count());
  }
  return best;
}

lenet::Image photo_from(const uint8_t* fashion, int k) {
  lenet::Image small(28, 28, 3);
  for (int i = 0; i < 28 * 28; ++i) {  // tinted: the classes' hue differs
    small.pixels[i * 3] = static_cast<uint8_t>(fashion[i] * (128 + (k * 37) % 128) / 255);
    small.pixels[i * 3 + 1] = static_cast<uint8_t>(fashion[i] * (128 + (k * 91) % 128) / 255);
    small.pixels[i * 3 + 2] = static_cast<uint8_t>(fashion[i] * (128 + (k * 53) % 128) / 255);
  }
  lenet::Image photo = lenet::resize_bilinear(small, 480, 640);
  uint32_t state = static_cast<uint32_t>(k) * 2654435761u + 1;
  for (uint8_t& v : photo.pixels) {  // film grain: JPEG has detail to code
    state = state * 1664525u + 1013904223u;
    v = static_cast<uint8_t>(std::clamp(static_cast<int>(v) + static_cast<int>(state >> 28) - 8, 0, 255));
  }
  return photo;
}

}  // namespace

int main(int argc, char** argv) {
  std::string data = lenet::default_data_dir().string();
  int threads = 2, rounds = 3;
  int64_t pngs = 70000, jpegs = 10000, distinct = 200;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--data")
      data = argv[i + 1];
    else if (flag == "--threads")
      threads = std::atoi(argv[i + 1]);
    else if (flag == "--pngs")
      pngs = std::atoll(argv[i + 1]);
    else if (flag == "--jpegs")
      jpegs = std::atoll(argv[i + 1]);
    else if (flag == "--distinct")
      distinct = std::atoll(argv[i + 1]);
    else if (flag == "--rounds")
      rounds = std::atoi(argv[i + 1]);
    else {
      std::fprintf(stderr, "unknown flag %s\n", argv[i]);
      return 2;
    }
  }
  const lenet::Dataset train = lenet::read_idx(data + "/train-images-idx3-ubyte.gz",
                                               data + "/train-labels-idx1-ubyte.gz");
  const lenet::Dataset test = lenet::read_idx(data + "/t10k-images-idx3-ubyte.gz", data + "/t10k-labels-idx1-ubyte.gz");
  auto fashion = [&](int64_t i) {
    return i < train.count ? &train.pixels[static_cast<size_t>(i) * 784]
                           : &test.pixels[static_cast<size_t>(i - train.count) * 784];
  };
  pngs = std::min<int64_t>(pngs, train.count + test.count);

  std::vector<std::string> png_files(static_cast<size_t>(pngs));
  for (int64_t i = 0; i < pngs; ++i) {
    lenet::Image img(28, 28, 1);
    std::memcpy(img.pixels.data(), fashion(i), 784);
    png_files[static_cast<size_t>(i)] = lenet::encode_png(img);
  }
  std::vector<std::string> jpeg_files(static_cast<size_t>(std::min(distinct, jpegs)));
  size_t jpeg_bytes = 0;
  lenet::decode_in_parallel(static_cast<int64_t>(jpeg_files.size()), threads, [&](int64_t k) {
    jpeg_files[static_cast<size_t>(k)] = lenet::encode_jpeg(photo_from(fashion(k), static_cast<int>(k)), 90);
  });
  for (const auto& f : jpeg_files) jpeg_bytes += f.size();

  // stb against libjpeg-turbo, pixel by pixel.
  int differing_files = 0, max_diff = 0;
  double differing_samples = 0, samples = 0;
  for (const std::string& f : jpeg_files) {
    const lenet::Image a = lenet::decode_image(f, "bench"), b = stb_decode(f);
    bool differ = false;
    for (size_t i = 0; i < a.pixels.size(); ++i) {
      const int d = std::abs(a.pixels[i] - b.pixels[i]);
      if (d) differ = true, ++differing_samples, max_diff = std::max(max_diff, d);
    }
    samples += static_cast<double>(a.pixels.size());
    differing_files += differ;
  }

  lenet::Preprocessing keep;
  lenet::Preprocessing to_model;
  to_model.resize_height = 28, to_model.resize_width = 28;
  std::printf("decoding throughput, best of %d, %d thread(s); every decode also prepared for the model\n", rounds,
              threads);
  std::printf("| files | stb_image 2.27 | libpng / libjpeg-turbo | ratio |\n|---|---|---|---|\n");
  const double png_stb = time_decodes(png_files, pngs, threads, true, keep, rounds);
  const double png_lib = time_decodes(png_files, pngs, threads, false, keep, rounds);
  std::printf("| %lld PNGs 28x28 gray | %.3f s (%.0f /s) | %.3f s (%.0f /s) | %.2fx |\n", static_cast<long long>(pngs),
              png_stb, pngs / png_stb, png_lib, pngs / png_lib, png_stb / png_lib);
  const double jpg_stb = time_decodes(jpeg_files, jpegs, threads, true, to_model, rounds);
  const double jpg_lib = time_decodes(jpeg_files, jpegs, threads, false, to_model, rounds);
  std::printf(
      "| %lld JPEGs 640x480 colour q90 4:2:0 (%zu distinct, %.0f KB each) → 28x28 gray | %.3f s (%.0f /s) | "
      "%.3f s (%.0f /s) | %.2fx |\n",
      static_cast<long long>(jpegs), jpeg_files.size(), jpeg_bytes / 1024.0 / jpeg_files.size(), jpg_stb,
      jpegs / jpg_stb, jpg_lib, jpegs / jpg_lib, jpg_stb / jpg_lib);
  std::printf("stb vs libjpeg-turbo: %d of %zu JPEGs decode differently, %.2f%% of samples, by at most %d levels\n",
              differing_files, jpeg_files.size(), 100.0 * differing_samples / samples, max_diff);
  return 0;
}

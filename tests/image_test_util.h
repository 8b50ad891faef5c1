// Helpers for the image, image-folder and predict tests: temporary folders,
// synthetic images in several formats, and running the built `lenet` binary.
#pragma once

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>

#include "lenet/fileio.h"
#include "lenet/image.h"

namespace lenet::imgtest {

namespace fs = std::filesystem;

// A fresh folder under the system's temporary folder, removed afterwards.
class TempDir {
 public:
  explicit TempDir(const std::string& tag) {
    path_ = fs::temp_directory_path() / ("lenet-" + tag + "-" + std::to_string(::getpid()));
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    if (!std::getenv("LENET_KEEP_TEST_FILES")) fs::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const fs::path& path() const { return path_; }
  fs::path operator/(const std::string& rel) const { return path_ / rel; }

 private:
  fs::path path_;
};

// Plain writes (no fsync): test data is thrown away, and hundreds of synced files are slow.
inline void write_bytes(const fs::path& path, const std::string& bytes) {
  fs::create_directories(path.parent_path());
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out) throw std::runtime_error("test: cannot write " + path.string());
}

// Writes `image` in the format its extension names (.png, .jpg, .bmp, .pgm).
inline void save_image(const fs::path& path, const Image& image) {
  const std::string ext = path.extension().string();
  if (ext == ".png") return write_bytes(path, encode_png(image));
  if (ext == ".jpg" || ext == ".jpeg") return write_bytes(path, encode_jpeg(image, 95));
  if (ext == ".bmp") return write_bytes(path, encode_bmp(image));
  if (ext == ".pgm") {
    const Image gray = to_grayscale(image);
    std::string bytes = "P5\n# written by the tests\n" + std::to_string(gray.width) + " " +
                        std::to_string(gray.height) + "\n255\n";
    bytes.append(gray.pixels.begin(), gray.pixels.end());
    return write_bytes(path, bytes);
  }
  FAIL() << "save_image: unknown extension " << ext;
}

// A 28x20 (or any size) picture of class `k` of 9: a bright horizontal band
// whose height position is the class, over a dark background with a little
// seeded noise; `colour` makes it an RGB image whose luma is about the same.
inline Image class_image(int k, int variant, int height = 28, int width = 20, bool colour = false) {
  Image img(height, width, colour ? 3 : 1);
  uint32_t state = static_cast<uint32_t>(k * 7919 + variant * 104729 + 1);
  const int band = 1 + k * (height - 4) / 9;  // top row of the band
  for (int y = 0; y < height; ++y)
    for (int x = 0; x < width; ++x) {
      state = state * 1664525u + 1013904223u;
      const int noise = static_cast<int>(state >> 27);  // 0..31
      const int v = (y >= band && y < band + 3) ? 220 + noise / 2 : 10 + noise;
      for (int c = 0; c < img.channels; ++c) img.at(y, x, c) = static_cast<uint8_t>(v);
    }
  return img;
}

}  // namespace lenet::imgtest

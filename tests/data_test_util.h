// Helpers for the data, checkpoint, training and CLI tests: scratch folders,
// IDX files written by hand (raw or gzip), and running the built `lenet`.
#pragma once

#include "cli_util.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "lenet/data.h"
#include "lenet/fileio.h"

namespace lenet::test {

// A fresh folder under the system's temporary directory, removed afterwards.
class ScratchDir {
 public:
  explicit ScratchDir(const std::string& tag = "lenet") {
    std::random_device rd;
    path_ = std::filesystem::temp_directory_path() /
            (tag + "-" + std::to_string(::getpid()) + "-" + std::to_string(rd() & 0xffffff));
    std::filesystem::create_directories(path_);
  }
  ~ScratchDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(const std::string& name) const { return path_ / name; }

 private:
  std::filesystem::path path_;
};

inline void write_bytes(const std::filesystem::path& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  ASSERT_TRUE(out.good()) << path;
}

inline std::string read_bytes(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream os;
  os << in.rdbuf();
  return os.str();
}

inline void write_gzip(const std::filesystem::path& path, const std::string& bytes) {
  gzFile f = gzopen(path.c_str(), "wb");
  ASSERT_NE(f, nullptr) << path;
  ASSERT_EQ(gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size())), static_cast<int>(bytes.size()));
  gzclose(f);
}

inline void append_be32(std::string& out, uint32_t v) {
  for (int s = 24; s >= 0; s -= 8) out.push_back(static_cast<char>((v >> s) & 0xff));
}

// The bytes of an IDX images file (magic 0x803) or labels file (0x801).
inline std::string idx_images(uint32_t count, uint32_t rows, uint32_t cols, const std::vector<uint8_t>& pixels) {
  std::string out;
  append_be32(out, 0x00000803);
  append_be32(out, count);
  append_be32(out, rows);
  append_be32(out, cols);
  out.append(pixels.begin(), pixels.end());
  return out;
}
inline std::string idx_labels(const std::vector<uint8_t>& labels) {
  std::string out;
  append_be32(out, 0x00000801);
  append_be32(out, static_cast<uint32_t>(labels.size()));
  out.append(labels.begin(), labels.end());
  return out;
}

// A small learnable IDX data set: class c's images are bright in row band c
// (plus noise), so even a linear model separates them.
struct SyntheticIdx {
  std::vector<uint8_t> train_pixels, train_labels, test_pixels, test_labels;
};
inline void make_split(int count, int size, int classes, std::mt19937& gen, std::vector<uint8_t>& pixels,
                       std::vector<uint8_t>& labels) {
  std::uniform_int_distribution<int> noise(0, 60);
  for (int i = 0; i < count; ++i) {
    const int c = i % classes;
    labels.push_back(static_cast<uint8_t>(c));
    for (int y = 0; y < size; ++y)
      for (int x = 0; x < size; ++x) {
        const bool band = y * classes / size == c;
        pixels.push_back(static_cast<uint8_t>((band ? 180 : 0) + noise(gen)));
      }
  }
}
// The same images in memory: `count` size x size images of `classes` row
// bands, for the tests that call train() directly (the same seed, the same set).
inline Dataset band_dataset(int count, int classes, unsigned seed, int size = 8) {
  Dataset d;
  d.count = count;
  d.height = d.width = size;
  for (int c = 0; c < classes; ++c) d.class_names.push_back("band" + std::to_string(c));
  std::vector<uint8_t> labels;
  std::mt19937 gen(seed);
  make_split(count, size, classes, gen, d.pixels, labels);
  d.labels.assign(labels.begin(), labels.end());
  return d;
}
// Writes train-/t10k- images and labels (gzip when `gz`) into `dir`.
inline SyntheticIdx write_synthetic_idx(const std::filesystem::path& dir, int train_count = 300, int test_count = 100,
                                        int size = 12, int classes = 4, bool gz = true, unsigned seed = 1) {
  std::filesystem::create_directories(dir);
  SyntheticIdx s;
  std::mt19937 gen(seed);
  make_split(train_count, size, classes, gen, s.train_pixels, s.train_labels);
  make_split(test_count, size, classes, gen, s.test_pixels, s.test_labels);
  const std::string ext = gz ? ".gz" : "";
  auto put = [&](const std::string& name, const std::string& bytes) {
    if (gz)
      write_gzip(dir / (name + ext), bytes);
    else
      write_bytes(dir / name, bytes);
  };
  put("train-images-idx3-ubyte", idx_images(train_count, size, size, s.train_pixels));
  put("train-labels-idx1-ubyte", idx_labels(s.train_labels));
  put("t10k-images-idx3-ubyte", idx_images(test_count, size, size, s.test_pixels));
  put("t10k-labels-idx1-ubyte", idx_labels(s.test_labels));
  return s;
}

// The Debian package's Fashion-MNIST, when installed.
inline std::filesystem::path fashion_mnist_dir() { return "/usr/share/datasets/fashion-mnist"; }
inline bool have_fashion_mnist() {
  std::error_code ec;
  return std::filesystem::exists(fashion_mnist_dir() / "train-images-idx3-ubyte.gz", ec);
}

}  // namespace lenet::test

// Fashion-MNIST for the whole-epoch benchmarks (bench_epoch.cpp and the LibTorch
// peer): the gzip IDX files read into memory, pixels scaled to [0, 1] as the
// chapter's ToTensor does. Kept free of lenet.cpp so the peer can use it too.
#pragma once

#include <zlib.h>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace bench {

inline std::vector<uint8_t> read_gz(const std::string& path) {
  gzFile f = gzopen(path.c_str(), "rb");
  if (!f) throw std::runtime_error(path + ": cannot open");
  std::vector<uint8_t> bytes;
  uint8_t chunk[1 << 16];
  for (int got; (got = gzread(f, chunk, sizeof chunk)) > 0;) bytes.insert(bytes.end(), chunk, chunk + got);
  gzclose(f);
  return bytes;
}

inline uint32_t be32(const uint8_t* p) {
  return uint32_t(p[0]) << 24 | uint32_t(p[1]) << 16 | uint32_t(p[2]) << 8 | p[3];
}

struct Split {
  int count = 0;
  std::vector<float> images;    // [count, 1, 28, 28] in [0, 1]
  std::vector<int32_t> labels;  // [count]
};

// prefix: "train" or "t10k"
inline Split load_split(const std::string& dir, const std::string& prefix) {
  const auto img = read_gz(dir + "/" + prefix + "-images-idx3-ubyte.gz");
  const auto lab = read_gz(dir + "/" + prefix + "-labels-idx1-ubyte.gz");
  if (img.size() < 16 || be32(img.data()) != 0x803 || lab.size() < 8 || be32(lab.data()) != 0x801)
    throw std::runtime_error(dir + "/" + prefix + ": not IDX image/label files");
  Split s;
  s.count = static_cast<int>(be32(img.data() + 4));
  if (be32(img.data() + 8) != 28 || be32(img.data() + 12) != 28 || be32(lab.data() + 4) != uint32_t(s.count) ||
      img.size() != 16 + size_t(s.count) * 784 || lab.size() != 8 + size_t(s.count))
    throw std::runtime_error(dir + "/" + prefix + ": unexpected sizes");
  s.images.resize(size_t(s.count) * 784);
  for (size_t i = 0; i < s.images.size(); ++i) s.images[i] = img[16 + i] / 255.0f;
  s.labels.assign(lab.begin() + 8, lab.end());
  return s;
}

}  // namespace bench

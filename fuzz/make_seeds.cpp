// Writes the seed corpus of the fuzz targets (fuzz/corpus/<target>/): small
// valid files of every kind each parser reads, made by lenet.cpp's own
// writers. The seeds are committed; this program documents how they were
// made and remakes them: build-fuzz/fuzz/fuzz_make_seeds fuzz/corpus
#include <zlib.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "lenet/checkpoint.h"
#include "lenet/image.h"

namespace fs = std::filesystem;
using namespace lenet;

namespace {

void write(const fs::path& path, const std::string& bytes) {
  fs::create_directories(path.parent_path());
  std::ofstream(path, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  std::printf("%s (%zu bytes)\n", path.string().c_str(), bytes.size());
}

std::string gzip(const std::string& raw) {
  z_stream z{};
  deflateInit2(&z, 9, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);
  std::string out(deflateBound(&z, raw.size()) + 32, '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(raw.data()));
  z.avail_in = static_cast<uInt>(raw.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  deflate(&z, Z_FINISH);
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

// ---- checkpoints ----

std::string checkpoint(const std::string& arch, const Shape& input, int classes, bool with_adam, Preprocessing pre = {}) {
  Rng rng(1);
  Sequential model = build_model(arch, input, classes, &rng);
  ModelInfo info;
  info.arch = model.spec();
  info.input_shape = input;
  for (int c = 0; c < classes; ++c) info.class_names.push_back("class" + std::to_string(c));
  info.preprocessing = pre;
  info.dataset = "seed";
  info.epoch = 2;
  info.metrics = {{"test_loss", 0.5}, {"test_acc", 0.75}};
  const fs::path tmp = fs::temp_directory_path() / "lenet-seed.safetensors";
  Adam adam(model, {});
  save_checkpoint(tmp, model, info, with_adam ? &adam : nullptr);
  std::ifstream in(tmp, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  fs::remove(tmp);
  return bytes;
}

// ---- IDX: the fuzz input is a 4-byte little-endian length, the images file, the labels file ----

std::string be32(uint32_t v) {
  return {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8), static_cast<char>(v)};
}
std::string le32(uint32_t v) {
  return {static_cast<char>(v), static_cast<char>(v >> 8), static_cast<char>(v >> 16), static_cast<char>(v >> 24)};
}
std::string idx_pair(const std::string& images, const std::string& labels) {
  return le32(static_cast<uint32_t>(images.size())) + images + labels;
}

// ---- images ----

Image pattern(int h, int w, int c) {
  Image im(h, w, c);
  for (size_t i = 0; i < im.pixels.size(); ++i) im.pixels[i] = static_cast<uint8_t>(i * 29 % 256);
  return im;
}

std::string pnm(const Image& im, int maxval) {
  std::string out = std::string(im.channels == 3 ? "P6" : "P5") + "\n# seed\n" + std::to_string(im.width) + " " +
                    std::to_string(im.height) + "\n" + std::to_string(maxval) + "\n";
  for (uint8_t p : im.pixels) {
    if (maxval > 255) out.push_back(static_cast<char>(p));
    out.push_back(static_cast<char>(p));
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s CORPUS_DIR (fuzz/corpus)\n", argv[0]);
    return 2;
  }
  const fs::path dir = argv[1];

  Preprocessing resized;
  resized.resize_height = 6;
  resized.resize_width = 5;
  resized.normalization = {0.25f, 0.5f};
  write(dir / "safetensors" / "linear.safetensors", checkpoint("flatten, linear", {1, 4, 4}, 3, false));
  write(dir / "safetensors" / "conv_adam.safetensors",
        checkpoint("conv 2 k3 p1, relu, maxpool 2, flatten, linear 4, sigmoid, linear", {1, 6, 6}, 2, true));
  write(dir / "safetensors" / "avgpool_rgb.safetensors",
        checkpoint(R"([{"layer": "conv", "out": 1, "kernel": [2, 3], "stride": 2}, {"layer": "avgpool", "window": 1},)"
                   R"( {"layer": "tanh"}, {"layer": "flatten"}, {"layer": "linear", "bias": false}])",
                   {3, 6, 5}, 2, false, resized));
  write(dir / "safetensors" / "plain.safetensors",
        encode_safetensors({{"a", {2, 2}, std::vector<float>{1, 2, 3, 4}}, {"b", {0}, {}}}, {{"note", "no lenet metadata"}}));

  const std::string images = be32(0x803) + be32(3) + be32(4) + be32(4) + std::string(48, '\x40');
  const std::string labels = be32(0x801) + be32(3) + std::string("\x00\x02\x01", 3);
  write(dir / "idx" / "raw", idx_pair(images, labels));
  write(dir / "idx" / "gzip", idx_pair(gzip(images), gzip(labels)));
  write(dir / "idx" / "gzip_labels_only", idx_pair(images, gzip(labels)));

  write(dir / "image" / "gray.png", encode_png(pattern(5, 7, 1)));
  write(dir / "image" / "rgba.png", encode_png(pattern(4, 3, 4)));
  write(dir / "image" / "rgb.jpg", encode_jpeg(pattern(9, 17, 3), 80));
  write(dir / "image" / "gray.jpg", encode_jpeg(pattern(8, 8, 1), 50));
  write(dir / "image" / "rgb.bmp", encode_bmp(pattern(3, 5, 3)));
  write(dir / "image" / "rgba.bmp", encode_bmp(pattern(2, 3, 4)));
  write(dir / "image" / "gray.pgm", pnm(pattern(3, 4, 1), 255));
  write(dir / "image" / "gray16.pgm", pnm(pattern(2, 3, 1), 1000));
  write(dir / "image" / "rgb.ppm", pnm(pattern(2, 2, 3), 255));
  return 0;
}

// The fuzz targets' bodies, shared by the libFuzzer entry points (fuzz_*.cpp,
// built by scripts/fuzz.sh with clang) and by the unit test that replays the
// seed corpus and every input that once crashed (tests/test_fuzz_regressions.cpp,
// part of the normal suite). Each feeds bytes to one parser the way a user's
// file reaches it. A FileError (lenet/error.h: the file's name and what is
// wrong, in our words) is the expected end for garbage; anything else — any
// other exception (a library's own, std::runtime_error, std::bad_alloc), a
// crash, a sanitizer report, a leak, a huge allocation — is a finding.
#pragma once

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "lenet/checkpoint.h"
#include "lenet/data.h"
#include "lenet/error.h"
#include "lenet/image.h"
#include "lenet/onnx.h"
#include "lenet/parallel.h"

namespace lenet::fuzz {

// A broken promise of a parser that accepted its input: abort, so the fuzzer reports it.
inline void require(bool condition, const char* what) {
  if (!condition) {
    std::fprintf(stderr, "fuzz target: accepted input breaks: %s\n", what);
    std::abort();
  }
}

// A refusal must say what is wrong, after the file's name.
inline void require_message(const FileError& e) {
  if (e.path().empty() || e.problem().empty()) {
    std::fprintf(stderr, "fuzz target: a refusal without a file name or a problem: '%s'\n", e.what());
    std::abort();
  }
}

// Runs `parse`; true when it accepted the input, false when it refused it
// cleanly, with a FileError. Any other exception escapes: libFuzzer reports it.
template <class Parse>
bool accepted(Parse&& parse) {
  try {
    parse();
    return true;
  } catch (const FileError& e) {
    require_message(e);
    return false;
  }
}

// A model that loaded must be consistent, and must run: small ones are run
// once on a blank image.
inline void check_loaded(LoadedModel& m) {
  const Shape& in = m.info.input_shape;
  require(in.size() == 3 && in[0] > 0 && in[1] > 0 && in[2] > 0, "input shape is [C, H, W]");
  require(!m.info.class_names.empty(), "there are classes");
  if (in[0] <= 64 && in[1] <= 64 && in[2] <= 64 && m.model.parameter_count() <= 100000) {
    Tensor x({1, in[0], in[1], in[2]});
    const Tensor& y = m.model.forward(x);
    require(y.shape() == Shape({1, static_cast<int64_t>(m.info.class_names.size())}), "output is [1, classes]");
  }
}

// ---- safetensors checkpoints: the container, the metadata, the architecture ----

inline void safetensors(std::string_view bytes) {
  accepted([&] {
    LoadedModel m = decode_checkpoint(bytes, "input.safetensors");
    check_loaded(m);
  });
}

// ---- ONNX models: protobuf, graph, attributes, weights, metadata ----

inline void onnx(std::string_view bytes) {
  accepted([&] {
    LoadedModel m = import_onnx_bytes(bytes, "input.onnx");
    check_loaded(m);
  });
}

// ---- IDX files, raw or gzip, read from real file descriptors ----

// Two in-memory files (memfd) that the IDX reader opens by name, as it opens files on disk.
class MemoryFile {
 public:
  explicit MemoryFile(const char* name) : fd_(::memfd_create(name, 0)) {
    if (fd_ < 0) {
      std::perror("memfd_create");
      std::abort();
    }
  }
  ~MemoryFile() { ::close(fd_); }
  MemoryFile(const MemoryFile&) = delete;
  MemoryFile& operator=(const MemoryFile&) = delete;
  std::string path() const { return "/proc/self/fd/" + std::to_string(fd_); }
  void set(std::string_view bytes) {
    if (::ftruncate(fd_, 0) != 0 ||
        ::pwrite(fd_, bytes.data(), bytes.size(), 0) != static_cast<ssize_t>(bytes.size())) {
      std::perror("memfd write");
      std::abort();
    }
  }

 private:
  int fd_;
};

// The input: a 4-byte little-endian length n, n bytes of images file, then the labels file.
inline void idx(std::string_view bytes) {
  static MemoryFile images("images"), labels("labels");
  uint32_t n = 0;
  for (int i = 0; i < 4 && i < static_cast<int>(bytes.size()); ++i)
    n |= uint32_t{static_cast<uint8_t>(bytes[i])} << (8 * i);
  const std::string_view rest = bytes.size() > 4 ? bytes.substr(4) : std::string_view();
  n = static_cast<uint32_t>(std::min<size_t>(n, rest.size()));
  images.set(rest.substr(0, n));
  labels.set(rest.substr(n));
  accepted([&] {
    const Dataset d = read_idx(images.path(), labels.path());
    require(static_cast<int64_t>(d.labels.size()) == d.count, "one label per image");
    require(static_cast<int64_t>(d.pixels.size()) == d.count * d.sample_size(), "pixels match the count and size");
    for (int32_t label : d.labels) require(label >= 0 && label < d.num_classes(), "labels name a class");
  });
}

// ---- image files: decoding, then the path to a model input ----

inline void image(std::string_view bytes) {
  accepted([&] {
    // Pictures within the documented limits may legitimately take hundreds of
    // MB; the fuzzer looks for memory errors, so it decodes small ones only.
    const ImageInfo info = probe_image(bytes, "input");
    if (static_cast<int64_t>(info.width) * info.height > (int64_t{1} << 22)) return;
    const Image decoded = decode_image(bytes, "input");
    require(decoded.pixels.size() == static_cast<size_t>(decoded.width) * static_cast<size_t>(decoded.height) *
                                         static_cast<size_t>(decoded.channels),
            "pixels match the size");
    Preprocessing pre;
    pre.resize_height = 28;
    pre.resize_width = 20;
    const int channels = bytes.size() % 2 ? 3 : 1;
    const Image prepared = prepare_image(decoded, pre, channels);
    require(prepared.height == 28 && prepared.width == 20 && prepared.channels == channels,
            "prepared to the model's shape");
    std::vector<float> x(static_cast<size_t>(channels) * 28 * 20);
    image_to_floats(prepared, {}, x.data());
  });
}

}  // namespace lenet::fuzz

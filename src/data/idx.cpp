// IDX files (the MNIST format), raw or gzip-compressed:
//   magic [0, 0, type, ndims]  (type 0x08 = unsigned byte)
//   ndims big-endian uint32 sizes
//   the data, row-major
// Images are 0x00000803 [count, rows, cols], labels 0x00000801 [count].
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "lenet/data.h"
#include "lenet/error.h"

namespace lenet {

namespace fs = std::filesystem;

namespace {

// Reads a file through zlib, which passes raw files through unchanged.
// Grows its buffer as data arrives, so a header that claims absurd sizes
// cannot make us allocate more than the file really holds.
class GzReader {
 public:
  explicit GzReader(const fs::path& path) : path_(path) {
    std::error_code ec;
    if (!fs::exists(path, ec)) throw FileError(path, "file not found");
    if (fs::is_directory(path, ec)) throw FileError(path, "is a folder, expected an IDX file");
    file_ = gzopen(path.c_str(), "rb");
    if (!file_) throw FileError(path, std::string("cannot open: ") + std::strerror(errno));
    gzbuffer(file_, 1 << 17);
  }
  ~GzReader() {
    if (file_) gzclose(file_);
  }
  GzReader(const GzReader&) = delete;
  GzReader& operator=(const GzReader&) = delete;

  // Reads up to n bytes into out; returns the count (short only at the end).
  size_t read(uint8_t* out, size_t n) {
    size_t done = 0;
    while (done < n) {
      const unsigned chunk = static_cast<unsigned>(std::min<size_t>(n - done, 1u << 30));
      const int got = gzread(file_, out + done, chunk);
      if (got < 0) {
        int err = 0;
        const char* msg = gzerror(file_, &err);
        throw FileError(path_, std::string("corrupt gzip data: ") + (msg ? msg : "read error"));
      }
      if (got == 0) break;
      done += static_cast<size_t>(got);
    }
    return done;
  }
  // True once reading started on a file that is not gzip (zlib passes it through).
  bool raw() { return gzdirect(file_) == 1; }
  // zlib reports a truncated gzip stream only as an error state after the last read.
  void check_stream() {
    int err = Z_OK;
    const char* msg = gzerror(file_, &err);
    if (err != Z_OK && err != Z_STREAM_END)
      throw FileError(path_, std::string("corrupt or truncated gzip data: ") + (msg ? msg : "unknown error"));
  }
  bool at_end() {
    uint8_t extra;
    const bool end = read(&extra, 1) == 0;
    check_stream();
    return end;
  }

 private:
  fs::path path_;
  gzFile file_ = nullptr;
};

uint32_t big_endian32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

std::string hex32(uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%08x", v);
  return buf;
}

// One IDX file: its sizes and its bytes.
struct IdxArray {
  std::vector<uint32_t> dims;
  std::vector<uint8_t> data;
};

IdxArray read_idx_array(const fs::path& path, uint32_t expected_magic, const char* what) {
  GzReader in(path);
  std::array<uint8_t, 4> head{};
  const size_t got = in.read(head.data(), 4);
  in.check_stream();
  if (got < 4) throw FileError(path, "truncated: " + std::to_string(got) + " bytes, too short for an IDX header");
  const uint32_t magic = big_endian32(head.data());
  if (magic != expected_magic)
    throw FileError(path,
                    "wrong IDX magic " + hex32(magic) + ", expected " + hex32(expected_magic) + " (" + what + ")");
  const int ndims = head[3];
  IdxArray a;
  std::vector<uint8_t> dim_bytes(static_cast<size_t>(ndims) * 4);
  if (in.read(dim_bytes.data(), dim_bytes.size()) != dim_bytes.size()) {
    in.check_stream();
    throw FileError(path, "truncated inside the IDX header");
  }
  // Largest array we accept: far above any IDX data set (EMNIST is ~0.7 GB).
  constexpr uint64_t kMaxBytes = uint64_t{1} << 34;
  uint64_t total = 1;
  for (int d = 0; d < ndims; ++d) {
    const uint32_t n = big_endian32(dim_bytes.data() + 4 * d);
    a.dims.push_back(n);
    // Checked before multiplying, so the product cannot wrap around to something small.
    if (n != 0 && total > kMaxBytes / n)
      throw FileError(path, "IDX header claims more than " + std::to_string(kMaxBytes) +
                                " bytes of data; the file is not a plausible IDX file");
    total *= n;
  }
  std::string shape;
  for (auto d : a.dims) {
    if (!shape.empty()) shape += 'x';
    shape += std::to_string(d);
  }
  // A raw file must hold what its header announces: known before reading.
  std::error_code ec;
  const uint64_t file_size = fs::file_size(path, ec);
  const uint64_t header_size = 4 + 4 * static_cast<uint64_t>(ndims);
  if (in.raw() && !ec && total > file_size - header_size)
    throw FileError(path, "truncated: the header announces " + shape + " = " + std::to_string(total) +
                              " bytes of data, the file holds " + std::to_string(file_size - header_size));
  // Compressed data may inflate to anything: more than this machine's memory is refused up front.
  const long pages = ::sysconf(_SC_PHYS_PAGES), page_size = ::sysconf(_SC_PAGE_SIZE);
  if (pages > 0 && page_size > 0 && total > static_cast<uint64_t>(pages) * static_cast<uint64_t>(page_size))
    throw FileError(path, "the IDX header announces " + shape + " = " + std::to_string(total) +
                              " bytes of data, more than this machine's memory (" +
                              std::to_string(static_cast<uint64_t>(pages) * static_cast<uint64_t>(page_size)) +
                              " bytes)");
  // Read in chunks so a lying header costs no more memory than the file holds.
  const size_t chunk = size_t{1} << 24;
  size_t have = 0;
  try {
    if (in.raw()) a.data.reserve(static_cast<size_t>(total));
  } catch (const std::bad_alloc&) {
    throw FileError(path, "out of memory for the " + std::to_string(total) + " bytes of data the IDX header announces");
  }
  while (have < total) {
    const size_t want = static_cast<size_t>(std::min<uint64_t>(chunk, total - have));
    try {
      a.data.resize(have + want);
    } catch (const std::bad_alloc&) {
      throw FileError(path, "out of memory after " + std::to_string(have) + " of the " + std::to_string(total) +
                                " bytes of data the IDX header announces");
    }
    const size_t n = in.read(a.data.data() + have, want);
    have += n;
    if (n < want) {
      in.check_stream();
      throw FileError(path, "truncated: the header announces " + shape + " = " + std::to_string(total) +
                                " bytes of data, the file holds " + std::to_string(have));
    }
  }
  if (!in.at_end())
    throw FileError(path,
                    "unexpected bytes after the " + std::to_string(total) + " bytes of data the IDX header announces");
  return a;
}

// The standard names ("train-images-idx3-ubyte"), the ".idx3" variant some
// mirrors use ("train-images.idx3-ubyte"), each with or without ".gz".
fs::path find_idx_file(const fs::path& dir, const std::string& prefix, const std::string& what,
                       const std::string& idx) {
  std::error_code ec;
  for (const std::string& name :
       {prefix + "-" + what + "-" + idx + "-ubyte", prefix + "-" + what + "." + idx + "-ubyte"})
    for (const char* ext : {".gz", ""})
      if (fs::is_regular_file(dir / (name + ext), ec)) return dir / (name + ext);
  return {};
}

struct IdxFiles {
  fs::path train_images, train_labels, test_images, test_labels;
};

IdxFiles locate(const fs::path& dir) {
  return {find_idx_file(dir, "train", "images", "idx3"), find_idx_file(dir, "train", "labels", "idx1"),
          find_idx_file(dir, "t10k", "images", "idx3"), find_idx_file(dir, "t10k", "labels", "idx1")};
}

bool looks_like_fashion(const fs::path& dir) {
  std::string name = fs::absolute(dir).lexically_normal().string();
  std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::tolower(c); });
  return name.find("fashion") != std::string::npos;
}

}  // namespace

Dataset Dataset::head(int64_t n) const {
  if (n < 0) throw std::invalid_argument("Dataset::head: count must be >= 0, got " + std::to_string(n));
  Dataset d;
  d.count = std::min(n, count);
  d.channels = channels;
  d.height = height;
  d.width = width;
  d.class_names = class_names;
  d.pixels.assign(pixels.begin(), pixels.begin() + d.count * sample_size());
  d.labels.assign(labels.begin(), labels.begin() + d.count);
  if (!files.empty()) d.files.assign(files.begin(), files.begin() + d.count);
  return d;
}

Dataset read_idx(const fs::path& images, const fs::path& labels) {
  IdxArray im = read_idx_array(images, 0x00000803, "unsigned-byte images, 3 dimensions");
  IdxArray lb = read_idx_array(labels, 0x00000801, "unsigned-byte labels, 1 dimension");
  if (im.dims[0] != lb.dims[0])
    throw FileError(images, "holds " + std::to_string(im.dims[0]) + " images but " + labels.string() + " holds " +
                                std::to_string(lb.dims[0]) + " labels");
  if (im.dims[1] == 0 || im.dims[2] == 0)
    throw FileError(images,
                    "images of size " + std::to_string(im.dims[1]) + "x" + std::to_string(im.dims[2]) + " are empty");
  if (im.dims[1] > 65536 || im.dims[2] > 65536)
    throw FileError(images, "image size " + std::to_string(im.dims[1]) + "x" + std::to_string(im.dims[2]) +
                                " is implausible for an IDX data set");
  Dataset d;
  d.count = im.dims[0];
  d.channels = 1;
  d.height = static_cast<int>(im.dims[1]);
  d.width = static_cast<int>(im.dims[2]);
  d.pixels = std::move(im.data);
  d.labels.assign(lb.data.begin(), lb.data.end());
  int max_label = -1;
  for (int32_t l : d.labels) max_label = std::max(max_label, static_cast<int>(l));
  for (int c = 0; c <= max_label; ++c) d.class_names.push_back(std::to_string(c));
  return d;
}

bool is_idx_folder(const fs::path& dir) {
  const IdxFiles f = locate(dir);
  return !f.train_images.empty() && !f.train_labels.empty() && !f.test_images.empty() && !f.test_labels.empty();
}

DataSplit load_idx_folder(const fs::path& dir) {
  const IdxFiles f = locate(dir);
  const std::pair<const fs::path*, const char*> needed[] = {{&f.train_images, "train-images-idx3-ubyte"},
                                                            {&f.train_labels, "train-labels-idx1-ubyte"},
                                                            {&f.test_images, "t10k-images-idx3-ubyte"},
                                                            {&f.test_labels, "t10k-labels-idx1-ubyte"}};
  for (const auto& [path, name] : needed)
    if (path->empty())
      throw FileError(dir, std::string("no ") + name + "[.gz] (an IDX data set folder holds train-images, " +
                               "train-labels, t10k-images and t10k-labels files)");
  DataSplit split;
  split.train = read_idx(f.train_images, f.train_labels);
  split.test = read_idx(f.test_images, f.test_labels);
  if (split.train.height != split.test.height || split.train.width != split.test.width)
    throw FileError(dir, "training images are " + std::to_string(split.train.height) + "x" +
                             std::to_string(split.train.width) + " but test images are " +
                             std::to_string(split.test.height) + "x" + std::to_string(split.test.width));
  const bool fashion = looks_like_fashion(dir);
  const size_t classes = std::max(split.train.class_names.size(), split.test.class_names.size());
  std::vector<std::string> names;
  if (fashion) {
    if (classes > fashion_mnist_classes().size())
      throw FileError(dir, "Fashion-MNIST has 10 classes but a label reads " + std::to_string(classes - 1));
    names = fashion_mnist_classes();
  } else {
    // MNIST's digits, and any other IDX set's label numbers: as many classes as
    // the highest label says, so a 4-class set gets a 4-way model.
    for (size_t c = 0; c < classes; ++c) names.push_back(std::to_string(c));
  }
  split.train.class_names = names;
  split.test.class_names = names;
  std::string folder = fs::absolute(dir).lexically_normal().filename().string();
  if (folder.empty()) folder = fs::absolute(dir).lexically_normal().parent_path().filename().string();
  split.name = fashion ? "fashion-mnist" : folder;
  split.preprocessing.grayscale = true;
  return split;
}

fs::path default_data_dir() {
  // LENET_DATA_DIR lets a machine without the Debian package point elsewhere.
  if (const char* env = std::getenv("LENET_DATA_DIR"); env && *env) return env;
  return "/usr/share/datasets/fashion-mnist";
}

const std::vector<std::string>& fashion_mnist_classes() {
  // The names the chapter's get_fashion_mnist_labels prints.
  static const std::vector<std::string> names = {"t-shirt", "trouser", "pullover", "dress", "coat",
                                                 "sandal",  "shirt",   "sneaker",  "bag",   "ankle boot"};
  return names;
}

}  // namespace lenet

// Image-folder data sets: DIR/train/<class>/* (+ DIR/test/<class>/*) or CSV
// lists of "path,label", decoded once, in parallel, into a Dataset of 8-bit
// planar pixels: grayscale (1 channel) or RGB (3).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <map>
#include <numeric>
#include <stdexcept>

#include "lenet/fileio.h"
#include "lenet/image.h"

namespace lenet {

namespace fs = std::filesystem;

std::pair<int, int> parse_size(const std::string& text) {
  int h = 0, w = 0;
  char sep = 0, tail = 0;
  if (std::sscanf(text.c_str(), "%d%c%d%c", &h, &sep, &w, &tail) != 3 || (sep != 'x' && sep != 'X'))
    throw std::invalid_argument("size '" + text + "' is not HEIGHTxWIDTH such as 28x28");
  if (h < 1 || w < 1 || h > kMaxImageSide || w > kMaxImageSide)
    throw std::invalid_argument("size '" + text + "' must be 1.." + std::to_string(kMaxImageSide) + " per side");
  return {h, w};
}

namespace {

struct Sample {
  fs::path file;
  int32_t label = 0;
};

// The samples of one split, before decoding.
struct Listing {
  std::vector<Sample> samples;
  std::vector<std::string> notes;  // files ignored while listing (shown as skipped)
};

bool hidden(const fs::path& p) { return p.filename().string().starts_with("."); }

// Non-hidden sub-folders of `dir`, sorted by name.
std::vector<fs::path> class_folders(const fs::path& dir, std::vector<std::string>& notes) {
  std::vector<fs::path> folders;
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (hidden(entry.path())) continue;
    if (entry.is_directory())
      folders.push_back(entry.path());
    else
      notes.push_back(entry.path().string() + ": not inside a class folder, ignored");
  }
  std::sort(folders.begin(), folders.end());
  return folders;
}

// Every non-hidden regular file under `folder` (sub-folders included), sorted.
std::vector<fs::path> files_under(const fs::path& folder) {
  std::vector<fs::path> files;
  for (auto it = fs::recursive_directory_iterator(folder, fs::directory_options::follow_directory_symlink);
       it != fs::recursive_directory_iterator(); ++it) {
    if (hidden(it->path())) {
      if (it->is_directory()) it.disable_recursion_pending();
      continue;
    }
    if (it->is_regular_file()) files.push_back(it->path());
  }
  std::sort(files.begin(), files.end());
  return files;
}

Listing list_class_folders(const fs::path& split_dir, std::vector<std::string>& class_names, bool define_classes) {
  Listing listing;
  const std::vector<fs::path> folders = class_folders(split_dir, listing.notes);
  if (define_classes)
    for (const auto& f : folders) class_names.push_back(f.filename().string());
  for (const auto& folder : folders) {
    const std::string name = folder.filename().string();
    const auto at = std::find(class_names.begin(), class_names.end(), name);
    if (at == class_names.end())
      throw std::runtime_error(folder.string() + ": class '" + name + "' has no folder in " +
                               (split_dir.parent_path() / "train").string() + "; test classes must be train classes");
    const std::vector<fs::path> files = files_under(folder);
    if (files.empty())
      throw std::runtime_error(folder.string() + ": empty class folder (no image files); add images or remove it");
    for (const auto& f : files) listing.samples.push_back({f, static_cast<int32_t>(at - class_names.begin())});
  }
  return listing;
}

// ---- CSV lists ----

std::string trim(const std::string& s) {
  const size_t a = s.find_first_not_of(" \t\r");
  if (a == std::string::npos) return "";
  return s.substr(a, s.find_last_not_of(" \t\r") - a + 1);
}

// One CSV record (RFC 4180 quoting, no line breaks inside fields).
std::vector<std::string> csv_fields(const std::string& line) {
  std::vector<std::string> fields(1);
  bool quoted = false;
  for (size_t i = 0; i < line.size(); ++i) {
    const char ch = line[i];
    if (quoted) {
      if (ch == '"' && i + 1 < line.size() && line[i + 1] == '"')
        fields.back() += '"', ++i;
      else if (ch == '"')
        quoted = false;
      else
        fields.back() += ch;
    } else if (ch == '"') {
      quoted = true;
    } else if (ch == ',') {
      fields.emplace_back();
    } else {
      fields.back() += ch;
    }
  }
  for (auto& f : fields) f = trim(f);
  return fields;
}

struct CsvRow {
  fs::path file;
  std::string label;
};

std::vector<CsvRow> read_csv_list(const fs::path& csv) {
  const std::string text = read_file(csv);
  std::vector<CsvRow> rows;
  size_t start = 0;
  int line_no = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    const std::string line = trim(text.substr(start, end - start));
    start = end + 1;
    ++line_no;
    if (line.empty()) continue;
    const std::vector<std::string> f = csv_fields(line);
    if (line_no == 1 && f.size() == 2 && f[0] == "path" && f[1] == "label") continue;  // header
    if (f.size() != 2 || f[0].empty() || f[1].empty())
      throw std::runtime_error(csv.string() + ":" + std::to_string(line_no) + ": expected 'path,label', found '" +
                               line + "'");
    fs::path p = f[0];
    if (p.is_relative()) p = csv.parent_path() / p;
    rows.push_back({p, f[1]});
  }
  if (rows.empty()) throw std::runtime_error(csv.string() + ": no 'path,label' rows");
  return rows;
}

bool all_integers(const std::vector<CsvRow>& rows) {
  return std::all_of(rows.begin(), rows.end(), [](const CsvRow& r) {
    return r.label.size() <= 9 &&
           std::all_of(r.label.begin(), r.label.end(), [](char c) { return c >= '0' && c <= '9'; });
  });
}

Listing list_csv(const fs::path& csv, std::vector<std::string>& class_names, bool define_classes) {
  const std::vector<CsvRow> rows = read_csv_list(csv);
  const bool numeric = all_integers(rows);
  if (define_classes) {
    if (numeric) {
      int max_label = 0;
      for (const auto& r : rows) max_label = std::max(max_label, std::stoi(r.label));
      for (int i = 0; i <= max_label; ++i) class_names.push_back(std::to_string(i));
    } else {
      for (const auto& r : rows) class_names.push_back(r.label);
      std::sort(class_names.begin(), class_names.end());
      class_names.erase(std::unique(class_names.begin(), class_names.end()), class_names.end());
    }
  }
  Listing listing;
  for (const auto& r : rows) {
    // Numeric labels name classes "0".."N-1", so one lookup covers both kinds.
    const std::string name = numeric ? std::to_string(std::stoi(r.label)) : r.label;
    const auto at = std::find(class_names.begin(), class_names.end(), name);
    if (at == class_names.end())
      throw std::runtime_error(csv.string() + ": label '" + r.label + "' of " + r.file.string() +
                               " is not a class of the training list");
    listing.samples.push_back({r.file, static_cast<int32_t>(at - class_names.begin())});
  }
  return listing;
}

// ---- decoding ----

struct Decoded {
  std::vector<Image> images;
  std::vector<std::string> errors;  // "" when the file decoded
};

Decoded decode_all(const std::vector<Sample>& samples, const Preprocessing& pre, int channels, int threads) {
  Decoded d;
  const int64_t n = static_cast<int64_t>(samples.size());
  d.images.resize(n);
  d.errors.resize(n);
  decode_in_parallel(n, threads, [&](int64_t i) {
    try {
      d.images[i] = prepare_image(read_image(samples[i].file), pre, channels);
    } catch (const std::exception& e) {
      d.errors[i] = e.what();
    }
  });
  return d;
}

// Picks the test samples: round(test_split · n) of each class, at least one
// left for training, chosen by a seeded shuffle; both splits keep file order.
void stratified_split(const std::vector<int32_t>& labels, int classes, double test_split, uint64_t seed,
                      std::vector<int64_t>& train, std::vector<int64_t>& test) {
  std::vector<std::vector<int64_t>> by_class(classes);
  for (int64_t i = 0; i < static_cast<int64_t>(labels.size()); ++i) by_class[labels[i]].push_back(i);
  Rng rng(seed);
  std::vector<char> in_test(labels.size(), 0);
  for (auto& members : by_class) {
    const int64_t n = static_cast<int64_t>(members.size());
    const int64_t k = std::min<int64_t>(std::llround(test_split * static_cast<double>(n)), n - 1);
    rng.shuffle(std::span<int64_t>(members));
    for (int64_t j = 0; j < k; ++j) in_test[members[j]] = 1;
  }
  for (int64_t i = 0; i < static_cast<int64_t>(labels.size()); ++i) (in_test[i] ? test : train).push_back(i);
}

Dataset pack(const std::vector<Sample>& samples, const std::vector<int64_t>& keep, std::vector<Image>& images,
             const std::vector<std::string>& class_names, int channels, int height, int width) {
  Dataset d;
  d.class_names = class_names;
  d.channels = channels, d.height = height, d.width = width;
  d.count = static_cast<int64_t>(keep.size());
  const size_t plane = static_cast<size_t>(height) * width, size = plane * channels;
  d.pixels.resize(size * keep.size());
  d.labels.reserve(keep.size());
  d.files.reserve(keep.size());
  for (size_t j = 0; j < keep.size(); ++j) {
    Image& img = images[keep[j]];
    uint8_t* out = d.pixels.data() + j * size;
    if (channels == 1) {
      std::copy(img.pixels.begin(), img.pixels.end(), out);
    } else {  // interleaved [H, W, C] -> planar [C, H, W]
      for (size_t i = 0; i < plane; ++i)
        for (int c = 0; c < channels; ++c) out[c * plane + i] = img.pixels[i * channels + c];
    }
    img = Image{};  // release as we go: peak memory stays near one copy
    d.labels.push_back(samples[keep[j]].label);
    d.files.push_back(samples[keep[j]].file.string());
  }
  return d;
}

std::string folder_name(const fs::path& p) {
  fs::path q = p;
  if (q.filename().empty()) q = q.parent_path();  // "data/set/"
  if (q.extension() == ".csv") return q.stem().string();
  q = fs::absolute(q).lexically_normal();
  if (q.filename().empty()) q = q.parent_path();
  return q.filename().string();
}

}  // namespace

bool is_image_folder(const fs::path& dir) {
  std::error_code ec;
  if (fs::is_regular_file(dir, ec) && dir.extension() == ".csv") return true;
  return fs::is_directory(dir / "train", ec) || fs::is_regular_file(dir / "train.csv", ec);
}

DataSplit load_image_folder(const fs::path& path, const DataOptions& options, ImageLoadReport* report) {
  const auto started = std::chrono::steady_clock::now();
  std::error_code ec;
  if (!fs::exists(path, ec)) throw std::runtime_error(path.string() + ": no such file or folder");
  if (!is_image_folder(path))
    throw std::runtime_error(path.string() +
                             ": not an image folder (expected train/<class>/ folders, train.csv, or a .csv list)");
  if (options.channels != 1 && options.channels != 3)
    throw std::invalid_argument("channels " + std::to_string(options.channels) +
                                ": image folders are read as 1 (grayscale) or 3 (RGB) channels");
  if ((options.resize_height > 0) != (options.resize_width > 0) || options.resize_height < 0 ||
      options.resize_width < 0)
    throw std::invalid_argument("image size " + size_text(options.resize_height, options.resize_width) +
                                ": both height and width must be positive");

  // 1. List the files of each split.
  std::vector<std::string> class_names;
  Listing train_list, test_list;
  bool has_test = false;
  if (fs::is_regular_file(path, ec)) {
    train_list = list_csv(path, class_names, true);
  } else if (fs::is_directory(path / "train", ec)) {
    train_list = list_class_folders(path / "train", class_names, true);
    if ((has_test = fs::is_directory(path / "test", ec)))
      test_list = list_class_folders(path / "test", class_names, false);
  } else {
    train_list = list_csv(path / "train.csv", class_names, true);
    if ((has_test = fs::is_regular_file(path / "test.csv", ec)))
      test_list = list_csv(path / "test.csv", class_names, false);
  }
  if (class_names.size() < 2)
    throw std::runtime_error(path.string() + ": " + std::to_string(class_names.size()) + " class" +
                             (class_names.size() == 1 ? " ('" + class_names[0] + "')" : std::string("es")) +
                             "; a classifier needs at least two classes");
  if (!has_test && !(options.test_split > 0.0 && options.test_split < 1.0))
    throw std::invalid_argument("--test-split " + std::to_string(options.test_split) +
                                " must be between 0 and 1 (exclusive) when " + path.string() + " has no test split");

  // 2. Decode every file once, in parallel.
  Preprocessing pre;
  pre.grayscale = options.channels == 1;
  pre.resize_height = options.resize_height;
  pre.resize_width = options.resize_width;
  std::vector<Sample> all = train_list.samples;
  const size_t train_files = all.size();
  all.insert(all.end(), test_list.samples.begin(), test_list.samples.end());
  Decoded decoded = decode_all(all, pre, options.channels, options.threads);

  // 3. Report what was skipped; drop it.
  ImageLoadReport local;
  ImageLoadReport& rep = report ? *report : local;
  rep.files = static_cast<int64_t>(all.size() + train_list.notes.size() + test_list.notes.size());
  for (auto* notes : {&train_list.notes, &test_list.notes})
    for (const auto& n : *notes) rep.skipped.push_back(n);
  std::vector<int64_t> good;
  for (int64_t i = 0; i < static_cast<int64_t>(all.size()); ++i) {
    if (decoded.errors[i].empty())
      good.push_back(i);
    else
      rep.skipped.push_back(decoded.errors[i]);
  }
  rep.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();

  // 4. Every class keeps training images.
  std::vector<int64_t> per_class(class_names.size(), 0);
  for (int64_t i : good)
    if (static_cast<size_t>(i) < train_files) ++per_class[all[i].label];
  for (size_t c = 0; c < class_names.size(); ++c)
    if (per_class[c] == 0)
      throw std::runtime_error(path.string() + ": class '" + class_names[c] + "' has no readable training images (" +
                               std::to_string(rep.skipped.size()) + " file(s) were skipped)");

  // 5. One size for all, unless resized: the most common size is the expected one.
  std::map<std::pair<int, int>, int64_t> sizes;
  for (int64_t i : good) ++sizes[{decoded.images[i].height, decoded.images[i].width}];
  const auto common = std::max_element(sizes.begin(), sizes.end(),
                                       [](const auto& a, const auto& b) { return a.second < b.second; });
  const auto [height, width] = common->first;
  if (sizes.size() > 1) {
    for (int64_t i : good) {
      const Image& img = decoded.images[i];
      if (img.height != height || img.width != width)
        throw std::runtime_error(all[i].file.string() + ": image is " + size_text(img.height, img.width) +
                                 " (HxW) but " + std::to_string(common->second) + " of the " +
                                 std::to_string(good.size()) + " images are " + size_text(height, width) +
                                 "; pass --size HxW to resize them all");
    }
  }

  // 6. Splits: test/ as given, or a stratified part of train/.
  std::vector<int64_t> train_idx, test_idx;
  if (has_test) {
    for (int64_t i : good) (static_cast<size_t>(i) < train_files ? train_idx : test_idx).push_back(i);
  } else {
    std::vector<int32_t> labels;
    labels.reserve(good.size());
    for (int64_t i : good) labels.push_back(all[i].label);
    std::vector<int64_t> tr, te;
    stratified_split(labels, static_cast<int>(class_names.size()), options.test_split, options.seed, tr, te);
    for (int64_t j : tr) train_idx.push_back(good[j]);
    for (int64_t j : te) test_idx.push_back(good[j]);
  }
  if (test_idx.empty())
    throw std::runtime_error(path.string() + ": no test images" +
                             (has_test
                                  ? std::string(" could be read")
                                  : "; --test-split " + std::to_string(options.test_split) + " of " +
                                        std::to_string(good.size()) + " images selects none, raise it or add test/"));

  DataSplit split;
  split.name = folder_name(path);
  split.preprocessing = pre;
  split.train = pack(all, train_idx, decoded.images, class_names, options.channels, height, width);
  split.test = pack(all, test_idx, decoded.images, class_names, options.channels, height, width);
  return split;
}

}  // namespace lenet

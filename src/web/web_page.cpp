// `lenet export --web DIR`: the page folder, written whole or not at all.
#include "lenet/web.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <stdexcept>

#include "lenet/fileio.h"
#include "lenet/nn.h"
#include "lenet/onnx.h"
#include "lenet/report.h"

namespace lenet {

namespace web {
extern const std::string_view kPageTemplate;
}

namespace fs = std::filesystem;

namespace {

constexpr const char* kModelFile = "model.onnx";
constexpr const char* kPageFile = "index.html";

// The files an export writes; a folder holding only these is an earlier export.
std::set<std::string> exported_files() {
  std::set<std::string> names = {kModelFile, kPageFile};
  for (const auto& f : ort_web_files()) names.insert(f);
  return names;
}

// onnxruntime-web's version from dist/../package.json, for the page's footer.
std::string ort_version(const fs::path& ort_dir) {
  try {
    return nlohmann::json::parse(read_file(ort_dir.parent_path() / "package.json")).at("version").get<std::string>();
  } catch (const std::exception&) {
    return "(version unknown)";
  }
}

// Dark or light background, from the examples' border pixels (MNIST and
// Fashion-MNIST are white on black); the pad is drawn the same way.
std::string background_of(const std::vector<WebExample>& examples) {
  double sum = 0;
  int64_t n = 0;
  for (const auto& ex : examples) {
    const Image& im = ex.image;
    for (int y = 0; y < im.height; ++y)
      for (int x = 0; x < im.width; ++x)
        if (y == 0 || x == 0 || y == im.height - 1 || x == im.width - 1)
          for (int c = 0; c < im.channels; ++c) sum += im.at(y, x, c), ++n;
  }
  return n > 0 && sum / static_cast<double>(n) > 127.5 ? "light" : "dark";
}

std::string page_html(const ModelInfo& info, const WebPageOptions& options) {
  const PlotLabels labels = plot_labels(info);
  std::string subtitle = info.arch;
  if (info.epoch > 0) subtitle += " · epoch " + std::to_string(info.epoch);
  if (auto it = info.metrics.find("test_acc"); it != info.metrics.end() && std::isfinite(it->second)) {
    char acc[32];
    std::snprintf(acc, sizeof acc, "%.2f%%", 100 * it->second);
    subtitle += std::string(" · test accuracy ") + acc;
  }
  const auto& pre = info.preprocessing;
  nlohmann::ordered_json config = {
      {"title", labels.architecture + " on " + (info.dataset.empty() ? std::string("its data") : info.dataset)},
      {"subtitle", subtitle},
      {"model", kModelFile},
      {"ort_version", ort_version(options.ort_dir)},
      {"input_shape", info.input_shape},
      {"class_names", info.class_names},
      {"preprocessing",
       {{"grayscale", pre.grayscale},
        {"resize", {pre.resize_height, pre.resize_width}},
        {"normalization",
         {{"mean", pre.normalization.per_channel() ? nlohmann::ordered_json(pre.normalization.mean)
                                                   : nlohmann::ordered_json(pre.normalization.mean[0])},
          {"std", pre.normalization.per_channel() ? nlohmann::ordered_json(pre.normalization.std)
                                                  : nlohmann::ordered_json(pre.normalization.std[0])}}}}},
      {"top_k", options.top_k},
      {"background", background_of(options.examples)},
      {"examples_note", options.examples.empty() ? options.examples_note : std::string()},
      {"examples", nlohmann::ordered_json::array()},
  };
  for (const auto& ex : options.examples)
    config["examples"].push_back(
        {{"label", ex.label}, {"png", "data:image/png;base64," + base64(encode_png(ex.image))}});
  // Inside <script>, "</" would end the element: JSON allows "<\/" instead.
  std::string json = config.dump();
  for (size_t at = 0; (at = json.find("</", at)) != std::string::npos; at += 3) json.replace(at, 2, "<\\/");
  std::string html(web::kPageTemplate);
  const std::string marker = "@CONFIG@";
  html.replace(html.find(marker), marker.size(), json);
  return html;
}

void sync_folder(const fs::path& folder) {
  const int fd = ::open(folder.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd >= 0) ::fsync(fd), ::close(fd);
}

// Removes the temporary folder unless the export finished.
struct TempFolder {
  fs::path path;
  bool keep = false;
  ~TempFolder() {
    std::error_code ec;
    if (!keep) fs::remove_all(path, ec);
  }
};

}  // namespace

const std::vector<std::string>& ort_web_files() {
  static const std::vector<std::string> files = {"ort.wasm.min.js", "ort-wasm-simd-threaded.mjs",
                                                 "ort-wasm-simd-threaded.wasm"};
  return files;
}

std::vector<WebExample> pick_web_examples(const Dataset& test, int count) {
  std::vector<WebExample> out;
  std::vector<bool> taken(test.class_names.size(), false);
  const int64_t plane = static_cast<int64_t>(test.height) * test.width;
  for (int64_t i = 0; i < test.count && static_cast<int>(out.size()) < count; ++i) {
    const auto label = static_cast<size_t>(test.labels[static_cast<size_t>(i)]);
    if (label >= taken.size() || taken[label]) continue;
    taken[label] = true;
    WebExample ex;
    ex.label = test.class_names[label];
    ex.image = Image(test.height, test.width, test.channels);
    const uint8_t* src = test.pixels.data() + i * test.sample_size();  // planar [C, H, W]
    for (int64_t p = 0; p < plane; ++p)
      for (int c = 0; c < test.channels; ++c) ex.image.pixels[p * test.channels + c] = src[c * plane + p];
    out.push_back(std::move(ex));
  }
  std::stable_sort(out.begin(), out.end(), [&](const WebExample& a, const WebExample& b) {
    auto index = [&](const std::string& name) {
      return std::find(test.class_names.begin(), test.class_names.end(), name) - test.class_names.begin();
    };
    return index(a.label) < index(b.label);
  });
  return out;
}

void export_web_page(const fs::path& dir, const Sequential& model, const ModelInfo& info,
                     const WebPageOptions& options) {
  fs::path target = dir.lexically_normal();
  if (target.filename().empty()) target = target.parent_path();
  if (target.empty()) throw std::runtime_error("--web needs a folder name");
  const fs::path parent = fs::absolute(target).parent_path();
  std::error_code ec;
  if (!fs::is_directory(parent, ec))
    throw std::runtime_error(target.string() + ": cannot create the folder: " + parent.string() + " does not exist");
  bool replace = false;
  if (fs::exists(fs::symlink_status(target, ec))) {
    if (!fs::is_directory(fs::symlink_status(target, ec)))
      throw std::runtime_error(target.string() + " exists and is not a folder");
    const std::set<std::string> ours = exported_files();
    for (const auto& entry : fs::directory_iterator(target, ec)) {
      const std::string name = entry.path().filename().string();
      if (!ours.contains(name) || !entry.is_regular_file())
        throw std::runtime_error(target.string() + " holds other files (e.g. '" + name +
                                 "'): give a new or empty folder, or one an earlier lenet export --web wrote");
      replace = true;
    }
    if (ec) throw std::runtime_error(target.string() + ": cannot list the folder: " + ec.message());
  }

  // Everything that can fail for the model's sake before anything is written.
  if (info.input_shape.size() != 3 || (info.input_shape[0] != 1 && info.input_shape[0] != 3))
    throw std::runtime_error("the page takes models of 1 (grayscale) or 3 (RGB) input channels, this one takes " +
                             to_string(info.input_shape));
  const std::string onnx = onnx_model_bytes(model, info, {options.opset});
  const std::string html = page_html(info, options);
  for (const auto& f : ort_web_files())
    if (!fs::is_regular_file(options.ort_dir / f, ec))
      throw std::runtime_error("onnxruntime-web file " + (options.ort_dir / f).string() +
                               " is missing: run scripts/setup.sh (it installs web/package-lock.json's "
                               "onnxruntime-web), or pass --ort-dir (or set LENET_ORT_WEB_DIR) to its dist/ folder");

  std::random_device rd;
  TempFolder tmp{parent / ("." + target.filename().string() + ".tmp-" + std::to_string(::getpid()) + "-" +
                           std::to_string(rd() % 1000000))};
  if (!fs::create_directory(tmp.path, ec))
    throw std::runtime_error("cannot create " + tmp.path.string() + ": " + (ec ? ec.message() : "it exists"));
  write_file_atomic(tmp.path / kModelFile, onnx);
  write_file_atomic(tmp.path / kPageFile, html);
  for (const auto& f : ort_web_files()) write_file_atomic(tmp.path / f, read_file(options.ort_dir / f));

  // An earlier export moves aside first; rename() replaces an empty folder itself.
  const fs::path old = parent / ("." + target.filename().string() + ".old-" + std::to_string(::getpid()));
  if (replace) {
    fs::rename(target, old, ec);
    if (ec) throw std::runtime_error("cannot replace " + target.string() + ": " + ec.message());
  }
  fs::rename(tmp.path, target, ec);
  if (ec) {
    std::error_code back;
    if (replace) fs::rename(old, target, back);
    throw std::runtime_error("cannot create " + target.string() + ": " + ec.message());
  }
  tmp.keep = true;
  sync_folder(parent);
  if (replace) fs::remove_all(old, ec);
}

std::string web_content_type(const fs::path& file) {
  static const std::pair<const char*, const char*> types[] = {
      {".html", "text/html; charset=utf-8"},
      {".js", "text/javascript; charset=utf-8"},
      {".mjs", "text/javascript; charset=utf-8"},
      {".wasm", "application/wasm"},
      {".onnx", "application/octet-stream"},
      {".json", "application/json"},
      {".css", "text/css; charset=utf-8"},
      {".png", "image/png"},
      {".jpg", "image/jpeg"},
      {".jpeg", "image/jpeg"},
      {".svg", "image/svg+xml"},
      {".ico", "image/x-icon"},
      {".txt", "text/plain; charset=utf-8"},
  };
  std::string ext = file.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  for (auto& [e, type] : types)
    if (ext == e) return type;
  return "application/octet-stream";
}

}  // namespace lenet

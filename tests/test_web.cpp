// The model in a web page: `lenet export --web DIR` and `lenet serve`, checked
// in a real browser (Debian's chromium, headless, driven by puppeteer-core in
// tests/browser/run.js): the page's probabilities for 20 image files against
// `lenet predict --json`, a stroke drawn with synthetic mouse events, a
// screenshot, console errors, a browser without WebAssembly; and every bad
// export refused with one line and nothing half-written.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "cli_util.h"
#include "data_test_util.h"
#include "lenet/checkpoint.h"
#include "lenet/image.h"
#include "lenet/nn.h"
#include "lenet/web.h"

using namespace lenet;
using test::expect_error_line;
using test::quoted;
using test::run_cli;
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

const fs::path kRunJs = fs::path(LENET_SOURCE_DIR) / "tests" / "browser" / "run.js";
// Kept after the test (a CI artifact); docs/web-page.png is a copy.
const fs::path kScreenshot = fs::path(LENET_CLI).parent_path() / "web-test" / "web-page.png";

// Names in `dir`, hidden ones included (a leftover temporary folder is one).
std::set<std::string> entries(const fs::path& dir) {
  std::set<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) names.insert(e.path().filename().string());
  return names;
}

std::string shell_output(const std::string& cmd, int& status) {
  std::string out;
  FILE* pipe = popen(cmd.c_str(), "r");
  if (!pipe) return status = -1, out;
  std::array<char, 4096> buf;
  for (size_t n; (n = fread(buf.data(), 1, buf.size(), pipe)) > 0;) out.append(buf.data(), n);
  const int raw = pclose(pipe);
  status = WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
  return out;
}

// A model trained by the CLI on a small part of Fashion-MNIST (or, without
// the Debian package, on synthetic 28x28 images), exported as a page, and 20
// image files made from its test split: 14 gray PNGs as they are, 3 tinted RGB
// ones (luma) and 3 RGB ones of another size (bilinear resize, --resize).
class WebPage : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new test::ScratchDir("lenet-web");
    fs::path data = test::fashion_mnist_dir();
    if (!test::have_fashion_mnist()) {
      data = *dir_ / "data";
      test::write_synthetic_idx(data, 600, 100, 28, 4);
    }
    run_ = *dir_ / "run";
    auto r = run_cli("train --data " + quoted(data) +
                     " --arch lenet-relu --limit-train 2000 --limit-test 200"
                     " --batch-size 32 --epochs 1 --threads 1 --seed 0 --out " +
                     quoted(run_));
    if (r.code != 0) return void(setup_error_ = "training failed: " + r.err);
    r = run_cli("export --model " + quoted(run_ / "best.safetensors") + " --web " + quoted(run_ / "web"));
    if (r.code != 0) return void(setup_error_ = "export --web failed: " + r.err);
    export_out_ = r.out;
    try {
      const Dataset test = load_dataset(data).test;
      fs::create_directories(*dir_ / "images");
      for (int i = 0; i < 20; ++i) {
        Image im(test.height, test.width, 1);
        std::copy_n(test.pixels.begin() + i * test.sample_size(), test.sample_size(), im.pixels.begin());
        if (i >= 14) {  // tinted: R, G and B differ, so the luma weights matter
          Image rgb(im.height, im.width, 3);
          for (size_t p = 0; p < im.pixels.size(); ++p) {
            rgb.pixels[3 * p] = im.pixels[p];
            rgb.pixels[3 * p + 1] = static_cast<uint8_t>(im.pixels[p] * 3 / 4);
            rgb.pixels[3 * p + 2] = static_cast<uint8_t>(255 - im.pixels[p] / 2);
          }
          im = i >= 17 ? resize_bilinear(rgb, 40, 34) : rgb;
        }
        images_.push_back(*dir_ / "images" / ("test-" + std::to_string(i) + ".png"));
        write_png(images_.back(), im);
      }
    } catch (const std::exception& e) {
      setup_error_ = std::string("writing the test images failed: ") + e.what();
    }
  }
  void SetUp() override {
    if (!setup_error_.empty()) FAIL() << setup_error_;
  }
  static void TearDownTestSuite() { delete dir_; }

  static test::ScratchDir* dir_;
  static inline fs::path run_;
  static inline std::vector<fs::path> images_;
  static inline std::string export_out_, setup_error_;
};
test::ScratchDir* WebPage::dir_ = nullptr;

bool browser_available() {
  if (std::getenv("LENET_SKIP_BROWSER")) return false;
  const fs::path module = kRunJs.parent_path() / "node_modules" / "puppeteer-core";
  const fs::path chromium = std::getenv("LENET_CHROMIUM") ? std::getenv("LENET_CHROMIUM") : "/usr/bin/chromium";
  EXPECT_TRUE(fs::exists(module)) << module << " is missing: run scripts/setup.sh (or set LENET_SKIP_BROWSER=1)";
  EXPECT_TRUE(fs::exists(chromium)) << chromium << " is missing: run scripts/setup.sh (or set LENET_SKIP_BROWSER=1)";
  return fs::exists(module) && fs::exists(chromium);
}

}  // namespace

TEST_F(WebPage, ExportWritesOneSelfContainedFolder) {
  const fs::path web = run_ / "web";
  EXPECT_EQ(entries(web), (std::set<std::string>{"index.html", "model.onnx", "ort.wasm.min.js",
                                                 "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm"}));
  // The model is our exporter's file, the one training wrote too.
  EXPECT_EQ(test::read_bytes(web / "model.onnx"), test::read_bytes(run_ / "best.onnx"));
  // The runtime files are the pinned npm package's, byte for byte.
  const fs::path dist = fs::path(LENET_SOURCE_DIR) / "web" / "node_modules" / "onnxruntime-web" / "dist";
  for (const auto& f : ort_web_files()) EXPECT_EQ(test::read_bytes(web / f), test::read_bytes(dist / f)) << f;
  // The page carries the model's metadata; nothing is fetched from elsewhere.
  const std::string html = test::read_bytes(web / "index.html");
  const size_t begin = html.find("<script id=\"model-config\" type=\"application/json\">");
  ASSERT_NE(begin, std::string::npos);
  const size_t start = html.find('>', begin) + 1;
  const json config = json::parse(html.substr(start, html.find("</script>", start) - start));
  const LoadedModel best = load_checkpoint(run_ / "best.safetensors");
  EXPECT_EQ(config.at("class_names").get<std::vector<std::string>>(), best.info.class_names);
  EXPECT_EQ(config.at("input_shape").get<Shape>(), best.info.input_shape);
  EXPECT_EQ(config.at("preprocessing").at("normalization").at("std").get<float>(),
            best.info.preprocessing.normalization.std.at(0));
  EXPECT_EQ(config.at("background"), "dark");  // MNIST-like: white on black
  ASSERT_EQ(config.at("examples").size(), std::min<size_t>(10, best.info.class_names.size()));
  for (size_t k = 0; k < config.at("examples").size(); ++k) {
    EXPECT_EQ(config["examples"][k].at("label"), best.info.class_names[k]) << "one test image per class, in order";
    EXPECT_EQ(config["examples"][k].at("png").get<std::string>().rfind("data:image/png;base64,", 0), 0u);
  }
  for (const char* remote : {"src=\"http", "href=\"http", "src=\"//", "href=\"//", "https://"})
    EXPECT_EQ(html.find(remote), std::string::npos) << remote;
  EXPECT_EQ(config.at("model"), "model.onnx");
  EXPECT_NE(export_out_.find("lenet serve"), std::string::npos) << export_out_;

  // report.html links the page once it is redrawn.
  ASSERT_EQ(run_cli("plot " + quoted(run_)).code, 0);
  EXPECT_NE(test::read_bytes(run_ / "report.html").find("<a href=\"web/index.html\">"), std::string::npos);
}

TEST_F(WebPage, BrowserShowsWhatPredictComputes) {
  if (!browser_available()) GTEST_SKIP() << "LENET_SKIP_BROWSER is set";
  fs::create_directories(kScreenshot.parent_path());
  fs::remove(kScreenshot);
  std::string cmd = "node " + quoted(kRunJs) + " " + quoted(LENET_CLI) + " " + quoted(run_ / "web") + " " +
                    quoted(kScreenshot);
  for (const auto& f : images_) cmd += " " + quoted(f);
  int status = 0;
  const std::string out = shell_output(cmd + " 2>&1", status);
  ASSERT_EQ(status, 0) << out;
  const json page = json::parse(out.substr(out.rfind('{', out.rfind("\"url\""))));
  std::printf("browser checks took %.1f s\n", page.at("seconds").get<double>());

  // The server: the types browsers insist on, and nothing outside the folder.
  const json& types = page.at("server").at("types");
  EXPECT_EQ(types.at("ort-wasm-simd-threaded.wasm").at("type"), "application/wasm");
  EXPECT_EQ(types.at("ort-wasm-simd-threaded.mjs").at("type"), "text/javascript; charset=utf-8");
  EXPECT_EQ(types.at("ort.wasm.min.js").at("type"), "text/javascript; charset=utf-8");
  EXPECT_EQ(types.at("/").at("type"), "text/html; charset=utf-8");
  for (const auto& [file, t] : types.items()) EXPECT_EQ(t.at("status"), 200) << file;
  EXPECT_EQ(page.at("server").at("escape"), "HTTP/1.0 404 Not Found");

  // Loaded without cross-origin isolation, without console errors, and showing a test image at once.
  EXPECT_EQ(page.at("status").at("state"), "ready") << page.at("status").at("text");
  EXPECT_EQ(page.at("crossOriginIsolated"), false);
  EXPECT_TRUE(page.at("consoleErrors").empty()) << page.at("consoleErrors").dump();
  const LoadedModel best = load_checkpoint(run_ / "best.safetensors");
  const size_t classes = best.info.class_names.size();
  EXPECT_EQ(page.at("examples").size(), std::min<size_t>(10, classes));
  for (const auto& ex : page.at("examples")) EXPECT_EQ(ex.at("probabilities").size(), classes) << ex.dump();
  EXPECT_EQ(page.at("initial").at("source"), page.at("examples").at(0).at("file"));
  EXPECT_EQ(page.at("initial").at("rows"), std::min<size_t>(5, classes));

  // The 20 files: the page's probabilities are lenet predict's.
  std::string args = "predict --model " + quoted(run_ / "best.safetensors") + " --json --resize --top-k 100";
  for (const auto& f : images_) args += " " + quoted(f);
  const auto predicted = run_cli(args);
  ASSERT_EQ(predicted.code, 0) << predicted.err;
  std::map<std::string, std::vector<double>> expected;
  std::istringstream lines(predicted.out);
  for (std::string line; std::getline(lines, line);) {
    const json j = json::parse(line);
    std::vector<double> p(classes);
    for (const auto& s : j.at("top_k")) p.at(s.at("index").get<size_t>()) = s.at("probability").get<double>();
    expected[fs::path(j.at("file").get<std::string>()).filename().string()] = p;
  }
  const json& files = page.at("files");
  ASSERT_EQ(files.size(), images_.size());
  double worst = 0;
  for (size_t i = 0; i < images_.size(); ++i) {
    const std::string name = images_[i].filename().string();
    ASSERT_EQ(files[i].at("file"), name);
    ASSERT_TRUE(files[i].at("error").is_null()) << files[i].at("error");
    const auto shown = files[i].at("probabilities").get<std::vector<double>>();
    ASSERT_EQ(shown.size(), classes) << name;
    for (size_t k = 0; k < classes; ++k) {
      EXPECT_NEAR(shown[k], expected.at(name)[k], 1e-4) << name << " class " << k;
      worst = std::max(worst, std::abs(shown[k] - expected.at(name)[k]));
    }
  }
  std::printf("largest difference from lenet predict over %zu files: %.3g\n", images_.size(), worst);

  // A stroke: the prediction updates while it is drawn, and differs from the blank pad's.
  const json& d = page.at("drawing");
  EXPECT_EQ(d.at("blank").at("source"), "drawing");
  EXPECT_EQ(d.at("drawn").at("source"), "drawing");
  EXPECT_GT(d.at("padInk").get<double>(), 0.02) << "the stroke left no ink on the pad";
  std::set<int> updates;
  for (const auto& s : d.at("seqsDuringStroke")) updates.insert(s.get<int>());
  EXPECT_GE(updates.size(), 4u) << "the prediction did not follow the pen: " << d.at("seqsDuringStroke").dump();
  EXPECT_GT(d.at("drawn").at("seq").get<int>(), d.at("blank").at("seq").get<int>());
  const auto before = d.at("blank").at("probabilities").get<std::vector<double>>();
  const auto after = d.at("drawn").at("probabilities").get<std::vector<double>>();
  double change = 0;
  for (size_t k = 0; k < classes; ++k) change = std::max(change, std::abs(before.at(k) - after.at(k)));
  EXPECT_GT(change, 1e-3) << "the drawing did not change the prediction";

  // Without WebAssembly the page says so.
  EXPECT_EQ(page.at("noWebAssembly").at("state"), "error");
  EXPECT_NE(page.at("noWebAssembly").at("text").get<std::string>().find("WebAssembly"), std::string::npos);

  // The screenshot: the page's size, not blank, the pad's stroke and the top bar drawn.
  const Image shot = read_image(kScreenshot);
  EXPECT_EQ(shot.width, 900);
  EXPECT_EQ(shot.height, 760);
  std::set<uint32_t> colours;
  int64_t black = 0, green = 0;
  for (int y = 0; y < shot.height; ++y)
    for (int x = 0; x < shot.width; ++x) {
      const int r = shot.at(y, x, 0), g = shot.at(y, x, 1), b = shot.at(y, x, 2);
      colours.insert(static_cast<uint32_t>(r << 16 | g << 8 | b));
      black += r == 0 && g == 0 && b == 0;
      green += r == 0x22 && g == 0xaa && b == 0x22;
    }
  EXPECT_GT(colours.size(), 50u) << "the screenshot is (nearly) blank";
  EXPECT_GT(black, 20000) << "no drawing pad in the screenshot";
  EXPECT_GT(green, 100) << "no probability bar in the screenshot";
}

TEST_F(WebPage, BadExportsFailCleanly) {
  const fs::path model = run_ / "best.safetensors";
  const std::string web = " --web ";

  // A folder that holds other files is left alone.
  const fs::path other = *dir_ / "other";
  fs::create_directories(other);
  test::write_bytes(other / "notes.txt", "mine");
  expect_error_line(run_cli("export --model " + quoted(model) + web + quoted(other)),
                    {other.string(), "holds other files", "notes.txt"}, "folder with other files");
  EXPECT_EQ(entries(other), std::set<std::string>{"notes.txt"});
  EXPECT_EQ(test::read_bytes(other / "notes.txt"), "mine");
  const fs::path file = *dir_ / "a-file";
  test::write_bytes(file, "x");
  expect_error_line(run_cli("export --model " + quoted(model) + web + quoted(file)), {file.string(), "not a folder"},
                    "a file");

  // Unreadable models.
  const fs::path target = *dir_ / "page";
  const fs::path missing = *dir_ / "no-such.safetensors";
  expect_error_line(run_cli("export --model " + quoted(missing) + web + quoted(target)), {missing.string()},
                    "missing model");
  const std::string ckpt = test::read_bytes(model);
  const fs::path truncated = *dir_ / "truncated.safetensors";
  test::write_bytes(truncated, ckpt.substr(0, ckpt.size() - 100));
  expect_error_line(run_cli("export --model " + quoted(truncated) + web + quoted(target)),
                    {truncated.string(), "truncated"}, "truncated checkpoint");

  // A model the page cannot express (every model build_model accepts ends in [N, classes]).
  Rng rng(3);
  ModelInfo two;
  two.input_shape = {2, 12, 12};
  two.class_names = {"a", "b", "c"};
  Sequential two_channels = build_model("conv 4 k3, relu, flatten, linear", two.input_shape, 3, &rng);
  two.arch = two_channels.spec();
  save_checkpoint(*dir_ / "two-channels.safetensors", two_channels, two);
  expect_error_line(run_cli("export --model " + quoted(*dir_ / "two-channels.safetensors") + web + quoted(target)),
                    {"1 (grayscale) or 3 (RGB)", "[2, 12, 12]"}, "two input channels");
  // onnxruntime-web not installed.
  expect_error_line(run_cli("export --model " + quoted(model) + web + quoted(target) + " --ort-dir " +
                            quoted(*dir_ / "no-ort")),
                    {(*dir_ / "no-ort" / "ort.wasm.min.js").string(), "scripts/setup.sh", "--ort-dir"},
                    "no onnxruntime-web");
  expect_error_line(run_cli("export --model " + quoted(model) + web + quoted(target), {},
                            "LENET_ORT_WEB_DIR=" + (*dir_ / "no-ort").string()),
                    {(*dir_ / "no-ort" / "ort.wasm.min.js").string()}, "LENET_ORT_WEB_DIR");

  // A write that fails half-way (a file-size limit, as a full disk) leaves nothing behind.
  const std::set<std::string> before = entries(dir_->path());
  int status = 0;
  const std::string out = shell_output("bash -c \"trap '' XFSZ; ulimit -f 2048; exec '" + std::string(LENET_CLI) +
                                           "' export --model '" + model.string() + "' --web '" + target.string() +
                                           "'\" 2>&1",
                                       status);
  EXPECT_NE(status, 0) << out;
  EXPECT_NE(out.find("cannot write"), std::string::npos) << out;
  EXPECT_EQ(test::line_count(out), 1) << out;
  EXPECT_EQ(entries(dir_->path()), before) << "a failed export left files behind";
  EXPECT_FALSE(fs::exists(target));

  // An earlier export is replaced whole.
  ASSERT_EQ(run_cli("export --model " + quoted(model) + web + quoted(target)).code, 0);
  const std::string first = test::read_bytes(target / "index.html");
  const auto again = run_cli("export --model " + quoted(model) + web + quoted(target) + " --examples 0");
  ASSERT_EQ(again.code, 0) << again.err;
  EXPECT_NE(test::read_bytes(target / "index.html"), first);
  EXPECT_NE(test::read_bytes(target / "index.html").find("no test images embedded (--examples 0)"), std::string::npos);
  EXPECT_EQ(entries(dir_->path()), [&] {
    auto e = before;
    e.insert("page");
    return e;
  }());

  // Serving a folder that holds no page.
  expect_error_line(run_cli("serve " + quoted(other) + " --port 0"), {other.string(), "no index.html"},
                    "serve a folder without a page");
}

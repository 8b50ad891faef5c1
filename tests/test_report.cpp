// Training pictures and the HTML report: the PNGs have the promised size, are
// not blank, and show the numbers they were given (curve heights, cell
// colours); the page embeds exactly those PNGs and links only files that exist.
#include <gtest/gtest.h>

#include <unistd.h>
#include "capture_util.h"
#include "cli_util.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "lenet/fileio.h"
#include "lenet/report.h"

// The library may carry its own stb_image; static linkage keeps this copy
// private to the test so the two never clash.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wall"
#pragma GCC diagnostic ignored "-Wextra"
#pragma GCC diagnostic ignored "-Wpedantic"
#pragma GCC diagnostic ignored "-Wshadow"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wimplicit-fallthrough"
#define STB_IMAGE_STATIC
#define STB_IMAGE_IMPLEMENTATION
#define STBI_ONLY_PNG
#include <stb_image.h>
#pragma GCC diagnostic pop

namespace lenet {
namespace {

namespace fs = std::filesystem;

// ---- helpers ----

struct Picture {
  int width = 0, height = 0;
  std::vector<uint8_t> rgb;
  const uint8_t* at(int x, int y) const { return &rgb[(static_cast<size_t>(y) * width + x) * 3]; }
};

Picture load_png(const fs::path& path) {
  Picture p;
  int channels = 0;
  unsigned char* data = stbi_load(path.c_str(), &p.width, &p.height, &channels, 3);
  if (!data) throw std::runtime_error("cannot decode " + path.string() + ": " + stbi_failure_reason());
  p.rgb.assign(data, data + static_cast<size_t>(p.width) * p.height * 3);
  stbi_image_free(data);
  return p;
}

double pixel_variance(const Picture& p) {
  double sum = 0, sq = 0;
  for (uint8_t v : p.rgb) sum += v, sq += double(v) * v;
  const double n = static_cast<double>(p.rgb.size());
  return sq / n - (sum / n) * (sum / n);
}

struct Rgb {
  int r, g, b;
};
constexpr Rgb kTrainBlue{31, 119, 180}, kTestOrange{255, 127, 14};

bool near(const uint8_t* px, Rgb c, int tol = 40) {
  return std::abs(px[0] - c.r) + std::abs(px[1] - c.g) + std::abs(px[2] - c.b) <= tol;
}
// Grey ink: black lines, anti-aliased over up to two pixels, but not the light
// grid lines nor any coloured pixel.
bool dark(const uint8_t* px) {
  const int hi = std::max({px[0], px[1], px[2]}), lo = std::min({px[0], px[1], px[2]});
  return hi < 200 && hi - lo < 12;
}

// The plot frame: the outermost columns and rows that are dark over most of
// their length (PLplot's box; grid lines are light grey, ticks and text short).
struct Frame {
  int left = -1, right = -1, top = -1, bottom = -1;
};
Frame find_frame(const Picture& p) {
  auto column_dark = [&](int x) {
    int n = 0;
    for (int y = 0; y < p.height; ++y) n += dark(p.at(x, y));
    return n;
  };
  Frame f;
  for (int x = 0; x < p.width; ++x)
    if (column_dark(x) > p.height * 0.4) {
      if (f.left < 0) f.left = x;
      f.right = x;
    }
  for (int y = 0; f.left >= 0 && y < p.height; ++y) {
    int n = 0;
    for (int x = f.left; x <= f.right; ++x) n += dark(p.at(x, y));
    if (n > (f.right - f.left) * 0.8) {
      if (f.top < 0) f.top = y;
      f.bottom = y;
    }
  }
  return f;
}

// The heat map's cells: the first run of columns (from the left) with a blue
// tint over much of their height — even an empty cell is tinted (247, 251, 255),
// unlike the white page and the grey text — and the rows it spans.
Frame find_cells(const Picture& p) {
  auto tinted = [&](int x, int y) { return p.at(x, y)[2] - p.at(x, y)[0] >= 5; };
  Frame f;
  for (int x = 0; x < p.width; ++x) {
    int n = 0;
    for (int y = 0; y < p.height; ++y) n += tinted(x, y);
    if (n > p.height * 0.3) {
      if (f.left < 0) f.left = x;
      f.right = x;
    } else if (f.left >= 0) {
      break;  // the colour bar comes after a white gap
    }
  }
  for (int y = 0; f.left >= 0 && y < p.height; ++y) {
    int n = 0;
    for (int x = f.left; x <= f.right; ++x) n += tinted(x, y);
    if (n > (f.right - f.left) * 0.5) {
      if (f.top < 0) f.top = y;
      f.bottom = y;
    }
  }
  return f;
}

// Mean row of the pixels of colour `c` inside the frame within columns [x0, x1).
double mean_row(const Picture& p, const Frame& f, Rgb c, int x0, int x1) {
  double sum = 0;
  int n = 0;
  for (int y = f.top + 2; y < f.bottom - 1; ++y)
    for (int x = std::max(x0, f.left + 2); x < std::min(x1, f.right - 1); ++x)
      if (near(p.at(x, y), c)) sum += y, ++n;
  return n ? sum / n : NAN;
}
// The first and last frame columns holding colour `c`.
std::pair<int, int> column_span(const Picture& p, const Frame& f, Rgb c) {
  int first = -1, last = -1;
  for (int x = f.left + 2; x < f.right - 1; ++x)
    for (int y = f.top + 2; y < f.bottom - 1; ++y)
      if (near(p.at(x, y), c)) {
        if (first < 0) first = x;
        last = x;
        break;
      }
  return {first, last};
}

std::vector<EpochMetrics> history_of(const std::vector<double>& train_loss, const std::vector<double>& test_loss,
                                     const std::vector<double>& train_acc, const std::vector<double>& test_acc) {
  std::vector<EpochMetrics> h;
  for (size_t i = 0; i < train_loss.size(); ++i) {
    EpochMetrics m;
    m.epoch = static_cast<int>(i) + 1;
    m.train_loss = train_loss[i];
    m.test_loss = test_loss[i];
    m.train_acc = train_acc[i];
    m.test_acc = test_acc[i];
    m.seconds = 1.5 + i;
    m.images_per_s = 1000 + 10 * i;
    h.push_back(m);
  }
  return h;
}

ModelInfo lenet_info() {
  ModelInfo info;
  info.arch = build_model("lenet", {1, 28, 28}, 10, nullptr).spec();
  info.input_shape = {1, 28, 28};
  info.class_names = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                      "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};
  info.dataset = "fashion-mnist";
  return info;
}

Evaluation evaluation_of(int classes, const std::vector<int64_t>& confusion) {
  Evaluation ev;
  ev.classes = classes;
  ev.confusion = confusion;
  int64_t correct = 0;
  // Tests also build matrices that do not fit `classes` on purpose.
  for (int i = 0; i < classes && static_cast<size_t>(i) * classes + i < confusion.size(); ++i)
    correct += confusion[static_cast<size_t>(i) * classes + i];
  for (int64_t c : confusion) ev.count += c;
  ev.accuracy = ev.count ? static_cast<double>(correct) / ev.count : 0;
  ev.loss = 0.5;
  return ev;
}

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/lenet-report-XXXXXX";
    path_ = ::mkdtemp(tmpl);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

using test::captured_output;  // PLplot and cairo are C code that would print on fds 1 and 2 directly

const PlotLabels kLabels{"lenet", "fashion-mnist"};

// ---- curves ----

TEST(ReportCurves, HaveThePromisedSizeAndAreNotBlank) {
  TempDir dir;
  const auto h = history_of({2.1, 1.2, 0.8, 0.6, 0.5}, {2.0, 1.3, 0.9, 0.75, 0.7}, {0.3, 0.6, 0.7, 0.78, 0.82},
                            {0.32, 0.58, 0.68, 0.74, 0.77});
  plot_loss(dir.path() / "loss.png", h, kLabels);
  plot_accuracy(dir.path() / "accuracy.png", h, kLabels);
  for (const char* name : {"loss.png", "accuracy.png"}) {
    SCOPED_TRACE(name);
    const Picture p = load_png(dir.path() / name);
    EXPECT_EQ(p.width, kCurvePlotWidth);
    EXPECT_EQ(p.height, kCurvePlotHeight);
    EXPECT_GT(pixel_variance(p), 200.0);  // a white page with a few dark lines is ~1000+
    const Frame f = find_frame(p);
    ASSERT_GE(f.left, 0);
    ASSERT_GT(f.right - f.left, p.width / 2);
    ASSERT_GT(f.bottom - f.top, p.height / 2);
    // Both curves are drawn inside the frame.
    EXPECT_GT(column_span(p, f, kTrainBlue).second - column_span(p, f, kTrainBlue).first, (f.right - f.left) * 0.8);
    EXPECT_GT(column_span(p, f, kTestOrange).second - column_span(p, f, kTestOrange).first, (f.right - f.left) * 0.8);
  }
  // Only the finished files are left: no temporary files beside them.
  int files = 0;
  for (auto& e : fs::directory_iterator(dir.path())) {
    EXPECT_EQ(e.path().extension(), ".png") << e.path();
    ++files;
  }
  EXPECT_EQ(files, 2);
}

// The picture shows the data: with train loss 2.0 → 0.5 and a flat test loss
// of 1.5, the flat orange line must sit exactly a third of the way from the
// blue curve's first point down to its last one — whatever range or padding
// the plot chose, since the value-to-row map is linear.
TEST(ReportCurves, CurveHeightsFollowTheValues) {
  TempDir dir;
  const auto h = history_of({2.0, 1.25, 0.5}, {1.5, 1.5, 1.5}, {0.5, 0.7, 0.9}, {0.8, 0.8, 0.8});
  plot_loss(dir.path() / "loss.png", h, kLabels);
  plot_accuracy(dir.path() / "accuracy.png", h, kLabels);

  struct Case {
    const char* file;
    double first, last, flat;  // blue first and last, orange constant
  };
  for (const Case& c : {Case{"loss.png", 2.0, 0.5, 1.5}, Case{"accuracy.png", 50, 90, 80}}) {
    SCOPED_TRACE(c.file);
    const Picture p = load_png(dir.path() / c.file);
    const Frame f = find_frame(p);
    auto [x0, x1] = column_span(p, f, kTrainBlue);
    ASSERT_GT(x1 - x0, 100);
    // The end dots' outermost columns are at their centres' height.
    const double row_first = mean_row(p, f, kTrainBlue, x0, x0 + 3);
    const double row_last = mean_row(p, f, kTrainBlue, x1 - 2, x1 + 1);
    const double row_flat = mean_row(p, f, kTestOrange, f.left, f.right);
    ASSERT_FALSE(std::isnan(row_first) || std::isnan(row_last) || std::isnan(row_flat));
    const double expected = row_first + (c.flat - c.first) / (c.last - c.first) * (row_last - row_first);
    EXPECT_NEAR(row_flat, expected, 2.0);
    // Larger values are drawn higher (smaller rows).
    if (c.last < c.first)
      EXPECT_GT(row_last, row_first + 100);
    else
      EXPECT_LT(row_last, row_first - 100);
  }
}

TEST(ReportCurves, OneEpochStillShowsBothPoints) {
  TempDir dir;
  const auto h = history_of({0.9}, {0.7}, {0.6}, {0.65});
  plot_loss(dir.path() / "loss.png", h, kLabels);
  plot_accuracy(dir.path() / "accuracy.png", h, kLabels);
  for (const char* name : {"loss.png", "accuracy.png"}) {
    SCOPED_TRACE(name);
    const Picture p = load_png(dir.path() / name);
    EXPECT_EQ(p.width, kCurvePlotWidth);
    const Frame f = find_frame(p);
    // One dot per curve, in the middle of the frame, the larger value higher.
    auto [b0, b1] = column_span(p, f, kTrainBlue);
    auto [o0, o1] = column_span(p, f, kTestOrange);
    ASSERT_GE(b0, 0);
    ASSERT_GE(o0, 0);
    EXPECT_LT(b1 - b0, 20);
    EXPECT_NEAR((b0 + b1) / 2.0, (f.left + f.right) / 2.0, 3.0);
    const double blue = mean_row(p, f, kTrainBlue, f.left, f.right);
    const double orange = mean_row(p, f, kTestOrange, f.left, f.right);
    if (std::string(name) == "loss.png")
      EXPECT_LT(blue, orange - 50);  // train loss 0.9 above 0.7
    else
      EXPECT_GT(blue, orange + 10);  // train acc 60% below 65%
  }
}

TEST(ReportCurves, DivergedRunStillPlots) {
  TempDir dir;
  const auto h = history_of({2.0, NAN, INFINITY}, {2.1, 5.0, NAN}, {0.3, 0.1, 0.1}, {0.3, 0.1, 0.1});
  EXPECT_NO_THROW(plot_loss(dir.path() / "loss.png", h, kLabels));
  const Picture p = load_png(dir.path() / "loss.png");
  EXPECT_EQ(p.height, kCurvePlotHeight);
  EXPECT_GT(pixel_variance(p), 200.0);
}

TEST(ReportCurves, PlottingPrintsNothing) {
  TempDir dir;
  const auto h = history_of({1.0, 0.5}, {1.1, 0.6}, {0.6, 0.8}, {0.55, 0.75});
  const std::string out = captured_output([&] {
    plot_loss(dir.path() / "loss.png", h, kLabels);
    plot_accuracy(dir.path() / "accuracy.png", h, kLabels);
    plot_confusion(dir.path() / "confusion.png", evaluation_of(2, {5, 1, 2, 7}), {"cat", "dog"}, kLabels);
    // Odd numbers from a hand-edited metrics.csv: no PLplot warning either.
    plot_loss(dir.path() / "odd.png", history_of({1e300, 0.3, 0.3}, {-1e300, 0.3, NAN}, {-0.5, 1.5, 1}, {1, 1, 1}),
              kLabels);
    plot_accuracy(dir.path() / "same.png", history_of({0.3}, {0.3}, {1}, {1}), kLabels);
    plot_confusion(dir.path() / "zeros.png", evaluation_of(2, {0, 0, 0, 0}), {"a#b", "c"}, kLabels);
  });
  EXPECT_EQ(out, "");
  EXPECT_TRUE(fs::exists(dir.path() / "confusion.png"));
}

// PLplot keeps global state; each picture must start from a clean stream, so
// drawing the same data again after other plots gives the same pixels.
TEST(ReportCurves, StreamsDoNotLeakSettingsBetweenPlots) {
  TempDir dir;
  const auto h = history_of({1.0, 0.5, 0.4}, {1.1, 0.6, 0.5}, {0.6, 0.8, 0.85}, {0.55, 0.75, 0.8});
  plot_loss(dir.path() / "first.png", h, kLabels);
  plot_confusion(dir.path() / "confusion.png", evaluation_of(3, {5, 1, 0, 2, 7, 1, 0, 0, 9}), {}, kLabels);
  plot_accuracy(dir.path() / "accuracy.png", h, kLabels);
  plot_loss(dir.path() / "again.png", h, kLabels);
  EXPECT_EQ(load_png(dir.path() / "first.png").rgb, load_png(dir.path() / "again.png").rgb);
}

TEST(ReportCurves, BadInputThrowsAndKeepsTheOldFile) {
  TempDir dir;
  const fs::path loss = dir.path() / "loss.png";
  plot_loss(loss, history_of({1.0}, {1.0}, {0.5}, {0.5}), kLabels);
  const std::string before = read_file(loss);
  try {
    plot_loss(loss, {}, kLabels);
    FAIL() << "an empty history must throw";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("loss.png"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("no epochs"), std::string::npos) << e.what();
  }
  EXPECT_EQ(read_file(loss), before);
  // A folder that does not exist: an exception naming it, not PLplot ending the process.
  const fs::path missing = dir.path() / "no-such-folder" / "loss.png";
  try {
    plot_loss(missing, history_of({1.0}, {1.0}, {0.5}, {0.5}), kLabels);
    FAIL() << "a missing folder must throw";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("no-such-folder"), std::string::npos) << e.what();
  }
}

// ---- confusion matrix ----

// Cells are coloured by their share of the true class (the row).
TEST(ReportConfusion, CellColoursFollowRowShares) {
  TempDir dir;
  // Row 0: all correct (share 1); row 1: split 50/50; row 2: 7 of 7 correct.
  const Evaluation ev = evaluation_of(3, {10, 0, 0, 0, 5, 5, 0, 0, 7});
  plot_confusion(dir.path() / "confusion.png", ev, {"a", "b", "c"}, kLabels);
  const Picture p = load_png(dir.path() / "confusion.png");
  EXPECT_EQ(p.width, kConfusionPlotWidth);
  EXPECT_EQ(p.height, kConfusionPlotHeight);
  EXPECT_GT(pixel_variance(p), 200.0);
  const Frame f = find_cells(p);
  ASSERT_GE(f.left, 0);
  ASSERT_GT(f.right - f.left, 300);
  EXPECT_NEAR(f.right - f.left, f.bottom - f.top, 3);  // square cells
  const double cell = (f.right - f.left) / 3.0;
  // A point in the cell's upper-left quarter, away from the count text.
  auto colour = [&](int t, int pcol) {
    const uint8_t* px = p.at(static_cast<int>(f.left + (pcol + 0.2) * cell),
                             static_cast<int>(f.top + (t + 0.2) * cell));
    return Rgb{px[0], px[1], px[2]};
  };
  auto lightness = [](Rgb c) { return c.r + c.g + c.b; };
  auto same = [](Rgb a, Rgb b) { return std::abs(a.r - b.r) + std::abs(a.g - b.g) + std::abs(a.b - b.b) <= 6; };
  EXPECT_TRUE(same(colour(0, 0), colour(2, 2)));                      // both rows 100% correct, despite 10 vs 7 images
  EXPECT_TRUE(same(colour(1, 1), colour(1, 2)));                      // 5 and 5 of 10
  EXPECT_TRUE(same(colour(0, 1), colour(2, 0)));                      // both empty
  EXPECT_LT(lightness(colour(0, 0)), lightness(colour(1, 1)) - 100);  // 100% darker than 50%
  EXPECT_LT(lightness(colour(1, 1)), lightness(colour(0, 1)) - 100);  // 50% darker than 0%
  EXPECT_GT(lightness(colour(0, 1)), 3 * 235);                        // an empty cell is near white
}

TEST(ReportConfusion, ManyClassesAndNoNames) {
  TempDir dir;
  const int n = 47;  // EMNIST balanced
  std::vector<int64_t> m(static_cast<size_t>(n) * n, 1);
  for (int i = 0; i < n; ++i) m[static_cast<size_t>(i) * n + i] = 50;
  plot_confusion(dir.path() / "confusion.png", evaluation_of(n, m), {}, kLabels);
  const Picture p = load_png(dir.path() / "confusion.png");
  EXPECT_EQ(p.width, kConfusionPlotWidth);
  EXPECT_GT(pixel_variance(p), 200.0);
}

TEST(ReportConfusion, RejectsMatricesThatDoNotFit) {
  TempDir dir;
  const fs::path out = dir.path() / "confusion.png";
  EXPECT_THROW(plot_confusion(out, evaluation_of(2, {1, 2, 3}), {}, kLabels), std::invalid_argument);
  Evaluation ev = evaluation_of(2, {1, 2, 3, 4});
  EXPECT_THROW(plot_confusion(out, ev, {"only one"}, kLabels), std::invalid_argument);
  ev.classes = 0;
  ev.confusion.clear();
  EXPECT_THROW(plot_confusion(out, ev, {}, kLabels), std::invalid_argument);
  EXPECT_FALSE(fs::exists(out));
}

// ---- labels ----

TEST(ReportLabels, BuiltInArchitecturesAreNamedSpecsKept) {
  ModelInfo info = lenet_info();
  EXPECT_EQ(architecture_label(info), "lenet");
  info.arch = build_model("lenet-max", {1, 28, 28}, 10, nullptr).spec();
  EXPECT_EQ(architecture_label(info), "lenet-max");
  info.arch = "conv 4 k3, relu, flatten, linear 10";
  EXPECT_EQ(architecture_label(info), info.arch);
  EXPECT_EQ(plot_labels(lenet_info()).dataset, "fashion-mnist");
}

// ---- HTML report ----

// Every src= and href= of the page.
// (A plain scan: std::regex recurses per character and overflows the stack
// on a data URI of a few hundred kB.)
std::vector<std::string> references(const std::string& html) {
  std::vector<std::string> refs;
  for (const std::string attr : {" src=\"", " href=\""}) {
    for (size_t at = html.find(attr); at != std::string::npos; at = html.find(attr, at + 1)) {
      const size_t start = at + attr.size(), end = html.find('"', start);
      refs.push_back(html.substr(start, end - start));
    }
  }
  return refs;
}

std::string base64_decode(const std::string& s) {
  auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    return c == '+' ? 62 : c == '/' ? 63 : -1;
  };
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (char c : s) {
    const int v = value(c);
    if (v < 0) break;
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((acc >> bits) & 0xff);
    }
  }
  return out;
}

TEST(ReportHtml, EmbedsThePicturesAndLinksOnlyExistingFiles) {
  TempDir dir;
  const auto h = history_of({1.5, 0.8, 0.61237}, {1.4, 0.9, 0.70411}, {0.5, 0.7, 0.8}, {0.45, 0.65, 0.7525});
  ModelInfo info = lenet_info();
  info.epoch = 3;
  const Evaluation ev = evaluation_of(10, [] {
    std::vector<int64_t> m(100, 0);
    for (int i = 0; i < 10; ++i) m[i * 11] = 90 + i, m[i * 10 + (i + 1) % 10] = 10 - i;
    return m;
  }());
  RunReport report{info, describe_train_options(TrainOptions{}), h, &ev, ""};
  write_file_atomic(dir.path() / "metrics.csv", "epoch,train_loss\n");  // a file of the run to link
  write_run_pictures(dir.path(), report);

  const std::string html = read_file(dir.path() / "report.html");
  int embedded = 0, linked = 0;
  for (const std::string& ref : references(html)) {
    SCOPED_TRACE(ref.substr(0, 40));
    if (ref.rfind("data:image/png;base64,", 0) == 0) {
      // An embedded PNG must be byte for byte one of the run's pictures.
      const std::string bytes = base64_decode(ref.substr(22));
      bool found = false;
      for (const char* name : {"loss.png", "accuracy.png", "confusion.png"})
        found |= bytes == read_file(dir.path() / name);
      EXPECT_TRUE(found);
      ++embedded;
    } else {
      EXPECT_EQ(ref.find(':'), std::string::npos) << "only relative links to the run's files";
      EXPECT_TRUE(fs::is_regular_file(dir.path() / ref));
      ++linked;
    }
  }
  EXPECT_EQ(embedded, 3);
  EXPECT_EQ(linked, 1);  // metrics.csv; no checkpoint exists in this folder
  EXPECT_NE(html.find("href=\"metrics.csv\""), std::string::npos);
  EXPECT_EQ(html.find("best.safetensors"), std::string::npos);

  // The per-epoch table holds the history's numbers, the best epoch marked.
  EXPECT_NE(html.find("<tr class=\"best\" title=\"best checkpoint\"><td>3</td><td>0.6124</td><td>80.00%</td>"
                      "<td>0.7041</td><td>75.25%</td>"),
            std::string::npos);
  EXPECT_NE(html.find("<td>2</td><td>0.8000</td><td>70.00%</td><td>0.9000</td><td>65.00%</td>"), std::string::npos);
  // Settings and the confusion table.
  EXPECT_NE(html.find("<th>optimizer</th><td>adam</td>"), std::string::npos);
  EXPECT_NE(html.find("<th>parameters</th><td>61706</td>"), std::string::npos);  // the chapter's LeNet
  EXPECT_NE(html.find("<h1>lenet on fashion-mnist</h1>"), std::string::npos);
  EXPECT_NE(html.find("<th>Ankle boot</th><td>1</td>"), std::string::npos);  // row 9: 1 predicted as class 0
  // No gallery section without the gallery file.
  EXPECT_EQ(html.find("Predictions"), std::string::npos);
}

TEST(ReportHtml, ShowsTheGalleryWhenItExistsAndEscapesText) {
  TempDir dir;
  ModelInfo info = lenet_info();
  info.class_names[0] = "<script>&";
  info.dataset = "my \"data\"";
  const auto h = history_of({1.0}, {1.1}, {0.6}, {0.55});
  plot_loss(dir.path() / "predictions.png", h, kLabels);  // any PNG stands in for the gallery
  write_html_report(dir.path(), RunReport{info, {}, h, nullptr, "confusion matrix skipped: data not found"});
  const std::string html = read_file(dir.path() / "report.html");
  EXPECT_NE(html.find("Predictions on test images"), std::string::npos);
  const std::string gallery = base64_decode(
      html.substr(html.find("data:image/png;base64,", html.find("Predictions")) + 22));
  EXPECT_EQ(gallery, read_file(dir.path() / "predictions.png"));
  EXPECT_EQ(html.find("<script>"), std::string::npos);
  EXPECT_NE(html.find("&lt;script&gt;&amp;"), std::string::npos);
  EXPECT_NE(html.find("my &quot;data&quot;"), std::string::npos);
  EXPECT_NE(html.find("confusion matrix skipped: data not found"), std::string::npos);
  // Pictures that were never drawn are not referenced.
  EXPECT_EQ(html.find("Training curves"), std::string::npos);
  EXPECT_EQ(html.find("Confusion matrix"), std::string::npos);
}

// ---- `lenet train` pictures and `lenet plot` (the built CLI) ----

using test::CliResult;
using test::quoted;
using test::run_cli;

// A tiny IDX data set that a LeNet learns in a few epochs: class k is a bright
// 6 × 6 square at one of ten places, on faint noise.
void write_idx_set(const fs::path& dir, int train_count, int test_count) {
  fs::create_directories(dir);
  auto be32 = [](std::string& s, uint32_t v) {
    for (int shift = 24; shift >= 0; shift -= 8) s += static_cast<char>((v >> shift) & 0xff);
  };
  uint32_t noise = 12345;
  auto write = [&](const std::string& prefix, int count) {
    std::string images, labels;
    be32(images, 0x803), be32(images, count), be32(images, 28), be32(images, 28);
    be32(labels, 0x801), be32(labels, count);
    for (int i = 0; i < count; ++i) {
      const int k = i % 10, top = 2 + (k / 5) * 12, left = 1 + (k % 5) * 5;
      for (int y = 0; y < 28; ++y)
        for (int x = 0; x < 28; ++x) {
          noise = noise * 1664525u + 1013904223u;
          const bool on = y >= top && y < top + 6 && x >= left && x < left + 6;
          images += static_cast<char>(on ? 200 + (noise >> 28) : (noise >> 27));
        }
      labels += static_cast<char>(k);
    }
    write_file_atomic(dir / (prefix + "-images-idx3-ubyte"), images);
    write_file_atomic(dir / (prefix + "-labels-idx1-ubyte"), labels);
  };
  write("train", train_count);
  write("t10k", test_count);
}

constexpr const char* kCsvHeader = "epoch,train_loss,train_acc,test_loss,test_acc,seconds,images_per_s\n";

// One small training run shared by the CLI tests below.
class PlotCli : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    scratch_ = new TempDir;
    write_idx_set(data_dir(), 300, 120);
    const CliResult r = run_cli("train --data " + quoted(data_dir()) +
                                    " --arch lenet-relu --epochs 2 --batch-size 32"
                                    " --limit-test 100 --threads 2 --out " +
                                    quoted(run_dir()),
                                scratch_->path());
    // A failure here must fail every test: an ASSERT in SetUpTestSuite would
    // only mark them skipped, which CTest counts as a pass.
    if (r.code != 0)
      setup_error_ = "training the shared run failed: " + r.err;
    else if (!r.err.empty())
      setup_error_ = "training printed warnings: " + r.err;
  }
  void SetUp() override {
    if (!setup_error_.empty()) FAIL() << setup_error_;
  }
  static inline std::string setup_error_;
  static void TearDownTestSuite() {
    delete scratch_;
    scratch_ = nullptr;
  }
  static fs::path data_dir() { return scratch_->path() / "tiny-set"; }
  static fs::path run_dir() { return scratch_->path() / "run"; }
  // A copy of the run to change freely.
  fs::path copy_of_run(const std::string& name) {
    const fs::path dir = scratch_->path() / name;
    fs::remove_all(dir);
    fs::copy(run_dir(), dir);
    return dir;
  }
  static TempDir* scratch_;
};
TempDir* PlotCli::scratch_ = nullptr;

TEST_F(PlotCli, TrainingDrawsEveryPictureAndTheReport) {
  for (const char* name : {"loss.png", "accuracy.png", "confusion.png", "report.html", "report.json"})
    EXPECT_TRUE(fs::is_regular_file(run_dir() / name)) << name;
  const Picture loss = load_png(run_dir() / "loss.png");
  EXPECT_EQ(loss.width, kCurvePlotWidth);
  EXPECT_EQ(loss.height, kCurvePlotHeight);
  EXPECT_GT(pixel_variance(loss), 200.0);
  const Picture confusion = load_png(run_dir() / "confusion.png");
  EXPECT_EQ(confusion.width, kConfusionPlotWidth);
  EXPECT_GT(pixel_variance(confusion), 200.0);
  // The report shows both epochs of metrics.csv, the settings and the confusion
  // matrix of --limit-test 100 images.
  const std::string html = read_file(run_dir() / "report.html");
  const auto history = read_metrics_csv(run_dir() / "metrics.csv");
  ASSERT_EQ(history.size(), 2u);
  for (const auto& m : history) {
    char row[128];
    std::snprintf(row, sizeof row, "<td>%d</td><td>%.4f</td>", m.epoch, m.train_loss);
    EXPECT_NE(html.find(row), std::string::npos) << row;
  }
  EXPECT_NE(html.find("<h1>lenet-relu on tiny-set</h1>"), std::string::npos);
  EXPECT_NE(html.find("<th>batch size</th><td>32</td>"), std::string::npos);
  EXPECT_NE(html.find("100 images"), std::string::npos);
  for (const std::string& ref : references(html))
    if (ref.rfind("data:", 0) != 0) {
      EXPECT_TRUE(fs::is_regular_file(run_dir() / ref)) << ref;
    }
}

TEST_F(PlotCli, RedrawsEverythingFromMetricsAndTheBestCheckpoint) {
  const fs::path run = copy_of_run("redraw");
  for (const char* name : {"loss.png", "accuracy.png", "confusion.png", "report.html"}) fs::remove(run / name);
  const CliResult r = run_cli("plot " + quoted(run), scratch_->path());
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.err, "");
  EXPECT_NE(r.out.find("confusion.png"), std::string::npos) << r.out;
  for (const char* name : {"loss.png", "accuracy.png", "confusion.png", "report.html"})
    EXPECT_TRUE(fs::is_regular_file(run / name)) << name;
  // The same checkpoint on the same 100 test images (found through report.json)
  // gives the same confusion matrix as training drew.
  EXPECT_EQ(load_png(run / "confusion.png").rgb, load_png(run_dir() / "confusion.png").rgb);
}

// The curves are drawn from metrics.csv: replace it with numbers of our own
// and the picture and the table follow them.
TEST_F(PlotCli, CurvesComeFromMetricsCsv) {
  const fs::path run = copy_of_run("own-metrics");
  write_file_atomic(run / "metrics.csv", std::string(kCsvHeader) +
                                             "1,2.0,0.5,1.5,0.8,1.0,100\n"
                                             "2,1.25,0.7,1.5,0.8,1.0,100\n"
                                             "3,0.5,0.9,1.5,0.8,1.0,100\n");
  const CliResult r = run_cli("plot " + quoted(run), scratch_->path());
  ASSERT_EQ(r.code, 0) << r.err;
  const Picture p = load_png(run / "loss.png");
  const Frame f = find_frame(p);
  auto [x0, x1] = column_span(p, f, kTrainBlue);
  const double row_first = mean_row(p, f, kTrainBlue, x0, x0 + 3);
  const double row_last = mean_row(p, f, kTrainBlue, x1 - 2, x1 + 1);
  const double row_flat = mean_row(p, f, kTestOrange, f.left, f.right);
  EXPECT_NEAR(row_flat, row_first + (1.5 - 2.0) / (0.5 - 2.0) * (row_last - row_first), 2.0);
  const std::string html = read_file(run / "report.html");
  EXPECT_NE(html.find("<td>3</td><td>0.5000</td><td>90.00%</td><td>1.5000</td><td>80.00%</td>"), std::string::npos);
}

TEST_F(PlotCli, MissingDataSkipsOnlyTheConfusionMatrix) {
  const fs::path run = copy_of_run("no-data");
  const std::string confusion_before = read_file(run / "confusion.png");
  fs::remove(run / "loss.png");
  const CliResult r = run_cli("plot " + quoted(run) + " --data " + quoted(scratch_->path() / "gone"), scratch_->path());
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("confusion matrix not redrawn"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("gone"), std::string::npos) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_TRUE(fs::is_regular_file(run / "loss.png"));
  EXPECT_EQ(read_file(run / "confusion.png"), confusion_before);
  EXPECT_NE(read_file(run / "report.html").find("confusion matrix not redrawn"), std::string::npos);
}

// Broken input: one line on stderr naming the file, exit 1, nothing redrawn.
TEST_F(PlotCli, BrokenOrEmptyMetricsCsvIsOneClearError) {
  struct Case {
    const char* name;
    std::string csv;  // "": a zero-byte file
    const char* expected;
  };
  const Case cases[] = {
      {"empty", "", "metrics.csv: empty"},
      {"header-only", kCsvHeader, "metrics.csv: no epochs recorded"},
      {"not-a-number", std::string(kCsvHeader) + "1,0.5,0.8,0.6,abc,1,100\n",
       "column 'test_acc' is 'abc', not a number"},
      {"short-row", std::string(kCsvHeader) + "1,0.5,0.8\n", "line 2: 3 fields, expected 7"},
      {"no-header", "1,0.5,0.8,0.6,0.7,1,100\n", "the header lacks the column"},
      {"epochs-backwards", std::string(kCsvHeader) + "2,1,0.5,1,0.5,1,1\n1,1,0.5,1,0.5,1,1\n",
       "epoch 1 follows epoch 2"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    const fs::path run = copy_of_run(c.name);
    if (c.csv.empty()) {
      std::ofstream(run / "metrics.csv", std::ios::trunc).flush();  // zero bytes
    } else {
      write_file_atomic(run / "metrics.csv", c.csv);
    }
    const std::string report_before = read_file(run / "report.html");
    const CliResult r = run_cli("plot " + quoted(run), scratch_->path());
    EXPECT_EQ(r.code, 1);
    EXPECT_EQ(r.out, "");
    EXPECT_EQ(r.err.rfind("lenet: error: ", 0), 0u) << r.err;
    EXPECT_NE(r.err.find((run / "metrics.csv").string()), std::string::npos) << r.err;
    EXPECT_NE(r.err.find(c.expected), std::string::npos) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_EQ(read_file(run / "report.html"), report_before);
  }
}

// Without PLplot's drivers, PLplot itself would print and exit(1) (or ask for
// a device on stdin); we get one error line instead, and training goes on
// with a single warning: the checkpoints matter more than their pictures.
TEST_F(PlotCli, MissingPlplotDriversAreOneErrorLine) {
  const fs::path no_drivers = scratch_->path() / "no-drivers-here";
  fs::create_directories(no_drivers);
  const std::string env = "PLPLOT_DRV_DIR=" + quoted(no_drivers);
  const fs::path run = copy_of_run("no-drivers");
  CliResult r = run_cli("plot " + quoted(run), scratch_->path(), env);
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err.rfind("lenet: error: PLplot", 0), 0u) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;

  const fs::path train_run = scratch_->path() / "no-drivers-train";
  r = run_cli("train --data " + quoted(data_dir()) +
                  " --arch lenet-relu --epochs 2 --limit-train 64 --limit-test 32"
                  " --threads 2 --out " +
                  quoted(train_run),
              scratch_->path(), env);
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.err.rfind("lenet: warning: could not draw the training pictures: PLplot", 0), 0u) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_TRUE(fs::is_regular_file(train_run / "best.safetensors"));
  EXPECT_EQ(read_metrics_csv(train_run / "metrics.csv").size(), 2u);
}

TEST_F(PlotCli, NotARunFolder) {
  const fs::path empty = scratch_->path() / "empty-folder";
  fs::create_directories(empty);
  CliResult r = run_cli("plot " + quoted(empty), scratch_->path());
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("metrics.csv not found"), std::string::npos) << r.err;
  r = run_cli("plot " + quoted(scratch_->path() / "no-such-run"), scratch_->path());
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("no-such-run does not exist"), std::string::npos) << r.err;
  // A damaged checkpoint is an error too, naming it: the report would be wrong without it.
  const fs::path run = copy_of_run("bad-checkpoint");
  write_file_atomic(run / "best.safetensors", "garbage");
  r = run_cli("plot " + quoted(run), scratch_->path());
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("best.safetensors"), std::string::npos) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
}

}  // namespace
}  // namespace lenet

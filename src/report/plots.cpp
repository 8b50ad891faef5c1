// Loss and accuracy curves and the confusion matrix, drawn with PLplot's cairo
// PNG driver ("pngcairo": anti-aliased lines and system fonts).
//
// PLplot keeps global state: a table of streams, each with its own device and
// options, and "the current stream". Every picture here makes a fresh stream,
// draws, ends it and restores the previous current stream, all under one
// mutex, so plots never see each other's settings and two threads never draw
// at once. PLplot ends the process on some errors (plexit), so everything it
// could choke on — the output file, the ranges, the sizes — is checked first.
#include <plplot.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include "lenet/fileio.h"
#include "lenet/report.h"

namespace lenet {

namespace fs = std::filesystem;

namespace {

std::mutex plplot_mutex;

struct Rgb {
  int r, g, b;
};

// Colour map 0 slots used by every picture (PLplot draws with indices).
enum Colour : PLINT { kBackground = 0, kInk = 1, kGrid = 2, kTrain = 3, kTest = 4, kMuted = 5, kWhite = 6, kVal = 7 };

// matplotlib's default cycle (C0 blue, C1 orange), which d2l's plots use too.
constexpr Rgb kTrainRgb{31, 119, 180};
constexpr Rgb kTestRgb{255, 127, 14};
constexpr Rgb kValRgb{44, 160, 44};

// PLplot reads '#' as the start of an escape sequence; "##" is a literal '#'.
std::string pl_text(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    out += c;
    if (c == '#') out += '#';
  }
  return out;
}

std::string format(const char* fmt, double v) {
  if (!std::isfinite(v)) return std::isnan(v) ? "nan" : (v > 0 ? "inf" : "-inf");
  char buf[64];
  std::snprintf(buf, sizeof buf, fmt, v);
  return buf;
}

// PLplot reports errors on stderr and, for fatal ones, ends the process. A
// stream's recoverable errors (plabort) go into its error buffer instead
// (plsError) and are thrown when the picture is done; a fatal one (plexit)
// throws from the exit handler, unwinding through PLplot's C frames (built
// with unwind tables on Debian) — better than a training run that vanishes
// with exit(1). Warnings (plwarn) cannot be redirected: the callers keep to
// valid ranges so that there are none.
int on_plplot_exit(PLCHAR_VECTOR message) {
  throw std::runtime_error(std::string("PLplot: ") + (message ? message : "fatal error"));
}
void install_plplot_exit_handler() {
  static const bool installed = [] {
    plsexit(on_plplot_exit);
    return true;
  }();
  (void)installed;
}

// Without the driver plinit would ask for a device on stdin, and a training
// run would hang; look it up first (once: the list does not change).
void require_pngcairo() {
  static const bool available = [] {
    constexpr int kMaxDevices = 64;
    const char* menu_storage[kMaxDevices];
    const char* name_storage[kMaxDevices];
    const char** menus = menu_storage;  // PLplot fills the arrays these point to
    const char** names = name_storage;
    int count = kMaxDevices;
    plgFileDevs(&menus, &names, &count);
    for (int i = 0; i < count; ++i)
      if (std::string(names[i]) == "pngcairo") return true;
    return false;
  }();
  if (!available)
    throw std::runtime_error(
        "PLplot's cairo PNG driver (pngcairo) is not installed; install the Debian package "
        "plplot-driver-cairo");
}

// One PLplot stream that renders a PNG of w × h pixels into `file`. The
// destructor ends the stream (which writes the file) and makes the previous
// stream current again.
class PngStream {
 public:
  PngStream(const fs::path& file, int width, int height) {
    // PLplot exits the process when it cannot open its output file, so prove
    // that the file can be created before handing PLplot its name.
    {
      std::ofstream probe(file, std::ios::binary | std::ios::trunc);
      if (!probe) throw std::runtime_error("cannot create " + file.string() + " for a plot");
    }
    install_plplot_exit_handler();
    require_pngcairo();
    plgstrm(&previous_);
    plmkstrm(&stream_);
    if (stream_ < 0) {
      plsstrm(previous_);
      throw std::runtime_error("PLplot has no free plot stream left for " + file.string());
    }
    plsError(&error_code_, error_message_);
    plsdev("pngcairo");
    plsfnam(file.c_str());
    plspage(0, 0, width, height, 0, 0);
    plscolbg(255, 255, 255);
    plscol0(kInk, 0, 0, 0);
    plscol0(kGrid, 225, 225, 225);
    plscol0(kTrain, kTrainRgb.r, kTrainRgb.g, kTrainRgb.b);
    plscol0(kTest, kTestRgb.r, kTestRgb.g, kTestRgb.b);
    plscol0(kMuted, 90, 90, 90);
    plscol0(kWhite, 255, 255, 255);
    plscol0(kVal, kValRgb.r, kValRgb.g, kValRgb.b);
    plinit();
    pladv(0);
  }
  ~PngStream() {
    if (!finished_) end();
  }
  PngStream(const PngStream&) = delete;
  PngStream& operator=(const PngStream&) = delete;

  // Ends the stream, which writes the file; throws what PLplot reported.
  void finish(const fs::path& destination) {
    end();
    if (error_code_ != 0)
      throw std::runtime_error("PLplot could not draw " + destination.string() + ": " + error_message_);
  }

 private:
  void end() {
    finished_ = true;
    plend1();
    plsstrm(previous_);
  }
  PLINT previous_ = 0, stream_ = -1;
  PLINT error_code_ = 0;
  char error_message_[1024] = {};  // PLplot's messages are one short line
  bool finished_ = false;
};

// Text sizes. PLplot draws text but does not measure it, so widths are
// estimated: DejaVu Sans (cairo's default "sans") averages about 0.68
// character heights per glyph on class names and titles (measured at 72 dpi).
constexpr double kGlyphWidth = 0.68;
constexpr size_t kMaxClassNameChars = 20;  // longer names end in "…"

size_t utf8_length(const std::string& s) {
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}
// The first `max_chars` characters (not bytes) of s, with "…" when cut.
std::string shorten(const std::string& s, size_t max_chars) {
  if (utf8_length(s) <= max_chars) return s;
  size_t kept = 0, i = 0;
  for (; i < s.size(); ++i) {
    if ((static_cast<unsigned char>(s[i]) & 0xC0) != 0x80 && kept++ == max_chars - 1) break;
  }
  return s.substr(0, i) + "\u2026";
}
double text_width(const std::string& s, double char_h_mm) {
  return static_cast<double>(utf8_length(s)) * kGlyphWidth * char_h_mm;
}

struct TextMetrics {
  double char_h;          // mm, at scale 1
  double page_w, page_h;  // mm
};
TextMetrics text_metrics() {
  PLFLT def, ht, x0, x1, y0, y1;
  plgchr(&def, &ht);
  plgspa(&x0, &x1, &y0, &y1);
  return {def, x1 - x0, y1 - y0};
}

// A title centred above the current viewport, `disp` character heights (at
// `max_scale`) above it: made smaller when wider than the page allows around
// that centre, and shortened when even that is not enough.
void draw_title(const std::string& text, double disp, double max_scale, const TextMetrics& m) {
  constexpr double kMinScale = 0.75;
  PLFLT vx0, vx1, vy0, vy1;
  plgvpd(&vx0, &vx1, &vy0, &vy1);
  const double centre = (vx0 + vx1) / 2;
  const double width_mm = 2 * std::min(centre, 1 - centre) * m.page_w * 0.97;
  double scale = std::min(max_scale, width_mm / std::max(1.0, text_width(text, m.char_h)));
  std::string shown = text;
  if (scale < kMinScale) {
    scale = kMinScale;
    shown = shorten(text, static_cast<size_t>(width_mm / (kGlyphWidth * m.char_h * scale)));
  }
  plschr(0, scale);
  plmtex("t", disp * max_scale / scale, 0.5, 0.5, pl_text(shown).c_str());
  plschr(0, 1.0);
}

// The largest "nice" step (1, 2 or 5 times a power of ten) at most `raw`.
double nice_step(double raw) {
  if (!(raw > 0)) return 1;
  const double p = std::pow(10.0, std::floor(std::log10(raw)));
  const double m = raw / p;
  return (m >= 5 ? 5 : m >= 2 ? 2 : 1) * p;
}

struct Series {
  std::string name;
  std::vector<double> y;
  PLINT colour;
  PLINT line_style;  // 1 solid, 2 dashed
  std::string last_label;
};

struct CurvePlot {
  std::string title, ylabel;
  std::vector<double> epochs;
  std::vector<Series> series;
  double floor = -INFINITY, ceiling = INFINITY;  // the quantity's natural bounds
};

// A filled dot of `radius_mm` at each point (PLplot's own symbols are
// Hershey glyphs that look thin next to cairo's anti-aliased lines).
void draw_dots(const std::vector<double>& xs, const std::vector<double>& ys, double radius_mm) {
  PLFLT vx0, vx1, vy0, vy1, wx0, wx1, wy0, wy1, px0, px1, py0, py1;
  plgvpd(&vx0, &vx1, &vy0, &vy1);
  plgvpw(&wx0, &wx1, &wy0, &wy1);
  plgspa(&px0, &px1, &py0, &py1);
  const double rx = radius_mm / ((vx1 - vx0) * (px1 - px0)) * (wx1 - wx0);
  const double ry = radius_mm / ((vy1 - vy0) * (py1 - py0)) * (wy1 - wy0);
  constexpr int kSides = 16;
  PLFLT cx[kSides], cy[kSides];
  for (size_t i = 0; i < xs.size(); ++i) {
    if (!std::isfinite(ys[i])) continue;
    for (int k = 0; k < kSides; ++k) {
      const double a = 2 * M_PI * k / kSides;
      cx[k] = xs[i] + rx * std::cos(a);
      cy[k] = ys[i] + ry * std::sin(a);
    }
    plfill(kSides, cx, cy);
  }
}

// Draws the finite stretches of a curve (a NaN breaks the line).
void draw_line(const std::vector<double>& xs, const std::vector<double>& ys) {
  std::vector<PLFLT> px, py;
  auto flush = [&] {
    if (px.size() >= 2) plline(static_cast<PLINT>(px.size()), px.data(), py.data());
    px.clear();
    py.clear();
  };
  for (size_t i = 0; i < xs.size(); ++i) {
    if (std::isfinite(ys[i])) {
      px.push_back(xs[i]);
      py.push_back(ys[i]);
    } else {
      flush();
    }
  }
  flush();
}

void draw_curves(const fs::path& tmp, const fs::path& destination, const CurvePlot& plot) {
  const auto& xs = plot.epochs;
  // x range: the epochs, with a little room so end markers are not cut.
  double x0 = *std::min_element(xs.begin(), xs.end()), x1 = *std::max_element(xs.begin(), xs.end());
  const double x_span = x1 - x0;
  if (x1 - x0 < 1) {
    x0 -= 0.5;
    x1 += 0.5;
  } else {
    const double pad = 0.03 * (x1 - x0);
    x0 -= pad;
    x1 += pad;
  }
  // y range: every finite value, padded, kept inside the natural bounds.
  double lo = INFINITY, hi = -INFINITY;
  for (auto& s : plot.series)
    for (double v : s.y)
      if (std::isfinite(v)) lo = std::min(lo, v), hi = std::max(hi, v);
  if (!std::isfinite(lo)) lo = 0, hi = 1;  // nothing finite: an empty frame with the labels
  double pad = 0.08 * (hi - lo);
  if (pad < 1e-9) pad = std::max(0.05 * std::abs(hi), 0.01);
  double y0 = std::max(lo - pad, plot.floor), y1 = std::min(hi + pad, plot.ceiling);
  if (y1 <= y0) y1 = y0 + 2 * pad;
  if (!std::isfinite(y1 - y0) || !(y1 > y0)) y0 = 0, y1 = 1;  // absurd values: keep PLplot's window valid

  // x ticks on whole epochs: 1, 2 or 5 times a power of ten, about 8 of them.
  const double xstep = std::max(1.0, nice_step(x_span / 8.0));
  const int xsub = xstep == 1 ? 1 : (static_cast<int>(xstep) % 5 == 0 && xstep <= 5 ? 5 : 2);
  const char* xopt = xstep == 1 ? "bcnt" : "bcnst";

  PngStream png(tmp, kCurvePlotWidth, kCurvePlotHeight);
  plschr(0, 1.0);
  plvpor(0.12, 0.86, 0.12, 0.82);
  plwind(x0, x1, y0, y1);
  plwidth(1.0);
  plcol0(kGrid);
  plbox("g", xstep, xsub, "g", 0, 0);
  plcol0(kInk);
  plbox(xopt, xstep, xsub, "bcnstv", 0, 0);
  plmtex("b", 3.2, 0.5, 0.5, "epoch");
  plmtex("l", 5.4, 0.5, 0.5, pl_text(plot.ylabel).c_str());
  draw_title(plot.title, 3.4, 1.25, text_metrics());

  const bool dots = xs.size() <= 40;
  for (auto& s : plot.series) {
    plcol0(s.colour);
    plwidth(2.2);
    pllsty(s.line_style);
    draw_line(xs, s.y);
    pllsty(1);
    if (dots || xs.size() == 1) draw_dots(xs, s.y, xs.size() == 1 ? 1.2 : 0.7);
  }
  plwidth(1.0);

  // Each curve's last value beside its end, in its colour, nudged apart when
  // two curves end at nearly the same height.
  PLFLT def_ht, ht, vy0, vy1, vx0, vx1, px0, px1, py0, py1;
  plgchr(&def_ht, &ht);
  plgvpd(&vx0, &vx1, &vy0, &vy1);
  plgspa(&px0, &px1, &py0, &py1);
  const double min_gap = 1.3 * ht / ((vy1 - vy0) * (py1 - py0));  // in viewport fractions
  struct Tag {
    double pos;
    const Series* s;
  };
  std::vector<Tag> tags;
  for (auto& s : plot.series) {
    const double v = s.y.back();
    const double pos = std::isfinite(v) ? std::clamp((v - y0) / (y1 - y0), 0.0, 1.0) : 1.0;
    tags.push_back({pos, &s});
  }
  std::sort(tags.begin(), tags.end(), [](const Tag& a, const Tag& b) { return a.pos < b.pos; });
  for (size_t i = 1; i < tags.size(); ++i) tags[i].pos = std::max(tags[i].pos, tags[i - 1].pos + min_gap);
  if (!tags.empty() && tags.back().pos > 1.0) {
    const double shift = tags.back().pos - 1.0;
    for (auto& t : tags) t.pos -= shift;
  }
  for (auto& t : tags) {
    plcol0(t.s->colour);
    plmtex("rv", 0.6, t.pos, 0.0, pl_text(t.s->last_label).c_str());
  }

  // The legend sits above the frame, so it never hides a curve.
  const PLINT n = static_cast<PLINT>(plot.series.size());
  std::vector<PLINT> opts(n, PL_LEGEND_LINE), colours(n), styles(n), text_colours(n, kInk);
  std::vector<PLFLT> widths(n, 2.2);
  std::vector<std::string> names(n);
  std::vector<const char*> texts(n);
  for (PLINT i = 0; i < n; ++i) {
    colours[i] = plot.series[i].colour;
    styles[i] = plot.series[i].line_style;
    names[i] = pl_text(plot.series[i].name);
    texts[i] = names[i].c_str();
  }
  PLFLT legend_w, legend_h;
  pllegend(&legend_w, &legend_h, PL_LEGEND_ROW_MAJOR, PL_POSITION_TOP | PL_POSITION_OUTSIDE | PL_POSITION_VIEWPORT, 0.0,
           0.01, 0.07, kBackground, kInk, 1, 1, n, n, opts.data(), 1.0, 1.0, 2.0, 0.0, text_colours.data(),
           texts.data(), nullptr, nullptr, nullptr, nullptr, colours.data(), styles.data(), widths.data(), nullptr,
           nullptr, nullptr, nullptr);
  png.finish(destination);
}

// With a validation split the test set is scored only now and then: label its latest score.
double last_finite(const std::vector<double>& y) {
  for (auto it = y.rbegin(); it != y.rend(); ++it)
    if (std::isfinite(*it)) return *it;
  return y.empty() ? NAN : y.back();
}

bool has_validation(const std::vector<EpochMetrics>& history) {
  return std::any_of(history.begin(), history.end(), [](const EpochMetrics& m) { return !std::isnan(m.val_loss); });
}

void check_history(const std::vector<EpochMetrics>& history, const fs::path& path) {
  if (history.empty()) throw std::invalid_argument("cannot plot " + path.string() + ": no epochs in the history");
}

std::string run_title(const std::string& what, const PlotLabels& labels) {
  std::string t = what;
  if (!labels.architecture.empty() || !labels.dataset.empty()) {
    t += ": " + (labels.architecture.empty() ? std::string("model") : labels.architecture);
    if (!labels.dataset.empty()) t += " on " + labels.dataset;
  }
  return t;
}

// matplotlib's "Blues", a light-to-dark ramp that reads well in grey too.
void set_blues_colour_map() {
  static const Rgb stops[] = {{247, 251, 255}, {222, 235, 247}, {198, 219, 239}, {158, 202, 225}, {107, 174, 214},
                              {66, 146, 198},  {33, 113, 181},  {8, 81, 156},    {8, 48, 107}};
  constexpr int kSteps = 256, kStops = 9;
  PLINT r[kSteps], g[kSteps], b[kSteps];
  for (int i = 0; i < kSteps; ++i) {
    const double t = static_cast<double>(i) / (kSteps - 1) * (kStops - 1);
    const int k = std::min(static_cast<int>(t), kStops - 2);
    const double f = t - k;
    r[i] = static_cast<PLINT>(std::lround(stops[k].r + f * (stops[k + 1].r - stops[k].r)));
    g[i] = static_cast<PLINT>(std::lround(stops[k].g + f * (stops[k + 1].g - stops[k].g)));
    b[i] = static_cast<PLINT>(std::lround(stops[k].b + f * (stops[k + 1].b - stops[k].b)));
  }
  plscmap1(r, g, b, kSteps);
}

void fill_rect(double x0, double y0, double x1, double y1) {
  PLFLT x[4] = {x0, x1, x1, x0}, y[4] = {y0, y0, y1, y1};
  plfill(4, x, y);
}

void draw_confusion(const fs::path& tmp, const fs::path& destination, const Evaluation& eval,
                    const std::vector<std::string>& names, const std::string& title, const std::string& subtitle) {
  const int n = eval.classes;
  std::vector<int64_t> row_total(n, 0);
  int64_t largest = 0;
  for (int t = 0; t < n; ++t)
    for (int p = 0; p < n; ++p) {
      row_total[t] += eval.confusion[static_cast<size_t>(t) * n + p];
      largest = std::max(largest, eval.confusion[static_cast<size_t>(t) * n + p]);
    }
  std::vector<std::string> labels(n);
  for (int i = 0; i < n; ++i)
    labels[i] = shorten(i < static_cast<int>(names.size()) ? names[i] : std::to_string(i), kMaxClassNameChars);

  PngStream png(tmp, kConfusionPlotWidth, kConfusionPlotHeight);
  set_blues_colour_map();
  plschr(0, 1.0);
  const TextMetrics m = text_metrics();

  // Layout from the text it must hold: class names beside and below the
  // matrix, sized so a name is no taller than its row; titles above; the
  // colour bar to the right. Past about 60 classes the names no longer fit
  // and numbered ticks stand in; counts go once they would be unreadable.
  const double provisional_cell = 0.6 * m.page_w / n;
  double name_scale = std::min(0.9, 0.85 * provisional_cell / m.char_h);
  if (name_scale < 0.35) name_scale = 0;
  double name_mm = 0;
  for (auto& l : labels) name_mm = std::max(name_mm, text_width(l, m.char_h * name_scale));
  if (name_scale == 0) name_mm = text_width(std::to_string(n), m.char_h * 0.8);
  const double margin_mm = name_mm + 3.2 * m.char_h;  // names, gap and the axis label
  plvpas(0.02 + margin_mm / m.page_w, 0.84, 0.02 + margin_mm / m.page_h, 1.0 - 4.4 * m.char_h / m.page_h, 1.0);
  PLFLT vx0, vx1, vy0, vy1;
  plgvpd(&vx0, &vx1, &vy0, &vy1);
  const double cell_mm = (vx1 - vx0) * m.page_w / n;
  const double digits = static_cast<double>(std::to_string(largest).size());
  double count_scale = std::min({0.95, 0.7 * cell_mm / (digits * kGlyphWidth * m.char_h), 0.55 * cell_mm / m.char_h});
  if (count_scale < 0.4) count_scale = 0;

  plwind(0, n, 0, n);
  // Row t (true class) is drawn top to bottom, column p (predicted) left to right.
  for (int t = 0; t < n; ++t) {
    for (int p = 0; p < n; ++p) {
      const int64_t count = eval.confusion[static_cast<size_t>(t) * n + p];
      const double share = row_total[t] > 0 ? static_cast<double>(count) / row_total[t] : 0.0;
      plcol1(share);
      fill_rect(p, n - t - 1, p + 1, n - t);
      if (count_scale > 0) {
        plschr(0, count_scale);
        plcol0(share > 0.5 ? kWhite : kInk);
        const std::string text = std::to_string(count);
        plptex(p + 0.5, n - t - 0.5, 1, 0, 0.5, text.c_str());
      }
    }
  }
  plschr(0, 1.0);
  plcol0(kInk);
  plbox("bc", 0, 0, "bc", 0, 0);
  if (name_scale > 0) {
    plschr(0, name_scale);
    for (int i = 0; i < n; ++i) {
      const std::string name = pl_text(labels[i]);
      const double pos = (i + 0.5) / n;
      plmtex("lv", 0.6, 1.0 - pos, 1.0, name.c_str());
      plmtex("bv", 0.6, pos, 1.0, name.c_str());
    }
    plschr(0, 1.0);
  } else {
    // Class numbers from 0 at the top-left corner, as the rows and columns count.
    plschr(0, 0.8);
    plwind(-0.5, n - 0.5, n - 0.5, -0.5);
    plbox("bnt", 0, 0, "bntv", 0, 0);
    plwind(0, n, 0, n);
    plschr(0, 1.0);
  }
  const double label_disp = (name_mm + 0.6 * m.char_h * std::max(name_scale, 0.8)) / m.char_h + 1.3;
  plmtex("l", label_disp, 0.5, 0.5, "true class");
  plmtex("b", label_disp, 0.5, 0.5, "predicted class");
  draw_title(title, 2.6, 1.15, m);
  plcol0(kMuted);
  draw_title(subtitle, 1.2, 0.9, m);
  plcol0(kInk);
  plschr(0, 1.0);

  // Colour bar: the share of the true class that a cell holds.
  plvpor(vx1 + 0.03, vx1 + 0.055, vy0, vy1);
  plwind(0, 1, 0, 100);
  constexpr int kStrips = 100;
  for (int i = 0; i < kStrips; ++i) {
    plcol1((i + 0.5) / kStrips);
    // Each strip overlaps the next a little so anti-aliasing leaves no seams.
    fill_rect(0, 100.0 * i / kStrips, 1, std::min(100.0, 100.0 * (i + 1.5) / kStrips));
  }
  plcol0(kInk);
  plschr(0, 0.8);
  plbox("bc", 0, 0, "bcmtv", 25, 0);
  plmtex("r", 4.6, 0.5, 0.5, "% of true class");
  plschr(0, 1.0);
  png.finish(destination);
}

// cairo writes the PNG through stdio and PLplot drops its errors, so a full
// disk or a file-size limit would leave a cut-off PNG to be renamed into
// place. A complete PNG ends with its IEND chunk; check before committing.
void require_complete_png(const fs::path& tmp, const fs::path& path) {
  static const char iend[12] = {0, 0, 0, 0, 'I', 'E', 'N', 'D', '\xAE', '\x42', '\x60', '\x82'};
  std::error_code ec;
  const auto size = fs::file_size(tmp, ec);
  char tail[12] = {};
  std::ifstream in(tmp, std::ios::binary);
  if (!ec && size >= sizeof tail) {
    in.seekg(static_cast<std::streamoff>(size - sizeof tail));
    in.read(tail, sizeof tail);
  }
  if (ec || size < sizeof tail || !in || !std::equal(tail, tail + sizeof tail, iend))
    throw std::runtime_error("cannot write " + path.string() + ": the PNG came out incomplete (" +
                             (ec ? std::string("unreadable") : std::to_string(size) + " bytes") +
                             "; disk full or a file size limit?)");
}

}  // namespace

std::string architecture_label(const ModelInfo& info) {
  if (info.input_shape.size() == 3 && !info.class_names.empty()) {
    for (const auto& name : builtin_architectures()) {
      try {
        Sequential candidate = build_model(name, info.input_shape, static_cast<int>(info.class_names.size()), nullptr);
        if (candidate.spec() == info.arch) return name;
      } catch (const std::exception&) {
        // A built-in that does not fit this input shape cannot be the one.
      }
    }
  }
  return info.arch.empty() ? std::string("model") : info.arch;
}

PlotLabels plot_labels(const ModelInfo& info) { return {architecture_label(info), info.dataset}; }

void plot_loss(const fs::path& path, const std::vector<EpochMetrics>& history, const PlotLabels& labels) {
  check_history(history, path);
  CurvePlot plot;
  plot.title = run_title("Loss", labels);
  plot.ylabel = "cross-entropy loss";
  plot.floor = 0;
  Series train{"train loss", {}, kTrain, 1, {}}, test{"test loss", {}, kTest, 2, {}};
  for (auto& m : history) {
    plot.epochs.push_back(m.epoch);
    train.y.push_back(m.train_loss);
    test.y.push_back(m.test_loss);
  }
  train.last_label = format("%.3f", train.y.back());
  test.last_label = format("%.3f", last_finite(test.y));
  plot.series = {train, test};
  if (has_validation(history)) {
    Series val{"validation loss", {}, kVal, 3, {}};
    for (auto& m : history) val.y.push_back(m.val_loss);
    val.last_label = format("%.3f", val.y.back());
    plot.series.push_back(val);
  }
  std::lock_guard lock(plplot_mutex);
  write_file_atomic(path, [&](const fs::path& tmp) {
    draw_curves(tmp, path, plot);
    require_complete_png(tmp, path);
  });
}

void plot_accuracy(const fs::path& path, const std::vector<EpochMetrics>& history, const PlotLabels& labels) {
  check_history(history, path);
  CurvePlot plot;
  plot.title = run_title("Accuracy", labels);
  plot.ylabel = "accuracy (%)";
  plot.floor = 0;
  plot.ceiling = 100;
  Series train{"train accuracy", {}, kTrain, 1, {}}, test{"test accuracy", {}, kTest, 2, {}};
  for (auto& m : history) {
    plot.epochs.push_back(m.epoch);
    train.y.push_back(100.0 * m.train_acc);
    test.y.push_back(100.0 * m.test_acc);
  }
  train.last_label = format("%.1f%%", train.y.back());
  test.last_label = format("%.1f%%", last_finite(test.y));
  plot.series = {train, test};
  if (has_validation(history)) {
    Series val{"validation accuracy", {}, kVal, 3, {}};
    for (auto& m : history) val.y.push_back(100.0 * m.val_acc);
    val.last_label = format("%.1f%%", val.y.back());
    plot.series.push_back(val);
  }
  std::lock_guard lock(plplot_mutex);
  write_file_atomic(path, [&](const fs::path& tmp) {
    draw_curves(tmp, path, plot);
    require_complete_png(tmp, path);
  });
}

void plot_confusion(const fs::path& path, const Evaluation& eval, const std::vector<std::string>& class_names,
                    const PlotLabels& labels) {
  const int n = eval.classes;
  if (n <= 0)
    throw std::invalid_argument("cannot plot " + path.string() + ": the evaluation has " + std::to_string(n) +
                                " classes");
  if (eval.confusion.size() != static_cast<size_t>(n) * n)
    throw std::invalid_argument("cannot plot " + path.string() + ": the confusion matrix has " +
                                std::to_string(eval.confusion.size()) + " cells, expected " + std::to_string(n) +
                                " x " + std::to_string(n));
  if (!class_names.empty() && class_names.size() != static_cast<size_t>(n))
    throw std::invalid_argument("cannot plot " + path.string() + ": " + std::to_string(class_names.size()) +
                                " class names for " + std::to_string(n) + " classes");
  for (int64_t c : eval.confusion)
    if (c < 0) throw std::invalid_argument("cannot plot " + path.string() + ": negative count in the confusion matrix");
  int64_t total = 0, correct = 0;
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < n; ++j) {
      total += eval.confusion[static_cast<size_t>(i) * n + j];
      if (i == j) correct += eval.confusion[static_cast<size_t>(i) * n + j];
    }
  const std::string title = run_title("Confusion matrix", labels);
  const std::string subtitle = "test set: " + std::to_string(total) + " images, " +
                               format("%.1f%%", total > 0
                                                    ? 100.0 * static_cast<double>(correct) / static_cast<double>(total)
                                                    : 0.0) +
                               " correct";
  std::lock_guard lock(plplot_mutex);
  write_file_atomic(path, [&](const fs::path& tmp) {
    draw_confusion(tmp, path, eval, class_names, title, subtitle);
    require_complete_png(tmp, path);
  });
}

}  // namespace lenet

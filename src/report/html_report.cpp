// report.html: one page per run with its settings, per-epoch numbers and pictures.
//
// The PNGs are embedded as base64 data URIs rather than linked: the page is
// then a single file that opens offline, survives being mailed or copied out
// of the run folder, and can never show a broken image. The cost is a third
// more bytes than the PNGs (a few hundred kB). Files that are not pictures
// (metrics.csv, checkpoints) are linked by relative name, and only when they
// exist.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>
#include <string>
#include <vector>

#include "lenet/fileio.h"
#include "lenet/report.h"

namespace lenet {

namespace fs = std::filesystem;

namespace {

std::string escape(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

}  // namespace

std::string base64(const std::string& bytes) {
  static const char* table = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {
    const uint32_t v = (uint8_t(bytes[i]) << 16) | (uint8_t(bytes[i + 1]) << 8) | uint8_t(bytes[i + 2]);
    out += table[v >> 18];
    out += table[(v >> 12) & 63];
    out += table[(v >> 6) & 63];
    out += table[v & 63];
  }
  if (i < bytes.size()) {
    uint32_t v = uint8_t(bytes[i]) << 16;
    if (i + 1 < bytes.size()) v |= uint8_t(bytes[i + 1]) << 8;
    out += table[v >> 18];
    out += table[(v >> 12) & 63];
    out += i + 1 < bytes.size() ? table[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

namespace {

std::string fixed(double v, int digits) {
  if (!std::isfinite(v)) return std::isnan(v) ? "nan" : (v > 0 ? "inf" : "-inf");
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}
std::string percent(double fraction, int digits = 2) {
  return std::isfinite(fraction) ? fixed(100.0 * fraction, digits) + "%" : fixed(fraction, digits);
}

std::string short_lr(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

std::string shape_text(const Shape& s) {
  std::string t;
  for (size_t i = 0; i < s.size(); ++i) t += (i ? " × " : "") + std::to_string(s[i]);
  return t.empty() ? "?" : t;
}

// <img> with the PNG embedded, or nothing when the file is not there.
std::string embedded_png(const fs::path& file, const std::string& alt, int width) {
  std::error_code ec;
  if (!fs::is_regular_file(file, ec)) return {};
  return "<img src=\"data:image/png;base64," + base64(read_file(file)) + "\" alt=\"" + escape(alt) +
         "\" style=\"max-width:" + std::to_string(width) + "px\">";
}

void row(std::ostringstream& html, const std::string& name, const std::string& value_html) {
  html << "<tr><th>" << escape(name) << "</th><td>" << value_html << "</td></tr>\n";
}

constexpr const char* kStyle = R"(
body { font-family: "DejaVu Sans", Helvetica, Arial, sans-serif; margin: 24px auto; max-width: 1100px;
       color: #222; padding: 0 16px; }
h1 { font-size: 1.6em; margin-bottom: 4px; }
h2 { font-size: 1.2em; margin-top: 32px; border-bottom: 1px solid #ddd; padding-bottom: 4px; }
.summary { font-size: 1.05em; color: #444; }
.note { background: #fff6e0; border-left: 4px solid #e0a000; padding: 6px 10px; }
.columns { display: flex; flex-wrap: wrap; gap: 16px 40px; align-items: flex-start; }
.columns > table { flex: 1 1 400px; }
table { border-collapse: collapse; font-size: 0.92em; }
th, td { padding: 3px 10px; text-align: left; vertical-align: top; }
table.kv th { color: #555; font-weight: normal; white-space: nowrap; }
table.kv td code { word-break: break-word; }
table.num td, table.num th { text-align: right; border-bottom: 1px solid #eee; }
table.num th { border-bottom: 2px solid #ccc; }
tr.best { background: #eaf3fb; font-weight: bold; }
.plots { display: flex; flex-wrap: wrap; gap: 12px; }
img { width: 100%; height: auto; border: 1px solid #eee; }
.muted { color: #777; }
)";

}  // namespace

std::vector<std::pair<std::string, std::string>> describe_train_options(const TrainOptions& o) {
  std::vector<std::pair<std::string, std::string>> rows = {
      {"epochs", std::to_string(o.epochs)},
      {"batch size", std::to_string(o.batch_size)},
      {"optimizer", o.optimizer},
      {"learning rate", fixed(o.lr, 6)},
  };
  // Trim the learning rate's trailing zeros: 0.001000 -> 0.001.
  auto& lr = rows.back().second;
  while (lr.size() > 1 && lr.back() == '0' && lr[lr.size() - 2] != '.') lr.pop_back();
  if (o.optimizer == "sgd") rows.push_back({"momentum", fixed(o.momentum, 3)});
  rows.push_back({"weight decay", o.weight_decay == 0 ? "0" : fixed(o.weight_decay, 6)});
  rows.push_back({"seed", std::to_string(o.seed)});
  rows.push_back({"threads", o.threads == 0 ? "all cores" : std::to_string(o.threads)});
  rows.push_back({"normalize inputs", o.normalize ? "yes (mean/std of the training set)" : "no"});
  rows.push_back({"augmentation", o.augment.empty() ? "none" : parse_augmentation(o.augment).text()});
  if (!o.lr_schedule.empty()) rows.push_back({"lr schedule", o.lr_schedule});
  if (o.warmup_epochs > 0) rows.push_back({"warm-up epochs", std::to_string(o.warmup_epochs)});
  if (o.clip_grad_norm > 0) rows.push_back({"clip gradient norm", short_lr(o.clip_grad_norm)});
  if (!o.init_from.empty()) rows.push_back({"initial weights", o.init_from.string()});
  if (o.freeze > 0) rows.push_back({"frozen layers", std::to_string(o.freeze)});
  if (o.patience > 0) rows.push_back({"patience", std::to_string(o.patience)});
  return rows;
}

void write_html_report(const fs::path& out_dir, const RunReport& report) {
  const ModelInfo& info = report.info;
  const std::string arch = architecture_label(info);
  const std::string heading = arch + (info.dataset.empty() ? "" : " on " + info.dataset);
  const auto& history = report.history;

  std::ostringstream html;
  html << "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
       << "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
       << "<title>" << escape(heading) << " — lenet training report</title>\n<style>" << kStyle
       << "</style>\n</head>\n<body>\n";
  html << "<h1>" << escape(heading) << "</h1>\n";

  // The one-line summary: the best epoch, as the checkpoint records it.
  const EpochMetrics* best = nullptr;
  for (auto& m : history)
    if (m.epoch == info.epoch) best = &m;
  html << "<p class=\"summary\">";
  if (best) {
    html << "Best epoch " << best->epoch << " of " << history.size() << ": test accuracy <b>" << percent(best->test_acc)
         << "</b>, test loss " << fixed(best->test_loss, 4) << ", train accuracy " << percent(best->train_acc) << ".";
  } else if (!history.empty()) {
    const auto& last = history.back();
    html << history.size() << (history.size() == 1 ? " epoch" : " epochs") << "; last: test accuracy <b>"
         << percent(last.test_acc) << "</b>, test loss " << fixed(last.test_loss, 4) << ".";
  } else {
    html << "No epochs recorded yet.";
  }
  html << "</p>\n";
  if (!report.note.empty()) html << "<p class=\"note\">" << escape(report.note) << "</p>\n";

  // ---- settings ----
  html << "<h2>Settings</h2>\n<div class=\"columns\">\n<table class=\"kv\">\n";
  html << "<tr><th colspan=\"2\"><b>Model</b></th></tr>\n";
  row(html, "architecture",
      "<code>" + escape(info.arch) + "</code>" +
          (arch != info.arch ? " <span class=\"muted\">(" + escape(arch) + ")</span>" : ""));
  try {
    const Sequential model = build_model(info.arch, info.input_shape, static_cast<int>(info.class_names.size()),
                                         nullptr);
    row(html, "parameters", std::to_string(model.parameter_count()));
  } catch (const std::exception&) {
    // An architecture that does not build is shown as text only.
  }
  row(html, "input", shape_text(info.input_shape) + " (C × H × W)");
  std::string names;
  for (size_t i = 0; i < info.class_names.size(); ++i) names += (i ? ", " : "") + escape(info.class_names[i]);
  row(html, "classes", std::to_string(info.class_names.size()) + (names.empty() ? "" : ": " + names));
  row(html, "data set", escape(info.dataset.empty() ? "?" : info.dataset));
  const Preprocessing& pre = info.preprocessing;
  std::string prep = info.input_shape.size() == 3 && info.input_shape[0] == 3 ? "colour (RGB)"
                     : pre.grayscale                                          ? "grayscale"
                                                                              : "colour";
  if (pre.resize_height > 0 && pre.resize_width > 0)
    prep += ", resized to " + std::to_string(pre.resize_height) + " × " + std::to_string(pre.resize_width);
  auto values = [&](const std::vector<float>& v) {
    std::string out;
    for (size_t c = 0; c < v.size(); ++c) out += (c ? ", " : "") + fixed(v[c], 4);
    return v.size() > 1 ? "(" + out + ")" : out;
  };
  prep += pre.normalization.enabled()
              ? ", normalised (x − " + values(pre.normalization.mean) + ") / " + values(pre.normalization.std) +
                    (pre.normalization.per_channel() ? " per channel" : "")
              : ", pixels scaled to [0, 1]";
  row(html, "preprocessing", escape(prep));
  if (info.epoch > 0) row(html, "checkpoint epoch", std::to_string(info.epoch));
  html << "</table>\n";
  if (!report.settings.empty()) {
    html << "<table class=\"kv\">\n<tr><th colspan=\"2\"><b>Training</b></th></tr>\n";
    for (auto& [name, value] : report.settings) row(html, name, escape(value));
    html << "</table>\n";
  }
  html << "</div>\n";

  // ---- curves and per-epoch numbers ----
  const std::string loss_img = embedded_png(out_dir / "loss.png", "train and test loss per epoch", 800);
  const std::string acc_img = embedded_png(out_dir / "accuracy.png", "train and test accuracy per epoch", 800);
  if (!loss_img.empty() || !acc_img.empty()) {
    html << "<h2>Training curves</h2>\n<div class=\"plots\">\n";
    for (auto* img : {&loss_img, &acc_img})
      if (!img->empty()) html << "<div style=\"flex:1 1 480px\">" << *img << "</div>\n";
    html << "</div>\n";
  }
  html << "<h2>Per epoch</h2>\n";
  if (history.empty()) {
    html << "<p class=\"muted\">No epochs recorded yet.</p>\n";
  } else {
    const bool val = std::any_of(history.begin(), history.end(), [](auto& m) { return !std::isnan(m.val_loss); });
    const bool lr = std::any_of(history.begin(), history.end(), [](auto& m) { return m.lr > 0; });
    html << "<table class=\"num\" id=\"epochs\">\n<tr><th>epoch</th><th>train loss</th><th>train acc</th>"
         << (val ? "<th>val loss</th><th>val acc</th>" : "") << "<th>test loss</th><th>test acc</th>"
         << (lr ? "<th>lr</th>" : "") << "<th>seconds</th><th>images/s</th></tr>\n";
    // A test score a validation run did not take shows as a dash.
    auto test_cell = [](double v, bool is_percent) {
      return std::isnan(v) ? std::string("&ndash;") : is_percent ? percent(v) : fixed(v, 4);
    };
    for (auto& m : history) {
      html << "<tr" << (m.epoch == info.epoch ? " class=\"best\" title=\"best checkpoint\"" : "") << "><td>" << m.epoch
           << "</td><td>" << fixed(m.train_loss, 4) << "</td><td>" << percent(m.train_acc) << "</td><td>";
      if (val) html << fixed(m.val_loss, 4) << "</td><td>" << percent(m.val_acc) << "</td><td>";
      html << test_cell(m.test_loss, false) << "</td><td>" << test_cell(m.test_acc, true) << "</td><td>";
      if (lr) html << short_lr(m.lr) << "</td><td>";
      html << fixed(m.seconds, 1) << "</td><td>" << fixed(m.images_per_s, 0) << "</td></tr>\n";
    }
    html << "</table>\n";
    if (best)
      html << "<p class=\"muted\">The highlighted row is the best checkpoint (lowest " << (val ? "validation" : "test")
           << " loss).</p>\n";
  }

  // ---- confusion matrix ----
  const std::string conf_img = embedded_png(out_dir / "confusion.png", "test confusion matrix", 820);
  if (!conf_img.empty() || report.test) {
    html << "<h2>Confusion matrix (test set)</h2>\n";
    if (!conf_img.empty()) html << "<div style=\"max-width:820px\">" << conf_img << "</div>\n";
    const Evaluation* ev = report.test;
    if (ev && ev->classes > 0 && ev->confusion.size() == static_cast<size_t>(ev->classes) * ev->classes) {
      const int n = ev->classes;
      auto name = [&](int i) {
        return i < static_cast<int>(info.class_names.size()) ? info.class_names[i] : std::to_string(i);
      };
      html << "<p>Rows: true class; columns: predicted class. " << ev->count << " images, " << percent(ev->accuracy)
           << " correct, mean loss " << fixed(ev->loss, 4) << ".</p>\n";
      html << "<table class=\"num\" id=\"confusion\">\n<tr><th>true \\ predicted</th>";
      for (int p = 0; p < n; ++p) html << "<th>" << escape(name(p)) << "</th>";
      html << "<th>accuracy</th></tr>\n";
      std::vector<double> per_class(n, 0.0);  // recall: the diagonal over the row
      for (int t = 0; t < n; ++t) {
        int64_t total = 0;
        for (int p = 0; p < n; ++p) total += ev->confusion[static_cast<size_t>(t) * n + p];
        if (total > 0) per_class[t] = static_cast<double>(ev->confusion[static_cast<size_t>(t) * n + t]) / total;
      }
      for (int t = 0; t < n; ++t) {
        html << "<tr><th>" << escape(name(t)) << "</th>";
        for (int p = 0; p < n; ++p) {
          const int64_t c = ev->confusion[static_cast<size_t>(t) * n + p];
          html << "<td" << (t == p ? " style=\"font-weight:bold\"" : "") << ">" << c << "</td>";
        }
        html << "<td>" << percent(per_class[t], 1) << "</td></tr>\n";
      }
      html << "</table>\n";
    }
  }

  // ---- prediction gallery (written by the gallery report when it runs) ----
  const std::string gallery = embedded_png(out_dir / "predictions.png", "predictions on test images", 1100);
  if (!gallery.empty()) html << "<h2>Predictions on test images</h2>\n" << gallery << "\n";

  // ---- the run's other files, linked only when present ----
  static const std::pair<const char*, const char*> files[] = {
      {"metrics.csv", "per-epoch metrics"},
      {"best.safetensors", "best checkpoint (lowest test loss)"},
      {"last.safetensors", "last checkpoint"},
      {"best.onnx", "best model as ONNX"},
      {"web/index.html", "the model in a web page (lenet export --web; view it with lenet serve)"},
  };
  std::ostringstream links;
  for (auto& [file, what] : files) {
    std::error_code ec;
    if (fs::is_regular_file(out_dir / file, ec))
      links << "<li><a href=\"" << file << "\">" << file << "</a> — " << what << "</li>\n";
  }
  if (!links.str().empty()) html << "<h2>Files in this run</h2>\n<ul>\n" << links.str() << "</ul>\n";

  fs::path folder = out_dir.lexically_normal();
  if (folder.filename().empty()) folder = folder.parent_path();
  html << "<p class=\"muted\">Written by lenet.cpp. Run <code>lenet plot " << escape(folder.filename().string())
       << "</code> to redraw it.</p>\n</body>\n</html>\n";
  write_file_atomic(out_dir / "report.html", html.str());
}

void write_run_pictures(const fs::path& out_dir, const RunReport& report) {
  const PlotLabels labels = plot_labels(report.info);
  if (!report.history.empty()) {
    plot_loss(out_dir / "loss.png", report.history, labels);
    plot_accuracy(out_dir / "accuracy.png", report.history, labels);
  }
  if (report.test) plot_confusion(out_dir / "confusion.png", *report.test, report.info.class_names, labels);
  write_html_report(out_dir, report);
}

}  // namespace lenet

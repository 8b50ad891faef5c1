// Pictures of a training run: loss and accuracy curves, the test confusion
// matrix (PNG files drawn with PLplot) and one self-contained HTML page that
// shows them with the run's settings and per-epoch numbers.
#pragma once

#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "lenet/checkpoint.h"
#include "lenet/train.h"

namespace lenet {

// Pixel sizes of the pictures (the tests check them).
inline constexpr int kCurvePlotWidth = 800, kCurvePlotHeight = 560;
inline constexpr int kConfusionPlotWidth = 820, kConfusionPlotHeight = 760;

// What the titles say: "<architecture> on <dataset>".
struct PlotLabels {
  std::string architecture;  // "lenet-max", or a spec when it is not a built-in
  std::string dataset;       // "fashion-mnist"
};

// The short name of a checkpoint's architecture: the built-in name whose
// expansion gives the same model for this input shape and class count, else
// the spec text itself.
std::string architecture_label(const ModelInfo& info);
PlotLabels plot_labels(const ModelInfo& info);

// Train and test loss per epoch; each curve's last value is written at its end.
// Non-finite values (a diverged run) are left out of the curve but not of the
// labels. Throws std::invalid_argument on an empty history and
// std::runtime_error naming the path when it cannot be written.
void plot_loss(const std::filesystem::path& path, const std::vector<EpochMetrics>& history, const PlotLabels& labels);
// Train and test accuracy (in percent) per epoch, like plot_loss.
void plot_accuracy(const std::filesystem::path& path, const std::vector<EpochMetrics>& history,
                   const PlotLabels& labels);
// The confusion matrix as a heat map: rows are true classes, columns the
// predicted ones; each cell shows its count and is coloured by its share of
// the true class (the row), so rare classes read as clearly as common ones.
// `class_names` may be empty (classes are then numbered). Throws
// std::invalid_argument when the matrix is not classes × classes or the
// names do not match.
void plot_confusion(const std::filesystem::path& path, const Evaluation& eval,
                    const std::vector<std::string>& class_names, const PlotLabels& labels);

// Everything the HTML page shows.
struct RunReport {
  ModelInfo info;                                             // the best checkpoint's metadata
  std::vector<std::pair<std::string, std::string>> settings;  // training options, in order
  std::vector<EpochMetrics> history;
  const Evaluation* test = nullptr;  // the best model's test evaluation, if known
  std::string note;                  // one line shown under the title (e.g. why a part is missing)
};

// The training options as (name, value) rows for RunReport::settings.
std::vector<std::pair<std::string, std::string>> describe_train_options(const TrainOptions& options);

// Writes out_dir/report.html. PNGs (loss.png, accuracy.png, confusion.png,
// predictions.png) that exist in out_dir are embedded as base64 data URIs, so
// the page is one file that can be opened offline, mailed or moved on its own.
// Other files of the run that exist (metrics.csv, checkpoints, ONNX) are
// linked by their relative names.
void write_html_report(const std::filesystem::path& out_dir, const RunReport& report);

// Writes loss.png, accuracy.png, confusion.png (when report.test is given)
// and then report.html into out_dir; what a training run calls after every epoch
// and what `lenet plot` calls.
void write_run_pictures(const std::filesystem::path& out_dir, const RunReport& report);

// RFC 4648 base64 (with padding), for data: URIs.
std::string base64(const std::string& bytes);

}  // namespace lenet

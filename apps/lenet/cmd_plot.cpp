// Training pictures from the command line:
//  - the epoch hook that `lenet train` runs after every epoch, redrawing
//    loss.png, accuracy.png, confusion.png and report.html so a long run can be
//    watched, and recording in report.json where the run's data came from;
//  - `lenet plot RUN_DIR`, which redraws all of it from metrics.csv, the best
//    checkpoint and report.json, e.g. after an interrupted run.
#include <cstdio>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>

#include "commands.h"
#include "lenet/checkpoint.h"
#include "lenet/data.h"
#include "lenet/fileio.h"
#include "lenet/parallel.h"
#include "lenet/report.h"
#include "lenet/train.h"

namespace lenet::cli {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

constexpr int kReportJsonVersion = 1;

// report.json: the settings the report shows, and how to load the same test
// split again (folder, subset), which the checkpoint does not record (the
// held-out split of an image folder without test/ is in the checkpoint).
void write_report_json(const fs::path& path, const ReportSource& source) {
  json settings = json::array();
  for (auto& [name, value] : source.settings) settings.push_back({name, value});
  const json doc = {{"format", "lenet report settings"},
                    {"version", kReportJsonVersion},
                    {"data", source.data_dir.string()},
                    {"limit_test", source.limit_test},
                    {"settings", settings}};
  write_file_atomic(path, doc.dump(2) + "\n");
}

// Reads report.json; a missing or unreadable one yields nothing (with a
// warning for the latter): the pictures can be drawn without it.
std::optional<ReportSource> read_report_json(const fs::path& path) {
  std::error_code ec;
  if (!fs::exists(path, ec)) return std::nullopt;
  try {
    const json doc = json::parse(read_file(path));
    if (doc.value("version", 0) != kReportJsonVersion)
      throw std::runtime_error("version " + doc.value("version", json()).dump() + ", expected " +
                               std::to_string(kReportJsonVersion));
    ReportSource source;
    source.data_dir = doc.at("data").get<std::string>();
    source.limit_test = doc.at("limit_test").get<int64_t>();
    for (const auto& row : doc.at("settings"))
      source.settings.emplace_back(row.at(0).get<std::string>(), row.at(1).get<std::string>());
    return source;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "lenet: warning: ignoring %s: %s\n", path.string().c_str(), e.what());
    return std::nullopt;
  }
}

std::string count_text(int64_t count, int64_t limit) {
  return std::to_string(count) + (limit > 0 ? " (the first " + std::to_string(limit) + ", --limit-test)" : "");
}

// The test split that the best checkpoint is evaluated on for the confusion
// matrix, or the reason it cannot be had.
struct TestData {
  std::optional<Dataset> test;
  std::string problem;
};
TestData load_test_split(const fs::path& dir, const LoadedModel& best, const fs::path& best_path, int64_t limit,
                         int threads) {
  const ModelInfo& info = best.info;
  try {
    DataOptions options;
    options.resize_height = info.preprocessing.resize_height;
    options.resize_width = info.preprocessing.resize_width;
    options.channels = data_channels_for(info);
    options.threads = threads;
    // An image folder without test/: the split the run held out, as `lenet eval` takes it.
    stored_held_out_split(best.metadata, best_path.string(), options);
    DataSplit split = load_data(dir, options);
    Dataset test = limit > 0 ? split.test.head(limit) : std::move(split.test);
    if (test.input_shape() != info.input_shape)
      return {std::nullopt, dir.string() + " has images of " + to_string(test.input_shape()) + ", the model expects " +
                                to_string(info.input_shape)};
    if (test.num_classes() != static_cast<int>(info.class_names.size()))
      return {std::nullopt, dir.string() + " has " + std::to_string(test.num_classes()) + " classes, the model " +
                                std::to_string(info.class_names.size())};
    return {std::move(test), {}};
  } catch (const std::exception& e) {
    return {std::nullopt, e.what()};
  }
}

std::vector<EpochMetrics> read_history(const fs::path& run) {
  const fs::path csv = run / "metrics.csv";
  std::error_code ec;
  if (!fs::is_regular_file(csv, ec))
    throw UsageError(csv.string() + " not found: " + run.string() + " is not a training run folder");
  std::vector<EpochMetrics> history = read_metrics_csv(csv);
  if (history.empty()) throw UsageError(csv.string() + ": no epochs recorded (only a header)");
  for (size_t i = 1; i < history.size(); ++i)
    if (history[i].epoch <= history[i - 1].epoch)
      throw UsageError(csv.string() + ": epoch " + std::to_string(history[i].epoch) + " follows epoch " +
                       std::to_string(history[i - 1].epoch) + "; epochs must increase");
  return history;
}

void plot_run(const fs::path& run, const std::string& data_flag, std::optional<int64_t> limit_flag, int threads) {
  std::error_code ec;
  if (!fs::is_directory(run, ec)) throw UsageError("run folder " + run.string() + " does not exist");
  RunReport report;
  report.history = read_history(run);

  const std::optional<ReportSource> source = read_report_json(run / "report.json");
  if (source) report.settings = source->settings;

  std::vector<std::string> notes;
  std::optional<LoadedModel> best;
  const fs::path best_path = run / "best.safetensors";
  if (fs::exists(best_path, ec)) {
    best = load_checkpoint(best_path);
    report.info = best->info;
  } else {
    notes.push_back("no best.safetensors in " + run.string() + ": model details and the confusion matrix are missing");
  }

  // The confusion matrix needs the test split again: --data, else where
  // training found it, else the Debian package for Fashion-MNIST.
  std::optional<Evaluation> evaluation;
  if (best) {
    fs::path data_dir = data_flag;
    if (data_dir.empty() && source) data_dir = source->data_dir;
    if (data_dir.empty() && best->info.dataset == "fashion-mnist") data_dir = default_data_dir();
    const int64_t limit = limit_flag.value_or(source ? source->limit_test : 0);
    std::string problem;
    if (data_dir.empty()) {
      problem = "the data set '" + best->info.dataset + "' has no known folder (pass --data DIR)";
    } else {
      TestData data = load_test_split(data_dir, *best, best_path, limit, threads);
      if (data.test) evaluation = evaluate(best->model, *data.test, best->info.preprocessing.normalization);
      problem = data.problem;
    }
    if (!evaluation) {
      const bool old = fs::exists(run / "confusion.png", ec);
      notes.push_back("confusion matrix not redrawn: " + problem +
                      (old ? "; the report shows the one drawn during training" : ""));
    }
  }
  for (const auto& note : notes) std::fprintf(stderr, "lenet: warning: %s\n", note.c_str());
  if (!notes.empty()) report.note = notes.back();
  report.test = evaluation ? &*evaluation : nullptr;
  write_run_pictures(run, report);

  std::printf("wrote %s: loss.png, accuracy.png, %sreport.html\n", run.string().c_str(),
              evaluation ? "confusion.png, " : "");
}

}  // namespace

EpochHook make_report_hook(ReportSource source) {
  struct State {
    ReportSource source;
    std::optional<Evaluation> best_test;  // the best checkpoint's test evaluation
    std::optional<ModelInfo> best_info;
    bool warned = false;
    bool recorded = false;  // report.json written
  };
  auto state = std::make_shared<State>();
  state->source = std::move(source);
  return [state](const EpochEvent& event) {
    if (!state->best_info && !event.new_best) {
      // A resumed run: its best epoch came before this session; evaluate that checkpoint once.
      try {
        LoadedModel best = load_checkpoint(event.out_dir / "best.safetensors");
        state->best_test = evaluate(best.model, event.data.test, best.info.preprocessing.normalization);
        state->best_info = best.info;
      } catch (const std::exception&) {
        // Unreadable: the report shows this epoch instead.
      }
    }
    if (event.new_best || !state->best_info) {
      state->best_test = event.test;
      state->best_info = event.info;
    }
    try {
      if (!state->recorded) {
        state->source.settings.emplace_back("training images", std::to_string(event.data.train.count));
        state->source.settings.emplace_back("test images", count_text(event.data.test.count, state->source.limit_test));
        write_report_json(event.out_dir / "report.json", state->source);
        state->recorded = true;
      }
      RunReport report;
      report.info = *state->best_info;
      report.settings = state->source.settings;
      report.history = event.history;
      report.test = &*state->best_test;
      write_run_pictures(event.out_dir, report);
    } catch (const std::exception& e) {
      // The checkpoints matter more than their pictures: warn once, train on.
      if (!state->warned) std::fprintf(stderr, "lenet: warning: could not draw the training pictures: %s\n", e.what());
      state->warned = true;
    }
  };
}

ReportSource make_report_source(const TrainOptions& options, const fs::path& data_dir, int64_t limit_test) {
  ReportSource source;
  std::error_code ec;
  source.data_dir = fs::absolute(data_dir, ec);  // so `lenet plot` works from any folder
  if (ec) source.data_dir = data_dir;
  source.limit_test = limit_test;
  source.settings = {{"architecture (as given)", options.arch}, {"data folder", source.data_dir.string()}};
  for (auto& row : describe_train_options(options)) source.settings.push_back(row);
  return source;
}

void add_plot_command(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "plot",
      "Redraw a run's loss.png, accuracy.png, confusion.png and report.html from metrics.csv and best.safetensors");
  auto run = std::make_shared<std::string>();
  auto data = std::make_shared<std::string>();
  auto limit = std::make_shared<int64_t>(-1);
  auto threads = std::make_shared<int>(0);
  cmd->add_option("RUN_DIR", *run, "A training run folder (holding metrics.csv)")->required();
  cmd->add_option("--data", *data, "Data set folder for the confusion matrix (default: the one training used)");
  cmd->add_option("--limit-test", *limit, "Evaluate only the first N test images (default: as training did)");
  add_threads_option(*cmd, *threads);
  cmd->callback([=] {
    if (cmd->count("--limit-test") && *limit < 0)
      throw UsageError("--limit-test must be >= 0 (0: all), got " + std::to_string(*limit));
    set_num_threads(*threads);
    plot_run(*run, *data, cmd->count("--limit-test") ? std::optional<int64_t>(*limit) : std::nullopt, *threads);
  });
}

}  // namespace lenet::cli

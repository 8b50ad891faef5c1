// Each subcommand of the `lenet` tool lives in its own cmd_*.cpp and registers
// itself here. Commands throw on failure; main() turns an exception into one
// line on stderr and a non-zero exit.
#pragma once

#include <CLI/CLI.hpp>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "lenet/train.h"

namespace lenet::cli {

// An error the user can fix (bad flag value, missing file): printed without a stack of context.
struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Ends `lenet` with `code` after printing "lenet: <message>" on stderr: an
// outcome that is not an error, such as a training run stopped by a signal
// after saving itself (130 for SIGINT, 143 for SIGTERM, as shells report them).
struct ExitStatus : std::runtime_error {
  ExitStatus(const std::string& message, int exit_code) : std::runtime_error(message), code(exit_code) {}
  int code;
};

void add_info_command(CLI::App& app);
void add_train_command(CLI::App& app);
void add_eval_command(CLI::App& app);
void add_tutorial_command(CLI::App& app);
void add_plot_command(CLI::App& app);

// Training pictures (cmd_plot.cpp). What the report shows about a run and
// where its test split comes from; `lenet train` saves it as OUT/report.json.
struct ReportSource {
  std::filesystem::path data_dir;  // absolute
  int64_t limit_test = 0;          // 0: the whole test split
  uint64_t seed = 0;               // the data options' seed (image-folder splits)
  std::vector<std::pair<std::string, std::string>> settings;
};
ReportSource make_report_source(const TrainOptions& options, const std::filesystem::path& data_dir, int64_t limit_test);
// Redraws loss.png, accuracy.png, confusion.png (of the best epoch so far) and
// report.html after every epoch; run it after the other hooks, whose pictures
// the report embeds.
EpochHook make_report_hook(ReportSource source);
void add_predict_command(CLI::App& app);
void add_export_command(CLI::App& app);
void add_serve_command(CLI::App& app);

}  // namespace lenet::cli

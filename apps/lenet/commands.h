// Each subcommand of the `lenet` tool lives in its own cmd_*.cpp and registers
// itself here. Commands throw on failure; main() turns an exception into one
// line on stderr and a non-zero exit.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <filesystem>
#include <map>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "lenet/data.h"
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

// ---- flags that several commands share (flags.cpp) ----

// --threads N: 0 means all the cores this process may use; a negative count,
// one above kMaxThreads or a non-number is refused while parsing (one line, exit 2).
constexpr int kMaxThreads = 1024;
void add_threads_option(CLI::App& cmd, int& threads);
// --test-split (the test share of an image folder without test/) or --val-split
// (the validation share of the training set): a fraction in (0, 1), else
// UsageError naming `flag`.
void check_split_fraction(const std::string& flag, double fraction);
// The held-out split that a training run stored in its checkpoints' metadata
// (test_split, val_split, split_seed); `source` (the file) is named when a
// value is not a fraction in (0, 1) or not a whole number.
double stored_fraction(const std::string& text, const std::string& key, const std::string& source);
uint64_t stored_split_seed(const std::string& text, const std::string& source);
// Sets options.test_split and options.seed from whichever of the two is stored
// (test_split; in checkpoints written before --test-split, val_split named it).
void stored_held_out_split(const std::map<std::string, std::string>& metadata, const std::string& source,
                           DataOptions& options);

// The channels to read an image folder with for `info`'s model: 3 for an RGB
// model, else 1 (the data's shape check then names any other mismatch).
int data_channels_for(const ModelInfo& info);

// load_dataset, with each file an image folder skipped as one warning line on
// stderr and a count at the end.
DataSplit load_data(const std::filesystem::path& dir, const DataOptions& options);

void add_info_command(CLI::App& app);
// "kernels: avx512 (16 lanes)": the kernel path this process runs (lenet/isa.h).
std::string kernels_line();
void add_train_command(CLI::App& app);
void add_eval_command(CLI::App& app);
void add_tutorial_command(CLI::App& app);
void add_plot_command(CLI::App& app);

// Training pictures (cmd_plot.cpp). What the report shows about a run and
// where its test split comes from (with the split stored in the best
// checkpoint); `lenet train` saves it as OUT/report.json.
struct ReportSource {
  std::filesystem::path data_dir;  // absolute
  int64_t limit_test = 0;          // 0: the whole test split
  std::vector<std::pair<std::string, std::string>> settings;
};
ReportSource make_report_source(const TrainOptions& options, const std::filesystem::path& data_dir, int64_t limit_test);
// Redraws loss.png, accuracy.png, confusion.png (of the best epoch so far) and
// report.html after every epoch; run it after the other hooks, whose pictures
// the report embeds.
EpochHook make_report_hook(ReportSource source);
void add_predict_command(CLI::App& app);
void add_export_command(CLI::App& app);
void add_quantize_command(CLI::App& app);
void add_serve_command(CLI::App& app);
void add_augment_preview_command(CLI::App& app);

}  // namespace lenet::cli

// `lenet eval`: a saved model's loss, accuracy, per-class accuracy and
// confusion matrix on a data set's test split.
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <memory>

#include "commands.h"
#include "lenet/checkpoint.h"
#include "lenet/data.h"
#include "lenet/parallel.h"
#include "lenet/train.h"

namespace lenet::cli {

namespace fs = std::filesystem;

// Rows are true classes, columns predicted ones; every column as wide as its
// longest entry (class name or count), so the table lines up.
std::string format_confusion(const Evaluation& ev, const std::vector<std::string>& names) {
  const int k = ev.classes;
  size_t label_width = std::string("true \\ predicted").size();
  for (const auto& n : names) label_width = std::max(label_width, n.size());
  std::vector<size_t> width(static_cast<size_t>(k));
  for (int p = 0; p < k; ++p) {
    width[static_cast<size_t>(p)] = names[static_cast<size_t>(p)].size();
    for (int t = 0; t < k; ++t)
      width[static_cast<size_t>(p)] = std::max(width[static_cast<size_t>(p)],
                                               std::to_string(ev.confusion[static_cast<size_t>(t) * k + p]).size());
  }
  auto pad_left = [](const std::string& s, size_t w) { return std::string(w > s.size() ? w - s.size() : 0, ' ') + s; };
  auto pad_right = [](const std::string& s, size_t w) { return s + std::string(w > s.size() ? w - s.size() : 0, ' '); };
  std::string out = pad_right("true \\ predicted", label_width);
  for (int p = 0; p < k; ++p) out += "  " + pad_left(names[static_cast<size_t>(p)], width[static_cast<size_t>(p)]);
  out += "\n";
  for (int t = 0; t < k; ++t) {
    out += pad_right(names[static_cast<size_t>(t)], label_width);
    for (int p = 0; p < k; ++p)
      out += "  " +
             pad_left(std::to_string(ev.confusion[static_cast<size_t>(t) * k + p]), width[static_cast<size_t>(p)]);
    out += "\n";
  }
  return out;
}

// The held-out split of an image folder without test/: the flags, else what
// the training run stored in the checkpoint (so the model is tested on images
// it never trained on), else the training defaults.
void held_out_split(const LoadedModel& loaded, const std::string& model_path, const double* test_split,
                    const uint64_t* split_seed, DataOptions& options) {
  stored_held_out_split(loaded.metadata, model_path, options);
  if (test_split) {
    check_split_fraction("--test-split", *test_split);
    options.test_split = *test_split;
  }
  if (split_seed) options.seed = *split_seed;
}

void add_eval_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("eval", "Evaluate a saved model on a data set's test split");
  auto model_path = std::make_shared<std::string>();
  // A repeated option takes its last value, so a script can append overrides.
  cmd->option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  auto data = std::make_shared<std::string>();
  auto batch = std::make_shared<int>(256);
  auto threads = std::make_shared<int>(0);
  auto limit = std::make_shared<int64_t>(0);
  cmd->add_option("--model", *model_path, "Checkpoint (.safetensors)")->required();
  cmd->add_option("--data", *data, "Data set folder; default: Fashion-MNIST from " + default_data_dir().string());
  cmd->add_option("--batch-size", *batch, "Images per forward pass")->capture_default_str();
  add_threads_option(*cmd, *threads);
  cmd->add_option("--limit", *limit, "Use only the first N test images");
  auto test_split = std::make_shared<double>(0.2);
  auto split_seed = std::make_shared<uint64_t>(0);
  cmd->add_option("--test-split", *test_split,
                  "Image folders without test/: fraction held out as the test set (default: the training run's, "
                  "else 0.2)");
  // The flag's name before --val-split came to mean validation (train): hidden, and pointed at its new name.
  // Bound to no variable: a bound one would have to outlive this function, as the others do.
  cmd->add_option("--val-split")->expected(1)->group("");
  cmd->add_option("--split-seed", *split_seed,
                  "Image folders without test/: seed of the held-out split (default: the "
                  "training run's, else 0)");
  cmd->callback([=] {
    if (cmd->count("--val-split"))
      throw UsageError(
          "eval: --val-split is now --test-split (the share of an image folder without test/ held "
          "out as the test set)");
    if (*batch < 1) throw UsageError("--batch-size must be a positive whole number, got " + std::to_string(*batch));
    if (*limit < 0) throw UsageError("--limit must be positive, got " + std::to_string(*limit));
    set_num_threads(*threads);
    LoadedModel loaded = load_model(*model_path);
    const ModelInfo& info = loaded.info;

    const fs::path data_dir = data->empty() ? default_data_dir() : fs::path(*data);
    DataOptions options;
    options.resize_height = info.preprocessing.resize_height;
    options.resize_width = info.preprocessing.resize_width;
    options.channels = data_channels_for(info);
    options.threads = *threads;
    held_out_split(loaded, *model_path, cmd->count("--test-split") ? test_split.get() : nullptr,
                   cmd->count("--split-seed") ? split_seed.get() : nullptr, options);
    DataSplit split = load_data(data_dir, options);
    Dataset test = *limit > 0 ? split.test.head(*limit) : std::move(split.test);
    if (test.input_shape() != info.input_shape)
      throw UsageError(data_dir.string() + ": images are " + to_string(test.input_shape()) + " but the model " +
                       *model_path + " expects " + to_string(info.input_shape));
    if (test.num_classes() != static_cast<int>(info.class_names.size()))
      throw UsageError(data_dir.string() + ": " + std::to_string(test.num_classes()) + " classes but the model " +
                       *model_path + " has " + std::to_string(info.class_names.size()));
    if (test.class_names != info.class_names)
      std::fprintf(stderr,
                   "lenet: warning: %s names its classes differently from the model; showing the model's names\n",
                   data_dir.string().c_str());

    const Evaluation ev = evaluate(loaded.model, test, info.preprocessing.normalization, *batch);
    std::printf("model  %s (epoch %d, trained on %s)\n", model_path->c_str(), info.epoch,
                info.dataset.empty() ? "unknown data" : info.dataset.c_str());
    std::printf("arch   %s\n", info.arch.c_str());
    std::printf("data   %s, test split, %lld images\n", data_dir.string().c_str(), static_cast<long long>(ev.count));
    std::printf("loss %.4f  accuracy %.4f\n\n", ev.loss, ev.accuracy);

    std::printf("per-class accuracy\n");
    size_t name_width = 0;
    for (const auto& n : info.class_names) name_width = std::max(name_width, n.size());
    const auto per_class = ev.per_class_accuracy();
    for (int c = 0; c < ev.classes; ++c) {
      int64_t row = 0;
      for (int p = 0; p < ev.classes; ++p) row += ev.confusion[static_cast<size_t>(c) * ev.classes + p];
      char acc[16] = "   n/a";  // no test images of this class
      if (row) std::snprintf(acc, sizeof acc, "%.4f", per_class[static_cast<size_t>(c)]);
      std::printf("  %-*s  %s  (%lld images)\n", static_cast<int>(name_width),
                  info.class_names[static_cast<size_t>(c)].c_str(), acc, static_cast<long long>(row));
    }
    std::printf("\nconfusion matrix (rows: true class, columns: predicted class)\n%s",
                format_confusion(ev, info.class_names).c_str());
  });
}

}  // namespace lenet::cli

// `lenet train`: trains a model on a data set folder, writing best.safetensors,
// last.safetensors and metrics.csv (and whatever the epoch hooks add) to a run folder.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cmath>
#include <ctime>
#include <filesystem>
#include <memory>
#include <optional>

#include "commands.h"
#include "lenet/data.h"
#include "lenet/nn.h"
#include "lenet/train.h"

namespace lenet::cli {

namespace fs = std::filesystem;

namespace {

struct TrainArgs {
  std::string data;
  std::string arch = "lenet-max";
  int epochs = 10;
  int batch_size = 256;
  std::optional<double> lr;
  std::string optimizer = "adam";
  double momentum = 0;
  double weight_decay = 0;
  uint64_t seed = 0;
  int threads = 0;
  std::string out;
  bool normalize = false;
  int64_t limit_train = 0, limit_test = 0;
};

// The reports that follow every epoch (plots, ONNX export, prediction gallery)
// each add their hook here, in the order they should run.
std::vector<EpochHook> make_epoch_hooks(const TrainArgs& args) {
  std::vector<EpochHook> hooks;
  return hooks;
}

std::string number(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

void check_arguments(const TrainArgs& a) {
  if (a.epochs < 1) throw UsageError("--epochs must be a positive whole number, got " + std::to_string(a.epochs));
  if (a.batch_size < 1) throw UsageError("--batch-size must be a positive whole number, got " + std::to_string(a.batch_size));
  if (a.lr && (!(*a.lr > 0) || !std::isfinite(*a.lr)))
    throw UsageError("--lr must be a positive number, got " + number(*a.lr));
  if (a.optimizer != "sgd" && a.optimizer != "adam")
    throw UsageError("--optimizer must be sgd or adam, got '" + a.optimizer + "'");
  if (!(a.momentum >= 0 && a.momentum < 1)) throw UsageError("--momentum must lie in [0, 1), got " + number(a.momentum));
  if (a.momentum > 0 && a.optimizer != "sgd") throw UsageError("--momentum applies to --optimizer sgd only");
  if (!(a.weight_decay >= 0) || !std::isfinite(a.weight_decay))
    throw UsageError("--weight-decay must be >= 0, got " + number(a.weight_decay));
  if (a.threads < 0) throw UsageError("--threads must be >= 0 (0: all cores), got " + std::to_string(a.threads));
  if (a.limit_train < 0) throw UsageError("--limit-train must be positive, got " + std::to_string(a.limit_train));
  if (a.limit_test < 0) throw UsageError("--limit-test must be positive, got " + std::to_string(a.limit_test));
}

// Builds the architecture once for the data's shape, so a bad --arch fails
// before any folder is created.
void check_architecture(const std::string& arch, const Dataset& data) {
  try {
    build_model(arch, data.input_shape(), data.num_classes(), nullptr);
  } catch (const std::invalid_argument& e) {
    const bool one_word = arch.find_first_of(" ,[") == std::string::npos;
    std::string builtins;
    for (const auto& name : builtin_architectures()) builtins += (builtins.empty() ? "" : ", ") + name;
    if (one_word) throw UsageError("unknown --arch '" + arch + "' (built-in: " + builtins + ", or a layer spec such as 'conv 6 k5 p2, sigmoid, ...')");
    throw UsageError("--arch '" + arch + "': " + e.what());
  }
}

// An explicit --out must be new or empty: a run never overwrites another.
fs::path prepare_output(const std::string& out) {
  std::error_code ec;
  if (!out.empty()) {
    const fs::path dir = out;
    if (fs::exists(dir, ec)) {
      if (!fs::is_directory(dir, ec)) throw UsageError("--out " + out + " is a file, not a folder");
      if (!fs::is_empty(dir, ec))
        throw UsageError("--out " + out + " already holds files (an earlier run?); choose a new folder, lenet never overwrites a run");
    }
    fs::create_directories(dir, ec);
    if (ec) throw UsageError("cannot create --out " + out + ": " + ec.message());
    return dir;
  }
  // runs/<date>-<time>, with -2, -3, ... when that name is taken: create_directory is the atomic claim.
  const std::time_t now = std::time(nullptr);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", std::localtime(&now));
  fs::create_directories("runs", ec);
  if (ec) throw UsageError("cannot create the folder runs: " + ec.message());
  for (int i = 1; i < 10000; ++i) {
    const fs::path dir = fs::path("runs") / (std::string(stamp) + (i > 1 ? "-" + std::to_string(i) : ""));
    if (fs::create_directory(dir, ec)) return dir;
    if (ec) throw UsageError("cannot create " + dir.string() + ": " + ec.message());
  }
  throw UsageError("cannot find a free folder name under runs/");
}

}  // namespace

void add_train_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("train", "Train a model; writes best.safetensors, last.safetensors and metrics.csv");
  auto a = std::make_shared<TrainArgs>();
  // A repeated option takes its last value, so a script can append overrides.
  cmd->option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  cmd->add_option("--data", a->data, "Data set folder (IDX files); default: Fashion-MNIST from " + default_data_dir().string());
  cmd->add_option("--arch", a->arch, "Built-in name (lenet, lenet-max, lenet-relu, mlp) or a layer spec")->capture_default_str();
  cmd->add_option("--epochs", a->epochs, "Passes over the training set")->capture_default_str();
  cmd->add_option("--batch-size", a->batch_size, "Images per minibatch")->capture_default_str();
  cmd->add_option("--lr", a->lr, "Learning rate (default: 0.001 for adam, 0.9 for sgd, the chapter's values)");
  cmd->add_option("--optimizer", a->optimizer, "sgd or adam")->capture_default_str();
  cmd->add_option("--momentum", a->momentum, "SGD momentum")->capture_default_str();
  cmd->add_option("--weight-decay", a->weight_decay, "L2 penalty added to the gradient")->capture_default_str();
  cmd->add_option("--seed", a->seed, "Seed of the weights and the shuffle")->capture_default_str();
  cmd->add_option("--threads", a->threads, "Worker threads (0: all cores)")->capture_default_str();
  cmd->add_option("--out", a->out, "Run folder (new or empty); default: a new folder under runs/");
  cmd->add_flag("--normalize", a->normalize, "Normalise pixels by the training set's mean and std (stored with the model)");
  cmd->add_option("--limit-train", a->limit_train, "Use only the first N training images (quick runs)");
  cmd->add_option("--limit-test", a->limit_test, "Use only the first N test images");
  cmd->callback([a] {
    check_arguments(*a);
    const fs::path data_dir = a->data.empty() ? default_data_dir() : fs::path(a->data);
    DataOptions data_options;
    data_options.seed = a->seed;
    data_options.threads = a->threads;
    DataSplit data = load_dataset(data_dir, data_options);
    if (a->limit_train > 0) data.train = data.train.head(a->limit_train);
    if (a->limit_test > 0) data.test = data.test.head(a->limit_test);
    check_architecture(a->arch, data.train);

    TrainOptions o;
    o.arch = a->arch;
    o.epochs = a->epochs;
    o.batch_size = a->batch_size;
    o.optimizer = a->optimizer;
    o.lr = static_cast<float>(a->lr.value_or(a->optimizer == "sgd" ? 0.9 : 0.001));
    o.momentum = static_cast<float>(a->momentum);
    o.weight_decay = static_cast<float>(a->weight_decay);
    o.seed = a->seed;
    o.threads = a->threads;
    o.normalize = a->normalize;
    o.progress = ::isatty(::fileno(stdout)) == 1;
    o.out_dir = prepare_output(a->out);
    train(data, o, make_epoch_hooks(*a));
  });
}

}  // namespace lenet::cli

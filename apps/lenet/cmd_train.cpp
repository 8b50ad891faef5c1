// `lenet train`: trains a model on a data set folder, writing best.safetensors,
// last.safetensors and metrics.csv (and whatever the epoch hooks add) to a run folder.
// SIGINT/SIGTERM stop it after the current batch with everything saved;
// `lenet train --resume RUN` continues it.
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <memory>
#include <optional>

#include "commands.h"
#include "lenet/data.h"
#include "lenet/distributed.h"
#include "lenet/gallery.h"
#include "lenet/image.h"
#include "lenet/nn.h"
#include "lenet/onnx.h"
#include "lenet/optim.h"
#include "lenet/parallel.h"
#include "lenet/train.h"
#include "progress.h"

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
  std::string size;         // image folders: --size HxW
  int channels = 1;         // image folders: 1 grayscale, 3 RGB
  std::string augment;      // --augment, lenet/augment.h
  double test_split = 0.2;  // image folders without test/: the share held out as the test set
  uint64_t split_seed = 0;  // kept apart from --seed so the held-out images stay the same across runs
  std::string resume;       // a run folder to continue
  // --val-split: the share of the training set held out for validation, for
  // every kind of data set (an image folder without test/ after its test share).
  bool hold_out = false;
  double val_split = 0;
  std::string lr_schedule;
  int warmup_epochs = 0;
  double clip_grad_norm = 0;
  std::string init;  // starting weights
  int freeze = 0;
  int patience = 0;  // 0: not given
};

// ---- stopping on a signal ----

// The handler only records the signal (and says once that it was heard, with
// write(2), which is async-signal-safe); the training loop polls the flag
// after every batch. SA_RESETHAND: a second Ctrl-C kills at once.
volatile std::sig_atomic_t g_stop_signal = 0;
const char* g_stop_message = "";
size_t g_stop_message_size = 0;

extern "C" void on_stop_signal(int sig) {
  g_stop_signal = sig;
  const ssize_t ignored = ::write(STDERR_FILENO, g_stop_message, g_stop_message_size);
  (void)ignored;
}

// Installs the handler for SIGINT and SIGTERM for its lifetime.
class StopOnSignals {
 public:
  StopOnSignals() {
    // On a terminal the progress bar holds the line: start a fresh one.
    static const char tty_message[] =
        "\nlenet: stopping after this batch to save the run (Ctrl-C again quits at once)\n";
    static const char plain_message[] =
        "lenet: stopping after this batch to save the run (Ctrl-C again quits at once)\n";
    const bool tty = ::isatty(STDOUT_FILENO) == 1;
    g_stop_message = tty ? tty_message : plain_message;
    // Under mpirun every rank hears the signal; rank 0 speaks for them.
    g_stop_message_size = distributed::rank() != 0 ? 0 : (tty ? sizeof tty_message : sizeof plain_message) - 1;
    g_stop_signal = 0;
    struct sigaction action {};
    action.sa_handler = on_stop_signal;
    sigemptyset(&action.sa_mask);
    action.sa_flags = SA_RESETHAND | SA_RESTART;
    ::sigaction(SIGINT, &action, &old_int_);
    ::sigaction(SIGTERM, &action, &old_term_);
  }
  ~StopOnSignals() {
    ::sigaction(SIGINT, &old_int_, nullptr);
    ::sigaction(SIGTERM, &old_term_, nullptr);
  }
  StopOnSignals(const StopOnSignals&) = delete;
  StopOnSignals& operator=(const StopOnSignals&) = delete;

 private:
  struct sigaction old_int_ {
  }, old_term_{};
};

// For the tests: LENET_TEST_INTERRUPT_AFTER_BATCHES=N (or N:TERM) makes the run
// send itself SIGINT (SIGTERM) after its N-th batch, through the real handler,
// so a test can stop a run at an exact, chosen batch.
struct SelfInterrupt {
  int64_t after = 0;
  int signal = SIGINT;
};
std::optional<SelfInterrupt> self_interrupt_from_env() {
  const char* env = std::getenv("LENET_TEST_INTERRUPT_AFTER_BATCHES");
  if (!env || !*env) return std::nullopt;
  const std::string text = env;
  SelfInterrupt s;
  size_t used = 0;
  try {
    s.after = std::stoll(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  const std::string rest = used ? text.substr(used) : "";
  if (used == 0 || s.after < 1 || (!rest.empty() && rest != ":INT" && rest != ":TERM"))
    throw UsageError("LENET_TEST_INTERRUPT_AFTER_BATCHES must be N or N:TERM with N >= 1, got '" + text + "'");
  if (rest == ":TERM") s.signal = SIGTERM;
  return s;
}

// A path as a shell word, for the commands we suggest.
std::string shell_word(const std::string& s) {
  if (!s.empty() && s.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./+=:@") ==
                        std::string::npos)
    return s;
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

std::string number(double v);

// Runs train() with the signal handler installed and the progress printed on
// stdout (a live bar on a terminal); an interrupted run ends `lenet` with 130
// (SIGINT) or 143 (SIGTERM) and says how to continue.
void run_training(const DataSplit& data, TrainOptions o, const std::vector<EpochHook>& hooks) {
  StopOnSignals signals;
  // Under mpirun stdout may be a pty that mpirun drains to a file: plain lines.
  Progress progress(stdout, ::isatty(::fileno(stdout)) == 1 && distributed::size() == 1);
  o.observer = &progress;
  const std::optional<SelfInterrupt> self = self_interrupt_from_env();
  auto batches_seen = std::make_shared<int64_t>(0);
  o.stop_requested = [self, batches_seen](int, int64_t batches_done) {
    if (self && batches_done > 0 && ++*batches_seen == self->after) ::raise(self->signal);
    return g_stop_signal != 0;
  };
  const std::string resume_hint = "lenet train --resume " + shell_word(o.out_dir.string());
  try {
    train(data, o, hooks);
  } catch (const TrainingInterrupted& e) {
    const int sig = g_stop_signal;
    throw ExitStatus(std::string("interrupted by ") + (sig == SIGTERM ? "SIGTERM: " : "SIGINT: ") + e.what() +
                         "; continue with: " + resume_hint,
                     128 + (sig ? sig : SIGINT));
  } catch (const TrainingDiverged& e) {
    progress.abandon();
    std::error_code ec;  // every rank saw the same (summed) loss: rank 0 speaks for them (GroupError)
    const std::string smaller = number(o.lr / 10);
    std::string hint = ", e.g. --lr " + smaller + " in a new run";
    if (fs::exists(o.out_dir / "last.safetensors", ec))
      hint += ", or " + resume_hint + " --lr " + smaller + " to continue from " +
              (e.last_good_epoch > 0 ? "the end of epoch " + std::to_string(e.last_good_epoch) : "where it was saved");
    throw distributed::GroupError(e.what() + hint);
  }
}

// The reports that follow every epoch (plots, ONNX export, prediction gallery)
// each add their hook here, in the order they should run.
std::vector<EpochHook> make_epoch_hooks(const TrainArgs& args) {
  std::vector<EpochHook> hooks;
  // best.onnx follows best.safetensors, as the chapter saves its best model as ONNX.
  hooks.push_back([](const EpochEvent& e) {
    if (e.new_best) export_onnx(e.out_dir / "best.onnx", e.model, e.info);
  });
  // The chapter's last figure: the first ten test images with true and
  // predicted labels, redrawn after every epoch so the last one shows the end.
  hooks.push_back([](const EpochEvent& e) {
    write_prediction_gallery(e.out_dir / "predictions.png", e.model, e.data.test, e.info.preprocessing.normalization,
                             10,
                             e.data.name + ": first test images after epoch " + std::to_string(e.history.back().epoch));
  });
  return hooks;
}

std::string number(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

void check_arguments(const TrainArgs& a) {
  if (a.epochs < 1) throw UsageError("--epochs must be a positive whole number, got " + std::to_string(a.epochs));
  if (a.batch_size < 1)
    throw UsageError("--batch-size must be a positive whole number, got " + std::to_string(a.batch_size));
  if (a.lr && (!(*a.lr > 0) || !std::isfinite(*a.lr)))
    throw UsageError("--lr must be a positive number, got " + number(*a.lr));
  if (a.optimizer != "sgd" && a.optimizer != "adam" && a.optimizer != "adamw")
    throw UsageError("--optimizer must be sgd, adam or adamw, got '" + a.optimizer + "'");
  if (!(a.momentum >= 0 && a.momentum < 1))
    throw UsageError("--momentum must lie in [0, 1), got " + number(a.momentum));
  if (a.momentum > 0 && a.optimizer != "sgd") throw UsageError("--momentum applies to --optimizer sgd only");
  if (!(a.weight_decay >= 0) || !std::isfinite(a.weight_decay))
    throw UsageError("--weight-decay must be >= 0, got " + number(a.weight_decay));
  if (a.limit_train < 0) throw UsageError("--limit-train must be positive, got " + std::to_string(a.limit_train));
  if (a.limit_test < 0) throw UsageError("--limit-test must be positive, got " + std::to_string(a.limit_test));
  if (a.batch_size < distributed::size())
    throw UsageError("--batch-size " + std::to_string(a.batch_size) + " is smaller than the " +
                     std::to_string(distributed::size()) + " processes: each needs at least one image of every batch");
  check_split_fraction("--test-split", a.test_split);
  if (a.hold_out) check_split_fraction("--val-split", a.val_split);
  try {
    check_lr_schedule(parse_lr_schedule(a.lr_schedule, a.warmup_epochs), a.epochs);
  } catch (const std::invalid_argument& e) {
    throw UsageError(e.what());
  }
  if (!(a.clip_grad_norm >= 0) || !std::isfinite(a.clip_grad_norm))
    throw UsageError("--clip-grad-norm must be a positive number, got " + number(a.clip_grad_norm));
  if (a.freeze < 0) throw UsageError("--freeze must be >= 0, got " + std::to_string(a.freeze));
  if (a.channels != 1 && a.channels != 3)
    throw UsageError("--channels must be 1 (grayscale) or 3 (RGB), got " + std::to_string(a.channels));
  try {
    parse_augmentation(a.augment);
  } catch (const std::invalid_argument& e) {
    throw UsageError(e.what());
  }
}

// --patience P: a positive whole number (0 would stop before training).
void check_patience(const CLI::App& cmd, int patience) {
  if (cmd.count("--patience") && patience < 1)
    throw UsageError("--patience must be a positive number of epochs, got " + std::to_string(patience));
}

// True when the data set brings its own test split (IDX, test/ or test.csv);
// an image folder without one holds out --test-split of itself for testing.
bool has_own_test_split(const fs::path& dir) {
  std::error_code ec;
  return is_idx_folder(dir) || fs::is_directory(dir / "test", ec) || fs::is_regular_file(dir / "test.csv", ec);
}

// The architecture of a model file given to --init without --arch, its last
// linear sized by the data (so a new class count re-initialises only it).
std::string architecture_of(const fs::path& init) {
  std::string spec;
  try {
    spec = load_model(init).info.arch;
  } catch (const std::exception&) {
    return "";  // e.g. a bare PyTorch state_dict: --arch says what it is
  }
  const size_t at = spec.rfind("linear ");
  if (at == std::string::npos) return spec;
  size_t end = at + 7;
  while (end < spec.size() && std::isdigit(static_cast<unsigned char>(spec[end]))) ++end;
  if (end == at + 7) return spec;
  return spec.substr(0, at + 6) + spec.substr(end);
}

// Builds the architecture once for the data's shape, so a bad --arch fails
// before any folder is created.
void check_architecture(const std::string& arch, const Dataset& data) {
  try {
    build_model(arch, data.input_shape(), data.num_classes(), nullptr);
  } catch (const std::invalid_argument& e) {
    const bool one_word = arch.find_first_of(" ,[") == std::string::npos;
    const auto names = builtin_architectures();
    const bool builtin = std::find(names.begin(), names.end(), arch) != names.end();
    std::string builtins;
    for (const auto& name : names) {
      if (!builtins.empty()) builtins += ", ";
      builtins += name;
    }
    if (builtin)
      throw UsageError("--arch " + arch + " does not fit images of " + to_string(data.input_shape()) + ": " + e.what());
    if (one_word)
      throw UsageError("unknown --arch '" + arch + "' (built-in: " + builtins +
                       ", or a layer spec such as 'conv 6 k5 p2, sigmoid, ...')");
    throw UsageError("--arch '" + arch + "': " + e.what());
  }
}

// An explicit --out must be new or empty: a run never overwrites another.
fs::path prepare_output(const std::string& out) {
  std::error_code ec;
  if (!out.empty()) {
    fs::path dir = out;
    if (fs::exists(dir, ec)) {
      if (!fs::is_directory(dir, ec)) throw UsageError("--out " + out + " is a file, not a folder");
      if (!fs::is_empty(dir, ec))
        throw UsageError("--out " + out +
                         " already holds files (an earlier run?); choose a new folder, lenet never overwrites a run");
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
    fs::path dir = fs::path("runs") / (std::string(stamp) + (i > 1 ? "-" + std::to_string(i) : ""));
    if (fs::create_directory(dir, ec)) return dir;
    if (ec) throw UsageError("cannot create " + dir.string() + ": " + ec.message());
  }
  throw UsageError("cannot find a free folder name under runs/");
}

DataSplit load_training_data(const TrainArgs& a, const fs::path& data_dir) {
  DataOptions data_options;
  data_options.seed = a.split_seed;
  data_options.test_split = a.test_split;
  data_options.threads = a.threads;
  data_options.channels = a.channels;
  if (!a.size.empty()) {
    try {
      std::tie(data_options.resize_height, data_options.resize_width) = parse_size(a.size);
    } catch (const std::invalid_argument& e) {
      throw UsageError(std::string("--size: ") + e.what());
    }
  }
  DataSplit data = load_data(data_dir, data_options);
  if (a.limit_train > 0) data.train = data.train.head(a.limit_train);
  if (a.limit_test > 0) data.test = data.test.head(a.limit_test);
  if (a.hold_out) {
    try {
      hold_out_validation(data, a.val_split, a.split_seed);
    } catch (const std::invalid_argument& e) {
      throw UsageError(e.what());
    }
  }
  return data;
}

// Stored in every checkpoint: the held-out test split of an image folder
// without test/, so that `lenet eval` tests on the images this run held out;
// and the validation share, when there is one.
std::map<std::string, std::string> split_metadata(const TrainArgs& a) {
  auto fraction = [](double f) {
    char text[32];
    std::snprintf(text, sizeof text, "%.17g", f);
    return std::string(text);
  };
  std::map<std::string, std::string> meta = {{"test_split", fraction(a.test_split)},
                                             {"split_seed", std::to_string(a.split_seed)}};
  if (a.hold_out) meta["val_split"] = fraction(a.val_split);
  return meta;
}

// What `--resume` needs to load the same data again, kept in last.safetensors.
std::map<std::string, std::string> run_metadata(const TrainArgs& a, const fs::path& data_dir) {
  std::error_code ec;
  fs::path absolute = fs::absolute(data_dir, ec);
  if (ec) absolute = data_dir;
  auto meta = split_metadata(a);
  meta.insert({{"data", absolute.string()},
               {"limit_train", std::to_string(a.limit_train)},
               {"limit_test", std::to_string(a.limit_test)},
               {"size", a.size},
               {"channels", std::to_string(a.channels)},
               {"hold_out", a.hold_out ? "1" : "0"}});
  return meta;
}

// The data flags back from the run metadata; throws naming the checkpoint when one is unreadable.
TrainArgs args_from_run_metadata(const std::map<std::string, std::string>& meta, const fs::path& checkpoint) {
  auto get = [&](const char* key) -> std::string {
    auto it = meta.find(key);
    if (it == meta.end())
      throw UsageError(checkpoint.string() + ": the run's data settings lack '" + key + "'; cannot resume it");
    return it->second;
  };
  auto integer = [&](const char* key) -> int64_t {
    const std::string v = get(key);
    size_t used = 0;
    long long n = -1;
    try {
      n = std::stoll(v, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used == 0 || used != v.size() || n < 0)
      throw UsageError(checkpoint.string() + ": the run's '" + key + "' is '" + v + "', not a count; cannot resume it");
    return n;
  };
  TrainArgs a;
  a.data = get("data");
  a.limit_train = integer("limit_train");
  a.limit_test = integer("limit_test");
  a.size = get("size");
  a.split_seed = stored_split_seed(get("split_seed"), checkpoint.string());
  auto channels = meta.find("channels");  // absent from runs before colour: grayscale
  a.channels = channels == meta.end() ? 1 : static_cast<int>(integer("channels"));
  if (a.channels != 1 && a.channels != 3)
    throw UsageError(checkpoint.string() + ": the run's 'channels' is " + std::to_string(a.channels) +
                     ", not 1 or 3; cannot resume it");
  auto hold_out = meta.find("hold_out");  // absent from runs before validation splits
  a.hold_out = hold_out != meta.end() && hold_out->second == "1";
  // Runs before --test-split stored the test share of an image folder as val_split.
  const char* test_key = meta.count("test_split") ? "test_split" : "val_split";
  a.test_split = stored_fraction(get(test_key), test_key, checkpoint.string());
  if (a.hold_out) a.val_split = stored_fraction(get("val_split"), "val_split", checkpoint.string());
  return a;
}

// `lenet train --resume RUN`: the run's own settings from RUN/last.safetensors,
// except --epochs (to train further), --lr, --threads and --data (moved data).
// Every rank reads RUN itself (the same path on every host).
void prepare_resume(const TrainArgs& given, const CLI::App& cmd, DataSplit& data_out, TrainOptions& o_out,
                    std::vector<EpochHook>& hooks_out) {
  const fs::path dir = given.resume;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) throw UsageError("--resume " + given.resume + ": no such run folder");
  const fs::path last = dir / "last.safetensors";
  if (!fs::exists(last, ec))
    throw UsageError("--resume " + given.resume +
                     ": no last.safetensors there (the run stopped before it saved anything; "
                     "start it again)");
  for (const char* flag :
       {"--arch",       "--batch-size", "--optimizer",   "--momentum",      "--weight-decay",   "--seed",
        "--out",        "--normalize",  "--limit-train", "--limit-test",    "--size",           "--val-split",
        "--test-split", "--split-seed", "--lr-schedule", "--warmup-epochs", "--clip-grad-norm", "--init",
        "--freeze",     "--patience",   "--channels",    "--augment"})
    if (cmd.count(flag))
      throw UsageError(std::string(flag) +
                       " cannot change when resuming: the run keeps its own settings (only --epochs, "
                       "--lr, --threads and --data may be given; start a new run to change the others)");
  const ResumeState state = read_resume_state(last);
  TrainOptions o = state.options;
  o.out_dir = dir;
  o.resume_from = last;
  const int done = static_cast<int>(state.history.size());
  if (state.stopped_early)
    throw UsageError("the run in " + given.resume + " stopped early after epoch " + std::to_string(done) +
                     " (--patience " + std::to_string(state.options.patience) +
                     "); there is nothing to continue, start a new run");
  if (cmd.count("--epochs")) {
    if (given.epochs < state.epoch)
      throw UsageError("--epochs " + std::to_string(given.epochs) + ": the run in " + given.resume +
                       " is already in epoch " + std::to_string(state.epoch) +
                       (state.complete() ? " (finished " + std::to_string(done) + ")" : ""));
    o.epochs = given.epochs;
  } else if (state.complete()) {
    throw UsageError("the run in " + given.resume + " already finished its " + std::to_string(done) +
                     " epochs; pass --epochs N (more than " + std::to_string(done) + ") to train it further");
  }
  if (cmd.count("--lr")) {
    if (!given.lr || !(*given.lr > 0) || !std::isfinite(*given.lr))
      throw UsageError("--lr must be a positive number, got " + number(given.lr.value_or(0)));
    o.lr = static_cast<float>(*given.lr);
  }
  if (cmd.count("--threads")) o.threads = given.threads;
  TrainArgs data_args = args_from_run_metadata(o.run_metadata, last);
  data_args.threads = o.threads;
  if (cmd.count("--data")) data_args.data = given.data;
  const fs::path data_dir = data_args.data;
  DataSplit data = load_training_data(data_args, data_dir);
  o.run_metadata = run_metadata(data_args, data_dir);
  o.checkpoint_metadata = split_metadata(data_args);
  if (o.threads != state.options.threads) {
    set_num_threads(o.threads);
    if (num_threads() != state.options.threads && distributed::rank() == 0)
      std::fprintf(stderr,
                   "lenet: warning: resuming with %d threads where the run used %d: the results may differ in the last "
                   "bits from a run that was never stopped (--threads %d keeps them identical)\n",
                   num_threads(), state.options.threads, state.options.threads);
  }
  std::vector<EpochHook> hooks = make_epoch_hooks(data_args);
  hooks.push_back(make_report_hook(make_report_source(o, data_dir, data_args.limit_test)));
  data_out = std::move(data);
  o_out = o;
  hooks_out = std::move(hooks);
}

void resume_run(const TrainArgs& given, const CLI::App& cmd) {
  DataSplit data;
  TrainOptions o;
  std::vector<EpochHook> hooks;
  // A rank that cannot read the run or its data stops them all, named.
  distributed::on_all_ranks([&] { prepare_resume(given, cmd, data, o, hooks); });
  run_training(data, o, hooks);
}

}  // namespace

void add_train_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("train", "Train a model; writes best.safetensors, last.safetensors and metrics.csv");
  auto a = std::make_shared<TrainArgs>();
  // A repeated option takes its last value, so a script can append overrides.
  cmd->option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  cmd->add_option("--data", a->data,
                  "Data set: IDX folder, image folder (train/<class>/*, test/<class>/*) or a CSV "
                  "list path,label; default: Fashion-MNIST from " +
                      default_data_dir().string());
  cmd->add_option("--arch", a->arch, "Built-in name (lenet, lenet-max, lenet-relu, mlp) or a layer spec")
      ->capture_default_str();
  cmd->add_option("--epochs", a->epochs, "Passes over the training set")->capture_default_str();
  cmd->add_option("--batch-size", a->batch_size, "Images per minibatch")->capture_default_str();
  cmd->add_option("--lr", a->lr, "Learning rate (default: 0.001 for adam, 0.9 for sgd, the chapter's values)");
  cmd->add_option("--optimizer", a->optimizer, "sgd, adam or adamw (torch.optim's)")->capture_default_str();
  cmd->add_option("--lr-schedule", a->lr_schedule,
                  "step:S:G, multistep:E1,E2:G, cosine[:ETA_MIN] (per epoch) or onecycle:MAX (per batch), as "
                  "torch.optim.lr_scheduler's");
  cmd->add_option("--warmup-epochs", a->warmup_epochs, "Linear warm-up epochs before the schedule (not onecycle)");
  cmd->add_option("--clip-grad-norm", a->clip_grad_norm,
                  "Scale the gradient to this L2 norm when it is longer (torch.nn.utils.clip_grad_norm_)");
  cmd->add_option("--init", a->init,
                  "Start from the weights of this .safetensors (ours or a PyTorch state_dict) or .onnx; without "
                  "--arch, its architecture");
  cmd->add_option("--freeze", a->freeze, "With --init: keep the first K layers fixed");
  cmd->add_option("--patience", a->patience, "Stop after P epochs without a better validation (or test) loss");
  cmd->add_option("--momentum", a->momentum, "SGD momentum")->capture_default_str();
  cmd->add_option("--weight-decay", a->weight_decay, "L2 penalty added to the gradient")->capture_default_str();
  cmd->add_option("--seed", a->seed, "Seed of the weights and the shuffle")->capture_default_str();
  add_threads_option(*cmd, a->threads);
  cmd->add_option("--out", a->out, "Run folder (new or empty); default: a new folder under runs/");
  cmd->add_flag("--normalize", a->normalize,
                "Normalise pixels by the training set's mean and std (stored with the model)");
  cmd->add_option("--limit-train", a->limit_train, "Use only the first N training images (quick runs)");
  cmd->add_option("--limit-test", a->limit_test, "Use only the first N test images");
  cmd->add_option("--size", a->size, "Image folders: resize every image to HxW (bilinear), e.g. 28x28");
  cmd->add_option("--channels", a->channels,
                  "Image folders: 1 (grayscale, luma) or 3 (RGB: gray images replicated, alpha dropped)")
      ->capture_default_str();
  cmd->add_option("--augment", a->augment,
                  "Augment the training images, per image and epoch (torchvision's meanings): e.g. "
                  "'crop:2,flip,rotate:10,brightness:0.2'");
  cmd->add_option("--val-split", a->val_split,
                  "Fraction of each class of the training set held out for validation (picks the best epoch)");
  cmd->add_option("--test-split", a->test_split,
                  "Image folders without test/: fraction of each class held out as the test set")
      ->capture_default_str();
  cmd->add_option("--split-seed", a->split_seed, "Seed of the held-out splits (test of an image folder, validation)")
      ->capture_default_str();
  cmd->add_option("--resume", a->resume,
                  "Continue the stopped run in this folder from its last.safetensors, with its own settings "
                  "(only --epochs, --lr, --threads and --data may be given)");
  cmd->callback([a, cmd] {
    if (!a->resume.empty()) {
      resume_run(*a, *cmd);
      return;
    }
    check_patience(*cmd, a->patience);
    const fs::path data_dir = a->data.empty() ? default_data_dir() : fs::path(a->data);
    a->hold_out = cmd->count("--val-split") > 0;
    if (cmd->count("--test-split") && has_own_test_split(data_dir))
      throw UsageError("--test-split: " + data_dir.string() +
                       " has its own test split (IDX files, test/ or test.csv); --test-split applies to image folders "
                       "without one (--val-split holds out validation images)");
    if (!a->init.empty() && !cmd->count("--arch")) {
      std::error_code ec;
      if (!fs::exists(a->init, ec)) throw UsageError("--init " + a->init + ": no such file");
      if (std::string arch = architecture_of(a->init); !arch.empty()) a->arch = arch;
    }
    DataSplit data;
    TrainOptions o;
    // Every rank reads the data itself; one that fails stops them all, named.
    distributed::on_all_ranks([&] {
      check_arguments(*a);
      data = load_training_data(*a, data_dir);
      check_architecture(a->arch, data.train);
      // What train() would refuse about the model is refused before the run folder exists.
      Sequential probe = build_model(a->arch, data.train.input_shape(), data.train.num_classes(), nullptr);
      if (!a->init.empty()) {
        try {
          init_weights_from(probe, a->init);
        } catch (const std::invalid_argument& e) {
          throw UsageError(e.what());
        }
      }
      if (static_cast<size_t>(a->freeze) > probe.size())
        throw UsageError("--freeze " + std::to_string(a->freeze) + " is beyond the " + std::to_string(probe.size()) +
                         " layers of " + a->arch);
      try {  // BatchNorm cannot train on one value per channel: a batch (or a last batch) of one
        probe.train();
        const Shape image = data.train.input_shape();
        probe.check_training_batch(std::min<int64_t>(a->batch_size, data.train.count), image);
        if (data.train.count % a->batch_size) probe.check_training_batch(data.train.count % a->batch_size, image);
      } catch (const std::invalid_argument& e) {
        throw UsageError(e.what());
      }
      if (distributed::rank() == 0) o.out_dir = prepare_output(a->out);  // rank 0 owns the files
    });
    o.out_dir = distributed::from_rank0(o.out_dir.string());
    o.arch = a->arch;
    o.epochs = a->epochs;
    o.batch_size = a->batch_size;
    o.optimizer = a->optimizer;
    o.lr = static_cast<float>(a->lr.value_or(a->optimizer == "sgd" ? 0.9 : 0.001));
    o.momentum = static_cast<float>(a->momentum);
    // torch.optim.AdamW's default decay, unless given.
    o.weight_decay = static_cast<float>(a->optimizer == "adamw" && !cmd->count("--weight-decay") ? 0.01
                                                                                                 : a->weight_decay);
    o.lr_schedule = a->lr_schedule;
    o.warmup_epochs = a->warmup_epochs;
    o.clip_grad_norm = static_cast<float>(a->clip_grad_norm);
    o.freeze = a->freeze;
    o.patience = a->patience;
    if (!a->init.empty()) {
      std::error_code ec;
      const fs::path absolute = fs::absolute(a->init, ec);
      o.init_from = ec ? fs::path(a->init) : absolute;
    }
    o.seed = a->seed;
    o.threads = a->threads;
    o.normalize = a->normalize;
    o.augment = a->augment;
    o.run_metadata = run_metadata(*a, data_dir);
    o.checkpoint_metadata = split_metadata(*a);
    std::vector<EpochHook> hooks = make_epoch_hooks(*a);
    // Last, so the report embeds the pictures the other hooks wrote.
    hooks.push_back(make_report_hook(make_report_source(o, data_dir, a->limit_test)));
    run_training(data, o, hooks);
  });
}

}  // namespace lenet::cli

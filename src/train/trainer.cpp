// The training run: per epoch, minibatches of forward, softmax cross-entropy
// (mean over the batch, as PyTorch's nn.CrossEntropyLoss), backward and an
// optimizer step; then the test evaluation, the checkpoints, metrics.csv and the hooks.
//
// A run survives interruption: last.safetensors always carries, besides the
// weights and the optimizer state, a "train_state" metadata entry (JSON) with
// the options, the position (epoch, batch), the running sums of the epoch in
// progress, the finished epochs' metrics, the best test loss, the RNG and each
// Dropout's forward count (which picks its next mask).
// It is rewritten at the end of every epoch and when a stop is requested
// mid-epoch, so a run continues exactly where it stopped (after a signal) or
// from the last finished epoch (after a crash or kill -9).
//
// Data-parallel over N processes (mpirun; train/distributed.h): every rank
// takes its part of each global batch of the same seeded order, the gradient
// buffer is summed once per step, evaluation is sharded, and rank 0 alone
// writes files and tells the observer. The resume state is global.
#include <zlib.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>

#include "lenet/kernels.h"
#include "lenet/parallel.h"
#include "lenet/train.h"
#include "train/distributed.h"

namespace lenet {

namespace fs = std::filesystem;

namespace {

std::string short_number(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

void validate(const DataSplit& data, const TrainOptions& o) {
  auto positive = [](const char* what, double v) {
    if (!(v > 0) || !std::isfinite(v))
      throw std::invalid_argument(std::string("train: ") + what + " must be positive, got " + short_number(v));
  };
  if (o.epochs < 1) throw std::invalid_argument("train: epochs must be positive, got " + std::to_string(o.epochs));
  if (o.batch_size < 1)
    throw std::invalid_argument("train: batch size must be positive, got " + std::to_string(o.batch_size));
  positive("learning rate", o.lr);
  if (!(o.momentum >= 0 && o.momentum < 1))
    throw std::invalid_argument("train: momentum must lie in [0, 1), got " + short_number(o.momentum));
  if (!(o.weight_decay >= 0) || !std::isfinite(o.weight_decay))
    throw std::invalid_argument("train: weight decay must be >= 0, got " + short_number(o.weight_decay));
  if (o.optimizer != "sgd" && o.optimizer != "adam" && o.optimizer != "adamw")
    throw std::invalid_argument("train: unknown optimizer '" + o.optimizer + "' (known: sgd, adam, adamw)");
  if (o.optimizer != "sgd" && o.momentum != 0)
    throw std::invalid_argument("train: momentum applies to sgd; " + o.optimizer + " has its own moment estimates");
  check_lr_schedule(parse_lr_schedule(o.lr_schedule, o.warmup_epochs), std::max(o.epochs, o.schedule_epochs));
  if (o.schedule_epochs > 0 && o.epochs > o.schedule_epochs &&
      parse_lr_schedule(o.lr_schedule, o.warmup_epochs).kind == LrSchedule::Kind::onecycle)
    throw std::invalid_argument("train: the onecycle schedule spans " + std::to_string(o.schedule_epochs) +
                                " epochs; it cannot run past them (start a new run for more)");
  if (!(o.clip_grad_norm >= 0) || !std::isfinite(o.clip_grad_norm))
    throw std::invalid_argument("train: the gradient norm to clip to must be positive, got " +
                                short_number(o.clip_grad_norm));
  if (o.freeze < 0) throw std::invalid_argument("train: --freeze must be >= 0, got " + std::to_string(o.freeze));
  if (o.patience < 0) throw std::invalid_argument("train: --patience must be >= 1, got " + std::to_string(o.patience));
  if (o.out_dir.empty()) throw std::invalid_argument("train: no output folder given");
  parse_augmentation(o.augment);  // throws naming the text
  if (data.train.count == 0) throw std::invalid_argument("train: the training set is empty");
  if (data.test.count == 0) throw std::invalid_argument("train: the test set is empty");
  if (data.train.input_shape() != data.test.input_shape())
    throw std::invalid_argument("train: training images are " + to_string(data.train.input_shape()) +
                                " but test images are " + to_string(data.test.input_shape()));
  if (data.train.class_names != data.test.class_names)
    throw std::invalid_argument("train: the training and test sets name different classes");
  if (data.val.count > 0 &&
      (data.val.input_shape() != data.train.input_shape() || data.val.class_names != data.train.class_names))
    throw std::invalid_argument("train: the validation set does not match the training set's images and classes");
  if (data.train.num_classes() < 2)
    throw std::invalid_argument("train: at least two classes are needed, got " +
                                std::to_string(data.train.num_classes()));
}

// The parameters of the first `freeze` layers lead the flat buffers; the
// optimizer gets the rest.
int64_t frozen_prefix(Sequential& model, int freeze) {
  if (freeze > static_cast<int>(model.size()))
    throw std::invalid_argument("train: --freeze " + std::to_string(freeze) + " is beyond the model's " +
                                std::to_string(model.size()) + " layers");
  int64_t n = 0;
  for (int i = 0; i < freeze; ++i)
    for (const Parameter& p : model[static_cast<size_t>(i)].parameters()) n += p.numel();
  return n;
}

std::unique_ptr<Optimizer> make_optimizer(Sequential& model, const TrainOptions& o, int64_t frozen) {
  const auto values = model.flat_values().subspan(static_cast<size_t>(frozen));
  const auto grads = model.flat_grads().subspan(static_cast<size_t>(frozen));
  if (o.optimizer == "sgd") return std::make_unique<Sgd>(values, grads, SgdOptions{o.lr, o.momentum, o.weight_decay});
  AdamOptions a;
  a.lr = o.lr;
  a.weight_decay = o.weight_decay;
  a.decoupled_weight_decay = o.optimizer == "adamw";
  return std::make_unique<Adam>(values, grads, a);
}

std::string loss_text(double loss) {
  if (std::isnan(loss)) return "NaN";
  return loss > 0 ? "infinite" : "-infinite";
}

// ---- the resume state ----

using json = nlohmann::json;
constexpr int kTrainStateVersion = 1;
constexpr const char* kTrainStateKey = "train_state";

// CRC-32 of everything that decides the batches: sizes, pixels, labels, class
// names. A resumed run must see the very data it started with.
std::string fingerprint(const DataSplit& data) {
  uLong crc = crc32(0L, Z_NULL, 0);
  auto add = [&](const void* p, size_t n) {
    const auto* bytes = static_cast<const Bytef*>(p);
    while (n > 0) {
      const uInt chunk = static_cast<uInt>(std::min<size_t>(n, 1u << 30));
      crc = crc32(crc, bytes, chunk);
      bytes += chunk;
      n -= chunk;
    }
  };
  for (const Dataset* d : {&data.train, &data.test, &data.val}) {
    if (d == &data.val && d->count == 0) break;  // without a validation split: the fingerprint of before
    const int64_t sizes[4] = {d->count, d->channels, d->height, d->width};
    add(sizes, sizeof sizes);
    add(d->pixels.data(), d->pixels.size());
    add(d->labels.data(), d->labels.size() * sizeof(int32_t));
    for (const std::string& name : d->class_names) add(name.c_str(), name.size() + 1);
  }
  char buf[16];
  std::snprintf(buf, sizeof buf, "%08lx", static_cast<unsigned long>(crc));
  return buf;
}

// Where the run stands: what last.safetensors must hold to continue it.
struct RunState {
  int epoch = 1;         // epoch in progress (1-based)
  int64_t position = 0;  // samples of it served
  int64_t batches = 0;   // batches of it done
  double loss_sum = 0;   // Σ over its batches of (mean batch loss · batch size)
  int64_t correct = 0, seen = 0;
  double seconds = 0;           // training time of it so far (earlier sessions)
  double best_loss = INFINITY;  // validation loss with a validation split, else test loss
  int best_epoch = 0;
  bool stopped_early = false;  // patience ran out: the run is over
  std::vector<EpochMetrics> history;
};

json number_or_null(double v) { return std::isfinite(v) ? json(v) : json(nullptr); }

// Each Dropout's training forwards so far, in layer order: they pick the next masks.
std::vector<uint64_t> dropout_forwards(const Sequential& model) {
  std::vector<uint64_t> counts;
  for (size_t i = 0; i < model.size(); ++i)
    if (const auto* d = dynamic_cast<const Dropout*>(&model[i])) counts.push_back(d->forward_count());
  return counts;
}

json metrics_row(const EpochMetrics& m) {
  return json::array({m.epoch, number_or_null(m.train_loss), number_or_null(m.train_acc), number_or_null(m.test_loss),
                      number_or_null(m.test_acc), number_or_null(m.seconds), number_or_null(m.images_per_s),
                      number_or_null(m.lr), number_or_null(m.val_loss), number_or_null(m.val_acc)});
}

json options_json(const TrainOptions& o) {
  return {{"arch", o.arch},
          {"epochs", o.epochs},
          {"batch_size", o.batch_size},
          {"optimizer", o.optimizer},
          {"lr", static_cast<double>(o.lr)},
          {"momentum", static_cast<double>(o.momentum)},
          {"weight_decay", static_cast<double>(o.weight_decay)},
          {"seed", o.seed},
          {"threads", o.threads},
          {"normalize", o.normalize},
          {"augment", o.augment},
          {"lr_schedule", o.lr_schedule},
          {"warmup_epochs", o.warmup_epochs},
          {"schedule_epochs", o.schedule_epochs},
          {"clip_grad_norm", static_cast<double>(o.clip_grad_norm)},
          {"freeze", o.freeze},
          {"init_from", o.init_from.string()},
          {"patience", o.patience}};
}

std::string train_state_text(const TrainOptions& o, int threads, int schedule_epochs, const RunState& st,
                             const Rng& rng, const std::string& data_fingerprint, const Sequential& model) {
  TrainOptions stored = o;
  stored.threads = threads;  // the count it ran with, not "all cores"
  stored.schedule_epochs = schedule_epochs;
  json history = json::array();
  for (const EpochMetrics& m : st.history) history.push_back(metrics_row(m));
  json run = json::object();
  for (const auto& [k, v] : o.run_metadata) run[k] = v;
  const json j = {{"version", kTrainStateVersion},
                  {"options", options_json(stored)},
                  {"run", run},
                  {"epoch", st.epoch},
                  {"position", st.position},
                  {"batches", st.batches},
                  {"loss_sum", st.loss_sum},
                  {"correct", st.correct},
                  {"seen", st.seen},
                  {"seconds", st.seconds},
                  {"best_test_loss", number_or_null(st.best_loss)},
                  {"best_epoch", st.best_epoch},
                  {"stopped_early", st.stopped_early},
                  {"history", history},
                  {"rng", rng.state()},
                  {"dropout_forwards", dropout_forwards(model)},
                  {"data_fingerprint", data_fingerprint}};
  return j.dump();
}

// The parsed train_state of a checkpoint, with every field checked.
struct SavedState {
  TrainOptions options;
  RunState run;
  std::string rng, data_fingerprint;
  std::optional<std::vector<uint64_t>> dropout_forwards;  // absent from the files of earlier runs
};

SavedState parse_train_state(const fs::path& path, const std::map<std::string, std::string>& meta) {
  const std::string name = path.string();
  auto it = meta.find(kTrainStateKey);
  if (it == meta.end())
    throw std::runtime_error(name +
                             ": holds no training state to resume from (only the last.safetensors of a run "
                             "written by this lenet.cpp does)");
  SavedState s;
  try {
    const json j = json::parse(it->second);
    // Typed reads with ranges: converting an out-of-range number would be undefined.
    auto whole = [](const json& v, const char* key, int64_t lo, int64_t hi) {
      const json& x = v.at(key);
      bool ok = false;
      int64_t n = 0;
      if (x.is_number_unsigned()) {
        ok = x.get<uint64_t>() <= static_cast<uint64_t>(INT64_MAX);
        n = ok ? static_cast<int64_t>(x.get<uint64_t>()) : 0;
      } else if (x.is_number_integer()) {
        ok = true;
        n = x.get<int64_t>();
      }
      if (!ok || n < lo || n > hi)
        throw std::runtime_error(std::string("'") + key + "' is " + x.dump() + ", expected a whole number in [" +
                                 std::to_string(lo) + ", " + std::to_string(hi) + "]");
      return n;
    };
    auto real = [](const json& v, const char* key, double lo, double hi) {
      const json& x = v.at(key);
      if (!x.is_number() || !(x.get<double>() >= lo && x.get<double>() <= hi))
        throw std::runtime_error(std::string("'") + key + "' is " + x.dump() + ", expected a number in [" +
                                 short_number(lo) + ", " + short_number(hi) + "]");
      return x.get<double>();
    };
    constexpr int64_t kMaxInt = INT32_MAX;
    const int64_t version = whole(j, "version", 0, kMaxInt);
    if (version != kTrainStateVersion)
      throw std::runtime_error("version " + std::to_string(version) + ", this lenet.cpp reads version " +
                               std::to_string(kTrainStateVersion));
    const json& o = j.at("options");
    TrainOptions& t = s.options;
    t.arch = o.at("arch").get<std::string>();
    t.epochs = static_cast<int>(whole(o, "epochs", 1, kMaxInt));
    t.batch_size = static_cast<int>(whole(o, "batch_size", 1, kMaxInt));
    t.optimizer = o.at("optimizer").get<std::string>();
    t.lr = static_cast<float>(real(o, "lr", 0, 1e30));
    t.momentum = static_cast<float>(real(o, "momentum", 0, 1));
    t.weight_decay = static_cast<float>(real(o, "weight_decay", 0, 1e30));
    t.seed = o.at("seed").get<uint64_t>();
    t.threads = static_cast<int>(whole(o, "threads", 0, 4096));
    t.normalize = o.at("normalize").get<bool>();
    // Added later in version 1; absent from the files of earlier runs.
    t.lr_schedule = o.value("lr_schedule", std::string());
    t.augment = o.value("augment", std::string());
    parse_augmentation(t.augment);  // throws on a garbled one (invalid_argument: caught below)
    t.warmup_epochs = o.contains("warmup_epochs") ? static_cast<int>(whole(o, "warmup_epochs", 0, kMaxInt)) : 0;
    t.schedule_epochs = o.contains("schedule_epochs") ? static_cast<int>(whole(o, "schedule_epochs", 0, kMaxInt)) : 0;
    t.clip_grad_norm = o.contains("clip_grad_norm") ? static_cast<float>(real(o, "clip_grad_norm", 0, 1e30)) : 0;
    t.freeze = o.contains("freeze") ? static_cast<int>(whole(o, "freeze", 0, kMaxInt)) : 0;
    t.init_from = o.value("init_from", std::string());
    t.patience = o.contains("patience") ? static_cast<int>(whole(o, "patience", 0, kMaxInt)) : 0;
    parse_lr_schedule(t.lr_schedule, t.warmup_epochs);  // throws on a garbled one
    for (auto r = j.at("run").begin(); r != j.at("run").end(); ++r)
      t.run_metadata[r.key()] = r.value().get<std::string>();
    RunState& st = s.run;
    st.epoch = static_cast<int>(whole(j, "epoch", 1, kMaxInt));
    st.position = whole(j, "position", 0, INT64_MAX);
    st.batches = whole(j, "batches", 0, INT64_MAX);
    st.loss_sum = real(j, "loss_sum", 0, 1e300);
    st.correct = whole(j, "correct", 0, INT64_MAX);
    st.seen = whole(j, "seen", 0, INT64_MAX);
    st.seconds = real(j, "seconds", 0, 1e300);
    st.best_loss = j.at("best_test_loss").is_null() ? INFINITY : real(j, "best_test_loss", 0, 1e300);
    st.best_epoch = static_cast<int>(whole(j, "best_epoch", 0, kMaxInt));
    st.stopped_early = j.value("stopped_early", false);
    auto number = [](const json& v) {
      if (v.is_null()) return static_cast<double>(NAN);
      if (!v.is_number()) throw std::runtime_error("a history entry is " + v.dump() + ", not a number");
      return v.get<double>();
    };
    for (const json& row : j.at("history")) {
      if (!row.is_array() || (row.size() != 7 && row.size() != 10) || !row[0].is_number_integer())
        throw std::runtime_error("a history row is not 7 or 10 numbers: " + row.dump().substr(0, 200));
      EpochMetrics m;
      m.epoch = static_cast<int>(std::clamp<int64_t>(row[0].get<int64_t>(), -1, kMaxInt));
      m.train_loss = number(row[1]);
      m.train_acc = number(row[2]);
      m.test_loss = number(row[3]);
      m.test_acc = number(row[4]);
      m.seconds = number(row[5]);
      m.images_per_s = number(row[6]);
      if (row.size() == 10) {
        m.lr = std::isnan(number(row[7])) ? 0 : number(row[7]);
        m.val_loss = number(row[8]);
        m.val_acc = number(row[9]);
      }
      st.history.push_back(m);
    }
    s.rng = j.at("rng").get<std::string>();
    if (j.contains("dropout_forwards")) {
      const json& counts = j.at("dropout_forwards");
      if (!counts.is_array()) throw std::runtime_error("'dropout_forwards' is not a list");
      s.dropout_forwards.emplace();
      for (const json& c : counts) {
        if (!c.is_number_unsigned() && !(c.is_number_integer() && c.get<int64_t>() >= 0))
          throw std::runtime_error("'dropout_forwards' holds " + c.dump() + ", not a count");
        s.dropout_forwards->push_back(c.get<uint64_t>());
      }
    }
    s.data_fingerprint = j.at("data_fingerprint").get<std::string>();
    // The fields must describe a position the run can really be at.
    const int done = static_cast<int>(st.history.size());
    bool consistent = t.epochs >= 1 && t.batch_size >= 1 && st.epoch == done + 1 && st.position >= 0 &&
                      st.batches >= 0 && st.seen == st.position && st.correct >= 0 && st.correct <= st.seen &&
                      st.best_epoch >= 0 && st.best_epoch <= done &&
                      (st.best_epoch == 0) == !std::isfinite(st.best_loss);
    for (int i = 0; i < done && consistent; ++i) consistent = st.history[static_cast<size_t>(i)].epoch == i + 1;
    if (!consistent) throw std::runtime_error("its fields contradict each other");
  } catch (const json::exception& e) {
    throw std::runtime_error(name + ": malformed training state: " + e.what());
  } catch (const std::invalid_argument& e) {
    throw std::runtime_error(name + ": malformed training state: " + e.what());
  } catch (const std::runtime_error& e) {
    throw std::runtime_error(name + ": malformed training state: " + e.what());
  }
  return s;
}

// The settings a resumed run must share with the one that started it.
void check_same_run(const fs::path& path, const TrainOptions& saved, const TrainOptions& now) {
  auto differ = [&](const char* what, const std::string& was, const std::string& is) {
    throw std::invalid_argument("train: cannot resume " + path.string() + " with another " + what + " (the run used " +
                                was + ", now " + is + ")");
  };
  if (expand_architecture(saved.arch) != expand_architecture(now.arch)) differ("architecture", saved.arch, now.arch);
  if (saved.batch_size != now.batch_size)
    differ("batch size", std::to_string(saved.batch_size), std::to_string(now.batch_size));
  if (saved.optimizer != now.optimizer) differ("optimizer", saved.optimizer, now.optimizer);
  if (saved.momentum != now.momentum) differ("momentum", short_number(saved.momentum), short_number(now.momentum));
  if (saved.weight_decay != now.weight_decay)
    differ("weight decay", short_number(saved.weight_decay), short_number(now.weight_decay));
  if (saved.seed != now.seed) differ("seed", std::to_string(saved.seed), std::to_string(now.seed));
  if (saved.normalize != now.normalize)
    differ("normalisation setting", saved.normalize ? "--normalize" : "none", now.normalize ? "--normalize" : "none");
  if (parse_augmentation(saved.augment).text() != parse_augmentation(now.augment).text())
    differ("--augment", "'" + saved.augment + "'", "'" + now.augment + "'");
  if (saved.lr_schedule != now.lr_schedule)
    differ("lr schedule", "'" + saved.lr_schedule + "'", "'" + now.lr_schedule + "'");
  if (saved.warmup_epochs != now.warmup_epochs)
    differ("warm-up", std::to_string(saved.warmup_epochs), std::to_string(now.warmup_epochs));
  if (saved.freeze != now.freeze) differ("--freeze", std::to_string(saved.freeze), std::to_string(now.freeze));
  if (saved.clip_grad_norm != now.clip_grad_norm)
    differ("--clip-grad-norm", short_number(saved.clip_grad_norm), short_number(now.clip_grad_norm));
}

// ---- several processes (train/distributed.h) ----

// --threads is per process; 0 shares this host's cores among its processes
// (unless the launcher already bound each to fewer, e.g. mpirun's --bind-to core).
int threads_per_rank(int asked) {
  if (asked > 0 || distributed::local_size() <= 1) return asked;
  set_num_threads(0);
  const int usable = num_threads(), host = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  return usable < host ? usable : std::max(1, host / distributed::local_size());
}

// A checksum of the weights (FNV-1a over their bytes): every rank must start from the same ones.
std::string weights_checksum(Sequential& model) {
  uint64_t h = 1469598103934665603ull;
  const auto values = model.flat_values();
  const auto* bytes = reinterpret_cast<const unsigned char*>(values.data());
  for (size_t i = 0; i < values.size_bytes(); ++i) h = (h ^ bytes[i]) * 1099511628211ull;
  char buf[24];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

// Refuses to start unless every rank has rank 0's data and weights.
void check_same_start(const std::string& data_fingerprint, Sequential& model) {
  const std::string weights = weights_checksum(model);
  const std::string root = distributed::from_rank0(data_fingerprint + " " + weights);
  distributed::on_all_ranks([&] {
    const std::string root_data = root.substr(0, root.find(' ')), root_weights = root.substr(root.find(' ') + 1);
    if (root_data != data_fingerprint)
      throw std::invalid_argument("train: its data differ from rank 0's (fingerprint " + data_fingerprint +
                                  ", rank 0's " + root_data + "): every process must read the same data set");
    if (root_weights != weights)
      throw std::invalid_argument("train: its starting weights differ from rank 0's (checksum " + weights +
                                  ", rank 0's " + root_weights + ")");
  });
}

// What the ranks add up after each step's backward, in one all-reduce: the
// gradient buffer, then the batch's loss sum, its correct count and the stop votes.
struct StepSums {
  double loss_sum = 0;
  int64_t correct = 0;
  bool stop = false;
};
StepSums sum_step(std::span<float> grads, std::vector<float>& wire, double loss_sum, int64_t correct, bool stop) {
  const size_t p = grads.size();
  wire.resize(p + 3);
  std::copy(grads.begin(), grads.end(), wire.begin());
  wire[p] = static_cast<float>(loss_sum);
  wire[p + 1] = static_cast<float>(correct);  // exact below 2^24 images a batch
  wire[p + 2] = stop ? 1.0f : 0.0f;
  distributed::sum(std::span<float>(wire), "gradient all-reduce");
  std::copy(wire.begin(), wire.begin() + static_cast<std::ptrdiff_t>(p), grads.begin());
  return {wire[p], static_cast<int64_t>(wire[p + 1]), wire[p + 2] > 0};
}

// One vote: true on every rank when any rank asks to stop.
bool any_rank(bool vote) {
  int64_t votes[1] = {vote ? 1 : 0};
  distributed::sum(std::span<int64_t>(votes), "stop vote");
  return votes[0] > 0;
}

}  // namespace

ResumeState read_resume_state(const fs::path& last_checkpoint) {
  const SafetensorsFile file = read_safetensors(last_checkpoint);
  SavedState saved = parse_train_state(last_checkpoint, file.metadata);
  ResumeState r;
  r.options = std::move(saved.options);
  r.options.out_dir = last_checkpoint.parent_path().empty() ? fs::path(".") : last_checkpoint.parent_path();
  r.epoch = saved.run.epoch;
  r.batches_done = saved.run.batches;
  r.history = std::move(saved.run.history);
  r.stopped_early = saved.run.stopped_early;
  return r;
}

std::vector<EpochMetrics> train(const DataSplit& data, const TrainOptions& o, const std::vector<EpochHook>& hooks) {
  using Clock = std::chrono::steady_clock;
  const int ranks = distributed::size();
  const bool root = distributed::rank() == 0;
  Rng rng(o.seed);
  Sequential model;
  std::unique_ptr<Optimizer> optimizer;
  int64_t frozen = 0;
  const LrSchedule schedule = parse_lr_schedule(o.lr_schedule, o.warmup_epochs);
  int horizon = o.schedule_epochs > 0 ? o.schedule_epochs : o.epochs;
  const bool validating = data.val.count > 0;
  std::optional<InitReport> init;
  // Every checkpoint says where the run's first weights came from.
  std::map<std::string, std::string> checkpoint_metadata = o.checkpoint_metadata;
  if (!o.init_from.empty()) checkpoint_metadata["init_from"] = o.init_from.string();
  Augmentation augmentation;
  ModelInfo info;
  Normalization norm;
  std::string data_fingerprint;
  RunState st;
  // Whatever can fail before the first step fails on every rank together (naming the rank).
  distributed::on_all_ranks([&] {
    validate(data, o);
    augmentation = parse_augmentation(o.augment);
    if (!augmentation.empty()) checkpoint_metadata["augment"] = augmentation.text();
    if (o.batch_size < ranks)
      throw std::invalid_argument("train: the batch size " + std::to_string(o.batch_size) + " is smaller than the " +
                                  std::to_string(ranks) + " processes: each needs at least one image of every batch");
    set_num_threads(threads_per_rank(o.threads));

    // Weights from the seed (or --init); the shuffle order from (seed, epoch) inside the loader.
    model = build_model(o.arch, data.train.input_shape(), data.train.num_classes(), &rng);
    frozen = frozen_prefix(model, o.freeze);
    optimizer = make_optimizer(model, o, frozen);
    if (!o.init_from.empty() && o.resume_from.empty()) init = init_weights_from(model, o.init_from);

    info.arch = model.spec();
    info.input_shape = data.train.input_shape();
    info.class_names = data.train.class_names;
    info.preprocessing = data.preprocessing;
    if (o.normalize) info.preprocessing.normalization = compute_normalization(data.train);
    info.dataset = data.name;
    norm = info.preprocessing.normalization;
    data_fingerprint = fingerprint(data);

    if (!o.resume_from.empty()) {
      const fs::path& path = o.resume_from;
      LoadedModel saved = load_checkpoint(path);
      SavedState state = parse_train_state(path, saved.metadata);
      check_same_run(path, state.options, o);
      if (state.data_fingerprint != data_fingerprint)
        throw std::invalid_argument("train: cannot resume " + path.string() +
                                    ": the data differ from the data the run started with (fingerprint " +
                                    data_fingerprint + ", the run's " + state.data_fingerprint + ")");
      if (saved.model.spec() != model.spec() || saved.model.parameter_count() != model.parameter_count())
        throw std::invalid_argument("train: cannot resume " + path.string() + ": its model '" + saved.model.spec() +
                                    "' is not '" + model.spec() + "'");
      if (state.run.position > data.train.count)
        throw std::invalid_argument("train: cannot resume " + path.string() + ": position " +
                                    std::to_string(state.run.position) + " lies past the " +
                                    std::to_string(data.train.count) + " training images");
      if (state.run.stopped_early)
        throw std::invalid_argument("train: the run in " + path.string() + " stopped early after epoch " +
                                    std::to_string(state.run.epoch - 1) + " (--patience " +
                                    std::to_string(state.options.patience) + "); there is nothing to continue");
      if (state.run.epoch > o.epochs)
        throw std::invalid_argument("train: the run in " + path.string() + " already finished its " +
                                    std::to_string(state.run.epoch - 1) +
                                    " epochs; ask for more epochs to train further");
      // The schedule keeps the length the run started with.
      if (state.options.schedule_epochs > 0) horizon = state.options.schedule_epochs;
      if (schedule.kind == LrSchedule::Kind::onecycle && o.epochs > horizon)
        throw std::invalid_argument("train: the onecycle schedule of " + path.string() + " spans " +
                                    std::to_string(horizon) + " epochs; it cannot run past them");
      std::copy(saved.model.flat_values().begin(), saved.model.flat_values().end(), model.flat_values().begin());
      const auto saved_buffers = saved.model.buffers();  // BatchNorm's running statistics
      const auto buffers = model.buffers();
      for (size_t b = 0; b < buffers.size() && b < saved_buffers.size(); ++b)
        std::copy_n(saved_buffers[b]->value, buffers[b]->numel(), buffers[b]->value);
      load_optimizer_state(path, *optimizer);
      rng.set_state(state.rng);
      if (state.dropout_forwards) {  // the masks continue where they stopped
        std::vector<Dropout*> dropouts;
        for (size_t i = 0; i < model.size(); ++i)
          if (auto* d = dynamic_cast<Dropout*>(&model[i])) dropouts.push_back(d);
        if (state.dropout_forwards->size() != dropouts.size())
          throw std::invalid_argument("train: cannot resume " + path.string() + ": its state counts " +
                                      std::to_string(state.dropout_forwards->size()) +
                                      " Dropout layers, the model has " + std::to_string(dropouts.size()));
        for (size_t d = 0; d < dropouts.size(); ++d) dropouts[d]->set_forward_count((*state.dropout_forwards)[d]);
      }
      st = std::move(state.run);
    }

    // A batch (the last one included) that BatchNorm cannot train on is refused before anything is written.
    model.train();
    model.check_training_batch(std::min<int64_t>(o.batch_size, data.train.count), data.train.input_shape());
    if (data.train.count % o.batch_size)
      model.check_training_batch(data.train.count % o.batch_size, data.train.input_shape());

    std::error_code ec;
    if (root) fs::create_directories(o.out_dir, ec);
    if (ec) throw std::runtime_error("cannot create the output folder " + o.out_dir.string() + ": " + ec.message());

    // A kill between last.safetensors and metrics.csv at an epoch's end leaves the
    // csv one row short; the resume state has every row.
    if (root && !o.resume_from.empty() && !st.history.empty()) write_metrics_csv(o.out_dir / "metrics.csv", st.history);
  });
  check_same_start(data_fingerprint, model);

  // Augmentation applies to the training images alone (evaluation reads the data sets as they are).
  DataLoader loader(data.train, o.batch_size, /*shuffle=*/true, o.seed, norm, augmentation);
  loader.shard(distributed::rank(), ranks);
  TrainObserver none;
  TrainObserver& observer = o.observer && root ? *o.observer : none;
  TrainStart start{o,        data,      info, model.parameter_count(), num_threads(), loader.batches_per_epoch(),
                   st.epoch, st.batches};
  start.init = init ? &*init : nullptr;
  start.trainable = model.parameter_count() - frozen;
  start.processes = ranks;
  observer.on_start(start);

  const fs::path last_path = o.out_dir / "last.safetensors";
  const int threads_used = num_threads();
  // last.safetensors: the weights, the optimizer state and the run's position.
  auto save_last = [&] {
    if (!root) return;
    auto extra = checkpoint_metadata;
    extra[kTrainStateKey] = train_state_text(o, threads_used, horizon, st, rng, data_fingerprint, model);
    save_checkpoint(last_path, model, info, optimizer.get(), extra);
  };
  auto stop = [&](int epoch, int64_t batches) { return o.stop_requested && o.stop_requested(epoch, batches); };
  std::vector<float> wire;  // the step's all-reduce buffer (several processes)
  auto diverged = [&](const std::string& what, int epoch, int64_t batch) {
    std::string kept = st.best_epoch > 0 ? "best.safetensors (epoch " + std::to_string(st.best_epoch) +
                                               ") and last.safetensors (end of epoch " +
                                               std::to_string(static_cast<int>(st.history.size())) + ") are kept"
                                         : "nothing was saved";
    throw TrainingDiverged("training diverged: " + what + "; " + kept + "; try a smaller learning rate than " +
                               short_number(o.lr),
                           epoch, batch, static_cast<int>(st.history.size()));
  };

  const int k = data.train.num_classes();
  Tensor images, dlogits;
  std::vector<int32_t> labels;
  const std::span<float> frozen_grads = model.flat_grads().first(static_cast<size_t>(frozen));
  const std::span<float> trainable_grads = model.flat_grads().subspan(static_cast<size_t>(frozen));
  // With a validation split, the test set is scored only for a new best and at the end.
  Evaluation test;
  auto evaluate_test = [&](int epoch, EpochMetrics& m) {
    test = evaluate_on_all_ranks(model, data.test, norm);
    if (!std::isfinite(test.loss))
      diverged("the test loss after epoch " + std::to_string(epoch) + " is " + loss_text(test.loss), epoch, 0);
    m.test_loss = test.loss;
    m.test_acc = test.accuracy;
  };

  for (int epoch = st.epoch; epoch <= o.epochs; ++epoch) {
    const auto epoch_start = Clock::now();
    observer.on_epoch_start(epoch);
    loader.start_epoch(epoch - 1);
    if (epoch != st.epoch || st.position == 0) {
      st.epoch = epoch;
      st.position = st.batches = st.correct = st.seen = 0;
      st.loss_sum = st.seconds = 0;
    }
    loader.seek(st.position);  // a resumed epoch continues where it stopped
    model.train();             // batch statistics and dropout (evaluate switches to evaluation mode and back)
    const double earlier_seconds = st.seconds;
    auto train_seconds = [&] {
      return earlier_seconds + std::chrono::duration<double>(Clock::now() - epoch_start).count();
    };
    const double epoch_lr = schedule.lr(o.lr, epoch - 1, 0, horizon, loader.batches_per_epoch());
    while (loader.next(images, labels)) {
      const int n = static_cast<int>(labels.size());  // this rank's part of the batch
      const int64_t whole = loader.batch_size();
      const auto lr = static_cast<float>(schedule.lr(o.lr, epoch - 1, st.batches, horizon, loader.batches_per_epoch()));
      optimizer->set_lr(lr);
      optimizer->zero_grad();
      double loss = 0;  // mean over the whole batch
      int64_t hits = 0;
      bool stopping = stop(epoch, st.batches + 1);
      auto check_loss = [&] {
        if (!std::isfinite(loss))
          diverged("the training loss is " + loss_text(loss) + " at epoch " + std::to_string(epoch) + ", batch " +
                       std::to_string(st.batches + 1) + " of " + std::to_string(loader.batches_per_epoch()),
                   epoch, st.batches + 1);
      };
      if (ranks == 1) {
        const Tensor& logits = model.forward(images);
        dlogits.resize(logits.shape());
        loss = kernels::softmax_cross_entropy(n, k, logits.data(), labels.data(), dlogits.data(),
                                              kernels::Reduction::Mean, &hits);
        check_loss();
        model.backward(dlogits);
      } else {
        // Each part's gradient is its sum over images / the whole batch's size,
        // so the parts add up to the single process's mean (a part of a short
        // last batch may be empty and adds zeros).
        double part_sum = 0;
        if (n > 0) {
          const Tensor& logits = model.forward(images);
          dlogits.resize(logits.shape());
          part_sum = kernels::softmax_cross_entropy(n, k, logits.data(), labels.data(), dlogits.data(),
                                                    kernels::Reduction::Sum, &hits);
          const float scale = static_cast<float>(1.0 / static_cast<double>(whole));
          for (int64_t i = 0; i < dlogits.numel(); ++i) dlogits.data()[i] *= scale;
          model.backward(dlogits);
        }
        const StepSums sums = sum_step(model.flat_grads(), wire, part_sum, hits, stopping);
        loss = sums.loss_sum / static_cast<double>(whole);
        hits = sums.correct;
        stopping = sums.stop;
        check_loss();
      }
      std::fill(frozen_grads.begin(), frozen_grads.end(), 0.0f);                    // frozen layers take no gradient
      if (o.clip_grad_norm > 0) clip_grad_norm(trainable_grads, o.clip_grad_norm);  // of the summed gradient
      optimizer->step();
      st.loss_sum += loss * static_cast<double>(whole);
      st.correct += hits;
      st.seen += whole;
      st.position = loader.position();
      ++st.batches;
      observer.on_batch(epoch, st.batches, st.loss_sum / static_cast<double>(st.seen),
                        static_cast<double>(st.correct) / static_cast<double>(st.seen));
      if (stopping) {
        st.seconds = train_seconds();
        // The weights now come from partway through `epoch`: the last finished
        // epoch's number, no metrics (they would describe other weights).
        info.epoch = epoch - 1;
        info.metrics.clear();
        save_last();
        throw TrainingInterrupted("training stopped in epoch " + std::to_string(epoch) + " after batch " +
                                      std::to_string(st.batches) + " of " + std::to_string(loader.batches_per_epoch()) +
                                      "; saved " + last_path.string(),
                                  last_path, epoch, st.batches);
      }
    }
    const double seconds_training = train_seconds();

    observer.on_evaluating(epoch);
    EpochMetrics m;
    m.epoch = epoch;
    m.train_loss = st.loss_sum / static_cast<double>(st.seen);
    m.train_acc = static_cast<double>(st.correct) / static_cast<double>(st.seen);
    m.test_loss = m.test_acc = NAN;
    m.lr = epoch_lr;
    if (validating) {
      const Evaluation val = evaluate_on_all_ranks(model, data.val, norm);
      if (!std::isfinite(val.loss))
        diverged("the validation loss after epoch " + std::to_string(epoch) + " is " + loss_text(val.loss), epoch, 0);
      m.val_loss = val.loss;
      m.val_acc = val.accuracy;
    } else {
      evaluate_test(epoch, m);
    }
    const double loss = validating ? m.val_loss : m.test_loss;
    const bool new_best = loss < st.best_loss;
    const int waited = new_best ? 0 : static_cast<int>(st.history.size()) + 1 - st.best_epoch;
    const bool stopping_early = o.patience > 0 && waited >= o.patience && epoch < o.epochs;
    if (validating && (new_best || epoch == o.epochs || stopping_early)) evaluate_test(epoch, m);
    m.seconds = earlier_seconds + std::chrono::duration<double>(Clock::now() - epoch_start).count();
    m.images_per_s = static_cast<double>(st.seen) / seconds_training;
    st.history.push_back(m);

    info.epoch = epoch;
    info.metrics = {{"train_loss", m.train_loss},
                    {"train_acc", m.train_acc},
                    {"test_loss", m.test_loss},
                    {"test_acc", m.test_acc},
                    {"seconds", m.seconds},
                    {"images_per_s", m.images_per_s},
                    {"lr", m.lr}};
    if (validating) info.metrics.insert({{"val_loss", m.val_loss}, {"val_acc", m.val_acc}});
    if (new_best) {
      st.best_loss = loss;
      st.best_epoch = epoch;
      if (root) save_checkpoint(o.out_dir / "best.safetensors", model, info, nullptr, checkpoint_metadata);
    }
    st.stopped_early = stopping_early;
    // The next epoch starts from here: last carries the optimizer state and the position.
    st.epoch = epoch + 1;
    st.position = st.batches = st.correct = st.seen = 0;
    st.loss_sum = st.seconds = 0;
    save_last();
    if (root) write_metrics_csv(o.out_dir / "metrics.csv", st.history);
    observer.on_epoch(m, new_best);
    if (stopping_early) observer.on_early_stop(epoch, waited);

    // Every rank evaluates its share (a collective), before rank 0 alone runs the hooks.
    if (validating && test.count == 0)
      test = evaluate_on_all_ranks(model, data.test, norm);  // for a resumed run's hooks
    const EpochEvent event{o.out_dir, st.history, new_best, model, info, test, data, stopping_early};
    if (root)
      for (const EpochHook& hook : hooks) hook(event);
    if (stopping_early) break;
    if (epoch < o.epochs && (ranks == 1 ? stop(epoch + 1, 0) : any_rank(stop(epoch + 1, 0))))
      throw TrainingInterrupted("training stopped after epoch " + std::to_string(epoch) + "; saved " +
                                    last_path.string(),
                                last_path, epoch + 1, 0);
  }

  const std::vector<EpochMetrics>& history = st.history;
  observer.on_end(history[static_cast<size_t>(std::max(st.best_epoch, 1) - 1)], o.out_dir / "best.safetensors");
  return history;
}

}  // namespace lenet

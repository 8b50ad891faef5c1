// The training run: epochs of minibatch SGD/Adam on cross-entropy, evaluation,
// the best-on-lowest-test-loss checkpoint, metrics.csv, and hooks through which
// reports (plots, ONNX, gallery) follow each epoch.
#pragma once

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include "lenet/checkpoint.h"
#include "lenet/data.h"
#include "lenet/nn.h"

namespace lenet {

struct EpochMetrics {
  int epoch = 0;                                                      // 1-based
  double train_loss = 0, train_acc = 0, test_loss = 0, test_acc = 0;  // accuracies in [0, 1]
  double seconds = 0, images_per_s = 0;
  double lr = 0;  // the learning rate of the epoch's first batch (0: not recorded)
  // With a validation split: its loss and accuracy; the test columns are then
  // NaN except for the epochs that set a new best and the last one.
  double val_loss = NAN, val_acc = NAN;
};

// metrics.csv: header "epoch,train_loss,train_acc,test_loss,test_acc,seconds,images_per_s",
// then ",lr" when some epoch records its learning rate and ",val_loss,val_acc"
// when some epoch has a validation loss (read back when present); one row per
// epoch, NaN written "nan". The reader throws std::runtime_error naming the file
// and line on a missing header, a short row or a non-number.
void write_metrics_csv(const std::filesystem::path& path, const std::vector<EpochMetrics>& history);
std::vector<EpochMetrics> read_metrics_csv(const std::filesystem::path& path);

struct Evaluation {
  double loss = 0, accuracy = 0;  // mean cross-entropy, fraction correct
  int64_t count = 0;
  int classes = 0;
  std::vector<int64_t> confusion;  // classes × classes, [true][predicted]
  std::vector<double> per_class_accuracy() const;
};
Evaluation evaluate(Sequential& model, const Dataset& data, const Normalization& norm, int batch_size = 256);

class TrainObserver;

struct TrainOptions {
  std::string arch = "lenet-max";
  int epochs = 10;
  int batch_size = 256;
  std::string optimizer = "adam";  // "sgd", "adam" or "adamw"
  float lr = 1e-3f;
  float momentum = 0.0f;
  float weight_decay = 0.0f;
  uint64_t seed = 0;
  int threads = 0;         // 0: all cores
  bool normalize = false;  // mean/std from the training set, stored with the model
  // Training images only, per image and epoch (lenet/augment.h's text, e.g.
  // "crop:2,flip"); empty: none. Recorded as "augment" in every checkpoint.
  std::string augment;
  std::filesystem::path out_dir;
  // ---- schedules, clipping, fine-tuning, early stopping (all off by default) ----
  std::string lr_schedule;  // parse_lr_schedule's text (lenet/optim.h); empty: constant lr
  int warmup_epochs = 0;
  // The epochs cosine and onecycle span; 0: `epochs`. A resumed run keeps the
  // horizon of its first session, so more epochs do not reshape the schedule.
  int schedule_epochs = 0;
  float clip_grad_norm = 0;  // > 0: clip_grad_norm (lenet/optim.h) before every step
  // The first `freeze` layers keep their weights: the optimizer holds neither
  // their parameters nor state, and their gradients are zeroed before each step.
  int freeze = 0;
  // Starting weights (init_weights_from); ignored when resuming (the weights
  // come from the checkpoint). Recorded as "init_from" in every checkpoint.
  std::filesystem::path init_from;
  // > 0: stop after this many epochs without a lower validation loss (or test
  // loss without a validation split).
  int patience = 0;

  // Told what the run does as it goes (train() itself prints nothing); not
  // owned, may be null.
  TrainObserver* observer = nullptr;

  // ---- interruption and resuming ----
  // Polled after every batch with the epoch and the batches done in it, and
  // between epochs (after the files and hooks) with (next epoch, 0). When it
  // returns true, the run writes everything needed to continue into
  // OUT/last.safetensors and throws TrainingInterrupted. The CLI answers
  // SIGINT/SIGTERM through it.
  std::function<bool(int epoch, int64_t batches_done)> stop_requested;
  // Continue the run saved in this last.safetensors (read_resume_state gives
  // back the options it ran with). The model, the optimizer state, the batch
  // position, the metrics and the best loss so far all come from it; the same
  // data (checked by a fingerprint), architecture, batch size, optimizer, seed
  // and normalisation are required. `epochs`, `lr` and `threads` may change;
  // with the same thread count the result is bit-identical to a run that was
  // never interrupted.
  std::filesystem::path resume_from;
  // The caller's notes, kept with the resume state (the CLI records where its
  // data came from, so `lenet train --resume` needs no other flags).
  std::map<std::string, std::string> run_metadata;
  // Notes stored in the metadata of every checkpoint the run writes (best and
  // last): the CLI records the held-out split of an image folder without
  // test/, so `lenet eval` and `lenet plot` test on the same images.
  std::map<std::string, std::string> checkpoint_metadata;
};

// What init_weights_from did, for the run's one line about it.
struct InitReport {
  std::filesystem::path source;
  int64_t copied = 0;  // tensors copied
  // Non-empty when the file's classifier had another class count: e.g.
  // "11.weight [10, 84] and 11.bias [10] (10 classes; this model has 4): re-initialised".
  std::string reinitialised;
};
// Copies every named tensor of `model` (its parameters and BatchNorm's running
// statistics, so the first evaluation reproduces the source's outputs) from a
// .safetensors file (ours, or a PyTorch state_dict saved with safetensors
// under nn.Sequential names) or an ONNX file (ours or PyTorch's). When only
// the last layer's output count differs (another class count), that layer
// keeps its fresh weights and the report says so. Any other difference throws std::invalid_argument naming
// the file, the tensor and both shapes (or the missing tensor); `model` is then
// unchanged. File problems throw FileError.
InitReport init_weights_from(Sequential& model, const std::filesystem::path& path);

// Thrown after a stop request once OUT/last.safetensors holds the resume state.
struct TrainingInterrupted : std::runtime_error {
  TrainingInterrupted(const std::string& what, std::filesystem::path saved_to, int at_epoch, int64_t after_batches)
      : std::runtime_error(what), checkpoint(std::move(saved_to)), epoch(at_epoch), batches_done(after_batches) {}
  std::filesystem::path checkpoint;  // the last.safetensors to resume from
  int epoch;                         // the epoch in progress (1-based)
  int64_t batches_done;              // batches of it already trained
};

// Thrown when a training loss (or a test loss) is NaN or infinite. Nothing of
// the diverging epoch is written: best.safetensors, last.safetensors and
// metrics.csv stay as the last good epoch left them.
struct TrainingDiverged : std::runtime_error {
  TrainingDiverged(const std::string& what, int at_epoch, int64_t at_batch, int epochs_completed)
      : std::runtime_error(what), epoch(at_epoch), batch(at_batch), last_good_epoch(epochs_completed) {}
  int epoch;
  int64_t batch;        // 1-based batch of `epoch`; 0 when the test loss diverged
  int last_good_epoch;  // epochs completed (0: none)
};

// What OUT/last.safetensors says about the run it belongs to.
struct ResumeState {
  TrainOptions options;      // as the run was started; threads: the count it ran with; out_dir: the file's folder
  int epoch = 1;             // the epoch to continue (1-based); options.epochs + 1 when the run is complete
  int64_t batches_done = 0;  // batches of that epoch already trained
  std::vector<EpochMetrics> history;  // the finished epochs
  bool stopped_early = false;         // patience ran out: more epochs would not run
  bool complete() const { return stopped_early || epoch > options.epochs; }
};
// Throws std::runtime_error naming the file when it is not a checkpoint that
// train() wrote with resume state (e.g. a best.safetensors, or an older file).
ResumeState read_resume_state(const std::filesystem::path& last_checkpoint);

// What a hook sees after an epoch's files (best/last checkpoint, metrics.csv) are written.
struct EpochEvent {
  const std::filesystem::path& out_dir;
  const std::vector<EpochMetrics>& history;  // every epoch so far, this one last
  bool new_best;                             // this epoch wrote best.safetensors
  Sequential& model;                         // weights after this epoch
  const ModelInfo& info;
  // This epoch's test evaluation; with a validation split, the latest one (the
  // test set is scored only for a new best and at the end).
  const Evaluation& test;
  const DataSplit& data;
  // Early stopping ends the run after this epoch (the hooks still run for it).
  bool stopping_early = false;
};
using EpochHook = std::function<void(const EpochEvent&)>;

// What train() tells its observer, in this order: on_start once, then per
// epoch on_epoch_start, on_batch after every batch, on_evaluating before the
// test pass and on_epoch once the epoch's files are written (before the
// hooks); on_end after the last epoch. Not called after an exception. Each
// member does nothing unless overridden. With several processes only rank 0's
// observer is told, and only rank 0 runs the hooks and writes files.
struct TrainStart {
  const TrainOptions& options;
  const DataSplit& data;
  const ModelInfo& info;  // the model's input shape, classes, preprocessing (normalisation)
  int64_t parameters = 0;
  int threads = 0;  // the count the run uses
  int64_t batches_per_epoch = 0;
  // Resuming (options.resume_from set): the epoch it continues and the batches of it already trained.
  int epoch = 1;
  int64_t batches_done = 0;
  const InitReport* init = nullptr;  // what --init did (null without it, and when resuming)
  int64_t trainable = 0;             // parameters the optimizer updates (all unless freeze)
  int processes = 1;                 // ranks training together (mpirun -np N); `threads` is per process
};
class TrainObserver {
 public:
  virtual ~TrainObserver() = default;
  virtual void on_start(const TrainStart& start) {}
  virtual void on_epoch_start(int epoch) {}  // 1-based
  // Running mean loss and accuracy of the epoch's batches so far.
  virtual void on_batch(int epoch, int64_t batches_done, double loss, double accuracy) {}
  virtual void on_evaluating(int epoch) {}
  virtual void on_epoch(const EpochMetrics& metrics, bool new_best) {}
  // Patience ran out after `epoch`: `waited` epochs without a better loss.
  virtual void on_early_stop(int epoch, int waited) {}
  // The best epoch (lowest validation loss with a validation split, else the
  // lowest test loss), saved as best_checkpoint.
  virtual void on_end(const EpochMetrics& best, const std::filesystem::path& best_checkpoint) {}
};

// Runs the whole training; returns the per-epoch metrics.
std::vector<EpochMetrics> train(const DataSplit& data, const TrainOptions& options,
                                const std::vector<EpochHook>& hooks = {});

}  // namespace lenet

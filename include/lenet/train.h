// The training run: epochs of minibatch SGD/Adam on cross-entropy, evaluation,
// the best-on-lowest-test-loss checkpoint, metrics.csv, and hooks through which
// reports (plots, ONNX, gallery) follow each epoch.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "lenet/checkpoint.h"
#include "lenet/data.h"
#include "lenet/nn.h"

namespace lenet {

struct EpochMetrics {
  int epoch = 0;  // 1-based
  double train_loss = 0, train_acc = 0, test_loss = 0, test_acc = 0;  // accuracies in [0, 1]
  double seconds = 0, images_per_s = 0;
};

// metrics.csv: header "epoch,train_loss,train_acc,test_loss,test_acc,seconds,images_per_s",
// then one row per epoch. The reader throws std::runtime_error naming the file
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

struct TrainOptions {
  std::string arch = "lenet-max";
  int epochs = 10;
  int batch_size = 256;
  std::string optimizer = "adam";  // "sgd" or "adam"
  float lr = 1e-3f;
  float momentum = 0.0f;
  float weight_decay = 0.0f;
  uint64_t seed = 0;
  int threads = 0;  // 0: all cores
  bool normalize = false;  // mean/std from the training set, stored with the model
  std::filesystem::path out_dir;
  bool progress = false;  // live progress bar (when stdout is a terminal)
};

// What a hook sees after an epoch's files (best/last checkpoint, metrics.csv) are written.
struct EpochEvent {
  const std::filesystem::path& out_dir;
  const std::vector<EpochMetrics>& history;  // every epoch so far, this one last
  bool new_best;                             // this epoch wrote best.safetensors
  Sequential& model;                         // weights after this epoch
  const ModelInfo& info;
  const Evaluation& test;                    // this epoch's test evaluation
  const DataSplit& data;
};
using EpochHook = std::function<void(const EpochEvent&)>;

// Runs the whole training; returns the per-epoch metrics.
std::vector<EpochMetrics> train(const DataSplit& data, const TrainOptions& options,
                                const std::vector<EpochHook>& hooks = {});

}  // namespace lenet

// Checkpoints: safetensors files (a JSON header of names, dtypes, shapes and
// offsets, then raw little-endian float32) whose __metadata__ carries all that
// is needed to rebuild the model from the file alone.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "lenet/data.h"
#include "lenet/nn.h"
#include "lenet/optim.h"

namespace lenet {

// Everything about a trained model except its weights.
struct ModelInfo {
  std::string arch;                 // canonical spec text (Sequential::spec())
  Shape input_shape;                // [C, H, W]
  std::vector<std::string> class_names;
  Preprocessing preprocessing;      // grayscale, resize, normalisation
  std::string dataset;              // data set name
  int epoch = 0;                    // 1-based epoch the weights come from (0: untrained)
  std::map<std::string, double> metrics;  // train_loss, train_acc, test_loss, test_acc, ...
};

struct LoadedModel {
  ModelInfo info;
  Sequential model;
};

// Writes the model (and, when given, the optimizer's state under "optim.*"
// tensors plus `extra` metadata strings, for resuming) atomically.
void save_checkpoint(const std::filesystem::path& path, Sequential& model, const ModelInfo& info,
                     Optimizer* optimizer = nullptr, const std::map<std::string, std::string>& extra = {});

// Reads a checkpoint and rebuilds its model. Throws std::runtime_error naming
// the file and the problem (truncated, garbled header, absurd sizes, weights
// that do not fit the architecture).
LoadedModel load_checkpoint(const std::filesystem::path& path);

// A checkpoint or an ONNX file, told apart by content.
LoadedModel load_model(const std::filesystem::path& path);

}  // namespace lenet

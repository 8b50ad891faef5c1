// Checkpoints: safetensors files (a JSON header of names, dtypes, shapes and
// offsets, then raw little-endian float32) whose __metadata__ carries all that
// is needed to rebuild the model from the file alone.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "lenet/data.h"
#include "lenet/nn.h"
#include "lenet/optim.h"

namespace lenet {

// Everything about a trained model except its weights.
struct ModelInfo {
  std::string arch;   // canonical spec text (Sequential::spec())
  Shape input_shape;  // [C, H, W]
  std::vector<std::string> class_names;
  Preprocessing preprocessing;            // grayscale, resize, normalisation
  std::string dataset;                    // data set name
  int epoch = 0;                          // 1-based epoch the weights come from (0: untrained)
  std::map<std::string, double> metrics;  // train_loss, train_acc, test_loss, test_acc, ...
};

struct LoadedModel {
  ModelInfo info;
  Sequential model;
  std::map<std::string, std::string> metadata;  // the file's raw __metadata__ (incl. `extra` keys)
};

// Writes the model (and, when given, the optimizer's state under "optim.*"
// tensors plus `extra` metadata strings, for resuming) atomically.
void save_checkpoint(const std::filesystem::path& path, Sequential& model, const ModelInfo& info,
                     Optimizer* optimizer = nullptr, const std::map<std::string, std::string>& extra = {});

// Reads a checkpoint and rebuilds its model. Throws FileError (lenet/error.h) naming
// the file and the problem (truncated, garbled header, absurd sizes, weights
// that do not fit the architecture).
LoadedModel load_checkpoint(const std::filesystem::path& path);
// The same from the file's bytes in memory; `name` stands for the file in messages.
LoadedModel decode_checkpoint(std::string_view bytes, const std::string& name);

// A checkpoint or an ONNX file, told apart by content.
LoadedModel load_model(const std::filesystem::path& path);

// Restores the "optim.*" tensors and step count that save_checkpoint wrote for
// `optimizer` (resuming a run). Throws naming the file when the checkpoint has
// no state for this optimizer or its sizes differ.
void load_optimizer_state(const std::filesystem::path& path, Optimizer& optimizer);

// ---- the safetensors container (https://github.com/huggingface/safetensors) ----
//   8 bytes: N, little-endian uint64
//   N bytes: JSON {"name": {"dtype": "F32", "shape": [...], "data_offsets": [begin, end]}, ...,
//                  (dtype I64 for counters: read as float)
//                  "__metadata__": {"key": "value", ...}}, padded with spaces
//   the tensors' bytes, offsets relative to the end of the header, contiguous
struct NamedTensor {
  std::string name;
  Shape shape;
  std::span<const float> values;
  bool int64 = false;  // written as I64 (whole numbers: PyTorch's num_batches_tracked)
};
struct SafetensorsFile {
  std::map<std::string, std::string> metadata;
  std::vector<std::pair<std::string, Tensor>> tensors;  // in the order of their offsets
  const Tensor* find(const std::string& name) const;
};
std::string encode_safetensors(const std::vector<NamedTensor>& tensors,
                               const std::map<std::string, std::string>& metadata);
// Validates everything before allocating: header length against the file
// size, JSON, dtypes, shapes, and offsets that tile the data exactly.
SafetensorsFile decode_safetensors(std::string_view bytes, const std::string& name);
SafetensorsFile read_safetensors(const std::filesystem::path& path);

}  // namespace lenet

// Any saved model, told apart by content: safetensors checkpoints for now
// (ONNX files join here).
#include "lenet/checkpoint.h"

namespace lenet {

LoadedModel load_model(const std::filesystem::path& path) { return load_checkpoint(path); }

}  // namespace lenet

// Any saved model, told apart by content: a safetensors checkpoint starts with
// its header length and '{', an ONNX ModelProto with its ir_version field.
#include <fstream>

#include "lenet/checkpoint.h"
#include "lenet/onnx.h"

namespace lenet {

LoadedModel load_model(const std::filesystem::path& path) {
  std::string head(16, '\0');
  std::ifstream in(path, std::ios::binary);
  in.read(head.data(), static_cast<std::streamsize>(head.size()));
  head.resize(static_cast<size_t>(in.gcount()));
  const bool safetensors = head.size() > 8 && head[8] == '{';
  if (!safetensors && (looks_like_onnx(head) || path.extension() == ".onnx")) return import_onnx(path);
  // Everything else, missing files included, gets the checkpoint reader's message.
  return load_checkpoint(path);
}

}  // namespace lenet

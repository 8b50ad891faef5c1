// Any saved model, told apart by content: a safetensors checkpoint starts with
// its header length and '{', an ONNX ModelProto with its ir_version field.
#include <fstream>

#include "lenet/checkpoint.h"
#include "lenet/error.h"
#ifdef LENET_HAVE_ONNX
#include "lenet/onnx.h"
#endif

namespace lenet {

LoadedModel load_model(const std::filesystem::path& path) {
  std::string head(16, '\0');
  std::ifstream in(path, std::ios::binary);
  in.read(head.data(), static_cast<std::streamsize>(head.size()));
  head.resize(static_cast<size_t>(in.gcount()));
  const bool safetensors = head.size() > 8 && head[8] == '{';
#ifdef LENET_HAVE_ONNX
  if (!safetensors && (looks_like_onnx(head) || path.extension() == ".onnx")) return import_onnx(path);
#else
  // The core-only build (LENET_CORE_ONLY, e.g. ARM64) has no ONNX reader.
  if (!safetensors && path.extension() == ".onnx")
    throw FileError(path,
                    "ONNX files need the full build (this one is LENET_CORE_ONLY); use the .safetensors checkpoint");
#endif
  // Everything else, missing files included, gets the checkpoint reader's message.
  return load_checkpoint(path);
}

}  // namespace lenet

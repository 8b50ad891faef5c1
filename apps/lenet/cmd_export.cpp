// `lenet export`: converts a saved model (checkpoint or ONNX file) to ONNX.
#include <cstdio>
#include <memory>

#include "commands.h"
#include "lenet/checkpoint.h"
#include "lenet/onnx.h"

namespace lenet::cli {

void add_export_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("export", "Convert a saved model to ONNX (for ONNX Runtime, OpenCV, TensorRT, ...)");
  auto model_path = std::make_shared<std::string>();
  auto onnx_path = std::make_shared<std::string>();
  auto opset = std::make_shared<int>(kOnnxDefaultOpset);
  cmd->add_option("--model", *model_path, "Checkpoint (.safetensors) or ONNX file")->required();
  cmd->add_option("--onnx", *onnx_path, "ONNX file to write (replaced atomically if it exists)")->required();
  cmd->add_option("--opset", *opset,
                  "ONNX opset (" + std::to_string(kOnnxMinOpset) + ".." + std::to_string(onnx_max_opset()) + ")")
      ->capture_default_str();
  cmd->callback([=] {
    if (*opset < kOnnxMinOpset || *opset > onnx_max_opset())
      throw UsageError("--opset " + std::to_string(*opset) + " is not supported (expected " +
                       std::to_string(kOnnxMinOpset) + ".." + std::to_string(onnx_max_opset()) + ")");
    if (onnx_path->empty()) throw UsageError("--onnx needs a file name");
    LoadedModel loaded = load_model(*model_path);
    export_onnx(*onnx_path, loaded.model, loaded.info, {*opset});
    std::printf("wrote %s (opset %d): %s, input [N, %lld, %lld, %lld], %zu classes\n", onnx_path->c_str(), *opset,
                loaded.model.spec().c_str(), static_cast<long long>(loaded.info.input_shape[0]),
                static_cast<long long>(loaded.info.input_shape[1]), static_cast<long long>(loaded.info.input_shape[2]),
                loaded.info.class_names.size());
  });
}

}  // namespace lenet::cli

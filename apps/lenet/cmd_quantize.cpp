// `lenet quantize`: post-training static quantization of a saved float model
// into an int8 ONNX file in QDQ form (lenet/quant.h), which `lenet eval`,
// `lenet predict`, the C API and ONNX Runtime all run.
#include <cstdio>
#include <filesystem>
#include <memory>

#include "commands.h"
#include "lenet/checkpoint.h"
#include "lenet/data.h"
#include "lenet/fileio.h"
#include "lenet/onnx.h"
#include "lenet/parallel.h"
#include "lenet/quant.h"

namespace lenet::cli {

namespace fs = std::filesystem;

void add_quantize_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("quantize", "Quantize a trained model to int8 (an ONNX file in QDQ form)");
  cmd->option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  auto model_path = std::make_shared<std::string>();
  auto out = std::make_shared<std::string>();
  auto data = std::make_shared<std::string>();
  auto calibration = std::make_shared<int64_t>(1000);
  auto method = std::make_shared<std::string>("minmax");
  auto opset = std::make_shared<int>(kOnnxInt8MinOpset);
  auto threads = std::make_shared<int>(0);
  auto reduce_range = std::make_shared<bool>(false);
  cmd->add_option("--model", *model_path, "Float model (.safetensors checkpoint or .onnx)")->required();
  cmd->add_option("--out", *out, "int8 ONNX file to write")->required();
  cmd->add_option("--data", *data,
                  "Data set folder whose training images calibrate the activations; default: Fashion-MNIST from " +
                      default_data_dir().string());
  cmd->add_option("--calibration", *calibration, "Training images that calibrate the activation ranges")
      ->capture_default_str();
  cmd->add_option("--method", *method,
                  "Activation ranges: minmax (all values kept) or percentile (the 0.01% extremes saturate)")
      ->capture_default_str();
  cmd->add_option("--opset", *opset, "ONNX opset (13 or newer: per-channel DequantizeLinear)")->capture_default_str();
  cmd->add_flag("--reduce-range", *reduce_range,
                "7-bit weights (-64..64): for ONNX Runtime on x86 CPUs without AVX-512 VNNI, whose int8 kernels "
                "saturate on 8-bit weights");
  add_threads_option(*cmd, *threads);
  cmd->callback([=] {
    if (*calibration < 1)
      throw UsageError("--calibration must be at least 1 image, got " + std::to_string(*calibration));
    QuantizeOptions qopt;
    qopt.reduce_range = *reduce_range;
    if (*method == "minmax")
      qopt.method = CalibrationMethod::MinMax;
    else if (*method == "percentile")
      qopt.method = CalibrationMethod::Percentile;
    else
      throw UsageError("--method must be minmax or percentile, got '" + *method + "'");
    if (*opset < kOnnxInt8MinOpset || *opset > onnx_max_opset())
      throw UsageError("--opset " + std::to_string(*opset) + ": an int8 model needs opset " +
                       std::to_string(kOnnxInt8MinOpset) + ".." + std::to_string(onnx_max_opset()) +
                       " (per-channel DequantizeLinear came in opset 13)");
    set_num_threads(*threads);
    LoadedModel loaded = load_model(*model_path);
    if (loaded.model.quantization()) throw UsageError(*model_path + " is an int8 model already");
    ModelInfo& info = loaded.info;

    const fs::path data_dir = data->empty() ? default_data_dir() : fs::path(*data);
    DataOptions options;
    options.resize_height = info.preprocessing.resize_height;
    options.resize_width = info.preprocessing.resize_width;
    options.channels = data_channels_for(info);
    options.threads = *threads;
    stored_held_out_split(loaded.metadata, *model_path, options);
    DataSplit split = load_data(data_dir, options);
    const Dataset& train = split.train;
    if (train.input_shape() != info.input_shape)
      throw UsageError(data_dir.string() + ": images are " + to_string(train.input_shape()) + " but the model " +
                       *model_path + " expects " + to_string(info.input_shape));
    if (train.num_classes() != static_cast<int>(info.class_names.size()))
      throw UsageError(data_dir.string() + ": " + std::to_string(train.num_classes()) + " classes but the model " +
                       *model_path + " has " + std::to_string(info.class_names.size()));
    if (train.count < 1) throw UsageError(data_dir.string() + ": no training images to calibrate with");
    const int64_t count = std::min(*calibration, train.count);
    if (count < *calibration)
      std::fprintf(stderr, "lenet: warning: %s has %lld training images; calibrating with all of them\n",
                   data_dir.string().c_str(), static_cast<long long>(count));

    // The first `count` training images, prepared as training saw them.
    DataLoader loader(train, static_cast<int>(count), false, 0, info.preprocessing.normalization);
    Tensor images;
    std::vector<int32_t> labels;
    loader.start_epoch(0);
    loader.next(images, labels);

    const std::string float_bytes = onnx_model_bytes(loaded.model, info, {*opset});
    loaded.model.set_quantization(quantize_model(loaded.model, images, qopt));
    const std::string bytes = onnx_model_bytes(loaded.model, info, {*opset});
    write_file_atomic(*out, bytes);
    std::printf("quantized %s (%s): every Conv2d and Linear in int8%s, calibrated on %lld training images (%s)\n",
                model_path->c_str(), info.arch.c_str(), *reduce_range ? " (7-bit weights)" : "",
                static_cast<long long>(count), method->c_str());
    std::printf("wrote %s: %.1f KB (the float ONNX is %.1f KB, %.2fx)\n", out->c_str(),
                static_cast<double>(bytes.size()) / 1024.0, static_cast<double>(float_bytes.size()) / 1024.0,
                static_cast<double>(bytes.size()) / static_cast<double>(float_bytes.size()));
  });
}

}  // namespace lenet::cli

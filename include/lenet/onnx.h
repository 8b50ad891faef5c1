// ONNX export and import, with the official ONNX protobuf classes (libonnx).
//
// Export writes a Sequential as a plain chain of standard ops:
//   Conv2d -> Conv (kernel_shape, pads, strides)     Linear  -> Gemm (transB=1)
//   MaxPool2d -> MaxPool                              Flatten -> Flatten (axis=1)
//   AvgPool2d -> AveragePool (count_include_pad=1, our and PyTorch's default)
//   Sigmoid / ReLU / Tanh -> Sigmoid / Relu / Tanh
// The graph input is `input` [batch, C, H, W] with a symbolic batch, the output
// `logits` [batch, classes]; parameters are initializers named as in our
// state dict ("0.weight", ...). Everything else a deployment needs lives in
// metadata_props (all values are text; JSON where structured):
//   lenet.format          "1"              (version of this metadata layout)
//   lenet.arch            "conv 6 k5 p2, sigmoid, ..." (Sequential::spec())
//   lenet.input_shape     "[1, 28, 28]"    ([C, H, W])
//   lenet.class_names     ["T-shirt/top", ...]
//   lenet.preprocessing   {"grayscale": true, "resize": [0, 0], "mean": 0.0, "std": 1.0}
//   lenet.dataset, lenet.epoch, lenet.metrics ({"test_acc": 0.81, ...})
//   class_names, input_shape, normalization_mean, normalization_std: the same
//     facts under plain names, for consumers that know nothing of lenet.cpp
//     (a per-channel normalisation writes lists: "[0.49,0.48,0.45]").
// The model passes the ONNX checker and strict shape inference before it is
// written, and it is written atomically.
//
// An int8 Sequential (lenet/quant.h) is written in QDQ form (opset 13 and up):
// QuantizeLinear + DequantizeLinear on the input of every Conv/Gemm
// ("<i>.input_scale", uint8 "<i>.input_zero_point"), DequantizeLinear axis 0 on
// its int8 "<i>.weight_quantized" (scales "<i>.weight_scale") and int32
// "<i>.bias_quantized"; import reads that pattern (also with int8 activations,
// as other quantizers write it) back into a quantized Sequential.
//
// Import runs such files on our own kernels: our exports and PyTorch's
// (torch.onnx.export of an nn.Sequential of these layers). It accepts a chain of
// Conv, Gemm, MatMul(+Add), MaxPool, AveragePool, Pad (zero padding folded into
// the following Conv or AveragePool), Flatten, Reshape to [N, features],
// Sigmoid, Relu, Tanh, Identity and Constant; anything else is an error naming
// the file, the node and the op.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>

#include "lenet/checkpoint.h"
#include "lenet/nn.h"

namespace lenet {

inline constexpr int kOnnxDefaultOpset = 11;
inline constexpr int kOnnxMinOpset = 9;
// An int8 model (lenet/quant.h) is written in QDQ form: per-channel
// DequantizeLinear (its axis attribute) needs opset 13; below that export refuses.
inline constexpr int kOnnxInt8MinOpset = 13;
// The newest opset the linked ONNX library knows (and so can check).
int onnx_max_opset();

struct OnnxExportOptions {
  int opset = kOnnxDefaultOpset;  // kOnnxMinOpset .. onnx_max_opset()
};

// The serialized, checked ModelProto. `info.input_shape` ([C, H, W]) must fit
// the model and `info.class_names` (when not empty) its output width. Throws
// std::invalid_argument naming the layer when one has no ONNX equivalent, or
// the sizes when they do not fit.
std::string onnx_model_bytes(const Sequential& model, const ModelInfo& info, const OnnxExportOptions& options = {});

// onnx_model_bytes written atomically to `path` (a failed write leaves any
// existing file as it was). Throws std::runtime_error naming the path.
void export_onnx(const std::filesystem::path& path, const Sequential& model, const ModelInfo& info,
                 const OnnxExportOptions& options = {});

// Reads an ONNX file into a model on our kernels and its ModelInfo. Without
// lenet metadata (e.g. PyTorch's files) the class names are "0".."K-1" and the
// input shape comes from the graph input. `info.arch` is the spec of the
// rebuilt model, so it can be saved as a checkpoint. Throws FileError
// (lenet/error.h) naming the file (and the node) for unreadable files, unsupported ops and
// weights whose shapes do not fit.
LoadedModel import_onnx(const std::filesystem::path& path);
// The same from bytes already in memory; `source` names them in messages.
LoadedModel import_onnx_bytes(std::string_view bytes, const std::string& source);

// True when the first bytes look like a serialized ONNX ModelProto (it starts
// with the ir_version field, as every ONNX writer emits it).
bool looks_like_onnx(std::string_view head);

}  // namespace lenet

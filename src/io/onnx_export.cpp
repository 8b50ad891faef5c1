// Sequential -> ONNX ModelProto with the official protobuf classes; checked by
// ONNX's own checker and strict shape inference before a byte is written.
#include <onnx/checker.h>
#include <onnx/common/constants.h>
#include <onnx/defs/schema.h>
#include <onnx/onnx_pb.h>
#include <onnx/shape_inference/implementation.h>

#include <bit>
#include <cstring>
#include <stdexcept>

#include "io/onnx_metadata.h"
#include "lenet/fileio.h"
#include "lenet/onnx.h"
#include "lenet/quant.h"
#include "lenet/version.h"

namespace lenet {

namespace {

static_assert(std::endian::native == std::endian::little, "raw_data is little-endian float32");

// The oldest IR version that carries each opset (onnx/helper.py's
// VERSION_TABLE), so older runtimes accept the file.
int ir_version_for(int opset) {
  if (opset <= 9) return 4;
  if (opset == 10) return 5;
  if (opset == 11) return 6;
  if (opset <= 14) return 7;
  if (opset <= 18) return 8;
  return onnx::IR_VERSION;
}

void add_ints(onnx::NodeProto& node, const std::string& name, std::initializer_list<int64_t> values) {
  auto* a = node.add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::INTS);
  for (int64_t v : values) a->add_ints(v);
}

void add_int(onnx::NodeProto& node, const std::string& name, int64_t value) {
  auto* a = node.add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::INT);
  a->set_i(value);
}

void add_float(onnx::NodeProto& node, const std::string& name, float value) {
  auto* a = node.add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::FLOAT);
  a->set_f(value);
}

void add_initializer(onnx::GraphProto& g, const Parameter& p) {
  auto* t = g.add_initializer();
  t->set_name(p.name);
  t->set_data_type(onnx::TensorProto::FLOAT);
  for (int64_t d : p.shape) t->add_dims(d);
  t->set_raw_data(reinterpret_cast<const char*>(p.value), static_cast<size_t>(p.numel()) * sizeof(float));
}

// An initializer of raw little-endian values (int8, uint8, int32 or float).
template <class T>
void add_raw(onnx::GraphProto& g, const std::string& name, onnx::TensorProto::DataType type, const Shape& dims,
             const T* values, size_t count) {
  auto* t = g.add_initializer();
  t->set_name(name);
  t->set_data_type(type);
  for (int64_t d : dims) t->add_dims(d);
  t->set_raw_data(reinterpret_cast<const char*>(values), count * sizeof(T));
}

// QuantizeLinear + DequantizeLinear of the layer's input, DequantizeLinear of
// its int8 weights (and int32 bias) per output channel: the layer's inputs
// then carry exactly the values our int8 plan computes with. Returns the name
// of the dequantized input; the weights come out as "<i>.weight" / "<i>.bias",
// the names the float Conv/Gemm takes.
std::string add_qdq(onnx::GraphProto& g, const LayerQuantization& q, const std::string& index, const std::string& input,
                    const Shape& weight_shape, bool has_bias) {
  const auto out = static_cast<int64_t>(q.weight_scales.size());
  auto node = [&](const std::string& name, const std::string& op, std::initializer_list<std::string> inputs,
                  const std::string& output) -> onnx::NodeProto& {
    auto* n = g.add_node();
    n->set_name(name);
    n->set_op_type(op);
    for (const auto& i : inputs) n->add_input(i);
    n->add_output(output);
    return *n;
  };
  const std::string p = index + ".";
  add_raw(g, p + "weight_quantized", onnx::TensorProto::INT8, weight_shape, q.weights.data(), q.weights.size());
  add_raw(g, p + "weight_scale", onnx::TensorProto::FLOAT, {out}, q.weight_scales.data(), q.weight_scales.size());
  const std::vector<int8_t> zero8(static_cast<size_t>(out), 0);
  add_raw(g, p + "weight_zero_point", onnx::TensorProto::INT8, {out}, zero8.data(), zero8.size());
  add_int(node("/" + index + "/weight/DequantizeLinear", "DequantizeLinear",
               {p + "weight_quantized", p + "weight_scale", p + "weight_zero_point"}, p + "weight"),
          "axis", 0);
  if (has_bias) {
    std::vector<float> bias_scale;
    for (float s : q.weight_scales) bias_scale.push_back(q.input_scale * s);
    const std::vector<int32_t> zero32(static_cast<size_t>(out), 0);
    add_raw(g, p + "bias_quantized", onnx::TensorProto::INT32, {out}, q.bias.data(), q.bias.size());
    add_raw(g, p + "bias_scale", onnx::TensorProto::FLOAT, {out}, bias_scale.data(), bias_scale.size());
    add_raw(g, p + "bias_zero_point", onnx::TensorProto::INT32, {out}, zero32.data(), zero32.size());
    add_int(node("/" + index + "/bias/DequantizeLinear", "DequantizeLinear",
                 {p + "bias_quantized", p + "bias_scale", p + "bias_zero_point"}, p + "bias"),
            "axis", 0);
  }
  const auto zp = static_cast<uint8_t>(q.input_zero_point);
  add_raw(g, p + "input_scale", onnx::TensorProto::FLOAT, {}, &q.input_scale, 1);
  add_raw(g, p + "input_zero_point", onnx::TensorProto::UINT8, {}, &zp, 1);
  const std::string quantized = "/" + index + "/input_quantized";
  std::string dequantized = "/" + index + "/input_dequantized";
  node("/" + index + "/QuantizeLinear", "QuantizeLinear", {input, p + "input_scale", p + "input_zero_point"},
       quantized);
  node("/" + index + "/DequantizeLinear", "DequantizeLinear", {quantized, p + "input_scale", p + "input_zero_point"},
       dequantized);
  return dequantized;
}

void set_tensor_type(onnx::ValueInfoProto& v, const std::string& name, const std::vector<int64_t>& dims) {
  v.set_name(name);
  auto* tt = v.mutable_type()->mutable_tensor_type();
  tt->set_elem_type(onnx::TensorProto::FLOAT);
  auto* shape = tt->mutable_shape();
  shape->add_dim()->set_dim_param("batch");
  for (int64_t d : dims) shape->add_dim()->set_dim_value(d);
}

}  // namespace

int onnx_max_opset() {
  const auto& map = onnx::OpSchemaRegistry::DomainToVersionRange::Instance().Map();
  return map.at(onnx::ONNX_DOMAIN).second;
}

std::string onnx_model_bytes(const Sequential& model, const ModelInfo& info, const OnnxExportOptions& options) {
  const int opset = options.opset;
  if (opset < kOnnxMinOpset || opset > onnx_max_opset())
    throw std::invalid_argument("ONNX export: opset " + std::to_string(opset) + " is not supported (expected " +
                                std::to_string(kOnnxMinOpset) + ".." + std::to_string(onnx_max_opset()) + ")");
  const Shape& chw = info.input_shape;
  if (chw.size() != 3 || chw[0] < 1 || chw[1] < 1 || chw[2] < 1)
    throw std::invalid_argument("ONNX export: the input shape must be [C, H, W] with positive sizes, got " +
                                to_string(chw));
  if (model.size() == 0) throw std::invalid_argument("ONNX export: the model has no layers");
  const Quantization* quant = model.quantization();
  if (quant && opset < kOnnxInt8MinOpset)
    throw std::invalid_argument("ONNX export: an int8 model needs opset " + std::to_string(kOnnxInt8MinOpset) +
                                " or newer (DequantizeLinear with per-channel scales, axis=0), not " +
                                std::to_string(opset));
  // Throws naming the layer when the input shape does not fit.
  const std::vector<Shape> shapes = model.layer_shapes({1, chw[0], chw[1], chw[2]});
  const Shape& out = shapes.back();
  if (out.size() != 2)
    throw std::invalid_argument("ONNX export: the model must end in [N, classes], but it ends in " + to_string(out));
  const int64_t classes = out[1];
  std::vector<std::string> class_names = info.class_names;
  if (class_names.empty())
    for (int64_t k = 0; k < classes; ++k) class_names.push_back(std::to_string(k));
  if (static_cast<int64_t>(class_names.size()) != classes)
    throw std::invalid_argument("ONNX export: the model has " + std::to_string(classes) + " outputs but " +
                                std::to_string(class_names.size()) + " class names");

  onnx::ModelProto m;
  m.set_ir_version(ir_version_for(opset));
  m.set_producer_name("lenet.cpp");
  m.set_producer_version(LENET_VERSION_STRING);
  m.set_doc_string("LeNet-family network trained by lenet.cpp: " + model.spec());
  auto* op = m.add_opset_import();
  op->set_domain(onnx::ONNX_DOMAIN);
  op->set_version(opset);

  ModelInfo meta = info;
  meta.arch = model.spec();
  meta.class_names = class_names;
  for (const auto& [key, value] : onnx_meta::to_props(meta)) {
    auto* p = m.add_metadata_props();
    p->set_key(key);
    p->set_value(value);
  }

  onnx::GraphProto& g = *m.mutable_graph();
  g.set_name("lenet");
  set_tensor_type(*g.add_input(), "input", {chw[0], chw[1], chw[2]});
  set_tensor_type(*g.add_output(), "logits", {classes});

  // Dropout is the identity in inference and disappears, as in PyTorch's
  // exports: the last other layer writes the logits.
  size_t last = model.size() - 1;
  while (last > 0 && dynamic_cast<const Dropout*>(&model[last])) --last;
  std::string current = "input";
  size_t next_quantized = 0;
  for (size_t i = 0; i < model.size(); ++i) {
    const Module& layer = model[i];
    const std::string index = std::to_string(i);
    const LayerQuantization* lq = nullptr;
    if (quant && next_quantized < quant->layers.size() && quant->layers[next_quantized].layer == i)
      lq = &quant->layers[next_quantized++];
    // Weights: float initializers, or int8 ones behind DequantizeLinear.
    auto add_weights = [&](onnx::NodeProto& n) {
      const auto& params = layer.parameters();
      if (!lq) {
        for (const auto& p : params) {
          n.add_input(p.name);
          add_initializer(g, p);
        }
        return;
      }
      for (const auto& p : params) n.add_input(p.name);
    };
    if (lq) current = add_qdq(g, *lq, index, current, layer.parameters()[0].shape, layer.parameters().size() > 1);
    auto node_for = [&](const std::string& op_type) -> onnx::NodeProto& {
      auto* n = g.add_node();
      n->set_name("/" + index + "/" + op_type);
      n->set_op_type(op_type);
      n->add_input(current);
      current = i == last ? "logits" : "/" + index + "/" + op_type + "_output_0";
      n->add_output(current);
      return *n;
    };
    const auto& params = layer.parameters();
    if (const auto* conv = dynamic_cast<const Conv2d*>(&layer)) {
      const auto& o = conv->options();
      onnx::NodeProto& n = node_for("Conv");
      add_weights(n);
      add_ints(n, "kernel_shape", {o.kh, o.kw});
      add_ints(n, "pads", {o.ph, o.pw, o.ph, o.pw});
      add_ints(n, "strides", {o.sh, o.sw});
      add_ints(n, "dilations", {1, 1});
      add_int(n, "group", 1);
    } else if (const auto* linear = dynamic_cast<const Linear*>(&layer)) {
      if (!linear->has_bias() && opset < 11) {
        // Gemm's C only became optional in opset 11; before that a bias-free
        // layer is x · Wᵀ as a MatMul with the weight stored transposed.
        const int in = linear->in_features(), out_features = linear->out_features();
        Tensor wt({in, out_features});
        for (int o = 0; o < out_features; ++o)
          for (int k = 0; k < in; ++k)
            wt[static_cast<int64_t>(k) * out_features + o] = params[0].value[static_cast<int64_t>(o) * in + k];
        const Parameter transposed{params[0].name + "_transposed", wt.shape(), wt.data()};
        onnx::NodeProto& n = node_for("MatMul");
        n.add_input(transposed.name);
        add_initializer(g, transposed);
      } else {
        onnx::NodeProto& n = node_for("Gemm");
        add_weights(n);
        add_float(n, "alpha", 1.0f);
        add_float(n, "beta", 1.0f);
        add_int(n, "transB", 1);
      }
    } else if (const auto* pool = dynamic_cast<const Pool2d*>(&layer)) {
      const auto& o = pool->options();
      const bool max = pool->mode() == Pool2d::Mode::Max;
      onnx::NodeProto& n = node_for(max ? "MaxPool" : "AveragePool");
      add_ints(n, "kernel_shape", {o.kh, o.kw});
      add_ints(n, "pads", {o.ph, o.pw, o.ph, o.pw});
      add_ints(n, "strides", {o.sh, o.sw});
      if (opset >= 10) add_int(n, "ceil_mode", 0);
      // Our average pooling divides by the whole window, padding included.
      if (!max) add_int(n, "count_include_pad", 1);
    } else if (const auto* act = dynamic_cast<const Activation*>(&layer)) {
      switch (act->kind()) {
        case Activation::Kind::Sigmoid: node_for("Sigmoid"); break;
        case Activation::Kind::ReLU: node_for("Relu"); break;
        case Activation::Kind::Tanh: node_for("Tanh"); break;
      }
    } else if (dynamic_cast<const Flatten*>(&layer)) {
      add_int(node_for("Flatten"), "axis", 1);
    } else if (const auto* bn = dynamic_cast<const BatchNorm*>(&layer)) {
      // Inference form: scale, bias, running mean and variance.
      onnx::NodeProto& n = node_for("BatchNormalization");
      for (const auto& p : params) {
        n.add_input(p.name);
        add_initializer(g, p);
      }
      for (size_t b = 0; b < 2; ++b) {
        n.add_input(layer.buffers()[b].name);
        add_initializer(g, layer.buffers()[b]);
      }
      add_float(n, "epsilon", bn->eps());
      add_float(n, "momentum", 1.0f - bn->momentum());  // ONNX's momentum weighs the old estimate
    } else if (dynamic_cast<const Dropout*>(&layer)) {
      if (i == last) throw std::invalid_argument("ONNX export: the model is only Dropout layers");
      continue;
    } else {
      throw std::invalid_argument("ONNX export: layer " + index + " (" + layer.describe() +
                                  ") has no ONNX equivalent; exportable layers are Conv2d, Linear, MaxPool2d, "
                                  "AvgPool2d, Sigmoid, ReLU, Tanh, Flatten, BatchNorm and Dropout");
    }
  }

  // Strict shape inference also fills value_info for every intermediate tensor
  // (viewers such as Netron show them); then the full model check.
  try {
    onnx::shape_inference::InferShapes(m, onnx::OpSchemaRegistry::Instance(),
                                       onnx::ShapeInferenceOptions(/*check_type=*/true, /*error_mode=*/1));
    onnx::checker::check_model(m);
  } catch (const std::exception& e) {
    throw std::runtime_error(std::string("ONNX export: the ONNX checker rejected the model (") + model.spec() +
                             ", opset " + std::to_string(opset) + "): " + e.what());
  }
  std::string bytes;
  if (!m.SerializeToString(&bytes)) throw std::runtime_error("ONNX export: could not serialize the model");
  return bytes;
}

void export_onnx(const std::filesystem::path& path, const Sequential& model, const ModelInfo& info,
                 const OnnxExportOptions& options) {
  write_file_atomic(path, onnx_model_bytes(model, info, options));
}

}  // namespace lenet

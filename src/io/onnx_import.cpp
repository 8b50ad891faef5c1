// ONNX file -> Sequential on our kernels. The graph must be a plain chain from
// the one image input to the one output; each node becomes one of our layers
// (or folds into one: Pad into the next Conv/AveragePool, Add into MatMul).
// Every attribute is checked: one we do not understand is an error, never
// silently ignored, so a file either runs exactly or is refused with a reason.
#include <onnx/common/constants.h>
#include <onnx/onnx_pb.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <stdexcept>

#include "io/memory_guard.h"
#include "io/onnx_metadata.h"
#include "lenet/error.h"
#include "lenet/fileio.h"
#include "lenet/onnx.h"
#include "lenet/quant.h"

namespace lenet {

namespace {

static_assert(std::endian::native == std::endian::little, "raw_data is little-endian");

struct Padding {
  int64_t h = 0, w = 0;
  bool any() const { return h != 0 || w != 0; }
};

class Importer {
 public:
  Importer(std::string_view bytes, std::string source) : source_(std::move(source)) {
    if (bytes.empty()) fail("the file is empty, expected an ONNX model");
    if (bytes.size() > static_cast<size_t>(std::numeric_limits<int>::max()))
      fail("the file is " + std::to_string(bytes.size()) + " bytes, larger than a protobuf message can be (2 GiB)");
    if (!looks_like_onnx(bytes) || !model_.ParseFromArray(bytes.data(), static_cast<int>(bytes.size())))
      fail("not an ONNX model, or a truncated one (it does not parse as an ONNX ModelProto)");
    if (!model_.has_graph() || model_.graph().node_size() == 0)
      fail("not an ONNX model, or a truncated one (it has no graph nodes)");
  }

  LoadedModel run() {
    const auto& g = model_.graph();
    opset_ = default_opset();
    for (const auto& t : g.initializer()) initializers_[t.name()] = &t;
    ModelInfo info;
    std::map<std::string, std::string> props;
    for (const auto& p : model_.metadata_props()) props[p.key()] = p.value();
    const bool have_meta = onnx_meta::from_props(props, source_, info);
    if (!have_meta && model_.producer_name() == "lenet.cpp")
      fail("it was written by lenet.cpp but has no lenet metadata (the file is truncated?)");

    // Old exporters list initializers among the inputs too: the image is the rest.
    std::vector<const onnx::ValueInfoProto*> inputs;
    for (const auto& v : g.input())
      if (!initializers_.contains(v.name())) inputs.push_back(&v);
    if (inputs.size() != 1)
      fail("the graph has " + std::to_string(inputs.size()) +
           " inputs besides its weights; lenet.cpp runs models "
           "with one image input [N, C, H, W]");
    if (g.output_size() != 1)
      fail("the graph has " + std::to_string(g.output_size()) +
           " outputs; lenet.cpp runs models with one output, "
           "the logits [N, classes]");
    const Shape chw = input_shape(*inputs.front(), have_meta ? &info.input_shape : nullptr);
    info.input_shape = chw;
    // Sizes are checked before any layer computes with them (a product could overflow)
    // and before anything is allocated for them.
    check_values_per_image(Shape{1, chw[0], chw[1], chw[2]}, "graph input '" + inputs.front()->name() + "'");

    Shape shape = {1, chw[0], chw[1], chw[2]};
    std::string current = inputs.front()->name();
    std::vector<std::unique_ptr<Module>> layers;
    Padding pending_pad;  // a Pad waiting for the Conv/AveragePool it belongs to
    const onnx::NodeProto* pad_node = nullptr;

    for (int i = 0; i < g.node_size(); ++i) {
      const onnx::NodeProto& n = g.node(i);
      node_ = &n;
      node_index_ = i;
      if (!n.domain().empty() && n.domain() != "ai.onnx")
        fail_node("op '" + n.domain() + "." + n.op_type() + "' is not supported (only standard ONNX ops are)");
      const std::string& op = n.op_type();
      if (op == "Constant") {
        read_constant(n);
        continue;
      }
      // QDQ (int8): DequantizeLinear of a stored weight stands for its float
      // values; QuantizeLinear + DequantizeLinear of the chain's tensor
      // quantizes the next Conv/Gemm's input.
      if (op == "DequantizeLinear" && n.input_size() > 0 && tensor(n.input(0))) {
        read_weight_dequantize(n);
        continue;
      }
      if (pending_input_ && op != "Conv" && op != "Gemm")
        fail_at(*pending_input_node_, pending_input_index_,
                "QuantizeLinear/DequantizeLinear followed by " + op +
                    " is not supported (lenet.cpp runs QDQ only on the input of a Conv or Gemm)");
      if (op == "QuantizeLinear" && n.input_size() > 0 && n.input(0) == current) {
        pending_input_ = read_input_quantize(g, i);
        pending_input_node_ = &n;
        pending_input_index_ = i;
        ++i;  // its DequantizeLinear
        current = single_output(g.node(i));
        continue;
      }
      if (op == "QuantizeLinear" || op == "DequantizeLinear")
        fail_node(
            "is not part of a QDQ pattern lenet.cpp runs (QuantizeLinear + DequantizeLinear on the input of a "
            "Conv or Gemm, DequantizeLinear on its stored int8 weights and int32 bias)");
      if (n.input_size() == 0 || n.input(0) != current)
        fail_node("takes '" + (n.input_size() ? n.input(0) : std::string()) +
                  "' as its input, but lenet.cpp runs a "
                  "plain chain of layers and the previous layer's output is '" +
                  current + "'");
      if (pending_pad.any() && op != "Conv" && op != "AveragePool")
        fail_at(*pad_node, pad_index_,
                "zero padding followed by " + op +
                    " is not supported (lenet.cpp folds Pad "
                    "only into a following Conv or AveragePool)");

      std::unique_ptr<Module> layer;
      std::string output = single_output(n);
      try {
        if (op == "Conv") {
          check_qdq_weights(n);
          layer = conv(n, shape, pending_pad);
          pending_pad = {};
        } else if (op == "Gemm") {
          check_qdq_weights(n);
          layer = gemm(n, shape);
        } else if (op == "MatMul") {
          const onnx::NodeProto* add = nullptr;
          if (i + 1 < g.node_size() && g.node(i + 1).op_type() == "Add") add = &g.node(i + 1);
          layer = matmul(n, add, shape);
          if (layer->parameters().size() == 2) {  // the Add became the bias
            ++i;
            node_ = add;
            node_index_ = i;
            output = single_output(*add);
          }
        } else if (op == "MaxPool" || op == "AveragePool") {
          layer = pool(n, op == "MaxPool", pending_pad);
          pending_pad = {};
        } else if (op == "Pad") {
          Padding p = pad(n, shape);
          if (p.any()) {
            pending_pad = p;
            pad_node = &n;
            pad_index_ = i;
          }
        } else if (op == "Flatten" || op == "Reshape") {
          if (op == "Flatten")
            check_flatten(n, shape);
          else
            check_reshape(n, shape);
          if (shape.size() == 4) layer = std::make_unique<Flatten>();
        } else if (op == "Sigmoid" || op == "Relu" || op == "Tanh") {
          check_attributes(n, {});
          if (op == "Sigmoid")
            layer = std::make_unique<Sigmoid>();
          else if (op == "Relu")
            layer = std::make_unique<ReLU>();
          else
            layer = std::make_unique<Tanh>();
        } else if (op == "Identity") {
          check_attributes(n, {});
        } else if (op == "BatchNormalization") {
          layer = batch_norm(n, shape);
        } else if (op == "Dropout") {
          // The identity in inference, as it runs here (an exporter in training mode would say so).
          check_attributes(n, {"ratio", "seed", "is_test"});
          if (n.input_size() > 2 && !n.input(2).empty()) {
            const std::vector<int64_t> mode = ints(n.input(2));
            if (mode.size() != 1 || mode[0] != 0) fail_node("training_mode must be false");
          }
        } else {
          fail_node("op " + op +
                    " is not supported; lenet.cpp runs Conv, Gemm, MatMul, Add (as a bias), MaxPool, "
                    "AveragePool, Pad, Flatten, Reshape, Sigmoid, Relu, Tanh, BatchNormalization, Dropout, "
                    "Identity and Constant");
        }
      } catch (const std::invalid_argument& e) {  // a layer constructor refusing the sizes
        fail_node(e.what());
      }
      if (layer && pending_input_) {
        quantization_.layers.push_back(layer_quantization(n, *layer, *pending_input_));
        quantization_.layers.back().layer = layers.size();
        pending_input_.reset();
      }
      if (layer) {
        try {
          shape = layer->output_shape(shape);
        } catch (const std::invalid_argument& e) {
          fail_node(std::string("does not fit its input ") + to_string(shape) + ": " + e.what());
        }
        check_values_per_image(shape, "the output of node " + std::to_string(node_index_));
        layers.push_back(std::move(layer));
      }
      current = output;
    }
    node_ = nullptr;
    if (pending_pad.any()) fail_at(*pad_node, pad_index_, "zero padding at the end of the graph is not supported");
    if (g.output(0).name() != current)
      fail("the graph output '" + g.output(0).name() + "' is not the last layer's output '" + current + "'");
    if (layers.empty()) fail("the graph has no layers with weights or activations to run");
    if (shape.size() != 2)
      fail("the graph ends in a tensor of shape " + to_string(shape) + ", expected logits [N, classes]");
    const int64_t classes = shape[1];
    if (classes > kMaxClasses)
      fail("the model has " + std::to_string(classes) + " outputs; lenet.cpp reads models of at most " +
           std::to_string(kMaxClasses) + " classes");

    LoadedModel loaded;
    for (auto& l : layers) loaded.model.add(std::move(l));
    if (!quantization_.layers.empty()) {
      try {
        loaded.model.set_quantization(quantization_);
      } catch (const std::invalid_argument& e) {
        fail(std::string("its int8 parameters do not fit: ") + e.what() +
             " (lenet.cpp runs QDQ on every Conv and Gemm, or on none)");
      }
    }
    info.arch = loaded.model.spec();
    loaded.model.eval();  // an imported model predicts (BatchNorm's running estimates)
    if (info.class_names.empty())
      for (int64_t k = 0; k < classes; ++k) info.class_names.push_back(std::to_string(k));
    if (static_cast<int64_t>(info.class_names.size()) != classes)
      fail("metadata lists " + std::to_string(info.class_names.size()) + " class names but the model has " +
           std::to_string(classes) + " outputs");
    loaded.info = std::move(info);
    loaded.metadata = std::move(props);
    return loaded;
  }

 private:
  // ---- errors ----

  [[noreturn]] void fail(const std::string& message) const { throw FileError(source_, message); }

  [[noreturn]] void fail_at(const onnx::NodeProto& n, int index, const std::string& message) const {
    std::string name = n.name().empty() ? "#" + std::to_string(index) : "'" + n.name() + "'";
    fail("node " + name + " (" + n.op_type() + "): " + message);
  }
  [[noreturn]] void fail_node(const std::string& message) const { fail_at(*node_, node_index_, message); }

  // ---- graph-level facts ----

  static constexpr int64_t kMaxClasses = 100000;  // as a checkpoint's class_names

  // Per image (the batch excluded), at most kMaxLayerValues, as build_model allows.
  void check_values_per_image(const Shape& shape, const std::string& what) const {
    int64_t n = 1;
    for (size_t d = 1; d < shape.size(); ++d) {
      if (shape[d] > kMaxLayerValues || (n *= shape[d]) > kMaxLayerValues)
        fail(what + " has shape " + to_string(shape) + ", more than " + std::to_string(kMaxLayerValues) +
             " values per image");
    }
  }

  int default_opset() const {
    for (const auto& o : model_.opset_import())
      if (o.domain().empty() || o.domain() == "ai.onnx") return static_cast<int>(o.version());
    fail("the model imports no standard ONNX opset");
  }

  // [C, H, W] of the graph input; symbolic sizes come from the metadata, or are an error.
  Shape input_shape(const onnx::ValueInfoProto& input, const Shape* from_meta) const {
    const std::string what = "graph input '" + input.name() + "'";
    if (!input.type().has_tensor_type()) fail(what + " is not a tensor");
    const auto& tt = input.type().tensor_type();
    if (tt.elem_type() != onnx::TensorProto::FLOAT)
      fail(what + " has element type " + onnx::TensorProto_DataType_Name(tt.elem_type()) + ", expected FLOAT");
    if (!tt.has_shape() || tt.shape().dim_size() != 4)
      fail(what + " must have shape [N, C, H, W], it has " +
           (tt.has_shape() ? std::to_string(tt.shape().dim_size()) + " dimensions" : std::string("no shape")));
    Shape chw;
    std::vector<std::string> symbolic;
    const char* names[] = {"channels", "height", "width"};
    for (int d = 1; d < 4; ++d) {
      const auto& dim = tt.shape().dim(d);
      if (dim.has_dim_value() && dim.dim_value() > 0) {
        chw.push_back(dim.dim_value());
      } else {
        chw.push_back(0);
        symbolic.push_back(std::string(names[d - 1]) + " '" + (dim.has_dim_param() ? dim.dim_param() : "?") + "'");
      }
    }
    if (from_meta) {
      for (int d = 0; d < 3; ++d)
        if (chw[d] != 0 && chw[d] != (*from_meta)[d])
          fail(what + " has shape [N, " + std::to_string(chw[0]) + ", " + std::to_string(chw[1]) + ", " +
               std::to_string(chw[2]) + "] but metadata 'lenet.input_shape' says " + to_string(*from_meta));
      return *from_meta;
    }
    if (!symbolic.empty()) {
      std::string list;
      for (const auto& s : symbolic) list += (list.empty() ? "" : ", ") + s;
      fail(what + " has a symbolic " + list +
           "; lenet.cpp needs the image size: export the model with fixed "
           "C, H and W (only the batch may be dynamic)");
    }
    return chw;
  }

  // ---- tensors ----

  static constexpr int64_t kMaxElements = int64_t{1} << 30;

  static int64_t checked_numel(const onnx::TensorProto& t, const std::function<void(const std::string&)>& bad) {
    int64_t n = 1;
    for (int64_t d : t.dims()) {
      if (d < 0 || (d > 0 && n > kMaxElements / d))
        bad("has an absurd shape " + to_string(Shape(t.dims().begin(), t.dims().end())));
      n *= d;
    }
    return n;
  }

  Shape dims_of(const onnx::TensorProto& t) const { return Shape(t.dims().begin(), t.dims().end()); }

  // A weight: a float initializer (or Constant) named `name`, or the float
  // values of a DequantizeLinear of a stored int8/int32 tensor.
  std::vector<float> floats(const std::string& name, Shape* shape) const {
    if (auto it = dequantized_.find(name); it != dequantized_.end()) {
      const Dequantized& d = it->second;
      std::vector<float> v(d.values.size());
      const int64_t inner = d.channels() > 1 ? static_cast<int64_t>(v.size()) / d.dims[0] : 1;
      for (size_t k = 0; k < v.size(); ++k) {
        const size_t c = d.channels() > 1 ? static_cast<size_t>(static_cast<int64_t>(k) / inner) : 0;
        v[k] = static_cast<float>(d.values[k] - d.zero_points[c]) * d.scales[c];
      }
      *shape = d.dims;
      return v;
    }
    const onnx::TensorProto* t = tensor(name);
    if (!t) fail_node("input '" + name + "' is not a weight stored in the file (lenet.cpp needs it as an initializer)");
    auto bad = [&](const std::string& m) { fail_node("weight '" + name + "' " + m); };
    if (t->data_location() == onnx::TensorProto::EXTERNAL) bad("is stored in an external file, which is not supported");
    if (t->data_type() != onnx::TensorProto::FLOAT)
      bad("has type " + onnx::TensorProto_DataType_Name(static_cast<onnx::TensorProto::DataType>(t->data_type())) +
          ", expected FLOAT");
    const int64_t n = checked_numel(*t, bad);
    const size_t stored = t->has_raw_data() ? t->raw_data().size() / sizeof(float)
                                            : static_cast<size_t>(t->float_data_size());
    if (t->has_raw_data() && t->raw_data().size() != static_cast<size_t>(n) * sizeof(float))
      bad("holds " + std::to_string(t->raw_data().size()) + " bytes, its shape " + to_string(dims_of(*t)) + " needs " +
          std::to_string(n * 4));
    if (stored != static_cast<size_t>(n))
      bad("holds " + std::to_string(stored) + " values, its shape " + to_string(dims_of(*t)) + " needs " +
          std::to_string(n));
    std::vector<float> v(static_cast<size_t>(n));
    if (t->has_raw_data()) {
      std::memcpy(v.data(), t->raw_data().data(), v.size() * sizeof(float));
    } else {
      std::copy(t->float_data().begin(), t->float_data().end(), v.begin());
    }
    *shape = dims_of(*t);
    return v;
  }

  // An integer list held by an initializer or a Constant (Pad's pads, Reshape's shape).
  std::vector<int64_t> ints(const std::string& name) const {
    const onnx::TensorProto* t = tensor(name);
    if (!t) fail_node("input '" + name + "' must be a constant (an initializer or a Constant node)");
    auto bad = [&](const std::string& m) { fail_node("constant '" + name + "' " + m); };
    const int64_t n = checked_numel(*t, bad);
    if (n > 64) bad("has " + std::to_string(n) + " values, more than a pads or shape list can");
    std::vector<int64_t> v(static_cast<size_t>(n));
    if (t->data_type() == onnx::TensorProto::INT64) {
      if (t->has_raw_data()) {
        if (t->raw_data().size() != static_cast<size_t>(n) * 8) bad("has the wrong number of bytes");
        std::memcpy(v.data(), t->raw_data().data(), v.size() * 8);
      } else {
        if (t->int64_data_size() != n) bad("has the wrong number of values");
        std::copy(t->int64_data().begin(), t->int64_data().end(), v.begin());
      }
    } else if (t->data_type() == onnx::TensorProto::INT32 && !t->has_raw_data() && t->int32_data_size() == n) {
      std::copy(t->int32_data().begin(), t->int32_data().end(), v.begin());
    } else {
      bad("must hold INT64 values");
    }
    return v;
  }

  const onnx::TensorProto* tensor(const std::string& name) const {
    if (auto it = initializers_.find(name); it != initializers_.end()) return it->second;
    if (auto it = constants_.find(name); it != constants_.end()) return &it->second;
    return nullptr;
  }

  void read_constant(const onnx::NodeProto& n) {
    check_attributes(n, {"value"});
    const onnx::AttributeProto* value = attribute(n, "value");
    if (!value || !value->has_t() || n.output_size() != 1)
      fail_node("only Constant nodes with a tensor 'value' and one output are supported");
    constants_[n.output(0)] = value->t();
  }

  // ---- QDQ (int8) ----

  // A DequantizeLinear of a stored tensor: its integers, scales and zero points.
  struct Dequantized {
    onnx::TensorProto::DataType type = onnx::TensorProto::UNDEFINED;
    Shape dims;
    std::vector<int32_t> values;
    std::vector<float> scales;
    std::vector<int32_t> zero_points;
    const onnx::NodeProto* node = nullptr;
    int index = 0;
    size_t channels() const { return scales.size(); }
  };
  // The input quantization of the next Conv/Gemm (uint8 form).
  struct InputQuantization {
    float scale = 1;
    int32_t zero_point = 0;
  };

  static std::string type_name(int type) {
    return onnx::TensorProto_DataType_Name(static_cast<onnx::TensorProto::DataType>(type));
  }

  // The integers of an INT8, UINT8 or INT32 tensor, raw or in int32_data (where
  // ONNX keeps 8-bit values too, so a value there can be out of its type's range).
  std::vector<int32_t> integers(const std::string& name, Shape* dims) const {
    const onnx::TensorProto* t = tensor(name);
    if (!t) fail_node("input '" + name + "' must be stored in the file (an initializer or a Constant)");
    auto bad = [&](const std::string& m) { fail_node("tensor '" + name + "' " + m); };
    if (t->data_location() == onnx::TensorProto::EXTERNAL) bad("is stored in an external file, which is not supported");
    const int type = t->data_type();
    const int64_t n = checked_numel(*t, bad);
    std::vector<int32_t> v(static_cast<size_t>(n));
    int32_t lo = 0, hi = 0;
    size_t width = 0;
    if (type == onnx::TensorProto::INT8) {
      lo = -128, hi = 127, width = 1;
    } else if (type == onnx::TensorProto::UINT8) {
      lo = 0, hi = 255, width = 1;
    } else if (type == onnx::TensorProto::INT32) {
      lo = std::numeric_limits<int32_t>::min(), hi = std::numeric_limits<int32_t>::max(), width = 4;
    } else {
      bad("has type " + type_name(type) + ", expected INT8, UINT8 or INT32");
    }
    if (t->has_raw_data()) {
      if (t->raw_data().size() != static_cast<size_t>(n) * width)
        bad("holds " + std::to_string(t->raw_data().size()) + " bytes, its shape " + to_string(dims_of(*t)) +
            " needs " + std::to_string(static_cast<size_t>(n) * width));
      const char* p = t->raw_data().data();
      for (size_t k = 0; k < v.size(); ++k) {
        if (type == onnx::TensorProto::INT8)
          v[k] = static_cast<uint8_t>(p[k]) >= 128 ? static_cast<uint8_t>(p[k]) - 256 : static_cast<uint8_t>(p[k]);
        else if (type == onnx::TensorProto::UINT8)
          v[k] = static_cast<uint8_t>(p[k]);
        else
          std::memcpy(&v[k], p + 4 * k, 4);
      }
    } else {
      if (t->int32_data_size() != n)
        bad("holds " + std::to_string(t->int32_data_size()) + " values, its shape " + to_string(dims_of(*t)) +
            " needs " + std::to_string(n));
      for (size_t k = 0; k < v.size(); ++k) {
        v[k] = t->int32_data(static_cast<int>(k));
        if (v[k] < lo || v[k] > hi) bad("holds " + std::to_string(v[k]) + ", out of range for " + type_name(type));
      }
    }
    *dims = dims_of(*t);
    return v;
  }

  // Scale and zero point inputs (1 and 2) of a Quantize/DequantizeLinear node:
  // `count` values each (1: per tensor). Scales must be positive and finite.
  void scales_and_zero_points(const onnx::NodeProto& n, size_t count, std::vector<float>& scales,
                              std::vector<int32_t>& zero_points, int* zero_point_type) const {
    if (n.input_size() < 2 || n.input(1).empty()) fail_node("has no scale input");
    Shape s;
    scales = floats(n.input(1), &s);
    if (scales.size() != count && scales.size() != 1)
      fail_node("scale '" + n.input(1) + "' has " + std::to_string(scales.size()) + " values, expected 1 or " +
                std::to_string(count));
    for (float v : scales)
      if (!(std::isfinite(v) && v > 0))
        fail_node("scale '" + n.input(1) + "' holds " + std::to_string(v) + ", not a positive finite number");
    *zero_point_type = onnx::TensorProto::UINT8;
    zero_points.assign(scales.size(), 0);
    if (n.input_size() > 2 && !n.input(2).empty()) {
      Shape zs;
      zero_points = integers(n.input(2), &zs);
      *zero_point_type = tensor(n.input(2))->data_type();
      if (zero_points.size() != scales.size())
        fail_node("zero point '" + n.input(2) + "' has " + std::to_string(zero_points.size()) + " values, its scale " +
                  std::to_string(scales.size()));
    }
  }

  void read_weight_dequantize(const onnx::NodeProto& n) {
    check_attributes(n, {"axis"});
    Dequantized d;
    d.node = &n;
    d.index = node_index_;
    d.values = integers(n.input(0), &d.dims);
    d.type = static_cast<onnx::TensorProto::DataType>(tensor(n.input(0))->data_type());
    const int64_t axis = int_attr(n, "axis", 1);
    const size_t channels = d.dims.empty() ? 1 : static_cast<size_t>(d.dims[0]);
    int zp_type = 0;
    scales_and_zero_points(n, channels, d.scales, d.zero_points, &zp_type);
    if (d.scales.size() > 1 && axis != 0)
      fail_node("per-channel scales along axis " + std::to_string(axis) +
                " are not supported (lenet.cpp's are per output channel: axis 0)");
    if (n.input_size() > 2 && !n.input(2).empty() && zp_type != d.type)
      fail_node("zero point type " + type_name(zp_type) + " differs from the data's " + type_name(d.type));
    dequantized_[single_output(n)] = std::move(d);
  }

  InputQuantization read_input_quantize(const onnx::GraphProto& g, int i) const {
    const onnx::NodeProto& q = g.node(i);
    check_attributes(q, {"axis", "saturate"});
    std::vector<float> scales;
    std::vector<int32_t> zps;
    int type = 0;
    scales_and_zero_points(q, 1, scales, zps, &type);
    if (type != onnx::TensorProto::UINT8 && type != onnx::TensorProto::INT8)
      fail_node("quantizes to " + type_name(type) + "; lenet.cpp runs 8-bit activations (UINT8 or INT8)");
    const std::string out = single_output(q);
    if (i + 1 >= g.node_size() || g.node(i + 1).op_type() != "DequantizeLinear" || g.node(i + 1).input_size() < 2 ||
        g.node(i + 1).input(0) != out)
      fail_node("its output '" + out + "' must go straight into a DequantizeLinear (the QDQ pattern)");
    const onnx::NodeProto& dq = g.node(i + 1);
    std::vector<float> dq_scales;
    std::vector<int32_t> dq_zps;
    int dq_type = 0;
    scales_and_zero_points(dq, 1, dq_scales, dq_zps, &dq_type);
    if (dq_scales != scales || dq_zps != zps || dq_type != type)
      fail_at(dq, i + 1, "its scale and zero point differ from its QuantizeLinear's");
    // An int8 tensor with zero point z is the uint8 one with z + 128 (the same
    // rounding and saturation, shifted), so both run on the uint8 kernels.
    return {scales[0], type == onnx::TensorProto::INT8 ? zps[0] + 128 : zps[0]};
  }

  // A Conv/Gemm's weight and bias are either both from DequantizeLinear (and
  // its input quantized) or neither.
  void check_qdq_weights(const onnx::NodeProto& n) const {
    const bool w = n.input_size() > 1 && dequantized_.contains(n.input(1));
    const bool b = n.input_size() > 2 && dequantized_.contains(n.input(2));
    const bool has_bias = n.input_size() > 2 && !n.input(2).empty();
    if (pending_input_ && !w)
      fail_node("its input is quantized but its weight '" + (n.input_size() > 1 ? n.input(1) : std::string()) +
                "' is not an int8 DequantizeLinear");
    if (!pending_input_ && (w || b))
      fail_node(
          "its weights are dequantized int8 but its input is not quantized (no QuantizeLinear/"
          "DequantizeLinear before it)");
    if (w && has_bias && !b) fail_node("int8 weights with a float bias are not supported (expected an int32 bias)");
  }

  LayerQuantization layer_quantization(const onnx::NodeProto& n, const Module& layer,
                                       const InputQuantization& in) const {
    LayerQuantization q;
    q.input_scale = in.scale;
    q.input_zero_point = in.zero_point;
    const Dequantized& w = dequantized_.at(n.input(1));
    auto fail_w = [&](const std::string& m) { fail_at(*w.node, w.index, m); };
    if (w.type != onnx::TensorProto::INT8) fail_w("weights of type " + type_name(w.type) + ", expected INT8");
    for (int32_t z : w.zero_points)
      if (z != 0) fail_w("weight zero point " + std::to_string(z) + ": lenet.cpp runs symmetric int8 weights (0)");
    const int64_t out = layer.parameters()[0].shape[0];
    if (op_is_gemm(n) &&
        (int_attr(n, "transB", 0) != 1 || float_attr(n, "alpha", 1.0f) != 1.0f || float_attr(n, "beta", 1.0f) != 1.0f))
      fail_node("int8 Gemm needs transB=1 and alpha = beta = 1 (weights [out, in], scales per output)");
    q.weight_scales.assign(static_cast<size_t>(out), w.scales[0]);
    if (w.scales.size() > 1) q.weight_scales = w.scales;
    for (int32_t v : w.values) q.weights.push_back(static_cast<int8_t>(v));
    if (n.input_size() > 2 && !n.input(2).empty()) {
      const Dequantized& b = dequantized_.at(n.input(2));
      auto fail_b = [&](const std::string& m) { fail_at(*b.node, b.index, m); };
      if (b.type != onnx::TensorProto::INT32) fail_b("bias of type " + type_name(b.type) + ", expected INT32");
      if (b.values.size() != static_cast<size_t>(out))
        fail_b("bias has " + std::to_string(b.values.size()) + " values, the layer " + std::to_string(out) +
               " outputs");
      for (size_t o = 0; o < b.values.size(); ++o) {
        const float want = in.scale * q.weight_scales[o], got = b.scales[b.scales.size() > 1 ? o : 0];
        if (b.zero_points[b.scales.size() > 1 ? o : 0] != 0) fail_b("bias zero point must be 0");
        if (std::fabs(got - want) > 1e-6f * want)
          fail_b("bias scale " + std::to_string(got) + " of output " + std::to_string(o) +
                 " is not input scale × weight scale (" + std::to_string(want) + "), which the int32 sums need");
      }
      q.bias = b.values;
    }
    return q;
  }

  static bool op_is_gemm(const onnx::NodeProto& n) { return n.op_type() == "Gemm"; }

  // ---- attributes ----

  const onnx::AttributeProto* attribute(const onnx::NodeProto& n, const std::string& name) const {
    for (const auto& a : n.attribute())
      if (a.name() == name) return &a;
    return nullptr;
  }

  void check_attributes(const onnx::NodeProto& n, std::set<std::string> known) const {
    for (const auto& a : n.attribute())
      if (!known.contains(a.name())) fail_node("attribute '" + a.name() + "' is not supported for " + n.op_type());
  }

  int64_t int_attr(const onnx::NodeProto& n, const std::string& name, int64_t fallback) const {
    const auto* a = attribute(n, name);
    return a ? a->i() : fallback;
  }
  float float_attr(const onnx::NodeProto& n, const std::string& name, float fallback) const {
    const auto* a = attribute(n, name);
    return a ? a->f() : fallback;
  }
  std::string string_attr(const onnx::NodeProto& n, const std::string& name, const std::string& fallback) const {
    const auto* a = attribute(n, name);
    return a ? a->s() : fallback;
  }
  std::vector<int64_t> ints_attr(const onnx::NodeProto& n, const std::string& name,
                                 std::vector<int64_t> fallback) const {
    const auto* a = attribute(n, name);
    return a ? std::vector<int64_t>(a->ints().begin(), a->ints().end()) : fallback;
  }

  // BatchNormalization in inference form: X, scale, B, mean, var, each [C],
  // over the channels of [N, C, H, W] or the features of [N, C].
  std::unique_ptr<Module> batch_norm(const onnx::NodeProto& n, const Shape& in) const {
    check_attributes(n, {"epsilon", "momentum", "spatial", "training_mode"});
    if (int_attr(n, "training_mode", 0) != 0) fail_node("training_mode must be 0 (an inference graph)");
    if (int_attr(n, "spatial", 1) != 1) fail_node("spatial=0 (statistics per position) is not supported");
    if (n.input_size() != 5) fail_node("needs 5 inputs (X, scale, B, input_mean, input_var)");
    if (in.size() != 4 && in.size() != 2)
      fail_node("normalises " + to_string(in) + "; lenet.cpp runs it on [N, C, H, W] or [N, C]");
    const float eps = float_attr(n, "epsilon", 1e-5f);
    // ONNX's momentum weighs the old estimate, PyTorch's (ours) the new one.
    // 1 − m is off by up to half a float step of m (PyTorch's 0.1 is written
    // as 0.9f, and 1 − 0.9f = 0.10000002): rounded to 7 decimals it is the
    // momentum that was exported, which the spec text then shows as written.
    const float momentum = static_cast<float>(
        std::round((1.0 - static_cast<double>(float_attr(n, "momentum", 0.9f))) * 1e7) / 1e7);
    if (!(eps > 0) || !(momentum >= 0 && momentum <= 1)) fail_node("epsilon must be positive and momentum in [0, 1]");
    const int c = static_cast<int>(in[1]);
    auto layer = std::make_unique<BatchNorm>(c, in.size() == 4, eps, momentum);
    const char* const roles[] = {"scale", "B", "input_mean", "input_var"};
    for (int k = 0; k < 4; ++k) {
      Shape s;
      const std::vector<float> v = floats(n.input(k + 1), &s);
      if (s != Shape{c})
        fail_node(std::string(roles[k]) + " '" + n.input(k + 1) + "' has shape " + to_string(s) + ", expected [" +
                  std::to_string(c) + "] for the input " + to_string(in));
      float* dst = k < 2 ? layer->parameters()[static_cast<size_t>(k)].value : layer->buffers()[k - 2].value;
      std::copy(v.begin(), v.end(), dst);
    }
    for (int k = 0; k < c; ++k)
      if (!(layer->running_var()[k] >= 0)) fail_node("input_var holds a negative or NaN variance");
    return layer;
  }

  std::string single_output(const onnx::NodeProto& n) const {
    for (int k = 1; k < n.output_size(); ++k)
      if (!n.output(k).empty()) fail_node("output '" + n.output(k) + "' beyond the first is not supported");
    if (n.output_size() == 0) fail_node("has no output");
    return n.output(0);
  }

  // 2-D window attributes shared by Conv and the pools: kernel, strides, symmetric pads.
  struct Window {
    int64_t kh = 0, kw = 0, sh = 1, sw = 1;
    Padding pad;
  };

  Window window(const onnx::NodeProto& n, std::vector<int64_t> kernel_from_weight) const {
    Window w;
    const std::string auto_pad = string_attr(n, "auto_pad", "NOTSET");
    if (auto_pad != "NOTSET" && auto_pad != "VALID")
      fail_node("auto_pad " + auto_pad + " is not supported (export with explicit pads)");
    auto kernel = ints_attr(n, "kernel_shape", kernel_from_weight);
    if (kernel.size() != 2)
      fail_node("kernel_shape must have 2 values (a 2-D window), it has " + std::to_string(kernel.size()));
    if (!kernel_from_weight.empty() && kernel != kernel_from_weight)
      fail_node("kernel_shape " + to_string(Shape(kernel)) + " does not match the weight's " +
                to_string(Shape(kernel_from_weight)));
    auto strides = ints_attr(n, "strides", {1, 1});
    auto dilations = ints_attr(n, "dilations", {1, 1});
    auto pads = ints_attr(n, "pads", {0, 0, 0, 0});
    if (strides.size() != 2) fail_node("strides must have 2 values");
    if (dilations != std::vector<int64_t>{1, 1}) fail_node("dilations other than 1 are not supported");
    if (pads.size() != 4) fail_node("pads must have 4 values");
    if (auto_pad == "VALID") pads = {0, 0, 0, 0};
    if (pads[0] != pads[2] || pads[1] != pads[3])
      fail_node("asymmetric pads " + to_string(Shape(pads)) + " are not supported (lenet.cpp pads both sides equally)");
    if (int_attr(n, "ceil_mode", 0) != 0)
      fail_node("ceil_mode=1 is not supported (lenet.cpp rounds output sizes down)");
    w.kh = kernel[0];
    w.kw = kernel[1];
    w.sh = strides[0];
    w.sw = strides[1];
    w.pad = {pads[0], pads[1]};
    auto too_big = [](int64_t v) { return v < 0 || v > 1'000'000; };
    if (too_big(w.kh) || too_big(w.kw) || too_big(w.sh) || too_big(w.sw) || too_big(w.pad.h) || too_big(w.pad.w))
      fail_node("has an absurd kernel, stride or padding");
    return w;
  }

  // ---- ops ----

  std::unique_ptr<Module> conv(const onnx::NodeProto& n, const Shape& in, Padding extra) const {
    check_attributes(n, {"auto_pad", "dilations", "group", "kernel_shape", "pads", "strides"});
    if (int_attr(n, "group", 1) != 1) fail_node("grouped convolution (group != 1) is not supported");
    if (n.input_size() < 2) fail_node("has no weight input");
    Shape ws;
    std::vector<float> weight = floats(n.input(1), &ws);
    if (ws.size() != 4)
      fail_node("weight '" + n.input(1) + "' has shape " + to_string(ws) + ", expected [O, C, KH, KW]");
    if (in.size() != 4 || ws[1] != in[1])
      fail_node("weight '" + n.input(1) + "' has shape " + to_string(ws) + " but the input is " + to_string(in) +
                (in.size() == 4 ? " (" + std::to_string(in[1]) + " channels)" : ""));
    Window w = window(n, {ws[2], ws[3]});
    w.pad.h += extra.h;
    w.pad.w += extra.w;
    const bool has_bias = n.input_size() > 2 && !n.input(2).empty();
    std::vector<float> bias;
    if (has_bias) {
      Shape bs;
      bias = floats(n.input(2), &bs);
      if (bs != Shape{ws[0]})
        fail_node("bias '" + n.input(2) + "' has shape " + to_string(bs) + ", expected [" + std::to_string(ws[0]) +
                  "]");
    }
    auto layer = std::make_unique<Conv2d>(Conv2dOptions(static_cast<int>(ws[1]), static_cast<int>(ws[0]), 1)
                                              .kernel_size(static_cast<int>(w.kh), static_cast<int>(w.kw))
                                              .padding(static_cast<int>(w.pad.h), static_cast<int>(w.pad.w))
                                              .stride(static_cast<int>(w.sh), static_cast<int>(w.sw))
                                              .bias(has_bias));
    std::copy(weight.begin(), weight.end(), layer->parameter("weight").value);
    if (has_bias) std::copy(bias.begin(), bias.end(), layer->parameter("bias").value);
    return layer;
  }

  // y = alpha · A · op(B) + beta · C, with B the weight and C the bias.
  std::unique_ptr<Module> gemm(const onnx::NodeProto& n, const Shape& in) const {
    check_attributes(n, {"alpha", "beta", "transA", "transB", "broadcast"});
    if (int_attr(n, "transA", 0) != 0) fail_node("transA=1 is not supported");
    if (n.input_size() < 2) fail_node("has no weight input");
    const bool trans_b = int_attr(n, "transB", 0) != 0;
    const float alpha = float_attr(n, "alpha", 1.0f), beta = float_attr(n, "beta", 1.0f);
    Shape ws;
    std::vector<float> weight = floats(n.input(1), &ws);
    if (ws.size() != 2) fail_node("weight '" + n.input(1) + "' has shape " + to_string(ws) + ", expected 2-D");
    const int64_t out = trans_b ? ws[0] : ws[1], features = trans_b ? ws[1] : ws[0];
    check_features(n, in, ws, features, trans_b ? "[out, in] with transB=1" : "[in, out] with transB=0");
    if (!trans_b) weight = transposed(weight, features, out);
    for (float& v : weight) v *= alpha;
    std::vector<float> bias;
    if (n.input_size() > 2 && !n.input(2).empty()) {
      Shape bs;
      bias = floats(n.input(2), &bs);
      if (bias.size() == 1) bias.assign(static_cast<size_t>(out), bias[0]);  // broadcast scalar
      if (static_cast<int64_t>(bias.size()) != out || (bs.size() == 2 && bs[0] != 1) || bs.size() > 2)
        fail_node("bias '" + n.input(2) + "' has shape " + to_string(bs) + ", expected [" + std::to_string(out) + "]");
      for (float& v : bias) v *= beta;
    }
    return linear(weight, bias, features, out);
  }

  // MatMul(x, W[in, out]), optionally followed by Add(·, b[out]) as the bias.
  std::unique_ptr<Module> matmul(const onnx::NodeProto& n, const onnx::NodeProto* add, const Shape& in) const {
    check_attributes(n, {});
    if (n.input_size() != 2) fail_node("expects 2 inputs");
    Shape ws;
    std::vector<float> weight = floats(n.input(1), &ws);
    if (ws.size() != 2) fail_node("weight '" + n.input(1) + "' has shape " + to_string(ws) + ", expected [in, out]");
    check_features(n, in, ws, ws[0], "[in, out]");
    std::vector<float> bias;
    if (add && add->input_size() == 2 && add->attribute_size() == 0) {
      const std::string& y = n.output(0);
      const std::string other = add->input(0) == y ? add->input(1) : add->input(1) == y ? add->input(0) : "";
      if (const onnx::TensorProto* t = other.empty() ? nullptr : tensor(other);
          t && t->data_type() == onnx::TensorProto::FLOAT) {
        Shape bs;
        bias = floats(other, &bs);
        if (static_cast<int64_t>(bias.size()) != ws[1])
          fail_at(*add, node_index_ + 1,
                  "bias '" + other + "' has shape " + to_string(bs) + ", expected [" + std::to_string(ws[1]) + "]");
      }
    }
    return linear(transposed(weight, ws[0], ws[1]), bias, ws[0], ws[1]);
  }

  void check_features(const onnx::NodeProto& n, const Shape& in, const Shape& ws, int64_t features,
                      const std::string& layout) const {
    if (in.size() != 2)
      fail_node("its input has shape " + to_string(in) +
                "; a fully connected layer needs [N, features] "
                "(a Flatten before it)");
    if (in[1] != features)
      fail_node("weight '" + n.input(1) + "' has shape " + to_string(ws) + " (" + layout + ", " +
                std::to_string(features) + " input features) but its input has " + std::to_string(in[1]) +
                " features (shape " + to_string(in) + ")");
  }

  static std::vector<float> transposed(const std::vector<float>& w, int64_t rows, int64_t cols) {
    std::vector<float> t(w.size());
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t c = 0; c < cols; ++c) t[static_cast<size_t>(c * rows + r)] = w[static_cast<size_t>(r * cols + c)];
    return t;
  }

  static std::unique_ptr<Module> linear(const std::vector<float>& weight_out_in, const std::vector<float>& bias,
                                        int64_t in, int64_t out) {
    auto layer = std::make_unique<Linear>(static_cast<int>(in), static_cast<int>(out), !bias.empty());
    std::copy(weight_out_in.begin(), weight_out_in.end(), layer->parameter("weight").value);
    if (!bias.empty()) std::copy(bias.begin(), bias.end(), layer->parameter("bias").value);
    return layer;
  }

  std::unique_ptr<Module> pool(const onnx::NodeProto& n, bool max, Padding extra) const {
    if (max) {
      check_attributes(n, {"auto_pad", "ceil_mode", "dilations", "kernel_shape", "pads", "storage_order", "strides"});
    } else {
      check_attributes(n, {"auto_pad", "ceil_mode", "count_include_pad", "kernel_shape", "pads", "strides"});
    }
    if (!attribute(n, "kernel_shape")) fail_node("has no kernel_shape");
    Window w = window(n, {});
    if (!max && w.pad.any() && int_attr(n, "count_include_pad", 0) == 0)
      fail_node(
          "count_include_pad=0 with padding is not supported (lenet.cpp's average pooling divides by the whole "
          "window, padding included, as PyTorch's default count_include_pad=True)");
    w.pad.h += extra.h;
    w.pad.w += extra.w;
    Pool2dOptions o(static_cast<int>(w.kh), static_cast<int>(w.kw));
    o.stride(static_cast<int>(w.sh), static_cast<int>(w.sw))
        .padding(static_cast<int>(w.pad.h), static_cast<int>(w.pad.w));
    return std::make_unique<Pool2d>(max ? Pool2d::Mode::Max : Pool2d::Mode::Average, o);
  }

  // Zero padding of H and W only, the same on both sides; returned for folding.
  Padding pad(const onnx::NodeProto& n, const Shape& in) const {
    check_attributes(n, {"mode", "pads", "value"});
    if (string_attr(n, "mode", "constant") != "constant")
      fail_node("mode '" + string_attr(n, "mode", "") + "' is not supported (only constant zero padding is)");
    std::vector<int64_t> pads;
    float value = 0.0f;
    if (opset_ < 11) {
      pads = ints_attr(n, "pads", {});
      value = float_attr(n, "value", 0.0f);
    } else {
      if (n.input_size() < 2 || n.input(1).empty()) fail_node("has no pads input");
      pads = ints(n.input(1));
      if (n.input_size() > 2 && !n.input(2).empty()) {
        Shape vs;
        auto v = floats(n.input(2), &vs);
        if (v.size() != 1) fail_node("constant_value must be a scalar");
        value = v[0];
      }
      if (n.input_size() > 3 && !n.input(3).empty()) fail_node("the axes input is not supported");
    }
    if (value != 0.0f) fail_node("padding with " + std::to_string(value) + " is not supported (only zero padding is)");
    if (in.size() != 4 || pads.size() != 8)
      fail_node("pads " + to_string(Shape(pads)) + " must pad a 4-D [N, C, H, W] input, which is " + to_string(in));
    if (pads[0] || pads[1] || pads[4] || pads[5])
      fail_node("pads " + to_string(Shape(pads)) + " pad the batch or channel axis; only H and W can be padded");
    if (pads[2] != pads[6] || pads[3] != pads[7] || pads[2] < 0 || pads[3] < 0)
      fail_node("pads " + to_string(Shape(pads)) + " are asymmetric or negative (lenet.cpp pads both sides equally)");
    return {pads[2], pads[3]};
  }

  void check_flatten(const onnx::NodeProto& n, const Shape& in) const {
    check_attributes(n, {"axis"});
    int64_t axis = int_attr(n, "axis", 1);
    if (axis < 0) axis += static_cast<int64_t>(in.size());
    if (axis != 1)
      fail_node("axis " + std::to_string(int_attr(n, "axis", 1)) + " is not supported (only 1, [N, C·H·W])");
  }

  // Reshape to [N, features]: the batch copied (0) or inferred (-1).
  void check_reshape(const onnx::NodeProto& n, const Shape& in) const {
    check_attributes(n, {"allowzero"});
    const bool allow_zero = int_attr(n, "allowzero", 0) != 0;
    if (n.input_size() != 2) fail_node("expects a data and a shape input");
    std::vector<int64_t> target = ints(n.input(1));
    const int64_t features = numel(in) / in[0];
    const bool batch_ok = target.size() == 2 && ((target[0] == 0 && !allow_zero) || target[0] == -1);
    const bool features_ok = target.size() == 2 && (target[1] == features || (target[1] == -1 && target[0] == 0));
    if (!batch_ok || !features_ok || (target[0] == -1 && target[1] == -1))
      fail_node("reshape of " + to_string(in) + " to " + to_string(Shape(target)) +
                " is not supported (only "
                "flattening to [N, " +
                std::to_string(features) + "] is)");
  }

  std::string source_;
  onnx::ModelProto model_;
  int opset_ = 0;
  std::map<std::string, const onnx::TensorProto*> initializers_;
  std::map<std::string, onnx::TensorProto> constants_;
  std::map<std::string, Dequantized> dequantized_;  // DequantizeLinear outputs of stored tensors
  std::optional<InputQuantization> pending_input_;  // QDQ waiting for its Conv/Gemm
  const onnx::NodeProto* pending_input_node_ = nullptr;
  int pending_input_index_ = 0;
  Quantization quantization_;
  const onnx::NodeProto* node_ = nullptr;
  int node_index_ = 0;
  int pad_index_ = 0;
};

}  // namespace

bool looks_like_onnx(std::string_view head) {
  // Field 1 (ir_version) as a varint: tag byte 0x08, then a small version.
  return head.size() >= 2 && head[0] == 0x08 && head[1] >= 1 && static_cast<unsigned char>(head[1]) < 0x80;
}

LoadedModel import_onnx_bytes(std::string_view bytes, const std::string& source) {
  return reading_within_memory(source, [&] { return Importer(bytes, source).run(); });
}

LoadedModel import_onnx(const std::filesystem::path& path) {
  const std::string bytes = reading_within_memory(path, [&] { return read_file(path); });
  return import_onnx_bytes(bytes, path.string());
}

}  // namespace lenet

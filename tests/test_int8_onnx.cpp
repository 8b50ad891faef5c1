// int8 in ONNX: the QDQ export (checked by ONNX's checker with strict shape
// inference inside onnx_model_bytes), its exact round trip, ONNX Runtime on the
// same files (Fashion-MNIST agreement), QDQ files in other tools' styles, and
// every bad int8 file refused naming the node.
#include <gtest/gtest.h>
#include <onnx/onnx_pb.h>

#include <sys/wait.h>
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <limits>
#include <nlohmann/json.hpp>

#include "lenet/data.h"
#include "lenet/fileio.h"
#include "lenet/isa.h"
#include "lenet/onnx.h"
#include "lenet/quant.h"
#include "test_util.h"

using namespace lenet;
namespace fs = std::filesystem;

namespace {

const fs::path kFixtures = fs::path(LENET_TEST_DATA) / "pytorch-onnx";
const fs::path kRunJs = fs::path(LENET_SOURCE_DIR) / "tests" / "onnxruntime" / "run.js";

struct TempDir {
  fs::path path;
  TempDir() {
    std::string pattern = (fs::temp_directory_path() / "lenet-int8-XXXXXX").string();
    if (!mkdtemp(pattern.data())) throw std::runtime_error("mkdtemp failed");
    path = pattern;
  }
  ~TempDir() { fs::remove_all(path); }
  fs::path operator/(const std::string& name) const { return path / name; }
};

std::vector<float> read_f32(const fs::path& path) {
  const std::string bytes = read_file(path);
  std::vector<float> v(bytes.size() / sizeof(float));
  std::memcpy(v.data(), bytes.data(), v.size() * sizeof(float));
  return v;
}

void write_f32(const fs::path& path, std::span<const float> values) {
  write_file_atomic(path, std::string_view(reinterpret_cast<const char*>(values.data()), values.size_bytes()));
}

struct Quantized {
  Sequential model;
  ModelInfo info;
  std::string float_bytes, int8_bytes;
};

// What the ONNX Runtime comparisons quantize with. ORT's u8×s8 kernels are
// CPU-dependent: without AVX-512 VNNI they use pmaddubsw, which adds pairs of
// products in int16 with saturation, so 8-bit weights overflow there and only
// 7-bit ones (reduce_range, ORT's own advice for such CPUs) compute the QDQ
// file's integers exactly. On VNNI CPUs the 8-bit path is what is tested.
QuantizeOptions onnxruntime_options() {
  const std::vector<std::string> isas = supported_isas();
  QuantizeOptions o;
  o.reduce_range = std::find(isas.begin(), isas.end(), "avx512vnni") == isas.end();
  return o;
}

// A random model with random biases, quantized on random images in [0, 1].
Quantized quantized(const std::string& arch, const Shape& chw, int classes, uint64_t seed,
                    const QuantizeOptions& options = {}) {
  Rng rng(seed);
  Quantized q{build_model(arch, chw, classes, &rng), test::model_info(Sequential(), chw, classes), {}, {}};
  for (auto* p : q.model.parameters())
    if (p->name.ends_with("bias"))
      for (auto& v : p->values()) v = rng.uniform(-0.3f, 0.3f);
  q.info.arch = q.model.spec();
  q.float_bytes = onnx_model_bytes(q.model, q.info, {13});
  q.model.set_quantization(
      quantize_model(q.model, test::random_tensor({32, chw[0], chw[1], chw[2]}, rng, 0, 1), options));
  q.int8_bytes = onnx_model_bytes(q.model, q.info, {13});
  return q;
}

onnx::ModelProto parse(const std::string& bytes) {
  onnx::ModelProto m;
  EXPECT_TRUE(m.ParseFromString(bytes));
  return m;
}

std::string serialize(const onnx::ModelProto& m) {
  std::string bytes;
  EXPECT_TRUE(m.SerializeToString(&bytes));
  return bytes;
}

std::string import_error(const std::string& bytes) {
  try {
    import_onnx_bytes(bytes, "int8.onnx");
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  return "accepted";
}

onnx::TensorProto* initializer(onnx::ModelProto& m, const std::string& name) {
  for (auto& t : *m.mutable_graph()->mutable_initializer())
    if (t.name() == name) return &t;
  ADD_FAILURE() << "no initializer " << name;
  return nullptr;
}

int count_ops(const onnx::ModelProto& m, const std::string& op) {
  int n = 0;
  for (const auto& node : m.graph().node()) n += node.op_type() == op;
  return n;
}

// ---- ONNX Runtime through node (tests/onnxruntime/run.js) ----

bool onnxruntime_available() {
  if (std::getenv("LENET_SKIP_ONNXRUNTIME")) return false;
  const fs::path module = kRunJs.parent_path() / "node_modules" / "onnxruntime-node";
  EXPECT_TRUE(fs::exists(module)) << "ONNX Runtime is not installed in " << module.parent_path()
                                  << ": run scripts/setup.sh (or set LENET_SKIP_ONNXRUNTIME=1)";
  return fs::exists(module);
}

// ONNX Runtime's logits for `x` from the model file.
std::vector<float> run_onnxruntime(const fs::path& model, const Tensor& x, const TempDir& dir) {
  const fs::path in = dir / (model.stem().string() + ".in.f32"), out = dir / (model.stem().string() + ".out.f32");
  write_f32(in, x.span());
  std::string shape;
  for (int64_t d : x.shape()) shape += (shape.empty() ? "" : "x") + std::to_string(d);
  const std::string cmd = "node '" + kRunJs.string() + "' '" + model.string() + "' '" + in.string() + "' " + shape +
                          " '" + out.string() + "' 2>&1";
  std::string output;
  FILE* pipe = popen(cmd.c_str(), "r");
  EXPECT_NE(pipe, nullptr);
  if (!pipe) return {};
  std::array<char, 4096> buf;
  for (size_t n; (n = fread(buf.data(), 1, buf.size(), pipe)) > 0;) output.append(buf.data(), n);
  const int raw = pclose(pipe);
  EXPECT_TRUE(WIFEXITED(raw) && WEXITSTATUS(raw) == 0) << output;
  return fs::exists(out) ? read_f32(out) : std::vector<float>{};
}

std::vector<int> classes_of(std::span<const float> logits, int64_t k) {
  std::vector<int> out;
  for (size_t r = 0; r + static_cast<size_t>(k) <= logits.size(); r += static_cast<size_t>(k))
    out.push_back(static_cast<int>(
        std::max_element(logits.begin() + static_cast<int64_t>(r), logits.begin() + static_cast<int64_t>(r) + k) -
        (logits.begin() + static_cast<int64_t>(r))));
  return out;
}

double agreement(const std::vector<int>& a, const std::vector<int>& b) {
  EXPECT_EQ(a.size(), b.size());
  size_t same = 0;
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) same += a[i] == b[i];
  return a.empty() ? 0.0 : static_cast<double>(same) / static_cast<double>(a.size());
}

}  // namespace

TEST(Int8Onnx, ExportIsQdqAroundEveryConvAndGemm) {
  Quantized q = quantized("lenet", {1, 28, 28}, 10, 1610);
  const onnx::ModelProto m = parse(q.int8_bytes);
  EXPECT_EQ(m.opset_import(0).version(), 13);
  EXPECT_EQ(count_ops(m, "QuantizeLinear"), 5);
  EXPECT_EQ(count_ops(m, "DequantizeLinear"), 15);  // input, weight and bias of 2 Conv + 3 Gemm
  EXPECT_EQ(count_ops(m, "Conv"), 2);
  EXPECT_EQ(count_ops(m, "Gemm"), 3);
  bool saw_weight = false;
  for (const auto& t : m.graph().initializer()) {
    EXPECT_FALSE(t.name().ends_with(".weight") || t.name().ends_with(".bias")) << "a float weight: " << t.name();
    if (t.name() == "0.weight_quantized") {
      saw_weight = true;
      EXPECT_EQ(t.data_type(), onnx::TensorProto::INT8);
      EXPECT_EQ(Shape(t.dims().begin(), t.dims().end()), (Shape{6, 1, 5, 5}));
    }
    if (t.name() == "0.weight_scale") {
      EXPECT_EQ(t.dims_size(), 1);
    }
    if (t.name() == "0.input_zero_point") {
      EXPECT_EQ(t.data_type(), onnx::TensorProto::UINT8);
    }
    if (t.name() == "0.bias_quantized") {
      EXPECT_EQ(t.data_type(), onnx::TensorProto::INT32);
    }
  }
  EXPECT_TRUE(saw_weight);
  // Smaller: int8 weights, a handful of scales.
  const double ratio = static_cast<double>(q.int8_bytes.size()) / static_cast<double>(q.float_bytes.size());
  std::printf("[ int8 ] lenet QDQ file %zu bytes, float %zu bytes: %.3fx\n", q.int8_bytes.size(), q.float_bytes.size(),
              ratio);
  EXPECT_LE(ratio, 0.3);
}

TEST(Int8Onnx, RefusesOpsetsBelow13) {
  Quantized q = quantized("mlp", {1, 8, 8}, 3, 1611);
  for (int opset : {9, 11, 12}) {
    try {
      onnx_model_bytes(q.model, q.info, {opset});
      FAIL() << opset;
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find("needs opset 13"), std::string::npos) << e.what();
    }
  }
  EXPECT_NO_THROW(onnx_model_bytes(q.model, q.info, {onnx_max_opset()}));
}

TEST(Int8Onnx, RoundTripIsExact) {
  const char* unusual =
      "conv 4 k3x2 p1 s2, tanh, avgpool 3 s2 p1, conv 8 k2 nobias, relu, maxpool 2 p1, flatten, "
      "linear 20 nobias, tanh, linear";
  uint64_t seed = 1612;
  for (const auto& [arch, chw, classes] : {std::tuple<std::string, Shape, int>{"lenet", {1, 28, 28}, 10},
                                           {"lenet-relu", {1, 28, 20}, 9},
                                           {unusual, {2, 17, 15}, 7}}) {
    Quantized q = quantized(arch, chw, classes, ++seed);
    LoadedModel back = import_onnx_bytes(q.int8_bytes, "int8.onnx");
    ASSERT_NE(back.model.quantization(), nullptr) << arch;
    const Quantization& a = *q.model.quantization();
    const Quantization& b = *back.model.quantization();
    ASSERT_EQ(a.layers.size(), b.layers.size());
    for (size_t i = 0; i < a.layers.size(); ++i) {
      EXPECT_EQ(a.layers[i].layer, b.layers[i].layer);
      EXPECT_EQ(a.layers[i].input_scale, b.layers[i].input_scale);
      EXPECT_EQ(a.layers[i].input_zero_point, b.layers[i].input_zero_point);
      EXPECT_EQ(a.layers[i].weight_scales, b.layers[i].weight_scales);
      EXPECT_EQ(a.layers[i].weights, b.layers[i].weights);
      EXPECT_EQ(a.layers[i].bias, b.layers[i].bias);
    }
    Rng rng(seed);
    const Tensor x = test::random_tensor({9, chw[0], chw[1], chw[2]}, rng, 0, 1);
    EXPECT_EQ(max_abs_diff(q.model.forward(x), back.model.forward(x)), 0.0f) << arch;
    // Through load_model too (what eval, predict and the C API call).
    TempDir dir;
    write_file_atomic(dir / "m.onnx", q.int8_bytes);
    LoadedModel loaded = load_model(dir / "m.onnx");
    EXPECT_NE(loaded.model.quantization(), nullptr);
    EXPECT_EQ(max_abs_diff(q.model.forward(x), loaded.model.forward(x)), 0.0f) << arch;
  }
}

TEST(Int8Onnx, ImportsOtherToolsQdqStyles) {
  // The same model written the way other quantizers do: int8 activations
  // (zero point shifted by 128) stored in int32_data instead of raw bytes,
  // and weight DequantizeLinear nodes placed right before their Conv/Gemm.
  Quantized q = quantized("lenet", {1, 28, 28}, 10, 1615);
  onnx::ModelProto m = parse(q.int8_bytes);
  // int8 activations: zero point z − 128 of type INT8.
  for (auto& t : *m.mutable_graph()->mutable_initializer()) {
    if (!t.name().ends_with(".input_zero_point")) continue;
    const int z = static_cast<uint8_t>(t.raw_data()[0]);
    t.clear_raw_data();
    t.set_data_type(onnx::TensorProto::INT8);
    t.add_int32_data(z - 128);
  }
  // Weight DequantizeLinear nodes moved next to their consumers (reverse order of the graph).
  auto* nodes = m.mutable_graph()->mutable_node();
  std::vector<onnx::NodeProto> all(nodes->begin(), nodes->end());
  nodes->Clear();
  std::vector<onnx::NodeProto> weights;
  for (const auto& n : all)
    if (n.op_type() == "DequantizeLinear" && n.input(0).find("_quantized") != std::string::npos &&
        n.input(0).find("input") == std::string::npos)
      weights.push_back(n);
  for (const auto& n : all) {
    if (std::find_if(weights.begin(), weights.end(), [&](const auto& w) { return w.name() == n.name(); }) !=
        weights.end())
      continue;
    if (n.op_type() == "Conv" || n.op_type() == "Gemm")
      for (const auto& w : weights)
        if (w.output(0) == n.input(1) || (n.input_size() > 2 && w.output(0) == n.input(2))) *nodes->Add() = w;
    *nodes->Add() = n;
  }
  LoadedModel back = import_onnx_bytes(serialize(m), "other.onnx");
  ASSERT_NE(back.model.quantization(), nullptr);
  EXPECT_EQ(back.model.quantization()->layers[0].input_zero_point, q.model.quantization()->layers[0].input_zero_point);
  Rng rng(1615);
  const Tensor x = test::random_tensor({5, 1, 28, 28}, rng, 0, 1);
  EXPECT_EQ(max_abs_diff(q.model.forward(x), back.model.forward(x)), 0.0f);
}

TEST(Int8Onnx, RefusesBadInt8FilesNamingTheNode) {
  Quantized q = quantized("lenet", {1, 28, 28}, 10, 1616);
  auto edited = [&](auto edit) {
    onnx::ModelProto m = parse(q.int8_bytes);
    edit(m);
    return import_error(serialize(m));
  };
  auto set_float = [](onnx::TensorProto* t, size_t i, float v) {
    std::string raw = t->raw_data();
    std::memcpy(raw.data() + 4 * i, &v, 4);
    t->set_raw_data(raw);
  };
  struct Case {
    std::string what;
    std::function<void(onnx::ModelProto&)> edit;
    std::string expected;
  };
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const std::vector<Case> cases = {
      {"zero input scale", [&](auto& m) { set_float(initializer(m, "3.input_scale"), 0, 0.0f); },
       "node '/3/QuantizeLinear' (QuantizeLinear): scale '3.input_scale' holds 0.000000, not a positive finite"},
      {"negative weight scale", [&](auto& m) { set_float(initializer(m, "0.weight_scale"), 2, -0.5f); },
       "node '/0/weight/DequantizeLinear' (DequantizeLinear): scale '0.weight_scale' holds -0.500000"},
      {"NaN bias scale", [&](auto& m) { set_float(initializer(m, "7.bias_scale"), 0, nan); },
       "node '/7/bias/DequantizeLinear' (DequantizeLinear): scale '7.bias_scale' holds nan"},
      {"zero point out of range",
       [&](auto& m) {
         auto* t = initializer(m, "0.input_zero_point");
         t->clear_raw_data();
         t->add_int32_data(300);
       },
       "node '/0/QuantizeLinear' (QuantizeLinear): tensor '0.input_zero_point' holds 300, out of range for UINT8"},
      {"asymmetric weights",
       [&](auto& m) {
         auto* t = initializer(m, "3.weight_zero_point");
         std::string raw = t->raw_data();
         raw[1] = 3;
         t->set_raw_data(raw);
       },
       "node '/3/weight/DequantizeLinear' (DequantizeLinear): weight zero point 3"},
      {"DQ scale differs from Q",
       [&](auto& m) {
         // The DequantizeLinear of the first input reads another layer's scale.
         for (auto& n : *m.mutable_graph()->mutable_node())
           if (n.name() == "/0/DequantizeLinear") n.set_input(1, "3.input_scale");
       },
       "node '/0/DequantizeLinear' (DequantizeLinear): its scale and zero point differ"},
      {"bias scale not input × weight", [&](auto& m) { set_float(initializer(m, "9.bias_scale"), 1, 1.0f); },
       "node '/9/bias/DequantizeLinear' (DequantizeLinear): bias scale 1.000000 of output 1"},
      {"QDQ before a pooling",
       [&](auto& m) {
         // Move layer 3's input QDQ in front of the pooling (layer 2) instead.
         for (auto& n : *m.mutable_graph()->mutable_node()) {
           if (n.name() == "/3/QuantizeLinear") n.set_input(0, "/1/Sigmoid_output_0");
           if (n.name() == "/2/AveragePool") n.set_input(0, "/3/input_dequantized");
           if (n.name() == "/3/Conv") n.set_input(0, "/2/AveragePool_output_0");
         }
         // ... in graph order: the QDQ pair before the pooling node.
         auto* nodes = m.mutable_graph()->mutable_node();
         int pool = -1, qn = -1;
         for (int i = 0; i < nodes->size(); ++i) {
           if (nodes->Get(i).name() == "/2/AveragePool") pool = i;
           if (nodes->Get(i).name() == "/3/QuantizeLinear") qn = i;
         }
         onnx::NodeProto p = nodes->Get(pool);
         for (int i = pool; i < qn + 1; ++i) *nodes->Mutable(i) = nodes->Get(i + 1);
         *nodes->Mutable(qn + 1) = p;
       },
       "node '/3/QuantizeLinear' (QuantizeLinear): QuantizeLinear/DequantizeLinear followed by AveragePool is not "
       "supported"},
      {"float weights behind a quantized input",
       [&](auto& m) {
         for (auto& n : *m.mutable_graph()->mutable_node())
           if (n.name() == "/0/Conv") n.set_input(1, "0.weight_quantized");
       },
       "node '/0/Conv' (Conv): its input is quantized but its weight '0.weight_quantized' is not an int8 "
       "DequantizeLinear"},
      {"some layers left in float",
       [&](auto& m) {
         for (auto& n : *m.mutable_graph()->mutable_node())
           if (n.name() == "/11/Gemm") n.set_input(0, "/10/Sigmoid_output_0");
         auto* nodes = m.mutable_graph()->mutable_node();
         for (int i = nodes->size() - 1; i >= 0; --i)
           if (nodes->Get(i).name() == "/11/QuantizeLinear" || nodes->Get(i).name() == "/11/DequantizeLinear")
             nodes->DeleteSubrange(i, 1);
       },
       "node '/11/Gemm' (Gemm): its weights are dequantized int8 but its input is not quantized"},
  };
  for (const Case& c : cases) {
    const std::string error = edited(c.edit);
    EXPECT_NE(error.find("int8.onnx"), std::string::npos) << c.what << ": " << error;
    EXPECT_NE(error.find(c.expected), std::string::npos) << c.what << ": " << error;
  }
}

TEST(Int8Onnx, OnnxRuntimeRunsTheQdqFile) {
  if (!onnxruntime_available()) GTEST_SKIP() << "LENET_SKIP_ONNXRUNTIME is set";
  TempDir dir;
  uint64_t seed = 1620;
  for (const std::string arch : {"lenet", "lenet-max", "lenet-relu"}) {
    Quantized q = quantized(arch, {1, 28, 28}, 10, ++seed, onnxruntime_options());
    write_file_atomic(dir / (arch + ".onnx"), q.int8_bytes);
    Rng rng(seed);
    const Tensor x = test::random_tensor({64, 1, 28, 28}, rng, 0, 1);
    const std::vector<float> theirs = run_onnxruntime(dir / (arch + ".onnx"), x, dir);
    const Tensor& ours = q.model.forward(x);
    ASSERT_EQ(theirs.size(), static_cast<size_t>(ours.numel())) << arch;
    // The same integer kernels; the float layers between them (sigmoid,
    // average pooling) round differently in ONNX Runtime and on each of our
    // ISA paths, so a value that lands on a rounding boundary of the next
    // QuantizeLinear may come out one step apart and move some logits slightly
    // (seen on the baseline path: 3 of 640 logits, 0.0014 of the range). So:
    // nearly every logit agrees to 1e-3 of the range, all to 1e-2.
    double scale = 0;
    for (int64_t i = 0; i < ours.numel(); ++i) scale = std::max(scale, std::fabs(static_cast<double>(ours[i])));
    double diff = 0;
    int off = 0;
    for (size_t i = 0; i < theirs.size(); ++i) {
      const double d = std::fabs(static_cast<double>(theirs[i]) - ours[static_cast<int64_t>(i)]) / scale;
      diff = std::max(diff, d);
      off += d > 1e-3;
    }
    EXPECT_LE(diff, 1e-2) << arch;
    EXPECT_LE(off, static_cast<int>(theirs.size()) / 50) << arch << ": logits more than 1e-3 apart";
    std::printf("[ onnxruntime ] %s int8 (%d-bit weights): relative difference %.3g, %d of %zu logits beyond 1e-3\n",
                arch.c_str(), onnxruntime_options().reduce_range ? 7 : 8, diff, off, theirs.size());
  }
}

// The goals on Fashion-MNIST's 10,000 test images, for a model
// someone else trained (PyTorch, tests/data/pytorch-onnx): ONNX Runtime's
// classes on our QDQ file agree with ours on ≥ 99.5%, and with its own run of
// the float model on ≥ 99%.
TEST(Int8Onnx, FashionMnistAgreementWithOnnxRuntime) {
  if (!onnxruntime_available()) GTEST_SKIP() << "LENET_SKIP_ONNXRUNTIME is set";
  const fs::path data_dir = default_data_dir();
  ASSERT_TRUE(is_idx_folder(data_dir)) << data_dir << ": install dataset-fashion-mnist (scripts/setup.sh)";
  const DataSplit data = load_idx_folder(data_dir);
  auto images = [](const Dataset& d, int64_t n) {
    DataLoader loader(d, static_cast<int>(std::min(n, d.count)), false, 0);
    Tensor x;
    std::vector<int32_t> labels;
    loader.start_epoch(0);
    loader.next(x, labels);
    return x;
  };
  TempDir dir;
  const fs::path float_path = kFixtures / "lenet-sigmoid-avg-28x28-10.onnx";
  LoadedModel m = import_onnx(float_path);
  const QuantizeOptions options = onnxruntime_options();
  m.model.set_quantization(quantize_model(m.model, images(data.train, 1000), options));
  export_onnx(dir / "int8.onnx", m.model, m.info, {13});
  const Tensor test = images(data.test, 10000);
  const std::vector<int> ours = classes_of(m.model.forward(test).span(), 10);
  const std::vector<int> ort_int8 = classes_of(run_onnxruntime(dir / "int8.onnx", test, dir), 10);
  fs::copy_file(float_path, dir / "float.onnx");
  const std::vector<int> ort_float = classes_of(run_onnxruntime(dir / "float.onnx", test, dir), 10);
  const double with_ours = agreement(ort_int8, ours), with_float = agreement(ort_int8, ort_float);
  std::printf(
      "[ onnxruntime ] Fashion-MNIST test set, int8 QDQ (%d-bit weights): agrees with lenet.cpp int8 on %.2f%%, "
      "with ONNX Runtime fp32 on %.2f%%\n",
      options.reduce_range ? 7 : 8, 100 * with_ours, 100 * with_float);
  EXPECT_GE(with_ours, 0.995);
  EXPECT_GE(with_float, 0.99);
}

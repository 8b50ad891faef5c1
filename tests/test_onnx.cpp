// ONNX: export checked against the graph we expect and run in ONNX Runtime;
// import checked against PyTorch's own files and logits; exact round trips;
// every kind of bad file refused with a message naming the file and the node.
#include <gtest/gtest.h>
#include <onnx/onnx_pb.h>

#include <sys/wait.h>
#include <array>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "lenet/fileio.h"
#include "lenet/onnx.h"
#include "test_util.h"

using namespace lenet;
namespace fs = std::filesystem;

namespace {

const fs::path kFixtures = fs::path(LENET_TEST_DATA) / "pytorch-onnx";
const fs::path kRunJs = fs::path(LENET_SOURCE_DIR) / "tests" / "onnxruntime" / "run.js";

struct TempDir {
  fs::path path;
  TempDir() {
    std::string pattern = (fs::temp_directory_path() / "lenet-onnx-XXXXXX").string();
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

// max|a − b| / max|b|: the error relative to the scale of the logits.
double relative_error(std::span<const float> a, std::span<const float> b) {
  EXPECT_EQ(a.size(), b.size());
  double diff = 0, scale = 0;
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) {
    diff = std::max(diff, std::fabs(static_cast<double>(a[i]) - b[i]));
    scale = std::max(scale, std::fabs(static_cast<double>(b[i])));
  }
  return diff / std::max(scale, 1e-30);
}

ModelInfo make_info(const Sequential& model, const Shape& chw, int classes) {
  ModelInfo info;
  info.arch = model.spec();
  info.input_shape = chw;
  for (int k = 0; k < classes; ++k) info.class_names.push_back("class " + std::to_string(k));
  info.preprocessing.resize_height = static_cast<int>(chw[1]);
  info.preprocessing.resize_width = static_cast<int>(chw[2]);
  info.preprocessing.normalization = Normalization{{0.286f}, {0.353f}};
  info.dataset = "fashion-mnist";
  info.epoch = 7;
  info.metrics = {{"test_acc", 0.875}, {"test_loss", 0.3125}};
  return info;
}

struct Built {
  Sequential model;
  ModelInfo info;
};

// A model with random weights and random (non-zero) biases.
Built build(const std::string& arch, const Shape& chw, int classes, uint64_t seed) {
  Rng rng(seed);
  Built b{build_model(arch, chw, classes, &rng), {}};
  for (auto* p : b.model.parameters())
    if (p->name.ends_with("bias"))
      for (auto& v : p->values()) v = rng.uniform(-0.5f, 0.5f);
  b.info = make_info(b.model, chw, classes);
  return b;
}

Tensor logits_of(Sequential& model, const Tensor& x) { return model.forward(x); }

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

const onnx::AttributeProto* attr(const onnx::NodeProto& n, const std::string& name) {
  for (const auto& a : n.attribute())
    if (a.name() == name) return &a;
  return nullptr;
}

std::vector<int64_t> ints(const onnx::NodeProto& n, const std::string& name) {
  const auto* a = attr(n, name);
  return a ? std::vector<int64_t>(a->ints().begin(), a->ints().end()) : std::vector<int64_t>{};
}

std::string import_error(const std::string& bytes, const std::string& source = "model.onnx") {
  try {
    import_onnx_bytes(bytes, source);
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  ADD_FAILURE() << "import of " << source << " did not fail";
  return {};
}

// ---- ONNX Runtime through node ----

struct OrtRun {
  int status = -1;
  std::string output;  // stdout and stderr
};

OrtRun run_onnxruntime(const std::vector<std::string>& args) {
  std::string cmd = "node '" + kRunJs.string() + "'";
  for (const auto& a : args) cmd += " '" + a + "'";
  cmd += " 2>&1";
  OrtRun r;
  FILE* pipe = popen(cmd.c_str(), "r");
  if (!pipe) return r;
  std::array<char, 4096> buf;
  for (size_t n; (n = fread(buf.data(), 1, buf.size(), pipe)) > 0;) r.output.append(buf.data(), n);
  const int raw = pclose(pipe);
  r.status = WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
  return r;
}

// ONNX Runtime is installed by scripts/setup.sh; a missing install is a
// failure, unless the environment explicitly opts out.
bool onnxruntime_available() {
  if (std::getenv("LENET_SKIP_ONNXRUNTIME")) return false;
  const fs::path module = kRunJs.parent_path() / "node_modules" / "onnxruntime-node";
  EXPECT_TRUE(fs::exists(module)) << "ONNX Runtime is not installed in " << module.parent_path()
                                  << ": run scripts/setup.sh (or set LENET_SKIP_ONNXRUNTIME=1)";
  return fs::exists(module);
}

// Exports `b`, runs it in ONNX Runtime on batches of 1 and 64 and compares
// with our forward pass. Returns the worst relative error.
double check_in_onnxruntime(Built& b, const TempDir& dir, const std::string& name, int opset) {
  const fs::path model_path = dir / (name + ".onnx");
  export_onnx(model_path, b.model, b.info, {opset});
  const Shape& chw = b.info.input_shape;
  const int64_t classes = static_cast<int64_t>(b.info.class_names.size());
  Rng rng(99);
  std::vector<std::string> args = {model_path.string()};
  std::vector<Tensor> inputs;
  for (int64_t batch : {1, 64}) {
    inputs.push_back(test::random_tensor({batch, chw[0], chw[1], chw[2]}, rng, 0.0f, 1.0f));
    const std::string stem = (dir / (name + "-" + std::to_string(batch))).string();
    write_f32(stem + ".in.f32", inputs.back().span());
    args.insert(args.end(), {stem + ".in.f32",
                             std::to_string(batch) + "x" + std::to_string(chw[0]) + "x" + std::to_string(chw[1]) + "x" +
                                 std::to_string(chw[2]),
                             stem + ".out.f32"});
  }
  OrtRun r = run_onnxruntime(args);
  EXPECT_EQ(r.status, 0) << name << ": " << r.output;
  if (r.status != 0) return INFINITY;
  const auto report = nlohmann::json::parse(r.output);
  EXPECT_EQ(report["inputNames"], nlohmann::json({"input"})) << name;
  EXPECT_EQ(report["outputNames"], nlohmann::json({"logits"})) << name;
  double worst = 0;
  for (size_t i = 0; i < inputs.size(); ++i) {
    const int64_t batch = inputs[i].size(0);
    EXPECT_EQ(report["results"][i]["dims"], nlohmann::json({batch, classes})) << name;
    const Tensor ours = logits_of(b.model, inputs[i]);
    const std::vector<float> theirs = read_f32(args[3 + 3 * i]);
    const double err = relative_error(theirs, ours.span());
    EXPECT_LE(err, 1e-4) << name << " opset " << opset << " batch " << batch;
    worst = std::max(worst, err);
  }
  return worst;
}

// An unusual stack: strides, padded pools (average counting the padding),
// rectangular kernels, no biases, Tanh, two input channels.
const char* kUnusualSpec =
    "conv 4 k3x2 p1 s2, tanh, avgpool 3 s2 p1, conv 8 k2 nobias, relu, maxpool 2 p1, flatten, "
    "linear 20 nobias, tanh, linear";

}  // namespace

// ---------------------------------------------------------------- export ----

TEST(OnnxExport, WritesTheExpectedGraph) {
  Built b = build("lenet", {1, 28, 28}, 10, 1);
  const onnx::ModelProto m = parse(onnx_model_bytes(b.model, b.info));
  EXPECT_EQ(m.ir_version(), 6);
  ASSERT_EQ(m.opset_import_size(), 1);
  EXPECT_EQ(m.opset_import(0).version(), 11);
  EXPECT_EQ(m.producer_name(), "lenet.cpp");

  const auto& g = m.graph();
  std::vector<std::string> ops;
  for (const auto& n : g.node()) ops.push_back(n.op_type());
  EXPECT_EQ(ops, (std::vector<std::string>{"Conv", "Sigmoid", "AveragePool", "Conv", "Sigmoid", "AveragePool",
                                           "Flatten", "Gemm", "Sigmoid", "Gemm", "Sigmoid", "Gemm"}));
  EXPECT_EQ(ints(g.node(0), "kernel_shape"), (std::vector<int64_t>{5, 5}));
  EXPECT_EQ(ints(g.node(0), "pads"), (std::vector<int64_t>{2, 2, 2, 2}));
  EXPECT_EQ(ints(g.node(0), "strides"), (std::vector<int64_t>{1, 1}));
  EXPECT_EQ(ints(g.node(3), "pads"), (std::vector<int64_t>{0, 0, 0, 0}));
  EXPECT_EQ(ints(g.node(2), "kernel_shape"), (std::vector<int64_t>{2, 2}));
  EXPECT_EQ(ints(g.node(2), "strides"), (std::vector<int64_t>{2, 2}));
  ASSERT_NE(attr(g.node(2), "count_include_pad"), nullptr);
  EXPECT_EQ(attr(g.node(2), "count_include_pad")->i(), 1);
  EXPECT_EQ(attr(g.node(6), "axis")->i(), 1);
  EXPECT_EQ(attr(g.node(7), "transB")->i(), 1);

  // A chain from `input` to `logits`.
  EXPECT_EQ(g.node(0).input(0), "input");
  for (int i = 1; i < g.node_size(); ++i) EXPECT_EQ(g.node(i).input(0), g.node(i - 1).output(0));
  EXPECT_EQ(g.node(g.node_size() - 1).output(0), "logits");

  ASSERT_EQ(g.input_size(), 1);
  const auto& in = g.input(0).type().tensor_type();
  EXPECT_EQ(g.input(0).name(), "input");
  EXPECT_EQ(in.elem_type(), onnx::TensorProto::FLOAT);
  ASSERT_EQ(in.shape().dim_size(), 4);
  EXPECT_EQ(in.shape().dim(0).dim_param(), "batch");
  EXPECT_FALSE(in.shape().dim(0).has_dim_value());
  EXPECT_EQ(in.shape().dim(1).dim_value(), 1);
  EXPECT_EQ(in.shape().dim(2).dim_value(), 28);
  EXPECT_EQ(in.shape().dim(3).dim_value(), 28);
  ASSERT_EQ(g.output_size(), 1);
  EXPECT_EQ(g.output(0).name(), "logits");
  EXPECT_EQ(g.output(0).type().tensor_type().shape().dim(0).dim_param(), "batch");
  EXPECT_EQ(g.output(0).type().tensor_type().shape().dim(1).dim_value(), 10);
  // Shape inference filled in every intermediate tensor.
  EXPECT_EQ(g.value_info_size(), g.node_size() - 1);

  // Initializers: our state dict, byte for byte.
  auto params = b.model.parameters();
  ASSERT_EQ(g.initializer_size(), static_cast<int>(params.size()));
  for (int i = 0; i < g.initializer_size(); ++i) {
    const auto& t = g.initializer(i);
    EXPECT_EQ(t.name(), params[i]->name);
    EXPECT_EQ(Shape(t.dims().begin(), t.dims().end()), params[i]->shape);
    ASSERT_EQ(t.raw_data().size(), params[i]->values().size_bytes());
    EXPECT_EQ(std::memcmp(t.raw_data().data(), params[i]->value, t.raw_data().size()), 0) << t.name();
  }

  std::map<std::string, std::string> meta;
  for (const auto& p : m.metadata_props()) meta[p.key()] = p.value();
  EXPECT_EQ(meta["lenet.arch"], b.model.spec());
  EXPECT_EQ(meta["lenet.input_shape"], "[1,28,28]");
  EXPECT_EQ(nlohmann::json::parse(meta["class_names"]).get<std::vector<std::string>>(), b.info.class_names);
  EXPECT_EQ(nlohmann::json::parse(meta["lenet.class_names"]).get<std::vector<std::string>>(), b.info.class_names);
  EXPECT_EQ(meta["normalization_mean"], "0.286000013");
  auto pre = nlohmann::json::parse(meta["lenet.preprocessing"]);
  EXPECT_FLOAT_EQ(pre["normalization"]["std"].get<float>(), 0.353f);
  EXPECT_FLOAT_EQ(pre["normalization"]["mean"].get<float>(), 0.286f);
  EXPECT_EQ(pre["resize"], nlohmann::json({28, 28}));
  EXPECT_EQ(meta["lenet.epoch"], "7");
}

TEST(OnnxExport, PaddedPoolsAndOpsets) {
  Built b = build(kUnusualSpec, {2, 17, 15}, 7, 2);
  for (int opset : {9, 10, 11, 13, 17}) {
    const onnx::ModelProto m = parse(onnx_model_bytes(b.model, b.info, {opset}));
    EXPECT_EQ(m.opset_import(0).version(), opset);
    const auto& g = m.graph();
    EXPECT_EQ(ints(g.node(0), "kernel_shape"), (std::vector<int64_t>{3, 2}));
    EXPECT_EQ(ints(g.node(0), "strides"), (std::vector<int64_t>{2, 2}));
    EXPECT_EQ(ints(g.node(2), "pads"), (std::vector<int64_t>{1, 1, 1, 1}));
    EXPECT_EQ(attr(g.node(2), "count_include_pad")->i(), 1);
    EXPECT_EQ(g.node(3).input_size(), 2) << "conv without bias has no B input";
    EXPECT_EQ(g.node(5).op_type(), "MaxPool");
    EXPECT_EQ(ints(g.node(5), "pads"), (std::vector<int64_t>{1, 1, 1, 1}));
    // Gemm's C is optional from opset 11; before, a bias-free layer is a MatMul.
    EXPECT_EQ(g.node(7).op_type(), opset >= 11 ? "Gemm" : "MatMul");
    EXPECT_EQ(g.node(7).input_size(), 2);
  }
}

TEST(OnnxExport, RejectsOpsetsOutsideTheSupportedRange) {
  Built b = build("mlp", {1, 8, 8}, 3, 3);
  EXPECT_GE(onnx_max_opset(), 17);
  for (int opset : {8, onnx_max_opset() + 1}) {
    try {
      onnx_model_bytes(b.model, b.info, {opset});
      ADD_FAILURE() << "opset " << opset << " accepted";
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find("opset " + std::to_string(opset) + " is not supported (expected 9.."),
                std::string::npos)
          << e.what();
    }
  }
}

namespace {
// A layer of our own that ONNX export cannot know.
class Square : public Module {
 public:
  std::string type() const override { return "Square"; }
  std::string describe() const override { return "Square()"; }
  std::string spec() const override { return "square"; }
  Shape output_shape(const Shape& in) const override { return in; }
  void forward(const Tensor& x, Tensor& y) override {
    y.resize(x.shape());
    for (int64_t i = 0; i < x.numel(); ++i) y[i] = x[i] * x[i];
  }
  void backward(const Tensor&, const Tensor&, const Tensor&, Tensor*) override {}
};
}  // namespace

TEST(OnnxExport, NamesALayerWithoutOnnxEquivalent) {
  Sequential model;
  model.add(std::make_unique<Flatten>());
  model.add(std::make_unique<Linear>(16, 4));
  model.add(std::make_unique<Square>());
  ModelInfo info = make_info(model, {1, 4, 4}, 4);
  try {
    onnx_model_bytes(model, info);
    FAIL() << "exported a Square layer";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("layer 2 (Square())"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("has no ONNX equivalent"), std::string::npos) << e.what();
  }
}

TEST(OnnxExport, RejectsInfoThatDoesNotFitTheModel) {
  Built b = build("lenet", {1, 28, 28}, 10, 4);
  ModelInfo wrong_shape = b.info;
  wrong_shape.input_shape = {1, 3, 3};
  EXPECT_THROW(onnx_model_bytes(b.model, wrong_shape), std::invalid_argument);
  ModelInfo wrong_classes = b.info;
  wrong_classes.class_names.pop_back();
  try {
    onnx_model_bytes(b.model, wrong_classes);
    FAIL();
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("10 outputs but 9 class names"), std::string::npos) << e.what();
  }
  ModelInfo no_names = b.info;
  no_names.class_names.clear();  // defaults to "0".."9"
  LoadedModel back = import_onnx_bytes(onnx_model_bytes(b.model, no_names), "t.onnx");
  EXPECT_EQ(back.info.class_names.front(), "0");
  EXPECT_EQ(back.info.class_names.back(), "9");
}

TEST(OnnxExport, FailedWriteLeavesNoPartialFileAndKeepsTheOldOne) {
  TempDir dir;
  Built good = build("mlp", {1, 8, 8}, 3, 5);
  const fs::path target = dir / "model.onnx";
  export_onnx(target, good.model, good.info);
  const std::string before = read_file(target);
  EXPECT_NO_THROW(import_onnx(target));

  // An export that fails (a layer ONNX cannot express) leaves the file alone.
  Sequential bad;
  bad.add(std::make_unique<Flatten>());
  bad.add(std::make_unique<Square>());
  ModelInfo bad_info = make_info(bad, {1, 2, 2}, 4);
  EXPECT_THROW(export_onnx(target, bad, bad_info), std::invalid_argument);
  EXPECT_EQ(read_file(target), before);

  // A write that fails (the destination is a folder) leaves no temporary file behind.
  fs::create_directory(dir / "taken.onnx");
  EXPECT_THROW(export_onnx(dir / "taken.onnx", good.model, good.info), std::runtime_error);
  EXPECT_TRUE(fs::is_directory(dir / "taken.onnx"));
  EXPECT_TRUE(fs::is_empty(dir / "taken.onnx"));

  // A missing folder: an error naming the path, nothing created.
  try {
    export_onnx(dir / "missing" / "m.onnx", good.model, good.info);
    FAIL();
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find((dir / "missing").string()), std::string::npos) << e.what();
  }
  size_t entries = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(dir.path)) ++entries;
  EXPECT_EQ(entries, 2u) << "only model.onnx and taken.onnx";
  EXPECT_EQ(read_file(target), before);
}

// ------------------------------------------------------------ ONNX Runtime ----

TEST(OnnxRuntime, BuiltinModelsMatchLenetCpp) {
  if (!onnxruntime_available()) GTEST_SKIP() << "LENET_SKIP_ONNXRUNTIME is set";
  TempDir dir;
  struct Geometry {
    Shape chw;
    int classes;
  };
  double worst = 0;
  uint64_t seed = 10;
  for (const std::string arch : {"lenet", "lenet-max", "lenet-relu", "mlp"})
    for (const Geometry& geo : {Geometry{{1, 28, 28}, 10}, Geometry{{1, 28, 20}, 9}}) {
      Built b = build(arch, geo.chw, geo.classes, ++seed);
      const std::string name = arch + "-" + std::to_string(geo.chw[1]) + "x" + std::to_string(geo.chw[2]);
      worst = std::max(worst, check_in_onnxruntime(b, dir, name, kOnnxDefaultOpset));
    }
  std::printf("[ onnxruntime ] worst relative error over 8 models, batches 1 and 64: %.3g\n", worst);
}

TEST(OnnxRuntime, UnusualLayersAtEveryOpset) {
  if (!onnxruntime_available()) GTEST_SKIP() << "LENET_SKIP_ONNXRUNTIME is set";
  TempDir dir;
  Built b = build(kUnusualSpec, {2, 17, 15}, 7, 20);
  for (int opset : {9, 10, 11, 13, 17}) check_in_onnxruntime(b, dir, "unusual-opset" + std::to_string(opset), opset);
}

// ------------------------------------------------------------------ import ----

TEST(OnnxImport, RunsPyTorchFilesWithPyTorchsLogits) {
  const auto index = nlohmann::json::parse(read_file(kFixtures / "index.json"));
  ASSERT_EQ(index.size(), 3u);
  const std::map<std::string, std::string> expected_arch = {
      {"lenet-sigmoid-avg-28x28-10",
       "conv 6 k5 p2, sigmoid, avgpool 2, conv 16 k5, sigmoid, avgpool 2, flatten, linear 120, sigmoid, "
       "linear 84, sigmoid, linear 10"},
      {"lenet-sigmoid-max-28x28-10",
       "conv 6 k5 p2, sigmoid, maxpool 2, conv 16 k5, sigmoid, maxpool 2, flatten, linear 120, sigmoid, "
       "linear 84, sigmoid, linear 10"},
      {"lenet-relu-max-28x20-9",
       "conv 6 k5 p2, relu, maxpool 2, conv 16 k5, relu, maxpool 2, flatten, linear 120, relu, linear 84, relu, "
       "linear 9"},
  };
  for (const auto& [name, entry] : index.items()) {
    LoadedModel m = import_onnx(kFixtures / entry["onnx"].get<std::string>());
    const Shape in_shape = entry["input_shape"].get<Shape>();
    const Shape out_shape = entry["logits_shape"].get<Shape>();
    EXPECT_EQ(m.info.arch, expected_arch.at(name));
    EXPECT_EQ(m.info.input_shape, Shape(in_shape.begin() + 1, in_shape.end()));
    ASSERT_EQ(static_cast<int64_t>(m.info.class_names.size()), out_shape[1]);
    EXPECT_EQ(m.info.class_names.front(), "0");
    EXPECT_EQ(m.info.class_names.back(), std::to_string(out_shape[1] - 1));
    EXPECT_EQ(m.model.parameters().front()->name, "0.weight");

    const Tensor x(in_shape, read_f32(kFixtures / entry["input"].get<std::string>()));
    const std::vector<float> expected = read_f32(kFixtures / entry["logits"].get<std::string>());
    const Tensor& y = m.model.forward(x);
    ASSERT_EQ(y.shape(), out_shape);
    const double err = relative_error(y.span(), expected);
    EXPECT_LE(err, 1e-4) << name;
    std::printf("[ pytorch ] %s: relative error %.3g\n", name.c_str(), err);

    // The rebuilt spec re-creates the same model, so it can be saved as a checkpoint.
    Sequential again = build_model(m.info.arch, m.info.input_shape, static_cast<int>(out_shape[1]), nullptr);
    ASSERT_EQ(again.parameter_count(), m.model.parameter_count());
    std::copy(m.model.flat_values().begin(), m.model.flat_values().end(), again.flat_values().begin());
    EXPECT_EQ(max_abs_diff(again.forward(x), y), 0.0f);
  }
}

TEST(OnnxImport, RoundTripIsExact) {
  struct Case {
    std::string arch;
    Shape chw;
    int classes, opset;
  };
  const std::vector<Case> cases = {{"lenet", {1, 28, 28}, 10, 11},      {"lenet-max", {1, 28, 20}, 9, 11},
                                   {"lenet-relu", {1, 28, 28}, 10, 17}, {"mlp", {1, 28, 20}, 9, 11},
                                   {kUnusualSpec, {2, 17, 15}, 7, 9},   {kUnusualSpec, {2, 17, 15}, 7, 13}};
  Rng rng(30);
  for (const auto& c : cases) {
    Built b = build(c.arch, c.chw, c.classes, rng.next());
    LoadedModel back = import_onnx_bytes(onnx_model_bytes(b.model, b.info, {c.opset}), "round-trip.onnx");
    EXPECT_EQ(back.model.spec(), b.model.spec()) << c.arch;
    EXPECT_EQ(back.info.arch, b.model.spec());
    EXPECT_EQ(back.info.input_shape, c.chw);
    EXPECT_EQ(back.info.class_names, b.info.class_names);
    EXPECT_EQ(back.info.preprocessing.resize_height, b.info.preprocessing.resize_height);
    EXPECT_EQ(back.info.preprocessing.resize_width, b.info.preprocessing.resize_width);
    EXPECT_EQ(back.info.preprocessing.normalization.mean, b.info.preprocessing.normalization.mean);
    EXPECT_EQ(back.info.preprocessing.normalization.std, b.info.preprocessing.normalization.std);
    EXPECT_EQ(back.info.preprocessing.grayscale, b.info.preprocessing.grayscale);
    EXPECT_EQ(back.info.dataset, "fashion-mnist");
    EXPECT_EQ(back.info.epoch, 7);
    EXPECT_EQ(back.info.metrics, b.info.metrics);
    auto p0 = b.model.parameters();
    auto p1 = back.model.parameters();
    ASSERT_EQ(p0.size(), p1.size());
    for (size_t i = 0; i < p0.size(); ++i) EXPECT_EQ(p0[i]->name, p1[i]->name);
    const Tensor x = test::random_tensor({5, c.chw[0], c.chw[1], c.chw[2]}, rng, 0, 1);
    const Tensor ours = b.model.forward(x);
    EXPECT_EQ(max_abs_diff(back.model.forward(x), ours), 0.0f) << c.arch << " opset " << c.opset;
  }
}

namespace {

// Builds graphs the way other exporters write them (PyTorch's Pad +
// AveragePool, MatMul + Add, Reshape), node by node.
struct GraphBuilder {
  onnx::ModelProto m;
  std::string current = "input";
  int count = 0;

  GraphBuilder(int opset, const Shape& chw) {
    m.set_ir_version(6);
    m.set_producer_name("test");
    m.add_opset_import()->set_version(opset);
    auto* in = m.mutable_graph()->add_input();
    in->set_name("input");
    auto* tt = in->mutable_type()->mutable_tensor_type();
    tt->set_elem_type(onnx::TensorProto::FLOAT);
    tt->mutable_shape()->add_dim()->set_dim_param("N");
    for (int64_t d : chw) tt->mutable_shape()->add_dim()->set_dim_value(d);
  }
  onnx::NodeProto& node(const std::string& op, const std::vector<std::string>& extra_inputs = {}) {
    auto* n = m.mutable_graph()->add_node();
    n->set_op_type(op);
    n->set_name(op + "_" + std::to_string(count));
    n->add_input(current);
    for (const auto& e : extra_inputs) n->add_input(e);
    current = op + "_out_" + std::to_string(count++);
    n->add_output(current);
    return *n;
  }
  void floats(const std::string& name, const Shape& dims, const std::vector<float>& values) {
    auto* t = m.mutable_graph()->add_initializer();
    t->set_name(name);
    t->set_data_type(onnx::TensorProto::FLOAT);
    for (int64_t d : dims) t->add_dims(d);
    for (float v : values) t->add_float_data(v);
  }
  void constant_ints(const std::string& name, const std::vector<int64_t>& values) {
    auto* n = m.mutable_graph()->add_node();
    n->set_op_type("Constant");
    n->add_output(name);
    auto* a = n->add_attribute();
    a->set_name("value");
    a->set_type(onnx::AttributeProto::TENSOR);
    a->mutable_t()->set_data_type(onnx::TensorProto::INT64);
    a->mutable_t()->add_dims(static_cast<int64_t>(values.size()));
    a->mutable_t()->set_raw_data(values.data(), values.size() * sizeof(int64_t));
  }
  static void set_ints(onnx::NodeProto& n, const std::string& name, const std::vector<int64_t>& v) {
    auto* a = n.add_attribute();
    a->set_name(name);
    a->set_type(onnx::AttributeProto::INTS);
    for (int64_t x : v) a->add_ints(x);
  }
  static void set_int(onnx::NodeProto& n, const std::string& name, int64_t v) {
    auto* a = n.add_attribute();
    a->set_name(name);
    a->set_type(onnx::AttributeProto::INT);
    a->set_i(v);
  }
  static void set_float(onnx::NodeProto& n, const std::string& name, float v) {
    auto* a = n.add_attribute();
    a->set_name(name);
    a->set_type(onnx::AttributeProto::FLOAT);
    a->set_f(v);
  }
  std::string finish() {
    auto* out = m.mutable_graph()->add_output();
    out->set_name(current);
    out->mutable_type()->mutable_tensor_type()->set_elem_type(onnx::TensorProto::FLOAT);
    return serialize(m);
  }
};

std::vector<float> values_of(const Parameter& p) { return {p.value, p.value + p.numel()}; }

// PyTorch-style graph for  conv 3 k3 p1, relu, avgpool 2 p1, flatten, linear 5, tanh, linear 4
// on 1x6x6: padding as explicit Pad nodes, the flatten as a Reshape, the first
// linear as MatMul + Add, the second as Gemm with transB=0 and alpha/beta.
std::string foreign_graph(int opset, Sequential& reference) {
  GraphBuilder gb(opset, {1, 6, 6});
  auto params = reference.parameters();  // 0.weight 0.bias 4.weight 4.bias 6.weight 6.bias
  auto pad = [&](const std::string& name) {
    const std::vector<int64_t> pads = {0, 0, 1, 1, 0, 0, 1, 1};
    if (opset >= 11) {
      gb.constant_ints(name, pads);
      gb.node("Pad", {name});
    } else {
      GraphBuilder::set_ints(gb.node("Pad"), "pads", pads);
    }
  };
  pad("pads_conv");
  gb.floats("conv.w", {3, 1, 3, 3}, values_of(*params[0]));
  gb.floats("conv.b", {3}, values_of(*params[1]));
  GraphBuilder::set_ints(gb.node("Conv", {"conv.w", "conv.b"}), "kernel_shape", {3, 3});
  gb.node("Relu");
  pad("pads_pool");
  auto& ap = gb.node("AveragePool");
  GraphBuilder::set_ints(ap, "kernel_shape", {2, 2});
  GraphBuilder::set_ints(ap, "strides", {2, 2});
  gb.node("Identity");
  gb.constant_ints("flat_shape", {0, -1});
  gb.node("Reshape", {"flat_shape"});
  // MatMul wants W as [in, out] = the transpose of ours.
  std::vector<float> w1t(48 * 5);
  for (int o = 0; o < 5; ++o)
    for (int k = 0; k < 48; ++k) w1t[k * 5 + o] = params[2]->value[o * 48 + k];
  gb.floats("fc1.wt", {48, 5}, w1t);
  gb.floats("fc1.b", {5}, values_of(*params[3]));
  gb.node("MatMul", {"fc1.wt"});
  gb.node("Add", {"fc1.b"});
  gb.node("Tanh");
  // Gemm with B [in, out], alpha 0.5 and beta 2: store W·2 and b/2.
  std::vector<float> w2t(5 * 4), b2(4);
  for (int o = 0; o < 4; ++o) {
    for (int k = 0; k < 5; ++k) w2t[k * 4 + o] = 2.0f * params[4]->value[o * 5 + k];
    b2[o] = params[5]->value[o] / 2.0f;
  }
  gb.floats("fc2.wt", {5, 4}, w2t);
  gb.floats("fc2.b", {1, 4}, b2);
  auto& gemm = gb.node("Gemm", {"fc2.wt", "fc2.b"});
  GraphBuilder::set_float(gemm, "alpha", 0.5f);
  GraphBuilder::set_float(gemm, "beta", 2.0f);
  return gb.finish();
}

}  // namespace

TEST(OnnxImport, RunsGraphsInOtherExportersStyles) {
  for (int opset : {10, 11, 13}) {
    Built ref = build("conv 3 k3 p1, relu, avgpool 2 p1, flatten, linear 5, tanh, linear 4", {1, 6, 6}, 4, 40);
    LoadedModel m = import_onnx_bytes(foreign_graph(opset, ref.model), "foreign.onnx");
    EXPECT_EQ(m.info.arch, ref.model.spec());
    EXPECT_EQ(m.info.input_shape, (Shape{1, 6, 6}));
    EXPECT_EQ(m.info.class_names, (std::vector<std::string>{"0", "1", "2", "3"}));
    Rng rng(41);
    const Tensor x = test::random_tensor({3, 1, 6, 6}, rng, 0, 1);
    const Tensor expected = ref.model.forward(x);
    EXPECT_LE(relative_error(m.model.forward(x).span(), expected.span()), 1e-6) << "opset " << opset;
  }
}

// ---------------------------------------------------------- import: bad input ----

TEST(OnnxImport, RefusesFilesThatAreNotOnnx) {
  TempDir dir;
  auto write = [&](const std::string& name, const std::string& bytes) {
    write_file_atomic(dir / name, bytes);
    return dir / name;
  };
  struct Case {
    std::string name, bytes, expect;
  };
  std::string safetensors_like("\x40\x00\x00\x00\x00\x00\x00\x00{\"__metadata__\":{}}", 27);
  const std::vector<Case> cases = {
      {"empty.onnx", "", "the file is empty"},
      {"text.onnx", "conv 6 k5 p2, sigmoid\n", "not an ONNX model, or a truncated one"},
      {"png.onnx", std::string("\x89PNG\r\n\x1a\n\0\0\0\rIHDR", 16), "not an ONNX model, or a truncated one"},
      {"checkpoint.onnx", safetensors_like, "not an ONNX model, or a truncated one"},
      {"garbage.onnx", std::string("\x08\x06\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff", 12),
       "not an ONNX model, or a truncated one"},
  };
  for (const auto& c : cases) {
    const fs::path p = write(c.name, c.bytes);
    try {
      import_onnx(p);
      ADD_FAILURE() << c.name << " imported";
    } catch (const std::runtime_error& e) {
      const std::string what = e.what();
      EXPECT_TRUE(what.starts_with(p.string() + ": ")) << what;
      EXPECT_NE(what.find(c.expect), std::string::npos) << what;
    }
  }
  try {
    import_onnx(dir / "missing.onnx");
    FAIL();
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find((dir / "missing.onnx").string()), std::string::npos) << e.what();
  }
}

TEST(OnnxImport, RefusesEveryTruncation) {
  // A small model, cut at every byte: each cut is refused, none crashes or
  // silently loses weights, layers or metadata.
  Built b = build("conv 2 k3, relu, maxpool 2, flatten, linear", {1, 6, 6}, 3, 50);
  const std::string bytes = onnx_model_bytes(b.model, b.info);
  ASSERT_GT(bytes.size(), 500u);
  for (size_t cut = 0; cut < bytes.size(); ++cut) {
    try {
      import_onnx_bytes(std::string_view(bytes).substr(0, cut), "cut.onnx");
      ADD_FAILURE() << "cut at " << cut << " of " << bytes.size() << " imported";
    } catch (const std::runtime_error& e) {
      EXPECT_TRUE(std::string(e.what()).starts_with("cut.onnx: ")) << e.what();
    }
  }
  EXPECT_NO_THROW(import_onnx_bytes(bytes, "whole.onnx"));
}

TEST(OnnxImport, CorruptedBytesAreRefusedOrRunNeverCrash) {
  // Random byte changes anywhere in a file: the import either succeeds (a
  // changed weight value, a renamed node) or throws std::runtime_error naming
  // the file; nothing else escapes, and nothing crashes (run under ASan too).
  Built b = build("conv 2 k3 p1, relu, avgpool 2, flatten, linear", {1, 6, 6}, 3, 55);
  const std::string bytes = onnx_model_bytes(b.model, b.info);
  Rng rng(56);
  int refused = 0;
  for (int trial = 0; trial < 3000; ++trial) {
    std::string damaged = bytes;
    for (int k = 0, n = 1 + static_cast<int>(rng.below(3)); k < n; ++k)
      damaged[rng.below(damaged.size())] = static_cast<char>(rng.below(256));
    try {
      LoadedModel m = import_onnx_bytes(damaged, "damaged.onnx");
      const Shape& in = m.info.input_shape;
      EXPECT_EQ(m.model.layer_shapes({2, in[0], in[1], in[2]}).back(),
                (Shape{2, static_cast<int64_t>(m.info.class_names.size())}));
    } catch (const std::runtime_error& e) {
      EXPECT_TRUE(std::string(e.what()).starts_with("damaged.onnx: ")) << e.what();
      ++refused;
    }
  }
  EXPECT_GT(refused, 1000);
}

TEST(OnnxImport, NamesTheNodeOfAnUnsupportedOp) {
  Built b = build("lenet", {1, 28, 28}, 10, 60);
  onnx::ModelProto m = parse(onnx_model_bytes(b.model, b.info));
  // Append a Softmax after the logits (a common export of "probabilities").
  auto* last = m.mutable_graph()->mutable_node(m.graph().node_size() - 1);
  last->set_output(0, "scores");
  auto* sm = m.mutable_graph()->add_node();
  sm->set_op_type("Softmax");
  sm->set_name("/12/Softmax");
  sm->add_input("scores");
  sm->add_output("logits");
  const std::string err = import_error(serialize(m), "softmax.onnx");
  EXPECT_TRUE(err.starts_with("softmax.onnx: node '/12/Softmax' (Softmax): op Softmax is not supported")) << err;

  // A node from another domain.
  onnx::ModelProto custom = parse(onnx_model_bytes(b.model, b.info));
  custom.mutable_graph()->mutable_node(1)->set_domain("com.microsoft");
  EXPECT_NE(
      import_error(serialize(custom)).find("node '/1/Sigmoid' (Sigmoid): op 'com.microsoft.Sigmoid' is not supported"),
      std::string::npos);
}

TEST(OnnxImport, NamesTheNodeWhoseWeightsDoNotFit) {
  Built b = build("lenet", {1, 28, 28}, 10, 70);
  const std::string good = onnx_model_bytes(b.model, b.info);
  auto replace_initializer = [&](const std::string& name, const Shape& dims) {
    onnx::ModelProto m = parse(good);
    for (auto& t : *m.mutable_graph()->mutable_initializer())
      if (t.name() == name) {
        t.clear_dims();
        for (int64_t d : dims) t.add_dims(d);
        t.set_raw_data(std::string(static_cast<size_t>(numel(dims)) * 4, '\0'));
      }
    return serialize(m);
  };
  std::string err = import_error(replace_initializer("7.weight", {120, 300}), "fc.onnx");
  EXPECT_TRUE(err.starts_with("fc.onnx: node '/7/Gemm' (Gemm): weight '7.weight' has shape [120, 300]")) << err;
  EXPECT_NE(err.find("its input has 400 features"), std::string::npos) << err;

  err = import_error(replace_initializer("3.weight", {16, 4, 5, 5}), "conv.onnx");
  EXPECT_TRUE(
      err.starts_with("conv.onnx: node '/3/Conv' (Conv): weight '3.weight' has shape [16, 4, 5, 5] but the "
                      "input is [1, 6, 14, 14]"))
      << err;

  err = import_error(replace_initializer("0.bias", {5}), "bias.onnx");
  EXPECT_TRUE(err.starts_with("bias.onnx: node '/0/Conv' (Conv): bias '0.bias' has shape [5], expected [6]")) << err;

  // Dims that promise more data than the file holds.
  onnx::ModelProto short_data = parse(good);
  short_data.mutable_graph()->mutable_initializer(0)->mutable_raw_data()->resize(100);
  err = import_error(serialize(short_data), "short.onnx");
  EXPECT_TRUE(
      err.starts_with("short.onnx: node '/0/Conv' (Conv): weight '0.weight' holds 100 bytes, its shape "
                      "[6, 1, 5, 5] needs 600"))
      << err;

  // A weight that is not in the file at all.
  onnx::ModelProto missing = parse(good);
  missing.mutable_graph()->mutable_initializer()->RemoveLast();  // 11.bias
  err = import_error(serialize(missing), "missing.onnx");
  EXPECT_NE(err.find("node '/11/Gemm' (Gemm): input '11.bias' is not a weight stored in the file"), std::string::npos)
      << err;
}

TEST(OnnxImport, RefusesWhatOurLayersCannotRunExactly) {
  Built b = build("lenet", {1, 28, 28}, 10, 80);
  const std::string good = onnx_model_bytes(b.model, b.info);
  auto mutate = [&](auto&& edit) {
    onnx::ModelProto m = parse(good);
    edit(m);
    return import_error(serialize(m), "edited.onnx");
  };
  auto set_ints = [](onnx::NodeProto* n, const std::string& name, std::vector<int64_t> v) {
    for (auto& a : *n->mutable_attribute())
      if (a.name() == name) {
        a.clear_ints();
        for (int64_t x : v) a.add_ints(x);
      }
  };
  auto set_int = [](onnx::NodeProto* n, const std::string& name, int64_t v) {
    for (auto& a : *n->mutable_attribute())
      if (a.name() == name) a.set_i(v);
  };
  std::string err = mutate([&](onnx::ModelProto& m) {
    set_ints(m.mutable_graph()->mutable_node(0), "pads", {2, 2, 1, 1});
  });
  EXPECT_NE(err.find("node '/0/Conv' (Conv): asymmetric pads [2, 2, 1, 1]"), std::string::npos) << err;

  err = mutate([&](onnx::ModelProto& m) {
    set_ints(m.mutable_graph()->mutable_node(2), "pads", {1, 1, 1, 1});
    set_int(m.mutable_graph()->mutable_node(2), "count_include_pad", 0);
  });
  EXPECT_NE(err.find("node '/2/AveragePool' (AveragePool): count_include_pad=0 with padding is not supported"),
            std::string::npos)
      << err;

  err = mutate([&](onnx::ModelProto& m) { set_int(m.mutable_graph()->mutable_node(2), "ceil_mode", 1); });
  EXPECT_NE(err.find("ceil_mode=1 is not supported"), std::string::npos) << err;

  err = mutate([&](onnx::ModelProto& m) { set_ints(m.mutable_graph()->mutable_node(3), "dilations", {2, 2}); });
  EXPECT_NE(err.find("node '/3/Conv' (Conv): dilations other than 1"), std::string::npos) << err;

  err = mutate([&](onnx::ModelProto& m) { set_int(m.mutable_graph()->mutable_node(0), "group", 2); });
  EXPECT_NE(err.find("grouped convolution"), std::string::npos) << err;

  err = mutate([&](onnx::ModelProto& m) {
    auto* a = m.mutable_graph()->mutable_node(1)->add_attribute();
    a->set_name("alpha");
    a->set_type(onnx::AttributeProto::FLOAT);
  });
  EXPECT_NE(err.find("node '/1/Sigmoid' (Sigmoid): attribute 'alpha' is not supported"), std::string::npos) << err;

  // A branch: the second conv reads the image instead of the previous layer.
  err = mutate([&](onnx::ModelProto& m) { m.mutable_graph()->mutable_node(3)->set_input(0, "input"); });
  EXPECT_NE(err.find("node '/3/Conv' (Conv): takes 'input' as its input, but lenet.cpp runs a plain chain"),
            std::string::npos)
      << err;

  err = mutate([&](onnx::ModelProto& m) {
    m.mutable_graph()->mutable_input(0)->mutable_type()->mutable_tensor_type()->set_elem_type(
        onnx::TensorProto::DOUBLE);
  });
  EXPECT_NE(err.find("graph input 'input' has element type DOUBLE, expected FLOAT"), std::string::npos) << err;

  err = mutate([&](onnx::ModelProto& m) {
    auto* t = m.mutable_graph()->mutable_initializer(0);
    t->set_data_location(onnx::TensorProto::EXTERNAL);
  });
  EXPECT_NE(err.find("weight '0.weight' is stored in an external file"), std::string::npos) << err;

  err = mutate([&](onnx::ModelProto& m) {
    for (auto& p : *m.mutable_metadata_props())
      if (p.key() == "lenet.class_names") p.set_value("[\"a\", \"b\"]");
  });
  EXPECT_NE(err.find("edited.onnx: metadata lists 2 class names but the model has 10 outputs"), std::string::npos)
      << err;

  err = mutate([&](onnx::ModelProto& m) {
    for (auto& p : *m.mutable_metadata_props())
      if (p.key() == "lenet.preprocessing") p.set_value("{\"grayscale\": tru");
  });
  EXPECT_NE(err.find("edited.onnx: garbled metadata 'lenet.preprocessing': not valid JSON at byte"), std::string::npos)
      << err;
}

TEST(OnnxImport, PadsThatCannotFoldAreRefused) {
  Built ref = build("conv 3 k3 p1, relu, avgpool 2 p1, flatten, linear 5, tanh, linear 4", {1, 6, 6}, 4, 90);
  const std::string good = foreign_graph(11, ref.model);
  auto mutate = [&](auto&& edit) {
    onnx::ModelProto m = parse(good);
    edit(m);
    return import_error(serialize(m), "pad.onnx");
  };
  auto pads_of = [](onnx::ModelProto& m, const std::string& name) -> std::string* {
    for (auto& n : *m.mutable_graph()->mutable_node())
      if (n.op_type() == "Constant" && n.output(0) == name)
        return n.mutable_attribute(0)->mutable_t()->mutable_raw_data();
    return nullptr;
  };
  auto set_pads = [&](onnx::ModelProto& m, const std::string& name, std::vector<int64_t> v) {
    pads_of(m, name)->assign(reinterpret_cast<const char*>(v.data()), v.size() * 8);
  };
  std::string err = mutate([&](onnx::ModelProto& m) { set_pads(m, "pads_conv", {0, 0, 1, 1, 0, 0, 2, 1}); });
  EXPECT_NE(err.find("node 'Pad_0' (Pad): pads [0, 0, 1, 1, 0, 0, 2, 1] are asymmetric"), std::string::npos) << err;
  err = mutate([&](onnx::ModelProto& m) { set_pads(m, "pads_conv", {0, 1, 1, 1, 0, 1, 1, 1}); });
  EXPECT_NE(err.find("pad the batch or channel axis"), std::string::npos) << err;
  err = mutate([&](onnx::ModelProto& m) {
    // Zero padding is not max pooling's padding (which never wins the max).
    for (auto& n : *m.mutable_graph()->mutable_node())
      if (n.op_type() == "AveragePool") n.set_op_type("MaxPool");
  });
  EXPECT_NE(err.find("node 'Pad_3' (Pad): zero padding followed by MaxPool is not supported"), std::string::npos)
      << err;
  err = mutate([&](onnx::ModelProto& m) {
    for (auto& n : *m.mutable_graph()->mutable_node())
      if (n.op_type() == "Pad") {
        auto* a = n.add_attribute();
        a->set_name("mode");
        a->set_type(onnx::AttributeProto::STRING);
        a->set_s("reflect");
        break;
      }
  });
  EXPECT_NE(err.find("mode 'reflect' is not supported"), std::string::npos) << err;
}

TEST(OnnxImport, SymbolicImageSizeNeedsMetadata) {
  Built ref = build("conv 3 k3 p1, relu, avgpool 2 p1, flatten, linear 5, tanh, linear 4", {1, 6, 6}, 4, 95);
  onnx::ModelProto m = parse(foreign_graph(11, ref.model));
  auto* shape = m.mutable_graph()->mutable_input(0)->mutable_type()->mutable_tensor_type()->mutable_shape();
  shape->mutable_dim(2)->set_dim_param("height");
  shape->mutable_dim(3)->set_dim_param("width");
  const std::string err = import_error(serialize(m), "symbolic.onnx");
  EXPECT_NE(err.find("symbolic.onnx: graph input 'input' has a symbolic height 'height', width 'width'; lenet.cpp "
                     "needs the image size"),
            std::string::npos)
      << err;

  // Our own files carry the size in metadata, so they import even with a symbolic H/W.
  Built b = build("mlp", {1, 8, 6}, 3, 96);
  onnx::ModelProto ours = parse(onnx_model_bytes(b.model, b.info));
  ours.mutable_graph()
      ->mutable_input(0)
      ->mutable_type()
      ->mutable_tensor_type()
      ->mutable_shape()
      ->mutable_dim(2)
      ->set_dim_param("h");
  EXPECT_EQ(import_onnx_bytes(serialize(ours), "ours.onnx").info.input_shape, (Shape{1, 8, 6}));
}

TEST(OnnxImport, LooksLikeOnnx) {
  Built b = build("mlp", {1, 4, 4}, 2, 97);
  EXPECT_TRUE(looks_like_onnx(onnx_model_bytes(b.model, b.info)));
  EXPECT_TRUE(looks_like_onnx(read_file(kFixtures / "lenet-relu-max-28x20-9.onnx").substr(0, 16)));
  EXPECT_FALSE(looks_like_onnx(std::string("\x40\0\0\0\0\0\0\0{", 9)));
  EXPECT_FALSE(looks_like_onnx("{\"a\": 1}"));
  EXPECT_FALSE(looks_like_onnx(""));
}

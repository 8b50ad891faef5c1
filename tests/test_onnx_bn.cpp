// Batch norm and dropout in ONNX: PyTorch's exports (Conv+BatchNorm folded,
// and every BatchNorm kept) run with PyTorch's logits; our export writes
// BatchNormalization in inference form without Dropout, reads back exactly,
// and ONNX Runtime agrees with our evaluation-mode outputs.
#include <gtest/gtest.h>
#include <onnx/onnx_pb.h>
#include <sys/wait.h>

#include <array>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>

#include "data_test_util.h"
#include "lenet/checkpoint.h"
#include "lenet/fileio.h"
#include "lenet/onnx.h"
#include "test_util.h"

using namespace lenet;
namespace fs = std::filesystem;

namespace {

const fs::path kBnFixtures = fs::path(LENET_TEST_DATA) / "pytorch-onnx-bn";
const fs::path kOrtRunJs = fs::path(LENET_SOURCE_DIR) / "tests" / "onnxruntime" / "run.js";

std::vector<float> f32_file(const fs::path& path) {
  const std::string bytes = test::read_bytes(path);
  std::vector<float> v(bytes.size() / sizeof(float));
  std::memcpy(v.data(), bytes.data(), v.size() * sizeof(float));
  return v;
}

double relative_to(std::span<const float> got, std::span<const float> want) {
  EXPECT_EQ(got.size(), want.size());
  double diff = 0, scale = 0;
  for (size_t i = 0; i < std::min(got.size(), want.size()); ++i) {
    diff = std::max(diff, std::fabs(static_cast<double>(got[i]) - want[i]));
    scale = std::max(scale, std::fabs(static_cast<double>(want[i])));
  }
  return diff / std::max(scale, 1e-30);
}

Tensor fixture_input() {
  const std::vector<float> v = f32_file(kBnFixtures / "input.f32");
  Tensor x({8, 1, 28, 28});
  EXPECT_EQ(v.size(), static_cast<size_t>(x.numel()));
  std::copy(v.begin(), v.end(), x.data());
  return x;
}

int count_ops(const std::string& bytes, const std::string& op) {
  onnx::ModelProto m;
  EXPECT_TRUE(m.ParseFromString(bytes));
  int count = 0;
  for (const auto& n : m.graph().node()) count += n.op_type() == op;
  return count;
}

}  // namespace

TEST(OnnxBatchNorm, RunsPyTorchsExportsWithPyTorchsLogits) {
  const auto index = nlohmann::json::parse(test::read_bytes(kBnFixtures / "index.json"));
  const Tensor x = fixture_input();
  const std::vector<float> want = f32_file(kBnFixtures / "logits.f32");
  // Folded: PyTorch merged each BatchNorm2d into its Conv; the BatchNorm1d stay.
  // Unfolded: all four BatchNorms as BatchNormalization. Dropout is gone in both.
  const std::string unfolded_arch =
      "conv 6 k5, bn, sigmoid, avgpool 2, conv 16 k5, bn, sigmoid, avgpool 2, flatten, linear 120, bn, sigmoid, "
      "linear 84, bn, sigmoid, linear 10";
  const std::string folded_arch =
      "conv 6 k5, sigmoid, avgpool 2, conv 16 k5, sigmoid, avgpool 2, flatten, linear 120, bn, sigmoid, "
      "linear 84, bn, sigmoid, linear 10";
  for (const auto& [file, arch, bn_nodes] :
       {std::tuple{"lenet-bn-folded.onnx", folded_arch, 2}, std::tuple{"lenet-bn-unfolded.onnx", unfolded_arch, 4}}) {
    EXPECT_EQ(count_ops(test::read_bytes(kBnFixtures / file), "BatchNormalization"), bn_nodes) << file;
    LoadedModel m = import_onnx(kBnFixtures / file);
    EXPECT_EQ(m.info.arch, arch) << file;
    EXPECT_FALSE(m.model.training());
    // The blocked form (8 images) and the direct one (one image at a time).
    const Tensor& got = m.model.forward(x);
    EXPECT_LE(relative_to(got.span(), want), 1e-4) << file << " (" << index["producer"] << ")";
    for (int i = 0; i < 8; i += 7) {
      Tensor one({1, 1, 28, 28});
      std::copy_n(x.data() + i * 784, 784, one.data());
      const Tensor& y = m.model.forward(one);
      EXPECT_LE(relative_to(y.span(), std::span<const float>(want).subspan(static_cast<size_t>(i) * 10, 10)), 1e-4)
          << file << " image " << i;
    }
  }
}

namespace {

// lenet-bn with dropouts, trained a few steps so the running statistics and
// the BatchNorm weights are not their defaults.
Sequential trained_bn_model(Rng& rng) {
  Sequential m = build_model(
      "conv 6 k5, bn, sigmoid, avgpool 2, conv 16 k5, bn, sigmoid, avgpool 2, flatten, dropout 0.2, linear 120, bn, "
      "sigmoid, dropout 0.1, linear 84, bn, sigmoid, linear",
      {1, 28, 28}, 10, &rng);
  for (int step = 0; step < 3; ++step) {
    const Tensor x = test::random_tensor({20, 1, 28, 28}, rng, 0, 1);
    const Tensor& z = m.forward(x);
    m.zero_grad();
    m.backward(test::random_tensor(z.shape(), rng));
    for (Parameter* p : m.parameters())
      for (int64_t i = 0; i < p->numel(); ++i) p->value[i] -= 0.5f * p->grad[i];
  }
  m.eval();
  return m;
}

}  // namespace

TEST(OnnxBatchNorm, ExportWritesInferenceBatchNormalizationWithoutDropout) {
  Rng rng(3);
  Sequential m = trained_bn_model(rng);
  ModelInfo info = test::model_info(m, {1, 28, 28}, 10);
  const std::string bytes = onnx_model_bytes(m, info, {});
  EXPECT_EQ(count_ops(bytes, "BatchNormalization"), 4);
  EXPECT_EQ(count_ops(bytes, "Dropout"), 0);
  onnx::ModelProto proto;
  ASSERT_TRUE(proto.ParseFromString(bytes));
  for (const auto& n : proto.graph().node())
    if (n.op_type() == "BatchNormalization") {
      ASSERT_EQ(n.input_size(), 5);
      EXPECT_EQ(n.input(3), n.input(1).substr(0, n.input(1).find('.')) + ".running_mean");
      EXPECT_EQ(n.output_size(), 1);  // inference form: no running statistics out
    }
  LoadedModel back = import_onnx_bytes(bytes, "bn.onnx");
  const Tensor x = test::random_tensor({9, 1, 28, 28}, rng, 0, 1);
  const Tensor want = m.forward(x);
  EXPECT_EQ(max_abs_diff(back.model.forward(x), want), 0.0f);
  for (size_t i = 0; i < back.model.size(); ++i) EXPECT_EQ(dynamic_cast<Dropout*>(&back.model[i]), nullptr) << i;
}

TEST(OnnxBatchNorm, OnnxRuntimeAgreesWithEvaluationMode) {
  if (std::getenv("LENET_SKIP_ONNXRUNTIME")) GTEST_SKIP() << "LENET_SKIP_ONNXRUNTIME is set";
  ASSERT_TRUE(fs::exists(kOrtRunJs.parent_path() / "node_modules" / "onnxruntime-node"))
      << "ONNX Runtime is not installed: run scripts/setup.sh (or set LENET_SKIP_ONNXRUNTIME=1)";
  Rng rng(4);
  Sequential m = trained_bn_model(rng);
  test::ScratchDir dir;
  export_onnx(dir / "bn.onnx", m, test::model_info(m, {1, 28, 28}, 10), {});
  std::string cmd = "node '" + kOrtRunJs.string() + "' '" + (dir / "bn.onnx").string() + "'";
  std::vector<Tensor> inputs;
  for (int n : {1, 3, 64}) {
    inputs.push_back(test::random_tensor({n, 1, 28, 28}, rng, 0, 1));
    const std::string stem = (dir / ("in" + std::to_string(n))).string();
    write_file_atomic(stem + ".f32", std::string_view(reinterpret_cast<const char*>(inputs.back().data()),
                                                      static_cast<size_t>(inputs.back().numel()) * 4));
    cmd += " '" + stem + ".f32' " + std::to_string(n) + "x1x28x28 '" + stem + ".out'";
  }
  FILE* pipe = popen((cmd + " 2>&1").c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  std::string output;
  std::array<char, 4096> buf;
  for (size_t got; (got = fread(buf.data(), 1, buf.size(), pipe)) > 0;) output.append(buf.data(), got);
  const int status = pclose(pipe);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << output;
  for (const Tensor& x : inputs) {
    const std::vector<float> theirs = f32_file(dir / ("in" + std::to_string(x.size(0)) + ".out"));
    EXPECT_LE(relative_to(m.forward(x).span(), theirs), 1e-4) << "batch " << x.size(0);
  }
}

// A BatchNormalization the engine cannot run as written, or a checkpoint
// without its running statistics, is refused with one message naming the
// file, the node or tensor and the problem.
TEST(OnnxBatchNorm, BadBatchNormIsRefusedNamingTheNode) {
  const std::string good = test::read_bytes(kBnFixtures / "lenet-bn-unfolded.onnx");
  auto refusal = [&](const std::function<void(onnx::ModelProto&)>& damage) -> std::string {
    onnx::ModelProto m;
    EXPECT_TRUE(m.ParseFromString(good));
    damage(m);
    std::string bytes;
    EXPECT_TRUE(m.SerializeToString(&bytes));
    try {
      import_onnx_bytes(bytes, "bad.onnx");
    } catch (const std::runtime_error& e) {
      return e.what();
    }
    ADD_FAILURE() << "imported";
    return {};
  };
  auto first_bn = [](onnx::ModelProto& m) -> onnx::NodeProto& {
    for (auto& n : *m.mutable_graph()->mutable_node())
      if (n.op_type() == "BatchNormalization") return n;
    throw std::logic_error("no BatchNormalization");
  };
  const std::string training = refusal([&](onnx::ModelProto& m) {
    auto* a = first_bn(m).add_attribute();
    a->set_name("training_mode");
    a->set_type(onnx::AttributeProto::INT);
    a->set_i(1);
  });
  EXPECT_NE(training.find("bad.onnx"), std::string::npos) << training;
  EXPECT_NE(training.find("BatchNormalization"), std::string::npos) << training;
  EXPECT_NE(training.find("training_mode must be 0"), std::string::npos) << training;
  const std::string shape = refusal([&](onnx::ModelProto& m) {
    const std::string var = first_bn(m).input(4);
    for (auto& t : *m.mutable_graph()->mutable_initializer())
      if (t.name() == var) {
        t.set_dims(0, 5);
        t.set_raw_data(std::string(5 * 4, '\0'));
      }
  });
  EXPECT_NE(shape.find("input_var"), std::string::npos) << shape;
  EXPECT_NE(shape.find("[5]"), std::string::npos) << shape;
  EXPECT_NE(shape.find("expected [6]"), std::string::npos) << shape;
  const std::string negative = refusal([&](onnx::ModelProto& m) {
    const std::string var = first_bn(m).input(4);
    for (auto& t : *m.mutable_graph()->mutable_initializer())
      if (t.name() == var) {
        std::string raw = t.raw_data();
        const float minus = -1.0f;
        std::memcpy(raw.data(), &minus, 4);
        t.set_raw_data(raw);
      }
  });
  EXPECT_NE(negative.find("negative or NaN variance"), std::string::npos) << negative;

  // A checkpoint of lenet-bn without one running estimate.
  Rng rng(1);
  Sequential model = build_model("lenet-bn", {1, 28, 28}, 10, &rng);
  std::vector<NamedTensor> tensors;
  for (const Parameter* p : model.parameters()) tensors.push_back({p->name, p->shape, p->values()});
  for (const Parameter* b : model.buffers())
    if (b->name != "5.running_var") tensors.push_back({b->name, b->shape, b->values()});
  ModelInfo info = test::model_info(model, {1, 28, 28}, 10);
  std::map<std::string, std::string> meta = {{"arch", info.arch},
                                             {"input_shape", "[1,28,28]"},
                                             {"class_names", R"(["0","1","2","3","4","5","6","7","8","9"])"}};
  try {
    decode_checkpoint(encode_safetensors(tensors, meta), "nostats.safetensors");
    ADD_FAILURE() << "loaded without 5.running_var";
  } catch (const std::runtime_error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("nostats.safetensors"), std::string::npos) << what;
    EXPECT_NE(what.find("'5.running_var' [16]"), std::string::npos) << what;
    EXPECT_NE(what.find("missing"), std::string::npos) << what;
  }
}

// eps and momentum other than PyTorch's defaults: our export writes them as
// BatchNormalization's epsilon and momentum (ONNX's: 1 − PyTorch's), the import
// reads them back into the spec, and a PyTorch file with another epsilon keeps
// it through a checkpoint (the spec text carries it).
TEST(OnnxBatchNorm, OtherEpsAndMomentumSurviveExportImportAndACheckpoint) {
  Rng rng(6);
  Sequential m = build_model("conv 3 k3, bn eps=0.001 momentum=0.25, sigmoid, flatten, linear 6, bn eps=0.5, linear",
                             {1, 8, 8}, 3, &rng);
  for (int step = 0; step < 2; ++step) m.forward(test::random_tensor({7, 1, 8, 8}, rng, 0, 1));
  m.eval();
  const std::string bytes = onnx_model_bytes(m, test::model_info(m, {1, 8, 8}, 3), {});
  onnx::ModelProto proto;
  ASSERT_TRUE(proto.ParseFromString(bytes));
  std::vector<std::pair<float, float>> attrs;  // (epsilon, momentum) per BatchNormalization
  for (const auto& n : proto.graph().node())
    if (n.op_type() == "BatchNormalization") {
      float eps = 0, momentum = 0;
      for (const auto& a : n.attribute()) {
        if (a.name() == "epsilon") eps = a.f();
        if (a.name() == "momentum") momentum = a.f();
      }
      attrs.emplace_back(eps, momentum);
    }
  ASSERT_EQ(attrs.size(), 2u);
  EXPECT_EQ(attrs[0], std::make_pair(0.001f, 1.0f - 0.25f));
  EXPECT_EQ(attrs[1], std::make_pair(0.5f, 1.0f - 0.1f));
  LoadedModel back = import_onnx_bytes(bytes, "eps.onnx");
  EXPECT_EQ(back.info.arch, m.spec());
  EXPECT_EQ(back.info.arch, "conv 3 k3, bn eps=0.001 momentum=0.25, sigmoid, flatten, linear 6, bn eps=0.5, linear 3");
  const Tensor x = test::random_tensor({5, 1, 8, 8}, rng, 0, 1);
  EXPECT_EQ(max_abs_diff(back.model.forward(x), m.forward(x)), 0.0f);

  // PyTorch's lenet-bn with BatchNorm2d(6, eps=0.1): import, save as a checkpoint, load.
  onnx::ModelProto pt;
  ASSERT_TRUE(pt.ParseFromString(test::read_bytes(kBnFixtures / "lenet-bn-unfolded.onnx")));
  bool changed = false;
  for (auto& n : *pt.mutable_graph()->mutable_node())
    if (n.op_type() == "BatchNormalization" && !changed)
      for (auto& a : *n.mutable_attribute())
        if (a.name() == "epsilon") a.set_f(0.1f), changed = true;
  ASSERT_TRUE(changed);
  std::string pt_bytes;
  ASSERT_TRUE(pt.SerializeToString(&pt_bytes));
  LoadedModel imported = import_onnx_bytes(pt_bytes, "eps-pytorch.onnx");
  EXPECT_TRUE(imported.info.arch.starts_with("conv 6 k5, bn eps=0.1, sigmoid, avgpool 2, conv 16 k5, bn, sigmoid"))
      << imported.info.arch;
  test::ScratchDir dir;
  save_checkpoint(dir / "eps.safetensors", imported.model, test::model_info(imported.model, {1, 28, 28}, 10));
  LoadedModel loaded = load_checkpoint(dir / "eps.safetensors");
  EXPECT_EQ(dynamic_cast<const BatchNorm&>(loaded.model[1]).eps(), 0.1f);
  const Tensor images = fixture_input();
  const Tensor want = imported.model.forward(images);
  EXPECT_EQ(max_abs_diff(loaded.model.forward(images), want), 0.0f);
  // The other epsilon matters: PyTorch's logits (eps 1e-5) are no longer what it computes.
  const std::vector<float> pytorch = f32_file(kBnFixtures / "logits.f32");
  EXPECT_GT(relative_to(want.span(), pytorch), 1e-4);
}

// Checkpoints: a saved and re-loaded model computes the same outputs; the file
// follows the published safetensors format; every kind of broken file is
// rejected with a message naming it.
#include <gtest/gtest.h>

#include <cstring>
#include <nlohmann/json.hpp>

#include "data_test_util.h"
#include "lenet/checkpoint.h"
#include "test_util.h"

namespace lenet {
namespace {

using json = nlohmann::json;
using test::ScratchDir;

ModelInfo sample_info(const Sequential& model) {
  ModelInfo info;
  info.arch = model.spec();
  info.input_shape = {1, 28, 20};
  info.class_names = {"a", "b", "c", "d", "e", "f", "g", "h", "i"};
  info.preprocessing.resize_height = 28;
  info.preprocessing.resize_width = 20;
  info.preprocessing.normalization = Normalization{{0.2860f}, {0.3530f}};
  info.dataset = "letters \"quoted\", with commas";
  info.epoch = 7;
  info.metrics = {{"test_acc", 0.875}, {"test_loss", 0.3141592653589793}};
  return info;
}

Sequential sample_model(uint64_t seed = 3) {
  Rng rng(seed);
  return build_model("lenet-relu", {1, 28, 20}, 9, &rng);
}

void expect_error(const std::function<void()>& f, const std::vector<std::string>& phrases) {
  try {
    f();
    ADD_FAILURE() << "no exception; expected one mentioning '" << phrases.front() << "'";
  } catch (const std::exception& e) {
    const std::string what = e.what();
    for (const auto& p : phrases) EXPECT_NE(what.find(p), std::string::npos) << "message: " << what << "\nlacks: " << p;
    EXPECT_EQ(what.find('\n'), std::string::npos) << "one line: " << what;
  }
}

// Splits a safetensors file as the published format describes it, by hand.
struct PlainFile {
  uint64_t header_len = 0;
  json header;
  std::string data;
};
PlainFile plain_read(const std::string& bytes) {
  PlainFile f;
  for (int i = 7; i >= 0; --i)
    f.header_len = (f.header_len << 8) | static_cast<unsigned char>(bytes[static_cast<size_t>(i)]);
  f.header = json::parse(bytes.substr(8, f.header_len));
  f.data = bytes.substr(8 + f.header_len);
  return f;
}
std::string plain_write(const json& header, const std::string& data) {
  const std::string text = header.dump();
  std::string out;
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((text.size() >> (8 * i)) & 0xff));
  return out + text + data;
}

TEST(Checkpoint, SavedAndReloadedModelGivesIdenticalOutputs) {
  ScratchDir dir;
  Sequential model = sample_model();
  const ModelInfo info = sample_info(model);
  save_checkpoint(dir / "m.safetensors", model, info);
  LoadedModel loaded = load_checkpoint(dir / "m.safetensors");

  Rng rng(11);
  const Tensor x = test::random_tensor({5, 1, 28, 20}, rng, 0.0f, 1.0f);
  const Tensor expected = model.forward(x);
  const Tensor& got = loaded.model.forward(x);
  ASSERT_EQ(got.shape(), (Shape{5, 9}));
  EXPECT_EQ(std::memcmp(got.data(), expected.data(), sizeof(float) * 45), 0) << "outputs must match bit for bit";
  ASSERT_EQ(loaded.model.parameter_count(), model.parameter_count());
  EXPECT_EQ(std::memcmp(loaded.model.flat_values().data(), model.flat_values().data(),
                        sizeof(float) * static_cast<size_t>(model.parameter_count())),
            0);

  const ModelInfo& back = loaded.info;
  EXPECT_EQ(back.arch, model.spec());
  EXPECT_EQ(back.input_shape, info.input_shape);
  EXPECT_EQ(back.class_names, info.class_names);
  EXPECT_EQ(back.preprocessing.grayscale, true);
  EXPECT_EQ(back.preprocessing.resize_height, 28);
  EXPECT_EQ(back.preprocessing.resize_width, 20);
  EXPECT_EQ(back.preprocessing.normalization.mean, std::vector<float>{0.2860f});
  EXPECT_EQ(back.preprocessing.normalization.std, std::vector<float>{0.3530f});
  EXPECT_EQ(back.dataset, info.dataset);
  EXPECT_EQ(back.epoch, 7);
  EXPECT_EQ(back.metrics.at("test_loss"), 0.3141592653589793);
  EXPECT_EQ(back.metrics.at("test_acc"), 0.875);
  EXPECT_EQ(loaded.metadata.at("format"), "lenet.cpp");
  EXPECT_EQ(loaded.metadata.at("format_version"), "1");
}

TEST(Checkpoint, FileFollowsThePublishedSafetensorsLayout) {
  ScratchDir dir;
  Sequential model = sample_model();
  save_checkpoint(dir / "m.safetensors", model, sample_info(model));
  const std::string bytes = test::read_bytes(dir / "m.safetensors");
  const PlainFile f = plain_read(bytes);
  EXPECT_EQ(bytes[8], '{');
  EXPECT_EQ((8 + f.header_len) % 8, 0u) << "data starts 8-byte aligned";
  ASSERT_TRUE(f.header.is_object());
  ASSERT_TRUE(f.header.contains("__metadata__"));
  for (auto& [k, v] : f.header["__metadata__"].items()) EXPECT_TRUE(v.is_string()) << k;
  // Offsets tile the data exactly, and each tensor's bytes are its values, little-endian float32.
  std::vector<std::pair<uint64_t, uint64_t>> ranges;
  for (const Parameter* p : model.parameters()) {
    ASSERT_TRUE(f.header.contains(p->name)) << p->name;
    const json& t = f.header[p->name];
    EXPECT_EQ(t["dtype"], "F32");
    EXPECT_EQ(t["shape"].get<Shape>(), p->shape);
    const uint64_t b = t["data_offsets"][0], e = t["data_offsets"][1];
    ASSERT_EQ(e - b, 4 * static_cast<uint64_t>(p->numel()));
    ranges.emplace_back(b, e);
    for (int64_t i = 0; i < p->numel(); ++i) {
      const unsigned char* q = reinterpret_cast<const unsigned char*>(f.data.data() + b + 4 * i);
      const uint32_t bits = q[0] | (q[1] << 8) | (q[2] << 16) | (static_cast<uint32_t>(q[3]) << 24);
      float v;
      std::memcpy(&v, &bits, 4);
      ASSERT_EQ(v, p->value[i]) << p->name << "[" << i << "]";
    }
  }
  EXPECT_EQ(f.header.size(), model.parameters().size() + 1) << "no tensors beyond the parameters";
  std::sort(ranges.begin(), ranges.end());
  uint64_t at = 0;
  for (auto [b, e] : ranges) {
    EXPECT_EQ(b, at);
    at = e;
  }
  EXPECT_EQ(at, f.data.size());
  // The metadata is JSON inside strings, readable by any tool.
  const json& meta = f.header["__metadata__"];
  EXPECT_EQ(json::parse(meta["input_shape"].get<std::string>()), json({1, 28, 20}));
  EXPECT_EQ(json::parse(meta["class_names"].get<std::string>())[8], "i");
  EXPECT_EQ(json::parse(meta["preprocessing"].get<std::string>())["normalization"]["std"].get<float>(), 0.3530f);
}

TEST(Checkpoint, OptimizerStateRoundTrips) {
  ScratchDir dir;
  Sequential model = sample_model();
  Adam adam(model, {});
  Rng rng(5);
  for (int s = 0; s < 3; ++s) {
    for (float& g : model.flat_grads()) g = rng.uniform(-1, 1);
    adam.step();
  }
  save_checkpoint(dir / "last.safetensors", model, sample_info(model), &adam, {{"rng_state", "12345"}});
  LoadedModel loaded = load_checkpoint(dir / "last.safetensors");  // optim.* tensors are allowed
  EXPECT_EQ(loaded.metadata.at("rng_state"), "12345");
  EXPECT_EQ(loaded.metadata.at("optimizer"), "adam");
  Adam fresh(loaded.model, {});
  load_optimizer_state(dir / "last.safetensors", fresh);
  EXPECT_EQ(fresh.steps(), 3);
  auto a = adam.state(), b = fresh.state();
  ASSERT_EQ(a.size(), 2u);
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].first, b[i].first);
    EXPECT_EQ(max_abs_diff(*a[i].second, *b[i].second), 0.0f);
  }
  Sgd sgd(loaded.model, {0.1f, 0.9f, 0.0f});
  expect_error([&] { load_optimizer_state(dir / "last.safetensors", sgd); }, {"last.safetensors", "'adam', not 'sgd'"});
  save_checkpoint(dir / "plain.safetensors", model, sample_info(model));
  expect_error([&] { load_optimizer_state(dir / "plain.safetensors", fresh); },
               {"plain.safetensors", "no optimizer state"});
  EXPECT_THROW(save_checkpoint(dir / "x.safetensors", model, sample_info(model), nullptr, {{"arch", "mine"}}),
               std::invalid_argument);
}

TEST(Checkpoint, FailedWriteLeavesThePreviousFile) {
  ScratchDir dir;
  Sequential model = sample_model();
  save_checkpoint(dir / "m.safetensors", model, sample_info(model));
  const std::string before = test::read_bytes(dir / "m.safetensors");
  expect_error([&] { save_checkpoint(dir / "missing-folder" / "m.safetensors", model, sample_info(model)); },
               {"missing-folder"});
  ModelInfo bad = sample_info(model);
  bad.input_shape = {28, 20};
  EXPECT_THROW(save_checkpoint(dir / "m.safetensors", model, bad), std::invalid_argument);
  EXPECT_EQ(test::read_bytes(dir / "m.safetensors"), before);
  // No temporary files left behind.
  int files = 0;
  for ([[maybe_unused]] auto& e : std::filesystem::directory_iterator(dir.path())) ++files;
  EXPECT_EQ(files, 1);
}

class BrokenCheckpoint : public ::testing::Test {
 protected:
  void SetUp() override {
    model_ = sample_model();
    save_checkpoint(dir_ / "good.safetensors", model_, sample_info(model_));
    good_ = test::read_bytes(dir_ / "good.safetensors");
  }
  // Writes `bytes` as bad.safetensors and expects load_checkpoint to fail with these phrases.
  void expect_rejected(const std::string& bytes, std::vector<std::string> phrases) {
    test::write_bytes(dir_ / "bad.safetensors", bytes);
    phrases.insert(phrases.begin(), (dir_ / "bad.safetensors").string());
    expect_error([&] { load_checkpoint(dir_ / "bad.safetensors"); }, phrases);
  }
  std::string edit_header(const std::function<void(json&)>& edit) {
    PlainFile f = plain_read(good_);
    edit(f.header);
    return plain_write(f.header, f.data);
  }
  ScratchDir dir_;
  Sequential model_;
  std::string good_;
};

TEST_F(BrokenCheckpoint, MissingOrTinyFile) {
  expect_error([&] { load_checkpoint(dir_ / "none.safetensors"); }, {"none.safetensors", "not found"});
  expect_rejected("", {"truncated", "0 bytes"});
  expect_rejected(good_.substr(0, 5), {"truncated"});
}

TEST_F(BrokenCheckpoint, Truncated) {
  expect_rejected(good_.substr(0, good_.size() - 100), {"truncated"});
  expect_rejected(good_.substr(0, 200), {"truncated", "header claims"});
}

TEST_F(BrokenCheckpoint, GarbledHeader) {
  std::string bytes = good_;
  bytes[8] = '#';
  bytes[20] = '\x01';
  expect_rejected(bytes, {"garbled safetensors header", "not valid JSON"});
  expect_rejected(plain_write(json::array({1, 2}), ""), {"garbled", "expected a JSON object"});
  expect_rejected(edit_header([](json& h) { h["__metadata__"]["epoch"] = 3; }),
                  {"__metadata__", "epoch", "not a string"});
  expect_rejected(edit_header([](json& h) { h["__metadata__"]["input_shape"] = "[1, 28"; }),
                  {"input_shape", "not valid JSON"});
  expect_rejected(edit_header([](json& h) { h["__metadata__"]["class_names"] = "[]"; }), {"class_names"});
  expect_rejected(edit_header([](json& h) { h["__metadata__"]["epoch"] = "seven"; }), {"'epoch' is 'seven'"});
  expect_rejected(edit_header([](json& h) {
                    h["__metadata__"]["preprocessing"] = R"({"normalization": {"mean": 0, "std": 0}})";
                  }),
                  {"preprocessing", "positive std"});
}

TEST_F(BrokenCheckpoint, AbsurdSizes) {
  std::string bytes = good_;
  const uint64_t huge = uint64_t{1} << 60;
  for (int i = 0; i < 8; ++i) bytes[static_cast<size_t>(i)] = static_cast<char>((huge >> (8 * i)) & 0xff);
  expect_rejected(bytes, {"header length", "absurd"});
  expect_rejected(edit_header([](json& h) {
                    h["0.weight"]["shape"] = {1000000, 1000000, 1000000};
                  }),
                  {"'0.weight'", "claims shape"});
  expect_rejected(edit_header([](json& h) { h["0.weight"]["shape"] = {-6, 1, 5, 5}; }), {"'0.weight'", "not a size"});
  expect_rejected(edit_header([](json& h) {
                    h["0.weight"]["data_offsets"] = {0, uint64_t{1} << 62};
                  }),
                  {"'0.weight'", "outside"});
}

TEST_F(BrokenCheckpoint, OffsetsAndDtypes) {
  expect_rejected(edit_header([](json& h) { h["0.weight"]["dtype"] = "F16"; }), {"'0.weight'", "dtype F16", "F32"});
  expect_rejected(edit_header([](json& h) {
                    auto o = h["0.weight"]["data_offsets"];
                    h["0.weight"]["data_offsets"] = {o[0].get<uint64_t>() + 4, o[1].get<uint64_t>() + 4};
                  }),
                  {"starts at byte"});
  expect_rejected(good_ + "extra", {"trailing bytes"});
  expect_rejected(edit_header([](json& h) { h["0.weight"].erase("data_offsets"); }), {"data_offsets"});
}

TEST_F(BrokenCheckpoint, DoesNotFitItsArchitecture) {
  // The stored architecture asks for 8 first-layer channels; the weights hold 6.
  expect_rejected(edit_header([](json& h) {
                    std::string arch = h["__metadata__"]["arch"];
                    arch.replace(arch.find("conv 6"), 6, "conv 8");
                    h["__metadata__"]["arch"] = arch;
                  }),
                  {"'0.weight'", "has shape [6, 1, 5, 5]", "needs [8, 1, 5, 5]"});
  // Two class names, but the stored last layer has 9 outputs.
  expect_rejected(edit_header([](json& h) { h["__metadata__"]["class_names"] = R"(["x", "y"])"; }),
                  {"9 outputs", "2 classes"});
  expect_rejected(edit_header([](json& h) { h["__metadata__"]["arch"] = "conv 6 k5, wobble"; }),
                  {"stored architecture does not build", "wobble"});
  expect_rejected(edit_header([](json& h) { h["__metadata__"]["input_shape"] = "[1, 0, 20]"; }), {"input_shape"});
  expect_rejected(edit_header([](json& h) { h["__metadata__"]["format_version"] = "99"; }),
                  {"format version 99", "newer"});
  expect_rejected(edit_header([](json& h) { h["__metadata__"].erase("arch"); }), {"without lenet.cpp metadata"});
  // A missing parameter and a stray one.
  {
    PlainFile f = plain_read(good_);
    const json w = f.header["0.bias"];
    f.header.erase("0.bias");
    f.header["stray"] = w;
    expect_rejected(plain_write(f.header, f.data), {"'0.bias'", "missing"});
  }
}

TEST(Safetensors, EncodeDecodeRoundTripAndZeroSizedTensors) {
  const std::vector<float> a = {1.5f, -2.0f, 3.25f, 0.0f, 1e-30f, -0.0f};
  const std::string bytes = encode_safetensors(
      {{"a", {2, 3}, a}, {"empty", {0, 4}, {}}, {"s", {}, std::span<const float>(a.data(), 1)}}, {{"k", "v"}});
  const SafetensorsFile f = decode_safetensors(bytes, "mem");
  EXPECT_EQ(f.metadata.at("k"), "v");
  ASSERT_NE(f.find("a"), nullptr);
  EXPECT_EQ(f.find("a")->shape(), (Shape{2, 3}));
  for (int i = 0; i < 6; ++i) EXPECT_EQ(std::signbit((*f.find("a"))[i]), std::signbit(a[static_cast<size_t>(i)]));
  EXPECT_EQ((*f.find("a"))[4], 1e-30f);
  EXPECT_EQ(f.find("empty")->numel(), 0);
  EXPECT_EQ(f.find("s")->shape(), Shape{});
  EXPECT_EQ(f.find("nope"), nullptr);
  EXPECT_THROW(encode_safetensors({{"a", {2, 2}, a}}, {}), std::invalid_argument);
  EXPECT_THROW(encode_safetensors({{"a", {6}, a}, {"a", {6}, a}}, {}), std::invalid_argument);
}

}  // namespace
}  // namespace lenet

// Writes the seed corpus of the fuzz targets (fuzz/corpus/<target>/): small
// valid files of every kind each parser reads, made by lenet.cpp's own
// writers. The seeds are committed; this program documents how they were
// made and remakes them: build-fuzz/fuzz/fuzz_make_seeds fuzz/corpus
#include <onnx/onnx_pb.h>
#include <zlib.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "lenet/checkpoint.h"
#include "lenet/image.h"
#include "lenet/onnx.h"
#include "lenet/quant.h"

namespace fs = std::filesystem;
using namespace lenet;

namespace {

void write(const fs::path& path, const std::string& bytes) {
  fs::create_directories(path.parent_path());
  std::ofstream(path, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  std::printf("%s (%zu bytes)\n", path.string().c_str(), bytes.size());
}

std::string gzip(const std::string& raw) {
  z_stream z{};
  deflateInit2(&z, 9, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);
  std::string out(deflateBound(&z, raw.size()) + 32, '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(raw.data()));
  z.avail_in = static_cast<uInt>(raw.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  deflate(&z, Z_FINISH);
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

// ---- checkpoints ----

std::string checkpoint(const std::string& arch, const Shape& input, int classes, bool with_adam,
                       Preprocessing pre = {}) {
  Rng rng(1);
  Sequential model = build_model(arch, input, classes, &rng);
  ModelInfo info;
  info.arch = model.spec();
  info.input_shape = input;
  for (int c = 0; c < classes; ++c) info.class_names.push_back("class" + std::to_string(c));
  info.preprocessing = pre;
  info.dataset = "seed";
  info.epoch = 2;
  info.metrics = {{"test_loss", 0.5}, {"test_acc", 0.75}};
  const fs::path tmp = fs::temp_directory_path() / "lenet-seed.safetensors";
  Adam adam(model, {});
  save_checkpoint(tmp, model, info, with_adam ? &adam : nullptr);
  std::ifstream in(tmp, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  fs::remove(tmp);
  return bytes;
}

// ---- ONNX: our exports, and a graph in PyTorch's style built node by node ----

ModelInfo info_for(const Sequential& model, const Shape& input, int classes) {
  ModelInfo info;
  info.arch = model.spec();
  info.input_shape = input;
  for (int c = 0; c < classes; ++c) info.class_names.push_back("c" + std::to_string(c));
  return info;
}

std::string exported(const std::string& arch, const Shape& input, int classes, int opset) {
  Rng rng(2);
  Sequential model = build_model(arch, input, classes, &rng);
  OnnxExportOptions options;
  options.opset = opset;
  return onnx_model_bytes(model, info_for(model, input, classes), options);
}

// An int8 model in QDQ form (lenet quantize's output), calibrated on random images.
std::string quantized(const std::string& arch, const Shape& input, int classes) {
  Rng rng(3);
  Sequential model = build_model(arch, input, classes, &rng);
  Tensor calibration({8, input[0], input[1], input[2]});
  for (float& v : calibration.span()) v = rng.uniform(0.0f, 1.0f);
  model.set_quantization(quantize_model(model, calibration));
  return onnx_model_bytes(model, info_for(model, input, classes), {kOnnxInt8MinOpset});
}

// Pad -> Conv -> Relu -> AveragePool -> Identity -> Reshape(Constant) -> MatMul + Add -> Gemm(transB=0),
// on 1x4x4 with 2 classes and no lenet metadata, as torch.onnx.export writes such a model.
std::string foreign_style(int opset) {
  onnx::ModelProto m;
  m.set_ir_version(6);
  m.set_producer_name("pytorch");
  m.add_opset_import()->set_version(opset);
  auto* g = m.mutable_graph();
  auto* in = g->add_input();
  in->set_name("x");
  auto* tt = in->mutable_type()->mutable_tensor_type();
  tt->set_elem_type(onnx::TensorProto::FLOAT);
  tt->mutable_shape()->add_dim()->set_dim_param("N");
  for (int64_t d : {1, 4, 4}) tt->mutable_shape()->add_dim()->set_dim_value(d);
  std::string current = "x";
  int count = 0;
  auto node = [&](const std::string& op, std::vector<std::string> extra = {}) -> onnx::NodeProto& {
    auto* n = g->add_node();
    n->set_op_type(op);
    n->add_input(current);
    for (const auto& e : extra) n->add_input(e);
    current = op + std::to_string(count++);
    n->add_output(current);
    return *n;
  };
  auto weights = [&](const std::string& name, std::vector<int64_t> dims) {
    auto* t = g->add_initializer();
    t->set_name(name);
    t->set_data_type(onnx::TensorProto::FLOAT);
    int64_t n = 1;
    for (int64_t d : dims) t->add_dims(d), n *= d;
    for (int64_t i = 0; i < n; ++i) t->add_float_data(0.1f * static_cast<float>(i % 7) - 0.3f);
  };
  auto ints = [](onnx::NodeProto& n, const std::string& name, std::vector<int64_t> v) {
    auto* a = n.add_attribute();
    a->set_name(name);
    a->set_type(onnx::AttributeProto::INTS);
    for (int64_t x : v) a->add_ints(x);
  };
  auto constant = [&](const std::string& name, std::vector<int64_t> v) {
    auto* n = g->add_node();
    n->set_op_type("Constant");
    n->add_output(name);
    auto* a = n->add_attribute();
    a->set_name("value");
    a->set_type(onnx::AttributeProto::TENSOR);
    a->mutable_t()->set_data_type(onnx::TensorProto::INT64);
    a->mutable_t()->add_dims(static_cast<int64_t>(v.size()));
    a->mutable_t()->set_raw_data(v.data(), v.size() * sizeof(int64_t));
  };
  const std::vector<int64_t> pads = {0, 0, 1, 1, 0, 0, 1, 1};
  if (opset >= 11) {
    constant("pads", pads);
    node("Pad", {"pads"});
  } else {
    ints(node("Pad"), "pads", pads);
  }
  weights("conv.w", {2, 1, 3, 3});
  weights("conv.b", {2});
  ints(node("Conv", {"conv.w", "conv.b"}), "kernel_shape", {3, 3});
  node("Relu");
  auto& pool = node("AveragePool");
  ints(pool, "kernel_shape", {2, 2});
  ints(pool, "strides", {2, 2});
  node("Identity");
  constant("shape", {0, -1});
  node("Reshape", {"shape"});
  weights("fc1.w", {8, 3});
  weights("fc1.b", {3});
  node("MatMul", {"fc1.w"});
  node("Add", {"fc1.b"});
  weights("fc2.w", {3, 2});
  weights("fc2.b", {2});
  node("Gemm", {"fc2.w", "fc2.b"});
  auto* out = g->add_output();
  out->set_name(current);
  out->mutable_type()->mutable_tensor_type()->set_elem_type(onnx::TensorProto::FLOAT);
  std::string bytes;
  m.SerializeToString(&bytes);
  return bytes;
}

// ---- IDX: the fuzz input is a 4-byte little-endian length, the images file, the labels file ----

std::string be32(uint32_t v) {
  return {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8), static_cast<char>(v)};
}
std::string le32(uint32_t v) {
  return {static_cast<char>(v), static_cast<char>(v >> 8), static_cast<char>(v >> 16), static_cast<char>(v >> 24)};
}
std::string idx_pair(const std::string& images, const std::string& labels) {
  return le32(static_cast<uint32_t>(images.size())) + images + labels;
}

// ---- images ----

Image pattern(int h, int w, int c) {
  Image im(h, w, c);
  for (size_t i = 0; i < im.pixels.size(); ++i) im.pixels[i] = static_cast<uint8_t>(i * 29 % 256);
  return im;
}

std::string pnm(const Image& im, int maxval) {
  std::string out = std::string(im.channels == 3 ? "P6" : "P5") + "\n# seed\n" + std::to_string(im.width) + " " +
                    std::to_string(im.height) + "\n" + std::to_string(maxval) + "\n";
  for (uint8_t p : im.pixels) {
    if (maxval > 255) out.push_back(static_cast<char>(p));
    out.push_back(static_cast<char>(p));
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s CORPUS_DIR (fuzz/corpus)\n", argv[0]);
    return 2;
  }
  const fs::path dir = argv[1];

  Preprocessing resized;
  resized.resize_height = 6;
  resized.resize_width = 5;
  resized.normalization = {0.25f, 0.5f};
  write(dir / "safetensors" / "linear.safetensors", checkpoint("flatten, linear", {1, 4, 4}, 3, false));
  write(dir / "safetensors" / "conv_adam.safetensors",
        checkpoint("conv 2 k3 p1, relu, maxpool 2, flatten, linear 4, sigmoid, linear", {1, 6, 6}, 2, true));
  write(dir / "safetensors" / "avgpool_rgb.safetensors",
        checkpoint(R"([{"layer": "conv", "out": 1, "kernel": [2, 3], "stride": 2}, {"layer": "avgpool", "window": 1},)"
                   R"( {"layer": "tanh"}, {"layer": "flatten"}, {"layer": "linear", "bias": false}])",
                   {3, 6, 5}, 2, false, resized));
  write(dir / "safetensors" / "plain.safetensors",
        encode_safetensors({{"a", {2, 2}, std::vector<float>{1, 2, 3, 4}}, {"b", {0}, {}}},
                           {{"note", "no lenet metadata"}}));

  const std::string images = be32(0x803) + be32(3) + be32(4) + be32(4) + std::string(48, '\x40');
  const std::string labels = be32(0x801) + be32(3) + std::string("\x00\x02\x01", 3);
  write(dir / "idx" / "raw", idx_pair(images, labels));
  write(dir / "idx" / "gzip", idx_pair(gzip(images), gzip(labels)));
  write(dir / "idx" / "gzip_labels_only", idx_pair(images, gzip(labels)));

  write(dir / "onnx" / "linear.onnx", exported("flatten, linear", {1, 4, 4}, 3, 11));
  write(dir / "onnx" / "conv_pool_opset9.onnx",
        exported("conv 2 k3 p1, sigmoid, avgpool 2, flatten, linear 3, tanh, linear", {1, 6, 6}, 2, 9));
  write(dir / "onnx" / "rgb_maxpool_opset13.onnx",
        exported("conv 1 k2x3 s2, relu, maxpool 1, flatten, linear nobias", {3, 6, 5}, 2, 13));
  write(dir / "onnx" / "foreign_opset10.onnx", foreign_style(10));
  write(dir / "onnx" / "foreign_opset13.onnx", foreign_style(13));
  write(dir / "onnx" / "int8_qdq_opset13.onnx",
        quantized("conv 2 k3 p1, relu, maxpool 2, flatten, linear 3, sigmoid, linear", {1, 6, 6}, 2));

  write(dir / "image" / "gray.png", encode_png(pattern(5, 7, 1)));
  write(dir / "image" / "rgba.png", encode_png(pattern(4, 3, 4)));
  write(dir / "image" / "rgb.jpg", encode_jpeg(pattern(9, 17, 3), 80));
  write(dir / "image" / "gray.jpg", encode_jpeg(pattern(8, 8, 1), 50));
  write(dir / "image" / "rgb.bmp", encode_bmp(pattern(3, 5, 3)));
  write(dir / "image" / "rgba.bmp", encode_bmp(pattern(2, 3, 4)));
  write(dir / "image" / "gray.pgm", pnm(pattern(3, 4, 1), 255));
  write(dir / "image" / "gray16.pgm", pnm(pattern(2, 3, 1), 1000));
  write(dir / "image" / "rgb.ppm", pnm(pattern(2, 2, 3), 255));
  return 0;
}

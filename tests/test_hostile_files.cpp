// Hostile files: a header that claims terabytes, shapes that are negative or
// overflow, offsets past the end, JSON built to explode, compression bombs.
// Each is refused with a message naming the file and the problem, and costs no
// large allocation: the parse runs in a child process under an address-space
// limit (RLIMIT_AS; skipped under AddressSanitizer, which reserves terabytes of
// shadow memory), and the child's peak resident memory is measured either way.
#include <gtest/gtest.h>
#include <onnx/onnx_pb.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include <cstring>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>

#include "data_test_util.h"
#include "lenet/checkpoint.h"
#include "lenet/data.h"
#include "lenet/error.h"
#include "lenet/image.h"
#include "lenet/onnx.h"
#include "test_util.h"

#if defined(__SANITIZE_ADDRESS__)
#define LENET_UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define LENET_UNDER_ASAN 1
#endif
#endif

namespace lenet {
namespace hostile_test {

namespace fs = std::filesystem;
using json = nlohmann::json;
using test::ScratchDir;

// What a parse in a child process did.
struct Outcome {
  int code = -1;  // 0: returned, 1: threw a FileError (message), 2: threw something else, other: crashed or was killed
  std::string message;
  long grew_kb = 0;  // growth of the child's peak resident memory during the parse
};

long peak_rss_kb() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_maxrss;
}

// Address space now, from /proc/self/statm (pages).
size_t address_space_bytes() {
  std::ifstream statm("/proc/self/statm");
  size_t pages = 0;
  statm >> pages;
  return pages * static_cast<size_t>(::sysconf(_SC_PAGE_SIZE));
}

constexpr size_t kAllowance = size_t{256} << 20;  // what a parse may map beyond what the process holds

Outcome parse_in_child(const std::function<void()>& parse) {
  int fds[2];
  if (::pipe(fds) != 0) return {};
  const pid_t pid = ::fork();
  if (pid < 0) return {};
  if (pid == 0) {
    ::close(fds[0]);
#ifndef LENET_UNDER_ASAN
    const rlim_t limit = address_space_bytes() + kAllowance;
    const rlimit as{limit, limit};
    ::setrlimit(RLIMIT_AS, &as);
#endif
    const long before = peak_rss_kb();
    int code = 0;
    std::string message;
    try {
      parse();
    } catch (const FileError& e) {
      message = e.what();
      code = 1;
    } catch (const std::exception& e) {
      message = std::string("not a FileError: ") + e.what();
      code = 2;
    }
    const std::string report = std::to_string(peak_rss_kb() - before) + "\n" + message;
    const ssize_t ignored = ::write(fds[1], report.data(), report.size());
    (void)ignored;
    ::_exit(code);
  }
  ::close(fds[1]);
  std::string report;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(fds[0], buf, sizeof buf)) > 0) report.append(buf, static_cast<size_t>(n));
  ::close(fds[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  Outcome o;
  o.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  const size_t nl = report.find('\n');
  if (nl != std::string::npos) {
    o.grew_kb = std::stol(report.substr(0, nl));
    o.message = report.substr(nl + 1);
  }
  return o;
}

// Refused with every phrase in the message, and cheaply.
void expect_refused(const std::function<void()>& parse, const std::vector<std::string>& phrases,
                    long max_growth_kb = 64 << 10) {
  const Outcome o = parse_in_child(parse);
  EXPECT_EQ(o.code, 1) << (o.code == 0 ? "accepted" : o.code == 2 ? "" : "crashed or ran out of memory: ") << o.message;
  for (const auto& p : phrases) EXPECT_NE(o.message.find(p), std::string::npos) << o.message << "\nlacks: " << p;
  EXPECT_EQ(o.message.find("bad_alloc"), std::string::npos) << o.message;
  EXPECT_LT(o.grew_kb, max_growth_kb) << "the parse grew the process by " << o.grew_kb / 1024 << " MiB: " << o.message;
}

// ---- safetensors and checkpoints ----

std::string safetensors_bytes(const std::string& header, const std::string& data = "") {
  std::string out;
  for (int i = 0; i < 8; ++i)
    out.push_back(static_cast<char>((static_cast<uint64_t>(header.size()) >> (8 * i)) & 0xff));
  return out + header + data;
}

std::string with_length_field(uint64_t length, const std::string& rest) {
  std::string out;
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((length >> (8 * i)) & 0xff));
  return out + rest;
}

TEST(HostileSafetensors, SizesAndOffsetsAreCheckedBeforeAllocating) {
  auto decode = [](std::string bytes) { return [bytes] { decode_safetensors(bytes, "evil.safetensors"); }; };
  // A header that claims terabytes, and one longer than the file.
  expect_refused(decode(with_length_field(uint64_t{1} << 40, "{}")), {"evil.safetensors", "header length", "absurd"});
  expect_refused(decode(with_length_field(1000, "{}")), {"evil.safetensors", "truncated", "header claims 1000 bytes"});
  // Shapes: terabytes of floats, a negative size, a product that would overflow 64 bits.
  const std::string data(16, '\0');
  expect_refused(decode(safetensors_bytes(R"({"w":{"dtype":"F32","shape":[1099511627776,1024],"data_offsets":[0,16]}})",
                                          data)),
                 {"'w'", "claims shape", "more data than the file's 16 bytes"});
  expect_refused(decode(safetensors_bytes(R"({"w":{"dtype":"F32","shape":[-4],"data_offsets":[0,16]}})", data)),
                 {"'w'", "not a size >= 0"});
  expect_refused(decode(safetensors_bytes(
                     R"({"w":{"dtype":"F32","shape":[4294967296,4294967296,4294967296],"data_offsets":[0,16]}})",
                     data)),
                 {"'w'", "claims shape"});
  // Offsets past the end, reversed, overflowing.
  expect_refused(decode(safetensors_bytes(R"({"w":{"dtype":"F32","shape":[4],"data_offsets":[0,1152921504606846976]}})",
                                          data)),
                 {"'w'", "outside the file's 16 data bytes"});
  expect_refused(decode(safetensors_bytes(R"({"w":{"dtype":"F32","shape":[4],"data_offsets":[16,0]}})", data)),
                 {"'w'", "outside"});
  expect_refused(
      decode(safetensors_bytes(R"({"w":{"dtype":"F32","shape":[4],"data_offsets":[18446744073709551600,16]}})", data)),
      {"'w'", "outside"});
  // JSON built to cost memory: deep nesting, a list of a million numbers.
  expect_refused(decode(safetensors_bytes(std::string(1 << 20, '['))), {"evil.safetensors", "nested deeper"});
  std::string long_list = R"({"w":{"dtype":"F32","shape":[)";
  for (int i = 0; i < 1000000; ++i) long_list += "1,";
  long_list += R"(1],"data_offsets":[0,4]}})";
  expect_refused(decode(safetensors_bytes(long_list, data)), {"evil.safetensors", "list longer than 8"});
}

TEST(HostileSafetensors, AHugeFileOnDiskIsNotReadWhenItsHeaderLies) {
  ScratchDir dir;
  // A sparse 8 GiB file: the header says 8 bytes of tensors follow; they do not match.
  const fs::path path = dir / "sparse.safetensors";
  test::write_bytes(path, safetensors_bytes(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})"));
  fs::resize_file(path, uint64_t{8} << 30);
  expect_refused([&] { read_safetensors(path); }, {path.string(), "trailing bytes"});
}

TEST(HostileSafetensors, ATensorTooLargeForMemoryEndsAsAFileError) {
#ifdef LENET_UNDER_ASAN
  GTEST_SKIP() << "needs the address-space limit, which AddressSanitizer's shadow memory rules out";
#else
  ScratchDir dir;
  // A sparse file with an honest header: 1 GiB of floats really follow. Reading
  // it needs more than the child may map, and says so naming the file.
  const fs::path path = dir / "large.safetensors";
  const uint64_t data = uint64_t{1} << 30;
  test::write_bytes(path,
                    safetensors_bytes(R"({"w":{"dtype":"F32","shape":[268435456],"data_offsets":[0,1073741824]}})"));
  fs::resize_file(path, fs::file_size(path) + data);
  expect_refused([&] { read_safetensors(path); }, {path.string() + ": not enough memory to read it"});
#endif
}

class HostileCheckpoint : public ::testing::Test {
 protected:
  // A real checkpoint whose metadata the test then edits.
  void SetUp() override {
    Rng rng(3);
    Sequential model = build_model("lenet", {1, 28, 28}, 10, &rng);
    save_checkpoint(dir_ / "good.safetensors", model, test::model_info(model, {1, 28, 28}, 10));
    file_ = read_safetensors(dir_ / "good.safetensors");
  }
  fs::path with_metadata(const std::string& key, const std::string& value) {
    std::vector<NamedTensor> tensors;
    for (const auto& [name, t] : file_.tensors) tensors.push_back({name, t.shape(), t.span()});
    auto meta = file_.metadata;
    meta[key] = value;
    const fs::path path = dir_ / "evil.safetensors";
    test::write_bytes(path, encode_safetensors(tensors, meta));
    return path;
  }
  ScratchDir dir_;
  SafetensorsFile file_;
};

TEST_F(HostileCheckpoint, AnArchitectureFarLargerThanItsWeightsIsNotBuilt) {
  // 784 x 1,000,000 weights would be 3 GB; the file holds 61,706.
  const fs::path path = with_metadata("arch", "flatten, linear 1000000, linear");
  expect_refused([&] { load_checkpoint(path); },
                 {path.string(), "does not build", "'linear 1000000': 785000000 parameters",
                  "the file holds 61706 weights"});
  // 1.5 billion weights (6 GB): within int, still far beyond the file.
  const fs::path p2 = with_metadata("arch", "conv 60000 k5 p2, flatten, linear");
  expect_refused([&] { load_checkpoint(p2); }, {"does not build", "'conv 60000 k5 p2'"});
  // Activations: a layer that would output 2^40 values per image.
  const fs::path p3 = with_metadata("arch", "conv 2 k1 p1000000, flatten, linear");
  expect_refused([&] { load_checkpoint(p3); }, {"does not build", "values per sample"});
}

TEST_F(HostileCheckpoint, NumbersBeyondADoubleInMetadataAreRefused) {
  const fs::path shape = with_metadata("input_shape", "[1, 28, 28e999]");
  expect_refused([&] { load_checkpoint(shape); },
                 {shape.string() +
                  ": checkpoint metadata 'input_shape' number out of range at byte 8: 28e999 does not fit a double"});
  const fs::path pre = with_metadata("preprocessing", R"({"normalization": {"mean": -1E400, "std": 1}})");
  expect_refused([&] { load_checkpoint(pre); },
                 {pre.string() +
                  ": checkpoint metadata 'preprocessing' number out of range at byte 27, in \"mean\": -1E400"});
}

TEST_F(HostileCheckpoint, AbsurdInputShapesAndNumbersAreRefused) {
  const fs::path p1 = with_metadata("input_shape", "[65536, 65536, 65536]");
  expect_refused([&] { load_checkpoint(p1); }, {p1.string(), "values per sample"});
  const fs::path p2 = with_metadata("input_shape", "[1, 1e300, 28]");
  expect_refused([&] { load_checkpoint(p2); }, {"input_shape"});
  const fs::path p3 = with_metadata("preprocessing", R"({"normalization": {"mean": 1e300, "std": 1}})");
  expect_refused([&] { load_checkpoint(p3); }, {"preprocessing", "finite mean"});
  const fs::path p4 = with_metadata("preprocessing", R"({"resize": [4294967324, 28]})");
  expect_refused([&] { load_checkpoint(p4); }, {"preprocessing", "resize sizes"});
  const fs::path p5 = with_metadata("preprocessing", R"({"resize": [16384, 16384]})");
  expect_refused([&] { load_checkpoint(p5); }, {"resizes to 16384x16384 but the model takes 28x28"});
  const fs::path p6 = with_metadata("arch", R"([{"layer": "flatten"}, {"layer": "linear", "out": 1e300}])");
  expect_refused([&] { load_checkpoint(p6); }, {"does not build", "layer 2", "expected a whole number"});
}

// ---- IDX files ----

std::string idx_header(uint32_t magic, std::vector<uint32_t> dims) {
  std::string out;
  test::append_be32(out, magic);
  for (uint32_t d : dims) test::append_be32(out, d);
  return out;
}

class HostileIdx : public ::testing::Test {
 protected:
  void SetUp() override { test::write_bytes(labels_, test::idx_labels(std::vector<uint8_t>(10, 1))); }
  void expect_images_refused(const fs::path& images, const std::vector<std::string>& phrases) {
    std::vector<std::string> all = phrases;
    all.insert(all.begin(), images.string());
    expect_refused([&] { read_idx(images, labels_); }, all);
  }
  ScratchDir dir_;
  fs::path labels_ = dir_ / "labels";
};

TEST_F(HostileIdx, HeadersClaimingMoreThanTheFileHoldsAreRefusedBeforeReading) {
  // 100,000 images of 28x28 announced, 100 bytes present.
  test::write_bytes(dir_ / "short", idx_header(0x803, {100000, 28, 28}) + std::string(100, '\0'));
  expect_images_refused(dir_ / "short", {"truncated", "100000x28x28 = 78400000 bytes", "the file holds 100"});
  // Terabytes announced.
  test::write_bytes(dir_ / "tera", idx_header(0x803, {4294967295u, 65536, 65536}));
  expect_images_refused(dir_ / "tera", {"claims more than 17179869184 bytes"});
  // A product that would wrap around 2^64 to zero if multiplied unchecked.
  test::write_bytes(dir_ / "wrap", idx_header(0x803, {131072, 131072, 1073741824}));
  expect_images_refused(dir_ / "wrap", {"claims more than"});
}

TEST_F(HostileIdx, AGzipBombStopsAtWhatItReallyHolds) {
  // The header announces 16 GiB - 1 byte of pixels (within the format's limit);
  // the stream inflates to 48 MiB and ends. The reader must allocate as the data
  // arrives, not what the header says.
  const fs::path bomb = dir_ / "bomb.gz";
  gzFile f = gzopen(bomb.c_str(), "wb9");
  ASSERT_NE(f, nullptr);
  const std::string head = idx_header(0x803, {262143, 256, 256});
  gzwrite(f, head.data(), static_cast<unsigned>(head.size()));
  const std::string zeros(1 << 20, '\0');
  for (int i = 0; i < 48; ++i) gzwrite(f, zeros.data(), static_cast<unsigned>(zeros.size()));
  gzclose(f);
  ASSERT_LT(fs::file_size(bomb), 200000u) << "a bomb: small on disk";
  // The buffer grows with the data (a vector's doubling): a small multiple of the 48 MiB, not 16 GiB.
  // AddressSanitizer keeps freed blocks in quarantine, so the outgrown buffers count there too.
#ifdef LENET_UNDER_ASAN
  const long limit_kb = 256 << 10;
#else
  const long limit_kb = 128 << 10;
#endif
  expect_refused([&] { read_idx(bomb, labels_); },
                 {bomb.string(), "truncated", "262143x256x256 = 17179803648 bytes", "the file holds 50331648"},
                 limit_kb);

  // Corrupt compressed data is named as such.
  std::string bytes = test::read_bytes(bomb);
  bytes.resize(bytes.size() / 2);
  test::write_bytes(dir_ / "cut.gz", bytes);
  expect_images_refused(dir_ / "cut.gz", {"truncated"});
}

// ---- images ----

void put_chunk(std::string& png, const char* type, const std::string& body) {
  std::string len;
  test::append_be32(len, static_cast<uint32_t>(body.size()));
  std::string typed = std::string(type, 4) + body;
  std::string crc;
  test::append_be32(crc, static_cast<uint32_t>(
                             crc32(0, reinterpret_cast<const Bytef*>(typed.data()), static_cast<uInt>(typed.size()))));
  png += len + typed + crc;
}

// A PNG whose header says `w` x `h` gray pixels and whose data inflate to `inflated` bytes.
std::string png_with_data(uint32_t w, uint32_t h, size_t inflated) {
  std::string png("\x89PNG\r\n\x1a\n", 8);
  std::string ihdr;
  test::append_be32(ihdr, w);
  test::append_be32(ihdr, h);
  ihdr += std::string("\x08\x00\x00\x00\x00", 5);  // 8-bit gray, deflate, no filter, no interlace
  put_chunk(png, "IHDR", ihdr);
  const std::string raw(inflated, '\0');  // filter byte 0 and black pixels, row after row
  uLongf size = compressBound(static_cast<uLong>(raw.size()));
  std::string z(size, '\0');
  compress2(reinterpret_cast<Bytef*>(z.data()), &size, reinterpret_cast<const Bytef*>(raw.data()),
            static_cast<uLong>(raw.size()), 9);
  z.resize(size);
  put_chunk(png, "IDAT", z);
  put_chunk(png, "IEND", "");
  return png;
}

TEST(HostileImages, APngDecompressionBombCostsOnlyItsPixels) {
  // A genuine 28x28 picture decodes.
  const Image fine = decode_image(png_with_data(28, 28, 28 * 29), "fine.png");
  EXPECT_EQ(fine.width, 28);
  EXPECT_EQ(fine.pixels, std::vector<uint8_t>(28 * 28, 0));
  // 28x28 pixels, 200 MiB of inflated data (a 200 KB file): libpng inflates
  // row by row, and nothing past the 28 rows is read, so the bomb decodes to
  // its 784 pixels at the cost of 784 pixels.
  const std::string bomb = png_with_data(28, 28, size_t{200} << 20);
  ASSERT_LT(bomb.size(), 300000u);
  const Outcome o = parse_in_child([&] {
    if (decode_image(bomb, "bomb.png").pixels != std::vector<uint8_t>(28 * 28, 0))
      throw FileError("bomb.png", "wrong pixels");
  });
  EXPECT_EQ(o.code, 0) << o.message;
  EXPECT_LT(o.grew_kb, 16 << 10) << "the decode grew the process by " << o.grew_kb / 1024 << " MiB";
  // The surplus is not even read: the same file cut short inside it still decodes.
  EXPECT_EQ(decode_image(bomb.substr(0, bomb.size() / 2), "cut-bomb.png").pixels, fine.pixels);
}

TEST(HostileImages, HeadersClaimingHugeImagesAreRefusedBeforeDecoding) {
  expect_refused([] { decode_image(png_with_data(16384, 16384, 100), "huge.png"); },
                 {"huge.png", "absurd image size 16384x16384"});
  expect_refused([] { decode_image(png_with_data(100000, 3, 100), "wide.png"); },
                 {"wide.png", "absurd image size 3x100000"});
  // A BMP that announces 9000 x 5000 pixels and holds 100 bytes of them.
  std::string bmp = "BM";
  auto le32 = [&](uint32_t v) {
    for (int i = 0; i < 4; ++i) bmp.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
  };
  le32(54 + 100), le32(0), le32(54), le32(40), le32(9000), le32(5000);
  bmp += std::string("\x01\x00\x18\x00", 4);  // 1 plane, 24 bits
  le32(0), le32(100), le32(2835), le32(2835), le32(0), le32(0);
  bmp += std::string(100, '\x7f');
  expect_refused([&] { decode_image(bmp, "short.bmp"); }, {"short.bmp", "truncated BMP"});
  // A PGM whose header promises 16000 x 4000 samples.
  expect_refused([] { decode_image("P5\n16000 4000\n255\n" + std::string(100, 'x'), "short.pgm"); },
                 {"short.pgm", "truncated PNM"});
}

// ---- ONNX ----

class HostileOnnx : public ::testing::Test {
 protected:
  void SetUp() override {
    Rng rng(2);
    Sequential model = build_model("flatten, linear", {1, 4, 4}, 3, &rng);
    ModelInfo info;
    info.arch = model.spec();
    info.input_shape = {1, 4, 4};
    info.class_names = {"a", "b", "c"};
    ASSERT_TRUE(good_.ParseFromString(onnx_model_bytes(model, info)));
  }
  static std::string bytes(const onnx::ModelProto& m) {
    std::string b;
    m.SerializeToString(&b);
    return b;
  }
  onnx::ModelProto with_metadata(const std::string& key, const std::string& value) const {
    onnx::ModelProto m = good_;
    for (auto& p : *m.mutable_metadata_props())
      if (p.key() == key) p.set_value(value);
    return m;
  }
  // A foreign file (no lenet metadata) whose graph input is [N, C, H, W].
  onnx::ModelProto with_input(int64_t c, int64_t h, int64_t w) const {
    onnx::ModelProto m = good_;
    m.clear_metadata_props();
    m.set_producer_name("elsewhere");
    auto* dims = m.mutable_graph()->mutable_input(0)->mutable_type()->mutable_tensor_type()->mutable_shape();
    dims->mutable_dim(1)->set_dim_value(c);
    dims->mutable_dim(2)->set_dim_value(h);
    dims->mutable_dim(3)->set_dim_value(w);
    return m;
  }
  onnx::ModelProto good_;
};

TEST_F(HostileOnnx, AbsurdInputShapesAreRefusedBeforeAnyLayerUsesThem) {
  // 2^62 x 2^62 pixels: their product would overflow.
  const std::string huge = bytes(with_input(1, int64_t{1} << 62, int64_t{1} << 62));
  expect_refused([&] { import_onnx_bytes(huge, "huge.onnx"); }, {"huge.onnx", "graph input", "values per image"});
  // 2^34 channels flattened straight into the output: 2^34 classes to name.
  onnx::ModelProto m;
  m.set_ir_version(6);
  m.add_opset_import()->set_version(11);
  auto* g = m.mutable_graph();
  auto* in = g->add_input();
  in->set_name("x");
  auto* tt = in->mutable_type()->mutable_tensor_type();
  tt->set_elem_type(onnx::TensorProto::FLOAT);
  tt->mutable_shape()->add_dim()->set_dim_param("N");
  for (int64_t d : {int64_t{1} << 34, int64_t{1}, int64_t{1}}) tt->mutable_shape()->add_dim()->set_dim_value(d);
  auto* flatten = g->add_node();
  flatten->set_op_type("Flatten");
  flatten->add_input("x");
  flatten->add_output("f");
  auto* relu = g->add_node();
  relu->set_op_type("Relu");
  relu->add_input("f");
  relu->add_output("y");
  g->add_output()->set_name("y");
  const std::string wide = bytes(m);
  ASSERT_LT(wide.size(), 200u);
  expect_refused([&] { import_onnx_bytes(wide, "wide.onnx"); }, {"wide.onnx", "values per image"});
  // 2^20 channels: allowed per image, but not as 2^20 classes.
  (*tt->mutable_shape()->mutable_dim(1)).set_dim_value(int64_t{1} << 20);
  const std::string many = bytes(m);
  expect_refused([&] { import_onnx_bytes(many, "many.onnx"); },
                 {"many.onnx", "1048576 outputs", "at most 100000 classes"});
}

TEST_F(HostileOnnx, MetadataThatIsNotOurJsonIsRefusedInOurWords) {
  const std::string big = bytes(with_metadata("lenet.input_shape", "[1, 1e999, 28]"));
  expect_refused([&] { import_onnx_bytes(big, "m.onnx"); },
                 {"m.onnx: metadata 'lenet.input_shape' number out of range at byte 4: 1e999 does not fit a double"});
  const std::string cut = bytes(with_metadata("lenet.class_names", "[\"a\", "));
  expect_refused([&] { import_onnx_bytes(cut, "m.onnx"); },
                 {"m.onnx: garbled metadata 'lenet.class_names': not valid JSON at byte 6 (",
                  "unexpected end of input"});
  // Well-formed JSON of the wrong shape: what was expected, not nlohmann's type_error or "key not found".
  const std::string names = bytes(with_metadata("lenet.class_names", "[\"a\", 2]"));
  expect_refused([&] { import_onnx_bytes(names, "m.onnx"); },
                 {"m.onnx: metadata 'lenet.class_names' is malformed", "expected a list of names, found 2"});
  const std::string pre = bytes(with_metadata("lenet.preprocessing", R"({"grayscale": true, "resize": [0, 0]})"));
  expect_refused([&] { import_onnx_bytes(pre, "m.onnx"); },
                 {"m.onnx: metadata 'lenet.preprocessing' is malformed", "expected an object with \"normalization\""});
  const std::string metrics = bytes(with_metadata("lenet.metrics", R"({"test_acc": "high"})"));
  expect_refused([&] { import_onnx_bytes(metrics, "m.onnx"); },
                 {"m.onnx: metadata 'lenet.metrics' is malformed", "metric 'test_acc' is \"high\", not a number"});
}

TEST_F(HostileOnnx, MetadataNumbersAreRangeCheckedBeforeConversion) {
  const std::string shape = bytes(with_metadata("lenet.input_shape", "[1, 1e300, 28]"));
  expect_refused([&] { import_onnx_bytes(shape, "m.onnx"); }, {"m.onnx: metadata 'lenet.input_shape' is malformed",
                                                               "expected a whole number in [1, 65536], got 1e+300"});
  const std::string mean = bytes(
      with_metadata("lenet.preprocessing",
                    R"({"grayscale": true, "resize": [0, 0], "normalization": {"mean": 1e300, "std": 1}})"));
  expect_refused([&] { import_onnx_bytes(mean, "m.onnx"); }, {"'lenet.preprocessing' is malformed", "1e30"});
  const std::string resize = bytes(
      with_metadata("lenet.preprocessing",
                    R"({"grayscale": true, "resize": [4294967324, 0], "normalization": {"mean": 0, "std": 1}})"));
  expect_refused([&] { import_onnx_bytes(resize, "m.onnx"); }, {"'lenet.preprocessing' is malformed", "4294967324"});
  const std::string epoch = bytes(with_metadata("lenet.epoch", "2.5e20"));
  expect_refused([&] { import_onnx_bytes(epoch, "m.onnx"); }, {"'lenet.epoch' is malformed"});
}

}  // namespace hostile_test
}  // namespace lenet

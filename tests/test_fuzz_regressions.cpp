// The fuzz targets' inputs as unit tests (in every build, sanitized or not):
// the seed corpus (fuzz/corpus/<target>/, valid files that must be accepted),
// what fuzzing added to it (fuzz/corpus/<target>/grown/) and every input a
// fuzzer once crashed on (fuzz/regressions/<target>/, which
// must now end in a clean error or a consistent result). The target bodies are
// the fuzzers' own (fuzz/targets.h); scripts/fuzz.sh does the fuzzing.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>

#include "../fuzz/targets.h"
#include "lenet/error.h"
#include "lenet/image.h"

namespace lenet {
namespace fuzz_regressions_test {

namespace fs = std::filesystem;

std::string bytes_of(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream os;
  os << in.rdbuf();
  return os.str();
}

std::vector<fs::path> files_in(const fs::path& dir) {
  std::vector<fs::path> files;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec))
    if (e.is_regular_file()) files.push_back(e.path());
  std::sort(files.begin(), files.end());
  return files;
}

const fs::path kFuzzDir = fs::path(LENET_SOURCE_DIR) / "fuzz";

struct Target {
  const char* name;
  void (*run)(std::string_view);
  bool (*accepts)(std::string_view);  // what a valid seed must do
};

bool safetensors_accepts(std::string_view b) {
  return fuzz::accepted([&] { decode_safetensors(b, "seed"); });
}
bool onnx_accepts(std::string_view b) {
  return fuzz::accepted([&] { import_onnx_bytes(b, "seed"); });
}
bool image_accepts(std::string_view b) {
  return fuzz::accepted([&] { decode_image(b, "seed"); });
}
bool idx_accepts(std::string_view b) {
  fuzz::MemoryFile images("images"), labels("labels");
  const uint32_t n = static_cast<uint8_t>(b[0]) | static_cast<uint8_t>(b[1]) << 8 | static_cast<uint8_t>(b[2]) << 16 |
                     static_cast<uint32_t>(static_cast<uint8_t>(b[3])) << 24;
  images.set(b.substr(4, n));
  labels.set(b.substr(4 + n));
  return fuzz::accepted([&] { read_idx(images.path(), labels.path()); });
}

const Target kTargets[] = {{"safetensors", fuzz::safetensors, safetensors_accepts},
                           {"idx", fuzz::idx, idx_accepts},
                           {"image", fuzz::image, image_accepts},
                           {"onnx", fuzz::onnx, onnx_accepts}};

class FuzzInputs : public ::testing::TestWithParam<Target> {};

TEST_P(FuzzInputs, SeedsAreValidFilesThatPass) {
  const Target& t = GetParam();
  const auto seeds = files_in(kFuzzDir / "corpus" / t.name);
  ASSERT_GE(seeds.size(), 3u) << "the seed corpus of " << t.name << " is missing";
  for (const fs::path& seed : seeds) {
    SCOPED_TRACE(seed.string());
    const std::string bytes = bytes_of(seed);
    EXPECT_TRUE(t.accepts(bytes)) << "a seed must be a valid file";
    t.run(bytes);  // aborts on a broken promise
  }
}

TEST_P(FuzzInputs, OnceCrashingInputsNowEndCleanly) {
  const Target& t = GetParam();
  for (const fs::path& input : files_in(kFuzzDir / "regressions" / t.name)) {
    SCOPED_TRACE(input.string());
    t.run(bytes_of(input));  // a crash, an escaping exception or (sanitized) a report fails the test
  }
}

// What fuzzing found that adds coverage (scripts/fuzz.sh merge): mostly invalid
// files, each of which must end in a FileError or a consistent result.
TEST_P(FuzzInputs, GrownCorpusEndsCleanly) {
  const Target& t = GetParam();
  for (const fs::path& input : files_in(kFuzzDir / "corpus" / t.name / "grown")) {
    SCOPED_TRACE(input.string());
    t.run(bytes_of(input));
  }
}

INSTANTIATE_TEST_SUITE_P(Targets, FuzzInputs, ::testing::ValuesIn(kTargets),
                         [](const ::testing::TestParamInfo<Target>& param) { return std::string(param.param.name); });

// The stb_image 2.27 bugs the image fuzzer found, each refused with its own
// message. JPEG now goes to libjpeg-turbo, which checks its Huffman tables itself.
TEST(FuzzFindings, StbImageJpegHuffmanTableOverflowIsRefused) {
  const std::string jpeg = bytes_of(kFuzzDir / "regressions" / "image" / "jpeg-huffman-table-overflow");
  try {
    decode_image(jpeg, "evil.jpg");
    FAIL() << "decoded";
  } catch (const std::runtime_error& e) {
    EXPECT_EQ(std::string(e.what()), "evil.jpg: corrupt JPEG (Bogus Huffman table definition)");
  }
}

TEST(FuzzFindings, StbImagePnmNumberOverflowIsRefused) {
  const std::string pnm = bytes_of(kFuzzDir / "regressions" / "image" / "pnm-integer-overflow");
  try {
    decode_image(pnm, "evil.pgm");
    FAIL() << "decoded";
  } catch (const std::runtime_error& e) {
    EXPECT_EQ(std::string(e.what()), "evil.pgm: corrupt PNM header: absurd width");
  }
  // Leading zeros are not a large number; a real 2x1 image with them decodes.
  const Image ok = decode_image(std::string("P5 000000000000000002 1 255\n\x01\x02"), "zeros.pgm");
  EXPECT_EQ(ok.width, 2);
  EXPECT_EQ(ok.pixels, (std::vector<uint8_t>{1, 2}));
}

// The message a reader gives for `bytes` standing for the file `name`: a FileError naming it.
std::string refusal(const std::function<void()>& read, const std::string& name) {
  try {
    read();
  } catch (const FileError& e) {
    EXPECT_EQ(e.path(), name);
    EXPECT_EQ(std::string(e.what()), name + ": " + e.problem());
    return e.problem();
  }
  ADD_FAILURE() << name << " was accepted";
  return {};
}

// Numbers too large for a double (issue 20: nlohmann's out_of_range escaped
// the checkpoint reader and killed the fuzz target), in the header and in a
// metadata value; each message says where and what.
TEST(FuzzFindings, SafetensorsNumbersBeyondADoubleAreRefused) {
  const fs::path dir = kFuzzDir / "regressions" / "safetensors";
  const std::string shape = bytes_of(dir / "shape-5e999.safetensors");
  EXPECT_EQ(refusal([&] { decode_checkpoint(shape, "big.safetensors"); }, "big.safetensors"),
            "safetensors header number out of range at byte 42, in \"shape\": 5e999 does not fit a double");
  const std::string header = bytes_of(dir / "header-number-55555E555.safetensors");
  EXPECT_EQ(
      refusal([&] { decode_safetensors(header, "fuzzed.safetensors"); }, "fuzzed.safetensors"),
      "safetensors header number out of range at byte 59, in \"shape\": 55555.555155555E555555155555 does not fit a "
      "double");
  const std::string meta = bytes_of(dir / "metadata-number-1e999.safetensors");
  EXPECT_NO_THROW(decode_safetensors(meta, "meta.safetensors")) << "the container itself is valid";
  EXPECT_EQ(
      refusal([&] { decode_checkpoint(meta, "meta.safetensors"); }, "meta.safetensors"),
      "checkpoint metadata 'metrics' number out of range at byte 29, in \"test_loss\": 1e999 does not fit a double");
  // From a file on disk, as `lenet eval --model` reads it.
  const fs::path on_disk = dir / "shape-5e999.safetensors";
  EXPECT_NE(refusal([&] { load_checkpoint(on_disk); }, on_disk.string()).find("number out of range at byte 42"),
            std::string::npos);
}

}  // namespace fuzz_regressions_test
}  // namespace lenet

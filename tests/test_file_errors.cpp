// Every reader ends a bad file in one error type, FileError, that names the file
// and says in our words what is wrong, whatever library found the problem first
// (nlohmann::json, protobuf, zlib, stb_image) or whether memory ran out; and the
// CLI prints it as one line and exits 1.
#include <gtest/gtest.h>

#include <filesystem>
#include <functional>
#include <new>
#include <stdexcept>

#include "cli_util.h"
#include "data_test_util.h"
#include "io/json_text.h"
#include "io/memory_guard.h"
#include "lenet/checkpoint.h"
#include "lenet/data.h"
#include "lenet/error.h"
#include "lenet/fileio.h"
#include "lenet/image.h"
#include "lenet/onnx.h"

namespace lenet {
namespace file_errors_test {

namespace fs = std::filesystem;
using test::ScratchDir;

// The FileError `read` throws: it names `file`, and its message is "<file>: <problem>".
FileError error_of(const std::function<void()>& read, const fs::path& file) {
  try {
    read();
  } catch (const FileError& e) {
    EXPECT_EQ(e.path(), file);
    EXPECT_EQ(std::string(e.what()), file.string() + ": " + e.problem());
    EXPECT_EQ(std::string(e.what()).find("json.exception"), std::string::npos) << e.what();
    return e;
  } catch (const std::exception& e) {
    ADD_FAILURE() << "not a FileError: " << e.what();
    return FileError(file, "");
  }
  ADD_FAILURE() << file << " was accepted";
  return FileError(file, "");
}

void expect_problem(const std::function<void()>& read, const fs::path& file, const std::string& phrase) {
  const FileError e = error_of(read, file);
  EXPECT_NE(e.problem().find(phrase), std::string::npos) << e.what() << "\nlacks: " << phrase;
}

TEST(FileError, KeepsThePathAndTheProblem) {
  const FileError e("runs/x/best.safetensors", "truncated");
  EXPECT_EQ(std::string(e.what()), "runs/x/best.safetensors: truncated");
  EXPECT_EQ(e.path(), fs::path("runs/x/best.safetensors"));
  EXPECT_EQ(e.problem(), "truncated");
  const FileError copy = e;  // shares its parts: copying cannot throw
  EXPECT_EQ(copy.problem(), "truncated");
  EXPECT_EQ(&copy.problem(), &e.problem());
}

TEST(FileError, EveryReaderThrowsItForAFileItCannotRead) {
  ScratchDir dir;
  const fs::path missing = dir / "missing";
  expect_problem([&] { read_safetensors(missing); }, missing, "file not found");
  expect_problem([&] { load_checkpoint(missing); }, missing, "file not found");
  expect_problem([&] { load_model(missing); }, missing, "file not found");
  expect_problem([&] { import_onnx(missing); }, missing, "cannot open");
  expect_problem([&] { read_image(missing); }, missing, "no such file");
  expect_problem([&] { read_idx(missing, missing); }, missing, "file not found");
  expect_problem([&] { read_file(missing); }, missing, "cannot open: No such file or directory");

  const std::string garbage = "\x08\x07 this is not a model, an image or a data set";
  expect_problem([&] { decode_safetensors(garbage, "g.safetensors"); }, "g.safetensors", "header length");
  expect_problem([&] { decode_checkpoint(garbage, "g.safetensors"); }, "g.safetensors", "header length");
  expect_problem([&] { import_onnx_bytes(garbage, "g.onnx"); }, "g.onnx", "does not parse as an ONNX ModelProto");
  expect_problem([&] { decode_image(garbage, "g.png"); }, "g.png", "not an image");
  expect_problem([&] { decode_image(std::string("\x89PNG\r\n\x1a\n", 8) + "garbage", "g.png"); }, "g.png",
                 "truncated PNG");
  expect_problem([&] { decode_image(std::string("\x89PNG\r\n\x1a\n", 8) + "garbage, more of it", "g.png"); }, "g.png",
                 "corrupt PNG");

  // A gzip stream cut short: zlib's error, named.
  const fs::path images = dir / "images.gz", labels = dir / "labels";
  test::write_gzip(images, test::idx_images(4, 8, 8, std::vector<uint8_t>(256, 7)));
  std::string cut = test::read_bytes(images);
  test::write_bytes(images, cut.substr(0, cut.size() - 12));
  test::write_bytes(labels, test::idx_labels({0, 1, 0, 1}));
  expect_problem([&] { read_idx(images, labels); }, images, "gzip data");
  // Two files that disagree: the images file is named first, the labels file in the problem.
  test::write_gzip(images, test::idx_images(4, 8, 8, std::vector<uint8_t>(256, 7)));
  test::write_bytes(labels, test::idx_labels({0, 1, 0}));
  expect_problem([&] { read_idx(images, labels); }, images,
                 "holds 4 images but " + labels.string() + " holds 3 labels");
}

TEST(FileError, JsonErrorsSayWhereInOurWords) {
  expect_problem([] { parse_json_text("{\"a\": x}", "f.json", "test header"); }, "f.json",
                 "garbled test header: not valid JSON at byte 6 (syntax error while parsing value - invalid literal; "
                 "last read: '\"a\": x')");
  expect_problem([] { parse_json_text("{\"a\": {\"b\": [1, 2e400]}}", "f.json", "test header"); }, "f.json",
                 "test header number out of range at byte 16, in \"b\": 2e400 does not fit a double");
  // A hostile number is cut and unprintable bytes are masked in the message.
  const std::string long_number = "[" + std::string(100, '9') + "e999]";
  const FileError e = error_of([&] { parse_json_text(long_number, "f.json", "test header"); }, "f.json");
  EXPECT_EQ(e.problem(),
            "test header number out of range at byte 1: " + std::string(40, '9') + "... does not fit a double");
  EXPECT_EQ(printable_excerpt("a\nb\x01\xff"), "a?b??");
  // Valid JSON goes through.
  EXPECT_EQ(parse_json_text("[1, 2.5]", "f.json", "x"), nlohmann::json({1, 2.5}));
}

TEST(FileError, RunningOutOfMemoryIsAFileErrorToo) {
  expect_problem([] { reading_within_memory("big.idx", []() -> int { throw std::bad_alloc(); }); }, "big.idx",
                 "not enough memory to read it");
  expect_problem([] { reading_within_memory("big.idx", []() -> int { throw std::length_error("vector"); }); },
                 "big.idx", "too large to hold in memory");
  EXPECT_EQ(reading_within_memory("ok", [] { return 7; }), 7);
  // Other exceptions are not turned into FileErrors: they are bugs, and the fuzz targets report them.
  EXPECT_THROW(reading_within_memory("ok", []() -> int { throw std::logic_error("bug"); }), std::logic_error);
}

// Issue 20: a checkpoint whose shape holds 5e999 printed nlohmann's
// "[json.exception.out_of_range.406] number overflow parsing '5e999'".
TEST(FileError, TheCliPrintsOneLineNamingTheFileAndExits1) {
  const fs::path file = fs::path(LENET_SOURCE_DIR) / "fuzz" / "regressions" / "safetensors" / "shape-5e999.safetensors";
  ASSERT_TRUE(fs::exists(file));
  const test::CliResult r = test::run_cli("eval --model " + test::quoted(file));
  EXPECT_EQ(r.code, 1) << r.err;
  EXPECT_EQ(r.err,
            "lenet: error: " + file.string() +
                ": safetensors header number out of range at byte 42, in \"shape\": 5e999 does not fit a double\n");
  EXPECT_EQ(r.out, "");
  // The same through predict, which loads models the same way.
  const test::CliResult p = test::run_cli("predict --model " + test::quoted(file) + " " + test::quoted(file));
  EXPECT_EQ(p.code, 1) << p.err;
  EXPECT_EQ(test::line_count(p.err), 1) << p.err;
  EXPECT_NE(p.err.find(file.string() + ": safetensors header number out of range at byte 42"), std::string::npos)
      << p.err;
}

}  // namespace file_errors_test
}  // namespace lenet

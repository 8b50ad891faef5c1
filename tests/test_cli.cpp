// The command line as a whole: errors are one line on stderr with a non-zero exit.
#include <gtest/gtest.h>

#include "cli_util.h"
#include "data_test_util.h"

using lenet::test::line_count;
using lenet::test::run_cli;

TEST(Cli, BadFlagValueIsOneLineAndExitTwo) {
  auto r = run_cli("info --classes many");
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(line_count(r.err), 1) << r.err;
  EXPECT_NE(r.err.find("lenet: error: "), std::string::npos);
  EXPECT_NE(r.err.find("--classes"), std::string::npos) << r.err;
}

// Every command takes --threads through one validator: 0 (all cores) to 1024;
// anything else is one line naming the flag, exit 2, before any work.
TEST(Cli, BadThreadCountIsOneLineForEveryCommand) {
  lenet::test::ScratchDir dir("threads-flag");  // nothing may be written, but never into the source tree
  for (const char* command : {"train --data no-such-data --epochs 1", "eval --model none.safetensors",
                              "predict --model none.safetensors x.png", "plot no-such-run"}) {
    for (const char* value : {"-1", "1025", "two", "1.5", "", " 3"}) {
      const auto r = run_cli(std::string(command) + " --threads '" + value + "'", dir.path());
      EXPECT_EQ(r.code, 2) << command << " --threads " << value << ": " << r.err;
      EXPECT_EQ(line_count(r.err), 1) << r.err;
      EXPECT_EQ(r.err.rfind("lenet: error: --threads", 0), 0u) << r.err;
      EXPECT_EQ(r.out, "");
    }
  }
  EXPECT_TRUE(std::filesystem::is_empty(dir.path()));
  // In range: the command goes on and fails on its real problem (the missing model), not the count.
  for (const char* value : {"0", "1", "1024"}) {
    const auto r = run_cli(std::string("eval --model none.safetensors --threads ") + value, dir.path());
    EXPECT_EQ(r.code, 1) << r.err;
    EXPECT_NE(r.err.find("none.safetensors"), std::string::npos) << r.err;
  }
}

TEST(Cli, MissingSubcommandIsAnError) {
  auto r = run_cli("");
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(line_count(r.err), 1) << r.err;
}

TEST(Cli, HelpAndVersionSucceed) {
  auto r = run_cli("--help");
  EXPECT_EQ(r.code, 0);
  EXPECT_NE(r.out.find("info"), std::string::npos);
  r = run_cli("--version");
  EXPECT_EQ(r.code, 0);
  EXPECT_NE(r.out.find("lenet.cpp"), std::string::npos);
}

TEST(Cli, InfoPrintsShapesForAnyInputSize) {
  auto r = run_cli("info --arch lenet --input 1x28x20 --classes 9");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("Flatten output shape:\t[1, 240]"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("Linear output shape:\t[1, 9]"), std::string::npos);
}

TEST(Cli, BadArchitectureNamesTheLayer) {
  auto r = run_cli("info --arch 'conv 6 k5, blur, flatten, linear'");
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(line_count(r.err), 1) << r.err;
  EXPECT_NE(r.err.find("layer 2 'blur'"), std::string::npos) << r.err;
  r = run_cli("info --input 1x28");
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("--input"), std::string::npos) << r.err;
}

TEST(Cli, BuiltinArchitectureTooBigForTheImagesSaysSo) {
  // 8×8 images: lenet's second convolution (5×5) meets a 4×4 input.
  lenet::test::ScratchDir dir("arch-fit");
  lenet::test::write_synthetic_idx(dir.path() / "data", 40, 20, /*size=*/8);
  auto r = run_cli("train --data " + lenet::test::quoted(dir.path() / "data") + " --arch lenet --epochs 1 --out " +
                   lenet::test::quoted(dir.path() / "run"));
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(line_count(r.err), 1) << r.err;
  EXPECT_NE(r.err.find("--arch lenet does not fit images of [1, 8, 8]"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("kernel larger than the padded input"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("unknown"), std::string::npos) << r.err;
}

// Writes that cannot corrupt: every writer of the project, made to fail — by a
// file-size limit (RLIMIT_FSIZE, what a full disk looks like to a program), by
// a folder it may not write to, by a parent path that is a file — reports the
// path and leaves the previous file byte for byte as it was, with no
// temporary file left behind.
//
// Why these techniques: the tests run as root in CI, where chmod does not stop
// writes. A file-size limit works for any user and hits the write itself, the
// step that fails on a full disk. For "no permission" a child process drops to
// the unprivileged user nobody before writing into a 0555 folder (skipped where
// the process may not change its user); a path whose parent is a regular file
// fails for root too. Mounting a read-only file system would need privileges
// the tests should not ask for.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <functional>
#include <regex>

#include "cli_util.h"
#include "data_test_util.h"
#include "lenet/checkpoint.h"
#include "lenet/fileio.h"
#include "lenet/gallery.h"
#include "lenet/image.h"
#include "lenet/onnx.h"
#include "lenet/report.h"
#include "lenet/train.h"
#include "test_util.h"

namespace lenet {
namespace failing_writes_test {

namespace fs = std::filesystem;
using test::quoted;
using test::ScratchDir;

struct ChildResult {
  int code = -1;        // exit code; -1 when it did not exit normally
  std::string message;  // what the child's writer threw ("" when it returned)
};
constexpr int kCannotDropPrivileges = 77;

// Runs `write` in a child process under a file-size limit (bytes; 0: none),
// optionally as the user nobody. Exit 0: it returned; 1: it threw (message).
ChildResult run_in_child(const std::function<void()>& write, rlim_t size_limit, bool as_nobody = false) {
  int fds[2];
  if (::pipe(fds) != 0) return {};
  const pid_t pid = ::fork();
  if (pid < 0) return {};
  if (pid == 0) {
    ::close(fds[0]);
    if (as_nobody && ::geteuid() == 0 && (::setgid(65534) != 0 || ::setuid(65534) != 0)) ::_exit(kCannotDropPrivileges);
    // Past the limit write(2) fails with EFBIG instead of the process being killed.
    ::signal(SIGXFSZ, SIG_IGN);
    if (size_limit > 0) {
      const rlimit limit{size_limit, size_limit};
      if (::setrlimit(RLIMIT_FSIZE, &limit) != 0) ::_exit(3);
    }
    int code = 0;
    std::string message;
    try {
      write();
    } catch (const std::exception& e) {
      message = e.what();
      code = 1;
    }
    const ssize_t ignored = ::write(fds[1], message.data(), message.size());
    (void)ignored;
    ::_exit(code);
  }
  ::close(fds[1]);
  ChildResult r;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(fds[0], buf, sizeof buf)) > 0) r.message.append(buf, static_cast<size_t>(n));
  ::close(fds[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

std::map<std::string, std::string> snapshot(const fs::path& dir) {
  std::map<std::string, std::string> files;
  for (const auto& e : fs::recursive_directory_iterator(dir))
    if (e.is_regular_file()) files[fs::relative(e.path(), dir).string()] = test::read_bytes(e.path());
  return files;
}

// ---- what each writer writes: small, real content ----

std::vector<EpochMetrics> some_history() {
  std::vector<EpochMetrics> h;
  for (int e = 1; e <= 12; ++e) h.push_back({e, 1.0 / e, 0.5 + 0.1 * e, 1.2 / e, 0.45 + 0.1 * e, 1.5, 2000.0});
  return h;
}

Evaluation some_evaluation() {
  Evaluation ev;
  ev.classes = 3;
  ev.count = 30;
  ev.confusion = {8, 1, 1, 0, 9, 1, 2, 0, 8};
  ev.accuracy = 25.0 / 30;
  ev.loss = 0.4;
  return ev;
}

Image some_image() {
  Image im(40, 60, 3);
  for (size_t i = 0; i < im.pixels.size(); ++i) im.pixels[i] = static_cast<uint8_t>((i * 37) % 251);
  return im;
}

struct Writer {
  std::string name;  // the file written into the test folder
  std::function<void(const fs::path& dir)> write;
};

std::vector<Writer> writers() {
  return {
      {"model.safetensors",
       [](const fs::path& dir) {
         Rng rng(1);
         Sequential model = build_model("lenet", {1, 28, 28}, 10, &rng);
         const ModelInfo info = test::model_info(model, {1, 28, 28}, 10);
         Adam adam(model, {});
         save_checkpoint(dir / "model.safetensors", model, info, &adam);
       }},
      {"model.onnx",
       [](const fs::path& dir) {
         Rng rng(1);
         Sequential model = build_model("lenet", {1, 28, 28}, 10, &rng);
         const ModelInfo info = test::model_info(model, {1, 28, 28}, 10);
         export_onnx(dir / "model.onnx", model, info);
       }},
      {"metrics.csv", [](const fs::path& dir) { write_metrics_csv(dir / "metrics.csv", some_history()); }},
      {"image.png", [](const fs::path& dir) { write_png(dir / "image.png", some_image()); }},
      {"gallery.png",
       [](const fs::path& dir) {
         std::vector<GalleryItem> items(4);
         for (auto& item : items) item = {some_image(), "cat", "dog", 0.9};
         write_gallery(dir / "gallery.png", items);
       }},
      {"loss.png",
       [](const fs::path& dir) {
         plot_loss(dir / "loss.png", some_history(), {"lenet", "test"});
       }},
      {"accuracy.png",
       [](const fs::path& dir) {
         plot_accuracy(dir / "accuracy.png", some_history(), {"lenet", "test"});
       }},
      {"confusion.png",
       [](const fs::path& dir) {
         plot_confusion(dir / "confusion.png", some_evaluation(), {"a", "b", "c"}, {"lenet", "test"});
       }},
      {"report.html",
       [](const fs::path& dir) {
         RunReport report;
         report.info.arch = "flatten, linear 3";
         report.info.input_shape = {1, 4, 4};
         report.info.class_names = {"a", "b", "c"};
         report.history = some_history();
         report.settings = {{"epochs", "3"}};
         write_html_report(dir, report);
       }},
  };
}

class FailingWrite : public ::testing::TestWithParam<size_t> {};

// Under a file-size limit far below what the writer writes, every writer
// throws "cannot write <path>: ..." and the previous file stays.
TEST_P(FailingWrite, FileSizeLimitLeavesThePreviousFile) {
  const Writer w = writers()[GetParam()];
  SCOPED_TRACE(w.name);
  ScratchDir dir;
  const fs::path path = dir / w.name;
  // A real previous version: the same writer, without a limit.
  const ChildResult first = run_in_child([&] { w.write(dir.path()); }, 0);
  ASSERT_EQ(first.code, 0) << first.message;
  const auto before = snapshot(dir.path());
  ASSERT_EQ(before.count(w.name), 1u);
  ASSERT_GT(before.at(w.name).size(), 512u) << "the file must exceed the limit for this test to mean anything";

  const ChildResult r = run_in_child([&] { w.write(dir.path()); }, 512);
  EXPECT_EQ(r.code, 1) << "the write must fail, not succeed nor crash: " << r.message;
  EXPECT_EQ(r.message.rfind("cannot write " + path.string() + ": ", 0), 0u) << r.message;
  EXPECT_TRUE(r.message.find("File too large") != std::string::npos ||
              r.message.find("incomplete") != std::string::npos)
      << r.message;
  EXPECT_EQ(snapshot(dir.path()), before) << "the previous file changed, or a temporary file was left";
}

// Into a folder the process may not write to: the error names the path, the
// previous file stays.
TEST_P(FailingWrite, ReadOnlyFolderLeavesThePreviousFile) {
  const Writer w = writers()[GetParam()];
  SCOPED_TRACE(w.name);
  ScratchDir dir;
  const ChildResult first = run_in_child([&] { w.write(dir.path()); }, 0);
  ASSERT_EQ(first.code, 0) << first.message;
  const auto before = snapshot(dir.path());
  fs::permissions(dir.path(), fs::perms::owner_read | fs::perms::owner_exec | fs::perms::group_read |
                                  fs::perms::group_exec | fs::perms::others_read | fs::perms::others_exec);
  const ChildResult r = run_in_child([&] { w.write(dir.path()); }, 0, /*as_nobody=*/true);
  fs::permissions(dir.path(), fs::perms::owner_all);
  if (r.code == kCannotDropPrivileges) GTEST_SKIP() << "running as root without the right to become nobody";
  EXPECT_EQ(r.code, 1) << r.message;
  EXPECT_EQ(r.message.rfind("cannot write " + (dir / w.name).string() + ": ", 0), 0u) << r.message;
  EXPECT_TRUE(r.message.find("Permission denied") != std::string::npos ||
              r.message.find("cannot create") != std::string::npos)
      << r.message;
  EXPECT_EQ(snapshot(dir.path()), before);
}

INSTANTIATE_TEST_SUITE_P(Writers, FailingWrite, ::testing::Range<size_t>(0, writers().size()),
                         [](const ::testing::TestParamInfo<size_t>& param) {
                           std::string name = writers()[param.param].name;
                           for (char& c : name)
                             if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
                           return name;
                         });

TEST(FailingWrites, ParentThatIsAFileIsNamedInTheError) {
  ScratchDir dir;
  test::write_bytes(dir / "file", "not a folder");
  try {
    write_metrics_csv(dir / "file" / "metrics.csv", some_history());
    FAIL() << "wrote under a regular file";
  } catch (const std::runtime_error& e) {
    EXPECT_EQ(std::string(e.what()), "cannot write " + (dir / "file" / "metrics.csv").string() +
                                         ": cannot create a temporary file in " + (dir / "file").string() +
                                         ": Not a directory");
  }
  EXPECT_EQ(test::read_bytes(dir / "file"), "not a folder");
}

TEST(FailingWrites, AWriterThatThrowsOrWritesNothingLeavesNoTrace) {
  ScratchDir dir;
  test::write_bytes(dir / "out.bin", "previous");
  EXPECT_THROW(write_file_atomic(dir / "out.bin",
                                 [](const fs::path& tmp) {
                                   test::write_bytes(tmp, "half");
                                   throw std::runtime_error("the library failed");
                                 }),
               std::runtime_error);
  try {
    write_file_atomic(dir / "out.bin", [](const fs::path&) {});
    FAIL() << "accepted a writer that wrote nothing";
  } catch (const std::runtime_error& e) {
    EXPECT_EQ(std::string(e.what()), "cannot write " + (dir / "out.bin").string() + ": nothing was written");
  }
  EXPECT_EQ(snapshot(dir.path()), (std::map<std::string, std::string>{{"out.bin", "previous"}}));
}

// ---- the CLI: a file-size limit in the middle of a training run and of `lenet plot` ----

// Runs `lenet ARGS` under `ulimit -f` (KiB) with SIGXFSZ ignored, as a full disk would.
test::CliResult run_limited(const std::string& args, int kib) {
  const fs::path base = fs::temp_directory_path() / ("lenet-limited-" + std::to_string(::getpid()));
  const std::string out = base.string() + ".out", err = base.string() + ".err";
  // bash counts ulimit -f in 1024-byte blocks.
  const std::string script = base.string() + ".sh";
  test::write_bytes(script,
                    "trap '' XFSZ\nulimit -f " + std::to_string(kib) + "\nexec '" + LENET_CLI + "' " + args + "\n");
  const std::string cmd = "bash '" + script + "' >'" + out + "' 2>'" + err + "'";
  const int status = std::system(cmd.c_str());
  test::CliResult r;
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  r.out = test::read_bytes(out);
  r.err = test::read_bytes(err);
  fs::remove(out);
  fs::remove(err);
  fs::remove(script);
  return r;
}

TEST(FailingWritesCli, TrainingUnderAFileSizeLimitStopsAndKeepsTheRun) {
  ScratchDir dir;
  test::write_synthetic_idx(dir / "data", 300, 60, 12, 4);
  const fs::path run = dir / "run";
  const auto first = test::run_cli("train --data " + quoted(dir / "data") +
                                   " --arch lenet-relu --epochs 1 --batch-size 32 "
                                   "--threads 1 --out " +
                                   quoted(run));
  ASSERT_EQ(first.code, 0) << first.err;
  const auto before = snapshot(run);
  // 16 KiB: metrics.csv and report.json fit, no checkpoint does (the model alone is ~60 KB).
  const auto r = run_limited("train --resume " + quoted(run) + " --epochs 2", 16);
  EXPECT_EQ(r.code, 1) << r.err;
  EXPECT_EQ(test::line_count(r.err), 1) << r.err;
  EXPECT_TRUE(std::regex_match(r.err, std::regex("lenet: error: cannot write " + run.string() +
                                                 "/(best|last)\\.safetensors: write failed: File too large\n")))
      << r.err;
  EXPECT_EQ(snapshot(run), before) << "a failed write changed the run or left a temporary file";
}

TEST(FailingWritesCli, PlotUnderAFileSizeLimitKeepsThePictures) {
  ScratchDir dir;
  test::write_synthetic_idx(dir / "data", 300, 60, 12, 4);
  const fs::path run = dir / "run";
  ASSERT_EQ(test::run_cli("train --data " + quoted(dir / "data") +
                          " --arch mlp --epochs 2 --batch-size 32 --threads 1 "
                          "--out " +
                          quoted(run))
                .code,
            0);
  const auto before = snapshot(run);
  ASSERT_GT(before.at("loss.png").size(), 8192u);
  const auto r = run_limited("plot " + quoted(run), 8);
  EXPECT_EQ(r.code, 1) << r.err;
  EXPECT_EQ(test::line_count(r.err), 1) << r.err;
  EXPECT_EQ(r.err.rfind("lenet: error: cannot write " + (run / "loss.png").string() + ": the PNG came out incomplete",
                        0),
            0u)
      << r.err;
  EXPECT_EQ(snapshot(run), before);
}

TEST(FailingWritesCli, GalleryUnderAFileIsOneErrorNamingThePath) {
  ScratchDir dir;
  test::write_synthetic_idx(dir / "data", 300, 60, 12, 4);
  const fs::path run = dir / "run";
  ASSERT_EQ(test::run_cli("train --data " + quoted(dir / "data") +
                          " --arch mlp --epochs 1 --batch-size 32 --threads 1 "
                          "--out " +
                          quoted(run))
                .code,
            0);
  test::write_bytes(dir / "file", "x");
  Image im(12, 12, 1, 100);
  write_png(dir / "one.png", im);
  const auto r = test::run_cli("predict --model " + quoted(run / "best.safetensors") + " " + quoted(dir / "one.png") +
                               " --gallery " + quoted(dir / "file" / "g.png"));
  EXPECT_NE(r.code, 0);
  // predict checks the folder before predicting anything.
  EXPECT_EQ(test::line_count(r.err), 1) << r.err;
  EXPECT_NE(r.err.find("--gallery " + (dir / "file" / "g.png").string() + ": folder " + (dir / "file").string()),
            std::string::npos)
      << r.err;
  EXPECT_EQ(test::read_bytes(dir / "file"), "x");
}

}  // namespace failing_writes_test
}  // namespace lenet

// End to end through the CLI: a generated image-folder data set (PNG, JPEG and
// BMP files, 9 classes of 28 high x 20 wide images) is trained with
// `lenet train`, then `lenet predict` uses the model. Also every bad input of
// training on image folders and of predict.
#include <gtest/gtest.h>

#include <cmath>

#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>

#include "cli_util.h"
#include "image_test_util.h"
#include "lenet/checkpoint.h"
#include "lenet/fileio.h"
#include "lenet/gallery.h"
#include "lenet/image.h"
#include "lenet/kernels.h"
#include "lenet/train.h"

namespace lenet {
namespace {

namespace fs = std::filesystem;
using imgtest::TempDir;
using test::run_cli;

// Sorted order is the class order.
const std::vector<std::string> kClasses = {"ankle",  "bag",   "coat",    "dress",  "pullover",
                                           "sandal", "shirt", "sneaker", "trouser"};
constexpr int kTrainPerClass = 24, kTestPerClass = 4;

std::string q(const fs::path& p) { return "\"" + p.string() + "\""; }

// root/<split>/<class>/<i>.<png|jpg|bmp>; every other file in colour.
void write_dataset(const fs::path& root, bool with_test = true) {
  const char* ext[] = {".png", ".jpg", ".bmp"};
  for (int k = 0; k < 9; ++k) {
    for (int i = 0; i < kTrainPerClass; ++i)
      imgtest::save_image(root / "train" / kClasses[k] / (std::to_string(i) + ext[i % 3]),
                          imgtest::class_image(k, i, 28, 20, i % 2));
    if (with_test)
      for (int i = 0; i < kTestPerClass; ++i)
        imgtest::save_image(root / "test" / kClasses[k] / (std::to_string(i) + ext[(i + k) % 3]),
                            imgtest::class_image(k, 1000 + i, 28, 20, i % 2));
  }
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

// One data set and one trained model for the whole suite: training is the slow part.
class PredictCli : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir("predict-e2e");
    write_dataset(data());
    train_result_ = new test::CliResult(
        run_cli("train --data " + q(data()) + " --out " + q(run()) +
                    " --arch lenet-relu --epochs 3 --batch-size 16 --seed 3 --threads 2",
                dir_->path()));
  }
  static void TearDownTestSuite() {
    delete train_result_;
    delete dir_;
  }
  static fs::path data() { return dir_->path() / "data"; }
  static fs::path run() { return dir_->path() / "run"; }
  static fs::path model() { return run() / "best.safetensors"; }
  static fs::path scratch() { return dir_->path(); }
  static TempDir* dir_;
  static test::CliResult* train_result_;
};
TempDir* PredictCli::dir_ = nullptr;
test::CliResult* PredictCli::train_result_ = nullptr;

TEST_F(PredictCli, TrainsOnTheImageFolderAndDrawsPredictions) {
  ASSERT_EQ(train_result_->code, 0) << train_result_->err;
  EXPECT_NE(train_result_->out.find("216 training and 36 test images of 1x28x20, 9 classes"), std::string::npos)
      << train_result_->out;
  const LoadedModel m = load_checkpoint(model());
  EXPECT_EQ(m.info.class_names, kClasses);
  EXPECT_EQ(m.info.input_shape, (Shape{1, 28, 20}));
  EXPECT_TRUE(m.info.preprocessing.grayscale);
  EXPECT_EQ(m.info.preprocessing.resize_height, 0);
  EXPECT_EQ(m.info.dataset, "data");
  const std::vector<EpochMetrics> history = read_metrics_csv(run() / "metrics.csv");
  ASSERT_EQ(history.size(), 3u);
  EXPECT_GE(history.back().test_acc, 0.9) << "the bands are easy to tell apart";

  // predictions.png: the first ten test images, one row, 4x upscaled, two caption lines.
  const Image gallery = read_image(run() / "predictions.png");
  const int header = 2 * kGalleryLineHeight + kGalleryGap;  // title + legend
  EXPECT_EQ(gallery.height, 2 * kGalleryMargin + header + 2 * kGalleryLineHeight + 4 + 28 * 4);
  EXPECT_GE(gallery.width, 2 * kGalleryMargin + 10 * 20 * 4 + 9 * kGalleryGap);
}

TEST_F(PredictCli, TextOutputNamesClassProbabilityAndTopK) {
  ASSERT_EQ(train_result_->code, 0) << train_result_->err;
  const auto r = run_cli("predict --model " + q(model()) + " " + q(data() / "test"), scratch());
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.err, "");
  const auto lines = lines_of(r.out);
  ASSERT_EQ(lines.size(), 9u * kTestPerClass + 1);
  // "<file>: <class> 97.1% (true: <class>)  | top 3: <class> 97.1%, <class> 1.2%, <class> 0.3%"
  const std::regex line_re(
      R"((.+)/(\w+)/(\d+)\.(png|jpg|bmp): (\w+) (\d+\.\d)% \(true: (\w+)(, wrong)?\)  \| top 3: (\w+) (\d+\.\d)%, \w+ \d+\.\d%, \w+ \d+\.\d%)");
  int correct = 0;
  for (size_t i = 0; i + 1 < lines.size(); ++i) {
    std::smatch m;
    ASSERT_TRUE(std::regex_match(lines[i], m, line_re)) << lines[i];
    EXPECT_EQ(m[2], m[7]) << "the folder is the true class";
    EXPECT_EQ(m[5], m[9]) << "the prediction is the first of the top k";
    EXPECT_EQ(m[6], m[10]);
    EXPECT_EQ(m[8].matched, m[5] != m[7]);
    correct += m[5] == m[7];
  }
  EXPECT_GE(correct, 32);
  EXPECT_TRUE(lines.back().starts_with("accuracy on 36 images whose folder names their class: ")) << lines.back();
}

// Files are decoded on the library's pool, one at a time per thread: the
// output (order, errors, figures) does not depend on the thread count.
TEST_F(PredictCli, SameOutputWithOneThreadOrMany) {
  ASSERT_EQ(train_result_->code, 0) << train_result_->err;
  imgtest::write_bytes(scratch() / "threads" / "broken.png", "not a png");
  const std::string args = "predict --json --model " + q(model()) + " " + q(data() / "test") + " " +
                           q(scratch() / "threads") + " " + q(data() / "train" / "bag");
  const auto one = run_cli(args + " --threads 1", scratch());
  const auto many = run_cli(args + " --threads 3", scratch());
  EXPECT_EQ(one.code, 1) << one.err;  // the broken file
  EXPECT_EQ(many.code, 1) << many.err;
  EXPECT_EQ(lines_of(one.out).size(), 9u * kTestPerClass + kTrainPerClass);
  EXPECT_EQ(one.out, many.out);
  EXPECT_EQ(one.err, many.err);
}

TEST_F(PredictCli, JsonLinesCarryTheDocumentedFieldsAndTheTrainingPath) {
  ASSERT_EQ(train_result_->code, 0) << train_result_->err;
  const fs::path one = data() / "test" / "coat" / "1.png";
  const auto r = run_cli("predict --json --top-k 4 --model " + q(model()) + " " + q(one) + " " +
                             q(data() / "test" / "shirt"),
                         scratch());
  ASSERT_EQ(r.code, 0) << r.err;
  const auto lines = lines_of(r.out);
  ASSERT_EQ(lines.size(), 1u + kTestPerClass);
  for (const auto& line : lines) {
    const nlohmann::json j = nlohmann::json::parse(line);
    for (const char* key : {"file", "index", "label", "probability", "top_k"})
      EXPECT_TRUE(j.contains(key)) << key << ": " << line;
    const int index = j["index"].get<int>();
    ASSERT_GE(index, 0);
    ASSERT_LT(index, 9);
    EXPECT_EQ(j["label"], kClasses[index]);
    ASSERT_EQ(j["top_k"].size(), 4u);
    EXPECT_EQ(j["top_k"][0]["index"], index);
    EXPECT_EQ(j["top_k"][0]["probability"], j["probability"]);
    double sum = 0, previous = 2;
    for (const auto& s : j["top_k"]) {
      EXPECT_EQ(s["label"], kClasses[s["index"].get<int>()]);
      const double p = s["probability"].get<double>();
      EXPECT_LE(p, previous);
      previous = p;
      sum += p;
    }
    EXPECT_LE(sum, 1.0 + 1e-6);
  }
  // A file named on the command line carries no true label; files found by
  // walking a folder take it from their class-named folder.
  const nlohmann::json first = nlohmann::json::parse(lines[0]);
  EXPECT_EQ(first["file"], one.string());
  EXPECT_FALSE(first.contains("true_label"));
  const nlohmann::json walked = nlohmann::json::parse(lines[1]);
  EXPECT_EQ(walked["true_label"], "shirt");
  EXPECT_EQ(walked["true_index"], 6);

  // The same number through the library: file → model input → forward → softmax.
  LoadedModel m = load_model(model());
  const Tensor x = image_file_to_input(one, m.info.preprocessing, m.info.input_shape);
  const Tensor& logits = m.model.forward(x);
  std::vector<float> p(9);
  kernels::softmax(1, 9, logits.data(), p.data());
  const int best = static_cast<int>(std::max_element(p.begin(), p.end()) - p.begin());
  EXPECT_EQ(first["index"], best);
  EXPECT_NEAR(first["probability"].get<double>(), p[best], 1e-6);
}

TEST_F(PredictCli, GalleryHasOneCellPerImage) {
  ASSERT_EQ(train_result_->code, 0) << train_result_->err;
  const fs::path out = scratch() / "gallery.png";
  const auto r = run_cli("predict --model " + q(model()) + " --gallery " + q(out) + " " + q(data() / "test"),
                         scratch());
  ASSERT_EQ(r.code, 0) << r.err;
  const Image g = read_image(out);
  const int rows = (36 + 9) / 10, cell = 2 * kGalleryLineHeight + 4 + 28 * 4;
  EXPECT_EQ(g.height,
            2 * kGalleryMargin + 2 * kGalleryLineHeight + kGalleryGap + rows * cell + (rows - 1) * kGalleryGap);
  EXPECT_GE(g.width, 2 * kGalleryMargin + 10 * 80 + 9 * kGalleryGap);

  const auto capped = run_cli("predict --model " + q(model()) + " --gallery-count 5 --gallery " + q(out) + " " +
                                  q(data() / "test"),
                              scratch());
  ASSERT_EQ(capped.code, 0) << capped.err;
  EXPECT_NE(capped.err.find("the gallery shows the first 5 of 36 images"), std::string::npos) << capped.err;
  EXPECT_EQ(read_image(out).height, 2 * kGalleryMargin + 2 * kGalleryLineHeight + kGalleryGap + cell);

  const auto no_folder = run_cli("predict --model " + q(model()) + " --gallery " + q(scratch() / "nope" / "g.png") +
                                     " " + q(data() / "test"),
                                 scratch());
  EXPECT_EQ(no_folder.code, 1);
  EXPECT_NE(no_folder.err.find("does not exist"), std::string::npos) << no_folder.err;
}

TEST_F(PredictCli, BadFilesAreReportedAndTheOthersStillPredicted) {
  ASSERT_EQ(train_result_->code, 0) << train_result_->err;
  const fs::path bad = scratch() / "bad";
  imgtest::write_bytes(bad / "empty.png", "");
  imgtest::write_bytes(bad / "notes.txt", "not an image");
  const std::string png = encode_png(imgtest::class_image(2, 7));
  imgtest::write_bytes(bad / "cut.png", png.substr(0, png.size() / 2));
  imgtest::save_image(bad / "big.png", imgtest::class_image(2, 7, 56, 40));
  const fs::path good = data() / "test" / "coat" / "1.png";
  const auto r = run_cli("predict --model " + q(model()) + " " + q(scratch() / "missing.png") + " " + q(good) + " " +
                             q(bad / "empty.png") + " " + q(bad / "notes.txt") + " " + q(bad / "cut.png") + " " +
                             q(bad / "big.png"),
                         scratch());
  EXPECT_EQ(r.code, 1);
  const auto out = lines_of(r.out);
  ASSERT_EQ(out.size(), 1u) << r.out;
  EXPECT_TRUE(out[0].starts_with(good.string() + ": ")) << out[0];
  const auto err = lines_of(r.err);
  ASSERT_EQ(err.size(), 6u) << r.err;
  EXPECT_EQ(err[0], "lenet: error: " + (scratch() / "missing.png").string() + ": no such file or folder");
  EXPECT_EQ(err[1], "lenet: error: " + (bad / "empty.png").string() + ": empty file (0 bytes)");
  EXPECT_NE(err[2].find((bad / "notes.txt").string() + ": not an image"), std::string::npos) << err[2];
  EXPECT_NE(err[3].find((bad / "cut.png").string() + ": truncated PNG"), std::string::npos) << err[3];
  EXPECT_NE(err[4].find((bad / "big.png").string() + ": image is 56x40 (HxW) but the model takes 28x20"),
            std::string::npos)
      << err[4];
  EXPECT_EQ(err[5], "lenet: error: 5 of 6 inputs could not be used (named above); the others were predicted");

  // --resize takes the other-size image; the JSON stays parseable around errors on stderr.
  const auto resized = run_cli("predict --json --resize --model " + q(model()) + " " + q(bad / "big.png"), scratch());
  EXPECT_EQ(resized.code, 0) << resized.err;
  EXPECT_EQ(nlohmann::json::parse(resized.out)["file"], (bad / "big.png").string());

  const auto no_model = run_cli("predict --model " + q(scratch() / "none.safetensors") + " " + q(good), scratch());
  EXPECT_EQ(no_model.code, 1);
  EXPECT_EQ(test::line_count(no_model.err), 1) << no_model.err;
  EXPECT_NE(no_model.err.find("none.safetensors"), std::string::npos) << no_model.err;
  EXPECT_EQ(no_model.out, "");

  const auto bad_k = run_cli("predict --top-k 0 --model " + q(model()) + " " + q(good), scratch());
  EXPECT_EQ(bad_k.code, 1);
  EXPECT_NE(bad_k.err.find("--top-k must be a positive whole number, got 0"), std::string::npos) << bad_k.err;
}

// ---- training on image folders: the bad inputs stop the run before training ----

class TrainImageFolderCli : public ::testing::Test {
 protected:
  TempDir dir{"train-images"};
  fs::path data = dir / "data";
  std::string train_args(const std::string& out, const std::string& extra = "") {
    return "train --data " + q(data) + " --out " + q(dir / out) +
           " --arch lenet-relu --epochs 1 --batch-size 32 --threads 2 " + extra;
  }
};

TEST_F(TrainImageFolderCli, OtherSizeStopsBeforeTrainingUnlessSizeIsGiven) {
  write_dataset(data, /*with_test=*/false);
  imgtest::save_image(data / "train" / "coat" / "wide.png", imgtest::class_image(2, 99, 28, 28));
  const auto r = run_cli(train_args("run"), dir.path());
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(test::line_count(r.err), 1) << r.err;
  EXPECT_NE(r.err.find((data / "train" / "coat" / "wide.png").string() +
                       ": image is 28x28 (HxW) but 216 of the 217 images are 28x20"),
            std::string::npos)
      << r.err;
  EXPECT_FALSE(fs::exists(dir / "run" / "best.safetensors"));
  EXPECT_EQ(r.out.find("training"), std::string::npos) << "nothing trained: " << r.out;

  // --size resizes everything; the checkpoint remembers it; --test-split holds out 25% per class.
  const auto ok = run_cli(train_args("run2", "--size 32x24 --test-split 0.25"), dir.path());
  ASSERT_EQ(ok.code, 0) << ok.err;
  EXPECT_NE(ok.out.find("163 training and 54 test images of 1x32x24"), std::string::npos) << ok.out;
  const LoadedModel m = load_checkpoint(dir / "run2" / "best.safetensors");
  EXPECT_EQ(m.info.preprocessing.resize_height, 32);
  EXPECT_EQ(m.info.preprocessing.resize_width, 24);
  EXPECT_EQ(m.info.input_shape, (Shape{1, 32, 24}));
  EXPECT_TRUE(fs::exists(dir / "run2" / "predictions.png"));

  // predict repeats the resize from the checkpoint for a 28x20 file.
  const auto p = run_cli("predict --json --model " + q(dir / "run2" / "best.safetensors") + " " +
                             q(data / "train" / "bag" / "0.png"),
                         dir.path());
  EXPECT_EQ(p.code, 0) << p.err;
  EXPECT_TRUE(nlohmann::json::parse(p.out).contains("index"));

  for (const char* bad : {"--size 14", "--size 0x10", "--test-split 1.5", "--test-split 0", "--val-split 1"}) {
    const auto u = run_cli(train_args("run3", bad), dir.path());
    EXPECT_EQ(u.code, 1) << bad;
    EXPECT_EQ(test::line_count(u.err), 1) << u.err;
    EXPECT_NE(u.err.find(std::string(bad).substr(0, std::string(bad).find(' '))), std::string::npos) << u.err;
  }
}

// The loss and accuracy `lenet eval` prints ("loss 0.1234  accuracy 0.5678").
std::pair<double, double> eval_figures(const std::string& out) {
  std::smatch m;
  const std::regex line(R"(loss ([0-9.]+)  accuracy ([0-9.]+))");
  if (!std::regex_search(out, m, line)) return {-1, -1};
  return {std::stod(m[1]), std::stod(m[2])};
}

TEST_F(TrainImageFolderCli, EvalTestsOnTheImagesTheRunHeldOut) {
  write_dataset(data, /*with_test=*/false);
  const auto r = run_cli(train_args("run", "--test-split 0.25 --split-seed 9"), dir.path());
  ASSERT_EQ(r.code, 0) << r.err;
  const fs::path best = dir / "run" / "best.safetensors";
  const LoadedModel m = load_checkpoint(best);
  EXPECT_EQ(m.metadata.at("test_split"), "0.25");
  EXPECT_FALSE(m.metadata.count("val_split")) << "no validation split without --val-split";
  EXPECT_EQ(m.metadata.at("split_seed"), "9");
  EXPECT_EQ(load_checkpoint(dir / "run" / "last.safetensors").metadata.at("split_seed"), "9");

  // Without flags eval takes the run's split: the same 54 images, the same figures as training's last epoch.
  const auto e = run_cli("eval --model " + q(best) + " --data " + q(data), dir.path());
  ASSERT_EQ(e.code, 0) << e.err;
  EXPECT_NE(e.out.find("test split, 54 images"), std::string::npos) << e.out;
  const auto [loss, acc] = eval_figures(e.out);
  EXPECT_NEAR(loss, m.info.metrics.at("test_loss"), 1e-3) << e.out;
  EXPECT_NEAR(acc, m.info.metrics.at("test_acc"), 1e-4) << e.out;

  // The flags override the stored split.
  const auto half = run_cli("eval --test-split 0.5 --split-seed 1 --model " + q(best) + " --data " + q(data),
                            dir.path());
  ASSERT_EQ(half.code, 0) << half.err;
  EXPECT_NE(half.out.find("test split, 108 images"), std::string::npos) << half.out;

  // A bad flag or a bad stored value: one line naming it.
  const auto bad = run_cli("eval --test-split 1.5 --model " + q(best) + " --data " + q(data), dir.path());
  EXPECT_EQ(bad.code, 1);
  EXPECT_EQ(test::line_count(bad.err), 1) << bad.err;
  EXPECT_NE(bad.err.find("--test-split must lie between 0 and 1"), std::string::npos) << bad.err;
  // eval's old name for it points to the new one.
  test::expect_error_line(run_cli("eval --val-split 0.5 --model " + q(best) + " --data " + q(data), dir.path()),
                          {"--val-split is now --test-split"}, "eval --val-split");
  const SafetensorsFile file = read_safetensors(best);
  std::vector<NamedTensor> tensors;
  for (const auto& [name, t] : file.tensors) tensors.push_back({name, t.shape(), t.span()});
  for (const auto& [key, value] :
       std::vector<std::pair<std::string, std::string>>{{"test_split", "lots"}, {"split_seed", "-3"}}) {
    auto meta = file.metadata;
    meta[key] = value;
    const fs::path odd = dir / "odd.safetensors";
    imgtest::write_bytes(odd, encode_safetensors(tensors, meta));
    const auto o = run_cli("eval --model " + q(odd) + " --data " + q(data), dir.path());
    EXPECT_EQ(o.code, 1) << key;
    EXPECT_EQ(test::line_count(o.err), 1) << o.err;
    EXPECT_NE(o.err.find(odd.string() + ": the stored " + key + " '" + value + "'"), std::string::npos) << o.err;
  }
  // A checkpoint from before --test-split named the test share val_split: eval still finds the run's 54 images.
  auto meta = file.metadata;
  meta.erase("test_split");
  meta["val_split"] = "0.25";
  imgtest::write_bytes(dir / "old.safetensors", encode_safetensors(tensors, meta));
  const auto old = run_cli("eval --model " + q(dir / "old.safetensors") + " --data " + q(data), dir.path());
  ASSERT_EQ(old.code, 0) << old.err;
  EXPECT_NE(old.out.find("test split, 54 images"), std::string::npos) << old.out;
}

// --val-split on an image folder without test/ holds validation images out of
// what --test-split left for training, as for IDX sets; --test-split is
// refused where the data set has its own test split.
TEST_F(TrainImageFolderCli, ValSplitHoldsOutValidationAfterTheTestSplit) {
  write_dataset(data, /*with_test=*/false);
  const fs::path run = dir / "run";
  const auto r = run_cli(train_args("run", "--epochs 2 --test-split 0.25 --val-split 0.2 --split-seed 3"), dir.path());
  ASSERT_EQ(r.code, 0) << r.err;
  // 216 images, 24 a class: 6 a class for testing, then 4 of the other 18 (20%) for validation.
  EXPECT_NE(r.out.find("validation: 36 training images held out"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("126 training and 54 test images"), std::string::npos) << r.out;
  const auto csv = read_metrics_csv(run / "metrics.csv");
  ASSERT_EQ(csv.size(), 2u);
  EXPECT_TRUE(std::isfinite(csv[0].val_loss) && std::isfinite(csv[1].val_loss));
  const LoadedModel m = load_checkpoint(run / "best.safetensors");
  EXPECT_EQ(m.metadata.at("test_split"), "0.25");
  EXPECT_EQ(m.metadata.at("val_split"), "0.20000000000000001");
  EXPECT_EQ(m.info.metrics.count("val_loss"), 1u);
  // eval tests on the run's 54 test images, none of the validation ones.
  const auto e = run_cli("eval --model " + q(run / "best.safetensors") + " --data " + q(data), dir.path());
  ASSERT_EQ(e.code, 0) << e.err;
  EXPECT_NE(e.out.find("test split, 54 images"), std::string::npos) << e.out;
  // Stopped and resumed, the run keeps both splits.
  const auto s = run_cli(train_args("run2", "--epochs 2 --test-split 0.25 --val-split 0.2"), dir.path(),
                         "LENET_TEST_INTERRUPT_AFTER_BATCHES=2");
  ASSERT_EQ(s.code, 130) << s.err;
  const auto c = run_cli("train --resume " + q(dir / "run2"), dir.path());
  ASSERT_EQ(c.code, 0) << c.err;
  EXPECT_NE(c.out.find("validation: 36 training images held out"), std::string::npos) << c.out;
  EXPECT_NE(c.out.find("126 training and 54 test images"), std::string::npos) << c.out;

  // A data set with its own test split takes no --test-split, and nothing is written.
  write_dataset(data, /*with_test=*/true);
  test::expect_error_line(run_cli(train_args("run3", "--test-split 0.3"), dir.path()),
                          {"--test-split: " + data.string() + " has its own test split"}, "--test-split with test/");
  EXPECT_FALSE(fs::exists(dir / "run3"));
}

// `lenet plot` redraws the confusion matrix on the split the run held out
// (--val-split/--split-seed, stored in the checkpoint), not on one drawn from
// the weight seed and the default fraction, which would count training images.
TEST_F(TrainImageFolderCli, PlotRedrawsTheConfusionMatrixOnTheHeldOutSplit) {
  write_dataset(data, /*with_test=*/false);
  const auto r = run_cli(train_args("run", "--val-split 0.35 --split-seed 9 --seed 4"), dir.path());
  ASSERT_EQ(r.code, 0) << r.err;
  const fs::path run = dir / "run";
  const std::string drawn = read_file(run / "confusion.png");
  fs::remove(run / "confusion.png");
  const auto p = run_cli("plot " + q(run), dir.path());
  ASSERT_EQ(p.code, 0) << p.err;
  EXPECT_EQ(p.err, "");
  // The same best checkpoint on the same held-out images: the same picture.
  EXPECT_TRUE(read_file(run / "confusion.png") == drawn) << "plot drew the confusion matrix of another split";
}

TEST_F(TrainImageFolderCli, UnreadableFilesAreSkippedWithOneWarningEachAndACount) {
  write_dataset(data);
  imgtest::write_bytes(data / "train" / "bag" / "zero.png", "");
  imgtest::write_bytes(data / "train" / "coat" / "readme.txt", "hello");
  const std::string jpg = encode_jpeg(imgtest::class_image(3, 1));
  imgtest::write_bytes(data / "test" / "dress" / "cut.jpg", jpg.substr(0, jpg.size() - 40));
  const auto r = run_cli(train_args("run"), dir.path());
  ASSERT_EQ(r.code, 0) << r.err;
  const auto err = lines_of(r.err);
  ASSERT_EQ(err.size(), 4u) << r.err;
  EXPECT_EQ(err[0],
            "lenet: warning: skipped " + (data / "train" / "bag" / "zero.png").string() + ": empty file (0 bytes)");
  EXPECT_TRUE(err[1].starts_with("lenet: warning: skipped " + (data / "train" / "coat" / "readme.txt").string() +
                                 ": not an image"))
      << err[1];
  EXPECT_TRUE(err[2].starts_with("lenet: warning: skipped " + (data / "test" / "dress" / "cut.jpg").string() +
                                 ": truncated JPEG"))
      << err[2];
  EXPECT_EQ(err[3], "lenet: warning: skipped 3 file(s) of 255 in " + data.string());
  EXPECT_NE(r.out.find("216 training and 36 test images"), std::string::npos) << r.out;
}

TEST_F(TrainImageFolderCli, EmptyClassFolderAndOneClassAreErrors) {
  write_dataset(data);
  fs::create_directories(data / "train" / "zebra");
  auto r = run_cli(train_args("run"), dir.path());
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err, "lenet: error: " + (data / "train" / "zebra").string() +
                       ": empty class folder (no image files); add images or remove it\n");

  TempDir one("one-class");
  imgtest::save_image(one / "train" / "only" / "a.png", imgtest::class_image(0, 0));
  imgtest::save_image(one / "train" / "only" / "b.png", imgtest::class_image(0, 1));
  r = run_cli("train --data " + q(one.path()) + " --out " + q(dir / "run1") + " --epochs 1", dir.path());
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("1 class ('only'); a classifier needs at least two classes"), std::string::npos) << r.err;
  EXPECT_EQ(test::line_count(r.err), 1);
}

}  // namespace
}  // namespace lenet

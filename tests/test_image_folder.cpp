// Image-folder data sets: layout, class names, splits, CSV lists, resizing and
// every kind of bad input the loader must report.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <set>

#include "image_test_util.h"
#include "lenet/image.h"

namespace lenet {
namespace {

using imgtest::TempDir;
namespace fs = std::filesystem;

const char* kExt[] = {".png", ".jpg", ".bmp", ".pgm"};

// root/<split>/<class>/<i><ext> for classes c0..c{classes-1}, formats cycling.
void make_split(const fs::path& root, const std::string& split, int classes, int per_class, int h = 28, int w = 20) {
  for (int k = 0; k < classes; ++k)
    for (int i = 0; i < per_class; ++i)
      imgtest::save_image(root / split / (std::string("c") + std::to_string(k)) /
                              (std::to_string(i) + kExt[(i + k) % 4]),
                          imgtest::class_image(k, i, h, w, (i % 2) == 1));
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(ImageFolder, LoadsTrainAndTestWithSortedClassNames) {
  TempDir dir("folder");
  make_split(dir.path(), "train", 3, 4);
  make_split(dir.path(), "test", 3, 2);
  ASSERT_TRUE(is_image_folder(dir.path()));
  ImageLoadReport report;
  const DataSplit s = load_image_folder(dir.path(), {}, &report);
  EXPECT_EQ(s.train.class_names, (std::vector<std::string>{"c0", "c1", "c2"}));
  EXPECT_EQ(s.train.count, 12);
  EXPECT_EQ(s.test.count, 6);
  EXPECT_EQ(s.train.input_shape(), (Shape{1, 28, 20}));
  EXPECT_EQ(s.test.height, 28);
  EXPECT_TRUE(report.skipped.empty());
  EXPECT_EQ(report.files, 18);
  EXPECT_TRUE(s.preprocessing.grayscale);
  EXPECT_EQ(s.preprocessing.resize_height, 0);
  EXPECT_EQ(s.name, dir.path().filename().string());
  // Each sample's label is its folder, its pixels the file's (gray PNG: exact).
  for (int64_t i = 0; i < s.train.count; ++i) {
    const fs::path file = s.train.files[i];
    EXPECT_EQ(s.train.class_names[s.train.labels[i]], file.parent_path().filename().string());
  }
  const auto at = std::find(s.train.files.begin(), s.train.files.end(), (dir / "train/c0/0.png").string());
  ASSERT_NE(at, s.train.files.end());
  const int64_t idx = at - s.train.files.begin();
  const Image expected = imgtest::class_image(0, 0);
  EXPECT_TRUE(std::equal(expected.pixels.begin(), expected.pixels.end(), s.train.pixels.begin() + idx * 560));
  // A colour BMP arrives as its luma.
  const auto bmp = std::find(s.train.files.begin(), s.train.files.end(), (dir / "train/c1/1.bmp").string());
  ASSERT_NE(bmp, s.train.files.end());
  const Image luma = to_grayscale(imgtest::class_image(1, 1, 28, 20, true));
  EXPECT_TRUE(
      std::equal(luma.pixels.begin(), luma.pixels.end(), s.train.pixels.begin() + (bmp - s.train.files.begin()) * 560));
}

TEST(ImageFolder, SameResultWithOneThreadOrMany) {
  TempDir dir("threads");
  make_split(dir.path(), "train", 2, 12);
  make_split(dir.path(), "test", 2, 3);
  DataOptions one, many;
  one.threads = 1, many.threads = 4;
  ImageLoadReport r1, r2;
  const DataSplit a = load_image_folder(dir.path(), one, &r1), b = load_image_folder(dir.path(), many, &r2);
  EXPECT_EQ(a.train.pixels, b.train.pixels);
  EXPECT_EQ(a.train.labels, b.train.labels);
  EXPECT_EQ(a.test.files, b.test.files);
}

// Every index exactly once, whatever the thread count (also 0: all cores, and more threads than files).
TEST(ImageFolder, DecodeInParallelCallsEachIndexOnce) {
  for (int threads : {0, 1, 2, 3, 7}) {
    for (int64_t count : {0, 1, 5, 200}) {
      std::vector<std::atomic<int>> calls(static_cast<size_t>(count));
      decode_in_parallel(count, threads, [&](int64_t i) { calls[static_cast<size_t>(i)].fetch_add(1); });
      for (int64_t i = 0; i < count; ++i) EXPECT_EQ(calls[static_cast<size_t>(i)].load(), 1) << threads << " " << i;
    }
  }
}

TEST(ImageFolder, SeededStratifiedSplitWithoutTestFolder) {
  TempDir dir("split");
  make_split(dir.path(), "train", 3, 10);
  DataOptions o;
  o.test_split = 0.2, o.seed = 7;
  ImageLoadReport r;
  const DataSplit a = load_image_folder(dir.path(), o, &r);
  EXPECT_EQ(a.train.count, 24);
  EXPECT_EQ(a.test.count, 6);
  for (int k = 0; k < 3; ++k) EXPECT_EQ(std::count(a.test.labels.begin(), a.test.labels.end(), k), 2) << k;
  std::set<std::string> all(a.train.files.begin(), a.train.files.end());
  for (const auto& f : a.test.files) EXPECT_TRUE(all.insert(f).second) << f << " is in both splits";
  EXPECT_EQ(all.size(), 30u);
  // Same seed, same split; another seed, another split.
  const DataSplit again = load_image_folder(dir.path(), o, &r);
  EXPECT_EQ(again.test.files, a.test.files);
  o.seed = 8;
  EXPECT_NE(load_image_folder(dir.path(), o, &r).test.files, a.test.files);
  o.test_split = 0.5;
  EXPECT_EQ(load_image_folder(dir.path(), o, &r).test.count, 15);
  o.test_split = 1.5;
  EXPECT_NE(error_of([&] { load_image_folder(dir.path(), o, &r); }).find("--test-split"), std::string::npos);
}

TEST(ImageFolder, SizeOptionResizesEveryImageBilinearly) {
  TempDir dir("resize");
  make_split(dir.path(), "train", 2, 3, 28, 20);
  imgtest::save_image(dir / "train/c1/big.png", imgtest::class_image(1, 9, 56, 40));
  DataOptions o;
  o.resize_height = 14, o.resize_width = 10;
  ImageLoadReport r;
  const DataSplit s = load_image_folder(dir.path(), o, &r);
  EXPECT_EQ(s.train.height, 14);
  EXPECT_EQ(s.train.width, 10);
  EXPECT_EQ(s.preprocessing.resize_height, 14);
  EXPECT_EQ(s.preprocessing.resize_width, 10);
  const auto& files = s.train.files;
  for (const auto* split : {&s.train, &s.test}) {
    const auto at = std::find(split->files.begin(), split->files.end(), (dir / "train/c1/big.png").string());
    if (at == split->files.end()) continue;
    const Image expected = resize_bilinear(imgtest::class_image(1, 9, 56, 40), 14, 10);
    EXPECT_TRUE(std::equal(expected.pixels.begin(), expected.pixels.end(),
                           split->pixels.begin() + (at - split->files.begin()) * 140));
  }
  EXPECT_FALSE(files.empty());
}

TEST(ImageFolder, BadFilesAreSkippedAndCounted) {
  TempDir dir("badfiles");
  make_split(dir.path(), "train", 2, 4);
  make_split(dir.path(), "test", 2, 2);
  imgtest::write_bytes(dir / "train/c0/empty.png", "");
  const std::string png = encode_png(imgtest::class_image(0, 5));
  imgtest::write_bytes(dir / "train/c0/cut.png", png.substr(0, png.size() / 2));
  imgtest::write_bytes(dir / "train/c1/notes.txt", "not an image\n");
  imgtest::write_bytes(dir / "test/c1/cut.jpg", encode_jpeg(imgtest::class_image(1, 5)).substr(0, 300));
  imgtest::write_bytes(dir / "train/c1/.DS_Store", "hidden files are not looked at");
  ImageLoadReport r;
  const DataSplit s = load_image_folder(dir.path(), {}, &r);
  EXPECT_EQ(s.train.count, 8);
  EXPECT_EQ(s.test.count, 4);
  ASSERT_EQ(r.skipped.size(), 4u);
  EXPECT_EQ(r.files, 16);
  auto mentions = [&](const std::string& file, const std::string& problem) {
    return std::any_of(r.skipped.begin(), r.skipped.end(), [&](const std::string& line) {
      return line.find((dir / file).string()) != std::string::npos && line.find(problem) != std::string::npos;
    });
  };
  EXPECT_TRUE(mentions("train/c0/empty.png", "empty file"));
  EXPECT_TRUE(mentions("train/c0/cut.png", "truncated"));
  EXPECT_TRUE(mentions("train/c1/notes.txt", "not an image"));
  EXPECT_TRUE(mentions("test/c1/cut.jpg", "JPEG"));
}

TEST(ImageFolder, OtherSizeWithoutResizeNamesFileSizeAndExpected) {
  TempDir dir("size");
  make_split(dir.path(), "train", 2, 5);
  imgtest::save_image(dir / "train/c1/odd.png", imgtest::class_image(1, 1, 32, 32));
  const std::string e = error_of([&] { load_image_folder(dir.path(), {}); });
  EXPECT_NE(e.find((dir / "train/c1/odd.png").string()), std::string::npos) << e;
  EXPECT_NE(e.find("is 32x32 (HxW)"), std::string::npos) << e;
  EXPECT_NE(e.find("10 of the 11 images are 28x20"), std::string::npos) << e;
  EXPECT_NE(e.find("--size"), std::string::npos) << e;
}

TEST(ImageFolder, EmptyClassFolderOneClassAndUnknownTestClassAreErrors) {
  TempDir dir("structure");
  make_split(dir.path(), "train", 2, 3);
  fs::create_directories(dir / "train/c2");
  std::string e = error_of([&] { load_image_folder(dir.path(), {}); });
  EXPECT_NE(e.find((dir / "train/c2").string() + ": empty class folder"), std::string::npos) << e;

  fs::remove(dir / "train/c2");
  fs::remove_all(dir / "train/c1");
  e = error_of([&] { load_image_folder(dir.path(), {}); });
  EXPECT_NE(e.find("1 class ('c0'); a classifier needs at least two classes"), std::string::npos) << e;

  make_split(dir.path(), "train", 2, 3);
  make_split(dir.path(), "test", 3, 1);
  e = error_of([&] { load_image_folder(dir.path(), {}); });
  EXPECT_NE(e.find("class 'c2' has no folder in"), std::string::npos) << e;

  // A class whose every file is unreadable is as empty as an empty folder.
  fs::remove_all(dir / "test");
  fs::remove_all(dir / "train/c1");
  imgtest::write_bytes(dir / "train/c1/a.png", "");
  ImageLoadReport r;
  e = error_of([&] { load_image_folder(dir.path(), {}, &r); });
  EXPECT_NE(e.find("class 'c1' has no readable training images"), std::string::npos) << e;

  e = error_of([&] { load_image_folder(dir / "nothing-here", {}); });
  EXPECT_NE(e.find("no such file or folder"), std::string::npos) << e;
}

TEST(ImageFolder, CsvListsWithNamesOrNumbers) {
  TempDir dir("csv");
  std::string csv = "path,label\n";
  for (int k = 0; k < 3; ++k)
    for (int i = 0; i < 5; ++i) {
      const std::string rel = "imgs/" + std::to_string(k) + "_" + std::to_string(i) + ".png";
      imgtest::save_image(dir / rel, imgtest::class_image(k, i));
      csv += (i == 0 ? "\"" + rel + "\"" : rel) + "," + std::string(k == 0 ? "cat" : k == 1 ? "ant" : "bee") + "\n";
    }
  imgtest::write_bytes(dir / "list.csv", csv);
  DataOptions o;
  o.test_split = 0.2;
  ImageLoadReport r;
  const DataSplit s = load_image_folder(dir / "list.csv", o, &r);
  EXPECT_EQ(s.train.class_names, (std::vector<std::string>{"ant", "bee", "cat"}));
  EXPECT_EQ(s.train.count + s.test.count, 15);
  EXPECT_EQ(s.test.count, 3);
  EXPECT_EQ(s.name, "list");
  for (int64_t i = 0; i < s.train.count; ++i) {
    const char k = fs::path(s.train.files[i]).filename().string()[0];
    EXPECT_EQ(s.train.class_names[s.train.labels[i]], k == '0' ? "cat" : k == '1' ? "ant" : "bee");
  }

  // train.csv + test.csv in a folder, integer labels: classes "0".."2".
  std::string train = "", test = "";
  for (int k = 0; k < 3; ++k)
    for (int i = 0; i < 5; ++i)
      (i < 4 ? train : test) += "imgs/" + std::to_string(k) + "_" + std::to_string(i) + ".png," + std::to_string(k) +
                                "\n";
  imgtest::write_bytes(dir / "train.csv", train);
  imgtest::write_bytes(dir / "test.csv", test);
  const DataSplit n = load_image_folder(dir.path(), {}, &r);
  EXPECT_EQ(n.train.class_names, (std::vector<std::string>{"0", "1", "2"}));
  EXPECT_EQ(n.train.count, 12);
  EXPECT_EQ(n.test.count, 3);
  EXPECT_EQ(n.test.labels, (std::vector<int32_t>{0, 1, 2}));

  imgtest::write_bytes(dir / "bad.csv", "path,label\nimgs/0_0.png,cat\nimgs/0_1.png\n");
  const std::string e = error_of([&] { load_image_folder(dir / "bad.csv", {}); });
  EXPECT_NE(e.find("bad.csv:3: expected 'path,label'"), std::string::npos) << e;
}

TEST(ImageFolder, ParseSize) {
  EXPECT_EQ(parse_size("28x20"), (std::pair<int, int>{28, 20}));
  EXPECT_EQ(parse_size("7X9"), (std::pair<int, int>{7, 9}));
  EXPECT_THROW(parse_size("28"), std::invalid_argument);
  EXPECT_THROW(parse_size("0x5"), std::invalid_argument);
  EXPECT_THROW(parse_size("28x20px"), std::invalid_argument);
}

}  // namespace
}  // namespace lenet

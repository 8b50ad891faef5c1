// Image decoding, grayscale, bilinear resize, PNG writing, the file → model
// input path, and the prediction gallery.
#include <gtest/gtest.h>
#include <zlib.h>

#include <cmath>

#include "image_test_util.h"
#include "lenet/gallery.h"
#include "lenet/image.h"

namespace lenet {
namespace {

using imgtest::TempDir;

Image solid(int h, int w, std::initializer_list<uint8_t> colour) {
  Image img(h, w, static_cast<int>(colour.size()));
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      int c = 0;
      for (uint8_t v : colour) img.at(y, x, c++) = v;
    }
  return img;
}

Image gray_from(int h, int w, std::initializer_list<uint8_t> values) {
  Image img(h, w, 1);
  std::copy(values.begin(), values.end(), img.pixels.begin());
  return img;
}

// ---- grayscale ----

TEST(Grayscale, KnownColoursMatchOpenCvFixedPoint) {
  // (4899 R + 9617 G + 1868 B + 8192) >> 14; e.g. red: 4899·255 = 1249245,
  // + 8192 = 1257437, / 16384 = 76.7 → 76 (0.299·255 = 76.2).
  EXPECT_EQ(to_grayscale(solid(1, 1, {255, 0, 0})).pixels[0], 76);
  EXPECT_EQ(to_grayscale(solid(1, 1, {0, 255, 0})).pixels[0], 150);    // 0.587·255 = 149.7
  EXPECT_EQ(to_grayscale(solid(1, 1, {0, 0, 255})).pixels[0], 29);     // 0.114·255 = 29.1
  EXPECT_EQ(to_grayscale(solid(1, 1, {255, 128, 0})).pixels[0], 151);  // 76.2 + 75.1 = 151.4
  EXPECT_EQ(to_grayscale(solid(1, 1, {255, 255, 255})).pixels[0], 255);
  EXPECT_EQ(to_grayscale(solid(1, 1, {0, 0, 0})).pixels[0], 0);
  EXPECT_EQ(to_grayscale(solid(1, 1, {100, 100, 100})).pixels[0], 100);  // weights sum to 2^14
}

TEST(Grayscale, AlphaIsIgnoredAndGrayKept) {
  EXPECT_EQ(to_grayscale(solid(2, 3, {255, 128, 0, 7})).pixels, std::vector<uint8_t>(6, 151));
  EXPECT_EQ(to_grayscale(solid(1, 2, {90, 3})).pixels, std::vector<uint8_t>(2, 90));
  const Image g = gray_from(1, 3, {1, 2, 3});
  EXPECT_EQ(to_grayscale(g).pixels, g.pixels);
  EXPECT_EQ(to_rgb(g).pixels, (std::vector<uint8_t>{1, 1, 1, 2, 2, 2, 3, 3, 3}));
}

TEST(Grayscale, ColourPngFileBecomesLuma) {
  TempDir dir("gray");
  imgtest::save_image(dir / "orange.png", solid(3, 4, {255, 128, 0}));
  const Image decoded = read_image(dir / "orange.png");
  EXPECT_EQ(decoded.channels, 3);
  EXPECT_EQ(to_grayscale(decoded).pixels, std::vector<uint8_t>(12, 151));
}

// ---- resize ----

TEST(Resize, FloatMatchesPyTorchAlignCornersFalse) {
  // F.interpolate(torch.tensor([[[[1., 2.], [3., 4.]]]]), scale_factor=2,
  //               mode="bilinear", align_corners=False)
  const std::vector<float> in = {1, 2, 3, 4};
  const std::vector<float> expected = {1.00f, 1.25f, 1.75f, 2.00f,  //
                                       1.50f, 1.75f, 2.25f, 2.50f,  //
                                       2.50f, 2.75f, 3.25f, 3.50f,  //
                                       3.00f, 3.25f, 3.75f, 4.00f};
  const std::vector<float> out = resize_bilinear(in, 1, 2, 2, 4, 4);
  ASSERT_EQ(out.size(), expected.size());
  for (size_t i = 0; i < out.size(); ++i) EXPECT_FLOAT_EQ(out[i], expected[i]) << i;
}

TEST(Resize, HandComputedNonIntegerRatio) {
  // 1x3 → 1x2: scale 1.5, sources (0 + .5)·1.5 − .5 = 0.25 and 1.75:
  // 0.75·10 + 0.25·20 = 12.5 and 0.25·20 + 0.75·40 = 35.
  const std::vector<float> out = resize_bilinear(std::vector<float>{10, 20, 40}, 1, 1, 3, 1, 2);
  EXPECT_FLOAT_EQ(out[0], 12.5f);
  EXPECT_FLOAT_EQ(out[1], 35.0f);
  // 1x2 → 1x5: scale 0.4, sources −0.3 (→ 0), 0.1, 0.5, 0.9, 1.3 (→ right edge).
  const std::vector<float> up = resize_bilinear(std::vector<float>{0, 100}, 1, 1, 2, 1, 5);
  const float expected[5] = {0, 10, 50, 90, 100};
  for (int i = 0; i < 5; ++i) EXPECT_NEAR(up[i], expected[i], 1e-4) << i;
}

TEST(Resize, EightBitRoundsToNearest) {
  // The PyTorch case scaled by 40: every value is an integer.
  const Image up = resize_bilinear(gray_from(2, 2, {40, 80, 120, 160}), 4, 4);
  EXPECT_EQ(up.pixels, (std::vector<uint8_t>{40, 50, 70, 80, 60, 70, 90, 100, 100, 110, 130, 140, 120, 130, 150, 160}));
  // [[0, 100], [200, 255]] → 4x4, pixel (1, 1): source (0.25, 0.25):
  // 0.75·(0.75·0 + 0.25·100) + 0.25·(0.75·200 + 0.25·255) = 18.75 + 53.44 = 72.19 → 72.
  const Image b = resize_bilinear(gray_from(2, 2, {0, 100, 200, 255}), 4, 4);
  EXPECT_EQ(b.at(1, 1), 72);
  EXPECT_EQ(b.at(0, 1), 25);   // 0.75·0 + 0.25·100
  EXPECT_EQ(b.at(3, 2), 241);  // source (1.25 → last row, 0.75): 0.25·200 + 0.75·255 = 241.25
  // Halving averages each 2x2 block (sources fall at the block centres).
  const Image down = resize_bilinear(gray_from(4, 4,
                                               {0, 2, 10, 20,  //
                                                4, 6, 30, 40,  //
                                                1, 1, 0, 0,    //
                                                1, 3, 0, 255}),
                                     2, 2);
  EXPECT_EQ(down.pixels, (std::vector<uint8_t>{3, 25, 2, 64}));  // 63.75 → 64
}

TEST(Resize, SameSizeIsIdentityAndChannelsStaySeparate) {
  const Image img = imgtest::class_image(3, 1, 28, 20, true);
  EXPECT_EQ(resize_bilinear(img, 28, 20).pixels, img.pixels);
  const Image rgb = resize_bilinear(solid(3, 5, {10, 200, 30}), 7, 2);
  EXPECT_EQ(rgb.channels, 3);
  for (int y = 0; y < 7; ++y)
    for (int x = 0; x < 2; ++x) EXPECT_EQ(rgb.at(y, x, 1), 200);
  EXPECT_THROW(resize_bilinear(img, 0, 5), std::invalid_argument);
}

TEST(Upscale, NearestRepeatsEachPixelAsABlock) {
  const Image big = upscale_nearest(gray_from(2, 2, {1, 2, 3, 4}), 3);
  ASSERT_EQ(big.height, 6);
  ASSERT_EQ(big.width, 6);
  EXPECT_EQ(big.at(0, 0), 1);
  EXPECT_EQ(big.at(2, 2), 1);
  EXPECT_EQ(big.at(2, 3), 2);
  EXPECT_EQ(big.at(3, 2), 3);
  EXPECT_EQ(big.at(5, 5), 4);
}

// ---- formats ----

TEST(Decode, PngBmpPgmRoundTripExactlyJpegClosely) {
  TempDir dir("formats");
  const Image colour = imgtest::class_image(4, 2, 28, 20, true);
  const Image gray = imgtest::class_image(4, 2, 28, 20, false);
  imgtest::save_image(dir / "a.png", colour);
  imgtest::save_image(dir / "a.bmp", colour);
  imgtest::save_image(dir / "g.png", gray);
  imgtest::save_image(dir / "g.pgm", gray);
  imgtest::save_image(dir / "a.jpg", colour);
  EXPECT_EQ(read_image(dir / "a.png").pixels, colour.pixels);
  EXPECT_EQ(read_image(dir / "a.bmp").pixels, colour.pixels);
  EXPECT_EQ(read_image(dir / "g.png").pixels, gray.pixels);
  const Image pgm = read_image(dir / "g.pgm");
  EXPECT_EQ(pgm.channels, 1);
  EXPECT_EQ(pgm.pixels, gray.pixels);
  const Image jpg = read_image(dir / "a.jpg");
  ASSERT_EQ(jpg.height, 28);
  ASSERT_EQ(jpg.width, 20);
  double err = 0;
  for (size_t i = 0; i < jpg.pixels.size(); ++i) err += std::abs(jpg.pixels[i] - colour.pixels[i]);
  EXPECT_LT(err / jpg.pixels.size(), 8.0);  // quality 95 on a noisy picture

  const ImageInfo info = probe_image(read_file(dir / "a.jpg"), "a.jpg");
  EXPECT_EQ(info.format, "JPEG");
  EXPECT_EQ(info.height, 28);
  EXPECT_EQ(info.width, 20);
}

TEST(Decode, PpmWithCommentsAndSixteenBitPgm) {
  const std::string ppm = std::string("P6\n# comment\n2 1 # another\n255\n") +
                          std::string("\xff\x80\x00\x00\x00\xff", 6);
  const Image a = decode_image(ppm, "a.ppm");
  EXPECT_EQ(a.channels, 3);
  EXPECT_EQ(to_grayscale(a).pixels, (std::vector<uint8_t>{151, 29}));
  const std::string pgm16 = std::string("P5 2 1 65535\n") + std::string("\xff\xff\x00\x00", 4);
  const Image b = decode_image(pgm16, "b.pgm");
  EXPECT_EQ(b.pixels, (std::vector<uint8_t>{255, 0}));
}

void expect_decode_error(const std::string& bytes, const std::string& name, const std::string& fragment) {
  try {
    decode_image(bytes, name);
    ADD_FAILURE() << name << " decoded; expected an error containing '" << fragment << "'";
  } catch (const std::runtime_error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find(name + ": "), std::string::npos) << what;
    EXPECT_NE(what.find(fragment), std::string::npos) << what;
  }
}

TEST(Decode, BadBytesGiveOneClearError) {
  const Image img = imgtest::class_image(1, 1, 28, 20, true);
  const std::string png = encode_png(img), jpg = encode_jpeg(img), bmp = encode_bmp(img);
  const std::string pgm = "P5\n20 28\n255\n" + std::string(560, '\x40');
  expect_decode_error("", "empty.png", "empty file (0 bytes)");
  expect_decode_error("just some text, not pixels\n", "notes.png", "not an image");
  expect_decode_error("P2\n2 1\n255\n0 255\n", "ascii.pgm", "use binary PGM (P5)");
  expect_decode_error(png.substr(0, png.size() / 2), "half.png", "truncated PNG");
  expect_decode_error(png.substr(0, 12), "stub.png", "PNG");
  expect_decode_error(jpg.substr(0, jpg.size() * 9 / 10), "cut.jpg", "truncated JPEG");
  expect_decode_error(bmp.substr(0, bmp.size() - 100), "cut.bmp", "truncated BMP: 1634 bytes, its header needs 1734");
  expect_decode_error(pgm.substr(0, pgm.size() - 1), "cut.pgm", "truncated PNM");
}

TEST(Decode, AbsurdDimensionsAreRefusedFromTheHeader) {
  // A PNG header claiming 100000 x 3 pixels, its CRC recomputed (libpng checks it).
  std::string png = encode_png(Image(1, 1, 1));
  const uint32_t w = 100000;
  png[16] = static_cast<char>(w >> 24), png[17] = static_cast<char>(w >> 16);
  png[18] = static_cast<char>(w >> 8), png[19] = static_cast<char>(w);
  png[23] = 3;
  const uint32_t crc = static_cast<uint32_t>(crc32(0, reinterpret_cast<const Bytef*>(png.data() + 12), 17));
  for (int i = 0; i < 4; ++i) png[29 + i] = static_cast<char>(crc >> (24 - 8 * i));
  expect_decode_error(png, "huge.png", "absurd image size 3x100000 (HxW)");
  // A BMP header claiming 9000 x 9000 (81 megapixels, each side allowed).
  std::string bmp = encode_bmp(Image(1, 1, 3));
  for (int at : {18, 22}) {
    bmp[at] = static_cast<char>(9000 & 0xff), bmp[at + 1] = static_cast<char>(9000 >> 8);
  }
  expect_decode_error(bmp, "huge.bmp", "absurd image size 9000x9000");
}

TEST(Decode, MissingFileOrFolderIsNamed) {
  TempDir dir("missing");
  try {
    read_image(dir / "nope.png");
    ADD_FAILURE();
  } catch (const std::runtime_error& e) {
    EXPECT_EQ(std::string(e.what()), (dir / "nope.png").string() + ": no such file");
  }
  EXPECT_THROW(read_image(dir.path()), std::runtime_error);
}

TEST(WritePng, WritesAtomicallyAndReadsBack) {
  TempDir dir("writepng");
  const Image img = imgtest::class_image(2, 3, 28, 20, true);
  write_png(dir / "x.png", img);
  EXPECT_EQ(read_image(dir / "x.png").pixels, img.pixels);
  // A folder that does not exist: an error naming the path, nothing left behind.
  EXPECT_THROW(write_png(dir / "no" / "x.png", img), std::runtime_error);
  EXPECT_FALSE(std::filesystem::exists(dir / "no"));
  EXPECT_THROW(encode_png(Image{}), std::invalid_argument);
}

// ---- model inputs ----

TEST(ModelInput, SamePathAsTrainingWithResizeAndNormalisation) {
  TempDir dir("input");
  imgtest::save_image(dir / "x.png", gray_from(2, 2, {40, 80, 120, 160}));
  Preprocessing pre;
  pre.resize_height = 4, pre.resize_width = 4;
  pre.normalization = Normalization{{0.5f}, {0.25f}};
  const Tensor x = image_file_to_input(dir / "x.png", pre, {1, 4, 4});
  ASSERT_EQ(x.shape(), (Shape{1, 1, 4, 4}));
  const uint8_t expected[16] = {40, 50, 70, 80, 60, 70, 90, 100, 100, 110, 130, 140, 120, 130, 150, 160};
  for (int i = 0; i < 16; ++i) EXPECT_FLOAT_EQ(x[i], (expected[i] / 255.0f - 0.5f) / 0.25f) << i;
}

TEST(ModelInput, ColourFileBecomesGrayOrPlanarRgb) {
  TempDir dir("input-rgb");
  imgtest::save_image(dir / "o.bmp", solid(2, 3, {255, 128, 0}));
  const Tensor g = image_file_to_input(dir / "o.bmp", {}, {1, 2, 3});
  for (int i = 0; i < 6; ++i) EXPECT_FLOAT_EQ(g[i], 151 / 255.0f);
  Preprocessing rgb_pre;
  rgb_pre.grayscale = false;
  const Tensor c = image_file_to_input(dir / "o.bmp", rgb_pre, {3, 2, 3});
  for (int i = 0; i < 6; ++i) {
    EXPECT_FLOAT_EQ(c[i], 1.0f);              // R plane
    EXPECT_FLOAT_EQ(c[6 + i], 128 / 255.0f);  // G plane
    EXPECT_FLOAT_EQ(c[12 + i], 0.0f);         // B plane
  }
}

TEST(ModelInput, WrongSizeWithoutResizeNamesBothSizes) {
  TempDir dir("input-size");
  imgtest::save_image(dir / "big.png", Image(32, 32, 1, 9));
  try {
    image_file_to_input(dir / "big.png", {}, {1, 28, 20});
    ADD_FAILURE();
  } catch (const std::runtime_error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find((dir / "big.png").string()), std::string::npos) << what;
    EXPECT_NE(what.find("32x32"), std::string::npos) << what;
    EXPECT_NE(what.find("28x20"), std::string::npos) << what;
  }
  const Tensor x = image_file_to_input(dir / "big.png", {}, {1, 28, 20}, /*force_resize=*/true);
  EXPECT_EQ(x.shape(), (Shape{1, 1, 28, 20}));
  EXPECT_FLOAT_EQ(x[100], 9 / 255.0f);
}

// ---- gallery ----

std::vector<GalleryItem> sample_items(int n, bool truth) {
  std::vector<GalleryItem> items;
  const char* names[] = {"zero", "one", "two", "three", "four", "five", "six", "seven", "eight"};
  for (int i = 0; i < n; ++i) {
    GalleryItem it;
    it.image = imgtest::class_image(i % 9, i, 28, 20);
    it.truth = truth ? names[i % 9] : "";
    it.prediction = (i % 4 == 3) ? names[(i + 1) % 9] : names[i % 9];  // every fourth one wrong
    it.probability = 0.5 + 0.05 * (i % 10);
    items.push_back(std::move(it));
  }
  return items;
}

bool has_colour(const Image& img, int x0, int y0, int x1, int y1, uint8_t r, uint8_t g, uint8_t b) {
  for (int y = y0; y < y1; ++y)
    for (int x = x0; x < x1; ++x)
      if (img.at(y, x, 0) == r && img.at(y, x, 1) == g && img.at(y, x, 2) == b) return true;
  return false;
}

TEST(Gallery, SizeFollowsTheLayout) {
  const auto items = sample_items(12, true);
  const GalleryLayout g = gallery_layout(items);
  EXPECT_EQ(g.scale, 4);  // 112 / 28
  EXPECT_EQ(g.columns, 10);
  EXPECT_EQ(g.rows, 2);
  // Cells are as wide as the widest caption or the 80 px image.
  int widest = 80;
  for (const auto& it : items) {
    widest = std::max(widest, text_width(it.truth, kGalleryTextScale));
    widest = std::max(widest, text_width(it.prediction + " " + std::to_string(std::lround(100 * it.probability)) + "%",
                                         kGalleryTextScale));
  }
  EXPECT_GT(widest, 80);
  EXPECT_EQ(g.cell_width, widest);
  EXPECT_EQ(g.cell_height, 2 * kGalleryLineHeight + 4 + 112);
  const int legend = text_width("top: true label, below: prediction (wrong ones in red)", kGalleryTextScale);
  EXPECT_EQ(g.width, 2 * kGalleryMargin + std::max(10 * g.cell_width + 9 * kGalleryGap, legend));
  EXPECT_EQ(g.height, 2 * kGalleryMargin + g.header_height + 2 * g.cell_height + kGalleryGap);
  const Image img = render_gallery(items);
  EXPECT_EQ(img.width, g.width);
  EXPECT_EQ(img.height, g.height);
  EXPECT_EQ(img.channels, 3);

  GalleryOptions three;
  three.columns = 3;
  three.scale = 2;
  const GalleryLayout g3 = gallery_layout(sample_items(7, false), three);
  EXPECT_EQ(g3.rows, 3);
  EXPECT_EQ(g3.cell_height, kGalleryLineHeight + 4 + 56);
}

TEST(Gallery, ImagesAreScaledUpAndWrongOnesRed) {
  const auto items = sample_items(4, true);  // item 3 is wrong
  const GalleryLayout g = gallery_layout(items);
  const Image img = render_gallery(items);
  auto cell_x = [&](int i) { return kGalleryMargin + i * (g.cell_width + kGalleryGap); };
  const int top = kGalleryMargin + g.header_height;
  for (int i = 0; i < 4; ++i) {
    const int ix = cell_x(i) + (g.cell_width - 20 * g.scale) / 2, iy = top + g.image_top;
    // Every source pixel is a 4x4 block of the same gray.
    for (int y = 0; y < 28; y += 5)
      for (int x = 0; x < 20; x += 3) {
        const uint8_t v = items[i].image.at(y, x);
        EXPECT_EQ(img.at(iy + y * 4 + 3, ix + x * 4 + 2, 0), v);
        EXPECT_EQ(img.at(iy + y * 4, ix + x * 4 + 3, 1), v);
      }
    const bool red = has_colour(img, cell_x(i), top, cell_x(i) + g.cell_width, top + g.image_top, 210, 20, 20);
    EXPECT_EQ(red, i == 3) << "caption colour of item " << i;
    const bool dark = has_colour(img, cell_x(i), top, cell_x(i) + g.cell_width, top + kGalleryLineHeight, 20, 20, 20);
    EXPECT_TRUE(dark) << "true label of item " << i;
  }
  EXPECT_THROW(render_gallery({}), std::invalid_argument);
}

TEST(Gallery, WritesAPngOfThatSize) {
  TempDir dir("gallery");
  const auto items = sample_items(10, true);
  write_gallery(dir / "g.png", items, {0, 0, "a test gallery"});
  const Image back = read_image(dir / "g.png");
  const GalleryLayout g = gallery_layout(items, {0, 0, "a test gallery"});
  EXPECT_EQ(back.width, g.width);
  EXPECT_EQ(back.height, g.height);
  EXPECT_EQ(back.pixels, render_gallery(items, {0, 0, "a test gallery"}).pixels);
}

}  // namespace
}  // namespace lenet

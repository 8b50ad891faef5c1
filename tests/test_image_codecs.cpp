// The PNG and JPEG decoders (libpng, libjpeg-turbo) against pixels PIL decoded
// when the fixtures were made (tests/data/images/make_fixtures.py), EXIF
// orientation, and every way a PNG or JPEG can be refused.
#include <gtest/gtest.h>

#include <array>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "capture_util.h"
#include "io/exif.h"
#include "lenet/error.h"
#include "lenet/image.h"

namespace lenet {
namespace codecs_test {

namespace fs = std::filesystem;

const fs::path kImages = fs::path(LENET_TEST_DATA) / "images";

std::string bytes_of(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream os;
  os << in.rdbuf();
  if (!in) ADD_FAILURE() << "cannot read " << path;
  return os.str();
}

// A .pixels file: "PIXELS <height> <width> <channels>\n", then the samples.
Image read_pixels(const fs::path& path) {
  const std::string b = bytes_of(path);
  const size_t nl = b.find('\n');
  std::istringstream head(b.substr(0, nl));
  std::string magic;
  Image img;
  head >> magic >> img.height >> img.width >> img.channels;
  EXPECT_EQ(magic, "PIXELS") << path;
  img.pixels.assign(b.begin() + static_cast<std::ptrdiff_t>(nl + 1), b.end());
  EXPECT_EQ(img.pixels.size(), static_cast<size_t>(img.height) * img.width * img.channels) << path;
  return img;
}

void expect_same_image(const Image& got, const Image& want, const std::string& what) {
  ASSERT_EQ(got.height, want.height) << what;
  ASSERT_EQ(got.width, want.width) << what;
  ASSERT_EQ(got.channels, want.channels) << what;
  size_t differ = 0, first = 0;
  for (size_t i = got.pixels.size(); i-- > 0;)
    if (got.pixels[i] != want.pixels[i]) ++differ, first = i;
  EXPECT_EQ(differ, 0u) << what << ": " << differ << " of " << got.pixels.size() << " samples differ, first at "
                        << first << " (" << int(got.pixels[first]) << " vs " << int(want.pixels[first]) << ")";
}

// The problem a decode reports for `bytes` named `name` (FileError), "" if it decoded.
std::string refusal(const std::string& bytes, const std::string& name = "x.img") {
  try {
    decode_image(bytes, name);
  } catch (const FileError& e) {
    EXPECT_EQ(e.path(), name);
    return e.problem();
  }
  return "";
}

// ---- JPEG: pixel-identical to PIL ----

class JpegAsPil : public ::testing::TestWithParam<const char*> {};

TEST_P(JpegAsPil, DecodesToPilsPixels) {
  const std::string name = GetParam();
  const std::string jpg = bytes_of(kImages / "jpeg" / (name + ".jpg"));
  const Image want = read_pixels(kImages / "jpeg" / (name + ".pixels"));
  expect_same_image(decode_image(jpg, name + ".jpg"), want, name);
  const ImageInfo info = probe_image(jpg, name + ".jpg");
  EXPECT_EQ(info.format, "JPEG");
  EXPECT_EQ(info.height, want.height);
  EXPECT_EQ(info.width, want.width);
  EXPECT_EQ(info.channels, want.channels);
}

// Gray, the three chroma subsamplings, progressive (colour and gray), CMYK
// (Adobe, inverted; compared with PIL's .convert("RGB")), all of odd sizes
// but one, so that partial blocks and the upsampling's edges count.
INSTANTIATE_TEST_SUITE_P(Fixtures, JpegAsPil,
                         ::testing::Values("gray_47x33", "rgb420_53x37", "rgb422_31x29", "rgb444_24x32",
                                           "progressive420_35x41", "progressive_gray_17x9", "cmyk_16x20"));

TEST(Jpeg, AMissingEndOfImageMarkerAfterACompleteScanIsAccepted) {
  // PIL and OpenCV decode such a file; the pixels are the complete file's.
  const std::string jpg = bytes_of(kImages / "jpeg" / "rgb420_53x37.jpg");
  ASSERT_EQ(jpg.substr(jpg.size() - 2), "\xFF\xD9");
  expect_same_image(decode_image(jpg.substr(0, jpg.size() - 2), "no-eoi.jpg"), decode_image(jpg, "full.jpg"),
                    "without FF D9");
}

TEST(Jpeg, TruncatedFilesAreReportedAsTruncated) {
  for (const char* name : {"rgb420_53x37", "gray_47x33", "progressive420_35x41"}) {
    const std::string jpg = bytes_of(kImages / "jpeg" / (std::string(name) + ".jpg"));
    for (size_t keep : {size_t{4}, size_t{100}, jpg.size() / 2, jpg.size() * 9 / 10, jpg.size() - 40}) {
      SCOPED_TRACE(std::string(name) + " cut to " + std::to_string(keep) + " bytes");
      EXPECT_EQ(refusal(jpg.substr(0, keep), "cut.jpg"),
                "truncated JPEG: the file (" + std::to_string(keep) + " bytes) ends before its image data do");
    }
  }
  // A progressive file cut between two of its scans: the first scans alone
  // would decode to a blurred picture, which is not the file's.
  const std::string prog = bytes_of(kImages / "jpeg" / "progressive420_35x41.jpg");
  const size_t second_scan = prog.find("\xFF\xDA", prog.find("\xFF\xDA") + 2);
  ASSERT_NE(second_scan, std::string::npos);
  EXPECT_NE(refusal(prog.substr(0, second_scan), "scans.jpg").find("truncated JPEG"), std::string::npos);
}

TEST(Jpeg, CorruptAndUnsupportedFilesSayWhatLibjpegFound) {
  const std::string jpg = bytes_of(kImages / "jpeg" / "gray_47x33.jpg");
  // SOF0 → SOF3 (lossless, which libjpeg-turbo 2.1 does not decode).
  std::string lossless = jpg;
  const size_t sof = lossless.find("\xFF\xC0");
  ASSERT_NE(sof, std::string::npos);
  lossless[sof + 1] = '\xC3';
  EXPECT_EQ(refusal(lossless, "lossless.jpg"), "corrupt JPEG (Unsupported JPEG process: SOF type 0xc3)");
  // A frame of 0 x 47 pixels.
  std::string empty = jpg;
  empty[sof + 5] = 0, empty[sof + 6] = 0;
  EXPECT_EQ(refusal(empty, "empty.jpg"), "corrupt JPEG (Empty JPEG image (DNL not supported))");
  // A frame of 65000 x 65000 pixels: refused from the header, before any allocation.
  std::string huge = jpg;
  huge[sof + 5] = '\xFD', huge[sof + 6] = '\xE8', huge[sof + 7] = '\xFD', huge[sof + 8] = '\xE8';
  EXPECT_EQ(refusal(huge, "huge.jpg"),
            "absurd image size 65000x65000 (HxW); at most 16384 per side and 67108864 pixels");
  EXPECT_THROW(probe_image(huge, "huge.jpg"), FileError);
}

TEST(Jpeg, AFileOfThousandsOfScansIsRefused) {
  // The last scan of a progressive file repeated 600 times: libjpeg only warns
  // (a bogus progression) and would decode each of them.
  const std::string prog = bytes_of(kImages / "jpeg" / "progressive420_35x41.jpg");
  const size_t last_scan = prog.rfind("\xFF\xDA"), end = prog.rfind("\xFF\xD9");
  std::string many = prog.substr(0, last_scan);
  for (int i = 0; i < 600; ++i) many += prog.substr(last_scan, end - last_scan);
  many += "\xFF\xD9";
  EXPECT_EQ(refusal(many, "scans.jpg"), "corrupt JPEG: more than 500 scans");
}

TEST(Jpeg, CorruptDataDecodesSilentlyAsPilDoes) {
  // Flipped bits inside the entropy-coded data: libjpeg warns and decodes
  // something, as PIL and OpenCV then give; nothing is printed.
  std::string jpg = bytes_of(kImages / "jpeg" / "rgb444_24x32.jpg");
  const size_t data = jpg.rfind("\xFF\xDA") + 20;
  for (size_t i = data; i < jpg.size() - 10; i += 7) jpg[i] = static_cast<char>(jpg[i] ^ 0x5A);
  std::string problem = "not run";
  const std::string printed = test::captured_output([&] { problem = refusal(jpg, "noise.jpg"); });
  EXPECT_EQ(printed, "");
  // Either a picture or a clean refusal naming the file, never a crash or a print.
  if (!problem.empty()) {
    EXPECT_EQ(problem.rfind("corrupt JPEG", 0), 0u) << problem;
  }
}

// ---- EXIF orientation ----

TEST(ExifOrientation, AllEightDecodeUpright) {
  const Image upright = read_pixels(kImages / "exif" / "upright.pixels");
  ASSERT_EQ(upright.height, 16);
  ASSERT_EQ(upright.width, 24);
  for (int k = 1; k <= 8; ++k) {
    SCOPED_TRACE("orientation " + std::to_string(k));
    const std::string jpg = bytes_of(kImages / "exif" / ("orient" + std::to_string(k) + ".jpg"));
    EXPECT_EQ(jpeg_exif_orientation(jpg), k);
    const Image got = decode_image(jpg, "orient.jpg");
    // Exactly PIL's ImageOps.exif_transpose of its decode ...
    expect_same_image(got, read_pixels(kImages / "exif" / ("orient" + std::to_string(k) + ".pixels")), "vs PIL");
    // ... which is the upright picture, within JPEG's loss (quality 95, 4:4:4,
    // hard edges: about 3 levels on average; a wrong turn or mirror is off by 40 or more).
    double err = 0, mirrored = 0;
    const Image wrong = apply_orientation(got, 2);
    for (size_t i = 0; i < got.pixels.size(); ++i) {
      err += std::abs(got.pixels[i] - upright.pixels[i]);
      mirrored += std::abs(wrong.pixels[i] - upright.pixels[i]);
    }
    EXPECT_LT(err / got.pixels.size(), 4.0);
    EXPECT_GT(mirrored / got.pixels.size(), 20.0);
    const ImageInfo info = probe_image(jpg, "orient.jpg");
    EXPECT_EQ(info.height, 16);
    EXPECT_EQ(info.width, 24);
  }
}

TEST(ExifOrientation, EachTurnOnAHandMadeImage) {
  // 2 x 3:  1 2 3
  //         4 5 6
  Image s(2, 3, 1);
  s.pixels = {1, 2, 3, 4, 5, 6};
  const std::vector<std::vector<uint8_t>> want = {
      {1, 2, 3, 4, 5, 6},  // 1 as stored
      {3, 2, 1, 6, 5, 4},  // 2 mirror left-right
      {6, 5, 4, 3, 2, 1},  // 3 turn 180°
      {4, 5, 6, 1, 2, 3},  // 4 mirror top-bottom
      {1, 4, 2, 5, 3, 6},  // 5 transpose: 3 x 2
      {4, 1, 5, 2, 6, 3},  // 6 turn 90° clockwise
      {6, 3, 5, 2, 4, 1},  // 7 transverse
      {3, 6, 2, 5, 1, 4},  // 8 turn 90° anticlockwise
  };
  for (int k = 1; k <= 8; ++k) {
    const Image o = apply_orientation(s, k);
    EXPECT_EQ(o.pixels, want[k - 1]) << "orientation " << k;
    EXPECT_EQ(o.height, k >= 5 ? 3 : 2) << k;
    EXPECT_EQ(o.width, k >= 5 ? 2 : 3) << k;
  }
  // Channels move together.
  Image rgb(1, 2, 3);
  rgb.pixels = {1, 2, 3, 4, 5, 6};
  EXPECT_EQ(apply_orientation(rgb, 2).pixels, (std::vector<uint8_t>{4, 5, 6, 1, 2, 3}));
}

// An APP1 body: "Exif\0\0", a TIFF header and IFD0 with the given entries (tag, type, value).
std::string exif_app1(bool little, const std::vector<std::array<uint32_t, 3>>& entries, uint32_t ifd_offset = 8) {
  std::string t = little ? "II" : "MM";
  auto put16 = [&](uint32_t v) {
    if (little)
      t += static_cast<char>(v & 0xff), t += static_cast<char>(v >> 8);
    else
      t += static_cast<char>(v >> 8), t += static_cast<char>(v & 0xff);
  };
  auto put32 = [&](uint32_t v) {
    if (little)
      put16(v & 0xffff), put16(v >> 16);
    else
      put16(v >> 16), put16(v & 0xffff);
  };
  put16(42);
  put32(ifd_offset);
  put16(static_cast<uint32_t>(entries.size()));
  for (const auto& [tag, type, value] : entries) {
    put16(tag), put16(type), put32(1);
    if (type == 3)
      put16(value), put16(0);
    else
      put32(value);
  }
  put32(0);
  return std::string("Exif\0\0", 6) + t;
}

TEST(ExifOrientation, TheParserReadsBothByteOrdersAndIgnoresNonsense) {
  EXPECT_EQ(exif_orientation(exif_app1(true, {{0x010F, 2, 0}, {0x0112, 3, 6}})), 6);
  EXPECT_EQ(exif_orientation(exif_app1(false, {{0x0112, 3, 8}})), 8);
  EXPECT_EQ(exif_orientation(exif_app1(false, {{0x0112, 4, 3}})), 3);              // a LONG instead of a SHORT
  EXPECT_EQ(exif_orientation(exif_app1(true, {{0x0112, 3, 9}})), 1);               // out of range
  EXPECT_EQ(exif_orientation(exif_app1(true, {{0x0112, 2, 6}})), 1);               // ASCII
  EXPECT_EQ(exif_orientation(exif_app1(true, {{0x0100, 3, 6}})), 1);               // another tag
  EXPECT_EQ(exif_orientation(exif_app1(true, {{0x0112, 3, 6}}, 0xFFFFFFF0u)), 1);  // IFD0 past the end
  std::string many = exif_app1(true, {{0x010F, 2, 0}});
  many[6 + 8] = '\xFF', many[6 + 9] = '\xFF';  // 65535 entries announced, one present: read up to the end
  EXPECT_EQ(exif_orientation(many), 1);
  many = exif_app1(true, {{0x0112, 3, 6}});
  many[6 + 8] = '\xFF', many[6 + 9] = '\xFF';  // the same, the one present is the orientation
  EXPECT_EQ(exif_orientation(many), 6);
  const std::string good = exif_app1(true, {{0x0112, 3, 6}});
  for (size_t n = 0; n < good.size(); ++n) EXPECT_LE(exif_orientation(good.substr(0, n)), 8) << n;
  EXPECT_EQ(exif_orientation(good.substr(0, 6 + 8 + 2 + 11)), 1);                       // the entry cut short
  EXPECT_EQ(exif_orientation(std::string_view("Exif\0\0XX\0*\0\0\0\x08\0\0", 16)), 1);  // neither II nor MM
}

TEST(ExifOrientation, AHostileExifSegmentLeavesThePictureAsStored) {
  const std::string jpg = bytes_of(kImages / "exif" / "orient6.jpg");
  const size_t exif = jpg.find(std::string("Exif\0\0", 6));
  ASSERT_NE(exif, std::string::npos);
  const size_t tiff = exif + 6;
  // IFD0's offset pointed far outside the segment: the orientation is unknown, the picture stays as stored.
  std::string evil = jpg;
  evil[tiff + 4] = '\x7F', evil[tiff + 5] = '\x7F';
  EXPECT_EQ(jpeg_exif_orientation(evil), 1);
  const Image o = decode_image(evil, "evil.jpg");
  EXPECT_EQ(o.height, 24);  // stored turned: 24 rows of 16
  EXPECT_EQ(o.width, 16);
  // A segment length beyond the file.
  std::string longer = jpg;
  const size_t app1 = jpg.find("\xFF\xE1");
  longer[app1 + 2] = '\xFF';
  EXPECT_EQ(jpeg_exif_orientation(longer), 1);
}

// ---- PNG through libpng ----

class PngVariants : public ::testing::TestWithParam<const char*> {};

TEST_P(PngVariants, DecodeToTheirPixels) {
  const std::string name = GetParam();
  const std::string png = bytes_of(kImages / "png" / (name + ".png"));
  const Image want = read_pixels(kImages / "png" / (name + ".pixels"));
  expect_same_image(decode_image(png, name + ".png"), want, name);
  const ImageInfo info = probe_image(png, name + ".png");
  EXPECT_EQ(info.format, "PNG");
  EXPECT_EQ(info.channels, want.channels);
  EXPECT_EQ(info.height, want.height);
  EXPECT_EQ(info.width, want.width);
}

// Adam7, 16-bit RGB (high byte), 1-bit gray (0/255), a 4-bit palette with
// tRNS (RGBA), gray + alpha.
INSTANTIATE_TEST_SUITE_P(Fixtures, PngVariants,
                         ::testing::Values("adam7_rgb", "rgb16", "gray1", "palette4_trns", "gray_alpha"));

uint32_t crc_of(const std::string& typed) {
  // CRC-32 as PNG defines it (the table-less form).
  uint32_t c = 0xFFFFFFFFu;
  for (unsigned char b : typed) {
    c ^= b;
    for (int k = 0; k < 8; ++k) c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
  }
  return c ^ 0xFFFFFFFFu;
}

// The chunk at `at` with its CRC recomputed.
void fix_crc(std::string& png, size_t at) {
  const uint32_t length = static_cast<uint8_t>(png[at]) << 24 | static_cast<uint8_t>(png[at + 1]) << 16 |
                          static_cast<uint8_t>(png[at + 2]) << 8 | static_cast<uint8_t>(png[at + 3]);
  const uint32_t crc = crc_of(png.substr(at + 4, 4 + length));
  for (int i = 0; i < 4; ++i) png[at + 8 + length + i] = static_cast<char>(crc >> (24 - 8 * i));
}

TEST(Png, EveryRefusalNamesTheProblem) {
  const std::string png = bytes_of(kImages / "png" / "adam7_rgb.png");
  // Truncated anywhere: in the signature's wake, the header, the data.
  for (size_t keep : {size_t{8}, size_t{12}, size_t{30}, png.size() / 2, png.size() - 20})
    EXPECT_EQ(refusal(png.substr(0, keep), "cut.png"),
              "truncated PNG: the file (" + std::to_string(keep) + " bytes) ends before its image data do")
        << keep;
  // A damaged header: the CRC says so.
  std::string bad_crc = png;
  bad_crc[16 + 3] = 14;  // width 13 → 14, CRC unchanged
  EXPECT_EQ(refusal(bad_crc, "crc.png"), "corrupt PNG (IHDR: CRC error)");
  // A header of absurd size with a valid CRC: our limits, before allocation.
  std::string huge = png;
  huge[16] = 0, huge[17] = 1, huge[18] = '\x86', huge[19] = '\xA0';  // width 100000
  fix_crc(huge, 8);
  EXPECT_EQ(refusal(huge, "huge.png"), "absurd image size 11x100000 (HxW); at most 16384 per side and 67108864 pixels");
  EXPECT_THROW(probe_image(huge, "huge.png"), FileError);
  // Invalid header values: bit depth 3.
  std::string depth = png;
  depth[24] = 3;
  fix_crc(depth, 8);
  EXPECT_EQ(refusal(depth, "depth.png").rfind("corrupt PNG (", 0), 0u);
  // Image data that are not zlib.
  std::string garbage = png;
  const size_t idat = png.find("IDAT") - 4;
  for (size_t i = idat + 8; i < idat + 8 + 20; ++i) garbage[i] = '\x55';
  fix_crc(garbage, idat);
  EXPECT_EQ(refusal(garbage, "zlib.png").rfind("corrupt PNG (", 0), 0u);
  // No IDAT at all.
  const size_t iend = png.find("IEND") - 4;
  EXPECT_EQ(refusal(png.substr(0, idat) + png.substr(iend), "noidat.png").rfind("corrupt PNG (", 0), 0u);
  // Nothing was printed for any of them.
  EXPECT_EQ(test::captured_output([&] {
              (void)refusal(bad_crc, "crc.png");
              (void)refusal(garbage, "zlib.png");
              (void)refusal(png.substr(0, png.size() / 2), "cut.png");
            }),
            "");
}

TEST(Png, AnAncillaryChunkWithABadCrcIsDroppedSilently) {
  // libpng's default, and OpenCV's: a damaged tEXt is skipped (here: not even read).
  const std::string png = bytes_of(kImages / "png" / "gray1.png");
  std::string text = std::string("\0\0\0\x05tEXtab\0cd", 13) + "\x01\x02\x03\x04";  // wrong CRC
  const std::string with_text = png.substr(0, 33) + text + png.substr(33);
  std::string printed;
  Image img;
  printed = test::captured_output([&] { img = decode_image(with_text, "text.png"); });
  EXPECT_EQ(printed, "");
  expect_same_image(img, read_pixels(kImages / "png" / "gray1.pixels"), "with a tEXt chunk");
}

}  // namespace codecs_test
}  // namespace lenet

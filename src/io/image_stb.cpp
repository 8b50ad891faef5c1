// BMP and binary PGM/PPM through stb_image (its implementation is compiled in
// io/stb_image_impl.cpp). They stay on stb: both are uncompressed (BMP's RLE
// variants stb refuses), so the checks below — the pixel data present, the
// PNM header numbers in range — leave stb nothing to get wrong, and no
// maintained Debian library reads both. A build without libpng or libjpeg
// (LENET_HAVE_LIBPNG / LENET_HAVE_LIBJPEG unset: the ARM64 cross build) also
// decodes PNG or JPEG here, with the checks for stb 2.27's bugs in those.
#include <algorithm>
#include <cctype>
#include <cstdint>
#include <cstdlib>

#include "io/image_codecs.h"
#include "io/stb_alloc.h"
#include "lenet/error.h"

// stb's declarations only; io/stb_image_impl.cpp compiles the implementations.
#define STBI_NO_STDIO
#include <stb_image.h>

#if !LENET_HAVE_LIBJPEG
#include "io/exif.h"
#endif

namespace lenet::codecs {

namespace {

[[noreturn]] void fail(const std::string& name, const std::string& problem) { throw FileError(name, problem); }

uint32_t le16(std::string_view b, size_t at) {
  return static_cast<uint8_t>(b[at]) | static_cast<uint32_t>(static_cast<uint8_t>(b[at + 1])) << 8;
}
uint32_t le32(std::string_view b, size_t at) { return le16(b, at) | le16(b, at + 2) << 16; }

// stb reads missing BMP pixel rows as zeros; check that the file holds them.
void check_bmp_length(std::string_view b, const std::string& name) {
  if (b.size() < 26) fail(name, "truncated BMP: " + std::to_string(b.size()) + " bytes, shorter than its header");
  const uint64_t offset = le32(b, 10), header = le32(b, 14);
  int64_t width = 0, height = 0;
  uint32_t bpp = 0, compression = 0;
  if (header == 12) {
    width = le16(b, 18), height = le16(b, 20), bpp = le16(b, 24);
  } else {
    if (b.size() < 34) fail(name, "truncated BMP: " + std::to_string(b.size()) + " bytes, shorter than its header");
    width = static_cast<int32_t>(le32(b, 18)), height = static_cast<int32_t>(le32(b, 22));
    bpp = le16(b, 28), compression = le32(b, 30);
  }
  if (compression != 0 && compression != 3) return;  // RLE and others: stb refuses them itself
  const uint64_t stride = ((static_cast<uint64_t>(std::llabs(width)) * bpp + 31) / 32) * 4;
  const uint64_t needed = offset + stride * static_cast<uint64_t>(std::llabs(height));
  if (needed > b.size())
    fail(name, "truncated BMP: " + std::to_string(b.size()) + " bytes, its header needs " + std::to_string(needed));
}

// A binary PNM header as stb_image reads it: "P5" or "P6", then width, height
// and maxval, separated by whitespace and # comments, then one whitespace byte.
// stb_image 2.27 accumulates each number in an int without checking for
// overflow (found by fuzz/fuzz_image), so numbers are checked here first.
struct PnmHeader {
  uint64_t width = 0, height = 0, maxval = 0;
  size_t data = 0;  // offset of the first sample
};
PnmHeader parse_pnm_header(std::string_view b, const std::string& name) {
  constexpr uint64_t kMaxNumber = uint64_t{1} << 24;  // far above any valid size or maxval
  size_t at = 2;
  auto is_space = [](char c) { return c == ' ' || (c >= '\t' && c <= '\r'); };
  auto skip = [&] {
    for (;;) {
      while (at < b.size() && is_space(b[at])) ++at;
      if (at >= b.size() || b[at] != '#') break;
      while (at < b.size() && b[at] != '\n' && b[at] != '\r') ++at;
    }
  };
  auto number = [&](const char* what) {
    skip();
    if (at >= b.size() || !std::isdigit(static_cast<unsigned char>(b[at]))) fail(name, "corrupt PNM header");
    uint64_t v = 0;
    while (at < b.size() && std::isdigit(static_cast<unsigned char>(b[at]))) {
      v = v * 10 + static_cast<uint64_t>(b[at++] - '0');
      if (v > kMaxNumber) fail(name, std::string("corrupt PNM header: absurd ") + what);
    }
    return v;
  };
  PnmHeader h;
  h.width = number("width");
  h.height = number("height");
  h.maxval = number("maxval");
  h.data = at + 1;
  return h;
}

// stb reads missing PNM samples as zeros; check that the file holds them.
void check_pnm_length(std::string_view b, const std::string& name) {
  const PnmHeader h = parse_pnm_header(b, name);
  const uint64_t channels = b[1] == '6' ? 3 : 1, bytes_per_sample = h.maxval > 255 ? 2 : 1;
  const uint64_t needed = h.data + h.width * h.height * channels * bytes_per_sample;
  if (needed > b.size())
    fail(name, "truncated PNM: " + std::to_string(b.size()) + " bytes, its header needs " + std::to_string(needed));
}

#if !LENET_HAVE_LIBJPEG
// A JPEG ends with an end-of-image marker (FF D9) after its last scan (FF DA);
// marker bytes cannot occur inside entropy-coded data (FF is stuffed as FF 00).
void check_jpeg_end(std::string_view b, const std::string& name) {
  const size_t last_scan = b.rfind("\xFF\xDA");
  const size_t last_end = b.rfind("\xFF\xD9");
  if (last_scan == std::string_view::npos) fail(name, "corrupt JPEG: no image data (start-of-scan marker)");
  if (last_end == std::string_view::npos || last_end < last_scan)
    fail(name, "truncated JPEG: no end-of-image marker after the image data");
}

// stb_image 2.27 (Debian 12's) builds a JPEG Huffman table without checking
// that its code counts add up to at most 256, and writes past the table when
// they do (found by fuzz/fuzz_image; upstream checks since 2.28). Walk the
// segments as stb does and refuse such a table before stb sees it. Bytes past
// the end read as 0, as stb reads them; a table may run past its segment.
void check_jpeg_huffman_tables(std::string_view b, const std::string& name) {
  auto byte = [&](size_t at) -> uint32_t { return at < b.size() ? static_cast<uint8_t>(b[at]) : 0; };
  size_t at = 2;  // after the start-of-image marker
  while (at + 1 < b.size()) {
    const uint32_t marker = byte(at + 1);
    // Entropy-coded data, fill bytes, stuffed zeros, restart markers: no segment to skip.
    if (byte(at) != 0xFF || marker == 0xFF || marker == 0x00 || marker == 0x01 || (marker >= 0xD0 && marker <= 0xD7)) {
      at += byte(at) == 0xFF && marker != 0xFF ? 2 : 1;
      continue;
    }
    if (marker == 0xD9) return;  // end of image
    const size_t length = byte(at + 2) << 8 | byte(at + 3);
    if (marker == 0xC4) {  // define Huffman tables: 1 byte class/id, 16 counts, then the symbols
      int64_t left = static_cast<int64_t>(length) - 2;
      size_t table = at + 4;
      while (left > 0) {
        uint32_t codes = 0;
        for (size_t i = 1; i <= 16; ++i) codes += byte(table + i);
        if (codes > 256)
          fail(name, "corrupt JPEG: a Huffman table declares " + std::to_string(codes) + " codes (at most 256)");
        table += 17 + codes;
        left -= 17 + static_cast<int64_t>(codes);
      }
    }
    at += 2 + length;
  }
}

#endif  // !LENET_HAVE_LIBJPEG

const stbi_uc* as_stb(std::string_view b) { return reinterpret_cast<const stbi_uc*>(b.data()); }

}  // namespace

ImageInfo probe_stb(std::string_view bytes, const std::string& name, const std::string& format) {
  // Before stb parses the header: the checks for what stb 2.27 gets wrong.
#if !LENET_HAVE_LIBJPEG
  if (format == "JPEG") check_jpeg_huffman_tables(bytes, name);
#endif
  if (format == "PNM") parse_pnm_header(bytes, name);
  ImageInfo info;
  info.format = format;
  if (!stbi_info_from_memory(as_stb(bytes), static_cast<int>(bytes.size()), &info.width, &info.height, &info.channels))
    fail(name, "corrupt " + format + " header (" + std::string(stbi_failure_reason()) + ")");
  check_image_size(info.height, info.width, name);
#if !LENET_HAVE_LIBJPEG
  if (format == "JPEG" && orientation_swaps_sides(jpeg_exif_orientation(bytes))) std::swap(info.height, info.width);
#endif
  return info;
}

Image decode_stb(std::string_view bytes, const std::string& name, const std::string& format) {
  const ImageInfo info = probe_stb(bytes, name, format);
  if (format == "BMP") check_bmp_length(bytes, name);
  if (format == "PNM") check_pnm_length(bytes, name);
#if !LENET_HAVE_LIBJPEG
  if (format == "JPEG") check_jpeg_end(bytes, name);
#endif
  int w = 0, h = 0, c = 0;
  // No single buffer of a genuine image exceeds twice its decoded size at 16
  // bits and 4 channels, or twice the file (stb's copy of the PNG data): a
  // PNG decompression bomb is refused.
  const size_t decoded = static_cast<size_t>(info.width) * static_cast<size_t>(info.height) * 4 * 2;
  stb::set_allocation_limit(2 * std::max(decoded, bytes.size()) + (size_t{1} << 20));
  stbi_uc* data = stbi_load_from_memory(as_stb(bytes), static_cast<int>(bytes.size()), &w, &h, &c, 0);
  const bool capped = stb::allocation_limit_hit();
  stb::set_allocation_limit(SIZE_MAX);
  if (!data && capped)
    fail(name, "corrupt " + format + ": its data inflate to far more than its " + size_text(info.height, info.width) +
                   " pixels need (a decompression bomb?)");
  if (!data) {
    const char* why = stbi_failure_reason();
    fail(name, "corrupt or truncated " + format + " data" + (why && *why ? std::string(" (") + why + ")" : ""));
  }
  Image image;
  image.height = h, image.width = w, image.channels = c;
  image.pixels.assign(data, data + static_cast<size_t>(w) * h * c);
  stbi_image_free(data);
#if !LENET_HAVE_LIBJPEG
  if (format == "JPEG") return apply_orientation(image, jpeg_exif_orientation(bytes));
#endif
  return image;
}

}  // namespace lenet::codecs

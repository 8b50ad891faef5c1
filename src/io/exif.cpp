// EXIF orientation, read by hand: two tags' worth of TIFF is far less code than
// a library, and every read below is checked against the segment's bytes.
#include "io/exif.h"

#include <cstdint>
#include <cstring>

namespace lenet {

namespace {

constexpr uint32_t kOrientationTag = 0x0112;
constexpr uint32_t kTypeShort = 3, kTypeLong = 4;

}  // namespace

int exif_orientation(std::string_view app1) {
  if (app1.size() < 6 + 8 || app1.substr(0, 6) != std::string_view("Exif\0\0", 6)) return 1;
  const std::string_view tiff = app1.substr(6);
  bool little = false;
  if (tiff.substr(0, 2) == "II")
    little = true;
  else if (tiff.substr(0, 2) != "MM")
    return 1;
  auto byte = [&](uint64_t at) -> uint32_t { return static_cast<uint8_t>(tiff[static_cast<size_t>(at)]); };
  // Callers check that [at, at + 2) or [at, at + 4) lies inside `tiff`.
  auto u16 = [&](uint64_t at) { return little ? byte(at) | byte(at + 1) << 8 : byte(at) << 8 | byte(at + 1); };
  auto u32 = [&](uint64_t at) { return little ? u16(at) | u16(at + 2) << 16 : u16(at) << 16 | u16(at + 2); };
  if (u16(2) != 42) return 1;
  const uint64_t ifd0 = u32(4);
  if (ifd0 + 2 > tiff.size()) return 1;
  const uint32_t entries = u16(ifd0);
  for (uint32_t i = 0; i < entries; ++i) {
    const uint64_t entry = ifd0 + 2 + uint64_t{12} * i;  // tag, type, count, value (a short or long fits inside)
    if (entry + 12 > tiff.size()) return 1;
    if (u16(entry) != kOrientationTag) continue;
    const uint32_t type = u16(entry + 2);
    const uint32_t value = type == kTypeShort ? u16(entry + 8) : type == kTypeLong ? u32(entry + 8) : 0;
    return value >= 1 && value <= 8 ? static_cast<int>(value) : 1;
  }
  return 1;
}

int jpeg_exif_orientation(std::string_view jpeg) {
  auto byte = [&](size_t at) -> uint32_t { return static_cast<uint8_t>(jpeg[at]); };
  if (jpeg.size() < 4 || byte(0) != 0xFF || byte(1) != 0xD8) return 1;
  size_t at = 2;  // after the start-of-image marker: segments up to the first scan
  while (at + 4 <= jpeg.size()) {
    if (byte(at) != 0xFF) return 1;
    const uint32_t marker = byte(at + 1);
    if (marker == 0xFF) {  // fill byte
      ++at;
      continue;
    }
    if (marker == 0xDA || marker == 0xD9) return 1;              // start of scan, end of image: no EXIF came first
    if (marker == 0x01 || (marker >= 0xD0 && marker <= 0xD7)) {  // markers without a segment
      at += 2;
      continue;
    }
    const size_t length = byte(at + 2) << 8 | byte(at + 3);  // counts itself, not the marker
    if (length < 2 || length > jpeg.size() - at - 2) return 1;
    const std::string_view body = jpeg.substr(at + 4, length - 2);
    if (marker == 0xE1 && body.substr(0, 6) == std::string_view("Exif\0\0", 6)) return exif_orientation(body);
    at += 2 + length;
  }
  return 1;
}

Image apply_orientation(const Image& stored, int orientation) {
  if (orientation <= 1 || orientation > 8) return stored;
  const int64_t h = stored.height, w = stored.width;
  // Output pixel (y, x) comes from stored pixel index base + y·dy + x·dx.
  int64_t base = 0, dy = w, dx = 1;
  switch (orientation) {
    case 2: base = w - 1, dy = w, dx = -1; break;                 // mirror left-right
    case 3: base = (h - 1) * w + w - 1, dy = -w, dx = -1; break;  // turn 180°
    case 4: base = (h - 1) * w, dy = -w, dx = 1; break;           // mirror top-bottom
    case 5: base = 0, dy = 1, dx = w; break;                      // transpose
    case 6: base = (h - 1) * w, dy = 1, dx = -w; break;           // turn 90° clockwise
    case 7: base = (h - 1) * w + w - 1, dy = -1, dx = -w; break;  // transverse
    default: base = w - 1, dy = -1, dx = w; break;                // 8: turn 90° anticlockwise
  }
  const bool swap = orientation_swaps_sides(orientation);
  Image out(swap ? stored.width : stored.height, swap ? stored.height : stored.width, stored.channels);
  const size_t c = static_cast<size_t>(stored.channels);
  uint8_t* o = out.pixels.data();
  for (int64_t y = 0; y < out.height; ++y)
    for (int64_t x = 0; x < out.width; ++x, o += c)
      std::memcpy(o, &stored.pixels[static_cast<size_t>(base + y * dy + x * dx) * c], c);
  return out;
}

}  // namespace lenet

// PNG decoding through libpng. Palette, low-bit gray and tRNS transparency
// are expanded to 8-bit gray/RGB (+ alpha), 16-bit samples keep their high
// byte (as stb_image and PIL's RGB modes do), Adam7 is de-interlaced; gamma
// and colour profiles are ignored, as PIL and OpenCV ignore them.
//
// libpng reports errors through a callback that must not return; it longjmps
// back into the small functions below that call libpng (setjmp inside, no C++
// object with a destructor in them), which return false, and the C++ code
// around them throws the FileError. Warnings are not printed.
//
// Cost: the pixels are checked against the limits from the header before
// anything is allocated, and libpng inflates the image data row by row. After
// the last row libpng would go on inflating whatever the file holds beyond it
// (to warn "too much image data"), through a 1 KB buffer but for as long as
// the data last: a small file of compressed zeros (a decompression bomb) could
// take minutes. read_bytes stops it there: nothing past the pixels is read.

#include <algorithm>
#include <csetjmp>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <vector>

#include "io/image_codecs.h"
#include "lenet/error.h"

#if LENET_HAVE_LIBPNG  // else io/image_stb.cpp decodes PNG
#include <png.h>

namespace lenet::codecs {

namespace {

struct PngState {
  const uint8_t* data = nullptr;
  size_t size = 0, at = 0;
  bool reading_rows = false, interlaced = false;
  png_uint_32 height = 0;
  bool past_the_pixels = false;  // every row was decoded when libpng asked for more
  bool truncated = false;
  char message[256] = {};
};

void on_error(png_structp png, png_const_charp message) {
  auto* s = static_cast<PngState*>(png_get_error_ptr(png));
  std::snprintf(s->message, sizeof s->message, "%s", message ? message : "unknown error");
  png_longjmp(png, 1);
}

void on_warning(png_structp, png_const_charp) {}

void read_bytes(png_structp png, png_bytep out, size_t count) {
  auto* s = static_cast<PngState*>(png_get_io_ptr(png));
  // Past the last row of the last pass (Adam7: pass 7 is past the seventh).
  if (s->reading_rows &&
      (s->interlaced ? png_get_current_pass_number(png) >= 7 : png_get_current_row_number(png) >= s->height)) {
    s->past_the_pixels = true;
    png_error(png, "past the pixels");
  }
  if (count > s->size - s->at) {
    s->truncated = true;
    png_error(png, "truncated");
  }
  std::memcpy(out, s->data + s->at, count);
  s->at += count;
}

// The calls into libpng; each returns false after an error (s.message, s.truncated).
bool read_header(png_structp png, png_infop info, PngState& s) {
  if (setjmp(png_jmpbuf(png))) return false;
  png_set_read_fn(png, &s, read_bytes);
  // Our limits (check_image_size) say no with our message; libpng's defaults
  // (a million pixels a side) would say it first.
  png_set_user_limits(png, 0x7fffffff, 0x7fffffff);
  // Every chunk but IHDR, PLTE, tRNS, IDAT and IEND (a negative count) is
  // skipped unread: no text is inflated, no colour profile parsed.
  png_set_keep_unknown_chunks(png, PNG_HANDLE_CHUNK_NEVER, nullptr, -1);
  png_read_info(png, info);
  return true;
}

bool start_rows(png_structp png, png_infop info) {
  if (setjmp(png_jmpbuf(png))) return false;
  png_set_expand(png);
  if (png_get_bit_depth(png, info) == 16) png_set_strip_16(png);
  png_set_interlace_handling(png);
  png_read_update_info(png, info);
  return true;
}

bool read_rows(png_structp png, png_bytepp rows, PngState& s) {
  if (setjmp(png_jmpbuf(png))) return s.past_the_pixels;
  s.reading_rows = true;
  png_read_image(png, rows);
  return true;
}

// libpng's two structures, freed however the Reader's constructor ends.
struct PngHandles {
  png_structp png = nullptr;
  png_infop info = nullptr;
  PngHandles() = default;
  PngHandles(const PngHandles&) = delete;
  PngHandles& operator=(const PngHandles&) = delete;
  ~PngHandles() {
    if (png) png_destroy_read_struct(&png, info ? &info : nullptr, nullptr);
  }
};

class Reader {
 public:
  Reader(std::string_view bytes, const std::string& name) : name_(name) {
    s_.data = reinterpret_cast<const uint8_t*>(bytes.data());
    s_.size = bytes.size();
    handles_.png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &s_, on_error, on_warning);
    if (handles_.png) handles_.info = png_create_info_struct(handles_.png);
    if (!handles_.png || !handles_.info) throw FileError(name, "not enough memory to start libpng");
    png_ = handles_.png, info_ = handles_.info;
    if (!read_header(png_, info_, s_)) fail_here();
    height_ = static_cast<int>(std::min<png_uint_32>(png_get_image_height(png_, info_), 0x7fffffff));
    width_ = static_cast<int>(std::min<png_uint_32>(png_get_image_width(png_, info_), 0x7fffffff));
    check_image_size(height_, width_, name);
    const int type = png_get_color_type(png_, info_);
    const bool trns = png_get_valid(png_, info_, PNG_INFO_tRNS) != 0;
    channels_ = (type & PNG_COLOR_MASK_COLOR ? 3 : 1) + (type & PNG_COLOR_MASK_ALPHA || trns ? 1 : 0);
  }

  ImageInfo info() const { return {height_, width_, channels_, "PNG"}; }

  Image pixels() {
    if (!start_rows(png_, info_)) fail_here();
    const size_t stride = static_cast<size_t>(width_) * static_cast<size_t>(channels_);
    if (png_get_rowbytes(png_, info_) != stride)  // the expansions give what the header promised
      throw FileError(name_, "corrupt PNG: rows of " + std::to_string(png_get_rowbytes(png_, info_)) +
                                 " bytes, expected " + std::to_string(stride));
    Image image(height_, width_, channels_);
    std::vector<png_bytep> rows(static_cast<size_t>(height_));
    for (size_t y = 0; y < rows.size(); ++y) rows[y] = image.pixels.data() + y * stride;
    s_.interlaced = png_get_interlace_type(png_, info_) != PNG_INTERLACE_NONE;
    s_.height = png_get_image_height(png_, info_);
    if (!read_rows(png_, rows.data(), s_)) fail_here();
    return image;
  }

 private:
  [[noreturn]] void fail_here() {
    if (s_.truncated)
      throw FileError(name_,
                      "truncated PNG: the file (" + std::to_string(s_.size) + " bytes) ends before its image data do");
    throw FileError(name_, std::string("corrupt PNG (") + s_.message + ")");
  }

  std::string name_;
  PngState s_;
  PngHandles handles_;
  png_structp png_ = nullptr;
  png_infop info_ = nullptr;
  int height_ = 0, width_ = 0, channels_ = 0;
};

}  // namespace

ImageInfo probe_png(std::string_view bytes, const std::string& name) { return Reader(bytes, name).info(); }

Image decode_png(std::string_view bytes, const std::string& name) { return Reader(bytes, name).pixels(); }

}  // namespace lenet::codecs

#endif  // LENET_HAVE_LIBPNG

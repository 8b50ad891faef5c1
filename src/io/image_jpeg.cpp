// JPEG decoding through libjpeg-turbo at its defaults (JDCT_ISLOW, fancy
// upsampling, block smoothing): the settings PIL and OpenCV decode with, so a
// model trained here sees the pixels they would give it (tests/data/images/).
//
// libjpeg reports errors through a callback that must not return. Throwing a
// C++ exception through its C frames is undefined, so the callback longjmps
// back into the small functions below that call libjpeg (setjmp inside; no
// C++ object with a destructor lives in them), which return false; the C++
// code around them throws the FileError. Warnings (corrupt but decodable data)
// are not printed: PIL and OpenCV decode such files too.
#include <csetjmp>
#include <cstdint>
#include <cstdio>  // jpeglib.h uses FILE and size_t without including them
#include <cstring>
#include <vector>

#include "io/exif.h"
#include "io/image_codecs.h"
#include "lenet/error.h"

#if LENET_HAVE_LIBJPEG  // else io/image_stb.cpp decodes JPEG
// clang-format off
#include <jpeglib.h>
#include <jerror.h>
// clang-format on

namespace lenet::codecs {

namespace {

// Progressive files take one pass over the picture per scan; libjpeg-turbo's
// own TurboJPEG API stops at 500 (TJFLAG_LIMITSCANS) against files built to
// take minutes. Real encoders write at most a few dozen.
constexpr int kMaxScans = 500;

struct JpegState {
  jpeg_decompress_struct cinfo{};  // zeros: jpeg_destroy_decompress is safe before jpeg_create_decompress
  jpeg_error_mgr errors;
  jpeg_source_mgr source;
  jpeg_progress_mgr progress;
  std::jmp_buf jump;
  const JOCTET* data = nullptr;
  size_t size = 0;
  // The data ran out (an end-of-image marker was made up) during a single-scan
  // decode; harmless if the scan was complete, truncation if the decoder then
  // still needed data.
  bool ran_out = false;
  bool single_scan_rows = false;  // decoding the rows of a single-scan file
  bool rows_done = false;         // every scanline read: a missing end-of-image marker is then harmless
  bool truncated = false;
  bool too_many_scans = false;
  char message[JMSG_LENGTH_MAX] = {};

  JpegState() = default;
  JpegState(const JpegState&) = delete;
  JpegState& operator=(const JpegState&) = delete;
  ~JpegState() { jpeg_destroy_decompress(&cinfo); }  // however the Decompressor's constructor ends
};

JpegState& state_of(j_common_ptr c) { return *static_cast<JpegState*>(c->client_data); }
JpegState& state_of(j_decompress_ptr c) { return *static_cast<JpegState*>(c->client_data); }

[[noreturn]] void give_up(JpegState& s) { std::longjmp(s.jump, 1); }

void on_error(j_common_ptr c) {
  JpegState& s = state_of(c);
  (*c->err->format_message)(c, s.message);
  give_up(s);
}

void on_message(j_common_ptr c, int level) {
  if (level >= 0) return;  // trace messages
  JpegState& s = state_of(c);
  ++c->err->num_warnings;
  // The entropy decoder needed data past the made-up end of the file.
  if (s.ran_out && c->err->msg_code == JWRN_HIT_MARKER) {
    s.truncated = true;
    give_up(s);
  }
}

void on_output(j_common_ptr) {}

void init_source(j_decompress_ptr) {}
void term_source(j_decompress_ptr) {}

boolean fill_input_buffer(j_decompress_ptr c) {
  JpegState& s = state_of(c);
  if (!s.rows_done) {
    // The header, or a multi-scan (progressive) file, which libjpeg reads
    // whole before the first row: nothing to decode without the rest.
    if (!s.single_scan_rows) {
      s.truncated = true;
      give_up(s);
    }
    // The rows of a single scan: libjpeg reads a little ahead of what it
    // needs, and a scan may end without the end-of-image marker (PIL and
    // OpenCV accept that). on_message tells whether the scan really ended.
    s.ran_out = true;
  }
  static const JOCTET kEndOfImage[2] = {0xFF, JPEG_EOI};
  s.source.next_input_byte = kEndOfImage;
  s.source.bytes_in_buffer = 2;
  return TRUE;
}

void skip_input_data(j_decompress_ptr c, long count) {
  JpegState& s = state_of(c);
  if (count <= 0) return;
  while (static_cast<size_t>(count) > s.source.bytes_in_buffer) {
    count -= static_cast<long>(s.source.bytes_in_buffer);
    fill_input_buffer(c);
  }
  s.source.next_input_byte += count;
  s.source.bytes_in_buffer -= static_cast<size_t>(count);
}

void on_progress(j_common_ptr c) {
  JpegState& s = state_of(c);
  if (s.cinfo.input_scan_number > kMaxScans) {
    s.too_many_scans = true;
    give_up(s);
  }
}

// The calls into libjpeg. Each returns false after an error (s.message,
// s.truncated, s.too_many_scans say which).
bool read_header(JpegState& s) {
  if (setjmp(s.jump)) return false;
  s.cinfo.err = jpeg_std_error(&s.errors);
  s.errors.error_exit = on_error;
  s.errors.emit_message = on_message;
  s.errors.output_message = on_output;
  s.cinfo.client_data = &s;
  jpeg_create_decompress(&s.cinfo);
  s.source.init_source = init_source;
  s.source.fill_input_buffer = fill_input_buffer;
  s.source.skip_input_data = skip_input_data;
  s.source.resync_to_restart = jpeg_resync_to_restart;
  s.source.term_source = term_source;
  s.source.next_input_byte = s.data;
  s.source.bytes_in_buffer = s.size;
  s.cinfo.src = &s.source;
  s.progress.progress_monitor = on_progress;
  s.cinfo.progress = &s.progress;
  jpeg_read_header(&s.cinfo, TRUE);
  return true;
}

// Decodes into `out`, output_components bytes per pixel, row after row.
bool read_pixels(JpegState& s, uint8_t* out) {
  if (setjmp(s.jump)) return false;
  s.single_scan_rows = !jpeg_has_multiple_scans(&s.cinfo);
  jpeg_start_decompress(&s.cinfo);
  const size_t stride = static_cast<size_t>(s.cinfo.output_width) * static_cast<size_t>(s.cinfo.output_components);
  while (s.cinfo.output_scanline < s.cinfo.output_height) {
    JSAMPROW row = out + static_cast<size_t>(s.cinfo.output_scanline) * stride;
    jpeg_read_scanlines(&s.cinfo, &row, 1);
  }
  s.rows_done = true;
  jpeg_finish_decompress(&s.cinfo);
  return true;
}

class Decompressor {
 public:
  Decompressor(std::string_view bytes, const std::string& name) : name_(name) {
    s_.data = reinterpret_cast<const JOCTET*>(bytes.data());
    s_.size = bytes.size();
    if (!read_header(s_)) fail_here();
  }

  JpegState& state() { return s_; }
  [[noreturn]] void fail_here() {
    if (s_.truncated)
      throw FileError(name_,
                      "truncated JPEG: the file (" + std::to_string(s_.size) + " bytes) ends before its image data do");
    if (s_.too_many_scans) throw FileError(name_, "corrupt JPEG: more than " + std::to_string(kMaxScans) + " scans");
    throw FileError(name_, std::string("corrupt JPEG (") + s_.message + ")");
  }

 private:
  std::string name_;
  JpegState s_;
};

// Channels of the decoded picture: gray 1, everything else RGB 3 (CMYK is converted).
int channels_of(const jpeg_decompress_struct& c, const std::string& name) {
  switch (c.jpeg_color_space) {
    case JCS_GRAYSCALE: return 1;
    case JCS_YCbCr:
    case JCS_RGB:
    case JCS_CMYK:
    case JCS_YCCK: return 3;
    default:
      throw FileError(name, "unsupported JPEG: " + std::to_string(c.num_components) +
                                " colour components of an unknown colour space");
  }
}

// PIL's CMYK → RGB (Convert.c cmyk2rgb): R = (255 − K) − (255 − K)·C/255,
// rounded as its MULDIV255. Photoshop (an Adobe marker) stores the
// samples inverted, which PIL undoes on reading ("CMYK;I").
void cmyk_to_rgb(const std::vector<uint8_t>& cmyk, bool inverted, uint8_t* rgb) {
  const size_t n = cmyk.size() / 4;
  for (size_t i = 0; i < n; ++i) {
    const uint8_t* p = &cmyk[i * 4];
    const int k = inverted ? 255 - p[3] : p[3];
    const int nk = 255 - k;
    for (int ch = 0; ch < 3; ++ch) {
      const int v = inverted ? 255 - p[ch] : p[ch];
      const int t = v * nk + 128;
      rgb[i * 3 + ch] = static_cast<uint8_t>(nk - (((t >> 8) + t) >> 8));
    }
  }
}

}  // namespace

ImageInfo probe_jpeg(std::string_view bytes, const std::string& name) {
  Decompressor d(bytes, name);
  const jpeg_decompress_struct& c = d.state().cinfo;
  const int height = static_cast<int>(c.image_height), width = static_cast<int>(c.image_width);  // at most 65500
  check_image_size(height, width, name);
  ImageInfo info;
  info.format = "JPEG";
  info.channels = channels_of(c, name);
  const bool swap = orientation_swaps_sides(jpeg_exif_orientation(bytes));
  info.height = swap ? width : height;
  info.width = swap ? height : width;
  return info;
}

Image decode_jpeg(std::string_view bytes, const std::string& name) {
  Decompressor d(bytes, name);
  JpegState& s = d.state();
  jpeg_decompress_struct& c = s.cinfo;
  const int height = static_cast<int>(c.image_height), width = static_cast<int>(c.image_width);  // at most 65500
  check_image_size(height, width, name);
  const int channels = channels_of(c, name);
  const bool cmyk = c.jpeg_color_space == JCS_CMYK || c.jpeg_color_space == JCS_YCCK;
  c.out_color_space = channels == 1 ? JCS_GRAYSCALE : cmyk ? JCS_CMYK : JCS_RGB;
  const size_t pixels = static_cast<size_t>(height) * static_cast<size_t>(width);
  Image image(height, width, channels);
  std::vector<uint8_t> cmyk_pixels(cmyk ? pixels * 4 : 0);
  if (!read_pixels(s, cmyk ? cmyk_pixels.data() : image.pixels.data())) d.fail_here();
  if (static_cast<int>(c.output_height) != height || static_cast<int>(c.output_width) != width)
    throw FileError(name, "corrupt JPEG: decoded size differs from its header");
  if (cmyk) cmyk_to_rgb(cmyk_pixels, c.saw_Adobe_marker, image.pixels.data());
  return apply_orientation(image, jpeg_exif_orientation(bytes));
}

}  // namespace lenet::codecs

#endif  // LENET_HAVE_LIBJPEG

// The decoders behind probe_image and decode_image (lenet/image.h), one per
// library: PNG through libpng (image_png.cpp), JPEG through libjpeg-turbo
// (image_jpeg.cpp), BMP and binary PGM/PPM through stb_image (image_stb.cpp).
// Each checks the header against the limits (check_image_size) before it
// allocates pixels, and throws FileError naming the file for every problem.
// A build without libpng or libjpeg (the ARM64 cross build, whose Debian
// toolchain has neither: LENET_HAVE_LIBPNG / LENET_HAVE_LIBJPEG unset) decodes
// that format with stb_image instead.
#pragma once

#include <string>
#include <string_view>

#include "lenet/image.h"

namespace lenet::codecs {

// Throws FileError for an image without pixels or beyond kMaxImageSide / kMaxImagePixels.
void check_image_size(int height, int width, const std::string& name);

ImageInfo probe_png(std::string_view bytes, const std::string& name);
Image decode_png(std::string_view bytes, const std::string& name);

// JPEGs come out turned upright by their EXIF orientation (io/exif.h), and
// probe_jpeg reports the upright size.
ImageInfo probe_jpeg(std::string_view bytes, const std::string& name);
Image decode_jpeg(std::string_view bytes, const std::string& name);

// format: "BMP" or "PNM", or "PNG" / "JPEG" in a build without their library.
ImageInfo probe_stb(std::string_view bytes, const std::string& name, const std::string& format);
Image decode_stb(std::string_view bytes, const std::string& name, const std::string& format);

}  // namespace lenet::codecs

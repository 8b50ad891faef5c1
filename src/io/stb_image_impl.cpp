// The implementations of stb_image (BMP and binary PNM; PNG and JPEG only in a
// build without libpng or libjpeg, io/image_codecs.h) and stb_image_write,
// alone in this translation unit: a sanitizer or fuzz build that still
// decodes PNG or JPEG with stb compiles it without UndefinedBehaviorSanitizer
// (CMakeLists.txt says why), and our own code that uses them
// (io/image_stb.cpp, io/image.cpp) keeps every check.
#include <cstdint>
#include <cstdlib>

#include "io/stb_alloc.h"

namespace lenet::stb {

namespace {
thread_local std::size_t allocation_limit = SIZE_MAX;
thread_local bool limit_hit = false;
}  // namespace

void set_allocation_limit(std::size_t bytes) {
  allocation_limit = bytes;
  limit_hit = false;
}
bool allocation_limit_hit() { return limit_hit; }

// Zero-filled: stb_image 2.27 reads parts of its decoder state that a corrupt
// file never sets (a JPEG scan through a Huffman table it did not define); with
// malloc those are a previous image's leftovers, and a sequence of fuzzed JPEGs
// crashed the GCC build in stbi__jpeg_decode_block (fuzz/regressions/image/;
// JPEG now goes to libjpeg-turbo where it is installed).
void* limited_malloc(std::size_t n) {
  if (n > allocation_limit) return limit_hit = true, nullptr;
  return std::calloc(1, n);
}
void* limited_realloc(void* p, std::size_t n) {
  if (n > allocation_limit) return limit_hit = true, nullptr;
  return std::realloc(p, n);
}

}  // namespace lenet::stb

// Only formats with a magic number: stb's TGA reader would take some text
// files for images. Files are read by read_file (no stdio inside stb).
// stb is C-style code: keep its warnings out of ours.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wall"
#pragma GCC diagnostic ignored "-Wextra"
#pragma GCC diagnostic ignored "-Wpedantic"
#pragma GCC diagnostic ignored "-Wshadow"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wunused-but-set-variable"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wimplicit-fallthrough"
#define STBI_MALLOC(size) lenet::stb::limited_malloc(size)
#define STBI_REALLOC(p, size) lenet::stb::limited_realloc(p, size)
#define STBI_FREE(p) std::free(p)
#if !LENET_HAVE_LIBPNG
#define STBI_ONLY_PNG
#endif
#if !LENET_HAVE_LIBJPEG
#define STBI_ONLY_JPEG
#endif
#define STBI_ONLY_BMP
#define STBI_ONLY_PNM
#define STBI_NO_STDIO
#define STBI_FAILURE_USERMSG
#define STB_IMAGE_IMPLEMENTATION
#include <stb_image.h>

#define STBI_WRITE_NO_STDIO
#define STB_IMAGE_WRITE_IMPLEMENTATION
#include <stb_image_write.h>
#pragma GCC diagnostic pop

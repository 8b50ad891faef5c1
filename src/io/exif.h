// EXIF orientation (tag 0x0112 of a JPEG's APP1 "Exif" segment): which of the
// 8 ways a camera stored the picture, and the turn that makes it upright, as
// PIL's ImageOps.exif_transpose applies it.
#pragma once

#include <string_view>

#include "lenet/image.h"

namespace lenet {

// The orientation (1..8) of the first EXIF segment of a JPEG file, 1 (as
// stored) when there is none or it is unreadable: the segments are walked and
// the TIFF structure read with every offset checked against the bytes, so a
// hostile file costs a scan of its bytes and no allocation.
int jpeg_exif_orientation(std::string_view jpeg);
// The same read from an APP1 segment's body ("Exif\0\0" and a TIFF header).
int exif_orientation(std::string_view app1);

// Orientations 5..8 swap height and width.
inline bool orientation_swaps_sides(int orientation) { return orientation >= 5 && orientation <= 8; }
// The upright picture of an image stored with `orientation` (1: unchanged):
// 2 mirror left-right, 3 turn 180°, 4 mirror top-bottom, 5 transpose (mirror
// along the main diagonal), 6 turn 90° clockwise, 7 transverse (mirror along
// the other diagonal), 8 turn 90° anticlockwise.
Image apply_orientation(const Image& stored, int orientation);

}  // namespace lenet

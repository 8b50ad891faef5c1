// Data augmentation of training images (`lenet train --augment`), with
// torchvision's meanings, applied in the order given:
//   crop:P        RandomCrop(size, padding=P): zero padding of P pixels on
//                 every side, then a crop of the original size at a uniform
//                 offset in [0, 2P] × [0, 2P]
//   flip[:P]      RandomHorizontalFlip(p=P), P 0.5 by default
//   rotate:D      RandomRotation(D): an angle uniform in [−D, D] degrees,
//                 counter-clockwise about the image centre, nearest neighbour
//                 (torchvision's default interpolation), fill 0
//   brightness:B  ColorJitter(brightness=B): x·f clamped to [0, 1], f uniform
//                 in [max(0, 1 − B), 1 + B]
// Values are in [0, 1] (after scaling, before normalisation), planar
// [C, H, W]; the geometric operations move every channel alike. Each image
// takes its own generator (augment_seed), so a run is reproducible, does not
// depend on the thread count and resumes bit-identically.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "lenet/random.h"

namespace lenet {

struct AugmentOp {
  enum class Kind { crop, flip, rotate, brightness };
  Kind kind = Kind::flip;
  double amount = 0;  // crop: padding (px); flip: probability; rotate: degrees; brightness: B
};

struct Augmentation {
  std::vector<AugmentOp> ops;
  bool empty() const { return ops.empty(); }
  // The canonical text, e.g. "crop:2,flip:0.5,rotate:10,brightness:0.2" (empty: none).
  std::string text() const;
};

// "crop:2,flip,rotate:10,brightness:0.2" (spaces around items allowed; "" or
// "none": no augmentation). Throws std::invalid_argument naming the text and
// the item that does not parse.
Augmentation parse_augmentation(const std::string& text);

// The seed of the generator of image `index` (its position in the data set)
// in epoch `epoch` (0-based) of a run seeded `seed`.
uint64_t augment_seed(uint64_t seed, int epoch, int64_t index);

// Applies every operation in order to one planar image [channels, height,
// width] in place, drawing from `rng` (per operation: crop two offsets, flip
// one number, rotate one angle, brightness one factor). `scratch` is reused
// storage.
void augment_image(const Augmentation& augmentation, float* image, int channels, int height, int width, Rng& rng,
                   std::vector<float>& scratch);

// ---- the operations, for tests and for readers ----
// out(y, x) = in(y + top − padding, x + left − padding), 0 outside; top, left in [0, 2·padding].
void crop_padded(const float* in, float* out, int channels, int height, int width, int padding, int top, int left);
void flip_horizontal(float* image, int channels, int height, int width);
// Counter-clockwise by `degrees` about ((W − 1)/2, (H − 1)/2), nearest source
// pixel (rounded half to even, as grid_sample's nearest mode), 0 outside.
void rotate_nearest(const float* in, float* out, int channels, int height, int width, double degrees);
void scale_brightness(float* values, int64_t n, float factor);

}  // namespace lenet

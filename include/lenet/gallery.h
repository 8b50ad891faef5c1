// Prediction galleries: a grid of small images scaled up (nearest neighbour)
// so a person can see them, each captioned with its true label (when known)
// and the model's prediction, wrong ones in red — the chapter's last figure.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "lenet/data.h"
#include "lenet/image.h"
#include "lenet/nn.h"

namespace lenet {

struct GalleryItem {
  Image image;              // gray or RGB, as the model saw it
  std::string truth;        // true class name; empty when unknown
  std::string prediction;   // predicted class name
  double probability = -1;  // shown as a percentage when >= 0
};

struct GalleryOptions {
  int columns = 0;     // 0: min(count, 10)
  int scale = 0;       // upscaling factor; 0: the largest that keeps images <= 112 px high (at least 1)
  std::string title;   // first line; a legend is added below it
  std::string legend;  // the line below the title; empty: what the captions mean for predictions
};

// Pixel geometry of a gallery, so callers and tests can predict it.
struct GalleryLayout {
  int scale = 1, columns = 1, rows = 1;
  int cell_width = 0, cell_height = 0;  // one image with its captions
  int header_height = 0;                // title and legend
  int width = 0, height = 0;            // the whole picture
  int image_top = 0;                    // offset of the image inside a cell, below the captions
};
inline constexpr int kGalleryMargin = 10;         // around the grid, px
inline constexpr int kGalleryGap = 12;            // between cells, px
inline constexpr int kGalleryTextScale = 2;       // stb_easy_font units → px
inline constexpr int kGalleryLineHeight = 22;     // px per caption line
inline constexpr size_t kGalleryMaxCaption = 32;  // characters; longer captions end in ".."

GalleryLayout gallery_layout(const std::vector<GalleryItem>& items, const GalleryOptions& options = {});
// An RGB picture; throws std::invalid_argument when there are no items.
Image render_gallery(const std::vector<GalleryItem>& items, const GalleryOptions& options = {});
void write_gallery(const std::filesystem::path& path, const std::vector<GalleryItem>& items,
                   const GalleryOptions& options = {});

// Text in stb_easy_font's segment font: each font unit becomes a scale x scale
// block, so the letters stay sharp. `y` is the top of the line.
void draw_text(Image& canvas, int x, int y, const std::string& text, const uint8_t rgb[3], int scale);
int text_width(const std::string& text, int scale);

// Sample `index` of a data set as an image (planar [C, H, W] → interleaved).
Image dataset_image(const Dataset& data, int64_t index);

// The first `count` images of `data` with the model's predictions, as training
// shows them at the end of a run (OUT/predictions.png). Returns the number of
// images drawn.
int write_prediction_gallery(const std::filesystem::path& path, Sequential& model, const Dataset& data,
                             const Normalization& norm, int count = 10, const std::string& title = "");

// What training sees of the first `images` training images of `data` under
// `augmentation` (`lenet augment-preview`): per image the original, captioned
// with its class, then `copies` augmented versions captioned "epoch N", the
// very pixels epochs 1..copies of a run seeded `seed` train on (the
// DataLoader's per-image draws), rounded to 8 bits. Throws
// std::invalid_argument for an empty data set or counts below 1.
std::vector<GalleryItem> augment_preview_items(const Dataset& data, const Augmentation& augmentation, uint64_t seed,
                                               int images, int copies);

}  // namespace lenet

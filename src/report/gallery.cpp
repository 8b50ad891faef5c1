// Prediction galleries. Text uses stb_easy_font: a segment font compiled into
// the program, so the pictures need no font file at run time and come out the
// same on every machine; drawn at an integer scale its strokes stay sharp.
#include "lenet/gallery.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <stdexcept>

#include "lenet/kernels.h"

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wshadow"
#include <stb_easy_font.h>
#pragma GCC diagnostic pop

namespace lenet {

namespace fs = std::filesystem;

namespace {

constexpr uint8_t kBlack[3] = {20, 20, 20};
constexpr uint8_t kRed[3] = {210, 20, 20};
constexpr uint8_t kGray[3] = {110, 110, 110};

// stb_easy_font prints printable ASCII only; anything else becomes '?'.
std::string printable(const std::string& text) {
  std::string s = text;
  for (char& c : s)
    if (c < 32 || c > 126) c = '?';
  return s;
}

// Captions share a cell with an image: long class names are cut.
std::string clipped(const std::string& text) {
  std::string s = printable(text);
  if (s.size() > kGalleryMaxCaption) s = s.substr(0, kGalleryMaxCaption - 2) + "..";
  return s;
}

std::string percent(double p) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%.0f%%", 100.0 * std::clamp(p, 0.0, 1.0));
  return buf;
}

struct Captions {
  std::string truth, prediction;
  bool wrong = false;
};

bool any_truth(const std::vector<GalleryItem>& items) {
  return std::any_of(items.begin(), items.end(), [](const GalleryItem& i) { return !i.truth.empty(); });
}

Captions captions_of(const GalleryItem& item) {
  Captions c;
  c.truth = clipped(item.truth);
  std::string prediction = item.prediction;
  if (item.probability >= 0) prediction.append(" ").append(percent(item.probability));
  c.prediction = clipped(prediction);
  c.wrong = !item.truth.empty() && item.truth != item.prediction;
  return c;
}

std::string legend(bool truth_known) {
  return truth_known ? "top: true label, below: prediction (wrong ones in red)" : "prediction (probability)";
}

void fill_rect(Image& canvas, int x0, int y0, int x1, int y1, const uint8_t rgb[3]) {
  x0 = std::max(x0, 0), y0 = std::max(y0, 0);
  x1 = std::min(x1, canvas.width), y1 = std::min(y1, canvas.height);
  for (int y = y0; y < y1; ++y)
    for (int x = x0; x < x1; ++x)
      for (int k = 0; k < 3; ++k) canvas.at(y, x, k) = rgb[k];
}

}  // namespace

int text_width(const std::string& text, int scale) {
  std::string s = printable(text);
  return stb_easy_font_width(s.data()) * scale;
}

void draw_text(Image& canvas, int x, int y, const std::string& text, const uint8_t rgb[3], int scale) {
  if (canvas.channels != 3) throw std::invalid_argument("draw_text: the canvas must be RGB");
  std::string s = printable(text);
  std::vector<char> vertices(s.size() * 400 + 64);  // the header says ~270 bytes per character
  const int quads = stb_easy_font_print(0, 0, s.data(), nullptr, vertices.data(), static_cast<int>(vertices.size()));
  for (int q = 0; q < quads; ++q) {
    float x0 = 1e9f, y0 = 1e9f, x1 = -1e9f, y1 = -1e9f;
    for (int v = 0; v < 4; ++v) {  // vertex: x, y, z (floats) and a colour
      const float* p = reinterpret_cast<const float*>(vertices.data() + (q * 4 + v) * 16);
      x0 = std::min(x0, p[0]), x1 = std::max(x1, p[0]), y0 = std::min(y0, p[1]), y1 = std::max(y1, p[1]);
    }
    fill_rect(canvas, x + static_cast<int>(x0) * scale, y + static_cast<int>(y0) * scale,
              x + static_cast<int>(x1) * scale, y + static_cast<int>(y1) * scale, rgb);
  }
}

GalleryLayout gallery_layout(const std::vector<GalleryItem>& items, const GalleryOptions& options) {
  if (items.empty()) throw std::invalid_argument("gallery: no images to show");
  GalleryLayout g;
  int max_h = 0, max_w = 0;
  for (const auto& item : items) {
    if (item.image.empty())
      throw std::invalid_argument("gallery: an item without an image ('" + item.prediction + "')");
    max_h = std::max(max_h, item.image.height), max_w = std::max(max_w, item.image.width);
  }
  g.scale = options.scale > 0 ? options.scale : std::max(1, 112 / max_h);
  const int n = static_cast<int>(items.size());
  g.columns = options.columns > 0 ? std::min(options.columns, n) : std::min(n, 10);
  g.rows = (n + g.columns - 1) / g.columns;
  const bool truth = any_truth(items);
  const int lines = truth ? 2 : 1;
  g.cell_width = max_w * g.scale;
  for (const auto& item : items) {
    const Captions c = captions_of(item);
    g.cell_width = std::max(
        {g.cell_width, text_width(c.truth, kGalleryTextScale), text_width(c.prediction, kGalleryTextScale)});
  }
  g.image_top = lines * kGalleryLineHeight + 4;
  g.cell_height = g.image_top + max_h * g.scale;
  g.header_height = (options.title.empty() ? 0 : kGalleryLineHeight) + kGalleryLineHeight + kGalleryGap;
  const int grid_width = g.columns * g.cell_width + (g.columns - 1) * kGalleryGap;
  const std::string legend_text = options.legend.empty() ? legend(truth) : options.legend;
  const int header_width = std::max(text_width(options.title, kGalleryTextScale),
                                    text_width(legend_text, kGalleryTextScale));
  g.width = 2 * kGalleryMargin + std::max(grid_width, header_width);
  g.height = 2 * kGalleryMargin + g.header_height + g.rows * g.cell_height + (g.rows - 1) * kGalleryGap;
  return g;
}

Image render_gallery(const std::vector<GalleryItem>& items, const GalleryOptions& options) {
  const GalleryLayout g = gallery_layout(items, options);
  Image canvas(g.height, g.width, 3, 255);
  const bool truth = any_truth(items);
  int y = kGalleryMargin;
  if (!options.title.empty()) {
    draw_text(canvas, kGalleryMargin, y, options.title, kBlack, kGalleryTextScale);
    y += kGalleryLineHeight;
  }
  draw_text(canvas, kGalleryMargin, y, options.legend.empty() ? legend(truth) : options.legend, kGray,
            kGalleryTextScale);

  for (size_t i = 0; i < items.size(); ++i) {
    const int col = static_cast<int>(i) % g.columns, row = static_cast<int>(i) / g.columns;
    const int cx = kGalleryMargin + col * (g.cell_width + kGalleryGap);
    const int cy = kGalleryMargin + g.header_height + row * (g.cell_height + kGalleryGap);
    const Captions c = captions_of(items[i]);
    // Captions centred over the image, as the chapter's subplot titles.
    auto centred = [&](const std::string& text) {
      return cx + (g.cell_width - text_width(text, kGalleryTextScale)) / 2;
    };
    int line_y = cy;
    if (truth) {
      draw_text(canvas, centred(c.truth), line_y, c.truth, kBlack, kGalleryTextScale);
      line_y += kGalleryLineHeight;
    }
    draw_text(canvas, centred(c.prediction), line_y, c.prediction, c.wrong ? kRed : kBlack, kGalleryTextScale);

    const Image big = upscale_nearest(items[i].image, g.scale);
    const Image rgb = big.channels == 3 ? big : to_rgb(big);
    const int ix = cx + (g.cell_width - rgb.width) / 2, iy = cy + g.image_top;
    if (c.wrong) fill_rect(canvas, ix - 3, iy - 3, ix + rgb.width + 3, iy + rgb.height + 3, kRed);  // a frame
    for (int yy = 0; yy < rgb.height; ++yy)
      std::copy_n(&rgb.pixels[static_cast<size_t>(yy) * rgb.width * 3], static_cast<size_t>(rgb.width) * 3,
                  &canvas.at(iy + yy, ix));
  }
  return canvas;
}

void write_gallery(const fs::path& path, const std::vector<GalleryItem>& items, const GalleryOptions& options) {
  write_png(path, render_gallery(items, options));
}

Image dataset_image(const Dataset& data, int64_t index) {
  if (index < 0 || index >= data.count)
    throw std::out_of_range("dataset_image: index " + std::to_string(index) + " of " + std::to_string(data.count));
  Image image(data.height, data.width, data.channels);
  const int64_t plane = static_cast<int64_t>(data.height) * data.width;
  const uint8_t* src = data.pixels.data() + index * data.sample_size();
  for (int64_t i = 0; i < plane; ++i)
    for (int c = 0; c < data.channels; ++c) image.pixels[i * data.channels + c] = src[c * plane + i];
  return image;
}

int write_prediction_gallery(const fs::path& path, Sequential& model, const Dataset& data, const Normalization& norm,
                             int count, const std::string& title) {
  const int n = static_cast<int>(std::min<int64_t>(count, data.count));
  if (n <= 0) return 0;
  Tensor x({n, data.channels, data.height, data.width});
  pixels_to_floats(data.pixels.data(), n, data.channels, static_cast<int64_t>(data.height) * data.width, norm,
                   x.data());
  const EvalScope eval_mode(model);
  const Tensor& logits = model.forward(x);
  const int k = static_cast<int>(logits.size(-1));
  if (k != data.num_classes())
    throw std::invalid_argument("prediction gallery: the model has " + std::to_string(k) +
                                " outputs but the data set " + std::to_string(data.num_classes()) + " classes");
  std::vector<float> probs(static_cast<size_t>(n) * k);
  kernels::softmax(n, k, logits.data(), probs.data());
  std::vector<GalleryItem> items(n);
  for (int i = 0; i < n; ++i) {
    const float* p = probs.data() + static_cast<size_t>(i) * k;
    const int best = static_cast<int>(std::max_element(p, p + k) - p);
    items[i].image = dataset_image(data, i);
    items[i].truth = data.class_names[data.labels[i]];
    items[i].prediction = data.class_names[best];
    items[i].probability = p[best];
  }
  GalleryOptions options;
  options.title = title;
  write_gallery(path, items, options);
  return n;
}

std::vector<GalleryItem> augment_preview_items(const Dataset& data, const Augmentation& augmentation, uint64_t seed,
                                               int images, int copies) {
  if (data.count == 0) throw std::invalid_argument("augment preview: the data set is empty");
  if (images < 1 || copies < 1)
    throw std::invalid_argument("augment preview: " + std::to_string(images) + " images with " +
                                std::to_string(copies) + " copies each; both must be at least 1");
  const int n = static_cast<int>(std::min<int64_t>(images, data.count));
  const int64_t plane = static_cast<int64_t>(data.height) * data.width, sample = data.sample_size();
  std::vector<float> x(static_cast<size_t>(sample)), scratch;
  std::vector<GalleryItem> items;
  for (int i = 0; i < n; ++i) {
    GalleryItem original;
    original.image = dataset_image(data, i);
    original.prediction = data.class_names[static_cast<size_t>(data.labels[static_cast<size_t>(i)])];
    items.push_back(std::move(original));
    for (int e = 0; e < copies; ++e) {
      // The loader's path (src/data/loader.cpp): scale, augment with the image's generator of epoch e.
      pixels_to_floats(data.pixels.data() + i * sample, 1, data.channels, plane, Normalization{}, x.data());
      Rng rng(augment_seed(seed, e, i));
      augment_image(augmentation, x.data(), data.channels, data.height, data.width, rng, scratch);
      GalleryItem item;
      item.image = Image(data.height, data.width, data.channels);
      for (int64_t p = 0; p < plane; ++p)
        for (int c = 0; c < data.channels; ++c)
          item.image.pixels[static_cast<size_t>(p * data.channels + c)] = static_cast<uint8_t>(
              std::clamp(std::lround(x[static_cast<size_t>(c * plane + p)] * 255.0f), 0L, 255L));
      item.prediction = "epoch " + std::to_string(e + 1);
      items.push_back(std::move(item));
    }
  }
  return items;
}

}  // namespace lenet

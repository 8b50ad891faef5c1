// `lenet augment-preview`: a grid of augmented training images (one row per
// image: the original, then what epochs 1..N train on), so a person can see
// what --augment does before training with it.
#include <cstdio>
#include <filesystem>
#include <memory>

#include "commands.h"
#include "lenet/augment.h"
#include "lenet/gallery.h"
#include "lenet/image.h"
#include "lenet/parallel.h"

namespace lenet::cli {

namespace fs = std::filesystem;

namespace {

struct PreviewArgs {
  std::string data;
  std::string augment;
  std::string out;
  int images = 8;
  int copies = 7;
  uint64_t seed = 0;
  int channels = 1;
  std::string size;
  int threads = 0;
};

}  // namespace

void add_augment_preview_command(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "augment-preview", "Draw a grid of augmented training images (what lenet train --augment shows the model)");
  cmd->option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  auto a = std::make_shared<PreviewArgs>();
  cmd->add_option("--data", a->data,
                  "Data set folder (as lenet train); default: Fashion-MNIST from " + default_data_dir().string());
  cmd->add_option("--augment", a->augment, "The augmentation, as lenet train --augment, e.g. 'crop:2,flip'")
      ->required();
  cmd->add_option("--out", a->out, "The PNG to write")->required();
  cmd->add_option("--images", a->images, "Training images shown (rows)")->capture_default_str();
  cmd->add_option("--copies", a->copies, "Augmented versions per image: epochs 1..N")->capture_default_str();
  cmd->add_option("--seed", a->seed, "The run's --seed (each image's draws depend on it)")->capture_default_str();
  cmd->add_option("--channels", a->channels, "Image folders: 1 (grayscale) or 3 (RGB)")->capture_default_str();
  cmd->add_option("--size", a->size, "Image folders: resize every image to HxW first, as lenet train --size");
  add_threads_option(*cmd, a->threads);
  cmd->callback([a] {
    // Every flag is checked before the data is read, and nothing is written unless all is well.
    Augmentation augmentation;
    try {
      augmentation = parse_augmentation(a->augment);
    } catch (const std::invalid_argument& e) {
      throw UsageError(e.what());
    }
    if (augmentation.empty()) throw UsageError("--augment '" + a->augment + "' asks for no augmentation");
    if (a->images < 1 || a->images > 100)
      throw UsageError("--images must be 1 to 100, got " + std::to_string(a->images));
    if (a->copies < 1 || a->copies > 20) throw UsageError("--copies must be 1 to 20, got " + std::to_string(a->copies));
    if (a->channels != 1 && a->channels != 3)
      throw UsageError("--channels must be 1 (grayscale) or 3 (RGB), got " + std::to_string(a->channels));
    const fs::path parent = fs::path(a->out).parent_path();
    std::error_code ec;
    if (!parent.empty() && !fs::is_directory(parent, ec))
      throw UsageError("--out " + a->out + ": folder " + parent.string() + " does not exist");
    DataOptions options;
    options.channels = a->channels;
    options.threads = a->threads;
    if (!a->size.empty()) {
      try {
        std::tie(options.resize_height, options.resize_width) = parse_size(a->size);
      } catch (const std::invalid_argument& e) {
        throw UsageError(std::string("--size: ") + e.what());
      }
    }
    set_num_threads(a->threads);
    const fs::path dir = a->data.empty() ? default_data_dir() : fs::path(a->data);
    const DataSplit data = load_data(dir, options);
    GalleryOptions gallery;
    gallery.columns = a->copies + 1;
    gallery.title = data.name + ": --augment " + augmentation.text() + ", seed " + std::to_string(a->seed);
    gallery.legend = "each row: a training image, then what epochs 1.." + std::to_string(a->copies) + " train on";
    const auto items = augment_preview_items(data.train, augmentation, a->seed, a->images, a->copies);
    write_gallery(a->out, items, gallery);
    std::printf("wrote %s: %d images x %d epochs\n", a->out.c_str(), static_cast<int>(items.size()) / (a->copies + 1),
                a->copies);
  });
}

}  // namespace lenet::cli

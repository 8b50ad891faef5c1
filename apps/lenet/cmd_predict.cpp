// `lenet predict`: runs a saved model on image files and folders, printing the
// predicted class, its probability and the top k per image (or JSON Lines),
// and optionally drawing a gallery. Unreadable inputs are reported one line
// each; the others are still predicted and the exit status is 1 at the end.
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "lenet/checkpoint.h"
#include "lenet/gallery.h"
#include "lenet/image.h"
#include "lenet/parallel.h"
#include "lenet/predict.h"

namespace lenet::cli {

namespace fs = std::filesystem;

namespace {

struct PredictArgs {
  std::string model;
  std::vector<std::string> inputs;
  int top_k = 3;
  bool json = false;
  std::string gallery;
  int gallery_count = 100;
  bool resize = false;
  int batch_size = 256;
  int threads = 0;
};

struct Input {
  fs::path file;
  int truth = -1;     // class index when the file's folder is named after a class
  std::string error;  // set when the argument or the file cannot be used
  Image image;        // prepared for the model
};

// The class whose name the file's folder has, or -1.
int class_of_folder(const fs::path& file, const std::vector<std::string>& classes) {
  const std::string folder = file.parent_path().filename().string();
  const auto at = std::find(classes.begin(), classes.end(), folder);
  return at == classes.end() ? -1 : static_cast<int>(at - classes.begin());
}

// Files named on the command line as they are; folders walked (sorted, hidden
// entries skipped), their files labelled by their folder's name when it is a class.
std::vector<Input> expand_inputs(const std::vector<std::string>& args, const std::vector<std::string>& classes) {
  std::vector<Input> inputs;
  for (const std::string& arg : args) {
    const fs::path path = arg;
    std::error_code ec;
    if (!fs::exists(path, ec)) {
      inputs.push_back({path, -1, arg + ": no such file or folder", {}});
      continue;
    }
    if (!fs::is_directory(path, ec)) {
      inputs.push_back({path, -1, "", {}});
      continue;
    }
    std::vector<fs::path> files;
    for (auto it = fs::recursive_directory_iterator(path, fs::directory_options::follow_directory_symlink, ec);
         !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
      if (it->path().filename().string().starts_with(".")) {
        if (it->is_directory()) it.disable_recursion_pending();
        continue;
      }
      if (it->is_regular_file()) files.push_back(it->path());
    }
    if (ec) {
      inputs.push_back({path, -1, arg + ": cannot list the folder: " + ec.message(), {}});
      continue;
    }
    if (files.empty()) inputs.push_back({path, -1, arg + ": folder holds no files", {}});
    std::sort(files.begin(), files.end());
    for (auto& f : files) inputs.push_back({f, class_of_folder(f, classes), "", {}});
  }
  return inputs;
}

nlohmann::ordered_json score_json(const ClassScore& s, const std::vector<std::string>& classes) {
  return {{"index", s.index}, {"label", classes[static_cast<size_t>(s.index)]}, {"probability", s.probability}};
}

std::string percent(float p) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f%%", 100.0 * p);
  return buf;
}

}  // namespace

void add_predict_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("predict",
                                 "Predict the classes of image files (PNG, JPEG, BMP, PGM) with a saved model");
  auto a = std::make_shared<PredictArgs>();
  cmd->add_option("--model", a->model, "Saved model (.safetensors checkpoint or .onnx)")->required();
  cmd->add_option("inputs", a->inputs,
                  "Image files or folders (walked; a sub-folder named after a class gives the true label)")
      ->required();
  cmd->add_option("--top-k", a->top_k, "Classes to list per image")->capture_default_str();
  cmd->add_flag("--json", a->json, "One JSON object per image and line (JSON Lines)");
  cmd->add_option("--gallery", a->gallery, "Also draw the images with their predictions into this PNG");
  cmd->add_option("--gallery-count", a->gallery_count, "Images in the gallery at most")->capture_default_str();
  cmd->add_flag("--resize", a->resize,
                "Resize images of another size to the model's input (bilinear) instead of rejecting them");
  cmd->add_option("--batch-size", a->batch_size, "Images per forward pass")->capture_default_str();
  add_threads_option(*cmd, a->threads);
  cmd->callback([a] {
    if (a->top_k < 1) throw UsageError("--top-k must be a positive whole number, got " + std::to_string(a->top_k));
    if (a->batch_size < 1)
      throw UsageError("--batch-size must be a positive whole number, got " + std::to_string(a->batch_size));
    if (a->gallery_count < 1)
      throw UsageError("--gallery-count must be positive, got " + std::to_string(a->gallery_count));
    if (!a->gallery.empty()) {
      const fs::path parent = fs::path(a->gallery).parent_path();
      std::error_code ec;
      if (!parent.empty() && !fs::is_directory(parent, ec))
        throw UsageError("--gallery " + a->gallery + ": folder " + parent.string() + " does not exist");
    }
    set_num_threads(a->threads);
    LoadedModel loaded = load_model(a->model);
    const ModelInfo& info = loaded.info;
    const auto& classes = info.class_names;

    // Decode and prepare every file once, in parallel; errors stay with their file.
    std::vector<Input> inputs = expand_inputs(a->inputs, classes);
    const int64_t n = static_cast<int64_t>(inputs.size());
    decode_in_parallel(n, a->threads, [&](int64_t i) {
      if (!inputs[i].error.empty()) return;
      try {
        inputs[i].image = image_file_for_model(inputs[i].file, info.preprocessing, info.input_shape, a->resize);
      } catch (const std::exception& e) {
        inputs[i].error = e.what();
      }
    });

    std::vector<Image> images;
    std::vector<size_t> of_input;
    for (size_t i = 0; i < inputs.size(); ++i)
      if (inputs[i].error.empty()) images.push_back(std::move(inputs[i].image)), of_input.push_back(i);
    const std::vector<Prediction> predictions = predict_images(loaded.model, info, images, a->top_k, a->batch_size);

    // Results in the order of the arguments; an unreadable input is one line on stderr.
    std::vector<const Prediction*> by_input(inputs.size(), nullptr);
    for (size_t j = 0; j < of_input.size(); ++j) by_input[of_input[j]] = &predictions[j];
    int64_t failed = 0, labelled = 0, correct = 0;
    for (size_t i = 0; i < inputs.size(); ++i) {
      const Input& in = inputs[i];
      if (!in.error.empty()) {
        std::fflush(stdout);
        std::fprintf(stderr, "lenet: error: %s\n", in.error.c_str());
        ++failed;
        continue;
      }
      const Prediction& p = *by_input[i];
      if (in.truth >= 0) ++labelled, correct += p.index() == in.truth;
      if (a->json) {
        nlohmann::ordered_json j = {{"file", in.file.string()},
                                    {"index", p.index()},
                                    {"label", classes[static_cast<size_t>(p.index())]},
                                    {"probability", p.probability()}};
        j["top_k"] = nlohmann::ordered_json::array();
        for (const auto& s : p.top) j["top_k"].push_back(score_json(s, classes));
        if (in.truth >= 0) {
          j["true_index"] = in.truth;
          j["true_label"] = classes[static_cast<size_t>(in.truth)];
          j["correct"] = p.index() == in.truth;
        }
        std::printf("%s\n", j.dump().c_str());
      } else {
        std::string line = in.file.string() + ": " + classes[static_cast<size_t>(p.index())] + " " +
                           percent(p.probability());
        if (in.truth >= 0)
          line += " (true: " + classes[static_cast<size_t>(in.truth)] + (p.index() == in.truth ? ")" : ", wrong)");
        if (p.top.size() > 1) {
          line += "  | top " + std::to_string(p.top.size()) + ":";
          for (size_t t = 0; t < p.top.size(); ++t)
            line += (t ? ", " : " ") + classes[static_cast<size_t>(p.top[t].index)] + " " +
                    percent(p.top[t].probability);
        }
        std::printf("%s\n", line.c_str());
      }
    }
    if (!a->json && labelled > 0)
      std::printf("accuracy on %lld images whose folder names their class: %.4f (%lld correct)\n",
                  static_cast<long long>(labelled), static_cast<double>(correct) / static_cast<double>(labelled),
                  static_cast<long long>(correct));
    std::fflush(stdout);

    if (!a->gallery.empty() && !images.empty()) {
      std::vector<GalleryItem> items;
      for (size_t j = 0; j < images.size() && static_cast<int>(items.size()) < a->gallery_count; ++j) {
        const Input& in = inputs[of_input[j]];
        GalleryItem item;
        item.image = images[j];
        item.truth = in.truth >= 0 ? classes[static_cast<size_t>(in.truth)] : "";
        item.prediction = classes[static_cast<size_t>(predictions[j].index())];
        item.probability = predictions[j].probability();
        items.push_back(std::move(item));
      }
      GalleryOptions g;
      g.title = fs::path(a->model).filename().string() + ": " + std::to_string(items.size()) +
                (images.size() > items.size() ? " of " + std::to_string(images.size()) : std::string()) + " images";
      write_gallery(a->gallery, items, g);
      if (images.size() > items.size())
        std::fprintf(stderr, "lenet: note: the gallery shows the first %zu of %zu images (--gallery-count)\n",
                     items.size(), images.size());
    }
    if (failed == n)
      throw std::runtime_error("none of the " + std::to_string(n) + " inputs could be used (named above)");
    if (failed > 0)
      throw std::runtime_error(std::to_string(failed) + " of " + std::to_string(n) +
                               " inputs could not be used (named above); the others were predicted");
  });
}

}  // namespace lenet::cli

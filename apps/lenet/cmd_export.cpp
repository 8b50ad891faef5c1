// `lenet export`: converts a saved model (checkpoint or ONNX file) to ONNX,
// and/or writes it as a static web page (--web DIR).
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "lenet/checkpoint.h"
#include "lenet/fileio.h"
#include "lenet/onnx.h"
#include "lenet/web.h"

#ifndef LENET_ORT_WEB_DIR
#define LENET_ORT_WEB_DIR ""
#endif

namespace lenet::cli {

namespace fs = std::filesystem;

namespace {

struct WebArgs {
  std::string dir;
  std::string data;
  std::string ort_dir;
  int examples = 10;
};

// --ort-dir, else LENET_ORT_WEB_DIR, else the source tree's web/node_modules
// (baked in at configure time; scripts/setup.sh installs it there).
fs::path ort_web_dir(const std::string& flag) {
  if (!flag.empty()) return flag;
  if (const char* env = std::getenv("LENET_ORT_WEB_DIR"); env && *env) return env;
  return LENET_ORT_WEB_DIR;
}

// The data folder of the model's test images: --data, else the one recorded in
// report.json beside a run's checkpoint, else Debian's Fashion-MNIST for a
// model trained on it. Empty when none is known.
fs::path examples_data_dir(const std::string& flag, const fs::path& model_path, const ModelInfo& info) {
  if (!flag.empty()) return flag;
  std::error_code ec;
  const fs::path report = model_path.parent_path() / "report.json";
  if (fs::is_regular_file(report, ec)) {
    try {
      return nlohmann::json::parse(read_file(report)).at("data").get<std::string>();
    } catch (const std::exception& e) {
      std::fprintf(stderr, "lenet: warning: ignoring %s: %s\n", report.string().c_str(), e.what());
    }
  }
  if (info.dataset == "fashion-mnist" && fs::exists(default_data_dir(), ec)) return default_data_dir();
  return {};
}

// The test images to embed, or why there are none (in `note`).
std::vector<WebExample> web_examples(const WebArgs& w, const std::string& model_path, const LoadedModel& loaded,
                                     std::string& note) {
  if (w.examples == 0) return note = "no test images embedded (--examples 0)", std::vector<WebExample>{};
  const fs::path data = examples_data_dir(w.data, model_path, loaded.info);
  if (data.empty()) {
    note = "no test images embedded: the data set '" + loaded.info.dataset + "' has no known folder (pass --data DIR)";
    return {};
  }
  try {
    DataOptions options;
    options.resize_height = loaded.info.preprocessing.resize_height;
    options.resize_width = loaded.info.preprocessing.resize_width;
    options.channels = data_channels_for(loaded.info);
    // An image folder without test/: the split the training run held out.
    stored_held_out_split(loaded.metadata, model_path, options);
    const Dataset test = load_dataset(data, options).test;
    if (test.input_shape() != loaded.info.input_shape || test.class_names != loaded.info.class_names)
      throw std::runtime_error("its images (" + to_string(test.input_shape()) + ", " +
                               std::to_string(test.num_classes()) + " classes) are not the model's (" +
                               to_string(loaded.info.input_shape) + ", " +
                               std::to_string(loaded.info.class_names.size()) + " classes)");
    return pick_web_examples(test, w.examples);
  } catch (const std::exception& e) {
    note = "no test images embedded: " + data.string() + ": " + e.what();
    std::fprintf(stderr, "lenet: warning: %s\n", note.c_str());
    return {};
  }
}

}  // namespace

void add_export_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("export",
                                 "Convert a saved model to ONNX (for ONNX Runtime, OpenCV, TensorRT, ...) "
                                 "or a web page that runs it in the browser");
  auto model_path = std::make_shared<std::string>();
  auto onnx_path = std::make_shared<std::string>();
  auto opset = std::make_shared<int>(kOnnxDefaultOpset);
  auto web = std::make_shared<WebArgs>();
  cmd->add_option("--model", *model_path, "Checkpoint (.safetensors) or ONNX file")->required();
  cmd->add_option("--onnx", *onnx_path, "ONNX file to write (replaced atomically if it exists)");
  cmd->add_option("--opset", *opset,
                  "ONNX opset (" + std::to_string(kOnnxMinOpset) + ".." + std::to_string(onnx_max_opset()) + ")")
      ->capture_default_str();
  cmd->add_option("--web", web->dir,
                  "Folder to write a static web page into (index.html, model.onnx, onnxruntime-web); new, empty, or "
                  "an earlier --web export");
  cmd->add_option("--data", web->data, "--web: data folder whose test images the page shows (default: the run's)");
  cmd->add_option("--examples", web->examples, "--web: test images to embed, one per class")->capture_default_str();
  cmd->add_option("--ort-dir", web->ort_dir,
                  "--web: onnxruntime-web's dist/ folder (default: LENET_ORT_WEB_DIR, else " +
                      std::string(LENET_ORT_WEB_DIR) + ")");
  cmd->callback([=] {
    if (*opset < kOnnxMinOpset || *opset > onnx_max_opset())
      throw UsageError("--opset " + std::to_string(*opset) + " is not supported (expected " +
                       std::to_string(kOnnxMinOpset) + ".." + std::to_string(onnx_max_opset()) + ")");
    if (onnx_path->empty() && !cmd->count("--onnx") && web->dir.empty())
      throw UsageError("--onnx is required (or --web DIR for a web page)");
    if (cmd->count("--onnx") && onnx_path->empty()) throw UsageError("--onnx needs a file name");
    if (cmd->count("--web") && web->dir.empty()) throw UsageError("--web needs a folder name");
    if (web->examples < 0) throw UsageError("--examples must be >= 0, got " + std::to_string(web->examples));
    LoadedModel loaded = load_model(*model_path);
    const std::string shape = "input [N, " + std::to_string(loaded.info.input_shape[0]) + ", " +
                              std::to_string(loaded.info.input_shape[1]) + ", " +
                              std::to_string(loaded.info.input_shape[2]) + "], " +
                              std::to_string(loaded.info.class_names.size()) + " classes";
    if (!onnx_path->empty()) {
      export_onnx(*onnx_path, loaded.model, loaded.info, {*opset});
      std::printf("wrote %s (opset %d): %s, %s\n", onnx_path->c_str(), *opset, loaded.model.spec().c_str(),
                  shape.c_str());
    }
    if (!web->dir.empty()) {
      WebPageOptions options;
      options.ort_dir = ort_web_dir(web->ort_dir);
      options.opset = *opset;
      options.examples = web_examples(*web, *model_path, loaded, options.examples_note);
      export_web_page(web->dir, loaded.model, loaded.info, options);
      std::printf(
          "wrote %s: index.html, model.onnx (%s), onnxruntime-web; %zu test images embedded\n"
          "view it with: lenet serve %s\n",
          web->dir.c_str(), shape.c_str(), options.examples.size(), web->dir.c_str());
    }
  });
}

}  // namespace lenet::cli

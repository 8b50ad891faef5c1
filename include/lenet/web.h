// The model in a web page: `lenet export --web DIR` writes a static folder
// (index.html, the model as ONNX, onnxruntime-web's single-threaded
// WebAssembly files) in which a browser classifies drawn or dropped images
// with the same preprocessing as `lenet predict`.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "lenet/checkpoint.h"
#include "lenet/data.h"
#include "lenet/image.h"

namespace lenet {

// What the page needs of onnxruntime-web's dist/ folder: the WebAssembly
// build's script (which defines `ort`), its module loader and the module.
// They work without cross-origin isolation when run with one thread.
const std::vector<std::string>& ort_web_files();

// A test image shown on the page as it loads, with its true class.
struct WebExample {
  Image image;  // the data set's pixels, interleaved (Image's layout)
  std::string label;
};

// The first image of each class in `test`, in class order, at most `count`.
std::vector<WebExample> pick_web_examples(const Dataset& test, int count);

struct WebPageOptions {
  std::filesystem::path ort_dir;  // holds ort_web_files()
  std::vector<WebExample> examples;
  std::string examples_note;  // shown instead of the examples when there are none
  int opset = 11;
  int top_k = 5;
};

// Writes the folder `dir`. It must not exist, be empty, or hold only what an
// earlier export wrote (it is then replaced). Everything is written into a
// hidden temporary folder beside `dir` and renamed into place at the end, so a
// failure leaves `dir` as it was. Throws std::runtime_error with one line
// naming the folder, file or model and the problem.
void export_web_page(const std::filesystem::path& dir, const Sequential& model, const ModelInfo& info,
                     const WebPageOptions& options);

// The Content-Type a static server must send for the page's files
// ("application/wasm" for .wasm, "text/javascript" for .js and .mjs, ...).
std::string web_content_type(const std::filesystem::path& file);

}  // namespace lenet

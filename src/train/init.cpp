// Starting weights for fine-tuning (`lenet train --init FILE`): every named
// tensor of the model (parameters and BatchNorm's running statistics) from a
// safetensors file or an ONNX model, checked by name and shape before anything
// is copied.
#include <fstream>
#include <map>
#include <stdexcept>
#include <string>

#include "lenet/checkpoint.h"
#include "lenet/onnx.h"
#include "lenet/train.h"

namespace lenet {

namespace fs = std::filesystem;

namespace {

struct Source {
  Shape shape;
  std::span<const float> values;
};

bool is_safetensors(const fs::path& path) {
  std::string head(9, '\0');
  std::ifstream in(path, std::ios::binary);
  in.read(head.data(), static_cast<std::streamsize>(head.size()));
  return in.gcount() == 9 && head[8] == '{';
}

// Same shape but for the first dimension (a classifier's output count).
bool differs_in_outputs_only(const Shape& a, const Shape& b) {
  if (a.size() != b.size() || a.empty() || a[0] == b[0]) return false;
  for (size_t i = 1; i < a.size(); ++i)
    if (a[i] != b[i]) return false;
  return true;
}

}  // namespace

InitReport init_weights_from(Sequential& model, const fs::path& path) {
  // Keeps the file's tensors alive while they are checked and copied.
  SafetensorsFile tensors_file;
  LoadedModel onnx_model;
  std::map<std::string, Source> source;
  if (is_safetensors(path)) {
    tensors_file = read_safetensors(path);
    for (const auto& [name, t] : tensors_file.tensors)
      if (!name.starts_with("optim.")) source[name] = {t.shape(), t.span()};
  } else {
    onnx_model = load_model(path);
    const Sequential& m = onnx_model.model;
    for (const Parameter* p : m.parameters()) source[p->name] = {p->shape, p->values()};
    // Without the running statistics a BatchNorm would start at mean 0, variance 1.
    for (const Parameter* b : m.buffers()) source[b->name] = {b->shape, b->values()};
  }
  const std::string file = path.string();
  auto refuse = [&](const std::string& why) {
    throw std::invalid_argument("--init " + file + ": " + why + "; it is not a model of this architecture");
  };

  // The last layer with parameters is the classifier that a new class count replaces.
  size_t last = model.size();
  for (size_t i = 0; i < model.size(); ++i)
    if (!model[i].parameters().empty()) last = i;

  InitReport report;
  report.source = path;
  std::vector<std::pair<Parameter*, Source>> copies;
  std::map<std::string, bool> used;
  for (size_t i = 0; i < model.size(); ++i) {
    std::vector<Parameter*> tensors;  // parameters, then buffers (running statistics), as a state_dict
    for (Parameter& p : model[i].parameters()) tensors.push_back(&p);
    for (Parameter& b : model[i].buffers()) tensors.push_back(&b);
    for (Parameter* tensor : tensors) {
      Parameter& p = *tensor;
      auto it = source.find(p.name);
      if (it == source.end()) refuse("it has no tensor '" + p.name + "' " + to_string(p.shape));
      used[p.name] = true;
      const Shape& there = it->second.shape;
      if (there == p.shape) {
        copies.emplace_back(&p, it->second);
      } else if (i == last && differs_in_outputs_only(there, p.shape)) {
        if (!report.reinitialised.empty()) report.reinitialised += " and ";
        report.reinitialised += p.name + " " + to_string(there);
      } else if (copies.empty() && there.size() == 4 && p.shape.size() == 4 && there[1] != p.shape[1] &&
                 there[0] == p.shape[0] && there[2] == p.shape[2] && there[3] == p.shape[3]) {
        // The first convolution: a gray model for colour data, or the other way round.
        auto kind = [](int64_t c) { return std::to_string(c) + (c == 1 ? " (grayscale)" : c == 3 ? " (RGB)" : ""); };
        throw std::invalid_argument("--init " + file + ": it takes " + kind(there[1]) + " input channel(s) ('" +
                                    p.name + "' " + to_string(there) + ") but these images have " + kind(p.shape[1]) +
                                    "; train with --channels " + std::to_string(there[1]) + " or start without --init");
      } else {
        refuse("tensor '" + p.name + "' is " + to_string(there) + " there but " + to_string(p.shape) + " here");
      }
    }
  }
  for (const auto& [name, t] : source)
    if (!used.count(name)) refuse("its tensor '" + name + "' " + to_string(t.shape) + " has no place in this model");
  if (!report.reinitialised.empty()) {
    const Parameter& w = model[last].parameters().front();
    report.reinitialised += ": " + std::to_string(source[w.name].shape[0]) + " classes there, " +
                            std::to_string(w.shape[0]) + " here; the last layer starts afresh";
  }
  for (auto& [p, t] : copies) std::copy(t.values.begin(), t.values.end(), p->value);
  report.copied = static_cast<int64_t>(copies.size());
  return report;
}

}  // namespace lenet

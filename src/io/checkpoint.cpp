// Checkpoints: the model's parameters as safetensors tensors named as PyTorch's
// state_dict ("0.weight", ...), and in __metadata__ all that rebuilds the model:
//   format           "lenet.cpp"
//   format_version   "1"
//   arch             the canonical layer spec ("conv 6 k5 p2, sigmoid, ...")
//   input_shape      JSON [C, H, W]
//   class_names      JSON list of strings
//   preprocessing    JSON {"grayscale": bool, "resize": [H, W], "normalization": {"mean": m, "std": s}}
//                    (per-channel normalisation: "mean": [m0, m1, m2], "std": [s0, s1, s2])
//   dataset, epoch   text
//   metrics          JSON object of numbers (train_loss, test_acc, ...)
//   optimizer, optimizer_steps   only when optimizer state ("optim.*" tensors) is saved
#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>

#include "io/json_text.h"
#include "io/memory_guard.h"
#include "lenet/checkpoint.h"
#include "lenet/error.h"
#include "lenet/fileio.h"

namespace lenet {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

constexpr int kFormatVersion = 1;
const char* const kOurKeys[] = {"format",      "format_version", "arch",           "input_shape",
                                "class_names", "preprocessing",  "dataset",        "epoch",
                                "metrics",     "optimizer",      "optimizer_steps"};

[[noreturn]] void bad(const fs::path& path, const std::string& what) { throw FileError(path, what); }

json parse_meta(const fs::path& path, const std::map<std::string, std::string>& meta, const std::string& key) {
  auto it = meta.find(key);
  if (it == meta.end()) bad(path, "checkpoint metadata lacks '" + key + "'");
  return parse_json_text(it->second, path, "checkpoint metadata '" + key + "'");
}

int64_t meta_int(const fs::path& path, const std::map<std::string, std::string>& meta, const std::string& key,
                 int64_t lo, int64_t hi) {
  auto it = meta.find(key);
  if (it == meta.end()) bad(path, "checkpoint metadata lacks '" + key + "'");
  size_t used = 0;
  long long v = 0;
  try {
    v = std::stoll(it->second, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used == 0 || used != it->second.size() || v < lo || v > hi)
    bad(path, "checkpoint metadata '" + key + "' is '" + it->second + "', expected an integer in [" +
                  std::to_string(lo) + ", " + std::to_string(hi) + "]");
  return v;
}

json preprocessing_json(const Preprocessing& p) {
  return {{"grayscale", p.grayscale},
          {"resize", {p.resize_height, p.resize_width}},
          {"normalization", normalization_json(p.normalization)}};
}

Preprocessing preprocessing_from(const fs::path& path, const json& j) {
  Preprocessing p;
  auto fail = [&](const std::string& what) {
    bad(path, "checkpoint metadata 'preprocessing': " + what + ": " + j.dump());
  };
  if (!j.is_object()) fail("not an object");
  if (j.contains("grayscale")) {
    if (!j["grayscale"].is_boolean()) fail("grayscale must be true or false");
    p.grayscale = j["grayscale"].get<bool>();
  }
  if (j.contains("resize")) {
    const json& r = j["resize"];
    if (!r.is_array() || r.size() != 2 || !r[0].is_number_integer() || !r[1].is_number_integer())
      fail("resize must be [H, W]");
    const int64_t h = r[0].get<int64_t>(), w = r[1].get<int64_t>();  // range first: get<int> would wrap
    if (h < 0 || w < 0 || h > 65536 || w > 65536) fail("resize sizes must lie in [0, 65536]");
    p.resize_height = static_cast<int>(h);
    p.resize_width = static_cast<int>(w);
  }
  if (j.contains("normalization")) {
    try {
      p.normalization = normalization_from_json(j["normalization"]);
    } catch (const std::invalid_argument& e) {
      fail(e.what());
    }
  }
  return p;
}

}  // namespace

void save_checkpoint(const fs::path& path, Sequential& model, const ModelInfo& info, Optimizer* optimizer,
                     const std::map<std::string, std::string>& extra) {
  if (info.input_shape.size() != 3)
    throw std::invalid_argument("save_checkpoint: input shape must be [C, H, W], got " + to_string(info.input_shape));
  std::map<std::string, std::string> meta = extra;
  for (const char* key : kOurKeys)
    if (extra.count(key))
      throw std::invalid_argument(std::string("save_checkpoint: extra metadata may not use the key '") + key + "'");
  json metrics = json::object();
  for (const auto& [k, v] : info.metrics) metrics[k] = v;  // NaN becomes null
  meta["format"] = "lenet.cpp";
  meta["format_version"] = std::to_string(kFormatVersion);
  meta["arch"] = info.arch.empty() ? model.spec() : info.arch;
  meta["input_shape"] = json(info.input_shape).dump();
  meta["class_names"] = json(info.class_names).dump();
  meta["preprocessing"] = preprocessing_json(info.preprocessing).dump();
  meta["dataset"] = info.dataset;
  meta["epoch"] = std::to_string(info.epoch);
  meta["metrics"] = metrics.dump();

  std::vector<NamedTensor> tensors;
  for (const Parameter* p : model.parameters()) tensors.push_back({p->name, p->shape, p->values()});
  // Buffers (BatchNorm's running statistics) beside them, as PyTorch's state_dict.
  for (const Parameter* b : model.buffers())
    tensors.push_back({b->name, b->shape, b->values(), b->name.ends_with("num_batches_tracked")});
  if (optimizer) {
    meta["optimizer"] = optimizer->name();
    meta["optimizer_steps"] = std::to_string(optimizer->steps());
    for (auto& [name, t] : optimizer->state()) tensors.push_back({"optim." + name, t->shape(), t->span()});
  }
  write_file_atomic(path, encode_safetensors(tensors, meta));
}

namespace {

// The model a decoded safetensors file describes; `path` names it in messages.
LoadedModel model_from(SafetensorsFile file, const fs::path& path) {
  const auto& meta = file.metadata;
  if (!meta.count("arch"))
    bad(path, "a safetensors file without lenet.cpp metadata (no 'arch' in __metadata__); cannot rebuild the model");
  if (meta.count("format_version")) {
    const int64_t version = meta_int(path, meta, "format_version", 1, 1'000'000);
    if (version > kFormatVersion)
      bad(path, "checkpoint format version " + std::to_string(version) + " is newer than this lenet.cpp reads (" +
                    std::to_string(kFormatVersion) + "); update lenet.cpp");
  }
  LoadedModel out;
  ModelInfo& info = out.info;
  info.arch = meta.at("arch");

  const json shape = parse_meta(path, meta, "input_shape");
  if (!shape.is_array() || shape.size() != 3)
    bad(path, "checkpoint metadata 'input_shape' must be [C, H, W], got " + shape.dump());
  for (const json& d : shape) {
    if (!d.is_number_integer() || d.get<int64_t>() < 1 || d.get<int64_t>() > 65536)
      bad(path, "checkpoint metadata 'input_shape' " + shape.dump() + " needs sizes in [1, 65536]");
    info.input_shape.push_back(d.get<int64_t>());
  }
  const json names = parse_meta(path, meta, "class_names");
  if (!names.is_array() || names.empty() || names.size() > 100000)
    bad(path, "checkpoint metadata 'class_names' must be a non-empty list of names");
  for (const json& n : names) {
    if (!n.is_string()) bad(path, "checkpoint metadata 'class_names' holds " + n.dump() + ", not a name");
    info.class_names.push_back(n.get<std::string>());
  }
  if (meta.count("preprocessing"))
    info.preprocessing = preprocessing_from(path, parse_meta(path, meta, "preprocessing"));
  if (meta.count("dataset")) info.dataset = meta.at("dataset");
  if (meta.count("epoch")) info.epoch = static_cast<int>(meta_int(path, meta, "epoch", 0, 100'000'000));
  if (meta.count("metrics")) {
    const json metrics = parse_meta(path, meta, "metrics");
    if (!metrics.is_object()) bad(path, "checkpoint metadata 'metrics' must be an object of numbers");
    for (auto it = metrics.begin(); it != metrics.end(); ++it) {
      if (it.value().is_number())
        info.metrics[it.key()] = it.value().get<double>();
      else if (it.value().is_null())
        info.metrics[it.key()] = std::nan("");
      else
        bad(path, "checkpoint metric '" + it.key() + "' is " + it.value().dump() + ", not a number");
    }
  }

  const size_t norm_values = info.preprocessing.normalization.mean.size();
  if (norm_values != 1 && norm_values != static_cast<size_t>(info.input_shape[0]))
    bad(path, "checkpoint metadata 'preprocessing' normalises " + std::to_string(norm_values) +
                  " channels but the model takes " + std::to_string(info.input_shape[0]));
  if (info.preprocessing.resize_height > 0 && (info.preprocessing.resize_height != info.input_shape[1] ||
                                               info.preprocessing.resize_width != info.input_shape[2]))
    bad(path, "checkpoint metadata 'preprocessing' resizes to " + std::to_string(info.preprocessing.resize_height) +
                  "x" + std::to_string(info.preprocessing.resize_width) + " but the model takes " +
                  std::to_string(info.input_shape[1]) + "x" + std::to_string(info.input_shape[2]));
  // A model far larger than the weights the file holds is refused before it is
  // allocated; near misses build and get the exact per-tensor message below.
  int64_t stored = 0;
  for (const auto& [name, t] : file.tensors)
    if (!name.starts_with("optim.")) stored += t.numel();
  try {
    out.model = build_model(info.arch, info.input_shape, static_cast<int>(info.class_names.size()), nullptr,
                            std::min(kMaxModelParameters, stored + (int64_t{1} << 20)));
  } catch (const std::invalid_argument& e) {
    bad(path, std::string("the stored architecture does not build: ") + e.what() + " (the file holds " +
                  std::to_string(stored) + " weights)");
  }
  // Every parameter and buffer must be present with its exact shape; nothing else but optimizer state may be.
  std::vector<Parameter*> wanted = out.model.parameters();
  for (Parameter* b : out.model.buffers()) wanted.push_back(b);
  for (Parameter* p : wanted) {
    const Tensor* t = file.find(p->name);
    if (!t)
      bad(path, "tensor '" + p->name + "' " + to_string(p->shape) + " of architecture '" + info.arch + "' is missing");
    if (t->shape() != p->shape)
      bad(path, "tensor '" + p->name + "' has shape " + to_string(t->shape()) + " but architecture '" + info.arch +
                    "' needs " + to_string(p->shape));
    std::copy(t->data(), t->data() + t->numel(), p->value);
  }
  for (const auto& [name, t] : file.tensors) {
    if (name.starts_with("optim.")) continue;
    bool known = false;
    for (const Parameter* p : wanted) known = known || p->name == name;
    if (!known) bad(path, "tensor '" + name + "' does not belong to architecture '" + info.arch + "'");
  }
  out.metadata = std::move(file.metadata);
  out.model.eval();  // a loaded model predicts; training switches back (Trainer)
  return out;
}

}  // namespace

LoadedModel load_checkpoint(const fs::path& path) {
  return reading_within_memory(path, [&] { return model_from(read_safetensors(path), path); });
}

LoadedModel decode_checkpoint(std::string_view bytes, const std::string& name) {
  return reading_within_memory(name, [&] { return model_from(decode_safetensors(bytes, name), name); });
}

void load_optimizer_state(const fs::path& path, Optimizer& optimizer) {
  SafetensorsFile file = read_safetensors(path);
  auto it = file.metadata.find("optimizer");
  if (it == file.metadata.end()) bad(path, "the checkpoint holds no optimizer state");
  if (it->second != optimizer.name())
    bad(path, "the checkpoint holds state for optimizer '" + it->second + "', not '" + optimizer.name() + "'");
  const int64_t steps = meta_int(path, file.metadata, "optimizer_steps", 0, INT64_MAX);
  for (auto& [name, t] : optimizer.state()) {
    const Tensor* saved = file.find("optim." + name);
    if (!saved) bad(path, "optimizer state 'optim." + name + "' is missing");
    if (saved->shape() != t->shape())
      bad(path, "optimizer state 'optim." + name + "' has shape " + to_string(saved->shape()) +
                    " but the model needs " + to_string(t->shape()));
    *t = *saved;
  }
  optimizer.set_steps(steps);
}

}  // namespace lenet

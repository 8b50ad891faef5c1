// ModelInfo as ONNX metadata_props: JSON values under "lenet.*" keys, plus the
// facts a foreign consumer needs under plain names.
#include "io/onnx_metadata.h"

#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>

namespace lenet::onnx_meta {

namespace {

std::string shape_json(const Shape& s) { return nlohmann::json(s).dump(); }

std::string number_text(double v) {
  std::ostringstream os;
  os.precision(9);
  os << v;
  return os.str();
}

}  // namespace

std::vector<std::pair<std::string, std::string>> to_props(const ModelInfo& info) {
  const auto& pre = info.preprocessing;
  nlohmann::json preprocessing = {
      {"grayscale", pre.grayscale},
      {"resize", {pre.resize_height, pre.resize_width}},
      {"mean", pre.normalization.mean},
      {"std", pre.normalization.std},
  };
  nlohmann::json metrics = nlohmann::json::object();
  for (const auto& [k, v] : info.metrics) metrics[k] = v;
  const std::string classes = nlohmann::json(info.class_names).dump();
  return {
      {"lenet.format", kFormatVersion},
      {"lenet.arch", info.arch},
      {"lenet.input_shape", shape_json(info.input_shape)},
      {"lenet.class_names", classes},
      {"lenet.preprocessing", preprocessing.dump()},
      {"lenet.dataset", info.dataset},
      {"lenet.epoch", std::to_string(info.epoch)},
      {"lenet.metrics", metrics.dump()},
      {"class_names", classes},
      {"input_shape", shape_json(info.input_shape)},
      {"normalization_mean", number_text(pre.normalization.mean)},
      {"normalization_std", number_text(pre.normalization.std)},
  };
}

bool from_props(const std::map<std::string, std::string>& props, const std::string& source, ModelInfo& info) {
  bool any = false;
  for (const auto& [key, value] : props) any = any || key.starts_with("lenet.");
  if (!any) return false;
  // Our own files always carry every key: a missing one means a cut file.
  for (const auto& [key, value] : to_props(ModelInfo{}))
    if (!props.contains(key))
      throw std::runtime_error(source + ": metadata '" + key + "' is missing (the file is truncated or was "
                               "edited: lenet.cpp writes every metadata key)");
  const std::string& format = props.at("lenet.format");
  if (format != kFormatVersion)
    throw std::runtime_error(source + ": metadata 'lenet.format' is " + format + ", this build reads version " +
                             kFormatVersion + " (a newer lenet.cpp wrote it)");
  auto parse = [&](const std::string& key, auto&& apply) {
    auto it = props.find(key);
    if (it == props.end()) return;
    try {
      apply(nlohmann::json::parse(it->second));
    } catch (const nlohmann::json::exception& e) {
      throw std::runtime_error(source + ": metadata '" + key + "' is malformed ('" + it->second + "'): " + e.what());
    }
  };
  parse("lenet.input_shape", [&](const nlohmann::json& j) { info.input_shape = j.get<Shape>(); });
  parse("lenet.class_names", [&](const nlohmann::json& j) { info.class_names = j.get<std::vector<std::string>>(); });
  parse("lenet.preprocessing", [&](const nlohmann::json& j) {
    auto& pre = info.preprocessing;
    pre.grayscale = j.at("grayscale").get<bool>();
    pre.resize_height = j.at("resize").at(0).get<int>();
    pre.resize_width = j.at("resize").at(1).get<int>();
    pre.normalization.mean = j.at("mean").get<float>();
    pre.normalization.std = j.at("std").get<float>();
  });
  parse("lenet.epoch", [&](const nlohmann::json& j) { info.epoch = j.get<int>(); });
  parse("lenet.metrics", [&](const nlohmann::json& j) { info.metrics = j.get<std::map<std::string, double>>(); });
  if (auto it = props.find("lenet.dataset"); it != props.end()) info.dataset = it->second;
  if (auto it = props.find("lenet.arch"); it != props.end()) info.arch = it->second;
  if (info.input_shape.size() != 3 || info.input_shape[0] < 1 || info.input_shape[1] < 1 || info.input_shape[2] < 1)
    throw std::runtime_error(source + ": metadata 'lenet.input_shape' must be [C, H, W] with positive sizes, got " +
                             to_string(info.input_shape));
  if (info.preprocessing.normalization.std <= 0.0f)
    throw std::runtime_error(source + ": metadata 'lenet.preprocessing' has std " +
                             number_text(info.preprocessing.normalization.std) + ", expected a positive value");
  return true;
}

}  // namespace lenet::onnx_meta

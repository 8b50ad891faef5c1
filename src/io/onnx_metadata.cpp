// ModelInfo as ONNX metadata_props: JSON values under "lenet.*" keys, plus the
// facts a foreign consumer needs under plain names.
#include "io/onnx_metadata.h"

#include <cmath>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>

#include "io/json_text.h"
#include "lenet/error.h"

namespace lenet::onnx_meta {

namespace {

std::string shape_json(const Shape& s) { return nlohmann::json(s).dump(); }

std::string number_text(double v) {
  std::ostringstream os;
  os.precision(9);
  os << v;
  return os.str();
}

// One value ("0.286000013"), or per channel a JSON list ("[0.5,0.4,0.3]").
std::string values_text(const std::vector<float>& v) {
  if (v.size() == 1) return number_text(v[0]);
  std::string out = "[";
  for (size_t i = 0; i < v.size(); ++i) out += (i ? "," : "") + number_text(v[i]);
  return out + "]";
}

}  // namespace

std::vector<std::pair<std::string, std::string>> to_props(const ModelInfo& info) {
  const auto& pre = info.preprocessing;
  // The same layout as a checkpoint's "preprocessing".
  nlohmann::json preprocessing = {
      {"grayscale", pre.grayscale},
      {"resize", {pre.resize_height, pre.resize_width}},
      {"normalization", normalization_json(pre.normalization)},
  };
  nlohmann::json metrics = nlohmann::json::object();
  for (const auto& [k, v] : info.metrics) metrics[k] = v;  // NaN becomes null
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
      {"normalization_mean", values_text(pre.normalization.mean)},
      {"normalization_std", values_text(pre.normalization.std)},
  };
}

bool from_props(const std::map<std::string, std::string>& props, const std::string& source, ModelInfo& info) {
  bool any = false;
  for (const auto& [key, value] : props) any = any || key.starts_with("lenet.");
  if (!any) return false;
  // Our own files always carry every key: a missing one means a cut file.
  for (const auto& [key, value] : to_props(ModelInfo{}))
    if (!props.contains(key))
      throw FileError(source, "metadata '" + key +
                                  "' is missing (the file is truncated or was "
                                  "edited: lenet.cpp writes every metadata key)");
  const std::string& format = props.at("lenet.format");
  if (format != kFormatVersion)
    throw FileError(source, "metadata 'lenet.format' is " + printable_excerpt(format) + ", this build reads version " +
                                kFormatVersion + " (a newer lenet.cpp wrote it)");
  auto parse = [&](const std::string& key, auto&& apply) {
    auto it = props.find(key);
    if (it == props.end()) return;
    const nlohmann::json j = parse_json_text(it->second, source, "metadata '" + key + "'");
    try {
      apply(j);
    } catch (const std::invalid_argument& e) {  // the shape and range checks below
      throw FileError(source, "metadata '" + key + "' is malformed ('" + printable_excerpt(it->second, 200) +
                                  "'): " + e.what());
    }
  };
  // Accessors that say what was expected (nlohmann's at() and get() would throw their own errors).
  auto member = [](const nlohmann::json& j, const char* key) -> const nlohmann::json& {
    if (!j.is_object() || !j.contains(key))
      throw std::invalid_argument(std::string("expected an object with \"") + key + "\", got " +
                                  j.dump().substr(0, 80));
    return j[key];
  };
  auto pair_item = [](const nlohmann::json& j, size_t i) -> const nlohmann::json& {
    if (!j.is_array() || j.size() != 2)
      throw std::invalid_argument("expected a list [H, W], got " + j.dump().substr(0, 80));
    return j[i];
  };
  // Numbers are range-checked before conversion: converting 1e300 to an integer is undefined.
  auto whole = [](const nlohmann::json& v, int64_t lo, int64_t hi) {
    if (!v.is_number_integer() || (v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(hi)) ||
        v.get<int64_t>() < lo || v.get<int64_t>() > hi)
      throw std::invalid_argument("expected a whole number in [" + std::to_string(lo) + ", " + std::to_string(hi) +
                                  "], got " + v.dump());
    return v.get<int64_t>();
  };
  parse("lenet.input_shape", [&](const nlohmann::json& j) {
    if (!j.is_array() || j.size() != 3) throw std::invalid_argument("expected [C, H, W]");
    info.input_shape.clear();
    for (const auto& d : j) info.input_shape.push_back(whole(d, 1, 65536));
  });
  parse("lenet.class_names", [&](const nlohmann::json& j) {
    if (!j.is_array() || j.size() > 100000) throw std::invalid_argument("expected a list of at most 100000 names");
    info.class_names.clear();
    for (const auto& name : j) {
      if (!name.is_string())
        throw std::invalid_argument("expected a list of names, found " + name.dump().substr(0, 80));
      info.class_names.push_back(name.get<std::string>());
    }
  });
  parse("lenet.preprocessing", [&](const nlohmann::json& j) {
    auto& pre = info.preprocessing;
    const nlohmann::json& grayscale = member(j, "grayscale");
    if (!grayscale.is_boolean()) throw std::invalid_argument("\"grayscale\" must be true or false");
    pre.grayscale = grayscale.get<bool>();
    const nlohmann::json& resize = member(j, "resize");
    pre.resize_height = static_cast<int>(whole(pair_item(resize, 0), 0, 65536));
    pre.resize_width = static_cast<int>(whole(pair_item(resize, 1), 0, 65536));
    pre.normalization = normalization_from_json(member(j, "normalization"));
  });
  parse("lenet.epoch", [&](const nlohmann::json& j) { info.epoch = static_cast<int>(whole(j, 0, 100'000'000)); });
  parse("lenet.metrics", [&](const nlohmann::json& j) {
    if (!j.is_object()) throw std::invalid_argument("expected an object of numbers");
    for (const auto& [k, v] : j.items()) {
      if (!v.is_null() && !v.is_number())
        throw std::invalid_argument("metric '" + k + "' is " + v.dump().substr(0, 80) + ", not a number");
      info.metrics[k] = v.is_null() ? std::nan("") : v.get<double>();
    }
  });
  if (auto it = props.find("lenet.dataset"); it != props.end()) info.dataset = it->second;
  if (auto it = props.find("lenet.arch"); it != props.end()) info.arch = it->second;
  const auto size_ok = [](int64_t d) { return d >= 1 && d <= 65536; };
  if (info.input_shape.size() != 3 || !size_ok(info.input_shape[0]) || !size_ok(info.input_shape[1]) ||
      !size_ok(info.input_shape[2]))
    throw FileError(source, "metadata 'lenet.input_shape' must be [C, H, W] with sizes in [1, 65536], got " +
                                to_string(info.input_shape));
  if (info.class_names.empty()) throw FileError(source, "metadata 'lenet.class_names' is an empty list");
  const auto& pre = info.preprocessing;
  if (pre.resize_height < 0 || pre.resize_width < 0 || pre.resize_height > 65536 || pre.resize_width > 65536)
    throw FileError(source, "metadata 'lenet.preprocessing' has resize " + std::to_string(pre.resize_height) + "x" +
                                std::to_string(pre.resize_width) + ", expected sizes in [0, 65536]");
  const size_t norm_values = pre.normalization.mean.size();
  if (norm_values != 1 && norm_values != static_cast<size_t>(info.input_shape[0]))
    throw FileError(source, "metadata 'lenet.preprocessing' normalises " + std::to_string(norm_values) +
                                " channels but the model takes " + std::to_string(info.input_shape[0]));
  return true;
}

}  // namespace lenet::onnx_meta

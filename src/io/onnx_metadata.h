// ModelInfo <-> ONNX metadata_props (the key list is documented in lenet/onnx.h).
#pragma once

#include <map>
#include <string>
#include <vector>

#include "lenet/checkpoint.h"

namespace lenet::onnx_meta {

inline constexpr const char* kFormatVersion = "1";

// Key/value pairs for metadata_props, in a stable order.
std::vector<std::pair<std::string, std::string>> to_props(const ModelInfo& info);

// Fills what the props hold into `info` (fields without a key keep their
// value). Returns false when the file has no lenet metadata at all. Throws
// FileError naming `source` when a value is malformed.
bool from_props(const std::map<std::string, std::string>& props, const std::string& source, ModelInfo& info);

}  // namespace lenet::onnx_meta
